//! The narrow interfaces through which the core reaches the outside world: SQL storage, object
//! storage, the clock, outbound HTTP and logging. The edge implements them over D1, R2 and
//! `fetch`; native tests implement them over SQLite and memory.

use crate::platform::error::StoreError;
pub use crate::platform::rows::FromRow;
use serde_json::{Map, Value};

/// A list of strings as one JSON array, the text `json_each(?)` reads (and a narrowing list is
/// stored as). Serialising strings cannot fail, so neither can this.
pub fn json_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    serde_json::Value::Array(items.into_iter().map(|s| serde_json::Value::from(s.as_ref())).collect()).to_string()
}

/// One SQL parameter. D1 and SQLite agree on these four.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Param::Text(s.to_string())
    }
}
impl From<String> for Param {
    fn from(s: String) -> Self {
        Param::Text(s)
    }
}
impl From<&String> for Param {
    fn from(s: &String) -> Self {
        Param::Text(s.clone())
    }
}
impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}
impl From<bool> for Param {
    fn from(v: bool) -> Self {
        Param::Int(v as i64)
    }
}
impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Param::Null)
    }
}

/// A row as a JSON object: column name to value. Integers are JSON integers.
pub type Row = Map<String, Value>;

/// A statement and its parameters, for batches.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub sql: &'static str,
    pub params: Vec<Param>,
}

impl Stmt {
    pub fn new(sql: &'static str, params: Vec<Param>) -> Self {
        Self { sql, params }
    }
}

#[allow(async_fn_in_trait)]
pub trait Database {
    async fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError>;
    /// Runs a write and returns the number of rows it changed.
    async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError>;
    /// Runs statements atomically: all apply or none do. Returns rows changed per statement.
    async fn batch(&self, stmts: &[Stmt]) -> Result<Vec<u64>, StoreError>;

    /// `query`, decoded into typed rows through `Row`. Every port uses this one body: the
    /// future that runs the statement is then one per port, not one per row type, and each row
    /// type adds only its `FromRow` to the Worker (parsing D1's JSON straight into each `T` with
    /// serde had cost about 300 KB of wasm, for no speed a pair could measure).
    async fn query_as<T: FromRow>(&self, sql: &str, params: &[Param]) -> Result<Vec<T>, StoreError> {
        decode_all(self.query(sql, params).await?)
    }

    /// The one column of a statement's first row, as text (`None`: no row, or NULL). For a
    /// statement that builds its answer as JSON in SQL: the edge hands that text over as D1 gave
    /// it, with no rows to decode and nothing to serialize again.
    async fn query_text(&self, sql: &str, params: &[Param]) -> Result<Option<String>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next().and_then(|row| match row.into_iter().next() {
            Some((_, Value::String(s))) => Some(s),
            Some((_, Value::Null)) | None => None,
            Some((_, other)) => Some(other.to_string()),
        }))
    }

    /// The first row of `query_as`, if any.
    async fn query_first<T: FromRow>(&self, sql: &str, params: &[Param]) -> Result<Option<T>, StoreError> {
        Ok(self.query_as(sql, params).await?.into_iter().next())
    }

    /// The number of data shards: 0 when one database holds both planes (`platform::router`).
    fn shard_count(&self) -> usize {
        0
    }

    /// Runs scans (data-shard statements that name no tenant) on shard `n`, until `None`.
    fn scan_on(&self, _n: Option<usize>) {}

    /// Tells the router a tenant's shard, read with the tenant's directory row: its statements
    /// then need no lookup of their own.
    fn learn_home(&self, _tenant: &str, _shard: i64) {}

    /// The data shards written so far through this handle (a request's), in order.
    fn shards_written(&self) -> Vec<usize> {
        Vec::new()
    }

    /// `batch`, answering whether its first statement changed a row: the usual shape of a guarded
    /// change followed by its audit row.
    async fn batch_changed(&self, stmts: &[Stmt]) -> Result<bool, StoreError> {
        Ok(self.batch(stmts).await?.first().copied().unwrap_or(0) > 0)
    }
}

/// Metadata kept beside an object in the bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectMeta {
    pub content_type: String,
    pub size: u64,
    pub etag: String,
}

#[derive(Debug, Clone)]
pub struct ObjectBody {
    pub meta: ObjectMeta,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

#[allow(async_fn_in_trait)]
pub trait Blobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<ObjectMeta, StoreError>;
    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Option<ObjectBody>, StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Keys under a prefix that ends in `/`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Starts a multipart upload (R2's rule: every part but the last has one size, at least
    /// 5 MiB); answers its upload id.
    async fn multipart_start(&self, key: &str, content_type: &str) -> Result<String, StoreError>;
    /// Uploads part `part` (from 1); answers its etag. Uploading a number again replaces it.
    async fn multipart_part(&self, key: &str, upload_id: &str, part: u16, bytes: Vec<u8>)
        -> Result<String, StoreError>;
    /// Joins the parts, in order, into the object.
    async fn multipart_finish(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u16, String)],
    ) -> Result<ObjectMeta, StoreError>;
    async fn multipart_abort(&self, key: &str, upload_id: &str) -> Result<(), StoreError>;
}

pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// A reply from an outbound GET.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub body: String,
}

/// An outbound JSON POST that must not hang or wander: a timeout, and redirects not followed.
#[derive(Debug, Clone)]
pub struct Post<'a> {
    pub url: &'a str,
    pub headers: &'a [(&'a str, String)],
    pub body: &'a str,
    pub timeout_ms: u32,
}

