//! Users and memberships: create, list, grant and revoke. Roles and tenants are set only by
//! grant-access, and never above the granter's own role.

use serde::Serialize;
use serde_json::json;

use crate::access::audit;
use crate::access::audit::Event;
use crate::access::plans::{self, Metric};
use crate::access::roles::{
    effective_permissions, granted_permissions, GrantRefusal, Level, Permission, Principal, Role, Scope,
};
use crate::access::store;
use crate::access::{self, require_permission};
use crate::auth::password;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{email_field, json_body, page_params, page_response, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ports::{decode_all, json_list, Param, Platform, Stmt};
use crate::platform::Ctx;

crate::platform::body::body! {
    struct Grant {
        agency_id: Option<String>,
        client_id: Option<String>,
        role: String,
        /// Narrows the role's permissions for this membership.
        permissions: Option<Vec<String>>,
    }
}

crate::platform::body::body! {
    struct Revoke {
        agency_id: Option<String>,
        client_id: Option<String>,
    }
}

/// The tenant a membership change targets.
enum Target {
    Agency(String),
    Client { client_id: String, agency_id: String },
}

impl Target {
    fn level(&self) -> Level {
        match self {
            Target::Agency(_) => Level::Agency,
            Target::Client { .. } => Level::Client,
        }
    }

    fn tenant_id(&self) -> &str {
        match self {
            Target::Agency(a) => a,
            Target::Client { client_id, .. } => client_id,
        }
    }
}

/// Resolves and authorises the tenant named in a grant or revoke. Foreign tenants are 404.
async fn target<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    agency: Option<String>,
    client: Option<String>,
) -> ApiResult<Target> {
    match (agency, client) {
        (Some(a), None) => Ok(Target::Agency(access::reach_agency(ctx, req, who, &a).await?.1.id)),
        (None, Some(c)) => {
            let (_, row) = access::reach_client(ctx, req, who, &c).await?;
            Ok(Target::Client { client_id: row.id, agency_id: row.agency_id })
        }
        _ => Err(ApiError::invalid("invalid_target", "name exactly one of agency_id or client_id")),
    }
}

/// Whether the caller can see this user at all: the user belongs somewhere in the caller's scope.
async fn user_visible<P: Platform>(ctx: &Ctx<'_, P>, who: &Principal, user_id: &str) -> ApiResult<bool> {
    if !crate::platform::ids::looks_like_id(user_id, "usr") {
        return Ok(false);
    }
    let rows = match &who.scope {
        Scope::Platform => ctx.p.query(store::SELECT_USER, &[user_id.into()]).await?,
        Scope::Agency { agency_id } => ctx.p.query(store::USER_IN_AGENCY, &[agency_id.into(), user_id.into()]).await?,
        Scope::Client { client_id, .. } => {
            ctx.p.query(store::USER_IN_CLIENT, &[client_id.into(), user_id.into()]).await?
        }
    };
    Ok(!rows.is_empty())
}

crate::platform::rows::row! {
    /// A user as a listing shows them.
    #[derive(Serialize)]
    struct UserView {
        id: String,
        email: String,
        name: Option<String>,
        status: String,
        created_at: i64,
    }
}

pub async fn list<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    require_permission(who, Permission::UsersRead)?;
    let (cursor, limit) = page_params(req)?;
    audit::staff_access(ctx, req, who, who.tenant_id(), "users").await?;
    let rows = match &who.scope {
        Scope::Platform => ctx.p.query(store::ALL_USERS, &[cursor.into(), Param::Int(limit)]).await?,
        Scope::Agency { agency_id } => {
            ctx.p.query(store::USERS_OF_AGENCY, &[agency_id.into(), cursor.into(), Param::Int(limit)]).await?
        }
        Scope::Client { client_id, .. } => {
            ctx.p.query(store::USERS_OF_CLIENT, &[client_id.into(), cursor.into(), Param::Int(limit)]).await?
        }
    };
    let items: Vec<UserView> = decode_all(rows)?;
    Ok(page_response(&items, limit, |u| Some(u.id.clone())))
}

