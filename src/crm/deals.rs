//! Deals: a title and a value in minor units of an ISO 4217 currency, in a pipeline's stage,
//! optionally for a contact and owned by a user who can reach the client; open, won or lost.
//! Every reference is checked inside the writing statement, and a move between stages writes a
//! stage-history row in the same batch as the move and its audit row.

use serde::Serialize;
use serde_json::json;

use crate::access::audit::{self, Event};
use crate::access::events::{self, Kind};
use crate::access::plans::{self, Metric};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, store, ClientScope};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{currency_field, json_body, page_params, page_response, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_id, new_id};
use crate::platform::ports::{col_i64, Database, Param, Platform, Stmt};
use crate::platform::{tz, Ctx};

pub const SELECT_ONE: &str = "SELECT id, client_id, pipeline_id, stage_id, title, value_minor, currency, contact_id, \
    owner_user_id, status, lost_reason, expected_close_date, created_at, updated_at, closed_at FROM deals \
    WHERE client_id = ?1 AND id = ?2";
/// ?4-?7 narrow by pipeline, stage, status and contact; each may be NULL.
pub const LIST: &str = "SELECT id, client_id, pipeline_id, stage_id, title, value_minor, currency, contact_id, \
    owner_user_id, status, lost_reason, expected_close_date, created_at, updated_at, closed_at FROM deals \
    WHERE client_id = ?1 AND id > ?2 AND (?4 IS NULL OR pipeline_id = ?4) AND (?5 IS NULL OR stage_id = ?5) \
    AND (?6 IS NULL OR status = ?6) AND (?7 IS NULL OR contact_id = ?7) ORDER BY id LIMIT ?3";
pub const INSERT: &str = "INSERT INTO deals (id, client_id, pipeline_id, stage_id, title, value_minor, currency, \
    contact_id, owner_user_id, status, lost_reason, expected_close_date, created_at, updated_at, closed_at) \
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14 \
    WHERE EXISTS (SELECT 1 FROM pipeline_stages WHERE client_id = ?2 AND pipeline_id = ?3 AND id = ?4) \
    AND (?8 IS NULL OR EXISTS (SELECT 1 FROM contacts WHERE client_id = ?2 AND id = ?8)) \
    AND (SELECT count(*) FROM deals WHERE client_id = ?2) < ?15";
pub const COUNT: &str = "SELECT count(*) AS n FROM deals WHERE client_id = ?1";
/// The placement that opens a deal's history, written only if the deal was.
pub const HISTORY_ON_CREATE: &str = "INSERT INTO deal_stage_history (id, client_id, deal_id, from_stage_id, \
    to_stage_id, moved_by, moved_at) SELECT ?1, ?2, ?3, NULL, ?4, ?5, ?6 WHERE changes() > 0";
/// A move's history row, read from the deal as it is (so a racing move cannot be misrecorded),
/// written before the update and under the same conditions.
pub const HISTORY_ON_MOVE: &str = "INSERT INTO deal_stage_history (id, client_id, deal_id, from_stage_id, \
    to_stage_id, moved_by, moved_at) SELECT ?15, d.client_id, d.id, d.stage_id, ?4, ?16, ?13 FROM deals d \
    WHERE d.client_id = ?2 AND d.id = ?1 AND d.stage_id <> ?4 AND d.stage_id = ?17 AND d.status = ?18 \
    AND EXISTS (SELECT 1 FROM pipeline_stages WHERE client_id = ?2 AND pipeline_id = ?3 AND id = ?4) \
    AND (?8 IS NULL OR EXISTS (SELECT 1 FROM contacts WHERE client_id = ?2 AND id = ?8))";
pub const UPDATE: &str = "UPDATE deals SET pipeline_id = ?3, stage_id = ?4, title = ?5, value_minor = ?6, \
    currency = ?7, contact_id = ?8, owner_user_id = ?9, status = ?10, lost_reason = ?11, expected_close_date = ?12, \
    updated_at = ?13, closed_at = ?14 WHERE client_id = ?2 AND id = ?1 AND stage_id = ?17 AND status = ?18 \
    AND EXISTS (SELECT 1 FROM pipeline_stages WHERE client_id = ?2 AND pipeline_id = ?3 AND id = ?4) \
    AND (?8 IS NULL OR EXISTS (SELECT 1 FROM contacts WHERE client_id = ?2 AND id = ?8))";
pub const DELETE: &str = "DELETE FROM deals WHERE client_id = ?1 AND id = ?2";
pub const DELETE_NOTES: &str = "DELETE FROM notes WHERE client_id = ?1 AND subject_type = 'deal' AND subject_id = ?2";
pub const HISTORY: &str = "SELECT id, deal_id, from_stage_id, to_stage_id, moved_by, moved_at FROM deal_stage_history \
    WHERE client_id = ?1 AND deal_id = ?2 ORDER BY moved_at, rowid";
