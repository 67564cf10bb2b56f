//! The CRM: the people a client does business with. Contacts today; pipelines, deals and
//! bookings grow here.

pub mod contacts;
