//! Issue 10's holes, each proved closed through the real router over SQLite: narrowed grants,
//! portal tokens, widget spam, domain squatting, lockout, area-aware file permissions, staff
//! audit, agency suspension, forged audit rows, email enumeration, signed-link lifetime and
//! revocation, staff network redaction, consumer mail domains and JWT key rotation.

use crate::common::*;
use gatehouse::platform::http::{Method, Request, Response};
use gatehouse::platform::ports::Limit;
use gatehouse::seed::{ACME, AGENCY, GLOBEX};
use serde_json::{json, Value};

const ACME_ADMIN: &str = "usr_000000000000000000000004";
const ACME_VIEWER: &str = "usr_000000000000000000000006";
const SHOP: &str = "http://shop.localhost:5173";

fn login_body(t: &TestApp, email: &str, password: &str, ip: Option<&str>, extra: Value) -> Response {
    let mut body = json!({"email": email, "password": password});
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let mut r = Request::new(Method::Post, "/api/auth/login")
        .with_header("host", API)
        .with_header("content-type", "application/json")
        .with_body(body.to_string());
    if let Some(ip) = ip {
        r = r.with_header("cf-connecting-ip", ip);
    }
    t.call(r)
}

fn audit_actions(t: &TestApp, tenant: &str, action: &str) -> usize {
    t.p.sql(&format!("SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{tenant}' AND action = '{action}'"))[0]
        ["n"]
        .as_i64()
        .unwrap() as usize
}

// ---- 1. Narrowed grants cannot be undone ----------------------------------------------------

#[test]
fn a_narrowed_admin_cannot_grant_back_what_was_taken() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let narrow = json!({"client_id": ACME, "role": "client_admin",
        "permissions": ["users:manage", "users:read", "clients:read", "files:read", "branding:read", "contacts:read",
            "deals:read", "booking:read"]});
    let r = t.req(Method::Post, &format!("/api/users/{ACME_ADMIN}/grant-access"), Some(&agency), Some(narrow));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let acme = t.login("admin@acme.test");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/settings"), Some(&acme), None).status, 403);
    // The reported attack: the full role back on themselves, with no list.
    let own = t.req(
        Method::Post,
        &format!("/api/users/{ACME_ADMIN}/grant-access"),
        Some(&acme),
        Some(json!({"client_id": ACME, "role": "client_admin"})),
    );
    assert_eq!(own.status, 403);
    assert_eq!(error_code(&own), "own_membership");
    // Nor through someone else: a full client_admin holds settings:read, which they lack.
    let other = t.req(
        Method::Post,
        &format!("/api/users/{ACME_VIEWER}/grant-access"),
        Some(&acme),
        Some(json!({"client_id": ACME, "role": "client_admin"})),
    );
    assert_eq!(other.status, 403);
    assert_eq!(error_code(&other), "permissions_exceed_own");
    assert!(body_str(&other).contains("settings:read"), "{}", body_str(&other));
    // What they hold, they may hand on.
    let ok = t.req(
        Method::Post,
        &format!("/api/users/{ACME_VIEWER}/grant-access"),
        Some(&acme),
        Some(json!({"client_id": ACME, "role": "client_admin", "permissions": ["clients:read", "users:read"]})),
    );
    assert_eq!(ok.status, 200, "{}", body_str(&ok));
    // And never touches a membership holding more than they do.
    let agency_user = "usr_000000000000000000000005";
    let demote = t.req(
        Method::Post,
        &format!("/api/users/{agency_user}/grant-access"),
        Some(&acme),
        Some(json!({"client_id": ACME, "role": "client_viewer"})),
    );
    assert_eq!(demote.status, 403, "user@acme holds files:write, which the narrowed admin lacks");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/settings"), Some(&acme), None).status, 403);
    // Nor revoke their own membership.
    let rv =
        t.req(Method::Delete, &format!("/api/users/{ACME_ADMIN}/revoke-access?client_id={ACME}"), Some(&acme), None);
    assert_eq!(rv.status, 403);
    assert_eq!(error_code(&rv), "own_membership");
}

#[test]
fn an_unreadable_narrowing_list_grants_nothing_and_is_logged() {
    let t = TestApp::new();
    let token = t.login("admin@acme.test");
    t.p.exec(&format!("UPDATE client_users SET permissions = 'not json' WHERE user_id = '{ACME_ADMIN}'"));
    let r = t.req(Method::Get, &format!("/api/clients/{ACME}"), Some(&token), None);
    assert_eq!(r.status, 403, "{}", body_str(&r));
    assert!(t.p.logs.borrow().iter().any(|l| l.contains("grants nothing")), "{:?}", t.p.logs.borrow());
}

// ---- 2. Portal logins are confined to the portal's client and host ---------------------------

