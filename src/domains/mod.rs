//! Verified domains: registration rules, DNS-over-HTTPS proof of ownership, the status
//! lifecycle (pending → verified | failed, verified → lapsed) and the scheduled re-check.

pub mod agency;
pub mod api;
pub mod hostname;
pub mod origin;
pub mod psl;

use serde_json::{json, Value};

use crate::access::audit::Event;
use crate::access::events::Kind;
use crate::access::relay::{self, Hold, Write};
use crate::access::store::ClientRow;
use crate::access::ClientScope;
use crate::domains::hostname::DomainPattern;
use crate::domains::origin::{OriginRule, Scheme};
use crate::platform::dns::{self, Lookup};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::ports::{decode, Database, Outbound, Param, Platform, Stmt};
use crate::platform::Ctx;

pub const CHALLENGE_LABEL: &str = "_gatehouse-challenge";
/// Verified domains re-checked per scheduled run: bounded, so one run stays well inside limits.
pub const RECHECK_BATCH: i64 = 50;

pub const LIST_FOR_CLIENT: &str = "SELECT id, client_id, hostname, scheme, port, purpose, status, status_reason, \
    verified_by, verification_token, consecutive_failures, verified_at, last_checked_at, created_at, updated_at FROM domains \
    WHERE client_id = ?1 ORDER BY hostname";
pub const SELECT_ONE: &str = "SELECT id, client_id, hostname, scheme, port, purpose, status, status_reason, \
    verified_by, verification_token, consecutive_failures, verified_at, last_checked_at, created_at, updated_at FROM domains \
    WHERE client_id = ?1 AND id = ?2";
/// Refused inside the statement once the client holds its plan's number of domains (?10).
pub const INSERT: &str = "INSERT INTO domains (id, client_id, hostname, site, scheme, port, purpose, status, \
    verification_token, created_at, updated_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?9 \
    WHERE (SELECT count(*) FROM domains WHERE client_id = ?2) < ?10";
pub const SET_STATUS: &str = "UPDATE domains SET status = ?3, status_reason = ?4, consecutive_failures = ?5, \
    verified_at = ?6, last_checked_at = ?7, updated_at = ?7, verified_by = ?8 WHERE client_id = ?1 AND id = ?2";
pub const DELETE: &str = "DELETE FROM domains WHERE client_id = ?1 AND id = ?2";
/// Other clients' claims in the same site (eTLD+1): the only ones that can overlap. Global by
/// design: uniqueness spans tenants. Only verified claims block; unproved ones lose the race.
pub const SAME_SITE_ELSEWHERE: &str = "SELECT id, client_id, hostname, scheme, port, purpose, status, status_reason, \
    verified_by, verification_token, consecutive_failures, verified_at, last_checked_at, created_at, updated_at \
    FROM domains WHERE site = ?1 AND client_id <> ?2";
/// Verifies a claim only if no other client holds a verified claim overlapping it (and, for a
/// portal, no agency has verified the hostname as its portal), decided inside
/// the statement so two verifications racing for overlapping names cannot both win. ?6 is the
/// claim's base name, ?7 whether it is a wildcard and ?8 its site; another claim's base `ob` overlaps when it
/// is the same name, when it is a wildcard above ours, or when ours is a wildcard above it.
pub const VERIFY_GUARDED: &str = "UPDATE domains SET status = 'verified', status_reason = ?3, \
    consecutive_failures = 0, verified_at = coalesce(verified_at, ?4), last_checked_at = ?4, updated_at = ?4, \
    verified_by = ?5 WHERE client_id = ?1 AND id = ?2 AND NOT EXISTS (SELECT 1 FROM (SELECT \
      CASE WHEN substr(o.hostname, 1, 2) = '*.' THEN substr(o.hostname, 3) ELSE o.hostname END AS ob, \
      substr(o.hostname, 1, 2) = '*.' AS ow FROM domains o \
      WHERE o.site = ?8 AND o.client_id <> ?1 AND o.status = 'verified') \
    WHERE ob = ?6 OR (ow AND substr(?6, -length(ob) - 1) = '.' || ob) \
      OR (?7 AND substr(ob, -length(?6) - 1) = '.' || ?6)) \
    AND NOT (domains.purpose IN ('portal', 'both') AND EXISTS (SELECT 1 FROM agency_domains ad \
      WHERE ad.hostname = domains.hostname AND ad.status = 'verified'))";
