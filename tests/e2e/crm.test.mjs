// The CRM under a real wrangler dev (workerd, local D1): the seeded pipeline and board, search
// with LIKE escapes and json_each in real D1, tags, notes and stage history, and the limits the
// database decides, hit in parallel.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startWorker, testSecrets, errorCode } from "./harness.mjs";

let w;
let admin;
let acme;

before(async () => {
  w = await startWorker({ vars: testSecrets() });
  admin = await w.login("admin@acme.test");
  acme = (await w.request("GET", "/api/me", { token: admin })).json.context.tenant;
});

after(async () => { await w?.stop(); });

const api = (method, path, json, token = admin) => w.request(method, `/api/clients/${acme}${path}`, { token, json });

describe("the seeded CRM", () => {
  test("acme's sales board: five stages in order, counts and sums per currency", async () => {
    const list = await api("GET", "/pipelines");
    assert.equal(list.status, 200, list.text);
    const sales = list.json.items.find((p) => p.name === "Sales");
    assert.deepEqual(sales.stages.map((s) => s.name), ["New lead", "Qualified", "Quote sent", "Negotiation", "Closed"]);
    const board = await api("GET", `/pipelines/${sales.id}/board?status=all`);
    assert.equal(board.status, 200, board.text);
    const cols = board.json.columns;
    assert.deepEqual(cols.map((c) => c.count), [1, 2, 2, 1, 2]);
    assert.deepEqual(cols[2].totals, [{ currency: "USD", value_minor: 9_635_000 }]);
    const open = await api("GET", `/pipelines/${sales.id}/board`);
    assert.equal(open.json.columns[4].count, 0, "the default board shows open deals only");
    const history = await api("GET", `/deals/${cols[3].deals[0].id}/history`);
    assert.equal(history.json.items.length, 4, "placed in New lead, then three moves");
  });

  test("contacts carry their tags; the tag filter and prefix search run in D1", async () => {
    const tags = (await api("GET", "/tags")).json.items;
    const vip = tags.find((t) => t.name === "VIP");
    const r = await api("GET", `/contacts?tag=${vip.id}`);
    assert.deepEqual(r.json.items.map((c) => c.name).sort(), ["Morgan Reyes", "Sofia Marino"]);
    assert.ok(r.json.items.every((c) => c.tags.some((t) => t.id === vip.id)));
    const q = await api("GET", `/contacts?q=${encodeURIComponent("PRIYA@")}`);
    assert.deepEqual(q.json.items.map((c) => c.name), ["Priya Nair"]);
  });
});

