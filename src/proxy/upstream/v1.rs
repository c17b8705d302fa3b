//! The stratum v1 dialect of a pool: `mining.configure` (version rolling),
//! `mining.subscribe` (the pool's extranonce1 and extranonce2 size), `mining.authorize`
//! with the pool's (or account's) user and password, `mining.extranonce.subscribe`; then
//! `mining.set_difficulty`, `mining.notify`, `mining.set_extranonce`,
//! `mining.set_version_mask` and `client.reconnect` from the pool, and replies to our
//! submits correlated by our own ids.

use super::PoolProto;
use crate::pool::Health;
use crate::proxy::Proxy;
use crate::stratum::StratumError;
use crate::stratum::v1::pool_message::{self, PoolMessage};
use crate::stratum::v1::write;
use crate::{AGENT, MinerId, UpstreamId};
use std::time::Instant;

impl Proxy {
    /// The four requests of a v1 login, written at once (pools answer them in order); the
    /// authorize reply completes the login.
    pub(super) fn v1_login(&mut self, uid: UpstreamId, now: Instant) {
        let Some(pool) = self.pool_of(uid).map(|(_, _, p)| (p.user.clone(), p.pass.clone(), p.url.clone())) else { return };
        let Some(link) = self.link_mut(uid) else { return };
        let authorize = link.session.login_sent(now);
        let (configure, subscribe, extranonce) = (link.session.take_id(), link.session.take_id(), link.session.take_id());
        link.proto = PoolProto::V1 { user: pool.0.clone(), configure, subscribe, subscribed: false };
        self.scratch.clear();
        write::pool_configure(&mut self.scratch, configure);
        write::pool_subscribe(&mut self.scratch, subscribe, AGENT, None);
        write::pool_authorize(&mut self.scratch, authorize, &pool.0, &pool.1);
        write::pool_extranonce_subscribe(&mut self.scratch, extranonce);
        log::debug!("upstream #{} connected to {}, subscribing and authorizing as {}", uid.0, pool.2, pool.0);
        self.send_to_pool(uid, now);
    }

