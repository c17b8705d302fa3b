//! The CryptoNote (xmrig) dialect of a miner: `login` with a wallet, session-bound
//! `submit` of a nonce and result, `keepalived`, and jobs as blobs with a target; the
//! login reply carries the first job.

use super::{Delivery, Identity, Miner, MinerState, Proto, Undelivered, constant_time_eq};
use crate::logs::{PeerText, Topic};
use crate::proxy::accounts::worker_user;
use crate::proxy::{Proxy, Route, custom_diff};
use crate::splitter::vardiff::VardiffConfig;
use crate::splitter::{Mapper, Pending};
use crate::stats::workers::LoginFields;
use crate::stratum::algo::AlgoSet;
use crate::stratum::request::{self, Login, Method, Submit};
use crate::stratum::{StratumError, write};
use crate::{MinerId, UpstreamId};
use std::time::Instant;

pub use crate::stratum::request::RequestId;

/// What the CryptoNote dialect keeps per miner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CnMiner {
    /// The session id the miner must send with each submit.
    pub session: u64,
    /// Difficulty of the last job sent.
    pub diff: u64,
    /// The algorithms it listed at login.
    pub algos: AlgoSet,
}

impl CnMiner {
    /// The session id as the miner sees it.
    pub fn session_hex(&self) -> String {
        format!("{:016x}", self.session)
    }

    fn owns_session(&self, id: &str) -> bool {
        id.len() == 16 && u64::from_str_radix(id, 16).is_ok_and(|s| s == self.session)
    }
}

/// Sends a mapper's current job to one miner: the login reply for a miner waiting for its
/// first job, a job notification otherwise. Only the fixed byte is patched per miner. A job
/// counts as activity (RFC 6): a slow miner that rarely finds a share is not idle.
pub(super) fn deliver_job(
    mapper: &mut Mapper,
    miner: &mut Miner,
    slot: u16,
    vd: &VardiffConfig,
    d: &mut Delivery<'_>,
) -> Result<(), Undelivered> {
    let (scratch, extensions, now) = (&mut *d.scratch, d.extensions, d.now);
    if matches!(miner.state, MinerState::WaitLogin | MinerState::Closing) {
        return Ok(());
    }
    let Proto::CryptoNote(cn) = &mut miner.proto else { return Ok(()) };
    if let Some(algo) = mapper.job().and_then(|j| j.algo.as_deref())
        && !cn.algos.allows(algo)
    {
        if let MinerState::WaitReady { login_id } = &miner.state {
            scratch.clear();
            write::error_reply(scratch, login_id, &StratumError::UnsupportedAlgo(algo.to_string()));
            let _ = miner.conn.send(scratch);
        }
        return Err(Undelivered::Unfit(format!("it cannot mine the pool's algorithm {algo}")));
    }
    let Some(pool_diff) = mapper.pool_difficulty() else { return Ok(()) };
    let diff = miner.diff_mode.difficulty_cryptonote(vd, pool_diff as u64);
    let Some(line) = mapper.job_line(diff, slot) else { return Ok(()) };
    cn.diff = line.diff;
    let session = cn.session_hex();
    let sent = match std::mem::replace(&mut miner.state, MinerState::Ready) {
        MinerState::WaitReady { login_id } => {
            scratch.clear();
            write::login_reply(scratch, &login_id, &session, line, extensions);
            miner.conn.send(scratch)
        }
        _ => miner.conn.send(&line.line),
    };
    miner.last_seen = now;
    sent.map_err(Undelivered::Io)
}

impl Proxy {
    /// One line from a CryptoNote miner.
    pub(super) fn cryptonote_line(&mut self, id: MinerId, line: &[u8], now: Instant) {
        let Some(req) = request::parse(line) else {
            self.close_miner(id, "malformed request");
            return;
        };
        match (&self.miners[id.0].state, req.method) {
            (MinerState::WaitLogin, Method::Login(login)) => self.login(id, req.id.into(), login, now),
            (MinerState::WaitLogin, _) => self.close_miner(id, "first request is not a login"),
            (_, Method::Submit(s)) => self.submit(id, req.id, s, now),
            (_, Method::Keepalive) => self.reply_status(id, req.id, "KEEPALIVED"),
            (_, Method::Login(_) | Method::Other(_)) => self.reply_error(id, req.id, &StratumError::InvalidMethod),
        }
    }

    /// The pool's answer to a share, for a CryptoNote miner.
    pub(super) fn cryptonote_answer(&mut self, id: MinerId, req_id: &str, result: Result<(), StratumError>) {
        match result {
            Ok(()) => self.reply_status(id, req_id, "OK"),
            Err(e) => self.reply_error(id, req_id, &e),
        }
    }

