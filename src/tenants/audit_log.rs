//! Reading the audit logs: a client's, an agency's and the platform's own, as pages of JSON, as
//! CSV (RFC 4180) for a date range, and checked against their hash chain (`verify`).

use serde::Serialize;
use serde_json::Value;

use crate::access::audit::{self, ChainRow};
use crate::access::roles::{shows_network, Permission, Principal};
use crate::access::{self, TenantKind};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{page_params, page_response};
use crate::platform::http::{Request, Response};
use crate::platform::ports::{Param, Platform};
use crate::platform::Ctx;

/// Rows per CSV page: large enough for a spreadsheet, small enough for one Worker invocation.
pub const CSV_PAGE: i64 = 1000;

pub const EXPORT_PAGE: &str = "SELECT id, tenant_id, seq, at, actor_user_id, actor_role, action, target_type, \
    target_id, ip, user_agent, metadata, prev_hash, hash FROM audit_log \
    WHERE tenant_id = ?1 AND seq > ?2 AND at >= ?3 AND at < ?4 ORDER BY seq LIMIT ?5";

/// Whose log: a client's or an agency's (by id), or the platform's own.
#[derive(Clone, Copy)]
pub enum Log<'a> {
    Of(TenantKind, &'a str),
    Platform,
}

/// The tenant id a log is filed under, once the caller reaches it (404) and may read audits
/// there (403). The platform's log is for platform admins.
async fn reach<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, log: Log<'_>) -> ApiResult<String> {
    match log {
        Log::Of(kind, id) => access::tenant(ctx, req, who, kind, id, Permission::AuditRead).await,
        Log::Platform if who.can(Permission::PlatformAdmin) => Ok("platform".into()),
        Log::Platform => Err(ApiError::forbidden("platform admins only")),
    }
}

/// `GET /api/{clients|agencies}/{id}/audit`, `GET /api/admin/audit`: in the order things happened,
/// or newest first with `?order=newest`, paged by a cursor of the last row's time and id.
pub async fn list<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, log: Log<'_>) -> ApiResult<Response> {
    let tenant = reach(ctx, req, who, log).await?;
    let (cursor, limit) = page_params(req)?;
    let (sql, start) = match req.query_param("order").as_deref() {
        None | Some("oldest") => (audit::LIST_FOR_TENANT, i64::MIN),
        Some("newest") => (audit::LIST_NEWEST_FOR_TENANT, i64::MAX),
        Some(_) => return Err(ApiError::bad_request("invalid_order", "order is oldest or newest")),
    };
    // The cursor is the last row's `at` and id: `{at}.{id}`.
    let (at, id) = if cursor.is_empty() {
        (start, String::new())
    } else {
        let bad = || ApiError::bad_request("invalid_cursor", "cursor is malformed");
        let (at, id) = cursor.split_once('.').ok_or_else(bad)?;
        (at.parse::<i64>().map_err(|_| bad())?, id.to_string())
    };
    let rows: Vec<ChainRow> =
        ctx.p.query_as(sql, &[tenant.into(), Param::Int(at), id.into(), Param::Int(limit)]).await?;
    let items: Vec<AuditEntry> = rows.into_iter().map(|r| AuditEntry::shown_to(who, r)).collect();
    Ok(page_response(&items, limit, |e| Some(format!("{}.{}", e.at, e.id))))
}

/// `GET .../audit/verify`: seals what is new, then walks the chain; 200 either way, with `ok`
/// and the first break.
pub async fn verify<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    log: Log<'_>,
) -> ApiResult<Response> {
    let tenant = reach(ctx, req, who, log).await?;
    Ok(Response::json(200, &audit::verify(ctx.p, &tenant).await?))
}

