//! Placing miners in their group, and moving a miner to another upstream without a
//! disconnect: the primitive that balancing weighted groups uses (and that later work on
//! difficulty, NiceHash-less rigs and quarantine reuses).
//!
//! A move reserves a slot on an upstream of the target lane. When that upstream has a job
//! the move completes at once: the miner's route changes, it gets the new upstream's job
//! (with a new fixed byte in NiceHash mode), and its old slot is dead until the old
//! upstream's next job. When the target upstream is still connecting, the miner keeps
//! mining where it is and arrives with the target's first job. For a few seconds after a
//! move, shares for the old upstream's jobs are still checked and sent there.
//!
//! Weighted groups are rebalanced every few seconds and at once when a lane's pool goes
//! up or down (`splitter::balance` decides). Miners of a lane that went down move at once;
//! moves between healthy lanes wait for the miner's upstream's next job (a job boundary),
//! or happen after `PLAN_DEADLINE` when no job comes.

use super::miner::{MinerState, Moving};
use super::{Proxy, Route};
use crate::pool::Health;
use crate::splitter::balance::{self, Member};
use crate::splitter::{Alone, Assigned};
use crate::stratum::StratumError;
use crate::{GroupId, MinerId, UpstreamId};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Shares for a moved miner's old jobs are honoured this long after the move.
pub const MOVE_GRACE: Duration = Duration::from_secs(5);
/// A planned move waits this long at most for the miner's upstream's next job.
pub const PLAN_DEADLINE: Duration = Duration::from_secs(30);
/// Weighted groups are looked at this often (and at once when a pool goes up or down).
pub const REBALANCE_EVERY: u32 = 10;

impl Proxy {
    /// Puts a miner on an upstream of `group`, or on one of its own (`alone`).
    pub(super) fn place_for(&mut self, group: GroupId, id: MinerId, alone: Option<Alone>, now: Instant) -> Result<Assigned, StratumError> {
        let Some(why) = alone else { return self.place(group, id, now) };
        let lane = self.choose_lane(group)?;
        let seat = self.seat(id, group);
        self.splitter.place_alone(group, lane, id, seat, why, now)
    }

    /// The lane of `group` a new miner goes to: the balance's choice in a weighted group.
    fn choose_lane(&mut self, group: GroupId) -> Result<usize, StratumError> {
        let g = self.groups.get_mut(group).filter(|g| !g.pools.is_empty()).ok_or(StratumError::PoolUnavailable)?;
        if !g.is_weighted() {
            return Ok(0);
        }
        let usable = g.usable();
        g.loads.resize(g.lanes.len(), 0.0);
        let lane = balance::choose(&g.weights(), &usable, &g.loads).unwrap_or(0);
        // Counted until the next rebalance measures again.
        g.loads[lane] += g.unit_load;
        Ok(lane)
    }

    /// Puts a miner on an upstream of `group`: the lane the balance chooses (the only lane
    /// of an unweighted group).
    pub(super) fn place(&mut self, group: GroupId, id: MinerId, now: Instant) -> Result<Assigned, StratumError> {
        let lane = self.choose_lane(group)?;
        let seat = self.seat(id, group);
        self.splitter.place(group, lane, id, seat, now)
    }

    /// Moves a logged-in miner to an upstream of `lane` of its group. Returns false when
    /// it cannot (no room: the miner stays where it is).
    pub(super) fn move_miner(&mut self, id: MinerId, lane: usize, now: Instant) -> bool {
        let Some(m) = self.miners.get_mut(id.0).filter(|m| m.state != MinerState::Closing) else { return false };
        let Some(route) = m.route else { return false };
        let group = m.group;
        let mv = m.moving.get_or_insert_with(Box::default);
        mv.planned = None;
        if let Some(to) = mv.to.take() {
            // A move already under way is called off for this one.
            if let Some((uid, link)) = self.splitter.release(to.upstream(), to.slot, id, now) {
                self.close_link(uid, link);
            }
        }
        if self.splitter.get(route.upstream()).is_some_and(|u| u.lane == lane && u.group == group) {
            return true;
        }
        let seat = self.seat(id, group);
        let a = match self.splitter.place(group, lane, id, seat, now) {
            Ok(a) => a,
            Err(e) => {
                log::debug!("miner {}: cannot move to lane {lane}: {e}", self.miners[id.0].peer);
                return false;
            }
        };
        if a.created {
            self.connect_link(a.upstream, now);
        }
        let to = Route::new(a.upstream, a.slot);
        if self.splitter.mapper(a.upstream).is_some_and(|m| m.is_live()) {
            self.complete_move(id, to, now);
        } else if let Some(mv) = self.miners.get_mut(id.0).and_then(|m| m.moving.as_deref_mut()) {
            mv.to = Some(to);
        }
        true
    }

    /// The miner takes the slot `to` reserved for it: new route, the new upstream's job,
    /// and the old slot left dead (shares for the old jobs are honoured for a while).
    pub(super) fn complete_move(&mut self, id: MinerId, to: Route, now: Instant) {
        let Some(m) = self.miners.get_mut(id.0) else { return };
        let Some(old) = m.route.replace(to) else { return };
        m.new_upstream();
        let mv = m.moving.get_or_insert_with(Box::default);
        mv.to = None;
        mv.planned = None;
        mv.from = Some((old, now + MOVE_GRACE));
        let worker = m.worker();
        log::debug!("miner {} moved from upstream #{} to #{}", m.peer, old.upstream().0, to.upstream().0);
        if let Some((uid, link)) = self.splitter.logout(old.upstream(), old.slot, id, now) {
            self.close_link(uid, link);
        }
        if let Some(w) = worker {
            self.note_worker_pool(w, to.upstream());
        }
        self.deliver_to(id, now);
    }

