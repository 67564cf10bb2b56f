//! Outbound webhooks: a client's HTTPS endpoints, each subscribed to some event types, receive
//! the client's events signed to the Standard Webhooks scheme (`signing`), through a Cloudflare
//! Queue, with retries, a delivery log and replays (`delivery`). Receiver URLs are held to the
//! rules in `target`, at registration and at every delivery.
//!
//! Promises to receivers: delivery is at least once (the `webhook-id` header, the event id, is
//! the same on every retry and replay, so receivers de-duplicate by it), and ordering per
//! endpoint is best effort (events are fanned out and queued in the order they were recorded,
//! but a retry does not hold back later events).

pub mod delivery;
pub mod signing;
pub mod target;

use serde::Serialize;
use serde_json::{json, Value};

use crate::access::audit::{self, Event};
use crate::access::events::Kind;
use crate::access::roles::{Permission, Principal};
use crate::access::{self, ClientScope};
use crate::platform::crypto::{self, SecretContext};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{json_body, page_params, page_response, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_id, new_id};
use crate::platform::ports::{json_list, Database, Param, Platform, Stmt};
use crate::platform::Ctx;
use target::CheckError;

/// Endpoints one client may register.
pub const MAX_ENDPOINTS: i64 = 20;
/// The longest overlap a rotation may ask for, during which the previous secret still signs.
pub const MAX_OVERLAP_SECS: i64 = 7 * 86_400;
const DEFAULT_OVERLAP_SECS: i64 = 86_400;
/// Endpoints re-sealed per rotation batch.
const RESEAL_BATCH: i64 = 100;

/// Refused inside the statement once the client has `MAX_ENDPOINTS`.
pub const INSERT: &str = "INSERT INTO webhook_endpoints (id, client_id, url, description, event_types, status, \
    secret_sealed, created_at, updated_at) SELECT ?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, ?7 \
    WHERE (SELECT count(*) FROM webhook_endpoints WHERE client_id = ?2) < ?8";
pub const LIST: &str = "SELECT id, client_id, url, description, event_types, status, disabled_reason, secret_sealed, \
    previous_secret_sealed, previous_secret_expires_at, consecutive_failures, last_success_at, created_at, updated_at \
    FROM webhook_endpoints WHERE client_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
pub const SELECT_ONE: &str = "SELECT id, client_id, url, description, event_types, status, disabled_reason, \
    secret_sealed, previous_secret_sealed, previous_secret_expires_at, consecutive_failures, last_success_at, \
    created_at, updated_at FROM webhook_endpoints WHERE client_id = ?1 AND id = ?2";
/// ?6 is a new status or NULL to keep the current one (which the consumer may be changing at
/// this moment). Re-enabling clears the failure streak; disabling keeps it for the record.
pub const UPDATE: &str = "UPDATE webhook_endpoints SET url = ?3, description = ?4, event_types = ?5, \
    status = coalesce(?6, status), disabled_reason = CASE WHEN ?6 IS NULL THEN disabled_reason ELSE ?7 END, \
    consecutive_failures = CASE WHEN ?6 = 'active' THEN 0 ELSE consecutive_failures END, \
    updated_at = ?8 WHERE client_id = ?1 AND id = ?2";
/// A rotation, only if the secret it demotes is still the current one (two racing rotations
/// cannot both win and lose a secret).
pub const ROTATE: &str = "UPDATE webhook_endpoints SET secret_sealed = ?3, previous_secret_sealed = ?4, \
    previous_secret_expires_at = ?5, updated_at = ?6 WHERE client_id = ?1 AND id = ?2 AND secret_sealed = ?7";
pub const DELETE: &str = "DELETE FROM webhook_endpoints WHERE client_id = ?1 AND id = ?2";
pub const DELETE_ATTEMPTS: &str = "DELETE FROM webhook_attempts WHERE client_id = ?1 AND delivery_id IN \
    (SELECT id FROM webhook_deliveries WHERE client_id = ?1 AND endpoint_id = ?2)";
