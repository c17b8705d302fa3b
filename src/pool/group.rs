//! Pool groups, free of sockets: which pools a port mines to, and how.
//!
//! Every pool belongs to a group (`"group"` in its config entry, `default` without one),
//! and every stratum port mines to one group (`"pool-group"` on the bind). A group's pools
//! form *lanes*, each an ordered failover list that upstreams of the group connect through:
//!
//! - a group without weights has one lane: all its pools in config order, a plain
//!   failover list as `pools` has always been;
//! - a group with weights has one lane per weighted pool, mined at the same time and
//!   sharing the group's hashrate by weight, plus one fallback lane of the unweighted
//!   pools (in order), used only while every weighted lane is down.
//!
//! Each lane remembers whether its pool is up, as the loop reports link events. The
//! group also measures accepted difficulty per pool (a sliding 10 minutes), which the API
//! shows beside the asked parts. Where miners go is decided by `splitter::balance`.

use crate::GroupId;
use crate::config::PoolConfig;
use crate::stats::HashWindows;
use crate::stats::window::{FINE, WindowsSnapshot};
use slab::Slab;
use std::collections::HashMap;

/// Whether a lane's pool is known to be up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not tried yet (or no upstream since): presumed usable.
    Unknown,
    /// Some upstream of the lane is logged in.
    Up,
    /// The lane's upstreams failed and none is logged in.
    Down,
}

/// One failover list inside a group.
#[derive(Debug)]
pub struct Lane {
    /// Indices into the group's pools, in failover order.
    pub pools: Vec<usize>,
    /// The lane's part of the group, relative to the other weighted lanes; `None` for the
    /// failover lane of an unweighted group and the fallback lane of a weighted one.
    pub weight: Option<u32>,
    pub health: Health,
}

/// One group: its pools, lanes and meters.
#[derive(Debug)]
pub struct Group {
    pub name: Box<str>,
    /// The account this group was made for (see `accounts`); `None` for config groups.
    pub account: Option<Box<str>>,
    /// The group's enabled pools, in config order.
    pub pools: Vec<PoolConfig>,
    pub lanes: Vec<Lane>,
    /// Accepted difficulty of the group's miners (the group's hashrate).
    pub hashrate: HashWindows<FINE>,
    /// Accepted difficulty per pool, same order as `pools`.
    pub meters: Vec<HashWindows<FINE>>,
    /// Load per lane as the last rebalance measured it, plus the miners placed since
    /// (see `splitter::balance`).
    pub loads: Vec<f64>,
    /// What a newly placed miner adds to its lane's load: the group's mean miner rate.
    pub unit_load: f64,
}

/// Index of the 10-minute window in `HashWindows` (the measured parts).
const MEASURE_WINDOW: usize = 1;

impl Group {
    fn new(name: &str, pools: Vec<PoolConfig>, now: u32) -> Group {
        let lanes = lanes_for(&pools);
        let meters = pools.iter().map(|_| HashWindows::new(now)).collect();
        let loads = vec![0.0; lanes.len()];
        Group { name: name.into(), account: None, pools, lanes, hashrate: HashWindows::new(now), meters, loads, unit_load: 1.0 }
    }

    /// The dialect the group's pools speak (the config keeps it to one per group).
    pub fn dialect(&self) -> crate::stratum::algo::Dialect {
        self.pools.first().map_or(crate::stratum::algo::Dialect::CryptoNote, PoolConfig::dialect)
    }

    /// True when some pool has a weight: lanes are mined side by side.
    pub fn is_weighted(&self) -> bool {
        self.lanes.iter().any(|l| l.weight.is_some())
    }

    /// The pool a lane's upstream connects to, `index` being its failover position.
    pub fn pool(&self, lane: usize, index: usize) -> Option<(usize, &PoolConfig)> {
        let i = *self.lanes.get(lane)?.pools.get(index)?;
        self.pools.get(i).map(|p| (i, p))
    }

    /// Pools in a lane's failover list.
    pub fn lane_len(&self, lane: usize) -> usize {
        self.lanes.get(lane).map_or(0, |l| l.pools.len())
    }

