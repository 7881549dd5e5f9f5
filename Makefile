# statemgmt — developer commands. `make test` is the test command CI runs.

GO      ?= go
SQLC    := $(GO) run github.com/sqlc-dev/sqlc/cmd/sqlc
PKGS    := ./...

.PHONY: all demo generate check-generated test test-ha lint bench fuzz

all: check-generated lint test

## demo: run the whole system once on a fresh database (no setup needed)
demo:
	$(GO) run ./cmd/statectl demo

## generate: regenerate gen/db from schema/, queries/ and sqlc.yaml
generate:
	$(SQLC) generate

## check-generated: fail when gen/db differs from what sqlc would write
check-generated:
	$(SQLC) diff

## test: every test, with the race detector, against real PostgreSQL; then
## the store's suite again through PgBouncer in transaction pooling mode
test:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	@if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then \
		echo "STATEMGMT_TEST_PGBOUNCER=1 $(GO) test -race -count=1 ./statestore/"; \
		STATEMGMT_TEST_PGBOUNCER=1 $(GO) test -race -count=1 -timeout 15m ./statestore/; \
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

## lint: gofmt, go vet and staticcheck must be clean
lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck $(PKGS)
	cd bench && $(GO) vet ./...

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
