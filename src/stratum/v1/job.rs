//! A `mining.notify` job, validated once on arrival and kept decoded, so a share check
//! only hashes and never parses the job again.
//!
//! The notify params are `[job_id, prevhash, coinb1, coinb2, [branch...], version, nbits,
//! ntime, clean_jobs]`. Hex fields are decoded to bytes here; `version`, `nbits` and
//! `ntime` are big-endian hex of 32-bit numbers (`"20000000"` is version 0x20000000), and
//! `prevhash` is kept exactly as stratum sends it (see [`super::header`] for its order).

use serde_json::Value;
use std::fmt;

/// Longest coinbase half we accept, in bytes. Real coinbases are 100-500 bytes; pools
/// that pay many outputs in the coinbase reach a few kilobytes.
pub const MAX_COINBASE_PART: usize = 16 * 1024;
/// Most merkle branches a job may carry: 32 levels would be 4 billion transactions.
pub const MAX_BRANCHES: usize = 32;
/// Longest job id we keep.
pub const MAX_JOB_ID: usize = 64;

/// A validated stratum v1 job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct V1Job {
    /// The pool's job id, printable ASCII.
    pub job_id: Box<str>,
    /// The previous block hash as stratum sends it (eight 32-bit words, see `header`).
    pub prevhash: [u8; 32],
    pub coinb1: Box<[u8]>,
    pub coinb2: Box<[u8]>,
    /// Merkle branch hashes, in the order they are folded in.
    pub branches: Box<[[u8; 32]]>,
    pub version: u32,
    pub nbits: u32,
    pub ntime: u32,
    /// `clean_jobs`: earlier jobs are void.
    pub clean: bool,
}

/// Why a notify was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    NotAnArray,
    /// Fewer than the 9 params a notify has.
    TooShort(usize),
    /// A field is missing, of the wrong type, or not the hex it should be.
    Bad(&'static str),
    TooManyBranches(usize),
    CoinbaseTooLong(usize),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnArray => f.write_str("notify params are not an array"),
            Self::TooShort(n) => write!(f, "notify has {n} params, 9 expected"),
            Self::Bad(field) => write!(f, "bad {field}"),
            Self::TooManyBranches(n) => write!(f, "{n} merkle branches (at most {MAX_BRANCHES})"),
            Self::CoinbaseTooLong(n) => write!(f, "coinbase part of {n} bytes (at most {MAX_COINBASE_PART})"),
        }
    }
}

