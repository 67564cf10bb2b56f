// Gatehouse benchmark: ratios against an empty Worker on the same workerd, measured in one run.
// Usage: ./scripts/bench.sh   (BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_SCALE_CLIENTS to tune)
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, readdirSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { startWorker, freePorts, request, forgeJwt, testSecrets, ROOT, ENV } from "../tests/e2e/harness.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS || 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
// The rows against the TS peer, which the targets are read from, take more: on this 2-core
// machine one round in three can land on a busy moment, and the median of five shrugs off two.
const PEER_ROUNDS = Math.max(ROUNDS, 5);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS || 4);
const CONNS = Number(process.env.BENCH_CONNECTIONS || 8);
const SCALE_CLIENTS = Number(process.env.BENCH_SCALE_CLIENTS || 100_000);
const SCALE_DOMAINS = SCALE_CLIENTS * 3;
const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");
const TICK_US = 1e6 / Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim() || 100);
const ORIGIN = "https://www.acme-plumbing.example";
const log = (...a) => console.error("[bench]", ...a);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

// ---- processes ---------------------------------------------------------------------------
/** CPU ticks (utime+stime) under `pid`, a wrangler process: of every workerd process descending
 *  from it, and of the rest of its tree (wrangler's own Node process and any other child). */
function treeTicks(pid) {
  const parent = new Map();
  const comm = new Map();
  const ticks = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const name = stat.slice(stat.indexOf("(") + 1, close);
      const f = stat.slice(close + 2).split(" ");
      parent.set(Number(d), Number(f[1]));
      comm.set(Number(d), name);
      ticks.set(Number(d), Number(f[11]) + Number(f[12]));
    } catch {}
  }
  const total = { workerd: 0, node: 0 };
  for (const [p, name] of comm) {
    for (let q = p; q > 1; q = parent.get(q) || 0) {
      if (q === pid) { total[name.startsWith("workerd") ? "workerd" : "node"] += ticks.get(p); break; }
    }
  }
  return total;
}

async function startEmpty(config = "bench/empty/wrangler.toml") {
  const [port, inspector] = await freePorts(2);
  const t0 = performance.now();
  // A throw-away state dir, so the baselines never write into the repository.
  const state = mkdtempSync(join(tmpdir(), "gatehouse-bench-empty-"));
  const child = spawn(WRANGLER, ["dev", "--config", join(ROOT, config), "--port", String(port), "--inspector-port", String(inspector), "--ip", "127.0.0.1", "--persist-to", state, "--show-interactive-dev-session=false", "--log-level", "warn"], { cwd: ROOT, env: ENV, stdio: "ignore" });
  for (;;) {
    try { if ((await request("GET", "/", { port })).status === 200) break; } catch {}
    if (child.exitCode !== null) throw new Error("empty worker exited");
    await new Promise((r) => setTimeout(r, 50));
  }
  const coldMs = performance.now() - t0;
  const stop = async () => {
    await new Promise((r) => { child.once("exit", r); child.kill("SIGTERM"); });
    rmSync(state, { recursive: true, force: true });
  };
  return { port, pid: child.pid, coldMs, stop };
}

/** The TypeScript peer from ../shared/yardstick (copied by scripts/bench.sh to YARDSTICK_DIR), as written. */
async function startPeer() {
  const dir = process.env.YARDSTICK_DIR;
  if (!dir) throw new Error("YARDSTICK_DIR is not set (scripts/bench.sh sets it)");
  const config = join(dir, "peer-ts", "wrangler.toml");
  const state = mkdtempSync(join(tmpdir(), "gatehouse-bench-peer-"));
  execFileSync(WRANGLER, ["d1", "migrations", "apply", "peer-db", "--local", "--config", config, "--persist-to", state], { cwd: join(dir, "peer-ts"), env: ENV, stdio: "ignore" });
  const [port, inspector] = await freePorts(2);
  const child = spawn(WRANGLER, ["dev", "--config", config, "--port", String(port), "--inspector-port", String(inspector), "--ip", "127.0.0.1", "--persist-to", state, "--show-interactive-dev-session=false", "--log-level", "warn"], { cwd: join(dir, "peer-ts"), env: ENV, stdio: "ignore" });
  for (;;) {
    try { if ((await request("GET", "/healthz", { port })).status === 200) break; } catch {}
    if (child.exitCode !== null) throw new Error("peer worker exited");
    await new Promise((r) => setTimeout(r, 50));
  }
  const stop = async () => {
    await new Promise((r) => { child.once("exit", r); child.kill("SIGTERM"); });
    rmSync(state, { recursive: true, force: true });
  };
  return { port, pid: child.pid, stop };
}

/** The peer's version of each scenario (it has no write endpoint, so api-write is not compared). */
function peerScenarios() {
  const now = Math.floor(Date.now() / 1000);
  const token = forgeJwt("bench-peer-secret-0123456789abcdef0123456789", { alg: "HS256", typ: "JWT" },
    { sub: "usr_1", tenant: "cli_1", iss: "peer", aud: "peer-api", iat: now, exp: now + 24 * 3600 });
  return {
    allowed: { name: "peer-widget-allowed", path: "/api/widget/v1/config?key=pk_test_1", headers: { origin: "https://example.com" }, expect: 200 },
    denied: { name: "peer-widget-denied", path: "/api/widget/v1/config?key=pk_test_1", headers: { origin: "https://evil.example" }, expect: 403 },
    read: { name: "peer-api-read", path: "/api/clients/cli_1/contacts?limit=50", headers: { authorization: `Bearer ${token}` }, expect: 200 },
  };
}

