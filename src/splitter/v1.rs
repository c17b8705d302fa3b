//! The stratum v1 work of one upstream, free of sockets: the prefix table that shares one
//! pool session between miners, the jobs still open for shares, and the share check.
//!
//! **How the pool's extranonce2 is shared.** The pool gives us extranonce1 `E` and an
//! extranonce2 of `N` bytes. Each miner gets a prefix `P` of `k` bytes and mines an
//! extranonce2 of `M` bytes; the pool receives `F || P || extranonce2` (`F` zero filler,
//! `N - k - M` bytes), so every miner searches its own part of the pool's space:
//!
//! - `N >= 6`: `k = 2`, `M = 4` (65,536 miners per pool session, and 2^32 extranonce2
//!   values per job per miner, which an ASIC of 100 TH/s needs 46 hours to exhaust even
//!   without version rolling);
//! - `N = 3..5`: `k = 1`, `M = N - 1` (256 miners);
//! - `N < 3`: `k = 0`, `M = N` (one miner per pool session).
//!
//! The miner's coinbase is `coinb1 || extranonce1 || extranonce2 || coinb2`. We give the
//! miner `P` as its extranonce1 and send `coinb1 || E || F` as coinb1, so its coinbase is
//! byte for byte the pool's: `coinb1 || E || F || P || extranonce2 || coinb2`. The miner's
//! promise (`k`, `M`) thus does not depend on `E`: it can be made at `mining.subscribe`
//! before the miner says which account it mines for (that comes with
//! `mining.authorize`), and a miner can move to another session or another pool with the
//! same split without `mining.set_extranonce`, which stock cpuminer does not understand.
//! Until a pool has answered our subscribe, the standard split (`k = 2`, `M = 4`) is
//! assumed; a pool with `N < 6` gets its own split and miners promised otherwise are
//! told their new extranonce or asked to reconnect.

use super::Share;
use crate::MinerId;
use crate::stratum::v1::check::{MinerDifficulty, ShareContext, Verdict, check_share};
use crate::stratum::v1::error::V1Error;
use crate::stratum::v1::extranonce::{Prefix, PrefixTable, Split};
use crate::stratum::v1::header::Pow;
use crate::stratum::v1::job::V1Job;
use crate::stratum::v1::message::Submit;
use crate::stratum::v1::store::{JobStore, StoreLimits, StoredJob};

/// How a pool's extranonce2 is divided: see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct V1Split {
    /// Bytes of our prefix (`k`).
    pub prefix_len: usize,
    /// Bytes the miner rolls (`M`).
    pub miner_size: usize,
    /// Zero bytes before the prefix (`N - k - M`), sent in coinb1.
    pub filler: usize,
}

impl V1Split {
    /// What a miner is promised before its pool is known.
    pub const STANDARD: V1Split = V1Split { prefix_len: 2, miner_size: 4, filler: 0 };

    /// The split for a pool's extranonce2 size.
    pub fn for_pool(n: usize) -> V1Split {
        match n {
            0..=2 => V1Split { prefix_len: 0, miner_size: n, filler: 0 },
            3..=5 => V1Split { prefix_len: 1, miner_size: n - 1, filler: 0 },
            _ => V1Split { prefix_len: 2, miner_size: 4, filler: n - 6 },
        }
    }

    /// What a miner sees of it: its prefix length and its extranonce2 size.
    pub fn promise(&self) -> (usize, usize) {
        (self.prefix_len, self.miner_size)
    }

    fn table(&self) -> PrefixTable {
        PrefixTable::new(Split { prefix_len: self.prefix_len, miner_size: self.miner_size })
    }
}

/// A v1 upstream's work as a live upgrade hands it over.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct V1Snapshot {
    tail: Vec<u8>,
    split: V1Split,
    /// Miners by prefix, by their ids in the old process.
    prefixes: Vec<(u16, usize)>,
    /// Jobs (coinb1 already ending with the tail), their sequence numbers and pool
    /// difficulties.
    jobs: Vec<(V1Job, u64, f64)>,
    next_seq: u64,
    pool_diff: f64,
    pool_mask: u32,
    pow: Option<Pow>,
    divider: f64,
}