    /// A line from a v1 pool.
    pub(super) fn v1_pool_line(&mut self, uid: UpstreamId, line: &[u8], now: Instant) {
        let msg = match pool_message::parse_pool(line) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("upstream #{}: ignoring pool line: {e:?}", uid.0);
                return;
            }
        };
        let Some(u) = self.splitter.get_mut(uid) else { return };
        let PoolProto::V1 { configure, subscribe, .. } = u.link.proto else { return };
        match msg {
            PoolMessage::Reply(r) if r.id == configure => {
                if let Some(w) = u.mapper.v1_mut() {
                    w.pool_mask = pool_message::configure_result(&r).unwrap_or(0);
                }
            }
            PoolMessage::Reply(r) if r.id == subscribe => match pool_message::subscribe_result(&r) {
                Some(sub) => {
                    if let PoolProto::V1 { subscribed, .. } = &mut u.link.proto {
                        *subscribed = true;
                    }
                    let misfits = u.mapper.set_v1_session(&sub.extranonce1, sub.extranonce2_size);
                    log::debug!("upstream #{}: subscribed, extranonce2 size {}", uid.0, sub.extranonce2_size);
                    self.v1_refit_all(uid, misfits, now);
                }
                None => self.fail_link(uid, "the pool refused our subscribe", now),
            },
            PoolMessage::Reply(r) if u.link.session.is_login_reply(r.id) => {
                let subscribed = matches!(u.link.proto, PoolProto::V1 { subscribed: true, .. });
                if !r.is_true() || !subscribed {
                    let why = r.error.as_ref().map_or("authorize refused".to_string(), |e| format!("authorize refused: {}", e.message));
                    return self.fail_link(uid, &why, now);
                }
                u.link.session.logged_in(now);
                u.mapper.restart_idle_clock(now);
                u.mapper.set_live();
                // A new pool session: its first job reaches every miner clean, with the
                // difficulty, whatever flag the pool set (the old session's jobs are void).
                for (_, id) in u.mapper.miners() {
                    if let Some(m) = self.miners.get_mut(id.0) {
                        m.new_upstream();
                    }
                }
                let Some(u) = self.splitter.get(uid) else { return };
                let (group, lane) = (u.group, u.lane);
                self.set_lane_health(group, lane, Health::Up);
                if let Some((_, _, pool)) = self.pool_of(uid) {
                    log::info!("upstream #{} logged in to {} (stratum v1)", uid.0, pool.url);
                }
                self.broadcast(uid, now);
            }
            PoolMessage::Reply(r) => {
                let Some(p) = u.mapper.take_pending(r.id) else {
                    log::debug!("upstream #{}: reply to request {} we do not wait for", uid.0, r.id);
                    return;
                };
                let result = if r.is_true() { Ok(()) } else { Err(StratumError::Pool(r.to_v1_error().message().to_string())) };
                self.answer_share(uid, p, result, now);
            }
            PoolMessage::Notify(job) => {
                u.link.session.got_job(now);
                log::debug!("upstream #{}: new job {}{}", uid.0, job.job_id, if job.clean { " (clean)" } else { "" });
                u.mapper.add_v1_job(job);
                if u.mapper.is_live() {
                    self.broadcast(uid, now);
                }
            }
            PoolMessage::SetDifficulty(d) => u.mapper.set_v1_pool_difficulty(d),
            PoolMessage::SetExtranonce { extranonce1, extranonce2_size } => {
                let size = extranonce2_size.or_else(|| u.mapper.v1().map(|w| w.pool_extranonce2_size())).unwrap_or(0);
                let misfits = u.mapper.set_v1_session(&extranonce1, size);
                log::info!("upstream #{}: the pool set a new extranonce (extranonce2 size {size})", uid.0);
                self.v1_refit_all(uid, misfits, now);
            }
            PoolMessage::SetVersionMask(mask) => {
                if let Some(w) = u.mapper.v1_mut() {
                    w.pool_mask = mask;
                }
                self.v1_version_mask(uid, mask);
            }
            PoolMessage::Reconnect { .. } => self.fail_link(uid, "the pool asked us to reconnect", now),
            PoolMessage::Other { id, method } => {
                log::debug!("upstream #{}: ignoring method {method}", uid.0);
                if id != "null" {
                    self.scratch.clear();
                    if method == "client.get_version" {
                        self.scratch.extend_from_slice(format!("{{\"id\":{id},\"result\":\"{AGENT}\",\"error\":null}}\n").as_bytes());
                    } else {
                        self.scratch.extend_from_slice(
                            format!("{{\"id\":{id},\"result\":null,\"error\":[20,\"Not supported\",null]}}\n").as_bytes(),
                        );
                    }
                    self.send_to_pool(uid, now);
                }
            }
        }
    }

    /// Miners of `uid` whose promised split no longer fits: each gets a new extranonce or
    /// is asked to reconnect.
    fn v1_refit_all(&mut self, uid: UpstreamId, misfits: Vec<(u16, MinerId)>, now: Instant) {
        if !misfits.is_empty() {
            log::info!("upstream #{}: the pool's extranonce2 size changed the split; {} miners get a new extranonce", uid.0, misfits.len());
        }
        for (_, id) in misfits {
            self.v1_refit(id, uid, now);
        }
    }

    /// The pool's version mask changed: each miner rolling bits gets its new grant.
    fn v1_version_mask(&mut self, uid: UpstreamId, pool_mask: u32) {
        let miners = self.splitter.mapper(uid).map(|m| m.miners()).unwrap_or_default();
        for (_, id) in miners {
            let Some(m) = self.miners.get_mut(id.0) else { continue };
            let crate::proxy::miner::Proto::V1(v) = &mut m.proto else { continue };
            let Some(asked) = v.asked_mask else { continue };
            let grant = asked & pool_mask;
            if grant != v.mask {
                v.mask = grant;
                self.scratch.clear();
                write::set_version_mask(&mut self.scratch, grant);
                if let Err(e) = m.conn.send(&self.scratch) {
                    self.close_miner(id, &e.to_string());
                }
            }
        }
    }
}
