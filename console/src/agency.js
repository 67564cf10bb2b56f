// The agency's pages: its clients with status, plan and usage, creating a client (from a template),
// templates, members and invitations, its own branding and its portal's domains.
import { useState, useEffect, useRef } from "preact/hooks";
import { api, all } from "./api.js";
import { html, useData, Loaded, Form, Field, Select, Meter, Badge, Section, ActionButton, when } from "./ui.js";
import { Branding, DomainList } from "./client.js";

/** Calls `onSeen` once `ref`'s element first scrolls into view. */
function useSeen(ref) {
  const [seen, setSeen] = useState(false);
  useEffect(() => {
    if (seen || !ref.current) return undefined;
    const io = new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) setSeen(true); });
    io.observe(ref.current);
    return () => io.disconnect();
  }, [seen]);
  return seen;
}

/** A client row's meters, loaded on their own once the row is on screen, so a long list shows at
 * once and asks only for the usage someone can see. */
function RowUsage({ id }) {
  const ref = useRef(null);
  const seen = useSeen(ref);
  return html`<div ref=${ref}>${seen ? html`<${Usage} id=${id} />` : html`<span class="muted">…</span>`}</div>`;
}

function Usage({ id }) {
  const u = useData(`/api/clients/${id}/usage`, [id]);
  if (!u.data) return html`<span class="muted">${u.error ? "—" : "…"}</span>`;
  return html`<div class="row-meters">
    <${Meter} label="Contacts" used=${u.data.contacts?.used} limit=${u.data.contacts?.limit} />
    <${Meter} label="Seats" used=${u.data.seats?.used} limit=${u.data.seats?.limit} />
  </div>`;
}

export function Clients({ agencyId, can, go }) {
  const list = useData(() => all(agencyId ? `/api/clients?agency_id=${agencyId}` : "/api/clients"), [agencyId]);
  const [q, setQ] = useState("");
  const manage = can("clients:manage");
  const setStatus = async (c, status) => {
    if (status === "suspended" && !confirm(`Suspend ${c.name}? Its members, portal and widget stop until it is reactivated.`)) return;
    await api("PUT", `/api/clients/${c.id}`, { status });
    list.reload();
  };
  const newHref = agencyId && !location.hash.startsWith("#/clients") ? `#/agencies/${agencyId}/clients/new` : "#/clients/new";
  return html`<${Section} title="Clients" actions=${can("clients:create") ? html`<a class="button" href=${newHref}>New client</a>` : null}>
    <div class="field search"><label for="client-search">Search clients</label>
      <input id="client-search" type="search" placeholder="Name or slug" value=${q} onInput=${(e) => setQ(e.currentTarget.value.toLowerCase())} /></div>
    <${Loaded} state=${list} empty="No clients yet.">${(items) => {
      const shown = items.filter((c) => !q || c.name.toLowerCase().includes(q) || c.slug.includes(q));
      if (!shown.length) return html`<p class="state empty">No client matches “${q}”.</p>`;
      return html`<table class="table clients">
        <thead><tr><th scope="col">Client</th><th scope="col">Status</th><th scope="col">Plan</th><th scope="col">Usage</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${shown.map((c) => html`<tr data-client=${c.slug}>
          <td><a href=${`#/c/${c.id}`}>${c.name}</a><br /><span class="muted">${c.slug}</span></td>
          <td><${Badge} status=${c.effective_status} /></td>
          <td>${c.plan}</td>
          <td><${RowUsage} id=${c.id} /></td>
          <td class="row-actions"><div class="actions-row">
            <button type="button" class="secondary small" aria-label=${`Open ${c.name}`} onClick=${() => go(`#/c/${c.id}`)}>Open</button>
            ${manage && c.effective_status === "active" ? html`<${ActionButton} class="danger small" label=${`Suspend ${c.name}`} action=${() => setStatus(c, "suspended")}>Suspend<//>` : null}
            ${manage && c.status === "suspended" && !c.deleted_at ? html`<${ActionButton} label=${`Reactivate ${c.name}`} action=${() => setStatus(c, "active")}>Reactivate<//>` : null}
          </div></td>
        </tr>`)}</tbody>
      </table>`;
    }}<//>
  <//>`;
}

export function NewClient({ agencyId, go }) {
  const templates = useData(() => (agencyId ? all(`/api/agencies/${agencyId}/templates`) : Promise.resolve([])), [agencyId]);
  return html`<${Section} title="New client">
    <${Loaded} state=${templates}>${(tpls) => html`<${Form} id="new-client" submit="Create client" action=${async (f) => {
      const body = { name: f.get("name"), slug: f.get("slug") };
      if (f.get("template_id")) body.template_id = f.get("template_id");
      if (f.get("email")) body.email = f.get("email");
      // Platform staff name the agency; an agency's own session is its agency already.
      const c = await api("POST", location.hash.startsWith("#/agencies/") ? `/api/clients?agency_id=${agencyId}` : "/api/clients", body);
      go(`#/c/${c.id}`);
    }}>
      <${Field} label="Name" name="name" required />
      <${Field} label="Slug" name="slug" required pattern="[a-z0-9]+(-[a-z0-9]+)*" hint="Lowercase letters, digits and dashes: the portal lives at {slug}.your portal domain." />
      <${Field} label="Email" name="email" type="email" />
      <${Select} label="Template" name="template_id" options=${[["", "No template"], ...tpls.map((t) => [t.id, `${t.name} (version ${t.version})`])]} value="" />
    <//>`}<//>
  <//>`;
}

