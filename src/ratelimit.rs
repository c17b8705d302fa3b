//! Per-IP connection rate limiting (RFC section 17): each address has a bucket of
//! `max-connections-per-minute` tokens refilled evenly over a minute; a connection takes a
//! token, and an address that finds its bucket empty is banned for `ban-duration` seconds.
//! Sans-IO: the loop asks `allow` at accept and calls `tick` once a second. Both maps are
//! bounded: full buckets are dropped on tick, and past `MAX_TRACKED` addresses new ones are
//! let through untracked rather than letting an address spray grow memory.

use crate::config::RateLimit;
use std::collections::HashMap;
use std::net::IpAddr;

/// Addresses tracked at most.
pub const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens, in thousandths (so refills of a fraction of a token add up).
    milli: u64,
    last: u32,
}

/// The limiter; `cfg.max_connections_per_minute == 0` disables it.
#[derive(Debug, Default)]
pub struct RateLimiter {
    cfg: RateLimit,
    buckets: HashMap<IpAddr, Bucket>,
    banned: HashMap<IpAddr, u32>,
    warned_full: bool,
}

impl RateLimiter {
    pub fn new(cfg: RateLimit) -> RateLimiter {
        RateLimiter { cfg, ..RateLimiter::default() }
    }

    /// Applies a reloaded setting (existing bans stay).
    pub fn reconfigure(&mut self, cfg: RateLimit) {
        if cfg.max_connections_per_minute == 0 {
            self.buckets.clear();
            self.banned.clear();
        }
        self.cfg = cfg;
    }

    fn capacity(&self) -> u64 {
        u64::from(self.cfg.max_connections_per_minute) * 1000
    }

    /// May `ip` open a connection at `now` (seconds)? Takes a token when it may.
    pub fn allow(&mut self, ip: IpAddr, now: u32) -> bool {
        if self.cfg.max_connections_per_minute == 0 {
            return true;
        }
        if let Some(&until) = self.banned.get(&ip) {
            if now < until {
                return false;
            }
            self.banned.remove(&ip);
        }
        let cap = self.capacity();
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= MAX_TRACKED {
            if !self.warned_full {
                log::warn!("rate limit: tracking {MAX_TRACKED} addresses already; new ones pass untracked");
                self.warned_full = true;
            }
            return true;
        }
        let b = self.buckets.entry(ip).or_insert(Bucket { milli: cap, last: now });
        b.milli = refill(b.milli, cap, now.saturating_sub(b.last));
        b.last = now;
        if b.milli >= 1000 {
            b.milli -= 1000;
            return true;
        }
        let until = now.saturating_add(self.cfg.ban_duration_secs.min(u64::from(u32::MAX)) as u32);
        if self.cfg.ban_duration_secs > 0 && self.banned.len() < MAX_TRACKED {
            log::warn!(
                "rate limit: {ip} opened more than {} connections a minute, banned for {} s",
                self.cfg.max_connections_per_minute,
                self.cfg.ban_duration_secs
            );
            self.banned.insert(ip, until);
        }
        false
    }

    /// Once a second: forget expired bans and buckets that have refilled completely.
    pub fn tick(&mut self, now: u32) {
        let cap = self.capacity();
        self.banned.retain(|_, until| now < *until);
        self.buckets.retain(|_, b| refill(b.milli, cap, now.saturating_sub(b.last)) < cap);
        if self.buckets.len() < MAX_TRACKED / 2 {
            self.warned_full = false;
        }
    }

    /// Addresses tracked now (buckets, bans).
    pub fn tracked(&self) -> (usize, usize) {
        (self.buckets.len(), self.banned.len())
    }
}

/// Tokens after `secs` seconds: the whole bucket refills in 60 s.
fn refill(milli: u64, cap: u64, secs: u32) -> u64 {
    (milli + cap * u64::from(secs) / 60).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, ban: u64) -> RateLimiter {
        RateLimiter::new(RateLimit { max_connections_per_minute: per_minute, ban_duration_secs: ban })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn an_address_gets_its_bucket_then_is_banned() {
        let mut rl = limiter(3, 30);
        assert!((0..3).all(|_| rl.allow(A, 0)));
        assert!(!rl.allow(A, 0), "fourth in the same minute");
        assert!(rl.allow(B, 0), "other addresses are not affected");
        assert!(!rl.allow(A, 29), "still banned");
        assert!(rl.allow(A, 30), "ban over, bucket refilled");
    }

    #[test]
    fn tokens_refill_evenly_over_a_minute() {
        let mut rl = limiter(60, 0);
        assert!((0..60).all(|_| rl.allow(A, 0)));
        assert!(!rl.allow(A, 0));
        assert!(rl.allow(A, 1), "one token per second");
        assert!(!rl.allow(A, 1));
    }

    #[test]
    fn zero_disables_the_limit() {
        let mut rl = limiter(0, 300);
        assert!((0..10_000).all(|_| rl.allow(A, 0)));
        assert_eq!(rl.tracked(), (0, 0));
    }

    #[test]
    fn idle_addresses_and_old_bans_are_forgotten() {
        let mut rl = limiter(2, 10);
        rl.allow(A, 0);
        rl.allow(B, 0);
        rl.allow(B, 0);
        rl.allow(B, 0);
        assert_eq!(rl.tracked(), (2, 1));
        rl.tick(60);
        assert_eq!(rl.tracked(), (0, 0));
    }

    #[test]
    fn tracking_is_bounded() {
        let mut rl = limiter(1, 0);
        for i in 0..(MAX_TRACKED as u32 + 10) {
            assert!(rl.allow(IpAddr::V4(std::net::Ipv4Addr::from(i)), 0));
        }
        assert_eq!(rl.tracked().0, MAX_TRACKED);
    }
}
