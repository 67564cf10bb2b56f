//! Gatehouse: a multi-tenant SaaS backend that runs as one Cloudflare Worker.
//!
//! The crate is a pure core (every module but `edge`) that builds and tests natively, and a
//! thin `edge` module, compiled only for wasm32, that adapts D1, R2, secrets and the clock to
//! the core's ports. See ARCHITECTURE.md.

pub mod api;
pub mod audit;
pub mod auth;
pub mod branding;
pub mod config;
pub mod contacts;
pub mod crypto;
pub mod css;
pub mod domains;
pub mod error;
pub mod files;
pub mod gate;
pub mod hostname;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod origin;
pub mod portal;
pub mod ports;
pub mod psl;
pub mod schema;
#[cfg(not(target_arch = "wasm32"))]
pub mod seed;
pub mod settings;
pub mod tenancy;
pub mod tenants;
pub mod widget;

#[cfg(target_arch = "wasm32")]
mod edge;

pub use api::{App, State};
pub use config::Config;

/// The applied schema version, as the migrations record it.
pub const SCHEMA_VERSION_SQL: &str = "SELECT max(version) AS version FROM schema_version";
