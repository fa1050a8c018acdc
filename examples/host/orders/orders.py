"""orders: the example's Python service.

An HTTPS server that requires a client certificate, and an mTLS client of the
inventory service. Both sides use MTLS_CERT, MTLS_KEY and MTLS_CA, which
`devmtls exec` sets (and Compose and the cluster set the same way).
"""
import http.client
import http.server
import json
import os
import ssl
import sys
import urllib.parse


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"orders: {name} is not set; run it with `devmtls exec -- python3 orders.py`")
    return value


CERT, KEY, CA = env("MTLS_CERT"), env("MTLS_KEY"), env("MTLS_CA")
INVENTORY = urllib.parse.urlsplit(os.environ.get("INVENTORY_URL", "https://localhost:8443"))


def inventory():
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(CERT, KEY)
    conn = http.client.HTTPSConnection(INVENTORY.hostname, INVENTORY.port, context=ctx, timeout=10)
    conn.request("GET", "/")
    return json.loads(conn.getresponse().read())


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        client = dict(x[0] for x in self.connection.getpeercert()["subject"])["commonName"]
        body = json.dumps({"service": "orders", "client": client, "inventory": inventory()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("orders: " + (fmt % args) + "\n")


def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=CA)
    ctx.load_cert_chain(CERT, KEY)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    port = int(os.environ.get("PORT", "8444"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"orders: listening on https://127.0.0.1:{port} (client certificate required)", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
