//! Password reset and change, and the token version that ends every session of a user.
//!
//! A reset token is random (256 bits), stored only as its SHA-256, lives an hour and is used once.
//! Asking for one answers the same whether or not the email has an account. Completing a reset,
//! or changing a password (which needs the current one), bumps the user's `token_version`;
//! `authenticate` compares it with the token's `ver` claim, so every access token issued before
//! stops working at once.

use serde_json::json;

use super::users::token_hash;

use super::password;
use crate::access::audit::{self, Event};
use crate::access::roles::Principal;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{email_field, json_body};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_token, new_id, new_token};
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

pub const TOKEN_PREFIX: &str = "pwr_";
pub const RESET_TTL_MS: i64 = 60 * 60 * 1000;
/// Unused, unexpired reset tokens one user may hold: more requests are accepted silently and send
/// nothing, so the endpoint cannot be used to flood someone's inbox.
pub const MAX_OPEN_RESETS: i64 = 3;

pub const ACTIVE_USER_BY_EMAIL: &str = "SELECT id FROM users WHERE email = ?1 AND status = 'active'";
pub const INSERT_RESET: &str = "INSERT INTO password_resets (id, user_id, token_hash, expires_at, created_at) \
    SELECT ?1, ?2, ?3, ?4, ?5 WHERE (SELECT count(*) FROM password_resets WHERE user_id = ?2 AND used_at IS NULL \
    AND expires_at > ?5) < ?6";
/// Uses the token: once, before it expires.
pub const USE_TOKEN: &str = "UPDATE password_resets SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL \
    AND expires_at > ?2";
/// The new password and a new token version, only if the token was just used.
pub const SET_PASSWORD_BY_TOKEN: &str = "UPDATE users SET password_hash = ?3, token_version = token_version + 1, \
    updated_at = ?2 WHERE id = (SELECT user_id FROM password_resets WHERE token_hash = ?1) AND status = 'active' \
    AND changes() > 0";
/// The user's other open reset tokens end with the reset.
pub const END_OTHER_RESETS: &str = "UPDATE password_resets SET used_at = ?2 WHERE used_at IS NULL \
    AND user_id = (SELECT user_id FROM password_resets WHERE token_hash = ?1)";
pub const USER_OF_TOKEN: &str = "SELECT user_id FROM password_resets WHERE token_hash = ?1";
pub const PASSWORD_OF: &str = "SELECT password_hash FROM users WHERE id = ?1 AND status = 'active'";
/// A change, only if the stored hash is still the one the current password was checked against.
pub const CHANGE_PASSWORD: &str = "UPDATE users SET password_hash = ?3, token_version = token_version + 1, \
    updated_at = ?4 WHERE id = ?1 AND password_hash = ?2";

crate::platform::body::body! {
    struct ResetRequest {
        email: String,
    }
}

/// `POST /api/auth/password-reset {email}`: 202, the same answer for any address; an active
/// account gets a one-hour, single-use token by mail.
pub async fn request<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> ApiResult<Response> {
    let body: ResetRequest = json_body(req, &[])?;
    let email = email_field(&body.email)?;
    let answer = Response::json(202, &json!({"status": "if this address has an account, a reset link is on its way"}));
    crate::platform::rows::row! {
        struct Found {
            id: String,
        }
    }
    let Some(user) = ctx.p.query_first::<Found>(ACTIVE_USER_BY_EMAIL, &[email.as_str().into()]).await? else {
        return Ok(answer);
    };
    let token = new_token(TOKEN_PREFIX)?;
    let now = ctx.p.now_ms();
    let mail = format!(
        "Someone asked to reset the password of this account. If it was you, within the hour:\n\n\
         POST /api/auth/password-reset/confirm with {{\"token\": \"{token}\", \"password\": \"<new password>\"}}\n\n\
         Every session of the account ends when the password changes. If it was not you, ignore this mail.\n"
    );
    let stmts = [
        Stmt::new(
            INSERT_RESET,
            vec![
                new_id("pwr")?.into(),
                user.id.as_str().into(),
                token_hash(&token).into(),
                Param::Int(now + RESET_TTL_MS),
                Param::Int(now),
                Param::Int(MAX_OPEN_RESETS),
            ],
        ),
        crate::access::mail::stmt_if_changed(ctx, "platform", &email, "Reset your password", &mail)?,
    ];
    ctx.p.batch(&stmts).await?;
    Ok(answer)
}

