//! The HTTP API: resolves each request to a site and a caller, then routes it. Everything here
//! is pure: storage, time and the outside world arrive through `ports`.

mod auth;
mod tenants;
mod users;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::audit::{self, Actor, Event};
use crate::auth::jwt::TokenKeys;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::http::{Method, Request, Response};
use crate::ports::{Platform, Stmt};
use crate::tenancy::{Permission, Principal};
use crate::tenants::{Agency, ClientRow};

/// Per-isolate state that outlives a request: caches that keep D1 off the hot path.
#[derive(Default)]
pub struct State {
    pub gate: crate::gate::GateCache,
}

pub struct App<'a, P: Platform> {
    pub p: &'a P,
    pub cfg: &'a Config,
    pub state: &'a State,
}

/// Which site a Host names. Anything else is a 404 with no default tenant.
#[derive(Debug, Clone)]
pub enum Site {
    Api,
    ClientPortal(Box<ClientRow>),
    AgencyPortal(Box<Agency>),
}

pub const MAX_JSON_BODY: usize = 64 * 1024;
const MAX_HOST_LEN: usize = 260;

impl<'a, P: Platform> App<'a, P> {
    pub fn new(p: &'a P, cfg: &'a Config, state: &'a State) -> Self {
        Self { p, cfg, state }
    }

    /// The one entry point. Never panics on client input; every error becomes the JSON shape.
    pub async fn handle(&self, req: Request) -> Response {
        let is_api = req.path.starts_with("/api/");
        let mut resp = match self.route(&req).await {
            Ok(r) => r,
            Err(e) => {
                if e.is_server_fault() {
                    self.p.log("error", &format!("{} {} -> {}: {e}", req_method(&req), req.path, e.status()));
                }
                if !is_api && matches!(e, ApiError::NotFound) {
                    not_found_page()
                } else if !is_api && matches!(e, ApiError::Forbidden("tenant_suspended", _)) {
                    suspended_page()
                } else {
                    e.into_response()
                }
            }
        };
        resp.set_header("x-content-type-options", "nosniff");
        if resp.header("cache-control").is_none() {
            resp.set_header("cache-control", "no-store");
        }
        resp
    }

    /// Every route but the widget gate is boxed: an async fn's future is as large as its largest
    /// arm, and the gate, the hot path, should not carry the API's state machine around.
    async fn route(&self, req: &Request) -> ApiResult<Response> {
        let site = self.resolve_site(req).await?;
        let segs = segments(&req.path)?;
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        let m = req.method;

        match (m, s.as_slice()) {
            (Method::Get | Method::Head, ["assets", id]) => {
                return Box::pin(crate::files::public_asset(self, req, id)).await
            }
            (Method::Get | Method::Head, ["api", "files", "signed", id]) => {
                return Box::pin(crate::files::signed_download(self, req, id)).await
            }
            _ => {}
        }
        if let Site::Api = site {
            match (m, s.as_slice()) {
                (Method::Get | Method::Head, ["healthz"]) => return Box::pin(self.healthz()).await,
                (Method::Get | Method::Head, ["widget.js"]) => return Ok(crate::widget::script()),
                (_, ["api", "widget", "v1", rest @ ..]) => return crate::gate::handle(self, req, rest).await,
                _ => {}
            }
        }
        match s.as_slice() {
            ["api", "auth", "login"] => {
                require(m, Method::Post)?;
                Box::pin(auth::login(self, req, &site)).await
            }
            ["api", "auth", "switch"] => {
                require(m, Method::Post)?;
                Box::pin(auth::switch(self, req, &site)).await
            }
            ["api", "invitations", "accept"] => {
                require(m, Method::Post)?;
                Box::pin(users::accept(self, req)).await
            }
            ["api", "me"] => {
                require(m, Method::Get)?;
                Box::pin(auth::me(self, req, &site)).await
            }
            ["api", rest @ ..] => Box::pin(self.authenticated(req, &site, rest)).await,
            _ => match &site {
                Site::Api => Err(ApiError::NotFound),
                Site::ClientPortal(c) => Box::pin(crate::portal::page(self, req, c, &s)).await,
                Site::AgencyPortal(_) => Err(ApiError::NotFound),
            },
        }
    }

