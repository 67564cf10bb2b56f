//! Native test harness: the real router over an in-memory SQLite with the real migrations, an
//! in-memory bucket, a settable clock and a fake DNS-over-HTTPS resolver. Each test gets a
//! fresh database. Faults can be injected to cover error paths.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};

use gatehouse::platform::error::StoreError;
use gatehouse::platform::http::{Method, Request, Response};
use gatehouse::platform::ports::{
    Blobs, ByteRange, Clock, Database, HttpReply, Limit, Log, ObjectBody, ObjectMeta, Outbound, Param, Post,
    PostOutcome, Queue, QueueMessage, RateLimits, Row, Stmt, Zones,
};
use gatehouse::{App, Config, State};
use rusqlite::types::ValueRef;
use serde_json::{json, Value};

/// One outbound form POST: the URL and its fields.
pub type FormPost = (String, Vec<(String, String)>);

/// One webhook POST as a receiver saw it.
#[derive(Debug, Clone)]
pub struct SentPost {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl SentPost {
    pub fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

/// A part's etag: its number and a digest of its bytes, so a replaced part has another.
fn part_etag(n: u16, bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    format!("part-{n}-{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3])
}

/// An open multipart upload: its key, content type and parts so far.
pub type Upload = (String, String, BTreeMap<u16, Vec<u8>>);

/// One in-memory SQLite database: the control plane's, or a data shard's.
pub struct Sqlite {
    pub conn: rusqlite::Connection,
}

pub struct TestPlatform {
    /// The control plane and, with `GATEHOUSE_TEST_SHARDS=<n>`, n data shards, each its own
    /// database, under the Worker's own router. Without it, one database holds both planes.
    pub db: gatehouse::platform::router::Router<Sqlite>,
    pub blobs: RefCell<BTreeMap<String, (Vec<u8>, String)>>,
    /// Open multipart uploads by id.
    pub uploads: RefCell<HashMap<String, Upload>>,
    pub now_ms: Cell<i64>,
    /// TXT records by name, as the fake resolver serves them.
    pub dns: RefCell<HashMap<String, Vec<String>>>,
    pub dns_down: Cell<bool>,
    pub fail_blob_put: Cell<bool>,
    pub fail_blob_delete: Cell<bool>,
    /// Fails any write whose SQL contains this text.
    pub fail_sql_containing: RefCell<Option<String>>,
    pub queries: Cell<u32>,
    pub logs: RefCell<Vec<String>>,
    /// Form POSTs sent out (Turnstile verifications): URL and fields.
    pub posts: RefCell<Vec<FormPost>>,
    pub limits: RefCell<HashMap<Limit, u32>>,
    pub limit_counts: RefCell<HashMap<(Limit, String), u32>>,
    /// A and AAAA records by name, as the fake resolver serves them.
    pub addrs: RefCell<HashMap<String, Vec<String>>>,
    /// Webhook POSTs sent, and the answers the fake receiver gives, in order (then 200).
    pub webhook_posts: RefCell<Vec<SentPost>>,
    pub receiver_script: RefCell<VecDeque<PostOutcome>>,
    /// Messages sent to the webhooks queue.
    pub queued: RefCell<Vec<QueueMessage>>,
    /// Analytics Engine data points written, as `index|blob|blob|blob|blob|status`.
    pub points: RefCell<Vec<String>>,
}

fn store_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, msg) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            let m = msg.clone().unwrap_or_default();
            if m.contains("UNIQUE") || m.contains("PRIMARY") {
                StoreError::Conflict(m.rsplit(':').next().unwrap_or("").trim().to_string())
            } else {
                StoreError::Unavailable(m)
            }
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

fn bind(params: &[Param]) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|p| match p {
            Param::Null => rusqlite::types::Value::Null,
            Param::Int(i) => rusqlite::types::Value::Integer(*i),
            Param::Real(f) => rusqlite::types::Value::Real(*f),
            Param::Text(s) => rusqlite::types::Value::Text(s.clone()),
        })
        .collect()
}

impl Sqlite {
    fn open(migrations: &[String]) -> Self {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
        for sql in migrations {
            conn.execute_batch(sql).unwrap();
        }
        Self { conn }
    }

    /// A test's own `SELECT count(*) AS n …` on this database.
    pub fn run_count(&self, sql: &str) -> i64 {
        self.run_query(sql, &[]).unwrap()[0]["n"].as_i64().unwrap()
    }

