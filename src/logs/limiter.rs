//! Console lines that can come at rig rate, kept to a line now and then per reason.
//!
//! A pool outage answers every share of every rig with the same error, and a misconfigured
//! rig retries its refused login every few seconds for as long as it runs. Such a line is
//! first offered here with its topic and reason. The first of a (topic, reason) pair is
//! written in full; the ones after it are counted and summed up in one line when the
//! interval is over: `and 412 more shares rejected: Pool connection lost, share not sent
//! (last 10 s, latest 127.0.0.1:53986 (simB))`. While the pair keeps coming, each interval
//! is twice the one before, up to 5 minutes, so a rig that retries for a week writes a
//! line every 5 minutes, not every 5 seconds. An interval with nothing in it ends the pair;
//! its next line is written in full again.
//!
//! Fixed size: 16 pairs are followed at once, each keeping its reason and the latest
//! source cut to a few dozen bytes in inline buffers. A pair that finds no room (a pool
//! that makes up a new message per share) counts under its topic's "other reasons", so
//! neither time nor what peers send makes the limiter grow. `now` is passed in; the
//! limiter never reads the clock.

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

/// The first interval of a pair.
pub const FIRST_INTERVAL: Duration = Duration::from_secs(10);
/// The longest interval: a problem that goes on is mentioned at least this often.
pub const LONGEST_INTERVAL: Duration = Duration::from_secs(300);
/// (topic, reason) pairs followed at once.
pub const PAIRS: usize = 16;
/// Bytes of a reason kept; reasons that agree in these bytes are one.
const REASON_BYTES: usize = 64;
/// Bytes kept of the latest source ("127.0.0.1:53986 (simB)").
const WHO_BYTES: usize = 48;

/// What a limited line is about: its level, and how its summary names the lines held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Shares the pool rejected, or that could not reach a pool.
    ShareRejected,
    /// Logins (and v1 subscribes) refused.
    LoginRefused,
    /// Connections closed before they were miners: not stratum, failed TLS, PROXY headers.
    ConnectionRefused,
    /// Miners closed for how they behave: an over-long line, a flood of requests, silence.
    MinerDropped,
    /// Rigs moved to a pool connection of their own because they ignore the NiceHash byte.
    NoNiceHash,
    /// Rigs quarantined for their shares: moved to a pool connection of their own, or
    /// closed and refused for a while.
    RigSetApart,
    /// Pool connections that failed or were lost (in simple mode, one per rig).
    PoolFailed,
}

impl Topic {
    const COUNT: usize = 7;

    /// The level of the topic's lines and of their summaries.
    pub fn level(self) -> log::Level {
        match self {
            Topic::ShareRejected | Topic::LoginRefused | Topic::ConnectionRefused | Topic::NoNiceHash => log::Level::Info,
            Topic::MinerDropped | Topic::RigSetApart | Topic::PoolFailed => log::Level::Warn,
        }
    }

    /// What a summary calls the lines it stands for.
    fn noun(self) -> &'static str {
        match self {
            Topic::ShareRejected => "shares rejected",
            Topic::LoginRefused => "logins refused",
            Topic::ConnectionRefused => "connections closed",
            Topic::MinerDropped => "miners dropped",
            Topic::NoNiceHash => "rigs without NiceHash support moved to a pool connection of their own",
            Topic::RigSetApart => "rigs set apart",
            Topic::PoolFailed => "pool connection failures",
        }
    }
}

/// Text of up to `N` (at most 255) bytes, inline: cut at a character boundary when longer.
#[derive(Clone, Copy)]
struct Text<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Text<N> {
    const EMPTY: Text<N> = Text { len: 0, bytes: [0; N] };

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn as_str(&self) -> &str {
        // Always whole characters: `write_str` cuts at boundaries.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// Replaces the text with `args`, cut to `N` bytes.
    fn set(&mut self, args: fmt::Arguments<'_>) {
        self.len = 0;
        let _ = self.write_fmt(args);
    }
}

impl<const N: usize> fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let len = usize::from(self.len);
        let s = cut(s, N.min(255) - len);
        self.bytes[len..len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len() as u8;
        Ok(())
    }
}

/// The longest start of `s` of at most `n` bytes that ends on a character boundary.
fn cut(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One (topic, reason) pair being followed.
#[derive(Clone, Copy)]
struct Pair {
    topic: Topic,
    reason: Text<REASON_BYTES>,
    /// Start and length of the current interval.
    since: Instant,
    interval: Duration,
    /// Lines held back in the current interval.
    held: u64,
    /// Who the latest held-back line was about.
    latest: Text<WHO_BYTES>,
}

impl Pair {
    fn new(topic: Topic, reason: &str, now: Instant) -> Pair {
        let mut p = Pair { topic, reason: Text::EMPTY, since: now, interval: FIRST_INTERVAL, held: 0, latest: Text::EMPTY };
        p.reason.set(format_args!("{reason}"));
        p
    }

    fn hold(&mut self, who: fmt::Arguments<'_>) {
        self.held += 1;
        self.latest.set(who);
    }
}

/// The limiter: a fixed table of pairs, and one "other reasons" pair per topic.
pub struct LogLimiter {
    pairs: [Option<Pair>; PAIRS],
    others: [Option<Pair>; Topic::COUNT],
}

impl Default for LogLimiter {
    fn default() -> LogLimiter {
        LogLimiter { pairs: [None; PAIRS], others: [None; Topic::COUNT] }
    }
}

impl fmt::Debug for LogLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLimiter").field("pairs", &self.pairs.iter().flatten().count()).finish()
    }
}

