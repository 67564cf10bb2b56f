// White-label portals in real headless Chromium against a real wrangler dev: each client's host
// wears its own name, logo and colors (with agency defaults inherited), the login form reaches a
// dashboard of that client's data only, another client's host refuses the login, an unknown host
// is a plain 404, and custom CSS applies to its own portal while hostile CSS is refused.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { mkdirSync, statSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { startWorker, testSecrets, errorCode, ROOT, launchChromium } from "./harness.mjs";

const SCREENSHOTS = join(ROOT, "tests", "e2e", "screenshots");

// ---- A real PNG, built by hand: signature, IHDR, one zlib IDAT, IEND, each chunk CRC'd. ----
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** An RGB PNG of `size`×`size`; `pixel(x, y)` returns [r, g, b]. */
function makePng(size, pixel) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // color type: truecolor RGB
  const raw = Buffer.alloc(size * (1 + size * 3));
  for (let y = 0; y < size; y++) {
    const row = y * (1 + size * 3);
    raw[row] = 0; // filter: none
    for (let x = 0; x < size; x++) raw.set(pixel(x, y), row + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0)),
  ]);
}
const hexRgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
const WHITE = [255, 255, 255];

const ACME = { name: "Acme Plumbing", color: "#e4572e", tagline: "Leaks fixed before lunch" };
const GLOBEX = { name: "Globex Dental", color: "#2e86ab", tagline: "Smiles, engineered" };
const AGENCY_EMAIL = "help@northwind.test";
// Acme: orange with a white square in the middle. Globex: blue with a white disc.
const ACME_LOGO = makePng(64, (x, y) => (x >= 20 && x < 44 && y >= 20 && y < 44 ? WHITE : hexRgb(ACME.color)));
const GLOBEX_LOGO = makePng(64, (x, y) => ((x - 31.5) ** 2 + (y - 31.5) ** 2 < 14 ** 2 ? WHITE : hexRgb(GLOBEX.color)));

let w;
let browser;
const tok = {};
const ids = {};
const branding = {};
const portal = (slug) => `http://${slug}.localhost:${w.port}`;

before(async () => {
  w = await startWorker({ vars: testSecrets() });
  tok.acme = await w.login("admin@acme.test");
  tok.globex = await w.login("admin@globex.test");
  tok.agency = await w.login("agency.admin@northwind.test");
  ids.acme = (await w.request("GET", "/api/me", { token: tok.acme })).json.context.tenant;
  ids.globex = (await w.request("GET", "/api/me", { token: tok.globex })).json.context.tenant;
  ids.agency = (await w.request("GET", "/api/me", { token: tok.agency })).json.context.tenant;

  // Branding through the API: the agency default first, then each client's own.
  const ag = await w.request("PUT", `/api/agencies/${ids.agency}/branding`, { token: tok.agency, json: { support_email: AGENCY_EMAIL } });
  assert.equal(ag.status, 200, ag.text);
  for (const [slug, b, logo] of [["acme", ACME, ACME_LOGO], ["globex", GLOBEX, GLOBEX_LOGO]]) {
    const put = await w.request("PUT", `/api/clients/${ids[slug]}/branding`, { token: tok[slug], json: { primary_color: b.color, tagline: b.tagline } });
    assert.equal(put.status, 200, put.text);
    const l = await w.request("POST", `/api/clients/${ids[slug]}/branding/logo`, { token: tok[slug], body: logo, headers: { "content-type": "image/png" } });
    assert.equal(l.status, 200, l.text);
    branding[slug] = l.json;
  }

  // Contacts for the dashboards: one by the API and one by the widget for acme, one for globex.
  const c = await w.request("POST", `/api/clients/${ids.acme}/contacts`, { token: tok.acme, json: { name: "Portal Pat", email: "pat@customer.test" } });
  assert.equal(c.status, 201, c.text);
  const lead = await w.request("POST", `/api/widget/v1/leads?key=${w.keys.acme}`, {
    headers: { origin: "http://shop.localhost:8080" }, json: { name: "Widget Wendy", email: "wendy@customer.test" },
  });
  assert.equal(lead.status, 201, lead.text);
  const g = await w.request("POST", `/api/clients/${ids.globex}/contacts`, { token: tok.globex, json: { name: "Globex Gina", email: "gina@globex-patient.test" } });
  assert.equal(g.status, 201, g.text);

  browser = await launchChromium();
  mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await w?.stop();
});

