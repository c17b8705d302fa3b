//! Rigs on a pool connection of their own, kept instead of cut off:
//!
//! - **No NiceHash support.** A CryptoNote rig whose share ignores its fixed byte cannot
//!   share a pool connection. It is moved, without a disconnect, to one of its own (simple
//!   mode's way: the whole nonce is its), that first share answered with the usual error
//!   and never forwarded. The proxy remembers the rig for a day, so when it reconnects it
//!   goes straight to a connection of its own.
//! - **Quarantine.** The proxy cannot check a RandomX hash, so a rig with a broken GPU
//!   passes the local checks and the pool rejects its shares; enough of those get the
//!   farm's address banned. A rig with `rejects` of its last `window` shares rejected by
//!   the pool is moved to a connection of its own, so a ban falls on it alone. If it goes
//!   on there, it is closed and refused for `cooldown` seconds.
//! - **Shares that fail the proxy's own checks** never reach the pool, so they risk no
//!   ban, but a rig on the wrong algorithm sends nothing else, as fast as it hashes, and
//!   each costs a hash here (scrypt's is not cheap). After `invalid` of them with hardly a
//!   good one between them (see `stats::InvalidRun`) the rig is warned about and, with
//!   quarantine on, closed and refused for `cooldown` seconds like the above.
//!
//! One log line per change of a rig's state (through the log limiter, as a farm-wide
//! mistake changes every rig at once); the state shows in `/1/miners`, `/1/workers` and
//! `/metrics`.

