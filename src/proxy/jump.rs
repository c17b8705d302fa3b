//! Transparent jump ports: bytes from a client go unparsed to a fixed target and back, with
//! no stratum logic and no miner stats. Either side may be TLS: `"tls": true` on the bind
//! ends TLS here, `"target-tls": true` starts TLS toward the target. The target's
//! certificate is not verified (the stream inside is the miner's own, often to a second
//! proxy with a self-signed certificate); its SHA-256 fingerprint is logged whenever it
//! changes, and kept in [`JumpPortStats::target_fingerprint`].
//!
//! Memory is bounded: a side is read only while the other side's output queue has room
//! under [`JUMP_BUFFER`], so a peer that stops reading stops the other peer by TCP flow
//! control. A writable event on the slow side resumes the reading. End of stream on one
//! side is passed on as a half-close; an error on either side, or both directions ended,
//! closes the pair.

use super::Proxy;
use crate::net::tls::{self, Trust};
use crate::net::{Conn, Source, proxy_protocol};
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry};
use rustls::{ServerConfig, ServerConnection};
use slab::Slab;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most bytes queued toward one side of a jump.
pub const JUMP_BUFFER: usize = 64 * 1024;
/// Largest single read.
const READ_CHUNK: usize = 16 * 1024;
/// Room kept for TLS record overhead, so a TLS queue stays under the bound too.
const TLS_SLACK: usize = 256;
/// Connecting to the target must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters of one transparent port, for the console, `/1/summary` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpPortStats {
    pub addr: SocketAddr,
    pub target: String,
    /// Pairs open now.
    pub active: u64,
    /// Pairs accepted since start.
    pub total: u64,
    /// Clients closed because the target could not be reached.
    pub failed: u64,
    /// Bytes client -> target.
    pub bytes_up: u64,
    /// Bytes target -> client.
    pub bytes_down: u64,
    /// Most bytes ever queued toward one side (stays at most [`JUMP_BUFFER`]).
    pub max_queued: usize,
    /// SHA-256 of the target's certificate last seen (target-tls only).
    pub target_fingerprint: Option<String>,
}

/// How a port reaches its target.
#[derive(Debug, Clone)]
pub(super) struct JumpTarget {
    pub target: String,
    pub tls: bool,
    pub proxy_protocol: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Client,
    Target,
}

#[derive(Debug)]
struct Half {
    conn: Conn,
    /// This side sent its end of stream.
    eof: bool,
    /// We passed the other side's end on (write half shut).
    shut: bool,
    /// The other side ended; shut our write half once the queue is empty.
    shut_wanted: bool,
    /// Plaintext rustls holds for us until our TLS handshake ends (not in `queued()`).
    held: usize,
}

