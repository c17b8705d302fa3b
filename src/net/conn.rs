//! A non-blocking byte stream with write-through output: bytes go straight to the socket
//! and only what the kernel refuses is kept, so an idle connection holds no buffers.
//! With TLS the queue holds ciphertext (see [`super::tls`]), so the bound is the same.

use mio::net::TcpStream;
use std::fmt;
use std::io::{self, Read, Write};

/// Why a connection ended.
#[derive(Debug)]
pub enum ConnError {
    Io(io::Error),
    /// The peer closed its side.
    Closed,
    /// A line longer than the limit (bytes seen so far).
    LineTooLong(usize),
    /// The peer stopped reading and our output for it passed the bound.
    OutputFull(usize),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Closed => f.write_str("closed by peer"),
            Self::LineTooLong(n) => write!(f, "line too long ({n} bytes without newline or over the limit)"),
            Self::OutputFull(n) => write!(f, "peer is not reading ({n} bytes queued)"),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

/// A byte queue that costs one pointer while empty, as it is for nearly every miner at
/// nearly every moment: boxed on first write, dropped again once drained. It keeps a
/// connection at 48 bytes instead of 96 (two empty `Vec`s) in a release build.
#[derive(Debug, Default)]
#[allow(clippy::box_collection)] // deliberate: 8 bytes inline while empty, instead of 24
pub(crate) struct Spill(Option<Box<Vec<u8>>>);

static NOTHING: Vec<u8> = Vec::new();

impl std::ops::Deref for Spill {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        self.0.as_deref().unwrap_or(&NOTHING)
    }
}

impl std::ops::DerefMut for Spill {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        self.0.get_or_insert_with(Default::default)
    }
}

impl Spill {
    /// Whether a buffer is allocated now.
    #[cfg(test)]
    pub(crate) fn is_boxed(&self) -> bool {
        self.0.is_some()
    }

    /// Gives the memory back once nothing is held.
    pub(crate) fn release_if_empty(&mut self) {
        if self.0.as_ref().is_some_and(|v| v.is_empty()) {
            self.0 = None;
        }
    }
}

/// Moves TLS records waiting to go out into `out`, touching it only when there are some.
fn drain_tls(tls: &mut rustls::Connection, out: &mut Spill) {
    if tls.wants_write() {
        super::tls::drain(tls, out);
    }
}

/// One TCP connection (miner, pool or jump side), optionally TLS.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// Bound on `out`; past it the peer is dropped.
    max_out: u32,
    tls: Option<Box<rustls::Connection>>,
    /// Start of a line that has not been completed yet.
    pub(crate) pending: Spill,
    /// Output the kernel did not take yet.
    out: Spill,
    pub rx: u64,
    pub tx: u64,
}

impl Conn {
    /// A connection whose queued output may not pass `max_out` bytes (at most 4 GiB).
    pub fn new(stream: TcpStream, max_out: usize) -> Conn {
        let max_out = u32::try_from(max_out).unwrap_or(u32::MAX);
        Conn { stream, max_out, tls: None, pending: Spill::default(), out: Spill::default(), rx: 0, tx: 0 }
    }

    /// The socket, to read its descriptor or address.
    pub fn stream_ref(&self) -> &TcpStream {
        &self.stream
    }

    /// A connection handed over by a live upgrade: its socket, the start of a line not
    /// yet complete, output the kernel had not taken, and its byte counts.
    pub fn from_parts(stream: TcpStream, max_out: usize, pending: Vec<u8>, out: Vec<u8>, rx: u64, tx: u64) -> Conn {
        let spill = |v: Vec<u8>| Spill((!v.is_empty()).then(|| Box::new(v)));
        let max_out = u32::try_from(max_out).unwrap_or(u32::MAX);
        Conn { stream, max_out, tls: None, pending: spill(pending), out: spill(out), rx, tx }
    }

    /// What a live upgrade hands over besides the socket (see `from_parts`); `None` for a
    /// TLS connection, whose session cannot move.
    pub fn parts(&self) -> Option<(&[u8], &[u8])> {
        self.tls.is_none().then(|| (self.pending.as_slice(), self.out.as_slice()))
    }

    /// Runs TLS over this connection from now on (before any byte was read or sent).
    pub fn start_tls(&mut self, tls: impl Into<rustls::Connection>) {
        self.tls = Some(Box::new(tls.into()));
    }