    /// Which lanes take miners now: the weighted lanes not known to be down; when every
    /// one is down, the fallback lane (or, without one, the weighted lanes all the same, so
    /// miners wait on a lane that is retried). An unweighted group's one lane always.
    pub fn usable(&self) -> Vec<bool> {
        let weighted_up = self.lanes.iter().any(|l| l.weight.is_some() && l.health != Health::Down);
        let has_fallback = self.lanes.iter().any(|l| l.weight.is_none());
        self.lanes
            .iter()
            .map(|l| match l.weight {
                Some(_) => l.health != Health::Down || (!weighted_up && !has_fallback),
                None => !weighted_up,
            })
            .collect()
    }

    /// Relative weights for placement: a weighted lane's weight, 1 for the fallback lane.
    pub fn weights(&self) -> Vec<u32> {
        self.lanes.iter().map(|l| l.weight.unwrap_or(1)).collect()
    }

    /// The part of the group each pool is asked to mine now (0..1): by weight among the
    /// usable weighted lanes; `None` for unweighted pools (they fail over, not share).
    pub fn asked_parts(&self) -> Vec<Option<f64>> {
        let usable = self.usable();
        let total: f64 = self.lanes.iter().zip(&usable).filter(|(_, u)| **u).filter_map(|(l, _)| l.weight).map(f64::from).sum();
        let mut parts = vec![None; self.pools.len()];
        for (lane, ok) in self.lanes.iter().zip(&usable) {
            if let Some(w) = lane.weight {
                for &p in &lane.pools {
                    parts[p] = Some(if *ok && total > 0.0 { f64::from(w) / total } else { 0.0 });
                }
            }
        }
        parts
    }

    /// Each pool's part of the accepted difficulty over the last 10 minutes (0..1; all 0
    /// before the first share).
    pub fn measured_parts(&self) -> Vec<f64> {
        // The meters of a group are made and sampled together: their windows cover the
        // same span, so sums compare as rates do.
        let rates: Vec<f64> = self.meters.iter().map(|m| m.sum(MEASURE_WINDOW) as f64).collect();
        let total: f64 = rates.iter().sum();
        rates.iter().map(|r| if total > 0.0 { r / total } else { 0.0 }).collect()
    }

    /// An accepted share of `diff` mined on pool `pool` of this group.
    pub fn on_accept(&mut self, pool: Option<usize>, diff: u64) {
        self.hashrate.add(diff);
        if let Some(m) = pool.and_then(|p| self.meters.get_mut(p)) {
            m.add(diff);
        }
    }

    fn tick(&mut self, now: u32) {
        self.hashrate.tick(now);
        for m in &mut self.meters {
            m.tick(now);
        }
    }
}

/// Lanes of a group's pools: see the module doc.
fn lanes_for(pools: &[PoolConfig]) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = pools
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.weight.map(|w| Lane { pools: vec![i], weight: Some(w), health: Health::Unknown }))
        .collect();
    let rest: Vec<usize> = pools.iter().enumerate().filter(|(_, p)| p.weight.is_none()).map(|(i, _)| i).collect();
    if !rest.is_empty() || lanes.is_empty() {
        lanes.push(Lane { pools: rest, weight: None, health: Health::Unknown });
    }
    lanes
}

/// Every group, by id. The default group always exists and has id 0.
#[derive(Debug)]
pub struct Groups {
    groups: Slab<Group>,
    by_name: HashMap<Box<str>, GroupId>,
}

impl Groups {
    /// The groups named by `pools` (enabled pools only), the default group first.
    pub fn from_pools(pools: &[PoolConfig], now: u32) -> Groups {
        let mut g = Groups { groups: Slab::new(), by_name: HashMap::new() };
        g.insert(crate::DEFAULT_GROUP_NAME, Vec::new(), now);
        g.reconfigure(pools, now);
        g
    }

    fn insert(&mut self, name: &str, pools: Vec<PoolConfig>, now: u32) -> GroupId {
        let key = self.groups.insert(Group::new(name, pools, now));
        let id = GroupId(u16::try_from(key).unwrap_or(u16::MAX));
        self.by_name.insert(name.into(), id);
        id
    }

