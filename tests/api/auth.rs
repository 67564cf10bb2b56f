//! Native API tests: login, tokens, context switching and tenant resolution by Host.

use crate::common::*;
use gatehouse::platform::http::{Method, Request};
use gatehouse::seed::{ACME, GLOBEX};
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

fn reset_token(t: &TestApp, email: &str) -> String {
    let mail = t.p.sql(&format!(
        "SELECT body FROM outbox WHERE to_email = '{email}' AND subject = 'Reset your password' ORDER BY created_at DESC, rowid DESC LIMIT 1"
    ));
    let body = mail[0]["body"].as_str().unwrap().to_string();
    let at = body.find("pwr_").unwrap();
    body[at..at + 4 + 52].to_string()
}

fn login_with(t: &TestApp, email: &str, password: &str) -> gatehouse::platform::http::Response {
    t.req(Method::Post, "/api/auth/login", None, Some(json!({"email": email, "password": password})))
}

#[test]
fn a_password_reset_is_single_use_ends_every_session_and_answers_alike_for_unknown_emails() {
    let t = TestApp::new();
    let old = t.login("user@acme.test");
    assert_eq!(t.req(Method::Get, "/api/me", Some(&old), None).status, 200);
    let known = t.req(Method::Post, "/api/auth/password-reset", None, Some(json!({"email": "user@acme.test"})));
    let unknown = t.req(Method::Post, "/api/auth/password-reset", None, Some(json!({"email": "nobody@example.org"})));
    assert_eq!((known.status, body_str(&known)), (unknown.status, body_str(&unknown)), "no enumeration");
    assert_eq!(known.status, 202);
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM outbox WHERE to_email = 'nobody@example.org'")[0]["n"], 0);
    let token = reset_token(&t, "user@acme.test");
    let stored = t.p.sql("SELECT token_hash FROM password_resets");
    assert!(!stored[0]["token_hash"].as_str().unwrap().contains(&token[4..]), "stored hashed");

    let confirm = |token: &str, password: &str| {
        t.req(
            Method::Post,
            "/api/auth/password-reset/confirm",
            None,
            Some(json!({"token": token, "password": password})),
        )
    };
    assert_eq!(error_code(&confirm(&token, "short")), "weak_password");
    let r = confirm(&token, "a brand new passphrase");
    assert_eq!(r.status, 200, "{}", body_str(&r));
    // Every earlier session has ended; the new password works and the old one does not.
    let r = t.req(Method::Get, "/api/me", Some(&old), None);
    assert_eq!((r.status, error_code(&r).as_str()), (401, "session_ended"));
    assert_eq!(login_with(&t, "user@acme.test", &t.password("user@acme.test")).status, 401);
    let fresh = json_of(&login_with(&t, "user@acme.test", "a brand new passphrase"))["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(t.req(Method::Get, "/api/me", Some(&fresh), None).status, 200);
    // Single use.
    let again = confirm(&token, "another new passphrase");
    assert_eq!((again.status, error_code(&again).as_str()), (400, "invalid_reset_token"));
    // An hour, no more.
    t.req(Method::Post, "/api/auth/password-reset", None, Some(json!({"email": "user@acme.test"})));
    let late = reset_token(&t, "user@acme.test");
    t.p.now_ms.set(t.p.now_ms.get() + 61 * 60 * 1000);
    assert_eq!(error_code(&confirm(&late, "too late passphrase")), "invalid_reset_token");
    assert_eq!(error_code(&confirm("pwr_forged", "whatever passphrase")), "invalid_reset_token");
    // Both the reset and nothing else are in the audit log.
    let audit = t.p.sql("SELECT count(*) AS n FROM audit_log WHERE action = 'user.password_reset'");
    assert_eq!(audit[0]["n"], 1);
}

#[test]
fn at_most_three_open_resets_are_mailed_per_account() {
    let t = TestApp::new();
    for _ in 0..5 {
        let r = t.req(Method::Post, "/api/auth/password-reset", None, Some(json!({"email": "viewer@acme.test"})));
        assert_eq!(r.status, 202);
    }
    let n = t.p.sql("SELECT count(*) AS n FROM outbox WHERE to_email = 'viewer@acme.test'")[0]["n"].as_i64().unwrap();
    assert_eq!(n, 3);
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM password_resets")[0]["n"], 3);
}

#[test]
fn changing_a_password_needs_the_current_one_and_ends_every_session() {
    let t = TestApp::new();
    let email = "admin@acme.test";
    let current = t.password(email);
    let a = t.login(email);
    let b = t.login(email);
    let change = |token: &str, cur: &str, new: &str| {
        t.req(
            Method::Post,
            "/api/me/password",
            Some(token),
            Some(json!({"current_password": cur, "new_password": new})),
        )
    };
    let wrong = change(&a, "not my password", "a new long passphrase");
    assert_eq!((wrong.status, error_code(&wrong).as_str()), (403, "wrong_password"));
    assert_eq!(t.req(Method::Get, "/api/me", Some(&b), None).status, 200, "a refused change ends nothing");
    assert_eq!(change(&a, &current, "a new long passphrase").status, 204);
    for token in [&a, &b] {
        assert_eq!(t.req(Method::Get, "/api/me", Some(token), None).status, 401);
    }
    assert_eq!(login_with(&t, email, "a new long passphrase").status, 200);
    assert_eq!(
        t.req(Method::Post, "/api/me/password", None, Some(json!({"current_password": "x", "new_password": "y"})))
            .status,
        401
    );
}

#[test]
fn mail_goes_to_the_mail_api_is_retried_and_ends_failed_without_losing_the_invitation() {
    use gatehouse::platform::ports::PostOutcome;
    use gatehouse::platform::{FollowUp, Outbox};
    let t = TestApp::with_config(test_config(&[
        ("MAIL_API_URL", "http://127.0.0.1:9/send"),
        ("MAIL_API_KEY", "mk_test_key"),
        ("MAIL_FROM", "Acme <hello@acme.test>"),
    ]));
    let admin = t.login("admin@acme.test");
    let send = || {
        let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
        pollster::block_on(app.follow_up(FollowUp {
            outbox: Outbox::Untouched,
            shards: Vec::new(),
            mail: true,
            counters: Vec::new(),
        }))
        .unwrap();
    };
    let unavailable = || PostOutcome::Answered { status: 503, retry_after: None, head: "try later".into() };
    t.p.receiver_script.borrow_mut().push_back(unavailable());
    let r = t.req(Method::Post, "/api/users", Some(&admin), Some(json!({"email": "new.person@example.org"})));
    assert_eq!(r.status, 202, "{}", body_str(&r));
    send();
    let row = |field: &str| {
        t.p.sql(&format!("SELECT {field} AS v FROM outbox WHERE to_email = 'new.person@example.org'"))[0]["v"].clone()
    };
    assert_eq!(row("status"), "pending");
    assert!(row("last_error").as_str().unwrap().contains("503"));
    send(); // not due yet: nothing is sent
    assert_eq!(t.p.webhook_posts.borrow().len(), 1);
    t.p.now_ms.set(t.p.now_ms.get() + 61_000);
    send();
    assert_eq!(row("status"), "sent");
    let posts = t.p.webhook_posts.borrow().clone();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].url, "http://127.0.0.1:9/send");
    assert_eq!(posts[1].header("authorization"), "Bearer mk_test_key");
    let body: serde_json::Value = serde_json::from_str(&posts[1].body).unwrap();
    assert_eq!(
        (body["from"].as_str(), body["to"].as_str()),
        (Some("Acme <hello@acme.test>"), Some("new.person@example.org"))
    );
    assert!(body["text"].as_str().unwrap().contains("inv_"));

    // A mail API that never answers: five attempts, then `failed`; the invitation is still there.
    for _ in 0..5 {
        t.p.receiver_script.borrow_mut().push_back(unavailable());
    }
    let r = t.req(Method::Post, "/api/users", Some(&admin), Some(json!({"email": "unlucky@example.org"})));
    assert_eq!(r.status, 202);
    for _ in 0..6 {
        send();
        t.p.now_ms.set(t.p.now_ms.get() + 121 * 60_000);
    }
    let status = t.p.sql("SELECT status, attempts FROM outbox WHERE to_email = 'unlucky@example.org'");
    assert_eq!((status[0]["status"].as_str(), status[0]["attempts"].as_i64()), (Some("failed"), Some(5)));
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM invitations WHERE email = 'unlucky@example.org'")[0]["n"], 1);
}

