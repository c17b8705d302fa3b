//! The CryptoNote (xmrig) dialect of a pool: `login` with the pool's credentials, whose
//! reply carries the session id and usually the first job; `job` pushes; `submit` with
//! the session id; `keepalived`.

use super::PoolProto;
use crate::AGENT;
use crate::UpstreamId;
use crate::pool::Health;
use crate::pool::message::{self, PoolMessage};
use crate::proxy::Proxy;
use crate::stratum::{StratumError, write};
use std::time::Instant;

impl Proxy {
    /// Logs in with the pool's user, password, our agent, and its rig id and algorithm.
    pub(super) fn cryptonote_login(&mut self, uid: UpstreamId, now: Instant) {
        let Some(id) = self.link_mut(uid).map(|l| l.session.login_sent(now)) else { return };
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        if let Some((_, _, pool)) = self.pool_of(uid) {
            write::pool_login(&mut buf, id, &pool.user, &pool.pass, AGENT, pool.rig_id.as_deref(), pool.algo.as_deref());
            log::debug!("upstream #{} connected to {}, logging in as {}", uid.0, pool.url, pool.user);
        }
        self.scratch = buf;
        if !self.scratch.is_empty() {
            self.send_to_pool(uid, now);
        }
    }

    /// A line from a CryptoNote pool: replies to the login and to submits, job pushes.
    pub(super) fn cryptonote_pool_line(&mut self, uid: UpstreamId, line: &[u8], now: Instant) {
        let msg = match message::parse(line) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("upstream #{}: ignoring pool line: {e}", uid.0);
                return;
            }
        };
        let Some(u) = self.splitter.get_mut(uid) else { return };
        match msg {
            PoolMessage::Reply { id, result } if u.link.session.is_login_reply(id) => self.login_result(uid, result, now),
            PoolMessage::Reply { id, result } if u.link.session.answered(id, result.is_err()) => {
                log::debug!("upstream #{}: keepalive answered", uid.0);
            }
            PoolMessage::Reply { id, result } => {
                let Some(p) = u.mapper.take_pending(id) else {
                    log::debug!("upstream #{}: reply to unknown request {id}", uid.0);
                    return;
                };
                self.answer_share(uid, p, result.map(|_| ()).map_err(StratumError::Pool), now);
            }
            PoolMessage::Job(params) if u.link.session.is_active() => {
                u.link.session.got_job(now);
                self.new_job(uid, &params, now)
            }
            PoolMessage::Job(_) => log::warn!("upstream #{}: job before login, ignored", uid.0),
            PoolMessage::Other(method) => log::debug!("upstream #{}: ignoring method {method}", uid.0),
        }
    }

    fn login_result(&mut self, uid: UpstreamId, result: Result<&serde_json::value::RawValue, String>, now: Instant) {
        let login = match result.and_then(message::parse_login) {
            Ok(l) => l,
            Err(e) => return self.fail_link(uid, &format!("login refused: {e}"), now),
        };
        let Some(u) = self.splitter.get_mut(uid) else { return };
        u.link.session.logged_in(now);
        u.mapper.restart_idle_clock(now);
        u.link.proto = PoolProto::CryptoNote { session: login.session };
        let (group, lane) = (u.group, u.lane);
        self.set_lane_health(group, lane, Health::Up);
        if let Some((_, index, pool)) = self.pool_of(uid) {
            let fallback = if index > 0 && !self.groups.get(group).is_some_and(|g| g.is_weighted()) { " (fallback)" } else { "" };
            log::info!("upstream #{} logged in to {}{fallback}", uid.0, pool.url);
        }
        match login.job {
            Some(job) => self.new_job(uid, &job, now),
            None => log::debug!("upstream #{}: login reply without a job, waiting for one", uid.0),
        }
    }
}
