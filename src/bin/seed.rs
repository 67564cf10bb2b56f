//! Prints the demo dataset as SQL for `wrangler d1 execute --file`, and its dev credentials to
//! stderr. Usage: `cargo run --bin gatehouse-seed > seed.sql`.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let demo = match gatehouse::seed::demo() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("seed failed: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("Demo users (dev passwords; change them before anything real):");
    for (email, password, roles) in &demo.users {
        eprintln!("  {email:<30} {password:<20} {roles}");
    }
    eprintln!("Publishable keys:");
    eprintln!("  acme   {}  (test mode; http://shop.localhost:<port> verified)", demo.acme_key);
    eprintln!("  globex {}", demo.globex_key);
    println!("{}", demo.sql.join("\n"));
}

#[cfg(target_arch = "wasm32")]
fn main() {}
