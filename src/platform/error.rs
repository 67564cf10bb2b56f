//! The error types of the core: one `ApiError` that becomes the JSON error shape, and the
//! `StoreError` that storage adapters translate driver failures into.

use crate::platform::http::Response;

/// Failure of a storage port (D1, R2, outbound fetch). Adapters build these; handlers never
/// inspect driver messages.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A UNIQUE or PRIMARY KEY constraint refused the write.
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    /// The backend is unreachable or failed; the detail is for the log only.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A row did not have the shape the query promised.
    #[error("row decode failed: {0}")]
    Decode(String),
    /// A write to a tenant whose agency is moving between data shards (`tenants::moves`).
    #[error("tenant {0} is moving between shards")]
    Moving(String),
}

/// Every error a request can end in. Each variant's doc names its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed input.
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// 401: no token, or a token that failed verification.
    #[error("{1}")]
    Unauthorized(&'static str, String),
    /// 403: authenticated but not allowed.
    #[error("{1}")]
    Forbidden(&'static str, String),
    /// 404: unknown, or belonging to another tenant.
    #[error("not found")]
    NotFound,
    /// 405: the path exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: conflicts with existing state.
    #[error("{1}")]
    Conflict(&'static str, String),
    /// 413: body too large.
    #[error("{0}")]
    TooLarge(String),
    /// 415: content type not accepted.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: a field is invalid.
    #[error("{1}")]
    Invalid(&'static str, String),
    /// 429: over a rate limit.
    #[error("{1}")]
    TooMany(&'static str, String, Option<u64>),
    /// 429 `quota_exceeded`: the write would take a tenant past its limit for `metric`.
    #[error("the plan allows {limit} {metric}; the limit is reached")]
    QuotaExceeded { metric: &'static str, limit: i64 },
    /// 502: an upstream (DNS resolver) failed.
    #[error("{0}")]
    Upstream(String),
    /// 500: a bug or an outage. The detail is logged, never sent.
    #[error("internal: {0}")]
    Internal(String),
    /// 503: the deployment is misconfigured (missing secret). Detail logged, never sent.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
    /// 503 `tenant_moving`, with `Retry-After`: the tenant's data is moving between shards, and
    /// writes wait until it has (reads go on).
    #[error("this tenant's data is being moved; writes resume within minutes")]
    Moving,
}

/// The `Retry-After` of a write refused while its tenant moves.
pub const MOVING_RETRY_SECS: u64 = 30;

impl ApiError {
    pub fn bad_request(code: &'static str, msg: impl Into<String>) -> Self {
        Self::BadRequest(code, msg.into())
    }
    pub fn invalid(code: &'static str, msg: impl Into<String>) -> Self {
        Self::Invalid(code, msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::Forbidden("forbidden", msg.into())
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self::Unauthorized("unauthorized", msg.into())
    }
    pub fn conflict(code: &'static str, msg: impl Into<String>) -> Self {
        Self::Conflict(code, msg.into())
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(..) => 400,
            Self::Unauthorized(..) => 401,
            Self::Forbidden(..) => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict(..) => 409,
            Self::TooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::Invalid(..) => 422,
            Self::TooMany(..) | Self::QuotaExceeded { .. } => 429,
            Self::Internal(_) => 500,
            Self::Upstream(_) => 502,
            Self::Misconfigured(_) | Self::Moving => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(c, _)
            | Self::Unauthorized(c, _)
            | Self::Forbidden(c, _)
            | Self::Conflict(c, _)
            | Self::Invalid(c, _)
            | Self::TooMany(c, _, _) => c,
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Upstream(_) => "upstream_error",
            Self::Internal(_) => "internal_error",
            Self::Misconfigured(_) => "service_unavailable",
            Self::Moving => "tenant_moving",
        }
    }

    /// The message a client may see. Server-side failures never reveal their cause.
    pub fn public_message(&self) -> String {
        match self {
            Self::NotFound => "Not found".into(),
            Self::MethodNotAllowed => "Method not allowed".into(),
            Self::Internal(_) => "Internal error".into(),
            Self::Misconfigured(_) => "Service unavailable".into(),
            other => other.to_string(),
        }
    }

    /// Whether the detail should be logged as a server fault.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Self::Internal(_) | Self::Misconfigured(_) | Self::Upstream(_))
    }

    pub fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": {"code": self.code(), "message": self.public_message()}});
        if let Self::QuotaExceeded { metric, limit } = &self {
            body["error"]["metric"] = (*metric).into();
            body["error"]["limit"] = (*limit).into();
        }
        let mut resp = Response::json(self.status(), &body);
        resp.error_code = Some(self.code());
        if let Self::TooMany(_, _, Some(secs)) = &self {
            resp.set_header("retry-after", secs.to_string());
        }
        if let Self::Moving = &self {
            resp.set_header("retry-after", MOVING_RETRY_SECS.to_string());
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict("conflict", conflict_message(&m)),
            StoreError::Moving(_) => ApiError::Moving,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

fn conflict_message(detail: &str) -> String {
    // The constraint name is safe to surface; it names a column, never a value.
    let column = detail.rsplit('.').next().unwrap_or("value").trim();
    format!("A record with this {column} already exists")
}

pub type ApiResult<T> = Result<T, ApiError>;
