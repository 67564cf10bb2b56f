//! Moving an agency between data shards (ARCHITECTURE.md, "Scaling"): the agency's own rows and
//! its clients' go from the shard they are on to another, with nothing lost and the agency served
//! throughout. A platform admin starts a move (`POST /api/admin/shard-moves`); it then goes on
//! in bounded steps, each picking up where the last stopped (the scheduled run takes one step per
//! move, and `POST /api/admin/shard-moves/{id}/step` takes one at once). The phases:
//!
//! - **settling**: the start fenced the agency's directory rows (`platform::router::fenced`):
//!   their writes are refused with 503 `tenant_moving`, reads go on from the old shard. The move
//!   waits `SHARD_MOVE_SETTLE_MS` for every cached copy of the rows from before the fence (a
//!   gate's, a request's still running) to be gone. Both shards' scheduled scans leave the
//!   agency's tenants alone (`fenced_tenants`) until the move ends.
//! - **clearing**: rows of the agency's tenants on the new shard (from a move that stopped
//!   short) are deleted.
//! - **copying**: table by table, parents before children (`copy_order`), a chunk of rows at a
//!   time in rowid order; a repeat inserts nothing twice.
//! - **verifying**: each table's rows are counted and checksummed on both shards. A difference
//!   starts the copy again (up to `MAX_ROUNDS` copies), then fails the move.
//! - **flipped**: one control-plane batch points the directory rows at the new shard, unfenced.
//!   Rows cached from before the flip still send reads to the old shard (which still has the
//!   rows) and still refuse writes, so the old rows stay for another settling time.
//! - **cleaning**: the old shard's rows are deleted, and the move is `done`.
//!
//! Until the flip a move can be cancelled (or fails): the directory rows are unfenced where they
//! were, and the copies on the new shard deleted (**cancelling**, then `cancelled` or `failed`).
//!
//! Each step holds the move's lease, so a scheduled step, an admin's step and a cancel never run
//! at once, and saves its progress only while it still holds it.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::access::audit::{self, Actor, Event};
use crate::access::roles::{Permission, Principal};
use crate::platform::error::{ApiError, ApiResult, StoreError};
use crate::platform::extract::json_body;
use crate::platform::http::{Request, Response};
use crate::platform::ids::new_id;
use crate::platform::ports::{json_list, Param, Platform, Row, Stmt};
use crate::platform::router::{fenced, unfenced};
use crate::platform::schema::{tenant_column, CONTROL_PLANE, PURGE_ORDER};
use crate::platform::Ctx;

pub const AGENCY_SHARD: &str = "SELECT shard FROM agencies WHERE id = ?1";
/// The agency's clients whose rows are on the shard it is moving off (`?2`, fenced).
pub const MOVING_CLIENTS: &str = "SELECT id FROM clients WHERE agency_id = ?1 AND shard = ?2 ORDER BY id";
/// Fences (or unfences, or flips) the agency's own directory row, if it is where the move says.
pub const SET_AGENCY_SHARD: &str = "UPDATE agencies SET shard = ?3 WHERE id = ?1 AND shard = ?2";
/// The agency's row and its clients' on that shard, in a batch that made the move `?4` or moved
/// it into phase `?5`: written only if that took.
pub const SET_AGENCY_SHARD_WITH: &str = "UPDATE agencies SET shard = ?3 WHERE id = ?1 AND shard = ?2 \
    AND EXISTS (SELECT 1 FROM shard_moves m WHERE m.id = ?4 AND m.agency_id = ?1 AND m.phase = ?5)";
pub const SET_CLIENTS_SHARD_WITH: &str = "UPDATE clients SET shard = ?3 WHERE agency_id = ?1 AND shard = ?2 \
    AND EXISTS (SELECT 1 FROM shard_moves m WHERE m.id = ?4 AND m.agency_id = ?1 AND m.phase = ?5)";
/// A move, made only if the agency's row was fenced for it (?8 the fenced shard); the unique
/// index allows one move of an agency under way.
pub const INSERT_MOVE: &str = "INSERT INTO shard_moves (id, agency_id, from_shard, to_shard, phase, ready_at, \
    requested_by, created_at, updated_at) SELECT ?1, ?2, ?3, ?4, 'settling', ?5, ?6, ?7, ?7 \
    WHERE EXISTS (SELECT 1 FROM agencies WHERE id = ?2 AND shard = ?8)";
pub const SELECT_MOVE: &str = "SELECT id, agency_id, from_shard, to_shard, phase, table_at, cursor, target_cursor, \
    tally, verified, copied, deleted, rounds, error, ready_at, requested_by, created_at, updated_at, finished_at \
    FROM shard_moves WHERE id = ?1";
