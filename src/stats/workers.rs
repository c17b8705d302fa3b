//! Workers: aggregate records named from a login field (RFC section 13). A rig that
//! reconnects a thousand times stays one record. A record with no connection and no share
//! for a day is dropped, so departed rigs do not accumulate; the number of records is
//! capped as well.

use super::HashWindows;
use super::window::COARSE;
use crate::config::WorkersMode;
use slab::Slab;
use std::collections::HashMap;
use std::net::IpAddr;

/// Records kept at most; logins beyond are served but not tracked.
pub const MAX_WORKERS: usize = 100_000;
/// A record with no connection is dropped this long after its last activity.
const FORGET_AFTER: u32 = 86_400;

/// One worker's aggregate.
#[derive(Debug)]
pub struct Worker {
    pub name: Box<str>,
    pub last_ip: IpAddr,
    /// Connections open now.
    pub connections: u32,
    pub accepted: u64,
    pub rejected: u64,
    pub invalid: u64,
    /// Shares submitted (every answer), and the difficulty they were worth.
    pub sent: u64,
    pub sent_diff: u64,
    /// Unix time of the last accepted share, in ms (0 = never).
    pub last_share_ms: u64,
    /// User of the last login (the `user` label in metrics).
    pub user: Box<str>,
    /// The pool the worker's miners mine to (the last one for a worker gone).
    pub pool: Box<str>,
    /// What the proxy did about the rig (see `FLAG_*`).
    pub flags: u8,
    pub windows: HashWindows<COARSE>,
    last_active: u32,
}

/// The rig ignores its NiceHash byte and mines on a pool connection of its own.
pub const FLAG_NO_NICEHASH: u8 = 1;
/// The pool rejected too many of its shares: it mines on a connection of its own.
pub const FLAG_QUARANTINED: u8 = 2;

/// Which fields a login offers for naming.
#[derive(Debug, Clone, Copy)]
pub struct LoginFields<'a> {
    pub user: &'a str,
    pub pass: &'a str,
    pub agent: &'a str,
    pub rig_id: Option<&'a str>,
    pub ip: IpAddr,
    pub custom_diff: u64,
}

/// All worker records.
#[derive(Debug)]
pub struct Workers {
    mode: WorkersMode,
    custom_diff_stats: bool,
    records: Slab<Worker>,
    by_name: HashMap<Box<str>, usize>,
}

impl Workers {
    pub fn new(mode: WorkersMode, custom_diff_stats: bool) -> Workers {
        Workers { mode, custom_diff_stats, records: Slab::new(), by_name: HashMap::new() }
    }

    pub fn mode(&self) -> WorkersMode {
        self.mode
    }

    /// The worker name for a login under the configured mode; `None` when disabled.
    pub fn name_for(&self, f: &LoginFields<'_>) -> Option<String> {
        let base = match self.mode {
            WorkersMode::Disabled => return None,
            WorkersMode::RigId => f.rig_id.filter(|r| !r.is_empty()).unwrap_or(f.user).to_string(),
            WorkersMode::User => f.user.to_string(),
            WorkersMode::Password => f.pass.to_string(),
            WorkersMode::Agent => f.agent.to_string(),
            WorkersMode::Ip => f.ip.to_string(),
        };
        // Bounded: names come from miners.
        let mut name: String = base.chars().take(128).collect();
        if self.custom_diff_stats && f.custom_diff > 0 {
            name.push_str(&format!("+{}", f.custom_diff));
        }
        Some(name)
    }

    /// A miner logged in as `name`; returns its record key.
    pub fn attach(&mut self, name: &str, user: &str, ip: IpAddr, now: u32) -> Option<usize> {
        let key = match self.by_name.get(name) {
            Some(&k) => k,
            None => {
                if self.records.len() >= MAX_WORKERS {
                    return None;
                }
                let key = self.records.insert(Worker {
                    name: name.into(),
                    last_ip: ip,
                    connections: 0,
                    accepted: 0,
                    rejected: 0,
                    invalid: 0,
                    sent: 0,
                    sent_diff: 0,
                    last_share_ms: 0,
                    user: Box::from(""),
                    pool: Box::from(""),
                    flags: 0,
                    windows: HashWindows::new(now),
                    last_active: now,
                });
                self.by_name.insert(name.into(), key);
                key
            }
        };
        let w = &mut self.records[key];
        w.connections += 1;
        w.last_ip = ip;
        w.last_active = now;
        if *w.user != *user {
            w.user = user.chars().take(128).collect::<String>().into();
        }
        Some(key)
    }

