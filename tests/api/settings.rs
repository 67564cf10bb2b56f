//! Encrypted settings through the real router: write-only secrets, masking, audit without
//! values, row swaps that must fail, and key rotation.

use crate::common::*;
use base64::Engine;
use gatehouse::access::roles::Permission;
use gatehouse::platform::http::{Method, Request};
use gatehouse::seed::{ACME, GLOBEX};
use serde_json::{json, Value};

const OPENAI_KEY: &str = "sk-proj-SEEDED-PLAINTEXT-7f3a9c1234";
const TWILIO_TOKEN: &str = "twilio-auth-token-PLAINTEXT-5678";

fn field<'a>(v: &'a Value, provider: &str, field: &str) -> &'a Value {
    let p = v["providers"].as_array().unwrap().iter().find(|p| p["provider"] == provider).unwrap();
    p["fields"].as_array().unwrap().iter().find(|f| f["field"] == field).unwrap()
}

fn put(t: &TestApp, token: &str, client: &str, body: Value) -> gatehouse::platform::http::Response {
    t.req(Method::Put, &format!("/api/clients/{client}/settings"), Some(token), Some(body))
}

#[test]
fn secrets_are_write_only_masked_and_never_logged_or_audited() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let r = put(
        &t,
        &admin,
        ACME,
        json!({"openai": {"api_key": OPENAI_KEY, "organization": "org-acme"}, "twilio": {"auth_token": TWILIO_TOKEN}}),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let get = t.req(Method::Get, &format!("/api/clients/{ACME}/settings"), Some(&admin), None);
    let v = json_of(&get);
    assert_eq!(field(&v, "openai", "api_key")["value"], "••••1234");
    assert_eq!(field(&v, "openai", "organization")["value"], "org-acme", "non-secret fields read back");
    assert_eq!(field(&v, "openai", "api_key")["key_id"], "k1");
    assert!(field(&v, "openai", "api_key")["updated_by"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(field(&v, "pipedrive", "api_token")["set"], false);
    // Scan every place a secret could leak.
    let audit = body_str(&t.req(Method::Get, &format!("/api/clients/{ACME}/audit?limit=100"), Some(&admin), None));
    let raw_rows = serde_json::to_string(&t.p.sql("SELECT * FROM audit_log")).unwrap();
    let stored = serde_json::to_string(&t.p.sql("SELECT * FROM client_settings")).unwrap();
    for (place, text) in [
        ("PUT response", body_str(&r)),
        ("GET response", body_str(&get)),
        ("audit API", audit.clone()),
        ("audit table", raw_rows),
        ("stored rows", stored),
        ("logs", t.p.logs.borrow().join("\n")),
    ] {
        for secret in [OPENAI_KEY, TWILIO_TOKEN, "PLAINTEXT"] {
            assert!(!text.contains(secret), "{secret} leaked into {place}");
        }
    }
    assert!(audit.contains("settings.updated") && audit.contains("api_key"), "the audit names the field changed");
}

#[test]
fn partial_updates_and_clears_touch_only_named_fields() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    assert_eq!(put(&t, &admin, ACME, json!({"openai": {"api_key": OPENAI_KEY, "organization": "org-1"}})).status, 200);
    assert_eq!(put(&t, &admin, ACME, json!({"openai": {"organization": null}})).status, 200);
    let v = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}/settings"), Some(&admin), None));
    assert_eq!(field(&v, "openai", "api_key")["set"], true);
    assert_eq!(field(&v, "openai", "organization")["set"], false);
}

#[test]
fn bad_settings_input_is_refused_and_writes_nothing() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    for (body, code) in [
        (json!({"stripe": {"key": "x"}}), "unknown_provider"),
        (json!({"openai": {"password": "x"}}), "unknown_field"),
        (json!({"openai": {"api_key": 42}}), "invalid_value"),
        (json!({"openai": {"api_key": ""}}), "invalid_value"),
        (json!({"openai": {"api_key": "x".repeat(5000)}}), "invalid_value"),
        (json!({"openai": {"api_key": "x".repeat(4097)}}), "invalid_value"),
        (json!({"openai": "sk-flat"}), "invalid_field"),
        // A valid field before an invalid one must not be half-written.
        (json!({"openai": {"api_key": "sk-should-not-land-0000"}, "zz_unknown": {"a": "b"}}), "unknown_provider"),
    ] {
        let r = put(&t, &admin, ACME, body.clone());
        assert_eq!(r.status, 422, "{body}: {}", body_str(&r));
        assert_eq!(error_code(&r), code, "{body}");
    }
    assert!(t.p.sql("SELECT * FROM client_settings").is_empty(), "nothing was written");
    // Exactly the limit is accepted.
    let at_limit = put(&t, &admin, ACME, json!({"openai": {"api_key": "x".repeat(4096)}}));
    assert_eq!(at_limit.status, 200, "{}", body_str(&at_limit));
}

