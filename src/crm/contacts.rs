//! Contacts: the leads the widget collects and the CRM's people. Client-scoped.

use serde::Serialize;
use serde_json::json;

use crate::access::audit::{self, Event};
use crate::access::events::{self, Kind};
use crate::access::plans::{self, Metric};
use crate::access::roles::{Permission, Principal};
use crate::access::store::ClientRow;
use crate::access::{self, ClientScope};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{email_field, json_body, page_params, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ids::looks_like_id;
use crate::platform::ports::{Database, Param, Platform, Stmt};
use crate::platform::Ctx;

/// Refused inside the statement once the client holds its plan's number of contacts (?10).
pub const INSERT: &str =
    "INSERT INTO contacts (id, client_id, name, email, phone, message, source, origin, created_at, \
    updated_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9 \
    WHERE (SELECT count(*) FROM contacts WHERE client_id = ?2) < ?10";
/// A widget lead: refused inside the statement once the client's daily cap (?10; the counter is
/// kept by a trigger on this insert) or its contacts quota (?12) is reached, and a no-op for a
/// submission id already seen.
pub const INSERT_WIDGET: &str = "INSERT INTO contacts (id, client_id, name, email, phone, message, source, origin, \
    created_at, updated_at, submission_id, external_user_id) SELECT ?1, ?2, ?3, ?4, ?5, ?6, 'widget', ?7, ?8, ?8, ?9, ?11 \
    WHERE coalesce((SELECT count FROM usage_counters WHERE tenant_id = ?2 AND metric = 'widget_submissions' \
    AND period = CAST(?8 / 86400000 AS INTEGER)), 0) < ?10 \
    AND (SELECT count(*) FROM contacts WHERE client_id = ?2) < ?12 \
    ON CONFLICT (client_id, submission_id) DO NOTHING";
pub const COUNT: &str = "SELECT count(*) AS n FROM contacts WHERE client_id = ?1";
pub const BY_SUBMISSION: &str = "SELECT id FROM contacts WHERE client_id = ?1 AND submission_id = ?2";
/// The list, narrowed by a name-or-email prefix (?4, a LIKE pattern, or NULL) and a tag (?5, or
/// NULL), each contact with its tags.
/// A page of contacts as the response body, built by SQLite: `{"items": [...], "next_cursor"}`,
/// each item the same object `Contact` serializes to (`tests/api/crm.rs` holds them equal). The
/// edge hands the text over as it is: no row is decoded, nothing serialized again.
pub const PAGE: &str = "WITH page AS (SELECT c.id, json_object('id', c.id, 'client_id', c.client_id, \
    'name', c.name, 'email', c.email, 'phone', c.phone, 'message', c.message, 'source', c.source, 'origin', c.origin, \
    'external_user_id', c.external_user_id, 'created_at', c.created_at, 'updated_at', c.updated_at, 'tags', \
    json((SELECT json_group_array(json_object('id', t.id, 'name', t.name, 'color', t.color)) FROM (SELECT t.id, \
    t.name, t.color FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id AND t.client_id = ct.client_id \
    WHERE ct.client_id = c.client_id AND ct.contact_id = c.id ORDER BY t.name COLLATE NOCASE) t))) AS item \
    FROM contacts c WHERE c.client_id = ?1 AND c.id > ?2 \
    AND (?4 IS NULL OR c.name LIKE ?4 ESCAPE '\\' OR c.email LIKE ?4 ESCAPE '\\') \
    AND (?5 IS NULL OR EXISTS (SELECT 1 FROM contact_tags ct WHERE ct.client_id = ?1 AND ct.tag_id = ?5 \
    AND ct.contact_id = c.id)) ORDER BY c.id LIMIT ?3) \
    SELECT json_object('items', json_group_array(json(item) ORDER BY id), 'next_cursor', \
    CASE WHEN count(*) = ?3 THEN max(id) END) AS body FROM page";
pub const UPDATE: &str = "UPDATE contacts SET name = ?3, email = ?4, phone = ?5, message = ?6, updated_at = ?7 \
    WHERE client_id = ?1 AND id = ?2";
/// Attaches a tag, only when both the contact and the tag are this client's; a repeat is a no-op.
pub const ATTACH_TAG: &str = "INSERT INTO contact_tags (client_id, contact_id, tag_id, created_at) \
    SELECT c.client_id, c.id, t.id, ?4 FROM contacts c JOIN tags t ON t.client_id = c.client_id \
    WHERE c.client_id = ?1 AND c.id = ?2 AND t.id = ?3 ON CONFLICT DO NOTHING";
pub const DETACH_TAG: &str = "DELETE FROM contact_tags WHERE client_id = ?1 AND contact_id = ?2 AND tag_id = ?3";
/// Whether a contact and a tag both exist in this client (for a 404 that names which is missing).
pub const CONTACT_AND_TAG: &str =
    "SELECT (SELECT count(*) FROM contacts WHERE client_id = ?1 AND id = ?2) AS contact, \
    (SELECT count(*) FROM tags WHERE client_id = ?1 AND id = ?3) AS tag";
pub const SELECT_ONE: &str =
    "SELECT id, client_id, name, email, phone, message, source, origin, external_user_id, created_at, updated_at, \
    (SELECT json_group_array(json_object('id', t.id, 'name', t.name, 'color', t.color)) FROM (SELECT t.id, t.name, \
    t.color FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id AND t.client_id = ct.client_id \
    WHERE ct.client_id = c.client_id AND ct.contact_id = c.id ORDER BY t.name COLLATE NOCASE) t) AS tags FROM contacts c WHERE client_id = ?1 AND id = ?2";
pub const DELETE: &str = "DELETE FROM contacts WHERE client_id = ?1 AND id = ?2";
/// A contact's notes go with it; its tags and deals' links follow by foreign key.
pub const DELETE_NOTES: &str =
    "DELETE FROM notes WHERE client_id = ?1 AND subject_type = 'contact' AND subject_id = ?2";

crate::platform::body::body! {
    pub struct NewContact {
        pub name: String,
        pub email: Option<String>,
        pub phone: Option<String>,
        pub message: Option<String>,
    }
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
    /// The contact as an event carries it.
    fn event_data(&self, id: &str, source: &str) -> serde_json::Value {
        json!({"contact": {"id": id, "name": self.name, "email": self.email, "phone": self.phone, "source": source}})
    }

    /// The leading parameters both inserts share: id, client, name, email, phone, message.
    fn params(self, id: &str, client_id: &str) -> Vec<Param> {
        vec![id.into(), client_id.into(), self.name.into(), self.email.into(), self.phone.into(), self.message.into()]
    }
}

/// Validates and stores a contact, within the client's contacts quota; the caller has already
/// established the tenant.
pub async fn insert<P: Platform>(
    ctx: &Ctx<'_, P>,
    actor: &audit::Actor,
    client: &ClientScope,
    row: &ClientRow,
    c: NewContact,
) -> ApiResult<String> {
    let id = crate::platform::ids::new_id("con")?;
    let c = clean(c)?;
    let now = ctx.p.now_ms();
    let limit = plans::limit(row, Metric::Contacts);
    let event_data = c.event_data(&id, "api");
    let mut params = c.params(&id, client.id());
    params.extend(["api".into(), Param::Null, Param::Int(now), Param::Int(limit)]);
    let mut stmts =
        vec![Stmt::new(INSERT, params), events::record_if_changed(ctx, client.id(), Kind::ContactCreated, event_data)?];
    stmts.extend(plans::crossing(actor, client.id(), Metric::Contacts, limit, &id, 1, now)?);
    if ctx.p.batch(&stmts).await?.first().copied().unwrap_or(0) == 0 {
        return Err(plans::exceeded(Metric::Contacts, limit));
    }
    Ok(id)
}

/// What became of a widget submission.
#[derive(Debug, PartialEq, Eq)]
pub enum Submitted {
    Created(String),
    /// The same submission id arrived before: the lead it made.
    Replayed(String),
}

/// Who submits a widget lead, and the client's plan and limit overrides as the gate caches them.
pub struct Intake<'a> {
    pub actor: &'a audit::Actor,
    pub plan: &'a str,
    pub limits: &'a str,
}

