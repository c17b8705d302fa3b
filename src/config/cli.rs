//! Command-line flags (xmrig-proxy compatible) layered over the config file.

use super::load::{MODE_CHOICES, err, parse_bind_addr, parse_mode, parse_pool_url};
use super::{Bind, Config, ConfigError, PoolConfig, load_file};
use getopts::{Fail, Matches, Options};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// What `main` should do after parsing the command line.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant, reason = "built once at startup; the API keeps Config unboxed")]
pub enum CliAction {
    /// Start the proxy; `config_path` is the file that was loaded, if any (for `watch`).
    Run { config: Config, config_path: Option<PathBuf> },
    /// Print this usage text and exit successfully.
    Help(String),
    /// Print this version line and exit successfully.
    Version(String),
    /// Ask the running proxy with this pid to hand over to a new process (SIGUSR2).
    Upgrade(u32),
}

const DEFAULT_CONFIG: &str = "config.json";

/// Parses the command line (`args` excludes `argv[0]`). Without `-c`, `./config.json` is loaded
/// if it exists, otherwise the built-in defaults are used; flags then override the file.
pub fn parse(args: &[String]) -> Result<CliAction, ConfigError> {
    parse_with_default(args, Path::new(DEFAULT_CONFIG))
}

fn options() -> Options {
    let mut o = Options::new();
    o.optopt("c", "config", "load a JSON config file (default: ./config.json if present)", "FILE");
    o.optmulti("b", "bind", "listen on ADDR, e.g. 0.0.0.0:3333 or [::]:3333 (repeatable; replaces config binds)", "ADDR");
    o.optmulti("o", "url", "pool host:port, stratum+tcp:// or stratum+ssl:// (repeatable; replaces the default group's pools)", "URL");
    o.optmulti("u", "user", "username for the pool given by the preceding -o", "USER");
    o.optmulti("p", "pass", "password for the pool given by the preceding -o", "PASS");
    o.optopt("m", "mode", "nicehash or simple", "MODE");
    o.optopt("r", "retries", "reconnect attempts before switching to a backup pool (0-1000)", "N");
    o.optopt("R", "retry-pause", "seconds to wait between reconnect attempts", "N");
    o.optopt("", "custom-diff", "override the pool difficulty sent to miners (0 = off)", "N");
    o.optopt("", "access-password", "password miners must use to log in", "PASS");
    o.optopt("", "http-host", "bind host for the HTTP API", "HOST");
    o.optopt("", "http-port", "bind port for the HTTP API (enables the API)", "PORT");
    o.optopt("", "http-access-token", "bearer token required by the HTTP API", "TOKEN");
    o.optopt("", "max-upstreams", "nicehash mode: refuse logins beyond N upstreams (0 = no cap)", "N");
    o.optopt("", "reuse-timeout", "seconds to keep an idle upstream for reuse (0 = close at once)", "N");
    o.optflag("v", "verbose", "log more detail");
    o.optflag("h", "help", "print this help and exit");
    o.optflag("V", "version", "print the version and exit");
    o.optopt("", "upgrade", "ask the running proxy PID to start this binary and hand over its connections (SIGUSR2)", "PID");
    o
}

fn version() -> String {
    format!("stratum-proxy {}", env!("CARGO_PKG_VERSION"))
}

fn flag(name: &str) -> String {
    if name.chars().count() == 1 { format!("-{name}") } else { format!("--{name}") }
}

