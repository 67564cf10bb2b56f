//! Staff: who is booked. A name, an optional linked user (a member of the client or its agency),
//! the services they offer, weekly working hours in the client's time zone, and time off.

use serde::Serialize;
use serde_json::json;

use super::availability::{DaysOff, Window};
use crate::access::audit::{self, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::{store, ClientScope};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{json_body, page_params, page_response, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_id, new_id};
use crate::platform::ports::{col_i64, decode, json_list, Database, Param, Platform, Stmt};
use crate::platform::{tz, Ctx};

pub const LIST: &str = "SELECT id, client_id, name, user_id, active, created_at, updated_at FROM staff \
    WHERE client_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
pub const OFFERING: &str = "SELECT st.id, st.client_id, st.name, st.user_id, st.active, st.created_at, \
    st.updated_at FROM staff st WHERE st.client_id = ?1 AND st.active = 1 AND EXISTS (SELECT 1 FROM staff_services ss \
    WHERE ss.client_id = ?1 AND ss.staff_id = st.id AND ss.service_id = ?2) ORDER BY st.id";
pub const SELECT_ONE: &str =
    "SELECT id, client_id, name, user_id, active, created_at, updated_at FROM staff WHERE client_id = ?1 AND id = ?2";
/// A staff member's user, if any, must be a member of the client or of its agency.
/// A linked user's membership is read from the control plane first (`store::user_reaches_client`):
/// the staff row lives on the client's data shard, so no statement can check both.
pub const INSERT: &str = "INSERT INTO staff (id, client_id, name, user_id, active, created_at, updated_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";
pub const UPDATE: &str = "UPDATE staff SET name = ?3, user_id = ?4, active = ?5, updated_at = ?6 \
    WHERE client_id = ?2 AND id = ?1";
pub const DELETE: &str = "DELETE FROM staff WHERE client_id = ?1 AND id = ?2 \
    AND NOT EXISTS (SELECT 1 FROM appointments WHERE client_id = ?1 AND staff_id = ?2)";
pub const CLEAR_SERVICES: &str = "DELETE FROM staff_services WHERE client_id = ?1 AND staff_id = ?2";
/// Links only services that are this client's: a foreign id links nothing.
pub const LINK_SERVICES: &str = "INSERT INTO staff_services (client_id, staff_id, service_id) \
    SELECT s.client_id, ?2, s.id FROM services s WHERE s.client_id = ?1 AND s.id IN (SELECT value FROM json_each(?3)) \
    AND EXISTS (SELECT 1 FROM staff WHERE client_id = ?1 AND id = ?2)";
pub const COUNT_SERVICES: &str = "SELECT count(*) AS n FROM services WHERE client_id = ?1 \
    AND id IN (SELECT value FROM json_each(?2))";
pub const SERVICES_OF: &str = "SELECT staff_id, service_id FROM staff_services WHERE client_id = ?1 \
    AND staff_id IN (SELECT value FROM json_each(?2)) ORDER BY service_id";
pub const HOURS_OF: &str = "SELECT staff_id, weekday, start_min, end_min FROM staff_hours WHERE client_id = ?1 \
    AND staff_id IN (SELECT value FROM json_each(?2)) ORDER BY weekday, start_min";
pub const CLEAR_HOURS: &str = "DELETE FROM staff_hours WHERE client_id = ?1 AND staff_id = ?2";
pub const INSERT_HOURS: &str = "INSERT INTO staff_hours (client_id, staff_id, weekday, start_min, end_min) \
    SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM staff WHERE client_id = ?1 AND id = ?2)";
pub const TIME_OFF_OF: &str = "SELECT id, staff_id, start_date, end_date, reason FROM time_off \
    WHERE client_id = ?1 AND staff_id = ?2 AND end_date >= ?3 AND start_date <= ?4 ORDER BY start_date";
pub const INSERT_TIME_OFF: &str = "INSERT INTO time_off (id, client_id, staff_id, start_date, end_date, reason, \
    created_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM staff WHERE client_id = ?2 AND id = ?3)";
pub const DELETE_TIME_OFF: &str = "DELETE FROM time_off WHERE client_id = ?1 AND staff_id = ?2 AND id = ?3";
/// Whether the staff member offers the service, both active.
pub const OFFERS: &str = "SELECT 1 AS ok FROM staff_services ss JOIN staff st ON st.id = ss.staff_id \
    JOIN services sv ON sv.id = ss.service_id WHERE ss.client_id = ?1 AND ss.staff_id = ?2 AND ss.service_id = ?3 \
    AND st.active = 1 AND sv.active = 1";

/// Working windows a staff member may have per day.
const MAX_WINDOWS: usize = 50;

crate::platform::body::body! {
    /// One weekly window as the API shows it: ISO weekday and `HH:MM` local times.
    #[derive(Debug, Clone, Serialize)]
    pub struct Hours {
        pub weekday: i8,
        pub start: String,
        pub end: String,
    }
}

/// A staff member as the API shows it.
#[derive(Debug, Serialize)]
pub struct Staff {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub user_id: Option<String>,
    pub active: bool,
    pub service_ids: Vec<String>,
    pub hours: Vec<Hours>,
    pub created_at: i64,
    pub updated_at: i64,
}

crate::platform::rows::row! {
    #[derive(Debug)]
    struct StaffRow {
        id: String,
        client_id: String,
        name: String,
        user_id: Option<String>,
        active: bool,
        created_at: i64,
        updated_at: i64,
    }
}

crate::platform::rows::row! {
    struct LinkRow {
        staff_id: String,
        service_id: String,
    }
}

crate::platform::rows::row! {
    struct HoursRow {
        staff_id: String,
        weekday: i8,
        start_min: i32,
        end_min: i32,
    }
}

crate::platform::rows::row! {
    /// Time off as the API shows it.
    #[derive(Debug, Serialize)]
    pub struct TimeOff {
        pub id: String,
        pub staff_id: String,
        pub start_date: String,
        pub end_date: String,
        pub reason: Option<String>,
    }
}

crate::platform::body::body! {
    #[derive(Default)]
    struct StaffBody {
        name: Option<String>,
        user_id: Option<Option<String>>,
        active: Option<bool>,
        service_ids: Option<Vec<String>>,
        hours: Option<Vec<Hours>>,
    }
}

crate::platform::body::body! {
    struct HoursBody {
        hours: Vec<Hours>,
    }
}

crate::platform::body::body! {
    struct TimeOffBody {
        start_date: String,
        end_date: String,
        reason: Option<String>,
    }
}

fn hhmm(m: i32) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// `HH:MM` (24 h; `24:00` only as an end) as minutes after midnight.
fn minutes(s: &str, end: bool) -> Option<i32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    let total = h * 60 + m;
    (m < 60 && (total < 24 * 60 || (end && total == 24 * 60))).then_some(total)
}

