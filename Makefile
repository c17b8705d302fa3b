# stratum-proxy: the commands a newcomer needs. See README.md.
CARGO ?= cargo

.PHONY: build run demo upgrade-demo test lint bench clean arm64 armv7 arm-check footprint install install-files

PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
DESTDIR ?=
BINARY ?= target/release/stratum-proxy

build:
	$(CARGO) build --release --bins

## Runs the proxy with ./config.json.
run: build
	./target/release/stratum-proxy -c config.json

## Test pool, proxy and simulated miners on loopback, with a live summary. Ctrl-C stops.
demo: build
	bash scripts/demo.sh

## A live upgrade under load: 50 simulated rigs, the proxy upgraded twice, then checks
## (no disconnect, no share lost, refused or sent twice, one pool login).
upgrade-demo: build
	bash scripts/upgrade_demo.sh

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

## The binary, the systemd unit and (only if there is none) a default config:
##   sudo make install && sudo systemctl daemon-reload && sudo systemctl enable --now stratum-proxy
## PREFIX (default /usr/local), SYSCONFDIR (/etc), UNITDIR and DESTDIR (for packaging) apply.
install: build install-files

install-files:
	install -D -m 755 $(BINARY) $(DESTDIR)$(PREFIX)/bin/stratum-proxy
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/bin/stratum-proxy|$(PREFIX)/bin/stratum-proxy|' \
	    -e 's|/etc/stratum-proxy/|$(SYSCONFDIR)/stratum-proxy/|' \
	    -e 's|/usr/local/share/doc/|$(PREFIX)/share/doc/|' \
	    contrib/stratum-proxy.service > $(DESTDIR)$(UNITDIR)/stratum-proxy.service
	chmod 644 $(DESTDIR)$(UNITDIR)/stratum-proxy.service
	install -D -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/stratum-proxy/README.md
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/stratum-proxy/config.json ]; then \
	    echo "keeping $(DESTDIR)$(SYSCONFDIR)/stratum-proxy/config.json"; \
	else \
	    install -D -m 644 contrib/config.json $(DESTDIR)$(SYSCONFDIR)/stratum-proxy/config.json; \
	    echo "installed $(DESTDIR)$(SYSCONFDIR)/stratum-proxy/config.json: set the pool url and wallet"; \
	fi

## ARM routers: stripped release binaries in dist/ (installs the rustup target and Debian's
## cross gcc when missing).
arm64:
	bash scripts/cross.sh arm64

armv7:
	bash scripts/cross.sh armv7

## The arm64 and armv7 proxies under qemu-user between the native test pool and simulated
## miners: shares must be accepted. Prints stripped size and idle RSS. Then the unit tests
## on armv7, the one 32-bit target, under qemu-arm. The store's kill -9 test re-executes
## its own binary, which qemu-user cannot follow without binfmt: it runs natively only.
arm-check: build arm64 armv7
	bash scripts/arch_check.sh arm64 armv7
	CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm -L /usr/arm-linux-gnueabihf" \
	    $(CARGO) test --lib --target armv7-unknown-linux-gnueabihf -- \
	    --skip accounts::writer::tests::acknowledged_operations_survive_kill_9

## Stripped size and idle RSS of the proxy on x86_64, arm64 and armv7 (README figures).
footprint: build arm64 armv7
	bash scripts/arch_check.sh x86_64 arm64 armv7

clean:
	$(CARGO) clean
	rm -rf dist