// One set of secrets for every Gatehouse process in the run (restarts keep the same state), so the
// benchmark needs no .dev.vars.
const SECRETS = testSecrets();
/** What the TS peer does not do: no request log line (LOG_LEVEL below info), no per-client rates. */
const LEAN = { LOG_LEVEL: "warn", API_RATE_LIMITS: "false" };
async function startGatehouse(opts = {}) {
  const t0 = performance.now();
  // "warn", as every baseline runs: at "log" wrangler logs each request, which costs workerd about
  // 230 µs of CPU per request on this machine and would be billed to Gatehouse alone.
  // Per-client API rates on, as deployed; the benchmark's client is on the enterprise plan.
  // No `--test-scheduled`: the baselines run without the middleware wrangler serves it through.
  const w = await startWorker({ logLevel: "warn", testScheduled: false, ...opts, vars: { ...SECRETS, API_RATE_LIMITS: "true", ...(opts.vars || {}) } });
  w.coldMs = performance.now() - t0;
  return w;
}

// ---- wrk -------------------------------------------------------------------------------
function luaScript({ method = "GET", headers = {}, body, expect, rotateIp = false }) {
  const hdrs = Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`).join("\n");
  // Cold gate loads are rate-limited per client IP (GATE_MISS_LIMITER), as a flood of made-up
  // keys from one address should be; real cold traffic comes from many visitors, so spread it.
  const rotate = rotateIp
    ? `local n = 0
request = function()
  n = n + 1
  wrk.headers["cf-connecting-ip"] = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format()
end`
    : "";
  return `wrk.method = ${JSON.stringify(method)}
${hdrs}
${body ? `wrk.body = ${JSON.stringify(body)}` : ""}
${rotate}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) unexpected = 0; server_errors = 0 end
function response(status, headers, body)
  if status ~= ${expect} then unexpected = unexpected + 1 end
  if status >= 500 then server_errors = server_errors + 1 end
end
function done(summary, latency, requests)
  local u, s = 0, 0
  for _, t in ipairs(threads) do u = u + t:get("unexpected"); s = s + t:get("server_errors") end
  io.write(string.format("GH unexpected=%d server_errors=%d requests=%d p50=%d p99=%d\\n", u, s, summary.requests, latency:percentile(50), latency:percentile(99)))
end
`;
}

const tmp = mkdtempSync(join(tmpdir(), "gatehouse-bench-"));
function wrk(port, scenario, seconds = SECONDS, conns = CONNS) {
  const script = join(tmp, `${scenario.name}.lua`);
  writeFileSync(script, luaScript(scenario));
  const host = scenario.host ? scenario.host.replace("PORT", port) : `localhost:${port}`;
  const out = execFileSync("wrk", ["-t2", `-c${conns}`, `-d${seconds}s`, "--timeout", "10s", "-H", `Host: ${host}`, "-s", script, `http://127.0.0.1:${port}${scenario.path}`], { encoding: "utf8" });
  const gh = out.match(/GH unexpected=(\d+) server_errors=(\d+) requests=(\d+) p50=(\d+) p99=(\d+)/);
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]);
  const socket = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    rps, requests: Number(gh[3]), p50_ms: Number(gh[4]) / 1000, p99_ms: Number(gh[5]) / 1000,
    unexpected: Number(gh[1]), server_errors: Number(gh[2]),
    socket_errors: socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

/** One measured round on one target: wrk, the workerd CPU it cost and the CPU of the rest of the
 *  wrangler tree (its Node processes; esbuild and the launcher idle). */
function round(target, scenario, seconds, conns) {
  const before = treeTicks(target.pid);
  const r = wrk(target.port, scenario, seconds, conns);
  const after = treeTicks(target.pid);
  const per = (k) => (r.requests ? ((after[k] - before[k]) * TICK_US) / r.requests : 0);
  r.cpu_us_per_req = per("workerd");
  // Not in the workerd figure: what wrangler's Node process spends on the same requests.
  r.node_us_per_req = per("node");
  const bad = r.unexpected + r.server_errors + r.socket_errors;
  if (bad) throw new Error(`${scenario.name} on port ${target.port}: ${r.unexpected} unexpected statuses, ${r.server_errors} 5xx, ${r.socket_errors} socket errors`);
  return r;
}

/**
 * A discarded warm-up round on each leg ([name, target, scenario]; V8 tiers wasm and JS up
 * lazily), then `rounds` rounds with every leg once a round; each round starts with the next leg
 * in turn, so none always runs first or always follows the same one. Each leg's rounds, by name.
 */
function measure(legs, rounds, seconds, conns) {
  for (const [, target, sc] of legs) round(target, sc, WARMUP, conns);
  const runs = Object.fromEntries(legs.map(([name]) => [name, []]));
  for (let i = 0; i < rounds; i++) {
    for (let j = 0; j < legs.length; j++) {
      const [name, target, sc] = legs[(i + j) % legs.length];
      runs[name].push(round(target, sc, seconds, conns));
    }
  }
  return runs;
}

