//! The edge: adapts workers-rs (D1, R2, fetch, Date, console) to the core's ports and hands
//! each event to the core. No tenant or domain decision is made here.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{
    console_error, event, web_sys, Context, Env, Fetch, Headers, HttpMetadata, MessageBatch, MessageExt, Range,
    RequestInit, ScheduleContext, ScheduledEvent,
};

use crate::api::{App, State};
use crate::platform::config::Config;
use crate::platform::error::StoreError;
use crate::platform::http::{Method, Request, Response};
use crate::platform::ports::{
    Blobs, ByteRange, Clock, Database, HttpReply, Limit, Log, ObjectBody, ObjectMeta, Outbound, Param, Post,
    PostOutcome, Queue, QueueMessage, RateLimits, Row, Stmt, Zones, RESPONSE_HEAD_BYTES,
};
use crate::platform::router::Router;

thread_local! {
    static STATE: &'static State = Box::leak(Box::default());
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

/// Bodies above this are refused before they are read. Uploads have their own, smaller limit.
const MAX_BODY_BYTES: u64 = 100 * 1024 * 1024;

// Each JS↔wasm crossing costs; these helpers make one crossing where workers-rs would make many:
// the request line and the headers the core reads come in as one string, a response goes out in
// one call, and D1 rows arrive as one JSON string that serde_json parses natively. Header values
// cannot hold a newline (the Fetch standard forbids it), so newline-separated text is unambiguous.
#[wasm_bindgen(inline_js = r#"
// Text bound for the wasm goes as UTF-8 bytes, encoded natively: a JS string handed to Rust is
// copied by wasm-bindgen's glue a character at a time in JS, which profiled at about 300 µs for a
// 14 KB page of contacts.
const UTF8 = new TextEncoder();
const NAMES = ["host", "origin", "authorization", "content-type", "content-length", "cf-connecting-ip",
  "user-agent", "if-none-match", "range", "idempotency-key", "x-file-name", "cf-ray"];
export function gh_request_head(req) {
  let out = req.method + "\n" + req.url;
  const h = req.headers;
  for (const n of NAMES) {
    const v = h.get(n);
    if (v !== null) out += "\n" + n + "\n" + v;
  }
  return UTF8.encode(out);
}
export async function gh_request_body(req) {
  return new Uint8Array(await req.arrayBuffer());
}
// Headers from `name\nvalue\n…` as the runtime's constructors take them. A plain object converts
// much faster than a list of pairs (workerd, profiled: the Response constructor's share of a gate
// request fell from about 500 to 200 µs); a name given twice (two cookies) needs the list.
function headerInit(text) {
  if (!text.length) return {};
  const parts = text.split("\n");
  const init = {};
  for (let i = 0; i + 1 < parts.length; i += 2) {
    if (Object.hasOwn(init, parts[i])) {
      const list = [];
      for (let j = 0; j + 1 < parts.length; j += 2) list.push([parts[j], parts[j + 1]]);
      return list;
    }
    init[parts[i]] = parts[i + 1];
  }
  return init;
}
export function gh_response(status, body, headers) {
  return new Response(body.length ? body : null, { status, headers: headerInit(headers) });
}
// A stored object as the response body, streamed from R2 (null when the object is gone).
export async function gh_object_response(bucket, key, offset, length, status, headers) {
  const obj = await bucket.get(key, length >= 0 ? { range: { offset, length } } : undefined);
  if (!obj) return null;
  return gh_response_stream(status, obj.body, headers);
}
function gh_response_stream(status, stream, headers) {
  return new Response(stream, { status, headers: headerInit(headers) });
}
// Time zones come from the runtime's ICU: a formatter per zone, kept for the isolate's life.
const ZONES = new Map();
function zoneFormat(zone) {
  let f = ZONES.get(zone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" });
    } catch {
      f = null;
    }
    if (ZONES.size < 1000) ZONES.set(zone, f);
  }
  return f;
}
export function gh_tz_canonical(zone) {
  const f = zoneFormat(zone);
  return f ? f.resolvedOptions().timeZone : "";
}
export function gh_tz_offset(zone, ms) {
  const f = zoneFormat(zone);
  if (!f) return NaN;
  const part = f.formatToParts(new Date(ms)).find((p) => p.type === "timeZoneName");
  const m = part && /^GMT(?:([+-])(\d{2}):(\d{2}))?$/.exec(part.value);
  if (!m) return NaN;
  return m[1] ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
}
// A webhook POST: a timeout, no redirects followed, and only the answer's first bytes read.
export async function gh_post(url, body, headers, timeoutMs, headBytes) {
  const started = Date.now();
  try {
    const r = await fetch(url, { method: "POST", body, headers: headerInit(headers), redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    let head = "";
    if (r.body) {
      const reader = r.body.getReader();
      const chunks = [];
      let size = 0;
      while (size < headBytes) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        size += value.length;
      }
      reader.cancel().catch(() => {});
      const all = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) { all.set(c, at); at += c.length; }
      head = new TextDecoder().decode(all.subarray(0, headBytes));
    }
    return JSON.stringify({ status: r.status, retry_after: r.headers.get("retry-after"), head, ms: Date.now() - started });
  } catch (e) {
    const timeout = e && (e.name === "TimeoutError" || e.name === "AbortError");
    return JSON.stringify({ timeout, error: String((e && e.message) || e), ms: Date.now() - started });
  }
}
// A log line, written from a microtask: there the call stack is one JS frame deep. Called from
// inside the wasm, console.log with the inspector attached (as under `wrangler dev`) captures a
// stack through every Rust frame, which profiled at about 1 ms a line.
export function gh_log(error, line) {
  queueMicrotask(error ? () => console.error(line) : () => console.log(line));
}
// One Analytics Engine data point, in one call with primitive arguments.
export function gh_point(ds, index, b0, b1, b2, b3, d0, d1) {
  ds.writeDataPoint({ indexes: [index], blobs: [b0, b1, b2, b3], doubles: [d0, d1] });
}
export async function gh_queue_send(queue, messages) {
  await queue.sendBatch(JSON.parse(messages).map(([body, delaySeconds]) => ({ body, delaySeconds })));
}
export async function gh_all(db, sql, params) {
  const r = await db.prepare(sql).bind(...JSON.parse(params)).all();
  return UTF8.encode(JSON.stringify(r.results || []));
}
// The one column of the first row, as text (null: no row, or NULL).
export async function gh_text(db, sql, params) {
  const rows = await db.prepare(sql).bind(...JSON.parse(params)).raw();
  const v = rows.length ? rows[0][0] : null;
  return v === null || v === undefined ? null : UTF8.encode(String(v));
}
export async function gh_run(db, sql, params) {
  const r = await db.prepare(sql).bind(...JSON.parse(params)).run();
  return (r.meta && r.meta.changes) || 0;
}
export async function gh_batch(db, stmts) {
  const rs = await db.batch(JSON.parse(stmts).map(([sql, params]) => db.prepare(sql).bind(...params)));
  return UTF8.encode(JSON.stringify(rs.map((r) => (r.meta && r.meta.changes) || 0)));
}
"#)]
extern "C" {
    fn gh_request_head(req: &web_sys::Request) -> js_sys::Uint8Array;
    #[wasm_bindgen(catch)]
    async fn gh_request_body(req: &web_sys::Request) -> Result<JsValue, JsValue>;
    fn gh_response(status: u16, body: Vec<u8>, headers: &str) -> web_sys::Response;
    #[wasm_bindgen(catch)]
    async fn gh_object_response(
        bucket: &JsValue,
        key: &str,
        offset: f64,
        length: f64,
        status: u16,
        headers: &str,
    ) -> Result<JsValue, JsValue>;
    fn gh_log(error: bool, line: &str);
    fn gh_tz_canonical(zone: &str) -> String;
    fn gh_tz_offset(zone: &str, ms: f64) -> f64;
    async fn gh_post(url: &str, body: &str, headers: &str, timeout_ms: u32, head_bytes: u32) -> JsValue;
    #[wasm_bindgen(catch)]
    fn gh_point(
        ds: &JsValue,
        index: &str,
        b0: &str,
        b1: &str,
        b2: &str,
        b3: &str,
        d0: f64,
        d1: f64,
    ) -> Result<(), JsValue>;
    #[wasm_bindgen(catch)]
    async fn gh_queue_send(queue: &JsValue, messages: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn gh_all(db: &JsValue, sql: &str, params: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn gh_text(db: &JsValue, sql: &str, params: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn gh_run(db: &JsValue, sql: &str, params: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn gh_batch(db: &JsValue, stmts: &str) -> Result<JsValue, JsValue>;
}

/// The bindings a request may touch, looked up only when first used.
struct Edge {
    env: Env,
    /// The control plane's D1 (`DB`) and the data shards' (`SHARD_0`, `SHARD_1`, …), under the
    /// router, made when a request first touches a database (a warm gate never does); with no
    /// shard bound, `DB` holds both planes.
    router: OnceCell<Router<D1>>,
    bucket: OnceCell<worker::Bucket>,
    /// The Analytics Engine dataset, if the deployment binds one.
    metrics: OnceCell<Option<JsValue>>,
    queries: Rc<Cell<u32>>,
}

/// One D1 binding, looked up when first used.
struct D1 {
    env: Env,
    name: String,
    handle: OnceCell<JsValue>,
    queries: Rc<Cell<u32>>,
}

thread_local! {
    /// How many `SHARD_n` bindings this isolate's environment has (bindings are fixed per deploy).
    static SHARDS: OnceCell<usize> = const { OnceCell::new() };
}

/// The data shards bound, counted once per isolate: `SHARD_0`, `SHARD_1`, … up to the first
/// missing one.
fn shards_bound(env: &Env) -> usize {
    SHARDS.with(|c| {
        *c.get_or_init(|| {
            (0..)
                .take_while(|i| {
                    js_sys::Reflect::get(env, &JsValue::from_str(&format!("SHARD_{i}")))
                        .is_ok_and(|v| !v.is_undefined())
                })
                .count()
        })
    })
}

/// A rejected JS promise's message.
fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).or_else(|| e.as_string()).unwrap_or_default()
}

fn store_err(e: worker::Error) -> StoreError {
    classify(e.to_string())
}

fn js_store_err(e: JsValue) -> StoreError {
    classify(js_message(&e))
}

/// Unique-constraint failures become conflicts; the rest are outages.
fn classify(msg: String) -> StoreError {
    if msg.contains("UNIQUE constraint failed") || msg.contains("PRIMARY KEY") && msg.contains("constraint") {
        // Keep only the constraint's column names, never a value.
        let detail = msg.split("UNIQUE constraint failed:").nth(1).unwrap_or("").trim().to_string();
        StoreError::Conflict(detail.split(':').next().unwrap_or("").trim().to_string())
    } else {
        StoreError::Unavailable(msg)
    }
}

/// Parameters as a JSON array for `bind(...)`. Integers stay integers: D1 binds whole JS numbers
/// as SQLite integers.
fn json_params(params: &[Param]) -> serde_json::Value {
    params
        .iter()
        .map(|p| match p {
            Param::Null => serde_json::Value::Null,
            Param::Int(i) => serde_json::Value::from(*i),
            Param::Real(f) => serde_json::Value::from(*f),
            Param::Text(s) => serde_json::Value::from(s.as_str()),
        })
        .collect()
}

impl Edge {
    fn new(env: &Env) -> Edge {
        Edge {
            env: env.clone(),
            router: OnceCell::new(),
            bucket: OnceCell::new(),
            metrics: OnceCell::new(),
            queries: Rc::new(Cell::new(0)),
        }
    }

    fn db(&self) -> &Router<D1> {
        self.router.get_or_init(|| {
            let d1 = |name: String| D1 {
                env: self.env.clone(),
                name,
                handle: OnceCell::new(),
                queries: self.queries.clone(),
            };
            let shards = (0..shards_bound(&self.env)).map(|i| d1(format!("SHARD_{i}"))).collect();
            Router::new(d1("DB".into()), shards).with_relay(&crate::access::relay::RELAY)
        })
    }

    fn bucket(&self) -> Result<&worker::Bucket, StoreError> {
        if let Some(b) = self.bucket.get() {
            return Ok(b);
        }
        let b = self.env.bucket("FILES").map_err(store_err)?;
        Ok(self.bucket.get_or_init(|| b))
    }
}

impl D1 {
    fn handle(&self) -> Result<&JsValue, StoreError> {
        if let Some(db) = self.handle.get() {
            return Ok(db);
        }
        let db = js_sys::Reflect::get(&self.env, &JsValue::from_str(&self.name))
            .ok()
            .filter(|d| !d.is_undefined())
            .ok_or_else(|| StoreError::Unavailable(format!("the D1 binding {} is missing", self.name)))?;
        Ok(self.handle.get_or_init(|| db))
    }

    fn count(&self, statements: usize) {
        self.queries.set(self.queries.get() + statements as u32);
    }
}

/// What D1 answered, as the UTF-8 bytes the JS side encoded: JSON that serde_json parses natively.
fn bytes_of(v: JsValue) -> Result<Vec<u8>, StoreError> {
    v.dyn_into::<js_sys::Uint8Array>()
        .map(|a| a.to_vec())
        .map_err(|_| StoreError::Decode("D1's answer did not come as bytes".into()))
}

impl Database for D1 {
    async fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        self.count(1);
        let json = gh_all(self.handle()?, sql, &json_params(params).to_string()).await.map_err(js_store_err)?;
        crate::platform::body::parse(&bytes_of(json)?, "rows").map_err(StoreError::Decode)
    }

    async fn query_text(&self, sql: &str, params: &[Param]) -> Result<Option<String>, StoreError> {
        self.count(1);
        let v = gh_text(self.handle()?, sql, &json_params(params).to_string()).await.map_err(js_store_err)?;
        if v.is_null() {
            return Ok(None);
        }
        String::from_utf8(bytes_of(v)?).map(Some).map_err(|e| StoreError::Decode(e.to_string()))
    }

    async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        self.count(1);
        let changes = gh_run(self.handle()?, sql, &json_params(params).to_string()).await.map_err(js_store_err)?;
        Ok(changes.as_f64().unwrap_or(0.0).max(0.0) as u64)
    }

    async fn batch(&self, stmts: &[Stmt]) -> Result<Vec<u64>, StoreError> {
        self.count(stmts.len());
        let list: serde_json::Value =
            stmts.iter().map(|s| serde_json::json!([s.sql, json_params(&s.params)])).collect();
        let changes = gh_batch(self.handle()?, &list.to_string()).await.map_err(js_store_err)?;
        crate::platform::body::parse(&bytes_of(changes)?, "changes").map_err(StoreError::Decode)
    }
}

