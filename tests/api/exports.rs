//! Data exports: the archive holds every row the client owns (table by table from the schema's
//! tenancy map) and every file it stored, nothing of another tenant and no secret; the parts
//! keep R2's rules (the in-memory bucket enforces them); a step that dies is run again and the
//! archive comes out whole; only those with `data:export` on the client reach it.

use std::collections::BTreeMap;

use crate::common::*;
use gatehouse::files::export::{tables, WITHHELD};
use gatehouse::platform::http::{Method, Request};
use gatehouse::seed::{ACME, GLOBEX};
use serde_json::{json, Value};

/// Runs the queue as the consumer would, until it is empty (bounded).
fn run_queue(t: &TestApp) -> usize {
    let mut steps = 0;
    for _ in 0..200 {
        let messages: Vec<_> = t.p.queued.borrow_mut().drain(..).collect();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
            let ack = pollster::block_on(app.deliver(&m.body));
            if m.body.starts_with("exp_") {
                steps += 1;
                if ack == gatehouse::webhooks::delivery::Ack::Retry {
                    t.p.queued.borrow_mut().push(m);
                    return steps;
                }
            }
        }
    }
    steps
}

/// Objects under an export's pending folder (`tenants/{client}/exports/{export}/...`).
fn pending_objects(t: &TestApp) -> usize {
    t.p.blobs.borrow().keys().filter(|k| k.contains("/exports/") && !k.ends_with(".tar")).count()
}

/// The entries of a ustar archive, by path.
fn untar(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut at = 0;
    let field = |h: &[u8]| String::from_utf8(h.iter().copied().take_while(|b| *b != 0).collect()).unwrap();
    while at + 512 <= bytes.len() {
        let h = &bytes[at..at + 512];
        let name = field(&h[..100]);
        if name.is_empty() {
            break;
        }
        let prefix = field(&h[345..500]);
        let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let size = usize::from_str_radix(field(&h[124..136]).trim(), 8).unwrap();
        assert!(out.insert(path.clone(), bytes[at + 512..at + 512 + size].to_vec()).is_none(), "{path} twice");
        at += 512 + size.div_ceil(512) * 512;
    }
    assert!(bytes[at..].iter().all(|b| *b == 0) && bytes.len() - at >= 1024, "the end-of-archive blocks");
    out
}

