//! The share check: is a miner's `mining.submit` worth forwarding, worth only a local
//! "true", or wrong, and why.
//!
//! In order, each failure with its own [`Reject`]: the job must be in the store; the
//! extranonce2 must be exactly the miner's size in hex, ntime and nonce 8 hex digits, the
//! version bits (when sent) 8 hex digits inside the miner's negotiated mask; ntime may not
//! be earlier than the job's nor more than [`NTIME_WINDOW`] seconds later; the same share
//! (job, prefix, extranonce2, ntime, nonce, version) may not come twice. Then the header
//! is rebuilt and hashed (sha256d or scrypt): a share reaching the pool's difficulty for
//! that job is forwarded, one reaching only the miner's is answered here, one below both
//! is refused. Other algorithms pass every check but the hash and are forwarded for the
//! pool to judge.
//!
//! The ntime window: Bitcoin nodes refuse a block more than two hours (7200 s) ahead of
//! their clock, so a later ntime can never make a block. ckpool uses 7000 s; miners roll
//! ntime by seconds at most, so the choice never matters to an honest miner.
//!
//! Nothing here allocates: the extranonce2 is decoded on the stack and the coinbase is
//! hashed in pieces.

use super::error::V1Error;
use super::header::{Pow, coinbase_hash, header, merkle_root, rolled_version};
use super::job::{hex_into, hex_u32};
use super::message::Submit;
use super::pool_message::MAX_EXTRANONCE2_SIZE;
use super::store::JobStore;

/// How far past the job's ntime a share's ntime may be, in seconds.
pub const NTIME_WINDOW: u32 = 7200;

/// A miner's difficulty, remembering the one before the last change: a new difficulty
/// applies to jobs sent after it, and shares on older jobs are judged by the old one.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MinerDifficulty {
    current: f64,
    previous: f64,
    since_seq: u64,
}

impl MinerDifficulty {
    /// A miner's first difficulty, for every job.
    pub fn new(diff: f64) -> MinerDifficulty {
        MinerDifficulty { current: diff, previous: diff, since_seq: 0 }
    }

    /// A new difficulty for jobs whose sequence number is `from_seq` or later: the
    /// store's [`next_seq`](JobStore::next_seq) when the line goes out before the next
    /// notify, the current job's `seq` when that job is re-sent right after it.
    pub fn set(&mut self, diff: f64, from_seq: u64) {
        self.previous = self.current;
        self.current = diff;
        self.since_seq = from_seq;
    }

    /// The difficulty in force for shares on job `seq`.
    pub fn for_job(&self, seq: u64) -> f64 {
        if seq >= self.since_seq { self.current } else { self.previous }
    }

    /// The difficulty last set.
    pub fn current(&self) -> f64 {
        self.current
    }
}

/// What the check knows of the miner.
#[derive(Debug, Clone, Copy)]
pub struct ShareContext<'a> {
    /// The pool's extranonce1.
    pub extranonce1: &'a [u8],
    /// The miner's prefix (empty when the upstream is not split).
    pub prefix: &'a [u8],
    /// The extranonce2 size the miner was given.
    pub extranonce2_size: usize,
    pub difficulty: &'a MinerDifficulty,
    /// The version mask negotiated with the miner; 0 without version rolling.
    pub version_mask: u32,
}

/// A share that passed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// It reaches the pool's difficulty: send it upstream, pass the pool's answer on.
    Forward { difficulty: f64 },
    /// It reaches the miner's difficulty only: answer `true` here, send nothing.
    Local { difficulty: f64 },
    /// An algorithm we cannot hash: forwarded unchecked, the pool judges it.
    Unchecked,
}

/// Why a share was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reject {
    /// Unknown or stale job id.
    JobNotFound,
    BadExtranonce2,
    BadNtime,
    NtimeOutOfRange,
    BadNonce,
    BadVersionBits,
    /// Version bits outside the negotiated mask.
    VersionOutsideMask,
    Duplicate,
    LowDifficulty {
        difficulty: f64,
    },
}