impl Database for Edge {
    async fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        self.db().query(sql, params).await
    }

    async fn query_text(&self, sql: &str, params: &[Param]) -> Result<Option<String>, StoreError> {
        self.db().query_text(sql, params).await
    }

    async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        self.db().execute(sql, params).await
    }

    async fn batch(&self, stmts: &[Stmt]) -> Result<Vec<u64>, StoreError> {
        self.db().batch(stmts).await
    }

    fn shard_count(&self) -> usize {
        self.db().shard_count()
    }

    fn scan_on(&self, n: Option<usize>) {
        self.db().scan_on(n)
    }

    fn learn_home(&self, tenant: &str, shard: i64) {
        self.db().learn_home(tenant, shard)
    }

    fn shards_written(&self) -> Vec<usize> {
        self.router.get().map(|r| r.shards_written()).unwrap_or_default()
    }
}

impl Zones for Edge {
    fn canonical_zone(&self, name: &str) -> Option<String> {
        Some(gh_tz_canonical(name)).filter(|n| !n.is_empty())
    }

    fn utc_offset_min(&self, name: &str, utc_ms: i64) -> Option<i32> {
        let m = gh_tz_offset(name, utc_ms as f64);
        (m.is_finite() && m.abs() <= 24.0 * 60.0).then_some(m as i32)
    }
}