#[test]
fn a_portal_login_is_confined_to_that_portal() {
    let t = TestApp::new();
    let acme_host = "acme.portal.test";
    let r = t.req_on(
        acme_host,
        Method::Post,
        "/api/auth/login",
        None,
        Some(json!({"email": "admin@gatehouse.test", "password": t.password("admin@gatehouse.test")})),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let v = json_of(&r);
    assert_eq!(v["context"]["tenant"], ACME);
    assert_eq!(v["context"]["scope"]["kind"], "client");
    let perms: Vec<&str> =
        v["context"]["permissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(!perms.contains(&"platform:admin") && perms.contains(&"settings:read"), "{perms:?}");
    let token = v["access_token"].as_str().unwrap();
    // Refused on the API host and on every other portal.
    for (host, path) in [
        (API, "/api/admin/tenants"),
        (API, "/api/me"),
        ("globex.portal.test", "/api/me"),
        ("acme.portal.test:8443", "/api/me"),
    ] {
        let r = t.req_on(host, Method::Get, path, Some(token), None);
        assert_eq!(r.status, 403, "{host}{path}: {}", body_str(&r));
        assert_eq!(error_code(&r), "tenant_mismatch");
    }
    // /api/me on the portal names only the portal's client, not the platform or other tenants.
    let me = json_of(&t.req_on(acme_host, Method::Get, "/api/me", Some(token), None));
    assert_eq!(me["memberships"].as_array().unwrap().len(), 1, "{me}");
    assert_eq!(me["memberships"][0]["tenant"], ACME);
    assert_eq!(me["memberships"][0]["staff"], true);
    // On its own portal it works, inside acme only, and the staff access is audited.
    let before = audit_actions(&t, ACME, "platform.access");
    let c = t.req_on(acme_host, Method::Get, &format!("/api/clients/{ACME}"), Some(token), None);
    assert_eq!(c.status, 200, "{}", body_str(&c));
    assert_eq!(audit_actions(&t, ACME, "platform.access"), before + 1);
    let force = t.req_on(acme_host, Method::Post, "/api/auth/switch", Some(token), Some(json!({"tenant": "platform"})));
    assert_eq!(force.status, 403);
    // A forged portal token for another host fails the same way.
    let login = t.req(
        Method::Post,
        "/api/auth/login",
        None,
        Some(json!({"email": "admin@acme.test", "password": t.password("admin@acme.test")})),
    );
    let api_token = json_of(&login)["access_token"].as_str().unwrap().to_string();
    assert_eq!(t.req_on(acme_host, Method::Get, "/api/me", Some(&api_token), None).status, 200);
}

// ---- 3. Widget spam ---------------------------------------------------------------------------

fn lead(t: &TestApp, ip: &str, body: Value, idem: Option<&str>) -> Response {
    let mut r = Request::new(Method::Post, &format!("/api/widget/v1/leads?key={}", t.demo.acme_key))
        .with_header("host", API)
        .with_header("origin", SHOP)
        .with_header("cf-connecting-ip", ip)
        .with_header("content-type", "application/json")
        .with_body(body.to_string());
    if let Some(k) = idem {
        r = r.with_header("idempotency-key", k);
    }
    t.call(r)
}

fn widget_leads(t: &TestApp) -> i64 {
    t.p.sql(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}' AND source = 'widget'"))[0]["n"]
        .as_i64()
        .unwrap()
}

#[test]
fn widget_writes_are_rate_limited_per_ip_and_per_key() {
    let t = TestApp::new();
    t.p.limits.borrow_mut().insert(Limit::WidgetIp, 3);
    t.p.limits.borrow_mut().insert(Limit::WidgetKey, 5);
    let body = json!({"name": "Lead", "email": "lead@example.com"});
    for _ in 0..3 {
        assert_eq!(lead(&t, "198.51.100.1", body.clone(), None).status, 201);
    }
    let r = lead(&t, "198.51.100.1", body.clone(), None);
    assert_eq!(r.status, 429);
    assert_eq!(error_code(&r), "rate_limited");
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP), "the widget can read the refusal");
    assert_eq!(lead(&t, "198.51.100.2", body.clone(), None).status, 201);
    assert_eq!(lead(&t, "198.51.100.3", body.clone(), None).status, 201);
    assert_eq!(lead(&t, "198.51.100.4", body.clone(), None).status, 429, "the key's own limit");
    assert_eq!(widget_leads(&t), 5);
}

#[test]
fn a_client_takes_at_most_its_daily_cap_of_widget_submissions() {
    let t = TestApp::new();
    // The plan's cap, overridden for this client (as an agency would, with PUT /api/clients/{id}).
    t.p.exec(&format!("UPDATE clients SET limits = '{{\"widget_submissions_per_day\":2}}' WHERE id = '{ACME}'"));
    let body = json!({"name": "Lead", "email": "lead@example.com"});
    assert_eq!(lead(&t, "198.51.100.1", body.clone(), None).status, 201);
    assert_eq!(lead(&t, "198.51.100.2", body.clone(), None).status, 201);
    let r = lead(&t, "198.51.100.3", body.clone(), None);
    assert_eq!(r.status, 429);
    assert_eq!(error_code(&r), "daily_limit_reached");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() <= 86_400);
    assert_eq!(widget_leads(&t), 2);
    // A new UTC day opens a new allowance.
    t.p.now_ms.set(t.p.now_ms.get() + 86_400_000);
    assert_eq!(lead(&t, "198.51.100.3", body, None).status, 201);
}

