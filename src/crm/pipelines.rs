//! Pipelines and their ordered stages, and the board: one pipeline's stages, in order, each with
//! its first page of deals, its count and its sum per currency.

use serde::Serialize;
use serde_json::json;

use super::deals::Deal;
use crate::access::audit::{self, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, ClientScope};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{json_body, page_params, page_response, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_id, new_id};
use crate::platform::ports::{col_i64, decode, json_list, Database, Param, Platform, Stmt};
use crate::platform::Ctx;

/// Stages one pipeline may have.
pub const MAX_STAGES: usize = 30;

pub const LIST: &str = "SELECT id, client_id, name, created_at, updated_at FROM pipelines \
    WHERE client_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
pub const SELECT_ONE: &str =
    "SELECT id, client_id, name, created_at, updated_at FROM pipelines WHERE client_id = ?1 AND id = ?2";
pub const INSERT: &str =
    "INSERT INTO pipelines (id, client_id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)";
pub const RENAME: &str = "UPDATE pipelines SET name = ?3, updated_at = ?4 WHERE client_id = ?1 AND id = ?2";
/// A pipeline goes only when no deal is in it, decided by the delete itself.
pub const DELETE: &str = "DELETE FROM pipelines WHERE client_id = ?1 AND id = ?2 \
    AND NOT EXISTS (SELECT 1 FROM deals WHERE client_id = ?1 AND pipeline_id = ?2)";
pub const DEALS_IN: &str = "SELECT count(*) AS n FROM deals WHERE client_id = ?1 AND pipeline_id = ?2";

pub const STAGES_OF: &str = "SELECT id, client_id, pipeline_id, name, position, created_at, updated_at \
    FROM pipeline_stages WHERE client_id = ?1 AND pipeline_id IN (SELECT value FROM json_each(?2)) \
    ORDER BY pipeline_id, position, id";
pub const STAGE: &str = "SELECT id, client_id, pipeline_id, name, position, created_at, updated_at \
    FROM pipeline_stages WHERE client_id = ?1 AND pipeline_id = ?2 AND id = ?3";
pub const INSERT_STAGE: &str = "INSERT INTO pipeline_stages (id, client_id, pipeline_id, name, position, \
    created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";
/// Appends a stage after the last one, while the pipeline has room, in one statement.
pub const APPEND_STAGE: &str = "INSERT INTO pipeline_stages (id, client_id, pipeline_id, name, position, \
    created_at, updated_at) SELECT ?1, ?2, ?3, ?4, coalesce(max(position), -1) + 1, ?5, ?5 \
    FROM pipeline_stages WHERE client_id = ?2 AND pipeline_id = ?3 \
    HAVING count(*) < ?6 AND EXISTS (SELECT 1 FROM pipelines WHERE client_id = ?2 AND id = ?3)";
pub const RENAME_STAGE: &str =
    "UPDATE pipeline_stages SET name = ?4, updated_at = ?5 WHERE client_id = ?1 AND pipeline_id = ?2 AND id = ?3";
/// Sets every stage's position from ?3, a JSON array of all of the pipeline's stage ids in their
/// new order; it changes nothing unless ?3 names exactly the pipeline's stages.
pub const REORDER: &str = "UPDATE pipeline_stages SET position = \
    (SELECT CAST(key AS INTEGER) FROM json_each(?3) WHERE value = pipeline_stages.id), updated_at = ?4 \
    WHERE client_id = ?1 AND pipeline_id = ?2 \
    AND (SELECT count(*) FROM pipeline_stages WHERE client_id = ?1 AND pipeline_id = ?2) = json_array_length(?3) \
    AND (SELECT count(DISTINCT value) FROM json_each(?3)) = json_array_length(?3) \
    AND (SELECT count(*) FROM pipeline_stages WHERE client_id = ?1 AND pipeline_id = ?2 \
      AND id IN (SELECT value FROM json_each(?3))) = json_array_length(?3)";
/// Before a stage is deleted with `move_to`: a history row for each deal about to move.
pub const HISTORY_FOR_MOVE: &str = "INSERT INTO deal_stage_history (id, client_id, deal_id, from_stage_id, \
    to_stage_id, moved_by, moved_at) SELECT ?5 || '_' || d.id, d.client_id, d.id, d.stage_id, ?4, ?6, ?7 \
    FROM deals d WHERE d.client_id = ?1 AND d.pipeline_id = ?2 AND d.stage_id = ?3 \
    AND EXISTS (SELECT 1 FROM pipeline_stages WHERE client_id = ?1 AND pipeline_id = ?2 AND id = ?4 AND id <> ?3)";