/** The median of each of `keys` over the rounds `rs`. */
const medians = (rs, keys) => Object.fromEntries(keys.map((k) => [k, median(rs.map((x) => x[k]))]));

/** Gatehouse against the empty Worker and any other baselines (`measure`), medians of each. */
function compare(gh, empty, scenario, { seconds = SECONDS, conns = CONNS, rust = null, peer = null, rounds = ROUNDS } = {}) {
  const baseline = { ...scenario, expect: 200 };
  const legs = [["gatehouse", gh, scenario], ["empty", empty, baseline]];
  if (rust) legs.push(["rust_empty", rust, baseline]);
  if (peer) legs.push(["peer", peer.target, peer.scenario]);
  const runs = measure(legs, rounds, seconds, conns);
  const res = { scenario: scenario.name, rounds };
  for (const [name] of legs) {
    // Every round's req/s too, so a reader can see the spread behind each median.
    res[name] = { ...medians(runs[name], ["rps", "p50_ms", "p99_ms", "cpu_us_per_req", "node_us_per_req", "requests"]), rounds_rps: runs[name].map((x) => x.rps) };
  }
  if (peer) {
    res.rps_ratio_vs_peer = res.gatehouse.rps / res.peer.rps;
    res.peer_extra_cpu_us = res.peer.cpu_us_per_req - res.empty.cpu_us_per_req;
  }
  res.rps_ratio = res.gatehouse.rps / res.empty.rps;
  res.extra_cpu_us = res.gatehouse.cpu_us_per_req - res.empty.cpu_us_per_req;
  if (rust) {
    res.rps_ratio_vs_rust_empty = res.gatehouse.rps / res.rust_empty.rps;
    res.extra_cpu_us_vs_rust_empty = res.gatehouse.cpu_us_per_req - res.rust_empty.cpu_us_per_req;
  }
  log(scenario.name, JSON.stringify(res));
  return res;
}

/**
 * A before/after pair in one run: the same scenario on an earlier build (BENCH_BEFORE_REV) and on
 * this one (`measure`). Ratios are after ÷ before.
 */
function pair(after, before, scenario, beforeScenario, { seconds = SECONDS, conns = CONNS } = {}) {
  const runs = measure([["after", after, scenario], ["before", before, beforeScenario]], ROUNDS, seconds, conns);
  const keys = ["rps", "p50_ms", "cpu_us_per_req", "node_us_per_req"];
  const res = { scenario: scenario.name, after: medians(runs.after, keys), before: medians(runs.before, keys) };
  res.rps_ratio = res.after.rps / res.before.rps;
  res.cpu_saved_us = res.before.cpu_us_per_req - res.after.cpu_us_per_req;
  log("before/after", scenario.name, JSON.stringify(res));
  return res;
}

// ---- dataset -----------------------------------------------------------------------------
async function prepare(w) {
  const platform = await w.login("admin@gatehouse.test");
  const acme = await w.login("admin@acme.test");
  const me = (await w.request("GET", "/api/me", { token: acme })).json;
  const clientId = me.context.tenant;
  // Enterprise: 30,000 API requests a minute and room for every contact api-write adds.
  const plan = await w.request("PUT", `/api/clients/${clientId}`, { token: platform, json: { plan: "enterprise" } });
  if (plan.status !== 200) throw new Error(`bench client plan: ${plan.text}`);
  const d = await w.request("POST", `/api/clients/${clientId}/domains`, { token: acme, json: { domain: "www.acme-plumbing.example", purpose: "widget" } });
  await w.request("POST", `/api/clients/${clientId}/domains/${d.json.id}/verify`, { token: platform, json: { force: true } });
  for (let i = 0; i < 60; i++) {
    await w.request("POST", `/api/clients/${clientId}/contacts`, { token: acme, json: { name: `Lead ${i}`, email: `lead${i}@example.com`, phone: "+1 555 0100", message: "Please call me back about a leaking pipe." } });
  }
  return { clientId, token: acme };
}

function scenarios(w, ctx) {
  const key = w.keys.acme;
  const json = { "content-type": "application/json" };
  return {
    static: { name: "static", path: "/widget.js", expect: 200 },
    allowed: { name: "widget-allowed", path: `/api/widget/v1/config?key=${key}`, headers: { origin: ORIGIN }, expect: 200 },
    denied: { name: "widget-denied", path: `/api/widget/v1/config?key=${key}`, headers: { origin: "https://evil.example" }, expect: 403 },
    read: { name: "api-read", path: `/api/clients/${ctx.clientId}/contacts?limit=50`, headers: { authorization: `Bearer ${ctx.token}` }, expect: 200 },
    write: { name: "api-write", method: "POST", path: `/api/clients/${ctx.clientId}/contacts`, headers: { ...json, authorization: `Bearer ${ctx.token}` }, body: JSON.stringify({ name: "Bench Lead", email: "bench@example.com" }), expect: 201 },
    login: { name: "login", method: "POST", path: "/api/auth/login", headers: json, body: JSON.stringify({ email: "user@acme.test", password: w.users["user@acme.test"] }), expect: 200 },
  };
}

