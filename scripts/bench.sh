#!/usr/bin/env bash
# The benchmark: builds the release Worker as deployed, then measures Gatehouse against an
# empty Worker on the same workerd. Writes bench/results/latest.{json,md}. About 10 minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
# BENCH_BEFORE_REV=<commit>: also measure that commit's build, on the same dataset, in this run.
if [ -n "${BENCH_BEFORE_REV:-}" ]; then
  BEFORE_DIR="$GATEHOUSE_CACHE/bench-before"
  log "building $BENCH_BEFORE_REV for the before/after pair (in $BEFORE_DIR)"
  git worktree remove --force "$BEFORE_DIR" >/dev/null 2>&1 || rm -rf "$BEFORE_DIR"
  git worktree add --detach "$BEFORE_DIR" "$BENCH_BEFORE_REV" >/dev/null
  ln -s "$ROOT/node_modules" "$BEFORE_DIR/node_modules"
  # Its own target dir: in the shared one, the older checkout's artifacts would later pass for
  # this checkout's (cargo's fingerprints do not include the source path).
  (cd "$BEFORE_DIR" && CARGO_TARGET_DIR="$GATEHOUSE_CACHE/bench-before-target" bash scripts/build.sh \
    >"$GATEHOUSE_CACHE/bench-before-build.log" 2>&1) \
    || { tail -30 "$GATEHOUSE_CACHE/bench-before-build.log"; exit 1; }
  export BENCH_BEFORE_CONFIG="$BEFORE_DIR/wrangler.toml"
fi
bash scripts/build.sh
cargo build --quiet --release --bin gatehouse-seed
log "building the empty workers-rs baseline (bench/rust-empty)"
(cd bench/rust-empty && worker-build --release >"$GATEHOUSE_CACHE/rust-empty-build.log" 2>&1) || { tail -30 "$GATEHOUSE_CACHE/rust-empty-build.log"; exit 1; }
# The Worker is measured as `scripts/build.sh` makes it, which is what the README's deploy step
# uploads: no wasm-opt (its -Oz output gzips about 9% larger than LLVM's "z").
rm -f build/index_bg.pre-opt.wasm
# The TypeScript peer, as ../shared/yardstick ships it (read-only there): copied once into the
# cache and given its node_modules (hono), then run with the project's own wrangler.
YARDSTICK_SRC="$ROOT/../shared/yardstick"
export YARDSTICK_DIR="$GATEHOUSE_CACHE/yardstick"
STAMP="$(cd "$YARDSTICK_SRC" && find . -type f -not -path './node_modules/*' | sort | xargs sha256sum | sha256sum | cut -c1-16)"
if [ ! -d "$YARDSTICK_DIR/node_modules/hono" ] || [ "$(cat "$YARDSTICK_DIR/.source-stamp" 2>/dev/null)" != "$STAMP" ]; then
  log "copying the yardstick (empty Worker and TS peer) to $YARDSTICK_DIR"
  rm -rf "$YARDSTICK_DIR" && mkdir -p "$YARDSTICK_DIR" && cp -r "$YARDSTICK_SRC/." "$YARDSTICK_DIR"
  # npm install, not npm ci: ci trips on the lock's optional platform packages (as in setup.sh).
  (cd "$YARDSTICK_DIR" && npm install --no-audit --no-fund --loglevel=error)
  echo "$STAMP" >"$YARDSTICK_DIR/.source-stamp"
fi
node --no-warnings bench/run.mjs
if [ -n "${BENCH_BEFORE_REV:-}" ]; then git worktree remove --force "$BEFORE_DIR" >/dev/null 2>&1 || true; fi