fn lines_of(entries: &BTreeMap<String, Vec<u8>>, table: &str) -> Vec<Value> {
    entries
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("data/{table}/")))
        .flat_map(|(_, v)| {
            String::from_utf8(v.clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

fn export(t: &TestApp, token: &str) -> Value {
    let r = t.req(Method::Post, &format!("/api/clients/{ACME}/exports"), Some(token), None);
    assert_eq!(r.status, 202, "{}", body_str(&r));
    json_of(&r)
}

fn archive(t: &TestApp, token: &str, id: &str) -> BTreeMap<String, Vec<u8>> {
    let r = t.req(Method::Post, &format!("/api/clients/{ACME}/exports/{id}/link"), Some(token), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let url = json_of(&r)["url"].as_str().unwrap().to_string();
    let r = t.call(Request::new(Method::Get, &url).with_header("host", API));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(r.header("content-type"), Some("application/x-tar"));
    untar(&r.body)
}

fn fixtures(t: &TestApp, admin: &str) -> Vec<(String, Vec<u8>)> {
    let r = t.req(
        Method::Put,
        &format!("/api/clients/{ACME}/settings"),
        Some(admin),
        Some(json!({"twilio": {"account_sid": "AC-export", "auth_token": "tw-secret-never-exported"}})),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    // 3 MiB + 4 MiB + a small one: the archive spans two 5 MiB parts and a last one.
    let mut files = Vec::new();
    for (name, len) in [("big one.txt", 3 * 1024 * 1024), ("bigger.txt", 4 * 1024 * 1024), ("note.txt", 10)] {
        let bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let r = upload(t, admin, ACME, name, "text/plain", &bytes);
        assert_eq!(r.status, 201, "{}", body_str(&r));
        files.push((json_of(&r)["id"].as_str().unwrap().to_string(), bytes));
    }
    let globex = t.login("admin@globex.test");
    assert_eq!(upload(t, &globex, GLOBEX, "theirs.txt", "text/plain", b"globex only").status, 201);
    files
}

#[test]
fn an_export_holds_every_row_the_client_owns_and_its_files_and_no_secret() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let files = fixtures(&t, &admin);
    let e = export(&t, &admin);
    assert_eq!(e["status"], "queued");
    let again = t.req(Method::Post, &format!("/api/clients/{ACME}/exports"), Some(&admin), None);
    assert_eq!((again.status, error_code(&again).as_str()), (409, "export_running"));
    let id = e["id"].as_str().unwrap();
    let steps = run_queue(&t);
    assert!(steps >= 2, "the archive is written over several steps ({steps})");
    let done = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}/exports/{id}"), Some(&admin), None));
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["files"], 3);
    assert!(done["size"].as_i64().unwrap() > 7 * 1024 * 1024);

    let entries = archive(&t, &admin, id);
    let mut total = 0;
    for (table, col, _) in tables() {
        // (The export's own completion row is written after the audit log was read.)
        let want = t.p.sql(&format!(
            "SELECT count(*) AS n FROM {table} WHERE {col} = '{ACME}'{}",
            if table == "audit_log" { " AND action <> 'export.ready'" } else { "" }
        ))[0]["n"]
            .as_i64()
            .unwrap();
        let got = lines_of(&entries, table);
        assert_eq!(got.len() as i64, want, "{table}");
        assert!(got.iter().all(|l| l[col] == ACME), "{table}: only the client's rows");
        let withheld: &[&str] = WITHHELD.iter().find(|(t, _)| *t == table).map_or(&[], |(_, c)| c);
        assert!(got.iter().all(|l| withheld.iter().all(|c| l.get(*c).is_none())), "{table} withholds {withheld:?}");
        total += want;
    }
    assert!(total > 20, "the demo client has data to export ({total})");
    assert_eq!(done["rows"], total);
    for (id, bytes) in &files {
        let (_, got) =
            entries.iter().find(|(k, _)| k.starts_with(&format!("files/{id}/"))).expect("the file is in the archive");
        assert_eq!(got, bytes);
    }
    assert!(entries.contains_key(&format!("files/{}/big one.txt", files[0].0)));
    let everything: Vec<u8> = entries.values().flatten().copied().collect();
    let text = String::from_utf8_lossy(&everything);
    assert!(!text.contains(GLOBEX) && !text.contains("globex only"), "nothing of another tenant");
    assert!(entries.keys().all(|k| k == "manifest.json" || k.starts_with("data/") || k.starts_with("files/")));
    assert!(!text.contains("tw-secret-never-exported"), "no secret in plaintext");
    let manifest: Value = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    assert_eq!(manifest["client_id"], ACME);
    assert_eq!(manifest["files"], 3);
    let listed: Vec<Value> = entries
        .iter()
        .filter(|(k, _)| k.starts_with("files/index-"))
        .flat_map(|(_, v)| {
            String::from_utf8(v.clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect();
    assert_eq!(listed.len(), 3, "each archived file is listed once");
    assert!(listed.iter().all(|f| entries.contains_key(f["path"].as_str().unwrap())));
    assert_eq!(manifest["tables"]["contacts"], lines_of(&entries, "contacts").len());

    // The scaffolding is gone: no open upload, no pending object.
    assert!(t.p.uploads.borrow().is_empty());
    assert_eq!(pending_objects(&t), 0);
    let audit = t
        .p
        .sql(&format!("SELECT action FROM audit_log WHERE tenant_id = '{ACME}' AND target_id = '{id}' ORDER BY seq"));
    let actions: Vec<&str> = audit.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["export.requested", "export.ready"]);
    // A second export may start now that the first is done.
    assert_eq!(t.req(Method::Post, &format!("/api/clients/{ACME}/exports"), Some(&admin), None).status, 202);
}

#[test]
fn a_step_that_dies_is_run_again_and_the_archive_comes_out_whole() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let files = fixtures(&t, &admin);
    let id = export(&t, &admin)["id"].as_str().unwrap().to_string();
    // The first step uploads a part, writes its pending bytes, then dies saving its progress.
    *t.p.fail_sql_containing.borrow_mut() = Some("UPDATE exports SET upload_id".into());
    run_queue(&t);
    *t.p.fail_sql_containing.borrow_mut() = None;
    let stuck = t.p.sql(&format!("SELECT status, phase, lease_until FROM exports WHERE id = '{id}'"));
    assert_eq!(stuck[0]["phase"], 0, "no progress was recorded");
    // The failed step gave its lease back; its message is lost here (the queue gave up, say), and
    // the cron finds the export stalled a minute later and queues it again.
    assert_eq!(t.p.sql(&format!("SELECT lease_until FROM exports WHERE id = '{id}'"))[0]["lease_until"], Value::Null);
    t.p.queued.borrow_mut().clear();
    t.p.now_ms.set(t.p.now_ms.get() + 61_000);
    let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
    let report = pollster::block_on(app.scheduled("*/15 * * * *")).unwrap();
    assert_eq!(report["exports"]["requeued"], 1);
    run_queue(&t);
    let admin = t.login("admin@acme.test");
    let done = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}/exports/{id}"), Some(&admin), None));
    assert_eq!(done["status"], "ready", "{done}");
    let entries = archive(&t, &admin, &id);
    let contacts =
        t.p.sql(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}'"))[0]["n"].as_i64().unwrap();
    assert_eq!(lines_of(&entries, "contacts").len() as i64, contacts, "no chunk twice, none lost");
    for (fid, bytes) in &files {
        assert_eq!(entries.iter().find(|(k, _)| k.starts_with(&format!("files/{fid}/"))).unwrap().1, bytes);
    }
    assert_eq!(pending_objects(&t), 0, "the dead step's pending object is gone too");
}

#[test]
fn only_those_holding_data_export_on_the_client_reach_its_exports() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let id = export(&t, &admin)["id"].as_str().unwrap().to_string();
    let user = t.login("user@acme.test");
    assert_eq!(t.req(Method::Post, &format!("/api/clients/{ACME}/exports"), Some(&user), None).status, 403);
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/exports/{id}"), Some(&user), None).status, 403);
    let globex = t.login("admin@globex.test");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/exports/{id}"), Some(&globex), None).status, 404);
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{GLOBEX}/exports/{id}"), Some(&globex), None).status, 404);
    let agency = t.login("agency.admin@northwind.test");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/exports"), Some(&agency), None).status, 200);
    // Not ready yet: no link.
    let r = t.req(Method::Post, &format!("/api/clients/{ACME}/exports/{id}/link"), Some(&admin), None);
    assert_eq!((r.status, error_code(&r).as_str()), (409, "export_not_ready"));
    run_queue(&t);
    let r = t.req(Method::Post, &format!("/api/clients/{ACME}/exports/{id}/link"), Some(&admin), None);
    let url = json_of(&r)["url"].as_str().unwrap().to_string();
    // A link is bound to its client and its signature.
    for bad in [
        url.replace(ACME, GLOBEX),
        url.replace("&s=", "&s=A"),
        url.replace(&format!("/{id}?"), "/exp_zzzzzzzzzzzzzzzzzzzzzzzz?"),
    ] {
        let r = t.call(Request::new(Method::Get, &bad).with_header("host", API));
        assert_eq!((r.status, error_code(&r).as_str()), (403, "invalid_signature"), "{bad}");
    }
    // Past its week the archive is deleted by the cron, and its link dies with it.
    t.p.now_ms.set(t.p.now_ms.get() + 8 * 86_400_000);
    let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
    let report = pollster::block_on(app.scheduled("*/15 * * * *")).unwrap();
    assert_eq!(report["exports"]["expired"], 1);
    assert!(!t.p.blobs.borrow().keys().any(|k| k.contains("/exports/")));
    let admin = t.login("admin@acme.test");
    let r = t.call(Request::new(Method::Get, &url).with_header("host", API));
    assert_eq!(r.status, 403);
    let shown = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}/exports/{id}"), Some(&admin), None));
    assert_eq!(shown["status"], "expired");
}

