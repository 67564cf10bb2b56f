// Files under a real wrangler dev (local R2 and D1): round trips checked byte for byte, Range and
// conditional requests, hostile filenames, cross-tenant access by every route, signed URLs,
// type sniffing, size and quota limits, delete of row and object together, and throughput.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startWorker, testSecrets, errorCode, r2Object } from "./harness.mjs";

const sha256 = (buf) => crypto.createHash("sha256").update(buf).digest("hex");
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let w;
let acme;
let globex;
let tok = {};

before(async () => {
  w = await startWorker({ vars: testSecrets() });
  tok.acme = await w.login("admin@acme.test");
  tok.globex = await w.login("admin@globex.test");
  acme = (await w.request("GET", "/api/me", { token: tok.acme })).json.context.tenant;
  globex = (await w.request("GET", "/api/me", { token: tok.globex })).json.context.tenant;
  assert.match(acme, /^cli_/);
  assert.match(globex, /^cli_/);
  assert.notEqual(acme, globex);
});
after(async () => { await w?.stop(); });

/** POST /api/clients/{client}/files with a raw query string for the name (already encoded). */
function upload(worker, token, client, bytes, type, { rawName, name, headers = {}, host } = {}) {
  const q = rawName !== undefined ? `?name=${rawName}` : name !== undefined ? `?name=${encodeURIComponent(name)}` : "";
  const h = { ...headers };
  if (type !== undefined) h["content-type"] = type;
  return worker.request("POST", `/api/clients/${client}/files${q}`, { token, body: bytes, headers: h, host });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe("upload and download round trip", () => {
  const body = Buffer.concat([PNG_MAGIC, crypto.randomBytes(200_000)]);
  let file;

  before(async () => {
    const r = await upload(w, tok.acme, acme, body, "image/png", { name: "photo.png" });
    assert.equal(r.status, 201, r.text);
    file = r.json;
  });

  test("the upload answers 201 with id, name, size, type and the sha256 node computes", () => {
    assert.match(file.id, /^fil_[0-9a-z]+$/);
    assert.equal(file.name, "photo.png");
    assert.equal(file.size, body.length);
    assert.equal(file.content_type, "image/png");
    assert.equal(file.sha256, sha256(body));
    assert.equal(file.area, "uploads");
  });

  test("the download returns the same bytes with Content-Type, Content-Length, ETag and attachment disposition", async () => {
    const r = await w.request("GET", `/api/clients/${acme}/files/${file.id}`, { token: tok.acme });
    assert.equal(r.status, 200);
    assert.equal(sha256(r.bytes), sha256(body));
    assert.equal(r.bytes.length, body.length);
    assert.equal(r.headers["content-type"], "image/png");
    assert.equal(r.headers["content-length"], String(body.length));
    assert.match(r.headers.etag, /^"[^"]+"$/);
    assert.equal(r.headers["accept-ranges"], "bytes");
    assert.equal(r.headers["content-disposition"], "attachment; filename*=UTF-8''photo.png");
    assert.equal(r.headers["x-content-type-options"], "nosniff");
    assert.match(r.headers["content-security-policy"], /sandbox/);
  });

  test("the file is listed once, with the same metadata, and the D1 row matches", async () => {
    const r = await w.request("GET", `/api/clients/${acme}/files?limit=100`, { token: tok.acme });
    assert.equal(r.status, 200);
    const mine = r.json.items.filter((f) => f.id === file.id);
    assert.equal(mine.length, 1);
    assert.equal(mine[0].sha256, sha256(body));
    assert.equal(mine[0].size, body.length);
    const rows = w.d1(`SELECT tenant_id, area, object_key, size, sha256, status FROM files WHERE id = '${file.id}'`);
    assert.deepEqual(rows, [{ tenant_id: acme, area: "uploads", object_key: `tenants/${acme}/uploads/${file.id}`, size: body.length, sha256: sha256(body), status: "ready" }]);
  });

  test("a Range request answers 206 with Content-Range and exactly those bytes", async () => {
    const url = `/api/clients/${acme}/files/${file.id}`;
    const r = await w.request("GET", url, { token: tok.acme, headers: { range: "bytes=100-1099" } });
    assert.equal(r.status, 206);
    assert.equal(r.headers["content-range"], `bytes 100-1099/${body.length}`);
    assert.equal(r.headers["content-length"], "1000");
    assert.ok(r.bytes.equals(body.subarray(100, 1100)), "range bytes differ");
    const tail = await w.request("GET", url, { token: tok.acme, headers: { range: "bytes=-16" } });
    assert.equal(tail.status, 206);
    assert.equal(tail.headers["content-range"], `bytes ${body.length - 16}-${body.length - 1}/${body.length}`);
    assert.ok(tail.bytes.equals(body.subarray(body.length - 16)));
    const open = await w.request("GET", url, { token: tok.acme, headers: { range: `bytes=${body.length - 5}-` } });
    assert.equal(open.status, 206);
    assert.ok(open.bytes.equals(body.subarray(body.length - 5)));
  });

  test("an unsatisfiable Range answers 416 with Content-Range bytes */size and the JSON error", async () => {
    for (const range of [`bytes=${body.length}-`, `bytes=${body.length + 10}-${body.length + 20}`, "bytes=50-10"]) {
      const r = await w.request("GET", `/api/clients/${acme}/files/${file.id}`, { token: tok.acme, headers: { range } });
      assert.equal(r.status, 416, range);
      assert.equal(r.headers["content-range"], `bytes */${body.length}`, range);
      assert.equal(errorCode(r), "range_not_satisfiable");
    }
  });

  test("If-None-Match with the ETag answers 304 with no body; a different ETag gets the file", async () => {
    const url = `/api/clients/${acme}/files/${file.id}`;
    const first = await w.request("GET", url, { token: tok.acme });
    const etag = first.headers.etag;
    const r = await w.request("GET", url, { token: tok.acme, headers: { "if-none-match": etag } });
    assert.equal(r.status, 304);
    assert.equal(r.bytes.length, 0);
    assert.equal(r.headers.etag, etag);
    const listed = await w.request("GET", url, { token: tok.acme, headers: { "if-none-match": `"nope", ${etag}` } });
    assert.equal(listed.status, 304, "an ETag inside a list also matches");
    const other = await w.request("GET", url, { token: tok.acme, headers: { "if-none-match": '"something-else"' } });
    assert.equal(other.status, 200);
    assert.equal(sha256(other.bytes), sha256(body));
  });
});

describe("hostile filenames are metadata only", () => {
  // Raw query values, sent exactly as written (the Worker decodes them once).
  const RAW_NAMES = [
    ["dot-dot-slash", encodeURIComponent("../../../etc/passwd")],
    ["encoded ..%2f (lowercase)", "..%2f..%2fsecret.txt"],
    ["double-encoded ..%252f", "..%252f..%252fdouble.txt"],
    ["%2e%2e/", "%2e%2e/%2e%2e/boot.ini"],
    ["%2e%2e%2f", "%2e%2e%2f%2e%2e%2fkey"],
    ["encoded backslashes", "..%5c..%5cwindows%5csystem32%5cconfig"],
    ["raw backslashes", "..\\..\\raw-backslash.txt"],
    ["NUL in the middle", "evil%00.txt%00.png"],
    ["NUL alone", "%00"],
    ["just ..", ".."],
    ["just /", "%2F"],
    ["another tenant's key", encodeURIComponent(`tenants/${"cli_000000000000000000000002"}/uploads/fil_000000000000000000000001`)],
    ["5000 characters", "a".repeat(5000) + ".txt"],
    ["unicode", encodeURIComponent("résumé 📄 данные 日本語.txt")],
    ["RTL override", encodeURIComponent("invoice\u202Etxt.exe")],
    ["CR LF header injection", encodeURIComponent("x.txt\r\nSet-Cookie: a=b")],
    ["quotes and semicolons", encodeURIComponent('a"; filename="evil.html')],
    ["malformed percent", "%zz%"],
    ["empty", ""],
  ];
  const uploaded = []; // { label, id, body }
  let globexBefore;

  before(async () => {
    const g = await upload(w, tok.globex, globex, Buffer.from("globex private notes\n"), "text/plain", { name: "globex-notes.txt" });
    assert.equal(g.status, 201, g.text);
    globexBefore = (await w.request("GET", `/api/clients/${globex}/files?limit=100`, { token: tok.globex })).json;
  });

  test("every hostile name either uploads (201) or is refused with a JSON 4xx, never a 5xx", async () => {
    for (const [label, raw] of RAW_NAMES) {
      const body = Buffer.from(`traversal test: ${label}\n`);
      const r = await upload(w, tok.acme, acme, body, "text/plain", { rawName: raw });
      if (r.status === 201) {
        assert.equal(r.json.sha256, sha256(body), label);
        uploaded.push({ label, id: r.json.id, name: r.json.name, body });
      } else {
        assert.ok(r.status >= 400 && r.status < 500, `${label}: ${r.status} ${r.text.slice(0, 200)}`);
        errorCode(r);
      }
    }
    // The name may also arrive in X-File-Name.
    const body = Buffer.from("header-named\n");
    const r = await upload(w, tok.acme, acme, body, "text/plain", { headers: { "x-file-name": "../../header/../name.txt" } });
    assert.equal(r.status, 201, r.text);
    uploaded.push({ label: "X-File-Name", id: r.json.id, name: r.json.name, body });
    assert.ok(uploaded.length >= RAW_NAMES.length - 2, `only ${uploaded.length} uploads succeeded`);
  });

  test("in D1 every object_key is exactly tenants/<acme>/uploads/<file id>, whatever the name", () => {
    const rows = w.d1(`SELECT id, tenant_id, area, object_key, name FROM files WHERE tenant_id = '${acme}' AND area = 'uploads'`);
    const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
    for (const u of uploaded) {
      const row = byId[u.id];
      assert.ok(row, `${u.label}: no row for ${u.id}`);
      assert.equal(row.object_key, `tenants/${acme}/uploads/${u.id}`, u.label);
      assert.equal(row.name, u.name, u.label);
    }
    // And across the whole table: no key anywhere strays from its own tenant and id.
    for (const row of w.d1("SELECT id, tenant_id, area, object_key FROM files")) {
      assert.equal(row.object_key, `tenants/${row.tenant_id}/${row.area}/${row.id}`);
      assert.match(row.object_key, /^tenants\/(cli|agy)_[0-9a-z]+\/(uploads|branding)\/fil_[0-9a-z]+$/);
    }
  });

  test("stored names carry no separator, NUL or control character and are at most 255 characters", () => {
    for (const u of uploaded) {
      assert.ok(!/[/\\\u0000-\u001f\u007f]/.test(u.name), `${u.label}: ${JSON.stringify(u.name)}`);
      assert.ok([...u.name].length <= 255 && u.name.length > 0, `${u.label}: ${u.name.length}`);
    }
    const byLabel = Object.fromEntries(uploaded.map((u) => [u.label, u.name]));
    assert.equal(byLabel["dot-dot-slash"], ".._.._.._etc_passwd");
    assert.equal(byLabel["unicode"], "résumé 📄 данные 日本語.txt");
    assert.equal(byLabel["NUL alone"], "file");
    assert.equal(byLabel["just .."], "file");
    assert.equal(byLabel["5000 characters"], "a".repeat(255));
  });

  test("each hostile-named file downloads its own bytes, with a Content-Disposition that cannot break out", async () => {
    for (const u of uploaded) {
      const r = await w.request("GET", `/api/clients/${acme}/files/${u.id}`, { token: tok.acme });
      assert.equal(r.status, 200, u.label);
      assert.ok(r.bytes.equals(u.body), u.label);
      assert.match(r.headers["content-disposition"], /^attachment; filename\*=UTF-8''[A-Za-z0-9%*._-]+$/, u.label);
      assert.equal(r.headers["set-cookie"], undefined, u.label);
    }
  });

  test("globex's listing and rows are unaffected by acme's hostile uploads", async () => {
    const after = await w.request("GET", `/api/clients/${globex}/files?limit=100`, { token: tok.globex });
    assert.equal(after.status, 200);
    assert.deepEqual(after.json, globexBefore);
    assert.equal(after.json.items.length, 1);
    const rows = w.d1(`SELECT object_key FROM files WHERE tenant_id = '${globex}'`);
    assert.deepEqual(rows.map((r) => r.object_key), [`tenants/${globex}/uploads/${globexBefore.items[0].id}`]);
  });

  test("a traversal in the file-id path segment never reaches another tenant and never 5xxs", async () => {
    const gId = globexBefore.items[0].id;
    // Encoded slashes, backslashes and NUL inside a segment are refused as malformed paths.
    for (const seg of [`..%2f..%2f${globex}%2ffiles%2f${gId}`, "..%5cx", "%00", `fil_..%2f${gId}`]) {
      const r = await w.request("GET", `/api/clients/${acme}/files/${seg}`, { token: tok.acme });
      assert.equal(r.status, 400, `${seg}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.equal(errorCode(r), "invalid_path", seg);
    }
    // Dot segments (even percent-encoded) are resolved by the URL parser before the Worker sees
    // the path, so they can only land on another route, where tenancy decides: globex's is 404.
    const climb = await w.request("GET", `/api/clients/${acme}/files/%2e%2e/%2e%2e/${globex}/files/${gId}`, { token: tok.acme });
    assert.equal(climb.status, 404, climb.text);
    assert.equal(errorCode(climb), "not_found");
    const up = await w.request("GET", `/api/clients/${acme}/files/%2e%2e`, { token: tok.acme });
    assert.ok([200, 400, 404].includes(up.status), `${up.status}`);
    assert.ok(!up.text.includes(gId), "globex's file id never appears");
  });
});

describe("client A cannot reach client B's files by any route", () => {
  const gBody = Buffer.from("globex: patient list, confidential\n");
  let gFile;
  let aFile;

  before(async () => {
    const g = await upload(w, tok.globex, globex, gBody, "text/csv", { name: "patients.csv" });
    assert.equal(g.status, 201, g.text);
    gFile = g.json.id;
    const a = await upload(w, tok.acme, acme, Buffer.from("acme's own\n"), "text/plain", { name: "own.txt" });
    assert.equal(a.status, 201, a.text);
    aFile = a.json.id;
  });

  test("acme listing globex's files → 404; acme's own listing never shows globex's file", async () => {
    const r = await w.request("GET", `/api/clients/${globex}/files`, { token: tok.acme });
    assert.equal(r.status, 404);
    assert.equal(errorCode(r), "not_found");
    let cursor = "";
    const ids = [];
    for (;;) {
      const page = await w.request("GET", `/api/clients/${acme}/files?limit=5${cursor ? `&cursor=${cursor}` : ""}`, { token: tok.acme });
      assert.equal(page.status, 200);
      ids.push(...page.json.items.map((f) => f.id));
      if (!page.json.next_cursor) break;
      cursor = page.json.next_cursor;
    }
    assert.ok(ids.includes(aFile));
    assert.ok(!ids.includes(gFile));
  });

  const routes = [
    ["GET B's file under B's path", "GET", (c, f) => `/api/clients/${c.globex}/files/${f.g}`],
    ["GET B's file under A's own path", "GET", (c, f) => `/api/clients/${c.acme}/files/${f.g}`],
    ["sign B's file under B's path", "POST", (c, f) => `/api/clients/${c.globex}/files/${f.g}/sign`, { expires_in: 60 }],
    ["sign B's file under A's own path", "POST", (c, f) => `/api/clients/${c.acme}/files/${f.g}/sign`, { expires_in: 60 }],
    ["DELETE B's file under B's path", "DELETE", (c, f) => `/api/clients/${c.globex}/files/${f.g}`],
    ["DELETE B's file under A's own path", "DELETE", (c, f) => `/api/clients/${c.acme}/files/${f.g}`],
    ["upload into B's path", "POST", (c) => `/api/clients/${c.globex}/files?name=planted.txt`, Buffer.from("planted\n")],
    ["B's uploaded file as a public asset", "GET", (c, f) => `/assets/${f.g}`],
  ];
  for (const [name, method, path, payload] of routes) {
    test(`${name} → 404`, async () => {
      const opts = { token: tok.acme };
      if (Buffer.isBuffer(payload)) Object.assign(opts, { body: payload, headers: { "content-type": "text/plain" } });
      else if (payload) opts.json = payload;
      const r = await w.request(method, path({ acme, globex }, { g: gFile }), opts);
      assert.equal(r.status, 404, r.text);
      assert.doesNotMatch(r.text, /patient|confidential|Globex/i);
      if (path({ acme, globex }, { g: gFile }).startsWith("/api/")) assert.equal(errorCode(r), "not_found");
    });
  }

  test("on acme's portal host, B's file id under A's path → 404, and X-Tenant-Id / X-Forwarded-Host change nothing", async () => {
    const host = `acme.localhost:${w.port}`;
    const r = await w.request("GET", `/api/clients/${acme}/files/${gFile}`, { token: tok.acme, host });
    assert.equal(r.status, 404, r.text);
    const spoof = await w.request("GET", `/api/clients/${acme}/files/${gFile}`, {
      token: tok.acme, headers: { "x-tenant-id": globex, "x-forwarded-host": `globex.localhost:${w.port}` },
    });
    assert.equal(spoof.status, 404, spoof.text);
    // On globex's portal host, acme's token is a tenant mismatch (SPEC: Host and token disagree → 403).
    const other = await w.request("GET", `/api/clients/${globex}/files/${gFile}`, { token: tok.acme, host: `globex.localhost:${w.port}` });
    assert.equal(other.status, 403, other.text);
    assert.doesNotMatch(other.text, /patient|confidential/);
  });

  test("a signed URL for A's file cannot be re-pointed at B's file or tenant", async () => {
    const s = await w.request("POST", `/api/clients/${acme}/files/${aFile}/sign`, { token: tok.acme, json: { expires_in: 300 } });
    assert.equal(s.status, 200, s.text);
    const u = new URL(s.json.url, "http://x");
    const swapFile = `/api/files/signed/${gFile}${u.search}`;
    u.searchParams.set("t", globex);
    const swapBoth = `/api/files/signed/${gFile}?${u.searchParams}`;
    for (const path of [swapFile, swapBoth]) {
      const r = await w.request("GET", path);
      assert.equal(r.status, 403, path);
      assert.doesNotMatch(r.text, /patient|confidential/);
    }
  });

  test("afterwards B's file is intact and still downloads for B", async () => {
    const r = await w.request("GET", `/api/clients/${globex}/files/${gFile}`, { token: tok.globex });
    assert.equal(r.status, 200);
    assert.ok(r.bytes.equals(gBody));
    assert.equal(w.d1(`SELECT count(*) AS n FROM files WHERE tenant_id = '${globex}' AND name = 'planted.txt'`)[0].n, 0);
    assert.equal(w.d1(`SELECT status FROM files WHERE id = '${gFile}'`)[0].status, "ready");
  });
});

describe("signed URLs", () => {
  const body = Buffer.concat([Buffer.from("%PDF-1.4\n"), crypto.randomBytes(4096)]);
  let file;
  let other;
  let signed;

  before(async () => {
    const r = await upload(w, tok.acme, acme, body, "application/pdf", { name: "contract.pdf" });
    assert.equal(r.status, 201, r.text);
    file = r.json;
    const o = await upload(w, tok.acme, acme, Buffer.from("another acme file\n"), "text/plain", { name: "other.txt" });
    other = o.json;
    const s = await w.request("POST", `/api/clients/${acme}/files/${file.id}/sign`, { token: tok.acme, json: { expires_in: 600 } });
    assert.equal(s.status, 200, s.text);
    signed = s.json;
  });

  test("signing returns a path under /api/files/signed/ with an expiry about expires_in from now", () => {
    assert.match(signed.url, new RegExp(`^/api/files/signed/${file.id}\\?t=${acme}&e=\\d+&s=[A-Za-z0-9_-]+$`));
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(signed.expires_at - (now + 600)) <= 5, `${signed.expires_at} vs ${now + 600}`);
  });

  test("the signed URL downloads the file with no token at all", async () => {
    const r = await w.request("GET", signed.url);
    assert.equal(r.status, 200, r.text);
    assert.equal(sha256(r.bytes), file.sha256);
    assert.equal(r.headers["content-type"], "application/pdf");
    assert.match(r.headers["content-disposition"], /^attachment;/);
    const part = await w.request("GET", signed.url, { headers: { range: "bytes=0-8" } });
    assert.equal(part.status, 206);
    assert.equal(part.text, "%PDF-1.4\n");
  });

  test("a tampered signature, tenant, expiry or file id → 403 invalid_signature", async () => {
    const u = new URL(signed.url, "http://x");
    const q = Object.fromEntries(u.searchParams);
    const flip = (s) => (s[0] === "A" ? "B" : "A") + s.slice(1);
    const qs = (o) => new URLSearchParams(o).toString();
    const cases = {
      signature: `/api/files/signed/${file.id}?${qs({ ...q, s: flip(q.s) })}`,
      "truncated signature": `/api/files/signed/${file.id}?${qs({ ...q, s: q.s.slice(0, -2) })}`,
      "missing signature": `/api/files/signed/${file.id}?${qs({ t: q.t, e: q.e })}`,
      tenant: `/api/files/signed/${file.id}?${qs({ ...q, t: globex })}`,
      "later expiry": `/api/files/signed/${file.id}?${qs({ ...q, e: String(Number(q.e) + 3600) })}`,
      "earlier expiry": `/api/files/signed/${file.id}?${qs({ ...q, e: String(Number(q.e) - 1) })}`,
      "non-numeric expiry": `/api/files/signed/${file.id}?${qs({ ...q, e: "9999999999x" })}`,
      "other file id": `/api/files/signed/${other.id}?${qs(q)}`,
    };
    for (const [what, path] of Object.entries(cases)) {
      const r = await w.request("GET", path);
      assert.equal(r.status, 403, `${what}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.equal(errorCode(r), "invalid_signature", what);
      assert.notEqual(sha256(r.bytes), file.sha256);
    }
  });

  test("a signed URL expires: signed with expires_in 1, it is refused 403 after 2.5 s", async () => {
    const s = await w.request("POST", `/api/clients/${acme}/files/${file.id}/sign`, { token: tok.acme, json: { expires_in: 1 } });
    assert.equal(s.status, 200, s.text);
    await new Promise((r) => setTimeout(r, 2500));
    const r = await w.request("GET", s.json.url);
    assert.equal(r.status, 403);
    assert.equal(errorCode(r), "invalid_signature");
    assert.equal((await w.request("GET", signed.url)).status, 200, "the long-lived URL still works");
  });

  test("expires_in outside 1 s – 7 days is refused 422", async () => {
    for (const expires_in of [0, -5, 7 * 24 * 3600 + 1]) {
      const r = await w.request("POST", `/api/clients/${acme}/files/${file.id}/sign`, { token: tok.acme, json: { expires_in } });
      assert.equal(r.status, 422, String(expires_in));
      assert.equal(errorCode(r), "invalid_expiry");
    }
  });

  test("a signed URL stops working once its file is deleted", async () => {
    const s = await w.request("POST", `/api/clients/${acme}/files/${other.id}/sign`, { token: tok.acme, json: { expires_in: 600 } });
    assert.equal((await w.request("GET", s.json.url)).status, 200);
    assert.equal((await w.request("DELETE", `/api/clients/${acme}/files/${other.id}`, { token: tok.acme })).status, 204);
    // A link to a file that is gone answers exactly like a forged one: it reveals nothing.
    const r = await w.request("GET", s.json.url);
    assert.equal(r.status, 403);
    assert.equal(errorCode(r), "invalid_signature");
  });
});

describe("content type sniffing", () => {
  const exe = Buffer.concat([Buffer.from("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff", "latin1"), crypto.randomBytes(512)]);

  test("an .exe (MZ bytes) declared image/png → 415, and no row or object is left", async () => {
    const before = w.d1("SELECT count(*) AS n FROM files")[0].n;
    const r = await upload(w, tok.acme, acme, exe, "image/png", { name: "cute-cat.png" });
    assert.equal(r.status, 415, r.text);
    assert.equal(errorCode(r), "unsupported_media_type");
    assert.match(r.json.error.message, /x-msdownload/);
    assert.equal(w.d1("SELECT count(*) AS n FROM files")[0].n, before);
  });

  test("the same .exe as text/plain, application/pdf or image/x-icon → 415", async () => {
    for (const type of ["text/plain", "application/pdf", "image/x-icon", "IMAGE/PNG; charset=binary"]) {
      const r = await upload(w, tok.acme, acme, exe, type, { name: "x.bin" });
      assert.equal(r.status, 415, `${type}: ${r.text}`);
      assert.equal(errorCode(r), "unsupported_media_type");
    }
  });

  test("types outside the allowlist, or no Content-Type, → 415; HTML and SVG are not accepted", async () => {
    for (const [type, bytes] of [["text/html", "<script>alert(1)</script>"], ["image/svg+xml", "<svg onload=alert(1)>"], ["application/octet-stream", "x"], [undefined, "plain"]]) {
      const r = await upload(w, tok.acme, acme, Buffer.from(bytes), type, { name: "x" });
      assert.equal(r.status, 415, `${type}: ${r.text}`);
      assert.equal(errorCode(r), "unsupported_media_type");
    }
  });

  test("an empty upload → 422 empty_file", async () => {
    const r = await upload(w, tok.acme, acme, Buffer.alloc(0), "text/plain", { name: "empty.txt" });
    assert.equal(r.status, 422, r.text);
    assert.equal(errorCode(r), "empty_file");
  });

  test("a real PNG, GIF and CSV are accepted under their own types", async () => {
    for (const [type, bytes] of [["image/png", Buffer.concat([PNG_MAGIC, Buffer.alloc(32)])], ["image/gif", Buffer.from("GIF89a\x01\x00\x01\x00", "latin1")], ["text/csv", Buffer.from("a,b\n1,2\n")]]) {
      const r = await upload(w, tok.acme, acme, bytes, type, { name: "ok" });
      assert.equal(r.status, 201, `${type}: ${r.text}`);
      assert.equal(r.json.content_type, type);
    }
  });
});

describe("delete removes the D1 row and the R2 object together", () => {
  test("after DELETE → 204 the row and the object are gone, GET is 404 and a second DELETE is 404", async () => {
    const body = Buffer.from("to be deleted\n");
    const up = await upload(w, tok.acme, acme, body, "text/plain", { name: "bye.txt" });
    assert.equal(up.status, 201, up.text);
    const id = up.json.id;
    const key = `tenants/${acme}/uploads/${id}`;
    assert.deepEqual(w.d1(`SELECT object_key, status FROM files WHERE id = '${id}'`), [{ object_key: key, status: "ready" }]);
    assert.ok(r2Object(w, key)?.equals(body), "the object is in R2 before the delete");

    const d = await w.request("DELETE", `/api/clients/${acme}/files/${id}`, { token: tok.acme });
    assert.equal(d.status, 204, d.text);
    assert.equal(d.bytes.length, 0);

    assert.deepEqual(w.d1(`SELECT id FROM files WHERE id = '${id}'`), []);
    assert.equal(r2Object(w, key), null, "the object is gone from R2");
    const g = await w.request("GET", `/api/clients/${acme}/files/${id}`, { token: tok.acme });
    assert.equal(g.status, 404);
    assert.equal(errorCode(g), "not_found");
    const list = await w.request("GET", `/api/clients/${acme}/files?limit=100`, { token: tok.acme });
    assert.ok(!list.json.items.some((f) => f.id === id));
    const again = await w.request("DELETE", `/api/clients/${acme}/files/${id}`, { token: tok.acme });
    assert.equal(again.status, 404);
    const audit = w.d1(`SELECT action FROM audit_log WHERE target_id = '${id}' ORDER BY at, rowid`).map((r) => r.action);
    assert.deepEqual(audit, ["file.uploaded", "file.deleted"]);
  });
});

describe("throughput", () => {
  test("a 10 MB PDF uploads three times and downloads three times with identical sha256", async () => {
    const size = 10_000_000;
    const body = Buffer.concat([Buffer.from("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "latin1"), crypto.randomBytes(size - 15)]);
    assert.equal(body.length, size);
    const want = sha256(body);
    const up = [];
    const down = [];
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await upload(w, tok.acme, acme, body, "application/pdf", { name: `big-${i}.pdf` });
      up.push(performance.now() - t0);
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.sha256, want);
      assert.equal(r.json.size, size);
      ids.push(r.json.id);
    }
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await w.request("GET", `/api/clients/${acme}/files/${ids[i]}`, { token: tok.acme });
      down.push(performance.now() - t0);
      assert.equal(r.status, 200);
      assert.equal(r.headers["content-length"], String(size));
      assert.equal(sha256(r.bytes), want);
    }
    const mbps = (ms) => (size / 1e6 / (ms / 1000)).toFixed(1);
    console.log(`THROUGHPUT upload 10MB: ${mbps(median(up))} MB/s, download: ${mbps(median(down))} MB/s ` +
      `(median of 3; upload ms ${up.map((x) => x.toFixed(0)).join("/")}, download ms ${down.map((x) => x.toFixed(0)).join("/")})`);
    for (const id of ids) assert.equal((await w.request("DELETE", `/api/clients/${acme}/files/${id}`, { token: tok.acme })).status, 204);
  });
});

describe("size limit and storage quota (a second worker with small limits)", () => {
  const MAX = 4096;
  const QUOTA = 10240;
  let s;
  const t = {};
  let ids = {};

  before(async () => {
    s = await startWorker({ vars: { ...testSecrets(), MAX_UPLOAD_BYTES: String(MAX) } });
    t.acme = await s.login("admin@acme.test");
    t.globex = await s.login("admin@globex.test");
    ids.acme = (await s.request("GET", "/api/me", { token: t.acme })).json.context.tenant;
    ids.globex = (await s.request("GET", "/api/me", { token: t.globex })).json.context.tenant;
    // The agency sets both clients' storage limits below their plan's (a per-client override).
    const agency = await s.login("agency.admin@northwind.test");
    for (const id of [ids.acme, ids.globex]) {
      const r = await s.request("PUT", `/api/clients/${id}`, { token: agency, json: { limits: { storage_bytes: QUOTA } } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.limits.storage_bytes, QUOTA);
    }
  });
  after(async () => { await s?.stop(); });

  const text = (n) => Buffer.alloc(n, "x");
  const uploaded = [];

  test("exactly MAX_UPLOAD_BYTES is accepted; one byte more → 413 payload_too_large with nothing stored", async () => {
    const ok = await upload(s, t.acme, ids.acme, text(MAX), "text/plain", { name: "max.txt" });
    assert.equal(ok.status, 201, ok.text);
    uploaded.push(ok.json.id);
    const big = await upload(s, t.acme, ids.acme, text(MAX + 1), "text/plain", { name: "big.txt" });
    assert.equal(big.status, 413, big.text);
    assert.equal(errorCode(big), "payload_too_large");
    const huge = await upload(s, t.acme, ids.acme, Buffer.concat([Buffer.from("%PDF-"), crypto.randomBytes(2_000_000)]), "application/pdf", { name: "huge.pdf" });
    assert.equal(huge.status, 413);
    assert.equal(s.d1(`SELECT count(*) AS n FROM files WHERE tenant_id = '${ids.acme}'`)[0].n, 1);
  });

  test("uploads fill the quota exactly; the next byte → 429 quota_exceeded (storage_bytes)", async () => {
    const second = await upload(s, t.acme, ids.acme, text(MAX), "text/plain", { name: "second.txt" });
    assert.equal(second.status, 201, second.text);
    uploaded.push(second.json.id);
    const over = await upload(s, t.acme, ids.acme, text(MAX), "text/plain", { name: "over.txt" });
    assert.equal(over.status, 429, over.text);
    assert.equal(errorCode(over), "quota_exceeded");
    const fill = await upload(s, t.acme, ids.acme, text(QUOTA - 2 * MAX), "text/plain", { name: "fill.txt" });
    assert.equal(fill.status, 201, `exactly at the quota is allowed: ${fill.text}`);
    uploaded.push(fill.json.id);
    const one = await upload(s, t.acme, ids.acme, text(1), "text/plain", { name: "one.txt" });
    assert.equal(one.status, 429, one.text);
    assert.equal(errorCode(one), "quota_exceeded");
    assert.equal(s.d1(`SELECT sum(size) AS used FROM files WHERE tenant_id = '${ids.acme}'`)[0].used, QUOTA);
  });

  test("the quota is per client: globex still uploads while acme is full", async () => {
    const g = await upload(s, t.globex, ids.globex, text(MAX), "text/plain", { name: "g.txt" });
    assert.equal(g.status, 201, g.text);
  });

  test("deleting a file frees its bytes: the refused upload now succeeds", async () => {
    assert.equal((await s.request("DELETE", `/api/clients/${ids.acme}/files/${uploaded[0]}`, { token: t.acme })).status, 204);
    const again = await upload(s, t.acme, ids.acme, text(MAX), "text/plain", { name: "over.txt" });
    assert.equal(again.status, 201, again.text);
  });

  test("concurrent uploads cannot together exceed the quota: of six 4 KB uploads into an empty 10 KB quota, at most two succeed", async () => {
    // Start from zero bytes used.
    for (const row of s.d1(`SELECT id FROM files WHERE tenant_id = '${ids.acme}' AND status = 'ready'`)) {
      assert.equal((await s.request("DELETE", `/api/clients/${ids.acme}/files/${row.id}`, { token: t.acme })).status, 204);
    }
    assert.equal(s.d1(`SELECT count(*) AS n FROM files WHERE tenant_id = '${ids.acme}'`)[0].n, 0);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) =>
      upload(s, t.acme, ids.acme, text(MAX), "text/plain", { name: `race-${i}.txt` })));
    const statuses = results.map((r) => r.status);
    for (const r of results) assert.ok([201, 429].includes(r.status), `${r.status} ${r.text}`);
    const used = s.d1(`SELECT coalesce(sum(size), 0) AS used FROM files WHERE tenant_id = '${ids.acme}'`)[0].used;
    assert.ok(used <= QUOTA, `stored ${used} bytes against a quota of ${QUOTA} (statuses ${statuses.join(",")})`);
    assert.equal(statuses.filter((x) => x === 201).length, 2, `statuses ${statuses.join(",")}`);
  });
});
