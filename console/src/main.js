// The Gatehouse console: one app for platform staff, agencies and client admins. Its pages follow
// the session's scope and permissions (GET /api/me); the API enforces them regardless. Routes are
// in the fragment (#/clients, #/c/{id}/domains, ...), so the Worker serves one shell.
import { render } from "preact";
import { useState, useEffect } from "preact/hooks";
import { api, session, whenSignedOut } from "./api.js";
import { html, Form, Field, Section } from "./ui.js";
import { ClientPage, CLIENT_PAGES } from "./client.js";
import { Clients, NewClient, Templates, Members, AgencyBranding } from "./agency.js";
import { Agencies, PlatformAudit } from "./platform.js";

const shell = document.getElementById("gh-console");
const site = { kind: shell.dataset.site, clientId: shell.dataset.clientId, name: shell.dataset.name };

function useRoute() {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash.slice(1).split("?")[0].split("/").filter(Boolean).map(decodeURIComponent);
}

const go = (to) => { location.hash = to; };

function App() {
  const [me, setMe] = useState(null);
  const [notice, setNotice] = useState(null);
  const [loading, setLoading] = useState(!!session.token);
  const load = async () => {
    setLoading(true);
    try {
      setMe(await api("GET", "/api/me"));
    } catch (e) {
      if (e.status !== 401) setNotice(e.message);
      setMe(null);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => {
    whenSignedOut((msg) => { setMe(null); setNotice(msg); });
    if (session.token) load();
  }, []);
  if (loading && !me) return html`<p class="state" role="status">Loading…</p>`;
  if (!me) return html`<${Login} notice=${notice} onSignedIn=${() => { setNotice(null); load(); }} />`;
  return html`<${Signed} me=${me} reload=${load} signOut=${() => { session.clear(); setMe(null); go("#/"); }} />`;
}

function Login({ notice, onSignedIn }) {
  const [mfa, setMfa] = useState(null);
  const signedIn = (res) => {
    if (res.access_token) {
      session.set(res.access_token);
      onSignedIn();
    } else if (res.mfa_token) {
      setMfa(res);
    }
  };
  if (mfa) {
    return html`<main class="login"><${Section} title="Two-step verification">
      ${mfa.mfa_enrolment_required ? html`<p>Add this key to your authenticator app, then enter its code.</p><p><code>${mfa.secret}</code></p>`
        : html`<p>Enter the code from your authenticator app, or a recovery code.</p>`}
      <${Form} id="mfa" submit="Verify" action=${async (f) => signedIn(await api("POST", "/api/auth/login/mfa", { mfa_token: mfa.mfa_token, code: String(f.get("code")).trim() }))}>
        <${Field} label="Code" name="code" required autocomplete="one-time-code" inputmode="numeric" />
      <//>
    <//></main>`;
  }
  return html`<main class="login"><${Section} title=${site.name ? `Sign in to ${site.name}` : "Sign in to the console"}>
    ${notice ? html`<p class="error" role="alert">${notice}</p>` : null}
    <${Form} id="login" submit="Sign in" action=${async (f) => signedIn(await api("POST", "/api/auth/login", { email: f.get("email"), password: f.get("password") }))}>
      <${Field} label="Email" name="email" type="email" required autocomplete="username" />
      <${Field} label="Password" name="password" type="password" required autocomplete="current-password" />
    <//>
  <//></main>`;
}

function Signed({ me, reload, signOut }) {
  const route = useRoute();
  const ctx = me.context;
  const perms = new Set(ctx.permissions || []);
  const can = (p) => perms.has(p) || perms.has("platform:admin");
  const scope = ctx.scope.kind;
  const agencyId = scope === "agency" ? ctx.scope.agency_id : null;
  const homeClient = scope === "client" ? ctx.scope.client_id : null;
  useEffect(() => {
    if (route.length === 0) go(scope === "platform" ? "#/agencies" : scope === "agency" ? "#/clients" : `#/c/${homeClient}`);
  }, [route.length]);

  let page = null;
  let support = null;
  let clientNav = null;
  const [head, a, b] = route;
  if (head === "c" && a) {
    clientNav = a;
    page = html`<${ClientPage} id=${a} page=${b || ""} can=${can} />`;
    if (scope === "platform") support = a;
  } else if (scope === "platform" && head === "agencies" && a) {
    support = a;
    page = b === "templates" ? html`<${Templates} agencyId=${a} can=${can} />` : html`<${Clients} agencyId=${a} can=${can} go=${go} />`;
  } else if (scope === "platform" && head === "agencies") {
    page = html`<${Agencies} />`;
  } else if (scope === "platform" && head === "audit") {
    page = html`<${PlatformAudit} />`;
  } else if (head === "clients" && a === "new") {
    page = html`<${NewClient} agencyId=${agencyId} go=${go} />`;
  } else if (head === "clients") {
    page = html`<${Clients} agencyId=${agencyId} can=${can} go=${go} />`;
  } else if (head === "templates" && agencyId) {
    page = html`<${Templates} agencyId=${agencyId} can=${can} />`;
  } else if (head === "people" && agencyId) {
    page = html`<${Members} agencyId=${agencyId} can=${can} />`;
  } else if (head === "branding" && agencyId) {
    page = html`<${AgencyBranding} agencyId=${agencyId} can=${can} />`;
  } else if (route.length) {
    page = html`<p class="state error" role="alert">There is no such page.</p>`;
  }

  const others = (me.memberships || []).filter((m) => m.tenant !== ctx.tenant);
  const here = `#/${route.join("/")}`;
  const link = (href, text, exact) =>
    html`<a href=${href} aria-current=${here === href || (!exact && here.startsWith(`${href}/`)) ? "page" : null}>${text}</a>`;
  return html`<div class="layout">
    <header class="top">
      <a class="brand" href="#/">${site.name || "Gatehouse"}</a>
      <span class="who">${me.user.email} · ${ctx.role}</span>
      ${others.length && site.kind !== "client" ? html`<label class="sr-only" for="switch">Switch to</label>
        <select id="switch" onChange=${async (e) => {
          const res = await api("POST", "/api/auth/switch", { tenant: e.currentTarget.value });
          session.set(res.access_token);
          go("#/");
          reload();
        }}><option value="">Switch to…</option>${others.map((m) => html`<option value=${m.tenant}>${m.name || m.tenant} (${m.role})</option>`)}</select>` : null}
      <button type="button" class="secondary small" onClick=${signOut}>Sign out</button>
    </header>
    ${support ? html`<div class="support" role="note"><strong>Support access.</strong> You are acting in ${support} as platform staff; every read and change is recorded in its audit log.</div>` : null}
    <nav class="side" aria-label="Console">
      ${scope === "platform" ? html`${link("#/agencies", "Agencies")}${link("#/audit", "Audit log")}` : null}
      ${scope === "agency" ? html`${link("#/clients", "Clients")}${link("#/templates", "Templates")}${link("#/people", "Team")}${link("#/branding", "Agency branding")}` : null}
      ${clientNav ? html`<div class="sub"><span class="muted">Client</span>
        ${CLIENT_PAGES.filter(([, , p]) => can(p)).map(([slug, text]) => link(`#/c/${clientNav}${slug ? `/${slug}` : ""}`, text, !slug))}</div>` : null}
    </nav>
    <main class="content" id="main">${page}</main>
  </div>`;
}

render(html`<${App} />`, shell);