#[test]
fn settings_need_their_permissions_and_foreign_clients_are_404() {
    let t = TestApp::new();
    let user = t.login("user@acme.test");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/settings"), Some(&user), None).status, 403);
    let globex = t.login("admin@globex.test");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/settings"), Some(&globex), None).status, 404);
    assert_eq!(put(&t, &globex, ACME, json!({"openai": {"api_key": "sk-x-000000000000"}})).status, 404);
}

#[test]
fn a_ciphertext_copied_to_another_row_never_decrypts_there() {
    let t = TestApp::new();
    let acme = t.login("admin@acme.test");
    let globex = t.login("admin@globex.test");
    assert_eq!(put(&t, &acme, ACME, json!({"openai": {"api_key": OPENAI_KEY}})).status, 200);
    assert_eq!(put(&t, &globex, GLOBEX, json!({"openai": {"api_key": "sk-globex-own-secret-99"}})).status, 200);
    // Client swap, provider swap and field swap, by raw SQL (the first copied by hand: the two
    // clients may be on different shards).
    let acme_ciphertext = t.p.sql(&format!(
        "SELECT ciphertext FROM client_settings WHERE client_id = '{ACME}' AND provider = 'openai' AND field = 'api_key'"
    ))[0]["ciphertext"]
        .as_str()
        .unwrap()
        .to_string();
    t.p.exec(&format!(
        "UPDATE client_settings SET ciphertext = '{acme_ciphertext}' WHERE client_id = '{GLOBEX}' AND provider = 'openai' AND field = 'api_key';
         INSERT INTO client_settings SELECT client_id, 'google_maps', 'api_key', ciphertext, key_id, updated_by, updated_at FROM client_settings WHERE client_id = '{ACME}' AND provider = 'openai';
         INSERT INTO client_settings SELECT client_id, 'openai', 'organization', ciphertext, key_id, updated_by, updated_at FROM client_settings WHERE client_id = '{ACME}' AND provider = 'openai' AND field = 'api_key';"
    ));
    let g = json_of(&t.req(Method::Get, &format!("/api/clients/{GLOBEX}/settings"), Some(&globex), None));
    assert_eq!(field(&g, "openai", "api_key")["error"], "undecryptable");
    assert!(field(&g, "openai", "api_key").get("value").is_none());
    let a = t.req(Method::Get, &format!("/api/clients/{ACME}/settings"), Some(&acme), None);
    assert_eq!(a.status, 200);
    let a = json_of(&a);
    assert_eq!(field(&a, "google_maps", "api_key")["error"], "undecryptable");
    assert_eq!(field(&a, "openai", "organization")["error"], "undecryptable");
    assert_eq!(field(&a, "openai", "api_key")["value"], "••••1234", "the original row still opens");
    assert!(!serde_json::to_string(&g).unwrap().contains("SEEDED"));
}

#[test]
fn rotation_rewraps_every_row_then_the_old_key_can_go() {
    let mut t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let globex = t.login("admin@globex.test");
    assert_eq!(
        put(
            &t,
            &admin,
            ACME,
            json!({"openai": {"api_key": OPENAI_KEY}, "twilio": {"auth_token": TWILIO_TOKEN, "account_sid": "AC123"}})
        )
        .status,
        200
    );
    assert_eq!(put(&t, &globex, GLOBEX, json!({"pipedrive": {"api_token": "pd-token-globex-abcdef"}})).status, 200);
    let k1 = base64::engine::general_purpose::STANDARD.encode((0u8..32).collect::<Vec<_>>());
    let k2 = base64::engine::general_purpose::STANDARD.encode((100u8..132).collect::<Vec<_>>());
    let k1_retired = format!("k1:{k1}");
    // k2 becomes current; k1 is retired but still opens old rows.
    t.cfg =
        test_config(&[("ENCRYPTION_KEY", &k2), ("ENCRYPTION_KEY_ID", "k2"), ("RETIRED_ENCRYPTION_KEYS", &k1_retired)]);
    let v = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}/settings"), Some(&admin), None));
    assert_eq!(field(&v, "openai", "api_key")["key_id"], "k1");
    assert_eq!(field(&v, "openai", "api_key")["value"], "••••1234");
    let platform = t.login("admin@gatehouse.test");
    assert_eq!(t.req(Method::Post, "/api/admin/settings/rotate", Some(&admin), None).status, 403);
    let r = t.req(Method::Post, "/api/admin/settings/rotate", Some(&platform), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let report = json_of(&r);
    assert_eq!(report["rotated"], 4);
    assert_eq!(report["remaining"], 0);
    assert!(t.p.sql("SELECT * FROM client_settings WHERE key_id <> 'k2' OR ciphertext NOT LIKE 'v1.k2.%'").is_empty());
    // Retire k1 entirely; everything still reads.
    t.cfg = test_config(&[("ENCRYPTION_KEY", &k2), ("ENCRYPTION_KEY_ID", "k2")]);
    let v = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}/settings"), Some(&admin), None));
    assert_eq!(field(&v, "openai", "api_key")["value"], "••••1234");
    assert_eq!(field(&v, "twilio", "account_sid")["value"], "AC123");
    let g = json_of(&t.req(Method::Get, &format!("/api/clients/{GLOBEX}/settings"), Some(&globex), None));
    assert_eq!(field(&g, "pipedrive", "api_token")["value"], "••••cdef");
    // And a row left under a key nobody holds reports as unreadable, not a 500.
    t.cfg = test_config(&[]);
    let r = t.req(Method::Get, &format!("/api/clients/{ACME}/settings"), Some(&admin), None);
    assert_eq!(r.status, 200);
    assert_eq!(field(&json_of(&r), "openai", "api_key")["error"], "undecryptable");
}

