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
    ("DUE", "the scheduled run applies every tenant's shard writes a failed request left"),
    ("HELD", "the router reads back the holds it just wrote, by their ids"),
    ("DROP_HELD", "the router drops the holds it just applied, by their ids"),
    ("SHARD_LOAD", "how many tenants each shard holds, counted to place a new agency"),
    ("HOME", "the router's directory lookup of a tenant's shard, by the id a statement names"),
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

/// Each table is in one plane, and no statement touches both (ARCHITECTURE.md, "Scaling"): a
/// statement reading or writing tables of the control plane and of a data shard fails here.
#[test]
fn every_statement_stays_in_one_plane() {
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
    assert!(crossing.is_empty(), "statements joining the control plane and a shard: {crossing:?}");
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

/// Where the data shards' migrations live (`wrangler.toml` names it for each shard binding).
const SHARD_MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations-shard");

/// A shard's tables, indexes and triggers in `conn`, by name: every table outside the control plane.
fn shard_objects(conn: &rusqlite::Connection) -> Vec<(String, String, String)> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL \
             AND type IN ('table', 'index', 'trigger') \
             ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .filter(|(_, _, table, _)| !CONTROL_PLANE.contains(&table.as_str()) && table != "sqlite_sequence")
        .map(|(kind, name, _, sql)| (kind, name, sql))
        .collect();
    rows
}

/// What the control plane's history leaves for the shards' tables, less every reference to a
/// control-plane table: a shard holds no directory rows to point at (and D1 enforces foreign keys).
fn derived_shard_schema() -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for m in crate::common::migrations() {
        conn.execute_batch(&m).unwrap();
    }
    shard_objects(&conn)
        .into_iter()
        .map(|(kind, name, mut sql)| {
            for t in CONTROL_PLANE {
                sql = sql.replace(&format!(" REFERENCES {t} (id)"), "");
            }
            (kind, name, sql)
        })
        .collect()
}

/// The shards' own migrations build exactly the shard tables the control plane's migrations do,
/// without references across the planes. With `GATEHOUSE_WRITE_SHARD_SCHEMA=<file>` the derived
/// schema is written there: the start of a new shard migration.
#[test]
fn the_shard_migrations_build_the_shard_tables_the_control_history_does_without_crossing_references() {
    let derived = derived_shard_schema();
    if let Ok(path) = std::env::var("GATEHOUSE_WRITE_SHARD_SCHEMA") {
        let body: String = derived.iter().map(|(_, _, sql)| format!("{sql};\n\n")).collect();
        std::fs::write(path, body).unwrap();
    }
    for (_, name, sql) in &derived {
        for t in CONTROL_PLANE {
            assert!(!sql.contains(&format!("REFERENCES {t} ")), "{name} still references {t}: {sql}");
        }
    }
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
    let mut files: Vec<_> = std::fs::read_dir(SHARD_MIGRATIONS).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no shard migrations in {SHARD_MIGRATIONS}");
    for f in &files {
        conn.execute_batch(&std::fs::read_to_string(f).unwrap()).unwrap();
    }
    let built = shard_objects(&conn);
    let names = |v: &[(String, String, String)]| v.iter().map(|(k, n, _)| format!("{k} {n}")).collect::<Vec<_>>();
    assert_eq!(names(&built), names(&derived), "the shard migrations make other tables, indexes or triggers");
    for (b, d) in built.iter().zip(&derived) {
        assert_eq!(b.2, d.2, "{} {} differs from the control history's; a new shard migration is due", b.0, b.1);
    }
    // Every shard table the tenancy map names is there, with its tenant column.
    for (table, _) in TENANT_OWNED.iter().filter(|(t, _)| !CONTROL_PLANE.contains(t)) {
        assert!(built.iter().any(|(k, n, _)| k == "table" && n == table), "the shards lack {table}");
    }
}

