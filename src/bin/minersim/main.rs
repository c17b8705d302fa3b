//! minersim: simulates many CryptoNote stratum miners (xmrig-like) over one mio event loop.
//!
//! Opens `--miners` connections (optionally bound round-robin to `--sources` addresses), logs in,
//! submits fabricated shares that meet the job difficulty and measures job fan-out latency,
//! submit round trips, accepts/rejects, disconnects and missed jobs.
//!
//! `--protocol v1` makes them Bitcoin-family stratum v1 miners that really hash (sha256d or
//! scrypt) until a header meets the difficulty; see `v1.rs`.
//!
//! Missed jobs: a job sequence number is parsed from job ids of the form "SEQ-MICROS". At report time
//! the newest sequence first seen by any miner more than 2 s ago is taken; every miner that is still
//! logged in and whose last received sequence is below it counts as one missed-job miner.

#[path = "../common/mod.rs"]
mod common;
mod v1;

use common::{Stop, hex, now_micros, unhex};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde_json::{Value, json};
use socket2::{Domain, Socket, Type};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

const MAX_LINE: usize = 1 << 20;
const MAX_ERROR_KINDS: usize = 32;
const LOGIN_ID: u64 = 1;

/// Difficulty of a stratum target: 8 hex chars (LE u32) or 16 hex chars (LE u64).
fn target_difficulty(target: &str) -> Option<u64> {
    let b = unhex(target)?;
    match b.len() {
        4 => {
            let t = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
            Some(0xFFFF_FFFFu64.checked_div(t).unwrap_or(u64::MAX))
        }
        8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b);
            let t = u64::from_le_bytes(a);
            Some(u64::MAX.checked_div(t).unwrap_or(u64::MAX))
        }
        _ => None,
    }
}

