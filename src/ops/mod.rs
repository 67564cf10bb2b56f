//! Operations: the request log line, per-tenant metrics and a client's health.
//!
//! - **Logs.** One JSON object per request (`RequestRecord::line`), with stable field names, the
//!   route's template rather than its path (no ids, tokens or query strings), at a level set by
//!   `LOG_LEVEL`.
//! - **Analytics Engine.** One data point per request, indexed by tenant (`RequestRecord::point`).
//! - **Daily counters in D1.** Each isolate adds up its requests per tenant and day in memory
//!   (`Counters`) and writes them as one batch of upserts after a response, at most every
//!   `METRICS_FLUSH_SECS`, so no request waits on an extra D1 round trip. Counts an isolate holds
//!   when it is evicted are lost; Analytics Engine has every request.
//! - **Health.** Domains, the last widget hit, the error rate and quota pressure of one client.

pub mod health;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde_json::{json, Value};

use crate::access::roles::{Permission, Principal};
use crate::access::{self};
use crate::platform::error::{ApiError, ApiResult, StoreError};
use crate::platform::http::{Request, Response};
use crate::platform::ports::{json_list, DataPoint, Database, Param, Platform, Stmt};
use crate::platform::tz::{parse_date, Date};
use crate::platform::Ctx;

/// How a request went, for its log line, its data point and its tenant's counters.
#[derive(Debug)]
pub struct RequestRecord<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    /// The route's template; None when no route matched.
    pub route: Option<&'static str>,
    pub status: u16,
    pub duration_ms: i64,
    pub queries: u32,
    pub tenant: Option<&'a str>,
    pub gate: Option<&'static str>,
    /// The error's code, for a 4xx or 5xx.
    pub error_code: Option<&'a str>,
    /// A 5xx's internal detail: logged, never sent.
    pub error_detail: Option<String>,
}

impl RequestRecord<'_> {
    /// `error` for a 5xx; `debug` for the traffic that comes with every page view of a client's
    /// site, counted in full by Analytics Engine and the daily counters: a widget read the gate
    /// decided (a config fetch, a slot list or a preflight, allowed or refused) and a successful
    /// read of a static file (`/widget.js`, a public asset, the console's bundle) or of
    /// `/healthz`; else `info`.
    pub fn level(&self) -> &'static str {
        let read = matches!(self.method, "GET" | "HEAD" | "OPTIONS");
        let static_file = matches!(self.route, Some("/widget.js" | "/healthz" | "/openapi.json" | "/assets/{file_id}"))
            && self.status < 400;
        if self.status >= 500 {
            "error"
        } else if read && (self.gate.is_some() || static_file) {
            "debug"
        } else {
            "info"
        }
    }

    /// The log line: one JSON object. Field names are part of the contract (README, "Logs").
    pub fn line(&self, now_ms: i64) -> String {
        let mut v = json!({
            "ts": crate::platform::tz::instant_string(now_ms),
            "level": self.level(),
            "event": "request",
            "request_id": self.request_id,
            "method": self.method,
            "route": self.route.unwrap_or("unmatched"),
            "status": self.status,
            "duration_ms": self.duration_ms,
            "queries": self.queries,
            "tenant": self.tenant,
        });
        if let Some(g) = self.gate {
            v["gate"] = json!(g);
        }
        if let Some(code) = self.error_code {
            v["error"] = json!({"code": code});
            if let Some(d) = &self.error_detail {
                v["error"]["detail"] = json!(d);
            }
        }
        v.to_string()
    }

    /// The Analytics Engine data point: indexed by tenant ("none" before one is known); blobs
    /// route, method, gate decision, status class; doubles status and duration.
    pub fn point(&self) -> DataPoint<'_> {
        DataPoint {
            index: self.tenant.unwrap_or("none"),
            blobs: [self.route.unwrap_or("unmatched"), self.method, self.gate.unwrap_or(""), status_class(self.status)],
            doubles: [f64::from(self.status), self.duration_ms as f64],
        }
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        500.. => "5xx",
        400..=499 => "4xx",
        300..=399 => "3xx",
        _ => "2xx",
    }
}

/// One tenant's counts for one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Day {
    pub requests: i64,
    pub errors: i64,
    pub widget_allowed: i64,
    pub widget_denied: i64,
    pub leads: i64,
    pub bookings: i64,
    /// The last allowed widget request's time (ms), 0 for none.
    pub last_widget_at: i64,
}

/// An isolate's counts not yet written, by (tenant, UTC day number).
#[derive(Default)]
pub struct Counters {
    days: RefCell<HashMap<(String, i64), Day>>,
    /// When the oldest unwritten count was made.
    since: Cell<Option<i64>>,
}

/// Entries an isolate holds before it writes them whatever the time: a bound on the batch.
const MAX_PENDING: usize = 200;