/// In id order, optionally one agency's (`?1`), after the cursor `?2` (a move id).
pub const LIST_MOVES: &str = "SELECT id, agency_id, from_shard, to_shard, phase, table_at, cursor, target_cursor, \
    tally, verified, copied, deleted, rounds, error, ready_at, requested_by, created_at, updated_at, finished_at \
    FROM shard_moves WHERE (?1 = '' OR agency_id = ?1) AND id > ?2 ORDER BY id LIMIT ?3";
/// Moves under way, for the scheduled run: least recently stepped first.
pub const UNDER_WAY: &str = "SELECT id FROM shard_moves WHERE phase NOT IN ('done', 'cancelled', 'failed') \
    ORDER BY updated_at LIMIT ?1";
/// Takes the move's lease until `?2`, unless another step holds it.
pub const LEASE: &str = "UPDATE shard_moves SET lease_until = ?2 WHERE id = ?1 \
    AND phase NOT IN ('done', 'cancelled', 'failed') AND (lease_until IS NULL OR lease_until < ?3)";
pub const RELEASE: &str = "UPDATE shard_moves SET lease_until = NULL WHERE id = ?1 AND lease_until = ?2";
/// A step's progress, saved only under the lease it took and from the phase it read.
pub const SAVE: &str = "UPDATE shard_moves SET phase = ?2, table_at = ?3, cursor = ?4, target_cursor = ?5, \
    tally = ?6, verified = ?7, copied = ?8, deleted = ?9, rounds = ?10, error = ?11, ready_at = ?12, \
    updated_at = ?13, finished_at = ?14 WHERE id = ?1 AND lease_until = ?15 AND phase = ?16";
/// Exports under way read tables by rowid, which a copy does not keep: a move waits for them.
pub const EXPORTS_UNDER_WAY: &str = "SELECT count(*) AS n FROM exports \
    WHERE client_id IN (SELECT value FROM json_each(?1)) AND status IN ('queued', 'running')";
/// Fences the tenants (a JSON list) from a shard's scheduled scans.
pub const FENCE_SCANS: &str = "INSERT INTO fenced_tenants (tenant_id, move_id, since) \
    SELECT value, ?2, ?3 FROM json_each(?1) WHERE true ON CONFLICT (tenant_id) DO NOTHING";
pub const UNFENCE_SCANS: &str = "DELETE FROM fenced_tenants WHERE move_id = ?1";

/// Rows read, copied or deleted per statement.
const CHUNK: i64 = 200;
/// The most JSON one insert carries (D1 takes a bound string of up to 2 MB).
const INSERT_BYTES: usize = 512 * 1024;
/// Units of work per step: each a few statements, the whole well inside a Worker's budget.
const UNITS_PER_STEP: usize = 12;
/// How long a step's lease lasts: far longer than a step takes.
const LEASE_MS: i64 = 120_000;
/// Copies a move starts before a verification that keeps failing fails it.
const MAX_ROUNDS: i64 = 3;
/// Moves the scheduled run steps each time.
const DUE_MOVES: i64 = 5;

/// Columns a copy lets the new shard number afresh (an `INTEGER PRIMARY KEY` is the shard's
/// rowid, and another tenant may hold the same number there), and how a row that points at one
/// finds it again. A checksum leaves them out.
pub const RENUMBERED: &[(&str, &str, Option<&str>)] = &[
    ("events", "seq", None),
    (
        "webhook_deliveries",
        "event_seq",
        Some("(SELECT e.seq FROM events e WHERE e.id = json_extract(value, '$.event_id'))"),
    ),
];

/// The tables a move copies, parents before the children whose foreign keys name them: the data
/// shards' tables of `PURGE_ORDER`, the other way round. A test holds it to the shard schema.
pub fn copy_order() -> Vec<&'static str> {
    PURGE_ORDER.iter().rev().copied().filter(|t| !CONTROL_PLANE.contains(t)).collect()
}

/// The order rows are deleted in: children first.
fn delete_order() -> Vec<&'static str> {
    let mut order = copy_order();
    order.reverse();
    order
}

crate::platform::rows::row! {
    #[derive(Debug, Clone)]
    pub struct Move {
        pub id: String,
        pub agency_id: String,
        pub from_shard: i64,
        pub to_shard: i64,
        pub phase: String,
        pub table_at: i64,
        pub cursor: i64,
        pub target_cursor: i64,
        pub tally: String,
        pub verified: String,
        pub copied: i64,
        pub deleted: i64,
        pub rounds: i64,
        pub error: Option<String>,
        pub ready_at: i64,
        pub requested_by: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        pub finished_at: Option<i64>,
    }
}

