// The console in headless Chromium under a real wrangler dev: the agency journey (sign in, create
// a client from a template, add and verify a domain against the fake DoH, brand it with a CSS
// refusal shown inline, store a Twilio credential and see it masked, invite someone who accepts
// from the dev mailbox, open the client's console on its portal host), the client journey (a deal
// moved across stages by drag and by keyboard, a visitor's booking through the widget on the
// calendar), the role journey (a viewer sees no edit control and the API refuses a write from the
// page), axe-core on each main page, and screenshots at 1280 and 375 px.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { startWorker, testSecrets, ROOT, launchChromium } from "./harness.mjs";
import { startFakeDoh } from "./fake-doh.mjs";

// Written on every run (ignored by git); docs/screenshots keeps a committed copy for the README.
const SHOTS = join(ROOT, "tests", "e2e", "screenshots", "console");
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
let w, doh, browser;
const tok = {};
const T = {};

before(async () => {
  doh = await startFakeDoh();
  w = await startWorker({ vars: { ...testSecrets(), DOH_RESOLVER_URL: doh.url, DEV_MAILBOX: "true" } });
  tok.agency = await w.login("agency.admin@northwind.test");
  tok.platform = await w.login("admin@gatehouse.test");
  const clients = (await w.request("GET", "/api/clients", { token: tok.agency })).json.items;
  T.acme = clients.find((c) => c.slug === "acme").id;
  T.names = Object.fromEntries(clients.map((c) => [c.id, c.name]));
  T.agency = clients[0].agency_id;
  browser = await launchChromium();
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await w?.stop();
  await doh?.stop();
});

