//! NiceHash mode end to end: miners share an upstream, each with its own fixed byte.

mod support;

use serde_json::json;
use std::time::Duration;
use stratum_proxy::config::Mode;
use support::*;

#[test]
fn three_miners_share_one_upstream_and_get_distinct_fixed_bytes() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    let mut miners: Vec<TestMiner> = (0..3).map(|_| proxy.miner()).collect();
    let mut fixed = Vec::new();
    for m in &mut miners {
        let reply = m.login_as("WALLET");
        let result = &reply["result"];
        assert_eq!(result["status"], "OK");
        assert_eq!(result["id"].as_str().unwrap().len(), 16);
        let ext: Vec<&str> = result["extensions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(ext.contains(&"nicehash") && ext.contains(&"algo"), "{ext:?}");
        assert_eq!(result["job"]["target"], target_for(1000));
        assert!(result["job"].get("id").is_none(), "job pushed to miners carries no session id");
        fixed.push(m.fixed_byte());
    }
    fixed.sort();
    fixed.dedup();
    assert_eq!(fixed.len(), 3, "each miner owns a fixed byte");
    assert_eq!(pool.logins(), 1);
    let login = pool.state.lock().unwrap().logins[0].clone();
    assert_eq!(login["login"], "POOLWALLET");
    assert_eq!(login["pass"], "poolpass");
    assert!(login["agent"].as_str().unwrap().starts_with("stratum-proxy/"));

    // A new job reaches everyone, patched per miner.
    let job_id = pool.push_job();
    for m in &mut miners {
        let job = m.next_job();
        assert_eq!(job["job_id"], job_id);
        assert!(job.get("id").is_none());
    }

    let reply = miners[1].submit(1, 2000);
    assert!(reply["error"].is_null(), "{reply}");
    assert_eq!(reply["result"]["status"], "OK");
    let submits = pool.submits();
    assert_eq!(submits.len(), 1);
    assert_eq!(submits[0]["id"], "sess-0", "pool session id, not the miner's");
    assert_eq!(submits[0]["job_id"], job_id);
    assert_eq!(submits[0]["nonce"].as_str().unwrap()[6..8], miners[1].fixed_byte());
}

#[test]
fn wrong_session_is_unauthenticated_and_keeps_the_connection() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    let mut m = proxy.miner();
    m.login();
    let job_id = m.job["job_id"].as_str().unwrap().to_string();
    let id = m.send("submit", json!({"id": "0000000000000000", "job_id": job_id, "nonce": "00000000", "result": result_for(5000)}));
    let reply = m.recv();
    assert_eq!(reply["id"], id);
    assert_eq!(error_of(&reply), "Unauthenticated");
    // Still connected and served.
    let id = m.send("keepalived", json!({"id": m.session.clone()}));
    let reply = m.recv();
    assert_eq!((reply["id"].as_u64(), reply["result"]["status"].as_str()), (Some(id), Some("KEEPALIVED")));
    assert!(pool.submits().is_empty());
}

#[test]
fn the_257th_miner_opens_a_second_upstream() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    let mut miners: Vec<TestMiner> = (0..257).map(|_| proxy.miner()).collect();
    for m in &mut miners[..256] {
        m.login();
    }
    assert_eq!(pool.logins(), 1);
    miners[256].login();
    assert_eq!(pool.logins(), 2);
    assert_eq!(miners[256].job["blob"].as_str().unwrap()[84..86], *"00", "first slot of the new upstream");
}

#[test]
fn max_upstreams_refuses_logins_when_full() {
    let pool = MockPool::start(1000);
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.max_upstreams = 1;
    let proxy = RunningProxy::start(cfg);
    let mut miners: Vec<TestMiner> = (0..256).map(|_| proxy.miner()).collect();
    for m in &mut miners {
        m.login();
    }
    let mut late = proxy.miner();
    let reply = late.login_as("WALLET");
    assert_eq!(error_of(&reply), "Proxy is full, try again later");
    assert!(late.closed_within(WAIT));
    assert_eq!(pool.logins(), 1);
}

#[test]
fn previous_job_shares_count_as_expired_and_older_ones_are_refused() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    let mut m = proxy.miner();
    m.login();
    let first = m.job.clone();
    pool.push_job();
    m.next_job();
    // Previous job: still accepted.
    let fixed = m.fixed_byte();
    let reply = m.submit_raw(first["job_id"].as_str().unwrap(), &format!("000100{fixed}"), &result_for(5000));
    assert!(reply["error"].is_null(), "{reply}");
    pool.push_job();
    m.next_job();
    let reply = m.submit_raw(first["job_id"].as_str().unwrap(), &format!("000200{fixed}"), &result_for(5000));
    assert_eq!(error_of(&reply), "Invalid job id");
    let reply = m.submit_raw("no-such-job", &format!("000300{fixed}"), &result_for(5000));
    assert_eq!(error_of(&reply), "Invalid job id");
    assert_eq!(pool.submits().len(), 1);
}

