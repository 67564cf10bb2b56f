//! Build step: the Public Suffix List as the Worker embeds it, its rules alone. The list's
//! comments (licence, section notes, each registry's contacts) are more than half of its bytes
//! and about 47 KB of the gzipped wasm; `src/domains/psl.rs` reads the rules only.
//!
//! The rules are grouped by the name under their leftmost label, one group a line:
//! `kobe.jp:* !city` holds `*.kobe.jp` and `!city.kobe.jp`, and `:ac ad` the one-label rules.
//! Grouped, the list gzips to 35 KB where one rule a line took 43: the names under a label are
//! written once, not once per rule.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    const LIST: &str = "data/public_suffix_list.dat";
    println!("cargo:rerun-if-changed={LIST}");
    let list = std::fs::read_to_string(LIST).unwrap_or_else(|e| panic!("{LIST}: {e}"));
    // Groups keyed by the name's labels right to left, so related names sit together.
    let mut groups: BTreeMap<Vec<&str>, Vec<&str>> = BTreeMap::new();
    for line in list.lines() {
        // The format: a rule is everything up to the first whitespace; `//` starts a comment line.
        match line.split_whitespace().next() {
            Some(rule) if !rule.starts_with("//") => {
                let (label, under) = rule.split_once('.').unwrap_or((rule, ""));
                let key = if under.is_empty() { Vec::new() } else { under.split('.').rev().collect() };
                groups.entry(key).or_default().push(label);
            }
            _ => {}
        }
    }
    let mut rules = String::with_capacity(list.len() / 2);
    for (key, labels) in groups {
        let under: Vec<&str> = key.into_iter().rev().collect();
        let _ = writeln!(rules, "{}:{}", under.join("."), labels.join(" "));
    }
    let out = std::env::var("OUT_DIR").unwrap_or_else(|e| panic!("OUT_DIR: {e}"));
    std::fs::write(Path::new(&out).join("public_suffix_rules.txt"), rules).unwrap_or_else(|e| panic!("{out}: {e}"));
}
