// Tenancy under a real wrangler dev: the isolation matrix, JWT attacks, and hostile input.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startWorker, testSecrets, forgeJwt, errorCode, rawRequest, totp, SHARDS } from "./harness.mjs";
import { startFakeDoh } from "./fake-doh.mjs";

const secrets = testSecrets();
let w, doh;
// A fake mail API on loopback: records each JSON POST with its Authorization header.
const mails = [];
let mailServer;
const tokens = {};
const T = {}; // tenant ids
const F = {}; // CRM fixtures by client id
const TPL = {}; // a template per agency id
const ADM = {}; // an unproved portal domain claim per agency id

const ROLE_USERS = {
  platform_admin: "admin@gatehouse.test",
  agency_admin: "agency.admin@northwind.test",
  agency_user: "agency.user@northwind.test",
  client_admin: "admin@acme.test",
  client_user: "user@acme.test",
  client_viewer: "viewer@acme.test",
};

before(async () => {
  // Webhook fixtures point at a closed port on loopback (the test receiver exception); a failed
  // first attempt then waits an hour, so every fixture delivery stays pending through the matrix.
  mailServer = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      mails.push({ auth: req.headers.authorization, ...JSON.parse(body) });
      res.writeHead(202).end("queued");
    });
  });
  await new Promise((r) => mailServer.listen(0, "127.0.0.1", r));
  const mailUrl = `http://127.0.0.1:${mailServer.address().port}/send`;
  doh = await startFakeDoh();
  w = await startWorker({ vars: { ...secrets, DOH_RESOLVER_URL: doh.url, WEBHOOK_TEST_RECEIVERS: "http://127.0.0.1:9", WEBHOOK_RETRY_SCHEDULE: "3600", WEBHOOK_TIMEOUT_MS: "1000", MAIL_API_URL: mailUrl, MAIL_API_KEY: "e2e-mail-key" } });
  for (const [role, email] of Object.entries(ROLE_USERS)) tokens[role] = await w.login(email);
  const me = (await w.request("GET", "/api/me", { token: tokens.agency_admin })).json;
  T.agency = me.context.tenant;
  const clients = (await w.request("GET", "/api/clients", { token: tokens.agency_admin })).json.items;
  T.acme = clients.find((c) => c.slug === "acme").id;
  T.globex = clients.find((c) => c.slug === "globex").id;
  // A second agency with its own client: the "other agency" column of the matrix.
  const agency = await w.request("POST", "/api/agencies", { token: tokens.platform_admin, json: { name: "Contoso", slug: "contoso" } });
  assert.equal(agency.status, 201, agency.text);
  T.otherAgency = agency.json.id;
  const initech = await w.request("POST", `/api/clients?agency_id=${T.otherAgency}`, { token: tokens.platform_admin, json: { name: "Initech", slug: "initech" } });
  assert.equal(initech.status, 201, initech.text);
  T.initech = initech.json.id;
  // A template in each agency: the agency endpoints' item paths.
  for (const a of [T.agency, T.otherAgency]) {
    const tpl = await w.request("POST", `/api/agencies/${a}/templates`, { token: tokens.platform_admin, json: { name: "Matrix", spec: { pipelines: [{ name: "Matrix", stages: ["One"] }] } } });
    assert.equal(tpl.status, 201, tpl.text);
    TPL[a] = tpl.json.id;
    // And a portal domain claim each, never proved (the fake resolver has no record for it).
    const claim = await w.request("POST", `/api/agencies/${a}/domains`, { token: tokens.platform_admin, json: { domain: `portal.matrix-${a.slice(-6)}.example` } });
    assert.equal(claim.status, 201, claim.text);
    ADM[a] = claim.json.id;
  }
  // CRM fixtures in every client, made by the platform admin: the matrix's item paths.
  for (const id of [T.acme, T.globex, T.initech]) {
    const as = (method, path, json) => w.request(method, `/api/clients/${id}${path}`, { token: tokens.platform_admin, json });
    const contact = await as("POST", "/contacts", { name: "Matrix Contact", email: "matrix@example.com" });
    const tag = await as("POST", "/tags", { name: "Matrix" });
    const pipeline = await as("POST", "/pipelines", { name: "Matrix", stages: ["One", "Two"] });
    const ordered = await as("POST", "/pipelines", { name: "Matrix order", stages: ["A", "B"] });
    const deal = await as("POST", "/deals", { title: "Matrix deal", pipeline_id: pipeline.json.id, contact_id: contact.json.id });
    const service = await as("POST", "/services", { name: "Matrix service", duration_min: 60 });
    const hours = [1, 2, 3, 4, 5].map((weekday) => ({ weekday, start: "09:00", end: "17:00" }));
    const staff = await as("POST", "/staff", { name: "Matrix staff", service_ids: [service.json.id], hours });
    const appointment = await as("POST", "/appointments", { service_id: service.json.id, staff_id: staff.json.id, starts_at: "2027-08-02T14:00:00Z" });
    const webhook = await as("POST", "/webhooks", { url: "http://127.0.0.1:9/matrix", event_types: ["contact.deleted"] });
    const doomed = await as("POST", "/contacts", { name: "Matrix doomed" });
    for (const r of [contact, tag, pipeline, ordered, deal, service, staff, appointment, webhook, doomed]) assert.equal(r.status, 201, r.text);
    assert.equal((await as("DELETE", `/contacts/${doomed.json.id}`)).status, 204);
    let delivery;
    for (let i = 0; i < 100 && !delivery; i++) {
      delivery = (await as("GET", `/webhooks/${webhook.json.id}/deliveries`)).json.items[0];
      if (!delivery) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(delivery, "the fixture's contact.deleted delivery exists");
    F[id] = {
      webhook: webhook.json.id, delivery: delivery.id,
      contact: contact.json.id, tag: tag.json.id, pipeline: pipeline.json.id, deal: deal.json.id,
      stage: pipeline.json.stages[0].id, ordered: ordered.json.id, order: ordered.json.stages.map((s) => s.id).reverse(),
      service: service.json.id, staff: staff.json.id, appointment: appointment.json.id,
    };
  }
});

after(async () => {
  await w?.stop();
  await doh?.stop();
  await new Promise((r) => (mailServer ? mailServer.close(r) : r()));
});

// Who may do what, from SPEC.md's roles. Reach: platform reaches all; agency roles reach their
// agency and its clients; client roles reach their own client only.
const reachesClient = (role, c) =>
  role === "platform_admin" || (role.startsWith("agency_") ? c !== "initech" : c === "acme");
