//! Tenant files in R2. Object keys are built only here, as `tenants/{tenant}/{area}/{file_id}`
//! from validated ids; a user's filename is metadata and never reaches a key. The D1 row and
//! the R2 object are made and removed together: a row is `pending` until its object exists,
//! `deleting` while its object goes, and only `ready` rows are visible. `export` writes a client's
//! whole data (rows and files) into one archive.

pub mod export;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::access::audit::{self, Event};
use crate::access::events::{self, Kind};
use crate::access::plans::{self, Metric};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, require_permission, ClientScope};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{json_body, page_params, page_response};
use crate::platform::http::{Request, Response, StoredBody};
use crate::platform::ids::looks_like_id;
use crate::platform::ports::{decode, decode_all, ByteRange, Database, Param, Platform, Stmt};
use crate::platform::Ctx;

/// Inserts the pending row only if it fits the quota. One statement, so concurrent uploads
/// cannot each see the same usage and together overshoot; zero rows changed means "over quota".
pub const INSERT_PENDING: &str =
    "INSERT INTO files (id, tenant_id, area, object_key, name, content_type, size, sha256, \
    status, uploaded_by, created_at, link_nonce) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?12 \
    WHERE (SELECT coalesce(sum(size), 0) FROM files WHERE tenant_id = ?2 AND status <> 'deleting') + ?7 <= ?11";
/// The plan behind a tenant's storage limit: a client's (with its overrides) or an agency's.
pub const STORAGE_PLAN: &str = "SELECT plan, limits, 1 AS client FROM clients WHERE id = ?1 \
    UNION ALL SELECT plan, '{}' AS limits, 0 AS client FROM agencies WHERE id = ?1";
pub const MARK_READY: &str =
    "UPDATE files SET status = 'ready', etag = ?3 WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'";
pub const MARK_DELETING: &str =
    "UPDATE files SET status = 'deleting' WHERE tenant_id = ?1 AND id = ?2 AND status = 'ready'";
pub const UNMARK_DELETING: &str =
    "UPDATE files SET status = 'ready' WHERE tenant_id = ?1 AND id = ?2 AND status = 'deleting'";
pub const DELETE_ROW: &str = "DELETE FROM files WHERE tenant_id = ?1 AND id = ?2";
pub const SELECT_READY: &str =
    "SELECT id, tenant_id, area, object_key, name, content_type, size, sha256, etag, status, \
    uploaded_by, created_at, link_nonce FROM files WHERE tenant_id = ?1 AND id = ?2 AND status = 'ready'";
pub const LIST_READY: &str = "SELECT id, tenant_id, area, object_key, name, content_type, size, sha256, etag, status, \
    uploaded_by, created_at, link_nonce FROM files WHERE tenant_id = ?1 AND status = 'ready' AND area = ?2 AND id > ?3 \
    ORDER BY id LIMIT ?4";
/// Rotating the nonce kills every signed link made for the file so far.
pub const ROTATE_NONCE: &str = "UPDATE files SET link_nonce = ?3 WHERE tenant_id = ?1 AND id = ?2 AND status = 'ready'";
pub const USAGE: &str =
    "SELECT coalesce(sum(size), 0) AS used FROM files WHERE tenant_id = ?1 AND status <> 'deleting'";
/// Branding assets are public (a logo on a login page). Served by id, branding area only.
pub const SELECT_PUBLIC_ASSET: &str =
    "SELECT id, tenant_id, area, object_key, name, content_type, size, sha256, etag, \
    status, uploaded_by, created_at, link_nonce FROM files WHERE id = ?1 AND area = 'branding' AND status = 'ready'";
/// Rows left mid-protocol by a crash, for the reconciler. Platform-wide by design.
pub const STALE: &str = "SELECT id, tenant_id, area, object_key, name, content_type, size, sha256, etag, status, \
    uploaded_by, created_at, link_nonce FROM files WHERE status IN ('pending', 'deleting') AND created_at < ?1 \
    AND tenant_id NOT IN (SELECT tenant_id FROM fenced_tenants) LIMIT ?2";

