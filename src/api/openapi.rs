//! The OpenAPI 3.1 document, built natively from `routes::ROUTES` and what this file says about
//! each route (`gatehouse-openapi` writes it to `openapi.json`, which is committed and which the
//! Worker serves as is). A route added to the router without being described here fails the build
//! of the document; a test fails when the committed file differs from what this builds.

use serde_json::{json, Map, Value};

use super::routes::ROUTES;

/// Ids in paths: a prefix, `_`, and 24 characters of Crockford base32.
fn id_schema(prefix: &str) -> Value {
    json!({"type": "string", "pattern": format!("^{prefix}_[0-9a-hjkmnp-tv-z]{{24}}$")})
}

/// A path parameter's schema and an example from the demo data, by its name.
fn param(name: &str) -> (Value, Option<&'static str>) {
    let id = |p: &str| id_schema(p);
    match name {
        "client_id" => (id("cli"), Some("cli_000000000000000000000001")),
        "agency_id" => (id("agy"), Some("agy_000000000000000000000001")),
        "contact_id" => (id("con"), None),
        "deal_id" => (id("deal"), None),
        "pipeline_id" => (id("pipe"), None),
        "stage_id" => (id("stage"), None),
        "tag_id" => (id("tag"), None),
        "note_id" => (id("note"), None),
        "service_id" => (id("svc"), None),
        "staff_id" => (id("stf"), None),
        "appointment_id" => (id("apt"), None),
        "time_off_id" => (id("off"), None),
        "file_id" => (id("fil"), None),
        "domain_id" => (json!({"type": "string", "pattern": "^(dom|adm)_[0-9a-hjkmnp-tv-z]{24}$"}), None),
        "invitation_id" => (id("inv"), None),
        "key_id" => (id("key"), None),
        "webhook_id" => (id("whe"), None),
        "delivery_id" => (id("whd"), None),
        "template_id" => (id("tpl"), None),
        "export_id" => (id("exp"), None),
        "user_id" => (id("usr"), Some("usr_000000000000000000000005")),
        "tenant_id" => (json!({"type": "string"}), Some("cli_000000000000000000000001")),
        "provider" => (json!({"type": "string"}), Some("twilio")),
        _ => (json!({"type": "string"}), None),
    }
}

/// Routes that need no bearer token: their own proof (a password, a token in the body, a
/// signature in the URL, a publishable key) or none.
fn security(method: &str, path: &str) -> Value {
    if path.starts_with("/api/widget/v1/") {
        return json!([{"publishableKey": []}]);
    }
    let public = matches!(
        (method, path),
        (
            "GET",
            "/healthz"
                | "/widget.js"
                | "/openapi.json"
                | "/assets/{file_id}"
                | "/api/files/signed/{id}"
                | "/api/exports/signed/{id}"
                | "/api/dev/mailbox"
        ) | (
            "POST",
            "/api/auth/login"
                | "/api/auth/login/mfa"
                | "/api/invitations/accept"
                | "/api/signup"
                | "/api/signup/verify"
                | "/api/auth/password-reset"
                | "/api/auth/password-reset/confirm"
        )
    );
    if public {
        json!([])
    } else {
        json!([{"bearerAuth": []}])
    }
}

