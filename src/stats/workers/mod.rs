//! Workers: aggregate records named from a login field (the rig id by default, or the user,
//! password, agent or address). A rig that reconnects a thousand times stays one record. A
//! record with no connection and no share for a day is dropped, so departed rigs do not
//! accumulate; the number of records is capped as well.
//!
//! A record is 144 bytes, plus its name when that is longer than 15 bytes (see [`Worker`]):
//! its hashrates are a [`WorkerRates`], a short name is kept inline ([`Name`]), the login
//! user and the pool URL are shared between the records that use them ([`Interned`]),
//! and the index by name holds 4-byte keys, not a second copy of each name
//! ([`NameIndex`]). Nothing is done per record each second: the rates move on when they
//! are written or read, and idle records are looked for once a minute.

use super::names::{Interned, Name, NameIndex};
use super::worker_rates::WorkerRates;
use crate::config::WorkersMode;
use slab::Slab;
use std::net::{IpAddr, Ipv6Addr};

/// Records kept at most; logins beyond are served but not tracked.
pub const MAX_WORKERS: usize = 100_000;
/// A record with no connection is dropped this long after its last activity (at the next
/// once-a-minute sweep).
const FORGET_AFTER: u32 = 86_400;

/// One worker's aggregate: what `/1/workers` and the per-worker metrics show.
#[derive(Debug)]
pub struct Worker {
    /// The name the record is found by (at most 128 characters, plus `+diff` when the
    /// custom difficulty splits workers); up to 15 bytes need no allocation.
    pub name: Name,
    /// Shares accepted.
    pub accepted: u64,
    /// Shares submitted (every answer), and the difficulty they were worth.
    pub sent: u64,
    /// Difficulty of the shares submitted.
    pub sent_diff: u64,
    /// Unix time of the last accepted share, in ms (0 = never).
    pub last_share_ms: u64,
    /// Hashrate windows over accepted difficulty, and the total; the last activity.
    pub windows: WorkerRates,
    /// Connections open now.
    pub connections: u32,
    /// Shares the pool rejected or that could not reach it (stops at `u32::MAX`).
    pub rejected: u32,
    /// Shares the proxy refused (stops at `u32::MAX`).
    pub invalid: u32,
    /// User of the last login as the metrics show it (an account login's account name),
    /// in [`Workers`]' shared strings.
    user: u32,
    /// The pool the worker's miners mine to (the last one for a worker gone), in the
    /// shared strings; [`NO_POOL`] before its first job.
    pool: u32,
    /// Address of the last login; IPv4 as its IPv6-mapped form.
    ip: [u8; 16],
}

/// A record's pool before it is given one.
const NO_POOL: u32 = u32::MAX;

/// The rig ignores its NiceHash byte and mines on a pool connection of its own.
pub const FLAG_NO_NICEHASH: u8 = 1;
/// The pool rejected too many of its shares: it mines on a connection of its own.
pub const FLAG_QUARANTINED: u8 = 2;
/// Its shares kept failing the proxy's checks (the wrong algorithm?).
pub const FLAG_INVALID_SHARES: u8 = 4;

impl Worker {
    /// Address of the last login. (An IPv4-mapped IPv6 peer reads as its IPv4 address; the
    /// proxy's IPv6 listeners are IPv6-only, so it sees none.)
    pub fn last_ip(&self) -> IpAddr {
        Ipv6Addr::from(self.ip).to_canonical()
    }
}

fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// The worker records as plain data, for a live upgrade (which keeps the clock).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkersSnapshot {
    /// What named them: records of another mode are not taken over.
    mode: WorkersMode,
    custom_diff_stats: bool,
    records: Vec<WorkerSnapshot>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct WorkerSnapshot {
    name: String,
    pool: String,
    user: String,
    ip: [u8; 16],
    accepted: u64,
    sent: u64,
    sent_diff: u64,
    last_share_ms: u64,
    windows: WorkerRates,
    rejected: u32,
    invalid: u32,
    flags: u8,
}

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
    by_name: NameIndex,
    /// Login users and pool URLs, each kept once however many records name it.
    shared: Interned,
    /// The minute of the last sweep for idle records.
    swept: u32,
    /// What the proxy did about a few rigs (`FLAG_*`), by record key: rare, so kept
    /// beside the records rather than in each.
    flags: std::collections::HashMap<usize, u8>,
}

