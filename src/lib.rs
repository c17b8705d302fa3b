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
//!   [`stratum::v1`] is the Bitcoin-family dialect (sha256d, scrypt) without sockets:
//!   messages both ways, header rebuilding and the share check, extranonce prefixes that
//!   let many miners share one pool session.
//!   [`stratum::algo`] says which dialect a pool of an algorithm speaks.
//! - [`splitter`]: who mines on which upstream, with no sockets. Each upstream is one
//!   record ([`splitter::Upstream`]: group, lane, mapper, pool link). A
//!   [`splitter::Mapper`] holds the 256-slot table (one fixed nonce byte per miner in
//!   NiceHash mode, one slot in simple mode), the current and previous job encoded once
//!   per miner target, share checks, and submits in flight. [`splitter::balance`] places
//!   and moves miners between the pools of a weighted group.
//! - [`pool`]: the pool side with no sockets: what pools send, the failover order, one
//!   link's life ([`pool::Session`]) and pool groups ([`pool::Groups`]: which pools a port
//!   mines to, weighted lanes, measured parts).
//! - [`proxy`]: the event loop that owns every socket and performs what the parts above
//!   decide: miners in a slab, pool links inside the upstream records, the 1-second tick. Ports
//!   with `"mode": "transparent"` are jump ports: bytes pass unparsed to a fixed target,
//!   with bounded buffers, counted per port ([`proxy::JumpPortStats`]).
//!   The loop's files: `upstream/` (pool links and
//!   failover; `cryptonote.rs` and `v1.rs` per pool dialect), `work.rs` (jobs down, shares
//!   up), `moves.rs` (placing miners in their group and moving them between upstreams
//!   without a disconnect), `accounting.rs` (where every share and connection outcome is
//!   counted and logged), `accounts.rs` (the `/api/v1` endpoints and account groups),
//!   `restore.rs` (rigs that come back), `http.rs` + `api.rs` + `access.rs` (the
//!   monitoring API, Prometheus text, the dashboard page, and who may read or write),
//!   `reload.rs` (config hot reload), `listen.rs` and `jump/`. `miner/` holds the miner
//!   state machine with one file per miner dialect.
//! - [`http`]: HTTP/1.1 request parsing and response encoding, without sockets; the
//!   dashboard page's source (`http/dashboard.html`, compiled in).
//! - [`config`]: xmrig-proxy compatible `config.json` and command line.
//! - [`stats`]: counters, hashrate windows (fixed rings), the per-minute history of the last
//!   day and worker records, fed by the loop with `now` so tests drive time.
//! - [`ratelimit`]: per-address token buckets and bans. [`logs`]: access and share logs,
//!   and the limiter that keeps console lines coming at rig rate to a line now and then.
//! - [`accounts`]: users' pool credentials registered under random names (miners log in
//!   with the name), kept in a crash-safe append-only file written off the loop.
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

pub mod accounts;
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

/// A pool group (the pools a port mines to), by index in the group table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u16);

/// The group of pools that name no group, and of the command line's `-o` pools.
pub const DEFAULT_GROUP: GroupId = GroupId(0);

/// The name of the default group in the config (`"group"` on a pool, `"pool-group"` on a bind).
pub const DEFAULT_GROUP_NAME: &str = "default";

/// Agent string we present to pools.
pub const AGENT: &str = concat!("stratum-proxy/", env!("CARGO_PKG_VERSION"));
