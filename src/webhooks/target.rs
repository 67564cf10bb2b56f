//! Where a webhook may be sent. A receiver URL is the one place a tenant points the platform's
//! own outbound requests, so it is held to rules that keep those requests on the public
//! internet (no SSRF):
//! - `https` only, no credentials in the URL, no fragment;
//! - no IP literal outside public unicast space (loopback, private, link-local, CGNAT, multicast,
//!   documentation and reserved ranges, and IPv6 forms that embed such an IPv4 address);
//! - no local names (`localhost`, single labels, `.local`, `.internal`, …);
//! - none of the platform's own hosts: the API hosts, the portal domain and its subdomains, and
//!   clients' verified custom domains;
//! - the name must resolve, and every A and AAAA record must be public. This is checked at
//!   registration and again before every delivery, so a DNS change after registration cannot
//!   point a receiver inward.
//!
//! The single exception is `WEBHOOK_TEST_RECEIVERS`, exact origins allowed in development and
//! tests (a receiver on loopback). It is empty unless set, as in production.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::platform::config::Config;
use crate::platform::dns::{self, Lookup};
use crate::platform::error::ApiError;
use crate::platform::ports::Platform;
use crate::platform::Ctx;

/// The longest receiver URL accepted.
pub const MAX_URL_LEN: usize = 2000;

/// Why a receiver URL is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotUrl,
    NotHttps,
    Credentials,
    Fragment,
    PrivateAddress(String),
    LocalName,
    PlatformHost,
    DoesNotResolve,
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::NotUrl => format!("`url` must be an absolute URL of at most {MAX_URL_LEN} characters"),
            Refusal::NotHttps => "webhook URLs must use https".into(),
            Refusal::Credentials => "webhook URLs may not carry a user name or password".into(),
            Refusal::Fragment => "webhook URLs may not carry a #fragment".into(),
            Refusal::PrivateAddress(ip) => {
                format!("the receiver's address {ip} is not on the public internet (loopback, private or reserved)")
            }
            Refusal::LocalName => "the receiver's host name is a local name".into(),
            Refusal::PlatformHost => "webhooks cannot be sent to the platform's own hosts".into(),
            Refusal::DoesNotResolve => "the receiver's host name does not resolve".into(),
        }
    }
}

/// A receiver URL that passed the static rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: url::Url,
    /// An allowlisted development receiver: skips the address rules and DNS.
    pub test_receiver: bool,
}

impl Target {
    /// The name to resolve, or None for an IP literal or a test receiver.
    pub fn dns_name(&self) -> Option<&str> {
        match self.url.host() {
            Some(url::Host::Domain(d)) if !self.test_receiver => Some(d),
            _ => None,
        }
    }
}

/// The rules that need no network: scheme, credentials, IP literals, local and platform names.
pub fn check_static(raw: &str, cfg: &Config) -> Result<Target, Refusal> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_LEN || raw.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Refusal::NotUrl);
    }
    let url = url::Url::parse(raw).map_err(|_| Refusal::NotUrl)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Credentials);
    }
    if url.fragment().is_some() {
        return Err(Refusal::Fragment);
    }
    let origin = url.origin().ascii_serialization();
    if cfg.webhooks.test_receivers.contains(&origin) {
        return Ok(Target { url, test_receiver: true });
    }
    if url.scheme() != "https" {
        return Err(Refusal::NotHttps);
    }
    match url.host() {
        None => return Err(Refusal::NotUrl),
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip))?,
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip))?,
        Some(url::Host::Domain(name)) => check_name(name, cfg)?,
    }
    Ok(Target { url, test_receiver: false })
}

/// Local names never resolve to a public receiver; platform names would loop back into us.
fn check_name(name: &str, cfg: &Config) -> Result<(), Refusal> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    const LOCAL_SUFFIXES: &[&str] =
        &["localhost", "local", "localdomain", "internal", "intranet", "lan", "home.arpa", "corp", "home"];
    let last = name.rsplit('.').next().unwrap_or("");
    if !name.contains('.')
        || LOCAL_SUFFIXES.iter().any(|s| name == *s || name.ends_with(&format!(".{s}")))
        || last.chars().all(|c| c.is_ascii_digit())
    {
        return Err(Refusal::LocalName);
    }
    let base = &cfg.portal_base_domain;
    let api = cfg.api_hosts.iter().any(|h| h.split(':').next() == Some(name.as_str()));
    if api || name == *base || name.ends_with(&format!(".{base}")) {
        return Err(Refusal::PlatformHost);
    }
    Ok(())
}

/// Public unicast addresses only.
pub fn check_ip(ip: IpAddr) -> Result<(), Refusal> {
    let public = match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    };
    if public {
        Ok(())
    } else {
        Err(Refusal::PrivateAddress(ip.to_string()))
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                  // "this network"
        || a == 10                            // private
        || a == 127                           // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT
        || (a == 169 && b == 254)             // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)     // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)     // documentation
        || (a == 192 && b == 88 && c == 99)   // 6to4 relay anycast
        || (a == 192 && b == 168)             // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100)  // documentation
        || (a == 203 && b == 0 && c == 113)   // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00   // unique local
        || (s[0] & 0xffc0) == 0xfe80   // link-local
        || (s[0] & 0xffc0) == 0xfec0   // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00   // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0)      // Teredo
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
        || s[0] == 0) // IPv4-compatible and other reserved forms under ::/16
}

