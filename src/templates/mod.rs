//! Client templates: an agency's saved onboarding. A template holds a plan, feature flags,
//! default branding, pipelines with their stages, services, and the integration providers a
//! client may use (never a secret: the spec has no place for one, and unknown fields are refused).
//!
//! Templates are versioned: each save is a new row, and a client made from one remembers the
//! version it is on. Pushing version N to the template's clients applies what N adds over the
//! client's version without overwriting what changed since (`push`), and reports per client what
//! it applied and what it skipped, and why.

pub mod push;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::access::audit::{self, Event};
use crate::access::relay::{Hold, ADD_PIPELINE, ADD_SERVICE, ADD_STAGE};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, flags, plans, AgencyScope};
use crate::booking::services::ServiceBody;
use crate::branding;
use crate::crm::pipelines::MAX_STAGES;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{json_body, tenant_page, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_id, new_id};
use crate::platform::ports::{col_i64, Database, Param, Platform, Stmt};
use crate::platform::Ctx;
use crate::settings;

/// The latest version of each of an agency's templates.
pub const LIST: &str =
    "SELECT t.id, t.agency_id, t.version, t.name, t.spec, t.created_by, t.created_at FROM templates t \
    WHERE t.agency_id = ?1 AND t.id > ?2 \
    AND t.version = (SELECT max(v.version) FROM templates v WHERE v.agency_id = ?1 AND v.id = t.id) \
    ORDER BY t.id LIMIT ?3";
pub const VERSIONS: &str = "SELECT id, agency_id, version, name, spec, created_by, created_at FROM templates \
    WHERE agency_id = ?1 AND id = ?2 ORDER BY version";
/// Saves version ?3, only if it follows the latest one: two saves at once cannot both be "next".
pub const INSERT_VERSION: &str = "INSERT INTO templates (id, agency_id, version, name, spec, created_by, created_at) \
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
    WHERE coalesce((SELECT max(version) FROM templates WHERE agency_id = ?2 AND id = ?1), 0) = ?3 - 1";
pub const CLIENTS_ON: &str = "SELECT count(*) AS n FROM clients WHERE agency_id = ?1 AND template_id = ?2 \
    AND deleted_at IS NULL";

// The client's pipelines, stages and services are its data shard's: a template writes them
// through `access::relay` (`relay::ADD_PIPELINE`, `ADD_STAGE`, `ADD_SERVICE`), held by the batch
// that sets the client on its template version, so a push that lost its race, or a client whose
// insert was refused, holds nothing.
/// The client's whole branding row, under the same guard.
pub const SET_BRANDING: &str = "INSERT INTO branding (owner_id, owner_kind, primary_color, secondary_color, tagline, \
    support_email, support_phone, logo_file_id, favicon_file_id, custom_css, updated_by, updated_at) \
    SELECT ?1, 'client', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 \
    WHERE EXISTS (SELECT 1 FROM clients WHERE agency_id = ?12 AND id = ?1 AND template_version = ?13 \
    AND updated_at = ?11 AND deleted_at IS NULL) \
    ON CONFLICT (owner_id) DO UPDATE SET primary_color = excluded.primary_color, \
    secondary_color = excluded.secondary_color, tagline = excluded.tagline, support_email = excluded.support_email, \
    support_phone = excluded.support_phone, logo_file_id = excluded.logo_file_id, \
    favicon_file_id = excluded.favicon_file_id, custom_css = excluded.custom_css, updated_by = excluded.updated_by, \
    updated_at = excluded.updated_at";

const MAX_PIPELINES: usize = 20;
const MAX_SERVICES: usize = 50;

crate::platform::body::body! {
    /// What a template sets up. Every part is optional; everything in it is validated and
    /// normalised before it is stored.
    #[derive(Debug, Serialize, Default, Clone)]
    pub struct Spec {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub plan: Option<String>,
        pub feature_flags: BTreeMap<String, bool> = Default::default(),
        /// Branding text fields (`branding::TEXT_FIELDS`); logos are uploaded per client.
        pub branding: BTreeMap<String, String> = Default::default(),
        pub pipelines: Vec<PipelineSpec> = Default::default(),
        pub services: Vec<ServiceBody> = Default::default(),
        /// The providers a client may store credentials for; absent: all of them.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub integrations: Option<Vec<String>>,
    }
}

crate::platform::body::body! {
    #[derive(Debug, Serialize, Clone, PartialEq)]
    pub struct PipelineSpec {
        pub name: String,
        pub stages: Vec<String>,
    }
}

