//! Fixtures for TLS, jump and PROXY protocol tests: bind and config builders, a TLS line
//! client, and small byte servers. The proxy runner is the shared one from `support`.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use stratum_proxy::config::{Bind, BindKind, Config, JumpBind};
use stratum_proxy::net::tls::{Trust, client};

/// A proxy on its own thread (the shared fixture); `finish` hands the `Proxy` back.
#[allow(unused_imports)]
pub use crate::support::{RunningProxy as Running, WAIT};

pub fn stratum_bind(tls: bool, proxy_protocol: bool) -> Bind {
    Bind {
        addr: "127.0.0.1:0".parse().unwrap(),
        tls,
        proxy_protocol,
        kind: BindKind::Stratum,
        group: "default".into(),
        protocol: stratum_proxy::config::BindProtocol::Auto,
        vardiff: None,
    }
}

pub fn jump_bind(target: SocketAddr, target_tls: bool, tls: bool) -> Bind {
    jump_bind_to(&target.to_string(), target_tls, tls, 600)
}

/// A transparent bind to `target` (an address or a host name) closing pairs idle for `idle_secs`.
pub fn jump_bind_to(target: &str, target_tls: bool, tls: bool, idle_secs: u64) -> Bind {
    let kind = BindKind::Transparent(JumpBind { tls: target_tls, idle_secs, ..JumpBind::to(target) });
    Bind {
        addr: "127.0.0.1:0".parse().unwrap(),
        tls,
        proxy_protocol: false,
        kind,
        group: "default".into(),
        protocol: stratum_proxy::config::BindProtocol::Auto,
        vardiff: None,
    }
}

/// A config with only these binds and no pools.
pub fn binds_only(binds: Vec<Bind>) -> Config {
    Config { binds, pools: Vec::new(), retries: 1, retry_pause_secs: 1, ..Config::default() }
}

/// A blocking TLS stream to `addr` that accepts exactly the certificate `pin`.
pub fn tls_connect(addr: SocketAddr, pin: &str) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(WAIT)).unwrap();
    tls_over(sock, addr, pin)
}

pub fn tls_over(sock: TcpStream, addr: SocketAddr, pin: &str) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let conn = client::connect(&addr.to_string(), Trust::Pinned(pin.to_string())).expect("client config");
    rustls::StreamOwned::new(conn, sock)
}

/// A line client over any stream (TLS or plain), enough to log in and submit.
pub struct LineMiner<S: Read + Write> {
    reader: BufReader<S>,
    next_id: u64,
    pub session: String,
    pub job: Value,
}

impl<S: Read + Write> LineMiner<S> {
    pub fn new(stream: S) -> Self {
        LineMiner { reader: BufReader::new(stream), next_id: 1, session: String::new(), job: Value::Null }
    }

    pub fn send(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "jsonrpc": "2.0", "method": method, "params": params});
        let w = self.reader.get_mut();
        w.write_all(format!("{msg}\n").as_bytes()).expect("send");
        w.flush().expect("flush");
        id
    }

    /// The next line, or `None` on close, error or timeout.
    pub fn try_recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => serde_json::from_str(line.trim()).ok(),
        }
    }

    pub fn login(&mut self) -> Value {
        let id = self.send("login", json!({"login": "WALLET", "pass": "x", "agent": "tls-miner/1.0", "algo": ["rx/0"]}));
        let reply = self.try_recv().expect("login reply");
        assert_eq!(reply["id"], id);
        assert!(reply["error"].is_null(), "login failed: {reply}");
        self.session = reply["result"]["id"].as_str().unwrap_or_default().to_string();
        self.job = reply["result"]["job"].clone();
        reply
    }

    /// Waits for the next job notification and mines on it from then on.
    pub fn next_job(&mut self) -> Value {
        loop {
            let v = self.try_recv().expect("a job notification");
            if v["method"] == "job" {
                self.job = v["params"].clone();
                return self.job.clone();
            }
        }
    }

    /// Submits a share meeting `diff` for the current job, keeping the fixed byte.
    pub fn submit(&mut self, counter: u16, diff: u64, result: &str) -> Value {
        let fixed = self.job["blob"].as_str().unwrap()[84..86].to_string();
        let nonce = format!("{counter:04x}00{fixed}");
        let params = json!({"id": self.session, "job_id": self.job["job_id"], "nonce": nonce, "result": result});
        let _ = diff;
        let id = self.send("submit", params);
        loop {
            let v = self.try_recv().expect("submit reply");
            if v["id"] == id {
                return v;
            }
        }
    }
}

/// A server that echoes every byte back and passes half-close on; one thread per client.
pub fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let mut w = s;
                let _ = std::io::copy(&mut r, &mut w);
                let _ = w.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

/// A server that accepts and hands each connection to the test through a channel.
pub fn handing_server() -> (SocketAddr, std::sync::mpsc::Receiver<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            if tx.send(s).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