fn parse_with_default(args: &[String], default_config: &Path) -> Result<CliAction, ConfigError> {
    let opts = options();
    let m = opts.parse(args).map_err(|f| match f {
        Fail::UnrecognizedOption(n) => err(flag(&n), "unknown option"),
        Fail::ArgumentMissing(n) => err(flag(&n), "requires a value"),
        Fail::OptionDuplicated(n) => err(flag(&n), "given more than once"),
        Fail::UnexpectedArgument(n) => err(flag(&n), "takes no value"),
        Fail::OptionMissing(n) => err(flag(&n), "required"),
    })?;
    if let Some(extra) = m.free.first() {
        return Err(err("", format!("unexpected argument {extra:?}")));
    }
    if m.opt_present("help") {
        let brief = format!("{}\nUsage: stratum-proxy [OPTIONS]", version());
        return Ok(CliAction::Help(opts.usage(&brief)));
    }
    if m.opt_present("version") {
        return Ok(CliAction::Version(version()));
    }
    if let Some(pid) = m.opt_str("upgrade") {
        let pid = pid.parse::<u32>().ok().filter(|p| *p > 1).ok_or_else(|| err("--upgrade", "expects the pid of the running proxy"))?;
        return Ok(CliAction::Upgrade(pid));
    }
    let (mut config, config_path) = match m.opt_str("config") {
        Some(path) => (load_file(Path::new(&path))?, Some(PathBuf::from(path))),
        None if default_config.exists() => (load_file(default_config)?, Some(default_config.to_path_buf())),
        None => (Config::default(), None),
    };
    apply(&m, &mut config)?;
    Ok(CliAction::Run { config, config_path })
}

/// A duration in seconds, bounded as in the config file.
fn secs(flag: &str, n: u64) -> Result<u64, ConfigError> {
    if n > super::load::MAX_SECS {
        return Err(err(flag, format!("must be at most {}", super::load::MAX_SECS)));
    }
    Ok(n)
}

fn num<T: FromStr>(m: &Matches, name: &str) -> Result<Option<T>, ConfigError> {
    m.opt_str(name).map(|s| s.trim().parse::<T>().map_err(|_| err(flag(name), "expected a number"))).transpose()
}

fn apply(m: &Matches, c: &mut Config) -> Result<(), ConfigError> {
    let binds = m.opt_strs("bind");
    if !binds.is_empty() {
        c.binds = binds.iter().map(|b| parse_bind_addr(b).map(Bind::stratum).map_err(|r| err("--bind", r))).collect::<Result<_, _>>()?;
    }
    apply_pools(m, c)?;
    if let Some(s) = m.opt_str("mode") {
        c.mode = parse_mode(&s).ok_or_else(|| err("--mode", MODE_CHOICES))?;
    }
    if let Some(n) = num::<u32>(m, "retries")? {
        if n > 1000 {
            return Err(err("--retries", "must be at most 1000"));
        }
        c.retries = n;
    }
    if let Some(n) = num::<u64>(m, "retry-pause")? {
        c.retry_pause_secs = secs("--retry-pause", n)?;
    }
    if let Some(n) = num(m, "custom-diff")? {
        c.custom_diff = n;
    }
    if let Some(p) = m.opt_str("access-password") {
        c.access_password = Some(p).filter(|p| !p.is_empty());
    }
    if let Some(h) = m.opt_str("http-host") {
        c.http.host = h;
    }
    if let Some(p) = num::<u64>(m, "http-port")? {
        c.http.port = u16::try_from(p).map_err(|_| err("--http-port", "port out of range"))?;
        c.http.enabled = true;
    }
    if let Some(t) = m.opt_str("http-access-token") {
        c.http.access_token = Some(t).filter(|t| !t.is_empty());
    }
    if let Some(n) = num(m, "max-upstreams")? {
        c.max_upstreams = n;
    }
    if let Some(n) = num::<u64>(m, "reuse-timeout")? {
        c.reuse_timeout_secs = secs("--reuse-timeout", n)?;
    }
    if m.opt_present("verbose") {
        c.verbose = true;
    }
    Ok(())
}

