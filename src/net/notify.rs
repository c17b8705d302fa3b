//! systemd's readiness protocol: one datagram to the socket named by `NOTIFY_SOCKET`
//! (a path, or an abstract name after `@`). Without that variable (not under systemd, or a
//! unit that is not `Type=notify`) nothing is sent. The unit uses it to know when the
//! proxy listens (`READY=1`) and, after a live upgrade, which process is the service now
//! (`MAINPID=`), so the old process leaving does not stop the service.

use std::io;
use std::os::unix::net::UnixDatagram;

/// The variable systemd sets for `Type=notify` units.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `state` (such as `READY=1`) to the service manager, if there is one listening.
/// Failures are logged at debug level: the proxy runs the same without a manager.
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os(NOTIFY_SOCKET) else { return };
    if let Err(e) = notify_to(&target.to_string_lossy(), state) {
        log::debug!("cannot notify the service manager ({state}): {e}");
    }
}

/// Sends `state` to the notify socket `target`.
pub fn notify_to(target: &str, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    match target.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        }
        None => {
            sock.send_to(state.as_bytes(), target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reaches_a_path_socket_and_an_abstract_one() {
        let dir = std::env::temp_dir().join(format!("sp-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let path = UnixDatagram::bind(&dir).unwrap();
        notify_to(dir.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = path.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_file(&dir).ok();

        use std::os::linux::net::SocketAddrExt;
        let name = format!("sp-notify-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abs = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(&format!("@{name}"), "MAINPID=42").unwrap();
        let n = abs.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MAINPID=42");
    }

    #[test]
    fn no_listener_is_an_error_not_a_panic() {
        assert!(notify_to("/nonexistent/sp-notify", "READY=1").is_err());
    }
}