/// A `deal.stage_changed` event per deal the move takes, written before the move under its
/// conditions (the outbox row of each moved deal, built in SQL since the deals are many).
pub const EVENTS_FOR_MOVE: &str = "INSERT INTO events (id, client_id, type, data, created_at, dispatched_at) \
    SELECT 'evt_' || lower(hex(randomblob(12))), d.client_id, 'deal.stage_changed', json_object('deal', \
      json_object('id', d.id, 'title', d.title, 'pipeline_id', d.pipeline_id, 'stage_id', ?4, \
      'value_minor', d.value_minor, 'currency', d.currency, 'contact_id', d.contact_id, \
      'owner_user_id', d.owner_user_id, 'status', d.status, 'lost_reason', d.lost_reason), \
      'previous', json_object('stage_id', d.stage_id, 'status', d.status)), ?7, \
      CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.client_id = ?1 AND w.status = 'active') \
      THEN NULL ELSE ?7 END \
    FROM deals d WHERE d.client_id = ?1 AND d.pipeline_id = ?2 AND d.stage_id = ?3 \
    AND EXISTS (SELECT 1 FROM pipeline_stages WHERE client_id = ?1 AND pipeline_id = ?2 AND id = ?4 AND id <> ?3)";
pub const MOVE_DEALS: &str = "UPDATE deals SET stage_id = ?4, updated_at = ?5 \
    WHERE client_id = ?1 AND pipeline_id = ?2 AND stage_id = ?3 \
    AND EXISTS (SELECT 1 FROM pipeline_stages WHERE client_id = ?1 AND pipeline_id = ?2 AND id = ?4 AND id <> ?3)";
/// A stage goes only when empty and not the pipeline's last.
pub const DELETE_STAGE: &str = "DELETE FROM pipeline_stages WHERE client_id = ?1 AND pipeline_id = ?2 AND id = ?3 \
    AND NOT EXISTS (SELECT 1 FROM deals WHERE client_id = ?1 AND stage_id = ?3) \
    AND (SELECT count(*) FROM pipeline_stages WHERE client_id = ?1 AND pipeline_id = ?2) > 1";
pub const DEALS_IN_STAGE: &str = "SELECT count(*) AS n FROM deals WHERE client_id = ?1 AND stage_id = ?2";

/// The board's first page of deals per stage: ?3 is a status or 'all', ?4 the page size.
pub const BOARD_DEALS: &str = "SELECT * FROM (SELECT id, client_id, pipeline_id, stage_id, title, value_minor, \
    currency, contact_id, owner_user_id, status, lost_reason, expected_close_date, created_at, updated_at, closed_at, \
    row_number() OVER (PARTITION BY stage_id ORDER BY id) AS rn FROM deals \
    WHERE client_id = ?1 AND pipeline_id = ?2 AND (?3 = 'all' OR status = ?3)) WHERE rn <= ?4 ORDER BY stage_id, id";
pub const BOARD_TOTALS: &str = "SELECT stage_id, currency, count(*) AS n, sum(value_minor) AS total FROM deals \
    WHERE client_id = ?1 AND pipeline_id = ?2 AND (?3 = 'all' OR status = ?3) GROUP BY stage_id, currency \
    ORDER BY stage_id, currency";

