//! Notes on contacts and deals: free text with an author, newest last. A note is written only if
//! its subject is the client's own, decided inside the insert.

use serde::Serialize;
use serde_json::json;

use crate::access::audit::{self, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, ClientScope};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{json_body, page_params, page_response};
use crate::platform::http::{Request, Response};
use crate::platform::ids::new_id;
use crate::platform::ports::{decode, Database, Param, Platform, Stmt};
use crate::platform::Ctx;

pub const LIST: &str = "SELECT id, client_id, subject_type, subject_id, body, author_user_id, created_at, updated_at \
    FROM notes WHERE client_id = ?1 AND subject_type = ?2 AND subject_id = ?3 AND id > ?4 ORDER BY id LIMIT ?5";
pub const SELECT_ONE: &str = "SELECT id, client_id, subject_type, subject_id, body, author_user_id, created_at, \
    updated_at FROM notes WHERE client_id = ?1 AND id = ?2";
pub const INSERT_ON_CONTACT: &str = "INSERT INTO notes (id, client_id, subject_type, subject_id, body, \
    author_user_id, created_at, updated_at) SELECT ?1, ?2, 'contact', ?3, ?4, ?5, ?6, ?6 \
    WHERE EXISTS (SELECT 1 FROM contacts WHERE client_id = ?2 AND id = ?3)";
pub const INSERT_ON_DEAL: &str = "INSERT INTO notes (id, client_id, subject_type, subject_id, body, \
    author_user_id, created_at, updated_at) SELECT ?1, ?2, 'deal', ?3, ?4, ?5, ?6, ?6 \
    WHERE EXISTS (SELECT 1 FROM deals WHERE client_id = ?2 AND id = ?3)";
pub const SUBJECT_EXISTS_CONTACT: &str = "SELECT 1 AS ok FROM contacts WHERE client_id = ?1 AND id = ?2";
pub const SUBJECT_EXISTS_DEAL: &str = "SELECT 1 AS ok FROM deals WHERE client_id = ?1 AND id = ?2";
pub const DELETE: &str = "DELETE FROM notes WHERE client_id = ?1 AND subject_type = ?2 AND subject_id = ?3 AND id = ?4";

const MAX_BODY_CHARS: usize = 10_000;

/// What a note is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Contact,
    Deal,
}

impl Subject {
    fn as_str(self) -> &'static str {
        match self {
            Subject::Contact => "contact",
            Subject::Deal => "deal",
        }
    }

    fn read(self) -> Permission {
        match self {
            Subject::Contact => Permission::ContactsRead,
            Subject::Deal => Permission::DealsRead,
        }
    }

    fn write(self) -> Permission {
        match self {
            Subject::Contact => Permission::ContactsWrite,
            Subject::Deal => Permission::DealsWrite,
        }
    }

    fn insert(self) -> &'static str {
        match self {
            Subject::Contact => INSERT_ON_CONTACT,
            Subject::Deal => INSERT_ON_DEAL,
        }
    }

    fn exists(self) -> &'static str {
        match self {
            Subject::Contact => SUBJECT_EXISTS_CONTACT,
            Subject::Deal => SUBJECT_EXISTS_DEAL,
        }
    }
}

crate::platform::rows::row! {
    /// A note as the API shows it.
    #[derive(Debug, Serialize)]
    pub struct Note {
        pub id: String,
        pub client_id: String,
        pub subject_type: String,
        pub subject_id: String,
        pub body: String,
        pub author_user_id: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

crate::platform::body::body! {
    struct NewNote {
        body: String,
    }
}

async fn subject_exists(db: &impl Database, client: &ClientScope, subject: Subject, id: &str) -> ApiResult<()> {
    if db.query(subject.exists(), &[client.id().into(), id.into()]).await?.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

/// `GET /api/clients/{id}/{contacts|deals}/{subject_id}/notes`.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    subject: Subject,
    subject_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, subject.read()).await?;
    let (cursor, limit) = page_params(req)?;
    subject_exists(ctx.p, &client, subject, subject_id).await?;
    let params = [client.id().into(), subject.as_str().into(), subject_id.into(), cursor.into(), Param::Int(limit)];
    let rows: Vec<Note> = ctx.p.query_as(LIST, &params).await?;
    Ok(page_response(&rows, limit, |n| Some(n.id.clone())))
}

/// `POST /api/clients/{id}/{contacts|deals}/{subject_id}/notes {body}`.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    subject: Subject,
    subject_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, subject.write()).await?;
    let body: NewNote = json_body(req, &["client_id", "author_user_id", "subject_id", "subject_type", "id"])?;
    let text = body.body.trim();
    if text.is_empty() || text.chars().count() > MAX_BODY_CHARS || text.contains('\0') {
        return Err(ApiError::invalid("invalid_field", format!("`body` must be 1-{MAX_BODY_CHARS} characters")));
    }
    let id = new_id("note")?;
    let insert = Stmt::new(
        subject.insert(),
        vec![
            id.as_str().into(),
            client.id().into(),
            subject_id.into(),
            text.into(),
            who.user_id.as_str().into(),
            Param::Int(ctx.p.now_ms()),
        ],
    );
    let audit = audit::entry_if_changed(
        ctx,
        req,
        who,
        Event {
            tenant_id: client.id(),
            action: "note.created",
            target_type: subject.as_str(),
            target_id: Some(subject_id),
            metadata: json!({"note_id": id}),
        },
    )?;
    if !ctx.p.batch_changed(&[insert, audit]).await? {
        return Err(ApiError::NotFound);
    }
    let row = ctx.p.query(SELECT_ONE, &[client.id().into(), id.as_str().into()]).await?.into_iter().next();
    let note: Note = row.map(decode).transpose()?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(201, &note))
}

/// `DELETE /api/clients/{id}/{contacts|deals}/{subject_id}/notes/{note_id}`.
pub async fn delete<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    subject: Subject,
    subject_id: &str,
    note_id: &str,
) -> ApiResult<Response> {
    let (client, _) = access::client(ctx, req, who, client_id, subject.write()).await?;
    let stmts = [
        Stmt::new(DELETE, vec![client.id().into(), subject.as_str().into(), subject_id.into(), note_id.into()]),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client.id(),
                action: "note.deleted",
                target_type: subject.as_str(),
                target_id: Some(subject_id),
                metadata: json!({"note_id": note_id}),
            },
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Response::new(204))
}
