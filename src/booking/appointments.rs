//! Appointments and availability. A booking is checked against the staff member's week, time off
//! and the slot grid in the client's time zone (a 422 with the reason), then inserted only if no
//! active appointment of that staff member overlaps its blocked range, decided inside the insert
//! (a 409 otherwise): no staff member is double-booked, whatever the concurrency.

use serde::Serialize;
use serde_json::json;

use super::availability::{self, Calendar, Refusal, Shape};
use super::{services, staff};
use crate::access::audit::{self, Event};
use crate::access::events::{self, Kind};
use crate::access::roles::{Permission, Principal};
use crate::access::store::ClientRow;
use crate::access::ClientScope;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{email_field, json_body, page_params, page_response, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_id, new_id};
use crate::platform::ports::{col_str, json_list, Database, Param, Platform, Stmt, Zones};
use crate::platform::tz::{Offsets, Zone};
use crate::platform::{tz, Ctx};

pub const SELECT_ONE: &str = "SELECT id, client_id, service_id, staff_id, contact_id, starts_at, ends_at, status, \
    source, note, created_at, updated_at FROM appointments WHERE client_id = ?1 AND id = ?2";
/// ?4/?5 an instant range on starts_at, ?6 staff, ?7 status, ?8 contact; each may be NULL.
pub const LIST: &str = "SELECT id, client_id, service_id, staff_id, contact_id, starts_at, ends_at, status, source, \
    note, created_at, updated_at FROM appointments WHERE client_id = ?1 AND id > ?2 \
    AND (?4 IS NULL OR starts_at >= ?4) AND (?5 IS NULL OR starts_at < ?5) AND (?6 IS NULL OR staff_id = ?6) \
    AND (?7 IS NULL OR status = ?7) AND (?8 IS NULL OR contact_id = ?8) ORDER BY id LIMIT ?3";
/// The insert that refuses a double booking: nothing active of this staff member may overlap the
/// blocked range ?8-?9, the staff member must offer the service (both active) and the contact
/// must be the client's.
pub const INSERT: &str = "INSERT INTO appointments (id, client_id, service_id, staff_id, contact_id, starts_at, \
    ends_at, blocked_from, blocked_until, status, source, note, created_at, updated_at, submission_id) \
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'scheduled', ?10, ?11, ?12, ?12, ?13 \
    WHERE NOT EXISTS (SELECT 1 FROM appointments WHERE client_id = ?2 AND staff_id = ?4 \
      AND status IN ('scheduled', 'confirmed') AND blocked_from < ?9 AND blocked_until > ?8) \
    AND EXISTS (SELECT 1 FROM staff_services ss JOIN staff st ON st.id = ss.staff_id JOIN services sv ON sv.id = ss.service_id \
      WHERE ss.client_id = ?2 AND ss.staff_id = ?4 AND ss.service_id = ?3 AND st.active = 1 AND sv.active = 1) \
    AND (?5 IS NULL OR EXISTS (SELECT 1 FROM contacts WHERE client_id = ?2 AND id = ?5)) \
    ON CONFLICT (client_id, submission_id) DO NOTHING";
/// The booking a submission id already made.
pub const BY_SUBMISSION: &str =
    "SELECT id, starts_at, status FROM appointments WHERE client_id = ?1 AND submission_id = ?2";
/// Busy ranges of one staff member's active appointments overlapping ?3-?4.
pub const BUSY: &str = "SELECT blocked_from, blocked_until FROM appointments WHERE client_id = ?1 AND staff_id = ?2 \
    AND status IN ('scheduled', 'confirmed') AND blocked_from < ?4 AND blocked_until > ?3";
/// A status change, only along an allowed transition (?4: the statuses it may leave).
pub const SET_STATUS: &str = "UPDATE appointments SET status = ?3, updated_at = ?5 \
    WHERE client_id = ?1 AND id = ?2 AND status IN (SELECT value FROM json_each(?4))";