/// Stores a widget lead under the client's daily cap and contacts quota, once per submission id.
pub async fn insert_widget<P: Platform>(
    ctx: &Ctx<'_, P>,
    client: &ClientScope,
    quota: Intake<'_>,
    c: NewContact,
    origin: &str,
    submission_id: Option<&str>,
    external_user_id: Option<&str>,
) -> ApiResult<Submitted> {
    let id = crate::platform::ids::new_id("con")?;
    let c = clean(c)?;
    // A new lead is also a new contact: both events, each only if the insert happened.
    let mut lead = c.event_data(&id, "widget");
    lead["origin"] = origin.into();
    lead["message"] = c.message.clone().into();
    lead["external_user_id"] = external_user_id.into();
    let lead_event = events::record_if_changed(ctx, client.id(), Kind::LeadReceived, lead)?;
    let contact_event = events::record_if_changed(ctx, client.id(), Kind::ContactCreated, c.event_data(&id, "widget"))?;
    let now = ctx.p.now_ms();
    let daily = plans::limit_of(quota.plan, quota.limits, Metric::WidgetSubmissionsPerDay);
    let contacts = plans::limit_of(quota.plan, quota.limits, Metric::Contacts);
    let mut params = c.params(&id, client.id());
    params.extend([
        origin.into(),
        Param::Int(now),
        submission_id.into(),
        Param::Int(daily),
        external_user_id.into(),
        Param::Int(contacts),
    ]);
    let mut stmts = vec![Stmt::new(INSERT_WIDGET, params), lead_event, contact_event];
    stmts.extend(plans::crossing(quota.actor, client.id(), Metric::Contacts, contacts, &id, 1, now)?);
    stmts.extend(plans::crossing(quota.actor, client.id(), Metric::WidgetSubmissionsPerDay, daily, &id, 1, now)?);
    if ctx.p.batch_changed(&stmts).await? {
        return Ok(Submitted::Created(id));
    }
    if let Some(sub) = submission_id {
        let rows = ctx.p.query(BY_SUBMISSION, &[client.id().into(), sub.into()]).await?;
        if let Some(existing) = rows.first().and_then(|r| crate::platform::ports::col_str(r, "id")) {
            return Ok(Submitted::Replayed(existing));
        }
    }
    let held = ctx.p.query(COUNT, &[client.id().into()]).await?;
    if held.first().and_then(|r| crate::platform::ports::col_i64(r, "n")).unwrap_or(0) >= contacts {
        return Err(plans::exceeded(Metric::Contacts, contacts));
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

crate::platform::rows::row! {
    /// A contact as the API shows it.
    #[derive(Debug, Serialize)]
    pub struct Contact {
        pub id: String,
        pub client_id: String,
        pub name: String,
        pub email: Option<String>,
        pub phone: Option<String>,
        pub message: Option<String>,
        pub source: String,
        pub origin: Option<String>,
        /// The visitor's id in the client's own system, from a verified signed identity.
        pub external_user_id: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        /// Read with the contact, as the JSON array the query builds.
        pub tags: Vec<TagRef>,
    }
}

/// The tags column: a JSON array as text (NULL or absent: none).
impl crate::platform::rows::Column for Vec<TagRef> {
    fn column(value: Option<serde_json::Value>, name: &str) -> Result<Self, crate::platform::error::StoreError> {
        match Option::<String>::column(value, name)? {
            None => Ok(Vec::new()),
            Some(t) => crate::platform::rows::json_text(&t, name),
        }
    }
}

crate::platform::body::body! {
    /// A tag on a contact, as the contact's `tags` column lists it.
    #[derive(Debug, Serialize, Default)]
    pub struct TagRef {
        pub id: String,
        pub name: String,
        pub color: Option<String>,
    }
}

async fn one(db: &impl Database, client: &ClientScope, id: &str) -> ApiResult<Option<Contact>> {
    Ok(db.query_first(SELECT_ONE, &[client.id().into(), id.into()]).await?)
}

/// A LIKE pattern matching values that start with `q`, with LIKE's wildcards escaped.
fn prefix_pattern(q: &str) -> ApiResult<String> {
    let q = q.trim();
    if q.is_empty() || q.chars().count() > 100 || q.chars().any(char::is_control) {
        return Err(ApiError::bad_request("invalid_query", "q must be 1-100 printable characters"));
    }
    let mut p = String::with_capacity(q.len() + 1);
    for ch in q.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    Ok(p)
}

/// `GET /api/clients/{id}/contacts?q=&tag=&cursor=&limit=`: `q` matches the start of the name or
/// the email, case-insensitively; `tag` keeps contacts carrying that tag.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsRead).await?;
    let (cursor, limit) = page_params(req)?;
    let q = req.query_param("q").map(|q| prefix_pattern(&q)).transpose()?;
    let tag = req.query_param("tag");
    if tag.as_deref().is_some_and(|t| !looks_like_id(t, "tag")) {
        return Err(ApiError::bad_request("invalid_tag", "tag must be a tag id"));
    }
    let params = [client.id().into(), cursor.into(), Param::Int(limit), q.into(), tag.into()];
    let body = ctx.p.query_text(PAGE, &params).await?;
    let body = body.ok_or_else(|| ApiError::Internal("the contacts page came back empty".into()))?;
    Ok(Response::json_text(200, body))
}

crate::platform::body::body! {
    struct ContactPatch {
        name: Option<String>,
        email: Option<Option<String>>,
        phone: Option<Option<String>>,
        message: Option<Option<String>>,
    }
}

/// `PATCH /api/clients/{id}/contacts/{contact_id}`: absent fields stay, `null` clears.
pub async fn update<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsWrite).await?;
    let patch: ContactPatch = json_body(req, &["client_id", "source", "id", "origin", "tags"])?;
    let current = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let changed: Vec<&str> = [
        ("name", patch.name.is_some()),
        ("email", patch.email.is_some()),
        ("phone", patch.phone.is_some()),
        ("message", patch.message.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(f, _)| *f)
    .collect();
    let merged = NewContact {
        name: patch.name.unwrap_or(current.name),
        email: patch.email.unwrap_or(current.email),
        phone: patch.phone.unwrap_or(current.phone),
        message: patch.message.unwrap_or(current.message),
    };
    let c = clean(merged)?;
    let mut data = c.event_data(id, &current.source);
    data["changed"] = json!(changed);
    let event = events::record_if_changed(ctx, client.id(), Kind::ContactUpdated, data)?;
    let stmts = [
        Stmt::new(
            UPDATE,
            vec![
                client.id().into(),
                id.into(),
                c.name.into(),
                c.email.into(),
                c.phone.into(),
                c.message.into(),
                Param::Int(ctx.p.now_ms()),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client.id(),
                action: "contact.updated",
                target_type: "contact",
                target_id: Some(id),
                metadata: json!({"fields": changed}),
            },
        )?,
        event,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::NotFound);
    }
    let updated = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &updated))
}

