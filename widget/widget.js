/*! Gatehouse widget v1. Embed: <script src="https://API_HOST/widget.js" data-key="pk_..." async></script>
 * Renders a lead form in a shadow root, styled by the client's branding. Holds no secret: the
 * publishable key only names the client, and the server answers only on verified origins. */
(function () {
  "use strict";
  var script = document.currentScript ||
    document.querySelector('script[data-key][src*="widget.js"]');
  if (!script) return;
  var key = script.getAttribute("data-key") || "";
  var api = new URL(script.src, location.href).origin + "/api/widget/v1/";
  var query = "?key=" + encodeURIComponent(key);
  var PREFIX = "[Gatehouse widget] ";
  // A visitor the site's own backend signed for (data-user-id, -email, -expires, -signature):
  // passed on as it is; the server decides whether to trust it.
  var identity = null;
  if (script.getAttribute("data-user-signature")) {
    identity = {
      user_id: script.getAttribute("data-user-id") || "",
      email: script.getAttribute("data-user-email") || "",
      expires: Number(script.getAttribute("data-user-expires")) || 0,
      signature: script.getAttribute("data-user-signature"),
    };
  }
  function noteIdentity(body) {
    if (body && body.identity === "ignored") {
      console.warn(PREFIX + "the signed visitor identity was ignored: it has expired or is not signed with this site's widget secret.");
    }
  }

  function refused(why) {
    console.warn(PREFIX + "not shown: " + why);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var name in attrs) node.setAttribute(name, attrs[name]);
    if (text) node.textContent = text;
    return node;
  }

  // Colors come from the server, which validates them; re-check so nothing but #hex reaches CSS.
  function color(value, fallback) {
    return /^#[0-9a-fA-F]{3,8}$/.test(value || "") ? value : fallback;
  }

  function render(config) {
    var brand = config.branding || {};
    var primary = color(brand.primary_color, "#2563eb");
    var secondary = color(brand.secondary_color, "#0f172a");
    var host = el("div", { "data-gatehouse-widget": "" });
    var target = script.getAttribute("data-target");
    var parent = (target && document.querySelector(target)) || null;
    if (parent) parent.appendChild(host);
    else script.parentNode.insertBefore(host, script.nextSibling);
    var root = host.attachShadow({ mode: "open" });
    var style = el("style");
    style.textContent =
      ":host{all:initial;display:block;font:15px/1.4 system-ui,sans-serif;color:" + secondary + "}" +
      "form{max-width:420px;padding:20px;border:1px solid #e5e7eb;border-radius:12px;background:#fff;" +
      "box-shadow:0 1px 3px rgba(0,0,0,.08)}" +
      "h2{margin:0 0 4px;font-size:18px;color:" + secondary + "}p{margin:0 0 12px;color:#475569}" +
      "label{display:block;margin:10px 0 4px;font-weight:600;font-size:13px}" +
      "input,textarea{box-sizing:border-box;width:100%;padding:9px 10px;border:1px solid #cbd5e1;" +
      "border-radius:8px;font:inherit}textarea{min-height:80px}" +
      "button{margin-top:14px;width:100%;padding:10px;border:0;border-radius:8px;color:#fff;font:inherit;" +
      "font-weight:600;cursor:pointer;background:" + primary + "}button[disabled]{opacity:.6}" +
      ".status{margin-top:10px;font-size:14px}.error{color:#b91c1c}.ok{color:#15803d}" +
      ".tabs{display:flex;gap:6px;max-width:420px;margin-bottom:8px}.tabs button{margin:0;background:#e2e8f0;" +
      "color:" + secondary + "}.tabs button[aria-selected=true]{background:" + primary + ";color:#fff}" +
      "select{box-sizing:border-box;width:100%;padding:9px 10px;border:1px solid #cbd5e1;border-radius:8px;font:inherit}" +
      ".slots{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px}.slots button{width:auto;margin:0;padding:6px 10px;" +
      "background:#fff;color:" + secondary + ";border:1px solid " + primary + "}.slots button[aria-pressed=true]{background:" +
      primary + ";color:#fff}.brand{display:flex;align-items:center;gap:8px;margin-bottom:8px;font-weight:600}" +
      ".brand img{max-height:32px}";
    root.appendChild(style);
    if (brand.logo_url || (config.client && config.client.name)) {
      var head = el("div", { class: "brand", part: "brand" });
      if (/^https?:\/\//.test(brand.logo_url || "")) head.appendChild(el("img", { src: brand.logo_url, alt: "" }));
      head.appendChild(el("span", {}, (config.client && config.client.name) || ""));
      root.appendChild(head);
    }

    var form = el("form", { part: "form", novalidate: "" });
    var formSpec = config.form || {};
    form.appendChild(el("h2", {}, formSpec.title || "Contact us"));
    if (brand.tagline) form.appendChild(el("p", {}, brand.tagline));
    (formSpec.fields || []).forEach(function (f) {
      var id = "gh-" + f.name;
      form.appendChild(el("label", { for: id }, f.label + (f.required ? " *" : "")));
      var input = f.type === "textarea"
        ? el("textarea", { id: id, name: f.name })
        : el("input", { id: id, name: f.name, type: f.type || "text" });
      if (f.required) input.required = true;
      if (f.max_length) input.maxLength = f.max_length;
      form.appendChild(input);
    });
    // A honeypot: hidden from people and assistive tech, tempting to bots that fill every field.
    var trap = el("input", { name: "website", type: "text", tabindex: "-1", autocomplete: "off", "aria-hidden": "true" });
    trap.style.cssText = "position:absolute;left:-10000px;width:1px;height:1px;opacity:0";
    form.appendChild(trap);
    var shownAt = Date.now();
    var submissionId = null;
    var button = el("button", { type: "submit" }, formSpec.submit_label || "Send");
    var status = el("div", { class: "status", role: "status" });
    form.appendChild(button);
    form.appendChild(status);
    var booking = config.booking || {};
    // Either feature can be off for the client: then the other stands alone, without tabs.
    var leadsOn = formSpec.enabled !== false;
    if (booking.enabled && leadsOn) {
      var tabs = el("div", { class: "tabs", role: "tablist" });
      var contactTab = el("button", { type: "button", role: "tab", "aria-selected": "true" }, "Contact");
      var bookTab = el("button", { type: "button", role: "tab", "aria-selected": "false" }, "Book");
      tabs.appendChild(contactTab);
      tabs.appendChild(bookTab);
      root.appendChild(tabs);
      var pane = null;
      contactTab.addEventListener("click", function () {
        contactTab.setAttribute("aria-selected", "true");
        bookTab.setAttribute("aria-selected", "false");
        form.hidden = false;
        if (pane) pane.hidden = true;
      });
      bookTab.addEventListener("click", function () {
        bookTab.setAttribute("aria-selected", "true");
        contactTab.setAttribute("aria-selected", "false");
        form.hidden = true;
        if (!pane) {
          pane = bookingPane(booking);
          root.appendChild(pane);
        }
        pane.hidden = false;
      });
    }
    if (leadsOn) root.appendChild(form);
    else if (booking.enabled) root.appendChild(bookingPane(booking));

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!form.checkValidity()) {
        status.className = "status error";
        status.textContent = "Please fill in the required fields.";
        return;
      }
      var lead = {};
      (formSpec.fields || []).forEach(function (f) {
        var value = form.elements[f.name].value.trim();
        if (value) lead[f.name] = value;
      });
      if (trap.value) lead.website = trap.value;
      lead.elapsed_ms = Date.now() - shownAt;
      // One id per filled-in form: a retry after a network error creates one lead, not two.
      if (!submissionId) submissionId = newSubmissionId();
      lead.submission_id = submissionId;
      if (identity) lead.identity = identity;
      button.disabled = true;
      fetch(api + "leads" + query, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(lead),
      })
        .then(function (res) {
          return res.json().then(function (body) {
            if (!res.ok) throw new Error((body.error && body.error.message) || "Request failed");
            noteIdentity(body);
            status.className = "status ok";
            status.textContent = formSpec.success_message || "Thanks!";
            form.reset();
            submissionId = null;
            shownAt = Date.now();
          });
        })
        .catch(function (err) {
          status.className = "status error";
          status.textContent = err.message || "Something went wrong.";
        })
        .then(function () { button.disabled = false; });
    });
  }

  function call(path, init) {
    return fetch(api + path, init).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) throw new Error((body.error && body.error.message) || "Request failed");
        return body;
      });
    });
  }

  // The Book tab: a service, a day, one of that day's free slots, then who is coming.
  function bookingPane(spec) {
    var pane = el("form", { part: "booking", novalidate: "" });
    pane.appendChild(el("h2", {}, spec.title || "Book"));
    var service = el("select", { name: "service", "aria-label": "Service" });
    var day = el("input", { name: "date", type: "date", "aria-label": "Day" });
    var today = new Date();
    day.value = new Date(today.getTime() - today.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
    var slots = el("div", { class: "slots", role: "group", "aria-label": "Times" });
    var details = el("div");
    var status = el("div", { class: "status", role: "status" });
    var chosen = null;
    var shownAt = Date.now();
    var bookingId = null; // one submission id per booking attempt: a retry books once
    pane.appendChild(el("label", {}, "Service"));
    pane.appendChild(service);
    pane.appendChild(el("label", {}, "Day"));
    pane.appendChild(day);
    pane.appendChild(slots);
    [["name", "Name", "text"], ["email", "Email", "email"], ["phone", "Phone", "tel"]].forEach(function (f) {
      details.appendChild(el("label", {}, f[1] + (f[0] === "phone" ? "" : " *")));
      var input = el("input", { name: "b-" + f[0], type: f[2] });
      if (f[0] !== "phone") input.required = true;
      details.appendChild(input);
    });
    var trap = el("input", { name: "b-website", type: "text", tabindex: "-1", autocomplete: "off", "aria-hidden": "true" });
    trap.style.cssText = "position:absolute;left:-10000px;width:1px;height:1px;opacity:0";
    details.appendChild(trap);
    var confirm = el("button", { type: "submit" }, spec.submit_label || "Book");
    details.appendChild(confirm);
    details.hidden = true;
    pane.appendChild(details);
    pane.appendChild(status);

    function say(cls, text) {
      status.className = "status " + cls;
      status.textContent = text;
    }
    // After a booking the confirmation stays on screen while the day's times refresh. Only the
    // latest request's answer is shown: an earlier one (the first day's, still in flight when the
    // visitor picked another) would otherwise add that day's times to the list.
    var asked = 0;
    function loadSlots(keepStatus) {
      var mine = ++asked;
      slots.textContent = "";
      chosen = null;
      details.hidden = true;
      if (!service.value || !day.value) return;
      call("availability" + query + "&service=" + encodeURIComponent(service.value) + "&date=" + day.value)
        .then(function (body) {
          if (mine !== asked) return;
          if (keepStatus !== true) say("", body.slots.length ? "" : "No free times that day.");
          body.slots.forEach(function (s) {
            var b = el("button", { type: "button", "aria-pressed": "false" }, s.local_start.slice(11) + " · " + s.staff_name);
            b.addEventListener("click", function () {
              bookingId = null;
              Array.prototype.forEach.call(slots.children, function (x) { x.setAttribute("aria-pressed", "false"); });
              b.setAttribute("aria-pressed", "true");
              chosen = s;
              details.hidden = false;
            });
            slots.appendChild(b);
          });
        })
        .catch(function (e) { if (mine === asked) say("error", e.message); });
    }
    call("services" + query).then(function (body) {
      body.items.forEach(function (s) {
        service.appendChild(el("option", { value: s.id }, s.name + " (" + s.duration_min + " min)"));
      });
      loadSlots();
    }).catch(function (e) { say("error", e.message); });
    service.addEventListener("change", function () { loadSlots(); });
    day.addEventListener("change", function () { loadSlots(); });
    pane.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!chosen || !pane.checkValidity()) return say("error", "Pick a time and fill in the required fields.");
      var body = {
        service_id: service.value, staff_id: chosen.staff_id, starts_at: chosen.starts_at,
        name: pane.elements["b-name"].value.trim(), email: pane.elements["b-email"].value.trim(),
        elapsed_ms: Date.now() - shownAt,
      };
      var phone = pane.elements["b-phone"].value.trim();
      if (phone) body.phone = phone;
      if (trap.value) body.website = trap.value;
      if (identity) body.identity = identity;
      if (!bookingId) bookingId = newSubmissionId();
      body.submission_id = bookingId;
      confirm.disabled = true;
      call("bookings" + query, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
        .then(function (res) {
          noteIdentity(res);
          bookingId = null;
          say("ok", "Booked for " + res.local_start.replace("T", " ") + ". See you then!");
          loadSlots(true);
        })
        .catch(function (e) { say("error", e.message); })
        .then(function () { confirm.disabled = false; });
    });
    return pane;
  }

  function newSubmissionId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  if (!/^pk_[0-9a-z]{52}$/.test(key)) {
    refused("the data-key attribute is missing or is not a publishable key (pk_...).");
    return;
  }
  fetch(api + "config" + query, { credentials: "omit" })
    .then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    })
    .then(render, function () {
      // A refused origin gets no CORS header, so the browser hides the reason from us.
      refused("the origin " + location.origin + " is not a verified domain for this key. " +
        "Add and verify it under the client's domains in Gatehouse (localhost needs test mode).");
    });
})();
