#!/usr/bin/env bash
# `make demo`: the example shop with mTLS everywhere, on the real Docker Engine,
# with nobody turning mTLS off. Safe to run again: images rebuild from cache and
# `devmtls up -d` only changes what changed. The shop keeps running afterwards
# so you can try things; `devmtls down` (in examples/shop) stops it.
#
# The demo is a list of sections (shell functions) run in order; later features
# add theirs to SECTIONS (e.g. host processes through `devmtls exec`, hybrid
# forwards to a test cluster) without touching the ones before.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
shop="$root/examples/shop"
DEVMTLS="${DEVMTLS:-$root/bin/devmtls}"
export SHOP_GATEWAY_PORT="${SHOP_GATEWAY_PORT:-8443}" SHOP_ORDERS_PORT="${SHOP_ORDERS_PORT:-9443}" SHOP_DOCS_PORT="${SHOP_DOCS_PORT:-8080}"
gateway="https://localhost:$SHOP_GATEWAY_PORT"
orders="https://localhost:$SHOP_ORDERS_PORT"
envdir="$shop/.devmtls"

bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
[ -t 1 ] || bold='' dim='' off=''
section() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
say() { printf '%s\n' "$*"; }
show() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; "$@"; }
# expect_refused CMD...: the command must fail (a refused mTLS handshake).
expect_refused() {
  printf '%s$ %s%s\n' "$dim" "$*" "$off"
  local out
  if out="$("$@" 2>&1)"; then
    say "UNEXPECTED: that call succeeded; mTLS is not enforced!" >&2
    exit 1
  fi
  say "  refused: $(printf '%s' "$out" | tail -1)"
}
# The host clients read the same variables the containers get.
with_creds() { MTLS_CERT="$envdir/cert" MTLS_KEY="$envdir/key" MTLS_CA="$envdir/ca" "$@"; }

demo_preflight() {
  [ -x "$DEVMTLS" ] || { say "demo: $DEVMTLS is missing; run 'make build' first (make demo does)" >&2; exit 1; }
  cd "$shop"
}

demo_build_images() {
  section "1. Build the example's images FROM scratch (Go services, HAProxy from Debian's binary)"
  show "$root/examples/build-images.sh"
}

demo_up() {
  section "2. devmtls up -d: credentials for every service, mounted read-only, compose up"
  show "$DEVMTLS" up -d
  say "Waiting for the gateway to answer over mTLS..."
  for _ in $(seq 1 60); do
    if curl -fsS -o /dev/null --max-time 2 --cert "$envdir/cert" --key "$envdir/key" --cacert "$envdir/ca" "$gateway/orders" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  say "demo: the gateway did not answer within 30s; see '$DEVMTLS compose logs' in $shop" >&2
  exit 1
}

demo_calls() {
  section "3. mTLS between containers: orders <-> inventory, gateway (HAProxy) -> orders"
  say "orders asks inventory for stock, inventory asks orders what is reserved, all over mTLS:"
  show docker exec "$("$DEVMTLS" compose ps -q orders)" /shopsvc call https://inventory:8443/stock?sku=mug
  section "4. Host clients (Python, Node.js, curl) through the published ports"
  show with_creds python3 "$shop/clients/python/client.py" "$gateway/orders"
  show with_creds node "$shop/clients/node/client.js" "$orders/orders"
  show curl -sS --cert "$envdir/cert" --key "$envdir/key" --cacert "$envdir/ca" "$orders/whoami"
}

demo_refusals() {
  section "5. Without a certificate from this environment, nobody gets in"
  expect_refused curl -sS --cacert "$envdir/ca" "$gateway/orders"
  local foreign
  foreign="$(mktemp -d)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=intruder -days 1 \
    -keyout "$foreign/key" -out "$foreign/cert" >/dev/null 2>&1
  expect_refused curl -sS --cert "$foreign/cert" --key "$foreign/key" --cacert "$envdir/ca" "$gateway/orders"
  rm -rf "$foreign"
  expect_refused docker exec "$("$DEVMTLS" compose ps -q orders)" /shopsvc call -no-client-cert https://inventory:8443/whoami
  expect_refused docker exec "$("$DEVMTLS" compose ps -q orders)" /shopsvc call -foreign-cert https://inventory:8443/whoami
}

demo_status() {
  section "6. devmtls status: which containers have their credentials"
  show "$DEVMTLS" status
}

demo_next() {
  local d="$DEVMTLS"
  [ "$d" = "$root/bin/devmtls" ] && d="../../bin/devmtls"
  section "Try next, in examples/shop (the shop keeps running)"
  cat <<EOF
  cd examples/shop
  $d compose overlay           the overlay devmtls generated; compose.yaml is untouched
  $d compose logs gateway      HAProxy's log of each mTLS request
  $d certs rotate && $d up -d
                               new credentials: compose recreates the services that use them, not docs
  (set x-devmtls mode: ca in compose.yaml) && $d up -d
                               one identity per service: orders then sees "gateway" as its client
  $d status --json             the same report for scripts
  $d down                      stop the shop (the credentials stay in .devmtls/)
EOF
}

SECTIONS=(demo_preflight demo_build_images demo_up demo_calls demo_refusals demo_status)
# Sections added by later features go here, before demo_next.

for s in "${SECTIONS[@]}"; do "$s"; done
demo_next
