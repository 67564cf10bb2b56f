//! The widget domain gate. A publishable key names the client; the Origin header, parsed and
//! required to be canonical byte for byte, must match one of that client's verified domains.
//! A warm isolate decides from memory; entries expire so a revocation reaches every isolate
//! within `GATE_CACHE_TTL_MS` (30 s by default, well inside the 60 s promise).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{json, Value};

use crate::access::flags::{self, Flag};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, ClientScope};
use crate::crm::contacts::Submitted;
use crate::domains::origin::{parse_origin_header, Origin, OriginRule};
use crate::domains::DomainRow;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::json_body;
use crate::platform::http::{Method, Request, Response};
use crate::platform::ports::{decode_all, Database, Limit, Platform, Row};
use crate::platform::Ctx;

/// One indexed query loads a cold gate: the client by its unique key, its agency's status (a
/// suspended agency suspends its clients' widgets), its verified widget domains through
/// `domains_by_client`, and the client's and agency's branding by primary key, so the widget
/// config needs no second query.
pub const LOAD: &str = "SELECT c.id, c.agency_id, c.name, c.time_zone, c.plan, c.limits, c.feature_flags, c.bookable, c.shard, \
    CASE WHEN ag.status = 'active' THEN c.status ELSE ag.status END AS status, c.test_mode, d.hostname, d.scheme, d.port, \
    bc.primary_color AS c_primary_color, bc.secondary_color AS c_secondary_color, bc.tagline AS c_tagline, \
    bc.logo_file_id AS c_logo_file_id, ba.primary_color AS a_primary_color, ba.secondary_color AS a_secondary_color, \
    ba.tagline AS a_tagline, ba.logo_file_id AS a_logo_file_id \
    FROM clients c JOIN agencies ag ON ag.id = c.agency_id LEFT JOIN domains d ON d.client_id = c.id AND d.status = 'verified' \
    AND d.purpose IN ('widget', 'both') LEFT JOIN branding bc ON bc.owner_id = c.id \
    LEFT JOIN branding ba ON ba.owner_id = c.agency_id WHERE c.publishable_key = ?1";

const MAX_CACHE_ENTRIES: usize = 20_000;
const DENIED_MESSAGE: &str = "Domain not authorized for this client";

/// What the gate knows about one client.
#[derive(Debug, Clone)]
pub struct ClientGate {
    pub client_id: String,
    pub agency_id: String,
    /// The data shard holding the client's rows (`platform::router`).
    pub shard: i64,
    pub name: String,
    pub active: bool,
    pub test_mode: bool,
    /// The plan and limit overrides that cap the widget's leads (`access::plans`).
    pub plan: String,
    pub limits: String,
    /// The client's `booking` and `widget_leads` feature flags.
    pub booking: bool,
    pub leads: bool,
    pub rules: Vec<OriginRule>,
    /// The widget config as its JSON body, built and serialized with the gate, so a config
    /// request costs no D1 query and no serializing of its own.
    pub config: std::rc::Rc<[u8]>,
}

crate::platform::rows::row! {
    struct LoadRow {
        id: String,
        agency_id: String,
        name: String,
        plan: String,
        limits: String,
        feature_flags: String,
        bookable: i64,
        shard: i64,
        status: String,
        test_mode: i64,
        hostname: Option<String>,
        scheme: Option<String>,
        port: Option<i64>,
    }
}

/// The `c_`/`a_`-prefixed branding columns of a gate row, as (client, agency) branding rows.
fn branding_rows(row: &Row) -> (Row, Row) {
    let pick = |prefix: &str| -> Row {
        row.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|f| (f.to_string(), v.clone()))).collect()
    };
    (pick("c_"), pick("a_"))
}

pub async fn load(db: &impl Database, key: &str) -> ApiResult<Option<ClientGate>> {
    let raw = db.query(LOAD, &[key.into()]).await?;
    let Some((own, agency)) = raw.first().map(branding_rows) else { return Ok(None) };
    let rows: Vec<LoadRow> = decode_all(raw)?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let booking = flags::enabled(&first.feature_flags, Flag::Booking);
    let leads = flags::enabled(&first.feature_flags, Flag::WidgetLeads);
    let mut gate = ClientGate {
        client_id: first.id.clone(),
        agency_id: first.agency_id.clone(),
        shard: first.shard,
        name: first.name.clone(),
        active: first.status == "active",
        test_mode: first.test_mode != 0,
        plan: first.plan.clone(),
        limits: first.limits.clone(),
        booking,
        leads,
        rules: Vec::new(),
        config: serde_json::to_vec(&widget_config(
            &first.name,
            crate::branding::for_widget(&own, &agency),
            first.bookable != 0 && booking,
            leads,
        ))
        .map_err(|e| ApiError::Internal(format!("widget config: {e}")))?
        .into(),
    };
    for r in &rows {
        let Some(hostname) = &r.hostname else {
            continue;
        };
        if let Some(rule) = crate::domains::rule_from(hostname, r.scheme.as_deref().unwrap_or("https"), r.port) {
            gate.rules.push(rule);
        }
    }
    Ok(Some(gate))
}

