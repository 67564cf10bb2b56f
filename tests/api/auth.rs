//! Native API tests: login, tokens, context switching and tenant resolution by Host.

use crate::common::*;
use gatehouse::platform::http::{Method, Request};
use serde_json::json;

#[test]
fn every_demo_user_can_log_in_and_see_their_context() {
    let t = TestApp::new();
    for (email, _, roles) in t.demo.users.clone() {
        let token = t.login(&email);
        let me = t.req(Method::Get, "/api/me", Some(&token), None);
        assert_eq!(me.status, 200, "{email}: {}", body_str(&me));
        let v = json_of(&me);
        assert_eq!(v["user"]["email"], email);
        let first_role = roles.split(", ").next().unwrap().split('@').next().unwrap();
        assert_eq!(v["context"]["role"], first_role, "{email}");
    }
}

#[test]
fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let t = TestApp::new();
    let wrong = t.req(
        Method::Post,
        "/api/auth/login",
        None,
        Some(json!({"email": "admin@acme.test", "password": "nope-nope-nope"})),
    );
    let unknown = t.req(
        Method::Post,
        "/api/auth/login",
        None,
        Some(json!({"email": "ghost@acme.test", "password": "nope-nope-nope"})),
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.body, unknown.body);
}

#[test]
fn a_multi_client_user_can_switch_only_to_clients_they_belong_to() {
    let t = TestApp::new();
    let token = t.login("multi@northwind.test");
    let me = json_of(&t.req(Method::Get, "/api/me", Some(&token), None));
    assert_eq!(me["memberships"].as_array().unwrap().len(), 2);
    let first = me["context"]["tenant"].as_str().unwrap().to_string();
    let other = if first == gatehouse::seed::ACME { gatehouse::seed::GLOBEX } else { gatehouse::seed::ACME };
    let r = t.req(Method::Post, "/api/auth/switch", Some(&token), Some(json!({"tenant": other})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let switched = json_of(&r)["access_token"].as_str().unwrap().to_string();
    let me = json_of(&t.req(Method::Get, "/api/me", Some(&switched), None));
    assert_eq!(me["context"]["tenant"], other);
    let r = t.req(Method::Post, "/api/auth/switch", Some(&token), Some(json!({"tenant": gatehouse::seed::AGENCY})));
    assert_eq!(r.status, 403);
}

#[test]
fn tenant_resolution_by_host() {
    let t = TestApp::new();
    let token = t.login("admin@acme.test");
    let on = |host: &str| {
        t.call(
            Request::new(Method::Get, "/api/me")
                .with_header("host", host)
                .with_header("authorization", &format!("Bearer {token}")),
        )
    };
    assert_eq!(on("acme.portal.test").status, 200);
    assert_eq!(on("ACME.portal.test:8443").status, 200, "hosts are case-insensitive");
    assert_eq!(on("globex.portal.test").status, 403, "token and host disagree");
    assert_eq!(error_code(&on("globex.portal.test")), "tenant_mismatch");
    assert_eq!(on("nobody.portal.test").status, 404);
    assert_eq!(on("evil.example").status, 404);
    // Spoofing headers never widens scope.
    let r = t.call(
        Request::new(Method::Get, "/api/me")
            .with_header("host", "globex.portal.test")
            .with_header("x-forwarded-host", "acme.portal.test")
            .with_header("x-tenant-id", gatehouse::seed::ACME)
            .with_header("authorization", &format!("Bearer {token}")),
    );
    assert_eq!(r.status, 403);
}

#[test]
fn portal_login_is_refused_for_another_tenants_user() {
    let t = TestApp::new();
    let login = |host: &str| {
        t.call(
            Request::new(Method::Post, "/api/auth/login")
                .with_header("host", host)
                .with_header("content-type", "application/json")
                .with_body(json!({"email": "admin@acme.test", "password": t.password("admin@acme.test")}).to_string()),
        )
    };
    assert_eq!(login("acme.portal.test").status, 200);
    let r = login("globex.portal.test");
    assert_eq!(r.status, 403, "{}", body_str(&r));
}

#[test]
fn healthz_reports_version_and_schema() {
    let t = TestApp::new();
    let r = t.req(Method::Get, "/healthz", None, None);
    assert_eq!(r.status, 200);
    let v = json_of(&r);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["schema_version"], crate::common::migrations().len());
}
