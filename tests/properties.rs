//! Property tests for the three parsers that read untrusted input: miner lines, HTTP
//! requests and config files. None may panic, and what they accept must mean what it said.

use proptest::prelude::*;
use serde_json::{Value, json};
use stratum_proxy::config;
use stratum_proxy::http::{self, Parsed};
use stratum_proxy::stratum::request::{self, Method};

/// Arbitrary JSON values a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map("[a-z_-]{1,12}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn stratum_lines_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = request::parse(&bytes);
    }

    #[test]
    fn any_json_request_parses_or_is_refused_without_panic(v in json_value()) {
        let _ = request::parse(v.to_string().as_bytes());
    }

    #[test]
    fn submits_keep_their_fields(id in 0u64..1_000_000, session in "[0-9a-f]{16}", job in "[ -~]{1,40}",
                                  nonce in "[0-9a-f]{8}", result in "[0-9a-f]{64}") {
        let line = json!({"id": id, "jsonrpc": "2.0", "method": "submit",
                          "params": {"id": session, "job_id": job, "nonce": nonce, "result": result}}).to_string();
        let req = request::parse(line.as_bytes()).expect("a well-formed submit parses");
        prop_assert_eq!(req.id.to_string(), id.to_string());
        match req.method {
            Method::Submit(s) => {
                prop_assert_eq!(s.session, session);
                prop_assert_eq!(s.job_id, job);
                prop_assert_eq!(s.nonce, nonce);
                prop_assert_eq!(s.result, result);
            }
            other => prop_assert!(false, "parsed as {:?}", other),
        }
    }

    #[test]
    fn logins_keep_the_wallet_and_echo_string_ids(id in "[ -~]{0,20}", wallet in "[A-Za-z0-9+.]{1,100}") {
        let line = json!({"id": id, "method": "login", "params": {"login": wallet, "pass": "x"}}).to_string();
        let req = request::parse(line.as_bytes()).expect("a well-formed login parses");
        prop_assert_eq!(serde_json::from_str::<Value>(req.id).unwrap(), json!(id));
        match req.method {
            Method::Login(l) => prop_assert_eq!(l.login.as_deref(), Some(wallet.as_str())),
            other => prop_assert!(false, "parsed as {:?}", other),
        }
    }

    #[test]
    fn http_bytes_never_panic_and_never_overrun(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Parsed::Complete(r) = http::parse(&bytes) {
            prop_assert!(r.len <= bytes.len());
        }
    }

    #[test]
    fn http_requests_split_anywhere_parse_the_same(path in "/[a-z0-9/]{0,30}", token in "[A-Za-z0-9]{0,20}", cut in 0usize..200) {
        let raw = format!("GET {path}?q=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {token}\r\n\r\n");
        let cut = cut.min(raw.len());
        if cut < raw.len() {
            prop_assert_eq!(http::parse(&raw.as_bytes()[..cut]), Parsed::Partial);
        }
        match http::parse(raw.as_bytes()) {
            Parsed::Complete(r) => {
                prop_assert_eq!(r.path, path);
                prop_assert_eq!(r.len, raw.len());
                let want = format!("Bearer {token}");
                prop_assert_eq!(r.authorization.as_deref().map(str::trim), Some(want.trim()));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn config_files_never_panic(v in json_value()) {
        let _ = config::parse_str(&v.to_string());
    }

    #[test]
    fn config_errors_name_a_field_for_wrong_types(key in prop::sample::select(vec![
        "mode", "bind", "pools", "http", "custom-diff", "retries", "retry-pause", "reuse-timeout", "workers", "rate-limit", "access-password",
    ]), v in json_value()) {
        let text = json!({ key: v }).to_string();
        if let Err(e) = config::parse_str(&text) {
            prop_assert!(e.to_string().contains(key) || !e.field.is_empty(), "error without a field: {}", e);
        }
    }
}
