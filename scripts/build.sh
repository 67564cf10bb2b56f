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
