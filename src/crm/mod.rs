//! The CRM: the people a client does business with (contacts, tags and notes) and the business
//! itself (pipelines with ordered stages, deals and their stage history).

pub mod contacts;
pub mod deals;
pub mod notes;
pub mod pipelines;
pub mod tags;
