//! The audit logs: each tenant's hash chain (sealing, verification, and the breaks raw SQL leaves),
//! the CSV export, and who reads the agency's and the platform's logs.

use crate::common::*;
use gatehouse::platform::http::Method;
use gatehouse::seed::{ACME, AGENCY, GLOBEX};
use serde_json::{json, Value};

fn verify(t: &TestApp, token: &str, path: &str) -> Value {
    let r = t.req(Method::Get, &format!("{path}/audit/verify"), Some(token), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    json_of(&r)
}

/// A few changes in acme, each with its audit row.
fn some_changes(t: &TestApp, token: &str, n: usize) {
    for i in 0..n {
        let r = t.req(
            Method::Put,
            &format!("/api/clients/{ACME}"),
            Some(token),
            Some(json!({"name": format!("Acme Plumbing {i}")})),
        );
        assert_eq!(r.status, 200, "{}", body_str(&r));
    }
    assert!(
        t.p.sql(&format!("SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{ACME}'"))[0]["n"].as_i64().unwrap()
            > n as i64
    );
}

#[test]
fn each_tenant_has_an_unbroken_chain_with_one_seq_per_row() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    some_changes(&t, &admin, 5);
    let report = verify(&t, &admin, &format!("/api/clients/{ACME}"));
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["pending"], 0, "everything written was sealed by the verify");
    let rows = t.p.sql(&format!("SELECT seq, prev_hash, hash FROM audit_log WHERE tenant_id = '{ACME}' ORDER BY seq"));
    assert_eq!(report["rows"], rows.len() as i64);
    assert_eq!(report["head"]["hash"], rows.last().unwrap()["hash"]);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["seq"], i as i64 + 1, "contiguous from 1");
        let prev = if i == 0 { "0".repeat(64) } else { rows[i - 1]["hash"].as_str().unwrap().to_string() };
        assert_eq!(r["prev_hash"], prev.as_str(), "each row links the one before");
    }
    // Another tenant's chain is its own.
    let globex: Vec<_> = t.p.sql(&format!("SELECT seq FROM audit_log WHERE tenant_id = '{GLOBEX}' ORDER BY seq"));
    assert!(globex.iter().enumerate().all(|(i, r)| r["seq"] == i as i64 + 1));
    // Verifying twice seals nothing new and reports the same head.
    assert_eq!(verify(&t, &admin, &format!("/api/clients/{ACME}"))["head"], report["head"]);
}

#[test]
fn raw_sql_edits_deletions_and_relinks_are_each_reported_at_the_first_broken_row() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    some_changes(&t, &admin, 6);
    let path = format!("/api/clients/{ACME}");
    assert_eq!(verify(&t, &admin, &path)["ok"], true);
    let row =
        |seq: i64| t.p.sql(&format!("SELECT * FROM audit_log WHERE tenant_id = '{ACME}' AND seq = {seq}"))[0].clone();

    // An edited field.
    let original = row(3);
    t.p.exec(&format!("UPDATE audit_log SET action = 'contact.viewed' WHERE tenant_id = '{ACME}' AND seq = 3"));
    let r = verify(&t, &admin, &path);
    assert_eq!(r["ok"], false);
    assert_eq!(r["first_break"], json!({"seq": 3, "id": original["id"], "reason": "edited"}));
    assert_eq!(r["rows"], 2, "the rows before the break still hold");
    t.p.exec(&format!(
        "UPDATE audit_log SET action = '{}' WHERE tenant_id = '{ACME}' AND seq = 3",
        original["action"].as_str().unwrap()
    ));
    assert_eq!(verify(&t, &admin, &path)["ok"], true, "put back, it holds again");

    // A hash recomputed by someone who edited the row, without the links after it.
    t.p.exec(&format!("UPDATE audit_log SET prev_hash = '{}' WHERE tenant_id = '{ACME}' AND seq = 4", "f".repeat(64)));
    let r = verify(&t, &admin, &path);
    assert_eq!(r["first_break"]["reason"], "relinked");
    assert_eq!(r["first_break"]["seq"], 4);
    t.p.exec(&format!(
        "UPDATE audit_log SET prev_hash = '{}' WHERE tenant_id = '{ACME}' AND seq = 4",
        row(3)["hash"].as_str().unwrap()
    ));

    // A removed row.
    t.p.exec(&format!("DELETE FROM audit_log WHERE tenant_id = '{ACME}' AND seq = 2"));
    let r = verify(&t, &admin, &path);
    assert_eq!(r["first_break"], json!({"seq": 2, "id": null, "reason": "missing"}));
    // New rows after a break are not sealed over it: the break stays visible.
    some_changes(&t, &admin, 1);
    assert_eq!(verify(&t, &admin, &path)["first_break"]["seq"], 2);
}