/// A rival's unproved claim loses once ours is verified (checked in the same batch).
pub const FAIL_RIVAL: &str = "UPDATE domains SET status = 'failed', status_reason = ?3, updated_at = ?4 \
    WHERE client_id = ?1 AND id = ?2 AND status IN ('pending', 'failed', 'lapsed') \
    AND EXISTS (SELECT 1 FROM domains w WHERE w.client_id = ?5 AND w.id = ?6 AND w.status = 'verified')";
/// Unproved claims older than the cutoff, for the scheduled sweep. Platform-wide by design.
pub const EXPIRED_PENDING: &str = "SELECT id, client_id, hostname, scheme, port, purpose, status, status_reason, \
    verified_by, verification_token, consecutive_failures, verified_at, last_checked_at, created_at, updated_at \
    FROM domains WHERE status = 'pending' AND created_at < ?1 ORDER BY created_at LIMIT ?2";
/// The whole client row, as `store::SELECT_CLIENT` reads it: a portal's client becomes its
/// members' home client, whose plan, limits and integrations the request acts under.
pub const PORTAL_OWNER: &str = "SELECT c.id, c.agency_id, c.name, c.slug, c.business_type, c.kind, c.email, c.phone, \
    c.website, c.status, c.plan, c.feature_flags, c.test_mode, c.publishable_key, c.time_zone, c.require_mfa, \
    c.limits, c.deleted_at, c.purge_after, c.template_id, c.template_version, c.integrations, c.shard, c.created_at, \
    c.updated_at, a.status AS agency_status FROM domains d JOIN clients c ON c.id = d.client_id JOIN agencies a ON a.id = c.agency_id \
    WHERE d.hostname = ?1 AND d.status = 'verified' AND d.purpose IN ('portal', 'both')";
/// Verified domains due for a re-check, oldest check first. A platform-wide job, by design.
pub const DUE_FOR_RECHECK: &str = "SELECT id, client_id, hostname, scheme, port, purpose, status, status_reason, \
    verified_by, verification_token, consecutive_failures, verified_at, last_checked_at, created_at, updated_at FROM domains \
    WHERE status = 'verified' AND verified_by = 'dns' AND (last_checked_at IS NULL OR last_checked_at < ?1) \
    ORDER BY last_checked_at LIMIT ?2";

crate::platform::rows::row! {
    #[derive(Debug, Clone)]
    pub struct DomainRow {
        pub id: String,
        pub client_id: String,
        pub hostname: String,
        pub scheme: String,
        pub port: Option<i64>,
        pub purpose: String,
        pub status: String,
        pub status_reason: Option<String>,
        pub verified_by: Option<String>,
        pub verification_token: String,
        pub consecutive_failures: i64,
        pub verified_at: Option<i64>,
        pub last_checked_at: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

impl DomainRow {
    pub fn pattern(&self) -> Option<DomainPattern> {
        DomainPattern::from_stored(&self.hostname)
    }

    pub fn rule(&self) -> Option<OriginRule> {
        rule_from(&self.hostname, &self.scheme, self.port)
    }

    pub fn challenge_name(&self) -> String {
        let base = self.pattern().map(|p| p.base().as_str().to_string()).unwrap_or_else(|| self.hostname.clone());
        format!("{CHALLENGE_LABEL}.{base}")
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "client_id": self.client_id,
            "domain": self.hostname,
            "origin": self.rule().map(|r| r.to_string()),
            "scheme": self.scheme,
            "port": self.port,
            "purpose": self.purpose,
            "status": self.status,
            "status_reason": self.status_reason,
            "verified_by": self.verified_by,
            "verification": verification_json(&self.challenge_name(), &self.verification_token),
            "consecutive_failures": self.consecutive_failures,
            "verified_at": self.verified_at,
            "last_checked_at": self.last_checked_at,
            "created_at": self.created_at,
        })
    }
}

