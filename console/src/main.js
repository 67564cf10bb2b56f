// The Gatehouse console: one app for platform staff, agencies and client admins. Its pages follow
// the session's scope and permissions (GET /api/me); the API enforces them regardless. Routes are
// in the fragment (#/clients, #/c/{id}/domains, ...), so the Worker serves one shell.
import { render } from "preact";
import { useState, useEffect } from "preact/hooks";
import { api, session, whenSignedOut } from "./api.js";
import { html, Form, Field, Section, ActionButton } from "./ui.js";
import { ClientPage, CLIENT_PAGES } from "./client.js";
import { Clients, NewClient, Templates, Members, AgencyBranding, AgencyDomains } from "./agency.js";
import { Agencies, PlatformAudit } from "./platform.js";

const shell = document.getElementById("gh-console");
const site = {
  kind: shell.dataset.site, tenantId: shell.dataset.tenantId, name: shell.dataset.name,
  apiOrigin: shell.dataset.apiOrigin || location.origin,
};
export { site };

/** Route segments that name a tenant must look like one: nothing from the fragment reaches an API
 * path unless it does (a crafted link cannot point a page at another endpoint). */
const ID = /^(cli|agy)_[0-9a-z]{1,64}$/;

/** The fragment's route segments: `#/c/cli_1/domains?x` → ["c", "cli_1", "domains"]. */
const segments = (hash) => hash.slice(1).split("?")[0].split("/").filter(Boolean);

function useRoute() {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/");
    addEventListener("hashchange", on);
    // The fragment may have changed between the first render and this effect (a link followed,
    // or a test's navigation, right after the shell appeared): that hashchange had no listener.
    on();
    return () => removeEventListener("hashchange", on);
  }, []);
  return segments(hash);
}

const go = (to) => { location.hash = to; };

/** Where a mailed agency invitation leads (`/invite#token=...` on the agency's portal): accept
 * it, creating the account when the address has none yet, then sign in. */
function Accept() {
  const [token] = useState(() => {
    const found = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    // The token leaves the address bar (and the history) at once.
    history.replaceState(null, "", "/invite");
    return found ? decodeURIComponent(found[1]) : null;
  });
  const [account, setAccount] = useState(false);
  const [done, setDone] = useState(null);
  const name = site.name || "the console";
  if (done) {
    return html`<main class="login"><${Section} title=${`You have joined ${name}`}>
      <p role="status">Your invitation is accepted${done.email ? ` for ${done.email}` : ""}.</p>
      <a class="button" href="/console">Sign in</a>
    <//></main>`;
  }
  return html`<main class="login"><${Section} title=${`Join ${name}`}>
    ${token ? html`<p>You have been invited to ${name}.</p>` : html`<p class="error" role="alert">This link is incomplete. Open the link from your invitation mail again.</p>`}
    ${account ? html`<p role="status">Create your account: choose your name and a password.</p>` : null}
    <${Form} id="accept" submit="Accept invitation" disabled=${!token} action=${async (f) => {
      const body = { token };
      if (account) { body.name = f.get("name"); body.password = f.get("password"); }
      try {
        setDone(await api("POST", "/api/invitations/accept", body));
      } catch (e) {
        if (e.code === "password_required") { setAccount(true); return; }
        throw e;
      }
    }}>
      ${account ? html`<${Field} label="Your name" name="name" required autocomplete="name" />
        <${Field} label="Choose a password (10 characters or more)" name="password" type="password" required minlength="10" autocomplete="new-password" />` : null}
    <//>
  <//></main>`;
}

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
  // Another tenant's session starts from its own home page: the signed-in view is left while the
  // new context loads, and comes back new, so nothing of the old scope (its page, its redirect)
  // carries over.
  const switchTo = (token) => { session.set(token); location.hash = ""; setMe(null); load(); };
  return html`<${Signed} me=${me} switchTo=${switchTo} signOut=${() => { session.clear(); setMe(null); go("#/"); }} />`;
}