impl V1Job {
    /// Validates `mining.notify` params.
    pub fn from_params(params: &Value) -> Result<V1Job, JobError> {
        let p = params.as_array().ok_or(JobError::NotAnArray)?;
        if p.len() < 8 {
            return Err(JobError::TooShort(p.len()));
        }
        let text = |i: usize, name: &'static str| p[i].as_str().ok_or(JobError::Bad(name));
        let job_id = text(0, "job_id")?;
        if job_id.is_empty() || job_id.len() > MAX_JOB_ID || !job_id.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(JobError::Bad("job_id"));
        }
        let prevhash = hex_array::<32>(text(1, "prevhash")?).ok_or(JobError::Bad("prevhash"))?;
        let coinb1 = coinbase_part(text(2, "coinb1")?, "coinb1")?;
        let coinb2 = coinbase_part(text(3, "coinb2")?, "coinb2")?;
        let list = p[4].as_array().ok_or(JobError::Bad("merkle branch"))?;
        if list.len() > MAX_BRANCHES {
            return Err(JobError::TooManyBranches(list.len()));
        }
        let branches = list
            .iter()
            .map(|b| b.as_str().and_then(hex_array::<32>).ok_or(JobError::Bad("merkle branch")))
            .collect::<Result<Box<[_]>, _>>()?;
        let word = |i: usize, name: &'static str| text(i, name).ok().and_then(hex_u32).ok_or(JobError::Bad(name));
        Ok(V1Job {
            job_id: job_id.into(),
            prevhash,
            coinb1,
            coinb2,
            branches,
            version: word(5, "version")?,
            nbits: word(6, "nbits")?,
            ntime: word(7, "ntime")?,
            // cpuminer reads anything but `true` as false; so do we (and a missing flag).
            clean: p.get(8).and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

fn coinbase_part(hex: &str, name: &'static str) -> Result<Box<[u8]>, JobError> {
    if hex.len() / 2 > MAX_COINBASE_PART {
        return Err(JobError::CoinbaseTooLong(hex.len() / 2));
    }
    hex_vec(hex).map(Vec::into_boxed_slice).ok_or(JobError::Bad(name))
}

/// One hex digit's value.
pub fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes `hex` into `out`, which must be exactly half its length.
pub fn hex_into(hex: &str, out: &mut [u8]) -> Option<()> {
    let h = hex.as_bytes();
    if h.len() != out.len() * 2 {
        return None;
    }
    for (o, pair) in out.iter_mut().zip(h.chunks_exact(2)) {
        *o = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(())
}

/// Exactly `2 * N` hex digits as bytes.
pub fn hex_array<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex_into(hex, &mut out).map(|()| out)
}

/// An even number of hex digits as bytes.
pub fn hex_vec(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let mut out = vec![0u8; hex.len() / 2];
    hex_into(hex, &mut out).map(|()| out)
}

/// Exactly 8 hex digits as a big-endian number (`"20000000"` is 0x2000_0000).
pub fn hex_u32(hex: &str) -> Option<u32> {
    hex_array::<4>(hex).map(u32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn capture_notify() -> Value {
        super::super::fixtures::capture_notifies()[0].clone()
    }

    #[test]
    fn parses_the_captured_notify() {
        let j = V1Job::from_params(&capture_notify()).unwrap();
        assert_eq!(&*j.job_id, "00000001");
        assert_eq!(j.version, 0x2000_0000);
        assert_eq!(j.nbits, 0x1d00_ffff);
        assert_eq!(j.ntime, 0x6553_f13c);
        assert_eq!(j.branches.len(), 2);
        assert_eq!(j.branches[0][0], 0xec);
        assert_eq!(j.prevhash[..4], [0x87, 0xe0, 0xd3, 0x24]);
        assert_eq!(j.coinb1.len(), 46);
        assert!(j.clean);
    }

    #[test]
    fn clean_flag_is_false_unless_true() {
        let mut v = capture_notify();
        v[8] = json!("yes");
        assert!(!V1Job::from_params(&v).unwrap().clean);
        v.as_array_mut().unwrap().truncate(8);
        assert!(!V1Job::from_params(&v).unwrap().clean);
    }

    #[test]
    fn malformed_notifies_are_refused() {
        let bad = |i: usize, val: Value| {
            let mut v = capture_notify();
            v[i] = val;
            V1Job::from_params(&v).unwrap_err()
        };
        assert_eq!(bad(0, json!("")), JobError::Bad("job_id"));
        assert_eq!(bad(0, json!(7)), JobError::Bad("job_id"));
        assert_eq!(bad(0, json!("a b")), JobError::Bad("job_id"));
        assert_eq!(bad(1, json!("00")), JobError::Bad("prevhash"));
        assert_eq!(bad(2, json!("0")), JobError::Bad("coinb1"));
        assert_eq!(bad(3, json!("zz")), JobError::Bad("coinb2"));
        assert_eq!(bad(3, json!("00".repeat(MAX_COINBASE_PART + 1))), JobError::CoinbaseTooLong(MAX_COINBASE_PART + 1));
        assert_eq!(bad(4, json!(["00"])), JobError::Bad("merkle branch"));
        assert_eq!(bad(4, json!("00")), JobError::Bad("merkle branch"));
        assert_eq!(bad(4, json!(vec!["00".repeat(32); 33])), JobError::TooManyBranches(33));
        assert_eq!(bad(5, json!("2000000")), JobError::Bad("version"));
        assert_eq!(bad(6, json!(null)), JobError::Bad("nbits"));
        assert_eq!(bad(7, json!("6553f13g")), JobError::Bad("ntime"));
        assert_eq!(V1Job::from_params(&json!({})), Err(JobError::NotAnArray));
        assert_eq!(V1Job::from_params(&json!([1, 2])), Err(JobError::TooShort(2)));
    }

    #[test]
    fn hex_helpers() {
        assert_eq!(hex_u32("1d00ffff"), Some(0x1d00_ffff));
        assert_eq!(hex_u32("1D00FFFF"), Some(0x1d00_ffff));
        assert_eq!(hex_u32("1d00fff"), None);
        assert_eq!(hex_vec("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(hex_vec("abc"), None);
        assert_eq!(hex_vec(""), Some(vec![]));
        assert_eq!(hex_array::<2>("0102"), Some([1, 2]));
        assert_eq!(hex_array::<2>("01020"), None);
    }
}