crate::platform::body::body! {
    struct ResetConfirm {
        token: String,
        password: String,
    }
}

/// `POST /api/auth/password-reset/confirm {token, password}`: sets the password, ends every
/// session of the account, and uses up the token and any other open one.
pub async fn confirm<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> ApiResult<Response> {
    let body: ResetConfirm = json_body(req, &[])?;
    let refused = || {
        ApiError::bad_request(
            "invalid_reset_token",
            "this reset link is unknown, already used or expired; ask for a new one",
        )
    };
    if !looks_like_token(&body.token, TOKEN_PREFIX) {
        return Err(refused());
    }
    password::validate_new_password(&body.password)?;
    let hash = password::hash_password(&body.password)?;
    let h = token_hash(&body.token);
    let now = ctx.p.now_ms();
    crate::platform::rows::row! {
        struct Owner {
            user_id: String,
        }
    }
    let owner: Option<Owner> = ctx.p.query_first(USER_OF_TOKEN, &[h.as_str().into()]).await?;
    let actor = audit::actor(req, None);
    let user_id = owner.map(|o| o.user_id).unwrap_or_default();
    let stmts = [
        Stmt::new(USE_TOKEN, vec![h.as_str().into(), Param::Int(now)]),
        Stmt::new(SET_PASSWORD_BY_TOKEN, vec![h.as_str().into(), Param::Int(now), hash.into()]),
        audit::after_change(
            &crate::access::audit::Actor { user_id: Some(user_id.clone()), ..actor },
            Event {
                tenant_id: "platform",
                action: "user.password_reset",
                target_type: "user",
                target_id: Some(&user_id),
                metadata: json!({}),
            },
            now,
        )?,
        Stmt::new(END_OTHER_RESETS, vec![h.as_str().into(), Param::Int(now)]),
    ];
    let changed = ctx.p.batch(&stmts).await?;
    if changed.get(1).copied().unwrap_or(0) == 0 {
        return Err(refused());
    }
    Ok(Response::json(200, &json!({"status": "password changed; every session of this account has ended"})))
}

crate::platform::body::body! {
    struct PasswordChange {
        current_password: String,
        new_password: String,
    }
}

/// `POST /api/me/password {current_password, new_password}`: a person's own password, with the
/// current one; every session of theirs ends, this one included.
pub async fn change<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal) -> ApiResult<Response> {
    if who.api_key {
        return Err(ApiError::forbidden("an API key has no password"));
    }
    let body: PasswordChange = json_body(req, &[])?;
    crate::platform::rows::row! {
        struct Stored {
            password_hash: String,
        }
    }
    let stored: Stored =
        ctx.p.query_first(PASSWORD_OF, &[who.user_id.as_str().into()]).await?.ok_or(ApiError::NotFound)?;
    if !password::verify_password(&body.current_password, Some(&stored.password_hash)) {
        return Err(ApiError::Forbidden("wrong_password", "the current password is not right".into()));
    }
    password::validate_new_password(&body.new_password)?;
    let hash = password::hash_password(&body.new_password)?;
    let now = ctx.p.now_ms();
    let stmts = [
        Stmt::new(
            CHANGE_PASSWORD,
            vec![who.user_id.as_str().into(), stored.password_hash.as_str().into(), hash.into(), Param::Int(now)],
        ),
        super::own_change(ctx, req, who, "user.password_changed")?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::conflict("password_changed", "the password changed meanwhile; try again"));
    }
    Ok(Response::new(204))
}
