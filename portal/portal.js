/* Gatehouse portal: login (with the MFA step when the account or the tenant has it), accepting
 * an invitation, then a dashboard of this client's profile, files and contacts. Everything goes
 * through the JSON API on this same host. Data is only ever set with textContent, never as HTML. */
(function () {
  "use strict";
  var root = document.getElementById("gh-portal");
  var app = document.getElementById("gh-app");
  if (!root || !app) return;
  var clientId = root.getAttribute("data-client-id");
  var clientName = root.getAttribute("data-client-name");
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
      // A 401 from sign-in steps is their answer; anywhere else it means the session ended.
      if (res.status === 401 && path.indexOf("/api/auth/") !== 0 && path.indexOf("/api/invitations/") !== 0) {
        sessionStorage.removeItem(TOKEN_KEY);
        showLogin("Your session has ended. Please sign in again.");
        throw new Error("signed out");
      }
      if (res.status === 204) return null;
      return res.json().then(function (json) {
        if (!res.ok) {
          var err = new Error((json.error && json.error.message) || "Request failed");
          err.status = res.status;
          err.code = json.error && json.error.code;
          throw err;
        }
        return json;
      });
    });
  }

  function clear() { while (app.firstChild) app.removeChild(app.firstChild); }

  function showLogin(notice, knownEmail, ok) {
    clear();
    var email = h("input", { type: "email", id: "gh-email", name: "email", autocomplete: "username", required: "" });
    if (knownEmail) email.value = knownEmail;
    var password = h("input", { type: "password", id: "gh-password", name: "password", autocomplete: "current-password", required: "" });
    var status = h("div", { class: notice ? (ok ? "gh-ok" : "gh-error") : "", id: "gh-login-status", role: "status", text: notice || "" });
    var button = h("button", { type: "submit", text: "Sign in" });
    var form = h("form", { class: "gh-card gh-login", id: "gh-login", onsubmit: function (e) {
      e.preventDefault();
      button.disabled = true;
      status.className = "";
      status.textContent = "Signing in…";
      api("POST", "/api/auth/login", { email: email.value, password: password.value })
        .then(signedIn)
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

  /* What a password (or a second step) earned: a session, or the MFA step. */
  function signedIn(res) {
    if (res.access_token) {
      sessionStorage.setItem(TOKEN_KEY, res.access_token);
      if (res.recovery_codes) showRecoveryCodes(res.recovery_codes);
      else showDashboard();
    } else if (res.mfa_token) {
      showMfa(res);
    }
  }

  /* The second step: a code from the authenticator app (or a recovery code). When the tenant
   * requires MFA and the account has none yet, this is enrolment: the key to add comes first. */
  function showMfa(challenge) {
    clear();
    var code = h("input", { type: "text", id: "gh-mfa-code", name: "code", autocomplete: "one-time-code", inputmode: "numeric", required: "" });
    var status = h("div", { id: "gh-mfa-status", role: "status" });
    var button = h("button", { type: "submit", text: "Verify" });
    var enrol = challenge.mfa_enrolment_required ? [
      h("p", { text: clientName + " requires two-step verification. Add this key to your authenticator app, then enter the code it shows." }),
      h("p", {}, [h("code", { id: "gh-mfa-secret", text: challenge.secret })]),
      h("p", {}, [h("a", { href: challenge.otpauth_uri, id: "gh-mfa-uri", text: "Open in an authenticator app" })]),
    ] : [h("p", { text: "Enter the code from your authenticator app, or a recovery code." })];
    var form = h("form", { class: "gh-card gh-login", id: "gh-mfa", onsubmit: function (e) {
      e.preventDefault();
      button.disabled = true;
      api("POST", "/api/auth/login/mfa", { mfa_token: challenge.mfa_token, code: code.value.trim() })
        .then(signedIn)
        .catch(function (err) {
          if (err.code === "invalid_mfa_token") return showLogin("That sign-in expired. Please start again.");
          status.className = "gh-error";
          status.textContent = err.message;
        })
        .then(function () { button.disabled = false; });
    } }, [h("h2", { text: "Two-step verification" })].concat(enrol, [
      h("label", { for: "gh-mfa-code", text: "Code" }), code, button, status]));
    app.appendChild(form);
  }

  function showRecoveryCodes(codes) {
    clear();
    var list = h("ul", { id: "gh-recovery-codes" }, codes.map(function (c) { return h("li", {}, [h("code", { text: c })]); }));
    app.appendChild(h("section", { class: "gh-card" }, [
      h("h2", { text: "Save your recovery codes" }),
      h("p", { text: "Each works once if you lose your device. They are shown only now." }),
      list,
      h("button", { type: "button", id: "gh-recovery-done", text: "Continue", onclick: showDashboard }),
    ]));
  }

  /* A mailed invitation leads here with its token in the fragment (never sent to a server). An
   * existing account just accepts; a new one picks a name and a password, then signs in. */
  function showInvite(inviteToken) {
    clear();
    var name = h("input", { type: "text", id: "gh-invite-name", name: "name", autocomplete: "name" });
    var password = h("input", { type: "password", id: "gh-invite-password", name: "password", autocomplete: "new-password", minlength: "10" });
    var account = h("div", { id: "gh-invite-account", hidden: "" }, [
      h("label", { for: "gh-invite-name", text: "Your name" }), name,
      h("label", { for: "gh-invite-password", text: "Choose a password (10 characters or more)" }), password]);
    var status = h("div", { id: "gh-invite-status", role: "status" });
    var button = h("button", { type: "submit", text: "Accept invitation" });
    var form = h("form", { class: "gh-card gh-login", id: "gh-invite", onsubmit: function (e) {
      e.preventDefault();
      var body = { token: inviteToken };
      if (!account.hidden) { body.name = name.value; body.password = password.value; }
      button.disabled = true;
      status.className = "";
      status.textContent = "Accepting…";
      api("POST", "/api/invitations/accept", body)
        .then(function (res) {
          if (!body.password) return showLogin("You have joined " + clientName + ". Sign in to continue.", res.email, true);
          return api("POST", "/api/auth/login", { email: res.email, password: body.password }).then(signedIn);
        })
        .catch(function (err) {
          status.className = "gh-error";
          if (err.code === "password_required") {
            account.hidden = false;
            status.className = "";
            status.textContent = "Create your account: choose your name and a password.";
            name.focus();
          } else {
            status.textContent = err.message;
          }
        })
        .then(function () { button.disabled = false; });
    } }, [h("h2", { text: "Join " + clientName }),
      h("p", { text: "You have been invited to " + clientName + "'s portal." }), account, button, status]);
    app.appendChild(form);
    if (!inviteToken) {
      button.disabled = true;
      status.className = "gh-error";
      status.textContent = "This link is incomplete. Open the link from your invitation mail again.";
    }
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

  if (location.pathname === "/invite") {
    var found = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    // The token leaves the address bar (and the history) once read.
    history.replaceState(null, "", "/invite");
    showInvite(found ? decodeURIComponent(found[1]) : null);
  } else if (token()) showDashboard();
  else showLogin();
})();