pub const DELETE_DELIVERIES: &str = "DELETE FROM webhook_deliveries WHERE client_id = ?1 AND endpoint_id = ?2";
/// A disabled endpoint's pending deliveries end; they can be replayed once it is enabled again.
pub const END_PENDING: &str = "UPDATE webhook_deliveries SET status = 'dead', lease_until = NULL, \
    last_error = 'the endpoint was disabled', updated_at = ?3 WHERE client_id = ?1 AND endpoint_id = ?2 \
    AND status = 'pending' AND EXISTS (SELECT 1 FROM webhook_endpoints WHERE client_id = ?1 AND id = ?2 \
    AND status = 'disabled')";
/// Endpoints with a secret sealed under a key other than the current one (?1: `v1.{key_id}.`).
pub const SEALED_UNDER_OLD_KEYS: &str = "SELECT client_id, id, secret_sealed, previous_secret_sealed FROM \
    webhook_endpoints WHERE (substr(secret_sealed, 1, length(?1)) <> ?1 OR (previous_secret_sealed IS NOT NULL \
    AND substr(previous_secret_sealed, 1, length(?1)) <> ?1)) \
    AND client_id NOT IN (SELECT tenant_id FROM fenced_tenants) LIMIT ?2";
pub const COUNT_SEALED_UNDER_OLD_KEYS: &str = "SELECT count(*) AS n FROM webhook_endpoints \
    WHERE substr(secret_sealed, 1, length(?1)) <> ?1 OR (previous_secret_sealed IS NOT NULL \
    AND substr(previous_secret_sealed, 1, length(?1)) <> ?1)";
/// Re-seals both secrets, only if nobody rotated them meanwhile.
pub const RESEAL: &str = "UPDATE webhook_endpoints SET secret_sealed = ?4, previous_secret_sealed = ?5 \
    WHERE client_id = ?1 AND id = ?2 AND secret_sealed = ?3 AND previous_secret_sealed IS ?6";
/// Newest first; ?2 is the last seq seen, ?4 an optional type.
pub const EVENTS: &str = "SELECT seq, id, type AS kind, data, created_at FROM events WHERE client_id = ?1 \
    AND (?2 IS NULL OR seq < ?2) \
    AND (?4 IS NULL OR type = ?4) ORDER BY seq DESC LIMIT ?3";