pub const STAGE_IN_PIPELINE: &str =
    "SELECT 1 AS ok FROM pipeline_stages WHERE client_id = ?1 AND pipeline_id = ?2 AND id = ?3";
pub const CONTACT_EXISTS: &str = "SELECT 1 AS ok FROM contacts WHERE client_id = ?1 AND id = ?2";
pub const FIRST_STAGE: &str = "SELECT id FROM pipeline_stages WHERE client_id = ?1 AND pipeline_id = ?2 \
    ORDER BY position, id LIMIT 1";

/// Values up to 10^15 minor units (ten trillion in a two-decimal currency).
const MAX_VALUE_MINOR: i64 = 1_000_000_000_000_000;

crate::platform::rows::row! {
    /// A deal as the API shows it.
    #[derive(Debug, Serialize)]
    pub struct Deal {
        pub id: String,
        pub client_id: String,
        pub pipeline_id: String,
        pub stage_id: String,
        pub title: String,
        pub value_minor: i64,
        pub currency: String,
        pub contact_id: Option<String>,
        pub owner_user_id: Option<String>,
        pub status: String,
        pub lost_reason: Option<String>,
        pub expected_close_date: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        pub closed_at: Option<i64>,
    }
}

crate::platform::rows::row! {
    /// One move between stages.
    #[derive(Debug, Serialize)]
    pub struct Move {
        pub id: String,
        pub deal_id: String,
        pub from_stage_id: Option<String>,
        pub to_stage_id: String,
        pub moved_by: Option<String>,
        pub moved_at: i64,
    }
}

crate::platform::body::body! {
    struct NewDeal {
        title: String,
        pipeline_id: String,
        stage_id: Option<String>,
        value_minor: Option<i64>,
        currency: Option<String>,
        contact_id: Option<String>,
        owner_user_id: Option<String>,
        expected_close_date: Option<String>,
    }
}

crate::platform::body::body! {
    struct DealPatch {
        title: Option<String>,
        pipeline_id: Option<String>,
        stage_id: Option<String>,
        value_minor: Option<i64>,
        currency: Option<String>,
        contact_id: Option<Option<String>>,
        owner_user_id: Option<Option<String>>,
        status: Option<String>,
        lost_reason: Option<Option<String>>,
        expected_close_date: Option<Option<String>>,
    }
}

fn value_field(v: i64) -> ApiResult<i64> {
    if (0..=MAX_VALUE_MINOR).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::invalid("invalid_value", format!("`value_minor` must be 0-{MAX_VALUE_MINOR}")))
    }
}

/// `YYYY-MM-DD`, a real calendar date.
pub fn date_field(name: &'static str, v: &str) -> ApiResult<String> {
    tz::parse_date(v)
        .filter(|d| (1900..=2999).contains(&d.year()))
        .map(|d| d.to_string())
        .ok_or_else(|| ApiError::invalid("invalid_date", format!("`{name}` must be a date like 2027-03-31")))
}

fn id_field(name: &'static str, v: &str, prefix: &str) -> ApiResult<String> {
    if looks_like_id(v, prefix) {
        Ok(v.to_string())
    } else {
        Err(ApiError::invalid("invalid_reference", format!("`{name}` is not a valid id")))
    }
}

/// A deal ready to write, every field validated.
struct Fields {
    pipeline_id: String,
    stage_id: String,
    title: String,
    value_minor: i64,
    currency: String,
    contact_id: Option<String>,
    owner_user_id: Option<String>,
    status: String,
    lost_reason: Option<String>,
    expected_close_date: Option<String>,
    closed_at: Option<i64>,
}

impl Fields {
    /// The deal as an event carries it.
    fn event_data(&self, id: &str) -> serde_json::Value {
        json!({"deal": {
            "id": id, "title": self.title, "pipeline_id": self.pipeline_id, "stage_id": self.stage_id,
            "value_minor": self.value_minor, "currency": self.currency, "contact_id": self.contact_id,
            "owner_user_id": self.owner_user_id, "status": self.status, "lost_reason": self.lost_reason,
        }})
    }

