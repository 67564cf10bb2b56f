//! Self-serve agency signup, when the platform allows it (`SIGNUP_ENABLED`, off unless set).
//!
//! `POST /api/signup {agency_name, name, email, password, turnstile_token}` creates the agency (on
//! the default plan) and its first agency_admin in one batch, and mails a link that verifies the
//! address; until it is verified the agency cannot add clients. The answer is the same 202
//! whether or not the email already has an account: a taken address gets a mail saying so, never
//! an error. A Turnstile token is required wherever Turnstile is configured (the configuration
//! refuses to enable signup without it outside development).

use serde_json::json;

use super::users::token_hash;

use super::{password, turnstile};
use crate::access::audit::{self, Event};
use crate::access::mail;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{email_field, json_body, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{hex, looks_like_token, new_id, new_token, random_bytes};
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

pub const VERIFY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

pub const USER_EXISTS: &str = "SELECT id FROM users WHERE email = ?1";
/// The new user, only if the address is still free (a racing signup loses here, writing nothing).
pub const INSERT_USER: &str = "INSERT INTO users (id, email, name, password_hash, platform_role, status, created_at, \
    updated_at) SELECT ?1, ?2, ?3, ?4, NULL, 'active', ?5, ?5 WHERE NOT EXISTS (SELECT 1 FROM users WHERE email = ?2)";
/// The agency, unverified, only if the user was made.
pub const INSERT_AGENCY: &str = "INSERT INTO agencies (id, name, slug, email, phone, status, plan, created_at, \
    updated_at, signup_verified, shard) SELECT ?1, ?2, ?3, ?4, NULL, 'active', 'starter', ?5, ?5, 0, ?6 \
    WHERE changes() > 0";
pub const INSERT_MEMBERSHIP: &str =
    "INSERT INTO agency_memberships (user_id, agency_id, role, permissions, created_at) \
    SELECT ?1, ?2, 'agency_admin', NULL, ?3 WHERE changes() > 0";
pub const INSERT_VERIFICATION: &str =
    "INSERT INTO email_verifications (id, agency_id, user_id, token_hash, expires_at, \
    created_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE changes() > 0";
pub const USE_VERIFICATION_TOKEN: &str =
    "UPDATE email_verifications SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL \
    AND expires_at > ?2";
pub const MARK_AGENCY_VERIFIED: &str = "UPDATE agencies SET signup_verified = 1, updated_at = ?2 \
    WHERE id = (SELECT agency_id FROM email_verifications WHERE token_hash = ?1) AND changes() > 0";
pub const VERIFICATION_BY_TOKEN: &str = "SELECT agency_id, user_id FROM email_verifications WHERE token_hash = ?1";

crate::platform::body::body! {
    struct Signup {
        agency_name: String,
        name: String,
        email: String,
        password: String,
        turnstile_token: Option<String>,
    }
}

/// A slug from the agency's name, with a random tail so it never collides or tells anything.
fn slug_for(name: &str) -> ApiResult<String> {
    let mut base: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    base.truncate(40);
    let base = base.trim_matches('-');
    let tail = hex(&random_bytes::<3>()?);
    Ok(if base.is_empty() { format!("agency-{tail}") } else { format!("{base}-{tail}") })
}

/// `POST /api/signup`.
pub async fn signup<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> ApiResult<Response> {
    if !ctx.cfg.signup_enabled {
        return Err(ApiError::NotFound);
    }
    let body: Signup = json_body(req, &["role", "plan", "status", "agency_id", "platform_role"])?;
    let agency_name = text_field("agency_name", &body.agency_name, 120)?;
    let name = text_field("name", &body.name, 120)?;
    let email = email_field(&body.email)?;
    password::validate_new_password(&body.password)?;
    turnstile::verify(ctx, req, body.turnstile_token.as_deref()).await?;
    let answer = Response::json(202, &json!({"status": "check your email: a link there finishes the signup"}));
    let now = ctx.p.now_ms();
    if !ctx.p.query(USER_EXISTS, &[email.as_str().into()]).await?.is_empty() {
        // The address is taken: its owner hears about it; the caller learns nothing.
        let stmt = mail::stmt(
            ctx,
            "platform",
            &email,
            "Someone tried to sign up with your address",
            "Someone tried to create a Gatehouse agency with this address, which already has an account. \
             If it was you, sign in instead (or reset your password). If not, you can ignore this mail.\n",
        )?;
        ctx.p.execute(stmt.sql, &stmt.params).await?;
        return Ok(answer);
    }
    let user_id = new_id("usr")?;
    let agency_id = new_id("agy")?;
    let token = new_token("evf_")?;
    let hash = password::hash_password(&body.password)?;
    let link = format!(
        "Welcome to Gatehouse. Verify this address to finish setting up {agency_name}:\n\n\
         POST /api/signup/verify with {{\"token\": \"{token}\"}} within 24 hours. Until then the agency cannot add clients.\n"
    );
    let stmts = [
        Stmt::new(
            INSERT_USER,
            vec![user_id.as_str().into(), email.as_str().into(), name.as_str().into(), hash.into(), Param::Int(now)],
        ),
        Stmt::new(
            INSERT_AGENCY,
            vec![
                agency_id.as_str().into(),
                agency_name.as_str().into(),
                slug_for(&agency_name)?.into(),
                email.as_str().into(),
                Param::Int(now),
                Param::Int(crate::access::store::place_agency(ctx.p).await?),
            ],
        ),
        Stmt::new(INSERT_MEMBERSHIP, vec![user_id.as_str().into(), agency_id.as_str().into(), Param::Int(now)]),
        Stmt::new(
            INSERT_VERIFICATION,
            vec![
                new_id("evf")?.into(),
                agency_id.as_str().into(),
                user_id.as_str().into(),
                token_hash(&token).into(),
                Param::Int(now + VERIFY_TTL_MS),
                Param::Int(now),
            ],
        ),
        mail::stmt_if_changed(ctx, &agency_id, &email, "Verify your address", &link)?,
        audit::after_change(
            &audit::Actor {
                user_id: Some(user_id.clone()),
                role: Some("agency_admin".into()),
                ..audit::actor(req, None)
            },
            Event {
                tenant_id: &agency_id,
                action: "agency.signed_up",
                target_type: "agency",
                target_id: Some(&agency_id),
                metadata: json!({"email_domain": email.rsplit('@').next()}),
            },
            now,
        )?,
    ];
    ctx.p.batch(&stmts).await?;
    Ok(answer)
}

crate::platform::body::body! {
    struct Verify {
        token: String,
    }
}

/// `POST /api/signup/verify {token}`: the address is proved; the agency may add clients.
pub async fn verify<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> ApiResult<Response> {
    let body: Verify = json_body(req, &[])?;
    let refused = || ApiError::bad_request("invalid_verification_token", "this link is unknown, used or expired");
    if !looks_like_token(&body.token, "evf_") {
        return Err(refused());
    }
    let h = token_hash(&body.token);
    let now = ctx.p.now_ms();
    crate::platform::rows::row! {
        struct Owner {
            agency_id: String,
            user_id: String,
        }
    }
    let owner: Owner = ctx.p.query_first(VERIFICATION_BY_TOKEN, &[h.as_str().into()]).await?.ok_or_else(refused)?;
    let stmts = [
        Stmt::new(USE_VERIFICATION_TOKEN, vec![h.as_str().into(), Param::Int(now)]),
        Stmt::new(MARK_AGENCY_VERIFIED, vec![h.as_str().into(), Param::Int(now)]),
        audit::after_change(
            &audit::Actor {
                user_id: Some(owner.user_id.clone()),
                role: Some("agency_admin".into()),
                ..audit::actor(req, None)
            },
            Event {
                tenant_id: &owner.agency_id,
                action: "agency.email_verified",
                target_type: "agency",
                target_id: Some(&owner.agency_id),
                metadata: json!({}),
            },
            now,
        )?,
    ];
    if ctx.p.batch(&stmts).await?.first().copied().unwrap_or(0) == 0 {
        return Err(refused());
    }
    Ok(Response::json(200, &json!({"agency_id": owner.agency_id, "verified": true})))
}
