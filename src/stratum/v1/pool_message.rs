//! Parsing what a v1 pool sends: replies to our requests, which carry our own numeric ids,
//! and the pool's notifications.
//!
//! Errors arrive in every shape pools use: `[code, "message", traceback]` (the original
//! stratum server, NiceHash), `{"code": .., "message": ..}` (JSON-RPC 2.0 pools), a bare
//! string (ckpool for malformed submits), or `"result": false` with a `reject-reason`
//! (ckpool for stale, duplicate, low-difficulty shares). All become one [`PoolError`].

use super::error::V1Error;
use super::job::{JobError, V1Job, hex_vec};
use super::message::{echo_id, label};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Longest extranonce1 we take from a pool, in bytes (pools send 4-8).
pub const MAX_EXTRANONCE1: usize = 32;
/// Largest extranonce2 size we take from a pool (pools send 4-8; cpuminer allows 100).
pub const MAX_EXTRANONCE2_SIZE: usize = 32;

/// One message from a pool.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolMessage<'a> {
    /// The answer to one of our requests.
    Reply(Reply<'a>),
    Notify(V1Job),
    /// A positive, finite difficulty; it applies to the jobs notified after it.
    SetDifficulty(f64),
    /// New extranonce1 (and possibly size): every earlier job is void.
    SetExtranonce {
        extranonce1: Vec<u8>,
        extranonce2_size: Option<usize>,
    },
    /// BIP 310: the version mask from now on.
    SetVersionMask(u32),
    /// `client.reconnect [host, port, wait]`, each optional.
    Reconnect {
        host: Option<String>,
        port: Option<u16>,
        wait_secs: Option<u64>,
    },
    /// Any other method (`client.get_version`, `client.show_message`, `mining.ping`):
    /// `id` is the JSON text to answer with, `null` for notifications.
    Other {
        id: &'a str,
        method: String,
    },
}

/// A reply to our request `id`.
#[derive(Debug, Clone)]
pub struct Reply<'a> {
    pub id: u64,
    /// The `result` JSON, when present and not null.
    pub result: Option<&'a RawValue>,
    /// The error in any of its shapes, or a ckpool `reject-reason`.
    pub error: Option<PoolError>,
}

impl PartialEq for Reply<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.result.map(RawValue::get) == other.result.map(RawValue::get) && self.error == other.error
    }
}

/// A pool's error, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolError {
    pub code: Option<i64>,
    pub message: String,
}

/// Why a pool line was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolParseError {
    NotJson,
    /// A reply whose id is not one of our numbers.
    ForeignId,
    BadNotify(JobError),
    /// Bad params for the named method.
    BadParams(&'static str),
}

impl fmt::Display for PoolParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson => f.write_str("not a JSON object"),
            Self::ForeignId => f.write_str("reply to an id we never sent"),
            Self::BadNotify(e) => write!(f, "mining.notify: {e}"),
            Self::BadParams(method) => write!(f, "bad params for {method}"),
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    params: Value,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Value,
    #[serde(rename = "reject-reason", default)]
    reject_reason: Option<String>,
}

/// Parses one line from a pool.
pub fn parse_pool(line: &[u8]) -> Result<PoolMessage<'_>, PoolParseError> {
    let text = std::str::from_utf8(line).map_err(|_| PoolParseError::NotJson)?;
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|_| PoolParseError::NotJson)?;
    let Some(method) = env.method else {
        let id = env.id.and_then(|r| r.get().parse::<u64>().ok()).ok_or(PoolParseError::ForeignId)?;
        let result = env.result.filter(|r| r.get() != "null");
        let error = pool_error(&env.error).or_else(|| env.reject_reason.map(|r| PoolError { code: None, message: label(&r) }));
        return Ok(PoolMessage::Reply(Reply { id, result, error }));
    };
    let p = env.params.as_array().map(Vec::as_slice).unwrap_or_default();
    Ok(match &*method {
        "mining.notify" => PoolMessage::Notify(V1Job::from_params(&env.params).map_err(PoolParseError::BadNotify)?),
        "mining.set_difficulty" => match p.first().and_then(Value::as_f64) {
            Some(d) if d.is_finite() && d > 0.0 => PoolMessage::SetDifficulty(d),
            _ => return Err(PoolParseError::BadParams("mining.set_difficulty")),
        },
        "mining.set_extranonce" => {
            let bad = PoolParseError::BadParams("mining.set_extranonce");
            let (e1, size) = extranonce(p.first(), p.get(1)).ok_or(bad)?;
            PoolMessage::SetExtranonce { extranonce1: e1, extranonce2_size: size }
        }
        "mining.set_version_mask" => match p.first().and_then(Value::as_str).and_then(|m| u32::from_str_radix(m, 16).ok()) {
            Some(mask) => PoolMessage::SetVersionMask(mask),
            None => return Err(PoolParseError::BadParams("mining.set_version_mask")),
        },
        "client.reconnect" => PoolMessage::Reconnect {
            host: p.first().and_then(Value::as_str).filter(|h| !h.is_empty()).map(label),
            port: p.get(1).and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).and_then(|n| u16::try_from(n).ok()),
            wait_secs: p.get(2).and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))),
        },
        other => PoolMessage::Other { id: echo_id(env.id).unwrap_or("null"), method: label(other) },
    })
}

