#!/usr/bin/env bash
# Host services keep mTLS on: a Go service (inventory), a Python service
# (orders) and a Node.js service (storefront), each started with
# `devmtls exec`, call each other over mTLS with the environment's dev
# credentials. Nothing here disables TLS or client verification.
#
#   storefront (Node.js) --mTLS--> orders (Python) --mTLS--> inventory (Go)
#
# Environment:
#   DEVMTLS         the devmtls binary (default: bin/devmtls at the repo root,
#                   else devmtls on PATH)
#   DEVMTLS_DIR     the environment directory (default: devmtls's own choice)
#   INVENTORY_PORT  default 18443
#   ORDERS_PORT     default 18444
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [ -z "${DEVMTLS:-}" ]; then
  if [ -x "$root/bin/devmtls" ]; then DEVMTLS="$root/bin/devmtls"; else DEVMTLS=devmtls; fi
fi
for tool in go python3 node curl; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is needed for the host example" >&2; exit 1; }
done
inventory_port="${INVENTORY_PORT:-18443}"
orders_port="${ORDERS_PORT:-18444}"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n==> %s\n' "$*"; }

say "devmtls certs  (created on first use, renewed when due)"
"$DEVMTLS" certs

say "building the Go inventory service"
(cd "$root" && go build -o "$work/inventory" ./examples/host/inventory)

say "starting inventory (Go) and orders (Python) with devmtls exec"
PORT="$inventory_port" "$DEVMTLS" exec -- "$work/inventory" &
pids+=($!)
PORT="$orders_port" INVENTORY_URL="https://localhost:$inventory_port" \
  "$DEVMTLS" exec -- python3 "$here/orders/orders.py" &
pids+=($!)

# Wait (bounded) until both answer an mTLS request.
for port in "$inventory_port" "$orders_port"; do
  for i in $(seq 1 100); do
    if "$DEVMTLS" exec -- sh -c 'exec curl -sf -o /dev/null --cert "$MTLS_CERT" --key "$MTLS_KEY" --cacert "$MTLS_CA" "https://localhost:$1/"' sh "$port"; then
      break
    fi
    [ "$i" = 100 ] && { echo "demo: nothing answers on port $port" >&2; exit 1; }
    sleep 0.2
  done
done

say "storefront (Node.js) calls orders, which calls inventory — all mTLS"
ORDERS_URL="https://localhost:$orders_port/" "$DEVMTLS" exec -- node "$here/storefront/storefront.js"

say "a client without a certificate is turned away (mTLS stays on)"
if "$DEVMTLS" exec -- sh -c 'curl -sS -o /dev/null --cacert "$MTLS_CA" "https://localhost:$1/" 2>&1' sh "$orders_port"; then
  echo "demo: orders served a client without a certificate" >&2
  exit 1
fi
echo "refused, as it should be"

say "the same variables for your shell and IDE"
echo "  eval \"\$(devmtls env)\"                 # bash/zsh"
echo "  devmtls env --format fish | source     # fish"
echo "  devmtls ide vscode                     # .vscode/launch.json"
echo "  devmtls ide jetbrains                  # .run/*.run.xml"
