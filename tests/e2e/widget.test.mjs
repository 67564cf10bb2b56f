// The embeddable widget in real headless Chromium against a real wrangler dev: a page on a
// verified test-mode origin renders the lead form in a shadow root and the lead lands in D1; a page
// on an unverified origin renders nothing and says why, once, in the console.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import crypto from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { startWorker, testSecrets, ROOT, launchChromium } from "./harness.mjs";

const SCREENSHOTS = join(ROOT, "tests", "e2e", "screenshots");
const WIDGET_PREFIX = "[Gatehouse widget]";

let w;
let server;
let pagePort;
let browser;
let acmeToken;
let acmeId;

function startPageServer(workerPort, key) {
  const page = (withKey) => `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Acme demo shop</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;background:#f8fafc;color:#0f172a}</style></head>
<body>
<h1>Acme Plumbing &mdash; demo shop</h1>
<p>Questions? Use the form below.</p>
<script src="http://localhost:${workerPort}/widget.js"${withKey ? ` data-key="${key}"` : ""} async></script>
</body>
</html>`;
  const srv = http.createServer((req, res) => {
    const path = new URL(req.url, "http://page.invalid").pathname;
    if (path === "/" || path === "/no-key") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      return res.end(page(path === "/"));
    }
    if (path === "/favicon.ico") {
      res.writeHead(204);
      return res.end();
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  });
  return new Promise((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => resolve(srv));
  });
}

before(async () => {
  w = await startWorker({ vars: testSecrets() });
  acmeToken = await w.login("admin@acme.test");
  acmeId = (await w.request("GET", "/api/me", { token: acmeToken })).json.context.tenant;
  server = await startPageServer(w.port, w.keys.acme);
  pagePort = server.address().port;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (server) {
    server.closeAllConnections?.();
    await new Promise((r) => server.close(() => r()));
  }
  await w?.stop();
});

/** A fresh page that records console messages and responses. */
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 720, height: 900 } });
  const page = await context.newPage();
  const consoleMessages = [];
  const responses = [];
  page.on("console", (m) => consoleMessages.push({ type: m.type(), text: m.text() }));
  page.on("response", (r) => responses.push({ url: r.url(), status: r.status() }));
  return { context, page, consoleMessages, responses };
}

const widgetMessages = (msgs) => msgs.filter((m) => m.text.startsWith(WIDGET_PREFIX));