    /// `/api/...` behind a bearer token. A portal serves only its own client's resources.
    async fn authenticated(&self, req: &Request, site: &Site, rest: &[&str]) -> ApiResult<Response> {
        let who = self.authenticate(req, site).await?;
        if let Site::ClientPortal(c) = site {
            match rest {
                ["clients", id, ..] if *id == c.id => {}
                _ => return Err(ApiError::NotFound),
            }
        }
        if let Site::AgencyPortal(_) = site {
            return Err(ApiError::NotFound);
        }
        self.route_api(req, &who, rest).await
    }

    async fn route_api(&self, req: &Request, who: &Principal, rest: &[&str]) -> ApiResult<Response> {
        use Method::*;
        let m = req.method;
        match rest {
            ["agencies"] => match m {
                Get => tenants::list_agencies(self, req, who).await,
                Post => tenants::create_agency(self, req, who).await,
                _ => Err(ApiError::MethodNotAllowed),
            },
            ["agencies", id] => match m {
                Get => tenants::get_agency(self, req, who, id).await,
                Put => tenants::update_agency(self, req, who, id).await,
                _ => Err(ApiError::MethodNotAllowed),
            },
            ["clients"] => match m {
                Get => tenants::list_clients(self, req, who).await,
                Post => tenants::create_client(self, req, who).await,
                _ => Err(ApiError::MethodNotAllowed),
            },
            ["clients", id] => match m {
                Get => tenants::get_client(self, req, who, id).await,
                Put => tenants::update_client(self, req, who, id).await,
                _ => Err(ApiError::MethodNotAllowed),
            },
            ["clients", id, "audit"] => {
                require(m, Get)?;
                tenants::client_audit(self, req, who, id).await
            }
            ["clients", id, "domains", tail @ ..] => crate::domains::api::route(self, req, who, id, tail).await,
            ["clients", id, "files", tail @ ..] => crate::files::route(self, req, who, id, tail).await,
            ["clients", id, "branding", tail @ ..] => crate::branding::client_route(self, req, who, id, tail).await,
            ["agencies", id, "branding", tail @ ..] => crate::branding::agency_route(self, req, who, id, tail).await,
            ["clients", id, "settings"] => crate::settings::route(self, req, who, id).await,
            ["clients", id, "contacts", tail @ ..] => crate::contacts::route(self, req, who, id, tail).await,
            ["users"] => match m {
                Get => users::list(self, req, who).await,
                Post => users::create(self, req, who).await,
                _ => Err(ApiError::MethodNotAllowed),
            },
            ["users", id, "grant-access"] => {
                require(m, Post)?;
                users::grant(self, req, who, id).await
            }
            ["users", id, "revoke-access"] => {
                require(m, Delete)?;
                users::revoke(self, req, who, id).await
            }
            ["admin", "tenants"] => {
                require(m, Get)?;
                tenants::admin_tenants(self, req, who).await
            }
            ["admin", "settings", "rotate"] => {
                require(m, Post)?;
                crate::settings::rotate_endpoint(self, req, who).await
            }
            ["admin", "tenants", id] => {
                require(m, Get)?;
                tenants::admin_tenant(self, req, who, id).await
            }
            _ => Err(ApiError::NotFound),
        }
    }

    async fn healthz(&self) -> ApiResult<Response> {
        let rows = self.p.query(crate::SCHEMA_VERSION_SQL, &[]).await?;
        let schema = rows.first().and_then(|r| crate::ports::col_i64(r, "version"));
        Ok(Response::json(
            200,
            &serde_json::json!({"status": "ok", "version": self.cfg.version, "schema_version": schema}),
        ))
    }

