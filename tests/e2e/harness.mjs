// End-to-end harness: a real `wrangler dev` (workerd, local D1 and R2) on free loopback ports
// with a throw-away --persist-to directory, migrations applied and the demo data seeded.
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, readFileSync, readdirSync, statSync, cpSync, existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import http from "node:http";
import crypto from "node:crypto";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");
/** wrangler needs Node 22, which lives in node_modules/.bin; the machine's may be older. */
export const ENV = { ...process.env, PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH}`, WRANGLER_SEND_METRICS: "false", CI: "1" };
const TARGET = process.env.CARGO_TARGET_DIR || join(process.env.HOME, ".cache", "gatehouse", "target");
const SEED_BIN = join(TARGET, "release", "gatehouse-seed");

/** `n` distinct free ports: each is held until all are found, so none is handed out twice. */
export async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      await new Promise((resolve, reject) => {
        srv.on("error", reject);
        srv.listen(0, "127.0.0.1", resolve);
      });
      servers.push(srv);
    }
    return servers.map((srv) => srv.address().port);
  } finally {
    await Promise.all(servers.map((srv) => new Promise((resolve) => srv.close(resolve))));
  }
}

export const b64 = (bytes) => Buffer.from(bytes).toString("base64");

/** Secrets the tests know, so they can forge tokens signed with the Worker's own key. */
export function testSecrets() {
  return {
    JWT_SECRET: crypto.randomBytes(48).toString("base64"),
    ENCRYPTION_KEY: b64(crypto.randomBytes(32)),
    FILE_SIGNING_SECRET: crypto.randomBytes(48).toString("base64"),
  };
}

function wrangler(args, persist) {
  // A test's own `d1 execute` opens the SQLite file the running Worker writes to, so it can meet
  // the Worker's write lock (work after a response, under waitUntil, may still hold it): it tries
  // again a few times, a moment apart, before that counts as a failure.
  for (let attempt = 1; ; attempt++) {
    const r = spawnSync(WRANGLER, [...args, "--persist-to", persist], { cwd: ROOT, env: ENV, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (r.status === 0) return r.stdout;
    const locked = /SQLITE_BUSY|database is locked/.test(`${r.stdout}\n${r.stderr}`);
    if (!locked || attempt === 5) throw new Error(`wrangler ${args.slice(0, 3).join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200 * attempt);
  }
}

/**
 * How many data shards the Worker runs on: GATEHOUSE_E2E_SHARDS, 2 by default as in wrangler.toml
 * (and dev.sh). 1 runs on the control plane and one shard; 0 on the control plane's D1 alone.
 */
export const SHARDS = Number(process.env.GATEHOUSE_E2E_SHARDS ?? 2);
/** The D1 bindings with `shards` data shards: the control plane's, then the shards'. */
export const bindingsFor = (shards) => ["DB", ...Array.from({ length: shards }, (_, n) => `SHARD_${n}`)];
export const BINDINGS = bindingsFor(SHARDS);

/**
 * The wrangler config for `shards`: wrangler.toml itself for 2, else a copy beside it (its paths
 * are relative) without the shard bindings past `shards`.
 */