/** A fresh browser context and page that record console errors and failed requests. */
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 }, acceptDownloads: true });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  return { context, page, problems };
}

/** What the portal header shows, measured in the page. */
function headerFacts(page) {
  return page.evaluate(async () => {
    const img = document.querySelector("img.gh-logo");
    if (img && !img.complete) await new Promise((r) => { img.onload = r; img.onerror = r; });
    const px = (x, y) => {
      if (!img || !img.naturalWidth) return null;
      const c = document.createElement("canvas");
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext("2d");
      ctx.drawImage(img, 0, 0);
      return [...ctx.getImageData(x, y, 1, 1).data.slice(0, 3)];
    };
    const header = document.querySelector(".gh-header");
    return {
      title: document.title,
      name: document.querySelector(".gh-name")?.textContent,
      tagline: document.querySelector(".gh-tagline")?.textContent ?? null,
      footer: document.querySelector(".gh-footer")?.textContent,
      logoSrc: img?.getAttribute("src") ?? null,
      logoNatural: img ? [img.naturalWidth, img.naturalHeight] : null,
      logoCorner: px(2, 2),
      logoCenter: px(32, 32),
      primaryVar: getComputedStyle(document.documentElement).getPropertyValue("--gh-primary").trim(),
      borderTop: header ? getComputedStyle(header).borderTopColor : null,
      letterSpacing: getComputedStyle(document.querySelector(".gh-name")).letterSpacing,
      body: document.body.innerText,
    };
  });
}

const rgb = (hex) => `rgb(${hexRgb(hex).join(", ")})`;

describe("branding setup through the API", () => {
  test("each client's branding reads back its own color, tagline and logo, and the agency's support email as inherited", async () => {
    for (const [slug, b] of [["acme", ACME], ["globex", GLOBEX]]) {
      const r = await w.request("GET", `/api/clients/${ids[slug]}/branding`, { token: tok[slug] });
      assert.equal(r.status, 200, r.text);
      const e = r.json.effective;
      assert.deepEqual(e.primary_color, { value: b.color, source: "client" });
      assert.deepEqual(e.tagline, { value: b.tagline, source: "client" });
      assert.deepEqual(e.support_email, { value: AGENCY_EMAIL, source: "agency" });
      assert.equal(e.logo_file_id.source, "client");
      assert.match(e.logo_file_id.value, /^fil_/);
    }
    assert.notEqual(branding.acme.own.logo_file_id, branding.globex.own.logo_file_id);
  });

  test("the logos are served publicly at /assets/{id} as the exact PNG bytes uploaded", async () => {
    for (const [slug, logo] of [["acme", ACME_LOGO], ["globex", GLOBEX_LOGO]]) {
      const r = await w.request("GET", `/assets/${branding[slug].own.logo_file_id}`, { host: `${slug}.localhost:${w.port}` });
      assert.equal(r.status, 200);
      assert.equal(r.headers["content-type"], "image/png");
      assert.ok(r.bytes.equals(logo), `${slug} logo bytes differ`);
    }
  });
});

