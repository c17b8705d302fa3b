//! Miner connections: the record, reading lines, closing and reaping, timeouts. What
//! depends on the miner's dialect (its login, submits, replies and how a job reaches it)
//! is dispatched on `Proto` in one place each (`miner_line`, `deliver_job`,
//! `answer_share`): `cryptonote.rs` is the xmrig dialect.

mod cryptonote;
mod v1;

pub use cryptonote::CnMiner;
pub use v1::V1Miner;

use super::{IDLE_TIMEOUT, LOGIN_TIMEOUT, MAX_MINER_LINE, MAX_MINER_OUT, MAX_MINER_REQUESTS, Proxy, Route};
use crate::config::BindProtocol;
use crate::logs::{PeerText, Topic};
use crate::net::{Conn, ConnError, Fill};
use crate::splitter::Seat;
use crate::splitter::vardiff::{MinerDiff, VardiffConfig};
use crate::splitter::{Mapper, Pending};
use crate::stats::RateMeter;
use crate::stratum::StratumError;
use crate::stratum::algo::Dialect;
use crate::{GroupId, MinerId, UpstreamId};
use mio::net::TcpStream;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

/// Where a miner is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MinerState {
    /// Connected, no login yet.
    WaitLogin,
    /// Logged in; the login reply goes out with the first job.
    WaitReady { login_id: cryptonote::RequestId },
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
    /// The pool's verdicts on its last shares (for quarantine). Here rather than in the
    /// miner record: only logged-in miners have them, and the box has room for 4 bytes.
    pub verdicts: crate::stats::Verdicts,
    /// Its shares the proxy's checks refused lately (for quarantine), in the box's last 4
    /// bytes. A live upgrade starts it over.
    pub invalid_run: crate::stats::InvalidRun,
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

/// What a miner's dialect keeps per miner.
#[derive(Debug)]
pub enum Proto {
    /// Nothing read yet: the first line decides (among what the port takes).
    Undecided(BindProtocol),
    CryptoNote(CnMiner),
    /// Boxed: a v1 miner keeps more (prefix, version mask, difficulties).
    V1(Box<V1Miner>),
}

/// The dialect a first line speaks: `login` is CryptoNote, `mining.*` is stratum v1.
fn sniff(line: &[u8]) -> Option<Dialect> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    let env: Envelope<'_> = serde_json::from_slice(line).ok()?;
    match env.method.as_deref()? {
        "login" => Some(Dialect::CryptoNote),
        m if m.starts_with("mining.") => Some(Dialect::StratumV1),
        _ => None,
    }
}

/// One miner connection.
#[derive(Debug)]
pub struct Miner {
    /// Process-wide sequence number (never reused, unlike the slab key).
    pub seq: u64,
    pub conn: Conn,
    pub state: MinerState,
    pub peer: SocketAddr,
    /// The pool group the miner mines to (its port's, or its account's).
    pub group: GroupId,
    pub route: Option<Route>,
    pub moving: Option<Box<Moving>>,
    /// The miner's hashrate, for balancing weighted groups.
    pub rate: RateMeter,

    /// How its difficulty is decided: the pool's, fixed (`WALLET+N`, `custom-diff`), or
    /// vardiff (see `difficulty.rs`).
    pub diff_mode: MinerDiff,
    /// The port it came in on (its vardiff settings).
    pub port: u8,
    pub proto: Proto,
    pub identity: Option<Box<Identity>>,
    /// Worker record key + 1 (see `stats::Workers`), kept in 4 bytes (keys stay below
    /// `MAX_WORKERS`); read it with `worker()`.
    worker_key: Option<NonZeroU32>,
    /// Requests (lines) read since the last tick: more than `MAX_MINER_REQUESTS` close it.
    requests: u16,
    pub last_seen: Instant,
}

