//! Agencies, clients, users and memberships: rows, SQL and the queries that load a caller's
//! authority. Every statement on a tenant-owned table filters by its tenant column.

use serde::Serialize;
use serde_json::Value;

use crate::access::roles::{effective_permissions, Permission, Principal, Role, Scope};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::ports::{decode_all, Database, FromRow, Log, Param, Row};

pub const SELECT_AGENCY: &str =
    "SELECT id, name, slug, email, phone, status, plan, require_mfa, created_at, updated_at, shard \
    FROM agencies WHERE id = ?1";
pub const SELECT_AGENCY_BY_SLUG: &str =
    "SELECT id, name, slug, email, phone, status, plan, require_mfa, created_at, updated_at, shard \
    FROM agencies WHERE slug = ?1";
pub const LIST_AGENCIES: &str =
    "SELECT id, name, slug, email, phone, status, plan, require_mfa, created_at, updated_at, shard \
    FROM agencies WHERE id > ?1 ORDER BY id LIMIT ?2";
pub const INSERT_AGENCY: &str =
    "INSERT INTO agencies (id, name, slug, email, phone, status, plan, created_at, updated_at, shard) \
    VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, ?7, ?8)";
pub const UPDATE_AGENCY: &str = "UPDATE agencies SET name = ?2, email = ?3, phone = ?4, status = ?5, plan = ?6, \
    updated_at = ?7, require_mfa = ?8 WHERE id = ?1";

pub const SELECT_CLIENT: &str =
    "SELECT id, agency_id, name, slug, business_type, kind, email, phone, website, status, \
    plan, feature_flags, test_mode, publishable_key, time_zone, require_mfa, limits, deleted_at, purge_after, created_at, updated_at, \
    template_id, template_version, integrations, shard, (SELECT a.status FROM agencies a WHERE a.id = clients.agency_id) AS agency_status FROM clients WHERE id = ?1";
pub const SELECT_CLIENT_BY_SLUG: &str =
    "SELECT id, agency_id, name, slug, business_type, kind, email, phone, website, \
    status, plan, feature_flags, test_mode, publishable_key, time_zone, require_mfa, limits, deleted_at, purge_after, created_at, updated_at, \
    template_id, template_version, integrations, shard, (SELECT a.status FROM agencies a WHERE a.id = clients.agency_id) AS agency_status FROM clients WHERE slug = ?1";
pub const LIST_CLIENTS_OF_AGENCY: &str =
    "SELECT id, agency_id, name, slug, business_type, kind, email, phone, website, \
    status, plan, feature_flags, test_mode, publishable_key, time_zone, require_mfa, limits, deleted_at, purge_after, created_at, updated_at, \
    template_id, template_version, integrations, shard, (SELECT a.status FROM agencies a WHERE a.id = clients.agency_id) AS agency_status FROM clients \
    WHERE agency_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
pub const LIST_ALL_CLIENTS: &str = "SELECT id, agency_id, name, slug, business_type, kind, email, phone, website, \
    status, plan, feature_flags, test_mode, publishable_key, time_zone, require_mfa, limits, deleted_at, purge_after, created_at, updated_at, \
    template_id, template_version, integrations, shard, (SELECT a.status FROM agencies a WHERE a.id = clients.agency_id) AS agency_status FROM clients \
    WHERE id > ?1 ORDER BY id LIMIT ?2";
/// Only for an agency whose address is verified (every agency but a fresh self-serve signup).
/// A new client goes on its agency's shard.
pub const INSERT_CLIENT: &str = "INSERT INTO clients (id, agency_id, name, slug, business_type, kind, email, phone, \
    website, status, plan, feature_flags, test_mode, publishable_key, created_at, updated_at, template_id, \
    template_version, integrations, shard) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'active', ?10, ?13, 0, ?11, ?12, \
    ?12, ?14, ?15, ?16, a.shard FROM agencies a WHERE a.id = ?2 AND a.signup_verified = 1";
