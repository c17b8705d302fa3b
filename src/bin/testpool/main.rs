//! testpool: a minimal stratum pool for tests and benchmarks.
//!
//! Single-threaded mio event loop. CryptoNote by default: every connection must log in, gets its
//! own blob (the connection number is embedded in it) and a new job every `--job-interval`
//! seconds. Shares are validated (session, job id, nonce, result, duplicates, difficulty) and
//! counted. `--protocol v1` speaks Bitcoin-family stratum v1 instead (see `v1.rs`) and checks
//! the proof of work of every share.

#[path = "../common/mod.rs"]
mod common;
mod v1;

use common::{Stop, hex, now_micros, unhex};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const MAX_WBUF: usize = 4 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    CryptoNote,
    V1,
}

struct Config {
    bind: String,
    protocol: Protocol,
    job_interval: f64,
    /// CryptoNote difficulty (a whole number of hashes).
    diff: u64,
    /// Stratum v1 difficulty (`--diff` as given).
    diff_f: f64,
    algo: String,
    extranonce2_size: usize,
    version_mask: u32,
    set_extranonce_after: Option<f64>,
    reconnect_after: Option<f64>,
    /// The address we listen on, for `client.reconnect`.
    local: Option<SocketAddr>,
    report: f64,
    stats_file: Option<String>,
    duration: f64,
    max_line: usize,
    nicehash: bool,
}

fn parse_args() -> Config {
    let args: Vec<String> = std::env::args().collect();
    let mut o = getopts::Options::new();
    o.optopt("", "bind", "listen address (default 127.0.0.1:3333)", "ADDR");
    o.optopt("", "job-interval", "seconds between jobs (default 5)", "SECS");
    o.optopt("", "protocol", "cryptonote (default) or v1 (Bitcoin-family stratum)", "NAME");
    o.optopt("", "diff", "pool difficulty (default 1000; v1: a float, default 0.001)", "N");
    o.optopt("", "algo", "algorithm name (default rx/0; v1: sha256d or scrypt)", "ALGO");
    o.optopt("", "extranonce2-size", "v1: extranonce2 bytes given to miners (default 8)", "N");
    o.optopt("", "version-mask", "v1: version bits granted by mining.configure, hex (default 1fffe000; 0 = none)", "HEX");
    o.optopt("", "set-extranonce-after", "v1: send mining.set_extranonce once, after SECS", "SECS");
    o.optopt("", "reconnect-after", "v1: send client.reconnect (to this pool) once, after SECS", "SECS");
    o.optopt("", "report", "print counters every SECS (0 = never)", "SECS");
    o.optopt("", "stats-file", "rewrite a JSON stats file every second", "PATH");
    o.optopt("", "duration", "exit after SECS (0 = forever)", "SECS");
    o.optopt("", "max-line", "max request line length (default 65536)", "N");
    o.optflag("", "nicehash", "advertise the nicehash extension");
    o.optflag("h", "help", "show help");
    let m = match o.parse(&args[1..]) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("testpool: {e}\n{}", o.usage("Usage: testpool [options]"));
            std::process::exit(2);
        }
    };
    if m.opt_present("h") {
        println!("{}", o.usage("Usage: testpool [options]"));
        std::process::exit(0);
    }
    fn num<T: std::str::FromStr>(m: &getopts::Matches, name: &str, def: T) -> T {
        match m.opt_str(name) {
            None => def,
            Some(s) => s.parse().unwrap_or_else(|_| {
                eprintln!("testpool: bad value for --{name}: {s}");
                std::process::exit(2);
            }),
        }
    }
    let protocol = match m.opt_str("protocol").as_deref() {
        None | Some("cryptonote") => Protocol::CryptoNote,
        Some("v1") => Protocol::V1,
        Some(other) => die_(format!("unknown --protocol {other} (cryptonote or v1)")),
    };
    let v1 = protocol == Protocol::V1;
    let diff_f = num(&m, "diff", if v1 { 0.001f64 } else { 1000.0 });
    if !(diff_f.is_finite() && diff_f > 0.0) {
        die_(format!("bad value for --diff: {diff_f}"));
    }
    let algo = m.opt_str("algo").unwrap_or_else(|| if v1 { "sha256d".into() } else { "rx/0".into() });
    if v1 && common::v1::Algo::parse(&algo).is_none() {
        die_(format!("--protocol v1 checks sha256d or scrypt, not {algo}"));
    }
    let version_mask = m.opt_str("version-mask").unwrap_or_else(|| "1fffe000".into());
    let version_mask =
        u32::from_str_radix(&version_mask, 16).unwrap_or_else(|_| die_(format!("bad value for --version-mask: {version_mask}")));
    Config {
        bind: m.opt_str("bind").unwrap_or_else(|| "127.0.0.1:3333".into()),
        protocol,
        job_interval: num(&m, "job-interval", 5.0f64).max(0.001),
        diff: (diff_f as u64).max(1),
        diff_f,
        algo,
        extranonce2_size: num(&m, "extranonce2-size", 8usize).clamp(1, 32),
        version_mask,
        set_extranonce_after: m.opt_str("set-extranonce-after").map(|_| num(&m, "set-extranonce-after", 0.0f64)),
        reconnect_after: m.opt_str("reconnect-after").map(|_| num(&m, "reconnect-after", 0.0f64)),
        local: None,
        report: num(&m, "report", 0.0f64),
        stats_file: m.opt_str("stats-file"),
        duration: num(&m, "duration", 0.0f64),
        max_line: num(&m, "max-line", 65536usize).max(64),
        nicehash: m.opt_present("nicehash"),
    }
}

