//! Public Suffix List: which part of a host name is a public suffix, and which is registrable.
//!
//! Implements <https://github.com/publicsuffix/list/wiki/Format#algorithm> over both the ICANN and
//! the PRIVATE sections of the list vendored in `data/` (MPL-2.0, see `data/PSL-LICENSE`). A
//! hand-rolled matcher over the embedded `.dat` costs about a third of the wasm the `psl` crate does.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

const NORMAL: u8 = 1;
const WILDCARD: u8 = 2;
const EXCEPTION: u8 = 4;
/// Not a rule: some normal or wildcard rule lies strictly below this name.
const RULE_BELOW: u8 = 8;

/// Rule flags keyed by the rule's name with any `*.` or `!` removed, in A-labels. One name can
/// carry several flags: the list has both `jp` and names under it.
type Rules = HashMap<Cow<'static, str>, u8>;

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    // The list's rules without its comments, grouped by the name under their leftmost label
    // (`build.rs`): `kobe.jp:* !city` is `*.kobe.jp` and `!city.kobe.jp`.
    RULES.get_or_init(|| parse(include_str!(concat!(env!("OUT_DIR"), "/public_suffix_rules.txt"))))
}

fn parse(list: &'static str) -> Rules {
    let mut rules = Rules::with_capacity(12_000);
    for line in list.lines() {
        let Some((under, labels)) = line.split_once(':') else {
            continue;
        };
        // What the group says of `under` and the names above it, marked once per group.
        let (mut wildcard, mut normal) = (false, false);
        for label in labels.split(' ') {
            if label == "*" {
                // `*.under` is keyed by its base.
                wildcard = true;
            } else if let Some(label) = label.strip_prefix('!') {
                // Exceptions only ever sit under a wildcard, which marks the names above.
                flag(&mut rules, a_label_of(format!("{label}.{under}")), EXCEPTION);
            } else if under.is_empty() {
                flag(&mut rules, a_label(label), NORMAL);
            } else {
                flag(&mut rules, a_label_of(format!("{label}.{under}")), NORMAL);
                normal = true;
            }
        }
        if wildcard {
            flag(&mut rules, a_label(under), WILDCARD);
        }
        if normal {
            flag(&mut rules, a_label(under), RULE_BELOW);
        }
        if wildcard || normal {
            // The names above have a rule below them.
            mark_above(&mut rules, under);
        }
    }
    rules
}

fn flag(rules: &mut Rules, name: Option<Cow<'static, str>>, flag: u8) {
    if let Some(name) = name {
        *rules.entry(name).or_insert(0) |= flag;
    }
}

/// Marks every name strictly above `name` as having a rule below it.
fn mark_above(rules: &mut Rules, name: &'static str) {
    for (dot, _) in name.match_indices('.') {
        if let Some(parent) = a_label(&name[dot + 1..]) {
            flag(rules, Some(parent), RULE_BELOW);
        }
    }
}

/// ASCII names borrow from the embedded list, so loading allocates only for a rule's own name
/// and for IDN rules.
fn a_label(name: &'static str) -> Option<Cow<'static, str>> {
    if name.is_ascii() {
        Some(Cow::Borrowed(name))
    } else {
        idna::domain_to_ascii(name).ok().map(Cow::Owned)
    }
}

fn a_label_of(name: String) -> Option<Cow<'static, str>> {
    if name.is_ascii() {
        Some(Cow::Owned(name))
    } else {
        idna::domain_to_ascii(&name).ok().map(Cow::Owned)
    }
}

/// Byte offset in a canonical `host` where its public suffix starts.
fn suffix_start(host: &str) -> usize {
    let rules = rules();
    // The longest matching rule wins, so walk suffixes from the whole host down to the TLD and keep
    // the first match; keep walking only because an exception rule beats any other rule.
    let mut longest = None;
    let mut left_label = None;
    let mut start = 0;
    loop {
        let suffix = &host[start..];
        let next = suffix.find('.').map(|dot| start + dot + 1);
        if let Some(&flags) = rules.get(suffix) {
            if flags & EXCEPTION != 0 {
                // An exception rule's public suffix is the rule minus its leftmost label; every
                // exception in the list has at least two labels.
                return next.unwrap_or(start);
            }
            if longest.is_none() {
                if flags & WILDCARD != 0 && left_label.is_some() {
                    longest = left_label;
                } else if flags & NORMAL != 0 {
                    longest = Some(start);
                }
            }
        }
        match next {
            Some(next) => {
                left_label = Some(start);
                start = next;
            }
            // No rule matched: the implicit `*` rule makes the last label the public suffix.
            None => return longest.unwrap_or(start),
        }
    }
}

