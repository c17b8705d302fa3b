//! Parsing pool lines: replies to our requests (correlated by our own numeric ids) and
//! job pushes. Share answers arrive thousands of times a second, so a line is read into a
//! borrowed envelope first and only the parts that matter become JSON values.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// One line from a pool, borrowing from it.
#[derive(Debug, Clone)]
pub enum PoolMessage<'a> {
    /// An answer to request `id`: its raw result, or the pool's error message.
    Reply { id: u64, result: Result<&'a RawValue, String> },
    /// A `job` push (its params, validated later).
    Job(Value),
    /// Anything else, by method name (ignored with a debug log).
    Other(String),
}

/// A successful login.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginOk {
    pub session: String,
    pub job: Option<Value>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// Parses one pool line; `Err` names what is wrong with it.
pub fn parse(line: &[u8]) -> Result<PoolMessage<'_>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    if !text.trim_start().starts_with('{') {
        return Err("not a JSON object".into());
    }
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if let Some(method) = env.method {
        if method == "job" {
            let params = env.params.map(RawValue::get).unwrap_or("null");
            return Ok(PoolMessage::Job(serde_json::from_str(params).map_err(|e| format!("invalid job: {e}"))?));
        }
        return Ok(PoolMessage::Other(method.chars().take(64).collect()));
    }
    let id = env.id.and_then(|raw| raw.get().parse::<u64>().ok()).ok_or("reply without a numeric id")?;
    let result = match env.error {
        None => Ok(env.result.unwrap_or(RawValue::NULL)),
        Some(err) => Err(error_message(err)),
    };
    Ok(PoolMessage::Reply { id, result })
}

fn error_message(err: &RawValue) -> String {
    let v: Value = serde_json::from_str(err.get()).unwrap_or(Value::Null);
    let msg = match v.get("message").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => v.to_string(),
    };
    msg.chars().take(256).collect()
}

/// Reads a login result: the pool's session id and its first job.
pub fn parse_login(result: &RawValue) -> Result<LoginOk, String> {
    let result: Value = serde_json::from_str(result.get()).map_err(|e| format!("invalid login result: {e}"))?;
    let session = result.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or("login reply has no session id")?;
    if session.len() > 256 {
        return Err("session id too long".into());
    }
    Ok(LoginOk { session: session.to_string(), job: result.get("job").filter(|j| !j.is_null()).cloned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_captured_login_reply() {
        let line = br#"{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"63bfe6e4","job":{"blob":"00","job_id":"1-1","target":"711b0d00"},"extensions":["algo"],"status":"OK"}}"#;
        let PoolMessage::Reply { id: 1, result: Ok(r) } = parse(line).unwrap() else { panic!() };
        let ok = parse_login(r).unwrap();
        assert_eq!(ok.session, "63bfe6e4");
        assert_eq!(ok.job.unwrap()["job_id"], "1-1");
    }

    #[test]
    fn parses_job_pushes_and_errors() {
        let push = br#"{"jsonrpc":"2.0","method":"job","params":{"job_id":"x"}}"#;
        assert!(matches!(parse(push).unwrap(), PoolMessage::Job(v) if v == json!({"job_id": "x"})));
        let err = br#"{"id":4,"jsonrpc":"2.0","error":{"code":-1,"message":"Low difficulty share"}}"#;
        assert!(matches!(parse(err).unwrap(), PoolMessage::Reply { id: 4, result: Err(m) } if m == "Low difficulty share"));
        let odd = br#"{"id":4,"error":"bad"}"#;
        assert!(matches!(parse(odd).unwrap(), PoolMessage::Reply { id: 4, result: Err(m) } if m == "\"bad\""));
        let ok = br#"{"id":5,"jsonrpc":"2.0","error":null,"result":{"status":"OK"}}"#;
        assert!(matches!(parse(ok).unwrap(), PoolMessage::Reply { id: 5, result: Ok(r) } if r.get() == r#"{"status":"OK"}"#));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"garbage").is_err());
        assert!(parse(b"[]").is_err());
        assert!(parse(b"\xff\xfe").is_err());
        assert!(parse(br#"{"id":"x","result":1}"#).is_err());
        assert!(parse_login(RawValue::from_string(r#"{"status":"OK"}"#.into()).unwrap().as_ref()).is_err());
        assert!(matches!(parse(br#"{"method":"mining.notify"}"#).unwrap(), PoolMessage::Other(m) if m == "mining.notify"));
    }
}
