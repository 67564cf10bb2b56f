//! Agencies, clients, the platform admin's tenant view, and (in `audit_log`) the audit logs.

pub mod audit_log;
pub mod moves;
pub mod offboarding;
pub mod preferences;

use serde_json::{json, Value};

use crate::access::audit;
use crate::access::audit::Event;
use crate::access::plans::{self, Metric};
use crate::access::roles::{Permission, Principal, Scope};
use crate::access::store::{self, Agency};
use crate::access::{self, require_permission};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{email_field, json_body, page_params, page_response, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;
use crate::templates;

const FORBIDDEN: &[&str] = &["id", "role", "agency_id", "client_id", "publishable_key", "created_at", "updated_at"];

crate::platform::body::body! {
    struct NewAgency {
        name: String,
        slug: String,
        email: Option<String>,
        phone: Option<String>,
        plan: Option<String>,
    }
}

crate::platform::body::body! {
    #[derive(Default)]
    struct AgencyPatch {
        name: Option<String>,
        email: Option<String>,
        phone: Option<String>,
        status: Option<String>,
        plan: Option<String>,
        require_mfa: Option<bool>,
    }
}

crate::platform::body::body! {
    struct NewClient {
        name: String,
        slug: String,
        business_type: Option<String>,
        kind: Option<String>,
        email: Option<String>,
        phone: Option<String>,
        website: Option<String>,
        plan: Option<String>,
        /// Sets the client up from the latest version of one of the agency's templates.
        template_id: Option<String>,
    }
}

crate::platform::body::body! {
    #[derive(Default)]
    struct ClientPatch {
        name: Option<String>,
        business_type: Option<String>,
        kind: Option<String>,
        email: Option<String>,
        phone: Option<String>,
        website: Option<String>,
        status: Option<String>,
        plan: Option<String>,
        feature_flags: Option<serde_json::Map<String, Value>>,
        test_mode: Option<bool>,
        time_zone: Option<String>,
        require_mfa: Option<bool>,
        /// Per-metric overrides of the plan's limits (`null` removes one).
        limits: Option<serde_json::Map<String, Value>>,
        /// The integration providers the client may use: a list, or `null` for all of them.
        integrations: Option<Value>,
    }
}

fn opt_text(name: &'static str, v: Option<String>, max: usize) -> ApiResult<Option<String>> {
    v.map(|s| text_field(name, &s, max)).transpose()
}

/// An optional contact field of a patch: absent (or `null`) keeps `current`, a blank string
/// clears it, anything else must pass `check`.
fn patch_field(
    v: Option<String>,
    current: Option<String>,
    check: impl FnOnce(&str) -> ApiResult<String>,
) -> ApiResult<Option<String>> {
    match v {
        None => Ok(current),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => check(&s).map(Some),
    }
}

/// `patch_field` for free text of at most `max` characters.
fn patch_text(name: &'static str, v: Option<String>, max: usize, current: Option<String>) -> ApiResult<Option<String>> {
    patch_field(v, current, |s| text_field(name, s, max))
}

fn plan_field(v: &str) -> ApiResult<String> {
    if plans::is_plan(v) {
        return Ok(v.into());
    }
    Err(ApiError::invalid("invalid_plan", format!("plan must be one of {}", plans::plan_names().join(", "))))
}

fn status_field(v: &str) -> ApiResult<String> {
    match v {
        "active" | "suspended" => Ok(v.into()),
        _ => Err(ApiError::invalid("invalid_status", "status must be active or suspended")),
    }
}

/// The names of the patch fields that were sent, for the audit row.
fn present_fields(fields: &[(&'static str, bool)]) -> Vec<&'static str> {
    fields.iter().filter(|(_, present)| *present).map(|(name, _)| *name).collect()
}

/// An agency as the API shows it, with the host its portal answers on (`base` is
/// `PORTAL_BASE_DOMAIN`); its verified portal domains are listed under `/domains`.
fn agency_json(a: &Agency, base: &str) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
    v["require_mfa"] = Value::Bool(a.require_mfa != 0);
    v["portal_host"] = Value::String(format!("{}.{base}", a.slug));
    v
}

pub async fn list_agencies<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    require_permission(who, Permission::AgenciesRead)?;
    let (cursor, limit) = page_params(req)?;
    audit::staff_access(ctx, req, who, who.tenant_id(), "agencies").await?;
    let items: Vec<Agency> = match &who.scope {
        Scope::Platform => ctx.p.query_as(store::LIST_AGENCIES, &[cursor.into(), Param::Int(limit)]).await?,
        Scope::Agency { agency_id } => {
            store::agency(ctx.p, agency_id).await?.into_iter().filter(|a| a.id.as_str() > cursor.as_str()).collect()
        }
        Scope::Client { .. } => Vec::new(),
    };
    Ok(page_response(
        &items.iter().map(|a| agency_json(a, &ctx.cfg.portal_base_domain)).collect::<Vec<_>>(),
        limit,
        |v| v["id"].as_str().map(String::from),
    ))
}

pub async fn create_agency<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    if !who.can(Permission::AgenciesCreate) {
        return Err(ApiError::forbidden("only platform admins create agencies"));
    }
    let body: NewAgency = json_body(req, FORBIDDEN)?;
    let id = crate::platform::ids::new_id("agy")?;
    let name = text_field("name", &body.name, 120)?;
    let slug = store::parse_slug(&body.slug)?;
    let email = body.email.as_deref().map(email_field).transpose()?;
    let phone = opt_text("phone", body.phone, 40)?;
    let plan = plan_field(body.plan.as_deref().unwrap_or("starter"))?;
    let now = ctx.p.now_ms();
    let stmts = [
        Stmt::new(
            store::INSERT_AGENCY,
            vec![
                id.as_str().into(),
                name.into(),
                slug.into(),
                email.into(),
                phone.into(),
                plan.into(),
                Param::Int(now),
                Param::Int(store::place_agency(ctx.p).await?),
            ],
        ),
        audit::entry(
            ctx,
            req,
            Some(who),
            Event {
                tenant_id: &id,
                action: "agency.created",
                target_type: "agency",
                target_id: Some(&id),
                metadata: json!({}),
            },
        )?,
    ];
    ctx.p.batch(&stmts).await.map_err(slug_conflict)?;
    let agency = store::agency(ctx.p, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(201, &agency_json(&agency, &ctx.cfg.portal_base_domain)))
}

fn slug_conflict(e: crate::platform::error::StoreError) -> ApiError {
    match e {
        crate::platform::error::StoreError::Conflict(_) => {
            ApiError::conflict("slug_taken", "this slug is already in use")
        }
        other => other.into(),
    }
}

pub async fn get_agency<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
) -> ApiResult<Response> {
    let (_, a) = access::agency(ctx, req, who, id, Permission::AgenciesRead).await?;
    Ok(Response::json(200, &agency_json(&a, &ctx.cfg.portal_base_domain)))
}

