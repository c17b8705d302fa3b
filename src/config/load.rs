//! Loading `config.json` (xmrig-proxy compatible keys) by walking a `serde_json::Value`,
//! so that every error names the field path (`pools[1].url`) and the reason.

use super::{
    AccountsConfig, Bind, BindKind, BindProtocol, Config, ConfigError, HttpConfig, JumpBind, Mode, PoolConfig, QuarantineConfig, RateLimit,
    TlsConfig, WorkersMode,
};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

type R<T> = Result<T, ConfigError>;

pub(super) const MODE_CHOICES: &str = "must be one of nicehash, simple";

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { enabled: false, host: "127.0.0.1".to_string(), port: 0, access_token: None, admin_token: None, restricted: true }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::NiceHash,
            binds: vec![Bind::stratum(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 3333))],
            pools: Vec::new(),
            tls: TlsConfig::default(),
            http: HttpConfig::default(),
            access_password: None,
            custom_diff: 0,
            custom_diff_stats: false,
            algo_ext: true,
            workers: WorkersMode::RigId,
            access_log_file: None,
            share_log_file: None,
            log_file: None,
            reuse_timeout_secs: 0,
            retries: 2,
            retry_pause_secs: 1,
            watch: false,
            rate_limit: RateLimit::default(),
            max_upstreams: 0,
            verbose: false,
            print_time_secs: 60,
            accounts: AccountsConfig { enabled: false, store: "accounts.db".to_string(), expire_after_secs: 0 },
            quarantine: QuarantineConfig { enabled: true, rejects: 5, window: 20, cooldown_secs: 600, invalid: 100 },
            vardiff: Default::default(),
            pools_algo: Default::default(),
        }
    }
}

impl Bind {
    /// A plain stratum listener (no TLS, no PROXY protocol).
    pub fn stratum(addr: SocketAddr) -> Self {
        Bind {
            addr,
            tls: false,
            proxy_protocol: false,
            kind: BindKind::Stratum,
            group: crate::DEFAULT_GROUP_NAME.to_string(),
            protocol: BindProtocol::Auto,
            vardiff: None,
        }
    }
}

impl PoolConfig {
    /// A pool with the xmrig defaults: empty user, password "x", enabled, no TLS.
    pub fn new(url: impl Into<String>) -> Self {
        PoolConfig {
            url: url.into(),
            user: String::new(),
            pass: "x".to_string(),
            rig_id: None,
            algo: None,
            tls: false,
            tls_fingerprint: None,
            tls_insecure: false,
            keepalive: false,
            enabled: true,
            group: crate::DEFAULT_GROUP_NAME.to_string(),
            weight: None,
            protocol: None,
            job_timeout_secs: 600,
        }
    }
}

/// Upper bound for durations in seconds (30 days): they are added to `Instant`s, and a
/// larger value would only ever be a typo.
pub(super) const MAX_SECS: u64 = 30 * 86_400;

/// Reads and parses a config file.
pub fn load_file(path: &Path) -> R<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| err("", format!("cannot read {}: {e}", path.display())))?;
    parse_str(&text)
}

