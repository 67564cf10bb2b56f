//! Multi-factor authentication with TOTP (`totp`). Enrolment shows a secret as an `otpauth://`
//! URI and is confirmed with a code, which also hands out ten one-time recovery codes (stored
//! hashed). With MFA on, login is two steps: the password answers `mfa_required` with a
//! short-lived challenge token, and `POST /api/auth/login/mfa` with the challenge and a code (or a
//! recovery code) issues the session. The secret is AES-GCM sealed like settings, its associated
//! data bound to the user. A code is accepted once: the step it matched is recorded in the same
//! statement that accepts it.

use serde_json::json;

use super::users::token_hash;

use super::totp;
use crate::access::roles::Principal;
use crate::access::Site;
use crate::platform::crypto::{self, SecretContext};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::json_body;
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_token, new_id, new_token, random_bytes};
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

/// How long the second login step may take.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;
/// Wrong codes one challenge survives.
pub const CHALLENGE_ATTEMPTS: i64 = 5;
pub const RECOVERY_CODES: usize = 10;
const ISSUER: &str = "Gatehouse";

pub const USER_MFA: &str = "SELECT id, email, mfa_secret_sealed, mfa_pending_sealed, mfa_enabled_at, mfa_last_step \
    FROM users WHERE id = ?1 AND status = 'active'";
pub const SET_PENDING: &str = "UPDATE users SET mfa_pending_sealed = ?2 WHERE id = ?1 AND mfa_enabled_at IS NULL";
pub const ENABLE: &str = "UPDATE users SET mfa_secret_sealed = mfa_pending_sealed, mfa_pending_sealed = NULL, \
    mfa_enabled_at = ?2, mfa_last_step = ?3 WHERE id = ?1 AND mfa_pending_sealed = ?4 AND mfa_enabled_at IS NULL";
pub const DISABLE: &str =
    "UPDATE users SET mfa_secret_sealed = NULL, mfa_pending_sealed = NULL, mfa_enabled_at = NULL \
    WHERE id = ?1 AND mfa_enabled_at IS NOT NULL";
pub const DELETE_CODES: &str = "DELETE FROM mfa_recovery_codes WHERE user_id = ?1";
/// Each code follows the statement before it in the batch, so codes exist only if MFA was enabled.
pub const INSERT_CODE: &str =
    "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) SELECT ?1, ?2, ?3 WHERE changes() > 0";
/// Accepts a step only if it is later than every step accepted before: no code works twice.
pub const USE_STEP: &str = "UPDATE users SET mfa_last_step = ?2 WHERE id = ?1 AND mfa_last_step < ?2";
pub const USE_RECOVERY: &str = "UPDATE mfa_recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 \
    AND used_at IS NULL";
pub const INSERT_CHALLENGE: &str = "INSERT INTO mfa_challenges (id, token_hash, user_id, tenant, site, expires_at, \
    created_at, purpose) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
pub const CHALLENGE_BY_HASH: &str = "SELECT id, user_id, tenant, site, expires_at, attempts, used_at, purpose \
    FROM mfa_challenges WHERE token_hash = ?1";
/// Whether a user has MFA on, and whether the tenant (`?2`: a client, an agency or `platform`)
/// requires it: a client requires it when it or its agency does.
pub const MFA_STATE: &str = "SELECT u.mfa_enabled_at IS NOT NULL AS enabled, \
    (EXISTS (SELECT 1 FROM clients c JOIN agencies a ON a.id = c.agency_id \
       WHERE c.id = ?2 AND (c.require_mfa = 1 OR a.require_mfa = 1)) \
     OR EXISTS (SELECT 1 FROM agencies WHERE id = ?2 AND require_mfa = 1)) AS required \
    FROM users u WHERE u.id = ?1";
pub const FAIL_CHALLENGE: &str = "UPDATE mfa_challenges SET attempts = attempts + 1 WHERE id = ?1";
pub const USE_CHALLENGE: &str = "UPDATE mfa_challenges SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL \
    AND expires_at > ?2 AND attempts < ?3";

/// Where a user's TOTP secret is sealed: bound to the user, so it opens for nobody else.
fn context(user_id: &str) -> SecretContext<'_> {
    SecretContext { client_id: user_id, provider: "mfa", field: "totp" }
}

crate::platform::rows::row! {
    struct UserMfa {
        id: String,
        email: String,
        mfa_secret_sealed: Option<String>,
        mfa_pending_sealed: Option<String>,
        mfa_enabled_at: Option<i64>,
        mfa_last_step: i64,
    }
}