/// A user string is kept to this many characters.
const MAX_USER_CHARS: usize = 128;

fn bounded_user(user: &str) -> &str {
    user.char_indices().nth(MAX_USER_CHARS).map_or(user, |(i, _)| &user[..i])
}

impl Workers {
    pub fn new(mode: WorkersMode, custom_diff_stats: bool) -> Workers {
        Workers {
            mode,
            custom_diff_stats,
            records: Slab::new(),
            by_name: NameIndex::default(),
            shared: Interned::default(),
            swept: u32::MAX,
            flags: Default::default(),
        }
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

    /// The record named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        let records = &self.records;
        self.by_name.find(name, |k| records.get(k as usize).map_or("", |w| &*w.name)).map(|k| k as usize)
    }

    /// A miner logged in as `name`; returns its record key.
    pub fn attach(&mut self, name: &str, user: &str, ip: IpAddr, now: u32) -> Option<usize> {
        let user = bounded_user(user);
        let key = match self.find(name) {
            Some(k) => k,
            None => {
                if self.records.len() >= MAX_WORKERS {
                    return None;
                }
                let key = self.records.insert(Worker {
                    name: name.into(),
                    accepted: 0,
                    sent: 0,
                    sent_diff: 0,
                    last_share_ms: 0,
                    windows: WorkerRates::new(now),
                    connections: 0,
                    rejected: 0,
                    invalid: 0,
                    user: self.shared.hold(user),
                    pool: NO_POOL,
                    ip: ip_bytes(ip),
                });
                let records = &self.records;
                self.by_name.insert(key as u32, |k| records.get(k as usize).map_or("", |w| &*w.name));
                key
            }
        };
        let w = &mut self.records[key];
        w.connections += 1;
        w.ip = ip_bytes(ip);
        w.windows.touch(now);
        if self.shared.get(w.user) != user {
            let old = std::mem::replace(&mut w.user, self.shared.hold(user));
            self.shared.release(old);
        }
        Some(key)
    }

    /// A miner of worker `key` disconnected.
    pub fn detach(&mut self, key: usize, now: u32) {
        if let Some(w) = self.records.get_mut(key) {
            w.connections = w.connections.saturating_sub(1);
            w.windows.touch(now);
        }
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut Worker> {
        self.records.get_mut(key)
    }

    /// The user of `w`'s last login, as given to [`Workers::attach`].
    pub fn user(&self, w: &Worker) -> &str {
        self.shared.get(w.user)
    }

    /// The pool `w`'s miners mine to ("" before its first job).
    pub fn pool(&self, w: &Worker) -> &str {
        self.shared.get(w.pool)
    }

    /// Worker `key`'s miners mine to `url` now.
    pub fn set_pool(&mut self, key: usize, url: &str) {
        let Some(w) = self.records.get_mut(key) else { return };
        if w.pool != NO_POOL && self.shared.get(w.pool) == url {
            return;
        }
        let old = std::mem::replace(&mut w.pool, self.shared.hold(url));
        if old != NO_POOL {
            self.shared.release(old);
        }
    }

    /// An accepted share worth `diff`.
    pub fn on_accept(&mut self, key: usize, diff: u64, unix_ms: u64, now: u32) {
        if let Some(w) = self.records.get_mut(key) {
            w.accepted += 1;
            w.sent += 1;
            w.sent_diff = w.sent_diff.saturating_add(diff);
            w.windows.add(diff, now);
            w.last_share_ms = unix_ms;
        }
    }

    /// A share the pool rejected (`invalid` false) or the proxy refused (`invalid` true).
    pub fn on_reject(&mut self, key: usize, diff: u64, invalid: bool) {
        if let Some(w) = self.records.get_mut(key) {
            w.sent += 1;
            w.sent_diff = w.sent_diff.saturating_add(diff);
            if invalid {
                w.invalid = w.invalid.saturating_add(1);
            } else {
                w.rejected = w.rejected.saturating_add(1);
            }
        }
    }

    /// Called each second; once a minute it drops the records idle for a day. Nothing
    /// else needs the clock: hashrates move on when read or written.
    pub fn tick(&mut self, now: u32) {
        if now / 60 == self.swept {
            return;
        }
        self.swept = now / 60;
        let idle: Vec<usize> = self
            .records
            .iter()
            .filter(|(_, w)| w.connections == 0 && now.saturating_sub(w.windows.last_active()) >= FORGET_AFTER)
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            let records = &self.records;
            self.by_name.remove(key as u32, |k| records.get(k as usize).map_or("", |w| &*w.name));
            let w = self.records.remove(key);
            self.shared.release(w.user);
            if w.pool != NO_POOL {
                self.shared.release(w.pool);
            }
            self.flags.remove(&key);
        }
    }