/// Adds `?3..?9` to a tenant's day, creating the row on its first count. Atomic per statement, so
/// isolates writing the same day at once add up. Only live tenants' counts are written
/// (`write_counters`).
pub const UPSERT_DAY: &str = "INSERT INTO tenant_daily (tenant_id, day, requests, errors, widget_allowed, \
    widget_denied, leads, bookings, last_widget_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
    ON CONFLICT (tenant_id, day) DO UPDATE SET requests = requests + excluded.requests, \
    errors = errors + excluded.errors, widget_allowed = widget_allowed + excluded.widget_allowed, \
    widget_denied = widget_denied + excluded.widget_denied, leads = leads + excluded.leads, \
    bookings = bookings + excluded.bookings, last_widget_at = max(last_widget_at, excluded.last_widget_at)";
/// Which of the tenants (a JSON list) are live: agencies, and clients not deleted. A control-plane
/// read before the counters' shard write.
pub const LIVE_TENANTS: &str = "SELECT id, shard FROM clients WHERE id IN (SELECT value FROM json_each(?1)) \
    AND deleted_at IS NULL UNION ALL SELECT id, shard FROM agencies WHERE id IN (SELECT value FROM json_each(?1))";

/// Writes counts taken from `Counters`, dropping a deleted client's (and a moving one's): its purge, which may take
/// several runs, must not find a row written behind it. One batch per shard, each all or nothing:
/// counts it could not write are lost, never doubled. Answers how many rows it wrote.
pub async fn write_counters(db: &impl Database, stmts: Vec<Stmt>) -> Result<usize, StoreError> {
    let tenant = |s: &Stmt| match s.params.first() {
        Some(Param::Text(t)) => t.clone(),
        _ => String::new(),
    };
    let ids = json_list(stmts.iter().map(tenant));
    let mut home: HashMap<String, i64> = HashMap::new();
    for r in db.query(LIVE_TENANTS, &[ids.into()]).await? {
        if let (Some(id), Some(shard)) = (r.get("id").and_then(Value::as_str), r.get("shard").and_then(Value::as_i64)) {
            db.learn_home(id, shard);
            home.insert(id.to_string(), shard);
        }
    }
    let mut by_shard: std::collections::BTreeMap<i64, Vec<Stmt>> = std::collections::BTreeMap::new();
    for s in stmts {
        // A tenant whose agency is moving between shards (a fenced shard, below 0) takes no
        // writes: its counts are dropped, like a deleted client's.
        if let Some(shard) = home.get(&tenant(&s)).filter(|s| **s >= 0) {
            by_shard.entry(*shard).or_default().push(s);
        }
    }
    let mut written = 0;
    for (_, batch) in by_shard {
        db.batch(&batch).await?;
        written += batch.len();
    }
    Ok(written)
}

pub const SELECT_RANGE: &str = "SELECT day, requests, errors, widget_allowed, widget_denied, leads, bookings, \
    last_widget_at FROM tenant_daily WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day";

impl Counters {
    /// Counts one request of `tenant`.
    pub fn count(&self, tenant: &str, now_ms: i64, r: &RequestRecord<'_>) {
        let day = now_ms.div_euclid(86_400_000);
        let mut days = self.days.borrow_mut();
        let d = days.entry((tenant.to_string(), day)).or_default();
        d.requests += 1;
        if r.status >= 500 {
            d.errors += 1;
        }
        match r.gate {
            Some("allowed") => {
                d.widget_allowed += 1;
                d.last_widget_at = d.last_widget_at.max(now_ms);
            }
            Some(_) => d.widget_denied += 1,
            None => {}
        }
        if r.status == 201 {
            match (r.method, r.route) {
                ("POST", Some("/api/widget/v1/leads")) => d.leads += 1,
                ("POST", Some("/api/widget/v1/bookings" | "/api/clients/{client_id}/appointments")) => d.bookings += 1,
                _ => {}
            }
        }
        if self.since.get().is_none() {
            self.since.set(Some(now_ms));
        }
    }

    /// The upserts for every count, when the oldest is `every_ms` old or the isolate holds too
    /// many; else nothing. What is returned is no longer held here.
    pub fn take_due(&self, now_ms: i64, every_ms: i64) -> Vec<Stmt> {
        let due = self.since.get().is_some_and(|s| now_ms - s >= every_ms) || self.days.borrow().len() >= MAX_PENDING;
        if due {
            self.take_all()
        } else {
            Vec::new()
        }
    }

    pub fn take_all(&self) -> Vec<Stmt> {
        self.since.set(None);
        let days = std::mem::take(&mut *self.days.borrow_mut());
        days.into_iter()
            .map(|((tenant, day), d)| {
                Stmt::new(
                    UPSERT_DAY,
                    vec![
                        tenant.into(),
                        Param::Int(day),
                        Param::Int(d.requests),
                        Param::Int(d.errors),
                        Param::Int(d.widget_allowed),
                        Param::Int(d.widget_denied),
                        Param::Int(d.leads),
                        Param::Int(d.bookings),
                        Param::Int(d.last_widget_at),
                    ],
                )
            })
            .collect()
    }
}

crate::platform::rows::row! {
    struct DayRow {
        day: i64,
        requests: i64,
        errors: i64,
        widget_allowed: i64,
        widget_denied: i64,
        leads: i64,
        bookings: i64,
        last_widget_at: i64,
    }
}

/// The longest range one metrics request reads.
pub const MAX_RANGE_DAYS: i64 = 366;

