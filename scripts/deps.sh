#!/usr/bin/env bash
# `make deps`: install what `make demo` and `make test` need, when it is
# missing, and check the result. Safe to run again: with everything in place it
# only checks (about a second). `make demo`, `make test` and .ci/run call it.
#
#   * Debian packages (haproxy, etcd, PostgreSQL, …): apt-get as root, else
#     `sudo -n apt-get` when sudo needs no password, else it stops with one
#     message naming the command to run.
#   * the Docker daemon: started when nothing answers.
#   * staticcheck, pinned, with `go install`.
#   * the Docker Compose v2 plugin, pinned, built from the Go module proxy into
#     ${DOCKER_CONFIG:-~/.docker}/cli-plugins (about 70 s with a warm Go cache;
#     built once, reused afterwards).
#
# Whatever is still missing at the end is an error that says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

# Compose v5.6.0 is the newest release whose go.mod this Go (1.26) accepts.
COMPOSE_MODULE=github.com/docker/compose/v5
COMPOSE_VERSION=v5.6.0
STATICCHECK_VERSION=v0.8.2

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

have go || die "Go is not installed: install Go 1.26 or newer (https://go.dev/dl/), then run make deps again"
gobin="$(go env GOBIN)"
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
# Debian installs daemons (haproxy) in the sbin directories, which a normal
# user's PATH leaves out: look there too, or an installed package looks missing.
export PATH="$gobin:$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# --- Debian packages -------------------------------------------------------
# Each entry: "package|check", the check a shell command that succeeds when
# the package's part is present.
debian=(
  "file|have file"
  "curl|have curl"
  "openssl|have openssl"
  "haproxy|have haproxy"
  "stunnel4|have stunnel4"
  "socat|have socat"
  "etcd-server|have etcd"
  "zsh|have zsh"
  "fish|have fish"
  "postgresql-client-15|have psql"
  "postgresql-15|[ -x /usr/lib/postgresql/15/bin/postgres ]"
  "openjdk-17-jdk-headless|have keytool"
  "nodejs|have node"
  "python3|have python3"
  # python-dotenv reads back `devmtls env --format dotenv` in the hostenv tests.
  "python3-dotenv|python3 -c 'import dotenv' 2>/dev/null"
  "docker.io|have docker"
  "docker-compose|have docker-compose"
)
missing_pkgs() {
  local entry
  for entry in "${debian[@]}"; do
    eval "${entry#*|}" >/dev/null 2>&1 || printf '%s\n' "${entry%%|*}"
  done
}
mapfile -t pkgs < <(missing_pkgs)

# as_root runs a command as root: directly, through password-less sudo, or
# not at all (returns 1).
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif have sudo && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}
can_root() { [ "$(id -u)" = 0 ] || { have sudo && sudo -n true 2>/dev/null; }; }

docker_up() { docker info >/dev/null 2>&1; }
# systemd manages dockerd where it runs; containers and CI images have no
# init, and there dockerd is started in the background.
start_dockerd() {
  if [ -d /run/systemd/system ] && have systemctl; then
    as_root systemctl start docker
  else
    as_root sh -c 'nohup dockerd >/tmp/dockerd.log 2>&1 &'
  fi
}
start_dockerd_hint() {
  if [ -d /run/systemd/system ] && have systemctl; then echo "sudo systemctl start docker"; else echo "sudo sh -c 'nohup dockerd >/tmp/dockerd.log 2>&1 &'"; fi
}

