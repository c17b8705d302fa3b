//! One miner's hashrate, in 12 bytes: a decaying sum of accepted difficulty (time constant
//! five minutes, the approach of ckpool), corrected for the time the miner has been
//! measured, so a fresh miner's rate is not biased low. Used to balance miners between the
//! pools of a weighted group.

/// Time constant of the decay, in seconds.
const TAU: f32 = 300.0;

/// A decaying hashrate estimate. Time is whole seconds since the proxy started.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateMeter {
    sum: f32,
    at: u32,
    since: u32,
}

impl RateMeter {
    /// Starts measuring at `now`.
    pub fn new(now: u32) -> RateMeter {
        RateMeter { sum: 0.0, at: now, since: now }
    }

    /// An accepted share worth `diff` hashes.
    pub fn add(&mut self, diff: u64, now: u32) {
        self.sum = self.decayed(now) + diff as f32;
        self.at = now.max(self.at);
    }

    fn decayed(&self, now: u32) -> f32 {
        self.sum * (-(now.saturating_sub(self.at) as f32) / TAU).exp()
    }

    /// Hashes per second, or `None` before the first share.
    pub fn rate(&self, now: u32) -> Option<f64> {
        if self.sum <= 0.0 {
            return None;
        }
        // The decayed sum of a steady rate r after t seconds is r * TAU * (1 - e^(-t/TAU)).
        let age = now.saturating_sub(self.since).max(1) as f32;
        let window = TAU * (1.0 - (-age / TAU).exp());
        Some(f64::from(self.decayed(now) / window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_miner_reads_its_rate_early_and_late() {
        let mut m = RateMeter::new(0);
        assert_eq!(m.rate(10), None);
        for t in (10..=600).step_by(10) {
            m.add(10_000, t);
            if t == 60 || t == 600 {
                let r = m.rate(t).unwrap();
                assert!((r - 1000.0).abs() / 1000.0 < 0.2, "t={t}: {r}");
            }
        }
    }

    #[test]
    fn a_miner_that_stops_fades() {
        let mut m = RateMeter::new(0);
        for t in (10..=600).step_by(10) {
            m.add(10_000, t);
        }
        let before = m.rate(600).unwrap();
        let after = m.rate(600 + 900).unwrap();
        assert!(after < before / 10.0, "{before} -> {after}");
    }

    #[test]
    fn it_stays_small() {
        assert_eq!(std::mem::size_of::<RateMeter>(), 12);
    }
}
