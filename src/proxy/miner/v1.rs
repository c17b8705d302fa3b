//! The stratum v1 dialect of a miner (cpuminer, cgminer and the ASIC firmware built on
//! it): `mining.configure` (version rolling), `mining.subscribe`, `mining.authorize`,
//! `mining.extranonce.subscribe`, `mining.submit`; jobs as `mining.notify` after a
//! `mining.set_difficulty`.
//!
//! A miner's extranonce is promised at subscribe (see `splitter::v1`): its prefix comes
//! from an upstream of the port's group when the port has pools, and from a proxy-wide
//! counter otherwise (the account it mines for is only known at authorize). At authorize
//! it takes its seat, with that prefix, on an upstream of its account or port group.

use super::{Delivery, Identity, Miner, MinerState, Proto, Undelivered, constant_time_eq};
use crate::logs::{PeerText, Topic};
use crate::proxy::accounts::worker_user;
use crate::proxy::{Proxy, Route, custom_diff};
use crate::splitter::v1::V1Split;
use crate::splitter::vardiff::VardiffConfig;
use crate::splitter::{Mapper, Pending};
use crate::stats::workers::LoginFields;
use crate::stratum::StratumError;
use crate::stratum::algo::Dialect;
use crate::stratum::v1::check::MinerDifficulty;
use crate::stratum::v1::error::V1Error;
use crate::stratum::v1::message::{self, Configure, Method, Submit};
use crate::stratum::v1::write::{self, Grants};
use crate::{GroupId, MinerId, UpstreamId};
use std::time::Instant;

/// Version bits granted before the pool's own mask is known (BIP 320's general purpose bits).
const DEFAULT_POOL_MASK: u32 = 0x1fff_e000;

/// What the v1 dialect keeps per miner.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct V1Miner {
    /// The split promised at subscribe: prefix length, extranonce2 size.
    pub promise: (usize, usize),
    /// The prefix (as a slot number) the miner mines with, once subscribed.
    pub prefix: Option<u16>,
    /// The session id we gave at subscribe.
    pub session: u32,
    /// The miner accepts `mining.set_extranonce`.
    pub extranonce_subscribe: bool,
    /// The version mask the miner asked to roll, and the one it was granted.
    pub asked_mask: Option<u32>,
    pub mask: u32,
    /// Its difficulty, remembering the previous one for jobs sent before a change.
    pub difficulty: MinerDifficulty,
    /// It had `set_difficulty` and a clean job on its current upstream.
    pub primed: bool,
    /// The agent it named at subscribe.
    pub agent: Box<str>,
    /// A difficulty the miner asked for (`mining.suggest_difficulty`); used when below the
    /// pool's, like a custom difficulty.
    pub suggested: Option<f64>,
}

impl Default for V1Miner {
    fn default() -> V1Miner {
        V1Miner {
            promise: V1Split::STANDARD.promise(),
            prefix: None,
            session: 0,
            extranonce_subscribe: false,
            asked_mask: None,
            mask: 0,
            difficulty: MinerDifficulty::new(0.0),
            primed: false,
            agent: "".into(),
            suggested: None,
        }
    }
}

fn v1(m: &mut Miner) -> Option<&mut V1Miner> {
    match &mut m.proto {
        Proto::V1(v) => Some(v),
        _ => None,
    }
}

/// Sends the upstream's current job to a v1 miner: the notify line every miner of the
/// upstream gets, preceded by `mining.set_difficulty` and sent clean when the miner's
/// difficulty changes or it is new to the upstream (firmware counts shares under a newer
/// difficulty as rejects otherwise).
pub(super) fn deliver_job(mapper: &Mapper, miner: &mut Miner, vd: &VardiffConfig, d: &mut Delivery<'_>) -> Result<(), Undelivered> {
    if miner.state != MinerState::Ready {
        return Ok(());
    }
    let (scratch, now) = (&mut *d.scratch, d.now);
    let Some(w) = mapper.v1() else { return Err(Undelivered::Unfit("its pool does not speak stratum v1".into())) };
    let Some(job) = w.current() else { return Ok(()) };
    let pool = w.pool_difficulty();
    // Vardiff's (or the custom) difficulty, lowered further by the miner's suggestion:
    // shares between it and the pool's are answered here.
    let mode = miner.diff_mode.difficulty(vd, pool);
    let Some(v) = v1(miner) else { return Ok(()) };
    let want = v.suggested.filter(|d| *d < mode).unwrap_or(mode);
    let sent = if !v.primed || want != v.difficulty.current() {
        scratch.clear();
        write::set_difficulty(scratch, want);
        job.write_clean(scratch);
        v.difficulty.set(want, job.seq);
        v.primed = true;
        miner.conn.send(scratch)
    } else {
        miner.conn.send(job.line())
    };
    miner.last_seen = now;
    sent.map_err(Undelivered::Io)
}

