//! The CRM through the real router over SQLite: contacts (patch, search, tags, notes), tags,
//! pipelines and stages, deals and their stage history, the board, and isolation between clients.

use crate::common::*;
use gatehouse::platform::http::{Method, Response};
use gatehouse::seed::{ACME, GLOBEX};
use serde_json::{json, Value};

fn post(t: &TestApp, token: &str, path: &str, body: Value) -> Response {
    t.req(Method::Post, path, Some(token), Some(body))
}

fn count(t: &TestApp, sql: &str) -> i64 {
    t.p.sql(sql)[0]["n"].as_i64().unwrap()
}

fn contact(t: &TestApp, token: &str, name: &str, email: &str) -> String {
    let r = post(t, token, &format!("/api/clients/{ACME}/contacts"), json!({"name": name, "email": email}));
    assert_eq!(r.status, 201, "{}", body_str(&r));
    json_of(&r)["id"].as_str().unwrap().to_string()
}

fn pipeline(t: &TestApp, token: &str, stages: &[&str]) -> Value {
    let r = post(t, token, &format!("/api/clients/{ACME}/pipelines"), json!({"name": "Sales", "stages": stages}));
    assert_eq!(r.status, 201, "{}", body_str(&r));
    json_of(&r)
}

fn stage_ids(p: &Value) -> Vec<String> {
    p["stages"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn contacts_are_patched_searched_by_prefix_and_filtered_by_tag() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let ada = contact(&t, &admin, "Ada Lovelace", "ada@example.com");
    contact(&t, &admin, "Alan Turing", "alan@example.com");
    contact(&t, &admin, "Grace Hopper", "grace@navy.example");
    contact(&t, &admin, "100%_match", "pct@example.com");

    let names = |q: &str| -> Vec<String> {
        let r = t.req(Method::Get, &format!("/api/clients/{ACME}/contacts?q={q}"), Some(&admin), None);
        assert_eq!(r.status, 200, "{}", body_str(&r));
        let mut v: Vec<String> =
            json_of(&r)["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(names("a"), ["Ada Lovelace", "Alan Turing"], "name prefix, case-insensitive");
    assert_eq!(names("GRACE%40"), ["Grace Hopper"], "email prefix");
    assert_eq!(names("100%25_"), ["100%_match"], "LIKE wildcards in q are literal");
    assert!(names("%25").is_empty(), "a bare % matches nothing");
    assert!(names("lovelace").is_empty(), "prefix, not substring");

    // PATCH: absent fields stay, null clears, bad input is a 422 that changes nothing.
    let path = format!("/api/clients/{ACME}/contacts/{ada}");
    let r = t.req(Method::Patch, &path, Some(&admin), Some(json!({"phone": "+44 20 7946 0000", "email": null})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let v = json_of(&r);
    assert_eq!(
        (v["name"].as_str(), v["phone"].as_str(), v["email"].is_null()),
        (Some("Ada Lovelace"), Some("+44 20 7946 0000"), true)
    );
    for bad in [
        json!({"email": "not-an-email"}),
        json!({"name": ""}),
        json!({"client_id": GLOBEX}),
        json!({"source": "widget"}),
    ] {
        let r = t.req(Method::Patch, &path, Some(&admin), Some(bad.clone()));
        assert_eq!(r.status, 422, "{bad}: {}", body_str(&r));
    }
    assert_eq!(json_of(&t.req(Method::Get, &path, Some(&admin), None))["phone"], "+44 20 7946 0000");
    assert_eq!(
        count(
            &t,
            &format!("SELECT count(*) AS n FROM audit_log WHERE action = 'contact.updated' AND target_id = '{ada}'")
        ),
        1
    );

    // Tags: attach twice is one link, filter by tag, detach twice is fine, unknown tag is 404.
    let r = post(&t, &admin, &format!("/api/clients/{ACME}/tags"), json!({"name": "Priority", "color": "#FFAA00"}));
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let vip = json_of(&r)["id"].as_str().unwrap().to_string();
    let tag_path = format!("/api/clients/{ACME}/contacts/{ada}/tags/{vip}");
    for _ in 0..2 {
        assert_eq!(t.req(Method::Put, &tag_path, Some(&admin), None).status, 204);
    }
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM contact_tags WHERE contact_id = '{ada}'")), 1);
    assert_eq!(
        count(&t, "SELECT count(*) AS n FROM audit_log WHERE action = 'contact.tagged'"),
        1,
        "a repeat is not audited"
    );
    let r = t.req(Method::Get, &format!("/api/clients/{ACME}/contacts?tag={vip}"), Some(&admin), None);
    let items = json_of(&r)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["tags"][0]["name"], "Priority");
    assert_eq!(items[0]["tags"][0]["color"], "#ffaa00");
    let bogus = format!("/api/clients/{ACME}/contacts/{ada}/tags/tag_000000000000000000000000");
    assert_eq!(t.req(Method::Put, &bogus, Some(&admin), None).status, 404);
    for _ in 0..2 {
        assert_eq!(t.req(Method::Delete, &tag_path, Some(&admin), None).status, 204);
    }
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM contact_tags WHERE contact_id = '{ada}'")), 0);
}

#[test]
fn tag_names_are_unique_per_client_case_insensitively() {
    let t = TestApp::new();
    let acme = t.login("admin@acme.test");
    let globex = t.login("admin@globex.test");
    let make = |tok: &str, client: &str, name: &str| {
        post(&t, tok, &format!("/api/clients/{client}/tags"), json!({"name": name}))
    };
    assert_eq!(make(&acme, ACME, "Lead").status, 201);
    let dup = make(&acme, ACME, "lead");
    assert_eq!((dup.status, error_code(&dup)), (409, "tag_exists".to_string()));
    assert_eq!(make(&globex, GLOBEX, "LEAD").status, 201, "another client may use the name");
    assert_eq!(
        count(&t, "SELECT count(*) AS n FROM audit_log WHERE action = 'tag.created'"),
        2,
        "the refused one left no audit row"
    );
    let r = make(&acme, ACME, "Other");
    let other = json_of(&r)["id"].as_str().unwrap().to_string();
    let rename =
        t.req(Method::Patch, &format!("/api/clients/{ACME}/tags/{other}"), Some(&acme), Some(json!({"name": "LEAD"})));
    assert_eq!(rename.status, 409);
    let bad = post(&t, &acme, &format!("/api/clients/{ACME}/tags"), json!({"name": "X", "color": "red"}));
    assert_eq!((bad.status, error_code(&bad)), (422, "invalid_color".to_string()));
}

#[test]
fn notes_attach_to_the_clients_own_contacts_and_deals_only() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let globex = t.login("admin@globex.test");
    let ada = contact(&t, &admin, "Ada", "ada@example.com");
    let r = post(
        &t,
        &admin,
        &format!("/api/clients/{ACME}/contacts/{ada}/notes"),
        json!({"body": "Called, wants a quote."}),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let note = json_of(&r);
    assert_eq!(note["subject_type"], "contact");
    assert!(note["author_user_id"].as_str().unwrap().starts_with("usr_"));
    let list = t.req(Method::Get, &format!("/api/clients/{ACME}/contacts/{ada}/notes"), Some(&admin), None);
    assert_eq!(json_of(&list)["items"].as_array().unwrap().len(), 1);

    // Globex's admin names Acme's contact under Globex: nothing is written.
    let r = post(&t, &globex, &format!("/api/clients/{GLOBEX}/contacts/{ada}/notes"), json!({"body": "sneaky"}));
    assert_eq!(r.status, 404);
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM notes WHERE subject_id = '{ada}'")), 1);
    let r = post(&t, &admin, &format!("/api/clients/{ACME}/contacts/{ada}/notes"), json!({"body": "  "}));
    assert_eq!(r.status, 422);

    // Deleting the contact takes its notes with it.
    assert_eq!(t.req(Method::Delete, &format!("/api/clients/{ACME}/contacts/{ada}"), Some(&admin), None).status, 204);
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM notes WHERE subject_id = '{ada}'")), 0);
}

#[test]
fn stages_are_added_renamed_reordered_and_deleted_only_when_empty_or_moved() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let p = pipeline(&t, &admin, &["New", "Qualified", "Won"]);
    let pid = p["id"].as_str().unwrap().to_string();
    let s = stage_ids(&p);
    let base = format!("/api/clients/{ACME}/pipelines/{pid}");

    let r = post(&t, &admin, &format!("{base}/stages"), json!({"name": "Proposal"}));
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let p = json_of(&r);
    let names: Vec<&str> = p["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["New", "Qualified", "Won", "Proposal"]);
    let all = stage_ids(&p);

    // Reorder: one call naming every stage exactly once.
    let order = vec![all[0].clone(), all[1].clone(), all[3].clone(), all[2].clone()];
    let r = t.req(Method::Put, &format!("{base}/stages"), Some(&admin), Some(json!({"stage_ids": order})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(stage_ids(&json_of(&r)), order);
    for bad in [
        vec![all[0].clone(), all[1].clone(), all[2].clone()],
        vec![all[0].clone(), all[0].clone(), all[1].clone(), all[2].clone()],
    ] {
        let r = t.req(Method::Put, &format!("{base}/stages"), Some(&admin), Some(json!({"stage_ids": bad})));
        assert_eq!((r.status, error_code(&r)), (422, "invalid_order".to_string()));
    }
    let r =
        t.req(Method::Patch, &format!("{base}/stages/{}", s[1]), Some(&admin), Some(json!({"name": "Qualified lead"})));
    assert_eq!(r.status, 200);

    // A deal in "New": deleting "New" needs move_to, and the move is recorded.
    let r = post(
        &t,
        &admin,
        &format!("/api/clients/{ACME}/deals"),
        json!({"title": "Boiler", "pipeline_id": pid, "value_minor": 125000, "currency": "eur"}),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let deal = json_of(&r);
    assert_eq!(deal["stage_id"], s[0].as_str(), "a new deal starts in the first stage");
    assert_eq!(deal["currency"], "EUR");
    let del = t.req(Method::Delete, &format!("{base}/stages/{}", s[0]), Some(&admin), None);
    assert_eq!((del.status, error_code(&del)), (409, "stage_not_empty".to_string()));
    let foreign = pipeline(&t, &admin, &["Elsewhere"]);
    let bad_target = t.req(
        Method::Delete,
        &format!("{base}/stages/{}?move_to={}", s[0], stage_ids(&foreign)[0]),
        Some(&admin),
        None,
    );
    assert_eq!(bad_target.status, 422, "move_to must be a stage of the same pipeline");
    let r = t.req(Method::Delete, &format!("{base}/stages/{}?move_to={}", s[0], s[1]), Some(&admin), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let d = json_of(&t.req(
        Method::Get,
        &format!("/api/clients/{ACME}/deals/{}", deal["id"].as_str().unwrap()),
        Some(&admin),
        None,
    ));
    assert_eq!(d["stage_id"], s[1].as_str());
    let h = json_of(&t.req(
        Method::Get,
        &format!("/api/clients/{ACME}/deals/{}/history", deal["id"].as_str().unwrap()),
        Some(&admin),
        None,
    ));
    let moves = h["items"].as_array().unwrap();
    assert_eq!(moves.len(), 2, "placed, then moved: {h}");
    assert_eq!(
        (moves[1]["from_stage_id"].as_str(), moves[1]["to_stage_id"].as_str()),
        (Some(s[0].as_str()), Some(s[1].as_str()))
    );

    // The pipeline with a deal cannot go; the last stage of a pipeline cannot go.
    let r = t.req(Method::Delete, &base, Some(&admin), None);
    assert_eq!((r.status, error_code(&r)), (409, "pipeline_not_empty".to_string()));
    let only = stage_ids(&foreign)[0].clone();
    let r = t.req(
        Method::Delete,
        &format!("/api/clients/{ACME}/pipelines/{}/stages/{only}", foreign["id"].as_str().unwrap()),
        Some(&admin),
        None,
    );
    assert_eq!((r.status, error_code(&r)), (409, "last_stage".to_string()));
    let r = t.req(
        Method::Delete,
        &format!("/api/clients/{ACME}/pipelines/{}", foreign["id"].as_str().unwrap()),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        count(
            &t,
            &format!(
                "SELECT count(*) AS n FROM pipeline_stages WHERE pipeline_id = '{}'",
                foreign["id"].as_str().unwrap()
            )
        ),
        0
    );
}

#[test]
fn deals_move_close_and_refuse_foreign_references() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let globex = t.login("admin@globex.test");
    let p = pipeline(&t, &admin, &["New", "Won"]);
    let pid = p["id"].as_str().unwrap();
    let s = stage_ids(&p);
    let ada = contact(&t, &admin, "Ada", "ada@example.com");
    let deals = format!("/api/clients/{ACME}/deals");

    // References must be this client's: a Globex contact, a Globex pipeline, an outside owner.
    let gp = post(&t, &globex, &format!("/api/clients/{GLOBEX}/pipelines"), json!({"name": "G", "stages": ["A"]}));
    let gpid = json_of(&gp)["id"].as_str().unwrap().to_string();
    let gc = post(&t, &globex, &format!("/api/clients/{GLOBEX}/contacts"), json!({"name": "Gil"}));
    let gcid = json_of(&gc)["id"].as_str().unwrap().to_string();
    let outsider =
        t.p.sql("SELECT id FROM users WHERE email = 'admin@globex.test'")[0]["id"].as_str().unwrap().to_string();
    let acme_user =
        t.p.sql("SELECT id FROM users WHERE email = 'user@acme.test'")[0]["id"].as_str().unwrap().to_string();
    let agency_user = t.p.sql("SELECT id FROM users WHERE email = 'agency.user@northwind.test'")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deals_before = count(&t, "SELECT count(*) AS n FROM deals");
    let moves_before = count(&t, "SELECT count(*) AS n FROM deal_stage_history");
    for (body, code) in [
        (json!({"title": "x", "pipeline_id": gpid}), "unknown_pipeline"),
        (json!({"title": "x", "pipeline_id": pid, "stage_id": json_of(&gp)["stages"][0]["id"]}), "unknown_stage"),
        (json!({"title": "x", "pipeline_id": pid, "contact_id": gcid}), "unknown_contact"),
        (json!({"title": "x", "pipeline_id": pid, "owner_user_id": outsider}), "unknown_owner"),
        (json!({"title": "x", "pipeline_id": pid, "currency": "XYZ"}), "invalid_currency"),
        (json!({"title": "x", "pipeline_id": pid, "value_minor": -5}), "invalid_value"),
        (json!({"title": "x", "pipeline_id": pid, "expected_close_date": "2027-02-30"}), "invalid_date"),
        (json!({"title": "x", "pipeline_id": pid, "status": "won"}), "forbidden_field"),
    ] {
        let r = post(&t, &admin, &deals, body.clone());
        assert_eq!((r.status, error_code(&r)), (422, code.to_string()), "{body}");
    }
    assert_eq!(count(&t, "SELECT count(*) AS n FROM deals"), deals_before, "nothing half-written");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM deal_stage_history"), moves_before);

    let make = |owner: &str| {
        let r = post(
            &t,
            &admin,
            &deals,
            json!({"title": "Roof", "pipeline_id": pid, "contact_id": ada, "owner_user_id": owner, "value_minor": 990000, "expected_close_date": "2027-03-31"}),
        );
        assert_eq!(r.status, 201, "{}", body_str(&r));
        json_of(&r)
    };
    make(&agency_user);
    let d = make(&acme_user);
    let id = d["id"].as_str().unwrap();
    let path = format!("{deals}/{id}");

    // Move, win, reopen, lose with a reason.
    let r = t.req(Method::Patch, &path, Some(&admin), Some(json!({"stage_id": s[1], "status": "won"})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let v = json_of(&r);
    assert_eq!((v["stage_id"].as_str(), v["status"].as_str()), (Some(s[1].as_str()), Some("won")));
    assert!(v["closed_at"].is_i64());
    let r = t.req(
        Method::Patch,
        &path,
        Some(&admin),
        Some(json!({"status": "lost", "lost_reason": "Went with a competitor"})),
    );
    assert_eq!(json_of(&r)["lost_reason"], "Went with a competitor");
    let r = t.req(Method::Patch, &path, Some(&admin), Some(json!({"status": "open"})));
    let v = json_of(&r);
    assert!(v["closed_at"].is_null() && v["lost_reason"].is_null(), "{v}");
    let r = t.req(Method::Patch, &path, Some(&admin), Some(json!({"lost_reason": "x"})));
    assert_eq!(r.status, 422, "a lost reason on an open deal");
    let r = t.req(Method::Patch, &path, Some(&admin), Some(json!({"stage_id": json_of(&gp)["stages"][0]["id"]})));
    assert_eq!((r.status, error_code(&r)), (422, "unknown_stage".to_string()));
    let r = t.req(Method::Patch, &path, Some(&admin), Some(json!({"contact_id": null, "owner_user_id": null})));
    assert_eq!(r.status, 200);
    let history = json_of(&t.req(Method::Get, &format!("{path}/history"), Some(&admin), None));
    assert_eq!(history["items"].as_array().unwrap().len(), 2, "placed, then one move: {history}");
    assert_eq!(
        count(&t, &format!("SELECT count(*) AS n FROM audit_log WHERE target_id = '{id}' AND action = 'deal.moved'")),
        1
    );

    // Filters and deletion with notes.
    let open = t.req(Method::Get, &format!("{deals}?status=open&pipeline={pid}"), Some(&admin), None);
    assert_eq!(json_of(&open)["items"].as_array().unwrap().len(), 2);
    assert_eq!(t.req(Method::Get, &format!("{deals}?stage=nope"), Some(&admin), None).status, 400);
    post(&t, &admin, &format!("{path}/notes"), json!({"body": "Sent the contract."}));
    assert_eq!(t.req(Method::Delete, &path, Some(&admin), None).status, 204);
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM notes WHERE subject_id = '{id}'")), 0);
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM deal_stage_history WHERE deal_id = '{id}'")), 0);
    assert_eq!(t.req(Method::Get, &path, Some(&admin), None).status, 404);

    // Viewers read deals but do not write them.
    let viewer = t.login("viewer@acme.test");
    assert_eq!(t.req(Method::Get, &deals, Some(&viewer), None).status, 200);
    assert_eq!(post(&t, &viewer, &deals, json!({"title": "x", "pipeline_id": pid})).status, 403);
}

#[test]
fn the_board_lists_stages_in_order_with_counts_sums_per_currency_and_paged_deals() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let p = pipeline(&t, &admin, &["New", "Proposal", "Won"]);
    let pid = p["id"].as_str().unwrap();
    let s = stage_ids(&p);
    let deals = format!("/api/clients/{ACME}/deals");
    for (i, (stage, value, currency)) in
        [(0, 1000, "USD"), (0, 2500, "USD"), (0, 700, "EUR"), (1, 5000, "USD"), (0, 1, "USD")].iter().enumerate()
    {
        let r = post(
            &t,
            &admin,
            &deals,
            json!({"title": format!("Deal {i}"), "pipeline_id": pid, "stage_id": s[*stage], "value_minor": value, "currency": currency}),
        );
        assert_eq!(r.status, 201, "{}", body_str(&r));
    }
    let r = t.req(Method::Get, &format!("/api/clients/{ACME}/pipelines/{pid}/board?limit=3"), Some(&admin), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let b = json_of(&r);
    let cols = b["columns"].as_array().unwrap();
    let names: Vec<&str> = cols.iter().map(|c| c["stage"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["New", "Proposal", "Won"]);
    assert_eq!(cols[0]["count"], 4);
    assert_eq!(cols[0]["deals"].as_array().unwrap().len(), 3, "paged at the limit");
    let cursor = cols[0]["next_cursor"].as_str().unwrap();
    assert_eq!(
        cols[0]["totals"],
        json!([{"currency": "EUR", "value_minor": 700}, {"currency": "USD", "value_minor": 3501}])
    );
    assert_eq!((cols[1]["count"].as_i64(), cols[1]["next_cursor"].is_null()), (Some(1), true));
    assert_eq!((cols[2]["count"].as_i64(), cols[2]["deals"].as_array().unwrap().len()), (Some(0), 0));
    let rest = t.req(Method::Get, &format!("{deals}?stage={}&cursor={cursor}&limit=3", s[0]), Some(&admin), None);
    assert_eq!(json_of(&rest)["items"].as_array().unwrap().len(), 1, "the stage's next page");
    assert_eq!(
        t.req(Method::Get, &format!("/api/clients/{ACME}/pipelines/{pid}/board?status=maybe"), Some(&admin), None)
            .status,
        400
    );
}

#[test]
fn another_client_sees_none_of_it() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let globex = t.login("admin@globex.test");
    let p = pipeline(&t, &admin, &["New"]);
    let pid = p["id"].as_str().unwrap();
    let deal = json_of(&post(
        &t,
        &admin,
        &format!("/api/clients/{ACME}/deals"),
        json!({"title": "Secret", "pipeline_id": pid}),
    ));
    let did = deal["id"].as_str().unwrap();
    let tag = json_of(&post(&t, &admin, &format!("/api/clients/{ACME}/tags"), json!({"name": "Secret"})));
    let tid = tag["id"].as_str().unwrap();
    // Globex's admin, through Globex's own client path and through Acme's.
    for client in [GLOBEX, ACME] {
        for (m, path, body) in [
            (Method::Get, format!("/api/clients/{client}/pipelines/{pid}"), None),
            (Method::Get, format!("/api/clients/{client}/pipelines/{pid}/board"), None),
            (Method::Patch, format!("/api/clients/{client}/pipelines/{pid}"), Some(json!({"name": "mine"}))),
            (Method::Post, format!("/api/clients/{client}/pipelines/{pid}/stages"), Some(json!({"name": "mine"}))),
            (Method::Get, format!("/api/clients/{client}/deals/{did}"), None),
            (Method::Patch, format!("/api/clients/{client}/deals/{did}"), Some(json!({"title": "mine"}))),
            (Method::Delete, format!("/api/clients/{client}/deals/{did}"), None),
            (Method::Get, format!("/api/clients/{client}/deals/{did}/history"), None),
            (Method::Get, format!("/api/clients/{client}/deals/{did}/notes"), None),
            (Method::Post, format!("/api/clients/{client}/deals/{did}/notes"), Some(json!({"body": "mine"}))),
            (Method::Patch, format!("/api/clients/{client}/tags/{tid}"), Some(json!({"name": "mine"}))),
            (Method::Delete, format!("/api/clients/{client}/tags/{tid}"), None),
            (Method::Delete, format!("/api/clients/{client}/pipelines/{pid}"), None),
        ] {
            let r = t.req(m, &path, Some(&globex), body);
            assert_eq!(r.status, 404, "{m:?} {path}: {}", body_str(&r));
            assert!(!body_str(&r).contains("Secret"), "{path} leaked");
        }
    }
    let list = t.req(Method::Get, &format!("/api/clients/{GLOBEX}/deals"), Some(&globex), None);
    assert_eq!(json_of(&list)["items"].as_array().unwrap().len(), 0);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM deals WHERE title = 'Secret'"), 1);
}

#[test]
fn a_members_contact_page_with_tags_costs_two_queries_and_staff_pay_one_more() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let id = contact(&t, &admin, "Tagged", "tagged@example.org");
    let tag = json_of(&post(&t, &admin, &format!("/api/clients/{ACME}/tags"), json!({"name": "Zeta"})))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t.req(Method::Put, &format!("/api/clients/{ACME}/contacts/{id}/tags/{tag}"), Some(&admin), None);
    assert_eq!(r.status, 204);
    // A client member: the membership query brings the client along, the list brings the tags.
    let before = t.p.queries.get();
    let r = t.req(Method::Get, &format!("/api/clients/{ACME}/contacts?limit=100"), Some(&admin), None);
    assert_eq!(r.status, 200);
    assert_eq!(t.p.queries.get() - before, 2);
    let items = json_of(&r)["items"].as_array().unwrap().clone();
    let tagged = items.iter().find(|c| c["id"] == id.as_str()).unwrap();
    assert_eq!(tagged["tags"], json!([{"id": tag, "name": "Zeta", "color": null}]));
    assert!(items.iter().filter(|c| c["id"] != id.as_str()).all(|c| c["tags"].is_array()));
    // Agency staff read the client itself.
    let agency = t.login("agency.admin@northwind.test");
    let before = t.p.queries.get();
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/contacts"), Some(&agency), None).status, 200);
    assert_eq!(t.p.queries.get() - before, 3);
    // The home client never stands in for another: Globex is still a 404 for Acme's admin.
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{GLOBEX}/contacts"), Some(&admin), None).status, 404);
}

/// A contacts page is built as JSON by SQLite, a contact alone by serde: the two must agree on
/// every field of every item, for awkward text, missing fields and tags, and the page's cursor must
/// walk the list exactly once.
#[test]
fn a_contacts_page_shows_each_contact_exactly_as_it_reads_alone() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let base = format!("/api/clients/{ACME}/contacts");
    let awkward = [
        json!({"name": "Zoë \"Quotes\" O'Brien", "email": "zoe@example.com", "message": "back\\slash\nnew line\ttab"}),
        json!({"name": "名前 🚀 </script>", "phone": "+81 3 1234 5678"}),
        json!({"name": "Plain"}),
    ];
    let mut ids = Vec::new();
    for body in awkward {
        let r = post(&t, &admin, &base, body.clone());
        assert_eq!(r.status, 201, "{body}: {}", body_str(&r));
        ids.push(json_of(&r)["id"].as_str().unwrap().to_string());
    }
    for name in ["b-tag", "A-tag"] {
        let tag = json_of(&post(&t, &admin, &format!("/api/clients/{ACME}/tags"), json!({"name": name})))["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = t.req(Method::Put, &format!("{base}/{}/tags/{tag}", ids[0]), Some(&admin), None);
        assert_eq!(r.status, 204);
    }

    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = t.req(Method::Get, &format!("{base}?limit=2&cursor={cursor}"), Some(&admin), None);
        assert_eq!(r.status, 200, "{}", body_str(&r));
        assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
        let page = json_of(&r);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        for item in items {
            let id = item["id"].as_str().unwrap();
            let alone = json_of(&t.req(Method::Get, &format!("{base}/{id}"), Some(&admin), None));
            assert_eq!(item, &alone, "the page's item and the contact alone differ");
            seen.push(id.to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), 2, "a cursor only after a full page");
                assert_eq!(next, items[1]["id"].as_str().unwrap());
                cursor = next.to_string();
            }
            None => {
                assert!(page["next_cursor"].is_null());
                break;
            }
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "in id order, each once");
    for id in &ids {
        assert!(seen.contains(id), "{id} missing from the pages");
    }
    let tagged = json_of(&t.req(Method::Get, &format!("{base}/{}", ids[0]), Some(&admin), None));
    assert_eq!(
        tagged["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["A-tag", "b-tag"]
    );
    assert_eq!(tagged["message"], "back\\slash\nnew line\ttab");

    // Past the end, and a filter that matches nothing: an empty page, no cursor.
    let last = seen.last().unwrap();
    for path in [format!("{base}?cursor={last}"), format!("{base}?q=nobody-by-this-name")] {
        let r = t.req(Method::Get, &path, Some(&admin), None);
        assert_eq!(r.status, 200);
        assert_eq!(json_of(&r), json!({"items": [], "next_cursor": null}));
    }
}
