//! Data exports: every row a client owns and every file it stored, in one tar archive in R2.
//!
//! The tables come from `schema::TENANT_OWNED`, so a table added later is exported without a
//! change here. Each table's rows are JSON lines in `data/{table}/{chunk}.jsonl`, each file is
//! `files/{file_id}/{name}`, and `manifest.json` closes the archive with the counts, the columns
//! withheld (secrets and the hashes standing for them), and the file list.
//!
//! The job runs in steps off the queue (one message per step, the next queued by the last), and
//! the `exports` row is its whole state, so any step can die and be run again. Bytes go to R2 as
//! a multipart upload: R2 wants every part but the last of one size, at least 5 MiB, so what does
//! not fill a part waits in a `pending` object, under a new key each step (a rerun of a step
//! never reads its own output). A lease keeps two deliveries of one message from both working.

use serde_json::{json, Map, Value};

use super::{download, link_denied, link_expiry, signed_query, verify_signed, FileRow};
use crate::access::audit::{self, Actor, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, ClientScope};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{page_params, page_response};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_id, new_id, new_token};
use crate::platform::ports::{col_i64, ByteRange, Param, Platform, QueueMessage, Row, Stmt};
use crate::platform::schema::{AGENCY_OWNED, TENANT_OWNED};
use crate::platform::Ctx;

/// Starts an export unless one of the client's is already under way (decided by the insert).
pub const INSERT: &str = "INSERT INTO exports (id, client_id, status, requested_by, object_key, link_nonce, \
    part_size, created_at, updated_at) SELECT ?1, ?2, 'queued', ?3, ?4, ?5, ?7, ?6, ?6 \
    WHERE NOT EXISTS (SELECT 1 FROM exports WHERE client_id = ?2 AND status IN ('queued', 'running'))";
pub const LIST: &str = "SELECT id, client_id, status, requested_by, object_key, upload_id, parts, phase, cursor, \
    file_cursor, chunk, pending_key, pending_bytes, counts, rows, files, size, part_size, etag, link_nonce, attempts, \
    lease_until, error, created_at, updated_at, finished_at, expires_at \
    FROM exports WHERE client_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
pub const SELECT_ONE: &str = "SELECT id, client_id, status, requested_by, object_key, upload_id, parts, phase, \
    cursor, file_cursor, chunk, pending_key, pending_bytes, counts, rows, files, size, part_size, etag, link_nonce, \
    attempts, lease_until, error, created_at, updated_at, finished_at, expires_at FROM exports \
    WHERE client_id = ?1 AND id = ?2";
/// A step's claim: one worker at a time, while the export is under way.
pub const CLAIM_STEP: &str = "UPDATE exports SET status = 'running', lease_until = ?3, attempts = attempts + 1, \
    updated_at = ?2 WHERE id = ?1 AND status IN ('queued', 'running') AND (lease_until IS NULL OR lease_until < ?2) \
    AND client_id NOT IN (SELECT tenant_id FROM fenced_tenants) RETURNING client_id";
/// Whether a client is past its purge deadline (a control-plane read: the export is the shard's).
pub const PURGE_DUE: &str = "SELECT 1 AS ok FROM clients WHERE id = ?1 AND purge_after <= ?2";
/// A step gives its lease back when the store failed under it, so the queue's retry can run.
pub const RELEASE: &str = "UPDATE exports SET lease_until = NULL WHERE client_id = ?1 AND id = ?2 AND lease_until = ?3";
/// Whether a step still holds its lease, asked before it uploads anything.
pub const LEASE_OF: &str = "SELECT lease_until AS n FROM exports WHERE client_id = ?1 AND id = ?2";
/// Starts an export over (a new upload), after its upload could not be completed.
pub const RESTART: &str = "UPDATE exports SET upload_id = NULL, parts = '[]', phase = 0, cursor = '', \
    file_cursor = '', chunk = 0, pending_key = NULL, pending_bytes = 0, counts = '{}', rows = 0, files = 0, \
    lease_until = NULL, updated_at = ?3 WHERE client_id = ?1 AND id = ?2 AND lease_until = ?4";
