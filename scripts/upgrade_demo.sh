#!/usr/bin/env bash
# A live upgrade as an operator does it, on loopback: a test pool, the proxy, and MINERS
# simulated rigs sending a share a second for DURATION seconds. The proxy is upgraded
# twice while they mine (`stratum-proxy --upgrade PID`, the same as SIGUSR2; a real
# upgrade installs the new binary first). Then it checks what the rigs and the pool saw:
# no disconnect, no share lost or refused, none sent twice, one pool login.
#
#   scripts/upgrade_demo.sh                 # or: make upgrade-demo
#   MINERS=500 DURATION=60 scripts/upgrade_demo.sh
set -euo pipefail

BIN=${BIN:-target/release}
DURATION=${DURATION:-40}
MINERS=${MINERS:-50}
UPGRADES=${UPGRADES-"10 25"}
WORK=$(mktemp -d /tmp/stratum-proxy-upgrade.XXXXXX)
pids=()

cleanup() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup INT TERM EXIT

wait_for() { # file pattern [nth]: prints the word after the nth match of pattern
    local file=$1 pattern=$2 nth=${3:-1}
    for _ in $(seq 150); do
        local v
        v=$(grep -o "$pattern [0-9.:]*" "$file" 2>/dev/null | sed -n "${nth}p" | awk '{print $NF}') || true
        if [ -n "$v" ]; then echo "${v%:}"; return 0; fi
        sleep 0.1
    done
    echo "upgrade_demo: timed out waiting for '$pattern' in $file" >&2
    return 1
}

"$BIN/testpool" --bind 127.0.0.1:0 --job-interval 5 --diff 1000 --stats-file "$WORK/pool.json" >"$WORK/pool.log" 2>&1 &
pids+=($!)
POOL=$(wait_for "$WORK/pool.log" "testpool listening on")
cat >"$WORK/config.json" <<JSON
{
  "bind": ["127.0.0.1:0"],
  "pools": [{"url": "$POOL", "user": "farm"}],
  "retries": 1, "retry-pause": 1, "print-time": 10,
  "http": {"enabled": true, "host": "127.0.0.1", "port": 0}
}
JSON
RUST_LOG=${RUST_LOG:-info} "$BIN/stratum-proxy" -c "$WORK/config.json" >"$WORK/proxy.log" 2>&1 &
PID=$!
pids+=($PID)
PROXY=$(wait_for "$WORK/proxy.log" "listening on")
echo "pool $POOL; proxy $PROXY (pid $PID); $MINERS rigs for $DURATION s; upgrades at t=${UPGRADES// /, } s"
"$BIN/minersim" --url "$PROXY" --miners "$MINERS" --share-interval 1 --duration "$DURATION" --json >"$WORK/miners.json" 2>"$WORK/miners.log" &
SIM=$!
pids+=($SIM)

start=$(date +%s)
sleep 5
logins=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['logins'])" "$WORK/pool.json")
n=0
for at in $UPGRADES; do
    sleep $(( at - ($(date +%s) - start) ))
    n=$(( n + 1 ))
    "$BIN/stratum-proxy" --upgrade "$PID"
    NEW=$(wait_for "$WORK/proxy.log" "handed over to pid" "$n")
    pids+=($NEW)
    echo "t=$(( $(date +%s) - start ))s: pid $PID handed over to pid $NEW"
    grep "upgrade: handed over" "$WORK/proxy.log" | sed -n "${n}p" | sed 's/^.*upgrade: /  /'
    PID=$NEW
done
wait "$SIM"

python3 - "$WORK/miners.json" "$WORK/pool.json" "$MINERS" "$logins" <<'PY'
import json, sys, time
sim = json.load(open(sys.argv[1]))
miners, logins = int(sys.argv[3]), int(sys.argv[4])
# The rigs' last shares may still be on their way: wait (5 s at most) for the pool's count.
deadline = time.time() + 5
while True:
    pool = json.load(open(sys.argv[2]))
    if pool["accepted"] >= sim["submitted"] or time.time() > deadline:
        break
    time.sleep(0.2)
print(f"rigs: logged in {sim['logged_in']}, disconnects {sim['disconnects']}, reconnects {sim['reconnects']}, "
      f"submitted {sim['submitted']}, accepted {sim['accepted']}, rejected {sim['rejected']}")
print(f"pool: logins {pool['logins']}, connections {pool['connections_total']}, accepted {pool['accepted']}, "
      f"duplicate {pool['duplicate']}, stale {pool['stale']}, invalid {pool['invalid']}")
checks = [
    ("no rig disconnected", sim["disconnects"] == 0 and sim["reconnects"] == 0 and sim["logged_in"] == miners),
    ("no share refused", sim["rejected"] == 0 and pool["invalid"] == 0 and pool["low_diff"] == 0),
    ("every share answered (at most one in flight per rig when they stopped)", 0 <= sim["submitted"] - sim["accepted"] <= miners),
    ("every share the rigs sent reached the pool once", pool["accepted"] == sim["submitted"]),
    ("no share sent twice", pool["duplicate"] == 0),
    (f"no new pool login across the upgrades ({logins} before)", pool["logins"] == logins and pool["connections_total"] == logins),
]
for what, ok in checks:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
sys.exit(0 if all(ok for _, ok in checks) else 1)
PY