/// Parses config JSON text; unknown keys are ignored, `null` means "use the default".
pub fn parse_str(text: &str) -> R<Config> {
    let root: Value = serde_json::from_str(text).map_err(|e| err("", format!("invalid JSON: {e}")))?;
    let Value::Object(map) = &root else {
        return Err(err("", "expected a JSON object at the top level"));
    };
    let mut c = Config::default();
    for (key, v) in map {
        let k = key.as_str();
        match k {
            "mode" => set(&mut c.mode, opt_str(v, k)?.map(|s| parse_mode(&s).ok_or_else(|| err(k, MODE_CHOICES))).transpose()?),
            "bind" => set(&mut c.binds, list(v, k, parse_bind)?),
            "pools" => set(&mut c.pools, list(v, k, parse_pool)?),
            "tls" => each(v, k, |k, v, p| {
                match k {
                    "enabled" => {}
                    "cert" => c.tls.cert = opt_nonempty(v, p)?,
                    "cert_key" | "cert-key" => c.tls.cert_key = opt_nonempty(v, p)?,
                    "ciphers" => c.tls.ciphers = opt_nonempty(v, p)?,
                    "protocols" => c.tls.protocols = opt_nonempty(v, p)?,
                    _ => ignore(p),
                }
                Ok(())
            })?,
            "http" => each(v, k, |k, v, p| {
                match k {
                    "enabled" => set(&mut c.http.enabled, opt_bool(v, p)?),
                    "host" => set(&mut c.http.host, opt_nonempty(v, p)?),
                    "port" => set(&mut c.http.port, opt_port(v, p)?),
                    "access-token" => c.http.access_token = opt_nonempty(v, p)?,
                    "admin-token" => c.http.admin_token = opt_nonempty(v, p)?,
                    "restricted" => set(&mut c.http.restricted, opt_bool(v, p)?),
                    _ => ignore(p),
                }
                Ok(())
            })?,
            "rate-limit" => each(v, k, |k, v, p| {
                let rl = &mut c.rate_limit;
                match k {
                    "max-connections-per-minute" => {
                        set(&mut rl.max_connections_per_minute, opt_u64(v, p, u32::MAX.into())?.map(|n| n as u32))
                    }
                    "ban-duration" => set(&mut rl.ban_duration_secs, opt_u64(v, p, MAX_SECS)?),
                    _ => ignore(p),
                }
                Ok(())
            })?,
            "accounts" => each(v, k, |k, v, p| {
                let a = &mut c.accounts;
                match k {
                    "enabled" => set(&mut a.enabled, opt_bool(v, p)?),
                    "store" => set(&mut a.store, opt_nonempty(v, p)?),
                    "expire-after" => set(&mut a.expire_after_secs, opt_u64(v, p, 10 * 365 * 86_400)?),
                    _ => ignore(p),
                }
                Ok(())
            })?,
            "quarantine" => {
                each(v, k, |k, v, p| {
                    let q = &mut c.quarantine;
                    match k {
                        "enabled" => set(&mut q.enabled, opt_bool(v, p)?),
                        "rejects" => set(&mut q.rejects, opt_u64(v, p, 32)?.map(|n| n as u8)),
                        "window" => set(&mut q.window, opt_u64(v, p, 32)?.map(|n| n as u8)),
                        "cooldown" => set(&mut q.cooldown_secs, opt_u64(v, p, MAX_SECS)?),
                        "invalid" => set(&mut q.invalid, opt_u64(v, p, 1_000_000)?.map(|n| n as u32)),
                        _ => ignore(p),
                    }
                    Ok(())
                })?;
                let q = c.quarantine;
                if q.rejects == 0 || q.window == 0 || q.rejects > q.window {
                    return Err(err(k, "needs 1 <= rejects <= window <= 32"));
                }
            }
            "vardiff" => c.vardiff = crate::splitter::vardiff::parse_vardiff(v, k, &c.vardiff)?,
            "pools-algo" => each(v, k, |pool, v, p| {
                check_host_port(pool).map_err(|r| err(p, format!("the key {r}")))?;
                let algo = opt_nonempty(v, p)?.ok_or_else(|| err(p, "expected an algorithm name"))?;
                if algo.len() > 32 || !algo.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(err(p, "expected an algorithm name (up to 32 printable characters)"));
                }
                c.pools_algo.insert(pool.to_ascii_lowercase(), algo);
                Ok(())
            })?,
            "access-password" => c.access_password = opt_nonempty(v, k)?,
            "access-log-file" => c.access_log_file = opt_nonempty(v, k)?,
            "share-log-file" => c.share_log_file = opt_nonempty(v, k)?,
            "log-file" => c.log_file = opt_nonempty(v, k)?,
            "custom-diff" => set(&mut c.custom_diff, opt_u64(v, k, u64::MAX)?),
            "custom-diff-stats" => set(&mut c.custom_diff_stats, opt_bool(v, k)?),
            "algo-ext" => set(&mut c.algo_ext, opt_bool(v, k)?),
            "workers" => set(&mut c.workers, parse_workers(v, k)?),
            "reuse-timeout" => set(&mut c.reuse_timeout_secs, opt_u64(v, k, MAX_SECS)?),
            "retries" => set(&mut c.retries, opt_u64(v, k, 1000)?.map(|n| n as u32)),
            "retry-pause" => set(&mut c.retry_pause_secs, opt_u64(v, k, MAX_SECS)?),
            "watch" => set(&mut c.watch, opt_bool(v, k)?),
            "max-upstreams" => set(&mut c.max_upstreams, opt_u64(v, k, usize::MAX as u64)?.map(|n| n as usize)),
            "verbose" => set(&mut c.verbose, bool_or_num(v, k)?),
            "print-time" => set(&mut c.print_time_secs, opt_u64(v, k, MAX_SECS)?),
            _ => ignore(k),
        }
    }
    // A bind's vardiff is read over the global one, which may come after it in the file.
    if let Some(Value::Array(binds)) = map.get("bind") {
        for (i, b) in binds.iter().enumerate() {
            if let (Some(v), Some(bind)) = (b.get("vardiff").filter(|v| !v.is_null()), c.binds.get_mut(i)) {
                bind.vardiff = Some(crate::splitter::vardiff::parse_vardiff(v, &format!("bind[{i}].vardiff"), &c.vardiff)?);
            }
        }
    }
    Ok(c)
}

/// `nicehash` or `simple`, case-insensitive.
pub(super) fn parse_mode(s: &str) -> Option<Mode> {
    match s.to_ascii_lowercase().as_str() {
        "nicehash" => Some(Mode::NiceHash),
        "simple" => Some(Mode::Simple),
        _ => None,
    }
}

/// A listen address: `0.0.0.0:3333`, `[::]:3333` or `localhost:3333`.
pub(super) fn parse_bind_addr(s: &str) -> Result<SocketAddr, String> {
    let (host, port) = s.rsplit_once(':').ok_or("expected host:port")?;
    let port = parse_port(port)?;
    let ip = parse_ip(host).ok_or("expected an IP address as host")?;
    Ok(SocketAddr::new(ip, port))
}

/// Strips `stratum+tcp://` / `stratum+ssl://` (the latter means TLS) and checks `host:port`.
pub(super) fn parse_pool_url(s: &str) -> Result<(String, bool), String> {
    let (rest, tls) = if let Some(r) = strip_prefix_ci(s, "stratum+tcp://") {
        (r, false)
    } else if let Some(r) = strip_prefix_ci(s, "stratum+ssl://") {
        (r, true)
    } else if s.contains("://") {
        return Err("unsupported scheme (use stratum+tcp:// or stratum+ssl://)".to_string());
    } else {
        (s, false)
    };
    let rest = rest.trim_end_matches('/');
    check_host_port(rest)?;
    Ok((rest.to_string(), tls))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len()).filter(|h| h.eq_ignore_ascii_case(prefix)).map(|_| &s[prefix.len()..])
}