/// Data-shard statements that name no tenant, and how each finds its shard once there are
/// several: the scheduled run's platform-wide passes run on each shard in turn, and a lookup by
/// an id that carries no tenant takes the shard from where the id came from.
const EACH_SHARD: &str = "a scheduled pass, run on each shard in turn";
const SHARD_SCANS: &[(&str, &str)] = &[
    ("SEALED_UNDER_OLD_KEYS", EACH_SHARD),
    ("COUNT_SEALED_UNDER_OLD_KEYS", EACH_SHARD),
    ("UNDER_OLD_KEYS", EACH_SHARD),
    ("COUNT_UNDER_OLD_KEYS", EACH_SHARD),
    ("UNDISPATCHED_EVENTS", EACH_SHARD),
    ("FAN_OUT", "the outbox drain, on the shard whose events UNDISPATCHED_EVENTS just read"),
    ("MARK_DISPATCHED", "as FAN_OUT"),
    ("DELIVERIES_TO_QUEUE", EACH_SHARD),
    ("END_EXHAUSTED", EACH_SHARD),
    ("PRUNE_ATTEMPTS", EACH_SHARD),
    ("PRUNE_DELIVERIES", EACH_SHARD),
    ("PRUNE_EVENTS", EACH_SHARD),
    ("STALLED_EXPORTS", EACH_SHARD),
    ("EXPIRED_ARCHIVES", EACH_SHARD),
    ("STALE", EACH_SHARD),
    ("UNSEALED_TENANTS", EACH_SHARD),
    ("CLAIM_DELIVERY", "the queue consumer: the message names the delivery's shard beside its id"),
    ("DELIVERY_STATE", "as CLAIM_DELIVERY"),
    ("LOAD_DELIVERY", "as CLAIM_DELIVERY"),
    ("CLAIM_STEP", "an export step's message names the export's client beside its id"),
    ("SELECT_PUBLIC_ASSET", "a public logo's address names its tenant beside the file id"),
    ("EXPORTS_UNDER_WAY", MOVE),
    ("FENCE_SCANS", MOVE),
    ("UNFENCE_SCANS", MOVE),
];
const MOVE: &str = "a move between shards, on the shard it reads or writes (`tenants::moves`)";

/// Listed scans that may act on a moving tenant's rows, each with why that is safe. Every other
/// scan leaves the tenants `fenced_tenants` names alone, so that nothing but the move writes
/// their rows on either shard while it copies and checks them.
const UNFENCED_SCANS: &[(&str, &str)] = &[
    ("COUNT_SEALED_UNDER_OLD_KEYS", "a count: the rotation's `remaining` includes a moving tenant's"),
    ("COUNT_UNDER_OLD_KEYS", "as COUNT_SEALED_UNDER_OLD_KEYS"),
    ("FAN_OUT", "writes for the events UNDISPATCHED_EVENTS chose, which leaves moving tenants out"),
    ("MARK_DISPATCHED", "as FAN_OUT"),
    ("DELIVERY_STATE", "a read"),
    ("LOAD_DELIVERY", "a read after CLAIM_DELIVERY, which leaves moving tenants out"),
    ("SELECT_PUBLIC_ASSET", "a read: a moving tenant's rows are read where they are"),
    ("EXPORTS_UNDER_WAY", MOVE),
    ("FENCE_SCANS", MOVE),
    ("UNFENCE_SCANS", MOVE),
];

#[test]
fn every_scan_leaves_a_moving_tenants_rows_alone() {
    let constants = sql_constants();
    let mut unfenced = Vec::new();
    for (name, _) in SHARD_SCANS.iter().filter(|(n, _)| !UNFENCED_SCANS.iter().any(|(u, _)| u == n)) {
        let (_, _, sql) = constants.iter().find(|(_, n, _)| n == name).unwrap_or_else(|| panic!("{name} is gone"));
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        if !sql.contains("NOT IN (SELECT tenant_id FROM fenced_tenants)") {
            unfenced.push(format!("{name}: {sql}"));
        }
    }
    assert!(unfenced.is_empty(), "scans that would act on a moving tenant's rows:\n{}", unfenced.join("\n"));
    for (n, _) in UNFENCED_SCANS {
        assert!(SHARD_SCANS.iter().any(|(s, _)| s == n), "UNFENCED_SCANS lists {n}, which is not a listed scan");
    }
}

/// Every statement on a data shard names its tenant in a parameter the router can read
/// (`platform::planes::tenant_param`: its tenant column compared with or inserted from `?N`), so
/// the tenant's shard is found below the handlers; the rest are the listed scans.
#[test]
fn every_shard_statement_names_its_tenant_or_is_a_listed_scan() {
    use gatehouse::platform::planes::{plane, tenant_param, Plane};
    let mut unnamed = Vec::new();
    for (file, name, sql) in sql_constants() {
        if plane(&sql) == Plane::Control || tenant_param(&sql).is_some() {
            continue;
        }
        if !SHARD_SCANS.iter().any(|(n, _)| *n == name) {
            unnamed.push(format!("{}: {name}: {sql}", file.rsplit("/src/").next().unwrap_or(&file)));
        }
    }
    assert!(unnamed.is_empty(), "shard statements naming no tenant:\n{}", unnamed.join("\n"));
    let names: Vec<String> = sql_constants().into_iter().map(|(_, n, _)| n).collect();
    for (n, _) in SHARD_SCANS {
        assert!(names.iter().any(|m| m == n), "SHARD_SCANS lists {n}, which no longer exists");
    }
}
