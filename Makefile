# stratum-proxy: the commands a newcomer needs. See README.md.
CARGO ?= cargo

.PHONY: build run demo test lint bench clean

build:
	$(CARGO) build --release --bins

## Runs the proxy with ./config.json.
run: build
	./target/release/stratum-proxy -c config.json

## Test pool, proxy and simulated miners on loopback, with a live summary. Ctrl-C stops.
demo: build
	bash scripts/demo.sh

## Unit and integration tests (real sockets on loopback), then format and lint checks.
test:
	$(CARGO) test --all-targets
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

## Load benchmark: the kernel's floor on this machine, then 1k, 10k and 19k simulated
## miners through the proxy (see BENCHMARKS.md).
bench: build
	./target/release/sendfloor
	python3 scripts/bench.py

clean:
	$(CARGO) clean