#[derive(Default)]
struct Counters {
    conns_now: u64,
    conns_total: u64,
    logins: u64,
    accepted: u64,
    stale: u64,
    duplicate: u64,
    unknown_job: u64,
    low_diff: u64,
    invalid: u64,
    jobs: u64,
    hashes: u64,
    extranonce_changes: u64,
    reconnects_sent: u64,
}

impl Counters {
    fn to_json(&self) -> Value {
        json!({
            "connections": self.conns_now, "connections_total": self.conns_total, "logins": self.logins,
            "accepted": self.accepted, "stale": self.stale, "duplicate": self.duplicate, "unknown_job": self.unknown_job,
            "low_diff": self.low_diff, "invalid": self.invalid, "jobs": self.jobs, "hashes": self.hashes,
            "extranonce_changes": self.extranonce_changes, "reconnects_sent": self.reconnects_sent,
        })
    }
}

struct Job {
    id: String,
    blob: String,
    seen: HashSet<String>,
}

struct Conn {
    stream: TcpStream,
    number: u64,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    session: Option<String>,
    cur: Option<Job>,
    prev: Option<Job>,
    v1: v1::V1Conn,
}

struct Pool {
    cfg: Config,
    target: String,
    seed_hash: String,
    job_seq: u64,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    c: Counters,
    v1: v1::V1Pool,
}

/// 76-byte blob, unique per connection and job; nonce bytes 39..43 are zero.
fn make_blob(conn_number: u64, seq: u64) -> String {
    let mut b = [0u8; 76];
    b[0] = 16;
    b[1] = 16;
    b[2..10].copy_from_slice(&seq.to_le_bytes());
    b[10..18].copy_from_slice(&conn_number.to_le_bytes());
    for (i, x) in b[18..39].iter_mut().enumerate() {
        *x = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    b[43..51].copy_from_slice(&conn_number.to_le_bytes());
    b[51..59].copy_from_slice(&seq.to_le_bytes());
    hex(&b)
}

fn share_difficulty(result: &[u8]) -> u64 {
    let mut last = [0u8; 8];
    last.copy_from_slice(&result[24..32]);
    let v = u64::from_le_bytes(last);
    u64::MAX.checked_div(v).unwrap_or(u64::MAX)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|c| c.is_ascii_hexdigit())
}

