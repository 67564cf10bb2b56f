/* Gatehouse portal: login, then a dashboard of this client's profile, files and contacts.
 * Everything goes through the JSON API on this same host. Data is only ever set with
 * textContent, never as HTML. */
(function () {
  "use strict";
  var root = document.getElementById("gh-portal");
  var app = document.getElementById("gh-app");
  if (!root || !app) return;
  var clientId = root.getAttribute("data-client-id");
  var TOKEN_KEY = "gatehouse-token-" + clientId;

  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") el.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), attrs[k]);
      else el.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) el.appendChild(c); });
    return el;
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function api(method, path, body, contentType) {
    var headers = {};
    if (token()) headers.authorization = "Bearer " + token();
    var init = { method: method, headers: headers };
    if (body !== undefined) {
      headers["content-type"] = contentType || "application/json";
      init.body = contentType ? body : JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      if (res.status === 401 && path !== "/api/auth/login") {
        sessionStorage.removeItem(TOKEN_KEY);
        showLogin("Your session has ended. Please sign in again.");
        throw new Error("signed out");
      }
      if (res.status === 204) return null;
      return res.json().then(function (json) {
        if (!res.ok) {
          var err = new Error((json.error && json.error.message) || "Request failed");
          err.status = res.status;
          throw err;
        }
        return json;
      });
    });
  }

  function clear() { while (app.firstChild) app.removeChild(app.firstChild); }

  function showLogin(notice) {
    clear();
    var email = h("input", { type: "email", id: "gh-email", name: "email", autocomplete: "username", required: "" });
    var password = h("input", { type: "password", id: "gh-password", name: "password", autocomplete: "current-password", required: "" });
    var status = h("div", { class: notice ? "gh-error" : "", id: "gh-login-status", role: "status", text: notice || "" });
    var button = h("button", { type: "submit", text: "Sign in" });
    var form = h("form", { class: "gh-card gh-login", id: "gh-login", onsubmit: function (e) {
      e.preventDefault();
      button.disabled = true;
      status.className = "";
      status.textContent = "Signing in…";
      api("POST", "/api/auth/login", { email: email.value, password: password.value })
        .then(function (res) {
          sessionStorage.setItem(TOKEN_KEY, res.access_token);
          showDashboard();
        })
        .catch(function (err) {
          status.className = "gh-error";
          status.textContent = err.status === 403 ? "This account has no access to this portal." : err.message;
        })
        .then(function () { button.disabled = false; });
    } }, [
      h("h2", { text: "Sign in" }),
      h("label", { for: "gh-email", text: "Email" }), email,
      h("label", { for: "gh-password", text: "Password" }), password,
      button, status,
    ]);
    app.appendChild(form);
  }

  function profileCard(client, me) {
    var rows = [["Business", client.name], ["Type", client.business_type || "—"], ["Email", client.email || "—"],
      ["Phone", client.phone || "—"], ["Plan", client.plan], ["Signed in as", me.user.email + " (" + me.context.role + ")"]];
    var dl = h("dl", {}, []);
    rows.forEach(function (r) { dl.appendChild(h("dt", { text: r[0] })); dl.appendChild(h("dd", { text: r[1] })); });
    return h("section", { class: "gh-card", id: "gh-profile" }, [
      h("div", { class: "gh-bar" }, [h("h2", { text: "Profile" }),
        h("button", { class: "gh-secondary", id: "gh-logout", type: "button", text: "Sign out", onclick: function () {
          sessionStorage.removeItem(TOKEN_KEY); showLogin(); } })]),
      dl]);
  }

  function formatSize(n) {
    return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KB" : (n / 1048576).toFixed(1) + " MB";
  }

  function filesCard(canWrite) {
    var body = h("tbody", {}, []);
    var status = h("div", { role: "status", id: "gh-files-status" });
    function load() {
      api("GET", "/api/clients/" + clientId + "/files?limit=100").then(function (res) {
        while (body.firstChild) body.removeChild(body.firstChild);
        if (!res.items.length) body.appendChild(h("tr", {}, [h("td", { colspan: "4", class: "gh-empty", text: "No files yet." })]));
        res.items.forEach(function (f) {
          var link = h("button", { class: "gh-secondary", type: "button", text: "Download", onclick: function () {
            api("POST", "/api/clients/" + clientId + "/files/" + f.id + "/sign", { expires_in: 300 })
              .then(function (s) { window.location.href = s.url; });
          } });
          body.appendChild(h("tr", { "data-file-id": f.id }, [h("td", { text: f.name }), h("td", { text: f.content_type }),
            h("td", { text: formatSize(f.size) }), h("td", {}, [link])]));
        });
      });
    }
    var input = h("input", { type: "file", id: "gh-file" });
    var upload = canWrite ? h("form", { id: "gh-upload", onsubmit: function (e) {
      e.preventDefault();
      var file = input.files && input.files[0];
      if (!file) return;
      status.className = "";
      status.textContent = "Uploading…";
      api("POST", "/api/clients/" + clientId + "/files?name=" + encodeURIComponent(file.name), file, file.type || "application/octet-stream")
        .then(function () { status.className = "gh-ok"; status.textContent = "Uploaded " + file.name; input.value = ""; load(); })
        .catch(function (err) { status.className = "gh-error"; status.textContent = err.message; });
    } }, [input, h("button", { type: "submit", text: "Upload" })]) : null;
    load();
    return h("section", { class: "gh-card", id: "gh-files" }, [h("h2", { text: "Files" }),
      h("table", {}, [h("thead", {}, [h("tr", {}, ["Name", "Type", "Size", ""].map(function (t) { return h("th", { text: t }); }))]), body]),
      upload, status]);
  }

  function contactsCard() {
    var body = h("tbody", {}, []);
    api("GET", "/api/clients/" + clientId + "/contacts?limit=100").then(function (res) {
      if (!res.items.length) body.appendChild(h("tr", {}, [h("td", { colspan: "4", class: "gh-empty", text: "No contacts or leads yet." })]));
      res.items.forEach(function (c) {
        body.appendChild(h("tr", {}, [h("td", { text: c.name }), h("td", { text: c.email || "—" }),
          h("td", { text: c.source }), h("td", { text: new Date(c.created_at).toLocaleString() })]));
      });
    });
    return h("section", { class: "gh-card", id: "gh-contacts" }, [h("h2", { text: "Contacts and leads" }),
      h("table", {}, [h("thead", {}, [h("tr", {}, ["Name", "Email", "Source", "Received"].map(function (t) { return h("th", { text: t }); }))]), body])]);
  }

  function showDashboard() {
    Promise.all([api("GET", "/api/me"), api("GET", "/api/clients/" + clientId)]).then(function (r) {
      var me = r[0];
      var client = r[1];
      clear();
      var perms = me.context.permissions || [];
      app.appendChild(profileCard(client, me));
      if (perms.indexOf("files:read") >= 0) app.appendChild(filesCard(perms.indexOf("files:write") >= 0));
      if (perms.indexOf("contacts:read") >= 0) app.appendChild(contactsCard());
    }).catch(function (err) {
      if (err.message !== "signed out") showLogin(err.message);
    });
  }

  if (token()) showDashboard();
  else showLogin();
})();