impl Blobs for Edge {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<ObjectMeta, StoreError> {
        let size = bytes.len() as u64;
        let obj = self
            .bucket()?
            .put(key, bytes)
            .http_metadata(HttpMetadata { content_type: Some(content_type.to_string()), ..Default::default() })
            .execute()
            .await
            .map_err(store_err)?;
        let etag = obj.map(|o| o.http_etag()).unwrap_or_default();
        Ok(ObjectMeta { content_type: content_type.to_string(), size, etag })
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Option<ObjectBody>, StoreError> {
        let mut get = self.bucket()?.get(key);
        if let Some(r) = range {
            get = get.range(Range::OffsetWithLength { offset: r.offset, length: r.length });
        }
        let Some(obj) = get.execute().await.map_err(store_err)? else {
            return Ok(None);
        };
        let meta = ObjectMeta {
            content_type: obj.http_metadata().content_type.unwrap_or_default(),
            size: obj.size(),
            etag: obj.http_etag(),
        };
        let bytes = match obj.body() {
            Some(body) => body.bytes().await.map_err(store_err)?,
            None => Vec::new(),
        };
        Ok(Some(ObjectBody { meta, bytes }))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.bucket()?.delete(key).await.map_err(store_err)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut list = self.bucket()?.list().prefix(prefix);
            if let Some(c) = cursor.take() {
                list = list.cursor(c);
            }
            let page = list.execute().await.map_err(store_err)?;
            keys.extend(page.objects().iter().map(|o| o.key()));
            match page.cursor().filter(|_| page.truncated()) {
                Some(c) => cursor = Some(c),
                None => return Ok(keys),
            }
        }
    }

