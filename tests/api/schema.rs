//! Structural isolation checks: every table is classified, every tenant-owned table carries a
//! NOT NULL, indexed tenant column, and every SQL statement in the source that touches a
//! tenant-owned table constrains a tenant column — or is on a short, justified list.

use gatehouse::platform::schema::{CONTROL_PLANE, GLOBAL, TENANT_OWNED};

#[test]
fn every_table_is_classified_and_tenant_columns_are_not_null_and_indexed() {
    let p = crate::common::TestPlatform::new();
    let tables: Vec<String> = p
        .sql("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .into_iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert!(tables.len() >= 8, "schema looks empty: {tables:?}");
    for t in &tables {
        let owned = TENANT_OWNED.iter().any(|(n, _)| n == t);
        let global = GLOBAL.iter().any(|(n, _)| n == t);
        assert!(owned ^ global, "table {t} must be listed exactly once in schema::TENANT_OWNED or schema::GLOBAL");
    }
    for (table, col) in TENANT_OWNED {
        let cols = p.sql(&format!("PRAGMA table_info({table})"));
        let c = cols.iter().find(|c| c["name"] == *col).unwrap_or_else(|| panic!("{table} has no {col}"));
        assert_eq!(c["notnull"], 1, "{table}.{col} must be NOT NULL");
        let indexed = p.sql(&format!("PRAGMA index_list({table})")).iter().any(|idx| {
            let name = idx["name"].as_str().unwrap();
            let first = p.sql(&format!("PRAGMA index_info('{name}')"));
            first.iter().find(|c| c["seqno"] == 0).is_some_and(|c| c["name"] == *col)
        });
        assert!(indexed, "{table}.{col} must lead an index");
    }
}

/// Statements allowed to touch a tenant-owned table without a tenant predicate, and why.
const UNSCOPED: &[(&str, &str)] = &[
    ("SELECT_CLIENT", "lookup by id; access::client checks the caller reaches it before use"),
    ("SELECT_CLIENT_BY_SLUG", "Host resolution, before any caller is known"),
    ("LIST_ALL_CLIENTS", "platform admins only (Scope::Platform)"),
    ("PORTAL_OWNER", "Host resolution by verified portal domain"),
    ("PURGE_DUE", "an export step's client, by the id its claimed export names"),
    ("LIVE_TENANTS", "the counters' flush, by the ids this isolate counted requests for"),
    ("SET_BOOKABLE", "a client's own flag, by the id its scoped staff or service write named"),
    ("ALL_PENDING_EVENTS", "the scheduled run copies every domain's pending events to its client's shard"),
    ("DUE_FOR_PURGE", "the scheduled purge, which lists deleted clients past their grace period"),
    ("STORAGE_PLAN", "the plan of the tenant (clients.id / agencies.id = ?1) an upload is stored under"),
    ("UNSEALED_TENANTS", "the scheduled sealing of audit chains, which lists the tenants with rows to seal"),
    ("MFA_STATE", "the MFA policy of the tenant a login chose (c.id / agencies.id = ?2), read for that login"),
    ("DUE_FOR_RECHECK", "the platform-wide scheduled DNS re-check"),
    ("SAME_SITE_ELSEWHERE", "cross-tenant uniqueness of domains; reads only hostnames of one site"),
    ("HELD_ELSEWHERE", "cross-tenant uniqueness of portal hostnames; answers only whether one is taken"),
    ("LOAD", "the widget gate, keyed by the client's unique publishable key"),
    ("AGENCY_MEMBERSHIPS_OF_USER", "a user's own memberships, filtered by user"),
    ("CLIENT_MEMBERSHIPS_OF_USER", "a user's own memberships, filtered by user"),
    ("UNDER_OLD_KEYS", "the platform-wide key rotation job"),
    ("SELECT_PUBLIC_ASSET", "public branding assets (logos) by unguessable id, branding area only"),
    ("STALE", "the platform-wide reconciler of files left mid-protocol"),
    ("COUNT_UNDER_OLD_KEYS", "the platform-wide key rotation job's progress"),
    ("EXPIRED_PENDING", "the platform-wide sweep of unproved domain claims"),
    ("INVITATION_BY_TOKEN", "an invitee's only key is the token; its hash is unique platform-wide"),
    ("USE_VERIFICATION_TOKEN", "a signup's only key is the mailed token; its hash is unique platform-wide"),
    ("VERIFICATION_BY_TOKEN", "a signup's only key is the mailed token; its hash is unique platform-wide"),
    ("MARK_AGENCY_VERIFIED", "the agency the token just used belongs to, guarded by that use"),
    ("CLAIM_DUE", "the platform-wide mail sender, by due time"),
    ("CLAIM_STEP", "a queued export step, by its unguessable id; it answers the client it then works in"),
    ("STALLED_EXPORTS", "the platform-wide cron that queues exports whose step was lost"),
    ("EXPIRED_ARCHIVES", "the platform-wide cron that deletes export archives past their time"),
    ("MAILBOX", "the development mailbox (DEV_MAILBOX=true only, never in production)"),
    (
        "API_KEY_BY_HASH",
        "a key's only identity is its hash, unique platform-wide; the key then acts in its own tenant only",
    ),
    ("SEALED_UNDER_OLD_KEYS", "the platform-wide key rotation job, over webhook secrets"),
    ("COUNT_SEALED_UNDER_OLD_KEYS", "the platform-wide key rotation job's progress, over webhook secrets"),
    ("UNDISPATCHED_EVENTS", "the platform-wide outbox drain; each event carries its client into its deliveries"),
    ("MARK_DISPATCHED", "the outbox drain, by the sequence numbers it just fanned out"),
    (
        "DELIVERIES_TO_QUEUE",
        "the platform-wide webhook queueing; a message carries only a delivery id and its attempts",
    ),
    ("PRUNE_ATTEMPTS", "the platform-wide retention sweep, by age"),
    ("PRUNE_DELIVERIES", "the platform-wide retention sweep, by age"),
    ("PRUNE_EVENTS", "the platform-wide retention sweep, by age"),
    ("END_EXHAUSTED", "the platform-wide sweep ending deliveries whose every attempt failed to record"),
    ("CLAIM_DELIVERY", "the queue consumer, keyed by the delivery id in the message; the row names its client"),
    ("DELIVERY_STATE", "the queue consumer, keyed by the delivery id in the message"),
    (
        "LOAD_DELIVERY",
        "the queue consumer, keyed by the delivery id in the message; the endpoint is then read within its client",
    ),
];

fn sql_constants() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            let mut rest = src.as_str();
            while let Some(i) = rest.find("const ") {
                rest = &rest[i + 6..];
                let Some((name, after)) = rest.split_once(": &str =") else { continue };
                let Some(after) = after.trim_start().strip_prefix('"') else { continue };
                if name.contains(char::is_whitespace) {
                    continue;
                }
                let Some(end) = after.find("\";") else { continue };
                let sql = after[..end].replace("\\\n", " ").split_whitespace().collect::<Vec<_>>().join(" ");
                let head = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                if ["SELECT", "INSERT", "UPDATE", "DELETE"].contains(&head.as_str()) {
                    out.push((path.display().to_string(), name.to_string(), sql));
                }
            }
        }
    }
    out
}