const shardConfigs = {};
function shardConfig(shards) {
  if (shards === 2) return null;
  if (shardConfigs[shards]) return shardConfigs[shards];
  const sections = readFileSync(join(ROOT, "wrangler.toml"), "utf8").split(/(?=^\[)/m);
  const kept = sections.filter((s) => {
    const m = s.match(/^\[\[d1_databases\]\][^[]*binding = "SHARD_(\d+)"/);
    return !m || Number(m[1]) < shards;
  });
  const path = join(ROOT, `.wrangler-e2e-${shards}-shards.toml`);
  writeFileSync(path, kept.join(""));
  return (shardConfigs[shards] = path);
}

/** The control plane's tables (schema::CONTROL_PLANE) and the shards' (migrations-shard/). */
const CONTROL_TABLES = [...readFileSync(join(ROOT, "src/platform/schema.rs"), "utf8")
  .match(/pub const CONTROL_PLANE: &\[&str\] = &\[([^\]]*)\]/)[1].matchAll(/"([a-z_0-9]+)"/g)].map((m) => m[1]);
const SHARD_TABLES = readdirSync(join(ROOT, "migrations-shard")).flatMap((f) =>
  [...readFileSync(join(ROOT, "migrations-shard", f), "utf8").matchAll(/CREATE TABLE (\w+)/g)].map((m) => m[1]));

/** The tables among `tables` that `sql` reads or writes, by the keywords that name a table. */
function touched(sql, tables) {
  const lower = " " + sql.replace(/\s+/g, " ").toLowerCase();
  return tables.filter((t) => [" from ", " join ", "update ", " into ", "delete from "]
    .some((kw) => new RegExp(`${kw}${t}(?![a-z0-9_])`).test(lower)));
}

/** The demo tenants' shards (seed::Demo::home): Globex on the second shard when there is one. */
const GLOBEX = "cli_000000000000000000000002";

/** Parses the seed tool's stderr: users with passwords, and publishable keys. */
function parseCredentials(text) {
  const users = {};
  const keys = {};
  for (const line of text.split("\n")) {
    const u = line.match(/^\s+(\S+@\S+)\s+(\S+)\s+(.*)$/);
    if (u) users[u[1]] = u[2];
    const k = line.match(/^\s+(acme|globex)\s+(pk_[0-9a-z]+)/);
    if (k) keys[k[1]] = k[2];
  }
  return { users, keys };
}

/** Waits for `/healthz`: true once it answers 200, false if wrangler exits first. */
async function healthy(child, port, logs) {
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) return false;
    try {
      const r = await request("GET", "/healthz", { port });
      if (r.status === 200) return true;
    } catch {}
    if (Date.now() > deadline) {
      child.kill("SIGTERM");
      throw new Error("wrangler dev did not become healthy:\n" + logs.join(""));
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

/**
 * Starts a Worker. `vars` override configuration; `persist` reuses a state directory
 * (for restarts with new keys), otherwise a fresh one is made, migrated and seeded; `config`
 * names another wrangler.toml (another build of the Worker) to run on that state; `logLevel` is
 * wrangler's (the benchmark runs every Worker at "warn", so none pays for request logging);
 * `testScheduled: false` leaves out `/__scheduled` and the middleware wrangler serves it through.
 */
export async function startWorker({ vars = {}, persist = null, config = null, logLevel = "log", shards = SHARDS, testScheduled = true } = {}) {
  const configArgs = () => (shardConfig(shards) ? ["--config", shardConfig(shards)] : []);
  const bindings = bindingsFor(shards);
  const fresh = !persist;
  const dir = persist || mkdtempSync(join(tmpdir(), "gatehouse-e2e-"));
  let creds = { users: {}, keys: {} };
  if (fresh) cpSync(seededState(shards), dir, { recursive: true });
  creds = parseCredentials(readFileSync(join(dir, "credentials.txt"), "utf8"));
  // Per-client API rates are off unless a test turns them on: the isolation matrix alone sends
  // more than a starter plan's 600 requests a minute to one client. lifecycle.test.mjs runs them.
  const allVars = { DEBUG_HEADERS: "true", API_HOSTS: "localhost,127.0.0.1", API_RATE_LIMITS: "false", ...vars };
  // A port found free can be taken by another process before wrangler binds it: then wrangler
  // exits with "Address already in use", and it starts again on other ports (three tries).
  let port, inspector, child, logs;
  for (let attempt = 1; ; attempt++) {
    [port, inspector] = await freePorts(2);
    const args = [
      "dev", "--port", String(port), "--inspector-port", String(inspector), "--ip", "127.0.0.1",
      "--persist-to", dir, "--show-interactive-dev-session=false", "--log-level", logLevel,
    ];
    // `/__scheduled` for the tests; wrangler serves it through a middleware that wraps every request.
    if (testScheduled) args.push("--test-scheduled");
    for (const [k, v] of Object.entries(allVars)) args.push("--var", `${k}:${v}`);
    // Another build of the Worker (the benchmark's before/after pair), on the same schema and seed.
    if (config || shardConfig(shards)) args.push("--config", config || shardConfig(shards));
    child = spawn(WRANGLER, args, {
      cwd: ROOT,
      env: ENV,
      stdio: ["ignore", "pipe", "pipe"],
    });
    logs = [];
    child.stdout.on("data", (d) => logs.push(d.toString()));
    child.stderr.on("data", (d) => logs.push(d.toString()));
    if (await healthy(child, port, logs)) break;
    if (attempt === 3 || !logs.join("").includes("Address already in use")) {
      throw new Error("wrangler dev exited:\n" + logs.join(""));
    }
  }
  const base = `http://127.0.0.1:${port}`;
  const homes = {};
  const worker = {
    base, port, inspector, dir, logs, vars: allVars, shards, bindings, users: creds.users, keys: creds.keys, pid: child.pid,
    host: `localhost:${port}`,
    request: (method, path, opts = {}) => request(method, path, { port, ...opts }),
    /**
     * Runs a test's own SQL where its tables are: the control plane's on DB, a tenant's rows on
     * its shard (by the tenant id the SQL names), else on every database, their rows joined and
     * single-row counts and sums added up.
     */
    d1: (sql) => {
      const run = (binding) => JSON.parse(wrangler(["d1", "execute", binding, "--local", "--json", "--command", sql, ...configArgs()], dir))[0].results;
      if (shards === 0) return run("DB");
      const shard = touched(sql, SHARD_TABLES).length > 0;
      if (!shard && touched(sql, CONTROL_TABLES).length > 0) return run("DB");
      const tenant = shard && sql.match(/'((?:cli|agy)_[0-9a-z]{24})'/)?.[1];
      if (tenant) return run(`SHARD_${worker.home(tenant)}`);
      const results = (shard ? bindings.slice(1) : bindings).map(run);
      const aggregate = /\b(count|sum|coalesce)\(/i.test(sql) && !/group by/i.test(sql);
      if (aggregate && results.every((r) => r.length === 1)) {
        const total = { ...results[0][0] };
        for (const [row] of results.slice(1)) {
          for (const [k, v] of Object.entries(row)) if (typeof v === "number" && typeof total[k] === "number") total[k] += v;
        }
        return [total];
      }
      return results.flat();
    },
    /** Runs SQL on one D1 binding (`worker.bindings`). */
    d1On: (binding, sql) => JSON.parse(wrangler(["d1", "execute", binding, "--local", "--json", "--command", sql, ...configArgs()], dir))[0].results,
    /** A tenant's shard, as its directory row says. */
    home(tenant) {
      if (shards <= 1) return 0;
      if (tenant === GLOBEX) return 1;
      homes[tenant] ??= JSON.parse(wrangler(["d1", "execute", "DB", "--local", "--json", "--command",
        `SELECT shard FROM clients WHERE id = '${tenant}' UNION ALL SELECT shard FROM agencies WHERE id = '${tenant}'`, ...configArgs()], dir))[0].results[0]?.shard ?? 0;
      return homes[tenant];
    },
    async login(email, { host } = {}) {
      const r = await worker.request("POST", "/api/auth/login", { host, json: { email, password: creds.users[email] } });
      if (r.status !== 200) throw new Error(`login ${email}: ${r.status} ${r.text}`);
      return r.json.access_token;
    },
    async stop({ keep = false } = {}) {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      if (!keep && fresh) rmSync(dir, { recursive: true, force: true });
      // A leak fails the whole test file (its exit code), without cutting its own clean-up short.
      const leaks = secretsIn(logs.join(""), { ...creds, vars: allVars });
      if (leaks.length) {
        console.error(`secrets in the Worker's log: ${leaks.join("; ")}`);
        process.exitCode = 1;
      }
    },
  };
  return worker;
}

/** Shapes no log line may hold: a JWT, an API key, a webhook secret, a one-time token. */
const SECRET_SHAPES = [
  ["a JWT", /eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}/],
  ["an API key", /gh_live_[0-9a-z]{16,}/],
  ["a webhook secret", /whsec_[A-Za-z0-9+/]{20,}/],
  ["a one-time token", /\b(?:inv|evf|mfa|pwr)_[0-9a-z]{52}\b/],
];

/** What in `text` (a Worker's whole log) is a secret: anything shaped like one, a demo password,
 * or the value of a configured secret. Each finding names what it is, never the value. */
export function secretsIn(text, { users = {}, vars = {} } = {}) {
  const found = SECRET_SHAPES.filter(([, re]) => re.test(text)).map(([what]) => what);
  for (const [email, password] of Object.entries(users)) if (password && text.includes(password)) found.push(`the password of ${email}`);
  for (const [name, value] of Object.entries(vars)) {
    if (/SECRET|_KEYS?$|PASSWORD|TOKEN/.test(name) && !name.includes("SITE_KEY") && typeof value === "string" && value.length >= 8 && text.includes(value)) found.push(`the value of ${name}`);
  }
  return found;
}

/**
 * A state directory with every D1 migrated and the demo seeded (files per binding from the seed
 * tool), made once per schema, seed build and shard count and copied for each fresh Worker: the
 * wrangler commands that make it take seconds each.
 */
function seededState(shards) {
  const configArgs = () => (shardConfig(shards) ? ["--config", shardConfig(shards)] : []);
  const stamp = crypto.createHash("sha256");
  for (const d of ["migrations", "migrations-shard"]) {
    for (const f of readdirSync(join(ROOT, d)).sort()) stamp.update(f).update(readFileSync(join(ROOT, d, f)));
  }
  stamp.update(String(statSync(SEED_BIN).mtimeMs)).update(String(shards));
  const dir = join(tmpdir(), `gatehouse-e2e-seeded-${stamp.digest("hex").slice(0, 16)}`);
  if (existsSync(join(dir, "credentials.txt"))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const b of bindingsFor(shards)) wrangler(["d1", "migrations", "apply", b, "--local", ...configArgs()], dir);
  const seed = spawnSync(SEED_BIN, ["--shards", String(shards), "--out", dir], { encoding: "utf8", maxBuffer: 16 << 20 });
  if (seed.status !== 0) throw new Error(`seed failed: ${seed.stderr}`);
  for (const b of bindingsFor(shards)) {
    const file = join(dir, `${b}.sql`);
    if (readFileSync(file, "utf8").trim()) wrangler(["d1", "execute", b, "--local", "--file", file, ...configArgs()], dir);
    rmSync(file);
  }
  // Last: its presence says the state is whole.
  writeFileSync(join(dir, "credentials.txt"), seed.stderr);
  return dir;
}

/**
 * One HTTP request over node:http, so any Host, Origin or raw body can be sent.
 * Returns { status, headers, text, json }.
 */
export function request(method, path, { port, host, headers = {}, json, body, token } = {}) {
  return new Promise((resolve, reject) => {
    const h = { host: host || `localhost:${port}`, ...headers };
    let payload = body;
    if (json !== undefined) {
      payload = JSON.stringify(json);
      h["content-type"] ??= "application/json";
    }
    if (token) h.authorization = `Bearer ${token}`;
    if (payload !== undefined) h["content-length"] ??= Buffer.byteLength(payload);
    const req = http.request({ hostname: "127.0.0.1", port, method, path, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const buf = Buffer.concat(chunks);
        const text = buf.toString("utf8");
        let parsed;
        try { parsed = JSON.parse(text); } catch {}
        resolve({ status: res.statusCode, headers: res.headers, text, json: parsed, bytes: buf });
      });
    });
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Sends raw bytes and returns the status line's code: for headers node:http refuses to send. */
export function rawRequest(port, text) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1", () => sock.end(Buffer.from(text, "latin1")));
    const chunks = [];
    sock.on("data", (c) => chunks.push(c));
    sock.on("end", () => {
      const res = Buffer.concat(chunks).toString("utf8");
      const m = res.match(/^HTTP\/1\.[01] (\d{3})/);
      resolve({ status: m ? Number(m[1]) : 0, text: res });
    });
    sock.on("error", reject);
    sock.setTimeout(15000, () => { sock.destroy(); reject(new Error("raw request timed out")); });
  });
}

