//! Proxy configuration: the xmrig-proxy `config.json` keys (RFC section 4), loaded from
//! JSON with field-path errors, then overridden by command-line flags (`cli.rs`).

pub mod cli;
mod load;

pub use load::{load_file, parse_str, validate};

use std::fmt;
use std::net::SocketAddr;

/// How miners share upstream pool connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Up to 256 miners per upstream, each with its own fixed nonce byte.
    NiceHash,
    /// One upstream per miner.
    Simple,
}

/// Which login field names a worker record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WorkersMode {
    RigId,
    User,
    Password,
    Agent,
    Ip,
    Disabled,
}

/// What a listening port does with the bytes it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindKind {
    /// Stratum: miners log in and are split over upstreams.
    Stratum,
    /// Transparent jump port: bytes go unparsed to a target.
    Transparent(JumpBind),
}

/// Where a transparent port sends its bytes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpBind {
    /// `host:port`.
    pub target: String,
    /// Start TLS toward the target (`target-tls`).
    pub tls: bool,
    /// Accept exactly this target certificate (lowercase hex SHA-256 of the DER); without
    /// it any certificate is accepted and its fingerprint logged.
    pub fingerprint: Option<String>,
    /// Send a PROXY v1 header with the client's address first (`target-proxy-protocol`).
    pub proxy_protocol: bool,
    /// A pair with no byte either way this long is closed (0: never).
    pub idle_secs: u64,
}

impl JumpBind {
    /// A plain jump to `target` with the default idle timeout.
    pub fn to(target: &str) -> JumpBind {
        JumpBind { target: target.to_string(), tls: false, fingerprint: None, proxy_protocol: false, idle_secs: JUMP_IDLE_SECS }
    }
}

/// A jump pair silent this long in both directions is closed: a peer that vanished
/// without a FIN must not hold two sockets for ever. Mining streams carry a job or a
/// keepalive every few minutes at most.
pub const JUMP_IDLE_SECS: u64 = 600;

/// Which stratum dialects a port takes (`"protocol"` on a bind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BindProtocol {
    /// The first line decides: `login` is CryptoNote, `mining.*` is stratum v1.
    Auto,
    CryptoNote,
    StratumV1,
}

/// One listening endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub addr: SocketAddr,
    pub tls: bool,
    pub proxy_protocol: bool,
    pub kind: BindKind,
    /// The pool group miners on this port mine to (`pool-group`; stratum binds only).
    pub group: String,
    pub protocol: BindProtocol,
    /// The port's own vardiff settings (`"vardiff"` on the bind, read over the global ones).
    pub vardiff: Option<crate::splitter::vardiff::VardiffConfig>,
}

/// One upstream pool, in failover order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// `host:port` (a `stratum+tcp://` or `stratum+ssl://` prefix is stripped on load).
    pub url: String,
    pub user: String,
    pub pass: String,
    pub rig_id: Option<String>,
    pub algo: Option<String>,
    pub tls: bool,
    /// Lowercase hex SHA-256 of the pool certificate's DER, without colons.
    pub tls_fingerprint: Option<String>,
    /// Accept any certificate (self-signed pools); the fingerprint is logged for pinning.
    pub tls_insecure: bool,
    pub keepalive: bool,
    pub enabled: bool,
    /// The group this pool belongs to (`group`, default `"default"`).
    pub group: String,
    /// Share of the group's hashrate, relative to the other weighted pools of the group;
    /// `None`: a fallback, mined only while every weighted pool of the group is down.
    pub weight: Option<u32>,
    /// The pool's dialect when said outright (`"protocol"`); else its `algo` decides.
    pub protocol: Option<crate::stratum::algo::Dialect>,
    /// A pool that sends no new job this long (seconds) is left for the next; 0 = never.
    pub job_timeout_secs: u64,
}

impl Config {
    /// The vardiff settings of bind `i` (its own, else the global ones).
    pub fn vardiff_of(&self, i: usize) -> crate::splitter::vardiff::VardiffConfig {
        self.binds.get(i).and_then(|b| b.vardiff).unwrap_or(self.vardiff)
    }
}

impl PoolConfig {
    /// The dialect the pool speaks: `protocol` when set, else the one its algorithm
    /// implies, else CryptoNote.
    pub fn dialect(&self) -> crate::stratum::algo::Dialect {
        use crate::stratum::algo::Dialect;
        self.protocol.or_else(|| self.algo.as_deref().and_then(Dialect::of)).unwrap_or(Dialect::CryptoNote)
    }
}

/// Inbound TLS for binds with `tls: true`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert: Option<String>,
    pub cert_key: Option<String>,
    pub ciphers: Option<String>,
    pub protocols: Option<String>,
}

/// The monitoring HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    pub access_token: Option<String>,
    /// Needed for writes (POST, PUT, DELETE) when set; reads accept it too.
    pub admin_token: Option<String>,
    pub restricted: bool,
}

/// Accounts registered through the REST API (`"accounts"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsConfig {
    pub enabled: bool,
    /// The store file (created mode 0600 when missing).
    pub store: String,
    /// Accounts with no miner activity this long are removed; 0 = never.
    pub expire_after_secs: u64,
}

/// Rigs whose shares the pool rejects too often, or that fail the proxy's own checks
/// (`"quarantine"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineConfig {
    pub enabled: bool,
    /// This many pool rejects among a rig's last `window` pool-answered shares...
    pub rejects: u8,
    pub window: u8,
    /// ...a second time, on its own connection: it is closed and refused this long.
    pub cooldown_secs: u64,
    /// This many shares refused by the proxy's checks with hardly a good one between them
    /// (each good share halves the count): the rig is warned about, and closed and refused
    /// for `cooldown_secs` when quarantine is enabled. 0 = never.
    pub invalid: u32,
}

/// Per-IP connection rate limiting; 0 disables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub max_connections_per_minute: u32,
    pub ban_duration_secs: u64,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mode: Mode,
    pub binds: Vec<Bind>,
    pub pools: Vec<PoolConfig>,
    pub tls: TlsConfig,
    pub http: HttpConfig,
    pub access_password: Option<String>,
    pub custom_diff: u64,
    pub custom_diff_stats: bool,
    pub algo_ext: bool,
    pub workers: WorkersMode,
    pub access_log_file: Option<String>,
    pub share_log_file: Option<String>,
    pub log_file: Option<String>,
    pub reuse_timeout_secs: u64,
    pub retries: u32,
    pub retry_pause_secs: u64,
    pub watch: bool,
    pub rate_limit: RateLimit,
    /// NiceHash mode: refuse logins once this many upstreams exist; 0 = no cap.
    pub max_upstreams: usize,
    pub verbose: bool,
    /// Seconds between console summary lines (`print-time`); 0 = the default, 60 s.
    pub print_time_secs: u64,
    pub accounts: AccountsConfig,
    pub quarantine: QuarantineConfig,
    /// Per-miner variable difficulty, for ports that say nothing of their own.
    pub vardiff: crate::splitter::vardiff::VardiffConfig,
    /// The algorithm of known pools, by `host:port` (`"pools-algo"`): what an account's
    /// pool mines when its registration does not say.
    pub pools_algo: std::collections::BTreeMap<String, String>,
}

/// A configuration problem, naming the field (`pools[1].url`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { write!(f, "{}", self.reason) } else { write!(f, "{}: {}", self.field, self.reason) }
    }
}

impl std::error::Error for ConfigError {}