/// Log-linear histogram (8 sub-buckets per power of two), bounded size, values in microseconds.
struct Hist {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

impl Hist {
    fn new() -> Self {
        Hist { buckets: vec![0; 16 + 60 * 8], count: 0, max: 0 }
    }
    fn index(v: u64) -> usize {
        if v < 16 {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros() as usize;
        let sub = ((v >> (exp - 3)) & 7) as usize;
        16 + (exp - 4) * 8 + sub
    }
    fn lower_bound(i: usize) -> u64 {
        if i < 16 {
            return i as u64;
        }
        let exp = (i - 16) / 8 + 4;
        let sub = ((i - 16) % 8) as u64;
        (8 + sub) << (exp - 3)
    }
    fn add(&mut self, v: u64) {
        let i = Self::index(v).min(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.count += 1;
        self.max = self.max.max(v);
    }
    fn pct(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let want = ((self.count as f64) * p).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            acc += n;
            if acc >= want {
                return Self::lower_bound(i).min(self.max);
            }
        }
        self.max
    }
}

struct Config {
    url: String,
    miners: usize,
    share_interval: f64,
    duration: f64,
    sources: Vec<IpAddr>,
    user: String,
    pass: String,
    ramp: usize,
    report: f64,
    json: bool,
    agent: String,
    /// Stratum v1 instead of CryptoNote.
    v1: bool,
    algo: common::v1::Algo,
    /// CryptoNote: the algorithms a login offers.
    algos: Vec<String>,
    version_rolling: bool,
    wrong_extranonce: bool,
}

fn parse_args() -> Config {
    let args: Vec<String> = std::env::args().collect();
    let mut o = getopts::Options::new();
    o.optopt("", "url", "pool/proxy address HOST:PORT (default 127.0.0.1:3333)", "ADDR");
    o.optopt("", "miners", "number of miners (default 1)", "N");
    o.optopt("", "share-interval", "seconds between shares per miner, 0 = none (default 0)", "SECS");
    o.optopt("", "duration", "run time in seconds (default 10, 0 = until SIGINT)", "SECS");
    o.optopt("", "sources", "comma-separated source IPs to bind round-robin", "IPS");
    o.optopt("", "user", "login (default minersim)", "W");
    o.optopt("", "pass", "password (default x)", "P");
    o.optopt("", "ramp", "connections opened per 10 ms (default 500)", "N");
    o.optopt("", "report", "print a status line every SECS (0 = never)", "SECS");
    o.optflag("", "json", "print the final summary as one JSON object");
    o.optopt("", "agent", "user agent (default minersim/0.1)", "STR");
    o.optopt("", "protocol", "cryptonote (default) or v1 (hashing Bitcoin-family miners)", "NAME");
    o.optopt(
        "",
        "algo",
        "v1: sha256d (default) or scrypt; cryptonote: the algorithms the login lists, comma-separated (default rx/0,cn/r)",
        "ALGO",
    );
    o.optflag("", "version-rolling", "v1: ask for version rolling with mining.configure");
    o.optflag("", "wrong-extranonce", "v1: hash with a corrupted extranonce1 (every share should be rejected)");
    o.optflag("h", "help", "show help");
    let m = match o.parse(&args[1..]) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("minersim: {e}\n{}", o.usage("Usage: minersim [options]"));
            std::process::exit(2);
        }
    };
    if m.opt_present("h") {
        println!("{}", o.usage("Usage: minersim [options]"));
        std::process::exit(0);
    }
    fn num<T: std::str::FromStr>(m: &getopts::Matches, name: &str, def: T) -> T {
        match m.opt_str(name) {
            None => def,
            Some(s) => s.parse().unwrap_or_else(|_| {
                eprintln!("minersim: bad value for --{name}: {s}");
                std::process::exit(2);
            }),
        }
    }
    let mut sources = Vec::new();
    for s in m.opt_str("sources").unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match s.parse() {
            Ok(ip) => sources.push(ip),
            Err(_) => {
                eprintln!("minersim: bad source address {s}");
                std::process::exit(2);
            }
        }
    }
    let v1 = match m.opt_str("protocol").as_deref() {
        None | Some("cryptonote") => false,
        Some("v1") => true,
        Some(other) => die_(format!("unknown --protocol {other} (cryptonote or v1)")),
    };
    Config {
        url: m.opt_str("url").unwrap_or_else(|| "127.0.0.1:3333".into()),
        miners: num(&m, "miners", 1usize),
        share_interval: num(&m, "share-interval", 0.0f64),
        duration: num(&m, "duration", 10.0f64),
        sources,
        user: m.opt_str("user").unwrap_or_else(|| "minersim".into()),
        pass: m.opt_str("pass").unwrap_or_else(|| "x".into()),
        ramp: num(&m, "ramp", 500usize).max(1),
        report: num(&m, "report", 0.0f64),
        json: m.opt_present("json"),
        agent: m.opt_str("agent").unwrap_or_else(|| "minersim/0.1".into()),
        v1,
        algo: match m.opt_str("algo").filter(|_| v1) {
            None => common::v1::Algo::Sha256d,
            Some(a) => common::v1::Algo::parse(&a).unwrap_or_else(|| die_(format!("--algo {a}: sha256d or scrypt"))),
        },
        algos: match m.opt_str("algo").filter(|_| !v1) {
            None => vec!["rx/0".into(), "cn/r".into()],
            Some(a) => {
                let list: Vec<String> = a.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect();
                if list.is_empty() {
                    die_(format!("--algo {a:?}: name at least one algorithm"));
                }
                list
            }
        },
        version_rolling: m.opt_present("version-rolling"),
        wrong_extranonce: m.opt_present("wrong-extranonce"),
    }
}

#[derive(PartialEq, Default)]
enum State {
    #[default]
    Connecting,
    LoginSent,
    Active,
    Dead,
}

struct MinerJob {
    id: String,
    blob: Vec<u8>,
    diff: u64,
}

#[derive(Default)]
struct Miner {
    stream: Option<TcpStream>,
    state: State,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    session: String,
    nicehash: bool,
    job: Option<MinerJob>,
    nonce: u32,
    next_id: u64,
    pending: VecDeque<(u64, Instant)>,
    last_seq: u64,
    v1: v1::V1Miner,
}

#[derive(Default)]
struct Stats {
    connected: u64,
    connect_failed: u64,
    logged_in: u64,
    login_failed: u64,
    disconnects: u64,
    jobs: u64,
    submitted: u64,
    accepted: u64,
    rejected: u64,
    errors: BTreeMap<String, u64>,
    login_done: Option<Duration>,
    hashes: u64,
    extranonce_changes: u64,
    reconnects: u64,
}

