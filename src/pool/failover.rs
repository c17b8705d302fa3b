//! Which pool to connect to next. Each pool is tried `retries` times with `retry-pause`
//! between tries, then the next one is tried at once; after the last, the list starts
//! over after a pause. A session that was up (30 s or more, see `proxy/upstream.rs`) and
//! then dropped reconnects starting from the primary at once, so the proxy goes back to the
//! primary as soon as it can; a shorter session counts as a failed attempt.

use std::time::Duration;

/// Failover position of one upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failover {
    index: usize,
    tries: u32,
}

impl Failover {
    /// Index (among enabled pools) of the pool to connect to now.
    pub fn current(&self, pools: usize) -> usize {
        if self.index < pools { self.index } else { 0 }
    }

    /// A connection or login to the current pool failed: returns how long to wait before
    /// the next attempt (which `current` then names).
    pub fn failed(&mut self, pools: usize, retries: u32, pause: Duration) -> Duration {
        self.tries += 1;
        if self.tries < retries.max(1) {
            return pause;
        }
        self.tries = 0;
        self.index += 1;
        if self.index >= pools {
            self.index = 0;
            return pause;
        }
        Duration::ZERO
    }

    /// The pool accepted our login.
    pub fn connected(&mut self) {
        self.tries = 0;
    }

    /// The current pool went silent: the next one now, the silent one after all others.
    pub fn skip(&mut self, pools: usize) {
        self.tries = 0;
        self.index = if pools == 0 { 0 } else { (self.current(pools) + 1) % pools };
    }

    /// A working session ended: start over from the primary, immediately.
    pub fn lost(&mut self) {
        self.index = 0;
        self.tries = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_secs(5);

    #[test]
    fn retries_then_moves_on_then_wraps_with_a_pause() {
        let mut f = Failover::default();
        assert_eq!(f.current(2), 0);
        assert_eq!(f.failed(2, 2, P), P); // retry primary after a pause
        assert_eq!(f.current(2), 0);
        assert_eq!(f.failed(2, 2, P), Duration::ZERO); // fallback at once
        assert_eq!(f.current(2), 1);
        f.failed(2, 2, P);
        assert_eq!(f.failed(2, 2, P), P); // all failed: pause, then primary
        assert_eq!(f.current(2), 0);
    }

    #[test]
    fn one_retry_means_fallback_at_once() {
        let mut f = Failover::default();
        assert_eq!(f.failed(3, 1, P), Duration::ZERO);
        assert_eq!(f.current(3), 1);
    }

    #[test]
    fn a_lost_session_goes_back_to_the_primary() {
        let mut f = Failover::default();
        f.failed(2, 1, P);
        assert_eq!(f.current(2), 1);
        f.connected();
        f.lost();
        assert_eq!(f.current(2), 0);
    }

    #[test]
    fn shrinking_pool_list_falls_back_to_primary() {
        let mut f = Failover::default();
        f.failed(3, 1, P);
        f.failed(3, 1, P);
        assert_eq!(f.current(3), 2);
        assert_eq!(f.current(1), 0);
    }
}
