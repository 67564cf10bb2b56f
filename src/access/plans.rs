//! Plans and quotas. Plans are data (`data/plans.json`): each names a limit per metric, and a
//! client's `limits` column overrides any of them. Every write that adds to a metric checks the
//! limit inside its own INSERT (so parallel writes at the limit let exactly `limit` through), and
//! the statements from `crossing` record a usage event, with its audit row, when that write
//! crossed 80% or 100%. The API rate per minute is the Rate Limiting binding's business
//! (`api_request`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{json, Value};

use super::audit::{self, Actor, Event};
use super::roles::{Principal, Scope};
use super::store::ClientRow;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::ids::new_id;
use crate::platform::ports::{Database, Limit, Param, Platform, Row, Stmt, API_RATES};
use crate::platform::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    Seats,
    Contacts,
    Deals,
    StorageBytes,
    Domains,
    WidgetSubmissionsPerDay,
    ApiRequestsPerMinute,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::Seats,
        Metric::Contacts,
        Metric::Deals,
        Metric::StorageBytes,
        Metric::Domains,
        Metric::WidgetSubmissionsPerDay,
        Metric::ApiRequestsPerMinute,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Seats => "seats",
            Metric::Contacts => "contacts",
            Metric::Deals => "deals",
            Metric::StorageBytes => "storage_bytes",
            Metric::Domains => "domains",
            Metric::WidgetSubmissionsPerDay => "widget_submissions_per_day",
            Metric::ApiRequestsPerMinute => "api_requests_per_minute",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The statement that records this metric's crossing, for the metrics a write adds to.
    /// Seats and domains: their crossings are held for the shard (`CROSSED_SEATS`).
    fn counted_in_control_plane(self) -> bool {
        matches!(self, Metric::Seats | Metric::Domains)
    }

    fn crossing_sql(self) -> Option<&'static str> {
        Some(match self {
            Metric::Seats => CROSSED_SEATS,
            Metric::Contacts => CROSSED_CONTACTS,
            Metric::Deals => CROSSED_DEALS,
            Metric::StorageBytes => CROSSED_STORAGE,
            Metric::Domains => CROSSED_DOMAINS,
            Metric::WidgetSubmissionsPerDay => CROSSED_WIDGET,
            Metric::ApiRequestsPerMinute => return None,
        })
    }
}

crate::platform::body::body! {
    #[derive(Debug, Default)]
    struct Catalogue {
        default_plan: String,
        plans: BTreeMap<String, BTreeMap<String, i64>>,
    }
}

fn catalogue() -> &'static Catalogue {
    static PLANS: OnceLock<Catalogue> = OnceLock::new();
    PLANS.get_or_init(|| {
        crate::platform::body::parse(include_bytes!("../../data/plans.json"), "plans")
            .unwrap_or(Catalogue { default_plan: "starter".into(), plans: BTreeMap::new() })
    })
}

/// The plan new clients and agencies start on.
pub fn default_plan() -> &'static str {
    &catalogue().default_plan
}

/// Whether `name` is a plan in `data/plans.json`.
pub fn is_plan(name: &str) -> bool {
    catalogue().plans.contains_key(name)
}

/// The plans' names, for error messages.
pub fn plan_names() -> Vec<&'static str> {
    catalogue().plans.keys().map(String::as_str).collect()
}

/// A plan's limit for a metric (0 for an unknown plan or metric: nothing is allowed by accident).
pub fn plan_limit(plan: &str, m: Metric) -> i64 {
    catalogue().plans.get(plan).and_then(|p| p.get(m.name())).copied().unwrap_or(0)
}

/// The client's limit for a metric: its own override, else its plan's.
pub fn limit(c: &ClientRow, m: Metric) -> i64 {
    limit_of(&c.plan, &c.limits, m)
}

/// `limit` from a plan name and the overrides' JSON.
pub fn limit_of(plan: &str, overrides: &str, m: Metric) -> i64 {
    crate::platform::body::parse::<BTreeMap<String, i64>>(overrides.as_bytes(), "limits")
        .ok()
        .and_then(|o| o.get(m.name()).copied())
        .unwrap_or_else(|| plan_limit(plan, m))
}

