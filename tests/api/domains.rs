//! Domains through the real router with a fake DNS-over-HTTPS resolver: lifecycle, overlap
//! across tenants, the scheduled re-check, and origin hosts no real site can have.

use crate::common::*;
use gatehouse::platform::http::{Method, Request, Response};
use gatehouse::seed::{ACME, GLOBEX};
use serde_json::json;

fn gate(t: &TestApp, key: &str, origin: &str) -> Response {
    t.call(
        Request::new(Method::Get, &format!("/api/widget/v1/config?key={key}"))
            .with_header("host", API)
            .with_header("origin", origin),
    )
}

fn recheck(t: &TestApp) -> serde_json::Value {
    t.p.now_ms.set(t.p.now_ms.get() + 1000);
    let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
    pollster::block_on(app.scheduled("recheck-now")).unwrap()
}

#[test]
fn a_domain_goes_pending_failed_verified_then_lapses() {
    let t = TestApp::new();
    let tok = t.login("admin@globex.test");
    let d = json_of(&register(&t, &tok, GLOBEX, "www.globex-dental.example"));
    assert_eq!(d["status"], "pending");
    let (id, name, token) = (
        d["id"].as_str().unwrap(),
        d["verification"]["name"].as_str().unwrap(),
        d["verification"]["value"].as_str().unwrap(),
    );
    assert_eq!(name, "_gatehouse-challenge.www.globex-dental.example");
    let verify = |t: &TestApp| {
        json_of(&t.req(Method::Post, &format!("/api/clients/{GLOBEX}/domains/{id}/verify"), Some(&tok), None))
    };
    let v = verify(&t);
    assert_eq!(v["status"], "failed");
    assert!(v["status_reason"].as_str().unwrap().contains("no TXT record"));
    t.p.dns.borrow_mut().insert(name.to_string(), vec![token.to_string()]);
    assert_eq!(verify(&t)["status"], "verified");
    assert_eq!(gate(&t, &t.demo.globex_key, "https://www.globex-dental.example").status, 200);
    t.p.dns.borrow_mut().clear();
    for expected in ["verified", "verified", "lapsed"] {
        recheck(&t);
        let rows = t.p.sql(&format!("SELECT status FROM domains WHERE id = '{id}'"));
        assert_eq!(rows[0]["status"], expected);
    }
    assert_eq!(
        gate(&t, &t.demo.globex_key, "https://www.globex-dental.example").status,
        403,
        "lapsed refuses at once on this isolate"
    );
}

#[test]
fn a_resolver_outage_is_no_strike_and_admin_verified_domains_are_not_rechecked() {
    let t = TestApp::new();
    let tok = t.login("admin@globex.test");
    let platform = t.login("admin@gatehouse.test");
    let d = json_of(&register(&t, &tok, GLOBEX, "vouched.example"));
    let id = d["id"].as_str().unwrap();
    let r = t.req(
        Method::Post,
        &format!("/api/clients/{GLOBEX}/domains/{id}/verify"),
        Some(&platform),
        Some(json!({"force": true})),
    );
    assert_eq!(json_of(&r)["verified_by"], "admin");
    for _ in 0..5 {
        recheck(&t);
    }
    assert_eq!(t.p.sql(&format!("SELECT status FROM domains WHERE id = '{id}'"))[0]["status"], "verified");
    t.p.dns_down.set(true);
    let r = t.req(Method::Post, &format!("/api/clients/{GLOBEX}/domains/{id}/verify"), Some(&tok), None);
    assert_eq!(r.status, 502);
    assert_eq!(error_code(&r), "upstream_error");
}

fn force_verify(t: &TestApp, client: &str, id: &str) -> Response {
    let platform = t.login("admin@gatehouse.test");
    t.req(
        Method::Post,
        &format!("/api/clients/{client}/domains/{id}/verify"),
        Some(&platform),
        Some(json!({"force": true})),
    )
}

