// The API held to its OpenAPI document (openapi.json): schemathesis, pinned and installed by
// scripts/test.sh, against a real wrangler dev with the demo data, once per role's token, with a
// bounded number of generated cases per operation. Checks: no server error, only the declared
// status codes, the declared content types, and responses matching their schemas. Exits non-zero
// on any failure; the summary of each role's run is printed.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { startWorker, testSecrets, ROOT } from "../e2e/harness.mjs";
import { startFakeDoh } from "../e2e/fake-doh.mjs";

const ST = process.env.SCHEMATHESIS_BIN || "st";
const EXAMPLES = process.env.CONTRACT_MAX_EXAMPLES || "8";
// Roles from least to most privileged.
const ROLES = [
  ["client_viewer", "viewer@acme.test"],
  ["client_admin", "admin@acme.test"],
  ["agency_admin", "agency.admin@northwind.test"],
  ["platform_admin", "admin@gatehouse.test"],
];
// Operations left out, each with its reason (README, "API contract").
const EXCLUDED = [
  // Ends every session of the user whose token the run carries, so the rest of the run would
  // only see 401s. Its native and end-to-end tests cover it.
  "post_api_auth_logout_everywhere",
  // Soft-deletes the demo client the examples point at, for the roles after this one.
  "delete_api_clients_client_id",
];

// DNS lies outside Cloudflare, so it is a fake on loopback, as in the end-to-end suites: every
// name is NXDOMAIN, so domain proofs fail and webhook URLs are refused, as they would be for
// names that do not exist.
const doh = await startFakeDoh();

/** Runs a command to its end, with its stdout and stderr as one string. */
function run(cmd, args) {
  return new Promise((resolve, reject) => {
    // In the reports directory: schemathesis keeps a cache in its working directory.
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], cwd: reports });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, output }));
  });
}
// Which operations a run saw succeed: only a 2xx is checked against a success schema, so this
// says how much of the document the run really held the Worker to.
const DOC = JSON.parse(readFileSync(join(ROOT, "openapi.json"), "utf8"));
const OPERATIONS = Object.entries(DOC.paths).flatMap(([path, item]) =>
  Object.keys(item).map((method) => ({
    key: `${method.toUpperCase()} ${path}`,
    method: method.toUpperCase(),
    re: new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`),
  })),
);
function succeeded(harPath) {
  const ok = new Set();
  for (const e of JSON.parse(readFileSync(harPath, "utf8")).log.entries) {
    if (e.response.status < 200 || e.response.status > 299) continue;
    const path = new URL(e.request.url).pathname;
    const op = OPERATIONS.find((o) => o.method === e.request.method && o.re.test(path));
    if (op) ok.add(op.key);
  }
  return ok;
}
const reports = mkdtempSync(join(tmpdir(), "gatehouse-contract-"));
const everSucceeded = new Set();

const w = await startWorker({
  vars: { ...testSecrets(), LOG_LEVEL: "warn", API_RATE_LIMITS: "false", DOH_RESOLVER_URL: doh.url },
});
let failed = false;
try {
  for (const [role, email] of ROLES) {
    const token = await w.login(email);
    const args = [
      "run", join(ROOT, "openapi.json"),
      "--url", `http://127.0.0.1:${w.port}`,
      "--header", `Authorization: Bearer ${token}`,
      "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
      "--phases", "examples,fuzzing",
      "--max-examples", EXAMPLES,
      "--seed", "20261206",
      "--request-timeout", "20",
      "--no-color",
      "--warnings", "off",
      "--report", "har",
      "--report-har-path", join(reports, `${role}.har`),
    ];
    for (const id of EXCLUDED) args.push("--exclude-operation-id", id);
    const started = Date.now();
    // Not spawnSync: the fake resolver answers from this process's event loop.
    const r = await run(ST, args);
    const out = r.output;
    const summary = out.trim().split("\n").filter((l) => /passed|failed|errored|skipped|in \d/.test(l)).slice(-3).join(" | ");
    let ok = new Set();
    try {
      ok = succeeded(join(reports, `${role}.har`));
    } catch (e) {
      console.log(`${role}: no HAR report (${e.message})`);
    }
    ok.forEach((k) => everSucceeded.add(k));
    console.log(`${role}: ${summary} (${((Date.now() - started) / 1000).toFixed(0)} s); a 2xx checked against its schema on ${ok.size} of ${OPERATIONS.length} operations`);
    if (r.status !== 0) {
      failed = true;
      console.log(out.split("\n").slice(-200).join("\n"));
    }
  }
} finally {
  await w.stop();
  await doh.stop();
  rmSync(reports, { recursive: true, force: true });
}
console.log(`all roles: a 2xx checked against its schema on ${everSucceeded.size} of ${OPERATIONS.length} operations`);
if (process.env.CONTRACT_LIST_UNREACHED) {
  console.log(OPERATIONS.filter((o) => !everSucceeded.has(o.key)).map((o) => o.key).join("\n"));
}
process.exit(failed ? 1 : 0);