/// A move to another start (and perhaps another staff member offering the same service), refused
/// inside the statement if the new blocked range ?6-?7 overlaps anything else active of that staff
/// member, or the appointment is no longer open.
pub const RESCHEDULE: &str = "UPDATE appointments SET staff_id = ?3, starts_at = ?4, ends_at = ?5, blocked_from = ?6, \
    blocked_until = ?7, updated_at = ?8 WHERE client_id = ?1 AND id = ?2 AND status IN ('scheduled', 'confirmed') \
    AND NOT EXISTS (SELECT 1 FROM appointments o WHERE o.client_id = ?1 AND o.staff_id = ?3 AND o.id <> ?2 \
      AND o.status IN ('scheduled', 'confirmed') AND o.blocked_from < ?7 AND o.blocked_until > ?6) \
    AND EXISTS (SELECT 1 FROM staff_services ss JOIN staff st ON st.id = ss.staff_id JOIN services sv ON sv.id = ss.service_id \
      WHERE ss.client_id = ?1 AND ss.staff_id = ?3 AND ss.service_id = appointments.service_id AND st.active = 1 \
      AND sv.active = 1)";
pub const CONTACT_EXISTS: &str = "SELECT 1 AS ok FROM contacts WHERE client_id = ?1 AND id = ?2";
pub const CONTACT_BY_EMAIL: &str =
    "SELECT id FROM contacts WHERE client_id = ?1 AND email = ?2 ORDER BY created_at, id LIMIT 1";
/// A booking's new contact, written only if the slot it books is still free (?9 staff, ?10-?11 the
/// blocked range), so a refused booking leaves no contact behind.
pub const INSERT_CONTACT: &str = "INSERT INTO contacts (id, client_id, name, email, phone, message, source, origin, \
    created_at, updated_at, external_user_id) SELECT ?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?8, ?8, ?12 \
    WHERE NOT EXISTS (SELECT 1 FROM appointments WHERE client_id = ?2 AND staff_id = ?9 \
      AND status IN ('scheduled', 'confirmed') AND blocked_from < ?11 AND blocked_until > ?10) \
    AND (SELECT count(*) FROM contacts WHERE client_id = ?2) < ?13";
pub const CONTACT_COUNT: &str = "SELECT count(*) AS n FROM contacts WHERE client_id = ?1";

/// Days one availability request may span.
const MAX_RANGE_DAYS: i64 = 31;
const DAY_MS: i64 = 86_400_000;

