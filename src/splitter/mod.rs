//! Splitting miners over upstream pool connections, free of sockets.
//!
//! The splitter owns every upstream as one record under one id: its group, the lane of
//! the group it connects through, its `Mapper` (slots, jobs, submits in flight) and the
//! link to the pool (a type parameter, so tests use `()` and no socket). It decides which
//! upstream a miner joins and when an upstream is no longer needed; the proxy opens and
//! closes the pool connections it is asked for. `balance` decides between the lanes of a
//! weighted group; `Storage` is the slot table.

pub mod balance;
pub mod cryptonote;
pub mod mapper;
pub mod storage;
pub mod v1;
pub mod vardiff;

pub use mapper::{MAX_PENDING, Mapper, MapperSnapshot, Pending, Share, Work};

use crate::config::Mode;
use crate::stratum::StratumError;
use crate::{GroupId, MinerId, UpstreamId};
use slab::Slab;
use std::time::{Duration, Instant};

/// How long an empty NiceHash upstream is kept before it is closed.
pub const NICEHASH_IDLE: Duration = Duration::from_secs(60);

/// A link the splitter can create for a new upstream (the proxy's pool connection; `()`
/// in tests).
pub trait NewLink {
    fn new(now: Instant) -> Self;
}

impl NewLink for () {
    fn new(_: Instant) {}
}

/// One upstream: a pool connection and the miners sharing it.
#[derive(Debug)]
pub struct Upstream<L> {
    pub group: GroupId,
    /// Which lane of the group (see `pool::group`) it connects through.
    pub lane: usize,
    pub mapper: Mapper,
    pub link: L,
    /// Kept, even without miners, until then: a rig that dropped may come back to it.
    pub held_until: Option<Instant>,
    /// A pool connection of one rig's own (see `Alone`); no other miner is put here.
    pub alone: Option<Alone>,
}

/// Why a rig mines on a pool connection of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Alone {
    /// Its shares ignore the NiceHash fixed byte: it gets the whole nonce.
    NoNiceHash,
    /// The pool rejects too many of its shares: a ban falls on it alone.
    Quarantine,
}

/// What kind of mapper a group's upstreams have, and where in it a miner sits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seat {
    /// Any slot of a CryptoNote upstream.
    CryptoNote,
    /// A stratum v1 upstream checked with `pow` (`None`: unchecked), whose difficulties
    /// are worth `divider` hashes; the miner was promised `promise` (prefix length,
    /// extranonce2 size) and sits at its prefix `slot` when it has one already.
    V1 { pow: Option<crate::stratum::v1::header::Pow>, divider: f64, slot: Option<u16>, promise: (usize, usize) },
}

impl Seat {
    /// Any slot of a CryptoNote upstream.
    pub const CRYPTONOTE: Seat = Seat::CryptoNote;

    fn mapper(&self, nicehash: bool, algo_ext: bool, now: Instant) -> Mapper {
        match *self {
            Seat::CryptoNote => Mapper::new(nicehash, algo_ext, now),
            Seat::V1 { pow, divider, .. } => Mapper::new_v1(pow, divider, now),
        }
    }

    fn take(&self, m: &mut Mapper, miner: MinerId) -> Option<u16> {
        match *self {
            Seat::CryptoNote => m.add(miner),
            Seat::V1 { slot, promise, .. } => m.add_v1(miner, slot, promise),
        }
    }
}

/// Where a miner was put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    pub upstream: UpstreamId,
    pub slot: u16,
    /// The upstream is new: the proxy must open its pool connection.
    pub created: bool,
}

/// Upstream counts for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamCounts {
    /// Live, with miners.
    pub active: usize,
    /// Live, without miners (waiting for reuse or collection).
    pub sleep: usize,
    /// Connecting or reconnecting.
    pub error: usize,
}

impl UpstreamCounts {
    pub fn total(&self) -> usize {
        self.active + self.sleep + self.error
    }
}

/// The splitter: every upstream, keyed by upstream id.
#[derive(Debug)]
pub struct Splitter<L = ()> {
    mode: Mode,
    upstreams: Slab<Upstream<L>>,
    max_upstreams: usize,
    reuse_timeout: Duration,
    algo_ext: bool,
}

