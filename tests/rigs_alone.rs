//! Rigs kept on a pool connection of their own instead of cut off: a rig without NiceHash
//! support, and a rig whose shares the pool keeps rejecting (quarantine, on and off).

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use stratum_proxy::config::{Config, Mode};
use support::pool as pool_entry;
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

/// Submits a share whose result misses the miner's difficulty (a rig hashing another
/// algorithm finds nothing else).
fn submit_low(m: &mut TestMiner, counter: u16) -> Value {
    m.submit(counter, 10)
}

#[test]
fn a_rig_whose_shares_keep_failing_the_checks_is_closed_and_refused_while_the_farm_mines_on() {
    let pool = MockPool::start(1000);
    let mut cfg = quarantine_config(&pool, true);
    cfg.quarantine.invalid = 20;
    let proxy = RunningProxy::start(cfg);
    let mut good = rig(&proxy, "good");
    let mut wrong = rig(&proxy, "wrong-algo");
    // The odd good share among the bad ones does not hide it (each halves the count).
    for c in 0..19 {
        assert_eq!(error_of(&submit_low(&mut wrong, c)), "Low difficulty share");
    }
    assert!(wrong.submit(100, 5000)["error"].is_null(), "a good share: the count halves to 9");
    for c in 19..29 {
        assert_eq!(error_of(&submit_low(&mut wrong, c)), "Low difficulty share");
    }
    let id = wrong.send("keepalived", serde_json::json!({"id": wrong.session.clone()}));
    assert_eq!(wrong.recv()["id"], id, "19 of 20: kept");
    assert_eq!(error_of(&submit_low(&mut wrong, 29)), "Low difficulty share", "the 20th is answered, then");
    assert!(wrong.closed_within(WAIT), "closed");
    assert_eq!(pool.submits().len(), 1, "the pool saw only the good share");
    // It comes back at once, as miners do: refused while it cools down.
    let mut again = proxy.miner();
    let id = again.send("login", serde_json::json!({"login": "WALLET", "pass": "x", "agent": "t", "rigid": "wrong-algo"}));
    let r = again.recv();
    assert_eq!(r["id"], id);
    assert!(error_of(&r).starts_with("This rig is in quarantine"), "{r}");
    assert!(again.closed_within(WAIT));
    let w = api_json(proxy.http, "/1/workers");
    let row = w["workers"].as_array().unwrap().iter().find(|r| r[0] == "wrong-algo").cloned().unwrap();
    assert_eq!((row[3].as_u64(), row[5].as_u64(), row[14].as_str()), (Some(1), Some(30), Some("invalid-shares")), "{row}");
    let m = http_get(proxy.http.unwrap(), "/metrics", "").body;
    assert!(m.contains("proxy_rigs_refused_total 1"), "{m}");
    // The farm mines on.
    assert!(good.submit(1, 5000)["error"].is_null());
}

#[test]
fn with_quarantine_off_a_rig_failing_the_checks_is_warned_about_but_kept() {
    let pool = MockPool::start(1000);
    let mut cfg = quarantine_config(&pool, false);
    cfg.quarantine.invalid = 5;
    let proxy = RunningProxy::start(cfg);
    let mut wrong = rig(&proxy, "wrong-algo");
    for c in 0..12 {
        assert_eq!(error_of(&submit_low(&mut wrong, c)), "Low difficulty share");
    }
    let id = wrong.send("keepalived", serde_json::json!({"id": wrong.session.clone()}));
    assert_eq!(wrong.recv()["id"], id, "not closed");
    let w = api_json(proxy.http, "/1/workers");
    let row = w["workers"].as_array().unwrap().iter().find(|r| r[0] == "wrong-algo").cloned().unwrap();
    assert_eq!(row[14], "invalid-shares", "but marked: {row}");
}

#[test]
fn a_v1_rig_on_the_wrong_algorithm_is_closed_after_the_default_hundred() {
    use support::v1::{MockV1Pool, V1Miner};
    // Difficulty 1000: a nonce that is not hashed for it misses (a chance of 2^-40 not to).
    let pool = MockV1Pool::start("aa", 8, 1000.0);
    let mut cfg = config(Mode::NiceHash, &[]);
    cfg.pools = vec![stratum_proxy::config::PoolConfig { algo: Some("sha256d".into()), ..pool_entry(&pool.url()) }];
    assert_eq!(cfg.quarantine.invalid, 100, "the default");
    let proxy = RunningProxy::start(cfg);
    let mut m = V1Miner::connect(proxy.addr);
    m.start("scrypt-rig");
    let job = m.job.as_ref().unwrap()[0].as_str().unwrap().to_string();
    let e2 = "00".repeat(m.extranonce2_size);
    for n in 0..100u32 {
        let id = m.send("mining.submit", serde_json::json!(["scrypt-rig", job, e2, "6553f13c", format!("{n:08x}")]));
        let r = m.reply(id);
        assert_eq!(r["error"][0], 23, "low difficulty: {r}");
    }
    assert!(m.closed_within(WAIT), "closed after 100");
    assert!(pool.submits().is_empty());
    let mut back = V1Miner::connect(proxy.addr);
    back.subscribe();
    let r = back.authorize("scrypt-rig");
    assert!(r["error"][1].as_str().unwrap_or_default().starts_with("This rig is in quarantine"), "{r}");
}
