// The widget domain gate under a real wrangler dev: the domain lifecycle proved over a fake
// DNS-over-HTTPS resolver on loopback, registration rules, force-verify, the explainer, a table of
// hostile Origin headers against the live gate, and the hot path's cache bound.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startWorker, testSecrets, errorCode, rawRequest } from "./harness.mjs";
import { startFakeDoh } from "./fake-doh.mjs";

const LAPSE_AFTER = 2;
const CACHE_TTL_MS = 3000;
const DENIED = { error: { code: "domain_not_authorized", message: "Domain not authorized for this client" } };

let doh;
let w;
let sql; // a fast SQL path to the same local D1 file, behind the isolate's back
const tokens = {};
const T = {};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * `wrangler d1 execute` (what `w.d1` runs) takes over two seconds on a small machine, most of a
 * 3 s cache TTL. For the timing tests this opens the same persisted D1 the way that command
 * does (Miniflare over `<persist>/v3`), once, so a statement lands in milliseconds.
 */
async function openSql(dir) {
  const { Miniflare, convertV4MiniflareOptions } = await import("miniflare");
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      modules: true,
      script: "",
      resourcePersistencePath: join(dir, "v3"),
      d1Databases: { DB: "00000000-0000-0000-0000-000000000000" },
    }),
  );
  const db = await mf.getD1Database("DB");
  return {
    run: async (q, ...params) => (await db.prepare(q).bind(...params).run()).meta.changes,
    all: async (q, ...params) => (await db.prepare(q).bind(...params).all()).results,
    dispose: () => mf.dispose(),
  };
}

before(async () => {
  doh = await startFakeDoh();
  w = await startWorker({
    vars: {
      ...testSecrets(),
      DOH_RESOLVER_URL: doh.url,
      GATE_CACHE_TTL_MS: String(CACHE_TTL_MS),
      DOMAIN_LAPSE_AFTER_FAILURES: String(LAPSE_AFTER),
    },
  });
  tokens.acme = await w.login("admin@acme.test");
  tokens.globex = await w.login("admin@globex.test");
  tokens.platform = await w.login("admin@gatehouse.test");
  T.acme = (await w.request("GET", "/api/me", { token: tokens.acme })).json.context.tenant;
  T.globex = (await w.request("GET", "/api/me", { token: tokens.globex })).json.context.tenant;
  assert.match(T.acme, /^cli_/);
  assert.match(T.globex, /^cli_/);
  assert.notEqual(T.acme, T.globex);
  sql = await openSql(w.dir);
});

after(async () => {
  await sql?.dispose();
  await w?.stop();
  await doh?.stop();
});

// ---------------------------------------------------------------------------------------------
// Helpers

const domainsPath = (client) => `/api/clients/${client}/domains`;

async function register(client, token, body) {
  return w.request("POST", domainsPath(client), { token, json: body });
}

async function verify(client, token, id, body) {
  return w.request("POST", `${domainsPath(client)}/${id}/verify`, { token, json: body });
}

async function listDomains(client, token) {
  const r = await w.request("GET", domainsPath(client), { token });
  assert.equal(r.status, 200, r.text);
  return r.json.items;
}

async function domainById(client, token, id) {
  return (await listDomains(client, token)).find((d) => d.id === id);
}

/** Registers and force-verifies as the platform admin; returns the domain JSON. */
async function forceVerified(client, body) {
  const c = await register(client, tokens.platform, { purpose: "widget", ...body });
  assert.equal(c.status, 201, c.text);
  const v = await verify(client, tokens.platform, c.json.id, { force: true });
  assert.equal(v.status, 200, v.text);
  assert.equal(v.json.status, "verified");
  return v.json;
}

