//! `/api/clients/{id}/domains`: register, list, verify and delete. The "why doesn't my widget
//! show?" explainer belongs to the widget's gate (`widget::gate::check`).

use serde_json::{json, Value};

use super::{
    apply, check_txt, collide, list_for_client, one, reload, verify_claim, DomainRow, Transition, INSERT,
    SAME_SITE_ELSEWHERE,
};
use crate::access::audit::{self, Event};
use crate::access::plans::{self, Metric};
use crate::access::{
    self,
    roles::{Permission, Principal},
};
use crate::domains::hostname::DomainPattern;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::json_body;
use crate::platform::http::{Request, Response};
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

crate::platform::body::body! {
    struct NewDomain {
        domain: String,
        purpose: String,
        scheme: Option<String>,
        port: Option<u16>,
    }
}

crate::platform::body::body! {
    #[derive(Default)]
    struct VerifyBody {
        force: bool = Default::default(),
    }
}

pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DomainsManage).await?;
    let items: Vec<Value> = list_for_client(ctx.p, &client).await?.iter().map(DomainRow::to_json).collect();
    Ok(Response::json(200, &json!({"items": items, "next_cursor": null})))
}

pub async fn delete<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DomainsManage).await?;
    let d = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let audit = audit::entry_if_changed(
        ctx,
        req,
        who,
        Event {
            tenant_id: client.id(),
            action: "domain.deleted",
            target_type: "domain",
            target_id: Some(&d.id),
            metadata: json!({"domain": d.hostname, "status": d.status}),
        },
    )?;
    ctx.p.batch(&[Stmt::new(super::DELETE, vec![client.id().into(), d.id.as_str().into()]), audit]).await?;
    ctx.tenant_changed(client.id());
    Ok(Response::new(204))
}

pub async fn verify<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DomainsManage).await?;
    let d = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let body: VerifyBody = if req.body.is_empty() { VerifyBody::default() } else { json_body(req, &[])? };
    prove(ctx, req, who, d, body.force).await
}

pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, row) = access::client(ctx, req, who, client_id, Permission::DomainsManage).await?;
    let limit = plans::limit(&row, Metric::Domains);
    let client_id = client.id();
    let body: NewDomain = json_body(req, &["client_id", "status", "id", "verification_token"])?;
    let pattern =
        DomainPattern::parse(&body.domain).map_err(|e| ApiError::Invalid(e.code(), e.message().to_string()))?;
    let purpose = match body.purpose.as_str() {
        "widget" | "portal" | "both" => body.purpose.clone(),
        _ => return Err(ApiError::invalid("invalid_purpose", "purpose must be widget, portal or both")),
    };
    if purpose != "widget" && pattern.is_wildcard() {
        return Err(ApiError::invalid("invalid_wildcard", "a portal domain must be one exact hostname"));
    }
    let scheme = match body.scheme.as_deref().unwrap_or("https") {
        s @ ("http" | "https") => s.to_string(),
        _ => return Err(ApiError::invalid("invalid_scheme", "scheme must be http or https")),
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let port = body.port.filter(|p| *p != default_port);
    if body.port == Some(0) {
        return Err(ApiError::invalid("invalid_port", "port must be 1-65535"));
    }
    let name = pattern.as_string();
    let site = super::claimable_site(&pattern)?;
    // Two tenants answering for one host would defeat the gate: refuse any overlap with what
    // other clients have *verified* in the same site, at any depth and in either direction.
    // Patterns on the same base (`x.com` and `*.x.com`) share one TXT challenge, so one proof
    // would serve both tenants: refuse those too. Unproved claims block nobody; the first to
    // verify wins, and verification itself re-checks this inside its statement.
    let held: Vec<DomainRow> = ctx.p.query_as(SAME_SITE_ELSEWHERE, &[site.as_str().into(), client_id.into()]).await?;
    let clash = held
        .iter()
        .filter(|d| d.status == "verified")
        .filter_map(DomainRow::pattern)
        .any(|other| collide(&other, &pattern));
    if clash {
        return Err(ApiError::conflict(
            "domain_taken",
            "this domain, or one covering it, is verified by another client",
        ));
    }
    let id = crate::platform::ids::new_id("dom")?;
    let token = crate::platform::ids::new_token("gatehouse-verify=")?;
    let now = ctx.p.now_ms();
    let mut stmts = vec![
        Stmt::new(
            INSERT,
            vec![
                id.as_str().into(),
                client_id.into(),
                name.as_str().into(),
                site.into(),
                scheme.into(),
                port.map(i64::from).into(),
                purpose.into(),
                token.into(),
                Param::Int(now),
                Param::Int(limit),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client_id,
                action: "domain.created",
                target_type: "domain",
                target_id: Some(&id),
                metadata: json!({"domain": name, "status": "pending"}),
            },
        )?,
    ];
    stmts.extend(plans::crossing(&audit::actor(req, Some(who)), client_id, Metric::Domains, limit, &id, 1, now)?);
    let changed = ctx.p.batch(&stmts).await.map_err(|e| match e {
        crate::platform::error::StoreError::Conflict(_) => {
            ApiError::conflict("domain_exists", "this client has already registered this domain")
        }
        other => other.into(),
    })?;
    if changed.first().copied().unwrap_or(0) == 0 {
        return Err(plans::exceeded(Metric::Domains, limit));
    }
    let d = one(ctx.p, &client, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(201, &d.to_json()))
}

async fn prove<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    d: DomainRow,
    force: bool,
) -> ApiResult<Response> {
    let actor = audit::actor(req, Some(who));
    let proved = if force {
        if !who.is_platform_admin() {
            return Err(ApiError::Forbidden("forbidden_field", "only platform admins may force-verify".into()));
        }
        Some(("domain.force_verified", "admin", Some("verified by a platform admin".to_string())))
    } else {
        let proof = check_txt(ctx.p, &ctx.cfg.doh_resolver_url, &d.challenge_name(), &d.verification_token).await?;
        let failed = |reason: String| Transition {
            domain: &d,
            status: "failed",
            reason: Some(reason),
            failures: d.consecutive_failures,
            action: "domain.verification_failed",
        };
        let t = proof.failure(&d.challenge_name()).map(failed);
        match t {
            // A verified domain that fails a manual re-verify keeps serving until the scheduled
            // job lapses it; only pending, failed and lapsed domains move to failed here.
            Some(t) => {
                if d.status != "verified" {
                    apply(ctx, &actor, t).await?;
                }
                None
            }
            None => Some(("domain.verified", "dns", None)),
        }
    };
    if let Some((action, by, reason)) = proved {
        if !verify_claim(ctx, &actor, &d, action, by, reason).await? {
            let t = Transition {
                domain: &d,
                status: "failed",
                reason: Some("another tenant verified an overlapping domain first".into()),
                failures: d.consecutive_failures,
                action: "domain.verification_failed",
            };
            apply(ctx, &actor, t).await?;
            return Err(ApiError::conflict(
                "domain_taken",
                "another tenant verified this domain, or one overlapping it, first",
            ));
        }
    }
    let d = reload(ctx.p, &d).await?;
    Ok(Response::json(200, &d.to_json()))
}
