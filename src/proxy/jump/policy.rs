//! What becomes of a jump client or pair, as pure functions of its state and the time, so
//! the limits and timeouts are unit-tested without sockets or DNS.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Reaching the target (address lookup, TCP connect and TLS handshake) must finish within this.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most clients held while their target's name is looked up (only before the first answer).
pub(super) const MAX_WAITING: usize = 1024;

/// Where an accepted client goes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    Connect(SocketAddr),
    /// Wait for the resolver's first answer.
    Wait,
    Refuse(String),
}

/// Routes a client of a port whose target's last address is `resolved` and whose last
/// lookup failed with `lookup_error`, after it `waited` for that, with `waiting` clients
/// already held. The last address serves while a fresh answer is on its way or DNS is down.
pub(super) fn route(resolved: Option<SocketAddr>, lookup_error: Option<&str>, waited: Duration, waiting: usize) -> Route {
    match (resolved, lookup_error) {
        (Some(addr), _) => Route::Connect(addr),
        (None, Some(e)) => Route::Refuse(e.to_string()),
        (None, None) if waited >= CONNECT_TIMEOUT => Route::Refuse("the target's address lookup timed out".into()),
        (None, None) if waiting < MAX_WAITING => Route::Wait,
        (None, None) => Route::Refuse("too many clients wait for the target's address".into()),
    }
}

/// Why a pair is closed by the clock.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Expiry {
    /// The target was not reached (connected, TLS done) within [`CONNECT_TIMEOUT`] of the
    /// client's arrival; counts as a failed target.
    Unreached,
    /// No byte either way for the port's idle timeout.
    Idle,
}

/// Whether a pair whose client arrived at `since` and last moved bytes at `last_io` is
/// past its time. `idle` zero means no idle timeout.
pub(super) fn expiry(reached: bool, since: Instant, last_io: Instant, idle: Duration, now: Instant) -> Option<Expiry> {
    if !reached {
        return (now.saturating_duration_since(since) >= CONNECT_TIMEOUT).then_some(Expiry::Unreached);
    }
    (!idle.is_zero() && now.saturating_duration_since(last_io) >= idle).then_some(Expiry::Idle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: &str = "127.0.0.1:9000";

    #[test]
    fn a_known_address_serves_even_while_dns_fails() {
        let addr: SocketAddr = ADDR.parse().unwrap();
        assert_eq!(route(Some(addr), None, Duration::ZERO, 0), Route::Connect(addr));
        assert_eq!(route(Some(addr), Some("cannot resolve"), CONNECT_TIMEOUT * 2, MAX_WAITING), Route::Connect(addr));
    }

    #[test]
    fn without_an_address_clients_wait_bounded_in_number_and_time() {
        assert_eq!(route(None, None, Duration::ZERO, 0), Route::Wait);
        assert_eq!(route(None, None, CONNECT_TIMEOUT - Duration::from_millis(1), MAX_WAITING - 1), Route::Wait);
        assert!(matches!(route(None, None, Duration::ZERO, MAX_WAITING), Route::Refuse(r) if r.contains("too many")));
        assert!(matches!(route(None, None, CONNECT_TIMEOUT, 0), Route::Refuse(r) if r.contains("timed out")));
    }

    #[test]
    fn a_failed_lookup_refuses_every_client_with_its_reason() {
        for waiting in [0, 5] {
            assert_eq!(
                route(None, Some("cannot resolve x:1: no such host"), Duration::ZERO, waiting),
                Route::Refuse("cannot resolve x:1: no such host".into())
            );
        }
    }

    #[test]
    fn an_unreached_target_expires_at_the_connect_timeout_counted_from_the_client() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(600);
        assert_eq!(expiry(false, t0, t0, idle, t0 + CONNECT_TIMEOUT - Duration::from_millis(1)), None);
        assert_eq!(expiry(false, t0, t0, idle, t0 + CONNECT_TIMEOUT), Some(Expiry::Unreached));
        // TCP connected but the TLS handshake never ended: still unreached, however busy.
        assert_eq!(expiry(false, t0, t0 + CONNECT_TIMEOUT, idle, t0 + CONNECT_TIMEOUT), Some(Expiry::Unreached));
    }

    #[test]
    fn a_reached_pair_expires_only_after_its_idle_time_and_never_with_zero() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(30);
        assert_eq!(expiry(true, t0, t0, idle, t0 + Duration::from_secs(29)), None);
        assert_eq!(expiry(true, t0, t0, idle, t0 + idle), Some(Expiry::Idle));
        assert_eq!(expiry(true, t0, t0 + Duration::from_secs(20), idle, t0 + idle), None, "bytes moved 10 s ago");
        assert_eq!(expiry(true, t0, t0, Duration::ZERO, t0 + Duration::from_secs(86_400)), None);
    }
}