/// How long a row may sit mid-protocol before the reconciler finishes the job.
pub const STALE_AFTER_MS: i64 = 15 * 60 * 1000;
pub const MAX_NAME_CHARS: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Uploads,
    Branding,
}

impl Area {
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Uploads => "uploads",
            Area::Branding => "branding",
        }
    }

    pub fn parse(s: &str) -> Option<Area> {
        match s {
            "uploads" => Some(Area::Uploads),
            "branding" => Some(Area::Branding),
            _ => None,
        }
    }

    /// What reading a file in this area takes. Branding assets belong to branding.
    pub fn read_permission(self) -> Permission {
        match self {
            Area::Uploads => Permission::FilesRead,
            Area::Branding => Permission::BrandingRead,
        }
    }

    /// What changing or deleting a file in this area takes.
    pub fn write_permission(self) -> Permission {
        match self {
            Area::Uploads => Permission::FilesWrite,
            Area::Branding => Permission::BrandingWrite,
        }
    }
}

/// An R2 key. Only `ObjectKey::new` builds one, from a validated tenant id and a server-made
/// file id, so every key starts with its tenant's prefix and holds nothing a user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(tenant_id: &str, area: Area, file_id: &str) -> Option<ObjectKey> {
        let tenant_ok = looks_like_id(tenant_id, "cli") || looks_like_id(tenant_id, "agy");
        (tenant_ok && looks_like_id(file_id, "fil")).then(|| ObjectKey(format!("{}{file_id}", prefix(tenant_id, area))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant's listing prefix; it always ends in `/`, so `cli_1` never lists `cli_10`.
pub fn prefix(tenant_id: &str, area: Area) -> String {
    format!("tenants/{tenant_id}/{}/", area.as_str())
}

crate::platform::rows::row! {
    #[derive(Debug, Clone)]
    pub struct FileRow {
        pub id: String,
        pub tenant_id: String,
        pub area: String,
        pub object_key: String,
        pub name: String,
        pub content_type: String,
        pub size: i64,
        pub sha256: String,
        pub etag: Option<String>,
        pub status: String,
        pub uploaded_by: Option<String>,
        pub created_at: i64,
        /// Part of every signed link's MAC; rotating it revokes the links. Never sent out.
        pub link_nonce: String,
    }
}

impl FileRow {
    pub fn area(&self) -> Area {
        // The column's CHECK constraint allows only the two; anything else is treated as the
        // stricter branding area.
        Area::parse(&self.area).unwrap_or(Area::Branding)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "area": self.area, "name": self.name, "content_type": self.content_type,
            "size": self.size, "sha256": self.sha256, "etag": self.etag, "uploaded_by": self.uploaded_by,
            "created_at": self.created_at,
        })
    }
}

/// What the first bytes say a file is. Text types have no magic; they must be UTF-8 without NUL.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"\x00\x00\x01\x00", "image/x-icon"),
        (b"MZ", "application/x-msdownload"),
        (b"\x7fELF", "application/x-elf"),
        (b"PK\x03\x04", "application/zip"),
    ];
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    MAGIC.iter().find(|(m, _)| bytes.starts_with(m)).map(|(_, t)| *t)
}

/// The declared type must be allowed and must agree with the bytes.
pub fn check_content(declared: &str, bytes: &[u8], allowed: &[String]) -> ApiResult<String> {
    let declared = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !allowed.contains(&declared) {
        return Err(ApiError::UnsupportedMediaType(format!("`{declared}` is not an allowed file type")));
    }
    let sniffed = sniff(bytes);
    let agrees = match declared.as_str() {
        "text/plain" | "text/csv" => sniffed.is_none() && std::str::from_utf8(bytes).is_ok() && !bytes.contains(&0),
        other => sniffed == Some(other),
    };
    if !agrees {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the file's content does not match `{declared}`{}",
            sniffed.map(|s| format!(" (it looks like {s})")).unwrap_or_default()
        )));
    }
    Ok(declared)
}

/// A filename kept as metadata: control characters and path separators removed, bounded.
pub fn clean_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .take(MAX_NAME_CHARS)
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '.') {
        "file".to_string()
    } else {
        trimmed.to_string()
    }
}

