// Moving an agency between data shards under a real wrangler dev (tenants::moves): the demo agency
// and Acme go from SHARD_0 to SHARD_1 (where Globex already is) and back, on real local D1, with
// more rows than a chunk. Each move's rows are counted and checksummed on both shards by the
// Worker; this suite counts them again with wrangler, and reads them back through the API.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startWorker, testSecrets, errorCode, SHARDS } from "./harness.mjs";

const SETTLE_MS = 1000;
const BULK = 450; // contacts: more than two of the move's 200-row chunks
let w;
const tok = {};
const ids = {};

before(async () => {
  w = await startWorker({ vars: { ...testSecrets(), SHARD_MOVE_SETTLE_MS: String(SETTLE_MS), WEBHOOK_TEST_RECEIVERS: "http://127.0.0.1:9", WEBHOOK_RETRY_SCHEDULE: "3600", WEBHOOK_TIMEOUT_MS: "1000" } });
  tok.platform = await w.login("admin@gatehouse.test");
  tok.acme = await w.login("admin@acme.test");
  tok.globex = await w.login("admin@globex.test");
  const me = (await w.request("GET", "/api/me", { token: (tok.agency = await w.login("agency.admin@northwind.test")) })).json;
  ids.agency = me.context.tenant;
  const clients = (await w.request("GET", "/api/clients", { token: tok.agency })).json.items;
  ids.acme = clients.find((c) => c.slug === "acme").id;
  ids.globex = clients.find((c) => c.slug === "globex").id;
});

after(async () => {
  await w?.stop();
});

/** Rows naming the tenants, per table, on one D1 binding: one wrangler call. */
function counts(binding, tenants) {
  const list = tenants.map((t) => `'${t}'`).join(", ");
  const tables = [
    ["contacts", "client_id"], ["events", "client_id"], ["webhook_endpoints", "client_id"], ["webhook_deliveries", "client_id"],
    ["client_settings", "client_id"], ["files", "tenant_id"], ["audit_log", "tenant_id"], ["deals", "client_id"],
    ["pipelines", "client_id"], ["pipeline_stages", "client_id"], ["staff_hours", "client_id"], ["appointments", "client_id"],
  ];
  // One row of scalar subqueries (D1 caps the terms of a compound SELECT).
  const sql = `SELECT ${tables.map(([t, c]) => `(SELECT count(*) FROM ${t} WHERE ${c} IN (${list})) AS ${t}`).join(", ")}`;
  return w.d1On(binding, sql)[0];
}

const shardOf = (id) => w.d1On("DB", `SELECT shard FROM clients WHERE id = '${id}' UNION ALL SELECT shard FROM agencies WHERE id = '${id}'`)[0].shard;

/** Steps the move until `phase` (or its end), waiting out the settling times. */
async function stepUntil(id, phase) {
  for (let i = 0; i < 100; i++) {
    const r = await w.request("POST", `/api/admin/shard-moves/${id}/step`, { token: tok.platform });
    assert.equal(r.status, 200, r.text);
    if (r.json.phase === phase || ["done", "cancelled", "failed"].includes(r.json.phase)) return r.json;
    if (["settling", "flipped"].includes(r.json.phase)) await new Promise((res) => setTimeout(res, 200));
  }
  assert.fail(`the move did not reach ${phase}`);
}

/** All of Acme's contacts through the API, page by page. */
async function contacts() {
  const out = [];
  let cursor = "";
  for (;;) {
    const r = await w.request("GET", `/api/clients/${ids.acme}/contacts?limit=100${cursor ? `&cursor=${cursor}` : ""}`, { token: tok.acme });
    assert.equal(r.status, 200, r.text);
    out.push(...r.json.items);
    if (!r.json.next_cursor) return out;
    cursor = r.json.next_cursor;
  }
}

