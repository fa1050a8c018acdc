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
# Only root can give the services' key copies to their own uids (10001…): run
# by a normal user, the demo runs the services as that user, who owns them.
[ "$(id -u)" = 0 ] || export SHOP_USER="${SHOP_USER:-$(id -u):$(id -g)}"

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
  export KUBECONFIG=../../.cluster/kubeconfig COMPOSE_FILE=compose.yaml:compose.hybrid.yaml
  kubectl -n shop delete pod -l app=pricing && kubectl -n shop rollout status deploy/pricing
  curl --cert .devmtls/cert --key .devmtls/key --cacert .devmtls/ca https://localhost:$SHOP_ORDERS_PORT/quote?sku=mug
                               the forward moved to the new pricing pod; nothing local restarted
  $d down                      stop the shop and its forwards (the credentials stay in .devmtls/)
  make -C ../.. cluster-down   stop the test cluster
EOF
}

demo_host() {
  section "7. Services run on the host (devmtls exec) keep mTLS on too"
  say "A Node.js storefront calls a Python orders service that calls a Go inventory, all started with devmtls exec:"
  DEVMTLS="$DEVMTLS" DEVMTLS_DIR="$root/examples/host/.devmtls" "$root/examples/host/demo.sh"
}

# The hybrid shop: pricing lives only in a Kubernetes test cluster, the rest in
# Compose. DEMO_HYBRID=0 skips it (the first run builds Kubernetes from source,
# about ten minutes on two cores; later runs reuse the cached binaries).
cluster_dir="$root/.cluster"
kubectl_shop() { kubectl --kubeconfig "$cluster_dir/kubeconfig" -n shop "$@"; }

demo_hybrid() {
  [ "${DEMO_HYBRID:-1}" = 0 ] && return 0
  section "8. Hybrid: orders (Compose) calls pricing, which runs only in the test cluster"
  command -v kubectl >/dev/null || { say "demo: kubectl is needed for the hybrid section (or run with DEMO_HYBRID=0)" >&2; exit 1; }
  say "Starting the bundled test cluster (kube-apiserver, etcd, controller-manager, scheduler, a test kubelet)..."
  show make -s -C "$root" cluster-up >/dev/null
  kubectl_shop get namespace shop >/dev/null 2>&1 || kubectl --kubeconfig "$cluster_dir/kubeconfig" create namespace shop >/dev/null
  if ! kubectl_shop get secret mtls >/dev/null 2>&1; then
    say "The cluster's own keypair, a self-signed certificate that is its own trust anchor (openssl req -x509), stored in Secret mtls (it never leaves the cluster):"
    local kp
    kp="$(mktemp -d)"
    show openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=shop-cluster \
      -addext subjectAltName=DNS:pricing -keyout "$kp/key.pem" -out "$kp/cert.pem" 2>/dev/null
    show kubectl_shop create secret generic mtls --from-file=cert="$kp/cert.pem" --from-file=key="$kp/key.pem"
    rm -rf "$kp"
  fi
  # The test kubelet runs pods as host processes: pricing is a host build.
  mkdir -p "$cluster_dir/bin"
  (cd "$root" && go build -o "$cluster_dir/bin/shopsvc" ./examples/shop/shopsvc)
  sed "s#SHOPSVC#$cluster_dir/bin/shopsvc#" "$root/examples/cluster/pricing.yaml" | kubectl_shop apply -f - >/dev/null
  show kubectl_shop rollout status deploy/pricing --timeout=3m
  export KUBECONFIG="$cluster_dir/kubeconfig" COMPOSE_FILE=compose.yaml:compose.hybrid.yaml
  say "compose.hybrid.yaml declares the forward; devmtls up starts it before the services:"
  show "$DEVMTLS" up -d
  say "orders quotes a price from pricing in the cluster (host -> orders -> devmtls forward -> pricing pod, mTLS all the way):"
  for _ in $(seq 1 30); do
    curl -fsS -o /dev/null --max-time 5 --cert "$envdir/cert" --key "$envdir/key" --cacert "$envdir/ca" "$orders/quote?sku=mug" 2>/dev/null && break
    sleep 1
  done
  show curl -sS --cert "$envdir/cert" --key "$envdir/key" --cacert "$envdir/ca" "$orders/quote?sku=mug"
  say "A container calls it by its cluster name:"
  show docker exec "$("$DEVMTLS" compose ps -q orders)" /shopsvc call "https://pricing:${PRICING_PORT:-443}/price?sku=tee"
  say "A host process gets its address in PRICING_ADDR:"
  show "$DEVMTLS" exec -- sh -c 'curl -sS --cert "$MTLS_CERT" --key "$MTLS_KEY" --cacert "$MTLS_CA" "https://$PRICING_ADDR/price?sku=cap"'
  section "9. The forward in devmtls status"
  show "$DEVMTLS" status
}

SECTIONS=(demo_preflight demo_build_images demo_up demo_calls demo_refusals demo_status demo_host demo_hybrid)
# Sections added by later features go here, before demo_next.

for s in "${SECTIONS[@]}"; do "$s"; done
demo_next
