// The API held to its OpenAPI document (openapi.json): schemathesis, pinned and installed by
// scripts/test.sh, against a real wrangler dev with the demo data, once per role's token, with a
// bounded number of generated cases per operation. Checks: no server error, only the declared
// status codes, the declared content types, and responses matching their schemas. Exits non-zero
// on any failure; the summary of each role's run is printed.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { startWorker, testSecrets, ROOT } from "../e2e/harness.mjs";

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

const w = await startWorker({ vars: { ...testSecrets(), LOG_LEVEL: "warn", API_RATE_LIMITS: "false" } });
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
    ];
    for (const id of EXCLUDED) args.push("--exclude-operation-id", id);
    const started = Date.now();
    const r = spawnSync(ST, args, { encoding: "utf8", maxBuffer: 256 << 20 });
    const out = `${r.stdout}${r.stderr}`;
    const summary = out.trim().split("\n").filter((l) => /passed|failed|errored|skipped|in \d/.test(l)).slice(-3).join(" | ");
    console.log(`${role}: ${summary} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    if (r.status !== 0) {
      failed = true;
      console.log(out.split("\n").slice(-200).join("\n"));
    }
  }
} finally {
  await w.stop();
}
process.exit(failed ? 1 : 0);
