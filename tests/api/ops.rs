//! Operations through the real router: one JSON log line per request (request id, route template,
//! tenant, status, queries, gate decision), the 5xx body naming the request, one metrics data
//! point per request, daily counters written after a response once due, `/metrics` and `/health`.

use crate::common::*;
use gatehouse::platform::http::{Method, Request, Response};
use gatehouse::seed::{ACME, GLOBEX};
use serde_json::{json, Value};

fn lines(t: &TestApp) -> Vec<(String, Value)> {
    t.p.logs
        .borrow()
        .iter()
        .filter_map(|l| {
            let (level, msg) = l.split_once(": ")?;
            let v: Value = serde_json::from_str(msg).ok()?;
            (v["event"] == "request").then(|| (level.to_string(), v))
        })
        .collect()
}

fn widget(t: &TestApp, origin: &str) -> Response {
    t.call(
        Request::new(Method::Get, &format!("/api/widget/v1/config?key={}", t.demo.acme_key))
            .with_header("host", API)
            .with_header("origin", origin),
    )
}

#[test]
fn every_request_leaves_one_json_line_with_its_template_tenant_and_id() {
    let t = TestApp::with_config(test_config(&[("LOG_LEVEL", "debug")]));
    let tok = t.login("admin@acme.test");
    t.p.logs.borrow_mut().clear();
    let r = t.call(
        Request::new(Method::Get, &format!("/api/clients/{ACME}/contacts?limit=5"))
            .with_header("host", API)
            .with_header("authorization", &format!("Bearer {tok}"))
            .with_header("cf-ray", "8f1e2d3c4b5a6978-AMS"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("8f1e2d3c4b5a6978-AMS"), "cf-ray is the request id");
    let allowed = widget(&t, "http://shop.localhost");
    assert_eq!(allowed.status, 200);
    let denied = widget(&t, "https://evil.example");
    assert_eq!(denied.status, 403);
    let missing = t.req(Method::Get, "/nothing/here", None, None);
    assert_eq!(missing.status, 404);
    let generated = missing.header("x-request-id").unwrap();
    assert!(generated.starts_with("req_") && generated.len() == 28, "{generated}");

    let logged = lines(&t);
    assert_eq!(logged.len(), 4, "one line per request: {logged:?}");
    assert_eq!(logged[1].0, "debug", "an allowed widget read is a debug line");
    let (level, first) = &logged[0];
    assert_eq!(level, "info");
    assert_eq!(first["request_id"], "8f1e2d3c4b5a6978-AMS");
    assert_eq!(first["route"], "/api/clients/{client_id}/contacts", "the template, never the path");
    assert_eq!(
        (first["method"].as_str(), first["status"].as_u64(), first["tenant"].as_str()),
        (Some("GET"), Some(200), Some(ACME))
    );
    assert!(first["queries"].as_u64().unwrap() >= 1 && first["duration_ms"].as_i64().unwrap() >= 0, "{first}");
    assert_eq!((logged[1].1["gate"].as_str(), logged[1].1["tenant"].as_str()), (Some("allowed"), Some(ACME)));
    assert_eq!(logged[2].1["gate"], "denied_origin");
    assert_eq!(logged[2].1["error"], json!({"code": "domain_not_authorized"}));
    assert_eq!(
        (logged[3].1["route"].as_str(), logged[3].1["request_id"].as_str()),
        (Some("unmatched"), Some(generated))
    );
    assert!(logged[3].1["tenant"].is_null());
    // Nothing a caller sent beyond the method reaches a line: not the token, the path's ids, the query.
    for (_, v) in &logged {
        let s = v.to_string();
        assert!(!s.contains(&tok) && !s.contains("limit=5") && !s.contains(&t.demo.acme_key), "{s}");
    }
    // One Analytics Engine data point per request, indexed by tenant.
    let points = t.p.points.borrow();
    assert_eq!(points.len(), 4 + 1, "the login too: {points:?}");
    assert!(points[1].starts_with(&format!("{ACME}|/api/clients/{{client_id}}/contacts|GET||2xx|200")), "{points:?}");
    assert!(points[4].starts_with("none|unmatched|GET||4xx|404"), "{points:?}");
}

#[test]
fn a_server_fault_is_logged_with_its_detail_and_answered_with_the_request_id_alone() {
    let t = TestApp::new();
    let tok = t.login("admin@acme.test");
    *t.p.fail_sql_containing.borrow_mut() = Some("INSERT INTO contacts".into());
    let r = t.req(Method::Post, &format!("/api/clients/{ACME}/contacts"), Some(&tok), Some(json!({"name": "Faulty"})));
    assert_eq!(r.status, 500);
    let body = json_of(&r);
    let id = r.header("x-request-id").unwrap().to_string();
    assert_eq!(body, json!({"error": {"code": "internal_error", "message": "Internal error", "request_id": id}}));
    let (level, line) = lines(&t).pop().unwrap();
    assert_eq!((level.as_str(), line["status"].as_u64()), ("error", Some(500)));
    assert_eq!(line["request_id"], id.as_str());
    assert!(line["error"]["detail"].as_str().is_some_and(|d| !d.is_empty()), "{line}");
}

#[test]
fn at_the_default_level_widget_reads_are_counted_but_not_logged_and_widget_writes_are_logged() {
    let t = TestApp::new();
    assert_eq!(widget(&t, "http://shop.localhost").status, 200);
    assert_eq!(widget(&t, "https://evil.example").status, 403);
    assert!(lines(&t).is_empty(), "{:?}", lines(&t));
    assert_eq!(t.p.points.borrow().len(), 2, "both are data points, with their decision");
    assert!(t.p.points.borrow()[1].contains("|denied_origin|4xx|403"), "{:?}", t.p.points.borrow());
    let lead = t.call(
        Request::new(Method::Post, &format!("/api/widget/v1/leads?key={}", t.demo.acme_key))
            .with_header("host", API)
            .with_header("origin", "https://evil.example")
            .with_header("content-type", "application/json")
            .with_body(json!({"name": "Visitor"}).to_string()),
    );
    assert_eq!(lead.status, 403);
    let logged = lines(&t);
    assert_eq!(logged.len(), 1, "a refused write is an info line: {logged:?}");
    assert_eq!((logged[0].0.as_str(), logged[0].1["gate"].as_str()), ("info", Some("denied_origin")));
    // The widget's script and the health check come with page views and monitors: debug lines.
    assert_eq!(t.req(Method::Get, "/widget.js", None, None).status, 200);
    assert_eq!(t.req(Method::Get, "/healthz", None, None).status, 200);
    assert_eq!(lines(&t).len(), 1);
    assert_eq!(t.p.points.borrow().len(), 5);
}

#[test]
fn the_log_level_keeps_lines_below_it_out() {
    let t = TestApp::with_config(test_config(&[("LOG_LEVEL", "warn")]));
    let tok = t.login("admin@acme.test");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}"), Some(&tok), None).status, 200);
    assert!(lines(&t).is_empty(), "info lines are not written at warn");
    assert_eq!(t.p.points.borrow().len(), 2, "metrics are not logs: every request still counts");
    assert!(gatehouse::platform::config::Config::from_map(&std::collections::BTreeMap::from([(
        "LOG_LEVEL",
        "loud".to_string()
    )]))
    .is_err());
}

