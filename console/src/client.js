// A client's pages: overview with usage, domains, branding, integrations, people, files, contacts,
// the pipeline board, the calendar, the audit log and the embed snippet. Controls a caller's
// permissions do not allow are not shown; the API refuses them anyway.
import { useState, useEffect } from "preact/hooks";
import { api, all } from "./api.js";
import { html, useData, usePaged, Loaded, Form, Field, Select, Meter, Copy, Badge, Section, ActionButton, More, when, fmt } from "./ui.js";

const METRICS = [
  ["seats", "Seats"], ["contacts", "Contacts"], ["deals", "Deals"], ["storage_bytes", "Storage"],
  ["domains", "Domains"], ["widget_submissions_per_day", "Widget submissions today"],
];

export const CLIENT_PAGES = [
  ["", "Overview", "clients:read"], ["domains", "Domains", "domains:manage"], ["branding", "Branding", "branding:read"],
  ["settings", "Integrations", "settings:read"], ["people", "People", "users:manage"], ["files", "Files", "files:read"],
  ["contacts", "Contacts", "contacts:read"], ["pipeline", "Pipeline", "deals:read"], ["calendar", "Calendar", "booking:read"],
  ["audit", "Audit log", "audit:read"], ["embed", "Embed", "clients:read"],
];

export function ClientPage({ id, page, can }) {
  const client = useData(`/api/clients/${id}`, [id]);
  return html`<${Loaded} state=${client}>${(c) => {
    const base = `/api/clients/${c.id}`;
    const props = { c, base, can, reload: client.reload };
    const body = {
      "": Overview, domains: Domains, branding: Branding, settings: Settings, people: People, files: Files,
      contacts: Contacts, pipeline: Pipeline, calendar: Calendar, audit: Audit, embed: Embed,
    }[page] || NotFound;
    return html`<div class="client">
      <div class="client-head"><h1>${c.name}</h1><${Badge} status=${c.effective_status} /><span class="muted">${c.plan} plan</span></div>
      <${body} ...${props} />
    </div>`;
  }}<//>`;
}

function NotFound() {
  return html`<p class="state error" role="alert">There is no such page.</p>`;
}

export function Usage({ base }) {
  const usage = useData(`${base}/usage`, [base]);
  return html`<${Loaded} state=${usage}>${(u) => html`<div class="meters">
    ${METRICS.map(([k, label]) => html`<${Meter} label=${label} used=${u[k]?.used} limit=${u[k]?.limit} />`)}
  </div>`}<//>`;
}

/** The agency's and platform's view of a client's health (`clients:manage`). */
function Health({ base }) {
  const health = useData(`${base}/health`, [base]);
  return html`<${Section} title="Health">
    <${Loaded} state=${health}>${(h) => html`<div class="health">
      <p class=${`answer ${h.status === "ok" ? "ok" : "error"}`} role="status"><strong>${h.status === "ok" ? "Healthy" : "Needs attention"}</strong></p>
      ${h.attention.length ? html`<ul class="attention">${h.attention.map((a) => html`<li>${a}</li>`)}</ul>` : null}
      <dl class="facts">
        <dt>Domains</dt><dd>${h.domains.verified} verified${h.domains.lapsing ? `, ${h.domains.lapsing} lapsing` : ""}${h.domains.failed ? `, ${h.domains.failed} failed` : ""}${h.domains.pending ? `, ${h.domains.pending} pending` : ""}${h.domains.lapsed ? `, ${h.domains.lapsed} lapsed` : ""}</dd>
        <dt>Last widget hit</dt><dd>${h.last_widget_hit ? when(h.last_widget_hit) : "none yet"}</dd>
        <dt>Errors (${h.errors.window_days} days)</dt><dd>${(h.errors.rate * 100).toFixed(1)}% of ${fmt(h.errors.requests)} requests</dd>
      </dl>
    </div>`}<//>
  <//>`;
}