impl Spec {
    /// Validates and normalises every part: the same rules as the endpoints that set each one.
    pub fn checked(self) -> ApiResult<Spec> {
        if let Some(p) = &self.plan {
            if !plans::is_plan(p) {
                return Err(ApiError::invalid(
                    "invalid_plan",
                    format!("plan must be one of {}", plans::plan_names().join(", ")),
                ));
            }
        }
        let flag_map: Map<String, Value> = self.feature_flags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        flags::patch("{}", &flag_map)?;
        let branding = self
            .branding
            .into_iter()
            .map(|(k, v)| Ok((k.clone(), branding::check_field(&k, &v, &[])?)))
            .collect::<ApiResult<BTreeMap<_, _>>>()?;
        if self.pipelines.len() > MAX_PIPELINES || self.services.len() > MAX_SERVICES {
            return Err(ApiError::invalid(
                "invalid_template",
                format!("a template has at most {MAX_PIPELINES} pipelines and {MAX_SERVICES} services"),
            ));
        }
        let mut pipelines = Vec::with_capacity(self.pipelines.len());
        for p in self.pipelines {
            let name = text_field("name", &p.name, 80)?;
            if p.stages.is_empty() || p.stages.len() > MAX_STAGES {
                return Err(ApiError::invalid("invalid_stages", format!("a pipeline has 1-{MAX_STAGES} stages")));
            }
            let stages = p.stages.iter().map(|s| text_field("name", s, 60)).collect::<ApiResult<Vec<_>>>()?;
            unique(stages.iter(), &format!("stages of `{name}`"))?;
            pipelines.push(PipelineSpec { name, stages });
        }
        unique(pipelines.iter().map(|p| &p.name), "pipelines")?;
        let services = self.services.into_iter().map(ServiceBody::complete).collect::<ApiResult<Vec<_>>>()?;
        unique(services.iter().filter_map(|s| s.name.as_ref()), "services")?;
        let integrations = self.integrations.as_deref().map(settings::integrations_field).transpose()?;
        Ok(Spec { plan: self.plan, feature_flags: self.feature_flags, branding, pipelines, services, integrations })
    }

    fn flags_json(&self) -> String {
        json!(self.feature_flags).to_string()
    }
}

fn unique<'a>(names: impl Iterator<Item = &'a String>, what: &str) -> ApiResult<()> {
    let mut seen = std::collections::BTreeSet::new();
    for n in names {
        if !seen.insert(n.to_lowercase()) {
            return Err(ApiError::invalid("duplicate_name", format!("{what}: `{n}` appears twice")));
        }
    }
    Ok(())
}

crate::platform::rows::row! {
    #[derive(Debug, Serialize, Clone)]
    pub struct Template {
        pub id: String,
        pub agency_id: String,
        pub version: i64,
        pub name: String,
        /// The spec as stored (normalised JSON).
        pub spec: String,
        pub created_by: Option<String>,
        pub created_at: i64,
    }
}

impl Template {
    pub fn spec(&self) -> Spec {
        crate::platform::body::parse(self.spec.as_bytes(), "spec").unwrap_or_default()
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "agency_id": self.agency_id, "version": self.version, "name": self.name,
            "spec": serde_json::from_str::<Value>(&self.spec).unwrap_or(Value::Null),
            "created_by": self.created_by, "created_at": self.created_at,
        })
    }
}

/// Every version of one of an agency's templates, oldest first; empty for a foreign or unknown id.
pub async fn versions(db: &impl Database, agency_id: &str, id: &str) -> ApiResult<Vec<Template>> {
    if !looks_like_id(id, "tpl") {
        return Ok(Vec::new());
    }
    Ok(db.query_as(VERSIONS, &[agency_id.into(), id.into()]).await?)
}

crate::platform::body::body! {
    struct Save {
        name: Option<String>,
        spec: Spec,
    }
}

fn event<'a>(agency: &'a AgencyScope, action: &'a str, id: &'a str, version: i64) -> Event<'a> {
    Event {
        tenant_id: agency.id(),
        action,
        target_type: "template",
        target_id: Some(id),
        metadata: json!({"version": version}),
    }
}

/// `GET /api/agencies/{id}/templates`: each template at its latest version.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    agency_id: &str,
) -> ApiResult<Response> {
    let (agency, _) = access::agency(ctx, req, who, agency_id, Permission::ClientsRead).await?;
    tenant_page(ctx.p, req, LIST, agency.id(), |t: &Template| Some(t.id.clone())).await
}