#[test]
fn honeypots_fast_fills_and_retries_create_no_extra_leads() {
    let t = TestApp::new();
    let trap =
        lead(&t, "198.51.100.1", json!({"name": "Bot", "email": "b@example.com", "website": "http://spam"}), None);
    assert_eq!(trap.status, 202);
    assert_eq!(widget_leads(&t), 0, "a filled honeypot stores nothing");
    let fast = lead(&t, "198.51.100.1", json!({"name": "Bot", "email": "b@example.com", "elapsed_ms": 200}), None);
    assert_eq!(fast.status, 422);
    assert_eq!(error_code(&fast), "submitted_too_fast");
    let just_under =
        lead(&t, "198.51.100.1", json!({"name": "Bot", "email": "b@example.com", "elapsed_ms": 1499}), None);
    assert_eq!(just_under.status, 422, "the minimum is 1500 ms");
    let at_minimum =
        lead(&t, "198.51.100.1", json!({"name": "Ed", "email": "ed@example.com", "elapsed_ms": 1500}), None);
    assert_eq!(at_minimum.status, 201, "exactly the minimum is a person");
    let human =
        json!({"name": "Ann", "email": "ann@example.com", "elapsed_ms": 9000, "submission_id": "sub-0123456789"});
    let first = lead(&t, "198.51.100.1", human.clone(), None);
    assert_eq!(first.status, 201, "{}", body_str(&first));
    let again = lead(&t, "198.51.100.1", human, None);
    assert_eq!(again.status, 200);
    assert_eq!(json_of(&again)["id"], json_of(&first)["id"]);
    let by_header = json!({"name": "Bo", "email": "bo@example.com"});
    let h1 = lead(&t, "198.51.100.1", by_header.clone(), Some("idem-key-000001"));
    let h2 = lead(&t, "198.51.100.1", by_header, Some("idem-key-000001"));
    assert_eq!((h1.status, h2.status), (201, 200));
    assert_eq!(widget_leads(&t), 3);
    let used = t.p.sql(&format!("SELECT count FROM usage_counters WHERE tenant_id = '{ACME}'"));
    assert_eq!(used[0]["count"], 3, "replays do not count against the cap");
    assert_eq!(
        lead(&t, "198.51.100.1", json!({"name": "X", "email": "x@example.com", "submission_id": "bad id"}), None)
            .status,
        422
    );
    // The form marks the address required; a blank one is refused and stores nothing.
    for email in ["", "   "] {
        let blank = lead(&t, "198.51.100.1", json!({"name": "No Mail", "email": email}), None);
        assert_eq!((blank.status, error_code(&blank)), (422, "invalid_field".to_string()), "{email:?}");
    }
    // A bot that fills the honeypot hears "received" whatever else it sent, a bad key included.
    let bot =
        lead(&t, "198.51.100.1", json!({"name": "Bot", "email": "b@example.com", "website": "x"}), Some("bad key!"));
    assert_eq!(bot.status, 202, "{}", body_str(&bot));
    assert_eq!(widget_leads(&t), 3, "refused leads write no contact");
}

#[test]
fn a_flood_of_made_up_keys_stops_before_d1() {
    let t = TestApp::new();
    t.p.limits.borrow_mut().insert(Limit::GateMiss, 2);
    let probe = |key: &str| {
        t.call(
            Request::new(Method::Get, &format!("/api/widget/v1/config?key={key}"))
                .with_header("host", API)
                .with_header("origin", SHOP)
                .with_header("cf-connecting-ip", "203.0.113.66"),
        )
    };
    let fake = |n: u32| format!("pk_{}", format!("{n:0>52}").replace('0', "a"));
    assert_eq!(probe(&fake(1)).status, 403);
    assert_eq!(probe(&fake(2)).status, 403);
    let before = t.p.queries.get();
    assert_eq!(probe(&fake(3)).status, 403);
    assert_eq!(t.p.queries.get(), before, "the third miss from one address never reaches D1");
    // The known key, once warm, never consults the miss limiter.
    t.p.limits.borrow_mut().insert(Limit::GateMiss, 100);
    assert_eq!(probe(&t.demo.acme_key).status, 200);
    t.p.limits.borrow_mut().insert(Limit::GateMiss, 0);
    assert_eq!(probe(&t.demo.acme_key).status, 200, "a warm allowed key is not limited");
}

// ---- 4. Domain squatting ------------------------------------------------------------------------