struct Entry {
    fetched_ms: i64,
    gate: Option<Rc<ClientGate>>,
}

/// Per-isolate cache of gates by publishable key. Unknown keys are cached too, so a flood of
/// bad keys cannot turn into a flood of D1 queries.
#[derive(Default)]
pub struct GateCache {
    entries: RefCell<HashMap<String, Entry>>,
}

impl GateCache {
    fn get(&self, key: &str, now: i64, ttl: i64) -> Option<Option<Rc<ClientGate>>> {
        let entries = self.entries.borrow();
        let e = entries.get(key)?;
        (now - e.fetched_ms < ttl && now >= e.fetched_ms).then(|| e.gate.clone())
    }

    fn put(&self, key: &str, now: i64, gate: Option<Rc<ClientGate>>) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= MAX_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_string(), Entry { fetched_ms: now, gate });
    }

    /// Drops every entry a tenant's change can affect: the client's own, or, for an agency
    /// (whose branding its clients inherit), all of its clients'. Other isolates catch up within
    /// the TTL.
    pub fn forget_tenant(&self, tenant_id: &str) {
        self.entries
            .borrow_mut()
            .retain(|_, e| e.gate.as_ref().is_none_or(|g| g.client_id != tenant_id && g.agency_id != tenant_id));
    }
}

/// Why an origin was refused; for logs and the admin explainer, never the response.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial(pub String);

/// The gate's decision for one Origin header value.
pub fn decide(gate: &ClientGate, raw_origin: Option<&str>) -> Result<(Origin, OriginRule), Denial> {
    if !gate.active {
        return Err(Denial("the client is suspended".into()));
    }
    let origin = parse_origin_header(raw_origin.unwrap_or("")).map_err(|e| Denial(e.to_string()))?;
    if origin.is_dev_localhost() {
        if !gate.test_mode {
            return Err(Denial(
                "development origins (http://localhost, http://*.localhost) are accepted only in test mode".into(),
            ));
        }
        // In test mode a verified localhost name matches on any port.
        return gate
            .rules
            .iter()
            .find(|r| r.pattern.matches_host(origin.host()))
            .map(|r| (origin.clone(), r.clone()))
            .ok_or_else(|| Denial(format!("{} is not a verified domain of this client", origin.host())));
    }
    gate.rules
        .iter()
        .find(|r| r.matches(&origin))
        .map(|r| (origin.clone(), r.clone()))
        .ok_or_else(|| Denial(format!("{} matches no verified domain of this client", origin.serialize())))
}

crate::platform::body::body! {
    struct CheckBody {
        origin: Option<String>,
    }
}

/// `POST /api/clients/{id}/domains/check {origin}`: "why doesn't my widget show?" Runs the gate's
/// own decision for an Origin against the client's domains, with a reason for each one.
pub async fn check<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, row) = access::client(ctx, req, who, client_id, Permission::DomainsManage).await?;
    let body: CheckBody = json_body(req, &[])?;
    let gate = load(ctx.p, &row.publishable_key).await?.ok_or(ApiError::NotFound)?;
    let domains = crate::domains::list_for_client(ctx.p, &client).await?;
    Ok(Response::json(200, &explain(&gate, &domains, body.origin.as_deref())))
}