#[test]
fn daily_counters_are_written_after_a_response_once_due_and_read_back_per_client() {
    let t = TestApp::new();
    let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
    let serve = |origin: &str| {
        let req = Request::new(Method::Get, &format!("/api/widget/v1/config?key={}", t.demo.acme_key))
            .with_header("host", API)
            .with_header("origin", origin);
        pollster::block_on(app.serve(req))
    };
    for _ in 0..3 {
        let (r, follow) = serve("http://shop.localhost");
        assert_eq!(r.status, 200);
        assert!(follow.counters.is_empty(), "not due yet: no D1 write");
    }
    let (_, follow) = serve("https://evil.example");
    assert!(follow.counters.is_empty());
    assert!(t.p.sql("SELECT * FROM tenant_daily").is_empty());
    t.p.now_ms.set(t.p.now_ms.get() + 10_000);
    let (_, follow) = serve("http://shop.localhost");
    assert_eq!(follow.counters.len(), 1, "one upsert for the one tenant and day");
    pollster::block_on(app.follow_up(follow)).unwrap();
    let rows = t.p.sql("SELECT tenant_id, requests, errors, widget_allowed, widget_denied FROM tenant_daily");
    assert_eq!(
        rows,
        vec![serde_json::from_value(
            json!({"tenant_id": ACME, "requests": 5, "errors": 0, "widget_allowed": 4, "widget_denied": 1})
        )
        .unwrap()]
    );

    // A second flush adds to the same row.
    let (_, _) = serve("http://shop.localhost");
    pollster::block_on(app.scheduled("recheck-now")).unwrap();
    let admin = t.login("admin@acme.test");
    let today = gatehouse::platform::tz::instant_string(t.p.now_ms.get())[..10].to_string();
    let m = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}/metrics"), Some(&admin), None));
    assert_eq!(m["items"].as_array().unwrap().len(), 1, "{m}");
    assert_eq!(m["items"][0]["day"], today.as_str());
    assert_eq!((m["totals"]["widget_allowed"].as_i64(), m["totals"]["widget_denied"].as_i64()), (Some(5), Some(1)));
    assert!(m["totals"]["requests"].as_i64().unwrap() >= 6);
    assert_eq!(m["totals"]["last_widget_at"], json!(t.p.now_ms.get()), "the last allowed widget hit");
    // Ranges: both ends inclusive, bounded, well-formed; another tenant's id is unknown.
    for (q, code) in
        [("?from=2026-13-01", 400), ("?from=2026-02-01&to=2026-01-01", 400), ("?from=2020-01-01&to=2026-01-01", 400)]
    {
        let r = t.req(Method::Get, &format!("/api/clients/{ACME}/metrics{q}"), Some(&admin), None);
        assert_eq!(r.status, code, "{q}: {}", body_str(&r));
        assert_eq!(error_code(&r), "invalid_range");
    }
    let empty = json_of(&t.req(
        Method::Get,
        &format!("/api/clients/{ACME}/metrics?from=2020-01-01&to=2020-01-31"),
        Some(&admin),
        None,
    ));
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["totals"]["last_widget_at"], json!(null));
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{GLOBEX}/metrics"), Some(&admin), None).status, 404);
}