/// Validates a week of windows: weekdays 1-7, start before end, no overlaps within a day.
fn windows(hours: &[Hours]) -> ApiResult<Vec<Window>> {
    let bad = |why: &str| ApiError::invalid("invalid_hours", why.to_string());
    if hours.len() > MAX_WINDOWS {
        return Err(bad("at most 50 working windows"));
    }
    let mut out = Vec::with_capacity(hours.len());
    for h in hours {
        let (Some(start_min), Some(end_min)) = (minutes(&h.start, false), minutes(&h.end, true)) else {
            return Err(bad("times are HH:MM, 00:00-24:00"));
        };
        if !(1..=7).contains(&h.weekday) {
            return Err(bad("weekday is 1 (Monday) to 7 (Sunday)"));
        }
        if start_min >= end_min {
            return Err(bad("a window starts before it ends"));
        }
        out.push(Window { weekday: h.weekday, start_min, end_min });
    }
    for (i, a) in out.iter().enumerate() {
        if out[i + 1..].iter().any(|b| a.weekday == b.weekday && a.start_min < b.end_min && b.start_min < a.end_min) {
            return Err(bad("windows on one day must not overlap"));
        }
    }
    Ok(out)
}

/// Staff rows with their services and hours, in two queries for the whole page.
async fn complete(db: &impl Database, client: &ClientScope, rows: Vec<StaffRow>) -> ApiResult<Vec<Staff>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids = json_list(rows.iter().map(|r| r.id.as_str()));
    let links: Vec<LinkRow> = db.query_as(SERVICES_OF, &[client.id().into(), ids.as_str().into()]).await?;
    let hours: Vec<HoursRow> = db.query_as(HOURS_OF, &[client.id().into(), ids.into()]).await?;
    Ok(rows
        .into_iter()
        .map(|r| Staff {
            service_ids: links.iter().filter(|l| l.staff_id == r.id).map(|l| l.service_id.clone()).collect(),
            hours: hours
                .iter()
                .filter(|h| h.staff_id == r.id)
                .map(|h| Hours { weekday: h.weekday, start: hhmm(h.start_min), end: hhmm(h.end_min) })
                .collect(),
            id: r.id,
            client_id: r.client_id,
            name: r.name,
            user_id: r.user_id,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

/// Every active staff member who offers a service, with their services and hours: three queries
/// in all, however many staff the client has.
pub async fn offering(db: &impl Database, client: &ClientScope, service_id: &str) -> ApiResult<Vec<Staff>> {
    let rows: Vec<StaffRow> = db.query_as(OFFERING, &[client.id().into(), service_id.into()]).await?;
    complete(db, client, rows).await
}

pub async fn one(db: &impl Database, client: &ClientScope, id: &str) -> ApiResult<Option<Staff>> {
    if !looks_like_id(id, "stf") {
        return Ok(None);
    }
    let row = db.query(SELECT_ONE, &[client.id().into(), id.into()]).await?.into_iter().next();
    let Some(row) = row.map(decode::<StaffRow>).transpose()? else { return Ok(None) };
    Ok(complete(db, client, vec![row]).await?.pop())
}

/// A staff member's week as availability windows.
pub fn week(staff: &Staff) -> Vec<Window> {
    staff
        .hours
        .iter()
        .filter_map(|h| {
            Some(Window { weekday: h.weekday, start_min: minutes(&h.start, false)?, end_min: minutes(&h.end, true)? })
        })
        .collect()
}

/// Time off overlapping the local days `from..=to`.
pub async fn days_off(
    db: &impl Database,
    client: &ClientScope,
    staff_id: &str,
    from: &str,
    to: &str,
) -> ApiResult<Vec<DaysOff>> {
    let rows: Vec<TimeOff> =
        db.query_as(TIME_OFF_OF, &[client.id().into(), staff_id.into(), from.into(), to.into()]).await?;
    Ok(rows
        .iter()
        .filter_map(|t| Some(DaysOff { from: tz::parse_date(&t.start_date)?, to: tz::parse_date(&t.end_date)? }))
        .collect())
}

/// Whether the staff member offers the service, both active.
pub async fn offers(db: &impl Database, client: &ClientScope, staff_id: &str, service_id: &str) -> ApiResult<bool> {
    Ok(!db.query(OFFERS, &[client.id().into(), staff_id.into(), service_id.into()]).await?.is_empty())
}

/// The statements that replace a staff member's services, after checking every id is this
/// client's.
async fn service_stmts(db: &impl Database, client: &ClientScope, id: &str, ids: &[String]) -> ApiResult<Vec<Stmt>> {
    if ids.len() > 100 || ids.iter().any(|s| !looks_like_id(s, "svc")) {
        return Err(ApiError::invalid("unknown_service", "service_ids must be this client's services"));
    }
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    let json = json_list(&unique);
    let found = db.query(COUNT_SERVICES, &[client.id().into(), json.as_str().into()]).await?;
    if found.first().and_then(|r| col_i64(r, "n")).unwrap_or(0) != unique.len() as i64 {
        return Err(ApiError::invalid("unknown_service", "service_ids must be this client's services"));
    }
    Ok(vec![
        Stmt::new(CLEAR_SERVICES, vec![client.id().into(), id.into()]),
        Stmt::new(LINK_SERVICES, vec![client.id().into(), id.into(), json.into()]),
    ])
}

fn hours_stmts(client: &ClientScope, id: &str, week: &[Window]) -> Vec<Stmt> {
    let mut out = vec![Stmt::new(CLEAR_HOURS, vec![client.id().into(), id.into()])];
    for w in week {
        out.push(Stmt::new(
            INSERT_HOURS,
            vec![
                client.id().into(),
                id.into(),
                Param::Int(w.weekday.into()),
                Param::Int(w.start_min.into()),
                Param::Int(w.end_min.into()),
            ],
        ));
    }
    out
}

/// A linked user must be a member of the client or its agency (read from the control plane
/// before the write; a membership ended in between leaves the link, as it leaves past ones).
async fn user_field(db: &impl Database, client: &ClientScope, u: Option<&str>) -> ApiResult<Option<String>> {
    match u {
        Some(u) if store::user_reaches_client(db, client.id(), u).await? => Ok(Some(u.to_string())),
        Some(_) => Err(ApiError::invalid("unknown_user", "user_id must be a member of this client or its agency")),
        None => Ok(None),
    }
}

fn event<'a>(client: &'a ClientScope, action: &'a str, id: &'a str, metadata: serde_json::Value) -> Event<'a> {
    Event { tenant_id: client.id(), action, target_type: "staff", target_id: Some(id), metadata }
}

/// `GET /api/clients/{id}/staff`.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingRead).await?;
    let (cursor, limit) = page_params(req)?;
    let rows: Vec<StaffRow> = ctx.p.query_as(LIST, &[client.id().into(), cursor.into(), Param::Int(limit)]).await?;
    let items = complete(ctx.p, &client, rows).await?;
    Ok(page_response(&items, limit, |s| Some(s.id.clone())))
}

