//! Where share and connection outcomes are counted: global stats, the miner's worker
//! record and hashrate, its group and pool, and the share and access logs. One place, so
//! every path (answered locally, answered by the pool, failed with the link) counts the
//! same way. The counting itself (`Books`) needs no socket and is tested below.

use super::Proxy;
use crate::logs::{Topic, unix_ms};
use crate::pool::Groups;
use crate::splitter::Share;
use crate::stats::{RateMeter, Stats, Workers};
use crate::stratum::StratumError;
use crate::{GroupId, MinerId, UpstreamId};
use std::time::{Duration, Instant};

/// Everything a share outcome is counted in.
pub(super) struct Books<'a> {
    pub stats: &'a mut Stats,
    pub workers: &'a mut Workers,
    pub groups: &'a mut Groups,
}

/// Who a share is credited to.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Credit {
    pub worker: Option<usize>,
    /// The group and the index of the pool in it that the share was mined for.
    pub pool: Option<(GroupId, usize)>,
}

impl Books<'_> {
    /// An accepted share: counted globally, for the worker, the group and pool, and the
    /// miner's own hashrate (when it is still connected).
    pub fn accepted(
        &mut self,
        to: Credit,
        share: &Share,
        latency: Option<Duration>,
        rate: Option<&mut RateMeter>,
        clock: u32,
        unix_ms: u64,
    ) {
        self.stats.on_accept(share.diff, share.achieved, share.expired, latency);
        if let Some(w) = to.worker {
            self.workers.on_accept(w, share.diff, unix_ms, clock);
        }
        if let Some((group, pool)) = to.pool
            && let Some(g) = self.groups.get_mut(group)
        {
            g.on_accept(Some(pool), share.diff);
        }
        if let Some(r) = rate {
            r.add(share.diff, clock);
        }
    }

    /// A share refused by the proxy's checks (invalid) or by the pool (rejected).
    pub fn refused(&mut self, worker: Option<usize>, diff: u64, err: &StratumError) {
        let invalid = err.is_invalid_share();
        if invalid {
            self.stats.on_invalid();
        } else {
            self.stats.on_reject();
        }
        if let Some(w) = worker {
            self.workers.on_reject(w, diff, invalid);
        }
    }
}

impl Proxy {
    /// Seconds since start: the clock of the hashrate windows.
    pub(super) fn clock(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.started).as_secs().min(u64::from(u32::MAX)) as u32
    }

    /// A share mined on upstream `uid`, accepted by the pool or locally below the pool's
    /// target.
    pub(super) fn share_accepted(
        &mut self,
        uid: UpstreamId,
        miner: Option<MinerId>,
        worker: Option<usize>,
        share: &Share,
        latency: Option<Duration>,
        now: Instant,
    ) {
        let clock = self.clock(now);
        let pool = self.pool_of(uid).map(|(g, i, _)| (g, i));
        let mut m = miner.and_then(|m| self.miners.get_mut(m.0));
        if let Some(i) = m.as_mut().and_then(|m| m.identity.as_deref_mut()) {
            i.invalid_run.good();
        }
        let rate = m.map(|m| &mut m.rate);
        let mut books = Books { stats: &mut self.stats, workers: &mut self.workers, groups: &mut self.groups };
        books.accepted(Credit { worker, pool }, share, latency, rate, clock, unix_ms());
        if let Some(id) = miner {
            self.vardiff_share(id, uid, share.diff, now);
        }
        // Per-share text only when someone reads it: this runs thousands of times a second.
        if !self.share_log.is_enabled() && !log::log_enabled!(log::Level::Debug) {
            return;
        }
        let (user, peer) = self.who(miner);
        log::debug!("share accepted from {peer} ({user}) diff {} latency {:?}", share.diff, latency.unwrap_or_default());
        if self.share_log.is_enabled() {
            let ms = latency.unwrap_or_default().as_millis();
            self.share_log.line(format_args!("ACCEPT {user} {peer} diff={} latency={ms}ms", share.diff));
        }
    }

    /// A share refused by the proxy's checks (invalid) or by the pool (rejected). The share
    /// log gets a line for every one; the console a line per reason now and then (a pool
    /// outage refuses every share of every rig alike, see `logs::limiter`).
    pub(super) fn share_refused(&mut self, miner: Option<MinerId>, worker: Option<usize>, diff: u64, err: &StratumError, now: Instant) {
        let mut books = Books { stats: &mut self.stats, workers: &mut self.workers, groups: &mut self.groups };
        books.refused(worker, diff, err);
        let invalid = err.is_invalid_share();
        if invalid && let Some(id) = miner {
            self.invalid_share(id, err, now);
        }
        if !self.share_log.is_enabled() && !log::log_enabled!(if invalid { log::Level::Debug } else { Topic::ShareRejected.level() }) {
            return;
        }
        let m = miner.and_then(|m| self.miners.get(m.0));
        let (user, peer) = (m.map_or("-", |m| m.user()), Peer(m.map(|m| m.peer)));
        if invalid {
            log::debug!("share from {peer} ({user}) refused: {err}");
        } else if self.log_limiter.admit(Topic::ShareRejected, err.message(), format_args!("{peer} ({user})"), now) {
            log::info!("share from {peer} ({user}) rejected: {err}");
        }
        if self.share_log.is_enabled() {
            self.share_log.line(format_args!("REJECT {user} {peer} reason=\"{}\"", err.message().replace('"', "'")));
        }
    }

    /// User and address of a miner for log lines ("-" once it is gone).
    fn who(&self, miner: Option<MinerId>) -> (String, String) {
        match miner.and_then(|m| self.miners.get(m.0)) {
            Some(m) => (m.user().to_string(), m.peer.to_string()),
            None => ("-".into(), "-".into()),
        }
    }

    /// Access log line for a login.
    pub(super) fn log_connect(&mut self, id: MinerId) {
        if !self.access_log.is_enabled() {
            return;
        }
        let Some(m) = self.miners.get(id.0) else { return };
        let agent = m.identity.as_ref().map(|i| &*i.agent).unwrap_or("-");
        let line = format!("CONNECT {} {} {}", m.peer, m.user(), agent.replace(['\n', '\r'], " "));
        self.access_log.line(format_args!("{line}"));
    }

    /// Access log line for a miner that had logged in and is now gone.
    pub(super) fn log_close(&mut self, peer: std::net::SocketAddr, user: &str, rx: u64, tx: u64) {
        self.access_log.line(format_args!("CLOSE {peer} {user} rx={rx} tx={tx}"));
    }
}

