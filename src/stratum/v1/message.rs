//! Parsing what a v1 miner sends. A line that is not a JSON object with a string method,
//! or whose id is not a short number, string or null, is malformed (the caller closes the
//! connection); a request with bad params still parses, so the miner gets a precise error.
//!
//! Submits are the hot path: their params are read as strings borrowed from the line, with
//! no JSON tree and no allocation unless a string carries escapes. A field of the wrong
//! JSON type reads as empty and fails its own check. The other requests are rare and keep
//! owned, length-capped copies.
//!
//! Request ids are echoed back verbatim and never correlate anything upstream: cpuminer
//! sends id 4 for every submit.

use super::submit_params::parse_submit;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Longest request id (as JSON text) we echo.
pub const MAX_ID: usize = 64;
/// Longest worker name, password, agent or extension name kept.
const MAX_LABEL: usize = 256;
/// Most extensions a `mining.configure` may list.
const MAX_EXTENSIONS: usize = 16;

/// One parsed miner request, borrowing from its line.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    /// The id's JSON text (`4`, `"a"`, `null`), to echo back.
    pub id: &'a str,
    pub method: Method<'a>,
}

/// What a miner asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Method<'a> {
    /// `mining.subscribe [agent, session_id]`, both optional.
    Subscribe {
        agent: Option<String>,
        session: Option<String>,
    },
    /// `mining.authorize [user, pass]`.
    Authorize {
        user: String,
        pass: String,
    },
    /// `mining.configure [extensions, params]` (BIP 310).
    Configure(Configure),
    /// `mining.extranonce.subscribe`: the miner accepts `mining.set_extranonce`.
    ExtranonceSubscribe,
    /// `mining.suggest_difficulty [diff]`; `None` if the value is not a positive number.
    SuggestDifficulty(Option<f64>),
    Submit(Submit<'a>),
    /// Any other method, by name.
    Other(String),
}

/// `mining.configure` as asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Configure {
    /// Every extension code listed, each of which must be answered.
    pub extensions: Vec<String>,
    /// Present when `version-rolling` is listed.
    pub version_rolling: Option<VersionRolling>,
    /// `minimum-difficulty.value`, when that extension is listed.
    pub minimum_difficulty: Option<f64>,
}

/// The miner's side of BIP 310 version rolling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRolling {
    /// Bits the miner can roll; `ffffffff` when not sent (BIP 310's default), 0 when
    /// malformed.
    pub mask: u32,
    /// `version-rolling.min-bit-count` (Braiins' bmminer says `bit-count`); 0 when absent.
    pub min_bit_count: u32,
}

impl VersionRolling {
    /// The mask to grant: BIP 310's intersection of what the pool allows and what the
    /// miner can roll.
    pub fn grant(&self, pool_mask: u32) -> u32 {
        self.mask & pool_mask
    }
}

/// `mining.submit [worker, job_id, extranonce2, ntime, nonce, version_bits?]`, unvalidated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submit<'a> {
    pub worker: Cow<'a, str>,
    pub job_id: Cow<'a, str>,
    pub extranonce2: Cow<'a, str>,
    pub ntime: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    /// The sixth param (BIP 310), when present.
    pub version_bits: Option<Cow<'a, str>>,
}

/// Why a line is not a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not UTF-8 JSON, not an object, or no string `method`.
    NotARequest,
    /// An object or array id, or one longer than [`MAX_ID`].
    BadId,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotARequest => "not a stratum request",
            Self::BadId => "request id is not a short number, string or null",
        })
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// The id's JSON text, if it is one we echo: a number, a string or null, short.
pub(super) fn echo_id(raw: Option<&RawValue>) -> Result<&str, Malformed> {
    let Some(raw) = raw else { return Ok("null") };
    let t = raw.get();
    let ok_kind = t.starts_with(|c: char| c == '"' || c == '-' || c.is_ascii_digit()) || t == "null";
    if !ok_kind || t.len() > MAX_ID {
        return Err(Malformed::BadId);
    }
    Ok(t)
}