/// `-o` starts a new pool; each `-u`/`-p` applies to the most recent `-o` before it.
fn apply_pools(m: &Matches, c: &mut Config) -> Result<(), ConfigError> {
    let urls = m.opt_strs_pos("url");
    let mut pools = urls
        .iter()
        .map(|(_, u)| {
            let (url, tls) = parse_pool_url(u).map_err(|r| err("--url", r))?;
            Ok(PoolConfig { tls, ..PoolConfig::new(url) })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    for (name, is_user) in [("user", true), ("pass", false)] {
        for (pos, value) in m.opt_strs_pos(name) {
            let Some(i) = urls.iter().rposition(|(p, _)| *p < pos) else {
                return Err(err(flag(name), "must follow a -o/--url"));
            };
            if is_user { pools[i].user = value } else { pools[i].pass = value }
        }
    }
    if !pools.is_empty() {
        // The command line's pools are the default group's; other groups keep their pools.
        c.pools.retain(|p| p.group != crate::DEFAULT_GROUP_NAME);
        c.pools.splice(0..0, pools);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    fn run(args: &[&str]) -> Result<CliAction, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_with_default(&args, Path::new("/nonexistent/stratum-proxy/config.json"))
    }

    fn config(args: &[&str]) -> Config {
        match run(args) {
            Ok(CliAction::Run { config, .. }) => config,
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn no_flags_and_no_config_file_give_defaults() {
        assert_eq!(run(&[]).unwrap(), CliAction::Run { config: Config::default(), config_path: None });
    }

    #[test]
    fn help_lists_every_flag() {
        let Ok(CliAction::Help(text)) = run(&["--help"]) else { panic!("expected help") };
        for f in [
            "--config",
            "--bind",
            "--url",
            "--user",
            "--pass",
            "--mode",
            "--retries",
            "--retry-pause",
            "--custom-diff",
            "--access-password",
            "--http-host",
            "--http-port",
            "--http-access-token",
            "--max-upstreams",
            "--reuse-timeout",
            "--verbose",
            "--help",
            "--version",
        ] {
            assert!(text.contains(f), "help lacks {f}");
        }
    }

    #[test]
    fn version_flag_prints_crate_version() {
        assert_eq!(run(&["-V"]).unwrap(), CliAction::Version(format!("stratum-proxy {}", env!("CARGO_PKG_VERSION"))));
        assert_eq!(run(&["--upgrade", "1234"]).unwrap(), CliAction::Upgrade(1234));
        assert_eq!(run(&["--upgrade", "x"]).unwrap_err().field, "--upgrade");
    }

    #[test]
    fn dash_o_replaces_the_default_groups_pools_only() {
        let path = std::env::temp_dir().join(format!("cli-groups-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"pools":[{"url":"file.pool:1"},{"url":"gpu.pool:2","group":"gpu"}]}"#).unwrap();
        let r = run(&["-c", path.to_str().unwrap(), "-o", "cli.pool:3"]);
        std::fs::remove_file(&path).unwrap();
        let Ok(CliAction::Run { config, .. }) = r else { panic!("{r:?}") };
        let pools: Vec<(&str, &str)> = config.pools.iter().map(|p| (p.url.as_str(), p.group.as_str())).collect();
        assert_eq!(pools, [("cli.pool:3", "default"), ("gpu.pool:2", "gpu")]);
    }

    #[test]
    fn url_user_pass_pair_by_position_for_two_pools() {
        let c = config(&["-o", "a.example:3333", "-u", "W1", "-p", "P1", "-o", "stratum+ssl://b.example:443", "--user=W2"]);
        assert_eq!(c.pools.len(), 2);
        assert_eq!((c.pools[0].url.as_str(), c.pools[0].user.as_str(), c.pools[0].pass.as_str()), ("a.example:3333", "W1", "P1"));
        assert_eq!((c.pools[1].url.as_str(), c.pools[1].user.as_str(), c.pools[1].pass.as_str()), ("b.example:443", "W2", "x"));
        assert!(!c.pools[0].tls && c.pools[1].tls);
    }

    #[test]
    fn user_before_any_url_is_rejected() {
        assert_eq!(run(&["-u", "W", "-o", "a:1"]).unwrap_err(), err("--user", "must follow a -o/--url"));
        assert_eq!(run(&["-p", "secret"]).unwrap_err().field, "--pass");
    }

    #[test]
    fn bad_number_names_the_flag() {
        assert_eq!(run(&["--retries", "many"]).unwrap_err(), err("--retries", "expected a number"));
        assert_eq!(run(&["-R", "-3"]).unwrap_err(), err("--retry-pause", "expected a number"));
        assert_eq!(run(&["-r", "5000"]).unwrap_err(), err("--retries", "must be at most 1000"));
        assert_eq!(run(&["--http-port", "70000"]).unwrap_err(), err("--http-port", "port out of range"));
        assert_eq!(run(&["-m", "turbo"]).unwrap_err(), err("--mode", MODE_CHOICES));
        assert_eq!(run(&["-o", "nohostport"]).unwrap_err().field, "--url");
    }

    #[test]
    fn unknown_and_malformed_flags_are_errors() {
        assert_eq!(run(&["--donate-level", "1"]).unwrap_err(), err("--donate-level", "unknown option"));
        assert_eq!(run(&["-x"]).unwrap_err(), err("-x", "unknown option"));
        assert_eq!(run(&["--mode"]).unwrap_err(), err("--mode", "requires a value"));
        assert_eq!(run(&["-m", "simple", "-m", "nicehash"]).unwrap_err(), err("--mode", "given more than once"));
        assert_eq!(run(&["stray"]).unwrap_err().reason, "unexpected argument \"stray\"");
    }

    #[test]
    fn flags_override_scalar_settings() {
        let c = config(&[
            "-b",
            "127.0.0.1:4000",
            "-b",
            "[::]:4001",
            "-m",
            "SIMPLE",
            "-r",
            "7",
            "-R",
            "3",
            "--custom-diff",
            "50000",
            "--access-password",
            "pw",
            "--http-host",
            "0.0.0.0",
            "--http-port",
            "8080",
            "--http-access-token",
            "tok",
            "--max-upstreams",
            "12",
            "--reuse-timeout",
            "30",
            "-v",
        ]);
        assert_eq!(c.binds, vec![Bind::stratum("127.0.0.1:4000".parse().unwrap()), Bind::stratum("[::]:4001".parse().unwrap())]);
        assert_eq!((c.mode, c.retries, c.retry_pause_secs, c.custom_diff), (Mode::Simple, 7, 3, 50000));
        assert_eq!(c.access_password.as_deref(), Some("pw"));
        assert!(c.http.enabled && c.http.port == 8080 && c.http.host == "0.0.0.0");
        assert_eq!(c.http.access_token.as_deref(), Some("tok"));
        assert_eq!((c.max_upstreams, c.reuse_timeout_secs, c.verbose), (12, 30, true));
    }

    #[test]
    fn config_file_is_loaded_then_overridden() {
        let path = std::env::temp_dir().join(format!("cfg-cli-test-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"mode":"simple","retries":9,"pools":[{"url":"file.pool:1","user":"F"}]}"#).unwrap();
        let p = path.to_str().unwrap();
        let kept = run(&["-c", p]);
        let replaced = run(&["-c", p, "-r", "1", "-o", "cli.pool:2"]);
        std::fs::remove_file(&path).unwrap();
        let CliAction::Run { config, config_path } = kept.unwrap() else { panic!() };
        assert_eq!((config.mode, config.retries, config.pools[0].user.as_str()), (Mode::Simple, 9, "F"));
        assert_eq!(config_path.as_deref(), Some(path.as_path()));
        let CliAction::Run { config, .. } = replaced.unwrap() else { panic!() };
        assert_eq!((config.retries, config.pools.len(), config.pools[0].url.as_str()), (1, 1, "cli.pool:2"));
        assert!(run(&["-c", "/nonexistent/x.json"]).unwrap_err().reason.starts_with("cannot read /nonexistent/x.json"));
    }
}
