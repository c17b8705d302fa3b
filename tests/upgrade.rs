//! Live upgrade with the real binary: SIGUSR2 starts the binary again, which takes over the
//! listening sockets and every plaintext miner and pool connection with its state; TLS
//! miners are drained by the old process, which then exits; a failed upgrade leaves the
//! old process serving.

mod netsupport;
mod support;

use netsupport::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_stratum-proxy");

/// The binary with its log lines collected as they come.
struct Proc {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn start(config: &std::path::Path) -> Proc {
        Proc::start_notifying(config, None)
    }

    /// Starts it as systemd would for a `Type=notify` unit when `notify` is set.
    fn start_notifying(config: &std::path::Path, notify: Option<&std::path::Path>) -> Proc {
        let mut cmd = Command::new(BIN);
        if let Some(path) = notify {
            cmd.env("NOTIFY_SOCKET", path);
        }
        let mut child = cmd
            .args(["-c", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        Proc { child, log }
    }

    /// The first value after `key` in a log line, waiting for it.
    fn logged(&self, key: &str) -> String {
        let mut found = None;
        assert!(
            wait_until(Duration::from_secs(15), || {
                found = self
                    .log
                    .lock()
                    .unwrap()
                    .iter()
                    .find_map(|l| l.split(key).nth(1).map(|v| v.split_whitespace().next().unwrap_or("").to_string()));
                found.is_some()
            }),
            "no log line with {key:?}: {:?}",
            self.log.lock().unwrap()
        );
        found.unwrap()
    }

    fn has_logged(&self, key: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(key))
    }

    fn signal(&self, sig: &str) {
        assert!(Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap().success());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &std::path::Path, pool: &MockPool) -> std::path::PathBuf {
    let path = dir.join("config.json");
    let cfg = serde_json::json!({
        "bind": [{"host": "127.0.0.1", "port": 0}, {"host": "127.0.0.1", "port": 0, "tls": true}],
        "pools": [{"url": pool.url(), "user": "W", "pass": "x"}],
        "http": {"enabled": true, "host": "127.0.0.1", "port": 0},
        "retries": 1, "retry-pause": 1,
    });
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sp-upgrade-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The new process (the one that took over), whose pid the old one logged; killed when the
/// test ends, pass or fail, since it is not our child.
struct Successor(String);

impl Drop for Successor {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-9", &self.0]).status();
    }
}

#[test]
fn plaintext_miners_and_the_pool_connection_move_and_tls_miners_drain() {
    let dir = temp_dir("moves");
    let pool = MockPool::start(1000);
    // The service manager's side of sd_notify.
    let manager = std::os::unix::net::UnixDatagram::bind(dir.join("notify")).unwrap();
    manager.set_read_timeout(Some(WAIT)).unwrap();
    let heard = || {
        let mut buf = [0u8; 256];
        let n = manager.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let old = Proc::start_notifying(&config(&dir, &pool), Some(&dir.join("notify")));
    assert_eq!(heard(), "READY=1");
    let plain: std::net::SocketAddr = old.logged("listening on ").parse().unwrap();
    let pin = old.logged("fingerprint ");
    let tls_addr: std::net::SocketAddr = old
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.split("listening on ").nth(1))
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let api: std::net::SocketAddr = old.logged("HTTP API on http://").parse().unwrap();
    let mut miners: Vec<TestMiner> = (0..5).map(|_| TestMiner::connect(plain)).collect();
    for (i, m) in miners.iter_mut().enumerate() {
        m.login();
        assert!(m.submit(i as u16, 5000)["error"].is_null());
    }
    let mut tls = LineMiner::new(tls_connect(tls_addr, &pin));
    tls.login();
    assert!(tls.submit(1, 1000, &result_for(5000))["error"].is_null());
    // A share in flight across the handover: the pool holds its answer until after.
    pool.state.lock().unwrap().hold_replies = true;
    let (job, fixed, session) = (miners[0].job_id(), miners[0].fixed_byte(), miners[0].session.clone());
    let in_flight = miners[0]
        .send("submit", serde_json::json!({"id": session, "job_id": job, "nonce": format!("0f0f00{fixed}"), "result": result_for(5000)}));
    assert!(wait_until(WAIT, || pool.submits().len() == 7), "the held share reached the pool");

    let accepted_of_rig =
        |workers: &serde_json::Value| workers["workers"].as_array().unwrap().iter().find(|w| w[0] == "rig").map(|w| w[3].as_u64().unwrap());
    let before = http_get(api, "/1/workers", "").json();

    old.signal("-USR2");
    let successor = Successor(old.logged("handed over to pid ").to_string());
    // systemd follows the new process: the old one leaving does not stop the service.
    // One datagram from the process systemd still takes as main: the new pid, which serves.
    assert_eq!(heard(), format!("MAINPID={}\nREADY=1", successor.0));
    pool.state.lock().unwrap().hold_replies = false;
    // The pool answers the held share now; the new process has its pending entry.
    let id = pool.state.lock().unwrap().submit_ids[6].clone();
    pool.send_raw(format!("{{\"id\":{id},\"jsonrpc\":\"2.0\",\"error\":null,\"result\":{{\"status\":\"OK\"}}}}\n").as_bytes());
    let reply = loop {
        let v = miners[0].recv();
        if v["id"] == in_flight {
            break v;
        }
    };
    assert!(reply["error"].is_null(), "the share in flight was answered by the new process: {reply}");
    // Every plaintext miner mines on through the same connection, on the same pool session.
    for (i, m) in miners.iter_mut().enumerate() {
        assert!(m.submit(100 + i as u16, 5000)["error"].is_null(), "miner {i} kept its connection");
    }
    let submits = pool.submits();
    let mut keys: Vec<String> = submits.iter().map(|s| format!("{}/{}", s["job_id"], s["nonce"])).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), submits.len(), "no share was sent twice");
    // The worker record came along with its counts (its rates and the proxy's windows too:
    // unit tests in stats, as this test runs within a second of uptime).
    let after = http_get(api, "/1/workers", "").json();
    assert_eq!(accepted_of_rig(&after), accepted_of_rig(&before).map(|n| n + 6), "{before}\n{after}");
    // New connections go to the new process; the API answers from it.
    eprintln!("DEBUG logins before late {}", pool.logins());
    let mut late = TestMiner::connect(plain);
    late.login();
    let s = http_get(api, "/1/summary", "").json();
    assert_eq!(s["miners"]["now"], 6, "{s}");
    eprintln!("DEBUG logins after late {}", pool.logins());
    // The TLS miner is still served by the old process, on a pool connection of its own now:
    // it was handed that upstream's job without a reconnect.
    tls.next_job();
    // The plaintext miners' pool connection moved with them, and the late miner took a
    // slot on it (free slots stay free across the handover); the one new login is the old
    // process's own upstream for the TLS miner (it has that upstream's job now), which it
    // keeps until that miner leaves.
    assert_eq!(pool.logins(), 2, "the pool connection moved too: no new login for the plaintext miners' upstream");
    let r = tls.submit(2, 1000, &result_for(5000));
    assert!(r["error"].is_null(), "{r}");
    assert!(!old.has_logged("drained; the old process exits"));
    drop(tls);
    assert!(
        wait_until(Duration::from_secs(10), || old.has_logged("drained; the old process exits")),
        "the old process leaves once drained"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failed_upgrade_leaves_the_old_process_serving() {
    let dir = temp_dir("fails");
    let pool = MockPool::start(1000);
    let path = config(&dir, &pool);
    let old = Proc::start(&path);
    let plain: std::net::SocketAddr = old.logged("listening on ").parse().unwrap();
    let mut m = TestMiner::connect(plain);
    m.login();
    // The new binary will not start: its config (the same arguments) no longer loads.
    std::fs::write(&path, "{ broken").unwrap();
    old.signal("-USR2");
    let why = old.logged("upgrade failed, serving on as before: ");
    assert!(!why.is_empty());
    assert!(m.submit(1, 5000)["error"].is_null(), "the miner never noticed");
    let mut again = TestMiner::connect(plain);
    again.login();
    assert_eq!(pool.logins(), 1);
    std::fs::remove_dir_all(&dir).ok();
}