impl Pool {
    fn job_json(&self, conn: &Conn, job: &Job) -> Value {
        json!({
            "blob": job.blob, "job_id": job.id, "target": self.target, "algo": self.cfg.algo,
            "height": 100 + self.job_seq, "seed_hash": self.seed_hash,
            "id": conn.session.clone().unwrap_or_default(),
        })
    }

    /// The job id carries the send time of this connection's copy, so receivers can measure latency.
    fn new_job_for(&self, conn: &mut Conn) {
        let job =
            Job { id: format!("{}-{}", self.job_seq, now_micros()), blob: make_blob(conn.number, self.job_seq), seen: HashSet::new() };
        conn.prev = conn.cur.take();
        conn.cur = Some(job);
    }

    fn broadcast_job(&mut self) {
        if self.cfg.protocol == Protocol::V1 {
            return self.v1_broadcast();
        }
        self.job_seq += 1;
        let tokens: Vec<Token> = self.conns.iter().filter(|(_, c)| c.session.is_some()).map(|(t, _)| *t).collect();
        for t in tokens {
            let Some(mut conn) = self.conns.remove(&t) else { continue };
            self.new_job_for(&mut conn);
            let params = match &conn.cur {
                Some(job) => self.job_json(&conn, job),
                None => continue,
            };
            let msg = json!({"jsonrpc": "2.0", "method": "job", "params": params});
            self.c.jobs += 1;
            if send(&mut conn, &msg) {
                self.conns.insert(t, conn);
            } else {
                self.close(conn);
            }
        }
    }

    /// Dropping the stream closes the socket, which also removes it from the epoll set.
    fn close(&mut self, conn: Conn) {
        self.c.conns_now = self.c.conns_now.saturating_sub(1);
        drop(conn);
    }