    /// ?1 deal, ?2 client, then the columns in `INSERT`/`UPDATE` order, ?13 now, ?14 closed_at.
    fn params(&self, id: &str, client: &ClientScope, now: i64) -> Vec<Param> {
        vec![
            id.into(),
            client.id().into(),
            self.pipeline_id.as_str().into(),
            self.stage_id.as_str().into(),
            self.title.as_str().into(),
            Param::Int(self.value_minor),
            self.currency.as_str().into(),
            self.contact_id.clone().into(),
            self.owner_user_id.clone().into(),
            self.status.as_str().into(),
            self.lost_reason.clone().into(),
            self.expected_close_date.clone().into(),
            Param::Int(now),
            self.closed_at.map(Param::Int).unwrap_or(Param::Null),
        ]
    }
}

pub async fn one(db: &impl Database, client: &ClientScope, id: &str) -> ApiResult<Option<Deal>> {
    if !looks_like_id(id, "deal") {
        return Ok(None);
    }
    Ok(db.query_first(SELECT_ONE, &[client.id().into(), id.into()]).await?)
}

/// Which reference a refused write got wrong, for a 422 that says so. Only called after the
/// statement itself refused.
/// A deal's owner must be a member of the client or its agency. Read from the control plane
/// before the write (the deal lives on the client's data shard); checked when the owner is set
/// or changed, so a deal whose owner has since left can still be edited.
async fn check_owner(db: &impl Database, client: &ClientScope, owner: Option<&str>) -> ApiResult<()> {
    match owner {
        Some(u) if !store::user_reaches_client(db, client.id(), u).await? => {
            Err(ApiError::invalid("unknown_owner", "the owner must be a member of this client or its agency"))
        }
        _ => Ok(()),
    }
}

async fn explain_refusal(db: &impl Database, client: &ClientScope, f: &Fields, limit: i64) -> ApiError {
    let c = client.id();
    let held = db.query(COUNT, &[c.into()]).await.ok().and_then(|r| r.first().and_then(|r| col_i64(r, "n")));
    if held.is_some_and(|n| n >= limit) {
        return plans::exceeded(Metric::Deals, limit);
    }
    let stage = [c.into(), f.pipeline_id.as_str().into(), f.stage_id.as_str().into()];
    if !matches!(db.query(STAGE_IN_PIPELINE, &stage).await, Ok(rows) if !rows.is_empty()) {
        return ApiError::invalid(
            "unknown_stage",
            "the stage is not one of this pipeline's, or the pipeline is not this client's",
        );
    }
    if let Some(contact) = &f.contact_id {
        let found = db.query(CONTACT_EXISTS, &[c.into(), contact.as_str().into()]).await;
        if !matches!(found, Ok(rows) if !rows.is_empty()) {
            return ApiError::invalid("unknown_contact", "no such contact in this client");
        }
    }
    ApiError::NotFound
}

fn status_field(s: &str) -> ApiResult<String> {
    match s {
        "open" | "won" | "lost" => Ok(s.to_string()),
        _ => Err(ApiError::invalid("invalid_status", "`status` is open, won or lost")),
    }
}

/// `GET /api/clients/{id}/deals?pipeline=&stage=&status=&contact=&cursor=&limit=`.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsRead).await?;
    let (cursor, limit) = page_params(req)?;
    let filter = |name: &'static str, prefix: &str| -> ApiResult<Option<String>> {
        match req.query_param(name) {
            Some(v) if looks_like_id(&v, prefix) => Ok(Some(v)),
            Some(_) => Err(ApiError::bad_request("invalid_filter", format!("`{name}` must be an id"))),
            None => Ok(None),
        }
    };
    let pipeline = filter("pipeline", "pipe")?;
    let stage = filter("stage", "stage")?;
    let contact = filter("contact", "con")?;
    let status = req
        .query_param("status")
        .map(|s| status_field(&s))
        .transpose()
        .map_err(|_| ApiError::bad_request("invalid_status", "status is open, won or lost"))?;
    let params = [
        client.id().into(),
        cursor.into(),
        Param::Int(limit),
        pipeline.into(),
        stage.into(),
        status.into(),
        contact.into(),
    ];
    let rows: Vec<Deal> = ctx.p.query_as(LIST, &params).await?;
    Ok(page_response(&rows, limit, |d| Some(d.id.clone())))
}