/// The IPv4 address inside IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4
/// (`2002:aabb:ccdd::`) addresses, which reach that IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff {
        return Some(from(s[6], s[7]));
    }
    // NAT64, the well-known prefix and the local-use one (RFC 8215).
    if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0, 0, 0, 0] || s[2] == 1) {
        return Some(from(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(from(s[1], s[2]));
    }
    None
}

/// Why a full check did not pass: the URL is refused, or DNS could not answer now.
#[derive(Debug)]
pub enum CheckError {
    Refused(Refusal),
    Unavailable(ApiError),
}

/// Every rule, DNS included, plus the tenants' verified portal domains.
pub async fn check<P: Platform>(ctx: &Ctx<'_, P>, raw: &str) -> Result<Target, CheckError> {
    let target = check_static(raw, ctx.cfg).map_err(CheckError::Refused)?;
    let Some(name) = target.dns_name() else { return Ok(target) };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match crate::domains::portal_owner(ctx, &name).await {
        Ok(Some(_)) => return Err(CheckError::Refused(Refusal::PlatformHost)),
        Ok(None) => {}
        Err(e) => return Err(CheckError::Unavailable(e)),
    }
    let mut addresses = 0;
    for rtype in ["A", "AAAA"] {
        let records = match dns::query(ctx.p, &ctx.cfg.doh_resolver_url, &name, rtype).await {
            Ok(Lookup::Records(r)) => r,
            Ok(Lookup::NoSuchName) => return Err(CheckError::Refused(Refusal::DoesNotResolve)),
            Err(e) => return Err(CheckError::Unavailable(e)),
        };
        for r in records.iter().filter(|r| r.rtype == 1 || r.rtype == 28) {
            let ip: IpAddr = r.data.trim().parse().map_err(|_| {
                CheckError::Unavailable(ApiError::Upstream("DNS resolver sent a malformed address".into()))
            })?;
            check_ip(ip).map_err(CheckError::Refused)?;
            addresses += 1;
        }
    }
    if addresses == 0 {
        return Err(CheckError::Refused(Refusal::DoesNotResolve));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::config::tests::test_vars;

    fn cfg(receivers: &str) -> Config {
        let mut vars = test_vars();
        vars.insert("WEBHOOK_TEST_RECEIVERS", receivers.into());
        vars.insert("API_HOSTS", "api.gatehouse.example,localhost".into());
        vars.insert("PORTAL_BASE_DOMAIN", "portal.gatehouse.example".into());
        Config::from_map(&vars).expect("config")
    }

    #[test]
    fn public_https_urls_pass() {
        let c = cfg("");
        for ok in [
            "https://hooks.example.com/gatehouse",
            "https://hooks.example.com:8443/x?y=1",
            "https://93.184.215.14/hook",
            "https://[2606:4700::1111]/hook",
            "HTTPS://Hooks.Example.COM/",
        ] {
            assert!(check_static(ok, &c).is_ok(), "{ok}");
        }
    }

    #[test]
    fn inward_urls_are_refused() {
        let c = cfg("");
        let cases: &[(&str, Refusal)] = &[
            ("http://hooks.example.com/", Refusal::NotHttps),
            ("ftp://hooks.example.com/", Refusal::NotHttps),
            ("https://user:pw@hooks.example.com/", Refusal::Credentials),
            ("https://hooks.example.com/#x", Refusal::Fragment),
            ("not a url", Refusal::NotUrl),
            ("https://localhost/", Refusal::LocalName),
            ("https://a.localhost/", Refusal::LocalName),
            ("https://printer.local/", Refusal::LocalName),
            ("https://metadata.google.internal/", Refusal::LocalName),
            ("https://intranet/", Refusal::LocalName),
            ("https://api.gatehouse.example/api/me", Refusal::PlatformHost),
            ("https://portal.gatehouse.example/", Refusal::PlatformHost),
            ("https://acme.portal.gatehouse.example/", Refusal::PlatformHost),
        ];
        for (url, want) in cases {
            assert_eq!(check_static(url, &c).as_ref().err(), Some(want), "{url}");
        }
        for url in [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0177.0.0.1/",
            "https://0.0.0.0/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://172.31.255.255/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://[::1]/",
            "https://[::]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://[64:ff9b::10.0.0.1]/",
            "https://[64:ff9b:1::a00:1]/",
            "https://[2002:7f00:1::]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[ff02::1]/",
        ] {
            assert!(
                matches!(check_static(url, &c), Err(Refusal::PrivateAddress(_))),
                "{url}: {:?}",
                check_static(url, &c)
            );
        }
    }

    #[test]
    fn only_the_exact_test_receiver_origin_is_excepted() {
        let c = cfg("http://127.0.0.1:8790");
        assert!(check_static("http://127.0.0.1:8790/hooks/a", &c).is_ok_and(|t| t.test_receiver));
        assert!(check_static("http://127.0.0.1:8791/", &c).is_err());
        assert!(check_static("https://127.0.0.1:8790/", &c).is_err());
        assert!(check_static("http://localhost:8790/", &c).is_err());
        assert!(check_static("http://127.0.0.1:8790/", &cfg("")).is_err());
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in ["1.1.1.1", "8.8.8.8", "93.184.215.14", "172.32.0.1", "100.128.0.1", "2606:4700::1111"] {
            assert!(check_ip(ip.parse().expect("ip")).is_ok(), "{ip}");
        }
    }
}