/// A step's progress, only under the lease it claimed.
pub const SAVE: &str = "UPDATE exports SET upload_id = ?3, parts = ?4, phase = ?5, cursor = ?6, file_cursor = ?7, \
    chunk = ?8, pending_key = ?9, pending_bytes = ?10, counts = ?11, rows = ?12, files = ?13, size = ?14, \
    etag = ?15, status = ?16, finished_at = ?17, expires_at = ?18, lease_until = NULL, attempts = 0, \
    updated_at = ?19 WHERE client_id = ?1 AND id = ?2 AND lease_until = ?20";
pub const FAIL: &str = "UPDATE exports SET status = 'failed', error = ?3, lease_until = NULL, updated_at = ?4, \
    finished_at = ?4 WHERE client_id = ?1 AND id = ?2 AND status IN ('queued', 'running')";
/// Exports whose step was lost (a message dropped, a worker gone): queued again by the cron.
pub const STALLED_EXPORTS: &str = "SELECT id FROM exports WHERE status IN ('queued', 'running') AND updated_at < ?1 \
    AND (lease_until IS NULL OR lease_until < ?2) AND client_id NOT IN (SELECT tenant_id FROM fenced_tenants) \
    ORDER BY updated_at LIMIT ?3";
/// Archives past their time, for the cron to delete.
pub const EXPIRED_ARCHIVES: &str =
    "SELECT client_id, id, object_key FROM exports WHERE status = 'ready' AND expires_at < ?1 \
    AND client_id NOT IN (SELECT tenant_id FROM fenced_tenants) ORDER BY expires_at LIMIT ?2";
pub const MARK_EXPIRED: &str =
    "UPDATE exports SET status = 'expired', updated_at = ?3 WHERE client_id = ?1 AND id = ?2 AND status = 'ready'";
/// The client's ready files, in id order, for the archive.
pub const FILES: &str = "SELECT id, tenant_id, area, object_key, name, content_type, size, sha256, etag, status, \
    uploaded_by, created_at, link_nonce FROM files WHERE tenant_id = ?1 AND status = 'ready' AND id > ?2 \
    ORDER BY id LIMIT ?3";

/// R2's smallest part: every part but the last is one size, at least this.
pub const MIN_PART: i64 = 5 * 1024 * 1024;
/// R2's most parts in one upload (with some room: the row count is an estimate).
const PARTS_PLANNED: i64 = 9_000;
const MAX_PARTS: usize = 10_000;
const ROWS_PER_CHUNK: i64 = 500;
/// A step stops after this many bytes or chunks, so each one stays well inside a Worker's limits.
const STEP_BYTES: usize = 8 * 1024 * 1024;
const STEP_CHUNKS: usize = 10;
const FILES_PER_QUERY: i64 = 20;
const LEASE_MS: i64 = 120_000;
/// A claimed step that keeps failing this many times in a row ends the export as failed.
const MAX_ATTEMPTS: i64 = 12;
/// How long an archive stays downloadable.
pub const KEEP_MS: i64 = 7 * 24 * 3_600_000;

/// Columns never exported: secrets, and the hashes and nonces that stand for them.
pub const WITHHELD: &[(&str, &[&str])] = &[
    ("client_settings", &["ciphertext"]),
    ("api_keys", &["key_hash"]),
    ("webhook_endpoints", &["secret_sealed", "previous_secret_sealed"]),
    ("invitations", &["token_hash", "accept_nonce"]),
    ("outbox", &["body"]),
    ("files", &["link_nonce"]),
];

/// The key each table is paged by, where it is not `id`: a key an index leading with the tenant
/// column orders, so each page is an index search (a test checks every table's plan). Tables
/// without an `id` go by rowid: their tenant index holds the rowid in order.
const PAGE_KEYS: &[(&str, &str)] = &[
    ("audit_log", "seq"),
    ("events", "seq"),
    ("client_users", "rowid"),
    ("client_settings", "rowid"),
    ("branding", "rowid"),
    ("usage_counters", "rowid"),
    ("tenant_daily", "day"),
    ("contact_tags", "rowid"),
    ("staff_services", "rowid"),
    ("staff_hours", "rowid"),
];

