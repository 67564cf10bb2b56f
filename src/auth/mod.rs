//! Authentication and identity: password hashing, access tokens, login throttling, the Turnstile
//! challenge, the bearer-token check every `/api` route stands behind, sessions (login, switch,
//! `/api/me`) and user management (users, grants, invitations).

pub mod invitations;
pub mod jwt;
pub mod keys;
pub mod mfa;
pub mod password;
pub mod ratelimit;
pub mod reset;
pub mod session;
pub mod signup;
pub mod totp;
pub mod turnstile;
pub mod users;

use crate::access::roles::{Principal, Scope};
use crate::access::{store, Site};
use crate::platform::config::Config;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::http::Request;
use crate::platform::ports::Platform;
use crate::platform::Ctx;
use jwt::TokenKeys;

pub fn token_keys(c: &Config) -> TokenKeys {
    TokenKeys::new(&c.jwt_key_id, &c.jwt_secret, &c.retired_jwt_secrets, &c.jwt_issuer, &c.jwt_audience)
}

/// Verifies the bearer token and loads the caller's current authority. When the Host names a
/// tenant, the token's tenant must agree with it. A token issued on a portal carries that
/// portal's host and is accepted there only, confined to the portal's client, or on an agency's
/// portal to the agency and its clients.
pub async fn authenticate<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, site: &Site) -> ApiResult<Principal> {
    if req.header_count("authorization") > 1 {
        return Err(ApiError::unauthorized("exactly one Authorization header is allowed"));
    }
    let token = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("missing_token", "a bearer token is required".into()))?;
    if keys::is_key(token) {
        return keys::authenticate(ctx, token.trim(), site).await;
    }
    let claims = token_keys(ctx.cfg)
        .verify(token.trim(), ctx.p.now_secs())
        .map_err(|e| ApiError::Unauthorized("invalid_token", e.to_string()))?;
    let mismatch = || ApiError::Forbidden("tenant_mismatch", "this token belongs to another tenant".into());
    let gone = || ApiError::Unauthorized("invalid_token", "this session no longer has access".into());
    let who = match (&claims.site, site) {
        (Some(bound), Site::ClientPortal { client: c, host }) => {
            if host != bound || claims.tenant != c.id {
                return Err(mismatch());
            }
            store::load_portal_principal(ctx.p, &claims.sub, c).await?.ok_or_else(gone)?
        }
        (Some(bound), Site::AgencyPortal { agency: a, host }) => {
            if host != bound {
                return Err(mismatch());
            }
            store::load_agency_portal_principal(ctx.p, &claims.sub, a, &claims.tenant).await?.ok_or_else(gone)?
        }
        (Some(_), _) => return Err(mismatch()),
        (None, _) => store::load_principal(ctx.p, &claims.sub, &claims.tenant).await?.ok_or_else(gone)?,
    };
    let confined = match site {
        Site::Api => true,
        Site::ClientPortal { client: c, .. } => who.reaches_client(&c.id, &c.agency_id),
        Site::AgencyPortal { agency: a, .. } => match &who.scope {
            Scope::Agency { agency_id } | Scope::Client { agency_id, .. } => *agency_id == a.id,
            Scope::Platform => false,
        },
    };
    if !confined {
        return Err(mismatch());
    }
    // A password reset or change since the token was issued ends it.
    if who.token_version != claims.ver {
        return Err(ApiError::Unauthorized("session_ended", "this session has ended; sign in again".into()));
    }
    Ok(who)
}

/// The audit row of a change someone made to their own account (password, MFA), filed in the
/// tenant they act in and written only if the change before it happened.
pub(crate) fn own_change<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    action: &'static str,
) -> ApiResult<crate::platform::ports::Stmt> {
    let event = crate::access::audit::Event {
        tenant_id: who.tenant_id(),
        action,
        target_type: "user",
        target_id: Some(&who.user_id),
        metadata: serde_json::json!({}),
    };
    crate::access::audit::entry_if_changed(ctx, req, who, event)
}