#[test]
fn no_client_may_register_a_pattern_overlapping_another_clients_verified_one() {
    let t = TestApp::new();
    let acme = t.login("admin@acme.test");
    let globex = t.login("admin@globex.test");
    for name in ["*.overlap.example", "host.exact-under.example"] {
        let r = register(&t, &acme, ACME, name);
        assert_eq!(r.status, 201, "{} {:?}", body_str(&r), t.p.logs.borrow());
        let id = json_of(&r)["id"].as_str().unwrap().to_string();
        assert_eq!(force_verify(&t, ACME, &id).status, 200);
    }
    for taken in [
        "deep.sub.overlap.example",
        "*.sub.overlap.example",
        "*.overlap.example",
        "*.exact-under.example",
        "HOST.exact-under.example.",
    ] {
        let r = register(&t, &globex, GLOBEX, taken);
        assert_eq!(r.status, 409, "{taken}: {}", body_str(&r));
        assert_eq!(error_code(&r), "domain_taken");
    }
    for free in ["other.exact-under.example", "exact-under.example", "overlap-not.example"] {
        assert_eq!(register(&t, &globex, GLOBEX, free).status, 201, "{free}");
    }
    // The same client may hold nested patterns of its own.
    assert_eq!(register(&t, &acme, ACME, "*.a.overlap.example").status, 201);
}

#[test]
fn origins_with_characters_no_site_can_have_never_match_a_wildcard() {
    let t = TestApp::new();
    let globex = t.login("admin@globex.test");
    let platform = t.login("admin@gatehouse.test");
    let id = json_of(&register(&t, &globex, GLOBEX, "*.shop.example"))["id"].as_str().unwrap().to_string();
    t.req(
        Method::Post,
        &format!("/api/clients/{GLOBEX}/domains/{id}/verify"),
        Some(&platform),
        Some(json!({"force": true})),
    );
    assert_eq!(gate(&t, &t.demo.globex_key, "https://a.shop.example").status, 200);
    for bad in [
        "https://*.shop.example",
        "https://evil.com!.shop.example",
        "https://x=y&z.shop.example",
        "https://a_b.shop.example",
        "https://$.shop.example",
    ] {
        let r = gate(&t, &t.demo.globex_key, bad);
        assert_eq!(r.status, 403, "{bad}");
        assert!(r.header("access-control-allow-origin").is_none());
    }
}

