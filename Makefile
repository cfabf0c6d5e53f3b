# abortscope: make test runs everything CI runs; make build builds the binary.
GO      ?= go
BIN     ?= bin/abortscope
UNIT    = $(shell $(GO) list ./... | grep -v /e2e)

.PHONY: all build test deps vet unit e2e bench fuzz clean readme

all: build

build:
	$(GO) build -o $(BIN) ./cmd/abortscope

# deps installs what the tests need on a fresh Debian machine: MariaDB server
# and client, PyMySQL for the system python3, and the Go modules.
deps:
	@bash scripts/ensure-deps.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

unit:
	$(GO) test -race -count=1 $(UNIT)

# e2e starts its own private MariaDB (one per test package) and the proxy.
e2e:
	$(GO) test -count=1 -timeout 12m ./e2e/...

test: deps vet unit e2e

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./protocol/... ./proxy/...

# fuzz runs every fuzz target of the decoder packages for FUZZTIME each.
FUZZTIME ?= 20s
FUZZPKGS ?= ./protocol ./proxyproto ./internal/procnet ./internal/redact
fuzz:
	@for p in $(FUZZPKGS); do for f in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
		echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
	done; done

# readme rewrites README.md's cause table from explain/causes.go.
readme:
	$(GO) run ./cmd/abortscope explain --readme README.md

clean:
	rm -rf bin
