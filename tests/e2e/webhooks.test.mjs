// Webhooks under a real wrangler dev: events recorded with their changes, fanned out through a real
// (local) Cloudflare Queue, POSTed to a receiver on loopback and verified here with an independent
// implementation of the Standard Webhooks scheme (node:crypto). Retries against a receiver that
// fails first, a killed and restarted wrangler, SSRF refusals at registration and at delivery,
// and tenant isolation of what is received.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import { startWorker, testSecrets, errorCode } from "./harness.mjs";
import { startFakeDoh } from "./fake-doh.mjs";

const TIMEOUT_MS = 1500;
const secrets = testSecrets();
let w, doh, receiver, vars;
let admin, globexAdmin, acme, globex;

/**
 * A receiver on loopback. `plan[path]` is a list of behaviours consumed one per request:
 * a status number, "hang" (never answers), or "hold" (answers 200 once `release()` is called);
 * when the list is empty it answers 200. Every request is recorded with its arrival time.
 */
function startReceiver() {
  const got = [];
  const plan = {};
  const held = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const entry = { path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now(), answered: null };
      got.push(entry);
      const next = (plan[req.url] || []).shift() ?? 200;
      if (next === "hang") return; // the Worker's timeout ends it
      if (next === "hold") return held.push(() => { entry.answered = 200; res.writeHead(200).end("ok"); });
      entry.answered = next;
      res.writeHead(next, { "content-type": "text/plain" }).end(next >= 400 ? `receiver says ${next}` : "ok");
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    const { port } = server.address();
    resolve({
      origin: `http://127.0.0.1:${port}`, got, plan,
      release: () => held.splice(0).forEach((f) => f()),
      stop: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
    });
  }));
}