impl Proxy {
    /// One line from a v1 miner.
    pub(super) fn v1_line(&mut self, id: MinerId, line: &[u8], now: Instant) {
        let req = match message::parse_request(line) {
            Ok(r) => r,
            Err(e) => {
                log::debug!("miner {}: {e:?}", self.miners[id.0].peer);
                return self.close_miner(id, "malformed request");
            }
        };
        let rid = req.id;
        match req.method {
            Method::Configure(c) => self.v1_configure(id, rid, &c),
            Method::Subscribe { agent, session } => self.v1_subscribe(id, rid, agent, session, now),
            Method::ExtranonceSubscribe => {
                if let Some(v) = v1(&mut self.miners[id.0]) {
                    v.extranonce_subscribe = true;
                }
                self.v1_bool(id, rid, true);
            }
            Method::Authorize { user, pass } => self.v1_authorize(id, rid, &user, &pass, now),
            // A suggestion below the pool's difficulty is the miner's custom difficulty.
            Method::SuggestDifficulty(d) => {
                if let Some(v) = v1(&mut self.miners[id.0]) {
                    v.suggested = d;
                }
                self.v1_bool(id, rid, true);
            }
            Method::Submit(s) => self.v1_submit(id, rid, &s, now),
            Method::Other(m) => {
                log::debug!("miner {}: unknown method {m}", self.miners[id.0].peer);
                self.v1_error(id, rid, &V1Error::Other("Unknown method"));
            }
        }
    }

    /// BIP 310: grants the version bits the pool lets us roll, within the miner's mask.
    fn v1_configure(&mut self, id: MinerId, rid: &str, c: &Configure) {
        let pool_mask = self.miners[id.0].route.and_then(|r| self.splitter.mapper(r.upstream())).and_then(|m| m.v1()).map(|w| w.pool_mask);
        let pool_mask = pool_mask.filter(|m| *m != 0).unwrap_or(DEFAULT_POOL_MASK);
        let Some(v) = v1(&mut self.miners[id.0]) else { return };
        let granted = c.version_rolling.map(|vr| {
            v.asked_mask = Some(vr.mask);
            vr.grant(pool_mask)
        });
        if let Some(g) = granted {
            v.mask = g;
        }
        self.scratch.clear();
        let grants = Grants {
            version_mask: granted,
            minimum_difficulty: false,
            subscribe_extranonce: c.extensions.iter().any(|e| e == "subscribe-extranonce"),
        };
        write::configure_reply(&mut self.scratch, rid, c, grants);
        self.send_scratch(id);
    }