const reachesAgency = (role, a) => role === "platform_admin" || (role.startsWith("agency_") && a === "agency");

const ALL = Object.keys(ROLE_USERS);
const ADMINS = ["platform_admin", "agency_admin", "client_admin"];
const WRITERS = ALL.filter((r) => r !== "client_viewer");
const CLIENT_ENDPOINTS = [
  { name: "GET client", method: "GET", path: (id) => `/api/clients/${id}`, allowed: ALL, ok: 200 },
  { name: "PUT client", method: "PUT", path: (id) => `/api/clients/${id}`, json: { tagline_ignored: undefined, name: "Renamed Co" }, allowed: ADMINS, ok: 200 },
  { name: "GET domains", method: "GET", path: (id) => `/api/clients/${id}/domains`, allowed: ADMINS, ok: 200 },
  { name: "POST domain check", method: "POST", path: (id) => `/api/clients/${id}/domains/check`, json: { origin: "https://example.com" }, allowed: ADMINS, ok: 200 },
  { name: "GET contacts", method: "GET", path: (id) => `/api/clients/${id}/contacts`, allowed: ALL, ok: 200 },
  { name: "POST contact", method: "POST", path: (id) => `/api/clients/${id}/contacts`, json: { name: "Matrix Lead", email: "lead@example.com" }, allowed: ALL.filter((r) => r !== "client_viewer"), ok: 201 },
  { name: "GET usage", method: "GET", path: (id) => `/api/clients/${id}/usage`, allowed: ALL, ok: 200 },
  { name: "GET preferences", method: "GET", path: (id) => `/api/clients/${id}/preferences`, allowed: ALL, ok: 200 },
  { name: "PATCH preferences", method: "PATCH", path: (id) => `/api/clients/${id}/preferences`, json: { date_format: "DD/MM/YYYY" }, allowed: ADMINS, ok: 200 },
  // Restoring a client that is not deleted: reach and permission are checked first, then 409.
  { name: "POST restore", method: "POST", path: (id) => `/api/clients/${id}/restore`, allowed: ["platform_admin", "agency_admin"], ok: 409 },
  { name: "GET audit", method: "GET", path: (id) => `/api/clients/${id}/audit`, allowed: ADMINS, ok: 200 },
  { name: "GET audit CSV", method: "GET", path: (id) => `/api/clients/${id}/audit/export?from=2026-01-01`, allowed: ADMINS, ok: 200 },
  { name: "GET audit verify", method: "GET", path: (id) => `/api/clients/${id}/audit/verify`, allowed: ADMINS, ok: 200 },
  { name: "POST invitation", method: "POST", path: () => "/api/users", body: (id, role) => ({ email: `matrix-${role}-${id}@example.com`, tenant: id }), allowed: ADMINS, ok: 202 },
  // The CRM. Writers are every role but the viewer; deletes that would change the fixture are
  // covered natively, and here only where the answer is a refusal that changes nothing.
  { name: "PATCH contact", method: "PATCH", path: (id) => `/api/clients/${id}/contacts/${F[id].contact}`, json: { phone: "+1 555 0142" }, allowed: WRITERS, ok: 200 },
  { name: "GET contacts by q and tag", method: "GET", path: (id) => `/api/clients/${id}/contacts?q=matrix&tag=${F[id].tag}`, allowed: ALL, ok: 200 },
  { name: "PUT contact tag", method: "PUT", path: (id) => `/api/clients/${id}/contacts/${F[id].contact}/tags/${F[id].tag}`, allowed: WRITERS, ok: 204 },
  { name: "DELETE contact tag", method: "DELETE", path: (id) => `/api/clients/${id}/contacts/${F[id].contact}/tags/${F[id].tag}`, allowed: WRITERS, ok: 204 },
  { name: "GET contact notes", method: "GET", path: (id) => `/api/clients/${id}/contacts/${F[id].contact}/notes`, allowed: ALL, ok: 200 },
  { name: "POST contact note", method: "POST", path: (id) => `/api/clients/${id}/contacts/${F[id].contact}/notes`, json: { body: "matrix note" }, allowed: WRITERS, ok: 201 },
  { name: "GET tags", method: "GET", path: (id) => `/api/clients/${id}/tags`, allowed: ALL, ok: 200 },
  { name: "POST tag", method: "POST", path: (id) => `/api/clients/${id}/tags`, body: (id, role) => ({ name: `matrix ${role}` }), allowed: WRITERS, ok: 201 },
  { name: "PATCH tag", method: "PATCH", path: (id) => `/api/clients/${id}/tags/${F[id].tag}`, json: { color: "#123456" }, allowed: WRITERS, ok: 200 },
  { name: "GET pipelines", method: "GET", path: (id) => `/api/clients/${id}/pipelines`, allowed: ALL, ok: 200 },
  { name: "POST pipeline", method: "POST", path: (id) => `/api/clients/${id}/pipelines`, json: { name: "Matrix extra", stages: ["Only"] }, allowed: WRITERS, ok: 201 },
  { name: "GET pipeline", method: "GET", path: (id) => `/api/clients/${id}/pipelines/${F[id].pipeline}`, allowed: ALL, ok: 200 },
  { name: "PATCH pipeline", method: "PATCH", path: (id) => `/api/clients/${id}/pipelines/${F[id].pipeline}`, json: { name: "Matrix renamed" }, allowed: WRITERS, ok: 200 },
  { name: "DELETE pipeline with a deal", method: "DELETE", path: (id) => `/api/clients/${id}/pipelines/${F[id].pipeline}`, allowed: WRITERS, ok: 409 },
  { name: "GET board", method: "GET", path: (id) => `/api/clients/${id}/pipelines/${F[id].pipeline}/board`, allowed: ALL, ok: 200 },
  { name: "POST stage", method: "POST", path: (id) => `/api/clients/${id}/pipelines/${F[id].pipeline}/stages`, json: { name: "Added" }, allowed: WRITERS, ok: 201 },
  { name: "PATCH stage", method: "PATCH", path: (id) => `/api/clients/${id}/pipelines/${F[id].pipeline}/stages/${F[id].stage}`, json: { name: "First" }, allowed: WRITERS, ok: 200 },
  { name: "PUT stage order", method: "PUT", path: (id) => `/api/clients/${id}/pipelines/${F[id].ordered}/stages`, body: (id) => ({ stage_ids: F[id].order }), allowed: WRITERS, ok: 200 },
  { name: "DELETE stage with a deal", method: "DELETE", path: (id) => `/api/clients/${id}/pipelines/${F[id].pipeline}/stages/${F[id].stage}`, allowed: WRITERS, ok: 409 },
  { name: "GET deals", method: "GET", path: (id) => `/api/clients/${id}/deals?status=open`, allowed: ALL, ok: 200 },
  { name: "POST deal", method: "POST", path: (id) => `/api/clients/${id}/deals`, body: (id) => ({ title: "Matrix extra", pipeline_id: F[id].pipeline, value_minor: 100 }), allowed: WRITERS, ok: 201 },
  { name: "GET deal", method: "GET", path: (id) => `/api/clients/${id}/deals/${F[id].deal}`, allowed: ALL, ok: 200 },
  { name: "PATCH deal", method: "PATCH", path: (id) => `/api/clients/${id}/deals/${F[id].deal}`, json: { value_minor: 4200, currency: "EUR" }, allowed: WRITERS, ok: 200 },
  { name: "GET deal history", method: "GET", path: (id) => `/api/clients/${id}/deals/${F[id].deal}/history`, allowed: ALL, ok: 200 },
  { name: "GET deal notes", method: "GET", path: (id) => `/api/clients/${id}/deals/${F[id].deal}/notes`, allowed: ALL, ok: 200 },
  { name: "POST deal note", method: "POST", path: (id) => `/api/clients/${id}/deals/${F[id].deal}/notes`, json: { body: "matrix note" }, allowed: WRITERS, ok: 201 },
  // Booking. Each role books its own weekday, so every allowed cell finds its slot free.
  { name: "GET services", method: "GET", path: (id) => `/api/clients/${id}/services`, allowed: ALL, ok: 200 },
  { name: "POST service", method: "POST", path: (id) => `/api/clients/${id}/services`, json: { name: "Matrix extra", duration_min: 30 }, allowed: WRITERS, ok: 201 },
  { name: "GET service", method: "GET", path: (id) => `/api/clients/${id}/services/${F[id].service}`, allowed: ALL, ok: 200 },
  { name: "PATCH service", method: "PATCH", path: (id) => `/api/clients/${id}/services/${F[id].service}`, json: { price_minor: 4500 }, allowed: WRITERS, ok: 200 },
  { name: "DELETE booked service", method: "DELETE", path: (id) => `/api/clients/${id}/services/${F[id].service}`, allowed: WRITERS, ok: 409 },
  { name: "GET staff", method: "GET", path: (id) => `/api/clients/${id}/staff`, allowed: ALL, ok: 200 },
  { name: "POST staff", method: "POST", path: (id) => `/api/clients/${id}/staff`, json: { name: "Matrix extra" }, allowed: WRITERS, ok: 201 },
  { name: "GET staff member", method: "GET", path: (id) => `/api/clients/${id}/staff/${F[id].staff}`, allowed: ALL, ok: 200 },
  { name: "PATCH staff member", method: "PATCH", path: (id) => `/api/clients/${id}/staff/${F[id].staff}`, json: { name: "Matrix renamed" }, allowed: WRITERS, ok: 200 },
  { name: "PUT staff hours", method: "PUT", path: (id) => `/api/clients/${id}/staff/${F[id].staff}/hours`, json: { hours: [1, 2, 3, 4, 5].map((weekday) => ({ weekday, start: "09:00", end: "17:00" })) }, allowed: WRITERS, ok: 200 },
  { name: "GET time off", method: "GET", path: (id) => `/api/clients/${id}/staff/${F[id].staff}/time-off`, allowed: ALL, ok: 200 },
  { name: "POST time off", method: "POST", path: (id) => `/api/clients/${id}/staff/${F[id].staff}/time-off`, json: { start_date: "2027-12-24", end_date: "2027-12-26" }, allowed: WRITERS, ok: 201 },
  { name: "DELETE booked staff member", method: "DELETE", path: (id) => `/api/clients/${id}/staff/${F[id].staff}`, allowed: WRITERS, ok: 409 },
  { name: "GET availability", method: "GET", path: (id) => `/api/clients/${id}/availability?service=${F[id].service}&from=2027-08-02&to=2027-08-06`, allowed: ALL, ok: 200 },
  { name: "GET appointments", method: "GET", path: (id) => `/api/clients/${id}/appointments`, allowed: ALL, ok: 200 },
  { name: "POST appointment", method: "POST", path: (id) => `/api/clients/${id}/appointments`, body: (id, role) => ({ service_id: F[id].service, staff_id: F[id].staff, starts_at: `2027-07-${["05", "06", "07", "08", "09", "12"][ALL.indexOf(role)]}T14:00:00Z` }), allowed: WRITERS, ok: 201 },
  { name: "GET appointment", method: "GET", path: (id) => `/api/clients/${id}/appointments/${F[id].appointment}`, allowed: ALL, ok: 200 },
  { name: "PATCH appointment to an invalid status", method: "PATCH", path: (id) => `/api/clients/${id}/appointments/${F[id].appointment}`, json: { status: "scheduled" }, allowed: WRITERS, ok: 422 },
  // Events and webhooks: webhooks:manage, which only admins hold.
  { name: "GET events", method: "GET", path: (id) => `/api/clients/${id}/events`, allowed: ADMINS, ok: 200 },
  { name: "GET webhooks", method: "GET", path: (id) => `/api/clients/${id}/webhooks`, allowed: ADMINS, ok: 200 },
  { name: "POST webhook", method: "POST", path: (id) => `/api/clients/${id}/webhooks`, body: (id, role) => ({ url: `http://127.0.0.1:9/${role}`, event_types: ["domain.lapsed"] }), allowed: ADMINS, ok: 201 },
  { name: "GET webhook", method: "GET", path: (id) => `/api/clients/${id}/webhooks/${F[id].webhook}`, allowed: ADMINS, ok: 200 },
  { name: "PATCH webhook", method: "PATCH", path: (id) => `/api/clients/${id}/webhooks/${F[id].webhook}`, json: { description: "matrix" }, allowed: ADMINS, ok: 200 },
  { name: "POST webhook secret rotation", method: "POST", path: (id) => `/api/clients/${id}/webhooks/${F[id].webhook}/rotate-secret`, json: { overlap_secs: 60 }, allowed: ADMINS, ok: 200 },
  { name: "GET webhook deliveries", method: "GET", path: (id) => `/api/clients/${id}/webhooks/${F[id].webhook}/deliveries`, allowed: ADMINS, ok: 200 },
  { name: "GET webhook delivery", method: "GET", path: (id) => `/api/clients/${id}/webhooks/${F[id].webhook}/deliveries/${F[id].delivery}`, allowed: ADMINS, ok: 200 },
  { name: "POST replay of a pending delivery", method: "POST", path: (id) => `/api/clients/${id}/webhooks/${F[id].webhook}/deliveries/${F[id].delivery}/replay`, allowed: ADMINS, ok: 409 },
  { name: "POST bulk replay", method: "POST", path: (id) => `/api/clients/${id}/webhooks/${F[id].webhook}/replay`, allowed: ADMINS, ok: 202 },
  // API keys: api_keys:manage, which only admins hold.
  { name: "GET api keys", method: "GET", path: (id) => `/api/clients/${id}/api-keys`, allowed: ADMINS, ok: 200 },
  { name: "POST api key", method: "POST", path: (id) => `/api/clients/${id}/api-keys`, body: (id, role) => ({ name: `matrix ${role}`, permissions: ["contacts:read"] }), allowed: ADMINS, ok: 201 },
  { name: "GET invitations", method: "GET", path: (id) => `/api/clients/${id}/invitations`, allowed: ADMINS, ok: 200 },
  { name: "POST invitation", method: "POST", path: (id) => `/api/clients/${id}/invitations`, body: (id, role) => ({ email: `matrix-${role.replace("_", "-")}-${id.slice(-4)}@example.com`, role: "client_viewer" }), allowed: ADMINS, ok: 202 },
  { name: "GET exports", method: "GET", path: (id) => `/api/clients/${id}/exports`, allowed: ADMINS, ok: 200 },
  { name: "GET unknown export", method: "GET", path: (id) => `/api/clients/${id}/exports/exp_zzzzzzzzzzzzzzzzzzzzzzzz`, allowed: ADMINS, ok: 404 },
  { name: "POST link of an unknown export", method: "POST", path: (id) => `/api/clients/${id}/exports/exp_zzzzzzzzzzzzzzzzzzzzzzzz/link`, allowed: ADMINS, ok: 404 },
  { name: "POST resend of an unknown invitation", method: "POST", path: (id) => `/api/clients/${id}/invitations/inv_zzzzzzzzzzzzzzzzzzzzzzzz/resend`, allowed: ADMINS, ok: 404 },
  { name: "DELETE unknown api key", method: "DELETE", path: (id) => `/api/clients/${id}/api-keys/key_zzzzzzzzzzzzzzzzzzzzzzzz`, allowed: ADMINS, ok: 404 },
];
const AGENCY_ENDPOINTS = [
  { name: "GET agency invitations", method: "GET", path: (id) => `/api/agencies/${id}/invitations`, allowed: ["platform_admin", "agency_admin"], ok: 200 },
  { name: "GET agency api keys", method: "GET", path: (id) => `/api/agencies/${id}/api-keys`, allowed: ["platform_admin", "agency_admin"], ok: 200 },
  { name: "GET agency", method: "GET", path: (id) => `/api/agencies/${id}`, allowed: ["platform_admin", "agency_admin", "agency_user"], ok: 200 },
  { name: "PUT agency", method: "PUT", path: (id) => `/api/agencies/${id}`, json: { phone: "+1 555 0199" }, allowed: ["platform_admin", "agency_admin"], ok: 200 },
  { name: "GET agency audit", method: "GET", path: (id) => `/api/agencies/${id}/audit`, allowed: ["platform_admin", "agency_admin"], ok: 200 },
  { name: "GET agency audit CSV", method: "GET", path: (id) => `/api/agencies/${id}/audit/export`, allowed: ["platform_admin", "agency_admin"], ok: 200 },
  { name: "GET agency audit verify", method: "GET", path: (id) => `/api/agencies/${id}/audit/verify`, allowed: ["platform_admin", "agency_admin"], ok: 200 },
  { name: "GET templates", method: "GET", path: (id) => `/api/agencies/${id}/templates`, allowed: ["platform_admin", "agency_admin", "agency_user"], ok: 200 },
  { name: "POST template", method: "POST", path: (id) => `/api/agencies/${id}/templates`, json: { name: "Matrix new", spec: {} }, allowed: ["platform_admin", "agency_admin"], ok: 201 },
  { name: "GET template", method: "GET", path: (id) => `/api/agencies/${id}/templates/${TPL[id]}`, allowed: ["platform_admin", "agency_admin", "agency_user"], ok: 200 },
  { name: "POST template version", method: "POST", path: (id) => `/api/agencies/${id}/templates/${TPL[id]}/versions`, json: { spec: { pipelines: [{ name: "Matrix", stages: ["One", "Two"] }] } }, allowed: ["platform_admin", "agency_admin"], ok: 201 },
  { name: "POST template push", method: "POST", path: (id) => `/api/agencies/${id}/templates/${TPL[id]}/push`, json: {}, allowed: ["platform_admin", "agency_admin"], ok: 200 },
  { name: "GET agency portal domains", method: "GET", path: (id) => `/api/agencies/${id}/domains`, allowed: ["platform_admin", "agency_admin", "agency_user"], ok: 200 },
  { name: "POST agency portal domain", method: "POST", path: (id) => `/api/agencies/${id}/domains`, json: (role) => ({ domain: `${role.replace("_", "-")}.matrix-portal.example` }), allowed: ["platform_admin", "agency_admin"], ok: 201 },
  { name: "POST agency portal domain verify", method: "POST", path: (id) => `/api/agencies/${id}/domains/${ADM[id]}/verify`, allowed: ["platform_admin", "agency_admin"], ok: 200 },
  { name: "DELETE unknown agency portal domain", method: "DELETE", path: (id) => `/api/agencies/${id}/domains/adm_zzzzzzzzzzzzzzzzzzzzzzzz`, allowed: ["platform_admin", "agency_admin"], ok: 404 },
];

