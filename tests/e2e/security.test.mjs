// Issue 10's holes, tried against a real wrangler dev the way an attacker would: each test
// failed on the main before the fix. Rate limits use Cloudflare's Rate Limiting binding (it runs
// offline under wrangler dev); Turnstile's siteverify and DNS-over-HTTPS are fakes on loopback.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startWorker, testSecrets, errorCode, startFakeTurnstile, withinOneWindow } from "./harness.mjs";
import { startFakeDoh } from "./fake-doh.mjs";

const DAILY_CAP = 25;
const TURNSTILE_AFTER = 8;
const SHOP = "http://shop.localhost:5173";
let w, doh, turnstile;
const tok = {};
const T = {};

before(async () => {
  doh = await startFakeDoh();
  turnstile = await startFakeTurnstile();
  w = await startWorker({
    vars: {
      ...testSecrets(),
      DOH_RESOLVER_URL: doh.url,
      TURNSTILE_SECRET_KEY: "ts-test-secret",
      TURNSTILE_SITE_KEY: "ts-site-key",
      TURNSTILE_VERIFY_URL: turnstile.url,
      LOGIN_TURNSTILE_AFTER: String(TURNSTILE_AFTER),
    },
  });
  for (const [k, email] of Object.entries({
    platform: "admin@gatehouse.test", agency: "agency.admin@northwind.test", acme: "admin@acme.test",
    acmeUser: "user@acme.test", globex: "admin@globex.test",
  })) tok[k] = await w.login(email);
  const clients = (await w.request("GET", "/api/clients", { token: tok.agency })).json.items;
  T.acme = clients.find((c) => c.slug === "acme").id;
  T.globex = clients.find((c) => c.slug === "globex").id;
  T.agency = clients[0].agency_id;
  const users = (await w.request("GET", "/api/users?limit=100", { token: tok.platform })).json.items;
  T.user = Object.fromEntries(users.map((u) => [u.email, u.id]));
});

after(async () => {
  await w?.stop();
  await doh?.stop();
  await turnstile?.stop();
});

const auditCount = (where) => w.d1(`SELECT count(*) AS n FROM audit_log WHERE ${where}`)[0].n;
const login = (email, password, { ip, host, extra = {} } = {}) =>
  w.request("POST", "/api/auth/login", { host, headers: ip ? { "cf-connecting-ip": ip } : {}, json: { email, password, ...extra } });

describe("1. narrowed grants cannot be undone", () => {
  test("a narrowed client_admin cannot grant itself (or anyone) the full role back", async () => {
    const narrow = await w.request("POST", `/api/users/${T.user["admin@acme.test"]}/grant-access`, {
      token: tok.agency,
      json: { client_id: T.acme, role: "client_admin", permissions: ["users:manage", "users:read", "clients:read"] },
    });
    assert.equal(narrow.status, 200, narrow.text);
    const me = await w.login("admin@acme.test");
    const self = await w.request("POST", `/api/users/${T.user["admin@acme.test"]}/grant-access`, { token: me, json: { client_id: T.acme, role: "client_admin" } });
    assert.equal(self.status, 403, self.text);
    assert.equal(errorCode(self), "own_membership");
    const settings = await w.request("GET", `/api/clients/${T.acme}/settings`, { token: me });
    assert.equal(settings.status, 403, "settings:read stays gone");
    const invite = await w.request("POST", "/api/users", { token: me, json: { email: "accomplice@example.com", role: "client_admin" } });
    assert.equal(invite.status, 403);
    assert.equal(errorCode(invite), "permissions_exceed_own");
    // Restore the demo admin for the tests below.
    const restore = await w.request("POST", `/api/users/${T.user["admin@acme.test"]}/grant-access`, { token: tok.agency, json: { client_id: T.acme, role: "client_admin" } });
    assert.equal(restore.status, 200, restore.text);
    tok.acme = await w.login("admin@acme.test");
  });
});

