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

/// Which database a demo statement goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    Control,
    Shard(usize),
}

impl Demo {
    /// The demo tenants' shards with `shards` data shards: the agency and Acme on the first,
    /// Globex on the second when there is one, so the isolation tests cross shards.
    pub fn home(tenant: &str, shards: usize) -> usize {
        if tenant == GLOBEX && shards > 1 {
            1
        } else {
            0
        }
    }

    /// The statements, each with its database: with no shards, all in the control plane's (one
    /// database for both planes); else each data statement on its tenant's shard, and the
    /// directory saying where each tenant is.
    pub fn placed(&self, shards: usize) -> Vec<(Place, String)> {
        use crate::platform::planes::{plane, tenant_literal, Plane};
        let mut out: Vec<(Place, String)> = self
            .sql
            .iter()
            .map(|s| {
                let place = match plane(s) {
                    _ if shards == 0 => Place::Control,
                    Plane::Control => Place::Control,
                    _ => Place::Shard(tenant_literal(s).map_or(0, |t| Self::home(&t, shards))),
                };
                (place, s.clone())
            })
            .collect();
        for tenant in [ACME, GLOBEX] {
            let home = Self::home(tenant, shards);
            if home > 0 {
                out.push((Place::Control, format!("UPDATE clients SET shard = {home} WHERE id = {};", q(tenant))));
            }
        }
        out
    }
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
    // Acme wears orange: its widget and portal show it (the other fields inherit).
    sql.push(format!(
        "INSERT INTO branding (owner_id, owner_kind, primary_color, updated_by, updated_at) VALUES ({}, 'client', \
         '#ea580c', {}, {now});",
        q(ACME),
        q(&uid(4))
    ));
    crm(&mut sql, now);
    booking(&mut sql, now);
    Ok(Demo { sql, users: creds, acme_key, globex_key })
}

/// Acme's booking: New York time, two services, two staff with weekday hours, a few appointments.
fn booking(sql: &mut Vec<String>, now: i64) {
    sql.push(format!("UPDATE clients SET time_zone = 'America/New_York' WHERE id = {};", q(ACME)));
    // (name, minutes, price in cents, buffer after)
    let services = [("Plumbing inspection", 60, 12_000, 15), ("Emergency call-out", 90, 25_000, 30)];
    for (i, (name, minutes, price, after)) in services.iter().enumerate() {
        sql.push(format!(
            "INSERT INTO services (id, client_id, name, duration_min, price_minor, currency, buffer_before_min, \
             buffer_after_min, active, created_at, updated_at) VALUES ({}, {}, {}, {minutes}, {price}, 'USD', 0, {after}, 1, \
             {now}, {now});",
            q(&seq("svc", i + 1)), q(ACME), q(name)
        ));
    }
    // (name, linked user, services, weekday hours)
    let staff =
        [("Dana Ortiz", Some(5), vec![1, 2], (8 * 60, 16 * 60)), ("Lee Chen", None, vec![1], (10 * 60, 18 * 60))];
    for (i, (name, user, offers, (start, end))) in staff.iter().enumerate() {
        let id = seq("stf", i + 1);
        let user = user.map(|n| q(&uid(n))).unwrap_or_else(|| "NULL".into());
        sql.push(format!(
            "INSERT INTO staff (id, client_id, name, user_id, active, created_at, updated_at) VALUES ({}, {}, {}, {user}, 1, \
             {now}, {now});",
            q(&id), q(ACME), q(name)
        ));
        for s in offers {
            sql.push(format!(
                "INSERT INTO staff_services (client_id, staff_id, service_id) VALUES ({}, {}, {});",
                q(ACME),
                q(&id),
                q(&seq("svc", *s))
            ));
        }
        for weekday in 1..=5 {
            sql.push(format!(
                "INSERT INTO staff_hours (client_id, staff_id, weekday, start_min, end_min) VALUES ({}, {}, {weekday}, {start}, {end});",
                q(ACME), q(&id)
            ));
        }
    }
    // Its staff offer its services, so its widget offers booking (the gate reads the directory's flag).
    sql.push(format!("UPDATE clients SET bookable = 1 WHERE id = {};", q(ACME)));
    // (staff, service, contact, start as UTC, status): weekday mornings in New York.
    let appointments = [
        (1, 1, 1, "2027-03-01T14:00:00Z", 60, 15, "confirmed"),
        (1, 2, 3, "2027-03-02T15:00:00Z", 90, 30, "scheduled"),
        (2, 1, 5, "2027-03-03T16:00:00Z", 60, 15, "scheduled"),
        (2, 1, 2, "2027-02-22T15:00:00Z", 60, 15, "completed"),
    ];
    for (i, (staff, service, contact, start, minutes, after, status)) in appointments.iter().enumerate() {
        let start = crate::platform::tz::parse_instant(start).unwrap_or(now);
        let end = start + minutes * 60_000;
        sql.push(format!(
            "INSERT INTO appointments (id, client_id, service_id, staff_id, contact_id, starts_at, ends_at, blocked_from, \
             blocked_until, status, source, note, created_at, updated_at) VALUES ({}, {}, {}, {}, {}, {start}, {end}, {start}, \
             {}, {}, 'api', NULL, {now}, {now});",
            q(&seq("apt", i + 1)), q(ACME), q(&seq("svc", *service)), q(&seq("stf", *staff)), q(&seq("con", *contact)),
            end + after * 60_000, q(status)
        ));
    }
}

