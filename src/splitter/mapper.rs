//! One upstream's share of the splitting work, free of sockets: its slot table, the current
//! and previous job (each encoded once per distinct miner target), share checks, and the
//! submits in flight to the pool.

use super::storage::Storage;
use crate::MinerId;
use crate::stratum::difficulty::{hex_bytes, is_lower_hex, share_difficulty, target_for_difficulty};
use crate::stratum::request::KeptId;
use crate::stratum::write::JobLine;
use crate::stratum::{Job, StratumError};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// Remembered nonces per job; past this the pool is left to spot duplicates.
const MAX_SEEN_PER_JOB: usize = 1 << 16;
/// Submits in flight per upstream; past this new shares are refused.
pub const MAX_PENDING: usize = 1 << 14;
/// Job encodings cached per job (one per distinct miner difficulty). Past this, the last
/// entry is re-encoded on demand, so miners can't grow memory or scan time by logging in
/// with ever new `+difficulty` suffixes.
const MAX_LINES: usize = 32;

/// A job and what was done with it.
#[derive(Debug)]
struct JobState {
    job: Job,
    /// Upstream connection generation the job came from.
    generation: u64,
    /// Encodings, one per miner difficulty in use (pool difficulty first).
    lines: Vec<JobLine>,
    /// Nonces already submitted for this job through this upstream.
    seen: HashSet<u32>,
}

/// A share that passed the proxy's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Splitter state of one upstream.
#[derive(Debug)]
pub struct Mapper {
    storage: Storage,
    nicehash: bool,
    algo_ext: bool,
    current: Option<JobState>,
    previous: Option<JobState>,
    pending: HashMap<u64, Pending>,
    /// When the last miner left; `None` while miners are attached.
    pub idle_since: Option<Instant>,
    /// The upstream has a live pool session and a job from it.
    live: bool,
}

