//! The life of one pool connection, free of sockets: when to connect, the login and its
//! reply, failover after a failure, timeouts and keepalives. The loop owns the socket and
//! asks this state machine what to do; every decision takes `now`, so tests drive time.
//!
//! A link is `Waiting` (for its retry time, or for a host name lookup), `Connecting`,
//! `LoggingIn` (login sent) or `Active` (jobs flow). A failure before or after login goes
//! back to `Waiting` with the delay the failover rules give.

use super::Failover;
use std::time::{Duration, Instant};

/// Connect plus login must finish within this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Keepalive ping interval for pools with `keepalive` set.
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
/// A session that ends sooner than this counts as a failed attempt (pause, then the next
/// pool), so a pool that accepts logins and drops them is not reconnected in a tight loop.
pub const STABLE_SESSION: Duration = Duration::from_secs(30);
/// A pool that has sent nothing (no job, no reply) this long gets a keepalive probe,
/// whatever its `keepalive` setting.
pub const QUIET_PROBE: Duration = Duration::from_secs(30);
/// A probe (or a submit) unanswered this long means the pool went silent.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Where a link is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not connected; `retry_at` says when to try (`None`: waiting for a name lookup).
    Waiting,
    /// TCP connect in progress.
    Connecting,
    /// Login sent, waiting for the pool's answer.
    LoggingIn,
    /// Logged in and receiving jobs.
    Active,
}

/// What a failure means for the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The session was logged in when it ended.
    pub was_active: bool,
    /// The next attempt is due after this long.
    pub delay: Duration,
}

/// What the 1-second tick asks of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Nothing,
    /// Connect or login took too long: fail the link.
    Timeout,
    /// Send a keepalive with this request id.
    Keepalive(u64),
    /// The pool is connected but silent (why): fail over, trying it last.
    Silent(&'static str),
}

/// A logged-in session as a live upgrade hands it over (times as ages).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SessionSnapshot {
    failover: Failover,
    next_id: u64,
    generation: u64,
    since_ms: u64,
    last_send_ms: u64,
    last_heard_ms: u64,
    last_job_ms: u64,
    no_keepalive: bool,
}

/// One pool connection's state, without the socket.
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    failover: Failover,
    next_id: u64,
    login_id: u64,
    /// Incremented per connection attempt, so jobs of an old session never count as
    /// "previous" for a new one.
    pub generation: u64,
    since: Instant,
    retry_at: Option<Instant>,
    /// When we last wrote to the pool (keepalives are due after a quiet minute).
    pub last_send: Instant,
    /// When the pool last sent anything, and its last job.
    last_heard: Instant,
    last_job: Instant,
    /// A keepalive sent to see whether a quiet pool is still there: its id and when.
    probe: Option<(u64, Instant)>,
    /// The pool answered a keepalive with an error: it does not take them.
    no_keepalive: bool,
}

