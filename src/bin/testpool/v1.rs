//! The stratum v1 side of testpool (`--protocol v1`): a Bitcoin-style pool that rebuilds
//! every submitted header and checks its proof of work.
//!
//! Each connection gets a 4-byte extranonce1 (its connection number) and an extranonce2 of
//! `--extranonce2-size` bytes. Jobs are the same for every connection, every one clean;
//! shares on the previous job still count (as accepted and stale), like the CryptoNote
//! side. `mining.configure` grants `--version-mask` & the miner's mask. With
//! `--set-extranonce-after SECS`, connections that sent `mining.extranonce.subscribe` get a
//! new extranonce1 once, followed by a new job; their shares on older jobs are unknown.
//! With `--reconnect-after SECS` every connection is sent `client.reconnect` to this pool
//! once.

use super::common::v1::{Algo, Job, header, meets, merkle_root, rolled, sha256d};
use super::common::{hex, now_micros, unhex};
use super::{Conn, Pool, send};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How far past its job's ntime a share's ntime may be.
const NTIME_WINDOW: u32 = 7200;

/// Pool-wide v1 state.
pub struct V1Pool {
    /// The current job last, the previous one before it.
    jobs: Vec<(u64, Job)>,
    pub algo: Algo,
    started: Instant,
    extranonce_sent: bool,
    reconnect_sent: bool,
}

impl V1Pool {
    pub fn new(algo: Algo) -> V1Pool {
        V1Pool { jobs: Vec::new(), algo, started: Instant::now(), extranonce_sent: false, reconnect_sent: false }
    }
}

/// One connection's v1 state.
#[derive(Default)]
pub struct V1Conn {
    subscribed: bool,
    authorized: bool,
    extranonce1: Vec<u8>,
    mask: u32,
    wants_extranonce: bool,
    /// Jobs before this sequence number are unknown to the connection (its extranonce1
    /// changed after them).
    min_seq: u64,
    /// (job sequence, extranonce2, ntime, nonce, version) of accepted shares.
    seen: HashSet<(u64, Vec<u8>, u32, u32, u32)>,
}

fn unix_now() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0)
}

/// Job `seq`: a coinbase that says which job it belongs to, two made-up branches.
fn make_job(seq: u64) -> Job {
    let mut coinb1 = unhex("01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20").unwrap_or_default();
    coinb1.extend_from_slice(&seq.to_le_bytes()[..4]);
    let coinb2 = unhex("ffffffff0100f2052a010000001976a914a2593c986c86ca323a339d7781cc04bb2fd15ac388ac00000000").unwrap_or_default();
    let branch = |i: u8| sha256d(&[&seq.to_le_bytes()[..], &[i]].concat());
    Job {
        id: format!("{seq}-{}", now_micros()),
        prevhash: hex(&sha256d(&seq.to_be_bytes())),
        coinb1,
        coinb2,
        branches: vec![branch(1), branch(2)],
        version: 0x2000_0000,
        nbits: 0x1d00_ffff,
        ntime: unix_now(),
    }
}

fn notify_msg(job: &Job) -> Value {
    let branches: Vec<String> = job.branches.iter().map(|b| hex(b)).collect();
    json!({"id": null, "method": "mining.notify", "params": [
        job.id, job.prevhash, hex(&job.coinb1), hex(&job.coinb2), branches,
        format!("{:08x}", job.version), format!("{:08x}", job.nbits), format!("{:08x}", job.ntime), true]})
}

fn reply(conn: &mut Conn, id: Value, result: Value) -> bool {
    send(conn, &json!({"id": id, "result": result, "error": null}))
}

fn reject(conn: &mut Conn, id: Value, code: i64, msg: &str) -> bool {
    send(conn, &json!({"id": id, "result": null, "error": [code, msg, null]}))
}

fn hex_word(v: Option<&Value>) -> Option<u32> {
    v.and_then(Value::as_str).filter(|s| s.len() == 8).and_then(|s| u32::from_str_radix(s, 16).ok())
}