describe("branding assets", () => {
  test("a logo must be a real image: an .exe posing as PNG, SVG and HTML are refused 415", async () => {
    const exe = Buffer.concat([Buffer.from("MZ\x90\x00", "latin1"), crypto.randomBytes(256)]);
    for (const [type, body] of [["image/png", exe], ["image/svg+xml", Buffer.from("<svg onload=alert(1)/>")], ["text/html", Buffer.from("<b>x</b>")]]) {
      const r = await w.request("POST", `/api/clients/${ids.acme}/branding/logo`, { token: tok.acme, body, headers: { "content-type": type } });
      assert.equal(r.status, 415, `${type}: ${r.text}`);
      assert.equal(errorCode(r), "unsupported_media_type");
    }
    const r = await w.request("GET", `/api/clients/${ids.acme}/branding`, { token: tok.acme });
    assert.equal(r.json.own.logo_file_id, branding.acme.own.logo_file_id, "the logo is unchanged");
  });

  test("replacing a logo removes the old asset: its URL turns 404 and its row is gone", async () => {
    const old = branding.globex.own.logo_file_id;
    const l = await w.request("POST", `/api/clients/${ids.globex}/branding/logo`, { token: tok.globex, body: GLOBEX_LOGO, headers: { "content-type": "image/png" } });
    assert.equal(l.status, 200, l.text);
    assert.notEqual(l.json.own.logo_file_id, old);
    branding.globex = l.json;
    assert.equal((await w.request("GET", `/assets/${old}`)).status, 404);
    assert.deepEqual(w.d1(`SELECT id FROM files WHERE id = '${old}'`), []);
    assert.equal((await w.request("GET", `/assets/${l.json.own.logo_file_id}`)).status, 200);
  });

  test("a client may not reach another client's branding: acme's token on globex's branding → 404", async () => {
    for (const [method, path, opts] of [
      ["GET", `/api/clients/${ids.globex}/branding`, {}],
      ["PUT", `/api/clients/${ids.globex}/branding`, { json: { tagline: "pwned" } }],
      ["POST", `/api/clients/${ids.globex}/branding/logo`, { body: ACME_LOGO, headers: { "content-type": "image/png" } }],
    ]) {
      const r = await w.request(method, path, { token: tok.acme, ...opts });
      assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
    }
    const g = await w.request("GET", `/api/clients/${ids.globex}/branding`, { token: tok.globex });
    assert.equal(g.json.own.tagline, GLOBEX.tagline);
    assert.equal(g.json.own.logo_file_id, branding.globex.own.logo_file_id);
  });
});

describe("each portal wears its own branding", () => {
  for (const [slug, b, other] of [["acme", ACME, GLOBEX], ["globex", GLOBEX, ACME]]) {
    test(`${slug}'s portal shows its own name, a loaded logo with its own pixels, its primary color and the agency's support email`, async () => {
      const { context, page, problems } = await openPage();
      try {
        const resp = await page.goto(`${portal(slug)}/`);
        assert.equal(resp.status(), 200);
        await page.waitForSelector("#gh-login", { timeout: 15_000 });
        const f = await headerFacts(page);
        assert.equal(f.name, b.name);
        assert.equal(f.title, b.name);
        assert.equal(f.tagline, b.tagline);
        assert.equal(f.logoSrc, `/assets/${branding[slug].own.logo_file_id}`);
        assert.deepEqual(f.logoNatural, [64, 64], "the logo actually loaded");
        assert.deepEqual(f.logoCorner, hexRgb(b.color), "logo corner is the tenant's color");
        assert.deepEqual(f.logoCenter, WHITE, "logo center is white");
        assert.equal(f.primaryVar, b.color);
        assert.equal(f.borderTop, rgb(b.color));
        assert.ok(f.footer.includes(AGENCY_EMAIL), `footer: ${f.footer}`);
        assert.ok(!f.body.includes(other.name) && !f.body.includes(other.tagline), "nothing of the other tenant");
        assert.deepEqual(problems, []);
        await page.screenshot({ path: join(SCREENSHOTS, `portal-${slug}-login.png`), fullPage: true });
        assert.ok(statSync(join(SCREENSHOTS, `portal-${slug}-login.png`)).size > 5000);
      } finally {
        await context.close();
      }
    });
  }

  test("an unknown host gets a plain 404 page that names neither tenant", async () => {
    const { context, page } = await openPage();
    try {
      for (const host of [`http://nobody.localhost:${w.port}/`, `http://acme.evil.localhost:${w.port}/`, `http://nobody.localhost:${w.port}/dashboard`]) {
        const resp = await page.goto(host);
        assert.equal(resp.status(), 404, host);
        const text = await page.evaluate(() => document.body.innerText);
        assert.match(text, /Not found/);
        assert.doesNotMatch(text, /Acme|Globex|Northwind|Leaks|Smiles/i, host);
        assert.equal(await page.locator("#gh-portal, img.gh-logo, #gh-login").count(), 0, host);
      }
    } finally {
      await context.close();
    }
  });
});