crate::platform::rows::row! {
    /// A stage as the API shows it.
    #[derive(Debug, Clone, Serialize)]
    pub struct Stage {
        pub id: String,
        pub client_id: String,
        pub pipeline_id: String,
        pub name: String,
        pub position: i64,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

crate::platform::rows::row! {
    #[derive(Debug)]
    struct PipelineRow {
        id: String,
        client_id: String,
        name: String,
        created_at: i64,
        updated_at: i64,
    }
}

/// A pipeline as the API shows it, with its stages in order.
#[derive(Debug, Serialize)]
pub struct Pipeline {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub stages: Vec<Stage>,
    pub created_at: i64,
    pub updated_at: i64,
}

crate::platform::body::body! {
    struct NewPipeline {
        name: String,
        stages: Vec<String>,
    }
}

crate::platform::body::body! {
    struct Rename {
        name: String,
    }
}

crate::platform::body::body! {
    struct Order {
        stage_ids: Vec<String>,
    }
}

/// Pipelines with their stages, in one query for all the stages.
async fn with_stages(db: &impl Database, client: &ClientScope, rows: Vec<PipelineRow>) -> ApiResult<Vec<Pipeline>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids = json_list(rows.iter().map(|p| p.id.as_str()));
    let stages: Vec<Stage> = db.query_as(STAGES_OF, &[client.id().into(), ids.into()]).await?;
    Ok(rows
        .into_iter()
        .map(|p| Pipeline {
            stages: stages.iter().filter(|s| s.pipeline_id == p.id).cloned().collect(),
            id: p.id,
            client_id: p.client_id,
            name: p.name,
            created_at: p.created_at,
            updated_at: p.updated_at,
        })
        .collect())
}

/// One of the client's pipelines, with its stages, or 404.
pub async fn load(db: &impl Database, client: &ClientScope, id: &str) -> ApiResult<Pipeline> {
    if !looks_like_id(id, "pipe") {
        return Err(ApiError::NotFound);
    }
    let row = db.query(SELECT_ONE, &[client.id().into(), id.into()]).await?.into_iter().next();
    let row: PipelineRow = row.map(decode).transpose()?.ok_or(ApiError::NotFound)?;
    with_stages(db, client, vec![row]).await?.pop().ok_or(ApiError::NotFound)
}

fn stage_name(name: &str) -> ApiResult<String> {
    text_field("name", name, 60)
}

fn event<'a>(client: &'a ClientScope, action: &'a str, id: &'a str, metadata: serde_json::Value) -> Event<'a> {
    Event { tenant_id: client.id(), action, target_type: "pipeline", target_id: Some(id), metadata }
}

/// `GET /api/clients/{id}/pipelines`.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsRead).await?;
    let (cursor, limit) = page_params(req)?;
    let rows: Vec<PipelineRow> = ctx.p.query_as(LIST, &[client.id().into(), cursor.into(), Param::Int(limit)]).await?;
    let items = with_stages(ctx.p, &client, rows).await?;
    Ok(page_response(&items, limit, |p| Some(p.id.clone())))
}

/// `POST /api/clients/{id}/pipelines {name, stages: [names]}`: the pipeline and its stages in one
/// batch.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsWrite).await?;
    let body: NewPipeline = json_body(req, &["client_id", "id"])?;
    let name = text_field("name", &body.name, 80)?;
    if body.stages.is_empty() || body.stages.len() > MAX_STAGES {
        return Err(ApiError::invalid("invalid_stages", format!("a pipeline has 1-{MAX_STAGES} stages")));
    }
    let stage_names = body.stages.iter().map(|s| stage_name(s)).collect::<ApiResult<Vec<_>>>()?;
    let id = new_id("pipe")?;
    let now = ctx.p.now_ms();
    let mut stmts =
        vec![Stmt::new(INSERT, vec![id.as_str().into(), client.id().into(), name.as_str().into(), Param::Int(now)])];
    for (i, s) in stage_names.iter().enumerate() {
        stmts.push(Stmt::new(
            INSERT_STAGE,
            vec![
                new_id("stage")?.into(),
                client.id().into(),
                id.as_str().into(),
                s.as_str().into(),
                Param::Int(i as i64),
                Param::Int(now),
            ],
        ));
    }
    stmts.push(audit::entry(
        ctx,
        req,
        Some(who),
        event(&client, "pipeline.created", &id, json!({"name": name, "stages": stage_names})),
    )?);
    ctx.p.batch(&stmts).await?;
    Ok(Response::json(201, &load(ctx.p, &client, &id).await?))
}

/// `GET /api/clients/{id}/pipelines/{pipeline_id}`.
pub async fn get<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsRead).await?;
    Ok(Response::json(200, &load(ctx.p, &client, id).await?))
}

/// `PATCH /api/clients/{id}/pipelines/{pipeline_id} {name}`.
pub async fn rename<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsWrite).await?;
    let body: Rename = json_body(req, &["client_id", "id", "stages"])?;
    let name = text_field("name", &body.name, 80)?;
    let stmts = [
        Stmt::new(RENAME, vec![client.id().into(), id.into(), name.as_str().into(), Param::Int(ctx.p.now_ms())]),
        audit::entry_if_changed(ctx, req, who, event(&client, "pipeline.renamed", id, json!({"name": name})))?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Response::json(200, &load(ctx.p, &client, id).await?))
}