async fn user_mfa<P: Platform>(ctx: &Ctx<'_, P>, user_id: &str) -> ApiResult<UserMfa> {
    ctx.p.query_first(USER_MFA, &[user_id.into()]).await?.ok_or(ApiError::NotFound)
}

fn open_key<P: Platform>(ctx: &Ctx<'_, P>, user_id: &str, sealed: &str) -> ApiResult<Vec<u8>> {
    let secret = crypto::open(ctx.cfg, &context(user_id), sealed)
        .map_err(|e| ApiError::Internal(format!("MFA secret of {user_id}: {e}")))?;
    totp::from_base32(secret.expose())
        .ok_or_else(|| ApiError::Internal(format!("MFA secret of {user_id} is malformed")))
}

fn person(who: &Principal) -> ApiResult<()> {
    if who.api_key {
        return Err(ApiError::forbidden("an API key has no second factor"));
    }
    Ok(())
}

/// `POST /api/me/mfa/enrol`: a new secret, pending until confirmed, as the `otpauth://` URI an
/// authenticator app scans (and the secret itself, for typing in).
pub async fn enrol<P: Platform>(ctx: &Ctx<'_, P>, who: &Principal) -> ApiResult<Response> {
    person(who)?;
    Ok(Response::json(200, &pending_secret(ctx, &who.user_id).await?))
}

/// Stores a fresh pending secret for a user without MFA and answers `{secret, otpauth_uri}`.
async fn pending_secret<P: Platform>(ctx: &Ctx<'_, P>, user_id: &str) -> ApiResult<serde_json::Value> {
    let u = user_mfa(ctx, user_id).await?;
    if u.mfa_enabled_at.is_some() {
        return Err(ApiError::conflict("mfa_already_enabled", "MFA is on; turn it off first to enrol again"));
    }
    let secret = totp::base32(&random_bytes::<20>()?);
    let sealed = crypto::seal(ctx.cfg, &context(&u.id), &secret).map_err(|e| ApiError::Internal(e.to_string()))?;
    ctx.p.execute(SET_PENDING, &[u.id.as_str().into(), sealed.into()]).await?;
    let label: String = url::form_urlencoded::byte_serialize(format!("{ISSUER}:{}", u.email).as_bytes()).collect();
    let uri = format!(
        "otpauth://totp/{label}?secret={secret}&issuer={ISSUER}&algorithm=SHA1&digits={}&period={}",
        totp::DIGITS,
        totp::STEP_SECS
    );
    Ok(json!({"secret": secret, "otpauth_uri": uri}))
}

crate::platform::body::body! {
    struct Code {
        code: String,
    }
}

/// `POST /api/me/mfa/confirm {code}`: turns MFA on and answers the ten recovery codes, shown once.
pub async fn confirm<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    person(who)?;
    let body: Code = json_body(req, &[])?;
    let u = user_mfa(ctx, &who.user_id).await?;
    if u.mfa_enabled_at.is_some() {
        return Err(ApiError::conflict("mfa_already_enabled", "MFA is already on"));
    }
    let step = pending_step(ctx, &u, &body.code)?
        .ok_or_else(|| ApiError::invalid("invalid_mfa_code", "that code is not right; check the device's clock"))?;
    let codes = turn_on(ctx, req, who, &u, step).await?;
    Ok(Response::json(200, &json!({"enabled": true, "recovery_codes": codes})))
}

/// The step a code matches under the user's pending (enrolling) secret.
fn pending_step<P: Platform>(ctx: &Ctx<'_, P>, u: &UserMfa, code: &str) -> ApiResult<Option<i64>> {
    let pending = u
        .mfa_pending_sealed
        .as_deref()
        .ok_or_else(|| ApiError::conflict("mfa_not_enrolling", "start with POST /api/me/mfa/enrol"))?;
    Ok(totp::verify(&open_key(ctx, &u.id, pending)?, code.trim(), ctx.p.now_secs(), 0))
}

/// In one batch: MFA on with the pending secret (whose code matched `step`), ten fresh recovery
/// codes (answered once, stored hashed) and its audit row.
async fn turn_on<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    u: &UserMfa,
    step: i64,
) -> ApiResult<Vec<String>> {
    let pending = u.mfa_pending_sealed.as_deref().unwrap_or_default();
    let now = ctx.p.now_ms();
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut stmts = vec![
        Stmt::new(DELETE_CODES, vec![u.id.as_str().into()]),
        Stmt::new(ENABLE, vec![u.id.as_str().into(), Param::Int(now), Param::Int(step), pending.into()]),
        super::own_change(ctx, req, who, "user.mfa_enabled")?,
    ];
    for _ in 0..RECOVERY_CODES {
        let raw = new_token("")?;
        let code = format!("{}-{}", &raw[..5], &raw[5..10]);
        stmts.push(Stmt::new(INSERT_CODE, vec![u.id.as_str().into(), token_hash(&code).into(), Param::Int(now)]));
        codes.push(code);
    }
    if ctx.p.batch(&stmts).await?.get(1).copied().unwrap_or(0) == 0 {
        return Err(ApiError::conflict("mfa_changed", "MFA changed meanwhile; enrol again"));
    }
    Ok(codes)
}

