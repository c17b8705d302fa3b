//! The controller of one vardiff miner: its rate estimate and the rules that move its
//! difficulty (the module doc of [`super`] explains them).

use super::{BAND, LOOK_AFTER_SECS, LOOK_AFTER_SHARES, MIN_INTERVAL, SILENT_TARGETS, Step, VardiffConfig};

/// Time constant of the estimate's memory, in seconds.
const TAU: f64 = 300.0;
/// Below this share of the count a miner at target keeps in memory (`TAU / target`), the
/// estimate is young: it looks at every chance, lowers without margin, and aims easy.
const YOUNG: f64 = 0.5;
/// Standard errors the measured time per share must lie beyond the band's lower edge
/// before the difficulty goes up...
const MARGIN_UP: f64 = 1.0;
/// ... and beyond its upper edge before it goes down (0 while the estimate is young).
const MARGIN_DOWN: f64 = 0.5;
/// How far below the measured rate a young estimate aims, in standard errors.
const AIM_EASY: f64 = 0.3;
/// Shares a silence must have missed, at the rate of the last share, to prove the rate
/// fell (a chance of e^-7, 0.1 %, per share for a steady miner).
const SILENCE_PROOF: f64 = 7.0;
/// Standard deviations above the expected count a window must reach to prove the rate
/// rose (about 1 %).
const BURST_PROOF: f64 = 2.33;

/// Vardiff's state for one miner: 16 bytes. Times are kept as the low 16 bits of the
/// seconds since start; every interval measured is under 18 hours (a look at least every
/// two minutes), except a silence, which only stops growing once it passes 18 hours.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Auto {
    /// Shares remembered, each weighted `e^(-age / TAU)`, kept in the time frame of
    /// `since` (a share at `t` adds `e^((t - since) / TAU)`), so a share costs one `exp`.
    count: f32,
    /// Seconds mined per unit of difficulty given (what a rate of one difficulty per
    /// second would have found), decayed the same way, as it stood at `since`.
    exposure: f32,
    /// When the estimate was last brought up to date (the last look).
    since: u16,
    /// When the last share came (the start, before the first).
    last_share: u16,
    /// The difficulty vardiff wants, before the clamps.
    step: Step,
    /// Shares since the last change or regular look, saturating.
    shares: u8,
    /// Seconds from the last change or regular look to `since`, saturating.
    carried: u8,
    /// What the last change was.
    mark: Mark,
}

/// What the last change was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Mark {
    /// A change on measurement, or none yet.
    Measured,
    /// A drop while no share came: silence goes on dropping one target time later, and
    /// the next share is looked at at once.
    Silent,
}

/// Seconds from `then` (low 16 bits of a time) to `now`.
fn ago(now: u32, then: u16) -> u32 {
    u32::from((now as u16).wrapping_sub(then))
}

impl Auto {
    /// A miner starting at `step` at `now`, with nothing measured.
    pub(super) fn new(step: Step, now: u32) -> Auto {
        Auto { count: 0.0, exposure: 0.0, since: now as u16, last_share: now as u16, step, shares: 0, carried: 0, mark: Mark::Measured }
    }

    /// The difficulty vardiff wants, before the clamps.
    pub(super) fn step(&self) -> Step {
        self.step
    }

    /// Counts an accepted share mined at difficulty `diff`. One mined at an easier
    /// difficulty than the current one (a job sent before a raise) counts for the part of
    /// a share it is worth here.
    pub(super) fn share(&mut self, cfg: &VardiffConfig, diff: f64, pool_diff: f64, now: u32) {
        let worth = if diff > 0.0 { (diff / self.given(cfg, pool_diff)).min(1.0) } else { 1.0 };
        self.shares = self.shares.saturating_add(1);
        self.count += worth as f32 * (ago(now, self.since) as f32 / TAU as f32).exp();
        self.last_share = now as u16;
    }

    /// The estimated rate in difficulty per second (hashes per second for CryptoNote),
    /// once a share has been seen.
    pub(super) fn rate(&self, cfg: &VardiffConfig, pool_diff: f64, now: u32) -> Option<f64> {
        let (count, exposure) = self.estimate(cfg, pool_diff, now);
        (count > 0.0 && exposure > 0.0).then(|| count / exposure)
    }

