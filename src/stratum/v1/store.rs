//! The jobs of one upstream that shares may still be submitted on.
//!
//! A notify without `clean_jobs` adds a job and keeps the older ones valid (a share found
//! on them is still worth something to the pool); one with `clean_jobs` voids them all. The
//! count is bounded: past [`StoreLimits::max_jobs`] the oldest job goes.
//!
//! Each job remembers the pool difficulty in force when it arrived (`mining.set_difficulty`
//! applies to the jobs notified after it) and carries its notify line, encoded once for
//! every miner of the upstream, and the shares seen on it for the duplicate check. That
//! memory is bounded per job: two generations of 64-bit share fingerprints, the older
//! dropped when the newer fills, so at least the last `max_shares_per_job / 2` shares are
//! always remembered. A fingerprint is a keyed SipHash of the whole share (prefix,
//! extranonce2, ntime, nonce, version) with a key drawn per store: two different shares
//! collide with probability 2^-64 per pair, and nobody can aim for it.

use super::job::V1Job;
use super::write::{clean_tail, notify};
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};

/// Bounds of a job store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Jobs kept between clean notifies.
    pub max_jobs: usize,
    /// Share fingerprints remembered per job (at least half of them at any time).
    pub max_shares_per_job: usize,
}

impl Default for StoreLimits {
    fn default() -> StoreLimits {
        StoreLimits { max_jobs: 8, max_shares_per_job: 16_384 }
    }
}

/// A job as stored: the job, when it came, what it is worth, and its notify line.
#[derive(Debug)]
pub struct StoredJob {
    pub job: V1Job,
    /// Position in the upstream's job sequence (see [`super::check::MinerDifficulty`]).
    pub seq: u64,
    /// The pool's difficulty for shares on this job.
    pub pool_diff: f64,
    line: Vec<u8>,
    clean_at: usize,
    seen: Seen,
}

impl StoredJob {
    /// The notify line as the pool flagged it, to write to every miner.
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// The notify line with `clean_jobs = true`: a miner's first job, or its first after
    /// moving to this upstream, must replace whatever it was mining.
    pub fn write_clean(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.line[..self.clean_at]);
        clean_tail(out, true);
    }

    pub(super) fn seen(&self, key: u64) -> bool {
        self.seen.contains(key)
    }

    pub(super) fn remember(&mut self, key: u64) {
        self.seen.insert(key);
    }
}

/// Two generations of fingerprints.
#[derive(Debug, Default)]
struct Seen {
    newer: HashSet<u64>,
    older: HashSet<u64>,
    half: usize,
}

impl Seen {
    fn contains(&self, key: u64) -> bool {
        self.newer.contains(&key) || self.older.contains(&key)
    }

    fn insert(&mut self, key: u64) {
        if self.newer.len() >= self.half {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(key);
    }
}

/// The jobs of one upstream.
#[derive(Debug)]
pub struct JobStore {
    jobs: VecDeque<StoredJob>,
    limits: StoreLimits,
    next_seq: u64,
    pool_diff: f64,
    keys: RandomState,
}

impl JobStore {
    /// An empty store; the pool difficulty is 1 until the pool sets one.
    pub fn new(limits: StoreLimits) -> JobStore {
        let limits = StoreLimits { max_jobs: limits.max_jobs.max(1), max_shares_per_job: limits.max_shares_per_job.max(2) };
        JobStore { jobs: VecDeque::new(), limits, next_seq: 0, pool_diff: 1.0, keys: RandomState::new() }
    }

    /// `mining.set_difficulty` from the pool: it applies to jobs added from now on.
    pub fn set_pool_difficulty(&mut self, diff: f64) {
        if diff.is_finite() && diff > 0.0 {
            self.pool_diff = diff;
        }
    }

    /// The difficulty the next job will carry.
    pub fn pool_difficulty(&self) -> f64 {
        self.pool_diff
    }

    /// The sequence number the next job will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Stores a job from the pool and encodes its notify line. A clean job voids the
    /// others; a job id seen before replaces its namesake.
    pub fn add(&mut self, job: V1Job) -> &StoredJob {
        if job.clean {
            self.jobs.clear();
        } else {
            self.jobs.retain(|j| j.job.job_id != job.job_id);
            while self.jobs.len() >= self.limits.max_jobs {
                self.jobs.pop_front();
            }
        }
        let mut line = Vec::new();
        let clean_at = notify(&mut line, &job, job.clean);
        let seen = Seen { half: self.limits.max_shares_per_job / 2, ..Seen::default() };
        let stored = StoredJob { job, seq: self.next_seq, pool_diff: self.pool_diff, line, clean_at, seen };
        self.next_seq += 1;
        self.jobs.push_back(stored);
        &self.jobs[self.jobs.len() - 1]
    }

    /// The newest job.
    /// The jobs kept, oldest first, with their sequence numbers and pool difficulties (a
    /// live upgrade hands them over; duplicate memory is not).
    pub fn snapshot(&self) -> Vec<(V1Job, u64, f64)> {
        self.jobs.iter().map(|j| (j.job.clone(), j.seq, j.pool_diff)).collect()
    }

