// Tenant lifecycle under a real wrangler dev: quotas under parallel writes at the limit, the audit
// log's hash chain under concurrent writers, the breaks raw SQL leaves, the scheduled sealing, and
// the CSV export.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startWorker, testSecrets, errorCode } from "./harness.mjs";

let w;
const tok = {};
const T = {};

before(async () => {
  w = await startWorker({ vars: testSecrets() });
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