/// The origin rule a stored domain stands for.
pub fn rule_from(hostname: &str, scheme: &str, port: Option<i64>) -> Option<OriginRule> {
    let scheme = if scheme == "http" { Scheme::Http } else { Scheme::Https };
    let port = port.and_then(|p| u16::try_from(p).ok());
    Some(OriginRule::new(DomainPattern::from_stored(hostname)?, scheme, port))
}

pub async fn list_for_client(db: &impl Database, client: &ClientScope) -> ApiResult<Vec<DomainRow>> {
    Ok(db.query_as(LIST_FOR_CLIENT, &[client.id().into()]).await?)
}

pub async fn one(db: &impl Database, client: &ClientScope, id: &str) -> ApiResult<Option<DomainRow>> {
    if !crate::platform::ids::looks_like_id(id, "dom") {
        return Ok(None);
    }
    Ok(db.query_first(SELECT_ONE, &[client.id().into(), id.into()]).await?)
}

/// A domain row read again after a change, by the ids it was loaded with.
async fn reload(db: &impl Database, d: &DomainRow) -> ApiResult<DomainRow> {
    let row = db.query(SELECT_ONE, &[d.client_id.as_str().into(), d.id.as_str().into()]).await?.into_iter().next();
    row.map(decode).transpose()?.ok_or(ApiError::NotFound)
}

pub enum PortalOwner {
    Client(Box<ClientRow>),
    Agency(crate::access::store::Agency),
}

/// The tenant whose verified portal domain this host is, if any: a client's, else an agency's
/// (a hostname is verified for one of them at most, decided in each verifying statement).
pub async fn portal_owner<P: Platform>(ctx: &Ctx<'_, P>, host: &str) -> ApiResult<Option<PortalOwner>> {
    let row = ctx.p.query(PORTAL_OWNER, &[host.into()]).await?.into_iter().next();
    if let Some(c) = row.map(decode).transpose()? {
        return Ok(Some(PortalOwner::Client(Box::new(c))));
    }
    Ok(agency::portal_owner(ctx, host).await?.map(PortalOwner::Agency))
}

/// The registrable domain (eTLD+1) a claim lives in, once it has one that is not a consumer mail
/// provider's: the checks every claim passes, a client's or an agency's.
pub fn claimable_site(pattern: &DomainPattern) -> ApiResult<String> {
    let site = pattern
        .site()
        .ok_or_else(|| ApiError::invalid("public_suffix_not_allowed", "this name has no registrable domain"))?;
    if is_consumer_domain(&site) {
        return Err(ApiError::invalid(
            "consumer_domain",
            format!("{site} is a consumer mail provider's domain; register a domain you own"),
        ));
    }
    Ok(site)
}

/// The TXT record that proves a claim, as the API shows it.
pub fn verification_json(name: &str, token: &str) -> Value {
    json!({
        "type": "TXT",
        "name": name,
        "value": token,
        "instructions": format!("Create a DNS TXT record named {name} with the value {token}, then call verify."),
    })
}

const CONSUMER_MAIL_DOMAINS: &str = include_str!("../../data/consumer_mail_domains.txt");

/// Whether a registrable domain (eTLD+1) is a consumer or free-mail provider's, from
/// `data/consumer_mail_domains.txt`. A `name.*` entry matches `name` under any public suffix:
/// the site's first label is `name` and the rest is the suffix.
pub fn is_consumer_domain(site: &str) -> bool {
    let first_label = site.split('.').next().unwrap_or("");
    CONSUMER_MAIL_DOMAINS.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).any(|entry| {
        match entry.strip_suffix(".*") {
            Some(name) => first_label == name,
            None => site == entry,
        }
    })
}

