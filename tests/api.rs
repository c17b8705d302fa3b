//! The HTTP API: xmrig-proxy's shapes for two real miners, access control, HTTP edge cases,
//! Prometheus metrics checked by a real parser, and the access/share log lines.

mod support;

use serde_json::Value;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use stratum_proxy::config::{Config, Mode};
use support::*;

fn api_config(pool: &MockPool) -> Config {
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.http.enabled = true;
    cfg.http.host = "127.0.0.1".into();
    cfg.http.port = 0;
    cfg
}

/// Two miners (rig1, rig2) logged in, each with accepted shares.
fn two_miners(proxy: &RunningProxy) -> (TestMiner, TestMiner) {
    let mut a = proxy.miner();
    let mut b = proxy.miner();
    for (m, rig) in [(&mut a, "rig1"), (&mut b, "rig2")] {
        let id = m.send("login", serde_json::json!({"login": "WALLET", "pass": "secretpw", "agent": "XMRig/6.26.0", "rigid": rig}));
        let reply = m.recv();
        assert_eq!(reply["id"], id);
        m.session = reply["result"]["id"].as_str().unwrap().to_string();
        m.job = reply["result"]["job"].clone();
    }
    for i in 0..3 {
        assert!(a.submit(i, 5000)["error"].is_null());
    }
    assert!(b.submit(1, 5000)["error"].is_null());
    (a, b)
}

fn api(proxy: &RunningProxy) -> SocketAddr {
    proxy.http.expect("API enabled")
}

fn assert_u64(v: &Value, what: &str) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{what} is not an unsigned integer: {v}"))
}

#[test]
fn summary_has_every_xmrig_proxy_key_with_its_type() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(api_config(&pool));
    let _miners = two_miners(&proxy);
    for path in ["/1/summary", "/2/summary"] {
        let r = http_get(api(&proxy), path, "");
        assert_eq!(r.status, 200, "{path}");
        assert!(r.head.contains("Content-Type: application/json"));
        let s = r.json();
        for key in ["id", "worker_id", "version", "kind", "algo", "mode", "ua"] {
            assert!(s[key].is_string(), "{key}: {}", s[key]);
        }
        assert_eq!(s["kind"], "proxy");
        assert_eq!(s["mode"], "nicehash");
        assert_eq!(s["algo"], "rx/0");
        assert_u64(&s["uptime"], "uptime");
        assert!(s["restricted"].is_boolean());
        assert!(s["features"].as_array().unwrap().iter().all(Value::is_string));
        assert_u64(&s["resources"]["memory"]["total"], "memory.total");
        assert!(assert_u64(&s["resources"]["memory"]["resident_set_memory"], "rss") > 0);
        assert!(s["resources"]["load_average"].is_array());
        assert_u64(&s["resources"]["hardware_concurrency"], "hardware_concurrency");
        assert!(s["donated"].is_f64());
        let total = s["hashrate"]["total"].as_array().unwrap();
        assert_eq!(total.len(), 6);
        assert!(total.iter().all(Value::is_number));
        assert_eq!((s["miners"]["now"].as_u64(), s["miners"]["max"].as_u64()), (Some(2), Some(2)));
        assert_eq!(s["workers"], 2);
        let up = &s["upstreams"];
        assert_eq!(
            (up["active"].as_u64(), up["sleep"].as_u64(), up["error"].as_u64(), up["total"].as_u64()),
            (Some(1), Some(0), Some(0), Some(1))
        );
        assert_eq!(up["ratio"].as_f64(), Some(2.0));
        let res = &s["results"];
        assert_eq!((res["accepted"].as_u64(), res["rejected"].as_u64(), res["invalid"].as_u64()), (Some(4), Some(0), Some(0)));
        assert_eq!(res["hashes_total"], 4000, "pool difficulty 1000 x 4 shares");
        for key in ["expired", "avg_time", "latency", "hashes_donate"] {
            assert_u64(&res[key], key);
        }
        let best = res["best"].as_array().unwrap();
        assert_eq!(best.len(), 10);
        assert_eq!(best[0], 5000, "the best share reached difficulty 5000");
    }
}