impl Reject {
    /// The error the miner is answered with.
    pub fn error(&self) -> V1Error {
        match self {
            Self::JobNotFound => V1Error::JobNotFound,
            Self::BadExtranonce2 => V1Error::Other("Incorrect size of extranonce2"),
            Self::BadNtime => V1Error::Other("Invalid ntime"),
            Self::NtimeOutOfRange => V1Error::Other("Ntime out of range"),
            Self::BadNonce => V1Error::Other("Invalid nonce"),
            Self::BadVersionBits => V1Error::Other("Invalid version bits"),
            Self::VersionOutsideMask => V1Error::Other("Version bits outside the mask"),
            Self::Duplicate => V1Error::Duplicate,
            Self::LowDifficulty { .. } => V1Error::LowDifficulty,
        }
    }
}

/// Checks one share against the upstream's jobs; `pow` is `None` for algorithms we
/// cannot hash. A share that passes is remembered for the duplicate check.
pub fn check_share(store: &mut JobStore, pow: Option<Pow>, miner: &ShareContext<'_>, share: &Submit<'_>) -> Result<Verdict, Reject> {
    let Some(stored) = store.get(&share.job_id) else { return Err(Reject::JobNotFound) };
    let size = miner.extranonce2_size;
    let mut e2_buf = [0u8; MAX_EXTRANONCE2_SIZE];
    if size > MAX_EXTRANONCE2_SIZE || hex_into(&share.extranonce2, &mut e2_buf[..size]).is_none() {
        return Err(Reject::BadExtranonce2);
    }
    let extranonce2 = &e2_buf[..size];
    let ntime = hex_u32(&share.ntime).ok_or(Reject::BadNtime)?;
    let job = &stored.job;
    if ntime < job.ntime || ntime - job.ntime > NTIME_WINDOW {
        return Err(Reject::NtimeOutOfRange);
    }
    let nonce = hex_u32(&share.nonce).ok_or(Reject::BadNonce)?;
    let version = match &share.version_bits {
        None => job.version,
        Some(bits) => {
            let bits = hex_u32(bits).ok_or(Reject::BadVersionBits)?;
            if bits & !miner.version_mask != 0 {
                return Err(Reject::VersionOutsideMask);
            }
            rolled_version(job.version, miner.version_mask, bits)
        }
    };
    let key = store.share_key(miner.prefix, extranonce2, ntime, nonce, version);
    if stored.seen(key) {
        return Err(Reject::Duplicate);
    }
    let verdict = match pow {
        None => Verdict::Unchecked,
        Some(pow) => {
            let cb = coinbase_hash(&[&job.coinb1, miner.extranonce1, miner.prefix, extranonce2, &job.coinb2]);
            let root = merkle_root(cb, &job.branches);
            let difficulty = pow.difficulty(&pow.hash(&header(job, version, &root, ntime, nonce)));
            if difficulty >= stored.pool_diff {
                Verdict::Forward { difficulty }
            } else if difficulty >= miner.difficulty.for_job(stored.seq) {
                Verdict::Local { difficulty }
            } else {
                return Err(Reject::LowDifficulty { difficulty });
            }
        }
    };
    if let Some(stored) = store.get_mut(&share.job_id) {
        stored.remember(key);
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{CAPTURE_DIFF, CAPTURE_SHARES, capture_notifies};
    use super::super::job::V1Job;
    use super::super::store::StoreLimits;
    use super::*;
    use std::borrow::Cow;

    /// The capture's miner had extranonce1 f0000001: here the pool's f000 plus our prefix
    /// 0001, with the 8-byte extranonce2 it was given.
    const E1: [u8; 2] = [0xf0, 0x00];
    const PREFIX: [u8; 2] = [0x00, 0x01];

    fn store_with(jobs: &[usize], pool_diff: f64) -> JobStore {
        let mut s = JobStore::new(StoreLimits::default());
        s.set_pool_difficulty(pool_diff);
        for &i in jobs {
            let mut j = V1Job::from_params(&capture_notifies()[i]).unwrap();
            j.clean = false;
            s.add(j);
        }
        s
    }

    fn share(job: usize, ntime: &str, nonce: &str) -> Submit<'static> {
        Submit {
            worker: "acct.rig1".into(),
            job_id: Cow::Owned(format!("0000000{}", job + 1)),
            extranonce2: "0000000000000000".into(),
            ntime: Cow::Owned(ntime.into()),
            nonce: Cow::Owned(nonce.into()),
            version_bits: None,
        }
    }

    fn check(store: &mut JobStore, diff: &MinerDifficulty, mask: u32, s: &Submit<'_>) -> Result<Verdict, Reject> {
        let ctx = ShareContext { extranonce1: &E1, prefix: &PREFIX, extranonce2_size: 8, difficulty: diff, version_mask: mask };
        check_share(store, Some(Pow::Sha256d), &ctx, s)
    }

    #[test]
    fn every_captured_share_passes_then_is_a_duplicate() {
        let mut store = store_with(&[0, 1, 2], CAPTURE_DIFF);
        let diff = MinerDifficulty::new(CAPTURE_DIFF);
        for (job, ntime, nonce) in CAPTURE_SHARES {
            let s = share(job, ntime, nonce);
            let Ok(Verdict::Forward { difficulty }) = check(&mut store, &diff, 0, &s) else { panic!("{nonce} refused") };
            assert!(difficulty >= CAPTURE_DIFF);
            assert_eq!(check(&mut store, &diff, 0, &s), Err(Reject::Duplicate));
        }
    }

    #[test]
    fn a_pool_harder_than_the_miner_means_local_answers() {
        let mut store = store_with(&[0], 1000.0);
        let diff = MinerDifficulty::new(CAPTURE_DIFF);
        let (job, ntime, nonce) = CAPTURE_SHARES[0];
        assert!(matches!(check(&mut store, &diff, 0, &share(job, ntime, nonce)), Ok(Verdict::Local { .. })));
    }

    #[test]
    fn low_difficulty_and_the_difficulty_of_older_jobs() {
        let mut store = store_with(&[0], 1000.0);
        let mut diff = MinerDifficulty::new(CAPTURE_DIFF);
        diff.set(1000.0, store.next_seq());
        let (job, ntime, nonce) = CAPTURE_SHARES[0];
        assert!(matches!(check(&mut store, &diff, 0, &share(job, ntime, nonce)), Ok(Verdict::Local { .. })), "job 0 predates the change");
        store.add(V1Job::from_params(&capture_notifies()[1]).unwrap());
        let (job, ntime, nonce) = CAPTURE_SHARES[2];
        assert!(
            matches!(check(&mut store, &diff, 0, &share(job, ntime, nonce)), Err(Reject::LowDifficulty { difficulty }) if difficulty >= CAPTURE_DIFF)
        );
        assert_eq!((diff.for_job(0), diff.for_job(1), diff.current()), (CAPTURE_DIFF, 1000.0, 1000.0));
    }

    #[test]
    fn the_wrong_extranonce_makes_a_random_hash() {
        let mut store = store_with(&[0], CAPTURE_DIFF);
        let diff = MinerDifficulty::new(CAPTURE_DIFF);
        let (job, ntime, nonce) = CAPTURE_SHARES[0];
        let ctx = ShareContext { extranonce1: &E1, prefix: &[0x00, 0x02], extranonce2_size: 8, difficulty: &diff, version_mask: 0 };
        assert!(matches!(check_share(&mut store, Some(Pow::Sha256d), &ctx, &share(job, ntime, nonce)), Err(Reject::LowDifficulty { .. })));
    }

    #[test]
    fn malformed_fields_each_have_their_reason() {
        let mut store = store_with(&[0], CAPTURE_DIFF);
        let diff = MinerDifficulty::new(CAPTURE_DIFF);
        let good = share(0, "6553f13c", "7c96d100");
        let with = |f: &dyn Fn(&mut Submit<'static>)| {
            let mut s = good.clone();
            f(&mut s);
            s
        };
        let cases: [(Submit<'static>, Reject); 10] = [
            (with(&|s| s.job_id = "00000009".into()), Reject::JobNotFound),
            (with(&|s| s.extranonce2 = "00000000000000".into()), Reject::BadExtranonce2),
            (with(&|s| s.extranonce2 = "000000000000000000".into()), Reject::BadExtranonce2),
            (with(&|s| s.extranonce2 = "000000000000000g".into()), Reject::BadExtranonce2),
            (with(&|s| s.ntime = "6553f13".into()), Reject::BadNtime),
            (with(&|s| s.ntime = "6553f13b".into()), Reject::NtimeOutOfRange),
            (with(&|s| s.ntime = format!("{:08x}", 0x6553_f13c + NTIME_WINDOW + 1).into()), Reject::NtimeOutOfRange),
            (with(&|s| s.nonce = "".into()), Reject::BadNonce),
            (with(&|s| s.version_bits = Some("0000600".into())), Reject::BadVersionBits),
            (with(&|s| s.version_bits = Some("00006000".into())), Reject::VersionOutsideMask),
        ];
        for (s, why) in cases {
            assert_eq!(check(&mut store, &diff, 0, &s), Err(why), "{s:?}");
        }
        // Uppercase hex and the edge of the window are fine (the window edge hashes randomly).
        assert!(check(&mut store, &diff, 0, &with(&|s| s.nonce = "7C96D100".into())).is_ok());
        let edge = with(&|s| s.ntime = format!("{:08x}", 0x6553_f13c + NTIME_WINDOW).into());
        assert!(matches!(check(&mut store, &diff, 0, &edge), Err(Reject::LowDifficulty { .. })));
        assert_eq!(Reject::BadExtranonce2.error().code(), 20);
        assert_eq!(Reject::JobNotFound.error().code(), 21);
    }

    #[test]
    fn version_rolling_inside_the_mask_changes_the_header() {
        let mut store = store_with(&[0], CAPTURE_DIFF);
        let diff = MinerDifficulty::new(CAPTURE_DIFF);
        let (job, ntime, nonce) = CAPTURE_SHARES[0];
        let mut s = share(job, ntime, nonce);
        s.version_bits = Some("00000000".into());
        assert!(matches!(check(&mut store, &diff, 0x1fff_e000, &s), Ok(Verdict::Forward { .. })), "zero bits: the job's version");
        s.version_bits = Some("00006000".into());
        assert!(matches!(check(&mut store, &diff, 0x1fff_e000, &s), Err(Reject::LowDifficulty { .. })), "another version, another hash");
    }

    #[test]
    fn unchecked_algorithms_still_get_format_and_duplicate_checks() {
        let mut store = store_with(&[0], CAPTURE_DIFF);
        let diff = MinerDifficulty::new(CAPTURE_DIFF);
        let ctx = ShareContext { extranonce1: &E1, prefix: &PREFIX, extranonce2_size: 8, difficulty: &diff, version_mask: 0 };
        let s = share(0, "6553f13c", "00000001");
        assert_eq!(check_share(&mut store, None, &ctx, &s), Ok(Verdict::Unchecked));
        assert_eq!(check_share(&mut store, None, &ctx, &s), Err(Reject::Duplicate));
        let mut bad = s.clone();
        bad.nonce = "x".into();
        assert_eq!(check_share(&mut store, None, &ctx, &bad), Err(Reject::BadNonce));
    }
}
