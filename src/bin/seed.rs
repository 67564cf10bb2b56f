//! Prints the demo dataset as SQL for `wrangler d1 execute --file`, and its dev credentials to
//! stderr. Usage: `cargo run --bin gatehouse-seed > seed.sql` (one database for both planes), or
//! `gatehouse-seed --shards N --out DIR`, which writes `DIR/DB.sql` and `DIR/SHARD_n.sql`, one
//! file per D1 binding.

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
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let shards: usize = arg("--shards").and_then(|n| n.parse().ok()).unwrap_or(0);
    let Some(out) = arg("--out") else {
        println!("{}", demo.sql.join("\n"));
        return;
    };
    let mut files: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    files.entry("DB".into()).or_default();
    for n in 0..shards {
        files.entry(format!("SHARD_{n}")).or_default();
    }
    for (place, sql) in demo.placed(shards) {
        let name = match place {
            gatehouse::seed::Place::Control => "DB".to_string(),
            gatehouse::seed::Place::Shard(n) => format!("SHARD_{n}"),
        };
        files.entry(name).or_default().push(sql);
    }
    for (name, sql) in files {
        let path = std::path::Path::new(&out).join(format!("{name}.sql"));
        if let Err(e) = std::fs::write(&path, sql.join("\n") + "\n") {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
