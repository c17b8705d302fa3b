//! The pool side, free of sockets: what pools send us (`message`) and which pool to try
//! next (`failover`). The connections themselves live in `proxy::upstream`.

pub mod failover;
pub mod message;

pub use failover::Failover;
pub use message::{LoginOk, PoolMessage};
