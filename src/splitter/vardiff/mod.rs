//! Per-miner variable difficulty ("vardiff") on any pool, decided without sockets or
//! clocks: every call takes `now`, whole seconds since the proxy started.
//!
//! ## What it does
//!
//! A pool gives one difficulty to our whole upstream connection; a rig that finds a
//! share of it once in twenty minutes looks dead, and a fast one floods us. Vardiff gives
//! each miner its own difficulty so that it finds a share about every `target-time`
//! seconds. The pool's difficulty is the ceiling: a miner never gets a harder target
//! than the pool's, so every share the pool wants still reaches it, and shares between
//! the miner's target and the pool's are counted and answered by the proxy (the loop and
//! the mapper do that; this module only decides the difficulty).
//!
//! ## The ladder
//!
//! Vardiff only hands out steps of one ladder (powers of 2^(1/4), 19 % apart, see
//! [`Step`]), clamped to the port's `min` and `max` and to the pool's difficulty. A job
//! is encoded once per difficulty in use, so the number of steps the miners of one
//! upstream use, not the number of miners, bounds the encodings of a job.
//!
//! ## The measurement
//!
//! The rate is estimated from two decaying sums with a time constant of five minutes (as
//! ckpool does): the shares seen, and the exposure, the seconds mined divided by the
//! difficulty they were mined at. Their ratio is the rate in difficulty per second. It
//! is the best estimate a Poisson count allows when the difficulty changes, and it says
//! something even before the first share: with no share, one share in the exposure is an
//! upper bound on the rate. The miner's `RateMeter` is not used: it sums the difficulty
//! of each share over time, so after a miner has come down from a hard start, one share
//! found at the hard difficulty weighs as much as forty easy ones, and the estimate is off
//! by a factor of several exactly when vardiff needs it (the simulation shows it).
//!
//! ## The rules
//!
//! - A look at the rate is due 24 shares or 120 seconds after the last change or look
//!   ("regular" looks), and never sooner than 15 seconds after the last look.
//! - The time per share the estimate predicts at the current difficulty is compared with
//!   the band of 0.7 to 1.4 times the target. Outside it, the difficulty becomes the one
//!   that gives the target at the measured rate, rounded down to the ladder.
//! - With about ten shares in five minutes (a target of 30 seconds), chance alone moves
//!   the estimate by some 22 %, so a miner at target would cross the band edges a few
//!   times an hour. A change therefore needs the time per share beyond the band by more
//!   than chance explains: one standard error (1 / sqrt(2 x count)) to go up, half of one
//!   to go down. Going down is the cheaper mistake: more shares arrive and correct it.
//! - Silence: with no share for three target times, the difficulty drops to what the
//!   silence proves (one share in what was mined is the most the rate can be), and
//!   drops again every target time while nothing comes. The first share after such a
//!   drop is looked at at once. This is the fast rule for long silences: each drop
//!   divides by two to three, so a miner forty times too hard is at target after three
//!   minutes even when no share comes (40, 12.4, 5.2, 2.6, 1.1 times the target
//!   difficulty at 0, 90, 120, 150 and 180 seconds); halving every three target times
//!   would take eight minutes.
//! - A young estimate (fewer than half the shares a miner at target keeps in memory) is
//!   looked at every 15 seconds, may go down without margin, and aims a little easy
//!   (by 0.3 standard errors): a new miner needs shares to be measured, and an easy
//!   difficulty gives them soonest.
//! - A rate that changes is noticed: a silence that a miner at its last rate would have
//!   broken seven times over, or a window with far more shares than the memory predicts,
//!   replaces the memory by what was seen since.
//!
//! ## How the loop uses it
//!
//! - At login: [`MinerDiff::login`] (a `WALLET+diff` or `custom-diff` fixes the
//!   difficulty and turns vardiff off for that miner).
//! - Building a job for a miner: [`MinerDiff::difficulty`] (or
//!   [`MinerDiff::difficulty_cryptonote`]) with the job's pool difficulty.
//! - On each accepted share (local or accepted by the pool): [`MinerDiff::on_share`].
//! - Once a second (or less often): [`MinerDiff::tick`].
//! - When the pool's difficulty changes: [`MinerDiff::pool_changed`].
//!
//! `on_share`, `tick` and `pool_changed` return the new difficulty when it changed. Give
//! it to the miner at once, or the measurement runs on a difficulty the miner does not
//! have: in stratum v1 with `mining.set_difficulty` followed by the current job again; in
//! CryptoNote by sending the current job again with the new target under a new job id
//! (XMRig before the target joined its job comparison takes the same id and blob for a
//! duplicate job and reconnects). Shares still in flight for jobs sent before are judged
//! by the difficulty of their job, which the job (or the miner's record of its last two
//! jobs) must remember; `on_share` takes that difficulty.

mod auto;
mod config;
mod ladder;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use auto::Auto;
pub use config::{VardiffConfig, parse_vardiff};
pub use ladder::{PER_DOUBLING, Step, to_cryptonote};

/// No look sooner than this after the last one, in seconds.
pub const MIN_INTERVAL: u32 = 15;
/// A regular look is due this long after the last change or regular look, in seconds...
pub const LOOK_AFTER_SECS: u32 = 120;
/// ... or after this many shares, whichever comes first.
pub const LOOK_AFTER_SHARES: u8 = 24;
/// The time per share may lie within these multiples of the target without a change.
pub const BAND: (f64, f64) = (0.7, 1.4);
/// Silence (no share) for this many target times starts the drops.
pub const SILENT_TARGETS: u32 = 3;

