// Identity under a real wrangler dev: self-serve signup (Turnstile faked on loopback), the dev
// mailbox, invitations resent and revoked, the invitation's accept page on the client's portal in
// headless Chromium, MFA enrolment that a tenant requires, and the per-IP cap on mail-sending and
// token-spending routes.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startWorker, testSecrets, errorCode, startFakeTurnstile, totp, ROOT, launchChromium } from "./harness.mjs";

const SCREENSHOTS = join(ROOT, "tests", "e2e", "screenshots");
let w, turnstile, browser;
const tok = {};
const T = {};

before(async () => {
  turnstile = await startFakeTurnstile();
  w = await startWorker({
    vars: {
      ...testSecrets(),
      DEV_MAILBOX: "true",
      SIGNUP_ENABLED: "true",
      TURNSTILE_SECRET_KEY: "ts-test-secret",
      TURNSTILE_SITE_KEY: "ts-site-key",
      TURNSTILE_VERIFY_URL: turnstile.url,
    },
  });
  tok.acme = await w.login("admin@acme.test");
  tok.agency = await w.login("agency.admin@northwind.test");
  const clients = (await w.request("GET", "/api/clients", { token: tok.agency })).json.items;
  T.acme = clients.find((c) => c.slug === "acme").id;
  T.globex = clients.find((c) => c.slug === "globex").id;
  T.agency = clients[0].agency_id;
  browser = await launchChromium();
  mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await w?.stop();
  await turnstile?.stop();
});

// wrangler dev gives every request without one the same cf-connecting-ip, and the routes here
// share a per-IP cap: each test speaks from its own documentation address (RFC 5737).
let nextIp = 10;
function from() {
  const ip = `198.51.100.${nextIp++}`;
  const req = (method, path, opts = {}) => w.request(method, path, { ...opts, headers: { "cf-connecting-ip": ip, ...(opts.headers || {}) } });
  return { ip, req };
}

/** The newest mail to `to` in the dev mailbox (GET /api/dev/mailbox, on with DEV_MAILBOX=true). */
async function newestMail(to, subject) {
  const r = await w.request("GET", `/api/dev/mailbox?to=${encodeURIComponent(to)}`);
  assert.equal(r.status, 200, r.text);
  const mail = r.json.items.find((m) => !subject || m.subject === subject);
  assert.ok(mail, `a mail to ${to}${subject ? ` titled ${subject}` : ""}`);
  return mail;
}

async function openPage() {
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 }, extraHTTPHeaders: { "cf-connecting-ip": from().ip } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  return { context, page, problems };
}

describe("self-serve signup", () => {
  const email = "founder@newagency.test";
  const form = { agency_name: "New Agency", name: "Fay Founder", email, password: "a-long-founder-password" };

  test("needs a Turnstile token that the verify endpoint accepts", async () => {
    const { req } = from();
    const none = await req("POST", "/api/signup", { json: form });
    assert.equal(none.status, 403, none.text);
    assert.equal(errorCode(none), "turnstile_required");
    const failed = await req("POST", "/api/signup", { json: { ...form, turnstile_token: "fail" } });
    assert.equal(errorCode(failed), "turnstile_failed");
    assert.equal(w.d1(`SELECT count(*) AS n FROM users WHERE email = '${email}'`)[0].n, 0, "nothing was written");
    assert.ok(turnstile.requests.some((r) => r.form.response === "fail" && r.form.secret === "ts-test-secret"));
  });

  test("makes the agency and its admin; a mailed link must verify the address before it adds clients", async () => {
    const { req } = from();
    const r = await req("POST", "/api/signup", { json: { ...form, turnstile_token: "pass" } });
    assert.equal(r.status, 202, r.text);
    const mail = await newestMail(email, "Verify your address");
    const token = mail.body.match(/evf_[0-9a-z]{52}/)[0];
    const session = (await w.request("POST", "/api/auth/login", { json: { email, password: form.password } })).json;
    assert.equal(session.context.role, "agency_admin");
    const agency = session.context.tenant;
    const early = await w.request("POST", "/api/clients", { token: session.access_token, json: { name: "First Client", slug: "first-client" } });
    assert.equal(early.status, 403, early.text);
    assert.equal(errorCode(early), "email_unverified");
    const verified = await req("POST", "/api/signup/verify", { json: { token } });
    assert.equal(verified.status, 200, verified.text);
    assert.equal(verified.json.agency_id, agency);
    const client = await w.request("POST", "/api/clients", { token: session.access_token, json: { name: "First Client", slug: "first-client" } });
    assert.equal(client.status, 201, client.text);
    assert.equal(client.json.agency_id, agency);
    const again = await req("POST", "/api/signup/verify", { json: { token } });
    assert.equal(errorCode(again), "invalid_verification_token");
    const audit = w.d1(`SELECT action FROM audit_log WHERE tenant_id = '${agency}' ORDER BY at`).map((a) => a.action);
    assert.deepEqual(audit.filter((a) => a.startsWith("agency.")), ["agency.signed_up", "agency.email_verified"]);
  });

  test("a taken address gets the same answer, and its owner a mail instead of a second account", async () => {
    const { req } = from();
    const first = await req("POST", "/api/signup", { json: { ...form, turnstile_token: "pass" } });
    const fresh = await req("POST", "/api/signup", { json: { ...form, email: "someone.else@newagency.test", turnstile_token: "pass" } });
    assert.equal(first.status, 202);
    assert.equal(first.text, fresh.text, "taken or not, the answer is the same");
    const upper = await req("POST", "/api/signup", { json: { ...form, email: email.toUpperCase(), turnstile_token: "pass" } });
    assert.equal(upper.text, fresh.text);
    assert.equal(w.d1(`SELECT count(*) AS n FROM users WHERE email = '${email}'`)[0].n, 1);
    const mail = await newestMail(email);
    assert.equal(mail.subject, "Someone tried to sign up with your address");
  });
});