impl LogLimiter {
    /// One line of `topic` for `reason`, about `who`: true when it should be written now.
    /// Lines of a level that is off are neither written nor counted.
    pub fn admit(&mut self, topic: Topic, reason: &str, who: fmt::Arguments<'_>, now: Instant) -> bool {
        topic.level() <= log::max_level() && self.note(topic, reason, who, now)
    }

    /// `admit` whatever the log level: counts the line, true when it opens an interval.
    pub fn note(&mut self, topic: Topic, reason: &str, who: fmt::Arguments<'_>, now: Instant) -> bool {
        let key = cut(reason, REASON_BYTES);
        if let Some(p) = self.pairs.iter_mut().flatten().find(|p| p.topic == topic && p.reason.as_bytes() == key.as_bytes()) {
            p.hold(who);
            return false;
        }
        if let Some(free) = self.pairs.iter_mut().find(|p| p.is_none()) {
            *free = Some(Pair::new(topic, key, now));
            return true;
        }
        match &mut self.others[topic as usize] {
            Some(p) => {
                p.hold(who);
                false
            }
            none => {
                *none = Some(Pair::new(topic, "", now));
                true
            }
        }
    }

    /// Once a second: a summary for each pair whose interval is over with lines held back
    /// (its next interval twice as long), and pairs whose interval passed empty are
    /// forgotten.
    pub fn take_due(&mut self, now: Instant, mut emit: impl FnMut(&Summary<'_>)) {
        let pairs = self.pairs.iter_mut().map(|p| (p, false));
        for (slot, lumped) in pairs.chain(self.others.iter_mut().map(|p| (p, true))) {
            let Some(p) = slot else { continue };
            let length = now.saturating_duration_since(p.since);
            if length < p.interval {
                continue;
            }
            if p.held == 0 {
                *slot = None;
                continue;
            }
            let reason = (!lumped).then(|| p.reason.as_str());
            emit(&Summary { topic: p.topic, reason, held: p.held, length, latest: p.latest.as_str() });
            p.since = now;
            p.held = 0;
            p.interval = (p.interval * 2).min(LONGEST_INTERVAL);
        }
    }

    /// Pairs followed now (for tests).
    pub fn followed(&self) -> usize {
        self.pairs.iter().chain(&self.others).flatten().count()
    }
}

/// The line that sums up what an interval held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary<'a> {
    pub topic: Topic,
    /// `None` for a topic's other reasons.
    pub reason: Option<&'a str>,
    pub held: u64,
    pub length: Duration,
    pub latest: &'a str,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "and {} more {}", super::grouped(self.held), self.topic.noun())?;
        match self.reason {
            Some(r) => write!(f, ": {r}")?,
            None => f.write_str(" for other reasons")?,
        }
        write!(f, " (last {} s", self.length.as_secs())?;
        if !self.latest.is_empty() {
            write!(f, ", latest {}", self.latest)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOST: &str = "Pool connection lost, share not sent";

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    /// The summaries due at `now`, as text.
    fn due(l: &mut LogLimiter, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        l.take_due(now, |s| out.push(s.to_string()));
        out
    }

    #[test]
    fn a_flood_is_one_line_then_one_summary_per_interval() {
        let t0 = Instant::now();
        let mut l = LogLimiter::default();
        // 3 rigs, a share each every 2 s, over a 30 s outage: 45 lines before, one each.
        let mut lines = Vec::new();
        for s in 0..60 {
            for rig in ["simA", "simB", "simC"] {
                if s < 30 && s % 2 == 0 && l.note(Topic::ShareRejected, LOST, format_args!("127.0.0.1:53986 ({rig})"), secs(t0, s)) {
                    lines.push(format!("share from 127.0.0.1:53986 ({rig}) rejected: {LOST}"));
                }
            }
            lines.extend(due(&mut l, secs(t0, s)));
        }
        assert_eq!(
            lines,
            [
                "share from 127.0.0.1:53986 (simA) rejected: Pool connection lost, share not sent",
                "and 17 more shares rejected: Pool connection lost, share not sent (last 10 s, latest 127.0.0.1:53986 (simC))",
                "and 27 more shares rejected: Pool connection lost, share not sent (last 20 s, latest 127.0.0.1:53986 (simC))",
            ]
        );
        assert_eq!(l.followed(), 1, "forgotten once an interval passes empty");
        assert!(due(&mut l, secs(t0, 70)).is_empty());
        assert_eq!(l.followed(), 0);
        assert!(due(&mut l, secs(t0, 71)).is_empty(), "said once");
    }

    #[test]
    fn intervals_double_while_it_goes_on_and_a_quiet_one_starts_over() {
        let t0 = Instant::now();
        let mut l = LogLimiter::default();
        let refuse =
            |l: &mut LogLimiter, s| l.note(Topic::LoginRefused, "Unknown account", format_args!("10.0.0.5:4444 (bob)"), secs(t0, s));
        // A rig retrying every 5 s for an hour.
        let mut lines = Vec::new();
        for s in 0..3600 {
            if s % 5 == 0 && refuse(&mut l, s) {
                lines.push((s, "line".to_string()));
            }
            lines.extend(due(&mut l, secs(t0, s)).into_iter().map(|d| (s, d)));
        }
        let at: Vec<u64> = lines.iter().map(|(s, _)| *s).collect();
        assert_eq!(at, [0, 10, 30, 70, 150, 310, 610, 910, 1210, 1510, 1810, 2110, 2410, 2710, 3010, 3310], "{lines:?}");
        assert_eq!(lines[2].1, "and 4 more logins refused: Unknown account (last 20 s, latest 10.0.0.5:4444 (bob))");
        assert_eq!(lines[7].1, "and 60 more logins refused: Unknown account (last 300 s, latest 10.0.0.5:4444 (bob))");
        // It stops: one more summary for what was held back, then the pair is forgotten.
        let end = 3600;
        let rest: Vec<String> = (end..end + 700).flat_map(|s| due(&mut l, secs(t0, s))).collect();
        assert_eq!(rest.len(), 1, "{rest:?}");
        assert_eq!(l.followed(), 0);
        assert!(refuse(&mut l, end + 700), "back after a quiet interval: a line in full again");
    }

    #[test]
    fn nothing_held_back_means_no_summary() {
        let t0 = Instant::now();
        let mut l = LogLimiter::default();
        assert!(l.note(Topic::PoolFailed, "pool:3333: refused", format_args!("upstream #0"), t0));
        assert!(due(&mut l, secs(t0, 10)).is_empty());
        assert_eq!(l.followed(), 0);
        assert!(l.note(Topic::PoolFailed, "pool:3333: refused", format_args!("upstream #0"), secs(t0, 11)));
    }

    #[test]
    fn topics_and_reasons_are_followed_apart() {
        let t0 = Instant::now();
        let mut l = LogLimiter::default();
        assert!(l.note(Topic::ShareRejected, "Stale share", format_args!(""), t0));
        assert!(l.note(Topic::ShareRejected, LOST, format_args!(""), t0));
        assert!(l.note(Topic::LoginRefused, LOST, format_args!(""), t0), "same words, another topic");
        assert!(!l.note(Topic::ShareRejected, "Stale share", format_args!(""), t0));
        assert_eq!(due(&mut l, secs(t0, 10)), ["and 1 more shares rejected: Stale share (last 10 s)"]);
    }

    #[test]
    fn it_stays_the_same_size_whatever_the_network_sends() {
        let t0 = Instant::now();
        let mut l = LogLimiter::default();
        let mut written = 0;
        // A pool that makes up a new, long message for every share.
        for i in 0..100_000u32 {
            let reason = format!("share {i} rejected: {}", "x".repeat(500));
            written += usize::from(l.note(Topic::ShareRejected, &reason, format_args!("{}", "y".repeat(500)), t0));
        }
        assert_eq!(written, PAIRS + 1, "one line per pair that found room, one for the rest");
        assert_eq!(l.followed(), PAIRS + 1);
        let out = due(&mut l, secs(t0, 10));
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].starts_with("and 99,983 more shares rejected for other reasons (last 10 s, latest yyy"), "{out:?}");
        assert!(out[0].len() < 200, "the latest source cut short: {out:?}");
        assert!(std::mem::size_of::<LogLimiter>() < 4096, "{} bytes", std::mem::size_of::<LogLimiter>());
    }

    #[test]
    fn reasons_are_cut_on_character_boundaries() {
        let long = "é".repeat(100);
        assert_eq!(cut(&long, 64).len(), 64);
        assert_eq!(cut(&long, 63).len(), 62);
        let mut t: Text<5> = Text::EMPTY;
        t.set(format_args!("ab{}", "€€"));
        assert_eq!(t.as_str(), "ab€");
        let t0 = Instant::now();
        let mut l = LogLimiter::default();
        assert!(l.note(Topic::ShareRejected, &long, format_args!(""), t0));
        assert!(!l.note(Topic::ShareRejected, &format!("{long}!"), format_args!(""), t0), "the same in its first 64 bytes");
    }
}
