//! The socket layer: one connection type for miners and pools, line framing over a shared
//! read buffer, and the mapping between mio tokens and what they stand for.

pub mod conn;
pub mod lines;
pub mod proxy_protocol;
pub mod tls;
pub mod token;

pub use conn::{Conn, ConnError};
pub use lines::{Fill, LineReader};
pub use token::Source;
