//! The last 24 hours, one entry per minute, for the dashboard's chart (`/1/history`): a ring
//! of 1,440 entries allocated once at start, so a proxy that runs for a year holds the same
//! 34 KiB it held after a day.
//!
//! The 1-second tick passes the running totals in; when a new minute of uptime begins, the
//! minute that ended becomes an entry (the hashes, accepted and rejected shares added during
//! it, the miners connected at its end). The minute in progress is not stored: `current`
//! computes it from the totals on request, so a proxy a few seconds old already has a point.

/// Entries kept: 24 hours of minutes.
pub const HISTORY_LEN: usize = 1440;

/// One minute of the proxy's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Minute {
    /// Seconds of uptime when the minute ended (or now, for the minute in progress).
    pub at: u32,
    /// Hashes per second over the minute (accepted share difficulty / seconds).
    pub hashrate: f64,
    /// Miners connected at its end.
    pub miners: u32,
    /// Shares accepted during it.
    pub accepted: u32,
    /// Shares rejected during it.
    pub rejected: u32,
}

/// The counters the history samples, as the tick sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    pub hashes: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub miners: u64,
}

/// A fixed ring of per-minute entries and the totals at the start of the current minute.
/// A [`History`] as plain data: its completed minutes oldest first, and the minute in
/// progress (when it began and the totals then).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistorySnapshot {
    minutes: Vec<Minute>,
    since: u32,
    base: Totals,
}

#[derive(Debug)]
pub struct History {
    ring: Box<[Minute]>,
    /// Index the next entry goes to.
    head: usize,
    /// Entries filled so far (at most `HISTORY_LEN`).
    len: usize,
    /// When the current minute began (seconds of uptime) and the totals then.
    since: u32,
    base: Totals,
}

impl History {
    /// An empty history whose first minute starts at `now` (seconds of uptime).
    pub fn new(now: u32) -> History {
        History { ring: vec![Minute::default(); HISTORY_LEN].into_boxed_slice(), head: 0, len: 0, since: now, base: Totals::default() }
    }

    /// Called every second; closes the current minute once a new minute of uptime begins.
    /// A loop that missed whole minutes (a suspended host) closes one longer entry: its rate
    /// is still hashes over the seconds it really covered.
    pub fn tick(&mut self, now: u32, totals: Totals) {
        if now / 60 == self.since / 60 {
            return;
        }
        let entry = self.entry(now, totals);
        self.ring[self.head] = entry;
        self.head = (self.head + 1) % HISTORY_LEN;
        self.len = (self.len + 1).min(HISTORY_LEN);
        self.since = now;
        self.base = totals;
    }

    /// The minute in progress, from `since` to `now`; `None` while no second has passed.
    pub fn current(&self, now: u32, totals: Totals) -> Option<Minute> {
        (now > self.since).then(|| self.entry(now, totals))
    }