#[test]
fn an_unproved_claim_blocks_nobody_and_loses_to_the_first_verification() {
    let t = TestApp::new();
    let globex = t.login("admin@globex.test");
    let acme = t.login("admin@acme.test");
    let squat = json_of(&register(&t, &globex, GLOBEX, "*.example.com"));
    assert_eq!(squat["status"], "pending");
    let mine = register(&t, &acme, ACME, "www.example.com");
    assert_eq!(mine.status, 201, "a pending claim must not block: {}", body_str(&mine));
    let mine = json_of(&mine);
    let (id, name, token) = (
        mine["id"].as_str().unwrap(),
        mine["verification"]["name"].as_str().unwrap(),
        mine["verification"]["value"].as_str().unwrap(),
    );
    t.p.dns.borrow_mut().insert(name.into(), vec![token.into()]);
    let v = t.req(Method::Post, &format!("/api/clients/{ACME}/domains/{id}/verify"), Some(&acme), None);
    assert_eq!(json_of(&v)["status"], "verified", "{}", body_str(&v));
    let sid = squat["id"].as_str().unwrap();
    let lost = t.p.sql(&format!("SELECT status, status_reason FROM domains WHERE id = '{sid}'"));
    assert_eq!(lost[0]["status"], "failed");
    assert!(lost[0]["status_reason"].as_str().unwrap().contains("another client verified www.example.com first"));
    assert_eq!(audit_actions(&t, GLOBEX, "domain.claim_lost"), 1);
    // Even with a valid proof, the loser cannot verify over the winner now.
    t.p.dns.borrow_mut().insert(
        squat["verification"]["name"].as_str().unwrap().into(),
        vec![squat["verification"]["value"].as_str().unwrap().into()],
    );
    let r = t.req(Method::Post, &format!("/api/clients/{GLOBEX}/domains/{sid}/verify"), Some(&globex), None);
    assert_eq!(r.status, 409);
    assert_eq!(error_code(&r), "domain_taken");
    assert_eq!(register(&t, &globex, GLOBEX, "shop.www.example.com").status, 201, "not overlapping");
    assert_eq!(register(&t, &globex, GLOBEX, "www.example.com").status, 409, "verified names block");
}

#[test]
fn pending_claims_expire_after_the_configured_days() {
    let t = TestApp::new();
    let globex = t.login("admin@globex.test");
    let id = json_of(&register(&t, &globex, GLOBEX, "squat.example.org"))["id"].as_str().unwrap().to_string();
    let run = |t: &TestApp| {
        let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
        pollster::block_on(app.scheduled("recheck-now")).unwrap()
    };
    t.p.now_ms.set(t.p.now_ms.get() + 6 * 86_400_000);
    assert_eq!(run(&t)["expired_claims"]["expired"], 0);
    t.p.now_ms.set(t.p.now_ms.get() + 2 * 86_400_000);
    assert_eq!(run(&t)["expired_claims"]["expired"], 1);
    let row = t.p.sql(&format!("SELECT status, status_reason FROM domains WHERE id = '{id}'"));
    assert_eq!(row[0]["status"], "failed");
    assert!(row[0]["status_reason"].as_str().unwrap().contains("expired"));
    assert_eq!(audit_actions(&t, GLOBEX, "domain.expired"), 1);
}

// ---- 5. Lockout: per (email, IP) and per IP; Turnstile past the email threshold ------------

#[test]
fn guesses_from_one_address_never_lock_the_owner_out_elsewhere() {
    let t = TestApp::with_config(test_config(&[("TURNSTILE_SECRET_KEY", "ts-secret"), ("LOGIN_TURNSTILE_AFTER", "8")]));
    let email = "admin@gatehouse.test";
    let good = t.password(email);
    for _ in 0..5 {
        assert_eq!(login_body(&t, email, "wrong-password!", Some("203.0.113.1"), json!({})).status, 401);
    }
    let blocked = login_body(&t, email, &good, Some("203.0.113.1"), json!({}));
    assert_eq!(blocked.status, 429, "the guessing address is stopped");
    assert!(blocked.header("retry-after").is_some());
    let owner = login_body(&t, email, &good, Some("198.51.100.7"), json!({}));
    assert_eq!(owner.status, 200, "the owner on a fresh address gets in: {}", body_str(&owner));
    // Guesses spread over many addresses push the email past the threshold: a challenge, not a lock.
    for n in 0..8 {
        login_body(&t, email, "wrong-password!", Some(&format!("192.0.2.{n}")), json!({}));
    }
    let challenged = login_body(&t, email, &good, Some("198.51.100.8"), json!({}));
    assert_eq!(challenged.status, 403);
    assert_eq!(error_code(&challenged), "turnstile_required");
    let bad = login_body(&t, email, &good, Some("198.51.100.8"), json!({"turnstile_token": "forged"}));
    assert_eq!(error_code(&bad), "turnstile_failed");
    let passed = login_body(&t, email, &good, Some("198.51.100.8"), json!({"turnstile_token": "pass"}));
    assert_eq!(passed.status, 200, "{}", body_str(&passed));
    let sent = t.p.posts.borrow();
    let (url, form) = sent.last().unwrap();
    assert_eq!(url, "https://challenges.cloudflare.com/turnstile/v0/siteverify");
    assert!(
        form.contains(&("secret".into(), "ts-secret".into()))
            && form.contains(&("remoteip".into(), "198.51.100.8".into()))
    );
}