    /// A miner of worker `key` disconnected.
    pub fn detach(&mut self, key: usize, now: u32) {
        if let Some(w) = self.records.get_mut(key) {
            w.connections = w.connections.saturating_sub(1);
            w.last_active = now;
        }
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut Worker> {
        self.records.get_mut(key)
    }

    /// An accepted share worth `diff`.
    pub fn on_accept(&mut self, key: usize, diff: u64, unix_ms: u64, now: u32) {
        if let Some(w) = self.records.get_mut(key) {
            w.accepted += 1;
            w.sent += 1;
            w.sent_diff = w.sent_diff.saturating_add(diff);
            w.windows.add(diff);
            w.last_share_ms = unix_ms;
            w.last_active = now;
        }
    }

    /// A share the pool rejected (`invalid` false) or the proxy refused (`invalid` true).
    pub fn on_reject(&mut self, key: usize, diff: u64, invalid: bool) {
        if let Some(w) = self.records.get_mut(key) {
            w.sent += 1;
            w.sent_diff = w.sent_diff.saturating_add(diff);
            if invalid {
                w.invalid += 1;
            } else {
                w.rejected += 1;
            }
        }
    }

    /// Once a second: hashrate samples, and forgetting records idle for a day.
    pub fn tick(&mut self, now: u32) {
        let mut forget = Vec::new();
        for (key, w) in self.records.iter_mut() {
            w.windows.tick(now);
            if w.connections == 0 && now.saturating_sub(w.last_active) >= FORGET_AFTER {
                forget.push(key);
            }
        }
        for key in forget {
            let w = self.records.remove(key);
            self.by_name.remove(&w.name);
        }
    }

    /// Records with their keys.
    pub fn iter_keyed(&self) -> impl Iterator<Item = (usize, &Worker)> {
        self.records.iter()
    }

    /// Records in creation order of their keys.
    pub fn iter(&self) -> impl Iterator<Item = &Worker> {
        self.records.iter().map(|(_, w)| w)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(user: &'a str, rig: Option<&'a str>) -> LoginFields<'a> {
        LoginFields { user, pass: "pw", agent: "XMRig/6", rig_id: rig, ip: "10.0.0.7".parse().unwrap(), custom_diff: 0 }
    }

    #[test]
    fn each_mode_names_workers_from_its_field() {
        let f = fields("WALLET", Some("rig1"));
        let name = |mode| Workers::new(mode, false).name_for(&f);
        assert_eq!(name(WorkersMode::RigId).as_deref(), Some("rig1"));
        assert_eq!(name(WorkersMode::User).as_deref(), Some("WALLET"));
        assert_eq!(name(WorkersMode::Password).as_deref(), Some("pw"));
        assert_eq!(name(WorkersMode::Agent).as_deref(), Some("XMRig/6"));
        assert_eq!(name(WorkersMode::Ip).as_deref(), Some("10.0.0.7"));
        assert_eq!(name(WorkersMode::Disabled), None);
        let no_rig = fields("WALLET", None);
        assert_eq!(Workers::new(WorkersMode::RigId, false).name_for(&no_rig).as_deref(), Some("WALLET"), "rig-id falls back to user");
    }

    #[test]
    fn custom_diff_stats_split_workers_by_difficulty() {
        let mut f = fields("WALLET", Some("rig1"));
        f.custom_diff = 5000;
        assert_eq!(Workers::new(WorkersMode::RigId, true).name_for(&f).as_deref(), Some("rig1+5000"));
        assert_eq!(Workers::new(WorkersMode::RigId, false).name_for(&f).as_deref(), Some("rig1"));
    }

    #[test]
    fn reconnections_stay_one_record() {
        let mut w = Workers::new(WorkersMode::RigId, false);
        let ip = "10.0.0.7".parse().unwrap();
        for t in 0..1000 {
            let k = w.attach("rig1", "WALLET", ip, t).unwrap();
            w.on_accept(k, 100, 1, t);
            w.detach(k, t);
        }
        assert_eq!(w.len(), 1);
        let rec = w.iter().next().unwrap();
        assert_eq!((rec.connections, rec.accepted, rec.windows.total()), (0, 1000, 100_000));
    }

    #[test]
    fn departed_workers_are_forgotten_after_a_day_and_connected_ones_never() {
        let mut w = Workers::new(WorkersMode::RigId, false);
        let ip = "10.0.0.7".parse().unwrap();
        let gone = w.attach("gone", "W", ip, 0).unwrap();
        w.detach(gone, 10);
        w.attach("here", "W", ip, 0).unwrap();
        w.tick(10 + FORGET_AFTER - 1);
        assert_eq!(w.len(), 2);
        w.tick(10 + FORGET_AFTER);
        assert_eq!(w.iter().map(|r| &*r.name).collect::<Vec<_>>(), ["here"]);
        // The name can come back as a fresh record.
        assert!(w.attach("gone", "W", ip, 100_000).is_some());
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn rejections_and_invalid_shares_are_counted_apart() {
        let mut w = Workers::new(WorkersMode::User, false);
        let k = w.attach("W", "W", "10.0.0.7".parse().unwrap(), 0).unwrap();
        w.on_reject(k, 10, false);
        w.on_reject(k, 10, true);
        w.on_reject(k, 10, true);
        let r = w.iter().next().unwrap();
        assert_eq!((r.rejected, r.invalid, r.sent, r.sent_diff), (1, 2, 3, 30));
    }
}