fn check_host_port(s: &str) -> Result<(), String> {
    const SHAPE: &str = "must be host:port with a numeric port";
    let (host, port) = s.rsplit_once(':').ok_or(SHAPE)?;
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/' || c == '@') {
        return Err(SHAPE.to_string());
    }
    match parse_port(port)? {
        0 => Err("port out of range".to_string()),
        _ => Ok(()),
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be host:port with a numeric port".to_string());
    }
    s.parse::<u16>().map_err(|_| "port out of range".to_string())
}

fn parse_ip(host: &str) -> Option<IpAddr> {
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    host.parse().ok()
}

fn parse_bind(v: &Value, f: &str) -> R<Bind> {
    match v {
        Value::String(s) => return parse_bind_addr(s).map(Bind::stratum).map_err(|r| err(f, r)),
        Value::Object(_) => {}
        _ => return Err(err(f, "expected a \"host:port\" string or an object")),
    }
    let (mut host, mut port, mut bind) = ("0.0.0.0".to_string(), None, Bind::stratum(SocketAddr::from(([0, 0, 0, 0], 0))));
    let (mut transparent, mut target, mut jump) = (false, None, JumpBind::to(""));
    // The first key of transparent binds set here, refused on a stratum bind.
    let mut jump_key: Option<String> = None;
    each(v, f, |k, v, p| {
        if (k.starts_with("target") || k == "idle-timeout") && !v.is_null() && jump_key.is_none() {
            jump_key = Some(p.to_string());
        }
        match k {
            "host" => set(&mut host, opt_str(v, p)?),
            "port" => port = opt_port(v, p)?,
            "tls" => set(&mut bind.tls, opt_bool(v, p)?),
            "proxy-protocol" => set(&mut bind.proxy_protocol, opt_bool(v, p)?),
            "protocol" => {
                bind.protocol = match opt_str(v, p)?.map(|m| m.to_ascii_lowercase()).as_deref() {
                    None | Some("auto") => BindProtocol::Auto,
                    Some("cryptonote") => BindProtocol::CryptoNote,
                    Some("stratum-v1") => BindProtocol::StratumV1,
                    Some(_) => return Err(err(p, "must be one of auto, cryptonote, stratum-v1")),
                }
            }
            "mode" => match opt_str(v, p)?.map(|m| m.to_ascii_lowercase()).as_deref() {
                None | Some("stratum") => transparent = false,
                Some("transparent") => transparent = true,
                Some(_) => return Err(err(p, "must be one of stratum, transparent")),
            },
            "target" => target = opt_nonempty(v, p)?,
            "target-tls" => set(&mut jump.tls, opt_bool(v, p)?),
            "target-tls-fingerprint" => jump.fingerprint = opt_fingerprint(v, p)?,
            "target-proxy-protocol" => set(&mut jump.proxy_protocol, opt_bool(v, p)?),
            "idle-timeout" => set(&mut jump.idle_secs, opt_u64(v, p, MAX_SECS)?),
            // Transparent ports have no pools: the key is accepted and has no effect there.
            "pool-group" => set(&mut bind.group, opt_group(v, p)?),
            _ => ignore(p),
        }
        Ok(())
    })?;
    let port = port.ok_or_else(|| err(format!("{f}.port"), "required"))?;
    let ip = parse_ip(&host).ok_or_else(|| err(format!("{f}.host"), "expected an IP address"))?;
    bind.addr = SocketAddr::new(ip, port);
    if transparent {
        let p = format!("{f}.target");
        let target = target.ok_or_else(|| err(&p, "required for a transparent bind"))?;
        check_host_port(&target).map_err(|r| err(&p, r))?;
        if jump.fingerprint.is_some() && !jump.tls {
            return Err(err(format!("{f}.target-tls-fingerprint"), "needs \"target-tls\": true"));
        }
        bind.kind = BindKind::Transparent(JumpBind { target, ..jump });
    } else if let Some(p) = jump_key {
        return Err(err(p, "only for a transparent bind (\"mode\": \"transparent\")"));
    }
    Ok(bind)
}