/** Standard Webhooks verification, written here from the specification. */
function verify(secret, headers, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const signed = `${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`;
  const want = crypto.createHmac("sha256", key).update(signed).digest("base64");
  const skew = Math.abs(Date.now() / 1000 - Number(headers["webhook-timestamp"]));
  return skew < 300 && (headers["webhook-signature"] || "").split(" ").some((s) => s === `v1,${want}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

const api = (method, path, json, token = admin, client = acme) =>
  w.request(method, `/api/clients/${client}${path}`, { token, json });

async function register(path, types, { token = admin, client = acme } = {}) {
  const r = await api("POST", "/webhooks", { url: `${receiver.origin}${path}`, event_types: types, description: path }, token, client);
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.secret, /^whsec_/);
  return r.json;
}

const received = (path) => receiver.got.filter((g) => g.path === path);

/** Every process under a pid (wrangler → workerd), children first. */
function tree(pid) {
  let kids = [];
  try { kids = execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number); } catch {}
  return [...kids.flatMap(tree), pid];
}

before(async () => {
  receiver = await startReceiver();
  doh = await startFakeDoh();
  vars = {
    ...secrets,
    DOH_RESOLVER_URL: doh.url,
    WEBHOOK_TEST_RECEIVERS: receiver.origin,
    WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
    WEBHOOK_RETRY_SCHEDULE: "1,1,1",
    WEBHOOK_REQUEUE_AFTER_SECS: "2",
    DOMAIN_LAPSE_AFTER_FAILURES: "1",
  };
  w = await startWorker({ vars });
  admin = await w.login("admin@acme.test");
  globexAdmin = await w.login("admin@globex.test");
  acme = (await w.request("GET", "/api/me", { token: admin })).json.context.tenant;
  globex = (await w.request("GET", "/api/me", { token: globexAdmin })).json.context.tenant;
});

after(async () => {
  await w?.stop();
  await receiver?.stop();
  await doh?.stop();
});

describe("every event type reaches a subscribed receiver, signed", () => {
  test("fourteen event types, each verified independently; the other client's receiver gets none", async () => {
    const all = await register("/all", ["*"]);
    const other = await register("/globex", ["*"], { token: globexAdmin, client: globex });
    const started = {}; // event type -> when the change was sent
    const mark = (type) => { started[type] ??= Date.now(); };

    // Contacts.
    mark("contact.created");
    const c = await api("POST", "/contacts", { name: "Hook Contact", email: "hook@example.org" });
    assert.equal(c.status, 201, c.text);
    mark("contact.updated");
    assert.equal((await api("PATCH", `/contacts/${c.json.id}`, { phone: "+1 555 0100" })).status, 200);
    mark("contact.deleted");
    assert.equal((await api("DELETE", `/contacts/${c.json.id}`)).status, 204);
    // A widget lead (also a contact.created).
    mark("lead.received");
    const lead = await w.request("POST", `/api/widget/v1/leads?key=${w.keys.acme}`, {
      headers: { origin: "http://shop.localhost:5173", "content-type": "application/json", "cf-connecting-ip": "203.0.113.40" },
      body: JSON.stringify({ name: "Widget Lead", email: "lead@shop.test", elapsed_ms: 5000 }),
    });
    assert.equal(lead.status, 201, lead.text);
    // Deals.
    const pipe = (await api("GET", "/pipelines")).json.items.find((p) => p.name === "Sales");
    mark("deal.created");
    const deal = await api("POST", "/deals", { title: "Hook deal", pipeline_id: pipe.id, value_minor: 5000 });
    assert.equal(deal.status, 201, deal.text);
    mark("deal.stage_changed");
    assert.equal((await api("PATCH", `/deals/${deal.json.id}`, { stage_id: pipe.stages[1].id })).status, 200);
    mark("deal.won");
    assert.equal((await api("PATCH", `/deals/${deal.json.id}`, { status: "won" })).status, 200);
    mark("deal.lost");
    assert.equal((await api("PATCH", `/deals/${deal.json.id}`, { status: "lost", lost_reason: "budget" })).status, 200);
    // Appointments: booked, rescheduled, cancelled.
    const service = (await api("GET", "/services")).json.items[0];
    const free = await api("GET", `/availability?service=${service.id}&from=2027-09-06&to=2027-09-10`);
    assert.equal(free.status, 200, free.text);
    const member = free.json.staff.find((s) => s.slots.length >= 2);
    assert.ok(member, free.text);
    const [first, later] = [member.slots[0], member.slots[member.slots.length - 1]];
    mark("appointment.booked");
    const apt = await api("POST", "/appointments", { service_id: service.id, staff_id: member.staff_id, starts_at: first.starts_at, contact: { name: "Booker", email: "booker@example.org" } });
    assert.equal(apt.status, 201, apt.text);
    mark("appointment.rescheduled");
    const moved = await api("PATCH", `/appointments/${apt.json.id}`, { starts_at: later.starts_at });
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.json.starts_at, later.starts_at);
    mark("appointment.cancelled");
    assert.equal((await api("PATCH", `/appointments/${apt.json.id}`, { status: "cancelled" })).status, 200);
    // A domain verified by DNS, then lapsed by the re-check once its record is gone.
    const d = await api("POST", "/domains", { domain: "hooks-lifecycle.example", purpose: "widget" });
    assert.equal(d.status, 201, d.text);
    doh.records.set(d.json.verification.name, [d.json.verification.value]);
    mark("domain.verified");
    const v = await api("POST", `/domains/${d.json.id}/verify`);
    assert.equal(v.json.status, "verified", v.text);
    doh.records.delete(d.json.verification.name);
    mark("domain.lapsed");
    assert.equal((await w.request("POST", "/__scheduled?cron=recheck-now")).status, 200);
    // A file.
    mark("file.uploaded");
    const f = await w.request("POST", `/api/clients/${acme}/files?name=brief.txt`, { token: admin, body: "hello", headers: { "content-type": "text/plain" } });
    assert.equal(f.status, 201, f.text);

    const types = Object.keys(started);
    assert.equal(types.length, 14);
    await until("all fourteen event types at the receiver", () => {
      const seen = new Set(received("/all").map((g) => JSON.parse(g.body).type));
      return types.every((t) => seen.has(t));
    });
    const got = received("/all");
    const ids = new Set();
    const latencies = [];
    for (const g of got) {
      assert.ok(verify(all.secret, g.headers, g.body), `signature of ${g.body.slice(0, 80)}`);
      assert.ok(!verify(other.secret, g.headers, g.body), "another endpoint's secret does not verify it");
      const body = JSON.parse(g.body);
      assert.equal(body.client_id, acme);
      assert.equal(body.id, g.headers["webhook-id"]);
      assert.match(body.id, /^evt_/);
      assert.doesNotMatch(g.body, /whsec_|password|ciphertext/);
      ids.add(body.id);
      if (started[body.type] && !latencies.find((l) => l.type === body.type)) latencies.push({ type: body.type, ms: g.at - started[body.type] });
    }
    assert.equal(ids.size, got.length, "one request per event: no duplicates on a healthy receiver");
    assert.equal(got.filter((g) => JSON.parse(g.body).type === "contact.created").length, 3, "the API's contact, the widget lead's and the booking's");
    assert.equal(received("/globex").length, 0, "no tenant receives another tenant's event");
    const sorted = latencies.map((l) => l.ms).sort((a, b) => a - b);
    console.log(`# change-to-receiver latency over ${sorted.length} event types: median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms`);

    // Globex's own change goes to Globex's receiver only.
    assert.equal((await api("POST", "/contacts", { name: "Globex Person" }, globexAdmin, globex)).status, 201);
    await until("globex's event", () => received("/globex").length === 1);
    assert.ok(verify(other.secret, received("/globex")[0].headers, received("/globex")[0].body));
    assert.equal(JSON.parse(received("/globex")[0].body).client_id, globex);
    assert.ok(received("/all").every((g) => JSON.parse(g.body).client_id === acme));

    // The delivery log shows each one succeeded in one attempt.
    const log = await api("GET", `/webhooks/${all.id}/deliveries?limit=100`);
    assert.equal(log.status, 200, log.text);
    assert.equal(log.json.items.length, got.length);
    assert.ok(log.json.items.every((x) => x.status === "succeeded" && x.attempts === 1), log.text);
    for (const e of [all, other]) {
      const r = await api("DELETE", `/webhooks/${e.id}`, undefined, e === all ? admin : globexAdmin, e === all ? acme : globex);
      assert.equal(r.status, 204, r.text);
    }
  });
});

