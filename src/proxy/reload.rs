//! Config hot reload (RFC section 18): with `watch` on, the config file is checked once a
//! second and reloaded when its modification time or size changes; SIGHUP reloads too.
//! Pools, custom difficulty, access password, rate limit, log files, HTTP token and
//! restriction, retries and upstream limits apply live. Listening addresses, the mode and
//! the HTTP listener cannot change without a restart: a change there is logged and
//! ignored. A file that does not load is rejected with its error and the running config
//! stays.

use super::Proxy;
use crate::config::{self, Config};
use crate::logs::AppendLog;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// The file a running proxy was started from.
#[derive(Debug)]
pub(super) struct Watched {
    path: PathBuf,
    stamp: Option<Stamp>,
}

/// What says a file changed: modification time (coarse on some filesystems), size, and
/// inode (editors and config managers replace files by rename).
type Stamp = (SystemTime, u64, u64);

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

impl Proxy {
    /// Remembers the config file, for `watch` polling and SIGHUP.
    pub fn set_config_file(&mut self, path: PathBuf) {
        let stamp = stamp(&path);
        self.config_file = Some(Watched { path, stamp });
    }

    /// Once a second: reload when the watched file changed.
    pub(super) fn reload_tick(&mut self, now: Instant) {
        if !self.cfg.watch {
            return;
        }
        let Some(w) = self.config_file.as_mut() else { return };
        let current = stamp(&w.path);
        if current.is_none() || current == w.stamp {
            return;
        }
        w.stamp = current;
        self.reload(now);
    }

    /// Loads the file again and applies what can change live.
    pub(super) fn reload(&mut self, now: Instant) {
        let Some(w) = self.config_file.as_ref() else { return };
        let path = w.path.clone();
        match config::load_file(&path) {
            Ok(new) => self.apply_config(new, now),
            Err(e) => log::error!("config {} not reloaded, keeping the running one: {e}", path.display()),
        }
    }

    fn apply_config(&mut self, mut new: Config, now: Instant) {
        let old = &self.cfg;
        let mut ignored = Vec::new();
        if new.binds != old.binds {
            ignored.push("bind");
            new.binds = old.binds.clone();
        }
        if new.mode != old.mode {
            ignored.push("mode");
            new.mode = old.mode;
        }
        if (new.http.enabled, &new.http.host, new.http.port) != (old.http.enabled, &old.http.host, old.http.port) {
            ignored.push("http listener");
            (new.http.enabled, new.http.host, new.http.port) = (old.http.enabled, old.http.host.clone(), old.http.port);
        }
        if new.workers != old.workers || new.custom_diff_stats != old.custom_diff_stats {
            ignored.push("workers");
            (new.workers, new.custom_diff_stats) = (old.workers, old.custom_diff_stats);
        }
        if new.tls != old.tls {
            ignored.push("tls");
            new.tls = old.tls.clone();
        }
        if !ignored.is_empty() {
            log::warn!("config reload: {} cannot change while running; restart to apply", ignored.join(", "));
        }
        if let Err(e) = config::validate(&new) {
            log::error!("config reload rejected: {e}; keeping the running config");
            return;
        }
        let mut changed = Vec::new();
        if new.pools != old.pools {
            changed.push("pools");
        }
        if new.access_password != old.access_password {
            changed.push("access-password");
        }
        if new.custom_diff != old.custom_diff {
            changed.push("custom-diff");
        }
        if new.rate_limit != old.rate_limit {
            changed.push("rate-limit");
            self.ratelimit.reconfigure(new.rate_limit);
        }
        if new.access_log_file != old.access_log_file {
            changed.push("access-log-file");
            self.access_log = AppendLog::open(new.access_log_file.as_deref());
        }
        if new.share_log_file != old.share_log_file {
            changed.push("share-log-file");
            self.share_log = AppendLog::open(new.share_log_file.as_deref());
        }
        if new.http != old.http {
            changed.push("http");
        }
        if (new.max_upstreams, new.reuse_timeout_secs) != (old.max_upstreams, old.reuse_timeout_secs) {
            changed.push("upstream limits");
            self.splitter.reconfigure(new.max_upstreams, Duration::from_secs(new.reuse_timeout_secs));
        }
        if (new.retries, new.retry_pause_secs) != (old.retries, old.retry_pause_secs) {
            changed.push("retries");
        }
        if new.quarantine != old.quarantine {
            changed.push("quarantine");
        }
        if new.vardiff != old.vardiff {
            changed.push("vardiff");
            self.vardiff = (0..new.binds.len()).map(|i| new.vardiff_of(i)).collect();
        }
        let pools_changed = new.pools != old.pools;
        self.cfg = new;
        if pools_changed {
            // Only the groups whose pools changed start over; the others keep their
            // upstreams and miners as they are.
            let clock = self.clock(now);
            for group in self.groups.reconfigure(&self.cfg.pools, clock) {
                if let Some(g) = self.groups.get(group) {
                    log::info!("pool group {}: pools changed, reconnecting its upstreams", g.name);
                }
                self.restart_group(group, now);
            }
        }
        if changed.is_empty() {
            log::info!("config reloaded: nothing that applies live changed");
        } else {
            log::info!("config reloaded: {}", changed.join(", "));
        }
    }
}