describe("the widget in headless Chromium", () => {
  test("on a verified test-mode origin the widget renders a form in an open shadow root, and a submitted lead lands in D1 with that origin", async () => {
    const { context, page, consoleMessages } = await openPage();
    try {
      const origin = `http://shop.localhost:${pagePort}`;
      await page.goto(`${origin}/`);
      await page.waitForSelector("[data-gatehouse-widget]", { state: "attached", timeout: 15_000 });
      const shape = await page.evaluate(() => {
        const host = document.querySelector("[data-gatehouse-widget]");
        const root = host.shadowRoot;
        return {
          hosts: document.querySelectorAll("[data-gatehouse-widget]").length,
          mode: root && root.mode,
          formInShadow: !!(root && root.querySelector("form")),
          formInLightDom: !!document.querySelector("form"),
          fields: root ? [...root.querySelectorAll("input,textarea")].filter((e) => e.getAttribute("aria-hidden") !== "true").map((e) => e.name) : [],
          honeypot: (() => {
            const trap = root && root.querySelector('input[name="website"]');
            if (!trap) return null;
            const box = trap.getBoundingClientRect();
            return { hidden: trap.getAttribute("aria-hidden"), tabindex: trap.getAttribute("tabindex"), offscreen: box.right <= 0 };
          })(),
          title: root && root.querySelector("h2") && root.querySelector("h2").textContent,
        };
      });
      assert.deepEqual(shape, {
        hosts: 1,
        mode: "open",
        formInShadow: true,
        formInLightDom: false,
        fields: ["name", "email", "phone", "message"],
        honeypot: { hidden: "true", tabindex: "-1", offscreen: true },
        title: "Get in touch",
      });

      const email = `widget-lead-${Date.now()}@shop.test`;
      const widget = page.locator("[data-gatehouse-widget]");
      await widget.locator('input[name="name"]').fill("Wanda Widget");
      await widget.locator('input[name="email"]').fill(email);
      await widget.locator('textarea[name="message"]').fill("The kitchen sink drips. Can you come Tuesday?");
      // A person takes longer than the minimum fill time (WIDGET_MIN_FILL_MS, 1.5 s); a script
      // submitting at once is refused, as the next test shows.
      await page.waitForTimeout(1600);
      await widget.locator('button[type="submit"]').click();
      const status = widget.locator(".status.ok");
      await status.waitFor({ state: "visible", timeout: 15_000 });
      assert.equal(await status.textContent(), "Thanks! We'll be in touch soon.");
      assert.equal(await widget.locator('input[name="email"]').inputValue(), "", "the form resets after success");

      mkdirSync(SCREENSHOTS, { recursive: true });
      const shot = join(SCREENSHOTS, "widget.png");
      await widget.screenshot({ path: shot });
      assert.ok(statSync(shot).size > 2000, "a real image was written");

      // The lead is in D1, for acme, from the widget, stamped with the page's exact origin.
      const rows = w.d1(`SELECT client_id, name, email, message, source, origin FROM contacts WHERE email = '${email}'`);
      assert.deepEqual(rows, [{
        client_id: acmeId,
        name: "Wanda Widget",
        email,
        message: "The kitchen sink drips. Can you come Tuesday?",
        source: "widget",
        origin,
      }]);
      // And acme's admin sees it through the API.
      const list = await w.request("GET", `/api/clients/${acmeId}/contacts?limit=100`, { token: acmeToken });
      assert.equal(list.status, 200, list.text);
      const seen = list.json.items.filter((c) => c.email === email);
      assert.equal(seen.length, 1);
      assert.equal(seen[0].source, "widget");
      assert.equal(seen[0].origin, origin);

      assert.deepEqual(widgetMessages(consoleMessages), [], "no widget warning on a verified origin");
      assert.deepEqual(consoleMessages.filter((m) => m.type === "error"), [], "no console errors (CORS or otherwise)");
    } finally {
      await context.close();
    }
  });

  test("an instant submit is refused with a message, and a filled honeypot stores nothing", async () => {
    const { context, page } = await openPage();
    try {
      await page.goto(`http://shop.localhost:${pagePort}/`);
      const widget = page.locator("[data-gatehouse-widget]");
      await widget.locator('input[name="name"]').waitFor({ state: "visible", timeout: 15_000 });
      const email = `bot-${Date.now()}@shop.test`;
      await widget.locator('input[name="name"]').fill("Speedy Bot");
      await widget.locator('input[name="email"]').fill(email);
      await widget.locator('button[type="submit"]').click();
      const error = widget.locator(".status.error");
      await error.waitFor({ state: "visible", timeout: 15_000 });
      assert.match(await error.textContent(), /faster than a person/);
      // A bot that fills every field, the hidden one included, is told "thanks" and stored nowhere.
      await widget.locator('input[name="website"]').evaluate((el) => { el.value = "http://spam.example"; });
      await page.waitForTimeout(1600);
      await widget.locator('button[type="submit"]').click();
      await widget.locator(".status.ok").waitFor({ state: "visible", timeout: 15_000 });
      assert.equal(w.d1(`SELECT count(*) AS n FROM contacts WHERE email = '${email}'`)[0].n, 0);
    } finally {
      await context.close();
    }
  });

  test("on an unverified origin the widget renders nothing and logs exactly one console warning that says why", async () => {
    const { context, page, consoleMessages, responses } = await openPage();
    try {
      const origin = `http://evil.localhost:${pagePort}`;
      const warned = page.waitForEvent("console", { predicate: (m) => m.text().startsWith(WIDGET_PREFIX), timeout: 15_000 });
      await page.goto(`${origin}/`);
      await warned;
      await page.waitForTimeout(1000); // room for a second warning, or a late render, to show up
      assert.equal(await page.locator("[data-gatehouse-widget]").count(), 0, "no widget element");
      const script = responses.find((r) => r.url.endsWith("/widget.js"));
      assert.equal(script?.status, 200, "the script itself loaded; the gate refused the origin");
      const mine = widgetMessages(consoleMessages);
      assert.equal(mine.length, 1, JSON.stringify(consoleMessages));
      assert.equal(mine[0].type, "warning");
      assert.ok(mine[0].text.includes(origin), mine[0].text);
      assert.match(mine[0].text, /not shown/);
      assert.match(mine[0].text, /not a verified domain/);
      const count = w.d1(`SELECT count(*) AS n FROM contacts WHERE origin = '${origin}'`)[0].n;
      assert.equal(count, 0);
    } finally {
      await context.close();
    }
  });

  test("a script tag without data-key renders nothing and logs one warning about the key", async () => {
    const { context, page, consoleMessages } = await openPage();
    try {
      const warned = page.waitForEvent("console", { predicate: (m) => m.text().startsWith(WIDGET_PREFIX), timeout: 15_000 });
      await page.goto(`http://shop.localhost:${pagePort}/no-key`);
      await warned;
      await page.waitForTimeout(500);
      assert.equal(await page.locator("[data-gatehouse-widget]").count(), 0);
      const mine = widgetMessages(consoleMessages);
      assert.equal(mine.length, 1, JSON.stringify(consoleMessages));
      assert.equal(mine[0].type, "warning");
      assert.match(mine[0].text, /data-key/);
    } finally {
      await context.close();
    }
  });
});

