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

#[test]
fn without_reuse_a_departed_miners_upstream_closes() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::Simple, &[pool.url()]));
    let mut a = proxy.miner();
    a.login();
    drop(a);
    assert!(wait_until(WAIT, || pool.connections() == 1 && pool_closed(&pool)));
    let mut b = proxy.miner();
    b.login();
    assert_eq!(pool.logins(), 2);
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