    /// Handles one request line; returns false if the connection must be closed.
    fn handle_line(&mut self, conn: &mut Conn, line: &[u8]) -> bool {
        let req: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(_) => {
                self.c.invalid += 1;
                return false;
            }
        };
        if self.cfg.protocol == Protocol::V1 {
            return self.v1_line(conn, &req);
        }
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let method = req.get("method").and_then(Value::as_str).unwrap_or("");
        let params = req.get("params").cloned().unwrap_or(Value::Null);
        match method {
            "login" => {
                if conn.session.is_some() {
                    return send_error(conn, id, "Already logged in");
                }
                let login = params.get("login").and_then(Value::as_str).unwrap_or("");
                if login.is_empty() {
                    self.c.invalid += 1;
                    return send_error(conn, id, "Missing login");
                }
                self.c.logins += 1;
                conn.session = Some(format!("s{:x}{:08x}", conn.number, now_micros() & 0xffff_ffff));
                self.new_job_for(conn);
                let job = match &conn.cur {
                    Some(j) => self.job_json(conn, j),
                    None => Value::Null,
                };
                let mut ext = vec!["algo", "keepalive"];
                if self.cfg.nicehash {
                    ext.push("nicehash");
                }
                let result = json!({"id": conn.session, "job": job, "extensions": ext, "status": "OK"});
                send(conn, &json!({"id": id, "jsonrpc": "2.0", "error": null, "result": result}))
            }
            "submit" => self.handle_submit(conn, id, &params),
            "keepalived" => {
                if !session_ok(conn, &params) {
                    return send_error(conn, id, "Unauthenticated");
                }
                send(conn, &json!({"id": id, "jsonrpc": "2.0", "error": null, "result": {"status": "KEEPALIVED"}}))
            }
            _ => {
                self.c.invalid += 1;
                send_error(conn, id, "Unsupported method")
            }
        }
    }

    fn handle_submit(&mut self, conn: &mut Conn, id: Value, params: &Value) -> bool {
        if !session_ok(conn, params) {
            self.c.invalid += 1;
            return send_error(conn, id, "Unauthenticated");
        }
        let job_id = params.get("job_id").and_then(Value::as_str).unwrap_or("");
        let nonce = params.get("nonce").and_then(Value::as_str).unwrap_or("");
        let result = params.get("result").and_then(Value::as_str).unwrap_or("");
        let is_cur = conn.cur.as_ref().is_some_and(|j| j.id == job_id);
        let is_prev = !is_cur && conn.prev.as_ref().is_some_and(|j| j.id == job_id);
        if !is_cur && !is_prev {
            self.c.unknown_job += 1;
            return send_error(conn, id, "Invalid job id");
        }
        if !is_hex(nonce, 8) {
            self.c.invalid += 1;
            return send_error(conn, id, "Invalid nonce");
        }
        let Some(res) = unhex(result).filter(|r| r.len() == 32) else {
            self.c.invalid += 1;
            return send_error(conn, id, "Malformed share");
        };
        let job = if is_cur { conn.cur.as_mut() } else { conn.prev.as_mut() };
        let Some(job) = job else {
            return send_error(conn, id, "Invalid job id");
        };
        if !job.seen.insert(nonce.to_ascii_lowercase()) {
            self.c.duplicate += 1;
            return send_error(conn, id, "Duplicate share");
        }
        let d = share_difficulty(&res);
        if d < self.cfg.diff {
            self.c.low_diff += 1;
            return send_error(conn, id, "Low difficulty share");
        }
        self.c.accepted += 1;
        if is_prev {
            self.c.stale += 1;
        }
        self.c.hashes += self.cfg.diff;
        send(conn, &json!({"id": id, "jsonrpc": "2.0", "error": null, "result": {"status": "OK"}}))
    }

    /// Reads everything available; returns false when the connection must be closed.
    fn on_readable(&mut self, conn: &mut Conn) -> bool {
        let mut buf = [0u8; 16384];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    conn.rbuf.extend_from_slice(&buf[..n]);
                    let mut start = 0;
                    while let Some(pos) = conn.rbuf[start..].iter().position(|&b| b == b'\n') {
                        let end = start + pos;
                        if end - start > self.cfg.max_line {
                            return false;
                        }
                        let line: Vec<u8> = conn.rbuf[start..end].to_vec();
                        start = end + 1;
                        let trimmed = line.trim_ascii();
                        if !trimmed.is_empty() && !self.handle_line(conn, trimmed) {
                            return false;
                        }
                    }
                    conn.rbuf.drain(..start);
                    if conn.rbuf.len() > self.cfg.max_line {
                        return false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }

    fn write_stats(&self) {
        let Some(path) = &self.cfg.stats_file else { return };
        let tmp = format!("{path}.tmp");
        let body = self.c.to_json().to_string();
        if std::fs::write(&tmp, body + "\n").is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    fn report(&self) {
        let c = &self.c;
        println!(
            "testpool conns {} accepted {} duplicate {} unknown_job {} low_diff {} invalid {} jobs {}",
            c.conns_now, c.accepted, c.duplicate, c.unknown_job, c.low_diff, c.invalid, c.jobs
        );
        let _ = io::stdout().flush();
    }
}

fn session_ok(conn: &Conn, params: &Value) -> bool {
    match (&conn.session, params.get("id").and_then(Value::as_str)) {
        (Some(s), Some(p)) => s == p,
        _ => false,
    }
}

fn send_error(conn: &mut Conn, id: Value, msg: &str) -> bool {
    send(conn, &json!({"id": id, "jsonrpc": "2.0", "error": {"code": -1, "message": msg}, "result": null}))
}

/// Queues a message and tries to write it; returns false when the connection must be closed.
fn send(conn: &mut Conn, msg: &Value) -> bool {
    conn.wbuf.extend_from_slice(msg.to_string().as_bytes());
    conn.wbuf.push(b'\n');
    flush(conn) && conn.wbuf.len() <= MAX_WBUF
}

fn flush(conn: &mut Conn) -> bool {
    while !conn.wbuf.is_empty() {
        match conn.stream.write(&conn.wbuf) {
            Ok(0) => return false,
            Ok(n) => {
                conn.wbuf.drain(..n);
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
    let stop = Stop::on_signals("testpool");
    let addr: SocketAddr = match cfg.bind.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("testpool: bad --bind {}: {e}", cfg.bind);
            std::process::exit(2);
        }
    };
    let mut listener = TcpListener::bind(addr).unwrap_or_else(|e| die_(format!("cannot bind {addr}: {e}")));
    let mut poll = Poll::new().unwrap_or_else(|e| die_(format!("poll: {e}")));
    if let Err(e) = poll.registry().register(&mut listener, LISTENER, Interest::READABLE) {
        die_(format!("register: {e}"));
    }
    let mut cfg = cfg;
    cfg.local = listener.local_addr().ok();
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| cfg.bind.clone());
    println!("testpool listening on {local}");
    let _ = io::stdout().flush();

    let diff = cfg.diff;
    let t = (0xFFFF_FFFFu64 / diff).max(1) as u32;
    let job_interval = Duration::from_secs_f64(cfg.job_interval);
    let report = (cfg.report > 0.0).then(|| Duration::from_secs_f64(cfg.report));
    let start = Instant::now();
    let end = (cfg.duration > 0.0).then(|| start + Duration::from_secs_f64(cfg.duration));
    let v1_algo = common::v1::Algo::parse(&cfg.algo).unwrap_or(common::v1::Algo::Sha256d);
    let mut pool = Pool {
        cfg,
        target: hex(&t.to_le_bytes()),
        seed_hash: hex(&[0x5au8; 32]),
        job_seq: 1,
        conns: HashMap::new(),
        next_token: 1,
        c: Counters::default(),
        v1: v1::V1Pool::new(v1_algo),
    };
    let mut next_job = start + job_interval;
    let mut next_report = report.map(|r| start + r);
    let mut next_stats = start + Duration::from_secs(1);
    let mut events = Events::with_capacity(1024);

    loop {
        let now = Instant::now();
        if stop.requested() || end.is_some_and(|e| now >= e) {
            break;
        }
        let mut deadline = next_job.min(next_stats);
        if let Some(r) = next_report {
            deadline = deadline.min(r);
        }
        if let Some(e) = end {
            deadline = deadline.min(e);
        }
        let timeout = deadline.saturating_duration_since(now).min(Duration::from_millis(200));
        if let Err(e) = poll.poll(&mut events, Some(timeout))
            && e.kind() != io::ErrorKind::Interrupted
        {
            eprintln!("testpool: poll: {e}");
            break;
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let token = Token(pool.next_token);
                            pool.next_token += 1;
                            if poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE).is_err() {
                                continue;
                            }
                            let _ = stream.set_nodelay(true);
                            pool.c.conns_now += 1;
                            pool.c.conns_total += 1;
                            let number = pool.c.conns_total;
                            let conn = Conn {
                                stream,
                                number,
                                rbuf: Vec::new(),
                                wbuf: Vec::new(),
                                session: None,
                                cur: None,
                                prev: None,
                                v1: v1::V1Conn::default(),
                            };
                            pool.conns.insert(token, conn);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            eprintln!("testpool: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let Some(mut conn) = pool.conns.remove(&ev.token()) else { continue };
            let mut ok = true;
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                ok = pool.on_readable(&mut conn);
            }
            if ok && ev.is_writable() {
                ok = flush(&mut conn);
            }
            if ok {
                pool.conns.insert(ev.token(), conn);
            } else {
                pool.close(conn);
            }
        }
        if pool.cfg.protocol == Protocol::V1 {
            pool.v1_tick();
        }
        let now = Instant::now();
        if now >= next_job {
            pool.broadcast_job();
            while next_job <= now {
                next_job += job_interval;
            }
        }
        if now >= next_stats {
            pool.write_stats();
            next_stats = now + Duration::from_secs(1);
        }
        if let (Some(r), Some(nr)) = (report, next_report)
            && now >= nr
        {
            pool.report();
            next_report = Some(nr + r);
        }
    }
    pool.write_stats();
    if report.is_some() {
        pool.report();
    }
}

fn die_(msg: String) -> ! {
    common::die("testpool", msg)
}
