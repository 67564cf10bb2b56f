//! Prints the OpenAPI 3.1 document (`api::openapi`), which is committed as `openapi.json` and
//! served at `GET /openapi.json`. Usage: `cargo run --bin gatehouse-openapi > openapi.json`.
//!
//! The file is laid out for review and for the Worker's size at once: the outer levels one key
//! per line (so a diff names the path or schema that changed), each operation and each schema
//! compact on its own line.

#[cfg(not(target_arch = "wasm32"))]
fn render(v: &serde_json::Value, depth: usize, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) if depth < 3 && !m.is_empty() => {
            out.push_str("{\n");
            for (i, (k, x)) in m.iter().enumerate() {
                out.push_str(&"  ".repeat(depth + 1));
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                render(x, depth + 1, out);
                out.push_str(if i + 1 < m.len() { ",\n" } else { "\n" });
            }
            out.push_str(&"  ".repeat(depth));
            out.push('}');
        }
        _ => out.push_str(&v.to_string()),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    match gatehouse::api::openapi::document(env!("CARGO_PKG_VERSION")) {
        Ok(doc) => {
            let mut out = String::new();
            render(&doc, 0, &mut out);
            println!("{out}");
        }
        Err(e) => {
            eprintln!("openapi: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
