# stratum-proxy: the commands a newcomer needs. See README.md.
CARGO ?= cargo

.PHONY: build run demo test lint bench clean arm64 armv7 arm-check footprint

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

## ARM routers: stripped release binaries in dist/ (installs the rustup target and Debian's
## cross gcc when missing).
arm64:
	bash scripts/cross.sh arm64

armv7:
	bash scripts/cross.sh armv7

## The arm64 and armv7 proxies under qemu-user between the native test pool and simulated
## miners: shares must be accepted. Prints stripped size and idle RSS.
arm-check: build arm64 armv7
	bash scripts/arch_check.sh arm64 armv7

## Stripped size and idle RSS of the proxy on x86_64, arm64 and armv7 (README figures).
footprint: build arm64 armv7
	bash scripts/arch_check.sh x86_64 arm64 armv7

clean:
	$(CARGO) clean
	rm -rf dist
