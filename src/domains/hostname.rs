//! Domains a client registers for its widget: parsing what an admin types into a canonical
//! `DomainName` or `DomainPattern`, and matching a host against a pattern.

use std::fmt;
use std::net::Ipv6Addr;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use thiserror::Error;

use crate::domains::psl;

const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Why a domain cannot be registered. Every variant answers 422.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{}", self.message())]
pub enum DomainError {
    /// 422: empty, whitespace, characters outside letters, digits and hyphens, a URL, a port,
    /// userinfo, an empty label, or too long.
    InvalidDomain,
    /// 422: an IPv4 address in any form a browser would read as one, or an IPv6 address.
    IpLiteralNotAllowed,
    /// 422: the name is itself a public suffix, so no single client can own it.
    PublicSuffixNotAllowed,
    /// 422: `*` anywhere except as the whole leading label.
    InvalidWildcard,
    /// 422: a wildcard whose base is, or has below it, a public suffix would cover other people's
    /// sites: `*.co.uk`, but also `*.kobe.jp` (every `x.kobe.jp` is a public suffix).
    WildcardOverPublicSuffix,
}

impl DomainError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidDomain => "invalid_domain",
            Self::IpLiteralNotAllowed => "ip_literal_not_allowed",
            Self::PublicSuffixNotAllowed => "public_suffix_not_allowed",
            Self::InvalidWildcard => "invalid_wildcard",
            Self::WildcardOverPublicSuffix => "wildcard_over_public_suffix",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::InvalidDomain => {
                "Not a valid domain name: give a bare host name such as shop.example.com, without \
                 scheme, path, port or spaces"
            }
            Self::IpLiteralNotAllowed => "IP addresses cannot be registered; register a domain name",
            Self::PublicSuffixNotAllowed => {
                "Public suffixes such as co.uk or github.io cannot be registered; register your own \
                 domain under one"
            }
            Self::InvalidWildcard => "A wildcard must be a single leading label, as in *.example.com",
            Self::WildcardOverPublicSuffix => "A wildcard cannot cover a public suffix such as *.co.uk or *.github.io",
        }
    }
}

