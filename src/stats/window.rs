//! Hashrate windows of fixed size. Each window keeps the running hash total sampled every
//! `step` seconds in a ring of `N` entries (12 for the proxy and each group), so a window
//! costs the same whatever the share rate and however long the proxy runs. (Workers have
//! their own, lighter windows: [`super::WorkerRates`].) A rate is (total now − oldest
//! sample) over the time since that sample.
//!
//! Time is whole seconds since the proxy started, passed in by the caller (the 1-second
//! tick), so tests drive it without sleeping.

use ringbuf::LocalRb;
use ringbuf::storage::Array;
use std::fmt;

/// Samples per window for the proxy-wide counter: 5 s resolution over the minute.
pub const FINE: usize = 12;
/// Samples per window that worker records used before [`super::WorkerRates`] (10 s
/// resolution); the reference the worker windows are tested against.
pub const COARSE: usize = 6;

/// Window lengths in seconds: 1 min, 10 min, 1 h, 12 h, 24 h (the all-time rate is separate).
pub const WINDOWS: [u32; 5] = [60, 600, 3600, 43_200, 86_400];

/// One window: sampled totals and when the oldest sample was taken.
struct Ring<const N: usize> {
    samples: LocalRb<Array<u64, N>>,
    /// The first sample and when it was taken (ringbuf reads need `&mut`; rates are read
    /// through `&self`, so the oldest sample is cached on every push).
    oldest: u64,
    oldest_at: u32,
}

impl<const N: usize> fmt::Debug for Ring<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring").field("oldest_at", &self.oldest_at).finish_non_exhaustive()
    }
}

/// Hashrates over the five windows for one counter (the proxy, or one worker).
#[derive(Debug)]
pub struct HashWindows<const N: usize> {
    total: u64,
    created: u32,
    rings: [Ring<N>; 5],
}

impl<const N: usize> HashWindows<N> {
    /// Starts counting at `now`.
    pub fn new(now: u32) -> Self {
        let rings = std::array::from_fn(|_| {
            let mut samples = LocalRb::default();
            samples.push_overwrite(0);
            Ring { samples, oldest: 0, oldest_at: now }
        });
        HashWindows { total: 0, created: now, rings }
    }

    /// Adds an accepted share's difficulty.
    pub fn add(&mut self, hashes: u64) {
        self.total = self.total.saturating_add(hashes);
    }

    /// Sum of everything added.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Called once a second: takes a sample in each window whose step is due.
    pub fn tick(&mut self, now: u32) {
        for (ring, len) in self.rings.iter_mut().zip(WINDOWS) {
            let step = len / N as u32;
            if !now.is_multiple_of(step) {
                continue;
            }
            if ring.samples.push_overwrite(self.total).is_some() {
                // The creation sample (or an older aligned one) fell out: the ring now holds
                // aligned samples only, the oldest N-1 steps back.
                ring.oldest_at = now - (N as u32 - 1) * step;
                ring.oldest = ring.samples.first().copied().unwrap_or(0);
            }
        }
    }

    /// Hashes added within window `i` (0..5): since its oldest sample.
    pub fn sum(&self, i: usize) -> u64 {
        self.rings.get(i).map_or(0, |ring| self.total - ring.oldest.min(self.total))
    }

    /// Hashes per second over window `i` (0..5) at `now`.
    pub fn rate(&self, i: usize, now: u32) -> f64 {
        let Some(ring) = self.rings.get(i) else { return 0.0 };
        let oldest = ring.oldest;
        let secs = now.saturating_sub(ring.oldest_at);
        if secs == 0 {
            return 0.0;
        }
        (self.total - oldest.min(self.total)) as f64 / f64::from(secs)
    }

    /// Hashes per second since creation.
    pub fn rate_all(&self, now: u32) -> f64 {
        let secs = now.saturating_sub(self.created);
        if secs == 0 { 0.0 } else { self.total as f64 / f64::from(secs) }
    }

    /// The five windowed rates and the all-time rate, in H/s.
    pub fn rates(&self, now: u32) -> [f64; 6] {
        let mut out = [0.0; 6];
        for (i, r) in out.iter_mut().take(5).enumerate() {
            *r = self.rate(i, now);
        }
        out[5] = self.rate_all(now);
        out
    }

    /// True when nothing was added in the longest window.
    pub fn is_quiet(&self, now: u32) -> bool {
        self.rate(4, now) == 0.0 && now.saturating_sub(self.created) >= WINDOWS[4]
    }
}

/// A [`HashWindows`] as plain data, for a live upgrade (which keeps the clock).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WindowsSnapshot {
    total: u64,
    created: u32,
    /// Per window: its samples oldest first, and the cached oldest sample and its time.
    rings: Vec<(Vec<u64>, u64, u32)>,
}

