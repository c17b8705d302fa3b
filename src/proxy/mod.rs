//! The event loop: one `mio::Poll` owns every socket (listeners, miners in a slab, pool
//! links inside the splitter's upstream records, the signal pipe) and the 1-second tick.
//! The splitter, pool groups and stats are plain fields mutated in place.
//!
//! Each pass: poll with a timeout that ends at the next tick or the next due reconnect,
//! handle the batch of events, then reap the miners closed during the batch (slab keys are
//! never reused within a batch).

mod access;
mod accounting;
mod accounts;
mod alone;
mod api;
mod custom_diff;
mod difficulty;
mod handover;
mod http;
mod intern;
mod jump;
mod listen;
mod miner;
mod moves;
mod reload;
mod restore;
mod route;
mod upstream;
mod work;

pub use handover::ENV as HANDOVER_ENV;
pub use jump::{JUMP_BUFFER, JumpPortStats};
pub use miner::{Miner, MinerState};
pub use route::Route;
pub use upstream::Link;

use crate::config::{Config, Mode};
use crate::logs::{AppendLog, LogLimiter};
use crate::net::{LineReader, Source};
use crate::pool::Groups;
use crate::ratelimit::RateLimiter;
use crate::splitter::Splitter;
use crate::stats::{Stats, Workers};
use crate::{GroupId, MinerId, UpstreamId};
use listen::{Incoming, Listener};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Waker};
use slab::Slab;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest line a miner may send (RFC section 19).
pub const MAX_MINER_LINE: usize = 16 * 1024;
/// Longest line a pool may send; pools send bigger jobs than miners send requests.
pub const MAX_POOL_LINE: usize = 64 * 1024;
/// Requests a miner may send between two ticks (about a second). A rig sends a share
/// every few seconds, a proxy in front of 256 rigs at vardiff's 30 s a share about 9 a
/// second; a connection past this is a flood and is closed.
pub const MAX_MINER_REQUESTS: u16 = 2000;
/// Output we queue for a miner that does not read before dropping it.
pub const MAX_MINER_OUT: usize = 256 * 1024;
/// Output we queue for a pool before treating the link as broken.
pub const MAX_POOL_OUT: usize = 4 * 1024 * 1024;
/// Login must arrive this soon after connecting.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// A miner that sends nothing for this long is dropped.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a stop waits for submits in flight.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Pool submits unanswered this long are failed back to the miner and the link dropped:
/// the pool went silent.
pub const SUBMIT_TIMEOUT: Duration = crate::pool::session::ANSWER_WITHIN;
const TICK: Duration = Duration::from_secs(1);
/// When events come more often than this, the loop naps this long after a pass before
/// polling again, so what arrives meanwhile is handled in one pass: one wake-up of the
/// proxy instead of one per event, and the share answers of that moment reach the miners'
/// host together. At 10k miners this cut CPU per share by a fifth for +2..3 ms of submit
/// round trip (BENCHMARKS.md).
const GATHER_NAP: Duration = Duration::from_millis(1);
/// Passes with fewer events than this mean events are sparse: a nap would cost a timer
/// wake-up and gather little (at 1k miners napping after every pass cost 10 % more CPU).
const GATHER_FROM: usize = 4;
/// A pass with this many events already gathers; napping after it would only add latency.
const GATHER_BELOW: usize = 64;

/// How long to nap after a pass that handled `handled` events, `waited` being the time from
/// the top of the pass to the poll's return (mostly the poll's wait): only when events are
/// dense (several, come within a nap) and the pass was not already big.
fn gather_nap(handled: usize, waited: Duration) -> Option<Duration> {
    ((GATHER_FROM..GATHER_BELOW).contains(&handled) && waited < GATHER_NAP).then_some(GATHER_NAP)
}

