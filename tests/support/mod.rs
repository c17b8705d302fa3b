//! Loopback test fixtures: a scriptable mock pool, a line-oriented test miner, and a proxy
//! running on its own thread. Everything binds 127.0.0.1:0.

#![allow(dead_code)]

pub mod v1;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use stratum_proxy::config::{Bind, BindKind, Config, Mode, PoolConfig};
use stratum_proxy::proxy::{Proxy, StopHandle};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// Polls `cond` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A 76-byte blob whose bytes say which pool connection and job they came from.
pub fn blob(conn: usize, job: u64) -> String {
    let mut b = [0u8; 76];
    b[0] = 7;
    b[1] = conn as u8;
    b[2] = job as u8;
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A result hash that reaches exactly `diff`.
pub fn result_for(diff: u64) -> String {
    let v = u64::MAX / diff;
    let tail: String = v.to_le_bytes().iter().map(|x| format!("{x:02x}")).collect();
    format!("{}{tail}", "0".repeat(48))
}

/// An 8-hex target for `diff`.
pub fn target_for(diff: u64) -> String {
    let t = (u64::from(u32::MAX) / diff) as u32;
    t.to_le_bytes().iter().map(|x| format!("{x:02x}")).collect()
}

/// What the mock pool saw.
#[derive(Default)]
pub struct PoolState {
    pub logins: Vec<Value>,
    pub submits: Vec<Value>,
    /// The JSON-RPC ids of those submits, in the same order (to answer a held one by hand).
    pub submit_ids: Vec<Value>,
    pub keepalives: usize,
    conns: Vec<TcpStream>,
    job_seq: u64,
    /// Difficulty of the jobs sent.
    pub diff: u64,
    /// Answer submits with this error instead of OK.
    pub reject_with: Option<String>,
    /// Do not answer submits at all.
    pub hold_replies: bool,
    /// Answer nothing at all (a pool that went silent but keeps the connection).
    pub mute: bool,
    /// Send no job in the login reply.
    pub no_login_job: bool,
    closed: usize,
    /// The pool's port, in its job ids: two pools never hand out the same job id.
    port: u16,
    /// The algorithm of its jobs ("rx/0" when empty).
    pub algo: String,
}

impl PoolState {
    fn algo(&self) -> &str {
        if self.algo.is_empty() { "rx/0" } else { &self.algo }
    }
}

impl PoolState {
    /// Connections the proxy has closed (or that were killed).
    pub fn closed_connections(&self) -> usize {
        self.closed
    }
}

/// A pool on loopback that logs in everyone, hands out jobs and answers submits.
pub struct MockPool {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<PoolState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MockPool {
    pub fn start(diff: u64) -> MockPool {
        Self::start_on("127.0.0.1:0".parse().unwrap(), diff)
    }

    /// Starts on a given address (to bring a "dead" pool back on its old port).
    pub fn start_on(addr: SocketAddr, diff: u64) -> MockPool {
        let listener = TcpListener::bind(addr).expect("bind mock pool");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(PoolState { diff, port: addr.port(), ..PoolState::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || accept_loop(listener, st, sp));
        MockPool { addr, state, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        self.addr.to_string()
    }

    pub fn logins(&self) -> usize {
        self.state.lock().unwrap().logins.len()
    }

    pub fn submits(&self) -> Vec<Value> {
        self.state.lock().unwrap().submits.clone()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().conns.len()
    }

    /// True when `job_id` is one of this pool's jobs.
    pub fn owns_job(&self, job_id: &str) -> bool {
        job_id.starts_with(&format!("job-{}-", self.addr.port()))
    }

    /// Pushes a new job to every connection; returns its id.
    pub fn push_job(&self) -> String {
        let mut st = self.state.lock().unwrap();
        st.job_seq += 1;
        let seq = st.job_seq;
        let target = target_for(st.diff);
        let job_id = format!("job-{}-{seq}", st.port);
        let mut conns = std::mem::take(&mut st.conns);
        for (i, c) in conns.iter_mut().enumerate() {
            let msg = json!({"jsonrpc": "2.0", "method": "job", "params": {
                "blob": blob(i, seq), "job_id": job_id, "target": target, "algo": st.algo(), "height": 100 + seq, "id": format!("sess-{i}")}});
            let _ = c.write_all(format!("{msg}\n").as_bytes());
        }
        st.conns = conns;
        job_id
    }

    /// Writes raw bytes to every pool connection.
    pub fn send_raw(&self, bytes: &[u8]) {
        let mut st = self.state.lock().unwrap();
        for c in st.conns.iter_mut() {
            let _ = c.write_all(bytes);
        }
    }

    /// Stops listening and drops every connection.
    pub fn kill(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for c in self.state.lock().unwrap().conns.drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for MockPool {
    fn drop(&mut self) {
        self.kill();
    }
}

fn accept_loop(listener: TcpListener, state: Arc<Mutex<PoolState>>, stop: Arc<AtomicBool>) {
    let mut readers = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                let idx = {
                    let mut st = state.lock().unwrap();
                    st.conns.push(s.try_clone().unwrap());
                    st.conns.len() - 1
                };
                let (st, sp) = (state.clone(), stop.clone());
                readers.push(std::thread::spawn(move || serve(s, idx, st, sp)));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => break,
        }
    }
    drop(listener);
}

fn serve(stream: TcpStream, idx: usize, state: Arc<Mutex<PoolState>>, stop: Arc<AtomicBool>) {
    serve_lines(stream, idx, &state, &stop);
    state.lock().unwrap().closed += 1;
}

fn serve_lines(stream: TcpStream, idx: usize, state: &Mutex<PoolState>, stop: &AtomicBool) {
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !stop.load(Ordering::SeqCst) {
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        let Ok(req) = serde_json::from_str::<Value>(line.trim()) else { return };
        line.clear();
        let id = req["id"].clone();
        let mut st = state.lock().unwrap();
        if st.mute {
            continue;
        }
        let reply = match req["method"].as_str() {
            Some("login") => {
                st.logins.push(req["params"].clone());
                st.job_seq = st.job_seq.max(1);
                let job = json!({"blob": blob(idx, st.job_seq), "job_id": format!("job-{}-{}", st.port, st.job_seq),
                    "target": target_for(st.diff), "algo": st.algo(), "height": 100});
                let job = if st.no_login_job { Value::Null } else { job };
                Some(json!({"id": id, "jsonrpc": "2.0", "error": null,
                    "result": {"id": format!("sess-{idx}"), "job": job, "extensions": ["algo", "keepalive"], "status": "OK"}}))
            }
            Some("submit") => {
                st.submits.push(req["params"].clone());
                st.submit_ids.push(id.clone());
                match (&st.reject_with, st.hold_replies) {
                    (_, true) => None,
                    (Some(msg), _) => Some(json!({"id": id, "jsonrpc": "2.0", "error": {"code": -1, "message": msg}, "result": null})),
                    (None, _) => Some(json!({"id": id, "jsonrpc": "2.0", "error": null, "result": {"status": "OK"}})),
                }
            }
            Some("keepalived") => {
                st.keepalives += 1;
                Some(json!({"id": id, "jsonrpc": "2.0", "error": null, "result": {"status": "KEEPALIVED"}}))
            }
            _ => None,
        };
        drop(st);
        if let Some(r) = reply
            && out.write_all(format!("{r}\n").as_bytes()).is_err()
        {
            return;
        }
    }
}

/// A miner speaking line-delimited JSON with blocking reads bounded by `WAIT`.
pub struct TestMiner {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    next_id: u64,
    pub session: String,
    pub job: Value,
}

impl TestMiner {
    pub fn connect(addr: SocketAddr) -> TestMiner {
        let stream = TcpStream::connect(addr).expect("connect to proxy");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        TestMiner { stream, reader, next_id: 1, session: String::new(), job: Value::Null }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "jsonrpc": "2.0", "method": method, "params": params});
        self.send_raw(format!("{msg}\n").as_bytes()).expect("send");
        id
    }

    /// The next line as JSON; panics on timeout or close.
    pub fn recv(&mut self) -> Value {
        self.try_recv().expect("expected a line from the proxy")
    }

    /// The next line, or `None` on close or timeout.
    pub fn try_recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(line.trim()).expect("proxy sent JSON")),
        }
    }

    /// Waits for the next line for at most `d`.
    pub fn recv_within(&mut self, d: Duration) -> Option<Value> {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let v = self.try_recv();
        self.stream.set_read_timeout(Some(WAIT)).unwrap();
        v
    }

    /// True once the proxy closes the connection (within `d`).
    pub fn closed_within(&mut self, d: Duration) -> bool {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let mut line = String::new();
        let end = Instant::now() + d;
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return true,
                Ok(_) if Instant::now() < end => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
                _ => return false,
            }
        }
    }

    /// Sends a login and returns the reply.
    pub fn login_as(&mut self, user: &str) -> Value {
        let id = self.send("login", json!({"login": user, "pass": "x", "agent": "test-miner/1.0", "rigid": "rig", "algo": ["rx/0"]}));
        let reply = self.recv();
        assert_eq!(reply["id"], id);
        if let Some(r) = reply.get("result").filter(|r| !r.is_null()) {
            self.session = r["id"].as_str().unwrap_or_default().to_string();
            self.job = r["job"].clone();
        }
        reply
    }

    /// Logs in and expects success.
    pub fn login(&mut self) -> &Value {
        let reply = self.login_as("WALLET");
        assert!(reply["error"].is_null(), "login failed: {reply}");
        &self.job
    }

    /// The current job's id.
    pub fn job_id(&self) -> String {
        self.job["job_id"].as_str().unwrap_or_default().to_string()
    }

    /// The fixed byte of the current job (blob byte 42).
    pub fn fixed_byte(&self) -> String {
        self.job["blob"].as_str().unwrap()[84..86].to_string()
    }

    /// Submits a share for the current job with the fixed byte kept.
    pub fn submit(&mut self, counter: u16, diff: u64) -> Value {
        let nonce = format!("{:04x}00{}", counter, self.fixed_byte());
        let job_id = self.job["job_id"].as_str().unwrap().to_string();
        self.submit_raw(&job_id, &nonce, &result_for(diff))
    }

    pub fn submit_raw(&mut self, job_id: &str, nonce: &str, result: &str) -> Value {
        let session = self.session.clone();
        let id = self.send("submit", json!({"id": session, "job_id": job_id, "nonce": nonce, "result": result}));
        loop {
            let v = self.recv();
            if v["id"] == id {
                return v;
            }
            // A job push while waiting for the answer.
            if v["method"] == "job" {
                self.job = v["params"].clone();
            }
        }
    }

    /// Waits for a job notification and makes it current.
    pub fn next_job(&mut self) -> Value {
        loop {
            let v = self.recv();
            if v["method"] == "job" {
                self.job = v["params"].clone();
                return self.job.clone();
            }
        }
    }
}