if ! can_root; then
  # One message with the one command that does everything root must do.
  what=() cmds=()
  if [ ${#pkgs[@]} -gt 0 ]; then
    what+=("the Debian packages ${pkgs[*]}")
    cmds+=("sudo apt-get update" "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkgs[*]}")
  fi
  if ! docker_up && [ -z "${DOCKER_HOST:-}" ] && ! [ -S /var/run/docker.sock ]; then
    what+=("a running Docker daemon")
    cmds+=("$(start_dockerd_hint)")
  fi
  if [ ${#cmds[@]} -gt 0 ]; then
    joined="$(printf ' && %s' "${cmds[@]}")"
    whats="$(printf ' and %s' "${what[@]}")"
    die "this machine lacks ${whats:5}, and installing needs root (there is no password-less sudo); run:   ${joined:4}   then make deps again"
  fi
fi

if [ ${#pkgs[@]} -gt 0 ]; then
  say "installing Debian packages: ${pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi

# --- the Docker daemon -----------------------------------------------------
if ! docker_up; then
  # A daemon elsewhere is not this script's to start.
  [ -z "${DOCKER_HOST:-}" ] || die "the Docker daemon at DOCKER_HOST=$DOCKER_HOST does not answer (docker info): start it, or unset DOCKER_HOST to use the local one"
  if [ -S /var/run/docker.sock ] && [ ! -w /var/run/docker.sock ] && [ "$(id -u)" != 0 ]; then
    die "the Docker daemon's socket /var/run/docker.sock is not writable for $(id -un): run sudo usermod -aG docker $(id -un), log in again, then make deps again"
  fi
  say "starting the Docker daemon"
  start_dockerd
  for _ in $(seq 1 60); do docker_up && break; sleep 1; done
  docker_up || die "the Docker daemon did not start; see /tmp/dockerd.log (or journalctl -u docker)"
fi

# --- staticcheck -----------------------------------------------------------
if [ "$(go version -m "$gobin/staticcheck" 2>/dev/null | awk '$1 == "mod" {print $3}')" != "$STATICCHECK_VERSION" ]; then
  say "installing staticcheck $STATICCHECK_VERSION into $gobin"
  go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

# --- the Docker Compose v2 plugin -----------------------------------------
# Where the docker CLI looks for its plugins first.
plugin="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
compose_v2_version() { docker compose version --short 2>/dev/null | sed 's/^v//'; }
want="${COMPOSE_VERSION#v}"
have_v2="$(compose_v2_version || true)"
# A laptop may already have another Compose v2 (Docker Desktop, the
# docker-compose-plugin package): it is kept. CI pins the version it tests.
if [ -z "$have_v2" ] || [ "${have_v2%%.*}" -lt 2 ] 2>/dev/null || { [ "${CI:-}" = true ] && [ "$have_v2" != "$want" ]; }; then
  say "building the Docker Compose plugin $COMPOSE_VERSION from the Go module proxy into $plugin (three to seven minutes on two cores the first time; seconds from a warm build cache)"
  started=$SECONDS
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/devmtls/compose-plugin-$COMPOSE_VERSION"
  mkdir -p "$cache"
  # `go install module@version` refuses a module whose go.mod has exclude
  # directives, so a wrapper module requires it and repeats them.
  (
    cd "$cache"
    export GOWORK=off
    rm -f go.mod go.sum
    go mod init devmtls.invalid/compose-plugin >/dev/null 2>&1
    go mod edit -require="$COMPOSE_MODULE@$COMPOSE_VERSION"
    GOFLAGS=-mod=mod go mod download "$COMPOSE_MODULE@$COMPOSE_VERSION"
    modfile="$(go env GOMODCACHE)/cache/download/$COMPOSE_MODULE/@v/$COMPOSE_VERSION.mod"
    # exclude lines, single or in an exclude ( … ) block, as "path@version".
    awk '
      { sub(/\/\/.*/, "") }
      /^exclude[ \t]*\(/ { block = 1; next }
      block && /^\)/     { block = 0; next }
      block && NF >= 2   { print $1 "@" $2; next }
      /^exclude[ \t]/ && NF >= 3 && $2 != "(" { print $2 "@" $3 }
    ' "$modfile" | while read -r ex; do go mod edit -exclude="$ex"; done
    mkdir -p "$(dirname "$plugin")"
    # The version stamp is what `docker compose version` reports, as in
    # compose's own Makefile.
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
      -o "$plugin.tmp" "$COMPOSE_MODULE/cmd"
  )
  mv -f "$plugin.tmp" "$plugin"
  say "built $(docker compose version 2>/dev/null || echo 'the plugin') in $((SECONDS - started)) s"
fi

# --- check -------------------------------------------------------------------
problems=()
mapfile -t still < <(missing_pkgs)
[ ${#still[@]} -eq 0 ] || problems+=("Debian packages still missing: ${still[*]} (apt-get install ${still[*]}; a python3 other than Debian's needs python-dotenv from pip)")
have staticcheck || problems+=("staticcheck is not in PATH: go install honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION")
have kubectl || problems+=("kubectl is not installed: install it (https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/)")
v2="$(compose_v2_version || true)"
[ -n "$v2" ] || problems+=("docker compose (the Compose v2 plugin) does not answer: see the build above, or install the docker-compose-plugin package")
docker-compose version --short >/dev/null 2>&1 || problems+=("docker-compose (v1) does not run: apt-get install docker-compose")
if [ ${#problems[@]} -gt 0 ]; then
  printf 'deps: %s\n' "${problems[@]}" >&2
  exit 1
fi
say "ready: Docker Engine $(docker version -f '{{.Server.Version}}' 2>/dev/null), docker compose $v2, docker-compose $(docker-compose version --short 2>/dev/null), $(staticcheck -version 2>/dev/null | head -1)"
