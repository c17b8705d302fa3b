//! Accounts through one port: registration over the REST API, miners that log in with the
//! returned name mining to their account's pool with its credentials, two accounts with
//! two algorithms side by side, restarts, deletion, bad input, a failed fsync, and the
//! activity that `expire-after` counts.

mod support;

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use stratum_proxy::config::{Config, Mode};
use support::*;

const TOKEN: &str = "s3cret-token";

fn auth() -> String {
    format!("Authorization: Bearer {TOKEN}\r\n")
}

fn store_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sp-accounts-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("accounts.db")
}

/// A proxy with accounts on, no pools of its own, and a writable API.
fn accounts_config(store: &std::path::Path) -> Config {
    let mut cfg = config(Mode::NiceHash, &[]);
    cfg.accounts.enabled = true;
    cfg.accounts.store = store.to_string_lossy().into_owned();
    cfg.http.enabled = true;
    cfg.http.port = 0;
    cfg.http.access_token = Some(TOKEN.into());
    cfg.http.restricted = false;
    cfg
}

fn api(proxy: &RunningProxy) -> SocketAddr {
    proxy.http.expect("API on")
}

/// Registers and returns the name.
fn register(proxy: &RunningProxy, pool: &str, user: &str, pass: &str) -> String {
    let body = json!({"pool": pool, "user": user, "password": pass}).to_string();
    let r = http_send(api(proxy), "POST", "/api/v1/users", &body, &auth());
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"], "");
    v["name"].as_str().unwrap().to_string()
}

fn login_as(proxy: &RunningProxy, name: &str, algos: &[&str]) -> (TestMiner, Value) {
    let mut m = proxy.miner();
    m.send("login", json!({"login": name, "pass": "ignored", "agent": "XMRig/6.26.0", "rigid": "rig1", "algo": algos}));
    let reply = m.recv();
    if let Some(r) = reply.get("result").filter(|r| !r.is_null()) {
        m.session = r["id"].as_str().unwrap_or_default().to_string();
        m.job = r["job"].clone();
    }
    (m, reply)
}

#[test]
fn a_registered_name_mines_to_its_accounts_pool_with_its_credentials() {
    let store = store_path("route");
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(accounts_config(&store));
    let name = register(&proxy, &pool.url(), "alice.wallet", "alice-pool-pass");
    assert_eq!(name.len(), 16);
    assert!(name.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
    let (mut m, reply) = login_as(&proxy, &name, &["rx/0"]);
    assert!(reply["error"].is_null(), "{reply}");
    assert!(pool.owns_job(&m.job_id()));
    let login = pool.state.lock().unwrap().logins[0].clone();
    assert_eq!((login["login"].as_str(), login["pass"].as_str()), (Some("alice.wallet"), Some("alice-pool-pass")));
    assert!(m.submit(1, 5000)["error"].is_null());
    assert_eq!(pool.submits().len(), 1);
    // NAME.WORKER logs in to the same account, on the same upstream.
    let (m2, reply) = login_as(&proxy, &format!("{name}.rig2"), &["rx/0"]);
    assert!(reply["error"].is_null(), "{reply}");
    assert!(pool.owns_job(&m2.job_id()));
    assert_eq!(pool.logins(), 1, "rigs of one account share one upstream");
    // Registering the same credentials again gives the same name.
    let again = http_send(
        api(&proxy),
        "POST",
        "/api/v1/users",
        &json!({"pool": pool.url(), "user": "alice.wallet", "password": "alice-pool-pass"}).to_string(),
        &auth(),
    );
    assert_eq!((again.status, again.json()["name"].as_str()), (200, Some(name.as_str())));
    // The list shows the account, never its password.
    let list = http_get(api(&proxy), "/api/v1/users", &auth());
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&name) && list.body.contains("alice.wallet"));
    assert!(!list.body.contains("alice-pool-pass"), "{}", list.body);
    // A login that is no account, on a port without pools of its own, is refused clearly.
    let (_, reply) = login_as(&proxy, "not-an-account", &["rx/0"]);
    assert!(error_of(&reply).starts_with("Unknown account"), "{reply}");
}

