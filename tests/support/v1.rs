//! Stratum v1 fixtures: a scriptable mock pool (subscribe with a chosen extranonce,
//! authorize, notify and set_difficulty on demand, set_extranonce, recorded submits; it
//! does not check work: the proxy does, and `testpool --protocol v1` does for end-to-end
//! tests) and a test miner that finds real shares at tiny difficulties.

use super::WAIT;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use stratum_proxy::stratum::v1::header::{Pow, coinbase_hash, header, merkle_root};
use stratum_proxy::stratum::v1::job::{V1Job, hex_vec};

/// A coinbase split the way pools send it (the genesis block's, cut around the extranonce).
const COINB1: &str = "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20";
const COINB2: &str = "ffffffff0100f2052a010000001976a914a2593c986c86ca323a339d7781cc04bb2fd15ac388ac00000000";

/// What the mock v1 pool saw and will do.
#[derive(Default)]
pub struct V1PoolState {
    pub extranonce1: String,
    pub extranonce2_size: usize,
    pub authorizes: Vec<Value>,
    pub submits: Vec<Value>,
    pub configures: usize,
    conns: Vec<TcpStream>,
    job_seq: u64,
    pub diff: f64,
}

/// A v1 pool on loopback that subscribes, authorizes and records everyone.
pub struct MockV1Pool {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<V1PoolState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MockV1Pool {
    /// Extranonce1 `e1` (hex), extranonce2 size `n`, difficulty `diff`.
    pub fn start(e1: &str, n: usize, diff: f64) -> MockV1Pool {
        Self::start_on("127.0.0.1:0".parse().unwrap(), e1, n, diff)
    }

    pub fn start_on(addr: SocketAddr, e1: &str, n: usize, diff: f64) -> MockV1Pool {
        let listener = TcpListener::bind(addr).expect("bind mock v1 pool");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(V1PoolState { extranonce1: e1.into(), extranonce2_size: n, diff, ..Default::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut readers = Vec::new();
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        st.lock().unwrap().conns.push(s.try_clone().unwrap());
                        let (st2, sp2) = (st.clone(), sp.clone());
                        readers.push(std::thread::spawn(move || serve(s, &st2, &sp2)));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
                    Err(_) => break,
                }
            }
        });
        MockV1Pool { addr, state, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        self.addr.to_string()
    }

    pub fn authorizes(&self) -> usize {
        self.state.lock().unwrap().authorizes.len()
    }

    pub fn submits(&self) -> Vec<Value> {
        self.state.lock().unwrap().submits.clone()
    }

    /// Pushes a job (clean or not) to every connection; returns its id.
    pub fn notify(&self, clean: bool) -> String {
        let mut st = self.state.lock().unwrap();
        st.job_seq += 1;
        let id = format!("{}-{}", self.addr.port(), st.job_seq);
        let msg = notify_line(&id, st.job_seq, clean);
        broadcast(&mut st, &msg);
        id
    }

    pub fn set_difficulty(&self, d: f64) {
        let mut st = self.state.lock().unwrap();
        st.diff = d;
        broadcast(&mut st, &json!({"id": null, "method": "mining.set_difficulty", "params": [d]}));
    }

    /// `mining.set_extranonce` to every connection (and to later subscribers).
    pub fn set_extranonce(&self, e1: &str, n: usize) {
        let mut st = self.state.lock().unwrap();
        st.extranonce1 = e1.into();
        st.extranonce2_size = n;
        broadcast(&mut st, &json!({"id": null, "method": "mining.set_extranonce", "params": [e1, n]}));
    }

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

impl Drop for MockV1Pool {
    fn drop(&mut self) {
        self.kill();
    }
}

fn broadcast(st: &mut V1PoolState, msg: &Value) {
    let line = format!("{msg}\n");
    for c in st.conns.iter_mut() {
        let _ = c.write_all(line.as_bytes());
    }
}

fn notify_line(id: &str, seq: u64, clean: bool) -> Value {
    let prevhash = format!("{:064x}", seq);
    json!({"id": null, "method": "mining.notify", "params": [id, prevhash, COINB1, COINB2, [], "20000000", "1d00ffff", "6553f13c", clean]})
}

fn serve(stream: TcpStream, state: &Mutex<V1PoolState>, stop: &AtomicBool) {
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
        let mut replies = Vec::new();
        match req["method"].as_str() {
            Some("mining.configure") => {
                st.configures += 1;
                replies.push(json!({"id": id, "result": {"version-rolling": true, "version-rolling.mask": "1fffe000"}, "error": null}));
            }
            Some("mining.subscribe") => {
                replies.push(json!({"id": id, "result": [[["mining.notify", "s1"]], st.extranonce1, st.extranonce2_size], "error": null}))
            }
            Some("mining.authorize") => {
                st.authorizes.push(req["params"].clone());
                replies.push(json!({"id": id, "result": true, "error": null}));
                replies.push(json!({"id": null, "method": "mining.set_difficulty", "params": [st.diff]}));
                st.job_seq += 1;
                let jid = format!("{}-{}", out.local_addr().map(|a| a.port()).unwrap_or(0), st.job_seq);
                replies.push(notify_line(&jid, st.job_seq, true));
            }
            Some("mining.submit") => {
                st.submits.push(req["params"].clone());
                replies.push(json!({"id": id, "result": true, "error": null}));
            }
            Some("mining.extranonce.subscribe") => replies.push(json!({"id": id, "result": true, "error": null})),
            _ => {}
        }
        drop(st);
        for r in replies {
            if out.write_all(format!("{r}\n").as_bytes()).is_err() {
                return;
            }
        }
    }
}

