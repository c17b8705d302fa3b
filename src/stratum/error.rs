//! The error vocabulary miners see. The strings are exactly what xmrig and the RFC use, so a
//! miner's log reads the same behind our proxy as behind xmrig-proxy.

use std::fmt;

/// An error answered to a miner request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StratumError {
    InvalidAddress,
    InvalidPassword,
    Unauthenticated,
    MissingJobId,
    InvalidJobId,
    InvalidNonce,
    /// The nonce's high byte is not the miner's fixed byte.
    IncompatibleNonce,
    InvalidResult,
    LowDifficulty,
    Duplicate,
    ProxyFull,
    InvalidMethod,
    /// The login names no registered account and the port has no pools of its own.
    UnknownAccount,
    /// The rig is in its quarantine cool-down (the pool rejected its shares, or the
    /// proxy's checks kept refusing them).
    RigRefused,
    /// The miner's algorithm list does not include the upstream's algorithm.
    UnsupportedAlgo(String),
    /// The upstream is reconnecting; the share cannot reach any pool.
    PoolUnavailable,
    /// Whatever the pool answered, passed on.
    Pool(String),
    /// A stratum v1 share refused by the proxy's checks (for counting; v1 miners get the
    /// v1 error itself).
    V1(crate::stratum::v1::error::V1Error),
}

impl StratumError {
    /// The exact message sent on the wire.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidAddress => "Invalid payment address provided",
            Self::InvalidPassword => "Invalid password",
            Self::Unauthenticated => "Unauthenticated",
            Self::MissingJobId => "Missing job id",
            Self::InvalidJobId => "Invalid job id",
            Self::InvalidNonce => "Invalid nonce",
            Self::IncompatibleNonce => "Invalid nonce; is miner not compatible with NiceHash?",
            Self::InvalidResult => "Invalid result",
            Self::LowDifficulty => "Low difficulty share",
            Self::Duplicate => "Duplicate share",
            Self::ProxyFull => "Proxy is full, try again later",
            Self::InvalidMethod => "Invalid method",
            Self::RigRefused => "This rig is in quarantine: too many of its shares were refused; try again later",
            Self::UnknownAccount => "Unknown account: register pool credentials at /api/v1/users and log in with the name",
            Self::UnsupportedAlgo(_) => "Unsupported algorithm",
            Self::PoolUnavailable => "Pool connection lost, share not sent",
            Self::Pool(msg) => msg,
            Self::V1(e) => e.message(),
        }
    }

    /// Shares the miner got wrong (counted as invalid, never forwarded).
    pub fn is_invalid_share(&self) -> bool {
        match self {
            Self::V1(e) => e.is_invalid_share(),
            _ => matches!(
                self,
                Self::InvalidJobId
                    | Self::InvalidNonce
                    | Self::IncompatibleNonce
                    | Self::InvalidResult
                    | Self::LowDifficulty
                    | Self::Duplicate
            ),
        }
    }
}

impl fmt::Display for StratumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedAlgo(algo) => write!(f, "Unsupported algorithm {algo}"),
            _ => f.write_str(self.message()),
        }
    }
}