/// `DELETE /api/clients/{id}/pipelines/{pipeline_id}`: only an empty pipeline; its stages go too.
pub async fn delete<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsWrite).await?;
    load(ctx.p, &client, id).await?;
    let stmts = [
        Stmt::new(DELETE, vec![client.id().into(), id.into()]),
        audit::entry_if_changed(ctx, req, who, event(&client, "pipeline.deleted", id, json!({})))?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::conflict("pipeline_not_empty", "move or delete this pipeline's deals first"));
    }
    Ok(Response::new(204))
}

/// `POST /api/clients/{id}/pipelines/{pipeline_id}/stages {name}`: appended after the last stage.
pub async fn add_stage<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsWrite).await?;
    let body: Rename = json_body(req, &["client_id", "id", "pipeline_id", "position"])?;
    let name = stage_name(&body.name)?;
    load(ctx.p, &client, id).await?;
    let stage_id = new_id("stage")?;
    let stmts = [
        Stmt::new(
            APPEND_STAGE,
            vec![
                stage_id.as_str().into(),
                client.id().into(),
                id.into(),
                name.as_str().into(),
                Param::Int(ctx.p.now_ms()),
                Param::Int(MAX_STAGES as i64),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            event(&client, "pipeline.stage_added", id, json!({"stage_id": stage_id, "name": name})),
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::invalid("too_many_stages", format!("a pipeline has at most {MAX_STAGES} stages")));
    }
    Ok(Response::json(201, &load(ctx.p, &client, id).await?))
}

/// `PATCH /api/clients/{id}/pipelines/{pipeline_id}/stages/{stage_id} {name}`.
pub async fn rename_stage<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
    stage_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsWrite).await?;
    let body: Rename = json_body(req, &["client_id", "id", "pipeline_id", "position"])?;
    let name = stage_name(&body.name)?;
    let stmts = [
        Stmt::new(
            RENAME_STAGE,
            vec![client.id().into(), id.into(), stage_id.into(), name.as_str().into(), Param::Int(ctx.p.now_ms())],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            event(&client, "pipeline.stage_renamed", id, json!({"stage_id": stage_id, "name": name})),
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Response::json(200, &load(ctx.p, &client, id).await?))
}

/// `PUT /api/clients/{id}/pipelines/{pipeline_id}/stages {stage_ids}`: the new order, naming
/// every stage of the pipeline exactly once.
pub async fn reorder<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsWrite).await?;
    let body: Order = json_body(req, &["client_id", "id"])?;
    let pipeline = load(ctx.p, &client, id).await?;
    let mismatch =
        || ApiError::invalid("invalid_order", "stage_ids must name every stage of this pipeline exactly once");
    if body.stage_ids.len() != pipeline.stages.len() || body.stage_ids.len() > MAX_STAGES {
        return Err(mismatch());
    }
    let order = json_list(&body.stage_ids);
    let stmts = [
        Stmt::new(REORDER, vec![client.id().into(), id.into(), order.into(), Param::Int(ctx.p.now_ms())]),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            event(&client, "pipeline.stages_reordered", id, json!({"stage_ids": body.stage_ids})),
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(mismatch());
    }
    Ok(Response::json(200, &load(ctx.p, &client, id).await?))
}