describe("2. portal logins are confined to their portal", () => {
  test("a platform admin signing in on acme's portal gets an acme-only token bound to that host", async () => {
    const host = `acme.localhost:${w.port}`;
    const r = await login("admin@gatehouse.test", w.users["admin@gatehouse.test"], { host });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.context.tenant, T.acme);
    assert.equal(r.json.context.scope.kind, "client");
    assert.ok(!r.json.context.permissions.includes("platform:admin"));
    const token = r.json.access_token;
    const onApi = await w.request("GET", "/api/admin/tenants", { token });
    assert.equal(onApi.status, 403, onApi.text);
    assert.equal(errorCode(onApi), "tenant_mismatch");
    const onGlobex = await w.request("GET", "/api/me", { token, host: `globex.localhost:${w.port}` });
    assert.equal(onGlobex.status, 403);
    const before = auditCount(`tenant_id = '${T.acme}' AND action = 'platform.access'`);
    const own = await w.request("GET", `/api/clients/${T.acme}`, { token, host });
    assert.equal(own.status, 200, own.text);
    assert.equal(auditCount(`tenant_id = '${T.acme}' AND action = 'platform.access'`), before + 1, "staff access inside the portal is audited");
    assert.equal(auditCount(`tenant_id = '${T.acme}' AND action = 'auth.login' AND metadata LIKE '%"staff":true%'`) >= 1, true);
  });
});

