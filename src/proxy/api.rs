//! What the HTTP API answers: /1/summary, /1/workers, /1/miners in xmrig-proxy's shapes
//! (hashrates in kH/s, last share in ms), /1/history (the last day by the minute, H/s),
//! /metrics in Prometheus text format with base units (H/s), and the dashboard page at
//! `/`. Rendered on request from the loop's own structs; only the minute history is kept
//! for it. Who may ask for what is decided in `access.rs`.

use super::Proxy;
use super::access::{self, Access};
use super::accounts::{self, Answer};
use super::miner::MinerState;
use crate::GroupId;
use crate::config::{Mode, WorkersMode};
use crate::http::Request;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Instant;

/// The dashboard served at `GET /`: one self-contained page (source in `src/http/`).
const DASHBOARD: &str = include_str!("../http/dashboard.html");

/// A response: status, content type, body.
pub(super) type Reply = (u16, &'static str, Vec<u8>);

/// kH/s rounded down to two decimals, as xmrig-proxy reports.
fn khs(h: f64) -> f64 {
    (h / 10.0).floor() / 100.0
}

fn workers_mode_name(mode: WorkersMode) -> &'static str {
    match mode {
        WorkersMode::RigId => "rig_id",
        WorkersMode::User => "user",
        WorkersMode::Password => "password",
        WorkersMode::Agent => "agent",
        WorkersMode::Ip => "ip",
        WorkersMode::Disabled => "none",
    }
}

