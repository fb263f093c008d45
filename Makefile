# Make targets for mongosync_exporter (and, as they land, oplog_collector).
# `make help` lists them.

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 10s
BENCHTIME   ?= 1s
CONFIG      ?= config.yml

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH   ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
           -X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildUser=$(shell id -un)@$(shell hostname) \
           -X $(VERSION_PKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

BINARIES := mongosync_exporter oplog_collector

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build the binaries into the project directory, with version information.
	$(GO) build -ldflags "$(LDFLAGS)" $(addprefix ./cmd/,$(BINARIES))

.PHONY: run
run: build ## Run mongosync_exporter on config.yml (CONFIG=file for another), on :9782.
	./mongosync_exporter --config.file=$(CONFIG)

.PHONY: run-collector
run-collector: build ## Run oplog_collector on config.yml (its collector: section), on :9783.
	./oplog_collector --config.file=$(CONFIG)

.PHONY: test
test: ## Run every test (race detector on) and short fuzzing passes of the parsers of what servers and databases send.
	$(GO) test -race -count=1 ./...
	$(GO) test -run='^$$' -fuzz=FuzzParseProgress -fuzztime=$(FUZZTIME) ./exporter
	$(GO) test -run='^$$' -fuzz=FuzzVerifierDocuments -fuzztime=$(FUZZTIME) ./exporter
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./internal/heartbeat
	$(GO) test -run='^$$' -fuzz=FuzzToItem -fuzztime=$(FUZZTIME) ./collector

.PHONY: lint
lint: ## gofmt, go vet and staticcheck.
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

.PHONY: bench
bench: ## Run the benchmarks, all in one run so their figures compare.
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

.PHONY: clean
clean: ## Remove built binaries.
	rm -f $(BINARIES)

# Demo stack (docker-compose.yml, files in deploy/): MongoDB replica sets, mongosync,
# migration-verifier, both binaries, Prometheus, Alertmanager and Grafana. Needs Docker with
# the compose plugin. mongosync is downloaded from MongoDB under MongoDB's license terms:
# MONGOSYNC_ACCEPT_LICENSE=yes says you accept them.
COMPOSE ?= docker compose

.PHONY: demo
demo: ## Start the demo stack (needs MONGOSYNC_ACCEPT_LICENSE=yes); Grafana on :3000.
	@if [ "$(MONGOSYNC_ACCEPT_LICENSE)" != yes ]; then \
	  echo "The demo downloads mongosync, which MongoDB distributes under its own license terms."; \
	  echo "Read them, then run: make demo MONGOSYNC_ACCEPT_LICENSE=yes"; \
	  exit 1; \
	fi
	VERSION=$(VERSION) REVISION=$(REVISION) BRANCH=$(BRANCH) MONGOSYNC_ACCEPT_LICENSE=yes \
	  $(COMPOSE) up --detach --build
	@echo "Grafana http://localhost:3000  Prometheus http://localhost:9090  Alertmanager http://localhost:9093"

.PHONY: demo-down
demo-down: ## Stop the demo stack and delete its data volumes.
	$(COMPOSE) down --volumes --remove-orphans
