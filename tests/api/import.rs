//! The legacy import: a CSV or JSON dump becomes a "default" client of an agency, every bad row
//! skipped with its reason, hostile text stored as text, existing accounts kept.

use crate::common::*;
use gatehouse::import::{build, Dump};
use gatehouse::platform::http::Method;
use gatehouse::seed::AGENCY;
use serde_json::json;

const CONTACTS: &str = "Name,Email,Phone,Notes\r\n\
Ada Lovelace,ADA@Example.com,+44 20 7946 0000,\"Met at the expo, wants a quote\"\r\n\
\"Robert'); DROP TABLE contacts;--\",bobby@example.com,,\r\n\
Zoë Ünïcode,zoe@example.com,,\"Line one\nline two\"\r\n\
Ada Again,ada@example.com,,\r\n\
Bad Email,not-an-email,,\r\n\
,,+1 555 0100,\r\n\
Only Name,,,\r\n";

const USERS: &str = r#"[
  {"email": "owner@legacy.test", "name": "Olive Owner", "role": "client_admin"},
  {"email": "admin@globex.test", "name": "Someone Else", "role": "client_viewer"},
  {"email": "boss@legacy.test", "role": "agency_admin"},
  {"name": "No Email"}
]"#;

#[test]
fn a_legacy_dump_becomes_a_default_client_with_bad_rows_skipped_and_accounts_kept() {
    let t = TestApp::new();
    let out = build(
        AGENCY,
        "Legacy Default",
        "legacy-default",
        Some(Dump { name: "contacts.csv", text: CONTACTS }),
        Some(Dump { name: "users.json", text: USERS }),
        t.p.now_ms.get(),
    )
    .unwrap();
    assert_eq!((out.contacts, out.users), (4, 2), "{:?}", out.skipped);
    let reasons: Vec<(usize, &str)> = out.skipped.iter().map(|(_, row, why)| (*row, why.as_str())).collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(!out.skipped.iter().any(|(file, row, _)| file == "contacts.csv" && *row == 3), "a note may run over lines");
    assert!(reasons.iter().any(|(row, why)| *row == 4 && why.contains("appears twice")), "{reasons:?}");
    assert!(reasons.iter().any(|(row, _)| *row == 5), "the bad email");
    assert!(reasons.iter().any(|(row, why)| *row == 6 && why.contains("name or an email")));
    assert!(reasons.iter().any(|(_, why)| why.contains("not a client role")));
    assert!(reasons.iter().any(|(_, why)| why.contains("needs an email")));
    for s in &out.sql {
        t.p.exec(s);
    }
    let id = out.client_id;
    let agency = t.login("agency.admin@northwind.test");
    let contacts = json_of(&t.req(Method::Get, &format!("/api/clients/{id}/contacts?limit=100"), Some(&agency), None));
    let names: Vec<&str> = contacts["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 4);
    assert!(names.contains(&"Robert'); DROP TABLE contacts;--"), "stored as text: {names:?}");
    assert!(names.contains(&"Zoë Ünïcode"));
    let ada = contacts["items"].as_array().unwrap().iter().find(|c| c["name"] == "Ada Lovelace").unwrap().clone();
    assert_eq!((ada["email"].as_str(), ada["source"].as_str()), (Some("ada@example.com"), Some("import")));
    assert_eq!(ada["message"], "Met at the expo, wants a quote");
    // The imported owner has no password until a reset; the existing account keeps its own.
    let login = |email: &str, pw: &str| {
        t.req(Method::Post, "/api/auth/login", None, Some(json!({"email": email, "password": pw}))).status
    };
    assert_eq!(login("owner@legacy.test", "!"), 401);
    assert_eq!(
        t.req(Method::Post, "/api/auth/password-reset", None, Some(json!({"email": "owner@legacy.test"}))).status,
        202
    );
    let mail = t.p.sql("SELECT body FROM outbox WHERE to_email = 'owner@legacy.test'");
    let body = mail[0]["body"].as_str().unwrap();
    let at = body.find("pwr_").unwrap();
    let r = t.req(
        Method::Post,
        "/api/auth/password-reset/confirm",
        None,
        Some(json!({"token": &body[at..at + 56], "password": "a-long-legacy-password"})),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let r = t.req(
        Method::Post,
        "/api/auth/login",
        None,
        Some(json!({"email": "owner@legacy.test", "password": "a-long-legacy-password", "tenant": id})),
    );
    assert_eq!(json_of(&r)["context"]["role"], "client_admin", "{}", body_str(&r));
    assert_eq!(login("admin@globex.test", &t.password("admin@globex.test")), 200);
    let kept = t.p.sql("SELECT name FROM users WHERE email = 'admin@globex.test'");
    assert_eq!(kept[0]["name"], "Gus Globex", "an existing account is not renamed");
    // The agency's audit records it, and its chain still holds.
    let rows =
        t.p.sql(&format!("SELECT metadata FROM audit_log WHERE tenant_id = '{AGENCY}' AND action = 'client.imported'"));
    assert!(rows[0]["metadata"].as_str().unwrap().contains(r#""contacts":4"#));
    let r = t.req(Method::Get, &format!("/api/agencies/{AGENCY}/audit/verify"), Some(&agency), None);
    assert_eq!(json_of(&r)["ok"], true, "{}", body_str(&r));
}

#[test]
fn an_import_refuses_a_bad_agency_id_a_bad_slug_and_a_malformed_dump() {
    let csv = |text| Some(Dump { name: "c.csv", text });
    assert!(build("cli_x", "D", "default", csv("name\nA\n"), None, 0).is_err());
    assert!(build(AGENCY, "D", "Not A Slug", csv("name\nA\n"), None, 0).is_err());
    assert!(build(AGENCY, "D", "default", csv("name\n\"open"), None, 0).is_err());
    assert!(
        build(AGENCY, "D", "default", Some(Dump { name: "u.json", text: "{\"not\": \"an array\"}" }), None, 0).is_err()
    );
}
