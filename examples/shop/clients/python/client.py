#!/usr/bin/env python3
"""Call the shop over mTLS from the host, the way a Python service would.

It reads its credentials from the files MTLS_CERT, MTLS_KEY and MTLS_CA name,
the same variables the services in the containers get, and never turns
verification off.

    MTLS_CERT=.devmtls/cert MTLS_KEY=.devmtls/key MTLS_CA=.devmtls/ca \
        python3 clients/python/client.py https://localhost:8443/orders
"""
import json
import os
import ssl
import sys
import urllib.request


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else "https://localhost:8443/orders"
    try:
        cert, key, ca = os.environ["MTLS_CERT"], os.environ["MTLS_KEY"], os.environ["MTLS_CA"]
    except KeyError as missing:
        print(f"python client: {missing.args[0]} is not set; run me with devmtls's variables", file=sys.stderr)
        return 2
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=cert, keyfile=key)
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
            body = json.load(resp)
    except Exception as err:  # report one line, like the other clients
        print(f"python client: {url}: {err}", file=sys.stderr)
        return 1
    orders = body.get("orders", [])
    print(f"python client: {len(orders)} orders over mTLS via {url} (served by {body.get('served_by')}, which saw client {body.get('client')!r})")
    for o in orders:
        s = o.get("stock", {})
        print(f"  {o['id']}: {o['qty']} x {o['sku']} (available: {s.get('available')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