describe("concurrency", () => {
  test("twenty changes at once: every event arrives exactly once, though every request drains the outbox", async () => {
    const e = await register("/burst", ["contact.created"]);
    const made = await Promise.all(Array.from({ length: 20 }, (_, i) => api("POST", "/contacts", { name: `Burst ${i}` })));
    assert.ok(made.every((r) => r.status === 201));
    const want = new Set(made.map((r) => r.json.id));
    await until("twenty events at the receiver", () => received("/burst").length >= 20);
    await sleep(1500); // a duplicate, if any, would arrive in this time
    const got = received("/burst").map((g) => JSON.parse(g.body));
    assert.equal(got.length, 20, "no duplicates");
    assert.deepEqual(new Set(got.map((b) => b.data.contact.id)), want);
    assert.equal((await api("DELETE", `/webhooks/${e.id}`)).status, 204);
  });

  test("ten parallel PATCHes to won record one deal.won", async () => {
    const e = await register("/won", ["deal.won"]);
    const pipe = (await api("GET", "/pipelines")).json.items.find((p) => p.name === "Sales");
    const deal = await api("POST", "/deals", { title: "Race to win", pipeline_id: pipe.id });
    const rs = await Promise.all(Array.from({ length: 10 }, () => api("PATCH", `/deals/${deal.json.id}`, { status: "won" })));
    for (const r of rs) assert.ok([200, 409].includes(r.status), r.text);
    assert.ok(rs.some((r) => r.status === 200));
    const events = w.d1(`SELECT count(*) AS n FROM events WHERE type = 'deal.won' AND json_extract(data, '$.deal.id') = '${deal.json.id}'`);
    assert.equal(events[0].n, 1);
    // The request drains the outbox after it answers; on a loaded machine that follow-up has been
    // seen to miss, and the scheduled run is the product's fallback for it: nudge it once, late.
    const t0 = Date.now();
    let nudged = false;
    await until("the deal.won delivery", async () => {
      if (!nudged && Date.now() - t0 > 15_000) {
        nudged = true;
        assert.equal((await w.request("POST", "/__scheduled?cron=*%2F15+*+*+*+*")).status, 200);
      }
      return received("/won").length >= 1;
    }, 45_000);
    await sleep(500);
    // One event makes one delivery, sent until an attempt is answered 2xx within the timeout.
    // Delivery is at least once: on a loaded machine the receiver has answered 200 after this
    // suite's 1.5 s timeout, and the retry sent the same webhook-id again. So: one delivery row,
    // one webhook-id, and a POST beyond the first only after an attempt the Worker saw fail.
    const hits = received("/won");
    assert.equal(new Set(hits.map((h) => h.headers["webhook-id"])).size, 1, "every POST carries the one event");
    assert.equal(JSON.parse(hits[0].body).data.deal.id, deal.json.id);
    const deliveries = (await api("GET", `/webhooks/${e.id}/deliveries`)).json.items;
    assert.equal(deliveries.length, 1, "one delivery of the one deal.won");
    if (hits.length > 1) {
      await until("the delivery to settle", async () => (await api("GET", `/webhooks/${e.id}/deliveries/${deliveries[0].id}`)).json.status === "succeeded");
      const log = (await api("GET", `/webhooks/${e.id}/deliveries/${deliveries[0].id}`)).json.attempt_log;
      console.log(`# deal.won was POSTed ${hits.length} times; attempts: ${JSON.stringify(log.map((a) => [a.status_code, a.error]))}`);
      assert.equal(log.length, hits.length, "each POST is a recorded attempt");
      assert.ok(log.slice(0, -1).every((a) => a.status_code === null || a.status_code >= 300), "only a failed attempt is retried");
    }
    assert.equal((await api("DELETE", `/webhooks/${e.id}`)).status, 204);
  });
});

