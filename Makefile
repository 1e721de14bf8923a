GO        ?= go
BIN       := bin
PKGS      := ./...
GOFLAGS   ?=
export GOFLAGS

.PHONY: all build test vet race fuzz bench bench-peers demo docs install clean fmt-check

all: build

build:
	$(GO) build -o $(BIN)/boxsup-shim ./cmd/boxsup-shim
	$(GO) build -o $(BIN)/boxsup ./cmd/boxsup

# test: what CI runs. Vet and formatting first, then every package under the
# race detector (real processes, real signals, temp homes).
test: fmt-check vet
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

demo: build
	./$(BIN)/boxsup demo

bench: build
	$(GO) run ./bench/cmd/boxsup-bench

# bench-peers: the same workloads against s6, runit, supervisord, pm2 and
# ochinchina/supervisord where installed (sudo bench/peers/install), next to
# boxsup. BENCH_PEERS picks supervisors, BENCH_PEERS_N the service counts
# (default 200,1000); docs/PERFORMANCE.md lists every knob.
bench-peers: build
	$(GO) run ./bench/cmd/boxsup-bench -peers $${BENCH_PEERS:-all}

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzValidateID -fuzztime 20s ./layout
	$(GO) test -run '^$$' -fuzz FuzzSpecJSON -fuzztime 20s ./messages
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 20s ./labels

# docs: regenerate docs/CLI.md from the commands' help (a test fails when
# the committed file differs).
docs:
	$(GO) test -count=1 -run '^TestCLIDocIsCurrent$$' ./cmd/boxsup -update-docs

install: build
	install -m 0755 $(BIN)/boxsup $(BIN)/boxsup-shim $${PREFIX:-/usr/local}/bin/

clean:
	rm -rf $(BIN)
