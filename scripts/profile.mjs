// Where a request's CPU goes inside the Worker: starts the release build under `wrangler dev`,
// attaches to its isolate through the inspector (Chrome DevTools Protocol), samples the V8 CPU
// profiler while a bounded loop of loopback requests runs, and prints self time by function,
// grouped into Rust (wasm), the JS glue, the runtime and idle.
//
//   node scripts/profile.mjs [widget-allowed|widget-denied|api-read|static] [requests]
//
// Function names need a wasm with its name section: scripts/bench.sh's build strips it, so run
// `GATEHOUSE_PROFILE_BUILD=1 bash scripts/build.sh` first (see README, Benchmarks).
import http from "node:http";
import WebSocket from "ws";
import { startWorker, testSecrets } from "../tests/e2e/harness.mjs";

const scenario = process.argv[2] || "widget-allowed";
const total = Number(process.argv[3] || 4000);
const CONNS = 8;
const ORIGIN = "https://www.acme-plumbing.example";

function cdp(url) {
  const ws = new WebSocket(url);
  let next = 1;
  const pending = new Map();
  ws.on("message", (data) => {
    const msg = JSON.parse(data.toString());
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result);
    }
  });
  const open = new Promise((resolve, reject) => {
    ws.on("open", resolve);
    ws.on("error", reject);
  });
  return {
    open,
    send(method, params = {}) {
      const id = next++;
      ws.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    },
    close: () => ws.close(),
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
function get(port, path, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, headers, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
    req.end();
  });
}

/** `n` requests, `CONNS` at a time; every answer must have the expected status. */
async function drive(port, n, path, headers, expect) {
  let sent = 0;
  const lane = async () => {
    while (sent < n) {
      sent++;
      const status = await get(port, path, headers);
      if (status !== expect) throw new Error(`${path}: ${status}, expected ${expect}`);
    }
  };
  await Promise.all(Array.from({ length: CONNS }, lane));
}

