//! The socket layer: one connection type for miners and pools, line framing over a shared
//! read buffer, and the mapping between mio tokens and what they stand for.

pub mod conn;
pub mod fdpass;
pub mod lines;
pub mod notify;
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

/// Raises the soft open-file limit to the hard limit (one descriptor per miner); returns
/// the soft limit now in force.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            lim.rlim_cur = lim.rlim_max;
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is 32 bits on 32-bit ARM routers
    Ok(lim.rlim_cur as u64)
}
