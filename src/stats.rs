//! Counters the loop updates as shares and connections come and go.

/// Global proxy counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Shares the pool accepted, plus shares answered locally under a custom difficulty.
    pub accepted: u64,
    /// Shares the pool rejected or that could not reach it.
    pub rejected: u64,
    /// Shares the proxy refused (bad job, nonce, difficulty, duplicate).
    pub invalid: u64,
    /// Accepted shares submitted against the previous job.
    pub expired: u64,
    /// Sum of accepted share difficulties.
    pub hashes: u64,
    /// Miner connections accepted since start.
    pub connections: u64,
    /// Miners connected now.
    pub miners: u64,
    /// Peak of `miners`.
    pub max_miners: u64,
}

impl Stats {
    pub fn on_connect(&mut self) {
        self.connections += 1;
        self.miners += 1;
        self.max_miners = self.max_miners.max(self.miners);
    }

    pub fn on_close(&mut self) {
        self.miners = self.miners.saturating_sub(1);
    }

    pub fn on_accept(&mut self, diff: u64, expired: bool) {
        self.accepted += 1;
        self.hashes += diff;
        if expired {
            self.expired += 1;
        }
    }

    pub fn on_reject(&mut self) {
        self.rejected += 1;
    }

    pub fn on_invalid(&mut self) {
        self.invalid += 1;
    }
}