pub struct Upload<'a> {
    pub tenant_id: &'a str,
    pub area: Area,
    pub name: &'a str,
    pub content_type: &'a str,
    pub bytes: Vec<u8>,
}

/// The storage limit of a client (its plan's, or its own override) or of an agency (its plan's),
/// and whether the tenant is a client (whose usage events are recorded).
async fn storage_limit(db: &impl Database, tenant_id: &str) -> ApiResult<(i64, bool)> {
    crate::platform::rows::row! {
        struct Plan {
            plan: String,
            limits: String,
            client: i64,
        }
    }
    let p: Option<Plan> = db.query_first(STORAGE_PLAN, &[tenant_id.into()]).await?;
    Ok(p.map_or((0, false), |p| (plans::limit_of(&p.plan, &p.limits, Metric::StorageBytes), p.client != 0)))
}

/// Stores a file: the row goes in `pending`, then the object, then the row turns `ready` with
/// its audit entry in one batch. Any failure undoes what was done before it.
pub async fn store<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    up: Upload<'_>,
) -> ApiResult<FileRow> {
    let size = up.bytes.len() as u64;
    if size == 0 {
        return Err(ApiError::invalid("empty_file", "the upload is empty"));
    }
    if size > ctx.cfg.max_upload_bytes {
        return Err(ApiError::TooLarge(format!("files are limited to {} bytes", ctx.cfg.max_upload_bytes)));
    }
    let content_type = check_content(up.content_type, &up.bytes, &ctx.cfg.allowed_upload_types)?;
    let (quota, is_client) = storage_limit(ctx.p, up.tenant_id).await?;
    let id = crate::platform::ids::new_id("fil")?;
    let key = ObjectKey::new(up.tenant_id, up.area, &id).ok_or(ApiError::NotFound)?;
    let sha = crate::platform::ids::hex(&Sha256::digest(&up.bytes));
    let name = clean_name(up.name);
    let now = ctx.p.now_ms();
    let inserted = ctx
        .p
        .execute(
            INSERT_PENDING,
            &[
                id.as_str().into(),
                up.tenant_id.into(),
                up.area.as_str().into(),
                key.as_str().into(),
                name.as_str().into(),
                content_type.as_str().into(),
                Param::Int(size as i64),
                sha.as_str().into(),
                who.user_id.as_str().into(),
                Param::Int(now),
                Param::Int(quota),
                crate::platform::ids::new_token("")?.into(),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(plans::exceeded(Metric::StorageBytes, quota));
    }
    let meta = match ctx.p.put(key.as_str(), up.bytes, &content_type).await {
        Ok(m) => m,
        Err(e) => {
            undo_row(ctx, up.tenant_id, &id).await;
            return Err(ApiError::Internal(format!("R2 put failed: {e}")));
        }
    };
    let audit = audit::entry_if_changed(
        ctx,
        req,
        who,
        Event {
            tenant_id: up.tenant_id,
            action: "file.uploaded",
            target_type: "file",
            target_id: Some(&id),
            metadata: json!({"area": up.area.as_str(), "size": size, "content_type": content_type, "sha256": sha}),
        },
    )?;
    let ready = Stmt::new(MARK_READY, vec![up.tenant_id.into(), id.as_str().into(), meta.etag.as_str().into()]);
    let mut stmts = vec![ready, audit];
    // A client's uploads are its files; logos and favicons are branding, not documents.
    if up.area == Area::Uploads {
        let data = json!({"file": {"id": id, "name": name, "content_type": content_type, "size": size, "sha256": sha}});
        stmts.push(events::record_if_changed(ctx, up.tenant_id, Kind::FileUploaded, data)?);
    }
    // A crossing of the storage limit is recorded with the file it counts, once it is stored: an
    // upload that fails after its pending row leaves no event behind.
    if is_client {
        let actor = audit::actor(req, Some(who));
        stmts.extend(plans::crossing(&actor, up.tenant_id, Metric::StorageBytes, quota, &id, size as i64, now)?);
    }
    if let Err(e) = ctx.p.batch(&stmts).await {
        if ctx.p.delete(key.as_str()).await.is_ok() {
            undo_row(ctx, up.tenant_id, &id).await;
        }
        return Err(ApiError::Internal(format!("D1 write failed after R2 put: {e}")));
    }
    let row = ctx.p.query(SELECT_READY, &[up.tenant_id.into(), id.as_str().into()]).await?.into_iter().next();
    Ok(decode(row.ok_or(ApiError::NotFound)?)?)
}

/// Best effort: a row we could not remove stays `pending` and the reconciler removes it.
async fn undo_row<P: Platform>(ctx: &Ctx<'_, P>, tenant_id: &str, id: &str) {
    if let Err(e) = ctx.p.execute(DELETE_ROW, &[tenant_id.into(), id.into()]).await {
        ctx.p.log("error", &format!("file {id}: could not undo pending row: {e}"));
    }
}

pub async fn ready_file<P: Platform>(ctx: &Ctx<'_, P>, tenant_id: &str, id: &str) -> ApiResult<FileRow> {
    if !looks_like_id(id, "fil") {
        return Err(ApiError::NotFound);
    }
    let row = ctx.p.query(SELECT_READY, &[tenant_id.into(), id.into()]).await?.into_iter().next();
    Ok(decode(row.ok_or(ApiError::NotFound)?)?)
}

/// Deletes a file the caller has loaded with `ready_file`: the row turns `deleting`
/// (invisible), the object goes, then the row with its audit entry. If R2 refuses, the row
/// returns to `ready`, so both still exist.
pub async fn remove<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, f: &FileRow) -> ApiResult<()> {
    let (tenant_id, id) = (f.tenant_id.as_str(), f.id.as_str());
    let marked = ctx.p.execute(MARK_DELETING, &[tenant_id.into(), id.into()]).await?;
    if marked == 0 {
        return Err(ApiError::NotFound);
    }
    if let Err(e) = ctx.p.delete(&f.object_key).await {
        ctx.p.execute(UNMARK_DELETING, &[tenant_id.into(), id.into()]).await?;
        return Err(ApiError::Internal(format!("R2 delete failed: {e}")));
    }
    let audit = audit::entry_if_changed(
        ctx,
        req,
        who,
        Event {
            tenant_id,
            action: "file.deleted",
            target_type: "file",
            target_id: Some(id),
            metadata: json!({"size": f.size}),
        },
    )?;
    // If this fails the row stays `deleting` with no object; the reconciler removes it.
    ctx.p.batch(&[Stmt::new(DELETE_ROW, vec![tenant_id.into(), id.into()]), audit]).await?;
    Ok(())
}

