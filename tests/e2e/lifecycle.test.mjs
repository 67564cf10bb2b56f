// Tenant lifecycle under a real wrangler dev: quotas under parallel writes at the limit, deleting,
// restoring and purging a client (D1 rows and R2 objects), the audit log's hash chain under
// concurrent writers, the breaks raw SQL leaves, the scheduled sealing, and the CSV export.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startWorker, testSecrets, errorCode, r2Object } from "./harness.mjs";

let w;
const tok = {};
const T = {};

before(async () => {
  // Per-client API rates on (the harness leaves them off elsewhere): see "API rate by plan".
  w = await startWorker({ vars: { ...testSecrets(), API_RATE_LIMITS: "true" } });
  tok.acme = await w.login("admin@acme.test");
  tok.agency = await w.login("agency.admin@northwind.test");
  tok.platform = await w.login("admin@gatehouse.test");
  const clients = (await w.request("GET", "/api/clients", { token: tok.agency })).json.items;
  T.acme = clients.find((c) => c.slug === "acme").id;
  T.globex = clients.find((c) => c.slug === "globex").id;
  T.agency = clients[0].agency_id;
});

after(async () => {
  await w?.stop();
});

const verify = async (id) => {
  const r = await w.request("GET", `/api/clients/${id}/audit/verify`, { token: tok.agency });
  assert.equal(r.status, 200, r.text);
  return r.json;
};

describe("quotas", () => {
  test("25 parallel contact creates against 10 free places: exactly 10 land, 15 get 429 quota_exceeded, each crossing recorded once", async () => {
    const held = w.d1(`SELECT count(*) AS n FROM contacts WHERE client_id = '${T.globex}'`)[0].n;
    const limit = held + 10;
    const put = await w.request("PUT", `/api/clients/${T.globex}`, { token: tok.agency, json: { limits: { contacts: limit } } });
    assert.equal(put.status, 200, put.text);
    const results = await Promise.all(Array.from({ length: 25 }, (_, i) =>
      w.request("POST", `/api/clients/${T.globex}/contacts`, { token: tok.agency, json: { name: `Quota ${i}` } })));
    const counts = {};
    for (const r of results) counts[r.status] = (counts[r.status] || 0) + 1;
    assert.deepEqual(counts, { 201: 10, 429: 15 });
    const refused = results.find((r) => r.status === 429);
    assert.deepEqual(refused.json.error.metric, "contacts");
    assert.equal(refused.json.error.limit, limit);
    assert.equal(w.d1(`SELECT count(*) AS n FROM contacts WHERE client_id = '${T.globex}'`)[0].n, limit);
    const events = w.d1(`SELECT threshold, used FROM usage_events WHERE client_id = '${T.globex}' AND metric = 'contacts' ORDER BY threshold`);
    assert.deepEqual(events, [{ threshold: 80, used: Math.ceil(limit * 0.8) }, { threshold: 100, used: limit }]);
    const usage = await w.request("GET", `/api/clients/${T.globex}/usage`, { token: tok.agency });
    assert.equal(usage.status, 200, usage.text);
    assert.deepEqual([usage.json.contacts.used, usage.json.contacts.limit, usage.json.contacts.remaining], [limit, limit, 0]);
    assert.equal(usage.json.contacts.events.length, 2);
  });
});