/// Stops a running proxy from another thread.
#[derive(Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    /// Asks the loop to stop gracefully (as SIGTERM does).
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// The proxy: everything the loop owns.
pub struct Proxy {
    cfg: Config,
    poll: Poll,
    listeners: Vec<Listener>,
    miners: Slab<Miner>,
    /// Pool host names, looked up off the loop.
    resolver: crate::net::resolve::Resolver,
    /// Upstreams with submits to write at the end of this loop pass.
    dirty_links: Vec<UpstreamId>,
    /// Transparent ports and their pairs.
    jumps: jump::Jumps,
    /// Connections waiting for a PROXY protocol header.
    incoming: Slab<Incoming>,
    /// Inbound TLS, when some bind uses it.
    server_tls: Option<crate::net::tls::ServerTls>,
    /// Every upstream (pool link and mapper) by id.
    splitter: Splitter<Link>,
    /// Pool groups: which pools each port mines to.
    groups: Groups,
    /// Vardiff settings by port (bind index).
    vardiff: Vec<crate::splitter::vardiff::VardiffConfig>,
    /// Groups to rebalance at the next tick (a pool of theirs went up or down).
    rebalance_due: Vec<GroupId>,
    /// Registered accounts, when enabled.
    accounts: Option<accounts::AccountBook>,
    /// Rigs that dropped recently, for session restore.
    parked: restore::ParkedRigs,
    /// Rigs remembered between connections: no NiceHash support, quarantine cool-downs.
    rig_notes: alone::RigNotes,
    /// Rigs closed and refused by quarantine since start.
    rigs_refused: u64,
    /// v1 miners asked to reconnect, by the session id they will bring back: their group.
    v1_resume: std::collections::HashMap<String, GroupId>,
    /// The next v1 prefix for a miner whose pool is not known at subscribe.
    next_prefix: u16,
    stats: Stats,
    workers: Workers,
    /// Shared wallet and agent strings of logged-in miners.
    interner: intern::Interner,
    ratelimit: RateLimiter,
    /// The config file, for `watch` and SIGHUP reloads.
    config_file: Option<reload::Watched>,
    http: Option<(TcpListener, SocketAddr)>,
    http_clients: Slab<http::HttpClient>,
    /// API connections refused while every client slot was busy (counted, logged sparingly).
    http_refusals: http::Refusals,
    access_log: AppendLog,
    share_log: AppendLog,
    /// Console lines that can come at rig rate, kept to a line now and then per reason.
    log_limiter: LogLimiter,
    reader: LineReader,
    /// Encoding buffer for replies and requests.
    scratch: Vec<u8>,
    /// Login reply extensions, fixed by the mode.
    extensions: Vec<&'static str>,
    rng: Rng,
    next_seq: u64,
    /// Miners closed during this batch, removed after it.
    closing: Vec<MinerId>,
    signals: Option<mio::net::UnixStream>,
    hangup: Option<mio::net::UnixStream>,
    stop_flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
    stopping: Option<Instant>,
    /// After a live upgrade: serving what could not move (TLS miners, jump pairs) until then.
    draining: Option<Instant>,
    /// Our own binary, as it was when we started (for a live upgrade).
    exe: Option<std::path::PathBuf>,
    upgrades: Option<mio::net::UnixStream>,
    accept_paused_until: Option<Instant>,
    next_tick: Instant,
    next_print: Instant,
    started: Instant,
}

impl Proxy {
    /// Binds every listener; nothing is accepted until `run`.
    pub fn bind(cfg: Config) -> io::Result<Proxy> {
        Proxy::build(cfg, None, None)
    }

