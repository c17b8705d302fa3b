//! Upstream links: the pool side of each mapper. A link connects (non-blocking), logs in,
//! takes jobs from the login reply and from `job` pushes, forwards shares with our own
//! request ids, and walks the failover list when the pool goes away (RFC section 10).
//! Miners never see a failover except as a new job.

use super::{MAX_POOL_LINE, MAX_POOL_OUT, Proxy, SUBMIT_TIMEOUT};
use crate::config::PoolConfig;
use crate::net::resolve::Lookup;
use crate::net::{Conn, Fill, LineReader, Source};
use crate::pool::Failover;
use crate::pool::message::{self, PoolMessage};
use crate::stratum::{StratumError, write};
use crate::{AGENT, UpstreamId};
use mio::Interest;
use mio::event::Event;
use mio::net::TcpStream;
use std::time::{Duration, Instant};

/// Connect plus login must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Keepalive ping interval for pools with `keepalive` set.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
/// A session that ends sooner than this counts as a failed attempt (pause, then the next
/// pool), so a pool that accepts logins and drops them is not reconnected in a tight loop.
const STABLE_SESSION: Duration = Duration::from_secs(30);

/// Where a link is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Not connected; `retry_at` says when to try.
    Waiting,
    /// TCP connect in progress.
    Connecting,
    /// Login sent, waiting for the pool's answer.
    LoggingIn,
    /// Logged in and receiving jobs.
    Active,
}

/// One pool connection, owned by the loop next to its mapper.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) conn: Option<Conn>,
    pub(super) phase: Phase,
    /// Index among enabled pools of the pool in use.
    pub(super) pool: usize,
    failover: Failover,
    pub(super) session: String,
    next_id: u64,
    login_id: u64,
    /// Incremented per pool session, so jobs of an old session never count as "previous".
    pub(super) generation: u64,
    since: Instant,
    retry_at: Option<Instant>,
    pub(super) last_send: Instant,
    /// Submits encoded during this loop pass, written in one go at its end.
    pub(super) outbox: Vec<u8>,
}

impl Link {
    fn new(now: Instant) -> Link {
        Link {
            conn: None,
            phase: Phase::Waiting,
            pool: 0,
            failover: Failover::default(),
            session: String::new(),
            next_id: 1,
            login_id: 0,
            generation: 0,
            since: now,
            retry_at: Some(now),
            last_send: now,
            outbox: Vec::new(),
        }
    }

    /// Writes the gathered submits (dropped when the link has no connection).
    pub(super) fn write_outbox(&mut self) -> Result<(), crate::net::ConnError> {
        let sent = self.conn.as_mut().map_or(Ok(()), |c| c.send(&self.outbox));
        self.outbox.clear();
        sent
    }

    /// When a waiting link wants to reconnect.
    pub(super) fn retry_at(&self) -> Option<Instant> {
        if self.phase == Phase::Waiting { self.retry_at } else { None }
    }

    pub(super) fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

impl Proxy {
    fn enabled_pools(&self) -> impl Iterator<Item = &PoolConfig> {
        self.cfg.pools.iter().filter(|p| p.enabled)
    }

    fn pool_count(&self) -> usize {
        self.enabled_pools().count()
    }

    pub(super) fn pool_at(&self, i: usize) -> Option<&PoolConfig> {
        self.enabled_pools().nth(i)
    }

    /// Creates the link for a new upstream and starts connecting.
    pub(super) fn open_link(&mut self, uid: UpstreamId, now: Instant) {
        if self.links.len() <= uid.0 {
            self.links.resize_with(uid.0 + 1, || None);
        }
        self.links[uid.0] = Some(Link::new(now));
        self.connect_link(uid, now);
    }

    /// The resolver answered: links and jump clients waiting for a name try again now.
    pub(super) fn resolved(&mut self, now: Instant) {
        if !self.resolver.poll(now) {
            return;
        }
        for link in self.links.iter_mut().flatten() {
            if link.phase == Phase::Waiting && link.retry_at.is_none() {
                link.retry_at = Some(now);
            }
        }
        self.resolve_jump_targets(now);
    }

