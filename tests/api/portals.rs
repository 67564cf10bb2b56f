//! Agency portals: `{agency-slug}.{PORTAL_BASE_DOMAIN}` and an agency's verified portal domains
//! resolve to the agency; their sessions are bound to the host and confined to the agency and
//! its clients; slugs and portal hostnames each name one tenant.

use crate::common::*;
use gatehouse::platform::http::Method;
use gatehouse::seed::{ACME, AGENCY};
use serde_json::{json, Value};

const NORTHWIND: &str = "northwind.portal.test";

fn login_on(t: &TestApp, host: &str, email: &str, tenant: Option<&str>) -> gatehouse::platform::http::Response {
    let mut body = json!({"email": email, "password": t.password(email)});
    if let Some(tenant) = tenant {
        body["tenant"] = json!(tenant);
    }
    t.req_on(host, Method::Post, "/api/auth/login", None, Some(body))
}

fn token_on(t: &TestApp, host: &str, email: &str) -> String {
    let r = login_on(t, host, email, None);
    assert_eq!(r.status, 200, "login {email} on {host}: {}", body_str(&r));
    json_of(&r)["access_token"].as_str().unwrap().to_string()
}

/// A second agency with one client, made by the platform admin.
fn other_agency(t: &TestApp) -> (String, String) {
    let platform = t.login("admin@gatehouse.test");
    let r = t.req(Method::Post, "/api/agencies", Some(&platform), Some(json!({"name": "Contoso", "slug": "contoso"})));
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let agency = json_of(&r)["id"].as_str().unwrap().to_string();
    let r = t.req(
        Method::Post,
        &format!("/api/clients?agency_id={agency}"),
        Some(&platform),
        Some(json!({"name": "Contoso Client", "slug": "contoso-client"})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    (agency, json_of(&r)["id"].as_str().unwrap().to_string())
}

#[test]
fn an_agencys_slug_host_serves_its_console_and_sessions_bound_to_it() {
    let t = TestApp::new();
    let page = t.req_on(NORTHWIND, Method::Get, "/console", None, None);
    assert_eq!(page.status, 200);
    let html = body_str(&page);
    assert!(
        html.contains(r#"data-site="agency""#) && html.contains(&format!(r#"data-tenant-id="{AGENCY}""#)),
        "{html}"
    );
    assert!(html.contains("<title>Northwind Digital console</title>"));
    let root = t.req_on(NORTHWIND, Method::Get, "/", None, None);
    assert_eq!((root.status, root.header("location")), (302, Some("/console")));
    assert_eq!(t.req_on(NORTHWIND, Method::Get, "/invite", None, None).status, 200);
    assert_eq!(t.req_on(NORTHWIND, Method::Get, "/dashboard", None, None).status, 404);

    let tok = token_on(&t, NORTHWIND, "agency.admin@northwind.test");
    let me = json_of(&t.req_on(NORTHWIND, Method::Get, "/api/me", Some(&tok), None));
    assert_eq!(me["context"]["tenant"], AGENCY);
    assert_eq!(t.req_on(NORTHWIND, Method::Get, &format!("/api/agencies/{AGENCY}"), Some(&tok), None).status, 200);
    let contacts = t.req_on(NORTHWIND, Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&tok), None);
    assert_eq!(contacts.status, 200, "the agency's clients are served on its portal");

    // The token is bound to this host: not the API host, not a client's portal.
    let elsewhere = t.req(Method::Get, &format!("/api/agencies/{AGENCY}"), Some(&tok), None);
    assert_eq!((elsewhere.status, error_code(&elsewhere).as_str()), (403, "tenant_mismatch"));
    let acme = t.req_on("acme.portal.test", Method::Get, &format!("/api/clients/{ACME}"), Some(&tok), None);
    assert_eq!(acme.status, 403);
    // An API-host token works here when its tenant agrees with the host (as on a client's
    // portal), and not when it names another tenant.
    let api_tok = t.login("agency.admin@northwind.test");
    let r = t.req_on(NORTHWIND, Method::Get, &format!("/api/agencies/{AGENCY}"), Some(&api_tok), None);
    assert_eq!(r.status, 200);
    let acme_tok = t.login("admin@acme.test");
    let r = t.req_on(NORTHWIND, Method::Get, &format!("/api/clients/{ACME}"), Some(&acme_tok), None);
    assert_eq!(r.status, 200, "a client of this agency agrees with it");
    let r = t.req_on(NORTHWIND, Method::Get, &format!("/api/agencies/{AGENCY}"), Some(&acme_tok), None);
    assert_eq!(r.status, 404, "and reaches no more than it does anywhere");
    let platform_tok = t.login("admin@gatehouse.test");
    let r = t.req_on(NORTHWIND, Method::Get, &format!("/api/agencies/{AGENCY}"), Some(&platform_tok), None);
    assert_eq!((r.status, error_code(&r).as_str()), (403, "tenant_mismatch"), "a platform-wide token");
}

#[test]
fn an_agency_portal_serves_nothing_beyond_its_agency() {
    let t = TestApp::new();
    let (contoso, contoso_client) = other_agency(&t);
    // Platform staff signed in here act as staff of this agency only.
    let staff = token_on(&t, NORTHWIND, "admin@gatehouse.test");
    let me = json_of(&t.req_on(NORTHWIND, Method::Get, "/api/me", Some(&staff), None));
    assert_eq!(me["context"]["scope"], json!({"kind": "agency", "agency_id": AGENCY}));
    let perms: Vec<&str> = me["context"]["permissions"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(!perms.contains(&"platform:admin") && !perms.contains(&"agencies:create"), "{perms:?}");
    for path in [
        "/api/admin/tenants".to_string(),
        "/api/agencies".to_string(),
        format!("/api/agencies/{contoso}"),
        format!("/api/clients/{contoso_client}"),
        format!("/api/clients/{contoso_client}/contacts"),
    ] {
        let r = t.req_on(NORTHWIND, Method::Get, &path, Some(&staff), None);
        assert_eq!(r.status, 404, "{path}: {}", body_str(&r));
    }
    let made =
        t.req_on(NORTHWIND, Method::Post, "/api/agencies", Some(&staff), Some(json!({"name": "X", "slug": "xx"})));
    assert_eq!(made.status, 404);
    // Switching to another agency's client, or to the platform, is refused here.
    for tenant in [contoso_client.as_str(), contoso.as_str(), "platform"] {
        let r = t.req_on(NORTHWIND, Method::Post, "/api/auth/switch", Some(&staff), Some(json!({"tenant": tenant})));
        assert_eq!(r.status, 403, "{tenant}: {}", body_str(&r));
    }
    // Switching into one of its own clients works, and stays on this host.
    let r = t.req_on(NORTHWIND, Method::Post, "/api/auth/switch", Some(&staff), Some(json!({"tenant": ACME})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let in_acme = json_of(&r)["access_token"].as_str().unwrap().to_string();
    assert_eq!(t.req_on(NORTHWIND, Method::Get, &format!("/api/clients/{ACME}"), Some(&in_acme), None).status, 200);
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}"), Some(&in_acme), None).status, 403);
    // Someone with no place in the agency is refused at login; another agency's host is its own.
    let r = login_on(&t, NORTHWIND, "admin@acme.test", None);
    assert_eq!((r.status, error_code(&r).as_str()), (403, "no_access"));
    let r = login_on(&t, "contoso.portal.test", "agency.admin@northwind.test", None);
    assert_eq!(r.status, 403, "{}", body_str(&r));
    // A client member may start in their own client on the agency's portal when they ask for it.
    assert_eq!(login_on(&t, NORTHWIND, "admin@acme.test", Some(ACME)).status, 200);
    // A suspended agency's portal is unavailable.
    t.p.exec(&format!("UPDATE agencies SET status = 'suspended' WHERE id = '{contoso}'"));
    let r = t.req_on("contoso.portal.test", Method::Get, "/console", None, None);
    assert!(r.status == 403 && body_str(&r).contains("currently unavailable"), "{}", body_str(&r));
    let r = t.req_on("contoso.portal.test", Method::Get, "/api/me", None, None);
    assert_eq!((r.status, error_code(&r).as_str()), (403, "tenant_suspended"));
}

#[test]
fn a_slug_names_one_tenant_across_agencies_and_clients() {
    let t = TestApp::new();
    let platform = t.login("admin@gatehouse.test");
    let agencies = t.p.sql("SELECT count(*) AS n FROM agencies")[0]["n"].clone();
    let r = t.req(Method::Post, "/api/agencies", Some(&platform), Some(json!({"name": "Acme Co", "slug": "acme"})));
    assert_eq!((r.status, error_code(&r).as_str()), (409, "slug_taken"), "a client's slug");
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM agencies")[0]["n"], agencies, "nothing written");
    let admin = t.login("agency.admin@northwind.test");
    let r = t.req(Method::Post, "/api/clients", Some(&admin), Some(json!({"name": "North", "slug": "northwind"})));
    assert_eq!((r.status, error_code(&r).as_str()), (409, "slug_taken"), "an agency's slug");
    assert!(t.p.sql("SELECT id FROM clients WHERE slug = 'northwind'").is_empty());
    let audit = t.p.sql("SELECT count(*) AS n FROM audit_log WHERE action IN ('agency.created', 'client.created')");
    assert_eq!(audit[0]["n"], 0, "no audit row for a change that did not happen");
}

fn claim(t: &TestApp, tok: &str, agency: &str, domain: &str) -> gatehouse::platform::http::Response {
    t.req(Method::Post, &format!("/api/agencies/{agency}/domains"), Some(tok), Some(json!({"domain": domain})))
}

fn verify(t: &TestApp, tok: &str, agency: &str, id: &str) -> gatehouse::platform::http::Response {
    t.req(Method::Post, &format!("/api/agencies/{agency}/domains/{id}/verify"), Some(tok), None)
}

#[test]
fn an_agency_proves_a_portal_domain_and_is_served_on_it_until_it_lapses() {
    let t = TestApp::new();
    let tok = t.login("agency.admin@northwind.test");
    let host = "clients.northwind-digital.example";
    let r = claim(&t, &tok, AGENCY, host);
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let d = json_of(&r);
    let id = d["id"].as_str().unwrap().to_string();
    assert_eq!((d["status"].as_str(), d["purpose"].as_str()), (Some("pending"), Some("portal")));
    let (name, value) = (d["verification"]["name"].as_str().unwrap(), d["verification"]["value"].as_str().unwrap());
    assert_eq!(name, format!("_gatehouse-challenge.{host}"));
    assert_eq!(t.req_on(host, Method::Get, "/console", None, None).status, 404, "not before it is proved");

    let v = json_of(&verify(&t, &tok, AGENCY, &id));
    assert_eq!(v["status"], "failed");
    assert!(v["status_reason"].as_str().unwrap().contains("no TXT record"), "{v}");
    t.p.dns.borrow_mut().insert(name.to_string(), vec![value.to_string()]);
    assert_eq!(json_of(&verify(&t, &tok, AGENCY, &id))["status"], "verified");
    let page = t.req_on(host, Method::Get, "/console", None, None);
    assert!(body_str(&page).contains(r#"data-site="agency""#));
    let portal_tok = token_on(&t, host, "agency.admin@northwind.test");
    assert_eq!(t.req_on(host, Method::Get, "/api/me", Some(&portal_tok), None).status, 200);
    assert_eq!(t.req_on(NORTHWIND, Method::Get, "/api/me", Some(&portal_tok), None).status, 403, "bound to its host");

    // A client cannot take the hostname as its portal, nor another agency claim it.
    let acme = t.login("admin@acme.test");
    let r = t.req(
        Method::Post,
        &format!("/api/clients/{ACME}/domains"),
        Some(&acme),
        Some(json!({"domain": host, "purpose": "portal"})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let theirs = json_of(&r);
    t.p.dns.borrow_mut().insert(
        name.to_string(),
        vec![value.to_string(), theirs["verification"]["value"].as_str().unwrap().to_string()],
    );
    let r = t.req(
        Method::Post,
        &format!("/api/clients/{ACME}/domains/{}/verify", theirs["id"].as_str().unwrap()),
        Some(&acme),
        None,
    );
    assert_eq!((r.status, error_code(&r).as_str()), (409, "domain_taken"), "{}", body_str(&r));
    let (contoso, _) = other_agency(&t);
    let platform = t.login("admin@gatehouse.test");
    let r = claim(&t, &platform, &contoso, host);
    assert_eq!((r.status, error_code(&r).as_str()), (409, "domain_taken"));
    assert!(
        body_str(&t.req_on(host, Method::Get, "/console", None, None)).contains(AGENCY),
        "still the first agency's"
    );

    // The scheduled re-check lapses it once the record is gone, and the host stops serving.
    t.p.dns.borrow_mut().clear();
    for expected in ["verified", "verified", "lapsed"] {
        t.p.now_ms.set(t.p.now_ms.get() + 1000);
        let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
        let report = pollster::block_on(app.scheduled("recheck-now")).unwrap();
        assert_eq!(report["agency_domains"]["checked"], 1, "{report}");
        assert_eq!(t.p.sql(&format!("SELECT status FROM agency_domains WHERE id = '{id}'"))[0]["status"], expected);
    }
    assert_eq!(t.req_on(host, Method::Get, "/console", None, None).status, 404);
    let lapsed = t.p.sql(&format!(
        "SELECT count(*) AS n FROM audit_log WHERE action = 'agency_domain.lapsed' AND tenant_id = '{AGENCY}'"
    ));
    assert_eq!(lapsed[0]["n"], 1);
    // Delete: gone, audited.
    let r = t.req(Method::Delete, &format!("/api/agencies/{AGENCY}/domains/{id}"), Some(&tok), None);
    assert_eq!(r.status, 204);
    assert!(t.p.sql("SELECT id FROM agency_domains").is_empty());
    let audit = t
        .p
        .sql(&format!("SELECT action FROM audit_log WHERE target_id = '{id}' AND tenant_id = '{AGENCY}' ORDER BY seq"));
    let actions: Vec<&str> = audit.iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "agency_domain.created",
            "agency_domain.verification_failed",
            "agency_domain.verified",
            "agency_domain.lapsed",
            "agency_domain.deleted"
        ]
    );
}

#[test]
fn an_agency_portal_domain_refuses_bad_names_strangers_and_excess() {
    let t = TestApp::new();
    let tok = t.login("agency.admin@northwind.test");
    for (domain, code) in [
        ("*.northwind-digital.example", "invalid_wildcard"),
        ("co.uk", "public_suffix_not_allowed"),
        ("portal.gmail.com", "consumer_domain"),
        ("acme.portal.test", "reserved_host"),
        ("api.test", "reserved_host"),
        ("not a host", "invalid_domain"),
    ] {
        let r = claim(&t, &tok, AGENCY, domain);
        assert_eq!(r.status, 422, "{domain}: {}", body_str(&r));
        assert_eq!(error_code(&r), code, "{domain}");
    }
    assert!(t.p.sql("SELECT id FROM agency_domains").is_empty());
    // An agency user reads but may not claim; a client's admin and another agency's see nothing.
    let user = t.login("agency.user@northwind.test");
    assert_eq!(claim(&t, &user, AGENCY, "a.northwind-digital.example").status, 403);
    assert_eq!(t.req(Method::Get, &format!("/api/agencies/{AGENCY}/domains"), Some(&user), None).status, 200);
    let acme = t.login("admin@acme.test");
    assert_eq!(claim(&t, &acme, AGENCY, "a.northwind-digital.example").status, 404);
    let (contoso, _) = other_agency(&t);
    let r = claim(&t, &tok, &contoso, "a.northwind-digital.example");
    assert_eq!(r.status, 404);
    let mine = json_of(&claim(&t, &tok, AGENCY, "a.northwind-digital.example"));
    let foreign = t.login("admin@gatehouse.test");
    let id = mine["id"].as_str().unwrap();
    let r = t.req(Method::Delete, &format!("/api/agencies/{contoso}/domains/{id}"), Some(&foreign), None);
    assert_eq!(r.status, 404, "a foreign id under another agency is unknown there");
    // At most five claims, refused inside the statement; the same name twice is a conflict.
    assert_eq!(claim(&t, &tok, AGENCY, "a.northwind-digital.example").status, 409);
    for n in 1..5 {
        assert_eq!(claim(&t, &tok, AGENCY, &format!("p{n}.northwind-digital.example")).status, 201);
    }
    let r = claim(&t, &tok, AGENCY, "p9.northwind-digital.example");
    assert_eq!((r.status, error_code(&r).as_str()), (429, "quota_exceeded"));
    let e = &json_of(&r)["error"];
    assert_eq!(
        (e["metric"].clone(), e["limit"].clone()),
        (json!("portal_domains"), json!(5)),
        "the shape client quotas use"
    );
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM agency_domains")[0]["n"], 5);
}

#[test]
fn an_agency_invitation_is_accepted_on_the_agencys_portal_only() {
    let t = TestApp::new();
    let tok = t.login("agency.admin@northwind.test");
    let r = t.req(
        Method::Post,
        "/api/users",
        Some(&tok),
        Some(json!({"email": "new.hire@northwind.test", "role": "agency_user", "tenant": AGENCY})),
    );
    assert_eq!(r.status, 202, "{}", body_str(&r));
    let mail = t.p.sql("SELECT body FROM outbox WHERE to_email = 'new.hire@northwind.test'");
    let body = mail[0]["body"].as_str().unwrap();
    let at = body.find("https://northwind.portal.test/invite#token=inv_").unwrap_or_else(|| panic!("{body}"));
    let token = &body[at + body[at..].find("inv_").unwrap()..].lines().next().unwrap().to_string();
    let accept = |host: &str| {
        t.req_on(
            host,
            Method::Post,
            "/api/invitations/accept",
            None,
            Some(json!({"token": token, "name": "New Hire", "password": "a-long-enough-password"})),
        )
    };
    let r = accept("acme.portal.test");
    assert_eq!((r.status, error_code(&r).as_str()), (409, "invitation_invalid"), "not on a client's portal");
    let r = accept(NORTHWIND);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let r = t.req_on(
        NORTHWIND,
        Method::Post,
        "/api/auth/login",
        None,
        Some(json!({"email": "new.hire@northwind.test", "password": "a-long-enough-password"})),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
}