/** The control plane's D1 file in a state directory: the one database with a `users` table. */
function d1File(dir) {
  const base = join(dir, "v3", "d1", "miniflare-D1DatabaseObject");
  for (const f of readdirSync(base).filter((n) => n.endsWith(".sqlite"))) {
    const db = new DatabaseSync(join(base, f));
    const control = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'users'").get().n > 0;
    db.close();
    if (control) return join(base, f);
  }
  throw new Error(`no control-plane D1 under ${base}`);
}

/** Inserts `n` clients (one agency each 1000, the agencies spread over `shards` shards) and 3
 * verified domains per client, into the control plane's directory. */
function seedScale(dir, n, shards) {
  const db = new DatabaseSync(d1File(dir));
  const now = Date.now();
  const id = (p, i) => `${p}_${String(i).padStart(24, "0").replace(/^0/, "9")}`;
  db.exec("BEGIN");
  const agency = db.prepare("INSERT INTO agencies (id, name, slug, status, plan, created_at, updated_at, shard) VALUES (?, ?, ?, 'active', 'growth', ?, ?, ?)");
  const client = db.prepare("INSERT INTO clients (id, agency_id, name, slug, kind, status, plan, feature_flags, test_mode, publishable_key, created_at, updated_at, shard) VALUES (?, ?, ?, ?, 'organization', 'active', 'starter', '{}', 0, ?, ?, ?, ?)");
  const home = (a) => (shards > 0 ? a % shards : 0);
  const domain = db.prepare("INSERT INTO domains (id, client_id, hostname, site, scheme, port, purpose, status, verified_by, verification_token, consecutive_failures, verified_at, last_checked_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'https', NULL, 'widget', 'verified', 'dns', 'x', 0, ?, ?, ?, ?)");
  for (let a = 0; a < Math.ceil(n / 1000); a++) agency.run(id("agy", a), `Scale Agency ${a}`, `scale-agency-${a}`, now, now, home(a));
  for (let i = 0; i < n; i++) {
    const c = id("cli", i);
    const a = Math.floor(i / 1000);
    client.run(c, id("agy", a), `Scale Client ${i}`, `scale-client-${i}`, `pk_${String(i).padStart(52, "0")}`, now, now, home(a));
    for (let k = 0; k < 3; k++) domain.run(id("dom", i * 3 + k), c, `site${k}.scale-client-${i}.example`, `scale-client-${i}.example`, now, now, now, now);
  }
  db.exec("COMMIT");
  const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT c.id, c.agency_id, c.name, c.status, c.test_mode, d.hostname, d.scheme, d.port FROM clients c LEFT JOIN domains d ON d.client_id = c.id AND d.status = 'verified' AND d.purpose IN ('widget', 'both') WHERE c.publishable_key = ?`).all("pk_x");
  const counts = db.prepare("SELECT (SELECT count(*) FROM clients) AS clients, (SELECT count(*) FROM domains) AS domains").get();
  db.close();
  return { plan: plan.map((r) => r.detail), counts };
}

// ---- a move between shards --------------------------------------------------------------
const MOVE_ROWS = Number(process.env.BENCH_MOVE_ROWS || 50_000);

/** Moves the demo agency (with `MOVE_ROWS` more contacts for Acme) from SHARD_0 to SHARD_1,
 *  stepping it as fast as the API allows, and times each phase at step granularity. */
async function measureMove() {
  const w = await startGatehouse({ vars: { SHARD_MOVE_SETTLE_MS: "0", DEBUG_HEADERS: "false" } });
  try {
    const platform = await w.login("admin@gatehouse.test");
    const agencyToken = await w.login("agency.admin@northwind.test");
    const agency = (await w.request("GET", "/api/me", { token: agencyToken })).json.context.tenant;
    const acme = (await w.request("GET", "/api/clients", { token: agencyToken })).json.items.find((c) => c.slug === "acme").id;
    w.d1On("SHARD_0", `INSERT INTO contacts (id, client_id, name, email, phone, message, source, created_at, updated_at)
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${MOVE_ROWS})
      SELECT printf('con_move%020d', i), '${acme}', 'Lead ' || i, 'lead' || i || '@example.com', '+1 555 0100',
        'Please call me back about a leaking pipe.', 'import', 1800000000000 + i, 1800000000000 + i FROM n`);
    const t0 = performance.now();
    const started = await w.request("POST", "/api/admin/shard-moves", { token: platform, json: { agency_id: agency, to_shard: 1 } });
    if (started.status !== 201) throw new Error(`move: ${started.text}`);
    const at = { started: 0 };
    let m = started.json;
    let steps = 0;
    while (!["done", "cancelled", "failed"].includes(m.phase) && steps < 10_000) {
      const r = await w.request("POST", `/api/admin/shard-moves/${m.id}/step`, { token: platform });
      if (r.status !== 200) throw new Error(`move step: ${r.status} ${r.text}`);
      m = r.json;
      steps++;
      at[m.phase] ??= (performance.now() - t0) / 1000;
    }
    if (m.phase !== "done") throw new Error(`move ended ${m.phase}: ${m.error}`);
    const rows = m.rows_copied;
    return {
      rows, steps, rounds: m.rounds,
      copy_s: at.verifying - (at.copying ?? 0), verify_s: at.flipped - at.verifying, fence_s: at.flipped, clean_s: at.done - at.flipped,
      copy_rows_per_s: rows / (at.verifying - (at.copying ?? 0)), verify_rows_per_s: rows / (at.flipped - at.verifying),
      note: "local D1 under wrangler dev, SHARD_MOVE_SETTLE_MS=0; phase times at step granularity (12 units of 200 rows); the fence is start to flip",
    };
  } finally {
    await w.stop();
  }
}

if (process.env.BENCH_ONLY === "move") {
  const move = await measureMove();
  writeFileSync(join(ROOT, "bench/results/move.json"), JSON.stringify(move, null, 2) + "\n");
  console.log(JSON.stringify(move, null, 2));
  process.exit(0);
}

// BENCH_ONLY=pair: only a before/after pair on the small dataset, for one change measured quickly.
// "Before" is this build with the vars in BENCH_PAIR_VARS (JSON) added, or the build that
// BENCH_BEFORE_CONFIG names (BENCH_PAIR_OPTS, JSON, adds harness options to it); BENCH_SCENARIOS
// picks from allowed,denied,read,write.
if (process.env.BENCH_ONLY === "pair") {
  const picks = (process.env.BENCH_SCENARIOS || "allowed,denied,read,write").split(",");
  const extra = JSON.parse(process.env.BENCH_PAIR_VARS || "{}");
  const after = await startGatehouse({ vars: { DEBUG_HEADERS: "false" } });
  const before = await startGatehouse({ config: process.env.BENCH_BEFORE_CONFIG, ...JSON.parse(process.env.BENCH_PAIR_OPTS || "{}"), vars: { DEBUG_HEADERS: "false", ...extra } });
  try {
    const asc = scenarios(after, await prepare(after));
    const bsc = scenarios(before, await prepare(before));
    const out = { before: process.env.BENCH_BEFORE_CONFIG || extra };
    for (const k of picks) out[asc[k].name] = pair(after, before, asc[k], bsc[k]);
    console.log(JSON.stringify(out, null, 2));
  } finally {
    await after.stop();
    await before.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(0);
}

// BENCH_ONLY=peer: only the small dataset's rows against the empty Worker and the TS peer
// (BENCH_SCENARIOS from allowed,denied,read; BENCH_GH_VARS, JSON, configures Gatehouse), for a
// quick look between full runs.
if (process.env.BENCH_ONLY === "peer") {
  const picks = (process.env.BENCH_SCENARIOS || "allowed,denied,read").split(",");
  const e = await startEmpty();
  const p = await startPeer();
  const g = await startGatehouse({ vars: { DEBUG_HEADERS: "false", ...JSON.parse(process.env.BENCH_GH_VARS || "{}") } });
  try {
    const sc = scenarios(g, await prepare(g));
    const psc = peerScenarios();
    for (const k of picks) {
      const r = compare(g, e, sc[k], { peer: { target: p, scenario: psc[k] }, rounds: PEER_ROUNDS });
      console.log(`${sc[k].name}: ${r.gatehouse.rps.toFixed(0)} req/s, ${r.rps_ratio_vs_peer.toFixed(2)}x the peer (${r.peer.rps.toFixed(0)}), ${r.rps_ratio.toFixed(2)}x empty; extra CPU ${r.extra_cpu_us.toFixed(0)} µs, peer's ${r.peer_extra_cpu_us.toFixed(0)}`);
    }
  } finally {
    await g.stop();
    await p.stop();
    await e.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(0);
}