crate::platform::rows::row! {
    #[derive(Debug, Clone)]
    pub struct EndpointRow {
        pub id: String,
        pub client_id: String,
        pub url: String,
        pub description: Option<String>,
        pub event_types: String,
        pub status: String,
        pub disabled_reason: Option<String>,
        pub secret_sealed: String,
        pub previous_secret_sealed: Option<String>,
        pub previous_secret_expires_at: Option<i64>,
        pub consecutive_failures: i64,
        pub last_success_at: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

/// An endpoint as the API shows it: never a secret, except once, when one is made.
#[derive(Debug, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub client_id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub status: String,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i64,
    pub last_success_at: Option<i64>,
    /// While a rotation's overlap lasts, the previous secret signs too, until this time.
    pub previous_secret_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl EndpointRow {
    fn view(&self, now_ms: i64) -> Endpoint {
        Endpoint {
            id: self.id.clone(),
            client_id: self.client_id.clone(),
            url: self.url.clone(),
            description: self.description.clone(),
            event_types: crate::platform::body::parse(self.event_types.as_bytes(), "event_types").unwrap_or_default(),
            status: self.status.clone(),
            disabled_reason: self.disabled_reason.clone(),
            consecutive_failures: self.consecutive_failures,
            last_success_at: self.last_success_at,
            previous_secret_expires_at: self.previous_secret_expires_at.filter(|t| *t > now_ms),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Where an endpoint's secrets are sealed: the endpoint and which of its two secrets, so a
/// sealed value moved to another row or column fails to open.
pub fn secret_context<'a>(client_id: &'a str, field: &'a str) -> SecretContext<'a> {
    SecretContext { client_id, provider: "webhook", field }
}

fn previous_field(endpoint_id: &str) -> String {
    format!("{endpoint_id}/previous")
}

/// The secrets that sign now: the current one, and the previous one during a rotation's overlap.
pub fn signing_secrets(
    cfg: &crate::platform::config::Config,
    e: &EndpointRow,
    now_ms: i64,
) -> ApiResult<Vec<crypto::Secret>> {
    let open = |field: &str, sealed: &str| {
        crypto::open(cfg, &secret_context(&e.client_id, field), sealed)
            .map_err(|err| ApiError::Internal(format!("webhook secret of {}: {err}", e.id)))
    };
    let mut out = vec![open(&e.id, &e.secret_sealed)?];
    if let (Some(prev), Some(until)) = (&e.previous_secret_sealed, e.previous_secret_expires_at) {
        if until > now_ms {
            out.push(open(&previous_field(&e.id), prev)?);
        }
    }
    Ok(out)
}

/// A subscription list: known event types, or `*` for all, without repeats.
fn event_types_field(types: &[String]) -> ApiResult<String> {
    let bad = || {
        ApiError::invalid(
            "invalid_event_types",
            format!(
                "`event_types` is a non-empty list of \"*\" or: {}",
                Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )
    };
    if types.is_empty() || types.len() > Kind::ALL.len() + 1 {
        return Err(bad());
    }
    let mut out: Vec<&str> = Vec::new();
    for t in types {
        let t = t.as_str();
        if t != "*" && Kind::parse(t).is_none() {
            return Err(bad());
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(json_list(out))
}

fn description_field(d: Option<&str>) -> ApiResult<Option<String>> {
    d.filter(|d| !d.trim().is_empty()).map(|d| text_field("description", d, 200)).transpose()
}

/// A receiver URL, checked against every rule; the normalised form is what is stored.
async fn url_field<P: Platform>(ctx: &Ctx<'_, P>, url: &str) -> ApiResult<String> {
    match target::check(ctx, url).await {
        Ok(t) => Ok(t.url.to_string()),
        Err(CheckError::Refused(r)) => Err(ApiError::invalid("webhook_url_refused", r.message())),
        Err(CheckError::Unavailable(e)) => Err(e),
    }
}

pub async fn one(db: &impl Database, client: &ClientScope, id: &str) -> ApiResult<Option<EndpointRow>> {
    if !looks_like_id(id, "whe") {
        return Ok(None);
    }
    Ok(db.query_first(SELECT_ONE, &[client.id().into(), id.into()]).await?)
}

fn event<'a>(client: &'a ClientScope, action: &'a str, id: &'a str, metadata: Value) -> Event<'a> {
    Event { tenant_id: client.id(), action, target_type: "webhook_endpoint", target_id: Some(id), metadata }
}

crate::platform::body::body! {
    struct NewEndpoint {
        url: String,
        event_types: Vec<String>,
        description: Option<String>,
    }
}

/// `POST /api/clients/{id}/webhooks {url, event_types, description?}`: 201 with the signing
/// secret, shown this once.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::WebhooksManage).await?;
    let body: NewEndpoint = json_body(req, &["id", "client_id", "secret", "status"])?;
    let types = event_types_field(&body.event_types)?;
    let description = description_field(body.description.as_deref())?;
    let url = url_field(ctx, &body.url).await?;
    let id = new_id("whe")?;
    let secret = signing::new_secret()?;
    let sealed = crypto::seal(ctx.cfg, &secret_context(client.id(), &id), &secret)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let now = ctx.p.now_ms();
    let stmts = [
        Stmt::new(
            INSERT,
            vec![
                id.as_str().into(),
                client.id().into(),
                url.as_str().into(),
                description.into(),
                types.into(),
                sealed.into(),
                Param::Int(now),
                Param::Int(MAX_ENDPOINTS),
            ],
        ),
        audit::entry_if_changed(ctx, req, who, event(&client, "webhook.created", &id, json!({"url": url})))?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::TooMany(
            "webhook_limit_reached",
            format!("a client may register at most {MAX_ENDPOINTS} webhook endpoints"),
            None,
        ));
    }
    let row = one(ctx.p, &client, &id).await?.ok_or(ApiError::NotFound)?;
    let mut view = serde_json::to_value(row.view(now)).map_err(|e| ApiError::Internal(e.to_string()))?;
    view["secret"] = secret.into();
    Ok(Response::json(201, &view))
}

/// `GET /api/clients/{id}/webhooks`.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::WebhooksManage).await?;
    let (cursor, limit) = page_params(req)?;
    let rows: Vec<EndpointRow> = ctx.p.query_as(LIST, &[client.id().into(), cursor.into(), Param::Int(limit)]).await?;
    let now = ctx.p.now_ms();
    let items: Vec<Endpoint> = rows.iter().map(|r| r.view(now)).collect();
    Ok(page_response(&items, limit, |e| Some(e.id.clone())))
}

/// `GET /api/clients/{id}/webhooks/{endpoint_id}`.
pub async fn get<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::WebhooksManage).await?;
    let row = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &row.view(ctx.p.now_ms())))
}

