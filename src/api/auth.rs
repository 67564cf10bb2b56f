//! Login, context switching and `/api/me`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_body, App, Site};
use crate::auth::jwt::AccessClaims;
use crate::auth::{password, ratelimit};
use crate::error::{ApiError, ApiResult};
use crate::http::{Request, Response};
use crate::ports::Platform;
use crate::tenancy::Principal;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
    /// Optional: the tenant to start in (`platform`, an agency id or a client id).
    #[serde(default)]
    tenant: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    tenant: String,
}

pub async fn login<P: Platform>(app: &App<'_, P>, req: &Request, site: &Site) -> ApiResult<Response> {
    let body: LoginBody = json_body(req, &[])?;
    let email = body.email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 || body.password.len() > 1024 {
        return Err(invalid_credentials());
    }
    let now = app.p.now_secs();
    let ip = req.client_ip().to_string();
    if let Some(wait) = ratelimit::blocked_for(app.p, &email, &ip, now).await? {
        return Err(ApiError::TooMany(
            "too_many_attempts",
            "too many failed logins; try again later".into(),
            Some(wait),
        ));
    }
    let user = crate::tenants::user_by_email(app.p, &email).await?;
    // Unknown users verify against a dummy hash: the same work as a wrong password.
    let ok = password::verify_password(&body.password, user.as_ref().map(|u| u.password_hash.as_str()));
    let user = match user {
        Some(u) if ok && u.status == "active" => u,
        _ => {
            ratelimit::record_failure(app.p, &email, &ip, now).await?;
            let audit = app.audit(
                req,
                None,
                crate::audit::Event {
                    tenant_id: "platform",
                    action: "auth.login_failed",
                    target_type: "user",
                    target_id: None,
                    metadata: json!({"email_domain": email.rsplit('@').next()}),
                },
            )?;
            app.p.execute(audit.sql, &audit.params).await?;
            return Err(invalid_credentials());
        }
    };
    ratelimit::clear_email(app.p, &email).await?;

    let platform_admin = user.platform_role.as_deref() == Some("platform_admin");
    let contexts = crate::tenants::contexts_of(app.p, &user.id, platform_admin).await?;
    let wanted = match (site, body.tenant) {
        (Site::ClientPortal(c), Some(t)) if t != c.id => {
            return Err(ApiError::Forbidden("tenant_mismatch", "this portal belongs to another tenant".into()))
        }
        (Site::ClientPortal(c), _) => Some(c.id.clone()),
        (_, t) => t,
    };
    let who = pick_context(app, &user.id, &contexts, wanted.as_deref(), site).await?;
    issue(app, req, &who, "auth.login").await
}

/// Chooses the tenant a login starts in: the requested one, or the portal's client, or the
/// first the user belongs to. A portal login by someone who cannot reach its client fails.
async fn pick_context<P: Platform>(
    app: &App<'_, P>,
    user_id: &str,
    contexts: &[Value],
    wanted: Option<&str>,
    site: &Site,
) -> ApiResult<Principal> {
    let no_access = || ApiError::Forbidden("no_access", "this account has no access to that tenant".into());
    if let Some(t) = wanted {
        if let Some(p) = crate::tenants::load_principal(app.p, user_id, t).await? {
            return Ok(p);
        }
        // On a portal, an agency member or platform admin acts through their wider scope.
        if let Site::ClientPortal(c) = site {
            for ctx in contexts {
                let Some(tenant) = ctx["tenant"].as_str() else {
                    continue;
                };
                if let Some(p) = crate::tenants::load_principal(app.p, user_id, tenant).await? {
                    if p.reaches_client(&c.id, &c.agency_id) && tenant != c.id {
                        return Ok(p);
                    }
                }
            }
        }
        return Err(no_access());
    }
    for ctx in contexts {
        let Some(tenant) = ctx["tenant"].as_str() else {
            continue;
        };
        if let Some(p) = crate::tenants::load_principal(app.p, user_id, tenant).await? {
            return Ok(p);
        }
    }
    Err(no_access())
}

async fn issue<P: Platform>(app: &App<'_, P>, req: &Request, who: &Principal, action: &str) -> ApiResult<Response> {
    let now = app.p.now_secs();
    let claims = AccessClaims {
        sub: who.user_id.clone(),
        iss: app.cfg.jwt_issuer.clone(),
        aud: app.cfg.jwt_audience.clone(),
        tenant: who.tenant_id().to_string(),
        role: who.role.as_str().to_string(),
        permissions: who.permissions.iter().map(|p| p.as_str().to_string()).collect(),
        jti: crate::ids::new_id("jti")?,
    };
    let token = app
        .token_keys()
        .issue(claims, now, app.cfg.access_token_ttl_secs)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let audit = app.audit(
        req,
        Some(who),
        crate::audit::Event {
            tenant_id: who.tenant_id(),
            action,
            target_type: "user",
            target_id: Some(&who.user_id),
            metadata: json!({}),
        },
    )?;
    app.p.execute(audit.sql, &audit.params).await?;
    Ok(Response::json(
        200,
        &json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": app.cfg.access_token_ttl_secs,
            "context": context_json(who),
        }),
    ))
}

pub async fn switch<P: Platform>(app: &App<'_, P>, req: &Request, site: &Site) -> ApiResult<Response> {
    let current = app.authenticate(req, site).await?;
    let body: SwitchBody = json_body(req, &[])?;
    if let Site::ClientPortal(c) = site {
        if body.tenant != c.id {
            return Err(ApiError::Forbidden("tenant_mismatch", "this portal belongs to another tenant".into()));
        }
    }
    let who = crate::tenants::load_principal(app.p, &current.user_id, &body.tenant)
        .await?
        .ok_or_else(|| ApiError::Forbidden("no_access", "you do not belong to that tenant".into()))?;
    issue(app, req, &who, "auth.switch").await
}

pub async fn me<P: Platform>(app: &App<'_, P>, req: &Request, site: &Site) -> ApiResult<Response> {
    let who = app.authenticate(req, site).await?;
    let user = app.p.query(crate::tenants::SELECT_USER, &[who.user_id.as_str().into()]).await?;
    let user = user.into_iter().next().ok_or(ApiError::NotFound)?;
    let platform_admin = crate::ports::col_str(&user, "platform_role").as_deref() == Some("platform_admin");
    let memberships = crate::tenants::contexts_of(app.p, &who.user_id, platform_admin).await?;
    Ok(Response::json(
        200,
        &json!({
            "user": {"id": user.get("id"), "email": user.get("email"), "name": user.get("name")},
            "memberships": memberships,
            "context": context_json(&who),
        }),
    ))
}

fn context_json(who: &Principal) -> Value {
    json!({
        "tenant": who.tenant_id(),
        "scope": who.scope,
        "role": who.role,
        "permissions": who.permissions,
    })
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("invalid_credentials", "email or password is incorrect".into())
}
