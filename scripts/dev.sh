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

log "applying D1 migrations (local, $STATE)"
wrangler d1 migrations apply DB --local --persist-to "$STATE" >/dev/null

users="$(wrangler d1 execute DB --local --persist-to "$STATE" --json --command 'SELECT count(*) AS n FROM users' 2>/dev/null \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s)[0].results[0].n)}catch{console.log(0)}})')"
CREDS="$STATE/demo-credentials.txt"
if [ "$users" = "0" ]; then
  log "seeding demo data"
  mkdir -p "$STATE"
  cargo run --quiet --release --bin gatehouse-seed >"$STATE/seed.sql" 2>"$CREDS" || { cat "$CREDS"; rm -f "$CREDS"; exit 1; }
  wrangler d1 execute DB --local --persist-to "$STATE" --file "$STATE/seed.sql" >/dev/null
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