crate::platform::body::body! {
    struct EndpointPatch {
        url: Option<String>,
        event_types: Option<Vec<String>>,
        description: Option<Option<String>>,
        status: Option<String>,
    }
}

/// `PATCH /api/clients/{id}/webhooks/{endpoint_id} {url?, event_types?, description?, status?}`:
/// `status` `disabled` stops deliveries (pending ones end, replayable later), `active` resumes
/// them and clears the failure streak.
pub async fn update<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::WebhooksManage).await?;
    let patch: EndpointPatch = json_body(req, &["id", "client_id", "secret"])?;
    let cur = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let url = match &patch.url {
        Some(u) => url_field(ctx, u).await?,
        None => cur.url.clone(),
    };
    let types = match &patch.event_types {
        Some(t) => event_types_field(t)?,
        None => cur.event_types.clone(),
    };
    let description = match &patch.description {
        Some(d) => description_field(d.as_deref())?,
        None => cur.description.clone(),
    };
    let (status, reason) = match patch.status.as_deref() {
        None => (None, None),
        Some("active") => (Some("active"), None),
        Some("disabled") if cur.status == "disabled" => (Some("disabled"), cur.disabled_reason.clone()),
        Some("disabled") => (Some("disabled"), Some("disabled by a user".to_string())),
        Some(_) => return Err(ApiError::invalid("invalid_status", "`status` is active or disabled")),
    };
    let fields: Vec<&str> = [
        ("url", patch.url.is_some()),
        ("event_types", patch.event_types.is_some()),
        ("description", patch.description.is_some()),
        ("status", patch.status.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(f, _)| *f)
    .collect();
    let now = ctx.p.now_ms();
    let stmts = [
        Stmt::new(
            UPDATE,
            vec![
                client.id().into(),
                id.into(),
                url.into(),
                description.into(),
                types.into(),
                status.into(),
                reason.into(),
                Param::Int(now),
            ],
        ),
        audit::entry_if_changed(ctx, req, who, event(&client, "webhook.updated", id, json!({"fields": fields})))?,
        Stmt::new(END_PENDING, vec![client.id().into(), id.into(), Param::Int(now)]),
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::NotFound);
    }
    let row = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &row.view(now)))
}

