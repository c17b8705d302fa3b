//! The dashboard page and the minute history it draws, over loopback: the page loads
//! without a token while the data stays behind it, holds nothing from elsewhere, and
//! /1/history has the minute in progress as soon as shares come in.

mod support;

use serde_json::Value;
use stratum_proxy::config::{Config, Mode};
use support::*;

fn api_config(pool: &MockPool, token: Option<&str>) -> Config {
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.http.enabled = true;
    cfg.http.access_token = token.map(str::to_string);
    cfg
}

#[test]
fn the_page_loads_without_a_token_and_the_data_does_not() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(api_config(&pool, Some("pagetok")));
    let api = proxy.http.unwrap();
    let page = http_get(api, "/", "");
    assert_eq!(page.status, 200);
    assert!(page.head.contains("Content-Type: text/html; charset=utf-8"), "{}", page.head);
    assert!(page.body.contains(r#"<body data-auth="token">"#), "the page knows to ask for the token first");
    assert!(!page.body.contains("pagetok"), "the token is not in the page");
    for path in ["/1/summary", "/1/workers", "/1/history", "/metrics"] {
        assert_eq!(http_get(api, path, "").status, 401, "{path}");
        assert_eq!(http_get(api, path, "Authorization: Bearer pagetok\r\n").status, 200, "{path}");
    }

    let open = RunningProxy::start(api_config(&pool, None));
    assert!(http_get(open.http.unwrap(), "/", "").body.contains(r#"<body data-auth="open">"#));
}

#[test]
fn the_page_is_self_contained_and_small() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(api_config(&pool, None));
    let body = http_get(proxy.http.unwrap(), "/", "").body;
    assert!(body.len() < 40 * 1024, "{} bytes", body.len());
    let lower = body.to_lowercase();
    // The only absolute URL is the SVG namespace, which is a name, not a fetch.
    assert_eq!(lower.matches("http://").count(), lower.matches("http://www.w3.org/2000/svg").count());
    assert!(!lower.contains("https://"));
    assert!(!lower.contains("<script src") && !lower.contains("<link rel=\"stylesheet\"") && !lower.contains("@import"));
    assert!(lower.contains("content-security-policy") && lower.contains("default-src 'none'"));
    assert!(lower.contains("name=\"viewport\""), "usable on a phone");
}

#[test]
fn history_has_the_minute_in_progress_with_its_shares() {
    let pool = MockPool::start(1000);
    let proxy = RunningProxy::start(api_config(&pool, None));
    let api = proxy.http.unwrap();
    let mut m = proxy.miner();
    m.login();
    for i in 0..3 {
        assert!(m.submit(i, 5000)["error"].is_null());
    }
    // The minute in progress appears once a second of uptime has passed.
    let mut h = Value::Null;
    assert!(wait_until(WAIT, || {
        h = http_get(api, "/1/history", "").json();
        h["history"].as_array().is_some_and(|r| !r.is_empty())
    }));
    assert_eq!(h["interval"], 60);
    assert_eq!(h["format"], serde_json::json!(["time", "hashrate", "miners", "accepted", "rejected"]));
    assert_eq!(h["partial"], true);
    let rows = h["history"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "a young proxy has only the minute in progress");
    let row = rows[0].as_array().unwrap();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let at = row[0].as_u64().unwrap();
    assert!(at <= now_ms && now_ms - at < 5_000, "time is Unix ms of now: {at} vs {now_ms}");
    assert!(row[1].as_f64().unwrap() > 0.0, "3 shares at difficulty 1000 give a rate: {row:?}");
    assert_eq!((row[2].as_u64(), row[3].as_u64(), row[4].as_u64()), (Some(1), Some(3), Some(0)));
}
