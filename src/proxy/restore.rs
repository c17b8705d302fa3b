//! Session restore: a rig that drops (a flaky link, a miner restart) and comes back with
//! the same login and rig id within a minute gets the upstream it left, which was kept
//! for it meanwhile (even in simple mode, where it would otherwise close at once), so it
//! gets that upstream's current job and its difficulty in the login reply with no new
//! pool login.

use super::{Miner, Proxy};
use crate::splitter::Assigned;
use crate::{GroupId, MinerId, UpstreamId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a dropped rig's upstream and difficulty are kept for it.
pub const RESTORE_GRACE: Duration = Duration::from_secs(60);
/// Dropped rigs remembered at most (a mass disconnect of a big farm fits).
const MAX_PARKED: usize = 100_000;

/// What a dropped rig left behind.
#[derive(Debug)]
pub(super) struct Parked {
    group: GroupId,
    upstream: UpstreamId,
    /// Its difficulty (with vardiff's measurements).
    diff_mode: crate::splitter::vardiff::MinerDiff,
    until: Instant,
}

/// Dropped rigs by login and rig id.
pub(super) type ParkedRigs = HashMap<Box<str>, Parked>;

fn key(user: &str, rig: Option<&str>) -> Box<str> {
    format!("{user}\n{}", rig.unwrap_or("")).into()
}

impl Proxy {
    /// A logged-in miner is going: remember its upstream (held for it) and difficulty.
    pub(super) fn park(&mut self, miner: &Miner, now: Instant) {
        let (Some(id), Some(route)) = (miner.identity.as_deref(), miner.route) else { return };
        if self.stopping.is_some() || self.groups.get(miner.group).is_none() || self.parked.len() >= MAX_PARKED {
            return;
        }
        let until = now + RESTORE_GRACE;
        let Some(u) = self.splitter.get_mut(route.upstream()).filter(|u| u.group == miner.group) else { return };
        u.held_until = Some(until);
        let parked = Parked { group: miner.group, upstream: route.upstream(), diff_mode: miner.diff_mode, until };
        self.parked.insert(key(&id.user, id.rig_id.as_deref()), parked);
    }

    /// A login that may be a rig coming back: its old upstream (when still there and with
    /// room) and its difficulty.
    pub(super) fn unpark(
        &mut self,
        user: &str,
        rig: Option<&str>,
        group: GroupId,
        id: MinerId,
        now: Instant,
    ) -> Option<(Assigned, crate::splitter::vardiff::MinerDiff)> {
        if self.parked.is_empty() {
            return None;
        }
        let p = self.parked.remove(&key(user, rig)).filter(|p| p.group == group && now < p.until)?;
        let seat = self.seat(id, group);
        let a = self.splitter.place_on(p.upstream, group, id, seat)?;
        log::debug!("rig {user}/{} back within the grace period: upstream #{} restored", rig.unwrap_or("-"), p.upstream.0);
        Some((a, p.diff_mode))
    }

    /// Every ten seconds: forget rigs that did not come back.
    pub(super) fn parked_tick(&mut self, now: Instant) {
        if !self.parked.is_empty() && self.clock(now).is_multiple_of(10) {
            self.parked.retain(|_, p| now < p.until);
        }
    }
}
