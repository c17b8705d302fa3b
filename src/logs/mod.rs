//! The access log and the share log (RFC section 15): append-only text files with one line
//! per event, opened once. A write error is logged once and the proxy goes on; `reopen`
//! (SIGHUP) starts a fresh file after logrotate moved the old one.
//!
//! [`limiter`] keeps console lines that can come at rig rate (share rejects, refused
//! logins, dropped connections, pool failures) to a line now and then per reason.

pub mod limiter;

pub use limiter::{LogLimiter, Topic};

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// One append-only log file; a log without a path writes nothing.
#[derive(Debug, Default)]
pub struct AppendLog {
    path: Option<String>,
    file: Option<File>,
    /// A write failed; stay quiet about it until the next reopen.
    broken: bool,
}

impl AppendLog {
    /// Opens `path` for appending (creating it); `None` disables the log.
    pub fn open(path: Option<&str>) -> AppendLog {
        let mut log = AppendLog { path: path.map(str::to_string), file: None, broken: false };
        log.reopen();
        log
    }

    pub fn is_enabled(&self) -> bool {
        self.file.is_some()
    }

    /// Closes and opens the file again (after a rotation).
    pub fn reopen(&mut self) {
        self.file = None;
        self.broken = false;
        let Some(path) = self.path.as_deref() else { return };
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => self.file = Some(f),
            Err(e) => log::error!("cannot open log file {path}: {e}"),
        }
    }

    /// Writes `<RFC 3339 UTC time> <text>\n` in one write.
    pub fn line(&mut self, text: fmt::Arguments<'_>) {
        let Some(file) = self.file.as_mut() else { return };
        let mut buf = Vec::with_capacity(128);
        let _ = writeln!(buf, "{} {text}", Utc::now());
        if let Err(e) = file.write_all(&buf)
            && !self.broken
        {
            log::error!("cannot write log file {}: {e}", self.path.as_deref().unwrap_or("?"));
            self.broken = true;
        }
    }
}

/// A UTC wall-clock second, formatted as `2026-04-04T12:00:00Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc(pub u64);

impl Utc {
    pub fn now() -> Utc {
        Utc(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
    }
}

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = (self.0 / 86_400) as i64;
        let secs = self.0 % 86_400;
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(f, "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
    }
}

/// Text a peer sent (a login name), for a log line: at most 64 characters, control
/// characters shown as `?`, so a rig cannot write a fake line or a 16 KiB one.
pub struct PeerText<'a>(pub &'a str);

impl fmt::Display for PeerText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars().take(64) {
            f.write_char(if c.is_control() { '?' } else { c })?;
        }
        Ok(())
    }
}

/// `1234567` as `1,234,567`, for log lines people read.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Unix time now in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_like_rfc_3339() {
        assert_eq!(Utc(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Utc(1_712_232_000).to_string(), "2024-04-04T12:00:00Z");
        assert_eq!(Utc(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(Utc(4_102_444_799).to_string(), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn lines_are_appended_and_survive_a_rotation() {
        let dir = std::env::temp_dir().join(format!("sp-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let p = path.to_str().unwrap();
        let mut log = AppendLog::open(Some(p));
        log.line(format_args!("CONNECT 10.0.0.1:4000 WALLET XMRig/6"));
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        log.reopen();
        log.line(format_args!("CLOSE 10.0.0.1:4000 WALLET rx=1 tx=2"));
        let old = std::fs::read_to_string(dir.join("access.log.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(old.ends_with(" CONNECT 10.0.0.1:4000 WALLET XMRig/6\n"), "{old}");
        assert!(new.ends_with(" CLOSE 10.0.0.1:4000 WALLET rx=1 tx=2\n") && new.lines().count() == 1, "{new}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(3960), "3,960");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn peer_text_is_one_short_line() {
        assert_eq!(PeerText("bob\nINFO fake line\r").to_string(), "bob?INFO fake line?");
        assert_eq!(PeerText(&"x".repeat(20_000)).to_string().len(), 64);
    }

    #[test]
    fn a_disabled_log_writes_nothing() {
        let mut log = AppendLog::open(None);
        assert!(!log.is_enabled());
        log.line(format_args!("ACCEPT"));
    }
}