/// An appointment as the API shows it: instants in UTC (RFC 3339) and on the client's clock.
#[derive(Debug, Serialize)]
pub struct Appointment {
    pub id: String,
    pub client_id: String,
    pub service_id: String,
    pub staff_id: String,
    pub contact_id: Option<String>,
    pub starts_at: String,
    pub ends_at: String,
    pub local_start: String,
    pub local_end: String,
    pub time_zone: String,
    pub status: String,
    pub source: String,
    pub note: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

crate::platform::rows::row! {
    #[derive(Debug)]
    struct Row {
        id: String,
        client_id: String,
        service_id: String,
        staff_id: String,
        contact_id: Option<String>,
        starts_at: i64,
        ends_at: i64,
        status: String,
        source: String,
        note: Option<String>,
        created_at: i64,
        updated_at: i64,
    }
}

impl Row {
    fn view(self, zone: &dyn Offsets, zone_name: &str) -> Appointment {
        Appointment {
            starts_at: tz::instant_string(self.starts_at),
            ends_at: tz::instant_string(self.ends_at),
            local_start: tz::local_label(zone, self.starts_at),
            local_end: tz::local_label(zone, self.ends_at),
            time_zone: zone_name.to_string(),
            id: self.id,
            client_id: self.client_id,
            service_id: self.service_id,
            staff_id: self.staff_id,
            contact_id: self.contact_id,
            status: self.status,
            source: self.source,
            note: self.note,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// An appointment as an event carries it.
fn event_data(
    id: &str,
    service_id: &str,
    staff_id: &str,
    contact_id: Option<&str>,
    (start_ms, end_ms): (i64, i64),
    source: &str,
) -> serde_json::Value {
    json!({"appointment": {
        "id": id, "service_id": service_id, "staff_id": staff_id, "contact_id": contact_id,
        "starts_at": tz::instant_string(start_ms), "ends_at": tz::instant_string(end_ms), "source": source,
    }})
}

crate::platform::body::body! {
    /// Who the appointment is for: an existing contact, or one found (by email) or made.
    pub struct Person {
        pub name: String,
        pub email: String,
        pub phone: Option<String>,
    }
}

crate::platform::body::body! {
    struct NewAppointment {
        service_id: String,
        staff_id: String,
        starts_at: String,
        contact_id: Option<String>,
        contact: Option<Person>,
        note: Option<String>,
    }
}

crate::platform::body::body! {
    /// A PATCH: a new status, or a new start (and optionally another staff member).
    struct Change {
        status: Option<String>,
        starts_at: Option<String>,
        staff_id: Option<String>,
    }
}

/// The client's zone; a stored name is validated when set, so an unknown one is a server fault.
pub fn zone_of<'a, Z: Zones>(zones: &'a Z, c: &ClientRow) -> ApiResult<Zone<'a, Z>> {
    Zone::get(zones, &c.time_zone)
        .ok_or_else(|| ApiError::Internal(format!("client {} has time zone {:?}", c.id, c.time_zone)))
}

async fn one(db: &impl Database, client: &ClientScope, id: &str) -> ApiResult<Option<Row>> {
    if !looks_like_id(id, "apt") {
        return Ok(None);
    }
    Ok(db.query_first(SELECT_ONE, &[client.id().into(), id.into()]).await?)
}

/// Who a booking is for.
pub enum Booker {
    Nobody,
    Existing(String),
    /// A contact to make in the booking's batch, unless one with this email exists.
    New {
        name: String,
        email: String,
        phone: Option<String>,
        origin: Option<String>,
        /// The visitor's id in the client's own system, from a verified signed identity.
        external_user_id: Option<String>,
        /// The client's contacts quota, which the new contact must fit.
        contacts_limit: i64,
    },
}

impl Booker {
    /// A person from a booking form, validated.
    pub fn person(p: &Person, origin: Option<&str>, contacts_limit: i64) -> ApiResult<Booker> {
        Ok(Booker::New {
            name: text_field("name", &p.name, 120)?,
            email: email_field(&p.email)?,
            phone: p
                .phone
                .as_deref()
                .filter(|x| !x.trim().is_empty())
                .map(|x| text_field("phone", x, 40))
                .transpose()?,
            origin: origin.map(String::from),
            external_user_id: None,
            contacts_limit,
        })
    }
}

/// A requested booking, checked: the service, the staff member and the slot. Returns the
/// service's shape and the slot, or the reason it cannot be booked.
pub async fn checked_slot<D: Database + Zones>(
    db: &D,
    client: &ClientScope,
    row: &ClientRow,
    service_id: &str,
    staff_id: &str,
    starts_at: &str,
    now_ms: i64,
) -> ApiResult<(Shape, availability::Slot)> {
    let service = services::one(db, client, service_id)
        .await?
        .filter(|s| s.active)
        .ok_or_else(|| ApiError::invalid("unknown_service", "no such active service in this client"))?;
    let member = staff::one(db, client, staff_id)
        .await?
        .filter(|s| s.active)
        .ok_or_else(|| ApiError::invalid("unknown_staff", "no such active staff member in this client"))?;
    if !member.service_ids.iter().any(|s| s == service_id) {
        return Err(ApiError::invalid("service_not_offered", "this staff member does not offer this service"));
    }
    let start = tz::parse_instant(starts_at).ok_or_else(|| {
        ApiError::invalid("invalid_time", "`starts_at` is an RFC 3339 instant like 2027-03-14T09:00:00Z")
    })?;
    let zone = zone_of(db, row)?;
    let shape = Shape {
        duration_min: service.duration_min,
        buffer_before_min: service.buffer_before_min,
        buffer_after_min: service.buffer_after_min,
    };
    let day = tz::utc_ms_to_local(&zone, start).map(|(d, _)| d.to_string()).unwrap_or_default();
    let days_off = staff::days_off(db, client, staff_id, &day, &day).await?;
    let week = staff::week(&member);
    let cal = Calendar { tz: &zone, windows: &week, days_off: &days_off, busy: &[] };
    let slot = availability::check(&cal, shape, start, now_ms).map_err(|r| ApiError::invalid(r.code(), r.message()))?;
    Ok((shape, slot))
}

/// Books a checked slot: the contact it needs (found by email, or made in the same batch) and the
/// appointment, with its audit row. 409 if the slot was taken meanwhile; then nothing is written.
#[allow(clippy::too_many_arguments)]
pub async fn book<P: Platform>(
    ctx: &Ctx<'_, P>,
    id: &str,
    audit_row: Stmt,
    client: &ClientScope,
    service_id: &str,
    staff_id: &str,
    booker: Booker,
    shape: Shape,
    slot: &availability::Slot,
    source: &str,
    note: Option<String>,
    submission_id: Option<&str>,
) -> ApiResult<Booked> {
    let now = ctx.p.now_ms();
    if let Some(replayed) = replay(ctx.p, client, submission_id).await? {
        return Ok(replayed);
    }
    let (blocked_from, blocked_until) = shape.blocked(slot.start_ms);
    let mut stmts = Vec::new();
    let mut new_contact = None;
    let contact_id = match booker {
        Booker::Nobody => None,
        Booker::Existing(c) => Some(c),
        Booker::New { name, email, phone, origin, external_user_id, contacts_limit } => {
            let found = ctx.p.query(CONTACT_BY_EMAIL, &[client.id().into(), email.as_str().into()]).await?;
            match found.first().and_then(|r| col_str(r, "id")) {
                Some(existing) => Some(existing),
                None => {
                    let contact = new_id("con")?;
                    let contact_data = json!({"contact": {
                        "id": contact, "name": name, "email": email, "phone": phone, "source": source,
                    }});
                    stmts.push(Stmt::new(
                        INSERT_CONTACT,
                        vec![
                            contact.as_str().into(),
                            client.id().into(),
                            name.into(),
                            email.into(),
                            phone.into(),
                            source.into(),
                            origin.into(),
                            Param::Int(now),
                            staff_id.into(),
                            Param::Int(blocked_from),
                            Param::Int(blocked_until),
                            external_user_id.into(),
                            Param::Int(contacts_limit),
                        ],
                    ));
                    new_contact = Some(contacts_limit);
                    stmts.push(events::record_if_changed(ctx, client.id(), Kind::ContactCreated, contact_data)?);
                    Some(contact)
                }
            }
        }
    };
    let at = stmts.len();
    stmts.push(Stmt::new(
        INSERT,
        vec![
            id.into(),
            client.id().into(),
            service_id.into(),
            staff_id.into(),
            contact_id.clone().into(),
            Param::Int(slot.start_ms),
            Param::Int(slot.end_ms),
            Param::Int(blocked_from),
            Param::Int(blocked_until),
            source.into(),
            note.into(),
            Param::Int(now),
            submission_id.into(),
        ],
    ));
    stmts.push(audit_row);
    let data = event_data(id, service_id, staff_id, contact_id.as_deref(), (slot.start_ms, slot.end_ms), source);
    stmts.push(events::record_if_changed(ctx, client.id(), Kind::AppointmentBooked, data)?);
    let changes = ctx.p.batch(&stmts).await?;
    if changes.get(at).copied().unwrap_or(0) == 0 {
        // A racing retry of the same submission may have won; it answers with that booking.
        if let Some(replayed) = replay(ctx.p, client, submission_id).await? {
            return Ok(replayed);
        }
        if let Some(limit) = new_contact {
            let held = ctx.p.query(CONTACT_COUNT, &[client.id().into()]).await?;
            if held.first().and_then(|r| crate::platform::ports::col_i64(r, "n")).unwrap_or(0) >= limit {
                return Err(crate::access::plans::exceeded(crate::access::plans::Metric::Contacts, limit));
            }
        }
        return Err(ApiError::conflict(Refusal::Taken.code(), Refusal::Taken.message()));
    }
    Ok(Booked::Created)
}

/// What became of a booking request.
#[derive(Debug, PartialEq, Eq)]
pub enum Booked {
    Created,
    /// The same submission id booked before: its appointment's id, start and status now.
    Replayed(String, i64, String),
}

async fn replay(db: &impl Database, client: &ClientScope, submission_id: Option<&str>) -> ApiResult<Option<Booked>> {
    let Some(sub) = submission_id else { return Ok(None) };
    let rows = db.query(BY_SUBMISSION, &[client.id().into(), sub.into()]).await?;
    Ok(rows
        .first()
        .and_then(|r| Some(Booked::Replayed(col_str(r, "id")?, r.get("starts_at")?.as_i64()?, col_str(r, "status")?))))
}

/// `POST /api/clients/{id}/appointments {service_id, staff_id, starts_at, contact_id? | contact?, note?}`.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, row) = super::client(ctx, req, who, client_id, Permission::BookingWrite).await?;
    let body: NewAppointment = json_body(req, &["client_id", "id", "status", "ends_at", "source"])?;
    let note = body.note.as_deref().map(|n| text_field("note", n, 2000)).transpose()?;
    let (shape, slot) =
        checked_slot(ctx.p, &client, &row, &body.service_id, &body.staff_id, &body.starts_at, ctx.p.now_ms()).await?;
    let booker = match (body.contact_id, &body.contact) {
        (Some(c), None)
            if looks_like_id(&c, "con")
                && !ctx.p.query(CONTACT_EXISTS, &[client.id().into(), c.as_str().into()]).await?.is_empty() =>
        {
            Booker::Existing(c)
        }
        (Some(_), None) => return Err(ApiError::invalid("unknown_contact", "no such contact in this client")),
        (None, Some(person)) => {
            Booker::person(person, None, crate::access::plans::limit(&row, crate::access::plans::Metric::Contacts))?
        }
        (None, None) => Booker::Nobody,
        (Some(_), Some(_)) => return Err(ApiError::invalid("invalid_contact", "give contact_id or contact, not both")),
    };
    let id = new_id("apt")?;
    let audit_row = audit::entry_if_changed(
        ctx,
        req,
        who,
        Event {
            tenant_id: client.id(),
            action: "appointment.created",
            target_type: "appointment",
            target_id: Some(&id),
            metadata: json!({"staff_id": body.staff_id, "service_id": body.service_id, "starts_at": tz::instant_string(slot.start_ms)}),
        },
    )?;
    book(ctx, &id, audit_row, &client, &body.service_id, &body.staff_id, booker, shape, &slot, "api", note, None)
        .await?;
    let created = one(ctx.p, &client, &id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(201, &created.view(&zone_of(ctx.p, &row)?, &row.time_zone)))
}

/// `GET /api/clients/{id}/appointments[?from=&to=&staff=&status=&contact=]` (`from`/`to`: RFC 3339).
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, row) = super::client(ctx, req, who, client_id, Permission::BookingRead).await?;
    let (cursor, limit) = page_params(req)?;
    let instant = |name: &'static str| -> ApiResult<Param> {
        match req.query_param(name) {
            None => Ok(Param::Null),
            Some(v) => tz::parse_instant(&v)
                .map(Param::Int)
                .ok_or_else(|| ApiError::bad_request("invalid_filter", format!("`{name}` is an RFC 3339 instant"))),
        }
    };
    let id_filter = |name: &'static str, prefix: &str| -> ApiResult<Param> {
        match req.query_param(name) {
            None => Ok(Param::Null),
            Some(v) if looks_like_id(&v, prefix) => Ok(v.into()),
            Some(_) => Err(ApiError::bad_request("invalid_filter", format!("`{name}` must be an id"))),
        }
    };
    let status = match req.query_param("status") {
        None => Param::Null,
        Some(s) if matches!(s.as_str(), "scheduled" | "confirmed" | "completed" | "cancelled") => s.into(),
        Some(_) => return Err(ApiError::bad_request("invalid_filter", "unknown status")),
    };
    let params = [
        client.id().into(),
        cursor.into(),
        Param::Int(limit),
        instant("from")?,
        instant("to")?,
        id_filter("staff", "stf")?,
        status,
        id_filter("contact", "con")?,
    ];
    let rows: Vec<Row> = ctx.p.query_as(LIST, &params).await?;
    let zone = zone_of(ctx.p, &row)?;
    let items: Vec<Appointment> = rows.into_iter().map(|r| r.view(&zone, &row.time_zone)).collect();
    Ok(page_response(&items, limit, |a| Some(a.id.clone())))
}

