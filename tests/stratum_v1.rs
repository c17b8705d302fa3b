//! Stratum v1 through the proxy: subscribe / authorize / notify / submit, the extranonce
//! split seen from both ends, every reject reason, version rolling, both dialects on one
//! port, a pool changing its extranonce, failover, and bad input. End-to-end runs use the
//! `testpool` and `minersim` binaries, which hash and check real work.

mod support;

use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;
use stratum_proxy::config::{BindProtocol, Config, Mode, PoolConfig};
use support::v1::{MockV1Pool, V1Miner};
use support::*;

/// A pool entry for a v1 pool mining `algo`.
fn v1_pool(url: &str, algo: &str) -> PoolConfig {
    PoolConfig { algo: Some(algo.into()), ..pool(url) }
}

fn v1_config(pools: Vec<PoolConfig>) -> Config {
    let mut cfg = config(Mode::NiceHash, &[]);
    cfg.pools = pools;
    cfg.http.enabled = true;
    cfg.http.port = 0;
    cfg
}

fn error_code(v: &Value) -> i64 {
    v["error"][0].as_i64().unwrap_or(0)
}

#[test]
fn a_v1_miner_subscribes_authorizes_and_gets_a_prefix_of_the_pools_extranonce() {
    let pool = MockV1Pool::start("f0000001", 8, 0.0001);
    let proxy = RunningProxy::start(v1_config(vec![v1_pool(&pool.url(), "sha256d")]));
    let mut m = V1Miner::connect(proxy.addr);
    let r = m.subscribe();
    assert!(r["error"].is_null(), "{r}");
    assert_eq!(m.extranonce1.len(), 2, "the miner's extranonce1 is its 2-byte prefix: {r}");
    assert_eq!(m.extranonce2_size, 4, "and it rolls 4 bytes of the pool's 8");
    assert_eq!(m.authorize("rig1")["result"], true);
    let job = m.next("mining.notify").expect("a job after authorize");
    assert!(m.seen.iter().any(|v| v["method"] == "mining.set_difficulty"), "difficulty before the first job");
    assert_eq!(m.difficulty, 0.0001);
    let coinb1 = job["params"][2].as_str().unwrap();
    assert!(coinb1.ends_with("f00000010000"), "the pool's extranonce1 and 2 filler bytes close coinb1: {coinb1}");
    assert_eq!(job["params"][8], true, "a miner's first job is clean");
    assert_eq!(pool.authorizes(), 1);
    assert_eq!(pool.state.lock().unwrap().authorizes[0][0], "POOLWALLET", "the proxy authorizes with the pool's user");

    // A real share goes to the pool as filler || prefix || extranonce2.
    let share = m.find_share(7);
    assert_eq!(m.submit(&share)["result"], true);
    let sent = pool.submits();
    assert_eq!(sent.len(), 1);
    let e2 = sent[0][2].as_str().unwrap();
    let prefix: String = m.extranonce1.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(e2, format!("0000{prefix}{}", share.1), "filler, prefix, the miner's extranonce2");
    assert_eq!(
        (sent[0][0].as_str(), sent[0][3].as_str(), sent[0][4].as_str()),
        (Some("POOLWALLET"), Some(share.2.as_str()), Some(share.3.as_str()))
    );
}

#[test]
fn two_v1_rigs_share_one_pool_session_with_different_prefixes() {
    let pool = MockV1Pool::start("aa", 8, 0.0001);
    let proxy = RunningProxy::start(v1_config(vec![v1_pool(&pool.url(), "sha256d")]));
    let mut a = V1Miner::connect(proxy.addr);
    let mut b = V1Miner::connect(proxy.addr);
    a.start("a");
    b.start("b");
    assert_ne!(a.extranonce1, b.extranonce1, "each rig its own part of the pool's extranonce2");
    assert_eq!(pool.authorizes(), 1, "one pool session for both");
    for m in [&mut a, &mut b] {
        let s = m.find_share(1);
        assert_eq!(m.submit(&s)["result"], true);
    }
    let sent = pool.submits();
    assert_ne!(sent[0][2], sent[1][2], "the same miner extranonce2 from two rigs reaches the pool as two different ones");
}

