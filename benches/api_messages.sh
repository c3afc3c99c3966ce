#!/usr/bin/env bash
# Usage: cargo build --release -p email-engine && benches/api_messages.sh   (DB=postgres://… for PostgreSQL; needs wrk)
# p99 of POST /api/v2/messages under wrk -c64 against the release binary (API role),
# beside GET /health under the same load as the floor.
set -euo pipefail
BIN=${BIN:-$(dirname "$0")/../target/release/email-engine}
PORT=18000
DATA=$(mktemp -d)
export EE_DATA_DIR=$DATA EE_ADMIN_PASSWORD=bench-admin-password EE_RATE_LIMIT_PER_MINUTE=100000000 \
  EE_IP_RATE_LIMIT_PER_MINUTE=100000000 EE_OUTBOUND_ALLOW=127.0.0.0/8 EE_DNS_SERVERS=127.0.0.1:9
[ -n "${DB:-}" ] && export EE_DATABASE_URL=$DB
$BIN serve --role api --listen 127.0.0.1:$PORT > $DATA/server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER; rm -rf $DATA' EXIT
for _ in $(seq 1 100); do curl -fs http://127.0.0.1:$PORT/health >/dev/null && break; sleep 0.2; done
EE=http://127.0.0.1:$PORT
json() { python3 -c "import sys, json; print(json.load(sys.stdin)$1)"; }
TOKEN=$(curl -fsS $EE/api/v1/auth/login -H 'content-type: application/json' -d '{"email": "admin@email-engine.local", "password": "bench-admin-password"}' | json "['access_token']")
ADMIN=(-H "authorization: Bearer $TOKEN" -H 'content-type: application/json')
curl -fsS "${ADMIN[@]}" $EE/api/v1/tenants -d '{"name": "Brand", "slug": "brand"}' >/dev/null
KEY=$(curl -fsS "${ADMIN[@]}" $EE/api/v1/api-keys -d '{"name": "bench", "tenant_id": "brand"}' | json "['key']")
API=(-H "X-API-KEY: $KEY" -H 'content-type: application/json')
curl -fsS "${API[@]}" $EE/api/v1/domains -d '{"domain": "brand.test", "dkim_selector": "s1", "dkim_algorithm": "ed25519"}' >/dev/null
curl -fsS "${API[@]}" $EE/api/v1/relays -d '{"name": "pmta", "host": "127.0.0.1", "port": 2525, "tls": "none"}' >/dev/null
curl -fsS -X PUT "${API[@]}" $EE/api/v1/tenants/brand/delivery -d '{"mode": "relay", "relay": "pmta"}' >/dev/null
export KEY
echo "== floor: GET /health, wrk -t2 -c64 -d20s"
wrk -t2 -c64 -d20s --latency $EE/health | grep -E "Requests/sec|99%|50%|Non-2xx|Socket errors" || true
echo "== POST /api/v2/messages, wrk -t2 -c64 -d20s"
wrk -t2 -c64 -d20s --latency -s "$(dirname "$0")/api_messages.lua" $EE/api/v2/messages | grep -E "Requests/sec|99%|50%|Non-2xx|Socket errors" || true
