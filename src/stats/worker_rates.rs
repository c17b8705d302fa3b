//! One worker's hashrates in 56 bytes, whatever its share rate and however long it lives.
//!
//! The proxy-wide counter keeps sampled totals ([`super::HashWindows`]); a worker record
//! cannot afford five rings, so its windows are built from two cheaper parts:
//!
//! - **Minute sums** for the short windows: the current minute's sum exactly (`u64`), and the
//!   ten minutes before it, each stored as a 16-bit float (11 significant bits, a 6-bit
//!   exponent: any `u64` fits). From them:
//!   - *60 s*: the current minute so far plus the part of the previous minute that lies
//!     inside the window, that minute's sum weighted by the fraction of it in the window;
//!   - *10 min*: the same over the current minute and the ten before it;
//!   - *speed* (5 min, measured each minute, the accounts proxy's `proxy_worker_speed`):
//!     the five last whole minutes over 300 s; it moves only when a minute ends.
//! - **Decayed sums** for 1 h, 12 h and 24 h: one `f32` each, with a time constant of half
//!   the window (a decayed average and a sliding window then weigh shares at the same mean
//!   age). A minute's sum is folded in when the minute ends, so each holds a few thousand
//!   roundings at most, not one per share.
//!
//! A young record divides by the time it has lived, in every window, and the decayed sums
//! are divided by exactly what a steady miner of 1 H/s would have accumulated over the
//! same life on the same minute boundaries, so a steady rate reads true from the first
//! second. Nothing happens per second: the record moves to a new minute when it is written
//! (a share, a login, a disconnect), and a read works on a moved copy.
//!
//! Error bounds, against the exact sum of accepted difficulty in each window:
//! - a stored minute is off by at most 2^-11 (0.05 %) of itself; the current minute, the
//!   all-time total and everything below 2048 per minute are exact;
//! - the 60 s and 10 min windows assume the oldest minute's shares were spread evenly over
//!   it: exact for a steady miner; when the rate changed within that minute, off by at most
//!   that minute's sum times the larger of the parts inside and outside the window (at
//!   most one minute's hashes out of one (60 s) or ten (10 min) minutes' worth);
//! - a decayed sum loses at most 2^-24 relative per fold, which decays with the sum: at
//!   most 2^-24 · τ/60 in all (4·10^-5 for 24 h). It is not a sliding window: after a
//!   miner stops, it reads `r · e^(-x/τ)` x seconds later where a window reads
//!   `r · (1 - x/W)`: 37 % against 50 % half a window after the stop, 13.5 % against 0 a
//!   whole window after. For a steady miner, and for one whose bursts are short next to
//!   the window, the two agree.

use std::fmt;

/// Seconds in a bucket.
const MINUTE: u32 = 60;
/// Whole minutes kept before the current one: the 10-minute window's.
const KEPT: usize = 10;
/// Whole minutes in the speed window.
const SPEED_MINUTES: usize = 5;
/// Time constants of the decayed sums for the 1 h, 12 h and 24 h windows: half the window.
const TAUS: [f64; 3] = [1800.0, 21_600.0, 43_200.0];

/// A minute's sum in 16 bits: an unsigned float with a 6-bit exponent and a 10-bit
/// mantissa (plus the implicit leading bit), exact below 2048, within 2^-11 above.
#[derive(Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct MinuteSum(u16);

impl MinuteSum {
    fn encode(v: u64) -> MinuteSum {
        if v < 2048 {
            // Exponent 0 holds 0..1023; exponent 1 holds 1024..2047 with no shift.
            return if v < 1024 { MinuteSum(v as u16) } else { MinuteSum((1 << 10) | (v as u16 - 1024)) };
        }
        let shift = 64 - v.leading_zeros() - 11;
        let half = 1u64 << (shift - 1);
        let mut m = (v >> shift) + u64::from(v & ((half << 1) - 1) >= half);
        let mut e = shift + 1;
        if m == 2048 {
            m = 1024;
            e += 1;
        }
        if e > 54 {
            // Only sums within 2^-11 of u64::MAX round up this far: keep the largest value.
            return MinuteSum((54 << 10) | 1023);
        }
        MinuteSum(((e as u16) << 10) | (m as u16 - 1024))
    }

    fn value(self) -> f64 {
        let (e, m) = (i32::from(self.0 >> 10), f64::from(self.0 & 1023));
        if e == 0 { m } else { (1024.0 + m) * 2f64.powi(e - 1) }
    }
}

/// A worker's hashrates: 60 s, 10 min, 1 h, 12 h, 24 h, the 5-minute speed and the total.
/// Time is whole seconds since the proxy started. (Serialized as is for a live upgrade,
/// which keeps that clock.)
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkerRates {
    total: u64,
    /// Sum of minute `at / 60`, the current one.
    current: u64,
    created: u32,
    /// The last write: a share, or [`WorkerRates::touch`].
    at: u32,
    /// Decayed sums of the whole minutes before the current one, as of its start.
    decayed: [f32; 3],
    /// The minutes before the current one, the latest first.
    minutes: [MinuteSum; KEPT],
}

