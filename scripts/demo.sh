#!/usr/bin/env bash
# make demo: a test pool, the proxy and simulated miners, all on loopback, with a live
# summary line from the proxy every 5 seconds. Ctrl-C stops everything.
set -euo pipefail

BIN=${BIN:-target/release}
MINERS=${MINERS:-12}
WORK=$(mktemp -d /tmp/stratum-proxy-demo.XXXXXX)
pids=()

cleanup() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo
    [ -f "$WORK/pool.json" ] && echo "test pool counters: $(cat "$WORK/pool.json")"
    [ -f "$WORK/v1pool.json" ] && echo "stratum v1 test pool counters: $(cat "$WORK/v1pool.json")"
    rm -rf "$WORK"
}
trap cleanup INT TERM EXIT

# Waits up to 10 s for a "<prefix> ADDR" line in a log file and prints ADDR.
wait_addr() {
    local file=$1 pattern=$2
    for _ in $(seq 100); do
        local addr
        addr=$(grep -o "$pattern [0-9.:]*" "$file" 2>/dev/null | head -1 | awk '{print $NF}') || true
        if [ -n "$addr" ]; then echo "$addr"; return 0; fi
        sleep 0.1
    done
    echo "demo: timed out waiting for '$pattern' in $file:" >&2
    cat "$file" >&2
    return 1
}

"$BIN/testpool" --bind 127.0.0.1:0 --job-interval 10 --diff 5000 --stats-file "$WORK/pool.json" >"$WORK/pool.log" 2>&1 &
pids+=($!)
POOL=$(wait_addr "$WORK/pool.log" "testpool listening on")
echo "test pool on $POOL (a new job every 10 s, difficulty 5000)"
"$BIN/testpool" --protocol v1 --algo sha256d --diff 0.001 --bind 127.0.0.1:0 --job-interval 30 --stats-file "$WORK/v1pool.json" >"$WORK/v1pool.log" 2>&1 &
pids+=($!)
V1POOL=$(wait_addr "$WORK/v1pool.log" "testpool listening on")
echo "stratum v1 test pool on $V1POOL (sha256d, difficulty 0.001: it checks every header)"

cat >"$WORK/config.json" <<JSON
{
  "mode": "nicehash",
  "bind": ["127.0.0.1:0", {"host": "127.0.0.1", "port": 0, "pool-group": "btc"}],
  "pools": [
    {"url": "$POOL", "user": "demo-wallet", "pass": "x", "keepalive": true},
    {"url": "$V1POOL", "user": "demo.btc", "pass": "x", "algo": "sha256d", "group": "btc"}
  ],
  "print-time": 5,
  "http": {"enabled": true, "host": "127.0.0.1", "port": 0}
}
JSON
RUST_LOG=${RUST_LOG:-info} "$BIN/stratum-proxy" -c "$WORK/config.json" 2>&1 | tee "$WORK/proxy.log" &
pids+=($!)
PROXY=$(wait_addr "$WORK/proxy.log" "listening on")
V1PORT=$(grep -o "listening on [0-9.:]* (nicehash, pool group btc" "$WORK/proxy.log" | head -1 | awk '{print $3}')
API=$(grep -o "HTTP API on http://[0-9.:]*" "$WORK/proxy.log" | head -1 | sed 's|.*http://||') || true
echo "proxy on $PROXY; starting $MINERS simulated NiceHash miners (a share every 3 s each)"
[ -n "$API" ] && echo "dashboard: http://$API/"

"$BIN/minersim" --url "$PROXY" --miners "$MINERS" --share-interval 3 --duration 0 >"$WORK/miners.log" 2>&1 &
pids+=($!)
if [ -n "$V1PORT" ]; then
    echo "and 2 hashing stratum v1 (sha256d) rigs on $V1PORT, sharing one pool session"
    "$BIN/minersim" --protocol v1 --url "$V1PORT" --miners 2 --duration 0 >"$WORK/v1miners.log" 2>&1 &
    pids+=($!)
fi
echo "Ctrl-C to stop."
wait
