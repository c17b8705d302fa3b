//! The pool's verdicts on one rig's last shares, one bit each, in 4 bytes: how many of
//! its last N pool-answered shares were rejected (for quarantine). Verdicts not yet seen
//! are zeros, which count as accepted, so no count of them is needed.

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

#[cfg(test)]
mod tests {
    use super::*;

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