/// Parses one line from a miner.
pub fn parse_request(line: &[u8]) -> Result<Request<'_>, Malformed> {
    let text = std::str::from_utf8(line).map_err(|_| Malformed::NotARequest)?;
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|_| Malformed::NotARequest)?;
    let id = echo_id(env.id)?;
    let params = env.params.map(RawValue::get).unwrap_or("null");
    let method = match &*env.method {
        "mining.submit" => Method::Submit(parse_submit(params)),
        "mining.subscribe" => {
            let p = list(params);
            Method::Subscribe { agent: string_at(&p, 0), session: string_at(&p, 1) }
        }
        "mining.authorize" => {
            let p = list(params);
            Method::Authorize { user: string_at(&p, 0).unwrap_or_default(), pass: string_at(&p, 1).unwrap_or_default() }
        }
        "mining.configure" => Method::Configure(configure(&list(params))),
        "mining.extranonce.subscribe" => Method::ExtranonceSubscribe,
        "mining.suggest_difficulty" => {
            Method::SuggestDifficulty(list(params).first().and_then(Value::as_f64).filter(|d| d.is_finite() && *d > 0.0))
        }
        other => Method::Other(label(other)),
    };
    Ok(Request { id, method })
}

fn list(params: &str) -> Vec<Value> {
    match serde_json::from_str(params) {
        Ok(Value::Array(a)) => a,
        _ => Vec::new(),
    }
}

fn string_at(p: &[Value], i: usize) -> Option<String> {
    p.get(i).and_then(Value::as_str).map(label)
}

