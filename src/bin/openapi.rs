//! Prints the OpenAPI 3.1 document (`api::openapi`), which is committed as `openapi.json` and
//! served at `GET /openapi.json`. Usage: `cargo run --bin gatehouse-openapi > openapi.json`.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let doc = gatehouse::api::openapi::document(env!("CARGO_PKG_VERSION"));
    match serde_json::to_string_pretty(&doc) {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("openapi: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