impl<L: NewLink> Splitter<L> {
    pub fn new(mode: Mode, max_upstreams: usize, reuse_timeout: Duration, algo_ext: bool) -> Splitter<L> {
        Splitter { mode, upstreams: Slab::new(), max_upstreams, reuse_timeout, algo_ext }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Applies reloadable settings.
    pub fn reconfigure(&mut self, max_upstreams: usize, reuse_timeout: Duration) {
        self.max_upstreams = max_upstreams;
        self.reuse_timeout = reuse_timeout;
    }

    /// Puts a miner on an upstream of `lane` of `group` (in the seat it needs), creating
    /// one when all are full.
    pub fn place(&mut self, group: GroupId, lane: usize, miner: MinerId, seat: Seat, now: Instant) -> Result<Assigned, StratumError> {
        let ours = |u: &Upstream<L>| u.group == group && u.lane == lane && u.alone.is_none();
        let found = match self.mode {
            // First upstream of the lane with a free slot, in creation order.
            Mode::NiceHash => {
                self.upstreams.iter_mut().filter(|(_, u)| ours(u)).find_map(|(id, u)| Some((id, seat.take(&mut u.mapper, miner)?)))
            }
            // An idle upstream kept for reuse, preferring one that is live.
            Mode::Simple => {
                let mut idle: Vec<(usize, bool)> = self
                    .upstreams
                    .iter()
                    .filter(|(_, u)| ours(u) && u.mapper.active() == 0 && u.held_until.is_none_or(|t| now >= t))
                    .map(|(id, u)| (id, u.mapper.is_live()))
                    .collect();
                idle.sort_by_key(|&(id, live)| (!live, id));
                idle.first().and_then(|&(id, _)| Some((id, seat.take(&mut self.upstreams[id].mapper, miner)?)))
            }
        };
        if let Some((id, slot)) = found {
            return Ok(Assigned { upstream: UpstreamId(id), slot, created: false });
        }
        if self.max_upstreams > 0 && self.upstreams.len() >= self.max_upstreams {
            return Err(StratumError::ProxyFull);
        }
        let mut mapper = seat.mapper(self.mode == Mode::NiceHash, self.algo_ext, now);
        let slot = seat.take(&mut mapper, miner).ok_or(StratumError::ProxyFull)?;
        let id = self.upstreams.insert(Upstream { group, lane, mapper, link: L::new(now), held_until: None, alone: None });
        Ok(Assigned { upstream: UpstreamId(id), slot, created: true })
    }

    /// Takes an upstream handed over by a live upgrade; returns its id here.
    pub fn adopt(&mut self, u: Upstream<L>) -> UpstreamId {
        UpstreamId(self.upstreams.insert(u))
    }

    /// Opens a pool connection of `miner`'s own in `lane` of `group` (see `Alone`): a
    /// single slot without a fixed byte for a CryptoNote rig, its own prefix for a v1 rig.
    /// Refused like any new upstream when `max-upstreams` is reached.
    pub fn place_alone(
        &mut self,
        group: GroupId,
        lane: usize,
        miner: MinerId,
        seat: Seat,
        why: Alone,
        now: Instant,
    ) -> Result<Assigned, StratumError> {
        if self.max_upstreams > 0 && self.upstreams.len() >= self.max_upstreams {
            return Err(StratumError::ProxyFull);
        }
        let mut mapper = seat.mapper(false, self.algo_ext, now);
        let slot = seat.take(&mut mapper, miner).ok_or(StratumError::ProxyFull)?;
        let id = self.upstreams.insert(Upstream { group, lane, mapper, link: L::new(now), held_until: None, alone: Some(why) });
        Ok(Assigned { upstream: UpstreamId(id), slot, created: true })
    }
}

impl<L> Splitter<L> {
    /// Puts a miner on upstream `id` of `group` (a rig coming back to the upstream it left),
    /// when that upstream still exists and has a free slot.
    pub fn place_on(&mut self, id: UpstreamId, group: GroupId, miner: MinerId, seat: Seat) -> Option<Assigned> {
        let u = self.upstreams.get_mut(id.0).filter(|u| u.group == group)?;
        let slot = seat.take(&mut u.mapper, miner)?;
        u.held_until = None;
        Some(Assigned { upstream: id, slot, created: false })
    }

