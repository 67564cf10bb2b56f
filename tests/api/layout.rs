//! The crate's dependency direction, as ARCHITECTURE.md states it. Reads every `crate::…` path
//! in `src/` (`use` lines, groups and inline paths alike) and fails, naming the line, when:
//! - a module imports from a layer above its own;
//! - a feature reaches another feature outside the edges listed in `FEATURE_EDGES`;
//! - a file is not assigned to a layer;
//! - `worker`, `wasm_bindgen`, `js_sys` or `web_sys` appears outside the edge;
//! - anything but the edge imports `api`, or anything but the gate mints a widget scope.

use std::path::{Path, PathBuf};

/// Layers, bottom up. A module may import from its own layer and the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Platform,
    Access,
    Feature,
    Top,
    Edge,
}

const FEATURES: &[&str] = &[
    "auth",
    "booking",
    "branding",
    "crm",
    "domains",
    "files",
    "ops",
    "settings",
    "templates",
    "tenants",
    "webhooks",
    "widget",
];

/// The only ways one feature may reach another, each with its reason.
const FEATURE_EDGES: &[(&str, &str, &str)] = &[
    ("branding", "files", "logos and favicons are stored as files in the branding area"),
    ("widget", "domains", "the gate matches Origins against the client's verified domains"),
    ("widget", "crm", "a widget lead becomes a contact"),
    ("widget", "branding", "the widget's config wears the client's effective branding"),
    ("widget", "booking", "the widget's Book tab lists services and free slots, and books"),
    ("widget", "settings", "a signed visitor identity is checked with the client's encrypted widget secret"),
    ("templates", "branding", "a template's branding is checked and written like the branding endpoint's"),
    ("templates", "booking", "a template's services are checked like the services endpoint's"),
    ("templates", "crm", "a template's pipelines share the CRM's stage limit"),
    ("templates", "settings", "a template's integrations name providers from the settings catalogue"),
    ("tenants", "templates", "a client can be created from a template, and its integrations are checked the same way"),
    ("ops", "domains", "a client's health counts its domains by status"),
    (
        "webhooks",
        "domains",
        "a receiver URL may not be a client's verified portal domain, which is the platform's own host",
    ),
];

/// The module a file belongs to: its layer, and for a feature, which one.
fn place(rel: &str) -> Option<(Layer, &str)> {
    let top = rel.split(['/', '.']).next()?;
    let layer = match top {
        "platform" => Layer::Platform,
        "access" => Layer::Access,
        f if FEATURES.contains(&f) => Layer::Feature,
        "api" | "seed" | "import" | "bin" | "lib" => Layer::Top,
        "edge" => Layer::Edge,
        _ => return None,
    };
    Some((layer, top))
}

/// What a `crate::` path points at: the crate root's own items (`crate::SCHEMA_VERSION_SQL`)
/// belong to `lib`, at the top.
fn target(first: &str) -> Option<(Layer, &str)> {
    if first.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
        return Some((Layer::Top, "lib"));
    }
    place(first)
}

#[derive(Debug)]
struct Import {
    line: usize,
    module: String,
    text: String,
}

/// Every module a file names through `crate::`, including each member of `crate::{a, b::c}`.
fn imports(src: &str) -> Vec<Import> {
    let mut out = Vec::new();
    for (i, raw) in src.lines().enumerate() {
        let line = code_of(raw);
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let preceded_by_ident =
                rest[..at].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            let after = &rest[at + "crate::".len()..];
            if !preceded_by_ident {
                let names: Vec<&str> = if let Some(group) = after.strip_prefix('{') {
                    let end = group.find('}').unwrap_or(group.len());
                    group[..end].split(',').map(|m| m.trim().split("::").next().unwrap_or("").trim()).collect()
                } else {
                    vec![after.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("")]
                };
                for name in names.into_iter().filter(|n| !n.is_empty() && *n != "self") {
                    out.push(Import { line: i + 1, module: name.to_string(), text: raw.trim().to_string() });
                }
            }
            rest = after;
        }
    }
    out
}

/// A line without its `//` comment (string literals in this crate hold no `//` before code).
fn code_of(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    match line.find(" //") {
        Some(at) if !line[..at].contains('"') => &line[..at],
        _ => line,
    }
}

const EDGE_ONLY: &[&str] = &["worker", "wasm_bindgen", "js_sys", "web_sys"];

