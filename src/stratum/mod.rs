//! The CryptoNote stratum dialect: jobs and targets, the miner's requests, the replies we
//! encode, and the error vocabulary miners expect. [`v1`] holds the Bitcoin-family
//! dialect; [`algo`] knows which algorithm is spoken in which.

pub mod algo;
pub mod difficulty;
pub mod error;
pub mod job;
pub mod request;
pub mod v1;
pub mod write;

pub use error::StratumError;
pub use job::Job;
