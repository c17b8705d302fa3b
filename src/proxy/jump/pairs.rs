//! The pairs of a jump port and the byte pump between their sides, apart from the loop
//! glue in `mod.rs`.

use super::{JUMP_BUFFER, JumpPortStats, JumpTarget, READ_CHUNK, Side, TLS_SLACK, Waiting};
use crate::net::Conn;
use crate::net::tls;
use slab::Slab;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Debug)]
pub(super) struct Half {
    pub(super) conn: Conn,
    /// This side sent its end of stream.
    pub(super) eof: bool,
    /// We passed the other side's end on (write half shut).
    pub(super) shut: bool,
    /// The other side ended; shut our write half once the queue is empty.
    pub(super) shut_wanted: bool,
    /// Plaintext rustls holds for us until our TLS handshake ends (not in `queued()`).
    pub(super) held: usize,
}

#[derive(Debug)]
pub(super) struct Jump {
    pub(super) port: usize,
    pub(super) peer: SocketAddr,
    pub(super) client: Half,
    pub(super) target: Half,
    pub(super) connected: bool,
    /// Plain bytes the client sent with its PROXY header, for the target.
    pub(super) early: Vec<u8>,
    /// The target's certificate was looked at (once per pair).
    pub(super) fingerprint_noted: bool,
    pub(super) since: Instant,
    /// When bytes last moved either way.
    pub(super) last_io: Instant,
    pub(super) closing: bool,
}

impl Jump {
    fn halves(&mut self, from: Side) -> (&mut Half, &mut Half) {
        match from {
            Side::Client => (&mut self.client, &mut self.target),
            Side::Target => (&mut self.target, &mut self.client),
        }
    }
}

/// Every jump pair and port, owned by the loop.
#[derive(Debug, Default)]
pub struct Jumps {
    pub(super) pairs: Slab<Jump>,
    pub(super) targets: Vec<JumpTarget>,
    pub(super) stats: Vec<JumpPortStats>,
    pub(super) closing: Vec<usize>,
    pub(super) buf: Vec<u8>,
    /// Clients waiting for their target's first address.
    pub(super) waiting: Vec<Waiting>,
}

impl Jumps {
    /// Adds a transparent port; returns its index.
    pub(in crate::proxy) fn add_port(&mut self, addr: SocketAddr, target: JumpTarget) -> usize {
        let stats = JumpPortStats {
            addr,
            target: target.bind.target.clone(),
            active: 0,
            total: 0,
            failed: 0,
            bytes_up: 0,
            bytes_down: 0,
            max_queued: 0,
            target_fingerprint: None,
        };
        self.targets.push(target);
        self.stats.push(stats);
        self.stats.len() - 1
    }

    pub(super) fn close(&mut self, key: usize, why: &str) {
        let Some(j) = self.pairs.get_mut(key) else { return };
        if j.closing {
            return;
        }
        j.closing = true;
        log::debug!("jump {} -> {}: closing: {why}", j.peer, self.stats[j.port].target);
        self.closing.push(key);
    }

    /// Moves bytes `from` -> the other side while the other side has room; returns
    /// whether anything was read.
    pub(super) fn pump(&mut self, key: usize, from: Side) -> bool {
        let Jumps { pairs, stats, buf, .. } = self;
        let Some(j) = pairs.get_mut(key) else { return false };
        if j.closing || !j.connected {
            return false;
        }
        let mut moved = false;
        let stats = &mut stats[j.port];
        let (src, dst) = j.halves(from);
        let to = match from {
            Side::Client => Side::Target,
            Side::Target => Side::Client,
        };
        // The side that failed, and why.
        let failed: Option<(Side, String)> = loop {
            if src.eof {
                break None;
            }
            if !dst.conn.is_handshaking() {
                dst.held = 0;
            }
            let room = JUMP_BUFFER.saturating_sub(dst.conn.queued() + dst.held + TLS_SLACK).min(READ_CHUNK);
            if room == 0 {
                break None;
            }
            match src.conn.read(&mut buf[..room]) {
                Ok(0) => {
                    moved = true;
                    src.eof = true;
                    dst.shut_wanted = true;
                    match dst.conn.close_write() {
                        Ok(done) => dst.shut = done,
                        Err(e) => break Some((to, format!("{e}"))),
                    }
                }
                Ok(n) => {
                    moved = true;
                    if let Err(e) = dst.conn.send(&buf[..n]) {
                        break Some((to, format!("{e}")));
                    }
                    if dst.conn.is_handshaking() {
                        dst.held += n;
                    }
                    stats.max_queued = stats.max_queued.max(dst.conn.queued());
                    match from {
                        Side::Client => stats.bytes_up += n as u64,
                        Side::Target => stats.bytes_down += n as u64,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Some((from, format!("{e}"))),
            }
        };
        let done = j.client.eof && j.target.eof && j.client.shut && j.target.shut;
        if let Some((side, why)) = failed {
            if side == Side::Target && j.target.conn.is_handshaking() {
                // The target was never reached: a refused certificate (pin mismatch) or a
                // failed handshake counts like an unreachable target.
                log::warn!("jump {} -> {}: target TLS handshake failed: {why}; closing the client", j.peer, stats.target);
                stats.failed += 1;
            } else {
                let name = if side == Side::Client { "client" } else { "target" };
                log::info!("jump {} -> {}: {name} side: {why}; closing", j.peer, stats.target);
            }
            self.close(key, &why);
            return false;
        } else if done {
            self.close(key, "both sides finished");
            return false;
        }
        moved
    }

    pub(super) fn handshaking(&self, key: usize) -> (bool, bool) {
        self.pairs.get(key).map_or((false, false), |j| (j.client.conn.is_handshaking(), j.target.conn.is_handshaking()))
    }

    /// Writable: flush the queue and finish a pending half-close.
    pub(super) fn flush(&mut self, key: usize, side: Side) {
        let Some(j) = self.pairs.get_mut(key) else { return };
        let (half, _) = j.halves(side);
        let mut result = half.conn.flush();
        if result.is_ok() && half.shut_wanted && !half.shut {
            result = half.conn.close_write().map(|done| half.shut = done);
        }
        if let Err(e) = result {
            let why = format!("{e}");
            log::info!("jump {} -> {}: {why}; closing", j.peer, self.stats[j.port].target);
            self.close(key, &why);
        }
    }

    /// Logs the target's certificate fingerprint when it is new for this port.
    pub(super) fn note_fingerprint(&mut self, key: usize) {
        let Some(j) = self.pairs.get_mut(key) else { return };
        let Some(tls) = j.target.conn.tls() else {
            j.fingerprint_noted = true;
            return;
        };
        if tls.is_handshaking() {
            return;
        }
        j.fingerprint_noted = true;
        let Some(cert) = tls.peer_certificates().and_then(|c| c.first()) else { return };
        let fp = tls::fingerprint(cert);
        let stats = &mut self.stats[j.port];
        if stats.target_fingerprint.as_deref() != Some(fp.as_str()) {
            if self.targets[j.port].bind.fingerprint.is_none() {
                log::warn!(
                    "jump port {} -> {}: target certificate not verified; its SHA-256 fingerprint is {fp}",
                    stats.addr,
                    stats.target
                );
            }
            stats.target_fingerprint = Some(fp);
        }
    }
}
