//! Splitting miners over upstream pool connections, free of sockets.
//!
//! `Splitter` decides which upstream a miner joins and when an upstream is no longer
//! needed; each upstream's `Mapper` holds its slots, jobs and in-flight submits; `Storage`
//! is the slot table. Upstreams belong to a group (the default pools, or later one
//! account's pool), never to the whole proxy. The proxy opens and closes the pool
//! connections the splitter asks for.

pub mod mapper;
pub mod storage;

pub use mapper::{MAX_PENDING, Mapper, Pending, Share};

use crate::config::Mode;
use crate::stratum::StratumError;
use crate::{GroupId, MinerId, UpstreamId};
use slab::Slab;
use std::time::{Duration, Instant};

/// How long an empty NiceHash upstream is kept before it is closed.
pub const NICEHASH_IDLE: Duration = Duration::from_secs(60);

/// Where a miner was put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    pub upstream: UpstreamId,
    pub slot: u8,
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

/// The splitter: every upstream's mapper, keyed by upstream id.
#[derive(Debug)]
pub struct Splitter {
    mode: Mode,
    mappers: Slab<Mapper>,
    max_upstreams: usize,
    reuse_timeout: Duration,
    algo_ext: bool,
}

impl Splitter {
    pub fn new(mode: Mode, max_upstreams: usize, reuse_timeout: Duration, algo_ext: bool) -> Splitter {
        Splitter { mode, mappers: Slab::new(), max_upstreams, reuse_timeout, algo_ext }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Applies reloadable settings.
    pub fn reconfigure(&mut self, max_upstreams: usize, reuse_timeout: Duration) {
        self.max_upstreams = max_upstreams;
        self.reuse_timeout = reuse_timeout;
    }

    /// Puts a logged-in miner on an upstream of `group`, creating one when all are full.
    pub fn login(&mut self, group: GroupId, miner: MinerId, now: Instant) -> Result<Assigned, StratumError> {
        let found = match self.mode {
            // First upstream of the group with a free slot, in creation order.
            Mode::NiceHash => self.mappers.iter_mut().filter(|(_, m)| m.group == group).find_map(|(id, m)| Some((id, m.add(miner)?))),
            // An idle upstream kept for reuse, preferring one that is live.
            Mode::Simple => {
                let mut idle: Vec<(usize, bool)> = self
                    .mappers
                    .iter()
                    .filter(|(_, m)| m.group == group && m.storage().active() == 0)
                    .map(|(id, m)| (id, m.is_live()))
                    .collect();
                idle.sort_by_key(|&(id, live)| (!live, id));
                idle.first().and_then(|&(id, _)| Some((id, self.mappers[id].add(miner)?)))
            }
        };
        if let Some((id, slot)) = found {
            return Ok(Assigned { upstream: UpstreamId(id), slot, created: false });
        }
        if self.max_upstreams > 0 && self.mappers.len() >= self.max_upstreams {
            return Err(StratumError::ProxyFull);
        }
        let mut mapper = Mapper::new(group, self.mode == Mode::NiceHash, self.algo_ext, now);
        let slot = mapper.add(miner).ok_or(StratumError::ProxyFull)?;
        let id = self.mappers.insert(mapper);
        Ok(Assigned { upstream: UpstreamId(id), slot, created: true })
    }

    /// Detaches a miner. Returns the upstream when it should close at once (simple mode
    /// without reuse).
    pub fn logout(&mut self, upstream: UpstreamId, slot: u8, miner: MinerId, now: Instant) -> Option<UpstreamId> {
        let mapper = self.mappers.get_mut(upstream.0)?;
        mapper.remove(slot, miner, now);
        // Submits still in flight keep the upstream until they are answered (collect_idle
        // removes it then), so their outcome is counted.
        if self.mode == Mode::Simple && self.reuse_timeout.is_zero() && mapper.storage().active() == 0 && mapper.pending_count() == 0 {
            self.mappers.remove(upstream.0);
            return Some(upstream);
        }
        None
    }

    /// Removes upstreams idle past their keep time and with no submit in flight; the proxy
    /// closes their connections.
    pub fn collect_idle(&mut self, now: Instant) -> Vec<UpstreamId> {
        let keep = match self.mode {
            Mode::NiceHash => NICEHASH_IDLE,
            Mode::Simple => self.reuse_timeout,
        };
        let expired: Vec<usize> = self
            .mappers
            .iter()
            .filter(|(_, m)| m.pending_count() == 0 && m.idle_since.is_some_and(|t| now.saturating_duration_since(t) >= keep))
            .map(|(id, _)| id)
            .collect();
        for id in &expired {
            self.mappers.remove(*id);
        }
        expired.into_iter().map(UpstreamId).collect()
    }

    pub fn mapper(&self, id: UpstreamId) -> Option<&Mapper> {
        self.mappers.get(id.0)
    }

    pub fn mapper_mut(&mut self, id: UpstreamId) -> Option<&mut Mapper> {
        self.mappers.get_mut(id.0)
    }

    /// Every upstream id with its mapper.
    pub fn iter(&self) -> impl Iterator<Item = (UpstreamId, &Mapper)> {
        self.mappers.iter().map(|(id, m)| (UpstreamId(id), m))
    }

    /// Every upstream id with its mapper, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (UpstreamId, &mut Mapper)> {
        self.mappers.iter_mut().map(|(id, m)| (UpstreamId(id), m))
    }