/// Extranonce1 hex (bounded) and an optional size (bounded).
fn extranonce(e1: Option<&Value>, size: Option<&Value>) -> Option<(Vec<u8>, Option<usize>)> {
    let e1 = hex_vec(e1?.as_str()?).filter(|e| e.len() <= MAX_EXTRANONCE1)?;
    let size = match size {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().and_then(|n| usize::try_from(n).ok()).filter(|n| *n <= MAX_EXTRANONCE2_SIZE)?),
    };
    Some((e1, size))
}

fn pool_error(e: &Value) -> Option<PoolError> {
    let (code, message) = match e {
        Value::Null | Value::Bool(false) => return None,
        Value::Array(a) => (a.first().and_then(Value::as_i64), a.get(1).and_then(Value::as_str)),
        Value::Object(o) => (o.get("code").and_then(Value::as_i64), o.get("message").and_then(Value::as_str)),
        Value::String(s) => (None, Some(s.as_str())),
        _ => (None, None),
    };
    Some(PoolError { code, message: label(message.unwrap_or("unknown error")) })
}

impl Reply<'_> {
    /// `result: true` and no error: an accepted share or authorization.
    pub fn is_true(&self) -> bool {
        self.error.is_none() && self.result.is_some_and(|r| r.get() == "true")
    }

    /// What to tell the miner when this reply refuses its share.
    pub fn to_v1_error(&self) -> V1Error {
        match &self.error {
            Some(e) => V1Error::Pool { code: e.code.unwrap_or(20), message: e.message.as_str().into() },
            None => V1Error::Pool { code: 20, message: "Rejected by pool".into() },
        }
    }
}

/// What a pool's `mining.subscribe` result gives us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    pub extranonce1: Vec<u8>,
    pub extranonce2_size: usize,
    /// The `mining.notify` subscription id, which cpuminer sends back to resume.
    pub session: Option<String>,
}

/// Reads `[[["mining.set_difficulty", id], ["mining.notify", id]], extranonce1, size]`.
pub fn subscribe_result(reply: &Reply<'_>) -> Option<Subscribed> {
    let v: Value = serde_json::from_str(reply.result?.get()).ok()?;
    let a = v.as_array()?;
    let (extranonce1, size) = extranonce(a.get(1), a.get(2))?;
    let session = a.first().and_then(Value::as_array).into_iter().flatten().find_map(|pair| {
        let pair = pair.as_array()?;
        (pair.first()?.as_str()? == "mining.notify").then(|| pair.get(1)?.as_str().map(label))?
    });
    Some(Subscribed { extranonce1, extranonce2_size: size?, session })
}