describe("templates", () => {
  const v1 = {
    plan: "growth",
    feature_flags: { widget_leads: false },
    branding: { primary_color: "#0A7", tagline: "Fresh cuts" },
    pipelines: [{ name: "Sales", stages: ["Lead", "Won"] }],
    services: [{ name: "Haircut", duration_min: 45, price_minor: 3000 }],
    integrations: ["twilio"],
  };
  const count = (sql) => w.d1(sql)[0].n;

  test("a client made from a template gets all of it in its creating batch, and two pushes at once apply once", async () => {
    const tpl = await w.request("POST", `/api/agencies/${T.agency}/templates`, { token: tok.agency, json: { name: "Salon", spec: v1 } });
    assert.equal(tpl.status, 201, tpl.text);
    const ids = [];
    for (const slug of ["tpl-one", "tpl-two", "tpl-three"]) {
      const r = await w.request("POST", "/api/clients", { token: tok.agency, json: { name: slug, slug, template_id: tpl.json.id } });
      assert.equal(r.status, 201, r.text);
      assert.deepEqual([r.json.plan, r.json.template, r.json.integrations], ["growth", { id: tpl.json.id, version: 1 }, ["twilio"]]);
      ids.push(r.json.id);
    }
    const [one] = ids;
    assert.deepEqual(w.d1(`SELECT s.name FROM pipeline_stages s JOIN pipelines p ON p.id = s.pipeline_id WHERE p.client_id = '${one}' AND p.name = 'Sales' ORDER BY s.position`).map((r) => r.name), ["Lead", "Won"]);
    assert.deepEqual(w.d1(`SELECT name, duration_min, price_minor FROM services WHERE client_id = '${one}'`), [{ name: "Haircut", duration_min: 45, price_minor: 3000 }]);
    assert.equal(w.d1(`SELECT primary_color FROM branding WHERE owner_id = '${one}'`)[0].primary_color, "#0a7");
    assert.equal(w.d1(`SELECT feature_flags AS f FROM clients WHERE id = '${one}'`)[0].f, '{"widget_leads":false}');

    const v2 = { ...v1, pipelines: [{ name: "Sales", stages: ["Lead", "Booked", "Won"] }, { name: "Retention", stages: ["Follow-up"] }], services: [...v1.services, { name: "Colour", duration_min: 90 }] };
    const saved = await w.request("POST", `/api/agencies/${T.agency}/templates/${tpl.json.id}/versions`, { token: tok.agency, json: { spec: v2 } });
    assert.equal(saved.status, 201, saved.text);
    const push = () => w.request("POST", `/api/agencies/${T.agency}/templates/${tpl.json.id}/push`, { token: tok.agency, json: { version: 2 } });
    const [a, b] = await Promise.all([push(), push()]);
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    for (const id of ids) {
      const statuses = [a, b].map((r) => r.json.clients.find((c) => c.client_id === id).status).sort();
      assert.equal(statuses.filter((s) => s === "applied").length, 1, `${id}: ${statuses}`);
      assert.equal(count(`SELECT count(*) AS n FROM pipelines WHERE client_id = '${id}' AND name = 'Retention'`), 1);
      assert.equal(count(`SELECT count(*) AS n FROM pipeline_stages WHERE client_id = '${id}' AND name = 'Booked'`), 1);
      assert.equal(count(`SELECT count(*) AS n FROM services WHERE client_id = '${id}' AND name = 'Colour'`), 1);
      assert.equal(count(`SELECT count(*) AS n FROM audit_log WHERE tenant_id = '${id}' AND action = 'client.template_pushed'`), 1);
      assert.equal(w.d1(`SELECT template_version AS v FROM clients WHERE id = '${id}'`)[0].v, 2);
    }
  });

  test("six versions saved at once: each gets its own number or a 409, with no gap", async () => {
    const tpl = await w.request("POST", `/api/agencies/${T.agency}/templates`, { token: tok.agency, json: { name: "Race", spec: {} } });
    assert.equal(tpl.status, 201, tpl.text);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) =>
      w.request("POST", `/api/agencies/${T.agency}/templates/${tpl.json.id}/versions`, { token: tok.agency, json: { name: `Race ${i}`, spec: {} } })));
    const ok = results.filter((r) => r.status === 201);
    assert.ok(ok.length >= 1);
    for (const r of results.filter((r) => r.status !== 201)) {
      assert.equal(r.status, 409, r.text);
      assert.equal(errorCode(r), "version_conflict");
    }
    const versions = w.d1(`SELECT version FROM templates WHERE id = '${tpl.json.id}' ORDER BY version`).map((r) => r.version);
    assert.deepEqual(versions, Array.from({ length: ok.length + 1 }, (_, i) => i + 1));
    assert.equal(count(`SELECT count(*) AS n FROM audit_log WHERE target_id = '${tpl.json.id}'`), ok.length + 1);
  });
});

