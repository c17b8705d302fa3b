//! Parsing what a miner sends. A line that is not a JSON object with a method is
//! malformed (the caller closes the connection); a well-formed request with bad params
//! still parses, so the miner gets the precise error.
//!
//! Submits are the hot path (thousands a second), so they are read without building a
//! JSON tree: the fields borrow from the line, and nothing is allocated unless a string
//! carries escapes. Logins are rare and keep owned copies.

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A request id as the miner wrote it (JSON text: `1`, `"a"`, `null`), echoed back verbatim.
/// cpuminer reuses one id for every submit, so ids never correlate anything upstream.
pub type RequestId = Box<str>;

/// A request id held until the pool answers, inline when short: xmrig numbers its
/// requests (ids up to 9,999,999 fit), so forwarding a share allocates nothing for it.
/// Longer ids are boxed. 16 bytes either way, as large as the `Box<str>` it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptId(Kept);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kept {
    Short { len: u8, bytes: [u8; KEPT_INLINE] },
    Long(Box<str>),
}

/// Longest id kept inline.
const KEPT_INLINE: usize = 7;

impl KeptId {
    /// Keeps `id` (the JSON text of the miner's id).
    pub fn new(id: &str) -> KeptId {
        if id.len() > KEPT_INLINE {
            return KeptId(Kept::Long(id.into()));
        }
        let mut bytes = [0u8; KEPT_INLINE];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        KeptId(Kept::Short { len: id.len() as u8, bytes })
    }

    /// The id as it was given.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only `new` builds it, copying a whole `&str`: always valid UTF-8.
            Kept::Short { len, bytes } => std::str::from_utf8(&bytes[..*len as usize]).unwrap_or_default(),
            Kept::Long(s) => s,
        }
    }
}

impl From<&str> for KeptId {
    fn from(id: &str) -> KeptId {
        KeptId::new(id)
    }
}

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

/// Submit parameters as raw strings borrowed from the line; validated by the proxy, which
/// knows the session. A field missing or of the wrong JSON type reads as empty, which fails
/// its own check with the matching error ("Missing job id", "Invalid nonce", ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submit<'a> {
    pub session: Cow<'a, str>,
    pub job_id: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub result: Cow<'a, str>,
}

/// What a miner asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method<'a> {
    Login(Login),
    Submit(Submit<'a>),
    Keepalive,
    Other(String),
}

/// One parsed request, borrowing from its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The id's JSON text, to echo back (`null` when absent).
    pub id: &'a str,
    pub method: Method<'a>,
}

/// Longest field value kept from a login; longer values are cut (they only label things).
const MAX_LABEL: usize = 256;

/// The envelope: id and params stay raw JSON text until the method says what they are.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SubmitParams<'a> {
    #[serde(borrow)]
    id: Lenient<'a>,
    #[serde(borrow)]
    job_id: Lenient<'a>,
    #[serde(borrow)]
    nonce: Lenient<'a>,
    #[serde(borrow)]
    result: Lenient<'a>,
}

/// A string field that reads any other JSON value as absent instead of failing.
#[derive(Default)]
struct Lenient<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Owned(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Lenient::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Lenient::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Lenient::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Lenient::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Lenient::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses one line. `None` means the line is not a stratum request at all.
pub fn parse(line: &[u8]) -> Option<Request<'_>> {
    let text = std::str::from_utf8(line).ok()?;
    let env: Envelope<'_> = serde_json::from_str(text).ok()?;
    let id = match env.id {
        None => "null",
        Some(raw) => {
            let t = raw.get();
            // Numbers, strings and null only: an object or array id is not JSON-RPC.
            if !t.starts_with(|c: char| c == '"' || c == '-' || c == 'n' || c.is_ascii_digit()) {
                return None;
            }
            t
        }
    };
    let params = env.params.map(RawValue::get).unwrap_or("null");
    let method = match &*env.method {
        "login" => Method::Login(login(&serde_json::from_str(params).unwrap_or(Value::Null))),
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

fn submit(params: &str) -> Submit<'_> {
    let p: SubmitParams<'_> = serde_json::from_str(params).unwrap_or_default();
    Submit { session: p.id.0, job_id: p.job_id.0, nonce: p.nonce.0, result: p.result.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_ids_round_trip_inline_or_boxed() {
        for id in ["1", "\"a\"", "null", "9999999", "4294967295", &"7".repeat(23), "\"é\""] {
            let k = KeptId::new(id);
            assert_eq!(k.as_str(), id);
            assert_eq!(matches!(k.0, Kept::Short { .. }), id.len() <= KEPT_INLINE, "{id}");
        }
        // On 64-bit targets the inline form costs nothing; on 32-bit ones (armv7) a
        // `Box<str>` is 8 bytes and the inline form 12.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<KeptId>(), std::mem::size_of::<Box<str>>());
        assert!(std::mem::size_of::<KeptId>() <= 16);
    }

    #[test]
    fn parses_a_real_xmrig_login() {
        let line = br#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"farm-worker","pass":"x","agent":"XMRig/6.26.0","rigid":"rig7","algo":["cn/0","rx/0"]}}"#;
        let r = parse(line).unwrap();
        assert_eq!(r.id, "1");
        let Method::Login(l) = r.method else { panic!("not a login") };
        assert_eq!(l.login.as_deref(), Some("farm-worker"));
        assert_eq!(l.rigid.as_deref(), Some("rig7"));
        assert_eq!(l.algos, ["cn/0", "rx/0"]);
    }

    #[test]
    fn parses_submit_and_keeps_string_ids() {
        let line = br#"{"id":"abc","method":"submit","params":{"id":"s","job_id":"j","nonce":"1c1400eb","result":"00"}}"#;
        let r = parse(line).unwrap();
        assert_eq!(r.id, "\"abc\"");
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
    fn submit_fields_borrow_from_the_line_unless_escaped() {
        let line = br#"{"id":3,"method":"submit","params":{"id":"s","job_id":"j\u0031","nonce":"1c1400eb","result":"00","algo":"rx/0"}}"#;
        let Method::Submit(s) = parse(line).unwrap().method else { panic!("not a submit") };
        assert!(matches!(s.nonce, Cow::Borrowed("1c1400eb")));
        assert_eq!(s.job_id, "j1");
        let r = parse(br#"{"method":"keepalived"}"#).unwrap();
        assert_eq!((r.id, r.method), ("null", Method::Keepalive));
    }

    #[test]
    fn unknown_methods_are_named() {
        let r = parse(br#"{"id":9,"method":"getjob","params":{}}"#).unwrap();
        assert_eq!(r.method, Method::Other("getjob".into()));
    }
}