    pub fn run_query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(store_err)?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(bind(params))).map_err(store_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(store_err)? {
            let mut map = Row::new();
            for (i, n) in names.iter().enumerate() {
                let v = match r.get_ref(i).map_err(store_err)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => json!(i),
                    ValueRef::Real(f) => json!(f),
                    ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                    ValueRef::Blob(b) => json!(b),
                };
                map.insert(n.clone(), v);
            }
            out.push(map);
        }
        Ok(out)
    }
}

impl Database for Sqlite {
    async fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        self.run_query(sql, params)
    }

    async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        Ok(self.conn.execute(sql, rusqlite::params_from_iter(bind(params))).map_err(store_err)? as u64)
    }

    async fn batch(&self, stmts: &[Stmt]) -> Result<Vec<u64>, StoreError> {
        self.conn.execute_batch("BEGIN").map_err(store_err)?;
        let mut out = Vec::new();
        for s in stmts {
            match self.conn.execute(s.sql, rusqlite::params_from_iter(bind(&s.params))).map_err(store_err) {
                Ok(n) => out.push(n as u64),
                Err(e) => {
                    self.conn.execute_batch("ROLLBACK").map_err(store_err)?;
                    return Err(e);
                }
            }
        }
        self.conn.execute_batch("COMMIT").map_err(store_err)?;
        Ok(out)
    }
}