    /// Promises the miner its extranonce: a prefix from an upstream of the port's group
    /// when it has pools, else from the proxy-wide counter (its account comes later).
    fn v1_subscribe(&mut self, id: MinerId, rid: &str, agent: Option<String>, session: Option<String>, now: Instant) {
        let group = self.miners[id.0].group;
        if v1(&mut self.miners[id.0]).is_some_and(|v| v.prefix.is_some()) {
            return self.v1_error(id, rid, &V1Error::Other("Already subscribed"));
        }
        let resumed = session.as_deref().and_then(|s| self.v1_resume.remove(s));
        let known = resumed.or_else(|| self.groups.get(group).filter(|g| !g.pools.is_empty()).map(|_| group));
        let known = known.filter(|g| self.groups.get(*g).is_some_and(|g| g.dialect() == Dialect::StratumV1));
        let promise = known.map_or(V1Split::STANDARD.promise(), |g| self.v1_promise(g));
        let session_id = self.rng.next() as u32;
        if let Some(v) = v1(&mut self.miners[id.0]) {
            v.promise = promise;
            v.session = session_id;
            v.agent = agent.unwrap_or_default().chars().take(128).collect::<String>().into();
        }
        let prefix = match known {
            Some(g) => match self.place(g, id, now) {
                Ok(a) => {
                    self.miners[id.0].group = g;
                    self.miners[id.0].route = Some(Route::new(a.upstream, a.slot));
                    if a.created {
                        self.connect_link(a.upstream, now);
                    }
                    a.slot
                }
                Err(e) => return self.v1_refuse(id, rid, "-", &e, now),
            },
            None => {
                self.next_prefix = self.next_prefix.wrapping_add(1);
                let space = 1u32 << (8 * promise.0.min(2));
                (u32::from(self.next_prefix) % space) as u16
            }
        };
        let Some(v) = v1(&mut self.miners[id.0]) else { return };
        v.prefix = Some(prefix);
        let bytes = crate::stratum::v1::extranonce::Prefix::new(prefix, promise.0);
        self.scratch.clear();
        write::subscribe_reply(&mut self.scratch, rid, &format!("{session_id:08x}"), &[], bytes.as_bytes(), promise.1);
        self.send_scratch(id);
    }

    /// The split miners of a group get now: that of a subscribed upstream of it, else the
    /// standard one.
    pub(super) fn v1_promise(&self, group: GroupId) -> (usize, usize) {
        self.splitter
            .iter()
            .filter(|(_, u)| u.group == group && u.link.session.is_active())
            .find_map(|(_, u)| u.mapper.v1().map(|w| w.split().promise()))
            .unwrap_or(V1Split::STANDARD.promise())
    }

    /// The miner names its account (or worker): it takes its seat in that group.
    fn v1_authorize(&mut self, id: MinerId, rid: &str, user: &str, pass: &str, now: Instant) {
        let Some(prefix) = v1(&mut self.miners[id.0]).and_then(|v| v.prefix) else {
            return self.v1_error(id, rid, &V1Error::NotSubscribed);
        };
        if self.miners[id.0].state != MinerState::WaitLogin {
            return self.v1_bool(id, rid, true);
        }
        if let Some(want) = self.cfg.access_password.as_deref()
            && !constant_time_eq(want.as_bytes(), pass.as_bytes())
        {
            return self.v1_refuse(id, rid, user, &StratumError::InvalidPassword, now);
        }
        let (user, custom) = custom_diff::split(user, self.cfg.custom_diff);
        let group = match self.login_group(id, user) {
            Ok(g) => g,
            Err(e) => return self.v1_refuse(id, rid, user, &e, now),
        };
        if self.groups.get(group).is_none_or(|g| g.dialect() != Dialect::StratumV1) {
            return self.v1_refuse(id, rid, user, &StratumError::Pool("This account's pool does not speak stratum v1".into()), now);
        }
        if self.rig_standing(user, None, now).0 {
            return self.v1_refuse(id, rid, user, &StratumError::RigRefused, now);
        }
        let seated = self.miners[id.0].route.filter(|r| self.splitter.get(r.upstream()).is_some_and(|u| u.group == group));
        let route = match seated {
            Some(r) => r,
            None => {
                // Off the port's upstream (the account is elsewhere), into the account's.
                if let Some(old) = self.miners[id.0].route.take()
                    && let Some((uid, link)) = self.splitter.release(old.upstream(), old.slot, id, now)
                {
                    self.close_link(uid, link);
                }
                self.miners[id.0].group = group;
                let placed = match self.unpark(user, None, group, id, now) {
                    Some((a, kept)) => {
                        self.miners[id.0].diff_mode = kept;
                        Ok(a)
                    }
                    None => self.place(group, id, now),
                };
                match placed {
                    Ok(a) => {
                        if a.created {
                            self.connect_link(a.upstream, now);
                        }
                        Route::new(a.upstream, a.slot)
                    }
                    Err(e) => return self.v1_refuse(id, rid, user, &e, now),
                }
            }
        };
        debug_assert_eq!(route.slot, prefix);
        let restored = self.miners[id.0].diff_mode;
        let diff_mode = if custom > 0 || restored == crate::splitter::vardiff::MinerDiff::Pool {
            self.login_difficulty(id, custom as f64, route.upstream(), now)
        } else {
            restored
        };
        let clock = self.clock(now);
        let peer_ip = self.miners[id.0].peer.ip();
        let agent = v1(&mut self.miners[id.0]).map(|v| v.agent.clone()).unwrap_or_default();
        let fields = LoginFields { user, pass, agent: &agent, rig_id: None, ip: peer_ip, custom_diff: custom };
        let shown_user = worker_user(&self.groups, group, user);
        let worker = self.workers.name_for(&fields).and_then(|name| self.workers.attach(&name, shown_user, peer_ip, clock));
        if let Some(w) = worker {
            self.note_worker_pool(w, route.upstream());
        }
        let (user_ref, agent_ref) = (self.interner.get(user), self.interner.get(&agent));
        let miner = &mut self.miners[id.0];
        miner.group = group;
        miner.route = Some(route);
        miner.set_worker(worker);
        miner.diff_mode = diff_mode;
        miner.identity = Some(Box::new(Identity {
            user: user_ref,
            agent: agent_ref,
            rig_id: None,
            verdicts: Default::default(),
            invalid_run: Default::default(),
        }));
        miner.state = MinerState::Ready;
        log::debug!("v1 miner {} authorized as {user} on upstream #{} prefix {prefix:04x}", miner.peer, route.upstream().0);
        self.log_connect(id);
        self.v1_bool(id, rid, true);
        self.deliver_to(id, now);
    }