pub const INSERT_INVITATION: &str = "INSERT INTO invitations (id, tenant_id, email, role, permissions, token_hash, \
    status, invited_by, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9)";
/// Global by design: the token's hash is the only key an invitee holds.
pub const INVITATION_BY_TOKEN: &str = "SELECT id, tenant_id, email, role, permissions, status, expires_at \
    FROM invitations WHERE token_hash = ?1";
/// Into a client, only while it has a seat free (?6) or the person already holds one.
pub const ACCEPT_INVITATION: &str = "UPDATE invitations SET status = 'accepted', accepted_at = ?3, accepted_by = ?4, \
    accept_nonce = ?5 WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending' AND expires_at > ?3 \
    AND ((SELECT count(*) FROM client_users WHERE client_id = ?1) < ?6 \
      OR EXISTS (SELECT 1 FROM client_users WHERE client_id = ?1 AND user_id = ?4))";
/// The inserts an acceptance makes run only if that acceptance won (its nonce is on the row).
pub const INSERT_INVITED_USER: &str = "INSERT INTO users (id, email, name, password_hash, platform_role, status, \
    created_at, updated_at) SELECT ?1, ?2, ?3, ?4, NULL, 'active', ?5, ?5 \
    WHERE EXISTS (SELECT 1 FROM invitations WHERE tenant_id = ?6 AND id = ?7 AND accept_nonce = ?8)";
pub const INSERT_INVITED_AGENCY_MEMBER: &str =
    "INSERT INTO agency_memberships (user_id, agency_id, role, permissions, \
    created_at) SELECT ?1, ?2, ?3, ?4, ?5 \
    WHERE EXISTS (SELECT 1 FROM invitations WHERE tenant_id = ?2 AND id = ?6 AND accept_nonce = ?7) \
    ON CONFLICT (user_id, agency_id) DO NOTHING";
pub const INSERT_INVITED_CLIENT_MEMBER: &str = "INSERT INTO client_users (user_id, client_id, role, permissions, \
    created_at) SELECT ?1, ?2, ?3, ?4, ?5 \
    WHERE EXISTS (SELECT 1 FROM invitations WHERE tenant_id = ?2 AND id = ?6 AND accept_nonce = ?7) \
    ON CONFLICT (user_id, client_id) DO NOTHING";

pub const SEATS_TAKEN: &str = "SELECT count(*) AS n FROM client_users WHERE client_id = ?1";

crate::platform::body::body! {
    struct Invite {
        email: String,
        /// The role to hold; the lowest of the tenant's level when absent.
        role: Option<String>,
        permissions: Option<Vec<String>>,
        /// The agency or client to join; the caller's own tenant when absent.
        tenant: Option<String>,
    }
}

crate::platform::body::body! {
    struct Accept {
        token: String,
        name: Option<String>,
        password: Option<String>,
    }
}

pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::platform::ids::hex(&Sha256::digest(token.as_bytes()))
}

/// `POST /api/users`: invites a person into a tenant. The answer is the same whether or not the
/// email already has an account, so it reveals nothing; the invitee proves the address by
/// accepting the mailed token, and sets their own password if they are new.
pub async fn create<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    invite(ctx, req, who, None).await
}

/// `POST /api/clients/{id}/invitations`: the same invitation, into the client the path names (the
/// only form a client's portal serves, since a portal answers only under its own client's path).
pub async fn invite_into_client<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    invite(ctx, req, who, Some(client_id)).await
}