impl Move {
    fn json(&self) -> Value {
        let table = match self.phase.as_str() {
            "clearing" | "cancelling" | "cleaning" => delete_order().get(self.table_at as usize).copied(),
            "copying" | "verifying" => copy_order().get(self.table_at as usize).copied(),
            _ => None,
        };
        json!({
            "id": self.id,
            "agency_id": self.agency_id,
            "from_shard": self.from_shard,
            "to_shard": self.to_shard,
            "phase": self.phase,
            "table": table,
            "rows_copied": self.copied,
            "rows_deleted": self.deleted,
            "rounds": self.rounds,
            "verified": serde_json::from_str::<Value>(&self.verified).unwrap_or_else(|_| json!({})),
            "error": self.error,
            "ready_at": self.ready_at,
            "requested_by": self.requested_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        })
    }

    fn ended(&self) -> bool {
        matches!(self.phase.as_str(), "done" | "cancelled" | "failed")
    }
}

fn platform_admin(who: &Principal) -> ApiResult<()> {
    if who.can(Permission::PlatformAdmin) {
        Ok(())
    } else {
        Err(ApiError::forbidden("platform admins only"))
    }
}

async fn load<P: Platform>(ctx: &Ctx<'_, P>, id: &str) -> ApiResult<Move> {
    ctx.p.query_as::<Move>(SELECT_MOVE, &[id.into()]).await?.into_iter().next().ok_or(ApiError::NotFound)
}

/// Runs `sql` on shard `n`'s database (the router's scans go to the shard chosen).
async fn query_on<P: Platform>(ctx: &Ctx<'_, P>, n: i64, sql: &str, params: &[Param]) -> ApiResult<Vec<Row>> {
    ctx.p.scan_on(Some(n as usize));
    let rows = ctx.p.query(sql, params).await;
    ctx.p.scan_on(None);
    Ok(rows?)
}

async fn execute_on<P: Platform>(ctx: &Ctx<'_, P>, n: i64, sql: &str, params: &[Param]) -> ApiResult<u64> {
    ctx.p.scan_on(Some(n as usize));
    let changed = ctx.p.execute(sql, params).await;
    ctx.p.scan_on(None);
    Ok(changed?)
}

/// The tenants a move carries: the agency and its clients on the shard it is moving off.
async fn tenants<P: Platform>(ctx: &Ctx<'_, P>, m: &Move) -> ApiResult<String> {
    // Where the directory rows point in each phase: fenced until the flip or the cancel.
    let from = match m.phase.as_str() {
        "flipped" | "cleaning" | "done" => m.to_shard,
        "cancelling" | "cancelled" | "failed" => m.from_shard,
        _ => fenced(m.from_shard),
    };
    let rows = ctx.p.query(MOVING_CLIENTS, &[m.agency_id.as_str().into(), Param::Int(from)]).await?;
    let mut ids = vec![m.agency_id.clone()];
    ids.extend(rows.iter().filter_map(|r| r.get("id").and_then(Value::as_str).map(String::from)));
    Ok(json_list(ids))
}

crate::platform::body::body! {
    struct NewMove {
        agency_id: String,
        to_shard: i64,
    }
}

/// `POST /api/admin/shard-moves`: fences the agency and starts its move. 201 with the move.
pub async fn start<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    platform_admin(who)?;
    let body: NewMove = json_body(req, &["id", "from_shard", "phase"])?;
    let shards = ctx.p.shard_count() as i64;
    if shards < 2 {
        return Err(ApiError::conflict("not_sharded", "this deployment has fewer than two data shards"));
    }
    if !(0..shards).contains(&body.to_shard) {
        return Err(ApiError::invalid("invalid_field", format!("to_shard must be from 0 to {}", shards - 1)));
    }
    let row = ctx.p.query(AGENCY_SHARD, &[body.agency_id.as_str().into()]).await?;
    let shard = row.first().and_then(|r| r.get("shard")).and_then(Value::as_i64).ok_or(ApiError::NotFound)?;
    let (from, moving) = unfenced(shard);
    if moving {
        return Err(ApiError::conflict("move_under_way", "this agency is already moving"));
    }
    if from == body.to_shard {
        return Err(ApiError::conflict("already_there", "this agency is on that shard already"));
    }
    let clients = ctx.p.query(MOVING_CLIENTS, &[body.agency_id.as_str().into(), Param::Int(from)]).await?;
    let client_ids = json_list(clients.iter().filter_map(|r| r.get("id").and_then(Value::as_str)));
    let exports = query_on(ctx, from, EXPORTS_UNDER_WAY, &[client_ids.into()]).await?;
    if exports.first().and_then(|r| r.get("n")).and_then(Value::as_i64).unwrap_or(0) > 0 {
        return Err(ApiError::conflict("export_under_way", "a client of this agency has an export under way"));
    }
    let now = ctx.p.now_ms();
    let id = new_id("mov")?;
    let agency = body.agency_id.as_str();
    let stmts = [
        Stmt::new(SET_AGENCY_SHARD, vec![agency.into(), Param::Int(from), Param::Int(fenced(from))]),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: "platform",
                action: "shard_move.started",
                target_type: "agency",
                target_id: Some(agency),
                metadata: json!({"move_id": id, "from_shard": from, "to_shard": body.to_shard}),
            },
        )?,
        Stmt::new(
            INSERT_MOVE,
            vec![
                id.as_str().into(),
                agency.into(),
                Param::Int(from),
                Param::Int(body.to_shard),
                Param::Int(now + ctx.cfg.shard_move_settle_ms),
                who.user_id.as_str().into(),
                Param::Int(now),
                Param::Int(fenced(from)),
            ],
        ),
        // Only with the move: an agency whose row moved meanwhile leaves its clients as they are.
        Stmt::new(
            SET_CLIENTS_SHARD_WITH,
            vec![agency.into(), Param::Int(from), Param::Int(fenced(from)), id.as_str().into(), "settling".into()],
        ),
    ];
    let changed = match ctx.p.batch(&stmts).await {
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict("move_under_way", "this agency is already moving"))
        }
        other => other?,
    };
    if changed.first().copied().unwrap_or(0) == 0 {
        return Err(ApiError::conflict("move_under_way", "this agency's shard changed meanwhile; read it again"));
    }
    let m = load(ctx, &id).await?;
    let tenants = tenants(ctx, &m).await?;
    fence_scans(ctx, &m, &tenants).await?;
    forget(ctx, &tenants);
    Ok(Response::json(201, &m.json()))
}