/// A miner's address in log lines, "-" once it is gone.
struct Peer(Option<std::net::SocketAddr>);

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PoolConfig, WorkersMode};

    fn share(diff: u64) -> Share {
        Share { achieved: diff * 2, diff, expired: false, forward: true }
    }

    #[test]
    fn an_accepted_share_counts_everywhere_it_belongs() {
        let pools = [
            PoolConfig { weight: Some(7), group: "w".into(), ..PoolConfig::new("a:1") },
            PoolConfig { weight: Some(3), group: "w".into(), ..PoolConfig::new("b:1") },
        ];
        let (mut stats, mut workers, mut groups) = (Stats::new(0), Workers::new(WorkersMode::RigId, false), Groups::from_pools(&pools, 0));
        let w = workers.attach("rig1", "WALLET", "10.0.0.1".parse().unwrap(), 0);
        let g = groups.find("w").unwrap();
        let mut rate = RateMeter::new(0);
        let mut books = Books { stats: &mut stats, workers: &mut workers, groups: &mut groups };
        let to = Credit { worker: w, pool: Some((g, 1)) };
        books.accepted(to, &share(1000), Some(Duration::from_millis(12)), Some(&mut rate), 10, 1_700_000_000_000);
        books.accepted(Credit { worker: w, pool: None }, &share(500), None, None, 11, 1_700_000_001_000);
        assert_eq!((stats.accepted, stats.hashes(), stats.best[0]), (2, 1500, 2000));
        let rec = workers.iter().next().unwrap();
        assert_eq!((rec.accepted, rec.sent_diff, rec.last_share_ms), (2, 1500, 1_700_000_001_000));
        let group = groups.get(g).unwrap();
        assert_eq!((group.hashrate.total(), group.meters[0].total(), group.meters[1].total()), (1000, 0, 1000));
        assert!(rate.rate(10).is_some_and(|r| r > 0.0), "the miner's own rate moved");
    }

    #[test]
    fn refusals_split_into_invalid_and_rejected() {
        let (mut stats, mut workers, mut groups) = (Stats::new(0), Workers::new(WorkersMode::RigId, false), Groups::from_pools(&[], 0));
        let w = workers.attach("rig1", "WALLET", "10.0.0.1".parse().unwrap(), 0);
        let mut books = Books { stats: &mut stats, workers: &mut workers, groups: &mut groups };
        books.refused(w, 100, &StratumError::LowDifficulty);
        books.refused(w, 100, &StratumError::Pool("Stale share".into()));
        books.refused(None, 100, &StratumError::PoolUnavailable);
        assert_eq!((stats.invalid, stats.rejected), (1, 2));
        let rec = workers.iter().next().unwrap();
        assert_eq!((rec.invalid, rec.rejected, rec.sent), (1, 1, 2));
    }
}