    /// A proxy on listening sockets a live upgrade handed over (bind ones that are missing).
    fn build(cfg: Config, inherited: Option<listen::Inherited>, http_socket: Option<std::net::TcpListener>) -> io::Result<Proxy> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), Source::Waker.token())?);
        let groups = Groups::from_pools(&cfg.pools, 0);
        let (listeners, server_tls, jumps) = listen::open(&cfg, &groups, &poll, inherited)?;
        let mut extensions = vec!["algo"];
        if cfg.mode == Mode::NiceHash {
            extensions.push("nicehash");
        }
        // The order xmrig-proxy uses; "tls": this proxy speaks TLS (on binds that enable it).
        extensions.extend(["connect", "tls", "keepalive"]);
        let splitter = Splitter::new(cfg.mode, cfg.max_upstreams, Duration::from_secs(cfg.reuse_timeout_secs), cfg.algo_ext);
        let now = Instant::now();
        let cfg_print = cfg.print_time_secs;
        let workers = Workers::new(cfg.workers, cfg.custom_diff_stats);
        let http = http::bind_http(&cfg.http, &poll, http_socket)?;
        let ratelimit = RateLimiter::new(cfg.rate_limit);
        let access_log = AppendLog::open(cfg.access_log_file.as_deref());
        let share_log = AppendLog::open(cfg.share_log_file.as_deref());
        let mut proxy = Proxy {
            cfg,
            poll,
            listeners,
            miners: Slab::new(),
            resolver: crate::net::resolve::Resolver::new(waker.clone()),
            dirty_links: Vec::new(),
            jumps,
            incoming: Slab::new(),
            server_tls,
            splitter,
            groups,
            rebalance_due: Vec::new(),
            vardiff: Vec::new(),
            accounts: None,
            parked: Default::default(),
            v1_resume: Default::default(),
            rig_notes: Default::default(),
            rigs_refused: 0,
            next_prefix: 0,
            stats: Stats::new(0),
            workers,
            interner: intern::Interner::default(),
            ratelimit,
            config_file: None,
            http,
            http_clients: Slab::new(),
            http_refusals: http::Refusals::default(),
            access_log,
            share_log,
            log_limiter: LogLimiter::default(),
            reader: LineReader::new(2 * MAX_POOL_LINE),
            scratch: Vec::with_capacity(4096),
            extensions,
            rng: Rng::seeded(),
            next_seq: 0,
            closing: Vec::new(),
            signals: None,
            hangup: None,
            stop_flag: Arc::new(AtomicBool::new(false)),
            waker,
            stopping: None,
            draining: None,
            exe: std::env::current_exe().ok(),
            upgrades: None,
            accept_paused_until: None,
            next_tick: now + TICK,
            next_print: now + print_every(cfg_print),
            started: now,
        };
        proxy.vardiff = (0..proxy.cfg.binds.len()).map(|i| proxy.cfg.vardiff_of(i)).collect();
        proxy.open_accounts()?;
        proxy.resolve_jump_targets(now);
        Ok(proxy)
    }

    /// Addresses the miner listeners are bound to (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.addr).collect()
    }

    /// A handle that stops the loop from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle { flag: self.stop_flag.clone(), waker: self.waker.clone() }
    }

    /// Stops gracefully on SIGINT and SIGTERM; reopens log files and reloads on SIGHUP (for the
    /// binary; tests use `stop_handle`).
    pub fn handle_signals(&mut self) -> io::Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        self.signals = Some(self.signal_pipe(&[SIGINT, SIGTERM], Source::Signal)?);
        self.hangup = Some(self.signal_pipe(&[SIGHUP], Source::Hangup)?);
        self.upgrades = Some(self.signal_pipe(&[signal_hook::consts::SIGUSR2], Source::Upgrade)?);
        Ok(())
    }

    /// A self-pipe the handlers of `signals` write to, registered under `source`.
    fn signal_pipe(&self, signals: &[i32], source: Source) -> io::Result<mio::net::UnixStream> {
        let (rx, tx) = std::os::unix::net::UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        for &sig in signals {
            signal_hook::low_level::pipe::register(sig, tx.try_clone()?)?;
        }
        let mut rx = mio::net::UnixStream::from_std(rx);
        self.poll.registry().register(&mut rx, source.token(), Interest::READABLE)?;
        Ok(rx)
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Runs until stopped, then waits up to 5 s for submits in flight.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if now >= self.next_tick {
                self.tick(now);
                self.next_tick = (self.next_tick + TICK).max(now);
            }
            self.connect_due_upstreams(now);
            if self.drained(now) {
                log::info!("upgrade: drained; the old process exits");
                return Ok(());
            }
            if let Some(deadline) = self.stopping
                && (self.splitter.pending() == 0 || now >= deadline)
            {
                self.print_summary(now);
                self.close_accounts();
                log::info!("stopped");
                return Ok(());
            }
            let wake = self.next_wake().min(self.stopping.unwrap_or(self.next_tick));
            let polled_at = now;
            if let Err(e) = self.poll.poll(&mut events, Some(wake.saturating_duration_since(now))) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            for event in events.iter() {
                match Source::from_token(event.token()) {
                    Some(Source::Listener(i)) => self.accept(i, now),
                    Some(Source::Miner(key)) => {
                        let drain = event.is_read_closed() || event.is_error();
                        self.miner_event(MinerId(key), event.is_readable(), event.is_writable(), drain, now)
                    }
                    Some(Source::Upstream(key)) => self.upstream_event(UpstreamId(key), event, now),
                    Some(Source::Signal) => self.on_signal(now),
                    Some(Source::Hangup) => self.on_hangup(now),
                    Some(Source::Waker) if self.stop_flag.load(Ordering::SeqCst) => self.begin_stop(now),
                    Some(Source::Waker) => {
                        self.resolved(now);
                        self.accounts_done(now);
                    }
                    Some(Source::HttpListener) => self.http_accept(now),
                    Some(Source::Http(key)) => self.http_event(key, event.is_readable(), event.is_writable(), now),
                    Some(Source::JumpClient(key)) => self.jump_event(key, jump::Side::Client, event, now),
                    Some(Source::JumpTarget(key)) => self.jump_event(key, jump::Side::Target, event, now),
                    Some(Source::Incoming(key)) => self.incoming_event(key, now),
                    Some(Source::Upgrade) => {
                        drain(self.upgrades.as_mut());
                        self.upgrade(now);
                    }
                    None => {}
                }
            }
            self.flush_links(now);
            self.reap(now);
            self.reap_jumps();
            if let Some(nap) = gather_nap(events.iter().count(), now.saturating_duration_since(polled_at)) {
                std::thread::sleep(nap);
            }
        }
    }

    /// Earliest moment the loop must wake: the tick or a due reconnect.
    fn next_wake(&self) -> Instant {
        self.splitter.iter().filter_map(|(_, u)| u.link.session.retry_at()).fold(self.next_tick, Instant::min)
    }

    fn on_signal(&mut self, now: Instant) {
        drain(self.signals.as_mut());
        log::info!("signal received, stopping");
        self.begin_stop(now);
    }

    /// SIGHUP: reopen the access and share logs (after logrotate moved them).
    fn on_hangup(&mut self, now: Instant) {
        drain(self.hangup.as_mut());
        log::info!("SIGHUP: reopening log files and reloading the config");
        self.access_log.reopen();
        self.share_log.reopen();
        self.reload(now);
    }

    /// Stops accepting; the loop ends once submits in flight are answered or in 5 s.
    fn begin_stop(&mut self, now: Instant) {
        if self.stopping.is_some() {
            return;
        }
        for l in &mut self.listeners {
            let _ = self.poll.registry().deregister(&mut l.socket);
        }
        self.listeners.clear();
        self.stopping = Some(now + STOP_GRACE);
    }

    fn accept(&mut self, idx: usize, now: Instant) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = self.listeners.get(idx) else { return };
            match listener.socket.accept() {
                Ok((stream, peer)) => self.accepted(idx, stream, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors: stop accepting for a moment instead of spinning.
                    log::warn!("accept on {} failed: {e}; pausing accepts for 1 s", listener.addr);
                    self.accept_paused_until = Some(now + TICK);
                    return;
                }
            }
        }
    }

    /// Once a second: timeouts, reconnect checks, idle upstream collection, keepalives.
    fn tick(&mut self, now: Instant) {
        if self.accept_paused_until.is_some_and(|t| now >= t) {
            self.accept_paused_until = None;
            for i in 0..self.listeners.len() {
                self.accept(i, now);
            }
        }
        let clock = self.clock(now);
        self.stats.tick(clock);
        self.workers.tick(clock);
        self.groups.tick(clock);
        self.ratelimit.tick(clock);
        if clock.is_multiple_of(60) {
            self.interner.sweep();
        }
        self.reload_tick(now);
        self.miner_timeouts(now);
        self.vardiff_tick(now);
        self.http_tick(now);
        self.jump_tick(now);
        self.incoming_tick(now);
        self.upstream_tick(now);
        self.rebalance_tick(now);
        self.accounts_tick(now);
        self.parked_tick(now);
        self.rig_notes_tick(now);
        self.collect_idle_upstreams(now);
        self.log_limiter.take_due(now, |s| log::log!(s.topic.level(), "{s}"));
        if now >= self.next_print {
            self.next_print = now + self.print_every();
            self.print_summary(now);
        }
        self.reap(now);
    }

    fn print_every(&self) -> Duration {
        print_every(self.cfg.print_time_secs)
    }

    /// The console line: miners, upstreams, shares and hashrate (60 s / 10 min / 1 h).
    fn print_summary(&self, now: Instant) {
        let c = self.splitter.counts(None);
        let s = &self.stats;
        let clock = self.clock(now);
        let hr = |i| Hashrate(s.windows.rate(i, clock));
        log::info!(
            "miners {}/{} upstreams {}/{}/{} (active/sleep/error) accepted {} rejected {} invalid {} expired {} hashrate {} {} {}",
            s.miners,
            s.max_miners,
            c.active,
            c.sleep,
            c.error,
            s.accepted,
            s.rejected,
            s.invalid,
            s.expired,
            hr(0),
            hr(1),
            hr(2),
        );
        let algos = self.algo_hashrates(clock);
        if algos.len() > 1 {
            let line: Vec<String> = algos.iter().map(|(a, r)| format!("{a} {}", Hashrate(r[0]))).collect();
            log::info!("hashrate by algorithm: {}", line.join(", "));
        }
        let groups: Vec<_> = self.groups.with_pools().collect();
        if groups.len() > 1 {
            let counts = self.miners_by_group();
            let line: Vec<String> = groups
                .iter()
                .map(|(id, g)| {
                    let miners = counts.get(id).copied().unwrap_or(0);
                    format!("{} {miners} miners {}", g.name, Hashrate(g.hashrate.rate(0, clock)))
                })
                .collect();
            log::info!("groups: {}", line.join(", "));
        }
        for j in self.jump_stats() {
            log::info!(
                "transparent {} -> {}: connections {}/{} (now/total) failed {} bytes up {} down {}",
                j.addr,
                j.target,
                j.active,
                j.total,
                j.failed,
                j.bytes_up,
                j.bytes_down
            );
        }
    }
}