describe("with one data shard", { skip: SHARDS >= 2 && "this run has two shards" }, () => {
  test("a move is refused: 409 not_sharded", async () => {
    const r = await w.request("POST", "/api/admin/shard-moves", { token: tok.platform, json: { agency_id: ids.agency, to_shard: 1 } });
    assert.equal(r.status, 409, r.text);
    assert.equal(errorCode(r), "not_sharded");
  });
});

describe("an agency moves between two shards and back", { skip: SHARDS < 2 && "this run has one shard" }, () => {
  const moving = () => [ids.agency, ids.acme];
  let before0, globexBefore, listed, settings, fileId, webhooks;

  before(async () => {
    // Bulk contacts on Acme's shard, and rows of the kinds a move must carry with care: an
    // event and its delivery (renumbered), a sealed webhook secret, encrypted settings, a file.
    w.d1On("SHARD_0", `INSERT INTO contacts (id, client_id, name, email, source, created_at, updated_at)
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${BULK})
      SELECT printf('con_bulk%020d', i), '${ids.acme}', 'Bulk ' || i, 'bulk' || i || '@example.com', 'import', 1800000000000 + i, 1800000000000 + i FROM n`);
    const as = (method, path, json, extra = {}) => w.request(method, `/api/clients/${ids.acme}${path}`, { token: tok.acme, json, ...extra });
    assert.equal((await as("POST", "/webhooks", { url: "http://127.0.0.1:9/moves", event_types: ["contact.created"] })).status, 201);
    assert.equal((await as("POST", "/contacts", { name: "Announced" })).status, 201);
    assert.equal((await as("PUT", "/settings", { openai: { api_key: "sk-moving-0000000000001234" } })).status, 200);
    const up = await w.request("POST", `/api/clients/${ids.acme}/files?name=moving.txt`, { token: tok.acme, body: Buffer.from("moving bytes"), headers: { "content-type": "text/plain" } });
    assert.equal(up.status, 201, up.text);
    fileId = up.json.id;
    // The delivery is made by the outbox drain after the request; wait until it is there.
    for (let i = 0; i < 50 && counts("SHARD_0", [ids.acme]).webhook_deliveries === 0; i++) await new Promise((r) => setTimeout(r, 200));
    before0 = counts("SHARD_0", moving());
    globexBefore = counts("SHARD_1", [ids.globex]);
    assert.ok(before0.contacts > BULK && before0.webhook_deliveries > 0 && before0.client_settings > 0 && before0.files > 0, JSON.stringify(before0));
    listed = await contacts();
    settings = (await as("GET", "/settings")).json;
    webhooks = (await as("GET", "/webhooks")).json;
  });

  let move;
  test("a move starts: 201 for one of two starts sent at once, the agency fenced, writes 503 tenant_moving, reads answer as before", async () => {
    const post = () => w.request("POST", "/api/admin/shard-moves", { token: tok.platform, json: { agency_id: ids.agency, to_shard: 1 } });
    const both = await Promise.all([post(), post()]);
    assert.deepEqual(both.map((r) => r.status).sort(), [201, 409], both.map((r) => r.text).join("\n"));
    const r = both.find((x) => x.status === 201);
    assert.equal(errorCode(both.find((x) => x.status === 409)), "move_under_way");
    move = r.json;
    assert.equal(move.phase, "settling");
    assert.deepEqual([shardOf(ids.agency), shardOf(ids.acme), shardOf(ids.globex)], [-1, -1, 1]);
    const write = await w.request("POST", `/api/clients/${ids.acme}/contacts`, { token: tok.acme, json: { name: "During" } });
    assert.equal(write.status, 503, write.text);
    assert.equal(errorCode(write), "tenant_moving");
    assert.equal(write.headers["retry-after"], "30");
    assert.deepEqual(await contacts(), listed);
    const elsewhere = await w.request("POST", `/api/clients/${ids.globex}/contacts`, { token: tok.globex, json: { name: "Not moving" } });
    assert.equal(elsewhere.status, 201, elsewhere.text);
  });

  test("the steps copy and verify every table on real D1, then flip: the rows answer from SHARD_1", async () => {
    const m = await stepUntil(move.id, "flipped");
    assert.equal(m.phase, "flipped", JSON.stringify(m));
    assert.equal(m.rounds, 1);
    for (const [table, v] of Object.entries(m.verified)) assert.equal(v.matches, true, `${table}: ${JSON.stringify(v)}`);
    assert.equal(m.verified.contacts.rows, before0.contacts);
    assert.deepEqual([shardOf(ids.agency), shardOf(ids.acme)], [1, 1]);
    assert.deepEqual(counts("SHARD_1", moving()), before0, "every row on the new shard");
    assert.deepEqual(await contacts(), listed);
    const as = (path) => w.request("GET", `/api/clients/${ids.acme}${path}`, { token: tok.acme });
    assert.deepEqual((await as("/settings")).json, settings, "sealed settings decrypt where they landed");
    assert.deepEqual((await as("/webhooks")).json, webhooks);
    const file = await as(`/files/${fileId}`);
    assert.equal(file.status, 200, file.text);
    assert.equal(file.text, "moving bytes");
    const write = await w.request("POST", `/api/clients/${ids.acme}/contacts`, { token: tok.acme, json: { name: "After" } });
    assert.equal(write.status, 201, write.text);
  });

  test("the scheduled run cleans the old shard after the second settling time", async () => {
    await new Promise((r) => setTimeout(r, SETTLE_MS + 100));
    for (let i = 0; i < 20; i++) {
      const s = await w.request("POST", "/__scheduled?cron=*%2F15+*+*+*+*");
      assert.equal(s.status, 200, s.text);
      const m = (await w.request("GET", `/api/admin/shard-moves/${move.id}`, { token: tok.platform })).json;
      if (m.phase === "done") break;
    }
    const m = (await w.request("GET", `/api/admin/shard-moves/${move.id}`, { token: tok.platform })).json;
    assert.equal(m.phase, "done", JSON.stringify(m));
    const left = counts("SHARD_0", moving());
    assert.ok(Object.values(left).every((n) => n === 0), JSON.stringify(left));
    const globex = counts("SHARD_1", [ids.globex]);
    assert.equal(globex.contacts, globexBefore.contacts + 1, "Globex's rows on SHARD_1 are its own, untouched");
    assert.equal(globex.deals, globexBefore.deals);
    assert.deepEqual(w.d1On("SHARD_0", "SELECT count(*) AS n FROM fenced_tenants")[0].n + w.d1On("SHARD_1", "SELECT count(*) AS n FROM fenced_tenants")[0].n, 0);
  });

  test("and back to SHARD_0: every row returns, the list is the same with the write made on SHARD_1", async () => {
    const r = await w.request("POST", "/api/admin/shard-moves", { token: tok.platform, json: { agency_id: ids.agency, to_shard: 0 } });
    assert.equal(r.status, 201, r.text);
    const on1 = counts("SHARD_1", moving());
    const m = await stepUntil(r.json.id, "done");
    assert.equal(m.phase, "done", JSON.stringify(m));
    assert.deepEqual([shardOf(ids.agency), shardOf(ids.acme)], [0, 0]);
    assert.deepEqual(counts("SHARD_0", moving()), on1);
    const names = (await contacts()).map((c) => c.name);
    assert.equal(names.length, listed.length + 1);
    assert.ok(names.includes("After"));
    const audit = w.d1On("SHARD_0", "SELECT action FROM audit_log WHERE tenant_id = 'platform' AND action LIKE 'shard_move.%' ORDER BY seq");
    assert.deepEqual(audit.map((a) => a.action), ["shard_move.started", "shard_move.flipped", "shard_move.finished", "shard_move.started", "shard_move.flipped", "shard_move.finished"]);
  });
});
