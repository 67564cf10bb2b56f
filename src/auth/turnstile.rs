//! Cloudflare Turnstile: the challenge a login must pass once its email has drawn too many
//! failures. Tokens are checked with Turnstile's siteverify endpoint (configurable, so tests
//! point it at a fake verifier on loopback).

use crate::platform::error::{ApiError, ApiResult};
use crate::platform::http::Request;
use crate::platform::ports::Platform;
use crate::platform::Ctx;

/// Turnstile tokens are at most 2048 characters.
pub const MAX_TOKEN_LEN: usize = 2048;

/// Passes only with a token the verifier accepts. Without Turnstile configured no token can pass,
/// so the email waits out its window (429) instead.
pub async fn require<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    token: Option<&str>,
    retry_after: u64,
) -> ApiResult<()> {
    let Some(secret) = ctx.cfg.turnstile_secret.as_deref() else {
        return Err(ApiError::TooMany(
            "too_many_attempts",
            "too many failed logins for this account; try again later".into(),
            Some(retry_after),
        ));
    };
    let required = || {
        ApiError::Forbidden(
            "turnstile_required",
            format!(
                "this account drew too many failed logins: complete the challenge (site key {}) and send its \
                 token as `turnstile_token`",
                ctx.cfg.turnstile_site_key.as_deref().unwrap_or("not configured")
            ),
        )
    };
    check(ctx, req, secret, token, required).await
}

/// Verifies a token for a form that always needs one (signup), when Turnstile is configured.
pub async fn verify<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, token: Option<&str>) -> ApiResult<()> {
    let Some(secret) = ctx.cfg.turnstile_secret.as_deref() else { return Ok(()) };
    let required = || {
        ApiError::Forbidden(
            "turnstile_required",
            format!(
                "complete the challenge (site key {}) and send its token as `turnstile_token`",
                ctx.cfg.turnstile_site_key.as_deref().unwrap_or("not configured")
            ),
        )
    };
    check(ctx, req, secret, token, required).await
}

async fn check<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    secret: &str,
    token: Option<&str>,
    required: impl Fn() -> ApiError,
) -> ApiResult<()> {
    let token = token.map(str::trim).filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN).ok_or_else(required)?;
    let mut form = vec![("secret", secret), ("response", token)];
    if let Some(ip) = req.client_ip() {
        form.push(("remoteip", ip));
    }
    let reply = ctx
        .p
        .post_form(&ctx.cfg.turnstile_verify_url, &form)
        .await
        .map_err(|e| ApiError::Upstream(format!("Turnstile unreachable: {e}")))?;
    let verdict: serde_json::Value = serde_json::from_str(&reply.body)
        .map_err(|_| ApiError::Upstream(format!("Turnstile answered HTTP {} without a verdict", reply.status)))?;
    let Some(success) = verdict["success"].as_bool() else {
        return Err(ApiError::Upstream(format!("Turnstile answered HTTP {} without a verdict", reply.status)));
    };
    if reply.status != 200 || !success {
        return Err(ApiError::Forbidden("turnstile_failed", "the challenge token was not accepted".into()));
    }
    Ok(())
}