/// First number of a `/proc` line such as `MemTotal:  123 kB`.
fn proc_kb(text: &str, key: &str) -> u64 {
    text.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Resident set size of this process in bytes (0 where /proc is missing).
pub fn rss_bytes() -> u64 {
    proc_kb(&std::fs::read_to_string("/proc/self/status").unwrap_or_default(), "VmRSS:") * 1024
}

impl Proxy {
    /// Routes one request: access first (see `access.rs`; a refusal takes the shape of the
    /// API asked), then the accounts API (which may have to wait for the disk), then the
    /// monitoring endpoints.
    pub(super) fn route(&mut self, req: &Request, body: &[u8], now: Instant) -> Answer {
        let write = match access::decide(&self.cfg.http, &req.method, &req.path, req.authorization.as_deref()) {
            Access::Page => return Answer::Now((200, "text/html; charset=utf-8", self.dashboard())),
            Access::Denied(status) if accounts::is_accounts_path(&req.path) => return Answer::Now(accounts::denied(status)),
            Access::Denied(status) => return Answer::Now(error(status)),
            Access::Read => false,
            Access::Write => true,
        };
        if let Some(answer) = self.accounts_api(req, body, write, now) {
            return answer;
        }
        Answer::Now(self.api(req, write, now))
    }

    /// The monitoring endpoints (after the access checks); none of them writes.
    fn api(&self, req: &Request, write: bool, now: Instant) -> Reply {
        if req.method == "OPTIONS" {
            return (204, "", Vec::new());
        }
        if write {
            return error(405);
        }
        let json = |v: Value| (200, "application/json", serde_json::to_vec_pretty(&v).unwrap_or_default());
        match req.path.as_str() {
            "/1/summary" | "/2/summary" | "/api.json" => json(self.summary_json(now)),
            "/1/workers" | "/2/workers" => json(self.workers_json(now)),
            "/1/miners" | "/2/miners" => json(self.miners_json()),
            "/1/history" => json(self.history_json(now)),
            "/metrics" => (200, "text/plain; version=0.0.4; charset=utf-8", self.metrics(now).into_bytes()),
            _ => error(404),
        }
    }

    /// Logged-in miners per group, in one pass.
    pub(super) fn miners_by_group(&self) -> HashMap<GroupId, usize> {
        let mut counts = HashMap::new();
        for (_, m) in self.miners.iter().filter(|(_, m)| matches!(m.state, MinerState::WaitReady { .. } | MinerState::Ready)) {
            *counts.entry(m.group).or_insert(0) += 1;
        }
        counts
    }

    /// The (group, pool index) pairs some upstream is logged in to, in one pass.
    fn pools_up(&self) -> HashSet<(GroupId, usize)> {
        self.splitter
            .iter()
            .filter(|(_, u)| u.link.session.is_active())
            .filter_map(|(id, _)| self.pool_of(id).map(|(g, i, _)| (g, i)))
            .collect()
    }

    /// Per group with pools: miners, upstreams, hashrate, and per pool its state, weight,
    /// asked and measured parts.
    fn groups_json(&self, clock: u32) -> Value {
        let (miners, up) = (self.miners_by_group(), self.pools_up());
        let mut out = serde_json::Map::new();
        for (id, g) in self.groups.with_pools() {
            let (asked, measured) = (g.asked_parts(), g.measured_parts());
            let pools: Vec<Value> = g
                .pools
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    json!({
                        "url": p.url,
                        "up": up.contains(&(id, i)),
                        "weight": p.weight,
                        "asked": asked[i],
                        "measured": (measured[i] * 1000.0).round() / 1000.0,
                    })
                })
                .collect();
            out.insert(
                g.name.to_string(),
                json!({
                    "miners": miners.get(&id).copied().unwrap_or(0),
                    "upstreams": self.splitter.counts(Some(id)).total(),
                    "hashrate": g.hashrate.rates(clock).map(khs),
                    "pools": pools,
                }),
            );
        }
        Value::Object(out)
    }

    /// The page, marked so it asks for the token before its first request when one is set.
    fn dashboard(&self) -> Vec<u8> {
        match self.cfg.http.access_token {
            Some(_) => DASHBOARD.replacen(r#"<body data-auth="open">"#, r#"<body data-auth="token">"#, 1).into_bytes(),
            None => DASHBOARD.as_bytes().to_vec(),
        }
    }

    /// The last 24 hours, one row a minute, oldest first; the last row is the minute in
    /// progress. Times are Unix ms, hashrates H/s.
    fn history_json(&self, now: Instant) -> Value {
        let clock = self.clock(now);
        let unix_ms = crate::logs::unix_ms();
        let h = &self.stats.history;
        let current = h.current(clock, self.stats.totals());
        let rows: Vec<Value> = h
            .iter()
            .chain(current.as_ref())
            .map(|m| {
                let at = unix_ms.saturating_sub(u64::from(clock.saturating_sub(m.at)) * 1000);
                json!([at, m.hashrate, m.miners, m.accepted, m.rejected])
            })
            .collect();
        json!({
            "interval": 60,
            "format": ["time", "hashrate", "miners", "accepted", "rejected"],
            "partial": current.is_some(),
            "history": rows,
        })
    }

    fn summary_json(&self, now: Instant) -> Value {
        let clock = self.clock(now);
        let s = &self.stats;
        let c = self.splitter.counts(None);
        let total = c.total();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let load: Vec<f64> = std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .filter_map(|v| v.parse().ok())
            .collect();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
        let algo = self.splitter.iter().find_map(|(_, u)| u.mapper.job().and_then(|j| j.algo.clone())).unwrap_or_else(|| "invalid".into());
        let mut features = vec!["api", "http"];
        if self.cfg.binds.iter().any(|b| b.tls) {
            features.push("tls");
        }
        json!({
            "id": host,
            "worker_id": host,
            "uptime": clock,
            "restricted": self.cfg.http.restricted,
            "resources": {
                "memory": {
                    "free": proc_kb(&meminfo, "MemAvailable:") * 1024,
                    "total": proc_kb(&meminfo, "MemTotal:") * 1024,
                    "resident_set_memory": rss_bytes(),
                },
                "load_average": load,
                "hardware_concurrency": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            },
            "features": features,
            "version": env!("CARGO_PKG_VERSION"),
            "kind": "proxy",
            "algo": algo,
            "mode": if self.cfg.mode == Mode::NiceHash { "nicehash" } else { "simple" },
            "ua": format!("{} ({} {})", crate::AGENT, std::env::consts::OS, std::env::consts::ARCH),
            "donate_level": 0,
            "donated": 0.0,
            "hashrate": {
                "total": s.windows.rates(clock).map(khs),
                "algos": self.algo_hashrates(clock).into_iter().map(|(a, r)| (a, json!(r.map(khs)))).collect::<serde_json::Map<_, _>>(),
            },
            "miners": {"now": s.miners, "max": s.max_miners},
            "workers": self.workers.len(),
            "upstreams": {
                "active": c.active,
                "sleep": c.sleep,
                "error": c.error,
                "total": total,
                "ratio": if c.active == 0 { 0.0 } else { (s.miners as f64 / c.active as f64 * 100.0).round() / 100.0 },
            },
            "results": {
                "accepted": s.accepted,
                "rejected": s.rejected,
                "invalid": s.invalid,
                "expired": s.expired,
                "avg_time": s.avg_time(clock),
                "latency": s.latency_ms,
                "hashes_total": s.hashes(),
                "hashes_donate": 0,
                "best": s.best,
            },
            "groups": self.groups_json(clock),
            "transparent": self.jump_stats().iter().map(|j| json!({
                "bind": j.addr.to_string(),
                "target": j.target,
                "connections": {"now": j.active, "total": j.total, "failed": j.failed},
                "bytes": {"up": j.bytes_up, "down": j.bytes_down},
                "max_queued": j.max_queued,
                "target_fingerprint": j.target_fingerprint,
            })).collect::<Vec<_>>(),
        })
    }

    fn workers_json(&self, now: Instant) -> Value {
        let clock = self.clock(now);
        let rows: Vec<Value> = self
            .workers
            .iter_keyed()
            .map(|(key, w)| {
                let r = w.windows.rates(clock);
                json!([
                    w.name,
                    w.last_ip().to_string(),
                    w.connections,
                    w.accepted,
                    w.rejected,
                    w.invalid,
                    w.windows.total(),
                    w.last_share_ms,
                    khs(r[0]),
                    khs(r[1]),
                    khs(r[2]),
                    khs(r[3]),
                    khs(r[4]),
                    Some(self.workers.pool(w)).filter(|p| !p.is_empty()),
                    worker_flags(self.workers.flags(key))
                ])
            })
            .collect();
        json!({
            "hashrate": {"total": self.stats.windows.rates(clock).map(khs)},
            "mode": workers_mode_name(self.workers.mode()),
            "workers": rows,
        })
    }

    fn miners_json(&self) -> Value {
        let rows: Vec<Value> = self
            .miners
            .iter()
            .map(|(_, m)| {
                let id = m.identity.as_deref();
                json!([
                    m.seq,
                    m.peer.ip().to_string(),
                    m.conn.tx,
                    m.conn.rx,
                    m.state.code(),
                    match m.dialect() {
                        Some(crate::stratum::algo::Dialect::StratumV1) => json!(m.diff()),
                        _ => json!(m.diff() as u64),
                    },
                    m.user(),
                    "********",
                    id.and_then(|i| i.rig_id.as_deref()),
                    id.map(|i| &*i.agent).unwrap_or(""),
                    m.route.and_then(|r| self.pool_of(r.upstream())).map(|(_, _, p)| p.url.as_str()),
                    self.groups.get(m.group).map(|g| &*g.name),
                    m.route.and_then(|r| self.alone_reason(r.upstream())).map(alone_name)
                ])
            })
            .collect();
        json!({
            "format": ["id", "ip", "tx", "rx", "state", "diff", "user", "password", "rig_id", "agent", "pool", "group", "alone"],
            "miners": rows,
        })
    }

    /// Prometheus text exposition (format 0.0.4).
    fn metrics(&self, now: Instant) -> String {
        let clock = self.clock(now);
        let s = &self.stats;
        let c = self.splitter.counts(None);
        let mut out = String::with_capacity(4096 + self.workers.len() * 1024);
        let proxy = self.local_addrs().first().map(|a| a.to_string()).unwrap_or_default();
        let algos = self.pool_algos();
        let hash_of = |url: &str| algos.get(url).map(String::as_str).unwrap_or("unknown");

        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let one = |v: f64| vec![(String::new(), v)];
        family("proxy_uptime_seconds", "gauge", "Seconds since the proxy started.", &one(f64::from(clock)));
        family("proxy_miners", "gauge", "Miners connected now.", &one(s.miners as f64));
        family("proxy_miners_max", "gauge", "Most miners connected at once.", &one(s.max_miners as f64));
        family("proxy_connections_total", "counter", "Miner connections accepted.", &one(s.connections as f64));
        family("proxy_shares_accepted_total", "counter", "Shares accepted.", &one(s.accepted as f64));
        family("proxy_shares_rejected_total", "counter", "Shares rejected by the pool or not delivered.", &one(s.rejected as f64));
        family("proxy_shares_invalid_total", "counter", "Shares refused by the proxy's checks.", &one(s.invalid as f64));
        family("proxy_shares_expired_total", "counter", "Accepted shares for the previous job.", &one(s.expired as f64));
        family("proxy_hashes_total", "counter", "Sum of accepted share difficulties.", &one(s.hashes() as f64));
        let windows = ["60s", "600s", "3600s", "43200s", "86400s", "all"];
        let rates = s.windows.rates(clock);
        let hr: Vec<(String, f64)> = windows.iter().zip(rates).map(|(w, r)| (format!("{{window=\"{w}\"}}"), r)).collect();
        family("proxy_hashrate", "gauge", "Hashrate from accepted shares in H/s (every algorithm added up).", &hr);
        let mut by_algo = Vec::new();
        for (algo, rates) in self.algo_hashrates(clock) {
            for (w, r) in windows.iter().zip(rates) {
                by_algo.push((labels(&[("algo", &algo), ("window", w)]), r));
            }
        }
        family("proxy_algo_hashrate", "gauge", "Hashrate from accepted shares in H/s, per algorithm.", &by_algo);
        let ups = [("active", c.active), ("sleep", c.sleep), ("error", c.error)];
        let ups: Vec<(String, f64)> = ups.iter().map(|(k, v)| (format!("{{state=\"{k}\"}}"), *v as f64)).collect();
        family("proxy_upstreams", "gauge", "Upstream pool connections by state.", &ups);
        family("proxy_workers", "gauge", "Worker records.", &one(self.workers.len() as f64));
        family("proxy_pool_latency_milliseconds", "gauge", "Median pool share round trip.", &one(f64::from(s.latency_ms)));
        family(
            "proxy_http_refused_total",
            "counter",
            "API connections refused because every HTTP client slot was busy.",
            &one(self.http_refusals.total() as f64),
        );

        // One series per pool address, whatever group names it.
        let (by_group, up_set) = (self.miners_by_group(), self.pools_up());
        let mut pool_up: Vec<(String, f64)> = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (gid, g) in self.groups.with_pools() {
            for (i, p) in g.pools.iter().enumerate() {
                let up = up_set.contains(&(gid, i));
                match seen.get(p.url.as_str()) {
                    Some(&k) if up => pool_up[k].1 = 1.0,
                    Some(_) => {}
                    None => {
                        seen.insert(&p.url, pool_up.len());
                        pool_up
                            .push((labels(&[("proxy", &proxy), ("hash", hash_of(&p.url)), ("pool", &p.url)]), if up { 1.0 } else { 0.0 }));
                    }
                }
            }
        }
        family("proxy_pool_up", "gauge", "1 when the proxy holds a logged-in connection to the pool.", &pool_up);
        // The same series, valued with each pool's divider: hashes per difficulty-1 share.
        let divider_of = |url: &str| crate::stratum::algo::divider(hash_of(url));
        let mut dividers: Vec<(String, f64)> = seen.iter().map(|(url, k)| (pool_up[*k].0.clone(), divider_of(url))).collect();
        dividers.sort_by(|a, b| a.0.cmp(&b.0));
        family("proxy_pool_divider", "gauge", "Hashes a difficulty-1 share of the pool's algorithm stands for.", &dividers);

        let (mut g_miners, mut g_rate, mut g_ratio) = (Vec::new(), Vec::new(), Vec::new());
        for (gid, g) in self.groups.with_pools() {
            let name = labels(&[("group", &g.name)]);
            g_miners.push((name, by_group.get(&gid).copied().unwrap_or(0) as f64));
            for (w, r) in windows.iter().zip(g.hashrate.rates(clock)) {
                g_rate.push((labels(&[("group", &g.name), ("window", w)]), r));
            }
            for (p, part) in g.pools.iter().zip(g.measured_parts()) {
                g_ratio.push((labels(&[("group", &g.name), ("pool", &p.url)]), part));
            }
        }
        family("proxy_group_miners", "gauge", "Miners logged in to the group's ports.", &g_miners);
        family("proxy_group_hashrate", "gauge", "Group hashrate from accepted shares in H/s.", &g_rate);
        family("proxy_pool_share_ratio", "gauge", "Pool's part of its group's accepted difficulty over 10 minutes.", &g_ratio);

        let mut up_miners = Vec::new();
        let mut up_up = Vec::new();
        for (id, u) in self.splitter.iter() {
            let url = self.pool_of(id).map(|(_, _, p)| p.url.as_str()).unwrap_or("");
            let l = labels(&[("upstream", &id.0.to_string()), ("pool", url)]);
            up_miners.push((l.clone(), u.mapper.active() as f64));
            up_up.push((l, if u.link.session.is_active() { 1.0 } else { 0.0 }));
        }
        family("proxy_upstream_miners", "gauge", "Miners on each upstream.", &up_miners);
        let mut alone = [0usize; 2];
        for (_, u) in self.splitter.iter() {
            match u.alone {
                Some(crate::splitter::Alone::NoNiceHash) => alone[0] += u.mapper.active(),
                Some(crate::splitter::Alone::Quarantine) => alone[1] += u.mapper.active(),
                None => {}
            }
        }
        let alone: Vec<(String, f64)> =
            ["no-nicehash", "quarantine"].iter().zip(alone).map(|(r, n)| (labels(&[("reason", r)]), n as f64)).collect();
        family("proxy_rigs_alone", "gauge", "Rigs on a pool connection of their own, by reason.", &alone);
        family("proxy_rigs_refused_total", "counter", "Rigs closed and refused by quarantine.", &one(self.rigs_refused as f64));
        family("proxy_upstream_up", "gauge", "1 when the upstream is logged in to its pool.", &up_up);

        let jumps = self.jump_stats();
        let port = |j: &crate::proxy::JumpPortStats| labels(&[("bind", &j.addr.to_string()), ("target", &j.target)]);
        let series = |f: &dyn Fn(&crate::proxy::JumpPortStats) -> f64| jumps.iter().map(|j| (port(j), f(j))).collect::<Vec<_>>();
        family("proxy_jump_connections", "gauge", "Transparent pairs open now.", &series(&|j| j.active as f64));
        family("proxy_jump_connections_total", "counter", "Transparent pairs accepted.", &series(&|j| j.total as f64));
        family(
            "proxy_jump_failed_total",
            "counter",
            "Transparent clients whose target could not be reached.",
            &series(&|j| j.failed as f64),
        );
        family("proxy_jump_bytes_up_total", "counter", "Bytes forwarded client to target.", &series(&|j| j.bytes_up as f64));
        family("proxy_jump_bytes_down_total", "counter", "Bytes forwarded target to client.", &series(&|j| j.bytes_down as f64));

        // Per worker (seed metric names). Difficulty: the highest among its connected miners.
        let mut diff = std::collections::HashMap::new();
        for (_, m) in &self.miners {
            if let Some(w) = m.worker() {
                let d = diff.entry(w).or_insert(0f64);
                *d = (*d).max(m.diff());
            }
        }
        let mut series: [Vec<(String, f64)>; 7] = Default::default();
        for (key, w) in self.workers.iter_keyed() {
            let (user, pool) = (self.workers.user(w), self.workers.pool(w));
            let l = labels(&[("proxy", &proxy), ("worker", &w.name), ("user", user), ("hash", hash_of(pool)), ("pool", pool)]);
            let up = labels(&[("proxy", &proxy), ("worker", &w.name), ("user", user)]);
            series[0].push((up, if w.connections > 0 { 1.0 } else { 0.0 }));
            series[1].push((l.clone(), w.sent as f64));
            // Share values are counted in hashes; difficulty-1 units divide by the algorithm's.
            let divider = divider_of(pool);
            series[2].push((l.clone(), w.sent_diff as f64 / divider));
            series[3].push((l.clone(), w.accepted as f64));
            series[4].push((l.clone(), w.windows.total() as f64 / divider));
            series[5].push((l.clone(), w.windows.speed(clock)));
            series[6].push((l, diff.get(&key).copied().unwrap_or(0.0)));
        }
        let names = [
            ("proxy_worker_up", "gauge", "1 while the worker has a connection."),
            ("proxy_worker_sended", "counter", "Shares the worker submitted."),
            ("proxy_worker_one_sended", "counter", "Submitted shares in difficulty-1 units."),
            ("proxy_worker_accepted", "counter", "Shares of the worker accepted."),
            ("proxy_worker_one_accepted", "counter", "Accepted shares in difficulty-1 units."),
            ("proxy_worker_speed", "gauge", "Worker hashrate in H/s over the last 5 whole minutes, measured each minute."),
            ("proxy_worker_difficulty", "gauge", "Difficulty of the worker's current job."),
        ];
        for ((name, kind, help), samples) in names.iter().zip(series.iter()) {
            family(name, kind, help, samples);
        }
        out
    }

    /// The algorithm of each pool miners mine now, from its jobs (else its config).
    /// Hashrate windows (H/s) per algorithm, summed from the pools' own windows: hashes of
    /// different algorithms are never added together. Sorted by algorithm name.
    pub(super) fn algo_hashrates(&self, clock: u32) -> Vec<(String, [f64; 6])> {
        let algos = self.pool_algos();
        let mut by: Vec<(String, [f64; 6])> = Vec::new();
        for (_, g) in self.groups.with_pools() {
            for (p, m) in g.pools.iter().zip(&g.meters) {
                let algo = algos.get(&p.url).map(String::as_str).unwrap_or("unknown");
                let i = match by.iter().position(|(a, _)| a == algo) {
                    Some(i) => i,
                    None => {
                        by.push((algo.to_string(), [0.0; 6]));
                        by.len() - 1
                    }
                };
                for (sum, r) in by[i].1.iter_mut().zip(m.rates(clock)) {
                    *sum += r;
                }
            }
        }
        by.sort_by(|a, b| a.0.cmp(&b.0));
        by
    }

    fn pool_algos(&self) -> HashMap<String, String> {
        let mut algos = HashMap::new();
        for (_, g) in self.groups.with_pools() {
            for p in &g.pools {
                if let Some(a) = &p.algo {
                    algos.insert(p.url.clone(), a.clone());
                }
            }
        }
        for (id, u) in self.splitter.iter().filter(|(_, u)| u.link.session.is_active()) {
            if let (Some((_, _, p)), Some(algo)) = (self.pool_of(id), u.mapper.job().and_then(|j| j.algo.as_ref())) {
                algos.insert(p.url.clone(), algo.clone());
            }
        }
        algos
    }
}