    pub fn len(&self) -> usize {
        self.mappers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mappers.is_empty()
    }

    /// Submits in flight across all upstreams.
    pub fn pending(&self) -> usize {
        self.mappers.iter().map(|(_, m)| m.pending_count()).sum()
    }

    pub fn counts(&self) -> UpstreamCounts {
        let mut c = UpstreamCounts::default();
        for (_, m) in &self.mappers {
            match (m.is_live(), m.storage().active() > 0) {
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

    fn job() -> Job {
        Job::from_value(&json!({"blob": "0".repeat(152), "job_id": "j", "target": "b88d0600"}), None).unwrap()
    }

    #[test]
    fn the_257th_miner_opens_a_second_upstream() {
        let mut s = Splitter::new(Mode::NiceHash, 0, Duration::ZERO, true);
        let now = Instant::now();
        let first = s.login(0, MinerId(0), now).unwrap();
        assert!(first.created);
        for i in 1..256 {
            let a = s.login(0, MinerId(i), now).unwrap();
            assert_eq!((a.upstream, a.created), (first.upstream, false));
        }
        let a = s.login(0, MinerId(256), now).unwrap();
        assert!(a.created);
        assert_ne!(a.upstream, first.upstream);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn max_upstreams_makes_the_proxy_full() {
        let mut s = Splitter::new(Mode::NiceHash, 1, Duration::ZERO, true);
        let now = Instant::now();
        for i in 0..256 {
            s.login(0, MinerId(i), now).unwrap();
        }
        assert_eq!(s.login(0, MinerId(256), now), Err(StratumError::ProxyFull));
    }

    #[test]
    fn groups_never_share_upstreams() {
        let mut s = Splitter::new(Mode::NiceHash, 0, Duration::ZERO, true);
        let now = Instant::now();
        let a = s.login(0, MinerId(0), now).unwrap();
        let b = s.login(1, MinerId(1), now).unwrap();
        assert!(b.created);
        assert_ne!(a.upstream, b.upstream);
    }

    #[test]
    fn empty_nicehash_upstream_is_collected_after_a_minute() {
        let mut s = Splitter::new(Mode::NiceHash, 0, Duration::ZERO, true);
        let t = Instant::now();
        let a = s.login(0, MinerId(0), t).unwrap();
        assert!(s.logout(a.upstream, a.slot, MinerId(0), t).is_none());
        assert!(s.collect_idle(t + Duration::from_secs(59)).is_empty());
        assert_eq!(s.collect_idle(t + NICEHASH_IDLE), vec![a.upstream]);
        assert!(s.is_empty());
    }

    #[test]
    fn simple_mode_without_reuse_closes_on_logout() {
        let mut s = Splitter::new(Mode::Simple, 0, Duration::ZERO, true);
        let t = Instant::now();
        let a = s.login(0, MinerId(0), t).unwrap();
        let b = s.login(0, MinerId(1), t).unwrap();
        assert_ne!(a.upstream, b.upstream, "one upstream per miner");
        assert_eq!(s.logout(a.upstream, a.slot, MinerId(0), t), Some(a.upstream));
    }

    #[test]
    fn an_upstream_with_submits_in_flight_outlives_its_last_miner() {
        let mut s = Splitter::new(Mode::Simple, 0, Duration::ZERO, true);
        let t = Instant::now();
        let a = s.login(0, MinerId(0), t).unwrap();
        let share = crate::splitter::Share { achieved: 1, diff: 1, expired: false, forward: true };
        let p = Pending { miner: MinerId(0), miner_seq: 1, worker: None, request_id: "1".into(), share, sent: t };
        s.mapper_mut(a.upstream).unwrap().add_pending(7, p);
        assert_eq!(s.logout(a.upstream, a.slot, MinerId(0), t), None, "kept until the pool answers");
        assert!(s.collect_idle(t).is_empty());
        assert!(s.mapper_mut(a.upstream).unwrap().take_pending(7).is_some());
        assert_eq!(s.collect_idle(t), vec![a.upstream]);
    }

    #[test]
    fn simple_mode_reuses_an_idle_live_upstream() {
        let mut s = Splitter::new(Mode::Simple, 0, Duration::from_secs(30), true);
        let t = Instant::now();
        let a = s.login(0, MinerId(0), t).unwrap();
        s.mapper_mut(a.upstream).unwrap().set_job(job(), 1);
        assert_eq!(s.logout(a.upstream, a.slot, MinerId(0), t), None);
        assert_eq!(s.counts(), UpstreamCounts { active: 0, sleep: 1, error: 0 });
        let b = s.login(0, MinerId(1), t).unwrap();
        assert_eq!((b.upstream, b.created), (a.upstream, false));
        s.logout(b.upstream, b.slot, MinerId(1), t);
        assert!(s.collect_idle(t + Duration::from_secs(29)).is_empty());
        assert_eq!(s.collect_idle(t + Duration::from_secs(30)), vec![a.upstream]);
    }
}
