//! Miner connections: the login / submit / keepalived state machine (RFC section 6) and
//! delivery of jobs to miners.

use super::{IDLE_TIMEOUT, LOGIN_TIMEOUT, MAX_MINER_LINE, MAX_MINER_OUT, Proxy, Route, custom_diff};
use crate::net::{Conn, ConnError, Fill};
use crate::splitter::{Mapper, Pending};
use crate::stats::RateMeter;
use crate::stats::workers::LoginFields;
use crate::stratum::algo::AlgoSet;
use crate::stratum::request::{self, Login, Method, RequestId, Submit};
use crate::stratum::{StratumError, write};
use crate::{GroupId, MinerId, UpstreamId};
use mio::net::TcpStream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Where a miner is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MinerState {
    /// Connected, no login yet.
    WaitLogin,
    /// Logged in; the login reply goes out with the first job.
    WaitReady { login_id: RequestId },
    /// Receiving jobs and submitting shares.
    Ready,
    /// Being closed at the end of this loop pass.
    Closing,
}

impl MinerState {
    /// The RFC's numeric state (0 WaitLogin .. 3 Closing).
    pub fn code(&self) -> u8 {
        match self {
            Self::WaitLogin => 0,
            Self::WaitReady { .. } => 1,
            Self::Ready => 2,
            Self::Closing => 3,
        }
    }
}

/// Login details kept for monitoring. Boxed so a miner that never logs in costs nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Shared with every miner using the same wallet (see `intern.rs`).
    pub user: Arc<str>,
    /// Shared with every miner running the same version.
    pub agent: Arc<str>,
    pub rig_id: Option<Box<str>>,
}

/// A miner on its way between upstreams (see `moves.rs`). Boxed: most miners never move,
/// and a miner that is not moving costs 8 bytes for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moving {
    /// A slot reserved on the upstream the miner moves to; it arrives with that
    /// upstream's first job.
    pub to: Option<Route>,
    /// The balance asked to move the miner to this lane of its group at its upstream's
    /// next job, or at the instant at the latest.
    pub planned: Option<(usize, Instant)>,
    /// Where the miner mined before its last move: shares for jobs from there are still
    /// checked and sent there until the instant.
    pub from: Option<(Route, Instant)>,
}

/// One miner connection.
#[derive(Debug)]
pub struct Miner {
    /// Process-wide sequence number (never reused, unlike the slab key).
    pub seq: u64,
    pub conn: Conn,
    pub state: MinerState,
    pub peer: SocketAddr,
    pub local_port: u16,
    pub session: u64,
    /// The pool group the miner mines to (its port's, or its account's).
    pub group: GroupId,
    pub route: Option<Route>,
    pub moving: Option<Box<Moving>>,
    /// The miner's hashrate, for balancing weighted groups.
    pub rate: RateMeter,
    pub custom_diff: u64,
    /// Difficulty of the last job sent.
    pub diff: u64,
    pub algos: AlgoSet,
    pub identity: Option<Box<Identity>>,
    /// Worker record key (see `stats::Workers`).
    pub worker: Option<usize>,
    pub last_seen: Instant,
}

impl Miner {
    pub fn new(seq: u64, stream: TcpStream, peer: SocketAddr, local_port: u16, group: GroupId, clock: u32, now: Instant) -> Miner {
        Miner {
            seq,
            conn: Conn::new(stream, MAX_MINER_OUT),
            state: MinerState::WaitLogin,
            peer,
            local_port,
            session: 0,
            group,
            route: None,
            moving: None,
            rate: RateMeter::new(clock),
            custom_diff: 0,
            diff: 0,
            algos: AlgoSet::default(),
            identity: None,
            worker: None,
            last_seen: now,
        }
    }

    /// The login name (wallet without a `+diff` suffix), or "-" before login.
    pub fn user(&self) -> &str {
        self.identity.as_ref().map(|i| &*i.user).unwrap_or("-")
    }

    /// The session id as the miner sees it.
    pub fn session_hex(&self) -> String {
        format!("{:016x}", self.session)
    }