/// The error message of a reply, or "" for success.
pub fn error_of(reply: &Value) -> String {
    reply["error"]["message"].as_str().unwrap_or_default().to_string()
}

/// A config for tests: one loopback bind on port 0, the given pools in order.
pub fn config(mode: Mode, pools: &[String]) -> Config {
    Config {
        mode,
        binds: vec![Bind {
            addr: "127.0.0.1:0".parse().unwrap(),
            tls: false,
            proxy_protocol: false,
            kind: BindKind::Stratum,
            group: "default".into(),
            protocol: stratum_proxy::config::BindProtocol::Auto,
            vardiff: None,
        }],
        pools: pools.iter().map(|url| pool(url)).collect(),
        retries: 1,
        retry_pause_secs: 1,
        ..Config::default()
    }
}

/// A NiceHash proxy in front of one mock pool at difficulty 1000.
pub fn nicehash_proxy() -> (MockPool, RunningProxy) {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    (pool, proxy)
}

pub fn pool(url: &str) -> PoolConfig {
    PoolConfig { user: "POOLWALLET".into(), pass: "poolpass".into(), ..PoolConfig::new(url) }
}

/// A proxy running on its own thread; stopped and joined on drop.
pub struct RunningProxy {
    /// The first listener (the stratum port in most tests).
    pub addr: SocketAddr,
    /// Every listener, in bind order.
    pub addrs: Vec<SocketAddr>,
    /// The inbound TLS certificate's SHA-256, when a bind uses TLS.
    pub fingerprint: Option<String>,
    /// The HTTP API, when the config enables it.
    pub http: Option<SocketAddr>,
    stop: StopHandle,
    thread: Option<JoinHandle<Proxy>>,
}