/// `POST /api/clients/{id}/deals`: in the pipeline's first stage unless `stage_id` says otherwise.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, row) = access::client(ctx, req, who, client_id, Permission::DealsWrite).await?;
    let limit = plans::limit(&row, Metric::Deals);
    let body: NewDeal = json_body(req, &["client_id", "id", "status", "closed_at", "lost_reason"])?;
    let pipeline_id = id_field("pipeline_id", &body.pipeline_id, "pipe")?;
    let stage_id = match body.stage_id {
        Some(s) => id_field("stage_id", &s, "stage")?,
        None => {
            let first = ctx.p.query(FIRST_STAGE, &[client.id().into(), pipeline_id.as_str().into()]).await?;
            first
                .first()
                .and_then(|r| crate::platform::ports::col_str(r, "id"))
                .ok_or_else(|| ApiError::invalid("unknown_pipeline", "no such pipeline in this client"))?
        }
    };
    let f = Fields {
        pipeline_id,
        stage_id,
        title: text_field("title", &body.title, 200)?,
        value_minor: value_field(body.value_minor.unwrap_or(0))?,
        currency: currency_field(body.currency.as_deref().unwrap_or("USD"))?,
        contact_id: body.contact_id.as_deref().map(|c| id_field("contact_id", c, "con")).transpose()?,
        owner_user_id: body.owner_user_id.as_deref().map(|u| id_field("owner_user_id", u, "usr")).transpose()?,
        status: "open".into(),
        lost_reason: None,
        expected_close_date: body
            .expected_close_date
            .as_deref()
            .map(|d| date_field("expected_close_date", d))
            .transpose()?,
        closed_at: None,
    };
    check_owner(ctx.p, &client, f.owner_user_id.as_deref()).await?;
    let id = new_id("deal")?;
    let now = ctx.p.now_ms();
    let mut insert = f.params(&id, &client, now);
    insert.push(Param::Int(limit));
    let mut stmts = vec![
        Stmt::new(INSERT, insert),
        Stmt::new(
            HISTORY_ON_CREATE,
            vec![
                new_id("hist")?.into(),
                client.id().into(),
                id.as_str().into(),
                f.stage_id.as_str().into(),
                who.user_id.as_str().into(),
                Param::Int(now),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client.id(),
                action: "deal.created",
                target_type: "deal",
                target_id: Some(&id),
                metadata: json!({"pipeline_id": f.pipeline_id, "stage_id": f.stage_id}),
            },
        )?,
        events::record_if_changed(ctx, client.id(), Kind::DealCreated, f.event_data(&id))?,
    ];
    stmts.extend(plans::crossing(&audit::actor(req, Some(who)), client.id(), Metric::Deals, limit, &id, 1, now)?);
    if ctx.p.batch(&stmts).await?.first().copied().unwrap_or(0) == 0 {
        return Err(explain_refusal(ctx.p, &client, &f, limit).await);
    }
    Ok(Response::json(201, &one(ctx.p, &client, &id).await?.ok_or(ApiError::NotFound)?))
}

/// `GET /api/clients/{id}/deals/{deal_id}`.
pub async fn get<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsRead).await?;
    Ok(Response::json(200, &one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?))
}

