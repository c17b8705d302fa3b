//! Per-miner difficulty on the loop: the vardiff controller (`splitter::vardiff`) fed
//! with the miner's shares and the clock, and a new difficulty sent at once as a new job
//! (CryptoNote: the current job with the new target under its own job id; stratum v1:
//! `mining.set_difficulty` and the current job again, clean).

use super::Proxy;
use super::miner::{Delivery, MinerState, Proto, deliver_job};
use crate::splitter::vardiff::{MinerDiff, VardiffConfig};
use crate::{MinerId, UpstreamId};
use std::time::Instant;

impl Proxy {
    /// The vardiff settings of a miner's port.
    pub(super) fn vardiff_of(&self, id: MinerId) -> VardiffConfig {
        let port = self.miners.get(id.0).map_or(0, |m| usize::from(m.port));
        self.vardiff.get(port).copied().unwrap_or(self.cfg.vardiff)
    }

    /// How a miner's difficulty is decided from login: `custom` (> 0) fixes it, else its
    /// port's vardiff, else the pool's. Vardiff starts at the pool's difficulty of the
    /// miner's upstream (its first job clamps it there when the upstream has none yet).
    pub(super) fn login_difficulty(&self, id: MinerId, custom: f64, uid: UpstreamId, now: Instant) -> MinerDiff {
        let vd = self.vardiff_of(id);
        let pool = self.splitter.mapper(uid).and_then(|m| m.pool_difficulty()).unwrap_or(f64::MAX);
        MinerDiff::login(&vd, custom, pool, self.clock(now))
    }

    /// Sends a miner its upstream's current job, at its difficulty (when the upstream is
    /// live).
    pub(super) fn deliver_to(&mut self, id: MinerId, now: Instant) {
        let Some(route) = self.miners.get(id.0).and_then(|m| m.route) else { return };
        let Proxy { splitter, miners, scratch, extensions, vardiff, .. } = self;
        let Some(mapper) = splitter.mapper_mut(route.upstream()).filter(|m| m.is_live()) else { return };
        let Some(miner) = miners.get_mut(id.0) else { return };
        let mut d = Delivery { scratch, extensions, vardiff, now };
        if let Err(why) = deliver_job(mapper, miner, route.slot, &mut d) {
            self.close_undelivered(id, why, now);
        }
    }

    /// An accepted share of a connected miner, worth `hashes`, mined on upstream `uid`:
    /// vardiff counts it at the difficulty it was mined for, and a new difficulty goes out.
    pub(super) fn vardiff_share(&mut self, id: MinerId, uid: UpstreamId, hashes: u64, now: Instant) {
        let vd = self.vardiff_of(id);
        let clock = self.clock(now);
        let Some(mapper) = self.splitter.mapper(uid) else { return };
        let Some(pool) = mapper.pool_difficulty() else { return };
        let divider = mapper.v1().map_or(1.0, |w| w.divider());
        let Some(m) = self.miners.get_mut(id.0).filter(|m| m.diff_mode.is_auto() && m.route.is_some_and(|r| r.upstream() == uid)) else {
            return;
        };
        if m.diff_mode.on_share(&vd, hashes as f64 / divider, pool, clock).is_some() {
            self.deliver_to(id, now);
        }
    }

    /// Once a second: vardiff's looks that fall due by time, and the drops of miners that
    /// have gone silent.
    pub(super) fn vardiff_tick(&mut self, now: Instant) {
        let clock = self.clock(now);
        let mut changed = Vec::new();
        let Proxy { miners, splitter, vardiff, cfg, .. } = self;
        for (key, m) in miners.iter_mut() {
            if !m.diff_mode.is_auto() || m.state != MinerState::Ready {
                continue;
            }
            let Some(pool) = m.route.and_then(|r| splitter.mapper(r.upstream())).and_then(|mp| mp.pool_difficulty()) else { continue };
            let vd = vardiff.get(usize::from(m.port)).copied().unwrap_or(cfg.vardiff);
            if m.diff_mode.tick(&vd, pool, clock).is_some() {
                changed.push(MinerId(key));
            }
        }
        for id in changed {
            self.deliver_to(id, now);
        }
    }

    /// The pool's difficulty on upstream `uid` moved from `old` to `new`: vardiff takes it
    /// in for each miner there (the job about to go out carries the result).
    pub(super) fn pool_difficulty_changed(&mut self, uid: UpstreamId, old: f64, new: f64, now: Instant) {
        let clock = self.clock(now);
        let Some(mapper) = self.splitter.mapper(uid) else { return };
        for (_, id) in mapper.miners() {
            let Some(m) = self.miners.get_mut(id.0) else { continue };
            if !m.diff_mode.is_auto() || matches!(m.proto, Proto::Undecided(_)) {
                continue;
            }
            let vd = self.vardiff.get(usize::from(m.port)).copied().unwrap_or(self.cfg.vardiff);
            m.diff_mode.pool_changed(&vd, old, new, clock);
        }
    }
}