describe("isolation matrix: endpoint × role × {own, sibling, other agency}", () => {
  for (const ep of CLIENT_ENDPOINTS) {
    for (const role of ALL) {
      for (const tenant of ["acme", "globex", "initech"]) {
        const want = !reachesClient(role, tenant) ? 404 : ep.allowed.includes(role) ? ep.ok : 403;
        test(`${ep.name} as ${role} on ${tenant} → ${want}`, async () => {
          const json = ep.body ? ep.body(T[tenant], role) : ep.json && Object.fromEntries(Object.entries(ep.json).filter(([, v]) => v !== undefined));
          const r = await w.request(ep.method, ep.path(T[tenant]), { token: tokens[role], json });
          assert.equal(r.status, want, r.text);
          if (want >= 400) errorCode(r);
          if (want === 404) assert.doesNotMatch(r.text, /Initech|Globex|Acme/, "a 404 must not leak the tenant");
        });
      }
    }
  }
  for (const ep of AGENCY_ENDPOINTS) {
    for (const role of ALL) {
      for (const agency of ["agency", "otherAgency"]) {
        const want = !reachesAgency(role, agency) ? 404 : ep.allowed.includes(role) ? ep.ok : 403;
        test(`${ep.name} as ${role} on ${agency} → ${want}`, async () => {
          const json = typeof ep.json === "function" ? ep.json(role, agency) : ep.json;
          const r = await w.request(ep.method, ep.path(T[agency]), { token: tokens[role], json });
          assert.equal(r.status, want, r.text);
        });
      }
    }
  }
  for (const role of ALL) {
    const platform = role === "platform_admin";
    for (const path of ["/api/admin/tenants", "/api/admin/audit", "/api/admin/audit/export", "/api/admin/audit/verify"]) {
      test(`GET ${path} as ${role} → ${platform ? 200 : 403}`, async () => {
        const r = await w.request("GET", path, { token: tokens[role] });
        assert.equal(r.status, platform ? 200 : 403, r.text);
      });
    }
    // Moves between shards: platform admins only. An unknown move is 404; an unknown agency
    // is 409 with fewer than two shards, else 404 (nothing moves in this suite).
    const move = "mov_000000000000000000000000";
    for (const [method, path, json, ok] of [
      ["GET", "/api/admin/shard-moves", undefined, 200],
      ["POST", "/api/admin/shard-moves", { agency_id: "agy_000000000000000000000000", to_shard: 1 }, SHARDS >= 2 ? 404 : 409],
      ["GET", `/api/admin/shard-moves/${move}`, undefined, 404],
      ["POST", `/api/admin/shard-moves/${move}/step`, undefined, 404],
      ["POST", `/api/admin/shard-moves/${move}/cancel`, undefined, 404],
    ]) {
      test(`${method} ${path} as ${role} → ${platform ? ok : 403}`, async () => {
        const r = await w.request(method, path, { token: tokens[role], json });
        assert.equal(r.status, platform ? ok : 403, r.text);
      });
    }
    test(`POST /api/agencies as ${role} → ${platform ? 201 : 403}`, async () => {
      const r = await w.request("POST", "/api/agencies", { token: tokens[role], json: { name: "X", slug: `x-${role.replace("_", "-")}` } });
      assert.equal(r.status, platform ? 201 : 403, r.text);
    });
    test(`GET /api/clients as ${role} lists only reachable clients`, async () => {
      const r = await w.request("GET", "/api/clients?limit=100", { token: tokens[role] });
      assert.equal(r.status, 200, r.text);
      const slugs = r.json.items.map((c) => c.slug).sort();
      const want = ["acme", "globex", "initech"].filter((c) => reachesClient(role, c));
      assert.deepEqual(slugs.filter((s) => ["acme", "globex", "initech"].includes(s)), want);
    });
  }
  test("an agency admin's ?agency_id= for another agency lists nothing", async () => {
    const r = await w.request("GET", `/api/clients?agency_id=${T.otherAgency}`, { token: tokens.agency_admin });
    assert.equal(r.status, 200);
    assert.equal(r.json.items.length, 0);
  });
  test("another agency's template id is unknown through one's own agency, and cannot seed a client", async () => {
    const foreign = TPL[T.otherAgency];
    for (const [method, path, json] of [
      ["GET", `/api/agencies/${T.agency}/templates/${foreign}`],
      ["POST", `/api/agencies/${T.agency}/templates/${foreign}/versions`, { spec: {} }],
      ["POST", `/api/agencies/${T.agency}/templates/${foreign}/push`, {}],
    ]) {
      const r = await w.request(method, path, { token: tokens.agency_admin, json });
      assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
    }
    const r = await w.request("POST", "/api/clients", { token: tokens.agency_admin, json: { name: "Stolen", slug: "stolen-template", template_id: foreign } });
    assert.equal(r.status, 422, r.text);
    assert.equal(errorCode(r), "template_not_found");
  });
  test("a platform admin filters clients by ?agency_id=", async () => {
    const r = await w.request("GET", `/api/clients?agency_id=${T.otherAgency}`, { token: tokens.platform_admin });
    assert.deepEqual(r.json.items.map((c) => c.slug), ["initech"]);
  });
});