pub async fn update_agency<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
) -> ApiResult<Response> {
    let (_, a) = access::agency(ctx, req, who, id, Permission::AgenciesWrite).await?;
    let patch: AgencyPatch = json_body(req, FORBIDDEN)?;
    if (patch.status.is_some() || patch.plan.is_some()) && !who.is_platform_admin() {
        return Err(ApiError::Forbidden(
            "forbidden_field",
            "only platform admins change an agency's status or plan".into(),
        ));
    }
    let changed = present_fields(&[
        ("name", patch.name.is_some()),
        ("email", patch.email.is_some()),
        ("phone", patch.phone.is_some()),
        ("status", patch.status.is_some()),
        ("plan", patch.plan.is_some()),
        ("require_mfa", patch.require_mfa.is_some()),
    ]);
    let name = opt_text("name", patch.name, 120)?.unwrap_or(a.name);
    let email = patch_field(patch.email, a.email, email_field)?;
    let phone = patch_text("phone", patch.phone, 40, a.phone)?;
    let status = patch.status.as_deref().map(status_field).transpose()?.unwrap_or(a.status);
    let plan = patch.plan.as_deref().map(plan_field).transpose()?.unwrap_or(a.plan);
    let stmts = [
        Stmt::new(
            store::UPDATE_AGENCY,
            vec![
                id.into(),
                name.into(),
                email.into(),
                phone.into(),
                status.into(),
                plan.into(),
                Param::Int(ctx.p.now_ms()),
                Param::Int(patch.require_mfa.map_or(a.require_mfa, i64::from)),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: id,
                action: "agency.updated",
                target_type: "agency",
                target_id: Some(id),
                metadata: json!({"fields": changed}),
            },
        )?,
    ];
    ctx.p.batch(&stmts).await?;
    // Its clients' widgets and branding depend on the agency's status and branding.
    ctx.tenant_changed(id);
    let a = store::agency(ctx.p, id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &agency_json(&a, &ctx.cfg.portal_base_domain)))
}

