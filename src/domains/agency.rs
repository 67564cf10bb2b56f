//! `/api/agencies/{id}/domains`: an agency's own portal hostnames. Proved like a client's domains
//! (a TXT record at `_gatehouse-challenge.{hostname}`), re-checked by the scheduled job, and
//! served as the agency's portal once verified. Exact hostnames only: a portal is one host.

use serde_json::{json, Value};

use super::hostname::DomainPattern;
use super::{check_txt, system_actor, Proof, CHALLENGE_LABEL, RECHECK_BATCH};
use crate::access::audit::{self, Actor, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::store::Agency;
use crate::access::{self, AgencyScope};
use crate::platform::error::{ApiError, ApiResult, StoreError};
use crate::platform::extract::json_body;
use crate::platform::http::{Request, Response};
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

/// Portal hostnames one agency may claim at once.
pub const MAX_PER_AGENCY: i64 = 5;

pub const LIST: &str = "SELECT id, agency_id, hostname, status, status_reason, verification_token, \
    consecutive_failures, verified_at, last_checked_at, created_at, updated_at FROM agency_domains \
    WHERE agency_id = ?1 ORDER BY hostname";
pub const SELECT_ONE: &str = "SELECT id, agency_id, hostname, status, status_reason, verification_token, \
    consecutive_failures, verified_at, last_checked_at, created_at, updated_at FROM agency_domains \
    WHERE agency_id = ?1 AND id = ?2";
/// Refused inside the statement once the agency holds `MAX_PER_AGENCY` claims (?6).
pub const INSERT: &str = "INSERT INTO agency_domains (id, agency_id, hostname, status, verification_token, \
    created_at, updated_at) SELECT ?1, ?2, ?3, 'pending', ?4, ?5, ?5 \
    WHERE (SELECT count(*) FROM agency_domains WHERE agency_id = ?2) < ?6";
pub const DELETE: &str = "DELETE FROM agency_domains WHERE agency_id = ?1 AND id = ?2";
pub const SET_STATUS: &str = "UPDATE agency_domains SET status = ?3, status_reason = ?4, consecutive_failures = ?5, \
    verified_at = ?6, last_checked_at = ?7, updated_at = ?7 WHERE agency_id = ?1 AND id = ?2";
/// Verifies a claim unless another agency's verified claim, or a client's verified portal
/// domain, already holds the hostname: decided inside the statement, so two racing proofs
/// cannot both win.
pub const VERIFY_GUARDED: &str = "UPDATE agency_domains SET status = 'verified', status_reason = NULL, \
    consecutive_failures = 0, verified_at = coalesce(verified_at, ?3), last_checked_at = ?3, updated_at = ?3 \
    WHERE agency_id = ?1 AND id = ?2 \
    AND NOT EXISTS (SELECT 1 FROM agency_domains o WHERE o.hostname = agency_domains.hostname \
      AND o.agency_id <> ?1 AND o.status = 'verified') \
    AND NOT EXISTS (SELECT 1 FROM domains d WHERE d.hostname = agency_domains.hostname \
      AND d.status = 'verified' AND d.purpose IN ('portal', 'both'))";
/// Who else holds this hostname verified, for the refusal before a claim is made. Global by
/// design: a hostname is one tenant's portal.
pub const HELD_ELSEWHERE: &str = "SELECT 1 AS n FROM agency_domains WHERE hostname = ?1 AND agency_id <> ?2 \
    AND status = 'verified' UNION ALL SELECT 1 AS n FROM domains WHERE hostname = ?1 AND status = 'verified' \
    AND purpose IN ('portal', 'both') LIMIT 1";
/// The agency whose verified portal domain this host is.
pub const PORTAL_OWNER: &str = "SELECT a.id, a.name, a.slug, a.email, a.phone, a.status, a.plan, a.require_mfa, \
    a.created_at, a.updated_at, a.shard FROM agency_domains d JOIN agencies a ON a.id = d.agency_id \
    WHERE d.hostname = ?1 AND d.status = 'verified'";
/// Verified claims due for a re-check, oldest check first. A platform-wide job, by design.
pub const DUE_FOR_RECHECK: &str = "SELECT id, agency_id, hostname, status, status_reason, verification_token, \
    consecutive_failures, verified_at, last_checked_at, created_at, updated_at FROM agency_domains \
    WHERE status = 'verified' AND (last_checked_at IS NULL OR last_checked_at < ?1) \
    ORDER BY last_checked_at LIMIT ?2";

crate::platform::rows::row! {
    #[derive(Debug, Clone)]
    pub struct AgencyDomain {
        pub id: String,
        pub agency_id: String,
        pub hostname: String,
        pub status: String,
        pub status_reason: Option<String>,
        pub verification_token: String,
        pub consecutive_failures: i64,
        pub verified_at: Option<i64>,
        pub last_checked_at: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

impl AgencyDomain {
    fn challenge_name(&self) -> String {
        format!("{CHALLENGE_LABEL}.{}", self.hostname)
    }

    pub fn to_json(&self) -> Value {
        let name = self.challenge_name();
        json!({
            "id": self.id,
            "agency_id": self.agency_id,
            "domain": self.hostname,
            "purpose": "portal",
            "status": self.status,
            "status_reason": self.status_reason,
            "verification": super::verification_json(&name, &self.verification_token),
            "consecutive_failures": self.consecutive_failures,
            "verified_at": self.verified_at,
            "last_checked_at": self.last_checked_at,
            "created_at": self.created_at,
        })
    }
}

crate::platform::body::body! {
    struct NewDomain {
        domain: String,
    }
}

async fn one<P: Platform>(ctx: &Ctx<'_, P>, agency: &AgencyScope, id: &str) -> ApiResult<AgencyDomain> {
    if !crate::platform::ids::looks_like_id(id, "adm") {
        return Err(ApiError::NotFound);
    }
    ctx.p.query_first(SELECT_ONE, &[agency.id().into(), id.into()]).await?.ok_or(ApiError::NotFound)
}

/// The agency whose verified portal domain `host` is, if any.
pub async fn portal_owner<P: Platform>(ctx: &Ctx<'_, P>, host: &str) -> ApiResult<Option<Agency>> {
    Ok(ctx.p.query_first(PORTAL_OWNER, &[host.into()]).await?)
}

pub async fn list<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, id: &str) -> ApiResult<Response> {
    let (agency, _) = access::agency(ctx, req, who, id, Permission::AgenciesRead).await?;
    let rows: Vec<AgencyDomain> = ctx.p.query_as(LIST, &[agency.id().into()]).await?;
    let items: Vec<Value> = rows.iter().map(AgencyDomain::to_json).collect();
    Ok(Response::json(200, &json!({"items": items, "next_cursor": null})))
}

pub async fn create<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, id: &str) -> ApiResult<Response> {
    let (agency, _) = access::agency(ctx, req, who, id, Permission::AgenciesWrite).await?;
    let body: NewDomain = json_body(req, &["agency_id", "status", "id", "verification_token", "purpose"])?;
    let pattern =
        DomainPattern::parse(&body.domain).map_err(|e| ApiError::Invalid(e.code(), e.message().to_string()))?;
    if pattern.is_wildcard() {
        return Err(ApiError::invalid("invalid_wildcard", "a portal domain must be one exact hostname"));
    }
    let name = pattern.as_string();
    super::claimable_site(&pattern)?;
    let base = ctx.cfg.portal_base_domain.as_str();
    let platforms = ctx.cfg.api_hosts.iter().any(|h| h.split(':').next() == Some(name.as_str()));
    if platforms || name == base || name.ends_with(&format!(".{base}")) {
        return Err(ApiError::invalid("reserved_host", "this hostname belongs to the platform"));
    }
    if !ctx.p.query(HELD_ELSEWHERE, &[name.as_str().into(), agency.id().into()]).await?.is_empty() {
        return Err(taken());
    }
    let domain_id = crate::platform::ids::new_id("adm")?;
    let token = crate::platform::ids::new_token("gatehouse-verify=")?;
    let now = ctx.p.now_ms();
    let stmts = [
        Stmt::new(
            INSERT,
            vec![
                domain_id.as_str().into(),
                agency.id().into(),
                name.as_str().into(),
                token.into(),
                Param::Int(now),
                Param::Int(MAX_PER_AGENCY),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: agency.id(),
                action: "agency_domain.created",
                target_type: "agency_domain",
                target_id: Some(&domain_id),
                metadata: json!({"domain": name, "status": "pending"}),
            },
        )?,
    ];
    let changed = ctx.p.batch(&stmts).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            ApiError::conflict("domain_exists", "this agency has already registered this domain")
        }
        other => other.into(),
    })?;
    if changed.first().copied().unwrap_or(0) == 0 {
        return Err(ApiError::QuotaExceeded { metric: "portal_domains", limit: MAX_PER_AGENCY });
    }
    Ok(Response::json(201, &one(ctx, &agency, &domain_id).await?.to_json()))
}

