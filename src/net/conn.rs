//! A non-blocking byte stream with write-through output: bytes go straight to the socket
//! and only what the kernel refuses is kept, so an idle connection holds no buffers.

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

/// One TCP connection (miner or pool).
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
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
        Conn { stream, pending: Vec::new(), out: Vec::new(), max_out, rx: 0, tx: 0 }
    }

    /// The socket, for (de)registration and address queries.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Reads once; `Ok(0)` is end of stream.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.rx += n as u64;
        Ok(n)
    }

    /// Sends `data`, writing through to the socket when nothing is queued.
    pub fn send(&mut self, data: &[u8]) -> Result<(), ConnError> {
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
