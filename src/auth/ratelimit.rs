//! Login throttling, kept in D1 as fixed windows. Every attempt is recorded *before* the password
//! is checked, in one statement that also returns the new counts, so concurrent guesses cannot
//! all see the same count and slip past the limit. A success then gives its attempt back.
//!
//! Three buckets, so one attacker cannot lock the owner out:
//! - `ei:{email}|{ip}`: guesses at one account from one address. Past the limit: 429.
//! - `ip:{ip}`: guesses at any account from one address. Past the limit: 429.
//! - `email:{email}`: guesses at one account from everywhere. Past the threshold the login needs
//!   a Turnstile token, instead of being refused, so the owner on a fresh address still gets in.
//!
//! A request without a client IP (only outside Cloudflare) has no address buckets: it is never
//! folded into one shared `unknown` bucket that anyone could fill.

use crate::platform::error::{ApiError, ApiResult};
use crate::platform::http::Request;
use crate::platform::ports::{col_i64, col_str, json_list, Database, Limit, Param, Platform, Stmt};
use crate::platform::Ctx;

pub const WINDOW_SECS: i64 = 15 * 60;
pub const MAX_FAILURES_PER_EMAIL_IP: i64 = 5;
pub const MAX_FAILURES_PER_IP: i64 = 50;

/// Records one attempt in up to three buckets and returns each bucket's count in its window.
const RECORD: &str = "INSERT INTO login_attempts (key, window_start, failures) \
    SELECT value, ?1, 1 FROM json_each(?3) WHERE true \
    ON CONFLICT(key) DO UPDATE SET \
      failures = CASE WHEN window_start <= ?1 - ?2 THEN 1 ELSE failures + 1 END, \
      window_start = CASE WHEN window_start <= ?1 - ?2 THEN ?1 ELSE window_start END \
    RETURNING key, window_start, failures";
/// A success: the email-and-address bucket is cleared, the others get their attempt back.
const CLEAR: &str = "DELETE FROM login_attempts WHERE key = ?1";
const GIVE_BACK: &str =
    "UPDATE login_attempts SET failures = max(failures - 1, 0) WHERE key IN (SELECT value FROM json_each(?1))";

/// What the recorded attempt allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password.
    Proceed,
    /// Check the password only with a valid Turnstile token.
    NeedsTurnstile { retry_after: u64 },
    /// Refuse without checking; try again after this many seconds.
    Blocked { retry_after: u64 },
}

/// One login attempt's place in the buckets.
#[derive(Debug)]
pub struct Attempt {
    email_key: String,
    ip_key: Option<String>,
    email_ip_key: Option<String>,
    pub verdict: Verdict,
}

fn keys(email: &str, ip: Option<&str>) -> (String, Option<String>, Option<String>) {
    let email = email.to_lowercase();
    let ip = ip.map(str::trim).filter(|i| !i.is_empty());
    (format!("email:{email}"), ip.map(|i| format!("ip:{i}")), ip.map(|i| format!("ei:{email}|{i}")))
}

/// The decision for the counts an attempt brought each bucket to.
pub fn decide(email_count: i64, ip_count: i64, email_ip_count: i64, turnstile_after: i64, wait: u64) -> Verdict {
    if email_ip_count > MAX_FAILURES_PER_EMAIL_IP || ip_count > MAX_FAILURES_PER_IP {
        Verdict::Blocked { retry_after: wait }
    } else if email_count > turnstile_after {
        Verdict::NeedsTurnstile { retry_after: wait }
    } else {
        Verdict::Proceed
    }
}

impl Attempt {
    /// Records the attempt and decides, atomically per bucket.
    pub async fn record(
        db: &impl Database,
        email: &str,
        ip: Option<&str>,
        now: i64,
        turnstile_after: i64,
    ) -> ApiResult<Attempt> {
        let (email_key, ip_key, email_ip_key) = keys(email, ip);
        let all: Vec<&String> = std::iter::once(&email_key).chain(ip_key.iter()).chain(email_ip_key.iter()).collect();
        let list = json_list(&all);
        let rows = db.query(RECORD, &[Param::Int(now), Param::Int(WINDOW_SECS), list.into()]).await?;
        let count = |k: &Option<String>| {
            rows.iter()
                .find(|r| k.is_some() && col_str(r, "key") == *k)
                .and_then(|r| col_i64(r, "failures"))
                .unwrap_or(0)
        };
        let wait = rows
            .iter()
            .filter_map(|r| col_i64(r, "window_start"))
            .map(|start| (start + WINDOW_SECS - now).max(1) as u64)
            .max()
            .unwrap_or(WINDOW_SECS as u64);
        let verdict =
            decide(count(&Some(email_key.clone())), count(&ip_key), count(&email_ip_key), turnstile_after, wait);
        Ok(Attempt { email_key, ip_key, email_ip_key, verdict })
    }

    /// The password was right: this attempt was not a guess. One round trip.
    pub async fn succeeded(&self, db: &impl Database) -> ApiResult<()> {
        let back: Vec<&String> = std::iter::once(&self.email_key).chain(self.ip_key.iter()).collect();
        let mut stmts = vec![Stmt::new(GIVE_BACK, vec![json_list(&back).into()])];
        if let Some(k) = &self.email_ip_key {
            stmts.push(Stmt::new(CLEAR, vec![k.as_str().into()]));
        }
        db.batch(&stmts).await?;
        Ok(())
    }
}

/// The per-IP cap on requests that mail someone or spend a one-time token, through the Rate
/// Limiting binding (`AUTH_IP_LIMITER`): mail bombing and token guessing stop at the edge. A
/// request without a client IP (not through Cloudflare's front) is not counted.
pub async fn per_ip<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> ApiResult<()> {
    let Some(ip) = req.client_ip() else { return Ok(()) };
    if ctx.p.allow(Limit::AuthIp, ip).await.map_err(|e| ApiError::Misconfigured(e.to_string()))? {
        return Ok(());
    }
    Err(ApiError::TooMany(
        "rate_limited",
        "too many requests from this address; try again in a minute".into(),
        Some(60),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_table() {
        let t = 10;
        let cases = [
            ((1, 1, 1), Verdict::Proceed),
            ((10, 50, 5), Verdict::Proceed),
            ((11, 1, 1), Verdict::NeedsTurnstile { retry_after: 60 }),
            ((1, 1, 6), Verdict::Blocked { retry_after: 60 }),
            ((1, 51, 1), Verdict::Blocked { retry_after: 60 }),
            ((99, 51, 6), Verdict::Blocked { retry_after: 60 }),
        ];
        for ((e, i, ei), want) in cases {
            assert_eq!(decide(e, i, ei, t, 60), want, "{e} {i} {ei}");
        }
    }

    #[test]
    fn a_missing_address_gets_no_address_buckets() {
        let (e, i, ei) = keys("Admin@Example.com", None);
        assert_eq!(e, "email:admin@example.com");
        assert_eq!((i, ei), (None, None));
        let (_, i, ei) = keys("a@b.c", Some("203.0.113.9"));
        assert_eq!(i.as_deref(), Some("ip:203.0.113.9"));
        assert_eq!(ei.as_deref(), Some("ei:a@b.c|203.0.113.9"));
        assert_eq!(keys("a@b.c", Some(" ")).1, None);
    }
}