/// `POST /api/agencies/{id}/templates`: version 1 of a new template.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    agency_id: &str,
) -> ApiResult<Response> {
    // A template sets a client's plan, flags and integrations: the agency's levers, so saving one
    // takes what setting them directly takes.
    let (agency, _) = access::agency(ctx, req, who, agency_id, Permission::ClientsManage).await?;
    let body: Save = json_body(req, &["id", "agency_id", "version"])?;
    let name = text_field("name", body.name.as_deref().unwrap_or(""), 80)?;
    save(ctx, req, who, &agency, &new_id("tpl")?, 1, &name, body.spec).await
}

/// `POST /api/agencies/{id}/templates/{template_id}/versions`: the next version (the name is
/// kept unless given).
pub async fn add_version<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    agency_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (agency, _) = access::agency(ctx, req, who, agency_id, Permission::ClientsManage).await?;
    let latest = versions(ctx.p, agency.id(), id).await?.pop().ok_or(ApiError::NotFound)?;
    let body: Save = json_body(req, &["id", "agency_id", "version"])?;
    let name = match body.name {
        Some(n) => text_field("name", &n, 80)?,
        None => latest.name,
    };
    save(ctx, req, who, &agency, id, latest.version + 1, &name, body.spec).await
}

#[allow(clippy::too_many_arguments)]
async fn save<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    agency: &AgencyScope,
    id: &str,
    version: i64,
    name: &str,
    spec: Spec,
) -> ApiResult<Response> {
    let spec = serde_json::to_string(&spec.checked()?).map_err(|e| ApiError::Internal(e.to_string()))?;
    let action = if version == 1 { "template.created" } else { "template.version_added" };
    let stmts = [
        Stmt::new(
            INSERT_VERSION,
            vec![
                id.into(),
                agency.id().into(),
                Param::Int(version),
                name.into(),
                spec.into(),
                who.user_id.as_str().into(),
                Param::Int(ctx.p.now_ms()),
            ],
        ),
        audit::entry_if_changed(ctx, req, who, event(agency, action, id, version))?,
    ];
    if ctx.p.batch(&stmts).await?.first().copied().unwrap_or(0) == 0 {
        return Err(ApiError::Conflict(
            "version_conflict",
            "another version of this template was saved at the same time; reload and save again".into(),
        ));
    }
    get_version(ctx, agency, id, None).await.map(|v| Response::json(201, &v))
}

/// `GET /api/agencies/{id}/templates/{template_id}[?version=N]`: one version (the latest by
/// default), every version's number, and how many live clients were made from it.
pub async fn get<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    agency_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (agency, _) = access::agency(ctx, req, who, agency_id, Permission::ClientsRead).await?;
    let version = match req.query_param("version") {
        None => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| ApiError::bad_request("invalid_version", "version is a number"))?),
    };
    Ok(Response::json(200, &get_version(ctx, &agency, id, version).await?))
}

async fn get_version<P: Platform>(
    ctx: &Ctx<'_, P>,
    agency: &AgencyScope,
    id: &str,
    version: Option<i64>,
) -> ApiResult<Value> {
    let all = versions(ctx.p, agency.id(), id).await?;
    let one = match version {
        None => all.last(),
        Some(v) => all.iter().find(|t| t.version == v),
    }
    .ok_or(ApiError::NotFound)?;
    let clients = ctx.p.query(CLIENTS_ON, &[agency.id().into(), id.into()]).await?;
    let mut out = one.to_json();
    out["latest_version"] = json!(all.last().map(|t| t.version));
    out["versions"] = all
        .iter()
        .map(|t| json!({"version": t.version, "name": t.name, "created_by": t.created_by, "created_at": t.created_at}))
        .collect();
    out["clients"] = json!(clients.first().and_then(|r| col_i64(r, "n")).unwrap_or(0));
    Ok(out)
}

/// Where a template's statements land: the client, its agency, the template version the client
/// is set on, and the instant the batch sets it (`updated_at`), which every statement checks.
pub struct Target<'a> {
    pub client_id: &'a str,
    pub agency_id: &'a str,
    pub version: i64,
    pub now: i64,
}

