# Make targets for mongosync_exporter and oplog_collector. `make help` lists them.

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
JSONNET     ?= github.com/google/go-jsonnet/cmd/jsonnet@v0.22.0
JSONNETFMT  ?= github.com/google/go-jsonnet/cmd/jsonnetfmt@v0.22.0
MISSPELL    ?= github.com/golangci/misspell/cmd/misspell@v0.8.0
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

# go build given several packages writes nothing unless -o names a directory.
.PHONY: build
build: ## Build both binaries into the project directory, with version information.
	$(GO) build -ldflags "$(LDFLAGS)" -o ./ $(addprefix ./cmd/,$(BINARIES))

.PHONY: run
run: build ## Run mongosync_exporter on config.yml (CONFIG=file for another), on :9782.
	./mongosync_exporter --config.file=$(CONFIG)

.PHONY: run-collector
run-collector: build ## Run oplog_collector on config.yml (its collector: section), on :9783.
	./oplog_collector --config.file=$(CONFIG)

# The local demo (internal/demo): test MongoDB servers, a simulated migration, both
# binaries, and Prometheus and Alertmanager when installed. DEMO_FLAGS passes flags to it
# (./demo-local --help). The demo program is built next to the binaries.
DEMO_FLAGS ?=

.PHONY: demo-local
demo-local: build ## A live local migration with both binaries on test servers; only Go needed. Ctrl-C stops it.
	$(GO) build -o ./demo-local ./internal/demo/cmd/demo-local
	./demo-local $(DEMO_FLAGS)

.PHONY: test
test: ## Run every test (race detector on) and short fuzzing passes of the parsers of what servers and databases send.
	$(GO) test -race -count=1 ./...
	$(GO) test -run='^$$' -fuzz=FuzzParseProgress -fuzztime=$(FUZZTIME) ./exporter
	$(GO) test -run='^$$' -fuzz=FuzzVerifierDocuments -fuzztime=$(FUZZTIME) ./exporter
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./internal/heartbeat
	$(GO) test -run='^$$' -fuzz=FuzzToItem -fuzztime=$(FUZZTIME) ./collector

# misspell reads Go sources (comments, strings and names), Markdown, YAML and jsonnet.
# MISSPELL_IGNORE lists words it takes for typos that are not: scoll, a source collection
# in internal/pitr.
MISSPELL_IGNORE := scoll

.PHONY: lint
lint: ## gofmt, go vet, staticcheck, jsonnetfmt (the mixin), misspell, and the repository checks.
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(JSONNETFMT) --test $$(find $(MIXIN_DIR) -name '*.jsonnet' -o -name '*.libsonnet') || \
	  { echo "jsonnetfmt would change the mixin: run $(GO) run $(JSONNETFMT) -i on it"; exit 1; }
	$(GO) run $(MISSPELL) -error -i $(MISSPELL_IGNORE) \
	  $$(git ls-files '*.go' '*.md' '*.yml' '*.yaml' '*.jsonnet' '*.libsonnet')
	$(GO) test -count=1 ./internal/repocheck/

# The monitoring mixin (deploy/mongo-migration-mixin/, jsonnet) generates dashboards/*.json
# and alerts/alerts.yml and alerts/recording.yml; a test (deploy/mixin_test.go) fails when
# the committed files differ from its render. MIXIN_CONFIG=file renders with the _config
# overrides that file holds (a jsonnet object), MIXIN_OUT=dir writes elsewhere. go-jsonnet
# comes through the Go module proxy, as staticcheck does: nothing to install.
MIXIN_DIR    := deploy/mongo-migration-mixin
MIXIN_OUT    ?= .
MIXIN_CONFIG ?=

.PHONY: mixin
mixin: ## Render dashboards/*.json and alerts/*.yml from the jsonnet mixin in deploy/mongo-migration-mixin.
	$(GO) run $(JSONNET) --string --multi $(MIXIN_OUT) --create-output-dirs --no-trailing-newline \
	  $(if $(MIXIN_CONFIG),--tla-code-file config=$(MIXIN_CONFIG)) $(MIXIN_DIR)/render.jsonnet

