#!/usr/bin/env python3
"""make bench: N simulated NiceHash miners -> stratum-proxy -> testpool, all on loopback.

For each size it reports: time to log in N miners, proxy RSS per miner above idle, job
fan-out latency (pool send -> miner received; p50/p99 over every miner and job, and the
last miner of each job), submit round trip, proxy CPU ms per 1,000 accepted shares,
upstreams, duplicates seen by the pool and missed jobs. Everything stays on 127.0.0.x and
every run is bounded in time.

Worker records are on, as users run it (each simulated rig has its own rig id, so one
record per rig); `--workers off` measures without them.

    python3 scripts/bench.py --sizes 1000,10000,19000 --duration 40
    python3 scripts/bench.py --sizes 10000 --duration 40 --workers off
"""
import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN = os.path.abspath(os.environ.get("BIN", "target/release"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def wait_line(proc, pattern, timeout=15):
    """Reads proc's stdout until a line matches; returns the match. Keeps draining after."""
    deadline = time.time() + timeout
    stream = proc.stdout
    rx = re.compile(pattern)
    while time.time() < deadline:
        line = stream.readline()
        if not line:
            break
        m = rx.search(line)
        if m:
            threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()
            return m
    raise RuntimeError(f"timed out waiting for {pattern!r}")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def summary(api):
    with urllib.request.urlopen(f"http://{api}/1/summary", timeout=5) as r:
        return json.load(r)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_proxy(kind, work, pool_addr, workers):
    """Starts our proxy or xmrig-proxy (same mode and settings); returns (proc, stratum, api).
    With `workers` the key is left out, so each proxy runs its default (a record per rig id)."""
    port, api_port = free_port(), free_port()
    cfg = {"mode": "nicehash", "bind": [f"127.0.0.1:{port}"], "pools": [{"url": pool_addr, "user": "bench", "pass": "x"}],
           "http": {"enabled": True, "host": "127.0.0.1", "port": api_port, "restricted": True}, "print-time": 3600,
           "access-log-file": None, "verbose": False}
    if not workers:
        cfg["workers"] = False
    if kind == "ours":
        cmd, env = [f"{BIN}/stratum-proxy", "-c", f"{work}/config.json"], {**os.environ, "RUST_LOG": "warn"}
    else:
        cfg.update({"donate-level": 0, "colors": False, "background": False, "syslog": False})
        cmd, env = [os.path.abspath(kind), "-c", f"{work}/config.json"], os.environ
    with open(f"{work}/config.json", "w") as f:
        json.dump(cfg, f)
    # In its own directory: a TLS-enabled xmrig-proxy writes cert.pem/cert_key.pem to its cwd.
    proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"127.0.0.1:{api_port}"
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            summary(api)
            return proc, f"127.0.0.1:{port}", api
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{cmd[0]} did not start")


def run(n, duration, share_interval, job_interval, sources, kind, workers):
    work = tempfile.mkdtemp(prefix="sp-bench-")
    pool = subprocess.Popen([f"{BIN}/testpool", "--bind", "127.0.0.1:0", "--job-interval", str(job_interval), "--diff", "1000",
                             "--stats-file", f"{work}/pool.json", "--duration", str(duration + 60)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs = [pool]
    try:
        pool_addr = wait_line(pool, r"testpool listening on (\S+)").group(1)
        proxy, proxy_addr, api = start_proxy(kind, work, pool_addr, workers)
        procs.append(proxy)
        time.sleep(0.5)
        rss_idle = rss_bytes(proxy.pid)
        t0 = time.time()
        sim = subprocess.Popen([f"{BIN}/minersim", "--url", proxy_addr, "--miners", str(n), "--share-interval", str(share_interval),
                                "--duration", str(duration), "--sources", sources, "--ramp", "1000", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(sim)
        # Steady state: every miner logged in.
        while time.time() - t0 < duration - 5:
            if summary(api)["miners"]["now"] >= n:
                break
            time.sleep(0.2)
        login_wall = time.time() - t0
        time.sleep(2)
        s1, c1, t1 = summary(api), cpu_ticks(proxy.pid), time.time()
        while time.time() - t0 < duration - 2:
            time.sleep(0.5)
        s2, c2, t2 = summary(api), cpu_ticks(proxy.pid), time.time()
        rss_loaded = rss_bytes(proxy.pid)
        out, _ = sim.communicate(timeout=duration + 60)
        sim_json = json.loads(out.strip().splitlines()[-1])
        time.sleep(1.2)
        with open(f"{work}/pool.json") as f:
            pool_stats = json.load(f)
        shares = s2["results"]["accepted"] - s1["results"]["accepted"]
        cpu_ms = (c2 - c1) * 1000 / CLK_TCK
        return {
            "miners": n,
            "workers": s2.get("workers"),
            "logged_in": sim_json["logged_in"],
            "login_time_ms": sim_json["login_time_ms"],
            "rss_idle_bytes": rss_idle,
            "rss_loaded_bytes": rss_loaded,
            "rss_per_miner_bytes": round((rss_loaded - rss_idle) / n),
            "cpu_ms": round(cpu_ms),
            "window_s": round(t2 - t1, 1),
            "shares_in_window": shares,
            "cpu_ms_per_1k_shares": round(cpu_ms * 1000 / shares, 1) if shares else None,
            "fanout_us": sim_json["job_latency_us"],
            "last_miner_us": sim_json.get("job_last_miner_us"),
            "submit_rtt_us": sim_json["submit_rtt_us"],
            "upstreams": s2["upstreams"]["total"],
            "accepted": sim_json["accepted"],
            "rejected": sim_json["rejected"],
            "errors": sim_json["errors"],
            "pool_duplicates": pool_stats.get("duplicate"),
            "pool_unknown_job": pool_stats.get("unknown_job"),
            "pool_low_diff": pool_stats.get("low_diff"),
            "missed_jobs": sim_json["missed_jobs"],
            "disconnects": sim_json["disconnects"],
            "login_wall_s": round(login_wall, 1),
        }
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,19000")
    ap.add_argument("--duration", type=int, default=40)
    ap.add_argument("--share-interval", type=float, default=2.0)
    ap.add_argument("--job-interval", type=float, default=5.0)
    ap.add_argument("--sources", default="127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4")
    ap.add_argument("--out", default="bench-results.json")
    ap.add_argument("--proxy", default="ours", help="'ours', or the path of an xmrig-proxy binary to measure the same way")
    ap.add_argument("--workers", choices=["on", "off"], default="on",
                    help="worker records: on (the default config, one record per rig) or off")
    args = ap.parse_args()
    limit = raise_nofile()
    print(f"open-file limit {limit}; {os.cpu_count()} cores; {os.uname().machine}; workers {args.workers}", file=sys.stderr)
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        if n + 100 > limit:
            print(f"skipping {n}: needs more than the open-file limit {limit}", file=sys.stderr)
            continue
        r = run(n, args.duration, args.share_interval, args.job_interval, args.sources, args.proxy, args.workers == "on")
        r["proxy"] = args.proxy
        results.append(r)
        print(json.dumps(r), flush=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nworkers {args.workers}")
    print("\n| miners | login ms | RSS/miner B | CPU ms/1k shares | fan-out p50/p99 ms | last miner p99 ms | submit RTT p50/p99 ms | upstreams | pool dups | missed jobs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        f, l, s = r["fanout_us"], r["last_miner_us"] or {}, r["submit_rtt_us"]
        print(f"| {r['miners']} | {r['login_time_ms']} | {r['rss_per_miner_bytes']} | {r['cpu_ms_per_1k_shares']} | "
              f"{f['p50']/1000:.1f}/{f['p99']/1000:.1f} | {l.get('p99', 0)/1000:.1f} | {s['p50']/1000:.1f}/{s['p99']/1000:.1f} | "
              f"{r['upstreams']} | {r['pool_duplicates']} | {r['missed_jobs']} |")
    bad = [r for r in results if r["pool_duplicates"] or r["missed_jobs"] or r["logged_in"] != r["miners"]]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