/// What an export reads, in order, as (table, tenant column, page key): the client's own row,
/// then every client-owned table (not the exports themselves, which describe the export).
pub fn tables() -> Vec<(&'static str, &'static str, &'static str)> {
    let key = |t: &str| PAGE_KEYS.iter().find(|(n, _)| *n == t).map_or("id", |(_, k)| *k);
    let mut out = vec![("clients", "id", "id")];
    out.extend(
        TENANT_OWNED
            .iter()
            .filter(|(t, _)| !AGENCY_OWNED.contains(t) && *t != "exports")
            .map(|(t, c)| (*t, *c, key(t))),
    );
    out
}

/// One page of a table's rows for a client, after `cursor` (a key value as text; empty: the
/// start), in key order. The SQL is built from `tables()` alone.
pub fn page_sql(table: &str, col: &str, key: &str) -> String {
    format!("SELECT {key} AS _key, * FROM {table} WHERE {col} = ?1 AND {key} > ?2 ORDER BY {key} LIMIT ?3")
}

fn cursor_param(key: &str, cursor: &str) -> Param {
    if key == "id" {
        return cursor.into();
    }
    Param::Int(cursor.parse().unwrap_or(i64::MIN))
}

crate::platform::rows::row! {
    #[derive(Debug, Clone)]
    pub struct ExportRow {
        pub id: String,
        pub client_id: String,
        pub status: String,
        pub requested_by: Option<String>,
        pub object_key: String,
        pub upload_id: Option<String>,
        pub parts: String,
        pub phase: i64,
        pub cursor: String,
        pub file_cursor: String,
        pub chunk: i64,
        pub pending_key: Option<String>,
        pub pending_bytes: i64,
        pub counts: String,
        pub rows: i64,
        pub files: i64,
        pub size: i64,
        pub part_size: i64,
        pub etag: Option<String>,
        link_nonce: String,
        pub attempts: i64,
        pub lease_until: Option<i64>,
        pub error: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        pub finished_at: Option<i64>,
        pub expires_at: Option<i64>,
    }
}

impl ExportRow {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "client_id": self.client_id, "status": self.status, "requested_by": self.requested_by,
            "rows": self.rows, "files": self.files, "size": self.size, "error": self.error,
            "tables": serde_json::from_str::<Value>(&self.counts).unwrap_or(Value::Null),
            "created_at": self.created_at, "finished_at": self.finished_at, "expires_at": self.expires_at,
        })
    }

    /// The archive, as the file the download machinery serves.
    fn archive(&self) -> FileRow {
        FileRow {
            id: self.id.clone(),
            tenant_id: self.client_id.clone(),
            area: "exports".into(),
            object_key: self.object_key.clone(),
            name: format!("export-{}-{}.tar", self.client_id, self.id),
            content_type: "application/x-tar".into(),
            size: self.size,
            sha256: String::new(),
            etag: self.etag.clone(),
            status: "ready".into(),
            uploaded_by: self.requested_by.clone(),
            created_at: self.created_at,
            link_nonce: self.link_nonce.clone(),
        }
    }
}

/// The archive's key, built only here from validated ids.
fn object_key(client_id: &str, export_id: &str) -> Option<String> {
    (looks_like_id(client_id, "cli") && looks_like_id(export_id, "exp"))
        .then(|| format!("tenants/{client_id}/exports/{export_id}.tar"))
}

fn event<'a>(client_id: &'a str, action: &'a str, id: &'a str, metadata: Value) -> Event<'a> {
    Event { tenant_id: client_id, action, target_type: "export", target_id: Some(id), metadata }
}

/// `POST /api/clients/{id}/exports`: queues an export (202); one at a time per client.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DataExport).await?;
    let id = new_id("exp")?;
    let key = object_key(client.id(), &id).ok_or_else(|| ApiError::Internal("export key".into()))?;
    // Parts of one size for the whole upload, big enough that the archive (its files, and as much
    // again for rows and headers) fits R2's 10,000 parts.
    let stored = ctx.p.query(super::USAGE, &[client.id().into()]).await?;
    let estimate = 2 * stored.first().and_then(|r| col_i64(r, "used")).unwrap_or(0);
    let part_size = MIN_PART.max(((estimate / PARTS_PLANNED + (1 << 20) - 1) >> 20) << 20);
    let stmts = [
        Stmt::new(
            INSERT,
            vec![
                id.as_str().into(),
                client.id().into(),
                who.user_id.as_str().into(),
                key.into(),
                new_token("")?.into(),
                Param::Int(ctx.p.now_ms()),
                Param::Int(part_size),
            ],
        ),
        audit::entry_if_changed(ctx, req, who, event(client.id(), "export.requested", &id, json!({})))?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::conflict("export_running", "an export of this client is already under way"));
    }
    // The first step; if the queue is down, the cron finds the export stalled and queues it.
    if let Err(e) = ctx.p.enqueue(&[QueueMessage { body: id.clone(), delay_secs: 0 }]).await {
        ctx.p.log("warn", &format!("export {id} not queued (the cron will): {e}"));
    }
    Ok(Response::json(202, &one(ctx, &client, &id).await?.to_json()))
}

