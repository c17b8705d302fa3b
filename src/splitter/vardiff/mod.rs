//! Per-miner variable difficulty ("vardiff") on any pool, decided without sockets or
//! clocks: the ladder of difficulties it hands out, and its settings.

mod config;
mod ladder;

pub use config::{VardiffConfig, parse_vardiff};
pub use ladder::{PER_DOUBLING, Step, to_cryptonote};
