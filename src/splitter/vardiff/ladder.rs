//! The difficulty ladder: the only difficulties vardiff hands out (besides the clamps).
//!
//! Step `i` is worth `2^((i - 80) / 4)`: four steps per doubling, each 2^(1/4) ≈ 1.189
//! times the one below (18.9 %, so a difficulty picked from a measured rate is never more
//! than 9 % from it). Step 80 is difficulty 1; step 0 is 2^-20 ≈ 9.5e-7 (below what
//! cpuminer can target) and step 255 is 2^43.75 ≈ 1.5e13 (above any pool difficulty
//! seen for either dialect), so a `u8` names every step.
//!
//! Why powers of 2^(1/4) and not a decimal series (1-1.2-1.5-2-2.5-3-4-5-6-8): the steps
//! are all the same size (a decimal series has steps of 20 % and 33 %, so its worst case
//! decides the hysteresis), halving is "four steps down", and a value is a mantissa from
//! a table of four times a power of two, which is exact in floating point: the same step
//! is the same bits on every machine, so a job's cached encodings can be keyed by it.
//! The cost: four steps per octave, about 80 between 1,000 and 10^9; what bounds the
//! encodings per job is how many steps the miners of one upstream actually use.

/// `2^(k/4)` for k = 0..4, the mantissas of the ladder.
const ROOTS: [f64; 4] = [1.0, 1.189_207_115_002_721, std::f64::consts::SQRT_2, 1.681_792_830_507_429];

/// The step worth difficulty 1.
const ONE: i32 = 80;

/// Steps per doubling of the difficulty.
pub const PER_DOUBLING: u8 = 4;

/// One step of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Step(pub u8);

impl Step {
    /// The easiest step, 2^-20.
    pub const LOWEST: Step = Step(0);
    /// The hardest step, 2^43.75.
    pub const HIGHEST: Step = Step(u8::MAX);

    /// The difficulty of this step.
    pub fn value(self) -> f64 {
        let k = i32::from(self.0) - ONE;
        // Scaling by a power of two is exact, so every step has one exact value.
        ROOTS[k.rem_euclid(4) as usize] * 2f64.powi(k.div_euclid(4))
    }

    /// The step closest to `diff` (closest by ratio), within the ladder.
    pub fn nearest(diff: f64) -> Step {
        if diff.is_nan() || diff <= 0.0 {
            return Step::LOWEST;
        }
        let k = (4.0 * diff.log2()).round() + f64::from(ONE);
        Step(k.clamp(0.0, 255.0) as u8)
    }

    /// The hardest step not above `diff` (the lowest step when `diff` is below the ladder).
    pub fn floor(diff: f64) -> Step {
        let mut s = Step::nearest(diff);
        while s > Step::LOWEST && s.value() > diff {
            s.0 -= 1;
        }
        while s < Step::HIGHEST && Step(s.0 + 1).value() <= diff {
            s.0 += 1;
        }
        s
    }

    /// The easiest step not below `diff` (the highest step when `diff` is above the ladder).
    pub fn ceil(diff: f64) -> Step {
        let mut s = Step::nearest(diff);
        while s < Step::HIGHEST && s.value() < diff {
            s.0 += 1;
        }
        while s > Step::LOWEST && Step(s.0 - 1).value() >= diff {
            s.0 -= 1;
        }
        s
    }

    /// The step whose value is exactly `diff`, if there is one: how a mapper keying its
    /// encodings by step recognises a ladder difficulty among clamps and custom ones.
    pub fn exact(diff: f64) -> Option<Step> {
        let s = Step::nearest(diff);
        (s.value() == diff).then_some(s)
    }

    /// The step whose CryptoNote (rounded) value is `diff`, if there is one.
    pub fn exact_cryptonote(diff: u64) -> Option<Step> {
        let s = Step::nearest(diff as f64);
        (to_cryptonote(s.value()) == diff).then_some(s)
    }

    /// `n` steps harder, saturating at the top.
    pub fn up(self, n: u8) -> Step {
        Step(self.0.saturating_add(n))
    }

    /// `n` steps easier, saturating at the bottom.
    pub fn down(self, n: u8) -> Step {
        Step(self.0.saturating_sub(n))
    }
}

/// A difficulty as CryptoNote sends it: a whole number, at least 1. Rounding never takes a
/// value above a whole-number clamp it was below (the pool's difficulty is an integer).
pub fn to_cryptonote(diff: f64) -> u64 {
    if diff.is_nan() {
        return 1;
    }
    // `as` saturates at u64::MAX for huge values.
    diff.round().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_powers_of_the_fourth_root_of_two() {
        assert_eq!(Step(80).value(), 1.0);
        assert_eq!(Step(84).value(), 2.0);
        assert_eq!(Step(76).value(), 0.5);
        assert_eq!(Step(120).value(), 1024.0);
        assert_eq!(Step(0).value(), 2f64.powi(-20));
        assert!((Step(255).value() - 2f64.powf(43.75)).abs() / Step(255).value() < 1e-15);
        for i in 0..255u8 {
            let r = Step(i + 1).value() / Step(i).value();
            assert!((r - 2f64.powf(0.25)).abs() < 1e-12, "step {i}: {r}");
            assert!(r <= 1.2, "no more than 20 % apart");
        }
    }

    #[test]
    fn every_step_maps_back_to_itself() {
        for i in 0..=255u8 {
            let s = Step(i);
            let v = s.value();
            assert_eq!((Step::nearest(v), Step::floor(v), Step::ceil(v), Step::exact(v)), (s, s, s, Some(s)), "step {i}");
        }
    }

    #[test]
    fn nearest_floor_and_ceil_between_steps() {
        // 1000 lies between 861.1 (step 119) and 1024 (step 120), nearer 1024 by ratio.
        assert_eq!(Step::nearest(1000.0), Step(120));
        assert_eq!(Step::floor(1000.0), Step(119));
        assert_eq!(Step::ceil(1000.0), Step(120));
        assert_eq!(Step::nearest(0.004), Step(48)); // 2^-8 = 0.0039
        assert_eq!(Step::exact(1000.0), None);
        // Off the ladder at both ends, and nonsense.
        assert_eq!((Step::floor(1e-9), Step::ceil(1e-9)), (Step::LOWEST, Step::LOWEST));
        assert_eq!((Step::floor(1e20), Step::ceil(1e20)), (Step::HIGHEST, Step::HIGHEST));
        assert_eq!((Step::nearest(0.0), Step::nearest(-1.0), Step::nearest(f64::NAN)), (Step::LOWEST, Step::LOWEST, Step::LOWEST));
        assert_eq!((Step(250).up(10), Step(3).down(10), Step(100).down(4)), (Step::HIGHEST, Step::LOWEST, Step(96)));
    }

    #[test]
    fn cryptonote_values_are_whole_and_distinct_above_ten() {
        assert_eq!(to_cryptonote(Step(121).value()), 1218); // 1217.75
        assert_eq!((to_cryptonote(0.004), to_cryptonote(f64::NAN), to_cryptonote(1e30)), (1, 1, u64::MAX));
        let mut last = 0;
        for i in Step::nearest(10.0).0..=255 {
            let d = to_cryptonote(Step(i).value());
            assert!(d > last, "step {i}");
            assert_eq!(Step::exact_cryptonote(d), Some(Step(i)));
            last = d;
        }
        assert_eq!(Step::exact_cryptonote(1000), None);
    }
}
