//! `GET /api/clients/{id}/health`: is this client healthy? For the agency and platform admins
//! who run it (`clients:manage`): its domains (verified, lapsing, failed), its last widget hit,
//! its error rate over the last seven days, and how close it is to its plan's limits.

use serde_json::{json, Value};

use crate::access::plans::{self, Metric};
use crate::access::roles::{Permission, Principal};
use crate::access::{self};
use crate::domains::{self, DomainRow};
use crate::platform::error::ApiResult;
use crate::platform::http::{Request, Response};
use crate::platform::ports::{Param, Platform};
use crate::platform::Ctx;

/// The days the error rate is taken over.
pub const WINDOW_DAYS: i64 = 7;
/// A rate of 5xx answers above this needs attention.
pub const ERROR_RATE_ATTENTION: f64 = 0.05;
/// A metric at this share of its limit is under pressure.
pub const QUOTA_PRESSURE: f64 = 0.8;

pub const RECENT: &str = "SELECT coalesce(sum(requests), 0) AS requests, coalesce(sum(errors), 0) AS errors, \
    coalesce(max(last_widget_at), 0) AS last_widget_at FROM tenant_daily WHERE tenant_id = ?1 AND day >= ?2";
pub const LAST_WIDGET_HIT: &str =
    "SELECT coalesce(max(last_widget_at), 0) AS last_widget_at FROM tenant_daily WHERE tenant_id = ?1";

crate::platform::rows::row! {
    struct Recent {
        requests: i64,
        errors: i64,
    }
}

crate::platform::rows::row! {
    struct LastHit {
        last_widget_at: i64,
    }
}

pub async fn health<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, id: &str) -> ApiResult<Response> {
    let (scope, client) = access::client(ctx, req, who, id, Permission::ClientsManage).await?;
    let now = ctx.p.now_ms();
    let mut attention = Vec::new();

    let list = domains::list_for_client(ctx.p, &scope).await?;
    let count = |f: &dyn Fn(&DomainRow) -> bool| list.iter().filter(|d| f(d)).count();
    let lapsing = count(&|d| d.status == "verified" && d.consecutive_failures > 0);
    let failed = count(&|d| d.status == "failed");
    let lapsed = count(&|d| d.status == "lapsed");
    if lapsing > 0 {
        attention.push(format!("{lapsing} verified domain(s) failed their last DNS check"));
    }
    if lapsed + failed > 0 {
        attention.push(format!("{} domain(s) failed or lapsed", lapsed + failed));
    }
    let domains_json = json!({
        "verified": count(&|d| d.status == "verified"),
        "lapsing": lapsing,
        "pending": count(&|d| d.status == "pending"),
        "failed": failed,
        "lapsed": lapsed,
        "items": list.iter().map(|d| json!({
            "id": d.id, "domain": d.hostname, "purpose": d.purpose, "status": d.status,
            "status_reason": d.status_reason, "consecutive_failures": d.consecutive_failures,
            "last_checked_at": d.last_checked_at,
        })).collect::<Vec<_>>(),
    });

    let since = now.div_euclid(86_400_000) - (WINDOW_DAYS - 1);
    let recent: Recent = ctx
        .p
        .query_first(RECENT, &[scope.id().into(), Param::Int(since)])
        .await?
        .unwrap_or(Recent { requests: 0, errors: 0 });
    let rate = if recent.requests > 0 { recent.errors as f64 / recent.requests as f64 } else { 0.0 };
    if rate > ERROR_RATE_ATTENTION {
        attention.push(format!("{:.1}% of requests failed in the last {WINDOW_DAYS} days", rate * 100.0));
    }
    let last_hit: Option<i64> = ctx
        .p
        .query_first::<LastHit>(LAST_WIDGET_HIT, &[scope.id().into()])
        .await?
        .map(|r| r.last_widget_at)
        .filter(|t| *t > 0);

    let used = plans::usage(ctx.p, scope.id(), now).await?;
    let mut quotas = Vec::new();
    for m in Metric::ALL {
        let limit = plans::limit(&client, m);
        let Some(used) = used.get(m.name()).and_then(Value::as_i64) else { continue };
        let ratio = if limit > 0 { used as f64 / limit as f64 } else { 0.0 };
        if ratio >= QUOTA_PRESSURE {
            attention.push(format!("{} at {}% of its limit ({used} of {limit})", m.name(), (ratio * 100.0).round()));
        }
        quotas.push(json!({"metric": m.name(), "used": used, "limit": limit, "ratio": ratio, "pressure": ratio >= QUOTA_PRESSURE}));
    }

    Ok(Response::json(
        200,
        &json!({
            "client_id": scope.id(),
            "status": if attention.is_empty() { "ok" } else { "attention" },
            "attention": attention,
            "client_status": client.effective_status(),
            "domains": domains_json,
            "last_widget_hit": last_hit,
            "errors": {"window_days": WINDOW_DAYS, "requests": recent.requests, "errors": recent.errors, "rate": rate},
            "quotas": quotas,
        }),
    ))
}