async fn one<P: Platform>(ctx: &Ctx<'_, P>, client: &ClientScope, id: &str) -> ApiResult<ExportRow> {
    if !looks_like_id(id, "exp") {
        return Err(ApiError::NotFound);
    }
    ctx.p.query_first(SELECT_ONE, &[client.id().into(), id.into()]).await?.ok_or(ApiError::NotFound)
}

/// `GET /api/clients/{id}/exports`.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DataExport).await?;
    let (cursor, limit) = page_params(req)?;
    let rows: Vec<ExportRow> = ctx.p.query_as(LIST, &[client.id().into(), cursor.into(), Param::Int(limit)]).await?;
    let shown: Vec<Value> = rows.iter().map(ExportRow::to_json).collect();
    Ok(page_response(&shown, limit, |v| v["id"].as_str().map(String::from)))
}

/// `GET /api/clients/{id}/exports/{export_id}`: status and progress.
pub async fn get<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DataExport).await?;
    Ok(Response::json(200, &one(ctx, &client, id).await?.to_json()))
}

/// `POST /api/clients/{id}/exports/{export_id}/link {expires_in?}`: a download link for a ready
/// archive that needs no token.
pub async fn link<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::DataExport).await?;
    let e = one(ctx, &client, id).await?;
    if e.status != "ready" {
        return Err(ApiError::conflict("export_not_ready", format!("this export is {}", e.status)));
    }
    let expires = link_expiry(ctx, req)?.min(e.expires_at.unwrap_or(0).div_euclid(1000));
    let url =
        format!("/api/exports/signed/{}{}", e.id, signed_query(&ctx.cfg.file_signing_secret, &e.archive(), expires)?);
    Ok(Response::json(200, &json!({"url": url, "expires_at": expires})))
}

/// `GET /api/exports/signed/{export_id}?t=&e=&s=`: the archive; the signature is the authority.
pub async fn signed_download<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, id: &str) -> ApiResult<Response> {
    let t = req.query_param("t").unwrap_or_default();
    if !looks_like_id(&t, "cli") || !looks_like_id(id, "exp") {
        return Err(link_denied());
    }
    let e: ExportRow = ctx.p.query_first(SELECT_ONE, &[t.as_str().into(), id.into()]).await?.ok_or_else(link_denied)?;
    if e.status != "ready" {
        return Err(link_denied());
    }
    let f = e.archive();
    verify_signed(
        &ctx.cfg.file_signing_secret,
        &f,
        &req.query_param("e").unwrap_or_default(),
        &req.query_param("s").unwrap_or_default(),
        ctx.p.now_secs(),
    )?;
    download(req, &f, "attachment")
}

