//! One upstream's share of the splitting work, free of sockets: the work of its dialect
//! (slot table, jobs, share check: see `cryptonote.rs`) and, for every dialect, the
//! submits in flight to the pool and whether the upstream is live.

use super::cryptonote::CnWork;
use super::v1::V1Work;
use crate::MinerId;
use crate::stratum::request::KeptId;
use crate::stratum::write::JobLine;
use crate::stratum::{Job, StratumError};
use std::collections::HashMap;
use std::time::Instant;

/// Submits in flight per upstream; past this new shares are refused.
pub const MAX_PENDING: usize = 1 << 14;

/// A share that passed the proxy's checks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Share {
    /// Difficulty the result hash reaches.
    pub achieved: u64,
    /// Difficulty the miner was asked for (what the share is worth in stats).
    pub diff: u64,
    /// Submitted against the previous job.
    pub expired: bool,
    /// Meets the pool's target, so it goes upstream; otherwise it is answered here.
    pub forward: bool,
}

/// A submit waiting for the pool's answer.
#[derive(Debug, Clone)]
pub struct Pending {
    pub miner: MinerId,
    /// The miner's sequence number, so a reused slab key never gets a stranger's reply.
    pub miner_seq: u64,
    /// The miner's worker record, for stats (the miner may be gone by the answer).
    pub worker: Option<usize>,
    pub request_id: KeptId,
    pub share: Share,
    pub sent: Instant,
}

/// What differs by dialect: the slot table, the jobs and the share check. Every function
/// that depends on the dialect matches on this in one place.
// CryptoNote's work is kept inline: it is the common case, there are only a few upstreams
// (one per 256 miners), and its jobs are read on every share.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Work {
    CryptoNote(CnWork),
    V1(Box<V1Work>),
}

/// An upstream's splitting state as a live upgrade hands it over (see `proxy::handover`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct MapperSnapshot {
    live: bool,
    idle_ms: Option<u64>,
    work: WorkSnapshot,
    pending: Vec<(u64, PendingSnapshot)>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum WorkSnapshot {
    CryptoNote(Box<super::cryptonote::CnSnapshot>),
    V1(Box<super::v1::V1Snapshot>),
}

/// A submit in flight, its miner and worker by their old ids (the worker by name).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PendingSnapshot {
    miner: usize,
    miner_seq: u64,
    worker: Option<String>,
    request_id: String,
    share: Share,
    age_ms: u64,
}

/// Splitter state of one upstream.
#[derive(Debug)]
pub struct Mapper {
    work: Work,
    pending: HashMap<u64, Pending>,
    /// When the last miner left; `None` while miners are attached.
    pub idle_since: Option<Instant>,
    /// The upstream has a live pool session.
    live: bool,
}

impl Mapper {
    /// A CryptoNote upstream: 256 fixed-byte slots in NiceHash mode, one in simple mode.
    pub fn new(nicehash: bool, algo_ext: bool, now: Instant) -> Mapper {
        Mapper { work: Work::CryptoNote(CnWork::new(nicehash, algo_ext)), pending: HashMap::new(), idle_since: Some(now), live: false }
    }

    /// A stratum v1 upstream (see `v1.rs`); `pow` checks its shares (`None`: unchecked),
    /// `divider` turns its difficulties into hashes.
    pub fn new_v1(pow: Option<crate::stratum::v1::header::Pow>, divider: f64, now: Instant) -> Mapper {
        let work = Work::V1(Box::new(V1Work::new(pow, divider)));
        Mapper { work, pending: HashMap::new(), idle_since: Some(now), live: false }
    }

    pub fn work(&self) -> &Work {
        &self.work
    }

    pub fn work_mut(&mut self) -> &mut Work {
        &mut self.work
    }

    /// The v1 work, for a v1 upstream.
    pub fn v1(&self) -> Option<&V1Work> {
        match &self.work {
            Work::V1(w) => Some(w),
            Work::CryptoNote(_) => None,
        }
    }

    pub fn v1_mut(&mut self) -> Option<&mut V1Work> {
        match &mut self.work {
            Work::V1(w) => Some(w),
            Work::CryptoNote(_) => None,
        }
    }

    /// Attaches a miner; returns its slot (its fixed byte in NiceHash mode, its extranonce
    /// prefix in stratum v1).
    pub fn add(&mut self, miner: MinerId) -> Option<u16> {
        let slot = match &mut self.work {
            Work::CryptoNote(w) => u16::from(w.storage_mut().add(miner)?),
            Work::V1(w) => w.prefixes().add(miner)?.slot(),
        };
        self.idle_since = None;
        Some(slot)
    }

