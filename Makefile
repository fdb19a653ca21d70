# kickstand — the two set-up commands are `make demo` and `make test`.
# Both install what they need from Debian's packages when it is missing.

GO      ?= go
BIN     ?= bin/kickstand
# make test turns "tool missing, skipping" into a failure: CI must run the
# real-peer tests, not skip them.
export KICKSTAND_REQUIRE_PEERS ?= 1

.PHONY: all build deps test check demo bench fuzz stress man clean

all: build

# -buildvcs=auto stamps the commit `kickstand version` prints, even where
# GOFLAGS turns VCS stamping off; outside a git clone it stamps nothing.
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/kickstand

# One page per command, from the binary's own help (cobra's doc package).
man: build
	$(BIN) man --dir man

deps:
	@bash scripts/deps.sh

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: deps check
	$(GO) test -count=1 -timeout 40m ./...

# make demo installs only what the demo needs (internal/demotest checks it).
demo: build
	@bash scripts/deps.sh demo
	@bash scripts/demo.sh

bench: deps build
	@bash scripts/bench.sh

# Longer hostile-traffic and crash-safety runs than make test's bounded ones.
stress: deps build
	@bash scripts/stress.sh

FUZZTIME ?= 60s
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin man