/// `DELETE /api/me/mfa {code}`: off, with a current code (or a recovery code).
pub async fn disable<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    person(who)?;
    let body: Code = json_body(req, &[])?;
    let u = user_mfa(ctx, &who.user_id).await?;
    if u.mfa_enabled_at.is_none() {
        return Err(ApiError::conflict("mfa_not_enabled", "MFA is off"));
    }
    if state(ctx, &u.id, who.tenant_id()).await?.required {
        return Err(ApiError::conflict("mfa_required_by_tenant", "this tenant requires MFA of its members"));
    }
    if !second_factor(ctx, &u, &body.code).await? {
        return Err(ApiError::invalid("invalid_mfa_code", "that code is not right"));
    }
    let stmts = [
        Stmt::new(DISABLE, vec![u.id.as_str().into()]),
        super::own_change(ctx, req, who, "user.mfa_disabled")?,
        Stmt::new(DELETE_CODES, vec![u.id.as_str().into()]),
    ];
    ctx.p.batch(&stmts).await?;
    Ok(Response::new(204))
}

/// A TOTP code (accepted once, atomically) or an unused recovery code (used up).
async fn second_factor<P: Platform>(ctx: &Ctx<'_, P>, u: &UserMfa, code: &str) -> ApiResult<bool> {
    let code = code.trim();
    if code.len() == totp::DIGITS as usize {
        let Some(sealed) = &u.mfa_secret_sealed else { return Ok(false) };
        let key = open_key(ctx, &u.id, sealed)?;
        let Some(step) = totp::verify(&key, code, ctx.p.now_secs(), u.mfa_last_step) else { return Ok(false) };
        return Ok(ctx.p.execute(USE_STEP, &[u.id.as_str().into(), Param::Int(step)]).await? > 0);
    }
    let used = ctx
        .p
        .execute(
            USE_RECOVERY,
            &[u.id.as_str().into(), token_hash(&code.to_ascii_lowercase()).into(), Param::Int(ctx.p.now_ms())],
        )
        .await?;
    Ok(used > 0)
}

pub struct MfaState {
    pub enabled: bool,
    /// The tenant requires its members to use MFA.
    pub required: bool,
}

/// Whether a user has MFA on, and whether the tenant they act in requires it.
pub async fn state<P: Platform>(ctx: &Ctx<'_, P>, user_id: &str, tenant: &str) -> ApiResult<MfaState> {
    crate::platform::rows::row! {
        struct Row {
            enabled: i64,
            required: i64,
        }
    }
    let row: Option<Row> = ctx.p.query_first(MFA_STATE, &[user_id.into(), tenant.into()]).await?;
    Ok(row.map_or(MfaState { enabled: false, required: false }, |r| MfaState {
        enabled: r.enabled != 0,
        required: r.required != 0,
    }))
}

/// The refusal for entering a tenant that requires MFA without it, with a session in hand.
pub fn enrol_first() -> ApiError {
    ApiError::Forbidden(
        "mfa_enrolment_required",
        "this tenant requires MFA; turn it on with POST /api/me/mfa/enrol, then switch again".into(),
    )
}

