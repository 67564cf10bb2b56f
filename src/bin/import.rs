//! Loads a legacy dump of contacts and users into a new "default" client of an agency, as SQL for
//! `wrangler d1 execute`. Usage:
//!
//! ```text
//! gatehouse-import --agency agy_… [--name "Default"] [--slug default] \
//!     [--contacts contacts.csv|.json] [--users users.csv|.json] > import.sql
//! ```
//!
//! What was taken and every skipped row (with its reason) go to stderr.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let fail = |msg: String| -> ! {
        eprintln!("gatehouse-import: {msg}");
        std::process::exit(1)
    };
    let Some(agency) = arg("--agency") else { fail("--agency agy_… is required".into()) };
    let read = |flag: &str| -> Option<(String, String)> {
        arg(flag).map(|path| match std::fs::read_to_string(&path) {
            Ok(text) => (path, text),
            Err(e) => fail(format!("{path}: {e}")),
        })
    };
    let (contacts, users) = (read("--contacts"), read("--users"));
    if contacts.is_none() && users.is_none() {
        fail("give --contacts and/or --users".into());
    }
    fn dump(f: &Option<(String, String)>) -> Option<gatehouse::import::Dump<'_>> {
        f.as_ref().map(|(name, text)| gatehouse::import::Dump { name, text })
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let name = arg("--name").unwrap_or_else(|| "Default".into());
    let slug = arg("--slug").unwrap_or_else(|| "default".into());
    match gatehouse::import::build(&agency, &name, &slug, dump(&contacts), dump(&users), now) {
        Ok(out) => {
            match arg("--out") {
                // With data shards: the control plane's statements in DB.sql, the client's data in
                // SHARD_0.sql (a new client's directory row names the first shard).
                Some(dir) => {
                    use gatehouse::platform::planes::{plane, Plane};
                    let (control, data): (Vec<&String>, Vec<&String>) =
                        out.sql.iter().partition(|s| plane(s) == Plane::Control);
                    for (file, sql) in [("DB.sql", control), ("SHARD_0.sql", data)] {
                        let body: Vec<&str> = sql.iter().map(|s| s.as_str()).collect();
                        if let Err(e) = std::fs::write(std::path::Path::new(&dir).join(file), body.join("\n") + "\n") {
                            fail(format!("cannot write {dir}/{file}: {e}"));
                        }
                    }
                }
                None => println!("{}", out.sql.join("\n")),
            }
            eprintln!("client {}: {} contacts, {} users", out.client_id, out.contacts, out.users);
            for (file, row, why) in &out.skipped {
                eprintln!("skipped {file} row {row}: {why}");
            }
        }
        Err(e) => fail(e),
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
