//! Bad input from both sides: fields of the wrong JSON type from miners, and garbage,
//! floods and malformed jobs from the pool. Each gets its answer (or is dropped with a
//! warning) and everyone else goes on being served.

mod support;

use serde_json::json;
use stratum_proxy::config::Mode;
use support::*;

#[test]
fn wrong_json_types_in_login_fields_get_answers() {
    let (_pool, proxy) = nicehash_proxy();
    for params in [json!({"login": 123, "pass": "x"}), json!({"login": ["W"]}), json!({"login": null}), json!({"login": ""}), json!(null)] {
        let mut m = proxy.miner();
        m.send("login", params.clone());
        assert_eq!(error_of(&m.recv()), "Invalid payment address provided", "{params}");
    }
    // Optional fields of the wrong type are ignored, not fatal.
    let mut m = proxy.miner();
    m.send("login", json!({"login": "W", "pass": {}, "agent": 5, "rigid": [], "algo": "rx/0"}));
    assert!(m.recv()["error"].is_null());
}

#[test]
fn wrong_json_types_in_submit_fields_get_answers() {
    let (pool, proxy) = nicehash_proxy();
    let mut m = proxy.miner();
    m.login();
    let (session, job_id, fixed) = (m.session.clone(), m.job_id(), m.fixed_byte());
    let nonce = format!("000000{fixed}");
    let good_result = result_for(5000);
    let cases = [
        (json!({"id": 7, "job_id": job_id, "nonce": nonce, "result": good_result}), "Unauthenticated"),
        (json!({"id": session, "job_id": 7, "nonce": nonce, "result": good_result}), "Missing job id"),
        (json!({"id": session, "job_id": job_id, "nonce": 1234, "result": good_result}), "Invalid nonce"),
        (json!({"id": session, "job_id": job_id, "nonce": "abc", "result": good_result}), "Invalid nonce"),
        (json!({"id": session, "job_id": job_id, "nonce": nonce, "result": {"a": 1}}), "Invalid result"),
        (json!({"id": session, "job_id": job_id, "nonce": nonce, "result": "zz"}), "Invalid result"),
        (json!("params as a string"), "Unauthenticated"),
    ];
    for (params, want) in cases {
        let id = m.send("submit", params.clone());
        let reply = m.recv();
        assert_eq!((reply["id"].as_u64(), error_of(&reply)), (Some(id), want.to_string()), "{params}");
    }
    assert!(pool.submits().is_empty());
    assert!(m.submit(1, 5000)["error"].is_null(), "the miner is still served");
}

#[test]
fn pool_garbage_and_unknown_replies_are_ignored() {
    let (pool, proxy) = nicehash_proxy();
    let mut m = proxy.miner();
    m.login();
    pool.send_raw(
        b"\x00\x01 not json\n{\"id\":999,\"result\":{\"status\":\"OK\"},\"error\":null}\n[1,2]\n{\"method\":\"mining.notify\"}\n\n",
    );
    let job_id = pool.push_job();
    assert_eq!(m.next_job()["job_id"], job_id, "the upstream survived the garbage");
    assert_eq!(pool.logins(), 1);
    assert!(m.submit(1, 5000)["error"].is_null());
}

#[test]
fn malformed_pool_jobs_are_dropped_and_miners_keep_the_last_good_one() {
    let (pool, proxy) = nicehash_proxy();
    let mut m = proxy.miner();
    m.login();
    let bad = [
        json!({"blob": "00ff", "job_id": "short", "target": "b88d0600"}),
        json!({"blob": "zz".repeat(76), "job_id": "nothex", "target": "b88d0600"}),
        json!({"blob": "00".repeat(76), "job_id": "badtarget", "target": "xyz"}),
        json!({"blob": "00".repeat(76), "job_id": "", "target": "b88d0600"}),
        json!({"blob": "00".repeat(76), "target": "b88d0600"}),
        json!("not an object"),
    ];
    for params in bad {
        pool.send_raw(format!("{}\n", json!({"jsonrpc": "2.0", "method": "job", "params": params})).as_bytes());
    }
    assert!(m.recv_within(std::time::Duration::from_millis(300)).is_none(), "no bad job reaches the miner");
    assert!(m.submit(1, 5000)["error"].is_null(), "the last good job still takes shares");
    let job_id = pool.push_job();
    assert_eq!(m.next_job()["job_id"], job_id);
}

#[test]
fn a_pool_flooding_an_endless_line_is_cut_off_and_reconnected() {
    let (pool, proxy) = nicehash_proxy();
    let mut m = proxy.miner();
    m.login();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..32 {
        pool.send_raw(&chunk);
    }
    // The proxy drops the link at its line limit and logs in again; the miner stays.
    assert!(wait_until(WAIT, || pool.logins() == 2), "reconnected after the flood");
    let job = m.next_job();
    assert!(job["job_id"].is_string());
}

#[test]
fn a_miner_that_stops_reading_is_dropped_not_buffered() {
    let pool = MockPool::start(1000);
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.http.enabled = true;
    cfg.http.port = 0;
    let proxy = RunningProxy::start(cfg);
    let mut reader = proxy.miner();
    reader.login();
    let mut stuck = proxy.miner();
    stuck.login();
    // `stuck` never reads again. Push more job bytes than the kernel buffers plus the
    // proxy's per-miner output bound can hold.
    let miners = || http_get(proxy.http.unwrap(), "/1/summary", "").json()["miners"]["now"].as_u64();
    let mut pushed = 0;
    while miners() == Some(2) && pushed < 200 {
        for _ in 0..200 {
            pool.push_job();
        }
        pushed += 1;
        // Keep the reading miner drained so only `stuck` backs up.
        while reader.recv_within(std::time::Duration::from_millis(1)).is_some() {}
    }
    assert!(wait_until(WAIT, || miners() == Some(1)), "the stuck miner was dropped after {pushed}x200 jobs");
    let id = reader.send("keepalived", json!({"id": reader.session.clone()}));
    loop {
        let v = reader.recv();
        if v["id"] == id {
            break;
        }
    }
}

#[test]
fn a_connection_flooding_requests_is_closed_and_the_others_are_served() {
    let (_pool, proxy) = nicehash_proxy();
    let mut good = proxy.miner();
    good.login();
    let mut flood = proxy.miner();
    flood.login();
    // Keepalives cost the proxy a parse and a reply each and count as no share, so only
    // the request limit stops them. 5,000 in one write: more than the limit between any
    // two ticks, however they fall.
    let per_request = json!({"id": 1, "jsonrpc": "2.0", "method": "keepalived", "params": {"id": flood.session.clone()}});
    let burst = format!("{per_request}\n").repeat(5000);
    let _ = flood.send_raw(burst.as_bytes());
    assert!(flood.closed_within(WAIT), "closed past {} requests a second", stratum_proxy::proxy::MAX_MINER_REQUESTS);
    let id = good.send("keepalived", json!({"id": good.session.clone()}));
    assert_eq!(good.recv()["id"], id, "the others did not notice");
    assert!(good.submit(1, 5000)["error"].is_null());
}
