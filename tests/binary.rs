//! The `stratum-proxy` binary as an operator runs it: config errors before listening,
//! SIGHUP reopening log files, SIGTERM stopping cleanly.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_stratum-proxy");

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sp-bin-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the binary and waits for its "listening on ADDR" log line.
fn start(args: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(BIN).args(args).env("RUST_LOG", "info").stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx.recv_timeout(WAIT).expect("proxy logs its address").parse().unwrap();
    (child, addr)
}

fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap().success());
}

#[test]
fn a_bad_config_names_the_field_and_exits_before_listening() {
    let dir = temp_dir("badcfg");
    let path = dir.join("config.json");
    std::fs::write(&path, r#"{"pools": [{"url": "pool:3333"}], "bind": ["127.0.0.1:0"], "retries": "two"}"#).unwrap();
    let out = Command::new(BIN).args(["-c", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retries"), "{err}");
    assert!(!err.contains("listening"), "{err}");

    let empty = temp_dir("nocfg");
    let out = Command::new(BIN).args(["-b", "127.0.0.1:0"]).current_dir(&empty).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("pools"), "no pool at all is a config error: {err}");
    // A port whose pool group has no enabled pool (the CLI's -o fills the default group only).
    std::fs::write(
        &path,
        r#"{"bind": [{"host": "127.0.0.1", "port": 0, "pool-group": "gpu"}], "pools": [{"url": "a:1", "group": "cpu"}]}"#,
    )
    .unwrap();
    let out = Command::new(BIN).args(["-c", path.to_str().unwrap(), "-o", "b:2"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(r#"bind[0].pool-group: group "gpu" has no enabled pool"#), "{err}");
    assert!(!err.contains("listening"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn sighup_reopens_the_logs_and_sigterm_stops() {
    let dir = temp_dir("hup");
    let pool = MockPool::start(1000);
    let access = dir.join("access.log");
    let cfg = dir.join("config.json");
    std::fs::write(
        &cfg,
        serde_json::json!({"bind": ["127.0.0.1:0"], "pools": [{"url": pool.url(), "user": "W"}], "access-log-file": access}).to_string(),
    )
    .unwrap();
    let (mut child, addr) = start(&["-c", cfg.to_str().unwrap()]);
    let mut m = TestMiner::connect(addr);
    m.login();
    std::fs::rename(&access, dir.join("access.log.1")).unwrap();
    signal(&child, "-HUP");
    // The reopen happens on the loop; a second login after it lands in the new file.
    assert!(wait_until(WAIT, || access.exists()), "SIGHUP created a fresh log file");
    let mut n = TestMiner::connect(addr);
    n.login();
    assert!(wait_until(WAIT, || std::fs::read_to_string(&access).unwrap_or_default().contains("CONNECT")));
    let old = std::fs::read_to_string(dir.join("access.log.1")).unwrap();
    assert_eq!(old.matches("CONNECT").count(), 1);
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
