//! Outgoing mail: a transactional outbox like the event one. A feature writes its mail into the
//! `outbox` table in the same batch as what the mail announces (an invitation, a reset), so a mail
//! failure never loses the invitation, and a sender hands due rows to the mail API afterwards:
//! after the request that wrote them (`waitUntil`) and on every cron run.
//!
//! The mail API is an HTTP endpoint (`MAIL_API_URL`) taking a JSON POST
//! `{from, to, subject, text}` with `Authorization: Bearer MAIL_API_KEY`. A 2xx is sent; anything
//! else is retried after 1, 5, 30 and 120 minutes, then the row is `failed` (and the invitation
//! can be resent). Without `MAIL_API_URL` (development) rows stay in the outbox, which is the
//! mailbox: with `DEV_MAILBOX=true` each is logged with its links, and `GET /api/dev/mailbox`
//! lists them.

use serde::Serialize;
use serde_json::json;

use crate::platform::error::{ApiError, ApiResult};
use crate::platform::http::{Request, Response};
use crate::platform::ids::new_id;
use crate::platform::ports::{Param, Platform, Post, PostOutcome, Stmt};
use crate::platform::Ctx;

/// Minutes to wait before each retry; one more attempt than entries.
const RETRY_MINUTES: [i64; 4] = [1, 5, 30, 120];
/// Mails sent per run.
const SEND_BATCH: i64 = 20;
/// How long a sender holds a row it is sending.
const LEASE_MS: i64 = 60_000;

pub const INSERT: &str = "INSERT INTO outbox (id, tenant_id, to_email, subject, body, created_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// The mail of the change just before it in the batch, only if that change happened.
pub const INSERT_IF_CHANGED: &str = "INSERT INTO outbox (id, tenant_id, to_email, subject, body, created_at) \
    SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE changes() > 0";
/// Takes due rows for one send, holding them for a minute, and returns them.
pub const CLAIM_DUE: &str = "UPDATE outbox SET next_attempt_at = ?1 + ?2, attempts = attempts + 1 WHERE id IN \
    (SELECT id FROM outbox WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?1) \
    ORDER BY created_at LIMIT ?3) AND status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?1) \
    RETURNING id, tenant_id, to_email, subject, body, attempts";
pub const MARK_SENT: &str =
    "UPDATE outbox SET status = 'sent', sent_at = ?3, last_error = NULL WHERE tenant_id = ?1 AND id = ?2";
pub const MARK_FAILED: &str = "UPDATE outbox SET status = ?3, next_attempt_at = ?4, last_error = ?5 \
    WHERE tenant_id = ?1 AND id = ?2";
/// The development mailbox, newest first, optionally for one address.
pub const MAILBOX: &str = "SELECT id, tenant_id, to_email, subject, body, status, attempts, created_at, sent_at \
    FROM outbox WHERE (?1 IS NULL OR to_email = ?1) ORDER BY created_at DESC LIMIT 50";

/// A mail to write in a change's batch.
pub fn stmt<P: Platform>(ctx: &Ctx<'_, P>, tenant_id: &str, to: &str, subject: &str, body: &str) -> ApiResult<Stmt> {
    build(ctx, INSERT, tenant_id, to, subject, body)
}

