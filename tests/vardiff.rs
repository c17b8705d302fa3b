//! Vardiff on any pool, over loopback: a fast rig's difficulty goes up, a silent one's goes
//! down, each change reaches the miner at once as a new job (CryptoNote: a new job id;
//! stratum v1: set_difficulty and a clean job), shares in flight are judged by the job
//! they were mined for, and a fixed difficulty switches vardiff off.

mod support;

use std::time::{Duration, Instant};
use stratum_proxy::config::{Config, Mode, PoolConfig};
use stratum_proxy::splitter::vardiff::VardiffConfig;
use stratum_proxy::stratum::difficulty::difficulty_from_target;
use support::v1::{MockV1Pool, V1Miner};
use support::*;

fn vardiff_config(pool: &str, start: f64, min: f64) -> Config {
    let mut cfg = config(Mode::NiceHash, &[pool.to_string()]);
    cfg.vardiff = VardiffConfig { enabled: true, target_time: 1, min, max: 0.0, start };
    cfg
}

fn job_diff(job: &serde_json::Value) -> u64 {
    difficulty_from_target(job["target"].as_str().unwrap()).unwrap()
}

#[test]
fn a_fast_rig_is_raised_and_its_shares_in_flight_keep_their_difficulty() {
    let pool = MockPool::start(1_000_000);
    let proxy = RunningProxy::start(vardiff_config(&pool.url(), 1000.0, 1000.0));
    let mut m = proxy.miner();
    m.login();
    let start = job_diff(&m.job);
    assert!((1000..=1200).contains(&start), "it starts at the ladder step nearest `start`: {start}");
    assert!(m.job_id().contains(':'), "a job below the pool's difficulty has its own id: {}", m.job_id());
    let first = m.job_id();
    // Far more shares than one a second at difficulty 1000: vardiff raises it.
    let end = Instant::now() + Duration::from_secs(20);
    let mut counter = 0u16;
    while job_diff(&m.job) <= start && Instant::now() < end {
        counter += 1;
        assert!(m.submit(counter, start)["error"].is_null());
        std::thread::sleep(Duration::from_millis(20));
    }
    let raised = job_diff(&m.job);
    assert!(raised > start, "raised within 20 s (to {raised})");
    assert_ne!(m.job_id(), first, "the new difficulty came as a job with a new id");
    // A share mined for the first job (difficulty 1000) is still judged at 1000.
    let fixed = m.fixed_byte();
    let r = m.submit_raw(&first, &format!("7fff00{fixed}"), &result_for(start));
    assert!(r["error"].is_null(), "{r}");
    assert!(pool.submits().is_empty(), "and none of it was the pool's business");
}

#[test]
fn a_silent_rig_is_lowered_and_a_fixed_difficulty_stays() {
    let pool = MockPool::start(1_000_000);
    let proxy = RunningProxy::start(vardiff_config(&pool.url(), 0.0, 1000.0));
    let mut silent = proxy.miner();
    silent.login();
    assert!(job_diff(&silent.job).abs_diff(1_000_000) < 1000, "start 0: the pool's difficulty");
    // No share for three target times, and at least 15 s since the last look: lowered, as
    // a new job at once.
    let job = silent.recv_within(Duration::from_secs(25)).expect("a new job within 25 s");
    assert_eq!(job["method"], "job");
    assert!(job_diff(&job["params"]) < 900_000, "{job}");
    // A rig that asks for a difficulty keeps it: vardiff is off for it.
    let mut fixed = proxy.miner();
    let r = fixed.login_as("WALLET+5000");
    assert!(r["error"].is_null());
    assert!(job_diff(&fixed.job).abs_diff(5000) < 10);
    assert!(fixed.recv_within(Duration::from_secs(5)).is_none(), "no difficulty change for a fixed rig");
}

#[test]
fn a_silent_v1_rig_gets_a_lower_difficulty_before_a_clean_job() {
    let v1pool = MockV1Pool::start("aa", 8, 0.01);
    let mut cfg = config(Mode::NiceHash, &[]);
    cfg.pools = vec![PoolConfig { algo: Some("sha256d".into()), ..pool(&v1pool.url()) }];
    cfg.vardiff = VardiffConfig { enabled: true, target_time: 1, min: 0.000001, max: 0.0, start: 0.0 };
    let proxy = RunningProxy::start(cfg);
    let mut m = V1Miner::connect(proxy.addr);
    m.start("rig");
    assert_eq!(m.difficulty, 0.01);
    let seen = m.seen.len();
    let set = m.next_within("mining.set_difficulty", Duration::from_secs(25)).expect("a lower difficulty within 25 s");
    let d = set["params"][0].as_f64().unwrap();
    assert!(d < 0.01, "{set}");
    let job = m.next("mining.notify").expect("then the job again");
    assert_eq!(job["params"][8], true, "clean");
    assert!(m.seen.len() > seen);
}