    /// Maps the Host header to a site. X-Forwarded-Host and friends are never consulted.
    pub async fn resolve_site(&self, req: &Request) -> ApiResult<Site> {
        if req.header_count("host") != 1 {
            return Err(ApiError::bad_request("invalid_host", "exactly one Host header is required"));
        }
        let raw = req.header("host").unwrap_or_default();
        let (host, port) = parse_host(raw)?;
        let with_port = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        if self.cfg.api_hosts.iter().any(|h| *h == host || *h == with_port) {
            return Ok(Site::Api);
        }
        let base = &self.cfg.portal_base_domain;
        let client = if let Some(slug) = host.strip_suffix(base.as_str()).and_then(|s| s.strip_suffix('.')) {
            if slug.contains('.') {
                None
            } else {
                crate::tenants::client_by_slug(self.p, slug).await?
            }
        } else {
            crate::domains::portal_owner(self.p, &host).await?.map(|crate::domains::PortalOwner::Client(c)| c)
        };
        let c = client.ok_or(ApiError::NotFound)?;
        // A suspended client, or a client of a suspended agency, serves no portal at all.
        if !c.is_active() {
            return Err(ApiError::Forbidden("tenant_suspended", "this portal is unavailable".into()));
        }
        Ok(Site::ClientPortal(Box::new(c)))
    }

    pub fn token_keys(&self) -> TokenKeys {
        let c = self.cfg;
        TokenKeys::new(&c.jwt_key_id, &c.jwt_secret, &c.retired_jwt_secrets, &c.jwt_issuer, &c.jwt_audience)
    }