/// Finishes what a crash interrupted: stale `pending` and `deleting` rows lose their object
/// (if any) and then the row.
pub async fn reconcile<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Value> {
    let stale: Vec<FileRow> =
        ctx.p.query_as(STALE, &[Param::Int(ctx.p.now_ms() - STALE_AFTER_MS), Param::Int(100)]).await?;
    let mut cleaned = 0;
    for f in &stale {
        if ctx.p.delete(&f.object_key).await.is_ok() {
            ctx.p.execute(DELETE_ROW, &[f.tenant_id.as_str().into(), f.id.as_str().into()]).await?;
            cleaned += 1;
        }
    }
    Ok(json!({"stale": stale.len(), "cleaned": cleaned}))
}

/// A Range header that cannot be served: answered 416.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Parses a single `bytes=` range against a known size. Ok(None): serve the whole file.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, Unsatisfiable> {
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: the whole file is a valid answer
    }
    let (a, b) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", "") => return Err(Unsatisfiable),
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| Unsatisfiable)?;
            if n == 0 {
                return Err(Unsatisfiable);
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (s, "") => (s.parse().map_err(|_| Unsatisfiable)?, size.saturating_sub(1)),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().map_err(|_| Unsatisfiable)?, e.parse().map_err(|_| Unsatisfiable)?);
            if e < s {
                return Err(Unsatisfiable);
            }
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if size == 0 || start >= size {
        return Err(Unsatisfiable);
    }
    Ok(Some(ByteRange { offset: start, length: end - start + 1 }))
}

