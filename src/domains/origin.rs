//! The `Origin` request header: strict parsing into an `Origin`, and matching it against the
//! origins a client registered.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use url::{Host, Url};

use crate::domains::hostname::DomainPattern;

const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An origin exactly as a browser serializes it: http or https, a canonical domain host (never an
/// IP), and a port only when it is not the scheme's default. Only [`parse_origin_header`] builds
/// one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: Scheme,
    host: String,
    port: Option<u16>,
}

impl Origin {
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Lowercase A-labels, no trailing dot, no empty label.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `None` for the scheme's default port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The header value this origin was parsed from, byte for byte; safe to echo in
    /// `Access-Control-Allow-Origin`.
    pub fn serialize(&self) -> String {
        self.to_string()
    }

    /// `http://localhost[:port]` or `http://*.localhost[:port]`, which browsers resolve to
    /// loopback; accepted only for clients in test mode.
    pub fn is_dev_localhost(&self) -> bool {
        self.scheme == Scheme::Http && (self.host == "localhost" || self.host.ends_with(".localhost"))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// Why an `Origin` header was refused. Every variant answers 403 `domain_not_authorized`; the code
/// and reason are for logs and the admin "why doesn't my widget show" explainer, never the response.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OriginError {
    /// 403.
    #[error("origin header is missing or empty")]
    Missing,
    /// 403: browsers send `null` from sandboxed iframes, `file:` pages and some redirects.
    #[error("origin is the literal null (sandboxed iframe, file: page or cross-site redirect)")]
    Null,
    /// 403.
    #[error("origin is not an absolute URL")]
    Unparseable,
    /// 403.
    #[error("origin scheme is not http or https")]
    UnsupportedScheme,
    /// 403.
    #[error("origin carries a user name or password")]
    Userinfo,
    /// 403.
    #[error("origin carries a path")]
    Path,
    /// 403.
    #[error("origin carries a query or fragment")]
    QueryOrFragment,
    /// 403: only domain names can be registered, so an IP origin can never match.
    #[error("origin host is an IP address; only domain names can be registered")]
    IpHost,
    /// 403.
    #[error("origin host ends in a dot; load the page without the trailing dot")]
    TrailingDot,
    /// 403: an empty label or a length no DNS name can have.
    #[error("origin host is not a valid DNS name")]
    InvalidHost,
    /// 403: a browser never sends this form, so something rewrote or forged the header.
    #[error("not canonical: expected {expected}")]
    NotCanonical { expected: String },
}

impl OriginError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "origin_missing",
            Self::Null => "origin_null",
            Self::Unparseable => "origin_unparseable",
            Self::UnsupportedScheme => "origin_scheme_unsupported",
            Self::Userinfo => "origin_has_userinfo",
            Self::Path => "origin_has_path",
            Self::QueryOrFragment => "origin_has_query_or_fragment",
            Self::IpHost => "origin_ip_host",
            Self::TrailingDot => "origin_trailing_dot",
            Self::InvalidHost => "origin_invalid_host",
            Self::NotCanonical { .. } => "origin_not_canonical",
        }
    }
}

/// Parses an `Origin` header value. The `url` crate quietly folds uppercase, `:443`, tabs, `%41`,
/// full-width characters and more into a clean origin, so after the structural checks the
/// canonical serialization must equal `raw` byte for byte.
pub fn parse_origin_header(raw: &str) -> Result<Origin, OriginError> {
    if raw.is_empty() {
        return Err(OriginError::Missing);
    }
    if raw == "null" {
        return Err(OriginError::Null);
    }
    match plain_origin(raw) {
        Some(origin) => Ok(origin),
        None => parse_with_url(raw),
    }
}

fn parse_with_url(raw: &str) -> Result<Origin, OriginError> {
    let url = Url::parse(raw).map_err(|_| OriginError::Unparseable)?;
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(OriginError::UnsupportedScheme),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OriginError::Userinfo);
    }
    if url.path() != "/" {
        return Err(OriginError::Path);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(OriginError::QueryOrFragment);
    }
    let host = match url.host() {
        Some(Host::Domain(host)) => host,
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => return Err(OriginError::IpHost),
        None => return Err(OriginError::Unparseable),
    };
    // The URL standard keeps a trailing dot and empty labels, and sets no length limit.
    if host.ends_with('.') {
        return Err(OriginError::TrailingDot);
    }
    if !dns_name(host) {
        return Err(OriginError::InvalidHost);
    }
    // With userinfo, path, query and fragment ruled out, the serialization is the origin plus `/`.
    let canonical = url.as_str().strip_suffix('/').unwrap_or(url.as_str());
    if canonical != raw {
        return Err(OriginError::NotCanonical { expected: canonical.to_owned() });
    }
    Ok(Origin { scheme, host: host.to_owned(), port: url.port() })
}

