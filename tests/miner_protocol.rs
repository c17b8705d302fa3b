//! What the proxy does with miners that misbehave: every bad input gets its answer or a
//! prompt close, and nobody else is disturbed.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use stratum_proxy::config::Mode;
use support::*;

#[test]
fn an_over_long_line_closes_at_once_with_or_without_newline() {
    let (_pool, proxy) = nicehash_proxy();
    let mut bystander = proxy.miner();
    bystander.login();
    for (size, newline) in [(20_000, false), (16_385, true), (1 << 20, false)] {
        let mut m = proxy.miner();
        let mut line = vec![b'a'; size];
        if newline {
            line.push(b'\n');
        }
        let _ = m.send_raw(&line);
        let t = Instant::now();
        assert!(m.closed_within(WAIT), "{size}-byte line");
        assert!(t.elapsed() < Duration::from_secs(3), "closed by the size limit, not a timeout");
    }
    let id = bystander.send("keepalived", json!({"id": bystander.session.clone()}));
    assert_eq!(bystander.recv()["id"], id, "other miners are unaffected");
}

#[test]
fn a_line_at_the_limit_is_read() {
    let (_pool, proxy) = nicehash_proxy();
    let mut m = proxy.miner();
    let login = json!({"id": 1, "jsonrpc": "2.0", "method": "login", "params": {"login": "WALLET", "pass": "x", "agent": "a"}}).to_string();
    let padded = format!("{login}{}\n", " ".repeat(16_384 - login.len()));
    m.send_raw(padded.as_bytes()).unwrap();
    assert!(m.recv()["error"].is_null());
}

#[test]
fn malformed_or_non_login_first_messages_close_the_connection() {
    let (_pool, proxy) = nicehash_proxy();
    let inputs: [&[u8]; 5] = [
        b"this is not json\n",
        b"\x00\x01\x02\xff\xfe\n",
        b"{\"id\":1,\"method\":\"submit\",\"params\":{}}\n",
        b"[1,2,3]\n",
        b"{\"id\":1,\"method\":\"login\",\"params\":\"WALLET\"}\n",
    ];
    for input in inputs {
        let mut m = proxy.miner();
        m.send_raw(input).unwrap();
        assert!(m.closed_within(WAIT), "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn a_login_without_a_wallet_is_refused() {
    let (_pool, proxy) = nicehash_proxy();
    let mut m = proxy.miner();
    m.send("login", json!({"pass": "x", "agent": "a"}));
    assert_eq!(error_of(&m.recv()), "Invalid payment address provided");
    assert!(m.closed_within(WAIT));
}

#[test]
fn the_access_password_is_enforced() {
    let pool = MockPool::start(1000);
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.access_password = Some("s3cret".into());
    let proxy = RunningProxy::start(cfg);
    let mut m = proxy.miner();
    m.send("login", json!({"login": "WALLET", "pass": "wrong", "agent": "a"}));
    assert_eq!(error_of(&m.recv()), "Invalid password");
    assert!(m.closed_within(WAIT));
    let mut ok = proxy.miner();
    ok.send("login", json!({"login": "WALLET", "pass": "s3cret", "agent": "a"}));
    assert!(ok.recv()["error"].is_null());
}

#[test]
fn unknown_methods_are_answered_and_the_miner_stays() {
    let (_pool, proxy) = nicehash_proxy();
    let mut m = proxy.miner();
    m.login();
    let id = m.send("getjob", json!({}));
    let reply = m.recv();
    assert_eq!((reply["id"].as_u64(), error_of(&reply)), (Some(id), "Invalid method".to_string()));
    let id = m.send("keepalived", json!({"id": m.session.clone()}));
    assert_eq!(m.recv()["result"]["status"], "KEEPALIVED", "request {id}");
}

#[test]
fn request_ids_are_echoed_verbatim() {
    let (_pool, proxy) = nicehash_proxy();
    let mut m = proxy.miner();
    m.send_raw(b"{\"id\":\"abc\",\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"W\",\"pass\":\"x\"}}\n").unwrap();
    let reply = m.recv();
    assert_eq!(reply["id"], "abc");
    m.session = reply["result"]["id"].as_str().unwrap().to_string();
    m.send_raw(format!("{{\"id\":7,\"method\":\"keepalived\",\"params\":{{\"id\":\"{}\"}}}}\n", m.session).as_bytes()).unwrap();
    assert_eq!(m.recv()["id"], 7);
}

#[test]
fn a_miner_that_cannot_mine_the_pool_algorithm_is_told_so() {
    let (_pool, proxy) = nicehash_proxy();
    let mut m = proxy.miner();
    m.send("login", json!({"login": "WALLET", "pass": "x", "agent": "a", "algo": ["cn/r", "kawpow"]}));
    assert_eq!(error_of(&m.recv()), "Unsupported algorithm rx/0");
    assert!(m.closed_within(WAIT));
}

#[test]
fn silent_and_half_line_connections_close_at_the_login_timeout() {
    let (_pool, proxy) = nicehash_proxy();
    let mut silent = proxy.miner();
    let mut half = proxy.miner();
    half.send_raw(b"{\"id\":1,\"method\":\"lo").unwrap();
    let t = Instant::now();
    assert!(silent.closed_within(Duration::from_secs(13)));
    assert!(half.closed_within(Duration::from_secs(2)));
    let waited = t.elapsed();
    assert!(waited >= Duration::from_secs(9), "closed after {waited:?}, before the 10 s login timeout");
}

#[test]
fn stop_waits_for_submits_in_flight_but_not_longer_than_the_grace_period() {
    let pool = MockPool::start(1000);
    pool.state.lock().unwrap().hold_replies = true;
    let mut proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    let mut m = proxy.miner();
    m.login();
    let (job_id, fixed, session) = (m.job_id(), m.fixed_byte(), m.session.clone());
    m.send("submit", json!({"id": session, "job_id": job_id, "nonce": format!("000100{fixed}"), "result": result_for(5000)}));
    assert!(wait_until(WAIT, || pool.submits().len() == 1));
    let took = proxy.stop();
    assert!(took >= Duration::from_millis(4500) && took < Duration::from_secs(7), "stop took {took:?}");
    // Nothing in flight: the stop is immediate.
    let pool = MockPool::start(1000);
    let mut proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    proxy.miner().login();
    assert!(proxy.stop() < Duration::from_secs(1));
}