    async fn multipart_start(&self, key: &str, content_type: &str) -> Result<String, StoreError> {
        let upload = self
            .bucket()?
            .create_multipart_upload(key)
            .http_metadata(HttpMetadata { content_type: Some(content_type.to_string()), ..Default::default() })
            .execute()
            .await
            .map_err(store_err)?;
        Ok(upload.upload_id().await)
    }

    async fn multipart_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u16,
        bytes: Vec<u8>,
    ) -> Result<String, StoreError> {
        let upload = self.bucket()?.resume_multipart_upload(key, upload_id).map_err(store_err)?;
        Ok(upload.upload_part(part, bytes).await.map_err(store_err)?.etag())
    }

    async fn multipart_finish(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u16, String)],
    ) -> Result<ObjectMeta, StoreError> {
        let upload = self.bucket()?.resume_multipart_upload(key, upload_id).map_err(store_err)?;
        let obj = upload
            .complete(parts.iter().map(|(n, etag)| worker::UploadedPart::new(*n, etag.clone())))
            .await
            .map_err(store_err)?;
        Ok(ObjectMeta {
            content_type: obj.http_metadata().content_type.unwrap_or_default(),
            size: obj.size(),
            etag: obj.http_etag(),
        })
    }

    async fn multipart_abort(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        let upload = self.bucket()?.resume_multipart_upload(key, upload_id).map_err(store_err)?;
        upload.abort().await.map_err(store_err)
    }
}