#[test]
fn the_seq_is_taken_inside_the_insert_so_a_refused_change_leaves_no_gap() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    some_changes(&t, &admin, 2);
    // A delete of nothing writes no audit row, and so takes no seq.
    let r = t.req(
        Method::Delete,
        &format!("/api/clients/{ACME}/contacts/ctc_000000000000000000000000"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 404);
    let tag = t.req(Method::Post, &format!("/api/clients/{ACME}/tags"), Some(&admin), Some(json!({"name": "Gap"})));
    let tag = json_of(&tag)["id"].as_str().unwrap().to_string();
    let del = |expect: u16| {
        let r = t.req(Method::Delete, &format!("/api/clients/{ACME}/tags/{tag}"), Some(&admin), None);
        assert_eq!(r.status, expect, "{}", body_str(&r));
    };
    del(204);
    del(404);
    some_changes(&t, &admin, 1);
    let seqs: Vec<i64> =
        t.p.sql(&format!("SELECT seq FROM audit_log WHERE tenant_id = '{ACME}' ORDER BY seq"))
            .iter()
            .map(|r| r["seq"].as_i64().unwrap())
            .collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert_eq!(verify(&t, &admin, &format!("/api/clients/{ACME}"))["ok"], true);
}

#[test]
fn the_csv_export_is_rfc_4180_ranged_paged_and_redacted_like_the_json_view() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    // 1,005 rows with hostile text, written straight to the table (the export seals them first).
    t.p.exec(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1005) \
         INSERT INTO audit_log (id, tenant_id, at, actor_user_id, actor_role, action, target_type, target_id, ip, \
         user_agent, metadata, seq) SELECT printf('%013d_x%04d', 1800000000000 + i, i), '{ACME}', 1800000000000 + i, \
         NULL, 'client_admin', 'contact.updated', 'contact', 'ctc_x', '203.0.113.9', '=cmd|\"/c calc\"!A1', \
         '{{\"fields\":[\"name\",\"email\"]}}', (SELECT coalesce(max(seq), 0) FROM audit_log WHERE tenant_id = '{ACME}') + i \
         FROM n"
    ));
    let get = |q: &str| t.req(Method::Get, &format!("/api/clients/{ACME}/audit/export{q}"), Some(&admin), None);
    // The test clock stands at 1800000000000 (2027-01-15T08:00:00Z): the rows requests wrote are
    // at that instant, these just after it.
    let first = get("?from=2027-01-15T08:00:00.001Z");
    assert_eq!(first.status, 200, "{}", body_str(&first));
    assert_eq!(first.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = body_str(&first);
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "seq,id,at,actor_user_id,actor_role,action,target_type,target_id,ip,user_agent,metadata,hash");
    assert_eq!(lines.len(), 1 + 1000, "a page of 1,000 rows after the header");
    assert!(lines[1].contains(",2027-01-15T08:00:00.001Z,"), "{}", lines[1]);
    assert!(
        lines[1].contains(r#",203.0.113.9,"'=cmd|""/c calc""!A1","{""fields"":[""name"",""email""]}","#),
        "{}",
        lines[1]
    );
    let next = first.header("link").unwrap();
    assert!(
        next.starts_with(&format!("</api/clients/{ACME}/audit/export?from=2027-01-15T08%3A00%3A00.001Z&after=")),
        "{next}"
    );
    let next_path = &next[1..next.find('>').unwrap()];
    let second = t.req(Method::Get, next_path, Some(&admin), None);
    let rest: Vec<String> = body_str(&second).split("\r\n").filter(|l| !l.is_empty()).map(String::from).collect();
    assert_eq!(rest.len(), 5, "the last five, no header");
    assert!(second.header("link").is_none());
    // A closed range, and a bad one.
    let day = get("?from=2027-01-15T08:00:00.100Z&to=2027-01-15T08:00:00.110Z");
    assert_eq!(body_str(&day).split("\r\n").filter(|l| !l.is_empty()).count(), 1 + 10);
    assert_eq!(error_code(&get("?from=yesterday")), "invalid_range");
    assert_eq!(error_code(&get("?from=2027-02-01&to=2027-01-01")), "invalid_range");
    // Agency staff's network details are withheld from a client's own view, as in the JSON.
    let agency = t.login("agency.admin@northwind.test");
    let r =
        t.req(Method::Put, &format!("/api/clients/{ACME}"), Some(&agency), Some(json!({"name": "Acme Plumbing Co"})));
    assert_eq!(r.status, 200);
    let mine = body_str(&get("?from=2027-01-15&to=2027-01-15T08:00:00.001Z"));
    let row = mine.lines().find(|l| l.contains("client.updated")).unwrap().to_string();
    assert!(row.contains(",agency_admin,client.updated,client,"), "{row}");
    assert!(row.contains(",,,\"{"), "ip and user agent are blank for the client: {row}");
}