/// Empties a signal self-pipe.
fn drain(rx: Option<&mut mio::net::UnixStream>) {
    let mut buf = [0u8; 64];
    if let Some(rx) = rx {
        while matches!(io::Read::read(rx, &mut buf), Ok(n) if n > 0) {}
    }
}

/// A hashrate with a unit that fits, for the console.
struct Hashrate(f64);

impl std::fmt::Display for Hashrate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (v, unit) = match self.0 {
            h if h >= 1e9 => (h / 1e9, "GH/s"),
            h if h >= 1e6 => (h / 1e6, "MH/s"),
            h if h >= 1e3 => (h / 1e3, "kH/s"),
            h => (h, "H/s"),
        };
        write!(f, "{v:.2} {unit}")
    }
}

/// Default interval of the console summary line.
const PRINT_EVERY: Duration = Duration::from_secs(60);

fn print_every(secs: u64) -> Duration {
    if secs == 0 { PRINT_EVERY } else { Duration::from_secs(secs) }
}

/// Session ids: splitmix64 seeded from the OS. Ids only need to be hard to guess.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let mut seed = [0u8; 8];
        let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut seed));
        let mut s = u64::from_le_bytes(seed);
        if from_os.is_err() || s == 0 {
            s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
                ^ u64::from(std::process::id());
        }
        Rng(s)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naps_only_after_small_passes_of_dense_events() {
        let quick = Duration::from_micros(200);
        assert_eq!(gather_nap(GATHER_FROM, quick), Some(GATHER_NAP));
        assert_eq!(gather_nap(0, quick), None, "a timeout pass has nothing to gather");
        assert_eq!(gather_nap(1, quick), None, "one event at a time: a nap would gather little");
        assert_eq!(gather_nap(GATHER_BELOW, quick), None, "a big pass already gathered");
        assert_eq!(gather_nap(8, Duration::from_millis(5)), None, "sparse events: a nap would gather nothing");
    }
}
