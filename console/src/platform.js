// Platform staff: every agency with its clients, status and plan; suspending and reactivating;
// the platform audit log. Opening a tenant as support is marked on every page and audited by the
// API (each staff read or write of a tenant writes `platform.access` to its log).
import { api, all } from "./api.js";
import { html, useData, usePaged, Loaded, Badge, Section, ActionButton, More, when } from "./ui.js";

export function Agencies() {
  const list = useData(() => all("/api/agencies"), []);
  const setStatus = async (a, status) => {
    if (status === "suspended" && !confirm(`Suspend ${a.name}? Every one of its clients stops with it.`)) return;
    await api("PUT", `/api/agencies/${a.id}`, { status });
    list.reload();
  };
  return html`<${Section} title="Agencies">
    <${Loaded} state=${list} empty="No agencies yet.">${(items) => html`<table class="table">
      <thead><tr><th scope="col">Agency</th><th scope="col">Status</th><th scope="col">Plan</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${items.map((a) => html`<tr data-agency=${a.slug}>
        <td><a href=${`#/agencies/${a.id}`}>${a.name}</a><br /><span class="muted">${a.slug}</span></td>
        <td><${Badge} status=${a.status} /></td><td>${a.plan}</td>
        <td class="row-actions"><div class="actions-row">
          <a class="button secondary small" href=${`#/agencies/${a.id}`} aria-label=${`Open ${a.name} as support`}>Open as support</a>
          ${a.status === "active"
            ? html`<${ActionButton} class="danger small" label=${`Suspend ${a.name}`} action=${() => setStatus(a, "suspended")}>Suspend<//>`
            : html`<${ActionButton} label=${`Reactivate ${a.name}`} action=${() => setStatus(a, "active")}>Reactivate<//>`}
        </div></td></tr>`)}</tbody>
    </table>`}<//>
  <//>`;
}

export function PlatformAudit() {
  const list = usePaged("/api/admin/audit?order=newest", []);
  return html`<${Section} title="Platform audit log">
    <${Loaded} state=${list} empty="Nothing recorded yet.">${(page) => html`<table class="table">
      <thead><tr><th scope="col">When</th><th scope="col">Action</th><th scope="col">Tenant</th><th scope="col">Target</th></tr></thead>
      <tbody>${page.items.map((r) => html`<tr><td>${when(r.at)}</td><td>${r.action}</td><td>${r.tenant_id}</td><td>${r.target_type} ${r.target_id || ""}</td></tr>`)}</tbody>
    </table>`}<//>
    <${More} state=${list} label="Older entries" />
  <//>`;
}
