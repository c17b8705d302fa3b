#!/usr/bin/env bash
# Proxy RSS per logged-in miner as a farm looks: 10k miners on loopback, no shares, every
# rig with the same 95-character wallet and xmrig's agent string. Bounded: 40 s at most.
#   scripts/rss_probe.sh [BIN_DIR] [PORT]
set -u
B=${1:-target/release}; PORT=${2:-3401}
(${B}/testpool --bind 127.0.0.1:0 --job-interval 5 --diff 1000 --duration 40 > /tmp/tp.$PORT.log 2>&1 &) ; sleep 0.5
POOL=$(head -1 /tmp/tp.$PORT.log | awk '{print $4}')
echo "{\"bind\":[\"127.0.0.1:$PORT\"],\"pools\":[{\"url\":\"$POOL\"}],\"workers\":false}" > /tmp/rp.$PORT.json
(RUST_LOG=warn ${B}/stratum-proxy -c /tmp/rp.$PORT.json > /dev/null 2>&1 &); sleep 0.5
PID=$(pgrep -f "stratum-proxy -c /tmp/rp.$PORT.json")
A=$(grep VmRSS /proc/$PID/status | awk '{print $2}')
ulimit -n 20000
W=4$(printf 'A%.0s' $(seq 94))
(${B}/minersim --url 127.0.0.1:$PORT --miners 10000 --share-interval 0 --duration 15 --sources 127.0.0.1,127.0.0.2 --ramp 1000 --user $W --agent "XMRig/6.26.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0" > /dev/null 2>&1 &)
sleep 10
Z=$(grep VmRSS /proc/$PID/status | awk '{print $2}')
echo "rss per miner: $(( (Z - A) * 1024 / 10000 )) B"
pkill -f "stratum-proxy -c /tmp/rp.$PORT.json"; sleep 6
