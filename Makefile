# statemgmt — developer commands. `make test` is the test command CI runs.

GO      ?= go
SQLC    := $(GO) run github.com/sqlc-dev/sqlc/cmd/sqlc
PKGS    := ./...

.PHONY: all demo generate check-generated test test-ha lint bench fuzz

all: check-generated lint test

## demo: run the whole system once on a fresh database (no setup needed)
demo:
	$(GO) run ./cmd/statectl demo

## generate: everything generated, through the //go:generate directives:
## gen/db from schema/, queries/ and sqlc.yaml (gen/db/generate.go), and the
## Go snippets of README.md and docs/*.md from their Examples
## (internal/doccheck/snippets.go), then the reviewable schema dump and query
## plans (schema/dump, queries/plans: gen/db/sqlfiles_test.go, docs/sql.md).
## `go generate ./...` does the same.
generate:
	$(GO) generate ./...

## check-generated: fail when gen/db differs from what sqlc would write
check-generated:
	$(SQLC) diff

# gotestsum (pinned in tools.go) prints each package as it finishes, with its
# time, and every failing test's output; it exits non-zero when a test fails.
GOTESTSUM := $(GO) run gotest.tools/gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg --

## test: every test, with the race detector, against real PostgreSQL; then
## the store's suite again through PgBouncer in transaction pooling mode
test:
	$(GOTESTSUM) -race -count=1 -timeout 15m $(PKGS)
	cd statestore/statetest/statetestdocker && $(GO) test -count=1 ./...
	@if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then \
		echo "STATEMGMT_TEST_PGBOUNCER=1 go test -race -count=1 ./statestore/"; \
		STATEMGMT_TEST_PGBOUNCER=1 $(GOTESTSUM) -race -count=1 -timeout 15m ./statestore/; \
	else \
		echo "SKIPPED: the store suite through PgBouncer (apt-get install pgbouncer)"; \
		if [ -n "$$CI" ]; then exit 1; fi; \
	fi

## test-ha: the database failover tests (docs/ha.md): the primary + synchronous
## standby pair (also part of make test) and a pg_auto_failover formation
## (apt-get install -y postgresql-15-auto-failover pg-auto-failover-cli)
test-ha:
	@command -v pg_autoctl >/dev/null 2>&1 || { echo "make test-ha needs pg_autoctl: apt-get install -y postgresql-15-auto-failover pg-auto-failover-cli"; exit 1; }
	STATEMGMT_TEST_HA=1 $(GO) test -race -count=1 -p 1 -timeout 5m -run '^TestHA' ./internal/hapg/ ./statestore/

## lint: gofmt, go vet and staticcheck must be clean; squawk on the migrations
## and sqlc vet on the queries (docs/sql.md)
lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck $(PKGS)
	cd bench && $(GO) vet ./...
	tools/squawk/lint.sh
	$(SQLC) vet
	cd statestore/statetest/statetestdocker && $(GO) vet ./...

## bench: every Go benchmark briefly, then every scenario of the comparison
## program (bench/, its own module) at a small size: a smoke test, not a measurement
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 20x $(PKGS)
	cd bench && $(GO) run . -scenario all -small > /dev/null

## fuzz: each fuzz target briefly (FUZZTIME=10s; run longer locally)
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseTarget$$' -fuzztime $(FUZZTIME) ./fetch/
	$(GO) test -run '^$$' -fuzz '^FuzzFileRoot$$' -fuzztime $(FUZZTIME) ./fetch/
	$(GO) test -run '^$$' -fuzz '^FuzzCreateTask$$' -fuzztime $(FUZZTIME) ./statestore/
	$(GO) test -run '^$$' -fuzz '^FuzzAppendMessage$$' -fuzztime $(FUZZTIME) ./statestore/