/// A queue message for an export: runs one step, and queues the next unless it was the last.
/// `Err` means the store failed mid-step: the message goes back to the queue.
pub async fn step<P: Platform>(ctx: &Ctx<'_, P>, id: &str) -> ApiResult<()> {
    let now = ctx.p.now_ms();
    let lease = now + LEASE_MS;
    let claimed = ctx.p.query(CLAIM_STEP, &[id.into(), Param::Int(now), Param::Int(lease)]).await?;
    let Some(client_id) = claimed.first().and_then(|r| r.get("client_id")).and_then(Value::as_str) else {
        return Ok(()); // done, failed, or another worker holds it
    };
    if !ctx.p.query(PURGE_DUE, &[client_id.into(), Param::Int(now)]).await?.is_empty() {
        // The client is being purged, its exports with it: give the lease back and stop.
        ctx.p.execute(RELEASE, &[client_id.into(), id.into(), Param::Int(lease)]).await?;
        return Ok(());
    }
    let e: ExportRow = ctx
        .p
        .query_first(SELECT_ONE, &[client_id.into(), id.into()])
        .await?
        .ok_or_else(|| ApiError::Internal("a claimed export vanished".into()))?;
    if e.attempts > MAX_ATTEMPTS {
        return fail(ctx, &e, "gave up after repeated failures").await;
    }
    match run(ctx, e.clone(), lease).await {
        Ok(true) => {
            ctx.p.enqueue(&[QueueMessage { body: id.to_string(), delay_secs: 0 }]).await.map_err(ApiError::from)
        }
        Ok(false) => Ok(()),
        Err(err) => {
            ctx.p.log("error", &format!("export {id} step failed (attempt {}): {err}", e.attempts));
            // Give the lease back, so the queue's retry of this message can run the step again.
            let release = [client_id.into(), id.into(), Param::Int(lease)];
            if let Err(e2) = ctx.p.execute(RELEASE, &release).await {
                ctx.p.log("warn", &format!("export {id}: lease not released ({e2}); it runs out"));
            }
            Err(err)
        }
    }
}

async fn fail<P: Platform>(ctx: &Ctx<'_, P>, e: &ExportRow, why: &str) -> ApiResult<()> {
    let now = ctx.p.now_ms();
    let stmts = [
        Stmt::new(FAIL, vec![e.client_id.as_str().into(), e.id.as_str().into(), why.into(), Param::Int(now)]),
        audit::after_change(&Actor::system(), event(&e.client_id, "export.failed", &e.id, json!({"error": why})), now)?,
    ];
    ctx.p.batch(&stmts).await?;
    // Nothing of a failed export stays in the bucket: its upload, pending bytes and any archive.
    if let Some(up) = &e.upload_id {
        let _ = ctx.p.multipart_abort(&e.object_key, up).await;
    }
    clean_pending(ctx, e).await;
    let _ = ctx.p.delete(&e.object_key).await;
    Ok(())
}

/// Deletes what steps left in the export's pending folder (best effort: the purge of a deleted
/// client and the next export's end sweep the same folder).
async fn clean_pending<P: Platform>(ctx: &Ctx<'_, P>, e: &ExportRow) {
    for k in ctx.p.list(&pending_prefix(e)).await.unwrap_or_default() {
        let _ = ctx.p.delete(&k).await;
    }
}

