//! The native test binary: the real router over an in-memory SQLite, one module per feature, so
//! the crate is built and linked once. `layout` guards the crate's dependency direction and
//! `schema` its tenant columns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod audit;
mod auth;
mod booking;
mod crm;
mod domains;
mod exports;
mod files;
mod import;
mod keys;
mod layout;
mod moves;
mod offboarding;
mod ops;
mod planes;
mod portals;
mod quotas;
mod routes;
mod schema;
mod security;
mod settings;
mod shards;
mod templates;
mod webhooks;