/** HS256-signs any header and payload: tokens the Worker itself would never issue. */
export function forgeJwt(secret, header, payload) {
  const enc = (o) => Buffer.from(typeof o === "string" ? o : JSON.stringify(o)).toString("base64url");
  const h = enc(header);
  const p = enc(payload);
  const sig = crypto.createHmac("sha256", secret).update(`${h}.${p}`).digest("base64url");
  return `${h}.${p}.${sig}`;
}

/**
 * Waits, if it must, until the next `ms` milliseconds fall inside one window of a Rate Limiting
 * binding with a period of `periodSeconds`. Under `wrangler dev` the binding counts in fixed
 * windows aligned to the clock (miniflare's rate-limit object: window = floor(now / period)), so a
 * burst that straddles a window's edge is counted in two and more of it gets through.
 */
export async function withinOneWindow(periodSeconds, ms) {
  const period = periodSeconds * 1000;
  const left = period - (Date.now() % period);
  if (left < ms) await new Promise((r) => setTimeout(r, left + 100));
}

/** Asserts the JSON error shape; returns the code. */
export function errorCode(res) {
  if (!res.json || !res.json.error || typeof res.json.error.code !== "string" || typeof res.json.error.message !== "string") {
    throw new Error(`not the JSON error shape (${res.status}): ${res.text.slice(0, 300)}`);
  }
  return res.json.error.code;
}

