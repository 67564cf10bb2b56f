//! API keys: programmatic access for a client's or an agency's integrations.
//!
//! A key is `gh_live_` + 256 random bits, shown once at creation; only its SHA-256 is stored. It
//! acts in one tenant with the tenant's admin role narrowed to a permission set that is no more
//! than its creator held (the grant rule), may expire, and can be revoked at once. A bearer
//! token that starts with `gh_live_` is a key, anything else a JWT. Every use is attributed in
//! the audit log to the key (`actor_user_id` is its id, `actor_role` is `api_key`).

use serde::Serialize;
use serde_json::json;

use super::users::token_hash;

use crate::access::audit::{self, Event};
use crate::access::roles::{effective_permissions, granted_permissions, Permission, Principal, Role, Scope};
use crate::access::{self, Site};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{json_body, tenant_page, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_id, looks_like_token, new_id, new_token};
use crate::platform::ports::{json_list, Param, Platform, Stmt};
use crate::platform::{tz, Ctx};

pub const PREFIX: &str = "gh_live_";
/// Characters of a key shown in lists.
const SHOWN: usize = PREFIX.len() + 6;
/// Keys one tenant may hold (revoked ones included, so the list stays bounded).
pub const MAX_KEYS: i64 = 50;

/// Refused inside the statement once the tenant holds `MAX_KEYS`.
pub const INSERT: &str = "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, role, permissions, created_by, \
    created_at, expires_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
    WHERE (SELECT count(*) FROM api_keys WHERE tenant_id = ?2) < ?11";
pub const LIST: &str = "SELECT id, tenant_id, name, prefix, role, permissions, created_by, created_at, expires_at, \
    last_used_at, revoked_at FROM api_keys WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
pub const REVOKE: &str = "UPDATE api_keys SET revoked_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL";
/// A key by its hash, with its tenant's standing: a client is usable only while it and its agency
/// are active, an agency while it is.
pub const API_KEY_BY_HASH: &str =
    "SELECT k.id, k.tenant_id, k.name, k.role, k.permissions, k.expires_at, k.revoked_at, k.last_used_at, \
    c.agency_id AS client_agency_id, \
    CASE WHEN c.id IS NOT NULL THEN (CASE WHEN ca.status = 'active' THEN c.status ELSE ca.status END) \
      ELSE a.status END AS tenant_status \
    FROM api_keys k LEFT JOIN clients c ON c.id = k.tenant_id LEFT JOIN agencies ca ON ca.id = c.agency_id \
    LEFT JOIN agencies a ON a.id = k.tenant_id WHERE k.key_hash = ?1";
/// At most one write a minute per key.
const TOUCH_EVERY_MS: i64 = 60_000;
pub const TOUCH: &str = "UPDATE api_keys SET last_used_at = ?3 WHERE tenant_id = ?1 AND id = ?2 \
    AND (last_used_at IS NULL OR last_used_at < ?3 - 60000)";

/// Whether a bearer token is an API key rather than a JWT.
pub fn is_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

crate::platform::rows::row! {
    struct KeyRow {
        id: String,
        tenant_id: String,
        name: String,
        role: String,
        permissions: String,
        expires_at: Option<i64>,
        revoked_at: Option<i64>,
        last_used_at: Option<i64>,
        client_agency_id: Option<String>,
        tenant_status: Option<String>,
    }
}

/// The authority of a key: its tenant, its narrowed permissions. Keys act on the API host only.
pub async fn authenticate<P: Platform>(ctx: &Ctx<'_, P>, token: &str, site: &Site) -> ApiResult<Principal> {
    let invalid = |why: &str| ApiError::Unauthorized("invalid_token", why.to_string());
    if !looks_like_token(token, PREFIX) {
        return Err(invalid("malformed API key"));
    }
    if !matches!(site, Site::Api) {
        return Err(ApiError::Forbidden("tenant_mismatch", "API keys are used on the API host only".into()));
    }
    let k: KeyRow = ctx
        .p
        .query_first(API_KEY_BY_HASH, &[token_hash(token).into()])
        .await?
        .ok_or_else(|| invalid("unknown API key"))?;
    let now = ctx.p.now_ms();
    if k.revoked_at.is_some() {
        return Err(invalid("this API key was revoked"));
    }
    if k.expires_at.is_some_and(|t| t <= now) {
        return Err(invalid("this API key has expired"));
    }
    if k.tenant_status.as_deref() != Some("active") {
        return Err(invalid("this API key's tenant is not active"));
    }
    let role = Role::parse(&k.role).ok_or_else(|| invalid("unknown API key"))?;
    let scope = match &k.client_agency_id {
        Some(agency_id) => Scope::Client { client_id: k.tenant_id.clone(), agency_id: agency_id.clone() },
        None => Scope::Agency { agency_id: k.tenant_id.clone() },
    };
    // An unreadable list grants nothing, as for memberships.
    let permissions = effective_permissions(role, Some(&k.permissions)).unwrap_or_default();
    // The loaded row says whether a write is due: most requests make none.
    if k.last_used_at.is_none_or(|t| t < now - TOUCH_EVERY_MS) {
        ctx.p.execute(TOUCH, &[k.tenant_id.as_str().into(), k.id.as_str().into(), Param::Int(now)]).await?;
    }
    Ok(Principal {
        user_id: k.id,
        email: format!("api key: {}", k.name),
        role,
        scope,
        permissions,
        staff: false,
        home_client: None,
        api_key: true,
        token_version: 0,
    })
}

