//! Listening ports and what an accepted connection becomes: a miner (plain or TLS), a
//! transparent jump (see `jump.rs`), or first an `Incoming` connection that must send its
//! PROXY protocol header before it is either of those.

use super::jump::{JumpTarget, Jumps};
use super::{Miner, Proxy};
use crate::config::{BindKind, BindProtocol, Config, Mode};
use crate::logs::Topic;
use crate::net::Source;
use crate::net::proxy_protocol::{self, Parsed};
use crate::net::tls::{ServerTls, server_config};
use crate::pool::Groups;
use crate::{DEFAULT_GROUP, GroupId, MinerId};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll};
use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The PROXY header must arrive this soon after connecting.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// One listening socket and what it serves.
pub(super) struct Listener {
    pub socket: TcpListener,
    pub addr: SocketAddr,
    pub how: Serve,
    pub proxy_protocol: bool,
}

/// What an accepted connection on a port becomes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Serve {
    tls: bool,
    /// Index of the transparent port, or `None` for stratum.
    jump: Option<usize>,
    /// The pool group miners on this port mine to.
    group: GroupId,
    /// The dialects the port takes.
    protocol: BindProtocol,
    /// The bind's index (its vardiff settings).
    bind: u8,
}

/// A connection waiting for its PROXY header.
#[derive(Debug)]
pub(super) struct Incoming {
    stream: TcpStream,
    peer: SocketAddr,
    how: Serve,
    buf: Vec<u8>,
    since: Instant,
}

/// Binds every configured port. TLS settings are checked (and a self-signed certificate
/// made) only when some bind uses TLS.
/// Listening sockets a live upgrade hands over, by bind index.
pub(super) type Inherited = Vec<Option<std::net::TcpListener>>;

pub(super) fn open(
    cfg: &Config,
    groups: &Groups,
    poll: &Poll,
    mut inherited: Option<Inherited>,
) -> io::Result<(Vec<Listener>, Option<ServerTls>, Jumps)> {
    let server_tls = if cfg.binds.iter().any(|b| b.tls) {
        let tls = server_config(&cfg.tls).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let source = if cfg.tls.cert.is_some() { "certificate" } else { "self-signed certificate" };
        log::info!("TLS {source} SHA-256 fingerprint {}", tls.fingerprint);
        Some(tls)
    } else {
        None
    };
    let mut listeners = Vec::new();
    let mut jumps = Jumps::default();
    for bind in &cfg.binds {
        let handed = inherited.as_mut().and_then(|l| l.get_mut(listeners.len())).and_then(Option::take);
        let mut socket = match handed {
            // The old process's socket: connections queued in it meanwhile are not lost.
            Some(l) => {
                l.set_nonblocking(true)?;
                TcpListener::from_std(l)
            }
            None => crate::net::listen(bind.addr).map_err(|e| io::Error::new(e.kind(), format!("listen on {} failed: {e}", bind.addr)))?,
        };
        poll.registry().register(&mut socket, Source::Listener(listeners.len()).token(), Interest::READABLE)?;
        let addr = socket.local_addr()?;
        let jump = match &bind.kind {
            BindKind::Stratum => None,
            BindKind::Transparent(j) => {
                let t = JumpTarget { bind: j.clone(), resolved: None, lookup_error: None };
                Some(jumps.add_port(addr, t))
            }
        };
        let group = groups.find(&bind.group).unwrap_or(DEFAULT_GROUP);
        let in_group = if bind.group == crate::DEFAULT_GROUP_NAME { String::new() } else { format!(", pool group {}", bind.group) };
        let what = match (&bind.kind, cfg.mode) {
            (BindKind::Transparent(j), _) => format!("transparent to {}", j.target),
            (BindKind::Stratum, Mode::NiceHash) => format!("nicehash{in_group}"),
            (BindKind::Stratum, Mode::Simple) => format!("simple{in_group}"),
        };
        let extra = format!("{}{}", if bind.tls { ", TLS" } else { "" }, if bind.proxy_protocol { ", PROXY protocol" } else { "" });
        log::info!("listening on {addr} ({what}{extra})");
        let how = Serve { tls: bind.tls, jump, group, protocol: bind.protocol, bind: u8::try_from(listeners.len()).unwrap_or(u8::MAX) };
        listeners.push(Listener { socket, addr, how, proxy_protocol: bind.proxy_protocol });
    }
    Ok((listeners, server_tls, jumps))
}

impl Proxy {
    /// A connection accepted on listener `idx`.
    pub(super) fn accepted(&mut self, idx: usize, mut stream: TcpStream, peer: SocketAddr, now: Instant) {
        let Some(l) = self.listeners.get(idx) else { return };
        let how = l.how;
        if !l.proxy_protocol {
            return self.serve(how, stream, peer, Vec::new(), now);
        }
        let entry = self.incoming.vacant_entry();
        if let Err(e) = self.poll.registry().register(&mut stream, Source::Incoming(entry.key()).token(), Interest::READABLE) {
            log::warn!("{peer}: cannot register connection: {e}");
            return;
        }
        entry.insert(Incoming { stream, peer, how, buf: Vec::new(), since: now });
    }