/// Both shards' scans leave the moving tenants alone (again: a start cut short may not have).
async fn fence_scans<P: Platform>(ctx: &Ctx<'_, P>, m: &Move, tenants: &str) -> ApiResult<()> {
    for shard in [m.from_shard, m.to_shard] {
        let params = [tenants.into(), m.id.as_str().into(), Param::Int(ctx.p.now_ms())];
        execute_on(ctx, shard, FENCE_SCANS, &params).await?;
    }
    Ok(())
}

/// This isolate's cached gates of the moving tenants (a JSON list) go; the others' expire.
fn forget<P: Platform>(ctx: &Ctx<'_, P>, tenants: &str) {
    for t in crate::platform::body::parse::<Vec<String>>(tenants.as_bytes(), "tenants").unwrap_or_default() {
        ctx.tenant_changed(&t);
    }
}

/// `GET /api/admin/shard-moves[?agency_id=&cursor=&limit=]`: in id order.
pub async fn list<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    platform_admin(who)?;
    let (cursor, limit) = crate::platform::extract::page_params(req)?;
    let agency = req.query_param("agency_id").unwrap_or_default();
    let moves: Vec<Move> = ctx.p.query_as(LIST_MOVES, &[agency.into(), cursor.into(), Param::Int(limit)]).await?;
    let items: Vec<Value> = moves.iter().map(Move::json).collect();
    Ok(crate::platform::extract::page_response(&items, limit, |v| v["id"].as_str().map(String::from)))
}

/// `GET /api/admin/shard-moves/{id}`.
pub async fn get<P: Platform>(ctx: &Ctx<'_, P>, who: &Principal, id: &str) -> ApiResult<Response> {
    platform_admin(who)?;
    Ok(Response::json(200, &load(ctx, id).await?.json()))
}

/// `POST /api/admin/shard-moves/{id}/step`: one step now. 200 with the move, and `stepped`:
/// false when another step holds the move or it has ended.
pub async fn step_now<P: Platform>(ctx: &Ctx<'_, P>, who: &Principal, id: &str) -> ApiResult<Response> {
    platform_admin(who)?;
    let m = load(ctx, id).await?;
    let (m, stepped) = step(ctx, m).await?;
    let mut body = m.json();
    body["stepped"] = stepped.into();
    Ok(Response::json(200, &body))
}

/// `POST /api/admin/shard-moves/{id}/cancel`: before the flip, unfences the agency where it
/// was; its copies on the new shard are deleted by the steps that follow.
pub async fn cancel<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, id: &str) -> ApiResult<Response> {
    platform_admin(who)?;
    let m = load(ctx, id).await?;
    if !matches!(m.phase.as_str(), "settling" | "clearing" | "copying" | "verifying") {
        return Err(ApiError::conflict("move_flipped", format!("a move in phase {} cannot be cancelled", m.phase)));
    }
    let lease =
        take_lease(ctx, &m).await?.ok_or_else(|| ApiError::conflict("move_busy", "a step is running; try again"))?;
    // A verification that failed earlier is not why this move ends.
    let m = Move { error: None, ..m };
    let actor = audit::actor(req, Some(who));
    let result = async { unfence(ctx, &m, &m.phase, lease, &actor, &tenants(ctx, &m).await?).await }.await;
    release(ctx, &m.id, lease).await;
    result?;
    Ok(Response::json(200, &load(ctx, id).await?.json()))
}