describe("retries", () => {
  test("a receiver that answers 500, then times out, then 200 gets the event once as a success", async () => {
    receiver.plan["/flaky"] = [500, "hang", 200];
    const e = await register("/flaky", ["contact.created"]);
    const t0 = Date.now();
    const c = await api("POST", "/contacts", { name: "Retry Me" });
    assert.equal(c.status, 201);
    const done = await until("the delivery to succeed", async () => {
      const items = (await api("GET", `/webhooks/${e.id}/deliveries`)).json.items;
      return items.find((x) => x.status === "succeeded");
    });
    const hits = received("/flaky");
    assert.equal(hits.length, 3, "three attempts");
    assert.equal(new Set(hits.map((h) => h.headers["webhook-id"])).size, 1, "the same webhook-id on every retry");
    assert.deepEqual(hits.map((h) => h.answered), [500, null, 200], "answered 500, never answered, answered 200");
    assert.equal(hits.filter((h) => h.answered === 200).length, 1, "exactly one success");
    assert.ok(hits.every((h) => verify(e.secret, h.headers, h.body)));
    const detail = await api("GET", `/webhooks/${e.id}/deliveries/${done.id}`);
    const attempts = detail.json.attempt_log;
    assert.deepEqual(attempts.map((a) => a.status_code), [500, null, 200]);
    assert.match(attempts[0].response_head, /receiver says 500/);
    assert.match(attempts[1].error, /timed out/);
    assert.ok(attempts[1].latency_ms >= TIMEOUT_MS - 50, JSON.stringify(attempts[1]));
    console.log(`# retry timeline (ms after the change): ${hits.map((h) => h.at - t0).join(", ")}; attempts answered ${hits.map((h) => h.answered ?? "timeout").join(", ")}`);
    assert.equal((await api("DELETE", `/webhooks/${e.id}`)).status, 204);
  });
});