/// `PATCH /api/clients/{id}/deals/{deal_id}`: any field; a new `stage_id` (and `pipeline_id` to
/// change pipelines) moves the deal and records the move. `status` won or lost closes it (a lost
/// reason is kept only while lost); open reopens it.
pub async fn update<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsWrite).await?;
    let patch: DealPatch = json_body(req, &["client_id", "id", "closed_at", "created_at"])?;
    let cur = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let owner_before = cur.owner_user_id.clone();
    if patch.pipeline_id.is_some() && patch.stage_id.is_none() {
        return Err(ApiError::invalid("stage_required", "moving a deal to another pipeline needs its `stage_id` too"));
    }
    let status = patch.status.as_deref().map(status_field).transpose()?.unwrap_or(cur.status.clone());
    let now = ctx.p.now_ms();
    let lost_reason = match (status.as_str(), patch.lost_reason) {
        ("lost", Some(r)) => r.as_deref().map(|r| text_field("lost_reason", r, 500)).transpose()?,
        ("lost", None) => cur.lost_reason,
        (_, Some(Some(_))) => {
            return Err(ApiError::invalid("invalid_lost_reason", "a lost reason goes with status lost"));
        }
        _ => None,
    };
    let closed_at = match (status.as_str(), cur.status.as_str()) {
        ("open", _) => None,
        (s, was) if s == was => cur.closed_at,
        _ => Some(now),
    };
    let f = Fields {
        pipeline_id: match patch.pipeline_id {
            Some(p) => id_field("pipeline_id", &p, "pipe")?,
            None => cur.pipeline_id,
        },
        stage_id: match patch.stage_id {
            Some(s) => id_field("stage_id", &s, "stage")?,
            None => cur.stage_id.clone(),
        },
        title: patch.title.as_deref().map(|t| text_field("title", t, 200)).transpose()?.unwrap_or(cur.title),
        value_minor: value_field(patch.value_minor.unwrap_or(cur.value_minor))?,
        currency: patch.currency.as_deref().map(currency_field).transpose()?.unwrap_or(cur.currency),
        contact_id: match patch.contact_id {
            Some(c) => c.as_deref().map(|c| id_field("contact_id", c, "con")).transpose()?,
            None => cur.contact_id,
        },
        owner_user_id: match patch.owner_user_id {
            Some(u) => u.as_deref().map(|u| id_field("owner_user_id", u, "usr")).transpose()?,
            None => cur.owner_user_id,
        },
        status,
        lost_reason,
        expected_close_date: match patch.expected_close_date {
            Some(d) => d.as_deref().map(|d| date_field("expected_close_date", d)).transpose()?,
            None => cur.expected_close_date,
        },
        closed_at,
    };
    if f.owner_user_id != owner_before {
        check_owner(ctx.p, &client, f.owner_user_id.as_deref()).await?;
    }
    let moved = f.stage_id != cur.stage_id;
    let mut params = f.params(id, &client, now);
    params.push(new_id("hist")?.into());
    params.push(who.user_id.as_str().into());
    // Only from the stage and status this update was computed from: a racing move or close makes
    // it a conflict, never a silent revert or a second `deal.won`.
    params.push(cur.stage_id.as_str().into());
    params.push(cur.status.as_str().into());
    // The events of the update, each written only if the update was.
    let mut kinds = Vec::new();
    if moved {
        kinds.push(Kind::DealStageChanged);
    }
    match f.status.as_str() {
        "won" if cur.status != "won" => kinds.push(Kind::DealWon),
        "lost" if cur.status != "lost" => kinds.push(Kind::DealLost),
        _ => {}
    }
    let mut data = f.event_data(id);
    data["previous"] = json!({"stage_id": cur.stage_id, "status": cur.status});
    let mut stmts = vec![
        Stmt::new(HISTORY_ON_MOVE, params.clone()),
        Stmt::new(UPDATE, params.clone()),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client.id(),
                action: if moved { "deal.moved" } else { "deal.updated" },
                target_type: "deal",
                target_id: Some(id),
                metadata: json!({"from_stage_id": cur.stage_id, "stage_id": f.stage_id, "status": f.status}),
            },
        )?,
    ];
    for kind in kinds {
        stmts.push(events::record_if_changed(ctx, client.id(), kind, data.clone())?);
    }
    if ctx.p.batch(&stmts).await?.get(1).copied().unwrap_or(0) == 0 {
        return Err(match one(ctx.p, &client, id).await? {
            Some(now) if now.stage_id != cur.stage_id || now.status != cur.status => {
                ApiError::conflict("deal_changed", "the deal was moved or closed meanwhile; read it again and retry")
            }
            _ => explain_refusal(ctx.p, &client, &f, i64::MAX).await,
        });
    }
    Ok(Response::json(200, &one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?))
}

/// `DELETE /api/clients/{id}/deals/{deal_id}`: the deal, its history and its notes.
pub async fn delete<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsWrite).await?;
    let stmts = [
        Stmt::new(DELETE, vec![client.id().into(), id.into()]),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client.id(),
                action: "deal.deleted",
                target_type: "deal",
                target_id: Some(id),
                metadata: json!({}),
            },
        )?,
        Stmt::new(DELETE_NOTES, vec![client.id().into(), id.into()]),
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Response::new(204))
}

/// `GET /api/clients/{id}/deals/{deal_id}/history`: every placement and move, oldest first.
pub async fn history<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DealsRead).await?;
    one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let moves: Vec<Move> = ctx.p.query_as(HISTORY, &[client.id().into(), id.into()]).await?;
    Ok(Response::json(200, &json!({"items": moves})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_real_calendar_days() {
        for ok in ["2027-03-31", "2028-02-29", "2000-02-29", "1999-12-01"] {
            assert_eq!(date_field("d", ok).unwrap(), ok);
        }
        for bad in [
            "2027-02-29",
            "1900-02-29",
            "2027-04-31",
            "2027-13-01",
            "2027-00-10",
            "27-03-31",
            "2027/03/31",
            "2027-3-31",
            "+027-03-31",
            "2027-03-3a",
        ] {
            assert!(date_field("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn currencies_are_iso_4217_codes() {
        assert_eq!(currency_field("eur").unwrap(), "EUR");
        assert_eq!(currency_field("USD").unwrap(), "USD");
        for bad in ["", "US", "USDD", "XXX", "ABC", "usd;"] {
            assert!(currency_field(bad).is_err(), "{bad}");
        }
        assert!(value_field(-1).is_err());
        assert!(value_field(MAX_VALUE_MINOR + 1).is_err());
        assert_eq!(value_field(0).unwrap(), 0);
    }
}
