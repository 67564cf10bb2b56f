//! Scheduled work, dispatched by cron expression from wrangler.toml.

use serde_json::Value;

use crate::platform::error::ApiResult;
use crate::platform::ports::Platform;
use crate::platform::Ctx;

/// Verified domains are re-checked at most this often.
pub const RECHECK_MIN_AGE_MS: i64 = 60 * 60 * 1000;

pub async fn run_scheduled<P: Platform>(ctx: &Ctx<'_, P>, cron: &str) -> ApiResult<Value> {
    // Tests trigger the job with `?cron=recheck-now`, which skips the minimum age.
    let min_age = if cron == "recheck-now" { 0 } else { RECHECK_MIN_AGE_MS };
    let domains = crate::domains::recheck(ctx, min_age).await?;
    // Unproved domain claims expire, so nobody squats a name forever.
    let expired = crate::domains::expire_pending(ctx).await?;
    // Each run also re-encrypts one bounded batch of settings still under a retired key.
    let rotation = crate::settings::rotate_batch(ctx).await?;
    // And finishes any file upload or delete a crash left half-done.
    let files = crate::files::reconcile(ctx).await?;
    // And drains the webhook outbox: events no request drained, deliveries whose message was lost.
    let webhooks = crate::webhooks::delivery::drain(ctx).await?;
    ctx.p.log(
        "info",
        &format!(
            "scheduled {cron}: domains {domains}; expired claims {expired}; key rotation {rotation}; files {files}; \
             webhooks {webhooks:?}"
        ),
    );
    Ok(serde_json::json!({"domains": domains, "expired_claims": expired, "rotation": rotation, "files": files,
        "webhooks": webhooks}))
}