/// Applies a patch of overrides (`{metric: n}` sets, `{metric: null}` removes) to the stored
/// JSON, refusing unknown metrics and numbers that are not whole and non-negative.
pub fn patch_overrides(stored: &str, patch: &serde_json::Map<String, Value>) -> ApiResult<String> {
    let mut current: BTreeMap<String, i64> =
        crate::platform::body::parse(stored.as_bytes(), "limits").unwrap_or_default();
    for (k, v) in patch {
        let m = Metric::parse(k).ok_or_else(|| {
            ApiError::invalid(
                "invalid_limits",
                format!("`{k}` is not a metric; the metrics are {}", Metric::ALL.map(Metric::name).join(", ")),
            )
        })?;
        match v {
            Value::Null => {
                current.remove(m.name());
            }
            v => {
                let n = v.as_i64().filter(|n| (0..=1_000_000_000_000_000).contains(n)).ok_or_else(|| {
                    ApiError::invalid("invalid_limits", format!("`{k}` must be a whole number from 0, or null"))
                })?;
                // The API rate is enforced by a Rate Limiting binding per rate, fixed at deploy.
                if m == Metric::ApiRequestsPerMinute && !API_RATES.iter().any(|r| i64::from(*r) == n) {
                    return Err(ApiError::invalid(
                        "invalid_limits",
                        format!("`{k}` must be one of {}", API_RATES.map(|r| r.to_string()).join(", ")),
                    ));
                }
                current.insert(m.name().to_string(), n);
            }
        }
    }
    Ok(json!(current).to_string())
}

/// Counts one API request by a client's own members or keys against its plan's per-minute rate
/// (the Rate Limiting binding for that rate, keyed by the client): 429 `rate_limited` past it.
/// The agency's and the platform's requests are not the client's traffic, and never count, so
/// a client at its limit can still be managed (its plan raised, say). A stored override between
/// the bound rates takes the next rate up (only bound rates can be set now).
pub async fn api_request<P: Platform>(ctx: &Ctx<'_, P>, who: &Principal, c: &ClientRow) -> ApiResult<()> {
    if !ctx.cfg.api_rate_limits || !matches!(who.scope, Scope::Client { .. }) {
        return Ok(());
    }
    let wanted = limit(c, Metric::ApiRequestsPerMinute);
    let rate = API_RATES.into_iter().find(|r| i64::from(*r) >= wanted).unwrap_or(API_RATES[API_RATES.len() - 1]);
    let ok = ctx.p.allow(Limit::ApiPerMinute(rate), &c.id).await.map_err(|e| ApiError::Misconfigured(e.to_string()))?;
    if ok {
        return Ok(());
    }
    Err(ApiError::TooMany("rate_limited", format!("this client's plan allows {rate} API requests a minute"), Some(60)))
}

/// The refusal for a write past the limit.
pub fn exceeded(m: Metric, limit: i64) -> ApiError {
    ApiError::QuotaExceeded { metric: m.name(), limit }
}

/// One usage event per crossing of 80% or 100% of a limit. `used` is the metric after the write,
/// `?8` the written row's id (the event exists only if the row does), `?9` what the write added:
/// the write crossed `?7` when `used >= ?7` and `used - ?9 < ?7`.
macro_rules! crossed {
    ($used:literal, $row:literal) => {
        concat!(
            "INSERT INTO usage_events (id, client_id, metric, threshold, used, quota, at) \
             SELECT ?1, ?2, ?3, ?4, u, ?5, ?6 FROM (SELECT ",
            $used,
            " AS u) WHERE u >= ?7 AND u - ?9 < ?7 AND EXISTS (SELECT 1 FROM ",
            $row,
            ")"
        )
    };
}

pub const CROSSED_CONTACTS: &str =
    crossed!("(SELECT count(*) FROM contacts WHERE client_id = ?2)", "contacts WHERE client_id = ?2 AND id = ?8");
pub const CROSSED_DEALS: &str =
    crossed!("(SELECT count(*) FROM deals WHERE client_id = ?2)", "deals WHERE client_id = ?2 AND id = ?8");
/// Seats and domains are counted in the control plane, where their writes are; their crossing
/// is held there for the client's shard (`access::relay`, `?10` the hold's id) and applied after
/// the write's batch commits, so every usage event is on the shard.
macro_rules! crossed_held {
    ($used:literal, $row:literal) => {
        concat!(
            "INSERT INTO shard_writes (id, tenant_id, writes, created_at) \
             SELECT ?10, ?2, json_array(json_array('usage_event', json_array(?1, ?2, ?3, ?4, u, ?5, ?6))), ?6 \
             FROM (SELECT ",
            $used,
            " AS u) WHERE u >= ?7 AND u - ?9 < ?7 AND EXISTS (SELECT 1 FROM ",
            $row,
            ")"
        )
    };
}

pub const CROSSED_DOMAINS: &str =
    crossed_held!("(SELECT count(*) FROM domains WHERE client_id = ?2)", "domains WHERE client_id = ?2 AND id = ?8");
pub const CROSSED_SEATS: &str = crossed_held!(
    "(SELECT count(*) FROM client_users WHERE client_id = ?2)",
    "client_users WHERE client_id = ?2 AND user_id = ?8"
);
/// A held crossing, written on the shard: once, however often it is relayed.
pub const INSERT_EVENT_ONCE: &str = "INSERT INTO usage_events (id, client_id, metric, threshold, used, quota, at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING";
pub const CROSSED_STORAGE: &str = crossed!(
    "(SELECT coalesce(sum(size), 0) FROM files WHERE tenant_id = ?2 AND status <> 'deleting')",
    "files WHERE tenant_id = ?2 AND id = ?8"
);
pub const CROSSED_WIDGET: &str = crossed!(
    "coalesce((SELECT count FROM usage_counters WHERE tenant_id = ?2 AND metric = 'widget_submissions' \
     AND period = CAST(?6 / 86400000 AS INTEGER)), 0)",
    "contacts WHERE client_id = ?2 AND id = ?8"
);