struct Sim {
    cfg: Config,
    miners: Vec<Miner>,
    st: Stats,
    job_lat: Hist,
    /// Per job sequence: the latency of the last miner to receive it (bounded to 256 jobs).
    job_last: BTreeMap<u64, u64>,
    rtt: Hist,
    seq_seen: VecDeque<(u64, Instant)>,
    shares: BinaryHeap<Reverse<(Instant, usize)>>,
    rng: u64,
    start: Instant,
    /// v1 `client.reconnect`s waiting: when, which miner, where (`None`: `--url`).
    reconnects: Vec<(Instant, usize, Option<SocketAddr>)>,
    /// The v1 miner whose turn to hash is next.
    hash_cursor: usize,
}

impl Sim {
    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn open(&mut self, i: usize, addr: SocketAddr, poll: &Poll) {
        let res = if self.cfg.sources.is_empty() {
            TcpStream::connect(addr)
        } else {
            let src = self.cfg.sources[i % self.cfg.sources.len()];
            connect_from(src, addr)
        };
        let m = &mut self.miners[i];
        match res {
            Ok(mut s) => {
                if poll.registry().register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE).is_ok() {
                    m.stream = Some(s);
                } else {
                    m.state = State::Dead;
                    self.st.connect_failed += 1;
                }
            }
            Err(e) => {
                if self.st.connect_failed == 0 {
                    eprintln!("minersim: connect: {e}");
                }
                m.state = State::Dead;
                self.st.connect_failed += 1;
            }
        }
    }

    fn kill(&mut self, i: usize) {
        let m = &mut self.miners[i];
        if m.state == State::Dead {
            return;
        }
        match m.state {
            State::Connecting => self.st.connect_failed += 1,
            State::LoginSent => {
                self.st.login_failed += 1;
                self.st.disconnects += 1;
            }
            _ => self.st.disconnects += 1,
        }
        m.state = State::Dead;
        m.stream = None;
        m.wbuf = Vec::new();
        m.rbuf = Vec::new();
    }

    fn on_event(&mut self, i: usize, readable: bool, writable: bool) {
        if self.miners[i].state == State::Connecting {
            let Some(s) = &self.miners[i].stream else { return };
            match s.take_error() {
                Ok(None) => {}
                _ => return self.kill(i),
            }
            match s.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(_) => return self.kill(i),
            }
            self.st.connected += 1;
            let _ = s.set_nodelay(true);
            if self.cfg.v1 {
                self.miners[i].state = State::LoginSent;
                if !self.v1_hello(i) {
                    return self.kill(i);
                }
                return self.on_event(i, readable, writable);
            }
            let login = json!({"id": LOGIN_ID, "jsonrpc": "2.0", "method": "login", "params": {
                "login": self.cfg.user, "pass": self.cfg.pass, "agent": self.cfg.agent,
                "rigid": format!("sim-{i}"), "algo": self.cfg.algos}});
            self.miners[i].state = State::LoginSent;
            if !self.send(i, &login) {
                return self.kill(i);
            }
        }
        if writable && !flush(&mut self.miners[i]) {
            return self.kill(i);
        }
        if readable && !self.read(i) {
            self.kill(i);
        }
    }

    fn read(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 16384];
        loop {
            let m = &mut self.miners[i];
            let Some(s) = m.stream.as_mut() else { return false };
            match s.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    m.rbuf.extend_from_slice(&buf[..n]);
                    let data = std::mem::take(&mut m.rbuf);
                    let mut start = 0;
                    while let Some(pos) = data[start..].iter().position(|&b| b == b'\n') {
                        let line = &data[start..start + pos];
                        start += pos + 1;
                        if !line.trim_ascii().is_empty() && !self.handle_line(i, line) {
                            return false;
                        }
                    }
                    if self.miners[i].state == State::Dead {
                        return false;
                    }
                    self.miners[i].rbuf = data[start..].to_vec();
                    if self.miners[i].rbuf.len() > MAX_LINE {
                        return false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }

    fn set_job(&mut self, i: usize, job: &Value, pushed: bool) -> bool {
        let id = job.get("job_id").and_then(Value::as_str).unwrap_or("");
        let blob = job.get("blob").and_then(Value::as_str).and_then(unhex);
        let diff = job.get("target").and_then(Value::as_str).and_then(target_difficulty);
        let (Some(blob), Some(diff)) = (blob, diff) else { return false };
        if id.is_empty() || blob.len() < 43 {
            return false;
        }
        self.note_job_id(i, id, pushed);
        self.miners[i].job = Some(MinerJob { id: id.to_string(), blob, diff });
        true
    }

    /// Job accounting from ids of the form "SEQ-MICROS": the newest sequence seen, and the
    /// fan-out latency of pushed jobs.
    fn note_job_id(&mut self, i: usize, id: &str, pushed: bool) {
        if pushed {
            self.st.jobs += 1;
        }
        let now = Instant::now();
        if let Some((seq, micros)) = id.split_once('-') {
            if let Ok(seq) = seq.parse::<u64>() {
                let m = &mut self.miners[i];
                m.last_seq = m.last_seq.max(seq);
                if self.seq_seen.back().is_none_or(|(s, _)| *s < seq) {
                    self.seq_seen.push_back((seq, now));
                    if self.seq_seen.len() > 64 {
                        self.seq_seen.pop_front();
                    }
                }
            }
            if let (true, Ok(us)) = (pushed, micros.parse::<u64>()) {
                let lat = now_micros().saturating_sub(us);
                self.job_lat.add(lat);
                if let Ok(seq) = seq.parse::<u64>() {
                    let last = self.job_last.entry(seq).or_insert(0);
                    *last = (*last).max(lat);
                    if self.job_last.len() > 256 {
                        self.job_last.pop_first();
                    }
                }
            }
        }
    }

    fn handle_line(&mut self, i: usize, line: &[u8]) -> bool {
        let Ok(msg) = serde_json::from_slice::<Value>(line) else {
            return false;
        };
        if self.cfg.v1 {
            return self.v1_line(i, &msg);
        }
        if msg.get("method").and_then(Value::as_str) == Some("job") {
            let Some(params) = msg.get("params") else { return true };
            return self.set_job(i, params, true);
        }
        let id = msg.get("id").and_then(Value::as_u64).unwrap_or(0);
        let err = msg.get("error").filter(|e| !e.is_null());
        if self.miners[i].state == State::LoginSent && id == LOGIN_ID {
            let result = msg.get("result");
            let session = result.and_then(|r| r.get("id")).and_then(Value::as_str);
            let job = result.and_then(|r| r.get("job"));
            let (None, Some(session), Some(job)) = (err, session, job) else {
                self.st.login_failed += 1;
                let why = err.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("no session or job");
                self.count_error(format!("login: {why}"));
                self.miners[i].state = State::Dead;
                self.miners[i].stream = None;
                return false;
            };
            let nicehash = result
                .and_then(|r| r.get("extensions"))
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|e| e.as_str() == Some("nicehash")));
            let m = &mut self.miners[i];
            m.session = session.to_string();
            m.nicehash = nicehash;
            m.state = State::Active;
            self.st.logged_in += 1;
            if self.st.logged_in as usize == self.cfg.miners {
                self.st.login_done = Some(self.start.elapsed());
            }
            if self.cfg.share_interval > 0.0 {
                let interval = self.cfg.share_interval;
                let offset = interval * (i as f64 / self.cfg.miners.max(1) as f64);
                let mut at = self.start + Duration::from_secs_f64(offset);
                let now = Instant::now();
                if at < now {
                    let behind = (now - at).as_secs_f64();
                    at += Duration::from_secs_f64(interval * (behind / interval).ceil());
                }
                self.shares.push(Reverse((at, i)));
            }
            return self.set_job(i, job, false);
        }
        let m = &mut self.miners[i];
        let Some(pos) = m.pending.iter().position(|(pid, _)| *pid == id) else {
            return true;
        };
        let Some((_, sent)) = m.pending.remove(pos) else { return true };
        self.rtt.add(sent.elapsed().as_micros() as u64);
        match err {
            None => self.st.accepted += 1,
            Some(e) => {
                let text = e.get("message").and_then(Value::as_str).unwrap_or("unknown").to_string();
                self.count_reject(text);
            }
        }
        true
    }

    /// One rejected share, counted by its reason (a bounded number of reasons).
    fn count_reject(&mut self, text: String) {
        self.st.rejected += 1;
        self.count_error(text);
    }

    /// One error reply (a rejected share or a refused login), counted by its text.
    fn count_error(&mut self, text: String) {
        let key = if self.st.errors.len() < MAX_ERROR_KINDS || self.st.errors.contains_key(&text) { text } else { "other".into() };
        *self.st.errors.entry(key).or_insert(0) += 1;
    }

    fn submit(&mut self, i: usize) {
        let mut result = [0u8; 32];
        for chunk in result[..24].chunks_mut(8) {
            let r = self.rand();
            chunk.copy_from_slice(&r.to_le_bytes());
        }
        let m = &mut self.miners[i];
        if m.state != State::Active {
            return;
        }
        let Some(job) = &m.job else { return };
        let tail = u64::MAX / job.diff.saturating_mul(2).max(1);
        result[24..].copy_from_slice(&tail.to_le_bytes());
        m.nonce = m.nonce.wrapping_add(1);
        let mut nonce = [0u8; 4];
        nonce.copy_from_slice(&job.blob[39..43]);
        let n = m.nonce.to_le_bytes();
        if m.nicehash {
            nonce[..3].copy_from_slice(&n[..3]);
        } else {
            nonce = n;
        }
        m.next_id += 1;
        let id = m.next_id;
        let msg = json!({"id": id, "jsonrpc": "2.0", "method": "submit",
            "params": {"id": m.session, "job_id": job.id, "nonce": hex(&nonce), "result": hex(&result)}});
        m.pending.push_back((id, Instant::now()));
        if m.pending.len() > 1000 {
            m.pending.pop_front();
        }
        self.st.submitted += 1;
        if !self.send(i, &msg) {
            self.kill(i);
        }
    }

    fn send(&mut self, i: usize, msg: &Value) -> bool {
        let m = &mut self.miners[i];
        m.wbuf.extend_from_slice(msg.to_string().as_bytes());
        m.wbuf.push(b'\n');
        flush(m) && m.wbuf.len() < MAX_LINE
    }

    fn missed_jobs(&self) -> u64 {
        let cutoff = Instant::now().checked_sub(Duration::from_secs(2));
        let Some(cutoff) = cutoff else { return 0 };
        let Some(&(seq, _)) = self.seq_seen.iter().rev().find(|(_, t)| *t <= cutoff) else {
            return 0;
        };
        self.miners.iter().filter(|m| m.state == State::Active && m.last_seq < seq).count() as u64
    }

    /// One status line: the summary's fields flattened to "key value" pairs.
    fn report_line(&self) {
        let mut line = format!("minersim t {:.1}s", self.start.elapsed().as_secs_f64());
        if let Value::Object(map) = self.summary() {
            for (k, v) in map {
                match v {
                    Value::Object(sub) if k != "errors" => sub.iter().for_each(|(sk, sv)| line += &format!(" {k}_{sk} {sv}")),
                    Value::Object(_) => {}
                    v => line += &format!(" {k} {v}"),
                }
            }
        }
        println!("{line}");
        let _ = io::stdout().flush();
    }

    /// p50/p99/max over jobs of the latency of each job's last miner.
    fn job_last_summary(&self) -> Value {
        let mut v: Vec<u64> = self.job_last.values().copied().collect();
        v.sort_unstable();
        let pct = |p: f64| v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1))).copied().unwrap_or(0);
        json!({"jobs": v.len(), "p50": pct(0.5), "p99": pct(0.99), "max": v.last().copied().unwrap_or(0)})
    }

    fn summary(&self) -> Value {
        let s = &self.st;
        json!({
            "miners": self.cfg.miners, "connected": s.connected, "connect_failed": s.connect_failed,
            "logged_in": s.logged_in, "login_failed": s.login_failed, "disconnects": s.disconnects, "jobs": s.jobs,
            "job_latency_us": {"p50": self.job_lat.pct(0.5), "p99": self.job_lat.pct(0.99), "max": self.job_lat.max},
            "job_last_miner_us": self.job_last_summary(),
            "submit_rtt_us": {"p50": self.rtt.pct(0.5), "p99": self.rtt.pct(0.99)},
            "submitted": s.submitted, "accepted": s.accepted, "rejected": s.rejected, "errors": s.errors,
            "missed_jobs": self.missed_jobs(), "login_time_ms": s.login_done.map(|d| d.as_millis() as u64),
            "hashes": s.hashes, "hashrate": (s.hashes as f64 / self.start.elapsed().as_secs_f64().max(1e-9)).round(),
            "extranonce_changes": s.extranonce_changes, "reconnects": s.reconnects,
        })
    }
}

