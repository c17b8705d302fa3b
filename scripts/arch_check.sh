#!/usr/bin/env bash
# Runs the proxy built for each named architecture between the native test pool and native
# simulated miners on loopback, ARM binaries under qemu-user, and checks that shares are
# accepted end to end. Prints the stripped size and the idle RSS of each.
#   scripts/arch_check.sh [x86_64] [arm64] [armv7]
# Build first: `make build` (native pool and miners, x86_64 proxy), `make arm64 armv7`.
# Under qemu-user the RSS read is qemu's own process (the guest's memory plus the
# translator and its code cache), so the ARM figures are approximations; the peak RSS of
# `stratum-proxy --version` under the same runner is printed beside it as the baseline.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
MINERS=${MINERS:-8}
SECS=${SECS:-10}
WORK=$(mktemp -d /tmp/stratum-proxy-arch.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# arch -> how to run it, the strip tool, and the built binary
runner() {
    case $1 in
        x86_64) echo "" ;;
        arm64) echo "qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
        armv7) echo "qemu-arm -L /usr/arm-linux-gnueabihf" ;;
    esac
}
strip_tool() { case $1 in x86_64) echo strip ;; arm64) echo aarch64-linux-gnu-strip ;; armv7) echo arm-linux-gnueabihf-strip ;; esac; }
binary() {
    case $1 in
        x86_64) echo target/release/stratum-proxy ;;
        arm64) echo target/aarch64-unknown-linux-gnu/release/stratum-proxy ;;
        armv7) echo target/armv7-unknown-linux-gnueabihf/release/stratum-proxy ;;
    esac
}

# Waits up to $3 seconds for "<pattern>ADDR" in a log file and prints ADDR.
wait_addr() {
    local file=$1 pattern=$2 secs=${3:-20} addr
    for _ in $(seq $((secs * 10))); do
        addr=$(grep -o "$pattern[0-9.:]*" "$file" 2>/dev/null | head -1 | sed "s|^$pattern||") || true
        if [ -n "$addr" ]; then echo "$addr"; return 0; fi
        sleep 0.1
    done
    echo "arch_check: timed out waiting for '$pattern' in $file:" >&2
    cat "$file" >&2
    return 1
}

# GET /1/summary and print the value at a JSON path such as results.accepted.
summary() {
    curl -sf --max-time 5 "http://$1/1/summary" | python3 -c 'import json,sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[k]
print(v)' "$2"
}

# Polls `summary ADDR PATH` until it is at least MIN, for up to SECS seconds.
wait_summary() {
    local api=$1 path=$2 min=$3 secs=$4 v=0
    for _ in $(seq $((secs * 10))); do
        v=$(summary "$api" "$path" 2>/dev/null) || v=0
        if [ "${v%.*}" -ge "$min" ]; then echo "$v"; return 0; fi
        sleep 0.1
    done
    echo "arch_check: $path stayed at $v (wanted >= $min) after ${secs}s" >&2
    return 1
}

need_qemu=""
for arch in "$@"; do [ "$arch" != x86_64 ] && need_qemu=1; done
missing=()
[ -x /usr/bin/time ] || missing+=(time)
command -v curl >/dev/null || missing+=(curl)
if [ -n "$need_qemu" ] && ! { command -v qemu-aarch64 && command -v qemu-arm; } >/dev/null; then missing+=(qemu-user); fi
if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ $# -gt 0 ] || set -- arm64 armv7
for tool in target/release/testpool target/release/minersim; do
    [ -x "$tool" ] || { echo "arch_check: $tool missing; run make build" >&2; exit 2; }
done

printf '%-7s %13s %15s %19s %17s %8s\n' arch "stripped (B)" "idle RSS (KiB)" "--version RSS (KiB)" "accepted (proxy/pool)" seconds
failed=0
for arch in "$@"; do
    case $arch in x86_64 | arm64 | armv7) ;; *) echo "arch_check: unknown arch $arch" >&2; exit 2 ;; esac
    bin=$(binary "$arch")
    [ -x "$bin" ] || { echo "arch_check: $bin missing; run make ${arch/x86_64/build}" >&2; exit 2; }
    started=$EPOCHREALTIME
    dir="$WORK/$arch"
    mkdir -p "$dir"
    "$(strip_tool "$arch")" -o "$dir/stratum-proxy" "$bin"
    size=$(stat -c %s "$dir/stratum-proxy")
    # What the same runner costs for a process that only prints its version: under qemu
    # this is mostly the emulator, the part of the idle figure that a real ARM host
    # does not pay.
    # shellcheck disable=SC2046 # the runner is words
    /usr/bin/time -f %M -o "$dir/base.kib" $(runner "$arch") "$dir/stratum-proxy" --version >/dev/null
    base=$(tail -1 "$dir/base.kib")

    target/release/testpool --bind 127.0.0.1:0 --job-interval 5 --diff 1000 --stats-file "$dir/pool.json" >"$dir/pool.log" 2>&1 &
    pool_pid=$!
    pids+=("$pool_pid")
    pool=$(wait_addr "$dir/pool.log" "testpool listening on ")
    cat >"$dir/config.json" <<JSON
{"bind": ["127.0.0.1:0"], "pools": [{"url": "$pool", "user": "arch-check", "pass": "x"}],
 "http": {"enabled": true, "host": "127.0.0.1", "port": 0}, "print-time": 60}
JSON
    # shellcheck disable=SC2046 # the runner is words
    RUST_LOG=info $(runner "$arch") "$dir/stratum-proxy" -c "$dir/config.json" >"$dir/proxy.log" 2>&1 &
    proxy_pid=$!
    pids+=("$proxy_pid")
    proxy=$(wait_addr "$dir/proxy.log" "listening on ")
    api=$(wait_addr "$dir/proxy.log" "HTTP API on http://")
    # Idle: listening and answering the API, no miner yet (upstreams open with the first
    # miner), two seconds of uptime for the loop to settle.
    wait_summary "$api" uptime 2 20 >/dev/null
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$proxy_pid/status")

    target/release/minersim --url "$proxy" --miners "$MINERS" --share-interval 1 --duration "$SECS" --json >"$dir/miners.json" 2>"$dir/miners.log"
    accepted=$(wait_summary "$api" results.accepted "$MINERS" 10) || { failed=1; accepted=0; }
    rejected=$(summary "$api" results.rejected)
    invalid=$(summary "$api" results.invalid)
    pool_accepted=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accepted"])' "$dir/pool.json")
    kill "$proxy_pid" "$pool_pid" 2>/dev/null || true
    wait "$proxy_pid" "$pool_pid" 2>/dev/null || true
    if [ "$rejected" != 0 ] || [ "$invalid" != 0 ] || [ "$pool_accepted" -lt "$MINERS" ]; then
        echo "arch_check: $arch: proxy accepted $accepted rejected $rejected invalid $invalid; pool accepted $pool_accepted" >&2
        tail -20 "$dir/proxy.log" >&2
        failed=1
    fi
    secs=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
    printf '%-7s %13s %15s %19s %21s %8.1f\n' "$arch" "$size" "$rss" "$base" "$accepted/$pool_accepted" "$secs"
done
if [ "$failed" != 0 ]; then echo "arch_check: FAILED" >&2; exit 1; fi
echo "arch_check: shares accepted through every proxy ($*)"
