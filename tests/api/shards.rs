//! Where tenants' rows are: a new agency goes on the shard holding the fewest tenants, a new
//! client on its agency's, and each tenant's data rows are on its shard's database and no other.
//! Meaningful with any `GATEHOUSE_TEST_SHARDS` (0: one database holds both planes).

use crate::common::*;
use gatehouse::platform::http::Method;
use gatehouse::platform::ports::Database;
use gatehouse::seed::{ACME, GLOBEX};
use serde_json::json;

/// Rows of `table` naming `tenant` in `column`, on each shard's own database (or on the one
/// database when there are no shards).
fn per_shard(t: &TestApp, table: &str, column: &str, tenant: &str) -> Vec<i64> {
    let sql = format!("SELECT count(*) AS n FROM {table} WHERE {column} = '{tenant}'");
    let count = |db: &Sqlite| db.run_count(&sql);
    match t.p.db.shard_count() {
        0 => vec![count(t.p.db.control())],
        n => (0..n).map(|i| count(t.p.db.shard(i).unwrap())).collect(),
    }
}

#[test]
fn new_agencies_go_where_fewest_tenants_are_and_their_clients_rows_follow_them() {
    let t = TestApp::new();
    let shards = test_shards();
    let platform = t.login("admin@gatehouse.test");
    let home = |id: &str| {
        t.p.sql(&format!(
            "SELECT shard FROM clients WHERE id = '{id}' UNION ALL SELECT shard FROM agencies WHERE id = '{id}'"
        ))[0]["shard"]
            .as_i64()
            .unwrap()
    };
    // The demo: the agency and Acme on the first shard, Globex on the second when there is one.
    assert_eq!((home(ACME), home(GLOBEX)), (0, if shards > 1 { 1 } else { 0 }));
    let mut placed = Vec::new();
    for slug in ["contoso", "fabrikam"] {
        let r = t.req(Method::Post, "/api/agencies", Some(&platform), Some(json!({"name": slug, "slug": slug})));
        assert_eq!(r.status, 201, "{}", body_str(&r));
        let id = json_of(&r)["id"].as_str().unwrap().to_string();
        placed.push((id.clone(), home(&id)));
    }
    // Two shards: 2 tenants on the first, 1 on the second; the first new agency evens them, the
    // second goes to the first (ties go to the lower number). One shard or none: all on 0.
    let want: Vec<i64> = if shards > 1 { vec![1, 0] } else { vec![0, 0] };
    assert_eq!(placed.iter().map(|(_, s)| *s).collect::<Vec<_>>(), want);
    // A client of the agency on the second shard is made there, and its contacts are written
    // on that shard's database alone.
    let (agency, agency_shard) = placed[0].clone();
    t.p.exec(&format!("UPDATE agencies SET signup_verified = 1 WHERE id = '{agency}'"));
    let r = t.req(
        Method::Post,
        &format!("/api/clients?agency_id={agency}"),
        Some(&platform),
        Some(json!({"name": "Tenant", "slug": "tenant-co"})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let client = json_of(&r)["id"].as_str().unwrap().to_string();
    assert_eq!(home(&client), agency_shard);
    let r = t.req(
        Method::Post,
        &format!("/api/clients/{client}/contacts"),
        Some(&platform),
        Some(json!({"name": "Dee", "email": "dee@example.com"})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let counts = per_shard(&t, "contacts", "client_id", &client);
    let mut want = vec![0; counts.len()];
    want[if shards == 0 { 0 } else { agency_shard as usize }] = 1;
    assert_eq!(counts, want, "the contact is on its client's shard and no other");
    // Its audit rows (the contact's, and the client's creation, relayed from the control plane)
    // are on the same shard.
    let audit = per_shard(&t, "audit_log", "tenant_id", &client);
    let held: i64 = audit.iter().sum();
    assert!(held >= 2, "{audit:?}");
    assert_eq!(audit[if shards == 0 { 0 } else { agency_shard as usize }], held, "{audit:?}");
}

#[test]
fn a_client_on_the_second_shard_is_served_its_own_rows_on_its_custom_portal_domain() {
    let t = TestApp::new();
    let globex = t.login("admin@globex.test");
    let platform = t.login("admin@gatehouse.test");
    let r = t.req(
        Method::Post,
        &format!("/api/clients/{GLOBEX}/contacts"),
        Some(&globex),
        Some(json!({"name": "Portal Pat", "email": "pat@example.com"})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let host = "portal.globex-dental.example";
    let d = t.req(
        Method::Post,
        &format!("/api/clients/{GLOBEX}/domains"),
        Some(&globex),
        Some(json!({"domain": host, "purpose": "portal"})),
    );
    assert_eq!(d.status, 201, "{}", body_str(&d));
    let id = json_of(&d)["id"].as_str().unwrap().to_string();
    let v = t.req(
        Method::Post,
        &format!("/api/clients/{GLOBEX}/domains/{id}/verify"),
        Some(&platform),
        Some(json!({"force": true})),
    );
    assert_eq!(v.status, 200, "{}", body_str(&v));
    // Signed in on the client's own domain, the portal principal carries the client's row, and
    // with it the shard its data is on.
    let login = t.req_on(
        host,
        Method::Post,
        "/api/auth/login",
        None,
        Some(json!({"email": "admin@globex.test", "password": t.password("admin@globex.test")})),
    );
    assert_eq!(login.status, 200, "{}", body_str(&login));
    let token = json_of(&login)["access_token"].as_str().unwrap().to_string();
    let list = t.req_on(host, Method::Get, &format!("/api/clients/{GLOBEX}/contacts"), Some(&token), None);
    assert_eq!(list.status, 200, "{}", body_str(&list));
    let body = json_of(&list);
    let names: Vec<&str> = body["items"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.contains(&"Portal Pat"), "{names:?}");
}
