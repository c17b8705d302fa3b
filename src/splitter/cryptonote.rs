//! The CryptoNote work of one upstream, free of sockets: the slot table (one fixed nonce
//! byte per miner in NiceHash mode, one slot in simple mode), the current and previous
//! job (each encoded once per distinct miner target, patched per miner), and the share
//! check.

use super::Share;
use super::storage::Storage;
use crate::MinerId;
use crate::stratum::difficulty::{hex_bytes, is_lower_hex, share_difficulty, target_for_difficulty};
use crate::stratum::write::JobLine;
use crate::stratum::{Job, StratumError};
use std::collections::HashSet;

/// Remembered nonces per job; past this the pool is left to spot duplicates.
const MAX_SEEN_PER_JOB: usize = 1 << 16;
/// Job encodings cached per job (one per distinct miner difficulty). Vardiff hands out
/// ladder steps, and the miners of one upstream use about 45 of them (measured in
/// `vardiff`'s tests); past this, the last entry is re-encoded on demand, so miners can't
/// grow memory or scan time by logging in with ever new `+difficulty` suffixes. A share
/// for a line that was evicted is refused as an unknown job.
pub(super) const MAX_LINES: usize = 64;

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

/// A CryptoNote upstream's work as a live upgrade hands it over.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct CnSnapshot {
    capacity: usize,
    nicehash: bool,
    algo_ext: bool,
    /// Miners by slot, by their ids in the old process.
    slots: Vec<(u8, usize)>,
    /// Slots free in the old process: free here too. Without the list (an older process)
    /// every slot but the listed miners' is dead until the next job.
    #[serde(default)]
    free: Option<Vec<u8>>,
    current: Option<JobSnapshot>,
    previous: Option<JobSnapshot>,
}

/// A job and what was done with it: the difficulties it was encoded at (re-encoded the
/// same, so the job ids miners hold stay valid) and the nonces seen.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct JobSnapshot {
    job: Job,
    generation: u64,
    diffs: Vec<u64>,
    seen: Vec<u32>,
}

/// The CryptoNote side of an upstream.
#[derive(Debug)]
pub struct CnWork {
    storage: Storage,
    nicehash: bool,
    algo_ext: bool,
    current: Option<JobState>,
    previous: Option<JobState>,
}

impl CnWork {
    pub(super) fn new(nicehash: bool, algo_ext: bool) -> CnWork {
        CnWork { storage: Storage::new(if nicehash { 256 } else { 1 }), nicehash, algo_ext, current: None, previous: None }
    }

    pub(super) fn storage(&self) -> &Storage {
        &self.storage
    }

    pub(super) fn storage_mut(&mut self) -> &mut Storage {
        &mut self.storage
    }

    /// The current job, if any.
    pub fn job(&self) -> Option<&Job> {
        self.current.as_ref().map(|j| &j.job)
    }

    /// Takes a new job. The old one stays valid (as expired) only if it came from the same
    /// pool session; dead slots become free.
    pub(super) fn set_job(&mut self, job: Job, generation: u64) {
        let line = JobLine::new(&job, &job.target, job.diff, self.algo_ext);
        let state = JobState { job, generation, lines: vec![line], seen: HashSet::new() };
        let old = self.current.replace(state);
        self.previous = old.filter(|o| o.generation == generation);
        self.storage.clear_dead();
    }

