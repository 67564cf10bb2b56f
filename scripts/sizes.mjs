// Prints raw and gzipped sizes of the Worker bundle and the widget; fails over budget.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

// The wasm budget is ours, far under Cloudflare's (3 MB compressed on Free, 10 MB on Paid): a
// guard on cold start, which scripts/bench.sh measures, and issue 12's target. It was raised to
// 1 MB when templates took the build to 808.6 KB, and is back at 800 KB since the tenth session's
// size pass (792.1 KB; README "Benchmarks"): a change that crosses it says what it bought.
const BUDGET = { wasmGzip: 800 * 1024, widgetGzip: 10 * 1024, consoleGzip: 60 * 1024 };
const sizes = {};
for (const [name, path] of [["wasm", "build/index_bg.wasm"], ["glue", "build/index.js"], ["widget", "widget/dist/widget.js"],
  ["console", "console/dist/console.js"], ["consolecss", "console/dist/console.css"]]) {
  const buf = readFileSync(path);
  sizes[name] = { raw: buf.length, gzip: gzipSync(buf, { level: 9 }).length };
}
for (const [name, s] of Object.entries(sizes)) {
  console.log(`${name.padEnd(7)} ${(s.raw / 1024).toFixed(1).padStart(8)} KB raw ${(s.gzip / 1024).toFixed(1).padStart(8)} KB gzipped`);
}
if (sizes.wasm.gzip > BUDGET.wasmGzip) throw new Error(`wasm gzipped ${sizes.wasm.gzip} B is over the ${BUDGET.wasmGzip} B budget`);
if (sizes.console.gzip > BUDGET.consoleGzip) throw new Error(`console gzipped ${sizes.console.gzip} B is over the ${BUDGET.consoleGzip} B budget`);
if (sizes.widget.gzip > BUDGET.widgetGzip) throw new Error(`widget gzipped ${sizes.widget.gzip} B is over the ${BUDGET.widgetGzip} B budget`);