fn parse_pool(v: &Value, f: &str) -> R<PoolConfig> {
    if !v.is_object() {
        return Err(err(f, "expected an object"));
    }
    let (mut pool, mut have_url, mut url_tls) = (PoolConfig::new(""), false, false);
    each(v, f, |k, v, p| {
        match k {
            "url" => {
                if let Some(u) = opt_str(v, p)? {
                    (pool.url, url_tls) = parse_pool_url(&u).map_err(|r| err(p, r))?;
                    have_url = true;
                }
            }
            "user" => set(&mut pool.user, opt_str(v, p)?),
            "pass" => set(&mut pool.pass, opt_str(v, p)?),
            "rig-id" => pool.rig_id = opt_nonempty(v, p)?,
            "algo" => pool.algo = opt_nonempty(v, p)?,
            "tls" => set(&mut pool.tls, opt_bool(v, p)?),
            "tls-fingerprint" => pool.tls_fingerprint = opt_fingerprint(v, p)?,
            "tls-insecure" => set(&mut pool.tls_insecure, opt_bool(v, p)?),
            "keepalive" => set(&mut pool.keepalive, bool_or_num(v, p)?),
            "enabled" => set(&mut pool.enabled, opt_bool(v, p)?),
            "group" => set(&mut pool.group, opt_group(v, p)?),
            "weight" => pool.weight = opt_weight(v, p)?,
            "job-timeout" => set(&mut pool.job_timeout_secs, opt_u64(v, p, MAX_SECS)?),
            "protocol" => {
                use crate::stratum::algo::Dialect;
                pool.protocol = match opt_str(v, p)?.map(|m| m.to_ascii_lowercase()).as_deref() {
                    None => None,
                    Some("cryptonote") => Some(Dialect::CryptoNote),
                    Some("stratum-v1") => Some(Dialect::StratumV1),
                    Some(_) => return Err(err(p, "must be one of cryptonote, stratum-v1")),
                }
            }
            "nicehash" => {}
            _ => ignore(p),
        }
        Ok(())
    })?;
    if !have_url {
        return Err(err(format!("{f}.url"), "required"));
    }
    pool.tls |= url_tls;
    Ok(pool)
}

/// Longest group name: it shows in logs, the API and metric labels.
const MAX_GROUP_NAME: usize = 64;

/// A group name: letters, digits, `-`, `_` and `.`, so it is safe in logs and labels.
fn opt_group(v: &Value, p: &str) -> R<Option<String>> {
    let Some(name) = opt_str(v, p)? else { return Ok(None) };
    if name.is_empty() || name.len() > MAX_GROUP_NAME {
        return Err(err(p, format!("must be 1 to {MAX_GROUP_NAME} characters")));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(err(p, "may hold only letters, digits, '-', '_' and '.'"));
    }
    Ok(Some(name))
}

/// Largest weight: weights are relative, so this only keeps sums far from overflow.
const MAX_WEIGHT: u64 = 1_000_000;

/// A pool's weight: a positive integer; `null` means a fallback pool.
fn opt_weight(v: &Value, p: &str) -> R<Option<u32>> {
    const WHAT: &str = "must be a positive integer (the pool's part relative to the group's other weights)";
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_u64() {
            Some(w) if (1..=MAX_WEIGHT).contains(&w) => Ok(Some(w as u32)),
            Some(0) => Err(err(p, WHAT)),
            Some(_) => Err(err(p, format!("must be at most {MAX_WEIGHT}"))),
            None => Err(err(p, WHAT)),
        },
        _ => Err(err(p, WHAT)),
    }
}

/// Checks that need the whole config, after the command line is applied: every stratum
/// port's pool group has an enabled pool to mine to (with accounts on, a port may have
/// none: only registered accounts mine there).
pub fn validate(c: &Config) -> R<()> {
    // A group speaks one dialect: miners of its ports can only mine what its pools speak.
    for (i, p) in c.pools.iter().enumerate().filter(|(_, p)| p.enabled) {
        if p.protocol.is_none() && p.algo.as_deref().is_some_and(|a| crate::stratum::algo::Dialect::of(a).is_none()) {
            return Err(err(format!("pools[{i}].algo"), "speaks EthereumStratum, which this proxy does not"));
        }
        if let Some(first) = c.pools.iter().find(|q| q.enabled && q.group == p.group)
            && first.dialect() != p.dialect()
        {
            return Err(err(
                format!("pools[{i}]"),
                format!(
                    "speaks {:?} but group \"{}\" already has {:?} pools; put it in a group of its own",
                    p.dialect(),
                    p.group,
                    first.dialect()
                ),
            ));
        }
    }
    for (i, bind) in c.binds.iter().enumerate() {
        if bind.kind != BindKind::Stratum || c.accounts.enabled {
            continue;
        }
        if !c.pools.iter().any(|p| p.enabled && p.group == bind.group) {
            let field = if bind.group == crate::DEFAULT_GROUP_NAME { "pools".to_string() } else { format!("bind[{i}].pool-group") };
            let reason = if bind.group == crate::DEFAULT_GROUP_NAME {
                "at least one enabled pool is required (config \"pools\" or -o URL)".to_string()
            } else {
                format!("group \"{}\" has no enabled pool", bind.group)
            };
            return Err(err(field, reason));
        }
    }
    Ok(())
}

/// An optional certificate pin, normalised to the form fingerprints are compared in.
fn opt_fingerprint(v: &Value, p: &str) -> R<Option<String>> {
    let fp =
        opt_nonempty(v, p)?.map(|s| crate::net::tls::normalise_fingerprint(&s).ok_or_else(|| err(p, "must be 64 hex digits (SHA-256)")));
    fp.transpose()
}

fn parse_workers(v: &Value, f: &str) -> R<Option<WorkersMode>> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Bool(true) => WorkersMode::RigId,
        Value::Bool(false) => WorkersMode::Disabled,
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "rig-id" => WorkersMode::RigId,
            "user" => WorkersMode::User,
            "password" => WorkersMode::Password,
            "agent" => WorkersMode::Agent,
            "ip" => WorkersMode::Ip,
            "false" => WorkersMode::Disabled,
            _ => return Err(err(f, "must be one of rig-id, user, password, agent, ip, false")),
        },
        _ => return Err(err(f, "expected a boolean or a string")),
    }))
}