/// A host name in canonical form: A-labels, lowercase, no trailing dot, at most 253 bytes, labels
/// of 1 to 63 letters, digits and hyphens. It is never an IP address; it may be a public suffix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// Normalises one host name (no wildcard). Public suffixes pass here: refusing them is a
    /// registration rule, applied by [`DomainPattern::parse`].
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        // IDNA would drop or map some of these; refusing them keeps pasted junk from turning into
        // a name the admin never typed.
        if input.is_empty() || input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::InvalidDomain);
        }
        if input.contains('*') {
            return Err(DomainError::InvalidWildcard);
        }
        if is_ipv6_literal(input) {
            return Err(DomainError::IpLiteralNotAllowed);
        }
        // STD3 limits the mapped result to letters, digits and hyphens. Hyphens are allowed in any
        // position because real names (GitHub user pages, CDN nodes) put them where strict
        // CheckHyphens would refuse.
        let ascii = Uts46::new()
            .to_ascii(input.as_bytes(), AsciiDenyList::STD3, Hyphens::Allow, DnsLength::Ignore)
            .map_err(|_| DomainError::InvalidDomain)?;
        // Checked after mapping, since U+3002 and friends become a trailing dot too.
        let name = ascii.strip_suffix('.').unwrap_or(&ascii);
        if name.len() > MAX_NAME_LEN
            || name.split('.').any(|label| label.is_empty() || label.len() > MAX_LABEL_LEN)
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(DomainError::InvalidDomain);
        }
        if ends_in_number(name) {
            return Err(DomainError::IpLiteralNotAllowed);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_ipv6_literal(input: &str) -> bool {
    let bare = input.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(input);
    bare.parse::<Ipv6Addr>().is_ok()
}

/// The WHATWG URL host parser's "ends in a number" test: such a host is parsed as IPv4 (`127.1`,
/// `0x7f.1`) or refused outright, so it can never name a site.
fn ends_in_number(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    last.strip_prefix("0x").is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A registered domain: one exact host, or `*.base`, which covers every subdomain of `base` at any
/// depth but never `base` itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainPattern {
    Exact(DomainName),
    Wildcard(DomainName),
}

impl DomainPattern {
    /// Applies every registration rule: normalisation, no IP literal, no public suffix, and `*`
    /// only as a whole leading label over a registrable base.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        match input.strip_prefix("*.") {
            Some("") => Err(DomainError::InvalidWildcard),
            Some(base) => {
                let base = DomainName::parse(base)?;
                if psl::is_public_suffix(base.as_str()) || psl::has_public_suffix_below(base.as_str()) {
                    return Err(DomainError::WildcardOverPublicSuffix);
                }
                Ok(Self::Wildcard(base))
            }
            None => {
                let name = DomainName::parse(input)?;
                if psl::is_public_suffix(name.as_str()) {
                    return Err(DomainError::PublicSuffixNotAllowed);
                }
                Ok(Self::Exact(name))
            }
        }
    }

    /// Rebuilds a pattern that was validated by [`DomainPattern::parse`] when it was registered
    /// and stored in canonical form. It checks shape only — no IDNA, no Public Suffix List — so
    /// the gate's cold path never loads the list. Anything not canonical is refused.
    pub fn from_stored(stored: &str) -> Option<Self> {
        let (wildcard, name) = match stored.strip_prefix("*.") {
            Some(base) => (true, base),
            None => (false, stored),
        };
        let canonical = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.split('.').all(|l| !l.is_empty() && l.len() <= MAX_LABEL_LEN)
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !canonical {
            return None;
        }
        let name = DomainName(name.to_owned());
        Some(if wildcard { Self::Wildcard(name) } else { Self::Exact(name) })
    }

    /// Whether some host would match both patterns. Two tenants may never hold overlapping
    /// patterns, or both could answer for one site.
    pub fn overlaps(&self, other: &DomainPattern) -> bool {
        let under = |name: &str, base: &str| {
            name.len() > base.len() && name.ends_with(base) && name.as_bytes()[name.len() - base.len() - 1] == b'.'
        };
        match (self, other) {
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Exact(n), Self::Wildcard(w)) | (Self::Wildcard(w), Self::Exact(n)) => under(n.as_str(), w.as_str()),
            (Self::Wildcard(a), Self::Wildcard(b)) => {
                a == b || under(a.as_str(), b.as_str()) || under(b.as_str(), a.as_str())
            }
        }
    }

    /// The registrable domain (eTLD+1) every host this pattern matches belongs to. Patterns that
    /// overlap always share it, so uniqueness is checked within one site.
    pub fn site(&self) -> Option<String> {
        psl::registrable_domain(self.base().as_str())
    }

    /// `host` must already be canonical (lowercase A-labels, no trailing dot, no empty label), as
    /// a parsed `Origin` host is; anything else simply fails to match.
    pub fn matches_host(&self, host: &str) -> bool {
        match self {
            Self::Exact(name) => host == name.as_str(),
            Self::Wildcard(base) => host
                .strip_suffix(base.as_str())
                .and_then(|sub| sub.strip_suffix('.'))
                .is_some_and(|sub| !sub.is_empty()),
        }
    }

    pub fn is_wildcard(&self) -> bool {
        matches!(self, Self::Wildcard(_))
    }

    pub fn base(&self) -> &DomainName {
        match self {
            Self::Exact(name) | Self::Wildcard(name) => name,
        }
    }

    /// The stored and displayed form: `*.example.com` or `example.com`.
    pub fn as_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => write!(f, "{name}"),
            Self::Wildcard(base) => write!(f, "*.{base}"),
        }
    }
}

#[cfg(test)]
mod stored_tests {
    use super::*;

    #[test]
    fn overlap_is_whether_any_host_matches_both() {
        let p = |s: &str| DomainPattern::parse(s).unwrap();
        let yes = [
            ("a.example.com", "a.example.com"),
            ("deep.sub.example.com", "*.example.com"),
            ("*.sub.example.com", "*.example.com"),
            ("*.example.com", "*.example.com"),
            ("*.example.com", "host.example.com"),
        ];
        for (a, b) in yes {
            assert!(p(a).overlaps(&p(b)) && p(b).overlaps(&p(a)), "{a} vs {b}");
        }
        let no = [
            ("example.com", "*.example.com"),
            ("evil-example.com", "*.example.com"),
            ("a.example.com", "b.example.com"),
            ("*.a.example.com", "*.b.example.com"),
            ("notexample.com", "*.example.com"),
        ];
        for (a, b) in no {
            assert!(!p(a).overlaps(&p(b)) && !p(b).overlaps(&p(a)), "{a} vs {b}");
        }
        assert_eq!(p("*.deep.shop.example.co.uk").site().unwrap(), "example.co.uk");
    }

