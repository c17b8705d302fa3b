//! Where share and connection outcomes are counted: global stats, the miner's worker
//! record, and the share and access logs. One place, so every path (answered locally,
//! answered by the pool, failed with the link) counts the same way.

use super::Proxy;
use crate::MinerId;
use crate::logs::unix_ms;
use crate::splitter::Share;
use crate::stratum::StratumError;
use std::time::{Duration, Instant};

impl Proxy {
    /// Seconds since start: the clock of the hashrate windows.
    pub(super) fn clock(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.started).as_secs().min(u64::from(u32::MAX)) as u32
    }

    /// A share accepted by the pool, or locally below the pool's target.
    pub(super) fn share_accepted(
        &mut self,
        miner: Option<MinerId>,
        worker: Option<usize>,
        share: &Share,
        latency: Option<Duration>,
        now: Instant,
    ) {
        let now = self.clock(now);
        self.stats.on_accept(share.diff, share.achieved, share.expired, latency);
        if let Some(w) = worker {
            self.workers.on_accept(w, share.diff, unix_ms(), now);
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

    /// A share refused by the proxy's checks (invalid) or by the pool (rejected).
    pub(super) fn share_refused(&mut self, miner: Option<MinerId>, worker: Option<usize>, diff: u64, err: &StratumError) {
        let invalid = err.is_invalid_share();
        if invalid {
            self.stats.on_invalid();
        } else {
            self.stats.on_reject();
        }
        if let Some(w) = worker {
            self.workers.on_reject(w, diff, invalid);
        }
        let level = if invalid { log::Level::Debug } else { log::Level::Info };
        if !self.share_log.is_enabled() && !log::log_enabled!(level) {
            return;
        }
        let (user, peer) = self.who(miner);
        if invalid {
            log::debug!("share from {peer} ({user}) refused: {err}");
        } else {
            log::info!("share from {peer} ({user}) rejected by the pool: {err}");
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