/// Moves `m` from phase `was` on to its phase and repoints the agency's directory rows from
/// shard `from` to `to` (each a directory value, fenced or not), with the audit row: one batch,
/// all or nothing, under the lease. Answers whether it took.
async fn repoint<P: Platform>(
    ctx: &Ctx<'_, P>,
    m: &Move,
    was: &str,
    lease: i64,
    (from, to): (i64, i64),
    actor: &Actor,
    event: (&str, Value),
) -> ApiResult<bool> {
    let now = ctx.p.now_ms();
    let agency = m.agency_id.as_str();
    let with = |sql| {
        Stmt::new(
            sql,
            vec![agency.into(), Param::Int(from), Param::Int(to), m.id.as_str().into(), m.phase.as_str().into()],
        )
    };
    let stmts = [
        save_stmt(m, was, now, lease),
        with(SET_AGENCY_SHARD_WITH),
        audit::after_change(
            actor,
            Event {
                tenant_id: "platform",
                action: event.0,
                target_type: "agency",
                target_id: Some(agency),
                metadata: event.1,
            },
            now,
        )?,
        with(SET_CLIENTS_SHARD_WITH),
    ];
    Ok(ctx.p.batch_changed(&stmts).await?)
}

/// The directory rows back where they were, and the move to `cancelling` (its copies on the new
/// shard are deleted by the steps that follow).
async fn unfence<P: Platform>(
    ctx: &Ctx<'_, P>,
    m: &Move,
    was: &str,
    lease: i64,
    actor: &Actor,
    tenants: &str,
) -> ApiResult<()> {
    let mut next = m.clone();
    next.phase = "cancelling".into();
    next.table_at = 0;
    next.cursor = 0;
    next.target_cursor = 0;
    let action = if m.error.is_some() { "shard_move.failed" } else { "shard_move.cancelled" };
    let metadata = json!({"move_id": m.id, "from_shard": m.from_shard, "to_shard": m.to_shard, "error": m.error});
    let shards = (fenced(m.from_shard), m.from_shard);
    if !repoint(ctx, &next, was, lease, shards, actor, (action, metadata)).await? {
        return Err(ApiError::conflict("move_busy", "the move changed meanwhile; read it again"));
    }
    // The old shard's scans take the agency's rows up again at once: they are its rows.
    execute_on(ctx, m.from_shard, UNFENCE_SCANS, &[m.id.as_str().into()]).await?;
    forget(ctx, tenants);
    Ok(())
}

/// Gives the lease back. A release that fails only makes the next step wait out `LEASE_MS`.
async fn release<P: Platform>(ctx: &Ctx<'_, P>, id: &str, lease: i64) {
    if let Err(e) = ctx.p.execute(RELEASE, &[id.into(), Param::Int(lease)]).await {
        ctx.p.log("warn", &format!("shard move {id}: the lease was not released ({e}); it expires"));
    }
}

async fn take_lease<P: Platform>(ctx: &Ctx<'_, P>, m: &Move) -> ApiResult<Option<i64>> {
    let now = ctx.p.now_ms();
    let until = now + LEASE_MS;
    let got = ctx.p.execute(LEASE, &[m.id.as_str().into(), Param::Int(until), Param::Int(now)]).await?;
    Ok((got > 0).then_some(until))
}

/// The scheduled run's share: one step of each move under way. Answers what each did.
pub async fn step_due<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Value> {
    let rows = ctx.p.query(UNDER_WAY, &[Param::Int(DUE_MOVES)]).await?;
    let mut out = Vec::new();
    let mut failed = Vec::new();
    // One move's failure does not keep the others from their step.
    for id in rows.iter().filter_map(|r| r.get("id").and_then(Value::as_str)) {
        match Box::pin(async { step(ctx, load(ctx, id).await?).await }).await {
            Ok((m, stepped)) => out.push(json!({"id": m.id, "phase": m.phase, "stepped": stepped})),
            Err(e) => failed.push(format!("{id}: {e}")),
        }
    }
    if failed.is_empty() {
        Ok(Value::Array(out))
    } else {
        Err(ApiError::Internal(format!("shard moves: {}", failed.join("; "))))
    }
}

/// One step: the move's lease, then up to `UNITS_PER_STEP` units of work, each saved. A step
/// that fails leaves the move where its last unit saved it, for the next.
async fn step<P: Platform>(ctx: &Ctx<'_, P>, m: Move) -> ApiResult<(Move, bool)> {
    if m.ended() {
        return Ok((m, false));
    }
    let Some(lease) = take_lease(ctx, &m).await? else { return Ok((m, false)) };
    let id = m.id.clone();
    let result = run(ctx, m, lease).await;
    release(ctx, &id, lease).await;
    Ok((result?, true))
}