describe("3. widget spam", () => {
  const leadPath = (key) => `/api/widget/v1/leads?key=${key}`;
  const post = (key, origin, ip, json, headers = {}) =>
    w.request("POST", leadPath(key), { headers: { origin, "cf-connecting-ip": ip, ...headers }, json });
  const leads = (client, where = "1=1") => w.d1(`SELECT count(*) AS n FROM contacts WHERE client_id = '${client}' AND source = 'widget' AND ${where}`)[0].n;

  test("40 lead POSTs in a row from one address: the first 10 land, the rest get 429 with Retry-After", async () => {
    const before = leads(T.acme);
    const statuses = [];
    // The per-address limit is 10 a minute: the burst starts where it cannot straddle a minute.
    await withinOneWindow(60, 15_000);
    for (let i = 0; i < 40; i++) {
      const r = await post(w.keys.acme, SHOP, "198.51.100.40", { name: `Spam ${i}`, email: "spam@example.com" });
      statuses.push(r.status);
      if (r.status === 429) {
        assert.equal(errorCode(r), "rate_limited");
        assert.equal(r.headers["retry-after"], "60");
        assert.equal(r.headers["access-control-allow-origin"], SHOP);
      }
    }
    assert.equal(statuses.filter((s) => s === 201).length, 10, statuses.join(","));
    assert.equal(statuses.filter((s) => s === 429).length, 30);
    assert.equal(leads(T.acme) - before, 10);
    const other = await post(w.keys.acme, SHOP, "198.51.100.41", { name: "Real", email: "real@example.com" });
    assert.equal(other.status, 201, "another address is unaffected");
  });

  test("a honeypot stores nothing, a too-fast fill is refused, and parallel retries of one submission make one lead", async () => {
    const before = leads(T.acme);
    const trap = await post(w.keys.acme, SHOP, "198.51.100.50", { name: "Bot", email: "bot@example.com", website: "http://spam.example" });
    assert.equal(trap.status, 202);
    const fast = await post(w.keys.acme, SHOP, "198.51.100.51", { name: "Bot", email: "bot@example.com", elapsed_ms: 40 });
    assert.equal(fast.status, 422);
    assert.equal(errorCode(fast), "submitted_too_fast");
    const body = { name: "Retry Ray", email: "ray@example.com", elapsed_ms: 8000, submission_id: "retry-submission-0001" };
    const results = await Promise.all([52, 53, 54, 55, 56].map((n) => post(w.keys.acme, SHOP, `198.51.100.${n}`, body)));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 200, 200, 201]);
    assert.equal(new Set(results.map((r) => r.json.id)).size, 1, "every retry names the same lead");
    assert.equal(leads(T.acme) - before, 1);
    const viaHeader = await post(w.keys.acme, SHOP, "198.51.100.57", { name: "Idem", email: "i@example.com" }, { "idempotency-key": "retry-submission-0001" });
    assert.equal(viaHeader.status, 200, "the Idempotency-Key header names the same submission");
  });

  test(`the daily cap holds under concurrency: ${DAILY_CAP * 2} parallel submissions from different addresses land exactly ${DAILY_CAP}`, async () => {
    const origin = "https://www.globex-cap.example";
    // The agency lowers Globex's daily cap below its plan's (a per-client override).
    const cap = await w.request("PUT", `/api/clients/${T.globex}`, { token: tok.agency, json: { limits: { widget_submissions_per_day: DAILY_CAP } } });
    assert.equal(cap.status, 200, cap.text);
    const d = await w.request("POST", `/api/clients/${T.globex}/domains`, { token: tok.globex, json: { domain: "www.globex-cap.example", purpose: "widget" } });
    assert.equal(d.status, 201, d.text);
    const v = await w.request("POST", `/api/clients/${T.globex}/domains/${d.json.id}/verify`, { token: tok.platform, json: { force: true } });
    assert.equal(v.status, 200, v.text);
    const results = await Promise.all(Array.from({ length: DAILY_CAP * 2 }, (_, i) =>
      post(w.keys.globex, origin, `203.0.113.${i + 1}`, { name: `Lead ${i}`, email: `l${i}@example.com` })));
    const counts = {};
    for (const r of results) counts[r.status] = (counts[r.status] || 0) + 1;
    assert.equal(counts[201], DAILY_CAP, JSON.stringify(counts));
    assert.equal(counts[429], DAILY_CAP, JSON.stringify(counts));
    assert.ok(results.filter((r) => r.status === 429).every((r) => r.json.error.code === "daily_limit_reached"));
    assert.equal(leads(T.globex), DAILY_CAP);
  });

  test("a flood of made-up keys from one address stops reaching D1", async () => {
    const fake = (i) => `pk_${String(i).padStart(52, "a").replace(/[^a-z0-9]/g, "a")}`;
    // GATE_MISS_LIMITER allows 60 misses per fixed 10-second window. 130 misses take about two
    // seconds, so they touch at most two windows, and however a boundary splits them, at least 10
    // land past a window's 60.
    const queries = [];
    for (let i = 0; i < 130; i++) {
      const r = await w.request("GET", `/api/widget/v1/config?key=${fake(i)}`, { headers: { origin: SHOP, "cf-connecting-ip": "192.0.2.99" } });
      assert.equal(r.status, 403);
      queries.push(Number(r.headers["x-gatehouse-db-queries"]));
    }
    assert.ok(queries.slice(0, 10).every((q) => q === 1), "the first misses each cost a query");
    assert.ok(queries.filter((q) => q === 0).length >= 10, `past the limit, misses cost no query: ${queries.join(",")}`);
    assert.ok(queries.every((q) => q === 0 || q === 1), queries.join(","));
    const known = await w.request("GET", `/api/widget/v1/config?key=${w.keys.acme}`, { headers: { origin: SHOP, "cf-connecting-ip": "192.0.2.99" } });
    assert.equal(known.status, 200, "a warm known key is never limited");
  });
});

