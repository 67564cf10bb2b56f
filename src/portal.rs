//! White-label portals: a client's branded page on its own host, and the effective branding
//! the widget and portal wear.

use serde_json::{json, Value};

use crate::api::App;
use crate::error::{ApiError, ApiResult};
use crate::http::{Request, Response};
use crate::ports::Platform;
use crate::tenants::ClientRow;

pub const DEFAULT_PRIMARY: &str = "#2563eb";
pub const DEFAULT_SECONDARY: &str = "#0f172a";

/// The branding a client's widget and portal wear, field by field.
pub async fn effective_branding<P: Platform>(_app: &App<'_, P>, _client_id: &str) -> ApiResult<Value> {
    Ok(
        json!({"primary_color": DEFAULT_PRIMARY, "secondary_color": DEFAULT_SECONDARY, "tagline": null, "logo_url": null}),
    )
}

pub fn page<P: Platform>(
    _app: &App<'_, P>,
    _req: &Request,
    _client: &ClientRow,
    _path: &[&str],
) -> ApiResult<Response> {
    Err(ApiError::NotFound)
}
