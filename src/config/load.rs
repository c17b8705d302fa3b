//! TEMPORARY stub, replaced by the real loader.
use super::*;
pub fn load_file(path: &std::path::Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError { field: String::new(), reason: format!("cannot read {}: {e}", path.display()) })?;
    parse_str(&text)
}
pub fn parse_str(_text: &str) -> Result<Config, ConfigError> {
    Err(ConfigError { field: String::new(), reason: "stub".into() })
}
impl Default for Config {
    fn default() -> Config {
        Config {
            mode: Mode::NiceHash,
            binds: vec![],
            pools: vec![],
            tls: TlsConfig::default(),
            http: HttpConfig { enabled: false, host: "127.0.0.1".into(), port: 0, access_token: None, restricted: true },
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
        }
    }
}
