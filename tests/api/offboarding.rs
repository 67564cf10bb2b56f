//! Deleting a client: suspended at once, restorable for the grace period, then purged: no row the
//! client owned and no object under its R2 prefix is left, and no other tenant loses anything.

use crate::common::*;
use gatehouse::platform::http::Method;
use gatehouse::platform::schema::{AGENCY_OWNED, PURGE_ORDER, TENANT_OWNED};
use gatehouse::seed::{ACME, AGENCY, GLOBEX};
use serde_json::json;

const DAY_MS: i64 = 86_400_000;

/// Rows naming `id` in any tenant-like column of any table: what a purge must leave at zero.
fn rows_naming(t: &TestApp, id: &str) -> Vec<(String, String, i64)> {
    let tables = t.p.sql("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
    let mut found = Vec::new();
    for table in tables.iter().map(|r| r["name"].as_str().unwrap().to_string()) {
        for col in t.p.sql(&format!("PRAGMA table_info({table})")) {
            let col = col["name"].as_str().unwrap().to_string();
            // The client's own id column, and every column that names a tenant.
            let tenantish = ["client_id", "tenant_id", "owner_id", "tenant"].contains(&col.as_str())
                || (table == "clients" && col == "id");
            if !tenantish {
                continue;
            }
            let n =
                t.p.sql(&format!("SELECT count(*) AS n FROM {table} WHERE {col} = '{id}'"))[0]["n"].as_i64().unwrap();
            if n > 0 {
                found.push((table.clone(), col, n));
            }
        }
    }
    found
}

fn scheduled(t: &TestApp) -> serde_json::Value {
    let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
    pollster::block_on(app.scheduled("*/15 * * * *")).unwrap()
}

#[test]
fn the_purge_order_covers_every_client_table_and_puts_children_before_parents() {
    let mut want: Vec<&str> = TENANT_OWNED.iter().map(|(t, _)| *t).filter(|t| !AGENCY_OWNED.contains(t)).collect();
    let mut have = PURGE_ORDER.to_vec();
    want.sort();
    have.sort();
    assert_eq!(have, want, "a table added to TENANT_OWNED must join PURGE_ORDER");
    let t = TestApp::new();
    for (i, table) in PURGE_ORDER.iter().enumerate() {
        for fk in t.p.sql(&format!("PRAGMA foreign_key_list({table})")) {
            let parent = fk["table"].as_str().unwrap();
            if let Some(j) = PURGE_ORDER.iter().position(|p| *p == parent) {
                assert!(j > i, "{table} references {parent}, which must be purged after it");
            }
        }
    }
}

#[test]
fn a_deleted_client_is_suspended_at_once_and_restored_as_it_was() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let admin = t.login("admin@acme.test");
    let contacts = t.p.sql(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}'"))[0]["n"].clone();
    // The client's own admin cannot delete it; the agency can.
    let r = t.req(Method::Delete, &format!("/api/clients/{ACME}"), Some(&admin), None);
    assert_eq!(r.status, 403);
    let r = t.req(Method::Delete, &format!("/api/clients/{ACME}"), Some(&agency), None);
    assert_eq!(r.status, 202, "{}", body_str(&r));
    assert_eq!(json_of(&r)["restorable_until"], t.p.now_ms.get() + 30 * DAY_MS);
    // Suspended at once: its members, its widget and its portal stop.
    let r = t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&admin), None);
    assert_eq!((r.status, error_code(&r).as_str()), (401, "invalid_token"), "its sessions no longer have access");
    assert_eq!(t.req_on("acme.portal.test", Method::Get, "/", None, None).status, 403);
    let shown = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}"), Some(&agency), None));
    assert_eq!(shown["effective_status"], "deleted");
    assert_eq!(
        error_code(&t.req(Method::Delete, &format!("/api/clients/{ACME}"), Some(&agency), None)),
        "client_deleted"
    );
    // Nothing wakes it but a restore: a status set by PUT would leave its purge scheduled.
    let r = t.req(Method::Put, &format!("/api/clients/{ACME}"), Some(&agency), Some(json!({"status": "active"})));
    assert_eq!((r.status, error_code(&r).as_str()), (409, "client_deleted"));
    // Restored within the grace period, as it was.
    t.p.now_ms.set(t.p.now_ms.get() + 29 * DAY_MS);
    let agency = t.login("agency.admin@northwind.test");
    let r = t.req(Method::Post, &format!("/api/clients/{ACME}/restore"), Some(&agency), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(json_of(&r)["effective_status"], "active");
    let admin = t.login("admin@acme.test");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&admin), None).status, 200);
    assert_eq!(t.p.sql(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}'"))[0]["n"], contacts);
    let actions: Vec<String> =
        t.p.sql(&format!(
            "SELECT action FROM audit_log WHERE tenant_id = '{AGENCY}' AND target_id = '{ACME}' ORDER BY seq"
        ))
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["client.deleted", "client.restored"]);
    // Nothing to restore now; a purge run leaves an active client alone.
    assert_eq!(
        error_code(&t.req(Method::Post, &format!("/api/clients/{ACME}/restore"), Some(&agency), None)),
        "client_not_deleted"
    );
    assert_eq!(scheduled(&t)["purge"], json!([]));
}

