//! What quarantine knows of one rig's last shares, in 4 bytes each.
//!
//! - [`Verdicts`]: the pool's verdicts, one bit each: how many of its last N pool-answered
//!   shares were rejected. Verdicts not yet seen are zeros, which count as accepted, so no
//!   count of them is needed.
//! - [`InvalidRun`]: shares the proxy's own checks refused (low difficulty, stale,
//!   duplicate, malformed) with hardly a good one between them. Each refused share adds
//!   one and each good share halves the count: a rig on the wrong algorithm gets to N in
//!   a row, one that slips a good share in among every N/2 bad ones gets there as well,
//!   while a healthy rig's few stale shares after a new job are halved away.

/// The last (up to 32) verdicts, newest in the low bit; 1 = rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verdicts {
    bits: u32,
}

impl Verdicts {
    /// One more verdict.
    pub fn record(&mut self, rejected: bool) {
        self.bits = (self.bits << 1) | u32::from(rejected);
    }

    /// Rejects among the last `window` (at most 32) verdicts.
    pub fn rejects(&self, window: u8) -> u32 {
        let n = u32::from(window.min(32));
        let mask = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
        (self.bits & mask).count_ones()
    }

    /// Forget everything (a fresh start on a new connection).
    pub fn clear(&mut self) {
        *self = Verdicts::default();
    }
}

/// Shares refused by the proxy's checks, with hardly a good one between them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvalidRun(u32);

impl InvalidRun {
    /// One more refused share; the count now.
    pub fn refused(&mut self) -> u32 {
        self.0 = self.0.saturating_add(1);
        self.0
    }

    /// A share that passed the checks.
    pub fn good(&mut self) {
        self.0 /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shares until the count reaches `n`, for a rig that sends `bad` refused shares per
    /// good one (none if it never does within 100,000 shares).
    fn shares_to_reach(n: u32, bad: u32) -> Option<u32> {
        let mut run = InvalidRun::default();
        for i in 1..=100_000u32 {
            if i % (bad + 1) == 0 {
                run.good();
            } else if run.refused() >= n {
                return Some(i);
            }
        }
        None
    }

    #[test]
    fn an_invalid_run_counts_refusals_in_a_row_and_nearly_in_a_row() {
        assert_eq!(shares_to_reach(100, u32::MAX - 1), Some(100), "all bad: 100 in a row");
        assert!(shares_to_reach(100, 60).is_some(), "one good share in 61 does not hide it");
        assert!(shares_to_reach(100, 49).is_none(), "98 % bad stays under 100");
        assert!(shares_to_reach(100, 9).is_none(), "a rig with 10 % good shares is kept");
        assert!(shares_to_reach(100, 1).is_none(), "half of them stale: kept");
        let mut run = InvalidRun::default();
        for _ in 0..99 {
            run.refused();
        }
        run.good();
        assert_eq!(run.refused(), 50, "a good share halves it");
    }

    #[test]
    fn counts_rejects_in_the_window_only() {
        let mut v = Verdicts::default();
        for _ in 0..5 {
            v.record(true);
        }
        for _ in 0..20 {
            v.record(false);
        }
        assert_eq!(v.rejects(20), 0, "the five rejects fell out of the last 20");
        assert_eq!(v.rejects(25), 5);
        v.record(true);
        assert_eq!(v.rejects(20), 1);
        v.clear();
        assert_eq!(v.rejects(32), 0);
        let mut w = Verdicts::default();
        w.record(true);
        assert_eq!(w.rejects(20), 1, "early on, every verdict seen counts");
    }
}
