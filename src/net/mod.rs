//! The socket layer: one connection type for miners and pools, line framing over a shared
//! read buffer, and the mapping between mio tokens and what they stand for.

pub mod conn;
pub mod lines;
pub mod proxy_protocol;
pub mod resolve;
pub mod tls;
pub mod token;

pub use conn::{Conn, ConnError};
pub use lines::{Fill, LineReader};
pub use token::Source;

/// Backlog for miner listeners: after a restart a whole farm reconnects at once, and a
/// full accept queue drops SYNs that rigs only retry a second later. The kernel caps it
/// at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: i32 = 8192;

/// A non-blocking listener with SO_REUSEADDR and a deep accept queue.
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<mio::net::TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // "[::]:3333" serves IPv6 only; list 0.0.0.0 as well for IPv4, as xmrig-proxy does.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}
