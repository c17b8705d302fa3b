//! The stratum v1 side of minersim (`--protocol v1`): miners that really hash.
//!
//! On connect a miner sends, without waiting, `mining.configure` (with `--version-rolling`),
//! `mining.subscribe`, `mining.authorize` and `mining.extranonce.subscribe`. Once it has
//! an extranonce1, a difficulty and a job it hashes headers (sha256d or scrypt), rolling
//! the nonce, then the extranonce2 when the nonce wraps, and submits every header that
//! meets the target. With version rolling granted, each share found moves the version bits
//! to the next value inside the mask. All miners share the event loop: between polls each
//! hashing miner gets a slice of nonces in turn, for at most a few milliseconds.
//!
//! `mining.set_extranonce` replaces the extranonce1 and drops the job (the pool's next
//! notify brings a fresh one); `client.reconnect` closes the connection and opens a new
//! one to the given host and port, or the same address, after the given wait.

use super::common::v1::{Algo, Job, header, meets, merkle_root};
use super::common::{hex, unhex};
use super::{Sim, State};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

const CONFIGURE_ID: u64 = 1;
const SUBSCRIBE_ID: u64 = 2;
const AUTHORIZE_ID: u64 = 3;
const EXTRANONCE_ID: u64 = 4;
/// Nonces one miner hashes before the next miner's turn.
const SLICE: u32 = 512;
/// Hashes between looks at the clock (scrypt looks after every hash: one costs
/// milliseconds in a debug build).
const CLOCK_EVERY: u32 = 64;

/// One v1 miner's mining state.
#[derive(Default)]
pub struct V1Miner {
    extranonce1: Option<Vec<u8>>,
    extranonce2_size: usize,
    extranonce2: u64,
    diff: Option<f64>,
    target: [u32; 8],
    mask: u32,
    version_step: u32,
    job: Option<Job>,
    /// The header being rolled, and its first 64 bytes already hashed.
    work: Option<([u8; 80], Sha256)>,
    nonce: u32,
}

/// Spreads the low bits of `n` over the set bits of `mask` (the version bits to roll).
fn deposit(mut n: u32, mask: u32) -> u32 {
    let mut out = 0;
    for bit in 0..32 {
        if mask & (1 << bit) != 0 {
            if n & 1 != 0 {
                out |= 1 << bit;
            }
            n >>= 1;
        }
    }
    out
}

impl V1Miner {
    fn version_bits(&self) -> u32 {
        deposit(self.version_step, self.mask)
    }

    fn extranonce2_bytes(&self) -> Vec<u8> {
        let mut e2 = vec![0u8; self.extranonce2_size];
        let n = self.extranonce2.to_be_bytes();
        let k = self.extranonce2_size.min(8);
        e2[self.extranonce2_size - k..].copy_from_slice(&n[8 - k..]);
        e2
    }

    /// Builds the header to roll, when everything needed has arrived.
    fn prepare(&mut self, wrong_extranonce: bool) {
        self.work = None;
        let (Some(job), Some(e1), Some(_)) = (&self.job, &self.extranonce1, self.diff) else { return };
        let mut e1 = e1.clone();
        if wrong_extranonce && let Some(last) = e1.last_mut() {
            *last ^= 0x5a;
        }
        let root = merkle_root(job, &e1, &self.extranonce2_bytes());
        let version = (job.version & !self.mask) | self.version_bits();
        let h = header(job, version, &root, job.ntime, 0);
        let mut mid = Sha256::new();
        mid.update(&h[..64]);
        self.work = Some((h, mid));
        self.nonce = 0;
    }
}