/// What sets a new client up from a template's spec, for the batch that inserts the client (its
/// plan, flags and integrations go in the client's own row): its branding, and the hold of its
/// shard's pipelines and services. The hold's statement goes right after the insert's audit row.
pub fn provision(spec: &Spec, to: &Target<'_>, by: &str) -> ApiResult<(Vec<Stmt>, Hold)> {
    let mut stmts = Vec::new();
    if !spec.branding.is_empty() {
        let row = spec.branding.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        stmts.push(set_branding(&row, to, by));
    }
    let mut hold = Hold::new(to.client_id)?;
    for p in &spec.pipelines {
        for s in add_pipeline(p, &p.stages, None, to)? {
            hold.push_stmt(s)?;
        }
    }
    for s in &spec.services {
        hold.push_stmt(add_service(s, to)?)?;
    }
    Ok((stmts, hold))
}

/// The client's branding row as `row` has it (`branding::FIELDS`), guarded like the rest.
fn set_branding(row: &crate::platform::ports::Row, to: &Target<'_>, by: &str) -> Stmt {
    let text = |f: &str| -> Param { row.get(f).and_then(Value::as_str).map(String::from).into() };
    let mut params = vec![to.client_id.into()];
    params.extend(branding::FIELDS.iter().map(|f| text(f)));
    params.extend([by.into(), Param::Int(to.now), to.agency_id.into(), Param::Int(to.version)]);
    Stmt::new(SET_BRANDING, params)
}

/// A pipeline (new unless `existing` names it) and the given stages appended to it.
fn add_pipeline(p: &PipelineSpec, stages: &[String], existing: Option<&str>, to: &Target<'_>) -> ApiResult<Vec<Stmt>> {
    let mut stmts = Vec::new();
    let pipeline_id = match existing {
        Some(id) => id.to_string(),
        None => {
            let id = new_id("pipe")?;
            stmts.push(Stmt::new(
                ADD_PIPELINE,
                vec![id.as_str().into(), to.client_id.into(), p.name.as_str().into(), Param::Int(to.now)],
            ));
            id
        }
    };
    for s in stages {
        stmts.push(Stmt::new(
            ADD_STAGE,
            vec![
                new_id("stage")?.into(),
                to.client_id.into(),
                pipeline_id.as_str().into(),
                s.as_str().into(),
                Param::Int(to.now),
                Param::Int(MAX_STAGES as i64),
            ],
        ));
    }
    Ok(stmts)
}

fn add_service(s: &ServiceBody, to: &Target<'_>) -> ApiResult<Stmt> {
    let int = |v: Option<i32>| Param::Int(v.unwrap_or(0).into());
    Ok(Stmt::new(
        ADD_SERVICE,
        vec![
            new_id("svc")?.into(),
            to.client_id.into(),
            s.name.clone().unwrap_or_default().into(),
            int(s.duration_min),
            Param::Int(s.price_minor.unwrap_or(0)),
            s.currency.clone().unwrap_or_else(|| "USD".into()).into(),
            int(s.buffer_before_min),
            int(s.buffer_after_min),
            Param::Int(s.active.unwrap_or(true).into()),
            Param::Int(to.now),
        ],
    ))
}

/// A client's `integrations` as sent: `null` (every provider) or a list of provider names;
/// stored as a JSON array, or NULL.
pub fn integrations_json(v: &Value) -> ApiResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::Array(a) => {
            let names = a
                .iter()
                .map(|n| n.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::invalid("invalid_field", "`integrations` lists provider names"))?;
            Ok(Some(json!(settings::integrations_field(&names)?).to_string()))
        }
        _ => Err(ApiError::invalid("invalid_field", "`integrations` is a list of provider names, or null for all")),
    }
}

/// What a client made from a template starts with in its own row.
pub struct Seeded {
    pub template_id: String,
    pub version: i64,
    pub plan: Option<String>,
    pub feature_flags: String,
    pub integrations: Option<String>,
    pub spec: Spec,
}

/// The latest version of an agency's template, for a client about to be made from it; a
/// foreign or unknown id is 422 `template_not_found` (the route's own resource is the client).
pub async fn seed_for<P: Platform>(ctx: &Ctx<'_, P>, agency_id: &str, id: &str) -> ApiResult<Seeded> {
    let t = versions(ctx.p, agency_id, id)
        .await?
        .pop()
        .ok_or_else(|| ApiError::invalid("template_not_found", "no template by that id in this agency"))?;
    let spec = t.spec();
    Ok(Seeded {
        template_id: t.id,
        version: t.version,
        plan: spec.plan.clone(),
        feature_flags: spec.flags_json(),
        integrations: spec.integrations.as_ref().map(|i| json!(i).to_string()),
        spec,
    })
}