/// The agencies on each shard (by `agencies_by_shard`; sign-up is public, so no scan of
/// clients): where a new agency goes (`place_agency`).
pub const SHARD_LOAD: &str = "SELECT shard, count(*) AS n FROM agencies GROUP BY shard";
pub const UPDATE_CLIENT: &str = "UPDATE clients SET name = ?3, business_type = ?4, kind = ?5, email = ?6, phone = ?7, \
    website = ?8, status = ?9, plan = ?10, feature_flags = ?11, test_mode = ?12, updated_at = ?13, time_zone = ?14, \
    require_mfa = ?15, limits = ?16, integrations = ?17 WHERE id = ?1 AND agency_id = ?2 AND deleted_at IS NULL";

pub const SELECT_USER_BY_EMAIL: &str = "SELECT id, email, name, password_hash, platform_role, status FROM users \
    WHERE email = ?1";
pub const SELECT_USER: &str = "SELECT id, email, name, platform_role, status, created_at FROM users WHERE id = ?1";
pub const INSERT_USER: &str = "INSERT INTO users (id, email, name, password_hash, platform_role, status, created_at, \
    updated_at) VALUES (?1, ?2, ?3, ?4, NULL, 'active', ?5, ?5)";

pub const PRINCIPAL_AGENCY: &str =
    "SELECT u.email, u.status AS user_status, u.token_version, m.role, m.permissions, a.status AS tenant_status \
    FROM agency_memberships m JOIN users u ON u.id = m.user_id JOIN agencies a ON a.id = m.agency_id \
    WHERE m.agency_id = ?2 AND m.user_id = ?1";
/// A client is usable only while it and its agency are both active: suspending an agency
/// suspends its clients without rewriting their rows.
/// The client row comes along as JSON (its columns would collide with the user's), so the request
/// that authenticates a client member reads its client once.
pub const PRINCIPAL_CLIENT: &str =
    "SELECT u.email, u.status AS user_status, u.token_version, m.role, m.permissions, c.agency_id, \
    CASE WHEN a.status = 'active' THEN c.status ELSE a.status END AS tenant_status, \
    json_object('id', c.id, 'agency_id', c.agency_id, 'name', c.name, 'slug', c.slug, 'business_type', \
    c.business_type, 'kind', c.kind, 'email', c.email, 'phone', c.phone, 'website', c.website, 'status', c.status, \
    'plan', c.plan, 'feature_flags', c.feature_flags, 'test_mode', c.test_mode, 'publishable_key', c.publishable_key, \
    'time_zone', c.time_zone, 'require_mfa', c.require_mfa, 'limits', c.limits, \
    'deleted_at', c.deleted_at, 'purge_after', c.purge_after, 'shard', c.shard, 'created_at', c.created_at, 'updated_at', c.updated_at, \
    'template_id', c.template_id, 'template_version', c.template_version, 'integrations', c.integrations, 'agency_status', a.status) \
    AS client FROM client_users m \
    JOIN users u ON u.id = m.user_id JOIN clients c ON c.id = m.client_id JOIN agencies a ON a.id = c.agency_id \
    WHERE m.client_id = ?2 AND m.user_id = ?1";
pub const PRINCIPAL_PLATFORM: &str =
    "SELECT email, status AS user_status, platform_role, token_version FROM users WHERE id = ?1";

/// All memberships of one user: their own, so filtered by user rather than tenant.
pub const AGENCY_MEMBERSHIPS_OF_USER: &str = "SELECT m.agency_id, m.role, m.permissions, a.name, a.slug, a.status \
    FROM agency_memberships m JOIN agencies a ON a.id = m.agency_id WHERE m.user_id = ?1 ORDER BY m.created_at, m.agency_id";
pub const CLIENT_MEMBERSHIPS_OF_USER: &str = "SELECT m.client_id, m.role, m.permissions, c.agency_id, c.name, c.slug, \
    c.status FROM client_users m JOIN clients c ON c.id = m.client_id WHERE m.user_id = ?1 \
    ORDER BY m.created_at, m.client_id";

pub const UPSERT_AGENCY_MEMBERSHIP: &str = "INSERT INTO agency_memberships (user_id, agency_id, role, permissions, \
    created_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, agency_id) DO UPDATE SET role = ?3, permissions = ?4";