#[test]
fn callers_without_an_address_share_no_bucket() {
    let t = TestApp::new();
    let email = "user@acme.test";
    for _ in 0..6 {
        assert_eq!(login_body(&t, email, "wrong-password!", None, json!({})).status, 401);
    }
    assert_eq!(login_body(&t, "admin@acme.test", &t.password("admin@acme.test"), None, json!({})).status, 200);
    // Without Turnstile configured, an email past the threshold waits out its window instead.
    for _ in 0..5 {
        login_body(&t, email, "wrong-password!", None, json!({}));
    }
    let r = login_body(&t, email, &t.password(email), None, json!({}));
    assert_eq!(r.status, 429, "{}", body_str(&r));
    let wait: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((840..=900).contains(&wait), "a 15-minute window: {wait}");
    t.p.now_ms.set(t.p.now_ms.get() + 14 * 60 * 1000);
    assert_eq!(login_body(&t, email, &t.password(email), None, json!({})).status, 429, "still inside the window");
    t.p.now_ms.set(t.p.now_ms.get() + 2 * 60 * 1000);
    assert_eq!(login_body(&t, email, &t.password(email), None, json!({})).status, 200);
}

// ---- 6. Branding assets are branding's --------------------------------------------------------

#[test]
fn files_write_cannot_delete_a_branding_asset() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
    let r = t.call(
        Request::new(Method::Post, &format!("/api/clients/{ACME}/branding/logo"))
            .with_header("host", API)
            .with_header("authorization", &format!("Bearer {admin}"))
            .with_header("content-type", "image/png")
            .with_body(png.to_vec()),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let logo = json_of(&r)["logo_file_id"]["value"].as_str().map(String::from).unwrap_or_else(|| {
        t.p.sql("SELECT id FROM files WHERE area = 'branding'")[0]["id"].as_str().unwrap().to_string()
    });
    let user = t.login("user@acme.test");
    let del = t.req(Method::Delete, &format!("/api/clients/{ACME}/files/{logo}"), Some(&user), None);
    assert_eq!(del.status, 403, "{}", body_str(&del));
    assert!(body_str(&del).contains("branding:write"));
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM files WHERE area = 'branding'")[0]["n"], 1);
    let list = t.req(Method::Get, &format!("/api/clients/{ACME}/files?area=branding"), Some(&user), None);
    assert_eq!(list.status, 200, "branding:read lists branding assets");
    assert_eq!(t.req(Method::Delete, &format!("/api/clients/{ACME}/files/{logo}"), Some(&admin), None).status, 204);
}

// ---- 7. Every staff access is audited ----------------------------------------------------------

#[test]
fn staff_access_is_audited_whatever_the_method() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let up = upload(&t, &admin, ACME, "a.txt", "text/plain", b"hello");
    let file = json_of(&up)["id"].as_str().unwrap().to_string();
    let staff = t.login("admin@gatehouse.test");
    let count = |t: &TestApp| {
        t.p.sql("SELECT count(*) AS n FROM audit_log WHERE action = 'platform.access'")[0]["n"].as_i64().unwrap()
    };
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::Post, format!("/api/clients/{ACME}/files/{file}/sign"), None),
        (Method::Head, format!("/api/clients/{ACME}/files/{file}"), None),
        (Method::Post, format!("/api/clients/{ACME}/domains/check"), Some(json!({"origin": SHOP}))),
        (Method::Get, format!("/api/agencies/{AGENCY}"), None),
        (Method::Get, "/api/users".to_string(), None),
        (Method::Get, "/api/clients".to_string(), None),
        (Method::Get, "/api/agencies".to_string(), None),
        (Method::Get, format!("/api/agencies/{AGENCY}/branding"), None),
    ];
    for (m, path, body) in calls {
        let before = count(&t);
        let r = t.req(m, &path, Some(&staff), body);
        assert!(r.status < 300, "{path}: {} {}", r.status, body_str(&r));
        assert_eq!(count(&t), before + 1, "{path} left no platform.access row");
    }
    // A member acting in their own tenant is not staff.
    let before = count(&t);
    t.req(Method::Get, &format!("/api/clients/{ACME}"), Some(&admin), None);
    assert_eq!(count(&t), before);
}

// ---- 8. A suspended agency suspends its clients -------------------------------------------------