#[test]
fn reveal_is_the_only_path_to_plaintext_and_it_is_tenant_scoped() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    assert_eq!(put(&t, &admin, ACME, json!({"openai": {"api_key": OPENAI_KEY}})).status, 200);
    let ctx = gatehouse::platform::Ctx::new(&t.p, &t.cfg);
    let req = Request::new(Method::Get, "/internal");
    let load = |user: &str, tenant: &str| {
        let users = t.p.sql(&format!("SELECT id FROM users WHERE email = '{user}'"));
        let id = users[0]["id"].as_str().unwrap().to_string();
        pollster::block_on(gatehouse::access::store::load_principal(&t.p, &id, tenant)).unwrap().unwrap()
    };
    let acme = load("admin@acme.test", ACME);
    // The only way to a scope is through `access`, which checks the caller reaches the client.
    let (scope, _) =
        pollster::block_on(gatehouse::access::client(&ctx, &req, &acme, ACME, Permission::SettingsRead)).unwrap();
    let secret = pollster::block_on(gatehouse::settings::reveal(&ctx, &scope, "openai", "api_key")).unwrap().unwrap();
    assert_eq!(secret.expose(), OPENAI_KEY);
    assert_eq!(format!("{secret:?}"), "Secret(••••)");
    let globex = load("admin@globex.test", GLOBEX);
    let err =
        pollster::block_on(gatehouse::access::client(&ctx, &req, &globex, ACME, Permission::SettingsRead)).unwrap_err();
    assert_eq!(err.status(), 404);
}

#[test]
fn preferences_take_only_allowlisted_keys_with_typed_values_and_null_restores_the_default() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let path = format!("/api/clients/{}/preferences", gatehouse::seed::ACME);
    let get = || json_of(&t.req(Method::Get, &path, Some(&admin), None));
    let before = get();
    assert_eq!(before["locale"], "en-US");
    assert_eq!(before["currency"], "USD");
    assert_eq!(before["time_zone"], "America/New_York", "the client's own column");
    let patch = |v: serde_json::Value| t.req(Method::Patch, &path, Some(&admin), Some(v));
    let r =
        patch(json!({"locale": "pt_br", "currency": "eur", "week_starts_on": "sunday", "time_zone": "Europe/Lisbon"}));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let now = json_of(&r);
    assert_eq!((now["locale"].as_str(), now["currency"].as_str()), (Some("pt-BR"), Some("EUR")));
    assert_eq!(get(), now);
    for (bad, code) in [
        (json!({"theme": "dark"}), "invalid_preference"),
        (json!({"locale": "<script>"}), "invalid_preference"),
        (json!({"currency": "XYZ"}), "invalid_currency"),
        (json!({"week_starts_on": 1}), "invalid_preference"),
        (json!({"time_zone": "Mars/Olympus"}), "invalid_time_zone"),
    ] {
        let r = patch(bad.clone());
        assert_eq!((r.status, error_code(&r).as_str()), (422, code), "{bad}");
    }
    assert_eq!(get(), now, "a refused patch changes nothing");
    assert_eq!(json_of(&patch(json!({"locale": null})))["locale"], "en-US");
    // A viewer reads, and may not write.
    let viewer = t.login("viewer@acme.test");
    assert_eq!(t.req(Method::Get, &path, Some(&viewer), None).status, 200);
    assert_eq!(t.req(Method::Patch, &path, Some(&viewer), Some(json!({"locale": "de"}))).status, 403);
    let audited = t.p.sql("SELECT count(*) AS n FROM audit_log WHERE action = 'client.preferences_updated'");
    assert_eq!(audited[0]["n"], 2, "one row per change that happened");
}
