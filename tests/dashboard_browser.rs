//! The dashboard in a real headless chromium (Debian's), driven by playwright-core from
//! tests/browser/: a proxy with an access token, simulated rigs from `minersim` mining
//! through it, and a user who pastes the token, reads the chart and the workers table,
//! searches, sorts, reloads and turns the phone. Any console error fails the test.
//!
//! Needs /usr/bin/chromium (or $CHROMIUM), node, and `npm ci --prefix tests/browser`;
//! .ci/run installs all three. Without them the test says so and passes, except under CI
//! (CI=true), where a missing browser is a failure.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use stratum_proxy::config::Mode;
use support::*;

const MINERSIM: &str = env!("CARGO_BIN_EXE_minersim");
const TOKEN: &str = "browser-test-token";
const RIGS: usize = 4;

/// Kills a child process when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What is missing to run the browser, if anything.
fn missing() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} not found (apt-get install chromium)"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node not found".into());
    }
    if !Path::new("tests/browser/node_modules/playwright-core").exists() {
        return Some("playwright-core not installed (npm ci --prefix tests/browser)".into());
    }
    None
}

#[test]
fn the_dashboard_renders_the_rigs_in_a_real_browser() {
    if let Some(what) = missing() {
        assert!(std::env::var("CI").is_err(), "CI must run the browser test, but {what}");
        eprintln!("SKIPPED the_dashboard_renders_the_rigs_in_a_real_browser: {what}");
        return;
    }
    let pool = MockPool::start(1000);
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.http.enabled = true;
    cfg.http.access_token = Some(TOKEN.into());
    let proxy = RunningProxy::start(cfg);
    let api = proxy.http.unwrap();
    let _rigs = Reaped(
        Command::new(MINERSIM)
            .args(["--url", &proxy.addr.to_string(), "--miners", &RIGS.to_string(), "--share-interval", "1", "--duration", "120"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("minersim starts"),
    );
    let names: Vec<String> = (0..RIGS).map(|i| format!("sim-{i}")).collect();
    // Every rig has an accepted share before the browser looks.
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    assert!(
        wait_until(Duration::from_secs(15), || {
            let w = http_get(api, "/1/workers", &auth).json();
            let rows = w["workers"].as_array().cloned().unwrap_or_default();
            names.iter().all(|n| rows.iter().any(|r| r[0] == n.as_str() && r[3].as_u64().unwrap_or(0) > 0))
        }),
        "the simulated rigs mine through the proxy"
    );

    let mut driver = Command::new("node")
        .args(["tests/browser/dashboard.mjs", &format!("http://{api}/"), TOKEN, &names.join(",")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut status = None;
    let finished = wait_until(Duration::from_secs(120), || {
        status = driver.try_wait().ok().flatten();
        status.is_some()
    });
    if !finished {
        let _ = driver.kill();
    }
    let out = driver.wait_with_output().expect("driver output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(finished, "the browser driver did not finish in 120 s: {stdout}\n{stderr}");
    assert!(out.status.success(), "the dashboard failed in chromium: {stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    eprintln!("browser report: {report}");
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["found"]["points"].as_u64().unwrap_or(0) >= 1, "{report}");
}