    /// The pool's difficulty of the current job.
    pub fn pool_diff(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.job.diff)
    }

    /// The current job's line at difficulty `diff` (the pool's when `diff` is 0 or not
    /// below it), patched with `slot` when splitting nonces. Encoded once per distinct
    /// difficulty.
    pub fn job_line(&mut self, diff: u64, slot: u8) -> Option<&JobLine> {
        let nicehash = self.nicehash;
        let algo_ext = self.algo_ext;
        let cur = self.current.as_mut()?;
        let diff = if diff > 0 && diff < cur.job.diff { diff } else { cur.job.diff };
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

    /// Splits a job id a miner sent into the pool's and the difficulty its line had.
    fn lookup(&mut self, job_id: &str) -> Option<(&mut JobState, bool, u64)> {
        let exact = |s: &JobState| s.job.job_id == job_id;
        if self.current.as_ref().is_some_and(exact) {
            return self.current.as_mut().map(|c| {
                let d = c.job.diff;
                (c, false, d)
            });
        }
        if self.previous.as_ref().is_some_and(exact) {
            return self.previous.as_mut().map(|p| {
                let d = p.job.diff;
                (p, true, d)
            });
        }
        // POOLID:DIFF, for a line below the pool's difficulty that we sent.
        let (id, diff) = job_id.rsplit_once(':')?;
        let diff: u64 = diff.parse().ok()?;
        let ours = |s: &JobState| s.job.job_id == id && s.lines.iter().any(|l| l.diff == diff);
        if self.current.as_ref().is_some_and(ours) {
            return self.current.as_mut().map(|c| (c, false, diff));
        }
        if self.previous.as_ref().is_some_and(ours) {
            return self.previous.as_mut().map(|p| (p, true, diff));
        }
        None
    }

    /// The pool's job id for an id a miner sent (without our `:DIFF`).
    pub fn pool_job_id<'a>(&self, job_id: &'a str) -> &'a str {
        let known = |id: &str| [&self.current, &self.previous].iter().any(|s| s.as_ref().is_some_and(|s| s.job.job_id == id));
        match job_id.rsplit_once(':') {
            Some((id, _)) if !known(job_id) && known(id) => id,
            _ => job_id,
        }
    }

    /// Checks a submit from the miner in `slot` (session id already checked) against the
    /// difficulty of the job line it names; `pending_full`: no room upstream for one more.
    pub(super) fn check_share(
        &mut self,
        slot: u8,
        job_id: &str,
        nonce: &str,
        result: &str,
        pending_full: bool,
    ) -> Result<Share, StratumError> {
        let nicehash = self.nicehash;
        let (state, expired, diff) = self.lookup(job_id).ok_or(StratumError::InvalidJobId)?;
        if nonce.len() != 8 || !is_lower_hex(nonce) {
            return Err(StratumError::InvalidNonce);
        }
        let bytes = hex_bytes::<4>(nonce).ok_or(StratumError::InvalidNonce)?;
        if nicehash && bytes[3] != slot {
            return Err(StratumError::IncompatibleNonce);
        }
        if !is_lower_hex(result) {
            return Err(StratumError::InvalidResult);
        }
        let achieved = share_difficulty(result).ok_or(StratumError::InvalidResult)?;
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

    /// The work as a live upgrade hands it over (miners by their ids in this process).
    pub(super) fn snapshot(&self) -> CnSnapshot {
        let job = |j: &JobState| JobSnapshot {
            job: j.job.clone(),
            generation: j.generation,
            diffs: j.lines.iter().map(|l| l.diff).collect(),
            seen: j.seen.iter().copied().collect(),
        };
        CnSnapshot {
            capacity: self.storage.capacity(),
            nicehash: self.nicehash,
            algo_ext: self.algo_ext,
            slots: self.storage.active_slots().map(|(s, m)| (s, m.0)).collect(),
            free: Some(self.storage.free_slots().collect()),
            current: self.current.as_ref().map(job),
            previous: self.previous.as_ref().map(job),
        }
    }

    /// The work back from a snapshot, miners renamed by `miner` (their ids here).
    pub(super) fn restore(s: CnSnapshot, miner: &dyn Fn(usize) -> Option<MinerId>) -> CnWork {
        let algo_ext = s.algo_ext;
        let job = |j: JobSnapshot| {
            let mut lines: Vec<JobLine> = Vec::new();
            for d in j.diffs.iter().take(MAX_LINES) {
                let target = if *d >= j.job.diff { j.job.target.clone() } else { target_for_difficulty(*d) };
                lines.push(JobLine::new(&j.job, &target, *d, algo_ext));
            }
            JobState { job: j.job, generation: j.generation, lines, seen: j.seen.into_iter().collect() }
        };
        let slots = s.slots.into_iter().filter_map(|(slot, m)| Some((slot, miner(m)?)));
        CnWork {
            storage: Storage::restore(s.capacity, slots, s.free.as_deref().unwrap_or_default()),
            nicehash: s.nicehash,
            algo_ext,
            current: s.current.map(job),
            previous: s.previous.map(job),
        }
    }

    #[cfg(test)]
    pub(super) fn line_count(&self) -> usize {
        self.current.as_ref().map_or(0, |c| c.lines.len())
    }
}
