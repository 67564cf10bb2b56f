//! Booking: services, staff with weekly hours and time off, appointments, and availability in the
//! client's time zone. The database refuses to double-book a staff member (see `appointments`).

pub mod appointments;
pub mod availability;
pub mod services;
pub mod staff;

use serde::{Deserialize, Deserializer};

/// SQLite keeps booleans as 0/1.
fn int_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(i64::deserialize(d)? != 0)
}
