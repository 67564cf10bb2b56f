//! The legacy import: a JSON or CSV dump of contacts and users becomes a "default" client of a
//! chosen agency, as SQL for `wrangler d1 execute --file` (`src/bin/import.rs`). Every row is
//! validated; a bad one is skipped with its reason, never half-written. Contacts keep their data
//! with `source = 'import'`; users become members of the client with no usable password, and sign
//! in by resetting it (`POST /api/auth/password-reset`). An address that already has an account
//! keeps it and just gains the membership. The agency's audit log records the import.

use serde_json::{json, Map, Value};

use crate::access::roles::Role;
use crate::platform::extract::email_field;
use crate::platform::ids::{new_id, new_token};

/// What an import produced: the SQL, and what was taken and skipped.
#[derive(Debug)]
pub struct Imported {
    pub client_id: String,
    pub sql: Vec<String>,
    pub contacts: usize,
    pub users: usize,
    /// `(file, row number, reason)` for each row left out.
    pub skipped: Vec<(String, usize, String)>,
}

/// One input file: its name (for messages) and text; `.csv` is read as CSV, anything else as a
/// JSON array of objects.
pub struct Dump<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn opt(v: Option<&str>) -> String {
    v.map_or_else(|| "NULL".into(), q)
}

/// RFC 4180: quoted fields, doubled quotes inside them, CRLF or LF line ends.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows.into_iter().filter(|r| !(r.len() == 1 && r[0].trim().is_empty())).collect())
}

/// The records of a dump as objects: CSV rows keyed by the header line, or the JSON array itself.
fn records(d: &Dump<'_>) -> Result<Vec<Map<String, Value>>, String> {
    if d.name.to_ascii_lowercase().ends_with(".csv") {
        let mut rows = parse_csv(d.text).map_err(|e| format!("{}: {e}", d.name))?.into_iter();
        let header: Vec<String> =
            rows.next().unwrap_or_default().iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        return Ok(rows
            .map(|r| header.iter().cloned().zip(r.into_iter().map(Value::String)).collect::<Map<String, Value>>())
            .collect());
    }
    match serde_json::from_str::<Value>(d.text) {
        Ok(Value::Array(items)) => Ok(items.into_iter().map(|v| v.as_object().cloned().unwrap_or_default()).collect()),
        Ok(_) => Err(format!("{}: a JSON dump is an array of objects", d.name)),
        Err(e) => Err(format!("{}: {e}", d.name)),
    }
}

fn text<'a>(r: &'a Map<String, Value>, key: &str, max: usize) -> Result<Option<&'a str>, String> {
    match r.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > max => Err(format!("`{key}` is longer than {max} characters")),
        // Notes may run over lines; nothing else holds control characters.
        Some(s) if s.chars().any(|c| c.is_control() && !(max > 1000 && matches!(c, '\n' | '\r' | '\t'))) => {
            Err(format!("`{key}` holds control characters"))
        }
        other => Ok(other),
    }
}

