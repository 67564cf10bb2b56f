//! Managing invitations after they are sent: list a tenant's, revoke one, or send it again with a
//! fresh token and expiry (a lost or failed mail never loses the invitation). Each is held to the
//! grant rule: only someone who could have issued the invitation may revoke or resend it.

use serde::Serialize;
use serde_json::json;

use super::keys::Kind;
use super::users::refused;
use crate::access::audit::{self, Event};
use crate::access::roles::{effective_permissions, Permission, Principal, Role};
use crate::access::{self, mail};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::tenant_page;
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_id, new_token};
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

pub const LIST: &str = "SELECT id, tenant_id, email, role, permissions, status, invited_by, expires_at, created_at, \
    accepted_at FROM invitations WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
pub const ONE: &str = "SELECT id, tenant_id, email, role, permissions, status, invited_by, expires_at, created_at, \
    accepted_at FROM invitations WHERE tenant_id = ?1 AND id = ?2";
pub const REVOKE: &str =
    "UPDATE invitations SET status = 'revoked' WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'";
/// A new token and expiry for a pending invitation; the old token stops working.
pub const RESEND: &str = "UPDATE invitations SET token_hash = ?3, expires_at = ?4 \
    WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'";

crate::platform::rows::row! {
    #[derive(Debug, Serialize)]
    pub struct InvitationView {
        pub id: String,
        pub tenant_id: String,
        pub email: String,
        pub role: String,
        #[serde(skip_serializing)]
        pub permissions: Option<String>,
        pub status: String,
        pub invited_by: String,
        pub expires_at: i64,
        pub created_at: i64,
        pub accepted_at: Option<i64>,
    }
}

/// The tenant of an invitation route, reached (404) and managed (403 without `users:manage`).
async fn tenant<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    kind: Kind,
    id: &str,
) -> ApiResult<String> {
    access::tenant(ctx, req, who, kind, id, Permission::UsersManage).await
}

/// An invitation of the tenant that the caller could have issued.
async fn one_granted<P: Platform>(
    ctx: &Ctx<'_, P>,
    who: &Principal,
    tenant_id: &str,
    id: &str,
) -> ApiResult<InvitationView> {
    if !looks_like_id(id, "inv") {
        return Err(ApiError::NotFound);
    }
    let inv: InvitationView =
        ctx.p.query_first(ONE, &[tenant_id.into(), id.into()]).await?.ok_or(ApiError::NotFound)?;
    let role = Role::parse(&inv.role).ok_or(ApiError::NotFound)?;
    let perms = effective_permissions(role, inv.permissions.as_deref()).unwrap_or_else(|_| role.permissions().to_vec());
    who.may_grant("", role, &perms, None).map_err(refused)?;
    Ok(inv)
}

/// The audit row of a change to a pending invitation, written only if the change happened.
fn event<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    tenant_id: &str,
    inv: &InvitationView,
    action: &'static str,
) -> ApiResult<Stmt> {
    let event = Event {
        tenant_id,
        action,
        target_type: "invitation",
        target_id: Some(&inv.id),
        metadata: json!({"role": inv.role}),
    };
    audit::entry_if_changed(ctx, req, who, event)
}

/// The refusal for revoking or resending an invitation that is no longer pending.
fn not_pending(inv: &InvitationView) -> ApiError {
    ApiError::conflict("invitation_not_pending", format!("this invitation is {}", inv.status))
}

/// The invitation mail. It links to the accept page on the tenant's portal host (the client's
/// portal, or the agency's console), in its branding; the token rides in the fragment, which no
/// server or log sees.
pub async fn mail_text<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    tenant_id: &str,
    role: &str,
    token: &str,
) -> ApiResult<String> {
    let days = ctx.cfg.invitation_ttl_days;
    let (name, slug) = match access::store::client(ctx.p, tenant_id).await? {
        Some(c) => (c.name, c.slug),
        None => {
            let a = access::store::agency(ctx.p, tenant_id).await?.ok_or(ApiError::NotFound)?;
            (a.name, a.slug)
        }
    };
    let port = req
        .header("host")
        .and_then(|h| crate::platform::extract::parse_host(h).ok())
        .and_then(|(_, port)| port)
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let link = format!("{}://{slug}.{}{port}/invite#token={token}", req.scheme, ctx.cfg.portal_base_domain);
    Ok(format!("You have been invited to join {name} as {role}.\n\nAccept within {days} days:\n{link}\n"))
}

/// `GET /api/{clients|agencies}/{id}/invitations`.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    kind: Kind,
    id: &str,
) -> ApiResult<Response> {
    let tenant_id = tenant(ctx, req, who, kind, id).await?;
    tenant_page(ctx.p, req, LIST, &tenant_id, |i: &InvitationView| Some(i.id.clone())).await
}

/// `DELETE /api/{clients|agencies}/{id}/invitations/{invitation_id}`: a pending invitation can no
/// longer be accepted.
pub async fn revoke<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    kind: Kind,
    id: &str,
    invitation: &str,
) -> ApiResult<Response> {
    let tenant_id = tenant(ctx, req, who, kind, id).await?;
    let inv = one_granted(ctx, who, &tenant_id, invitation).await?;
    let stmts = [
        Stmt::new(REVOKE, vec![tenant_id.as_str().into(), inv.id.as_str().into()]),
        event(ctx, req, who, &tenant_id, &inv, "invitation.revoked")?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(not_pending(&inv));
    }
    Ok(Response::new(204))
}

/// `POST /api/{clients|agencies}/{id}/invitations/{invitation_id}/resend`: a fresh token (the old
/// one stops working) and a fresh expiry, mailed again.
pub async fn resend<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    kind: Kind,
    id: &str,
    invitation: &str,
) -> ApiResult<Response> {
    let tenant_id = tenant(ctx, req, who, kind, id).await?;
    let inv = one_granted(ctx, who, &tenant_id, invitation).await?;
    let token = new_token("inv_")?;
    let now = ctx.p.now_ms();
    let expires = now + ctx.cfg.invitation_ttl_days * 86_400_000;
    let body = mail_text(ctx, req, &tenant_id, &inv.role, &token).await?;
    let stmts = [
        Stmt::new(
            RESEND,
            vec![
                tenant_id.as_str().into(),
                inv.id.as_str().into(),
                super::users::token_hash(&token).into(),
                Param::Int(expires),
            ],
        ),
        mail::stmt_if_changed(ctx, &tenant_id, &inv.email, "You have been invited to Gatehouse", &body)?,
        event(ctx, req, who, &tenant_id, &inv, "invitation.resent")?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(not_pending(&inv));
    }
    Ok(Response::json(202, &json!({"id": inv.id, "email": inv.email, "expires_at": expires})))
}
