//! Rigs kept on a pool connection of their own instead of cut off: a rig without NiceHash
//! support, and a rig whose shares the pool keeps rejecting (quarantine, on and off).

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use stratum_proxy::config::{Config, Mode};
use support::*;

fn proxy_config(pool: &MockPool) -> Config {
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.http.enabled = true;
    cfg.http.port = 0;
    cfg
}

fn rig(proxy: &RunningProxy, rig: &str) -> TestMiner {
    let mut m = proxy.miner();
    let id = m.send("login", serde_json::json!({"login": "WALLET", "pass": "x", "agent": "t", "rigid": rig}));
    let r = m.recv();
    assert_eq!(r["id"], id);
    assert!(r["error"].is_null(), "{r}");
    m.session = r["result"]["id"].as_str().unwrap().to_string();
    m.job = r["result"]["job"].clone();
    m
}

fn api_json(addr: Option<SocketAddr>, path: &str) -> Value {
    http_get(addr.expect("API on"), path, "").json()
}

/// Submits with the nonce's top byte left at 00, whatever the miner's fixed byte.
fn submit_ignoring_the_byte(m: &mut TestMiner, counter: u16) -> Value {
    let job = m.job_id();
    m.submit_raw(&job, &format!("{counter:04x}0000"), &result_for(5000))
}

#[test]
fn a_rig_without_nicehash_support_is_moved_to_a_connection_of_its_own_and_kept() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(proxy_config(&pool));
    let _first = rig(&proxy, "ok-rig"); // slot 0: its fixed byte is 00
    let mut old = rig(&proxy, "old-rig");
    assert_ne!(old.fixed_byte(), "00");
    assert_eq!(pool.logins(), 1);
    let r = submit_ignoring_the_byte(&mut old, 1);
    assert_eq!(error_of(&r), "Invalid nonce; is miner not compatible with NiceHash?", "the first share gets the usual error");
    assert!(pool.submits().is_empty(), "and is never forwarded");
    // Without a disconnect, the rig gets a job from a pool connection of its own.
    let job = old.next_job();
    assert!(pool.owns_job(job["job_id"].as_str().unwrap()));
    assert_eq!(pool.logins(), 2, "a second pool connection, for that rig alone");
    for c in 2..6 {
        let r = submit_ignoring_the_byte(&mut old, c);
        assert!(r["error"].is_null(), "its shares are accepted now: {r}");
    }
    assert_eq!(pool.submits().len(), 4);
    let miners = api_json(proxy.http, "/1/miners");
    let row = miners["miners"].as_array().unwrap().iter().find(|r| r[8] == "old-rig").cloned().unwrap();
    assert_eq!(row[12], "no-nicehash");
    let workers = api_json(proxy.http, "/1/workers");
    let w = workers["workers"].as_array().unwrap().iter().find(|r| r[0] == "old-rig").cloned().unwrap();
    assert_eq!(w[14], "no-nicehash");
    let metrics = http_get(proxy.http.unwrap(), "/metrics", "").body;
    assert!(metrics.contains("proxy_rigs_alone{reason=\"no-nicehash\"} 1"), "{metrics}");
    // When it comes back it goes straight to a connection of its own: no bad first share.
    drop(old);
    let mut back = rig(&proxy, "old-rig");
    assert!(submit_ignoring_the_byte(&mut back, 9)["error"].is_null());
}

fn quarantine_config(pool: &MockPool, enabled: bool) -> Config {
    let mut cfg = proxy_config(pool);
    cfg.quarantine.enabled = enabled;
    cfg.quarantine.rejects = 3;
    cfg.quarantine.window = 5;
    cfg.quarantine.cooldown_secs = 60;
    cfg
}

#[test]
fn a_rig_the_pool_keeps_rejecting_is_quarantined_then_refused() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(quarantine_config(&pool, true));
    let mut good = rig(&proxy, "good");
    let mut bad = rig(&proxy, "broken-gpu");
    assert!(good.submit(1, 5000)["error"].is_null());
    pool.state.lock().unwrap().reject_with = Some("Invalid share".into());
    for c in 0..3 {
        assert_eq!(error_of(&bad.submit(c, 5000)), "Invalid share");
    }
    // Three of its last five rejected: it moves to a connection of its own.
    bad.next_job();
    assert_eq!(pool.logins(), 2);
    let w = api_json(proxy.http, "/1/workers");
    let row = w["workers"].as_array().unwrap().iter().find(|r| r[0] == "broken-gpu").cloned().unwrap();
    assert_eq!(row[14], "quarantined");
    // It goes on being rejected there: closed, and refused while it cools down.
    for c in 10..13 {
        assert_eq!(error_of(&bad.submit(c, 5000)), "Invalid share");
    }
    assert!(bad.closed_within(Duration::from_secs(3)));
    let mut again = proxy.miner();
    let id = again.send("login", serde_json::json!({"login": "WALLET", "pass": "x", "agent": "t", "rigid": "broken-gpu"}));
    let r = again.recv();
    assert_eq!(r["id"], id);
    assert!(error_of(&r).starts_with("This rig is in quarantine"), "{r}");
    // The rest of the farm mines on, on the shared connection.
    pool.state.lock().unwrap().reject_with = None;
    assert!(good.submit(2, 5000)["error"].is_null());
    let m = http_get(proxy.http.unwrap(), "/metrics", "").body;
    assert!(m.contains("proxy_rigs_refused_total 1"), "{m}");
}

#[test]
fn with_quarantine_off_a_rejected_rig_stays_where_it_is() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(quarantine_config(&pool, false));
    let mut bad = rig(&proxy, "broken-gpu");
    pool.state.lock().unwrap().reject_with = Some("Invalid share".into());
    for c in 0..10 {
        assert_eq!(error_of(&bad.submit(c, 5000)), "Invalid share");
    }
    assert!(bad.recv_within(Duration::from_millis(1500)).is_none(), "no new job: not moved");
    assert_eq!(pool.logins(), 1);
    let id = bad.send("keepalived", serde_json::json!({"id": bad.session.clone()}));
    assert_eq!(bad.recv()["id"], id, "and not closed");
}
