//! The errors a v1 miner is answered with: `"error": [code, "message", null]`.
//!
//! The codes are the ones the original stratum server defined and most pools still send
//! (slush's stratum-mining, NiceHash, miningcore, btcpool): 20 other, 21 job not found
//! (stale), 22 duplicate share, 23 low difficulty share, 24 unauthorized worker, 25 not
//! subscribed. The array form matters: cpuminer prints the reject reason from element 1
//! of the error array and shows nothing for the object form. ckpool, for comparison,
//! answers share rejects with `"result": false, "error": null` and a `reject-reason`
//! string ("Stale", "Duplicate", "Above target", "Invalid JobID", "Ntime out of range"),
//! and malformed submits with a bare error string; [`super::message`] reads all of
//! these from pools, but miners get the array form.

use std::fmt;

/// An error answered to a miner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V1Error {
    /// 21: the job is unknown or no longer valid.
    JobNotFound,
    /// 22.
    Duplicate,
    /// 23.
    LowDifficulty,
    /// 24: a submit or request before a successful `mining.authorize`.
    Unauthorized,
    /// 25: a request that needs `mining.subscribe` first.
    NotSubscribed,
    /// 20 with a fixed reason: malformed params, unknown method.
    Other(&'static str),
    /// 20: a share the proxy could not send (no pool connection, or its queue is full).
    /// Not the miner's fault: counted as rejected, like CryptoNote's "Pool connection lost".
    NotSent(&'static str),
    /// Whatever the pool answered, passed on with its code (20 when it gave none).
    Pool { code: i64, message: Box<str> },
}

impl V1Error {
    /// The numeric code.
    pub fn code(&self) -> i64 {
        match self {
            Self::Other(_) | Self::NotSent(_) => 20,
            Self::JobNotFound => 21,
            Self::Duplicate => 22,
            Self::LowDifficulty => 23,
            Self::Unauthorized => 24,
            Self::NotSubscribed => 25,
            Self::Pool { code, .. } => *code,
        }
    }

    /// The message, as sent.
    pub fn message(&self) -> &str {
        match self {
            Self::JobNotFound => "Job not found",
            Self::Duplicate => "Duplicate share",
            Self::LowDifficulty => "Low difficulty share",
            Self::Unauthorized => "Unauthorized worker",
            Self::NotSubscribed => "Not subscribed",
            Self::Other(msg) | Self::NotSent(msg) => msg,
            Self::Pool { message, .. } => message,
        }
    }

    /// Shares the miner got wrong (counted as invalid, never forwarded).
    pub fn is_invalid_share(&self) -> bool {
        matches!(self, Self::JobNotFound | Self::Duplicate | Self::LowDifficulty | Self::Other(_))
    }
}

impl fmt::Display for V1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_stratum_convention() {
        let all = [
            (V1Error::Other("x"), 20),
            (V1Error::NotSent("x"), 20),
            (V1Error::JobNotFound, 21),
            (V1Error::Duplicate, 22),
            (V1Error::LowDifficulty, 23),
            (V1Error::Unauthorized, 24),
            (V1Error::NotSubscribed, 25),
            (V1Error::Pool { code: -1, message: "nope".into() }, -1),
        ];
        for (e, code) in all {
            assert_eq!(e.code(), code, "{e}");
        }
        assert_eq!(V1Error::Other("Invalid nonce").to_string(), "Invalid nonce (20)");
        assert!(V1Error::Duplicate.is_invalid_share());
        assert!(!V1Error::NotSent("Pool connection lost, share not sent").is_invalid_share(), "not the miner's fault");
        assert!(!V1Error::Unauthorized.is_invalid_share());
    }
}
