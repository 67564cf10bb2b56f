//! Domain events: the transactional outbox. A feature that makes a change which matters to a
//! client's other systems adds one of these statements to the D1 batch that makes the change, so
//! the change and its event commit together or not at all. The webhooks feature fans events out to
//! the client's endpoints afterwards.
//!
//! An event carries the client, a stable id, the time and a small payload of the changed record's
//! public fields. It never carries a secret.

use serde_json::Value;

use crate::platform::error::ApiResult;
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

/// An event of a client with no active webhook endpoint is recorded already dispatched: there is
/// nothing to fan it out to, and the drain after the request then costs one query.
pub const INSERT: &str = "INSERT INTO events (id, client_id, type, data, created_at, dispatched_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints \
    WHERE client_id = ?2 AND status = 'active') THEN NULL ELSE ?5 END)";
/// The event of the change just before it in the batch, written only if that change touched a
/// row (see `audit::INSERT_IF_CHANGED`; an audit row or another event in between passes the
/// answer on, since each of them is itself written only on a change).
pub const INSERT_IF_CHANGED: &str = "INSERT INTO events (id, client_id, type, data, created_at, dispatched_at) \
    SELECT ?1, ?2, ?3, ?4, ?5, CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints \
    WHERE client_id = ?2 AND status = 'active') THEN NULL ELSE ?5 END WHERE changes() > 0";
/// An event made in the control plane (a domain's), copied to the shard with the id it was given
/// there: a second copy of the same event writes nothing.
pub const INSERT_ONCE: &str = "INSERT INTO events (id, client_id, type, data, created_at, dispatched_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints \
    WHERE client_id = ?2 AND status = 'active') THEN NULL ELSE ?5 END) ON CONFLICT (id) DO NOTHING";

/// Every event type, as receivers subscribe to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    ContactCreated,
    ContactUpdated,
    ContactDeleted,
    LeadReceived,
    DealCreated,
    DealStageChanged,
    DealWon,
    DealLost,
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentRescheduled,
    DomainVerified,
    DomainLapsed,
    FileUploaded,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Kind::ContactCreated,
        Kind::ContactUpdated,
        Kind::ContactDeleted,
        Kind::LeadReceived,
        Kind::DealCreated,
        Kind::DealStageChanged,
        Kind::DealWon,
        Kind::DealLost,
        Kind::AppointmentBooked,
        Kind::AppointmentCancelled,
        Kind::AppointmentRescheduled,
        Kind::DomainVerified,
        Kind::DomainLapsed,
        Kind::FileUploaded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ContactCreated => "contact.created",
            Kind::ContactUpdated => "contact.updated",
            Kind::ContactDeleted => "contact.deleted",
            Kind::LeadReceived => "lead.received",
            Kind::DealCreated => "deal.created",
            Kind::DealStageChanged => "deal.stage_changed",
            Kind::DealWon => "deal.won",
            Kind::DealLost => "deal.lost",
            Kind::AppointmentBooked => "appointment.booked",
            Kind::AppointmentCancelled => "appointment.cancelled",
            Kind::AppointmentRescheduled => "appointment.rescheduled",
            Kind::DomainVerified => "domain.verified",
            Kind::DomainLapsed => "domain.lapsed",
            Kind::FileUploaded => "file.uploaded",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// An event that is always written: for creations whose insert cannot match nothing.
pub fn record<P: Platform>(ctx: &Ctx<'_, P>, client_id: &str, kind: Kind, data: Value) -> ApiResult<Stmt> {
    build(ctx, INSERT, client_id, kind, data)
}

/// The event of the guarded change just before it in the same batch, written only if that
/// change touched a row.
pub fn record_if_changed<P: Platform>(ctx: &Ctx<'_, P>, client_id: &str, kind: Kind, data: Value) -> ApiResult<Stmt> {
    build(ctx, INSERT_IF_CHANGED, client_id, kind, data)
}

fn build<P: Platform>(
    ctx: &Ctx<'_, P>,
    sql: &'static str,
    client_id: &str,
    kind: Kind,
    data: Value,
) -> ApiResult<Stmt> {
    ctx.outbox_written();
    Ok(Stmt::new(
        sql,
        vec![
            crate::platform::ids::new_id("evt")?.into(),
            client_id.into(),
            kind.as_str().into(),
            data.to_string().into(),
            Param::Int(ctx.p.now_ms()),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(*k));
            assert!(seen.insert(k.as_str()), "{} twice", k.as_str());
        }
        assert_eq!(seen.len(), 14);
        assert_eq!(Kind::parse("contact.exploded"), None);
        assert_eq!(Kind::parse("*"), None);
    }
}
