//! Parsing pool lines: replies to our requests (correlated by our own numeric ids) and
//! job pushes.

use serde_json::Value;

/// One line from a pool.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolMessage {
    /// An answer to request `id`: its result, or the pool's error message.
    Reply { id: u64, result: Result<Value, String> },
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

/// Parses one pool line; `Err` names what is wrong with it.
pub fn parse(line: &[u8]) -> Result<PoolMessage, String> {
    let mut v: Value = serde_json::from_slice(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = v.as_object_mut().ok_or("not a JSON object")?;
    if let Some(method) = obj.get("method").and_then(Value::as_str) {
        if method == "job" {
            return Ok(PoolMessage::Job(obj.remove("params").unwrap_or(Value::Null)));
        }
        return Ok(PoolMessage::Other(method.chars().take(64).collect()));
    }
    let id = obj.get("id").and_then(Value::as_u64).ok_or("reply without a numeric id")?;
    let result = match obj.get("error") {
        Some(Value::Null) | None => Ok(obj.remove("result").unwrap_or(Value::Null)),
        Some(err) => Err(error_message(err)),
    };
    Ok(PoolMessage::Reply { id, result })
}

fn error_message(err: &Value) -> String {
    let msg = match err.get("message").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => err.to_string(),
    };
    msg.chars().take(256).collect()
}

/// Reads a login result: the pool's session id and its first job.
pub fn parse_login(result: &Value) -> Result<LoginOk, String> {
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
        let ok = parse_login(&r).unwrap();
        assert_eq!(ok.session, "63bfe6e4");
        assert_eq!(ok.job.unwrap()["job_id"], "1-1");
    }

    #[test]
    fn parses_job_pushes_and_errors() {
        let push = br#"{"jsonrpc":"2.0","method":"job","params":{"job_id":"x"}}"#;
        assert_eq!(parse(push).unwrap(), PoolMessage::Job(json!({"job_id": "x"})));
        let err = br#"{"id":4,"jsonrpc":"2.0","error":{"code":-1,"message":"Low difficulty share"}}"#;
        assert_eq!(parse(err).unwrap(), PoolMessage::Reply { id: 4, result: Err("Low difficulty share".into()) });
        let odd = br#"{"id":4,"error":"bad"}"#;
        assert_eq!(parse(odd).unwrap(), PoolMessage::Reply { id: 4, result: Err("\"bad\"".into()) });
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"garbage").is_err());
        assert!(parse(b"[]").is_err());
        assert!(parse(br#"{"id":"x","result":1}"#).is_err());
        assert!(parse_login(&json!({"status": "OK"})).is_err());
        assert_eq!(parse(br#"{"method":"mining.notify"}"#).unwrap(), PoolMessage::Other("mining.notify".into()));
    }
}