    /// Starts connecting every waiting link whose pause is over.
    pub(super) fn connect_due_upstreams(&mut self, now: Instant) {
        for i in 0..self.links.len() {
            if self.links[i].as_ref().and_then(Link::retry_at).is_some_and(|t| t <= now) {
                self.connect_link(UpstreamId(i), now);
            }
        }
    }

    fn connect_link(&mut self, uid: UpstreamId, now: Instant) {
        let n = self.pool_count();
        let Some(link) = self.links.get_mut(uid.0).and_then(Option::as_mut) else { return };
        if n == 0 {
            // No pool configured: miners wait until a reload adds one.
            link.retry_at = None;
            return;
        }
        let index = link.failover.current(n);
        link.pool = index;
        let Some(pool) = self.pool_at(index) else { return };
        let url = pool.url.clone();
        let addr = match self.resolver.lookup(&url, now) {
            Lookup::Ready(addr) => addr,
            Lookup::Failed(why) => return self.fail_link(uid, &why, now),
            Lookup::Pending => {
                // Asked the resolver thread; `resolved` wakes this link when it answers.
                if let Some(link) = self.links[uid.0].as_mut() {
                    link.retry_at = None;
                }
                return;
            }
        };
        let Some(pool) = self.pool_at(index) else { return };
        let tls = pool.tls.then(|| crate::net::tls::client::connect(&url, crate::net::tls::client::trust_for(pool)));
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect to {url} failed: {e}"));
        let mut stream = match stream {
            Ok(s) => s,
            Err(why) => return self.fail_link(uid, &why, now),
        };
        if let Err(e) = self.poll.registry().register(&mut stream, Source::Upstream(uid.0).token(), Interest::READABLE | Interest::WRITABLE)
        {
            return self.fail_link(uid, &format!("cannot register socket: {e}"), now);
        }
        let _ = stream.set_nodelay(true);
        let mut conn = Conn::new(stream, MAX_POOL_OUT);
        match tls {
            Some(Ok(session)) => conn.start_tls(session),
            Some(Err(e)) => return self.fail_link(uid, &e.to_string(), now),
            None => {}
        }
        let Some(link) = self.links[uid.0].as_mut() else { return };
        link.conn = Some(conn);
        link.phase = Phase::Connecting;
        link.since = now;
        link.retry_at = None;
        link.generation += 1;
        log::debug!("upstream #{} connecting to {url}", uid.0);
    }

    pub(super) fn upstream_event(&mut self, uid: UpstreamId, event: &Event, now: Instant) {
        let Some(link) = self.links.get_mut(uid.0).and_then(Option::as_mut) else { return };
        let Some(conn) = link.conn.as_mut() else { return };
        if link.phase == Phase::Connecting {
            if let Ok(Some(e)) | Err(e) = conn.stream().take_error() {
                return self.fail_link(uid, &format!("connect failed: {e}"), now);
            }
            match conn.stream().peer_addr() {
                Ok(_) => self.send_login(uid, now),
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => return,
                Err(e) => return self.fail_link(uid, &format!("connect failed: {e}"), now),
            }
        }
        if event.is_writable() {
            let Some(conn) = self.links[uid.0].as_mut().and_then(|l| l.conn.as_mut()) else { return };
            if let Err(e) = conn.flush() {
                return self.fail_link(uid, &e.to_string(), now);
            }
        }
        let drain = event.is_read_closed() || event.is_error();
        if event.is_readable() || drain {
            self.upstream_readable(uid, drain, now);
        }
    }

    fn send_login(&mut self, uid: UpstreamId, now: Instant) {
        let Some(link) = self.links[uid.0].as_mut() else { return };
        let id = link.take_id();
        link.login_id = id;
        link.phase = Phase::LoggingIn;
        link.last_send = now;
        let pool_index = link.pool;
        let Some(pool) = self.cfg.pools.iter().filter(|p| p.enabled).nth(pool_index) else { return };
        self.scratch.clear();
        write::pool_login(&mut self.scratch, id, &pool.user, &pool.pass, AGENT, pool.rig_id.as_deref(), pool.algo.as_deref());
        log::debug!("upstream #{} connected to {}, logging in as {}", uid.0, pool.url, pool.user);
        self.send_to_pool(uid, now);
    }

