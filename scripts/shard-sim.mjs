#!/usr/bin/env node
// Shard planning, simulated: a directory of agencies and clients with a skewed size distribution,
// placed on D1 shards under a size cap, and what moving one agency costs.
//
//   node scripts/shard-sim.mjs                      # 10,000 agencies, 1,000,000 clients
//   node scripts/shard-sim.mjs --agencies 500 --clients 40000 --cap-gb 7 --seed 7
//
// Every number the model rests on is a flag with its default printed in the report, so a reader
// can argue with the assumption rather than with the result. Deterministic for a given --seed.

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => {
    if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
const num = (name, dflt) => (args[name] === undefined ? dflt : Number(args[name]));

const P = {
  agencies: num('agencies', 10_000),
  clients: num('clients', 1_000_000),
  // Clients per agency: Pareto (a few agencies hold thousands, most a few dozen).
  paretoAlpha: num('pareto-alpha', 1.5),
  // One client's data-plane bytes (rows plus their indexes): log-normal around the median.
  clientMedianMb: num('client-median-mb', 1.5),
  clientSigma: num('client-sigma', 1.1),
  // Average stored row, index entries included, to turn bytes into rows for the move.
  rowBytes: num('row-bytes', 420),
  // D1's cap is 10 GB; a shard is filled to --cap-gb, leaving the rest for growth and moves.
  capGb: num('cap-gb', 7),
  d1MaxGb: 10,
  // The move tool (tenants::moves): rows per statement, and the rates ./scripts/bench.sh
  // measured on local D1 (bench/results/move.json: 50,075 rows). A remote D1 adds a round trip
  // per statement (--d1-rtt-ms); a copy and a verification take two statements a chunk.
  chunkRows: num('chunk-rows', 200),
  copyRowsPerSec: num('copy-rows-per-sec', 12_300),
  verifyRowsPerSec: num('verify-rows-per-sec', 10_900),
  d1RttMs: num('d1-rtt-ms', 10),
  // Waited before the copy and again before the old rows go (SHARD_MOVE_SETTLE_MS).
  settleSec: num('settle-sec', 60),
  seed: num('seed', 42),
};

// mulberry32: small, seeded, good enough for a simulation.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(P.seed);
const normal = () => {
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
};

const MB = 1024 * 1024;
const GB = 1024 * MB;

// 1. Clients per agency: Pareto weights scaled to the total, at least one client each.
const weights = Array.from({ length: P.agencies }, () => Math.pow(1 - rand(), -1 / P.paretoAlpha));
const wsum = weights.reduce((s, w) => s + w, 0);
const counts = weights.map((w) => Math.max(1, Math.floor((w / wsum) * P.clients)));
let short = P.clients - counts.reduce((s, c) => s + c, 0);
for (let i = 0; short > 0; i = (i + 1) % P.agencies, short--) counts[i]++;

// 2. Each client's size, log-normal; an agency is the sum of its clients.
const agencies = counts.map((n, id) => {
  const clients = Array.from({ length: n }, () => P.clientMedianMb * MB * Math.exp(P.clientSigma * normal()));
  return { id, clients, bytes: clients.reduce((s, b) => s + b, 0) };
});
const totalBytes = agencies.reduce((s, a) => s + a.bytes, 0);

// 3. Placement: an agency lives on one shard. Largest first, each onto the fullest shard it still
// fits (best fit decreasing). An agency larger than the cap cannot live on one shard: its clients
// are spread over dedicated shards, and the directory's per-client `shard` column says where.
const cap = P.capGb * GB;
const shards = []; // { bytes, agencies }
const split = [];
for (const a of [...agencies].sort((x, y) => y.bytes - x.bytes)) {
  if (a.bytes > cap) {
    split.push(a);
    let cur = null;
    for (const c of [...a.clients].sort((x, y) => y - x)) {
      if (!cur || cur.bytes + c > cap) {
        cur = { bytes: 0, agencies: 0 };
        shards.push(cur);
      }
      cur.bytes += c;
    }
    cur.agencies += 1;
    continue;
  }
  let best = null;
  for (const s of shards) {
    if (s.bytes + a.bytes <= cap && (!best || s.bytes > best.bytes)) best = s;
  }
  if (!best) {
    best = { bytes: 0, agencies: 0 };
    shards.push(best);
  }
  best.bytes += a.bytes;
  best.agencies += 1;
}

// 4. Report.
const q = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const fills = shards.map((s) => s.bytes).sort((x, y) => x - y);
const meanFill = totalBytes / shards.length;
const sizes = agencies.map((a) => a.bytes).sort((x, y) => x - y);
const clientCounts = [...counts].sort((x, y) => x - y);
const gb = (b) => (b / GB).toFixed(2);
const mb = (b) => (b / MB).toFixed(1);

/** The write fence of a move: the settling time, the copy and the verification, at the local
 *  rates and with a round trip added to each of the two statements per chunk. */
function moveCost(bytes) {
  const rows = bytes / P.rowBytes;
  const chunks = Math.ceil(rows / P.chunkRows);
  const local = rows / P.copyRowsPerSec + rows / P.verifyRowsPerSec;
  const remote = local + (chunks * 4 * P.d1RttMs) / 1000;
  return { rows, chunks, fenceLocal: P.settleSec + local, fenceRemote: P.settleSec + remote };
}
const dur = (sec) => (sec < 120 ? `${sec.toFixed(0)} s` : sec < 7200 ? `${(sec / 60).toFixed(1)} min` : `${(sec / 3600).toFixed(1)} h`);
const fmtMove = (label, bytes) => {
  const m = moveCost(bytes);
  return `| ${label} | ${mb(bytes)} MB | ${Math.round(m.rows).toLocaleString('en')} | ${m.chunks.toLocaleString('en')} | ${dur(m.fenceLocal)} | ${dur(m.fenceRemote)} |`;
};

const out = [];
out.push(`# Shard simulation (seed ${P.seed})`, '');
out.push(
  `Assumptions: ${P.agencies.toLocaleString('en')} agencies, ${P.clients.toLocaleString('en')} clients; clients per agency Pareto(α=${P.paretoAlpha});`,
  `client size log-normal, median ${P.clientMedianMb} MB, σ=${P.clientSigma}; shards filled to ${P.capGb} GB of D1's ${P.d1MaxGb} GB;`,
  `${P.rowBytes} B per stored row; the move copies ${P.copyRowsPerSec} and verifies ${P.verifyRowsPerSec} rows/s on local D1 in ${P.chunkRows}-row chunks, after ${P.settleSec} s of settling.`,
  '',
);
out.push('| measure | value |', '|---|---|');
out.push(`| data, all tenants | ${gb(totalBytes)} GB |`);
out.push(`| mean client | ${mb(totalBytes / P.clients)} MB |`);
out.push(`| clients per agency: median / p99 / max | ${q(clientCounts, 0.5)} / ${q(clientCounts, 0.99)} / ${clientCounts[clientCounts.length - 1]} |`);
out.push(`| agency size: median / p99 / max | ${mb(q(sizes, 0.5))} MB / ${gb(q(sizes, 0.99))} GB / ${gb(sizes[sizes.length - 1])} GB |`);
out.push(`| **shards** | **${shards.length}** |`);
out.push(`| shard fill: min / median / max | ${gb(fills[0])} / ${gb(q(fills, 0.5))} / ${gb(fills[fills.length - 1])} GB |`);
out.push(`| fill skew (max / mean) | ${(fills[fills.length - 1] / meanFill).toFixed(2)} |`);
out.push(`| shards under half full | ${fills.filter((f) => f < cap / 2).length} |`);
out.push(`| agencies per shard: median | ${q(shards.map((s) => s.agencies).sort((x, y) => x - y), 0.5)} |`);
out.push(`| agencies larger than one shard (split by client) | ${split.length}${split.length ? ` (largest ${gb(split[0].bytes)} GB over ${Math.ceil(split[0].bytes / cap)}+ shards)` : ''} |`);
out.push('');
out.push('Moving one agency: its writes are fenced from the start to the flip (settling, copy, verification):', '');
out.push(`| agency | data | rows | chunks | write fence, local D1 rates | write fence, +${P.d1RttMs} ms a statement |`, '|---|---|---|---|---|---|');
out.push(fmtMove('median', q(sizes, 0.5)));
out.push(fmtMove('p90', q(sizes, 0.9)));
out.push(fmtMove('p99', q(sizes, 0.99)));
const largestOnOne = sizes.filter((b) => b <= cap).pop();
out.push(fmtMove('largest on one shard', largestOnOne));
console.log(out.join('\n'));