/// Why a rig mines on a connection of its own, as the API says it.
fn alone_name(why: crate::splitter::Alone) -> &'static str {
    match why {
        crate::splitter::Alone::NoNiceHash => "no-nicehash",
        crate::splitter::Alone::Quarantine => "quarantine",
    }
}

/// A worker's flags as words ("" when none).
fn worker_flags(flags: u8) -> String {
    use crate::stats::workers::{FLAG_INVALID_SHARES, FLAG_NO_NICEHASH, FLAG_QUARANTINED};
    let mut words = Vec::new();
    if flags & FLAG_NO_NICEHASH != 0 {
        words.push("no-nicehash");
    }
    if flags & FLAG_QUARANTINED != 0 {
        words.push("quarantined");
    }
    if flags & FLAG_INVALID_SHARES != 0 {
        words.push("invalid-shares");
    }
    words.join(",")
}

fn error(status: u16) -> Reply {
    (status, "application/json", crate::http::error_body(status).into_bytes())
}

/// `{a="x",b="y"}` with values escaped per the exposition format.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for ch in v.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("worker", "a\"b\\c\nd"), ("pool", "p:1")]), r#"{worker="a\"b\\c\nd",pool="p:1"}"#);
    }

    #[test]
    fn hashrates_are_reported_in_khs_rounded_down() {
        assert_eq!(khs(980.0), 0.98);
        assert_eq!(khs(2109.9), 2.1);
        assert_eq!(khs(0.0), 0.0);
    }
}
