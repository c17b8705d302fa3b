//! Counters the loop updates as shares and connections come and go, the hashrate windows
//! of the proxy and its groups (`window`), the per-minute history of the last day
//! (`history`), per-worker aggregates (`workers`) with their own lighter windows
//! (`worker_rates`), a miner's own rate (`meter`) and the pool's verdicts on its shares
//! (`verdicts`). Everything here has
//! a fixed size per record; time is seconds since start, passed in by the loop.

pub mod history;
pub mod meter;
pub mod names;
pub mod verdicts;
pub mod window;
pub mod worker_rates;
pub mod workers;

pub use history::History;
#[cfg(test)]
mod rates_match_windows;

pub use meter::RateMeter;
pub use verdicts::{InvalidRun, Verdicts};
pub use window::HashWindows;
pub use worker_rates::WorkerRates;
pub use workers::{Worker, Workers};

use ringbuf::LocalRb;
use ringbuf::storage::Array;
use ringbuf::traits::Observer;
use std::time::Duration;

/// Pool round-trip samples kept for the median.
const LATENCY_SAMPLES: usize = 128;

/// Global proxy counters.
pub struct Stats {
    /// Shares the pool accepted, plus shares answered locally under a custom difficulty.
    pub accepted: u64,
    /// Shares the pool rejected or that could not reach it.
    pub rejected: u64,
    /// Shares the proxy refused (bad job, nonce, difficulty, duplicate).
    pub invalid: u64,
    /// Accepted shares submitted against the previous job.
    pub expired: u64,
    /// Miner connections accepted since start.
    pub connections: u64,
    /// Miners connected now.
    pub miners: u64,
    /// Peak of `miners`.
    pub max_miners: u64,
    /// The ten best share difficulties reached, highest first.
    pub best: [u64; 10],
    /// Hashrate windows over accepted difficulty.
    pub windows: HashWindows<{ window::FINE }>,
    latencies: LocalRb<Array<u16, LATENCY_SAMPLES>>,
    /// Median pool round trip in ms, refreshed by `tick`.
    pub latency_ms: u32,
    /// One entry per minute for the last 24 hours, sampled by `tick`.
    pub history: History,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new(0)
    }
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats").field("accepted", &self.accepted).field("rejected", &self.rejected).finish_non_exhaustive()
    }
}

impl Stats {
    pub fn new(now: u32) -> Stats {
        Stats {
            accepted: 0,
            rejected: 0,
            invalid: 0,
            expired: 0,
            connections: 0,
            miners: 0,
            max_miners: 0,
            best: [0; 10],
            windows: HashWindows::new(now),
            latencies: LocalRb::default(),
            latency_ms: 0,
            history: History::new(now),
        }
    }

    /// The running totals the history samples.
    pub fn totals(&self) -> history::Totals {
        history::Totals { hashes: self.hashes(), accepted: self.accepted, rejected: self.rejected, miners: self.miners }
    }

    /// Sum of accepted share difficulties.
    pub fn hashes(&self) -> u64 {
        self.windows.total()
    }

    pub fn on_connect(&mut self) {
        self.connections += 1;
        self.miners += 1;
        self.max_miners = self.max_miners.max(self.miners);
    }

    pub fn on_close(&mut self) {
        self.miners = self.miners.saturating_sub(1);
    }

    /// An accepted share worth `diff`, whose hash reached `achieved`; `latency` is the pool
    /// round trip when the pool answered it.
    pub fn on_accept(&mut self, diff: u64, achieved: u64, expired: bool, latency: Option<Duration>) {
        self.accepted += 1;
        self.windows.add(diff);
        if expired {
            self.expired += 1;
        }
        if achieved > self.best[9] {
            let pos = self.best.iter().position(|&b| achieved > b).unwrap_or(9);
            self.best.copy_within(pos..9, pos + 1);
            self.best[pos] = achieved;
        }
        if let Some(l) = latency {
            self.latencies.push_overwrite(l.as_millis().min(u128::from(u16::MAX)) as u16);
        }
    }

    pub fn on_reject(&mut self) {
        self.rejected += 1;
    }

    pub fn on_invalid(&mut self) {
        self.invalid += 1;
    }

    /// Once a second: hashrate samples, the minute history and the latency median.
    pub fn tick(&mut self, now: u32) {
        self.windows.tick(now);
        self.history.tick(now, self.totals());
        if self.latencies.is_empty() {
            return;
        }
        let mut sorted = [0u16; LATENCY_SAMPLES];
        let n = self.latencies.occupied_len();
        for (slot, v) in sorted.iter_mut().zip(self.latencies.iter()) {
            *slot = *v;
        }
        sorted[..n].sort_unstable();
        self.latency_ms = u32::from(sorted[n / 2]);
    }

    /// Average seconds between accepted shares since start.
    pub fn avg_time(&self, uptime: u32) -> u64 {
        u64::from(uptime).checked_div(self.accepted).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_keeps_the_ten_highest_in_order() {
        let mut s = Stats::new(0);
        for d in [5, 1, 9, 3, 7, 11, 2, 8, 6, 4, 10, 12, 1] {
            s.on_accept(1, d, false, None);
        }
        assert_eq!(s.best, [12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
        assert_eq!(s.accepted, 13);
        assert_eq!(s.hashes(), 13);
    }

    #[test]
    fn latency_is_the_median_of_recent_samples() {
        let mut s = Stats::new(0);
        for ms in [10, 500, 20, 30, 40] {
            s.on_accept(1, 1, false, Some(Duration::from_millis(ms)));
        }
        s.tick(1);
        assert_eq!(s.latency_ms, 30);
        for _ in 0..LATENCY_SAMPLES {
            s.on_accept(1, 1, false, Some(Duration::from_millis(7)));
        }
        s.tick(2);
        assert_eq!(s.latency_ms, 7, "old samples fall out");
    }

    #[test]
    fn peak_miners_survives_disconnects() {
        let mut s = Stats::new(0);
        s.on_connect();
        s.on_connect();
        s.on_close();
        assert_eq!((s.miners, s.max_miners, s.connections), (1, 2, 2));
    }
}
