//! What the console log says when the same thing happens at rig rate: a pool outage that
//! refuses every share, a rig retrying a refused login. Each test reads the lines its own
//! proxy wrote (told apart by the rigs' names), through a logger that keeps them.

mod support;

use std::sync::Mutex;
use std::time::Duration;
use stratum_proxy::config::{Config, Mode};
use support::v1::V1Miner;
use support::*;

/// Every line logged in this test binary at info or above.
static LINES: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Keep;

impl log::Log for Keep {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LINES.lock().unwrap().push((r.level(), r.args().to_string()));
        }
    }

    fn flush(&self) {}
}

static KEEP: Keep = Keep;

/// Installs the keeping logger; every test calls it before it starts a proxy, so it is
/// the first logger of the binary (the fixtures' `env_logger` then finds one in place).
fn keep_lines() {
    if log::set_logger(&KEEP).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Lines kept so far that contain every one of `words`.
fn lines_with(words: &[&str]) -> Vec<String> {
    LINES.lock().unwrap().iter().filter(|(_, l)| words.iter().all(|w| l.contains(w))).map(|(_, l)| l.clone()).collect()
}

const LOST: &str = "Pool connection lost, share not sent";

fn temp_file(tag: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("sp-noise-{tag}-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn with_share_log(pool: &MockPool, path: &std::path::Path) -> Config {
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.share_log_file = Some(path.to_str().unwrap().to_string());
    cfg
}

#[test]
fn a_pool_outage_is_one_line_and_a_summary_and_the_share_log_keeps_every_share() {
    keep_lines();
    let mut pool = MockPool::start(1000);
    let share_log = temp_file("outage");
    let proxy = RunningProxy::start(with_share_log(&pool, &share_log));
    let mut rigs: Vec<TestMiner> = (1..=3).map(|_| proxy.miner()).collect();
    for (i, m) in rigs.iter_mut().enumerate() {
        assert!(m.login_as(&format!("outage-{i}"))["error"].is_null());
    }
    pool.kill();
    // Until the proxy sees the pool gone a share may still be sent; from then on every
    // share of every rig is refused for the same reason.
    assert!(wait_until(WAIT, || error_of(&rigs[0].submit(1, 5000)) == LOST), "the outage reaches the rigs");
    let mut refused = 1;
    for round in 0..20 {
        for m in &mut rigs {
            assert_eq!(error_of(&m.submit(2 + round, 5000)), LOST);
            refused += 1;
        }
    }
    let full = lines_with(&["rejected: Pool connection lost, share not sent", "(outage-"]);
    assert_eq!(full.len(), 1, "one line for {refused} refused shares: {full:?}");
    // The share log is the record of every share, and keeps them all.
    let text = std::fs::read_to_string(&share_log).unwrap();
    let rejects = text.lines().filter(|l| l.contains(" REJECT outage-") && l.ends_with(&format!("reason=\"{LOST}\""))).count();
    assert!(rejects >= refused, "{rejects} REJECT lines for {refused} refused shares:\n{text}");
    // At the end of the interval, one line sums up the rest.
    let summary = || lines_with(&["more shares rejected: Pool connection lost, share not sent (last 1", "(outage-"]);
    assert!(wait_until(Duration::from_secs(15), || !summary().is_empty()), "a summary line");
    let s = &summary()[0];
    assert!(s.starts_with("and "), "{s}");
    let held: usize = s["and ".len()..].split(' ').next().unwrap().replace(',', "").parse().unwrap();
    assert!(held >= refused - 1, "{s}: the other {} shares", refused - 1);
    let _ = std::fs::remove_file(&share_log);
}

#[test]
fn a_rig_retrying_a_refused_login_writes_a_line_now_and_then_not_one_per_retry() {
    keep_lines();
    let pool = MockPool::start(1000);
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.access_password = Some("secret".into());
    let proxy = RunningProxy::start(cfg);
    // An xmrig and a cpuminer with the wrong password, retrying as they do.
    for _ in 0..10 {
        let mut m = proxy.miner();
        assert_eq!(error_of(&m.login_as("refused-cn")), "Invalid password");
        assert!(m.closed_within(WAIT));
        let mut v = V1Miner::connect(proxy.addr);
        assert!(v.subscribe()["error"].is_null());
        assert_eq!(v.authorize("refused-v1")["error"][1], "Invalid password");
        assert!(v.closed_within(WAIT));
    }
    let full = lines_with(&["refused: Invalid password", "(refused-"]);
    assert_eq!(full.len(), 1, "one line for 20 refusals: {full:?}");
    let summary = || lines_with(&["and 19 more logins refused: Invalid password (last 1", "(refused-v1))"]);
    assert!(wait_until(Duration::from_secs(15), || !summary().is_empty()), "then one summary line");
}

#[test]
fn a_rig_on_the_wrong_algorithm_is_warned_about_once_by_name_and_reason() {
    keep_lines();
    let pool = MockPool::start(1000);
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.quarantine.invalid = 10;
    let proxy = RunningProxy::start(cfg);
    let mut m = proxy.miner();
    assert!(m.login_as("wrong-algo-user")["error"].is_null());
    for c in 0..10 {
        assert_eq!(error_of(&m.submit(c, 10)), "Low difficulty share");
    }
    assert!(m.closed_within(WAIT));
    let warned: Vec<(log::Level, String)> =
        LINES.lock().unwrap().iter().filter(|(_, l)| l.contains("(wrong-algo-user/rig)")).cloned().collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].0, log::Level::Warn);
    assert!(
        warned[0].1.ends_with(
            "(wrong-algo-user/rig): 10 shares refused by the proxy's checks with hardly a good one among them \
             (last: Low difficulty share): wrong algorithm or a broken miner? closed and refused for 600 s"
        ),
        "{warned:?}"
    );
}

#[test]
fn a_rig_that_cannot_mine_the_pools_algorithm_is_told_and_the_log_says_so_once() {
    keep_lines();
    let pool = MockPool::start(1000);
    pool.state.lock().unwrap().algo = "cn-pico".into();
    let proxy = RunningProxy::start(config(Mode::NiceHash, &[pool.url()]));
    // A rig built for rx/0 only, retrying as miners do.
    for _ in 0..3 {
        let mut m = proxy.miner();
        m.send("login", serde_json::json!({"login": "rx-only-rig", "pass": "x", "agent": "XMRig/6.26.0", "algo": ["rx/0"]}));
        assert_eq!(error_of(&m.recv()), "Unsupported algorithm cn-pico");
        assert!(m.closed_within(WAIT));
    }
    let full = lines_with(&["(rx-only-rig) login refused: it cannot mine the pool's algorithm cn-pico"]);
    assert_eq!(full.len(), 1, "the operator hears of it once, not per retry: {full:?}");
}