/// A v1 miner speaking line-delimited JSON with blocking reads bounded by `WAIT`.
pub struct V1Miner {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    next_id: u64,
    pub extranonce1: Vec<u8>,
    pub extranonce2_size: usize,
    pub difficulty: f64,
    pub job: Option<Value>,
    /// Every notification seen, in order.
    pub seen: Vec<Value>,
}

impl V1Miner {
    pub fn connect(addr: SocketAddr) -> V1Miner {
        let stream = TcpStream::connect(addr).expect("connect to proxy");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        V1Miner { stream, reader, next_id: 1, extranonce1: Vec::new(), extranonce2_size: 0, difficulty: 0.0, job: None, seen: Vec::new() }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send_raw(format!("{}\n", json!({"id": id, "method": method, "params": params})).as_bytes()).expect("send");
        id
    }

    /// The next line, or `None` on close or timeout.
    pub fn try_recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(line.trim()).expect("proxy sent JSON")),
        }
    }

    /// Waits for the reply to `id`, taking in notifications on the way.
    pub fn reply(&mut self, id: u64) -> Value {
        loop {
            let v = self.try_recv().expect("a reply from the proxy");
            if v["id"] == id && v.get("method").is_none_or(Value::is_null) {
                return v;
            }
            self.note(v);
        }
    }

    fn note(&mut self, v: Value) {
        match v["method"].as_str() {
            Some("mining.set_difficulty") => self.difficulty = v["params"][0].as_f64().unwrap_or(0.0),
            Some("mining.notify") => self.job = Some(v["params"].clone()),
            Some("mining.set_extranonce") => {
                self.extranonce1 = hex_vec(v["params"][0].as_str().unwrap_or("")).unwrap_or_default();
                self.extranonce2_size = v["params"][1].as_u64().unwrap_or(0) as usize;
            }
            _ => {}
        }
        self.seen.push(v);
    }

    /// `next`, waiting up to `d` for each line.
    pub fn next_within(&mut self, method: &str, d: Duration) -> Option<Value> {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let v = self.next(method);
        self.stream.set_read_timeout(Some(WAIT)).unwrap();
        v
    }

    /// Waits for the next notification of `method` (or `None` on timeout/close).
    pub fn next(&mut self, method: &str) -> Option<Value> {
        loop {
            let v = self.try_recv()?;
            let found = v["method"] == method;
            self.note(v.clone());
            if found {
                return Some(v);
            }
        }
    }

    pub fn subscribe(&mut self) -> Value {
        let id = self.send("mining.subscribe", json!(["test-v1/1.0"]));
        let r = self.reply(id);
        if let Some(res) = r["result"].as_array() {
            self.extranonce1 = hex_vec(res[1].as_str().unwrap_or("")).unwrap_or_default();
            self.extranonce2_size = res[2].as_u64().unwrap_or(0) as usize;
        }
        r
    }

    pub fn authorize(&mut self, user: &str) -> Value {
        let id = self.send("mining.authorize", json!([user, "x"]));
        self.reply(id)
    }

    /// Subscribes, authorizes and waits for the first job.
    pub fn start(&mut self, user: &str) {
        assert!(self.subscribe()["error"].is_null());
        assert_eq!(self.authorize(user)["result"], true);
        if self.job.is_none() {
            self.next("mining.notify").expect("a first job");
        }
    }

    /// Finds a share for the current job at the miner's difficulty: (job id, extranonce2
    /// hex, ntime hex, nonce hex). `counter` picks the extranonce2.
    pub fn find_share(&self, counter: u32) -> (String, String, String, String) {
        let params = self.job.clone().expect("a job");
        let job = V1Job::from_params(&params).expect("a valid notify");
        let mut e2 = vec![0u8; self.extranonce2_size];
        let c = counter.to_be_bytes();
        let k = e2.len().min(4);
        let len = e2.len();
        e2[len - k..].copy_from_slice(&c[4 - k..]);
        let cb = coinbase_hash(&[&job.coinb1, &self.extranonce1, &e2, &job.coinb2]);
        let root = merkle_root(cb, &job.branches);
        for nonce in 0u32.. {
            let h = header(&job, job.version, &root, job.ntime, nonce);
            if Pow::Sha256d.difficulty(&Pow::Sha256d.hash(&h)) >= self.difficulty {
                let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
                return (job.job_id.to_string(), hex(&e2), format!("{:08x}", job.ntime), format!("{nonce:08x}"));
            }
        }
        unreachable!()
    }

    pub fn submit(&mut self, share: &(String, String, String, String)) -> Value {
        let (j, e2, t, n) = share;
        let id = self.send("mining.submit", json!(["w", j, e2, t, n]));
        self.reply(id)
    }

    /// True once the proxy closes the connection (within `d`).
    pub fn closed_within(&mut self, d: Duration) -> bool {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let end = std::time::Instant::now() + d;
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return true,
                Ok(_) if std::time::Instant::now() < end => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
                _ => return false,
            }
        }
    }
}
