//! A job from the pool, validated once on arrival so nothing downstream re-checks it.

use super::difficulty::{difficulty_from_target, is_lower_hex};
use serde_json::Value;
use std::fmt;

/// Blob byte a NiceHash miner keeps fixed: the most significant byte of the little-endian
/// nonce at bytes 39..43. Real miners (xmrig) keep this byte, not byte 39 as the RFC says.
pub const FIXED_BYTE_INDEX: usize = 42;
/// Hex offset of the fixed byte in the blob string.
pub const FIXED_BYTE_HEX: usize = FIXED_BYTE_INDEX * 2;
/// Longest blob we accept (bytes); real blobs are 76-120 bytes.
const MAX_BLOB_BYTES: usize = 1024;
const MAX_FIELD: usize = 256;

/// A validated pool job. Hex fields are lowercase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Job {
    pub blob: String,
    pub job_id: String,
    pub target: String,
    /// Difficulty the target stands for.
    pub diff: u64,
    pub algo: Option<String>,
    pub height: Option<u64>,
    pub seed_hash: Option<String>,
}

/// Why a pool job was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    NotAnObject,
    Missing(&'static str),
    BadBlob(String),
    BadTarget(String),
    BadField(&'static str),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnObject => f.write_str("job is not an object"),
            Self::Missing(k) => write!(f, "job has no {k}"),
            Self::BadBlob(why) => write!(f, "bad blob: {why}"),
            Self::BadTarget(t) => write!(f, "bad target {t:?}"),
            Self::BadField(k) => write!(f, "bad {k}"),
        }
    }
}

impl Job {
    /// Validates a job object as pools send it (login reply `job`, or `job` push params).
    /// `default_algo` is the pool config's algo, used when the pool names none.
    pub fn from_value(v: &Value, default_algo: Option<&str>) -> Result<Job, JobError> {
        let obj = v.as_object().ok_or(JobError::NotAnObject)?;
        let text = |k: &'static str| -> Result<Option<&str>, JobError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.len() <= MAX_FIELD || k == "blob" => Ok(Some(s)),
                Some(_) => Err(JobError::BadField(k)),
            }
        };
        let blob = text("blob")?.ok_or(JobError::Missing("blob"))?;
        let job_id = text("job_id")?.ok_or(JobError::Missing("job_id"))?;
        let target = text("target")?.ok_or(JobError::Missing("target"))?;
        if job_id.is_empty() || !job_id.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(JobError::BadField("job_id"));
        }
        let blob = blob.to_ascii_lowercase();
        if blob.len() % 2 != 0 || !is_lower_hex(&blob) {
            return Err(JobError::BadBlob("not hex".into()));
        }
        if blob.len() < FIXED_BYTE_HEX + 2 || blob.len() > MAX_BLOB_BYTES * 2 {
            return Err(JobError::BadBlob(format!("{} bytes", blob.len() / 2)));
        }
        let target = target.to_ascii_lowercase();
        let diff = match difficulty_from_target(&target) {
            Some(d) if d > 0 => d,
            _ => return Err(JobError::BadTarget(target)),
        };
        let height = match obj.get("height") {
            None | Some(Value::Null) => None,
            Some(h) => Some(h.as_u64().ok_or(JobError::BadField("height"))?),
        };
        let algo = text("algo")?.or(default_algo).filter(|a| !a.is_empty());
        let seed_hash = text("seed_hash")?.filter(|s| !s.is_empty());
        if algo.is_some_and(|a| !a.bytes().all(|c| c.is_ascii_graphic() && c != b'"')) {
            return Err(JobError::BadField("algo"));
        }
        if seed_hash.is_some_and(|s| !is_lower_hex(s)) {
            return Err(JobError::BadField("seed_hash"));
        }
        Ok(Job {
            blob,
            job_id: job_id.to_string(),
            target,
            diff,
            algo: algo.map(str::to_string),
            height,
            seed_hash: seed_hash.map(str::to_string),
        })
    }

    /// The blob with the NiceHash fixed byte set, as a miner receives it.
    pub fn blob_with_fixed_byte(&self, fixed: u8) -> String {
        let mut b = self.blob.clone().into_bytes();
        b[FIXED_BYTE_HEX..FIXED_BYTE_HEX + 2].copy_from_slice(&super::difficulty::hex_pair(fixed));
        String::from_utf8(b).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn blob() -> String {
        "0".repeat(152)
    }

    #[test]
    fn valid_job_parses() {
        let v = json!({"blob": blob(), "job_id": "1-1", "target": "b88d0600", "algo": "cn/r", "height": 7});
        let j = Job::from_value(&v, None).unwrap();
        assert_eq!(j.diff, 10000);
        assert_eq!(j.algo.as_deref(), Some("cn/r"));
        assert_eq!(j.height, Some(7));
    }

    #[test]
    fn default_algo_fills_in() {
        let v = json!({"blob": blob(), "job_id": "a", "target": "b88d0600"});
        assert_eq!(Job::from_value(&v, Some("rx/0")).unwrap().algo.as_deref(), Some("rx/0"));
    }

    #[test]
    fn fixed_byte_lands_on_byte_42() {
        let v = json!({"blob": blob(), "job_id": "a", "target": "b88d0600"});
        let j = Job::from_value(&v, None).unwrap();
        let b = j.blob_with_fixed_byte(0x2a);
        assert_eq!(&b[84..86], "2a");
        assert_eq!(b.len(), 152);
        assert_eq!(b.matches('2').count(), 1);
        assert_eq!(&j.blob_with_fixed_byte(0xff)[84..86], "ff");
    }

    #[test]
    fn bad_jobs_are_refused() {
        let short = json!({"blob": "00".repeat(42), "job_id": "a", "target": "b88d0600"});
        assert!(matches!(Job::from_value(&short, None), Err(JobError::BadBlob(_))));
        let odd = json!({"blob": "0".repeat(161), "job_id": "a", "target": "b88d0600"});
        assert!(Job::from_value(&odd, None).is_err());
        let nothex = json!({"blob": "z".repeat(160), "job_id": "a", "target": "b88d0600"});
        assert!(Job::from_value(&nothex, None).is_err());
        let zero = json!({"blob": blob(), "job_id": "a", "target": "00000000"});
        assert!(matches!(Job::from_value(&zero, None), Err(JobError::BadTarget(_))));
        let badt = json!({"blob": blob(), "job_id": "a", "target": "xyz"});
        assert!(Job::from_value(&badt, None).is_err());
        let noid = json!({"blob": blob(), "target": "b88d0600"});
        assert_eq!(Job::from_value(&noid, None), Err(JobError::Missing("job_id")));
        let quote = json!({"blob": blob(), "job_id": "a\"b", "target": "b88d0600"});
        assert!(Job::from_value(&quote, None).is_ok_and(|j| j.job_id == "a\"b"));
        let num = json!({"blob": blob(), "job_id": 5, "target": "b88d0600"});
        assert_eq!(Job::from_value(&num, None), Err(JobError::BadField("job_id")));
        assert_eq!(Job::from_value(&json!([1]), None), Err(JobError::NotAnObject));
    }
}
