//! Upstream links: the pool side of each upstream. A link connects (non-blocking), logs in,
//! takes jobs, forwards shares with our own request ids, and walks its lane's failover
//! list when the pool goes away. The decisions (when to connect, timeouts, keepalives,
//! which pool next) are `pool::Session`'s; this file does the socket work, and what the
//! pool's dialect says and expects is dispatched on `PoolProto` in one place each
//! (`send_login`, `pool_line`, the keepalive): `cryptonote.rs` is the xmrig dialect.
//! Miners never see a failover except as a new job.

mod cryptonote;
mod v1;

use super::{MAX_POOL_LINE, MAX_POOL_OUT, Proxy, SUBMIT_TIMEOUT};
use crate::config::PoolConfig;
use crate::logs::Topic;
use crate::net::resolve::Lookup;
use crate::net::{Conn, Fill, LineReader, Source};
use crate::pool::session::Due;
use crate::pool::{Groups, Health, Session};
use crate::splitter::{NewLink, Pending, Splitter};
use crate::stratum::{StratumError, write};
use crate::{GroupId, UpstreamId};
use mio::Interest;
use mio::event::Event;
use mio::net::TcpStream;
use std::time::{Duration, Instant};

/// What a pool's dialect keeps per connection.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum PoolProto {
    CryptoNote {
        /// The pool's session id (the `id` of its login reply), sent with every submit.
        session: String,
    },
    V1 {
        /// The user we authorized as: the first field of every submit.
        user: String,
        /// Our ids of the configure and subscribe requests (the authorize is the login).
        configure: u64,
        subscribe: u64,
        /// The pool answered the subscribe.
        subscribed: bool,
    },
}

/// One pool connection, kept in its upstream's record next to the mapper.
#[derive(Debug)]
pub struct Link {
    pub(super) conn: Option<Conn>,
    pub(super) session: Session,
    pub(super) proto: PoolProto,
    /// Submits encoded during this loop pass, written in one go at its end.
    pub(super) outbox: Vec<u8>,
}

impl NewLink for Link {
    fn new(now: Instant) -> Link {
        Link { conn: None, session: Session::new(now), proto: PoolProto::CryptoNote { session: String::new() }, outbox: Vec::new() }
    }
}

impl Link {
    /// Writes the gathered submits (dropped when the link has no connection).
    pub(super) fn write_outbox(&mut self) -> Result<(), crate::net::ConnError> {
        let sent = self.conn.as_mut().map_or(Ok(()), |c| c.send(&self.outbox));
        self.outbox.clear();
        sent
    }
}

/// [`Proxy::pool_of`], for a caller that holds other parts of the proxy mutably.
pub(in crate::proxy) fn pool_in<'a>(
    splitter: &Splitter<Link>,
    groups: &'a Groups,
    uid: UpstreamId,
) -> Option<(GroupId, usize, &'a PoolConfig)> {
    let u = splitter.get(uid)?;
    let group = groups.get(u.group)?;
    let index = u.link.session.pool_index(group.lane_len(u.lane));
    group.pool(u.lane, index).map(|(i, p)| (u.group, i, p))
}

impl Proxy {
    pub(super) fn link_mut(&mut self, uid: UpstreamId) -> Option<&mut Link> {
        self.splitter.get_mut(uid).map(|u| &mut u.link)
    }

    /// The pool an upstream uses now: its group, the pool's index in the group, the pool.
    pub(super) fn pool_of(&self, uid: UpstreamId) -> Option<(GroupId, usize, &PoolConfig)> {
        pool_in(&self.splitter, &self.groups, uid)
    }

    /// The resolver answered: links and jump clients waiting for a name try again now.
    pub(super) fn resolved(&mut self, now: Instant) {
        if !self.resolver.poll(now) {
            return;
        }
        for (_, u) in self.splitter.iter_mut() {
            u.link.session.wake(now);
        }
        self.resolve_jump_targets(now);
    }

    /// Starts connecting every waiting link whose pause is over.
    pub(super) fn connect_due_upstreams(&mut self, now: Instant) {
        let due: Vec<UpstreamId> = self.splitter.iter().filter(|(_, u)| u.link.session.is_due(now)).map(|(id, _)| id).collect();
        for uid in due {
            self.connect_link(uid, now);
        }
    }