/// A deterministic id: `prefix_` and `n` in 24 digits.
fn seq(prefix: &str, n: usize) -> String {
    format!("{prefix}_{n:024}")
}

/// Acme's CRM: contacts with tags and a note, and a sales pipeline of five stages with eight deals
/// and their stage history.
fn crm(sql: &mut Vec<String>, now: i64) {
    let day = 86_400_000i64;
    let contacts = [
        ("Morgan Reyes", "morgan.reyes@example.com", "+1 555 0142"),
        ("Priya Nair", "priya@nair-consulting.example", "+1 555 0177"),
        ("Tomasz Kowalski", "tomasz@kowalski-builders.example", "+1 555 0133"),
        ("Jordan Blake", "jordan.blake@example.org", "+1 555 0190"),
        ("Sofia Marino", "sofia@marino-cafe.example", "+1 555 0118"),
    ];
    for (i, (name, email, phone)) in contacts.iter().enumerate() {
        sql.push(format!(
            "INSERT INTO contacts (id, client_id, name, email, phone, message, source, origin, created_at, updated_at) \
             VALUES ({}, {}, {}, {}, {}, NULL, 'api', NULL, {t}, {t});",
            q(&seq("con", i + 1)), q(ACME), q(name), q(email), q(phone), t = now + i as i64 * day
        ));
    }
    let tags = [("VIP", "#f97316"), ("Commercial", "#0ea5e9"), ("Referral", "#22c55e")];
    for (i, (name, color)) in tags.iter().enumerate() {
        sql.push(format!(
            "INSERT INTO tags (id, client_id, name, color, created_at, updated_at) VALUES ({}, {}, {}, {}, {now}, {now});",
            q(&seq("tag", i + 1)), q(ACME), q(name), q(color)
        ));
    }
    for (contact, tag) in [(1, 1), (2, 2), (3, 2), (3, 3), (5, 1)] {
        sql.push(format!(
            "INSERT INTO contact_tags (client_id, contact_id, tag_id, created_at) VALUES ({}, {}, {}, {now});",
            q(ACME),
            q(&seq("con", contact)),
            q(&seq("tag", tag))
        ));
    }
    sql.push(format!(
        "INSERT INTO notes (id, client_id, subject_type, subject_id, body, author_user_id, created_at, updated_at) \
         VALUES ({}, {}, 'contact', {}, 'Asked for a quote on a full bathroom refit; call back Tuesday.', {}, {now}, {now});",
        q(&seq("note", 1)), q(ACME), q(&seq("con", 1)), q(&uid(4))
    ));
    let pipeline = seq("pipe", 1);
    sql.push(format!(
        "INSERT INTO pipelines (id, client_id, name, created_at, updated_at) VALUES ({}, {}, 'Sales', {now}, {now});",
        q(&pipeline),
        q(ACME)
    ));
    for (i, name) in ["New lead", "Qualified", "Quote sent", "Negotiation", "Closed"].iter().enumerate() {
        sql.push(format!(
            "INSERT INTO pipeline_stages (id, client_id, pipeline_id, name, position, created_at, updated_at) \
             VALUES ({}, {}, {}, {}, {i}, {now}, {now});",
            q(&seq("stage", i + 1)),
            q(ACME),
            q(&pipeline),
            q(name)
        ));
    }
    // (title, stage, value in cents, contact, status)
    let deals = [
        ("Bathroom refit", 1, 1_250_000, Some(1), "open"),
        ("Office kitchen plumbing", 2, 890_000, Some(2), "open"),
        ("Boiler replacement", 2, 420_000, Some(4), "open"),
        ("New build: 12 units", 3, 9_600_000, Some(3), "open"),
        ("Leak repair", 3, 35_000, None, "open"),
        ("Cafe grease trap", 4, 275_000, Some(5), "open"),
        ("Annual maintenance", 5, 600_000, Some(2), "won"),
        ("Water heater", 5, 180_000, Some(4), "lost"),
    ];
    for (i, (title, stage, value, contact, status)) in deals.iter().enumerate() {
        let id = seq("deal", i + 1);
        let created = now + i as i64 * day;
        let closed = if *status == "open" { "NULL".to_string() } else { (created + 5 * day).to_string() };
        let reason = if *status == "lost" { q("Chose a cheaper quote") } else { "NULL".into() };
        sql.push(format!(
            "INSERT INTO deals (id, client_id, pipeline_id, stage_id, title, value_minor, currency, contact_id, \
             owner_user_id, status, lost_reason, expected_close_date, created_at, updated_at, closed_at) VALUES \
             ({}, {}, {}, {}, {}, {value}, 'USD', {}, {}, {}, {reason}, '2027-03-31', {created}, {created}, {closed});",
            q(&id),
            q(ACME),
            q(&pipeline),
            q(&seq("stage", *stage)),
            q(title),
            contact.map(|c| q(&seq("con", c))).unwrap_or_else(|| "NULL".into()),
            q(&uid(5)),
            q(status)
        ));
        for to in 1..=*stage {
            let from = if to == 1 { "NULL".to_string() } else { q(&seq("stage", to - 1)) };
            sql.push(format!(
                "INSERT INTO deal_stage_history (id, client_id, deal_id, from_stage_id, to_stage_id, moved_by, moved_at) \
                 VALUES ({}, {}, {}, {from}, {}, {}, {});",
                q(&format!("hist_{:012}{:012}", i + 1, to)), q(ACME), q(&id), q(&seq("stage", to)), q(&uid(5)),
                created + (to as i64 - 1) * day
            ));
        }
    }
}
