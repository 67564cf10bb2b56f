//! Booking: services, staff with weekly hours and time off, appointments, and availability in the
//! client's time zone. The database refuses to double-book a staff member (see `appointments`).

pub mod appointments;
pub mod availability;
pub mod services;
pub mod staff;

use serde::{Deserialize, Deserializer};

use crate::access::flags::{self, Flag};
use crate::access::roles::{Permission, Principal};
use crate::access::store::ClientRow;
use crate::access::ClientScope;
use crate::platform::error::ApiResult;
use crate::platform::http::Request;
use crate::platform::ports::Platform;
use crate::platform::Ctx;

/// A client the caller reaches (404) and holds `perm` on (403), with the `booking` feature on
/// (403 `feature_disabled`): every booking route comes through here.
pub(crate) async fn client<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
    perm: Permission,
) -> ApiResult<(ClientScope, ClientRow)> {
    let (scope, row) = crate::access::client(ctx, req, who, id, perm).await?;
    flags::require(&row.feature_flags, Flag::Booking)?;
    Ok((scope, row))
}

/// SQLite keeps booleans as 0/1.
fn int_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(i64::deserialize(d)? != 0)
}
