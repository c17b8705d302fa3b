//! Stratum v1, the Bitcoin-family dialect, without sockets.

pub mod extranonce;
pub mod header;
pub mod job;

#[cfg(test)]
mod fixtures;
