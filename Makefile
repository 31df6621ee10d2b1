# gatehouse — the two commands a new machine needs are `make run` and
# `make test`; everything they need is installed by `make deps`.

GO        ?= go
TESTFLAGS ?=
BENCHTIME ?= 1s
BENCHCOUNT ?= 6
export CGO_ENABLED := 1
SHELL := bash
.SHELLFLAGS := -eo pipefail -c

.PHONY: run test bench lint deps build

## run: gatehouse on the embedded SQLite default (./data/gatehouse.db, created)
run:
	$(GO) run ./cmd/gatehouse serve $(ARGS)

## build: the binary at ./bin/gatehouse
build:
	$(GO) build -o bin/gatehouse ./cmd/gatehouse

## test: every test, on SQLite and on a throwaway PostgreSQL cluster (the
## end-to-end packages run real servers and browsers: more than go test's
## default 10 minutes a package under the race detector on 2 cores)
test: deps
	$(GO) test -count=1 -timeout 45m $(TESTFLAGS) ./...

## bench: the store benchmarks on both backends, summarised by benchstat
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./store/ | tee bench.out
	$(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da bench.out

## lint: formatting and go vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...

## deps: what the tests need from Debian (PostgreSQL server binaries)
deps:
	@bash .ci/deps