#[test]
fn health_shows_domains_errors_the_last_widget_hit_and_quota_pressure_to_the_agency() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let path = format!("/api/clients/{ACME}/health");
    let calm = json_of(&t.req(Method::Get, &path, Some(&agency), None));
    assert_eq!(calm["status"], "ok", "{calm}");
    assert_eq!(calm["domains"]["verified"], 1);
    assert!(calm["last_widget_hit"].is_null());

    // A lapsing domain, a widget hit, failing requests, and contacts at 90% of a set limit.
    t.p.exec("UPDATE domains SET consecutive_failures = 1 WHERE id = 'dom_000000000000000000000001'");
    let hit_at = t.p.now_ms.get();
    assert_eq!(widget(&t, "http://shop.localhost").status, 200);
    let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
    pollster::block_on(app.scheduled("recheck-now")).unwrap();
    let day = hit_at.div_euclid(86_400_000);
    t.p.exec(&format!(
        "UPDATE tenant_daily SET requests = requests + 99, errors = 10 WHERE tenant_id = '{ACME}' AND day = {day}"
    ));
    let contacts =
        t.p.sql(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}'"))[0]["n"].as_i64().unwrap();
    let limit = (contacts * 10 + 8) / 9;
    let r = t.req(
        Method::Put,
        &format!("/api/clients/{ACME}"),
        Some(&agency),
        Some(json!({"limits": {"contacts": limit}})),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let h = json_of(&t.req(Method::Get, &path, Some(&agency), None));
    assert_eq!(h["status"], "attention", "{h}");
    assert_eq!(h["domains"]["lapsing"], 1);
    assert_eq!(h["last_widget_hit"].as_i64(), Some(hit_at));
    assert!(h["errors"]["rate"].as_f64().unwrap() > 0.05);
    let contacts_q = h["quotas"].as_array().unwrap().iter().find(|q| q["metric"] == "contacts").unwrap().clone();
    assert_eq!(contacts_q["pressure"], true, "{contacts_q}");
    let reasons = h["attention"].as_array().unwrap().len();
    assert_eq!(reasons, 3, "lapsing domain, error rate, contacts: {h}");

    // The agency's and the platform's view: a client admin may not, another agency's admin sees nothing.
    assert_eq!(t.req(Method::Get, &path, Some(&t.login("admin@gatehouse.test")), None).status, 200);
    let client_admin = t.req(Method::Get, &path, Some(&t.login("admin@acme.test")), None);
    assert_eq!((client_admin.status, error_code(&client_admin).as_str()), (403, "forbidden"));
}

#[test]
fn counts_for_a_client_deleted_before_the_flush_are_dropped_and_the_live_ones_written() {
    let t = TestApp::new();
    let admin = t.login("admin@gatehouse.test");
    for tenant in [ACME, GLOBEX] {
        assert_eq!(t.req(Method::Get, &format!("/api/clients/{tenant}"), Some(&admin), None).status, 200);
    }
    // Globex is deleted (restorable) after its request was counted, before the counts are written.
    t.p.exec(&format!("UPDATE clients SET deleted_at = 1, purge_after = 2 WHERE id = '{GLOBEX}'"));
    let written = pollster::block_on(gatehouse::ops::write_counters(&t.p, t.state.counters.take_all())).unwrap();
    let rows = t.p.sql("SELECT tenant_id FROM tenant_daily ORDER BY tenant_id");
    let tenants: Vec<&str> = rows.iter().filter_map(|r| r["tenant_id"].as_str()).collect();
    assert!(tenants.contains(&ACME), "{tenants:?}");
    assert!(!tenants.contains(&GLOBEX), "a deleted client's counts are not written behind its purge: {tenants:?}");
    assert_eq!(written, tenants.len());
}