    /// Verifies the bearer token and loads the caller's current authority. When the Host names a
    /// tenant, the token's tenant must agree with it. A token issued on a portal carries that
    /// portal's host and is accepted there only, confined to the portal's client.
    pub async fn authenticate(&self, req: &Request, site: &Site) -> ApiResult<Principal> {
        if req.header_count("authorization") > 1 {
            return Err(ApiError::unauthorized("exactly one Authorization header is allowed"));
        }
        let token = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::Unauthorized("missing_token", "a bearer token is required".into()))?;
        let claims = self
            .token_keys()
            .verify(token.trim(), self.p.now_secs())
            .map_err(|e| ApiError::Unauthorized("invalid_token", e.to_string()))?;
        let mismatch = || ApiError::Forbidden("tenant_mismatch", "this token belongs to another tenant".into());
        let gone = || ApiError::Unauthorized("invalid_token", "this session no longer has access".into());
        let who = match (&claims.site, site) {
            (Some(bound), Site::ClientPortal(c)) => {
                if site_host(req).as_deref() != Some(bound.as_str()) || claims.tenant != c.id {
                    return Err(mismatch());
                }
                crate::tenants::load_portal_principal(self.p, &claims.sub, c).await?.ok_or_else(gone)?
            }
            (Some(_), _) => return Err(mismatch()),
            (None, _) => crate::tenants::load_principal(self.p, &claims.sub, &claims.tenant).await?.ok_or_else(gone)?,
        };
        if let Site::ClientPortal(c) = site {
            if !who.reaches_client(&c.id, &c.agency_id) {
                return Err(mismatch());
            }
        }
        Ok(who)
    }

    pub fn actor(&self, req: &Request, who: Option<&Principal>) -> Actor {
        Actor {
            user_id: who.map(|w| w.user_id.clone()),
            role: who.map(|w| w.role.as_str().to_string()),
            ip: req.client_ip().unwrap_or("unknown").to_string(),
            user_agent: req.user_agent().to_string(),
        }
    }

    pub fn audit(&self, req: &Request, who: Option<&Principal>, event: Event<'_>) -> ApiResult<Stmt> {
        audit::stmt(&self.actor(req, who), event, self.p.now_ms())
    }

    /// The audit row for the update or delete just before it in a batch; written only if that
    /// statement changed a row.
    pub fn audit_change(&self, req: &Request, who: &Principal, event: Event<'_>) -> ApiResult<Stmt> {
        audit::after_change(&self.actor(req, Some(who)), event, self.p.now_ms())
    }

    /// Loads a client the caller may reach, or 404: existence of foreign tenants never leaks.
    /// Staff access to a tenant (see `Principal::staff`) is audited, whatever the method.
    pub async fn reach_client(&self, req: &Request, who: &Principal, id: &str) -> ApiResult<ClientRow> {
        if !crate::ids::looks_like_id(id, "cli") {
            return Err(ApiError::NotFound);
        }
        let c = crate::tenants::client(self.p, id).await?.ok_or(ApiError::NotFound)?;
        if !who.reaches_client(&c.id, &c.agency_id) {
            return Err(ApiError::NotFound);
        }
        self.staff_access(req, who, &c.id, "client").await?;
        Ok(c)
    }

    /// `reach_client`, then requires `perm` (403).
    pub async fn client_for(&self, req: &Request, who: &Principal, id: &str, perm: Permission) -> ApiResult<ClientRow> {
        let c = self.reach_client(req, who, id).await?;
        require_permission(who, perm)?;
        Ok(c)
    }

    /// Loads an agency the caller may reach, or 404, auditing staff access like `reach_client`.
    pub async fn agency_for(&self, req: &Request, who: &Principal, id: &str) -> ApiResult<Agency> {
        if !crate::ids::looks_like_id(id, "agy") || !who.reaches_agency(id) {
            return Err(ApiError::NotFound);
        }
        let a = crate::tenants::agency(self.p, id).await?.ok_or(ApiError::NotFound)?;
        self.staff_access(req, who, &a.id, "agency").await?;
        Ok(a)
    }

    /// Writes a `platform.access` row when staff touch a tenant they are not a member of. Listings
    /// that span tenants are filed under `platform`.
    pub async fn staff_access(&self, req: &Request, who: &Principal, tenant_id: &str, kind: &str) -> ApiResult<()> {
        if !who.staff {
            return Ok(());
        }
        let stmt = self.audit(
            req,
            Some(who),
            Event {
                tenant_id,
                action: "platform.access",
                target_type: kind,
                target_id: Some(tenant_id).filter(|t| *t != "platform"),
                metadata: serde_json::json!({"method": req_method(req), "path": req.path, "scope": who.scope}),
            },
        )?;
        self.p.execute(stmt.sql, &stmt.params).await?;
        Ok(())
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

/// The request's Host, normalised to `host[:port]`, as portal tokens are bound to it.
pub fn site_host(req: &Request) -> Option<String> {
    let (host, port) = parse_host(req.header("host")?).ok()?;
    Some(match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

fn req_method(req: &Request) -> &'static str {
    match req.method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Other => "OTHER",
    }
}

pub fn require(m: Method, want: Method) -> ApiResult<()> {
    if m == want {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

/// Splits and percent-decodes the path. Encoded slashes and dot segments are refused, so a
/// segment is always one opaque name.
fn segments(path: &str) -> ApiResult<Vec<String>> {
    let bad = || ApiError::bad_request("invalid_path", "the request path is malformed");
    if path.len() > 2048 || !path.starts_with('/') {
        return Err(bad());
    }
    let mut out = Vec::new();
    for raw in path[1..].split('/') {
        if raw.is_empty() {
            continue;
        }
        let dec = url::form_urlencoded::parse(format!("s={}", raw.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if dec == "." || dec == ".." || dec.contains('/') || dec.contains('\\') || dec.contains('\0') {
            return Err(bad());
        }
        out.push(dec);
    }
    Ok(out)
}

/// A Host header: ASCII hostname (case folded) and optional port. Anything else is refused.
fn parse_host(raw: &str) -> ApiResult<(String, Option<u16>)> {
    let bad = || ApiError::bad_request("invalid_host", "the Host header is not a valid hostname");
    if raw.is_empty() || raw.len() > MAX_HOST_LEN || !raw.is_ascii() {
        return Err(bad());
    }
    let lower = raw.to_ascii_lowercase();
    let (host, port) = if let Some(rest) = lower.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        (format!("[{h}]"), after.strip_prefix(':'))
    } else {
        match lower.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (lower.clone(), None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
        None => None,
    };
    let host = host.strip_suffix('.').unwrap_or(&host).to_string();
    let valid = host.starts_with('[')
        || (!host.is_empty()
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));
    if !valid {
        return Err(bad());
    }
    Ok((host, port))
}

fn suspended_page() -> Response {
    Response::text(
        403,
        "text/html; charset=utf-8",
        "<!doctype html><html><head><meta charset=utf-8><title>Unavailable</title></head>\
         <body><h1>Unavailable</h1><p>This portal is currently unavailable.</p></body></html>",
    )
}

fn not_found_page() -> Response {
    Response::text(
        404,
        "text/html; charset=utf-8",
        "<!doctype html><html><head><meta charset=utf-8><title>Not found</title></head>\
         <body><h1>Not found</h1><p>There is nothing at this address.</p></body></html>",
    )
}

/// Parses a JSON body into `T`. Malformed JSON is 400; unknown fields, wrong types and the
/// fields a caller may never set (`forbidden`) are 422.
pub fn json_body<T: DeserializeOwned>(req: &Request, forbidden: &[&str]) -> ApiResult<T> {
    if req.body.len() > MAX_JSON_BODY {
        return Err(ApiError::TooLarge(format!("JSON bodies are limited to {MAX_JSON_BODY} bytes")));
    }
    let ct = req.header("content-type").unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(ApiError::UnsupportedMediaType("send the body as application/json".into()));
    }
    let value: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("body is not valid JSON: {e}")))?;
    let obj = value.as_object().ok_or_else(|| ApiError::bad_request("invalid_json", "body must be a JSON object"))?;
    if let Some(f) = forbidden.iter().find(|f| obj.contains_key(**f)) {
        return Err(ApiError::invalid("forbidden_field", format!("`{f}` cannot be set through this endpoint")));
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid("invalid_field", e.to_string()))
}

/// `?cursor=` and `?limit=` for lists ordered by id.
pub fn page_params(req: &Request) -> ApiResult<(String, i64)> {
    let cursor = req.query_param("cursor").unwrap_or_default();
    if cursor.len() > 128 {
        return Err(ApiError::bad_request("invalid_cursor", "cursor is malformed"));
    }
    let limit = match req.query_param("limit") {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::bad_request("invalid_limit", "limit must be 1-100"))?,
    };
    Ok((cursor, limit))
}