async fn invite<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    path: Option<&str>,
) -> ApiResult<Response> {
    let body: Invite =
        json_body(req, &["id", "agency_id", "client_id", "platform_role", "status", "password", "user_id"])?;
    let email = email_field(&body.email)?;
    let tenant = match (path, body.tenant) {
        (Some(p), Some(b)) if b != p => {
            return Err(ApiError::invalid("tenant_mismatch", "`tenant` must be the client the path names, or absent"))
        }
        (Some(p), _) => p.to_string(),
        (None, b) => b.unwrap_or_else(|| who.tenant_id().to_string()),
    };
    let t = if crate::platform::ids::looks_like_id(&tenant, "agy") {
        target(ctx, req, who, Some(tenant), None).await?
    } else if crate::platform::ids::looks_like_id(&tenant, "cli") {
        target(ctx, req, who, None, Some(tenant)).await?
    } else {
        return Err(ApiError::invalid("invalid_target", "name the agency or client to invite into as `tenant`"));
    };
    // Reach first (a foreign tenant is 404), then permission (403).
    require_permission(who, Permission::UsersManage)?;
    let role = match body.role.as_deref() {
        Some(r) => Role::parse(r).ok_or_else(|| ApiError::invalid("invalid_role", "unknown role"))?,
        None if t.level() == Level::Agency => Role::AgencyUser,
        None => Role::ClientViewer,
    };
    let (granted, narrowing) = membership_terms(&t, role, body.permissions.as_deref())?;
    let own = if email == who.email { who.user_id.as_str() } else { "" };
    who.may_grant(own, role, &granted, None).map_err(refused)?;
    let id = crate::platform::ids::new_id("inv")?;
    let token = crate::platform::ids::new_token("inv_")?;
    let now = ctx.p.now_ms();
    let expires = now + ctx.cfg.invitation_ttl_days * 86_400_000;
    let mail = super::invitations::mail_text(ctx, req, t.tenant_id(), role.as_str(), &token).await?;
    let stmts = [
        Stmt::new(
            INSERT_INVITATION,
            vec![
                id.as_str().into(),
                t.tenant_id().into(),
                email.as_str().into(),
                role.as_str().into(),
                narrowing.into(),
                token_hash(&token).into(),
                who.user_id.as_str().into(),
                Param::Int(expires),
                Param::Int(now),
            ],
        ),
        crate::access::mail::stmt(ctx, t.tenant_id(), &email, "You have been invited to Gatehouse", &mail)?,
        audit::entry(
            ctx,
            req,
            Some(who),
            Event {
                tenant_id: t.tenant_id(),
                action: "invitation.created",
                target_type: "invitation",
                target_id: Some(&id),
                metadata: json!({"role": role, "email_domain": email.rsplit('@').next()}),
            },
        )?,
    ];
    ctx.p.batch(&stmts).await?;
    Ok(Response::json(
        202,
        &json!({"invitation": {"id": id, "email": email, "tenant": t.tenant_id(), "role": role, "permissions": granted,
            "status": "pending", "expires_at": expires}}),
    ))
}

crate::platform::rows::row! {
    struct InvitationRow {
        id: String,
        tenant_id: String,
        email: String,
        role: String,
        permissions: Option<String>,
        status: String,
        expires_at: i64,
    }
}