describe("data export", () => {
  // The entries of a ustar archive, by path.
  const untar = (buf) => {
    const out = new Map();
    const field = (b) => b.subarray(0, b.indexOf(0) < 0 ? b.length : b.indexOf(0)).toString("utf8");
    let at = 0;
    while (at + 512 <= buf.length) {
      const h = buf.subarray(at, at + 512);
      const name = field(h.subarray(0, 100));
      if (!name) break;
      const prefix = field(h.subarray(345, 500));
      const size = parseInt(field(h.subarray(124, 136)), 8);
      out.set(prefix ? `${prefix}/${name}` : name, buf.subarray(at + 512, at + 512 + size));
      at += 512 + Math.ceil(size / 512) * 512;
    }
    return out;
  };

  test("the archive in R2 holds every row and file of the client, no secret and nothing of another tenant; the link needs no token", async () => {
    const admin = await w.login("admin@globex.test");
    const id = T.globex;
    const put = await w.request("PUT", `/api/clients/${id}/settings`, { token: admin, json: { twilio: { account_sid: "AC-e2e", auth_token: "e2e-secret-not-in-export" } } });
    assert.equal(put.status, 200, put.text);
    // (The quota test above left this client at a contact limit of its own.)
    assert.equal((await w.request("PUT", `/api/clients/${id}`, { token: tok.agency, json: { limits: { contacts: null } } })).status, 200);
    const contact = await w.request("POST", `/api/clients/${id}/contacts`, { token: admin, json: { name: "Exported Person", email: "exported@example.com" } });
    assert.equal(contact.status, 201, contact.text);
    // 3 + 3 MiB of files: the archive spans two parts of R2's multipart upload.
    const files = [];
    for (const [name, fill] of [["one.bin", "x"], ["two.bin", "y"]]) {
      const bytes = Buffer.alloc(3 * 1024 * 1024, fill);
      const r = await w.request("POST", `/api/clients/${id}/files?name=${name}`, { token: admin, body: bytes, headers: { "content-type": "text/plain" } });
      assert.equal(r.status, 201, r.text);
      files.push([r.json.id, bytes]);
    }
    const started = await w.request("POST", `/api/clients/${id}/exports`, { token: admin });
    assert.equal(started.status, 202, started.text);
    let e;
    for (let i = 0; i < 150; i++) {
      e = (await w.request("GET", `/api/clients/${id}/exports/${started.json.id}`, { token: admin })).json;
      if (e.status === "ready" || e.status === "failed") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(e.status, "ready", JSON.stringify(e));
    const link = await w.request("POST", `/api/clients/${id}/exports/${e.id}/link`, { token: admin, json: { expires_in: 300 } });
    assert.equal(link.status, 200, link.text);
    const got = await w.request("GET", link.json.url);
    assert.equal(got.status, 200);
    assert.equal(got.headers["content-type"], "application/x-tar");
    assert.equal(got.bytes.length, e.size);
    const entries = untar(got.bytes);
    const manifest = JSON.parse(entries.get("manifest.json"));
    const lines = (table) => [...entries].filter(([k]) => k.startsWith(`data/${table}/`)).flatMap(([, v]) => v.toString("utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)));
    for (const [table, n] of Object.entries(manifest.tables)) assert.equal(lines(table).length, n, table);
    // One count query per plane: the client's data on its shard, its directory rows in the control plane.
    const planes = [
      { contacts: "client_id", pipelines: "client_id", pipeline_stages: "client_id", services: "client_id", client_settings: "client_id", files: "tenant_id" },
      { domains: "client_id", branding: "owner_id" },
    ];
    for (const column of planes) {
      const counts = w.d1(`SELECT ${Object.entries(column).map(([t, c]) => `(SELECT count(*) FROM ${t} WHERE ${c} = '${id}') AS ${t}`).join(", ")}`)[0];
      for (const [table, n] of Object.entries(counts)) assert.equal(lines(table).length, n, table);
    }
    assert.equal(lines("clients").length, 1);
    assert.ok(lines("contacts").some((c) => c.id === contact.json.id && c.email === "exported@example.com"));
    assert.ok(lines("contacts").every((c) => c.client_id === id));
    assert.ok(lines("client_settings").every((s) => !("ciphertext" in s)));
    for (const [fid, bytes] of files) {
      const [, body] = [...entries].find(([k]) => k.startsWith(`files/${fid}/`));
      assert.ok(body.equals(bytes), fid);
    }
    const all = got.bytes.toString("latin1");
    assert.ok(!all.includes("e2e-secret-not-in-export"));
    assert.ok(!all.includes(T.acme), "nothing of another tenant");
    assert.ok(r2Object(w, `tenants/${id}/exports/${e.id}.tar`).equals(got.bytes), "one archive in R2, as downloaded");
    const tampered = await w.request("GET", link.json.url.replace(`t=${id}`, `t=${T.acme}`));
    assert.equal(tampered.status, 403);
  });
});

describe("API rate by plan", () => {
  test("1,300 requests by a starter client's own key in a burst: at least 600 pass, the rest get 429 rate_limited; its agency and other clients are untouched", async () => {
    const made = await w.request("POST", "/api/clients", { token: tok.agency, json: { name: "Rate", slug: "rate-limited" } });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.json.plan, "starter");
    const key = await w.request("POST", `/api/clients/${made.json.id}/api-keys`, { token: tok.agency, json: { name: "burst", permissions: ["contacts:read"] } });
    assert.equal(key.status, 201, key.text);
    const path = `/api/clients/${made.json.id}/contacts`;
    const statuses = {};
    let refused;
    // 16 at a time; a 60 s window can roll over once in the burst, so at most 1,200 can pass.
    for (let i = 0; i < 1300; i += 16) {
      const batch = await Promise.all(Array.from({ length: Math.min(16, 1300 - i) }, () => w.request("GET", path, { token: key.json.key })));
      for (const r of batch) {
        statuses[r.status] = (statuses[r.status] || 0) + 1;
        if (r.status === 429) refused = r;
      }
    }
    assert.deepEqual(Object.keys(statuses).sort(), ["200", "429"], JSON.stringify(statuses));
    assert.ok(statuses[200] >= 600 && statuses[200] <= 1200, JSON.stringify(statuses));
    assert.equal(errorCode(refused), "rate_limited");
    assert.equal(refused.headers["retry-after"], "60");
    // The agency's requests are not the client's traffic: it still manages the client.
    assert.equal((await w.request("GET", path, { token: tok.agency })).status, 200);
    assert.equal((await w.request("GET", `/api/clients/${T.acme}/usage`, { token: tok.acme })).status, 200);
  });
});

describe("feature flags and preferences", () => {
  test("booking off: the API's booking routes and the widget's Book tab are refused; back on, they return", async () => {
    const shop = { origin: "http://shop.localhost:8080" };
    const config = async () => (await w.request("GET", `/api/widget/v1/config?key=${w.keys.acme}`, { headers: shop })).json;
    assert.equal((await config()).booking.enabled, true);
    const off = await w.request("PUT", `/api/clients/${T.acme}`, { token: tok.agency, json: { feature_flags: { booking: false } } });
    assert.equal(off.status, 200, off.text);
    const services = await w.request("GET", `/api/clients/${T.acme}/services`, { token: tok.acme });
    assert.equal(services.status, 403);
    assert.equal(errorCode(services), "feature_disabled");
    assert.equal((await config()).booking.enabled, false);
    const slots = await w.request("GET", `/api/widget/v1/services?key=${w.keys.acme}`, { headers: shop });
    assert.equal(errorCode(slots), "feature_disabled");
    const byClient = await w.request("PUT", `/api/clients/${T.acme}`, { token: tok.acme, json: { feature_flags: { booking: true } } });
    assert.equal(errorCode(byClient), "forbidden_field", "flags are the agency's");
    assert.equal((await w.request("PUT", `/api/clients/${T.acme}`, { token: tok.agency, json: { feature_flags: { booking: true } } })).status, 200);
    assert.equal((await config()).booking.enabled, true);
    assert.equal((await w.request("GET", `/api/clients/${T.acme}/services`, { token: tok.acme })).status, 200);
  });

  test("preferences: typed values only, normalised, audited", async () => {
    const r = await w.request("PATCH", `/api/clients/${T.acme}/preferences`, { token: tok.acme, json: { locale: "de_de", currency: "eur" } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.locale, "de-DE");
    assert.equal(r.json.currency, "EUR");
    const bad = await w.request("PATCH", `/api/clients/${T.acme}/preferences`, { token: tok.acme, json: { locale: "de", theme: "dark" } });
    assert.equal(bad.status, 422);
    assert.equal(errorCode(bad), "invalid_preference");
    assert.equal((await w.request("GET", `/api/clients/${T.acme}/preferences`, { token: tok.acme })).json.locale, "de-DE");
  });
});

describe("deleting a client", () => {
  /** Rows naming `id` in any tenant column of any table of any D1 (control plane and shards):
   * two queries per database. */
  const columns = {};
  const rowsNaming = (id) => {
    const found = [];
    for (const b of w.bindings) {
      columns[b] ??= w.d1On(b, `SELECT m.name AS t, p.name AS c FROM sqlite_master m JOIN pragma_table_info(m.name) p
        WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_cf_%' AND m.name <> 'd1_migrations'
        AND (p.name IN ('client_id', 'tenant_id', 'owner_id', 'tenant') OR (m.name = 'clients' AND p.name = 'id'))`);
      const [row] = w.d1On(b, `SELECT ${columns[b].map(({ t, c }) => `(SELECT count(*) FROM ${t} WHERE ${c} = '${id}') AS "${t}.${c}"`).join(", ")}`);
      found.push(...Object.entries(row).filter(([, n]) => n > 0).map(([col, n]) => `${b}:${col}: ${n}`));
    }
    return found.sort();
  };

  test("suspends at once, restores as it was, and after the grace period the purge leaves no row and no object", async () => {
    const made = await w.request("POST", "/api/clients", { token: tok.agency, json: { name: "Doomed Co", slug: "doomed-co" } });
    assert.equal(made.status, 201, made.text);
    const id = made.json.id;
    const as = (method, path, json) => w.request(method, `/api/clients/${id}${path}`, { token: tok.agency, json });
    assert.equal((await as("POST", "/contacts", { name: "Dee", email: "dee@example.com" })).status, 201);
    const pipeline = await as("POST", "/pipelines", { name: "Sales", stages: ["New", "Won"] });
    assert.equal((await as("POST", "/deals", { title: "Big", pipeline_id: pipeline.json.id })).status, 201);
    assert.equal((await as("POST", "/api-keys", { name: "zap", permissions: ["contacts:read"] })).status, 201);
    const file = await w.request("POST", `/api/clients/${id}/files?name=a.txt`, { token: tok.agency, body: Buffer.from("doomed file"), headers: { "content-type": "text/plain" } });
    assert.equal(file.status, 201, file.text);
    const key = w.d1(`SELECT object_key FROM files WHERE id = '${file.json.id}'`)[0].object_key;
    assert.equal(String(r2Object(w, key)), "doomed file");
    // Acme's own admin cannot delete Acme; the agency deletes Doomed Co.
    assert.equal((await w.request("DELETE", `/api/clients/${T.acme}`, { token: tok.acme })).status, 403);
    const del = await as("DELETE", "");
    assert.equal(del.status, 202, del.text);
    assert.equal((await as("GET", "/contacts")).json.items.length, 1, "the agency still reads it while restorable");
    assert.equal((await w.request("GET", `/api/clients/${id}`, { token: tok.agency })).json.effective_status, "deleted");
    const restored = await as("POST", "/restore");
    assert.equal(restored.status, 200, restored.text);
    assert.equal(restored.json.effective_status, "active");
    assert.equal((await as("DELETE", "")).status, 202);
    // Thirty days pass (the row's purge time is moved into the past); the window is closed.
    w.d1(`UPDATE clients SET purge_after = 1 WHERE id = '${id}'`);
    const late = await as("POST", "/restore");
    assert.equal(late.status, 409);
    assert.equal(errorCode(late), "restore_window_closed");
    const acmeBefore = rowsNaming(T.acme);
    assert.ok(rowsNaming(id).length >= 8, rowsNaming(id).join(", "));
    for (let run = 0; ; run++) {
      const cron = await w.request("GET", "/__scheduled?cron=*/15+*+*+*+*");
      assert.equal(cron.status, 200, cron.text);
      if (w.d1(`SELECT count(*) AS n FROM clients WHERE id = '${id}'`)[0].n === 0) break;
      assert.ok(run < 5, "the purge finishes");
    }
    assert.deepEqual(rowsNaming(id), [], "no table holds a row of the purged client");
    assert.equal(r2Object(w, key), null, "its object is gone from R2");
    // The sibling's daily traffic counters are left out: the cron writes what this very test's
    // requests added to them.
    const steady = (rows) => rows.filter((r) => !r.includes(":tenant_daily."));
    assert.deepEqual(steady(rowsNaming(T.acme)), steady(acmeBefore), "a sibling keeps every row");
    const audit = w.d1(`SELECT action FROM audit_log WHERE tenant_id = '${T.agency}' AND target_id = '${id}' ORDER BY seq`).map((r) => r.action);
    assert.deepEqual(audit, ["client.deleted", "client.restored", "client.deleted", "client.purged"], "the agency's audit keeps the story");
    assert.equal((await w.request("GET", `/api/clients/${id}`, { token: tok.agency })).status, 404);
  });
});

describe("the audit hash chain", () => {
  test("30 concurrent writers to one client leave one chain: seq 1..n, each row linking the one before", async () => {
    const puts = await Promise.all(Array.from({ length: 30 }, (_, i) =>
      w.request("PUT", `/api/clients/${T.acme}`, { token: i % 2 ? tok.acme : tok.agency, json: { phone: `+1 555 01${String(i).padStart(2, "0")}` } })));
    assert.deepEqual([...new Set(puts.map((r) => r.status))], [200]);
    const rows = w.d1(`SELECT seq FROM audit_log WHERE tenant_id = '${T.acme}' ORDER BY seq`);
    assert.deepEqual(rows.map((r) => r.seq), rows.map((_, i) => i + 1), "no seq twice, none skipped");
    assert.ok(rows.length >= 30);
    const report = await verify(T.acme);
    assert.equal(report.ok, true, JSON.stringify(report));
    assert.equal(report.rows, rows.length);
    const links = w.d1(`SELECT seq, prev_hash, hash FROM audit_log WHERE tenant_id = '${T.acme}' ORDER BY seq`);
    for (let i = 1; i < links.length; i++) assert.equal(links[i].prev_hash, links[i - 1].hash, `row ${links[i].seq}`);
    assert.equal(report.head.hash, links.at(-1).hash);
  });

  test("the scheduled run seals new rows before anyone asks", async () => {
    const r = await w.request("PUT", `/api/clients/${T.globex}`, { token: tok.agency, json: { phone: "+1 555 0177" } });
    assert.equal(r.status, 200, r.text);
    assert.ok(w.d1(`SELECT count(*) AS n FROM audit_log WHERE tenant_id = '${T.globex}' AND hash IS NULL`)[0].n > 0);
    const cron = await w.request("GET", "/__scheduled?cron=*/15+*+*+*+*");
    assert.equal(cron.status, 200, cron.text);
    assert.equal(w.d1(`SELECT count(*) AS n FROM audit_log WHERE tenant_id = '${T.globex}' AND hash IS NULL`)[0].n, 0);
  });

  test("an edit and a deletion by raw SQL on D1 are reported at the first broken row", async () => {
    const seq = 5;
    const row = w.d1(`SELECT id, action FROM audit_log WHERE tenant_id = '${T.acme}' AND seq = ${seq}`)[0];
    w.d1(`UPDATE audit_log SET metadata = '{"fields":["nothing"]}' WHERE tenant_id = '${T.acme}' AND seq = ${seq}`);
    let report = await verify(T.acme);
    assert.equal(report.ok, false);
    assert.deepEqual(report.first_break, { seq, id: row.id, reason: "edited" });
    assert.equal(report.rows, seq - 1);
    w.d1(`DELETE FROM audit_log WHERE tenant_id = '${T.acme}' AND seq = 3`);
    report = await verify(T.acme);
    assert.deepEqual(report.first_break, { seq: 3, id: null, reason: "missing" });
    // Globex's chain is untouched.
    assert.equal((await verify(T.globex)).ok, true);
  });
});

describe("the audit CSV export", () => {
  test("RFC 4180 over a date range, in chain order, for the agency's own log too", async () => {
    const r = await w.request("GET", `/api/clients/${T.globex}/audit/export?from=2026-01-01`, { token: tok.agency });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers["content-type"], "text/csv; charset=utf-8");
    assert.match(r.headers["content-disposition"], /attachment; filename="audit-cli_/);
    const lines = r.text.split("\r\n").filter(Boolean);
    assert.equal(lines[0], "seq,id,at,actor_user_id,actor_role,action,target_type,target_id,ip,user_agent,metadata,hash");
    const seqs = lines.slice(1).map((l) => Number(l.split(",")[0]));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.ok(lines.some((l) => l.includes(",client.updated,client,") && l.includes('"{""fields"":[""phone""]}"')), r.text);
    const none = await w.request("GET", `/api/clients/${T.globex}/audit/export?from=2020-01-01&to=2020-02-01`, { token: tok.agency });
    assert.equal(none.text.split("\r\n").filter(Boolean).length, 1, "the header alone");
    const bad = await w.request("GET", `/api/clients/${T.globex}/audit/export?to=soon`, { token: tok.agency });
    assert.equal(bad.status, 400);
    assert.equal(errorCode(bad), "invalid_range");
    const agency = await w.request("GET", `/api/agencies/${T.agency}/audit/export`, { token: tok.agency });
    assert.equal(agency.status, 200);
    assert.ok(agency.text.startsWith("seq,id,at,"));
  });
});