#[test]
fn suspending_an_agency_reaches_its_clients_and_reactivating_restores_them() {
    let t = TestApp::new();
    let staff = t.login("admin@gatehouse.test");
    let acme = t.login("admin@acme.test");
    let config = |t: &TestApp| {
        t.call(
            Request::new(Method::Get, &format!("/api/widget/v1/config?key={}", t.demo.acme_key))
                .with_header("host", API)
                .with_header("origin", SHOP),
        )
    };
    assert_eq!(config(&t).status, 200);
    let set = |t: &TestApp, status: &str| {
        let r = t.req(Method::Put, &format!("/api/agencies/{AGENCY}"), Some(&staff), Some(json!({"status": status})));
        assert_eq!(r.status, 200, "{}", body_str(&r));
    };
    set(&t, "suspended");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}"), Some(&acme), None).status, 401, "API access");
    let login = t.req(
        Method::Post,
        "/api/auth/login",
        None,
        Some(json!({"email": "admin@acme.test", "password": t.password("admin@acme.test")})),
    );
    assert_eq!(login.status, 403, "logins: {}", body_str(&login));
    let portal = t.req_on("acme.portal.test", Method::Get, "/", None, None);
    assert_eq!(portal.status, 403, "portals");
    assert_eq!(config(&t).status, 403, "widgets");
    assert_eq!(t.p.sql(&format!("SELECT status FROM clients WHERE id = '{ACME}'"))[0]["status"], "active");
    let c = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}"), Some(&staff), None));
    assert_eq!(c["effective_status"], "suspended");
    set(&t, "active");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}"), Some(&acme), None).status, 200);
    assert_eq!(t.req_on("acme.portal.test", Method::Get, "/", None, None).status, 200);
    assert_eq!(config(&t).status, 200);
}

// ---- 9. Audit rows only for changes that happened -------------------------------------------

