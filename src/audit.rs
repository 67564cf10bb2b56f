//! The audit log: who changed what, in which tenant, from where. Rows are written in the same
//! batch as the change they describe, so a change without its audit row cannot happen.

use serde::Serialize;
use serde_json::Value;

use crate::error::ApiResult;
use crate::ports::{Param, Stmt};

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

fn build(sql: &'static str, actor: &Actor, event: Event<'_>, now_ms: i64) -> ApiResult<Stmt> {
    // Audit ids sort by time, so the per-tenant list reads in order.
    let id = format!("{:013}_{}", now_ms.max(0), crate::ids::new_id("aud")?);
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
