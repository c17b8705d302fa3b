//! Live upgrade: the running proxy starts the new binary (`--upgrade PID` or SIGUSR2) with
//! the same arguments and hands it its listening sockets and every plaintext miner and
//! pool connection, with their state, so no connection attempt is refused and those
//! miners keep their TCP connection and never notice.
//!
//! The sequence, between two passes of the old process's loop (it polls nothing meanwhile:
//! whatever arrives waits in the kernel's buffers for the new process):
//!
//! 1. The old process closes its accounts store (the new one takes its lock), makes a
//!    Unix socket pair and starts the new binary with one end (`STRATUM_PROXY_HANDOVER`
//!    names the descriptor).
//! 2. It sends a snapshot, versioned JSON (`FORMAT`, `VERSION`) preceded by its length,
//!    then the sockets it names (`SCM_RIGHTS`, in batches).
//! 3. The new process rebuilds the proxy on them (groups and accounts from its own config
//!    and store; worker records, hashrate windows and the day's history from the
//!    snapshot) and answers `ok`.
//! 4. The old process drops its copies of the handed sockets (the connections stay with the
//!    new process), stops listening, and drains what could not move: TLS miners (rustls
//!    cannot rebuild a session from its secrets) get pool connections of their own and are
//!    served until they leave, jump pairs until they close, at most `DRAIN_LIMIT`; then it
//!    exits.
//!
//! Any failure before `ok` (the binary does not start, the snapshot does not parse, the
//! versions differ) leaves the old process serving as before, with a log line saying why.
//!
//! What restarts: the duplicate-share memory of pool jobs, rigs remembered for restore or
//! quarantine. Worker records start over only when the new config names workers another
//! way, and a group's measured split only when its pools changed with the upgrade.
//! Pool connections over TLS and ones still connecting are opened again by the new process
//! (their miners get the new session's job, as after a failover).

use super::accounts::worker_user;
use super::miner::{CnMiner, Identity, Miner, MinerState, Proto, V1Miner};
use super::upstream::{Link, PoolProto};
use super::{MAX_MINER_OUT, MAX_POOL_OUT, Proxy, Route};
use crate::config::{BindProtocol, Config};
use crate::net::fdpass::{self, MAX_FDS};
use crate::net::{Conn, Source};
use crate::pool::Session;
use crate::pool::group::GroupSnapshot;
use crate::splitter::vardiff::MinerDiff;
use crate::splitter::{Alone, Mapper, MapperSnapshot, NewLink, Upstream};
use crate::stats::history::HistorySnapshot;
use crate::stats::window::WindowsSnapshot;
use crate::stats::workers::WorkersSnapshot;
use crate::stats::{HashWindows, History, RateMeter, Verdicts};
use crate::{MinerId, UpstreamId};
use mio::Interest;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// What the snapshot says it is.
pub const FORMAT: &str = "stratum-proxy-handover";
/// Old and new process must speak the same version; a change of the snapshot's shape
/// changes it, except for fields added as optional (`serde(default)`), which a process
/// without them ignores and one with them does without, so neighbouring releases still
/// hand over to each other.
pub const VERSION: u32 = 1;
/// The environment variable naming the new process's end of the handover socket.
pub const ENV: &str = "STRATUM_PROXY_HANDOVER";
/// The new process must answer within this.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);
/// The old process serves what could not move (TLS miners, jump pairs) this long at most.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(300);
/// Largest snapshot accepted (a 100k-miner farm's is some tens of MB).
const MAX_SNAPSHOT: usize = 512 << 20;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: String,
    version: u32,
    /// Time since the old process started, so the clocks (seconds since start) go on.
    uptime_ms: u64,
    /// How many descriptors follow the snapshot.
    fds: usize,
    /// Listening sockets by bind index (indices into the descriptors).
    listeners: Vec<Option<usize>>,
    http: Option<usize>,
    upstreams: Vec<UpstreamSnap>,
    miners: Vec<MinerSnap>,
    stats: StatsSnap,
    /// Worker records (added after version 1 was first released: optional).
    #[serde(default)]
    workers: Option<WorkersSnapshot>,
    /// Group hashrates and the weighted splits' measures (optional, as `workers`).
    #[serde(default)]
    groups: Vec<GroupSnapshot>,
    next_seq: u64,
    next_prefix: u16,
}

