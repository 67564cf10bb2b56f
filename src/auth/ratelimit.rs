//! Failed-login limits per email and per IP, kept in D1 as fixed windows.

use crate::error::ApiResult;
use crate::ports::{col_i64, Database, Param, Stmt};

pub const WINDOW_SECS: i64 = 15 * 60;
pub const MAX_FAILURES_PER_EMAIL: i64 = 5;
pub const MAX_FAILURES_PER_IP: i64 = 50;

const SELECT: &str = "SELECT key, window_start, failures FROM login_attempts WHERE key IN (?1, ?2)";
const RECORD_FAILURE: &str = "INSERT INTO login_attempts (key, window_start, failures) VALUES (?1, ?2, 1) \
     ON CONFLICT(key) DO UPDATE SET \
       failures = CASE WHEN window_start <= ?2 - ?3 THEN 1 ELSE failures + 1 END, \
       window_start = CASE WHEN window_start <= ?2 - ?3 THEN ?2 ELSE window_start END";
const CLEAR: &str = "DELETE FROM login_attempts WHERE key = ?1";

fn keys(email: &str, ip: &str) -> (String, String) {
    (format!("email:{}", email.to_lowercase()), format!("ip:{ip}"))
}

/// Seconds until the caller may try again, if either limit is reached.
pub async fn blocked_for(db: &impl Database, email: &str, ip: &str, now: i64) -> ApiResult<Option<u64>> {
    let (ek, ik) = keys(email, ip);
    let rows = db.query(SELECT, &[ek.clone().into(), ik.into()]).await?;
    let mut wait = None;
    for row in rows {
        let start = col_i64(&row, "window_start").unwrap_or(0);
        let failures = col_i64(&row, "failures").unwrap_or(0);
        let limit = if row.get("key").and_then(|v| v.as_str()) == Some(ek.as_str()) {
            MAX_FAILURES_PER_EMAIL
        } else {
            MAX_FAILURES_PER_IP
        };
        if start > now - WINDOW_SECS && failures >= limit {
            let secs = (start + WINDOW_SECS - now).max(1) as u64;
            wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
        }
    }
    Ok(wait)
}

pub async fn record_failure(db: &impl Database, email: &str, ip: &str, now: i64) -> ApiResult<()> {
    let (ek, ik) = keys(email, ip);
    let stmt = |k: String| Stmt::new(RECORD_FAILURE, vec![k.into(), Param::Int(now), Param::Int(WINDOW_SECS)]);
    db.batch(&[stmt(ek), stmt(ik)]).await?;
    Ok(())
}

pub async fn clear_email(db: &impl Database, email: &str) -> ApiResult<()> {
    let (ek, _) = keys(email, "");
    db.execute(CLEAR, &[ek.into()]).await?;
    Ok(())
}