    /// Sends the scratch buffer to a pool; a failed send fails the link.
    pub(super) fn send_to_pool(&mut self, uid: UpstreamId, now: Instant) -> bool {
        let Some(conn) = self.links.get_mut(uid.0).and_then(Option::as_mut).and_then(|l| l.conn.as_mut()) else { return false };
        match conn.send(&self.scratch) {
            Ok(()) => true,
            Err(e) => {
                self.fail_link(uid, &e.to_string(), now);
                false
            }
        }
    }

    fn upstream_readable(&mut self, uid: UpstreamId, drain: bool, now: Instant) {
        let mut reader = std::mem::replace(&mut self.reader, LineReader::new(0));
        while let Some(conn) = self.links.get_mut(uid.0).and_then(Option::as_mut).and_then(|l| l.conn.as_mut()) {
            let fill = reader.fill(conn, drain);
            let mut failed = None;
            while let Some(line) = reader.next_line(MAX_POOL_LINE) {
                match line {
                    Ok(range) => self.pool_line(uid, reader.line(range), now),
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
                if !self.link_connected(uid) {
                    break;
                }
            }
            if let Some(why) = failed {
                reader.clear();
                self.fail_link(uid, &format!("pool sent a {why}"), now);
                break;
            }
            if !self.link_connected(uid) {
                reader.clear();
                break;
            }
            match fill {
                Ok(Fill::Full) => continue,
                Ok(Fill::WouldBlock) => {
                    if let Some(conn) = self.links[uid.0].as_mut().and_then(|l| l.conn.as_mut()) {
                        reader.stash(conn);
                    }
                    break;
                }
                Ok(Fill::Eof) => {
                    reader.clear();
                    self.fail_link(uid, "pool closed the connection", now);
                    break;
                }
                Err(e) => {
                    reader.clear();
                    self.fail_link(uid, &e.to_string(), now);
                    break;
                }
            }
        }
        self.reader = reader;
    }

    fn link_connected(&self, uid: UpstreamId) -> bool {
        self.links.get(uid.0).and_then(Option::as_ref).is_some_and(|l| l.conn.is_some())
    }

    fn pool_line(&mut self, uid: UpstreamId, line: &[u8], now: Instant) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let msg = match message::parse(line) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("upstream #{}: ignoring pool line: {e}", uid.0);
                return;
            }
        };
        let Some(link) = self.links[uid.0].as_mut() else { return };
        match msg {
            PoolMessage::Reply { id, result } if link.phase == Phase::LoggingIn && id == link.login_id => {
                self.login_result(uid, result, now)
            }
            PoolMessage::Reply { id, result } => {
                let Some(p) = self.splitter.mapper_mut(uid).and_then(|m| m.take_pending(id)) else {
                    log::debug!("upstream #{}: reply to unknown request {id}", uid.0);
                    return;
                };
                self.answer_share(p, result.map(|_| ()).map_err(StratumError::Pool), now);
            }
            PoolMessage::Job(params) if link.phase == Phase::Active => self.new_job(uid, &params, now),
            PoolMessage::Job(_) => log::warn!("upstream #{}: job before login, ignored", uid.0),
            PoolMessage::Other(method) => log::debug!("upstream #{}: ignoring method {method}", uid.0),
        }
    }

    fn login_result(&mut self, uid: UpstreamId, result: Result<&serde_json::value::RawValue, String>, now: Instant) {
        let ok = result.and_then(message::parse_login);
        let login = match ok {
            Ok(l) => l,
            Err(e) => return self.fail_link(uid, &format!("login refused: {e}"), now),
        };
        let Some(link) = self.links[uid.0].as_mut() else { return };
        link.phase = Phase::Active;
        link.since = now;
        link.session = login.session;
        link.failover.connected();
        let index = link.pool;
        if let Some(pool) = self.pool_at(index) {
            log::info!("upstream #{} logged in to {}{}", uid.0, pool.url, if index > 0 { " (fallback)" } else { "" });
        }
        match login.job {
            Some(job) => self.new_job(uid, &job, now),
            None => log::debug!("upstream #{}: login reply without a job, waiting for one", uid.0),
        }
    }

    /// The pool connection broke or refused us: fail submits in flight, keep the miners,
    /// and schedule the next attempt by the failover rules.
    pub(super) fn fail_link(&mut self, uid: UpstreamId, why: &str, now: Instant) {
        let n = self.pool_count();
        let (retries, pause) = (self.cfg.retries, Duration::from_secs(self.cfg.retry_pause_secs));
        let Some(link) = self.links.get_mut(uid.0).and_then(Option::as_mut) else { return };
        if let Some(mut conn) = link.conn.take() {
            let _ = self.poll.registry().deregister(conn.stream());
        }
        let was_active = link.phase == Phase::Active;
        let index = link.pool;
        link.outbox.clear();
        let stable = was_active && now.saturating_duration_since(link.since) >= STABLE_SESSION;
        let delay = if stable {
            link.failover.lost();
            Duration::ZERO
        } else {
            link.failover.failed(n, retries, pause)
        };
        link.phase = Phase::Waiting;
        link.retry_at = Some(now + delay);
        link.session.clear();
        let url = self.pool_at(index).map(|p| p.url.as_str()).unwrap_or("?");
        if was_active {
            log::warn!("upstream #{}: connection to {url} lost: {why}; reconnecting", uid.0);
        } else {
            log::warn!("upstream #{}: {url}: {why}; next try in {} ms", uid.0, delay.as_millis());
        }
        let lost = self.splitter.mapper_mut(uid).map(|m| m.suspend()).unwrap_or_default();
        for p in lost {
            self.answer_share(p, Err(StratumError::PoolUnavailable), now);
        }
    }

    /// Once a second: connect/login timeouts, keepalives, submits the pool never answered.
    pub(super) fn upstream_tick(&mut self, now: Instant) {
        for i in 0..self.links.len() {
            let uid = UpstreamId(i);
            let Some(link) = self.links[i].as_ref() else { continue };
            let (phase, since, last_send, pool) = (link.phase, link.since, link.last_send, link.pool);
            match phase {
                Phase::Connecting | Phase::LoggingIn if now.saturating_duration_since(since) >= CONNECT_TIMEOUT => {
                    self.fail_link(uid, "connect/login timeout", now);
                }
                Phase::Active
                    if self.pool_at(pool).is_some_and(|p| p.keepalive) && now.saturating_duration_since(last_send) >= KEEPALIVE_EVERY =>
                {
                    let Some(link) = self.links[i].as_mut() else { continue };
                    let id = link.take_id();
                    link.last_send = now;
                    self.scratch.clear();
                    write::pool_keepalive(&mut self.scratch, id, &link.session);
                    self.send_to_pool(uid, now);
                }
                _ => {}
            }
            let cutoff = now.checked_sub(SUBMIT_TIMEOUT).unwrap_or(now);
            let late = self.splitter.mapper_mut(uid).map(|m| m.expire_pending(cutoff)).unwrap_or_default();
            if late.is_empty() {
                continue;
            }
            for p in late {
                self.answer_share(p, Err(StratumError::Pool("Pool did not answer in time".into())), now);
            }
            // A pool that leaves submits unanswered this long is gone (black-holed or
            // half-open): move on as for a lost connection.
            self.fail_link(uid, "pool stopped answering", now);
        }
    }

    /// The pool list changed: every link drops its session and starts over from the new
    /// primary at once. Miners stay; they get the new pool's job.
    pub(super) fn reset_links(&mut self, now: Instant) {
        for i in 0..self.links.len() {
            let Some(link) = self.links[i].as_mut() else { continue };
            if let Some(mut conn) = link.conn.take() {
                let _ = self.poll.registry().deregister(conn.stream());
            }
            link.failover = Failover::default();
            link.outbox.clear();
            link.phase = Phase::Waiting;
            link.retry_at = Some(now);
            link.session.clear();
            let lost = self.splitter.mapper_mut(UpstreamId(i)).map(|m| m.suspend()).unwrap_or_default();
            for p in lost {
                self.answer_share(p, Err(StratumError::PoolUnavailable), now);
            }
        }
    }

    /// Drops an upstream's connection for good (its mapper is already gone).
    pub(super) fn close_link(&mut self, uid: UpstreamId) {
        let Some(mut link) = self.links.get_mut(uid.0).and_then(Option::take) else { return };
        if let Some(mut conn) = link.conn.take() {
            let _ = conn.flush();
            let _ = self.poll.registry().deregister(conn.stream());
        }
    }
}
