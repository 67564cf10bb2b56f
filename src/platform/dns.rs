//! DNS over HTTPS, the JSON API that cloudflare-dns.com and dns.google speak: one question, its
//! answers as presentation text. Domain proofs read TXT records through it, and webhook delivery
//! reads the A and AAAA records of a receiver's name.

use serde_json::Value;

use crate::platform::error::{ApiError, ApiResult};
use crate::platform::ports::Outbound;

/// One answer record: its numeric type (1 A, 5 CNAME, 16 TXT, 28 AAAA) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub rtype: i64,
    pub data: String,
}

/// What the resolver said about a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Records(Vec<Record>),
    /// NXDOMAIN: the name does not exist.
    NoSuchName,
}

/// Asks `resolver` one question. A resolver that is unreachable, answers badly or reports a
/// failure (SERVFAIL, REFUSED) is an upstream error, never an empty answer.
pub async fn query(out: &impl Outbound, resolver: &str, name: &str, rtype: &str) -> ApiResult<Lookup> {
    let mut url =
        url::Url::parse(resolver).map_err(|_| ApiError::Misconfigured("DOH_RESOLVER_URL is not a URL".into()))?;
    url.query_pairs_mut().append_pair("name", name).append_pair("type", rtype);
    let reply = out
        .fetch_text(url.as_str(), "application/dns-json")
        .await
        .map_err(|e| ApiError::Upstream(format!("DNS resolver unreachable: {e}")))?;
    if reply.status != 200 {
        return Err(ApiError::Upstream(format!("DNS resolver answered HTTP {}", reply.status)));
    }
    let v: Value =
        serde_json::from_str(&reply.body).map_err(|_| ApiError::Upstream("DNS resolver sent invalid JSON".into()))?;
    match v["Status"].as_i64() {
        Some(0) => {}
        Some(3) => return Ok(Lookup::NoSuchName),
        _ => return Err(ApiError::Upstream("DNS resolver reported a failure".into())),
    }
    let records = v["Answer"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| Some(Record { rtype: r["type"].as_i64()?, data: r["data"].as_str()?.to_string() }))
                .collect()
        })
        .unwrap_or_default();
    Ok(Lookup::Records(records))
}
