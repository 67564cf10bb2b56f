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

/// A path parameter's schema and an example from the demo data (`seed.rs` numbers its ids), by its
/// name, so generated requests also reach real rows.
fn param(name: &str) -> (Value, Option<&'static str>) {
    let id = |p: &str| id_schema(p);
    match name {
        "client_id" => (id("cli"), Some("cli_000000000000000000000001")),
        "agency_id" => (id("agy"), Some("agy_000000000000000000000001")),
        "contact_id" => (id("con"), Some("con_000000000000000000000002")),
        "deal_id" => (id("deal"), Some("deal_000000000000000000000001")),
        "pipeline_id" => (id("pipe"), Some("pipe_000000000000000000000001")),
        "stage_id" => (id("stage"), Some("stage_000000000000000000000002")),
        "tag_id" => (id("tag"), Some("tag_000000000000000000000001")),
        "note_id" => (id("note"), Some("note_000000000000000000000001")),
        "service_id" => (id("svc"), Some("svc_000000000000000000000001")),
        "staff_id" => (id("stf"), Some("stf_000000000000000000000001")),
        "appointment_id" => (id("apt"), Some("apt_000000000000000000000001")),
        "time_off_id" => (id("off"), None),
        "file_id" => (id("fil"), None),
        "domain_id" => (
            json!({"type": "string", "pattern": "^(dom|adm)_[0-9a-hjkmnp-tv-z]{24}$"}),
            Some("dom_000000000000000000000001"),
        ),
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

/// The errors every operation may answer, each in the error shape.
const ERRORS: [(u16, &str); 13] = [
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
    (503, "A Cloudflare binding the request needs (a rate limiter, a queue) did not answer"),
];

/// What each operation takes and answers: its query and header parameters, its body, its success
/// responses and the schemas they name, written by hand against the handlers. The contract run
/// (`tests/contract/run.mjs`) holds the Worker to it.
const OPERATIONS: &str = include_str!("operations.json");

/// Groups of operations, with what holds for all of them.
const TAGS: &[(&str, &str)] = &[
    (
        "widget",
        "The embeddable widget. Every request passes the domain gate first: the `key` query parameter \
         is the client's publishable key and the Origin header must be one of its verified widget \
         domains, compared exactly; any refusal is 403 `domain_not_authorized`, with no hint of why. \
         An OPTIONS preflight answers 204.",
    ),
    ("services", "Booking: a client's services. 403 `feature_disabled` while the client's booking flag is off."),
    ("staff", "Booking: staff, their services, weekly hours and time off. 403 `feature_disabled` while booking is off."),
    ("appointments", "Booking: appointments; overlapping ones for a staff member are refused inside the insert (409 `slot_taken`). 403 `feature_disabled` while booking is off."),
    ("availability", "Booking: free slots in the client's time zone. 403 `feature_disabled` while booking is off."),
];

/// One success response, from its entry in `operations.json`: `{"page": "Name"}` (a page of
/// Name), `{"ref": "Name"}`, `{"array": "Name"}`, `{"schema": {...}}`, `{"content": "type"}`
/// (a body that is not JSON) or `{"none": true}` (no body).
fn response(status: &str, entry: &Value) -> Result<Value, String> {
    let schema_ref = |name: &Value| json!({"$ref": format!("#/components/schemas/{}", name.as_str().unwrap_or(""))});
    let json_body = |schema: Value| json!({"content": {"application/json": {"schema": schema}}});
    let mut out = if let Some(name) = entry.get("page") {
        json_body(json!({"allOf": [{"$ref": "#/components/schemas/Page"},
            {"type": "object", "properties": {"items": {"type": "array", "items": schema_ref(name)}}}]}))
    } else if let Some(name) = entry.get("ref") {
        json_body(schema_ref(name))
    } else if let Some(name) = entry.get("array") {
        json_body(json!({"type": "array", "items": schema_ref(name)}))
    } else if let Some(schema) = entry.get("schema") {
        json_body(schema.clone())
    } else if let Some(kind) = entry.get("content").and_then(Value::as_str) {
        let schema = if kind.starts_with("text/") || kind.contains("javascript") {
            json!({"type": "string"})
        } else {
            json!({"type": "string", "format": "binary"})
        };
        json!({"content": {kind: {"schema": schema}}})
    } else if entry.get("none") == Some(&json!(true)) {
        json!({})
    } else {
        return Err(format!("response {status}: no page, ref, array, schema, content or none in {entry}"));
    };
    let text = entry.get("description").and_then(Value::as_str).unwrap_or(status_text(status));
    out["description"] = json!(text);
    Ok(out)
}

/// The document, or what keeps it from being whole: a route without its entry in
/// `operations.json`, an entry for no route, or a name no schema defines.
pub fn document(version: &str) -> Result<Value, String> {
    let described: Value = serde_json::from_str(OPERATIONS).map_err(|e| format!("operations.json: {e}"))?;
    let operations = described["operations"].as_object().ok_or("operations.json: no operations")?;
    let schemas = described["schemas"].as_object().ok_or("operations.json: no schemas")?;
    let mut paths = Map::new();
    for (method, path) in ROUTES {
        let key = format!("{method} {path}");
        let spec =
            operations.get(&key).ok_or_else(|| format!("{key} is routed but not described in operations.json"))?;
        let mut responses = Map::new();
        for (status, entry) in spec["responses"].as_object().ok_or_else(|| format!("{key}: no responses"))? {
            responses.insert(status.clone(), response(status, entry).map_err(|e| format!("{key}: {e}"))?);
        }
        for (status, _) in ERRORS {
            // Outside /api a 404 is a plain HTML page, for browsers.
            let name =
                if status == 404 && !path.starts_with("/api/") { "E404Page".to_string() } else { format!("E{status}") };
            responses
                .entry(status.to_string())
                .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
        }
        let mut params: Vec<Value> = path
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
        for p in spec["parameters"].as_array().into_iter().flatten() {
            let mut p = p.clone();
            if p.get("in").is_none() {
                p["in"] = json!("query");
            }
            params.push(p);
        }
        let mut op = json!({
            "operationId": operation_id(method, path),
            "tags": [tag(path)],
            "responses": responses,
            "security": security(method, path),
        });
        if let Some(text) = spec.get("description") {
            op["description"] = text.clone();
        }
        if !params.is_empty() {
            op["parameters"] = json!(params);
        }
        if let Some(body) = spec.get("body") {
            let required = spec.get("body_required").and_then(Value::as_bool).unwrap_or(true);
            let content: Map<String, Value> = match spec.get("body_types").and_then(Value::as_array) {
                Some(types) => {
                    types.iter().filter_map(Value::as_str).map(|t| (t.to_string(), json!({"schema": body}))).collect()
                }
                None => [("application/json".to_string(), json!({"schema": body}))].into_iter().collect(),
            };
            op["requestBody"] = json!({"required": required, "content": content});
        }
        paths.entry(path.to_string()).or_insert_with(|| json!({}))[method.to_ascii_lowercase()] = op;
    }
    if let Some(extra) = operations.keys().find(|k| !ROUTES.iter().any(|(m, p)| format!("{m} {p}") == **k)) {
        return Err(format!("operations.json describes {extra}, which no route answers"));
    }
    let mut components = schemas.clone();
    components.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
            "required": ["code", "message"], "properties": {"code": {"type": "string"},
            "message": {"type": "string"}, "request_id": {"type": "string"}}}}}),
    );
    components.insert(
        "Page".into(),
        json!({"type": "object", "required": ["items", "next_cursor"], "properties": {
            "items": {"type": "array"}, "next_cursor": {"type": ["string", "null"],
            "description": "Pass it back as `cursor` for the next page; null on the last."}}}),
    );
    let doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "Gatehouse API", "version": version,
            "description": "The management API, the widget API and the sessions of Gatehouse. See README.md, \"API\"."},
        "servers": [{"url": "http://localhost:8787", "description": "wrangler dev"}],
        "security": [{"bearerAuth": []}],
        "tags": TAGS.iter().map(|(name, text)| json!({"name": name, "description": text})).collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "An access token from POST /api/auth/login, or an API key (gh_live_...)."},
                "publishableKey": {"type": "apiKey", "in": "query", "name": "key",
                    "description": "A client's publishable key (pk_...); the Origin header must be one of its verified domains."},
            },
            "schemas": components,
            "responses": error_responses(),
        },
    });
    dangling_ref(&doc).map_or(Ok(doc), |name| Err(format!("{name} is referred to but not defined")))
}

fn error_responses() -> Map<String, Value> {
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
    responses
}

/// The first `$ref` that names nothing in the document.
fn dangling_ref(doc: &Value) -> Option<String> {
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    walk(doc, &mut refs);
    let resolves =
        |r: &str| r.strip_prefix("#/").is_some_and(|p| p.split('/').try_fold(doc, |at, seg| at.get(seg)).is_some());
    refs.into_iter().find(|r| !resolves(r)).map(str::to_string)
}

fn status_text(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "No content",
        "206" => "Partial content",
        "304" => "Not modified",
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