/// The admin explainer: the canonical origin, the rule that matched, or why each domain didn't.
pub fn explain(gate: &ClientGate, domains: &[DomainRow], raw_origin: Option<&str>) -> Value {
    let parsed = parse_origin_header(raw_origin.unwrap_or(""));
    let decision = decide(gate, raw_origin);
    let candidates: Vec<Value> = domains
        .iter()
        .map(|d| {
            let rule = d.rule();
            let why_not = match (&parsed, &rule) {
                (_, None) => Some("the stored domain is invalid".to_string()),
                (Err(_), _) => Some("the origin itself is invalid".to_string()),
                (Ok(o), Some(r)) => {
                    let host_ok = r.pattern.matches_host(o.host());
                    if !host_ok {
                        Some(if r.pattern.is_wildcard() && o.host() == r.pattern.base().as_str() {
                            "a wildcard matches subdomains only, never the apex".to_string()
                        } else {
                            "the hostname differs".to_string()
                        })
                    } else if d.purpose == "portal" {
                        Some("this domain is registered for the portal only".to_string())
                    } else if d.status != "verified" {
                        Some(format!("the domain is {}, not verified", d.status))
                    } else if o.is_dev_localhost() && !gate.test_mode {
                        Some("localhost origins need the client in test mode".to_string())
                    } else if !o.is_dev_localhost() && r.scheme != o.scheme() {
                        Some(format!("scheme differs: registered {}, got {}", r.scheme.as_str(), o.scheme().as_str()))
                    } else if !o.is_dev_localhost() && r.port != o.port() {
                        Some("port differs from the registered one".to_string())
                    } else {
                        None
                    }
                }
            };
            json!({"domain": d.hostname, "status": d.status, "purpose": d.purpose, "rule": rule.map(|r| r.to_string()), "why_not": why_not})
        })
        .collect();
    json!({
        "origin": raw_origin,
        "canonical": parsed.as_ref().ok().map(Origin::serialize),
        "origin_error": parsed.as_ref().err().map(|e| json!({"code": e.code(), "reason": e.to_string()})),
        "test_mode": gate.test_mode,
        "allowed": decision.is_ok(),
        "matched_rule": decision.as_ref().ok().map(|(_, r)| r.to_string()),
        "reason": decision.as_ref().err().map(|d| d.0.clone()),
        "domains": candidates,
    })
}

/// An error a widget handler ran into, as its answer; a server fault's detail goes to the log line.
fn answer<P: Platform>(ctx: &Ctx<'_, P>, e: ApiError) -> Response {
    if e.is_server_fault() {
        ctx.note_fault(e.to_string());
    }
    e.into_response()
}

fn denied() -> Response {
    ApiError::Forbidden("domain_not_authorized", DENIED_MESSAGE.into()).into_response().with_header("vary", "Origin")
}

/// `/api/widget/v1/...`: every request, preflights included, passes the gate first.
pub async fn handle<P: Platform>(
    ctx: &Ctx<'_, P>,
    cache: &GateCache,
    req: &Request,
    rest: &[&str],
) -> ApiResult<Response> {
    let key = req.query_param("key").unwrap_or_default();
    if !crate::platform::ids::looks_like_token(&key, "pk_") || req.header_count("origin") > 1 {
        ctx.note_gate("denied_malformed");
        return Ok(denied());
    }
    let now = ctx.p.now_ms();
    let gate = match cache.get(&key, now, ctx.cfg.gate_cache_ttl_ms) {
        Some(g) => g,
        None => {
            // Only misses cost D1, so only misses are counted: a flood of made-up keys from one
            // address stops here, and the warm, allowed path never pays for the limiter.
            if !allowed(ctx, Limit::GateMiss, req.client_ip()).await? {
                ctx.note_gate("denied_flood");
                return Ok(denied());
            }
            let g = load(ctx.p, &key).await?.map(Rc::new);
            cache.put(&key, now, g.clone());
            g
        }
    };
    let Some(gate) = gate else {
        ctx.note_gate("denied_unknown_key");
        return Ok(denied());
    };
    ctx.note_tenant(&gate.client_id);
    let origin = match decide(&gate, req.header("origin")) {
        Ok((origin, _)) => origin,
        Err(_) => {
            ctx.note_gate("denied_origin");
            return Ok(denied());
        }
    };
    ctx.note_gate("allowed");
    // The routes that read or write the client's data find its shard here, with no lookup; the
    // config and a preflight touch no database at all.
    if !matches!((req.method, rest), (Method::Get, ["config"]) | (Method::Options, _)) {
        ctx.p.learn_home(&gate.client_id, gate.shard);
    }
    let mut resp = match (req.method, rest) {
        (Method::Options, _) => Response::new(204)
            .with_header("access-control-allow-methods", "GET, POST, OPTIONS")
            .with_header("access-control-allow-headers", "content-type")
            .with_header("access-control-max-age", "600"),
        (Method::Get, ["config"]) => Response::text(200, "application/json; charset=utf-8", gate.config.to_vec()),
        (Method::Post, ["leads"]) if !gate.leads => flags::disabled(Flag::WidgetLeads).into_response(),
        (Method::Get, ["services"] | ["availability"]) | (Method::Post, ["bookings"]) if !gate.booking => {
            flags::disabled(Flag::Booking).into_response()
        }
        (Method::Post, ["leads"]) => {
            // Boxed: a lead write is rare next to config reads and preflights.
            Box::pin(create_lead(ctx, req, &key, &gate, &origin)).await.unwrap_or_else(|e| answer(ctx, e))
        }
        (Method::Get, ["services"]) => Box::pin(book::services(ctx, &gate)).await.unwrap_or_else(|e| answer(ctx, e)),
        (Method::Get, ["availability"]) => {
            Box::pin(book::availability(ctx, req, &gate)).await.unwrap_or_else(|e| answer(ctx, e))
        }
        (Method::Post, ["bookings"]) => {
            Box::pin(book::create(ctx, req, &key, &gate, &origin)).await.unwrap_or_else(|e| answer(ctx, e))
        }
        (_, ["config"] | ["leads"] | ["services"] | ["availability"] | ["bookings"]) => {
            ApiError::MethodNotAllowed.into_response()
        }
        _ => ApiError::NotFound.into_response(),
    };
    resp.set_header("access-control-allow-origin", origin.serialize());
    resp.set_header("vary", "Origin");
    Ok(resp)
}