    pub(super) fn connect_link(&mut self, uid: UpstreamId, now: Instant) {
        let Some((_, _, pool)) = self.pool_of(uid) else {
            // The group has no pool (a reload emptied it): wait until one is configured.
            if let Some(link) = self.link_mut(uid) {
                link.session.wait_for_wake();
            }
            return;
        };
        let url = pool.url.clone();
        let tls = pool.tls.then(|| crate::net::tls::client::connect(&url, crate::net::tls::client::trust_for(pool)));
        let addr = match self.resolver.lookup(&url, now) {
            Lookup::Ready(addr) => addr,
            Lookup::Failed(why) => return self.fail_link(uid, &why, now),
            Lookup::Pending => {
                // Asked the resolver thread; `resolved` wakes this link when it answers.
                if let Some(link) = self.link_mut(uid) {
                    link.session.wait_for_wake();
                }
                return;
            }
        };
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
        let v1 = self.pool_of(uid).is_some_and(|(_, _, p)| p.dialect() == crate::stratum::algo::Dialect::StratumV1);
        let Some(link) = self.link_mut(uid) else { return };
        link.conn = Some(conn);
        link.session.connecting(now);
        link.proto = if v1 {
            PoolProto::V1 { user: String::new(), configure: 0, subscribe: 0, subscribed: false }
        } else {
            PoolProto::CryptoNote { session: String::new() }
        };
        log::debug!("upstream #{} connecting to {url}", uid.0);
    }

    pub(super) fn upstream_event(&mut self, uid: UpstreamId, event: &Event, now: Instant) {
        let Some(link) = self.link_mut(uid) else { return };
        let connecting = link.session.phase() == crate::pool::session::Phase::Connecting;
        let Some(conn) = link.conn.as_mut() else { return };
        if connecting {
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
            let Some(conn) = self.link_mut(uid).and_then(|l| l.conn.as_mut()) else { return };
            if let Err(e) = conn.flush() {
                return self.fail_link(uid, &e.to_string(), now);
            }
        }
        let drain = event.is_read_closed() || event.is_error();
        if event.is_readable() || drain {
            self.upstream_readable(uid, drain, now);
        }
    }

    /// The connection is up: log in, in the pool's dialect.
    fn send_login(&mut self, uid: UpstreamId, now: Instant) {
        let Some(u) = self.splitter.get(uid) else { return };
        match &u.link.proto {
            PoolProto::CryptoNote { .. } => self.cryptonote_login(uid, now),
            PoolProto::V1 { .. } => self.v1_login(uid, now),
        }
    }