describe("agency portals under wrangler dev", () => {
  const northwind = () => `northwind.localhost:${w.port}`;
  test("the agency's slug host serves its console, and its sessions stay on that host", async () => {
    const page = await w.request("GET", "/console", { host: northwind() });
    assert.equal(page.status, 200);
    assert.match(page.text, new RegExp(`data-site="agency" data-tenant-id="${T.agency}"`));
    const token = await w.login("agency.admin@northwind.test", { host: northwind() });
    const clients = await w.request("GET", "/api/clients?limit=100", { host: northwind(), token });
    assert.deepEqual(clients.json.items.map((c) => c.slug).sort(), ["acme", "globex"]);
    for (const host of [w.host, `acme.localhost:${w.port}`, `contoso.localhost:${w.port}`]) {
      const r = await w.request("GET", "/api/me", { host, token });
      assert.equal(r.status, 403, `${host}: ${r.text}`);
    }
    const staff = await w.login("admin@gatehouse.test", { host: northwind() });
    for (const path of [`/api/clients/${T.initech}`, `/api/agencies/${T.otherAgency}`, "/api/admin/tenants"]) {
      const r = await w.request("GET", path, { host: northwind(), token: staff });
      assert.equal(r.status, 404, `${path}: ${r.text}`);
      assert.doesNotMatch(r.text, /Initech|Contoso/);
    }
  });

  test("a slug raced by an agency and a client at once goes to exactly one of them", async () => {
    const slugs = ["race-one", "race-two", "race-three", "race-four"];
    const results = await Promise.all(slugs.flatMap((slug) => [
      w.request("POST", "/api/agencies", { token: tokens.platform_admin, json: { name: `Agency ${slug}`, slug } }),
      w.request("POST", "/api/clients", { token: tokens.agency_admin, json: { name: `Client ${slug}`, slug } }),
    ]));
    for (const [i, slug] of slugs.entries()) {
      const pair = [results[2 * i], results[2 * i + 1]];
      assert.deepEqual(pair.map((r) => r.status).sort(), [201, 409], `${slug}: ${pair.map((r) => r.text)}`);
      assert.equal(errorCode(pair.find((r) => r.status === 409)), "slug_taken");
      const held = w.d1(`SELECT (SELECT count(*) FROM agencies WHERE slug = '${slug}') + (SELECT count(*) FROM clients WHERE slug = '${slug}') AS n`);
      assert.equal(held[0].n, 1, slug);
    }
  });

  test("two agencies proving one portal hostname at once: exactly one wins, and the host serves it", async () => {
    const host = "portal.race-agency.example";
    const claims = [];
    for (const a of [T.agency, T.otherAgency]) {
      const r = await w.request("POST", `/api/agencies/${a}/domains`, { token: tokens.platform_admin, json: { domain: host } });
      assert.equal(r.status, 201, r.text);
      claims.push(r.json);
    }
    doh.records.set(`_gatehouse-challenge.${host}`, claims.map((c) => c.verification.value));
    const results = await Promise.all(claims.map((c) =>
      w.request("POST", `/api/agencies/${c.agency_id}/domains/${c.id}/verify`, { token: tokens.platform_admin })));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 409], results.map((r) => r.text).join("\n"));
    const winner = claims[results.findIndex((r) => r.status === 200)];
    const rows = w.d1(`SELECT agency_id, status FROM agency_domains WHERE hostname = '${host}' ORDER BY status`);
    assert.deepEqual(rows.map((r) => r.status), ["failed", "verified"]);
    assert.equal(rows.find((r) => r.status === "verified").agency_id, winner.agency_id);
    const page = await w.request("GET", "/console", { host: `${host}:${w.port}` });
    assert.match(page.text, new RegExp(`data-tenant-id="${winner.agency_id}"`));
    // A client cannot take it as its portal now.
    const acme = await w.request("POST", `/api/clients/${T.acme}/domains`, { token: tokens.agency_admin, json: { domain: host, purpose: "portal" } });
    assert.equal(acme.status, 201, acme.text);
    doh.records.set(`_gatehouse-challenge.${host}`, [acme.json.verification.value]);
    const r = await w.request("POST", `/api/clients/${T.acme}/domains/${acme.json.id}/verify`, { token: tokens.agency_admin });
    assert.equal(r.status, 409, r.text);
    assert.equal(errorCode(r), "domain_taken");
  });
});

