//! Transparent jump ports: bytes from a client go unparsed to a fixed target and back, with
//! no stratum logic and no miner stats. Either side may be TLS: `"tls": true` on the bind
//! ends TLS here, `"target-tls": true` starts TLS toward the target. With
//! `target-tls-fingerprint` only that certificate is accepted; without it any is (the
//! target is often a second proxy with a self-signed certificate) and its SHA-256
//! fingerprint is logged whenever it changes. Either way it is kept in
//! [`JumpPortStats::target_fingerprint`].
//!
//! Memory is bounded: a side is read only while the other side's output queue has room
//! under [`JUMP_BUFFER`], so a peer that stops reading stops the other peer by TCP flow
//! control. A writable event on the slow side resumes the reading. End of stream on one
//! side is passed on as a half-close; an error on either side, or both directions ended,
//! closes the pair, and so does silence both ways for the port's idle timeout.
//!
//! A target named by host is looked up by the resolver thread, never on the loop; a
//! client that arrives before the first answer waits for it (bounded in number and time).

mod pairs;
mod policy;

use super::Proxy;
use crate::config::JumpBind;
use crate::net::resolve::Lookup;
use crate::net::tls::{self, Trust};
use crate::net::{Conn, Source, proxy_protocol};
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry};
pub(super) use pairs::Jumps;
use pairs::{Half, Jump};
use policy::{Expiry, Route};
use rustls::{ServerConfig, ServerConnection};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most bytes queued toward one side of a jump.
pub const JUMP_BUFFER: usize = 64 * 1024;
/// Largest single read.
pub(super) const READ_CHUNK: usize = 16 * 1024;
/// Room kept for TLS record overhead, so a TLS queue stays under the bound too.
pub(super) const TLS_SLACK: usize = 256;

/// A client accepted before its target's address is known.
#[derive(Debug)]
pub(super) struct Waiting {
    port: usize,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
    early: Vec<u8>,
    since: Instant,
}

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
    pub bind: JumpBind,
    /// The target's last address from the resolver, used while a fresh answer is on its
    /// way or DNS is down.
    pub resolved: Option<SocketAddr>,
    /// Why the last lookup failed, until one succeeds (refuses clients while no address
    /// was ever known).
    pub lookup_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Client,
    Target,
}

fn register(registry: &Registry, conn: &mut Conn, source: Source) -> io::Result<()> {
    registry.register(conn.stream(), source.token(), Interest::READABLE | Interest::WRITABLE)
}

impl Proxy {
    /// Counters of each transparent port, in bind order.
    /// Transparent pairs open now.
    pub(super) fn jumps_open(&self) -> usize {
        self.jumps.pairs.len()
    }

    pub fn jump_stats(&self) -> &[JumpPortStats] {
        &self.jumps.stats
    }

    /// Starts a jump for an accepted client: connects to the target (non-blocking); a
    /// target that cannot be reached closes the client. `early` is what the client sent
    /// along with a PROXY header.
    pub(super) fn open_jump(
        &mut self,
        port: usize,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<Arc<ServerConfig>>,
        early: Vec<u8>,
        now: Instant,
    ) {
        self.start_jump(Waiting { port, stream, peer, tls, early, since: now }, now);
    }

    /// Keeps each target's address fresh (asked at start, then whenever the resolver's
    /// answer ages out), so clients rarely wait for a lookup, and moves the waiting clients
    /// on. The only place jump code asks the resolver, so each answer (a failure is handed
    /// out once) reaches its port. Never getaddrinfo on the loop: a slow DNS would stall
    /// every miner.
    pub(super) fn resolve_jump_targets(&mut self, now: Instant) {
        for t in &mut self.jumps.targets {
            match self.resolver.lookup(&t.bind.target, now) {
                Lookup::Ready(a) => (t.resolved, t.lookup_error) = (Some(a), None),
                Lookup::Failed(e) => {
                    log::warn!("jump target {}: {e}", t.bind.target);
                    t.lookup_error = Some(e);
                }
                Lookup::Pending => {}
            }
        }
        self.retry_waiting_jumps(now);
    }