/// How a miner's difficulty is decided: 16 bytes. The port's [`VardiffConfig`] is passed
/// to each call rather than kept per miner.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MinerDiff {
    /// The pool's difficulty: vardiff is off for the port and no difficulty was asked.
    Pool,
    /// A fixed difficulty (`WALLET+diff`, `custom-diff`), capped by the pool's. Vardiff
    /// never moves it.
    Fixed(f64),
    /// Vardiff decides.
    Auto(Auto),
}

impl MinerDiff {
    /// A miner's difficulty at login: fixed when it asked for one (`custom` > 0, from
    /// `WALLET+diff` or the global `custom-diff`), vardiff when the port has it on, else
    /// the pool's.
    pub fn login(cfg: &VardiffConfig, custom: f64, pool_diff: f64, now: u32) -> MinerDiff {
        if custom > 0.0 {
            MinerDiff::Fixed(custom)
        } else if cfg.enabled {
            MinerDiff::auto(cfg, pool_diff, now)
        } else {
            MinerDiff::Pool
        }
    }

    /// Vardiff from `now`, starting near `start`, or at the pool's difficulty when
    /// `start` is 0.
    pub fn auto(cfg: &VardiffConfig, pool_diff: f64, now: u32) -> MinerDiff {
        let (lo, hi) = range(cfg);
        // At the pool's difficulty: the step at or above it, which the pool's clamp takes
        // down to exactly the pool's.
        let step = if cfg.start > 0.0 { Step::nearest(cfg.start) } else { Step::ceil(pool_diff) };
        MinerDiff::Auto(Auto::new(step.clamp(lo, hi), now))
    }

    /// True when vardiff decides this miner's difficulty.
    pub fn is_auto(&self) -> bool {
        matches!(self, MinerDiff::Auto(_))
    }

    /// The ladder step vardiff wants, before the clamps (`None` unless vardiff decides).
    pub fn step(&self) -> Option<Step> {
        match self {
            MinerDiff::Auto(a) => Some(a.step()),
            _ => None,
        }
    }

    /// The difficulty of the miner's next job on a pool at `pool_diff`: never above the
    /// pool's.
    pub fn difficulty(&self, cfg: &VardiffConfig, pool_diff: f64) -> f64 {
        match self {
            MinerDiff::Pool => pool_diff,
            MinerDiff::Fixed(d) => d.min(pool_diff),
            MinerDiff::Auto(a) => clamp(cfg, a.step().value()).min(pool_diff),
        }
    }

    /// [`difficulty`](Self::difficulty) for a CryptoNote pool, whose difficulties are
    /// whole numbers.
    pub fn difficulty_cryptonote(&self, cfg: &VardiffConfig, pool_diff: u64) -> u64 {
        match self {
            MinerDiff::Pool => pool_diff,
            _ => to_cryptonote(self.difficulty(cfg, pool_diff as f64)).min(pool_diff.max(1)),
        }
    }

    /// Vardiff's estimate of the miner's rate in difficulty per second (hashes per second
    /// for CryptoNote), once it has seen a share.
    pub fn rate(&self, cfg: &VardiffConfig, pool_diff: f64, now: u32) -> Option<f64> {
        match self {
            MinerDiff::Auto(a) => a.rate(cfg, pool_diff, now),
            _ => None,
        }
    }

    /// An accepted share at `now`, mined at difficulty `diff` (its job's). Returns the
    /// miner's new difficulty when it changes.
    pub fn on_share(&mut self, cfg: &VardiffConfig, diff: f64, pool_diff: f64, now: u32) -> Option<f64> {
        let before = self.difficulty(cfg, pool_diff);
        let MinerDiff::Auto(a) = self else { return None };
        a.share(cfg, diff, pool_diff, now);
        a.decide(cfg, pool_diff, now);
        Some(self.difficulty(cfg, pool_diff)).filter(|&after| after != before)
    }

    /// The loop's periodic call, once a second or less often: the looks that fall due by
    /// time and the drops of a silent miner. Returns the new difficulty when it changes.
    pub fn tick(&mut self, cfg: &VardiffConfig, pool_diff: f64, now: u32) -> Option<f64> {
        let before = self.difficulty(cfg, pool_diff);
        let MinerDiff::Auto(a) = self else { return None };
        a.decide(cfg, pool_diff, now);
        Some(self.difficulty(cfg, pool_diff)).filter(|&after| after != before)
    }

    /// The pool's difficulty moved from `old` to `new` at `now`. Returns the miner's new
    /// difficulty when it moves with it: at once down to `new` when it was above, or back
    /// up towards vardiff's choice when `old` held it down.
    pub fn pool_changed(&mut self, cfg: &VardiffConfig, old: f64, new: f64, now: u32) -> Option<f64> {
        if let MinerDiff::Auto(a) = self {
            a.pool_changing(cfg, old, now);
        }
        let (before, after) = (self.difficulty(cfg, old), self.difficulty(cfg, new));
        (before != after).then_some(after)
    }
}

/// The steps vardiff may want: from the one at or below `min` to the one at or above
/// `max` (the clamp then gives exactly `min` or `max`).
fn range(cfg: &VardiffConfig) -> (Step, Step) {
    let hi = if cfg.max > 0.0 { Step::ceil(cfg.max) } else { Step::HIGHEST };
    (Step::floor(cfg.min), hi)
}

/// A difficulty within the port's `min` and `max`.
fn clamp(cfg: &VardiffConfig, d: f64) -> f64 {
    let d = d.max(cfg.min);
    if cfg.max > 0.0 { d.min(cfg.max) } else { d }
}