/// `PUT /api/clients/{id}/contacts/{contact_id}/tags/{tag_id}`: idempotent.
pub async fn tag<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
    tag_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsWrite).await?;
    let now = Param::Int(ctx.p.now_ms());
    let attach = Stmt::new(ATTACH_TAG, vec![client.id().into(), id.into(), tag_id.into(), now]);
    let audit = tag_event(ctx, req, who, &client, id, tag_id, "contact.tagged")?;
    if !ctx.p.batch_changed(&[attach, audit]).await? {
        require_contact_and_tag(ctx.p, &client, id, tag_id).await?;
    }
    Ok(Response::new(204))
}

/// `DELETE /api/clients/{id}/contacts/{contact_id}/tags/{tag_id}`: idempotent.
pub async fn untag<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
    tag_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsWrite).await?;
    let detach = Stmt::new(DETACH_TAG, vec![client.id().into(), id.into(), tag_id.into()]);
    let audit = tag_event(ctx, req, who, &client, id, tag_id, "contact.untagged")?;
    if !ctx.p.batch_changed(&[detach, audit]).await? {
        require_contact_and_tag(ctx.p, &client, id, tag_id).await?;
    }
    Ok(Response::new(204))
}

fn tag_event<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client: &ClientScope,
    id: &str,
    tag_id: &str,
    action: &str,
) -> ApiResult<Stmt> {
    let event = Event {
        tenant_id: client.id(),
        action,
        target_type: "contact",
        target_id: Some(id),
        metadata: json!({"tag_id": tag_id}),
    };
    audit::entry_if_changed(ctx, req, who, event)
}