pub(super) fn err(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), reason: reason.into() }
}

fn ignore(path: &str) {
    log::debug!("config: ignoring unknown key {path}");
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Walks an object's keys (`null` = none), calling `g(key, value, "path.key")`.
fn each(v: &Value, f: &str, mut g: impl FnMut(&str, &Value, &str) -> R<()>) -> R<()> {
    match v {
        Value::Null => Ok(()),
        Value::Object(o) => o.iter().try_for_each(|(k, v)| g(k, v, &format!("{f}.{k}"))),
        _ => Err(err(f, "expected an object")),
    }
}

/// An array (`null` = unset) whose items are parsed by `g` with paths `f[i]`.
fn list<T>(v: &Value, f: &str, g: fn(&Value, &str) -> R<T>) -> R<Option<Vec<T>>> {
    match v {
        Value::Null => Ok(None),
        Value::Array(a) => a.iter().enumerate().map(|(i, x)| g(x, &format!("{f}[{i}]"))).collect::<R<_>>().map(Some),
        _ => Err(err(f, "expected an array")),
    }
}

/// `null` = unset; otherwise `get` must accept the value, else "expected <what>".
fn opt<T>(v: &Value, f: &str, what: &str, get: impl Fn(&Value) -> Option<T>) -> R<Option<T>> {
    if v.is_null() { Ok(None) } else { get(v).map(Some).ok_or_else(|| err(f, format!("expected {what}"))) }
}

fn opt_bool(v: &Value, f: &str) -> R<Option<bool>> {
    opt(v, f, "a boolean", Value::as_bool)
}

fn bool_or_num(v: &Value, f: &str) -> R<Option<bool>> {
    opt(v, f, "a boolean or a number", |v| v.as_bool().or(v.as_f64().map(|n| n != 0.0)))
}

fn opt_str(v: &Value, f: &str) -> R<Option<String>> {
    opt(v, f, "a string", |v| v.as_str().map(str::to_string))
}

fn opt_nonempty(v: &Value, f: &str) -> R<Option<String>> {
    Ok(opt_str(v, f)?.filter(|s| !s.is_empty()))
}

fn opt_u64(v: &Value, f: &str, max: u64) -> R<Option<u64>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_u64() {
            Some(x) if x <= max => Ok(Some(x)),
            Some(_) => Err(err(f, format!("must be at most {max}"))),
            None => Err(err(f, "expected a non-negative integer")),
        },
        _ => Err(err(f, "expected a non-negative integer")),
    }
}

