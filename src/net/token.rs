//! Every mio token is decoded in exactly one place: the kind of socket in the high bits,
//! the slab key (or listener index) in the low bits.

use mio::Token;

/// The kind takes the top 8 bits, so 32-bit targets (armv7 routers) keep 24 bits of key:
/// 16 million sockets, far beyond what such a host can hold open.
const SHIFT: u32 = usize::BITS - 8;
const KEY_MASK: usize = (1 << SHIFT) - 1;

/// What a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A miner listener, by index in the bind list.
    Listener(usize),
    /// A miner connection, by slab key.
    Miner(usize),
    /// An upstream pool connection, by upstream id.
    Upstream(usize),
    /// The HTTP API listener.
    HttpListener,
    /// An HTTP client, by slab key.
    Http(usize),
    /// The self-pipe that SIGINT/SIGTERM handlers write to.
    Signal,
    /// The self-pipe that the SIGHUP handler writes to (reopen logs).
    Hangup,
    /// The waker another thread uses to stop the loop (tests, embedding).
    Waker,
    /// The client side of a transparent jump, by jump slab key.
    JumpClient(usize),
    /// The target side of a transparent jump, by jump slab key.
    JumpTarget(usize),
    /// A connection waiting for its PROXY protocol header, by slab key.
    Incoming(usize),
    /// SIGUSR2: hand over to a new process (live upgrade).
    Upgrade,
}

impl Source {
    /// The token for this source.
    pub fn token(self) -> Token {
        let (kind, key) = match self {
            Source::Listener(i) => (1, i),
            Source::Miner(k) => (2, k),
            Source::Upstream(k) => (3, k),
            Source::HttpListener => (4, 0),
            Source::Http(k) => (5, k),
            Source::Signal => (6, 0),
            Source::Waker => (7, 0),
            Source::Hangup => (8, 0),
            Source::JumpClient(k) => (9, k),
            Source::JumpTarget(k) => (10, k),
            Source::Incoming(k) => (11, k),
            Source::Upgrade => (12, 0),
        };
        debug_assert!(key <= KEY_MASK);
        Token((kind << SHIFT) | (key & KEY_MASK))
    }

    /// Decodes a token; `None` for a token we never issued.
    pub fn from_token(token: Token) -> Option<Source> {
        let key = token.0 & KEY_MASK;
        Some(match token.0 >> SHIFT {
            1 => Source::Listener(key),
            2 => Source::Miner(key),
            3 => Source::Upstream(key),
            4 => Source::HttpListener,
            5 => Source::Http(key),
            6 => Source::Signal,
            7 => Source::Waker,
            8 => Source::Hangup,
            9 => Source::JumpClient(key),
            10 => Source::JumpTarget(key),
            11 => Source::Incoming(key),
            12 => Source::Upgrade,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for s in [
            Source::Listener(0),
            Source::Listener(7),
            Source::Miner(0),
            Source::Miner(123_456),
            Source::Upstream(3),
            Source::HttpListener,
            Source::Http(99),
            Source::Signal,
            Source::Waker,
            Source::Hangup,
            Source::JumpClient(5),
            Source::JumpTarget(5),
            Source::Incoming(42),
            Source::Upgrade,
        ] {
            assert_eq!(Source::from_token(s.token()), Some(s));
        }
        assert_eq!(Source::from_token(Token(0)), None);
        assert_eq!(Source::from_token(Token(usize::MAX)), None);
    }
}