impl Miner {
    #[allow(clippy::too_many_arguments)]
    /// A connection accepted on port `port` (its bind's index), mining to `group`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        seq: u64,
        stream: TcpStream,
        peer: SocketAddr,
        port: u8,
        group: GroupId,
        protocol: BindProtocol,
        clock: u32,
        now: Instant,
    ) -> Miner {
        Miner {
            seq,
            conn: Conn::new(stream, MAX_MINER_OUT),
            state: MinerState::WaitLogin,
            peer,
            group,
            route: None,
            moving: None,
            rate: RateMeter::new(clock),
            diff_mode: MinerDiff::Pool,
            port,
            proto: Proto::Undecided(protocol),
            identity: None,
            worker_key: None,
            requests: 0,
            last_seen: now,
        }
    }

    /// A miner a live upgrade handed over, in the state it was in (the rest is set by the
    /// caller).
    #[allow(clippy::too_many_arguments)]
    pub(in crate::proxy) fn adopted(
        seq: u64,
        conn: Conn,
        peer: SocketAddr,
        port: u8,
        group: GroupId,
        state: MinerState,
        proto: Proto,
        last_seen: Instant,
    ) -> Miner {
        Miner {
            seq,
            conn,
            state,
            peer,
            group,
            route: None,
            moving: None,
            rate: RateMeter::new(0),
            diff_mode: MinerDiff::Pool,
            port,
            proto,
            identity: None,
            worker_key: None,
            requests: 0,
            last_seen,
        }
    }

    /// The login name (wallet without a `+diff` suffix), or "-" before login.
    pub fn user(&self) -> &str {
        self.identity.as_ref().map(|i| &*i.user).unwrap_or("-")
    }

    /// Difficulty of the last job sent (0 before the first).
    pub fn diff(&self) -> f64 {
        match &self.proto {
            Proto::Undecided(_) => 0.0,
            Proto::CryptoNote(cn) => cn.diff as f64,
            Proto::V1(v) => v.difficulty.current(),
        }
    }

    /// Its worker record key.
    pub fn worker(&self) -> Option<usize> {
        self.worker_key.map(|w| w.get() as usize - 1)
    }

    /// Ties the miner to worker record `key`.
    pub fn set_worker(&mut self, key: Option<usize>) {
        self.worker_key = key.and_then(|k| u32::try_from(k + 1).ok()).and_then(NonZeroU32::new);
    }

    /// The miner is about to get its first job from another upstream: a v1 miner needs
    /// its difficulty and a clean job there.
    pub fn new_upstream(&mut self) {
        if let Proto::V1(v) = &mut self.proto {
            v.primed = false;
        }
    }

    /// The dialect the miner speaks, once it has said.
    pub fn dialect(&self) -> Option<Dialect> {
        match &self.proto {
            Proto::Undecided(_) => None,
            Proto::CryptoNote(_) => Some(Dialect::CryptoNote),
            Proto::V1(_) => Some(Dialect::StratumV1),
        }
    }

    /// Where the miner mined before a move, while shares for its jobs are still honoured.
    pub fn moved_from(&self, now: Instant) -> Option<Route> {
        self.moving.as_ref().and_then(|m| m.from).filter(|(_, until)| now < *until).map(|(r, _)| r)
    }
}
/// What a job fan-out needs besides the miner and the mapper.
pub(super) struct Delivery<'a> {
    pub scratch: &'a mut Vec<u8>,
    pub extensions: &'a [&'static str],
    /// Vardiff settings by port.
    pub vardiff: &'a [VardiffConfig],
    pub now: Instant,
}

/// Why a job could not go to a miner. The miner is closed either way.
#[derive(Debug)]
pub(super) enum Undelivered {
    /// The miner cannot mine what its upstream sends (the algorithm, the dialect): the
    /// operator hears of it, since the rig will keep coming back.
    Unfit(String),
    /// Its socket failed or its output queue is full: an ordinary departure.
    Io(ConnError),
}

