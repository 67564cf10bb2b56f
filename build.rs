//! Build step: the Public Suffix List as the Worker embeds it, its rules alone. The list's
//! comments (licence, section notes, each registry's contacts) are more than half of its bytes
//! and about 47 KB of the gzipped wasm; `src/domains/psl.rs` reads the rules only.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    const LIST: &str = "data/public_suffix_list.dat";
    println!("cargo:rerun-if-changed={LIST}");
    let list = std::fs::read_to_string(LIST).unwrap_or_else(|e| panic!("{LIST}: {e}"));
    let mut rules = String::with_capacity(list.len() / 2);
    for line in list.lines() {
        // The format: a rule is everything up to the first whitespace; `//` starts a comment line.
        match line.split_whitespace().next() {
            Some(rule) if !rule.starts_with("//") => {
                let _ = writeln!(rules, "{rule}");
            }
            _ => {}
        }
    }
    let out = std::env::var("OUT_DIR").unwrap_or_else(|e| panic!("OUT_DIR: {e}"));
    std::fs::write(Path::new(&out).join("public_suffix_rules.txt"), rules).unwrap_or_else(|e| panic!("{out}: {e}"));
}