describe("login and dashboard", () => {
  test("admin@acme.test signs in through the form on acme's host and sees profile, files and only acme's contacts", async () => {
    const { context, page, problems } = await openPage();
    try {
      await page.goto(`${portal("acme")}/`);
      await page.fill("#gh-email", "admin@acme.test");
      await page.fill("#gh-password", w.users["admin@acme.test"]);
      await page.click("#gh-login button[type=submit]");
      await page.waitForSelector("#gh-profile", { timeout: 15_000 });
      await page.waitForSelector("#gh-files");
      await page.waitForSelector("#gh-contacts");
      const profile = await page.textContent("#gh-profile");
      assert.ok(profile.includes(ACME.name), profile);
      assert.ok(profile.includes("admin@acme.test (client_admin)"), profile);
      assert.ok(profile.includes("office@acme.test"), profile);

      const contacts = page.locator("#gh-contacts tbody");
      await contacts.locator("tr", { hasText: "Portal Pat" }).waitFor({ timeout: 15_000 });
      const rows = await contacts.locator("tr").allTextContents();
      assert.ok(rows.some((r) => r.includes("Portal Pat") && r.includes("pat@customer.test") && r.includes("api")), rows.join("\n"));
      assert.ok(rows.some((r) => r.includes("Widget Wendy") && r.includes("widget")), rows.join("\n"));
      assert.ok(!rows.some((r) => r.includes("Globex Gina")), "globex's contact must not show");

      // Upload through the form; it appears in the list and is stored for acme.
      const content = Buffer.from(`uploaded from the portal ${crypto.randomUUID()}\n`);
      await page.setInputFiles("#gh-file", { name: "portal-notes.txt", mimeType: "text/plain", buffer: content });
      await page.click("#gh-upload button[type=submit]");
      await page.locator("#gh-files-status.gh-ok").waitFor({ timeout: 15_000 });
      assert.equal(await page.textContent("#gh-files-status"), "Uploaded portal-notes.txt");
      const row = page.locator("#gh-files tbody tr", { hasText: "portal-notes.txt" });
      await row.waitFor({ timeout: 15_000 });
      assert.match(await row.textContent(), /text\/plain/);
      const fileId = await row.getAttribute("data-file-id");
      const stored = w.d1(`SELECT tenant_id, object_key, sha256, size FROM files WHERE id = '${fileId}'`);
      assert.deepEqual(stored, [{
        tenant_id: ids.acme, object_key: `tenants/${ids.acme}/uploads/${fileId}`,
        sha256: crypto.createHash("sha256").update(content).digest("hex"), size: content.length,
      }]);

      // The Download button signs a URL and the browser downloads the same bytes.
      const [download] = await Promise.all([page.waitForEvent("download", { timeout: 15_000 }), row.locator("button").click()]);
      assert.equal(download.suggestedFilename(), "portal-notes.txt");
      assert.ok(readFileSync(await download.path()).equals(content), "downloaded bytes differ");

      await page.waitForTimeout(300);
      await page.screenshot({ path: join(SCREENSHOTS, "portal-acme-dashboard.png"), fullPage: true });
      // A navigation that turns into a download is reported as an aborted request; nothing else may fail.
      const downloadAbort = (p) => /^requestfailed: \S+\/api\/files\/signed\/\S+ net::ERR_ABORTED$/.test(p);
      assert.deepEqual(problems.filter((p) => !downloadAbort(p)), []);
    } finally {
      await context.close();
    }
  });

  test("the same acme login on globex's host is refused with the no-access message and no dashboard", async () => {
    const { context, page } = await openPage();
    try {
      await page.goto(`${portal("globex")}/`);
      await page.fill("#gh-email", "admin@acme.test");
      await page.fill("#gh-password", w.users["admin@acme.test"]);
      const answer = page.waitForResponse((r) => r.url().endsWith("/api/auth/login"));
      await page.click("#gh-login button[type=submit]");
      assert.equal((await answer).status(), 403);
      const status = page.locator("#gh-login-status.gh-error");
      await status.waitFor({ timeout: 15_000 });
      assert.equal(await status.textContent(), "This account has no access to this portal.");
      await page.waitForTimeout(500);
      assert.equal(await page.locator("#gh-profile, #gh-files, #gh-contacts").count(), 0);
      const stored = await page.evaluate(() => Object.keys(sessionStorage));
      assert.deepEqual(stored, [], "no token kept");
      const text = await page.evaluate(() => document.body.innerText);
      assert.ok(!text.includes(ACME.name) && text.includes(GLOBEX.name));
    } finally {
      await context.close();
    }
  });

  test("a wrong password on acme's host shows the credentials error and no dashboard", async () => {
    const { context, page } = await openPage();
    try {
      await page.goto(`${portal("acme")}/`);
      await page.fill("#gh-email", "admin@acme.test");
      await page.fill("#gh-password", "not-the-password");
      await page.click("#gh-login button[type=submit]");
      const status = page.locator("#gh-login-status.gh-error");
      await status.waitFor({ timeout: 15_000 });
      assert.equal(await status.textContent(), "email or password is incorrect");
      assert.equal(await page.locator("#gh-profile").count(), 0);
    } finally {
      await context.close();
    }
  });
});