/// What the resolver said about the challenge record.
#[derive(Debug, PartialEq)]
pub enum Proof {
    Found,
    Missing,
    Mismatch,
}

impl Proof {
    /// Why a claim whose challenge record is at `name` failed its proof; None when it passed.
    pub fn failure(&self, name: &str) -> Option<String> {
        match self {
            Proof::Found => None,
            Proof::Missing => Some(format!("no TXT record found at {name}")),
            Proof::Mismatch => Some(format!("the TXT record at {name} does not hold the expected token")),
        }
    }
}

/// Reads TXT records over DNS-over-HTTPS and looks for the token.
pub async fn check_txt(out: &impl Outbound, resolver: &str, name: &str, token: &str) -> ApiResult<Proof> {
    let values: Vec<String> = match dns::query(out, resolver, name, "TXT").await? {
        Lookup::NoSuchName => return Ok(Proof::Missing),
        Lookup::Records(records) => records.iter().filter(|r| r.rtype == 16).map(|r| txt_value(&r.data)).collect(),
    };
    Ok(if values.is_empty() {
        Proof::Missing
    } else if values.iter().any(|v| v == token) {
        Proof::Found
    } else {
        Proof::Mismatch
    })
}

/// A TXT record's presentation form is one or more quoted strings; their contents concatenate.
pub fn txt_value(data: &str) -> String {
    let data = data.trim();
    if !data.starts_with('"') {
        return data.to_string();
    }
    let mut out = String::new();
    let mut chars = data.chars();
    let mut inside = false;
    while let Some(c) = chars.next() {
        match (c, inside) {
            ('"', _) => inside = !inside,
            ('\\', true) => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (c, true) => out.push(c),
            _ => {}
        }
    }
    out
}

/// A status change, its audit row, and the cache invalidation that goes with it.
pub struct Transition<'a> {
    pub domain: &'a DomainRow,
    pub status: &'a str,
    pub reason: Option<String>,
    pub failures: i64,
    pub action: &'a str,
}

impl Transition<'_> {
    /// Who vouches for a verified domain: the DNS proof, or a platform admin.
    fn verified_by(&self) -> Option<&'static str> {
        match (self.status, self.action) {
            ("verified", "domain.force_verified") => Some("admin"),
            ("verified", _) => Some("dns"),
            _ => None,
        }
    }
}

pub async fn apply<P: Platform>(
    ctx: &Ctx<'_, P>,
    actor: &crate::access::audit::Actor,
    t: Transition<'_>,
) -> ApiResult<()> {
    let now = ctx.p.now_ms();
    let d = t.domain;
    let verified_at = if t.status == "verified" && d.status != "verified" { Some(now) } else { d.verified_at };
    let mut stmts = vec![Stmt::new(
        SET_STATUS,
        vec![
            d.client_id.as_str().into(),
            d.id.as_str().into(),
            t.status.into(),
            t.reason.clone().into(),
            Param::Int(t.failures),
            verified_at.into(),
            Param::Int(now),
            t.verified_by().into(),
        ],
    )];
    let mut held = None;
    if t.status != d.status || t.action == "domain.force_verified" {
        stmts.push(crate::access::audit::after_change(
            actor,
            Event {
                tenant_id: &d.client_id,
                action: t.action,
                target_type: "domain",
                target_id: Some(&d.id),
                metadata: json!({"domain": d.hostname, "from": d.status, "to": t.status, "reason": t.reason}),
            },
            now,
        )?);
        let kind = match t.status {
            "verified" if d.status != "verified" => Some(Kind::DomainVerified),
            "lapsed" => Some(Kind::DomainLapsed),
            _ => None,
        };
        if let Some(kind) = kind {
            let hold = event_hold(d, kind, event_data(d, t.reason.as_deref()), now)?;
            stmts.push(hold.stmt(now));
            held = Some(hold);
        }
    }
    ctx.p.batch(&stmts).await?;
    ctx.tenant_changed(&d.client_id);
    if let Some(h) = &held {
        relay::apply(ctx, h).await;
    }
    Ok(())
}