    /// Attaches a v1 miner that was promised `promise` (prefix length, extranonce2 size):
    /// at prefix `slot` exactly when it has one (it keeps it when it moves), else at the
    /// next free one. `None` when the upstream's split differs or the prefix is taken.
    pub fn add_v1(&mut self, miner: MinerId, slot: Option<u16>, promise: (usize, usize)) -> Option<u16> {
        let Work::V1(w) = &mut self.work else { return None };
        if w.split().promise() != promise {
            return None;
        }
        let slot = match slot {
            Some(s) => w.prefixes().add_as(s, miner).then_some(s)?,
            None => w.prefixes().add(miner)?.slot(),
        };
        self.idle_since = None;
        Some(slot)
    }

    /// Detaches a miner; the mapper becomes idle when it was the last one.
    pub fn remove(&mut self, slot: u16, miner: MinerId, now: Instant) {
        match &mut self.work {
            Work::CryptoNote(w) => w.storage_mut().remove(slot as u8, miner),
            Work::V1(w) => {
                let prefix = w.prefix(slot);
                w.prefixes().remove(prefix, miner)
            }
        }
        self.note_idle(now);
    }

    /// Frees a slot reserved for a miner who never mined on it.
    pub fn release(&mut self, slot: u16, miner: MinerId, now: Instant) {
        match &mut self.work {
            Work::CryptoNote(w) => w.storage_mut().release(slot as u8, miner),
            Work::V1(w) => w.prefixes().release(slot, miner),
        }
        self.note_idle(now);
    }

    /// A new pool session: an empty upstream gets its whole keep time from now, so the
    /// connection to a pool that just came back is there for the miners planned onto it
    /// instead of being closed, idle since the outage, and opened again.
    pub fn restart_idle_clock(&mut self, now: Instant) {
        if self.idle_since.is_some() {
            self.idle_since = Some(now);
        }
    }

    fn note_idle(&mut self, now: Instant) {
        if self.active() == 0 && self.idle_since.is_none() {
            self.idle_since = Some(now);
        }
    }

    /// Miners attached now.
    pub fn active(&self) -> usize {
        match &self.work {
            Work::CryptoNote(w) => w.storage().active(),
            Work::V1(w) => w.prefix_table().counts().2,
        }
    }

    /// Every miner attached, with its slot.
    pub fn miners(&self) -> Vec<(u16, MinerId)> {
        match &self.work {
            Work::CryptoNote(w) => (0..w.storage().capacity()).filter_map(|s| Some((s as u16, w.storage().miner_at(s)?))).collect(),
            Work::V1(w) => w.prefix_table().active().collect(),
        }
    }

    /// Slot numbers to scan for miners, for fan-outs that must not allocate: `0..slots()`
    /// (CryptoNote; v1 fans out with `miners`).
    pub fn slots(&self) -> usize {
        match &self.work {
            Work::CryptoNote(w) => w.storage().capacity(),
            Work::V1(_) => 0,
        }
    }

    /// The miner holding `slot`, if any.
    pub fn miner_at(&self, slot: u16) -> Option<MinerId> {
        match &self.work {
            Work::CryptoNote(w) => w.storage().miner_at(usize::from(slot)),
            Work::V1(w) => w.prefix_table().miner_at(w.prefix(slot)),
        }
    }

    /// (free, dead, active) slot counts.
    pub fn counts(&self) -> (usize, usize, usize) {
        match &self.work {
            Work::CryptoNote(w) => w.storage().counts(),
            Work::V1(w) => w.prefix_table().counts(),
        }
    }

    /// True once the upstream has a job from a live pool session.
    pub fn is_live(&self) -> bool {
        self.live
            && match &self.work {
                Work::CryptoNote(w) => w.job().is_some(),
                Work::V1(w) => w.current().is_some(),
            }
    }

    /// The current CryptoNote job, if any.
    pub fn job(&self) -> Option<&Job> {
        match &self.work {
            Work::CryptoNote(w) => w.job(),
            Work::V1(_) => None,
        }
    }

    /// Takes a new CryptoNote job (see `CnWork::set_job`): the upstream is live.
    pub fn set_job(&mut self, job: Job, generation: u64) {
        if let Work::CryptoNote(w) = &mut self.work {
            w.set_job(job, generation);
            self.live = true;
        }
    }