/// `POST /api/clients/{id}/staff {name, user_id?, service_ids?, hours?}`: the member, their
/// services and their week in one batch.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingWrite).await?;
    let body: StaffBody = json_body(req, &["client_id", "id"])?;
    let name = text_field("name", body.name.as_deref().unwrap_or(""), 120)?;
    let user = user_field(ctx.p, &client, body.user_id.flatten().as_deref()).await?;
    let week = windows(&body.hours.unwrap_or_default())?;
    let id = new_id("stf")?;
    let mut stmts = vec![Stmt::new(
        INSERT,
        vec![
            id.as_str().into(),
            client.id().into(),
            name.into(),
            user.into(),
            Param::Int(body.active.unwrap_or(true).into()),
            Param::Int(ctx.p.now_ms()),
        ],
    )];
    stmts.push(audit::entry_if_changed(ctx, req, who, event(&client, "staff.created", &id, json!({})))?);
    stmts.extend(service_stmts(ctx.p, &client, &id, &body.service_ids.unwrap_or_default()).await?);
    stmts.extend(hours_stmts(&client, &id, &week));
    ctx.p.batch(&stmts).await?;
    // Whether the widget offers booking depends on this.
    super::offered_changed(ctx, client.id()).await?;
    Ok(Response::json(201, &one(ctx.p, &client, &id).await?.ok_or(ApiError::NotFound)?))
}