/// A new member takes a seat only while the client has one free (?6, its plan's seats); a member
/// already there just has their terms changed.
pub const UPSERT_CLIENT_MEMBERSHIP: &str =
    "INSERT INTO client_users (user_id, client_id, role, permissions, created_at) \
    SELECT ?1, ?2, ?3, ?4, ?5 WHERE (SELECT count(*) FROM client_users WHERE client_id = ?2) < ?6 \
      OR EXISTS (SELECT 1 FROM client_users WHERE client_id = ?2 AND user_id = ?1) \
    ON CONFLICT (user_id, client_id) DO UPDATE SET role = ?3, permissions = ?4";
pub const DELETE_AGENCY_MEMBERSHIP: &str = "DELETE FROM agency_memberships WHERE agency_id = ?2 AND user_id = ?1";
pub const DELETE_CLIENT_MEMBERSHIP: &str = "DELETE FROM client_users WHERE client_id = ?2 AND user_id = ?1";
pub const SELECT_AGENCY_MEMBERSHIP: &str =
    "SELECT role, permissions FROM agency_memberships WHERE agency_id = ?2 AND user_id = ?1";
pub const SELECT_CLIENT_MEMBERSHIP: &str =
    "SELECT role, permissions FROM client_users WHERE client_id = ?2 AND user_id = ?1";

/// Users visible in an agency: its own members and members of its clients.
pub const USERS_OF_AGENCY: &str = "SELECT DISTINCT u.id, u.email, u.name, u.status, u.created_at FROM users u \
    WHERE u.id > ?2 AND (u.id IN (SELECT user_id FROM agency_memberships WHERE agency_id = ?1) \
    OR u.id IN (SELECT cu.user_id FROM client_users cu JOIN clients c ON c.id = cu.client_id WHERE c.agency_id = ?1)) \
    ORDER BY u.id LIMIT ?3";
pub const USERS_OF_CLIENT: &str = "SELECT u.id, u.email, u.name, u.status, u.created_at FROM users u \
    JOIN client_users cu ON cu.user_id = u.id WHERE cu.client_id = ?1 AND u.id > ?2 ORDER BY u.id LIMIT ?3";
pub const ALL_USERS: &str = "SELECT id, email, name, status, created_at FROM users WHERE id > ?1 ORDER BY id LIMIT ?2";
/// Whether a user is visible to an agency (member of it or of one of its clients).
pub const USER_IN_AGENCY: &str = "SELECT 1 AS ok FROM users u WHERE u.id = ?2 AND \
    (EXISTS (SELECT 1 FROM agency_memberships WHERE agency_id = ?1 AND user_id = ?2) OR \
     EXISTS (SELECT 1 FROM client_users cu JOIN clients c ON c.id = cu.client_id WHERE c.agency_id = ?1 AND cu.user_id = ?2))";
pub const USER_IN_CLIENT: &str = "SELECT 1 AS ok FROM client_users WHERE client_id = ?1 AND user_id = ?2";
/// Whether a user is a member of the client or of its agency: who may own a deal or be linked
/// to a staff member. A control-plane read, bound into the shard's write that follows.
pub const USER_REACHES: &str = "SELECT 1 AS ok FROM client_users WHERE client_id = ?1 AND user_id = ?2 \
    UNION ALL SELECT 1 AS ok FROM agency_memberships am JOIN clients c ON c.agency_id = am.agency_id \
    WHERE c.id = ?1 AND am.user_id = ?2";

crate::platform::rows::row! {
    #[derive(Debug, Clone, Serialize)]
    pub struct Agency {
        pub id: String,
        pub name: String,
        pub slug: String,
        pub email: Option<String>,
        pub phone: Option<String>,
        pub status: String,
        pub plan: String,
        /// Members (of the agency and of its clients) must use MFA.
        pub require_mfa: i64 = 0,
        pub created_at: i64,
        pub updated_at: i64,
        /// The data shard holding the agency's own rows (`platform::router`); never shown, and
        /// required, like a client's.
        #[serde(skip_serializing)]
        pub shard: i64,
    }
}

