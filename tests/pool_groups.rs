//! Pool groups: ports that mine to their own pools, weighted splits between pools of one
//! group, a weighted pool that dies and comes back (miners moved, never disconnected),
//! shares in flight across a move, hot reload of one group, and simple mode with groups.

mod support;

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use stratum_proxy::config::{self, Bind, Config, Mode, PoolConfig};
use support::*;

fn grouped(url: &str, group: &str, weight: Option<u32>) -> PoolConfig {
    PoolConfig { group: group.into(), weight, ..pool(url) }
}

/// A config with one loopback stratum bind per group name, and the API on.
fn groups_config(mode: Mode, pools: Vec<PoolConfig>, bind_groups: &[&str]) -> Config {
    let mut cfg = config(mode, &[]);
    cfg.pools = pools;
    let template = cfg.binds[0].clone();
    cfg.binds = bind_groups.iter().map(|g| Bind { group: g.to_string(), ..template.clone() }).collect();
    cfg.http.enabled = true;
    cfg.http.port = 0;
    cfg
}

fn login_at(addr: SocketAddr, rig: &str) -> TestMiner {
    let mut m = TestMiner::connect(addr);
    let id = m.send("login", json!({"login": "WALLET", "pass": "x", "agent": "test-miner/1.0", "rigid": rig, "algo": ["rx/0"]}));
    let reply = m.recv();
    assert_eq!(reply["id"], id);
    assert!(reply["error"].is_null(), "login failed: {reply}");
    m.session = reply["result"]["id"].as_str().unwrap().to_string();
    m.job = reply["result"]["job"].clone();
    m
}

fn summary(proxy: &RunningProxy) -> Value {
    http_get(proxy.http.expect("API on"), "/1/summary", "").json()
}

/// Count of miners whose current job came from `pool`.
fn on_pool(miners: &[TestMiner], pool: &MockPool) -> usize {
    miners.iter().filter(|m| pool.owns_job(&m.job_id())).count()
}

#[test]
fn two_ports_on_two_groups_never_share_an_upstream_or_a_pool() {
    let a = MockPool::start(1000);
    let b = MockPool::start(2000);
    let pools = vec![grouped(&a.url(), "default", None), grouped(&b.url(), "farm-b", None)];
    let proxy = RunningProxy::start(groups_config(Mode::NiceHash, pools, &["default", "farm-b"]));
    let mut on_a: Vec<TestMiner> = (0..3).map(|i| login_at(proxy.addrs[0], &format!("a{i}"))).collect();
    let mut on_b: Vec<TestMiner> = (0..2).map(|i| login_at(proxy.addrs[1], &format!("b{i}"))).collect();
    assert_eq!(on_pool(&on_a, &a), 3);
    assert_eq!(on_pool(&on_b, &b), 2);
    for (i, m) in on_a.iter_mut().chain(on_b.iter_mut()).enumerate() {
        assert!(m.submit(i as u16, 5000)["error"].is_null());
    }
    assert_eq!((a.logins(), b.logins()), (1, 1), "one upstream per group");
    assert_eq!((a.submits().len(), b.submits().len()), (3, 2), "each port's shares reach its own pool only");
    let s = summary(&proxy);
    let groups = &s["groups"];
    assert_eq!((groups["default"]["miners"].as_u64(), groups["default"]["upstreams"].as_u64()), (Some(3), Some(1)), "{groups}");
    assert_eq!((groups["farm-b"]["miners"].as_u64(), groups["farm-b"]["upstreams"].as_u64()), (Some(2), Some(1)), "{groups}");
    assert_eq!(groups["farm-b"]["pools"][0]["url"], b.url());
    assert_eq!(groups["farm-b"]["pools"][0]["up"], true);
    // /1/workers names the pool each worker mines to.
    let w = http_get(proxy.http.unwrap(), "/1/workers", "").json();
    let row = w["workers"].as_array().unwrap().iter().find(|r| r[0] == "b1").cloned().unwrap();
    assert_eq!(row[13], b.url());
}

#[test]
fn a_seventy_thirty_group_splits_twenty_rigs_by_weight() {
    let a = MockPool::start(1000);
    let b = MockPool::start(1000);
    let pools = vec![grouped(&a.url(), "default", Some(70)), grouped(&b.url(), "default", Some(30))];
    let proxy = RunningProxy::start(groups_config(Mode::NiceHash, pools, &["default"]));
    let mut miners: Vec<TestMiner> = (0..20).map(|i| login_at(proxy.addr, &format!("rig{i}"))).collect();
    assert_eq!((on_pool(&miners, &a), on_pool(&miners, &b)), (14, 6), "placed by count in proportion to the weights");
    for round in 0..10u16 {
        for m in &mut miners {
            assert!(m.submit(round, 2000)["error"].is_null());
        }
    }
    let (sa, sb) = (a.submits().len() as f64, b.submits().len() as f64);
    let part = sa / (sa + sb);
    assert!((part - 0.7).abs() <= 0.10, "pool A mined {part:.3} of the shares");
    let s = summary(&proxy);
    let pools = s["groups"]["default"]["pools"].as_array().unwrap().clone();
    assert_eq!((pools[0]["weight"].as_u64(), pools[1]["weight"].as_u64()), (Some(70), Some(30)));
    assert_eq!((pools[0]["asked"].as_f64(), pools[1]["asked"].as_f64()), (Some(0.7), Some(0.3)));
    let measured = pools[0]["measured"].as_f64().unwrap();
    assert!((measured - 0.7).abs() <= 0.10, "measured part {measured}");
    let metrics = http_get(proxy.http.unwrap(), "/metrics", "").body;
    assert!(metrics.contains(&format!("proxy_pool_share_ratio{{group=\"default\",pool=\"{}\"}}", a.url())), "{metrics}");
    assert!(metrics.contains("proxy_group_miners{group=\"default\"} 20"));
}