/** A page at `width`, signed in as `email` on `host` (the API host by default). */
async function signedIn(email, { host = `localhost:${w.port}`, width = 1280, bypassCSP = false, on = browser } = {}) {
  const context = await on.newContext({ viewport: { width, height: 900 }, bypassCSP });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Script errors and console errors; an API refusal the test provokes logs "Failed to load
  // resource", which the page itself shows inline.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource: the server responded with a status of 4")) errors.push(m.text()); });
  page.on("response", (r) => { if (r.status() === 404 || r.status() >= 500) errors.push(`${r.status()} ${r.url()}`); });
  await page.goto(`http://${host}/console`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(w.users[email]);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  return { context, page, errors };
}

async function axe(page) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

describe("the console's shell", () => {
  test("is served on the API host and on a portal host under a strict CSP, with its bundle from the Worker", async () => {
    for (const host of [`localhost:${w.port}`, `acme.localhost:${w.port}`]) {
      const r = await w.request("GET", "/console", { host });
      assert.equal(r.status, 200, r.text);
      const csp = r.headers["content-security-policy"];
      for (const d of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]) assert.ok(csp.includes(d), `${d} in ${csp}`);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      const scripts = [...r.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
      assert.ok(scripts.length >= 1);
      for (const [, attrs, bodyText] of scripts) {
        assert.match(attrs, /src="\/console\/assets\//, "every script is a file of ours");
        assert.equal(bodyText.trim(), "", "no inline script");
      }
      assert.doesNotMatch(r.text, /<style|style=/, "no inline style");
    }
    const js = await w.request("GET", "/console/assets/console.js");
    assert.equal(js.status, 200);
    assert.match(js.headers["content-type"], /javascript/);
    assert.equal(js.headers["x-content-type-options"], "nosniff");
    const theme = await w.request("GET", "/console/theme.css", { host: `acme.localhost:${w.port}` });
    assert.match(theme.text, /--gh-primary: #[0-9a-f]{3,6};/);
  });
  test("a page chosen the moment sign-in renders is kept: the redirect to the home page does not override it", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await context.newPage();
      await page.goto(`http://localhost:${w.port}/console`);
      await page.getByLabel("Email").fill("agency.admin@northwind.test");
      await page.getByLabel("Password").fill(w.users["agency.admin@northwind.test"]);
      // The page is chosen in the microtask after the signed-in shell's first render, before
      // that render's effects run: what a quick link or a test's navigation does under load.
      await page.evaluate(() => {
        const seen = new MutationObserver(() => {
          if ([...document.querySelectorAll("button")].some((b) => b.textContent === "Sign out")) {
            seen.disconnect();
            window.hashWhenChosen = location.hash;
            location.hash = "#/domains";
          }
        });
        seen.observe(document.body, { childList: true, subtree: true });
      });
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "Portal domains" }).waitFor();
      await page.waitForFunction(() => !document.querySelector('.state[role="status"]'), null, { timeout: 15_000 });
      // The premise: the page was chosen before the redirect had run.
      assert.equal(await page.evaluate(() => window.hashWhenChosen), "");
      assert.equal(new URL(page.url()).hash, "#/domains");
      assert.equal(await page.getByRole("heading", { name: "Portal domains" }).count(), 1);
      assert.equal(await page.getByRole("heading", { name: "Clients" }).count(), 0);
    } finally {
      await context.close();
    }
  });

  test("switching to another tenant starts from that tenant's home page, in its scope", async () => {
    // A member of two clients: each switch must land on the new client's home, not on the page
    // the old scope's redirect would pick.
    const { context, page, errors } = await signedIn("multi@northwind.test");
    try {
      await page.waitForFunction(() => /^#\/c\/cli_/.test(location.hash));
      const first = new URL(page.url()).hash.slice("#/c/".length);
      const other = await page.locator("#switch option[value^='cli_']").getAttribute("value");
      assert.notEqual(other, first);
      await page.locator("#switch").selectOption(other);
      await page.waitForFunction((id) => location.hash === `#/c/${id}`, other);
      await page.getByRole("heading", { name: T.names[other], level: 1 }).waitFor();
      await page.waitForFunction(() => !document.querySelector('.state[role="status"]'), null, { timeout: 15_000 });
      assert.equal(new URL(page.url()).hash, `#/c/${other}`);
      assert.equal(await page.getByRole("heading", { name: T.names[first], level: 1 }).count(), 0);
      assert.equal(await page.getByRole("alert").count(), 0, "no error on the page");
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});

describe("the agency journey", () => {
  test("sign in, create a client from a template, verify a domain, brand it, store a credential, invite someone, open its portal", async () => {
    const tpl = await w.request("POST", `/api/agencies/${T.agency}/templates`, { token: tok.agency, json: { name: "Salon", spec: { plan: "growth", pipelines: [{ name: "Sales", stages: ["Lead", "Won"] }], integrations: ["twilio"] } } });
    assert.equal(tpl.status, 201, tpl.text);
    const { context, page, errors } = await signedIn("agency.admin@northwind.test");
    try {
      await page.getByRole("heading", { name: "Clients" }).waitFor();
      await page.screenshot({ path: join(SHOTS, "agency-clients-1280.png"), fullPage: true });
      await page.getByRole("link", { name: "New client", exact: true }).click();
      await page.getByLabel("Name").fill("Shear Joy");
      await page.getByLabel("Slug").fill("shear-joy");
      await page.getByLabel("Template").selectOption({ label: "Salon (version 1)" });
      await page.getByRole("button", { name: "Create client" }).click();
      await page.getByRole("heading", { name: "Shear Joy" }).waitFor();
      const id = page.url().split("#/c/")[1];
      assert.match(id, /^cli_/);
      assert.equal(w.d1(`SELECT plan, template_id FROM clients WHERE id = '${id}'`)[0].plan, "growth");

      // A domain, its TXT record, and verification against the fake resolver.
      await page.getByRole("link", { name: "Domains", exact: true }).click();
      await page.getByLabel("Domain").fill("www.shear-joy.example");
      await page.getByRole("button", { name: "Add domain" }).click();
      const row = page.locator('[data-domain="www.shear-joy.example"]');
      await row.waitFor();
      const name = await row.locator("code").nth(0).textContent();
      const value = await row.locator("code").nth(1).textContent();
      assert.equal(name, "_gatehouse-challenge.www.shear-joy.example");
      doh.records.set(name, [value]);
      await row.getByRole("button", { name: "Verify", exact: true }).click();
      await row.locator(".badge.verified").waitFor();
      await page.screenshot({ path: join(SHOTS, "client-domains-1280.png"), fullPage: true });

      // Branding: a refusal of the sanitiser is shown inline; a good save sticks.
      await page.getByRole("link", { name: "Branding", exact: true }).click();
      await page.getByLabel("Custom CSS (portal)").fill("body { background: url(https://evil.example/x.png) }");
      await page.getByRole("button", { name: "Save" }).click();
      await page.locator('#branding [data-code="invalid_css"]').waitFor();
      await page.getByLabel("Custom CSS (portal)").fill("");
      await page.getByLabel("Primary colour").fill("#0a7c55");
      await page.getByLabel("Tagline").fill("Cuts that last");
      await page.getByRole("button", { name: "Save" }).click();
      await page.getByText("Saved.").waitFor();
      assert.equal(w.d1(`SELECT primary_color FROM branding WHERE owner_id = '${id}'`)[0].primary_color, "#0a7c55");
      await page.screenshot({ path: join(SHOTS, "client-branding-1280.png"), fullPage: true });

      // A Twilio credential, write-only: shown masked afterwards.
      await page.getByRole("link", { name: "Integrations", exact: true }).click();
      const twilio = page.locator("#provider-twilio");
      await twilio.getByLabel("Auth token").fill("tw-auth-token-123456");
      await twilio.getByRole("button", { name: "Save" }).click();
      await twilio.getByText("Saved.").waitFor();
      const shown = await twilio.locator('[data-field="twilio.auth_token"] small').textContent();
      assert.match(shown, /Stored as/);
      assert.doesNotMatch(await page.content(), /tw-auth-token-123456/);
      assert.equal(await twilio.getByLabel("Auth token").inputValue(), "", "nothing typed stays in the page");

      // An invitation, accepted from the dev mailbox.
      await page.getByRole("link", { name: "People", exact: true }).click();
      await page.getByLabel("Email").fill("stylist@shear-joy.example");
      await page.getByRole("button", { name: "Invite" }).click();
      await page.getByText("Invitation sent.").waitFor();
      // The invitee follows the mailed link to the client's branded invitation page.
      const mail = await w.request("GET", `/api/dev/mailbox?to=${encodeURIComponent("stylist@shear-joy.example")}`);
      const link = mail.json.items[0].body.match(/http:\/\/shear-joy\.localhost:\d+\/invite#token=inv_[0-9a-z]+/)[0];
      const invitee = await context.newPage();
      await invitee.goto(link);
      await invitee.click("#gh-invite button[type=submit]");
      await invitee.waitForSelector("#gh-invite-account:not([hidden])");
      await invitee.fill("#gh-invite-name", "Sam Stylist");
      await invitee.fill("#gh-invite-password", "a long stylist password");
      await invitee.click("#gh-invite button[type=submit]");
      await invitee.waitForSelector("#gh-profile");
      assert.match(await invitee.textContent("#gh-profile"), /stylist@shear-joy\.example \(client_user\)/);
      assert.deepEqual(errors, []);

      // The client's console on its own portal host, in its colours.
      const portal = await context.newPage();
      await portal.goto(`http://shear-joy.localhost:${w.port}/console`);
      await portal.getByRole("heading", { name: "Sign in to Shear Joy" }).waitFor();
      await portal.getByLabel("Email").fill("stylist@shear-joy.example");
      await portal.getByLabel("Password").fill("a long stylist password");
      await portal.getByRole("button", { name: "Sign in" }).click();
      await portal.getByRole("heading", { name: "Shear Joy" }).waitFor();
      const primary = await portal.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue("--gh-primary").trim());
      assert.equal(primary, "#0a7c55");
      // The embed snippet names the API host, where the widget is served, not the portal.
      await portal.getByRole("link", { name: "Embed", exact: true }).click();
      assert.match(await portal.locator(".snippet code").textContent(), new RegExp(`^<script src="http://localhost:${w.port}/widget\\.js"`));
    } finally {
      await context.close();
    }
  });
});

describe("the client journey", () => {
  test("a deal moves across stages by drag and by keyboard; a widget booking shows on the calendar", async () => {
    const { context, page, errors } = await signedIn("admin@acme.test", { host: `acme.localhost:${w.port}` });
    try {
      await page.getByRole("link", { name: "Pipeline", exact: true }).click();
      await page.getByLabel("Deal title").fill("Boiler swap");
      await page.getByRole("button", { name: "Add deal" }).click();
      const deal = page.locator('[data-deal="Boiler swap"]');
      await deal.waitFor();
      const stages = await page.locator(".column h3").allTextContents();
      const second = page.locator(".column").nth(1);
      // Dragged by its title (the card's stage menu, at its centre, is for the keyboard).
      await deal.locator("strong").dragTo(second);
      await second.locator('[data-deal="Boiler swap"]').waitFor();
      // The keyboard alternative: the card's stage menu.
      const third = await page.locator(".column").nth(2).getAttribute("data-stage");
      await page.locator('[data-deal="Boiler swap"] select').selectOption({ label: third });
      await page.locator(`.column[data-stage="${third}"] [data-deal="Boiler swap"]`).waitFor();
      const history = w.d1("SELECT count(*) AS n FROM deal_stage_history h JOIN deals d ON d.id = h.deal_id WHERE d.title = 'Boiler swap'")[0].n;
      assert.equal(history, 3, `the creation and two moves recorded (${history}); stages ${stages}`);
      await page.screenshot({ path: join(SHOTS, "client-pipeline-1280.png"), fullPage: true });

      // A visitor books through the widget's API from a verified origin.
      const origin = "http://shop.localhost:8080";
      const headers = { origin, "content-type": "application/json", "cf-connecting-ip": "203.0.113.90" };
      const services = await w.request("GET", `/api/widget/v1/services?key=${w.keys.acme}`, { headers });
      assert.equal(services.status, 200, services.text);
      const svc = services.json.items[0];
      // A Wednesday at least a week ahead: the demo staff work weekdays.
      const d = new Date(Date.now() + 7 * 86_400_000);
      while (d.getUTCDay() !== 3) d.setUTCDate(d.getUTCDate() + 1);
      const date = d.toISOString().slice(0, 10);
      const day = await w.request("GET", `/api/widget/v1/availability?key=${w.keys.acme}&service=${svc.id}&date=${date}`, { headers });
      assert.ok(day.json.slots?.length, day.text);
      const slot = day.json.slots[0];
      const booked = await w.request("POST", `/api/widget/v1/bookings?key=${w.keys.acme}`, { headers, body: JSON.stringify({ service_id: svc.id, staff_id: slot.staff_id, starts_at: slot.starts_at, name: "Vera Visitor", email: "vera@shop.test", elapsed_ms: 5000 }) });
      assert.equal(booked.status, 201, booked.text);
      await page.getByRole("link", { name: "Calendar", exact: true }).click();
      await page.locator(".appointment").first().waitFor();
      // The booking is on the calendar, on its day, at its local time.
      const local = booked.json.local_start || booked.json.appointment?.local_start;
      assert.ok(local, booked.text);
      const onDay = page.locator(".calendar .day", { has: page.locator(`h3:text-is("${local.slice(0, 10)}")`) });
      await onDay.locator(".appointment", { hasText: local.slice(11, 16) }).first().waitFor();
      await page.screenshot({ path: join(SHOTS, "client-calendar-1280.png"), fullPage: true });
      // The client admin invites from its own portal's console.
      await page.getByRole("link", { name: "People", exact: true }).click();
      await page.getByLabel("Email").fill("helper@acme-plumbing.example");
      await page.getByRole("button", { name: "Invite" }).click();
      await page.getByText("Invitation sent.").waitFor();
      assert.equal(w.d1("SELECT count(*) AS n FROM invitations WHERE email = 'helper@acme-plumbing.example'")[0].n, 1);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});

describe("the role journey", () => {
  test("a client viewer sees no edit controls, and a write from the page is refused by the API", async () => {
    const { context, page } = await signedIn("viewer@acme.test", { host: `acme.localhost:${w.port}` });
    try {
      await page.getByRole("link", { name: "Pipeline", exact: true }).click();
      await page.locator(".board .deal").first().waitFor();
      assert.ok((await page.locator(".deal").count()) > 0, "the viewer sees deals");
      assert.equal(await page.getByRole("button", { name: "Add deal" }).count(), 0);
      assert.equal(await page.locator(".deal select").count(), 0);
      await page.getByRole("link", { name: "Contacts", exact: true }).click();
      await page.locator("#contact-search").waitFor();
      assert.equal(await page.getByRole("button", { name: "Add contact" }).count(), 0);
      assert.equal(await page.getByRole("link", { name: "Integrations", exact: true }).count(), 0, "no settings:read");
      const status = await page.evaluate(async (client) => {
        const token = Object.entries(sessionStorage).find(([k]) => k.startsWith("gatehouse-console-token"))[1];
        const r = await fetch(`/api/clients/${client}/contacts`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ name: "Sneaky" }) });
        return r.status;
      }, T.acme);
      assert.equal(status, 403);
    } finally {
      await context.close();
    }
  });
});

describe("accessibility and screenshots", () => {
  const pages = [
    ["agency.admin@northwind.test", null, "#/clients", "agency-clients"],
    ["agency.admin@northwind.test", null, "#/templates", "agency-templates"],
    ["admin@acme.test", "acme", "", "client-overview"],
    ["admin@acme.test", "acme", "/domains", "client-domains"],
    ["admin@acme.test", "acme", "/settings", "client-integrations"],
    ["admin@acme.test", "acme", "/contacts", "client-contacts"],
    ["admin@acme.test", "acme", "/audit", "client-audit"],
    ["admin@gatehouse.test", null, "#/agencies", "platform-agencies"],
  ];
  for (const [email, portal, route, name] of pages) {
    test(`${name}: axe finds no serious or critical violation, at 1280 and 375 px`, async () => {
      for (const width of [1280, 375]) {
        const host = portal ? `${portal}.localhost:${w.port}` : `localhost:${w.port}`;
        const { context, page } = await signedIn(email, { host, width, bypassCSP: true });
        try {
          const hash = portal ? `#/c/${T.acme}${route}` : route;
          await page.goto(`http://${host}/console${hash}`);
          await page.locator("main.content h1, main.content h2").first().waitFor();
          await page.waitForFunction(() => !document.querySelector('.state[role="status"]'), null, { timeout: 15_000 });
          assert.deepEqual(await axe(page), [], `${name} at ${width}`);
          await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true });
        } finally {
          await context.close();
        }
      }
    });
  }
});

describe("a client's own portal domain", () => {
  test("the console answers on a verified custom portal domain, as that client only", async () => {
    const globex = (await w.request("GET", "/api/clients", { token: tok.agency })).json.items.find((c) => c.slug === "globex");
    // A real custom domain (not under the portal base domain), which this Chromium resolves to
    // loopback.
    const host = "portal.globex-industries.example";
    const made = await w.request("POST", `/api/clients/${globex.id}/domains`, { token: tok.agency, json: { domain: host, purpose: "portal" } });
    assert.equal(made.status, 201, made.text);
    const forced = await w.request("POST", `/api/clients/${globex.id}/domains/${made.json.id}/verify`, { token: tok.platform, json: { force: true } });
    assert.equal(forced.status, 200, forced.text);
    const own = await launchChromium([`--host-resolver-rules=MAP ${host} 127.0.0.1`]);
    const { context, page, errors } = await signedIn("admin@globex.test", { host: `${host}:${w.port}`, on: own });
    try {
      await page.getByRole("heading", { name: globex.name, exact: true }).waitFor();
      assert.equal(await page.title(), `${globex.name} console`);
      assert.deepEqual(errors, []);
      // A session made on this host answers for this client only.
      const other = await page.evaluate(async (acme) => {
        const token = Object.entries(sessionStorage).find(([k]) => k.startsWith("gatehouse-console-token"))[1];
        return (await fetch(`/api/clients/${acme}`, { headers: { authorization: `Bearer ${token}` } })).status;
      }, T.acme);
      assert.equal(other, 404);
    } finally {
      await context.close();
      await own.close();
    }
  });
});

describe("an agency's own portal", () => {
  test("an agency proves a portal domain in the console, its team signs in there in its colours, and an invitee joins on its portal", async () => {
    const host = "clients.northwind-digital.example";
    const branded = await w.request("PUT", `/api/agencies/${T.agency}/branding`, { token: tok.agency, json: { primary_color: "#5b21b6" } });
    assert.equal(branded.status, 200, branded.text);
    const { context, page, errors } = await signedIn("agency.admin@northwind.test");
    try {
      await page.getByRole("link", { name: "Portal domains", exact: true }).click();
      await page.getByRole("heading", { name: "Portal domains" }).waitFor();
      assert.equal(await page.locator("main.content p code").first().textContent(), `northwind.localhost:${w.port}`);
      await page.getByLabel("Domain").fill(host);
      await page.getByRole("button", { name: "Add domain" }).click();
      const row = page.locator(`li[data-domain="${host}"]`);
      await row.waitFor();
      assert.equal(await row.locator("code").first().textContent(), `_gatehouse-challenge.${host}`);
      doh.records.set(`_gatehouse-challenge.${host}`, [await row.locator("code").nth(1).textContent()]);
      await row.getByRole("button", { name: "Verify", exact: true }).click();
      await row.getByText("verified").waitFor();
      assert.equal(w.d1(`SELECT status FROM agency_domains WHERE hostname = '${host}'`)[0].status, "verified");
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }

    // The agency's console on its proved domain: its name, its colours, its clients, nothing more.
    const own = await launchChromium([`--host-resolver-rules=MAP ${host} 127.0.0.1`]);
    try {
      const { context: c2, page: p2, errors: e2 } = await signedIn("agency.admin@northwind.test", { host: `${host}:${w.port}`, on: own });
      await p2.getByRole("heading", { name: "Clients" }).waitFor();
      assert.equal(await p2.title(), "Northwind Digital console");
      const primary = await p2.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue("--gh-primary").trim());
      assert.equal(primary, "#5b21b6");
      await p2.locator('tr[data-client="acme"]').waitFor();
      assert.deepEqual(e2, []);
      const status = await p2.evaluate(async () => {
        const token = Object.entries(sessionStorage).find(([k]) => k.startsWith("gatehouse-console-token"))[1];
        const get = async (path) => (await fetch(path, { headers: { authorization: `Bearer ${token}` } })).status;
        return { admin: await get("/api/admin/tenants"), agencies: await get("/api/agencies") };
      });
      assert.deepEqual(status, { admin: 404, agencies: 404 });
      await c2.close();
    } finally {
      await own.close();
    }

    // An agency invitation leads to the agency's portal, where the invitee makes an account.
    const invited = await w.request("POST", "/api/users", { token: tok.agency, json: { email: "planner@northwind.test", role: "agency_user", tenant: T.agency } });
    assert.equal(invited.status, 202, invited.text);
    const mail = await w.request("GET", `/api/dev/mailbox?to=${encodeURIComponent("planner@northwind.test")}`);
    const link = mail.json.items[0].body.match(/http:\/\/northwind\.localhost:\d+\/invite#token=inv_[0-9a-z]+/)[0];
    const context3 = await browser.newContext({ viewport: { width: 375, height: 900 } });
    try {
      const p3 = await context3.newPage();
      const e3 = [];
      p3.on("pageerror", (e) => e3.push(String(e)));
      await p3.goto(link);
      await p3.getByRole("heading", { name: "Join Northwind Digital" }).waitFor();
      assert.equal(new URL(p3.url()).hash, "", "the token leaves the address bar");
      await p3.getByRole("button", { name: "Accept invitation" }).click();
      await p3.getByLabel("Your name").fill("Pia Planner");
      await p3.getByLabel("Choose a password (10 characters or more)").fill("a long planner password");
      await p3.getByRole("button", { name: "Accept invitation" }).click();
      await p3.getByRole("heading", { name: "You have joined Northwind Digital" }).waitFor();
      await p3.getByRole("link", { name: "Sign in" }).click();
      await p3.getByLabel("Email").fill("planner@northwind.test");
      await p3.getByLabel("Password").fill("a long planner password");
      await p3.getByRole("button", { name: "Sign in" }).click();
      await p3.getByRole("heading", { name: "Clients" }).waitFor();
      assert.match(await p3.locator(".who").textContent(), /planner@northwind\.test · agency_user/);
      assert.deepEqual(e3, []);
    } finally {
      await context3.close();
    }
  });

  test("portal domains on the agency's portal: axe finds no serious or critical violation, at 1280 and 375 px", async () => {
    for (const width of [1280, 375]) {
      const host = `northwind.localhost:${w.port}`;
      const { context, page } = await signedIn("agency.admin@northwind.test", { host, width, bypassCSP: true });
      try {
        await page.goto(`http://${host}/console#/domains`);
        await page.getByRole("heading", { name: "Portal domains" }).waitFor();
        await page.waitForFunction(() => !document.querySelector('.state[role="status"]'), null, { timeout: 15_000 });
        assert.deepEqual(await axe(page), [], `agency-portal-domains at ${width}`);
        await page.screenshot({ path: join(SHOTS, `agency-portal-domains-${width}.png`), fullPage: true });
      } finally {
        await context.close();
      }
    }
  });
});

describe("long lists", () => {
  test("contacts, a board column and the audit log show a page, load the rest on request, and the CSV holds every row", async () => {
    const globex = (await w.request("GET", "/api/clients", { token: tok.agency })).json.items.find((c) => c.slug === "globex").id;
    const pipe = await w.request("POST", `/api/clients/${globex}/pipelines`, { token: tok.agency, json: { name: "Long", stages: ["Everyone"] } });
    assert.equal(pipe.status, 201, pipe.text);
    const stage = pipe.json.stages[0].id;
    // Straight into D1: 60 contacts, 55 open deals in one stage, 1,005 more audit rows.
    const t0 = Date.now() - 86_400_000;
    const n = (k) => `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${k})`;
    w.d1(`${n(60)} INSERT INTO contacts (id, client_id, name, created_at, updated_at) SELECT printf('con_zz%022d', i), '${globex}', printf('Long contact %02d', i), ${t0} + i, ${t0} + i FROM n`);
    w.d1(`${n(55)} INSERT INTO deals (id, client_id, pipeline_id, stage_id, title, currency, created_at, updated_at) SELECT printf('deal_zz%022d', i), '${globex}', '${pipe.json.id}', '${stage}', printf('Long deal %02d', i), 'USD', ${t0} + i, ${t0} + i FROM n`);
    w.d1(`${n(1005)} INSERT INTO audit_log (id, tenant_id, at, actor_role, action, target_type, metadata, seq) SELECT printf('aud_zz%022d', i), '${globex}', ${t0} + i, 'system', 'long.row', 'test', '{}', (SELECT coalesce(max(seq), 0) FROM audit_log WHERE tenant_id = '${globex}') + i FROM n`);
    const rows = w.d1(`SELECT count(*) AS n FROM audit_log WHERE tenant_id = '${globex}'`)[0].n;
    const contacts = w.d1(`SELECT count(*) AS n FROM contacts WHERE client_id = '${globex}'`)[0].n;

    const { context, page, errors } = await signedIn("agency.admin@northwind.test");
    try {
      await page.goto(`http://localhost:${w.port}/console#/c/${globex}/contacts`);
      const items = page.locator("main.content ul.rows > li");
      await items.nth(49).waitFor();
      assert.equal(await items.count(), 50);
      await page.getByRole("button", { name: "Show more" }).click();
      await items.nth(contacts - 1).waitFor();
      assert.equal(await items.count(), contacts);
      assert.equal(await page.getByRole("button", { name: "Show more" }).count(), 0, "nothing more to show");

      await page.goto(`http://localhost:${w.port}/console#/c/${globex}/pipeline`);
      const choose = page.getByLabel("Pipeline", { exact: true });
      await page.getByRole("heading", { name: "Pipeline" }).waitFor();
      if (await choose.count()) await choose.selectOption({ label: "Long" });
      const column = page.locator('.column[data-stage="Everyone"]');
      await column.locator(".deal").nth(49).waitFor();
      assert.equal(await column.locator(".deal").count(), 50);
      await column.getByRole("button", { name: "Show more deals in Everyone" }).click();
      await column.locator(".deal").nth(54).waitFor();
      assert.equal(await column.locator(".deal").count(), 55);

      await page.goto(`http://localhost:${w.port}/console#/c/${globex}/audit`);
      const entries = page.locator("main.content table tbody tr");
      await entries.nth(49).waitFor();
      // Newest first: the 1,005th inserted row (the latest `at` of the long rows) is not older
      // than what the console itself just caused, so check the order rather than one row.
      const shown = await entries.evaluateAll((trs) => trs.map((tr) => tr.cells[0].textContent));
      assert.deepEqual([...shown].sort().reverse(), shown, "newest first");
      await page.getByRole("button", { name: "Older entries" }).click();
      await entries.nth(99).waitFor();
      const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
      const csv = readFileSync(await download.path(), "utf8");
      const lines = csv.trimEnd().split("\r\n");
      assert.equal(lines[0].split(",")[0], "seq", "one header line");
      assert.equal(lines.filter((l) => l.startsWith("seq,")).length, 1);
      assert.ok(lines.length - 1 >= rows, `${lines.length - 1} CSV rows for ${rows} audit rows: every page joined`);
      assert.equal(lines.filter((l) => l.includes(",long.row,")).length, 1005);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});

describe("a client's health and traffic", () => {
  test("the agency sees a client's health and its daily traffic on the overview; axe finds nothing serious at 1280 and 375 px", async () => {
    // The isolate writes its daily counters with the cron, among other times.
    const cron = await w.request("POST", "/__scheduled?cron=recheck-now");
    assert.equal(cron.status, 200, cron.text);
    for (const width of [1280, 375]) {
      const { context, page, errors } = await signedIn("agency.admin@northwind.test", { width, bypassCSP: true });
      try {
        await page.goto(`http://localhost:${w.port}/console#/c/${T.acme}`);
        await page.getByRole("heading", { name: "Health" }).waitFor();
        await page.locator(".health .answer").waitFor();
        assert.match(await page.locator(".health .answer").textContent(), /Healthy|Needs attention/);
        assert.match(await page.locator(".health dl").textContent(), /\d+ verified/);
        const traffic = page.locator("table.traffic tbody tr");
        await traffic.first().waitFor();
        const today = new Date().toISOString().slice(0, 10);
        assert.equal(await traffic.last().locator("td").first().textContent(), today);
        assert.ok(Number((await traffic.last().locator("td").nth(1).textContent()).replace(/,/g, "")) > 0);
        await page.waitForFunction(() => !document.querySelector('.state[role="status"]'), null, { timeout: 15_000 });
        assert.deepEqual(await axe(page), [], `client-health at ${width}`);
        await page.screenshot({ path: join(SHOTS, `client-health-${width}.png`), fullPage: true });
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    }
    // A client's own admin sees its traffic, but not the agency's health view.
    const { context, page } = await signedIn("admin@acme.test", { host: `acme.localhost:${w.port}` });
    try {
      await page.getByRole("heading", { name: "Traffic, last 14 days" }).waitFor();
      assert.equal(await page.getByRole("heading", { name: "Health" }).count(), 0);
    } finally {
      await context.close();
    }
  });
});