/// `s` cut to [`MAX_LABEL`] bytes on a character boundary.
pub(super) fn label(s: &str) -> String {
    let mut end = s.len().min(MAX_LABEL);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn configure(p: &[Value]) -> Configure {
    let extensions: Vec<String> =
        p.first().and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).take(MAX_EXTENSIONS).map(label).collect();
    let params = p.get(1);
    let param = |key: &str| params.and_then(|v| v.get(key));
    let listed = |name: &str| extensions.iter().any(|e| e == name);
    let version_rolling = listed("version-rolling").then(|| VersionRolling {
        mask: match param("version-rolling.mask") {
            None => u32::MAX,
            Some(m) => m.as_str().and_then(|m| u32::from_str_radix(m, 16).ok()).unwrap_or(0),
        },
        min_bit_count: param("version-rolling.min-bit-count")
            .or_else(|| param("version-rolling.bit-count"))
            .and_then(Value::as_u64)
            .map_or(0, |n| n.min(32) as u32),
    });
    let minimum_difficulty = if listed("minimum-difficulty") {
        param("minimum-difficulty.value").and_then(Value::as_f64).filter(|d| d.is_finite())
    } else {
        None
    };
    Configure { extensions, version_rolling, minimum_difficulty }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(line: &str) -> Method<'_> {
        parse_request(line.as_bytes()).unwrap().method
    }

    #[test]
    fn cpuminer_lines_from_the_capture() {
        let r = parse_request(br#"{"id": 1, "method": "mining.subscribe", "params": ["cpuminer/2.5.1"]}"#).unwrap();
        assert_eq!(r.id, "1");
        assert_eq!(r.method, Method::Subscribe { agent: Some("cpuminer/2.5.1".into()), session: None });
        let r = method(r#"{"id": 2, "method": "mining.authorize", "params": ["acct.rig1", "x"]}"#);
        assert_eq!(r, Method::Authorize { user: "acct.rig1".into(), pass: "x".into() });
        let line =
            br#"{"method": "mining.submit", "params": ["acct.rig1", "00000001", "0000000000000000", "6553f13c", "7c96d100"], "id":4}"#;
        let r = parse_request(line).unwrap();
        assert_eq!(r.id, "4");
        let Method::Submit(s) = r.method else { panic!("not a submit") };
        assert_eq!(
            (&*s.worker, &*s.job_id, &*s.extranonce2, &*s.ntime, &*s.nonce),
            ("acct.rig1", "00000001", "0000000000000000", "6553f13c", "7c96d100")
        );
        assert!(matches!(s.nonce, Cow::Borrowed(_)), "submit fields borrow from the line");
        assert_eq!(s.version_bits, None);
    }

    #[test]
    fn resume_subscribe_and_version_bits() {
        let r = method(r#"{"id":1,"method":"mining.subscribe","params":["bmminer/2.0.0","d1"]}"#);
        assert_eq!(r, Method::Subscribe { agent: Some("bmminer/2.0.0".into()), session: Some("d1".into()) });
        assert_eq!(method(r#"{"id":1,"method":"mining.subscribe"}"#), Method::Subscribe { agent: None, session: None });
        let Method::Submit(s) = method(r#"{"id":"x","method":"mining.submit","params":["w","j","00","01","02","00006000","extra"]}"#)
        else {
            panic!("not a submit")
        };
        assert_eq!(s.version_bits.as_deref(), Some("00006000"));
    }

    #[test]
    fn configure_as_real_firmware_sends_it() {
        // Bitmain's stock firmware.
        let c = method(
            r#"{"id":1, "method":"mining.configure", "params":[["version-rolling"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":2}]}"#,
        );
        let Method::Configure(c) = c else { panic!("not a configure") };
        assert_eq!(c.extensions, ["version-rolling"]);
        assert_eq!(c.version_rolling, Some(VersionRolling { mask: u32::MAX, min_bit_count: 2 }));
        // Braiins' bmminer: "bit-count"; BIP 310's example with minimum-difficulty.
        let Method::Configure(c) = method(
            r#"{"id":1,"method":"mining.configure","params":[["minimum-difficulty","version-rolling"],{"minimum-difficulty.value":2048,"version-rolling.mask":"1fffe000","version-rolling.bit-count":2}]}"#,
        ) else {
            panic!("not a configure")
        };
        assert_eq!(c.version_rolling, Some(VersionRolling { mask: 0x1fff_e000, min_bit_count: 2 }));
        assert_eq!(c.version_rolling.map(|v| v.grant(0x1800_0000)), Some(0x1800_0000));
        assert_eq!(c.minimum_difficulty, Some(2048.0));
        // No mask: BIP 310's default, all bits; a bad one: none.
        let Method::Configure(c) = method(r#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{}]}"#) else { panic!() };
        assert_eq!(c.version_rolling.map(|v| v.mask), Some(u32::MAX));
        let Method::Configure(c) =
            method(r#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"xyz"}]}"#)
        else {
            panic!()
        };
        assert_eq!(c.version_rolling.map(|v| v.mask), Some(0));
        let Method::Configure(c) = method(r#"{"id":1,"method":"mining.configure","params":"junk"}"#) else { panic!() };
        assert_eq!(c, Configure::default());
    }

    #[test]
    fn small_methods() {
        assert_eq!(method(r#"{"id":3,"method":"mining.extranonce.subscribe","params":[]}"#), Method::ExtranonceSubscribe);
        assert_eq!(method(r#"{"id":3,"method":"mining.suggest_difficulty","params":[0.004]}"#), Method::SuggestDifficulty(Some(0.004)));
        assert_eq!(method(r#"{"id":3,"method":"mining.suggest_difficulty","params":[-1]}"#), Method::SuggestDifficulty(None));
        assert_eq!(method(r#"{"id":3,"method":"mining.multi_version","params":[1]}"#), Method::Other("mining.multi_version".into()));
    }

    #[test]
    fn ids_are_echoed_verbatim_and_bounded() {
        for id in ["4", "-7", "1.5", "\"abc\"", "null", "\"é\""] {
            let line = format!(r#"{{"id":{id},"method":"mining.subscribe","params":[]}}"#);
            assert_eq!(parse_request(line.as_bytes()).unwrap().id, id);
        }
        assert_eq!(parse_request(br#"{"method":"mining.subscribe"}"#).unwrap().id, "null");
        for id in ["{}", "[1]", "true"] {
            let line = format!(r#"{{"id":{id},"method":"mining.subscribe"}}"#);
            assert_eq!(parse_request(line.as_bytes()), Err(Malformed::BadId), "{id}");
        }
        let long = format!(r#"{{"id":"{}","method":"mining.subscribe"}}"#, "a".repeat(MAX_ID));
        assert_eq!(parse_request(long.as_bytes()), Err(Malformed::BadId));
    }

    #[test]
    fn wrong_types_and_garbage() {
        let Method::Submit(s) = method(r#"{"id":1,"method":"mining.submit","params":[1,{"a":[]},null,true,[2]]}"#) else { panic!() };
        assert_eq!(s, Submit { version_bits: None, ..Submit::default() });
        assert_eq!(method(r#"{"id":1,"method":"mining.submit","params":{"a":1}}"#), Method::Submit(Submit::default()));
        assert_eq!(
            method(r#"{"id":1,"method":"mining.authorize","params":[7]}"#),
            Method::Authorize { user: String::new(), pass: String::new() }
        );
        assert_eq!(parse_request(b"{nope"), Err(Malformed::NotARequest));
        assert_eq!(parse_request(b"[1]"), Err(Malformed::NotARequest));
        assert_eq!(parse_request(br#"{"id":1,"method":5}"#), Err(Malformed::NotARequest));
        assert_eq!(parse_request(b"\xff\xfe"), Err(Malformed::NotARequest));
        let Method::Authorize { user, .. } = method(&format!(r#"{{"id":1,"method":"mining.authorize","params":["{}"]}}"#, "é".repeat(200)))
        else {
            panic!()
        };
        assert!(user.len() <= MAX_LABEL);
    }
}