// The secrets a test run uses (a fresh checkout has no .dev.vars), and wrangler at `warn`, as the
// benchmark runs it: at `log` its per-request line costs the isolate too.
// PROFILE_VARS (JSON) adds configuration, e.g. '{"LOG_LEVEL":"warn"}' to leave the request log out.
const w = await startWorker({ vars: { ...testSecrets(), ...JSON.parse(process.env.PROFILE_VARS || "{}") }, logLevel: "warn" });
try {
  const platform = await w.login("admin@gatehouse.test");
  const acme = await w.login("admin@acme.test");
  const clientId = (await w.request("GET", "/api/me", { token: acme })).json.context.tenant;
  const d = await w.request("POST", `/api/clients/${clientId}/domains`, { token: acme, json: { domain: "www.acme-plumbing.example", purpose: "widget" } });
  await w.request("POST", `/api/clients/${clientId}/domains/${d.json.id}/verify`, { token: platform, json: { force: true } });
  for (let i = 0; i < 60; i++) {
    await w.request("POST", `/api/clients/${clientId}/contacts`, { token: acme, json: { name: `Lead ${i}`, email: `lead${i}@example.com` } });
  }
  const runs = {
    "widget-allowed": [`/api/widget/v1/config?key=${w.keys.acme}`, { origin: ORIGIN }, 200],
    "widget-denied": [`/api/widget/v1/config?key=${w.keys.acme}`, { origin: "https://evil.example" }, 403],
    "api-read": [`/api/clients/${clientId}/contacts?limit=50`, { authorization: `Bearer ${acme}` }, 200],
    static: ["/widget.js", {}, 200],
  };
  const [path, headers, expect] = runs[scenario] || (() => { throw new Error(`unknown scenario ${scenario}`); })();

  const targets = await (await fetch(`http://127.0.0.1:${w.inspector}/json`)).json();
  const target = targets.find((t) => t.webSocketDebuggerUrl) || targets[0];
  const c = cdp(target.webSocketDebuggerUrl);
  await c.open;
  await c.send("Profiler.enable");
  await c.send("Profiler.setSamplingInterval", { interval: 100 });
  await drive(w.port, Math.min(total, 2000), path, headers, expect); // warm-up: let V8 tier the wasm up
  await c.send("Profiler.start");
  const t0 = process.hrtime.bigint();
  await drive(w.port, total, path, headers, expect);
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const { profile } = await c.send("Profiler.stop");
  // PROFILE_SOURCE=1: the source around the busiest anonymous JS functions, read from the
  // isolate (wrangler's bundle is a temporary file).
  const sources = new Map();
  if (process.env.PROFILE_SOURCE) {
    await c.send("Debugger.enable");
    for (const n of profile.nodes) {
      const f = n.callFrame;
      if (f.url.endsWith("index.js") && !sources.has(f.scriptId)) {
        sources.set(f.scriptId, (await c.send("Debugger.getScriptSource", { scriptId: f.scriptId })).scriptSource);
      }
    }
  }
  c.close();

  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const n = byId.get(profile.samples[i]);
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const f = n.callFrame;
    const where = f.url.startsWith("wasm") ? "wasm" : f.url ? f.url.split("/").pop() : "";
    // An anonymous JS function is named by its place, so two of them are not summed as one.
    const name = f.functionName || (where && where !== "wasm" ? `(anonymous ${f.lineNumber + 1}:${f.columnNumber + 1})` : "(anonymous)");
    const key = `${name}\t${where}`;
    self.set(key, (self.get(key) || 0) + dt);
  }
  const sampled = [...self.values()].reduce((a, b) => a + b, 0);
  const group = (k) => {
    const [name, where] = k.split("\t");
    if (name === "(idle)") return "idle";
    if (where === "wasm") return "Rust (wasm)";
    if (where.endsWith(".js") || where.endsWith(".mjs")) return "JS (glue, shim, runtime JS)";
    return "runtime (native, GC, program)";
  };
  const groups = new Map();
  for (const [k, us] of self) groups.set(group(k), (groups.get(group(k)) || 0) + us);
  const busy = sampled - (groups.get("idle") || 0);
  console.log(`# ${scenario}: ${total} requests in ${wall.toFixed(0)} ms, ${CONNS} at a time; isolate busy ${(busy / 1000).toFixed(0)} ms = ${(busy / total).toFixed(0)} µs per request`);
  for (const [g, us] of [...groups].sort((a, b) => b[1] - a[1])) {
    if (g !== "idle") console.log(`${g.padEnd(32)} ${(us / total).toFixed(1).padStart(7)} µs/req ${((100 * us) / busy).toFixed(1).padStart(5)}%`);
  }
  // PROFILE_TOP=N: more rows (30 by default).
  const top = Number(process.env.PROFILE_TOP || 30);
  console.log(`\nself time, top ${top} (µs per request):`);
  for (const [k, us] of [...self].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const [name, where] = k.split("\t");
    console.log(`${(us / total).toFixed(2).padStart(8)}  ${name.slice(0, 90)}  ${where}`);
  }
  // PROFILE_INCLUSIVE=1: total time (self plus callees) by function, each counted once per stack.
  if (process.env.PROFILE_INCLUSIVE) {
    const parentOf = new Map();
    for (const n of profile.nodes) for (const c of n.children || []) parentOf.set(c, n.id);
    const incl = new Map();
    for (let i = 0; i < profile.samples.length; i++) {
      const dt = profile.timeDeltas[i + 1] ?? 0;
      const seen = new Set();
      for (let id = profile.samples[i]; id !== undefined; id = parentOf.get(id)) {
        const f = byId.get(id).callFrame;
        const name = f.functionName || `(anonymous ${f.lineNumber + 1}:${f.columnNumber + 1})`;
        if (name === "(idle)" || name === "(root)") break;
        if (!seen.has(name)) { seen.add(name); incl.set(name, (incl.get(name) || 0) + dt); }
      }
    }
    console.log("\ninclusive time, top 60 (µs per request):");
    for (const [k, us] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 60)) console.log(`${(us / total).toFixed(2).padStart(8)}  ${k.slice(0, 110)}`);
  }
  // PROFILE_SOURCE=N: the source of each bundle function (named or not) with N µs or more of
  // self time per request (50 when N is not a number).
  const floor = Number(process.env.PROFILE_SOURCE) || 50;
  for (const n of profile.nodes) {
    const f = n.callFrame;
    const src = sources.get(f.scriptId);
    const name = f.functionName || `(anonymous ${f.lineNumber + 1}:${f.columnNumber + 1})`;
    if (!src || !self.has(`${name}\tindex.js`) || self.get(`${name}\tindex.js`) / total < floor) continue;
    const line = src.split("\n")[f.lineNumber] || "";
    console.log(`\n${name}: ${line.slice(Math.max(0, f.columnNumber - 80), f.columnNumber + 400)}`);
    self.delete(`${name}\tindex.js`);
  }
} finally {
  agent.destroy();
  await w.stop();
}
