//! Services: what a client's customers book. A duration, a price, buffers before and after (time
//! the staff member is busy but the customer is not there), and an active flag.

use serde::Serialize;
use serde_json::json;

use crate::access::audit::{self, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::ClientScope;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{currency_field, json_body, page_params, page_response, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_id, new_id};
use crate::platform::ports::{Database, Param, Platform, Stmt};
use crate::platform::Ctx;

pub const LIST: &str = "SELECT id, client_id, name, duration_min, price_minor, currency, buffer_before_min, \
    buffer_after_min, active, created_at, updated_at FROM services WHERE client_id = ?1 AND id > ?2 \
    AND (?4 IS NULL OR active = ?4) ORDER BY id LIMIT ?3";
pub const SELECT_ONE: &str = "SELECT id, client_id, name, duration_min, price_minor, currency, buffer_before_min, \
    buffer_after_min, active, created_at, updated_at FROM services WHERE client_id = ?1 AND id = ?2";
pub const INSERT: &str = "INSERT INTO services (id, client_id, name, duration_min, price_minor, currency, \
    buffer_before_min, buffer_after_min, active, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)";
pub const UPDATE: &str = "UPDATE services SET name = ?3, duration_min = ?4, price_minor = ?5, currency = ?6, \
    buffer_before_min = ?7, buffer_after_min = ?8, active = ?9, updated_at = ?10 WHERE client_id = ?1 AND id = ?2";
/// A service with appointments is deactivated, not deleted: its history stays readable.
pub const DELETE: &str = "DELETE FROM services WHERE client_id = ?1 AND id = ?2 \
    AND NOT EXISTS (SELECT 1 FROM appointments WHERE client_id = ?1 AND service_id = ?2)";

crate::platform::rows::row! {
    /// A service as the API shows it.
    #[derive(Debug, Clone, Serialize)]
    pub struct Service {
        pub id: String,
        pub client_id: String,
        pub name: String,
        pub duration_min: i32,
        pub price_minor: i64,
        pub currency: String,
        pub buffer_before_min: i32,
        pub buffer_after_min: i32,
        pub active: bool,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

crate::platform::body::body! {
    /// A service's fields as a request (or a template) gives them; absent ones keep their value.
    #[derive(Debug, Serialize, Default, Clone, PartialEq)]
    pub struct ServiceBody {
        pub name: Option<String>,
        pub duration_min: Option<i32>,
        pub price_minor: Option<i64>,
        pub currency: Option<String>,
        pub buffer_before_min: Option<i32>,
        pub buffer_after_min: Option<i32>,
        pub active: Option<bool>,
    }
}

impl ServiceBody {
    /// A new service's body, validated, with every default filled in.
    pub fn complete(self) -> ApiResult<ServiceBody> {
        let (name, duration, price, currency, before, after, active) = merged(self, None)?;
        Ok(ServiceBody {
            name: Some(name),
            duration_min: Some(duration),
            price_minor: Some(price),
            currency: Some(currency),
            buffer_before_min: Some(before),
            buffer_after_min: Some(after),
            active: Some(active),
        })
    }
}

pub async fn one(db: &impl Database, client: &ClientScope, id: &str) -> ApiResult<Option<Service>> {
    if !looks_like_id(id, "svc") {
        return Ok(None);
    }
    Ok(db.query_first(SELECT_ONE, &[client.id().into(), id.into()]).await?)
}

/// Merges a body over a service (or over nothing, for a new one) and validates the result.
fn merged(body: ServiceBody, base: Option<&Service>) -> ApiResult<(String, i32, i64, String, i32, i32, bool)> {
    let name = match (body.name, base) {
        (Some(n), _) => text_field("name", &n, 120)?,
        (None, Some(b)) => b.name.clone(),
        (None, None) => return Err(ApiError::invalid("invalid_field", "`name` is required")),
    };
    let duration = body.duration_min.or(base.map(|b| b.duration_min)).unwrap_or(60);
    if !(5..=720).contains(&duration) {
        return Err(ApiError::invalid("invalid_duration", "`duration_min` must be 5-720"));
    }
    let price = body.price_minor.or(base.map(|b| b.price_minor)).unwrap_or(0);
    if !(0..=1_000_000_000_000).contains(&price) {
        return Err(ApiError::invalid("invalid_value", "`price_minor` must be 0 or more"));
    }
    let currency = match (body.currency, base) {
        (Some(c), _) => currency_field(&c)?,
        (None, Some(b)) => b.currency.clone(),
        (None, None) => "USD".into(),
    };
    let before = body.buffer_before_min.or(base.map(|b| b.buffer_before_min)).unwrap_or(0);
    let after = body.buffer_after_min.or(base.map(|b| b.buffer_after_min)).unwrap_or(0);
    if !(0..=240).contains(&before) || !(0..=240).contains(&after) {
        return Err(ApiError::invalid("invalid_buffer", "buffers must be 0-240 minutes"));
    }
    let active = body.active.or(base.map(|b| b.active)).unwrap_or(true);
    Ok((name, duration, price, currency, before, after, active))
}

fn event<'a>(client: &'a ClientScope, action: &'a str, id: &'a str) -> Event<'a> {
    Event { tenant_id: client.id(), action, target_type: "service", target_id: Some(id), metadata: json!({}) }
}

/// `GET /api/clients/{id}/services[?active=true|false]`.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingRead).await?;
    let (cursor, limit) = page_params(req)?;
    let active = match req.query_param("active").as_deref() {
        None => Param::Null,
        Some("true") => Param::Int(1),
        Some("false") => Param::Int(0),
        Some(_) => return Err(ApiError::bad_request("invalid_filter", "active is true or false")),
    };
    let rows: Vec<Service> =
        ctx.p.query_as(LIST, &[client.id().into(), cursor.into(), Param::Int(limit), active]).await?;
    Ok(page_response(&rows, limit, |s| Some(s.id.clone())))
}