#[test]
fn a_weighted_pool_that_dies_gives_its_miners_to_the_others_and_gets_them_back() {
    let mut a = MockPool::start(1000);
    let a_addr = a.addr;
    let b = MockPool::start(1000);
    let pools = vec![grouped(&a.url(), "default", Some(70)), grouped(&b.url(), "default", Some(30))];
    let proxy = RunningProxy::start(groups_config(Mode::NiceHash, pools, &["default"]));
    let mut miners: Vec<TestMiner> = (0..10).map(|i| login_at(proxy.addr, &format!("rig{i}"))).collect();
    assert_eq!(on_pool(&miners, &a), 7);
    let a_jobs: Vec<String> = miners.iter().filter(|m| a.owns_job(&m.job_id())).map(TestMiner::job_id).collect();

    a.kill();
    let t = Instant::now();
    for m in miners.iter_mut().filter(|m| !b.owns_job(&m.job_id())) {
        let job = m.next_job();
        assert!(b.owns_job(job["job_id"].as_str().unwrap()), "moved to the live pool: {job}");
    }
    assert!(t.elapsed() < Duration::from_secs(5), "the dead pool's part moved in {:?}", t.elapsed());
    assert_eq!(on_pool(&miners, &b), 10);
    // A share for the dead pool's job is answered with a clear error, not lost silently.
    let moved = miners.iter_mut().find(|m| m.job_id() != a_jobs[0]).unwrap();
    let nonce = format!("0a0000{}", moved.fixed_byte());
    let reply = moved.submit_raw(&a_jobs[0], &nonce, &result_for(5000));
    assert_eq!(error_of(&reply), "Pool connection lost, share not sent");
    for (i, m) in miners.iter_mut().enumerate() {
        assert!(m.submit(100 + i as u16, 5000)["error"].is_null(), "everyone mines on the live pool");
    }

    // The pool comes back: the proxy (retrying every retry-pause) logs in again, and at the
    // next jobs its part moves back.
    let a = MockPool::start_on(a_addr, 1000);
    assert!(wait_until(Duration::from_secs(10), || a.logins() >= 1), "the dead pool is retried");
    let end = Instant::now() + Duration::from_secs(20);
    while on_pool(&miners, &a) < 6 && Instant::now() < end {
        b.push_job();
        for m in miners.iter_mut() {
            m.next_job();
        }
    }
    let back = on_pool(&miners, &a);
    assert!((6..=7).contains(&back), "{back} of 10 back on the 70 % pool");
    // Nobody was disconnected: every miner still gets answers.
    for (i, m) in miners.iter_mut().enumerate() {
        assert!(m.submit(200 + i as u16, 5000)["error"].is_null());
    }
}

#[test]
fn a_moved_miners_share_for_its_old_job_reaches_the_old_pool() {
    // Lane B alone takes the first miners while A is unreachable; when A comes up, miners
    // move at B's next job and their B shares are still honoured.
    let a_addr = dead_port();
    let b = MockPool::start(1000);
    let pools = vec![grouped(&a_addr.to_string(), "default", Some(50)), grouped(&b.url(), "default", Some(50))];
    let proxy = RunningProxy::start(groups_config(Mode::NiceHash, pools, &["default"]));
    let mut miners: Vec<TestMiner> = (0..4).map(|i| login_at(proxy.addr, &format!("rig{i}"))).collect();
    assert_eq!(on_pool(&miners, &b), 4, "the unreachable pool's lane gives its miners to the other");
    let a = MockPool::start_on(a_addr, 1000);
    assert!(wait_until(Duration::from_secs(10), || a.logins() >= 1));
    let end = Instant::now() + Duration::from_secs(20);
    let mut moved = None;
    while moved.is_none() && Instant::now() < end {
        b.push_job();
        for (i, m) in miners.iter_mut().enumerate() {
            let (old_job, old_byte) = (m.job_id(), m.fixed_byte());
            m.next_job();
            if a.owns_job(&m.job_id()) && moved.is_none() {
                moved = Some((i, old_job, old_byte));
            }
        }
    }
    let (i, old_job, old_byte) = moved.expect("a miner moved to the pool that came back");
    let before = b.submits().len();
    let reply = miners[i].submit_raw(&old_job, &format!("0c0000{old_byte}"), &result_for(5000));
    assert!(reply["error"].is_null(), "{reply}");
    assert_eq!(b.submits().len(), before + 1, "the share went to the pool whose job it was");
    assert!(b.submits().last().unwrap()["job_id"] == old_job);
}

