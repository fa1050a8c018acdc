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

.PHONY: build install test unit fuzz bench lint demo clean cluster-up cluster-down

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/devmtls

install:
	$(GO) install -ldflags "$(LDFLAGS)" ./cmd/devmtls

# The whole proof: lint, every unit and end-to-end test, and a short run of each
# fuzz target.
test: lint unit
	$(MAKE) fuzz FUZZTIME=2000x

unit:
	$(GO) test $(TESTFLAGS) ./...
	cd test/cluster && $(GO) test $(TESTFLAGS) ./...

# Runs every Fuzz* target in the main module for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Benchmarks report ratios against a peer measured in the same run.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x -count=1 -timeout 60m ./...

lint:
	@bins=$$(git ls-files -z | xargs -0 -r file -N --mime-type | grep -E ': application/(x-executable|x-pie-executable|x-sharedlib|x-mach-binary|vnd.microsoft.portable-executable|x-dosexec)$$' | cut -d: -f1); \
	  if [ -n "$$bins" ]; then echo "executables are tracked in git (remove them; build into a temp dir or bin/):"; echo "$$bins"; exit 1; fi
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...
	cd test/cluster && $(GO) vet ./... && staticcheck ./...

demo: build
	./examples/demo.sh

cluster-up:
	$(MAKE) -C test/cluster up

cluster-down:
	$(MAKE) -C test/cluster down

clean:
	rm -rf bin
