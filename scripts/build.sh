#!/usr/bin/env bash
# Builds the release Worker into build/ (index.js + index_bg.wasm).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
log "building the Worker (release wasm)"
worker-build --release >"$GATEHOUSE_CACHE/worker-build.log" 2>&1 || { tail -40 "$GATEHOUSE_CACHE/worker-build.log"; exit 1; }
ls -l build/index_bg.wasm >&2