impl Pool {
    /// A new job for every authorized connection.
    pub fn v1_broadcast(&mut self) {
        self.job_seq += 1;
        let job = make_job(self.job_seq);
        let msg = notify_msg(&job);
        self.v1.jobs.push((self.job_seq, job));
        if self.v1.jobs.len() > 2 {
            self.v1.jobs.remove(0);
        }
        let oldest = self.v1.jobs[0].0;
        let tokens: Vec<_> = self.conns.iter().filter(|(_, c)| c.v1.authorized).map(|(t, _)| *t).collect();
        for t in tokens {
            let Some(mut conn) = self.conns.remove(&t) else { continue };
            conn.v1.seen.retain(|(seq, ..)| *seq >= oldest);
            self.c.jobs += 1;
            if send(&mut conn, &msg) {
                self.conns.insert(t, conn);
            } else {
                self.close(conn);
            }
        }
    }

    /// The timed events: `--reconnect-after`, `--set-extranonce-after`.
    pub fn v1_tick(&mut self) {
        self.v1_reconnect_tick();
        self.v1_extranonce_tick();
    }

    /// Once, after `--reconnect-after`: every connection is asked to come back.
    fn v1_reconnect_tick(&mut self) {
        let (Some(after), Some(local)) = (self.cfg.reconnect_after, self.cfg.local) else { return };
        if self.v1.reconnect_sent || self.v1.started.elapsed().as_secs_f64() < after {
            return;
        }
        self.v1.reconnect_sent = true;
        let msg = json!({"id": null, "method": "client.reconnect", "params": [local.ip().to_string(), local.port(), 0]});
        for conn in self.conns.values_mut() {
            self.c.reconnects_sent += 1;
            send(conn, &msg);
        }
    }

    /// Once, after `--set-extranonce-after`: new extranonce1 for the subscribers, new job.
    fn v1_extranonce_tick(&mut self) {
        let Some(after) = self.cfg.set_extranonce_after else { return };
        if self.v1.extranonce_sent || self.v1.started.elapsed().as_secs_f64() < after {
            return;
        }
        self.v1.extranonce_sent = true;
        let size = self.cfg.extranonce2_size;
        let next = self.job_seq + 1;
        for conn in self.conns.values_mut().filter(|c| c.v1.wants_extranonce && c.v1.subscribed) {
            let e1 = (0x8000_0000u32 | conn.number as u32).to_be_bytes().to_vec();
            conn.v1.extranonce1 = e1;
            conn.v1.min_seq = next;
            self.c.extranonce_changes += 1;
            let msg = json!({"id": null, "method": "mining.set_extranonce", "params": [hex(&conn.v1.extranonce1), size]});
            send(conn, &msg);
        }
        self.v1_broadcast();
    }

    /// Handles one v1 request line; returns false if the connection must be closed.
    pub fn v1_line(&mut self, conn: &mut Conn, req: &Value) -> bool {
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let method = req.get("method").and_then(Value::as_str).unwrap_or("");
        let params = req.get("params").and_then(Value::as_array).cloned().unwrap_or_default();
        match method {
            "mining.subscribe" => {
                conn.v1.subscribed = true;
                conn.v1.extranonce1 = (conn.number as u32).to_be_bytes().to_vec();
                let sid = format!("{:08x}", conn.number);
                let result =
                    json!([[["mining.set_difficulty", sid], ["mining.notify", sid]], hex(&conn.v1.extranonce1), self.cfg.extranonce2_size]);
                reply(conn, id, result)
            }
            "mining.extranonce.subscribe" => {
                conn.v1.wants_extranonce = true;
                reply(conn, id, json!(true))
            }
            "mining.configure" => {
                let asked: Vec<&str> = params.first().and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
                let mut result = serde_json::Map::new();
                for ext in asked {
                    if ext == "version-rolling" && self.cfg.version_mask != 0 {
                        let theirs = params.get(1).and_then(|p| p.get("version-rolling.mask")).and_then(Value::as_str);
                        let theirs = theirs.and_then(|m| u32::from_str_radix(m, 16).ok()).unwrap_or(u32::MAX);
                        conn.v1.mask = theirs & self.cfg.version_mask;
                        result.insert(ext.into(), json!(true));
                        result.insert("version-rolling.mask".into(), json!(format!("{:08x}", conn.v1.mask)));
                    } else {
                        result.insert(ext.into(), json!(false));
                    }
                }
                reply(conn, id, Value::Object(result))
            }
            "mining.authorize" => {
                let user = params.first().and_then(Value::as_str).unwrap_or("");
                if !conn.v1.subscribed || user.is_empty() {
                    self.c.invalid += 1;
                    return reject(conn, id, if user.is_empty() { 24 } else { 25 }, "Not subscribed or no worker");
                }
                conn.v1.authorized = true;
                conn.session = Some(user.to_string());
                self.c.logins += 1;
                // The connection is out of the table while it is handled: a first job made
                // now goes to the others, and to this one just below.
                if self.v1.jobs.is_empty() {
                    self.v1_broadcast();
                }
                let diff = json!({"id": null, "method": "mining.set_difficulty", "params": [self.cfg.diff_f]});
                reply(conn, id, json!(true)) && send(conn, &diff) && self.v1_send_current(conn)
            }
            "mining.submit" => self.v1_submit(conn, id, &params),
            _ => {
                self.c.invalid += 1;
                reject(conn, id, 20, "Unsupported method")
            }
        }
    }