impl Mapper {
    pub fn new(nicehash: bool, algo_ext: bool, now: Instant) -> Mapper {
        Mapper {
            storage: Storage::new(if nicehash { 256 } else { 1 }),
            nicehash,
            algo_ext,
            current: None,
            previous: None,
            pending: HashMap::new(),
            idle_since: Some(now),
            live: false,
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Attaches a miner; returns its slot (its fixed byte in NiceHash mode).
    pub fn add(&mut self, miner: MinerId) -> Option<u8> {
        let slot = self.storage.add(miner)?;
        self.idle_since = None;
        Some(slot)
    }

    /// Detaches a miner; the mapper becomes idle when it was the last one.
    pub fn remove(&mut self, slot: u8, miner: MinerId, now: Instant) {
        self.storage.remove(slot, miner);
        if self.storage.active() == 0 && self.idle_since.is_none() {
            self.idle_since = Some(now);
        }
    }

    /// Frees a slot reserved for a miner who never mined on it.
    pub fn release(&mut self, slot: u8, miner: MinerId, now: Instant) {
        self.storage.release(slot, miner);
        if self.storage.active() == 0 && self.idle_since.is_none() {
            self.idle_since = Some(now);
        }
    }

    /// True once the upstream has a job from a live pool session.
    pub fn is_live(&self) -> bool {
        self.live && self.current.is_some()
    }

    /// The current job, if any.
    pub fn job(&self) -> Option<&Job> {
        self.current.as_ref().map(|j| &j.job)
    }

    /// Takes a new job. The old one stays valid (as expired) only if it came from the same
    /// pool session; dead slots become free.
    pub fn set_job(&mut self, job: Job, generation: u64) {
        let line = JobLine::new(&job, &job.target, job.diff, self.algo_ext);
        let state = JobState { job, generation, lines: vec![line], seen: HashSet::new() };
        let old = self.current.replace(state);
        self.previous = old.filter(|o| o.generation == generation);
        self.storage.clear_dead();
        self.live = true;
    }

    /// The pool session ended: no share can be forwarded until the next job, and the
    /// submits in flight will never be answered (they are returned to be failed).
    pub fn suspend(&mut self) -> Vec<Pending> {
        self.live = false;
        self.pending.drain().map(|(_, p)| p).collect()
    }

    /// The difficulty a miner works at: its custom difficulty when that is below the pool's.
    pub fn miner_diff(pool_diff: u64, custom_diff: u64) -> u64 {
        if custom_diff > 0 && custom_diff < pool_diff { custom_diff } else { pool_diff }
    }

    /// The current job's line for a miner with `custom_diff`, patched with `slot` when
    /// splitting nonces. Encoded once per distinct difficulty.
    pub fn job_line(&mut self, custom_diff: u64, slot: u8) -> Option<&JobLine> {
        let nicehash = self.nicehash;
        let algo_ext = self.algo_ext;
        let cur = self.current.as_mut()?;
        let diff = Self::miner_diff(cur.job.diff, custom_diff);
        let idx = match cur.lines.iter().position(|l| l.diff == diff) {
            Some(i) => i,
            None => {
                let line = JobLine::new(&cur.job, &target_for_difficulty(diff), diff, algo_ext);
                if cur.lines.len() < MAX_LINES {
                    cur.lines.push(line);
                } else {
                    cur.lines[MAX_LINES - 1] = line;
                }
                cur.lines.len() - 1
            }
        };
        let line = &mut cur.lines[idx];
        if nicehash {
            line.patch(slot);
        }
        Some(line)
    }

    /// Checks a submit from the miner in `slot` (session id already checked).
    pub fn check_share(&mut self, slot: u8, custom_diff: u64, job_id: &str, nonce: &str, result: &str) -> Result<Share, StratumError> {
        if !self.live {
            return Err(StratumError::PoolUnavailable);
        }
        let pending_full = self.pending.len() >= MAX_PENDING;
        let (state, expired) = match (&mut self.current, &mut self.previous) {
            (Some(c), _) if c.job.job_id == job_id => (c, false),
            (_, Some(p)) if p.job.job_id == job_id => (p, true),
            _ => return Err(StratumError::InvalidJobId),
        };
        if nonce.len() != 8 || !is_lower_hex(nonce) {
            return Err(StratumError::InvalidNonce);
        }
        let bytes = hex_bytes::<4>(nonce).ok_or(StratumError::InvalidNonce)?;
        if self.nicehash && bytes[3] != slot {
            return Err(StratumError::IncompatibleNonce);
        }
        if !is_lower_hex(result) {
            return Err(StratumError::InvalidResult);
        }
        let achieved = share_difficulty(result).ok_or(StratumError::InvalidResult)?;
        let diff = Self::miner_diff(state.job.diff, custom_diff);
        if achieved < diff {
            return Err(StratumError::LowDifficulty);
        }
        let key = u32::from_le_bytes(bytes);
        if state.seen.contains(&key) {
            return Err(StratumError::Duplicate);
        }
        let forward = achieved >= state.job.diff;
        if forward && pending_full {
            // Refused before it is remembered, so the miner may submit it again.
            return Err(StratumError::PoolUnavailable);
        }
        if state.seen.len() < MAX_SEEN_PER_JOB {
            state.seen.insert(key);
        }
        Ok(Share { achieved, diff, expired, forward })
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

    fn mapper() -> Mapper {
        let mut m = Mapper::new(true, true, Instant::now());
        m.add(MinerId(1)).unwrap();
        m.set_job(job("j1"), 1);
        m
    }

    #[test]
    fn good_share_is_forwarded() {
        let mut m = mapper();
        let s = m.check_share(0, 0, "j1", "00000000", &result_for(20000)).unwrap();
        assert!(s.forward && !s.expired);
        assert_eq!(s.diff, 10000);
    }

    #[test]
    fn nonce_must_carry_the_fixed_byte() {
        let mut m = mapper();
        m.add(MinerId(2)).unwrap(); // slot 1
        let r = result_for(20000);
        assert_eq!(m.check_share(1, 0, "j1", "1c140000", &r), Err(StratumError::IncompatibleNonce));
        assert!(m.check_share(1, 0, "j1", "1c140001", &r).is_ok());
    }

    #[test]
    fn malformed_inputs_get_their_errors() {
        let mut m = mapper();
        let r = result_for(20000);
        assert_eq!(m.check_share(0, 0, "nope", "00000000", &r), Err(StratumError::InvalidJobId));
        assert_eq!(m.check_share(0, 0, "j1", "0000000", &r), Err(StratumError::InvalidNonce));
        assert_eq!(m.check_share(0, 0, "j1", "DEADBE00", &r), Err(StratumError::InvalidNonce));
        assert_eq!(m.check_share(0, 0, "j1", "00000000", "xyz"), Err(StratumError::InvalidResult));
        assert_eq!(m.check_share(0, 0, "j1", "00000000", &result_for(9000)), Err(StratumError::LowDifficulty));
    }

    #[test]
    fn duplicates_are_caught_per_job() {
        let mut m = mapper();
        let r = result_for(20000);
        assert!(m.check_share(0, 0, "j1", "01000000", &r).is_ok());
        assert_eq!(m.check_share(0, 0, "j1", "01000000", &r), Err(StratumError::Duplicate));
        m.set_job(job("j2"), 1);
        assert!(m.check_share(0, 0, "j2", "01000000", &r).is_ok());
    }

    #[test]
    fn previous_job_is_expired_then_gone() {
        let mut m = mapper();
        m.set_job(job("j2"), 1);
        let r = result_for(20000);
        assert!(m.check_share(0, 0, "j1", "02000000", &r).unwrap().expired);
        m.set_job(job("j3"), 1);
        assert_eq!(m.check_share(0, 0, "j1", "03000000", &r), Err(StratumError::InvalidJobId));
    }

    #[test]
    fn a_new_pool_session_forgets_the_old_jobs() {
        let mut m = mapper();
        m.set_job(job("j2"), 2);
        assert_eq!(m.check_share(0, 0, "j1", "02000000", &result_for(20000)), Err(StratumError::InvalidJobId));
    }

    #[test]
    fn custom_diff_below_pool_is_answered_locally() {
        let mut m = mapper();
        let s = m.check_share(0, 1000, "j1", "00000000", &result_for(2000)).unwrap();
        assert!(!s.forward);
        assert_eq!(s.diff, 1000);
        assert_eq!(m.check_share(0, 1000, "j1", "01000000", &result_for(500)), Err(StratumError::LowDifficulty));
        assert!(m.check_share(0, 1000, "j1", "02000000", &result_for(10001)).unwrap().forward);
        // A custom difficulty above the pool's is ignored: the pool's target rules.
        assert_eq!(Mapper::miner_diff(10000, 50000), 10000);
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
        assert_eq!(m.current.as_ref().unwrap().lines.len(), 2);
    }

    #[test]
    fn simple_mode_neither_patches_nor_checks_the_byte() {
        let mut m = Mapper::new(false, true, Instant::now());
        m.add(MinerId(1)).unwrap();
        m.set_job(job("j1"), 1);
        let line = m.job_line(0, 0).unwrap().line.clone();
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["params"]["blob"].as_str().unwrap(), "0".repeat(152));
        assert!(m.check_share(0, 0, "j1", "000000ff", &result_for(20000)).is_ok());
    }

    #[test]
    fn suspended_mapper_refuses_and_returns_in_flight_submits() {
        let mut m = mapper();
        let share = m.check_share(0, 0, "j1", "00000000", &result_for(20000)).unwrap();
        m.add_pending(5, Pending { miner: MinerId(1), miner_seq: 1, worker: None, request_id: "2".into(), share, sent: Instant::now() });
        let failed = m.suspend();
        assert_eq!(failed.len(), 1);
        assert_eq!(m.check_share(0, 0, "j1", "01000000", &result_for(20000)), Err(StratumError::PoolUnavailable));
        assert!(!m.is_live());
    }

    #[test]
    fn unanswered_submits_expire() {
        let mut m = mapper();
        let t0 = Instant::now();
        let share = m.check_share(0, 0, "j1", "00000000", &result_for(20000)).unwrap();
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
        assert!(m.current.as_ref().unwrap().lines.len() <= MAX_LINES);
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
        assert_eq!(m.check_share(0, 0, "j", nonce, &result_for(20_000)), Err(StratumError::PoolUnavailable), "no room upstream");
        m.take_pending(0);
        assert!(m.check_share(0, 0, "j", nonce, &result_for(20_000)).is_ok(), "not remembered as a duplicate");
        assert_eq!(m.check_share(0, 0, "j", nonce, &result_for(20_000)), Err(StratumError::Duplicate));
    }
}
