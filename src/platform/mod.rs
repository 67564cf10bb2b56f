//! The bottom layer: what every feature stands on and nothing feature-specific. HTTP types, the
//! ports to storage and the outside world, errors, ids, configuration, crypto primitives, the
//! request extractors, and `Ctx`, the small context every handler receives.

pub mod body;
pub mod config;
pub mod crypto;
pub mod dns;
pub mod error;
pub mod extract;
pub mod http;
pub mod ids;
pub mod planes;
pub mod ports;
pub mod router;
pub mod rows;
pub mod schema;
pub mod tz;

use std::cell::{Cell, RefCell};

use config::Config;
use ports::Platform;

/// What a feature's handler is given: the platform's ports and the configuration, plus a note of
/// the tenants the request changed. Features record a change here; the router applies it to the
/// per-isolate caches after the handler returns, so no feature reaches into another's cache.
pub struct Ctx<'a, P: Platform> {
    pub p: &'a P,
    pub cfg: &'a Config,
    changed: RefCell<Vec<String>>,
    outbox: Cell<Outbox>,
    mail: Cell<bool>,
    note: RefCell<Note>,
}

/// What the request's log line and metrics say about it beyond its status: the tenant it acted
/// in (a client, else an agency), and the widget gate's decision.
#[derive(Debug, Clone, Default)]
pub struct Note {
    pub tenant: Option<String>,
    /// The tenant the caller's session is in, when no tenant was reached.
    pub caller: Option<String>,
    pub gate: Option<&'static str>,
    /// A server fault answered inside a handler (the widget's), for the log line.
    pub fault: Option<String>,
}

/// What a request leaves for after its response: the webhook outbox, mail to send, and the
/// isolate's daily counters when they are due to be written.
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub outbox: Outbox,
    /// The data shards the request wrote: whose outboxes the drain reads.
    pub shards: Vec<usize>,
    pub mail: bool,
    pub counters: Vec<ports::Stmt>,
}

impl FollowUp {
    pub fn is_empty(&self) -> bool {
        self.outbox == Outbox::Untouched && !self.mail && self.counters.is_empty()
    }
}

/// What a request left for the webhook outbox drain that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outbox {
    Untouched,
    /// Events were recorded: fan them out, and queue what that made.
    Events,
    /// Deliveries were made due: queue them even if no event was recorded.
    Deliveries,
}

impl<'a, P: Platform> Ctx<'a, P> {
    pub fn new(p: &'a P, cfg: &'a Config) -> Self {
        Self {
            p,
            cfg,
            changed: RefCell::new(Vec::new()),
            outbox: Cell::new(Outbox::Untouched),
            mail: Cell::new(false),
            note: RefCell::new(Note::default()),
        }
    }

    /// Records that a tenant's gate-visible state (status, domains, branding, key) changed.
    pub fn tenant_changed(&self, tenant_id: &str) {
        self.changed.borrow_mut().push(tenant_id.to_string());
    }

    /// Records that the request wrote (or tried to write) an event to the outbox; the edge then
    /// drains the outbox once the response is out.
    pub fn outbox_written(&self) {
        self.outbox.set(self.outbox.get().max(Outbox::Events));
    }

    /// Records that the request made webhook deliveries due (a replay): the drain after the
    /// response queues them.
    pub fn deliveries_due(&self) {
        self.outbox.set(Outbox::Deliveries);
    }

    pub fn outbox(&self) -> Outbox {
        self.outbox.get()
    }

    /// Records that the request wrote mail to the outbox; it is sent after the response.
    pub fn mail_written(&self) {
        self.mail.set(true);
    }

    pub fn follow_up(&self) -> FollowUp {
        FollowUp {
            outbox: self.outbox.get(),
            shards: self.p.shards_written(),
            mail: self.mail.get(),
            counters: Vec::new(),
        }
    }

    /// Records the tenant the request acts in; the first one named wins (the one the caller
    /// reached), so a later lookup of another row does not relabel the request.
    pub fn note_tenant(&self, id: &str) {
        let mut n = self.note.borrow_mut();
        if n.tenant.is_none() {
            n.tenant = Some(id.to_string());
        }
    }

    /// Records the tenant of the caller's session.
    pub fn note_caller(&self, id: &str) {
        self.note.borrow_mut().caller = Some(id.to_string());
    }

    /// Records a server fault a handler answered itself, so the log line carries its detail.
    pub fn note_fault(&self, detail: String) {
        self.note.borrow_mut().fault = Some(detail);
    }

    /// Records the widget gate's decision: `allowed`, or why not.
    pub fn note_gate(&self, decision: &'static str) {
        self.note.borrow_mut().gate = Some(decision);
    }

    pub fn note(&self) -> Note {
        self.note.borrow().clone()
    }

    /// The tenants recorded so far, emptying the record.
    pub fn take_changed(&self) -> Vec<String> {
        std::mem::take(&mut *self.changed.borrow_mut())
    }
}