#[test]
fn the_dev_mailbox_exists_only_when_switched_on() {
    let off = TestApp::new();
    assert_eq!(off.req(Method::Get, "/api/dev/mailbox", None, None).status, 404);
    let on = TestApp::with_config(test_config(&[("DEV_MAILBOX", "true")]));
    on.req(Method::Post, "/api/auth/password-reset", None, Some(json!({"email": "user@acme.test"})));
    let r = on.req(Method::Get, "/api/dev/mailbox?to=user@acme.test", None, None);
    assert_eq!(r.status, 200);
    let items = json_of(&r)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert!(items[0]["body"].as_str().unwrap().contains("pwr_"));
}

fn invite_token(t: &TestApp, email: &str) -> String {
    let mail = t.p.sql(&format!(
        "SELECT body FROM outbox WHERE to_email = '{email}' ORDER BY created_at DESC, rowid DESC LIMIT 1"
    ));
    let body = mail[0]["body"].as_str().unwrap().to_string();
    let at = body.find("inv_").unwrap();
    body[at..at + 4 + 52].to_string()
}

#[test]
fn a_client_invitation_mails_a_link_to_the_portal_whose_page_accepts_only_that_clients_invitations() {
    use gatehouse::seed::ACME;
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let r = t.req_on(
        "api.test:8443",
        Method::Post,
        "/api/users",
        Some(&admin),
        Some(json!({"email": "new.hire@acme.test", "tenant": ACME})),
    );
    assert_eq!(r.status, 202, "{}", body_str(&r));
    let mail = t.p.sql("SELECT body FROM outbox WHERE to_email = 'new.hire@acme.test'");
    let body = mail[0]["body"].as_str().unwrap();
    let token = invite_token(&t, "new.hire@acme.test");
    // The portal's base domain, the request's scheme (https here) and the port of the Host it came to.
    assert!(body.contains(&format!("https://acme.portal.test:8443/invite#token={token}")), "{body}");
    assert!(body.contains("Acme Plumbing"), "{body}");
    // The page is the portal's shell, in the portal's name.
    let page = t.req_on("acme.portal.test", Method::Get, "/invite", None, None);
    assert_eq!(page.status, 200);
    assert!(body_str(&page).contains("data-client-name=\"Acme Plumbing\""));
    // Another client's portal does not know the invitation; the right one asks for an account first.
    let accept =
        |host: &str, body: serde_json::Value| t.req_on(host, Method::Post, "/api/invitations/accept", None, Some(body));
    let r = accept("globex.portal.test", json!({"token": token}));
    assert_eq!((r.status, error_code(&r).as_str()), (409, "invitation_invalid"));
    let r = accept("acme.portal.test", json!({"token": token}));
    assert_eq!((r.status, error_code(&r).as_str()), (422, "password_required"));
    let r = accept("acme.portal.test", json!({"token": token, "name": "New Hire", "password": "a-long-new-password"}));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(json_of(&r)["tenant"], ACME);
}