#[test]
fn every_reject_reason_has_its_code_and_nothing_bad_reaches_the_pool() {
    let pool = MockV1Pool::start("aa", 8, 0.0001);
    let proxy = RunningProxy::start(v1_config(vec![v1_pool(&pool.url(), "sha256d")]));
    let mut m = V1Miner::connect(proxy.addr);
    // Before subscribe: not subscribed; before authorize: unauthorized.
    let id = m.send("mining.authorize", json!(["x", "x"]));
    assert_eq!(error_code(&m.reply(id)), 25);
    m.subscribe();
    let id = m.send("mining.submit", json!(["w", "j", "00000000", "6553f13c", "00000000"]));
    assert_eq!(error_code(&m.reply(id)), 24);
    assert_eq!(m.authorize("rig")["result"], true);
    m.next("mining.notify");
    let good = m.find_share(3);
    let (job, e2, ntime, nonce) = good.clone();
    let submit = |m: &mut V1Miner, p: Value| {
        let id = m.send("mining.submit", p);
        m.reply(id)
    };
    let bad = [
        (json!(["w", "no-such-job", e2, ntime, nonce]), 21, "Job not found"),
        (json!(["w", job, "00", ntime, nonce]), 20, "Incorrect size of extranonce2"),
        (json!(["w", job, e2, "xyz", nonce]), 20, "Invalid ntime"),
        (json!(["w", job, e2, "6553f13b", nonce]), 20, "Ntime out of range"),
        (json!(["w", job, e2, ntime, "nothex!!"]), 20, "Invalid nonce"),
        (json!(["w", job, e2, ntime, nonce, "00000001"]), 20, "Version bits outside the mask"),
    ];
    for (params, code, msg) in bad {
        let r = submit(&mut m, params.clone());
        assert_eq!((error_code(&r), r["error"][1].as_str()), (code, Some(msg)), "{params}: {r}");
    }
    // A nonce that does not reach the difficulty (the next one after the good share's).
    let mut low = None;
    for n in 0u32..1000 {
        let cand = format!("{n:08x}");
        let r = submit(&mut m, json!(["w", job, "ffffffff", ntime, cand]));
        if error_code(&r) == 23 {
            low = Some(r);
            break;
        }
    }
    assert_eq!(low.expect("a low-difficulty nonce")["error"][1], "Low difficulty share");
    let before = pool.submits().len();
    assert_eq!(m.submit(&good)["result"], true);
    assert_eq!(error_code(&m.submit(&good)), 22, "the same share twice is a duplicate");
    assert_eq!(pool.submits().len(), before + 1, "only the good share reached the pool");
    let id = m.send("mining.unknown", json!([]));
    assert_eq!(error_code(&m.reply(id)), 20);
}

#[test]
fn a_difficulty_change_comes_with_a_clean_job_and_lower_shares_are_answered_here() {
    let pool = MockV1Pool::start("aa", 8, 0.01);
    let proxy = RunningProxy::start(v1_config(vec![v1_pool(&pool.url(), "sha256d")]));
    let mut m = V1Miner::connect(proxy.addr);
    m.start("rig");
    assert_eq!(m.difficulty, 0.01);
    // The pool lowers its difficulty: the miner's changes just before a clean job.
    pool.set_difficulty(0.0004);
    pool.notify(false);
    let job = m.next("mining.notify").unwrap();
    assert_eq!(m.difficulty, 0.0004);
    assert_eq!(job["params"][8], true, "a difficulty change comes with a clean job");
    // The miner suggests a lower difficulty: it gets it with the next job, and shares
    // between it and the pool's are answered true here and never forwarded.
    let id = m.send("mining.suggest_difficulty", json!([0.00001]));
    assert_eq!(m.reply(id)["result"], true);
    pool.notify(false);
    m.next("mining.notify");
    assert_eq!(m.difficulty, 0.00001);
    let mut local = 0;
    for c in 0..40 {
        let before = pool.submits().len();
        let s = m.find_share(c);
        assert_eq!(m.submit(&s)["result"], true);
        if pool.submits().len() == before {
            local += 1;
        }
        if local >= 3 {
            break;
        }
    }
    assert!(local >= 3, "shares below the pool's difficulty are answered here");
    let s = http_get(proxy.http.unwrap(), "/1/summary", "").json();
    assert!(s["results"]["accepted"].as_u64().unwrap() >= 3, "and counted: {}", s["results"]);
}