/// `DELETE /api/clients/{id}/webhooks/{endpoint_id}`: the endpoint and its delivery log.
pub async fn delete<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::WebhooksManage).await?;
    if !looks_like_id(id, "whe") {
        return Err(ApiError::NotFound);
    }
    let ids = || vec![client.id().into(), id.into()];
    let stmts = [
        Stmt::new(DELETE_ATTEMPTS, ids()),
        Stmt::new(DELETE_DELIVERIES, ids()),
        Stmt::new(DELETE, ids()),
        audit::entry_if_changed(ctx, req, who, event(&client, "webhook.deleted", id, json!({})))?,
    ];
    // The endpoint's own delete decides the answer (the log before it may be empty).
    if ctx.p.batch(&stmts).await?.get(2).copied().unwrap_or(0) == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(Response::new(204))
}

crate::platform::body::body! {
    #[derive(Default)]
    struct Rotation {
        overlap_secs: Option<i64>,
    }
}

/// `POST /api/clients/{id}/webhooks/{endpoint_id}/rotate-secret {overlap_secs?}`: a new secret,
/// shown this once. The old one keeps signing beside it for the overlap (default a day, at most
/// a week, 0 to stop at once), so receivers can switch without losing a delivery.
pub async fn rotate_secret<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::WebhooksManage).await?;
    let body: Rotation = if req.body.is_empty() { Rotation::default() } else { json_body(req, &[])? };
    let overlap = body.overlap_secs.unwrap_or(DEFAULT_OVERLAP_SECS);
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap) {
        return Err(ApiError::invalid("invalid_overlap", format!("`overlap_secs` is 0 to {MAX_OVERLAP_SECS}")));
    }
    let cur = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let now = ctx.p.now_ms();
    let current = crypto::open(ctx.cfg, &secret_context(client.id(), id), &cur.secret_sealed)
        .map_err(|e| ApiError::Internal(format!("webhook secret of {id}: {e}")))?;
    let seal = |field: &str, plain: &str| {
        crypto::seal(ctx.cfg, &secret_context(client.id(), field), plain).map_err(|e| ApiError::Internal(e.to_string()))
    };
    let secret = signing::new_secret()?;
    let (previous, until) = if overlap > 0 {
        (Param::Text(seal(&previous_field(id), current.expose())?), Param::Int(now + overlap * 1000))
    } else {
        (Param::Null, Param::Null)
    };
    let stmts = [
        Stmt::new(
            ROTATE,
            vec![
                client.id().into(),
                id.into(),
                seal(id, &secret)?.into(),
                previous,
                until,
                Param::Int(now),
                cur.secret_sealed.as_str().into(),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            event(&client, "webhook.secret_rotated", id, json!({"overlap_secs": overlap})),
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::conflict("rotation_conflict", "the secret was rotated meanwhile; try again"));
    }
    let row = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let mut view = serde_json::to_value(row.view(now)).map_err(|e| ApiError::Internal(e.to_string()))?;
    view["secret"] = secret.into();
    Ok(Response::json(200, &view))
}

crate::platform::rows::row! {
    struct SealedRow {
        client_id: String,
        id: String,
        secret_sealed: String,
        previous_secret_sealed: Option<String>,
    }
}