    /// A share: checked here (the header rebuilt and hashed), forwarded when it reaches
    /// the pool's difficulty, answered here when it reaches only the miner's.
    fn v1_submit(&mut self, id: MinerId, rid: &str, s: &Submit<'_>, now: Instant) {
        let miner = &self.miners[id.0];
        let (Some(route), MinerState::Ready) = (miner.route, &miner.state) else {
            return self.v1_error(id, rid, &V1Error::Unauthorized);
        };
        let Proto::V1(v) = &miner.proto else { return };
        let (difficulty, mask, seq, worker) = (v.difficulty, v.mask, miner.seq, miner.worker());
        let diff_hashes = |p: &Proxy, uid: UpstreamId| {
            let divider = p.splitter.mapper(uid).and_then(|m| m.v1()).map_or(1.0, |w| w.divider());
            (difficulty.current() * divider) as u64
        };
        let previous = miner.moved_from(now);
        let mut checked = self.check_v1(route, &difficulty, mask, s);
        if let (Err(V1Error::JobNotFound), Some(old)) = (&checked, previous) {
            checked = self.check_v1(old, &difficulty, mask, s);
        }
        let (uid, share) = match checked {
            Ok(ok) => ok,
            Err(e) => {
                let diff = diff_hashes(self, route.upstream());
                self.share_refused(Some(id), worker, diff, &StratumError::V1(e.clone()), now);
                return self.v1_error(id, rid, &e);
            }
        };
        if !share.forward {
            self.share_accepted(uid, Some(id), worker, &share, None, now);
            return self.v1_bool(id, rid, true);
        }
        let share_diff = share.diff;
        let pending = Pending { miner: id, miner_seq: seq, worker, request_id: rid.into(), share, sent: now };
        let slot = route.slot;
        let result = self.forward(uid, pending, now, |out, req_id, proto, mapper| {
            let (Some(w), crate::proxy::upstream::PoolProto::V1 { user, .. }) = (mapper.v1(), proto) else { return };
            let mut prefix = Vec::with_capacity(8);
            w.pool_prefix(slot, &mut prefix);
            write::pool_submit(out, req_id, user, &s.job_id, &prefix, &s.extranonce2, &s.ntime, &s.nonce, s.version_bits.as_deref());
        });
        if let Err(e) = result {
            self.share_refused(Some(id), worker, share_diff, &e, now);
            self.v1_error(id, rid, &V1Error::Pool { code: 20, message: e.message().into() });
        }
    }