/// How many data shards the native suite runs with (`GATEHOUSE_TEST_SHARDS`; 0: one database).
pub fn test_shards() -> usize {
    std::env::var("GATEHOUSE_TEST_SHARDS").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl TestPlatform {
    pub fn new() -> Self {
        let shards = test_shards();
        let control = Sqlite::open(&migrations());
        let shard_schema = shard_migrations();
        let db = gatehouse::platform::router::Router::new(
            control,
            (0..shards).map(|_| Sqlite::open(&shard_schema)).collect(),
        )
        .with_relay(&gatehouse::access::relay::RELAY);
        Self {
            db,
            blobs: RefCell::default(),
            uploads: RefCell::default(),
            now_ms: Cell::new(1_800_000_000_000),
            dns: RefCell::default(),
            dns_down: Cell::new(false),
            fail_blob_put: Cell::new(false),
            fail_blob_delete: Cell::new(false),
            fail_sql_containing: RefCell::new(None),
            queries: Cell::new(0),
            logs: RefCell::default(),
            posts: RefCell::default(),
            limits: RefCell::default(),
            limit_counts: RefCell::default(),
            addrs: RefCell::default(),
            webhook_posts: RefCell::default(),
            receiver_script: RefCell::default(),
            queued: RefCell::default(),
            points: RefCell::default(),
        }
    }

    fn check_fault(&self, sql: &str) -> Result<(), StoreError> {
        if let Some(f) = self.fail_sql_containing.borrow().as_deref() {
            if sql.contains(f) {
                return Err(StoreError::Unavailable("injected D1 failure".into()));
            }
        }
        Ok(())
    }

    /// The database a test's own SQL (literal values, no parameters) runs on: the control plane's
    /// for its tables, else the first shard's.
    pub fn conn_for(&self, sql: &str) -> &rusqlite::Connection {
        use gatehouse::platform::planes::{plane, Plane};
        match self.db.shard(0) {
            Some(s) if plane(sql) != Plane::Control => &s.conn,
            _ => &self.db.control().conn,
        }
    }

    /// Runs a test's own query: on the control plane's database for its tables, else on every
    /// shard (and for tables kept in both planes, the control plane's too, last). With several
    /// shards, their rows are joined, and single-row counts and sums are added up.
    pub fn sql(&self, sql: &str) -> Vec<Row> {
        use gatehouse::platform::planes::{plane, Plane};
        let shards: Vec<&Sqlite> = (0..Database::shard_count(&self.db)).filter_map(|n| self.db.shard(n)).collect();
        let p = plane(sql);
        if shards.is_empty() || p == Plane::Control {
            return self.db.control().run_query(sql, &[]).unwrap();
        }
        let mut results: Vec<Vec<Row>> = shards.iter().map(|s| s.run_query(sql, &[]).unwrap()).collect();
        if p == Plane::Either {
            results.push(self.db.control().run_query(sql, &[]).unwrap());
        }
        let lower = sql.to_ascii_lowercase();
        let aggregate = (lower.contains("count(") || lower.contains("sum(")) && !lower.contains("group by");
        if aggregate && results.iter().all(|r| r.len() == 1) {
            let mut total = results[0][0].clone();
            for r in &results[1..] {
                for (k, v) in &r[0] {
                    if let (Some(a), Some(b)) = (total.get(k).and_then(Value::as_i64), v.as_i64()) {
                        total.insert(k.clone(), json!(a + b));
                    }
                }
            }
            return vec![total];
        }
        results.into_iter().flatten().collect()
    }

    /// The shard a test's own statement goes to: its tenant's, by the literal it names.
    fn shard_of(&self, sql: &str) -> Option<usize> {
        let tenant = gatehouse::platform::planes::tenant_literal(sql)?;
        let home = self.db.control().run_query(gatehouse::platform::router::HOME, &[tenant.into()]);
        home.ok()?.first().and_then(|r| r.get("shard")).and_then(Value::as_u64).map(|n| n as usize)
    }

    /// Runs a test's own statements: control-plane ones there, the others on their tenant's
    /// shard, or on every shard when they name no tenant.
    pub fn exec(&self, sql: &str) {
        use gatehouse::platform::planes::{plane, Plane};
        let shards = Database::shard_count(&self.db);
        if shards == 0 {
            return self.db.control().conn.execute_batch(sql).unwrap();
        }
        for stmt in sql.split(";\n").filter(|s| !s.trim().is_empty()) {
            if plane(stmt) == Plane::Control {
                self.db.control().conn.execute_batch(stmt).unwrap();
                continue;
            }
            match self.shard_of(stmt) {
                Some(n) => self.db.shard(n).unwrap().conn.execute_batch(stmt).unwrap(),
                None => (0..shards).for_each(|n| self.db.shard(n).unwrap().conn.execute_batch(stmt).unwrap()),
            }
        }
    }
}

/// The data shards' migrations, in order.
pub fn shard_migrations() -> Vec<String> {
    sql_files(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations-shard"))
}

/// The project's migrations, in order.
pub fn migrations() -> Vec<String> {
    sql_files(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
}

fn sql_files(dir: &str) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

impl Database for TestPlatform {
    async fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        self.queries.set(self.queries.get() + 1);
        crate::planes::check(&[(sql, params)]);
        self.db.query(sql, params).await
    }

    async fn query_text(&self, sql: &str, params: &[Param]) -> Result<Option<String>, StoreError> {
        self.queries.set(self.queries.get() + 1);
        crate::planes::check(&[(sql, params)]);
        self.db.query_text(sql, params).await
    }

    async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        self.queries.set(self.queries.get() + 1);
        crate::planes::check(&[(sql, params)]);
        self.check_fault(sql)?;
        self.db.execute(sql, params).await
    }

    fn shard_count(&self) -> usize {
        self.db.shard_count()
    }

    fn scan_on(&self, n: Option<usize>) {
        self.db.scan_on(n)
    }

    fn learn_home(&self, tenant: &str, shard: i64) {
        self.db.learn_home(tenant, shard)
    }

    fn shards_written(&self) -> Vec<usize> {
        self.db.shards_written()
    }

    async fn batch(&self, stmts: &[Stmt]) -> Result<Vec<u64>, StoreError> {
        self.queries.set(self.queries.get() + 1);
        crate::planes::check(&stmts.iter().map(|s| (s.sql, s.params.as_slice())).collect::<Vec<_>>());
        // A batch is all or nothing: a fault in any statement applies none of them.
        for s in stmts {
            self.check_fault(s.sql)?;
        }
        self.db.batch(stmts).await
    }
}

impl Blobs for TestPlatform {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<ObjectMeta, StoreError> {
        if self.fail_blob_put.get() {
            return Err(StoreError::Unavailable("injected R2 put failure".into()));
        }
        let size = bytes.len() as u64;
        self.blobs.borrow_mut().insert(key.to_string(), (bytes, content_type.to_string()));
        Ok(ObjectMeta { content_type: content_type.into(), size, etag: format!("\"etag-{size}\"") })
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Option<ObjectBody>, StoreError> {
        let blobs = self.blobs.borrow();
        let Some((bytes, ct)) = blobs.get(key) else {
            return Ok(None);
        };
        let slice = match range {
            Some(r) => {
                let start = (r.offset as usize).min(bytes.len());
                let end = (start + r.length as usize).min(bytes.len());
                bytes[start..end].to_vec()
            }
            None => bytes.clone(),
        };
        Ok(Some(ObjectBody {
            meta: ObjectMeta {
                content_type: ct.clone(),
                size: bytes.len() as u64,
                etag: format!("\"etag-{}\"", bytes.len()),
            },
            bytes: slice,
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        if self.fail_blob_delete.get() {
            return Err(StoreError::Unavailable("injected R2 delete failure".into()));
        }
        self.blobs.borrow_mut().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.blobs.borrow().keys().filter(|k| k.starts_with(prefix)).cloned().collect())
    }

    async fn multipart_start(&self, key: &str, content_type: &str) -> Result<String, StoreError> {
        let id = format!("upload-{}", self.uploads.borrow().len() + 1);
        self.uploads.borrow_mut().insert(id.clone(), (key.into(), content_type.into(), BTreeMap::new()));
        Ok(id)
    }

    async fn multipart_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u16,
        bytes: Vec<u8>,
    ) -> Result<String, StoreError> {
        if self.fail_blob_put.get() {
            return Err(StoreError::Unavailable("injected R2 put failure".into()));
        }
        let mut uploads = self.uploads.borrow_mut();
        let up = uploads
            .get_mut(upload_id)
            .filter(|u| u.0 == key)
            .ok_or_else(|| StoreError::Unavailable("no such multipart upload".into()))?;
        assert!(part >= 1, "R2 numbers parts from 1");
        let etag = part_etag(part, &bytes);
        up.2.insert(part, bytes);
        Ok(etag)
    }

    /// Holds the parts to R2's rules: numbered 1..n without a gap, and every part but the last of
    /// one size of at least 5 MiB (breaking these is a bug here, so it panics); an etag that is
    /// not the stored part's (it was replaced since) fails the completion, as R2 does.
    async fn multipart_finish(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u16, String)],
    ) -> Result<ObjectMeta, StoreError> {
        let mut uploads = self.uploads.borrow_mut();
        let (k, ct, stored) = uploads
            .get(upload_id)
            .cloned()
            .ok_or_else(|| StoreError::Unavailable("no such multipart upload".into()))?;
        assert_eq!(k, key);
        let numbers: Vec<u16> = parts.iter().map(|p| p.0).collect();
        assert_eq!(numbers, (1..=parts.len() as u16).collect::<Vec<_>>(), "parts 1..n in order");
        if parts.iter().any(|(n, etag)| stored.get(n).is_none_or(|p| &part_etag(*n, p) != etag)) {
            return Err(StoreError::Unavailable("a part's etag does not match (InvalidPart)".into()));
        }
        uploads.remove(upload_id);
        let mut bytes = Vec::new();
        for (i, (n, _)) in parts.iter().enumerate() {
            let part = &stored[n];
            if i + 1 < parts.len() {
                assert!(part.len() >= 5 * 1024 * 1024, "a non-final part under 5 MiB");
                assert_eq!(part.len(), stored[&parts[0].0].len(), "non-final parts of one size");
            }
            bytes.extend_from_slice(part);
        }
        let size = bytes.len() as u64;
        self.blobs.borrow_mut().insert(key.to_string(), (bytes, ct.clone()));
        Ok(ObjectMeta { content_type: ct, size, etag: format!("\"mp-{size}\"") })
    }

    async fn multipart_abort(&self, _key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.uploads.borrow_mut().remove(upload_id);
        Ok(())
    }
}

impl Clock for TestPlatform {
    fn now_ms(&self) -> i64 {
        self.now_ms.get()
    }
}

/// The tz database natively: jiff's bundled copy (the Worker asks the runtime's ICU instead).
impl Zones for TestPlatform {
    fn canonical_zone(&self, name: &str) -> Option<String> {
        let tz = jiff::tz::TimeZone::get(name).ok()?;
        Some(tz.iana_name().unwrap_or(name).to_string())
    }

    fn utc_offset_min(&self, name: &str, utc_ms: i64) -> Option<i32> {
        let tz = jiff::tz::TimeZone::get(name).ok()?;
        let at = jiff::Timestamp::from_millisecond(utc_ms).ok()?;
        Some(tz.to_offset(at).seconds() / 60)
    }
}

impl Outbound for TestPlatform {
    async fn fetch_text(&self, url: &str, _accept: &str) -> Result<HttpReply, StoreError> {
        if self.dns_down.get() {
            return Err(StoreError::Unavailable("resolver down".into()));
        }
        let u = url::Url::parse(url).unwrap();
        let name = u.query_pairs().find(|(k, _)| k == "name").map(|(_, v)| v.into_owned()).unwrap_or_default();
        let rtype = u.query_pairs().find(|(k, _)| k == "type").map(|(_, v)| v.into_owned()).unwrap_or_default();
        if rtype == "A" || rtype == "AAAA" {
            let Some(ips) = self.addrs.borrow().get(&name).cloned() else {
                return Ok(HttpReply { status: 200, body: json!({"Status": 3}).to_string() });
            };
            let (code, v6) = if rtype == "A" { (1, false) } else { (28, true) };
            let answers: Vec<Value> = ips
                .iter()
                .filter(|ip| ip.contains(':') == v6)
                .map(|ip| json!({"name": name, "type": code, "TTL": 60, "data": ip}))
                .collect();
            return Ok(HttpReply { status: 200, body: json!({"Status": 0, "Answer": answers}).to_string() });
        }
        let answers: Vec<Value> = self
            .dns
            .borrow()
            .get(&name)
            .map(|vals| {
                vals.iter().map(|v| json!({"name": name, "type": 16, "TTL": 60, "data": format!("\"{v}\"")})).collect()
            })
            .unwrap_or_default();
        let body = if answers.is_empty() { json!({"Status": 3}) } else { json!({"Status": 0, "Answer": answers}) };
        Ok(HttpReply { status: 200, body: body.to_string() })
    }

    /// A fake Turnstile siteverify: the token `pass` succeeds, anything else fails.
    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<HttpReply, StoreError> {
        self.posts
            .borrow_mut()
            .push((url.to_string(), form.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()));
        let token = form.iter().find(|(k, _)| *k == "response").map(|(_, v)| *v).unwrap_or("");
        Ok(HttpReply { status: 200, body: json!({"success": token == "pass"}).to_string() })
    }

    /// A fake receiver: records the POST and answers from `receiver_script`, then 200.
    async fn post_json(&self, post: &Post<'_>) -> (PostOutcome, i64) {
        self.webhook_posts.borrow_mut().push(SentPost {
            url: post.url.to_string(),
            headers: post.headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            body: post.body.to_string(),
        });
        let outcome = self.receiver_script.borrow_mut().pop_front().unwrap_or(PostOutcome::Answered {
            status: 200,
            retry_after: None,
            head: "ok".into(),
        });
        (outcome, 7)
    }
}

impl Queue for TestPlatform {
    async fn enqueue(&self, messages: &[QueueMessage]) -> Result<(), StoreError> {
        self.queued.borrow_mut().extend_from_slice(messages);
        Ok(())
    }
}

impl RateLimits for TestPlatform {
    /// A fixed-window double of the Rate Limiting binding: `limits` caps each (limit, key) pair;
    /// limits not set there never refuse.
    async fn allow(&self, limit: Limit, key: &str) -> Result<bool, StoreError> {
        let Some(cap) = self.limits.borrow().get(&limit).copied() else {
            return Ok(true);
        };
        let mut seen = self.limit_counts.borrow_mut();
        let n = seen.entry((limit, key.to_string())).or_insert(0);
        *n += 1;
        Ok(*n <= cap)
    }
}

impl Log for TestPlatform {
    fn log(&self, level: &str, message: &str) {
        self.logs.borrow_mut().push(format!("{level}: {message}"));
    }

    fn query_count(&self) -> u32 {
        self.queries.get()
    }

    fn data_point(&self, point: &gatehouse::platform::ports::DataPoint<'_>) {
        self.points.borrow_mut().push(format!("{}|{}|{}", point.index, point.blobs.join("|"), point.doubles[0]));
    }
}

pub fn test_config(extra: &[(&'static str, &str)]) -> Config {
    use base64::Engine;
    let mut vars = BTreeMap::from([
        ("JWT_SECRET", "native-test-jwt-secret-0123456789abcdef0123".to_string()),
        ("ENCRYPTION_KEY", base64::engine::general_purpose::STANDARD.encode((0u8..32).collect::<Vec<_>>())),
        ("FILE_SIGNING_SECRET", "native-test-file-signing-secret-0123456789".to_string()),
        ("API_HOSTS", "api.test,localhost".to_string()),
        ("PORTAL_BASE_DOMAIN", "portal.test".to_string()),
        ("DOH_RESOLVER_URL", "http://doh.test/dns-query".to_string()),
    ]);
    for (k, v) in extra {
        vars.insert(k, v.to_string());
    }
    Config::from_map(&vars).unwrap()
}

pub struct TestApp {
    pub p: TestPlatform,
    pub cfg: Config,
    pub state: State,
    pub demo: gatehouse::seed::Demo,
}

pub const API: &str = "api.test";

impl TestApp {
    /// A fresh database with the demo dataset.
    pub fn new() -> Self {
        Self::with_config(test_config(&[]))
    }

    pub fn with_config(cfg: Config) -> Self {
        let p = TestPlatform::new();
        let demo = demo();
        for (place, s) in demo.placed(test_shards()) {
            match place {
                gatehouse::seed::Place::Control => p.db.control().conn.execute_batch(&s).unwrap(),
                gatehouse::seed::Place::Shard(n) => p.db.shard(n).unwrap().conn.execute_batch(&s).unwrap(),
            }
        }
        Self { p, cfg, state: State::default(), demo }
    }

    pub fn call(&self, req: Request) -> Response {
        // Each request at the edge has a router of its own: what one learned of the directory
        // does not outlive it.
        self.p.db.forget();
        let app = App::new(&self.p, &self.cfg, &self.state);
        let head = req.method == Method::Head;
        let mut resp = pollster::block_on(app.handle(req));
        // The edge streams a stored object's body from the bucket; so does this double (a
        // missing object is a 404 there too).
        if let Some(obj) = resp.object.take().filter(|_| !head) {
            match pollster::block_on(self.p.get(&obj.key, obj.range)).unwrap() {
                Some(body) => resp.body = body.bytes,
                None => return gatehouse::platform::error::ApiError::NotFound.into_response(),
            }
        }
        resp
    }

    pub fn req(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        self.req_on(API, method, path, token, body)
    }

    /// `req` on another Host (a portal).
    pub fn req_on(&self, host: &str, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut r = Request::new(method, path).with_header("host", host);
        if let Some(t) = token {
            r = r.with_header("authorization", &format!("Bearer {t}"));
        }
        if let Some(b) = body {
            r = r.with_header("content-type", "application/json").with_body(b.to_string());
        }
        self.call(r)
    }

    pub fn login(&self, email: &str) -> String {
        let password = self.password(email);
        let r = self.req(Method::Post, "/api/auth/login", None, Some(json!({"email": email, "password": password})));
        assert_eq!(r.status, 200, "login {email}: {}", body_str(&r));
        json_of(&r)["access_token"].as_str().unwrap().to_string()
    }

    pub fn password(&self, email: &str) -> String {
        self.demo
            .users
            .iter()
            .find(|u| u.0 == email)
            .map(|u| u.1.clone())
            .unwrap_or_else(|| panic!("no demo user {email}"))
    }
}

/// Hashing eight argon2id passwords per test would dominate the suite; hash once per process.
fn demo() -> gatehouse::seed::Demo {
    use std::sync::OnceLock;
    static DEMO: OnceLock<gatehouse::seed::Demo> = OnceLock::new();
    DEMO.get_or_init(|| gatehouse::seed::demo().unwrap()).clone()
}

/// Registers a widget domain for a client as `token`.
pub fn register(t: &TestApp, token: &str, client: &str, domain: &str) -> Response {
    t.req(
        Method::Post,
        &format!("/api/clients/{client}/domains"),
        Some(token),
        Some(json!({"domain": domain, "purpose": "widget"})),
    )
}

/// Uploads a file to a client's uploads area as `token`.
pub fn upload(t: &TestApp, token: &str, client: &str, name: &str, ct: &str, bytes: &[u8]) -> Response {
    let path = format!(
        "/api/clients/{client}/files?name={}",
        url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
    );
    t.call(
        Request::new(Method::Post, &path)
            .with_header("host", API)
            .with_header("authorization", &format!("Bearer {token}"))
            .with_header("content-type", ct)
            .with_body(bytes.to_vec()),
    )
}

pub fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", body_str(r)))
}

pub fn body_str(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Asserts the JSON error shape and returns its code.
pub fn error_code(r: &Response) -> String {
    let v = json_of(r);
    let code = v["error"]["code"].as_str().unwrap_or_else(|| panic!("no error shape: {v}")).to_string();
    assert!(v["error"]["message"].is_string(), "error without message: {v}");
    code
}
