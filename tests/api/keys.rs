//! API keys through the real router over SQLite: shown once and stored hashed, confined to their
//! tenant, narrowed by the grant rule, attributed in the audit log, revoked and expired at once.

use crate::common::*;
use gatehouse::platform::http::{Method, Response};
use gatehouse::seed::{ACME, GLOBEX};
use serde_json::{json, Value};

fn keys(t: &TestApp, token: &str, client: &str, m: Method, body: Option<Value>) -> Response {
    t.req(m, &format!("/api/clients/{client}/api-keys"), Some(token), body)
}

fn create(t: &TestApp, token: &str, body: Value) -> Value {
    let r = keys(t, token, ACME, Method::Post, Some(body));
    assert_eq!(r.status, 201, "{}", body_str(&r));
    json_of(&r)
}

#[test]
fn a_key_acts_in_its_own_tenant_with_its_own_permissions_and_is_audited_as_itself() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let k = create(&t, &admin, json!({"name": "Zapier", "permissions": ["contacts:read", "contacts:write"]}));
    let key = k["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("gh_live_") && key.len() == "gh_live_".len() + 52, "{key}");
    assert!(key.starts_with(k["prefix"].as_str().unwrap()));
    // Stored only as its hash; lists show the prefix, never the key.
    let stored = t.p.sql("SELECT key_hash FROM api_keys");
    assert_ne!(stored[0]["key_hash"].as_str().unwrap(), key);
    let listed = body_str(&keys(&t, &admin, ACME, Method::Get, None));
    assert!(!listed.contains(&key) && listed.contains("Zapier"), "{listed}");

    let r = t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&key), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let r = t.req(Method::Post, &format!("/api/clients/{ACME}/contacts"), Some(&key), Some(json!({"name": "Via key"})));
    assert_eq!(r.status, 201);
    let contact = json_of(&r)["id"].as_str().unwrap().to_string();
    let r = t.req(Method::Delete, &format!("/api/clients/{ACME}/contacts/{contact}"), Some(&key), None);
    assert_eq!(r.status, 204);
    let audit = t.p.sql(&format!("SELECT actor_user_id, actor_role FROM audit_log WHERE target_id = '{contact}'"));
    assert_eq!(audit[0]["actor_user_id"], k["id"]);
    assert_eq!(audit[0]["actor_role"], "api_key");

    // Nothing beyond its permissions, nothing outside its tenant, only on the API host.
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/deals"), Some(&key), None).status, 403);
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{GLOBEX}/contacts"), Some(&key), None).status, 404);
    assert_eq!(t.req(Method::Get, "/api/clients", Some(&key), None).status, 403);
    let portal = t.req_on("acme.portal.test", Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&key), None);
    assert_eq!(portal.status, 403);
    // A key cannot make keys.
    let all = create(&t, &admin, json!({"name": "Everything"}));
    let strong = all["key"].as_str().unwrap();
    let r = keys(&t, strong, ACME, Method::Post, Some(json!({"name": "Child"})));
    assert_eq!(r.status, 403, "{}", body_str(&r));

    // Revoked: refused at once.
    let kid = k["id"].as_str().unwrap();
    assert_eq!(t.req(Method::Delete, &format!("/api/clients/{ACME}/api-keys/{kid}"), Some(&admin), None).status, 204);
    let r = t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&key), None);
    assert_eq!((r.status, error_code(&r).as_str()), (401, "invalid_token"));
    assert_eq!(t.req(Method::Delete, &format!("/api/clients/{ACME}/api-keys/{kid}"), Some(&admin), None).status, 404);
    // A forged key of the right shape, and garbage, are refused alike.
    let forged = format!("gh_live_{}", "a".repeat(52));
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&forged), None).status, 401);
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some("gh_live_x"), None).status, 401);
}