/// One bounded batch of an encryption key rotation: endpoint secrets still sealed under a retired
/// key are sealed again under the current one. Run by the cron and by the admin rotation call
/// until `remaining` is 0; only then may the retired key be removed.
pub async fn reseal_batch<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Value> {
    let prefix = format!("{}.{}.", crypto::FORMAT, ctx.cfg.current_key.id);
    let rows: Vec<SealedRow> =
        ctx.p.query_as(SEALED_UNDER_OLD_KEYS, &[prefix.as_str().into(), Param::Int(RESEAL_BATCH)]).await?;
    let reseal = |client: &str, field: &str, sealed: &str| -> Result<String, crypto::CryptoError> {
        let c = secret_context(client, field);
        crypto::seal(ctx.cfg, &c, crypto::open(ctx.cfg, &c, sealed)?.expose())
    };
    let mut stmts = Vec::new();
    let mut unreadable = Vec::new();
    for r in &rows {
        let current = reseal(&r.client_id, &r.id, &r.secret_sealed);
        let previous =
            r.previous_secret_sealed.as_deref().map(|p| reseal(&r.client_id, &previous_field(&r.id), p)).transpose();
        match (current, previous) {
            (Ok(cur), Ok(prev)) => stmts.push(Stmt::new(
                RESEAL,
                vec![
                    r.client_id.as_str().into(),
                    r.id.as_str().into(),
                    r.secret_sealed.as_str().into(),
                    cur.into(),
                    prev.into(),
                    r.previous_secret_sealed.clone().into(),
                ],
            )),
            (Err(e), _) | (_, Err(e)) => {
                unreadable.push(json!({"client_id": r.client_id, "endpoint_id": r.id, "error": e.to_string()}))
            }
        }
    }
    let resealed: u64 = if stmts.is_empty() { 0 } else { ctx.p.batch(&stmts).await?.iter().sum() };
    let remaining = ctx.p.query(COUNT_SEALED_UNDER_OLD_KEYS, &[prefix.as_str().into()]).await?;
    let remaining = remaining.first().and_then(|r| crate::platform::ports::col_i64(r, "n")).unwrap_or(0);
    Ok(json!({"rotated": resealed, "unreadable": unreadable, "remaining": remaining}))
}

/// An event as the event log shows it.
#[derive(Debug, Serialize)]
struct EventView {
    seq: i64,
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: Value,
    created_at: i64,
}

crate::platform::rows::row! {
    struct EventRow {
        seq: i64,
        id: String,
        kind: String,
        data: String,
        created_at: i64,
    }
}

/// `GET /api/clients/{id}/events?type=&cursor=&limit=`: the client's events, newest first.
pub async fn events<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::WebhooksManage).await?;
    let (cursor, limit) = page_params(req)?;
    let before = seq_cursor(&cursor)?;
    let kind = match req.query_param("type") {
        None => Param::Null,
        Some(t) => Kind::parse(&t)
            .map(|k| Param::from(k.as_str()))
            .ok_or_else(|| ApiError::bad_request("invalid_filter", "unknown event type"))?,
    };
    let rows: Vec<EventRow> = ctx.p.query_as(EVENTS, &[client.id().into(), before, Param::Int(limit), kind]).await?;
    let items: Vec<EventView> = rows
        .into_iter()
        .map(|r| EventView {
            seq: r.seq,
            id: r.id,
            kind: r.kind,
            data: serde_json::from_str(&r.data).unwrap_or(Value::Null),
            created_at: r.created_at,
        })
        .collect();
    Ok(page_response(&items, limit, |e| Some(e.seq.to_string())))
}

/// A newest-first cursor: the last sequence number seen, or NULL for the start.
pub fn seq_cursor(cursor: &str) -> ApiResult<Param> {
    if cursor.is_empty() {
        return Ok(Param::Null);
    }
    cursor
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Param::Int)
        .ok_or_else(|| ApiError::bad_request("invalid_cursor", "cursor is malformed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_name_known_types_once() {
        let list = |v: &[&str]| event_types_field(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            list(&["contact.created", "contact.created", "*"]).ok().as_deref(),
            Some(r#"["contact.created","*"]"#)
        );
        assert!(list(&[]).is_err());
        assert!(list(&["contact.exploded"]).is_err());
        assert!(list(&["Contact.Created"]).is_err());
    }

    #[test]
    fn cursors_are_positive_sequence_numbers() {
        assert_eq!(seq_cursor("").ok(), Some(Param::Null));
        assert_eq!(seq_cursor("42").ok(), Some(Param::Int(42)));
        assert!(seq_cursor("0").is_err());
        assert!(seq_cursor("-1").is_err());
        assert!(seq_cursor("x").is_err());
    }
}