/// `GET /api/clients/{id}/appointments/{appointment_id}`.
pub async fn get<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, row) = super::client(ctx, req, who, client_id, Permission::BookingRead).await?;
    let a = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &a.view(&zone_of(ctx.p, &row)?, &row.time_zone)))
}

/// The statuses an appointment may move to `to` from: nothing leaves cancelled or completed.
fn allowed_from(to: &str) -> Option<&'static [&'static str]> {
    match to {
        "confirmed" => Some(&["scheduled"]),
        "completed" => Some(&["scheduled", "confirmed"]),
        "cancelled" => Some(&["scheduled", "confirmed"]),
        _ => None,
    }
}

/// `PATCH /api/clients/{id}/appointments/{appointment_id}`, one of:
/// - `{status}`: scheduled → confirmed → completed, or cancelled from either open status (which
///   frees the slot). Anything else is 422.
/// - `{starts_at, staff_id?}`: a reschedule of an open appointment to a free slot of the same
///   service (with the same or another staff member who offers it); 409 if the slot is taken.
pub async fn update<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, row) = super::client(ctx, req, who, client_id, Permission::BookingWrite).await?;
    let body: Change = json_body(req, &["client_id", "id", "ends_at", "service_id"])?;
    let cur = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    match (body.status, body.starts_at) {
        (Some(status), None) if body.staff_id.is_none() => set_status(ctx, req, who, &client, cur, &status).await?,
        (None, Some(starts_at)) => reschedule(ctx, req, who, &client, &row, cur, &starts_at, body.staff_id).await?,
        _ => {
            return Err(ApiError::invalid(
                "invalid_change",
                "send either `status`, or `starts_at` (with an optional `staff_id`) to reschedule",
            ))
        }
    }
    let a = one(ctx.p, &client, id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &a.view(&zone_of(ctx.p, &row)?, &row.time_zone)))
}