#[test]
fn deleting_or_revoking_nothing_writes_no_audit_row() {
    let t = TestApp::new();
    let acme = t.login("admin@acme.test");
    let total = |t: &TestApp| t.p.sql("SELECT count(*) AS n FROM audit_log")[0]["n"].as_i64().unwrap();
    let before = total(&t);
    for path in [
        format!("/api/clients/{ACME}/contacts/anything"),
        format!("/api/clients/{ACME}/contacts/con_000000000000000000000099"),
        format!("/api/clients/{ACME}/domains/dom_000000000000000000000099"),
        format!("/api/clients/{ACME}/files/fil_000000000000000000000099"),
        format!("/api/users/usr_000000000000000000000099/revoke-access?client_id={ACME}"),
    ] {
        assert_eq!(t.req(Method::Delete, &path, Some(&acme), None).status, 404, "{path}");
    }
    assert_eq!(total(&t), before, "no audit row for a change that did not happen");
    let id = json_of(&t.req(
        Method::Post,
        &format!("/api/clients/{ACME}/contacts"),
        Some(&acme),
        Some(json!({"name": "Real"})),
    ))["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(t.req(Method::Delete, &format!("/api/clients/{ACME}/contacts/{id}"), Some(&acme), None).status, 204);
    assert_eq!(audit_actions(&t, ACME, "contact.deleted"), 1);
}

// ---- 10. Adding a person reveals nothing about other tenants ---------------------------------

#[test]
fn adding_a_person_answers_the_same_for_known_and_unknown_emails() {
    let t = TestApp::new();
    let acme = t.login("admin@acme.test");
    let known = t.req(Method::Post, "/api/users", Some(&acme), Some(json!({"email": "admin@globex.test"})));
    let unknown = t.req(Method::Post, "/api/users", Some(&acme), Some(json!({"email": "nobody@new.test"})));
    assert_eq!((known.status, unknown.status), (202, 202), "{}", body_str(&known));
    let shape = |r: &Response| {
        let mut v = json_of(r);
        for k in ["id", "email", "expires_at"] {
            v["invitation"].as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(shape(&known), shape(&unknown));
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM users WHERE email = 'nobody@new.test'")[0]["n"], 0, "no account yet");
    let token_of = |email: &str| {
        let body = t.p.sql(&format!("SELECT body FROM outbox WHERE to_email = '{email}'"))[0]["body"]
            .as_str()
            .unwrap()
            .to_string();
        let at = body.find("inv_").unwrap();
        body[at..at + 4 + 52].to_string()
    };
    // The invitee proves the address by accepting, and sets their own password.
    let tok = token_of("nobody@new.test");
    let weak = t.req(
        Method::Post,
        "/api/invitations/accept",
        None,
        Some(json!({"token": tok, "name": "N", "password": "short"})),
    );
    assert_eq!(weak.status, 422);
    let ok = t.req(
        Method::Post,
        "/api/invitations/accept",
        None,
        Some(json!({"token": tok, "name": "New Body", "password": "a-long-new-password"})),
    );
    assert_eq!(ok.status, 200, "{}", body_str(&ok));
    let again = t.req(
        Method::Post,
        "/api/invitations/accept",
        None,
        Some(json!({"token": tok, "name": "New Body", "password": "a-long-new-password"})),
    );
    assert_eq!(again.status, 409, "accepted once");
    let login = t.req(
        Method::Post,
        "/api/auth/login",
        None,
        Some(json!({"email": "nobody@new.test", "password": "a-long-new-password"})),
    );
    assert_eq!(json_of(&login)["context"]["role"], "client_viewer");
    // An existing account joins without anyone learning or setting its password.
    let ok =
        t.req(Method::Post, "/api/invitations/accept", None, Some(json!({"token": token_of("admin@globex.test")})));
    assert_eq!(ok.status, 200, "{}", body_str(&ok));
    assert_eq!(json_of(&ok)["user_id"], "usr_000000000000000000000007");
    // Invitations follow the grant rules.
    let high =
        t.req(Method::Post, "/api/users", Some(&acme), Some(json!({"email": "x@new.test", "role": "agency_user"})));
    assert_eq!(high.status, 422);
    let user = t.login("user@acme.test");
    assert_eq!(t.req(Method::Post, "/api/users", Some(&user), Some(json!({"email": "y@new.test"}))).status, 403);
}

// ---- 11. Signed links: one hour at most, and revocable -----------------------------------------

#[test]
fn signed_links_live_an_hour_at_most_and_can_be_revoked() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let up = upload(&t, &admin, ACME, "a.txt", "text/plain", b"hello");
    let file = json_of(&up)["id"].as_str().unwrap().to_string();
    let sign = |ttl: Option<i64>| {
        t.req(
            Method::Post,
            &format!("/api/clients/{ACME}/files/{file}/sign"),
            Some(&admin),
            ttl.map(|s| json!({"expires_in": s})),
        )
    };
    assert_eq!(sign(Some(3601)).status, 422);
    assert_eq!(sign(Some(7 * 24 * 3600)).status, 422);
    let link = json_of(&sign(Some(3600)))["url"].as_str().unwrap().to_string();
    let fetch = |t: &TestApp, url: &str| t.call(Request::new(Method::Get, url).with_header("host", API));
    assert_eq!(fetch(&t, &link).status, 200);
    let r = t.req(Method::Post, &format!("/api/clients/{ACME}/files/{file}/revoke-links"), Some(&admin), None);
    assert_eq!(r.status, 204);
    assert_eq!(fetch(&t, &link).status, 403, "revoked");
    let fresh = json_of(&sign(None))["url"].as_str().unwrap().to_string();
    assert_eq!(fetch(&t, &fresh).status, 200, "new links work");
    assert_eq!(audit_actions(&t, ACME, "file.links_revoked"), 1);
    let longer = TestApp::with_config(test_config(&[("MAX_SIGNED_URL_TTL_SECS", "86400")]));
    let tok = longer.login("admin@acme.test");
    let up = upload(&longer, &tok, ACME, "a.txt", "text/plain", b"hello");
    let f = json_of(&up)["id"].as_str().unwrap().to_string();
    let r = longer.req(
        Method::Post,
        &format!("/api/clients/{ACME}/files/{f}/sign"),
        Some(&tok),
        Some(json!({"expires_in": 86400})),
    );
    assert_eq!(r.status, 200, "configurable");
}

// ---- 12. Staff network details stay with staff --------------------------------------------------

#[test]
fn client_audit_views_redact_staff_network_details() {
    let t = TestApp::new();
    let staff = t.login("admin@gatehouse.test");
    let r = t.call(
        Request::new(Method::Put, &format!("/api/clients/{ACME}"))
            .with_header("host", API)
            .with_header("authorization", &format!("Bearer {staff}"))
            .with_header("content-type", "application/json")
            .with_header("cf-connecting-ip", "10.9.8.7")
            .with_header("user-agent", "staff-laptop/1.0")
            .with_body(json!({"phone": "+1 555 0100"}).to_string()),
    );
    assert_eq!(r.status, 200);
    let acme = t.login("admin@acme.test");
    let view = |token: &str| {
        let items = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}/audit?limit=100"), Some(token), None))
            ["items"]
            .clone();
        items.as_array().unwrap().iter().find(|a| a["action"] == "client.updated").cloned().unwrap()
    };
    let seen = view(&acme);
    assert_eq!(seen["ip"], Value::Null);
    assert_eq!(seen["user_agent"], Value::Null);
    assert_eq!(seen["network_redacted"], true);
    let own = view(&staff);
    assert_eq!(own["ip"], "10.9.8.7");
    assert_eq!(own["user_agent"], "staff-laptop/1.0");
}

// ---- 13. Consumer mail domains ----------------------------------------------------------------

#[test]
fn consumer_mail_domains_are_refused() {
    let t = TestApp::new();
    let acme = t.login("admin@acme.test");
    for name in [
        "gmail.com",
        "www.gmail.com",
        "*.outlook.com",
        "gmx.de",
        "gmx.net",
        "yandex.ru",
        "mail.ru",
        "qq.com",
        "163.com",
        "proton.me",
    ] {
        let r = register(&t, &acme, ACME, name);
        assert_eq!(r.status, 422, "{name}: {}", body_str(&r));
        assert_eq!(error_code(&r), "consumer_domain", "{name}");
    }
    for ok in ["gmx-shop.de", "mygmail.com", "acme-plumbing.com"] {
        assert_eq!(register(&t, &acme, ACME, ok).status, 201, "{ok}");
    }
}

// ---- 14. JWT signing keys rotate by kid ---------------------------------------------------------

#[test]
fn jwt_keys_rotate_without_logging_everyone_out() {
    let old_secret = "native-test-jwt-secret-0123456789abcdef0123";
    let before = TestApp::new();
    let token = before.login("admin@acme.test");
    let me = |t: &TestApp, tok: &str| t.req(Method::Get, "/api/me", Some(tok), None).status;
    // Same database, new current key, the old one retired: old tokens still work.
    let rotated_cfg = test_config(&[
        ("JWT_SECRET", "rotated-jwt-secret-0123456789abcdef0123456"),
        ("JWT_KEY_ID", "k2"),
        ("RETIRED_JWT_SECRETS", &format!("k1:{old_secret}")),
    ]);
    let rotated = TestApp { p: before.p, cfg: rotated_cfg, state: before.state, demo: before.demo };
    assert_eq!(me(&rotated, &token), 200);
    let new_token = rotated.login("admin@acme.test");
    assert_eq!(me(&rotated, &new_token), 200);
    // Once the old key is dropped, its tokens stop; new ones keep working.
    let done = TestApp {
        p: rotated.p,
        cfg: test_config(&[("JWT_SECRET", "rotated-jwt-secret-0123456789abcdef0123456"), ("JWT_KEY_ID", "k2")]),
        state: rotated.state,
        demo: rotated.demo,
    };
    assert_eq!(me(&done, &token), 401);
    assert_eq!(me(&done, &new_token), 200);
}

// ---- Signed visitor identity on widget leads ----------------------------------------------

fn sign(secret: &str, user: &str, email: &str, expires: i64) -> Value {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{user}\n{email}\n{expires}").as_bytes());
    let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    json!({"user_id": user, "email": email, "expires": expires, "signature": signature})
}

#[test]
fn a_signed_visitor_identity_is_trusted_only_when_valid_and_signed_with_the_clients_secret() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let secret = "acme-widget-secret-0123456789";
    let put = t.req(
        Method::Put,
        &format!("/api/clients/{ACME}/settings"),
        Some(&admin),
        Some(json!({"widget": {"identity_secret": secret}})),
    );
    assert_eq!(put.status, 200, "{}", body_str(&put));
    let later = t.p.now_ms.get() / 1000 + 600;
    let external = |email: &str| {
        t.p.sql(&format!("SELECT external_user_id FROM contacts WHERE email = '{email}'"))[0]["external_user_id"]
            .clone()
    };
    // Valid: the contact carries the visitor's id and the signed email wins over the typed one.
    let r = lead(
        &t,
        "198.51.100.1",
        json!({"name": "Vee", "email": "typed@example.com", "identity": sign(secret, "cust-7", "vee@example.com", later)}),
        None,
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    assert_eq!(json_of(&r)["identity"], "verified");
    assert_eq!(external("vee@example.com"), json!("cust-7"));
    // Expired, forged, or signed with another secret: ignored, never trusted; the lead still lands.
    for (i, identity) in [
        sign(secret, "cust-8", "exp@example.com", t.p.now_ms.get() / 1000 - 1),
        sign("not-the-secret", "cust-9", "forged@example.com", later),
        json!({"user_id": "cust-10", "email": "bare@example.com", "expires": later, "signature": "00".repeat(32)}),
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("anon{i}@example.com");
        let r = lead(&t, "198.51.100.2", json!({"name": "Anon", "email": email, "identity": identity}), None);
        assert_eq!(r.status, 201, "{}", body_str(&r));
        assert_eq!(json_of(&r)["identity"], "ignored");
        assert_eq!(external(&email), Value::Null, "an ignored identity attaches nothing");
    }
    // Rotating the secret retires every signature made with the old one.
    t.req(
        Method::Put,
        &format!("/api/clients/{ACME}/settings"),
        Some(&admin),
        Some(json!({"widget": {"identity_secret": "rotated-secret-abcdef0123"}})),
    );
    let r = lead(
        &t,
        "198.51.100.3",
        json!({"name": "Old", "email": "old@example.com", "identity": sign(secret, "cust-7", "vee2@example.com", later)}),
        None,
    );
    assert_eq!(json_of(&r)["identity"], "ignored");
}
