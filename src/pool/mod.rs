//! The pool side, free of sockets: what pools send us (`message`), which pool to try next
//! (`failover`), the life of one pool connection (`session`), and pool groups (`group`). The connections themselves live in `proxy::upstream`.

pub mod failover;
pub mod group;
pub mod message;
pub mod session;

pub use failover::Failover;
pub use group::{Group, Groups, Health};
pub use message::{LoginOk, PoolMessage};
pub use session::Session;