    /// RFC 6.1: checks the login, attaches the miner to an upstream, and answers at once if
    /// that upstream has a job (otherwise when the first job arrives).
    fn login(&mut self, id: MinerId, req_id: RequestId, login: Login, now: Instant) {
        let Some(wallet) = login.login.as_deref() else {
            return self.refuse_login(id, &req_id, "-", StratumError::InvalidAddress, now);
        };
        if let Some(pass) = self.cfg.access_password.as_deref()
            && !constant_time_eq(pass.as_bytes(), login.pass.as_bytes())
        {
            return self.refuse_login(id, &req_id, wallet, StratumError::InvalidPassword, now);
        }
        let (user, custom_diff) = custom_diff::split(wallet, self.cfg.custom_diff);
        let algos = AlgoSet::from_names(login.algos.iter().map(String::as_str));
        let group = match self.login_group(id, user) {
            Ok(g) => g,
            Err(e) => return self.refuse_login(id, &req_id, user, e, now),
        };
        if self.groups.get(group).is_some_and(|g| g.dialect() != crate::stratum::algo::Dialect::CryptoNote) {
            return self.refuse_login(
                id,
                &req_id,
                user,
                StratumError::Pool("This pool speaks stratum v1: use a stratum v1 miner".into()),
                now,
            );
        }
        self.miners[id.0].group = group;
        let (refused, no_nicehash) = self.rig_standing(user, login.rigid.as_deref(), now);
        if refused {
            return self.refuse_login(id, &req_id, user, StratumError::RigRefused, now);
        }
        let alone = no_nicehash.then_some(crate::splitter::Alone::NoNiceHash).filter(|_| self.cfg.mode == crate::config::Mode::NiceHash);
        let (assigned, kept) = match self.unpark(user, login.rigid.as_deref(), group, id, now) {
            Some((a, kept)) => (a, Some(kept)),
            None => match self.place_for(group, id, alone, now) {
                Ok(a) => (a, None),
                Err(e) => return self.refuse_login(id, &req_id, user, e, now),
            },
        };
        // A rig back within the grace period keeps the difficulty it had unless it asks
        // for one anew.
        let asked = custom_diff != self.cfg.custom_diff;
        let diff_mode = match kept {
            Some(kept) if !asked => kept,
            _ => self.login_difficulty(id, custom_diff as f64, assigned.upstream, now),
        };
        let session = self.rng.next();
        let clock = self.clock(now);
        let peer_ip = self.miners[id.0].peer.ip();
        let fields = LoginFields { user, pass: &login.pass, agent: &login.agent, rig_id: login.rigid.as_deref(), ip: peer_ip, custom_diff };
        let shown_user = worker_user(&self.groups, group, user);
        let worker = self.workers.name_for(&fields).and_then(|name| self.workers.attach(&name, shown_user, peer_ip, clock));
        if let Some(w) = worker {
            self.note_worker_pool(w, assigned.upstream);
        }
        let miner = &mut self.miners[id.0];
        miner.set_worker(worker);
        miner.proto = Proto::CryptoNote(CnMiner { session, diff: 0, algos });
        miner.diff_mode = diff_mode;
        miner.route = Some(Route::new(assigned.upstream, assigned.slot));
        let (user_ref, agent_ref) = (self.interner.get(user), self.interner.get(&login.agent));
        let miner = &mut self.miners[id.0];
        miner.identity = Some(Box::new(Identity {
            user: user_ref,
            agent: agent_ref,
            rig_id: login.rigid.map(String::into_boxed_str),
            verdicts: Default::default(),
            invalid_run: Default::default(),
        }));
        miner.state = MinerState::WaitReady { login_id: req_id };
        log::debug!("miner {} logged in as {user} on upstream #{} slot {}", miner.peer, assigned.upstream.0, assigned.slot);
        self.log_connect(id);
        if assigned.created {
            self.connect_link(assigned.upstream, now);
        }
        self.deliver_to(id, now);
    }

    /// Answers a login with `err` and closes. A misconfigured rig retries every few seconds
    /// for as long as it runs: a line per reason now and then (see `logs::limiter`).
    fn refuse_login(&mut self, id: MinerId, req_id: &str, user: &str, err: StratumError, now: Instant) {
        let peer = self.miners[id.0].peer;
        let user = PeerText(user);
        if self.log_limiter.admit(Topic::LoginRefused, err.message(), format_args!("{peer} ({user})"), now) {
            log::info!("miner {peer} ({user}) login refused: {err}");
        }
        self.reply_error(id, req_id, &err);
        self.close_miner(id, "login refused");
    }

    /// RFC 6.2 plus the proxy's own checks; good shares go upstream, answered on reply.
    /// A miner that was just moved may still send shares for its previous upstream's jobs:
    /// within the grace window they are checked and sent there.
    fn submit(&mut self, id: MinerId, req_id: &str, s: Submit<'_>, now: Instant) {
        let miner = &self.miners[id.0];
        let Proto::CryptoNote(cn) = &miner.proto else { return };
        let route = match (&miner.state, miner.route) {
            (MinerState::Ready, Some(route)) if cn.owns_session(&s.session) => route,
            _ => return self.reply_error(id, req_id, &StratumError::Unauthenticated),
        };
        if s.job_id.is_empty() {
            return self.reply_error(id, req_id, &StratumError::MissingJobId);
        }
        let (seq, worker, diff) = (miner.seq, miner.worker(), cn.diff);
        let previous = miner.moved_from(now);
        let mut checked = self.check_share(route, &s);
        if let (Err(StratumError::InvalidJobId), Some(old)) = (&checked, previous) {
            checked = self.check_share(old, &s);
        }
        let (uid, share) = match checked {
            Ok(ok) => ok,
            Err(e) => {
                self.share_refused(Some(id), worker, diff, &e, now);
                self.reply_error(id, req_id, &e);
                if e == StratumError::IncompatibleNonce {
                    self.no_nicehash(id, now);
                }
                return;
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
            self.share_refused(Some(id), worker, share_diff, &e, now);
            self.reply_error(id, req_id, &e);
        }
    }

    /// The mapper's checks of a share on the upstream and slot of `route`.
    fn check_share(&mut self, route: Route, s: &Submit<'_>) -> Result<(UpstreamId, crate::splitter::Share), StratumError> {
        let uid = route.upstream();
        let mapper = self.splitter.mapper_mut(uid).ok_or(StratumError::PoolUnavailable)?;
        mapper.check_share(route.slot, &s.job_id, &s.nonce, &s.result).map(|share| (uid, share))
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
}