/// A canonical host is non-empty lowercase A-labels with no empty label. Underscores pass because
/// DNS names carry them (`_dmarc`); anything else outside LDH is not a host name.
fn is_canonical(host: &str) -> bool {
    !host.is_empty()
        && host.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'))
        && !host.split('.').any(str::is_empty)
}

/// Brings loose input (mixed case, U-labels) to canonical form, borrowing when it already is.
fn canonicalize(host: &str) -> Option<Cow<'_, str>> {
    let host = if host.is_ascii() {
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        }
    } else {
        Cow::Owned(idna::domain_to_ascii(host).ok()?)
    };
    is_canonical(&host).then_some(host)
}

/// The public suffix of a canonical host (lowercase A-labels, no trailing dot), as a slice of it;
/// `None` when `host` is not canonical. A host under no listed rule falls to the implicit `*` rule,
/// so its last label is its public suffix.
pub fn public_suffix(host: &str) -> Option<&str> {
    is_canonical(host).then(|| &host[suffix_start(host)..])
}

/// The public suffix plus one label, in A-labels: the name someone can register. `None` when
/// `host` is itself a public suffix or is not a host name. Accepts mixed case and U-labels.
pub fn registrable_domain(host: &str) -> Option<String> {
    let host = canonicalize(host)?;
    let suffix = suffix_start(&host);
    let registrable = host.get(..suffix.checked_sub(1)?)?.rfind('.').map_or(0, |dot| dot + 1);
    Some(host[registrable..].to_owned())
}

/// Whether `host` is itself a public suffix (ICANN or PRIVATE, or a lone unlisted label such as
/// `localhost`). Accepts mixed case and U-labels; anything that is not a host name is `false`.
pub fn is_public_suffix(host: &str) -> bool {
    canonicalize(host).is_some_and(|host| suffix_start(&host) == 0)
}