describe("the widget's Book tab in headless Chromium", () => {
  test("it wears acme's orange and name, books a free slot, and the appointment is in D1 at the right UTC instant", async () => {
    const { context, page } = await openPage();
    try {
      await page.goto(`http://shop.localhost:${pagePort}/`);
      await page.waitForSelector("[data-gatehouse-widget]", { state: "attached", timeout: 15_000 });
      const widget = page.locator("[data-gatehouse-widget]");
      // acme's seeded primary colour is #ea580c: the submit button and the selected tab wear it.
      const colours = await page.evaluate(() => {
        const root = document.querySelector("[data-gatehouse-widget]").shadowRoot;
        const bg = (sel) => getComputedStyle(root.querySelector(sel)).backgroundColor;
        return { submit: bg('form[part="form"] button[type="submit"]'), tab: bg('[role="tab"][aria-selected="true"]'), name: root.querySelector(".brand span").textContent };
      });
      assert.deepEqual(colours, { submit: "rgb(234, 88, 12)", tab: "rgb(234, 88, 12)", name: "Acme Plumbing" });

      await widget.locator('[role="tab"]', { hasText: "Book" }).click();
      const service = widget.locator('select[name="service"]');
      await service.locator("option").first().waitFor({ state: "attached", timeout: 15_000 });
      assert.deepEqual(await service.locator("option").allTextContents(), ["Emergency call-out (90 min)", "Plumbing inspection (60 min)"]);
      // Wednesday 2027-06-09 in New York (EDT): Dana works 08:00-16:00 and is the only one offering call-outs.
      await widget.locator('input[name="date"]').fill("2027-06-09");
      const first = widget.locator('.slots button').first();
      await first.waitFor({ state: "visible", timeout: 15_000 });
      assert.equal(await first.textContent(), "08:00 · Dana Ortiz");
      assert.equal(await widget.locator(".slots button").count(), 5, "08:00, 09:30, 11:00, 12:30, 14:00 (90 min on the grid)");
      mkdirSync(SCREENSHOTS, { recursive: true });
      await widget.screenshot({ path: join(SCREENSHOTS, "widget-book.png") });
      await first.click();
      const email = `booker-${Date.now()}@shop.test`;
      await widget.locator('input[name="b-name"]').fill("Bo Booker");
      await widget.locator('input[name="b-email"]').fill(email);
      await widget.locator('input[name="b-phone"]').fill("+1 555 0199");
      await widget.screenshot({ path: join(SCREENSHOTS, "widget-book-form.png") });
      await page.waitForTimeout(1600); // a person's fill time, above WIDGET_MIN_FILL_MS
      await widget.locator('form[part="booking"] button[type="submit"]').click();
      // Whatever the answer, the status line says it; it must be the confirmation.
      await page.waitForFunction(() => {
        const s = document.querySelector("[data-gatehouse-widget]").shadowRoot.querySelector('form[part="booking"] .status');
        return s && /Booked|error/.test(s.textContent + " " + s.className);
      }, null, { timeout: 15_000 });
      const said = widget.locator('form[part="booking"] .status');
      assert.equal(await said.textContent(), "Booked for 2027-06-09 08:00. See you then!");
      assert.ok(statSync(join(SCREENSHOTS, "widget-book.png")).size > 2000);

      const rows = w.d1(`SELECT a.starts_at, a.ends_at, a.source, a.status, c.email, c.origin FROM appointments a JOIN contacts c ON c.id = a.contact_id WHERE c.email = '${email}'`);
      assert.deepEqual(rows, [{
        starts_at: Date.parse("2027-06-09T12:00:00Z"), ends_at: Date.parse("2027-06-09T13:30:00Z"),
        source: "widget", status: "scheduled", email, origin: `http://shop.localhost:${pagePort}`,
      }]);
      // The slot is gone from the list the widget now shows.
      await page.waitForFunction(() => {
        const root = document.querySelector("[data-gatehouse-widget]").shadowRoot;
        return [...root.querySelectorAll(".slots button")].every((b) => !b.textContent.startsWith("08:00"));
      }, null, { timeout: 15_000 });
    } finally {
      await context.close();
    }
  });

  test("a booking through the gate is refused from an unverified origin and for a taken slot", async () => {
    const evil = await w.request("GET", `/api/widget/v1/services?key=${w.keys.acme}`, { headers: { origin: "https://evil.example" } });
    assert.equal(evil.status, 403);
    // Its own client address, so this test does not spend the page tests' per-IP allowance.
    const headers = { origin: `http://shop.localhost:${pagePort}`, "content-type": "application/json", "cf-connecting-ip": "203.0.113.7" };
    const services = await w.request("GET", `/api/widget/v1/services?key=${w.keys.acme}`, { headers });
    assert.equal(services.status, 200, services.text);
    const inspection = services.json.items.find((s) => s.name === "Plumbing inspection");
    const day = await w.request("GET", `/api/widget/v1/availability?key=${w.keys.acme}&service=${inspection.id}&date=2027-06-10`, { headers });
    const slot = day.json.slots[0];
    const body = (email) => JSON.stringify({ service_id: inspection.id, staff_id: slot.staff_id, starts_at: slot.starts_at, name: "Gate Test", email, elapsed_ms: 5000 });
    const one = await w.request("POST", `/api/widget/v1/bookings?key=${w.keys.acme}`, { headers, body: body("gate-1@shop.test") });
    assert.equal(one.status, 201, one.text);
    const two = await w.request("POST", `/api/widget/v1/bookings?key=${w.keys.acme}`, { headers, body: body("gate-2@shop.test") });
    assert.equal(two.status, 409, two.text);
    const bot = await w.request("POST", `/api/widget/v1/bookings?key=${w.keys.acme}`, { headers, body: JSON.stringify({ ...JSON.parse(body("bot@shop.test")), website: "http://spam.example", starts_at: day.json.slots[1].starts_at }) });
    assert.equal(bot.status, 202, "a filled honeypot answers as if accepted");
    assert.equal(w.d1("SELECT count(*) AS n FROM contacts WHERE email IN ('gate-2@shop.test', 'bot@shop.test')")[0].n, 0);
  });
});