#[test]
fn version_rolling_is_granted_within_the_pools_mask_and_rolled_shares_check() {
    let pool = MockV1Pool::start("aa", 8, 0.0001);
    let proxy = RunningProxy::start(v1_config(vec![v1_pool(&pool.url(), "sha256d")]));
    let mut m = V1Miner::connect(proxy.addr);
    let id =
        m.send("mining.configure", json!([["version-rolling"], {"version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2}]));
    let r = m.reply(id);
    assert_eq!(r["result"]["version-rolling"], true, "{r}");
    assert_eq!(r["result"]["version-rolling.mask"], "1fffe000", "within the pool's bits");
    m.start("rig");
    assert!(wait_until(WAIT, || pool.state.lock().unwrap().configures >= 1), "the proxy asked the pool for version rolling");
    let (job, e2, ntime, _) = m.find_share(1);
    // A share with rolled bits: found by trying nonces with version bits 0x00002000.
    let params = m.job.clone().unwrap();
    let j = stratum_proxy::stratum::v1::job::V1Job::from_params(&params).unwrap();
    let e2b = stratum_proxy::stratum::v1::job::hex_vec(&e2).unwrap();
    let cb = stratum_proxy::stratum::v1::header::coinbase_hash(&[&j.coinb1, &m.extranonce1, &e2b, &j.coinb2]);
    let root = stratum_proxy::stratum::v1::header::merkle_root(cb, &j.branches);
    let version = (j.version & !0x1fff_e000) | 0x2000;
    let pow = stratum_proxy::stratum::v1::header::Pow::Sha256d;
    let nonce = (0u32..)
        .find(|n| pow.difficulty(&pow.hash(&stratum_proxy::stratum::v1::header::header(&j, version, &root, j.ntime, *n))) >= m.difficulty)
        .unwrap();
    let id = m.send("mining.submit", json!(["w", job, e2, ntime, format!("{nonce:08x}"), "00002000"]));
    assert_eq!(m.reply(id)["result"], true, "the rolled header is rebuilt and checked");
    assert_eq!(pool.submits().last().unwrap()[5], "00002000", "the bits go on to the pool");
}

#[test]
fn a_pool_that_changes_its_extranonce_keeps_its_miners() {
    let pool = MockV1Pool::start("aa", 8, 0.0001);
    let proxy = RunningProxy::start(v1_config(vec![v1_pool(&pool.url(), "sha256d")]));
    let mut follows = V1Miner::connect(proxy.addr);
    follows.subscribe();
    let id = follows.send("mining.extranonce.subscribe", json!([]));
    assert_eq!(follows.reply(id)["result"], true);
    assert_eq!(follows.authorize("f")["result"], true);
    follows.next("mining.notify");
    let mut stock = V1Miner::connect(proxy.addr);
    stock.start("s");
    // Same size: nothing to tell the miners; the new extranonce1 closes coinb1 from now on.
    pool.set_extranonce("bbbb", 8);
    pool.notify(true);
    let job = follows.next("mining.notify").unwrap();
    assert!(job["params"][2].as_str().unwrap().ends_with("bbbb0000"), "{job}");
    assert!(!follows.seen.iter().any(|v| v["method"] == "mining.set_extranonce"));
    let s = follows.find_share(2);
    assert_eq!(follows.submit(&s)["result"], true);
    // A smaller extranonce2: the split changes. The miner that takes set_extranonce gets a
    // one-byte prefix and three bytes to roll; stock cpuminer is asked to reconnect.
    pool.set_extranonce("cc", 4);
    let set = follows.next("mining.set_extranonce").expect("the new extranonce");
    assert_eq!((follows.extranonce1.len(), follows.extranonce2_size), (1, 3), "{set}");
    assert!(stock.next("client.reconnect").is_some(), "the stock miner is asked to come back");
    assert!(stock.closed_within(Duration::from_secs(3)));
    pool.notify(true);
    follows.next("mining.notify");
    let s = follows.find_share(5);
    assert_eq!(follows.submit(&s)["result"], true);
    assert_eq!(pool.submits().last().unwrap()[2].as_str().unwrap().len(), 8, "1 prefix byte + 3 of the miner's");
}

#[test]
fn failover_to_another_v1_pool_keeps_the_miners_prefix() {
    let mut primary = MockV1Pool::start("aa", 8, 0.0001);
    let fallback = MockV1Pool::start("bbbbbbbb", 8, 0.0001);
    let proxy = RunningProxy::start(v1_config(vec![v1_pool(&primary.url(), "sha256d"), v1_pool(&fallback.url(), "sha256d")]));
    let mut m = V1Miner::connect(proxy.addr);
    m.start("rig");
    let prefix = m.extranonce1.clone();
    primary.kill();
    let job = m.next("mining.notify").expect("the fallback's job");
    assert!(job["params"][2].as_str().unwrap().ends_with("bbbbbbbb0000"), "{job}");
    assert_eq!(job["params"][8], true);
    assert_eq!(m.extranonce1, prefix, "no new extranonce needed");
    let s = m.find_share(4);
    assert_eq!(m.submit(&s)["result"], true);
    assert_eq!(fallback.submits().len(), 1);
}

#[test]
fn a_share_during_a_pool_outage_is_not_sent_and_counted_as_rejected_not_invalid() {
    let mut pool = MockV1Pool::start("aa", 8, 0.0001);
    let proxy = RunningProxy::start(v1_config(vec![v1_pool(&pool.url(), "sha256d")]));
    let mut m = V1Miner::connect(proxy.addr);
    m.start("rig");
    let share = m.find_share(1);
    pool.kill();
    // Until the proxy sees the pool gone the share may still go out; then it is not sent.
    let lost = wait_until(WAIT, || {
        let r = m.submit(&share);
        r["error"][1] == "Pool connection lost, share not sent" && error_code(&r) == 20
    });
    assert!(lost, "the rig hears the pool is gone");
    let results = &http_get(proxy.http.unwrap(), "/1/summary", "").json()["results"];
    assert_eq!(results["invalid"], 0, "not the rig's fault: {results}");
    assert!(results["rejected"].as_u64() >= Some(1), "{results}");
}

#[test]
fn both_dialects_on_one_port_each_to_its_own_pool_and_pinned_ports() {
    let store = std::env::temp_dir().join(format!("sp-v1-both-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&store);
    let v1 = MockV1Pool::start("aa", 8, 0.0001);
    let cn = MockPool::start(1000);
    let mut cfg = v1_config(vec![]);
    cfg.accounts.enabled = true;
    cfg.accounts.store = store.to_string_lossy().into();
    cfg.http.access_token = Some("t".into());
    cfg.http.restricted = false;
    let proxy = RunningProxy::start(cfg);
    let api = proxy.http.unwrap();
    let reg = |pool: &str, algo: &str| {
        let body = json!({"pool": pool, "user": "u", "password": "p", "algo": algo}).to_string();
        let r = http_send(api, "POST", "/api/v1/users", &body, "Authorization: Bearer t\r\n");
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["name"].as_str().unwrap().to_string()
    };
    let (a, b) = (reg(&v1.url(), "sha256d"), reg(&cn.url(), "rx/0"));
    let mut vm = V1Miner::connect(proxy.addr);
    vm.start(&format!("{a}.rig1"));
    let s = vm.find_share(1);
    assert_eq!(vm.submit(&s)["result"], true);
    let mut xm = proxy.miner();
    assert!(xm.login_as(&b)["error"].is_null());
    assert!(xm.submit(1, 5000)["error"].is_null());
    assert_eq!((v1.submits().len(), cn.submits().len()), (1, 1));
    // The v1 rig's worker series name its account, not the whole login, as `user`.
    let metrics = http_get(api, "/metrics", "Authorization: Bearer t\r\n").body;
    let labels = format!("worker=\"{a}.rig1\",user=\"{a}\",");
    assert!(metrics.lines().any(|l| l.starts_with("proxy_worker_accepted{") && l.contains(&labels)), "{metrics}");
    // A v1 miner naming a CryptoNote account gets a clear refusal.
    let mut wrong = V1Miner::connect(proxy.addr);
    wrong.subscribe();
    let r = wrong.authorize(&b);
    assert!(r["error"][1].as_str().unwrap().contains("stratum v1"), "{r}");
    std::fs::remove_file(&store).ok();

    // A port pinned to CryptoNote closes a v1 miner; garbage as a first line is closed too.
    let mut cfg = config(Mode::NiceHash, &[cn.url()]);
    cfg.binds[0].protocol = BindProtocol::CryptoNote;
    let pinned = RunningProxy::start(cfg);
    let mut v = V1Miner::connect(pinned.addr);
    v.send("mining.subscribe", json!([]));
    assert!(v.closed_within(Duration::from_secs(3)));
    let mut g = TestMiner::connect(pinned.addr);
    g.send_raw(b"{\"id\":1,\"method\":\"eth_submitLogin\"}\n").unwrap();
    assert!(g.closed_within(Duration::from_secs(3)));
}

#[test]
fn v1_garbage_floods_and_over_long_lines_close_only_that_miner() {
    let pool = MockV1Pool::start("aa", 8, 0.0001);
    let proxy = RunningProxy::start(v1_config(vec![v1_pool(&pool.url(), "sha256d")]));
    let mut good = V1Miner::connect(proxy.addr);
    good.start("good");
    let mut garbage = V1Miner::connect(proxy.addr);
    garbage.subscribe();
    garbage.send_raw(b"this is not json\n").unwrap();
    assert!(garbage.closed_within(Duration::from_secs(3)));
    let mut long = V1Miner::connect(proxy.addr);
    long.subscribe();
    let _ = long.send_raw(&vec![b'x'; 20 * 1024]);
    assert!(long.closed_within(Duration::from_secs(3)));
    let mut flood = V1Miner::connect(proxy.addr);
    flood.start("flood");
    let burst: String = (0..2000)
        .map(|i| {
            format!("{{\"id\":{i},\"method\":\"mining.submit\",\"params\":[\"w\",\"nojob\",\"00000000\",\"6553f13c\",\"00000000\"]}}\n")
        })
        .collect();
    // Answered one by one until quarantine's 100 refused shares, then closed (the write
    // may meet the close).
    let _ = flood.send_raw(burst.as_bytes());
    assert!(flood.closed_within(WAIT), "a rig whose every share fails the checks is closed");
    assert!(pool.submits().is_empty(), "none of it reached the pool");
    let s = good.find_share(1);
    assert_eq!(good.submit(&s)["result"], true, "the other miners did not notice");
}

fn bin(name: &str) -> &'static str {
    match name {
        "testpool" => env!("CARGO_BIN_EXE_testpool"),
        _ => env!("CARGO_BIN_EXE_minersim"),
    }
}

/// A `testpool --protocol v1` (it rebuilds and checks every header) for `secs`.
fn checking_pool(secs: u32, args: &[&str]) -> (std::process::Child, String, std::path::PathBuf) {
    let stats = std::env::temp_dir().join(format!("sp-v1-pool-{}-{}.json", std::process::id(), args.join("_").replace(['/', '.'], "")));
    let mut child = Command::new(bin("testpool"))
        .args(["--protocol", "v1", "--bind", "127.0.0.1:0", "--duration", &secs.to_string(), "--job-interval", "30"])
        .arg("--stats-file")
        .arg(&stats)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let addr = line.trim().strip_prefix("testpool listening on ").unwrap().to_string();
    (child, addr, stats)
}

fn finish(mut child: std::process::Child, stats: &std::path::Path) -> Value {
    assert!(wait_until(Duration::from_secs(30), || child.try_wait().ok().flatten().is_some()), "testpool exits");
    let v = serde_json::from_slice(&std::fs::read(stats).unwrap()).unwrap();
    let _ = std::fs::remove_file(stats);
    v
}

#[test]
fn hashing_rigs_through_the_proxy_get_every_share_accepted_by_a_checking_pool() {
    let (sha, sha_addr, sha_stats) = checking_pool(12, &["--algo", "sha256d", "--diff", "0.00002"]);
    let (scr, scr_addr, scr_stats) = checking_pool(12, &["--algo", "scrypt", "--diff", "0.001"]);
    let proxy = RunningProxy::start(v1_config(vec![v1_pool(&sha_addr, "sha256d")]));
    let mut scfg = v1_config(vec![v1_pool(&scr_addr, "scrypt")]);
    scfg.binds[0].protocol = BindProtocol::StratumV1;
    let sproxy = RunningProxy::start(scfg);
    let run = |addr: std::net::SocketAddr, extra: &[&str]| {
        let out = Command::new(bin("minersim"))
            .args(["--protocol", "v1", "--url", &addr.to_string(), "--duration", "5", "--json"])
            .args(extra)
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|e| panic!("minersim: {e} {}", String::from_utf8_lossy(&out.stderr)))
    };
    let two = run(proxy.addr, &["--miners", "2", "--version-rolling"]);
    let one = run(sproxy.addr, &["--miners", "1", "--algo", "scrypt"]);
    let (p_sha, p_scr) = (finish(sha, &sha_stats), finish(scr, &scr_stats));
    for (sim, p) in [(&two, &p_sha), (&one, &p_scr)] {
        assert!(sim["accepted"].as_u64().unwrap() >= 2, "{sim}");
        assert_eq!(sim["rejected"], 0, "{sim}");
        assert_eq!(sim["disconnects"], 0, "{sim}");
        for key in ["low_diff", "duplicate", "unknown_job", "invalid"] {
            assert_eq!(p[key], 0, "{key}: {p}");
        }
    }
    assert_eq!(p_sha["connections_total"], 1, "two rigs, one pool session: {p_sha}");
    let w = http_get(proxy.http.unwrap(), "/1/summary", "").json();
    assert!(w["hashrate"]["total"][5].as_f64().unwrap() > 0.0, "hashrate in hashes, with the sha256d divider: {w}");
    let metrics = http_get(proxy.http.unwrap(), "/metrics", "").body;
    let divider = format!("proxy_pool_divider{{proxy=\"{}\",hash=\"sha256d\",pool=\"{sha_addr}\"}} 4294967296", proxy.addr);
    assert!(metrics.contains(&divider), "{metrics}");
    assert!(
        metrics.lines().any(|l| l.starts_with("proxy_worker_accepted") && l.contains("hash=\"sha256d\"")),
        "per-worker series carry the algorithm"
    );
}