    /// Looks at the rate when a look is due, and moves the step when the rules say so.
    pub(super) fn decide(&mut self, cfg: &VardiffConfig, pool_diff: f64, now: u32) {
        let elapsed = ago(now, self.since);
        if elapsed < MIN_INTERVAL {
            return;
        }
        let target = cfg.target_time.max(1);
        let t = f64::from(target);
        let young = YOUNG * TAU / t;
        let silent = self.mark == Mark::Silent;
        let age = elapsed.saturating_add(u32::from(self.carried));
        let hush = ago(now, self.last_share);
        let regular = self.shares >= LOOK_AFTER_SHARES || age >= LOOK_AFTER_SECS;
        let quiet = if silent { self.shares == 0 && age >= target } else { hush >= SILENT_TARGETS * target };
        let early = (silent && self.shares > 0) || (self.count > 0.0 && f64::from(self.count) < young);
        if !(regular || quiet || early) {
            return;
        }
        let shares = self.shares;
        let given = self.given(cfg, pool_diff);
        let (mut count, mut exposure) = self.fold(cfg, pool_diff, now);
        if count >= young {
            // Does the latest stretch contradict the memory? Then the rate changed: the
            // memory is replaced by what was seen since. Times are whole seconds, so a
            // silence of `hush` may be as short as `hush - 1`: a look just before the
            // shares of its own second must not take that second for a silence.
            let h = f64::from(hush.saturating_sub(1));
            let before = exposure - TAU * (1.0 - (-h / TAU).exp()) / given;
            let window = f64::from(age) / given;
            let expected = count / exposure * window;
            if !silent && before > 0.0 && count / before * h / given > SILENCE_PROOF {
                (count, exposure) = (0.0, h / given);
            } else if f64::from(shares) > expected + BURST_PROOF * expected.sqrt() + 1.0 {
                (count, exposure) = (f64::from(shares), window);
            }
            self.count = count as f32;
            self.exposure = exposure as f32;
        }
        // With no share in memory, one share is the bound: the rate is probably below it.
        let ideal = count.max(1.0) / exposure * t;
        let ratio = super::clamp(cfg, self.step.value()) / ideal;
        // Chance alone moves the estimate by about 1 / sqrt(2 * count): the decayed count
        // carries twice its value in shares' worth of information.
        let error = if count < 1.0 { 0.0 } else { 1.0 / (2.0 * count).sqrt() };
        let margin_down = if count < young { 0.0 } else { MARGIN_DOWN };
        let too_hard = ratio > BAND.1 * (margin_down * error).exp();
        let too_easy = count >= 1.0 && ratio < BAND.0 / (MARGIN_UP * error).exp();
        let aim = if count < young { ideal * (-AIM_EASY / (2.0 * count.max(1.0)).sqrt()).exp() } else { ideal };
        let (lo, hi) = super::range(cfg);
        let next = if too_hard || too_easy { Step::floor(aim).clamp(lo, hi) } else { self.step };
        if next != self.step || regular {
            self.shares = 0;
            self.carried = 0;
        } else {
            self.carried = age.min(u32::from(u8::MAX)) as u8;
        }
        if next != self.step {
            self.mark = if next < self.step && shares == 0 { Mark::Silent } else { Mark::Measured };
        } else if shares > 0 {
            self.mark = Mark::Measured;
        }
        self.step = next;
    }

    /// The pool's difficulty is about to change: what was mined so far was at the old
    /// clamp, so the estimate is brought up to date under it.
    pub(super) fn pool_changing(&mut self, cfg: &VardiffConfig, old_pool_diff: f64, now: u32) {
        let age = ago(now, self.since).saturating_add(u32::from(self.carried));
        self.fold(cfg, old_pool_diff, now);
        self.carried = age.min(u32::from(u8::MAX)) as u8;
    }

    /// The difficulty the miner is mining at.
    fn given(&self, cfg: &VardiffConfig, pool_diff: f64) -> f64 {
        super::clamp(cfg, self.step.value()).min(pool_diff).max(f64::MIN_POSITIVE)
    }

    /// The decayed count and exposure at `now`, the time since `since` mined at the
    /// difficulty given on a pool at `pool_diff`.
    fn estimate(&self, cfg: &VardiffConfig, pool_diff: f64, now: u32) -> (f64, f64) {
        let f = (-f64::from(ago(now, self.since)) / TAU).exp();
        let count = f64::from(self.count) * f;
        let exposure = f64::from(self.exposure) * f + TAU * (1.0 - f) / self.given(cfg, pool_diff);
        (count, exposure)
    }

    /// Brings the estimate up to `now` and makes `now` its time frame.
    fn fold(&mut self, cfg: &VardiffConfig, pool_diff: f64, now: u32) -> (f64, f64) {
        let (count, exposure) = self.estimate(cfg, pool_diff, now);
        self.since = now as u16;
        self.count = count as f32;
        self.exposure = exposure as f32;
        (count, exposure)
    }
}