describe("writes under workerd", () => {
  test("LIKE wildcards in q are literal in D1 too", async () => {
    for (const name of ["50%_off Ltd", "50 percent"]) assert.equal((await api("POST", "/contacts", { name })).status, 201);
    const r = await api("GET", `/contacts?q=${encodeURIComponent("50%_")}`);
    assert.deepEqual(r.json.items.map((c) => c.name), ["50%_off Ltd"]);
  });

  test("a deal moves between stages, with its history and audit row in one batch", async () => {
    const p = await api("POST", "/pipelines", { name: "Moves", stages: ["A", "B", "C"] });
    assert.equal(p.status, 201, p.text);
    const [a, b, c] = p.json.stages.map((s) => s.id);
    const d = await api("POST", "/deals", { title: "Mover", pipeline_id: p.json.id, value_minor: 5000, currency: "gbp" });
    assert.equal(d.status, 201, d.text);
    for (const stage of [b, c, c]) assert.equal((await api("PATCH", `/deals/${d.json.id}`, { stage_id: stage })).status, 200);
    const h = await api("GET", `/deals/${d.json.id}/history`);
    assert.deepEqual(h.json.items.map((m) => [m.from_stage_id, m.to_stage_id]), [[null, a], [a, b], [b, c]]);
    const moved = w.d1(`SELECT count(*) AS n FROM audit_log WHERE target_id = '${d.json.id}' AND action = 'deal.moved'`)[0].n;
    assert.equal(moved, 2, "a no-op move is an update, not a move");
    // Deleting a stage with move_to moves its deal and records it.
    const del = await api("DELETE", `/pipelines/${p.json.id}/stages/${c}?move_to=${a}`);
    assert.equal(del.status, 200, del.text);
    const after = await api("GET", `/deals/${d.json.id}/history`);
    assert.deepEqual(after.json.items.at(-1).to_stage_id, a);
    assert.equal((await api("GET", `/deals/${d.json.id}`)).json.stage_id, a);
  });

  test("reordering stages is one statement over json_each", async () => {
    const p = await api("POST", "/pipelines", { name: "Order", stages: ["One", "Two", "Three"] });
    const ids = p.json.stages.map((s) => s.id);
    const r = await api("PUT", `/pipelines/${p.json.id}/stages`, { stage_ids: [ids[2], ids[0], ids[1]] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.stages.map((s) => s.name), ["Three", "One", "Two"]);
    const bad = await api("PUT", `/pipelines/${p.json.id}/stages`, { stage_ids: [ids[0], ids[1], ids[1]] });
    assert.equal(bad.status, 422);
    assert.equal(errorCode(bad), "invalid_order");
  });

  test("a foreign pipeline, stage or contact is refused inside the insert", async () => {
    const globex = await w.login("admin@globex.test");
    const gid = (await w.request("GET", "/api/me", { token: globex })).json.context.tenant;
    const gp = await w.request("POST", `/api/clients/${gid}/pipelines`, { token: globex, json: { name: "G", stages: ["G1"] } });
    const before = w.d1("SELECT count(*) AS n FROM deals")[0].n;
    const r = await api("POST", "/deals", { title: "Cross", pipeline_id: gp.json.id, stage_id: gp.json.stages[0].id });
    assert.equal(r.status, 422, r.text);
    assert.equal(errorCode(r), "unknown_stage");
    assert.equal(w.d1("SELECT count(*) AS n FROM deals")[0].n, before);
  });
});

describe("limits decided by the database, hit in parallel", () => {
  test("twelve racing creates of one tag name: exactly one wins", async () => {
    const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => api("POST", "/tags", { name: i % 2 ? "Hot Lead" : "hot lead" })));
    assert.equal(rs.filter((r) => r.status === 201).length, 1, rs.map((r) => r.status).join(","));
    assert.ok(rs.every((r) => r.status === 201 || (r.status === 409 && errorCode(r) === "tag_exists")));
    assert.equal(w.d1(`SELECT count(*) AS n FROM tags WHERE client_id = '${acme}' AND name = 'Hot Lead' COLLATE NOCASE`)[0].n, 1);
  });

  test("forty racing stage appends stop at thirty stages", async () => {
    const p = await api("POST", "/pipelines", { name: "Crowded", stages: ["Start"] });
    const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => api("POST", `/pipelines/${p.json.id}/stages`, { name: `S${i}` })));
    const created = rs.filter((r) => r.status === 201).length;
    assert.equal(created, 29, rs.map((r) => r.status).join(","));
    assert.ok(rs.every((r) => r.status === 201 || (r.status === 422 && errorCode(r) === "too_many_stages")));
    const positions = w.d1(`SELECT position FROM pipeline_stages WHERE pipeline_id = '${p.json.id}' ORDER BY position`).map((r) => r.position);
    assert.equal(positions.length, 30);
    assert.equal(new Set(positions).size, 30, "no two appends took one position");
  });

  test("ten racing attaches of one tag make one link and one audit row", async () => {
    const c = await api("POST", "/contacts", { name: "Racer" });
    const t = await api("POST", "/tags", { name: "Racing" });
    const rs = await Promise.all(Array.from({ length: 10 }, () => api("PUT", `/contacts/${c.json.id}/tags/${t.json.id}`)));
    assert.ok(rs.every((r) => r.status === 204), rs.map((r) => r.status).join(","));
    assert.equal(w.d1(`SELECT count(*) AS n FROM contact_tags WHERE contact_id = '${c.json.id}'`)[0].n, 1);
    assert.equal(w.d1(`SELECT count(*) AS n FROM audit_log WHERE target_id = '${c.json.id}' AND action = 'contact.tagged'`)[0].n, 1);
  });
});