    fn check_v1(
        &mut self,
        route: Route,
        difficulty: &MinerDifficulty,
        mask: u32,
        s: &Submit<'_>,
    ) -> Result<(UpstreamId, crate::splitter::Share), V1Error> {
        let uid = route.upstream();
        let mapper = self.splitter.mapper_mut(uid).ok_or(V1Error::NotSent("Pool connection lost, share not sent"))?;
        mapper.check_v1_share(route.slot, difficulty, mask, s).map(|share| (uid, share))
    }

    /// The pool's answer to a share, for a v1 miner.
    pub(super) fn v1_answer(&mut self, id: MinerId, rid: &str, result: Result<(), StratumError>) {
        match result {
            Ok(()) => self.v1_bool(id, rid, true),
            Err(e) => self.v1_error(id, rid, &V1Error::Pool { code: 20, message: e.message().into() }),
        }
    }

    /// A miner whose promised split no longer fits its upstream (the pool changed its
    /// extranonce2 size): a miner that takes `mining.set_extranonce` gets a new prefix
    /// there; others are asked to reconnect, and remembered so their next subscribe goes
    /// to the right place at once.
    pub(in crate::proxy) fn v1_refit(&mut self, id: MinerId, uid: UpstreamId, now: Instant) {
        let Some(m) = self.miners.get_mut(id.0) else { return };
        let takes_new = matches!(&m.proto, Proto::V1(v) if v.extranonce_subscribe);
        let (group, session) = (m.group, v1(m).map_or(0, |v| v.session));
        let split = self.splitter.mapper(uid).and_then(|m| m.v1()).map(|w| w.split());
        if takes_new
            && let Some(split) = split
            && let Some(slot) = self.splitter.mapper_mut(uid).and_then(|m| m.add_v1(id, None, split.promise()))
        {
            let m = &mut self.miners[id.0];
            m.route = Some(Route::new(uid, slot));
            if let Some(v) = v1(m) {
                v.prefix = Some(slot);
                v.promise = split.promise();
                v.primed = false;
            }
            self.scratch.clear();
            let prefix = crate::stratum::v1::extranonce::Prefix::new(slot, split.prefix_len);
            write::set_extranonce(&mut self.scratch, &[], prefix.as_bytes(), split.miner_size);
            self.send_scratch(id);
            self.deliver_to(id, now);
            return;
        }
        // Its old prefix no longer exists there: nothing to give back.
        self.miners[id.0].route = None;
        if self.v1_resume.len() < 100_000 {
            self.v1_resume.insert(format!("{session:08x}"), group);
        }
        let local = self.miners[id.0].conn.stream().local_addr().ok();
        self.scratch.clear();
        write::reconnect(&mut self.scratch, local.map(|a| (a.ip().to_string(), a.port())).as_ref().map(|(h, p)| (h.as_str(), *p)), 0);
        self.send_scratch(id);
        self.close_miner(id, "extranonce changed; asked to reconnect");
    }

    fn v1_bool(&mut self, id: MinerId, rid: &str, value: bool) {
        self.scratch.clear();
        write::bool_reply(&mut self.scratch, rid, value);
        self.send_scratch(id);
    }

    fn v1_error(&mut self, id: MinerId, rid: &str, e: &V1Error) {
        self.scratch.clear();
        write::error_reply(&mut self.scratch, rid, e);
        self.send_scratch(id);
    }

    /// A subscribe or authorize that cannot be served: the error, then the connection
    /// closes. Logged as CryptoNote login refusals are: a line per reason now and then.
    fn v1_refuse(&mut self, id: MinerId, rid: &str, user: &str, e: &StratumError, now: Instant) {
        let peer = self.miners[id.0].peer;
        let user = PeerText(user);
        if self.log_limiter.admit(Topic::LoginRefused, e.message(), format_args!("{peer} ({user})"), now) {
            log::info!("v1 miner {peer} ({user}) refused: {e}");
        }
        self.v1_error(id, rid, &V1Error::Pool { code: 20, message: e.message().into() });
        self.close_miner(id, "refused");
    }
}