#[derive(Debug)]
struct Jump {
    port: usize,
    peer: SocketAddr,
    client: Half,
    target: Half,
    connected: bool,
    /// Plain bytes the client sent with its PROXY header, for the target.
    early: Vec<u8>,
    since: Instant,
    closing: bool,
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
pub(super) struct Jumps {
    pairs: Slab<Jump>,
    pub targets: Vec<JumpTarget>,
    pub stats: Vec<JumpPortStats>,
    closing: Vec<usize>,
    buf: Vec<u8>,
}

impl Jumps {
    /// Adds a transparent port; returns its index.
    pub fn add_port(&mut self, addr: SocketAddr, target: JumpTarget) -> usize {
        let stats = JumpPortStats {
            addr,
            target: target.target.clone(),
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

    fn close(&mut self, key: usize, why: &str) {
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
    fn pump(&mut self, key: usize, from: Side) -> bool {
        let Jumps { pairs, stats, buf, .. } = self;
        let Some(j) = pairs.get_mut(key) else { return false };
        if j.closing || !j.connected {
            return false;
        }
        let mut moved = false;
        let stats = &mut stats[j.port];
        let (src, dst) = j.halves(from);
        let failed = loop {
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
                        Err(e) => break Some(format!("{e}")),
                    }
                }
                Ok(n) => {
                    moved = true;
                    if let Err(e) = dst.conn.send(&buf[..n]) {
                        break Some(format!("{e}"));
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
                Err(e) => break Some(format!("{} side: {e}", if from == Side::Client { "client" } else { "target" })),
            }
        };
        let done = j.client.eof && j.target.eof && j.client.shut && j.target.shut;
        if let Some(why) = failed {
            log::info!("jump {} -> {}: {why}; closing", j.peer, stats.target);
            self.close(key, &why);
            return false;
        } else if done {
            self.close(key, "both sides finished");
            return false;
        }
        moved
    }

    /// Writable: flush the queue and finish a pending half-close.
    fn flush(&mut self, key: usize, side: Side) {
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
    fn note_fingerprint(&mut self, key: usize) {
        let Some(j) = self.pairs.get(key) else { return };
        let Some(cert) = j.target.conn.tls().filter(|t| !t.is_handshaking()).and_then(|t| t.peer_certificates()?.first().cloned()) else {
            return;
        };
        let fp = tls::fingerprint(&cert);
        let stats = &mut self.stats[j.port];
        if stats.target_fingerprint.as_deref() != Some(fp.as_str()) {
            log::warn!("jump port {} -> {}: target certificate not verified; its SHA-256 fingerprint is {fp}", stats.addr, stats.target);
            stats.target_fingerprint = Some(fp);
        }
    }
}

fn register(registry: &Registry, conn: &mut Conn, source: Source) -> io::Result<()> {
    registry.register(conn.stream(), source.token(), Interest::READABLE | Interest::WRITABLE)
}

impl Proxy {
    /// Counters of each transparent port, in bind order.
    pub fn jump_stats(&self) -> &[JumpPortStats] {
        &self.jumps.stats
    }

    /// Starts a jump for an accepted client: connects to the target (non-blocking); a
    /// target that cannot be reached closes the client. `early` is what the client sent
    /// along with a PROXY header.
    pub(super) fn open_jump(&mut self, port: usize, stream: TcpStream, peer: SocketAddr, tls: Option<Arc<ServerConfig>>, early: Vec<u8>) {
        let now = Instant::now();
        let Some(t) = self.jumps.targets.get(port).cloned() else { return };
        let local = stream.local_addr().ok();
        let fail = |jumps: &mut Jumps, why: String| {
            log::warn!("jump {peer} -> {}: {why}; closing the client", t.target);
            jumps.stats[port].failed += 1;
        };
        let target = t.target.to_socket_addrs().ok().and_then(|mut a| a.next());
        let Some(addr) = target else { return fail(&mut self.jumps, "cannot resolve the target".into()) };
        let target = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return fail(&mut self.jumps, format!("cannot reach the target: {e}")),
        };
        let _ = stream.set_nodelay(true);
        let _ = target.set_nodelay(true);
        let mut client = Conn::new(stream, JUMP_BUFFER + READ_CHUNK);
        let mut target = Conn::new(target, JUMP_BUFFER + READ_CHUNK);
        if let Some(cfg) = tls {
            match ServerConnection::new(cfg) {
                Ok(c) => client.start_tls(c),
                Err(e) => return fail(&mut self.jumps, format!("TLS: {e}")),
            }
        }
        // Plain early bytes go to the target once connected; TLS ones are records to decrypt.
        let mut early = early;
        if client.tls().is_some()
            && !early.is_empty()
            && let Err(e) = client.unread(std::mem::take(&mut early))
        {
            return fail(&mut self.jumps, format!("{e}"));
        }
        if t.tls {
            match tls::client::connect(&t.target, Trust::AnyCert { log: false }) {
                Ok(c) => target.start_tls(c),
                Err(e) => return fail(&mut self.jumps, e.to_string()),
            }
        }
        if t.proxy_protocol
            && let Some(local) = local
        {
            // Queued ahead of everything else, in the clear even on a TLS target (it sits
            // below TLS, as HAProxy sends it).
            target.queue_raw(proxy_protocol::v1_header(peer, local).as_bytes());
        }
        let entry = self.jumps.pairs.vacant_entry();
        let key = entry.key();
        let registry = self.poll.registry();
        if let Err(e) =
            register(registry, &mut client, Source::JumpClient(key)).and_then(|_| register(registry, &mut target, Source::JumpTarget(key)))
        {
            let _ = registry.deregister(client.stream());
            return fail(&mut self.jumps, format!("cannot register sockets: {e}"));
        }
        let half = |conn| Half { conn, eof: false, shut: false, shut_wanted: false, held: 0 };
        entry.insert(Jump { port, peer, client: half(client), target: half(target), connected: false, early, since: now, closing: false });
        if self.jumps.buf.is_empty() {
            self.jumps.buf = vec![0; READ_CHUNK];
        }
        let s = &mut self.jumps.stats[port];
        s.active += 1;
        s.total += 1;
        log::debug!("jump {peer} -> {} opened", t.target);
    }

    pub(super) fn jump_event(&mut self, key: usize, side: Side, event: &Event) {
        let Some(j) = self.jumps.pairs.get_mut(key) else { return };
        if j.closing {
            return;
        }
        if side == Side::Target && !j.connected {
            let stream = j.target.conn.stream();
            let why = match stream.take_error() {
                Ok(Some(e)) | Err(e) => Some(e.to_string()),
                Ok(None) => match stream.peer_addr() {
                    Ok(_) => None,
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                    Err(e) => Some(e.to_string()),
                },
            };
            if let Some(why) = why {
                log::warn!("jump {} -> {}: cannot reach the target: {why}; closing the client", j.peer, self.jumps.stats[j.port].target);
                self.jumps.stats[j.port].failed += 1;
                return self.jumps.close(key, "target unreachable");
            }
            j.connected = true;
            let early = std::mem::take(&mut j.early);
            if !early.is_empty() {
                self.jumps.stats[j.port].bytes_up += early.len() as u64;
                if let Err(e) = j.target.conn.send(&early) {
                    return self.jumps.close(key, &e.to_string());
                }
            }
        }
        if event.is_writable() {
            self.jumps.flush(key, side);
        }
        // Either side's event may free room or bring bytes: move both directions, and go
        // again while bytes moved, since a handshake ending on one side frees room for the
        // other without any further socket event.
        while self.jumps.pump(key, Side::Client) | self.jumps.pump(key, Side::Target) {}
        if side == Side::Target {
            self.jumps.note_fingerprint(key);
        }
    }

    /// Once a second: targets that take too long to answer.
    pub(super) fn jump_tick(&mut self, now: Instant) {
        let late: Vec<usize> = self
            .jumps
            .pairs
            .iter()
            .filter(|(_, j)| !j.connected && !j.closing && now.saturating_duration_since(j.since) >= CONNECT_TIMEOUT)
            .map(|(k, _)| k)
            .collect();
        for key in late {
            let j = &self.jumps.pairs[key];
            log::warn!("jump {} -> {}: target connect timeout; closing the client", j.peer, self.jumps.stats[j.port].target);
            self.jumps.stats[j.port].failed += 1;
            self.jumps.close(key, "target connect timeout");
        }
    }

    /// Removes the pairs closed during this pass.
    pub(super) fn reap_jumps(&mut self) {
        while let Some(key) = self.jumps.closing.pop() {
            if !self.jumps.pairs.get(key).is_some_and(|j| j.closing) {
                continue;
            }
            let mut j = self.jumps.pairs.remove(key);
            for half in [&mut j.client, &mut j.target] {
                let _ = half.conn.flush();
                let _ = self.poll.registry().deregister(half.conn.stream());
            }
            let s = &mut self.jumps.stats[j.port];
            s.active = s.active.saturating_sub(1);
        }
    }
}
