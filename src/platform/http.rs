//! The core's own HTTP model: what a handler sees of a request and returns as a response.
//! The edge converts to and from workers-rs types; native tests build these directly.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    pub fn parse(s: &str) -> Self {
        match s {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The path as received, still percent-encoded.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names are lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `https` unless the request came in over plain HTTP (`wrangler dev`): links mailed from a
    /// request use it.
    pub scheme: &'static str,
}

impl Request {
    pub fn new(method: Method, target: &str) -> Self {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.to_string(), String::new()),
        };
        Self { method, path, query, headers: Vec::new(), body: Vec::new(), scheme: "https" }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of a header. Duplicates of security-relevant headers are refused elsewhere.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(k, _)| k == name).count()
    }

    /// A decoded query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// The caller's IP as Cloudflare reports it. Absent only outside Cloudflare's edge.
    pub fn client_ip(&self) -> Option<&str> {
        self.header("cf-connecting-ip").map(str::trim).filter(|ip| !ip.is_empty() && ip.len() <= 64)
    }

    pub fn user_agent(&self) -> &str {
        self.header("user-agent").unwrap_or("")
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body is this stored object (or a range of it), streamed by the platform from the
    /// bucket to the client without passing through the Worker's memory.
    pub object: Option<StoredBody>,
    /// The error code of an `ApiError`'s response, so the log line need not read it back out of
    /// the body.
    pub error_code: Option<&'static str>,
}

/// A stored object as a response body: its key, and the byte range wanted (all of it if none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBody {
    pub key: String,
    pub range: Option<super::ports::ByteRange>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new(), object: None, error_code: None }
    }

    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        // Serializing our own types cannot fail; fall back to an empty object rather than panic.
        Self::json_text(status, serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
    }

    /// A JSON body already serialized (by serde, or by SQLite for a page built in SQL).
    pub fn json_text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::text(status, "application/json; charset=utf-8", body)
    }

    pub fn text(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status).with_header("content-type", content_type).with_body(body.into())
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_header(name, value);
        self
    }

    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.headers.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.headers.push((name.to_string(), value)),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}
