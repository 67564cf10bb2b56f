//! Writes a control-plane change owes a client's data shard. The change and the writes it owes
//! commit together: the batch that makes the change also holds them in `shard_writes` (in the
//! control plane, written only if the change touched a row). Right after it commits, the same
//! request applies them to the shard and drops the hold; a hold a failed request left behind is
//! applied by the scheduled run. Every relayable statement is idempotent (an event by its id, a
//! pipeline, stage or service by its name), so applying a hold twice writes nothing twice.
//!
//! A held write names its statement (`Write`), never SQL: the table stores data, not code.
//!
//! The router (`platform::router`) relays the audit rows of control-plane changes the same way,
//! through `RELAY`: each tenant's audit log is one chain, on its shard.

use serde_json::{json, Value};

use crate::platform::error::{ApiError, ApiResult};
use crate::platform::ids::new_id;
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

/// Holds writes for a client's shard, only if the change just before it in the batch touched a
/// row (an audit row in between passes that on).
pub const HOLD_IF_CHANGED: &str = "INSERT INTO shard_writes (id, tenant_id, writes, created_at) \
    SELECT ?1, ?2, ?3, ?4 WHERE changes() > 0";
/// Holds writes whatever came before.
pub const HOLD: &str = "INSERT INTO shard_writes (id, tenant_id, writes, created_at) VALUES (?1, ?2, ?3, ?4)";
pub const SELECT_ONE: &str = "SELECT id, tenant_id, writes FROM shard_writes WHERE tenant_id = ?1 AND id = ?2";
/// Holds older than `?1`, oldest first, for the scheduled run. Platform-wide by design.
pub const DUE: &str =
    "SELECT id, tenant_id, writes FROM shard_writes WHERE created_at < ?1 ORDER BY created_at LIMIT ?2";
pub const DROP: &str = "DELETE FROM shard_writes WHERE tenant_id = ?1 AND id = ?2";

// The template statements a hold may name (`templates` builds them): a client's pipelines, stages
// and services, each idempotent by name.
/// A pipeline, unless the client already has one by that name.
pub const ADD_PIPELINE: &str = "INSERT INTO pipelines (id, client_id, name, created_at, updated_at) \
    SELECT ?1, ?2, ?3, ?4, ?4 WHERE NOT EXISTS (SELECT 1 FROM pipelines WHERE client_id = ?2 AND name = ?3)";
/// A stage at the end of a pipeline, unless it has one by that name or is full.
pub const ADD_STAGE: &str = "INSERT INTO pipeline_stages (id, client_id, pipeline_id, name, position, created_at, \
    updated_at) SELECT ?1, ?2, ?3, ?4, coalesce(max(position), -1) + 1, ?5, ?5 \
    FROM pipeline_stages WHERE client_id = ?2 AND pipeline_id = ?3 \
    HAVING count(*) < ?6 AND EXISTS (SELECT 1 FROM pipelines WHERE client_id = ?2 AND id = ?3) \
    AND NOT EXISTS (SELECT 1 FROM pipeline_stages WHERE client_id = ?2 AND pipeline_id = ?3 AND name = ?4)";
/// A service, unless the client already has one by that name.
pub const ADD_SERVICE: &str = "INSERT INTO services (id, client_id, name, duration_min, price_minor, currency, \
    buffer_before_min, buffer_after_min, active, created_at, updated_at) \
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10 \
    WHERE NOT EXISTS (SELECT 1 FROM services WHERE client_id = ?2 AND name = ?3)";

/// Holds one scheduled run applies.
const DUE_BATCH: i64 = 50;
/// How old a hold must be before the scheduled run takes it: the request that made it applies
/// it within the same second unless it failed.
const DUE_AFTER_MS: i64 = 60_000;

/// A statement a hold may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// `events::INSERT_ONCE`.
    Event,
    /// `audit::INSERT_ONCE`.
    Audit,
    /// `plans::INSERT_EVENT_ONCE`: a seat's or a domain's quota crossing.
    UsageEvent,
    /// `ADD_PIPELINE`, `ADD_STAGE`, `ADD_SERVICE`.
    Pipeline,
    Stage,
    Service,
}

impl Write {
    const ALL: [Write; 6] =
        [Write::Event, Write::Audit, Write::UsageEvent, Write::Pipeline, Write::Stage, Write::Service];

