//! The two planes at test time (ARCHITECTURE.md, "Scaling"). Every statement and every batch the
//! native suite runs passes `check`: one that reads or writes tables of both the control plane
//! and a data shard fails its test, so a join across the planes is caught where it is written.
//! (Tables kept in both planes, `schema::IN_BOTH_PLANES`, go with either.)

pub use gatehouse::platform::planes::{crossing as signature, touches};
use gatehouse::platform::planes::{plane, tenant_param, Plane};
use gatehouse::platform::ports::Param;

/// Batches that write several tenants' shard rows, and why a router can still run each on one
/// shard.
const MULTI_TENANT: &[(&str, &str)] = &[
    (gatehouse::ops::UPSERT_DAY, "the counters' flush: written one batch per shard, grouped by each tenant's"),
    (gatehouse::settings::REWRAP, "key rotation: rewraps the rows one shard's scan read, on that shard"),
];

/// Fails the calling test on a statement or batch that joins the planes, or on data-shard
/// statements whose tenants the router could not place on one shard: each names its tenant in
/// the parameter `planes::tenant_param` reads (or is a listed scan, naming none), and a shard
/// batch names one tenant, or an agency and one of its clients (which share the agency's shard),
/// unless it is one of `MULTI_TENANT`. A batch with a control-plane statement runs there whole.
pub fn check(stmts: &[(&str, &[Param])]) {
    if let Some(sig) = signature(stmts.iter().map(|(sql, _)| *sql)) {
        panic!("a statement or batch joins the control plane and a data shard ({sig}); see tests/api/planes.rs");
    }
    if stmts.iter().any(|(sql, _)| plane(sql) == Plane::Control) {
        return;
    }
    let mut tenants = std::collections::BTreeSet::new();
    for (sql, params) in stmts {
        if plane(sql) == Plane::Control {
            continue;
        }
        let Some(n) = tenant_param(sql) else { continue };
        match params.get(n - 1) {
            Some(Param::Text(t)) if t.starts_with("cli_") || t.starts_with("agy_") || t == "platform" => {
                tenants.insert(t.clone());
            }
            other => panic!("parameter ?{n} of a shard statement is not a tenant ({other:?}): {sql}"),
        }
    }
    let clients = tenants.iter().filter(|t| t.starts_with("cli_")).count();
    let listed = stmts.iter().all(|(sql, _)| MULTI_TENANT.iter().any(|(m, _)| m == sql));
    assert!(
        listed || (clients <= 1 && tenants.len() <= 2),
        "one batch writes the shards of several tenants ({tenants:?}): {:?}",
        stmts.iter().map(|(s, _)| &s[..s.len().min(60)]).collect::<Vec<_>>()
    );
}

#[test]
fn a_join_of_the_planes_is_seen_and_one_plane_is_not() {
    assert_eq!(signature(["SELECT id FROM contacts WHERE client_id = ?1"]), None);
    assert_eq!(
        signature(["INSERT INTO agency_memberships (user_id) VALUES (?1)", "INSERT INTO audit_log (id) VALUES (?1)"]),
        None
    );
    assert_eq!(
        signature(["UPDATE deals SET owner = ?1 WHERE EXISTS (SELECT 1 FROM client_users WHERE client_id = ?2)"]),
        Some("client_users | deals".into())
    );
    // A batch is judged whole: a shard write held in the control plane is one plane's.
    assert_eq!(
        signature([
            "UPDATE domains SET status = ?3 WHERE client_id = ?1",
            "INSERT INTO shard_writes (id) SELECT ?1 WHERE changes() > 0",
            "INSERT INTO usage_events (id) VALUES (?1)",
        ]),
        None
    );
    assert_eq!(
        signature(["UPDATE domains SET status = ?3", "INSERT INTO events (id) VALUES (?1)"]),
        Some("domains | events".into())
    );
}
