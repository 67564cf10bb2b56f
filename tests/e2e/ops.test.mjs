// Operations under a real wrangler dev: one JSON log line per request (request id, route
// template, tenant, status, duration, query count, gate decision), found by the x-request-id the
// response carried; the widget's hits counted per client and day and read back from /metrics once
// the isolate has written them; a client's health for its agency. Every suite's log is also
// scanned for secrets when its Worker stops (harness.mjs).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startWorker, testSecrets } from "./harness.mjs";

let w;
const T = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  // At `debug` every request has its line, allowed widget reads included.
  w = await startWorker({ vars: { ...testSecrets(), METRICS_FLUSH_SECS: "1", LOG_LEVEL: "debug" } });
  T.agency = await w.login("agency.admin@northwind.test");
  T.acme = (await w.request("GET", "/api/clients", { token: T.agency })).json.items.find((c) => c.slug === "acme").id;
});

after(async () => {
  await w?.stop();
});

/** The request lines the Worker has written so far. */
function requestLines() {
  return w.logs.join("").split("\n").map((l) => l.trim()).filter((l) => l.startsWith("{\"")).flatMap((l) => {
    try {
      const v = JSON.parse(l);
      return v.event === "request" ? [v] : [];
    } catch {
      return [];
    }
  });
}

/** The line of one request; the Worker's stdout arrives a moment after the response. */
async function lineOf(id) {
  for (let i = 0; i < 50; i++) {
    const line = requestLines().find((l) => l.request_id === id);
    if (line) return line;
    await sleep(100);
  }
  throw new Error(`no log line for ${id}`);
}

describe("request logs", () => {
  test("each request leaves one JSON line with stable fields, found by its x-request-id", async () => {
    const token = await w.login("admin@acme.test");
    const r = await w.request("GET", `/api/clients/${T.acme}/contacts?limit=3`, { token });
    assert.equal(r.status, 200);
    const id = r.headers["x-request-id"];
    assert.match(id, /^req_[0-9a-z]{24}$/);
    const line = await lineOf(id);
    assert.deepEqual(Object.keys(line).sort(), ["duration_ms", "event", "level", "method", "queries", "request_id", "route", "status", "tenant", "ts"]);
    assert.equal(line.route, "/api/clients/{client_id}/contacts");
    assert.equal(line.tenant, T.acme);
    assert.equal(line.status, 200);
    assert.equal(line.level, "info");
    assert.ok(line.queries >= 1 && line.duration_ms >= 0, JSON.stringify(line));
    assert.equal(requestLines().filter((l) => l.request_id === id).length, 1, "exactly one line");

    const ray = await w.request("GET", "/healthz", { headers: { "cf-ray": "8f00aa11bb22cc33-LHR" } });
    assert.equal(ray.headers["x-request-id"], "8f00aa11bb22cc33-LHR");
    assert.equal((await lineOf("8f00aa11bb22cc33-LHR")).route, "/healthz");
  });

  test("the widget gate's decision is on its line, and a refusal carries its error code", async () => {
    const key = w.keys.acme;
    const ok = await w.request("GET", `/api/widget/v1/config?key=${key}`, { headers: { origin: "http://shop.localhost" } });
    const no = await w.request("GET", `/api/widget/v1/config?key=${key}`, { headers: { origin: "https://evil.example" } });
    assert.deepEqual([ok.status, no.status], [200, 403]);
    const [a, d] = [await lineOf(ok.headers["x-request-id"]), await lineOf(no.headers["x-request-id"])];
    assert.deepEqual([a.gate, a.tenant, a.route], ["allowed", T.acme, "/api/widget/v1/config"]);
    assert.deepEqual([d.gate, d.error], ["denied_origin", { code: "domain_not_authorized" }]);
    assert.ok(!JSON.stringify([a, d]).includes(key), "the key stays out of the line");
  });
});

describe("per-tenant metrics and health", () => {
  test("widget hits are counted per client and day and read back from /metrics once written", async () => {
    const key = w.keys.acme;
    const hit = (origin) => w.request("GET", `/api/widget/v1/config?key=${key}`, { headers: { origin } });
    const results = await Promise.all([...Array(6)].map((_, i) => hit(i < 5 ? "http://shop.localhost" : "https://evil.example")));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 403]);
    // The isolate writes what it holds after the first response at least a second later; the
    // counts then equal the gate decisions its log lines recorded, this suite's earlier ones too.
    await sleep(1100);
    const logged = (gate) => requestLines().filter((l) => l.tenant === T.acme && (gate === "allowed" ? l.gate === "allowed" : l.gate?.startsWith("denied"))).length;
    let totals;
    for (let i = 0; i < 50; i++) {
      totals = (await w.request("GET", `/api/clients/${T.acme}/metrics`, { token: T.agency })).json.totals;
      if (totals.widget_allowed === logged("allowed") && totals.widget_denied === logged("denied")) break;
      await sleep(200);
    }
    assert.equal(totals.widget_allowed, logged("allowed"), JSON.stringify(totals));
    assert.equal(totals.widget_denied, logged("denied"));
    assert.ok(totals.widget_allowed >= 5 && totals.widget_denied >= 1);
    const rows = w.d1(`SELECT count(*) AS n FROM tenant_daily WHERE tenant_id = '${T.acme}'`);
    assert.equal(rows[0].n, 1, "one row per tenant and day, however many writes");
  });

  test("health is the agency's view of a client: domains, last widget hit, errors, quotas", async () => {
    const h = await w.request("GET", `/api/clients/${T.acme}/health`, { token: T.agency });
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.domains.verified, 1);
    assert.ok(h.json.last_widget_hit > 0 || h.json.last_widget_hit === null);
    assert.ok(Array.isArray(h.json.quotas) && h.json.quotas.some((q) => q.metric === "contacts"));
    const admin = await w.login("admin@acme.test");
    assert.equal((await w.request("GET", `/api/clients/${T.acme}/health`, { token: admin })).status, 403);
  });
});
