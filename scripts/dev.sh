#!/usr/bin/env bash
# The main job: installs what is missing, builds, applies D1 migrations locally, seeds demo data
# once, prints the dev credentials, and runs the Worker under wrangler dev on port 8787.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"

PORT="${PORT:-8787}"
STATE="${GATEHOUSE_STATE:-$ROOT/.wrangler/state}"

bash "$ROOT/scripts/build.sh"
bash "$ROOT/scripts/dev-vars.sh"

# The D1 bindings in wrangler.toml: the control plane (DB) and the data shards (SHARD_0, ...).
BINDINGS="$(grep -oE '^binding = "(DB|SHARD_[0-9]+)"' wrangler.toml | cut -d'"' -f2)"
SHARDS="$(printf '%s\n' $BINDINGS | grep -c '^SHARD_' || true)"
log "applying D1 migrations (local, $STATE): $(echo $BINDINGS)"
for b in $BINDINGS; do
  wrangler d1 migrations apply "$b" --local --persist-to "$STATE" >/dev/null
done

users="$(wrangler d1 execute DB --local --persist-to "$STATE" --json --command 'SELECT count(*) AS n FROM users' 2>/dev/null \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s)[0].results[0].n)}catch{console.log(0)}})')"
CREDS="$STATE/demo-credentials.txt"
if [ "$users" = "0" ]; then
  log "seeding demo data ($SHARDS data shards)"
  mkdir -p "$STATE/seed"
  cargo run --quiet --release --bin gatehouse-seed -- --shards "$SHARDS" --out "$STATE/seed" 2>"$CREDS" \
    || { cat "$CREDS"; rm -f "$CREDS"; exit 1; }
  for b in $BINDINGS; do
    # A shard the demo puts nobody on has an empty file, which wrangler refuses.
    if grep -q '[^[:space:]]' "$STATE/seed/$b.sql"; then
      wrangler d1 execute "$b" --local --persist-to "$STATE" --file "$STATE/seed/$b.sql" >/dev/null
    fi
  done
fi
echo
cat "$CREDS" 2>/dev/null || echo "(demo data was seeded earlier; credentials file missing — delete $STATE to reseed)"
cat <<MSG

Gatehouse is starting on http://localhost:$PORT
  health:   curl http://localhost:$PORT/healthz
  login:    curl -s http://localhost:$PORT/api/auth/login -H 'content-type: application/json' \\
              -d '{"email":"admin@acme.test","password":"dev-acme-admin"}'
  console:  http://localhost:$PORT/console   (agency.admin@northwind.test / dev-agency-admin)
            http://acme.localhost:$PORT/console   (the client's own, on its portal host)
            http://northwind.localhost:$PORT/console   (the agency's own, on its portal host)
  portal:   http://acme.localhost:$PORT   http://globex.localhost:$PORT
  widget:   <script src="http://localhost:$PORT/widget.js" data-key="<acme key above>" async></script>
            on a page served from http://shop.localhost:<any port>

MSG
exec wrangler dev --port "$PORT" --persist-to "$STATE" --test-scheduled
