//! The bottom layer: what every feature stands on and nothing feature-specific. HTTP types, the
//! ports to storage and the outside world, errors, ids, configuration, crypto primitives, the
//! request extractors, and `Ctx`, the small context every handler receives.

pub mod config;
pub mod crypto;
pub mod error;
pub mod extract;
pub mod http;
pub mod ids;
pub mod ports;
pub mod schema;
pub mod tz;

use std::cell::RefCell;

use config::Config;
use ports::Platform;

/// What a feature's handler is given: the platform's ports and the configuration, plus a note of
/// the tenants the request changed. Features record a change here; the router applies it to the
/// per-isolate caches after the handler returns, so no feature reaches into another's cache.
pub struct Ctx<'a, P: Platform> {
    pub p: &'a P,
    pub cfg: &'a Config,
    changed: RefCell<Vec<String>>,
}

impl<'a, P: Platform> Ctx<'a, P> {
    pub fn new(p: &'a P, cfg: &'a Config) -> Self {
        Self { p, cfg, changed: RefCell::new(Vec::new()) }
    }

    /// Records that a tenant's gate-visible state (status, domains, branding, key) changed.
    pub fn tenant_changed(&self, tenant_id: &str) {
        self.changed.borrow_mut().push(tenant_id.to_string());
    }

    /// The tenants recorded so far, emptying the record.
    pub fn take_changed(&self) -> Vec<String> {
        std::mem::take(&mut *self.changed.borrow_mut())
    }
}
