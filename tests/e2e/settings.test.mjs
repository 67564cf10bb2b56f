// Encrypted settings under a real wrangler dev: row swaps by raw SQL, rotation across restarts
// with new keys, and a scan for the plaintext everywhere it could leak.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { spawn } from "node:child_process";
import { startWorker, testSecrets, b64, freePorts, request, ROOT } from "./harness.mjs";

const secrets = testSecrets();
const OPENAI = "sk-proj-E2E-PLAINTEXT-d41d8cd98f00";
const TWILIO = "twilio-E2E-PLAINTEXT-auth-token-42";
let w;
let ids;

const field = (v, provider, name) =>
  v.providers.find((p) => p.provider === provider).fields.find((f) => f.field === name);

before(async () => {
  w = await startWorker({ vars: secrets });
  const t = await w.login("agency.admin@northwind.test");
  const clients = (await w.request("GET", "/api/clients", { token: t })).json.items;
  ids = Object.fromEntries(clients.map((c) => [c.slug, c.id]));
});
after(async () => { await w?.stop(); });

describe("settings under wrangler dev", () => {
  test("a value set through the API reads back masked, with who and when", async () => {
    const t = await w.login("admin@acme.test");
    const r = await w.request("PUT", `/api/clients/${ids.acme}/settings`, { token: t, json: { openai: { api_key: OPENAI }, twilio: { auth_token: TWILIO, account_sid: "AC-e2e" } } });
    assert.equal(r.status, 200, r.text);
    const v = (await w.request("GET", `/api/clients/${ids.acme}/settings`, { token: t })).json;
    assert.equal(field(v, "openai", "api_key").value, "••••" + OPENAI.slice(-4));
    assert.equal(field(v, "openai", "api_key").key_id, "k1");
    assert.equal(field(v, "twilio", "account_sid").value, "AC-e2e");
    const stored = w.d1(`SELECT ciphertext FROM client_settings WHERE client_id = '${ids.acme}' AND provider = 'openai'`);
    assert.match(stored[0].ciphertext, /^v1\.k1\.[A-Za-z0-9_-]+$/);
    assert.ok(!stored[0].ciphertext.includes("PLAINTEXT"));
  });

  test("copying client A's ciphertext into client B's row by raw SQL never yields A's secret", async () => {
    const g = await w.login("admin@globex.test");
    assert.equal((await w.request("PUT", `/api/clients/${ids.globex}/settings`, { token: g, json: { openai: { api_key: "sk-globex-own-0000000000" } } })).status, 200);
    // Copied by hand: the two clients may be on different shards.
    const [{ ciphertext }] = w.d1(`SELECT ciphertext FROM client_settings WHERE client_id = '${ids.acme}' AND provider = 'openai' AND field = 'api_key'`);
    w.d1(`UPDATE client_settings SET ciphertext = '${ciphertext}' WHERE client_id = '${ids.globex}' AND provider = 'openai' AND field = 'api_key'`);
    w.d1(`INSERT INTO client_settings SELECT client_id, 'google_maps', 'api_key', ciphertext, key_id, updated_by, updated_at FROM client_settings WHERE client_id = '${ids.acme}' AND provider = 'openai' AND field = 'api_key'`);
    w.d1(`INSERT INTO client_settings SELECT client_id, 'openai', 'organization', ciphertext, key_id, updated_by, updated_at FROM client_settings WHERE client_id = '${ids.acme}' AND provider = 'openai' AND field = 'api_key'`);
    const gv = await w.request("GET", `/api/clients/${ids.globex}/settings`, { token: g });
    assert.equal(gv.status, 200);
    assert.equal(field(gv.json, "openai", "api_key").error, "undecryptable");
    assert.equal(field(gv.json, "openai", "api_key").value, undefined);
    const a = await w.login("admin@acme.test");
    const av = (await w.request("GET", `/api/clients/${ids.acme}/settings`, { token: a })).json;
    assert.equal(field(av, "google_maps", "api_key").error, "undecryptable", "provider swap");
    assert.equal(field(av, "openai", "organization").error, "undecryptable", "field swap");
    for (const text of [gv.text, JSON.stringify(av)]) assert.ok(!text.includes("PLAINTEXT"));
    // Clean up the swapped rows for the rotation test.
    w.d1(`DELETE FROM client_settings WHERE client_id = '${ids.acme}' AND (provider = 'google_maps' OR field = 'organization')`);
    w.d1(`DELETE FROM client_settings WHERE client_id = '${ids.globex}'`);
  });

  test("the plaintext appears in no response, audit row or log line", async () => {
    const a = await w.login("admin@acme.test");
    const audit = await w.request("GET", `/api/clients/${ids.acme}/audit?limit=100`, { token: a });
    assert.ok(audit.text.includes("settings.updated"));
    const rows = JSON.stringify(w.d1("SELECT * FROM audit_log"));
    const logs = w.logs.join("");
    for (const [place, text] of [["audit API", audit.text], ["audit table", rows], ["worker logs", logs]]) {
      assert.ok(!text.includes(OPENAI) && !text.includes(TWILIO) && !text.includes("PLAINTEXT"), `plaintext in ${place}`);
    }
  });

  test("rotation: write under k1, make k2 current, run the job, retire k1, read everything back", async () => {
    const k2 = b64(crypto.randomBytes(32));
    await w.stop({ keep: true });
    w = await startWorker({ persist: w.dir, vars: { ...secrets, ENCRYPTION_KEY: k2, ENCRYPTION_KEY_ID: "k2", RETIRED_ENCRYPTION_KEYS: `k1:${secrets.ENCRYPTION_KEY}` } });
    const a = await w.login("admin@acme.test");
    let v = (await w.request("GET", `/api/clients/${ids.acme}/settings`, { token: a })).json;
    assert.equal(field(v, "openai", "api_key").key_id, "k1", "old rows still open under the retired key");
    // New writes use the current key.
    assert.equal((await w.request("PUT", `/api/clients/${ids.acme}/settings`, { token: a, json: { reachinbox: { api_key: "ri-key-written-under-k2" } } })).status, 200);
    v = (await w.request("GET", `/api/clients/${ids.acme}/settings`, { token: a })).json;
    assert.equal(field(v, "reachinbox", "api_key").key_id, "k2");
    const p = await w.login("admin@gatehouse.test");
    const r = await w.request("POST", "/api/admin/settings/rotate", { token: p });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.remaining, 0);
    assert.ok(r.json.rotated >= 3, `rotated ${r.json.rotated}`);
    assert.equal(w.d1("SELECT count(*) AS n FROM client_settings WHERE key_id <> 'k2'")[0].n, 0);
    await w.stop({ keep: true });
    w = await startWorker({ persist: w.dir, vars: { ...secrets, ENCRYPTION_KEY: k2, ENCRYPTION_KEY_ID: "k2" } });
    const a2 = await w.login("admin@acme.test");
    v = (await w.request("GET", `/api/clients/${ids.acme}/settings`, { token: a2 })).json;
    assert.equal(field(v, "openai", "api_key").value, "••••" + OPENAI.slice(-4));
    assert.equal(field(v, "twilio", "auth_token").value, "••••" + TWILIO.slice(-4));
    assert.equal(field(v, "twilio", "account_sid").value, "AC-e2e");
    assert.equal(field(v, "reachinbox", "api_key").value, "••••r-k2");
  });

  test("a short ENCRYPTION_KEY is refused at start with a clear error", async () => {
    const bad = await startWorkerExpectingFailure({ ...secrets, ENCRYPTION_KEY: b64(crypto.randomBytes(16)) });
    assert.equal(bad.status, 503);
    assert.equal(bad.json.error.code, "service_unavailable");
    assert.match(bad.logs, /ENCRYPTION_KEY is invalid: must decode to exactly 32 bytes/);
  });
});

/** Starts a Worker whose /healthz will not be 200; returns the first answer and the logs. */
async function startWorkerExpectingFailure(vars) {
  const [port, inspector] = await freePorts(2);
  const args = ["dev", "--port", String(port), "--inspector-port", String(inspector), "--ip", "127.0.0.1", "--persist-to", w.dir, "--show-interactive-dev-session=false"];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = spawn(`${ROOT}/node_modules/.bin/wrangler`, args, { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" } });
  const logs = [];
  child.stdout.on("data", (d) => logs.push(String(d)));
  child.stderr.on("data", (d) => logs.push(String(d)));
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const r = await request("GET", "/healthz", { port });
        await new Promise((res) => setTimeout(res, 500)); // let the log line flush
        return { ...r, logs: logs.join("") };
      } catch {}
      if (Date.now() > deadline) throw new Error("worker never answered:\n" + logs.join(""));
      await new Promise((res) => setTimeout(res, 300));
    }
  } finally {
    child.kill("SIGTERM");
  }
}