#[test]
fn two_accounts_on_two_pools_with_two_algorithms_share_one_port() {
    let store = store_path("two");
    let rx = MockPool::start(1000);
    let pico = MockPool::start(2000);
    pico.state.lock().unwrap().algo = "cn-pico".into();
    let mut cfg = accounts_config(&store);
    cfg.pools_algo.insert(pico.url(), "cn-pico".into());
    let proxy = RunningProxy::start(cfg);
    let a = register(&proxy, &rx.url(), "ua", "pa");
    let b = register(&proxy, &pico.url(), "ub", "pb");
    assert_ne!(a, b);
    let (mut ma, _) = login_as(&proxy, &a, &["rx/0", "cn-pico"]);
    let (mut mb, _) = login_as(&proxy, &b, &["rx/0", "cn-pico"]);
    assert!(rx.owns_job(&ma.job_id()) && pico.owns_job(&mb.job_id()));
    assert_eq!((ma.job["algo"].as_str(), mb.job["algo"].as_str()), (Some("rx/0"), Some("cn-pico")));
    assert!(ma.submit(1, 5000)["error"].is_null() && mb.submit(1, 5000)["error"].is_null());
    assert_eq!((rx.submits().len(), pico.submits().len()), (1, 1), "each account's shares reach its own pool");
    // A rig that cannot mine its account's algorithm gets a clear error.
    let (_, reply) = login_as(&proxy, &b, &["rx/0"]);
    assert_eq!(error_of(&reply), "Unsupported algorithm cn-pico");
    // The pools table knows both, with their algorithms and dividers.
    let pools = http_get(api(&proxy), "/api/v1/pools", &auth()).json();
    let row = pools.as_array().unwrap().iter().find(|p| p["pool"] == pico.url()).cloned().unwrap();
    assert_eq!((row["algo"].as_str(), row["divider"].as_f64()), (Some("cn-pico"), Some(1.0)));
    // Metrics label the workers with their account (user), pool and algorithm.
    let metrics = http_get(api(&proxy), "/metrics", &auth()).body;
    let line = metrics.lines().find(|l| l.starts_with("proxy_worker_accepted") && l.contains(&b)).expect("worker series").to_string();
    assert!(line.contains(&format!("pool=\"{}\"", pico.url())) && line.contains("hash=\"cn-pico\""), "{line}");
}

#[test]
fn registrations_survive_a_restart_and_deletion_closes_the_accounts_miners() {
    let store = store_path("restart");
    let pool = MockPool::start(1000);
    let name = {
        let proxy = RunningProxy::start(accounts_config(&store));
        register(&proxy, &pool.url(), "bob", "bob-pass")
    };
    let proxy = RunningProxy::start(accounts_config(&store));
    let (mut m, reply) = login_as(&proxy, &name, &["rx/0"]);
    assert!(reply["error"].is_null(), "the account came back from the store: {reply}");
    assert!(m.submit(1, 5000)["error"].is_null());
    let r = http_send(api(&proxy), "DELETE", &format!("/api/v1/users/{name}"), "", &auth());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(m.closed_within(Duration::from_secs(3)), "the deleted account's miner is closed");
    assert!(wait_until(WAIT, || pool.state.lock().unwrap().closed_connections() >= 1), "and its upstream");
    let (_, reply) = login_as(&proxy, &name, &["rx/0"]);
    assert!(error_of(&reply).starts_with("Unknown account"));
    assert_eq!(http_send(api(&proxy), "DELETE", &format!("/api/v1/users/{name}"), "", &auth()).status, 404);
    drop(proxy);
    let proxy = RunningProxy::start(accounts_config(&store));
    let (_, reply) = login_as(&proxy, &name, &["rx/0"]);
    assert!(error_of(&reply).starts_with("Unknown account"), "the deletion was durable too");
}

