//! Per-miner variable difficulty ("vardiff") on any pool, decided without sockets or
//! clocks. This first part is the ladder of difficulties vardiff hands out.

mod ladder;

pub use ladder::{PER_DOUBLING, Step, to_cryptonote};