/// The version mask a pool granted in its `mining.configure` result; `None` when it did not
/// enable version rolling (or answered with an error).
pub fn configure_result(reply: &Reply<'_>) -> Option<u32> {
    if reply.error.is_some() {
        return None;
    }
    let v: Value = serde_json::from_str(reply.result?.get()).ok()?;
    if v.get("version-rolling").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    u32::from_str_radix(v.get("version-rolling.mask")?.as_str()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(line: &str) -> Reply<'_> {
        match parse_pool(line.as_bytes()).unwrap() {
            PoolMessage::Reply(r) => r,
            other => panic!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn subscribe_reply_from_the_capture() {
        let r = reply(r#"{"id": 1, "result": [[["mining.set_difficulty", "d1"], ["mining.notify", "n1"]], "f0000001", 8], "error": null}"#);
        let s = subscribe_result(&r).unwrap();
        assert_eq!(s, Subscribed { extranonce1: vec![0xf0, 0, 0, 1], extranonce2_size: 8, session: Some("n1".into()) });
        // A flat subscription list and no session, as some pools send.
        let r = reply(r#"{"id":1,"result":[["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"],"08000002",4],"error":null}"#);
        assert_eq!(subscribe_result(&r).unwrap().extranonce2_size, 4);
        for bad in [r#"{"id":1,"result":[[],"zz",4]}"#, r#"{"id":1,"result":[[],"00",99]}"#, r#"{"id":1,"result":null}"#] {
            assert_eq!(subscribe_result(&reply(bad)), None, "{bad}");
        }
    }

    #[test]
    fn errors_in_every_shape() {
        let e = |line| reply(line).error;
        assert_eq!(
            e(r#"{"id":5,"result":null,"error":[21,"Job not found",null]}"#),
            Some(PoolError { code: Some(21), message: "Job not found".into() })
        );
        assert_eq!(
            e(r#"{"id":5,"error":{"code":-1,"message":"Low difficulty share"}}"#),
            Some(PoolError { code: Some(-1), message: "Low difficulty share".into() })
        );
        assert_eq!(
            e(r#"{"id":5,"result":false,"error":"Invalid nonce2 length"}"#),
            Some(PoolError { code: None, message: "Invalid nonce2 length".into() })
        );
        let ck = reply(r#"{"id":5,"result":false,"error":null,"reject-reason":"Stale"}"#);
        assert_eq!(ck.error, Some(PoolError { code: None, message: "Stale".into() }));
        assert!(!ck.is_true());
        assert_eq!(ck.to_v1_error(), V1Error::Pool { code: 20, message: "Stale".into() });
        let no_reason = reply(r#"{"id":5,"result":false,"error":null}"#);
        assert_eq!((no_reason.error.clone(), no_reason.is_true()), (None, false));
        assert!(reply(r#"{"id":5,"result":true,"error":null}"#).is_true());
        assert_eq!(reply(r#"{"id":5,"result":true,"error":null}"#).id, 5);
    }

    #[test]
    fn replies_must_carry_our_ids() {
        for line in [r#"{"id":"5","result":true}"#, r#"{"id":null,"result":true}"#, r#"{"result":true}"#, r#"{"id":-1,"result":true}"#] {
            assert_eq!(parse_pool(line.as_bytes()), Err(PoolParseError::ForeignId), "{line}");
        }
    }

    #[test]
    fn configure_results() {
        let c = |line| configure_result(&reply(line));
        assert_eq!(c(r#"{"id":3,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000"},"error":null}"#), Some(0x1fff_e000));
        assert_eq!(c(r#"{"id":3,"result":{"version-rolling":false},"error":null}"#), None);
        assert_eq!(c(r#"{"id":3,"result":null,"error":[20,"Method not found",null]}"#), None);
    }

    #[test]
    fn notifications() {
        let p = |line: &'static str| parse_pool(line.as_bytes());
        assert_eq!(p(r#"{"id":null,"method":"mining.set_difficulty","params":[0.004]}"#), Ok(PoolMessage::SetDifficulty(0.004)));
        assert_eq!(
            p(r#"{"id":null,"method":"mining.set_difficulty","params":[0]}"#),
            Err(PoolParseError::BadParams("mining.set_difficulty"))
        );
        assert_eq!(
            p(r#"{"id":null,"method":"mining.set_extranonce","params":["0a0b",6]}"#),
            Ok(PoolMessage::SetExtranonce { extranonce1: vec![10, 11], extranonce2_size: Some(6) })
        );
        assert_eq!(
            p(r#"{"method":"mining.set_extranonce","params":["0a0b"]}"#),
            Ok(PoolMessage::SetExtranonce { extranonce1: vec![10, 11], extranonce2_size: None })
        );
        assert!(p(r#"{"method":"mining.set_extranonce","params":["0a0b",1000]}"#).is_err());
        assert_eq!(p(r#"{"params":["00003000"],"id":null,"method":"mining.set_version_mask"}"#), Ok(PoolMessage::SetVersionMask(0x3000)));
        assert_eq!(
            p(r#"{"id":null,"method":"client.reconnect","params":["pool.example","3333",5]}"#),
            Ok(PoolMessage::Reconnect { host: Some("pool.example".into()), port: Some(3333), wait_secs: Some(5) })
        );
        assert_eq!(
            p(r#"{"id":null,"method":"client.reconnect","params":[]}"#),
            Ok(PoolMessage::Reconnect { host: None, port: None, wait_secs: None })
        );
        assert_eq!(
            p(r#"{"id":9,"method":"client.get_version","params":[]}"#),
            Ok(PoolMessage::Other { id: "9", method: "client.get_version".into() })
        );
        let notify = format!(r#"{{"id":null,"method":"mining.notify","params":{}}}"#, super::super::fixtures::capture_notifies()[1]);
        let Ok(PoolMessage::Notify(job)) = parse_pool(notify.as_bytes()) else { panic!("notify") };
        assert_eq!(&*job.job_id, "00000002");
        assert!(matches!(p(r#"{"id":null,"method":"mining.notify","params":[1]}"#), Err(PoolParseError::BadNotify(_))));
        assert_eq!(p("nope"), Err(PoolParseError::NotJson));
    }
}
