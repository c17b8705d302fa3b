//! The body of a registration request (`POST /users`), checked without I/O.
//!
//! The body is parsed into a `serde_json::Value` first and the fields are picked out by
//! hand, so every error can name the field it is about and no error ever quotes a value
//! the user sent, except the pool address (which is not a secret). The password is never
//! part of a message.

use serde_json::{Map, Value};
use std::fmt;

/// The longest `user` and `password` accepted, in bytes.
pub const MAX_CREDENTIAL_LEN: usize = 256;
/// The longest `pool` accepted (after an optional `stratum+tcp://` prefix), in bytes.
pub const MAX_POOL_LEN: usize = 255;
/// The longest `algo` accepted, in bytes.
pub const MAX_ALGO_LEN: usize = 32;

/// The scheme a pool address may carry; it is dropped.
const TCP_SCHEME: &str = "stratum+tcp://";

/// A checked registration: where to mine and with which credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Registration {
    /// `host:port`, scheme stripped, host in lowercase, port without leading zeros.
    pub pool: String,
    /// The pool login; never empty.
    pub user: String,
    /// The pool password; may be empty.
    pub password: String,
    /// The algorithm the miner should be told, if the user named one.
    pub algo: Option<String>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("pool", &self.pool)
            .field("user", &self.user)
            .field("password", &"********")
            .field("algo", &self.algo)
            .finish()
    }
}

/// Why a registration body was refused: the HTTP status to answer and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegError {
    /// 400 when the body is not the expected JSON shape, 422 when a value is unacceptable.
    pub status: u16,
    /// For the user; names the field, never quotes the password.
    pub message: String,
}

impl RegError {
    fn bad_request(message: String) -> RegError {
        RegError { status: 400, message }
    }

    fn unprocessable(message: String) -> RegError {
        RegError { status: 422, message }
    }

    /// The answer body in the seed proxy's shape: `{"name": "", "error": message}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "name": "", "error": self.message })
    }
}

impl fmt::Display for RegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for RegError {}

/// Parses and checks `{"pool": "host:port", "user": "...", "password": "...", "algo": "..."}`.
/// `algo` may be absent or null; other unknown keys are ignored.
pub fn parse_registration(body: &[u8]) -> Result<Registration, RegError> {
    // serde's syntax errors give a position and a category, never the text around it.
    let value: Value = serde_json::from_slice(body).map_err(|e| RegError::bad_request(format!("invalid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(RegError::bad_request(format!(
            "the body must be a JSON object like {{\"pool\": \"host:port\", \"user\": \"...\", \"password\": \"...\"}}, not {}",
            kind(&value)
        )));
    };
    let pool = string_field(&obj, "pool")?;
    let user = string_field(&obj, "user")?;
    let password = string_field(&obj, "password")?;
    let algo = match obj.get("algo") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => return Err(RegError::bad_request(format!("field \"algo\" must be a string or null, not {}", kind(other)))),
    };

    check_text("user", user, MAX_CREDENTIAL_LEN)?;
    if user.is_empty() {
        return Err(RegError::unprocessable("user must not be empty".into()));
    }
    check_text("password", password, MAX_CREDENTIAL_LEN)?;
    let pool = parse_pool(pool)?;
    let algo = match algo {
        Some(a) => Some(parse_algo(a)?),
        None => None,
    };
    Ok(Registration { pool, user: user.to_string(), password: password.to_string(), algo })
}

fn string_field<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, RegError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(RegError::bad_request(format!("field \"{field}\" must be a string, not {}", kind(other)))),
        None => Err(RegError::bad_request(format!("missing field \"{field}\""))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Length and control characters; the message names the field and never the value.
fn check_text(field: &str, value: &str, max: usize) -> Result<(), RegError> {
    if value.len() > max {
        return Err(RegError::unprocessable(format!("{field} is too long: {} bytes, the limit is {max}", value.len())));
    }
    if let Some(at) = value.char_indices().find(|(_, c)| c.is_control()).map(|(i, _)| i) {
        return Err(RegError::unprocessable(format!("{field} contains a control character (at byte {at})")));
    }
    Ok(())
}

/// `[stratum+tcp://]host:port` to `host:port`, host lowercased (names are case-blind, and
/// the same pool spelled twice should register once), port 1..65535.
fn parse_pool(raw: &str) -> Result<String, RegError> {
    let addr = match raw.get(..TCP_SCHEME.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(TCP_SCHEME) => &raw[TCP_SCHEME.len()..],
        _ => raw,
    };
    check_text("pool", addr, MAX_POOL_LEN)?;
    let bad = |why: &str| RegError::unprocessable(format!("pool must be host:port or stratum+tcp://host:port ({why}), got \"{raw}\""));
    if addr.contains("://") {
        return Err(bad("no other scheme is supported"));
    }
    let Some((host, port)) = addr.rsplit_once(':') else { return Err(bad("no port")) };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the port must be a number"));
    }
    let port = port.trim_start_matches('0');
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => return Err(bad("the port must be 1 to 65535")),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let ok = inner.strip_suffix(']').is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        if !ok {
            return Err(bad("a bracketed host must be an IPv6 address"));
        }
    } else if host.contains(':') {
        return Err(bad("an IPv6 address needs brackets, as in [::1]:3333"));
    } else if !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
        return Err(bad("the host may hold only letters, digits, '-', '.' and '_'"));
    }
    Ok(format!("{}:{port}", host.to_ascii_lowercase()))
}

