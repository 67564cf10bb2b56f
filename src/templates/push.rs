//! Pushing a template version to the live clients made from the template.
//!
//! Each client is on some version (its base). For each part of the pushed version that differs
//! from the base, the push compares the client's current value with the base's:
//! - plan, feature flags and branding fields: the new value applies only where the client still
//!   has the base's value; a value changed since is kept and reported as skipped;
//! - pipelines, stages, services and enabled integrations: what the new version adds is created,
//!   unless the client removed it since (it was in the base and is gone) or already has one by
//!   that name.
//!
//! A client's changes, its new version, its audit row and the hold of its shard's additions
//! commit in one batch (`access::relay`); the additions are applied to the shard right after. The
//! version only moves forward from the one the push read, so two pushes at once cannot both
//! apply; the additions are idempotent by name besides.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{add_pipeline, add_service, set_branding, versions, PipelineSpec, Spec, Target, Template};
use crate::access::audit::{self, Event};
use crate::access::relay::{self, Hold};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, plans};
use crate::crm::pipelines::MAX_STAGES;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::json_body;
use crate::platform::http::{Request, Response};
use crate::platform::ports::{Param, Platform, Row, Stmt};
use crate::platform::Ctx;

pub const CLIENTS_FROM: &str =
    "SELECT id, plan, feature_flags, integrations, template_version, updated_at FROM clients \
    WHERE agency_id = ?1 AND template_id = ?2 AND deleted_at IS NULL AND id > ?3 ORDER BY id LIMIT ?4";
/// A client's pipelines (with stage names) and service names, from its shard.
pub const CURRENT: &str = "SELECT \
    (SELECT json_group_array(json_object('id', p.id, 'name', p.name, 'stages', \
      json((SELECT json_group_array(s.name) FROM pipeline_stages s WHERE s.client_id = ?1 AND s.pipeline_id = p.id)))) \
      FROM pipelines p WHERE p.client_id = ?1) AS pipelines, \
    (SELECT json_group_array(name) FROM services WHERE client_id = ?1) AS services";
/// A client's own branding, from the control plane.
pub const CURRENT_BRANDING: &str = "SELECT json_object('primary_color', primary_color, \
    'secondary_color', secondary_color, 'tagline', tagline, 'support_email', support_email, \
    'support_phone', support_phone, 'logo_file_id', logo_file_id, 'favicon_file_id', favicon_file_id, \
    'custom_css', custom_css) AS branding, updated_at AS branding_updated_at FROM branding WHERE owner_id = ?1";
/// Moves a client from the version the push read to the pushed one, with the scalar changes,
/// only if neither the client row nor its branding changed since the push read them (so no
/// value the merge kept is overwritten, and a concurrent push cannot also apply).
pub const ADVANCE: &str = "UPDATE clients SET plan = ?3, feature_flags = ?4, integrations = ?5, \
    template_version = ?6, updated_at = ?7 WHERE agency_id = ?1 AND id = ?2 AND template_id = ?8 \
    AND template_version = ?9 AND updated_at = ?10 AND deleted_at IS NULL \
    AND coalesce((SELECT b.updated_at FROM branding b WHERE b.owner_id = ?2), 0) = ?11";

/// Clients per push call; the answer's `next_cursor` continues.
const PAGE: i64 = 25;

crate::platform::body::body! {
    struct PushBody {
        version: Option<i64>,
        cursor: Option<String>,
    }
}

crate::platform::rows::row! {
    struct ClientOnTemplate {
        id: String,
        plan: String,
        feature_flags: String,
        integrations: Option<String>,
        template_version: Option<i64>,
        updated_at: i64,
    }
}

crate::platform::rows::row! {
    struct Current {
        pipelines: Option<String>,
        services: Option<String>,
    }
}

crate::platform::rows::row! {
    #[derive(Default)]
    struct CurrentBranding {
        branding: Option<String>,
        branding_updated_at: Option<i64>,
    }
}

crate::platform::body::body! {
    struct CurrentPipeline {
        id: String,
        name: String,
        stages: Vec<Option<String>>,
    }
}