fn opt_port(v: &Value, f: &str) -> R<Option<u16>> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()).map(Some).ok_or_else(|| err(f, "port out of range")),
        _ => opt_u64(v, f, 0).map(|_| None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XMRIG: &str = r#"{"access-log-file":null,"access-password":null,"algo-ext":true,"api":{"id":null,"worker-id":null},"http":{"enabled":false,"host":"127.0.0.1","port":0,"access-token":null,"restricted":true},"background":false,"bind":[{"host":"0.0.0.0","port":3333,"tls":false},"[::]:3334"],"colors":true,"title":true,"custom-diff":0,"custom-diff-stats":false,"donate-level":0,"log-file":null,"mode":"nicehash","pools":[{"algo":null,"coin":null,"url":"stratum+tcp://pool.example.com:3333","user":"WALLET","pass":"x","rig-id":null,"keepalive":false,"enabled":true,"tls":false,"tls-fingerprint":null,"daemon":false}],"retries":2,"retry-pause":1,"reuse-timeout":0,"tls":{"enabled":false,"protocols":null,"cert":null,"cert_key":null,"ciphers":null},"user-agent":null,"syslog":false,"verbose":false,"watch":true,"workers":true}"#;

    fn fail(text: &str) -> ConfigError {
        parse_str(text).expect_err("should fail")
    }

    #[test]
    fn real_xmrig_proxy_config_parses() {
        let c = parse_str(XMRIG).unwrap();
        let mut expected = Config { watch: true, ..Config::default() };
        expected.binds.push(Bind::stratum("[::]:3334".parse().unwrap()));
        let mut pool = PoolConfig::new("pool.example.com:3333");
        pool.user = "WALLET".to_string();
        expected.pools.push(pool);
        assert_eq!(c, expected);
    }

    #[test]
    fn empty_object_and_nulls_give_defaults() {
        assert_eq!(parse_str("{}").unwrap(), Config::default());
        let c = parse_str(r#"{"mode":null,"bind":null,"pools":null,"http":null,"retries":null,"workers":null,"verbose":null}"#).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn empty_strings_mean_unset_for_passwords_and_files() {
        let c = parse_str(r#"{"access-password":"","log-file":"","share-log-file":"s.log","http":{"access-token":""}}"#).unwrap();
        assert_eq!((c.access_password, c.log_file, c.http.access_token), (None, None, None));
        assert_eq!(c.share_log_file.as_deref(), Some("s.log"));
    }

    #[test]
    fn the_admin_token_is_read_and_empty_means_unset() {
        let c = parse_str(r#"{"http":{"access-token":"r","admin-token":"w"}}"#).unwrap();
        assert_eq!((c.http.access_token.as_deref(), c.http.admin_token.as_deref()), (Some("r"), Some("w")));
        assert_eq!(parse_str(r#"{"http":{"admin-token":""}}"#).unwrap().http.admin_token, None);
        assert_eq!(parse_str(r#"{"http":{"admin-token":5}}"#).unwrap_err().field, "http.admin-token");
    }

    #[test]
    fn quarantine_reads_its_keys_and_invalid_zero_is_off() {
        let c = parse_str(r#"{"quarantine":{"enabled":true,"rejects":3,"window":10,"cooldown":60,"invalid":500}}"#).unwrap();
        assert_eq!(c.quarantine, QuarantineConfig { enabled: true, rejects: 3, window: 10, cooldown_secs: 60, invalid: 500 });
        assert_eq!(parse_str(r#"{"quarantine":{"invalid":0}}"#).unwrap().quarantine.invalid, 0);
        assert_eq!(Config::default().quarantine.invalid, 100);
        assert_eq!(parse_str(r#"{"quarantine":{"invalid":1000001}}"#).unwrap_err().field, "quarantine.invalid");
        assert_eq!(parse_str(r#"{"quarantine":{"rejects":9,"window":5}}"#).unwrap_err().field, "quarantine");
    }

    #[test]
    fn the_shipped_configs_load_and_state_the_quarantine_defaults() {
        for text in [include_str!("../../config.json"), include_str!("../../contrib/config.json")] {
            assert_eq!(parse_str(text).unwrap().quarantine, Config::default().quarantine);
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        for (text, field, reason) in [
            (r#"{"retries":"2"}"#, "retries", "expected a non-negative integer"),
            (r#"{"watch":1}"#, "watch", "expected a boolean"),
            (r#"{"http":{"enabled":"yes"}}"#, "http.enabled", "expected a boolean"),
            (r#"{"pools":[{"url":"a:1"},{"url":5}]}"#, "pools[1].url", "expected a string"),
            (r#"{"pools":[{"user":"u"}]}"#, "pools[0].url", "required"),
            (r#"{"pools":{}}"#, "pools", "expected an array"),
            (r#"{"bind":[true]}"#, "bind[0]", "expected a \"host:port\" string or an object"),
            (r#"{"tls":{"cert-key":1}}"#, "tls.cert-key", "expected a string"),
            (r#"{"workers":"nobody"}"#, "workers", "must be one of rig-id, user, password, agent, ip, false"),
            (r#"{"retries":1001}"#, "retries", "must be at most 1000"),
            (r#"{"retry-pause":18446744073709551615}"#, "retry-pause", "must be at most 2592000"),
            (r#"{"rate-limit":{"ban-duration":-5}}"#, "rate-limit.ban-duration", "expected a non-negative integer"),
        ] {
            assert_eq!(fail(text), err(field, reason), "{text}");
        }
    }

    #[test]
    fn bad_mode_is_rejected_and_mode_is_case_insensitive() {
        assert_eq!(fail(r#"{"mode":"fast"}"#), err("mode", MODE_CHOICES));
        assert_eq!(parse_str(r#"{"mode":"SIMPLE"}"#).unwrap().mode, Mode::Simple);
    }

    #[test]
    fn bad_ports_are_rejected() {
        assert_eq!(fail(r#"{"http":{"port":70000}}"#), err("http.port", "port out of range"));
        assert_eq!(fail(r#"{"bind":[{"port":-1}]}"#), err("bind[0].port", "port out of range"));
        assert_eq!(fail(r#"{"bind":["0.0.0.0:99999"]}"#), err("bind[0]", "port out of range"));
        assert_eq!(fail(r#"{"bind":["0.0.0.0"]}"#).field, "bind[0]");
        assert_eq!(fail(r#"{"pools":[{"url":"pool.example.com"}]}"#), err("pools[0].url", "must be host:port with a numeric port"));
        assert_eq!(fail(r#"{"pools":[{"url":"pool:abc"}]}"#), err("pools[0].url", "must be host:port with a numeric port"));
    }

    #[test]
    fn transparent_bind_requires_target() {
        let e = fail(r#"{"bind":[{"host":"::","port":4444,"mode":"transparent"}]}"#);
        assert_eq!(e, err("bind[0].target", "required for a transparent bind"));
        let c = parse_str(r#"{"bind":[{"host":"::","port":4444,"mode":"Transparent","target":"pool:443","target-tls":true}]}"#).unwrap();
        let kind = BindKind::Transparent(JumpBind { tls: true, ..JumpBind::to("pool:443") });
        assert_eq!(c.binds[0].kind, kind);
        assert_eq!(c.binds[0].addr, "[::]:4444".parse().unwrap());
        assert_eq!(fail(r#"{"bind":[{"port":1,"mode":"tunnel"}]}"#).field, "bind[0].mode");
        let c = parse_str(r#"{"bind":[{"port":1,"mode":"transparent","target":"a:1","idle-timeout":0}]}"#).unwrap();
        assert!(matches!(&c.binds[0].kind, BindKind::Transparent(j) if j.idle_secs == 0), "0 turns the idle timeout off");
        let fp = "AB".repeat(32);
        let c = parse_str(&format!(
            r#"{{"bind":[{{"port":1,"mode":"transparent","target":"a:1","target-tls":true,"target-tls-fingerprint":"{fp}"}}]}}"#
        ))
        .unwrap();
        assert!(matches!(&c.binds[0].kind, BindKind::Transparent(j) if j.fingerprint == Some("ab".repeat(32))));
        let e = fail(&format!(r#"{{"bind":[{{"port":1,"mode":"transparent","target":"a:1","target-tls-fingerprint":"{fp}"}}]}}"#));
        assert_eq!(e, err("bind[0].target-tls-fingerprint", "needs \"target-tls\": true"));
        let e = fail(r#"{"bind":[{"port":1,"mode":"transparent","target":"a:1","target-tls":true,"target-tls-fingerprint":"ab"}]}"#);
        assert_eq!(e.field, "bind[0].target-tls-fingerprint");
        let e = fail(r#"{"bind":[{"port":1,"idle-timeout":5}]}"#);
        assert_eq!(e, err("bind[0].idle-timeout", "only for a transparent bind (\"mode\": \"transparent\")"));
        assert!(parse_str(r#"{"bind":[{"port":1,"target":null}]}"#).is_ok(), "a null key is as good as none");
        assert_eq!(fail(r#"{"bind":[{"port":1,"mode":"transparent","target":"a:1","idle-timeout":-1}]}"#).field, "bind[0].idle-timeout");
    }

    #[test]
    fn pools_take_a_group_and_a_weight_and_binds_a_pool_group() {
        let c = parse_str(
            r#"{"bind":[{"port":1},{"port":2,"pool-group":"farm-b"}],
                "pools":[{"url":"a:1","weight":70},{"url":"b:1","group":"farm-b"},{"url":"c:1","weight":null}]}"#,
        )
        .unwrap();
        assert_eq!((c.binds[0].group.as_str(), c.binds[1].group.as_str()), ("default", "farm-b"));
        assert_eq!((c.pools[0].group.as_str(), c.pools[0].weight), ("default", Some(70)));
        assert_eq!((c.pools[1].group.as_str(), c.pools[2].weight), ("farm-b", None));
        assert_eq!(validate(&c), Ok(()));
    }

    #[test]
    fn bad_groups_and_weights_name_the_field() {
        for (text, field) in [
            (r#"{"pools":[{"url":"a:1","weight":0}]}"#, "pools[0].weight"),
            (r#"{"pools":[{"url":"a:1","weight":-3}]}"#, "pools[0].weight"),
            (r#"{"pools":[{"url":"a:1","weight":0.7}]}"#, "pools[0].weight"),
            (r#"{"pools":[{"url":"a:1","weight":"70"}]}"#, "pools[0].weight"),
            (r#"{"pools":[{"url":"a:1","weight":1000001}]}"#, "pools[0].weight"),
            (r#"{"pools":[{"url":"a:1","group":""}]}"#, "pools[0].group"),
            (r#"{"pools":[{"url":"a:1","group":"a b"}]}"#, "pools[0].group"),
            (r#"{"pools":[{"url":"a:1","group":7}]}"#, "pools[0].group"),
            (r#"{"bind":[{"port":1,"pool-group":"x\ny"}]}"#, "bind[0].pool-group"),
        ] {
            assert_eq!(fail(text).field, field, "{text}");
        }
    }

    #[test]
    fn a_port_whose_group_has_no_enabled_pool_is_an_error_naming_it() {
        let c =
            parse_str(r#"{"bind":[{"port":1,"pool-group":"gpu"}],"pools":[{"url":"a:1"},{"url":"b:1","group":"gpu","enabled":false}]}"#)
                .unwrap();
        assert_eq!(validate(&c), Err(err("bind[0].pool-group", "group \"gpu\" has no enabled pool")));
        let none = parse_str(r#"{"bind":[{"port":1}]}"#).unwrap();
        assert_eq!(validate(&none).unwrap_err().field, "pools");
        // Transparent ports have no pools to mine to.
        let jump = parse_str(r#"{"bind":[{"port":1,"mode":"transparent","target":"t:1","pool-group":"none"}]}"#).unwrap();
        assert_eq!(validate(&jump), Ok(()));
    }

    #[test]
    fn accounts_and_the_pools_algorithm_table() {
        let c = parse_str(
            r#"{"accounts":{"enabled":true,"store":"/var/lib/sp/a.db","expire-after":86400},"bind":[{"port":1}],
            "pools-algo":{"Pool.Example:3333":"rx/0","b:1":"sha256d"}}"#,
        )
        .unwrap();
        assert_eq!((c.accounts.enabled, c.accounts.store.as_str(), c.accounts.expire_after_secs), (true, "/var/lib/sp/a.db", 86400));
        assert_eq!(c.pools_algo.get("pool.example:3333").map(String::as_str), Some("rx/0"));
        assert_eq!(validate(&c), Ok(()), "with accounts on, a port needs no pools of its own");
        assert_eq!(fail(r#"{"pools-algo":{"nohost":"rx/0"}}"#).field, "pools-algo.nohost");
        assert_eq!(fail(r#"{"pools-algo":{"a:1":7}}"#).field, "pools-algo.a:1");
        assert_eq!(fail(r#"{"pools-algo":{"a:1":"r x"}}"#).field, "pools-algo.a:1");
        assert_eq!(fail(r#"{"accounts":{"enabled":"yes"}}"#).field, "accounts.enabled");
    }

    #[test]
    fn dialects_of_pools_and_ports() {
        use crate::stratum::algo::Dialect;
        let c = parse_str(
            r#"{"bind":[{"port":1,"protocol":"stratum-v1"},{"port":2}],"pools":[{"url":"a:1","algo":"sha256d"},
                {"url":"b:1","protocol":"stratum-v1"},{"url":"c:1","group":"cn"}]}"#,
        )
        .unwrap();
        assert_eq!((c.binds[0].protocol, c.binds[1].protocol), (BindProtocol::StratumV1, BindProtocol::Auto));
        assert_eq!(
            (c.pools[0].dialect(), c.pools[1].dialect(), c.pools[2].dialect()),
            (Dialect::StratumV1, Dialect::StratumV1, Dialect::CryptoNote)
        );
        assert_eq!(validate(&c), Ok(()));
        let mixed = parse_str(r#"{"pools":[{"url":"a:1","algo":"sha256d"},{"url":"b:1","algo":"rx/0"}]}"#).unwrap();
        assert_eq!(validate(&mixed).unwrap_err().field, "pools[1]");
        let eth = parse_str(r#"{"pools":[{"url":"a:1","algo":"kawpow"}]}"#).unwrap();
        assert_eq!(validate(&eth).unwrap_err().field, "pools[0].algo");
        assert_eq!(fail(r#"{"bind":[{"port":1,"protocol":"v2"}]}"#).field, "bind[0].protocol");
        assert_eq!(fail(r#"{"pools":[{"url":"a:1","protocol":"http"}]}"#).field, "pools[0].protocol");
    }

    #[test]
    fn vardiff_global_and_per_bind_read_over_it() {
        let c = parse_str(r#"{"bind":[{"port":1,"vardiff":{"target-time":10}},{"port":2}],"vardiff":{"enabled":true,"min":500}}"#).unwrap();
        assert!(c.vardiff.enabled && c.vardiff.min == 500.0);
        let b0 = c.vardiff_of(0);
        assert_eq!((b0.enabled, b0.target_time, b0.min), (true, 10, 500.0), "the bind's keys over the global ones");
        assert_eq!(c.vardiff_of(1), c.vardiff);
        assert_eq!(fail(r#"{"bind":[{"port":1,"vardiff":{"target-time":0}}]}"#).field, "bind[0].vardiff.target-time");
        assert_eq!(fail(r#"{"vardiff":{"min":-1}}"#).field, "vardiff.min");
    }

    #[test]
    fn stratum_ssl_prefix_sets_tls() {
        let c = parse_str(r#"{"pools":[{"url":"stratum+ssl://pool.example.com:443","tls":false},{"url":"plain:1"}]}"#).unwrap();
        assert_eq!((c.pools[0].url.as_str(), c.pools[0].tls), ("pool.example.com:443", true));
        assert_eq!((c.pools[1].url.as_str(), c.pools[1].tls), ("plain:1", false));
        assert_eq!(fail(r#"{"pools":[{"url":"http://x:1"}]}"#).field, "pools[0].url");
    }

    #[test]
    fn tls_fingerprint_is_normalised() {
        let colons = (0..32).map(|i| format!("{:02X}", i * 7)).collect::<Vec<_>>().join(":");
        let c = parse_str(&format!(r#"{{"pools":[{{"url":"a:1","tls-fingerprint":"{colons}"}}]}}"#)).unwrap();
        assert_eq!(c.pools[0].tls_fingerprint, Some(colons.replace(':', "").to_lowercase()));
        let e = fail(r#"{"pools":[{"url":"a:1","tls-fingerprint":"abcd"}]}"#);
        assert_eq!(e.field, "pools[0].tls-fingerprint");
    }

    #[test]
    fn keepalive_verbose_and_workers_accept_xmrig_forms() {
        let c = parse_str(r#"{"verbose":1,"workers":"IP","pools":[{"url":"a:1","keepalive":60,"enabled":false}]}"#).unwrap();
        assert!(c.verbose && c.pools[0].keepalive && !c.pools[0].enabled);
        assert_eq!(c.workers, WorkersMode::Ip);
        assert_eq!(parse_str(r#"{"workers":false}"#).unwrap().workers, WorkersMode::Disabled);
    }

    #[test]
    fn errors_never_contain_passwords() {
        let e = fail(r#"{"pools":[{"url":"stratum+tcp://u:SECRET@host","pass":"SECRET"}]}"#);
        assert!(!e.to_string().contains("SECRET"), "{e}");
        assert_eq!(fail(r#"{"pools":[{"url":"a:1","pass":5}]}"#), err("pools[0].pass", "expected a string"));
    }

    #[test]
    fn invalid_json_reports_line_and_column() {
        let e = fail("{\n  \"mode\": nicehash\n}");
        assert_eq!(e.field, "");
        assert!(e.reason.contains("line 2 column"), "{e}");
        assert_eq!(fail("[]").reason, "expected a JSON object at the top level");
    }

    #[test]
    fn load_file_reports_unreadable_path_and_reads_files() {
        let e = load_file(Path::new("/nonexistent/dir/config.json")).unwrap_err();
        assert!(e.reason.starts_with("cannot read /nonexistent/dir/config.json: "), "{e}");
        let path = std::env::temp_dir().join(format!("cfg-load-test-{}.json", std::process::id()));
        std::fs::write(&path, XMRIG).unwrap();
        let c = load_file(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(c.unwrap().pools[0].user, "WALLET");
    }
}
