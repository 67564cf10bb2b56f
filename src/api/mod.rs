//! The top of the core: resolves each request to a site, authenticates the caller, and routes it
//! through one table to the feature that owns it. Nothing imports `api` but the edge.
//!
//! Everything here is pure: storage, time and the outside world arrive through `ports`.

pub mod jobs;
#[cfg(not(target_arch = "wasm32"))]
pub mod openapi;
pub mod routes;

use crate::access::store::{agency_by_slug, client_by_slug};
use crate::access::{Site, TenantKind};
use crate::auth::keys::Kind;
use crate::crm::notes::Subject;
use crate::platform::config::Config;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{parse_host, req_method, segments};
use crate::platform::http::{Method, Request, Response};
use crate::platform::ports::Platform;
use crate::platform::{Ctx, FollowUp, Outbox};
use crate::tenants::audit_log::Log;
use crate::{auth, booking, branding, crm, domains, files, settings, templates, tenants, webhooks, widget};

/// Per-isolate state that outlives a request: caches that keep D1 off the hot path, and the daily
/// counters not yet written.
#[derive(Default)]
pub struct State {
    pub gate: widget::gate::GateCache,
    pub counters: crate::ops::Counters,
}

/// The request's id: Cloudflare's `cf-ray` when present and well-formed, else a new one.
fn request_id(req: &Request) -> String {
    match req.header("cf-ray") {
        Some(ray) if (1..=64).contains(&ray.len()) && ray.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            ray.to_string()
        }
        _ => crate::platform::ids::new_id("req").unwrap_or_else(|_| "req_unknown".into()),
    }
}

/// The error code of an error response's JSON body, if it has the error shape.
fn error_code_of(resp: &Response) -> Option<String> {
    let shape = serde_json::from_slice::<serde_json::Value>(&resp.body).ok()?;
    shape["error"]["code"].as_str().map(str::to_string)
}

pub struct App<'a, P: Platform> {
    pub p: &'a P,
    pub cfg: &'a Config,
    pub state: &'a State,
}

impl<'a, P: Platform> App<'a, P> {
    pub fn new(p: &'a P, cfg: &'a Config, state: &'a State) -> Self {
        Self { p, cfg, state }
    }

    /// The one entry point. Never panics on client input; every error becomes the JSON shape.
    pub async fn handle(&self, req: Request) -> Response {
        self.serve(req).await.0
    }

