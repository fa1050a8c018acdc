#!/usr/bin/env bash
# Build the example shop's images FROM scratch (no image can be pulled):
#   - the Go services: one static binary (CGO_ENABLED=0);
#   - HAProxy: the host's Debian haproxy binary plus exactly the shared
#     libraries `ldd` lists, and the dynamic loader.
#
# Image names come from SHOP_IMAGE and SHOP_HAPROXY_IMAGE (the same variables
# examples/shop/compose.yaml interpolates), defaulting to
# devmtls-example/shopsvc:latest and devmtls-example/haproxy:latest.
# Safe to run again: docker's build cache makes a rebuild quick.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
shop_image="${SHOP_IMAGE:-devmtls-example/shopsvc:latest}"
haproxy_image="${SHOP_HAPROXY_IMAGE:-devmtls-example/haproxy:latest}"
# Debian puts haproxy in /usr/sbin, which a normal user's PATH leaves out.
haproxy_bin="${HAPROXY_BIN:-$(PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v haproxy || true)}"

command -v docker >/dev/null || { echo "build-images: docker is not installed; install Docker Engine (e.g. apt-get install docker.io)" >&2; exit 1; }
command -v go >/dev/null || { echo "build-images: go is not installed; install Go 1.26 to build the example services" >&2; exit 1; }
[ -n "$haproxy_bin" ] && [ -x "$haproxy_bin" ] || { echo "build-images: haproxy is not installed; install it (apt-get install haproxy): its binary goes into the gateway image" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The Go services.
mkdir -p "$work/shopsvc"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/shopsvc/shopsvc" ./examples/shop/shopsvc)
cat >"$work/shopsvc/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY shopsvc /shopsvc
USER 10001:10001
ENTRYPOINT ["/shopsvc"]
CMD ["serve", "orders"]
DOCKERFILE

# HAProxy: the binary and every library ldd resolves, at the same paths.
rootfs="$work/haproxy/rootfs"
mkdir -p "$rootfs/usr/sbin" "$rootfs/usr/local/etc/haproxy"
cp -L "$haproxy_bin" "$rootfs/usr/sbin/haproxy"
ldd "$haproxy_bin" | awk '/=> \//{print $3} /^[[:space:]]*\//{print $1}' | sort -u | while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
cat >"$work/haproxy/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
USER 99:99
# HAProxy's graceful stop, as in the official image (it ignores SIGTERM as PID 1).
STOPSIGNAL SIGUSR1
ENTRYPOINT ["/usr/sbin/haproxy"]
CMD ["-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
DOCKERFILE

build() { # image context
  echo "building $1"
  docker build --quiet --tag "$1" "$2" >/dev/null 2> >(grep -v -e "legacy builder is deprecated" -e "Install the buildx" -e "docs.docker.com/go/buildx" -e "^ *$" >&2)
}
build "$shop_image" "$work/shopsvc"
build "$haproxy_image" "$work/haproxy"
