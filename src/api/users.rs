//! Users and memberships: create, list, grant and revoke. Roles and tenants are set only by
//! grant-access, and never above the granter's own role.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{email_field, json_body, page_params, page_response, text_field, App};
use crate::audit::Event;
use crate::auth::password;
use crate::error::{ApiError, ApiResult};
use crate::http::{Request, Response};
use crate::ports::{Param, Platform, Stmt};
use crate::tenancy::{may_grant, Level, Permission, Principal, Role, Scope};
use crate::tenants;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    name: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Grant {
    #[serde(default)]
    agency_id: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    role: String,
    /// Narrows the role's permissions for this membership.
    #[serde(default)]
    permissions: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    #[serde(default)]
    agency_id: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

/// The tenant a membership change targets.
enum Target {
    Agency(String),
    Client { client_id: String, agency_id: String },
}

impl Target {
    fn tenant_id(&self) -> &str {
        match self {
            Target::Agency(a) => a,
            Target::Client { client_id, .. } => client_id,
        }
    }
}

/// Resolves and authorises the tenant named in a grant or revoke. Foreign tenants are 404.
async fn target<P: Platform>(
    app: &App<'_, P>,
    who: &Principal,
    agency: Option<String>,
    client: Option<String>,
) -> ApiResult<Target> {
    match (agency, client) {
        (Some(a), None) => {
            if !crate::ids::looks_like_id(&a, "agy") || !who.reaches_agency(&a) {
                return Err(ApiError::NotFound);
            }
            tenants::agency(app.p, &a).await?.ok_or(ApiError::NotFound)?;
            Ok(Target::Agency(a))
        }
        (None, Some(c)) => {
            if !crate::ids::looks_like_id(&c, "cli") {
                return Err(ApiError::NotFound);
            }
            let row = tenants::client(app.p, &c).await?.ok_or(ApiError::NotFound)?;
            if !who.reaches_client(&row.id, &row.agency_id) {
                return Err(ApiError::NotFound);
            }
            Ok(Target::Client { client_id: row.id, agency_id: row.agency_id })
        }
        _ => Err(ApiError::invalid("invalid_target", "name exactly one of agency_id or client_id")),
    }
}

/// Whether the caller can see this user at all: the user belongs somewhere in the caller's scope.
async fn user_visible<P: Platform>(app: &App<'_, P>, who: &Principal, user_id: &str) -> ApiResult<bool> {
    if !crate::ids::looks_like_id(user_id, "usr") {
        return Ok(false);
    }
    let rows = match &who.scope {
        Scope::Platform => app.p.query(tenants::SELECT_USER, &[user_id.into()]).await?,
        Scope::Agency { agency_id } => {
            app.p.query(tenants::USER_IN_AGENCY, &[agency_id.into(), user_id.into()]).await?
        }
        Scope::Client { client_id, .. } => {
            app.p.query(tenants::USER_IN_CLIENT, &[client_id.into(), user_id.into()]).await?
        }
    };
    Ok(!rows.is_empty())
}

pub async fn list<P: Platform>(app: &App<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    if !who.can(Permission::UsersRead) {
        return Err(ApiError::forbidden("requires the users:read permission"));
    }
    let (cursor, limit) = page_params(req)?;
    let rows = match &who.scope {
        Scope::Platform => app.p.query(tenants::ALL_USERS, &[cursor.into(), Param::Int(limit)]).await?,
        Scope::Agency { agency_id } => {
            app.p.query(tenants::USERS_OF_AGENCY, &[agency_id.into(), cursor.into(), Param::Int(limit)]).await?
        }
        Scope::Client { client_id, .. } => {
            app.p.query(tenants::USERS_OF_CLIENT, &[client_id.into(), cursor.into(), Param::Int(limit)]).await?
        }
    };
    let items = rows.into_iter().map(Value::Object).collect();
    Ok(page_response(items, limit, |v| v["id"].as_str().map(String::from)))
}

/// Creates a user with the lowest role in the caller's tenant; grant-access raises it.
pub async fn create<P: Platform>(app: &App<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    if !who.can(Permission::UsersManage) {
        return Err(ApiError::forbidden("requires the users:manage permission"));
    }
    let body: NewUser =
        json_body(req, &["id", "role", "agency_id", "client_id", "platform_role", "permissions", "status"])?;
    let email = email_field(&body.email)?;
    let name = text_field("name", &body.name, 120)?;
    password::validate_new_password(&body.password)?;
    let hash = password::hash_password(&body.password)?;
    let id = crate::ids::new_id("usr")?;
    let now = app.p.now_ms();
    let mut stmts = vec![Stmt::new(
        tenants::INSERT_USER,
        vec![id.as_str().into(), email.as_str().into(), name.into(), hash.into(), Param::Int(now)],
    )];
    let initial = match &who.scope {
        Scope::Platform => None,
        Scope::Agency { agency_id } => {
            stmts.push(Stmt::new(
                tenants::UPSERT_AGENCY_MEMBERSHIP,
                vec![id.as_str().into(), agency_id.into(), "agency_user".into(), Param::Null, Param::Int(now)],
            ));
            Some("agency_user")
        }
        Scope::Client { client_id, .. } => {
            stmts.push(Stmt::new(
                tenants::UPSERT_CLIENT_MEMBERSHIP,
                vec![id.as_str().into(), client_id.into(), "client_viewer".into(), Param::Null, Param::Int(now)],
            ));
            Some("client_viewer")
        }
    };
    stmts.push(app.audit(
        req,
        Some(who),
        Event {
            tenant_id: who.tenant_id(),
            action: "user.created",
            target_type: "user",
            target_id: Some(&id),
            metadata: json!({"initial_role": initial}),
        },
    )?);
    app.p.batch(&stmts).await.map_err(|e| match e {
        crate::error::StoreError::Conflict(_) => {
            ApiError::conflict("email_taken", "a user with this email already exists")
        }
        other => other.into(),
    })?;
    Ok(Response::json(201, &json!({"id": id, "email": email, "role": initial, "tenant": who.tenant_id()})))
}

pub async fn grant<P: Platform>(
    app: &App<'_, P>,
    req: &Request,
    who: &Principal,
    user_id: &str,
) -> ApiResult<Response> {
    if !user_visible(app, who, user_id).await? {
        return Err(ApiError::NotFound);
    }
    if !who.can(Permission::UsersManage) {
        return Err(ApiError::forbidden("requires the users:manage permission"));
    }
    let body: Grant = json_body(req, &["user_id", "platform_role"])?;
    let role = Role::parse(&body.role).ok_or_else(|| ApiError::invalid("invalid_role", "unknown role"))?;
    let t = target(app, who, body.agency_id, body.client_id).await?;
    let fits =
        matches!((&t, role.level()), (Target::Agency(_), Level::Agency) | (Target::Client { .. }, Level::Client));
    if !fits {
        return Err(ApiError::invalid("role_mismatch", "agency roles go on agencies, client roles on clients"));
    }
    if !may_grant(who.role, role) {
        return Err(ApiError::Forbidden("role_too_high", "you cannot grant a role above your own".into()));
    }
    let narrowing = match body.permissions {
        None => None,
        Some(list) => {
            if list.iter().any(|p| Permission::parse(p).is_none_or(|p| !role.permissions().contains(&p))) {
                return Err(ApiError::invalid("invalid_permissions", "permissions may only narrow the role's own set"));
            }
            Some(serde_json::to_string(&list).map_err(|e| ApiError::Internal(e.to_string()))?)
        }
    };
    // Nobody changes the membership of someone who outranks them.
    if let Some(existing) = existing_role(app, &t, user_id).await? {
        if existing.rank() > who.role.rank() {
            return Err(ApiError::Forbidden("role_too_high", "that user outranks you".into()));
        }
    }
    let now = app.p.now_ms();
    let upsert = match &t {
        Target::Agency(a) => Stmt::new(
            tenants::UPSERT_AGENCY_MEMBERSHIP,
            vec![user_id.into(), a.into(), role.as_str().into(), narrowing.into(), Param::Int(now)],
        ),
        Target::Client { client_id, .. } => Stmt::new(
            tenants::UPSERT_CLIENT_MEMBERSHIP,
            vec![user_id.into(), client_id.into(), role.as_str().into(), narrowing.into(), Param::Int(now)],
        ),
    };
    let audit = app.audit(
        req,
        Some(who),
        Event {
            tenant_id: t.tenant_id(),
            action: "membership.granted",
            target_type: "user",
            target_id: Some(user_id),
            metadata: json!({"role": role}),
        },
    )?;
    app.p.batch(&[upsert, audit]).await?;
    let agency = match &t {
        Target::Client { agency_id, .. } => Some(agency_id.as_str()),
        Target::Agency(_) => None,
    };
    Ok(Response::json(200, &json!({"user_id": user_id, "tenant": t.tenant_id(), "agency_id": agency, "role": role})))
}

async fn existing_role<P: Platform>(app: &App<'_, P>, t: &Target, user_id: &str) -> ApiResult<Option<Role>> {
    let rows = match t {
        Target::Agency(a) => app.p.query(tenants::SELECT_AGENCY_MEMBERSHIP, &[user_id.into(), a.into()]).await?,
        Target::Client { client_id, .. } => {
            app.p.query(tenants::SELECT_CLIENT_MEMBERSHIP, &[user_id.into(), client_id.into()]).await?
        }
    };
    Ok(rows.first().and_then(|r| crate::ports::col_str(r, "role")).and_then(|r| Role::parse(&r)))
}

pub async fn revoke<P: Platform>(
    app: &App<'_, P>,
    req: &Request,
    who: &Principal,
    user_id: &str,
) -> ApiResult<Response> {
    if !user_visible(app, who, user_id).await? {
        return Err(ApiError::NotFound);
    }
    if !who.can(Permission::UsersManage) {
        return Err(ApiError::forbidden("requires the users:manage permission"));
    }
    // The tenant may come as a JSON body or, since DELETE bodies are awkward, as query params.
    let (agency, client) = if req.body.is_empty() {
        (req.query_param("agency_id"), req.query_param("client_id"))
    } else {
        let b: Revoke = json_body(req, &[])?;
        (b.agency_id, b.client_id)
    };
    let t = target(app, who, agency, client).await?;
    let existing = existing_role(app, &t, user_id).await?.ok_or(ApiError::NotFound)?;
    if existing.rank() > who.role.rank() || !may_grant(who.role, existing) {
        return Err(ApiError::Forbidden("role_too_high", "you cannot revoke a role above your own".into()));
    }
    let delete = match &t {
        Target::Agency(a) => Stmt::new(tenants::DELETE_AGENCY_MEMBERSHIP, vec![user_id.into(), a.into()]),
        Target::Client { client_id, .. } => {
            Stmt::new(tenants::DELETE_CLIENT_MEMBERSHIP, vec![user_id.into(), client_id.into()])
        }
    };
    let audit = app.audit(
        req,
        Some(who),
        Event {
            tenant_id: t.tenant_id(),
            action: "membership.revoked",
            target_type: "user",
            target_id: Some(user_id),
            metadata: json!({"role": existing}),
        },
    )?;
    app.p.batch(&[delete, audit]).await?;
    Ok(Response::new(204))
}