    #[test]
    fn stored_patterns_round_trip_without_the_suffix_list_and_junk_is_refused() {
        for p in ["example.com", "*.shop.example", "xn--bcher-kva.example", "shop.localhost"] {
            assert_eq!(DomainPattern::from_stored(p).unwrap(), DomainPattern::parse(p).unwrap(), "{p}");
        }
        for bad in ["", "*.", "Example.com", "a..b", "exa mple.com", "*.*.x.com", "a*.x.com", "x.com."] {
            assert!(DomainPattern::from_stored(bad).is_none(), "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_normalises_or_refuses_each_input() {
        let long_label = "a".repeat(63);
        let longest_name = format!("{long_label}.{long_label}.{long_label}.{}.com", "b".repeat(57));
        assert_eq!(longest_name.len(), MAX_NAME_LEN);
        let too_long_name = format!("x{longest_name}");
        let label_too_long = format!("{}.example.com", "a".repeat(64));
        let with_long_label = format!("{long_label}.example.com");

        let cases: &[(&str, Result<&str, &str>)] = &[
            ("example.com", Ok("example.com")),
            ("Example.COM", Ok("example.com")),
            ("example.com.", Ok("example.com")),
            ("bücher.example", Ok("xn--bcher-kva.example")),
            ("BÜCHER.example.", Ok("xn--bcher-kva.example")),
            ("xn--bcher-kva.example", Ok("xn--bcher-kva.example")),
            ("ｅxample.com", Ok("example.com")),
            ("example。com", Ok("example.com")),
            ("shop.example.co.uk", Ok("shop.example.co.uk")),
            ("acme.github.io", Ok("acme.github.io")),
            ("my-app.workers.dev", Ok("my-app.workers.dev")),
            ("city.kobe.jp", Ok("city.kobe.jp")),
            ("foo-.github.io", Ok("foo-.github.io")),
            ("1password.com", Ok("1password.com")),
            (&with_long_label, Ok(&with_long_label)),
            (&longest_name, Ok(&longest_name)),
            ("*.example.com", Ok("*.example.com")),
            ("*.Shop.Example.com.", Ok("*.shop.example.com")),
            ("*.bücher.example", Ok("*.xn--bcher-kva.example")),
            ("*.acme.github.io", Ok("*.acme.github.io")),
            ("", Err("invalid_domain")),
            (".", Err("invalid_domain")),
            (" example.com", Err("invalid_domain")),
            ("example.com ", Err("invalid_domain")),
            ("exa mple.com", Err("invalid_domain")),
            ("example.com\t", Err("invalid_domain")),
            ("example.com\n", Err("invalid_domain")),
            ("exa\u{0}mple.com", Err("invalid_domain")),
            ("exa\u{a0}mple.com", Err("invalid_domain")),
            ("https://example.com", Err("invalid_domain")),
            ("example.com/path", Err("invalid_domain")),
            ("example.com:443", Err("invalid_domain")),
            ("user@example.com", Err("invalid_domain")),
            ("example.com?x", Err("invalid_domain")),
            ("exa_mple.com", Err("invalid_domain")),
            ("%65xample.com", Err("invalid_domain")),
            ("example..com", Err("invalid_domain")),
            (".example.com", Err("invalid_domain")),
            ("example.com..", Err("invalid_domain")),
            ("[example.com]", Err("invalid_domain")),
            ("xn--zz.example", Err("invalid_domain")),
            (&label_too_long, Err("invalid_domain")),
            (&too_long_name, Err("invalid_domain")),
            ("127.0.0.1", Err("ip_literal_not_allowed")),
            ("127.1", Err("ip_literal_not_allowed")),
            ("0x7f.1", Err("ip_literal_not_allowed")),
            ("0X7F.0.0.1", Err("ip_literal_not_allowed")),
            ("2130706433", Err("ip_literal_not_allowed")),
            ("1.2.3.4.", Err("ip_literal_not_allowed")),
            ("256.256.256.256", Err("ip_literal_not_allowed")),
            ("１２７.０.０.１", Err("ip_literal_not_allowed")),
            ("::1", Err("ip_literal_not_allowed")),
            ("[::1]", Err("ip_literal_not_allowed")),
            ("2001:db8::1", Err("ip_literal_not_allowed")),
            ("[2001:db8::1]", Err("ip_literal_not_allowed")),
            ("::ffff:1.2.3.4", Err("ip_literal_not_allowed")),
            ("*.127.0.0.1", Err("ip_literal_not_allowed")),
            ("com", Err("public_suffix_not_allowed")),
            ("co.uk", Err("public_suffix_not_allowed")),
            ("CO.UK.", Err("public_suffix_not_allowed")),
            ("github.io", Err("public_suffix_not_allowed")),
            ("workers.dev", Err("public_suffix_not_allowed")),
            ("pages.dev", Err("public_suffix_not_allowed")),
            ("localhost", Err("public_suffix_not_allowed")),
            ("example", Err("public_suffix_not_allowed")),
            ("c.kobe.jp", Err("public_suffix_not_allowed")),
            ("公司.cn", Err("public_suffix_not_allowed")),
            ("*", Err("invalid_wildcard")),
            ("*.", Err("invalid_wildcard")),
            ("a*.x.com", Err("invalid_wildcard")),
            ("*.*.x.com", Err("invalid_wildcard")),
            ("x.*.com", Err("invalid_wildcard")),
            ("*x.com", Err("invalid_wildcard")),
            ("**.x.com", Err("invalid_wildcard")),
            ("x.com.*", Err("invalid_wildcard")),
            (" *.x.com", Err("invalid_domain")),
            ("*. x.com", Err("invalid_domain")),
            ("*.com", Err("wildcard_over_public_suffix")),
            ("*.co.uk", Err("wildcard_over_public_suffix")),
            ("*.github.io", Err("wildcard_over_public_suffix")),
            ("*.workers.dev", Err("wildcard_over_public_suffix")),
            ("*.localhost", Err("wildcard_over_public_suffix")),
            ("*.kobe.jp", Err("wildcard_over_public_suffix")),
            ("*.amazonaws.com", Err("wildcard_over_public_suffix")),
            ("kobe.jp", Ok("kobe.jp")),
            ("amazonaws.com", Ok("amazonaws.com")),
            ("*.b.c.kobe.jp", Ok("*.b.c.kobe.jp")),
        ];
        let mut failures = Vec::new();
        for &(input, want) in cases {
            let got = DomainPattern::parse(input).map(|p| p.as_string()).map_err(|e| e.code());
            if got != want.map(str::to_owned) {
                failures.push(format!("{input:?}: want {want:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn a_wildcard_matches_subdomains_but_never_the_apex() {
        let Ok(pattern) = DomainPattern::parse("*.example.com") else {
            panic!("*.example.com must parse");
        };
        assert!(pattern.is_wildcard());
        assert_eq!(pattern.base().as_str(), "example.com");
        for host in ["a.example.com", "a.b.example.com", "xn--bcher-kva.example.com"] {
            assert!(pattern.matches_host(host), "{host}");
        }
        for host in [
            "example.com",
            ".example.com",
            "evil-example.com",
            "aexample.com",
            "example.com.evil.com",
            "a.example.com.",
            "a.example.co",
            "",
        ] {
            assert!(!pattern.matches_host(host), "{host}");
        }
    }

    #[test]
    fn an_exact_name_matches_only_itself() {
        let Ok(pattern) = DomainPattern::parse("Example.com.") else {
            panic!("Example.com. must parse");
        };
        assert!(!pattern.is_wildcard());
        assert!(pattern.matches_host("example.com"));
        for host in ["www.example.com", "example.com.", "Example.com", "example.co"] {
            assert!(!pattern.matches_host(host), "{host}");
        }
    }

    #[test]
    fn each_error_has_a_distinct_code_and_a_message() {
        let all = [
            DomainError::InvalidDomain,
            DomainError::IpLiteralNotAllowed,
            DomainError::PublicSuffixNotAllowed,
            DomainError::InvalidWildcard,
            DomainError::WildcardOverPublicSuffix,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(DomainError::code).collect();
        assert_eq!(codes.len(), all.len());
        let messages: std::collections::HashSet<_> = all.iter().map(DomainError::message).collect();
        assert_eq!(messages.len(), all.len(), "each error explains itself differently");
        for error in all {
            assert_eq!(error.to_string(), error.message());
            assert!(error.message().len() > 30, "{:?} needs a message a person can act on", error);
        }
        assert!(DomainError::IpLiteralNotAllowed.message().contains("IP addresses"));
        assert!(DomainError::InvalidWildcard.message().contains("*.example.com"));
    }
}
