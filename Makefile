# geodnsd — common tasks. `make check` is what CI runs (see .ci/run).
GO      ?= go
BIN     ?= bin
PKGS    := ./...
FUZZTIME ?= 30s

.PHONY: all build test race vet lint fmt fuzz bench bench-dns check run demo tidy clean
.PHONY: bench-drill bench-status

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

test:
	$(GO) test $(PKGS)

race:
	$(GO) test -race -shuffle=on $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@cp go.mod /tmp/geodnsd.go.mod.bak && cp go.sum /tmp/geodnsd.go.sum.bak && $(GO) mod tidy && \
	  if ! git diff --quiet go.mod go.sum; then echo "go mod tidy changes go.mod/go.sum"; cp /tmp/geodnsd.go.mod.bak go.mod; cp /tmp/geodnsd.go.sum.bak go.sum; exit 1; fi

# Each fuzz target for FUZZTIME (go test -fuzz takes one target at a time).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNS$$' -fuzztime $(FUZZTIME) ./dnsserver/
	$(GO) test -run '^$$' -fuzz '^FuzzParseVsMiekg$$' -fuzztime $(FUZZTIME) ./dnsserver/
	$(GO) test -run '^$$' -fuzz '^FuzzServeService$$' -fuzztime $(FUZZTIME) ./dnsserver/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./zones/
	$(GO) test -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEvent$$' -fuzztime $(FUZZTIME) ./failover/
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshalSnapshot$$' -fuzztime $(FUZZTIME) ./failover/
	$(GO) test -run '^$$' -fuzz '^FuzzParseReply$$' -fuzztime $(FUZZTIME) ./health/

# Go benchmarks (hot path, failover core, prober scheduler).
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# geodnsd vs gdnsd vs NSD under dnsperf, side by side (needs: apt-get install -y nsd gdnsd dnsperf).
bench-dns:
	bench/dnsperf.sh

# The six-process lab (e2e/bench_test.go): failover time against interval × fall
# + down_for + 0.5 s, command to all six, contradicting answers through the drill.
# BENCHTIME rounds each (about 15 s a failover round, 30 s a drill round).
BENCHTIME ?= 5x
bench-drill:
	$(GO) test -v -run '^$$' -bench '^BenchmarkLab' -benchtime $(BENCHTIME) -timeout 60m ./e2e/

# status.json requests/s (200 and 304) and DNS queries/s alone and while it is
# polled, on one node (needs: apt-get install -y wrk dnsperf curl bind9-dnsutils).
bench-status:
	bench/status.sh

check: lint race

run: build
	$(BIN)/geodnsd -config deploy/examples/demo/geodnsd.toml

demo:
	$(GO) run ./cmd/geodnsd -demo

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN)