fn widget_config(name: &str, branding: Value, bookable: bool, leads: bool) -> Value {
    json!({
        "client": {"name": name},
        "branding": branding,
        "booking": {"enabled": bookable, "title": "Book an appointment", "submit_label": "Confirm booking"},
        "form": {
            "enabled": leads,
            "title": "Get in touch",
            "submit_label": "Send",
            "success_message": "Thanks! We'll be in touch soon.",
            "fields": [
                {"name": "name", "label": "Name", "type": "text", "required": true, "max_length": 120},
                {"name": "email", "label": "Email", "type": "email", "required": true, "max_length": 254},
                {"name": "phone", "label": "Phone", "type": "tel", "required": false, "max_length": 40},
                {"name": "message", "label": "Message", "type": "textarea", "required": false, "max_length": 2000}
            ]
        }
    })
}

crate::platform::body::body! {
    struct Lead {
        name: String,
        email: String,
        phone: Option<String>,
        message: Option<String>,
        /// The honeypot: hidden in the widget, so only a bot fills it in.
        website: Option<String>,
        /// How long the form was on screen before it was sent.
        elapsed_ms: Option<i64>,
        /// Client-generated; a retried submit with the same id makes one lead. `Idempotency-Key`
        /// is accepted as well.
        submission_id: Option<String>,
        /// A visitor the client's backend signed for (see `identity`).
        identity: Option<super::identity::SignedIdentity>,
    }
}

/// Seconds a widget write waits after a rate-limit refusal: the limiters' window.
const LIMIT_WINDOW_SECS: u64 = 60;

/// Asks a Rate Limiting binding about one key. A request without a client IP (only outside
/// Cloudflare) is not limited per address.
async fn allowed<P: Platform>(ctx: &Ctx<'_, P>, limit: Limit, key: Option<&str>) -> ApiResult<bool> {
    let Some(key) = key else { return Ok(true) };
    ctx.p.allow(limit, key).await.map_err(|e| ApiError::Misconfigured(e.to_string()))
}

/// The widget's Book tab: the client's bookable services, one day's free slots across its staff,
/// and the booking itself (rate-limited like leads, with the same honeypot and fill-time checks).
mod book {
    use serde::Serialize;
    use serde_json::json;

    use super::{allowed, too_many, ClientGate};
    use crate::access::audit::{self, Actor, Event};
    use crate::access::{store, ClientScope};
    use crate::booking::appointments::{self, Booked, Booker, Person};
    use crate::domains::origin::Origin;
    use crate::platform::error::{ApiError, ApiResult};
    use crate::platform::extract::json_body;
    use crate::platform::http::{Request, Response};
    use crate::platform::ids::new_id;
    use crate::platform::ports::{Limit, Platform};
    use crate::platform::{tz, Ctx};