#[test]
fn nonces_are_checked_before_forwarding() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    let mut m = proxy.miner();
    m.login();
    let job_id = m.job["job_id"].as_str().unwrap().to_string();
    let other = if m.fixed_byte() == "00" { "01" } else { "00" };
    let reply = m.submit_raw(&job_id, &format!("000000{other}"), &result_for(5000));
    assert_eq!(error_of(&reply), "Invalid nonce; is miner not compatible with NiceHash?");
    for bad in ["zz", "0000000g", "000000000", ""] {
        let reply = m.submit_raw(&job_id, bad, &result_for(5000));
        assert_eq!(error_of(&reply), "Invalid nonce", "nonce {bad:?}");
    }
    // Low difficulty and duplicates are answered here too.
    let reply = m.submit(7, 10);
    assert_eq!(error_of(&reply), "Low difficulty share");
    assert!(m.submit(8, 5000)["error"].is_null());
    assert_eq!(error_of(&m.submit(8, 5000)), "Duplicate share");
    assert_eq!(pool.submits().len(), 1);
}

#[test]
fn pool_rejections_reach_the_miner() {
    let pool = MockPool::start(1000);
    pool.state.lock().unwrap().reject_with = Some("Block expired".into());
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    let mut m = proxy.miner();
    m.login();
    assert_eq!(error_of(&m.submit(1, 5000)), "Block expired");
}

#[test]
fn custom_difficulty_shares_below_the_pool_target_stay_local() {
    let pool = MockPool::start(10_000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    let mut m = proxy.miner();
    let reply = m.login_as("WALLET+1000");
    assert!(reply["error"].is_null(), "{reply}");
    assert_eq!(m.job["target"], target_for(1000));
    assert!(m.submit(1, 2000)["error"].is_null());
    assert!(pool.submits().is_empty(), "below the pool target: answered locally");
    assert!(m.submit(2, 20_000)["error"].is_null());
    assert_eq!(pool.submits().len(), 1);
    assert_eq!(error_of(&m.submit(3, 500)), "Low difficulty share");
    // The pool sees the wallet without the +diff suffix? It sees the proxy's own login.
    assert_eq!(pool.state.lock().unwrap().logins[0]["login"], "POOLWALLET");
}

#[test]
fn global_custom_diff_applies_to_every_miner() {
    let pool = MockPool::start(10_000);
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.custom_diff = 2000;
    let proxy = RunningProxy::start(cfg);
    let mut m = proxy.miner();
    m.login();
    assert_eq!(m.job["target"], target_for(2000));
    let mut n = proxy.miner();
    n.login_as("WALLET+5000");
    assert_eq!(n.job["target"], target_for(5000), "a login suffix beats the global setting");
    let _ = Duration::ZERO;
}

#[test]
fn a_burst_of_submits_in_one_pass_reaches_the_pool_whole_and_in_order() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    let mut m = proxy.miner();
    m.login();
    // 80 submits in one write: about 15 KB, several times the per-pass batch a pool link
    // holds before writing, so part goes out in the middle of the pass.
    let (job_id, fixed, result) = (m.job_id(), m.fixed_byte(), result_for(2000));
    let nonces: Vec<String> = (1..=80u16).map(|i| format!("{i:04x}00{fixed}")).collect();
    let mut burst = String::new();
    for (i, nonce) in nonces.iter().enumerate() {
        let msg = json!({"id": 1000 + i, "jsonrpc": "2.0", "method": "submit",
                         "params": {"id": m.session, "job_id": job_id, "nonce": nonce, "result": result}});
        burst.push_str(&format!("{msg}\n"));
    }
    assert!(burst.len() > 3 * 4096, "{} bytes", burst.len());
    m.send_raw(burst.as_bytes()).unwrap();
    let mut answered = 0;
    while answered < nonces.len() {
        let v = m.recv();
        if v["method"] == "job" {
            continue;
        }
        assert!(v["error"].is_null(), "{v}");
        assert_eq!(v["id"], 1000 + answered, "answers in order");
        answered += 1;
    }
    let seen: Vec<String> = pool.submits().iter().map(|s| s["nonce"].as_str().unwrap().to_string()).collect();
    assert_eq!(seen, nonces, "every share reached the pool once, in order");
}