/// A mail for the guarded change just before it in the batch.
pub fn stmt_if_changed<P: Platform>(
    ctx: &Ctx<'_, P>,
    tenant_id: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> ApiResult<Stmt> {
    build(ctx, INSERT_IF_CHANGED, tenant_id, to, subject, body)
}

fn build<P: Platform>(
    ctx: &Ctx<'_, P>,
    sql: &'static str,
    tenant_id: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> ApiResult<Stmt> {
    ctx.mail_written();
    Ok(Stmt::new(
        sql,
        vec![
            new_id("msg")?.into(),
            tenant_id.into(),
            to.into(),
            subject.into(),
            body.into(),
            Param::Int(ctx.p.now_ms()),
        ],
    ))
}

crate::platform::rows::row! {
    struct Due {
        id: String,
        tenant_id: String,
        to_email: String,
        subject: String,
        body: String,
        attempts: i64,
    }
}

/// What one sending run did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Sent {
    pub sent: usize,
    pub failed: usize,
}

/// Hands due mail to the mail API. Without one, the outbox is the development mailbox: with
/// `DEV_MAILBOX=true` each new mail is logged once, links included; otherwise nothing happens.
pub async fn send_due<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Sent> {
    let mut out = Sent::default();
    let url = ctx.cfg.mail.api_url.as_deref();
    if url.is_none() && !ctx.cfg.mail.dev_mailbox {
        return Ok(out);
    }
    let now = ctx.p.now_ms();
    let due: Vec<Due> =
        ctx.p.query_as(CLAIM_DUE, &[Param::Int(now), Param::Int(LEASE_MS), Param::Int(SEND_BATCH)]).await?;
    let Some(url) = url else {
        for m in due {
            // The body holds one-time links (invitations, resets): it stays in the outbox, for
            // `GET /api/dev/mailbox`, and out of the log.
            ctx.p.log(
                "info",
                &format!("dev mailbox: to {}: {} (GET /api/dev/mailbox to read it)", m.to_email, m.subject),
            );
            ctx.p.execute(MARK_SENT, &[m.tenant_id.as_str().into(), m.id.as_str().into(), Param::Int(now)]).await?;
            out.sent += 1;
        }
        return Ok(out);
    };
    for m in due {
        let body =
            json!({"from": ctx.cfg.mail.from, "to": m.to_email, "subject": m.subject, "text": m.body}).to_string();
        let headers = [
            ("content-type", "application/json".to_string()),
            ("authorization", format!("Bearer {}", ctx.cfg.mail.api_key.as_deref().unwrap_or(""))),
        ];
        let post = Post { url, headers: &headers, body: &body, timeout_ms: 10_000 };
        let (outcome, _) = ctx.p.post_json(&post).await;
        let ids = vec![m.tenant_id.as_str().into(), m.id.as_str().into()];
        match outcome {
            PostOutcome::Answered { status: 200..=299, .. } => {
                let mut p = ids;
                p.push(Param::Int(ctx.p.now_ms()));
                ctx.p.execute(MARK_SENT, &p).await?;
                out.sent += 1;
            }
            other => {
                let error = match other {
                    PostOutcome::Answered { status, head, .. } => {
                        format!("HTTP {status}: {}", head.chars().take(200).collect::<String>())
                    }
                    PostOutcome::TimedOut => "timed out".to_string(),
                    PostOutcome::Failed(e) => e.chars().take(200).collect(),
                };
                let (status, next) = match RETRY_MINUTES.get((m.attempts - 1).max(0) as usize) {
                    Some(min) => ("pending", Param::Int(now + min * 60_000)),
                    None => ("failed", Param::Null),
                };
                let mut p = ids;
                p.extend([status.into(), next, error.into()]);
                ctx.p.execute(MARK_FAILED, &p).await?;
                out.failed += 1;
            }
        }
    }
    Ok(out)
}

crate::platform::rows::row! {
    #[derive(Serialize)]
    struct MailView {
        id: String,
        tenant_id: String,
        to_email: String,
        subject: String,
        body: String,
        status: String,
        attempts: i64,
        created_at: i64,
        sent_at: Option<i64>,
    }
}

/// `GET /api/dev/mailbox[?to=]`: the development mailbox. A 404 unless `DEV_MAILBOX=true`, which
/// production never sets; it shows mail that carries tokens.
pub async fn dev_mailbox<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> ApiResult<Response> {
    if !ctx.cfg.mail.dev_mailbox {
        return Err(ApiError::NotFound);
    }
    let to = req.query_param("to").map(|t| t.trim().to_ascii_lowercase());
    let items: Vec<MailView> = ctx.p.query_as(MAILBOX, &[to.into()]).await?;
    Ok(Response::json(200, &json!({"items": items})))
}
