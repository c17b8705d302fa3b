//! Pool failover: the proxy walks the pool list, and miners never notice except as a new job.

mod support;

use std::time::{Duration, Instant};
use stratum_proxy::config::Mode;
use support::*;

#[test]
fn a_dead_primary_fails_over_to_the_fallback_within_three_seconds() {
    let primary = dead_port();
    let fallback = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[primary.to_string(), fallback.url()]));
    let mut m = proxy.miner();
    let t = Instant::now();
    m.login();
    assert!(t.elapsed() < Duration::from_secs(3), "login answered after {:?}", t.elapsed());
    assert_eq!(fallback.logins(), 1);
}

#[test]
fn miners_wait_while_every_pool_is_down_and_get_the_first_job() {
    let addr = dead_port();
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[addr.to_string()]));
    let mut m = proxy.miner();
    m.send("login", serde_json::json!({"login": "WALLET", "pass": "x", "agent": "t", "algo": ["rx/0"]}));
    assert!(m.recv_within(Duration::from_millis(1500)).is_none(), "no answer while no pool is up");
    let pool = MockPool::start_on(addr, 1000);
    let reply = m.recv();
    assert!(reply["error"].is_null(), "{reply}");
    assert_eq!(reply["result"]["job"]["target"], target_for(1000));
    assert_eq!(pool.logins(), 1);
}

#[test]
fn losing_the_pool_keeps_miners_connected_and_the_next_pool_feeds_them() {
    let mut primary = MockPool::start(1000);
    let fallback = MockPool::start(2000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[primary.url(), fallback.url()]));
    let mut miners: Vec<TestMiner> = (0..3).map(|_| proxy.miner()).collect();
    for m in &mut miners {
        m.login();
    }
    primary.kill();
    let t = Instant::now();
    for m in &mut miners {
        let job = m.next_job();
        assert_eq!(job["target"], target_for(2000), "job from the fallback");
    }
    assert!(t.elapsed() < Duration::from_secs(3), "failover took {:?}", t.elapsed());
    assert_eq!(fallback.logins(), 1);
    // Shares go to the fallback now.
    assert!(miners[0].submit(1, 5000)["error"].is_null());
    assert_eq!(fallback.submits().len(), 1);
}

#[test]
fn after_a_fallback_the_next_reconnect_tries_the_primary_first() {
    let primary_addr = dead_port();
    let mut fallback = MockPool::start(2000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[primary_addr.to_string(), fallback.url()]));
    let mut m = proxy.miner();
    m.login();
    assert_eq!(m.job["target"], target_for(2000));
    let primary = MockPool::start_on(primary_addr, 1000);
    fallback.kill();
    let job = m.next_job();
    assert_eq!(job["target"], target_for(1000), "back on the primary");
    assert_eq!(primary.logins(), 1);
}

#[test]
fn a_submit_in_flight_when_the_pool_drops_is_answered() {
    let mut primary = MockPool::start(1000);
    primary.state.lock().unwrap().hold_replies = true;
    let fallback = MockPool::start(1000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[primary.url(), fallback.url()]));
    let mut m = proxy.miner();
    m.login();
    let nonce = format!("000100{}", m.fixed_byte());
    let job_id = m.job["job_id"].as_str().unwrap().to_string();
    let session = m.session.clone();
    let id = m.send("submit", serde_json::json!({"id": session, "job_id": job_id, "nonce": nonce, "result": result_for(5000)}));
    assert!(wait_until(WAIT, || primary.submits().len() == 1));
    primary.kill();
    loop {
        let v = m.recv();
        if v["id"] == id {
            assert_eq!(error_of(&v), "Pool connection lost, share not sent");
            break;
        }
    }
}

#[test]
fn a_pool_that_drops_every_session_right_after_login_is_not_hammered() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let accepts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepts.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut line = String::new();
            if std::io::BufRead::read_line(&mut std::io::BufReader::new(s.try_clone().unwrap()), &mut line).is_err() {
                continue;
            }
            let req: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let job = serde_json::json!({"blob": blob(0, 1), "job_id": "j1", "target": target_for(1000)});
            let reply =
                serde_json::json!({"id": req["id"], "jsonrpc": "2.0", "error": null, "result": {"id": "s", "job": job, "status": "OK"}});
            let _ = std::io::Write::write_all(&mut s, format!("{reply}\n").as_bytes());
            // ...and the session ends at once (a ban, a restarting backend).
        }
    });
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[addr.to_string()]));
    let mut m = proxy.miner();
    m.login();
    let count = || accepts.load(std::sync::atomic::Ordering::SeqCst);
    assert!(!wait_until(Duration::from_secs(2), || count() > 4), "{} connections in 2 s with retry-pause 1 s", count());
}