    /// Active services at least one active staff member offers.
    pub const BOOKABLE_SERVICES: &str = "SELECT sv.id, sv.name, sv.duration_min, sv.price_minor, sv.currency \
        FROM services sv WHERE sv.client_id = ?1 AND sv.active = 1 AND EXISTS (SELECT 1 FROM staff_services ss \
        JOIN staff st ON st.id = ss.staff_id WHERE ss.client_id = ?1 AND ss.service_id = sv.id AND st.active = 1) \
        ORDER BY sv.name LIMIT 50";

    crate::platform::rows::row! {
        #[derive(Serialize)]
        struct ServiceView {
            id: String,
            name: String,
            duration_min: i64,
            price_minor: i64,
            currency: String,
        }
    }

    crate::platform::body::body! {
        struct BookingBody {
            service_id: String,
            staff_id: String,
            starts_at: String,
            name: String,
            email: String,
            phone: Option<String>,
            website: Option<String>,
            elapsed_ms: Option<i64>,
            identity: Option<crate::widget::identity::SignedIdentity>,
            /// Client-generated; a retried submit with the same id books once (`Idempotency-Key`
            /// is accepted as well).
            submission_id: Option<String>,
        }
    }

    fn scope(gate: &ClientGate) -> ClientScope {
        ClientScope::by_publishable_key(&gate.client_id, &gate.agency_id)
    }

    pub async fn services<P: Platform>(ctx: &Ctx<'_, P>, gate: &ClientGate) -> ApiResult<Response> {
        let items: Vec<ServiceView> = ctx.p.query_as(BOOKABLE_SERVICES, &[gate.client_id.as_str().into()]).await?;
        Ok(Response::json(200, &json!({"items": items})))
    }

    /// `GET .../availability?service=&date=`: one local day, every staff member's free slots merged.
    pub async fn availability<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, gate: &ClientGate) -> ApiResult<Response> {
        let service = req.query_param("service").unwrap_or_default();
        let date = req.query_param("date").unwrap_or_default();
        let client = scope(gate);
        let row = store::client(ctx.p, &gate.client_id).await?.ok_or(ApiError::NotFound)?;
        let all = appointments::free_slots(ctx.p, &client, &row, &service, &date, &date, None, ctx.p.now_ms()).await?;
        let mut slots: Vec<serde_json::Value> = Vec::new();
        for staff in all["staff"].as_array().into_iter().flatten() {
            for slot in staff["slots"].as_array().into_iter().flatten() {
                let mut s = slot.clone();
                s["staff_id"] = staff["staff_id"].clone();
                s["staff_name"] = staff["name"].clone();
                slots.push(s);
            }
        }
        slots.sort_by(|a, b| a["starts_at"].as_str().cmp(&b["starts_at"].as_str()));
        Ok(Response::json(200, &json!({"date": date, "time_zone": row.time_zone, "slots": slots})))
    }

    pub async fn create<P: Platform>(
        ctx: &Ctx<'_, P>,
        req: &Request,
        key: &str,
        gate: &ClientGate,
        origin: &Origin,
    ) -> ApiResult<Response> {
        if !allowed(ctx, Limit::WidgetIp, req.client_ip()).await? || !allowed(ctx, Limit::WidgetKey, Some(key)).await? {
            return Err(too_many());
        }
        let body: BookingBody = json_body(req, &["client_id", "status", "source", "contact_id", "ends_at"])?;
        if body.website.as_deref().is_some_and(|w| !w.trim().is_empty()) {
            ctx.p.log("info", &format!("widget {}: honeypot filled, booking dropped", gate.client_id));
            return Ok(Response::json(202, &json!({"status": "received"})));
        }
        if body.elapsed_ms.is_some_and(|ms| ms < ctx.cfg.widget_min_fill_ms) {
            return Err(ApiError::invalid(
                "submitted_too_fast",
                "the form was sent faster than a person can fill it in",
            ));
        }
        let sub = super::submission_id(req, body.submission_id.clone())?;
        let client = scope(gate);
        let row = store::client(ctx.p, &gate.client_id).await?.ok_or(ApiError::NotFound)?;
        let zone = appointments::zone_of(ctx.p, &row)?;
        let now = ctx.p.now_ms();
        let (shape, slot) =
            appointments::checked_slot(ctx.p, &client, &row, &body.service_id, &body.staff_id, &body.starts_at, now)
                .await?;
        let (visitor, said) = crate::widget::identity::check(ctx, &client, body.identity.as_ref()).await?;
        let email = visitor.as_ref().map_or(body.email, |v| v.email.clone());
        let person = Person { name: body.name, email, phone: body.phone };
        let contacts = crate::access::plans::limit_of(&gate.plan, &gate.limits, crate::access::plans::Metric::Contacts);
        let mut booker = Booker::person(&person, Some(&origin.serialize()), contacts)?;
        if let (Booker::New { external_user_id, .. }, Some(v)) = (&mut booker, &visitor) {
            *external_user_id = Some(v.user_id.clone());
        }
        let id = new_id("apt")?;
        let actor = Actor {
            user_id: None,
            role: Some("widget".into()),
            ip: req.client_ip().unwrap_or("unknown").to_string(),
            user_agent: req.user_agent().to_string(),
        };
        let audit_row = audit::after_change(
            &actor,
            Event {
                tenant_id: client.id(),
                action: "appointment.created",
                target_type: "appointment",
                target_id: Some(&id),
                metadata: json!({"source": "widget", "origin": origin.serialize(), "starts_at": tz::instant_string(slot.start_ms)}),
            },
            now,
        )?;
        let booked = appointments::book(
            ctx,
            &id,
            audit_row,
            &client,
            &body.service_id,
            &body.staff_id,
            booker,
            shape,
            &slot,
            "widget",
            None,
            sub.as_deref(),
        )
        .await?;
        let (status, id, start, state, replayed) = match booked {
            Booked::Created => (201, id, slot.start_ms, "scheduled".to_string(), false),
            Booked::Replayed(existing, start, state) => (200, existing, start, state, true),
        };
        let mut answer = json!({"id": id, "status": state, "starts_at": tz::instant_string(start),
            "local_start": tz::local_label(&zone, start), "time_zone": row.time_zone});
        if replayed {
            answer["replayed"] = json!(true);
        }
        if let Some(said) = said {
            answer["identity"] = json!(said);
        }
        Ok(Response::json(status, &answer))
    }
}