async fn run<P: Platform>(ctx: &Ctx<'_, P>, mut m: Move, lease: i64) -> ApiResult<Move> {
    let tenants = tenants(ctx, &m).await?;
    for _ in 0..UNITS_PER_STEP {
        let before = m.clone();
        let now = ctx.p.now_ms();
        let waiting = matches!(m.phase.as_str(), "settling" | "flipped") && now < m.ready_at;
        if m.ended() || waiting {
            break;
        }
        if m.phase == "flipped" && !waiting {
            // The step that flipped may have stopped before the new shard's scans took the
            // rows up.
            execute_on(ctx, m.to_shard, UNFENCE_SCANS, &[m.id.as_str().into()]).await?;
        }
        unit(ctx, &mut m, &tenants).await?;
        m.updated_at = now;
        match m.phase.as_str() {
            "flip" => {
                m.phase = "flipped".into();
                m.table_at = 0;
                m.error = None;
                m.ready_at = now + ctx.cfg.shard_move_settle_ms;
                let metadata = json!({"move_id": m.id, "from_shard": m.from_shard, "to_shard": m.to_shard,
                    "rows_copied": m.copied, "verified": serde_json::from_str::<Value>(&m.verified).unwrap_or_default()});
                let shards = (fenced(m.from_shard), m.to_shard);
                let event = ("shard_move.flipped", metadata);
                if !repoint(ctx, &m, &before.phase, lease, shards, &Actor::system(), event).await? {
                    return load(ctx, &m.id).await;
                }
                // The new shard's scans take the rows up; the old rows wait for the cleaning.
                execute_on(ctx, m.to_shard, UNFENCE_SCANS, &[m.id.as_str().into()]).await?;
                forget(ctx, &tenants);
                return Ok(m);
            }
            "failing" => {
                unfence(ctx, &m, &before.phase, lease, &Actor::system(), &tenants).await?;
                return load(ctx, &m.id).await;
            }
            _ => {}
        }
        let saved = if m.ended() {
            // The move's end and its audit row commit together.
            let stmts = [save_stmt(&m, &before.phase, now, lease), end_audit(&m, now)?];
            ctx.p.batch(&stmts).await?.first().copied().unwrap_or(0)
        } else {
            ctx.p.execute(SAVE, &save_stmt(&m, &before.phase, now, lease).params).await?
        };
        if saved == 0 {
            // The lease ran out or a cancel took the move: what this step read is stale.
            return load(ctx, &m.id).await;
        }
    }
    Ok(m)
}

fn save_stmt(m: &Move, was: &str, now: i64, lease: i64) -> Stmt {
    Stmt::new(
        SAVE,
        vec![
            m.id.as_str().into(),
            m.phase.as_str().into(),
            Param::Int(m.table_at),
            Param::Int(m.cursor),
            Param::Int(m.target_cursor),
            m.tally.as_str().into(),
            m.verified.as_str().into(),
            Param::Int(m.copied),
            Param::Int(m.deleted),
            Param::Int(m.rounds),
            m.error.as_deref().map_or(Param::Null, Param::from),
            Param::Int(m.ready_at),
            Param::Int(now),
            m.finished_at.map_or(Param::Null, Param::Int),
            Param::Int(lease),
            was.into(),
        ],
    )
}

/// The audit row of a move's end, for the batch that saves it.
fn end_audit(m: &Move, now: i64) -> ApiResult<Stmt> {
    let action = match m.phase.as_str() {
        "done" => "shard_move.finished",
        "failed" => "shard_move.failed_cleaned_up",
        _ => "shard_move.cancelled_cleaned_up",
    };
    audit::after_change(
        &Actor::system(),
        Event {
            tenant_id: "platform",
            action,
            target_type: "agency",
            target_id: Some(&m.agency_id),
            metadata: json!({"move_id": m.id, "rows_copied": m.copied, "rows_deleted": m.deleted, "error": m.error}),
        },
        now,
    )
}

