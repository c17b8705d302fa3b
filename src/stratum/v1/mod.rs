//! Stratum v1, the Bitcoin-family dialect, without sockets.

pub mod check;
pub mod error;
pub mod extranonce;
pub mod header;
pub mod job;
pub mod message;
pub mod pool_message;
pub mod store;
pub mod write;

#[cfg(test)]
mod fixtures;