describe("4. domain squatting", () => {
  test("an unproved wildcard blocks nobody, and loses when another client verifies first", async () => {
    const squat = await w.request("POST", `/api/clients/${T.globex}/domains`, { token: tok.globex, json: { domain: "*.squat.example", purpose: "widget" } });
    assert.equal(squat.status, 201, squat.text);
    const mine = await w.request("POST", `/api/clients/${T.acme}/domains`, { token: tok.acme, json: { domain: "www.squat.example", purpose: "widget" } });
    assert.equal(mine.status, 201, `a pending claim must not block: ${mine.text}`);
    doh.records.set(mine.json.verification.name, [mine.json.verification.value]);
    const v = await w.request("POST", `/api/clients/${T.acme}/domains/${mine.json.id}/verify`, { token: tok.acme });
    assert.equal(v.json.status, "verified", v.text);
    const lost = w.d1(`SELECT status, status_reason FROM domains WHERE id = '${squat.json.id}'`)[0];
    assert.equal(lost.status, "failed");
    assert.match(lost.status_reason, /another client verified www\.squat\.example first/);
    doh.records.set(squat.json.verification.name, [squat.json.verification.value]);
    const late = await w.request("POST", `/api/clients/${T.globex}/domains/${squat.json.id}/verify`, { token: tok.globex });
    assert.equal(late.status, 409, late.text);
    assert.equal(errorCode(late), "domain_taken");
  });

  test("pending claims older than the configured days are failed by the cron", async () => {
    const r = await w.request("POST", `/api/clients/${T.globex}/domains`, { token: tok.globex, json: { domain: "old-squat.example", purpose: "widget" } });
    assert.equal(r.status, 201);
    w.d1(`UPDATE domains SET created_at = created_at - ${8 * 86400000} WHERE id = '${r.json.id}'`);
    const cron = await w.request("GET", "/__scheduled?cron=recheck-now");
    assert.equal(cron.status, 200);
    const row = w.d1(`SELECT status, status_reason FROM domains WHERE id = '${r.json.id}'`)[0];
    assert.equal(row.status, "failed");
    assert.match(row.status_reason, /expired/);
  });
});

describe("5. lockout", () => {
  test("five wrong passwords from one address never lock the real owner out", async () => {
    const email = "admin@gatehouse.test";
    for (let i = 0; i < 5; i++) assert.equal((await login(email, "wrong-password!", { ip: "203.0.113.200" })).status, 401);
    const attacker = await login(email, w.users[email], { ip: "203.0.113.200" });
    assert.equal(attacker.status, 429);
    assert.ok(attacker.headers["retry-after"]);
    const owner = await login(email, w.users[email], { ip: "198.51.100.200" });
    assert.equal(owner.status, 200, owner.text);
  });

  test("concurrent guesses from one address cannot slip past the limit", async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => login("viewer@acme.test", "wrong-password!", { ip: "203.0.113.201" })));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 401).length, 5, statuses.join(","));
    assert.equal(statuses.filter((s) => s === 429).length, 15);
  });

  test("past the threshold for one email, the login needs a Turnstile token instead of being refused", async () => {
    const email = "user@acme.test";
    for (let i = 0; i < TURNSTILE_AFTER; i++) await login(email, "wrong-password!", { ip: `192.0.2.${150 + i}` });
    const challenged = await login(email, w.users[email], { ip: "198.51.100.210" });
    assert.equal(challenged.status, 403, challenged.text);
    assert.equal(errorCode(challenged), "turnstile_required");
    const forged = await login(email, w.users[email], { ip: "198.51.100.210", extra: { turnstile_token: "forged" } });
    assert.equal(errorCode(forged), "turnstile_failed");
    const passed = await login(email, w.users[email], { ip: "198.51.100.210", extra: { turnstile_token: "pass" } });
    assert.equal(passed.status, 200, passed.text);
    const last = turnstile.requests.at(-1);
    assert.equal(last.method, "POST");
    assert.equal(last.contentType, "application/x-www-form-urlencoded");
    assert.deepEqual(last.form, { secret: "ts-test-secret", response: "pass", remoteip: "198.51.100.210" });
  });
});

