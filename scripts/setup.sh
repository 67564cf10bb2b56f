#!/usr/bin/env bash
# Installs everything the Worker and its tests need, skipping what is already there.
# Sourced by scripts/dev.sh and scripts/test.sh; safe to run on its own.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "$ROOT/scripts/versions.env"

export GATEHOUSE_CACHE="${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$GATEHOUSE_CACHE/target}"
TOOLS="$GATEHOUSE_CACHE/tools"
mkdir -p "$TOOLS/bin"
export PATH="$TOOLS/bin:$PATH"
export WRANGLER_SEND_METRICS=false

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# 1. The wasm target.
if ! rustup target list --installed | grep -qx "$RUST_TARGET"; then
  log "adding rust target $RUST_TARGET"
  rustup target add "$RUST_TARGET"
fi

# 2. worker-build, pinned.
if ! worker-build --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION"; then
  log "installing worker-build $WORKER_BUILD_VERSION (about 5 minutes on 2 cores)"
  cargo install --quiet --root "$TOOLS" "worker-build@$WORKER_BUILD_VERSION" --locked
fi

# 3. wasm-bindgen-cli, exactly the version Cargo.lock resolved.
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' "$ROOT/Cargo.lock")"
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes)"
  # --locked fails for this version: the registry snapshot lacks one locked dependency.
  cargo install --quiet --root "$TOOLS" "wasm-bindgen-cli@$WASM_BINDGEN_VERSION" --force
fi
export WASM_BINDGEN_BIN="$TOOLS/bin/wasm-bindgen"

# 4. Node 22 and wrangler, from package-lock.json.
if [ ! -x "$ROOT/node_modules/.bin/wrangler" ] || [ ! -x "$ROOT/node_modules/.bin/node" ] \
   || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
  log "installing node packages (node 22, wrangler, playwright-core)"
  # npm install, not npm ci: ci trips on the lock's optional platform packages (an npm bug).
  (cd "$ROOT" && npm install --no-audit --no-fund --loglevel=error)
fi
export PATH="$ROOT/node_modules/.bin:$PATH"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"

# The console's bundle, which the Worker embeds (src/branding/console.rs): esbuild over
# console/src, with preact and htm from node_modules, before anything compiles the crate.
rm -rf "$ROOT/console/dist" && mkdir -p "$ROOT/console/dist"
"$ESBUILD_BIN" "$ROOT/console/src/main.js" --bundle --minify --format=esm --target=es2020 --log-level=warning \
  --outfile="$ROOT/console/dist/console.js"
"$ESBUILD_BIN" "$ROOT/console/src/console.css" --minify --log-level=warning --outfile="$ROOT/console/dist/console.css"
# The widget's script (loaded on client websites) and the portal's, minified as the Worker
# serves them (src/widget/mod.rs, src/branding/portal.rs); the sources stay readable.
rm -rf "$ROOT/widget/dist" "$ROOT/portal/dist" && mkdir -p "$ROOT/widget/dist" "$ROOT/portal/dist"
"$ESBUILD_BIN" "$ROOT/widget/widget.js" --minify --target=es2020 --log-level=warning --outfile="$ROOT/widget/dist/widget.js"
"$ESBUILD_BIN" "$ROOT/portal/portal.js" --minify --target=es2020 --log-level=warning --outfile="$ROOT/portal/dist/portal.js"
"$ESBUILD_BIN" "$ROOT/portal/portal.css" --minify --log-level=warning --outfile="$ROOT/portal/dist/portal.css"

# 5. Chromium (browser tests) and wrk (benchmarks), from Debian.
missing=""
for pkg in $DEBIAN_PACKAGES; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  log "installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