#[test]
fn a_deleted_client_can_still_be_exported_by_its_agency_before_the_purge() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    assert_eq!(t.req(Method::Delete, &format!("/api/clients/{ACME}"), Some(&agency), None).status, 202);
    let r = t.req(Method::Post, &format!("/api/clients/{ACME}/exports"), Some(&agency), None);
    assert_eq!(r.status, 202, "{}", body_str(&r));
    run_queue(&t);
    let id = json_of(&r)["id"].as_str().unwrap().to_string();
    let done = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}/exports/{id}"), Some(&agency), None));
    assert_eq!(done["status"], "ready", "{done}");
    let contacts =
        t.p.sql(&format!("SELECT count(*) AS n FROM contacts WHERE client_id = '{ACME}'"))[0]["n"].as_i64().unwrap();
    assert_eq!(done["tables"]["contacts"].as_i64().unwrap_or(0), contacts);
}

#[test]
fn every_table_is_paged_by_an_index_search() {
    use gatehouse::files::export::page_sql;
    let t = TestApp::new();
    let mut slow = Vec::new();
    for (table, col, key) in tables() {
        let plan_sql = format!("EXPLAIN QUERY PLAN {}", page_sql(table, col, key));
        let mut st = t.p.conn_for(&plan_sql).prepare(&plan_sql).unwrap();
        let detail: Vec<String> = st
            .query_map(rusqlite::params![ACME, "", 500], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let ok = detail.iter().any(|d| d.starts_with("SEARCH") && (d.contains("INDEX") || d.contains("PRIMARY KEY")))
            && !detail.iter().any(|d| d.contains("TEMP B-TREE"));
        // Small by construction, sorted in memory: a row per provider field, per staff member and
        // service, per staff member and weekday.
        let small = ["client_settings", "staff_services", "staff_hours", "branding"].contains(&table);
        if !ok && !small {
            slow.push(format!("{table} by {key}: {detail:?}"));
        }
    }
    assert!(slow.is_empty(), "pages that are not an index search:\n{}", slow.join("\n"));
}

#[test]
fn an_upload_whose_part_was_replaced_is_started_over_and_still_completes() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let mut files = fixtures(&t, &admin);
    // 13 MiB in all: a step stops after 8, with two parts up and the archive not finished.
    let big = vec![b'z'; 6 * 1024 * 1024];
    let r = upload(&t, &admin, ACME, "six.bin", "text/plain", &big);
    files.push((json_of(&r)["id"].as_str().unwrap().to_string(), big));
    let id = export(&t, &admin)["id"].as_str().unwrap().to_string();
    // Run steps until the first part is up, then replace it under the export, as a worker whose
    // lease ran out would.
    for _ in 0..20 {
        if t.p.uploads.borrow().values().any(|u| !u.2.is_empty()) {
            break;
        }
        let m = t.p.queued.borrow_mut().drain(..).next().expect("a queued step");
        let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
        pollster::block_on(app.deliver(&m.body));
    }
    for u in t.p.uploads.borrow_mut().values_mut() {
        if let Some(first) = u.2.get_mut(&1) {
            first[0] ^= 0xff;
        }
    }
    run_queue(&t);
    let done = json_of(&t.req(Method::Get, &format!("/api/clients/{ACME}/exports/{id}"), Some(&admin), None));
    assert_eq!(done["status"], "ready", "{done}");
    assert!(t.p.logs.borrow().iter().any(|l| l.contains("starting over")));
    let entries = archive(&t, &admin, &id);
    for (fid, bytes) in &files {
        assert_eq!(entries.iter().find(|(k, _)| k.starts_with(&format!("files/{fid}/"))).unwrap().1, bytes);
    }
    assert_eq!(done["files"], 4, "counted once, not once per attempt");
    assert!(t.p.uploads.borrow().is_empty(), "the replaced upload was aborted");
}