/** The client's daily counters for the last two weeks. */
function Traffic({ base }) {
  const metrics = useData(() => {
    const day = (d) => new Date(Date.now() - d * 86_400_000).toISOString().slice(0, 10);
    return api("GET", `${base}/metrics?from=${day(13)}&to=${day(0)}`);
  }, [base]);
  return html`<${Section} title="Traffic, last 14 days">
    <${Loaded} state=${metrics} empty="No traffic recorded yet.">${(m) => html`<table class="table traffic">
      <thead><tr><th scope="col">Day</th><th scope="col">Requests</th><th scope="col">Errors</th><th scope="col">Widget allowed</th><th scope="col">Widget refused</th><th scope="col">Leads</th><th scope="col">Bookings</th></tr></thead>
      <tbody>${m.items.map((d) => html`<tr><td>${d.day}</td><td>${fmt(d.requests)}</td><td>${fmt(d.errors)}</td><td>${fmt(d.widget_allowed)}</td><td>${fmt(d.widget_denied)}</td><td>${fmt(d.leads)}</td><td>${fmt(d.bookings)}</td></tr>`)}</tbody>
    </table>`}<//>
  <//>`;
}

function Overview({ c, base, can }) {
  return html`${can("clients:manage") ? html`<${Health} base=${base} />` : null}
  <${Section} title="Usage"><${Usage} base=${base} /><//>
  <${Traffic} base=${base} />
  <${Section} title="Profile">
    <dl class="facts">
      <dt>Slug</dt><dd>${c.slug}</dd>
      <dt>Email</dt><dd>${c.email || "—"}</dd>
      <dt>Time zone</dt><dd>${c.time_zone}</dd>
      <dt>Template</dt><dd>${c.template ? `${c.template.id} (version ${c.template.version})` : "—"}</dd>
      <dt>Created</dt><dd>${when(c.created_at)}</dd>
    </dl>
  <//>`;
}

function Domains({ base, can }) {
  return html`<${Section} title="Domains">
    <${DomainList} base=${base} manage=${can("domains:manage")} empty="No domains yet. Add the site the widget will run on."
      purposes=${[["widget", "Widget"], ["portal", "Portal"], ["both", "Both"]]} />
  <//>
  <${Section} title="Why doesn't my widget show?">
    <${Explainer} base=${base} />
  <//>`;
}

/** A tenant's domains with the TXT record each needs, verify and delete: a client's (widget,
 * portal or both, chosen per domain) or an agency's (its portal, `purposes` absent). */