/// The statements that record a usage event (and its audit row) if the write of row `row_id`,
/// adding `added` to `m`, crossed 80% or 100% of the client's limit. They go in the write's own
/// batch, after it.
pub fn crossing(
    actor: &Actor,
    client_id: &str,
    m: Metric,
    lim: i64,
    row_id: &str,
    added: i64,
    now: i64,
) -> ApiResult<Vec<Stmt>> {
    let Some(sql) = m.crossing_sql() else { return Ok(Vec::new()) };
    let mut stmts = Vec::with_capacity(4);
    let eighty = (lim * 4 + 4) / 5; // ceil(80%)
    for (threshold, at) in [(80, eighty), (100, lim)] {
        if lim <= 0 || (threshold == 80 && eighty >= lim) {
            continue;
        }
        let mut params = vec![
            new_id("use")?.into(),
            client_id.into(),
            m.name().into(),
            Param::Int(threshold),
            Param::Int(lim),
            Param::Int(now),
            Param::Int(at),
            row_id.into(),
            Param::Int(added),
        ];
        if m.counted_in_control_plane() {
            params.push(new_id("sw")?.into());
        }
        stmts.push(Stmt::new(sql, params));
        stmts.push(audit::after_change(
            actor,
            Event {
                tenant_id: client_id,
                action: "usage.threshold_crossed",
                target_type: "client",
                target_id: Some(client_id),
                metadata: json!({"metric": m.name(), "threshold": threshold, "limit": lim}),
            },
            now,
        )?);
    }
    Ok(stmts)
}

/// What each metric stands at for a client (`?1`; `?2` is now, for today's widget counter), one
/// query per plane: seats and domains are counted in the control plane, the rest on the shard.
pub const USAGE_CONTROL: &str = "SELECT (SELECT count(*) FROM client_users WHERE client_id = ?1) AS seats, \
    (SELECT count(*) FROM domains WHERE client_id = ?1) AS domains";
pub const USAGE_SHARD: &str = "SELECT (SELECT count(*) FROM contacts WHERE client_id = ?1) AS contacts, \
    (SELECT count(*) FROM deals WHERE client_id = ?1) AS deals, \
    (SELECT coalesce(sum(size), 0) FROM files WHERE tenant_id = ?1 AND status <> 'deleting') AS storage_bytes, \
    coalesce((SELECT count FROM usage_counters WHERE tenant_id = ?1 AND metric = 'widget_submissions' \
      AND period = CAST(?2 / 86400000 AS INTEGER)), 0) AS widget_submissions_per_day";

/// `USAGE_CONTROL` and `USAGE_SHARD` as one row: metric name to what is used.
pub async fn usage(db: &impl Database, client_id: &str, now: i64) -> ApiResult<Row> {
    let mut used = db.query(USAGE_CONTROL, &[client_id.into()]).await?.into_iter().next().unwrap_or_default();
    let shard = db.query(USAGE_SHARD, &[client_id.into(), Param::Int(now)]).await?.into_iter().next();
    used.extend(shard.unwrap_or_default());
    Ok(used)
}

pub const RECENT_EVENTS: &str = "SELECT metric, threshold, used, quota AS \"limit\", at FROM usage_events \
    WHERE client_id = ?1 ORDER BY at DESC, id DESC LIMIT 50";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_names_every_metric_and_the_default_exists() {
        assert!(is_plan(default_plan()));
        for (plan, limits) in &catalogue().plans {
            for m in Metric::ALL {
                assert!(limits.get(m.name()).is_some_and(|n| *n > 0), "{plan} lacks {}", m.name());
            }
            assert_eq!(limits.len(), Metric::ALL.len(), "{plan} names an unknown metric");
        }
    }

    #[test]
    fn overrides_set_and_remove_and_refuse_nonsense() {
        let patch = |v: Value| patch_overrides(r#"{"contacts":5}"#, v.as_object().unwrap());
        assert_eq!(patch(json!({"deals": 7})).unwrap(), r#"{"contacts":5,"deals":7}"#);
        assert_eq!(patch(json!({"contacts": null})).unwrap(), "{}");
        assert!(patch(json!({"contactz": 1})).is_err());
        assert!(patch(json!({"deals": -1})).is_err());
        assert!(patch(json!({"deals": 1.5})).is_err());
        assert!(patch(json!({"deals": "9"})).is_err());
    }
}
