//! Request extractors and field validators shared by every feature: the JSON body, paging, the
//! path's segments, the Host header and bounded text fields. No feature knowledge lives here.

use serde::Serialize;
use serde_json::Value;

use super::body::Body;
use super::error::{ApiError, ApiResult};
use super::http::{Method, Request, Response};

pub const MAX_JSON_BODY: usize = 64 * 1024;
const MAX_HOST_LEN: usize = 260;

/// The request's Host, normalised to `host[:port]`, as portal tokens are bound to it.
pub fn site_host(req: &Request) -> Option<String> {
    let (host, port) = parse_host(req.header("host")?).ok()?;
    Some(match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

pub fn req_method(req: &Request) -> &'static str {
    match req.method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Other => "OTHER",
    }
}

pub fn require(m: Method, want: Method) -> ApiResult<()> {
    if m == want {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

/// Splits and percent-decodes the path. Encoded slashes and dot segments are refused, so a
/// segment is always one opaque name. A `%` not followed by two hex digits stays as it is, and
/// bytes that do not decode to UTF-8 become U+FFFD, as the URL standard's decoder does.
pub fn segments(path: &str) -> ApiResult<Vec<String>> {
    let bad = || ApiError::bad_request("invalid_path", "the request path is malformed");
    if path.len() > 2048 || !path.starts_with('/') {
        return Err(bad());
    }
    let mut out = Vec::new();
    for raw in path[1..].split('/') {
        if raw.is_empty() {
            continue;
        }
        let dec = if raw.contains('%') {
            percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
        } else {
            raw.to_string()
        };
        if dec == "." || dec == ".." || dec.contains('/') || dec.contains('\\') || dec.contains('\0') {
            return Err(bad());
        }
        out.push(dec);
    }
    Ok(out)
}

/// A Host header: ASCII hostname (case folded) and optional port. Anything else is refused.
pub fn parse_host(raw: &str) -> ApiResult<(String, Option<u16>)> {
    let bad = || ApiError::bad_request("invalid_host", "the Host header is not a valid hostname");
    if raw.is_empty() || raw.len() > MAX_HOST_LEN || !raw.is_ascii() {
        return Err(bad());
    }
    let lower = raw.to_ascii_lowercase();
    let (host, port) = if let Some(rest) = lower.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        (format!("[{h}]"), after.strip_prefix(':'))
    } else {
        match lower.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (lower.clone(), None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
        None => None,
    };
    let host = host.strip_suffix('.').unwrap_or(&host).to_string();
    let valid = host.starts_with('[')
        || (!host.is_empty()
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));
    if !valid {
        return Err(bad());
    }
    Ok((host, port))
}

/// Parses a JSON body into `T`. Malformed JSON is 400; unknown fields, wrong types and the
/// fields a caller may never set (`forbidden`) are 422.
pub fn json_body<T: Body>(req: &Request, forbidden: &[&str]) -> ApiResult<T> {
    T::from_object(json_object(req, forbidden)?).map_err(|e| ApiError::invalid("invalid_field", e))
}

/// `json_body`'s checks, which do not depend on `T`: kept out of the generic function so each
/// body type adds only its own decoding to the Worker.
fn json_object(req: &Request, forbidden: &[&str]) -> ApiResult<serde_json::Map<String, Value>> {
    if req.body.len() > MAX_JSON_BODY {
        return Err(ApiError::TooLarge(format!("JSON bodies are limited to {MAX_JSON_BODY} bytes")));
    }
    let ct = req.header("content-type").unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(ApiError::UnsupportedMediaType("send the body as application/json".into()));
    }
    let value: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ApiError::bad_request("invalid_json", "body must be a JSON object"));
    };
    if let Some(f) = forbidden.iter().find(|f| obj.contains_key(**f)) {
        return Err(ApiError::invalid("forbidden_field", format!("`{f}` cannot be set through this endpoint")));
    }
    Ok(obj)
}

/// `?cursor=` and `?limit=` for lists ordered by id.
pub fn page_params(req: &Request) -> ApiResult<(String, i64)> {
    let cursor = req.query_param("cursor").unwrap_or_default();
    if cursor.len() > 128 {
        return Err(ApiError::bad_request("invalid_cursor", "cursor is malformed"));
    }
    let limit = match req.query_param("limit") {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::bad_request("invalid_limit", "limit must be 1-100"))?,
    };
    Ok((cursor, limit))
}

