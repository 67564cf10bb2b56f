//! The two planes of the schema (ARCHITECTURE.md, "Scaling"): which plane a statement runs in,
//! and for a data-shard statement, which of its parameters names the tenant whose shard it runs
//! on. Read from the SQL text and the tenancy map (`schema`), so nothing a handler writes has to
//! say it: this is what routes statements below the handlers.

use std::collections::BTreeSet;

use super::schema::{tenant_column, CONTROL_PLANE, GLOBAL, IN_BOTH_PLANES, TENANT_OWNED};

/// Where a statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// Control-plane tables only.
    Control,
    /// Data-shard tables (and maybe tables kept in both planes).
    Shard,
    /// Only tables kept in both planes, or no table at all: the plane of the batch it is in.
    Either,
}

/// Whether lowercased, space-normalised SQL (with a leading space) reads or writes `table`, by
/// the keywords that name a table.
pub fn touches(lower: &str, table: &str) -> bool {
    [" from ", " join ", "update ", " into ", "delete from "].iter().any(|kw| {
        let at = format!("{kw}{table}");
        lower.match_indices(&at).any(|(i, _)| {
            let next = lower[i + at.len()..].chars().next();
            next.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
        })
    })
}

/// SQL as `touches` reads it: lowercased, runs of whitespace as one space, a space in front.
pub fn normalise(sql: &str) -> String {
    format!(" {}", sql.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase())
}

/// The tables a statement touches, split by plane (tables kept in both planes in neither).
pub fn tables(sql: &str) -> (BTreeSet<&'static str>, BTreeSet<&'static str>) {
    let lower = normalise(sql);
    let (mut control, mut shard) = (BTreeSet::new(), BTreeSet::new());
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
    (control, shard)
}

/// `control tables | shard tables` when the statements, taken together, touch both planes.
pub fn crossing<'a>(sqls: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let (mut control, mut shard) = (BTreeSet::new(), BTreeSet::new());
    for sql in sqls {
        let (c, s) = tables(sql);
        control.extend(c);
        shard.extend(s);
    }
    if control.is_empty() || shard.is_empty() {
        return None;
    }
    let join = |s: BTreeSet<&str>| s.into_iter().collect::<Vec<_>>().join(" ");
    Some(format!("{} | {}", join(control), join(shard)))
}

/// A statement's plane.
pub fn plane(sql: &str) -> Plane {
    let (control, shard) = tables(sql);
    match (control.is_empty(), shard.is_empty()) {
        (_, false) => Plane::Shard,
        (false, true) => Plane::Control,
        (true, true) => Plane::Either,
    }
}

/// Whether a statement writes: an `INSERT`, `UPDATE`, `DELETE` or `REPLACE`, alone or after a
/// `WITH`. A moving tenant's writes are refused by this (`platform::router`).
pub fn writes(sql: &str) -> bool {
    let lower = normalise(sql);
    let first = lower.split(' ').nth(1).unwrap_or("");
    match first {
        "insert" | "update" | "delete" | "replace" => true,
        "with" => [" insert ", " update ", " delete ", " replace "].iter().any(|k| lower.contains(k)),
        _ => false,
    }
}

/// The number of the parameter (from 1) that names the tenant of a data-shard statement: the
/// first `?N` compared with, or inserted into, the tenant column of a shard table it touches.
/// `None` for a statement that names no tenant (a platform-wide scan, which runs on each shard).
pub fn tenant_param(sql: &str) -> Option<usize> {
    tenant_site(sql, |v| number(v.trim_start().strip_prefix('?')?))
}