/// The success answers of a route: status and what it carries.
fn success(method: &str, path: &str) -> Vec<(u16, Value)> {
    let (page, object) = match entity(path) {
        Some(e) => (
            json!({"content": {"application/json": {"schema": {"allOf": [{"$ref": "#/components/schemas/Page"},
                {"properties": {"items": {"items": {"$ref": format!("#/components/schemas/{e}")}}}}]}}}}),
            json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{e}")}}}}),
        ),
        None => (
            json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}}),
            json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Object"}}}}),
        ),
    };
    let none = json!({});
    let last = path.rsplit('/').next().unwrap_or("");
    match (method, path) {
        ("GET", "/widget.js") => {
            vec![(200, json!({"content": {"application/javascript": {"schema": {"type": "string"}}}}))]
        }
        ("GET", p) if p.ends_with("/audit/export") => {
            vec![(200, json!({"content": {"text/csv": {"schema": {"type": "string"}}}}))]
        }
        ("GET", "/assets/{file_id}" | "/api/files/signed/{id}" | "/api/exports/signed/{id}") => vec![
            (200, json!({"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}})),
            (206, json!({"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}})),
            (304, none),
        ],
        ("GET", "/api/clients/{client_id}/files/{file_id}") => vec![
            (200, json!({"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}})),
            (206, json!({"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}})),
            (304, none),
        ],
        ("GET", _) if is_list(path) => vec![(200, page)],
        ("GET", _) => vec![(200, object)],
        ("DELETE", "/api/clients/{client_id}") => {
            vec![(202, json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Object"}}}}))]
        }
        ("DELETE", _) => vec![(204, none)],
        ("PUT" | "PATCH", _) => vec![(200, object)],
        ("POST", "/api/users") => vec![(201, object.clone()), (202, object)],
        ("POST", "/api/clients/{client_id}/invitations" | "/api/clients/{client_id}/exports") => vec![(202, object)],
        ("POST", "/api/auth/logout-everywhere") => vec![(204, none)],
        ("POST", "/api/auth/password-reset" | "/api/me/password" | "/api/auth/password-reset/confirm") => {
            vec![(202, object.clone()), (204, none)]
        }
        ("POST", _) if is_create(last) => vec![(201, object)],
        ("POST", _) => vec![(200, object)],
        _ => vec![(200, object)],
    }
}

/// The entity a route answers (one, or a page of them), where the document describes it.
fn entity(path: &str) -> Option<&'static str> {
    Some(match path {
        "/api/clients" | "/api/clients/{client_id}" => "Client",
        "/api/agencies" | "/api/agencies/{agency_id}" => "Agency",
        "/api/clients/{client_id}/domains"
        | "/api/clients/{client_id}/domains/{domain_id}/verify"
        | "/api/agencies/{agency_id}/domains"
        | "/api/agencies/{agency_id}/domains/{domain_id}/verify" => "Domain",
        "/api/clients/{client_id}/contacts" | "/api/clients/{client_id}/contacts/{contact_id}" => "Contact",
        "/api/me" => "Me",
        "/healthz" => "Health",
        _ => return None,
    })
}

/// A `GET` that answers a page: a collection.
fn is_list(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    !last.starts_with('{')
        && !matches!(
            last,
            "usage"
                | "preferences"
                | "branding"
                | "settings"
                | "board"
                | "availability"
                | "me"
                | "healthz"
                | "metrics"
                | "health"
                | "verify"
                | "config"
                | "mailbox"
                | "tenants"
                | "history"
        )
        && path.starts_with("/api/")
        || path == "/api/admin/tenants"
}

/// A `POST` whose last segment names a collection: it creates one of them.
fn is_create(last: &str) -> bool {
    matches!(
        last,
        "agencies"
            | "clients"
            | "domains"
            | "templates"
            | "versions"
            | "api-keys"
            | "files"
            | "exports"
            | "contacts"
            | "notes"
            | "tags"
            | "pipelines"
            | "stages"
            | "deals"
            | "services"
            | "staff"
            | "time-off"
            | "appointments"
            | "webhooks"
            | "leads"
            | "bookings"
            | "signup"
    )
}

/// The errors every operation may answer, each in the error shape.
const ERRORS: [(u16, &str); 12] = [
    (400, "Bad input: a malformed body, parameter or header"),
    (401, "No token, or an invalid or ended one"),
    (403, "Not allowed: a missing permission, another tenant's host, a disabled feature"),
    (404, "Unknown, or another tenant's"),
    (405, "The path exists, but not with this method"),
    (409, "Conflicts with the current state"),
    (413, "The body is too large"),
    (415, "The body's content type is not accepted"),
    (422, "A field is invalid"),
    (429, "Over a rate limit or a plan's quota"),
    (500, "A bug or an outage; the body names the request id of its log line"),
    (502, "An upstream (the DNS resolver) failed"),
];

pub fn document(version: &str) -> Value {
    let mut paths = Map::new();
    for (method, path) in ROUTES {
        let item = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        let mut responses = Map::new();
        for (status, body) in success(method, path) {
            let mut r = body;
            r["description"] = json!(status_text(status));
            responses.insert(status.to_string(), r);
        }
        for (status, _) in ERRORS {
            // Outside /api a 404 is a plain HTML page, for browsers.
            let name =
                if status == 404 && !path.starts_with("/api/") { "E404Page".to_string() } else { format!("E{status}") };
            responses.insert(status.to_string(), json!({"$ref": format!("#/components/responses/{name}")}));
        }
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let (schema, example) = param(name);
                let mut p = json!({"name": name, "in": "path", "required": true, "schema": schema});
                if let Some(e) = example {
                    p["example"] = json!(e);
                }
                p
            })
            .collect();
        let mut op = json!({
            "operationId": operation_id(method, path),
            "tags": [tag(path)],
            "responses": responses,
            "security": security(method, path),
        });
        let mut params = params;
        if *method == "GET" && is_list(path) {
            params.push(json!({"name": "limit", "in": "query", "required": false,
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}}));
            params.push(json!({"name": "cursor", "in": "query", "required": false,
                "schema": {"type": "string", "maxLength": 128},
                "description": "The `next_cursor` of the previous page."}));
        }
        if !params.is_empty() {
            op["parameters"] = json!(params);
        }
        if let Some(body) = request_body(method, path) {
            op["requestBody"] = body;
        }
        item[method.to_ascii_lowercase()] = op;
    }
    let mut responses: Map<String, Value> = ERRORS
        .iter()
        .map(|(status, text)| {
            (
                format!("E{status}"),
                json!({"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            )
        })
        .collect();
    responses.insert(
        "E404Page".into(),
        json!({"description": "Nothing at this address (an HTML page)", "content": {"text/html": {"schema": {"type": "string"}}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Gatehouse API", "version": version,
            "description": "The management API, the widget API and the sessions of Gatehouse. See README.md, \"API\"."},
        "servers": [{"url": "http://localhost:8787", "description": "wrangler dev"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "An access token from POST /api/auth/login, or an API key (gh_live_...)."},
                "publishableKey": {"type": "apiKey", "in": "query", "name": "key",
                    "description": "A client's publishable key (pk_...); the Origin header must be one of its verified domains."},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                    "required": ["code", "message"], "properties": {"code": {"type": "string"},
                    "message": {"type": "string"}, "request_id": {"type": "string"}}}}},
                "Page": {"type": "object", "required": ["items", "next_cursor"], "properties": {
                    "items": {"type": "array", "items": {"type": "object"}},
                    "next_cursor": {"type": ["string", "null"]}}},
                "Object": {"type": "object"},
                "Client": {"type": "object", "required": ["id", "agency_id", "name", "slug", "status", "effective_status", "plan", "publishable_key", "test_mode", "time_zone", "created_at"],
                    "properties": {"id": {"type": "string"}, "agency_id": {"type": "string"}, "name": {"type": "string"},
                    "slug": {"type": "string"}, "status": {"type": "string"}, "effective_status": {"type": "string"},
                    "plan": {"type": "string"}, "publishable_key": {"type": "string"}, "test_mode": {"type": "boolean"},
                    "time_zone": {"type": "string"}, "email": {"type": ["string", "null"]}, "created_at": {"type": "integer"}}},
                "Agency": {"type": "object", "required": ["id", "name", "slug", "status", "plan", "portal_host", "require_mfa"],
                    "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "slug": {"type": "string"},
                    "status": {"type": "string"}, "plan": {"type": "string"}, "portal_host": {"type": "string"},
                    "require_mfa": {"type": "boolean"}}},
                "Domain": {"type": "object", "required": ["id", "domain", "purpose", "status", "verification"],
                    "properties": {"id": {"type": "string"}, "domain": {"type": "string"}, "purpose": {"enum": ["widget", "portal", "both"]},
                    "status": {"enum": ["pending", "verified", "failed", "lapsed"]}, "status_reason": {"type": ["string", "null"]},
                    "verification": {"type": "object", "required": ["type", "name", "value"], "properties": {"type": {"const": "TXT"},
                    "name": {"type": "string"}, "value": {"type": "string"}}}}},
                "Contact": {"type": "object", "required": ["id", "client_id", "name", "source", "created_at", "tags"],
                    "properties": {"id": {"type": "string"}, "client_id": {"type": "string"}, "name": {"type": "string"},
                    "email": {"type": ["string", "null"]}, "phone": {"type": ["string", "null"]}, "source": {"type": "string"},
                    "created_at": {"type": "integer"}, "tags": {"type": "array"}}},
                "Me": {"type": "object", "required": ["user", "memberships", "context"], "properties": {
                    "user": {"type": "object", "required": ["id", "email"]}, "memberships": {"type": "array"},
                    "context": {"type": "object", "required": ["tenant", "scope", "role", "permissions"]}}},
                "Health": {"type": "object", "required": ["status", "version", "schema_version"], "properties": {
                    "status": {"const": "ok"}, "version": {"type": "string"}, "schema_version": {"type": ["integer", "null"]}}},
            },
            "responses": responses,
        },
    })
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No content",
        206 => "Partial content",
        304 => "Not modified",
        _ => "Answer",
    }
}

fn tag(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty() && !s.starts_with('{')).collect();
    match segs.as_slice() {
        ["api", "clients", rest, ..] | ["api", "agencies", rest, ..] => rest.to_string(),
        ["api", first, ..] => first.to_string(),
        [first, ..] => first.to_string(),
        [] => "root".into(),
    }
}

fn operation_id(method: &str, path: &str) -> String {
    let mut out = method.to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('_');
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        out.extend(seg.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }));
    }
    out
}

/// A JSON body, where the route takes one.
fn request_body(method: &str, path: &str) -> Option<Value> {
    if !matches!(method, "POST" | "PUT" | "PATCH") {
        return None;
    }
    if path.ends_with("/files") || path.ends_with("/logo") || path.ends_with("/favicon") {
        return Some(
            json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}),
        );
    }
    let schema = body_schema(method, path).unwrap_or_else(|| json!({"type": "object"}));
    Some(json!({"content": {"application/json": {"schema": schema}}}))
}

/// The bodies of the routes a caller uses most, so generated requests also reach their success
/// paths; the rest are described as objects, and refuse what they do not take with 400 or 422.
fn body_schema(method: &str, path: &str) -> Option<Value> {
    let text = |max: u32| json!({"type": "string", "minLength": 1, "maxLength": max});
    let obj = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required});
    Some(match (method, path) {
        ("POST", "/api/auth/login") => obj(
            json!({"email": {"type": "string", "format": "email"}, "password": text(200), "tenant": {"type": "string"}}),
            &["email", "password"],
        ),
        ("POST", "/api/auth/switch") => obj(json!({"tenant": {"type": "string"}}), &["tenant"]),
        ("POST", "/api/clients") => obj(
            json!({"name": text(120), "slug": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$"}}),
            &["name", "slug"],
        ),
        ("POST", "/api/clients/{client_id}/contacts") => obj(
            json!({"name": text(200), "email": {"type": "string", "format": "email"}, "phone": {"type": "string", "maxLength": 40}}),
            &["name"],
        ),
        ("PATCH", "/api/clients/{client_id}/contacts/{contact_id}") => {
            obj(json!({"name": text(200), "email": {"type": "string", "format": "email"}}), &[])
        }
        ("POST", "/api/clients/{client_id}/tags") => {
            obj(json!({"name": text(60), "color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"}}), &["name"])
        }
        ("POST", "/api/clients/{client_id}/pipelines") => obj(
            json!({"name": text(120), "stages": {"type": "array", "items": text(60), "minItems": 1, "maxItems": 10}}),
            &["name", "stages"],
        ),
        ("POST", "/api/clients/{client_id}/deals") => obj(
            json!({"title": text(200), "pipeline_id": {"type": "string"}, "value_minor": {"type": "integer", "minimum": 0}, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}),
            &["title"],
        ),
        ("POST", "/api/clients/{client_id}/services") => obj(
            json!({"name": text(120), "duration_min": {"type": "integer", "minimum": 5, "maximum": 480}}),
            &["name", "duration_min"],
        ),
        ("POST", "/api/clients/{client_id}/domains") => {
            obj(json!({"domain": text(253), "purpose": {"enum": ["widget", "portal", "both"]}}), &["domain", "purpose"])
        }
        ("POST", "/api/clients/{client_id}/domains/check") => obj(json!({"origin": text(300)}), &["origin"]),
        ("POST", "/api/agencies/{agency_id}/domains") => obj(json!({"domain": text(253)}), &["domain"]),
        ("POST", "/api/clients/{client_id}/webhooks") => obj(
            json!({"url": {"type": "string", "format": "uri"}, "event_types": {"type": "array", "items": {"type": "string"}}}),
            &["url", "event_types"],
        ),
        ("POST", "/api/agencies/{agency_id}/templates") => {
            obj(json!({"name": text(120), "spec": {"type": "object"}}), &["name", "spec"])
        }
        ("PUT", "/api/clients/{client_id}/branding" | "/api/agencies/{agency_id}/branding") => obj(
            json!({"primary_color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"}, "tagline": {"type": "string", "maxLength": 140}}),
            &[],
        ),
        _ => return None,
    })
}