    /// Marks worker `key` with `flag` (`FLAG_*`).
    pub fn flag(&mut self, key: usize, flag: u8) {
        if self.records.contains(key) {
            *self.flags.entry(key).or_insert(0) |= flag;
        }
    }

    /// The flags of worker `key` (0: none).
    pub fn flags(&self, key: usize) -> u8 {
        self.flags.get(&key).copied().unwrap_or(0)
    }

    /// Every record, with or without a connection (connections are counted again as the
    /// new process adopts the miners).
    pub fn snapshot(&self) -> WorkersSnapshot {
        let records = self
            .records
            .iter()
            .map(|(key, w)| WorkerSnapshot {
                name: w.name.to_string(),
                pool: self.pool(w).to_string(),
                user: self.user(w).to_string(),
                ip: w.ip,
                accepted: w.accepted,
                sent: w.sent,
                sent_diff: w.sent_diff,
                last_share_ms: w.last_share_ms,
                windows: w.windows.clone(),
                rejected: w.rejected,
                invalid: w.invalid,
                flags: self.flags(key),
            })
            .collect();
        WorkersSnapshot { mode: self.mode, custom_diff_stats: self.custom_diff_stats, records }
    }

    /// Takes over the records of the process that handed over, before its miners are
    /// adopted. Nothing is taken when the records were named another way (the config
    /// changed with the upgrade); a name already here and records beyond the cap are
    /// skipped. Returns how many were taken.
    pub fn restore(&mut self, s: WorkersSnapshot) -> usize {
        if (s.mode, s.custom_diff_stats) != (self.mode, self.custom_diff_stats) || self.mode == WorkersMode::Disabled {
            return 0;
        }
        let mut taken = 0;
        for r in s.records {
            if self.records.len() >= MAX_WORKERS {
                break;
            }
            if self.find(&r.name).is_some() {
                continue;
            }
            let pool = if r.pool.is_empty() { NO_POOL } else { self.shared.hold(&r.pool) };
            let key = self.records.insert(Worker {
                name: r.name.as_str().into(),
                accepted: r.accepted,
                sent: r.sent,
                sent_diff: r.sent_diff,
                last_share_ms: r.last_share_ms,
                windows: r.windows,
                connections: 0,
                rejected: r.rejected,
                invalid: r.invalid,
                user: self.shared.hold(bounded_user(&r.user)),
                pool,
                ip: r.ip,
            });
            let records = &self.records;
            self.by_name.insert(key as u32, |k| records.get(k as usize).map_or("", |w| &*w.name));
            if r.flags != 0 {
                self.flags.insert(key, r.flags);
            }
            taken += 1;
        }
        taken
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
mod tests;