crate::platform::rows::row! {
    #[derive(Debug, Clone)]
    pub struct ClientRow {
        pub id: String,
        pub agency_id: String,
        pub name: String,
        pub slug: String,
        pub business_type: Option<String>,
        pub kind: String,
        pub email: Option<String>,
        pub phone: Option<String>,
        pub website: Option<String>,
        pub status: String,
        pub plan: String,
        pub feature_flags: String,
        pub test_mode: i64,
        pub publishable_key: String,
        /// The IANA time zone working hours and availability are in.
        pub time_zone: String,
        /// Members must use MFA (the agency may require it too).
        pub require_mfa: i64 = 0,
        /// Per-metric overrides of the plan's limits, as JSON (`access::plans`).
        pub limits: String = no_overrides(),
        /// Set while the client is deleted and restorable; `purge_after` is when it goes for good.
        pub deleted_at: Option<i64>,
        /// The data shard holding the client's rows (`platform::router`). Required: a query that
        /// forgot it must fail to decode, not route the client to the first shard.
        pub shard: i64,
        pub purge_after: Option<i64>,
        /// The template the client was made from, and the version of it the client is on.
        pub template_id: Option<String>,
        pub template_version: Option<i64>,
        /// The integration providers the client may use, as a JSON array; `None`: all of them.
        pub integrations: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        /// The owning agency's status: a suspended agency suspends its clients.
        pub agency_status: String,
    }
}

fn no_overrides() -> String {
    "{}".into()
}

impl ClientRow {
    /// Usable: the client and its agency are both active.
    pub fn is_active(&self) -> bool {
        self.status == "active" && self.agency_status == "active"
    }