/// `POST /api/invitations/accept`: no token needed; the invitation token is the proof. An
/// existing account just gains the membership; a new one is created with the given password.
///
/// On a portal host (where the mailed link leads) only that client's, or that agency's,
/// invitations are accepted; any other is as unknown as a made-up token.
pub async fn accept<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, site: &crate::access::Site) -> ApiResult<Response> {
    let body: Accept = json_body(req, &["email", "role", "tenant", "permissions"])?;
    let invalid =
        || ApiError::Conflict("invitation_invalid", "this invitation is unknown, used, revoked or expired".into());
    if body.token.len() > 128 {
        return Err(invalid());
    }
    let rows = ctx.p.query(INVITATION_BY_TOKEN, &[token_hash(body.token.trim()).into()]).await?;
    let inv: InvitationRow =
        rows.into_iter().next().map(crate::platform::ports::decode).transpose()?.ok_or_else(invalid)?;
    let now = ctx.p.now_ms();
    match inv.status.as_str() {
        "accepted" => return Err(ApiError::conflict("invitation_used", "this invitation was already accepted")),
        "revoked" => return Err(ApiError::conflict("invitation_revoked", "this invitation was revoked")),
        "pending" if inv.expires_at <= now => {
            return Err(ApiError::conflict(
                "invitation_expired",
                "this invitation has expired; ask for it to be sent again",
            ))
        }
        "pending" => {}
        _ => return Err(invalid()),
    }
    let here = match site {
        crate::access::Site::Api => true,
        crate::access::Site::ClientPortal { client, .. } => client.id == inv.tenant_id,
        crate::access::Site::AgencyPortal { agency, .. } => agency.id == inv.tenant_id,
    };
    if !here {
        return Err(invalid());
    }
    let role = Role::parse(&inv.role).ok_or_else(invalid)?;
    let existing = store::user_by_email(ctx.p, &inv.email).await?;
    let nonce = crate::platform::ids::new_token("")?;
    let user_id = match &existing {
        Some(u) => u.id.clone(),
        None => crate::platform::ids::new_id("usr")?,
    };
    // An agency's members take no client seat; a client's take one of its plan's.
    let seats = match role.level() {
        Level::Client => store::client(ctx.p, &inv.tenant_id).await?.map_or(0, |c| plans::limit(&c, Metric::Seats)),
        _ => i64::MAX,
    };
    let mut stmts = vec![Stmt::new(
        ACCEPT_INVITATION,
        vec![
            inv.tenant_id.as_str().into(),
            inv.id.as_str().into(),
            Param::Int(now),
            user_id.as_str().into(),
            nonce.as_str().into(),
            Param::Int(seats),
        ],
    )];
    let actor = crate::access::audit::Actor {
        user_id: Some(user_id.clone()),
        role: Some(role.as_str().into()),
        ..audit::actor(req, None)
    };
    // Right after the acceptance it records: written only if this acceptance won.
    stmts.push(crate::access::audit::after_change(
        &actor,
        Event {
            tenant_id: &inv.tenant_id,
            action: "invitation.accepted",
            target_type: "invitation",
            target_id: Some(&inv.id),
            metadata: json!({"role": role, "new_account": existing.is_none()}),
        },
        now,
    )?);
    if existing.is_none() {
        // The invitee holds the token, so telling them an account is needed reveals nothing.
        let Some(pw) = body.password.as_deref().filter(|p| !p.is_empty()) else {
            return Err(ApiError::invalid(
                "password_required",
                "this address has no account yet: send a name and a password to create it",
            ));
        };
        let name = text_field("name", body.name.as_deref().unwrap_or(""), 120)?;
        password::validate_new_password(pw)?;
        stmts.push(Stmt::new(
            INSERT_INVITED_USER,
            vec![
                user_id.as_str().into(),
                inv.email.as_str().into(),
                name.into(),
                password::hash_password(pw)?.into(),
                Param::Int(now),
                inv.tenant_id.as_str().into(),
                inv.id.as_str().into(),
                nonce.as_str().into(),
            ],
        ));
    }
    let member_sql =
        if role.level() == Level::Agency { INSERT_INVITED_AGENCY_MEMBER } else { INSERT_INVITED_CLIENT_MEMBER };
    stmts.push(Stmt::new(
        member_sql,
        vec![
            user_id.as_str().into(),
            inv.tenant_id.as_str().into(),
            role.as_str().into(),
            inv.permissions.clone().into(),
            Param::Int(now),
            inv.id.as_str().into(),
            nonce.as_str().into(),
        ],
    ));
    // Only a new member takes a seat: someone already in the client crosses nothing.
    let member = role.level() == Level::Client
        && !ctx
            .p
            .query(store::SELECT_CLIENT_MEMBERSHIP, &[user_id.as_str().into(), inv.tenant_id.as_str().into()])
            .await?
            .is_empty();
    if role.level() == Level::Client && !member {
        stmts.extend(plans::crossing(&actor, &inv.tenant_id, Metric::Seats, seats, &user_id, 1, now)?);
    }
    if ctx.p.batch(&stmts).await?.first().copied().unwrap_or(0) == 0 {
        let held = ctx.p.query(SEATS_TAKEN, &[inv.tenant_id.as_str().into()]).await?;
        if held.first().and_then(|r| crate::platform::ports::col_i64(r, "n")).unwrap_or(0) >= seats {
            return Err(plans::exceeded(Metric::Seats, seats));
        }
        return Err(invalid());
    }
    Ok(Response::json(200, &json!({"user_id": user_id, "email": inv.email, "tenant": inv.tenant_id, "role": role})))
}