/// `GET /api/clients/{id}/metrics?from=YYYY-MM-DD&to=YYYY-MM-DD`: the client's daily counters,
/// both ends inclusive (UTC), the last 30 days by default. Days with no request are absent.
pub async fn metrics<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, id: &str) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, id, Permission::ClientsRead).await?;
    let today = ctx.p.now_ms().div_euclid(86_400_000);
    let day = |name: &str, default: i64| -> ApiResult<i64> {
        match req.query_param(name) {
            None => Ok(default),
            Some(v) => parse_date(&v)
                .map(Date::days)
                .ok_or_else(|| ApiError::bad_request("invalid_range", format!("{name} must be a date, YYYY-MM-DD"))),
        }
    };
    let (from, to) = (day("from", today - 29)?, day("to", today)?);
    if from > to {
        return Err(ApiError::bad_request("invalid_range", "from must not be after to"));
    }
    if to - from >= MAX_RANGE_DAYS {
        return Err(ApiError::bad_request("invalid_range", format!("a range covers at most {MAX_RANGE_DAYS} days")));
    }
    let rows: Vec<DayRow> =
        ctx.p.query_as(SELECT_RANGE, &[client.id().into(), Param::Int(from), Param::Int(to)]).await?;
    let mut totals = Day::default();
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            totals.requests += r.requests;
            totals.errors += r.errors;
            totals.widget_allowed += r.widget_allowed;
            totals.widget_denied += r.widget_denied;
            totals.leads += r.leads;
            totals.bookings += r.bookings;
            totals.last_widget_at = totals.last_widget_at.max(r.last_widget_at);
            json!({
                "day": date_string(r.day),
                "requests": r.requests,
                "errors": r.errors,
                "widget_allowed": r.widget_allowed,
                "widget_denied": r.widget_denied,
                "leads": r.leads,
                "bookings": r.bookings,
            })
        })
        .collect();
    Ok(Response::json(
        200,
        &json!({
            "client_id": client.id(),
            "from": date_string(from),
            "to": date_string(to),
            "items": items,
            "totals": {
                "requests": totals.requests,
                "errors": totals.errors,
                "widget_allowed": totals.widget_allowed,
                "widget_denied": totals.widget_denied,
                "leads": totals.leads,
                "bookings": totals.bookings,
                "last_widget_at": (totals.last_widget_at > 0).then_some(totals.last_widget_at),
            },
        }),
    ))
}

fn date_string(day: i64) -> String {
    Date::from_days(day).map(|d| d.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        status: u16,
        gate: Option<&'static str>,
        method: &'static str,
        route: &'static str,
    ) -> RequestRecord<'static> {
        RequestRecord {
            request_id: "req",
            method,
            route: Some(route),
            status,
            duration_ms: 3,
            queries: 1,
            tenant: Some("cli_x"),
            gate,
            error_code: None,
            error_detail: None,
        }
    }

    #[test]
    fn counts_add_up_per_tenant_and_day_and_leave_once_due() {
        let c = Counters::default();
        let day0 = 20_000 * 86_400_000;
        c.count("cli_a", day0 + 5, &record(200, Some("allowed"), "GET", "/api/widget/v1/config"));
        c.count("cli_a", day0 + 9, &record(201, Some("allowed"), "POST", "/api/widget/v1/leads"));
        c.count("cli_a", day0 + 10, &record(403, Some("denied_origin"), "GET", "/api/widget/v1/config"));
        c.count("cli_a", day0 + 86_400_000, &record(500, None, "GET", "/api/clients/{client_id}"));
        c.count("cli_b", day0 + 11, &record(201, None, "POST", "/api/clients/{client_id}/appointments"));
        assert!(c.take_due(day0 + 1000, 10_000).is_empty(), "not yet due");
        let stmts = c.take_due(day0 + 10_005, 10_000);
        assert_eq!(stmts.len(), 3, "one upsert per tenant and day");
        let a0 = stmts.iter().find(|s| s.params[0] == "cli_a".into() && s.params[1] == Param::Int(20_000)).unwrap();
        let ints: Vec<i64> = a0.params[2..].iter().map(|p| if let Param::Int(i) = p { *i } else { -1 }).collect();
        assert_eq!(ints, [3, 0, 2, 1, 1, 0, day0 + 9]);
        assert!(c.take_due(day0 + 100_000, 10_000).is_empty(), "what left is no longer held");
    }

    #[test]
    fn the_log_line_names_the_template_and_never_the_detail_of_a_4xx() {
        let mut r = record(404, None, "GET", "/api/clients/{client_id}");
        r.error_code = Some("not_found");
        let v: Value = serde_json::from_str(&r.line(0)).unwrap();
        assert_eq!(v["route"], "/api/clients/{client_id}");
        assert_eq!(v["level"], "info");
        assert_eq!(v["error"], json!({"code": "not_found"}));
        assert_eq!(v["ts"], "1970-01-01T00:00:00Z");
        let p = r.point();
        assert_eq!((p.index, p.blobs[3], p.doubles[0]), ("cli_x", "4xx", 404.0));
    }
}