/// Streams a ready file back with its type, length, ETag and Range support.
pub fn download(req: &Request, f: &FileRow, disposition: &str) -> ApiResult<Response> {
    let size = f.size.max(0) as u64;
    let etag = f.etag.clone().unwrap_or_else(|| format!("\"{}\"", f.sha256));
    // Weak comparison (RFC 9110 §13.1.2): `W/"x"` matches `"x"`, and `*` matches any file.
    let matches = |t: &str| {
        let t = t.trim();
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag.strip_prefix("W/").unwrap_or(&etag)
    };
    if req.header("if-none-match").is_some_and(|v| v.split(',').any(matches)) {
        return Ok(Response::new(304).with_header("etag", etag));
    }
    let range = match parse_range(req.header("range"), size) {
        Ok(r) => r,
        Err(Unsatisfiable) => {
            return Ok(ApiError::Invalid("range_not_satisfiable", "the requested range is not satisfiable".into())
                .into_response()
                .with_header("content-range", format!("bytes */{size}"))
                .with_status(416));
        }
    };
    let encoded: String =
        url::form_urlencoded::byte_serialize(f.name.as_bytes()).collect::<String>().replace('+', "%20");
    let length = range.map_or(size, |r| r.length);
    let mut resp = Response::new(if range.is_some() { 206 } else { 200 })
        .with_header("content-type", f.content_type.as_str())
        .with_header("content-length", length.to_string())
        .with_header("etag", etag)
        .with_header("accept-ranges", "bytes")
        .with_header("content-disposition", format!("{disposition}; filename*=UTF-8''{encoded}"))
        .with_header("content-security-policy", "default-src 'none'; sandbox")
        .with_header("cache-control", "private, max-age=0, must-revalidate");
    // Streamed from R2 by the platform: an export archive may be far larger than a Worker's memory.
    resp.object = Some(StoredBody { key: f.object_key.clone(), range });
    if let Some(r) = range {
        resp.set_header("content-range", format!("bytes {}-{}/{size}", r.offset, r.offset + r.length - 1));
    }
    Ok(resp)
}

type HmacSha256 = Hmac<Sha256>;

/// The MAC of one link: the file, its tenant, the expiry and the file's current link nonce.
fn link_mac(secret: &[u8], file_id: &str, tenant_id: &str, expires: i64, nonce: &str) -> ApiResult<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|e| ApiError::Internal(e.to_string()))?;
    mac.update(format!("gatehouse-file-v2\n{file_id}\n{tenant_id}\n{expires}\n{nonce}").as_bytes());
    Ok(mac)
}

/// A download URL that works without a token until `expires` (unix seconds), or until the
/// file's links are revoked.
pub fn signed_path(secret: &[u8], f: &FileRow, expires: i64) -> ApiResult<String> {
    Ok(format!("/api/files/signed/{}{}", f.id, signed_query(secret, f, expires)?))
}

/// A signed link's query: `?t={tenant}&e={expires}&s={mac}`.
fn signed_query(secret: &[u8], f: &FileRow, expires: i64) -> ApiResult<String> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let mac = link_mac(secret, &f.id, &f.tenant_id, expires, &f.link_nonce)?;
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("?t={}&e={expires}&s={sig}", f.tenant_id))
}

/// Checks a signed URL against the file it names, in constant time. Tampered, malformed,
/// expired or revoked: 403.
pub fn verify_signed(secret: &[u8], f: &FileRow, expires: &str, sig: &str, now: i64) -> ApiResult<()> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let expires: i64 = expires.parse().map_err(|_| link_denied())?;
    let given = URL_SAFE_NO_PAD.decode(sig).map_err(|_| link_denied())?;
    link_mac(secret, &f.id, &f.tenant_id, expires, &f.link_nonce)?.verify_slice(&given).map_err(|_| link_denied())?;
    if now >= expires {
        return Err(link_denied());
    }
    Ok(())
}

fn link_denied() -> ApiError {
    ApiError::Forbidden("invalid_signature", "this download link is invalid, expired or revoked".into())
}

crate::platform::body::body! {
    #[derive(Default)]
    struct SignBody {
        expires_in: Option<i64>,
    }
}