    /// Takes a v1 notify: the upstream is live (once logged in: `set_live`).
    pub fn add_v1_job(&mut self, job: crate::stratum::v1::job::V1Job) {
        if let Work::V1(w) = &mut self.work {
            w.add_job(job);
        }
    }

    /// The pool session is logged in (v1: jobs may have come before the authorize reply).
    pub fn set_live(&mut self) {
        self.live = true;
    }

    /// The pool's v1 session (subscribe reply or `set_extranonce`); see `V1Work::set_session`.
    pub fn set_v1_session(&mut self, extranonce1: &[u8], extranonce2_size: usize) -> Vec<(u16, MinerId)> {
        match &mut self.work {
            Work::V1(w) => w.set_session(extranonce1, extranonce2_size),
            Work::CryptoNote(_) => Vec::new(),
        }
    }

    /// The pool's v1 difficulty for the next jobs.
    pub fn set_v1_pool_difficulty(&mut self, diff: f64) {
        if let Work::V1(w) = &mut self.work {
            w.set_pool_difficulty(diff);
        }
    }

    /// The pool session ended: no share can be forwarded until the next job, and the
    /// submits in flight will never be answered (they are returned to be failed).
    pub fn suspend(&mut self) -> Vec<Pending> {
        self.live = false;
        self.pending.drain().map(|(_, p)| p).collect()
    }

    /// The current job's line at difficulty `diff` (0: the pool's), patched with `slot`.
    pub fn job_line(&mut self, diff: u64, slot: u16) -> Option<&JobLine> {
        match &mut self.work {
            Work::CryptoNote(w) => w.job_line(diff, slot as u8),
            Work::V1(_) => None,
        }
    }

    /// The pool's difficulty now, in the dialect's unit (CryptoNote: whole hashes).
    pub fn pool_difficulty(&self) -> Option<f64> {
        match &self.work {
            Work::CryptoNote(w) => w.pool_diff().map(|d| d as f64),
            Work::V1(w) => w.current().map(|_| w.pool_difficulty()),
        }
    }

    /// Checks a submit from the miner in `slot` (session id already checked).
    pub fn check_share(&mut self, slot: u16, job_id: &str, nonce: &str, result: &str) -> Result<Share, StratumError> {
        if !self.live {
            return Err(StratumError::PoolUnavailable);
        }
        let pending_full = self.pending.len() >= MAX_PENDING;
        match &mut self.work {
            Work::CryptoNote(w) => w.check_share(slot as u8, job_id, nonce, result, pending_full),
            Work::V1(_) => Err(StratumError::InvalidMethod),
        }
    }

    /// Checks a v1 submit from the miner in `slot`.
    pub fn check_v1_share(
        &mut self,
        slot: u16,
        difficulty: &crate::stratum::v1::check::MinerDifficulty,
        version_mask: u32,
        submit: &crate::stratum::v1::message::Submit<'_>,
    ) -> Result<Share, crate::stratum::v1::error::V1Error> {
        use crate::stratum::v1::error::V1Error;
        if !self.live {
            return Err(V1Error::NotSent("Pool connection lost, share not sent"));
        }
        let pending_full = self.pending.len() >= MAX_PENDING;
        let Work::V1(w) = &mut self.work else { return Err(V1Error::Other("Not a stratum v1 upstream")) };
        let share = w.check_share(slot, difficulty, version_mask, submit)?;
        if share.forward && pending_full {
            return Err(V1Error::NotSent("Pool connection busy, share not sent"));
        }
        Ok(share)
    }

    /// The state as a live upgrade hands it over; `worker` names a worker record.
    pub fn snapshot(&self, now: Instant, worker: &dyn Fn(usize) -> Option<String>) -> MapperSnapshot {
        let ms = |t: Instant| now.saturating_duration_since(t).as_millis().min(u128::from(u64::MAX)) as u64;
        let work = match &self.work {
            Work::CryptoNote(w) => WorkSnapshot::CryptoNote(Box::new(w.snapshot())),
            Work::V1(w) => WorkSnapshot::V1(Box::new(w.snapshot())),
        };
        let pending = self
            .pending
            .iter()
            .map(|(id, p)| {
                let snap = PendingSnapshot {
                    miner: p.miner.0,
                    miner_seq: p.miner_seq,
                    worker: p.worker.and_then(worker),
                    request_id: p.request_id.as_str().to_string(),
                    share: p.share.clone(),
                    age_ms: ms(p.sent),
                };
                (*id, snap)
            })
            .collect();
        MapperSnapshot { live: self.live, idle_ms: self.idle_since.map(ms), work, pending }
    }