/// `GET` a page of a tenant's rows straight from a list statement taking `(tenant, cursor, limit)`.
pub async fn tenant_page<T: super::rows::FromRow + Serialize>(
    db: &impl super::ports::Database,
    req: &Request,
    sql: &str,
    tenant: &str,
    cursor_of: impl Fn(&T) -> Option<String>,
) -> ApiResult<Response> {
    let (cursor, limit) = page_params(req)?;
    let items: Vec<T> = db.query_as(sql, &[tenant.into(), cursor.into(), super::ports::Param::Int(limit)]).await?;
    Ok(page_response(&items, limit, cursor_of))
}

/// A page of items and the cursor for the next one, if the page was full.
pub fn page_response<T: Serialize>(items: &[T], limit: i64, cursor_of: impl Fn(&T) -> Option<String>) -> Response {
    /// Serialized straight to bytes: no `Value` tree built in between.
    #[derive(Serialize)]
    struct Page<'a, T> {
        items: &'a [T],
        next_cursor: Option<String>,
    }
    let next_cursor = if items.len() as i64 == limit { items.last().and_then(cursor_of) } else { None };
    Response::json(200, &Page { items, next_cursor })
}

/// A bounded free-text field.
pub fn text_field(name: &'static str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(|c| c.is_control()) {
        return Err(ApiError::Invalid("invalid_field", format!("`{name}` must be 1-{max} printable characters")));
    }
    Ok(v.to_string())
}

/// Active ISO 4217 currency codes.
const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP \
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF \
    GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD \
    LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR \
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY \
    TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

/// An ISO 4217 code, uppercased.
pub fn currency_field(c: &str) -> ApiResult<String> {
    let up = c.trim().to_ascii_uppercase();
    if up.len() == 3 && CURRENCIES.split_whitespace().any(|k| k == up) {
        Ok(up)
    } else {
        Err(ApiError::invalid("invalid_currency", "`currency` must be an ISO 4217 code such as USD or EUR"))
    }
}

pub fn email_field(value: &str) -> ApiResult<String> {
    let v = value.trim().to_lowercase();
    let ok = v.len() <= 254
        && v.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains("..")
        })
        && v.matches('@').count() == 1
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(ApiError::invalid("invalid_email", "`email` is not a valid address"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_or_are_refused() {
        assert_eq!(parse_host("Acme.LOCALHOST:8787").unwrap(), ("acme.localhost".into(), Some(8787)));
        assert_eq!(parse_host("example.com.").unwrap(), ("example.com".into(), None));
        for bad in ["", "exa mple.com", "ex\u{e4}mple.com", "a..b", "host:99999", "host:", "a/b", &"a".repeat(300)] {
            assert!(parse_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_with_traversal_or_encoded_slashes_are_refused() {
        assert_eq!(segments("/api/clients/cli_1").unwrap(), vec!["api", "clients", "cli_1"]);
        for bad in ["/api/../admin", "/api/%2e%2e/x", "/api/a%2fb", "/api/a%5cb", "/api/%00", "/api/%2E", "/a/%5C"] {
            assert!(segments(bad).is_err(), "{bad}");
        }
    }

    /// Segments decode as the URL standard's percent-decoder does, and a segment is all of its
    /// characters: `&`, `=` and `+` are not query syntax here.
    #[test]
    fn segments_are_percent_decoded_whole() {
        let cases = [
            ("/x/a%20b", "a b"),
            ("/x/a+b", "a+b"),
            ("/x/a%2Bb", "a+b"),
            ("/x/cli_1&x=1", "cli_1&x=1"),
            ("/x/a=b", "a=b"),
            ("/x/%", "%"),
            ("/x/%4", "%4"),
            ("/x/%zz", "%zz"),
            ("/x/100%25", "100%"),
            ("/x/%C3%A9t%C3%A9", "\u{e9}t\u{e9}"),
            ("/x/%FF", "\u{fffd}"),
            ("/x/caf\u{e9}", "caf\u{e9}"),
        ];
        for (path, want) in cases {
            assert_eq!(segments(path).unwrap(), vec!["x".to_string(), want.to_string()], "{path}");
        }
    }
}
