//! The audit log: who changed what, in which tenant, from where. Rows are written in the same
//! batch as the change they describe, so a change without its audit row cannot happen.

use serde::Serialize;
use serde_json::Value;

use super::roles::Principal;
use crate::platform::error::ApiResult;
use crate::platform::extract::req_method;
use crate::platform::http::Request;
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

pub const INSERT: &str = "INSERT INTO audit_log \
    (id, tenant_id, at, actor_user_id, actor_role, action, target_type, target_id, ip, user_agent, metadata) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
/// The same row, written only when the statement just before it in the batch changed a row.
/// `changes()` reads the connection's last write, and a batch runs its statements in order on
/// one connection, so a delete or update that matched nothing leaves no audit row behind.
pub const INSERT_IF_CHANGED: &str = "INSERT INTO audit_log \
    (id, tenant_id, at, actor_user_id, actor_role, action, target_type, target_id, ip, user_agent, metadata) \
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 WHERE changes() > 0";
pub const LIST_FOR_TENANT: &str = "SELECT id, tenant_id, at, actor_user_id, actor_role, action, target_type, \
    target_id, ip, user_agent, metadata FROM audit_log WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";

/// Who acted, and from where.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    pub role: Option<String>,
    pub ip: String,
    pub user_agent: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    pub tenant_id: &'a str,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<&'a str>,
    /// Never holds a secret: callers pass names of fields changed, not values.
    pub metadata: Value,
}

/// An audit row that is always written: for standalone events (a login, an access) and for
/// creations whose insert cannot match nothing.
pub fn stmt(actor: &Actor, event: Event<'_>, now_ms: i64) -> ApiResult<Stmt> {
    build(INSERT, actor, event, now_ms)
}

/// An audit row for the change just before it in the same batch, written only if that change
/// touched a row. Every update and delete pairs with one of these.
pub fn after_change(actor: &Actor, event: Event<'_>, now_ms: i64) -> ApiResult<Stmt> {
    build(INSERT_IF_CHANGED, actor, event, now_ms)
}

/// The caller of a request, as the audit log records them.
pub fn actor(req: &Request, who: Option<&Principal>) -> Actor {
    Actor {
        user_id: who.map(|w| w.user_id.clone()),
        role: who.map(|w| if w.api_key { "api_key".to_string() } else { w.role.as_str().to_string() }),
        ip: req.client_ip().unwrap_or("unknown").to_string(),
        user_agent: req.user_agent().to_string(),
    }
}

/// `stmt` for a request's caller, now.
pub fn entry<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: Option<&Principal>,
    event: Event<'_>,
) -> ApiResult<Stmt> {
    stmt(&actor(req, who), event, ctx.p.now_ms())
}

/// `after_change` for a request's caller, now: the audit row for the update or delete just
/// before it in a batch.
pub fn entry_if_changed<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    event: Event<'_>,
) -> ApiResult<Stmt> {
    after_change(&actor(req, Some(who)), event, ctx.p.now_ms())
}

/// Writes a `platform.access` row when staff touch a tenant they are not a member of. Listings
/// that span tenants are filed under `platform`.
pub async fn staff_access<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    tenant_id: &str,
    kind: &str,
) -> ApiResult<()> {
    if !who.staff {
        return Ok(());
    }
    let stmt = entry(
        ctx,
        req,
        Some(who),
        Event {
            tenant_id,
            action: "platform.access",
            target_type: kind,
            target_id: Some(tenant_id).filter(|t| *t != "platform"),
            metadata: serde_json::json!({"method": req_method(req), "path": req.path, "scope": who.scope}),
        },
    )?;
    ctx.p.execute(stmt.sql, &stmt.params).await?;
    Ok(())
}

fn build(sql: &'static str, actor: &Actor, event: Event<'_>, now_ms: i64) -> ApiResult<Stmt> {
    // Audit ids sort by time, so the per-tenant list reads in order.
    let id = format!("{:013}_{}", now_ms.max(0), crate::platform::ids::new_id("aud")?);
    let ua: String = actor.user_agent.chars().take(256).collect();
    Ok(Stmt::new(
        sql,
        vec![
            id.into(),
            event.tenant_id.into(),
            Param::Int(now_ms),
            actor.user_id.clone().into(),
            actor.role.clone().into(),
            event.action.into(),
            event.target_type.into(),
            event.target_id.into(),
            actor.ip.clone().into(),
            ua.into(),
            event.metadata.to_string().into(),
        ],
    ))
}