#[test]
fn workers_and_miners_list_both_rigs() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(api_config(&pool));
    let _miners = two_miners(&proxy);
    let w = http_get(api(&proxy), "/1/workers", "").json();
    assert_eq!(w["mode"], "rig_id");
    assert_eq!(w["hashrate"]["total"].as_array().unwrap().len(), 6);
    let rows = w["workers"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let rig1 = rows.iter().find(|r| r[0] == "rig1").expect("rig1 listed");
    assert_eq!(rig1.as_array().unwrap().len(), 15, "xmrig-proxy's 13 columns, then the pool the worker mines to and its flags");
    assert_eq!(rig1[14], "");
    assert_eq!(rig1[13], pool.url());
    assert_eq!(
        (rig1[1].as_str(), rig1[2].as_u64(), rig1[3].as_u64(), rig1[4].as_u64(), rig1[5].as_u64()),
        (Some("127.0.0.1"), Some(1), Some(3), Some(0), Some(0))
    );
    assert_eq!(rig1[6], 3000);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let last = assert_u64(&rig1[7], "last share");
    assert!(last <= now_ms && now_ms - last < 60_000, "last share time is in ms: {last}");
    assert!(rig1.as_array().unwrap()[8..13].iter().all(Value::is_number));

    let m = http_get(api(&proxy), "/1/miners", "").json();
    let format =
        serde_json::json!(["id", "ip", "tx", "rx", "state", "diff", "user", "password", "rig_id", "agent", "pool", "group", "alone"]);
    assert_eq!(m["format"], format);
    let rows = m["miners"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_u64(&row[0], "id");
        assert_eq!(row[1], "127.0.0.1");
        assert!(assert_u64(&row[2], "tx") > 0 && assert_u64(&row[3], "rx") > 0);
        assert_eq!(row[4], 2, "state Ready");
        assert_eq!(row[5], 1000);
        assert_eq!(row[6], "WALLET");
        assert_eq!(row[7], "********", "the password is never shown");
        assert!(row[8] == "rig1" || row[8] == "rig2");
        assert_eq!(row[9], "XMRig/6.26.0");
        assert_eq!((row[10].as_str(), row[11].as_str()), (Some(pool.url().as_str()), Some("default")));
    }
    assert!(!m.to_string().contains("secretpw"));
}

#[test]
fn a_token_is_required_when_set() {
    let pool = MockPool::start(1000);
    let mut cfg = api_config(&pool);
    cfg.http.access_token = Some("t0ken".into());
    let proxy = RunningProxy::start(cfg);
    let none = http_get(api(&proxy), "/1/summary", "");
    assert_eq!(none.status, 401);
    assert_eq!(none.json(), serde_json::json!({"status": 401, "error": "UNAUTHORIZED"}));
    assert_eq!(http_get(api(&proxy), "/metrics", "Authorization: Bearer wrong\r\n").status, 401);
    assert_eq!(http_get(api(&proxy), "/1/summary", "Authorization: t0ken\r\n").status, 401);
    assert_eq!(http_get(api(&proxy), "/1/summary", "Authorization: Bearer t0ken\r\n").status, 200);
    assert_eq!(http_get(api(&proxy), "/metrics", "Authorization: Bearer t0ken\r\n").status, 200);
}