#[derive(Serialize, Deserialize)]
struct UpstreamSnap {
    /// Its id in the old process.
    id: usize,
    /// Its pool connection (with its session), when it could move.
    conn: Option<ConnSnap>,
    session: Option<crate::pool::session::SessionSnapshot>,
    proto: PoolProto,
    group: String,
    lane: usize,
    alone: Option<Alone>,
    mapper: MapperSnapshot,
}

#[derive(Serialize, Deserialize)]
struct ConnSnap {
    fd: usize,
    pending: Vec<u8>,
    out: Vec<u8>,
    rx: u64,
    tx: u64,
}

#[derive(Serialize, Deserialize)]
enum ProtoSnap {
    Undecided(BindProtocol),
    CryptoNote(CnMiner),
    V1(Box<V1Miner>),
}

#[derive(Serialize, Deserialize)]
struct MinerSnap {
    id: usize,
    conn: ConnSnap,
    seq: u64,
    peer: SocketAddr,
    /// 0 waiting for login, 1 logged in and waiting for a job (with the login's id), 2 ready.
    state: u8,
    login_id: Option<String>,
    group: String,
    port: u8,
    /// Its upstream (old id) and slot.
    route: Option<(usize, u16)>,
    rate: RateMeter,
    diff_mode: MinerDiff,
    proto: ProtoSnap,
    identity: Option<(String, String, Option<String>, Verdicts)>,
    worker: Option<String>,
    idle_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct StatsSnap {
    accepted: u64,
    rejected: u64,
    invalid: u64,
    expired: u64,
    connections: u64,
    max_miners: u64,
    best: [u64; 10],
    /// The proxy-wide hashrate windows and the day's history (optional, as `workers`).
    #[serde(default)]
    windows: Option<WindowsSnapshot>,
    #[serde(default)]
    history: Option<HistorySnapshot>,
}

/// Writes all of `buf`, on a blocking Unix socket.
fn write_all(sock: &mut UnixStream, buf: &[u8]) -> io::Result<()> {
    sock.write_all(buf)
}

impl Proxy {
    /// SIGUSR2 (or `--upgrade`): hands everything that can move to a new process. On any
    /// failure the proxy goes on as it was.
    pub(super) fn upgrade(&mut self, now: Instant) {
        if self.stopping.is_some() || self.draining.is_some() {
            log::warn!("upgrade asked while stopping or draining; ignored");
            return;
        }
        let Some(exe) = self.exe.clone() else {
            log::error!("upgrade failed: the proxy does not know its own binary");
            return;
        };
        log::info!("upgrade: starting {} and handing over", exe.display());
        // Submits gathered in this loop pass go to the pools now: the snapshot carries a
        // connection's unsent bytes, not the batch still being gathered.
        self.flush_links(now);
        // The store's lock is the new process's to take.
        self.close_accounts();
        match self.hand_over(&exe, now) {
            Ok(child) => {
                // Under systemd the new process is the service from now on: the old one
                // leaving once drained must not stop it. It answered "ok" once it serves,
                // so its readiness goes in the same datagram, sent by the process systemd
                // still takes as main (a unit's default `NotifyAccess=main` would drop a
                // READY=1 from the new pid sent before this).
                crate::net::notify::notify(&format!("MAINPID={child}\nREADY=1"));
                self.after_handover(child, now)
            }
            Err(e) => {
                log::error!("upgrade failed, serving on as before: {e}");
                if let Err(e) = self.open_accounts() {
                    log::error!("accounts store could not be opened again: {e}");
                }
            }
        }
    }