/// The client, for a caller who could act on a file of some area: 404 for a foreign client, then
/// 403, before any lookup, for a caller who could act on no file at all. Permissions then
/// follow the file's area: a branding asset is branding's to change, not any file writer's.
async fn client_files<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    writes: bool,
) -> ApiResult<ClientScope> {
    let (client, _) = access::reach_client(ctx, req, who, client_id).await?;
    let any_area = [Area::Uploads, Area::Branding];
    let needed: Vec<Permission> =
        any_area.iter().map(|a| if writes { a.write_permission() } else { a.read_permission() }).collect();
    if !needed.iter().any(|p| who.can(*p)) {
        return Err(ApiError::forbidden(format!("requires the {} permission", needed[0].as_str())));
    }
    Ok(client)
}

/// One ready file of the client, if the caller holds its area's permission.
async fn client_file<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    file_id: &str,
    writes: bool,
) -> ApiResult<(ClientScope, FileRow)> {
    let client = client_files(ctx, req, who, client_id, writes).await?;
    let f = ready_file(ctx, client.id(), file_id).await?;
    let area = f.area();
    require_permission(who, if writes { area.write_permission() } else { area.read_permission() })?;
    Ok((client, f))
}

/// `GET /api/clients/{id}/files?area=`.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let client = client_files(ctx, req, who, client_id, false).await?;
    let (cursor, limit) = page_params(req)?;
    let area = req
        .query_param("area")
        .map(|a| Area::parse(&a).ok_or_else(|| ApiError::bad_request("invalid_area", "area is uploads or branding")))
        .transpose()?
        .unwrap_or(Area::Uploads);
    require_permission(who, area.read_permission())?;
    let rows: Vec<FileRow> = decode_all(
        ctx.p.query(LIST_READY, &[client.id().into(), area.as_str().into(), cursor.into(), Param::Int(limit)]).await?,
    )?;
    let items: Vec<Value> = rows.iter().map(FileRow::to_json).collect();
    Ok(page_response(&items, limit, |v| v["id"].as_str().map(String::from)))
}

/// `POST /api/clients/{id}/files`: the body is the file.
pub async fn upload<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let client = client_files(ctx, req, who, client_id, true).await?;
    require_permission(who, Area::Uploads.write_permission())?;
    let name = req.query_param("name").or_else(|| req.header("x-file-name").map(String::from)).unwrap_or_default();
    let up = Upload {
        tenant_id: client.id(),
        area: Area::Uploads,
        name: &name,
        content_type: req.header("content-type").unwrap_or(""),
        bytes: req.body.clone(),
    };
    let f = store(ctx, req, who, up).await?;
    Ok(Response::json(201, &f.to_json()))
}

/// `GET|HEAD /api/clients/{id}/files/{file_id}`.
pub async fn get<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    file_id: &str,
) -> ApiResult<Response> {
    let (_, f) = client_file(ctx, req, who, client_id, file_id, false).await?;
    download(req, &f, "attachment")
}

/// `DELETE /api/clients/{id}/files/{file_id}`.
pub async fn delete<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    file_id: &str,
) -> ApiResult<Response> {
    let (_, f) = client_file(ctx, req, who, client_id, file_id, true).await?;
    remove(ctx, req, who, &f).await?;
    Ok(Response::new(204))
}

/// `POST /api/clients/{id}/files/{file_id}/sign {expires_in?}`: a download link that needs no token.
pub async fn sign<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    file_id: &str,
) -> ApiResult<Response> {
    let (_, f) = client_file(ctx, req, who, client_id, file_id, false).await?;
    let expires = link_expiry(ctx, req)?;
    let path = signed_path(&ctx.cfg.file_signing_secret, &f, expires)?;
    Ok(Response::json(200, &json!({"url": path, "expires_at": expires})))
}

/// When a link asked for with `{expires_in?}` (seconds, up to the configured maximum) expires.
fn link_expiry<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> ApiResult<i64> {
    let body: SignBody = if req.body.is_empty() { SignBody::default() } else { json_body(req, &[])? };
    let max = ctx.cfg.max_signed_url_ttl_secs;
    let ttl = body.expires_in.unwrap_or(max.min(3600));
    if !(1..=max).contains(&ttl) {
        return Err(ApiError::invalid("invalid_expiry", format!("expires_in must be 1-{max} seconds")));
    }
    Ok(ctx.p.now_secs() + ttl)
}