pub async fn verify<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
    domain_id: &str,
) -> ApiResult<Response> {
    let (agency, _) = access::agency(ctx, req, who, id, Permission::AgenciesWrite).await?;
    let d = one(ctx, &agency, domain_id).await?;
    let actor = audit::actor(req, Some(who));
    let name = d.challenge_name();
    match check_txt(ctx.p, &ctx.cfg.doh_resolver_url, &name, &d.verification_token).await? {
        Proof::Found => {
            let now = ctx.p.now_ms();
            let event = Event {
                tenant_id: agency.id(),
                action: "agency_domain.verified",
                target_type: "agency_domain",
                target_id: Some(&d.id),
                metadata: json!({"domain": d.hostname, "from": d.status, "to": "verified"}),
            };
            let guarded = Stmt::new(VERIFY_GUARDED, vec![agency.id().into(), d.id.as_str().into(), Param::Int(now)]);
            let mut stmts = vec![guarded];
            if d.status != "verified" {
                stmts.push(audit::after_change(&actor, event, now)?);
            }
            let changed = ctx.p.batch(&stmts).await?;
            if changed.first().copied().unwrap_or(0) == 0 {
                let reason = "another tenant verified this hostname first";
                transition(ctx, &actor, &d, "failed", Some(reason.into()), d.consecutive_failures).await?;
                return Err(taken());
            }
        }
        // A verified domain that fails a manual re-verify keeps serving until the scheduled job
        // lapses it, as a client's does.
        proof if d.status != "verified" => {
            transition(ctx, &actor, &d, "failed", proof.failure(&name), d.consecutive_failures).await?;
        }
        _ => {}
    }
    Ok(Response::json(200, &one(ctx, &agency, &d.id).await?.to_json()))
}

