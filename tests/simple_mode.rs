//! Simple mode: one upstream per miner, optionally kept for reuse.

mod support;

use stratum_proxy::config::Mode;
use support::*;

#[test]
fn each_miner_gets_its_own_upstream() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::Simple, &[pool.url()]));
    let mut a = proxy.miner();
    let mut b = proxy.miner();
    a.login();
    b.login();
    assert_eq!(pool.logins(), 2);
    let ext = a.login_as("WALLET");
    assert_eq!(error_of(&ext), "Invalid method", "a second login is refused");
    // Simple mode does not split nonces: the whole nonce is the miner's.
    assert!(a.submit_raw(&a.job_id(), "ffffffff", &result_for(5000))["error"].is_null());
    assert_eq!(pool.submits().len(), 1);
}

fn login_rig(proxy: &RunningProxy, user: &str, rig: &str) -> TestMiner {
    let mut m = proxy.miner();
    let id = m.send("login", serde_json::json!({"login": user, "pass": "x", "agent": "t", "rigid": rig}));
    let reply = m.recv();
    assert_eq!(reply["id"], id);
    assert!(reply["error"].is_null(), "{reply}");
    m.session = reply["result"]["id"].as_str().unwrap().to_string();
    m.job = reply["result"]["job"].clone();
    m
}

/// A round trip through the loop on another miner: every close before it has been reaped.
fn sync(m: &mut TestMiner) {
    let id = m.send("keepalived", serde_json::json!({"id": m.session.clone()}));
    assert_eq!(m.recv()["id"], id);
}

#[test]
fn without_reuse_a_departed_rigs_upstream_is_kept_for_that_rig_only() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::Simple, &[pool.url()]));
    let mut c = login_rig(&proxy, "WALLET", "rig-c");
    let a = login_rig(&proxy, "WALLET", "rig-a");
    drop(a);
    sync(&mut c);
    // Another rig does not get the upstream rig-a left: it is held for rig-a.
    let mut b = login_rig(&proxy, "WALLET", "rig-b");
    assert_eq!(pool.logins(), 3);
    assert!(!pool_closed(&pool), "held for the rig that left, for the grace period");
    assert!(b.submit(1, 5000)["error"].is_null());
}

#[test]
fn a_rig_that_comes_back_gets_its_upstream_job_and_difficulty_at_once() {
    let pool = MockPool::start(10_000);
    let proxy = RunningProxy::start(config(Mode::Simple, &[pool.url()]));
    let mut c = login_rig(&proxy, "WALLET", "rig-c");
    let a = login_rig(&proxy, "WALLET+3000", "rig-a");
    assert_eq!(a.job["target"], target_for(3000));
    let job_before = a.job_id();
    drop(a);
    sync(&mut c);
    // Back, without its +3000 (a failover miner config, say): the last difficulty is kept.
    let mut back = login_rig(&proxy, "WALLET", "rig-a");
    assert_eq!(back.job_id(), job_before, "the last job, in the login reply");
    assert_eq!(back.job["target"], target_for(3000), "and the last difficulty");
    assert_eq!(pool.logins(), 2, "no new pool login: the upstream was kept for the rig");
    assert!(back.submit(1, 20_000)["error"].is_null());
    assert_eq!(pool.submits().len(), 1);
}

#[test]
fn with_reuse_timeout_the_next_miner_takes_the_idle_upstream() {
    let pool = MockPool::start(1000);
    let mut cfg = config(Mode::Simple, &[pool.url()]);
    cfg.reuse_timeout_secs = 30;
    let proxy = RunningProxy::start(cfg);
    let mut c = proxy.miner();
    c.login();
    let mut a = proxy.miner();
    a.login();
    assert_eq!(pool.logins(), 2);
    drop(a);
    // A round trip through the loop after a's close: a is reaped before b logs in.
    let id = c.send("keepalived", serde_json::json!({"id": c.session.clone()}));
    assert_eq!(c.recv()["id"], id);
    let mut b = proxy.miner();
    b.login();
    assert_eq!(pool.logins(), 2, "the idle upstream was reused");
    assert_eq!(pool.state.lock().unwrap().closed_connections(), 0);
    let nonce_ok = b.submit_raw(&b.job_id(), "01020304", &result_for(5000));
    assert!(nonce_ok["error"].is_null(), "{nonce_ok}");
}

/// True when the proxy has closed its side of the (single) pool connection.
fn pool_closed(pool: &MockPool) -> bool {
    pool.state.lock().unwrap().closed_connections() == 1
}