const EXAMPLE_SPEC = JSON.stringify({
  plan: "starter",
  feature_flags: { booking: true },
  branding: { primary_color: "#2563eb", tagline: "Welcome" },
  pipelines: [{ name: "Sales", stages: ["Lead", "Qualified", "Won"] }],
  services: [{ name: "Consultation", duration_min: 30 }],
}, null, 2);

/** Pushes a version to every client of the template, page by page (25 clients a call). */
async function pushAll(agencyId, t) {
  const clients = [];
  let cursor;
  for (let i = 0; i < 400; i++) {
    const page = await api("POST", `/api/agencies/${agencyId}/templates/${t.id}/push`, cursor ? { version: t.version, cursor } : { version: t.version });
    clients.push(...page.clients);
    if (!page.next_cursor) return { version: page.version, clients };
    cursor = page.next_cursor;
  }
  return { version: t.version, clients };
}

export function Templates({ agencyId, can }) {
  const list = useData(() => all(`/api/agencies/${agencyId}/templates`), [agencyId]);
  const [report, setReport] = useState(null);
  const [busy, setBusy] = useState(null);
  const manage = can("clients:manage");
  return html`<${Section} title="Templates">
    <${Loaded} state=${list} empty="No templates yet.">${(items) => html`<ul class="rows">
      ${items.map((t) => html`<li class="row"><div class="grow"><strong>${t.name}</strong> <span class="muted">version ${t.version} · ${when(t.created_at)}</span></div>
        ${manage ? html`<button type="button" class="secondary small" disabled=${busy === t.id} aria-label=${`Push version ${t.version} of ${t.name} to its clients`}
          onClick=${async () => {
            setBusy(t.id);
            try { setReport(await pushAll(agencyId, t)); } catch (e) { setReport({ error: e.message }); } finally { setBusy(null); }
          }}>${busy === t.id ? "Pushing…" : `Push version ${t.version}`}</button>` : null}
      </li>`)}
    </ul>`}<//>
    ${report?.error ? html`<p class="error" role="alert">${report.error}</p>` : report ? html`<div class="answer" role="status"><strong>Pushed version ${report.version} to ${report.clients.length} clients</strong>
      <ul>${report.clients.map((c) => html`<li>${c.client_id}: ${c.status}${c.applied?.length ? ` — applied ${c.applied.join(", ")}` : ""}${c.skipped?.length ? ` — skipped ${c.skipped.map((s) => `${s.item} (${s.reason})`).join(", ")}` : ""}</li>`)}</ul></div>` : null}
    ${manage ? html`<${Form} id="new-template" submit="Save template" action=${async (f, form) => {
      let spec;
      try { spec = JSON.parse(f.get("spec")); } catch (e) { throw new Error(`The spec is not JSON: ${e.message}`); }
      await api("POST", `/api/agencies/${agencyId}/templates`, { name: f.get("name"), spec });
      form.reset();
      list.reload();
      return "Saved.";
    }}>
      <${Field} label="Template name" name="name" required />
      <${Field} label="Spec (JSON)" name="spec" type="textarea" rows="10" value=${EXAMPLE_SPEC} hint="plan, feature_flags, branding, pipelines, services, integrations" />
    <//>` : null}
  <//>`;
}

const AGENCY_ROLES = [["agency_user", "Agency user"], ["agency_admin", "Agency admin"]];

export function Members({ agencyId, can }) {
  const invitations = useData(() => (can("users:manage") ? all(`/api/agencies/${agencyId}/invitations`) : Promise.resolve([])), [agencyId]);
  const users = useData(() => all("/api/users"), [agencyId]);
  return html`<${Section} title="People">
    <${Loaded} state=${users} empty="No one yet.">${(items) => html`<ul class="rows">
      ${items.map((u) => html`<li class="row"><div class="grow"><strong>${u.name || u.email}</strong> <span class="muted">${u.email}</span></div><${Badge} status=${u.status} /></li>`)}
    </ul>`}<//>
  <//>
  <${Section} title="Invitations">
    <${Loaded} state=${invitations} empty="No invitations.">${(items) => html`<ul class="rows">
      ${items.map((i) => html`<li class="row"><div class="grow"><strong>${i.email}</strong> <span class="muted">${i.role}</span></div><${Badge} status=${i.status} /></li>`)}
    </ul>`}<//>
    ${can("users:manage") ? html`<${Form} id="invite-agency" submit="Invite" action=${async (f, form) => {
      await api("POST", "/api/users", { email: f.get("email"), role: f.get("role"), tenant: agencyId });
      form.reset();
      invitations.reload();
      return "Invitation sent.";
    }}>
      <${Field} label="Email" name="email" type="email" required />
      <${Select} label="Role" name="role" options=${AGENCY_ROLES} value="agency_user" />
    <//>` : null}
  <//>`;
}

export function AgencyBranding({ agencyId, can }) {
  return html`<${Branding} base=${`/api/agencies/${agencyId}`} can=${can} />`;
}

/** Where the agency's own console answers: its slug host, and each domain it proves here. */
export function AgencyDomains({ agencyId, can }) {
  const agency = useData(`/api/agencies/${agencyId}`, [agencyId]);
  const host = agency.data ? `${agency.data.portal_host}${location.port ? `:${location.port}` : ""}` : null;
  return html`<${Section} title="Portal domains">
    <p>Your team's console answers at ${host ? html`<a href=${`${location.protocol}//${host}/console`}><code>${host}</code></a>` : "your agency's portal host"} and, once verified, on each domain below, in your agency's branding.</p>
    <${DomainList} base=${`/api/agencies/${agencyId}`} manage=${can("agencies:write")} empty="No portal domains yet." />
  <//>`;
}