    /// Clients waiting for their target's address go on, wait on, or are refused. One
    /// whose client left meanwhile is dropped.
    fn retry_waiting_jumps(&mut self, now: Instant) {
        for w in std::mem::take(&mut self.jumps.waiting) {
            if matches!(w.stream.peek(&mut [0u8; 1]), Ok(0)) {
                log::debug!("jump {}: the client left while its target's address was looked up", w.peer);
                continue;
            }
            self.start_jump(w, now);
        }
    }

    fn start_jump(&mut self, w: Waiting, now: Instant) {
        let Waiting { port, stream, peer, tls, early, since } = w;
        let Some(JumpTarget { bind: t, resolved, lookup_error }) = self.jumps.targets.get(port).cloned() else { return };
        let local = stream.local_addr().ok();
        let fail = |jumps: &mut Jumps, why: String| {
            log::warn!("jump {peer} -> {}: {why}; closing the client", t.target);
            jumps.stats[port].failed += 1;
        };
        let waited = now.saturating_duration_since(since);
        let addr = match policy::route(resolved, lookup_error.as_deref(), waited, self.jumps.waiting.len()) {
            Route::Connect(addr) => addr,
            Route::Wait => return self.jumps.waiting.push(Waiting { port, stream, peer, tls, early, since }),
            Route::Refuse(why) => return fail(&mut self.jumps, why),
        };
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
            let trust = t.fingerprint.map_or(Trust::AnyCert { log: false }, Trust::Pinned);
            match tls::client::connect(&t.target, trust) {
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
        entry.insert(Jump {
            port,
            peer,
            client: half(client),
            target: half(target),
            connected: false,
            early,
            fingerprint_noted: false,
            since,
            last_io: now,
            closing: false,
        });
        if self.jumps.buf.is_empty() {
            self.jumps.buf = vec![0; READ_CHUNK];
        }
        let s = &mut self.jumps.stats[port];
        s.active += 1;
        s.total += 1;
        log::debug!("jump {peer} -> {} opened", t.target);
    }

    pub(super) fn jump_event(&mut self, key: usize, side: Side, event: &Event, now: Instant) {
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
        // Each pump reads until the socket would block or the other side is full, so an
        // event will come. The exception is room held for a TLS handshake: when it ends
        // during this round, no event says so, hence another round.
        for _ in 0..4 {
            let before = self.jumps.handshaking(key);
            let moved = self.jumps.pump(key, Side::Client) | self.jumps.pump(key, Side::Target);
            if moved && let Some(j) = self.jumps.pairs.get_mut(key) {
                j.last_io = now;
            }
            if !moved && self.jumps.handshaking(key) == before {
                break;
            }
        }
        if side == Side::Target && self.jumps.pairs.get(key).is_some_and(|j| !j.fingerprint_noted) {
            self.jumps.note_fingerprint(key);
        }
    }

    /// Once a second: targets not reached in time, pairs silent past their port's idle
    /// timeout, and the targets' addresses kept fresh for the next client.
    pub(super) fn jump_tick(&mut self, now: Instant) {
        self.resolve_jump_targets(now);
        let targets = &self.jumps.targets;
        let expired: Vec<(usize, Expiry)> = self
            .jumps
            .pairs
            .iter()
            .filter(|(_, j)| !j.closing)
            .filter_map(|(k, j)| {
                let reached = j.connected && !j.target.conn.is_handshaking();
                let idle = Duration::from_secs(targets[j.port].bind.idle_secs);
                policy::expiry(reached, j.since, j.last_io, idle, now).map(|e| (k, e))
            })
            .collect();
        for (key, why) in expired {
            let j = &self.jumps.pairs[key];
            let target = &self.jumps.stats[j.port].target;
            match why {
                Expiry::Unreached => {
                    log::warn!("jump {} -> {target}: target not reached in time; closing the client", j.peer);
                    self.jumps.stats[j.port].failed += 1;
                    self.jumps.close(key, "target connect timeout");
                }
                Expiry::Idle => {
                    log::info!("jump {} -> {target}: idle timeout; closing both sides", j.peer);
                    self.jumps.close(key, "idle timeout");
                }
            }
        }
        self.reap_jumps();
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