impl<const N: usize> HashWindows<N> {
    /// The windows as plain data (`&mut`: ringbuf reads need it).
    pub fn snapshot(&mut self) -> WindowsSnapshot {
        let rings = self.rings.iter_mut().map(|r| (r.samples.iter().copied().collect(), r.oldest, r.oldest_at)).collect();
        WindowsSnapshot { total: self.total, created: self.created, rings }
    }

    /// The windows `s` describes; `None` when it has another number of windows.
    pub fn restore(s: &WindowsSnapshot) -> Option<Self> {
        if s.rings.len() != WINDOWS.len() {
            return None;
        }
        let rings = std::array::from_fn(|i| {
            let (samples, oldest, oldest_at) = &s.rings[i];
            let mut ring = LocalRb::default();
            for v in samples.iter().rev().take(N).rev() {
                ring.push_overwrite(*v);
            }
            Ring { samples: ring, oldest: *oldest, oldest_at: *oldest_at }
        });
        Some(HashWindows { total: s.total, created: s.created, rings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds `per_sec` each second from `from` to `to` (exclusive), ticking as the loop does.
    fn run<const N: usize>(w: &mut HashWindows<N>, from: u32, to: u32, per_sec: u64) {
        for t in from..to {
            w.add(per_sec);
            w.tick(t + 1);
        }
    }

    #[test]
    fn a_steady_rate_reads_the_same_in_every_full_window() {
        let mut w = HashWindows::<FINE>::new(0);
        run(&mut w, 0, 86_400, 1000);
        for i in 0..5 {
            let r = w.rate(i, 86_400);
            assert!((r - 1000.0).abs() < 1.0, "window {i}: {r}");
        }
        assert!((w.rate_all(86_400) - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn a_young_counter_divides_by_its_age() {
        let mut w = HashWindows::<FINE>::new(100);
        run(&mut w, 100, 130, 500);
        for i in 0..5 {
            assert!((w.rate(i, 130) - 500.0).abs() < 1e-9, "window {i}: {}", w.rate(i, 130));
        }
    }

    #[test]
    fn the_short_window_forgets_and_the_long_ones_remember() {
        let mut w = HashWindows::<FINE>::new(0);
        run(&mut w, 0, 600, 1000);
        run(&mut w, 600, 1200, 0);
        assert_eq!(w.rate(0, 1200), 0.0, "nothing in the last minute");
        assert_eq!(w.rate(1, 1200), 0.0, "nothing in the last 10 minutes");
        let hour = w.rate(2, 1200);
        assert!((hour - 500.0).abs() < 1.0, "half the last 20 minutes mined: {hour}");
    }

    #[test]
    fn memory_does_not_depend_on_time_or_rate() {
        let size = std::mem::size_of::<HashWindows<FINE>>();
        let mut w = HashWindows::<FINE>::new(0);
        run(&mut w, 0, 200_000, 1_000_000);
        assert_eq!(std::mem::size_of_val(&w), size);
        assert!(size <= 768, "{size} bytes per counter");
        let worker = std::mem::size_of::<HashWindows<COARSE>>();
        assert!(worker <= 512, "{worker} bytes per worker counter");
    }

    #[test]
    fn coarse_windows_read_the_same_steady_rate() {
        let mut w = HashWindows::<COARSE>::new(0);
        run(&mut w, 0, 86_400, 250);
        for i in 0..5 {
            let r = w.rate(i, 86_400);
            assert!((r - 250.0).abs() < 0.5, "window {i}: {r}");
        }
    }

    #[test]
    fn a_counter_is_quiet_after_a_day_without_shares() {
        let mut w = HashWindows::<FINE>::new(0);
        run(&mut w, 0, 10, 5);
        assert!(!w.is_quiet(10));
        run(&mut w, 10, 86_400 + 7200, 0);
        assert!(w.is_quiet(86_400 + 7200));
    }

    #[test]
    fn a_snapshot_restores_the_same_rates_and_they_go_on_alike() {
        let mut a = HashWindows::<FINE>::new(100);
        run(&mut a, 100, 5000, 700);
        let mut b = HashWindows::<FINE>::restore(&a.snapshot()).expect("five windows");
        assert_eq!(a.rates(5000), b.rates(5000));
        run(&mut a, 5000, 9000, 300);
        run(&mut b, 5000, 9000, 300);
        assert_eq!(a.rates(9000), b.rates(9000));
        let mut short = a.snapshot();
        short.rings.pop();
        assert!(HashWindows::<FINE>::restore(&short).is_none());
    }
}
