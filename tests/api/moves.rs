//! Moving an agency between data shards (`tenants::moves`): every row arrives, verified, with the
//! agency fenced for writes and served for reads throughout; a step cut short, a copy that
//! differs and a cancel each lose nothing. The demo agency and Acme move from shard 0 to shard
//! 1, where Globex (the agency's other client) already is and must be left as it is.
//! Meaningful with `GATEHOUSE_TEST_SHARDS=2`; with fewer shards a move is refused.

use std::collections::BTreeMap;

use crate::common::*;
use gatehouse::platform::http::Method;
use gatehouse::seed::{ACME, AGENCY, GLOBEX};
use gatehouse::tenants::moves::copy_order;
use serde_json::{json, Value};

/// Rows of each shard table naming one of `tenants`, on shard `n`'s own database.
fn rows_on(t: &TestApp, n: usize, tenants: &[&str]) -> BTreeMap<&'static str, i64> {
    let db = t.p.db.shard(n).unwrap();
    let list = tenants.iter().map(|x| format!("'{x}'")).collect::<Vec<_>>().join(", ");
    copy_order()
        .into_iter()
        .map(|table| {
            let col = gatehouse::platform::schema::tenant_column(table).unwrap();
            (table, db.run_count(&format!("SELECT count(*) AS n FROM {table} WHERE {col} IN ({list})")))
        })
        .collect()
}

/// Every column of the tenants' rows of `table` on shard `n`, renumbered columns left out, sorted.
fn contents(t: &TestApp, n: usize, table: &str, tenants: &[&str]) -> Vec<String> {
    let db = t.p.db.shard(n).unwrap();
    let col = gatehouse::platform::schema::tenant_column(table).unwrap();
    let list = tenants.iter().map(|x| format!("'{x}'")).collect::<Vec<_>>().join(", ");
    let rows = db.run_query(&format!("SELECT * FROM {table} WHERE {col} IN ({list})"), &[]).unwrap();
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|mut r| {
            r.remove("seq").filter(|_| table == "events");
            if table == "webhook_deliveries" {
                r.remove("event_seq");
            }
            Value::Object(r).to_string()
        })
        .collect();
    out.sort();
    out
}

fn shard_of(t: &TestApp, id: &str) -> i64 {
    t.p.sql(&format!(
        "SELECT shard FROM clients WHERE id = '{id}' UNION ALL SELECT shard FROM agencies WHERE id = '{id}'"
    ))[0]["shard"]
        .as_i64()
        .unwrap()
}

fn start(t: &TestApp, admin: &str) -> Value {
    let r =
        t.req(Method::Post, "/api/admin/shard-moves", Some(admin), Some(json!({"agency_id": AGENCY, "to_shard": 1})));
    assert_eq!(r.status, 201, "{}", body_str(&r));
    json_of(&r)
}