/// `POST /api/clients/{id}/services`.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingWrite).await?;
    let body: ServiceBody = json_body(req, &["client_id", "id"])?;
    let (name, duration, price, currency, before, after, active) = merged(body, None)?;
    let id = new_id("svc")?;
    let stmts = [
        Stmt::new(
            INSERT,
            vec![
                id.as_str().into(),
                client.id().into(),
                name.into(),
                Param::Int(duration.into()),
                Param::Int(price),
                currency.into(),
                Param::Int(before.into()),
                Param::Int(after.into()),
                Param::Int(active.into()),
                Param::Int(ctx.p.now_ms()),
            ],
        ),
        audit::entry(ctx, req, Some(who), event(&client, "service.created", &id))?,
    ];
    ctx.p.batch(&stmts).await?;
    // Whether the widget offers booking depends on this.
    super::offered_changed(ctx, client.id()).await?;
    Ok(Response::json(201, &one(ctx.p, &client, &id).await?.ok_or(ApiError::NotFound)?))
}

/// `GET /api/clients/{id}/services/{service_id}`.
pub async fn get<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingRead).await?;
    Ok(Response::json(200, &one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?))
}

/// `PATCH /api/clients/{id}/services/{service_id}`. A new duration or buffers apply to bookings
/// made from now on; existing appointments keep the times they were booked with.
pub async fn update<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingWrite).await?;
    let body: ServiceBody = json_body(req, &["client_id", "id"])?;
    let cur = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let (name, duration, price, currency, before, after, active) = merged(body, Some(&cur))?;
    let stmts = [
        Stmt::new(
            UPDATE,
            vec![
                client.id().into(),
                id.into(),
                name.into(),
                Param::Int(duration.into()),
                Param::Int(price),
                currency.into(),
                Param::Int(before.into()),
                Param::Int(after.into()),
                Param::Int(active.into()),
                Param::Int(ctx.p.now_ms()),
            ],
        ),
        audit::entry_if_changed(ctx, req, who, event(&client, "service.updated", id))?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::NotFound);
    }
    // Whether the widget offers booking depends on this.
    super::offered_changed(ctx, client.id()).await?;
    Ok(Response::json(200, &one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?))
}

/// `DELETE /api/clients/{id}/services/{service_id}`: only a service never booked (deactivate the
/// others with `PATCH {"active": false}`).
pub async fn delete<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingWrite).await?;
    one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let stmts = [
        Stmt::new(DELETE, vec![client.id().into(), id.into()]),
        audit::entry_if_changed(ctx, req, who, event(&client, "service.deleted", id))?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::conflict("service_booked", "this service has appointments; deactivate it instead"));
    }
    // Whether the widget offers booking depends on this.
    super::offered_changed(ctx, client.id()).await?;
    Ok(Response::new(204))
}