/// Builds the import. `agency_id` must exist (the client's insert checks it); `slug` names the
/// new client's portal.
pub fn build(
    agency_id: &str,
    name: &str,
    slug: &str,
    contacts: Option<Dump<'_>>,
    users: Option<Dump<'_>>,
    now: i64,
) -> Result<Imported, String> {
    if !crate::platform::ids::looks_like_id(agency_id, "agy") {
        return Err(format!("`{agency_id}` is not an agency id"));
    }
    if slug.is_empty()
        || slug.len() > 60
        || !slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("the slug is 1-60 of a-z, 0-9 and -".into());
    }
    let e = |e: crate::platform::error::ApiError| e.to_string();
    let client_id = new_id("cli").map_err(e)?;
    let key = new_token("pk_").map_err(e)?;
    let mut sql = vec![format!(
        "INSERT INTO clients (id, agency_id, name, slug, business_type, kind, email, phone, website, status, plan, \
         feature_flags, test_mode, publishable_key, created_at, updated_at) SELECT {}, id, {}, {}, NULL, 'organization', \
         NULL, NULL, NULL, 'active', {}, '{{}}', 0, {}, {now}, {now} FROM agencies WHERE id = {};",
        q(&client_id),
        q(name),
        q(slug),
        q(crate::access::plans::default_plan()),
        q(&key),
        q(agency_id)
    )];
    let mut out =
        Imported { client_id: client_id.clone(), sql: Vec::new(), contacts: 0, users: 0, skipped: Vec::new() };
    let mut seen = std::collections::BTreeSet::new();
    if let Some(d) = contacts {
        for (i, r) in records(&d)?.iter().enumerate() {
            let mut row = || -> Result<String, String> {
                let email = text(r, "email", 254)?.map(|v| email_field(v).map_err(|e| e.to_string())).transpose()?;
                let name = text(r, "name", 120)?.or(email.as_deref()).ok_or("a contact needs a name or an email")?;
                if let Some(em) = &email {
                    if !seen.insert(format!("c:{em}")) {
                        return Err(format!("{em} appears twice"));
                    }
                }
                Ok(format!(
                    "INSERT INTO contacts (id, client_id, name, email, phone, message, source, origin, created_at, updated_at) \
                     VALUES ({}, {}, {}, {}, {}, {}, 'import', NULL, {now}, {now});",
                    q(&new_id("con").map_err(e)?),
                    q(&client_id),
                    q(name),
                    opt(email.as_deref()),
                    opt(text(r, "phone", 40)?),
                    opt(text(r, "message", 2000)?.or(text(r, "notes", 2000)?)),
                ))
            };
            match row() {
                Ok(s) => {
                    sql.push(s);
                    out.contacts += 1;
                }
                Err(why) => out.skipped.push((d.name.to_string(), i + 1, why)),
            }
        }
    }
    if let Some(d) = users {
        for (i, r) in records(&d)?.iter().enumerate() {
            let mut row = || -> Result<Vec<String>, String> {
                let email =
                    email_field(text(r, "email", 254)?.ok_or("a user needs an email")?).map_err(|e| e.to_string())?;
                let role = text(r, "role", 40)?.unwrap_or("client_user");
                let role = Role::parse(role)
                    .filter(|r| r.level() == crate::access::roles::Level::Client)
                    .ok_or(format!("`{role}` is not a client role"))?;
                if !seen.insert(format!("u:{email}")) {
                    return Err(format!("{email} appears twice"));
                }
                let name = text(r, "name", 120)?.unwrap_or(&email);
                // `!` is no password hash at all: nobody signs in as an imported user before a reset.
                Ok(vec![
                    format!(
                        "INSERT INTO users (id, email, name, password_hash, platform_role, status, created_at, updated_at) \
                         VALUES ({}, {}, {}, '!', NULL, 'active', {now}, {now}) ON CONFLICT (email) DO NOTHING;",
                        q(&new_id("usr").map_err(e)?),
                        q(&email),
                        q(name)
                    ),
                    format!(
                        "INSERT INTO client_users (user_id, client_id, role, permissions, created_at) \
                         SELECT id, {}, {}, NULL, {now} FROM users WHERE email = {} ON CONFLICT DO NOTHING;",
                        q(&client_id),
                        q(role.as_str()),
                        q(&email)
                    ),
                ])
            };
            match row() {
                Ok(s) => {
                    sql.extend(s);
                    out.users += 1;
                }
                Err(why) => out.skipped.push((d.name.to_string(), i + 1, why)),
            }
        }
    }
    let meta =
        json!({"client_id": client_id, "contacts": out.contacts, "users": out.users, "skipped": out.skipped.len()});
    sql.push(format!(
        "INSERT INTO audit_log (id, tenant_id, at, actor_user_id, actor_role, action, target_type, target_id, ip, \
         user_agent, metadata, seq) VALUES ({}, {}, {now}, NULL, 'system', 'client.imported', 'client', {}, 'internal', \
         'gatehouse-import', {}, (SELECT coalesce(max(seq), 0) + 1 FROM audit_log WHERE tenant_id = {}));",
        q(&format!("{now:013}_{}", new_id("aud").map_err(e)?)),
        q(agency_id),
        q(&client_id),
        q(&meta.to_string()),
        q(agency_id)
    ));
    out.sql = sql;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_csv;

    #[test]
    fn csv_reads_quotes_commas_newlines_and_crlf() {
        let rows = parse_csv("name,email\r\n\"Doe, Jane\",jane@x.test\r\n\"Say \"\"hi\"\"\nthere\",\r\n").unwrap();
        assert_eq!(rows, vec![vec!["name", "email"], vec!["Doe, Jane", "jane@x.test"], vec!["Say \"hi\"\nthere", ""]]);
        assert!(parse_csv("a,\"open").is_err());
    }
}