pub async fn list_clients<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    require_permission(who, Permission::ClientsRead)?;
    let (cursor, limit) = page_params(req)?;
    audit::staff_access(ctx, req, who, who.tenant_id(), "clients").await?;
    let filter = req.query_param("agency_id");
    let rows = match &who.scope {
        Scope::Platform => store::clients_page(ctx.p, filter.as_deref(), &cursor, limit).await?,
        Scope::Agency { agency_id } => {
            // An agency may only filter by itself; any other agency's list is empty, not an error.
            if filter.as_deref().is_some_and(|f| f != agency_id) {
                Vec::new()
            } else {
                store::clients_page(ctx.p, Some(agency_id), &cursor, limit).await?
            }
        }
        Scope::Client { client_id, .. } => store::client(ctx.p, client_id)
            .await?
            .into_iter()
            .filter(|c| c.id.as_str() > cursor.as_str() && filter.as_deref().is_none_or(|f| f == c.agency_id))
            .collect(),
    };
    Ok(page_response(&rows.iter().map(|c| c.to_json()).collect::<Vec<_>>(), limit, |v| {
        v["id"].as_str().map(String::from)
    }))
}

pub async fn create_client<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    if !who.can(Permission::ClientsCreate) {
        return Err(ApiError::forbidden("requires the clients:create permission"));
    }
    // The owning agency comes from the caller's scope; platform admins name it in the query.
    let agency_id = match &who.scope {
        Scope::Agency { agency_id } => agency_id.clone(),
        Scope::Platform => {
            let a = req.query_param("agency_id").ok_or_else(|| {
                ApiError::bad_request("agency_required", "platform admins create clients with ?agency_id=")
            })?;
            access::reach_agency(ctx, req, who, &a).await?.1.id
        }
        Scope::Client { .. } => return Err(ApiError::forbidden("clients cannot create clients")),
    };
    let body: NewClient = json_body(req, FORBIDDEN)?;
    let id = crate::platform::ids::new_id("cli")?;
    let key = crate::platform::ids::new_token("pk_")?;
    let kind = body.kind.unwrap_or_else(|| "organization".into());
    if kind != "individual" && kind != "organization" {
        return Err(ApiError::invalid("invalid_kind", "kind must be individual or organization"));
    }
    let website = opt_text("website", body.website, 200)?;
    let now = ctx.p.now_ms();
    let seeded = match &body.template_id {
        Some(t) => Some(templates::seed_for(ctx, &agency_id, t).await?),
        None => None,
    };
    let plan = body.plan.as_deref().or(seeded.as_ref().and_then(|s| s.plan.as_deref())).unwrap_or("starter");
    let mut stmts = vec![
        Stmt::new(
            store::INSERT_CLIENT,
            vec![
                id.as_str().into(),
                agency_id.as_str().into(),
                text_field("name", &body.name, 120)?.into(),
                store::parse_slug(&body.slug)?.into(),
                opt_text("business_type", body.business_type, 80)?.into(),
                kind.into(),
                body.email.as_deref().map(email_field).transpose()?.into(),
                opt_text("phone", body.phone, 40)?.into(),
                website.into(),
                plan_field(plan)?.into(),
                key.into(),
                Param::Int(now),
                seeded.as_ref().map_or("{}", |s| s.feature_flags.as_str()).into(),
                seeded.as_ref().map(|s| s.template_id.clone()).into(),
                seeded.as_ref().map(|s| s.version).map_or(Param::Null, Param::Int),
                seeded.as_ref().and_then(|s| s.integrations.clone()).into(),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: &id,
                action: "client.created",
                target_type: "client",
                target_id: Some(&id),
                metadata: match &seeded {
                    Some(s) => json!({"agency_id": agency_id, "template": {"id": s.template_id, "version": s.version}}),
                    None => json!({"agency_id": agency_id}),
                },
            },
        )?,
    ];
    let mut hold = None;
    if let Some(s) = &seeded {
        // The template's rows go in only beside a client row that went in: the agency's address
        // is verified (a verified address stays verified), so the insert above cannot be skipped.
        if !store::agency_verified(ctx.p, &agency_id).await? {
            return Err(unverified());
        }
        let to = templates::Target { client_id: &id, agency_id: &agency_id, version: s.version, now };
        let (control, shard) = templates::provision(&s.spec, &to, &who.user_id)?;
        // Right after the insert's audit row, which passes on whether the insert happened.
        stmts.push(shard.stmt(now));
        stmts.extend(control);
        hold = Some(shard);
    }
    if ctx.p.batch(&stmts).await.map_err(slug_conflict)?.first().copied().unwrap_or(0) == 0 {
        return Err(unverified());
    }
    if let Some(h) = &hold {
        crate::access::relay::apply(ctx, h).await;
        ctx.tenant_changed(&id);
    }
    let c = store::client(ctx.p, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(201, &c.to_json()))
}