    /// Applies a new pool list: groups whose pools changed get new lanes (returned, so
    /// the loop restarts their upstreams); other groups are left exactly as they are.
    /// Groups no pool names any more keep their name with no pools. Account groups are
    /// not the config's and are never touched here.
    pub fn reconfigure(&mut self, pools: &[PoolConfig], now: u32) -> Vec<GroupId> {
        // Every known name, then new ones in config order; a name keeps its id for ever.
        let mut wanted: Vec<(String, Vec<PoolConfig>)> =
            self.groups.iter().filter(|(_, g)| g.account.is_none()).map(|(_, g)| (g.name.to_string(), Vec::new())).collect();
        for p in pools.iter().filter(|p| p.enabled) {
            match wanted.iter_mut().find(|(n, _)| *n == p.group) {
                Some((_, list)) => list.push(p.clone()),
                None => wanted.push((p.group.clone(), vec![p.clone()])),
            }
        }
        let mut changed = Vec::new();
        for (name, list) in wanted {
            match self.by_name.get(name.as_str()).copied() {
                Some(id) => {
                    let group = &mut self.groups[usize::from(id.0)];
                    if group.pools != list {
                        *group = Group::new(&name, list, now);
                        changed.push(id);
                    }
                }
                None => changed.push(self.insert(&name, list, now)),
            }
        }
        changed.sort();
        changed
    }

    /// Most groups at once (ids are 16 bits; the default group and the config's come first).
    pub const MAX: usize = u16::MAX as usize;

    /// Makes the group of account `name`: one pool, its credentials. Its group name is
    /// `account:NAME`, which no config group can be called. `None` when the table is full.
    pub fn add_account(&mut self, name: &str, pool: PoolConfig, now: u32) -> Option<GroupId> {
        if self.groups.len() >= Self::MAX {
            return None;
        }
        let id = self.insert(&format!("account:{name}"), vec![pool], now);
        if let Some(g) = self.get_mut(id) {
            g.account = Some(name.into());
        }
        Some(id)
    }

    /// Removes a group (an account that was deleted); its id may be reused later.
    pub fn remove(&mut self, id: GroupId) -> Option<Group> {
        let g = self.groups.try_remove(usize::from(id.0))?;
        self.by_name.remove(&g.name);
        Some(g)
    }

    /// The account group `id` was made for (see [`Groups::add_account`]); `None` for a
    /// config group or no group.
    pub fn account(&self, id: GroupId) -> Option<&str> {
        self.get(id)?.account.as_deref()
    }

    /// The group called `name`.
    pub fn find(&self, name: &str) -> Option<GroupId> {
        self.by_name.get(name).copied()
    }

    pub fn get(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(usize::from(id.0))
    }

    pub fn get_mut(&mut self, id: GroupId) -> Option<&mut Group> {
        self.groups.get_mut(usize::from(id.0))
    }

    /// Every group with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (GroupId, &Group)> {
        self.groups.iter().map(|(k, g)| (GroupId(k as u16), g))
    }

    /// Every group with its id, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (GroupId, &mut Group)> {
        self.groups.iter_mut().map(|(k, g)| (GroupId(k as u16), g))
    }

    /// Groups that have pools.
    pub fn with_pools(&self) -> impl Iterator<Item = (GroupId, &Group)> {
        self.iter().filter(|(_, g)| !g.pools.is_empty())
    }

    /// Once a second: the hashrate windows.
    pub fn tick(&mut self, now: u32) {
        for (_, g) in self.groups.iter_mut() {
            g.tick(now);
        }
    }

    /// Every group's meters as plain data, for a live upgrade (which keeps the clock).
    pub fn snapshot(&mut self) -> Vec<GroupSnapshot> {
        self.groups
            .iter_mut()
            .map(|(_, g)| GroupSnapshot {
                name: g.name.to_string(),
                pools: g.pools.iter().map(|p| p.url.clone()).collect(),
                hashrate: g.hashrate.snapshot(),
                meters: g.meters.iter_mut().map(HashWindows::snapshot).collect(),
                loads: g.loads.clone(),
                unit_load: g.unit_load,
            })
            .collect()
    }

    /// Takes over the meters of the groups the old process had, by name. A group's
    /// hashrate always comes along; its per-pool meters and loads (the weighted split's
    /// measure) only when its pools are the same, in the same order, since they are
    /// compared with each other and must cover the same span. Returns how many groups
    /// were found.
    pub fn restore(&mut self, snaps: &[GroupSnapshot]) -> usize {
        let mut found = 0;
        for s in snaps {
            let Some(g) = self.find(&s.name).and_then(|id| self.groups.get_mut(usize::from(id.0))) else { continue };
            found += 1;
            if let Some(h) = HashWindows::restore(&s.hashrate) {
                g.hashrate = h;
            }
            let same = g.pools.len() == s.pools.len() && g.pools.iter().zip(&s.pools).all(|(p, url)| p.url == *url);
            let meters: Option<Vec<_>> = s.meters.iter().map(HashWindows::restore).collect();
            if let Some(meters) = meters.filter(|m| same && m.len() == g.meters.len()) {
                g.meters = meters;
                if s.loads.len() == g.loads.len() {
                    g.loads.clone_from(&s.loads);
                    g.unit_load = s.unit_load;
                }
            }
        }
        found
    }
}