#[test]
fn bad_registrations_get_clear_errors_and_writes_need_the_token() {
    let store = store_path("bad");
    let proxy = RunningProxy::start(accounts_config(&store));
    let post = |body: &str, extra: &str| http_send(api(&proxy), "POST", "/api/v1/users", body, extra);
    for (body, status, says) in [
        ("{not json", 400, "JSON"),
        (r#"{"user":"u","password":"p"}"#, 400, "pool"),
        (r#"{"pool":"nohost","user":"u","password":"p"}"#, 422, "host:port"),
        (r#"{"pool":"a:99999","user":"u","password":"p"}"#, 422, "port"),
        (&json!({"pool": "a:1", "user": "u".repeat(300), "password": "p"}).to_string(), 422, "256"),
        (r#"{"pool":"a:1","user":7,"password":"p"}"#, 400, "user"),
    ] {
        let r = post(body, &auth());
        assert_eq!(r.status, status, "{body}: {}", r.body);
        let v = r.json();
        assert_eq!(v["name"], "");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let good = r#"{"pool":"a:1","user":"u","password":"p"}"#;
    assert_eq!(post(good, "").status, 401, "no token");
    assert_eq!(post(good, "Authorization: Bearer wrong\r\n").status, 401);
    // Without a token configured, writes are off.
    let mut cfg = accounts_config(&store_path("bad2"));
    cfg.http.access_token = None;
    let open = RunningProxy::start(cfg);
    assert_eq!(http_send(open.http.unwrap(), "POST", "/api/v1/users", good, "").status, 403);
}

#[test]
fn a_failed_fsync_fails_the_registration_never_a_false_201() {
    let store = store_path("fsync");
    let proxy = RunningProxy::start_prepared(accounts_config(&store), |p| p.fail_next_store_sync());
    let body = r#"{"pool":"a:1","user":"u","password":"p"}"#;
    let r = http_send(api(&proxy), "POST", "/api/v1/users", body, &auth());
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("could not save"));
    let list = http_get(api(&proxy), "/api/v1/users", &auth()).json();
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing half-registered");
    // The next attempt works.
    assert_eq!(http_send(api(&proxy), "POST", "/api/v1/users", body, &auth()).status, 201);
}

#[test]
fn a_port_with_its_own_pools_serves_unregistered_logins_there() {
    let store = store_path("mixed");
    let own = MockPool::start(1000);
    let acct = MockPool::start(2000);
    let mut cfg = accounts_config(&store);
    cfg.pools = vec![pool(&own.url())];
    let proxy = RunningProxy::start(cfg);
    let name = register(&proxy, &acct.url(), "carol", "cp");
    let (plain, reply) = login_as(&proxy, "WALLET", &["rx/0"]);
    assert!(reply["error"].is_null());
    assert!(own.owns_job(&plain.job_id()));
    let (m, _) = login_as(&proxy, &name, &["rx/0"]);
    assert!(acct.owns_job(&m.job_id()), "accounts never share the port's upstream");
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn a_rig_leaving_is_its_accounts_last_activity() {
    // Otherwise the once-a-minute activity check would see the rig's last minute late, and
    // `expire-after` would count up to a minute of activity as idleness.
    let store = store_path("leave");
    let pool = MockPool::start(1000);
    let mut cfg = accounts_config(&store);
    cfg.accounts.expire_after_secs = 120;
    let proxy = RunningProxy::start(cfg);
    let name = register(&proxy, &pool.url(), "dave", "dave-pass");
    let last_active = || {
        let list = http_get(api(&proxy), "/api/v1/users", &auth()).json();
        list.as_array().unwrap().iter().find(|a| a["name"] == name.as_str()).expect("listed")["last_active"].as_u64().unwrap()
    };
    let (m, reply) = login_as(&proxy, &name, &["rx/0"]);
    assert!(reply["error"].is_null(), "{reply}");
    let logged_in = last_active();
    assert!(logged_in + 2 >= unix_now(), "the login is activity: {logged_in}");
    // Leave in a later second than the login, so the two can be told apart.
    assert!(wait_until(WAIT, || unix_now() > logged_in));
    drop(m);
    assert!(wait_until(WAIT, || last_active() > logged_in), "the rig leaving did not count as activity");
}

/// The `(worker, user)` labels of the `proxy_worker_accepted` series.
fn worker_labels(metrics: &str) -> Vec<(String, String)> {
    let label = |line: &str, key: &str| line.split(&format!("{key}=\"")).nth(1).and_then(|v| v.split('"').next()).unwrap_or("").to_string();
    let mut out: Vec<(String, String)> =
        metrics.lines().filter(|l| l.starts_with("proxy_worker_accepted{")).map(|l| (label(l, "worker"), label(l, "user"))).collect();
    out.sort();
    out
}

#[test]
fn metrics_label_an_account_logins_user_with_the_account_name() {
    let store = store_path("labels");
    let own = MockPool::start(1000);
    let acct = MockPool::start(1000);
    let mut cfg = accounts_config(&store);
    cfg.pools = vec![pool(&own.url())];
    let proxy = RunningProxy::start(cfg);
    let name = register(&proxy, &acct.url(), "frank", "fp");
    // No rig id: the worker is named after the whole login.
    let login = |user: &str| {
        let mut m = proxy.miner();
        m.send("login", json!({"login": user, "pass": "x", "agent": "XMRig/6.26.0", "algo": ["rx/0"]}));
        let reply = m.recv();
        assert!(reply["error"].is_null(), "{user}: {reply}");
        m.session = reply["result"]["id"].as_str().unwrap().to_string();
        m.job = reply["result"]["job"].clone();
        assert!(m.submit(1, 5000)["error"].is_null());
        m
    };
    let _rigs = [login(&format!("{name}.rig1")), login(&name), login("WALLET.rig7+5000")];
    let metrics = http_get(api(&proxy), "/metrics", &auth()).body;
    let mut want = vec![
        (format!("{name}.rig1"), name.clone()),
        (name.clone(), name.clone()),
        // Not an account: the login as the rig sent it, without its difficulty suffix.
        ("WALLET.rig7".to_string(), "WALLET.rig7".to_string()),
    ];
    want.sort();
    assert_eq!(worker_labels(&metrics), want, "{metrics}");
}

#[test]
fn api_v1_refusals_have_the_accounts_apis_shape_and_the_monitoring_api_keeps_xmrigs() {
    let store = store_path("refusals");
    let proxy = RunningProxy::start(accounts_config(&store));
    let body = r#"{"pool":"a:1","user":"u","password":"p"}"#;
    let refusals = [
        http_send(api(&proxy), "POST", "/api/v1/users", body, ""),
        http_send(api(&proxy), "POST", "/api/v1/users", body, "Authorization: Bearer wrong\r\n"),
        http_get(api(&proxy), "/api/v1/users", ""),
        http_send(api(&proxy), "DELETE", "/api/v1/users/0123456789abcdef", "", "Authorization: Bearer wrong\r\n"),
    ];
    for r in &refusals {
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.head.contains("WWW-Authenticate: Bearer"), "{}", r.head);
        let v = r.json();
        assert_eq!(v["name"], "", "{v}");
        assert!(v.get("status").is_none(), "{v}");
        let why = v["error"].as_str().unwrap();
        assert!(why.contains("missing or wrong access token") && why.contains("Authorization: Bearer TOKEN"), "{why}");
        assert!(!r.body.contains(TOKEN), "the token is never echoed");
    }
    // The xmrig-proxy endpoints answer exactly as xmrig-proxy does.
    for path in ["/1/summary", "/2/workers", "/metrics", "/api/v1x"] {
        let r = http_get(api(&proxy), path, "Authorization: Bearer wrong\r\n");
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.body, "{\n    \"status\": 401,\n    \"error\": \"UNAUTHORIZED\"\n}", "{path}");
    }
    // A token that may read but not write: 403, in the accounts API's shape as well.
    let mut cfg = accounts_config(&store_path("refusals-admin"));
    cfg.http.admin_token = Some("admin-token-value".into());
    let admin = RunningProxy::start(cfg);
    let r = http_send(api(&admin), "POST", "/api/v1/users", body, &auth());
    assert_eq!(r.status, 403, "{}", r.body);
    let v = r.json();
    assert!(v["name"] == "" && v["error"].as_str().unwrap().contains("admin-token"), "{v}");
    assert_eq!(http_get(api(&admin), "/api/v1/users", &auth()).status, 200, "the access token still reads");
}