fn unverified() -> ApiError {
    ApiError::Forbidden(
        "email_unverified",
        "verify the agency's address with the link mailed at signup before adding clients".into(),
    )
}

pub async fn get_client<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
) -> ApiResult<Response> {
    let (_, c) = access::client(ctx, req, who, id, Permission::ClientsRead).await?;
    Ok(Response::json(200, &c.to_json()))
}

pub async fn update_client<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
) -> ApiResult<Response> {
    let (_, c) = access::client(ctx, req, who, id, Permission::ClientsWrite).await?;
    let patch: ClientPatch = json_body(req, FORBIDDEN)?;
    // A deleted client changes only by being restored: a status set here would wake it while its
    // purge stays scheduled.
    if c.deleted_at.is_some() {
        return Err(ApiError::conflict("client_deleted", "this client is deleted; restore it first"));
    }
    let managed = patch.status.is_some()
        || patch.plan.is_some()
        || patch.test_mode.is_some()
        || patch.limits.is_some()
        || patch.feature_flags.is_some()
        || patch.integrations.is_some();
    if managed && !who.can(Permission::ClientsManage) {
        return Err(ApiError::Forbidden(
            "forbidden_field",
            "status, plan, limits, feature_flags, integrations and test_mode are set by the agency".into(),
        ));
    }
    let changed = present_fields(&[
        ("name", patch.name.is_some()),
        ("business_type", patch.business_type.is_some()),
        ("kind", patch.kind.is_some()),
        ("email", patch.email.is_some()),
        ("phone", patch.phone.is_some()),
        ("website", patch.website.is_some()),
        ("status", patch.status.is_some()),
        ("plan", patch.plan.is_some()),
        ("feature_flags", patch.feature_flags.is_some()),
        ("test_mode", patch.test_mode.is_some()),
        ("time_zone", patch.time_zone.is_some()),
        ("require_mfa", patch.require_mfa.is_some()),
        ("limits", patch.limits.is_some()),
        ("integrations", patch.integrations.is_some()),
    ]);
    let integrations = match &patch.integrations {
        Some(v) => templates::integrations_json(v)?,
        None => c.integrations.clone(),
    };
    let limits = match &patch.limits {
        Some(l) => plans::patch_overrides(&c.limits, l)?,
        None => c.limits.clone(),
    };
    let time_zone = match patch.time_zone {
        Some(tz) => crate::platform::tz::Zone::get(ctx.p, &tz).map(|z| z.name().to_string()).ok_or_else(|| {
            ApiError::invalid("invalid_time_zone", "time_zone must be an IANA name like Europe/Berlin")
        })?,
        None => c.time_zone.clone(),
    };
    let kind = patch.kind.unwrap_or(c.kind);
    if kind != "individual" && kind != "organization" {
        return Err(ApiError::invalid("invalid_kind", "kind must be individual or organization"));
    }
    let flags = match &patch.feature_flags {
        Some(f) => crate::access::flags::patch(&c.feature_flags, f)?,
        None => c.feature_flags.clone(),
    };
    let test_mode = patch.test_mode.map(i64::from).unwrap_or(c.test_mode);
    let stmts = [
        Stmt::new(
            store::UPDATE_CLIENT,
            vec![
                c.id.as_str().into(),
                c.agency_id.as_str().into(),
                opt_text("name", patch.name, 120)?.unwrap_or(c.name).into(),
                patch_text("business_type", patch.business_type, 80, c.business_type)?.into(),
                kind.into(),
                patch_field(patch.email, c.email, email_field)?.into(),
                patch_text("phone", patch.phone, 40, c.phone)?.into(),
                patch_text("website", patch.website, 200, c.website)?.into(),
                patch.status.as_deref().map(status_field).transpose()?.unwrap_or(c.status).into(),
                patch.plan.as_deref().map(plan_field).transpose()?.unwrap_or(c.plan).into(),
                flags.into(),
                Param::Int(test_mode),
                Param::Int(ctx.p.now_ms()),
                time_zone.into(),
                Param::Int(patch.require_mfa.map_or(c.require_mfa, i64::from)),
                limits.into(),
                integrations.into(),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: &c.id,
                action: "client.updated",
                target_type: "client",
                target_id: Some(&c.id),
                metadata: json!({"fields": changed}),
            },
        )?,
    ];
    ctx.p.batch(&stmts).await?;
    ctx.tenant_changed(&c.id);
    let c = store::client(ctx.p, &c.id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &c.to_json()))
}

