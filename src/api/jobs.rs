//! Scheduled work, dispatched by cron expression from wrangler.toml.

use serde_json::{json, Value};

use crate::access::audit::{self, Event};
use crate::access::roles::{Permission, Principal};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::http::{Request, Response};
use crate::platform::ports::Platform;
use crate::platform::Ctx;

/// Verified domains are re-checked at most this often.
pub const RECHECK_MIN_AGE_MS: i64 = 60 * 60 * 1000;

/// Runs every job, each on its own: one failing (a resolver outage, say) does not keep the others,
/// the webhook outbox drain above all, from running. Errors are reported together at the end.
pub async fn run_scheduled<P: Platform>(ctx: &Ctx<'_, P>, cron: &str) -> ApiResult<Value> {
    // Tests trigger the job with `?cron=recheck-now`, which skips the minimum age.
    let min_age = if cron == "recheck-now" { 0 } else { RECHECK_MIN_AGE_MS };
    let mut report = serde_json::Map::new();
    let mut failed = Vec::new();
    let mut note = |name: &str, result: ApiResult<Value>| {
        let v = result.unwrap_or_else(|e| {
            failed.push(format!("{name}: {e}"));
            json!({"error": e.to_string()})
        });
        // A pass run on each shard reports the sum of its runs.
        match report.get_mut(name) {
            Some(before) => add(before, v),
            None => {
                report.insert(name.to_string(), v);
            }
        }
    };
    // Verified domains are re-checked.
    note("domains", crate::domains::recheck(ctx, min_age).await);
    note("agency_domains", crate::domains::agency::recheck(ctx, min_age).await);
    // Shard writes a control-plane change held and its request did not apply are applied.
    note("shard_writes", crate::access::relay::apply_due(ctx).await);
    // Agencies moving between data shards go on a step each.
    note("shard_moves", crate::tenants::moves::step_due(ctx).await);
    // Unproved domain claims expire, so nobody squats a name forever.
    note("expired_claims", crate::domains::expire_pending(ctx).await);
    // Mail no request sent (or that failed and is due again) goes to the mail API.
    note("mail", crate::access::mail::send_due(ctx).await.map(|m| json!(m)));
    // Deleted clients past their grace period are purged, a bounded share per run.
    note("purge", crate::tenants::offboarding::purge_due(ctx).await);
    // The passes over the data run on each shard in turn.
    for n in 0..ctx.p.shard_count().max(1) {
        ctx.p.scan_on(Some(n));
        // One bounded batch of values still sealed under a retired key is sealed again.
        note("rotation", rotate_batch(ctx).await);
        // Any file upload or delete a crash left half-done is finished.
        note("files", crate::files::reconcile(ctx).await);
        // The webhook outbox drains: events no request drained, deliveries whose message was lost.
        note("webhooks", crate::webhooks::delivery::drain(ctx).await.map(|d| json!(d)));
        // Events, deliveries and attempts past their retention go, a bounded batch per run.
        note("event_retention", crate::webhooks::delivery::prune(ctx).await);
        // Exports whose step was lost are queued again; archives past their time are deleted.
        note(
            "exports",
            crate::files::export::sweep(ctx)
                .await
                .map(|(requeued, expired)| json!({"requeued": requeued, "expired": expired})),
        );
        // New audit rows join their tenant's hash chain.
        note("audit_sealed", audit::seal_pending(ctx.p, 50).await.map(|n| json!(n)));
    }
    ctx.p.scan_on(None);
    let report = Value::Object(report);
    ctx.p.log("info", &format!("scheduled {cron}: {report}"));
    if failed.is_empty() {
        Ok(report)
    } else {
        Err(ApiError::Internal(failed.join("; ")))
    }
}

/// Adds a pass's report on one shard to its report on the others: numbers add up, lists join,
/// objects add field by field, anything else is the latest.
fn add(total: &mut Value, more: Value) {
    match (total, more) {
        (Value::Number(a), Value::Number(b)) => {
            if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
                *a = (x + y).into();
            }
        }
        (Value::Array(a), Value::Array(b)) => a.extend(b),
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(t) => add(t, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (t, m) => *t = m,
    }
}

/// One bounded batch of an encryption key rotation over every sealed value: integration settings
/// and webhook signing secrets.
async fn rotate_batch<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Value> {
    let settings = crate::settings::rotate_batch(ctx).await?;
    let webhooks = crate::webhooks::reseal_batch(ctx).await?;
    let sum = |k: &str| settings[k].as_i64().unwrap_or(0) + webhooks[k].as_i64().unwrap_or(0);
    let mut unreadable = settings["unreadable"].as_array().cloned().unwrap_or_default();
    unreadable.extend(webhooks["unreadable"].as_array().cloned().unwrap_or_default());
    Ok(json!({
        "current_key": ctx.cfg.current_key.id,
        "rotated": sum("rotated"),
        "remaining": sum("remaining"),
        "unreadable": unreadable,
        "settings": {"rotated": settings["rotated"], "remaining": settings["remaining"]},
        "webhook_secrets": {"rotated": webhooks["rotated"], "remaining": webhooks["remaining"]},
    }))
}

/// `POST /api/admin/settings/rotate`: one bounded batch, audited; call until `remaining` is 0,
/// then remove the retired key.
pub async fn rotate_keys<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    if !who.can(Permission::PlatformAdmin) {
        return Err(ApiError::forbidden("platform admins only"));
    }
    // One batch on each shard; the report is their sum.
    let mut report = Value::Null;
    for n in 0..ctx.p.shard_count().max(1) {
        ctx.p.scan_on(Some(n));
        let batch = rotate_batch(ctx).await;
        ctx.p.scan_on(None);
        match report {
            Value::Null => report = batch?,
            ref mut total => add(total, batch?),
        }
    }
    let audit = audit::entry(
        ctx,
        req,
        Some(who),
        Event {
            tenant_id: "platform",
            action: "settings.rotated",
            target_type: "settings",
            target_id: None,
            metadata: report.clone(),
        },
    )?;
    ctx.p.execute(audit.sql, &audit.params).await?;
    Ok(Response::json(200, &report))
}