fn connect_from(src: IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_nonblocking(true)?;
    sock.bind(&SocketAddr::new(src, 0).into())?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}

fn flush(m: &mut Miner) -> bool {
    let Some(s) = m.stream.as_mut() else { return false };
    while !m.wbuf.is_empty() {
        match s.write(&m.wbuf) {
            Ok(0) => return false,
            Ok(n) => {
                m.wbuf.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    true
}

fn main() {
    let cfg = parse_args();
    let stop = Stop::on_signals("minersim");
    let addr = match cfg.url.to_socket_addrs().ok().and_then(|mut a| a.next()) {
        Some(a) => a,
        None => {
            eprintln!("minersim: cannot resolve {}", cfg.url);
            std::process::exit(2);
        }
    };
    let mut poll = Poll::new().unwrap_or_else(|e| die_(format!("poll: {e}")));
    let start = Instant::now();
    let n = cfg.miners;
    let report = (cfg.report > 0.0).then(|| Duration::from_secs_f64(cfg.report));
    let end = (cfg.duration > 0.0).then(|| start + Duration::from_secs_f64(cfg.duration));
    let share_interval = (cfg.share_interval > 0.0).then(|| Duration::from_secs_f64(cfg.share_interval));
    let miners = (0..n)
        // Per-miner nonce start so the top nonce byte differs between miners unless nicehash keeps it.
        .map(|i| Miner { nonce: (i as u32).wrapping_mul(0x9E37_79B9), next_id: LOGIN_ID, ..Default::default() })
        .collect();
    let seed = now_micros() | 1;
    let mut sim = Sim {
        cfg,
        miners,
        st: Stats::default(),
        job_lat: Hist::new(),
        job_last: BTreeMap::new(),
        rtt: Hist::new(),
        seq_seen: VecDeque::new(),
        shares: BinaryHeap::new(),
        rng: seed,
        start,
        reconnects: Vec::new(),
        hash_cursor: 0,
    };
    let ramp = sim.cfg.ramp;
    let mut opened = 0usize;
    let mut next_ramp = start;
    let mut next_report = report.map(|r| start + r);
    let mut events = Events::with_capacity(4096);
    loop {
        let now = Instant::now();
        if stop.requested() || end.is_some_and(|e| now >= e) {
            break;
        }
        if opened < n && now >= next_ramp {
            let upto = (opened + ramp).min(n);
            for i in opened..upto {
                sim.open(i, addr, &poll);
            }
            opened = upto;
            next_ramp += Duration::from_millis(10);
        }
        let mut deadline = now + Duration::from_millis(100);
        if opened < n {
            deadline = deadline.min(next_ramp);
        }
        if let Some(Reverse((at, _))) = sim.shares.peek() {
            deadline = deadline.min(*at);
        }
        if let Some(r) = next_report {
            deadline = deadline.min(r);
        }
        if let Some(e) = end {
            deadline = deadline.min(e);
        }
        if let Some((at, ..)) = sim.reconnects.iter().min_by_key(|(at, ..)| *at) {
            deadline = deadline.min(*at);
        }
        if sim.cfg.v1 && sim.v1_busy() {
            // Hashing miners wait for nothing: look at the sockets and go back to work.
            deadline = now;
        }
        if let Err(e) = poll.poll(&mut events, Some(deadline.saturating_duration_since(now)))
            && e.kind() != io::ErrorKind::Interrupted
        {
            eprintln!("minersim: poll: {e}");
            break;
        }
        for ev in events.iter() {
            let i = ev.token().0;
            if i < sim.miners.len() && sim.miners[i].state != State::Dead {
                sim.on_event(i, ev.is_readable() || ev.is_read_closed() || ev.is_error(), ev.is_writable());
            }
        }
        if sim.cfg.v1 {
            sim.v1_reconnects(addr, &poll);
            // A few milliseconds of hashing per pass keeps the sockets served.
            sim.v1_hash(Instant::now() + Duration::from_millis(5));
        }
        let now = Instant::now();
        if let Some(iv) = share_interval {
            while let Some(Reverse((at, i))) = sim.shares.peek().copied() {
                if at > now {
                    break;
                }
                sim.shares.pop();
                if sim.miners[i].state == State::Active {
                    sim.submit(i);
                    let mut next = at + iv;
                    if next <= now {
                        next = now + iv;
                    }
                    sim.shares.push(Reverse((next, i)));
                }
            }
        }
        if let (Some(r), Some(nr)) = (report, next_report)
            && now >= nr
        {
            sim.report_line();
            next_report = Some(nr + r);
        }
    }
    if sim.cfg.json {
        println!("{}", sim.summary());
    } else {
        sim.report_line();
        println!("minersim summary {}", sim.summary());
    }
    let _ = io::stdout().flush();
}

fn die_(msg: String) -> ! {
    common::die("minersim", msg)
}