/// The stratum v1 side of an upstream.
#[derive(Debug)]
pub struct V1Work {
    /// The pool's extranonce1 and the filler: appended to coinb1 of every job we send.
    tail: Vec<u8>,
    split: V1Split,
    prefixes: PrefixTable,
    store: JobStore,
    /// The version bits the pool lets us roll (0: none).
    pub pool_mask: u32,
    pow: Option<Pow>,
    /// Hashes a difficulty-1 share stands for (for the statistics, which count hashes).
    divider: f64,
}

impl V1Work {
    pub(super) fn new(pow: Option<Pow>, divider: f64) -> V1Work {
        let split = V1Split::STANDARD;
        V1Work {
            tail: Vec::new(),
            split,
            prefixes: split.table(),
            store: JobStore::new(StoreLimits::default()),
            pool_mask: 0,
            pow,
            divider,
        }
    }

    /// The work as a live upgrade hands it over.
    pub(super) fn snapshot(&self) -> V1Snapshot {
        V1Snapshot {
            tail: self.tail.clone(),
            split: self.split,
            prefixes: self.prefixes.active().map(|(p, m)| (p, m.0)).collect(),
            jobs: self.store.snapshot(),
            next_seq: self.store.next_seq(),
            pool_diff: self.store.pool_difficulty(),
            pool_mask: self.pool_mask,
            pow: self.pow,
            divider: self.divider,
        }
    }

    /// The work back from a snapshot, miners renamed by `miner` (their ids here).
    pub(super) fn restore(s: V1Snapshot, miner: &dyn Fn(usize) -> Option<MinerId>) -> V1Work {
        let mut w = V1Work::new(s.pow, s.divider);
        w.tail = s.tail;
        w.split = s.split;
        w.prefixes = s.split.table();
        for (p, m) in s.prefixes {
            if let Some(m) = miner(m) {
                w.prefixes.add_as(p, m);
            }
        }
        for (job, seq, diff) in s.jobs {
            w.store.restore_job(job, seq, diff);
        }
        w.store.finish_restore(s.next_seq, s.pool_diff);
        w.pool_mask = s.pool_mask;
        w
    }

    /// Hashes a difficulty-1 share stands for.
    pub fn divider(&self) -> f64 {
        self.divider
    }

    /// The pool's extranonce2 size.
    pub fn pool_extranonce2_size(&self) -> usize {
        self.split.filler + self.split.prefix_len + self.split.miner_size
    }

    /// The split miners of this upstream have.
    pub fn split(&self) -> V1Split {
        self.split
    }

    /// The pool answered our subscribe (or sent `mining.set_extranonce`): its extranonce1
    /// and extranonce2 size. Earlier jobs are void. Returns the miners whose promised
    /// split no longer fits (they need a new extranonce, or to reconnect).
    pub(super) fn set_session(&mut self, extranonce1: &[u8], extranonce2_size: usize) -> Vec<(u16, MinerId)> {
        let split = V1Split::for_pool(extranonce2_size);
        self.tail.clear();
        self.tail.extend_from_slice(extranonce1);
        self.tail.resize(extranonce1.len() + split.filler, 0);
        self.store.clear();
        if split.promise() == self.split.promise() {
            self.split = split;
            return Vec::new();
        }
        let misfits: Vec<(u16, MinerId)> = self.prefixes.active().collect();
        self.split = split;
        self.prefixes = split.table();
        misfits
    }

    pub(super) fn prefixes(&mut self) -> &mut PrefixTable {
        &mut self.prefixes
    }

    pub(super) fn prefix_table(&self) -> &PrefixTable {
        &self.prefixes
    }

    /// The prefix of slot `slot`, as the miner gets it (its extranonce1).
    pub fn prefix(&self, slot: u16) -> Prefix {
        Prefix::new(slot, self.split.prefix_len)
    }

    /// What goes before the miner's extranonce2 in a submit to the pool: filler, prefix.
    pub fn pool_prefix(&self, slot: u16, out: &mut Vec<u8>) {
        out.resize(self.split.filler, 0);
        out.extend_from_slice(self.prefix(slot).as_bytes());
    }

