//! Simulated miners for the tests: Poisson share arrivals from a seeded generator, and
//! the controller called as the loop calls it (a tick at each whole second, then the
//! shares found during that second).

use super::{MinerDiff, VardiffConfig};

/// SplitMix64: tiny, seedable, good enough to draw share times.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Exponentially distributed with mean `mean`.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -self.unit().ln() * mean
    }

    /// Log-uniform between `lo` and `hi`.
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo * (hi / lo).powf(self.unit())
    }
}

/// One simulated miner.
#[derive(Debug, Clone)]
pub(super) struct SimMiner {
    /// Hashes per second, which is difficulty per second for CryptoNote.
    pub hashrate: f64,
    pub diff: MinerDiff,
    /// The difficulty of its current job.
    pub current: f64,
    /// When its next share is found (continuous seconds).
    next_share: f64,
    pub shares: u32,
    /// When the difficulty changed.
    pub changes: Vec<u32>,
}

impl SimMiner {
    /// A miner logging in at second 0 with vardiff.
    pub fn new(cfg: &VardiffConfig, pool_diff: f64, hashrate: f64, rng: &mut Rng) -> SimMiner {
        let diff = MinerDiff::auto(cfg, pool_diff, 0);
        SimMiner::with(diff, 0, cfg, pool_diff, hashrate, rng)
    }

    /// A miner with `diff`, logging in at second `start`.
    pub fn with(diff: MinerDiff, start: u32, cfg: &VardiffConfig, pool_diff: f64, hashrate: f64, rng: &mut Rng) -> SimMiner {
        let current = diff.difficulty(cfg, pool_diff);
        let next_share = f64::from(start) + rng.exp(current / hashrate);
        SimMiner { hashrate, diff, current, next_share, shares: 0, changes: Vec::new() }
    }

    /// Second `t` of the simulation: the tick, then the shares found before `t + 1`. The
    /// new difficulty applies at once (the loop re-sends the job); share finding is
    /// memoryless, so the next share is drawn again from the moment of the change.
    pub fn second(&mut self, t: u32, cfg: &VardiffConfig, pool_diff: f64, rng: &mut Rng) {
        if let Some(d) = self.diff.tick(cfg, pool_diff, t) {
            self.apply(d, t, f64::from(t), rng);
        }
        let end = f64::from(t + 1);
        while self.next_share < end {
            let at = self.next_share;
            self.shares += 1;
            match self.diff.on_share(cfg, self.current, pool_diff, t) {
                Some(d) => self.apply(d, t, at, rng),
                None => self.next_share = at + rng.exp(self.current / self.hashrate),
            }
        }
    }

    /// The pool's difficulty moves at second `t`.
    pub fn pool_changed(&mut self, t: u32, cfg: &VardiffConfig, old: f64, new: f64, rng: &mut Rng) {
        if let Some(d) = self.diff.pool_changed(cfg, old, new, t) {
            self.apply(d, t, f64::from(t), rng);
        }
    }

    fn apply(&mut self, diff: f64, t: u32, at: f64, rng: &mut Rng) {
        self.current = diff;
        self.changes.push(t);
        self.next_share = at + rng.exp(diff / self.hashrate);
    }

    /// Time per share at the current difficulty over the target.
    pub fn ratio(&self, cfg: &VardiffConfig) -> f64 {
        self.current / (self.hashrate * f64::from(cfg.target_time))
    }
}

/// The time per share over the target, second by second, of one miner.
pub(super) fn trace(cfg: &VardiffConfig, pool_diff: f64, hashrate: f64, secs: u32, seed: u64) -> (Vec<f64>, SimMiner) {
    let mut rng = Rng::new(seed);
    let mut m = SimMiner::new(cfg, pool_diff, hashrate, &mut rng);
    let ratios = (0..secs)
        .map(|t| {
            m.second(t, cfg, pool_diff, &mut rng);
            m.ratio(cfg)
        })
        .collect();
    (ratios, m)
}