#[test]
fn signup_reset_and_invitation_acceptance_are_capped_per_client_ip() {
    use gatehouse::platform::ports::Limit;
    let t = TestApp::new();
    t.p.limits.borrow_mut().insert(Limit::AuthIp, 2);
    let from = |ip: &str, path: &str, body: serde_json::Value| {
        t.call(
            Request::new(Method::Post, path)
                .with_header("host", API)
                .with_header("cf-connecting-ip", ip)
                .with_header("content-type", "application/json")
                .with_body(body.to_string()),
        )
    };
    let reset = |ip: &str| from(ip, "/api/auth/password-reset", json!({"email": "user@acme.test"}));
    assert_eq!(reset("192.0.2.1").status, 202);
    assert_eq!(from("192.0.2.1", "/api/invitations/accept", json!({"token": "inv_nope"})).status, 409);
    let r = reset("192.0.2.1");
    assert_eq!((r.status, error_code(&r).as_str()), (429, "rate_limited"));
    assert_eq!(r.header("retry-after"), Some("60"));
    let r = from("192.0.2.1", "/api/signup", json!({}));
    assert_eq!(r.status, 429, "signup shares the cap, before its body is read");
    // Another address is not affected, and the capped request mailed nothing.
    assert_eq!(reset("192.0.2.2").status, 202);
    let mailed = t.p.sql("SELECT count(*) AS n FROM outbox WHERE to_email = 'user@acme.test'");
    assert_eq!(mailed[0]["n"], 2);
}

