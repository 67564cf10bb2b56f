//! Tags: a client's labels for its contacts. Names are unique per client, case-insensitively
//! (a unique index decides, so two creators racing for one name cannot both win).

use serde::Serialize;
use serde_json::json;

use crate::access::audit::{self, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, ClientScope};
use crate::platform::error::{ApiError, ApiResult, StoreError};
use crate::platform::extract::{json_body, page_params, page_response, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ids::new_id;
use crate::platform::ports::{Database, Param, Platform, Stmt};
use crate::platform::Ctx;

pub const LIST: &str = "SELECT id, client_id, name, color, created_at, updated_at FROM tags \
    WHERE client_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
pub const SELECT_ONE: &str =
    "SELECT id, client_id, name, color, created_at, updated_at FROM tags WHERE client_id = ?1 AND id = ?2";
pub const INSERT: &str = "INSERT INTO tags (id, client_id, name, color, created_at, updated_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
pub const UPDATE: &str = "UPDATE tags SET name = ?3, color = ?4, updated_at = ?5 WHERE client_id = ?1 AND id = ?2";
pub const DELETE: &str = "DELETE FROM tags WHERE client_id = ?1 AND id = ?2";

crate::platform::rows::row! {
    /// A tag as the API shows it.
    #[derive(Debug, Serialize)]
    pub struct Tag {
        pub id: String,
        pub client_id: String,
        pub name: String,
        pub color: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

crate::platform::body::body! {
    struct NewTag {
        name: String,
        color: Option<String>,
    }
}

crate::platform::body::body! {
    struct TagPatch {
        name: Option<String>,
        color: Option<Option<String>>,
    }
}

/// `#rgb` or `#rrggbb`, lowercased.
fn color_field(v: &str) -> ApiResult<String> {
    let ok = v.starts_with('#') && matches!(v.len(), 4 | 7) && v[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(ApiError::invalid("invalid_color", "`color` must be a hex color like #1a2b3c"));
    }
    Ok(v.to_ascii_lowercase())
}

fn name_taken(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => ApiError::conflict("tag_exists", "this client already has a tag with that name"),
        other => other.into(),
    }
}

async fn one(db: &impl Database, client: &ClientScope, id: &str) -> ApiResult<Option<Tag>> {
    Ok(db.query_first(SELECT_ONE, &[client.id().into(), id.into()]).await?)
}

/// `GET /api/clients/{id}/tags`.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsRead).await?;
    let (cursor, limit) = page_params(req)?;
    let rows: Vec<Tag> = ctx.p.query_as(LIST, &[client.id().into(), cursor.into(), Param::Int(limit)]).await?;
    Ok(page_response(&rows, limit, |t| Some(t.id.clone())))
}

/// `POST /api/clients/{id}/tags {name, color?}`.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsWrite).await?;
    let body: NewTag = json_body(req, &["client_id", "id"])?;
    let name = text_field("name", &body.name, 60)?;
    let color = body.color.as_deref().map(color_field).transpose()?;
    let id = new_id("tag")?;
    let stmts = [
        Stmt::new(
            INSERT,
            vec![
                id.as_str().into(),
                client.id().into(),
                name.as_str().into(),
                color.into(),
                Param::Int(ctx.p.now_ms()),
            ],
        ),
        audit::entry(
            ctx,
            req,
            Some(who),
            Event {
                tenant_id: client.id(),
                action: "tag.created",
                target_type: "tag",
                target_id: Some(&id),
                metadata: json!({"name": name}),
            },
        )?,
    ];
    ctx.p.batch(&stmts).await.map_err(name_taken)?;
    let tag = one(ctx.p, &client, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(201, &tag))
}

/// `PATCH /api/clients/{id}/tags/{tag_id} {name?, color?}`.
pub async fn update<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsWrite).await?;
    let patch: TagPatch = json_body(req, &["client_id", "id"])?;
    let current = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let name = match &patch.name {
        Some(n) => text_field("name", n, 60)?,
        None => current.name,
    };
    let color = match patch.color {
        Some(c) => c.as_deref().map(color_field).transpose()?,
        None => current.color,
    };
    let stmts = [
        Stmt::new(
            UPDATE,
            vec![client.id().into(), id.into(), name.as_str().into(), color.into(), Param::Int(ctx.p.now_ms())],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client.id(),
                action: "tag.updated",
                target_type: "tag",
                target_id: Some(id),
                metadata: json!({"name": name}),
            },
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await.map_err(name_taken)? {
        return Err(ApiError::NotFound);
    }
    let tag = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &tag))
}

/// `DELETE /api/clients/{id}/tags/{tag_id}`: the tag leaves every contact that carried it.
pub async fn delete<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::ContactsWrite).await?;
    let stmts = [
        Stmt::new(DELETE, vec![client.id().into(), id.into()]),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client.id(),
                action: "tag.deleted",
                target_type: "tag",
                target_id: Some(id),
                metadata: json!({}),
            },
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Response::new(204))
}