    /// The state back from a snapshot: miners renamed by `miner` and workers found by
    /// name with `worker` (their ids here).
    pub fn restore(
        s: MapperSnapshot,
        now: Instant,
        miner: &dyn Fn(usize) -> Option<MinerId>,
        worker: &dyn Fn(&str) -> Option<usize>,
    ) -> Mapper {
        let ago = |ms: u64| now.checked_sub(std::time::Duration::from_millis(ms)).unwrap_or(now);
        let work = match s.work {
            WorkSnapshot::CryptoNote(w) => Work::CryptoNote(CnWork::restore(*w, miner)),
            WorkSnapshot::V1(w) => Work::V1(Box::new(V1Work::restore(*w, miner))),
        };
        let pending = s
            .pending
            .into_iter()
            .map(|(id, p)| {
                // A submit of a miner that left keeps its miner id only to be counted.
                let m = miner(p.miner).unwrap_or(MinerId(usize::MAX));
                let w = p.worker.as_deref().and_then(worker);
                let pending = Pending {
                    miner: m,
                    miner_seq: p.miner_seq,
                    worker: w,
                    request_id: p.request_id.as_str().into(),
                    share: p.share,
                    sent: ago(p.age_ms),
                };
                (id, pending)
            })
            .collect();
        Mapper { work, pending, idle_since: s.idle_ms.map(ago), live: s.live }
    }

    /// Records a submit sent upstream under the pool request id `id`.
    pub fn add_pending(&mut self, id: u64, p: Pending) {
        self.pending.insert(id, p);
    }