impl fmt::Debug for WorkerRates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerRates").field("total", &self.total).field("at", &self.at).finish_non_exhaustive()
    }
}

impl WorkerRates {
    /// Starts measuring at `now`.
    pub fn new(now: u32) -> WorkerRates {
        WorkerRates { total: 0, current: 0, created: now, at: now, decayed: [0.0; 3], minutes: [MinuteSum::default(); KEPT] }
    }

    /// An accepted share worth `hashes`, at `now`.
    pub fn add(&mut self, hashes: u64, now: u32) {
        self.touch(now);
        self.current = self.current.saturating_add(hashes);
        self.total = self.total.saturating_add(hashes);
    }

    /// Notes activity at `now` (and moves to its minute).
    pub fn touch(&mut self, now: u32) {
        let now = now.max(self.at);
        let (from, to) = (self.at / MINUTE, now / MINUTE);
        if to > from {
            self.close_minutes(to - from);
        }
        self.at = now;
    }

    /// Ends the current minute and `k - 1` empty ones after it.
    fn close_minutes(&mut self, k: u32) {
        let current = self.current as f64;
        for (d, tau) in self.decayed.iter_mut().zip(TAUS) {
            let q = |n: u32| (-f64::from(n) * f64::from(MINUTE) / tau).exp();
            *d = (f64::from(*d) * q(k) + current * q(k - 1)) as f32;
        }
        let k = k as usize;
        if k <= KEPT {
            self.minutes.copy_within(0..KEPT - k, k);
            self.minutes[..k].fill(MinuteSum::default());
            self.minutes[k - 1] = MinuteSum::encode(self.current);
        } else {
            self.minutes = [MinuteSum::default(); KEPT];
        }
        self.current = 0;
    }

    /// Sum of everything added.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The last write (share or touch), in seconds.
    pub fn last_active(&self) -> u32 {
        self.at
    }

    /// This record as it reads at `now`: moved to `now`'s minute.
    fn at(&self, now: u32) -> WorkerRates {
        let mut r = self.clone();
        r.touch(now);
        r
    }

    /// Seconds of `[from, to)` the record has lived.
    fn lived(&self, from: i64, to: i64) -> f64 {
        (to - from.max(i64::from(self.created))).max(0) as f64
    }

    /// Hashes per second over the last `n` minutes (current minute included, the oldest
    /// weighted by its part inside the window); `self` is already at `now`.
    fn window(&self, n: usize, now: u32) -> f64 {
        let t = i64::from(now);
        let start = t - t % i64::from(MINUTE);
        let from = t - n as i64 * i64::from(MINUTE);
        let mut sum = self.current as f64;
        for (i, m) in self.minutes.iter().take(n).enumerate() {
            let b = start - i as i64 * i64::from(MINUTE);
            let whole = self.lived(b - i64::from(MINUTE), b);
            if whole == 0.0 {
                break;
            }
            sum += m.value() * self.lived(from.max(b - i64::from(MINUTE)), b) / whole;
        }
        let span = self.lived(from, t);
        if span == 0.0 { 0.0 } else { sum / span }
    }

    /// Hashes per second from decayed sum `j`; `self` is already at `now`.
    fn decayed_rate(&self, j: usize, now: u32) -> f64 {
        let tau = TAUS[j];
        let minute = f64::from(MINUTE);
        let into = f64::from(now % MINUTE);
        let sum = f64::from(self.decayed[j]) * (-into / tau).exp() + self.current as f64;
        // What 1 H/s since creation would have left: whole minutes (the first one only from
        // creation on) folded the same way, plus the current minute so far.
        let closed = (now / MINUTE).saturating_sub(self.created / MINUTE);
        let mut norm = 0.0;
        if closed > 0 {
            let q = (-minute / tau).exp();
            let first_missing = f64::from(self.created % MINUTE);
            norm = minute * (1.0 - q.powi(closed.min(i32::MAX as u32) as i32)) / (1.0 - q)
                - first_missing * q.powi((closed - 1).min(i32::MAX as u32) as i32);
            norm *= (-into / tau).exp();
        }
        norm += self.lived(i64::from(now - now % MINUTE), i64::from(now));
        if norm <= 0.0 { 0.0 } else { sum / norm }
    }

    /// Hashes per second over window `i` at `now`: 0 = 60 s, 1 = 10 min, 2 = 1 h, 3 = 12 h,
    /// 4 = 24 h (the last three decayed).
    pub fn rate(&self, i: usize, now: u32) -> f64 {
        let r = self.at(now);
        let now = now.max(self.at);
        match i {
            0 => r.window(1, now),
            1 => r.window(KEPT, now),
            2..=4 => r.decayed_rate(i - 2, now),
            _ => 0.0,
        }
    }

    /// The five windowed rates, in H/s, in the order of [`WorkerRates::rate`].
    pub fn rates(&self, now: u32) -> [f64; 5] {
        let r = self.at(now);
        let now = now.max(self.at);
        [r.window(1, now), r.window(KEPT, now), r.decayed_rate(0, now), r.decayed_rate(1, now), r.decayed_rate(2, now)]
    }