    /// One line from a pool, in its dialect.
    fn pool_line(&mut self, uid: UpstreamId, line: &[u8], now: Instant) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Some(u) = self.splitter.get_mut(uid) else { return };
        u.link.session.heard(now);
        match &u.link.proto {
            PoolProto::CryptoNote { .. } => self.cryptonote_pool_line(uid, line, now),
            PoolProto::V1 { .. } => self.v1_pool_line(uid, line, now),
        }
    }

    /// Sends the scratch buffer to a pool; a failed send fails the link.
    pub(super) fn send_to_pool(&mut self, uid: UpstreamId, now: Instant) -> bool {
        let Some(conn) = self.splitter.get_mut(uid).and_then(|u| u.link.conn.as_mut()) else { return false };
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
        while let Some(conn) = self.link_mut(uid).and_then(|l| l.conn.as_mut()) {
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
                    if let Some(conn) = self.link_mut(uid).and_then(|l| l.conn.as_mut()) {
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
        self.splitter.get(uid).is_some_and(|u| u.link.conn.is_some())
    }

    /// A lane's pool is up or down now; a change makes the group rebalance at once.
    pub(super) fn set_lane_health(&mut self, group: GroupId, lane: usize, health: Health) {
        let Some(l) = self.groups.get_mut(group).and_then(|g| g.lanes.get_mut(lane)) else { return };
        if l.health != health {
            l.health = health;
            self.rebalance_due.push(group);
        }
    }

    /// Drops an upstream's pool connection: the socket goes, and submits in flight are
    /// answered as not delivered. The miners stay.
    fn drop_connection(&mut self, uid: UpstreamId, now: Instant) {
        let Some(u) = self.splitter.get_mut(uid) else { return };
        if let Some(mut conn) = u.link.conn.take() {
            let _ = self.poll.registry().deregister(conn.stream());
        }
        u.link.outbox.clear();
        let lost = u.mapper.suspend();
        for p in lost {
            self.answer_share(uid, p, Err(StratumError::PoolUnavailable), now);
        }
    }

    /// The pool connection broke or refused us: fail submits in flight, keep the miners,
    /// and schedule the next attempt by the failover rules.
    pub(super) fn fail_link(&mut self, uid: UpstreamId, why: &str, now: Instant) {
        self.lose_link(uid, why, false, now);
    }

    /// The pool is connected but silent: as `fail_link`, but the next pool of the lane is
    /// tried at once and the silent one last.
    fn fail_silent(&mut self, uid: UpstreamId, why: &str, now: Instant) {
        self.lose_link(uid, why, true, now);
    }

    fn lose_link(&mut self, uid: UpstreamId, why: &str, silent: bool, now: Instant) {
        let (retries, pause) = (self.cfg.retries, Duration::from_secs(self.cfg.retry_pause_secs));
        let url = self.pool_of(uid).map(|(_, _, p)| p.url.clone()).unwrap_or_else(|| "?".into());
        let Some(u) = self.splitter.get(uid) else { return };
        let (group, lane) = (u.group, u.lane);
        let pools = self.groups.get(group).map_or(0, |g| g.lane_len(lane));
        self.drop_connection(uid, now);
        let Some(u) = self.splitter.get_mut(uid) else { return };
        let failure = if silent { u.link.session.silent(now, pools) } else { u.link.session.failed(now, pools, retries, pause) };
        // In simple mode a pool that goes down takes one upstream per rig with it, and a
        // dead pool is retried every `retry-pause`: one line per pool and reason now and then.
        let lost = if failure.was_active { "connection lost: " } else { "" };
        let reason = format!("{url}: {lost}{why}");
        if self.log_limiter.admit(Topic::PoolFailed, &reason, format_args!("upstream #{}", uid.0), now) {
            if failure.was_active {
                log::warn!("upstream #{}: connection to {url} lost: {why}; reconnecting", uid.0);
            } else {
                log::warn!("upstream #{}: {url}: {why}; next try in {} ms", uid.0, failure.delay.as_millis());
            }
        }
        // The lane is down when none of its upstreams is logged in any more.
        let lane_up = self.splitter.iter().any(|(_, u)| u.group == group && u.lane == lane && u.link.session.is_active());
        if !lane_up {
            self.set_lane_health(group, lane, Health::Down);
        }
    }

    /// Once a second: connect/login timeouts, keepalives, submits the pool never answered.
    pub(super) fn upstream_tick(&mut self, now: Instant) {
        let ids: Vec<UpstreamId> = self.splitter.iter().map(|(id, _)| id).collect();
        for uid in ids {
            let (keepalive, job_timeout) = self.pool_of(uid).map_or((false, 0), |(_, _, p)| (p.keepalive, p.job_timeout_secs));
            let Some(u) = self.splitter.get_mut(uid) else { continue };
            // Stratum v1 has no keepalive request: a quiet v1 pool is caught by its submits
            // and its job-timeout.
            let probes = matches!(u.link.proto, PoolProto::CryptoNote { .. });
            match u.link.session.tick(now, keepalive, probes, Duration::from_secs(job_timeout)) {
                Due::Timeout => self.fail_link(uid, "connect/login timeout", now),
                Due::Silent(why) => self.fail_silent(uid, &format!("the pool went silent ({why})"), now),
                Due::Keepalive(id) => {
                    self.scratch.clear();
                    // Stratum v1 has no keepalive request: its pools push jobs often enough.
                    if let PoolProto::CryptoNote { session } = &u.link.proto {
                        write::pool_keepalive(&mut self.scratch, id, session);
                        self.send_to_pool(uid, now);
                    }
                }
                Due::Nothing => {}
            }
            let cutoff = now.checked_sub(SUBMIT_TIMEOUT).unwrap_or(now);
            let late: Vec<Pending> = self.splitter.mapper_mut(uid).map(|m| m.expire_pending(cutoff)).unwrap_or_default();
            if late.is_empty() {
                continue;
            }
            for p in late {
                self.answer_share(uid, p, Err(StratumError::Pool("Pool did not answer in time".into())), now);
            }
            // A pool that leaves submits unanswered this long is gone (black-holed or
            // half-open): the next pool, this one last.
            self.fail_silent(uid, "the pool went silent (a submit unanswered for 10 s)", now);
        }
    }

    /// A group's pool list changed: its upstreams drop their sessions and start over from
    /// the new primary of their lane at once. Miners stay; they get the new pool's job.
    /// Other groups are not touched.
    pub(super) fn restart_group(&mut self, group: GroupId, now: Instant) {
        let lanes = self.groups.get(group).map_or(1, |g| g.lanes.len().max(1));
        for uid in self.splitter.ids_in(group) {
            self.drop_connection(uid, now);
            let Some(u) = self.splitter.get_mut(uid) else { continue };
            u.lane = u.lane.min(lanes - 1);
            u.link.session.restart(now);
        }
        self.rebalance_due.push(group);
    }

    /// Removes an upstream at once (its account went away): submits in flight are answered
    /// as not delivered and the connection closes.
    pub(super) fn drop_upstream(&mut self, uid: UpstreamId, now: Instant) {
        self.drop_connection(uid, now);
        if let Some((uid, link)) = self.splitter.remove(uid) {
            self.close_link(uid, link);
        }
    }

    /// Closes a removed upstream's pool connection for good.
    pub(super) fn close_link(&mut self, uid: UpstreamId, mut link: Link) {
        log::debug!("upstream #{} closed", uid.0);
        if let Some(mut conn) = link.conn.take() {
            let _ = conn.flush();
            let _ = self.poll.registry().deregister(conn.stream());
        }
    }
}