impl Clock for Edge {
    fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }
}

impl Outbound for Edge {
    async fn fetch_text(&self, url: &str, accept: &str) -> Result<HttpReply, StoreError> {
        let headers = Headers::new();
        headers.set("accept", accept).map_err(store_err)?;
        let mut init = RequestInit::new();
        init.with_headers(headers);
        let req = worker::Request::new_with_init(url, &init).map_err(store_err)?;
        let mut resp = Fetch::Request(req).send().await.map_err(store_err)?;
        let status = resp.status_code();
        let body = resp.text().await.map_err(store_err)?;
        Ok(HttpReply { status, body })
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<HttpReply, StoreError> {
        let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let headers = Headers::new();
        headers.set("content-type", "application/x-www-form-urlencoded").map_err(store_err)?;
        let mut init = RequestInit::new();
        init.with_method(worker::Method::Post).with_headers(headers).with_body(Some(JsValue::from_str(&body)));
        let req = worker::Request::new_with_init(url, &init).map_err(store_err)?;
        let mut resp = Fetch::Request(req).send().await.map_err(store_err)?;
        let status = resp.status_code();
        let body = resp.text().await.map_err(store_err)?;
        Ok(HttpReply { status, body })
    }

    async fn post_json(&self, post: &Post<'_>) -> (PostOutcome, i64) {
        let mut headers = String::new();
        for (k, v) in post.headers {
            if !headers.is_empty() {
                headers.push('\n');
            }
            headers.push_str(k);
            headers.push('\n');
            headers.push_str(v);
        }
        let reply = gh_post(post.url, post.body, &headers, post.timeout_ms, RESPONSE_HEAD_BYTES as u32).await;
        let v: serde_json::Value = reply.as_string().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
        let ms = v["ms"].as_i64().unwrap_or(0);
        let outcome = match v["status"].as_u64() {
            Some(status) => PostOutcome::Answered {
                status: status as u16,
                retry_after: v["retry_after"].as_str().map(String::from),
                head: v["head"].as_str().unwrap_or("").to_string(),
            },
            None if v["timeout"].as_bool() == Some(true) => PostOutcome::TimedOut,
            None => PostOutcome::Failed(v["error"].as_str().unwrap_or("the request failed").to_string()),
        };
        (outcome, ms)
    }
}

/// The `[[queues.producers]]` binding that carries webhook deliveries.
const WEBHOOKS_QUEUE: &str = "WEBHOOKS_QUEUE";

impl Queue for Edge {
    async fn enqueue(&self, messages: &[QueueMessage]) -> Result<(), StoreError> {
        let queue = js_sys::Reflect::get(&self.env, &JsValue::from_str(WEBHOOKS_QUEUE))
            .ok()
            .filter(|q| !q.is_undefined())
            .ok_or_else(|| StoreError::Unavailable(format!("the queue binding {WEBHOOKS_QUEUE} is missing")))?;
        // sendBatch takes at most 100 messages.
        for chunk in messages.chunks(100) {
            let list: serde_json::Value = chunk.iter().map(|m| serde_json::json!([m.body, m.delay_secs])).collect();
            gh_queue_send(&queue, &list.to_string()).await.map_err(js_store_err)?;
        }
        Ok(())
    }
}

impl RateLimits for Edge {
    async fn allow(&self, limit: Limit, key: &str) -> Result<bool, StoreError> {
        let limiter = self.env.rate_limiter(limit.binding()).map_err(|e| {
            StoreError::Unavailable(format!("rate limiting binding {} is missing: {e}", limit.binding()))
        })?;
        Ok(limiter.limit(key.to_string()).await.map_err(store_err)?.success)
    }
}

impl Log for Edge {
    fn log(&self, level: &str, message: &str) {
        gh_log(level == "error", message);
    }