    /// Bytes that arrived from the socket before this `Conn` took it over (after a PROXY
    /// header): fed to TLS, or kept as the start of the next line.
    pub fn unread(&mut self, bytes: Vec<u8>) -> Result<(), ConnError> {
        let Some(tls) = self.tls.as_deref_mut() else {
            self.pending = Spill((!bytes.is_empty()).then(|| Box::new(bytes)));
            return Ok(());
        };
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            match tls.read_tls(&mut rest) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(ConnError::Io(e)),
            }
            tls.process_new_packets().map_err(|e| ConnError::Io(io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))))?;
        }
        drain_tls(tls, &mut self.out);
        self.flush()
    }

    /// Queues bytes ahead of everything, below TLS (a PROXY header toward a target).
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.out.splice(0..0, bytes.iter().copied());
    }

    /// The TLS session, if any.
    pub fn tls(&self) -> Option<&rustls::Connection> {
        self.tls.as_deref()
    }

    /// True while a TLS handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.tls.as_deref().is_some_and(|t| t.is_handshaking())
    }

    /// Ends our sending side once the queue is empty (TLS: after `close_notify`); returns
    /// whether the socket's write half is shut now, so callers retry after a flush.
    pub fn close_write(&mut self) -> Result<bool, ConnError> {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.send_close_notify();
            drain_tls(tls, &mut self.out);
        }
        self.flush()?;
        if !self.out.is_empty() {
            return Ok(false);
        }
        match self.stream.shutdown(std::net::Shutdown::Write) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(true),
            Err(e) => Err(ConnError::Io(e)),
        }
    }

    /// The socket, for (de)registration and address queries.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Reads once; `Ok(0)` is end of stream.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.tls.as_deref_mut() {
            None => self.stream.read(buf)?,
            Some(tls) => {
                let n = super::tls::read(tls, &mut self.stream, buf);
                // Handshake replies and alerts go out even when the read failed.
                drain_tls(tls, &mut self.out);
                self.flush().map_err(|e| io::Error::other(e.to_string()))?;
                n?
            }
        };
        self.rx += n as u64;
        Ok(n)
    }

    /// Sends `data`, writing through to the socket when nothing is queued.
    pub fn send(&mut self, data: &[u8]) -> Result<(), ConnError> {
        if let Some(tls) = self.tls.as_deref_mut() {
            // rustls takes at most its buffer limit (64 KiB) per call: encrypt in rounds,
            // moving the records into `out` (bounded by `max_out`) between them. Before the
            // handshake ends nothing drains, and a full buffer is the bound.
            let mut rest = data;
            while !rest.is_empty() {
                let n = super::tls::write_some(tls, rest).map_err(|_| ConnError::OutputFull(rest.len()))?;
                drain_tls(tls, &mut self.out);
                if n == 0 || self.out.len() > self.max_out as usize {
                    return Err(ConnError::OutputFull(self.out.len() + rest.len()));
                }
                rest = &rest[n..];
            }
            return self.flush();
        }
        let mut done = 0;
        if self.out.is_empty() {
            done = self.write_some(data)?;
        }
        if done < data.len() {
            if self.out.len() + data.len() - done > self.max_out as usize {
                return Err(ConnError::OutputFull(self.out.len() + data.len() - done));
            }
            self.out.extend_from_slice(&data[done..]);
        }
        Ok(())
    }

    /// Writes queued output after a writable event.
    pub fn flush(&mut self) -> Result<(), ConnError> {
        if self.out.is_empty() {
            self.out.release_if_empty();
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let done = self.write_some(&out);
        self.out = out;
        let done = done?;
        self.out.drain(..done);
        // Give the memory back: most connections never need an output buffer.
        self.out.release_if_empty();
        Ok(())
    }

    /// Bytes waiting for the socket.
    pub fn queued(&self) -> usize {
        self.out.len()
    }

    fn write_some(&mut self, data: &[u8]) -> Result<usize, ConnError> {
        let mut done = 0;
        while done < data.len() {
            match self.stream.write(&data[done..]) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ConnError::Io(e)),
            }
        }
        self.tx += done as u64;
        Ok(done)
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A TLS connection pair over loopback, handshake completed.
    fn tls_pair() -> (Conn, Conn) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        c.set_nonblocking(true).unwrap();
        s.set_nonblocking(true).unwrap();
        let mut client = Conn::new(TcpStream::from_std(c), 1 << 24);
        let mut server = Conn::new(TcpStream::from_std(s), 1 << 24);
        let st = crate::net::tls::server_config(&crate::config::TlsConfig::default()).unwrap();
        server.start_tls(rustls::ServerConnection::new(st.config).unwrap());
        client.start_tls(crate::net::tls::client::connect("localhost:1", crate::net::tls::Trust::AnyCert { log: false }).unwrap());
        client.send(b"hi\n").unwrap(); // kicks off the ClientHello
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 4096];
        while (client.is_handshaking() || server.is_handshaking()) && Instant::now() < deadline {
            let _ = server.read(&mut buf);
            let _ = client.read(&mut buf);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        (client, server)
    }

    #[test]
    fn a_send_larger_than_the_rustls_buffer_goes_out_in_rounds() {
        let (mut client, mut server) = tls_pair();
        // e.g. a pool link's outbox after one busy loop pass: ~300 submits of ~230 bytes.
        let outbox = vec![b'x'; 70 * 1024];
        let r = client.send(&outbox);
        assert!(r.is_ok(), "send of {} bytes over TLS failed: {:?}", outbox.len(), r);
        // And the far end gets every byte.
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < outbox.len() && Instant::now() < deadline {
            let _ = client.flush();
            if let Ok(n) = server.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(got, outbox);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_holds_no_buffer_and_little_besides_its_socket() {
        // 48 bytes in a release build, where mio's stream is the bare descriptor; two empty
        // Vecs alone took 48 before.
        let (conn, socket) = (std::mem::size_of::<Conn>(), std::mem::size_of::<TcpStream>());
        assert!(conn <= socket + 48, "{conn} bytes with a {socket}-byte socket");
        let mut s = Spill::default();
        assert!(s.is_empty() && !s.is_boxed());
        s.extend_from_slice(b"abc");
        assert_eq!(&s[..], b"abc");
        s.release_if_empty();
        assert!(s.is_boxed(), "held bytes stay");
        s.clear();
        s.release_if_empty();
        assert!(!s.is_boxed(), "an emptied queue gives its memory back");
    }

    #[test]
    fn sends_the_kernel_takes_whole_and_reads_leave_no_buffer_behind() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        let mut conn = Conn::new(TcpStream::from_std(s), 1 << 20);
        conn.send(b"{\"method\":\"job\"}\n").unwrap();
        assert!(!conn.out.is_boxed(), "a send the kernel took whole queues nothing");
        conn.flush().unwrap();
        assert!(!conn.out.is_boxed() && !conn.pending.is_boxed());
        conn.unread(Vec::new()).unwrap();
        assert!(!conn.pending.is_boxed(), "nothing unread, nothing boxed");
        drop(c);
    }
}
