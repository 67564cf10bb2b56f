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

use std::cell::RefCell;
use std::rc::Rc;

use crate::access::roles::{Principal, Scope};
use crate::access::{store, Site};
use crate::platform::config::Config;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::http::Request;
use crate::platform::ports::Platform;
use crate::platform::Ctx;
use jwt::TokenKeys;

/// The token keys of `c`'s configuration: made once per isolate (again only if those settings
/// change), so the tokens they have verified are remembered from one request to the next.
pub fn token_keys(c: &Config) -> Rc<TokenKeys> {
    type Made = (String, Vec<u8>, Vec<(String, Vec<u8>)>, String, String);
    thread_local! {
        static KEYS: RefCell<Option<(Made, Rc<TokenKeys>)>> = const { RefCell::new(None) };
    }
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if let Some(((kid, secret, retired, iss, aud), keys)) = k.as_ref() {
            if *kid == c.jwt_key_id
                && *secret == c.jwt_secret
                && *retired == c.retired_jwt_secrets
                && *iss == c.jwt_issuer
                && *aud == c.jwt_audience
            {
                return keys.clone();
            }
        }
        let keys = Rc::new(TokenKeys::new(
            &c.jwt_key_id,
            &c.jwt_secret,
            &c.retired_jwt_secrets,
            &c.jwt_issuer,
            &c.jwt_audience,
        ));
        let made = (
            c.jwt_key_id.clone(),
            c.jwt_secret.clone(),
            c.retired_jwt_secrets.clone(),
            c.jwt_issuer.clone(),
            c.jwt_audience.clone(),
        );
        *k = Some((made, keys.clone()));
        keys
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::config::tests::test_vars;

    /// One isolate keeps its keys, and with them the tokens they verified; a change to any key
    /// setting makes new keys, which remember nothing and refuse what only the old secret signed.
    #[test]
    fn token_keys_are_kept_until_their_settings_change() {
        let cfg = Config::from_map(&test_vars()).unwrap();
        let keys = token_keys(&cfg);
        assert!(Rc::ptr_eq(&keys, &token_keys(&cfg)));
        let claims = jwt::AccessClaims {
            sub: "usr_1".into(),
            iss: cfg.jwt_issuer.clone(),
            aud: cfg.jwt_audience.clone(),
            tenant: "cli_1".into(),
            role: "client_user".into(),
            permissions: vec![],
            jti: "j1".into(),
            site: None,
            ver: 0,
        };
        let token = keys.issue(claims.clone(), 1_800_000_000, 900).unwrap();
        assert_eq!(keys.verify(&token, 1_800_000_001).unwrap(), claims);
        let mut vars = test_vars();
        vars.insert("JWT_SECRET", "another-jwt-secret-0123456789abcdef0123456789".into());
        let rotated = Config::from_map(&vars).unwrap();
        let new_keys = token_keys(&rotated);
        assert!(!Rc::ptr_eq(&keys, &new_keys));
        assert_eq!(new_keys.verify(&token, 1_800_000_001), Err(jwt::TokenError::Signature));
        assert!(!Rc::ptr_eq(&new_keys, &token_keys(&cfg)), "back to the first settings: made again");
    }
}