    /// Detaches a miner (its slot is dead until the upstream's next job). Returns the
    /// upstream, removed, when it should close at once (simple mode without reuse).
    pub fn logout(&mut self, upstream: UpstreamId, slot: u16, miner: MinerId, now: Instant) -> Option<(UpstreamId, L)> {
        let u = self.upstreams.get_mut(upstream.0)?;
        u.mapper.remove(slot, miner, now);
        self.close_if_unused(upstream)
    }

    /// Gives back a slot that was reserved for a miner who never mined on it (a move that
    /// was called off): it is free at once, as no nonce was searched with it.
    pub fn release(&mut self, upstream: UpstreamId, slot: u16, miner: MinerId, now: Instant) -> Option<(UpstreamId, L)> {
        let u = self.upstreams.get_mut(upstream.0)?;
        u.mapper.release(slot, miner, now);
        self.close_if_unused(upstream)
    }

    fn close_if_unused(&mut self, upstream: UpstreamId) -> Option<(UpstreamId, L)> {
        let u = self.upstreams.get(upstream.0)?;
        // Submits still in flight keep the upstream until they are answered (collect_idle
        // removes it then), so their outcome is counted.
        let unused = u.mapper.active() == 0 && u.mapper.pending_count() == 0 && u.held_until.is_none();
        // A rig's own connection goes with it; in simple mode without reuse every one does.
        if (u.alone.is_some() || (self.mode == Mode::Simple && self.reuse_timeout.is_zero())) && unused {
            return Some((upstream, self.upstreams.remove(upstream.0).link));
        }
        None
    }

    /// Removes upstreams idle past their keep time and with no submit in flight; the proxy
    /// closes their connections. `keep(group, lane)` names lanes that need an upstream
    /// even without miners (a weighted pool that is down is retried through it): the
    /// first idle upstream of such a lane stays.
    pub fn collect_idle(&mut self, now: Instant, keep: impl Fn(GroupId, usize) -> bool) -> Vec<(UpstreamId, L)> {
        let hold = match self.mode {
            Mode::NiceHash => NICEHASH_IDLE,
            Mode::Simple => self.reuse_timeout,
        };
        let mut kept: Vec<(GroupId, usize)> = Vec::new();
        let mut expired = Vec::new();
        for (id, u) in &self.upstreams {
            let held = u.held_until.is_some_and(|t| now < t);
            let idle =
                !held && u.mapper.pending_count() == 0 && u.mapper.idle_since.is_some_and(|t| now.saturating_duration_since(t) >= hold);
            if !idle {
                continue;
            }
            let lane = (u.group, u.lane);
            if !kept.contains(&lane) && keep(u.group, u.lane) {
                kept.push(lane);
                continue;
            }
            expired.push(id);
        }
        expired.into_iter().map(|id| (UpstreamId(id), self.upstreams.remove(id).link)).collect()
    }

    /// Removes an upstream at once (its account was deleted); returns its link to close.
    pub fn remove(&mut self, id: UpstreamId) -> Option<(UpstreamId, L)> {
        self.upstreams.try_remove(id.0).map(|u| (id, u.link))
    }

    pub fn get(&self, id: UpstreamId) -> Option<&Upstream<L>> {
        self.upstreams.get(id.0)
    }

    pub fn get_mut(&mut self, id: UpstreamId) -> Option<&mut Upstream<L>> {
        self.upstreams.get_mut(id.0)
    }

    pub fn mapper(&self, id: UpstreamId) -> Option<&Mapper> {
        self.upstreams.get(id.0).map(|u| &u.mapper)
    }

    pub fn mapper_mut(&mut self, id: UpstreamId) -> Option<&mut Mapper> {
        self.upstreams.get_mut(id.0).map(|u| &mut u.mapper)
    }

    /// Two different upstreams at once (a miner moving from one to the other).
    pub fn pair_mut(&mut self, a: UpstreamId, b: UpstreamId) -> Option<(&mut Upstream<L>, &mut Upstream<L>)> {
        self.upstreams.get2_mut(a.0, b.0)
    }

    /// Every upstream with its id.
    pub fn iter(&self) -> impl Iterator<Item = (UpstreamId, &Upstream<L>)> {
        self.upstreams.iter().map(|(id, u)| (UpstreamId(id), u))
    }

    /// Every upstream with its id, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (UpstreamId, &mut Upstream<L>)> {
        self.upstreams.iter_mut().map(|(id, u)| (UpstreamId(id), u))
    }