describe("a signed visitor identity", () => {
  test("is trusted through the gate only when signed with the client's encrypted widget secret", async () => {
    const secret = "e2e-widget-secret-0123456789";
    const put = await w.request("PUT", `/api/clients/${acmeId}/settings`, { token: acmeToken, json: { widget: { identity_secret: secret } } });
    assert.equal(put.status, 200, put.text);
    const sign = (user, email, expires, key = secret) => ({
      user_id: user, email, expires, signature: crypto.createHmac("sha256", key).update(`${user}\n${email}\n${expires}`).digest("hex"),
    });
    const headers = { origin: `http://shop.localhost:${pagePort}`, "content-type": "application/json", "cf-connecting-ip": "203.0.113.8" };
    const later = Math.floor(Date.now() / 1000) + 600;
    const post = (email, identity) => w.request("POST", `/api/widget/v1/leads?key=${w.keys.acme}`, {
      headers, body: JSON.stringify({ name: "Visitor", email, elapsed_ms: 5000, identity }),
    });
    const ok = await post("typed@shop.test", sign("cust-1", "signed@shop.test", later));
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.identity, "verified");
    assert.deepEqual(w.d1("SELECT email, external_user_id FROM contacts WHERE external_user_id = 'cust-1'"), [{ email: "signed@shop.test", external_user_id: "cust-1" }]);
    for (const [email, identity] of [
      ["forged@shop.test", sign("cust-2", "forged@shop.test", later, "not the secret")],
      ["expired@shop.test", sign("cust-3", "expired@shop.test", Math.floor(Date.now() / 1000) - 5)],
    ]) {
      const r = await post(email, identity);
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.identity, "ignored");
      assert.deepEqual(w.d1(`SELECT external_user_id FROM contacts WHERE email = '${email}'`), [{ external_user_id: null }]);
    }
  });
});

describe("the widget's size", () => {
  test("widget.js gzips (level 9) to under 10 KB, both the source and what the Worker serves", async () => {
    const source = readFileSync(join(ROOT, "widget", "widget.js"));
    const gz = gzipSync(source, { level: 9 }).length;
    assert.ok(gz < 10 * 1024, `widget/widget.js is ${gz} bytes gzipped`);
    const served = await w.request("GET", "/widget.js");
    assert.equal(served.status, 200);
    assert.match(served.headers["content-type"], /javascript/);
    const servedGz = gzipSync(served.bytes, { level: 9 }).length;
    assert.ok(servedGz < 10 * 1024, `served /widget.js is ${servedGz} bytes gzipped`);
    console.log(`# widget.js: ${source.length} bytes, ${gz} bytes gzipped (served: ${served.bytes.length} / ${servedGz})`);
  });
});