/// A group's meters as a live upgrade hands them over.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GroupSnapshot {
    name: String,
    /// Its pools' URLs, in order: the per-pool meters are taken over only if they match.
    pools: Vec<String>,
    hashrate: WindowsSnapshot,
    meters: Vec<WindowsSnapshot>,
    loads: Vec<f64>,
    unit_load: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(url: &str, group: &str, weight: Option<u32>) -> PoolConfig {
        PoolConfig { group: group.into(), weight, ..PoolConfig::new(url) }
    }

    #[test]
    fn pools_without_a_group_form_the_default_group_in_order() {
        let g = Groups::from_pools(&[pool("a:1", "default", None), pool("b:1", "x", None), pool("c:1", "default", None)], 0);
        let d = g.get(crate::DEFAULT_GROUP).unwrap();
        assert_eq!(d.pools.iter().map(|p| p.url.as_str()).collect::<Vec<_>>(), ["a:1", "c:1"]);
        assert_eq!(d.lanes.len(), 1, "no weights: one failover lane");
        assert_eq!(d.lanes[0].pools, [0, 1]);
        assert!(!d.is_weighted());
        let x = g.find("x").unwrap();
        assert_ne!(x, crate::DEFAULT_GROUP);
        assert_eq!(g.get(x).unwrap().pool(0, 0).unwrap().1.url, "b:1");
    }

    #[test]
    fn disabled_pools_are_left_out() {
        let mut off = pool("a:1", "default", None);
        off.enabled = false;
        let g = Groups::from_pools(&[off, pool("b:1", "default", None)], 0);
        assert_eq!(g.get(crate::DEFAULT_GROUP).unwrap().pools.len(), 1);
    }

    #[test]
    fn weighted_pools_get_a_lane_each_and_the_rest_one_fallback_lane() {
        let g = Groups::from_pools(&[pool("a:1", "w", Some(70)), pool("f:1", "w", None), pool("b:1", "w", Some(30))], 0);
        let w = g.get(g.find("w").unwrap()).unwrap();
        assert!(w.is_weighted());
        let lanes: Vec<(Vec<usize>, Option<u32>)> = w.lanes.iter().map(|l| (l.pools.clone(), l.weight)).collect();
        assert_eq!(lanes, [(vec![0], Some(70)), (vec![2], Some(30)), (vec![1], None)]);
        assert_eq!(w.usable(), [true, true, false], "the fallback waits while a weighted pool may be up");
        assert_eq!(w.asked_parts(), [Some(0.7), None, Some(0.3)]);
    }

    #[test]
    fn a_down_weighted_lane_gives_its_part_to_the_others_then_to_the_fallback() {
        let mut g = Groups::from_pools(&[pool("a:1", "w", Some(70)), pool("b:1", "w", Some(30)), pool("f:1", "w", None)], 0);
        let id = g.find("w").unwrap();
        let w = g.get_mut(id).unwrap();
        w.lanes[0].health = Health::Down;
        assert_eq!(w.usable(), [false, true, false]);
        assert_eq!(w.asked_parts(), [Some(0.0), Some(1.0), None]);
        w.lanes[1].health = Health::Down;
        assert_eq!(w.usable(), [false, false, true], "every weighted pool down: the fallback mines");
        w.lanes[0].health = Health::Up;
        assert_eq!(w.usable(), [true, false, false]);
    }

    #[test]
    fn without_a_fallback_miners_stay_on_the_weighted_lanes_while_all_are_down() {
        let mut g = Groups::from_pools(&[pool("a:1", "w", Some(1)), pool("b:1", "w", Some(1))], 0);
        let w = g.get_mut(g.find("w").unwrap()).unwrap();
        assert_eq!(w.lanes.len(), 2, "no fallback lane without unweighted pools");
        w.lanes[0].health = Health::Down;
        w.lanes[1].health = Health::Down;
        assert_eq!(w.usable(), [true, true]);
    }

    #[test]
    fn a_reload_touches_only_the_groups_whose_pools_changed() {
        let before = [pool("a:1", "default", None), pool("b:1", "x", Some(2)), pool("c:1", "x", Some(1))];
        let mut g = Groups::from_pools(&before, 0);
        let x = g.find("x").unwrap();
        g.get_mut(x).unwrap().lanes[0].health = Health::Up;
        let mut after = before.to_vec();
        after[0].user = "NEW".into();
        assert_eq!(g.reconfigure(&after, 5), vec![crate::DEFAULT_GROUP]);
        assert_eq!(g.get(x).unwrap().lanes[0].health, Health::Up, "untouched group keeps its state");
        assert_eq!(g.get(crate::DEFAULT_GROUP).unwrap().pools[0].user, "NEW");
        after.push(pool("d:1", "y", None));
        let changed = g.reconfigure(&after, 6);
        assert_eq!(changed, vec![g.find("y").unwrap()]);
        after.retain(|p| p.group != "x");
        assert_eq!(g.reconfigure(&after, 7), vec![x], "a group whose pools all went is changed, and kept by name");
        assert!(g.get(x).unwrap().pools.is_empty());
    }

    #[test]
    fn account_groups_come_and_go_and_reloads_leave_them_alone() {
        let mut g = Groups::from_pools(&[pool("a:1", "default", None)], 0);
        let id = g.add_account("0123456789abcdef", PoolConfig { user: "acct".into(), ..PoolConfig::new("p:1") }, 0).unwrap();
        assert_eq!(g.get(id).unwrap().name.as_ref(), "account:0123456789abcdef");
        assert_eq!(g.get(id).unwrap().account.as_deref(), Some("0123456789abcdef"));
        assert_eq!(g.account(id), Some("0123456789abcdef"));
        assert_eq!(g.account(crate::DEFAULT_GROUP), None);
        assert_eq!(g.reconfigure(&[pool("b:1", "default", None)], 1), vec![crate::DEFAULT_GROUP]);
        assert_eq!(g.get(id).unwrap().pools[0].user, "acct", "the account's pool is its own");
        assert!(g.remove(id).is_some());
        assert!(g.get(id).is_none() && g.find("account:0123456789abcdef").is_none());
        assert_eq!(g.account(id), None);
    }

    #[test]
    fn measured_parts_follow_the_accepted_difficulty() {
        let mut g = Groups::from_pools(&[pool("a:1", "w", Some(70)), pool("b:1", "w", Some(30))], 0);
        let id = g.find("w").unwrap();
        assert_eq!(g.get(id).unwrap().measured_parts(), [0.0, 0.0]);
        for t in 1..=60 {
            let w = g.get_mut(id).unwrap();
            w.on_accept(Some(0), 700);
            w.on_accept(Some(1), 300);
            g.tick(t);
        }
        let parts = g.get(id).unwrap().measured_parts();
        assert!((parts[0] - 0.7).abs() < 1e-9 && (parts[1] - 0.3).abs() < 1e-9, "{parts:?}");
        assert_eq!(g.get(id).unwrap().hashrate.total(), 60_000);
    }

    #[test]
    fn a_snapshot_brings_the_measured_split_along_only_to_the_same_pools() {
        let pools = [pool("a:1", "farm", Some(70)), pool("b:1", "farm", Some(30))];
        let mut old = Groups::from_pools(&pools, 0);
        let id = old.find("farm").unwrap();
        for t in 1..=600 {
            old.get_mut(id).unwrap().on_accept(Some(usize::from(t % 10 < 7) ^ 1), 1000);
            old.tick(t);
        }
        let parts = old.get(id).unwrap().measured_parts();
        assert!((parts[0] - 0.7).abs() < 0.02, "{parts:?}");
        let snap = old.snapshot();

        let mut same = Groups::from_pools(&pools, 0);
        assert_eq!(same.restore(&snap), 2, "default and farm");
        let g = same.get(same.find("farm").unwrap()).unwrap();
        assert_eq!(g.measured_parts(), parts);
        assert_eq!(g.hashrate.rates(600), old.get(id).unwrap().hashrate.rates(600));

        // Another pool list: the group's hashrate comes along, its split is measured anew.
        let mut changed = Groups::from_pools(&[pool("a:1", "farm", Some(50)), pool("c:1", "farm", Some(50))], 0);
        changed.restore(&snap);
        let g = changed.get(changed.find("farm").unwrap()).unwrap();
        assert_eq!(g.measured_parts(), [0.0, 0.0]);
        assert_eq!(g.hashrate.total(), old.get(id).unwrap().hashrate.total());
    }
}