#[test]
fn a_pool_that_stops_answering_is_left_for_the_fallback() {
    let primary = MockPool::start(1000);
    primary.state.lock().unwrap().hold_replies = true;
    let fallback = MockPool::start(2000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[primary.url(), fallback.url()]));
    let mut m = proxy.miner();
    m.login();
    let (job_id, fixed, session) = (m.job_id(), m.fixed_byte(), m.session.clone());
    let id = m.send(
        "submit",
        serde_json::json!({"id": session, "job_id": job_id, "nonce": format!("000100{fixed}"), "result": result_for(5000)}),
    );
    // The submit is failed back after 10 s, the link is dropped, and the miner, still
    // connected, gets the fallback's job.
    let t = Instant::now();
    let mut answered = false;
    let mut moved = false;
    while !(answered && moved) {
        let v = m.recv_within(Duration::from_secs(15)).expect("answer and new job within 15 s");
        if v["id"] == id {
            assert_eq!(error_of(&v), "Pool did not answer in time");
            answered = true;
        } else if v["method"] == "job" {
            assert_eq!(v["params"]["target"], target_for(2000));
            moved = true;
        }
    }
    assert_eq!(fallback.logins(), 1);
    assert!(t.elapsed() < Duration::from_secs(13), "left after {:?}", t.elapsed());
}

#[test]
fn a_pool_that_goes_silent_is_left_within_45_seconds_and_tried_last() {
    // Connected, logged in, then silent: no job, no reply to anything. The proxy probes it
    // after 30 s of silence and leaves it 10 s later, for the next pool at once.
    let silent = MockPool::start(1000);
    let fallback = MockPool::start(2000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[silent.url(), fallback.url()]));
    let mut m = proxy.miner();
    m.login();
    silent.state.lock().unwrap().mute = true;
    let t = Instant::now();
    let job = loop {
        let v = m.recv_within(Duration::from_secs(50)).expect("a job from the next pool within 50 s");
        if v["method"] == "job" {
            m.job = v["params"].clone();
            break v["params"].clone();
        }
    };
    assert_eq!(job["target"], target_for(2000), "the miner is on the next pool");
    let took = t.elapsed();
    assert!(took < Duration::from_secs(45) && took >= Duration::from_secs(30), "left after {took:?}");
    assert_eq!(silent.logins(), 1, "the silent pool is not tried again first");
    assert!(m.submit(1, 5000)["error"].is_null(), "and the miner was never disconnected");
}

#[test]
fn a_pool_that_answers_but_sends_no_job_is_left_after_its_job_timeout() {
    let stale = MockPool::start(1000);
    let fallback = MockPool::start(2000);
    let mut cfg = config(Mode::NiceHash, &[stale.url(), fallback.url()]);
    cfg.pools[0].job_timeout_secs = 3;
    cfg.pools[0].keepalive = true;
    let proxy = RunningProxy::start(cfg);
    let mut m = proxy.miner();
    m.login();
    let t = Instant::now();
    let job = m.next_job();
    assert_eq!(job["target"], target_for(2000));
    assert!(t.elapsed() < Duration::from_secs(6), "job-timeout 3 s, left after {:?}", t.elapsed());
    assert_eq!(stale.logins(), 1);
}

#[test]
fn a_pool_named_by_host_is_resolved_off_the_loop() {
    let pool = MockPool::start(1000);
    let by_name = format!("localhost:{}", pool.addr.port());
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[by_name]));
    let mut m = proxy.miner();
    m.login();
    assert_eq!(pool.logins(), 1);
    // An unresolvable primary fails over like a dead one.
    let fallback = MockPool::start(2000);
    let proxy = RunningProxy::start(config(Mode::NiceHash, &["no-such-pool.invalid:3333".to_string(), fallback.url()]));
    let mut m = proxy.miner();
    m.login();
    assert_eq!(m.job["target"], target_for(2000));
}