    /// The status callers act on: a deletion, then the agency's suspension, shows through.
    pub fn effective_status(&self) -> &str {
        if self.deleted_at.is_some() {
            "deleted"
        } else if self.agency_status == "active" {
            &self.status
        } else {
            &self.agency_status
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "agency_id": self.agency_id,
            "name": self.name,
            "slug": self.slug,
            "business_type": self.business_type,
            "kind": self.kind,
            "email": self.email,
            "phone": self.phone,
            "website": self.website,
            "status": self.status,
            "agency_status": self.agency_status,
            "effective_status": self.effective_status(),
            "plan": self.plan,
            "feature_flags": serde_json::from_str::<Value>(&self.feature_flags).unwrap_or(Value::Object(Default::default())),
            "test_mode": self.test_mode != 0,
            "publishable_key": self.publishable_key,
            "time_zone": self.time_zone,
            "require_mfa": self.require_mfa != 0,
            "limits": serde_json::from_str::<Value>(&self.limits).unwrap_or(Value::Object(Default::default())),
            "deleted_at": self.deleted_at,
            "restorable_until": self.purge_after,
            "template": self.template_id.as_ref().map(|id| serde_json::json!({"id": id, "version": self.template_version})),
            "integrations": self.integrations.as_deref().and_then(|i| serde_json::from_str::<Value>(i).ok()),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// The shard a new agency goes on: the one holding the fewest agencies (their clients follow
/// them).
pub async fn place_agency(db: &impl Database) -> ApiResult<i64> {
    let shards = db.shard_count();
    if shards <= 1 {
        return Ok(0);
    }
    let mut load = vec![0i64; shards];
    for r in db.query(SHARD_LOAD, &[]).await? {
        let (Some(s), Some(n)) = (r.get("shard").and_then(Value::as_i64), r.get("n").and_then(Value::as_i64)) else {
            continue;
        };
        if let Some(slot) = usize::try_from(s).ok().and_then(|s| load.get_mut(s)) {
            *slot = n;
        }
    }
    Ok(load.iter().enumerate().min_by_key(|(i, n)| (**n, *i)).map_or(0, |(i, _)| i as i64))
}

/// `USER_REACHES`, for an id that looks like a user's (any other reaches nobody).
pub async fn user_reaches_client(db: &impl Database, client_id: &str, user_id: &str) -> ApiResult<bool> {
    if !crate::platform::ids::looks_like_id(user_id, "usr") {
        return Ok(false);
    }
    Ok(!db.query(USER_REACHES, &[client_id.into(), user_id.into()]).await?.is_empty())
}

pub async fn agency(db: &impl Database, id: &str) -> ApiResult<Option<Agency>> {
    Ok(db.query_first(SELECT_AGENCY, &[id.into()]).await?)
}

pub const AGENCY_VERIFIED: &str = "SELECT signup_verified AS n FROM agencies WHERE id = ?1";

/// Whether an agency's address is verified, so that it may add clients.
pub async fn agency_verified(db: &impl Database, id: &str) -> ApiResult<bool> {
    let rows = db.query(AGENCY_VERIFIED, &[id.into()]).await?;
    Ok(rows.first().and_then(|r| crate::platform::ports::col_i64(r, "n")) == Some(1))
}

pub async fn client(db: &impl Database, id: &str) -> ApiResult<Option<ClientRow>> {
    Ok(db.query_first(SELECT_CLIENT, &[id.into()]).await?)
}

pub async fn agency_by_slug(db: &impl Database, slug: &str) -> ApiResult<Option<Agency>> {
    Ok(db.query_first(SELECT_AGENCY_BY_SLUG, &[slug.into()]).await?)
}

pub async fn client_by_slug(db: &impl Database, slug: &str) -> ApiResult<Option<ClientRow>> {
    Ok(db.query_first(SELECT_CLIENT_BY_SLUG, &[slug.into()]).await?)
}

pub async fn clients_page(
    db: &impl Database,
    agency: Option<&str>,
    after: &str,
    limit: i64,
) -> ApiResult<Vec<ClientRow>> {
    let rows = match agency {
        Some(a) => db.query(LIST_CLIENTS_OF_AGENCY, &[a.into(), after.into(), Param::Int(limit)]).await?,
        None => db.query(LIST_ALL_CLIENTS, &[after.into(), Param::Int(limit)]).await?,
    };
    Ok(decode_all(rows)?)
}

crate::platform::rows::row! {
    #[derive(Debug)]
    struct MembershipRow {
        email: String,
        user_status: String,
        token_version: i64,
        role: String,
        permissions: Option<String>,
        agency_id: Option<String>,
        tenant_status: Option<String>,
        client: Option<String>,
    }
}

/// Loads the caller's authority for the tenant a token names, fresh from the database, so a
/// revoked membership or disabled user stops working at once. None means no access.
pub async fn load_principal(db: &(impl Database + Log), user_id: &str, tenant: &str) -> ApiResult<Option<Principal>> {
    if tenant == "platform" {
        let Some(row) = db.query(PRINCIPAL_PLATFORM, &[user_id.into()]).await?.into_iter().next() else {
            return Ok(None);
        };
        let active = crate::platform::ports::col_str(&row, "user_status").as_deref() == Some("active");
        let admin = crate::platform::ports::col_str(&row, "platform_role").as_deref() == Some("platform_admin");
        if !(active && admin) {
            return Ok(None);
        }
        return Ok(Some(Principal {
            user_id: user_id.into(),
            email: crate::platform::ports::col_str(&row, "email").unwrap_or_default(),
            role: Role::PlatformAdmin,
            scope: Scope::Platform,
            permissions: Permission::ALL.to_vec(),
            staff: true,
            home_client: None,
            api_key: false,
            token_version: crate::platform::ports::col_i64(&row, "token_version").unwrap_or(0),
        }));
    }
    let (sql, is_client) = if crate::platform::ids::looks_like_id(tenant, "cli") {
        (PRINCIPAL_CLIENT, true)
    } else if crate::platform::ids::looks_like_id(tenant, "agy") {
        (PRINCIPAL_AGENCY, false)
    } else {
        return Ok(None);
    };
    let Some(m) = db.query_first::<MembershipRow>(sql, &[user_id.into(), tenant.into()]).await? else {
        return Ok(None);
    };
    if m.user_status != "active" || m.tenant_status.as_deref() != Some("active") {
        return Ok(None);
    }
    let Some(role) = Role::parse(&m.role) else {
        return Ok(None);
    };
    let scope = if is_client {
        Scope::Client { client_id: tenant.into(), agency_id: m.agency_id.unwrap_or_default() }
    } else {
        Scope::Agency { agency_id: tenant.into() }
    };
    let permissions = effective_permissions(role, m.permissions.as_deref()).unwrap_or_else(|e| {
        db.log("error", &format!("membership of {user_id} in {tenant}: {e}; it grants nothing until repaired"));
        Vec::new()
    });
    let home_client = m
        .client
        .as_deref()
        .and_then(|j| crate::platform::body::parse::<Row>(j.as_bytes(), "client").ok())
        .and_then(|row| ClientRow::from_row(row).ok())
        .map(Box::new);
    Ok(Some(Principal {
        user_id: user_id.into(),
        email: m.email,
        role,
        scope,
        permissions,
        staff: false,
        home_client,
        api_key: false,
        token_version: m.token_version,
    }))
}

/// The authority of someone signed in on a client's portal: their own membership in that client,
/// or else their agency's or the platform's, confined to this one client. None: no access.
pub async fn load_portal_principal(
    db: &(impl Database + Log),
    user_id: &str,
    client: &ClientRow,
) -> ApiResult<Option<Principal>> {
    for tenant in [client.id.as_str(), client.agency_id.as_str(), "platform"] {
        if let Some(p) = load_principal(db, user_id, tenant).await? {
            let mut confined = p.confined_to(&client.id, &client.agency_id);
            confined.home_client = Some(Box::new(client.clone()));
            return Ok(Some(confined));
        }
    }
    Ok(None)
}

/// The authority of someone signed in on an agency's portal, acting in `tenant`: the agency
/// itself or one of its clients. Their own membership there, or else their agency's or the
/// platform's, confined to that tenant. None: no access from this portal.
pub async fn load_agency_portal_principal(
    db: &(impl Database + Log),
    user_id: &str,
    agency: &Agency,
    tenant: &str,
) -> ApiResult<Option<Principal>> {
    if tenant == agency.id {
        for t in [agency.id.as_str(), "platform"] {
            if let Some(p) = load_principal(db, user_id, t).await? {
                return Ok(Some(p.confined_to_agency(&agency.id)));
            }
        }
        return Ok(None);
    }
    let Some(c) = client(db, tenant).await?.filter(|c| c.agency_id == agency.id) else {
        return Ok(None);
    };
    load_portal_principal(db, user_id, &c).await
}

crate::platform::rows::row! {
    #[derive(Debug, Clone, Serialize)]
    pub struct UserRecord {
        pub id: String,
        pub email: String,
        pub name: String,
        pub password_hash: String,
        pub platform_role: Option<String>,
        pub status: String,
    }
}

pub async fn user_by_email(db: &impl Database, email: &str) -> ApiResult<Option<UserRecord>> {
    Ok(db.query_first(SELECT_USER_BY_EMAIL, &[email.into()]).await?)
}

/// Every tenant a user may act in, in the order the default is chosen: platform, agencies, clients.
pub async fn contexts_of(db: &impl Database, user_id: &str, platform_admin: bool) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    if platform_admin {
        out.push(serde_json::json!({"tenant": "platform", "kind": "platform", "role": "platform_admin"}));
    }
    for row in db.query(AGENCY_MEMBERSHIPS_OF_USER, &[user_id.into()]).await? {
        out.push(serde_json::json!({
            "tenant": row.get("agency_id"), "kind": "agency", "role": row.get("role"),
            "name": row.get("name"), "slug": row.get("slug"), "status": row.get("status"),
        }));
    }
    for row in db.query(CLIENT_MEMBERSHIPS_OF_USER, &[user_id.into()]).await? {
        out.push(serde_json::json!({
            "tenant": row.get("client_id"), "kind": "client", "role": row.get("role"),
            "agency_id": row.get("agency_id"), "name": row.get("name"), "slug": row.get("slug"),
            "status": row.get("status"),
        }));
    }
    Ok(out)
}

/// A slug: 2-48 of [a-z0-9-], not starting or ending with `-`. Slugs become hostnames.
pub fn parse_slug(s: &str) -> ApiResult<String> {
    let ok = (2..=48).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if !ok {
        return Err(ApiError::invalid("invalid_slug", "slug must be 2-48 characters of a-z, 0-9 and single hyphens"));
    }
    if RESERVED_SLUGS.contains(&s) {
        return Err(ApiError::invalid("reserved_slug", "this slug is reserved"));
    }
    Ok(s.to_string())
}

const RESERVED_SLUGS: &[&str] = &["www", "api", "admin", "app", "portal", "widget", "static", "assets", "mail"];
