//! Hot reload of the config file, and per-address rate limiting.

mod support;

use serde_json::json;
use std::time::Duration;
use stratum_proxy::config::{self, Mode};
use support::*;

fn write_config(path: &std::path::Path, value: serde_json::Value) {
    // Write then rename, as editors and config management do: never a half-written file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, value.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn login_with(proxy: &RunningProxy, pass: &str) -> String {
    let mut m = proxy.miner();
    m.send("login", json!({"login": "WALLET", "pass": pass, "agent": "t"}));
    error_of(&m.recv())
}

#[test]
fn a_watched_config_applies_password_and_pools_live_and_rejects_a_broken_file() {
    let dir = std::env::temp_dir().join(format!("sp-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    let first = MockPool::start(1000);
    let second = MockPool::start(3000);
    let body = |pool: &MockPool, pass: &str| json!({"bind": ["127.0.0.1:0"], "watch": true, "access-password": pass, "pools": [{"url": pool.url(), "user": "W"}]});
    write_config(&path, body(&first, "one"));
    let cfg = config::load_file(&path).unwrap();
    let proxy = RunningProxy::start_with_file(cfg, Some(path.clone()));
    let mut m = proxy.miner();
    m.send("login", json!({"login": "WALLET", "pass": "one", "agent": "t"}));
    assert!(m.recv()["error"].is_null());

    write_config(&path, body(&second, "two"));
    // The miner stays connected and gets the new pool's job.
    let job = m.next_job();
    assert_eq!(job["target"], target_for(3000));
    assert_eq!(second.logins(), 1);
    assert_eq!(login_with(&proxy, "one"), "Invalid password");
    assert_eq!(login_with(&proxy, "two"), "");

    std::fs::write(&path, "{ this is not json").unwrap();
    // Give the poller a chance to see the broken file, then prove the old config stands.
    assert!(!wait_until(Duration::from_millis(2500), || !login_with(&proxy, "two").is_empty()), "the running config is kept");
    let id = m.send("keepalived", json!({"id": m.session.clone()}));
    assert_eq!(m.recv()["id"], id);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_address_over_its_rate_is_refused_while_others_connect() {
    let pool = MockPool::start(1000);
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.rate_limit.max_connections_per_minute = 5;
    cfg.rate_limit.ban_duration_secs = 60;
    let proxy = RunningProxy::start(cfg);
    for _ in 0..5 {
        proxy.miner().login();
    }
    let mut refused = proxy.miner();
    assert!(refused.closed_within(WAIT), "the sixth connection in a minute is closed");
    // Another source address is not affected.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.2:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    s.connect(&proxy.addr.into()).unwrap();
    let stream: std::net::TcpStream = s.into();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut w = &stream;
    std::io::Write::write_all(&mut w, b"{\"id\":1,\"method\":\"login\",\"params\":{\"login\":\"W\",\"pass\":\"x\"}}\n").unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&stream), &mut line).unwrap();
    assert!(line.contains("\"status\":\"OK\""), "{line}");
}

#[test]
fn a_thousand_logins_from_one_address_are_served() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    let mut miners = Vec::new();
    for _ in 0..1000 {
        let mut m = proxy.miner();
        m.login();
        miners.push(m);
    }
    assert_eq!(pool.logins(), 4, "1000 miners / 256 per upstream");
    let fixed: std::collections::HashSet<(String, String)> =
        miners.iter().map(|m| (m.job["blob"].as_str().unwrap()[..6].to_string(), m.fixed_byte())).collect();
    assert_eq!(fixed.len(), 1000, "every miner has its own (upstream, fixed byte)");
}