crate::platform::rows::row! {
    /// A key as lists show it: never the key, only its first characters.
    #[derive(Debug, Serialize)]
    pub struct KeyView {
        pub id: String,
        pub tenant_id: String,
        pub name: String,
        pub prefix: String,
        pub role: String,
        /// Stored as the text of a JSON array.
        pub permissions: Vec<String>,
        pub created_by: String,
        pub created_at: i64,
        pub expires_at: Option<i64>,
        pub last_used_at: Option<i64>,
        pub revoked_at: Option<i64>,
    }
}

/// The tenant a key route names, checked: reach (404), then `api_keys:manage` (403), with the
/// admin role of its kind, which bounds its keys.
async fn tenant<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    kind: Kind,
    id: &str,
) -> ApiResult<(String, Role)> {
    let role = match kind {
        Kind::Client => Role::ClientAdmin,
        Kind::Agency => Role::AgencyAdmin,
    };
    Ok((access::tenant(ctx, req, who, kind, id, Permission::ApiKeysManage).await?, role))
}

/// Which kind of tenant a key or invitation route is under.
pub use crate::access::TenantKind as Kind;

crate::platform::body::body! {
    struct NewKey {
        name: String,
        permissions: Option<Vec<String>>,
        /// RFC 3339; absent: the key does not expire.
        expires_at: Option<String>,
    }
}

/// `POST /api/{clients|agencies}/{id}/api-keys {name, permissions?, expires_at?}`: 201 with the key,
/// shown this once. Without `permissions`, the key gets every permission of the tenant's admin
/// role the creator holds; with them, each must be one the creator holds.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    kind: Kind,
    id: &str,
) -> ApiResult<Response> {
    let (tenant_id, role) = tenant(ctx, req, who, kind, id).await?;
    if who.api_key {
        return Err(ApiError::forbidden("an API key cannot create API keys"));
    }
    let body: NewKey = json_body(req, &["role", "tenant_id", "key", "prefix"])?;
    let name = text_field("name", &body.name, 100)?;
    let permissions = match body.permissions.as_deref() {
        None => role.permissions().iter().copied().filter(|p| who.can(*p)).collect(),
        Some(list) => granted_permissions(role, Some(list)).map_err(|n| {
            ApiError::invalid("invalid_permission", format!("`{n}` is not a permission of {}", role.as_str()))
        })?,
    };
    let now = ctx.p.now_ms();
    let expires_at = match body.expires_at.as_deref() {
        None => None,
        Some(t) => Some(
            tz::parse_instant(t)
                .filter(|t| *t > now)
                .ok_or_else(|| ApiError::invalid("invalid_expiry", "`expires_at` is a future RFC 3339 instant"))?,
        ),
    };
    let key_id = new_id("key")?;
    // The grant rule, as for a membership: nothing the creator does not hold.
    who.may_grant(&key_id, role, &permissions, None).map_err(super::users::refused)?;
    let key = new_token(PREFIX)?;
    let shown: String = key.chars().take(SHOWN).collect();
    let names = json_list(permissions.iter().map(|p| p.as_str()));
    let stmts = [
        Stmt::new(
            INSERT,
            vec![
                key_id.as_str().into(),
                tenant_id.as_str().into(),
                name.as_str().into(),
                shown.as_str().into(),
                token_hash(&key).into(),
                role.as_str().into(),
                names.into(),
                who.user_id.as_str().into(),
                Param::Int(now),
                expires_at.into(),
                Param::Int(MAX_KEYS),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: &tenant_id,
                action: "api_key.created",
                target_type: "api_key",
                target_id: Some(&key_id),
                metadata: json!({"name": name, "permissions": permissions, "expires_at": expires_at}),
            },
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::TooMany(
            "api_key_limit_reached",
            format!("a tenant holds at most {MAX_KEYS} API keys"),
            None,
        ));
    }
    Ok(Response::json(
        201,
        &json!({
            "id": key_id, "tenant_id": tenant_id, "name": name, "prefix": shown, "role": role,
            "permissions": permissions, "expires_at": expires_at, "created_at": now, "key": key,
        }),
    ))
}

/// `GET /api/{clients|agencies}/{id}/api-keys`.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    kind: Kind,
    id: &str,
) -> ApiResult<Response> {
    let (tenant_id, _) = tenant(ctx, req, who, kind, id).await?;
    tenant_page(ctx.p, req, LIST, &tenant_id, |k: &KeyView| Some(k.id.clone())).await
}

/// `DELETE /api/{clients|agencies}/{id}/api-keys/{key_id}`: revoked at once; the row stays for the
/// audit trail.
pub async fn revoke<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    kind: Kind,
    id: &str,
    key_id: &str,
) -> ApiResult<Response> {
    let (tenant_id, _) = tenant(ctx, req, who, kind, id).await?;
    if !looks_like_id(key_id, "key") {
        return Err(ApiError::NotFound);
    }
    let stmts = [
        Stmt::new(REVOKE, vec![tenant_id.as_str().into(), key_id.into(), Param::Int(ctx.p.now_ms())]),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: &tenant_id,
                action: "api_key.revoked",
                target_type: "api_key",
                target_id: Some(key_id),
                metadata: json!({}),
            },
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Response::new(204))
}