/// One unit of work in the move's phase, applied to `m` (saved by the caller). Two phases are
/// the caller's to enter, each with its directory change: `flip` and `failing`.
async fn unit<P: Platform>(ctx: &Ctx<'_, P>, m: &mut Move, tenants: &str) -> ApiResult<()> {
    match m.phase.as_str() {
        "settling" => {
            fence_scans(ctx, m, tenants).await?;
            m.phase = "clearing".into();
            m.table_at = 0;
        }
        "clearing" => {
            if delete_unit(ctx, m, m.to_shard, tenants).await? {
                m.phase = "copying".into();
                m.table_at = 0;
                m.cursor = 0;
            }
        }
        "copying" => {
            if copy_unit(ctx, m, tenants).await? {
                m.phase = "verifying".into();
                m.table_at = 0;
                m.cursor = 0;
                m.target_cursor = 0;
                m.tally = "{}".into();
                m.verified = "{}".into();
            }
        }
        "verifying" => match verify_unit(ctx, m, tenants).await? {
            Verified::More => {}
            Verified::Differs(why) if m.rounds < MAX_ROUNDS => {
                m.error = Some(why);
                m.rounds += 1;
                m.phase = "clearing".into();
                m.table_at = 0;
                m.cursor = 0;
            }
            Verified::Differs(why) => {
                m.error = Some(format!("{why}; after {} copies the move gives up", m.rounds));
                m.phase = "failing".into();
            }
            Verified::All => m.phase = "flip".into(),
        },
        "flipped" => {
            m.phase = "cleaning".into();
            m.table_at = 0;
        }
        "cleaning" => {
            if delete_unit(ctx, m, m.from_shard, tenants).await? {
                execute_on(ctx, m.from_shard, UNFENCE_SCANS, &[m.id.as_str().into()]).await?;
                m.phase = "done".into();
                m.finished_at = Some(ctx.p.now_ms());
            }
        }
        "cancelling" => {
            if delete_unit(ctx, m, m.to_shard, tenants).await? {
                for shard in [m.to_shard, m.from_shard] {
                    execute_on(ctx, shard, UNFENCE_SCANS, &[m.id.as_str().into()]).await?;
                }
                m.phase = if m.error.is_some() { "failed" } else { "cancelled" }.into();
                m.finished_at = Some(ctx.p.now_ms());
            }
        }
        other => return Err(ApiError::Internal(format!("move {} is in no known phase: {other}", m.id))),
    }
    Ok(())
}

/// Deletes a chunk of the tenants' rows on `shard`, children first. Answers whether none are left.
async fn delete_unit<P: Platform>(ctx: &Ctx<'_, P>, m: &mut Move, shard: i64, tenants: &str) -> ApiResult<bool> {
    let order = delete_order();
    while let Some(table) = order.get(m.table_at as usize) {
        let column = tenant_column(table).ok_or_else(|| ApiError::Internal(format!("{table} has no tenant column")))?;
        // Tables and columns come from the schema map, never from input.
        let sql = format!(
            "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} \
             WHERE {column} IN (SELECT value FROM json_each(?1)) LIMIT {CHUNK})"
        );
        let n = execute_on(ctx, shard, &sql, &[tenants.into()]).await?;
        m.deleted += n as i64;
        if (n as i64) == CHUNK {
            return Ok(false);
        }
        m.table_at += 1;
    }
    Ok(true)
}

/// The tenants' next rows of the table at `table_at` on `shard`, after rowid `after`.
async fn read_chunk<P: Platform>(
    ctx: &Ctx<'_, P>,
    table: &str,
    shard: i64,
    after: i64,
    tenants: &str,
) -> ApiResult<Vec<Row>> {
    let column = tenant_column(table).ok_or_else(|| ApiError::Internal(format!("{table} has no tenant column")))?;
    let sql = format!(
        "SELECT rowid AS move_rowid, * FROM {table} WHERE {column} IN (SELECT value FROM json_each(?1)) \
         AND rowid > ?2 ORDER BY rowid LIMIT {CHUNK}"
    );
    query_on(ctx, shard, &sql, &[tenants.into(), Param::Int(after)]).await
}

fn rowid(r: &Row) -> i64 {
    r.get("move_rowid").and_then(Value::as_i64).unwrap_or(0)
}

