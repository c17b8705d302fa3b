//! The monitoring API's safe defaults, as an operator meets them: who may write, the warning
//! for an open API beyond loopback, and a flood of stuck clients that costs a few log lines
//! and a counter instead of a line per connection.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratum_proxy::config::Mode;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_stratum-proxy");

/// The binary with its stderr lines gathered as they come.
struct Binary {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Binary {
    /// Starts the binary on a config file holding `config` and waits for its API address.
    fn start(tag: &str, config: serde_json::Value) -> (Binary, SocketAddr) {
        let dir = std::env::temp_dir().join(format!("sp-safety-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let mut child =
            Command::new(BIN).args(["-c", path.to_str().unwrap()]).env("RUST_LOG", "info").stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let bin = Binary { child, lines, reader: Some(reader) };
        let mut api = None;
        let found = wait_until(WAIT, || {
            api = bin.lines().iter().find_map(|l| l.split("HTTP API on http://").nth(1)?.split_whitespace().next().map(str::to_string));
            api.is_some()
        });
        assert!(found, "no API address logged: {:?}", bin.lines());
        std::fs::remove_dir_all(&dir).unwrap();
        (bin, api.unwrap().parse().unwrap())
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// SIGTERM, wait for the exit, and every line it wrote.
    fn stop(mut self) -> Vec<String> {
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
        assert!(self.child.wait().unwrap().success());
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        self.lines()
    }
}

fn binary_config(pool: &MockPool, http: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"bind": ["127.0.0.1:0"], "pools": [{"url": pool.url()}], "http": http})
}

#[test]
fn an_open_api_beyond_loopback_is_warned_about_at_start() {
    let pool = MockPool::start(1000);
    let (open, _) = Binary::start("open", binary_config(&pool, serde_json::json!({"enabled": true, "host": "0.0.0.0", "port": 0})));
    let lines = open.stop();
    let warning = lines.iter().find(|l| l.contains("WARN") && l.contains("without a token")).expect("a warning");
    assert!(warning.contains("0.0.0.0:") && warning.contains("IP addresses") && warning.contains("worker names"), "{warning}");
    assert!(warning.contains("pool URLs and their state"), "{warning}");

    let token = serde_json::json!({"enabled": true, "host": "0.0.0.0", "port": 0, "access-token": "s3cret-token"});
    let (closed, _) = Binary::start("token", binary_config(&pool, token));
    let lines = closed.stop();
    assert!(!lines.iter().any(|l| l.contains("without a token")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("s3cret-token")), "the token is never logged: {lines:?}");

    let (local, _) = Binary::start("local", binary_config(&pool, serde_json::json!({"enabled": true, "host": "127.0.0.1", "port": 0})));
    let lines = local.stop();
    assert!(!lines.iter().any(|l| l.contains("without a token")), "loopback is the safe default: {lines:?}");
}

/// One connection that reads the whole reply; `None` when it got nothing.
fn status_of_fresh_connection(addr: SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(WAIT)).ok()?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    Some(parse_http(&String::from_utf8_lossy(&raw)).status).filter(|&s| s != 0)
}

#[test]
fn a_flood_of_stuck_clients_is_counted_and_logged_in_a_few_lines() {
    const FLOOD: usize = 1000;
    let pool = MockPool::start(1000);
    let (bin, api) = Binary::start("flood", binary_config(&pool, serde_json::json!({"enabled": true, "host": "127.0.0.1", "port": 0})));
    // Every client slot taken by a connection that never sends its request.
    let stuck: Vec<TcpStream> = (0..32).map(|_| TcpStream::connect(api).unwrap()).collect();
    // The 33rd is refused once the proxy has taken the 32: wait for that, then flood.
    let mut refused = 0;
    assert!(wait_until(WAIT, || {
        let s = status_of_fresh_connection(api);
        refused += usize::from(s == Some(503));
        s == Some(503)
    }));
    for _ in 1..FLOOD {
        assert_eq!(status_of_fresh_connection(api), Some(503), "refused with 503 while every slot is busy");
        refused += 1;
    }
    let lines = bin.lines();
    let single = lines.iter().filter(|l| l.contains("refused: 32 clients already connected")).count();
    assert_eq!(single, 3, "the first few refusals are logged on their own: {:?}", &lines[..lines.len().min(20)]);

    drop(stuck);
    let mut metrics = None;
    assert!(wait_until(WAIT, || {
        let r = http_get(api, "/metrics", "");
        refused += usize::from(r.status == 503);
        metrics = Some(r).filter(|r| r.status == 200);
        metrics.is_some()
    }));
    let body = metrics.unwrap().body;
    let counter = body.lines().find_map(|l| l.strip_prefix("proxy_http_refused_total ")).expect("counter exported");
    assert_eq!(counter.parse::<f64>().unwrap() as usize, refused, "every refusal counted");
    assert!(body.contains("# TYPE proxy_http_refused_total counter"));

    // One summary line once the 10 s interval that began with the first refusal is over.
    let summary = |lines: &[String]| lines.iter().find(|l| l.contains("HTTP: refused ")).cloned();
    assert!(wait_until(Duration::from_secs(15), || summary(&bin.lines()).is_some()), "no summary line");
    let lines = bin.stop();
    let line = summary(&lines).unwrap();
    let grouped = format!("{},{:03}", refused / 1000, refused % 1000);
    assert!(line.contains(&format!("refused {grouped} connections in the last 1")) && line.contains("clients busy"), "{line}");
    let about_refusals = lines.iter().filter(|l| l.contains("refused")).count();
    assert_eq!(about_refusals, 4, "three single lines and one summary for {refused} refusals");
}

#[test]
fn writes_need_the_admin_token_when_one_is_set() {
    let pool = MockPool::start(1000);
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.http.enabled = true;
    cfg.http.access_token = Some("reader".into());
    cfg.http.admin_token = Some("admin".into());
    cfg.http.restricted = false;
    let proxy = RunningProxy::start(cfg);
    let api = proxy.http.unwrap();
    let post = |auth: &str| {
        http_raw(api, format!("POST /1/summary HTTP/1.1\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).status
    };
    assert_eq!(post(""), 401);
    assert_eq!(post("Authorization: Bearer reader\r\n"), 403, "restricted: false does not let the read token write");
    assert_eq!(post("Authorization: Bearer admin\r\n"), 405, "the admin token passes; no endpoint writes yet");
    assert_eq!(http_get(api, "/1/summary", "Authorization: Bearer admin\r\n").status, 200);
    assert_eq!(http_get(api, "/1/summary", "Authorization: Bearer reader\r\n").status, 200);
    assert_eq!(http_get(api, "/1/summary", "").status, 401);
}

#[test]
fn without_an_admin_token_restricted_false_lets_the_access_token_write() {
    let pool = MockPool::start(1000);
    let mut cfg = config(Mode::NiceHash, &[pool.url()]);
    cfg.http.enabled = true;
    cfg.http.access_token = Some("reader".into());
    cfg.http.restricted = false;
    let proxy = RunningProxy::start(cfg);
    let api = proxy.http.unwrap();
    let post = |auth: &str| {
        http_raw(api, format!("DELETE /1/summary HTTP/1.1\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).status
    };
    assert_eq!(post("Authorization: Bearer reader\r\n"), 405, "allowed through; no endpoint writes yet");
    assert_eq!(post(""), 401);
}