    fn name(self) -> &'static str {
        match self {
            Write::Event => "event",
            Write::Audit => "audit",
            Write::UsageEvent => "usage_event",
            Write::Pipeline => "pipeline",
            Write::Stage => "stage",
            Write::Service => "service",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Write::Event => crate::access::events::INSERT_ONCE,
            Write::Audit => crate::access::audit::INSERT_ONCE,
            Write::UsageEvent => crate::access::plans::INSERT_EVENT_ONCE,
            Write::Pipeline => ADD_PIPELINE,
            Write::Stage => ADD_STAGE,
            Write::Service => ADD_SERVICE,
        }
    }

    fn parse(name: &str) -> Option<Write> {
        Write::ALL.into_iter().find(|w| w.name() == name)
    }

    fn of_sql(sql: &str) -> Option<Write> {
        Write::ALL.into_iter().find(|w| w.sql() == sql)
    }
}

/// Writes held for one client's shard, and the hold's id.
pub struct Hold {
    pub id: String,
    pub tenant_id: String,
    pub writes: Vec<(Write, Vec<Param>)>,
}

impl Hold {
    pub fn new(tenant_id: &str) -> ApiResult<Hold> {
        Ok(Hold { id: new_id("sw")?, tenant_id: tenant_id.to_string(), writes: Vec::new() })
    }

    pub fn push(&mut self, w: Write, params: Vec<Param>) {
        self.writes.push((w, params));
    }

    /// Holds a statement built for the shard; only a relayable one (`Write`) may be held.
    pub fn push_stmt(&mut self, s: Stmt) -> ApiResult<()> {
        let w = Write::of_sql(s.sql).ok_or_else(|| {
            let head = s.sql.char_indices().nth(40).map_or(s.sql, |(i, _)| &s.sql[..i]);
            ApiError::Internal(format!("not a relayable statement: {head}"))
        })?;
        self.push(w, s.params);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The statement for the change's batch (`HOLD_IF_CHANGED`).
    pub fn stmt(&self, now: i64) -> Stmt {
        self.stmt_with(HOLD_IF_CHANGED, now)
    }

    fn stmt_with(&self, sql: &'static str, now: i64) -> Stmt {
        let writes: Vec<Value> = self.writes.iter().map(|(w, p)| json!([w.name(), params_json(p)])).collect();
        Stmt::new(
            sql,
            vec![
                self.id.as_str().into(),
                self.tenant_id.as_str().into(),
                Value::Array(writes).to_string().into(),
                Param::Int(now),
            ],
        )
    }
}

fn params_json(params: &[Param]) -> Value {
    params
        .iter()
        .map(|p| match p {
            Param::Null => Value::Null,
            Param::Int(i) => json!(i),
            Param::Real(f) => json!(f),
            Param::Text(s) => json!(s),
        })
        .collect()
}

fn param_of(v: &Value) -> Option<Param> {
    match v {
        Value::Null => Some(Param::Null),
        Value::String(s) => Some(Param::Text(s.clone())),
        Value::Number(n) => n.as_i64().map(Param::Int).or_else(|| n.as_f64().map(Param::Real)),
        _ => None,
    }
}

crate::platform::rows::row! {
    struct Held {
        id: String,
        tenant_id: String,
        writes: String,
    }
}

/// A stored hold's statements, in order.
fn statements(h: &Held) -> ApiResult<Vec<(Write, Stmt)>> {
    parse(&h.writes).ok_or_else(|| ApiError::Internal(format!("shard write {} is unreadable", h.id)))
}

fn parse(writes: &str) -> Option<Vec<(Write, Stmt)>> {
    let list: Vec<(String, Vec<Value>)> = crate::platform::body::parse(writes.as_bytes(), "writes").ok()?;
    list.iter()
        .map(|(name, params)| {
            let w = Write::parse(name)?;
            let params = params.iter().map(param_of).collect::<Option<Vec<_>>>()?;
            Some((w, Stmt::new(w.sql(), params)))
        })
        .collect()
}

/// What the router relays for the layer above: the audit row of a control-plane change becomes
/// a hold in the change's batch (written under the same condition as the row would have been),
/// applied to the tenant's shard once the batch commits.
pub struct AuditRelay;

pub static RELAY: AuditRelay = AuditRelay;

impl crate::platform::router::Relay for AuditRelay {
    fn hold(&self, sql: &str, params: &[Param]) -> Option<Stmt> {
        use crate::access::audit;
        let sql = match sql {
            s if s == audit::INSERT => HOLD,
            s if s == audit::INSERT_IF_CHANGED => HOLD_IF_CHANGED,
            _ => return None,
        };
        let (Some(Param::Text(tenant)), Some(Param::Int(at))) = (params.get(1), params.get(2)) else {
            return None;
        };
        let id = new_id("sw").ok()?;
        let hold = Hold { id, tenant_id: tenant.clone(), writes: vec![(Write::Audit, params.to_vec())] };
        Some(hold.stmt_with(sql, *at))
    }

