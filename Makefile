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

BINARIES := mongosync_exporter

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build the binaries into the project directory, with version information.
	$(GO) build -ldflags "$(LDFLAGS)" $(addprefix ./cmd/,$(BINARIES))

.PHONY: run
run: build ## Run mongosync_exporter on config.yml (CONFIG=file for another), on :9782.
	./mongosync_exporter --config.file=$(CONFIG)

.PHONY: test
test: ## Run every test (race detector on) and a short fuzzing pass of the progress parser.
	$(GO) test -race -count=1 ./...
	$(GO) test -run='^$$' -fuzz=FuzzParseProgress -fuzztime=$(FUZZTIME) ./exporter

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
