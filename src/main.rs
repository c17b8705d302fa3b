//! The `stratum-proxy` binary: command line and config file in, one event loop out.

use std::io::Write;
use std::process::ExitCode;
use stratum_proxy::config::Config;
use stratum_proxy::config::cli::{self, CliAction};
use stratum_proxy::proxy::Proxy;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cfg, path) = match cli::parse(&args) {
        Ok(CliAction::Run { config, config_path }) => (config, config_path),
        Ok(CliAction::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(CliAction::Version(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(CliAction::Upgrade(pid)) => return ask_upgrade(pid),
        Err(e) => {
            eprintln!("stratum-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = check(&cfg) {
        eprintln!("stratum-proxy: {e}");
        return ExitCode::from(2);
    }
    init_logging(&cfg);
    raise_nofile_limit();
    match &path {
        Some(p) => log::info!("{} using config {}", stratum_proxy::AGENT, p.display()),
        None => log::info!("{} using built-in defaults and the command line", stratum_proxy::AGENT),
    }
    // Started by a running proxy for a live upgrade: take over its sockets and state.
    let handover = std::env::var(stratum_proxy::proxy::HANDOVER_ENV).ok().and_then(|fd| fd.parse::<i32>().ok());
    // SAFETY: removing our own variable before any thread reads the environment.
    unsafe { std::env::remove_var(stratum_proxy::proxy::HANDOVER_ENV) };
    let bound = match handover {
        Some(fd) => Proxy::adopt(cfg, fd),
        None => Proxy::bind(cfg),
    };
    let mut proxy = match bound {
        Ok(p) => p,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(p) = path {
        proxy.set_config_file(p);
    }
    if let Err(e) = proxy.handle_signals() {
        log::error!("cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    // Listening: tell systemd. After a live upgrade the old process announces this one
    // (MAINPID and READY in one datagram), so this one says nothing.
    if handover.is_none() {
        stratum_proxy::net::notify::notify("READY=1");
    }
    match proxy.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--upgrade PID`: SIGUSR2 to the running proxy, which starts the binary it was started
/// from (replace that file with the new version first) and hands over.
fn ask_upgrade(pid: u32) -> ExitCode {
    // SAFETY: kill(2) with a pid and a signal number.
    if unsafe { libc::kill(pid as i32, libc::SIGUSR2) } != 0 {
        eprintln!("stratum-proxy: cannot signal process {pid}: {}", std::io::Error::last_os_error());
        return ExitCode::from(1);
    }
    println!("asked process {pid} to upgrade; its log says how the handover went");
    ExitCode::SUCCESS
}

/// Raises the open-file limit to the hard limit: each miner is a descriptor, and the
/// usual soft limit of 1024 would cap the proxy far below what it can serve.
fn raise_nofile_limit() {
    match stratum_proxy::net::raise_nofile_limit() {
        Ok(n) => log::info!("open-file limit {n} (about {} miners)", n.saturating_sub(64)),
        Err(e) => log::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// Checks that need the whole config (after the command line is applied).
fn check(cfg: &Config) -> Result<(), String> {
    if cfg.binds.is_empty() {
        return Err("bind: no address to listen on".into());
    }
    stratum_proxy::config::validate(cfg).map_err(|e| e.to_string())?;
    if cfg.binds.iter().any(|b| b.tls) {
        stratum_proxy::net::tls::server::check(&cfg.tls).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `RUST_LOG` decides the level (default info, debug with -v); with `log-file` set every
/// line also goes to that file.
fn init_logging(cfg: &Config) {
    let default = if cfg.verbose { "debug" } else { "info" };
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default));
    if let Some(path) = cfg.log_file.as_deref() {
        match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => {
                builder.target(env_logger::Target::Pipe(Box::new(Tee { file })));
            }
            Err(e) => eprintln!("stratum-proxy: log-file {path}: {e}; logging to stderr only"),
        }
    }
    builder.init();
}

/// Log output to stderr and a file; a failing file never stops the proxy.
struct Tee {
    file: std::fs::File,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        let _ = self.file.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.file.flush();
        std::io::stderr().flush()
    }
}
