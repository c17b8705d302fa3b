//! Parsing what a miner sends. A line that is not a JSON object with a method is a
//! `Malformed` line (the caller closes the connection); a well-formed request with bad
//! params still parses, so the miner gets the precise error.

use serde_json::Value;

/// A request id as the miner wrote it (JSON text: `1`, `"a"`, `null`), echoed back verbatim.
/// cpuminer reuses one id for every submit, so ids never correlate anything upstream.
pub type RequestId = Box<str>;

/// Login parameters (RFC 6.1), before any checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Login {
    /// `params.login`, if it is a non-empty string.
    pub login: Option<String>,
    pub pass: String,
    pub agent: String,
    pub rigid: Option<String>,
    /// `params.algo` names (the miner can mine any of them); empty when absent.
    pub algos: Vec<String>,
}

/// Submit parameters as raw strings; validated by the proxy, which knows the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submit {
    pub session: String,
    pub job_id: String,
    pub nonce: String,
    pub result: String,
}

/// What a miner asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Login(Login),
    Submit(Submit),
    Keepalive,
    Other(String),
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: RequestId,
    pub method: Method,
}

/// Longest field value kept from a login; longer values are cut (they only label things).
const MAX_LABEL: usize = 256;

/// Parses one line. `None` means the line is not a stratum request at all.
pub fn parse(line: &[u8]) -> Option<Request> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let obj = v.as_object()?;
    let method = obj.get("method")?.as_str()?;
    let id = obj.get("id").unwrap_or(&Value::Null);
    if !(id.is_number() || id.is_string() || id.is_null()) {
        return None;
    }
    let id = serde_json::to_string(id).ok()?.into_boxed_str();
    let params = obj.get("params").unwrap_or(&Value::Null);
    let method = match method {
        "login" => Method::Login(login(params)),
        "submit" => Method::Submit(submit(params)),
        "keepalived" => Method::Keepalive,
        other => Method::Other(label(other)),
    };
    Some(Request { id, method })
}

fn string_at<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str)
}

fn label(s: &str) -> String {
    let mut end = s.len().min(MAX_LABEL);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn login(params: &Value) -> Login {
    let algos = match params.get("algo") {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).take(64).map(label).collect(),
        _ => Vec::new(),
    };
    Login {
        login: string_at(params, "login").filter(|s| !s.is_empty()).map(label),
        pass: string_at(params, "pass").map(label).unwrap_or_default(),
        agent: string_at(params, "agent").map(label).unwrap_or_default(),
        rigid: string_at(params, "rigid").filter(|s| !s.is_empty()).map(label),
        algos,
    }
}

fn submit(params: &Value) -> Submit {
    // A field of the wrong JSON type reads as empty, which fails its own check below with
    // the matching error ("Missing job id", "Invalid nonce", ...).
    let field = |k: &str| string_at(params, k).map(label).unwrap_or_default();
    Submit { session: field("id"), job_id: field("job_id"), nonce: field("nonce"), result: field("result") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_xmrig_login() {
        let line = br#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"farm-worker","pass":"x","agent":"XMRig/6.26.0","rigid":"rig7","algo":["cn/0","rx/0"]}}"#;
        let r = parse(line).unwrap();
        assert_eq!(&*r.id, "1");
        let Method::Login(l) = r.method else { panic!("not a login") };
        assert_eq!(l.login.as_deref(), Some("farm-worker"));
        assert_eq!(l.rigid.as_deref(), Some("rig7"));
        assert_eq!(l.algos, ["cn/0", "rx/0"]);
    }

    #[test]
    fn parses_submit_and_keeps_string_ids() {
        let line = br#"{"id":"abc","method":"submit","params":{"id":"s","job_id":"j","nonce":"1c1400eb","result":"00"}}"#;
        let r = parse(line).unwrap();
        assert_eq!(&*r.id, "\"abc\"");
        assert_eq!(
            r.method,
            Method::Submit(Submit { session: "s".into(), job_id: "j".into(), nonce: "1c1400eb".into(), result: "00".into() })
        );
    }

    #[test]
    fn wrong_types_read_as_empty() {
        let r = parse(br#"{"id":2,"method":"submit","params":{"id":1,"job_id":[],"nonce":5}}"#).unwrap();
        assert_eq!(r.method, Method::Submit(Submit::default()));
        let r = parse(br#"{"id":2,"method":"login","params":{"login":7}}"#).unwrap();
        assert!(matches!(r.method, Method::Login(Login { login: None, .. })));
        let r = parse(br#"{"id":2,"method":"login","params":"x"}"#).unwrap();
        assert!(matches!(r.method, Method::Login(Login { login: None, .. })));
    }

    #[test]
    fn non_requests_are_none() {
        assert!(parse(b"{not json").is_none());
        assert!(parse(b"[1,2]").is_none());
        assert!(parse(br#"{"id":1}"#).is_none());
        assert!(parse(br#"{"id":{},"method":"login"}"#).is_none());
        assert!(parse(b"\x00\xff\xfe").is_none());
    }

    #[test]
    fn unknown_methods_are_named() {
        let r = parse(br#"{"id":9,"method":"getjob","params":{}}"#).unwrap();
        assert_eq!(r.method, Method::Other("getjob".into()));
    }
}