#[test]
fn reloading_one_groups_pools_leaves_the_other_group_alone() {
    let dir = std::env::temp_dir().join(format!("sp-groups-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    let a = MockPool::start(1000);
    let b = MockPool::start(1000);
    let body = |b_user: &str| {
        json!({"bind": [{"host": "127.0.0.1", "port": 0}, {"host": "127.0.0.1", "port": 0, "pool-group": "b"}], "watch": true,
            "retries": 1, "retry-pause": 1,
            "pools": [{"url": a.url(), "user": "A"}, {"url": b.url(), "user": b_user, "group": "b"}]})
    };
    let write = |v: Value| {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, v.to_string()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    write(body("B1"));
    let proxy = RunningProxy::start_with_file(config::load_file(&path).unwrap(), Some(path.clone()));
    let mut ma = login_at(proxy.addrs[0], "ra");
    let mut mb = login_at(proxy.addrs[1], "rb");
    write(body("B2"));
    let job = mb.next_job();
    assert!(b.owns_job(job["job_id"].as_str().unwrap()));
    assert_eq!(b.state.lock().unwrap().logins.last().unwrap()["login"], "B2", "group b reconnected with its new user");
    assert!(ma.recv_within(Duration::from_millis(1500)).is_none(), "the other group's miners saw nothing");
    assert_eq!((a.logins(), a.state.lock().unwrap().closed_connections()), (1, 0), "and its upstream was not touched");
    assert!(ma.submit(1, 5000)["error"].is_null());
    // A reload that leaves a port's group without a pool is refused whole.
    write(json!({"bind": [{"host": "127.0.0.1", "port": 0}, {"host": "127.0.0.1", "port": 0, "pool-group": "b"}], "watch": true,
        "pools": [{"url": a.url(), "user": "A"}]}));
    assert!(mb.recv_within(Duration::from_millis(1500)).is_none());
    assert!(mb.submit(2, 5000)["error"].is_null(), "group b still mines");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn simple_mode_gives_each_miner_its_own_upstream_to_its_groups_pools() {
    let a = MockPool::start(1000);
    let b = MockPool::start(1000);
    let c = MockPool::start(1000);
    let pools = vec![grouped(&a.url(), "default", Some(2)), grouped(&b.url(), "default", Some(1)), grouped(&c.url(), "other", None)];
    let proxy = RunningProxy::start(groups_config(Mode::Simple, pools, &["default", "other"]));
    let miners: Vec<TestMiner> = (0..6).map(|i| login_at(proxy.addrs[0], &format!("r{i}"))).collect();
    let other = login_at(proxy.addrs[1], "o");
    assert_eq!((on_pool(&miners, &a), on_pool(&miners, &b)), (4, 2));
    assert_eq!((a.logins(), b.logins(), c.logins()), (4, 2, 1), "one pool connection per miner, to its group's pools");
    assert!(c.owns_job(&other.job_id()));
}

#[test]
fn hashrate_is_reported_per_algorithm_never_added_across_algorithms() {
    let a = MockPool::start(1000);
    let b = MockPool::start(4000);
    b.state.lock().unwrap().algo = "cn-pico".into();
    let pools = vec![grouped(&a.url(), "default", None), grouped(&b.url(), "pico", None)];
    let proxy = RunningProxy::start(groups_config(Mode::NiceHash, pools, &["default", "pico"]));
    let mut on_a = login_at(proxy.addrs[0], "a");
    let mut on_b = TestMiner::connect(proxy.addrs[1]);
    on_b.send("login", json!({"login": "WALLET", "pass": "x", "agent": "test-miner/1.0", "algo": ["rx/0", "cn-pico"]}));
    let reply = on_b.recv();
    assert!(reply["error"].is_null(), "{reply}");
    on_b.session = reply["result"]["id"].as_str().unwrap().to_string();
    on_b.job = reply["result"]["job"].clone();
    assert_eq!(on_b.job["algo"], "cn-pico");
    assert!(on_a.submit(1, 1000)["error"].is_null());
    assert!(on_b.submit(1, 4000)["error"].is_null());
    // Rates start once a second has passed since the first share.
    let mut algos = Value::Null;
    let khs = |algos: &Value, a: &str| algos[a][0].as_f64().unwrap_or(0.0);
    let both = wait_until(Duration::from_secs(5), || {
        algos = summary(&proxy)["hashrate"]["algos"].clone();
        khs(&algos, "rx/0") > 0.0 && khs(&algos, "cn-pico") > 0.0
    });
    assert!(both, "{algos}");
    let khs = |a: &str| khs(&algos, a);
    assert!(khs("cn-pico") > khs("rx/0"), "each algorithm has its own figure: {algos}");
    let m = http_get(proxy.http.unwrap(), "/metrics", "").body;
    assert!(m.contains("proxy_algo_hashrate{algo=\"cn-pico\",window=\"60s\"}"), "{m}");
    assert!(m.contains("proxy_algo_hashrate{algo=\"rx/0\",window=\"60s\"}"), "{m}");
}
