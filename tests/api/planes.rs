//! The two planes at test time (ARCHITECTURE.md, "Scaling"). Every statement and every batch the
//! native suite runs passes `check`: one that reads or writes tables of both the control plane
//! and a data shard fails its test unless `MIXED` lists it with what replaces it, so a new join
//! across the planes is caught where it is written. Run the suite with
//! `GATEHOUSE_RECORD_PLANES=<file>` to append unlisted ones to a file instead of failing.

use std::collections::BTreeSet;

use gatehouse::platform::schema::{CONTROL_PLANE, GLOBAL, IN_BOTH_PLANES, TENANT_OWNED};

/// The statements and batches that join the planes today, by the tables they touch
/// (`control tables | shard tables`), and what each becomes once the planes are separate databases.
const MIXED: &[(&str, &str)] = &[
    (
        "agencies branding clients | pipeline_stages pipelines services",
        "a client made from a template: its directory row first (provisioning), its shard's rows second; the cron finishes a half-made client",
    ),
    (
        "branding clients | pipeline_stages pipelines services",
        "a template push: branding written in the control plane, pipelines and services on the shard, each step idempotent by version",
    ),
];

/// Whether lowercased SQL reads or writes `table`, by the keywords that name a table.
pub fn touches(lower: &str, table: &str) -> bool {
    [" from ", " join ", "update ", " into ", "delete from "]
        .iter()
        .any(|kw| lower.contains(&format!("{kw}{table} ")) || lower.ends_with(&format!("{kw}{table}")))
}

/// `control | shard` when the statements touch both planes.
pub fn signature<'a>(sqls: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let (mut control, mut shard) = (BTreeSet::new(), BTreeSet::new());
    for sql in sqls {
        let lower = format!(" {}", sql.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase());
        for table in TENANT_OWNED.iter().map(|(t, _)| *t).chain(GLOBAL.iter().map(|(t, _)| *t)) {
            if IN_BOTH_PLANES.contains(&table) || !touches(&lower, table) {
                continue;
            }
            if CONTROL_PLANE.contains(&table) {
                control.insert(table);
            } else {
                shard.insert(table);
            }
        }
    }
    if control.is_empty() || shard.is_empty() {
        return None;
    }
    let join = |s: BTreeSet<&str>| s.into_iter().collect::<Vec<_>>().join(" ");
    Some(format!("{} | {}", join(control), join(shard)))
}

/// Fails the calling test on an unlisted join of the planes (or records it; see above).
pub fn check<'a>(sqls: impl IntoIterator<Item = &'a str>) {
    let Some(sig) = signature(sqls) else { return };
    if MIXED.iter().any(|(s, _)| *s == sig) {
        return;
    }
    if let Ok(path) = std::env::var("GATEHOUSE_RECORD_PLANES") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        writeln!(f, "{sig}").unwrap();
        return;
    }
    panic!("a statement or batch joins the control plane and a data shard ({sig}); see tests/api/planes.rs");
}

#[test]
fn the_list_names_each_join_once_and_sorted_tables() {
    let mut seen = BTreeSet::new();
    for (sig, why) in MIXED {
        assert!(seen.insert(*sig), "{sig} listed twice");
        assert!(!why.is_empty(), "{sig} needs what replaces it");
        let (control, shard) = sig.split_once(" | ").unwrap();
        for (side, plane) in [(control, true), (shard, false)] {
            let tables: Vec<&str> = side.split(' ').collect();
            assert!(tables.windows(2).all(|w| w[0] < w[1]), "{sig}: tables sorted, once each");
            for t in tables {
                assert_eq!(CONTROL_PLANE.contains(&t), plane, "{sig}: {t} is on the wrong side");
            }
        }
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
}