fn step(t: &TestApp, admin: &str, id: &str) -> Value {
    let r = t.req(Method::Post, &format!("/api/admin/shard-moves/{id}/step"), Some(admin), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    json_of(&r)
}

fn settle(t: &TestApp) {
    t.p.now_ms.set(t.p.now_ms.get() + t.cfg.shard_move_settle_ms + 1);
}

/// Steps until the move reaches `phase` (or ends), at most `max` steps. Answers the move.
fn step_until(t: &TestApp, admin: &str, id: &str, phase: &str, max: usize) -> Value {
    for _ in 0..max {
        let m = step(t, admin, id);
        if m["phase"] == phase || ["done", "cancelled", "failed"].contains(&m["phase"].as_str().unwrap()) {
            return m;
        }
    }
    panic!("the move did not reach {phase} in {max} steps");
}

const MOVING: [&str; 2] = [AGENCY, ACME];

/// Row counts less the tables a request's write adds to besides its own (its event, audit row
/// and daily counters).
fn but_side_effects(mut counts: BTreeMap<&'static str, i64>) -> BTreeMap<&'static str, i64> {
    for table in ["events", "audit_log", "tenant_daily"] {
        counts.remove(table);
    }
    counts
}

fn a_contact(t: &TestApp, token: &str, client: &str, name: &str) -> gatehouse::platform::http::Response {
    t.req(Method::Post, &format!("/api/clients/{client}/contacts"), Some(token), Some(json!({"name": name})))
}

#[test]
fn an_agency_moves_with_every_row_verified_fenced_for_writes_and_served_throughout() {
    let t = TestApp::new();
    let admin = t.login("admin@gatehouse.test");
    if test_shards() < 2 {
        let r = t.req(
            Method::Post,
            "/api/admin/shard-moves",
            Some(&admin),
            Some(json!({"agency_id": AGENCY, "to_shard": 1})),
        );
        assert_eq!((r.status, error_code(&r)), (409, "not_sharded".into()), "{}", body_str(&r));
        return;
    }
    let acme = t.login("admin@acme.test");
    let globex = t.login("admin@globex.test");
    let before = rows_on(&t, 0, &MOVING);
    let globex_before = rows_on(&t, 1, &[GLOBEX]);
    assert!(before.values().sum::<i64>() > 50, "the demo gives the move rows to carry: {before:?}");
    assert_eq!(rows_on(&t, 1, &MOVING).values().sum::<i64>(), 0);
    let contents_before: Vec<Vec<String>> = copy_order().iter().map(|tb| contents(&t, 0, tb, &MOVING)).collect();
    let list = |token: &str| t.req(Method::Get, &format!("/api/clients/{ACME}/contacts?limit=100"), Some(token), None);
    let listed = body_str(&list(&acme));

    let m = start(&t, &admin);
    let id = m["id"].as_str().unwrap().to_string();
    assert_eq!(
        (m["phase"].as_str(), m["from_shard"].as_i64(), m["to_shard"].as_i64()),
        (Some("settling"), Some(0), Some(1))
    );
    // Fenced: the directory rows say so, writes wait, reads go on; Globex is not moving.
    assert_eq!((shard_of(&t, AGENCY), shard_of(&t, ACME), shard_of(&t, GLOBEX)), (-1, -1, 1));
    let refused = a_contact(&t, &acme, ACME, "During");
    assert_eq!((refused.status, error_code(&refused)), (503, "tenant_moving".into()), "{}", body_str(&refused));
    assert_eq!(refused.header("retry-after"), Some("30"));
    assert_eq!(body_str(&list(&acme)), listed);
    assert_eq!(a_contact(&t, &globex, GLOBEX, "Elsewhere").status, 201);
    // Staff read too: the access row their read owes the tenant's log waits for the flip.
    let staff = list(&admin);
    assert_eq!(staff.status, 200, "{}", body_str(&staff));
    let access = |n: usize| {
        t.p.db.shard(n).unwrap().run_count(&format!(
            "SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{ACME}' AND action = 'platform.access'"
        ))
    };
    let access_before = access(0);
    let held = t.p.sql(&format!("SELECT count(*) AS n FROM shard_writes WHERE tenant_id = '{ACME}'"));
    assert_eq!(held[0]["n"], 1, "the access row is held");
    // So do a member's login and a platform admin's look at the tenant, which write rows to its
    // log too.
    t.login("user@acme.test");
    let viewed = t.req(Method::Get, &format!("/api/admin/tenants/{ACME}"), Some(&admin), None);
    assert_eq!(viewed.status, 200, "{}", body_str(&viewed));
    let held = t.p.sql(&format!("SELECT count(*) AS n FROM shard_writes WHERE tenant_id = '{ACME}'"));
    assert_eq!(held[0]["n"], 3, "their rows are held too");
    // One move at a time; the scans of both shards leave the moving tenants alone.
    let again =
        t.req(Method::Post, "/api/admin/shard-moves", Some(&admin), Some(json!({"agency_id": AGENCY, "to_shard": 1})));
    assert_eq!((again.status, error_code(&again)), (409, "move_under_way".into()));
    for n in 0..2 {
        assert_eq!(t.p.db.shard(n).unwrap().run_count("SELECT count(*) AS n FROM fenced_tenants"), 2, "shard {n}");
    }

    // Before the settling time nothing is copied.
    let m = step(&t, &admin, &id);
    assert_eq!((m["phase"].as_str(), m["rows_copied"].as_i64()), (Some("settling"), Some(0)));
    settle(&t);
    let m = step_until(&t, &admin, &id, "flipped", 50);
    assert_eq!(m["phase"], "flipped", "{m}");
    let copied: i64 = before.values().sum();
    assert_eq!(m["rows_copied"].as_i64(), Some(copied));
    let verified = m["verified"].as_object().unwrap();
    assert_eq!(verified.len(), copy_order().len(), "every table verified: {m}");
    for (table, v) in verified {
        assert_eq!(v["matches"], true, "{table}: {v}");
        assert_eq!(v["rows"].as_i64(), before.get(table.as_str()).copied(), "{table}");
    }
    // Flipped: the directory points at shard 1, writes go there, reads see the same rows.
    assert_eq!((shard_of(&t, AGENCY), shard_of(&t, ACME), shard_of(&t, GLOBEX)), (1, 1, 1));
    assert_eq!(body_str(&list(&acme)), listed);
    assert_eq!(rows_on(&t, 1, &MOVING), before, "every row on the new shard");
    for (table, want) in copy_order().iter().zip(&contents_before) {
        assert_eq!(&contents(&t, 1, table, &MOVING), want, "{table}: the same rows, column for column");
    }
    let after = a_contact(&t, &acme, ACME, "After");
    assert_eq!(after.status, 201, "{}", body_str(&after));
    assert_eq!(
        t.p.db
            .shard(1)
            .unwrap()
            .run_count(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}' AND name = 'After'")),
        1
    );
    // The old rows stay until the second settling time; the scheduled run takes the steps.
    assert_eq!(rows_on(&t, 0, &MOVING), before);
    settle(&t);
    let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
    for _ in 0..20 {
        pollster::block_on(app.scheduled("* * * * *")).unwrap();
        if t.p.sql(&format!("SELECT phase FROM shard_moves WHERE id = '{id}'"))[0]["phase"] == "done" {
            break;
        }
    }
    let m = json_of(&t.req(Method::Get, &format!("/api/admin/shard-moves/{id}"), Some(&admin), None));
    assert_eq!(m["phase"], "done", "{m}");
    assert_eq!(m["rows_deleted"].as_i64(), Some(copied), "the old copies, once");
    assert_eq!(rows_on(&t, 0, &MOVING).values().sum::<i64>(), 0, "nothing left on the old shard");
    let mut want = before.clone();
    *want.get_mut("contacts").unwrap() += 1;
    assert_eq!(but_side_effects(rows_on(&t, 1, &MOVING)), but_side_effects(want));
    let mut globex_now = rows_on(&t, 1, &[GLOBEX]);
    *globex_now.get_mut("contacts").unwrap() -= 1;
    assert_eq!(
        but_side_effects(globex_now),
        but_side_effects(globex_before),
        "Globex's rows on that shard are as they were"
    );
    for n in 0..2 {
        assert_eq!(t.p.db.shard(n).unwrap().run_count("SELECT count(*) AS n FROM fenced_tenants"), 0);
    }
    let audit = t.p.sql(
        "SELECT action FROM audit_log WHERE tenant_id = 'platform' AND action LIKE 'shard_move.%' ORDER BY seq, at",
    );
    let actions: Vec<&str> = audit.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["shard_move.started", "shard_move.flipped", "shard_move.finished"]);
    // The held rows landed on the new shard with the rest of Acme's log.
    assert_eq!(access(1), access_before + 1);
    let held = t.p.sql(&format!("SELECT count(*) AS n FROM shard_writes WHERE tenant_id = '{ACME}'"));
    assert_eq!(held[0]["n"], 0);
    let viewed =
        format!("SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{ACME}' AND action = 'platform.tenant_viewed'");
    assert_eq!((t.p.db.shard(0).unwrap().run_count(&viewed), t.p.db.shard(1).unwrap().run_count(&viewed)), (0, 1));
    // Moving back works the same way.
    let r =
        t.req(Method::Post, "/api/admin/shard-moves", Some(&admin), Some(json!({"agency_id": AGENCY, "to_shard": 0})));
    assert_eq!(r.status, 201, "{}", body_str(&r));
}

#[test]
fn a_step_cut_short_resumes_and_a_copy_that_differs_is_made_again() {
    if test_shards() < 2 {
        return;
    }
    let t = TestApp::new();
    let admin = t.login("admin@gatehouse.test");
    let before = rows_on(&t, 0, &MOVING);
    let contents_before = contents(&t, 0, "contacts", &MOVING);
    let id = start(&t, &admin)["id"].as_str().unwrap().to_string();
    settle(&t);
    // The new shard refuses contacts for a while: the step fails with what it had saved kept.
    *t.p.fail_sql_containing.borrow_mut() = Some("INSERT INTO contacts".into());
    let mut failed = 0;
    for _ in 0..10 {
        let r = t.req(Method::Post, &format!("/api/admin/shard-moves/{id}/step"), Some(&admin), None);
        if r.status == 500 {
            failed += 1;
        }
    }
    assert!(failed > 0, "the injected failure was met");
    let m = json_of(&t.req(Method::Get, &format!("/api/admin/shard-moves/{id}"), Some(&admin), None));
    assert_eq!((m["phase"].as_str(), m["table"].as_str()), (Some("copying"), Some("contacts")), "{m}");
    *t.p.fail_sql_containing.borrow_mut() = None;
    // Once contacts are copied and before they are verified, a row on the new shard changes
    // behind the move's back: the verification sees it, and the copy is made again.
    let contacts_at = copy_order().iter().position(|t| *t == "contacts").unwrap();
    let mut tampered = false;
    for _ in 0..30 {
        let m = step(&t, &admin, &id);
        let at = m["table"].as_str().and_then(|tb| copy_order().iter().position(|x| *x == tb));
        let copied = m["phase"] == "copying" && at.is_some_and(|a| a > contacts_at);
        let unverified = m["phase"] == "verifying" && m["verified"].get("contacts").is_none();
        if !tampered && (copied || unverified) {
            let n =
                t.p.db
                    .shard(1)
                    .unwrap()
                    .conn
                    .execute(&format!("UPDATE contacts SET name = 'Tampered' WHERE client_id = '{ACME}'"), [])
                    .unwrap();
            assert!(n > 0);
            tampered = true;
        }
        if m["phase"] == "flipped" {
            assert!(tampered, "the tampering happened before the verification");
            assert_eq!(m["rounds"], 2, "the differing copy was made again: {m}");
            break;
        }
    }
    assert_eq!(shard_of(&t, ACME), 1);
    assert_eq!(rows_on(&t, 1, &MOVING), before);
    assert_eq!(contents(&t, 1, "contacts", &MOVING), contents_before, "the tampered rows were copied again");
}

#[test]
fn a_cancelled_move_leaves_the_agency_where_it_was_and_nothing_on_the_other_shard() {
    if test_shards() < 2 {
        return;
    }
    let t = TestApp::new();
    let admin = t.login("admin@gatehouse.test");
    let acme = t.login("admin@acme.test");
    let before = rows_on(&t, 0, &MOVING);
    let globex_before = rows_on(&t, 1, &[GLOBEX]);
    let id = start(&t, &admin)["id"].as_str().unwrap().to_string();
    settle(&t);
    let m = step(&t, &admin, &id);
    assert!(m["rows_copied"].as_i64().unwrap() > 0, "{m}");
    // While another step holds the move's lease, a step takes none and a cancel waits.
    let lease = |until: i64| t.p.exec(&format!("UPDATE shard_moves SET lease_until = {until} WHERE id = '{id}'"));
    lease(t.p.now_ms.get() + 60_000);
    let busy = step(&t, &admin, &id);
    assert_eq!((busy["stepped"].as_bool(), busy["rows_copied"].as_i64()), (Some(false), m["rows_copied"].as_i64()));
    let r = t.req(Method::Post, &format!("/api/admin/shard-moves/{id}/cancel"), Some(&admin), None);
    assert_eq!((r.status, error_code(&r)), (409, "move_busy".into()));
    assert_eq!((shard_of(&t, AGENCY), shard_of(&t, ACME)), (-1, -1), "still fenced");
    lease(0);
    let r = t.req(Method::Post, &format!("/api/admin/shard-moves/{id}/cancel"), Some(&admin), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(json_of(&r)["phase"], "cancelling");
    // Unfenced at once, on the old shard.
    assert_eq!((shard_of(&t, AGENCY), shard_of(&t, ACME)), (0, 0));
    assert_eq!(a_contact(&t, &acme, ACME, "Back").status, 201);
    let m = step_until(&t, &admin, &id, "cancelled", 20);
    assert_eq!(m["phase"], "cancelled", "{m}");
    assert_eq!(rows_on(&t, 1, &MOVING).values().sum::<i64>(), 0, "the copies are gone");
    assert_eq!(rows_on(&t, 1, &[GLOBEX]), globex_before);
    let mut want = before.clone();
    *want.get_mut("contacts").unwrap() += 1;
    assert_eq!(but_side_effects(rows_on(&t, 0, &MOVING)), but_side_effects(want));
    for n in 0..2 {
        assert_eq!(t.p.db.shard(n).unwrap().run_count("SELECT count(*) AS n FROM fenced_tenants"), 0);
    }
    let r = t.req(Method::Post, &format!("/api/admin/shard-moves/{id}/cancel"), Some(&admin), None);
    assert_eq!((r.status, error_code(&r)), (409, "move_flipped".into()));
    let audit = t.p.sql(
        "SELECT action FROM audit_log WHERE tenant_id = 'platform' AND action LIKE 'shard_move.%' ORDER BY seq, at",
    );
    let actions: Vec<&str> = audit.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["shard_move.started", "shard_move.cancelled", "shard_move.cancelled_cleaned_up"]);
}

#[test]
fn only_platform_admins_move_agencies_and_bad_requests_change_nothing() {
    let t = TestApp::new();
    let admin = t.login("admin@gatehouse.test");
    let agency = t.login("agency.admin@northwind.test");
    let acme = t.login("admin@acme.test");
    for token in [&agency, &acme] {
        for (m, path) in [
            (Method::Get, "/api/admin/shard-moves".to_string()),
            (Method::Get, "/api/admin/shard-moves/mov_000000000000000000000000".to_string()),
            (Method::Post, "/api/admin/shard-moves/mov_000000000000000000000000/step".to_string()),
            (Method::Post, "/api/admin/shard-moves/mov_000000000000000000000000/cancel".to_string()),
        ] {
            assert_eq!(t.req(m, &path, Some(token), None).status, 403, "{path}");
        }
        let r = t.req(
            Method::Post,
            "/api/admin/shard-moves",
            Some(token),
            Some(json!({"agency_id": AGENCY, "to_shard": 1})),
        );
        assert_eq!(r.status, 403);
    }
    assert_eq!(
        t.req(Method::Get, "/api/admin/shard-moves/mov_000000000000000000000000", Some(&admin), None).status,
        404
    );
    assert_eq!(t.req(Method::Post, "/api/admin/shard-moves/nope/step", Some(&admin), None).status, 404);
    let post = |body: Value| t.req(Method::Post, "/api/admin/shard-moves", Some(&admin), Some(body));
    if test_shards() >= 2 {
        assert_eq!(post(json!({"agency_id": "agy_nope", "to_shard": 1})).status, 404);
        let r = post(json!({"agency_id": AGENCY, "to_shard": 2}));
        assert_eq!((r.status, error_code(&r)), (422, "invalid_field".into()));
        let r = post(json!({"agency_id": AGENCY, "to_shard": 0}));
        assert_eq!((r.status, error_code(&r)), (409, "already_there".into()));
    }
    assert_eq!(post(json!({"agency_id": AGENCY})).status, 422);
    assert_eq!(post(json!({"agency_id": AGENCY, "to_shard": 1, "phase": "done"})).status, 422);
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM shard_moves")[0]["n"], 0);
    assert_eq!(shard_of(&t, AGENCY), 0);
    let list = t.req(Method::Get, "/api/admin/shard-moves", Some(&admin), None);
    assert_eq!(json_of(&list)["items"], json!([]));
}

#[test]
fn writes_owed_to_a_moving_tenant_wait_for_the_flip_and_land_on_the_new_shard_once() {
    if test_shards() < 2 {
        return;
    }
    let t = TestApp::new();
    let admin = t.login("admin@gatehouse.test");
    let acme = t.login("admin@acme.test");
    let id = start(&t, &admin)["id"].as_str().unwrap().to_string();
    // A control-plane change for a moving client commits (the directory is not moving); the
    // audit row it owes Acme's shard is held.
    let r = register(&t, &acme, ACME, "moving.example.com");
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let held = || {
        t.p.sql(&format!("SELECT count(*) AS n FROM shard_writes WHERE tenant_id = '{ACME}'"))[0]["n"].as_i64().unwrap()
    };
    assert!(held() > 0, "the change's shard writes wait");
    // An event the outbox drain had not reached when the move began.
    let old = t.p.db.shard(0).unwrap();
    old.conn
        .execute(
            &format!(
                "INSERT INTO events (id, client_id, type, data, created_at) VALUES ('evt_moving', '{ACME}', 'contact.created', '{{}}', {})",
                t.p.now_ms.get()
            ),
            [],
        )
        .unwrap();
    let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
    settle(&t);
    // The scheduled run goes on for everyone else: it neither applies the held writes nor
    // drains the moving tenant's event, on either shard.
    let report = pollster::block_on(app.scheduled("* * * * *")).unwrap();
    assert!(report["shard_writes"]["waiting"].as_i64().unwrap() > 0, "{report}");
    assert_eq!(report["shard_writes"]["failed"], json!([]), "{report}");
    assert!(held() > 0);
    let undispatched = |n: usize| {
        t.p.db
            .shard(n)
            .unwrap()
            .run_count("SELECT count(*) AS n FROM events WHERE id = 'evt_moving' AND dispatched_at IS NULL")
    };
    assert_eq!(undispatched(0), 1, "the old shard's drain leaves it alone");
    let m = step_until(&t, &admin, &id, "flipped", 50);
    assert_eq!(m["phase"], "flipped");
    settle(&t);
    step_until(&t, &admin, &id, "done", 50);
    // After the flip the scheduled run applies the held writes and drains the event, on the new
    // shard, once.
    t.p.now_ms.set(t.p.now_ms.get() + 120_000);
    let report = pollster::block_on(app.scheduled("* * * * *")).unwrap();
    assert_eq!(held(), 0, "{report}");
    let new = t.p.db.shard(1).unwrap();
    let audit = new.run_count(&format!(
        "SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{ACME}' AND action = 'domain.created'"
    ));
    assert_eq!(audit, 1, "the domain's audit row is on the new shard");
    assert_eq!(old.run_count(&format!("SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{ACME}'")), 0);
    assert_eq!(
        new.run_count("SELECT count(*) AS n FROM events WHERE id = 'evt_moving' AND dispatched_at IS NOT NULL"),
        1
    );
    assert_eq!(old.run_count("SELECT count(*) AS n FROM events WHERE id = 'evt_moving'"), 0);
}
