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

/// One TCP connection (miner, pool or jump side), optionally TLS.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    tls: Option<Box<rustls::Connection>>,
    /// Start of a line that has not been completed yet.
    pub(crate) pending: Vec<u8>,
    /// Output the kernel did not take yet.
    out: Vec<u8>,
    /// Bound on `out`; past it the peer is dropped.
    max_out: usize,
    pub rx: u64,
    pub tx: u64,
}

impl Conn {
    pub fn new(stream: TcpStream, max_out: usize) -> Conn {
        Conn { stream, tls: None, pending: Vec::new(), out: Vec::new(), max_out, rx: 0, tx: 0 }
    }

    /// Runs TLS over this connection from now on (before any byte was read or sent).
    pub fn start_tls(&mut self, tls: impl Into<rustls::Connection>) {
        self.tls = Some(Box::new(tls.into()));
    }

    /// Bytes that arrived from the socket before this `Conn` took it over (after a PROXY
    /// header): fed to TLS, or kept as the start of the next line.
    pub fn unread(&mut self, bytes: Vec<u8>) -> Result<(), ConnError> {
        let Some(tls) = self.tls.as_deref_mut() else {
            self.pending = bytes;
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
        super::tls::drain(tls, &mut self.out);
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
            super::tls::drain(tls, &mut self.out);
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
                super::tls::drain(tls, &mut self.out);
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
            super::tls::write(tls, data).map_err(|_| ConnError::OutputFull(data.len()))?;
            super::tls::drain(tls, &mut self.out);
            if self.out.len() > self.max_out {
                return Err(ConnError::OutputFull(self.out.len()));
            }
            return self.flush();
        }
        let mut done = 0;
        if self.out.is_empty() {
            done = self.write_some(data)?;
        }
        if done < data.len() {
            if self.out.len() + data.len() - done > self.max_out {
                return Err(ConnError::OutputFull(self.out.len() + data.len() - done));
            }
            self.out.extend_from_slice(&data[done..]);
        }
        Ok(())
    }

    /// Writes queued output after a writable event.
    pub fn flush(&mut self) -> Result<(), ConnError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let done = self.write_some(&out);
        self.out = out;
        let done = done?;
        self.out.drain(..done);
        if self.out.is_empty() {
            // Give the memory back: most connections never need an output buffer.
            self.out = Vec::new();
        }
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