/// `DELETE /api/clients/{id}/pipelines/{pipeline_id}/stages/{stage_id}[?move_to={stage_id}]`: an
/// empty stage goes; a stage with deals goes only with `move_to`, another stage of the same
/// pipeline, and its deals move there (each move recorded in the stage history). The moves, the
/// delete and the audit row are one batch.
pub async fn delete_stage<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
    stage_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsWrite).await?;
    let pipeline = load(ctx.p, &client, id).await?;
    if !pipeline.stages.iter().any(|s| s.id == stage_id) {
        return Err(ApiError::NotFound);
    }
    if pipeline.stages.len() == 1 {
        return Err(ApiError::conflict("last_stage", "a pipeline keeps at least one stage"));
    }
    let move_to = req.query_param("move_to");
    if let Some(target) = &move_to {
        if target == stage_id || !pipeline.stages.iter().any(|s| &s.id == target) {
            return Err(ApiError::invalid("invalid_move_to", "move_to must be another stage of this pipeline"));
        }
    }
    let now = ctx.p.now_ms();
    let mut stmts = Vec::new();
    if let Some(target) = &move_to {
        let moves = vec![
            client.id().into(),
            id.into(),
            stage_id.into(),
            target.as_str().into(),
            new_id("hist")?.into(),
            who.user_id.as_str().into(),
            Param::Int(now),
        ];
        stmts.push(Stmt::new(HISTORY_FOR_MOVE, moves.clone()));
        stmts.push(Stmt::new(EVENTS_FOR_MOVE, moves));
        ctx.outbox_written();
        stmts.push(Stmt::new(
            MOVE_DEALS,
            vec![client.id().into(), id.into(), stage_id.into(), target.as_str().into(), Param::Int(now)],
        ));
    }
    let delete_at = stmts.len();
    stmts.push(Stmt::new(DELETE_STAGE, vec![client.id().into(), id.into(), stage_id.into()]));
    stmts.push(audit::entry_if_changed(
        ctx,
        req,
        who,
        event(&client, "pipeline.stage_deleted", id, json!({"stage_id": stage_id, "moved_to": move_to})),
    )?);
    let changes = ctx.p.batch(&stmts).await?;
    if changes.get(delete_at).copied().unwrap_or(0) == 0 {
        let left = ctx.p.query(DEALS_IN_STAGE, &[client.id().into(), stage_id.into()]).await?;
        if left.first().and_then(|r| col_i64(r, "n")).unwrap_or(0) > 0 {
            return Err(ApiError::conflict("stage_not_empty", "this stage has deals: pass move_to to move them"));
        }
        return Err(ApiError::NotFound);
    }
    Ok(Response::json(200, &load(ctx.p, &client, id).await?))
}

crate::platform::rows::row! {
    struct TotalRow {
        stage_id: String,
        currency: String,
        n: i64,
        total: i64,
    }
}

/// One column of the board.
#[derive(Serialize)]
struct Column {
    stage: Stage,
    count: i64,
    /// Sums of `value_minor`, one per currency present.
    totals: Vec<serde_json::Value>,
    deals: Vec<Deal>,
    next_cursor: Option<String>,
}

/// `GET /api/clients/{id}/pipelines/{pipeline_id}/board?status=open|won|lost|all&limit=`: every
/// stage in order with its first `limit` deals (the rest via `GET .../deals?stage=&cursor=`), its
/// count and its sum per currency. Three queries, whatever the number of stages.
pub async fn board<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsRead).await?;
    let (_, limit) = page_params(req)?;
    let status = req.query_param("status").unwrap_or_else(|| "open".into());
    if !matches!(status.as_str(), "open" | "won" | "lost" | "all") {
        return Err(ApiError::bad_request("invalid_status", "status is open, won, lost or all"));
    }
    let pipeline = load(ctx.p, &client, id).await?;
    let params = [client.id().into(), id.into(), status.as_str().into(), Param::Int(limit)];
    let deals: Vec<Deal> = ctx.p.query_as(BOARD_DEALS, &params).await?;
    let totals: Vec<TotalRow> = ctx.p.query_as(BOARD_TOTALS, &params[..3]).await?;
    let mut by_stage: std::collections::HashMap<String, Vec<Deal>> = std::collections::HashMap::new();
    for d in deals {
        by_stage.entry(d.stage_id.clone()).or_default().push(d);
    }
    let columns: Vec<Column> = pipeline
        .stages
        .iter()
        .map(|s| {
            let deals = by_stage.remove(&s.id).unwrap_or_default();
            let mine: Vec<&TotalRow> = totals.iter().filter(|t| t.stage_id == s.id).collect();
            let count = mine.iter().map(|t| t.n).sum();
            let next_cursor =
                if deals.len() as i64 == limit && count > limit { deals.last().map(|d| d.id.clone()) } else { None };
            Column {
                stage: s.clone(),
                count,
                totals: mine.iter().map(|t| json!({"currency": t.currency, "value_minor": t.total})).collect(),
                deals,
                next_cursor,
            }
        })
        .collect();
    Ok(Response::json(
        200,
        &json!({"pipeline": {"id": pipeline.id, "name": pipeline.name}, "status": status, "columns": columns}),
    ))
}
