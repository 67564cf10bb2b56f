//! The demo dataset for local development and tests: a platform admin, one agency with two
//! clients, and a user at every role, with dev passwords. Native only.

use crate::auth::password::hash_password;
use crate::platform::ids::new_token;

pub const AGENCY: &str = "agy_000000000000000000000001";
pub const ACME: &str = "cli_000000000000000000000001";
pub const GLOBEX: &str = "cli_000000000000000000000002";

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn uid(n: u32) -> String {
    format!("usr_{n:024}")
}

/// One demo login: its number (for a stable id), credentials and memberships.
struct DemoUser {
    n: u32,
    email: &'static str,
    name: &'static str,
    password: &'static str,
    platform: bool,
    agency_role: Option<&'static str>,
    clients: Vec<(&'static str, &'static str)>,
}

/// The demo dataset: SQL statements, and for each user (email, password, roles).
#[derive(Clone)]
pub struct Demo {
    pub sql: Vec<String>,
    pub users: Vec<(String, String, String)>,
    pub acme_key: String,
    pub globex_key: String,
}

pub fn demo() -> Result<Demo, crate::platform::error::ApiError> {
    let now = 1_767_225_600_000i64; // 2026-01-01, fixed so reseeding is reproducible
    let mut sql = Vec::new();
    sql.push(format!(
        "INSERT INTO agencies (id, name, slug, email, phone, status, plan, created_at, updated_at) VALUES \
         ({}, 'Northwind Digital', 'northwind', 'hello@northwind.test', '+1 555 0100', 'active', 'growth', {now}, {now});",
        q(AGENCY)
    ));
    let acme_key = new_token("pk_")?;
    let globex_key = new_token("pk_")?;
    for (id, name, slug, kind, key, test_mode) in [
        (ACME, "Acme Plumbing", "acme", "organization", &acme_key, 1),
        (GLOBEX, "Globex Dental", "globex", "organization", &globex_key, 0),
    ] {
        sql.push(format!(
            "INSERT INTO clients (id, agency_id, name, slug, business_type, kind, email, phone, website, status, plan, \
             feature_flags, test_mode, publishable_key, created_at, updated_at) VALUES ({}, {}, {}, {}, 'services', {}, \
             {}, '+1 555 0101', NULL, 'active', 'starter', '{{}}', {test_mode}, {}, {now}, {now});",
            q(id), q(AGENCY), q(name), q(slug), q(kind), q(&format!("office@{slug}.test")), q(key)
        ));
    }
    let u = |n, email, name, password, platform, agency_role, clients| DemoUser {
        n,
        email,
        name,
        password,
        platform,
        agency_role,
        clients,
    };
    let users = vec![
        u(1, "admin@gatehouse.test", "Pat Platform", "dev-platform-admin", true, None, vec![]),
        u(2, "agency.admin@northwind.test", "Alex Agency", "dev-agency-admin", false, Some("agency_admin"), vec![]),
        u(3, "agency.user@northwind.test", "Ari Agency", "dev-agency-user", false, Some("agency_user"), vec![]),
        u(4, "admin@acme.test", "Casey Acme", "dev-acme-admin", false, None, vec![(ACME, "client_admin")]),
        u(5, "user@acme.test", "Cam Acme", "dev-acme-user", false, None, vec![(ACME, "client_user")]),
        u(6, "viewer@acme.test", "Val Acme", "dev-acme-viewer", false, None, vec![(ACME, "client_viewer")]),
        u(7, "admin@globex.test", "Gus Globex", "dev-globex-admin", false, None, vec![(GLOBEX, "client_admin")]),
        u(
            8,
            "multi@northwind.test",
            "Mo Multi",
            "dev-multi-client",
            false,
            None,
            vec![(ACME, "client_user"), (GLOBEX, "client_user")],
        ),
    ];
    let mut creds = Vec::new();
    for DemoUser { n, email, name, password, platform, agency_role, clients } in &users {
        let id = uid(*n);
        let hash = hash_password(password)?;
        let platform_role = if *platform { q("platform_admin") } else { "NULL".into() };
        sql.push(format!(
            "INSERT INTO users (id, email, name, password_hash, platform_role, status, created_at, updated_at) VALUES \
             ({}, {}, {}, {}, {platform_role}, 'active', {now}, {now});",
            q(&id),
            q(email),
            q(name),
            q(&hash)
        ));
        let mut roles = Vec::new();
        if *platform {
            roles.push("platform_admin".to_string());
        }
        if let Some(role) = agency_role {
            sql.push(format!(
                "INSERT INTO agency_memberships (user_id, agency_id, role, permissions, created_at) VALUES ({}, {}, {}, NULL, {now});",
                q(&id), q(AGENCY), q(role)
            ));
            roles.push(format!("{role}@northwind"));
        }
        for (client, role) in clients {
            sql.push(format!(
                "INSERT INTO client_users (user_id, client_id, role, permissions, created_at) VALUES ({}, {}, {}, NULL, {now});",
                q(&id), q(client), q(role)
            ));
            roles.push(format!("{role}@{}", if *client == ACME { "acme" } else { "globex" }));
        }
        creds.push((email.to_string(), password.to_string(), roles.join(", ")));
    }
    // acme is in test mode with shop.localhost verified, so the widget demo works locally.
    sql.push(format!(
        "INSERT INTO domains (id, client_id, hostname, site, scheme, port, purpose, status, status_reason, verified_by, \
         verification_token, consecutive_failures, verified_at, last_checked_at, created_at, updated_at) VALUES \
         ('dom_000000000000000000000001', {}, 'shop.localhost', 'shop.localhost', 'http', NULL, 'widget', 'verified', \
         'seeded for local development', 'admin', {}, 0, {now}, {now}, {now}, {now});",
        q(ACME), q(&new_token("gatehouse-verify=")?)
    ));
    Ok(Demo { sql, users: creds, acme_key, globex_key })
}
