//! Gatehouse: a multi-tenant SaaS backend that runs as one Cloudflare Worker.
//!
//! The crate is a pure core (every module but `edge`) that builds and tests natively, and a
//! thin `edge` module, compiled only for wasm32, that adapts D1, R2, secrets and the clock to
//! the core's ports. See ARCHITECTURE.md.

// Layers, bottom up; each depends only on the ones above it in this list (ARCHITECTURE.md,
// guarded by tests/layout.rs).
pub mod access;
pub mod platform;
// Features: one folder each, reaching each other only along the edges ARCHITECTURE.md lists.
pub mod auth;
pub mod booking;
pub mod branding;
pub mod crm;
pub mod domains;
pub mod files;
pub mod ops;
pub mod settings;
pub mod templates;
pub mod tenants;
pub mod webhooks;
pub mod widget;
// The top: routing and scheduled jobs, imported by nobody but the edge.
pub mod api;
#[cfg(not(target_arch = "wasm32"))]
pub mod import;
#[cfg(not(target_arch = "wasm32"))]
pub mod seed;

#[cfg(target_arch = "wasm32")]
mod edge;

pub use api::{App, State};
pub use platform::config::Config;

/// The applied schema version, as the migrations record it.
pub const SCHEMA_VERSION_SQL: &str = "SELECT max(version) AS version FROM schema_version";