/// The common case without the URL parser: `http[s]://` and a lowercase ASCII DNS name, no port.
/// It answers only for headers the full parse accepts unchanged, and with the same `Origin`
/// (`tests::the_plain_path_agrees_with_the_parser`); anything else is left to the parser.
fn plain_origin(raw: &str) -> Option<Origin> {
    let (scheme, host) = if let Some(host) = raw.strip_prefix("https://") {
        (Scheme::Https, host)
    } else {
        (Scheme::Http, raw.strip_prefix("http://")?)
    };
    // A last label starting with a letter is never read as an IPv4 number (`1`, `0x7f`).
    let last = host.rsplit('.').next()?;
    let ok = dns_name(host)
        && last.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && !host.split('.').any(|label| label.starts_with("xn--"));
    ok.then(|| Origin { scheme, host: host.to_owned(), port: None })
}

/// A host the gate can match: lowercase letters, digits, hyphens and dots, in labels of 1-63
/// bytes and 253 in all. The URL parser lets `*`, `!`, `=` and friends into a host; no
/// registrable site has them, and under a wildcard they would match.
fn dns_name(host: &str) -> bool {
    host.len() <= MAX_HOST_LEN
        && host.split('.').all(|label| (1..=MAX_LABEL_LEN).contains(&label.len()))
        && host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// One origin a client registered: a domain pattern under one scheme and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginRule {
    pub pattern: DomainPattern,
    pub scheme: Scheme,
    /// `None` for the scheme's default port, as in [`Origin::port`].
    pub port: Option<u16>,
}

impl OriginRule {
    /// Folds an explicit default port into `None`, since a parsed `Origin` never carries one.
    pub fn new(pattern: DomainPattern, scheme: Scheme, port: Option<u16>) -> Self {
        let port = port.filter(|&port| port != scheme.default_port());
        Self { pattern, scheme, port }
    }

    pub fn matches(&self, origin: &Origin) -> bool {
        self.scheme == origin.scheme && self.port == origin.port && self.pattern.matches_host(&origin.host)
    }
}

impl fmt::Display for OriginRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.pattern)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Want {
        Allowed,
        NoRuleMatches,
        Refused(&'static str),
    }
    use Want::{Allowed, NoRuleMatches, Refused};

    fn rule(pattern: &str, scheme: Scheme, port: Option<u16>) -> OriginRule {
        let pattern = DomainPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        OriginRule::new(pattern, scheme, port)
    }

    fn rules() -> [OriginRule; 3] {
        [
            rule("example.com", Scheme::Https, None),
            rule("*.shop.example", Scheme::Https, None),
            rule("example.org", Scheme::Http, Some(8080)),
        ]
    }

    fn decide(raw: &str) -> Want {
        match parse_origin_header(raw) {
            Ok(origin) if rules().iter().any(|rule| rule.matches(&origin)) => Allowed,
            Ok(_) => NoRuleMatches,
            Err(e) => Refused(e.code()),
        }
    }

    #[test]
    fn host_and_label_lengths_are_capped_exactly() {
        // 63-character labels pass, 64 do not.
        let label63 = format!("https://{}.example", "a".repeat(63));
        assert!(parse_origin_header(&label63).is_ok());
        let label64 = format!("https://{}.example", "a".repeat(64));
        assert_eq!(parse_origin_header(&label64).unwrap_err().code(), "origin_invalid_host");
        // A 253-byte host passes, 254 does not: 4 labels of 61 and dots, plus a tail.
        let host = |len: usize| {
            let head = format!("{}.", "b".repeat(61)).repeat(4); // 248 bytes
            format!("{head}{}", "c".repeat(len - head.len()))
        };
        assert_eq!(host(253).len(), 253);
        assert!(parse_origin_header(&format!("https://{}", host(253))).is_ok());
        assert_eq!(parse_origin_header(&format!("https://{}", host(254))).unwrap_err().code(), "origin_invalid_host");
    }

