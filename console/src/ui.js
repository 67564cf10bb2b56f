// Shared pieces: the data hook with its loading, empty and error states, forms, meters, copy
// buttons. Everything renders through Preact, so data is text, never HTML.
import { h } from "preact";
import { useState, useEffect, useCallback, useRef } from "preact/hooks";
import htm from "htm";
import { api } from "./api.js";

export const html = htm.bind(h);

/** Loads `path` (or runs `load`) and re-runs on `reload()` or when `deps` change. */
export function useData(load, deps) {
  const [state, setState] = useState({ loading: true, data: null, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    Promise.resolve(typeof load === "string" ? api("GET", load) : load())
      .then((data) => live && setState({ loading: false, data, error: null }))
      .catch((error) => live && setState({ loading: false, data: null, error }));
    return () => { live = false; };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** Loading, error and empty states around `children(data)`. */
export function Loaded({ state, empty, children }) {
  if (state.loading && !state.data) return html`<p class="state" role="status" aria-live="polite">Loading…</p>`;
  if (state.error) return html`<p class="state error" role="alert">${state.error.message}</p>`;
  const d = state.data;
  const isEmpty = d == null || (Array.isArray(d) && d.length === 0) || (d.items && d.items.length === 0);
  if (isEmpty && empty) return html`<p class="state empty">${empty}</p>`;
  return children(d);
}

/** A form whose submit runs `action`; shows its error (an API error's message) inline. */
export function Form({ action, submit = "Save", children, id, disabled, class: cls }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const onSubmit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const msg = await action(new FormData(e.currentTarget), e.currentTarget);
      if (typeof msg === "string") setDone(msg);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form id=${id} class=${`form ${cls || ""}`} onSubmit=${onSubmit}>
    ${children}
    ${disabled ? null : html`<div class="actions"><button type="submit" disabled=${busy}>${busy ? "Working…" : submit}</button></div>`}
    ${error ? html`<p class="error" role="alert" data-code=${error.code}>${error.message}</p>` : null}
    ${done ? html`<p class="ok" role="status">${done}</p>` : null}
  </form>`;
}

let fieldSeq = 0;
/** A labelled input. */
export function Field({ label, name, type = "text", value, required, hint, readOnly, ...rest }) {
  const id = useRef(`f${++fieldSeq}`).current;
  // Uncontrolled: `defaultValue` fills the field once, so a re-render never wipes what was typed.
  const input = type === "textarea"
    ? html`<textarea id=${id} name=${name} required=${required} readOnly=${readOnly} defaultValue=${value ?? ""} ...${rest} />`
    : html`<input id=${id} name=${name} type=${type} defaultValue=${value ?? ""} required=${required} readOnly=${readOnly} ...${rest} />`;
  return html`<div class="field"><label for=${id}>${label}</label>${input}${hint ? html`<small>${hint}</small>` : null}</div>`;
}

export function Select({ label, name, options, value, onChange, required }) {
  const id = useRef(`f${++fieldSeq}`).current;
  return html`<div class="field"><label for=${id}>${label}</label>
    <select id=${id} name=${name} required=${required} onChange=${onChange}>
      ${options.map(([v, text]) => html`<option value=${v} selected=${v === value}>${text}</option>`)}
    </select></div>`;
}

/** A usage meter: used of limit, with its share as a bar (aria: a meter). */
export function Meter({ label, used, limit }) {
  const known = typeof used === "number" && typeof limit === "number" && limit > 0;
  const pct = known ? Math.min(100, Math.round((used / limit) * 100)) : 0;
  const level = pct >= 100 ? "lvl-full" : pct >= 80 ? "lvl-high" : "lvl-ok";
  return html`<div class="meter">
    <div class="meter-label"><span>${label}</span><span>${known ? `${fmt(used)} / ${fmt(limit)}` : limit != null ? `limit ${fmt(limit)}` : "—"}</span></div>
    <div class=${`bar ${level}`} role="meter" aria-label=${label} aria-valuemin="0" aria-valuemax=${limit ?? 0} aria-valuenow=${used ?? 0}>
      <span style=${{ width: `${pct}%` }}></span>
    </div>
  </div>`;
}

export function fmt(n) {
  if (typeof n !== "number") return String(n ?? "—");
  if (n >= 1024 ** 3 && n % 1024 ** 3 === 0) return `${n / 1024 ** 3} GiB`;
  return n.toLocaleString("en-US");
}

export function when(ms) {
  if (!ms) return "—";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

/** Copies `text`, and says so. */
export function Copy({ text, label = "Copy" }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Without clipboard access, select the text for the person to copy.
      const range = document.createRange();
      const el = document.querySelector(`[data-copy="${CSS.escape(text)}"]`);
      if (el) { range.selectNodeContents(el); getSelection().removeAllRanges(); getSelection().addRange(range); }
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return html`<button type="button" class="secondary small" onClick=${copy} aria-label=${`${label}: ${text}`}>${copied ? "Copied" : label}</button>`;
}

export function Badge({ status }) {
  return html`<span class=${`badge ${status}`}>${status}</span>`;
}

export function Section({ title, children, actions }) {
  return html`<section class="card"><div class="card-head"><h2>${title}</h2>${actions}</div>${children}</section>`;
}

/** A list read a page at a time (`path` answers `{items, next_cursor}`): the first page at once,
 * the next on `more()`. */
export function usePaged(path, deps) {
  const [state, setState] = useState({ loading: true, data: null, error: null, next: null });
  const [tick, setTick] = useState(0);
  const page = (cursor) => api("GET", `${path}${path.includes("?") ? "&" : "?"}limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    page(null)
      .then((p) => live && setState({ loading: false, data: { items: p.items }, error: null, next: p.next_cursor }))
      .catch((error) => live && setState({ loading: false, data: null, error, next: null }));
    return () => { live = false; };
  }, [...deps, tick]);
  const more = async () => {
    const p = await page(state.next);
    setState((s) => ({ ...s, data: { items: [...s.data.items, ...p.items] }, next: p.next_cursor }));
  };
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, more, reload };
}

/** "Show more" under a paged list, while there is more. */
export function More({ state, label = "Show more" }) {
  if (!state.next) return null;
  return html`<${ActionButton} class="secondary" action=${state.more}>${label}<//>`;
}

/** A button running an async `action`: disabled and saying so while it runs; its error shown
 * beside it (an API error's message), not in a dialog. */
export function ActionButton({ action, children, class: cls = "secondary small", label }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="action"><button type="button" class=${cls} disabled=${busy} aria-busy=${busy ? "true" : null}
    aria-label=${label} onClick=${run}>${busy ? "Working…" : children}</button>${error ? html`<span class="error" role="alert">${error.message}</span>` : null}</span>`;
}
