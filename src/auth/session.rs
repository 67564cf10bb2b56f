//! Login, context switching and `/api/me`.

use serde_json::{json, Value};

use crate::access::audit;
use crate::access::roles::Principal;
use crate::access::Site;
use crate::auth::jwt::AccessClaims;
use crate::auth::ratelimit::{Attempt, Verdict};
use crate::auth::{password, turnstile};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::json_body;
use crate::platform::http::{Request, Response};
use crate::platform::ports::Platform;
use crate::platform::Ctx;

crate::platform::body::body! {
    struct LoginBody {
        email: String,
        password: String,
        /// Optional: the tenant to start in (`platform`, an agency id or a client id).
        tenant: Option<String>,
        /// A Cloudflare Turnstile response, needed once an email has drawn too many failures.
        turnstile_token: Option<String>,
    }
}

crate::platform::body::body! {
    struct SwitchBody {
        tenant: String,
    }
}

pub async fn login<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, site: &Site) -> ApiResult<Response> {
    let body: LoginBody = json_body(req, &[])?;
    let email = body.email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 || body.password.len() > 1024 {
        return Err(invalid_credentials());
    }
    let now = ctx.p.now_secs();
    let attempt = Attempt::record(ctx.p, &email, req.client_ip(), now, ctx.cfg.login_turnstile_after).await?;
    match attempt.verdict {
        Verdict::Proceed => {}
        Verdict::Blocked { retry_after } => {
            return Err(ApiError::TooMany(
                "too_many_attempts",
                "too many failed logins; try again later".into(),
                Some(retry_after),
            ))
        }
        Verdict::NeedsTurnstile { retry_after } => {
            turnstile::require(ctx, req, body.turnstile_token.as_deref(), retry_after).await?;
        }
    }
    let user = crate::access::store::user_by_email(ctx.p, &email).await?;
    // Unknown users verify against a dummy hash: the same work as a wrong password.
    let ok = password::verify_password(&body.password, user.as_ref().map(|u| u.password_hash.as_str()));
    let user = match user {
        Some(u) if ok && u.status == "active" => u,
        _ => {
            let audit = audit::entry(
                ctx,
                req,
                None,
                crate::access::audit::Event {
                    tenant_id: "platform",
                    action: "auth.login_failed",
                    target_type: "user",
                    target_id: None,
                    metadata: json!({"email_domain": email.rsplit('@').next()}),
                },
            )?;
            ctx.p.execute(audit.sql, &audit.params).await?;
            return Err(invalid_credentials());
        }
    };
    attempt.succeeded(ctx.p).await?;

    let who = match site {
        // On a portal the session is confined to the portal's client, whatever else the user
        // may reach, and bound to the portal's host.
        Site::ClientPortal { client: c, .. } => {
            if body.tenant.as_deref().is_some_and(|t| t != c.id) {
                return Err(ApiError::Forbidden("tenant_mismatch", "this portal belongs to another tenant".into()));
            }
            crate::access::store::load_portal_principal(ctx.p, &user.id, c).await?.ok_or_else(no_access)?
        }
        // On an agency's portal the session starts in the agency (or a client of it, when asked
        // for), bound to the portal's host.
        Site::AgencyPortal { agency: a, .. } => {
            let tenant = body.tenant.as_deref().unwrap_or(&a.id);
            crate::access::store::load_agency_portal_principal(ctx.p, &user.id, a, tenant)
                .await?
                .ok_or_else(agency_portal_refusal)?
        }
        Site::Api => {
            let platform_admin = user.platform_role.as_deref() == Some("platform_admin");
            let contexts = crate::access::store::contexts_of(ctx.p, &user.id, platform_admin).await?;
            pick_context(ctx, &user.id, &contexts, body.tenant.as_deref()).await?
        }
    };
    // With MFA on, or required by the tenant, the password only earns the second step.
    if let Some(challenge) = super::mfa::gate(ctx, &who, site).await? {
        return Ok(challenge);
    }
    issue(ctx, req, &who, site, "auth.login").await
}

/// A tenant this agency's portal does not serve, or a user with no place in it.
fn agency_portal_refusal() -> ApiError {
    ApiError::Forbidden("no_access", "this account has no access to that tenant from this agency's portal".into())
}

fn no_access() -> ApiError {
    ApiError::Forbidden("no_access", "this account has no access to that tenant".into())
}

/// Chooses the tenant an API login starts in: the requested one, or the first the user belongs to.
async fn pick_context<P: Platform>(
    ctx: &Ctx<'_, P>,
    user_id: &str,
    contexts: &[Value],
    wanted: Option<&str>,
) -> ApiResult<Principal> {
    if let Some(t) = wanted {
        return crate::access::store::load_principal(ctx.p, user_id, t).await?.ok_or_else(no_access);
    }
    if contexts.is_empty() {
        return Err(ApiError::Forbidden(
            "no_access_yet",
            "this account belongs to no agency or client yet; ask an admin of one for an invitation".into(),
        ));
    }
    for context in contexts {
        let Some(tenant) = context["tenant"].as_str() else {
            continue;
        };
        if let Some(p) = crate::access::store::load_principal(ctx.p, user_id, tenant).await? {
            return Ok(p);
        }
    }
    Err(no_access())
}