    /// Ids of the upstreams of `group`.
    pub fn ids_in(&self, group: GroupId) -> Vec<UpstreamId> {
        self.iter().filter(|(_, u)| u.group == group).map(|(id, _)| id).collect()
    }

    pub fn len(&self) -> usize {
        self.upstreams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.upstreams.is_empty()
    }

    /// Submits in flight across all upstreams.
    pub fn pending(&self) -> usize {
        self.upstreams.iter().map(|(_, u)| u.mapper.pending_count()).sum()
    }

    /// Upstream counts, of every group (`None`) or of one.
    pub fn counts(&self, group: Option<GroupId>) -> UpstreamCounts {
        let mut c = UpstreamCounts::default();
        for (_, u) in self.upstreams.iter().filter(|(_, u)| group.is_none_or(|g| u.group == g)) {
            match (u.mapper.is_live(), u.mapper.active() > 0) {
                (false, _) => c.error += 1,
                (true, true) => c.active += 1,
                (true, false) => c.sleep += 1,
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stratum::Job;
    use serde_json::json;

    const G0: GroupId = GroupId(0);
    const G1: GroupId = GroupId(1);

    fn job() -> Job {
        Job::from_value(&json!({"blob": "0".repeat(152), "job_id": "j", "target": "b88d0600"}), None).unwrap()
    }

    #[test]
    fn the_257th_miner_opens_a_second_upstream() {
        let mut s: Splitter = Splitter::new(Mode::NiceHash, 0, Duration::ZERO, true);
        let now = Instant::now();
        let first = s.place(G0, 0, MinerId(0), Seat::CRYPTONOTE, now).unwrap();
        assert!(first.created);
        for i in 1..256 {
            let a = s.place(G0, 0, MinerId(i), Seat::CRYPTONOTE, now).unwrap();
            assert_eq!((a.upstream, a.created), (first.upstream, false));
        }
        let a = s.place(G0, 0, MinerId(256), Seat::CRYPTONOTE, now).unwrap();
        assert!(a.created);
        assert_ne!(a.upstream, first.upstream);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn max_upstreams_makes_the_proxy_full() {
        let mut s: Splitter = Splitter::new(Mode::NiceHash, 1, Duration::ZERO, true);
        let now = Instant::now();
        for i in 0..256 {
            s.place(G0, 0, MinerId(i), Seat::CRYPTONOTE, now).unwrap();
        }
        assert_eq!(s.place(G0, 0, MinerId(256), Seat::CRYPTONOTE, now), Err(StratumError::ProxyFull));
    }

    #[test]
    fn groups_never_share_upstreams() {
        let mut s: Splitter = Splitter::new(Mode::NiceHash, 0, Duration::ZERO, true);
        let now = Instant::now();
        let a = s.place(G0, 0, MinerId(0), Seat::CRYPTONOTE, now).unwrap();
        let b = s.place(G1, 0, MinerId(1), Seat::CRYPTONOTE, now).unwrap();
        assert!(b.created);
        assert_ne!(a.upstream, b.upstream);
    }

    #[test]
    fn lanes_of_a_group_never_share_upstreams() {
        let mut s: Splitter = Splitter::new(Mode::NiceHash, 0, Duration::ZERO, true);
        let now = Instant::now();
        let a = s.place(G0, 0, MinerId(0), Seat::CRYPTONOTE, now).unwrap();
        let b = s.place(G0, 1, MinerId(1), Seat::CRYPTONOTE, now).unwrap();
        let c = s.place(G0, 1, MinerId(2), Seat::CRYPTONOTE, now).unwrap();
        assert!(b.created && !c.created);
        assert_ne!(a.upstream, b.upstream);
        assert_eq!((b.upstream, s.get(b.upstream).unwrap().lane), (c.upstream, 1));
    }

    #[test]
    fn a_released_reservation_frees_its_slot_at_once() {
        let mut s: Splitter = Splitter::new(Mode::NiceHash, 0, Duration::ZERO, true);
        let now = Instant::now();
        for i in 0..256 {
            s.place(G0, 0, MinerId(i), Seat::CRYPTONOTE, now).unwrap();
        }
        // A move that was called off: the slot is free again, not dead until the next job.
        assert_eq!(s.release(UpstreamId(0), 3, MinerId(3), now), None);
        assert_eq!(
            s.place(G0, 0, MinerId(999), Seat::CRYPTONOTE, now).unwrap(),
            Assigned { upstream: UpstreamId(0), slot: 3, created: false }
        );
        // A miner who mined there leaves a dead slot: the next miner needs a new upstream.
        s.logout(UpstreamId(0), 4, MinerId(4), now);
        assert!(s.place(G0, 0, MinerId(1000), Seat::CRYPTONOTE, now).unwrap().created);
    }

    #[test]
    fn an_idle_upstream_of_a_lane_that_needs_a_probe_is_kept() {
        let mut s: Splitter = Splitter::new(Mode::NiceHash, 0, Duration::ZERO, true);
        let t = Instant::now();
        let a = s.place(G0, 0, MinerId(0), Seat::CRYPTONOTE, t).unwrap();
        let b = s.place(G0, 0, MinerId(1), Seat::CRYPTONOTE, t).unwrap();
        let c = s.place(G0, 1, MinerId(2), Seat::CRYPTONOTE, t).unwrap();
        // Two upstreams on lane 0 by forcing a second one: fill the first.
        assert_eq!(a.upstream, b.upstream);
        for (id, slot) in [(0, a.slot), (1, b.slot)] {
            s.logout(a.upstream, slot, MinerId(id), t);
        }
        s.logout(c.upstream, c.slot, MinerId(2), t);
        let later = t + NICEHASH_IDLE;
        let gone: Vec<UpstreamId> = s.collect_idle(later, |g, lane| g == G0 && lane == 0).into_iter().map(|(id, _)| id).collect();
        assert_eq!(gone, vec![c.upstream], "lane 0 keeps one upstream to retry its pool through");
        assert!(s.get(a.upstream).is_some());
    }

    #[test]
    fn an_upstream_that_logs_in_again_after_a_long_outage_gets_its_whole_keep_time() {
        let mut s: Splitter = Splitter::new(Mode::NiceHash, 0, Duration::ZERO, true);
        let t = Instant::now();
        let a = s.place(G0, 1, MinerId(0), Seat::CRYPTONOTE, t).unwrap();
        s.logout(a.upstream, a.slot, MinerId(0), t);
        // Kept through the outage (its pool was down); back after 90 s, logged in again.
        let back = t + Duration::from_secs(90);
        assert!(s.collect_idle(back, |_, lane| lane == 1).is_empty());
        s.get_mut(a.upstream).unwrap().mapper.restart_idle_clock(back);
        assert!(s.collect_idle(back + Duration::from_secs(1), |_, _| false).is_empty(), "not closed in the tick after it came back");
        assert_eq!(s.collect_idle(back + NICEHASH_IDLE, |_, _| false), vec![(a.upstream, ())]);
    }

    #[test]
    fn a_held_upstream_waits_for_its_rig_even_in_simple_mode() {
        let mut s: Splitter = Splitter::new(Mode::Simple, 0, Duration::ZERO, true);
        let t = Instant::now();
        let a = s.place(G0, 0, MinerId(0), Seat::CRYPTONOTE, t).unwrap();
        s.get_mut(a.upstream).unwrap().held_until = Some(t + Duration::from_secs(60));
        assert_eq!(s.logout(a.upstream, a.slot, MinerId(0), t), None, "not closed at once while held");
        assert!(s.collect_idle(t + Duration::from_secs(59), |_, _| false).is_empty());
        assert_eq!(s.place_on(a.upstream, G1, MinerId(1), Seat::CRYPTONOTE), None, "only for its own group");
        let back = s.place_on(a.upstream, G0, MinerId(1), Seat::CRYPTONOTE).unwrap();
        assert_eq!((back.upstream, back.created), (a.upstream, false));
        s.get_mut(a.upstream).unwrap().held_until = Some(t + Duration::from_secs(60));
        s.logout(a.upstream, back.slot, MinerId(1), t);
        assert_eq!(s.collect_idle(t + Duration::from_secs(60), |_, _| false), vec![(a.upstream, ())], "collected once the hold is over");
    }

    #[test]
    fn a_rig_alone_gets_an_upstream_no_one_else_joins() {
        let mut s: Splitter = Splitter::new(Mode::NiceHash, 0, Duration::ZERO, true);
        let t = Instant::now();
        let a = s.place_alone(G0, 0, MinerId(0), Seat::CRYPTONOTE, Alone::NoNiceHash, t).unwrap();
        assert!(a.created);
        assert_eq!(s.get(a.upstream).unwrap().mapper.counts(), (0, 0, 1), "one slot, no fixed byte");
        let b = s.place(G0, 0, MinerId(1), Seat::CRYPTONOTE, t).unwrap();
        assert_ne!(b.upstream, a.upstream, "nobody joins a rig's own connection");
        assert_eq!(s.logout(a.upstream, a.slot, MinerId(0), t), Some((a.upstream, ())), "it closes when the rig leaves");
        let mut capped: Splitter = Splitter::new(Mode::NiceHash, 1, Duration::ZERO, true);
        capped.place(G0, 0, MinerId(0), Seat::CRYPTONOTE, t).unwrap();
        assert_eq!(capped.place_alone(G0, 0, MinerId(1), Seat::CRYPTONOTE, Alone::Quarantine, t), Err(StratumError::ProxyFull));
    }

    #[test]
    fn empty_nicehash_upstream_is_collected_after_a_minute() {
        let mut s: Splitter = Splitter::new(Mode::NiceHash, 0, Duration::ZERO, true);
        let t = Instant::now();
        let a = s.place(G0, 0, MinerId(0), Seat::CRYPTONOTE, t).unwrap();
        assert!(s.logout(a.upstream, a.slot, MinerId(0), t).is_none());
        assert!(s.collect_idle(t + Duration::from_secs(59), |_, _| false).is_empty());
        assert_eq!(s.collect_idle(t + NICEHASH_IDLE, |_, _| false), vec![(a.upstream, ())]);
        assert!(s.is_empty());
    }

    #[test]
    fn simple_mode_without_reuse_closes_on_logout() {
        let mut s: Splitter = Splitter::new(Mode::Simple, 0, Duration::ZERO, true);
        let t = Instant::now();
        let a = s.place(G0, 0, MinerId(0), Seat::CRYPTONOTE, t).unwrap();
        let b = s.place(G0, 0, MinerId(1), Seat::CRYPTONOTE, t).unwrap();
        assert_ne!(a.upstream, b.upstream, "one upstream per miner");
        assert_eq!(s.logout(a.upstream, a.slot, MinerId(0), t), Some((a.upstream, ())));
    }

    #[test]
    fn an_upstream_with_submits_in_flight_outlives_its_last_miner() {
        let mut s: Splitter = Splitter::new(Mode::Simple, 0, Duration::ZERO, true);
        let t = Instant::now();
        let a = s.place(G0, 0, MinerId(0), Seat::CRYPTONOTE, t).unwrap();
        let share = crate::splitter::Share { achieved: 1, diff: 1, expired: false, forward: true };
        let p = Pending { miner: MinerId(0), miner_seq: 1, worker: None, request_id: "1".into(), share, sent: t };
        s.mapper_mut(a.upstream).unwrap().add_pending(7, p);
        assert_eq!(s.logout(a.upstream, a.slot, MinerId(0), t), None, "kept until the pool answers");
        assert!(s.collect_idle(t, |_, _| false).is_empty());
        assert!(s.mapper_mut(a.upstream).unwrap().take_pending(7).is_some());
        assert_eq!(s.collect_idle(t, |_, _| false), vec![(a.upstream, ())]);
    }

    #[test]
    fn simple_mode_reuses_an_idle_live_upstream() {
        let mut s: Splitter = Splitter::new(Mode::Simple, 0, Duration::from_secs(30), true);
        let t = Instant::now();
        let a = s.place(G0, 0, MinerId(0), Seat::CRYPTONOTE, t).unwrap();
        s.mapper_mut(a.upstream).unwrap().set_job(job(), 1);
        assert_eq!(s.logout(a.upstream, a.slot, MinerId(0), t), None);
        assert_eq!(s.counts(None), UpstreamCounts { active: 0, sleep: 1, error: 0 });
        let b = s.place(G0, 0, MinerId(1), Seat::CRYPTONOTE, t).unwrap();
        assert_eq!((b.upstream, b.created), (a.upstream, false));
        s.logout(b.upstream, b.slot, MinerId(1), t);
        assert!(s.collect_idle(t + Duration::from_secs(29), |_, _| false).is_empty());
        assert_eq!(s.collect_idle(t + Duration::from_secs(30), |_, _| false), vec![(a.upstream, ())]);
    }
}
