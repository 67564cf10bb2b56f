//! Deleting a client: soft first, then for good. `DELETE /api/clients/{id}` suspends the client at
//! once and keeps everything for `CLIENT_DELETE_GRACE_DAYS` (30), within which
//! `POST /api/clients/{id}/restore` brings it back as it was. After that the scheduled `purge`
//! removes every row the client owns (table by table in `schema::PURGE_ORDER`, which a test
//! holds to `schema::TENANT_OWNED`) and every R2 object under `tenants/{client_id}/`, a bounded
//! batch per run, so a large client takes several runs and a crash loses nothing. The client's
//! own row goes last. The agency's audit log records the deletion, the restore and the purge.

use serde_json::{json, Value};

use crate::access::audit::{self, Actor, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, store};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::http::{Request, Response};
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::schema::{tenant_column, PURGE_ORDER};
use crate::platform::Ctx;

pub const SOFT_DELETE: &str = "UPDATE clients SET status_before_delete = status, status = 'suspended', \
    deleted_at = ?3, purge_after = ?4, updated_at = ?3 WHERE id = ?1 AND agency_id = ?2 AND deleted_at IS NULL";
pub const RESTORE: &str = "UPDATE clients SET status = coalesce(status_before_delete, 'active'), \
    status_before_delete = NULL, deleted_at = NULL, purge_after = NULL, updated_at = ?3 \
    WHERE id = ?1 AND agency_id = ?2 AND deleted_at IS NOT NULL AND purge_after > ?3";
/// Deleted clients whose grace period is over, oldest first.
pub const DUE_FOR_PURGE: &str = "SELECT id, agency_id FROM clients WHERE deleted_at IS NOT NULL AND purge_after <= ?1 \
    ORDER BY purge_after LIMIT ?2";
pub const DELETE_CLIENT_ROW: &str =
    "DELETE FROM clients WHERE id = ?1 AND agency_id = ?2 AND deleted_at IS NOT NULL AND purge_after <= ?3";
/// A login's second step names the tenant it was for; a purged client's go with it.
pub const DELETE_MFA_CHALLENGES: &str = "DELETE FROM mfa_challenges WHERE tenant = ?1";

/// Rows deleted per table per statement, and statements per purge run.
const PURGE_CHUNK: i64 = 500;
const PURGE_STATEMENTS: usize = 60;
const PURGE_OBJECTS: usize = 200;

/// `DELETE /api/clients/{id}`: the agency's (`clients:manage`). Suspends the client at once and
/// answers 202 with the instant until which it can be restored.
pub async fn delete<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, id: &str) -> ApiResult<Response> {
    let (_, c) = access::client(ctx, req, who, id, Permission::ClientsManage).await?;
    if c.deleted_at.is_some() {
        return Err(ApiError::conflict("client_deleted", "this client is already deleted"));
    }
    let now = ctx.p.now_ms();
    let purge_after = now + ctx.cfg.client_delete_grace_days * 86_400_000;
    let stmts = [
        Stmt::new(
            SOFT_DELETE,
            vec![c.id.as_str().into(), c.agency_id.as_str().into(), Param::Int(now), Param::Int(purge_after)],
        ),
        agency_event(ctx, req, who, &c, "client.deleted", json!({"restorable_until": purge_after}))?,
    ];
    if ctx.p.batch(&stmts).await?.first().copied().unwrap_or(0) == 0 {
        return Err(ApiError::conflict("client_deleted", "this client is already deleted"));
    }
    ctx.tenant_changed(&c.id);
    Ok(Response::json(202, &json!({"id": c.id, "status": "deleted", "restorable_until": purge_after})))
}