#[test]
fn agency_and_platform_logs_are_read_by_their_admins_only() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let r = t.req(Method::Put, &format!("/api/agencies/{AGENCY}"), Some(&agency), Some(json!({"name": "Northwind"})));
    assert_eq!(r.status, 200);
    let r = t.req(Method::Get, &format!("/api/agencies/{AGENCY}/audit"), Some(&agency), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert!(json_of(&r)["items"].as_array().unwrap().iter().any(|e| e["action"] == "agency.updated"));
    assert_eq!(verify(&t, &agency, &format!("/api/agencies/{AGENCY}"))["ok"], true);
    // Client admins do not reach the agency's log, and agency users lack audit:read.
    let client_admin = t.login("admin@acme.test");
    assert_eq!(t.req(Method::Get, &format!("/api/agencies/{AGENCY}/audit"), Some(&client_admin), None).status, 404);
    let agency_user = t.login("agency.user@northwind.test");
    assert_eq!(t.req(Method::Get, &format!("/api/agencies/{AGENCY}/audit"), Some(&agency_user), None).status, 403);
    // The platform's own log: failed logins and staff access land there.
    let platform = t.login("admin@gatehouse.test");
    let r = t.req(Method::Get, "/api/admin/audit", Some(&platform), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(t.req(Method::Get, "/api/admin/audit", Some(&agency), None).status, 403);
    assert_eq!(t.req(Method::Get, "/api/admin/audit/verify", Some(&platform), None).status, 200);
    let csv = t.req(Method::Get, "/api/admin/audit/export", Some(&platform), None);
    assert!(body_str(&csv).starts_with("seq,id,at,"));
}

/// Pages of a log, following `next_cursor` to the end.
fn all_pages(t: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    for _ in 0..50 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = t.req(Method::Get, &format!("{path}{sep}limit=3&cursor={cursor}"), Some(token), None);
        assert_eq!(r.status, 200, "{}", body_str(&r));
        let page = json_of(&r);
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return out,
        }
    }
    panic!("more than 50 pages");
}

#[test]
fn a_log_reads_in_the_order_things_happened_either_way_and_pages_cover_it_once() {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    for i in 0..8 {
        t.p.now_ms.set(t.p.now_ms.get() + 1000);
        let body = json!({"name": format!("Acme Plumbing {i}")});
        assert_eq!(t.req(Method::Put, &format!("/api/clients/{ACME}"), Some(&admin), Some(body)).status, 200);
    }
    let path = format!("/api/clients/{ACME}/audit");
    let oldest = all_pages(&t, &admin, &path);
    let newest = all_pages(&t, &admin, &format!("{path}?order=newest"));
    let total = t.p.sql(&format!("SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{ACME}'"))[0]["n"].as_u64();
    assert_eq!(Some(oldest.len() as u64), total, "every row once");
    let key = |e: &Value| (e["at"].as_i64().unwrap(), e["id"].as_str().unwrap().to_string());
    let keys: Vec<_> = oldest.iter().map(key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "oldest first, by time then id");
    let mut reversed: Vec<_> = newest.iter().map(key).collect();
    reversed.reverse();
    assert_eq!(reversed, keys, "newest first is the same log backwards");
    assert_eq!(newest[0]["action"], "client.updated", "the last change comes first");
    assert_eq!(newest[0]["at"].as_i64(), Some(t.p.now_ms.get()));
    for bad in ["?order=sideways", "?cursor=nonsense", "?order=newest&cursor=x.y"] {
        let r = t.req(Method::Get, &format!("{path}{bad}"), Some(&admin), None);
        assert_eq!(r.status, 400, "{bad}: {}", body_str(&r));
    }
}

#[test]
fn a_blank_contact_field_clears_it_and_an_absent_one_keeps_it() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let put = |path: &str, body: serde_json::Value| t.req(Method::Put, path, Some(&agency), Some(body));
    let client = format!("/api/clients/{ACME}");
    let set =
        put(&client, json!({"phone": "+1 555 0100", "website": "https://acme.example", "email": "hi@acme.example"}));
    assert_eq!(set.status, 200, "{}", body_str(&set));
    let cleared = json_of(&put(&client, json!({"phone": "", "email": " "})));
    assert_eq!((cleared["phone"].clone(), cleared["email"].clone()), (json!(null), json!(null)));
    assert_eq!(cleared["website"], "https://acme.example", "an absent field is kept");
    let kept = json_of(&put(&client, json!({"website": null})));
    assert_eq!(kept["website"], "https://acme.example", "null keeps it too");
    assert_eq!(put(&client, json!({"email": "not an address"})).status, 422);
    let agency_path = format!("/api/agencies/{AGENCY}");
    assert_eq!(put(&agency_path, json!({"phone": "+1 555 0199"})).status, 200);
    let a = json_of(&put(&agency_path, json!({"phone": ""})));
    assert_eq!(a["phone"], json!(null));
}