use super::miner::MinerState;
use super::{Proxy, Route};
use crate::logs::Topic;
use crate::splitter::Alone;
use crate::stats::workers::{FLAG_INVALID_SHARES, FLAG_NO_NICEHASH, FLAG_QUARANTINED};
use crate::stratum::StratumError;
use crate::{MinerId, UpstreamId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a rig without NiceHash support is remembered.
const REMEMBER_NO_NICEHASH: Duration = Duration::from_secs(86_400);
/// Rigs remembered at most.
const MAX_NOTES: usize = 100_000;

/// What the proxy remembers of a rig between its connections.
#[derive(Debug, Clone, Copy)]
pub(super) struct RigNote {
    no_nicehash_until: Option<Instant>,
    refused_until: Option<Instant>,
}

/// Rigs by login and rig id.
pub(super) type RigNotes = HashMap<Box<str>, RigNote>;

/// A rig's key: its login and rig id.
pub(super) fn rig_key(user: &str, rig: Option<&str>) -> Box<str> {
    format!("{user}\n{}", rig.unwrap_or("")).into()
}

impl Proxy {
    /// The rig's key, once it has logged in.
    fn key_of(&self, id: MinerId) -> Option<Box<str>> {
        let i = self.miners.get(id.0)?.identity.as_deref()?;
        Some(rig_key(&i.user, i.rig_id.as_deref()))
    }

    /// Whether a login of this rig is refused (in its quarantine cool-down), and whether
    /// it is known to need a connection of its own.
    pub(super) fn rig_standing(&self, user: &str, rig: Option<&str>, now: Instant) -> (bool, bool) {
        let Some(n) = self.rig_notes.get(&rig_key(user, rig)) else { return (false, false) };
        (n.refused_until.is_some_and(|t| now < t), n.no_nicehash_until.is_some_and(|t| now < t))
    }

    /// A CryptoNote rig's share ignored its fixed byte: off to a connection of its own.
    pub(super) fn no_nicehash(&mut self, id: MinerId, now: Instant) {
        if self.cfg.mode != crate::config::Mode::NiceHash {
            return;
        }
        let Some(key) = self.key_of(id) else { return };
        let note = self.rig_notes.entry(key.clone()).or_insert(RigNote { no_nicehash_until: None, refused_until: None });
        let first = note.no_nicehash_until.is_none();
        note.no_nicehash_until = Some(now + REMEMBER_NO_NICEHASH);
        if self.move_alone(id, Alone::NoNiceHash, now) && first {
            let (peer, rig) = (self.miners[id.0].peer, key.replace('\n', "/"));
            if self.log_limiter.admit(Topic::NoNiceHash, "its shares ignore the NiceHash byte", format_args!("{peer} ({rig})"), now) {
                log::info!("miner {peer} ({rig}): its shares ignore the NiceHash byte; moved to a pool connection of its own");
            }
        }
    }

    /// The pool judged a share of this rig (not answered here, not lost with the link).
    pub(super) fn pool_verdict(&mut self, id: MinerId, rejected: bool, now: Instant) {
        let q = self.cfg.quarantine;
        let Some(m) = self.miners.get_mut(id.0) else { return };
        if !q.enabled || m.state == MinerState::Closing {
            return;
        }
        let Some(v) = m.identity.as_deref_mut().map(|i| &mut i.verdicts) else { return };
        v.record(rejected);
        if !rejected || v.rejects(q.window) < u32::from(q.rejects) {
            return;
        }
        v.clear();
        let alone = m.route.and_then(|r| self.splitter.get(r.upstream())).and_then(|u| u.alone);
        let (peer, key) = (m.peer, self.key_of(id).unwrap_or_default());
        let rig = key.replace('\n', "/");
        if alone == Some(Alone::Quarantine) {
            let why = "closed and refused: the pool still rejects its shares on its own connection";
            if self.log_limiter.admit(Topic::RigSetApart, why, format_args!("{peer} ({rig})"), now) {
                log::warn!(
                    "miner {peer} ({rig}): the pool still rejects its shares on its own connection; closed and refused for {} s",
                    q.cooldown_secs
                );
            }
            return self.close_and_refuse(id, key, "quarantine: too many shares rejected by the pool", now);
        }
        let why = "moved to a pool connection of its own: the pool rejects its shares";
        if self.move_alone(id, Alone::Quarantine, now)
            && self.log_limiter.admit(Topic::RigSetApart, why, format_args!("{peer} ({rig})"), now)
        {
            log::warn!(
                "miner {peer} ({rig}): {} of its last {} shares rejected by the pool; moved to a pool connection of its own",
                q.rejects,
                q.window
            );
        }
    }

    /// A share of this rig failed the proxy's own checks (it counts as invalid). After
    /// `invalid` of them with hardly a good one between, the rig is warned about once and,
    /// with quarantine on, closed and refused for the cool-down.
    pub(super) fn invalid_share(&mut self, id: MinerId, err: &StratumError, now: Instant) {
        let q = self.cfg.quarantine;
        let Some(m) = self.miners.get_mut(id.0).filter(|m| m.state != MinerState::Closing) else { return };
        let Some(i) = m.identity.as_deref_mut() else { return };
        // It rises one at a time, so it equals the threshold once per streak.
        let n = i.invalid_run.refused();
        if q.invalid == 0 || n != q.invalid {
            return;
        }
        let (peer, worker) = (m.peer, m.worker());
        let key = self.key_of(id).unwrap_or_default();
        let rig = key.replace('\n', "/");
        let what = err.message();
        let then = if q.enabled { format!("closed and refused for {} s", q.cooldown_secs) } else { "kept: quarantine is off".into() };
        let why = format!("its shares keep failing the proxy's checks: {what}");
        if self.log_limiter.admit(Topic::RigSetApart, &why, format_args!("{peer} ({rig})"), now) {
            log::warn!(
                "miner {peer} ({rig}): {n} shares refused by the proxy's checks with hardly a good one among them \
                 (last: {what}): wrong algorithm or a broken miner? {then}"
            );
        }
        if let Some(w) = worker {
            self.workers.flag(w, FLAG_INVALID_SHARES);
        }
        if q.enabled {
            self.close_and_refuse(id, key, "quarantine: its shares keep failing the proxy's checks", now);
        }
    }

    /// Closes a rig and refuses its logins for the quarantine cool-down.
    fn close_and_refuse(&mut self, id: MinerId, key: Box<str>, why: &str, now: Instant) {
        if self.rig_notes.len() < MAX_NOTES || self.rig_notes.contains_key(&key) {
            let note = self.rig_notes.entry(key).or_insert(RigNote { no_nicehash_until: None, refused_until: None });
            note.refused_until = Some(now + Duration::from_secs(self.cfg.quarantine.cooldown_secs));
        }
        self.rigs_refused += 1;
        self.close_miner(id, why);
    }

    /// Moves a logged-in rig to a pool connection of its own; it arrives with that
    /// connection's first job. False when it is there already or no connection can open.
    fn move_alone(&mut self, id: MinerId, why: Alone, now: Instant) -> bool {
        let Some(m) = self.miners.get(id.0).filter(|m| m.state != MinerState::Closing) else { return false };
        let (Some(route), group, worker) = (m.route, m.group, m.worker()) else { return false };
        if m.moving.as_ref().is_some_and(|mv| mv.to.is_some()) {
            return false;
        }
        let Some(u) = self.splitter.get(route.upstream()) else { return false };
        if u.alone == Some(why) {
            return false;
        }
        let lane = u.lane;
        let seat = self.seat(id, group);
        let a = match self.splitter.place_alone(group, lane, id, seat, why, now) {
            Ok(a) => a,
            Err(e) => {
                // Each bad share of the rig tries again: at rig rate when the proxy is full.
                let why = "cannot open a pool connection of its own";
                if self.log_limiter.admit(Topic::RigSetApart, why, format_args!("{} ({})", m.peer, m.user()), now) {
                    log::warn!("miner {} ({}): {why}: {e}", m.peer, m.user());
                }
                return false;
            }
        };
        self.connect_link(a.upstream, now);
        if let Some(m) = self.miners.get_mut(id.0) {
            m.moving.get_or_insert_with(Box::default).to = Some(Route::new(a.upstream, a.slot));
        }
        if let Some(w) = worker {
            let flag = match why {
                Alone::NoNiceHash => FLAG_NO_NICEHASH,
                Alone::Quarantine => FLAG_QUARANTINED,
            };
            self.workers.flag(w, flag);
        }
        true
    }

    /// Why a miner's upstream is its own, if it is.
    pub(super) fn alone_reason(&self, uid: UpstreamId) -> Option<Alone> {
        self.splitter.get(uid).and_then(|u| u.alone)
    }

    /// Every minute: forget rigs whose notes ran out.
    pub(super) fn rig_notes_tick(&mut self, now: Instant) {
        if !self.rig_notes.is_empty() && self.clock(now).is_multiple_of(60) {
            self.rig_notes.retain(|_, n| n.no_nicehash_until.is_some_and(|t| now < t) || n.refused_until.is_some_and(|t| now < t));
        }
    }
}