function Login({ notice, onSignedIn }) {
  const [mfa, setMfa] = useState(null);
  const [codes, setCodes] = useState(null);
  const signedIn = (res) => {
    if (res.access_token) {
      session.set(res.access_token);
      // Enrolment at sign-in hands out recovery codes once: they are shown before going on.
      if (res.recovery_codes) setCodes(res.recovery_codes);
      else onSignedIn();
    } else if (res.mfa_token) {
      setMfa(res);
    }
  };
  if (codes) {
    return html`<main class="login"><${Section} title="Your recovery codes">
      <p>Each code signs you in once if you lose your authenticator. They are shown only now: keep them somewhere safe.</p>
      <ul class="codes">${codes.map((c) => html`<li><code>${c}</code></li>`)}</ul>
      <button type="button" onClick=${onSignedIn}>I have saved them</button>
    <//></main>`;
  }
  if (mfa) {
    return html`<main class="login"><${Section} title="Two-step verification">
      ${mfa.mfa_enrolment_required ? html`<p>Add this key to your authenticator app, then enter its code.</p><p><code>${mfa.secret}</code></p>`
        : html`<p>Enter the code from your authenticator app, or a recovery code.</p>`}
      <${Form} id="mfa" submit="Verify" action=${async (f) => {
        try {
          signedIn(await api("POST", "/api/auth/login/mfa", { mfa_token: mfa.mfa_token, code: String(f.get("code")).trim() }));
        } catch (e) {
          if (e.code === "invalid_mfa_token") setMfa(null);
          throw e;
        }
      }}>
        <${Field} label="Code" name="code" required autocomplete="one-time-code" />
      <//>
      <button type="button" class="secondary" onClick=${() => setMfa(null)}>Start again</button>
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

function Signed({ me, switchTo, signOut }) {
  const route = useRoute();
  const ctx = me.context;
  const perms = new Set(ctx.permissions || []);
  const can = (p) => perms.has(p) || perms.has("platform:admin");
  const scope = ctx.scope.kind;
  const agencyId = scope === "agency" ? ctx.scope.agency_id : null;
  const homeClient = scope === "client" ? ctx.scope.client_id : null;
  useEffect(() => {
    // The fragment is read again here, not taken from the render: a link followed (or a test's
    // navigation) between that render and this effect has already chosen a page, and sending it
    // to the home page instead would lose it.
    if (route.length === 0 && segments(location.hash).length === 0) {
      go(scope === "platform" ? "#/agencies" : scope === "agency" ? "#/clients" : `#/c/${homeClient}`);
    }
  }, [route.length]);

  let page = null;
  let support = null;
  let clientNav = null;
  const [head, a, b, c2] = route;
  if (a && !["new"].includes(a) && ["c", "agencies"].includes(head) && !ID.test(a)) {
    page = html`<p class="state error" role="alert">There is no such page.</p>`;
  } else if (head === "c" && a) {
    clientNav = a;
    page = html`<${ClientPage} id=${a} page=${b || ""} can=${can} />`;
    if (scope === "platform") support = a;
  } else if (scope === "platform" && head === "agencies" && a) {
    support = a;
    page = b === "templates" ? html`<${Templates} agencyId=${a} can=${can} />`
      : b === "clients" && c2 === "new" ? html`<${NewClient} agencyId=${a} go=${go} />`
      : html`<${Clients} agencyId=${a} can=${can} go=${go} />`;
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
  } else if (head === "domains" && agencyId) {
    page = html`<${AgencyDomains} agencyId=${agencyId} can=${can} />`;
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
          try {
            const res = await api("POST", "/api/auth/switch", { tenant: e.currentTarget.value });
            switchTo(res.access_token);
          } catch (err) {
            alert(err.message);
          }
        }}><option value="">Switch to…</option>${others.map((m) => html`<option value=${m.tenant}>${m.name || m.tenant} (${m.role})</option>`)}</select>` : null}
      <button type="button" class="secondary small" onClick=${signOut}>Sign out</button>
      <${ActionButton} action=${async () => { await api("POST", "/api/auth/logout-everywhere", {}); signOut(); }}>End all sessions<//>
    </header>
    ${support ? html`<div class="support" role="note"><strong>Support access.</strong> You are acting in ${support} as platform staff; every read and change is recorded in its audit log.</div>` : null}
    <nav class="side" aria-label="Console">
      ${scope === "platform" ? html`${link("#/agencies", "Agencies")}${link("#/audit", "Audit log")}` : null}
      ${scope === "agency" ? html`${link("#/clients", "Clients")}${link("#/templates", "Templates")}${can("users:manage") ? link("#/people", "Team") : null}${link("#/branding", "Agency branding")}${link("#/domains", "Portal domains")}` : null}
      ${clientNav ? html`<div class="sub"><span class="muted">Client</span>
        ${CLIENT_PAGES.filter(([, , p]) => can(p)).map(([slug, text]) => link(`#/c/${clientNav}${slug ? `/${slug}` : ""}`, text, !slug))}</div>` : null}
    </nav>
    <main class="content" id="main">${page}</main>
  </div>`;
}

render(site.kind === "agency" && location.pathname === "/invite" ? html`<${Accept} />` : html`<${App} />`, shell);