    /// A job back from a snapshot (oldest first), with its sequence number and pool
    /// difficulty; then `finish_restore` with the store's own.
    pub fn restore_job(&mut self, job: V1Job, seq: u64, pool_diff: f64) {
        let keep = self.pool_diff;
        self.next_seq = seq;
        self.pool_diff = pool_diff;
        self.add(job);
        self.pool_diff = keep;
    }

    /// The store's next sequence number and pool difficulty, after `restore_job`.
    pub fn finish_restore(&mut self, next_seq: u64, pool_diff: f64) {
        self.next_seq = next_seq;
        self.set_pool_difficulty(pool_diff);
    }

    pub fn current(&self) -> Option<&StoredJob> {
        self.jobs.back()
    }

    /// A job shares may still be submitted on.
    pub fn get(&self, job_id: &str) -> Option<&StoredJob> {
        self.jobs.iter().rev().find(|j| &*j.job.job_id == job_id)
    }

    pub(super) fn get_mut(&mut self, job_id: &str) -> Option<&mut StoredJob> {
        self.jobs.iter_mut().rev().find(|j| &*j.job.job_id == job_id)
    }

    /// Voids every job: the pool link was lost, or the pool changed our extranonce1.
    pub fn clear(&mut self) {
        self.jobs.clear();
    }

    /// Jobs held.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// No jobs held.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The fingerprint of a share, for the duplicate check.
    pub(super) fn share_key(&self, prefix: &[u8], extranonce2: &[u8], ntime: u32, nonce: u32, version: u32) -> u64 {
        self.keys.hash_one((prefix, extranonce2, ntime, nonce, version))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::capture_notifies;
    use super::*;

    fn job(id: &str, clean: bool) -> V1Job {
        let mut j = V1Job::from_params(&capture_notifies()[0]).unwrap();
        j.job_id = id.into();
        j.clean = clean;
        j
    }

    #[test]
    fn clean_jobs_void_the_older_ones() {
        let mut s = JobStore::new(StoreLimits::default());
        s.add(job("a", true));
        s.add(job("b", false));
        assert!(s.get("a").is_some() && s.get("b").is_some());
        assert_eq!(s.current().map(|j| &*j.job.job_id), Some("b"));
        s.add(job("c", true));
        assert!(s.get("a").is_none() && s.get("b").is_none());
        assert_eq!(s.len(), 1);
        s.clear();
        assert!(s.is_empty() && s.current().is_none());
    }

    #[test]
    fn job_count_is_bounded_and_ids_are_unique() {
        let mut s = JobStore::new(StoreLimits { max_jobs: 3, ..StoreLimits::default() });
        for id in ["a", "b", "c", "d"] {
            s.add(job(id, false));
        }
        assert_eq!(s.len(), 3);
        assert!(s.get("a").is_none(), "the oldest went");
        s.add(job("c", false));
        assert_eq!(s.len(), 3);
        assert_eq!(s.get("c").map(|j| j.seq), Some(4), "the namesake was replaced");
    }

    #[test]
    fn jobs_carry_the_pool_difficulty_of_their_time() {
        let mut s = JobStore::new(StoreLimits::default());
        s.set_pool_difficulty(0.004);
        s.add(job("a", true));
        s.set_pool_difficulty(0.008);
        s.set_pool_difficulty(f64::NAN);
        s.set_pool_difficulty(-1.0);
        s.add(job("b", false));
        assert_eq!(s.get("a").map(|j| j.pool_diff), Some(0.004));
        assert_eq!(s.get("b").map(|j| j.pool_diff), Some(0.008));
        assert_eq!((s.get("a").map(|j| j.seq), s.next_seq()), (Some(0), 2));
    }

    #[test]
    fn the_line_is_encoded_once_and_can_be_sent_clean() {
        let mut s = JobStore::new(StoreLimits::default());
        let j = s.add(job("a", false));
        assert!(j.line().ends_with(b"false]}\n"));
        let mut out = Vec::new();
        j.write_clean(&mut out);
        assert!(out.ends_with(b",true]}\n"));
        assert_eq!(out[..out.len() - 7], j.line()[..j.line().len() - 8]);
    }

    #[test]
    fn duplicate_memory_is_bounded_and_keeps_the_recent_half() {
        let mut s = JobStore::new(StoreLimits { max_jobs: 2, max_shares_per_job: 100 });
        s.add(job("a", true));
        let keys: Vec<u64> = (0..1000u32).map(|n| s.share_key(&[1], &[0; 4], 7, n, 0)).collect();
        let j = s.get_mut("a").unwrap();
        for (i, k) in keys.iter().enumerate() {
            assert!(!j.seen(*k), "share {i} is new");
            j.remember(*k);
            assert!(j.seen(*k));
        }
        assert!(j.seen.newer.len() + j.seen.older.len() <= 100);
        assert!(keys[950..].iter().all(|k| j.seen(*k)), "the last half is remembered");
        assert!(!j.seen(keys[0]), "the oldest is forgotten");
        assert_ne!(s.share_key(&[1], &[0; 4], 7, 1, 0), s.share_key(&[2], &[0; 4], 7, 1, 0), "the prefix is part of the key");
    }
}
