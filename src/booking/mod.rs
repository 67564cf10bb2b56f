//! Booking: services, staff with weekly hours and time off, appointments, and availability in the
//! client's time zone. The database refuses to double-book a staff member (see `appointments`).

pub mod appointments;
pub mod availability;
pub mod services;
pub mod staff;

use crate::access::flags::{self, Flag};
use crate::access::roles::{Permission, Principal};
use crate::access::store::ClientRow;
use crate::access::ClientScope;
use crate::platform::error::ApiResult;
use crate::platform::http::Request;
use crate::platform::ports::{col_i64, Param, Platform};
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

/// Whether a client's widget offers booking: an active staff member offers an active service.
/// Read on the client's shard.
pub const OFFERED: &str = "SELECT EXISTS (SELECT 1 FROM staff_services ss JOIN staff st ON st.id = ss.staff_id \
    JOIN services sv ON sv.id = ss.service_id WHERE ss.client_id = ?1 AND st.active = 1 AND sv.active = 1) AS n";
/// `OFFERED`, kept on the client's directory row, where the gate reads it with the rest.
pub const SET_BOOKABLE: &str = "UPDATE clients SET bookable = ?2 WHERE id = ?1 AND bookable <> ?2";

/// After a write to a client's services or staff: whether its widget offers booking is read from
/// the shard and stored on the directory row, and the cached gate forgets the client. The two
/// are separate databases once sharded, so this follows the write rather than joining its batch.
pub(crate) async fn offered_changed<P: Platform>(ctx: &Ctx<'_, P>, client_id: &str) -> ApiResult<()> {
    ctx.tenant_changed(client_id);
    let set = async {
        let rows = ctx.p.query(OFFERED, &[client_id.into()]).await?;
        let offered = rows.first().and_then(|r| col_i64(r, "n")).unwrap_or(0) != 0;
        ctx.p.execute(SET_BOOKABLE, &[client_id.into(), Param::Int(offered.into())]).await
    };
    // The write it follows has committed: a failure here is logged, not reported as the
    // write's, and the next staff or service write sets the flag right.
    if let Err(e) = set.await {
        ctx.p.log("warn", &format!("booking flag of {client_id} not updated: {e}"));
    }
    Ok(())
}