/// Every violation in one file, as `path:line: what — the line`.
fn check_file(rel: &str, src: &str) -> Vec<String> {
    let Some((layer, module)) = place(rel) else {
        return vec![format!("{rel}: not assigned to a layer; add it to `place` and ARCHITECTURE.md")];
    };
    let mut bad = Vec::new();
    for imp in imports(src) {
        let Some((to_layer, to_module)) = target(&imp.module) else {
            bad.push(format!("{rel}:{}: `crate::{}` is not a known module — {}", imp.line, imp.module, imp.text));
            continue;
        };
        if to_module == module {
            continue;
        }
        if to_layer > layer {
            bad.push(format!(
                "{rel}:{}: {module} ({layer:?}) imports upward from {to_module} ({to_layer:?}) — {}",
                imp.line, imp.text
            ));
        } else if layer == Layer::Feature
            && to_layer == Layer::Feature
            && !FEATURE_EDGES.iter().any(|(from, to, _)| *from == module && *to == to_module)
        {
            bad.push(format!(
                "{rel}:{}: feature {module} reaches feature {to_module} outside the listed edges — {}",
                imp.line, imp.text
            ));
        }
        if to_module == "api" && layer != Layer::Edge {
            bad.push(format!("{rel}:{}: only the edge imports `api` — {}", imp.line, imp.text));
        }
    }
    for (i, raw) in src.lines().enumerate() {
        let code = code_of(raw);
        if layer != Layer::Edge {
            for name in EDGE_ONLY {
                if mentions_crate(code, name) {
                    bad.push(format!("{rel}:{}: `{name}` outside the edge — {}", i + 1, raw.trim()));
                }
            }
        }
        if code.contains("by_publishable_key(") && !matches!(rel, "widget/gate.rs" | "access/mod.rs") {
            bad.push(format!("{rel}:{}: only the widget gate mints a scope from a key — {}", i + 1, raw.trim()));
        }
    }
    bad
}

/// Whether a line uses a crate by name: `name::…`, `use name`, `#[name…]` or `extern crate name`.
fn mentions_crate(code: &str, name: &str) -> bool {
    let mut rest = code;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + name.len()..];
        let starts_word = !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        let used = after.starts_with("::")
            || (after.starts_with([';', ' ', ']', '('])
                && (rest[..at].ends_with("use ") || rest[..at].ends_with("#[") || rest[..at].ends_with("crate ")));
        if starts_word && used {
            return true;
        }
        rest = after;
    }
    false
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `GATEHOUSE_LAYOUT_SRC` points the guard at another tree (an old checkout, say) to show what it
/// would refuse there.
fn src_dir() -> PathBuf {
    std::env::var_os("GATEHOUSE_LAYOUT_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src")))
}

#[test]
fn dependencies_point_down_and_features_cross_only_along_listed_edges() {
    let src = src_dir();
    let files = rust_files(&src);
    assert!(files.len() > 30, "expected the whole crate under {}", src.display());
    let mut bad = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        bad.extend(check_file(&rel, &std::fs::read_to_string(path).unwrap()));
    }
    assert!(bad.is_empty(), "{} layout violation(s):\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn every_listed_edge_is_used() {
    // An edge nobody takes any more is a stale promise in ARCHITECTURE.md: drop it.
    let src = src_dir();
    for (from, to, why) in FEATURE_EDGES {
        let used = rust_files(&src.join(from))
            .iter()
            .any(|p| imports(&std::fs::read_to_string(p).unwrap()).iter().any(|imp| imp.module == *to));
        assert!(used, "{from} → {to} ({why}) is listed but no longer used");
    }
}

#[test]
fn the_guard_catches_each_kind_of_violation() {
    let upward = check_file("platform/http.rs", "use crate::access::roles::Principal;\n");
    assert!(upward[0].contains("platform/http.rs:1: platform (Platform) imports upward from access"), "{upward:?}");

    let inline = check_file("access/store.rs", "fn f() { crate::files::remove(); }\n");
    assert!(inline[0].contains("imports upward from files"), "{inline:?}");

    let grouped = check_file("files/mod.rs", "use crate::{platform::http, widget};\n");
    assert_eq!(grouped.len(), 1, "{grouped:?}");
    assert!(grouped[0].contains("feature files reaches feature widget outside the listed edges"));

    assert!(check_file("widget/gate.rs", "use crate::domains::origin::Origin;\n").is_empty());
    assert!(check_file("domains/mod.rs", "use crate::widget::gate;\n")[0].contains("outside the listed edges"));

    let unassigned = check_file("helpers.rs", "");
    assert!(unassigned[0].contains("helpers.rs: not assigned to a layer"), "{unassigned:?}");

    for line in ["use worker::Env;", "let x = js_sys::Date::now();", "#[wasm_bindgen]", "use web_sys;"] {
        let found = check_file("files/mod.rs", line);
        assert_eq!(found.len(), 1, "{line}: {found:?}");
        assert!(found[0].contains("outside the edge"), "{found:?}");
        assert!(check_file("edge.rs", line).is_empty(), "{line}");
    }
    // Prose about a Worker, or a `workers` identifier, is not a use of the crate.
    assert!(check_file("files/mod.rs", "// the worker:: crate\nlet workers = 1; // worker::x\n").is_empty());

    let router = check_file("tenants/mod.rs", "use crate::api::App;\n");
    assert!(router.iter().any(|b| b.contains("only the edge imports `api`")), "{router:?}");
    assert!(check_file("seed.rs", "use crate::api::App;\n").iter().any(|b| b.contains("only the edge")));
    assert!(check_file("edge.rs", "use crate::api::{App, State};\n").is_empty());

    let minted = check_file("crm/contacts.rs", "let s = ClientScope::by_publishable_key(a, b);\n");
    assert!(minted[0].contains("only the widget gate mints a scope"), "{minted:?}");
}