pub(crate) async fn issue<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    site: &Site,
    action: &str,
) -> ApiResult<Response> {
    Ok(Response::json(200, &session(ctx, req, who, site, action).await?))
}

/// A new access token for `who` on `site`, audited as `action`.
pub(crate) async fn session<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    site: &Site,
    action: &str,
) -> ApiResult<Value> {
    let now = ctx.p.now_secs();
    let claims = AccessClaims {
        sub: who.user_id.clone(),
        iss: ctx.cfg.jwt_issuer.clone(),
        aud: ctx.cfg.jwt_audience.clone(),
        tenant: who.tenant_id().to_string(),
        role: who.role.as_str().to_string(),
        permissions: who.permissions.iter().map(|p| p.as_str().to_string()).collect(),
        jti: crate::platform::ids::new_id("jti")?,
        site: site.portal_host().map(str::to_string),
        ver: who.token_version,
    };
    let token = super::token_keys(ctx.cfg)
        .issue(claims, now, ctx.cfg.access_token_ttl_secs)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let audit = audit::entry(
        ctx,
        req,
        Some(who),
        crate::access::audit::Event {
            tenant_id: who.tenant_id(),
            action,
            target_type: "user",
            target_id: Some(&who.user_id),
            metadata: json!({"staff": who.staff, "portal": site.portal_host().is_some()}),
        },
    )?;
    ctx.p.execute(audit.sql, &audit.params).await?;
    Ok(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ctx.cfg.access_token_ttl_secs,
        "context": context_json(who),
    }))
}

pub async fn switch<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, site: &Site) -> ApiResult<Response> {
    let current = super::authenticate(ctx, req, site).await?;
    let body: SwitchBody = json_body(req, &[])?;
    if let Site::ClientPortal { client: c, .. } = site {
        if body.tenant != c.id {
            return Err(ApiError::Forbidden("tenant_mismatch", "this portal belongs to another tenant".into()));
        }
    }
    let who = match site {
        Site::ClientPortal { client: c, .. } => {
            crate::access::store::load_portal_principal(ctx.p, &current.user_id, c).await?.ok_or_else(no_access)?
        }
        Site::AgencyPortal { agency: a, .. } => {
            crate::access::store::load_agency_portal_principal(ctx.p, &current.user_id, a, &body.tenant)
                .await?
                .ok_or_else(agency_portal_refusal)?
        }
        Site::Api => crate::access::store::load_principal(ctx.p, &current.user_id, &body.tenant)
            .await?
            .ok_or_else(|| ApiError::Forbidden("no_access", "you do not belong to that tenant".into()))?,
    };
    // Switching is a login into another tenant: one that requires MFA requires it here too.
    let mfa = super::mfa::state(ctx, &who.user_id, who.tenant_id()).await?;
    if mfa.required && !mfa.enabled && !who.api_key {
        return Err(super::mfa::enrol_first());
    }
    issue(ctx, req, &who, site, "auth.switch").await
}

pub async fn me<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, site: &Site) -> ApiResult<Response> {
    let who = super::authenticate(ctx, req, site).await?;
    let user = ctx.p.query(crate::access::store::SELECT_USER, &[who.user_id.as_str().into()]).await?;
    let user = user.into_iter().next().ok_or(ApiError::NotFound)?;
    let platform_admin = crate::platform::ports::col_str(&user, "platform_role").as_deref() == Some("platform_admin");
    let mut memberships = crate::access::store::contexts_of(ctx.p, &who.user_id, platform_admin).await?;
    // A portal session sees only the portal's own client: the portal's host is the tenant's, and
    // what else this person can reach is none of its business.
    // An agency's portal: the agency and its clients only.
    if let Site::AgencyPortal { agency: a, .. } = site {
        memberships
            .retain(|m| m["tenant"].as_str() == Some(a.id.as_str()) || m["agency_id"].as_str() == Some(a.id.as_str()));
    }
    if let Site::ClientPortal { client: c, .. } = site {
        memberships = vec![json!({"tenant": c.id, "kind": "client", "role": who.role, "agency_id": c.agency_id,
            "name": c.name, "slug": c.slug, "status": c.effective_status(), "staff": who.staff})];
    }
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

/// Ends every session of the caller's user: access tokens are stateless, so their version on the
/// user row is the only lever, and bumping it ends them all, on every device, at their next
/// request. Guarded on the version the caller's token carries, so the audit row is written once.
pub const END_SESSIONS: &str =
    "UPDATE users SET token_version = token_version + 1 WHERE id = ?1 AND token_version = ?2";

/// `POST /api/auth/logout-everywhere`: 204, and every token of this user stops working.
pub async fn logout_everywhere<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, site: &Site) -> ApiResult<Response> {
    let who = super::authenticate(ctx, req, site).await?;
    if who.api_key {
        return Err(ApiError::forbidden("an API key has no sessions; revoke the key instead"));
    }
    let stmts = [
        crate::platform::ports::Stmt::new(
            END_SESSIONS,
            vec![who.user_id.as_str().into(), crate::platform::ports::Param::Int(who.token_version)],
        ),
        super::own_change(ctx, req, &who, "auth.logout_everywhere")?,
    ];
    ctx.p.batch(&stmts).await?;
    Ok(Response::new(204))
}
