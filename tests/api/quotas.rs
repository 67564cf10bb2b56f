//! Plans and quotas: limits from `data/plans.json` and per-client overrides, refused writes that
//! name their metric, usage with its 80%/100% events, and who may change limits.

use crate::common::*;
use gatehouse::platform::http::Method;
use gatehouse::seed::{ACME, GLOBEX};
use serde_json::{json, Value};

fn usage(t: &TestApp, token: &str, client: &str) -> Value {
    let r = t.req(Method::Get, &format!("/api/clients/{client}/usage"), Some(token), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    json_of(&r)
}

fn set_limits(t: &TestApp, limits: Value) {
    let agency = t.login("agency.admin@northwind.test");
    let r = t.req(Method::Put, &format!("/api/clients/{ACME}"), Some(&agency), Some(json!({"limits": limits})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
}

#[test]
fn usage_reports_every_metric_against_the_plan_and_overrides_win() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let u = usage(&t, &admin, ACME);
    for m in [
        "seats",
        "contacts",
        "deals",
        "storage_bytes",
        "domains",
        "widget_submissions_per_day",
        "api_requests_per_minute",
    ] {
        assert!(u[m]["limit"].as_i64().unwrap() > 0, "{m}: {u}");
    }
    assert_eq!(u["contacts"]["limit"], 2500, "starter's contacts, from data/plans.json");
    let held =
        t.p.sql(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}'"))[0]["n"].as_i64().unwrap();
    assert_eq!(u["contacts"]["used"], held);
    assert_eq!(u["contacts"]["remaining"], 2500 - held);
    assert!(u["api_requests_per_minute"]["used"].is_null());
    set_limits(&t, json!({"contacts": held + 1, "deals": 9000}));
    let u = usage(&t, &admin, ACME);
    assert_eq!((u["contacts"]["limit"].as_i64(), u["deals"]["limit"].as_i64()), (Some(held + 1), Some(9000)));
    // null removes an override; the plan's limit is back.
    set_limits(&t, json!({"deals": null}));
    assert_eq!(usage(&t, &admin, ACME)["deals"]["limit"], 1000);
    assert_eq!(usage(&t, &admin, ACME)["contacts"]["limit"], held + 1, "other overrides stay");
}

#[test]
fn only_the_agency_sets_limits_and_only_known_metrics_and_whole_numbers() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let r = t.req(
        Method::Put,
        &format!("/api/clients/{ACME}"),
        Some(&admin),
        Some(json!({"limits": {"contacts": 1_000_000}})),
    );
    assert_eq!((r.status, error_code(&r).as_str()), (403, "forbidden_field"));
    let agency = t.login("agency.admin@northwind.test");
    for bad in [json!({"contactz": 5}), json!({"contacts": -1}), json!({"contacts": 2.5}), json!({"contacts": "5"})] {
        let r = t.req(Method::Put, &format!("/api/clients/{ACME}"), Some(&agency), Some(json!({"limits": bad})));
        assert_eq!((r.status, error_code(&r).as_str()), (422, "invalid_limits"), "{bad}");
    }
    let r = t.req(Method::Put, &format!("/api/clients/{ACME}"), Some(&agency), Some(json!({"plan": "platinum"})));
    assert_eq!(error_code(&r), "invalid_plan");
    assert_eq!(t.p.sql(&format!("SELECT limits FROM clients WHERE id = '{ACME}'"))[0]["limits"], "{}");
}

#[test]
fn contacts_stop_at_the_limit_with_a_429_naming_the_metric_and_crossings_are_recorded_once() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let held =
        t.p.sql(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}'"))[0]["n"].as_i64().unwrap();
    // A limit of held + 5: 80% is reached at ceil(0.8 × limit).
    let limit = held + 5;
    set_limits(&t, json!({"contacts": limit}));
    let create = |i: i64| {
        t.req(
            Method::Post,
            &format!("/api/clients/{ACME}/contacts"),
            Some(&admin),
            Some(json!({"name": format!("Q{i}")})),
        )
    };
    for i in 0..5 {
        assert_eq!(create(i).status, 201);
    }
    let r = create(99);
    assert_eq!(r.status, 429, "{}", body_str(&r));
    assert_eq!(
        json_of(&r)["error"],
        json!({"code": "quota_exceeded", "metric": "contacts", "limit": limit,
        "message": format!("the plan allows {limit} contacts; the limit is reached")})
    );
    assert_eq!(t.p.sql(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}'"))[0]["n"], limit);
    assert_eq!(
        t.p.sql("SELECT count(*) AS n FROM events WHERE type = 'contact.created'")[0]["n"],
        5,
        "no event for the refused one"
    );
    let events = t
        .p
        .sql(&format!("SELECT threshold, used, quota FROM usage_events WHERE client_id = '{ACME}' ORDER BY threshold"));
    let eighty = (limit * 4 + 4) / 5;
    assert_eq!(
        events,
        vec![
            serde_json::from_value(json!({"threshold": 80, "used": eighty, "quota": limit})).unwrap(),
            serde_json::from_value(json!({"threshold": 100, "used": limit, "quota": limit})).unwrap(),
        ]
    );
    let audited = t.p.sql(&format!(
        "SELECT metadata FROM audit_log WHERE tenant_id = '{ACME}' AND action = 'usage.threshold_crossed' ORDER BY seq"
    ));
    assert_eq!(audited.len(), 2);
    assert!(audited[1]["metadata"].as_str().unwrap().contains(r#""threshold":100"#));
    let u = usage(&t, &admin, ACME);
    assert_eq!(u["contacts"]["remaining"], 0);
    assert_eq!(u["contacts"]["events"].as_array().unwrap().len(), 2);
    // A deleted contact frees its place.
    let id = t.p.sql(&format!("SELECT id FROM contacts WHERE client_id = '{ACME}' AND name = 'Q0'"))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(t.req(Method::Delete, &format!("/api/clients/{ACME}/contacts/{id}"), Some(&admin), None).status, 204);
    assert_eq!(create(100).status, 201);
    // Another client is not affected.
    let globex = t.login("admin@globex.test");
    let r = t.req(Method::Post, &format!("/api/clients/{GLOBEX}/contacts"), Some(&globex), Some(json!({"name": "G"})));
    assert_eq!(r.status, 201);
}

#[test]
fn deals_domains_seats_and_widget_leads_each_stop_at_their_limit() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let count = |sql: &str| t.p.sql(sql)[0]["n"].as_i64().unwrap();
    let deals = count(&format!("SELECT count(*) AS n FROM deals WHERE client_id = '{ACME}'"));
    let domains = count(&format!("SELECT count(*) AS n FROM domains WHERE client_id = '{ACME}'"));
    let seats = count(&format!("SELECT count(*) AS n FROM client_users WHERE client_id = '{ACME}'"));
    let contacts = count(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}'"));
    set_limits(&t, json!({"deals": deals, "domains": domains, "seats": seats, "contacts": contacts}));
    let metric = |r: &gatehouse::platform::http::Response| {
        assert_eq!(r.status, 429, "{}", body_str(r));
        json_of(r)["error"]["metric"].as_str().unwrap().to_string()
    };
    let pipeline = t.p.sql(&format!("SELECT id FROM pipelines WHERE client_id = '{ACME}' LIMIT 1"))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t.req(
        Method::Post,
        &format!("/api/clients/{ACME}/deals"),
        Some(&admin),
        Some(json!({"title": "D", "pipeline_id": pipeline})),
    );
    assert_eq!(metric(&r), "deals");
    let r = t.req(
        Method::Post,
        &format!("/api/clients/{ACME}/domains"),
        Some(&admin),
        Some(json!({"domain": "quota.example.com", "purpose": "widget"})),
    );
    assert_eq!(metric(&r), "domains");
    // Seats: an invitation can be sent, but accepting it needs a free seat; the invitation stays usable.
    let r = t.req(Method::Post, "/api/users", Some(&admin), Some(json!({"email": "seat@example.com", "tenant": ACME})));
    assert_eq!(r.status, 202);
    let body =
        t.p.sql("SELECT body FROM outbox WHERE to_email = 'seat@example.com'")[0]["body"].as_str().unwrap().to_string();
    let at = body.find("inv_").unwrap();
    let token = body[at..at + 56].to_string();
    let accept = || {
        t.req(
            Method::Post,
            "/api/invitations/accept",
            None,
            Some(json!({"token": token, "name": "S", "password": "a-long-seat-password"})),
        )
    };
    assert_eq!(metric(&accept()), "seats");
    assert_eq!(t.p.sql("SELECT status FROM invitations WHERE email = 'seat@example.com'")[0]["status"], "pending");
    assert_eq!(count("SELECT count(*) AS n FROM users WHERE email = 'seat@example.com'"), 0, "no account made");
    // Granting an existing member new terms needs no new seat; a new member does.
    let agency = t.login("agency.admin@northwind.test");
    let viewer =
        t.p.sql("SELECT id FROM users WHERE email = 'viewer@acme.test'")[0]["id"].as_str().unwrap().to_string();
    let r = t.req(
        Method::Post,
        &format!("/api/users/{viewer}/grant-access"),
        Some(&agency),
        Some(json!({"client_id": ACME, "role": "client_user"})),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let outsider =
        t.p.sql("SELECT id FROM users WHERE email = 'admin@globex.test'")[0]["id"].as_str().unwrap().to_string();
    let r = t.req(
        Method::Post,
        &format!("/api/users/{outsider}/grant-access"),
        Some(&agency),
        Some(json!({"client_id": ACME, "role": "client_viewer"})),
    );
    assert_eq!(metric(&r), "seats");
    // One more seat, and the same invitation works: the seat that fills the plan crosses 100%,
    // counted in the control plane and recorded with the client's other usage events, at once.
    set_limits(&t, json!({"seats": seats + 1}));
    assert_eq!(accept().status, 200);
    let u = usage(&t, &admin, ACME);
    let crossed: Vec<i64> =
        u["seats"]["events"].as_array().unwrap().iter().map(|e| e["threshold"].as_i64().unwrap()).collect();
    assert!(crossed.contains(&100), "{u}");
    assert!(t.p.sql("SELECT id FROM shard_writes").is_empty(), "the crossing's hold was applied");
    // Widget leads count as contacts.
    let key = t.demo.acme_key.clone();
    let r = t.call(
        gatehouse::platform::http::Request::new(Method::Post, &format!("/api/widget/v1/leads?key={key}"))
            .with_header("host", API)
            .with_header("origin", "http://shop.localhost:8080")
            .with_header("content-type", "application/json")
            .with_body(json!({"name": "W", "email": "w@example.com"}).to_string()),
    );
    assert_eq!(metric(&r), "contacts");
    assert_eq!(count(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}'")), contacts);
}

#[test]
fn every_plan_rate_has_its_rate_limiting_binding() {
    use gatehouse::platform::ports::{Limit, API_RATES};
    let plans: Value = serde_json::from_str(include_str!("../../data/plans.json")).unwrap();
    let toml = include_str!("../../wrangler.toml");
    for (name, plan) in plans["plans"].as_object().unwrap() {
        let rate = plan["api_requests_per_minute"].as_u64().unwrap() as u32;
        assert!(API_RATES.contains(&rate), "plan {name}: {rate} has no binding");
    }
    for rate in API_RATES {
        let binding = Limit::ApiPerMinute(rate).binding();
        let block = toml.split("[[ratelimits]]").find(|b| b.contains(&format!("\"{binding}\""))).unwrap_or_else(|| {
            panic!("wrangler.toml lacks {binding}");
        });
        assert!(block.contains(&format!("simple = {{ limit = {rate}, period = 60 }}")), "{binding}: {block}");
    }
}

#[test]
fn a_clients_api_requests_are_capped_at_its_plans_rate_and_other_clients_keep_theirs() {
    use gatehouse::platform::ports::Limit;
    let t = TestApp::new();
    t.p.limits.borrow_mut().insert(Limit::ApiPerMinute(600), 3);
    t.p.limits.borrow_mut().insert(Limit::ApiPerMinute(1200), 5);
    let admin = t.login("admin@acme.test");
    let globex = t.login("admin@globex.test");
    let contacts = format!("/api/clients/{ACME}/contacts");
    for _ in 0..3 {
        assert_eq!(t.req(Method::Get, &contacts, Some(&admin), None).status, 200);
    }
    let r = t.req(Method::Get, &contacts, Some(&admin), None);
    assert_eq!((r.status, error_code(&r).as_str()), (429, "rate_limited"));
    assert_eq!(r.header("retry-after"), Some("60"));
    // The budget is for the client's own traffic: its agency still manages it, uncounted.
    let agency = t.login("agency.admin@northwind.test");
    assert_eq!(t.req(Method::Get, &contacts, Some(&agency), None).status, 200);
    let user = t.login("user@acme.test");
    assert_eq!(t.req(Method::Get, &contacts, Some(&user), None).status, 429, "every member shares the client's budget");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{GLOBEX}/contacts"), Some(&globex), None).status, 200);
    // An override picks another rate's binding; a rate with none is refused.
    let bad = t.req(
        Method::Put,
        &format!("/api/clients/{GLOBEX}"),
        Some(&agency),
        Some(json!({"limits": {"api_requests_per_minute": 700}})),
    );
    assert_eq!(error_code(&bad), "invalid_limits");
    let r = t.req(
        Method::Put,
        &format!("/api/clients/{GLOBEX}"),
        Some(&agency),
        Some(json!({"limits": {"api_requests_per_minute": 1200}})),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{GLOBEX}/contacts"), Some(&globex), None).status, 200);
    // An override stored before rates were bound (1000) takes the next bound rate up.
    t.p.exec(&format!("UPDATE clients SET limits = '{{\"api_requests_per_minute\":1000}}' WHERE id = '{GLOBEX}'"));
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{GLOBEX}/contacts"), Some(&globex), None).status, 200);
    let seen = t.p.limit_counts.borrow().get(&(Limit::ApiPerMinute(1200), GLOBEX.to_string())).copied();
    assert_eq!(seen, Some(2), "the next requests count against the 1,200 rate");
}
