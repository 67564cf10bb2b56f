//! Events and webhooks through the real router over SQLite, with a fake receiver and queue:
//! the outbox, signing (checked with an independent HMAC), subscriptions, retries and their
//! schedule, death and replay, auto-disable, secret rotation, and the SSRF rules at registration
//! and at delivery. (Delivery through a real Cloudflare Queue runs under wrangler dev.)

use base64::Engine;
use gatehouse::platform::http::{Method, Response};
use gatehouse::platform::ports::PostOutcome;
use gatehouse::platform::Outbox;
use gatehouse::seed::{ACME, GLOBEX};
use gatehouse::App;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::*;

const HOOK_HOST: &str = "hooks.example.com";
const HOOK_URL: &str = "https://hooks.example.com/gatehouse";

fn call(t: &TestApp, token: &str, m: Method, path: &str, body: Option<Value>) -> Response {
    t.req(m, &format!("/api/clients/{ACME}{path}"), Some(token), body)
}

fn app_with(extra: &[(&'static str, &str)]) -> (TestApp, String) {
    let t = TestApp::with_config(test_config(extra));
    t.p.addrs.borrow_mut().insert(HOOK_HOST.into(), vec!["93.184.215.14".into(), "2606:2800:21f:cb07::1".into()]);
    let admin = t.login("admin@acme.test");
    (t, admin)
}

/// Registers an endpoint; returns its id and secret.
fn endpoint(t: &TestApp, token: &str, types: &[&str]) -> (String, String) {
    let r = call(t, token, Method::Post, "/webhooks", Some(json!({"url": HOOK_URL, "event_types": types})));
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let v = json_of(&r);
    (v["id"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string())
}

/// Drains the outbox, then delivers every queued message once, as the queue consumer would.
fn pump(t: &TestApp) {
    let app = App::new(&t.p, &t.cfg, &t.state);
    pollster::block_on(app.drain_outbox(Outbox::Deliveries)).unwrap();
    let messages: Vec<_> = t.p.queued.borrow_mut().drain(..).collect();
    for m in messages {
        pollster::block_on(app.deliver(&m.body));
    }
}

/// An independent Standard Webhooks verification: true if any `v1` signature matches.
fn verifies(secret: &str, p: &SentPost) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", p.header("webhook-id"), p.header("webhook-timestamp"), p.body).as_bytes());
    let want = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    p.header("webhook-signature").split(' ').any(|s| s == want)
}

fn contact(t: &TestApp, token: &str, name: &str) -> String {
    let r = call(t, token, Method::Post, "/contacts", Some(json!({"name": name, "email": "lead@example.org"})));
    assert_eq!(r.status, 201, "{}", body_str(&r));
    json_of(&r)["id"].as_str().unwrap().to_string()
}

fn deliveries(t: &TestApp, token: &str, endpoint: &str) -> Vec<Value> {
    let r = call(t, token, Method::Get, &format!("/webhooks/{endpoint}/deliveries"), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    json_of(&r)["items"].as_array().unwrap().clone()
}

fn advance(t: &TestApp, secs: i64) {
    t.p.now_ms.set(t.p.now_ms.get() + secs * 1000);
}

#[test]
fn subscribed_events_arrive_signed_once_and_nothing_else_does() {
    let (t, admin) = app_with(&[]);
    let (wid, secret) = endpoint(&t, &admin, &["contact.created", "contact.deleted"]);
    let id = contact(&t, &admin, "Ada Lovelace");
    let r = call(&t, &admin, Method::Patch, &format!("/contacts/{id}"), Some(json!({"phone": "+1 555 0100"})));
    assert_eq!(r.status, 200);
    pump(&t);
    pump(&t);
    let posts = t.p.webhook_posts.borrow().clone();
    assert_eq!(posts.len(), 1, "contact.updated is not subscribed: {posts:?}");
    let p = &posts[0];
    assert_eq!(p.url, HOOK_URL);
    assert!(verifies(&secret, p), "signature does not verify: {p:?}");
    assert!(!verifies("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", p));
    let body: Value = serde_json::from_str(&p.body).unwrap();
    assert_eq!(body["type"], "contact.created");
    assert_eq!(body["client_id"], ACME);
    assert_eq!(body["data"]["contact"]["id"], id.as_str());
    assert_eq!(body["id"], p.header("webhook-id"));
    assert_eq!(p.header("webhook-timestamp"), (t.p.now_ms.get() / 1000).to_string());
    assert!(!p.body.contains("whsec_"), "an event never carries a secret");

    // The event log has both events; the delivery log only the subscribed one, succeeded.
    let events = json_of(&call(&t, &admin, Method::Get, "/events", None));
    let types: Vec<&str> = events["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["contact.updated", "contact.created"]);
    let log = deliveries(&t, &admin, &wid);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(log[0]["attempts"], 1);

    // Deleting it is an event too; deleting it again changes nothing and records nothing.
    assert_eq!(call(&t, &admin, Method::Delete, &format!("/contacts/{id}"), None).status, 204);
    assert_eq!(call(&t, &admin, Method::Delete, &format!("/contacts/{id}"), None).status, 404);
    pump(&t);
    let n = t.p.sql("SELECT count(*) AS n FROM events WHERE type = 'contact.deleted'")[0]["n"].as_i64().unwrap();
    assert_eq!(n, 1);
    assert_eq!(t.p.webhook_posts.borrow().len(), 2);
}

#[test]
fn a_failing_receiver_is_retried_on_schedule_then_the_delivery_dies_and_can_be_replayed() {
    let (t, admin) = app_with(&[("WEBHOOK_RETRY_SCHEDULE", "10,60")]);
    let (wid, _) = endpoint(&t, &admin, &["*"]);
    let answered = |status, retry_after: Option<&str>| PostOutcome::Answered {
        status,
        retry_after: retry_after.map(String::from),
        head: "upstream says no".into(),
    };
    t.p.receiver_script.borrow_mut().extend([
        answered(500, None),
        PostOutcome::TimedOut,
        answered(503, None),
        answered(200, None),
    ]);
    contact(&t, &admin, "Grace Hopper");
    pump(&t);
    let log = deliveries(&t, &admin, &wid);
    assert_eq!(log[0]["status"], "pending");
    let first_retry = log[0]["next_attempt_at"].as_i64().unwrap() - t.p.now_ms.get();
    assert!((9_000..=11_000).contains(&first_retry), "first retry after {first_retry} ms");
    // Not due yet: the message goes back on the queue for the rest of the wait, nothing is sent.
    pump(&t);
    assert_eq!(t.p.webhook_posts.borrow().len(), 1);
    advance(&t, 11);
    pump(&t);
    advance(&t, 66);
    pump(&t);
    let log = deliveries(&t, &admin, &wid);
    assert_eq!(log[0]["status"], "dead", "three attempts spend a two-retry schedule");
    assert_eq!(t.p.webhook_posts.borrow().len(), 3);
    let did = log[0]["id"].as_str().unwrap().to_string();
    let detail = json_of(&call(&t, &admin, Method::Get, &format!("/webhooks/{wid}/deliveries/{did}"), None));
    let attempts = detail["attempt_log"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[0]["response_head"], "upstream says no");
    assert_eq!(attempts[1]["status_code"], Value::Null);
    assert!(attempts[1]["error"].as_str().unwrap().contains("timed out"));
    assert_eq!(attempts[2]["status_code"], 503);

    // Replayed: the same event (same webhook-id), a fresh budget, and it succeeds.
    let r = call(&t, &admin, Method::Post, &format!("/webhooks/{wid}/deliveries/{did}/replay"), None);
    assert_eq!(r.status, 202, "{}", body_str(&r));
    pump(&t);
    let log = deliveries(&t, &admin, &wid);
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(log[0]["attempts"], 4);
    let posts = t.p.webhook_posts.borrow();
    assert_eq!(posts[3].header("webhook-id"), posts[0].header("webhook-id"));
    drop(posts);
    // Only dead deliveries replay.
    let again = call(&t, &admin, Method::Post, &format!("/webhooks/{wid}/deliveries/{did}/replay"), None);
    assert_eq!((again.status, error_code(&again).as_str()), (409, "not_replayable"));
}

#[test]
fn retry_after_is_honoured_and_client_errors_are_not_retried() {
    let (t, admin) = app_with(&[]);
    let (wid, _) = endpoint(&t, &admin, &["contact.created"]);
    t.p.receiver_script.borrow_mut().extend([
        PostOutcome::Answered { status: 429, retry_after: Some("120".into()), head: String::new() },
        PostOutcome::Answered { status: 410, retry_after: None, head: "gone".into() },
    ]);
    contact(&t, &admin, "Katherine Johnson");
    pump(&t);
    let log = deliveries(&t, &admin, &wid);
    assert_eq!(log[0]["next_attempt_at"].as_i64().unwrap() - t.p.now_ms.get(), 120_000);
    advance(&t, 120);
    pump(&t);
    let log = deliveries(&t, &admin, &wid);
    assert_eq!(log[0]["status"], "dead", "a 410 is final");
    assert_eq!(log[0]["last_status_code"], 410);
}

#[test]
fn a_name_that_later_resolves_inward_is_refused_at_delivery() {
    let (t, admin) = app_with(&[]);
    let (wid, _) = endpoint(&t, &admin, &["contact.created"]);
    t.p.addrs.borrow_mut().insert(HOOK_HOST.into(), vec!["93.184.215.14".into(), "169.254.169.254".into()]);
    contact(&t, &admin, "Mallory");
    pump(&t);
    assert!(t.p.webhook_posts.borrow().is_empty(), "nothing may be sent to a private address");
    let log = deliveries(&t, &admin, &wid);
    assert_eq!(log[0]["status"], "dead");
    assert!(log[0]["last_error"].as_str().unwrap().contains("169.254.169.254"), "{}", log[0]);
}

#[test]
fn registration_refuses_urls_that_point_inward_or_at_the_platform() {
    let (t, admin) = app_with(&[]);
    t.p.addrs.borrow_mut().insert("inward.example.com".into(), vec!["10.1.2.3".into()]);
    t.p.addrs.borrow_mut().insert("mixed.example.com".into(), vec!["93.184.215.14".into(), "::1".into()]);
    // Acme's verified portal domain is the platform's own host.
    t.p.exec(&format!(
        "INSERT INTO domains (id, client_id, hostname, site, scheme, port, purpose, status, verification_token, \
         verified_by, consecutive_failures, created_at, updated_at) VALUES ('dom_aaaaaaaaaaaaaaaaaaaaaaaa', '{ACME}', \
         'portal.acme-dental.com', 'acme-dental.com', 'https', NULL, 'portal', 'verified', 'tok', 'dns', 0, 0, 0)"
    ));
    t.p.addrs.borrow_mut().insert("portal.acme-dental.com".into(), vec!["93.184.215.14".into()]);
    for url in [
        "http://hooks.example.com/",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://0x7f000001/",
        "https://localhost/x",
        "https://api.test/api/me",
        "https://acme.portal.test/",
        "https://portal.acme-dental.com/hook",
        "https://inward.example.com/",
        "https://mixed.example.com/",
        "https://nowhere.example.com/",
        "https://user:pw@hooks.example.com/",
    ] {
        let r = call(&t, &admin, Method::Post, "/webhooks", Some(json!({"url": url, "event_types": ["*"]})));
        assert_eq!((r.status, error_code(&r).as_str()), (422, "webhook_url_refused"), "{url}: {}", body_str(&r));
    }
    let bad_types =
        call(&t, &admin, Method::Post, "/webhooks", Some(json!({"url": HOOK_URL, "event_types": ["nope"]})));
    assert_eq!(error_code(&bad_types), "invalid_event_types");
    let n = t.p.sql("SELECT count(*) AS n FROM webhook_endpoints")[0]["n"].as_i64().unwrap();
    assert_eq!(n, 0, "a refused registration stores nothing");
    // A PATCH is held to the same rules.
    let (wid, _) = endpoint(&t, &admin, &["*"]);
    let r = call(&t, &admin, Method::Patch, &format!("/webhooks/{wid}"), Some(json!({"url": "https://10.0.0.1/"})));
    assert_eq!(error_code(&r), "webhook_url_refused");
}

#[test]
fn an_endpoint_that_keeps_failing_is_disabled_audited_and_can_be_enabled_again() {
    let (t, admin) = app_with(&[("WEBHOOK_DISABLE_AFTER_FAILURES", "3")]);
    let (wid, _) = endpoint(&t, &admin, &["contact.created"]);
    let gone = || PostOutcome::Answered { status: 404, retry_after: None, head: String::new() };
    t.p.receiver_script.borrow_mut().extend([gone(), gone(), gone()]);
    for name in ["A", "B", "C", "D"] {
        contact(&t, &admin, name);
    }
    pump(&t);
    let e = json_of(&call(&t, &admin, Method::Get, &format!("/webhooks/{wid}"), None));
    assert_eq!(e["status"], "disabled");
    assert_eq!(e["consecutive_failures"], 3);
    assert_eq!(t.p.webhook_posts.borrow().len(), 3, "the fourth is not sent to a disabled endpoint");
    let audit = t.p.sql("SELECT actor_role FROM audit_log WHERE action = 'webhook.disabled'");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor_role"], "system");
    let dead = deliveries(&t, &admin, &wid).iter().filter(|d| d["status"] == "dead").count();
    assert_eq!(dead, 4);
    // Replaying needs an enabled endpoint; enabled, the bulk replay sends all four again.
    let r = call(&t, &admin, Method::Post, &format!("/webhooks/{wid}/replay"), None);
    assert_eq!((r.status, error_code(&r).as_str()), (409, "endpoint_disabled"));
    let r = call(&t, &admin, Method::Patch, &format!("/webhooks/{wid}"), Some(json!({"status": "active"})));
    assert_eq!(json_of(&r)["consecutive_failures"], 0);
    let r = call(&t, &admin, Method::Post, &format!("/webhooks/{wid}/replay"), None);
    assert_eq!(json_of(&r)["replayed"], 4);
    pump(&t);
    assert!(deliveries(&t, &admin, &wid).iter().all(|d| d["status"] == "succeeded"));
}

#[test]
fn a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends() {
    let (t, admin) = app_with(&[]);
    let (wid, old) = endpoint(&t, &admin, &["contact.created"]);
    let r =
        call(&t, &admin, Method::Post, &format!("/webhooks/{wid}/rotate-secret"), Some(json!({"overlap_secs": 3600})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let new = json_of(&r)["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    contact(&t, &admin, "During the overlap");
    pump(&t);
    advance(&t, 3601);
    let admin = t.login("admin@acme.test");
    contact(&t, &admin, "After the overlap");
    pump(&t);
    let posts = t.p.webhook_posts.borrow();
    assert!(verifies(&old, &posts[0]) && verifies(&new, &posts[0]));
    assert!(!verifies(&old, &posts[1]) && verifies(&new, &posts[1]));
    // Secrets are write-only: no read shows one.
    let listed = body_str(&call(&t, &admin, Method::Get, "/webhooks", None));
    assert!(!listed.contains(&new) && !listed.contains("whsec_"), "{listed}");
    let stored = t.p.sql("SELECT secret_sealed FROM webhook_endpoints")[0]["secret_sealed"].to_string();
    assert!(!stored.contains(new.trim_start_matches("whsec_")));
}

#[test]
fn every_event_type_is_recorded_by_its_change_and_only_by_it() {
    let (t, admin) = app_with(&[]);
    contact(&t, &admin, "Someone");
    // A failed change records nothing: an unknown stage, a deal that is not there.
    let pipes = json_of(&call(&t, &admin, Method::Get, "/pipelines", None));
    let pipe = &pipes["items"][0];
    let stages = pipe["stages"].as_array().unwrap();
    let pid = pipe["id"].as_str().unwrap();
    let before = t.p.sql("SELECT count(*) AS n FROM events")[0]["n"].as_i64().unwrap();
    let r = call(
        &t,
        &admin,
        Method::Post,
        "/deals",
        Some(json!({"title": "X", "pipeline_id": pid, "stage_id": "stage_zzzzzzzzzzzzzzzzzzzzzzzz"})),
    );
    assert_eq!(r.status, 422);
    let r = call(&t, &admin, Method::Patch, "/deals/deal_zzzzzzzzzzzzzzzzzzzzzzzz", Some(json!({"status": "won"})));
    assert_eq!(r.status, 404);
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM events")[0]["n"].as_i64().unwrap(), before);

    let r = call(&t, &admin, Method::Post, "/deals", Some(json!({"title": "Implants", "pipeline_id": pid})));
    let deal = json_of(&r)["id"].as_str().unwrap().to_string();
    let s2 = stages[1]["id"].as_str().unwrap();
    call(&t, &admin, Method::Patch, &format!("/deals/{deal}"), Some(json!({"stage_id": s2})));
    call(&t, &admin, Method::Patch, &format!("/deals/{deal}"), Some(json!({"status": "won"})));
    call(&t, &admin, Method::Patch, &format!("/deals/{deal}"), Some(json!({"status": "lost", "lost_reason": "price"})));
    upload(&t, &admin, ACME, "brief.txt", "text/plain", b"hello");
    let kinds: Vec<String> =
        t.p.sql("SELECT type FROM events ORDER BY seq")
            .iter()
            .map(|r| r["type"].as_str().unwrap().to_string())
            .collect();
    for want in ["contact.created", "deal.created", "deal.stage_changed", "deal.won", "deal.lost", "file.uploaded"] {
        assert_eq!(kinds.iter().filter(|k| *k == want).count(), 1, "{want} in {kinds:?}");
    }
    let data = t.p.sql("SELECT data FROM events WHERE type = 'deal.stage_changed'");
    let data: Value = serde_json::from_str(data[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["deal"]["stage_id"], s2);
    assert_eq!(data["previous"]["stage_id"], stages[0]["id"]);
}

#[test]
fn webhooks_and_events_stay_inside_their_client() {
    let (t, admin) = app_with(&[]);
    let (wid, _) = endpoint(&t, &admin, &["*"]);
    let globex = t.login("admin@globex.test");
    // Globex's own change never reaches Acme's endpoint.
    let r = t.req(Method::Post, &format!("/api/clients/{GLOBEX}/contacts"), Some(&globex), Some(json!({"name": "G"})));
    assert_eq!(r.status, 201);
    pump(&t);
    assert!(t.p.webhook_posts.borrow().is_empty());
    for (m, path) in [
        (Method::Get, format!("/api/clients/{GLOBEX}/webhooks/{wid}")),
        (Method::Get, format!("/api/clients/{GLOBEX}/webhooks/{wid}/deliveries")),
        (Method::Post, format!("/api/clients/{GLOBEX}/webhooks/{wid}/replay")),
        (Method::Post, format!("/api/clients/{GLOBEX}/webhooks/{wid}/rotate-secret")),
        (Method::Delete, format!("/api/clients/{GLOBEX}/webhooks/{wid}")),
    ] {
        let r = t.req(m, &path, Some(&globex), None);
        assert_eq!(r.status, 404, "{path}: {}", body_str(&r));
    }
    let r = t.req(Method::Get, &format!("/api/clients/{ACME}/webhooks"), Some(&globex), None);
    assert_eq!(r.status, 404);
    // A client user may read contacts but not manage webhooks.
    let user = t.login("user@acme.test");
    assert_eq!(call(&t, &user, Method::Get, "/webhooks", None).status, 403);
    assert_eq!(call(&t, &user, Method::Get, "/events", None).status, 403);
}

#[test]
fn an_encryption_key_rotation_reseals_webhook_secrets_and_they_keep_signing() {
    let (mut t, admin) = app_with(&[]);
    let (wid, old) = endpoint(&t, &admin, &["contact.created"]);
    let r = call(&t, &admin, Method::Post, &format!("/webhooks/{wid}/rotate-secret"), None);
    let new = json_of(&r)["secret"].as_str().unwrap().to_string();
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    let k1 = b64((0u8..32).collect());
    let k2 = b64((32u8..64).collect());
    t.cfg = test_config(&[
        ("ENCRYPTION_KEY", &k2),
        ("ENCRYPTION_KEY_ID", "k2"),
        ("RETIRED_ENCRYPTION_KEYS", &format!("k1:{k1}")),
    ]);
    let platform = t.login("admin@gatehouse.test");
    let r = t.req(Method::Post, "/api/admin/settings/rotate", Some(&platform), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let report = json_of(&r);
    assert_eq!(report["webhook_secrets"]["rotated"], 1, "{report}");
    assert_eq!(report["remaining"], 0, "{report}");
    let sealed = t.p.sql("SELECT secret_sealed, previous_secret_sealed FROM webhook_endpoints");
    assert!(sealed[0]["secret_sealed"].as_str().unwrap().starts_with("v1.k2."));
    assert!(sealed[0]["previous_secret_sealed"].as_str().unwrap().starts_with("v1.k2."));
    // The retired key is gone; both secrets still sign.
    t.cfg = test_config(&[("ENCRYPTION_KEY", &k2), ("ENCRYPTION_KEY_ID", "k2")]);
    let admin = t.login("admin@acme.test");
    contact(&t, &admin, "After the key rotation");
    pump(&t);
    let posts = t.p.webhook_posts.borrow();
    assert_eq!(posts.len(), 1);
    assert!(verifies(&new, &posts[0]) && verifies(&old, &posts[0]));
}

#[test]
fn our_dns_outage_is_retried_without_counting_against_the_endpoint() {
    let (t, admin) = app_with(&[("WEBHOOK_DISABLE_AFTER_FAILURES", "1")]);
    let (wid, _) = endpoint(&t, &admin, &["contact.created"]);
    contact(&t, &admin, "During an outage");
    t.p.dns_down.set(true);
    pump(&t);
    assert!(t.p.webhook_posts.borrow().is_empty());
    let e = json_of(&call(&t, &admin, Method::Get, &format!("/webhooks/{wid}"), None));
    assert_eq!((e["status"].as_str(), e["consecutive_failures"].as_i64()), (Some("active"), Some(0)), "{e}");
    let log = deliveries(&t, &admin, &wid);
    assert_eq!(log[0]["status"], "pending");
    assert!(log[0]["last_error"].as_str().unwrap().contains("DNS resolver"), "{}", log[0]);
    t.p.dns_down.set(false);
    advance(&t, 60);
    pump(&t);
    assert_eq!(deliveries(&t, &admin, &wid)[0]["status"], "succeeded");
}

#[test]
fn a_duplicate_or_stale_message_sends_nothing_twice() {
    let (t, admin) = app_with(&[]);
    let (wid, _) = endpoint(&t, &admin, &["contact.created"]);
    contact(&t, &admin, "Once");
    let app = App::new(&t.p, &t.cfg, &t.state);
    pollster::block_on(app.drain_outbox(Outbox::Deliveries)).unwrap();
    let messages: Vec<_> = t.p.queued.borrow_mut().drain(..).collect();
    assert_eq!(messages.len(), 1);
    // The queue delivers the message twice (at least once), and a second drain runs meanwhile.
    pollster::block_on(app.deliver(&messages[0].body));
    pollster::block_on(app.drain_outbox(Outbox::Deliveries)).unwrap();
    pollster::block_on(app.deliver(&messages[0].body));
    assert_eq!(t.p.webhook_posts.borrow().len(), 1);
    assert!(t.p.queued.borrow().is_empty(), "a stale message is dropped, not re-queued");
    assert_eq!(deliveries(&t, &admin, &wid)[0]["attempts"], 1);
    // Garbage on the queue is dropped too.
    for junk in ["", "whd_x.1", "not a message", "whd_aaaaaaaaaaaaaaaaaaaaaaaa.x"] {
        pollster::block_on(app.deliver(junk));
    }
    assert_eq!(t.p.webhook_posts.borrow().len(), 1);
}

#[test]
fn deals_moved_by_deleting_their_stage_each_record_a_stage_change() {
    let (t, admin) = app_with(&[]);
    let p = call(&t, &admin, Method::Post, "/pipelines", Some(json!({"name": "Doomed", "stages": ["A", "B"]})));
    let p = json_of(&p);
    let (pid, a, b) =
        (p["id"].as_str().unwrap(), p["stages"][0]["id"].as_str().unwrap(), p["stages"][1]["id"].as_str().unwrap());
    for title in ["One", "Two"] {
        let r = call(&t, &admin, Method::Post, "/deals", Some(json!({"title": title, "pipeline_id": pid})));
        assert_eq!(r.status, 201);
    }
    let r = call(&t, &admin, Method::Delete, &format!("/pipelines/{pid}/stages/{a}?move_to={b}"), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let moved = t.p.sql("SELECT data FROM events WHERE type = 'deal.stage_changed'");
    assert_eq!(moved.len(), 2);
    for m in &moved {
        let data: Value = serde_json::from_str(m["data"].as_str().unwrap()).unwrap();
        assert_eq!((data["deal"]["stage_id"].as_str(), data["previous"]["stage_id"].as_str()), (Some(b), Some(a)));
        assert!(data["deal"]["id"].as_str().unwrap().starts_with("deal_"));
    }
    let ids = t.p.sql("SELECT id FROM events WHERE type = 'deal.stage_changed'");
    assert!(ids.iter().all(|r| r["id"].as_str().unwrap().len() == "evt_".len() + 24));
}

#[test]
fn events_past_retention_are_pruned_with_their_settled_deliveries_but_pending_ones_stay() {
    let (t, admin) = app_with(&[("EVENT_RETENTION_DAYS", "30"), ("WEBHOOK_RETRY_SCHEDULE", "43200")]);
    let (_, _) = endpoint(&t, &admin, &["contact.created"]);
    contact(&t, &admin, "Delivered");
    pump(&t);
    t.p.receiver_script.borrow_mut().push_back(PostOutcome::TimedOut);
    contact(&t, &admin, "Still pending");
    pump(&t);
    let count = |table: &str| t.p.sql(&format!("SELECT count(*) AS n FROM {table}"))[0]["n"].as_i64().unwrap();
    let (events, deliveries) = (count("events"), count("webhook_deliveries"));
    assert_eq!(deliveries, 2);
    advance(&t, 29 * 86_400);
    let app = App::new(&t.p, &t.cfg, &t.state);
    pollster::block_on(app.scheduled("*/15 * * * *")).unwrap();
    assert_eq!((count("events"), count("webhook_deliveries")), (events, deliveries), "nothing is old enough yet");
    advance(&t, 2 * 86_400);
    pollster::block_on(app.scheduled("*/15 * * * *")).unwrap();
    assert_eq!(count("webhook_deliveries"), 1, "the pending delivery stays");
    assert_eq!(count("webhook_attempts"), 1, "with its attempt");
    let left = t.p.sql("SELECT type FROM events");
    assert_eq!(left.len(), 1, "only the pending delivery's event stays: {left:?}");
}

#[test]
fn without_an_endpoint_events_are_born_dispatched_and_the_drain_after_a_write_costs_one_query() {
    let (t, admin) = app_with(&[]);
    contact(&t, &admin, "Nobody listens");
    let row = t.p.sql("SELECT dispatched_at FROM events");
    assert!(row[0]["dispatched_at"].is_i64(), "{row:?}");
    let app = App::new(&t.p, &t.cfg, &t.state);
    let before = t.p.queries.get();
    let drained = pollster::block_on(app.drain_outbox(Outbox::Events)).unwrap();
    assert_eq!((drained.events, drained.queued), (0, 0));
    assert_eq!(t.p.queries.get() - before, 1, "one query: the outbox of the one shard the write touched");
    // With an endpoint, the next event waits for the drain, which fans it out and queues it.
    endpoint(&t, &admin, &["contact.created"]);
    contact(&t, &admin, "Somebody listens");
    let undispatched = t.p.sql("SELECT count(*) AS n FROM events WHERE dispatched_at IS NULL")[0]["n"].as_i64();
    assert_eq!(undispatched, Some(1));
    let drained = pollster::block_on(app.drain_outbox(Outbox::Events)).unwrap();
    assert_eq!((drained.events, drained.queued), (1, 1));
}