/// `POST /api/clients/{id}/files/{file_id}/revoke-links`: every link signed so far stops working.
pub async fn revoke_links<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    file_id: &str,
) -> ApiResult<Response> {
    let (client, f) = client_file(ctx, req, who, client_id, file_id, true).await?;
    let rotate = Stmt::new(
        ROTATE_NONCE,
        vec![client.id().into(), f.id.as_str().into(), crate::platform::ids::new_token("")?.into()],
    );
    let audit = audit::entry_if_changed(
        ctx,
        req,
        who,
        Event {
            tenant_id: client.id(),
            action: "file.links_revoked",
            target_type: "file",
            target_id: Some(&f.id),
            metadata: json!({}),
        },
    )?;
    if !ctx.p.batch_changed(&[rotate, audit]).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Response::new(204))
}

/// `GET /api/files/signed/{file_id}?t=&e=&s=`: no token, the signature is the authority. An
/// unknown file answers like a bad signature, so links reveal nothing about what exists.
pub async fn signed_download<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, file_id: &str) -> ApiResult<Response> {
    let (t, e, s) = (
        req.query_param("t").unwrap_or_default(),
        req.query_param("e").unwrap_or_default(),
        req.query_param("s").unwrap_or_default(),
    );
    let tenant_ok = looks_like_id(&t, "cli") || looks_like_id(&t, "agy");
    if !tenant_ok || !looks_like_id(file_id, "fil") {
        return Err(link_denied());
    }
    let f = match ready_file(ctx, &t, file_id).await {
        Ok(f) => f,
        Err(ApiError::NotFound) => return Err(link_denied()),
        Err(other) => return Err(other),
    };
    verify_signed(&ctx.cfg.file_signing_secret, &f, &e, &s, ctx.p.now_secs())?;
    download(req, &f, "attachment")
}