fn too_many() -> ApiError {
    ApiError::TooMany("rate_limited", "too many submissions; try again in a minute".into(), Some(LIMIT_WINDOW_SECS))
}

/// A submission id: 8-128 characters of [A-Za-z0-9_-].
fn submission_id(req: &Request, body: Option<String>) -> ApiResult<Option<String>> {
    let raw = body.or_else(|| req.header("idempotency-key").map(String::from));
    match raw {
        None => Ok(None),
        Some(s)
            if (8..=128).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(Some(s))
        }
        Some(_) => Err(ApiError::invalid(
            "invalid_submission_id",
            "a submission id is 8-128 characters of A-Z, a-z, 0-9, - and _",
        )),
    }
}

async fn create_lead<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    key: &str,
    gate: &ClientGate,
    origin: &Origin,
) -> ApiResult<Response> {
    // Per address first, so one noisy address does not spend the whole site's allowance.
    if !allowed(ctx, Limit::WidgetIp, req.client_ip()).await? || !allowed(ctx, Limit::WidgetKey, Some(key)).await? {
        return Err(too_many());
    }
    let lead: Lead = json_body(req, &["client_id", "source", "id", "origin"])?;
    if lead.website.as_deref().is_some_and(|w| !w.trim().is_empty()) {
        // Answer as if it worked, so the bot learns nothing (not even about its submission id);
        // store nothing.
        ctx.p.log("info", &format!("widget {}: honeypot filled, submission dropped", gate.client_id));
        return Ok(Response::json(202, &json!({"status": "received"})));
    }
    let sub = submission_id(req, lead.submission_id)?;
    if lead.elapsed_ms.is_some_and(|ms| ms < ctx.cfg.widget_min_fill_ms) {
        return Err(ApiError::invalid("submitted_too_fast", "the form was sent faster than a person can fill it in"));
    }
    let scope = ClientScope::by_publishable_key(&gate.client_id, &gate.agency_id);
    let (visitor, said) = super::identity::check(ctx, &scope, lead.identity.as_ref()).await?;
    // The form marks the address required (`widget_config`); a verified visitor brings their own.
    if visitor.is_none() && lead.email.trim().is_empty() {
        return Err(ApiError::invalid("invalid_field", "`email` is required"));
    }
    let new = crate::crm::contacts::NewContact {
        name: lead.name,
        email: Some(visitor.as_ref().map_or(lead.email, |v| v.email.clone())),
        phone: lead.phone,
        message: lead.message,
    };
    let external = visitor.as_ref().map(|v| v.user_id.as_str());
    let actor = crate::access::audit::Actor {
        user_id: None,
        role: Some("widget".into()),
        ip: req.client_ip().unwrap_or("unknown").to_string(),
        user_agent: req.user_agent().to_string(),
    };
    let intake = crate::crm::contacts::Intake { actor: &actor, plan: &gate.plan, limits: &gate.limits };
    let (status, mut body) = match crate::crm::contacts::insert_widget(
        ctx,
        &scope,
        intake,
        new,
        &origin.serialize(),
        sub.as_deref(),
        external,
    )
    .await?
    {
        Submitted::Created(id) => (201, json!({"id": id, "status": "received"})),
        Submitted::Replayed(id) => (200, json!({"id": id, "status": "received", "replayed": true})),
    };
    if let Some(said) = said {
        body["identity"] = json!(said);
    }
    Ok(Response::json(status, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domains::hostname::DomainPattern;
    use crate::domains::origin::Scheme;

    fn gate(test_mode: bool) -> ClientGate {
        let rule = |p: &str, s, port| OriginRule::new(DomainPattern::parse(p).unwrap(), s, port);
        ClientGate {
            client_id: "cli_x".into(),
            agency_id: "agy_x".into(),
            shard: 0,
            config: std::rc::Rc::from(&b"null"[..]),
            name: "X".into(),
            active: true,
            test_mode,
            plan: "starter".into(),
            limits: "{}".into(),
            booking: true,
            leads: true,
            rules: vec![
                rule("example.com", Scheme::Https, None),
                rule("*.shop.example", Scheme::Https, None),
                rule("shop.localhost", Scheme::Http, None),
            ],
        }
    }

    #[test]
    fn only_exact_registered_origins_pass() {
        let g = gate(false);
        assert!(decide(&g, Some("https://example.com")).is_ok());
        assert!(decide(&g, Some("https://a.shop.example")).is_ok());
        for bad in [
            None,
            Some("null"),
            Some("https://shop.example"),
            Some("http://example.com"),
            Some("https://EXAMPLE.com"),
            Some("https://example.com:443"),
        ] {
            assert!(decide(&g, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn localhost_origins_need_test_mode_and_a_verified_name() {
        assert!(decide(&gate(false), Some("http://shop.localhost:5173")).is_err());
        assert!(decide(&gate(true), Some("http://shop.localhost:5173")).is_ok());
        assert!(decide(&gate(true), Some("http://evil.localhost:5173")).is_err());
        assert!(
            decide(&gate(true), Some("https://shop.localhost:5173")).is_err(),
            "https localhost is not a dev origin and not registered"
        );
    }

    #[test]
    fn a_suspended_client_refuses_everything() {
        let mut g = gate(false);
        g.active = false;
        assert!(decide(&g, Some("https://example.com")).is_err());
    }

    #[test]
    fn the_cache_expires_and_forgets() {
        let c = GateCache::default();
        c.put("pk", 1000, Some(Rc::new(gate(false))));
        assert!(c.get("pk", 1500, 1000).is_some());
        assert!(c.get("pk", 2000, 1000).is_none(), "expired at ttl");
        c.put("pk", 3000, Some(Rc::new(gate(false))));
        c.forget_tenant("cli_x");
        assert!(c.get("pk", 3001, 1000).is_none());
        c.put("pk", 4000, Some(Rc::new(gate(false))));
        c.forget_tenant("agy_other");
        assert!(c.get("pk", 4001, 1000).is_some(), "another agency's change keeps the entry");
        c.forget_tenant("agy_x");
        assert!(c.get("pk", 4002, 1000).is_none(), "its agency's change drops it");
    }

    #[test]
    fn the_cache_holds_many_keys_and_starts_over_only_when_full() {
        let c = GateCache::default();
        for i in 0..MAX_CACHE_ENTRIES {
            c.put(&format!("pk{i}"), 1000, None);
        }
        assert!(c.get("pk0", 1001, 1000).is_some(), "every key up to the cap stays");
        assert!(c.get(&format!("pk{}", MAX_CACHE_ENTRIES - 1), 1001, 1000).is_some());
        c.put("one-more", 1000, None);
        assert!(c.get("pk0", 1001, 1000).is_none(), "a full cache starts over");
        assert!(c.get("one-more", 1001, 1000).is_some());
    }

    fn domain(hostname: &str, scheme: &str, port: Option<i64>, purpose: &str, status: &str) -> DomainRow {
        DomainRow {
            id: "dom_x".into(),
            client_id: "cli_x".into(),
            hostname: hostname.into(),
            scheme: scheme.into(),
            port,
            purpose: purpose.into(),
            status: status.into(),
            status_reason: None,
            verified_by: None,
            verification_token: "t".into(),
            consecutive_failures: 0,
            verified_at: None,
            last_checked_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// The explainer's decision table: for each origin, whether it is allowed, the rule that
    /// matched, and why each registered domain did not.
    #[test]
    fn the_explainer_says_why_each_domain_did_or_did_not_match() {
        let domains = vec![
            domain("example.com", "https", None, "widget", "verified"),
            domain("*.shop.example", "https", None, "widget", "verified"),
            domain("portal.example", "https", None, "portal", "verified"),
            domain("pending.example", "https", None, "widget", "pending"),
            domain("ported.example", "https", Some(8443), "widget", "verified"),
            domain("shop.localhost", "http", None, "widget", "verified"),
        ];
        let why = |v: &Value, d: &str| {
            v["domains"].as_array().unwrap().iter().find(|x| x["domain"] == d).unwrap()["why_not"].clone()
        };
        let g = gate(false);
        let ok = explain(&g, &domains, Some("https://example.com"));
        assert_eq!(ok["allowed"], true);
        assert_eq!(ok["matched_rule"], "https://example.com");
        assert_eq!(ok["reason"], Value::Null);
        assert_eq!(why(&ok, "example.com"), Value::Null);
        assert_eq!(why(&ok, "pending.example"), "the hostname differs");
        assert_eq!(why(&ok, "*.shop.example"), "the hostname differs", "not the apex message for a stranger");
        let apex = explain(&g, &domains, Some("https://shop.example"));
        assert_eq!(apex["allowed"], false);
        assert_eq!(why(&apex, "*.shop.example"), "a wildcard matches subdomains only, never the apex");
        let portal = explain(&g, &domains, Some("https://portal.example"));
        assert_eq!(why(&portal, "portal.example"), "this domain is registered for the portal only");
        let pending = explain(&g, &domains, Some("https://pending.example"));
        assert_eq!(why(&pending, "pending.example"), "the domain is pending, not verified");
        let scheme = explain(&g, &domains, Some("http://example.com"));
        assert_eq!(why(&scheme, "example.com"), "scheme differs: registered https, got http");
        let port = explain(&g, &domains, Some("https://ported.example"));
        assert_eq!(why(&port, "ported.example"), "port differs from the registered one");
        let local = explain(&g, &domains, Some("http://shop.localhost:5173"));
        assert_eq!(why(&local, "shop.localhost"), "localhost origins need the client in test mode");
        assert_eq!(local["test_mode"], false);
        let in_test = explain(&gate(true), &domains, Some("http://shop.localhost:5173"));
        assert_eq!(in_test["allowed"], true);
        assert_eq!(why(&in_test, "shop.localhost"), Value::Null);
        let bad = explain(&g, &domains, Some("https://EXAMPLE.com"));
        assert_eq!(bad["allowed"], false);
        assert_eq!(bad["canonical"], Value::Null);
        assert_eq!(bad["origin_error"]["code"], "origin_not_canonical");
        assert_eq!(why(&bad, "example.com"), "the origin itself is invalid");
        let none = explain(&g, &domains, None);
        assert_eq!(none["allowed"], false);
        assert!(none["reason"].as_str().is_some());
    }

    #[test]
    fn submission_ids_are_eight_to_128_safe_characters() {
        let req = Request::new(Method::Post, "/api/widget/v1/leads");
        let ok = ["sub_0123", "a-b_c-d_", &"x".repeat(128), "ABCdef0123456789"];
        for id in ok {
            assert_eq!(submission_id(&req, Some(id.to_string())).unwrap().as_deref(), Some(id), "{id}");
        }
        for bad in ["short", "1234567", "has space 123", "dots.are.out", "slash/0123", &"x".repeat(129), "ünïcode-1234"]
        {
            assert!(submission_id(&req, Some(bad.to_string())).is_err(), "{bad}");
        }
        assert_eq!(submission_id(&req, None).unwrap(), None);
        let with_header = req.clone().with_header("idempotency-key", "header-key-01");
        assert_eq!(submission_id(&with_header, None).unwrap().as_deref(), Some("header-key-01"));
        assert_eq!(
            submission_id(&with_header, Some("body-key-0001".into())).unwrap().as_deref(),
            Some("body-key-0001")
        );
    }
}