export function DomainList({ base, manage, empty, purposes }) {
  const list = useData(() => all(`${base}/domains`), [base]);
  return html`<${Loaded} state=${list} empty=${empty}>${(items) => html`<ul class="rows">
      ${items.map((d) => html`<li class="row domain" data-domain=${d.domain}>
        <div class="grow"><strong>${d.domain}</strong> <span class="muted">${d.purpose}</span> <${Badge} status=${d.status} />
          ${d.status_reason ? html`<p class="muted reason">${d.status_reason}</p>` : null}
          ${d.status !== "verified" ? html`<div class="txt">
            <p>Create this DNS record, then verify:</p>
            <div class="kv"><span>TXT name</span><code data-copy=${d.verification.name}>${d.verification.name}</code><${Copy} text=${d.verification.name} label="Copy name" /></div>
            <div class="kv"><span>TXT value</span><code data-copy=${d.verification.value}>${d.verification.value}</code><${Copy} text=${d.verification.value} label="Copy value" /></div>
          </div>` : null}
        </div>
        ${manage && d.status !== "verified" ? html`<${Form} submit="Verify" action=${async () => { await api("POST", `${base}/domains/${d.id}/verify`, {}); list.reload(); }} />` : null}
        ${manage ? html`<${ActionButton} class="danger small" label=${`Delete ${d.domain}`} action=${async () => {
          if (!confirm(`Delete ${d.domain}? It stops serving at once.`)) return;
          await api("DELETE", `${base}/domains/${d.id}`);
          list.reload();
        }}>Delete<//>` : null}
      </li>`)}
    </ul>`}<//>
    ${manage ? html`<${Form} id="add-domain" submit="Add domain" action=${async (f, form) => {
      await api("POST", `${base}/domains`, purposes ? { domain: f.get("domain"), purpose: f.get("purpose") } : { domain: f.get("domain") });
      form.reset();
      list.reload();
    }}>
      <${Field} label="Domain" name="domain" required placeholder=${purposes ? "www.example.com" : "clients.example.com"} />
      ${purposes ? html`<${Select} label="Used for" name="purpose" options=${purposes} value="widget" />` : null}
    <//>` : null}`;
}

function Explainer({ base }) {
  const [answer, setAnswer] = useState(null);
  return html`<${Form} id="explain" submit="Check" action=${async (f) => {
    setAnswer(await api("POST", `${base}/domains/check`, { origin: f.get("origin") }));
  }}>
    <${Field} label="The page's origin" name="origin" required placeholder="https://www.example.com" />
  <//>
  ${answer ? html`<div class=${`answer ${answer.allowed ? "ok" : "error"}`} role="status">
    <strong>${answer.allowed ? "Allowed" : "Refused"}${answer.origin ? ` for ${answer.origin}` : ""}</strong>
    ${answer.origin_error ? html`<p>${answer.origin_error.reason}</p>` : null}
    ${answer.matched_rule ? html`<p>Matched <code>${answer.matched_rule}</code>.</p>` : null}
    ${answer.reason ? html`<p>${answer.reason}</p>` : null}
    ${(answer.domains || []).length ? html`<ul>${answer.domains.map((d) => html`<li><code>${d.domain}</code> ${d.status}${d.why_not ? `: ${d.why_not}` : ""}</li>`)}</ul>` : null}
  </div>` : null}`;
}

const BRANDING_FIELDS = [
  ["primary_color", "Primary colour", "color"], ["secondary_color", "Secondary colour", "color"],
  ["tagline", "Tagline", "text"], ["support_email", "Support email", "email"], ["support_phone", "Support phone", "tel"],
];

/** Branding of a client or an agency (`base` is either's API path). */
export function Branding({ base, can }) {
  const state = useData(`${base}/branding`, [base]);
  const write = can("branding:write");
  const [draft, setDraft] = useState({});
  return html`<${Loaded} state=${state}>${(b) => {
    // What the client would show: its own values over the inherited ones, and what is being typed.
    const inherited = Object.fromEntries(Object.entries(b.effective || {}).map(([k, v]) => [k, v && v.value]));
    const shown = { ...inherited, ...Object.fromEntries(Object.entries(b.own).filter(([, v]) => v != null)), ...draft };
    const color = (k, d) => (/^#[0-9a-f]{3,6}$/i.test(shown[k] || "") ? shown[k] : d);
    return html`<div class="split">
      <${Section} title="Branding">
        <${Form} id="branding" disabled=${!write} action=${async (f) => {
          const body = {};
          for (const [k] of BRANDING_FIELDS) body[k] = f.get(k) || null;
          body.custom_css = f.get("custom_css") || null;
          await api("PUT", `${base}/branding`, body);
          setDraft({});
          state.reload();
          return "Saved.";
        }}>
          ${BRANDING_FIELDS.map(([k, label, type]) => html`<${Field} label=${label} name=${k} type=${type === "color" ? "text" : type}
            value=${b.own[k] || ""} readOnly=${!write} placeholder=${type === "color" ? "#2563eb" : ""}
            onInput=${(e) => setDraft({ ...draft, [k]: e.currentTarget.value })} />`)}
          <${Field} label="Custom CSS (portal)" name="custom_css" type="textarea" rows="5" value=${b.own.custom_css || ""} readOnly=${!write}
            hint="Scoped to the portal; the sanitiser refuses scripts, imports and outside URLs." />
        <//>
      <//>
      <${Section} title="Preview">
        <div class="preview-portal" style=${{ borderColor: color("primary_color", "#2563eb") }}>
          <div class="preview-bar" style=${{ background: color("secondary_color", "#0f172a") }}>${shown.tagline || "Your portal"}</div>
          <button type="button" class="preview-button" style=${{ background: color("primary_color", "#2563eb") }} tabIndex="-1">Sign in</button>
        </div>
        <div class="preview-widget" style=${{ borderTopColor: color("primary_color", "#2563eb") }}>
          <strong>Contact us</strong><p class="muted">${shown.support_email || "support@example.com"}</p>
          <button type="button" class="preview-button" style=${{ background: color("primary_color", "#2563eb") }} tabIndex="-1">Send</button>
        </div>
      <//>
    </div>`;
  }}<//>`;
}

function Settings({ base, can }) {
  const state = useData(`${base}/settings`, [base]);
  const write = can("settings:write");
  return html`<${Loaded} state=${state}>${(s) => html`<div class="providers">
    ${s.providers.filter((p) => p.provider !== "widget" || write).map((p) => html`<${Section} title=${p.label}>
      ${p.enabled ? null : html`<p class="muted">Not enabled for this client.</p>`}
      <${Form} id=${`provider-${p.provider}`} disabled=${!write || !p.enabled} action=${async (f, form) => {
        const fields = {};
        for (const fl of p.fields) { const v = f.get(fl.field); if (v) fields[fl.field] = v; }
        if (!Object.keys(fields).length) return "Nothing to save.";
        await api("PUT", `${base}/settings`, { [p.provider]: fields });
        // Write-only: nothing typed stays in the page once it is stored.
        form.reset();
        state.reload();
        return "Saved.";
      }}>
        ${p.fields.map((fl) => html`<div class="setting" data-field=${`${p.provider}.${fl.field}`}>
          <${Field} label=${fl.label} name=${fl.field} type=${fl.secret ? "password" : "text"} autocomplete=${fl.secret ? "new-password" : "off"}
            readOnly=${!write || !p.enabled} placeholder=${fl.set ? (fl.secret ? `${fl.value} (set; type to replace)` : fl.value) : "not set"} />
          ${fl.set ? html`<small class="muted">${fl.secret ? `Stored as ${fl.value}` : "Set"} by ${fl.updated_by || "—"} on ${when(fl.updated_at)}</small>` : null}
        </div>`)}
      <//>
    <//>`)}
  </div>`}<//>`;
}

const CLIENT_ROLES = [["client_user", "Client user"], ["client_viewer", "Client viewer"], ["client_admin", "Client admin"]];

function People({ c, base, can }) {
  const invitations = useData(() => (can("users:manage") ? all(`${base}/invitations`) : Promise.resolve([])), [base]);
  return html`<${Section} title="Invitations">
    <${Loaded} state=${invitations} empty="No invitations.">${(items) => html`<ul class="rows">
      ${items.map((i) => html`<li class="row"><div class="grow"><strong>${i.email}</strong> <span class="muted">${i.role}</span> <${Badge} status=${i.status} /></div>
        ${i.status === "pending" ? html`<${ActionButton} label=${`Resend the invitation to ${i.email}`}
          action=${async () => { await api("POST", `${base}/invitations/${i.id}/resend`, {}); invitations.reload(); }}>Resend<//>
        <${ActionButton} class="danger small" label=${`Revoke the invitation to ${i.email}`}
          action=${async () => { await api("DELETE", `${base}/invitations/${i.id}`); invitations.reload(); }}>Revoke<//>` : null}
      </li>`)}
    </ul>`}<//>
    ${can("users:manage") ? html`<${Form} id="invite" submit="Invite" action=${async (f, form) => {
      await api("POST", `${base}/invitations`, { email: f.get("email"), role: f.get("role") });
      form.reset();
      invitations.reload();
      return "Invitation sent.";
    }}>
      <${Field} label="Email" name="email" type="email" required />
      <${Select} label="Role" name="role" options=${CLIENT_ROLES} value="client_user" />
    <//>` : null}
  <//>`;
}

function Files({ base, can }) {
  const list = useData(() => all(`${base}/files`), [base]);
  return html`<${Section} title="Files">
    <${Loaded} state=${list} empty="No files yet.">${(items) => html`<ul class="rows">
      ${items.map((f) => html`<li class="row"><div class="grow"><strong>${f.name}</strong> <span class="muted">${fmt(f.size)} bytes · ${f.content_type}</span></div>
        <button type="button" class="secondary small" aria-label=${`Download ${f.name}`} onClick=${async () => {
          const link = await api("POST", `${base}/files/${f.id}/sign`, {});
          // Only our own signed-download path is followed.
          if (typeof link.url === "string" && link.url.startsWith("/api/files/signed/")) location.assign(link.url);
        }}>Download</button></li>`)}
    </ul>`}<//>
    ${can("files:write") ? html`<${Form} id="upload" submit="Upload" action=${async (f, form) => {
      const file = f.get("file");
      if (!file || !file.name) throw new Error("Choose a file first.");
      await api("POST", `${base}/files?name=${encodeURIComponent(file.name)}`, await file.arrayBuffer(), { contentType: file.type || "application/octet-stream" });
      form.reset();
      list.reload();
      return "Uploaded.";
    }}><${Field} label="File" name="file" type="file" /><//>` : null}
  <//>`;
}

function Contacts({ base, can }) {
  const [q, setQ] = useState("");
  const list = usePaged(`${base}/contacts${q ? `?q=${encodeURIComponent(q)}` : ""}`, [base, q]);
  return html`<${Section} title="Contacts">
    <div class="field search"><label for="contact-search">Search</label>
      <input id="contact-search" type="search" placeholder="Name or email" onChange=${(e) => setQ(e.currentTarget.value)} /></div>
    <${Loaded} state=${list} empty="No contacts match.">${(page) => html`<ul class="rows">
      ${page.items.map((ct) => html`<li class="row"><div class="grow"><strong>${ct.name}</strong> <span class="muted">${ct.email || ""}</span>
        ${(ct.tags || []).map((t) => html` <span class="tag">${t.name || t}</span>`)}</div></li>`)}
    </ul>`}<//>
    <${More} state=${list} />
    ${can("contacts:write") ? html`<${Form} id="new-contact" submit="Add contact" action=${async (f, form) => {
      await api("POST", `${base}/contacts`, { name: f.get("name"), email: f.get("email") || undefined });
      form.reset();
      list.reload();
    }}>
      <${Field} label="Name" name="name" required />
      <${Field} label="Email" name="email" type="email" />
    <//>` : null}
  <//>`;
}

function Pipeline({ base, can }) {
  const pipes = useData(() => all(`${base}/pipelines`), [base]);
  const [chosen, setChosen] = useState(null);
  return html`<${Loaded} state=${pipes} empty="No pipelines yet.">${(items) => {
    const p = items.find((x) => x.id === chosen) || items[0];
    return html`<${Section} title="Pipeline" actions=${items.length > 1 ? html`<${Select} label="Pipeline" name="pipeline"
        options=${items.map((x) => [x.id, x.name])} value=${p.id} onChange=${(e) => setChosen(e.currentTarget.value)} />` : null}>
      <${Board} base=${base} pipeline=${p} write=${can("deals:write")} />
    <//>`;
  }}<//>`;
}

function Board({ base, pipeline, write }) {
  const board = useData(`${base}/pipelines/${pipeline.id}/board`, [pipeline.id]);
  // Deals past each column's first page, by stage: loaded on "Show more", dropped on reload.
  const [extra, setExtra] = useState({});
  useEffect(() => setExtra({}), [board.data]);
  const more = async (col) => {
    const after = extra[col.stage.id]?.next ?? col.next_cursor;
    const status = board.data.status === "all" ? "" : `&status=${board.data.status}`;
    const page = await api("GET", `${base}/deals?stage=${col.stage.id}${status}&limit=50&cursor=${encodeURIComponent(after)}`);
    setExtra((x) => ({ ...x, [col.stage.id]: { deals: [...(x[col.stage.id]?.deals || []), ...page.items], next: page.next_cursor } }));
  };
  const [error, setError] = useState(null);
  const move = async (deal, stage) => {
    setError(null);
    try {
      await api("PATCH", `${base}/deals/${deal}`, { stage_id: stage });
      board.reload();
    } catch (e) {
      setError(e);
    }
  };
  return html`<${Loaded} state=${board}>${(b) => html`
    ${error ? html`<p class="error" role="alert">${error.message}</p>` : null}
    <div class="board">
      ${b.columns.map((col) => html`<div class="column" data-stage=${col.stage.name}
          onDragOver=${(e) => write && e.preventDefault()}
          onDrop=${(e) => { e.preventDefault(); const id = e.dataTransfer.getData("text/plain"); if (id) move(id, col.stage.id); }}>
        <h3>${col.stage.name} <span class="muted">${col.count}</span></h3>
        ${[...col.deals, ...(extra[col.stage.id]?.deals || [])].map((d) => html`<div class="deal" draggable=${write} data-deal=${d.title}
            onDragStart=${(e) => e.dataTransfer.setData("text/plain", d.id)}>
          <strong>${d.title}</strong>
          ${d.value_minor ? html`<span class="muted">${(d.value_minor / 100).toFixed(2)} ${d.currency}</span>` : null}
          ${write ? html`<label class="sr-only" for=${`move-${d.id}`}>Move ${d.title} to</label>
            <select id=${`move-${d.id}`} class="move" aria-label=${`Move ${d.title} to stage`} onChange=${(e) => move(d.id, e.currentTarget.value)}>
              ${b.columns.map((c2) => html`<option value=${c2.stage.id} selected=${c2.stage.id === col.stage.id}>${c2.stage.name}</option>`)}
            </select>` : null}
        </div>`)}
        ${(extra[col.stage.id] ? extra[col.stage.id].next : col.next_cursor)
          ? html`<${ActionButton} label=${`Show more deals in ${col.stage.name}`} action=${() => more(col)}>Show more<//>` : null}
      </div>`)}
    </div>
    ${write ? html`<${Form} id="new-deal" submit="Add deal" action=${async (f, form) => {
      const value = f.get("value");
      await api("POST", `${base}/deals`, { title: f.get("title"), pipeline_id: pipeline.id, value_minor: value ? Math.round(Number(value) * 100) : undefined });
      form.reset();
      board.reload();
    }}>
      <${Field} label="Deal title" name="title" required />
      <${Field} label="Value" name="value" type="number" min="0" step="0.01" />
    <//>` : null}`}<//>`;
}

function Calendar({ base }) {
  const [from] = useState(() => new Date(Date.now() - 86_400_000));
  const to = new Date(from.getTime() + 60 * 86_400_000);
  const list = useData(() => all(`${base}/appointments?from=${from.toISOString().slice(0, 19)}Z&to=${to.toISOString().slice(0, 19)}Z`), [base]);
  return html`<${Section} title="Calendar">
    <p class="muted">Appointments from ${from.toISOString().slice(0, 10)} for 60 days, in the client's time zone.</p>
    <${Loaded} state=${list} empty="No appointments in this period.">${(items) => {
      const days = new Map();
      for (const a of items.sort((x, y) => x.starts_at.localeCompare(y.starts_at))) {
        const day = a.local_start.slice(0, 10);
        if (!days.has(day)) days.set(day, []);
        days.get(day).push(a);
      }
      return html`<div class="calendar">${[...days].map(([day, appts]) => html`<div class="day"><h3>${day}</h3>
        <ul class="rows">${appts.map((a) => html`<li class="row appointment"><strong>${a.local_start.slice(11, 16)}–${a.local_end.slice(11, 16)}</strong>
          <span class="grow">${a.note || a.source}</span> <${Badge} status=${a.status} /></li>`)}</ul></div>`)}</div>`;
    }}<//>
  <//>`;
}

function Audit({ base }) {
  const list = usePaged(`${base}/audit?order=newest`, [base]);
  const chain = useData(`${base}/audit/verify`, [base]);
  const csv = async () => {
    // The export comes a page at a time, each linking the next: all of them make the file.
    const parts = [];
    let next = `${base}/audit/export`;
    for (let i = 0; next && i < 1000; i++) {
      const res = await api("GET", next, undefined, { raw: true });
      parts.push(await res.text());
      next = (/<([^>]+)>;\s*rel="next"/.exec(res.headers.get("link") || "") || [])[1];
    }
    const url = URL.createObjectURL(new Blob(parts, { type: "text/csv" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = "audit.csv";
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return html`<${Section} title="Audit log" actions=${html`<${ActionButton} class="secondary" action=${csv}>Export CSV<//>`}>
    <${Loaded} state=${chain}>${(v) => html`<p class=${`chain ${v.ok ? "ok" : "error"}`} role="status">
      ${v.ok ? `Chain intact: ${v.checked ?? v.rows ?? ""} rows verified.` : `Chain broken at row ${v.first_break?.seq ?? "?"}: ${v.first_break?.reason ?? ""}`}</p>`}<//>
    <${Loaded} state=${list} empty="Nothing recorded yet.">${(page) => html`<table class="table">
      <thead><tr><th scope="col">When</th><th scope="col">Action</th><th scope="col">Who</th><th scope="col">Target</th></tr></thead>
      <tbody>${page.items.map((r) => html`<tr><td>${when(r.at)}</td><td>${r.action}</td><td>${r.actor_role || r.role || ""}</td><td>${r.target_type} ${r.target_id || ""}</td></tr>`)}</tbody>
    </table>`}<//>
    <${More} state=${list} label="Older entries" />
  <//>`;
}

function Embed({ c }) {
  // The widget is served by the API host, wherever this console runs.
  const origin = document.getElementById("gh-console").dataset.apiOrigin || location.origin;
  const snippet = `<script src="${origin}/widget.js" data-key="${c.publishable_key}" async></script>`;
  return html`<${Section} title="Embed the widget">
    <p>Paste this into the pages of a verified domain. The publishable key is safe in a page: the widget answers only on this client's verified domains.</p>
    <div class="kv"><span>Publishable key</span><code data-copy=${c.publishable_key}>${c.publishable_key}</code><${Copy} text=${c.publishable_key} label="Copy key" /></div>
    <pre class="snippet"><code data-copy=${snippet}>${snippet}</code></pre>
    <${Copy} text=${snippet} label="Copy snippet" />
  <//>`;
}