/// What a grant or an invitation hands out: the role must belong on the target's level, and the
/// permissions are the named subset of the role's set (or its whole set when no list is given),
/// with the narrowing list to store (None when no list was given).
fn membership_terms(t: &Target, role: Role, list: Option<&[String]>) -> ApiResult<(Vec<Permission>, Option<String>)> {
    if role.level() != t.level() {
        return Err(ApiError::invalid("role_mismatch", "agency roles go on agencies, client roles on clients"));
    }
    let granted = granted_permissions(role, list).map_err(|name| {
        ApiError::invalid("invalid_permissions", format!("`{name}` is not a permission of the {} role", role.as_str()))
    })?;
    let narrowing = list.map(|_| json_list(granted.iter().map(|p| p.as_str())));
    Ok((granted, narrowing))
}

/// The 403 for each reason a membership change is refused.
pub fn refused(r: GrantRefusal) -> ApiError {
    match r {
        GrantRefusal::OwnMembership => {
            ApiError::Forbidden("own_membership", "nobody changes their own membership".into())
        }
        GrantRefusal::RoleTooHigh => {
            ApiError::Forbidden("role_too_high", "you cannot grant or revoke a role above your own".into())
        }
        GrantRefusal::ExceedsOwn(missing) => ApiError::Forbidden(
            "permissions_exceed_own",
            format!(
                "you can grant only permissions you hold yourself; you lack {}",
                missing.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ),
        GrantRefusal::TargetOutranks => {
            ApiError::Forbidden("role_too_high", "that user's membership holds more than yours".into())
        }
    }
}

pub async fn grant<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    user_id: &str,
) -> ApiResult<Response> {
    if !user_visible(ctx, who, user_id).await? {
        return Err(ApiError::NotFound);
    }
    require_permission(who, Permission::UsersManage)?;
    let body: Grant = json_body(req, &["user_id", "platform_role"])?;
    let role = Role::parse(&body.role).ok_or_else(|| ApiError::invalid("invalid_role", "unknown role"))?;
    let t = target(ctx, req, who, body.agency_id, body.client_id).await?;
    // No list means the role's whole set, which must then fit inside the granter's own.
    let (granted, narrowing) = membership_terms(&t, role, body.permissions.as_deref())?;
    let existing = existing_membership(ctx, &t, user_id).await?;
    who.may_grant(user_id, role, &granted, existing.as_ref().map(|(r, p)| (*r, p.as_slice()))).map_err(refused)?;
    let now = ctx.p.now_ms();
    let mut seats = None;
    let upsert = match &t {
        Target::Agency(a) => Stmt::new(
            store::UPSERT_AGENCY_MEMBERSHIP,
            vec![user_id.into(), a.into(), role.as_str().into(), narrowing.into(), Param::Int(now)],
        ),
        Target::Client { client_id, .. } => {
            let limit = store::client(ctx.p, client_id).await?.map_or(0, |c| plans::limit(&c, Metric::Seats));
            seats = Some((client_id.as_str(), limit));
            Stmt::new(
                store::UPSERT_CLIENT_MEMBERSHIP,
                vec![
                    user_id.into(),
                    client_id.into(),
                    role.as_str().into(),
                    narrowing.into(),
                    Param::Int(now),
                    Param::Int(limit),
                ],
            )
        }
    };
    let audit = audit::entry_if_changed(
        ctx,
        req,
        who,
        Event {
            tenant_id: t.tenant_id(),
            action: "membership.granted",
            target_type: "user",
            target_id: Some(user_id),
            metadata: json!({"role": role, "permissions": granted, "narrowed": body.permissions.is_some()}),
        },
    )?;
    let mut stmts = vec![upsert, audit];
    if let (Some((client_id, limit)), None) = (seats, existing.as_ref()) {
        stmts.extend(plans::crossing(&audit::actor(req, Some(who)), client_id, Metric::Seats, limit, user_id, 1, now)?);
    }
    if ctx.p.batch(&stmts).await?.first().copied().unwrap_or(0) == 0 {
        return Err(plans::exceeded(Metric::Seats, seats.map_or(0, |s| s.1)));
    }
    let agency = match &t {
        Target::Client { agency_id, .. } => Some(agency_id.as_str()),
        Target::Agency(_) => None,
    };
    Ok(Response::json(
        200,
        &json!({"user_id": user_id, "tenant": t.tenant_id(), "agency_id": agency, "role": role, "permissions": granted}),
    ))
}