/// Copies a chunk of the table at `table_at`. Answers whether every table is copied.
async fn copy_unit<P: Platform>(ctx: &Ctx<'_, P>, m: &mut Move, tenants: &str) -> ApiResult<bool> {
    let order = copy_order();
    let Some(table) = order.get(m.table_at as usize) else { return Ok(true) };
    let rows = read_chunk(ctx, table, m.from_shard, m.cursor, tenants).await?;
    if rows.is_empty() {
        m.table_at += 1;
        m.cursor = 0;
        return Ok(m.table_at as usize >= order.len());
    }
    let Some(first) = rows.first() else { return Ok(false) };
    let sql = insert_sql(table, first);
    let mut batch: Vec<Value> = Vec::new();
    let mut bytes = 0;
    for r in &rows {
        let v = Value::Object(r.clone());
        bytes += v.to_string().len();
        batch.push(v);
        if bytes >= INSERT_BYTES {
            execute_on(ctx, m.to_shard, &sql, &[Value::Array(std::mem::take(&mut batch)).to_string().into()]).await?;
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        execute_on(ctx, m.to_shard, &sql, &[Value::Array(batch).to_string().into()]).await?;
    }
    m.copied += rows.len() as i64;
    m.cursor = rows.last().map_or(m.cursor, rowid);
    Ok(false)
}

/// An insert of rows given as a JSON list of objects, each column read from its key; a row
/// already there (a repeated chunk) is left as it is.
fn insert_sql(table: &str, row: &Row) -> String {
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for col in row.keys().filter(|c| *c != "move_rowid") {
        match RENUMBERED.iter().find(|(t, c, _)| t == &table && c == col) {
            Some((_, _, None)) => continue,
            Some((_, _, Some(expr))) => values.push((*expr).to_string()),
            None => values.push(format!("json_extract(value, '$.{col}')")),
        }
        columns.push(col.as_str());
    }
    format!(
        "INSERT INTO {table} ({}) SELECT {} FROM json_each(?1) WHERE true ON CONFLICT DO NOTHING",
        columns.join(", "),
        values.join(", ")
    )
}

/// A row's checksum: SHA-256 over its columns in name order, renumbered ones left out, the
/// first 8 bytes as a number. A table's is the sum of its rows', so the order they are read in
/// does not matter.
pub fn row_sum(table: &str, row: &Row) -> u64 {
    let mut cols: Vec<(&String, &Value)> = row
        .iter()
        .filter(|(c, _)| *c != "move_rowid" && !RENUMBERED.iter().any(|(t, rc, _)| t == &table && rc == c))
        .collect();
    cols.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Sha256::new();
    for (c, v) in cols {
        h.update(c.as_bytes());
        h.update([0x1f]);
        h.update(v.to_string().as_bytes());
        h.update([0x1e]);
    }
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first)
}

enum Verified {
    More,
    Differs(String),
    All,
}

/// A side's tally of a table so far: rows and summed checksums.
fn tally_of(t: &Map<String, Value>, side: &str) -> (i64, u64) {
    let rows = t.get(side).and_then(|s| s.get("rows")).and_then(Value::as_i64).unwrap_or(0);
    let sum = t
        .get(side)
        .and_then(|s| s.get("sum"))
        .and_then(Value::as_str)
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .unwrap_or(0);
    (rows, sum)
}

/// Reads the next chunk of the table at `table_at` on each side not yet read to the end (a
/// cursor of -1), adding to its tally; at the end of both, compares them.
async fn verify_unit<P: Platform>(ctx: &Ctx<'_, P>, m: &mut Move, tenants: &str) -> ApiResult<Verified> {
    let order = copy_order();
    let Some(table) = order.get(m.table_at as usize).copied() else { return Ok(Verified::All) };
    let mut tally: Map<String, Value> = crate::platform::body::parse(m.tally.as_bytes(), "tally").unwrap_or_default();
    for (side, shard) in [("source", m.from_shard), ("target", m.to_shard)] {
        let cursor = if side == "source" { m.cursor } else { m.target_cursor };
        if cursor < 0 {
            continue;
        }
        let rows = read_chunk(ctx, table, shard, cursor, tenants).await?;
        let (mut n, mut sum) = tally_of(&tally, side);
        for r in &rows {
            n += 1;
            sum = sum.wrapping_add(row_sum(table, r));
        }
        tally.insert(side.into(), json!({"rows": n, "sum": format!("{sum:016x}")}));
        let next = if (rows.len() as i64) < CHUNK { -1 } else { rows.last().map_or(cursor, rowid) };
        if side == "source" {
            m.cursor = next;
        } else {
            m.target_cursor = next;
        }
    }
    if m.cursor >= 0 || m.target_cursor >= 0 {
        m.tally = Value::Object(tally).to_string();
        return Ok(Verified::More);
    }
    let (source, target) = (tally_of(&tally, "source"), tally_of(&tally, "target"));
    let mut verified: Map<String, Value> =
        crate::platform::body::parse(m.verified.as_bytes(), "verified").unwrap_or_default();
    verified.insert(
        table.into(),
        json!({"rows": source.0, "checksum": format!("{:016x}", source.1), "matches": source == target}),
    );
    m.verified = Value::Object(verified).to_string();
    m.tally = "{}".into();
    m.cursor = 0;
    m.target_cursor = 0;
    if source != target {
        return Ok(Verified::Differs(format!(
            "{table}: {} rows (checksum {:016x}) on shard {}, {} rows (checksum {:016x}) on shard {}",
            source.0, source.1, m.from_shard, target.0, target.1, m.to_shard
        )));
    }
    m.table_at += 1;
    Ok(if m.table_at as usize >= order.len() { Verified::All } else { Verified::More })
}
