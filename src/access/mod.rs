//! Who may do what, and the proof that they may. Roles and permissions (`roles`), the tenant and
//! membership store (`store`), the audit log (`audit`) and the event outbox (`events`) and outgoing mail (`mail`) live here,
//! above the platform and below every feature.
//!
//! A feature acts on a tenant only through a scope: `client` and `agency` load the tenant, check
//! the caller reaches it (404 first, so a foreign id never leaks) and then holds the permission
//! (403), audit staff access whatever the method, and only then hand out a `ClientScope` or an
//! `AgencyScope`. Tenant-scoped store functions take the scope, not a bare id, so a query can't
//! be pointed at a tenant nobody checked.

pub mod audit;
pub mod events;
pub mod flags;
pub mod mail;
pub mod plans;
pub mod relay;
pub mod roles;
pub mod store;

use crate::platform::error::{ApiError, ApiResult};
use crate::platform::http::Request;
use crate::platform::ids::looks_like_id;
use crate::platform::ports::Platform;
use crate::platform::Ctx;
use roles::{Permission, Principal};
use store::{Agency, ClientRow};

/// Which site a Host names. Anything else is a 404 with no default tenant.
#[derive(Debug, Clone)]
pub enum Site {
    Api,
    /// A client's portal, and the Host it was reached on (`host[:port]`, normalised), to which
    /// the portal's tokens are bound.
    ClientPortal {
        client: Box<ClientRow>,
        host: String,
    },
    /// An agency's portal (`{agency-slug}.{PORTAL_BASE_DOMAIN}` or a verified agency domain),
    /// and its host, to which its tokens are bound. It serves the agency and its clients only.
    AgencyPortal {
        agency: Box<Agency>,
        host: String,
    },
}

impl Site {
    /// The host a portal's tokens are bound to; none on the API host.
    pub fn portal_host(&self) -> Option<&str> {
        match self {
            Site::Api => None,
            Site::ClientPortal { host, .. } | Site::AgencyPortal { host, .. } => Some(host),
        }
    }
}

/// Proof that this request may act on one client. Only `access` makes one: after a caller's
/// reach and permission are checked, or (`ClientScope::by_publishable_key`) after the widget
/// gate has loaded the client by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientScope {
    id: String,
    agency_id: String,
}

impl ClientScope {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn agency_id(&self) -> &str {
        &self.agency_id
    }

    /// The widget's scope: the publishable key is the credential, and the gate has loaded the
    /// client it names. Only the gate calls this (the layout guard test holds it to that).
    pub fn by_publishable_key(client_id: &str, agency_id: &str) -> Self {
        Self { id: client_id.to_string(), agency_id: agency_id.to_string() }
    }

    fn of(c: &ClientRow) -> Self {
        Self { id: c.id.clone(), agency_id: c.agency_id.clone() }
    }
}

/// Proof that this request may act on one agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyScope {
    id: String,
}

impl AgencyScope {
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// 403 unless the caller holds `perm`.
pub fn require_permission(who: &Principal, perm: Permission) -> ApiResult<()> {
    if who.can(perm) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("requires the {} permission", perm.as_str())))
    }
}

/// A client the caller reaches and holds `perm` on: 404 for a foreign or unknown id, then 403.
pub async fn client<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
    perm: Permission,
) -> ApiResult<(ClientScope, ClientRow)> {
    let reached = reach_client(ctx, req, who, id).await?;
    require_permission(who, perm)?;
    Ok(reached)
}

/// A client the caller reaches, or 404, for routes that decide the permission themselves (a
/// file's area, a grant's terms). Staff access is audited, whatever the method.
pub async fn reach_client<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
) -> ApiResult<(ClientScope, ClientRow)> {
    if !looks_like_id(id, "cli") {
        return Err(ApiError::NotFound);
    }
    let c = match who.home_client.as_deref() {
        Some(home) if home.id == id => home.clone(),
        _ => store::client(ctx.p, id).await?.ok_or(ApiError::NotFound)?,
    };
    if !who.reaches_client(&c.id, &c.agency_id) {
        return Err(ApiError::NotFound);
    }
    ctx.note_tenant(&c.id);
    ctx.p.learn_home(&c.id, c.shard);
    plans::api_request(ctx, who, &c).await?;
    audit::staff_access(ctx, req, who, &c.id, "client").await?;
    Ok((ClientScope::of(&c), c))
}

/// An agency the caller reaches and holds `perm` on: 404, then 403, auditing staff access.
pub async fn agency<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
    perm: Permission,
) -> ApiResult<(AgencyScope, Agency)> {
    let reached = reach_agency(ctx, req, who, id).await?;
    require_permission(who, perm)?;
    Ok(reached)
}

/// An agency the caller reaches, or 404, auditing staff access like `reach_client`.
pub async fn reach_agency<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
) -> ApiResult<(AgencyScope, Agency)> {
    if !looks_like_id(id, "agy") || !who.reaches_agency(id) {
        return Err(ApiError::NotFound);
    }
    let a = store::agency(ctx.p, id).await?.ok_or(ApiError::NotFound)?;
    ctx.note_tenant(&a.id);
    ctx.p.learn_home(&a.id, a.shard);
    audit::staff_access(ctx, req, who, &a.id, "agency").await?;
    Ok((AgencyScope { id: a.id.clone() }, a))
}

/// Which kind of tenant a route that serves both names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantKind {
    Client,
    Agency,
}

/// The id of a client or agency the caller reaches (404) and holds `perm` on (403), for routes
/// that serve both kinds (`/api/{clients|agencies}/{id}/…`).
pub async fn tenant<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    kind: TenantKind,
    id: &str,
    perm: Permission,
) -> ApiResult<String> {
    Ok(match kind {
        TenantKind::Client => client(ctx, req, who, id, perm).await?.0.id().to_string(),
        TenantKind::Agency => agency(ctx, req, who, id, perm).await?.0.id().to_string(),
    })
}