#[test]
fn invitations_can_be_listed_resent_and_revoked_and_each_dead_end_has_its_own_code() {
    use gatehouse::seed::{ACME, GLOBEX};
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let accept = |token: &str| {
        t.req(
            Method::Post,
            "/api/invitations/accept",
            None,
            Some(json!({"token": token, "name": "New", "password": "a long enough password"})),
        )
    };
    let r = t.req(Method::Post, "/api/users", Some(&admin), Some(json!({"email": "first@example.org"})));
    let id = json_of(&r)["invitation"]["id"].as_str().unwrap().to_string();
    let first = invite_token(&t, "first@example.org");
    let listed = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}/invitations"), Some(&admin), None));
    assert!(listed["items"].as_array().unwrap().iter().any(|i| i["id"] == id.as_str() && i["status"] == "pending"));
    let listed = body_str(&t.req(Method::Get, &format!("/api/clients/{ACME}/invitations"), Some(&admin), None));
    assert!(!listed.contains(&first[4..]) && !listed.contains("token"), "no token in a list: {listed}");

    // Resent: a new token works, the old one no longer does.
    let r = t.req(Method::Post, &format!("/api/clients/{ACME}/invitations/{id}/resend"), Some(&admin), None);
    assert_eq!(r.status, 202, "{}", body_str(&r));
    let second = invite_token(&t, "first@example.org");
    assert_ne!(first, second);
    assert_eq!(error_code(&accept(&first)), "invitation_invalid");
    assert_eq!(accept(&second).status, 200);
    assert_eq!(error_code(&accept(&second)), "invitation_used");

    // Revoked.
    let r = t.req(Method::Post, "/api/users", Some(&admin), Some(json!({"email": "second@example.org"})));
    let id2 = json_of(&r)["invitation"]["id"].as_str().unwrap().to_string();
    let token2 = invite_token(&t, "second@example.org");
    assert_eq!(
        t.req(Method::Delete, &format!("/api/clients/{ACME}/invitations/{id2}"), Some(&admin), None).status,
        204
    );
    assert_eq!(error_code(&accept(&token2)), "invitation_revoked");
    let again = t.req(Method::Delete, &format!("/api/clients/{ACME}/invitations/{id2}"), Some(&admin), None);
    assert_eq!((again.status, error_code(&again).as_str()), (409, "invitation_not_pending"));

    // Expired after INVITATION_TTL_DAYS (7 by default).
    t.req(Method::Post, "/api/users", Some(&admin), Some(json!({"email": "third@example.org"})));
    let token3 = invite_token(&t, "third@example.org");
    t.p.now_ms.set(t.p.now_ms.get() + 8 * 86_400_000);
    assert_eq!(error_code(&accept(&token3)), "invitation_expired");

    // Another client's admin sees none of it; a client user manages none of it.
    let admin = t.login("admin@acme.test");
    let globex = t.login("admin@globex.test");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/invitations"), Some(&globex), None).status, 404);
    assert_eq!(
        t.req(Method::Delete, &format!("/api/clients/{GLOBEX}/invitations/{id}"), Some(&globex), None).status,
        404
    );
    let user = t.login("user@acme.test");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/invitations"), Some(&user), None).status, 403);
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/invitations"), Some(&admin), None).status, 200);
}