describe("a killed wrangler", () => {
  test("killing and restarting wrangler dev mid-delivery loses no event", async () => {
    receiver.plan["/crash"] = ["hold"];
    const e = await register("/crash", ["contact.created"]);
    const c = await api("POST", "/contacts", { name: "Survives a crash" });
    assert.equal(c.status, 201);
    await until("the first attempt in flight", () => received("/crash").length === 1);
    // SIGKILL the whole tree while the receiver holds the attempt open: no answer is recorded.
    for (const pid of tree(w.pid)) { try { process.kill(pid, "SIGKILL"); } catch {} }
    await until("wrangler to exit", () => { try { process.kill(w.pid, 0); return false; } catch { return true; } }, 10_000);
    receiver.release();
    w = await startWorker({ vars, persist: w.dir });
    admin = await w.login("admin@acme.test");
    // The lease of the killed attempt runs out; the cron finds the stranded delivery and queues it.
    const done = await until("the event delivered after the restart", async () => {
      await w.request("POST", "/__scheduled?cron=*/15+*+*+*+*");
      const items = (await api("GET", `/webhooks/${e.id}/deliveries`)).json.items;
      return items.find((x) => x.status === "succeeded");
    }, 60_000);
    const hits = received("/crash");
    assert.ok(hits.length >= 2, "delivered again after the restart");
    assert.equal(new Set(hits.map((h) => JSON.parse(h.body).id)).size, 1, "the same event each time (at least once)");
    assert.equal(JSON.parse(hits.at(-1).body).data.contact.id, c.json.id);
    assert.equal(hits.at(-1).answered, 200);
    assert.ok(done.attempts >= 2, JSON.stringify(done));
    assert.equal((await api("DELETE", `/webhooks/${e.id}`)).status, 204);
  });
});

describe("SSRF", () => {
  test("inward URLs are refused at registration", async () => {
    doh.addresses.set("inward.hooks-e2e.example", ["10.0.0.7"]);
    for (const url of [
      "http://hooks.example.com/",
      "https://127.0.0.1/",
      "https://[::1]/",
      "https://169.254.169.254/latest/meta-data/",
      "https://0x7f000001/",
      "https://[::ffff:10.0.0.1]/",
      "https://localhost/",
      "https://metadata.google.internal/",
      `https://localhost:${w.port}/api/me`,
      "https://acme.localhost/",
      "https://inward.hooks-e2e.example/",
      `${receiver.origin.replace("127.0.0.1", "localhost")}/x`,
    ]) {
      const r = await api("POST", "/webhooks", { url, event_types: ["*"] });
      assert.equal(r.status, 422, `${url}: ${r.text}`);
      assert.equal(errorCode(r), "webhook_url_refused", url);
    }
    assert.equal(w.d1("SELECT count(*) AS n FROM webhook_endpoints WHERE url NOT LIKE 'http://127.0.0.1:%'")[0].n, 0);
  });

  test("a name that resolves inward after registration is refused at delivery, and nothing is sent", async () => {
    const name = "rebind.hooks-e2e.example";
    doh.addresses.set(name, ["93.184.215.14"]);
    const r = await api("POST", "/webhooks", { url: `https://${name}/hook`, event_types: ["contact.deleted"] });
    assert.equal(r.status, 201, r.text);
    // The DNS answer changes before any event is sent to it.
    doh.addresses.set(name, ["127.0.0.1"]);
    const c = await api("POST", "/contacts", { name: "Rebind" });
    assert.equal((await api("DELETE", `/contacts/${c.json.id}`)).status, 204);
    const dead = await until("the delivery to be refused", async () => {
      const items = (await api("GET", `/webhooks/${r.json.id}/deliveries`)).json.items;
      return items.find((x) => x.status === "dead");
    });
    assert.match(dead.last_error, /refused: .*127\.0\.0\.1/);
    assert.equal(dead.attempts, 1, "a refusal is final, not retried");
    const detail = await api("GET", `/webhooks/${r.json.id}/deliveries/${dead.id}`);
    assert.equal(detail.json.attempt_log[0].status_code, null, "no request was made");
    assert.equal((await api("DELETE", `/webhooks/${r.json.id}`)).status, 204);
  });
});