    /// The pool a worker's miners mine to now, for `/1/workers` and the metrics.
    pub(super) fn note_worker_pool(&mut self, worker: usize, uid: UpstreamId) {
        let Proxy { splitter, groups, workers, .. } = self;
        if let Some((_, _, pool)) = super::upstream::pool_in(splitter, groups, uid) {
            workers.set_pool(worker, &pool.url);
        }
    }

    /// Once a second: groups whose lanes changed, and every weighted group each
    /// `REBALANCE_EVERY` seconds.
    pub(super) fn rebalance_tick(&mut self, now: Instant) {
        let clock = self.clock(now);
        let mut due = std::mem::take(&mut self.rebalance_due);
        if clock.is_multiple_of(REBALANCE_EVERY) {
            due.extend(self.groups.iter().filter(|(_, g)| g.is_weighted()).map(|(id, _)| id));
        }
        due.sort();
        due.dedup();
        for group in due {
            self.rebalance(group, now);
        }
    }

    /// Measures a weighted group's lanes and moves miners so each gets its part.
    pub(super) fn rebalance(&mut self, group: GroupId, now: Instant) {
        let clock = self.clock(now);
        let Some(g) = self.groups.get(group).filter(|g| g.is_weighted()) else { return };
        let (weights, usable) = (g.weights(), g.usable());
        // Miners of the group where they will be: a reserved slot counts as arrived.
        let mut members = Vec::new();
        for (uid, u) in self.splitter.iter().filter(|(_, u)| u.group == group) {
            for (_, mid) in u.mapper.miners() {
                let Some(m) = self.miners.get(mid.0).filter(|m| m.state != MinerState::Closing) else { continue };
                let target = m.moving.as_ref().and_then(|mv| mv.to).map(|r| r.upstream());
                let here = m.route.map(|r| r.upstream());
                if (target.is_some() && target != Some(uid)) || (target.is_none() && here != Some(uid)) {
                    continue;
                }
                members.push(Member { miner: mid, lane: u.lane, rate: m.rate.rate(clock) });
            }
        }
        let loads = balance::loads(weights.len(), &members);
        let unit = if members.is_empty() { 1.0 } else { loads.iter().sum::<f64>() / members.len() as f64 };
        if let Some(g) = self.groups.get_mut(group) {
            g.loads = loads;
            g.unit_load = unit;
        }
        let moves = balance::plan(&weights, &usable, &members);
        if moves.is_empty() {
            return;
        }
        let name = self.groups.get(group).map(|g| g.name.to_string()).unwrap_or_default();
        let (mut now_moved, mut planned) = (0, 0);
        for mv in moves {
            if mv.urgent {
                now_moved += usize::from(self.move_miner(mv.miner, mv.to, now));
            } else if let Some(m) = self.miners.get_mut(mv.miner.0) {
                m.moving.get_or_insert_with(Box::default).planned = Some((mv.to, now + PLAN_DEADLINE));
                planned += 1;
            }
        }
        log::info!("group {name}: rebalancing, {now_moved} miners moved off pools that are down, {planned} to move at their next job");
    }

    /// Removes upstreams idle past their keep time. A weighted pool known to be down, in a
    /// group that has miners, keeps one upstream to be retried through; a lane left
    /// without upstreams is presumed usable again, so the next miner tries it.
    pub(super) fn collect_idle_upstreams(&mut self, now: Instant) {
        let mut busy_groups = HashSet::new();
        for (_, u) in self.splitter.iter().filter(|(_, u)| u.mapper.active() > 0) {
            busy_groups.insert(u.group);
        }
        let groups = &self.groups;
        let keep = |g: GroupId, lane: usize| {
            let down = groups.get(g).and_then(|g| g.lanes.get(lane)).is_some_and(|l| l.weight.is_some() && l.health == Health::Down);
            down && busy_groups.contains(&g)
        };
        for (uid, link) in self.splitter.collect_idle(now, keep) {
            log::debug!("upstream #{} idle, closing", uid.0);
            self.close_link(uid, link);
        }
        let served: HashSet<(GroupId, usize)> = self.splitter.iter().map(|(_, u)| (u.group, u.lane)).collect();
        for (gid, g) in self.groups.iter_mut() {
            for (i, lane) in g.lanes.iter_mut().enumerate() {
                if lane.health == Health::Down && !served.contains(&(gid, i)) {
                    lane.health = Health::Unknown;
                }
            }
        }
    }
}

/// Whether a miner found on upstream `uid` during a job fan-out must be handled as a
/// move: it arrives (its route is elsewhere: `uid` holds its reservation) or it was asked
/// to leave at this job.
pub(super) fn moves_at_job(moving: Option<&Moving>, route: Option<Route>, uid: UpstreamId) -> bool {
    let arriving = route.is_some_and(|r| r.upstream() != uid);
    arriving || moving.is_some_and(|m| m.planned.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_fan_out_moves_arrivals_and_planned_departures_only() {
        let here = UpstreamId(3);
        let on_here = Some(Route::new(here, 7));
        let elsewhere = Some(Route::new(UpstreamId(1), 2));
        assert!(!moves_at_job(None, on_here, here), "a miner at home gets the job");
        let grace = Moving { from: Some((Route::new(UpstreamId(1), 2), Instant::now())), ..Moving::default() };
        assert!(!moves_at_job(Some(&grace), on_here, here), "a miner in its grace window just mines");
        assert!(moves_at_job(None, elsewhere, here), "a reservation here: the miner arrives with this job");
        let planned = Moving { planned: Some((1, Instant::now())), ..Moving::default() };
        assert!(moves_at_job(Some(&planned), on_here, here), "asked to leave at this job");
    }
}