describe("invitations after they are sent", () => {
  const invite = async (email, role = "client_user") => {
    const r = await w.request("POST", "/api/users", { token: tok.acme, json: { email, tenant: T.acme, role } });
    assert.equal(r.status, 202, r.text);
    return r.json.invitation.id;
  };
  const linkIn = (body) => body.match(/http:\/\/acme\.localhost:\d+\/invite#token=(inv_[0-9a-z]{52})/);

  test("the mail links to the accept page on the client's portal host, with the token in the fragment", async () => {
    await invite("linked@example.test");
    const mail = await newestMail("linked@example.test");
    const link = linkIn(mail.body);
    assert.ok(link, mail.body);
    assert.ok(link[0].startsWith(`http://acme.localhost:${w.port}/`), "the port the request came to");
    assert.match(mail.body, /Acme Plumbing/);
  });

  test("a resend mails a fresh token and kills the old one; a revoke kills it with its own code", async () => {
    const email = "resent@example.test";
    const id = await invite(email);
    const old = linkIn((await newestMail(email)).body)[1];
    const resent = await w.request("POST", `/api/clients/${T.acme}/invitations/${id}/resend`, { token: tok.acme });
    assert.equal(resent.status, 202, resent.text);
    const fresh = linkIn((await newestMail(email)).body)[1];
    assert.notEqual(fresh, old);
    const { req } = from();
    const stale = await req("POST", "/api/invitations/accept", { json: { token: old } });
    assert.equal(stale.status, 409);
    assert.equal(errorCode(stale), "invitation_invalid");
    const revoked = await w.request("DELETE", `/api/clients/${T.acme}/invitations/${id}`, { token: tok.acme });
    assert.equal(revoked.status, 204, revoked.text);
    const dead = await req("POST", "/api/invitations/accept", { json: { token: fresh, name: "R", password: "a-long-new-password" } });
    assert.equal(dead.status, 409);
    assert.equal(errorCode(dead), "invitation_revoked");
    const list = await w.request("GET", `/api/clients/${T.acme}/invitations`, { token: tok.acme });
    assert.equal(list.json.items.find((i) => i.id === id).status, "revoked");
    const audit = w.d1(`SELECT action FROM audit_log WHERE target_id = '${id}' ORDER BY at`).map((a) => a.action);
    assert.deepEqual(audit, ["invitation.created", "invitation.resent", "invitation.revoked"]);
    assert.equal(w.d1(`SELECT count(*) AS n FROM users WHERE email = '${email}'`)[0].n, 0);
  });

  test("in Chromium: the link opens Acme's branded page, which creates the account and signs the person in", async () => {
    const email = "new.hire@example.test";
    await invite(email);
    const link = linkIn((await newestMail(email)).body);
    const { context, page, problems } = await openPage();
    try {
      await page.goto(link[0]);
      await page.waitForSelector("#gh-invite");
      const facts = await page.evaluate(() => ({
        name: document.querySelector(".gh-name").textContent,
        heading: document.querySelector("#gh-invite h2").textContent,
        primary: getComputedStyle(document.documentElement).getPropertyValue("--gh-primary").trim(),
        hash: location.hash,
        path: location.pathname,
      }));
      assert.equal(facts.name, "Acme Plumbing");
      assert.equal(facts.heading, "Join Acme Plumbing");
      assert.equal(facts.primary, "#ea580c", "Acme's seeded brand colour");
      assert.deepEqual([facts.path, facts.hash], ["/invite", ""], "the token left the address bar");
      await page.screenshot({ path: join(SCREENSHOTS, "portal-invite.png") });
      // No account yet: the first press asks for one.
      await page.click("#gh-invite button[type=submit]");
      await page.waitForSelector("#gh-invite-account:not([hidden])");
      await page.fill("#gh-invite-name", "Nia Hire");
      await page.fill("#gh-invite-password", "a-long-new-hire-password");
      await page.click("#gh-invite button[type=submit]");
      await page.waitForSelector("#gh-profile");
      const profile = await page.textContent("#gh-profile");
      assert.match(profile, /new\.hire@example\.test \(client_user\)/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
    const member = w.d1(`SELECT cu.role FROM client_users cu JOIN users u ON u.id = cu.user_id WHERE u.email = '${email}' AND cu.client_id = '${T.acme}'`);
    assert.deepEqual(member, [{ role: "client_user" }]);
    // The same link a second time says so, in the page.
    const again = await openPage();
    try {
      await again.page.goto(link[0]);
      await again.page.click("#gh-invite button[type=submit]");
      await again.page.waitForSelector("#gh-invite-status.gh-error");
      assert.match(await again.page.textContent("#gh-invite-status"), /already accepted/);
    } finally {
      await again.context.close();
    }
  });

  test("Globex's portal does not accept Acme's invitation", async () => {
    await invite("wrong.portal@example.test");
    const token = linkIn((await newestMail("wrong.portal@example.test")).body)[1];
    const { req } = from();
    const r = await req("POST", "/api/invitations/accept", { host: `globex.localhost:${w.port}`, json: { token, name: "W", password: "a-long-new-password" } });
    assert.equal(r.status, 409);
    assert.equal(errorCode(r), "invitation_invalid");
    const ok = await req("POST", "/api/invitations/accept", { host: `acme.localhost:${w.port}`, json: { token, name: "W", password: "a-long-new-password" } });
    assert.equal(ok.status, 200, ok.text);
  });
});

describe("a tenant that requires MFA", () => {
  test("in Chromium: a Globex member without MFA enrols at the portal login, saves recovery codes and lands on the dashboard", async () => {
    const put = await w.request("PUT", `/api/clients/${T.globex}`, { token: tok.agency, json: { require_mfa: true } });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.json.require_mfa, true);
    const { context, page, problems } = await openPage();
    try {
      await page.goto(`http://globex.localhost:${w.port}/`);
      await page.fill("#gh-email", "admin@globex.test");
      await page.fill("#gh-password", w.users["admin@globex.test"]);
      await page.click("#gh-login button[type=submit]");
      await page.waitForSelector("#gh-mfa-secret");
      const secret = (await page.textContent("#gh-mfa-secret")).trim();
      assert.match(await page.getAttribute("#gh-mfa-uri", "href"), new RegExp(`^otpauth://totp/.*secret=${secret}`));
      await page.screenshot({ path: join(SCREENSHOTS, "portal-mfa-enrol.png") });
      await page.fill("#gh-mfa-code", "000000");
      await page.click("#gh-mfa button[type=submit]");
      await page.waitForSelector("#gh-mfa-status.gh-error");
      await page.fill("#gh-mfa-code", totp(secret, Date.now() / 1000));
      await page.click("#gh-mfa button[type=submit]");
      await page.waitForSelector("#gh-recovery-codes");
      assert.equal(await page.locator("#gh-recovery-codes li").count(), 10);
      await page.click("#gh-recovery-done");
      await page.waitForSelector("#gh-profile");
      assert.match(await page.textContent("#gh-profile"), /admin@globex\.test/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
    assert.ok(w.d1("SELECT mfa_enabled_at FROM users WHERE email = 'admin@globex.test'")[0].mfa_enabled_at > 0);
    // The next login is the ordinary code check; an Acme member is not asked for anything.
    const next = await w.request("POST", "/api/auth/login", { json: { email: "admin@globex.test", password: w.users["admin@globex.test"] } });
    assert.equal(next.json.mfa_required, true, next.text);
    assert.equal(next.json.secret, undefined);
    const acme = await w.request("POST", "/api/auth/login", { json: { email: "viewer@acme.test", password: w.users["viewer@acme.test"] } });
    assert.ok(acme.json.access_token, acme.text);
  });
});

describe("per-IP caps (AUTH_IP_LIMITER, a Rate Limiting binding)", () => {
  test("25 invitation accepts from one address: past the cap the answer is 429, and another address still gets through", async () => {
    const from = (ip) => w.request("POST", "/api/invitations/accept", { headers: { "cf-connecting-ip": ip }, json: { token: "inv_guess" } });
    const codes = [];
    for (let i = 0; i < 25; i++) codes.push((await from("203.0.113.7")).status);
    const limited = codes.filter((s) => s === 429).length;
    // At most two 60-second windows are touched, each letting 10 through.
    assert.ok(limited >= 5, codes.join(","));
    assert.ok(codes.every((s) => s === 409 || s === 429), codes.join(","));
    const last = await from("203.0.113.7");
    assert.equal(last.status, 429);
    assert.equal(errorCode(last), "rate_limited");
    assert.equal(last.headers["retry-after"], "60");
    assert.equal((await from("203.0.113.8")).status, 409);
  });
});