impl RunningProxy {
    pub fn start(cfg: Config) -> RunningProxy {
        Self::start_with_file(cfg, None)
    }

    /// Starts with `file` as the config file to watch (and reload).
    pub fn start_with_file(cfg: Config, file: Option<std::path::PathBuf>) -> RunningProxy {
        Self::start_prepared(cfg, move |proxy| {
            if let Some(f) = file {
                proxy.set_config_file(f);
            }
        })
    }

    /// Starts after `prepare` had the bound proxy (to set test hooks).
    pub fn start_prepared(cfg: Config, prepare: impl FnOnce(&mut Proxy) + Send + 'static) -> RunningProxy {
        let _ = env_logger::builder().is_test(true).try_init();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut proxy = Proxy::bind(cfg).expect("proxy binds");
            prepare(&mut proxy);
            let fingerprint = proxy.tls_fingerprint().map(str::to_string);
            tx.send((proxy.local_addrs(), fingerprint, proxy.http_addr(), proxy.stop_handle())).unwrap();
            proxy.run().expect("proxy runs");
            proxy
        });
        let (addrs, fingerprint, http, stop) = rx.recv_timeout(WAIT).expect("proxy started");
        RunningProxy { addr: addrs[0], addrs, fingerprint, http, stop, thread: Some(thread) }
    }

    /// Stops the loop and returns the proxy for inspection.
    pub fn finish(mut self) -> Proxy {
        self.stop.stop();
        self.thread.take().expect("running").join().expect("proxy thread")
    }

    pub fn miner(&self) -> TestMiner {
        TestMiner::connect(self.addr)
    }

    /// Stops and waits for the loop to end; returns how long that took.
    pub fn stop(&mut self) -> Duration {
        let t = Instant::now();
        self.stop.stop();
        if let Some(th) = self.thread.take() {
            th.join().expect("proxy thread");
        }
        t.elapsed()
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port with nothing listening on it.
pub fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// An HTTP response as the test sees it.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl HttpReply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends raw request bytes on a fresh connection and reads the reply until close.
pub fn http_raw(addr: SocketAddr, request: &[u8]) -> HttpReply {
    let mut s = TcpStream::connect(addr).expect("connect to the API");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut raw);
    parse_http(&String::from_utf8_lossy(&raw))
}

/// Splits one HTTP response into status, head and body.
pub fn parse_http(text: &str) -> HttpReply {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    HttpReply { status, head: head.to_string(), body: body.to_string() }
}

/// `method path` with a JSON body and optional extra header lines, `Connection: close`.
pub fn http_send(addr: SocketAddr, method: &str, path: &str, body: &str, extra: &str) -> HttpReply {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    http_raw(addr, format!("{head}{body}").as_bytes())
}

/// GET `path` with optional extra header lines, `Connection: close`.
pub fn http_get(addr: SocketAddr, path: &str, extra: &str) -> HttpReply {
    http_raw(addr, format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n").as_bytes())
}