/// `GET .../audit/export?from=&to=&after=`: the rows in `[from, to)` (RFC 3339 instants or
/// `YYYY-MM-DD`, UTC; default everything) as CSV, in chain order, one page of `CSV_PAGE` rows at a
/// time. The first page carries the header line; a full page links the next with
/// `Link: <…>; rel="next"`, so the whole range is never held in memory at once.
pub async fn export<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    log: Log<'_>,
) -> ApiResult<Response> {
    let tenant = reach(ctx, req, who, log).await?;
    let bound = |name: &str, default: i64| -> ApiResult<i64> {
        match req.query_param(name) {
            None => Ok(default),
            Some(v) => crate::platform::tz::parse_instant(&v)
                .or_else(|| crate::platform::tz::parse_date(&v).map(|d| d.days() * 86_400_000))
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_range", format!("{name} must be an RFC 3339 instant or YYYY-MM-DD"))
                }),
        }
    };
    let (from, to) = (bound("from", 0)?, bound("to", i64::MAX)?);
    if from >= to {
        return Err(ApiError::bad_request("invalid_range", "from must be before to"));
    }
    let after =
        match req.query_param("after") {
            None => 0,
            Some(a) => a.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "after is the seq the previous page ended with")
            })?,
        };
    audit::seal(ctx.p, &tenant, 5_000).await?;
    let rows: Vec<ChainRow> = ctx
        .p
        .query_as(
            EXPORT_PAGE,
            &[tenant.as_str().into(), Param::Int(after), Param::Int(from), Param::Int(to), Param::Int(CSV_PAGE)],
        )
        .await?;
    let mut csv = String::with_capacity(rows.len() * 200 + 200);
    if after == 0 {
        csv_line(&mut csv, COLUMNS.iter().copied());
    }
    for r in &rows {
        let redact = !shows_network(who, r.actor_role.as_deref());
        let hidden = |v: &Option<String>| if redact { String::new() } else { v.clone().unwrap_or_default() };
        csv_line(
            &mut csv,
            [
                r.seq.to_string(),
                r.id.clone(),
                crate::platform::tz::instant_string(r.at),
                r.actor_user_id.clone().unwrap_or_default(),
                r.actor_role.clone().unwrap_or_default(),
                r.action.clone(),
                r.target_type.clone(),
                r.target_id.clone().unwrap_or_default(),
                hidden(&r.ip),
                hidden(&r.user_agent),
                r.metadata.clone().unwrap_or_default(),
                r.hash.clone().unwrap_or_default(),
            ]
            .iter()
            .map(String::as_str),
        );
    }
    let mut resp = Response::text(200, "text/csv; charset=utf-8", csv)
        .with_header("content-disposition", format!("attachment; filename=\"audit-{tenant}.csv\""));
    if rows.len() as i64 == CSV_PAGE {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        for name in ["from", "to"] {
            if let Some(v) = req.query_param(name) {
                next.append_pair(name, &v);
            }
        }
        next.append_pair("after", &rows.last().map_or(0, |r| r.seq).to_string());
        resp.set_header("link", format!("<{}?{}>; rel=\"next\"", req.path, next.finish()));
    }
    Ok(resp)
}

const COLUMNS: [&str; 12] = [
    "seq",
    "id",
    "at",
    "actor_user_id",
    "actor_role",
    "action",
    "target_type",
    "target_id",
    "ip",
    "user_agent",
    "metadata",
    "hash",
];

/// One RFC 4180 record, CRLF-terminated: a field with a comma, quote, CR or LF is quoted, quotes
/// doubled. A field a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) is
/// prefixed with `'`, so an attacker's user agent cannot become one.
pub fn csv_line<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let formula = f.starts_with(['=', '+', '-', '@', '\t', '\r']);
        if formula || f.contains([',', '"', '\r', '\n']) {
            out.push('"');
            if formula {
                out.push('\'');
            }
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push_str("\r\n");
}

/// An audit row as the API shows it: metadata parsed, and the network details of staff above
/// the viewer's level withheld.
#[derive(Serialize)]
struct AuditEntry {
    id: String,
    tenant_id: String,
    at: i64,
    actor_user_id: Option<String>,
    actor_role: Option<String>,
    action: String,
    target_type: String,
    target_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    metadata: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_redacted: Option<bool>,
}

impl AuditEntry {
    fn shown_to(who: &Principal, r: ChainRow) -> Self {
        let redact = !shows_network(who, r.actor_role.as_deref());
        Self {
            metadata: r.metadata.and_then(|m| serde_json::from_str(&m).ok()).unwrap_or(Value::Null),
            ip: if redact { None } else { r.ip },
            user_agent: if redact { None } else { r.user_agent },
            network_redacted: redact.then_some(true),
            id: r.id,
            tenant_id: r.tenant_id,
            at: r.at,
            actor_user_id: r.actor_user_id,
            actor_role: r.actor_role,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::csv_line;

    #[test]
    fn csv_quotes_what_rfc_4180_says_and_defuses_formulas() {
        let mut out = String::new();
        csv_line(&mut out, ["plain", "a,b", "say \"hi\"", "two\nlines", "=HYPERLINK(\"x\")", "-1", ""]);
        assert_eq!(out, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"'=HYPERLINK(\"\"x\"\")\",\"'-1\",\r\n");
    }
}
