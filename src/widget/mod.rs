//! The embeddable widget: its domain gate (`gate`), which also takes its leads, and the loader
//! script. The script is one static, versioned file compiled into the Worker, so serving it
//! costs no storage read.

pub mod gate;
pub mod identity;

use crate::platform::http::Response;

pub const SCRIPT: &str = include_str!("../../widget/dist/widget.js");
/// Bumped with the script's wire protocol; part of the URL clients cache by.
pub const VERSION: &str = "1";

pub fn script() -> Response {
    Response::text(200, "application/javascript; charset=utf-8", SCRIPT)
        .with_header("cache-control", "public, max-age=300")
        .with_header("x-widget-version", VERSION)
        .with_header("access-control-allow-origin", "*")
}
