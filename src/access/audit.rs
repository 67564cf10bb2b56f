//! The audit log: who changed what, in which tenant, from where. Rows are written in the same
//! batch as the change they describe, so a change without its audit row cannot happen.
//!
//! **Tamper evidence.** Each tenant's rows form a hash chain. A row takes the next `seq` of its
//! tenant inside its own INSERT (D1 runs statements one at a time, and a unique index backs it),
//! so concurrent writers can never fork the chain. Sealing, shortly after, walks the new rows in
//! `seq` order and stores each one's `prev_hash` and `hash` (SHA-256 over its canonical fields and
//! the previous hash); it is deterministic, so two sealers write the same values. `verify`
//! recomputes the chain and names the first row that was edited, removed or relinked.

use serde::Serialize;
use serde_json::Value;

use super::roles::Principal;
use crate::platform::error::ApiResult;
use crate::platform::extract::req_method;
use crate::platform::http::Request;
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

pub const INSERT: &str = "INSERT INTO audit_log \
    (id, tenant_id, at, actor_user_id, actor_role, action, target_type, target_id, ip, user_agent, metadata, seq) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
    (SELECT coalesce(max(seq), 0) + 1 FROM audit_log WHERE tenant_id = ?2))";
/// The same row, written only when the statement just before it in the batch changed a row.
/// `changes()` reads the connection's last write, and a batch runs its statements in order on
/// one connection, so a delete or update that matched nothing leaves no audit row behind.
pub const INSERT_IF_CHANGED: &str = "INSERT INTO audit_log \
    (id, tenant_id, at, actor_user_id, actor_role, action, target_type, target_id, ip, user_agent, metadata, seq) \
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
    (SELECT coalesce(max(seq), 0) + 1 FROM audit_log WHERE tenant_id = ?2) WHERE changes() > 0";
/// The row of a control-plane change, written to its tenant's shard after the change committed
/// (`access::relay`): the same row, once, whatever the number of times it is relayed.
pub const INSERT_ONCE: &str = "INSERT INTO audit_log \
    (id, tenant_id, at, actor_user_id, actor_role, action, target_type, target_id, ip, user_agent, metadata, seq) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
    (SELECT coalesce(max(seq), 0) + 1 FROM audit_log WHERE tenant_id = ?2)) ON CONFLICT (id) DO NOTHING";
/// Rows as `ChainRow`s, the one shape audit rows are read in.
/// A tenant's log in the order it happened (ids are random, so `at` orders and `id` breaks ties),
/// after the row `(?2, ?3)` the previous page ended with.
pub const LIST_FOR_TENANT: &str = "SELECT id, tenant_id, coalesce(seq, 0) AS seq, at, actor_user_id, actor_role, \
    action, target_type, target_id, ip, user_agent, metadata, prev_hash, hash FROM audit_log \
    WHERE tenant_id = ?1 AND (at, id) > (?2, ?3) ORDER BY at, id LIMIT ?4";
/// The same log newest first, before the row `(?2, ?3)`.
pub const LIST_NEWEST_FOR_TENANT: &str = "SELECT id, tenant_id, coalesce(seq, 0) AS seq, at, actor_user_id, \
    actor_role, action, target_type, target_id, ip, user_agent, metadata, prev_hash, hash FROM audit_log \
    WHERE tenant_id = ?1 AND (at, id) < (?2, ?3) ORDER BY at DESC, id DESC LIMIT ?4";

pub const LAST_SEALED: &str = "SELECT seq, hash FROM audit_log WHERE tenant_id = ?1 AND hash IS NOT NULL \
    ORDER BY seq DESC LIMIT 1";
pub const CHAIN_AFTER: &str = "SELECT id, tenant_id, seq, at, actor_user_id, actor_role, action, target_type, \
    target_id, ip, user_agent, metadata, prev_hash, hash FROM audit_log WHERE tenant_id = ?1 AND seq > ?2 \
    ORDER BY seq LIMIT ?3";
/// Seals one row; a row already sealed (by a concurrent sealer, with the same values) is left be.
pub const SEAL: &str =
    "UPDATE audit_log SET prev_hash = ?3, hash = ?4 WHERE tenant_id = ?1 AND seq = ?2 AND hash IS NULL";
/// Tenants with rows still to seal, for the scheduled run.
pub const UNSEALED_TENANTS: &str = "SELECT DISTINCT tenant_id FROM audit_log WHERE hash IS NULL AND seq IS NOT NULL \
    AND tenant_id NOT IN (SELECT tenant_id FROM fenced_tenants) LIMIT ?1";

/// The hash before a tenant's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Rows sealed per D1 batch.
const SEAL_BATCH: i64 = 100;

crate::platform::rows::row! {
    /// An audit row with its chain fields.
    #[derive(Debug, Clone)]
    pub struct ChainRow {
        pub id: String,
        pub tenant_id: String,
        pub seq: i64,
        pub at: i64,
        pub actor_user_id: Option<String>,
        pub actor_role: Option<String>,
        pub action: String,
        pub target_type: String,
        pub target_id: Option<String>,
        pub ip: Option<String>,
        pub user_agent: Option<String>,
        pub metadata: Option<String>,
        pub prev_hash: Option<String>,
        pub hash: Option<String>,
    }
}

/// A row's link: SHA-256 (hex) over its canonical form, a JSON array of every field in a fixed
/// order with the previous row's hash last.
pub fn chain_hash(prev: &str, r: &ChainRow) -> String {
    use sha2::{Digest, Sha256};
    let canonical = serde_json::json!([
        r.tenant_id,
        r.seq,
        r.id,
        r.at,
        r.actor_user_id,
        r.actor_role,
        r.action,
        r.target_type,
        r.target_id,
        r.ip,
        r.user_agent,
        r.metadata,
        prev
    ]);
    crate::platform::ids::hex(&Sha256::digest(canonical.to_string().as_bytes()))
}