    /// The submit the pool just answered.
    pub fn take_pending(&mut self, id: u64) -> Option<Pending> {
        self.pending.remove(&id)
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Removes submits the pool left unanswered since before `cutoff`.
    pub fn expire_pending(&mut self, cutoff: Instant) -> Vec<Pending> {
        let old: Vec<u64> = self.pending.iter().filter(|(_, p)| p.sent < cutoff).map(|(id, _)| *id).collect();
        old.into_iter().filter_map(|id| self.pending.remove(&id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn job(id: &str) -> Job {
        let v = json!({"blob": "0".repeat(152), "job_id": id, "target": "b88d0600", "algo": "cn/r"});
        Job::from_value(&v, None).unwrap()
    }

    /// A result whose hash reaches exactly `diff`.
    fn result_for(diff: u64) -> String {
        let v = u64::MAX / diff;
        format!("{}{}", "0".repeat(48), crate::stratum::difficulty::to_hex(&v.to_le_bytes()))
    }

    fn cn(m: &Mapper) -> &CnWork {
        match m.work() {
            Work::CryptoNote(w) => w,
            Work::V1(_) => unreachable!("a CryptoNote mapper"),
        }
    }

    fn mapper() -> Mapper {
        let mut m = Mapper::new(true, true, Instant::now());
        m.add(MinerId(1)).unwrap();
        m.set_job(job("j1"), 1);
        m
    }

    #[test]
    fn good_share_is_forwarded() {
        let mut m = mapper();
        let s = m.check_share(0, "j1", "00000000", &result_for(20000)).unwrap();
        assert!(s.forward && !s.expired);
        assert_eq!(s.diff, 10000);
    }

    #[test]
    fn nonce_must_carry_the_fixed_byte() {
        let mut m = mapper();
        m.add(MinerId(2)).unwrap(); // slot 1
        let r = result_for(20000);
        assert_eq!(m.check_share(1, "j1", "1c140000", &r), Err(StratumError::IncompatibleNonce));
        assert!(m.check_share(1, "j1", "1c140001", &r).is_ok());
    }

    #[test]
    fn malformed_inputs_get_their_errors() {
        let mut m = mapper();
        let r = result_for(20000);
        assert_eq!(m.check_share(0, "nope", "00000000", &r), Err(StratumError::InvalidJobId));
        assert_eq!(m.check_share(0, "j1", "0000000", &r), Err(StratumError::InvalidNonce));
        assert_eq!(m.check_share(0, "j1", "DEADBE00", &r), Err(StratumError::InvalidNonce));
        assert_eq!(m.check_share(0, "j1", "00000000", "xyz"), Err(StratumError::InvalidResult));
        assert_eq!(m.check_share(0, "j1", "00000000", &result_for(9000)), Err(StratumError::LowDifficulty));
    }

    #[test]
    fn duplicates_are_caught_per_job() {
        let mut m = mapper();
        let r = result_for(20000);
        assert!(m.check_share(0, "j1", "01000000", &r).is_ok());
        assert_eq!(m.check_share(0, "j1", "01000000", &r), Err(StratumError::Duplicate));
        m.set_job(job("j2"), 1);
        assert!(m.check_share(0, "j2", "01000000", &r).is_ok());
    }

    #[test]
    fn previous_job_is_expired_then_gone() {
        let mut m = mapper();
        m.set_job(job("j2"), 1);
        let r = result_for(20000);
        assert!(m.check_share(0, "j1", "02000000", &r).unwrap().expired);
        m.set_job(job("j3"), 1);
        assert_eq!(m.check_share(0, "j1", "03000000", &r), Err(StratumError::InvalidJobId));
    }

    #[test]
    fn a_new_pool_session_forgets_the_old_jobs() {
        let mut m = mapper();
        m.set_job(job("j2"), 2);
        assert_eq!(m.check_share(0, "j1", "02000000", &result_for(20000)), Err(StratumError::InvalidJobId));
    }

    #[test]
    fn a_line_below_the_pools_difficulty_has_its_own_job_id_and_is_judged_by_it() {
        let mut m = mapper();
        let line = m.job_line(1000, 0).unwrap().line.clone();
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["params"]["job_id"], "j1:1000", "a job id of its own");
        let s = m.check_share(0, "j1:1000", "00000000", &result_for(2000)).unwrap();
        assert!(!s.forward, "below the pool's target: answered here");
        assert_eq!(s.diff, 1000);
        assert_eq!(m.check_share(0, "j1:1000", "01000000", &result_for(500)), Err(StratumError::LowDifficulty));
        assert!(m.check_share(0, "j1:1000", "02000000", &result_for(10001)).unwrap().forward);
        assert_eq!(
            m.check_share(0, "j1:999", "03000000", &result_for(5000)),
            Err(StratumError::InvalidJobId),
            "no line at that difficulty"
        );
        assert_eq!(
            m.check_share(0, "j1", "04000000", &result_for(5000)),
            Err(StratumError::LowDifficulty),
            "the plain id is the pool's difficulty"
        );
        let Work::CryptoNote(w) = m.work() else { unreachable!() };
        assert_eq!((w.pool_job_id("j1:1000"), w.pool_job_id("j1"), w.pool_job_id("x:1")), ("j1", "j1", "x:1"));
        // At or above the pool's difficulty: the pool's line and id.
        let line = m.job_line(50_000, 0).unwrap().line.clone();
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!((v["params"]["job_id"].as_str(), v["params"]["target"].as_str()), (Some("j1"), Some("b88d0600")));
    }

    #[test]
    fn ten_thousand_miners_at_mixed_difficulties_cost_a_few_dozen_encodings_per_job() {
        use crate::splitter::vardiff::Step;
        // 10,000 rigs from 1 kH/s to 1 MH/s (log-uniform), each at the vardiff step that
        // gives a share every 30 s, spread over upstreams of 256 as NiceHash does.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut uniform = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let pool_diff = 2_000_000_000u64;
        let mut encodings = 0;
        let mut widest = 0;
        for upstream in 0..10_000usize.div_ceil(256) {
            let mut m = Mapper::new(true, true, Instant::now());
            let v = json!({"blob": "0".repeat(152), "job_id": format!("j{upstream}"), "target": "01000000", "algo": "rx/0"});
            let mut job = Job::from_value(&v, None).unwrap();
            job.diff = pool_diff;
            m.set_job(job, 1);
            for slot in 0..256u16 {
                let rate = 1000.0 * 1000f64.powf(uniform());
                let diff = Step::nearest(rate * 30.0).value() as u64;
                m.job_line(diff, slot).unwrap();
            }
            let lines = cn(&m).line_count();
            encodings += lines;
            widest = widest.max(lines);
        }
        assert!(widest <= super::super::cryptonote::MAX_LINES, "one job, at most {widest} encodings");
        assert!(encodings < 40 * 45, "{encodings} encodings for a job on 40 upstreams (not 10,000)");
    }

    #[test]
    fn a_share_in_flight_is_judged_by_its_jobs_difficulty_after_a_change() {
        let mut m = mapper();
        m.job_line(2000, 0);
        m.job_line(4000, 0); // the miner's difficulty went up: a new line and id
        assert!(m.check_share(0, "j1:2000", "00000000", &result_for(2500)).is_ok(), "mined for 2000, judged at 2000");
        assert_eq!(m.check_share(0, "j1:4000", "01000000", &result_for(2500)), Err(StratumError::LowDifficulty));
    }

    #[test]
    fn job_lines_are_encoded_once_per_difficulty_and_patched() {
        let mut m = mapper();
        let a = m.job_line(0, 5).unwrap().line.clone();
        let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(&v["params"]["blob"].as_str().unwrap()[84..86], "05");
        assert_eq!(v["params"]["target"], "b88d0600");
        let b = m.job_line(1000, 6).unwrap().line.clone();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(crate::stratum::difficulty::difficulty_from_target(v["params"]["target"].as_str().unwrap()), Some(1000));
        m.job_line(1000, 7).unwrap();
        assert_eq!(cn(&m).line_count(), 2);
    }

    #[test]
    fn simple_mode_neither_patches_nor_checks_the_byte() {
        let mut m = Mapper::new(false, true, Instant::now());
        m.add(MinerId(1)).unwrap();
        m.set_job(job("j1"), 1);
        let line = m.job_line(0, 0).unwrap().line.clone();
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["params"]["blob"].as_str().unwrap(), "0".repeat(152));
        assert!(m.check_share(0, "j1", "000000ff", &result_for(20000)).is_ok());
    }

    #[test]
    fn suspended_mapper_refuses_and_returns_in_flight_submits() {
        let mut m = mapper();
        let share = m.check_share(0, "j1", "00000000", &result_for(20000)).unwrap();
        m.add_pending(5, Pending { miner: MinerId(1), miner_seq: 1, worker: None, request_id: "2".into(), share, sent: Instant::now() });
        let failed = m.suspend();
        assert_eq!(failed.len(), 1);
        assert_eq!(m.check_share(0, "j1", "01000000", &result_for(20000)), Err(StratumError::PoolUnavailable));
        assert!(!m.is_live());
    }

    #[test]
    fn unanswered_submits_expire() {
        let mut m = mapper();
        let t0 = Instant::now();
        let share = m.check_share(0, "j1", "00000000", &result_for(20000)).unwrap();
        m.add_pending(5, Pending { miner: MinerId(1), miner_seq: 1, worker: None, request_id: "2".into(), share, sent: t0 });
        assert!(m.expire_pending(t0).is_empty());
        assert_eq!(m.expire_pending(t0 + Duration::from_secs(1)).len(), 1);
        assert_eq!(m.pending_count(), 0);
    }

    #[test]
    fn idle_after_last_miner_leaves() {
        let mut m = mapper();
        assert!(m.idle_since.is_none());
        let t = Instant::now();
        m.remove(0, MinerId(1), t);
        assert_eq!(m.idle_since, Some(t));
    }

    #[test]
    fn distinct_custom_difficulties_cannot_grow_the_job_cache() {
        let mut m = Mapper::new(true, true, Instant::now());
        m.set_job(job("j"), 1);
        for d in 1..10_000u64 {
            let line = m.job_line(d, 0).unwrap();
            assert_eq!(line.diff, d);
        }
        assert!(cn(&m).line_count() <= super::super::cryptonote::MAX_LINES);
        assert_eq!(m.job_line(0, 0).unwrap().diff, 10_000, "the pool difficulty stays cached");
    }

    #[test]
    fn an_unsent_share_can_be_submitted_again() {
        let mut m = Mapper::new(true, true, Instant::now());
        m.set_job(job("j"), 1);
        let nonce = "00000000";
        let share = Share { achieved: 1, diff: 1, expired: false, forward: true };
        for id in 0..MAX_PENDING as u64 {
            let p = Pending {
                miner: MinerId(1),
                miner_seq: 1,
                worker: None,
                request_id: "1".into(),
                share: share.clone(),
                sent: Instant::now(),
            };
            m.add_pending(id, p);
        }
        assert_eq!(m.check_share(0, "j", nonce, &result_for(20_000)), Err(StratumError::PoolUnavailable), "no room upstream");
        m.take_pending(0);
        assert!(m.check_share(0, "j", nonce, &result_for(20_000)).is_ok(), "not remembered as a duplicate");
        assert_eq!(m.check_share(0, "j", nonce, &result_for(20_000)), Err(StratumError::Duplicate));
    }
}