/// The gate's method arms: preflight, config, leads, wrong methods and unknown paths, each with
/// the allowed origin echoed (and only then), and every refusal the same 403.
#[test]
fn the_gate_answers_each_method_and_path_behind_the_origin_check() {
    let t = TestApp::new();
    let key = t.demo.acme_key.clone();
    let origin = "http://shop.localhost:5173";
    let call = |m: Method, path: &str, origin: Option<&str>, body: Option<&str>| {
        let mut r = Request::new(m, &format!("/api/widget/v1/{path}?key={key}")).with_header("host", API);
        if let Some(o) = origin {
            r = r.with_header("origin", o);
        }
        if let Some(b) = body {
            r = r.with_header("content-type", "application/json").with_body(b.to_string());
        }
        t.call(r)
    };
    // method, path, Origin, body, status, whether the origin is echoed
    type Case<'a> = (Method, &'a str, Option<&'a str>, Option<&'a str>, u16, bool);
    let cases: &[Case] = &[
        (Method::Options, "leads", Some(origin), None, 204, true),
        (Method::Options, "config", Some(origin), None, 204, true),
        (Method::Get, "config", Some(origin), None, 200, true),
        (Method::Post, "leads", Some(origin), Some(r#"{"name":"Al","email":"al@example.com"}"#), 201, true),
        (Method::Put, "config", Some(origin), None, 405, true),
        (Method::Get, "leads", Some(origin), None, 405, true),
        (Method::Get, "other", Some(origin), None, 404, true),
        (Method::Options, "leads", Some("http://evil.localhost:5173"), None, 403, false),
        (Method::Get, "config", None, None, 403, false),
        (Method::Post, "leads", Some("null"), Some(r#"{"name":"Al","email":"al@example.com"}"#), 403, false),
    ];
    // A malformed key is refused before any lookup, and two Origin headers are refused outright.
    let before = t.p.queries.get();
    let bad = t.call(
        Request::new(Method::Get, "/api/widget/v1/config?key=pk_short")
            .with_header("host", API)
            .with_header("origin", origin),
    );
    assert_eq!(bad.status, 403);
    assert_eq!(t.p.queries.get(), before, "a malformed key costs no D1 query");
    let two = t.call(
        Request::new(Method::Get, &format!("/api/widget/v1/config?key={key}"))
            .with_header("host", API)
            .with_header("origin", origin)
            .with_header("origin", origin),
    );
    assert_eq!(two.status, 403, "two Origin headers");
    for (m, path, o, body, want, echoed) in cases {
        let r = call(*m, path, *o, *body);
        assert_eq!(r.status, *want, "{m:?} {path} {o:?}: {}", body_str(&r));
        assert_eq!(r.header("access-control-allow-origin"), if *echoed { Some(origin) } else { None }, "{m:?} {path}");
        assert_eq!(r.header("vary"), Some("Origin"), "{m:?} {path}");
        if *want == 204 {
            assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST, OPTIONS"));
        }
        if *want == 403 {
            assert_eq!(error_code(&r), "domain_not_authorized");
        }
    }
}

/// The gate is the hot path: every other route is boxed so the request future stays small
/// (2,568 bytes before the routes were boxed, 560 after, natively; 1,016 before the shard router
/// stood between the core and its databases, 1,184 with it). A budget, not a timing.
#[test]
fn the_request_future_stays_small_for_the_gate() {
    let t = TestApp::new();
    let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
    let req = Request::new(Method::Get, "/api/widget/v1/config?key=x").with_header("host", API);
    let fut = app.handle(req);
    let size = std::mem::size_of_val(&fut);
    assert!(size <= 1280, "the request future grew to {size} bytes; box the new route");
}

#[test]
fn a_domains_event_is_relayed_to_the_shard_once_even_when_a_relay_repeats_or_a_request_stops_short() {
    let t = TestApp::new();
    let tok = t.login("admin@globex.test");
    let d = json_of(&register(&t, &tok, GLOBEX, "events.example"));
    let id = d["id"].as_str().unwrap();
    let events =
        || t.p.sql(&format!("SELECT id, type FROM events WHERE client_id = '{GLOBEX}' AND type LIKE 'domain.%'"));
    let held = || t.p.sql("SELECT id FROM shard_writes").len();
    assert_eq!(force_verify(&t, GLOBEX, id).status, 200);
    let verified = events();
    assert_eq!(verified.len(), 1, "{verified:?}");
    assert_eq!(verified[0]["type"], "domain.verified");
    assert_eq!(held(), 0, "applied and dropped by the request that verified it");

    // A request that stopped after its batch leaves the hold; one that stopped after applying it
    // and before dropping it leaves an applied one. The scheduled run applies both, once.
    let event_id = verified[0]["id"].as_str().unwrap();
    let old = t.p.now_ms.get() - 120_000;
    let hold = |hold_id: &str, event: &str, kind: &str| {
        let writes = json!([["event", [event, GLOBEX, kind, "{}", old]]]);
        t.p.exec(&format!(
            "INSERT INTO shard_writes (id, tenant_id, writes, created_at) VALUES ('{hold_id}', '{GLOBEX}', '{writes}', {old})"
        ));
    };
    hold("sw_000000000000000000000001", event_id, "domain.verified");
    hold("sw_000000000000000000000002", "evt_000000000000000000000099", "domain.lapsed");
    let report = recheck(&t);
    assert_eq!(report["shard_writes"]["applied"], 2, "{report}");
    let after = events();
    assert_eq!(after.len(), 2, "the applied one is not written twice: {after:?}");
    assert!(after.iter().any(|e| e["id"] == "evt_000000000000000000000099" && e["type"] == "domain.lapsed"));
    assert_eq!(held(), 0);
    assert_eq!(recheck(&t)["shard_writes"]["applied"], 0, "nothing left");
    // A hold naming a statement that is not relayable is refused, not run.
    t.p.exec(&format!(
        "INSERT INTO shard_writes (id, tenant_id, writes, created_at) VALUES ('sw_3', '{GLOBEX}', '[[\"drop\", []]]', {old})"
    ));
    assert_eq!(recheck(&t)["shard_writes"]["unreadable"], json!(["sw_3"]));
    assert_eq!(held(), 1, "kept for a person to look at");
}
