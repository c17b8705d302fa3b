//! What contrib/ ships for running the proxy for real, checked against the proxy itself and
//! the tools that will read it: the Grafana dashboard and the alert rules query only
//! metrics a running proxy exports, promtool accepts and unit-tests the rules,
//! systemd-analyze accepts the unit, and `make install` honours DESTDIR and PREFIX and
//! never overwrites a config.
//!
//! promtool (Debian's prometheus) and systemd-analyze are installed by .ci/run; without
//! them those two tests say so and pass, except under CI (CI=true).

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use stratum_proxy::config::Mode;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_stratum-proxy");

/// Metric families in a real /metrics, from a proxy with a miner that has shares.
fn exported_families() -> BTreeSet<String> {
    let pool = MockPool::start(1000);
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.http.enabled = true;
    let proxy = RunningProxy::start(cfg);
    let mut m = proxy.miner();
    m.login();
    assert!(m.submit(1, 5000)["error"].is_null());
    let body = http_get(proxy.http.unwrap(), "/metrics", "").body;
    let families: BTreeSet<String> =
        body.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect();
    // Every family has samples here, so a dashboard panel would not stay empty.
    for f in ["proxy_worker_speed", "proxy_pool_up", "proxy_upstreams"] {
        assert!(body.lines().any(|l| l.starts_with(&format!("{f}{{"))), "{f} has samples:\n{body}");
    }
    families
}

/// Identifiers starting with `proxy_` in a query.
fn metric_names(query: &str) -> Vec<String> {
    query
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("proxy_"))
        .map(str::to_string)
        .collect()
}

/// Every string under an `expr`, `query` or `definition` key, anywhere in the JSON.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| queries(i, out)),
        _ => {}
    }
}

#[test]
fn the_grafana_dashboard_and_the_alerts_query_only_exported_metrics() {
    let text = std::fs::read_to_string("contrib/grafana-dashboard.json").unwrap();
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dash["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().expect("panel id")).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for p in panels {
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{} has targets", p["title"]));
        assert!(!targets.is_empty() && targets.iter().all(|t| t["expr"].as_str().is_some_and(|e| !e.is_empty())), "{}", p["title"]);
        assert!(p["gridPos"]["w"].as_u64().is_some() && p["gridPos"]["h"].as_u64().is_some(), "{}", p["title"]);
    }
    let mut qs = Vec::new();
    queries(&dash, &mut qs);
    let used: BTreeSet<String> = qs.iter().flat_map(|q| metric_names(q)).collect();
    for wanted in ["proxy_hashrate", "proxy_miners", "proxy_upstreams", "proxy_shares_accepted_total", "proxy_shares_rejected_total"] {
        assert!(used.contains(wanted), "the dashboard shows {wanted}");
    }
    for wanted in ["proxy_shares_invalid_total", "proxy_pool_up", "proxy_worker_speed"] {
        assert!(used.contains(wanted), "the dashboard shows {wanted}");
    }

    let rules = std::fs::read_to_string("contrib/prometheus-alerts.yml").unwrap();
    let in_rules: BTreeSet<String> = rules.lines().filter(|l| !l.trim_start().starts_with('#')).flat_map(metric_names).collect();
    assert!(in_rules.len() >= 5, "{in_rules:?}");

    let exported = exported_families();
    for name in used.iter().chain(&in_rules) {
        assert!(exported.contains(name), "{name} is queried but the proxy does not export it; it exports {exported:?}");
    }
}

/// A tool's path, or `None` (a skip, outside CI) when it is not installed.
fn tool(name: &str) -> Option<()> {
    if Command::new(name).arg("--version").output().is_ok() {
        return Some(());
    }
    assert!(std::env::var("CI").is_err(), "CI must have {name} (.ci/run installs it)");
    eprintln!("SKIPPED: {name} is not installed");
    None
}

#[test]
fn promtool_accepts_the_alert_rules_and_their_unit_tests_pass() {
    if tool("promtool").is_none() {
        return;
    }
    for args in [["check", "rules", "prometheus-alerts.yml"], ["test", "rules", "prometheus-alerts.test.yml"]] {
        let out = Command::new("promtool").args(args).current_dir("contrib").output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("SUCCESS"), "promtool {args:?}:\n{text}");
    }
}

#[test]
fn systemd_accepts_the_unit() {
    let unit = std::fs::read_to_string("contrib/stratum-proxy.service").unwrap();
    for line in [
        "ExecStart=/usr/local/bin/stratum-proxy -c /etc/stratum-proxy/config.json",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "StateDirectory=stratum-proxy",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "Type=notify",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit has {line}");
    }
    assert!(unit.lines().any(|l| l.starts_with("LimitNOFILE=") && l[12..].parse::<u64>().is_ok_and(|n| n >= 65_536)));
    assert!(unit.contains("--kill-whom=main -s USR2"), "the live upgrade is signalled to the main process only");
    if tool("systemd-analyze").is_none() {
        return;
    }
    // Verified as installed, but pointing at the binary this test built.
    let dir = std::env::temp_dir().join(format!("sp-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stratum-proxy.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/stratum-proxy", BIN)).unwrap();
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&path).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.trim().is_empty(), "systemd-analyze verify:\n{text}");
}

#[test]
fn make_install_honours_destdir_and_prefix_and_keeps_a_config() {
    let dest = std::env::temp_dir().join(format!("sp-install-{}", std::process::id()));
    let install = || {
        let out = Command::new("make")
            .args(["-s", "install-files", "PREFIX=/opt/sp", &format!("DESTDIR={}", dest.display()), &format!("BINARY={BIN}")])
            .output()
            .expect("make runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let said = install();
    assert!(said.contains("installed") && said.contains("config.json"), "{said}");
    let bin = dest.join("opt/sp/bin/stratum-proxy");
    let unit = std::fs::read_to_string(dest.join("opt/sp/lib/systemd/system/stratum-proxy.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/sp/bin/stratum-proxy -c /etc/stratum-proxy/config.json"), "{unit}");
    let config = dest.join("etc/stratum-proxy/config.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777, 0o755);
    // The default config loads: the installed binary checks it without starting.
    let parsed = stratum_proxy::config::load_file(Path::new(&config)).expect("the default config loads");
    assert!(parsed.http.enabled && parsed.http.host == "127.0.0.1", "the API stays on loopback by default");

    std::fs::write(&config, "{\"edited\": true}").unwrap();
    let said = install();
    assert!(said.contains("keeping"), "{said}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "{\"edited\": true}", "an existing config is never replaced");
    std::fs::remove_dir_all(&dest).unwrap();
}