/// Statements that join the control plane to a data shard's tables today, and what each becomes
/// when the planes are separate databases (ARCHITECTURE.md, "Scaling"). By file and constant.
const CROSS_PLANE: &[(&str, &str, &str)] = &[
    (
        "templates/mod.rs",
        "ADD_PIPELINE",
        "the shard's rows are written after the directory row, guarded by the client's provisioning state",
    ),
    ("templates/mod.rs", "ADD_STAGE", "as ADD_PIPELINE"),
    ("templates/mod.rs", "ADD_SERVICE", "as ADD_PIPELINE"),
];

/// Each table is in one plane, and every statement touching both planes is listed with what
/// replaces it, so the list is the sharding work still to do and a new join across the planes
/// fails here.
#[test]
fn every_statement_stays_in_one_plane_or_is_listed_with_its_replacement() {
    for t in CONTROL_PLANE {
        assert!(
            TENANT_OWNED.iter().any(|(n, _)| n == t) || GLOBAL.iter().any(|(n, _)| n == t),
            "CONTROL_PLANE names {t}, which is no table"
        );
    }
    // The same rule as the run-time check's, statement by statement.
    let crossing: Vec<_> = sql_constants()
        .into_iter()
        .filter_map(|(file, name, sql)| crate::planes::signature([sql.as_str()]).map(|sig| (file, name, sig)))
        .collect();
    let unlisted: Vec<_> = crossing
        .iter()
        .filter(|(file, name, ..)| !CROSS_PLANE.iter().any(|(f, n, _)| file.ends_with(f) && name == n))
        .collect();
    assert!(unlisted.is_empty(), "statements joining the control plane and a shard, not in CROSS_PLANE: {unlisted:?}");
    for (f, n, _) in CROSS_PLANE {
        assert!(
            crossing.iter().any(|(file, name, ..)| file.ends_with(f) && name == n),
            "CROSS_PLANE lists {f} {n}, which no longer joins the planes"
        );
    }
}

#[test]
fn every_statement_on_a_tenant_owned_table_filters_by_tenant() {
    let statements = sql_constants();
    assert!(statements.len() >= 30, "found only {} SQL constants", statements.len());
    let mut violations = Vec::new();
    for (file, name, sql) in &statements {
        let lower = sql.to_ascii_lowercase();
        let touched: Vec<&(&str, &str)> =
            TENANT_OWNED.iter().filter(|(t, _)| crate::planes::touches(&lower, t)).collect();
        if touched.is_empty() {
            continue;
        }
        let scoped = touched.iter().any(|(table, col)| {
            let insert_cols =
                lower.starts_with("insert") && lower.contains(&format!("into {table} ")) && lower.contains(col);
            insert_cols || [format!("{col} = ?"), format!("{col} in (")].iter().any(|p| lower.contains(p.as_str()))
        });
        if !scoped && !UNSCOPED.iter().any(|(n, _)| n == name) {
            violations.push(format!("{file}: {name}: {sql}"));
        }
    }
    assert!(violations.is_empty(), "statements without a tenant predicate:\n{}", violations.join("\n"));
    for (name, _) in UNSCOPED {
        assert!(statements.iter().any(|(_, n, _)| n == name), "UNSCOPED lists {name}, which no longer exists");
    }
}