/// `GET /api/clients/{id}/staff/{staff_id}`.
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

/// `PATCH /api/clients/{id}/staff/{staff_id} {name?, user_id?, active?, service_ids?, hours?}`.
pub async fn update<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingWrite).await?;
    let body: StaffBody = json_body(req, &["client_id", "id"])?;
    let cur = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let name = match &body.name {
        Some(n) => text_field("name", n, 120)?,
        None => cur.name.clone(),
    };
    let user = match body.user_id {
        Some(u) => user_field(ctx.p, &client, u.as_deref()).await?,
        None => cur.user_id.clone(),
    };
    let mut stmts = vec![
        Stmt::new(
            UPDATE,
            vec![
                id.into(),
                client.id().into(),
                name.into(),
                user.into(),
                Param::Int(body.active.unwrap_or(cur.active).into()),
                Param::Int(ctx.p.now_ms()),
            ],
        ),
        audit::entry_if_changed(ctx, req, who, event(&client, "staff.updated", id, json!({})))?,
    ];
    if let Some(ids) = &body.service_ids {
        stmts.extend(service_stmts(ctx.p, &client, id, ids).await?);
    }
    if let Some(hours) = &body.hours {
        stmts.extend(hours_stmts(&client, id, &windows(hours)?));
    }
    if !ctx.p.batch_changed(&stmts).await? {
        // Deleted since it was read.
        return Err(ApiError::NotFound);
    }
    // Whether the widget offers booking depends on this.
    super::offered_changed(ctx, client.id()).await?;
    Ok(Response::json(200, &one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?))
}

/// `PUT /api/clients/{id}/staff/{staff_id}/hours {hours}`: replaces the week.
pub async fn set_hours<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingWrite).await?;
    let body: HoursBody = json_body(req, &[])?;
    let week = windows(&body.hours)?;
    one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    let mut stmts = hours_stmts(&client, id, &week);
    stmts.push(audit::entry(
        ctx,
        req,
        Some(who),
        event(&client, "staff.hours_set", id, json!({"windows": week.len()})),
    )?);
    ctx.p.batch(&stmts).await?;
    // Whether the widget offers booking depends on this.
    super::offered_changed(ctx, client.id()).await?;
    Ok(Response::json(200, &one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?))
}