describe("API keys under wrangler dev", () => {
  test("a key reads its own client, nothing else, is audited as itself, and dies when revoked", async () => {
    const made = await w.request("POST", `/api/clients/${T.acme}/api-keys`, { token: tokens.client_admin, json: { name: "e2e", permissions: ["contacts:read", "contacts:write"] } });
    assert.equal(made.status, 201, made.text);
    const key = made.json.key;
    assert.match(key, /^gh_live_[0-9a-z]{52}$/);
    const own = await w.request("GET", `/api/clients/${T.acme}/contacts`, { token: key });
    assert.equal(own.status, 200, own.text);
    for (const other of [T.globex, T.initech]) {
      const r = await w.request("GET", `/api/clients/${other}/contacts`, { token: key });
      assert.equal(r.status, 404, r.text);
    }
    assert.equal((await w.request("GET", `/api/clients/${T.acme}/deals`, { token: key })).status, 403);
    const c = await w.request("POST", `/api/clients/${T.acme}/contacts`, { token: key, json: { name: "Made by a key" } });
    assert.equal(c.status, 201, c.text);
    assert.equal((await w.request("DELETE", `/api/clients/${T.acme}/contacts/${c.json.id}`, { token: key })).status, 204);
    const rows = w.d1(`SELECT actor_user_id, actor_role FROM audit_log WHERE target_id = '${c.json.id}'`);
    assert.deepEqual(rows, [{ actor_user_id: made.json.id, actor_role: "api_key" }]);
    assert.equal(w.d1(`SELECT count(*) AS n FROM api_keys WHERE key_hash = '${key}' OR prefix = '${key}'`)[0].n, 0, "never stored in the clear");
    const revoked = await w.request("DELETE", `/api/clients/${T.acme}/api-keys/${made.json.id}`, { token: tokens.client_admin });
    assert.equal(revoked.status, 204);
    const after = await w.request("GET", `/api/clients/${T.acme}/contacts`, { token: key });
    assert.equal(after.status, 401);
    assert.equal(errorCode(after), "invalid_token");
  });
});