    fn query_count(&self) -> u32 {
        self.queries.get()
    }

    fn data_point(&self, p: &crate::platform::ports::DataPoint<'_>) {
        let ds = self.metrics.get_or_init(|| {
            js_sys::Reflect::get(&self.env, &JsValue::from_str(METRICS_DATASET)).ok().filter(|d| !d.is_undefined())
        });
        if let Some(ds) = ds {
            let [b0, b1, b2, b3] = p.blobs;
            if let Err(e) = gh_point(ds, p.index, b0, b1, b2, b3, p.doubles[0], p.doubles[1]) {
                console_error!("metrics data point not written: {}", js_message(&e));
            }
        }
    }
}

/// The `[[analytics_engine_datasets]]` binding for one data point per request.
const METRICS_DATASET: &str = "METRICS";

fn config(env: &Env) -> Result<Rc<Config>, String> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    let cfg = Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string())).map_err(|e| e.to_string())?;
    let cfg = Rc::new(cfg);
    CONFIG.with(|c| *c.borrow_mut() = Some(cfg.clone()));
    Ok(cfg)
}

/// The request as the core sees it: method, path and query from the URL string, the headers the
/// core reads, and the body (not for GET, HEAD or OPTIONS), in two crossings at most.
async fn to_core(req: &web_sys::Request) -> Result<Request, Response> {
    // The runtime's headers are valid UTF-8 once encoded; a lossy decode only guards the type.
    let head = gh_request_head(req).to_vec();
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split('\n');
    let method = Method::parse(lines.next().unwrap_or(""));
    let url = lines.next().unwrap_or("");
    // `scheme://authority/path?query#fragment`: keep path and query, as the URL parser would.
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let target = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    let mut core = Request::new(method, target);
    if url.starts_with("http:") {
        core.scheme = "http";
    }
    while let (Some(name), Some(value)) = (lines.next(), lines.next()) {
        core.headers.push((name.to_string(), value.to_string()));
    }
    let declared = core.header("content-length").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    if declared > MAX_BODY_BYTES {
        return Err(crate::platform::error::ApiError::TooLarge("request body is too large".into()).into_response());
    }
    if !matches!(core.method, Method::Get | Method::Head | Method::Options) {
        core.body = match gh_request_body(req).await {
            Ok(v) => v.dyn_into::<js_sys::Uint8Array>().map(|a| a.to_vec()).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
    }
    Ok(core)
}

/// The core's response as a JS Response, in one call. HEAD answers carry no body.
fn to_js(resp: Response, head: bool) -> web_sys::Response {
    let headers = header_lines(&resp);
    let body = if head { Vec::new() } else { resp.body };
    gh_response(resp.status, body, &headers)
}

/// Headers as the JS side takes them: `name\nvalue\n…`.
fn header_lines(resp: &Response) -> String {
    let mut headers = String::with_capacity(resp.headers.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (k, v) in &resp.headers {
        if !headers.is_empty() {
            headers.push('\n');
        }
        headers.push_str(k);
        headers.push('\n');
        headers.push_str(v);
    }
    headers
}

/// A response whose body is a stored object: streamed from the bucket; 404 if it is gone.
async fn object_to_js(env: &Env, resp: Response) -> web_sys::Response {
    let Some(object) = resp.object.as_ref() else { return to_js(resp, false) };
    let (offset, length) = object.range.map_or((0.0, -1.0), |r| (r.offset as f64, r.length as f64));
    let bucket = js_sys::Reflect::get(env, &JsValue::from_str("FILES")).unwrap_or(JsValue::UNDEFINED);
    match gh_object_response(&bucket, &object.key, offset, length, resp.status, &header_lines(&resp)).await {
        Ok(js) if !js.is_null() => js.unchecked_into(),
        Ok(_) => to_js(crate::platform::error::ApiError::NotFound.into_response(), false),
        Err(e) => {
            console_error!("streaming {} failed: {:?}", object.key, e);
            to_js(crate::platform::error::ApiError::Upstream("the file store failed".into()).into_response(), false)
        }
    }
}

/// The fetch entry, in place of workers-rs's `#[event(fetch)]`, which always answers with a
/// Promise: its future is spawned on wasm-bindgen's executor and first polled from a microtask.
/// Here the request's future is polled once at once. A request that needs no I/O (a warm gate,
/// a refusal, a preflight) is answered in that poll, and its Response goes back to the runtime
/// as it is: no Promise, no microtask, no second crossing into the wasm. A request that awaits
/// D1, R2 or a binding goes on as a Promise. Its pending futures are all JS promises
/// (`JsFuture`), which take the waker of each poll that drives them (the `Future` contract), so
/// the first poll's no-op waker is never the one they wake. A future that keeps only its first
/// poll's waker would hang its request here: `worker::Delay` is one, and is not used.
///
/// workers-rs's own panic hook, which marks the instance for re-initialisation after a panic, is
/// installed by its start function and kept (no console_error_panic_hook over it).
#[wasm_bindgen]
pub fn fetch(req: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> JsValue {
    use std::future::Future;
    let mut handling = Box::pin(handle(req, env, Context::new(ctx)));
    let mut first = std::task::Context::from_waker(std::task::Waker::noop());
    match handling.as_mut().poll(&mut first) {
        std::task::Poll::Ready(resp) => resp.into(),
        std::task::Poll::Pending => {
            wasm_bindgen_futures::future_to_promise(async move { Ok(handling.await.into()) }).into()
        }
    }
}

async fn handle(req: web_sys::Request, env: Env, ctx: Context) -> web_sys::Response {
    let cfg = match config(&env) {
        Ok(c) => c,
        Err(e) => {
            console_error!("configuration error: {e}");
            return to_js(crate::platform::error::ApiError::Misconfigured(e).into_response(), false);
        }
    };
    let platform = Edge::new(&env);
    let core = match to_core(&req).await {
        Ok(r) => r,
        Err(resp) => return to_js(resp, false),
    };
    let head = core.method == Method::Head;
    let state = STATE.with(|s| *s);
    let app = App::new(&platform, &cfg, state);
    let (mut resp, outbox) = app.serve(core).await;
    if cfg.debug_headers {
        resp.set_header("x-gatehouse-db-queries", platform.queries.get().to_string());
    }
    let streamed = resp.object.is_some() && !head;
    let js = if streamed { object_to_js(&env, resp).await } else { to_js(resp, head) };
    if !outbox.is_empty() {
        // The events this request recorded head for the webhooks queue, and its mail for the mail
        // API, once the answer is out.
        ctx.wait_until(async move {
            let platform = Edge::new(&env);
            let app = App::new(&platform, &cfg, state);
            if let Err(e) = app.follow_up(outbox).await {
                console_error!("after the response (the cron will retry): {e}");
            }
        });
    }
    js
}

/// The webhooks queue consumer: one delivery attempt per message. A message whose attempt could
/// not be recorded (D1 unavailable) goes back to the queue; every other outcome is in D1.
#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> worker::Result<()> {
    let cfg = match config(&env) {
        Ok(c) => c,
        Err(e) => {
            console_error!("configuration error: {e}");
            batch.retry_all();
            return Ok(());
        }
    };
    let platform = Edge::new(&env);
    let state = STATE.with(|s| *s);
    let app = App::new(&platform, &cfg, state);
    for message in batch.raw_iter() {
        let id = message.body().as_string().unwrap_or_default();
        match app.deliver(&id).await {
            crate::webhooks::delivery::Ack::Done => message.ack(),
            crate::webhooks::delivery::Ack::Retry => message.retry(),
        }
    }
    Ok(())
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let cfg = match config(&env) {
        Ok(c) => c,
        Err(e) => return console_error!("configuration error: {e}"),
    };
    let platform = Edge::new(&env);
    let state = STATE.with(|s| *s);
    let app = App::new(&platform, &cfg, state);
    if let Err(e) = app.scheduled(&event.cron()).await {
        console_error!("scheduled job failed: {e}");
    }
}