.PHONY: bench
bench: ## Run the benchmarks, all in one run so their figures compare.
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

# Release tarballs, in the layout of Prometheus' promu: one directory per platform,
# <name>-<version>.<os>-<arch>/, holding both binaries (static, cross-compiled), LICENSE,
# README.md, CHANGELOG.md, the example config.yml and web config, the systemd units, the
# rules, the dashboards and the docs; then sha256sums.txt over the tarballs. `make build`
# stays the quick build for this machine.
RELEASE_NAME      ?= mongo-migration-observability
RELEASE_VERSION   ?= $(patsubst v%,%,$(VERSION))
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64
DIST              ?= dist
RELEASE_FILES     := LICENSE README.md CHANGELOG.md config.yml
RELEASE_DIRS      := deploy/systemd:systemd alerts:alerts dashboards:dashboards docs:docs

.PHONY: release
release: ## Cross-compile release tarballs for linux amd64 and arm64, with sha256sums.txt, into dist/.
	@mkdir -p $(DIST)
	rm -f $(DIST)/$(RELEASE_NAME)-*.tar.gz $(DIST)/sha256sums.txt
	@set -e; for platform in $(RELEASE_PLATFORMS); do \
	  os=$${platform%/*}; arch=$${platform#*/}; \
	  dir=$(RELEASE_NAME)-$(RELEASE_VERSION).$$os-$$arch; stage=$(DIST)/.stage/$$dir; \
	  echo ">> $$dir"; rm -rf $(DIST)/.stage; mkdir -p $$stage; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
	    -o $$stage/ $(addprefix ./cmd/,$(BINARIES)); \
	  cp $(RELEASE_FILES) deploy/web-config.example.yml $$stage/; \
	  for pair in $(RELEASE_DIRS); do \
	    src=$${pair%%:*}; dst=$$stage/$${pair##*:}; mkdir -p $$dst; \
	    find $$src -maxdepth 1 -type f \( -name '*.service' -o -name '*.yml' -o -name '*.json' -o -name '*.md' \) \
	      -exec cp {} $$dst/ \; ; \
	  done; \
	  tar -C $(DIST)/.stage --owner=0 --group=0 --numeric-owner --sort=name -czf $(DIST)/$$dir.tar.gz $$dir; \
	done; rm -rf $(DIST)/.stage
	cd $(DIST) && sha256sum $(RELEASE_NAME)-$(RELEASE_VERSION).*.tar.gz > sha256sums.txt
	@cat $(DIST)/sha256sums.txt

.PHONY: clean
clean: ## Remove built binaries (the demo's too) and release tarballs.
	rm -f $(BINARIES) demo-local $(DIST)/$(RELEASE_NAME)-*.tar.gz $(DIST)/sha256sums.txt
	rm -rf $(DIST)/.stage
	@if [ -d $(DIST) ]; then rmdir $(DIST) 2>/dev/null || true; fi

# Demo stack (docker-compose.yml, files in deploy/): MongoDB replica sets, mongosync,
# migration-verifier, both binaries, Prometheus, Alertmanager and Grafana. Needs Docker with
# the compose plugin (deploy/demo/docker-preflight.sh says what is missing). mongosync is
# downloaded from MongoDB under MongoDB's license terms: MONGOSYNC_ACCEPT_LICENSE=yes says
# you accept them.
COMPOSE ?= docker compose

.PHONY: demo
demo: ## Start the demo stack (needs Docker and MONGOSYNC_ACCEPT_LICENSE=yes); Grafana on :3000.
	@COMPOSE='$(COMPOSE)' sh deploy/demo/docker-preflight.sh
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
	@COMPOSE='$(COMPOSE)' sh deploy/demo/docker-preflight.sh
	$(COMPOSE) down --volumes --remove-orphans
