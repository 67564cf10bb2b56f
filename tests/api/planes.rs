//! The two planes at test time (ARCHITECTURE.md, "Scaling"). Every statement and every batch the
//! native suite runs passes `check`: one that reads or writes tables of both the control plane
//! and a data shard fails its test, so a join across the planes is caught where it is written.
//! (Tables kept in both planes, `schema::IN_BOTH_PLANES`, go with either.)

pub use gatehouse::platform::planes::{crossing as signature, touches};

/// Fails the calling test on a statement or batch that joins the planes.
pub fn check<'a>(sqls: impl IntoIterator<Item = &'a str>) {
    if let Some(sig) = signature(sqls) {
        panic!("a statement or batch joins the control plane and a data shard ({sig}); see tests/api/planes.rs");
    }
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