crate::platform::rows::row! {
    struct Sealed {
        seq: i64,
        hash: String,
    }
}

/// Seals a tenant's new rows, in `seq` order from the last sealed one, up to `max_rows`. Stops at
/// a gap (a removed row), which `verify` then reports. Answers how many rows it sealed.
pub async fn seal<P: Platform>(p: &P, tenant: &str, max_rows: i64) -> ApiResult<i64> {
    let last: Option<Sealed> = p.query_first(LAST_SEALED, &[tenant.into()]).await?;
    let (mut seq, mut prev) = last.map_or((0, GENESIS.to_string()), |l| (l.seq, l.hash));
    let mut sealed = 0;
    while sealed < max_rows {
        let rows: Vec<ChainRow> =
            p.query_as(CHAIN_AFTER, &[tenant.into(), Param::Int(seq), Param::Int(SEAL_BATCH)]).await?;
        let mut stmts = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.seq != seq + 1 || r.hash.is_some() {
                break;
            }
            let hash = chain_hash(&prev, r);
            stmts.push(Stmt::new(
                SEAL,
                vec![tenant.into(), Param::Int(r.seq), prev.as_str().into(), hash.as_str().into()],
            ));
            (seq, prev) = (r.seq, hash);
        }
        if stmts.is_empty() {
            break;
        }
        let n = stmts.len() as i64;
        p.batch(&stmts).await?;
        sealed += n;
        if n < rows.len() as i64 || (rows.len() as i64) < SEAL_BATCH {
            break;
        }
    }
    Ok(sealed)
}

/// Seals what is waiting in up to `tenants` tenants: the scheduled run's share.
pub async fn seal_pending<P: Platform>(p: &P, tenants: i64) -> ApiResult<i64> {
    crate::platform::rows::row! {
        struct Tenant {
            tenant_id: String,
        }
    }
    let mut sealed = 0;
    for t in p.query_as::<Tenant>(UNSEALED_TENANTS, &[Param::Int(tenants)]).await? {
        sealed += seal(p, &t.tenant_id, 5_000).await?;
    }
    Ok(sealed)
}

/// What `verify` found: how many rows hold, the head to compare with a copy kept elsewhere (only
/// that catches a removed tail), the first break, and how many newer rows still wait for sealing.
#[derive(Debug, Serialize)]
pub struct ChainReport {
    pub ok: bool,
    pub rows: i64,
    pub head: Option<Head>,
    pub first_break: Option<Break>,
    /// Rows after the sealed head, written since (or past this call's sealing budget): not yet
    /// links of the chain, and not breaks either.
    pub pending: i64,
}

#[derive(Debug, Serialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Break {
    /// Where the chain breaks: the seq the walk expected.
    pub seq: i64,
    /// The row found there, if any.
    pub id: Option<String>,
    /// `missing` (a removed row), `edited` (fields no longer match the hash), `relinked` (its
    /// `prev_hash` is not the previous row's hash), or `unsealed` (a row left out of the chain
    /// below the sealed head).
    pub reason: &'static str,
}

/// Seals the tenant's new rows, then walks the whole chain from the first row: every row up to
/// the sealed head must link and hash; the rows after it are pending, but must still be
/// contiguous (a gap there is a removed row all the same).
pub async fn verify<P: Platform>(p: &P, tenant: &str) -> ApiResult<ChainReport> {
    seal(p, tenant, 5_000).await?;
    let sealed_head = p.query_first::<Sealed>(LAST_SEALED, &[tenant.into()]).await?.map_or(0, |h| h.seq);
    let (mut seq, mut prev) = (0i64, GENESIS.to_string());
    let (mut verified, mut pending) = (0i64, 0i64);
    let mut first_break = None;
    'walk: loop {
        let rows: Vec<ChainRow> = p.query_as(CHAIN_AFTER, &[tenant.into(), Param::Int(seq), Param::Int(500)]).await?;
        for r in &rows {
            let at = |reason| Break { seq: seq + 1, id: Some(r.id.clone()), reason };
            let broken = if r.seq != seq + 1 {
                Some(Break { seq: seq + 1, id: None, reason: "missing" })
            } else if r.seq > sealed_head {
                pending += 1;
                None
            } else if r.hash.is_none() {
                Some(at("unsealed"))
            } else if r.prev_hash.as_deref() != Some(prev.as_str()) {
                Some(at("relinked"))
            } else if r.hash.as_deref() != Some(chain_hash(&prev, r).as_str()) {
                Some(at("edited"))
            } else {
                verified = r.seq;
                prev = r.hash.clone().unwrap_or_default();
                None
            };
            if broken.is_some() {
                first_break = broken;
                break 'walk;
            }
            seq = r.seq;
        }
        if (rows.len() as i64) < 500 {
            break;
        }
    }
    let head_hash = if verified > 0 { Some(prev) } else { None };
    Ok(ChainReport {
        ok: first_break.is_none(),
        rows: verified,
        head: head_hash.map(|hash| Head { seq: verified, hash }),
        first_break,
        pending,
    })
}

/// Who acted, and from where.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    pub role: Option<String>,
    pub ip: String,
    pub user_agent: String,
}

impl Actor {
    /// The Worker itself, in a scheduled or queued job.
    pub fn system() -> Actor {
        Actor { role: Some("system".into()), ip: "internal".into(), user_agent: "cron".into(), ..Actor::default() }
    }
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
    // For a tenant moving between shards, the router holds the row for its new shard.
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