/// TOTP written here from RFC 6238 (HMAC-SHA1, 30 s, 6 digits), independent of the crate's.
fn totp_code(secret_b32: &str, unix_secs: i64) -> String {
    use hmac::{Hmac, Mac};
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut key, mut acc, mut bits) = (Vec::new(), 0u64, 0u32);
    for c in secret_b32.bytes() {
        acc = (acc << 5) | alphabet.iter().position(|&a| a == c).unwrap() as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            key.push((acc >> bits) as u8);
        }
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(&((unix_secs / 30) as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]);
    format!("{:06}", bin % 1_000_000)
}

#[test]
fn mfa_makes_login_two_steps_with_single_use_codes_and_recovery_codes() {
    let t = TestApp::new();
    let email = "user@acme.test";
    let token = t.login(email);
    let r = t.req(Method::Post, "/api/me/mfa/enrol", Some(&token), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let enrol = json_of(&r);
    let secret = enrol["secret"].as_str().unwrap().to_string();
    let uri = enrol["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Gatehouse%3Auser%40acme.test?secret=") && uri.contains(&secret), "{uri}");
    let stored = t.p.sql("SELECT mfa_pending_sealed FROM users WHERE email = 'user@acme.test'");
    assert!(!stored[0]["mfa_pending_sealed"].as_str().unwrap().contains(&secret), "sealed, not stored in the clear");
    let now = || t.p.now_ms.get() / 1000;
    let confirm = |code: &str| t.req(Method::Post, "/api/me/mfa/confirm", Some(&token), Some(json!({"code": code})));
    assert_eq!(error_code(&confirm("000000")), "invalid_mfa_code");
    let r = confirm(&totp_code(&secret, now()));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let codes: Vec<String> =
        json_of(&r)["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(codes.len(), 10);

    // The password alone now earns a challenge, not a session.
    let password = t.password(email);
    let step1 = |t: &TestApp| {
        let r = login_with(t, email, &password);
        assert_eq!(r.status, 200);
        let v = json_of(&r);
        assert_eq!(v["mfa_required"], true, "{v}");
        assert!(v.get("access_token").is_none());
        v["mfa_token"].as_str().unwrap().to_string()
    };
    let second = |mfa: &str, code: &str| {
        t.req(Method::Post, "/api/auth/login/mfa", None, Some(json!({"mfa_token": mfa, "code": code})))
    };
    let mfa = step1(&t);
    // The code that confirmed enrolment has been used: it does not work again.
    let r = second(&mfa, &totp_code(&secret, now()));
    assert_eq!((r.status, error_code(&r).as_str()), (401, "invalid_mfa_code"));
    t.p.now_ms.set(t.p.now_ms.get() + 30_000);
    let code = totp_code(&secret, now());
    let r = second(&mfa, &code);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let session = json_of(&r)["access_token"].as_str().unwrap().to_string();
    assert_eq!(t.req(Method::Get, "/api/me", Some(&session), None).status, 200);
    // The challenge and the code are spent.
    assert_eq!(error_code(&second(&mfa, &code)), "invalid_mfa_token");
    let mfa2 = step1(&t);
    assert_eq!(error_code(&second(&mfa2, &code)), "invalid_mfa_code", "a code works once");
    // A recovery code works once, in any case.
    let r = second(&mfa2, &codes[0].to_uppercase());
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let mfa3 = step1(&t);
    assert_eq!(error_code(&second(&mfa3, &codes[0])), "invalid_mfa_code");
    // Five wrong codes end a challenge (the spent recovery code was the first).
    for _ in 0..4 {
        assert_eq!(error_code(&second(&mfa3, "123456")), "invalid_mfa_code");
    }
    t.p.now_ms.set(t.p.now_ms.get() + 30_000);
    assert_eq!(error_code(&second(&mfa3, &totp_code(&secret, now()))), "invalid_mfa_token");
    // Off again, with a code; then the password alone signs in.
    let session = json_of(&second(&step1(&t), &codes[1]))["access_token"].as_str().unwrap().to_string();
    let r = t.req(Method::Delete, "/api/me/mfa", Some(&session), Some(json!({"code": totp_code(&secret, now())})));
    assert_eq!(r.status, 204, "{}", body_str(&r));
    assert!(json_of(&login_with(&t, email, &password))["access_token"].is_string());
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM mfa_recovery_codes")[0]["n"], 0);
}

#[test]
fn a_tenant_that_requires_mfa_walks_members_without_it_through_enrolment_at_their_next_login() {
    use gatehouse::seed::{ACME, AGENCY, GLOBEX};
    let t = TestApp::new();
    let now = || t.p.now_ms.get() / 1000;
    let multi = "multi@northwind.test";
    let password = t.password(multi);
    let session = t.login(multi);
    let first = json_of(&t.req(Method::Get, "/api/me", Some(&session), None))["context"]["tenant"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first, ACME);

    // Globex's admin requires MFA of Globex's members; a viewer-level field it is not.
    let globex_admin = t.login("admin@globex.test");
    let r =
        t.req(Method::Put, &format!("/api/clients/{GLOBEX}"), Some(&globex_admin), Some(json!({"require_mfa": true})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(json_of(&r)["require_mfa"], true);
    let audit = t.p.sql("SELECT metadata FROM audit_log WHERE action = 'client.updated' ORDER BY at DESC LIMIT 1");
    assert!(audit[0]["metadata"].as_str().unwrap().contains("require_mfa"));

    // A session in hand cannot carry a member without MFA into Globex; Acme is not affected.
    let r = t.req(Method::Post, "/api/auth/switch", Some(&session), Some(json!({"tenant": GLOBEX})));
    assert_eq!((r.status, error_code(&r).as_str()), (403, "mfa_enrolment_required"));
    assert!(json_of(&login_with(&t, multi, &password))["access_token"].is_string(), "Acme needs no MFA");

    // A login into Globex is an enrolment: a secret to scan and a challenge, no session.
    let login_globex = || {
        let r = t.req(
            Method::Post,
            "/api/auth/login",
            None,
            Some(json!({"email": multi, "password": password, "tenant": GLOBEX})),
        );
        assert_eq!(r.status, 200, "{}", body_str(&r));
        json_of(&r)
    };
    let step1 = login_globex();
    assert_eq!(step1["mfa_enrolment_required"], true, "{step1}");
    assert!(step1.get("access_token").is_none());
    assert!(step1["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    let secret = step1["secret"].as_str().unwrap().to_string();
    let mfa = step1["mfa_token"].as_str().unwrap();
    let second = |mfa: &str, code: &str| {
        t.req(Method::Post, "/api/auth/login/mfa", None, Some(json!({"mfa_token": mfa, "code": code})))
    };
    let r = second(mfa, "000000");
    assert_eq!((r.status, error_code(&r).as_str()), (401, "invalid_mfa_code"));
    assert!(
        t.p.sql("SELECT mfa_enabled_at FROM users WHERE email = 'multi@northwind.test'")[0]["mfa_enabled_at"].is_null()
    );
    let code = totp_code(&secret, now());
    let r = second(mfa, &code);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let v = json_of(&r);
    assert_eq!(v["context"]["tenant"], GLOBEX);
    assert_eq!(v["recovery_codes"].as_array().unwrap().len(), 10);
    let globex_session = v["access_token"].as_str().unwrap().to_string();
    assert!(!t.p.sql("SELECT mfa_enabled_at FROM users WHERE email = 'multi@northwind.test'")[0]["mfa_enabled_at"]
        .is_null());
    assert_eq!(error_code(&second(mfa, &code)), "invalid_mfa_token", "the enrolment challenge is spent");

    // From now on the login is the ordinary code check, and MFA cannot be turned off in Globex.
    let step1 = login_globex();
    assert_eq!(step1["mfa_required"], true, "{step1}");
    assert!(step1.get("secret").is_none());
    let r = t.req(Method::Delete, "/api/me/mfa", Some(&globex_session), Some(json!({"code": "whatever"})));
    assert_eq!((r.status, error_code(&r).as_str()), (409, "mfa_required_by_tenant"));

    // An agency's requirement covers its clients' members: Acme's admin, without MFA, enrols now,
    // and Acme's own setting cannot undo it.
    let agency_admin = t.login("agency.admin@northwind.test");
    let r =
        t.req(Method::Put, &format!("/api/agencies/{AGENCY}"), Some(&agency_admin), Some(json!({"require_mfa": true})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(json_of(&r)["require_mfa"], true);
    let acme_admin = "admin@acme.test";
    let v = json_of(&login_with(&t, acme_admin, &t.password(acme_admin)));
    assert_eq!(v["mfa_enrolment_required"], true, "{v}");
    assert_eq!(
        json_of(&login_with(&t, "agency.user@northwind.test", &t.password("agency.user@northwind.test")))
            ["mfa_enrolment_required"],
        true
    );
    // A member's session from before keeps working until it ends: the rule applies at login.
    assert_eq!(t.req(Method::Get, "/api/me", Some(&session), None).status, 200);
}

#[test]
fn signup_makes_an_unverified_agency_that_adds_clients_only_after_the_mailed_link() {
    let t = TestApp::with_config(test_config(&[("SIGNUP_ENABLED", "true"), ("DEV_MAILBOX", "true")]));
    let body = json!({"agency_name": "Bright Studio", "name": "Bea Bright", "email": "bea@bright.example", "password": "a long signup password"});
    let r = t.req(Method::Post, "/api/signup", None, Some(body.clone()));
    assert_eq!(r.status, 202, "{}", body_str(&r));
    // A second signup with the same address answers the same and mails the owner instead.
    let again = t.req(Method::Post, "/api/signup", None, Some(body));
    assert_eq!((again.status, body_str(&again)), (r.status, body_str(&r)));
    let mails = t.p.sql("SELECT subject, body FROM outbox WHERE to_email = 'bea@bright.example' ORDER BY rowid");
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1]["subject"], "Someone tried to sign up with your address");
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM agencies WHERE name = 'Bright Studio'")[0]["n"], 1);

    let token = login_with(&t, "bea@bright.example", "a long signup password");
    assert_eq!(token.status, 200, "{}", body_str(&token));
    let token = json_of(&token)["access_token"].as_str().unwrap().to_string();
    let me = json_of(&t.req(Method::Get, "/api/me", Some(&token), None));
    assert_eq!(me["context"]["role"], "agency_admin");
    let make = || {
        t.req(Method::Post, "/api/clients", Some(&token), Some(json!({"name": "First Client", "slug": "first-client"})))
    };
    let r = make();
    assert_eq!((r.status, error_code(&r).as_str()), (403, "email_unverified"), "{}", body_str(&r));
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM audit_log WHERE action = 'client.created'")[0]["n"], 0);

    let body = mails[0]["body"].as_str().unwrap();
    let at = body.find("evf_").unwrap();
    let verify = |tok: &str| t.req(Method::Post, "/api/signup/verify", None, Some(json!({"token": tok})));
    assert_eq!(verify(&body[at..at + 56]).status, 200);
    assert_eq!(error_code(&verify(&body[at..at + 56])), "invalid_verification_token", "single use");
    assert_eq!(make().status, 201);
}

#[test]
fn signup_is_off_unless_enabled_and_needs_turnstile_where_configured() {
    let t = TestApp::new();
    let body = json!({"agency_name": "X", "name": "X", "email": "x@x.example", "password": "a long signup password"});
    assert_eq!(t.req(Method::Post, "/api/signup", None, Some(body.clone())).status, 404);
    let t = TestApp::with_config(test_config(&[
        ("SIGNUP_ENABLED", "true"),
        ("TURNSTILE_SECRET_KEY", "ts-secret"),
        ("TURNSTILE_VERIFY_URL", "http://turnstile.test/siteverify"),
    ]));
    let r = t.req(Method::Post, "/api/signup", None, Some(body.clone()));
    assert_eq!((r.status, error_code(&r).as_str()), (403, "turnstile_required"));
    let mut failing = body.clone();
    failing["turnstile_token"] = json!("fail");
    assert_eq!(error_code(&t.req(Method::Post, "/api/signup", None, Some(failing))), "turnstile_failed");
    let mut passing = body;
    passing["turnstile_token"] = json!("pass");
    assert_eq!(t.req(Method::Post, "/api/signup", None, Some(passing)).status, 202);
    // Enabling signup without Turnstile is refused outside development.
    assert!(gatehouse::Config::from_map(
        &[
            ("JWT_SECRET", "native-test-jwt-secret-0123456789abcdef0123".to_string()),
            ("ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_string()),
            ("FILE_SIGNING_SECRET", "native-test-file-signing-secret-0123456789".to_string()),
            ("SIGNUP_ENABLED", "true".to_string()),
        ]
        .into_iter()
        .collect()
    )
    .is_err());
}

#[test]
fn a_client_invites_through_its_own_path_which_a_portal_serves() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let path = format!("/api/clients/{ACME}/invitations");
    let body = |tenant: Option<&str>| {
        let mut b = json!({"email": "helper@acme-plumbing.example", "role": "client_viewer"});
        if let Some(x) = tenant {
            b["tenant"] = json!(x);
        }
        b
    };
    // On the portal host, /api/users is outside the portal's client and answers 404; the client's
    // own path works there.
    let pw = t.password("admin@acme.test");
    let login = t.req_on(
        "acme.portal.test",
        Method::Post,
        "/api/auth/login",
        None,
        Some(json!({"email": "admin@acme.test", "password": pw})),
    );
    let portal = json_of(&login)["access_token"].as_str().unwrap().to_string();
    assert_eq!(t.req_on("acme.portal.test", Method::Post, "/api/users", Some(&portal), Some(body(None))).status, 404);
    let r = t.req_on("acme.portal.test", Method::Post, &path, Some(&portal), Some(body(None)));
    assert_eq!(r.status, 202, "{}", body_str(&r));
    // The body cannot name another tenant than the path.
    let r = t.req(Method::Post, &path, Some(&admin), Some(body(Some(GLOBEX))));
    assert_eq!((r.status, error_code(&r).as_str()), (422, "tenant_mismatch"));
    // Another client's path is out of reach, and a viewer cannot invite.
    let globex = t.login("admin@globex.test");
    assert_eq!(t.req(Method::Post, &path, Some(&globex), Some(body(None))).status, 404);
    let viewer = t.login("viewer@acme.test");
    assert_eq!(t.req(Method::Post, &path, Some(&viewer), Some(body(None))).status, 403);
    let n =
        t.p.sql("SELECT count(*) AS n FROM invitations WHERE email = 'helper@acme-plumbing.example'")[0]["n"].clone();
    assert_eq!(n, 1);
}

#[test]
fn signing_out_everywhere_ends_every_token_of_that_user_only() {
    let t = TestApp::new();
    let a = t.login("admin@acme.test");
    let b = t.login("admin@acme.test");
    let other = t.login("user@acme.test");
    let r = t.req(Method::Post, "/api/auth/logout-everywhere", Some(&a), None);
    assert_eq!(r.status, 204, "{}", body_str(&r));
    for tok in [&a, &b] {
        let r = t.req(Method::Get, "/api/me", Some(tok), None);
        assert_eq!((r.status, error_code(&r).as_str()), (401, "session_ended"));
    }
    assert_eq!(t.req(Method::Get, "/api/me", Some(&other), None).status, 200, "another user keeps theirs");
    let audit = t.p.sql("SELECT count(*) AS n FROM audit_log WHERE action = 'auth.logout_everywhere'");
    assert_eq!(audit[0]["n"], 1);
    assert_eq!(t.req(Method::Post, "/api/auth/logout-everywhere", Some(&a), None).status, 401, "once");
    assert_eq!(t.req(Method::Post, "/api/auth/logout-everywhere", None, None).status, 401);
    let fresh = t.login("admin@acme.test");
    assert_eq!(t.req(Method::Get, "/api/me", Some(&fresh), None).status, 200, "signing in again works");
}