    /// Completed minutes, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Minute> {
        let start = (self.head + HISTORY_LEN - self.len) % HISTORY_LEN;
        (0..self.len).map(move |i| &self.ring[(start + i) % HISTORY_LEN])
    }

    /// Completed minutes held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The history as plain data, for a live upgrade (which keeps the clock).
    pub fn snapshot(&self) -> HistorySnapshot {
        HistorySnapshot { minutes: self.iter().copied().collect(), since: self.since, base: self.base }
    }

    /// The history `s` describes (its last `HISTORY_LEN` minutes).
    pub fn restore(s: &HistorySnapshot) -> History {
        let mut h = History::new(s.since);
        for m in s.minutes.iter().rev().take(HISTORY_LEN).rev() {
            h.ring[h.head] = *m;
            h.head = (h.head + 1) % HISTORY_LEN;
            h.len = (h.len + 1).min(HISTORY_LEN);
        }
        h.base = s.base;
        h
    }

    fn entry(&self, now: u32, t: Totals) -> Minute {
        let secs = now.saturating_sub(self.since).max(1);
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Minute {
            at: now,
            hashrate: t.hashes.saturating_sub(self.base.hashes) as f64 / f64::from(secs),
            miners: clamp(t.miners),
            accepted: clamp(t.accepted.saturating_sub(self.base.accepted)),
            rejected: clamp(t.rejected.saturating_sub(self.base.rejected)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the history from `from` to `to` seconds with `per_sec` hashes and one accepted
    /// share a second, ticking as the loop does.
    fn run(h: &mut History, t: &mut Totals, from: u32, to: u32, per_sec: u64) {
        for now in from + 1..=to {
            t.hashes += per_sec;
            t.accepted += 1;
            h.tick(now, *t);
        }
    }

    #[test]
    fn a_minute_becomes_one_entry_with_its_rate_and_counts() {
        let mut h = History::new(0);
        let mut t = Totals { miners: 3, ..Totals::default() };
        run(&mut h, &mut t, 0, 59, 1000);
        assert!(h.is_empty(), "the first minute is still in progress");
        let partial = h.current(59, t).expect("a partial minute");
        assert_eq!((partial.at, partial.accepted, partial.miners), (59, 59, 3));
        assert!((partial.hashrate - 1000.0).abs() < 1e-9);
        run(&mut h, &mut t, 59, 60, 1000);
        let done: Vec<Minute> = h.iter().copied().collect();
        assert_eq!(done, vec![Minute { at: 60, hashrate: 1000.0, miners: 3, accepted: 60, rejected: 0 }]);
        assert_eq!(h.current(60, t), None, "a new minute with no second in it yet");
    }

    #[test]
    fn the_ring_keeps_the_last_day_in_order_and_never_grows() {
        let mut h = History::new(0);
        let bytes = std::mem::size_of_val(&*h.ring);
        let mut t = Totals::default();
        // Three days: the ring wraps twice.
        for minute in 0..3 * HISTORY_LEN as u32 {
            run(&mut h, &mut t, minute * 60, (minute + 1) * 60, u64::from(minute));
        }
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(h.ring.len(), HISTORY_LEN);
        assert_eq!(std::mem::size_of_val(&*h.ring), bytes, "no growth with time");
        let at: Vec<u32> = h.iter().map(|m| m.at).collect();
        let first = (2 * HISTORY_LEN as u32 + 1) * 60;
        assert_eq!(at.first(), Some(&first), "the oldest entry is a day old");
        assert_eq!(at.last(), Some(&(3 * HISTORY_LEN as u32 * 60)));
        assert!(at.windows(2).all(|w| w[1] == w[0] + 60), "oldest first, one a minute");
        let rates: Vec<f64> = h.iter().map(|m| m.hashrate).collect();
        assert_eq!(rates.first(), Some(&(2.0 * HISTORY_LEN as f64)));
        assert_eq!(rates.last(), Some(&(3.0 * HISTORY_LEN as f64 - 1.0)));
    }

    #[test]
    fn a_missed_minute_closes_one_longer_entry() {
        let mut h = History::new(0);
        let mut t = Totals::default();
        run(&mut h, &mut t, 0, 30, 600);
        // The loop stalls from 30 s to 150 s (a suspended host) with nothing added.
        h.tick(150, t);
        let m = h.iter().next().copied().expect("one entry");
        assert_eq!((m.at, m.accepted), (150, 30));
        assert!((m.hashrate - 600.0 * 30.0 / 150.0).abs() < 1e-9, "hashes over the seconds covered");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn counters_that_go_back_do_not_underflow() {
        let mut h = History::new(0);
        h.tick(30, Totals { accepted: 10, rejected: 4, hashes: 100, miners: 1 });
        h.tick(61, Totals { accepted: 10, rejected: 4, hashes: 100, miners: 1 });
        let m = h.current(90, Totals::default()).expect("partial");
        assert_eq!((m.accepted, m.rejected, m.hashrate), (0, 0, 0.0));
    }

    #[test]
    fn a_snapshot_restores_the_day_and_the_minute_in_progress() {
        let mut a = History::new(0);
        let mut t = Totals { miners: 2, ..Totals::default() };
        run(&mut a, &mut t, 0, 90 * 60 + 25, 500);
        let mut b = History::restore(&a.snapshot());
        assert!(a.iter().eq(b.iter()) && a.len() == 90);
        assert_eq!(a.current(90 * 60 + 25, t), b.current(90 * 60 + 25, t));
        let mut tb = t;
        run(&mut a, &mut t, 90 * 60 + 25, 3000 * 60, 800);
        run(&mut b, &mut tb, 90 * 60 + 25, 3000 * 60, 800);
        assert!(a.iter().eq(b.iter()) && b.len() == HISTORY_LEN);
    }
}
