//! stratum-proxy: a CryptoNote stratum mining proxy in the class of xmrig-proxy.
//!
//! Thousands of miners connect to one port; a few upstream connections go to the pool.
//! Everything runs on one mio event loop with no locks and no networking threads.
//!
//! The rooms, from the wire inwards:
//!
//! - [`net`]: sockets. One [`net::Conn`] type for miners and pools (write-through output,
//!   bounded queue), line framing over one shared read buffer ([`net::LineReader`]), and
//!   the mapping of mio tokens to what they stand for ([`net::Source`]). TLS runs inside
//!   `Conn` ([`net::tls`], rustls with ring), and [`net::proxy_protocol`] parses PROXY
//!   protocol headers without I/O.
//! - [`stratum`]: the CryptoNote dialect. Jobs and targets, parsing miner requests, the
//!   error strings miners expect, and encoders that write replies straight into buffers.
//! - [`splitter`]: who mines on which upstream, with no sockets. A [`splitter::Mapper`]
//!   per upstream holds the 256-slot table (one fixed nonce byte per miner in NiceHash
//!   mode, one slot in simple mode), the current and previous job encoded once per miner
//!   target, share checks, and submits in flight.
//! - [`pool`]: what pools send and the failover order, with no sockets.
//! - [`proxy`]: the event loop that owns every socket and performs what the parts above
//!   decide: miners in a slab, upstream links by upstream id, the 1-second tick. Ports
//!   with `"mode": "transparent"` are jump ports: bytes pass unparsed to a fixed target,
//!   with bounded buffers, counted per port ([`proxy::JumpPortStats`]).
//!   The loop's files: `miner.rs` (the miner state machine), `upstream.rs` (pool links and
//!   failover), `work.rs` (jobs down, shares up), `accounting.rs` (where every share and
//!   connection outcome is counted and logged), `http.rs` + `api.rs` + `access.rs` (the
//!   monitoring API, Prometheus text, the dashboard page, and who may read or write),
//!   `reload.rs` (config hot reload), `listen.rs` and `jump/`.
//! - [`http`]: HTTP/1.1 request parsing and response encoding, without sockets; the
//!   dashboard page's source (`http/dashboard.html`, compiled in).
//! - [`config`]: xmrig-proxy compatible `config.json` and command line.
//! - [`stats`]: counters, hashrate windows (fixed rings), the per-minute history of the last
//!   day and worker records, fed by the loop with `now` so tests drive time.
//! - [`ratelimit`]: per-address token buckets and bans. [`logs`]: access and share logs.
//!
//! The binaries: `stratum-proxy` (`main.rs`), and the test tools `testpool` and `minersim`
//! (`src/bin/`), which share no code with the library on purpose: they check its arithmetic.
//!
//! Data flow: a pool job arrives on an upstream link -> `Mapper::set_job` encodes it once
//! -> the loop walks the slot table and writes the line to each miner, patching only the
//! fixed byte. A miner's submit -> checked by the mapper (job, fixed byte, difficulty,
//! duplicate) -> forwarded with our own request id -> the pool's answer is matched back
//! to the miner through the mapper's pending table. Submits gathered during one loop pass
//! go to each pool in a single write.

pub mod config;
pub mod http;
pub mod logs;
pub mod net;
pub mod pool;
pub mod proxy;
pub mod ratelimit;
pub mod splitter;
pub mod stats;
pub mod stratum;

/// A miner connection, by slab key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MinerId(pub usize);

/// An upstream (pool connection and its mapper), by slab key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UpstreamId(pub usize);

/// Which pool list an upstream serves: 0 is the configured pools; accounts come later.
pub type GroupId = usize;

/// The default pool group.
pub const DEFAULT_GROUP: GroupId = 0;

/// Agent string we present to pools.
pub const AGENT: &str = concat!("stratum-proxy/", env!("CARGO_PKG_VERSION"));
