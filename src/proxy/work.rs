//! Work flowing through an upstream: a pool job goes down to every miner on it (encoded
//! once, patched per miner), and checked shares go up to the pool, gathered per loop pass.

use super::miner::{Delivery, Undelivered, deliver_job};
use super::moves::moves_at_job;
use super::upstream::PoolProto;
use super::{Proxy, Route};
use crate::splitter::{Mapper, Pending};
use crate::stratum::request::Submit;
use crate::stratum::{Job, StratumError, write};
use crate::{MinerId, UpstreamId};
use std::time::Instant;

/// Submits gathered for one pool in a pass are written once they pass this many bytes
/// (about 18 submits), which bounds each link's buffer; the rest go at the end of the pass.
const OUTBOX_BATCH: usize = 4096;

impl Proxy {
    /// Takes a job from the pool, encodes it once, and sends it to every miner on the upstream.
    pub(super) fn new_job(&mut self, uid: UpstreamId, params: &serde_json::Value, now: Instant) {
        let Some(u) = self.splitter.get(uid) else { return };
        let generation = u.link.session.generation;
        let default_algo = self.pool_of(uid).and_then(|(_, _, p)| p.algo.clone());
        let job = match Job::from_value(params, default_algo.as_deref()) {
            Ok(j) => j,
            Err(e) => {
                log::warn!("upstream #{}: pool job dropped: {e}", uid.0);
                return;
            }
        };
        log::debug!("upstream #{}: new job {} diff {}", uid.0, job.job_id, job.diff);
        let Some(mapper) = self.splitter.mapper_mut(uid) else { return };
        let (old, new) = (mapper.pool_difficulty(), job.diff as f64);
        mapper.set_job(job, generation);
        if let Some(old) = old.filter(|o| *o != new) {
            self.pool_difficulty_changed(uid, old, new, now);
        }
        self.broadcast(uid, now);
    }

    /// Sends the upstream's current job to each of its miners. Miners arriving here by a
    /// move get it as their first job on this upstream; miners asked to leave at this job
    /// move now (and get this job after all when they cannot).
    pub(super) fn broadcast(&mut self, uid: UpstreamId, now: Instant) {
        let Proxy { splitter, miners, scratch, extensions, vardiff, .. } = self;
        let Some(mapper) = splitter.mapper_mut(uid) else { return };
        let mut d = Delivery { scratch, extensions, vardiff, now };
        let mut failed: Vec<(MinerId, Undelivered)> = Vec::new();
        let mut moving: Vec<(MinerId, u16)> = Vec::new();
        let mut sent = 0;
        // CryptoNote scans its slot table in place; v1 lists its (sparse) prefixes.
        let listed = mapper.v1().map(|_| mapper.miners());
        let count = listed.as_ref().map_or(mapper.slots(), Vec::len);
        for i in 0..count {
            let (slot, mid) = match &listed {
                Some(list) => list[i],
                None => match mapper.miner_at(i as u16) {
                    Some(mid) => (i as u16, mid),
                    None => continue,
                },
            };
            let Some(miner) = miners.get_mut(mid.0) else { continue };
            if moves_at_job(miner.moving.as_deref(), miner.route, uid) {
                moving.push((mid, slot));
                continue;
            }
            sent += 1;
            if let Err(why) = deliver_job(mapper, miner, slot, &mut d) {
                failed.push((mid, why));
            }
        }
        log::debug!("upstream #{}: job sent to {sent} miners in {} us", uid.0, now.elapsed().as_micros());
        for (mid, why) in failed {
            self.close_undelivered(mid, why, now);
        }
        for (mid, slot) in moving {
            self.job_for_moving(uid, mid, slot, now);
        }
    }

    /// A job on `uid` for a miner that is arriving there or was asked to leave.
    fn job_for_moving(&mut self, uid: UpstreamId, mid: MinerId, slot: u16, now: Instant) {
        let Some(m) = self.miners.get(mid.0) else { return };
        if m.route.is_some_and(|r| r.upstream() != uid) {
            return self.complete_move(mid, Route::new(uid, slot), now);
        }
        if let Some(lane) = m.moving.as_ref().and_then(|mv| mv.planned).map(|(lane, _)| lane) {
            self.move_miner(mid, lane, now);
        }
        // Still here (the move waits for its target, or could not be made): mine this job.
        if self.miners.get(mid.0).is_some_and(|m| m.route == Some(Route::new(uid, slot))) {
            self.deliver_to(mid, now);
        }
    }

    /// Gathers a checked share for the pool: `encode` writes it with our own request id
    /// (the dialect's submit); the miner is answered when the pool replies.
    pub(super) fn forward(
        &mut self,
        uid: UpstreamId,
        p: Pending,
        now: Instant,
        encode: impl FnOnce(&mut Vec<u8>, u64, &PoolProto, &Mapper),
    ) -> Result<(), StratumError> {
        let Some(u) = self.splitter.get_mut(uid).filter(|u| u.link.session.is_active()) else {
            return Err(StratumError::PoolUnavailable);
        };
        if u.link.outbox.len() >= OUTBOX_BATCH {
            // A burst: send what is gathered now rather than grow every link's buffer to
            // the burst's size (the capacity would stay, 40 links x ~15 KB at 10k miners).
            if let Err(e) = u.link.write_outbox() {
                self.fail_link(uid, &e.to_string(), now);
                return Err(StratumError::PoolUnavailable);
            }
        }
        let (link, mapper) = (&mut u.link, &mut u.mapper);
        let id = link.session.take_id();
        link.session.last_send = now;
        if link.outbox.is_empty() {
            self.dirty_links.push(uid);
        }
        encode(&mut link.outbox, id, &link.proto, mapper);
        mapper.add_pending(id, p);
        Ok(())
    }

    /// A CryptoNote share for the pool: `submit` with the pool's session id.
    pub(super) fn forward_share(&mut self, uid: UpstreamId, s: &Submit<'_>, p: Pending, now: Instant) -> Result<(), StratumError> {
        self.forward(uid, p, now, |out, id, proto, mapper| {
            if let (PoolProto::CryptoNote { session }, crate::splitter::Work::CryptoNote(w)) = (proto, mapper.work()) {
                let algo = mapper.job().and_then(|j| j.algo.as_deref());
                write::pool_submit(out, id, session, w.pool_job_id(&s.job_id), &s.nonce, &s.result, algo);
            }
        })
    }

    /// Writes the submits gathered during this loop pass: one write per upstream instead of
    /// one per share (and one wake-up of the pool instead of many).
    pub(super) fn flush_links(&mut self, now: Instant) {
        while let Some(uid) = self.dirty_links.pop() {
            let Some(link) = self.link_mut(uid) else { continue };
            if let Err(e) = link.write_outbox() {
                self.fail_link(uid, &e.to_string(), now);
            }
        }
    }
}