// ---- run ---------------------------------------------------------------------------------
const results = { date: new Date().toISOString(), machine: { cpus: (await import("node:os")).cpus().length }, config: { seconds: SECONDS, rounds: ROUNDS, connections: CONNS, scale_clients: SCALE_CLIENTS } };
const started = Date.now();
let gh, empty, rustEmpty, peer;
try {
  // Sizes.
  const size = (p) => { const b = readFileSync(join(ROOT, p)); return { raw: b.length, gzip: gzipSync(b, { level: 9 }).length }; };
  results.size = { wasm: size("build/index_bg.wasm"), glue: size("build/index.js"), widget: size("widget/dist/widget.js") };
  if (existsSync(join(ROOT, "build/index_bg.pre-opt.wasm"))) results.size.wasm_before_wasm_opt = size("build/index_bg.pre-opt.wasm");

  // Cold start on an already-migrated state, three times each, alternating.
  const prepared = await startGatehouse({});
  await prepared.stop({ keep: true });
  const cold = { gatehouse: [], empty: [] };
  for (let i = 0; i < 3; i++) {
    const e = await startEmpty(); cold.empty.push(e.coldMs); await e.stop();
    const g = await startGatehouse({ persist: prepared.dir }); cold.gatehouse.push(g.coldMs); await g.stop({ keep: true });
  }
  rmSync(prepared.dir, { recursive: true, force: true });
  results.cold_start = { gatehouse_ms: median(cold.gatehouse), empty_ms: median(cold.empty), ratio: median(cold.gatehouse) / median(cold.empty), note: "wrangler dev process start to the first 200 (/healthz: one D1 query); migrations already applied" };

  empty = await startEmpty();
  rustEmpty = await startEmpty("bench/rust-empty/wrangler.toml");
  peer = await startPeer();
  const psc = peerScenarios();
  gh = await startGatehouse({ vars: { DEBUG_HEADERS: "true" } });
  const ctx = await prepare(gh);
  const sc = scenarios(gh, ctx);
  // The cold-cache decision is one D1 query, and a warm one none.
  const probe = async () => Number((await gh.request("GET", sc.allowed.path, { headers: sc.allowed.headers })).headers["x-gatehouse-db-queries"]);
  results.gate_queries = { cold: await probe(), warm: await probe() };
  await gh.stop({ keep: true });
  gh = await startGatehouse({ persist: gh.dir, vars: { DEBUG_HEADERS: "false" } });
  results.small = {};
  results.small.static = compare(gh, empty, sc.static, { rust: rustEmpty });
  for (const k of ["allowed", "denied", "read"]) results.small[sc[k].name] = compare(gh, empty, sc[k], { rust: k === "read" ? null : rustEmpty, peer: { target: peer, scenario: psc[k] }, rounds: PEER_ROUNDS });
  // The peer's job: the same API requests with what the peer does not do switched off (the
  // request's log line and the per-client rate limit), on its own copy of the dataset. Under
  // `wrangler dev` both are costly in a way production is not. Wrangler keeps the inspector
  // attached, so each log line is also an inspector event sent to wrangler's inspector proxy (a
  // second workerd in the measured tree) besides the line workerd writes to wrangler's Node
  // process; each rate-limit check is a fetch to a local Durable Object that writes its counter
  // to SQLite. The pairs say what the two cost, together and each alone, round by round against
  // the Worker as deployed; the read pairs run before either Worker has taken a write round, so
  // the datasets are alike.
  const lean = await startGatehouse({ vars: { DEBUG_HEADERS: "false", ...LEAN } });
  try {
    const lsc = scenarios(lean, await prepare(lean));
    results.small["api-read, the peer's job"] = compare(lean, empty, { ...lsc.read, name: "api-read, the peer's job" }, { peer: { target: peer, scenario: psc.read } });
    results.extras = { read: pair(gh, lean, sc.read, lsc.read) };
    for (const [part, vars] of [["log_line", { LOG_LEVEL: "warn" }], ["rate_limit", { API_RATE_LIMITS: "false" }]]) {
      const without = await startGatehouse({ vars: { DEBUG_HEADERS: "false", ...vars } });
      try {
        results.extras[part] = pair(gh, without, sc.read, scenarios(without, await prepare(without)).read);
      } finally {
        await without.stop();
      }
    }
    results.extras.write = pair(gh, lean, sc.write, lsc.write);
    results.small[sc.write.name] = compare(gh, empty, sc.write);
    results.small["api-write, the peer's job"] = compare(lean, empty, { ...lsc.write, name: "api-write, the peer's job" });
  } finally {
    await lean.stop();
  }
  results.small.login = compare(gh, empty, sc.login, { conns: 2 });
  results.small.login.cpu_ms_per_login = results.small.login.gatehouse.cpu_us_per_req / 1000;
  // Before/after: the same scenarios on an earlier build, on its own copy of the dataset.
  if (process.env.BENCH_BEFORE_CONFIG) {
    // A build from before the data shards binds DB alone, and its dataset is seeded into that one
    // database; a later one binds the shards its wrangler.toml names, as this build does.
    const sharded = readFileSync(process.env.BENCH_BEFORE_CONFIG, "utf8").includes('binding = "SHARD_0"');
    // This build on a fresh copy of the dataset too (gh has taken write rounds by now), so both
    // sides start alike and take their writes round by round.
    const before = await startGatehouse({ config: process.env.BENCH_BEFORE_CONFIG, shards: sharded ? gh.shards : 0, vars: { DEBUG_HEADERS: "false" } });
    const after = await startGatehouse({ vars: { DEBUG_HEADERS: "false" } });
    try {
      const bsc = scenarios(before, await prepare(before));
      const asc = scenarios(after, await prepare(after));
      results.before_after = { rev: process.env.BENCH_BEFORE_REV };
      for (const k of ["allowed", "denied", "read", "write"]) results.before_after[sc[k].name] = pair(after, before, asc[k], bsc[k]);
    } finally {
      await before.stop();
      await after.stop();
    }
  }
  await gh.stop({ keep: true });
  gh = await startGatehouse({ persist: gh.dir, vars: { DEBUG_HEADERS: "false", GATE_CACHE_TTL_MS: "0" } });
  results.small["widget-cold"] = compare(gh, empty, { ...sc.allowed, name: "widget-cold", rotateIp: true });
  await gh.stop({ keep: true });

  // Scale: 100k clients, 300k domains, same scenarios: on two data shards (as wrangler.toml binds
  // them, the state measured above) and on one (its own state, made the same way).
  log(`seeding ${SCALE_CLIENTS} clients and ${SCALE_DOMAINS} domains`);
  const seeded = seedScale(gh.dir, SCALE_CLIENTS, gh.shards);
  results.scale_dataset = seeded;
  gh = await startGatehouse({ persist: gh.dir, vars: { DEBUG_HEADERS: "false" } });
  // Access tokens live 15 minutes, shorter than the run: a fresh one for each later phase.
  Object.assign(sc, scenarios(gh, { ...ctx, token: await gh.login("admin@acme.test") }));
  results.scale = { "widget-allowed": compare(gh, empty, sc.allowed), "api-read": compare(gh, empty, sc.read) };
  await gh.stop({ keep: true });
  gh = await startGatehouse({ persist: gh.dir, vars: { DEBUG_HEADERS: "false", GATE_CACHE_TTL_MS: "0" } });
  results.scale["widget-cold"] = compare(gh, empty, { ...sc.allowed, name: "widget-cold", rotateIp: true });
  results.scale_ratio_p50 = Object.fromEntries(Object.keys(results.scale).map((k) => [k, results.scale[k].gatehouse.p50_ms / results.small[k].gatehouse.p50_ms]));
  results.scale_ratio_cpu = Object.fromEntries(Object.keys(results.scale).map((k) => [k, results.scale[k].gatehouse.cpu_us_per_req / results.small[k].gatehouse.cpu_us_per_req]));
  // The same 100k rows on one shard, paired round by round with the two-shard Worker.
  await gh.stop({ keep: true });
  gh = await startGatehouse({ persist: gh.dir, vars: { DEBUG_HEADERS: "false" } });
  let one = await startGatehouse({ shards: 1, vars: { DEBUG_HEADERS: "false" } });
  try {
    const osc = scenarios(one, await prepare(one));
    await one.stop({ keep: true });
    seedScale(one.dir, SCALE_CLIENTS, 1);
    one = await startGatehouse({ shards: 1, persist: one.dir, vars: { DEBUG_HEADERS: "false" } });
    Object.assign(osc, scenarios(one, { clientId: osc.read.path.split("/")[3], token: await one.login("admin@acme.test") }));
    Object.assign(sc, scenarios(gh, { ...ctx, token: await gh.login("admin@acme.test") }));
    results.scale_shards = { shards: gh.shards, vs: 1 };
    for (const k of ["allowed", "read", "write"]) results.scale_shards[sc[k].name] = pair(gh, one, sc[k], osc[k]);
  } finally {
    await one.stop();
  }
  await gh.stop();
  gh = null;
  log(`moving an agency with ${MOVE_ROWS} more rows between shards`);
  results.move = await measureMove();
} finally {
  await gh?.stop();
  await empty?.stop();
  await rustEmpty?.stop();
  await peer?.stop();
  rmSync(tmp, { recursive: true, force: true });
}
results.duration_s = (Date.now() - started) / 1000;