/// What a password login earns short of a session: a code check for a user with MFA on, or, for
/// a user without it in a tenant that requires it, enrolment (a pending secret to scan, which the
/// second step's code confirms). Nothing for anyone else.
pub async fn gate<P: Platform>(ctx: &Ctx<'_, P>, who: &Principal, site: &Site) -> ApiResult<Option<Response>> {
    let s = state(ctx, &who.user_id, who.tenant_id()).await?;
    Ok(match (s.enabled, s.required) {
        (true, _) => Some(challenge(ctx, who, site, Purpose::Verify).await?),
        (false, true) => Some(challenge(ctx, who, site, Purpose::Enrol).await?),
        (false, false) => None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verify,
    Enrol,
}

/// The first login step: a challenge for the tenant and site the password login chose, answered
/// instead of a session. An enrolment challenge also carries the new secret to scan.
async fn challenge<P: Platform>(
    ctx: &Ctx<'_, P>,
    who: &Principal,
    site: &Site,
    purpose: Purpose,
) -> ApiResult<Response> {
    let mut answer = json!({"expires_in": CHALLENGE_TTL_MS / 1000});
    if purpose == Purpose::Enrol {
        answer = pending_secret(ctx, &who.user_id).await?;
        answer["expires_in"] = json!(CHALLENGE_TTL_MS / 1000);
        answer["mfa_enrolment_required"] = json!(true);
    } else {
        answer["mfa_required"] = json!(true);
    }
    let token = new_token("mfa_")?;
    let now = ctx.p.now_ms();
    let site_host = site.portal_host().map(str::to_string);
    ctx.p
        .execute(
            INSERT_CHALLENGE,
            &[
                new_id("mfc")?.into(),
                token_hash(&token).into(),
                who.user_id.as_str().into(),
                who.tenant_id().into(),
                site_host.into(),
                Param::Int(now + CHALLENGE_TTL_MS),
                Param::Int(now),
                if purpose == Purpose::Enrol { "enrol" } else { "verify" }.into(),
            ],
        )
        .await?;
    answer["mfa_token"] = json!(token);
    Ok(Response::json(200, &answer))
}

crate::platform::body::body! {
    struct SecondStep {
        mfa_token: String,
        code: String,
    }
}

crate::platform::rows::row! {
    struct Challenge {
        id: String,
        user_id: String,
        tenant: Option<String>,
        site: Option<String>,
        expires_at: i64,
        attempts: i64,
        used_at: Option<i64>,
        purpose: String,
    }
}

/// `POST /api/auth/login/mfa {mfa_token, code}`: the second step. `code` is a TOTP code or a
/// recovery code. Five wrong codes end the challenge.
pub async fn second_step<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, site: &Site) -> ApiResult<Response> {
    let body: SecondStep = json_body(req, &[])?;
    let dead = || {
        ApiError::Unauthorized("invalid_mfa_token", "this sign-in has expired; start again with your password".into())
    };
    if !looks_like_token(&body.mfa_token, "mfa_") {
        return Err(dead());
    }
    let now = ctx.p.now_ms();
    let c: Challenge =
        ctx.p.query_first(CHALLENGE_BY_HASH, &[token_hash(&body.mfa_token).into()]).await?.ok_or_else(dead)?;
    if c.used_at.is_some() || c.expires_at <= now || c.attempts >= CHALLENGE_ATTEMPTS {
        return Err(dead());
    }
    if c.site.as_deref() != site.portal_host() {
        return Err(ApiError::Forbidden("tenant_mismatch", "finish signing in where you started".into()));
    }
    let u = user_mfa(ctx, &c.user_id).await.map_err(|_| dead())?;
    // An enrolment challenge is answered with a code of the secret it handed out; once MFA is on
    // (enrolled meanwhile), it is an ordinary code check.
    let enrolling = c.purpose == "enrol" && u.mfa_enabled_at.is_none();
    let passed = if enrolling {
        pending_step(ctx, &u, &body.code).map_err(|_| dead())?
    } else {
        second_factor(ctx, &u, &body.code).await?.then_some(0)
    };
    let Some(step) = passed else {
        ctx.p.execute(FAIL_CHALLENGE, &[c.id.as_str().into()]).await?;
        return Err(ApiError::Unauthorized("invalid_mfa_code", "that code is not right".into()));
    };
    if ctx.p.execute(USE_CHALLENGE, &[c.id.as_str().into(), Param::Int(now), Param::Int(CHALLENGE_ATTEMPTS)]).await?
        == 0
    {
        return Err(dead());
    }
    let tenant = c.tenant.unwrap_or_default();
    let who = match site {
        Site::ClientPortal { client, .. } => crate::access::store::load_portal_principal(ctx.p, &u.id, client).await?,
        Site::AgencyPortal { agency, .. } => {
            crate::access::store::load_agency_portal_principal(ctx.p, &u.id, agency, &tenant).await?
        }
        Site::Api => crate::access::store::load_principal(ctx.p, &u.id, &tenant).await?,
    }
    .ok_or_else(|| ApiError::Forbidden("no_access", "this account has no access to that tenant".into()))?;
    if !enrolling {
        return super::session::issue(ctx, req, &who, site, "auth.login").await;
    }
    let codes = turn_on(ctx, req, &who, &u, step).await?;
    let mut session = super::session::session(ctx, req, &who, site, "auth.login").await?;
    session["recovery_codes"] = json!(codes);
    Ok(Response::json(200, &session))
}