/// Sends a mapper's current job to one miner, in its dialect (see `cryptonote.rs`), at
/// the miner's difficulty.
pub(super) fn deliver_job(mapper: &mut Mapper, miner: &mut Miner, slot: u16, d: &mut Delivery<'_>) -> Result<(), Undelivered> {
    let vd = d.vardiff.get(usize::from(miner.port)).copied().unwrap_or_default();
    match &miner.proto {
        Proto::Undecided(_) => Ok(()),
        Proto::CryptoNote(_) => cryptonote::deliver_job(mapper, miner, slot, &vd, d),
        Proto::V1(_) => v1::deliver_job(mapper, miner, &vd, d),
    }
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
                let m = &self.miners[id.0];
                if self.log_limiter.admit(Topic::MinerDropped, &why, format_args!("{} ({})", m.peer, m.user()), now) {
                    log::warn!("miner {} ({}): {why}, closing", m.peer, m.user());
                }
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
                    let why = e.to_string();
                    // A failed TLS handshake or a corrupt record: worth an operator's eye.
                    if matches!(&e, ConnError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData)
                        && self.log_limiter.admit(Topic::ConnectionRefused, &why, format_args!("{}", self.miners[id.0].peer), now)
                    {
                        log::info!("miner {}: {why}, closing", self.miners[id.0].peer);
                    }
                    self.close_miner(id, &why);
                    break;
                }
            }
        }
        self.reader = reader;
    }

    fn miner_line(&mut self, id: MinerId, line: &[u8], now: Instant) {
        let Some(miner) = self.miners.get_mut(id.0) else { return };
        miner.last_seen = now;
        // Each request costs a parse and a reply, a share a hash: one connection must not
        // take the loop (the count starts over at each tick).
        miner.requests = miner.requests.saturating_add(1);
        if miner.requests > MAX_MINER_REQUESTS {
            let why = "more requests in a second than any rig sends";
            if self.log_limiter.admit(Topic::MinerDropped, why, format_args!("{} ({})", miner.peer, miner.user()), now) {
                log::warn!("miner {} ({}): more than {MAX_MINER_REQUESTS} requests in a second, closing", miner.peer, miner.user());
            }
            return self.close_miner(id, why);
        }
        if let Proto::Undecided(allowed) = miner.proto {
            miner.proto = match (sniff(line), allowed) {
                (Some(Dialect::CryptoNote), BindProtocol::Auto | BindProtocol::CryptoNote) => Proto::CryptoNote(CnMiner::default()),
                (Some(Dialect::StratumV1), BindProtocol::Auto | BindProtocol::StratumV1) => Proto::V1(Box::default()),
                (found, _) => {
                    // A rig on the wrong port retries for ever; a scanner tries every port.
                    let (topic, why) = match found {
                        None => (Topic::ConnectionRefused, "first request is neither a login nor a mining.* request"),
                        Some(_) => (Topic::LoginRefused, "first request is in a dialect this port does not take"),
                    };
                    if self.log_limiter.admit(topic, why, format_args!("{}", miner.peer), now) {
                        log::info!("miner {}: {why}, closing", miner.peer);
                    }
                    return self.close_miner(id, why);
                }
            };
        }
        match &self.miners[id.0].proto {
            Proto::Undecided(_) => {}
            Proto::CryptoNote(_) => self.cryptonote_line(id, line, now),
            Proto::V1(_) => self.v1_line(id, line, now),
        }
    }

    /// Where a miner sits in an upstream of `group`: any slot of a CryptoNote upstream, or
    /// a v1 miner's own prefix with the split it was promised.
    pub(super) fn seat(&self, id: MinerId, group: GroupId) -> Seat {
        let Some(g) = self.groups.get(group).filter(|g| g.dialect() == Dialect::StratumV1) else { return Seat::CryptoNote };
        let algo = g.pools.first().and_then(|p| p.algo.as_deref());
        let pow = algo.and_then(crate::stratum::v1::header::Pow::for_algo);
        let divider = algo.map_or(crate::stratum::algo::divider("sha256d"), crate::stratum::algo::divider);
        let (slot, promise) = match self.miners.get(id.0).map(|m| &m.proto) {
            Some(Proto::V1(v)) => (v.prefix, v.promise),
            _ => (None, crate::splitter::v1::V1Split::STANDARD.promise()),
        };
        Seat::V1 { pow, divider, slot, promise }
    }

    /// Answers a miner's submit once the pool of upstream `uid` has (or once it cannot).
    pub(super) fn answer_share(&mut self, uid: UpstreamId, p: Pending, result: Result<(), StratumError>, now: Instant) {
        let alive = self.miners.get(p.miner.0).is_some_and(|m| m.seq == p.miner_seq);
        let miner = alive.then_some(p.miner);
        match &result {
            Ok(()) => self.share_accepted(uid, miner, p.worker, &p.share, Some(now.saturating_duration_since(p.sent)), now),
            Err(e) => self.share_refused(miner, p.worker, p.share.diff, e, now),
        }
        if !alive {
            return;
        }
        let verdict = match &result {
            Ok(()) => Some(false),
            Err(StratumError::Pool(_)) => Some(true),
            // A lost link is not the rig's fault.
            Err(_) => None,
        };
        match self.miners[p.miner.0].proto {
            Proto::Undecided(_) => {}
            Proto::CryptoNote(_) => self.cryptonote_answer(p.miner, p.request_id.as_str(), result),
            Proto::V1(_) => self.v1_answer(p.miner, p.request_id.as_str(), result),
        }
        // The pool's own judgement, once the rig has its answer.
        if let Some(rejected) = verdict {
            self.pool_verdict(p.miner, rejected, now);
        }
    }

    /// Sends the scratch buffer to a miner; a failed send closes it.
    fn send_scratch(&mut self, id: MinerId) {
        let Some(miner) = self.miners.get_mut(id.0) else { return };
        if let Err(e) = miner.conn.send(&self.scratch) {
            self.close_miner(id, &e.to_string());
        }
    }

    /// Closes a miner its job could not reach; one that cannot mine its pool's work is
    /// logged (once per reason, then in summaries), as a refused login when it was still
    /// waiting for its first job.
    pub(super) fn close_undelivered(&mut self, id: MinerId, why: Undelivered, now: Instant) {
        let Some(miner) = self.miners.get(id.0) else { return };
        match why {
            Undelivered::Io(e) => self.close_miner(id, &e.to_string()),
            Undelivered::Unfit(why) => {
                let (peer, user) = (miner.peer, PeerText(miner.user()));
                if matches!(miner.state, MinerState::WaitReady { .. }) {
                    if self.log_limiter.admit(Topic::LoginRefused, &why, format_args!("{peer} ({user})"), now) {
                        log::info!("miner {peer} ({user}) login refused: {why}");
                    }
                } else if self.log_limiter.admit(Topic::MinerDropped, &why, format_args!("{peer} ({user})"), now) {
                    log::warn!("miner {peer} ({user}) closed: {why}");
                }
                self.close_miner(id, &why);
            }
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
            if let Some(w) = miner.worker() {
                let clock = self.clock(now);
                self.workers.detach(w, clock);
            }
            if miner.identity.is_some() {
                self.account_miner_left(miner.group);
                if self.access_log.is_enabled() {
                    self.log_close(miner.peer, miner.user(), miner.conn.rx, miner.conn.tx);
                }
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
            m.requests = 0;
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
            let m = &self.miners[key];
            // A farm whose network drops loses every rig to this at once.
            if why != "login timeout" && self.log_limiter.admit(Topic::MinerDropped, why, format_args!("{} ({})", m.peer, m.user()), now) {
                log::warn!("miner {} ({}): {why}, closing", m.peer, m.user());
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
    fn the_worker_key_round_trips_in_four_bytes() {
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(std.local_addr().unwrap()).unwrap();
        let mut m = Miner::new(1, stream, std.local_addr().unwrap(), 0, crate::DEFAULT_GROUP, BindProtocol::Auto, 0, Instant::now());
        for key in [Some(0), Some(1), Some(crate::stats::workers::MAX_WORKERS - 1), None] {
            m.set_worker(key);
            assert_eq!(m.worker(), key);
        }
    }

    #[test]
    fn a_miner_record_stays_small() {
        // Per-miner memory is the proxy's main cost at scale (see BENCHMARKS.md). 200 bytes
        // before pool groups; the move box, the rate meter for weighted groups, the group
        // and the dialect's tag took it to 240. A v1 miner's extra state is boxed.
        assert!(std::mem::size_of::<Miner>() <= 240, "{} bytes", std::mem::size_of::<Miner>());
        // A logged-in miner's box: two shared strings, the rig id, and 8 bytes of quarantine.
        assert!(std::mem::size_of::<Identity>() <= 56, "{} bytes", std::mem::size_of::<Identity>());
    }
}