#[test]
fn after_the_grace_period_the_purge_removes_every_row_and_object_of_the_client_and_nothing_else() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let admin = t.login("admin@acme.test");
    // Data in more corners than the seed fills: a file, a logo, a key, an invitation, settings,
    // a webhook endpoint, and a login challenge naming the client.
    assert_eq!(upload(&t, &admin, ACME, "a.txt", "text/plain", b"hello").status, 201);
    let r = t.call(
        gatehouse::platform::http::Request::new(Method::Post, &format!("/api/clients/{ACME}/branding/logo"))
            .with_header("host", API)
            .with_header("authorization", &format!("Bearer {admin}"))
            .with_header("content-type", "image/png")
            .with_body(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec()),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    for (method, path, body) in [
        (
            Method::Post,
            format!("/api/clients/{ACME}/api-keys"),
            json!({"name": "zap", "permissions": ["contacts:read"]}),
        ),
        (Method::Post, "/api/users".to_string(), json!({"email": "invitee@example.com", "tenant": ACME})),
        (Method::Put, format!("/api/clients/{ACME}/settings"), json!({"openai": {"api_key": "sk-test-0123456789"}})),
    ] {
        let r = t.req(method, &path, Some(&admin), Some(body));
        assert!(r.status < 300, "{path}: {}", body_str(&r));
    }
    t.p.exec(&format!(
        "INSERT INTO mfa_challenges (id, token_hash, user_id, tenant, site, expires_at, created_at) \
         VALUES ('mfc_x', 'h', 'usr_000000000000000000000004', '{ACME}', NULL, 0, 0)"
    ));
    let globex_objects =
        |t: &TestApp| t.p.blobs.borrow().keys().filter(|k| k.starts_with(&format!("tenants/{GLOBEX}/"))).count();
    assert_eq!(upload(&t, &t.login("admin@globex.test"), GLOBEX, "g.txt", "text/plain", b"globex").status, 201);
    // The isolate's daily counters are written now, so the sibling's rows are all there to compare.
    scheduled(&t);
    let globex_before_objects = globex_objects(&t);
    let mut globex_before = rows_naming(&t, GLOBEX);
    globex_before.sort();
    assert!(rows_naming(&t, ACME).len() > 15, "acme has rows in many tables: {:?}", rows_naming(&t, ACME));
    assert!(t.p.blobs.borrow().keys().any(|k| k.starts_with(&format!("tenants/{ACME}/"))));

    assert_eq!(t.req(Method::Delete, &format!("/api/clients/{ACME}"), Some(&agency), None).status, 202);
    // Within the grace period the purge does nothing.
    assert_eq!(scheduled(&t)["purge"], json!([]));
    t.p.now_ms.set(t.p.now_ms.get() + 30 * DAY_MS);
    let agency = t.login("agency.admin@northwind.test");
    let r = t.req(Method::Post, &format!("/api/clients/{ACME}/restore"), Some(&agency), None);
    assert_eq!((r.status, error_code(&r).as_str()), (409, "restore_window_closed"));
    let mut runs = 0;
    loop {
        runs += 1;
        let report = scheduled(&t);
        let purge = report["purge"].as_array().unwrap().clone();
        if purge.is_empty() {
            break;
        }
        assert!(runs < 10, "the purge ends: {report}");
    }
    assert_eq!(rows_naming(&t, ACME), Vec::<(String, String, i64)>::new(), "no table holds a row of the client");
    assert!(
        !t.p.blobs.borrow().keys().any(|k| k.starts_with(&format!("tenants/{ACME}/"))),
        "no object under its prefix"
    );
    let mut globex_after = rows_naming(&t, GLOBEX);
    globex_after.sort();
    assert_eq!(globex_after, globex_before, "the sibling client keeps every row");
    assert_eq!(globex_objects(&t), globex_before_objects);
    let purged = t.p.sql(&format!("SELECT action FROM audit_log WHERE tenant_id = '{AGENCY}' AND target_id = '{ACME}' AND action = 'client.purged'"));
    assert_eq!(purged.len(), 1, "the agency's audit records the purge");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}"), Some(&agency), None).status, 404);
    // The agency's audit chain still holds.
    let r = t.req(Method::Get, &format!("/api/agencies/{AGENCY}/audit/verify"), Some(&agency), None);
    assert_eq!(json_of(&r)["ok"], true, "{}", body_str(&r));
}