/// The tar bytes of one step, appended to what was pending; full parts go to R2, the rest to a
/// new pending object. Answers whether there is more to do.
async fn run<P: Platform>(ctx: &Ctx<'_, P>, mut e: ExportRow, lease: i64) -> ApiResult<bool> {
    let now = ctx.p.now_ms();
    let mut parts: Vec<(u16, String)> = crate::platform::body::parse(e.parts.as_bytes(), "parts").unwrap_or_default();
    let mut counts: Map<String, Value> =
        crate::platform::body::parse(e.counts.as_bytes(), "counts").unwrap_or_default();
    let upload_id = match &e.upload_id {
        Some(u) => u.clone(),
        None => ctx.p.multipart_start(&e.object_key, "application/x-tar").await?,
    };
    let mut buf = match &e.pending_key {
        Some(k) if e.pending_bytes > 0 => ctx
            .p
            .get(k, None)
            .await?
            .map(|b| b.bytes)
            .ok_or_else(|| ApiError::Internal(format!("export {}: its pending bytes are missing", e.id)))?,
        _ => Vec::new(),
    };
    let mtime = now.div_euclid(1000);
    let tables = tables();
    let part = usize::try_from(e.part_size).unwrap_or(0).max(MIN_PART as usize);
    let mut produced = 0usize;
    let mut chunks = 0usize;
    let mut done = false;
    while produced < STEP_BYTES && chunks < STEP_CHUNKS {
        let phase = e.phase as usize;
        if let Some((table, col, key)) = tables.get(phase) {
            let params = [e.client_id.as_str().into(), cursor_param(key, &e.cursor), Param::Int(ROWS_PER_CHUNK)];
            let rows = ctx.p.query(&page_sql(table, col, key), &params).await?;
            if !rows.is_empty() {
                let last = rows.last().and_then(|r| r.get("_key")).map(key_text).unwrap_or_default();
                let (lines, n) = jsonl(table, rows);
                produced += tar_entry(&mut buf, &format!("data/{table}/{:06}.jsonl", e.chunk), &lines, mtime);
                e.chunk += 1;
                e.rows += n as i64;
                e.cursor = last;
                let had = counts.get(*table).and_then(Value::as_i64).unwrap_or(0);
                counts.insert(table.to_string(), json!(had + n as i64));
                chunks += 1;
                if n as i64 == ROWS_PER_CHUNK {
                    continue;
                }
            }
            e.phase += 1;
            e.cursor.clear();
            e.chunk = 0;
        } else if phase == tables.len() {
            let files: Vec<FileRow> = ctx
                .p
                .query_as(
                    FILES,
                    &[e.client_id.as_str().into(), e.file_cursor.as_str().into(), Param::Int(FILES_PER_QUERY)],
                )
                .await?;
            if files.is_empty() {
                e.phase += 1;
                continue;
            }
            // The files this step archives, listed beside them: the manifest points at the lists.
            let mut listed = Vec::new();
            for f in &files {
                if produced >= STEP_BYTES {
                    break;
                }
                // A file whose object is gone (the reconciler's business) is left out; its row
                // is still in data/files.
                if let Some(body) = ctx.p.get(&f.object_key, None).await? {
                    produced += tar_entry(&mut buf, &file_path(f), &body.bytes, mtime);
                    e.files += 1;
                    let entry = json!({"id": f.id, "path": file_path(f), "name": f.name, "area": f.area,
                        "size": f.size, "sha256": f.sha256});
                    if serde_json::to_writer(&mut listed, &entry).is_ok() {
                        listed.push(b'\n');
                    }
                }
                e.file_cursor = f.id.clone();
            }
            if !listed.is_empty() {
                produced += tar_entry(&mut buf, &format!("files/index-{:06}.jsonl", e.chunk), &listed, mtime);
                e.chunk += 1;
            }
            chunks += 1;
        } else {
            let manifest = manifest(&e, &counts)?;
            tar_entry(&mut buf, "manifest.json", manifest.as_bytes(), mtime);
            buf.extend_from_slice(&[0u8; 1024]); // the end of the archive
            done = true;
            break;
        }
    }
    // A step whose lease ran out (it was slow, and another took over) uploads nothing.
    let held = ctx.p.query(LEASE_OF, &[e.client_id.as_str().into(), e.id.as_str().into()]).await?;
    if held.first().and_then(|r| col_i64(r, "n")) != Some(lease) {
        return Ok(false);
    }
    // Full parts go now; a finished archive sends the rest as its last part.
    let mut sent = 0usize;
    while buf.len() - sent >= part {
        let etag = ctx
            .p
            .multipart_part(&e.object_key, &upload_id, part_number(&parts)?, buf[sent..sent + part].to_vec())
            .await?;
        parts.push((part_number(&parts)?, etag));
        sent += part;
    }
    let rest = buf.split_off(sent);
    let old_pending = e.pending_key.clone();
    let (status, pending_key, pending_bytes, finished, expires) = if done {
        // A rerun of a final step whose upload was completed before its progress was saved
        // finds the archive there already.
        let meta = match ctx.p.get(&e.object_key, Some(ByteRange { offset: 0, length: 1 })).await? {
            Some(existing) => existing.meta,
            None => {
                if !rest.is_empty() || parts.is_empty() {
                    let etag = ctx.p.multipart_part(&e.object_key, &upload_id, part_number(&parts)?, rest).await?;
                    parts.push((part_number(&parts)?, etag));
                }
                match ctx.p.multipart_finish(&e.object_key, &upload_id, &parts).await {
                    Ok(meta) => meta,
                    Err(err) => return restart(ctx, &e, &upload_id, lease, &err.to_string()).await,
                }
            }
        };
        e.size = meta.size as i64;
        e.etag = Some(meta.etag);
        ("ready", None, 0i64, Some(now), Some(now + KEEP_MS))
    } else {
        let key = format!("{}{}", pending_prefix(&e), new_token("")?.get(..12).unwrap_or("0"));
        let len = rest.len() as i64;
        if len > 0 {
            ctx.p.put(&key, rest, "application/octet-stream").await?;
        }
        ("running", (len > 0).then_some(key), len, None, None)
    };
    let save = Stmt::new(
        SAVE,
        vec![
            e.client_id.as_str().into(),
            e.id.as_str().into(),
            upload_id.as_str().into(),
            json!(parts).to_string().into(),
            Param::Int(e.phase),
            e.cursor.as_str().into(),
            e.file_cursor.as_str().into(),
            Param::Int(e.chunk),
            pending_key.clone().into(),
            Param::Int(pending_bytes),
            Value::Object(counts).to_string().into(),
            Param::Int(e.rows),
            Param::Int(e.files),
            Param::Int(e.size),
            e.etag.clone().into(),
            status.into(),
            finished.map_or(Param::Null, Param::Int),
            expires.map_or(Param::Null, Param::Int),
            Param::Int(now),
            Param::Int(lease),
        ],
    );
    let mut stmts = vec![save];
    if done {
        let meta = json!({"rows": e.rows, "files": e.files, "size": e.size});
        stmts.push(audit::after_change(&Actor::system(), event(&e.client_id, "export.ready", &e.id, meta), now)?);
    }
    if !ctx.p.batch_changed(&stmts).await? {
        // The lease ran out and another worker took over; its state stands, this step's bytes
        // (parts it will upload again, a pending object nobody names) are superseded.
        if let Some(k) = pending_key {
            let _ = ctx.p.delete(&k).await;
        }
        return Ok(false);
    }
    if let Some(k) = old_pending {
        let _ = ctx.p.delete(&k).await;
    }
    if done {
        // Pending objects of steps that died before they could record themselves.
        clean_pending(ctx, &e).await;
    }
    Ok(!done)
}

