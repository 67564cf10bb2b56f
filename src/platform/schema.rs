//! The schema's tenancy map: which tables a tenant owns, and by which column. A test walks the
//! migrated schema and every SQL statement against this map.

/// Tenant-owned tables and their tenant column. Each must be NOT NULL and indexed.
pub const TENANT_OWNED: &[(&str, &str)] = &[
    ("clients", "agency_id"),
    ("agency_memberships", "agency_id"),
    ("client_users", "client_id"),
    ("audit_log", "tenant_id"),
    ("domains", "client_id"),
    ("agency_domains", "agency_id"),
    ("contacts", "client_id"),
    ("client_settings", "client_id"),
    ("files", "tenant_id"),
    ("branding", "owner_id"),
    ("usage_counters", "tenant_id"),
    ("tenant_daily", "tenant_id"),
    ("invitations", "tenant_id"),
    ("outbox", "tenant_id"),
    ("tags", "client_id"),
    ("contact_tags", "client_id"),
    ("notes", "client_id"),
    ("pipelines", "client_id"),
    ("pipeline_stages", "client_id"),
    ("deals", "client_id"),
    ("deal_stage_history", "client_id"),
    ("services", "client_id"),
    ("staff", "client_id"),
    ("staff_services", "client_id"),
    ("staff_hours", "client_id"),
    ("time_off", "client_id"),
    ("appointments", "client_id"),
    ("events", "client_id"),
    ("webhook_endpoints", "client_id"),
    ("webhook_deliveries", "client_id"),
    ("webhook_attempts", "client_id"),
    ("usage_events", "client_id"),
    ("api_keys", "tenant_id"),
    ("email_verifications", "agency_id"),
    ("templates", "agency_id"),
    ("exports", "client_id"),
    ("shard_writes", "tenant_id"),
];

/// Tables that belong to no single tenant, each for a stated reason.
pub const GLOBAL: &[(&str, &str)] = &[
    ("schema_version", "migration bookkeeping"),
    ("agencies", "the tenants themselves; reached only through scope checks on their id"),
    ("users", "identities span tenants; access comes from memberships"),
    ("mfa_recovery_codes", "a user's own recovery codes; identities span tenants"),
    ("mfa_challenges", "the second step of one login, before any session exists"),
    ("password_resets", "a user's own reset tokens; identities span tenants, and the token is the only key"),
    ("login_attempts", "throttling keyed by email and IP, before any tenant is known"),
    ("d1_migrations", "wrangler's migration bookkeeping"),
    ("shard_moves", "the platform's moves of agencies between data shards; platform admins only"),
    ("fenced_tenants", "the tenants a data shard's scans leave alone while they move; the move's own"),
];

/// The tables of the control plane once data is sharded (ARCHITECTURE.md, "Scaling"): what is
/// found without knowing the tenant (Host resolution, the gate, login, tokens) and the tenants
/// themselves. Every other table belongs to a data shard. Today both planes are one D1;
/// `tests/api/schema.rs` lists every statement that would join them, with what replaces it.
pub const CONTROL_PLANE: &[&str] = &[
    "schema_version",
    "d1_migrations",
    "agencies",
    "clients",
    "users",
    "agency_memberships",
    "client_users",
    "domains",
    "agency_domains",
    "branding",
    "api_keys",
    "invitations",
    "email_verifications",
    "password_resets",
    "mfa_recovery_codes",
    "mfa_challenges",
    "login_attempts",
    "templates",
    // Mail announces identity changes (invitations, resets, sign-ups), all written here.
    "outbox",
    // Writes a change here owes a client's shard, held until applied (`access::relay`).
    "shard_writes",
    // Agencies moving between data shards, and how far each move has got (`tenants::moves`).
    "shard_moves",
];

/// Tables a control-plane change writes too: its audit row, and a seat's or a domain's quota
/// crossing. Their rows live on the tenant's shard; in a control-plane batch they are held and
/// relayed there once it commits (`access::relay`, `platform::router`). A statement on them
/// alone goes with its batch, or to its tenant's shard.
pub const IN_BOTH_PLANES: &[&str] = &["audit_log", "usage_events"];

/// Tables whose tenant column names an agency, not a client: a client's deletion leaves them be
/// (its own row in `clients` goes last, by id).
pub const AGENCY_OWNED: &[&str] =
    &["clients", "agency_memberships", "email_verifications", "templates", "agency_domains"];

/// The order a deleted client's rows are purged in: every client-owned table of `TENANT_OWNED`,
/// children before the parents their foreign keys name. A test proves it covers them all and
/// that the order satisfies every foreign key.
pub const PURGE_ORDER: &[&str] = &[
    "exports",
    "contact_tags",
    "notes",
    "deal_stage_history",
    "deals",
    "pipeline_stages",
    "pipelines",
    "tags",
    "appointments",
    "staff_services",
    "staff_hours",
    "time_off",
    "staff",
    "services",
    "contacts",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
    "events",
    "usage_events",
    "usage_counters",
    "tenant_daily",
    "client_settings",
    "domains",
    "files",
    "branding",
    "api_keys",
    "invitations",
    "outbox",
    "shard_writes",
    "client_users",
    "audit_log",
];

/// The tenant column of a tenant-owned table.
pub fn tenant_column(table: &str) -> Option<&'static str> {
    TENANT_OWNED.iter().find(|(t, _)| *t == table).map(|(_, c)| *c)
}