    #[test]
    fn only_exact_registered_origins_pass_among_hostile_headers() {
        let long_label = format!("https://{}.shop.example", "a".repeat(64));
        let long_host = format!("https://{}shop.example", format!("{}.", "a".repeat(63)).repeat(4));
        let cases: &[(&str, Want)] = &[
            ("https://example.com", Allowed),
            ("https://a.shop.example", Allowed),
            ("https://a.b.shop.example", Allowed),
            ("https://xn--bcher-kva.shop.example", Allowed),
            ("http://example.org:8080", Allowed),
            // Parsed, but no registered scheme, port and host fits.
            ("http://example.com", NoRuleMatches),
            ("https://example.com:8443", NoRuleMatches),
            ("https://example.org:8080", NoRuleMatches),
            ("http://example.org", NoRuleMatches),
            ("https://example.org", NoRuleMatches),
            ("http://a.shop.example", NoRuleMatches),
            ("https://a.shop.example:8443", NoRuleMatches),
            ("https://shop.example", NoRuleMatches),
            ("https://evilshop.example", NoRuleMatches),
            ("https://shop.example.evil.com", NoRuleMatches),
            ("https://www.example.com", NoRuleMatches),
            ("https://evil-example.com", NoRuleMatches),
            ("https://example.com.evil.com", NoRuleMatches),
            ("https://notexample.com", NoRuleMatches),
            ("https://xn--exmple-4nf.com", NoRuleMatches),
            ("http://localhost:8787", NoRuleMatches),
            ("https://com", NoRuleMatches),
            // Refused before any rule is consulted.
            ("", Refused("origin_missing")),
            ("null", Refused("origin_null")),
            ("NULL", Refused("origin_unparseable")),
            ("example.com", Refused("origin_unparseable")),
            ("//example.com", Refused("origin_unparseable")),
            ("https://", Refused("origin_unparseable")),
            ("https://example.com https://evil.com", Refused("origin_unparseable")),
            ("https://example.com, https://evil.com", Refused("origin_unparseable")),
            ("https://example.com,https://evil.com", Refused("origin_has_path")),
            ("https://example.com\r\nAccess-Control-Allow-Origin: *", Refused("origin_unparseable")),
            ("https://example.com\r\n", Refused("origin_not_canonical")),
            ("HTTPS://example.com", Refused("origin_not_canonical")),
            ("https://EXAMPLE.COM", Refused("origin_not_canonical")),
            ("https://Example.com", Refused("origin_not_canonical")),
            ("https://example.com:443", Refused("origin_not_canonical")),
            ("https://example.com:", Refused("origin_not_canonical")),
            ("http://example.org:08080", Refused("origin_not_canonical")),
            ("https://example.com/", Refused("origin_not_canonical")),
            ("https://example.com\\", Refused("origin_not_canonical")),
            ("https:example.com", Refused("origin_not_canonical")),
            ("https://%65xample.com", Refused("origin_not_canonical")),
            ("https://ex%41mple.com", Refused("origin_not_canonical")),
            ("https://ｅxample.com", Refused("origin_not_canonical")),
            ("https://example。com", Refused("origin_not_canonical")),
            (" https://example.com", Refused("origin_not_canonical")),
            ("https://example.com ", Refused("origin_not_canonical")),
            ("https://exam\tple.com", Refused("origin_not_canonical")),
            ("https://example.com\u{0}", Refused("origin_not_canonical")),
            ("https://:@example.com", Refused("origin_not_canonical")),
            ("https://bücher.shop.example", Refused("origin_not_canonical")),
            ("https://A.shop.example", Refused("origin_not_canonical")),
            ("https://example.com.", Refused("origin_trailing_dot")),
            ("https://a.shop.example.", Refused("origin_trailing_dot")),
            ("https://a..shop.example", Refused("origin_invalid_host")),
            ("https://.shop.example", Refused("origin_invalid_host")),
            (&long_label, Refused("origin_invalid_host")),
            (&long_host, Refused("origin_invalid_host")),
            ("https://example.com/path", Refused("origin_has_path")),
            ("https://a.shop.example/", Refused("origin_not_canonical")),
            ("https://example.com?x=1", Refused("origin_has_query_or_fragment")),
            ("https://example.com/?", Refused("origin_has_query_or_fragment")),
            ("https://example.com#top", Refused("origin_has_query_or_fragment")),
            ("https://user@example.com", Refused("origin_has_userinfo")),
            ("https://user:pass@example.com", Refused("origin_has_userinfo")),
            ("https://example.com@evil.com", Refused("origin_has_userinfo")),
            ("https://127.0.0.1", Refused("origin_ip_host")),
            ("http://127.1", Refused("origin_ip_host")),
            ("https://0x7f.0.0.1", Refused("origin_ip_host")),
            ("https://[::1]", Refused("origin_ip_host")),
            ("https://[2001:db8::1]:8080", Refused("origin_ip_host")),
            ("file:///etc/passwd", Refused("origin_scheme_unsupported")),
            ("file://example.com", Refused("origin_scheme_unsupported")),
            ("ftp://example.com", Refused("origin_scheme_unsupported")),
            ("ws://example.com", Refused("origin_scheme_unsupported")),
            ("javascript:alert(1)", Refused("origin_scheme_unsupported")),
            ("data:text/html,hi", Refused("origin_scheme_unsupported")),
        ];
        let failures: Vec<_> = cases
            .iter()
            .filter_map(|&(raw, want)| {
                let got = decide(raw);
                (got != want).then(|| format!("{raw:?}: want {want:?}, got {got:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
        assert!(cases.len() >= 45);
        let allowed = cases.iter().filter(|(_, want)| *want == Allowed).count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn a_parsed_origin_serializes_to_the_header_it_came_from() {
        for raw in ["https://example.com", "http://example.org:8080", "https://a.b.shop.example:8443"] {
            let origin = parse_origin_header(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(origin.serialize(), raw);
        }
        let Ok(origin) = parse_origin_header("http://example.org:8080") else {
            panic!("must parse");
        };
        assert_eq!((origin.scheme(), origin.host(), origin.port()), (Scheme::Http, "example.org", Some(8080)));
    }

    /// Every header the plain path answers, the URL parser answers the same way. Hosts are built
    /// from the characters that could fool it: digits and hex (IPv4 forms), `xn--`, uppercase,
    /// dots, hyphens, a port, percent-encoding and non-ASCII.
    #[test]
    fn the_plain_path_agrees_with_the_parser() {
        const PARTS: [&str; 24] = [
            "a",
            "z",
            "0",
            "9",
            "x",
            "0x",
            "7f",
            "xn--",
            "xn--bcher-kva",
            "-",
            ".",
            "..",
            "A",
            "é",
            "%41",
            ":",
            ":443",
            ":80",
            ":8080",
            "/",
            "@",
            "1",
            "255",
            "localhost",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut plain, mut total) = (0, 0);
        for _ in 0..200_000 {
            let scheme =
                ["https://", "http://", "HTTPS://", "https:/", "ftp://", "https://www."][(next() % 6) as usize];
            let mut raw = scheme.to_string();
            for _ in 0..1 + next() % 6 {
                raw.push_str(PARTS[(next() % PARTS.len() as u64) as usize]);
            }
            total += 1;
            if let Some(fast) = plain_origin(&raw) {
                plain += 1;
                assert_eq!(parse_with_url(&raw), Ok(fast), "{raw}");
            }
        }
        for raw in
            ["https://a", "http://1.2.3.a", "https://-a-.b", "https://a.0x7f", "https://1.2.3.4", "https://a.b.c"]
        {
            if let Some(fast) = plain_origin(raw) {
                assert_eq!(parse_with_url(raw), Ok(fast), "{raw}");
            }
        }
        assert!(plain > 3_000 && plain < total, "{plain} of {total} took the plain path");
    }

    #[test]
    fn a_non_canonical_origin_explains_the_expected_form() {
        let Err(error) = parse_origin_header("https://EXAMPLE.com:443/") else {
            panic!("must be refused");
        };
        assert_eq!(error.to_string(), "not canonical: expected https://example.com");
        assert!(OriginError::Null.to_string().starts_with("origin is the literal null"));
    }

    #[test]
    fn an_explicit_default_port_in_a_rule_is_folded_away() {
        let rule = rule("example.com", Scheme::Https, Some(443));
        assert_eq!(rule.port, None);
        assert_eq!(rule.to_string(), "https://example.com");
        assert_eq!(rules()[1].to_string(), "https://*.shop.example");
        assert_eq!(rules()[2].to_string(), "http://example.org:8080");
    }

    #[test]
    fn only_http_localhost_origins_are_dev_origins() {
        let cases = [
            ("http://localhost", true),
            ("http://localhost:8787", true),
            ("http://acme.localhost:8787", true),
            ("https://localhost:8787", false),
            ("http://localhost.evil.com", false),
            ("http://notlocalhost", false),
            ("http://example.com", false),
        ];
        for (raw, want) in cases {
            let origin = parse_origin_header(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(origin.is_dev_localhost(), want, "{raw}");
        }
    }
}