/// The tenant a data-shard statement with literal values names (`client_id = 'cli_…'`, or the
/// value inserted into the tenant column): how a script (the demo data, a test's own SQL) finds
/// its shard.
pub fn tenant_literal(sql: &str) -> Option<String> {
    tenant_site(sql, |v| {
        let v = v.trim_start().strip_prefix('\'')?;
        let v = &v[..v.find('\'')?];
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// The earliest place in the text where a data-shard statement names its tenant in a way `read`
/// accepts: the value compared with (`col = …`, `alias.col = …`) or inserted into
/// (`INSERT INTO table (…, col, …) VALUES (…)` or `SELECT …`) the tenant column of a shard table
/// it touches. `read` gets the statement's own text from that value on.
fn tenant_site<T>(sql: &str, read: impl Fn(&str) -> Option<T>) -> Option<T> {
    let lower = normalise(sql);
    // The same text in its own case: `normalise` keeps every byte's place.
    let original = format!(" {}", sql.split_whitespace().collect::<Vec<_>>().join(" "));
    let (_, shard) = tables(sql);
    let both = IN_BOTH_PLANES.iter().copied().filter(|t| touches(&lower, t));
    let mut found: Option<(usize, T)> = None;
    for table in shard.into_iter().chain(both) {
        let Some(col) = tenant_column(table) else { continue };
        let pat = format!("{col} = ");
        let compared = lower
            .match_indices(&pat)
            .filter(|(i, _)| lower[..*i].chars().next_back().is_some_and(|c| c == ' ' || c == '.' || c == '('))
            .filter_map(|(i, _)| read(&original[i + pat.len()..]).map(|v| (i, v)));
        let inserted =
            inserted_at(&lower, table, col).and_then(|(at, value)| read(&original[value..]).map(|v| (at, v)));
        for hit in compared.chain(inserted) {
            if found.as_ref().is_none_or(|(at, _)| hit.0 < *at) {
                found = Some(hit);
            }
        }
    }
    found.map(|(_, v)| v)
}

/// Where `INSERT INTO table (.., col, ..) VALUES (..)` (or `SELECT ..`) names the column, and where
/// the value in the column's place starts.
fn inserted_at(lower: &str, table: &str, col: &str) -> Option<(usize, usize)> {
    let head = format!(" into {table} (");
    let start = lower.find(&head)? + head.len();
    let close = start + lower[start..].find(')')?;
    let place = lower[start..close].split(',').position(|c| c.trim() == col)?;
    let rest = lower[close + 1..].trim_start();
    let body = rest.strip_prefix("values (").or_else(|| rest.strip_prefix("select "))?;
    let item = split_values(body).into_iter().nth(place)?;
    Some((start, item.as_ptr() as usize - lower.as_ptr() as usize))
}

/// A `VALUES (…)` or `SELECT …` list's items, split at the commas outside quotes and brackets,
/// up to the list's `)` (the last item of a `SELECT` runs to the end).
fn split_values(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut depth, mut quoted) = (Vec::new(), 0, 0, false);
    for (i, c) in s.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                return out;
            }
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The digits at the start of `s`.
fn number(s: &str) -> Option<usize> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_lands_in_the_plane_of_its_tables() {
        assert_eq!(plane("SELECT id FROM contacts WHERE client_id = ?1"), Plane::Shard);
        assert_eq!(plane("UPDATE domains SET status = ?3 WHERE client_id = ?1 AND id = ?2"), Plane::Control);
        assert_eq!(plane("INSERT INTO audit_log (id, tenant_id) VALUES (?1, ?2)"), Plane::Either);
        assert_eq!(plane("SELECT 1"), Plane::Either);
        // A table's name inside another's does not count.
        assert_eq!(plane("SELECT * FROM clients_archive"), Plane::Either);
        assert_eq!(
            crossing(["SELECT 1 FROM clients c JOIN contacts k ON k.client_id = c.id"]),
            Some("clients | contacts".into())
        );
        assert_eq!(crossing(["UPDATE domains SET x = 1", "INSERT INTO audit_log (id) VALUES (?1)"]), None);
    }

    #[test]
    fn the_tenant_parameter_is_found_where_it_is_compared_or_inserted() {
        assert_eq!(tenant_param("SELECT id FROM contacts WHERE client_id = ?1 AND id = ?2"), Some(1));
        assert_eq!(tenant_param("DELETE FROM deals WHERE id = ?1 AND client_id = ?3"), Some(3));
        assert_eq!(tenant_param("SELECT 1 FROM staff_services ss WHERE ss.client_id = ?2"), Some(2));
        assert_eq!(tenant_param("INSERT INTO notes (id, client_id, body) VALUES (?1, ?2, ?3)"), Some(2));
        assert_eq!(tenant_param("INSERT INTO files (id, tenant_id) SELECT ?4, ?7 WHERE 1"), Some(7));
        assert_eq!(tenant_param("INSERT INTO audit_log (id, tenant_id, at) VALUES (?1, ?2, ?3)"), Some(2));
        // `other_client_id = ?1` is not the tenant column.
        assert_eq!(tenant_param("SELECT 1 FROM contacts WHERE other_client_id = ?1"), None);
        assert_eq!(tenant_param("SELECT seq FROM events WHERE dispatched_at IS NULL"), None);
        assert_eq!(tenant_param("SELECT id FROM domains WHERE client_id = ?1"), None, "a control-plane table");
    }

    #[test]
    fn writes_are_told_from_reads_by_their_first_keyword() {
        assert!(writes("INSERT INTO notes (id) VALUES (?1)"));
        assert!(writes("  update contacts SET name = ?2 WHERE client_id = ?1"));
        assert!(writes("DELETE FROM tags WHERE client_id = ?1"));
        assert!(writes("WITH x AS (SELECT 1) UPDATE deals SET title = ?2 WHERE client_id = ?1"));
        assert!(!writes("SELECT id FROM contacts WHERE client_id = ?1"));
        assert!(!writes("WITH x AS (SELECT 1) SELECT * FROM x"));
        // A column named like a keyword is not one.
        assert!(!writes("SELECT updated_at FROM contacts WHERE client_id = ?1"));
    }

    #[test]
    fn a_scripts_tenant_is_read_from_its_literals() {
        let insert = "INSERT INTO contacts (id, client_id, name) VALUES ('con_1', 'cli_A', 'Smith, Jo (x)');";
        assert_eq!(tenant_literal(insert).as_deref(), Some("cli_A"));
        let quoted = "INSERT INTO notes (id, body, client_id) VALUES ('n', 'it''s, a (note)', 'cli_B')";
        assert_eq!(tenant_literal(quoted).as_deref(), Some("cli_B"));
        assert_eq!(tenant_literal("UPDATE staff SET active = 0 WHERE client_id = 'cli_C'").as_deref(), Some("cli_C"));
        assert_eq!(tenant_literal("DELETE FROM events WHERE seq > 3"), None);
    }
}