    fn held_by(&self, stmt: &Stmt) -> Option<String> {
        use crate::access::plans::{CROSSED_DOMAINS, CROSSED_SEATS};
        match (stmt.sql, stmt.params.get(9)) {
            (s, Some(Param::Text(id))) if s == CROSSED_SEATS || s == CROSSED_DOMAINS => Some(id.clone()),
            _ => None,
        }
    }

    fn statements(&self, writes: &str) -> Option<Vec<Stmt>> {
        Some(parse(writes)?.into_iter().map(|(_, s)| s).collect())
    }
}

/// Applies a stored hold to its client's shard in one batch, then drops it. Answers the rows
/// each write changed, in order.
async fn apply_held<P: Platform>(ctx: &Ctx<'_, P>, h: &Held, stmts: Vec<(Write, Stmt)>) -> ApiResult<Vec<u64>> {
    let changed = if stmts.is_empty() {
        Vec::new()
    } else {
        let batch: Vec<Stmt> = stmts.iter().map(|(_, s)| s.clone()).collect();
        let changed = ctx.p.batch(&batch).await?;
        if stmts.iter().any(|(w, _)| *w == Write::Event) {
            ctx.outbox_written();
        }
        changed
    };
    ctx.p.execute(DROP, &[h.tenant_id.as_str().into(), h.id.as_str().into()]).await?;
    Ok(changed)
}

/// After the change's batch: applies its hold, if the change happened (else there is none, and
/// this answers an empty list). `None` when it could not be applied now: the change has
/// committed with its hold, which the scheduled run applies (`apply_due`); it is logged here.
pub async fn apply<P: Platform>(ctx: &Ctx<'_, P>, hold: &Hold) -> Option<Vec<u64>> {
    let applied = async {
        let held: Option<Held> =
            ctx.p.query_first(SELECT_ONE, &[hold.tenant_id.as_str().into(), hold.id.as_str().into()]).await?;
        match held {
            Some(h) => apply_held(ctx, &h, statements(&h)?).await,
            None => Ok(Vec::new()),
        }
    };
    match applied.await {
        Ok(changed) => Some(changed),
        Err(e) => {
            ctx.p.log("warn", &format!("shard write {} left for the scheduled run: {e}", hold.id));
            None
        }
    }
}

/// The scheduled run's pass: holds a failed request left, a bounded batch. A hold that cannot be
/// read is kept and reported (a person must look at it), and the others still go; a store failure
/// ends the pass. A moving tenant's holds wait for its move's flip.
pub async fn apply_due<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Value> {
    let due: Vec<Held> =
        ctx.p.query_as(DUE, &[Param::Int(ctx.p.now_ms() - DUE_AFTER_MS), Param::Int(DUE_BATCH)]).await?;
    let (mut applied, mut waiting, mut unreadable, mut failed) = (0, 0, Vec::new(), Vec::new());
    for h in &due {
        match statements(h) {
            // One hold that cannot be applied (its shard down) does not hold up the others.
            Ok(stmts) => match apply_held(ctx, h, stmts).await {
                Ok(_) => applied += 1,
                // Its tenant is moving between shards: applied on the new one after the flip.
                Err(ApiError::Moving) => waiting += 1,
                Err(e) => failed.push(json!({"id": h.id, "error": e.to_string()})),
            },
            Err(_) => unreadable.push(h.id.clone()),
        }
    }
    Ok(json!({"applied": applied, "waiting": waiting, "unreadable": unreadable, "failed": failed}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_is_named_once_and_parses_back() {
        for w in Write::ALL {
            assert_eq!(Write::parse(w.name()), Some(w));
            assert!(w.sql().to_ascii_lowercase().starts_with("insert"), "{w:?} is not an insert");
        }
        assert_eq!(Write::parse("DELETE FROM contacts"), None);
    }

    #[test]
    fn a_hold_round_trips_its_statements_and_refuses_what_it_did_not_write() {
        let mut hold = Hold { id: "sw_1".into(), tenant_id: "cli_1".into(), writes: Vec::new() };
        hold.push(Write::Service, vec!["svc_1".into(), Param::Int(30), Param::Null, Param::Real(1.5)]);
        let stmt = hold.stmt(5);
        let Param::Text(writes) = &stmt.params[2] else { panic!("writes are text") };
        let held = Held { id: "sw_1".into(), tenant_id: "cli_1".into(), writes: writes.clone() };
        let out = statements(&held).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.sql, ADD_SERVICE);
        assert_eq!(out[0].1.params, vec!["svc_1".into(), Param::Int(30), Param::Null, Param::Real(1.5)]);
        for bad in [r#"[["drop", []]]"#, r#"[["event", [[1]]]]"#, "nonsense"] {
            let h = Held { id: "sw_1".into(), tenant_id: "cli_1".into(), writes: bad.into() };
            assert!(statements(&h).is_err(), "{bad}");
        }
    }
}