// ---- report ------------------------------------------------------------------------------
const f = (x, d = 2) => (x === undefined || Number.isNaN(x) ? "—" : Number(x).toFixed(d));
const rows = [];
const add = (set, name, r) => rows.push(`| ${set} | ${name} | ${f(r.gatehouse.rps, 0)} | ${f(r.empty.rps, 0)} | ${f(r.rps_ratio)}× | ${r.peer ? f(r.peer.rps, 0) : "—"} | ${r.peer ? f(r.rps_ratio_vs_peer) + "×" : "—"} | ${f(r.gatehouse.p50_ms)} / ${f(r.gatehouse.p99_ms)} | ${f(r.gatehouse.cpu_us_per_req, 0)} | ${f(r.empty.cpu_us_per_req, 0)} | ${f(r.extra_cpu_us, 0)} | ${r.peer ? f(r.peer_extra_cpu_us, 0) : "—"} | ${f(r.gatehouse.node_us_per_req, 0)}${r.peer ? ` (${f(r.peer.node_us_per_req, 0)})` : ""} |`);
for (const [k, r] of Object.entries(results.small)) add("small", k, r);
for (const [k, r] of Object.entries(results.scale)) add(`${SCALE_CLIENTS / 1000}k tenants`, k, r);
const s = results.size;
const md = `Measured ${results.date} on ${results.machine.cpus} cores, \`wrk -t2 -c${CONNS} -d${SECONDS}s\`, ${ROUNDS} alternating rounds (medians) after a ${WARMUP} s warm-up round per target; ${PEER_ROUNDS} rounds for the rows against the TS peer. Every Worker under \`wrangler dev\` on the same workerd. The TS peer is \`../shared/yardstick/peer-ts\` (Hono + D1) as written; it has no write endpoint.

| dataset | scenario | req/s | empty req/s | vs empty | TS peer req/s | vs peer | p50 / p99 ms | workerd CPU µs/req | empty µs/req | extra µs/req | peer extra µs/req | wrangler Node µs/req (peer's) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join("\n")}

- Against the smallest workers-rs Worker (\`bench/rust-empty\`, same worker version and profile) on the same workerd: ${["static", "widget-allowed", "widget-denied"].map((k) => `${k} ${f(results.small[k].rps_ratio_vs_rust_empty)}× its req/s, ${f(results.small[k].extra_cpu_us_vs_rust_empty, 0)} µs extra CPU (it pays ${f(results.small[k].rust_empty.cpu_us_per_req - results.small[k].empty.cpu_us_per_req, 0)} µs over the empty JS Worker itself)`).join("; ")}.
${results.extras ? `- "The peer's job": Gatehouse with \`LOG_LEVEL=warn\` and \`API_RATE_LIMITS=false\`, so it does what the peer does (verify the JWT, check membership and client, list 50 contacts) and no more. As deployed, each API request also writes a log line (under \`wrangler dev\` it is also an inspector event for wrangler's inspector proxy, a second workerd, which posts every event it receives to wrangler's Node process as a debug-log request and keeps it in a buffer while no DevTools is attached) and asks the Rate Limiting binding (under \`wrangler dev\`, a fetch to a local Durable Object that writes its counter to SQLite). Those two cost, in a pair in this run (deployed ÷ the peer's job): api-read ${f(results.extras.read.rps_ratio)}× req/s and ${f(-results.extras.read.cpu_saved_us, 0)} µs of CPU per request; api-write ${f(results.extras.write.rps_ratio)}× req/s and ${f(-results.extras.write.cpu_saved_us, 0)} µs. Each alone, on api-read (deployed ÷ deployed without it): the log line ${f(results.extras.log_line.rps_ratio)}× req/s and ${f(-results.extras.log_line.cpu_saved_us, 0)} µs of workerd CPU, and wrangler's Node process ${f(results.extras.log_line.before.node_us_per_req, 0)} → ${f(results.extras.log_line.after.node_us_per_req, 0)} µs per request; the rate limit ${f(results.extras.rate_limit.rps_ratio)}× req/s and ${f(-results.extras.rate_limit.cpu_saved_us, 0)} µs.\n` : ""}- Login: ${f(results.small.login.cpu_ms_per_login, 1)} ms of workerd CPU per argon2id login (m=19 MiB, t=2, p=1); the Free plan allows 10 ms per request, Paid 30 s.
- Gate D1 queries: cold cache ${results.gate_queries.cold}, warm ${results.gate_queries.warm}. Query plan at ${SCALE_CLIENTS} tenants: ${results.scale_dataset.plan.join("; ")}.
- ${SCALE_CLIENTS} clients / ${results.scale_dataset.counts.domains} domains vs the demo dataset, p50 ratio: ${Object.entries(results.scale_ratio_p50).map(([k, v]) => `${k} ${f(v)}×`).join(", ")}; CPU ratio: ${Object.entries(results.scale_ratio_cpu).map(([k, v]) => `${k} ${f(v)}×`).join(", ")}.
- Cold start (process start → first 200): Gatehouse ${f(results.cold_start.gatehouse_ms, 0)} ms, empty ${f(results.cold_start.empty_ms, 0)} ms (${f(results.cold_start.ratio)}×).
- Size: wasm ${f(s.wasm.raw / 1024, 0)} KB raw, ${f(s.wasm.gzip / 1024, 0)} KB gzipped${s.wasm_before_wasm_opt ? ` (before wasm-opt: ${f(s.wasm_before_wasm_opt.raw / 1024, 0)} KB raw, ${f(s.wasm_before_wasm_opt.gzip / 1024, 0)} KB gzipped)` : ""}; JS glue ${f(s.glue.raw / 1024, 1)} KB raw, ${f(s.glue.gzip / 1024, 1)} KB gzipped; widget ${f(s.widget.raw / 1024, 1)} KB raw, ${f(s.widget.gzip / 1024, 2)} KB gzipped.
${results.before_after ? `- Before/after in this run, against \`${results.before_after.rev}\` (each build on its own fresh copy of the dataset, alternating rounds; after ÷ before): ${["widget-allowed", "widget-denied", "api-read", "api-write"].map((k) => { const r = results.before_after[k]; return `${k} ${f(r.rps_ratio)}× req/s (${f(r.before.rps, 0)} → ${f(r.after.rps, 0)}), ${f(r.cpu_saved_us, 0)} µs less CPU per request (${f(r.before.cpu_us_per_req, 0)} → ${f(r.after.cpu_us_per_req, 0)})`; }).join("; ")}.\n` : ""}${results.scale_shards ? `- ${SCALE_CLIENTS / 1000}k tenants on ${results.scale_shards.shards} data shards against 1 (same dataset, alternating rounds; ${results.scale_shards.shards} ÷ 1): ${["widget-allowed", "api-read", "api-write"].map((k) => { const r = results.scale_shards[k]; return `${k} ${f(r.rps_ratio)}× req/s (${f(r.before.rps, 0)} → ${f(r.after.rps, 0)}), CPU per request ${f(r.before.cpu_us_per_req, 0)} → ${f(r.after.cpu_us_per_req, 0)} µs`; }).join("; ")}.\n` : ""}${results.move ? `- Moving the demo agency between shards (${results.move.rows.toLocaleString("en")} rows, ${MOVE_ROWS.toLocaleString("en")} of them added contacts; ${results.move.note}): copy ${f(results.move.copy_rows_per_s, 0)} rows/s, verification ${f(results.move.verify_rows_per_s, 0)} rows/s (each read on both shards), writes fenced ${f(results.move.fence_s, 1)} s, old rows deleted in ${f(results.move.clean_s, 1)} s, ${results.move.steps} steps.\n` : ""}- No 5xx, unexpected status or socket error in any round (the run fails otherwise). Run took ${f(results.duration_s, 0)} s.
`;
writeFileSync(join(ROOT, "bench/results/latest.json"), JSON.stringify(results, null, 2) + "\n");
writeFileSync(join(ROOT, "bench/results/latest.md"), md);
console.log(md);