#[test]
fn a_key_never_holds_more_than_its_creator_and_expires_and_follows_its_tenant() {
    let t = TestApp::new();
    // Acme's admin, narrowed to a few permissions.
    t.p.exec(
        "UPDATE client_users SET permissions = '[\"clients:read\",\"contacts:read\",\"api_keys:manage\"]' \
         WHERE user_id = (SELECT id FROM users WHERE email = 'admin@acme.test')",
    );
    let admin = t.login("admin@acme.test");
    let r = keys(&t, &admin, ACME, Method::Post, Some(json!({"name": "Too much", "permissions": ["contacts:write"]})));
    assert_eq!((r.status, error_code(&r).as_str()), (403, "permissions_exceed_own"), "{}", body_str(&r));
    let r = keys(&t, &admin, ACME, Method::Post, Some(json!({"name": "Unknown", "permissions": ["platform:admin"]})));
    assert_eq!(r.status, 422);
    let k = create(&t, &admin, json!({"name": "Default"}));
    let mut held: Vec<&str> = k["permissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    held.sort();
    assert_eq!(held, ["api_keys:manage", "clients:read", "contacts:read"]);
    // Without api_keys:manage, no keys at all.
    let user = t.login("user@acme.test");
    assert_eq!(keys(&t, &user, ACME, Method::Get, None).status, 403);
    assert_eq!(keys(&t, &user, ACME, Method::Post, Some(json!({"name": "x"}))).status, 403);

    // Expiry.
    let soon = create(&t, &admin, json!({"name": "Soon", "expires_at": "2027-01-15T09:00:00Z"}));
    let soon_key = soon["key"].as_str().unwrap().to_string();
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&soon_key), None).status, 200);
    t.p.now_ms.set(t.p.now_ms.get() + 2 * 86_400_000);
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&soon_key), None).status, 401);
    let past = keys(
        &t,
        &t.login("admin@acme.test"),
        ACME,
        Method::Post,
        Some(json!({"name": "Past", "expires_at": "2020-01-01T00:00:00Z"})),
    );
    assert_eq!(past.status, 422);

    // A suspended client's keys stop working.
    let key = k["key"].as_str().unwrap().to_string();
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&key), None).status, 200);
    t.p.exec(&format!("UPDATE clients SET status = 'suspended' WHERE id = '{ACME}'"));
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&key), None).status, 401);
}

#[test]
fn agencies_have_keys_too_and_theirs_reach_their_clients_only() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let me = json_of(&t.req(Method::Get, "/api/me", Some(&agency), None));
    let agency_id = me["context"]["tenant"].as_str().unwrap().to_string();
    let r = t.req(
        Method::Post,
        &format!("/api/agencies/{agency_id}/api-keys"),
        Some(&agency),
        Some(json!({"name": "Agency sync"})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let key = json_of(&r)["key"].as_str().unwrap().to_string();
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&key), None).status, 200);
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{GLOBEX}/contacts"), Some(&key), None).status, 200);
    // Another agency's keys are not listed or revocable from here.
    let globex = t.login("admin@globex.test");
    assert_eq!(t.req(Method::Get, &format!("/api/agencies/{agency_id}/api-keys"), Some(&globex), None).status, 404);
    assert_eq!(keys(&t, &globex, ACME, Method::Get, None).status, 404);
}

#[test]
fn a_key_in_steady_use_costs_its_lookup_and_one_write_a_minute() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let key = create(&t, &admin, json!({"name": "Busy", "permissions": ["contacts:read"]}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    let read = || t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&key), None);
    assert_eq!(read().status, 200);
    let first = t.p.sql("SELECT last_used_at FROM api_keys")[0]["last_used_at"].as_i64().unwrap();
    let before = t.p.queries.get();
    assert_eq!(read().status, 200);
    // The key lookup, the client and the page: no write within the minute.
    assert_eq!(t.p.queries.get() - before, 3);
    t.p.now_ms.set(t.p.now_ms.get() + 61_000);
    assert_eq!(read().status, 200);
    let later = t.p.sql("SELECT last_used_at FROM api_keys")[0]["last_used_at"].as_i64().unwrap();
    assert_eq!(later - first, 61_000);
}