/// A no-op tag change is fine when both exist in this client; otherwise it is a 404.
async fn require_contact_and_tag(db: &impl Database, client: &ClientScope, id: &str, tag_id: &str) -> ApiResult<()> {
    let rows = db.query(CONTACT_AND_TAG, &[client.id().into(), id.into(), tag_id.into()]).await?;
    let n = |k: &str| rows.first().and_then(|r| crate::platform::ports::col_i64(r, k)).unwrap_or(0);
    if n("contact") == 0 || n("tag") == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, row) = access::client(ctx, req, who, client_id, Permission::ContactsWrite).await?;
    let body: NewContact = json_body(req, &["client_id", "source", "id", "origin"])?;
    let id = insert(ctx, &audit::actor(req, Some(who)), &client, &row, body).await?;
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
    let deleted = ctx
        .p
        .batch_changed(&[
            Stmt::new(DELETE, vec![client.id().into(), id.into()]),
            audit,
            events::record_if_changed(ctx, client.id(), Kind::ContactDeleted, json!({"contact": {"id": id}}))?,
            Stmt::new(DELETE_NOTES, vec![client.id().into(), id.into()]),
        ])
        .await?;
    if !deleted {
        return Err(ApiError::NotFound);
    }
    Ok(Response::new(204))
}