/// What one client's push does: its statements after `ADVANCE`, and the report. An addition
/// with a label is reported applied only if its statement changed a row.
#[derive(Default)]
struct Plan {
    plan: Option<String>,
    flags: Map<String, Value>,
    integrations: Option<Vec<String>>,
    branding: Option<Row>,
    additions: Vec<(Stmt, Option<String>)>,
    applied: Vec<String>,
    skipped: Vec<Value>,
}

impl Plan {
    fn skip(&mut self, item: String, reason: impl Into<String>) {
        self.skipped.push(json!({"item": item, "reason": reason.into()}));
    }
}

/// `POST /api/agencies/{id}/templates/{template_id}/push` with `{"version": N, "cursor": ...}`.
pub async fn push<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    agency_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (agency, _) = access::agency(ctx, req, who, agency_id, Permission::ClientsManage).await?;
    let all = versions(ctx.p, agency.id(), id).await?;
    let latest = all.last().ok_or(ApiError::NotFound)?.version;
    let body: PushBody = json_body(req, &["id", "agency_id"])?;
    let version = body.version.unwrap_or(latest);
    let target = all
        .iter()
        .find(|t| t.version == version)
        .ok_or_else(|| ApiError::invalid("invalid_version", format!("this template has versions 1-{latest}")))?;
    let cursor = body.cursor.unwrap_or_default();
    let clients: Vec<ClientOnTemplate> =
        ctx.p.query_as(CLIENTS_FROM, &[agency.id().into(), id.into(), cursor.into(), Param::Int(PAGE)]).await?;
    let mut report = Vec::with_capacity(clients.len());
    for c in &clients {
        let from = c.template_version.unwrap_or(1);
        if from >= version {
            report.push(json!({"client_id": c.id, "from_version": from, "status": "up_to_date"}));
            continue;
        }
        let base = all.iter().find(|t| t.version == from).map(Template::spec).unwrap_or_default();
        report.push(push_one(ctx, req, who, agency.id(), id, c, &base, target).await?);
    }
    let next_cursor = (clients.len() as i64 == PAGE).then(|| clients.last().map(|c| c.id.clone())).flatten();
    Ok(Response::json(
        200,
        &json!({"template_id": id, "version": version, "clients": report, "next_cursor": next_cursor}),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn push_one<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    agency_id: &str,
    template_id: &str,
    c: &ClientOnTemplate,
    base: &Spec,
    target: &Template,
) -> ApiResult<Value> {
    let now = ctx.p.now_ms().max(c.updated_at + 1);
    let new = target.spec();
    let current: Current = ctx
        .p
        .query_first(CURRENT, &[c.id.as_str().into()])
        .await?
        .ok_or_else(|| ApiError::Internal("the current-state query returned no row".into()))?;
    let own: CurrentBranding = ctx.p.query_first(CURRENT_BRANDING, &[c.id.as_str().into()]).await?.unwrap_or_default();
    let from = c.template_version.unwrap_or(1);
    let to = Target { client_id: &c.id, agency_id, version: target.version, now };
    let mut plan = Plan {
        flags: crate::platform::body::parse(c.feature_flags.as_bytes(), "feature_flags").unwrap_or_default(),
        ..Plan::default()
    };
    scalars(&mut plan, c, base, &new);
    branding_fields(&mut plan, own.branding.as_deref(), base, &new);
    pipelines(&mut plan, current.pipelines.as_deref(), base, &new, &to)?;
    services(&mut plan, current.services.as_deref(), base, &new, &to)?;
    integrations(&mut plan, c.integrations.as_deref(), base, &new);

    let planned: Vec<String> =
        plan.applied.iter().cloned().chain(plan.additions.iter().filter_map(|(_, l)| l.clone())).collect();
    let mut stmts = vec![
        Stmt::new(
            ADVANCE,
            vec![
                agency_id.into(),
                c.id.as_str().into(),
                plan.plan.clone().unwrap_or_else(|| c.plan.clone()).into(),
                Value::Object(plan.flags.clone()).to_string().into(),
                match &plan.integrations {
                    Some(l) => json!(l).to_string().into(),
                    None => c.integrations.clone().into(),
                },
                Param::Int(target.version),
                Param::Int(now),
                template_id.into(),
                Param::Int(from),
                Param::Int(c.updated_at),
                Param::Int(own.branding_updated_at.unwrap_or(0)),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: &c.id,
                action: "client.template_pushed",
                target_type: "template",
                target_id: Some(template_id),
                metadata: json!({"from_version": from, "to_version": target.version, "applied": planned}),
            },
        )?,
    ];
    // The shard's additions are held right after the audit row (written only if the client
    // advanced), then applied once the batch commits.
    let labels: Vec<Option<String>> = plan.additions.iter().map(|(_, l)| l.clone()).collect();
    let mut hold = Hold::new(&c.id)?;
    for (s, _) in plan.additions {
        hold.push_stmt(s)?;
    }
    if !hold.is_empty() {
        stmts.push(hold.stmt(now));
    }
    if let Some(row) = &plan.branding {
        stmts.push(set_branding(row, &to, &who.user_id));
    }
    let advanced = ctx.p.batch_changed(&stmts).await?;
    // `None`: the additions are held and the scheduled run applies them (by name, so one the
    // client has by then is skipped there); they are reported applied.
    let changed = if advanced && !hold.is_empty() {
        relay::apply(ctx, &hold).await.unwrap_or_else(|| vec![1; labels.len()])
    } else {
        Vec::new()
    };
    ctx.tenant_changed(&c.id);
    if !advanced {
        return Ok(json!({
            "client_id": c.id, "from_version": from, "status": "conflict", "applied": [], "skipped": plan.skipped,
            "reason": "the client changed while the push ran; push again",
        }));
    }
    let mut applied = plan.applied;
    for (i, label) in labels.into_iter().enumerate() {
        match label {
            Some(l) if changed.get(i).copied().unwrap_or(0) > 0 => applied.push(l),
            Some(l) => plan.skipped.push(json!({"item": l, "reason": "the client has one by that name already"})),
            None => {}
        }
    }
    Ok(
        json!({"client_id": c.id, "from_version": from, "status": "applied", "applied": applied, "skipped": plan.skipped}),
    )
}

/// Whether the client still holds the base's value (`base` absent: the value a client gets
/// without the template, `default`).
fn untouched<T: PartialEq>(current: Option<&T>, base: Option<&T>, default: Option<&T>) -> bool {
    current == base.or(default)
}

fn scalars(plan: &mut Plan, c: &ClientOnTemplate, base: &Spec, new: &Spec) {
    if let Some(p) = new.plan.as_ref().filter(|p| new.plan != base.plan && **p != c.plan) {
        let default = plans::default_plan().to_string();
        if untouched(Some(&c.plan), base.plan.as_ref(), Some(&default)) {
            plan.plan = Some(p.clone());
            plan.applied.push(format!("plan: {p}"));
        } else {
            plan.skip("plan".into(), format!("changed to {} since version {}", c.plan, version_of(c)));
        }
    }
    for (flag, on) in &new.feature_flags {
        let was = base.feature_flags.get(flag);
        let now = plan.flags.get(flag).and_then(Value::as_bool);
        if was == Some(on) || now.as_ref() == Some(on) {
            continue;
        }
        if untouched(now.as_ref(), was, None) {
            plan.flags.insert(flag.clone(), json!(on));
            plan.applied.push(format!("feature_flags.{flag}: {on}"));
        } else {
            plan.skip(format!("feature_flags.{flag}"), format!("changed since version {}", version_of(c)));
        }
    }
}

fn version_of(c: &ClientOnTemplate) -> i64 {
    c.template_version.unwrap_or(1)
}

fn branding_fields(plan: &mut Plan, current: Option<&str>, base: &Spec, new: &Spec) {
    let mut row: Row =
        current.and_then(|b| crate::platform::body::parse(b.as_bytes(), "branding").ok()).unwrap_or_default();
    let mut changed = false;
    for (field, value) in &new.branding {
        let was = base.branding.get(field);
        let now = row.get(field).and_then(Value::as_str).map(String::from);
        if was == Some(value) || now.as_ref() == Some(value) {
            continue;
        }
        if untouched(now.as_ref(), was, None) {
            row.insert(field.clone(), json!(value));
            plan.applied.push(format!("branding.{field}"));
            changed = true;
        } else {
            plan.skip(format!("branding.{field}"), "changed by the client since");
        }
    }
    if changed {
        plan.branding = Some(row);
    }
}

fn names(list: Option<&str>) -> Vec<String> {
    list.and_then(|l| crate::platform::body::parse::<Vec<Option<String>>>(l.as_bytes(), "stages").ok())
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

fn pipelines(plan: &mut Plan, current: Option<&str>, base: &Spec, new: &Spec, to: &Target<'_>) -> ApiResult<()> {
    let have: Vec<CurrentPipeline> =
        current.and_then(|p| crate::platform::body::parse(p.as_bytes(), "pipelines").ok()).unwrap_or_default();
    let had = |name: &str| base.pipelines.iter().find(|p| p.name == name);
    for p in &new.pipelines {
        let was: Option<&PipelineSpec> = had(&p.name);
        match have.iter().find(|h| h.name == p.name) {
            None if was.is_some() => plan.skip(format!("pipeline {}", p.name), "removed by the client since"),
            None => {
                let mut stmts = add_pipeline(p, &p.stages, None, to)?.into_iter();
                if let Some(first) = stmts.next() {
                    plan.additions.push((first, Some(format!("pipeline {}", p.name))));
                }
                plan.additions.extend(stmts.map(|s| (s, None)));
            }
            Some(h) => {
                let mut room = MAX_STAGES.saturating_sub(h.stages.len());
                let mut added = Vec::new();
                for s in &p.stages {
                    if h.stages.iter().flatten().any(|x| x == s) {
                        continue;
                    }
                    if was.is_some_and(|w| w.stages.contains(s)) {
                        plan.skip(format!("stage {} / {s}", p.name), "removed by the client since");
                    } else if room == 0 {
                        plan.skip(
                            format!("stage {} / {s}", p.name),
                            format!("the pipeline has {MAX_STAGES} stages already"),
                        );
                    } else {
                        room -= 1;
                        added.push(s.clone());
                    }
                }
                let stmts = add_pipeline(p, &added, Some(&h.id), to)?;
                plan.additions
                    .extend(stmts.into_iter().zip(&added).map(|(st, s)| (st, Some(format!("stage {} / {s}", p.name)))));
            }
        }
    }
    Ok(())
}

fn services(plan: &mut Plan, current: Option<&str>, base: &Spec, new: &Spec, to: &Target<'_>) -> ApiResult<()> {
    let have = names(current);
    for s in &new.services {
        let name = s.name.clone().unwrap_or_default();
        let in_base = base.services.iter().any(|b| b.name.as_deref() == Some(name.as_str()));
        match (have.contains(&name), in_base) {
            (true, true) => {}
            (true, false) => plan.skip(format!("service {name}"), "the client already has a service by that name"),
            (false, true) => plan.skip(format!("service {name}"), "removed by the client since"),
            (false, false) => plan.additions.push((add_service(s, to)?, Some(format!("service {name}")))),
        }
    }
    Ok(())
}

fn integrations(plan: &mut Plan, current: Option<&str>, base: &Spec, new: &Spec) {
    let (Some(list), Some(wanted)) = (current, &new.integrations) else {
        // The client may use every provider already, or the template does not narrow them.
        return;
    };
    let mut now: Vec<String> = crate::platform::body::parse(list.as_bytes(), "integrations").unwrap_or_default();
    let was: BTreeMap<&str, ()> = base.integrations.iter().flatten().map(|p| (p.as_str(), ())).collect();
    for p in wanted {
        if now.contains(p) {
            continue;
        }
        if was.contains_key(p.as_str()) {
            plan.skip(format!("integration {p}"), "turned off for the client since");
        } else {
            now.push(p.clone());
            plan.applied.push(format!("integration {p}"));
        }
    }
    now.sort();
    plan.integrations = Some(now);
}
