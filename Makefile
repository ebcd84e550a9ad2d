# connectord — run `make help` for the targets.
PREFIX   ?= $(HOME)/.local
BINDIR   ?= $(PREFIX)/bin
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOBIN    := $(shell $(GO) env GOPATH)/bin
LDFLAGS  := -s -w -X github.com/connectord/connectord/internal/version.Version=$(VERSION)
FUZZTIME ?= 20s
# The secretservice store backend links libsecret through cgo; build it
# in when the library is there, so a machine without it still builds.
TAGS     ?= $(shell pkg-config --exists libsecret-1 2>/dev/null && echo secretservice)
CONFIG_DIR := $(or $(XDG_CONFIG_HOME),$(HOME)/.config)/connectord

export GOTOOLCHAIN := local
export PATH := $(GOBIN):$(PATH)

.PHONY: help build install install-service up down deps test lint fuzz bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/connectord and bin/docker-credential-connector
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/ ./cmd/connectord
	@# The helper starts for every pull: a static binary skips the dynamic
	@# loader (about 0.6 ms here, see BENCHMARKS.md) and needs no libc.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/docker-credential-connector

install: build ## install both binaries into $(PREFIX)/bin (PREFIX defaults to ~/.local)
	install -d $(BINDIR)
	install -m 0755 bin/connectord bin/docker-credential-connector $(BINDIR)/

install-service: install ## install, then the systemd user units (connectord.service, .socket) pointing at $(BINDIR)/connectord
	$(BINDIR)/connectord install-service

up: install ## build, install, write a default config if there is none, start the daemon
	@install -d -m 0700 $(CONFIG_DIR)
	@if [ -e $(CONFIG_DIR)/config.toml ]; then echo "keeping $(CONFIG_DIR)/config.toml"; \
	 else install -m 0600 contrib/config.default.toml $(CONFIG_DIR)/config.toml && echo "wrote $(CONFIG_DIR)/config.toml"; fi
	$(BINDIR)/connectord start
	@$(BINDIR)/connectord status
	@case ":$$PATH:" in *":$(BINDIR):"*) ;; *) echo "note: add $(BINDIR) to PATH so docker finds docker-credential-connector";; esac

down: ## stop the daemon
	-$(BINDIR)/connectord stop

deps: ## install what the tests need (Debian packages, pinned Go tools); idempotent
	.ci/install-deps

test: deps ## run the whole test suite (unit, integration with real registries and clients) under -race
	$(GO) test -race -count=1 -timeout 30m -tags '$(TAGS)' ./...

lint: ## gofmt, go vet and staticcheck (pinned in .ci/install-deps)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags '$(TAGS)' ./...
	staticcheck -tags '$(TAGS)' ./...

fuzz: ## run every fuzz target for FUZZTIME each (a real finding fails; see .ci/fuzz)
	FUZZTIME=$(FUZZTIME) GO=$(GO) .ci/fuzz

# make bench: the Go benchmarks (bench/, ipc/) BENCHCOUNT times each, then
# bench/helpers.sh (hyperfine: whole-process helpers, crane, the daemon
# process, the profile). Everything lands in bench/results/; BENCHMARKS.md
# says what each figure is and how to reproduce it by hand.
BENCHTIME  ?= 2s
BENCHCOUNT ?= 3
BENCHOUT   ?= bench/results
bench: SHELL := /bin/bash
bench: .SHELLFLAGS := -o pipefail -c
bench: ## run the benchmarks (daemon, scale, helpers, crane); results in bench/results, see BENCHMARKS.md
	@mkdir -p $(BENCHOUT)
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 60m ./bench/... ./ipc/... | tee $(BENCHOUT)/go-bench.txt
	$(GO) run ./bench/report gotest $(BENCHOUT)/go-bench.txt | tee $(BENCHOUT)/go-bench.md
	BENCHTIME=$(BENCHTIME) bench/helpers.sh -o $(BENCHOUT)

clean: ## remove build output
	rm -rf bin