    /// `handle`, also saying what the request left for after its response (the webhook outbox,
    /// mail, the isolate's counters); unless that is nothing, the edge runs `follow_up` with it
    /// once the response is out. Every request leaves one log line and one metrics data point.
    pub async fn serve(&self, req: Request) -> (Response, FollowUp) {
        let started = self.p.now_ms();
        let queries_before = self.p.query_count();
        let request_id = request_id(&req);
        let is_api = req.path.starts_with("/api/");
        let ctx = Ctx::new(self.p, self.cfg);
        let routed = self.route(&ctx, &req).await;
        self.apply_changes(&ctx);
        let mut follow = ctx.follow_up();
        let note = ctx.note();
        let mut detail = note.fault.clone();
        let mut resp = match routed {
            Ok(r) => r,
            Err(e) => {
                if e.is_server_fault() {
                    detail = Some(e.to_string());
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
        resp.set_header("x-request-id", request_id.as_str());
        let error_code = match resp.error_code {
            Some(code) => Some(code.to_string()),
            None => (resp.status >= 400).then(|| error_code_of(&resp)).flatten(),
        };
        if resp.status >= 500 {
            // The body stays generic, but names the request so support can find its log line.
            let body = serde_json::json!({"error": {"code": error_code.as_deref().unwrap_or("internal_error"),
                "message": "Internal error", "request_id": request_id}});
            resp.body = serde_json::to_vec(&body).unwrap_or_default();
            resp.set_header("content-type", "application/json");
        }
        let now = self.p.now_ms();
        let record = crate::ops::RequestRecord {
            request_id: &request_id,
            method: req_method(&req),
            route: routes::template(req_method(&req), &req.path),
            status: resp.status,
            duration_ms: now - started,
            queries: self.p.query_count().saturating_sub(queries_before),
            tenant: note.tenant.as_deref().or(note.caller.as_deref()),
            gate: note.gate,
            error_code: error_code.as_deref(),
            error_detail: detail,
        };
        if self.cfg.log_level.allows(record.level()) {
            self.p.log(record.level(), &record.line(now));
        }
        self.p.data_point(&record.point());
        if let Some(tenant) = record.tenant {
            self.state.counters.count(tenant, now, &record);
        }
        follow.counters = self.state.counters.take_due(now, self.cfg.metrics_flush_ms);
        (resp, follow)
    }

    /// After a request that touched the outbox: fans its events out and queues what is due.
    pub async fn drain_outbox(&self, outbox: Outbox) -> ApiResult<webhooks::delivery::Drained> {
        self.drain_shards(outbox, &self.p.shards_written()).await
    }

    /// The drain after a request, on the shards it wrote (`FollowUp::shards`: the follow-up may run
    /// on another handle than the request's).
    async fn drain_shards(&self, outbox: Outbox, shards: &[usize]) -> ApiResult<webhooks::delivery::Drained> {
        webhooks::delivery::drain_after_request(&Ctx::new(self.p, self.cfg), outbox, shards).await
    }

    /// What a request left for after its response: the outbox drain, then mail. Each runs even if
    /// the other fails; the cron retries both.
    pub async fn follow_up(&self, f: FollowUp) -> Result<(), String> {
        let mut errors = Vec::new();
        if !f.counters.is_empty() {
            let rows = f.counters.len();
            if let Err(e) = crate::ops::write_counters(self.p, f.counters).await {
                errors.push(format!("daily counters ({rows} rows): {e}"));
            }
        }
        if f.outbox != Outbox::Untouched {
            if let Err(e) = self.drain_shards(f.outbox, &f.shards).await {
                errors.push(format!("webhook outbox: {e}"));
            }
        }
        if f.mail {
            if let Err(e) = crate::access::mail::send_due(&Ctx::new(self.p, self.cfg)).await {
                errors.push(format!("mail: {e}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// The queue consumer: one webhook attempt, or one step of a data export, per message.
    pub async fn deliver(&self, message: &str) -> webhooks::delivery::Ack {
        let ctx = Ctx::new(self.p, self.cfg);
        if message.starts_with("exp_") {
            return match files::export::step(&ctx, message).await {
                Ok(()) => webhooks::delivery::Ack::Done,
                Err(_) => webhooks::delivery::Ack::Retry,
            };
        }
        webhooks::delivery::deliver(&ctx, message).await
    }

    /// A scheduled run (`jobs`), with the same cache upkeep as a request; it also writes the
    /// daily counters this isolate holds.
    pub async fn scheduled(&self, cron: &str) -> ApiResult<serde_json::Value> {
        let ctx = Ctx::new(self.p, self.cfg);
        let counters = self.state.counters.take_all();
        let rows = counters.len();
        if rows > 0 {
            if let Err(e) = crate::ops::write_counters(self.p, counters).await {
                self.p.log("warn", &format!("daily counters ({rows} rows) not written: {e}"));
            }
        }
        let out = jobs::run_scheduled(&ctx, cron).await;
        self.apply_changes(&ctx);
        out
    }

    /// Tenants a handler changed lose their cached gates in this isolate; the others catch up
    /// within the cache's TTL.
    fn apply_changes(&self, ctx: &Ctx<'_, P>) {
        for tenant in ctx.take_changed() {
            self.state.gate.forget_tenant(&tenant);
        }
    }

    /// The route table. Every route but the widget gate is boxed: an async fn's future is as
    /// large as its largest arm, and the gate, the hot path, should not carry the API's state
    /// machine around.
    async fn route(&self, ctx: &Ctx<'_, P>, req: &Request) -> ApiResult<Response> {
        use Method::*;
        let site = resolve_site(ctx, req).await?;
        let segs = segments(&req.path)?;
        let path: Vec<&str> = segs.iter().map(String::as_str).collect();
        let m = req.method;

        // Any site, no session: the signature or the public area is the authority.
        match (m, path.as_slice()) {
            (Get | Head, ["assets", id]) => return Box::pin(files::public_asset(ctx, req, id)).await,
            (Get | Head, ["api", "files", "signed", id]) => {
                return Box::pin(files::signed_download(ctx, req, id)).await
            }
            (Get | Head, ["api", "exports", "signed", id]) => {
                return Box::pin(files::export::signed_download(ctx, req, id)).await
            }
            _ => {}
        }
        // The API host only, no session. The widget's own paths are decided behind its gate,
        // since every widget request, a preflight included, must pass the gate first.
        if let Site::Api = site {
            match (m, path.as_slice()) {
                (Get | Head, ["healthz"]) => return Box::pin(healthz(ctx)).await,
                (Get | Head, ["widget.js"]) => return Ok(widget::script()),
                (Get | Head, ["openapi.json"]) => return Ok(openapi()),
                (_, ["api", "widget", "v1", rest @ ..]) => {
                    return widget::gate::handle(ctx, &self.state.gate, req, rest).await
                }
                _ => {}
            }
        }
        // The console's shell, on the API host and on every portal.
        if let ["console", rest @ ..] = path.as_slice() {
            return Box::pin(branding::console::page(ctx, req, &site, rest)).await;
        }
        let rest = match path.as_slice() {
            ["api", rest @ ..] => rest,
            page => {
                return match &site {
                    Site::ClientPortal { client, .. } => Box::pin(branding::portal::page(ctx, req, client, page)).await,
                    // An agency's portal is its console; a mailed invitation leads to `/invite`.
                    Site::AgencyPortal { .. } => match page {
                        [] => Ok(Response::new(302).with_header("location", "/console")),
                        ["invite"] => Box::pin(branding::console::page(ctx, req, &site, &[])).await,
                        _ => Err(ApiError::NotFound),
                    },
                    Site::Api => Err(ApiError::NotFound),
                };
            }
        };
        // Sessions: these authenticate for themselves (login has no token yet).
        match rest {
            ["auth", "login"] => return only(m, Post, Box::pin(auth::session::login(ctx, req, &site))).await,
            ["auth", "switch"] => return only(m, Post, Box::pin(auth::session::switch(ctx, req, &site))).await,
            ["auth", "logout-everywhere"] => {
                return only(m, Post, Box::pin(auth::session::logout_everywhere(ctx, req, &site))).await
            }
            ["invitations", "accept"] => {
                return only(m, Post, Box::pin(per_ip(ctx, req, auth::users::accept(ctx, req, &site)))).await
            }
            ["me"] => return only(m, Get, Box::pin(auth::session::me(ctx, req, &site))).await,
            ["dev", "mailbox"] => return only(m, Get, Box::pin(crate::access::mail::dev_mailbox(ctx, req))).await,
            ["auth", "login", "mfa"] => return only(m, Post, Box::pin(auth::mfa::second_step(ctx, req, &site))).await,
            ["me", "mfa", step @ ("enrol" | "confirm")] => {
                let step = *step;
                let run = async {
                    let who = auth::authenticate(ctx, req, &site).await?;
                    match step {
                        "enrol" => auth::mfa::enrol(ctx, &who).await,
                        _ => auth::mfa::confirm(ctx, req, &who).await,
                    }
                };
                return only(m, Post, Box::pin(run)).await;
            }
            ["me", "mfa"] => {
                let run = async {
                    let who = auth::authenticate(ctx, req, &site).await?;
                    auth::mfa::disable(ctx, req, &who).await
                };
                return only(m, Delete, Box::pin(run)).await;
            }
            ["signup"] => return only(m, Post, Box::pin(per_ip(ctx, req, auth::signup::signup(ctx, req)))).await,
            ["signup", "verify"] => {
                return only(m, Post, Box::pin(per_ip(ctx, req, auth::signup::verify(ctx, req)))).await
            }
            ["auth", "password-reset"] => {
                return only(m, Post, Box::pin(per_ip(ctx, req, auth::reset::request(ctx, req)))).await
            }
            ["auth", "password-reset", "confirm"] => {
                return only(m, Post, Box::pin(per_ip(ctx, req, auth::reset::confirm(ctx, req)))).await
            }
            ["me", "password"] => {
                let change = async {
                    let who = auth::authenticate(ctx, req, &site).await?;
                    auth::reset::change(ctx, req, &who).await
                };
                return only(m, Post, Box::pin(change)).await;
            }
            _ => {}
        }
        Box::pin(self.authenticated(ctx, req, &site, rest)).await
    }

    /// `/api/...` behind a bearer token. A portal serves only its own client's resources.
    async fn authenticated(&self, ctx: &Ctx<'_, P>, req: &Request, site: &Site, rest: &[&str]) -> ApiResult<Response> {
        use Method::*;
        let who = &auth::authenticate(ctx, req, site).await?;
        if who.tenant_id() != "platform" {
            ctx.note_caller(who.tenant_id());
        }
        match site {
            Site::ClientPortal { client, .. } => match rest {
                ["clients", id, ..] if *id == client.id => {}
                _ => return Err(ApiError::NotFound),
            },
            // An agency's portal serves the agency and its clients (the principal is confined to
            // them), never the platform's routes or another agency's.
            Site::AgencyPortal { agency, .. } => match rest {
                ["admin", ..] | ["agencies"] => return Err(ApiError::NotFound),
                ["agencies", id, ..] if *id != agency.id => return Err(ApiError::NotFound),
                _ => {}
            },
            Site::Api => {}
        }
        let m = req.method;
        match (m, rest) {
            // Agencies and clients.
            (Get, ["agencies"]) => tenants::list_agencies(ctx, req, who).await,
            (Post, ["agencies"]) => tenants::create_agency(ctx, req, who).await,
            (Get, ["agencies", id]) => tenants::get_agency(ctx, req, who, id).await,
            (Put, ["agencies", id]) => tenants::update_agency(ctx, req, who, id).await,
            (Get, ["agencies", id, "domains"]) => domains::agency::list(ctx, req, who, id).await,
            (Post, ["agencies", id, "domains"]) => domains::agency::create(ctx, req, who, id).await,
            (Post, ["agencies", id, "domains", d, "verify"]) => domains::agency::verify(ctx, req, who, id, d).await,
            (Delete, ["agencies", id, "domains", d]) => domains::agency::delete(ctx, req, who, id, d).await,
            (Get, ["clients"]) => tenants::list_clients(ctx, req, who).await,
            (Post, ["clients"]) => tenants::create_client(ctx, req, who).await,
            (Get, ["clients", id]) => tenants::get_client(ctx, req, who, id).await,
            (Put, ["clients", id]) => tenants::update_client(ctx, req, who, id).await,
            (Get, ["clients", id, "usage"]) => tenants::usage(ctx, req, who, id).await,
            (Get, ["clients", id, "metrics"]) => crate::ops::metrics(ctx, req, who, id).await,
            (Get, ["clients", id, "health"]) => crate::ops::health::health(ctx, req, who, id).await,
            (Get, ["clients", id, "preferences"]) => tenants::preferences::get(ctx, req, who, id).await,
            (Patch, ["clients", id, "preferences"]) => tenants::preferences::patch(ctx, req, who, id).await,
            (Delete, ["clients", id]) => tenants::offboarding::delete(ctx, req, who, id).await,
            (Post, ["clients", id, "restore"]) => tenants::offboarding::restore(ctx, req, who, id).await,
            // Audit logs: a client's, an agency's, the platform's; as JSON pages, CSV, and verified.
            (Get, ["clients", id, "audit", rest @ ..]) => {
                audit_route(ctx, req, who, Log::Of(TenantKind::Client, id), rest).await
            }
            (Get, ["agencies", id, "audit", rest @ ..]) => {
                audit_route(ctx, req, who, Log::Of(TenantKind::Agency, id), rest).await
            }
            (Get, ["admin", "audit", rest @ ..]) => audit_route(ctx, req, who, Log::Platform, rest).await,
            (Get, ["admin", "tenants"]) => tenants::admin_tenants(ctx, req, who).await,
            (Get, ["admin", "tenants", id]) => tenants::admin_tenant(ctx, req, who, id).await,

            // Templates.
            (Get, ["agencies", id, "templates"]) => templates::list(ctx, req, who, id).await,
            (Post, ["agencies", id, "templates"]) => templates::create(ctx, req, who, id).await,
            (Get, ["agencies", id, "templates", t]) => templates::get(ctx, req, who, id, t).await,
            (Post, ["agencies", id, "templates", t, "versions"]) => templates::add_version(ctx, req, who, id, t).await,
            (Post, ["agencies", id, "templates", t, "push"]) => templates::push::push(ctx, req, who, id, t).await,

            // API keys.
            (Get, ["clients", id, "api-keys"]) => auth::keys::list(ctx, req, who, Kind::Client, id).await,
            (Post, ["clients", id, "api-keys"]) => auth::keys::create(ctx, req, who, Kind::Client, id).await,
            (Delete, ["clients", id, "api-keys", k]) => auth::keys::revoke(ctx, req, who, Kind::Client, id, k).await,
            (Get, ["agencies", id, "api-keys"]) => auth::keys::list(ctx, req, who, Kind::Agency, id).await,
            (Post, ["agencies", id, "api-keys"]) => auth::keys::create(ctx, req, who, Kind::Agency, id).await,
            (Delete, ["agencies", id, "api-keys", k]) => auth::keys::revoke(ctx, req, who, Kind::Agency, id, k).await,

            // Invitations after they are sent.
            (Get, ["clients", id, "invitations"]) => auth::invitations::list(ctx, req, who, Kind::Client, id).await,
            (Post, ["clients", id, "invitations"]) => auth::users::invite_into_client(ctx, req, who, id).await,
            (Get, ["agencies", id, "invitations"]) => auth::invitations::list(ctx, req, who, Kind::Agency, id).await,
            (Delete, ["clients", id, "invitations", inv]) => {
                auth::invitations::revoke(ctx, req, who, Kind::Client, id, inv).await
            }
            (Delete, ["agencies", id, "invitations", inv]) => {
                auth::invitations::revoke(ctx, req, who, Kind::Agency, id, inv).await
            }
            (Post, ["clients", id, "invitations", inv, "resend"]) => {
                auth::invitations::resend(ctx, req, who, Kind::Client, id, inv).await
            }
            (Post, ["agencies", id, "invitations", inv, "resend"]) => {
                auth::invitations::resend(ctx, req, who, Kind::Agency, id, inv).await
            }

            // Users, grants and invitations.
            (Get, ["users"]) => auth::users::list(ctx, req, who).await,
            (Post, ["users"]) => auth::users::create(ctx, req, who).await,
            (Post, ["users", id, "grant-access"]) => auth::users::grant(ctx, req, who, id).await,
            (Delete, ["users", id, "revoke-access"]) => auth::users::revoke(ctx, req, who, id).await,

            // Verified domains. `check` explains the widget gate's decision for an Origin.
            (Get, ["clients", id, "domains"]) => domains::api::list(ctx, req, who, id).await,
            (Post, ["clients", id, "domains"]) => domains::api::create(ctx, req, who, id).await,
            (Post, ["clients", id, "domains", "check"]) => widget::gate::check(ctx, req, who, id).await,
            (Delete, ["clients", id, "domains", domain]) => domains::api::delete(ctx, req, who, id, domain).await,
            (Post, ["clients", id, "domains", domain, "verify"]) => {
                domains::api::verify(ctx, req, who, id, domain).await
            }

            // Files.
            (Get, ["clients", id, "files"]) => files::list(ctx, req, who, id).await,
            (Post, ["clients", id, "files"]) => files::upload(ctx, req, who, id).await,
            (Get | Head, ["clients", id, "files", file]) => files::get(ctx, req, who, id, file).await,
            (Delete, ["clients", id, "files", file]) => files::delete(ctx, req, who, id, file).await,
            (Get, ["clients", id, "exports"]) => files::export::list(ctx, req, who, id).await,
            (Post, ["clients", id, "exports"]) => files::export::create(ctx, req, who, id).await,
            (Get, ["clients", id, "exports", e]) => files::export::get(ctx, req, who, id, e).await,
            (Post, ["clients", id, "exports", e, "link"]) => files::export::link(ctx, req, who, id, e).await,
            (Post, ["clients", id, "files", file, "sign"]) => files::sign(ctx, req, who, id, file).await,
            (Post, ["clients", id, "files", file, "revoke-links"]) => {
                files::revoke_links(ctx, req, who, id, file).await
            }

            // Branding: a client's own, and the agency defaults its clients inherit.
            (Get, ["clients", id, "branding"]) => branding::get_client(ctx, req, who, id).await,
            (Put, ["clients", id, "branding"]) => branding::put_client(ctx, req, who, id).await,
            (Post, ["clients", id, "branding", which @ ("logo" | "favicon")]) => {
                branding::upload_client(ctx, req, who, id, which).await
            }
            (Get, ["agencies", id, "branding"]) => branding::get_agency(ctx, req, who, id).await,
            (Put, ["agencies", id, "branding"]) => branding::put_agency(ctx, req, who, id).await,
            (Post, ["agencies", id, "branding", which @ ("logo" | "favicon")]) => {
                branding::upload_agency(ctx, req, who, id, which).await
            }

            // Encrypted integration settings.
            (Get, ["clients", id, "settings"]) => settings::get(ctx, req, who, id).await,
            (Put, ["clients", id, "settings"]) => settings::put(ctx, req, who, id).await,
            (Post, ["admin", "settings", "rotate"]) => jobs::rotate_keys(ctx, req, who).await,

            // Agencies moving between data shards.
            (Get, ["admin", "shard-moves"]) => tenants::moves::list(ctx, req, who).await,
            (Post, ["admin", "shard-moves"]) => tenants::moves::start(ctx, req, who).await,
            (Get, ["admin", "shard-moves", id]) => tenants::moves::get(ctx, who, id).await,
            (Post, ["admin", "shard-moves", id, "step"]) => tenants::moves::step_now(ctx, who, id).await,
            (Post, ["admin", "shard-moves", id, "cancel"]) => tenants::moves::cancel(ctx, req, who, id).await,

            // The CRM: contacts, tags and notes.
            (Get, ["clients", id, "contacts"]) => crm::contacts::list(ctx, req, who, id).await,
            (Post, ["clients", id, "contacts"]) => crm::contacts::create(ctx, req, who, id).await,
            (Get, ["clients", id, "contacts", contact]) => crm::contacts::get(ctx, req, who, id, contact).await,
            (Patch, ["clients", id, "contacts", contact]) => crm::contacts::update(ctx, req, who, id, contact).await,
            (Delete, ["clients", id, "contacts", contact]) => crm::contacts::delete(ctx, req, who, id, contact).await,
            (Put, ["clients", id, "contacts", contact, "tags", tag]) => {
                crm::contacts::tag(ctx, req, who, id, contact, tag).await
            }
            (Delete, ["clients", id, "contacts", contact, "tags", tag]) => {
                crm::contacts::untag(ctx, req, who, id, contact, tag).await
            }
            (Get, ["clients", id, "contacts", contact, "notes"]) => {
                crm::notes::list(ctx, req, who, id, Subject::Contact, contact).await
            }
            (Post, ["clients", id, "contacts", contact, "notes"]) => {
                crm::notes::create(ctx, req, who, id, Subject::Contact, contact).await
            }
            (Delete, ["clients", id, "contacts", contact, "notes", note]) => {
                crm::notes::delete(ctx, req, who, id, Subject::Contact, contact, note).await
            }
            (Get, ["clients", id, "tags"]) => crm::tags::list(ctx, req, who, id).await,
            (Post, ["clients", id, "tags"]) => crm::tags::create(ctx, req, who, id).await,
            (Patch, ["clients", id, "tags", tag]) => crm::tags::update(ctx, req, who, id, tag).await,
            (Delete, ["clients", id, "tags", tag]) => crm::tags::delete(ctx, req, who, id, tag).await,

            // The CRM: pipelines, stages, the board, deals.
            (Get, ["clients", id, "pipelines"]) => crm::pipelines::list(ctx, req, who, id).await,
            (Post, ["clients", id, "pipelines"]) => crm::pipelines::create(ctx, req, who, id).await,
            (Get, ["clients", id, "pipelines", p]) => crm::pipelines::get(ctx, req, who, id, p).await,
            (Patch, ["clients", id, "pipelines", p]) => crm::pipelines::rename(ctx, req, who, id, p).await,
            (Delete, ["clients", id, "pipelines", p]) => crm::pipelines::delete(ctx, req, who, id, p).await,
            (Get, ["clients", id, "pipelines", p, "board"]) => crm::pipelines::board(ctx, req, who, id, p).await,
            (Post, ["clients", id, "pipelines", p, "stages"]) => crm::pipelines::add_stage(ctx, req, who, id, p).await,
            (Put, ["clients", id, "pipelines", p, "stages"]) => crm::pipelines::reorder(ctx, req, who, id, p).await,
            (Patch, ["clients", id, "pipelines", p, "stages", stage]) => {
                crm::pipelines::rename_stage(ctx, req, who, id, p, stage).await
            }
            (Delete, ["clients", id, "pipelines", p, "stages", stage]) => {
                crm::pipelines::delete_stage(ctx, req, who, id, p, stage).await
            }
            (Get, ["clients", id, "deals"]) => crm::deals::list(ctx, req, who, id).await,
            (Post, ["clients", id, "deals"]) => crm::deals::create(ctx, req, who, id).await,
            (Get, ["clients", id, "deals", deal]) => crm::deals::get(ctx, req, who, id, deal).await,
            (Patch, ["clients", id, "deals", deal]) => crm::deals::update(ctx, req, who, id, deal).await,
            (Delete, ["clients", id, "deals", deal]) => crm::deals::delete(ctx, req, who, id, deal).await,
            (Get, ["clients", id, "deals", deal, "history"]) => crm::deals::history(ctx, req, who, id, deal).await,
            (Get, ["clients", id, "deals", deal, "notes"]) => {
                crm::notes::list(ctx, req, who, id, Subject::Deal, deal).await
            }
            (Post, ["clients", id, "deals", deal, "notes"]) => {
                crm::notes::create(ctx, req, who, id, Subject::Deal, deal).await
            }
            (Delete, ["clients", id, "deals", deal, "notes", note]) => {
                crm::notes::delete(ctx, req, who, id, Subject::Deal, deal, note).await
            }

            // Booking.
            (Get, ["clients", id, "services"]) => booking::services::list(ctx, req, who, id).await,
            (Post, ["clients", id, "services"]) => booking::services::create(ctx, req, who, id).await,
            (Get, ["clients", id, "services", s]) => booking::services::get(ctx, req, who, id, s).await,
            (Patch, ["clients", id, "services", s]) => booking::services::update(ctx, req, who, id, s).await,
            (Delete, ["clients", id, "services", s]) => booking::services::delete(ctx, req, who, id, s).await,
            (Get, ["clients", id, "staff"]) => booking::staff::list(ctx, req, who, id).await,
            (Post, ["clients", id, "staff"]) => booking::staff::create(ctx, req, who, id).await,
            (Get, ["clients", id, "staff", s]) => booking::staff::get(ctx, req, who, id, s).await,
            (Patch, ["clients", id, "staff", s]) => booking::staff::update(ctx, req, who, id, s).await,
            (Delete, ["clients", id, "staff", s]) => booking::staff::delete(ctx, req, who, id, s).await,
            (Put, ["clients", id, "staff", s, "hours"]) => booking::staff::set_hours(ctx, req, who, id, s).await,
            (Get, ["clients", id, "staff", s, "time-off"]) => booking::staff::list_time_off(ctx, req, who, id, s).await,
            (Post, ["clients", id, "staff", s, "time-off"]) => booking::staff::add_time_off(ctx, req, who, id, s).await,
            (Delete, ["clients", id, "staff", s, "time-off", off]) => {
                booking::staff::delete_time_off(ctx, req, who, id, s, off).await
            }
            (Get, ["clients", id, "appointments"]) => booking::appointments::list(ctx, req, who, id).await,
            (Post, ["clients", id, "appointments"]) => booking::appointments::create(ctx, req, who, id).await,
            (Get, ["clients", id, "appointments", a]) => booking::appointments::get(ctx, req, who, id, a).await,
            (Patch, ["clients", id, "appointments", a]) => booking::appointments::update(ctx, req, who, id, a).await,
            (Get, ["clients", id, "availability"]) => booking::appointments::availability(ctx, req, who, id).await,

            // Events and webhooks.
            (Get, ["clients", id, "events"]) => webhooks::events(ctx, req, who, id).await,
            (Get, ["clients", id, "webhooks"]) => webhooks::list(ctx, req, who, id).await,
            (Post, ["clients", id, "webhooks"]) => webhooks::create(ctx, req, who, id).await,
            (Get, ["clients", id, "webhooks", w]) => webhooks::get(ctx, req, who, id, w).await,
            (Patch, ["clients", id, "webhooks", w]) => webhooks::update(ctx, req, who, id, w).await,
            (Delete, ["clients", id, "webhooks", w]) => webhooks::delete(ctx, req, who, id, w).await,
            (Post, ["clients", id, "webhooks", w, "rotate-secret"]) => {
                webhooks::rotate_secret(ctx, req, who, id, w).await
            }
            (Post, ["clients", id, "webhooks", w, "replay"]) => {
                webhooks::delivery::replay_dead(ctx, req, who, id, w).await
            }
            (Get, ["clients", id, "webhooks", w, "deliveries"]) => webhooks::delivery::list(ctx, req, who, id, w).await,
            (Get, ["clients", id, "webhooks", w, "deliveries", d]) => {
                webhooks::delivery::get(ctx, req, who, id, w, d).await
            }
            (Post, ["clients", id, "webhooks", w, "deliveries", d, "replay"]) => {
                webhooks::delivery::replay(ctx, req, who, id, w, d).await
            }

            (_, path) if routed_path(path) => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound),
        }
    }
}

/// `GET .../audit`, `.../audit/export` (CSV) and `.../audit/verify`.
async fn audit_route<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &crate::access::roles::Principal,
    log: Log<'_>,
    rest: &[&str],
) -> ApiResult<Response> {
    match rest {
        [] => tenants::audit_log::list(ctx, req, who, log).await,
        ["export"] => tenants::audit_log::export(ctx, req, who, log).await,
        ["verify"] => tenants::audit_log::verify(ctx, req, who, log).await,
        _ => Err(ApiError::NotFound),
    }
}

/// `f`, once the caller's address is within `AUTH_IP_LIMITER`: for the routes that mail someone
/// or spend a one-time token (signup, reset, accepting an invitation).
async fn per_ip<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    f: impl core::future::Future<Output = ApiResult<Response>>,
) -> ApiResult<Response> {
    auth::ratelimit::per_ip(ctx, req).await?;
    f.await
}

/// The paths the table above serves under some method: any other method on them is a 405.
fn routed_path(path: &[&str]) -> bool {
    matches!(
        path,
        ["agencies" | "clients" | "users"]
            | ["agencies" | "clients", _]
            | ["clients", _, "audit" | "domains" | "files" | "branding" | "settings" | "contacts" | "usage"]
            | ["clients", _, "preferences"]
            | ["agencies", _, "audit"]
            | ["clients", _, "restore"]
            | ["clients" | "agencies", _, "audit", "export" | "verify"]
            | ["admin", "audit"]
            | ["admin", "audit", "export" | "verify"]
            | ["clients", _, "tags" | "pipelines" | "deals" | "services" | "staff" | "appointments" | "availability"]
            | ["clients", _, "tags" | "pipelines" | "deals" | "services" | "staff" | "appointments", _]
            | ["clients", _, "staff", _, "hours" | "time-off"]
            | ["clients", _, "staff", _, "time-off", _]
            | ["clients", _, "contacts" | "deals", _, "notes"]
            | ["clients", _, "contacts" | "deals", _, "notes", _]
            | ["clients", _, "contacts", _, "tags", _]
            | ["clients", _, "pipelines", _, "board" | "stages"]
            | ["clients", _, "pipelines", _, "stages", _]
            | ["clients", _, "deals", _, "history"]
            | ["clients", _, "exports"]
            | ["clients", _, "exports", _]
            | ["clients", _, "exports", _, "link"]
            | ["agencies", _, "templates"]
            | ["agencies", _, "templates", _]
            | ["agencies", _, "templates", _, "versions" | "push"]
            | ["clients" | "agencies", _, "api-keys" | "invitations"]
            | ["clients" | "agencies", _, "invitations", _]
            | ["clients" | "agencies", _, "invitations", _, "resend"]
            | ["clients" | "agencies", _, "api-keys", _]
            | ["clients", _, "events" | "webhooks"]
            | ["clients", _, "webhooks", _]
            | ["clients", _, "webhooks", _, "rotate-secret" | "replay" | "deliveries"]
            | ["clients", _, "webhooks", _, "deliveries", _]
            | ["clients", _, "webhooks", _, "deliveries", _, "replay"]
            | ["admin", "tenants"]
            | ["admin", "tenants", _]
            | ["admin", "settings", "rotate"]
            | ["admin", "shard-moves"]
            | ["admin", "shard-moves", _]
            | ["admin", "shard-moves", _, "step" | "cancel"]
            | ["users", _, "grant-access" | "revoke-access"]
            | ["clients", _, "domains", _]
            | ["clients", _, "domains", _, "verify"]
            | ["clients", _, "files" | "contacts", _]
            | ["clients", _, "files", _, "sign" | "revoke-links"]
            | ["clients" | "agencies", _, "branding", "logo" | "favicon"]
            | ["agencies", _, "branding"]
    )
}

/// A route served under one method only: any other is a 405, decided before the handler runs.
async fn only(
    m: Method,
    want: Method,
    handler: impl std::future::Future<Output = ApiResult<Response>>,
) -> ApiResult<Response> {
    if m == want {
        handler.await
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

/// The OpenAPI document, as committed (`api::openapi` builds it natively; a test holds the two
/// equal).
const OPENAPI: &str = include_str!("../../openapi.json");

fn openapi() -> Response {
    Response::text(200, "application/json", OPENAPI).with_header("cache-control", "public, max-age=300")
}

async fn healthz<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Response> {
    let rows = ctx.p.query(crate::SCHEMA_VERSION_SQL, &[]).await?;
    let schema = rows.first().and_then(|r| crate::platform::ports::col_i64(r, "version"));
    Ok(Response::json(200, &serde_json::json!({"status": "ok", "version": ctx.cfg.version, "schema_version": schema})))
}

/// Maps the Host header to a site. X-Forwarded-Host and friends are never consulted.
pub async fn resolve_site<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> ApiResult<Site> {
    if req.header_count("host") != 1 {
        return Err(ApiError::bad_request("invalid_host", "exactly one Host header is required"));
    }
    let raw = req.header("host").unwrap_or_default();
    let (host, port) = parse_host(raw)?;
    let with_port = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    if ctx.cfg.api_hosts.iter().any(|h| *h == host || *h == with_port) {
        return Ok(Site::Api);
    }
    // Boxed: the widget gate, on the API host, should not carry the portal lookups' state.
    Box::pin(resolve_portal(ctx, host, with_port)).await
}

/// A portal host: a client's or an agency's, by slug or by verified domain.
async fn resolve_portal<P: Platform>(ctx: &Ctx<'_, P>, host: String, with_port: String) -> ApiResult<Site> {
    let base = &ctx.cfg.portal_base_domain;
    // A slug names one tenant, agency or client (unique across both, enforced in the schema).
    let owner = if let Some(slug) = host.strip_suffix(base.as_str()).and_then(|s| s.strip_suffix('.')) {
        if slug.contains('.') {
            None
        } else if let Some(c) = client_by_slug(ctx.p, slug).await? {
            Some(domains::PortalOwner::Client(Box::new(c)))
        } else {
            agency_by_slug(ctx.p, slug).await?.map(domains::PortalOwner::Agency)
        }
    } else {
        domains::portal_owner(ctx, &host).await?
    };
    let unavailable = || ApiError::Forbidden("tenant_suspended", "this portal is unavailable".into());
    match owner.ok_or(ApiError::NotFound)? {
        // A suspended client, or a client of a suspended agency, serves no portal at all.
        domains::PortalOwner::Client(c) if !c.is_active() => Err(unavailable()),
        domains::PortalOwner::Client(c) => Ok(Site::ClientPortal { client: c, host: with_port }),
        domains::PortalOwner::Agency(a) if a.status != "active" => Err(unavailable()),
        domains::PortalOwner::Agency(a) => Ok(Site::AgencyPortal { agency: Box::new(a), host: with_port }),
    }
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