#[test]
fn restricted_mode_allows_only_get_and_errors_have_json_bodies() {
    let pool = MockPool::start(1000);
    let mut cfg = api_config(&pool);
    cfg.http.restricted = true;
    let proxy = RunningProxy::start(cfg);
    let a = api(&proxy);
    let post = http_raw(a, b"POST /1/summary HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    assert_eq!((post.status, post.json()["error"].as_str()), (403, Some("FORBIDDEN")));
    let missing = http_get(a, "/nope", "");
    assert_eq!((missing.status, missing.json()["error"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!(http_raw(a, b"BLAH\x00\x01\r\n\r\n").status, 400);
    let huge = format!("GET /1/summary HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(10_000));
    assert_eq!(http_raw(a, huge.as_bytes()).status, 413);
    let body = format!("POST /1/summary HTTP/1.1\r\nContent-Length: {}\r\n\r\n", 1 << 20);
    assert_eq!(http_raw(a, body.as_bytes()).status, 413);

    // restricted: false without any token still never allows a write.
    let mut open = api_config(&pool);
    open.http.restricted = false;
    let proxy = RunningProxy::start(open);
    let post = http_raw(api(&proxy), b"POST /1/summary HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(post.status, 403);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(api_config(&pool));
    let mut s = std::net::TcpStream::connect(api(&proxy)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    // Two pipelined requests, then a third after the answers.
    s.write_all(b"GET /1/summary HTTP/1.1\r\n\r\nGET /1/workers HTTP/1.1\r\n\r\n").unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 65536];
    while got.matches("HTTP/1.1 200").count() < 2 || !got.ends_with('}') {
        let n = std::io::Read::read(&mut s, &mut buf).expect("responses");
        assert!(n > 0, "closed early: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.contains("Connection: keep-alive"));
    s.write_all(b"GET /1/miners HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut rest);
    assert!(String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn a_stuck_http_client_does_not_delay_miners() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(api_config(&pool));
    let mut stuck = std::net::TcpStream::connect(api(&proxy)).unwrap();
    stuck.write_all(b"GET /1/sum").unwrap();
    let mut m = proxy.miner();
    m.login();
    assert!(m.submit(1, 5000)["error"].is_null());
    // A client sending requests but never reading its replies is dropped at the output bound.
    let hog = std::net::TcpStream::connect(api(&proxy)).unwrap();
    hog.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut hog_w = &hog;
    for _ in 0..2000 {
        if hog_w.write_all(b"GET /1/summary HTTP/1.1\r\n\r\n").is_err() {
            break;
        }
    }
    let id = m.send("keepalived", serde_json::json!({"id": m.session.clone()}));
    assert_eq!(m.recv()["id"], id);
}

#[test]
fn metrics_pass_a_real_prometheus_parser() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(api_config(&pool));
    let _miners = two_miners(&proxy);
    let r = http_get(api(&proxy), "/metrics", "");
    assert_eq!(r.status, 200);
    assert!(r.head.contains("Content-Type: text/plain; version=0.0.4"));
    let mut child = std::process::Command::new("python3")
        .arg("scripts/check_metrics.py")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (CI installs python3 and prometheus_client)");
    child.stdin.take().unwrap().write_all(r.body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "parser refused the metrics: {}\n{}", String::from_utf8_lossy(&out.stderr), r.body);
    let samples: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let find = |name: &str, label: Option<(&str, &str)>| -> f64 {
        samples
            .iter()
            // The parser names counter samples `<family>_total` whatever the exposition said.
            .find(|s| (s["name"] == name || s["name"] == format!("{name}_total")) && label.is_none_or(|(k, v)| s["labels"][k] == v))
            .unwrap_or_else(|| panic!("{name} {label:?} missing"))["value"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(find("proxy_miners", None), 2.0);
    assert_eq!(find("proxy_shares_accepted_total", None), 4.0);
    assert_eq!(find("proxy_hashes_total", None), 4000.0);
    assert_eq!(find("proxy_upstreams", Some(("state", "active"))), 1.0);
    assert_eq!(find("proxy_pool_up", Some(("pool", &pool.url()))), 1.0);
    assert_eq!(find("proxy_worker_up", Some(("worker", "rig1"))), 1.0);
    assert_eq!(find("proxy_worker_accepted", Some(("worker", "rig1"))), 3.0);
    assert_eq!(find("proxy_worker_sended", Some(("worker", "rig2"))), 1.0);
    assert_eq!(find("proxy_worker_one_accepted", Some(("worker", "rig1"))), 3000.0);
    assert_eq!(find("proxy_worker_difficulty", Some(("worker", "rig1"))), 1000.0);
    assert!(find("proxy_worker_speed", Some(("worker", "rig1"))) >= 0.0);
    assert!(find("proxy_hashrate", Some(("window", "60s"))) >= 0.0);
    assert_eq!(find("proxy_upstream_miners", Some(("upstream", "0"))), 2.0);
    let types: Vec<(&str, &str)> = samples.iter().map(|s| (s["family"].as_str().unwrap(), s["type"].as_str().unwrap())).collect();
    assert!(types.contains(&("proxy_worker_accepted", "counter")) && types.contains(&("proxy_worker_speed", "gauge")));
    // The seed's metric names are exposed as they are.
    for name in ["proxy_worker_sended", "proxy_worker_one_sended", "proxy_worker_one_accepted", "proxy_worker_difficulty", "proxy_pool_up"]
    {
        assert!(r.body.contains(&format!("\n{name}{{")), "{name} missing");
    }
}

#[test]
fn access_and_share_logs_write_one_line_per_event() {
    let dir = std::env::temp_dir().join(format!("sp-api-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (access, shares) = (dir.join("access.log"), dir.join("shares.log"));
    let pool = MockPool::start(1000);
    let mut cfg = api_config(&pool);
    cfg.access_log_file = Some(access.to_str().unwrap().into());
    cfg.share_log_file = Some(shares.to_str().unwrap().into());
    let mut proxy = RunningProxy::start(cfg);
    let mut m = proxy.miner();
    m.login();
    assert!(m.submit(1, 5000)["error"].is_null());
    assert_eq!(error_of(&m.submit(1, 5000)), "Duplicate share");
    drop(m);
    proxy.stop();
    let access = std::fs::read_to_string(&access).unwrap();
    let shares = std::fs::read_to_string(&shares).unwrap();
    let ts = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z ";
    let lines: Vec<&str> = access.lines().collect();
    assert_eq!(lines.len(), 2, "{access}");
    assert!(
        matches_ts(lines[0], ts) && lines[0].contains(" CONNECT 127.0.0.1:") && lines[0].ends_with(" WALLET test-miner/1.0"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains(" CLOSE 127.0.0.1:") && lines[1].contains(" WALLET rx=") && lines[1].contains(" tx="), "{}", lines[1]);
    let lines: Vec<&str> = shares.lines().collect();
    assert_eq!(lines.len(), 2, "{shares}");
    assert!(
        lines[0].contains(" ACCEPT WALLET 127.0.0.1:") && lines[0].contains(" diff=1000 latency=") && lines[0].ends_with("ms"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains(" REJECT WALLET 127.0.0.1:") && lines[1].ends_with(" reason=\"Duplicate share\""), "{}", lines[1]);
    assert!(!access.contains("x\"") && !shares.contains("pass"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A crude check for the `YYYY-MM-DDTHH:MM:SSZ ` prefix (no regex crate in tests).
fn matches_ts(line: &str, _pattern: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 21 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':' && b[19] == b'Z' && b[20] == b' '
}

#[test]
fn a_pipeline_longer_than_the_request_buffer_is_served_to_the_end() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(api_config(&pool));
    let mut s = std::net::TcpStream::connect(api(&proxy)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let one = "GET /1/workers HTTP/1.1\r\n\r\n";
    let n = 3000; // ~81 KB of requests, more than the 72 KiB the proxy buffers per client
    let mut all = one.repeat(n - 1);
    all.push_str("GET /1/workers HTTP/1.1\r\nConnection: close\r\n\r\n");
    let writer = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || w.write_all(all.as_bytes()))
    };
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut got);
    writer.join().unwrap().unwrap();
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), n, "every pipelined request answered");
}