describe("password reset under wrangler dev", () => {
  test("a mailed, single-use token sets a new password and ends every earlier session", async () => {
    const email = "multi@northwind.test";
    const old = await w.login(email);
    const asked = await w.request("POST", "/api/auth/password-reset", { json: { email } });
    const nobody = await w.request("POST", "/api/auth/password-reset", { json: { email: "nobody@northwind.test" } });
    assert.equal(asked.status, 202);
    assert.equal(nobody.text, asked.text, "the same answer for an unknown address");
    const mail = w.d1(`SELECT body FROM outbox WHERE to_email = '${email}' AND subject = 'Reset your password'`);
    assert.equal(mail.length, 1);
    const token = mail[0].body.match(/pwr_[0-9a-z]{52}/)[0];
    // The same mail reached the mail API, with its key, right after the response.
    for (let i = 0; i < 50 && !mails.some((m) => m.to === email); i++) await new Promise((r) => setTimeout(r, 100));
    const sent = mails.find((m) => m.to === email);
    assert.ok(sent, "the reset mail reached the fake mail API");
    assert.equal(sent.auth, "Bearer e2e-mail-key");
    assert.equal(sent.subject, "Reset your password");
    assert.match(sent.text, new RegExp(token));
    assert.ok(!mails.some((m) => m.to === "nobody@northwind.test"), "no mail for an unknown address");
    assert.equal(w.d1(`SELECT status FROM outbox WHERE to_email = '${email}'`)[0].status, "sent");
    const done = await w.request("POST", "/api/auth/password-reset/confirm", { json: { token, password: "e2e reset passphrase" } });
    assert.equal(done.status, 200, done.text);
    const stale = await w.request("GET", "/api/me", { token: old });
    assert.equal(stale.status, 401);
    assert.equal(errorCode(stale), "session_ended");
    const again = await w.request("POST", "/api/auth/password-reset/confirm", { json: { token, password: "another passphrase" } });
    assert.equal(again.status, 400);
    assert.equal(errorCode(again), "invalid_reset_token");
    const login = await w.request("POST", "/api/auth/login", { json: { email, password: "e2e reset passphrase" } });
    assert.equal(login.status, 200, login.text);
  });

  test("with MFA on, login is two steps, and a TOTP code (computed here, RFC 6238) works once", async () => {
    const email = "multi@northwind.test";
    const password = "e2e reset passphrase";
    const session = (await w.request("POST", "/api/auth/login", { json: { email, password } })).json.access_token;
    const enrol = await w.request("POST", "/api/me/mfa/enrol", { token: session });
    assert.equal(enrol.status, 200, enrol.text);
    const secret = enrol.json.secret;
    assert.match(enrol.json.otpauth_uri, /^otpauth:\/\/totp\/Gatehouse%3A/);
    const now = () => Date.now() / 1000;
    const on = await w.request("POST", "/api/me/mfa/confirm", { token: session, json: { code: totp(secret, now()) } });
    assert.equal(on.status, 200, on.text);
    assert.equal(on.json.recovery_codes.length, 10);
    const step1 = await w.request("POST", "/api/auth/login", { json: { email, password } });
    assert.equal(step1.status, 200, step1.text);
    assert.equal(step1.json.mfa_required, true);
    assert.equal(step1.json.access_token, undefined);
    // A recovery code finishes it (the TOTP code of this 30 s step was spent confirming).
    const step2 = await w.request("POST", "/api/auth/login/mfa", { json: { mfa_token: step1.json.mfa_token, code: on.json.recovery_codes[0] } });
    assert.equal(step2.status, 200, step2.text);
    assert.equal((await w.request("GET", "/api/me", { token: step2.json.access_token })).status, 200);
    const replay = await w.request("POST", "/api/auth/login/mfa", { json: { mfa_token: step1.json.mfa_token, code: on.json.recovery_codes[1] } });
    assert.equal(replay.status, 401);
    assert.equal(errorCode(replay), "invalid_mfa_token");
    const sealed = w.d1(`SELECT mfa_secret_sealed FROM users WHERE email = '${email}'`)[0].mfa_secret_sealed;
    assert.ok(sealed && !sealed.includes(secret), "the secret is sealed");
  });
});