    /// A connection with its real address (after any PROXY header): rate limit, then serve.
    fn serve(&mut self, how: Serve, stream: TcpStream, peer: SocketAddr, early: Vec<u8>, now: Instant) {
        let clock = self.clock(now);
        if !self.ratelimit.allow(peer.ip(), clock) {
            log::debug!("{peer}: rate limited, closing");
            return;
        }
        let tls = if how.tls { self.server_tls.as_ref().map(|t| t.config.clone()) } else { None };
        match how.jump {
            Some(port) => self.open_jump(port, stream, peer, tls, early, now),
            None => self.add_miner(stream, peer, how, tls, early, now),
        }
    }

    fn add_miner(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        how: Serve,
        tls: Option<Arc<ServerConfig>>,
        early: Vec<u8>,
        now: Instant,
    ) {
        let clock = self.clock(now);
        let entry = self.miners.vacant_entry();
        let key = entry.key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut stream, Source::Miner(key).token(), interest) {
            log::warn!("{peer}: cannot register connection: {e}");
            return;
        }
        let _ = stream.set_nodelay(true);
        self.next_seq += 1;
        let miner = entry.insert(Miner::new(self.next_seq, stream, peer, how.bind, how.group, how.protocol, clock, now));
        self.stats.on_connect();
        log::debug!("miner {peer} connected (#{})", self.next_seq);
        let id = MinerId(key);
        if let Some(cfg) = tls {
            match ServerConnection::new(cfg) {
                Ok(c) => miner.conn.start_tls(c),
                Err(e) => return self.close_miner(id, &format!("TLS: {e}")),
            }
        }
        if !early.is_empty() {
            if let Err(e) = miner.conn.unread(early) {
                let why = e.to_string();
                if self.log_limiter.admit(Topic::ConnectionRefused, &why, format_args!("{peer}"), now) {
                    log::info!("miner {peer}: {why}, closing");
                }
                return self.close_miner(id, &why);
            }
            // The socket may hold nothing more, so no event would come for these bytes.
            self.miner_event(id, true, false, false, now);
        }
    }

    /// Reads what a PROXY-protocol connection sent until its header is whole.
    pub(super) fn incoming_event(&mut self, key: usize, now: Instant) {
        let Some(inc) = self.incoming.get_mut(key) else { return };
        let mut chunk = [0u8; 512];
        let failed = loop {
            match inc.stream.read(&mut chunk) {
                Ok(0) => break Some("closed before the PROXY header".to_string()),
                Ok(n) => {
                    inc.buf.extend_from_slice(&chunk[..n]);
                    if inc.buf.len() > proxy_protocol::V2_MAX {
                        break None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Some(e.to_string()),
            }
        };
        let parsed = match failed {
            Some(why) => Err(why),
            None => proxy_protocol::parse(&inc.buf).map_err(|e| e.to_string()),
        };
        match parsed {
            Ok(Parsed::Incomplete) => {}
            Ok(Parsed::Done { len, source }) => {
                let mut inc = self.incoming.remove(key);
                let _ = self.poll.registry().deregister(&mut inc.stream);
                let peer = source.unwrap_or(inc.peer);
                log::debug!("{}: PROXY header says the client is {peer}", inc.peer);
                let early = inc.buf.split_off(len);
                self.serve(inc.how, inc.stream, peer, early, now);
            }
            Err(why) => {
                let mut inc = self.incoming.remove(key);
                if self.log_limiter.admit(Topic::ConnectionRefused, &why, format_args!("{}", inc.peer), now) {
                    log::info!("{}: {why}; closing", inc.peer);
                }
                let _ = self.poll.registry().deregister(&mut inc.stream);
            }
        }
    }

    /// Once a second: connections that never sent their PROXY header.
    pub(super) fn incoming_tick(&mut self, now: Instant) {
        let late: Vec<usize> =
            self.incoming.iter().filter(|(_, i)| now.saturating_duration_since(i.since) >= HEADER_TIMEOUT).map(|(k, _)| k).collect();
        for key in late {
            let mut inc = self.incoming.remove(key);
            if self.log_limiter.admit(Topic::ConnectionRefused, "no PROXY header in time", format_args!("{}", inc.peer), now) {
                log::info!("{}: no PROXY header within {} s; closing", inc.peer, HEADER_TIMEOUT.as_secs());
            }
            let _ = self.poll.registry().deregister(&mut inc.stream);
        }
    }
}

impl Proxy {
    /// SHA-256 fingerprint of the certificate TLS binds present, when one is in use.
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.server_tls.as_ref().map(|t| t.fingerprint.as_str())
    }
}