describe("6-9. files, staff audit, suspension, audit rows", () => {
  test("6. a client_user with files:write cannot delete the logo", async () => {
    const png = Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a6b9bd2b0000000049454e44ae426082", "hex");
    const up = await w.request("POST", `/api/clients/${T.acme}/branding/logo`, { token: tok.acme, headers: { "content-type": "image/png" }, body: png });
    assert.equal(up.status, 200, up.text);
    const logo = up.json.logo_file_id?.value ?? w.d1(`SELECT id FROM files WHERE tenant_id = '${T.acme}' AND area = 'branding'`)[0].id;
    const del = await w.request("DELETE", `/api/clients/${T.acme}/files/${logo}`, { token: tok.acmeUser });
    assert.equal(del.status, 403, del.text);
    assert.match(del.json.error.message, /branding:write/);
    const still = await w.request("GET", `/assets/${logo}`);
    assert.equal(still.status, 200, "the logo is still served");
  });

  test("7. staff access leaves a platform.access row, whatever the method", async () => {
    const up = await w.request("POST", `/api/clients/${T.acme}/files?name=a.txt`, { token: tok.acme, headers: { "content-type": "text/plain" }, body: "hello" });
    assert.equal(up.status, 201, up.text);
    const calls = [
      ["POST", `/api/clients/${T.acme}/files/${up.json.id}/sign`, undefined],
      ["HEAD", `/api/clients/${T.acme}/files/${up.json.id}`, undefined],
      ["POST", `/api/clients/${T.acme}/domains/check`, { origin: SHOP }],
      ["GET", `/api/agencies/${T.agency}`, undefined],
      ["GET", "/api/users", undefined],
      ["GET", "/api/clients", undefined],
    ];
    for (const [method, path, json] of calls) {
      const before = auditCount("action = 'platform.access'");
      const r = await w.request(method, path, { token: tok.platform, json });
      assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
      assert.equal(auditCount("action = 'platform.access'"), before + 1, `${method} ${path}`);
    }
  });

  test("9. deleting a contact that does not exist is 404 and forges no audit row", async () => {
    const r = await w.request("DELETE", `/api/clients/${T.acme}/contacts/anything`, { token: tok.acme });
    assert.equal(r.status, 404);
    assert.equal(auditCount("action = 'contact.deleted' AND target_id = 'anything'"), 0);
    const revoke = await w.request("DELETE", `/api/users/usr_000000000000000000000099/revoke-access?client_id=${T.acme}`, { token: tok.platform });
    assert.equal(revoke.status, 404);
    assert.equal(auditCount("action = 'membership.revoked' AND target_id = 'usr_000000000000000000000099'"), 0);
  });

  test("8. a suspended agency suspends its clients' logins, API, portals and widgets; reactivation restores them", async () => {
    const widget = () => w.request("GET", `/api/widget/v1/config?key=${w.keys.acme}`, { headers: { origin: SHOP, "cf-connecting-ip": "198.51.100.99" } });
    const portal = () => w.request("GET", "/", { host: `acme.localhost:${w.port}` });
    assert.equal((await widget()).status, 200);
    const set = async (status) => {
      const r = await w.request("PUT", `/api/agencies/${T.agency}`, { token: tok.platform, json: { status } });
      assert.equal(r.status, 200, r.text);
    };
    await set("suspended");
    try {
      assert.equal((await w.request("GET", `/api/clients/${T.acme}`, { token: tok.acme })).status, 401, "API");
      assert.equal((await login("admin@acme.test", w.users["admin@acme.test"], { ip: "198.51.100.98" })).status, 403, "login");
      assert.equal((await portal()).status, 403, "portal");
      assert.equal((await widget()).status, 403, "widget (the isolate that suspended forgets at once)");
      assert.deepEqual(w.d1(`SELECT status FROM clients WHERE id = '${T.acme}'`), [{ status: "active" }], "client rows untouched");
    } finally {
      await set("active");
    }
    assert.equal((await w.request("GET", `/api/clients/${T.acme}`, { token: tok.acme })).status, 200);
    assert.equal((await portal()).status, 200);
    assert.equal((await widget()).status, 200);
  });

  test("the worker logged no panic", () => {
    assert.doesNotMatch(w.logs.join(""), /panicked|RuntimeError: unreachable/);
  });
});