    fn v1_send_current(&mut self, conn: &mut Conn) -> bool {
        match self.v1.jobs.last() {
            Some((_, job)) => {
                self.c.jobs += 1;
                send(conn, &notify_msg(job))
            }
            None => true,
        }
    }

    fn v1_submit(&mut self, conn: &mut Conn, id: Value, p: &[Value]) -> bool {
        if !conn.v1.authorized {
            self.c.invalid += 1;
            return reject(conn, id, 24, "Unauthorized worker");
        }
        let job_id = p.get(1).and_then(Value::as_str).unwrap_or("");
        let current = self.v1.jobs.last().map(|(seq, _)| *seq);
        let Some((seq, job)) = self.v1.jobs.iter().find(|(seq, j)| j.id == job_id && *seq >= conn.v1.min_seq) else {
            self.c.unknown_job += 1;
            return reject(conn, id, 21, "Job not found");
        };
        let size = self.cfg.extranonce2_size;
        let Some(e2) = p.get(2).and_then(Value::as_str).and_then(unhex).filter(|e| e.len() == size) else {
            self.c.invalid += 1;
            return reject(conn, id, 20, "Incorrect size of extranonce2");
        };
        let Some(ntime) = hex_word(p.get(3)).filter(|t| *t >= job.ntime && *t - job.ntime <= NTIME_WINDOW) else {
            self.c.invalid += 1;
            return reject(conn, id, 20, "Invalid or out of range ntime");
        };
        let Some(nonce) = hex_word(p.get(4)) else {
            self.c.invalid += 1;
            return reject(conn, id, 20, "Invalid nonce");
        };
        let version = match p.get(5) {
            None => job.version,
            Some(v) => match hex_word(Some(v)) {
                Some(bits) if bits & !conn.v1.mask == 0 => rolled(job.version, conn.v1.mask, bits),
                _ => {
                    self.c.invalid += 1;
                    return reject(conn, id, 20, "Invalid version bits");
                }
            },
        };
        let key = (*seq, e2.clone(), ntime, nonce, version);
        if conn.v1.seen.contains(&key) {
            self.c.duplicate += 1;
            return reject(conn, id, 22, "Duplicate share");
        }
        let root = merkle_root(job, &conn.v1.extranonce1, &e2);
        let hash = self.v1.algo.hash(&header(job, version, &root, ntime, nonce));
        if !meets(&hash, &self.v1.algo.target(self.cfg.diff_f)) {
            self.c.low_diff += 1;
            return reject(conn, id, 23, "Low difficulty share");
        }
        let stale = Some(*seq) != current;
        conn.v1.seen.insert(key);
        self.c.accepted += 1;
        if stale {
            self.c.stale += 1;
        }
        self.c.hashes += (self.cfg.diff_f * self.v1.algo.divider()) as u64;
        reply(conn, id, json!(true))
    }
}
