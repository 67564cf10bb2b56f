//! The route list (`api::routes::ROUTES`) is the router's, no more and no less: this reads the
//! router's match arms from its source (and the widget's from the gate) and fails when a route is
//! added without joining the list, or the list names one the router no longer has. The OpenAPI
//! document is held to the same list.

use std::collections::BTreeSet;

const METHODS: [&str; 6] = ["Get", "Post", "Put", "Patch", "Delete", "Head"];

/// A template with its parameters blanked, for comparison: `/api/clients/{}/contacts`.
fn shape(template: &str) -> String {
    template.split('/').map(|s| if s.starts_with('{') { "{}" } else { s }).collect::<Vec<_>>().join("/")
}

/// The segments of one slice pattern, each expanded: a literal, a parameter, or the choices of
/// an `x @ ("a" | "b")` binding; `rest @ ..` stands for the audit log's three sub-routes.
fn expand(pattern: &str) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for seg in pattern.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let choices: Vec<Vec<String>> = if let Some(lit) = seg.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            vec![vec![lit.to_string()]]
        } else if seg.ends_with("@ ..") {
            vec![vec![], vec!["export".into()], vec!["verify".into()]]
        } else if seg.contains("@ (") {
            seg.split('"').skip(1).step_by(2).map(|c| vec![c.to_string()]).collect()
        } else {
            vec![vec!["{}".to_string()]]
        };
        out = out.iter().flat_map(|prefix| choices.iter().map(move |c| [prefix.clone(), c.clone()].concat())).collect();
    }
    out
}

fn full(segs: &[String], prefix: &str) -> String {
    let top = ["api", "healthz", "widget.js", "assets", "openapi.json"];
    let path = segs.join("/");
    if segs.first().is_some_and(|s| top.contains(&s.as_str())) || !prefix.is_empty() {
        format!("{prefix}/{path}")
    } else {
        format!("/api/{path}")
    }
}

/// `(Method, [pattern]) =>` arms, with `Method::X` or `X`, alternatives joined by `|`.
fn tuple_arms(src: &str, prefix: &str, out: &mut BTreeSet<(String, String)>) {
    let mut rest = src;
    while let Some(i) = rest.find('(') {
        rest = &rest[i + 1..];
        let Some((head, tail)) = rest.split_once(", [") else { break };
        let methods: Vec<&str> = head.split('|').map(|m| m.trim().trim_start_matches("Method::")).collect();
        if head.len() > 40 || !methods.iter().all(|m| METHODS.contains(m)) {
            continue;
        }
        let Some(close) = tail.find(']') else { break };
        let after = tail[close + 1..].trim_start();
        let Some(after) = after.strip_prefix(')') else { continue };
        let after = after.trim_start();
        if !(after.starts_with("=>") || after.starts_with("if ")) {
            continue;
        }
        for segs in expand(&tail[..close]) {
            for m in methods.iter().filter(|m| **m != "Head") {
                out.insert((m.to_ascii_uppercase(), shape(&full(&segs, prefix))));
            }
        }
    }
}

/// The session routes: `["auth", "login"] => return only(m, Post, ...)`, the method being the
/// first `only(m, X` before the next arm.
fn only_arms(src: &str, out: &mut BTreeSet<(String, String)>) {
    let lines: Vec<&str> = src.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let Some(pattern) = t.strip_prefix('[').and_then(|s| s.split_once("] =>")).map(|(p, _)| p) else { continue };
        let method =
            lines[i..].iter().enumerate().take_while(|(j, l)| *j == 0 || !l.trim_start().starts_with("[\"")).find_map(
                |(_, l)| l.split_once("only(m, ").map(|(_, r)| r.split(',').next().unwrap_or("").to_string()),
            );
        let Some(method) = method.filter(|m| METHODS.contains(&m.as_str())) else { continue };
        for segs in expand(pattern) {
            out.insert((method.to_ascii_uppercase(), shape(&full(&segs, ""))));
        }
    }
}

fn router_routes() -> BTreeSet<(String, String)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let api = std::fs::read_to_string(format!("{root}/src/api/mod.rs")).unwrap();
    let gate = std::fs::read_to_string(format!("{root}/src/widget/gate.rs")).unwrap();
    let mut out = BTreeSet::new();
    tuple_arms(&api, "", &mut out);
    only_arms(&api, &mut out);
    tuple_arms(&gate, "/api/widget/v1", &mut out);
    out
}

fn listed() -> BTreeSet<(String, String)> {
    gatehouse::api::routes::ROUTES.iter().map(|(m, t)| (m.to_string(), shape(t))).collect()
}

#[test]
fn the_route_list_is_exactly_the_routers() {
    let router = router_routes();
    assert!(router.len() > 150, "the parser found only {} routes", router.len());
    let listed = listed();
    let unlisted: Vec<_> = router.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&router).collect();
    assert!(unlisted.is_empty(), "routes missing from api::routes::ROUTES: {unlisted:?}");
    assert!(stale.is_empty(), "ROUTES names routes the router does not have: {stale:?}");
    assert_eq!(gatehouse::api::routes::ROUTES.len(), listed.len(), "no route listed twice");
}

#[test]
fn the_committed_openapi_document_is_the_one_the_route_list_builds_and_is_served() {
    let built = gatehouse::api::openapi::document(env!("CARGO_PKG_VERSION")).unwrap();
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap())
            .unwrap();
    assert!(committed == built, "openapi.json is stale: run `cargo run --bin gatehouse-openapi > openapi.json`");
    // Every listed route is an operation of the document, and nothing else is.
    let mut ops = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (path, item) in built["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.insert((method.to_ascii_uppercase(), shape(path)));
            assert!(ids.insert(op["operationId"].as_str().unwrap().to_string()), "operationId twice: {op}");
            for status in ["400", "401", "403", "404", "422", "429", "500"] {
                assert!(op["responses"][status].is_object(), "{method} {path} declares no {status}");
            }
        }
    }
    assert_eq!(ops, listed(), "the document's operations are the route list's");
    let t = crate::common::TestApp::new();
    let r = t.req(gatehouse::platform::http::Method::Get, "/openapi.json", None, None);
    assert_eq!((r.status, r.header("content-type")), (200, Some("application/json")));
    let served: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    assert!(served == committed);
}
