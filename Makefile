# devmtls — see README.md. `make test` is what CI runs (through .ci/run).
GO        ?= go
BIN       ?= bin/devmtls
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
FUZZTIME  ?= 10s
# make test uses an iteration count: time-based -fuzztime can end in a spurious
# "context deadline exceeded" on Go 1.26 (golang/go#75804).
# End-to-end tests start containers and a Kubernetes control plane; give them room.
TESTFLAGS ?= -count=1 -timeout 60m
# The platforms devmtls is built for (make dist) and type-checked on (make lint).
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
# make lint type-checks one architecture per OS: devmtls's build constraints
# name operating systems only (no _amd64/_arm64 files), and each extra platform
# cost about three minutes of a cold CI run once cli-runtime was linked.
# make dist still builds every platform above.
VET_PLATFORMS := linux/amd64 darwin/arm64 windows/amd64
# The other architectures get a cheaper check (list-platforms, about a second
# each): every package, its tests and their dependencies resolve there (build
# constraints, imports, syntax), without type-checking.
LIST_PLATFORMS := linux/arm64 darwin/amd64 windows/arm64
# staticcheck and other tools `go install`ed by make deps live here.
export PATH := $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin):$(PATH)

.PHONY: deps build install test unit fuzz bench lint vet-platforms list-platforms dist demo clean cluster-up cluster-down

# Installs what is missing for demo and test (Debian packages, the Docker
# daemon, the Compose v2 plugin, staticcheck); see scripts/deps.sh.
deps:
	./scripts/deps.sh

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/devmtls

install:
	$(GO) install -ldflags "$(LDFLAGS)" ./cmd/devmtls

# The whole proof: set-up, lint, every unit and end-to-end test, and a short
# run of each fuzz target. CI=true: after make deps nothing may be missing, so
# an end-to-end test that lacks its dependency fails instead of skipping.
test: deps
	$(MAKE) lint
	$(MAKE) unit CI=true
	$(MAKE) fuzz FUZZTIME=2000x

unit:
	$(GO) test $(TESTFLAGS) ./...
	cd test/cluster && $(GO) test $(TESTFLAGS) ./...

# Runs every Fuzz* target in the main module for FUZZTIME each. A package
# that cannot be listed (it does not build) fails the target: its fuzz
# targets would otherwise be skipped without a word.
fuzz:
	@set -e; pkgs=$$($(GO) list ./...); for pkg in $$pkgs; do \
	  list=$$($(GO) test -list '^Fuzz' $$pkg) || { echo "$$list"; echo "fuzz: cannot list the fuzz targets of $$pkg"; exit 1; }; \
	  for f in $$(echo "$$list" | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Benchmarks report ratios against a peer measured in the same run. Each
# target of the performance issue is one row (internal/benchtable) appended to
# a temporary table file; the table of all rows is printed at the end, even
# when a benchmark failed, so a run shows what it could measure. -p 1: two
# packages' benchmarks at once would load the machine unevenly between peers.
# DEVMTLS_BENCH_TRANSPORT=spdy|websocket|auto picks the API server transport
# of devmtls and kubectl alike; BENCH=regexp narrows the run.
BENCHTIME ?= 3x
BENCH     ?= .
bench:
	@table=$$(mktemp); status=0; \
	DEVMTLS_BENCH_TABLE=$$table $(GO) test -p 1 -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count=1 -timeout 60m ./... || status=$$?; \
	echo; { printf 'measure\tpeer\tratio min/med/max\ttarget\tverdict\tfigures\n'; cat $$table; } | column -t -s "$$(printf '\t')"; \
	rm -f $$table; exit $$status

lint:
	./scripts/check-test-layout.sh
	@# The README's install is `go install …/cmd/devmtls@latest`, which refuses a
	@# main module with replace or exclude directives.
	@if grep -nE '^[[:space:]]*(replace|exclude)([[:space:]]|\()' go.mod; then echo "go.mod: replace/exclude directives break 'go install github.com/devmtls/devmtls/cmd/devmtls@latest'"; exit 1; fi
	@# Without file(1) the pipeline below would find nothing and pass.
	@command -v file >/dev/null 2>&1 || { echo "lint: file(1) is not installed, so tracked executables cannot be found; install the Debian package file (apt-get install file, or make deps)"; exit 1; }
	@bins=$$(git ls-files -z | xargs -0 -r file -N --mime-type | grep -E ': application/(x-executable|x-pie-executable|x-sharedlib|x-mach-binary|vnd.microsoft.portable-executable|x-dosexec)$$' | cut -d: -f1); \
	  if [ -n "$$bins" ]; then echo "executables are tracked in git (remove them; build into a temp dir or bin/):"; echo "$$bins"; exit 1; fi
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...
	cd test/cluster && $(GO) vet ./... && staticcheck ./...
	@# vet-platforms checks one architecture per OS, which holds while no file is architecture-specific.
	@if git ls-files '*.go' | grep -E '_(amd64|arm64|386|arm)(_test)?\.go$$'; then echo 'architecture-specific files: add their platforms to VET_PLATFORMS'; exit 1; fi
	$(MAKE) vet-platforms
	$(MAKE) list-platforms

# go vet type-checks every package, tests included, for each OS without
# linking, in seconds once the cache is warm. test/e2e drives the Linux-only
# test cluster (pods run as host processes), so it is checked on Linux only;
# test/compose (Docker on Linux) is checked everywhere, as it always compiled.
vet-platforms:
	@set -e; for p in $(VET_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; pkgs=./...; \
	  [ $$os = linux ] || pkgs=$$($(GO) list ./... | grep -v '/test/e2e$$'); \
	  echo "go vet ($$os/$$arch)"; \
	  GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) vet $$pkgs; \
	done

# go list loads every package, its tests and dependencies for each platform
# in LIST_PLATFORMS without compiling: a package whose build constraints
# exclude all its files there, an import that does not resolve, a syntax error
# or an import cycle fails it. It does not type-check (vet-platforms does, for
# one architecture per OS).
list-platforms:
	@set -e; for p in $(LIST_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; pkgs=./...; \
	  [ $$os = linux ] || pkgs=$$($(GO) list ./... | grep -v '/test/e2e$$'); \
	  echo "go list -deps -test ($$os/$$arch)"; \
	  errs=$$(GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) list -e -deps -test -f '{{if .Error}}{{.Error}}{{"\n"}}{{end}}' $$pkgs | awk '!seen[$$0]++'); \
	  if [ -n "$$errs" ]; then echo "$$errs"; echo "list-platforms: packages do not load for $$os/$$arch"; exit 1; fi; \
	done

# Release binaries for every platform, version-stamped like make install, and
# their checksums (sha256sum -c SHA256SUMS in dist/ verifies them).
dist:
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  out=dist/devmtls_$${os}_$${arch}$$ext; echo "$$out"; \
	  GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $$out ./cmd/devmtls; \
	done
	cd dist && if command -v sha256sum >/dev/null; then sha256sum devmtls_*; else shasum -a 256 devmtls_*; fi > SHA256SUMS

demo: deps
	$(MAKE) build
	./examples/demo.sh

cluster-up:
	$(MAKE) -C test/cluster up

cluster-down:
	$(MAKE) -C test/cluster down

clean:
	rm -rf bin dist