/// `POST /api/clients/{id}/restore`: within the grace period, the client is back as it was.
pub async fn restore<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, id: &str) -> ApiResult<Response> {
    let (_, c) = access::client(ctx, req, who, id, Permission::ClientsManage).await?;
    if c.deleted_at.is_none() {
        return Err(ApiError::conflict("client_not_deleted", "this client is not deleted"));
    }
    let now = ctx.p.now_ms();
    let stmts = [
        Stmt::new(RESTORE, vec![c.id.as_str().into(), c.agency_id.as_str().into(), Param::Int(now)]),
        agency_event(ctx, req, who, &c, "client.restored", json!({}))?,
    ];
    if ctx.p.batch(&stmts).await?.first().copied().unwrap_or(0) == 0 {
        return Err(ApiError::conflict(
            "restore_window_closed",
            "the grace period is over: this client's data is being purged",
        ));
    }
    ctx.tenant_changed(&c.id);
    let c = store::client(ctx.p, &c.id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &c.to_json()))
}

/// The agency's audit row for a change to one of its clients, naming the client (whose own log
/// may not outlive it), written only if the change happened.
fn agency_event<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    c: &store::ClientRow,
    action: &'static str,
    mut metadata: Value,
) -> ApiResult<Stmt> {
    metadata["name"] = json!(c.name);
    metadata["slug"] = json!(c.slug);
    let event = Event { tenant_id: &c.agency_id, action, target_type: "client", target_id: Some(&c.id), metadata };
    audit::entry_if_changed(ctx, req, who, event)
}

crate::platform::rows::row! {
    struct Due {
        id: String,
        agency_id: String,
    }
}

/// The scheduled purge: a bounded share of the work for clients past their grace period. Answers
/// per client what it removed and whether the client is gone.
pub async fn purge_due<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Value> {
    let now = ctx.p.now_ms();
    let due: Vec<Due> = ctx.p.query_as(DUE_FOR_PURGE, &[Param::Int(now), Param::Int(5)]).await?;
    let mut report = Vec::new();
    for d in due {
        report.push(purge_one(ctx, &d, now).await?);
    }
    Ok(json!(report))
}

async fn purge_one<P: Platform>(ctx: &Ctx<'_, P>, d: &Due, now: i64) -> ApiResult<Value> {
    // Objects first: a file row is the only record of where an object lives, so rows outlive them.
    let prefix = format!("tenants/{}/", d.id);
    let keys = ctx.p.list(&prefix).await?;
    let objects_left = keys.len().saturating_sub(PURGE_OBJECTS);
    for key in keys.iter().take(PURGE_OBJECTS) {
        ctx.p.delete(key).await?;
    }
    if objects_left > 0 {
        return Ok(json!({"client_id": d.id, "objects_deleted": PURGE_OBJECTS, "done": false}));
    }
    let mut rows = 0u64;
    let mut statements = 0;
    for table in PURGE_ORDER {
        let Some(column) = tenant_column(table) else { continue };
        // The table and column come from the schema map, never from input.
        let sql = format!(
            "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {column} = ?1 LIMIT {PURGE_CHUNK})"
        );
        loop {
            if statements >= PURGE_STATEMENTS {
                return Ok(json!({"client_id": d.id, "rows_deleted": rows, "done": false}));
            }
            statements += 1;
            let n = ctx.p.execute(&sql, &[d.id.as_str().into()]).await?;
            rows += n;
            if (n as i64) < PURGE_CHUNK {
                break;
            }
        }
    }
    rows += ctx.p.execute(DELETE_MFA_CHALLENGES, &[d.id.as_str().into()]).await?;
    let actor = Actor { role: Some("system".into()), ip: "internal".into(), ..Actor::default() };
    let stmts = [
        Stmt::new(DELETE_CLIENT_ROW, vec![d.id.as_str().into(), d.agency_id.as_str().into(), Param::Int(now)]),
        audit::after_change(
            &actor,
            Event {
                tenant_id: &d.agency_id,
                action: "client.purged",
                target_type: "client",
                target_id: Some(&d.id),
                metadata: json!({"rows_deleted_last_run": rows}),
            },
            now,
        )?,
    ];
    let gone = ctx.p.batch_changed(&stmts).await?;
    ctx.tenant_changed(&d.id);
    Ok(json!({"client_id": d.id, "rows_deleted": rows, "done": gone}))
}
