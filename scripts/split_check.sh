#!/usr/bin/env bash
# A weighted pool group as a farm runs it: two test pools weighted 70/30, the proxy, and
# 20 simulated rigs (one rig id each) mining for DURATION seconds, all on loopback. Prints
# each pool's part of the accepted shares (both pools use one difficulty, so counts are
# difficulty-weighted parts) and the rigs' disconnects. With KILL_AT and RESTART_AT set,
# pool A is killed and started again on its port at those seconds.
#
#   scripts/split_check.sh                          # 5 minutes, steady
#   KILL_AT=60 RESTART_AT=120 scripts/split_check.sh
set -euo pipefail

BIN=${BIN:-target/release}
DURATION=${DURATION:-300}
MINERS=${MINERS:-20}
KILL_AT=${KILL_AT:-}
RESTART_AT=${RESTART_AT:-}
WORK=$(mktemp -d /tmp/stratum-proxy-split.XXXXXX)
pids=()

cleanup() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup INT TERM EXIT

wait_addr() {
    local file=$1 pattern=$2
    for _ in $(seq 100); do
        local addr
        addr=$(grep -o "$pattern [0-9.:]*" "$file" 2>/dev/null | head -1 | awk '{print $NF}') || true
        if [ -n "$addr" ]; then echo "$addr"; return 0; fi
        sleep 0.1
    done
    echo "split_check: timed out waiting for '$pattern' in $file" >&2
    return 1
}

pool() { # name bind
    "$BIN/testpool" --bind "$2" --job-interval 10 --diff 5000 --stats-file "$WORK/$1.json" >"$WORK/$1.log" 2>&1 &
    pids+=($!)
    echo $! >"$WORK/$1.pid"
}

pool a 127.0.0.1:0
A=$(wait_addr "$WORK/a.log" "testpool listening on")
pool b 127.0.0.1:0
B=$(wait_addr "$WORK/b.log" "testpool listening on")
cat >"$WORK/config.json" <<JSON
{
  "bind": ["127.0.0.1:0"],
  "pools": [
    {"url": "$A", "user": "farm", "weight": 70},
    {"url": "$B", "user": "farm", "weight": 30}
  ],
  "retries": 1, "retry-pause": 1, "print-time": 30,
  "http": {"enabled": true, "host": "127.0.0.1", "port": 0}
}
JSON
RUST_LOG=${RUST_LOG:-info} "$BIN/stratum-proxy" -c "$WORK/config.json" >"$WORK/proxy.log" 2>&1 &
pids+=($!)
PROXY=$(wait_addr "$WORK/proxy.log" "listening on")
echo "pools A=$A (weight 70) B=$B (weight 30); proxy $PROXY; $MINERS rigs for $DURATION s"
"$BIN/minersim" --url "$PROXY" --miners "$MINERS" --share-interval 2 --duration "$DURATION" --json >"$WORK/miners.json" 2>"$WORK/miners.log" &
SIM=$!
pids+=($SIM)

accepted() { python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('accepted', 0))" "$1" 2>/dev/null || echo 0; }
a_before=0
start=$(date +%s)
if [ -n "$KILL_AT" ]; then
    sleep "$KILL_AT"
    a_before=$(accepted "$WORK/a.json")
    kill "$(cat "$WORK/a.pid")"
    echo "t=$(( $(date +%s) - start ))s: pool A killed"
    if [ -n "$RESTART_AT" ]; then
        sleep $(( RESTART_AT - KILL_AT ))
        rm -f "$WORK/a.json"
        pool a "$A"
        echo "t=$(( $(date +%s) - start ))s: pool A restarted on $A"
    fi
fi
wait "$SIM"
a=$(( a_before + $(accepted "$WORK/a.json") ))
b=$(accepted "$WORK/b.json")
python3 - "$a" "$b" "$WORK/miners.json" <<'PY'
import json, sys
a, b = int(sys.argv[1]), int(sys.argv[2])
sim = json.load(open(sys.argv[3]))
total = max(a + b, 1)
print(f"accepted at the pools: A {a} ({100 * a / total:.1f} %), B {b} ({100 * b / total:.1f} %); asked 70 / 30")
print(f"rigs: logged in {sim['logged_in']}, disconnects {sim['disconnects']}, accepted {sim['accepted']}, rejected {sim['rejected']}")
PY
grep -E "rebalancing|connection to .* lost" "$WORK/proxy.log" | tail -5 || true