/// Algorithm names as xmrig spells them (`rx/0`, `cn/r`, `argon2/chukwav2`).
fn parse_algo(algo: &str) -> Result<String, RegError> {
    check_text("algo", algo, MAX_ALGO_LEN)?;
    if algo.is_empty() || !algo.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.')) {
        return Err(RegError::unprocessable(format!(
            "algo must be an algorithm name such as \"rx/0\" (letters, digits, '/', '-', '_', '.'), got \"{algo}\""
        )));
    }
    Ok(algo.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-P4ss";

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn refused(b: &[u8]) -> RegError {
        let e = parse_registration(b).unwrap_err();
        assert!(!e.message.contains(SECRET), "the password leaked into {:?}", e.message);
        e
    }

    fn refused_json(v: Value) -> RegError {
        refused(&body(v))
    }

    fn good() -> Value {
        serde_json::json!({"pool": "pool.example.com:3333", "user": "wallet1", "password": SECRET})
    }

    fn with(key: &str, v: Value) -> Value {
        let mut g = good();
        g[key] = v;
        g
    }

    fn without(key: &str) -> Value {
        let mut g = good();
        g.as_object_mut().unwrap().remove(key);
        g
    }

    #[test]
    fn a_good_body_parses() {
        let r = parse_registration(&body(good())).unwrap();
        assert_eq!(r, Registration { pool: "pool.example.com:3333".into(), user: "wallet1".into(), password: SECRET.into(), algo: None });
        let r = parse_registration(&body(with("algo", "rx/0".into()))).unwrap();
        assert_eq!(r.algo.as_deref(), Some("rx/0"));
        let r = parse_registration(&body(with("algo", Value::Null))).unwrap();
        assert_eq!(r.algo, None, "null is the same as absent");
        let r = parse_registration(&body(with("password", "".into()))).unwrap();
        assert_eq!(r.password, "", "an empty password is allowed");
        assert!(parse_registration(&body(with("extra", 1.into()))).is_ok(), "unknown keys are ignored");
    }

    #[test]
    fn pool_addresses_are_normalised() {
        for (given, stored) in [
            ("stratum+tcp://pool.example.com:3333", "pool.example.com:3333"),
            ("STRATUM+TCP://Pool.Example.COM:3333", "pool.example.com:3333"),
            ("127.0.0.1:03333", "127.0.0.1:3333"),
            ("[::1]:1", "[::1]:1"),
            ("my_pool-1:65535", "my_pool-1:65535"),
        ] {
            assert_eq!(parse_registration(&body(with("pool", given.into()))).unwrap().pool, stored, "{given}");
        }
    }

    #[test]
    fn json_and_shape_errors_are_400() {
        let e = refused(b"{\"pool\": ");
        assert_eq!(e.status, 400);
        assert!(e.message.starts_with("invalid JSON: ") && e.message.contains("line 1 column"), "{}", e.message);
        let e = refused(format!("{{\"password\": \"{SECRET}\", \"user\": 1,}}").as_bytes());
        assert_eq!(e.status, 400, "trailing comma");
        assert!(e.message.contains("column"), "{}", e.message);
        let e = refused(b"");
        assert_eq!((e.status, e.message.starts_with("invalid JSON")), (400, true));

        let e = refused(b"[1, 2]");
        assert_eq!(e.status, 400);
        assert!(e.message.contains("must be a JSON object") && e.message.ends_with("not an array"), "{}", e.message);

        for field in ["pool", "user", "password"] {
            assert_eq!(refused_json(without(field)), RegError { status: 400, message: format!("missing field \"{field}\"") });
            let e = refused_json(with(field, 5.into()));
            assert_eq!(e, RegError { status: 400, message: format!("field \"{field}\" must be a string, not a number") });
        }
        let e = refused_json(with("password", serde_json::json!([SECRET])));
        assert_eq!(e.message, "field \"password\" must be a string, not an array");
        let e = refused_json(with("algo", true.into()));
        assert_eq!(e, RegError { status: 400, message: "field \"algo\" must be a string or null, not a boolean".into() });
    }

    #[test]
    fn bad_pools_are_422_and_say_why() {
        for (pool, why) in [
            ("pool.example.com", "no port"),
            ("pool.example.com:", "the port must be a number"),
            ("pool.example.com:33a", "the port must be a number"),
            ("pool.example.com:-1", "the port must be a number"),
            ("pool.example.com:0", "the port must be 1 to 65535"),
            ("pool.example.com:65536", "the port must be 1 to 65535"),
            ("pool.example.com:99999999999999999999", "the port must be 1 to 65535"),
            (":3333", "no host"),
            ("stratum+tcp://:3333", "no host"),
            ("stratum+ssl://pool.example.com:3333", "no other scheme is supported"),
            ("::1:3333", "an IPv6 address needs brackets"),
            ("[nothost]:3333", "a bracketed host must be an IPv6 address"),
            ("pool example.com:3333", "the host may hold only"),
            ("pool.example.com/x:3333", "the host may hold only"),
        ] {
            let e = refused_json(with("pool", pool.into()));
            assert_eq!(e.status, 422, "{pool}");
            assert!(e.message.starts_with("pool must be host:port") && e.message.contains(why), "{pool}: {}", e.message);
            assert!(e.message.contains(&format!("got \"{pool}\"")), "the pool is quoted: {}", e.message);
        }
    }

    #[test]
    fn values_that_are_too_long_name_the_field_and_limit() {
        let long = |n: usize| Value::String("a".repeat(n));
        assert!(parse_registration(&body(with("user", long(256)))).is_ok());
        assert!(parse_registration(&body(with("password", long(256)))).is_ok());
        assert!(parse_registration(&body(with("pool", Value::String(format!("{}:1", "a".repeat(253)))))).is_ok());
        assert!(parse_registration(&body(with("algo", long(32)))).is_ok());
        for (field, value, msg) in [
            ("user", long(257), "user is too long: 257 bytes, the limit is 256"),
            ("password", Value::String(SECRET.repeat(40)), "password is too long: 440 bytes, the limit is 256"),
            ("pool", Value::String(format!("{}:1", "a".repeat(254))), "pool is too long: 256 bytes, the limit is 255"),
            ("algo", long(33), "algo is too long: 33 bytes, the limit is 32"),
        ] {
            assert_eq!(refused_json(with(field, value)), RegError { status: 422, message: msg.into() });
        }
        // Multi-byte characters count in bytes, as they are stored.
        let e = refused_json(with("user", Value::String("é".repeat(129))));
        assert_eq!(e.message, "user is too long: 258 bytes, the limit is 256");
    }

    #[test]
    fn control_characters_and_odd_values_are_refused() {
        for (field, value, msg) in [
            ("user", "wal\nlet", "user contains a control character (at byte 3)"),
            ("password", "s3cr3t-P4ss\u{7f}", "password contains a control character (at byte 11)"),
            ("password", "\u{0}s3cr3t-P4ss", "password contains a control character (at byte 0)"),
            ("pool", "pool\t.example.com:3333", "pool contains a control character (at byte 4)"),
            ("algo", "rx/0\u{85}", "algo contains a control character (at byte 4)"),
            ("user", "", "user must not be empty"),
        ] {
            assert_eq!(refused_json(with(field, value.into())), RegError { status: 422, message: msg.into() }, "{field}");
        }
        for algo in ["", "rx 0", "rx/0;drop"] {
            let e = refused_json(with("algo", algo.into()));
            assert_eq!(e.status, 422);
            assert!(e.message.starts_with("algo must be an algorithm name"), "{}", e.message);
        }
    }

    #[test]
    fn the_password_never_shows() {
        let r = parse_registration(&body(good())).unwrap();
        assert!(!format!("{r:?}").contains(SECRET));
        // Errors about other fields, with the password present and odd, still do not quote it.
        for v in [with("pool", "x".into()), with("user", "".into()), with("password", Value::String(format!("{SECRET}\n")))] {
            refused_json(v);
        }
        let e = refused(format!("{{\"password\": \"{SECRET}\u{1}\"}}").as_bytes());
        assert_eq!(e.status, 400, "a raw control character is a JSON syntax error: {}", e.message);
        assert_eq!(RegError { status: 422, message: "m".into() }.to_json(), serde_json::json!({"name": "", "error": "m"}));
    }
}
