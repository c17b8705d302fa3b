//! TLS over the non-blocking sockets of [`crate::net::Conn`], with rustls and the ring
//! provider. The connection keeps ciphertext in its own bounded output queue, so TLS and
//! plain connections share one write path and one bound:
//!
//! - reading: `read_tls` until there is plaintext or the socket would block,
//!   `process_new_packets` (on error the alert is queued, then the caller closes), then
//!   `reader()`; an end without `close_notify` is an ordinary close;
//! - writing: plaintext into `writer()`, then every pending record moved with `write_tls`
//!   into the connection's output queue, which goes out write-through.
//!
//! [`server`] builds the inbound configuration (certificate files or a self-signed one),
//! [`client`] the outbound one (pinned fingerprint, web roots, or any certificate).

pub mod client;
pub mod server;

pub use client::Trust;
pub use server::{ServerTls, server_config};

use mio::net::TcpStream;
use rustls::Connection;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, Read, Write};

/// A TLS set-up problem: a bad `tls.*` setting or a connection that cannot be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    Config { field: String, reason: String },
    Handshake(String),
}

impl TlsError {
    fn config(field: &str, reason: &str) -> TlsError {
        TlsError::Config { field: field.to_string(), reason: reason.to_string() }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config { field, reason } => write!(f, "{field}: {reason}"),
            Self::Handshake(why) => write!(f, "TLS: {why}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// Lowercase hex SHA-256 of a DER certificate, without colons (the `tls-fingerprint` form).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

/// A fingerprint as operators write it (any case, colons allowed) in the form
/// [`fingerprint`] gives, or `None` when it is not 64 hex digits.
pub fn normalise_fingerprint(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|&c| c != ':').collect::<String>().to_ascii_lowercase();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// Reads plaintext like a non-blocking `Read::read`: `Ok(0)` is the end (with or without
/// `close_notify`), `WouldBlock` means wait for the socket. Records to send back
/// (handshake, alerts) stay in `tls` for [`drain`].
pub(crate) fn read(tls: &mut Connection, stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        let eof = match tls.read_tls(stream) {
            Ok(n) => n == 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = tls.process_new_packets() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}")));
        }
        if eof {
            return match tls.reader().read(buf) {
                Ok(n) => Ok(n),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::UnexpectedEof) => Ok(0),
                Err(e) => Err(e),
            };
        }
    }
}

/// Encrypts what rustls will take of `data` now: at most its buffer limit (64 KiB) of
/// unsent records, and 0 when that is full (before the handshake ends the plaintext waits
/// there, which is what bounds a jump toward a TLS target).
pub(crate) fn write_some(tls: &mut Connection, data: &[u8]) -> io::Result<usize> {
    tls.writer().write(data)
}

/// Moves every record rustls wants to send into `out`.
pub(crate) fn drain(tls: &mut Connection, out: &mut Vec<u8>) {
    while tls.wants_write() {
        match tls.write_tls(out) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