/// A page of items and the cursor for the next one, if the page was full.
pub fn page_response(items: Vec<Value>, limit: i64, cursor_of: impl Fn(&Value) -> Option<String>) -> Response {
    let next = if items.len() as i64 == limit { items.last().and_then(cursor_of) } else { None };
    Response::json(200, &serde_json::json!({"items": items, "next_cursor": next}))
}

/// A bounded free-text field.
pub fn text_field(name: &'static str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(|c| c.is_control()) {
        return Err(ApiError::Invalid("invalid_field", format!("`{name}` must be 1-{max} printable characters")));
    }
    Ok(v.to_string())
}

pub fn email_field(value: &str) -> ApiResult<String> {
    let v = value.trim().to_lowercase();
    let ok = v.len() <= 254
        && v.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains("..")
        })
        && v.matches('@').count() == 1
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(ApiError::invalid("invalid_email", "`email` is not a valid address"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_or_are_refused() {
        assert_eq!(parse_host("Acme.LOCALHOST:8787").unwrap(), ("acme.localhost".into(), Some(8787)));
        assert_eq!(parse_host("example.com.").unwrap(), ("example.com".into(), None));
        for bad in ["", "exa mple.com", "ex\u{e4}mple.com", "a..b", "host:99999", "host:", "a/b", &"a".repeat(300)] {
            assert!(parse_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_with_traversal_or_encoded_slashes_are_refused() {
        assert_eq!(segments("/api/clients/cli_1").unwrap(), vec!["api", "clients", "cli_1"]);
        for bad in ["/api/../admin", "/api/%2e%2e/x", "/api/a%2fb", "/api/a%5cb", "/api/%00"] {
            assert!(segments(bad).is_err(), "{bad}");
        }
    }
}