/// `GET /assets/{file_id}`: public branding assets (logos, favicons), inline.
pub async fn public_asset<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, file_id: &str) -> ApiResult<Response> {
    if !looks_like_id(file_id, "fil") {
        return Err(ApiError::NotFound);
    }
    let row =
        ctx.p.query(SELECT_PUBLIC_ASSET, &[file_id.into()]).await?.into_iter().next().ok_or(ApiError::NotFound)?;
    let f: FileRow = decode(row)?;
    let mut resp = download(req, &f, "inline")?;
    resp.set_header("cache-control", "public, max-age=3600");
    resp.set_header("access-control-allow-origin", "*");
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_built_only_from_ids_under_the_tenant_prefix() {
        let t = "cli_000000000000000000000001";
        let f = "fil_000000000000000000000001";
        let k = ObjectKey::new(t, Area::Uploads, f).unwrap();
        assert_eq!(k.as_str(), "tenants/cli_000000000000000000000001/uploads/fil_000000000000000000000001");
        assert!(k.as_str().starts_with(&prefix(t, Area::Uploads)));
        assert!(prefix(t, Area::Branding).ends_with('/'));
        for bad_tenant in ["../cli_x", "cli_00000000000000000000001/", "", "tenants"] {
            assert!(ObjectKey::new(bad_tenant, Area::Uploads, f).is_none(), "{bad_tenant}");
        }
        for bad_file in ["../../etc/passwd", "fil_..%2f", "a.png", "fil_000000000000000000000001/x"] {
            assert!(ObjectKey::new(t, Area::Uploads, bad_file).is_none(), "{bad_file}");
        }
    }

    #[test]
    fn sniffing_refuses_a_disguised_executable() {
        let allowed = vec!["image/png".to_string(), "text/plain".to_string()];
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(check_content("image/png", png, &allowed).unwrap(), "image/png");
        assert!(check_content("image/png", b"MZ\x90\0\x03\0\0\0", &allowed).is_err());
        assert!(check_content("text/plain", b"MZ\x90\0", &allowed).is_err());
        assert!(check_content("text/plain", b"hello\0world", &allowed).is_err());
        assert!(check_content("text/html", b"<script>", &allowed).is_err());
        assert!(check_content("IMAGE/PNG; charset=x", png, &allowed).is_ok());
    }

    #[test]
    fn filenames_are_cleaned_metadata() {
        assert_eq!(clean_name("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(clean_name("a\\b\0c\r\n.txt"), "a_bc.txt");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name(&"é".repeat(400)).chars().count(), MAX_NAME_CHARS);
        assert_eq!(clean_name("résumé 📄.pdf"), "résumé 📄.pdf");
    }

    #[test]
    fn ranges_parse_or_are_unsatisfiable() {
        let r = |h: &str| parse_range(Some(h), 100);
        assert_eq!(r("bytes=0-9"), Ok(Some(ByteRange { offset: 0, length: 10 })));
        assert_eq!(r("bytes=90-"), Ok(Some(ByteRange { offset: 90, length: 10 })));
        assert_eq!(r("bytes=-5"), Ok(Some(ByteRange { offset: 95, length: 5 })));
        assert_eq!(r("bytes=50-1000"), Ok(Some(ByteRange { offset: 50, length: 50 })));
        assert_eq!(r("bytes=0-1,5-6"), Ok(None));
        assert_eq!(r("items=0-1"), Ok(None));
        for bad in ["bytes=100-", "bytes=9-1", "bytes=-0", "bytes=a-b", "bytes=-"] {
            assert_eq!(r(bad), Err(Unsatisfiable), "{bad}");
        }
    }

    fn file(id: &str, tenant: &str, nonce: &str) -> FileRow {
        FileRow {
            id: id.into(),
            tenant_id: tenant.into(),
            area: "uploads".into(),
            object_key: String::new(),
            name: "a.txt".into(),
            content_type: "text/plain".into(),
            size: 1,
            sha256: String::new(),
            etag: None,
            status: "ready".into(),
            uploaded_by: None,
            created_at: 0,
            link_nonce: nonce.into(),
        }
    }

    #[test]
    fn signed_urls_verify_and_refuse_tampering_expiry_and_revocation() {
        let s = b"signing-secret-signing-secret-0123456789";
        let f = file("fil_a", "cli_a", "n1");
        let path = signed_path(s, &f, 2000).unwrap();
        let q: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(path.split_once('?').unwrap().1.as_bytes()).into_owned().collect();
        assert_eq!((q["t"].as_str(), q["e"].as_str()), ("cli_a", "2000"));
        assert!(verify_signed(s, &f, "2000", &q["s"], 1000).is_ok());
        assert!(verify_signed(s, &f, "2000", &q["s"], 1999).is_ok());
        assert!(verify_signed(s, &f, "2000", &q["s"], 2000).is_err(), "expired at e");
        assert!(verify_signed(s, &file("fil_b", "cli_a", "n1"), "2000", &q["s"], 1000).is_err(), "other file");
        assert!(verify_signed(s, &file("fil_a", "cli_b", "n1"), "2000", &q["s"], 1000).is_err(), "other tenant");
        assert!(verify_signed(s, &file("fil_a", "cli_a", "n2"), "2000", &q["s"], 1000).is_err(), "revoked");
        assert!(verify_signed(s, &f, "9999", &q["s"], 1000).is_err(), "extended expiry");
        assert!(verify_signed(s, &f, "2000", "AAAA", 1000).is_err());
        assert!(verify_signed(s, &f, "x", &q["s"], 1000).is_err());
        assert!(verify_signed(b"other-secret-other-secret-0123456789", &f, "2000", &q["s"], 1000).is_err());
    }

    #[test]
    fn each_area_has_its_own_permissions() {
        assert_eq!(Area::Uploads.write_permission(), Permission::FilesWrite);
        assert_eq!(Area::Branding.write_permission(), Permission::BrandingWrite);
        assert_eq!(Area::Uploads.read_permission(), Permission::FilesRead);
        assert_eq!(Area::Branding.read_permission(), Permission::BrandingRead);
        assert_eq!(file("fil_a", "cli_a", "").area(), Area::Uploads);
    }
}
