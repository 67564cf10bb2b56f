#!/usr/bin/env bash
# Builds the release Worker into build/ (index.js + index_bg.wasm).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
# GATEHOUSE_PROFILE_BUILD=1 keeps the wasm's name section, so scripts/profile.mjs can name
# functions. Not for deployment: it is larger.
if [ -n "${GATEHOUSE_PROFILE_BUILD:-}" ]; then export CARGO_PROFILE_RELEASE_STRIP=false; fi
log "building the Worker (release wasm)"
worker-build --release >"$GATEHOUSE_CACHE/worker-build.log" 2>&1 || { tail -40 "$GATEHOUSE_CACHE/worker-build.log"; exit 1; }
ls -l build/index_bg.wasm >&2
# The console: its sources bundled into the static assets Cloudflare serves (wrangler.toml
# [assets]), with preact and htm from node_modules; nothing from a CDN at run time.
log "bundling the console (esbuild)"
rm -rf console/dist && mkdir -p console/dist/console/assets   # no stale file ships
"$ESBUILD_BIN" console/src/main.js --bundle --minify --format=esm --target=es2020 --log-level=warning \
  --outfile=console/dist/console/assets/console.js
"$ESBUILD_BIN" console/src/console.css --minify --log-level=warning --outfile=console/dist/console/assets/console.css
ls -l console/dist/console/assets >&2