pub async fn admin_tenants<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    if !who.can(Permission::PlatformAdmin) {
        return Err(ApiError::forbidden("platform admins only"));
    }
    let (cursor, limit) = page_params(req)?;
    let agencies: Vec<Agency> = ctx.p.query_as(store::LIST_AGENCIES, &[cursor.into(), Param::Int(limit)]).await?;
    let mut items = Vec::with_capacity(agencies.len());
    for a in &agencies {
        let clients = store::clients_page(ctx.p, Some(&a.id), "", 100).await?;
        let mut v = agency_json(a, &ctx.cfg.portal_base_domain);
        v["clients"] =
            clients.iter().map(|c| json!({"id": c.id, "name": c.name, "slug": c.slug, "status": c.status})).collect();
        items.push(v);
    }
    let audit = audit::entry(
        ctx,
        req,
        Some(who),
        Event {
            tenant_id: "platform",
            action: "platform.tenants_listed",
            target_type: "platform",
            target_id: None,
            metadata: json!({}),
        },
    )?;
    ctx.p.execute(audit.sql, &audit.params).await?;
    Ok(page_response(&items, limit, |v| v["id"].as_str().map(String::from)))
}

pub async fn admin_tenant<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
) -> ApiResult<Response> {
    if !who.can(Permission::PlatformAdmin) {
        return Err(ApiError::forbidden("platform admins only"));
    }
    let body = if crate::platform::ids::looks_like_id(id, "agy") {
        let a = store::agency(ctx.p, id).await?.ok_or(ApiError::NotFound)?;
        json!({"kind": "agency", "agency": agency_json(&a, &ctx.cfg.portal_base_domain)})
    } else {
        if !crate::platform::ids::looks_like_id(id, "cli") {
            return Err(ApiError::NotFound);
        }
        let c = store::client(ctx.p, id).await?.ok_or(ApiError::NotFound)?;
        json!({"kind": "client", "client": c.to_json()})
    };
    let audit = audit::entry(
        ctx,
        req,
        Some(who),
        Event {
            tenant_id: id,
            action: "platform.tenant_viewed",
            target_type: "tenant",
            target_id: Some(id),
            metadata: json!({}),
        },
    )?;
    ctx.p.execute(audit.sql, &audit.params).await?;
    Ok(Response::json(200, &body))
}

/// `GET /api/clients/{id}/usage`: each metric's `{used, limit, remaining, events}`, `events`
/// being the recent crossings of 80% and 100%. API requests per minute are counted by the edge's
/// Rate Limiting binding, so their `used` is null.
pub async fn usage<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, id: &str) -> ApiResult<Response> {
    let (_, c) = access::client(ctx, req, who, id, Permission::ClientsRead).await?;
    let now = ctx.p.now_ms();
    let used = plans::usage(ctx.p, &c.id, now).await?;
    crate::platform::rows::row! {
        #[derive(serde::Serialize)]
        struct Crossing {
            metric: String,
            threshold: i64,
            used: i64,
            limit: i64,
            at: i64,
        }
    }
    let events: Vec<Crossing> = ctx.p.query_as(plans::RECENT_EVENTS, &[c.id.as_str().into()]).await?;
    let mut out = serde_json::Map::new();
    for m in Metric::ALL {
        let limit = plans::limit(&c, m);
        let used = used.get(m.name()).and_then(Value::as_i64);
        let mine: Vec<&Crossing> = events.iter().filter(|e| e.metric == m.name()).collect();
        out.insert(
            m.name().to_string(),
            json!({"used": used, "limit": limit, "remaining": used.map(|u| (limit - u).max(0)), "events": mine}),
        );
    }
    Ok(Response::json(200, &Value::Object(out)))
}