    fn owns_session(&self, id: &str) -> bool {
        id.len() == 16 && u64::from_str_radix(id, 16).is_ok_and(|s| s == self.session)
    }

    /// Where the miner mined before a move, while shares for its jobs are still honoured.
    pub fn moved_from(&self, now: Instant) -> Option<Route> {
        self.moving.as_ref().and_then(|m| m.from).filter(|(_, until)| now < *until).map(|(r, _)| r)
    }
}

/// Sends a mapper's current job to one miner: the login reply for a miner waiting for its
/// first job, a job notification otherwise. Only the fixed byte is patched per miner. A job
/// counts as activity (RFC 6): a slow miner that rarely finds a share is not idle.
pub(super) fn deliver_job(
    mapper: &mut Mapper,
    miner: &mut Miner,
    slot: u8,
    scratch: &mut Vec<u8>,
    extensions: &[&str],
    now: Instant,
) -> Result<(), String> {
    if matches!(miner.state, MinerState::WaitLogin | MinerState::Closing) {
        return Ok(());
    }
    if let Some(algo) = mapper.job().and_then(|j| j.algo.as_deref())
        && !miner.algos.allows(algo)
    {
        if let MinerState::WaitReady { login_id } = &miner.state {
            scratch.clear();
            write::error_reply(scratch, login_id, &StratumError::UnsupportedAlgo(algo.to_string()));
            let _ = miner.conn.send(scratch);
        }
        return Err(format!("cannot mine the pool's algorithm {algo}"));
    }
    let Some(line) = mapper.job_line(miner.custom_diff, slot) else { return Ok(()) };
    miner.diff = line.diff;
    let sent = match std::mem::replace(&mut miner.state, MinerState::Ready) {
        MinerState::WaitReady { login_id } => {
            scratch.clear();
            write::login_reply(scratch, &login_id, &miner.session_hex(), line, extensions);
            miner.conn.send(scratch)
        }
        _ => miner.conn.send(&line.line),
    };
    miner.last_seen = now;
    sent.map_err(|e| e.to_string())
}

impl Proxy {
    /// Readiness on a miner socket; `drain` when the peer closed or the socket failed.
    pub(super) fn miner_event(&mut self, id: MinerId, readable: bool, writable: bool, drain: bool, now: Instant) {
        let Some(miner) = self.miners.get_mut(id.0) else { return };
        if miner.state == MinerState::Closing {
            return;
        }
        if writable && let Err(e) = miner.conn.flush() {
            self.close_miner(id, &e.to_string());
            return;
        }
        if readable || drain {
            self.miner_readable(id, drain, now);
        }
    }

