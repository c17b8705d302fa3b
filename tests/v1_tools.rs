//! The stratum v1 test tools against each other, no proxy in between: minersim's miners
//! really hash, testpool rebuilds every header and checks it, so "every share accepted"
//! means the two independent implementations agree, and a miner hashing with the wrong
//! extranonce1 being refused proves the pool does check.
//!
//! Difficulties are chosen for debug builds: minersim hashes sha256d at 200-350k/s there
//! (2^32 x 0.00002 = 86k hashes a share, a few shares a second) and scrypt at about 4,700/s
//! with the hash crates optimized in the dev profile, 170/s without (65536 x 0.001 = 66
//! hashes a share either way enough for a few seconds).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TESTPOOL: &str = env!("CARGO_BIN_EXE_testpool");
const MINERSIM: &str = env!("CARGO_BIN_EXE_minersim");

struct Pool {
    child: Child,
    addr: String,
    stats: std::path::PathBuf,
}

impl Pool {
    /// A v1 testpool running for `secs`, with extra arguments.
    fn start(secs: u32, args: &[&str]) -> Pool {
        static N: AtomicUsize = AtomicUsize::new(0);
        let stats = std::env::temp_dir().join(format!("v1_tools_{}_{}.json", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let mut child = Command::new(TESTPOOL)
            .args(["--protocol", "v1", "--bind", "127.0.0.1:0", "--duration", &secs.to_string()])
            .arg("--stats-file")
            .arg(&stats)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("testpool listening on ").unwrap_or_else(|| panic!("testpool said {line:?}")).to_string();
        Pool { child, addr, stats }
    }

    /// Waits for the pool to exit and reads its final counters.
    fn finish(mut self) -> Value {
        let end = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < end, "testpool did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
        let v = serde_json::from_slice(&std::fs::read(&self.stats).unwrap()).unwrap();
        let _ = std::fs::remove_file(&self.stats);
        v
    }
}

/// Runs minersim v1 against `pool` and returns its summary.
fn mine(pool: &Pool, args: &[&str]) -> Value {
    let out = Command::new(MINERSIM).args(["--protocol", "v1", "--url", &pool.addr, "--json"]).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn sha256d_miners_with_version_rolling_get_every_share_accepted() {
    // No job change within the run: a share racing a clean job would be stale, which is
    // not what this test is about.
    let pool = Pool::start(7, &["--diff", "0.00002", "--job-interval", "30"]);
    let sim = mine(&pool, &["--miners", "2", "--duration", "5", "--version-rolling"]);
    let p = pool.finish();
    assert!(n(&sim, "accepted") >= 3, "too few shares to judge: {sim}");
    assert_eq!(n(&sim, "rejected"), 0, "{sim}");
    assert_eq!(n(&sim, "logged_in"), 2, "{sim}");
    // Every answered share was accepted by the pool, none refused for any reason.
    assert!(n(&p, "accepted") >= n(&sim, "accepted"), "pool {p} sim {sim}");
    for key in ["low_diff", "duplicate", "unknown_job", "invalid"] {
        assert_eq!(n(&p, key), 0, "{key}: {p}");
    }
}

#[test]
fn a_miner_hashing_the_wrong_extranonce_is_refused() {
    let pool = Pool::start(5, &["--diff", "0.00002"]);
    let sim = mine(&pool, &["--miners", "1", "--duration", "3", "--wrong-extranonce"]);
    let p = pool.finish();
    assert!(n(&sim, "rejected") >= 1, "{sim}");
    assert_eq!(n(&sim, "accepted"), 0, "{sim}");
    assert_eq!(sim["errors"]["Low difficulty share"], sim["rejected"], "{sim}");
    assert!(n(&p, "low_diff") >= 1 && n(&p, "accepted") == 0, "{p}");
}

#[test]
fn scrypt_shares_are_accepted() {
    let pool = Pool::start(5, &["--algo", "scrypt", "--diff", "0.001", "--job-interval", "30"]);
    let sim = mine(&pool, &["--miners", "1", "--duration", "3", "--algo", "scrypt"]);
    let p = pool.finish();
    assert!(n(&sim, "accepted") >= 1, "{sim}");
    assert_eq!(n(&sim, "rejected"), 0, "{sim}");
    assert_eq!(n(&p, "low_diff"), 0, "{p}");
}

#[test]
fn miners_follow_set_extranonce() {
    let pool = Pool::start(7, &["--diff", "0.00002", "--job-interval", "30", "--set-extranonce-after", "1.5"]);
    let sim = mine(&pool, &["--miners", "2", "--duration", "5"]);
    let p = pool.finish();
    assert_eq!(n(&p, "extranonce_changes"), 2, "{p}");
    assert_eq!(n(&sim, "extranonce_changes"), 2, "{sim}");
    // A share found in the instant before the change can reach the pool after it and
    // be refused as an unknown job; anything else refused means the new extranonce1
    // was not used.
    assert!(n(&p, "accepted") >= 3, "{p}");
    assert!(n(&p, "unknown_job") <= 1, "{p}");
    for key in ["low_diff", "duplicate", "invalid"] {
        assert_eq!(n(&p, key), 0, "{key}: {p}");
    }
}

#[test]
fn miners_follow_client_reconnect() {
    let pool = Pool::start(7, &["--diff", "0.00002", "--job-interval", "30", "--reconnect-after", "1.5"]);
    let sim = mine(&pool, &["--miners", "2", "--duration", "5"]);
    let p = pool.finish();
    assert_eq!(n(&p, "reconnects_sent"), 2, "{p}");
    assert_eq!(n(&sim, "reconnects"), 2, "{sim}");
    assert_eq!(n(&p, "connections_total"), 4, "each miner came back once: {p}");
    assert_eq!(n(&sim, "logged_in"), 4, "{sim}");
    assert!(n(&p, "accepted") >= 3, "{p}");
    for key in ["low_diff", "duplicate", "invalid"] {
        assert_eq!(n(&p, key), 0, "{key}: {p}");
    }
}