impl Sim {
    /// The v1 opening lines, sent at once.
    pub fn v1_hello(&mut self, i: usize) -> bool {
        let cfg = &self.cfg;
        let mut lines = Vec::new();
        if cfg.version_rolling {
            lines.push(json!({"id": CONFIGURE_ID, "method": "mining.configure", "params": [["version-rolling"],
                {"version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2}]}));
        }
        lines.push(json!({"id": SUBSCRIBE_ID, "method": "mining.subscribe", "params": [cfg.agent]}));
        lines.push(json!({"id": AUTHORIZE_ID, "method": "mining.authorize", "params": [cfg.user, cfg.pass]}));
        lines.push(json!({"id": EXTRANONCE_ID, "method": "mining.extranonce.subscribe", "params": []}));
        self.miners[i].v1 = V1Miner::default();
        self.miners[i].next_id = EXTRANONCE_ID;
        lines.iter().all(|l| self.send(i, l))
    }

    /// Handles one line from the pool; false closes the connection.
    pub fn v1_line(&mut self, i: usize, msg: &Value) -> bool {
        let params = msg.get("params").and_then(Value::as_array).cloned().unwrap_or_default();
        let wrong = self.cfg.wrong_extranonce;
        match msg.get("method").and_then(Value::as_str) {
            Some("mining.notify") => return self.v1_notify(i, &params),
            Some("mining.set_difficulty") => {
                let Some(d) = params.first().and_then(Value::as_f64).filter(|d| *d > 0.0) else { return true };
                let algo = self.cfg.algo;
                let m = &mut self.miners[i].v1;
                m.diff = Some(d);
                m.target = algo.target(d);
                if m.work.is_none() {
                    m.prepare(wrong);
                }
                return true;
            }
            Some("mining.set_extranonce") => {
                let Some(e1) = params.first().and_then(Value::as_str).and_then(unhex) else { return false };
                let m = &mut self.miners[i].v1;
                m.extranonce1 = Some(e1);
                if let Some(size) = params.get(1).and_then(Value::as_u64) {
                    m.extranonce2_size = size as usize;
                }
                m.extranonce2 = 0;
                m.job = None;
                m.work = None;
                self.st.extranonce_changes += 1;
                return true;
            }
            Some("client.reconnect") => {
                let host = params.first().and_then(Value::as_str);
                let port = params.get(1).and_then(|p| p.as_u64().or_else(|| p.as_str().and_then(|s| s.parse().ok())));
                let wait = params.get(2).and_then(Value::as_u64).unwrap_or(0);
                let addr = match (host, port) {
                    (Some(h), Some(p)) => (h, p as u16).to_socket_addrs().ok().and_then(|mut a| a.next()),
                    _ => None,
                };
                self.reconnects.push((Instant::now() + Duration::from_secs(wait), i, addr));
                self.st.reconnects += 1;
                return false;
            }
            Some(_) => return true,
            None => {}
        }
        let id = msg.get("id").and_then(Value::as_u64).unwrap_or(0);
        let ok = msg.get("error").is_none_or(Value::is_null) && msg.get("result").is_some_and(|r| !r.is_null() && r != &json!(false));
        let result = msg.get("result").cloned().unwrap_or(Value::Null);
        match id {
            CONFIGURE_ID => {
                let mask = result.get("version-rolling.mask").and_then(Value::as_str).and_then(|m| u32::from_str_radix(m, 16).ok());
                if result.get("version-rolling") == Some(&json!(true)) {
                    self.miners[i].v1.mask = mask.unwrap_or(0);
                }
                true
            }
            SUBSCRIBE_ID => {
                let e1 = result.get(1).and_then(Value::as_str).and_then(unhex);
                let size = result.get(2).and_then(Value::as_u64);
                let (true, Some(e1), Some(size)) = (ok, e1, size) else {
                    self.st.login_failed += 1;
                    return false;
                };
                let m = &mut self.miners[i].v1;
                m.extranonce1 = Some(e1);
                m.extranonce2_size = size as usize;
                m.prepare(wrong);
                true
            }
            AUTHORIZE_ID => {
                if !ok {
                    self.st.login_failed += 1;
                    return false;
                }
                self.miners[i].state = State::Active;
                self.st.logged_in += 1;
                if self.st.logged_in as usize == self.cfg.miners {
                    self.st.login_done = Some(self.start.elapsed());
                }
                true
            }
            EXTRANONCE_ID => true,
            _ => self.v1_reply(i, id, ok, msg),
        }
    }

    fn v1_reply(&mut self, i: usize, id: u64, ok: bool, msg: &Value) -> bool {
        let m = &mut self.miners[i];
        let Some(pos) = m.pending.iter().position(|(pid, _)| *pid == id) else { return true };
        let Some((_, sent)) = m.pending.remove(pos) else { return true };
        self.rtt.add(sent.elapsed().as_micros() as u64);
        if ok {
            self.st.accepted += 1;
        } else {
            let err = msg.get("error");
            let text = err.and_then(|e| e.get(1).or_else(|| e.get("message"))).and_then(Value::as_str).unwrap_or("rejected");
            self.count_reject(text.to_string());
        }
        true
    }

    fn v1_notify(&mut self, i: usize, p: &[Value]) -> bool {
        let s = |k: usize| p.get(k).and_then(Value::as_str);
        let word = |k: usize| s(k).and_then(|w| u32::from_str_radix(w, 16).ok());
        let branches: Option<Vec<[u8; 32]>> = p
            .get(4)
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|b| b.as_str().and_then(unhex).and_then(|v| <[u8; 32]>::try_from(v).ok())).collect());
        let (Some(id), Some(prev), Some(cb1), Some(cb2), Some(branches), Some(version), Some(nbits), Some(ntime)) =
            (s(0), s(1), s(2).and_then(unhex), s(3).and_then(unhex), branches, word(5), word(6), word(7))
        else {
            return false;
        };
        let job = Job { id: id.into(), prevhash: prev.into(), coinb1: cb1, coinb2: cb2, branches, version, nbits, ntime };
        self.note_job_id(i, id, true);
        let wrong = self.cfg.wrong_extranonce;
        let m = &mut self.miners[i].v1;
        m.job = Some(job);
        m.extranonce2 = m.extranonce2.wrapping_add(1);
        m.prepare(wrong);
        true
    }

    /// Whether any miner has work to hash.
    pub fn v1_busy(&self) -> bool {
        self.miners.iter().any(|m| m.state == State::Active && m.v1.work.is_some())
    }

    /// Hashes in slices, miner by miner, until `until`; submits what meets the target.
    pub fn v1_hash(&mut self, until: Instant) {
        let n = self.miners.len();
        let algo = self.cfg.algo;
        while Instant::now() < until && self.v1_busy() {
            for k in 0..n {
                let i = (self.hash_cursor + k) % n;
                if self.miners[i].state != State::Active {
                    continue;
                }
                let mut found = Vec::new();
                let m = &mut self.miners[i].v1;
                let Some((h, mid)) = m.work.as_mut() else { continue };
                for k in 0..SLICE {
                    if (algo == Algo::Scrypt || k % CLOCK_EVERY == 0) && k > 0 && Instant::now() >= until {
                        break;
                    }
                    let nonce = m.nonce;
                    h[76..80].copy_from_slice(&nonce.to_le_bytes());
                    let hash = match algo {
                        Algo::Sha256d => {
                            let mut s = mid.clone();
                            s.update(&h[64..]);
                            Sha256::digest(s.finalize()).into()
                        }
                        Algo::Scrypt => algo.hash(h),
                    };
                    self.st.hashes += 1;
                    if meets(&hash, &m.target) {
                        found.push(nonce);
                    }
                    m.nonce = m.nonce.wrapping_add(1);
                    if m.nonce == 0 {
                        m.extranonce2 = m.extranonce2.wrapping_add(1);
                        break;
                    }
                }
                let wrapped = m.nonce == 0;
                for nonce in found {
                    self.v1_submit(i, nonce);
                }
                let m = &mut self.miners[i].v1;
                if wrapped || (m.mask != 0 && self.cfg.version_rolling && m.version_step_due()) {
                    m.prepare(self.cfg.wrong_extranonce);
                }
                if Instant::now() >= until {
                    self.hash_cursor = (i + 1) % n;
                    return;
                }
            }
        }
    }

    fn v1_submit(&mut self, i: usize, nonce: u32) {
        let m = &mut self.miners[i];
        let Some(job) = &m.v1.job else { return };
        let mut params = vec![
            json!(self.cfg.user),
            json!(job.id),
            json!(hex(&m.v1.extranonce2_bytes())),
            json!(format!("{:08x}", job.ntime)),
            json!(format!("{nonce:08x}")),
        ];
        if m.v1.mask != 0 {
            params.push(json!(format!("{:08x}", m.v1.version_bits())));
            // The next share rolls the version: one more bit pattern inside the mask.
            m.v1.version_step = m.v1.version_step.wrapping_add(1);
        }
        m.next_id += 1;
        let id = m.next_id;
        m.pending.push_back((id, Instant::now()));
        if m.pending.len() > 1000 {
            m.pending.pop_front();
        }
        self.st.submitted += 1;
        if !self.send(i, &json!({"id": id, "method": "mining.submit", "params": params})) {
            self.kill(i);
        }
    }

    /// Reopens connections whose `client.reconnect` wait is over.
    pub fn v1_reconnects(&mut self, default: SocketAddr, poll: &mio::Poll) {
        let now = Instant::now();
        let due: Vec<(Instant, usize, Option<SocketAddr>)> = self.reconnects.iter().filter(|(at, ..)| *at <= now).copied().collect();
        self.reconnects.retain(|(at, ..)| *at > now);
        for (_, i, addr) in due {
            self.miners[i].state = State::Connecting;
            self.miners[i].rbuf.clear();
            self.miners[i].wbuf.clear();
            self.miners[i].pending.clear();
            self.open(i, addr.unwrap_or(default), poll);
        }
    }
}

impl V1Miner {
    /// Version rolling moves on after a share; the header must then be rebuilt.
    fn version_step_due(&self) -> bool {
        self.work.as_ref().is_some_and(|(h, _)| {
            let v = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            v & self.mask != self.version_bits()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::deposit;

    #[test]
    fn deposit_spreads_bits_over_the_mask() {
        assert_eq!(deposit(0b11, 0x1fff_e000), 0x6000);
        assert_eq!(deposit(1, 0x1fff_e000), 0x2000);
        assert_eq!(deposit(0, 0x1fff_e000), 0);
        assert_eq!(deposit(u32::MAX, 0x00c0_0000), 0x00c0_0000);
    }
}