describe("users, grants and mass assignment", () => {
  test("nobody grants a role above their own, and mass assignment is refused", async () => {
    const invited = await w.request("POST", "/api/users", { token: tokens.client_admin, json: { email: "new.hire@acme.test" } });
    assert.equal(invited.status, 202, invited.text);
    assert.equal(invited.json.invitation.role, "client_viewer");
    const mail = w.d1("SELECT body FROM outbox WHERE to_email = 'new.hire@acme.test'");
    const token = mail[0].body.match(/inv_[0-9a-z]+/)[0];
    const accepted = await w.request("POST", "/api/invitations/accept", { json: { token, name: "New Hire", password: "a-long-dev-password" } });
    assert.equal(accepted.status, 200, accepted.text);
    const id = accepted.json.user_id;
    for (const field of ["role", "agency_id", "client_id"]) {
      const r = await w.request("POST", "/api/users", { token: tokens.client_admin, json: { email: `mass-${field}@acme.test`, [field]: field === "role" ? "platform_admin" : T.initech } });
      assert.equal(r.status, 422, r.text);
      assert.equal(errorCode(r), field === "role" ? "role_mismatch" : "forbidden_field");
    }
    const put = await w.request("PUT", `/api/clients/${T.acme}`, { token: tokens.client_admin, json: { agency_id: T.otherAgency } });
    assert.equal(put.status, 422);
    const up = await w.request("POST", `/api/users/${id}/grant-access`, { token: tokens.client_admin, json: { client_id: T.acme, role: "client_user" } });
    assert.equal(up.status, 200, up.text);
    const tooHigh = await w.request("POST", `/api/users/${id}/grant-access`, { token: tokens.client_admin, json: { agency_id: T.agency, role: "agency_admin" } });
    assert.equal(tooHigh.status, 404, "client admins cannot even see the agency");
    const tooHigh2 = await w.request("POST", `/api/users/${id}/grant-access`, { token: tokens.agency_user, json: { client_id: T.acme, role: "client_admin" } });
    assert.equal(tooHigh2.status, 403);
    const foreign = await w.request("POST", `/api/users/${id}/grant-access`, { token: tokens.client_admin, json: { client_id: T.globex, role: "client_user" } });
    assert.equal(foreign.status, 404);
    // The grant works: the new user logs in as client_user of acme.
    const login = await w.request("POST", "/api/auth/login", { json: { email: "new.hire@acme.test", password: "a-long-dev-password" } });
    assert.equal(login.status, 200, login.text);
    assert.equal(login.json.context.role, "client_user");
    // Revoke, and the issued token stops working at once.
    const rv = await w.request("DELETE", `/api/users/${id}/revoke-access?client_id=${T.acme}`, { token: tokens.client_admin });
    assert.equal(rv.status, 204, rv.text);
    const after = await w.request("GET", "/api/me", { token: login.json.access_token });
    assert.equal(after.status, 401);
  });

  test("every change writes an audit row with actor, ip and user agent", async () => {
    const r = await w.request("PUT", `/api/clients/${T.acme}`, { token: tokens.client_admin, json: { phone: "+1 555 0142" }, headers: { "user-agent": "audit-probe/1.0" } });
    assert.equal(r.status, 200, r.text);
    // Oldest first, a page at a time: the matrix above has written many rows before this one.
    const items = [];
    for (let cursor = ""; ;) {
      const page = await w.request("GET", `/api/clients/${T.acme}/audit?limit=100&cursor=${cursor}`, { token: tokens.client_admin });
      assert.equal(page.status, 200, page.text);
      items.push(...page.json.items);
      if (!page.json.next_cursor) break;
      cursor = encodeURIComponent(page.json.next_cursor);
    }
    const row = items.reverse().find((a) => a.action === "client.updated" && a.user_agent === "audit-probe/1.0");
    assert.ok(row, "audit row present");
    assert.equal(row.tenant_id, T.acme);
    assert.ok(row.actor_user_id.startsWith("usr_"));
    assert.equal(row.actor_role, "client_admin");
    assert.ok(row.ip, "ip recorded");
    assert.deepEqual(row.metadata.fields, ["phone"]);
  });
});

