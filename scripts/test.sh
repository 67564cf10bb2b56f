#!/usr/bin/env bash
# Runs every test: fmt, clippy (native and wasm32), native tests, the release wasm build,
# `wrangler deploy --dry-run`, the end-to-end and browser suites against real wrangler dev, and
# schemathesis holding the API to openapi.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
SECONDS=0

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (native, all targets)"
cargo clippy --all-targets --quiet -- -D warnings

step "clippy (wasm32)"
cargo clippy --lib --target wasm32-unknown-unknown --quiet -- -D warnings

step "native tests (unit + API against in-memory SQLite)"
cargo test --quiet 2>&1 | tee "$GATEHOUSE_CACHE/native-tests.log" | grep -E '^test result|FAILED|panicked' >&2
! grep -q FAILED "$GATEHOUSE_CACHE/native-tests.log"

for shards in 1 2; do
  step "native API tests on the control plane and $shards data shard(s), each its own database"
  GATEHOUSE_TEST_SHARDS=$shards cargo test --quiet --test api 2>&1 | tee "$GATEHOUSE_CACHE/native-tests-shards.log" \
    | grep -E '^test result|FAILED|panicked' >&2
  ! grep -q FAILED "$GATEHOUSE_CACHE/native-tests-shards.log"
done

step "release build (wasm) and seed tool"
bash scripts/build.sh
cargo build --quiet --release --bin gatehouse-seed

step "wrangler deploy --dry-run"
DRY="$(mktemp -d)"
wrangler deploy --dry-run --outdir "$DRY" >"$DRY.log" 2>&1 || { cat "$DRY.log"; exit 1; }
grep -q "dry-run: exiting now" "$DRY.log" && echo "bundled: $(du -sh "$DRY" | cut -f1)" >&2
rm -rf "$DRY" "$DRY.log"

step "sizes"
node scripts/sizes.mjs

# The whole suite on the control plane and two data shards (wrangler.toml, as dev.sh runs), then
# on the control plane and one.
for shards in 2 1; do
  step "end-to-end and browser tests (wrangler dev, headless Chromium), $shards data shard(s)"
  GATEHOUSE_E2E_SHARDS=$shards node --test --test-concurrency=1 --test-reporter=spec tests/e2e/*.test.mjs 2>&1 \
    | tee "$GATEHOUSE_CACHE/e2e-tests-$shards.log" | grep -vE '^\s*$' | tail -n 12 >&2
  grep -qE '^ℹ fail 0$' "$GATEHOUSE_CACHE/e2e-tests-$shards.log"
done

step "API contract (schemathesis ${SCHEMATHESIS_VERSION} against openapi.json, one run per role)"
ST_DIR="$GATEHOUSE_CACHE/tools/schemathesis-$SCHEMATHESIS_VERSION"
if [ ! -x "$ST_DIR/bin/st" ]; then
  python3 -m venv "$ST_DIR" && "$ST_DIR/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
set +e
SCHEMATHESIS_BIN="$ST_DIR/bin/st" node tests/contract/run.mjs >"$GATEHOUSE_CACHE/contract.log" 2>&1
contract=$?
set -e
grep -E '^((client|agency|platform)_[a-z]+|all roles): ' "$GATEHOUSE_CACHE/contract.log" >&2 || true
if [ "$contract" -ne 0 ]; then tail -n 120 "$GATEHOUSE_CACHE/contract.log" >&2; exit 1; fi

step "all tests passed in ${SECONDS}s"