pub async fn delete<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
    domain_id: &str,
) -> ApiResult<Response> {
    let (agency, _) = access::agency(ctx, req, who, id, Permission::AgenciesWrite).await?;
    let d = one(ctx, &agency, domain_id).await?;
    let audit = audit::entry_if_changed(
        ctx,
        req,
        who,
        Event {
            tenant_id: agency.id(),
            action: "agency_domain.deleted",
            target_type: "agency_domain",
            target_id: Some(&d.id),
            metadata: json!({"domain": d.hostname, "status": d.status}),
        },
    )?;
    ctx.p.batch(&[Stmt::new(DELETE, vec![agency.id().into(), d.id.as_str().into()]), audit]).await?;
    Ok(Response::new(204))
}

fn taken() -> ApiError {
    ApiError::conflict("domain_taken", "another agency or client has verified this hostname as its portal")
}

/// A status change and, when the status moved, its audit row, in one batch.
async fn transition<P: Platform>(
    ctx: &Ctx<'_, P>,
    actor: &Actor,
    d: &AgencyDomain,
    status: &str,
    reason: Option<String>,
    failures: i64,
) -> ApiResult<()> {
    let now = ctx.p.now_ms();
    let mut stmts = vec![Stmt::new(
        SET_STATUS,
        vec![
            d.agency_id.as_str().into(),
            d.id.as_str().into(),
            status.into(),
            reason.clone().into(),
            Param::Int(failures),
            d.verified_at.into(),
            Param::Int(now),
        ],
    )];
    if status != d.status {
        let action = if status == "lapsed" { "agency_domain.lapsed" } else { "agency_domain.verification_failed" };
        let metadata = json!({"domain": d.hostname, "from": d.status, "to": status, "reason": reason});
        let event =
            Event { tenant_id: &d.agency_id, action, target_type: "agency_domain", target_id: Some(&d.id), metadata };
        stmts.push(audit::after_change(actor, event, now)?);
    }
    ctx.p.batch(&stmts).await?;
    Ok(())
}

/// The scheduled re-check of verified agency portal domains, with the clients' lapse rule: the
/// record missing for `lapse_after_failures` checks in a row lapses the domain.
pub async fn recheck<P: Platform>(ctx: &Ctx<'_, P>, min_age_ms: i64) -> ApiResult<Value> {
    let now = ctx.p.now_ms();
    let due: Vec<AgencyDomain> =
        ctx.p.query_as(DUE_FOR_RECHECK, &[Param::Int(now - min_age_ms), Param::Int(RECHECK_BATCH)]).await?;
    let actor = system_actor();
    let (mut ok, mut lapsed, mut errors) = (0, 0, 0);
    for d in &due {
        let name = d.challenge_name();
        match check_txt(ctx.p, &ctx.cfg.doh_resolver_url, &name, &d.verification_token).await {
            Err(e) => {
                // A resolver outage is not the agency's fault: no strike.
                ctx.p.log("warn", &format!("recheck {}: {e}", d.id));
                errors += 1;
            }
            Ok(Proof::Found) => {
                ok += 1;
                transition(ctx, &actor, d, "verified", None, 0).await?;
            }
            Ok(_) => {
                let failures = d.consecutive_failures + 1;
                if failures >= ctx.cfg.lapse_after_failures {
                    lapsed += 1;
                    let reason = format!("TXT record at {name} missing for {failures} consecutive checks");
                    transition(ctx, &actor, d, "lapsed", Some(reason), failures).await?;
                } else {
                    transition(ctx, &actor, d, "verified", d.status_reason.clone(), failures).await?;
                }
            }
        }
    }
    Ok(json!({"checked": due.len(), "still_verified": ok, "lapsed": lapsed, "resolver_errors": errors}))
}
