//! A client's non-secret preferences: a typed allowlist, each key with its validator and default.
//! `GET /api/clients/{id}/preferences` answers every key; `PATCH` sets some (`null` restores the
//! default). Anything not on the list is a 422, so nothing but these values ends up stored.

use serde_json::{json, Map, Value};

use crate::access::audit::{self, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, store::ClientRow};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{currency_field, json_body};
use crate::platform::http::{Request, Response};
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

pub const SELECT: &str = "SELECT preferences FROM clients WHERE id = ?1 AND agency_id = ?2";
pub const UPDATE: &str = "UPDATE clients SET preferences = ?3, time_zone = ?4, updated_at = ?5 \
    WHERE id = ?1 AND agency_id = ?2 AND (preferences <> ?3 OR time_zone <> ?4)";

/// The allowlist: each key, its default, and what it accepts.
const KEYS: [(&str, &str); 4] =
    [("locale", "en-US"), ("currency", "USD"), ("week_starts_on", "monday"), ("date_format", "YYYY-MM-DD")];

fn check(key: &str, v: &str) -> ApiResult<String> {
    let bad = |what: &str| ApiError::invalid("invalid_preference", format!("`{key}` must be {what}"));
    match key {
        "locale" => locale(v).ok_or_else(|| bad("a BCP 47 language tag such as en-US, de or pt-BR")),
        "currency" => currency_field(v),
        "week_starts_on" => ["monday", "sunday", "saturday"]
            .contains(&v)
            .then(|| v.to_string())
            .ok_or_else(|| bad("monday, sunday or saturday")),
        "date_format" => ["YYYY-MM-DD", "DD/MM/YYYY", "MM/DD/YYYY", "DD.MM.YYYY"]
            .contains(&v)
            .then(|| v.to_string())
            .ok_or_else(|| bad("YYYY-MM-DD, DD/MM/YYYY, MM/DD/YYYY or DD.MM.YYYY")),
        _ => Err(ApiError::invalid(
            "invalid_preference",
            format!("`{key}` is not a preference; they are time_zone, {}", KEYS.map(|(k, _)| k).join(", ")),
        )),
    }
}

/// A language tag of the common shape: language (2-3 letters), optional script (4), optional
/// region (2 letters or 3 digits), normalised to `ll-Ssss-RR`.
fn locale(v: &str) -> Option<String> {
    let mut parts = v.split(['-', '_']);
    let lang = parts.next().filter(|l| (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphabetic()))?;
    let mut out = lang.to_ascii_lowercase();
    let mut seen_region = false;
    for (i, p) in parts.enumerate() {
        if i == 0 && p.len() == 4 && p.bytes().all(|b| b.is_ascii_alphabetic()) {
            out.push('-');
            out.push_str(&p[..1].to_ascii_uppercase());
            out.push_str(&p[1..].to_ascii_lowercase());
        } else if !seen_region
            && ((p.len() == 2 && p.bytes().all(|b| b.is_ascii_alphabetic()))
                || (p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit())))
        {
            seen_region = true;
            out.push('-');
            out.push_str(&p.to_ascii_uppercase());
        } else {
            return None;
        }
    }
    Some(out)
}

fn shown(c: &ClientRow, stored: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("time_zone".into(), json!(c.time_zone));
    for (k, default) in KEYS {
        out.insert(k.into(), stored.get(k).cloned().unwrap_or_else(|| json!(default)));
    }
    Value::Object(out)
}

async fn stored<P: Platform>(ctx: &Ctx<'_, P>, c: &ClientRow) -> ApiResult<Map<String, Value>> {
    let rows = ctx.p.query(SELECT, &[c.id.as_str().into(), c.agency_id.as_str().into()]).await?;
    let raw = rows.first().and_then(|r| crate::platform::ports::col_str(r, "preferences")).unwrap_or_default();
    Ok(crate::platform::body::parse(raw.as_bytes(), "preferences").unwrap_or_default())
}

/// `GET /api/clients/{id}/preferences`.
pub async fn get<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, id: &str) -> ApiResult<Response> {
    let (_, c) = access::client(ctx, req, who, id, Permission::ClientsRead).await?;
    let stored = stored(ctx, &c).await?;
    Ok(Response::json(200, &shown(&c, &stored)))
}

/// `PATCH /api/clients/{id}/preferences {key: value | null}`: audited with the keys changed.
pub async fn patch<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, id: &str) -> ApiResult<Response> {
    let (_, c) = access::client(ctx, req, who, id, Permission::ClientsWrite).await?;
    let body: Map<String, Value> = json_body(req, &[])?;
    let mut prefs = stored(ctx, &c).await?;
    let mut time_zone = c.time_zone.clone();
    for (k, v) in &body {
        match (k.as_str(), v) {
            ("time_zone", Value::String(tz)) => {
                time_zone =
                    crate::platform::tz::Zone::get(ctx.p, tz).map(|z| z.name().to_string()).ok_or_else(|| {
                        ApiError::invalid("invalid_time_zone", "time_zone must be an IANA name like Europe/Berlin")
                    })?
            }
            ("time_zone", _) => return Err(ApiError::invalid("invalid_time_zone", "time_zone is an IANA name")),
            (k, Value::Null) => {
                check(k, KEYS.iter().find(|(key, _)| *key == k).map_or("", |(_, d)| *d))?;
                prefs.remove(k);
            }
            (k, Value::String(s)) => {
                prefs.insert(k.to_string(), json!(check(k, s.trim())?));
            }
            (k, _) => {
                check(k, "")?;
                return Err(ApiError::invalid("invalid_preference", format!("`{k}` is a string, or null")));
            }
        }
    }
    let stmts = [
        Stmt::new(
            UPDATE,
            vec![
                c.id.as_str().into(),
                c.agency_id.as_str().into(),
                Value::Object(prefs.clone()).to_string().into(),
                time_zone.as_str().into(),
                Param::Int(ctx.p.now_ms()),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: &c.id,
                action: "client.preferences_updated",
                target_type: "client",
                target_id: Some(&c.id),
                metadata: json!({"fields": body.keys().collect::<Vec<_>>()}),
            },
        )?,
    ];
    ctx.p.batch(&stmts).await?;
    ctx.tenant_changed(&c.id);
    let c = ClientRow { time_zone, ..c };
    Ok(Response::json(200, &shown(&c, &prefs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_are_checked_and_normalised() {
        assert_eq!(locale("en-us").as_deref(), Some("en-US"));
        assert_eq!(locale("pt_BR").as_deref(), Some("pt-BR"));
        assert_eq!(locale("zh-hant-tw").as_deref(), Some("zh-Hant-TW"));
        assert_eq!(locale("es-419").as_deref(), Some("es-419"));
        assert_eq!(locale("de").as_deref(), Some("de"));
        for bad in ["", "english", "e", "en-USA1", "en-US-CA", "<script>", "en--US"] {
            assert_eq!(locale(bad), None, "{bad}");
        }
    }
}