/// The next part's number; R2 takes at most 10,000.
fn part_number(parts: &[(u16, String)]) -> ApiResult<u16> {
    u16::try_from(parts.len() + 1)
        .ok()
        .filter(|n| usize::from(*n) <= MAX_PARTS)
        .ok_or_else(|| ApiError::Internal("the archive outgrew R2's 10,000 parts".into()))
}

/// A key value as the cursor keeps it.
fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The upload could not be completed (a part replaced under it, say): abort it and start the
/// export over; the attempts count bounds how often.
async fn restart<P: Platform>(
    ctx: &Ctx<'_, P>,
    e: &ExportRow,
    upload_id: &str,
    lease: i64,
    why: &str,
) -> ApiResult<bool> {
    ctx.p.log("warn", &format!("export {}: completing the upload failed ({why}); starting over", e.id));
    let _ = ctx.p.multipart_abort(&e.object_key, upload_id).await;
    clean_pending(ctx, e).await;
    let params = [e.client_id.as_str().into(), e.id.as_str().into(), Param::Int(ctx.p.now_ms()), Param::Int(lease)];
    Ok(ctx.p.execute(RESTART, &params).await? > 0)
}

/// Where an export's pending bytes wait between steps: a folder of its own, emptied at the end.
fn pending_prefix(e: &ExportRow) -> String {
    format!("tenants/{}/exports/{}/", e.client_id, e.id)
}

/// Rows as JSON lines, withheld columns and the cursor column removed; answers the line count.
fn jsonl(table: &str, rows: Vec<Row>) -> (Vec<u8>, usize) {
    let withheld: &[&str] = WITHHELD.iter().find(|(t, _)| *t == table).map_or(&[], |(_, c)| c);
    let n = rows.len();
    let mut out = Vec::new();
    for mut row in rows {
        row.remove("_key");
        for c in withheld {
            row.remove(*c);
        }
        if serde_json::to_writer(&mut out, &row).is_ok() {
            out.push(b'\n');
        }
    }
    (out, n)
}

/// `files/{file_id}/{name}`, the name made safe for a tar path.
fn file_path(f: &FileRow) -> String {
    let name: String = f.name.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).collect();
    format!("files/{}/{}", f.id, name)
}

fn manifest(e: &ExportRow, counts: &Map<String, Value>) -> ApiResult<String> {
    let withheld: Map<String, Value> = WITHHELD.iter().map(|(t, c)| (t.to_string(), json!(c))).collect();
    let doc = json!({
        "format": "gatehouse-export/1",
        "export_id": e.id,
        "client_id": e.client_id,
        "created_at": e.created_at,
        "tables": counts,
        "rows": e.rows,
        "files": e.files,
        "file_lists": "files/index-*.jsonl: one line per archived file (id, path, name, area, size, sha256)",
        "withheld_columns": withheld,
    });
    serde_json::to_string_pretty(&doc).map_err(|err| ApiError::Internal(err.to_string()))
}

