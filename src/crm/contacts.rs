//! Contacts: the leads the widget collects and the CRM's people. Client-scoped.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::access::audit::{self, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, ClientScope};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{email_field, json_body, page_params, page_response, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ports::{decode, decode_all, Database, Param, Platform, Stmt};
use crate::platform::Ctx;

pub const INSERT: &str =
    "INSERT INTO contacts (id, client_id, name, email, phone, message, source, origin, created_at, \
    updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)";
/// A widget lead: refused inside the statement once the client's daily cap is reached (the
/// counter is kept by a trigger on this insert), and a no-op for a submission id already seen.
pub const INSERT_WIDGET: &str = "INSERT INTO contacts (id, client_id, name, email, phone, message, source, origin, \
    created_at, updated_at, submission_id) SELECT ?1, ?2, ?3, ?4, ?5, ?6, 'widget', ?7, ?8, ?8, ?9 \
    WHERE coalesce((SELECT count FROM usage_counters WHERE tenant_id = ?2 AND metric = 'widget_submissions' \
    AND period = CAST(?8 / 86400000 AS INTEGER)), 0) < ?10 \
    ON CONFLICT (client_id, submission_id) DO NOTHING";
pub const BY_SUBMISSION: &str = "SELECT id FROM contacts WHERE client_id = ?1 AND submission_id = ?2";
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

/// A contact's fields, validated.
struct Clean {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    message: Option<String>,
}

fn clean(c: NewContact) -> ApiResult<Clean> {
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
    Ok(Clean { name, email, phone, message })
}

impl Clean {
    /// The leading parameters both inserts share: id, client, name, email, phone, message.
    fn params(self, id: &str, client_id: &str) -> Vec<Param> {
        vec![id.into(), client_id.into(), self.name.into(), self.email.into(), self.phone.into(), self.message.into()]
    }
}

/// Validates and stores a contact; the caller has already established the tenant.
pub async fn insert<P: Platform>(ctx: &Ctx<'_, P>, client: &ClientScope, c: NewContact) -> ApiResult<String> {
    let id = crate::platform::ids::new_id("con")?;
    let mut params = clean(c)?.params(&id, client.id());
    params.extend(["api".into(), Param::Null, Param::Int(ctx.p.now_ms())]);
    ctx.p.execute(INSERT, &params).await?;
    Ok(id)
}

/// What became of a widget submission.
#[derive(Debug, PartialEq, Eq)]
pub enum Submitted {
    Created(String),
    /// The same submission id arrived before: the lead it made.
    Replayed(String),
}

/// Stores a widget lead under the client's daily cap, once per submission id.
pub async fn insert_widget<P: Platform>(
    ctx: &Ctx<'_, P>,
    client: &ClientScope,
    c: NewContact,
    origin: &str,
    submission_id: Option<&str>,
) -> ApiResult<Submitted> {
    let id = crate::platform::ids::new_id("con")?;
    let mut params = clean(c)?.params(&id, client.id());
    params.extend([
        origin.into(),
        Param::Int(ctx.p.now_ms()),
        submission_id.into(),
        Param::Int(ctx.cfg.widget_daily_cap),
    ]);
    let inserted = ctx.p.execute(INSERT_WIDGET, &params).await?;
    if inserted > 0 {
        return Ok(Submitted::Created(id));
    }
    if let Some(sub) = submission_id {
        let rows = ctx.p.query(BY_SUBMISSION, &[client.id().into(), sub.into()]).await?;
        if let Some(existing) = rows.first().and_then(|r| crate::platform::ports::col_str(r, "id")) {
            return Ok(Submitted::Replayed(existing));
        }
    }
    Err(ApiError::TooMany(
        "daily_limit_reached",
        "this site has received all the submissions it accepts today; try again tomorrow".into(),
        Some(seconds_to_next_utc_day(ctx.p.now_ms())),
    ))
}

fn seconds_to_next_utc_day(now_ms: i64) -> u64 {
    const DAY_MS: i64 = 86_400_000;
    let next = (now_ms.div_euclid(DAY_MS) + 1) * DAY_MS;
    ((next - now_ms + 999) / 1000).max(1) as u64
}

/// A contact as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub message: Option<String>,
    pub source: String,
    pub origin: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

async fn one(db: &impl Database, client: &ClientScope, id: &str) -> ApiResult<Option<Contact>> {
    let row = db.query(SELECT_ONE, &[client.id().into(), id.into()]).await?.into_iter().next();
    Ok(row.map(decode).transpose()?)
}

pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsRead).await?;
    let (cursor, limit) = page_params(req)?;
    let rows: Vec<Contact> =
        decode_all(ctx.p.query(LIST, &[client.id().into(), cursor.into(), Param::Int(limit)]).await?)?;
    Ok(page_response(&rows, limit, |c| Some(c.id.clone())))
}

pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsWrite).await?;
    let body: NewContact = json_body(req, &["client_id", "source", "id", "origin"])?;
    let id = insert(ctx, &client, body).await?;
    let created = one(ctx.p, &client, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(201, &created))
}

pub async fn get<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsRead).await?;
    let contact = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &contact))
}

pub async fn delete<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsWrite).await?;
    let audit = audit::entry_if_changed(
        ctx,
        req,
        who,
        Event {
            tenant_id: client.id(),
            action: "contact.deleted",
            target_type: "contact",
            target_id: Some(id),
            metadata: json!({}),
        },
    )?;
    let changed = ctx.p.batch(&[Stmt::new(DELETE, vec![client.id().into(), id.into()]), audit]).await?;
    if changed.first().copied().unwrap_or(0) == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(Response::new(204))
}