/// What became of a `Post`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    /// The receiver answered: its status, its `Retry-After` if any, and the first bytes of its body.
    Answered { status: u16, retry_after: Option<String>, head: String },
    /// No answer within the timeout.
    TimedOut,
    /// No answer at all: refused connection, TLS or DNS failure.
    Failed(String),
}

/// Bytes of a receiver's answer kept for the delivery log.
pub const RESPONSE_HEAD_BYTES: usize = 512;

#[allow(async_fn_in_trait)]
pub trait Outbound {
    async fn fetch_text(&self, url: &str, accept: &str) -> Result<HttpReply, StoreError>;
    /// POSTs an `application/x-www-form-urlencoded` body and returns the reply's text.
    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<HttpReply, StoreError>;
    /// POSTs JSON and reports the outcome with its latency in milliseconds. Never errors: every
    /// failure is an outcome.
    async fn post_json(&self, post: &Post<'_>) -> (PostOutcome, i64);
}

/// A message for the webhooks queue: a delivery id, and how long the queue should hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub body: String,
    pub delay_secs: u32,
}

/// The Cloudflare Queue that carries webhook deliveries from producer to consumer.
#[allow(async_fn_in_trait)]
pub trait Queue {
    async fn enqueue(&self, messages: &[QueueMessage]) -> Result<(), StoreError>;
}

/// The Cloudflare Rate Limiting bindings the core consults, each named for what it protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Widget writes per publishable key.
    WidgetKey,
    /// Widget writes per client IP.
    WidgetIp,
    /// Gate cache misses per client IP: an unknown key costs a D1 query, so floods of made-up
    /// keys are capped before they reach D1. The warm, allowed path never consults it.
    GateMiss,
    /// Requests that mail someone or spend a one-time token (password reset, signup and its
    /// verification, accepting an invitation) per client IP.
    AuthIp,
    /// API requests on one client per minute, at its plan's rate: one binding per rate in
    /// `API_RATES`.
    ApiPerMinute(u32),
}

/// The per-minute API rates there is a binding for (`API_RPM_{rate}_LIMITER`); the plans use
/// them, and a client's override must pick one.
pub const API_RATES: [u32; 4] = [600, 1200, 6000, 30000];

impl Limit {
    /// The `[[ratelimits]]` binding name in wrangler.toml.
    pub fn binding(self) -> &'static str {
        match self {
            Limit::WidgetKey => "WIDGET_KEY_LIMITER",
            Limit::WidgetIp => "WIDGET_IP_LIMITER",
            Limit::GateMiss => "GATE_MISS_LIMITER",
            Limit::AuthIp => "AUTH_IP_LIMITER",
            Limit::ApiPerMinute(600) => "API_RPM_600_LIMITER",
            Limit::ApiPerMinute(1200) => "API_RPM_1200_LIMITER",
            Limit::ApiPerMinute(6000) => "API_RPM_6000_LIMITER",
            Limit::ApiPerMinute(30000) => "API_RPM_30000_LIMITER",
            // `plans::api_request` asks only for the rates above.
            Limit::ApiPerMinute(_) => "API_RPM_30000_LIMITER",
        }
    }
}

#[allow(async_fn_in_trait)]
pub trait RateLimits {
    /// Counts one event under `key` and says whether it fits the limit's window.
    async fn allow(&self, limit: Limit, key: &str) -> Result<bool, StoreError>;
}

/// What the platform is told about how it is doing: log lines, the statements it ran, and one
/// metrics data point per request.
pub trait Log {
    /// Structured log line. Callers never pass secrets.
    fn log(&self, level: &str, message: &str);
    /// D1 statements run through this platform so far (a batch counts as one).
    fn query_count(&self) -> u32 {
        0
    }
    /// Writes one data point to the metrics dataset (Workers Analytics Engine at the edge).
    fn data_point(&self, _point: &DataPoint<'_>) {}
}

/// One Analytics Engine data point: an index (the tenant), four blobs and two doubles.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint<'a> {
    pub index: &'a str,
    pub blobs: [&'a str; 4],
    pub doubles: [f64; 2],
}

/// Everything a request handler may touch.
/// The IANA time zone database, as the platform has it (the Workers runtime's ICU at the edge).
pub trait Zones {
    /// The zone's canonical name, or None if there is no such zone.
    fn canonical_zone(&self, name: &str) -> Option<String>;
    /// Minutes east of UTC in zone `name` at the instant.
    fn utc_offset_min(&self, name: &str, utc_ms: i64) -> Option<i32>;
}

pub trait Platform: Database + Blobs + Clock + Outbound + Queue + RateLimits + Log + Zones {}
impl<T: Database + Blobs + Clock + Outbound + Queue + RateLimits + Log + Zones> Platform for T {}

/// Reads one column as a string.
pub fn col_str(row: &Row, name: &str) -> Option<String> {
    match row.get(name)? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

pub fn col_i64(row: &Row, name: &str) -> Option<i64> {
    match row.get(name)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

/// Decodes a row into a typed struct (`platform::rows`).
pub fn decode<T: FromRow>(row: Row) -> Result<T, StoreError> {
    T::from_row(row)
}

pub fn decode_all<T: FromRow>(rows: Vec<Row>) -> Result<Vec<T>, StoreError> {
    // A loop, not `map(decode).collect()`: the iterator adapters cost each row type about 1 KB
    // of wasm.
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(decode(row)?);
    }
    Ok(out)
}