describe("custom CSS", () => {
  const put = (slug, custom_css) => w.request("PUT", `/api/clients/${ids[slug]}/branding`, { token: tok[slug], json: { custom_css } });

  test("hostile CSS is refused with 422 invalid_css and the stored CSS is unchanged", async () => {
    const before = (await w.request("GET", `/api/clients/${ids.acme}/branding`, { token: tok.acme })).json.own.custom_css;
    const hostile = [
      "@import url('https://evil.test/x.css');",
      "@import 'x.css'; .gh-name { color: red }",
      "</style><script>alert(1)</script>",
      ".gh-name { color: red } </style><script>alert(document.cookie)</script>",
      ".gh-name { background: url(https://evil.test/track.gif) }",
      `.gh-name { background: url(/assets/${branding.globex.own.logo_file_id}) }`,
      ".gh-name { width: expression(alert(1)) }",
      ".gh-name { content: '\\3c/style>' }",
    ];
    for (const css of hostile) {
      const r = await put("acme", css);
      assert.equal(r.status, 422, `${css}: ${r.status} ${r.text}`);
      assert.equal(errorCode(r), "invalid_css", css);
    }
    const after = (await w.request("GET", `/api/clients/${ids.acme}/branding`, { token: tok.acme })).json.own.custom_css;
    assert.equal(after, before);
  });

  test("url() to the tenant's own logo is allowed", async () => {
    const r = await put("acme", `.gh-footer { background-image: url(/assets/${branding.acme.own.logo_file_id}) }`);
    assert.equal(r.status, 200, r.text);
  });

  test("custom CSS set for acme applies on acme's portal only, scoped under the portal root", async () => {
    const r = await put("acme", ".gh-name { letter-spacing: 3px }");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.own.custom_css.trim(), ".gh-portal .gh-name { letter-spacing: 3px }");
    const { context, page, problems } = await openPage();
    try {
      await page.goto(`${portal("acme")}/`);
      await page.waitForSelector("#gh-login");
      assert.equal((await headerFacts(page)).letterSpacing, "3px");
      await page.goto(`${portal("globex")}/`);
      await page.waitForSelector("#gh-login");
      assert.equal((await headerFacts(page)).letterSpacing, "normal");
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
    const html = await w.request("GET", "/", { host: `acme.localhost:${w.port}` });
    assert.equal(html.status, 200);
    assert.match(html.text, /<style id="gh-custom-css">\.gh-portal \.gh-name \{ letter-spacing: 3px \}\s*<\/style>/);
    assert.doesNotMatch(html.text, /<script>alert/);
  });
});

describe("escaping", () => {
  test("a tagline full of markup is shown as text on the portal, and runs nothing", async () => {
    const evil = `<img src=x onerror="window.__xss=1"> Leaks & "quotes" </p><script>window.__xss=2</script>`;
    const put = await w.request("PUT", `/api/clients/${ids.acme}/branding`, { token: tok.acme, json: { tagline: evil } });
    assert.equal(put.status, 200, put.text);
    const { context, page } = await openPage();
    try {
      await page.goto(`${portal("acme")}/`);
      await page.waitForSelector("#gh-login");
      assert.equal(await page.textContent(".gh-tagline"), evil);
      assert.equal(await page.locator(".gh-header img").count(), 1, "only the logo is an image");
      assert.equal(await page.locator("#gh-portal script").count(), 0);
      assert.equal(await page.evaluate(() => window.__xss), undefined);
    } finally {
      await context.close();
      await w.request("PUT", `/api/clients/${ids.acme}/branding`, { token: tok.acme, json: { tagline: ACME.tagline } });
    }
  });
});
