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
        self.failover.connected();
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

    /// Once a second: a connect or login that takes too long, or a keepalive due.
    pub fn tick(&mut self, now: Instant, keepalive: bool) -> Due {
        match self.phase {
            Phase::Connecting | Phase::LoggingIn if now.saturating_duration_since(self.since) >= CONNECT_TIMEOUT => Due::Timeout,
            Phase::Active if keepalive && now.saturating_duration_since(self.last_send) >= KEEPALIVE_EVERY => {
                self.last_send = now;
                Due::Keepalive(self.take_id())
            }
            _ => Due::Nothing,
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

    #[test]
    fn connect_and_login_time_out() {
        let t = Instant::now();
        let mut s = Session::new(t);
        s.connecting(t);
        assert_eq!(s.tick(t + CONNECT_TIMEOUT - Duration::from_millis(1), false), Due::Nothing);
        assert_eq!(s.tick(t + CONNECT_TIMEOUT, false), Due::Timeout);
        s.login_sent(t);
        assert_eq!(s.tick(t + CONNECT_TIMEOUT, false), Due::Timeout, "the login counts from the connect");
    }

    #[test]
    fn keepalives_follow_a_quiet_minute_only_when_asked() {
        let t = Instant::now();
        let mut s = active(t);
        assert_eq!(s.tick(t + KEEPALIVE_EVERY, false), Due::Nothing);
        let Due::Keepalive(id) = s.tick(t + KEEPALIVE_EVERY, true) else { panic!("keepalive due") };
        assert!(id > 1);
        assert_eq!(s.tick(t + KEEPALIVE_EVERY + Duration::from_secs(1), true), Due::Nothing, "sending resets the quiet time");
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