describe("JWT attacks are answered 401", () => {
  const now = () => Math.floor(Date.now() / 1000);
  const claims = (over = {}) => ({
    sub: "usr_000000000000000000000001", iss: "gatehouse", aud: "gatehouse-api", tenant: "platform",
    role: "platform_admin", permissions: [], jti: "j", iat: now() - 10, exp: now() + 600, ...over,
  });
  const H = { alg: "HS256", typ: "JWT", kid: "k1" };
  const without = (o, k) => { const c = { ...o }; delete c[k]; return c; };
  const cases = {
    "a correctly forged control token is accepted (proves the harness key)": [forgeJwt(secrets.JWT_SECRET, H, claims()), 200],
    "alg none": [`${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${Buffer.from(JSON.stringify(claims())).toString("base64url")}.`, 401],
    "alg None": [`${Buffer.from(JSON.stringify({ alg: "None", typ: "JWT" })).toString("base64url")}.${Buffer.from(JSON.stringify(claims())).toString("base64url")}.`, 401],
    "alg NONE": [`${Buffer.from(JSON.stringify({ alg: "NONE", typ: "JWT" })).toString("base64url")}.${Buffer.from(JSON.stringify(claims())).toString("base64url")}.`, 401],
    "wrong alg HS512 header": [forgeJwt(secrets.JWT_SECRET, { alg: "HS512", typ: "JWT" }, claims()), 401],
    "bad signature": [forgeJwt(secrets.JWT_SECRET, H, claims()).slice(0, -4) + "AAAA", 401],
    expired: [forgeJwt(secrets.JWT_SECRET, H, claims({ iat: now() - 1000, exp: now() - 1 })), 401],
    "exp == now": [forgeJwt(secrets.JWT_SECRET, H, claims({ exp: now() })), 401],
    "future iat": [forgeJwt(secrets.JWT_SECRET, H, claims({ iat: now() + 3600, exp: now() + 7200 })), 401],
    "missing exp": [forgeJwt(secrets.JWT_SECRET, H, without(claims(), "exp")), 401],
    "wrong iss": [forgeJwt(secrets.JWT_SECRET, H, claims({ iss: "evil" })), 401],
    "wrong aud": [forgeJwt(secrets.JWT_SECRET, H, claims({ aud: "other" })), 401],
    "crit present": [forgeJwt(secrets.JWT_SECRET, { ...H, crit: ["exp"] }, claims()), 401],
    "missing typ": [forgeJwt(secrets.JWT_SECRET, { alg: "HS256", kid: "k1" }, claims()), 401],
    "missing kid": [forgeJwt(secrets.JWT_SECRET, { alg: "HS256", typ: "JWT" }, claims()), 401],
    "unknown kid": [forgeJwt(secrets.JWT_SECRET, { ...H, kid: "k9" }, claims()), 401],
    "jku pointing elsewhere": [forgeJwt(secrets.JWT_SECRET, { ...H, jku: "http://127.0.0.1:1/jwks.json" }, claims()), 401],
    "embedded jwk": [forgeJwt(secrets.JWT_SECRET, { ...H, jwk: { kty: "oct", k: "AAAA" } }, claims()), 401],
    "empty secret": [forgeJwt("", H, claims()), 401],
    "weak secret 'secret'": [forgeJwt("secret", H, claims()), 401],
    "weak secret 'your-256-bit-secret'": [forgeJwt("your-256-bit-secret", H, claims()), 401],
    "RFC 7519 §3.1 example": ["eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", 401],
    "garbage": ["not.a.token", 401],
  };
  for (const [name, [token, want]] of Object.entries(cases)) {
    test(name, async () => {
      const r = await w.request("GET", "/api/me", { token });
      assert.equal(r.status, want, r.text);
      if (want === 401) errorCode(r);
    });
  }
  test("no Authorization header", async () => {
    const r = await w.request("GET", "/api/clients");
    assert.equal(r.status, 401);
    assert.equal(errorCode(r), "missing_token");
  });
});

describe("bad input gets a JSON 4xx, never a 500", () => {
  const cases = [
    ["malformed JSON", "POST", "/api/clients", { body: "{not json", headers: { "content-type": "application/json" } }, 400],
    ["JSON array body", "POST", "/api/clients", { body: "[]", headers: { "content-type": "application/json" } }, 400],
    ["unknown field", "POST", "/api/clients", { json: { name: "A", slug: "ab-cd", color: "red" } }, 422],
    ["wrong type", "POST", "/api/clients", { json: { name: 42, slug: "ab-cd" } }, 422],
    ["missing field", "POST", "/api/clients", { json: { name: "No slug" } }, 422],
    ["invalid slug", "POST", "/api/clients", { json: { name: "A", slug: "../../etc" } }, 422],
    ["duplicate slug", "POST", "/api/clients", { json: { name: "Dup", slug: "acme" } }, 409],
    ["text/plain body", "POST", "/api/clients", { body: "name=x", headers: { "content-type": "text/plain" } }, 415],
    ["huge JSON body", "POST", "/api/clients", { body: JSON.stringify({ name: "x".repeat(200_000), slug: "big" }), headers: { "content-type": "application/json" } }, 413],
    ["nul in name", "POST", "/api/clients", { json: { name: "a\u0000b", slug: "nul-name" } }, 422],
    ["emoji slug", "POST", "/api/clients", { json: { name: "Emoji", slug: "😀-co" } }, 422],
    ["bad limit", "GET", "/api/clients?limit=100000", {}, 400],
    ["traversal in path", "GET", "/api/clients/%2e%2e%2fadmin", {}, 400],
    ["encoded slash id", "GET", "/api/clients/cli_x%2f..", {}, 400],
    ["unknown client id", "GET", "/api/clients/cli_000000000000000000000zzz", {}, 404],
    ["sql-ish id", "GET", "/api/clients/' OR 1=1 --", {}, 404],
    ["wrong method", "DELETE", "/api/agencies", {}, 405],
    ["unknown route", "GET", "/api/nope", {}, 404],
  ];
  for (const [name, method, path, opts, want] of cases) {
    test(`${name} → ${want}`, async () => {
      const r = await w.request(method, path.replace(/ /g, "%20"), { token: tokens.agency_admin, ...opts });
      assert.equal(r.status, want, r.text.slice(0, 300));
      errorCode(r);
    });
  }
  // A Content-Length that lies, or a Host that cannot form a URL (bad port, a space), never
  // reaches the Worker under wrangler dev: miniflare's proxy answers 500 itself. The Worker's
  // own Host parser is covered by the native tests (hosts_parse_or_are_refused, api_hostile).
  for (const [name, host] of [
    ["unicode Host", "ünïcode.localhost"],
    ["very long Host", "a".repeat(5000) + ".localhost"],
    ["Host with path", "localhost/evil"],
    ["unknown Host", "evil.example.com"],
  ]) {
    test(`${name} is refused with a 4xx`, async () => {
      const r = await rawRequest(w.port, `GET /api/me HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.ok(r.status >= 400 && r.status < 500, `got ${r.status}: ${r.text.slice(0, 200)}`);
    });
  }
  test("the worker logged no panic through all of this", () => {
    assert.doesNotMatch(w.logs.join(""), /panicked|RuntimeError: unreachable/);
  });
});