    fn hand_over(&mut self, exe: &std::path::Path, now: Instant) -> io::Result<u32> {
        let (mut ours, theirs) = UnixStream::pair()?;
        // The child keeps its end across exec: clear close-on-exec on it for the spawn.
        let fd = theirs.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut child = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(ENV, fd.to_string())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {}: {e}", exe.display())))?;
        drop(theirs);
        let result = self.send_snapshot(&mut ours, now).and_then(|()| {
            ours.set_read_timeout(Some(ANSWER_WITHIN))?;
            let mut answer = [0u8; 512];
            let n = ours.read(&mut answer).map_err(|e| io::Error::new(e.kind(), format!("no answer from the new process: {e}")))?;
            let answer = String::from_utf8_lossy(&answer[..n]).trim().to_string();
            if answer == "ok" {
                Ok(())
            } else {
                Err(io::Error::other(format!("the new process refused: {}", if answer.is_empty() { "it exited" } else { &answer })))
            }
        });
        match result {
            Ok(()) => Ok(child.id()),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// Writes the snapshot and the sockets it names.
    fn send_snapshot(&mut self, sock: &mut UnixStream, now: Instant) -> io::Result<()> {
        let (snapshot, fds) = self.snapshot(now);
        let json = serde_json::to_vec(&snapshot).map_err(io::Error::other)?;
        write_all(sock, &(json.len() as u64).to_le_bytes())?;
        write_all(sock, &json)?;
        for batch in fds.chunks(MAX_FDS) {
            fdpass::send_fds(sock, b"f", batch)?;
        }
        log::info!(
            "upgrade: snapshot of {} bytes, {} miners, {} upstreams, {} sockets sent",
            json.len(),
            snapshot.miners.len(),
            snapshot.upstreams.len(),
            fds.len()
        );
        Ok(())
    }

    /// The state that can move, and the sockets it names.
    fn snapshot(&mut self, now: Instant) -> (Snapshot, Vec<RawFd>) {
        let mut fds: Vec<RawFd> = Vec::new();
        let mut fd = |raw: RawFd| {
            fds.push(raw);
            fds.len() - 1
        };
        let ms = |t: Instant| now.saturating_duration_since(t).as_millis().min(u128::from(u64::MAX)) as u64;
        let listeners = self.listeners.iter().map(|l| Some(fd(l.socket.as_raw_fd()))).collect();
        let http = self.http.as_ref().map(|(l, _)| fd(l.as_raw_fd()));
        let group_name = |g| self.groups.get(g).map(|g| g.name.to_string()).unwrap_or_default();
        let names: HashMap<usize, &str> = self.workers.iter_keyed().map(|(k, w)| (k, &*w.name)).collect();
        let worker_name = |w: usize| names.get(&w).map(|n| n.to_string());
        let mut miners = Vec::new();
        for (key, m) in &self.miners {
            let Some((pending, out)) = m.conn.parts() else { continue };
            if m.state == MinerState::Closing {
                continue;
            }
            let (state, login_id) = match &m.state {
                MinerState::WaitLogin => (0, None),
                MinerState::WaitReady { login_id } => (1, Some(login_id.to_string())),
                _ => (2, None),
            };
            let proto = match &m.proto {
                Proto::Undecided(p) => ProtoSnap::Undecided(*p),
                Proto::CryptoNote(c) => ProtoSnap::CryptoNote(*c),
                Proto::V1(v) => ProtoSnap::V1(v.clone()),
            };
            let conn = ConnSnap {
                fd: fd(m.conn.stream_ref().as_raw_fd()),
                pending: pending.to_vec(),
                out: out.to_vec(),
                rx: m.conn.rx,
                tx: m.conn.tx,
            };
            miners.push(MinerSnap {
                id: key,
                conn,
                seq: m.seq,
                peer: m.peer,
                state,
                login_id,
                group: group_name(m.group),
                port: m.port,
                route: m.route.map(|r| (r.upstream().0, r.slot)),
                rate: m.rate,
                diff_mode: m.diff_mode,
                proto,
                identity: m
                    .identity
                    .as_deref()
                    .map(|i| (i.user.to_string(), i.agent.to_string(), i.rig_id.as_deref().map(str::to_string), i.verdicts)),
                worker: m.worker().and_then(worker_name),
                idle_ms: ms(m.last_seen),
            });
        }
        let upstreams = self
            .splitter
            .iter()
            .map(|(id, u)| {
                let session = u.link.session.snapshot(now);
                let conn = u.link.conn.as_ref().filter(|_| session.is_some()).and_then(|c| {
                    let (pending, out) = c.parts()?;
                    Some(ConnSnap { fd: fd(c.stream_ref().as_raw_fd()), pending: pending.to_vec(), out: out.to_vec(), rx: c.rx, tx: c.tx })
                });
                let proto = match &u.link.proto {
                    PoolProto::CryptoNote { session } => PoolProto::CryptoNote { session: session.clone() },
                    PoolProto::V1 { user, configure, subscribe, subscribed } => {
                        PoolProto::V1 { user: user.clone(), configure: *configure, subscribe: *subscribe, subscribed: *subscribed }
                    }
                };
                UpstreamSnap {
                    id: id.0,
                    session: session.filter(|_| conn.is_some()),
                    conn,
                    proto,
                    group: group_name(u.group),
                    lane: u.lane,
                    alone: u.alone,
                    mapper: u.mapper.snapshot(now, &worker_name),
                }
            })
            .collect();
        let s = &mut self.stats;
        let stats = StatsSnap {
            accepted: s.accepted,
            rejected: s.rejected,
            invalid: s.invalid,
            expired: s.expired,
            connections: s.connections,
            max_miners: s.max_miners,
            best: s.best,
            windows: Some(s.windows.snapshot()),
            history: Some(s.history.snapshot()),
        };
        let snapshot = Snapshot {
            format: FORMAT.into(),
            version: VERSION,
            uptime_ms: ms(self.started),
            fds: fds.len(),
            listeners,
            http,
            upstreams,
            miners,
            stats,
            workers: Some(self.workers.snapshot()),
            groups: self.groups.snapshot(),
            next_seq: self.next_seq,
            next_prefix: self.next_prefix,
        };
        (snapshot, fds)
    }

    /// The new process took over: drop what moved, drain what could not.
    fn after_handover(&mut self, child: u32, now: Instant) {
        let moved: Vec<usize> =
            self.miners.iter().filter(|(_, m)| m.conn.parts().is_some() && m.state != MinerState::Closing).map(|(k, _)| k).collect();
        for key in &moved {
            // Our copy of the socket goes; the connection is the new process's now.
            let mut m = self.miners.remove(*key);
            let _ = self.poll.registry().deregister(m.conn.stream());
        }
        for l in &mut self.listeners {
            let _ = self.poll.registry().deregister(&mut l.socket);
        }
        self.listeners.clear();
        if let Some((mut l, _)) = self.http.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let keys: Vec<usize> = self.http_clients.iter().map(|(k, _)| k).collect();
        for k in keys {
            self.http_close(k);
        }
        let ids: Vec<UpstreamId> = self.splitter.iter().map(|(id, _)| id).collect();
        for uid in ids {
            if let Some((_, mut link)) = self.splitter.remove(uid)
                && let Some(mut conn) = link.conn.take()
            {
                let _ = self.poll.registry().deregister(conn.stream());
            }
        }
        // TLS miners stay: each gets a pool connection of this process again.
        let stay: Vec<MinerId> = self.miners.iter().map(|(k, _)| MinerId(k)).collect();
        for id in &stay {
            let Some(m) = self.miners.get_mut(id.0) else { continue };
            m.moving = None;
            let (group, placed) = (m.group, m.route.take().is_some());
            if placed {
                match self.place(group, *id, now) {
                    Ok(a) => {
                        if a.created {
                            self.connect_link(a.upstream, now);
                        }
                        if let Some(m) = self.miners.get_mut(id.0) {
                            m.route = Some(Route::new(a.upstream, a.slot));
                            m.new_upstream();
                        }
                    }
                    Err(e) => self.close_miner(*id, &format!("upgrade: {e}")),
                }
            }
        }
        self.stats.miners = self.stats.miners.saturating_sub(moved.len() as u64);
        self.draining = Some(now + DRAIN_LIMIT);
        log::info!(
            "upgrade: handed over to pid {child} in {} ms: {} miners moved; draining {} TLS miners and {} transparent pairs (at most {} s)",
            now.elapsed().as_millis(),
            moved.len(),
            stay.len(),
            self.jumps_open(),
            DRAIN_LIMIT.as_secs()
        );
    }

    /// While draining after an upgrade: done when nothing is left.
    pub(super) fn drained(&self, now: Instant) -> bool {
        self.draining.is_some_and(|until| now >= until || (self.miners.is_empty() && self.jumps_open() == 0))
    }

    /// A proxy rebuilt from what the old process handed over on `sock`; answers it `ok`.
    pub fn adopt(cfg: Config, fd: RawFd) -> io::Result<Proxy> {
        // SAFETY: the descriptor was given to us by the old process, for us alone.
        let mut sock = unsafe { UnixStream::from_raw_fd(fd) };
        match Self::adopt_on(cfg, &mut sock) {
            Ok(p) => {
                sock.write_all(b"ok")?;
                Ok(p)
            }
            Err(e) => {
                let _ = sock.write_all(format!("error: {e}").as_bytes());
                Err(e)
            }
        }
    }

    fn adopt_on(cfg: Config, sock: &mut UnixStream) -> io::Result<Proxy> {
        let mut len = [0u8; 8];
        sock.read_exact(&mut len)?;
        let len = u64::from_le_bytes(len) as usize;
        if len > MAX_SNAPSHOT {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("snapshot of {len} bytes")));
        }
        let mut json = vec![0u8; len];
        sock.read_exact(&mut json)?;
        // Tolerant of a newer old process only when the version says so: any other shape
        // is refused before anything is built.
        let head: serde_json::Value =
            serde_json::from_slice(&json).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("snapshot: {e}")))?;
        if head["format"] != FORMAT || head["version"] != VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("handover format {} version {} (this binary speaks {FORMAT} version {VERSION})", head["format"], head["version"]),
            ));
        }
        let snap: Snapshot =
            serde_json::from_value(head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("snapshot: {e}")))?;
        let mut fds: Vec<Option<OwnedFd>> = Vec::with_capacity(snap.fds);
        while fds.len() < snap.fds {
            let mut b = [0u8; 1];
            let (n, got) = fdpass::recv_fds(sock, &mut b)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the old process hung up"));
            }
            fds.extend(got.into_iter().map(Some));
        }
        let mut take = |i: usize| fds.get_mut(i).and_then(Option::take);
        let listeners = snap.listeners.iter().map(|i| i.and_then(&mut take).map(std::net::TcpListener::from)).collect();
        let http = snap.http.and_then(&mut take).map(std::net::TcpListener::from);
        let mut proxy = Proxy::build(cfg, Some(listeners), http)?;
        let now = Instant::now();
        proxy.started = now.checked_sub(Duration::from_millis(snap.uptime_ms)).unwrap_or(now);
        proxy.next_seq = snap.next_seq;
        proxy.next_prefix = snap.next_prefix;
        let clock = proxy.clock(now);
        // Worker records first: the miners below find theirs by name.
        let workers_taken = snap.workers.map_or(0, |w| proxy.workers.restore(w));
        proxy.groups.restore(&snap.groups);
        let ago = |ms: u64| now.checked_sub(Duration::from_millis(ms)).unwrap_or(now);
        let conn = |c: &ConnSnap, fd: OwnedFd, max: usize| {
            let stream = std::net::TcpStream::from(fd);
            stream.set_nonblocking(true)?;
            Ok::<Conn, io::Error>(Conn::from_parts(
                mio::net::TcpStream::from_std(stream),
                max,
                c.pending.clone(),
                c.out.clone(),
                c.rx,
                c.tx,
            ))
        };
        // Miners first (the mappers name them), then upstreams, then the miners' routes.
        let mut miner_ids: HashMap<usize, MinerId> = HashMap::new();
        let mut routes: Vec<(MinerId, usize, u16)> = Vec::new();
        for m in &snap.miners {
            let Some(fd) = take(m.conn.fd) else { continue };
            let mut c = conn(&m.conn, fd, MAX_MINER_OUT)?;
            let group = proxy.groups.find(&m.group).unwrap_or(crate::DEFAULT_GROUP);
            let entry = proxy.miners.vacant_entry();
            let key = entry.key();
            proxy.poll.registry().register(c.stream(), Source::Miner(key).token(), Interest::READABLE | Interest::WRITABLE)?;
            let state = match (m.state, &m.login_id) {
                (0, _) => MinerState::WaitLogin,
                (1, Some(id)) => MinerState::WaitReady { login_id: id.clone().into() },
                _ => MinerState::Ready,
            };
            let proto = match &m.proto {
                ProtoSnap::Undecided(p) => Proto::Undecided(*p),
                ProtoSnap::CryptoNote(cn) => Proto::CryptoNote(*cn),
                ProtoSnap::V1(v) => Proto::V1(v.clone()),
            };
            let mut miner = Miner::adopted(m.seq, c, m.peer, m.port, group, state, proto, ago(m.idle_ms));
            miner.rate = m.rate;
            miner.diff_mode = m.diff_mode;
            if let Some((user, agent, rig, verdicts)) = &m.identity {
                let identity = Identity {
                    user: proxy.interner.get(user),
                    agent: proxy.interner.get(agent),
                    rig_id: rig.as_deref().map(Box::from),
                    verdicts: *verdicts,
                    invalid_run: Default::default(),
                };
                if let Some(name) = &m.worker {
                    let w = proxy.workers.attach(name, worker_user(&proxy.groups, group, user), m.peer.ip(), clock);
                    miner.set_worker(w);
                }
                miner.identity = Some(Box::new(identity));
            }
            entry.insert(miner);
            proxy.stats.on_connect();
            miner_ids.insert(m.id, MinerId(key));
            if let Some((u, slot)) = m.route {
                routes.push((MinerId(key), u, slot));
            }
        }
        let mut upstream_ids: HashMap<usize, UpstreamId> = HashMap::new();
        for u in snap.upstreams {
            let Some(group) = proxy.groups.find(&u.group) else {
                log::warn!("upgrade: pool group {} is gone from the config; its upstream is dropped", u.group);
                continue;
            };
            let workers = &proxy.workers;
            let mapper = Mapper::restore(u.mapper, now, &|old| miner_ids.get(&old).copied(), &|name| workers.find(name));
            let mut link = Link::new(now);
            if let (Some(c), Some(s)) = (u.conn.as_ref(), u.session)
                && let Some(fd) = take(c.fd)
            {
                link.conn = Some(conn(c, fd, MAX_POOL_OUT)?);
                link.session = Session::restore(s, now);
                link.proto = u.proto;
            }
            let uid = proxy.splitter.adopt(Upstream { group, lane: u.lane, mapper, link, held_until: None, alone: u.alone });
            if let Some(c) = proxy.splitter.get_mut(uid).and_then(|x| x.link.conn.as_mut()) {
                proxy.poll.registry().register(c.stream(), Source::Upstream(uid.0).token(), Interest::READABLE | Interest::WRITABLE)?;
            }
            upstream_ids.insert(u.id, uid);
        }
        for (id, old, slot) in routes {
            let route = upstream_ids.get(&old).map(|u| Route::new(*u, slot));
            if let Some(m) = proxy.miners.get_mut(id.0) {
                m.route = route;
            }
        }
        // Lanes whose pools are up, for weighted groups.
        let up: Vec<(crate::GroupId, usize)> =
            proxy.splitter.iter().filter(|(_, u)| u.link.session.is_active()).map(|(_, u)| (u.group, u.lane)).collect();
        for (g, lane) in up {
            if let Some(l) = proxy.groups.get_mut(g).and_then(|g| g.lanes.get_mut(lane)) {
                l.health = crate::pool::Health::Up;
            }
        }
        let s = snap.stats;
        let st = &mut proxy.stats;
        (st.accepted, st.rejected, st.invalid, st.expired, st.best) = (s.accepted, s.rejected, s.invalid, s.expired, s.best);
        st.connections = s.connections;
        st.max_miners = s.max_miners.max(st.max_miners);
        if let Some(w) = s.windows.as_ref().and_then(HashWindows::restore) {
            st.windows = w;
        }
        if let Some(h) = &s.history {
            st.history = History::restore(h);
        }
        log::info!(
            "upgrade: took over {} miners, {} upstreams ({} pool connections) and {workers_taken} worker records from the old process",
            proxy.miners.len(),
            proxy.splitter.len(),
            proxy.splitter.iter().filter(|(_, u)| u.link.conn.is_some()).count()
        );
        // Miners whose upstream did not come along are placed again.
        let lost: Vec<MinerId> =
            proxy.miners.iter().filter(|(_, m)| m.identity.is_some() && m.route.is_none()).map(|(k, _)| MinerId(k)).collect();
        for id in lost {
            let group = proxy.miners[id.0].group;
            match proxy.place(group, id, now) {
                Ok(a) => {
                    proxy.miners[id.0].route = Some(Route::new(a.upstream, a.slot));
                    proxy.miners[id.0].new_upstream();
                }
                Err(e) => proxy.close_miner(id, &format!("upgrade: {e}")),
            }
        }
        Ok(proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the new process says about a snapshot it is sent.
    fn adopt_from(bytes: &[u8]) -> String {
        let (mut old, mut new) = UnixStream::pair().unwrap();
        old.write_all(bytes).unwrap();
        drop(old);
        match Proxy::adopt_on(Config::default(), &mut new) {
            Ok(_) => "adopted".into(),
            Err(e) => e.to_string(),
        }
    }

    fn framed(json: &str) -> Vec<u8> {
        let mut out = (json.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(json.as_bytes());
        out
    }

    #[test]
    fn another_format_version_is_refused_before_anything_is_built() {
        let why = adopt_from(&framed(&format!(r#"{{"format":"{FORMAT}","version":{}}}"#, VERSION + 1)));
        assert!(why.contains(&format!("version {}", VERSION + 1)) && why.contains(&format!("speaks {FORMAT} version {VERSION}")), "{why}");
        let why = adopt_from(&framed(r#"{"format":"something else","version":1}"#));
        assert!(why.contains("something else"), "{why}");
    }

    #[test]
    fn a_truncated_or_oversized_or_garbled_snapshot_is_an_error() {
        assert!(adopt_from(&framed("{\"format\"")).contains("snapshot"));
        assert!(adopt_from(&(MAX_SNAPSHOT as u64 + 1).to_le_bytes()).contains("snapshot of"));
        let mut cut = framed(&format!(r#"{{"format":"{FORMAT}","version":{VERSION}}}"#));
        cut.truncate(cut.len() - 3);
        assert!(!adopt_from(&cut).is_empty());
        assert!(adopt_from(&framed(&format!(r#"{{"format":"{FORMAT}","version":{VERSION}}}"#))).contains("snapshot: missing field"));
    }
}
