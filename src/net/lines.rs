//! Line framing over one shared read buffer. A connection's bytes are read into the loop's
//! buffer, complete lines are handled from there, and only an unfinished tail is stashed
//! back on the connection, so idle connections own no read buffer at all.

use super::conn::{Conn, ConnError};
use std::io;
use std::ops::Range;

/// How a fill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// The socket has nothing more for now.
    WouldBlock,
    /// The peer closed its side (lines already read are still to be handled).
    Eof,
    /// The buffer is full: handle the lines, then fill again.
    Full,
}

/// The loop's shared read buffer.
#[derive(Debug)]
pub struct LineReader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl LineReader {
    /// A reader whose buffer holds `cap` bytes; `cap` must exceed the longest line allowed.
    pub fn new(cap: usize) -> LineReader {
        LineReader { buf: vec![0; cap].into_boxed_slice(), start: 0, end: 0 }
    }

    /// Takes the connection's stashed tail, then reads until the socket would block, ends,
    /// or the buffer is full. A read that returns less than asked has emptied the socket:
    /// with edge-triggered readiness anything arriving later raises a new event, so the
    /// reader stops there and saves the `EAGAIN` read, unless `drain` (the event reported
    /// the peer's close) asks to read on to the end of stream, or the stream is TLS.
    pub fn fill(&mut self, conn: &mut Conn, drain: bool) -> Result<Fill, ConnError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if !conn.pending.is_empty() {
            let n = conn.pending.len().min(self.buf.len() - self.end);
            self.buf[self.end..self.end + n].copy_from_slice(&conn.pending[..n]);
            self.end += n;
            conn.pending = Default::default();
        }
        while self.end < self.buf.len() {
            match conn.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(Fill::Eof),
                Ok(n) => {
                    let asked = self.buf.len() - self.end;
                    self.end += n;
                    // Under TLS a short read says nothing about the socket (rustls reads
                    // records in chunks), so TLS connections always read to EAGAIN.
                    if n < asked && !drain && conn.tls().is_none() {
                        return Ok(Fill::WouldBlock);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Fill::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ConnError::Io(e)),
            }
        }
        Ok(Fill::Full)
    }

    /// The next complete line (without `\n` or `\r\n`), or an error once a line passes
    /// `max` bytes, with or without its newline.
    pub fn next_line(&mut self, max: usize) -> Option<Result<Range<usize>, ConnError>> {
        let avail = &self.buf[self.start..self.end];
        match avail.iter().position(|&b| b == b'\n') {
            Some(nl) if nl > max => Some(Err(ConnError::LineTooLong(nl))),
            Some(nl) => {
                let mut line = self.start..self.start + nl;
                if nl > 0 && self.buf[line.end - 1] == b'\r' {
                    line.end -= 1;
                }
                self.start += nl + 1;
                Some(Ok(line))
            }
            None if avail.len() > max => Some(Err(ConnError::LineTooLong(avail.len()))),
            None => None,
        }
    }

    /// The bytes of a line returned by `next_line`.
    pub fn line(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Stashes the unfinished tail on the connection and empties the buffer.
    pub fn stash(&mut self, conn: &mut Conn) {
        if self.end > self.start {
            conn.pending.extend_from_slice(&self.buf[self.start..self.end]);
        }
        self.clear();
    }

    /// Drops whatever is buffered (the connection is being closed).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    /// A connected pair: our `Conn` and the peer's blocking std stream.
    fn pair() -> (Conn, std::net::TcpStream) {
        pair_bounded(1 << 20)
    }

    fn pair_bounded(max_out: usize) -> (Conn, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (ours, _) = l.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Conn::new(mio::net::TcpStream::from_std(ours), max_out), peer)
    }

    /// Fills until `want` bytes arrived or the peer closed (loopback delivery is not instant).
    fn fill_until(r: &mut LineReader, c: &mut Conn, want: u64) -> Fill {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let f = r.fill(c, true).unwrap();
            if f != Fill::WouldBlock || c.rx >= want || Instant::now() > deadline {
                return f;
            }
            std::thread::yield_now();
        }
    }

    fn lines(r: &mut LineReader, max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(l) = r.next_line(max) {
            out.push(r.line(l.unwrap()).to_vec());
        }
        out
    }

    #[test]
    fn several_lines_in_one_read_and_a_partial_tail() {
        let (mut c, mut peer) = pair();
        let mut r = LineReader::new(4096);
        peer.write_all(b"one\r\ntwo\nthr").unwrap();
        fill_until(&mut r, &mut c, 12);
        assert_eq!(lines(&mut r, 100), [b"one".to_vec(), b"two".to_vec()]);
        r.stash(&mut c);
        assert_eq!(&c.pending[..], b"thr");
        peer.write_all(b"ee\n").unwrap();
        fill_until(&mut r, &mut c, 15);
        assert_eq!(lines(&mut r, 100), [b"three".to_vec()]);
        r.stash(&mut c);
        assert!(c.pending.is_empty() && !c.pending.is_boxed(), "the stash is given back once read");
    }

    #[test]
    fn over_long_line_without_newline_is_an_error() {
        let (mut c, mut peer) = pair();
        let mut r = LineReader::new(4096);
        peer.write_all(&[b'x'; 200]).unwrap();
        fill_until(&mut r, &mut c, 200);
        assert!(matches!(r.next_line(100), Some(Err(ConnError::LineTooLong(200)))));
    }

    #[test]
    fn over_long_line_with_newline_is_an_error() {
        let (mut c, mut peer) = pair();
        let mut r = LineReader::new(4096);
        let mut data = vec![b'x'; 150];
        data.push(b'\n');
        peer.write_all(&data).unwrap();
        fill_until(&mut r, &mut c, 151);
        assert!(matches!(r.next_line(100), Some(Err(ConnError::LineTooLong(150)))));
    }

    #[test]
    fn eof_after_lines_still_yields_them() {
        let (mut c, mut peer) = pair();
        let mut r = LineReader::new(4096);
        peer.write_all(b"last\n").unwrap();
        drop(peer);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        loop {
            let f = r.fill(&mut c, true).unwrap();
            got.extend(lines(&mut r, 100));
            if f == Fill::Eof || Instant::now() > deadline {
                assert_eq!(f, Fill::Eof);
                break;
            }
        }
        assert_eq!(got, [b"last".to_vec()]);
    }

    #[test]
    fn send_writes_through_without_buffering() {
        let (mut c, _peer) = pair();
        c.send(b"hello\n").unwrap();
        assert_eq!(c.queued(), 0);
        assert_eq!(c.tx, 6);
    }

    #[test]
    fn output_is_bounded_when_the_peer_does_not_read() {
        let (mut c, _peer) = pair_bounded(64 * 1024);
        let chunk = vec![b'x'; 16 * 1024];
        let mut err = None;
        for _ in 0..10_000 {
            if let Err(e) = c.send(&chunk) {
                err = Some(e);
                break;
            }
        }
        assert!(matches!(err, Some(ConnError::OutputFull(_))));
        assert!(c.queued() <= 64 * 1024);
    }
}