impl Session {
    /// A link that wants to connect now.
    pub fn new(now: Instant) -> Session {
        Session {
            phase: Phase::Waiting,
            failover: Failover::default(),
            next_id: 1,
            login_id: 0,
            generation: 0,
            since: now,
            retry_at: Some(now),
            last_send: now,
            last_heard: now,
            last_job: now,
            probe: None,
            no_keepalive: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }

    /// When a waiting link wants to reconnect (`None` while connected or waiting for a name).
    pub fn retry_at(&self) -> Option<Instant> {
        if self.phase == Phase::Waiting { self.retry_at } else { None }
    }

    /// True when a waiting link's pause is over.
    pub fn is_due(&self, now: Instant) -> bool {
        self.retry_at().is_some_and(|t| t <= now)
    }

    /// Index in the lane's failover list of the pool to connect to.
    pub fn pool_index(&self, pools: usize) -> usize {
        self.failover.current(pools)
    }

    /// Waits without a deadline: for a host name lookup, or for a pool to be configured.
    pub fn wait_for_wake(&mut self) {
        self.retry_at = None;
    }

    /// The awaited lookup answered: a link waiting for it tries at once.
    pub fn wake(&mut self, now: Instant) {
        if self.phase == Phase::Waiting && self.retry_at.is_none() {
            self.retry_at = Some(now);
        }
    }

    /// A TCP connect was started.
    pub fn connecting(&mut self, now: Instant) {
        self.phase = Phase::Connecting;
        self.since = now;
        self.retry_at = None;
        self.generation += 1;
    }

    /// The connection is up and the login goes out: returns the login's request id.
    pub fn login_sent(&mut self, now: Instant) -> u64 {
        let id = self.take_id();
        self.login_id = id;
        self.phase = Phase::LoggingIn;
        self.last_send = now;
        id
    }

    /// Whether a reply with request id `id` answers our login.
    pub fn is_login_reply(&self, id: u64) -> bool {
        self.phase == Phase::LoggingIn && id == self.login_id
    }

    /// The pool accepted the login.
    pub fn logged_in(&mut self, now: Instant) {
        self.phase = Phase::Active;
        self.since = now;
        self.last_heard = now;
        self.last_job = now;
        self.probe = None;
        self.failover.connected();
    }

    /// The pool sent a line.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// The pool sent a job.
    pub fn got_job(&mut self, now: Instant) {
        self.last_job = now;
    }

    /// A reply to request `id`: true when it answers our probe (so it is no share's).
    /// `refused`: the pool answered it with an error, so it takes no keepalives.
    pub fn answered(&mut self, id: u64, refused: bool) -> bool {
        if self.probe.is_some_and(|(p, _)| p == id) {
            self.probe = None;
            self.no_keepalive |= refused;
            return true;
        }
        false
    }

    /// The pool went silent: back to waiting, with the next pool of the lane due at once
    /// and the silent one tried last.
    pub fn silent(&mut self, now: Instant, pools: usize) -> Failure {
        let was_active = self.phase == Phase::Active;
        self.failover.skip(pools);
        self.phase = Phase::Waiting;
        self.retry_at = Some(now);
        Failure { was_active, delay: Duration::ZERO }
    }

    /// The connection failed or the pool refused us: back to waiting, with the delay the
    /// failover rules give. A session that was up for a while starts over from the
    /// primary at once; a short one counts as a failed attempt.
    pub fn failed(&mut self, now: Instant, pools: usize, retries: u32, pause: Duration) -> Failure {
        let was_active = self.phase == Phase::Active;
        let stable = was_active && now.saturating_duration_since(self.since) >= STABLE_SESSION;
        let delay = if stable {
            self.failover.lost();
            Duration::ZERO
        } else {
            self.failover.failed(pools, retries, pause)
        };
        self.phase = Phase::Waiting;
        self.retry_at = Some(now + delay);
        Failure { was_active, delay }
    }

    /// The pool list changed: start over from the new primary at once.
    pub fn restart(&mut self, now: Instant) {
        self.failover = Failover::default();
        self.phase = Phase::Waiting;
        self.retry_at = Some(now);
    }

    /// Once a second: a connect or login that takes too long, a keepalive due (every
    /// minute with `keepalive`; after 30 s of silence anyway, when the dialect has one:
    /// `probes`), a probe unanswered for 10 s, or no job for `job_timeout` (zero: never).
    pub fn tick(&mut self, now: Instant, keepalive: bool, probes: bool, job_timeout: Duration) -> Due {
        let since = |t: Instant| now.saturating_duration_since(t);
        match self.phase {
            Phase::Connecting | Phase::LoggingIn if since(self.since) >= CONNECT_TIMEOUT => Due::Timeout,
            Phase::Active => {
                if let Some((_, sent)) = self.probe {
                    return if since(sent) >= ANSWER_WITHIN { Due::Silent("no answer to a keepalive for 10 s") } else { Due::Nothing };
                }
                if !job_timeout.is_zero() && since(self.last_job) >= job_timeout {
                    return Due::Silent("no new job within its job-timeout");
                }
                let quiet = probes && !self.no_keepalive && since(self.last_heard) >= QUIET_PROBE;
                if quiet || (keepalive && since(self.last_send) >= KEEPALIVE_EVERY) {
                    self.last_send = now;
                    let id = self.take_id();
                    if quiet {
                        self.probe = Some((id, now));
                    }
                    return Due::Keepalive(id);
                }
                Due::Nothing
            }
            _ => Due::Nothing,
        }
    }

    /// A logged-in session as a live upgrade hands it over (`None` unless active: a link
    /// still connecting starts over in the new process).
    pub fn snapshot(&self, now: Instant) -> Option<SessionSnapshot> {
        let ms = |t: Instant| now.saturating_duration_since(t).as_millis().min(u128::from(u64::MAX)) as u64;
        self.is_active().then(|| SessionSnapshot {
            failover: self.failover.clone(),
            next_id: self.next_id,
            generation: self.generation,
            since_ms: ms(self.since),
            last_send_ms: ms(self.last_send),
            last_heard_ms: ms(self.last_heard),
            last_job_ms: ms(self.last_job),
            no_keepalive: self.no_keepalive,
        })
    }

    /// A logged-in session back from a snapshot.
    pub fn restore(s: SessionSnapshot, now: Instant) -> Session {
        let ago = |ms: u64| now.checked_sub(Duration::from_millis(ms)).unwrap_or(now);
        Session {
            phase: Phase::Active,
            failover: s.failover,
            next_id: s.next_id,
            login_id: 0,
            generation: s.generation,
            since: ago(s.since_ms),
            retry_at: None,
            last_send: ago(s.last_send_ms),
            last_heard: ago(s.last_heard_ms),
            last_job: ago(s.last_job_ms),
            probe: None,
            no_keepalive: s.no_keepalive,
        }
    }

    /// A fresh request id for this connection.
    pub fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSE: Duration = Duration::from_secs(5);

    fn active(now: Instant) -> Session {
        let mut s = Session::new(now);
        s.connecting(now);
        let id = s.login_sent(now);
        assert!(s.is_login_reply(id));
        s.logged_in(now);
        s
    }

    #[test]
    fn a_new_link_is_due_at_once_and_counts_its_attempts() {
        let t = Instant::now();
        let mut s = Session::new(t);
        assert!(s.is_due(t));
        s.connecting(t);
        assert_eq!((s.phase(), s.generation, s.retry_at()), (Phase::Connecting, 1, None));
        let login = s.login_sent(t);
        assert!(!s.is_login_reply(login + 1), "only the login's own id answers it");
        s.logged_in(t);
        assert!(s.is_active());
        assert!(!s.is_login_reply(login), "a late duplicate reply is not a second login");
    }

    #[test]
    fn failures_walk_the_failover_list_with_pauses() {
        let t = Instant::now();
        let mut s = Session::new(t);
        s.connecting(t);
        // Two pools, two tries each: retry the primary after a pause, then the fallback at once.
        assert_eq!(s.failed(t, 2, 2, PAUSE), Failure { was_active: false, delay: PAUSE });
        assert_eq!(s.pool_index(2), 0);
        assert!(!s.is_due(t) && s.is_due(t + PAUSE));
        s.connecting(t + PAUSE);
        assert_eq!(s.failed(t + PAUSE, 2, 2, PAUSE).delay, Duration::ZERO);
        assert_eq!(s.pool_index(2), 1);
        assert_eq!(s.generation, 2);
    }

    #[test]
    fn a_long_session_that_ends_reconnects_to_the_primary_at_once() {
        let t = Instant::now();
        let mut s = Session::new(t);
        s.connecting(t);
        s.failed(t, 2, 1, PAUSE); // now on the fallback
        assert_eq!(s.pool_index(2), 1);
        s.connecting(t);
        s.login_sent(t);
        s.logged_in(t);
        let later = t + STABLE_SESSION;
        assert_eq!(s.failed(later, 2, 1, PAUSE), Failure { was_active: true, delay: Duration::ZERO });
        assert_eq!(s.pool_index(2), 0);
    }

    #[test]
    fn a_short_session_counts_as_a_failed_attempt() {
        let t = Instant::now();
        let mut s = active(t);
        let f = s.failed(t + Duration::from_secs(3), 1, 1, PAUSE);
        assert_eq!(f, Failure { was_active: true, delay: PAUSE }, "a pool that drops logins is not hammered");
    }

    const NO_JOB_LIMIT: Duration = Duration::ZERO;

    #[test]
    fn a_quiet_pool_is_probed_and_failed_when_the_probe_goes_unanswered() {
        let t = Instant::now();
        let mut s = active(t);
        s.heard(t);
        assert_eq!(s.tick(t + QUIET_PROBE - Duration::from_secs(1), false, true, NO_JOB_LIMIT), Due::Nothing);
        let Due::Keepalive(id) = s.tick(t + QUIET_PROBE, false, true, NO_JOB_LIMIT) else { panic!("a probe after 30 s of silence") };
        let t1 = t + QUIET_PROBE;
        assert_eq!(
            s.tick(t1 + ANSWER_WITHIN - Duration::from_secs(1), false, true, NO_JOB_LIMIT),
            Due::Nothing,
            "no second probe meanwhile"
        );
        assert_eq!(s.tick(t1 + ANSWER_WITHIN, false, true, NO_JOB_LIMIT), Due::Silent("no answer to a keepalive for 10 s"));
        // Had it answered, all would be well.
        let mut s = active(t);
        let Due::Keepalive(id2) = s.tick(t1, false, true, NO_JOB_LIMIT) else { panic!() };
        assert!(!s.answered(id2 + 1, false), "only the probe's id");
        assert!(s.answered(id2, false));
        s.heard(t1);
        assert_eq!(s.tick(t1 + ANSWER_WITHIN, false, true, NO_JOB_LIMIT), Due::Nothing);
        assert!(id > 0);
    }

    #[test]
    fn a_pool_that_refuses_keepalives_is_not_probed_again() {
        let t = Instant::now();
        let mut s = active(t);
        let Due::Keepalive(id) = s.tick(t + QUIET_PROBE, false, true, NO_JOB_LIMIT) else { panic!() };
        assert!(s.answered(id, true));
        assert_eq!(s.tick(t + 3 * QUIET_PROBE, false, true, NO_JOB_LIMIT), Due::Nothing);
        assert_eq!(s.tick(t + 3 * QUIET_PROBE, false, false, NO_JOB_LIMIT), Due::Nothing, "nor a dialect without keepalives");
    }

    #[test]
    fn no_job_for_the_job_timeout_is_silence_too() {
        let t = Instant::now();
        let mut s = active(t);
        let limit = Duration::from_secs(600);
        s.got_job(t + Duration::from_secs(100));
        s.heard(t + Duration::from_secs(650));
        assert_eq!(s.tick(t + Duration::from_secs(650), false, true, limit), Due::Nothing);
        assert_eq!(s.tick(t + Duration::from_secs(700), false, true, limit), Due::Silent("no new job within its job-timeout"));
        assert_eq!(s.tick(t + Duration::from_secs(7000), false, false, Duration::ZERO), Due::Nothing, "0: never");
    }

    #[test]
    fn a_silent_pool_is_tried_last_not_first() {
        let t = Instant::now();
        let mut s = active(t);
        assert_eq!(s.pool_index(3), 0);
        let f = s.silent(t + STABLE_SESSION, 3);
        assert_eq!(f, Failure { was_active: true, delay: Duration::ZERO });
        assert_eq!(s.pool_index(3), 1, "the next pool at once");
        assert!(s.is_due(t + STABLE_SESSION));
    }

    #[test]
    fn a_session_handed_over_goes_on_where_it_was() {
        let t = Instant::now();
        let mut s = active(t);
        s.failed(t, 3, 1, PAUSE);
        s.connecting(t);
        s.login_sent(t);
        s.logged_in(t);
        let id = s.take_id();
        let later = t + Duration::from_secs(5);
        let mut back = Session::restore(s.snapshot(later).unwrap(), later);
        assert!(back.is_active());
        assert_eq!((back.pool_index(3), back.take_id(), back.generation), (1, id + 1, s.generation), "same pool, ids go on");
        assert!(Session::new(t).snapshot(t).is_none(), "only a logged-in session is handed over");
    }

    #[test]
    fn connect_and_login_time_out() {
        let t = Instant::now();
        let mut s = Session::new(t);
        s.connecting(t);
        assert_eq!(s.tick(t + CONNECT_TIMEOUT - Duration::from_millis(1), false, false, NO_JOB_LIMIT), Due::Nothing);
        assert_eq!(s.tick(t + CONNECT_TIMEOUT, false, false, NO_JOB_LIMIT), Due::Timeout);
        s.login_sent(t);
        assert_eq!(s.tick(t + CONNECT_TIMEOUT, false, false, NO_JOB_LIMIT), Due::Timeout, "the login counts from the connect");
    }

    #[test]
    fn keepalives_follow_a_quiet_minute_only_when_asked() {
        let t = Instant::now();
        let mut s = active(t);
        assert_eq!(s.tick(t + KEEPALIVE_EVERY, false, false, NO_JOB_LIMIT), Due::Nothing);
        let Due::Keepalive(id) = s.tick(t + KEEPALIVE_EVERY, true, false, NO_JOB_LIMIT) else { panic!("keepalive due") };
        assert!(id > 1);
        assert_eq!(
            s.tick(t + KEEPALIVE_EVERY + Duration::from_secs(1), true, false, NO_JOB_LIMIT),
            Due::Nothing,
            "sending resets the quiet time"
        );
    }

    #[test]
    fn a_link_waiting_for_a_name_is_woken_by_the_answer() {
        let t = Instant::now();
        let mut s = Session::new(t);
        s.wait_for_wake();
        assert!(!s.is_due(t + Duration::from_secs(60)));
        s.wake(t);
        assert!(s.is_due(t));
    }

    #[test]
    fn a_restart_goes_back_to_the_new_primary() {
        let t = Instant::now();
        let mut s = active(t);
        s.failed(t, 3, 1, PAUSE);
        s.restart(t);
        assert!(s.is_due(t));
        assert_eq!(s.pool_index(3), 0);
    }
}