    /// Hashes per second over the five last whole minutes (the part of them the record
    /// lived), as of the start of the current minute: a figure that changes once a minute.
    pub fn speed(&self, now: u32) -> f64 {
        let r = self.at(now);
        let now = i64::from(now.max(self.at));
        let start = now - now % i64::from(MINUTE);
        let sum: f64 = r.minutes.iter().take(SPEED_MINUTES).map(|m| m.value()).sum();
        let span = r.lived(start - SPEED_MINUTES as i64 * i64::from(MINUTE), start);
        if span == 0.0 { 0.0 } else { sum / span }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-9)
    }

    #[test]
    fn minute_sums_are_exact_below_2048_and_cover_u64() {
        for v in 0..4096u64 {
            let back = MinuteSum::encode(v).value();
            if v < 2048 {
                assert_eq!(back, v as f64);
            } else {
                assert!(close(back, v as f64, 1.0 / 2048.0), "{v} -> {back}");
            }
        }
        assert!(close(MinuteSum::encode(u64::MAX).value(), u64::MAX as f64, 1.0 / 2048.0));
        assert!(close(MinuteSum::encode(1_000_000_000_000).value(), 1e12, 1.0 / 2048.0));
    }

    proptest! {
        #[test]
        fn a_minute_sum_is_within_2_to_the_minus_11(v in any::<u64>()) {
            let back = MinuteSum::encode(v).value();
            prop_assert!((back - v as f64).abs() <= v as f64 / 2048.0, "{} -> {}", v, back);
        }
    }

    /// A share of `diff` every `every` seconds over `[from, to)`.
    fn steady(r: &mut WorkerRates, from: u32, to: u32, every: u32, diff: u64) {
        for t in (from..to).step_by(every as usize) {
            r.add(diff, t);
        }
    }

    #[test]
    fn a_steady_miner_reads_true_in_every_window_from_the_first_minute() {
        let mut r = WorkerRates::new(37);
        for t in 37..100_000 {
            r.add(1000, t);
            let now = t + 1;
            if now >= 37 + 60 && (now % 997 == 0 || now < 400) {
                for (i, v) in r.rates(now).iter().enumerate() {
                    assert!(close(*v, 1000.0, 1e-3), "t={now} window {i}: {v}");
                }
            }
            if now >= 37 + 120 && now % 60 == 0 {
                assert!(close(r.speed(now), 1000.0, 1e-3), "speed at {now}: {}", r.speed(now));
            }
        }
    }

    #[test]
    fn the_speed_moves_once_a_minute() {
        let mut r = WorkerRates::new(0);
        steady(&mut r, 0, 600, 1, 500);
        let at_600 = r.speed(600);
        assert!(close(at_600, 500.0, 1e-9));
        steady(&mut r, 600, 659, 1, 5000);
        assert_eq!(r.speed(659), at_600, "the minute is not over");
        r.add(5000, 659);
        let next = r.speed(660);
        assert!(close(next, (4.0 * 60.0 * 500.0 + 60.0 * 5000.0) / 300.0, 1e-3), "{next}");
    }

    #[test]
    fn a_young_record_divides_by_its_age() {
        let mut r = WorkerRates::new(0);
        assert_eq!(r.rates(0), [0.0; 5]);
        assert_eq!(r.speed(30), 0.0, "no whole minute yet");
        r.add(6000, 10);
        let v = r.rates(40);
        for (i, x) in v.iter().enumerate() {
            assert!(close(*x, 6000.0 / 40.0, 1e-6), "window {i}: {x}");
        }
    }

    #[test]
    fn large_difficulties_keep_their_precision() {
        // 10^9 per share, a share a second: 6·10^10 per minute, 10^14 per day.
        let mut r = WorkerRates::new(0);
        steady(&mut r, 0, 2 * 86_400, 1, 1_000_000_000);
        for (i, v) in r.rates(2 * 86_400).iter().enumerate() {
            assert!(close(*v, 1e9, 1e-3), "window {i}: {v}");
        }
        assert!(close(r.speed(2 * 86_400), 1e9, 1e-3));
        assert_eq!(r.total(), 2 * 86_400 * 1_000_000_000);
    }

    #[test]
    fn a_record_idle_for_days_reads_zero_in_its_short_windows() {
        let mut r = WorkerRates::new(0);
        steady(&mut r, 0, 3600, 1, 100);
        let v = r.rates(3600 + 3 * 86_400);
        assert_eq!((v[0], v[1], r.speed(3600 + 3 * 86_400)), (0.0, 0.0, 0.0));
        assert!(v[4] < 1.0, "the 24 h figure decayed: {}", v[4]);
        assert_eq!(r.total(), 360_000);
    }

    #[test]
    fn a_read_does_not_change_the_record() {
        let mut r = WorkerRates::new(0);
        steady(&mut r, 0, 200, 1, 10);
        let before = r.clone();
        let _ = (r.rates(5000), r.speed(5000));
        assert_eq!(r, before);
        assert_eq!(r.last_active(), 199);
    }

    #[test]
    fn it_stays_small() {
        assert_eq!(std::mem::size_of::<WorkerRates>(), 56);
    }
}