    /// Reads every complete line the miner sent; an over-long line or bad request closes it.
    fn miner_readable(&mut self, id: MinerId, drain: bool, now: Instant) {
        let mut reader = std::mem::replace(&mut self.reader, crate::net::LineReader::new(0));
        while let Some(miner) = self.miners.get_mut(id.0) {
            let fill = reader.fill(&mut miner.conn, drain);
            let mut failed: Option<String> = None;
            while let Some(line) = reader.next_line(MAX_MINER_LINE) {
                match line {
                    Ok(range) => {
                        self.miner_line(id, reader.line(range), now);
                        if self.miners.get(id.0).is_none_or(|m| m.state == MinerState::Closing) {
                            break;
                        }
                    }
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
            let closing = self.miners.get(id.0).is_none_or(|m| m.state == MinerState::Closing);
            if let Some(why) = failed {
                log::warn!("miner {}: {why}, closing", self.miners[id.0].peer);
                self.close_miner(id, &why);
            }
            match fill {
                _ if closing || self.miners[id.0].state == MinerState::Closing => {
                    reader.clear();
                    break;
                }
                Ok(Fill::Full) => continue,
                Ok(Fill::WouldBlock) => {
                    reader.stash(&mut self.miners[id.0].conn);
                    break;
                }
                Ok(Fill::Eof) => {
                    reader.clear();
                    self.close_miner(id, "closed by peer");
                    break;
                }
                Err(e) => {
                    reader.clear();
                    if matches!(&e, ConnError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData) {
                        // A failed TLS handshake or a corrupt record: worth an operator's eye.
                        log::info!("miner {}: {e}, closing", self.miners[id.0].peer);
                    }
                    self.close_miner(id, &e.to_string());
                    break;
                }
            }
        }
        self.reader = reader;
    }

    fn miner_line(&mut self, id: MinerId, line: &[u8], now: Instant) {
        let Some(req) = request::parse(line) else {
            self.close_miner(id, "malformed request");
            return;
        };
        let miner = &mut self.miners[id.0];
        miner.last_seen = now;
        match (&miner.state, req.method) {
            (MinerState::WaitLogin, Method::Login(login)) => self.login(id, req.id.into(), login, now),
            (MinerState::WaitLogin, _) => self.close_miner(id, "first request is not a login"),
            (_, Method::Submit(s)) => self.submit(id, req.id, s, now),
            (_, Method::Keepalive) => self.reply_status(id, req.id, "KEEPALIVED"),
            (_, Method::Login(_) | Method::Other(_)) => self.reply_error(id, req.id, &StratumError::InvalidMethod),
        }
    }

    /// RFC 6.1: checks the login, attaches the miner to an upstream, and answers at once if
    /// that upstream has a job (otherwise when the first job arrives).
    fn login(&mut self, id: MinerId, req_id: RequestId, login: Login, now: Instant) {
        let Some(wallet) = login.login.as_deref() else {
            return self.refuse_login(id, &req_id, StratumError::InvalidAddress);
        };
        if let Some(pass) = self.cfg.access_password.as_deref()
            && !constant_time_eq(pass.as_bytes(), login.pass.as_bytes())
        {
            return self.refuse_login(id, &req_id, StratumError::InvalidPassword);
        }
        let (user, custom_diff) = custom_diff::split(wallet, self.cfg.custom_diff);
        let algos = AlgoSet::from_names(login.algos.iter().map(String::as_str));
        let group = match self.login_group(id, user) {
            Ok(g) => g,
            Err(e) => return self.refuse_login(id, &req_id, e),
        };
        self.miners[id.0].group = group;
        let (assigned, custom_diff) = match self.unpark(user, login.rigid.as_deref(), group, id, now) {
            // A rig back within the grace period keeps the difficulty it had unless it asks anew.
            Some((a, kept)) => (a, if custom_diff == self.cfg.custom_diff { kept } else { custom_diff }),
            None => match self.place(group, id, now) {
                Ok(a) => (a, custom_diff),
                Err(e) => return self.refuse_login(id, &req_id, e),
            },
        };
        let session = self.rng.next();
        let clock = self.clock(now);
        let peer_ip = self.miners[id.0].peer.ip();
        let fields = LoginFields { user, pass: &login.pass, agent: &login.agent, rig_id: login.rigid.as_deref(), ip: peer_ip, custom_diff };
        let worker = self.workers.name_for(&fields).and_then(|name| self.workers.attach(&name, user, peer_ip, clock));
        if let Some(w) = worker {
            self.note_worker_pool(w, assigned.upstream);
        }
        let miner = &mut self.miners[id.0];
        miner.worker = worker;
        miner.session = session;
        miner.custom_diff = custom_diff;
        miner.algos = algos;
        miner.route = Some(Route::new(assigned.upstream, assigned.slot));
        let (user_ref, agent_ref) = (self.interner.get(user), self.interner.get(&login.agent));
        let miner = &mut self.miners[id.0];
        miner.identity = Some(Box::new(Identity { user: user_ref, agent: agent_ref, rig_id: login.rigid.map(String::into_boxed_str) }));
        miner.state = MinerState::WaitReady { login_id: req_id };
        log::debug!("miner {} logged in as {user} on upstream #{} slot {}", miner.peer, assigned.upstream.0, assigned.slot);
        self.log_connect(id);
        if assigned.created {
            self.connect_link(assigned.upstream, now);
        }
        let Proxy { splitter, miners, scratch, extensions, .. } = self;
        if let Some(mapper) = splitter.mapper_mut(assigned.upstream).filter(|m| m.is_live())
            && let Err(why) = deliver_job(mapper, &mut miners[id.0], assigned.slot, scratch, extensions, now)
        {
            self.close_miner(id, &why);
        }
    }

    fn refuse_login(&mut self, id: MinerId, req_id: &str, err: StratumError) {
        log::info!("miner {} login refused: {err}", self.miners[id.0].peer);
        self.reply_error(id, req_id, &err);
        self.close_miner(id, "login refused");
    }

    /// RFC 6.2 plus the proxy's own checks; good shares go upstream, answered on reply.
    /// A miner that was just moved may still send shares for its previous upstream's jobs:
    /// within the grace window they are checked and sent there.
    fn submit(&mut self, id: MinerId, req_id: &str, s: Submit<'_>, now: Instant) {
        let miner = &self.miners[id.0];
        let route = match (&miner.state, miner.route) {
            (MinerState::Ready, Some(route)) if miner.owns_session(&s.session) => route,
            _ => return self.reply_error(id, req_id, &StratumError::Unauthenticated),
        };
        if s.job_id.is_empty() {
            return self.reply_error(id, req_id, &StratumError::MissingJobId);
        }
        let (custom_diff, seq, worker, diff) = (miner.custom_diff, miner.seq, miner.worker, miner.diff);
        let previous = miner.moved_from(now);
        let mut checked = self.check_share(route, custom_diff, &s);
        if let (Err(StratumError::InvalidJobId), Some(old)) = (&checked, previous) {
            checked = self.check_share(old, custom_diff, &s);
        }
        let (uid, share) = match checked {
            Ok(ok) => ok,
            Err(e) => {
                self.share_refused(Some(id), worker, diff, &e);
                return self.reply_error(id, req_id, &e);
            }
        };
        if !share.forward {
            // Meets the miner's custom difficulty but not the pool's: counted, not sent.
            self.share_accepted(uid, Some(id), worker, &share, None, now);
            return self.reply_status(id, req_id, "OK");
        }
        let share_diff = share.diff;
        let pending = Pending { miner: id, miner_seq: seq, worker, request_id: req_id.into(), share, sent: now };
        if let Err(e) = self.forward_share(uid, &s, pending, now) {
            self.share_refused(Some(id), worker, share_diff, &e);
            self.reply_error(id, req_id, &e);
        }
    }

    /// The mapper's checks of a share on the upstream and slot of `route`.
    fn check_share(
        &mut self,
        route: Route,
        custom_diff: u64,
        s: &Submit<'_>,
    ) -> Result<(UpstreamId, crate::splitter::Share), StratumError> {
        let uid = route.upstream();
        let mapper = self.splitter.mapper_mut(uid).ok_or(StratumError::PoolUnavailable)?;
        mapper.check_share(route.slot, custom_diff, &s.job_id, &s.nonce, &s.result).map(|share| (uid, share))
    }

    /// Answers a miner's submit once the pool of upstream `uid` has (or once it cannot).
    pub(super) fn answer_share(&mut self, uid: UpstreamId, p: Pending, result: Result<(), StratumError>, now: Instant) {
        let alive = self.miners.get(p.miner.0).is_some_and(|m| m.seq == p.miner_seq);
        let miner = alive.then_some(p.miner);
        match &result {
            Ok(()) => self.share_accepted(uid, miner, p.worker, &p.share, Some(now.saturating_duration_since(p.sent)), now),
            Err(e) => self.share_refused(miner, p.worker, p.share.diff, e),
        }
        if !alive {
            return;
        }
        match result {
            Ok(()) => self.reply_status(p.miner, p.request_id.as_str(), "OK"),
            Err(e) => self.reply_error(p.miner, p.request_id.as_str(), &e),
        }
    }

    fn reply_status(&mut self, id: MinerId, req_id: &str, status: &str) {
        self.scratch.clear();
        write::status_reply(&mut self.scratch, req_id, status);
        self.send_scratch(id);
    }

    fn reply_error(&mut self, id: MinerId, req_id: &str, err: &StratumError) {
        self.scratch.clear();
        write::error_reply(&mut self.scratch, req_id, err);
        self.send_scratch(id);
    }

    fn send_scratch(&mut self, id: MinerId) {
        let Some(miner) = self.miners.get_mut(id.0) else { return };
        if let Err(e) = miner.conn.send(&self.scratch) {
            self.close_miner(id, &e.to_string());
        }
    }

    /// Marks a miner for removal at the end of this loop pass.
    pub(super) fn close_miner(&mut self, id: MinerId, why: &str) {
        let Some(miner) = self.miners.get_mut(id.0) else { return };
        if miner.state == MinerState::Closing {
            return;
        }
        log::debug!("miner {} (#{}) closing: {why}", miner.peer, miner.seq);
        miner.state = MinerState::Closing;
        self.closing.push(id);
    }

    /// Removes the miners closed during this pass and frees their slots.
    pub(super) fn reap(&mut self, now: Instant) {
        while let Some(id) = self.closing.pop() {
            if self.miners.get(id.0).is_none_or(|m| m.state != MinerState::Closing) {
                continue;
            }
            let mut miner = self.miners.remove(id.0);
            // One last try for a reply queued just before the close (errors are moot now).
            let _ = miner.conn.flush();
            let _ = self.poll.registry().deregister(miner.conn.stream());
            self.stats.on_close();
            if let Some(w) = miner.worker {
                let clock = self.clock(now);
                self.workers.detach(w, clock);
            }
            if miner.identity.is_some() && self.access_log.is_enabled() {
                self.log_close(miner.peer, miner.user(), miner.conn.rx, miner.conn.tx);
            }
            if let Some(to) = miner.moving.as_ref().and_then(|m| m.to)
                && let Some((uid, link)) = self.splitter.release(to.upstream(), to.slot, id, now)
            {
                self.close_link(uid, link);
            }
            self.park(&miner, now);
            if let Some(route) = miner.route
                && let Some((uid, link)) = self.splitter.logout(route.upstream(), route.slot, id, now)
            {
                self.close_link(uid, link);
            }
        }
    }

    /// Login and inactivity timeouts, and moves that are due (a scan per second costs
    /// nothing next to the I/O).
    pub(super) fn miner_timeouts(&mut self, now: Instant) {
        let mut expired = Vec::new();
        let mut due_moves = Vec::new();
        for (key, m) in &mut self.miners {
            if let Some(mv) = m.moving.as_deref_mut() {
                if mv.from.is_some_and(|(_, until)| now >= until) {
                    mv.from = None;
                }
                if let Some((lane, by)) = mv.planned
                    && now >= by
                {
                    due_moves.push((MinerId(key), lane));
                }
                if *mv == Moving::default() {
                    m.moving = None;
                }
            }
            let quiet = now.saturating_duration_since(m.last_seen);
            match m.state {
                MinerState::WaitLogin if quiet >= LOGIN_TIMEOUT => expired.push((key, "login timeout")),
                MinerState::WaitReady { .. } | MinerState::Ready if quiet >= IDLE_TIMEOUT => expired.push((key, "inactivity timeout")),
                _ => {}
            }
        }
        for (key, why) in expired {
            if why != "login timeout" {
                log::warn!("miner {}: {why}, closing", self.miners[key].peer);
            }
            self.close_miner(MinerId(key), why);
        }
        for (id, lane) in due_moves {
            self.move_miner(id, lane, now);
        }
    }
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miner_record_stays_small() {
        // Per-miner memory is the proxy's main cost at scale (see BENCHMARKS.md).
        assert!(std::mem::size_of::<Miner>() <= 232, "{} bytes", std::mem::size_of::<Miner>());
    }
}