async fn set_status<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client: &ClientScope,
    cur: Row,
    status: &str,
) -> ApiResult<()> {
    let from = allowed_from(status)
        .ok_or_else(|| ApiError::invalid("invalid_status", "status is confirmed, completed or cancelled"))?;
    let refused = || {
        ApiError::invalid("invalid_transition", format!("an appointment that is {} cannot become {status}", cur.status))
    };
    if !from.contains(&cur.status.as_str()) {
        return Err(refused());
    }
    let mut stmts = vec![
        Stmt::new(
            SET_STATUS,
            vec![
                client.id().into(),
                cur.id.as_str().into(),
                status.into(),
                json_list(from).into(),
                Param::Int(ctx.p.now_ms()),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client.id(),
                action: "appointment.status_changed",
                target_type: "appointment",
                target_id: Some(&cur.id),
                metadata: json!({"from": cur.status, "to": status}),
            },
        )?,
    ];
    if status == "cancelled" {
        let span = (cur.starts_at, cur.ends_at);
        let data = event_data(&cur.id, &cur.service_id, &cur.staff_id, cur.contact_id.as_deref(), span, &cur.source);
        stmts.push(events::record_if_changed(ctx, client.id(), Kind::AppointmentCancelled, data)?);
    }
    if !ctx.p.batch_changed(&stmts).await? {
        // Someone else moved it first; the transition no longer holds.
        return Err(refused());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn reschedule<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client: &ClientScope,
    row: &ClientRow,
    cur: Row,
    starts_at: &str,
    staff_id: Option<String>,
) -> ApiResult<()> {
    let open = || ["scheduled", "confirmed"].contains(&cur.status.as_str());
    if !open() {
        return Err(ApiError::invalid(
            "invalid_transition",
            format!("an appointment that is {} cannot be rescheduled", cur.status),
        ));
    }
    let staff_id = staff_id.unwrap_or_else(|| cur.staff_id.clone());
    let now = ctx.p.now_ms();
    let (shape, slot) = checked_slot(ctx.p, client, row, &cur.service_id, &staff_id, starts_at, now).await?;
    let (blocked_from, blocked_until) = shape.blocked(slot.start_ms);
    let span = (slot.start_ms, slot.end_ms);
    let mut data = event_data(&cur.id, &cur.service_id, &staff_id, cur.contact_id.as_deref(), span, &cur.source);
    data["previous"] = json!({
        "staff_id": cur.staff_id, "starts_at": tz::instant_string(cur.starts_at), "ends_at": tz::instant_string(cur.ends_at),
    });
    let stmts = [
        Stmt::new(
            RESCHEDULE,
            vec![
                client.id().into(),
                cur.id.as_str().into(),
                staff_id.as_str().into(),
                Param::Int(slot.start_ms),
                Param::Int(slot.end_ms),
                Param::Int(blocked_from),
                Param::Int(blocked_until),
                Param::Int(now),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client.id(),
                action: "appointment.rescheduled",
                target_type: "appointment",
                target_id: Some(&cur.id),
                metadata: json!({"from": tz::instant_string(cur.starts_at), "to": tz::instant_string(slot.start_ms),
                    "from_staff_id": cur.staff_id, "staff_id": staff_id}),
            },
        )?,
        events::record_if_changed(ctx, client.id(), Kind::AppointmentRescheduled, data)?,
    ];
    if ctx.p.batch_changed(&stmts).await? {
        return Ok(());
    }
    // Closed meanwhile, or the slot was taken meanwhile.
    match one(ctx.p, client, &cur.id).await? {
        Some(now) if ["scheduled", "confirmed"].contains(&now.status.as_str()) => {
            Err(ApiError::conflict(Refusal::Taken.code(), Refusal::Taken.message()))
        }
        Some(now) => Err(ApiError::invalid(
            "invalid_transition",
            format!("an appointment that is {} cannot be rescheduled", now.status),
        )),
        None => Err(ApiError::NotFound),
    }
}

#[derive(Serialize)]
struct SlotView {
    starts_at: String,
    ends_at: String,
    local_start: String,
}

#[derive(Serialize)]
struct StaffSlots {
    staff_id: String,
    name: String,
    slots: Vec<SlotView>,
}

/// Free slots for a service on the local days `from..=to` (at most 31), per staff member who
/// offers it (or just `staff`).
#[allow(clippy::too_many_arguments)]
pub async fn free_slots<D: Database + Zones>(
    db: &D,
    client: &ClientScope,
    row: &ClientRow,
    service_id: &str,
    from: &str,
    to: &str,
    only_staff: Option<&str>,
    now_ms: i64,
) -> ApiResult<serde_json::Value> {
    let zone = zone_of(db, row)?;
    let (Some(from_d), Some(to_d)) = (tz::parse_date(from), tz::parse_date(to)) else {
        return Err(ApiError::bad_request("invalid_date", "from and to are local dates, YYYY-MM-DD"));
    };
    let span = to_d.days() - from_d.days();
    if !(0..MAX_RANGE_DAYS).contains(&span) {
        return Err(ApiError::bad_request("invalid_range", "to is on or after from, at most 31 days on"));
    }
    let service = services::one(db, client, service_id)
        .await?
        .filter(|s| s.active)
        .ok_or_else(|| ApiError::invalid("unknown_service", "no such active service in this client"))?;
    let shape = Shape {
        duration_min: service.duration_min,
        buffer_before_min: service.buffer_before_min,
        buffer_after_min: service.buffer_after_min,
    };
    // Instants a day either side of the local range cover every offset.
    let lo = tz::local_to_utc_ms(&zone, from_d, 0).unwrap_or(0) - DAY_MS;
    let hi = tz::local_to_utc_ms(&zone, to_d, 0).unwrap_or(0) + 2 * DAY_MS;
    let mut out = Vec::new();
    for member in staff::offering(db, client, service_id).await? {
        let staff_id = member.id.as_str();
        if only_staff.is_some_and(|s| s != staff_id) {
            continue;
        }
        if !member.active || !member.service_ids.iter().any(|s| s == service_id) {
            continue;
        }
        let busy: Vec<(i64, i64)> = db
            .query(BUSY, &[client.id().into(), staff_id.into(), Param::Int(lo), Param::Int(hi)])
            .await?
            .iter()
            .filter_map(|b| Some((b.get("blocked_from")?.as_i64()?, b.get("blocked_until")?.as_i64()?)))
            .collect();
        let days_off = staff::days_off(db, client, staff_id, from, to).await?;
        let week = staff::week(&member);
        let cal = Calendar { tz: &zone, windows: &week, days_off: &days_off, busy: &busy };
        let slots = availability::slots(&cal, shape, from_d, to_d, now_ms)
            .into_iter()
            .map(|s| SlotView {
                starts_at: tz::instant_string(s.start_ms),
                ends_at: tz::instant_string(s.end_ms),
                local_start: tz::local_label(&zone, s.start_ms),
            })
            .collect();
        out.push(StaffSlots { staff_id: member.id.clone(), name: member.name, slots });
    }
    Ok(json!({"service_id": service_id, "time_zone": row.time_zone, "from": from, "to": to, "staff": out}))
}

/// `GET /api/clients/{id}/availability?service=&from=&to=[&staff=]`.
pub async fn availability<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, row) = super::client(ctx, req, who, client_id, Permission::BookingRead).await?;
    let param = |k: &'static str| {
        req.query_param(k).ok_or_else(|| ApiError::bad_request("missing_parameter", format!("`{k}` is required")))
    };
    let (service, from, to) = (param("service")?, param("from")?, param("to")?);
    let only = req.query_param("staff");
    let body = free_slots(ctx.p, &client, &row, &service, &from, &to, only.as_deref(), ctx.p.now_ms()).await?;
    Ok(Response::json(200, &body))
}