/// A domain's event, for the client's shard: held by the batch of the change it announces (after
/// that change's audit row, so only if it happened) and applied after (`access::relay`).
fn event_hold(d: &DomainRow, kind: Kind, data: Value, now: i64) -> ApiResult<Hold> {
    let mut hold = Hold::new(&d.client_id)?;
    hold.push(
        Write::Event,
        vec![
            crate::platform::ids::new_id("evt")?.into(),
            d.client_id.as_str().into(),
            kind.as_str().into(),
            data.to_string().into(),
            Param::Int(now),
        ],
    );
    Ok(hold)
}

/// A domain as an event carries it.
fn event_data(d: &DomainRow, reason: Option<&str>) -> Value {
    json!({"domain": {"id": d.id, "hostname": d.hostname, "previous_status": d.status, "reason": reason}})
}

/// Whether two stored claims collide: they overlap, or share a base (`x.com` and `*.x.com`
/// prove themselves with one TXT record).
pub fn collide(a: &DomainPattern, b: &DomainPattern) -> bool {
    a.overlaps(b) || a.base() == b.base()
}

/// Marks a claim verified, unless another client already holds a verified claim colliding with
/// it (decided inside the statement). In the same batch, other clients' unproved claims that
/// collide with it turn `failed`, each with its own audit row in its own tenant. Returns false
/// when another client won.
pub async fn verify_claim<P: Platform>(
    ctx: &Ctx<'_, P>,
    actor: &crate::access::audit::Actor,
    d: &DomainRow,
    action: &str,
    verified_by: &str,
    reason: Option<String>,
) -> ApiResult<bool> {
    let pattern = d.pattern().ok_or_else(|| ApiError::Internal(format!("stored domain {} is invalid", d.id)))?;
    let site = pattern.site().ok_or_else(|| ApiError::Internal(format!("stored domain {} has no site", d.id)))?;
    let now = ctx.p.now_ms();
    let rivals: Vec<DomainRow> =
        ctx.p.query_as(SAME_SITE_ELSEWHERE, &[site.as_str().into(), d.client_id.as_str().into()]).await?;
    let mut stmts = vec![
        Stmt::new(
            VERIFY_GUARDED,
            vec![
                d.client_id.as_str().into(),
                d.id.as_str().into(),
                reason.clone().into(),
                Param::Int(now),
                verified_by.into(),
                pattern.base().as_str().into(),
                pattern.is_wildcard().into(),
                site.as_str().into(),
            ],
        ),
        crate::access::audit::after_change(
            actor,
            Event {
                tenant_id: &d.client_id,
                action,
                target_type: "domain",
                target_id: Some(&d.id),
                metadata: json!({"domain": d.hostname, "from": d.status, "to": "verified", "reason": reason}),
            },
            now,
        )?,
    ];
    // Re-proving (or forcing) a domain that is already verified is a refresh, not a new event.
    let held = if d.status != "verified" {
        let hold = event_hold(d, Kind::DomainVerified, event_data(d, reason.as_deref()), now)?;
        stmts.push(hold.stmt(now));
        Some(hold)
    } else {
        None
    };
    let lost = format!("another client verified {} first, and it overlaps this domain", d.hostname);
    for r in rivals.iter().filter(|r| r.status != "verified") {
        if !r.pattern().is_some_and(|p| collide(&p, &pattern)) {
            continue;
        }
        stmts.push(Stmt::new(
            FAIL_RIVAL,
            vec![
                r.client_id.as_str().into(),
                r.id.as_str().into(),
                lost.as_str().into(),
                Param::Int(now),
                d.client_id.as_str().into(),
                d.id.as_str().into(),
            ],
        ));
        stmts.push(crate::access::audit::after_change(
            actor,
            Event {
                tenant_id: &r.client_id,
                action: "domain.claim_lost",
                target_type: "domain",
                target_id: Some(&r.id),
                metadata: json!({"domain": r.hostname, "from": r.status, "to": "failed", "reason": lost}),
            },
            now,
        )?);
    }
    let won = match ctx.p.batch_changed(&stmts).await {
        Ok(changed) => changed,
        // The partial unique index on verified hostnames: an identical name won the race.
        Err(crate::platform::error::StoreError::Conflict(_)) => false,
        Err(e) => return Err(e.into()),
    };
    ctx.tenant_changed(&d.client_id);
    if let Some(h) = held.as_ref().filter(|_| won) {
        relay::apply(ctx, h).await;
    }
    Ok(won)
}

