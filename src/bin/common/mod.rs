//! What the test pool and the miner simulator share: stop flags for signals, hex, time,
//! and the stratum v1 arithmetic (`v1.rs`). Deliberately independent of the proxy's
//! library, so the tools check the proxy's arithmetic instead of repeating it.

pub mod v1;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A flag that SIGINT and SIGTERM set.
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn on_signals(tool: &str) -> Stop {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            if let Err(e) = signal_hook::flag::register(sig, flag.clone()) {
                eprintln!("{tool}: cannot handle signal {sig}: {e}");
            }
        }
        Stop(flag)
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Prints `tool: msg` and exits with status 2.
pub fn die(tool: &str, msg: String) -> ! {
    eprintln!("{tool}: {msg}");
    std::process::exit(2);
}

pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let b = s.as_bytes();
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    (0..b.len() / 2).map(|i| Some((nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?)).collect()
}
