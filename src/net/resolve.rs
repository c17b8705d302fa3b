//! Pool host names resolved off the loop. `getaddrinfo` blocks (for seconds when DNS is
//! down), and the loop must never stall its miners for that, so names go to one resolver
//! thread and come back through a channel, waking the loop. IP literals need no lookup;
//! answers are cached for five minutes. This thread does no networking of its own beyond
//! the system resolver.

use mio::Waker;
use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// How long an answer is reused.
const TTL: Duration = Duration::from_secs(300);

/// What a lookup gives now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Ready(SocketAddr),
    /// Asked; `poll` reports when the answer is in.
    Pending,
    Failed(String),
}

type Answer = (String, Result<SocketAddr, String>);

/// The loop's side of the resolver.
pub struct Resolver {
    waker: Arc<Waker>,
    worker: Option<(Sender<String>, Receiver<Answer>)>,
    cache: HashMap<String, (SocketAddr, Instant)>,
    failed: HashMap<String, String>,
    asked: HashSet<String>,
}

impl Resolver {
    pub fn new(waker: Arc<Waker>) -> Resolver {
        Resolver { waker, worker: None, cache: HashMap::new(), failed: HashMap::new(), asked: HashSet::new() }
    }

    /// The address for `host:port`, or `Pending` while the thread looks it up.
    pub fn lookup(&mut self, url: &str, now: Instant) -> Lookup {
        if let Ok(addr) = url.parse::<SocketAddr>() {
            return Lookup::Ready(addr);
        }
        if let Some(err) = self.failed.remove(url) {
            return Lookup::Failed(err);
        }
        if let Some((addr, at)) = self.cache.get(url)
            && now.saturating_duration_since(*at) < TTL
        {
            return Lookup::Ready(*addr);
        }
        if self.asked.insert(url.to_string()) && self.ask(url).is_err() {
            self.asked.remove(url);
            return Lookup::Failed(format!("cannot resolve {url}: resolver thread unavailable"));
        }
        Lookup::Pending
    }

    fn ask(&mut self, url: &str) -> Result<(), ()> {
        if self.worker.is_none() {
            let (req_tx, req_rx) = channel::<String>();
            let (ans_tx, ans_rx) = channel::<Answer>();
            let waker = self.waker.clone();
            std::thread::Builder::new()
                .name("resolver".into())
                .spawn(move || {
                    for url in req_rx {
                        // IPv4 first, as xmrig does by default (`dns.ipv6: false`): a host
                        // with a broken IPv6 route must not strand the proxy.
                        let addr = url.to_socket_addrs().map_err(|e| format!("cannot resolve {url}: {e}")).and_then(|a| {
                            let all: Vec<SocketAddr> = a.collect();
                            all.iter().find(|a| a.is_ipv4()).or(all.first()).copied().ok_or_else(|| format!("{url} has no address"))
                        });
                        if ans_tx.send((url, addr)).is_err() {
                            return;
                        }
                        let _ = waker.wake();
                    }
                })
                .map_err(|_| ())?;
            self.worker = Some((req_tx, ans_rx));
        }
        let (tx, _) = self.worker.as_ref().ok_or(())?;
        tx.send(url.to_string()).map_err(|_| ())
    }

    /// Takes the answers that arrived; true if there were any.
    pub fn poll(&mut self, now: Instant) -> bool {
        let Some((_, rx)) = self.worker.as_ref() else { return false };
        let mut any = false;
        while let Ok((url, answer)) = rx.try_recv() {
            any = true;
            self.asked.remove(&url);
            match answer {
                Ok(addr) => {
                    self.cache.insert(url, (addr, now));
                }
                Err(e) => {
                    self.failed.insert(url, e);
                }
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> (mio::Poll, Resolver) {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(1)).unwrap());
        (poll, Resolver::new(waker))
    }

    /// Waits for the thread's answer, as the loop does: the waker fires, then `poll`.
    fn answer(poll: &mut mio::Poll, r: &mut Resolver, url: &str) -> Lookup {
        let mut events = mio::Events::with_capacity(4);
        for _ in 0..50 {
            let _ = poll.poll(&mut events, Some(Duration::from_millis(100)));
            if r.poll(Instant::now()) {
                return r.lookup(url, Instant::now());
            }
        }
        panic!("no answer for {url}");
    }

    #[test]
    fn ip_literals_need_no_lookup() {
        let (_p, mut r) = resolver();
        assert_eq!(r.lookup("127.0.0.1:3333", Instant::now()), Lookup::Ready("127.0.0.1:3333".parse().unwrap()));
        assert_eq!(r.lookup("[::1]:3333", Instant::now()), Lookup::Ready("[::1]:3333".parse().unwrap()));
        assert!(r.worker.is_none(), "no thread for literals");
    }

    #[test]
    fn names_resolve_off_the_loop_and_are_cached() {
        let (mut poll, mut r) = resolver();
        assert_eq!(r.lookup("localhost:3333", Instant::now()), Lookup::Pending);
        assert_eq!(r.lookup("localhost:3333", Instant::now()), Lookup::Pending, "asked once");
        let Lookup::Ready(addr) = answer(&mut poll, &mut r, "localhost:3333") else { panic!("localhost did not resolve") };
        assert!(addr.ip().is_loopback() && addr.port() == 3333);
        assert_eq!(r.lookup("localhost:3333", Instant::now()), Lookup::Ready(addr), "cached");
    }

    #[test]
    fn a_failed_lookup_is_reported_once_then_asked_again() {
        let (mut poll, mut r) = resolver();
        let url = "no-such-host.invalid:3333";
        assert_eq!(r.lookup(url, Instant::now()), Lookup::Pending);
        assert!(matches!(answer(&mut poll, &mut r, url), Lookup::Failed(e) if e.contains("cannot resolve")));
        assert_eq!(r.lookup(url, Instant::now()), Lookup::Pending, "the next attempt asks again");
    }
}