/// The scheduled sweep: unproved claims older than the configured days turn `failed`.
pub async fn expire_pending<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Value> {
    let ttl_ms = ctx.cfg.pending_domain_ttl_days.saturating_mul(86_400_000);
    let cutoff = ctx.p.now_ms() - ttl_ms;
    let due: Vec<DomainRow> = ctx.p.query_as(EXPIRED_PENDING, &[Param::Int(cutoff), Param::Int(RECHECK_BATCH)]).await?;
    let actor = system_actor();
    for d in &due {
        let reason = format!(
            "the claim expired: no TXT record proved it within {} days; register it again to retry",
            ctx.cfg.pending_domain_ttl_days
        );
        let t = Transition { domain: d, status: "failed", reason: Some(reason), failures: 0, action: "domain.expired" };
        apply(ctx, &actor, t).await?;
    }
    Ok(json!({"expired": due.len()}))
}

pub(crate) fn system_actor() -> crate::access::audit::Actor {
    crate::access::audit::Actor {
        user_id: None,
        role: Some("system".into()),
        ip: "scheduled".into(),
        user_agent: "cron".into(),
    }
}

/// The scheduled job: re-check verified domains not checked in the last `min_age_ms`; a record
/// missing for `lapse_after_failures` checks in a row lapses the domain.
pub async fn recheck<P: Platform>(ctx: &Ctx<'_, P>, min_age_ms: i64) -> ApiResult<Value> {
    let now = ctx.p.now_ms();
    let due: Vec<DomainRow> =
        ctx.p.query_as(DUE_FOR_RECHECK, &[Param::Int(now - min_age_ms), Param::Int(RECHECK_BATCH)]).await?;
    let actor = system_actor();
    let (mut ok, mut missing, mut lapsed, mut errors) = (0, 0, 0, 0);
    for d in &due {
        let proof = match check_txt(ctx.p, &ctx.cfg.doh_resolver_url, &d.challenge_name(), &d.verification_token).await
        {
            Ok(p) => p,
            Err(e) => {
                // A resolver outage is not the customer's fault: no strike.
                ctx.p.log("warn", &format!("recheck {}: {e}", d.id));
                errors += 1;
                continue;
            }
        };
        let t = if proof == Proof::Found {
            ok += 1;
            Transition { domain: d, status: "verified", reason: None, failures: 0, action: "domain.rechecked" }
        } else {
            let failures = d.consecutive_failures + 1;
            if failures >= ctx.cfg.lapse_after_failures {
                lapsed += 1;
                let reason = format!("TXT record at {} missing for {failures} consecutive checks", d.challenge_name());
                Transition { domain: d, status: "lapsed", reason: Some(reason), failures, action: "domain.lapsed" }
            } else {
                missing += 1;
                Transition {
                    domain: d,
                    status: "verified",
                    reason: d.status_reason.clone(),
                    failures,
                    action: "domain.rechecked",
                }
            }
        };
        apply(ctx, &actor, t).await?;
    }
    Ok(
        json!({"checked": due.len(), "still_verified": ok, "missing": missing, "lapsed": lapsed, "resolver_errors": errors}),
    )
}