/** Every audit row of a tenant, following the cursor. */
async function auditRows(client, token) {
  const rows = [];
  let cursor = "";
  for (let i = 0; i < 100; i++) {
    const r = await w.request("GET", `/api/clients/${client}/audit?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { token });
    assert.equal(r.status, 200, r.text);
    rows.push(...r.json.items);
    if (!r.json.next_cursor) return rows;
    cursor = r.json.next_cursor;
  }
  throw new Error("audit pagination did not end");
}

function gate(key, origin, { method = "GET", path = "config", headers = {}, json } = {}) {
  const h = { ...headers };
  if (origin !== undefined) h.origin = origin;
  return w.request(method, `/api/widget/v1/${path}?key=${encodeURIComponent(key)}`, { headers: h, json });
}

function preflight(key, origin) {
  return gate(key, origin, {
    method: "OPTIONS",
    path: "leads",
    headers: { "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
  });
}

function assertAllowed(r, origin, what = "") {
  assert.ok([200, 201, 204].includes(r.status), `${what} want 200/201/204, got ${r.status}: ${r.text}`);
  assert.equal(r.headers["access-control-allow-origin"], origin, `${what} ACAO must echo the exact origin`);
  assert.notEqual(r.headers["access-control-allow-origin"], "*");
  assert.match(r.headers.vary || "", /(^|,\s*)Origin(\s*,|$)/i, `${what} Vary: Origin`);
}

function assertDenied(r, what = "") {
  assert.equal(r.status, 403, `${what} want 403, got ${r.status}: ${r.text}`);
  assert.deepEqual(r.json, DENIED, `${what} body`);
  assert.equal(r.headers["access-control-allow-origin"], undefined, `${what} no ACAO on a refusal`);
}

/** Parses a raw HTTP/1.1 response (Connection: close, Content-Length bodies). */
function parseRaw({ status, text }) {
  const split = text.indexOf("\r\n\r\n");
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? "" : text.slice(split + 4);
  const headers = {};
  for (const line of head.split("\r\n").slice(1)) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    (headers[k] ??= []).push(line.slice(i + 1).trim());
  }
  let json;
  try { json = JSON.parse(body); } catch {}
  return { status, headers, body, json };
}

/** Sends header lines byte for byte (UTF-8 where a value is not ASCII), over a raw socket. */
async function raw(method, path, headerLines) {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: localhost:${w.port}`, ...headerLines, "Connection: close", "", ""];
  const bytes = Buffer.from(lines.join("\r\n"), "utf8").toString("latin1");
  return parseRaw(await rawRequest(w.port, bytes));
}

const queries = (r) => Number(r.headers["x-gatehouse-db-queries"]);

/** How often wrangler dev has reloaded the Worker (it does when build/ changes under it). */
const reloads = (worker) => (worker.logs.join("").match(/Reloading local server/g) || []).length;

/**
 * Runs a timing-sensitive attempt. A reload of the Worker mid-attempt (someone rebuilt build/)
 * starts a fresh isolate with an empty cache, which no cache test can survive; only then is the
 * attempt retried, with its index so it can use fresh names. Any other failure is final.
 */
async function unlessReloaded(worker, t, attempt) {
  for (let i = 0; ; i++) {
    const seen = reloads(worker);
    try {
      return await attempt(i);
    } catch (e) {
      if (i < 2 && reloads(worker) !== seen) {
        t.diagnostic(`wrangler dev reloaded the Worker during attempt ${i + 1}; retrying`);
        continue;
      }
      throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------------

describe("the domain lifecycle over HTTP, proved by DNS-over-HTTPS on loopback", () => {
  test("a client admin registers, fails, verifies, lapses and deletes a domain, and the gate follows every step", async () => {
    const domain = "lifecycle.example";
    const origin = `https://${domain}`;
    const challenge = `_gatehouse-challenge.${domain}`;
    const asked = () => doh.requests.filter((n) => n === challenge).length;

    // Registered: pending, with the TXT challenge to publish.
    const c = await register(T.acme, tokens.acme, { domain, purpose: "widget" });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.json.status, "pending");
    assert.equal(c.json.domain, domain);
    assert.equal(c.json.verification.type, "TXT");
    assert.equal(c.json.verification.name, challenge);
    assert.equal(typeof c.json.verification.value, "string");
    assert.ok(c.json.verification.value.length >= 20, "a verification token worth guessing against");
    const id = c.json.id;
    const token = c.json.verification.value;
    assertDenied(await gate(w.keys.acme, origin), "pending:");

    // Verify before the record exists: failed, with a reason naming the record.
    const v1 = await verify(T.acme, tokens.acme, id);
    assert.equal(v1.status, 200, v1.text);
    assert.equal(v1.json.status, "failed");
    assert.equal(typeof v1.json.status_reason, "string");
    assert.match(v1.json.status_reason, new RegExp(challenge.replace(/\./g, "\\.")));
    assert.equal(asked(), 1, "the Worker's outbound fetch reached the fake resolver on loopback");
    assertDenied(await gate(w.keys.acme, origin), "failed:");

    // A wrong value is not proof either.
    doh.records.set(challenge, ["gatehouse-verify=not-the-token", "v=spf1 -all"]);
    const v2 = await verify(T.acme, tokens.acme, id);
    assert.equal(v2.json.status, "failed", v2.text);
    assert.equal(asked(), 2);

    // Publish the token (beside an unrelated TXT value): verified.
    doh.records.set(challenge, ["v=spf1 -all", token]);
    const v3 = await verify(T.acme, tokens.acme, id);
    assert.equal(v3.status, 200, v3.text);
    assert.equal(v3.json.status, "verified", v3.text);
    assert.equal(v3.json.status_reason, null);
    assert.equal(typeof v3.json.verified_at, "number");
    assert.equal(asked(), 3);

    // The gate allows exactly that origin, on GET and on the CORS preflight.
    const g = await gate(w.keys.acme, origin);
    assertAllowed(g, origin, "verified GET:");
    assert.equal(g.status, 200);
    assert.equal(g.json.client.name, "Acme Plumbing");
    const pf = await preflight(w.keys.acme, origin);
    assertAllowed(pf, origin, "verified preflight:");
    assert.equal(pf.status, 204);
    assert.match(pf.headers["access-control-allow-methods"] || "", /POST/);
    assert.match(pf.headers["access-control-allow-headers"] || "", /content-type/i);
    assertDenied(await gate(w.keys.acme, `https://www.${domain}`), "a subdomain of an exact name:");
    assertDenied(await gate(w.keys.acme, `http://${domain}`), "http for an https registration:");

    // The record disappears. One failed re-check short of the limit keeps it serving.
    doh.records.delete(challenge);
    for (let i = 1; i <= LAPSE_AFTER; i++) {
      const s = await w.request("POST", "/__scheduled?cron=recheck-now");
      assert.equal(s.status, 200, s.text);
      assert.equal(asked(), 3 + i, `re-check ${i} asked the resolver`);
      const d = await domainById(T.acme, tokens.acme, id);
      if (i < LAPSE_AFTER) {
        assert.equal(d.status, "verified", `still verified after ${i} failed re-check(s)`);
        assert.equal(d.consecutive_failures, i);
        assertAllowed(await gate(w.keys.acme, origin), origin, `after ${i} failed re-check(s):`);
      } else {
        assert.equal(d.status, "lapsed", JSON.stringify(d));
        assert.match(d.status_reason, /missing/);
      }
    }
    assertDenied(await gate(w.keys.acme, origin), "lapsed:");
    assertDenied(await preflight(w.keys.acme, origin), "lapsed preflight:");

    // Every status change is in the tenant's audit log, in order, with from/to.
    const rows = (await auditRows(T.acme, tokens.acme)).filter((r) => r.target_id === id);
    const actions = rows.map((r) => r.action);
    assert.deepEqual(
      actions,
      ["domain.created", "domain.verification_failed", "domain.verified", "domain.lapsed"],
      "one row per status change (the repeat failure changed no status)",
    );
    const byAction = Object.fromEntries(rows.map((r) => [r.action, r]));
    assert.equal(byAction["domain.created"].actor_user_id, "usr_000000000000000000000004");
    assert.deepEqual([byAction["domain.verification_failed"].metadata.from, byAction["domain.verification_failed"].metadata.to], ["pending", "failed"]);
    assert.deepEqual([byAction["domain.verified"].metadata.from, byAction["domain.verified"].metadata.to], ["failed", "verified"]);
    assert.deepEqual([byAction["domain.lapsed"].metadata.from, byAction["domain.lapsed"].metadata.to], ["verified", "lapsed"]);
    assert.equal(byAction["domain.lapsed"].actor_role, "system");

    // Re-verify the lapsed domain (the record is back), warm the cache, then DELETE: the very
    // next request is refused, well inside the cache TTL, so it was invalidated, not expired.
    doh.records.set(challenge, [token]);
    const v4 = await verify(T.acme, tokens.acme, id);
    assert.equal(v4.json.status, "verified", v4.text);
    await sleep(CACHE_TTL_MS + 100);
    const loadedAt = Date.now();
    const warm = await gate(w.keys.acme, origin);
    assertAllowed(warm, origin, "re-verified:");
    assert.ok(queries(warm) >= 1, "the expired entry was loaded again from D1");
    const del = await w.request("DELETE", `${domainsPath(T.acme)}/${id}`, { token: tokens.acme });
    assert.equal(del.status, 204, del.text);
    const gone = await gate(w.keys.acme, origin);
    const elapsed = Date.now() - loadedAt;
    assert.ok(elapsed < CACHE_TTL_MS - 500, `checked ${elapsed} ms after the load, inside the TTL`);
    assertDenied(gone, "deleted:");
    assert.equal((await domainById(T.acme, tokens.acme, id)), undefined);
    assert.equal((await verify(T.acme, tokens.acme, id)).status, 404);
    const after = (await auditRows(T.acme, tokens.acme)).filter((r) => r.target_id === id).map((r) => r.action);
    assert.deepEqual(after.slice(-2), ["domain.verified", "domain.deleted"]);
  });
});

describe("resolver outages", () => {
  test("a resolver outage is not the customer's fault: a manual verify answers 502 and re-checks strike nothing", async () => {
    const domain = "outage.example";
    const origin = `https://${domain}`;
    const challenge = `_gatehouse-challenge.${domain}`;
    const c = await register(T.acme, tokens.acme, { domain, purpose: "widget" });
    assert.equal(c.status, 201, c.text);
    doh.records.set(challenge, [c.json.verification.value]);
    for (const mode of ["http", "servfail"]) {
      doh.failures.set(challenge, mode);
      const v = await verify(T.acme, tokens.acme, c.json.id);
      assert.equal(v.status, 502, `${mode}: ${v.text}`);
      assert.equal(errorCode(v), "upstream_error");
      assert.equal((await domainById(T.acme, tokens.acme, c.json.id)).status, "pending", `${mode}: no status change`);
    }
    doh.failures.delete(challenge);
    const ok = await verify(T.acme, tokens.acme, c.json.id);
    assert.equal(ok.json.status, "verified", ok.text);
    // Outages through more re-checks than the lapse limit: still verified, no strikes.
    const asked = doh.requests.filter((n) => n === challenge).length;
    for (const mode of ["http", "servfail", "http"]) {
      doh.failures.set(challenge, mode);
      const s = await w.request("POST", "/__scheduled?cron=recheck-now");
      assert.equal(s.status, 200, s.text);
    }
    assert.equal(doh.requests.filter((n) => n === challenge).length, asked + 3, "each re-check asked");
    const d = await domainById(T.acme, tokens.acme, c.json.id);
    assert.equal(d.status, "verified");
    assert.equal(d.consecutive_failures, 0);
    assertAllowed(await gate(w.keys.acme, origin), origin, "through the outage:");
    doh.failures.delete(challenge);
    const del = await w.request("DELETE", `${domainsPath(T.acme)}/${c.json.id}`, { token: tokens.acme });
    assert.equal(del.status, 204, del.text);
  });
});

describe("registration rules", () => {
  const REFUSED = [
    ["127.0.0.1", "ip_literal_not_allowed"],
    ["[::1]", "ip_literal_not_allowed"],
    ["::1", "ip_literal_not_allowed"],
    ["127.1", "ip_literal_not_allowed"],
    ["0x7f.0.0.1", "ip_literal_not_allowed"],
    ["co.uk", "public_suffix_not_allowed"],
    ["CO.UK.", "public_suffix_not_allowed"],
    ["github.io", "public_suffix_not_allowed"],
    ["workers.dev", "public_suffix_not_allowed"],
    ["pages.dev", "public_suffix_not_allowed"],
    ["com", "public_suffix_not_allowed"],
    ["a.*.example.com", "invalid_wildcard"],
    ["*", "invalid_wildcard"],
    ["*.", "invalid_wildcard"],
    ["**.example.com", "invalid_wildcard"],
    ["*example.com", "invalid_wildcard"],
    ["*.*.example.com", "invalid_wildcard"],
    ["*.co.uk", "wildcard_over_public_suffix"],
    ["*.github.io", "wildcard_over_public_suffix"],
    ["*.com", "wildcard_over_public_suffix"],
    ["https://example.com", "invalid_domain"],
    ["example.com:8443", "invalid_domain"],
    ["example.com/path", "invalid_domain"],
    ["user@example.com", "invalid_domain"],
    ["exa mple.com", "invalid_domain"],
    ["", "invalid_domain"],
    ["a..example.com", "invalid_domain"],
  ];
  for (const [domain, code] of REFUSED) {
    test(`registering ${JSON.stringify(domain)} is refused with 422 ${code}`, async () => {
      const r = await register(T.acme, tokens.acme, { domain, purpose: "widget" });
      assert.equal(r.status, 422, r.text);
      assert.equal(errorCode(r), code, r.text);
    });
  }

  test("a Unicode name with capitals and a trailing dot is stored as lowercase A-labels without the dot", async () => {
    const r = await register(T.acme, tokens.acme, { domain: "Bücher.Example.", purpose: "widget" });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.domain, "xn--bcher-kva.example");
    assert.equal(r.json.origin, "https://xn--bcher-kva.example");
    assert.equal(r.json.verification.name, "_gatehouse-challenge.xn--bcher-kva.example");
    const rows = w.d1(`SELECT hostname FROM domains WHERE id = '${r.json.id}'`);
    assert.deepEqual(rows, [{ hostname: "xn--bcher-kva.example" }]);
  });

  // Only a verified claim blocks other clients (an unproved one would let anyone squat a name).
  const forceVerify = async (client, id) => {
    const r = await w.request("POST", `/api/clients/${client}/domains/${id}/verify`, { token: tokens.platform, json: { force: true } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, "verified");
  };

  test("a name another client has verified is refused with 409 domain_taken, in any spelling", async () => {
    const held = await register(T.acme, tokens.acme, { domain: "taken.example", purpose: "widget" });
    assert.equal(held.status, 201, held.text);
    await forceVerify(T.acme, held.json.id);
    const bucher = (await listDomains(T.acme, tokens.acme)).find((d) => d.domain === "xn--bcher-kva.example");
    await forceVerify(T.acme, bucher.id);
    for (const domain of ["taken.example", "TAKEN.example.", "xn--bcher-kva.example", "BÜCHER.example"]) {
      const r = await register(T.globex, tokens.globex, { domain, purpose: "widget" });
      assert.equal(r.status, 409, `${domain}: ${r.text}`);
      assert.equal(errorCode(r), "domain_taken");
    }
    // A wildcard held by one client covers its subdomains for everyone else, and vice versa.
    const wild = await register(T.acme, tokens.acme, { domain: "*.held-wild.example", purpose: "widget" });
    assert.equal(wild.status, 201, wild.text);
    await forceVerify(T.acme, wild.json.id);
    const sub = await register(T.globex, tokens.globex, { domain: "shop.held-wild.example", purpose: "widget" });
    assert.equal(sub.status, 409, sub.text);
    assert.equal(errorCode(sub), "domain_taken");
    const over = await register(T.globex, tokens.globex, { domain: "*.taken.example", purpose: "widget" });
    assert.equal(over.status, 409, over.text);
    assert.equal(errorCode(over), "domain_taken");
    const globexNames = (await listDomains(T.globex, tokens.globex)).map((d) => d.domain);
    assert.ok(!globexNames.includes("taken.example") && !globexNames.includes("xn--bcher-kva.example"), globexNames.join());
  });

  test("no registration lets a second client answer for a host another client already covers, at any depth", async () => {
    // acme covers every subdomain of overlap.example, and one exact host under exact-under.example.
    for (const domain of ["*.overlap.example", "host.exact-under.example"]) {
      const r = await register(T.acme, tokens.acme, { domain, purpose: "widget" });
      assert.equal(r.status, 201, r.text);
      await forceVerify(T.acme, r.json.id);
    }
    const attempts = [
      // deep.sub.overlap.example is already covered by acme's *.overlap.example
      "deep.sub.overlap.example",
      // every host under *.sub.overlap.example is already covered by acme's *.overlap.example
      "*.sub.overlap.example",
      // host.exact-under.example is acme's; this wildcard would cover it for globex too
      "*.exact-under.example",
    ];
    const accepted = [];
    for (const domain of attempts) {
      const r = await register(T.globex, tokens.globex, { domain, purpose: "widget" });
      if (r.status !== 409) accepted.push(`${domain} → ${r.status}`);
      else assert.equal(errorCode(r), "domain_taken");
    }
    assert.deepEqual(accepted, [], "overlapping registrations must be 409 domain_taken (SPEC: one domain belongs to at most one client)");
  });
});

describe("force-verify", () => {
  test("a client admin may not force-verify, a platform admin may, and it is audited", async () => {
    const domain = "forced.example";
    const c = await register(T.acme, tokens.acme, { domain, purpose: "widget" });
    assert.equal(c.status, 201, c.text);
    const asked = doh.requests.length;
    const denied = await verify(T.acme, tokens.acme, c.json.id, { force: true });
    assert.equal(denied.status, 403, denied.text);
    errorCode(denied);
    assert.equal((await domainById(T.acme, tokens.acme, c.json.id)).status, "pending");
    const ok = await verify(T.acme, tokens.platform, c.json.id, { force: true });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.status, "verified");
    assert.equal(doh.requests.length, asked, "a forced verification asks no resolver");
    assertAllowed(await gate(w.keys.acme, `https://${domain}`), `https://${domain}`, "force-verified:");
    const rows = (await auditRows(T.acme, tokens.acme)).filter((r) => r.target_id === c.json.id);
    const forced = rows.filter((r) => r.action === "domain.force_verified");
    assert.equal(forced.length, 1, JSON.stringify(rows.map((r) => r.action)));
    assert.equal(forced[0].actor_user_id, "usr_000000000000000000000001");
    assert.equal(forced[0].actor_role, "platform_admin");
    assert.equal(forced[0].metadata.to, "verified");
    assert.deepEqual(rows.map((r) => r.action), ["domain.created", "domain.force_verified"], "the refused attempt changed nothing");
  });
});

describe("the explainer", () => {
  before(async () => {
    for (const domain of ["explain.example", "*.wild.example"]) {
      const c = await register(T.acme, tokens.acme, { domain, purpose: "widget" });
      assert.equal(c.status, 201, c.text);
      // A wildcard is proved at its base name.
      assert.equal(c.json.verification.name, `_gatehouse-challenge.${domain.replace(/^\*\./, "")}`);
      doh.records.set(c.json.verification.name, [c.json.verification.value]);
      const v = await verify(T.acme, tokens.acme, c.json.id);
      assert.equal(v.json.status, "verified", v.text);
    }
  });
  const check = (origin) => w.request("POST", `${domainsPath(T.acme)}/check`, { token: tokens.acme, json: { origin } });

  test("an exact verified origin is allowed and names the rule that matched", async () => {
    const r = await check("https://explain.example");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.canonical, "https://explain.example");
    assert.equal(r.json.allowed, true);
    assert.equal(r.json.matched_rule, "https://explain.example");
    assert.equal(r.json.reason, null);
  });

  test("a subdomain under a verified wildcard is allowed by the wildcard rule", async () => {
    const r = await check("https://a.b.wild.example");
    assert.equal(r.json.allowed, true, r.text);
    assert.equal(r.json.matched_rule, "https://*.wild.example");
  });

  test("an uppercase origin is refused as non-canonical and the explainer names the canonical form", async () => {
    const r = await check("https://EXPLAIN.example");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.allowed, false);
    assert.equal(r.json.origin, "https://EXPLAIN.example");
    // `canonical` is set only for a header the gate would accept as an origin; the expected
    // canonical form is in the reason.
    assert.equal(r.json.canonical, null);
    assert.equal(r.json.matched_rule, null);
    assert.equal(r.json.origin_error.code, "origin_not_canonical");
    assert.match(r.json.reason, /not canonical: expected https:\/\/explain\.example/);
  });

  test("a wildcard's apex is refused with the reason that wildcards match subdomains only", async () => {
    const r = await check("https://wild.example");
    assert.equal(r.json.allowed, false, r.text);
    assert.equal(r.json.canonical, "https://wild.example");
    assert.equal(r.json.matched_rule, null);
    assert.equal(typeof r.json.reason, "string");
    const entry = r.json.domains.find((d) => d.domain === "*.wild.example");
    assert.equal(entry.why_not, "a wildcard matches subdomains only, never the apex");
  });

  test("the explainer refuses with the same answers as the live gate", async () => {
    for (const origin of ["https://explain.example", "https://a.wild.example", "https://wild.example", "https://EXPLAIN.example", "http://explain.example"]) {
      const e = await check(origin);
      const g = await gate(w.keys.acme, origin);
      assert.equal(g.status === 200, e.json.allowed, `${origin}: gate ${g.status}, explainer ${e.json.allowed}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Hostile Origin headers against the live gate: globex (not in test mode) holds
// https://example.com, https://*.shop.example and http://example.org:8080.

const ALLOWED = ["https://example.com", "https://a.shop.example", "https://a.b.shop.example", "http://example.org:8080"];

// [label, header lines]. Every one must get exactly the 403 and no ACAO, on GET and preflight.
const o = (v) => [`Origin: ${v}`];
const HOSTILE = [
  ["uppercase host", o("https://EXAMPLE.com")],
  ["capitalised host", o("https://Example.com")],
  ["uppercase scheme", o("HTTPS://example.com")],
  ["uppercase wildcard subdomain", o("https://A.shop.example")],
  ["explicit default port :443", o("https://example.com:443")],
  ["empty port", o("https://example.com:")],
  ["explicit :80 on the http rule's host", o("http://example.org:80")],
  ["leading zero in port", o("http://example.org:08080")],
  ["trailing slash", o("https://example.com/")],
  ["backslash path", o("https://example.com\\")],
  ["a path", o("https://example.com/path")],
  ["a query", o("https://example.com?x=1")],
  ["a fragment", o("https://example.com#top")],
  ["userinfo", o("https://user@example.com")],
  ["user and password", o("https://user:pass@example.com")],
  ["empty userinfo", o("https://:@example.com")],
  ["registered host as userinfo of another", o("https://example.com@evil.com")],
  ["percent-encoded letter %41", o("https://ex%41mple.com")],
  ["percent-encoded letter %65", o("https://%65xample.com")],
  ["full-width letter", o("https://ｅxample.com")],
  ["ideographic full stop", o("https://example。com")],
  ["Unicode under the wildcard", o("https://bücher.shop.example")],
  ["Punycode look-alike", o("https://xn--exmple-4nf.com")],
  ["trailing dot", o("https://example.com.")],
  ["trailing dot under the wildcard", o("https://a.shop.example.")],
  ["empty label", o("https://a..shop.example")],
  ["leading dot", o("https://.shop.example")],
  ["hyphenated look-alike", o("https://evil-example.com")],
  ["registered name as a subdomain of evil", o("https://example.com.evil.com")],
  ["suffix look-alike", o("https://notexample.com")],
  ["subdomain of an exact name", o("https://www.example.com")],
  ["wildcard apex", o("https://shop.example")],
  ["wildcard base look-alike", o("https://evilshop.example")],
  ["wildcard base as a subdomain of evil", o("https://shop.example.evil.com")],
  ["http instead of https", o("http://example.com")],
  ["http under the wildcard", o("http://a.shop.example")],
  ["https instead of http", o("https://example.org:8080")],
  ["wrong port", o("https://example.com:8443")],
  ["missing port on the http rule", o("http://example.org")],
  ["wrong port under the wildcard", o("https://a.shop.example:8443")],
  ["null", o("null")],
  ["NULL", o("NULL")],
  ["missing Origin", []],
  ["empty Origin", ["Origin: "]],
  ["localhost without test mode", o("http://localhost:3000")],
  ["*.localhost without test mode", o("http://shop.localhost:3000")],
  ["bare localhost", o("http://localhost")],
  ["IPv4 literal", o("https://127.0.0.1")],
  ["shortened IPv4", o("http://127.1")],
  ["IPv6 literal", o("https://[::1]")],
  ["no scheme", o("example.com")],
  ["scheme-relative", o("//example.com")],
  ["scheme without slashes", o("https:example.com")],
  ["file scheme", o("file://example.com")],
  ["ftp scheme", o("ftp://example.com")],
  ["websocket scheme", o("wss://example.com")],
  ["javascript scheme", o("javascript:alert(1)")],
  ["space-separated list", o("https://example.com https://evil.com")],
  ["comma-separated list", o("https://example.com, https://evil.com")],
  ["comma without space", o("https://example.com,https://evil.com")],
  ["interior space", o("https://exam ple.com")],
  ["interior tab", o("https://exam\tple.com")],
  ["percent-encoded CRLF and an injected header", o("https://example.com%0d%0aAccess-Control-Allow-Origin:%20*")],
  ["control byte 0x01", o("https://example.com\x01")],
  ["DEL byte", o("https://exam\x7fple.com")],
  ["two Origin headers, both allowed", ["Origin: https://example.com", "Origin: https://example.com"]],
  ["two Origin headers, evil first", ["Origin: https://evil.com", "Origin: https://example.com"]],
  ["two Origin headers, evil second", ["Origin: https://example.com", "origin: https://evil.com"]],
  ["the wildcard pattern itself", o("https://*.shop.example")],
  ["a non-hostname character under the wildcard", o("https://evil.com!.shop.example")],
  ["a query-like host under the wildcard", o("https://x=y&z.shop.example")],
  ["over-long label", o(`https://${"a".repeat(64)}.shop.example`)],
];

describe("hostile Origin headers against the live gate", () => {
  before(async () => {
    await forceVerified(T.globex, { domain: "example.com" });
    await forceVerified(T.globex, { domain: "*.shop.example" });
    await forceVerified(T.globex, { domain: "example.org", scheme: "http", port: 8080 });
  });

  const cfg = () => `/api/widget/v1/config?key=${w.keys.globex}`;
  const leads = () => `/api/widget/v1/leads?key=${w.keys.globex}`;
  const PREFLIGHT = ["Access-Control-Request-Method: POST", "Access-Control-Request-Headers: content-type"];

  function rawAllowed(r, origin, what) {
    assert.ok(r.status === 200 || r.status === 204, `${what}: ${r.status} ${r.body}`);
    assert.deepEqual(r.headers["access-control-allow-origin"], [origin], what);
    assert.ok((r.headers.vary || []).some((v) => /(^|,\s*)Origin(\s*,|$)/i.test(v)), `${what}: Vary: Origin`);
  }
  function rawDenied(r, what) {
    assert.equal(r.status, 403, `${what}: ${r.status} ${r.body}`);
    assert.deepEqual(r.json, DENIED, what);
    assert.equal(r.headers["access-control-allow-origin"], undefined, `${what}: no ACAO`);
    assert.ok(r.headers["x-gatehouse-db-queries"], `${what}: the Worker itself answered`);
  }

  test("the table holds at least 40 hostile values", () => {
    assert.ok(HOSTILE.length >= 40, String(HOSTILE.length));
  });

  for (const origin of ALLOWED) {
    test(`the registered origin ${origin} passes GET and preflight with its exact ACAO`, async () => {
      rawAllowed(await raw("GET", cfg(), o(origin)), origin, "GET");
      const pf = await raw("OPTIONS", leads(), [...o(origin), ...PREFLIGHT]);
      rawAllowed(pf, origin, "preflight");
      assert.equal(pf.status, 204);
    });
  }

  for (const [label, lines] of HOSTILE) {
    test(`an Origin that is ${label} (${JSON.stringify(lines.join(" | ") || "none")}) gets the 403 on GET and preflight`, async () => {
      rawDenied(await raw("GET", cfg(), lines), "GET");
      rawDenied(await raw("OPTIONS", leads(), [...lines, ...PREFLIGHT]), "preflight");
    });
  }

  test("a verified portal-only domain does not open the widget gate", async () => {
    await forceVerified(T.globex, { domain: "portal-only.example", purpose: "portal" });
    rawDenied(await raw("GET", cfg(), o("https://portal-only.example")), "portal-only GET");
    rawDenied(await raw("OPTIONS", leads(), [...o("https://portal-only.example"), ...PREFLIGHT]), "portal-only preflight");
  });

  test("a lead POSTed from refused origins is refused and stores nothing", async () => {
    const before = w.d1(`SELECT count(*) AS n FROM contacts WHERE client_id = '${T.globex}'`)[0].n;
    for (const origin of ["https://EXAMPLE.com", "https://evil.com", "null", "http://localhost:3000", "https://shop.example"]) {
      assertDenied(await gate(w.keys.globex, origin, { method: "POST", path: "leads", json: { name: "Mallory", email: "m@evil.test" } }), origin);
    }
    assertDenied(await gate(w.keys.globex, undefined, { method: "POST", path: "leads", json: { name: "Mallory", email: "m@evil.test" } }), "no origin");
    const after = w.d1(`SELECT count(*) AS n FROM contacts WHERE client_id = '${T.globex}'`)[0].n;
    assert.equal(after, before);
  });

  test("a lead POSTed from an allowed wildcard origin is stored with that exact origin", async () => {
    const r = await gate(w.keys.globex, "https://a.shop.example", { method: "POST", path: "leads", json: { name: "Wendy Wild", email: "wendy@shop.test" } });
    assertAllowed(r, "https://a.shop.example", "lead:");
    assert.equal(r.status, 201, r.text);
    const rows = w.d1(`SELECT client_id, source, origin FROM contacts WHERE id = '${r.json.id}'`);
    assert.deepEqual(rows, [{ client_id: T.globex, source: "widget", origin: "https://a.shop.example" }]);
  });

  test("header bytes HTTP/1.1 forbids (bare CR, NUL, obs-fold) are refused before the Worker, without ACAO", async () => {
    for (const lines of [o("https://example.com\rX"), o("https://exa\0mple.com"), ["Origin: https://evil.com", " https://example.com"]]) {
      const r = await raw("GET", cfg(), lines);
      assert.notEqual(r.status, 200, JSON.stringify(lines));
      assert.ok(r.status >= 400 && r.status < 500, `${JSON.stringify(lines)}: ${r.status}`);
      assert.equal(r.headers["access-control-allow-origin"], undefined);
      if (r.status !== 403) assert.equal(r.headers["x-gatehouse-db-queries"], undefined, "never reached the Worker");
    }
  });

  test("whitespace around the value is not part of the field (RFC 9110), so the bare origin is echoed", async () => {
    const r = await raw("GET", cfg(), ["Origin: \t https://example.com \t"]);
    rawAllowed(r, "https://example.com", "OWS");
  });
});

describe("publishable keys", () => {
  const ORIGIN = "https://example.com"; // verified for globex above
  // Built lazily: the keys exist only once the worker has started.
  const KEYS = [
    ["no key at all", () => null],
    ["an empty key", () => ""],
    ["an unknown key of the right shape", () => `pk_${"0".repeat(52)}`],
    ["another unknown key of the right shape", () => `pk_${"z".repeat(52)}`],
    ["globex's key in uppercase", () => w.keys.globex.toUpperCase()],
    ["globex's key with a character more", () => `${w.keys.globex}0`],
    ["globex's key with a character less", () => w.keys.globex.slice(0, -1)],
    ["globex's key with a trailing space", () => `${w.keys.globex} `],
    ["a secret-key prefix", () => `sk_${w.keys.globex.slice(3)}`],
    ["SQL in the key", () => "pk_' OR '1'='1"],
    ["acme's key for globex's origin", () => w.keys.acme],
  ];
  test("the origin is allowed with globex's own key (the control)", async () => {
    assertAllowed(await gate(w.keys.globex, ORIGIN), ORIGIN);
  });
  for (const [label, keyOf] of KEYS) {
    test(`${label} gets the same 403 as a refused origin`, async () => {
      const key = keyOf();
      const path = key === null ? "/api/widget/v1/config" : `/api/widget/v1/config?key=${encodeURIComponent(key)}`;
      const r = await w.request("GET", path, { headers: { origin: ORIGIN } });
      assertDenied(r, label);
      const pf = await w.request("OPTIONS", path.replace("config", "leads"), { headers: { origin: ORIGIN, "access-control-request-method": "POST" } });
      assertDenied(pf, `${label} preflight`);
    });
  }
  test("a second key parameter does not override an unknown first one", async () => {
    const r = await w.request("GET", `/api/widget/v1/config?key=pk_${"0".repeat(52)}&key=${w.keys.globex}`, { headers: { origin: ORIGIN } });
    assertDenied(r);
  });
});

describe("the hot path and the cache bound", () => {
  test("a warm isolate decides repeated requests without querying D1", (t) => unlessReloaded(w, t, async () => {
    const origin = "https://a.shop.example";
    await sleep(CACHE_TTL_MS + 100); // let any earlier entry expire, so the next load is ours
    // A cold preflight is the gate's decision alone: one indexed query.
    const coldPreflight = await preflight(w.keys.globex, origin);
    assertAllowed(coldPreflight, origin);
    assert.equal(queries(coldPreflight), 1, "one query decides a cold gate");
    const t0 = Date.now();
    const first = await gate(w.keys.globex, origin); // may load the widget config once
    assertAllowed(first, origin);
    for (let i = 0; i < 10; i++) {
      const r = await gate(w.keys.globex, origin);
      assertAllowed(r, origin);
      assert.equal(queries(r), 0, `warm request ${i}`);
    }
    const pf = await preflight(w.keys.globex, origin);
    assertAllowed(pf, origin);
    assert.equal(queries(pf), 0, "warm preflight");
    const refused = await gate(w.keys.globex, "https://evil.com");
    assertDenied(refused);
    assert.equal(queries(refused), 0, "a refused origin is decided from the same cached gate");
    assert.ok(Date.now() - t0 < CACHE_TTL_MS, "all inside one TTL");
  }));

  test("an unknown key is cached too, so a flood of bad keys is not a flood of queries", async () => {
    const key = `pk_${"q".repeat(52)}`;
    const first = await gate(key, "https://example.com");
    assertDenied(first);
    assert.equal(queries(first), 1);
    for (let i = 0; i < 5; i++) {
      const r = await gate(key, "https://example.com");
      assertDenied(r);
      assert.equal(queries(r), 0);
    }
    const malformed = await gate("pk_short", "https://example.com");
    assertDenied(malformed);
    assert.equal(queries(malformed), 0, "a malformed key never reaches D1");
  });

  test("a revocation written behind the isolate's back stops the gate within the 3 s cache TTL", (t) => unlessReloaded(w, t, async (attempt) => {
    const domain = await forceVerified(T.globex, { domain: `revoke-${attempt}.example` });
    const origin = `https://revoke-${attempt}.example`;
    await sleep(CACHE_TTL_MS + 100);
    const loadedBefore = Date.now();
    const cold = await gate(w.keys.globex, origin);
    assertAllowed(cold, origin);
    assert.ok(queries(cold) >= 1, "a cold load went to D1");

    // Revoke in D1 directly: no API call, so no cache invalidation.
    const changed = await sql.run("UPDATE domains SET status = 'lapsed' WHERE id = ?1", domain.id);
    assert.equal(changed, 1);
    assert.deepEqual(await sql.all("SELECT status FROM domains WHERE id = ?1", domain.id), [{ status: "lapsed" }]);

    // Right after the change the isolate still answers from its cache: the bound is the TTL.
    const stale = await gate(w.keys.globex, origin);
    const staleAt = Date.now() - loadedBefore;
    assert.ok(staleAt < CACHE_TTL_MS, `the stale check ran ${staleAt} ms after the load`);
    assertAllowed(stale, origin, "from cache after the revocation:");
    assert.equal(queries(stale), 0, "answered from cache");

    // Then it flips, no later than the TTL after the load (plus polling slack), and stays off.
    let flippedAt = null;
    let flip;
    while (Date.now() - loadedBefore < 10_000) {
      const r = await gate(w.keys.globex, origin);
      if (r.status !== 200) { flippedAt = Date.now() - loadedBefore; flip = r; break; }
      assert.equal(queries(r), 0, "until it expires, every answer comes from the cache");
      await sleep(100);
    }
    assert.notEqual(flippedAt, null, "the revocation never took effect within 10 s");
    assertDenied(flip, "after the TTL:");
    assert.equal(queries(flip), 1, "the expired entry was reloaded from D1");
    assert.ok(flippedAt >= CACHE_TTL_MS - 50, `flipped at ${flippedAt} ms: not before the TTL`);
    assert.ok(flippedAt <= CACHE_TTL_MS + 1000, `flipped at ${flippedAt} ms: within the TTL`);
    assertDenied(await gate(w.keys.globex, origin), "and stays refused:");
    assertDenied(await preflight(w.keys.globex, origin), "preflight too:");
  }));
});

describe("the default cache TTL keeps the 60 s promise", () => {
  let w2;
  before(async () => {
    w2 = await startWorker({ vars: { ...testSecrets(), DOH_RESOLVER_URL: doh.url } });
    assert.equal(w2.vars.GATE_CACHE_TTL_MS, undefined, "this worker runs with the default TTL");
  });
  after(async () => { await w2?.stop(); });

  test("with no GATE_CACHE_TTL_MS set, a revocation behind the isolate's back is cached for about 30 s and stops well inside 60 s", (t) => unlessReloaded(w2, t, async (attempt) => {
    const origin = "http://shop.localhost:5173"; // seeded: acme is in test mode, shop.localhost verified
    const g = () => w2.request("GET", `/api/widget/v1/config?key=${w2.keys.acme}`, { headers: { origin } });
    if (attempt > 0) {
      w2.d1("UPDATE domains SET status = 'verified' WHERE hostname = 'shop.localhost'");
      await sleep(31_000); // the previous attempt's entry, if any, expires
    }
    const loadedBefore = Date.now();
    const cold = await g();
    assert.equal(cold.status, 200, cold.text);
    assert.equal(cold.headers["access-control-allow-origin"], origin);
    assert.ok(queries(cold) >= 1, "a cold load went to D1");
    w2.d1("UPDATE domains SET status = 'lapsed' WHERE hostname = 'shop.localhost'");
    let flippedAt = null;
    let lastCached = 0;
    while (Date.now() - loadedBefore < 65_000) {
      const r = await g();
      if (r.status !== 200) { flippedAt = Date.now() - loadedBefore; assertDenied(r); break; }
      assert.equal(queries(r), 0);
      lastCached = Date.now() - loadedBefore;
      await sleep(500);
    }
    assert.notEqual(flippedAt, null, "still allowed 65 s after a revocation");
    assert.ok(flippedAt <= 60_000, `flipped at ${flippedAt} ms, over the 60 s promise`);
    assert.ok(lastCached >= 25_000, `the default cache held only ${lastCached} ms; the default is documented as 30 s`);
    assert.ok(flippedAt >= 29_500, `refused at ${flippedAt} ms, before the 30 s default TTL ran out`);
    t.diagnostic(`default TTL: cached until ${lastCached} ms, refused at ${flippedAt} ms`);
  }));
});
