//! The edge: adapts workers-rs (D1, R2, fetch, Date, console) to the core's ports and hands
//! each event to the core. No tenant or domain decision is made here.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::JsValue;
use worker::{
    console_error, console_log, event, Context, D1Database, Env, Fetch, Headers, HttpMetadata, Range, RequestInit,
    ScheduleContext, ScheduledEvent,
};

use crate::api::{App, State};
use crate::config::Config;
use crate::error::StoreError;
use crate::http::{Method, Request, Response};
use crate::ports::{
    Blobs, ByteRange, Clock, Database, HttpReply, Limit, Log, ObjectBody, ObjectMeta, Outbound, Param, RateLimits, Row,
    Stmt,
};

thread_local! {
    static STATE: &'static State = Box::leak(Box::default());
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

/// Bodies above this are refused before they are read. Uploads have their own, smaller limit.
const MAX_BODY_BYTES: u64 = 100 * 1024 * 1024;

struct Edge {
    db: D1Database,
    bucket: worker::Bucket,
    env: Env,
    queries: Cell<u32>,
}

fn store_err(e: worker::Error) -> StoreError {
    let msg = e.to_string();
    if msg.contains("UNIQUE constraint failed") || msg.contains("PRIMARY KEY") && msg.contains("constraint") {
        // Keep only the constraint's column names, never a value.
        let detail = msg.split("UNIQUE constraint failed:").nth(1).unwrap_or("").trim().to_string();
        StoreError::Conflict(detail.split(':').next().unwrap_or("").trim().to_string())
    } else {
        StoreError::Unavailable(msg)
    }
}

fn js_params(params: &[Param]) -> Vec<JsValue> {
    params
        .iter()
        .map(|p| match p {
            Param::Null => JsValue::NULL,
            Param::Int(i) => JsValue::from_f64(*i as f64),
            Param::Real(f) => JsValue::from_f64(*f),
            Param::Text(s) => JsValue::from_str(s),
        })
        .collect()
}

/// D1 hands numbers back as JS doubles; whole ones become JSON integers like SQLite's.
fn normalise(row: serde_json::Value) -> Option<Row> {
    let serde_json::Value::Object(mut map) = row else {
        return None;
    };
    for v in map.values_mut() {
        if let serde_json::Value::Number(n) = v {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = serde_json::Value::from(f as i64);
            }
        }
    }
    Some(map)
}

impl Edge {
    fn statement(&self, sql: &str, params: &[Param]) -> Result<worker::D1PreparedStatement, StoreError> {
        self.queries.set(self.queries.get() + 1);
        self.db.prepare(sql).bind(&js_params(params)).map_err(store_err)
    }
}

impl Database for Edge {
    async fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let result = self.statement(sql, params)?.all().await.map_err(store_err)?;
        let rows: Vec<serde_json::Value> = result.results().map_err(store_err)?;
        Ok(rows.into_iter().filter_map(normalise).collect())
    }

    async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let result = self.statement(sql, params)?.run().await.map_err(store_err)?;
        Ok(result.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) as u64)
    }

    async fn batch(&self, stmts: &[Stmt]) -> Result<Vec<u64>, StoreError> {
        let prepared = stmts.iter().map(|s| self.statement(s.sql, &s.params)).collect::<Result<Vec<_>, _>>()?;
        let results = self.db.batch(prepared).await.map_err(store_err)?;
        Ok(results.iter().map(|r| r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) as u64).collect())
    }
}

impl Blobs for Edge {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<ObjectMeta, StoreError> {
        let size = bytes.len() as u64;
        let obj = self
            .bucket
            .put(key, bytes)
            .http_metadata(HttpMetadata { content_type: Some(content_type.to_string()), ..Default::default() })
            .execute()
            .await
            .map_err(store_err)?;
        let etag = obj.map(|o| o.http_etag()).unwrap_or_default();
        Ok(ObjectMeta { content_type: content_type.to_string(), size, etag })
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Option<ObjectBody>, StoreError> {
        let mut get = self.bucket.get(key);
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
        self.bucket.delete(key).await.map_err(store_err)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut list = self.bucket.list().prefix(prefix);
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
        if level == "error" {
            console_error!("{message}");
        } else {
            console_log!("{message}");
        }
    }
}

fn config(env: &Env) -> Result<Rc<Config>, String> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    let cfg = Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string())).map_err(|e| e.to_string())?;
    let cfg = Rc::new(cfg);
    CONFIG.with(|c| *c.borrow_mut() = Some(cfg.clone()));
    Ok(cfg)
}

fn edge(env: &Env) -> worker::Result<Edge> {
    Ok(Edge { db: env.d1("DB")?, bucket: env.bucket("FILES")?, env: env.clone(), queries: Cell::new(0) })
}

async fn to_core(mut req: worker::Request) -> Result<Request, Response> {
    let url = req.url().map_err(|_| Response::new(400))?;
    let mut core = Request::new(Method::parse(req.method().as_ref()), url.path());
    core.query = url.query().unwrap_or("").to_string();
    core.headers = req.headers().entries().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    let declared = core.header("content-length").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    if declared > MAX_BODY_BYTES {
        return Err(crate::error::ApiError::TooLarge("request body is too large".into()).into_response());
    }
    if !matches!(core.method, Method::Get | Method::Head | Method::Options) {
        core.body = req.bytes().await.unwrap_or_default();
    }
    Ok(core)
}

fn to_worker(resp: Response, head: bool) -> worker::Result<worker::Response> {
    let body = if head { Vec::new() } else { resp.body };
    let mut out = worker::Response::from_bytes(body)?.with_status(resp.status);
    let headers = out.headers_mut();
    for (k, v) in &resp.headers {
        headers.set(k, v)?;
    }
    Ok(out)
}

#[event(fetch)]
async fn fetch(req: worker::Request, env: Env, _ctx: Context) -> worker::Result<worker::Response> {
    console_error_panic_hook::set_once();
    let cfg = match config(&env) {
        Ok(c) => c,
        Err(e) => {
            console_error!("configuration error: {e}");
            return to_worker(crate::error::ApiError::Misconfigured(e).into_response(), false);
        }
    };
    let platform = edge(&env)?;
    let core = match to_core(req).await {
        Ok(r) => r,
        Err(resp) => return to_worker(resp, false),
    };
    let head = core.method == Method::Head;
    let state = STATE.with(|s| *s);
    let app = App::new(&platform, &cfg, state);
    let mut resp = app.handle(core).await;
    if cfg.debug_headers {
        resp.set_header("x-gatehouse-db-queries", platform.queries.get().to_string());
    }
    to_worker(resp, head)
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let (cfg, platform) = match (config(&env), edge(&env)) {
        (Ok(c), Ok(p)) => (c, p),
        (Err(e), _) => return console_error!("configuration error: {e}"),
        (_, Err(e)) => return console_error!("bindings error: {e}"),
    };
    let state = STATE.with(|s| *s);
    let app = App::new(&platform, &cfg, state);
    if let Err(e) = crate::jobs::run_scheduled(&app, &event.cron()).await {
        console_error!("scheduled job failed: {e}");
    }
}