/** A fake Turnstile siteverify: the token "pass" succeeds; every request is recorded. */
export function startFakeTurnstile() {
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      requests.push({ method: req.method, contentType: req.headers["content-type"], form });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ success: form.response === "pass" && form.secret === "ts-test-secret" }));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}/siteverify`,
        requests,
        stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

/** RFC 6238 TOTP (HMAC-SHA1, 30 s, 6 digits), written here independently of the Worker's. */
export function totp(b32, unixSecs) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of b32) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSecs / 30)));
  const h = crypto.createHmac("sha1", key).update(counter).digest();
  const o = h[19] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

/** Reads an object straight out of the local R2 store; null when it is absent. */
export function r2Object(worker, key) {
  try {
    return execFileSync(`${ROOT}/node_modules/.bin/wrangler`, ["r2", "object", "get", `gatehouse-files/${key}`, "--local", "--persist-to", worker.dir, "--pipe"], {
      cwd: ROOT, env: ENV, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20,
    });
  } catch (e) {
    if (/not found|does not exist|NoSuchKey/i.test(String(e.stderr) + String(e.stdout))) return null;
    throw new Error(`wrangler r2 object get failed: ${e.stderr}`);
  }
}

/** The system's headless Chromium, as every browser test runs it. */
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic", ...extraArgs],
  });
}