    /// A `mining.notify` from the pool: kept, with our tail on coinb1, and encoded once.
    /// A clean job frees the prefixes of departed miners.
    pub(super) fn add_job(&mut self, mut job: V1Job) -> &StoredJob {
        let mut coinb1 = Vec::with_capacity(job.coinb1.len() + self.tail.len());
        coinb1.extend_from_slice(&job.coinb1);
        coinb1.extend_from_slice(&self.tail);
        job.coinb1 = coinb1.into_boxed_slice();
        if job.clean {
            self.prefixes.clear_dead();
        }
        self.store.add(job)
    }

    /// The pool's difficulty from now on (for the jobs notified after it).
    pub(super) fn set_pool_difficulty(&mut self, diff: f64) {
        self.store.set_pool_difficulty(diff);
    }

    pub fn pool_difficulty(&self) -> f64 {
        self.store.pool_difficulty()
    }

    /// The newest job.
    pub fn current(&self) -> Option<&StoredJob> {
        self.store.current()
    }

    /// The sequence number the next job will have.
    pub fn next_seq(&self) -> u64 {
        self.store.next_seq()
    }

    /// Checks a submit from the miner in `slot`; a share that passes comes back in hashes
    /// (difficulty x divider), the unit of every hashrate here.
    pub(super) fn check_share(
        &mut self,
        slot: u16,
        difficulty: &MinerDifficulty,
        version_mask: u32,
        submit: &Submit<'_>,
    ) -> Result<Share, V1Error> {
        let prefix = self.prefix(slot);
        let ctx =
            ShareContext { extranonce1: &[], prefix: prefix.as_bytes(), extranonce2_size: self.split.miner_size, difficulty, version_mask };
        let expired = self.store.current().is_none_or(|c| *c.job.job_id != *submit.job_id);
        let seq = self.store.get(&submit.job_id).map_or(0, |j| j.seq);
        let verdict = check_share(&mut self.store, self.pow, &ctx, submit).map_err(|r| r.error())?;
        let hashes = |d: f64| (d * self.divider).min(u64::MAX as f64) as u64;
        let diff = hashes(difficulty.for_job(seq));
        Ok(match verdict {
            Verdict::Forward { difficulty } => Share { achieved: hashes(difficulty), diff, expired, forward: true },
            Verdict::Local { difficulty } => Share { achieved: hashes(difficulty), diff, expired, forward: false },
            Verdict::Unchecked => Share { achieved: diff, diff, expired, forward: true },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_by_pool_extranonce2_size() {
        let s = V1Split::for_pool;
        assert_eq!(s(8), V1Split { prefix_len: 2, miner_size: 4, filler: 2 });
        assert_eq!(s(6), V1Split { prefix_len: 2, miner_size: 4, filler: 0 });
        assert_eq!(s(16), V1Split { prefix_len: 2, miner_size: 4, filler: 10 }, "the miner keeps 4 bytes, within cgminer's 8");
        assert_eq!(s(5), V1Split { prefix_len: 1, miner_size: 4, filler: 0 });
        assert_eq!(s(3), V1Split { prefix_len: 1, miner_size: 2, filler: 0 });
        assert_eq!(s(2), V1Split { prefix_len: 0, miner_size: 2, filler: 0 });
        for n in 0..=32 {
            let x = s(n);
            assert_eq!(x.filler + x.prefix_len + x.miner_size, n, "the pool's extranonce2 is exactly covered for N={n}");
        }
        assert_eq!(s(8).promise(), V1Split::STANDARD.promise(), "the usual pool needs no second word with its miners");
    }

    #[test]
    fn the_pools_extranonce1_and_filler_end_coinb1() {
        let mut w = V1Work::new(None, 1.0);
        w.prefixes().add(MinerId(1)).unwrap();
        assert!(w.set_session(&[0xf0, 0, 0, 1], 8).is_empty(), "same promise: miners keep their prefixes");
        let mut out = Vec::new();
        w.pool_prefix(0x0102, &mut out);
        assert_eq!(out, [0, 0, 1, 2], "filler, then the miner's prefix");
        let misfits = w.set_session(&[9], 4);
        assert_eq!(misfits, vec![(0, MinerId(1))], "a 4-byte pool cannot keep 2-byte prefixes");
        assert_eq!(w.split(), V1Split { prefix_len: 1, miner_size: 3, filler: 0 });
    }
}