/// Appends one ustar entry (header, data, padding to 512); answers the bytes added. Paths longer
/// than the header's 100 bytes are split into its 155-byte prefix and name, and what still does
/// not fit is cut at a character boundary (the manifest keeps the full name).
fn tar_entry(out: &mut Vec<u8>, path: &str, data: &[u8], mtime: i64) -> usize {
    let start = out.len();
    let mut h = [0u8; 512];
    let (prefix, name) = split_path(path);
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], data.len() as u64);
    octal(&mut h[136..148], mtime.max(0) as u64);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|b| *b as u64).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len() + (512 - data.len() % 512) % 512, 0);
    out.len() - start
}

fn split_path(path: &str) -> (&str, &str) {
    if path.len() <= 100 {
        return ("", path);
    }
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    (truncate(dir, 155), truncate(name, 100))
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Writes `v` as zero-padded octal with a NUL, filling the field.
fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// The cron's part: exports whose step was lost go back on the queue, and archives past their
/// time are deleted. Answers (requeued, expired).
pub async fn sweep<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<(usize, usize)> {
    let now = ctx.p.now_ms();
    let stalled = ctx.p.query(STALLED_EXPORTS, &[Param::Int(now - 60_000), Param::Int(now), Param::Int(50)]).await?;
    let messages: Vec<QueueMessage> = stalled
        .iter()
        .filter_map(|r| r.get("id").and_then(Value::as_str))
        .map(|id| QueueMessage { body: id.to_string(), delay_secs: 0 })
        .collect();
    if !messages.is_empty() {
        ctx.p.enqueue(&messages).await?;
    }
    let expired = ctx.p.query(EXPIRED_ARCHIVES, &[Param::Int(now), Param::Int(50)]).await?;
    for r in &expired {
        let (Some(client), Some(id), Some(key)) = (
            r.get("client_id").and_then(Value::as_str),
            r.get("id").and_then(Value::as_str),
            r.get("object_key").and_then(Value::as_str),
        ) else {
            continue;
        };
        ctx.p.delete(key).await?;
        ctx.p.execute(MARK_EXPIRED, &[client.into(), id.into(), Param::Int(now)]).await?;
    }
    Ok((messages.len(), expired.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_headers_have_the_ustar_shape_and_a_valid_checksum() {
        let mut out = Vec::new();
        let n = tar_entry(&mut out, "data/contacts/000000.jsonl", b"{\"a\":1}\n", 1_800_000_000);
        assert_eq!(n, 1024);
        assert_eq!(&out[..26], b"data/contacts/000000.jsonl");
        assert_eq!(&out[257..262], b"ustar");
        assert_eq!(&out[124..135], b"00000000010");
        let stored = u64::from_str_radix(std::str::from_utf8(&out[148..154]).unwrap(), 8).unwrap();
        let mut h = out[..512].to_vec();
        h[148..156].fill(b' ');
        assert_eq!(stored, h.iter().map(|b| *b as u64).sum::<u64>());
        let long = format!("files/fil_x/{}", "é".repeat(80));
        let (prefix, name) = split_path(&long);
        assert_eq!(prefix, "files/fil_x");
        assert!(name.len() <= 100 && name.chars().all(|c| c == 'é'));
    }

    #[test]
    fn every_client_table_is_exported_and_only_those() {
        let t = tables();
        assert_eq!(t[0], ("clients", "id", "id"));
        for (name, col, _) in &t[1..] {
            assert!(*name != "exports" && !AGENCY_OWNED.contains(name), "{name}");
            assert_eq!(TENANT_OWNED.iter().find(|(n, _)| n == name).map(|(_, c)| c), Some(col));
        }
        // Every client-owned table but the exports themselves, and the client's own row.
        let client_owned = TENANT_OWNED.iter().filter(|(n, _)| !AGENCY_OWNED.contains(n)).count();
        assert_eq!(t.len(), client_owned - 1 + 1);
    }
}