/// The target user's current membership in the tenant: its role and effective permissions.
/// An unreadable narrowing list counts as the role's whole set here, so it is never mistaken
/// for "holds nothing" and overwritten by someone who holds less.
async fn existing_membership<P: Platform>(
    ctx: &Ctx<'_, P>,
    t: &Target,
    user_id: &str,
) -> ApiResult<Option<(Role, Vec<Permission>)>> {
    let rows = match t {
        Target::Agency(a) => ctx.p.query(store::SELECT_AGENCY_MEMBERSHIP, &[user_id.into(), a.into()]).await?,
        Target::Client { client_id, .. } => {
            ctx.p.query(store::SELECT_CLIENT_MEMBERSHIP, &[user_id.into(), client_id.into()]).await?
        }
    };
    let Some(row) = rows.first() else { return Ok(None) };
    let Some(role) = crate::platform::ports::col_str(row, "role").and_then(|r| Role::parse(&r)) else {
        return Ok(None);
    };
    let narrowing = crate::platform::ports::col_str(row, "permissions");
    let perms = effective_permissions(role, narrowing.as_deref()).unwrap_or_else(|_| role.permissions().to_vec());
    Ok(Some((role, perms)))
}

pub async fn revoke<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    user_id: &str,
) -> ApiResult<Response> {
    if !user_visible(ctx, who, user_id).await? {
        return Err(ApiError::NotFound);
    }
    require_permission(who, Permission::UsersManage)?;
    // The tenant may come as a JSON body or, since DELETE bodies are awkward, as query params.
    let (agency, client) = if req.body.is_empty() {
        (req.query_param("agency_id"), req.query_param("client_id"))
    } else {
        let b: Revoke = json_body(req, &[])?;
        (b.agency_id, b.client_id)
    };
    let t = target(ctx, req, who, agency, client).await?;
    let (existing, perms) = existing_membership(ctx, &t, user_id).await?.ok_or(ApiError::NotFound)?;
    who.may_revoke(user_id, existing, &perms).map_err(refused)?;
    let delete = match &t {
        Target::Agency(a) => Stmt::new(store::DELETE_AGENCY_MEMBERSHIP, vec![user_id.into(), a.into()]),
        Target::Client { client_id, .. } => {
            Stmt::new(store::DELETE_CLIENT_MEMBERSHIP, vec![user_id.into(), client_id.into()])
        }
    };
    let audit = audit::entry_if_changed(
        ctx,
        req,
        who,
        Event {
            tenant_id: t.tenant_id(),
            action: "membership.revoked",
            target_type: "user",
            target_id: Some(user_id),
            metadata: json!({"role": existing}),
        },
    )?;
    if !ctx.p.batch_changed(&[delete, audit]).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Response::new(204))
}