/// Whether some public suffix lies strictly below `host`, as under `kobe.jp` (`*.kobe.jp`) or
/// `amazonaws.com` (`execute-api.*.amazonaws.com`, ...). A wildcard over such a name would cover
/// sites that other people register. Accepts mixed case and U-labels.
pub fn has_public_suffix_below(host: &str) -> bool {
    canonicalize(host)
        .is_some_and(|host| rules().get(host.as_ref()).is_some_and(|flags| flags & (WILDCARD | RULE_BELOW) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `checkPublicSuffix(input, expected)` lines from the list's official test file.
    const OFFICIAL_TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/psl/tests.txt");

    fn to_ascii(domain: &str) -> String {
        idna::domain_to_ascii(domain).unwrap_or_else(|e| panic!("{domain}: {e}"))
    }

    #[test]
    fn every_official_test_case_passes() {
        let text = std::fs::read_to_string(OFFICIAL_TESTS).unwrap_or_else(|e| panic!("{OFFICIAL_TESTS}: {e}"));
        let mut executed = 0;
        let mut failures = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with("//") {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(input), Some(expected), None) = (fields.next(), fields.next(), fields.next()) else {
                panic!("malformed test line: {line:?}");
            };
            // `null` input means "no input"; the closest a `&str` API gets is the empty string.
            let input = if input == "null" { "" } else { input };
            // The file writes expectations for Unicode input in Unicode; this API answers in A-labels.
            let expected = (expected != "null").then(|| to_ascii(expected));
            let got = registrable_domain(input);
            if got != expected {
                failures.push(format!("{input}: expected {expected:?}, got {got:?}"));
            }
            executed += 1;
        }
        assert!(failures.is_empty(), "{failures:#?}");
        assert_eq!(executed, 78, "the official file holds 78 live cases (4 more are commented out)");
    }

    /// The full list's rules, read one a line as the format defines them: the rule as written,
    /// its kind, and its name without `!` or `*.`.
    fn listed_rules() -> impl Iterator<Item = (&'static str, u8, &'static str)> {
        include_str!("../../data/public_suffix_list.dat").lines().filter_map(|line| {
            let rule = line.split_whitespace().next().filter(|r| !r.starts_with("//"))?;
            Some(match (rule.strip_prefix('!'), rule.strip_prefix("*.")) {
                (Some(name), _) => (rule, EXCEPTION, name),
                (None, Some(name)) => (rule, WILDCARD, name),
                (None, None) => (rule, NORMAL, rule),
            })
        })
    }

    #[test]
    fn every_rule_in_the_list_is_loaded() {
        let mut checked = 0;
        for (rule, flag, name) in listed_rules() {
            let flags = rules().get(to_ascii(name).as_str()).copied().unwrap_or_default();
            assert_ne!(flags & flag, 0, "rule {rule:?} did not load");
            checked += 1;
        }
        assert!(checked > 9_000, "only {checked} rules seen");
    }

    /// The grouped list loads to exactly the flags the list itself gives, read one rule a line.
    #[test]
    fn the_grouped_list_loads_as_the_list_reads() {
        let mut expected: HashMap<String, u8> = HashMap::new();
        for (_, flag, name) in listed_rules() {
            *expected.entry(to_ascii(name)).or_default() |= flag;
            if flag != EXCEPTION {
                for (dot, _) in name.match_indices('.') {
                    *expected.entry(to_ascii(&name[dot + 1..])).or_default() |= RULE_BELOW;
                }
            }
        }
        let loaded: HashMap<String, u8> = rules().iter().map(|(k, v)| (k.to_string(), *v)).collect();
        assert!(loaded.len() > 10_000, "only {} names loaded", loaded.len());
        assert_eq!(loaded, expected);
    }

    #[test]
    fn private_and_icann_suffixes_are_public_suffixes() {
        for host in ["co.uk", "github.io", "workers.dev", "pages.dev", "com", "localhost", "c.kobe.jp", "公司.cn"] {
            assert!(is_public_suffix(host), "{host}");
        }
        for host in ["example.co.uk", "acme.github.io", "a.workers.dev", "kobe.jp", "city.kobe.jp", "example.com"] {
            assert!(!is_public_suffix(host), "{host}");
        }
    }

    #[test]
    fn names_with_public_suffixes_below_them_are_known() {
        for host in ["kobe.jp", "amazonaws.com", "us-east-1.amazonaws.com", "jp", "com", "Kobe.JP"] {
            assert!(has_public_suffix_below(host), "{host}");
        }
        for host in ["example.com", "github.io", "acme.github.io", "city.kobe.jp", "c.kobe.jp", "example", ""] {
            assert!(!has_public_suffix_below(host), "{host}");
        }
    }

    #[test]
    fn public_suffix_borrows_from_canonical_input_only() {
        assert_eq!(public_suffix("www.example.co.uk"), Some("co.uk"));
        assert_eq!(public_suffix("a.b.acme.github.io"), Some("github.io"));
        assert_eq!(public_suffix("shop.example"), Some("example"));
        assert_eq!(public_suffix("www.city.kobe.jp"), Some("kobe.jp"));
        assert_eq!(public_suffix("x.c.kobe.jp"), Some("c.kobe.jp"));
        for host in ["", ".", "Example.com", "example.com.", "a..com", ".com", "bücher.de"] {
            assert_eq!(public_suffix(host), None, "{host:?}");
        }
    }

    #[test]
    fn registrable_domain_refuses_non_hosts() {
        for host in ["", ".", "..", "example.com.", "a..example.com", "exa mple.com\u{0}"] {
            assert_eq!(registrable_domain(host), None, "{host:?}");
        }
        assert_eq!(registrable_domain("www.Bücher.de").as_deref(), Some("xn--bcher-kva.de"));
    }
}