/// `DELETE /api/clients/{id}/staff/{staff_id}`: only someone never booked (deactivate the others).
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
        audit::entry_if_changed(ctx, req, who, event(&client, "staff.deleted", id, json!({})))?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::conflict("staff_booked", "this staff member has appointments; deactivate them instead"));
    }
    // Whether the widget offers booking depends on this.
    super::offered_changed(ctx, client.id()).await?;
    Ok(Response::new(204))
}

/// `GET /api/clients/{id}/staff/{staff_id}/time-off[?from=&to=]` (local dates).
pub async fn list_time_off<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingRead).await?;
    one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    // Dates compare as text in the query, so only a real YYYY-MM-DD may reach it.
    let date = |name: &str, default: &str| match req.query_param(name) {
        None => Ok(default.to_string()),
        Some(d) => tz::parse_date(&d)
            .map(|d| d.to_string())
            .ok_or_else(|| ApiError::bad_request("invalid_date", format!("`{name}` is a date, YYYY-MM-DD"))),
    };
    let (from, to) = (date("from", "0000-01-01")?, date("to", "9999-12-31")?);
    let rows: Vec<TimeOff> =
        ctx.p.query_as(TIME_OFF_OF, &[client.id().into(), id.into(), from.into(), to.into()]).await?;
    Ok(Response::json(200, &json!({"items": rows, "next_cursor": null})))
}

/// `POST /api/clients/{id}/staff/{staff_id}/time-off {start_date, end_date, reason?}`.
pub async fn add_time_off<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingWrite).await?;
    let body: TimeOffBody = json_body(req, &["client_id", "staff_id", "id"])?;
    let (Some(from), Some(to)) = (tz::parse_date(&body.start_date), tz::parse_date(&body.end_date)) else {
        return Err(ApiError::invalid("invalid_date", "dates are YYYY-MM-DD"));
    };
    if to < from {
        return Err(ApiError::invalid("invalid_date", "end_date is on or after start_date"));
    }
    let reason = body.reason.as_deref().map(|r| text_field("reason", r, 200)).transpose()?;
    let off_id = new_id("off")?;
    let stmts = [
        Stmt::new(
            INSERT_TIME_OFF,
            vec![
                off_id.as_str().into(),
                client.id().into(),
                id.into(),
                from.to_string().into(),
                to.to_string().into(),
                reason.clone().into(),
                Param::Int(ctx.p.now_ms()),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            event(&client, "staff.time_off_added", id, json!({"time_off_id": off_id})),
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Response::json(
        201,
        &TimeOff {
            id: off_id,
            staff_id: id.to_string(),
            start_date: from.to_string(),
            end_date: to.to_string(),
            reason,
        },
    ))
}

/// `DELETE /api/clients/{id}/staff/{staff_id}/time-off/{time_off_id}`.
pub async fn delete_time_off<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
    off_id: &str,
) -> ApiResult<Response> {
    let (client, _) = super::client(ctx, req, who, client_id, Permission::BookingWrite).await?;
    let stmts = [
        Stmt::new(DELETE_TIME_OFF, vec![client.id().into(), id.into(), off_id.into()]),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            event(&client, "staff.time_off_deleted", id, json!({"time_off_id": off_id})),
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        return Err(ApiError::NotFound);
    }
    // Whether the widget offers booking depends on this.
    super::offered_changed(ctx, client.id()).await?;
    Ok(Response::new(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(weekday: i8, start: &str, end: &str) -> Hours {
        Hours { weekday, start: start.into(), end: end.into() }
    }

    #[test]
    fn weeks_are_validated() {
        assert_eq!(windows(&[h(1, "09:00", "17:00"), h(1, "18:00", "24:00")]).unwrap().len(), 2);
        for bad in [
            vec![h(0, "09:00", "17:00")],
            vec![h(8, "09:00", "17:00")],
            vec![h(1, "17:00", "09:00")],
            vec![h(1, "9:00", "17:00")],
            vec![h(1, "24:00", "24:00")],
            vec![h(1, "09:60", "17:00")],
            vec![h(1, "09:00", "12:00"), h(1, "11:00", "13:00")],
        ] {
            assert!(windows(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(hhmm(minutes("24:00", true).unwrap()), "24:00");
    }
}
