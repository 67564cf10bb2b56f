//! Contacts: the leads the widget collects and the CRM's people. Client-scoped.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{email_field, json_body, page_params, page_response, text_field, App};
use crate::audit::Event;
use crate::error::{ApiError, ApiResult};
use crate::http::{Method, Request, Response};
use crate::ports::{Param, Platform, Stmt};
use crate::tenancy::{Permission, Principal};

pub const INSERT: &str =
    "INSERT INTO contacts (id, client_id, name, email, phone, message, source, origin, created_at, \
    updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)";
pub const LIST: &str = "SELECT id, client_id, name, email, phone, message, source, origin, created_at, updated_at \
    FROM contacts WHERE client_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
pub const SELECT_ONE: &str =
    "SELECT id, client_id, name, email, phone, message, source, origin, created_at, updated_at \
    FROM contacts WHERE client_id = ?1 AND id = ?2";
pub const DELETE: &str = "DELETE FROM contacts WHERE client_id = ?1 AND id = ?2";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Validates and stores a contact; the caller has already established the tenant.
pub async fn insert<P: Platform>(
    app: &App<'_, P>,
    client_id: &str,
    c: NewContact,
    source: &str,
    origin: Option<&str>,
) -> ApiResult<String> {
    let name = text_field("name", &c.name, 120)?;
    let email = c.email.as_deref().filter(|e| !e.trim().is_empty()).map(email_field).transpose()?;
    let phone = c.phone.as_deref().filter(|p| !p.trim().is_empty()).map(|p| text_field("phone", p, 40)).transpose()?;
    let message = match c.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) if m.chars().count() > 2000 => {
            return Err(ApiError::invalid("invalid_field", "`message` is limited to 2000 characters"))
        }
        Some(m) => Some(m.replace('\0', "")),
        None => None,
    };
    let id = crate::ids::new_id("con")?;
    app.p
        .execute(
            INSERT,
            &[
                id.as_str().into(),
                client_id.into(),
                name.into(),
                email.into(),
                phone.into(),
                message.into(),
                source.into(),
                origin.into(),
                Param::Int(app.p.now_ms()),
            ],
        )
        .await?;
    Ok(id)
}

pub async fn route<P: Platform>(
    app: &App<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    tail: &[&str],
) -> ApiResult<Response> {
    let perm = if req.method == Method::Get { Permission::ContactsRead } else { Permission::ContactsWrite };
    let client = app.client_for(req, who, client_id, perm).await?;
    match (req.method, tail) {
        (Method::Get, []) => {
            let (cursor, limit) = page_params(req)?;
            let rows = app.p.query(LIST, &[client.id.into(), cursor.into(), Param::Int(limit)]).await?;
            Ok(page_response(rows.into_iter().map(Value::Object).collect(), limit, |v| {
                v["id"].as_str().map(String::from)
            }))
        }
        (Method::Post, []) => {
            let body: NewContact = json_body(req, &["client_id", "source", "id", "origin"])?;
            let id = insert(app, &client.id, body, "api", None).await?;
            let row = app.p.query(SELECT_ONE, &[client.id.as_str().into(), id.as_str().into()]).await?;
            Ok(Response::json(201, &row.into_iter().next().map(Value::Object).unwrap_or(json!({"id": id}))))
        }
        (Method::Get, [id]) => {
            let row = app.p.query(SELECT_ONE, &[client.id.into(), (*id).into()]).await?;
            row.into_iter().next().map(|r| Response::json(200, &Value::Object(r))).ok_or(ApiError::NotFound)
        }
        (Method::Delete, [id]) => {
            let audit = app.audit(
                req,
                Some(who),
                Event {
                    tenant_id: &client.id,
                    action: "contact.deleted",
                    target_type: "contact",
                    target_id: Some(id),
                    metadata: json!({}),
                },
            )?;
            let changed =
                app.p.batch(&[Stmt::new(DELETE, vec![client.id.as_str().into(), (*id).into()]), audit]).await?;
            if changed.first().copied().unwrap_or(0) == 0 {
                return Err(ApiError::NotFound);
            }
            Ok(Response::new(204))
        }
        (_, [] | [_]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}
