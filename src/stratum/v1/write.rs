//! Encoding v1 lines straight into byte buffers, newline included: replies and
//! notifications to miners, requests to pools. Nothing here builds a JSON tree.
//!
//! A `mining.notify` line is the same for every miner of an upstream (each miner's own
//! extranonce1 went out in its subscribe reply), so it is encoded once per job and
//! written to every miner as it is. The prevhash goes out in stratum's word order, exactly
//! as the pool sent it.

use super::error::V1Error;
use super::job::V1Job;
use super::message::Configure;
use std::io::Write;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends lowercase hex of `bytes`.
pub fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for b in bytes {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
    }
}

/// Appends already-validated hex text in lowercase.
fn lower(out: &mut Vec<u8>, hex_text: &str) {
    out.extend(hex_text.bytes().map(|c| c.to_ascii_lowercase()));
}

/// Appends `s` as a JSON string literal.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A difficulty as a JSON number. Rust prints the shortest exact decimal (`0.004`, never
/// an exponent); anything not positive and finite is written as 1.
fn number(out: &mut Vec<u8>, diff: f64) {
    let diff = if diff.is_finite() && diff > 0.0 { diff } else { 1.0 };
    let _ = write!(out, "{diff}");
}

// ---- to miners ----

/// `{"id":ID,"result":[[["mining.set_difficulty",S],["mining.notify",S]],"E||P",N],"error":null}`
pub fn subscribe_reply(out: &mut Vec<u8>, id: &str, session: &str, extranonce1: &[u8], prefix: &[u8], extranonce2_size: usize) {
    let _ = write!(out, r#"{{"id":{id},"result":[[["mining.set_difficulty","#);
    json_str(out, session);
    out.extend_from_slice(br#"],["mining.notify","#);
    json_str(out, session);
    out.extend_from_slice(br#"]],""#);
    hex(out, extranonce1);
    hex(out, prefix);
    let _ = writeln!(out, r#"",{extranonce2_size}],"error":null}}"#);
}

/// `{"id":ID,"result":true,"error":null}` (or `false`).
pub fn bool_reply(out: &mut Vec<u8>, id: &str, value: bool) {
    let _ = writeln!(out, r#"{{"id":{id},"result":{value},"error":null}}"#);
}

/// `{"id":ID,"result":null,"error":[CODE,"MESSAGE",null]}`
pub fn error_reply(out: &mut Vec<u8>, id: &str, err: &V1Error) {
    let _ = write!(out, r#"{{"id":{id},"result":null,"error":[{},"#, err.code());
    json_str(out, err.message());
    out.extend_from_slice(b",null]}\n");
}

/// `{"id":null,"method":"mining.set_difficulty","params":[DIFF]}`
pub fn set_difficulty(out: &mut Vec<u8>, diff: f64) {
    out.extend_from_slice(br#"{"id":null,"method":"mining.set_difficulty","params":["#);
    number(out, diff);
    out.extend_from_slice(b"]}\n");
}

/// The `mining.notify` line of `job` with `clean` as its last param. Returns the offset of
/// the clean flag in `out`, so a stored line can be re-sent with another flag.
pub fn notify(out: &mut Vec<u8>, job: &V1Job, clean: bool) -> usize {
    out.reserve(256 + 2 * (job.coinb1.len() + job.coinb2.len()) + 67 * job.branches.len());
    out.extend_from_slice(br#"{"id":null,"method":"mining.notify","params":["#);
    json_str(out, &job.job_id);
    out.extend_from_slice(b",\"");
    hex(out, &job.prevhash);
    out.extend_from_slice(b"\",\"");
    hex(out, &job.coinb1);
    out.extend_from_slice(b"\",\"");
    hex(out, &job.coinb2);
    out.extend_from_slice(b"\",[");
    for (i, branch) in job.branches.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\"" } else { b",\"" });
        hex(out, branch);
        out.push(b'"');
    }
    let _ = write!(out, r#"],"{:08x}","{:08x}","{:08x}","#, job.version, job.nbits, job.ntime);
    let at = out.len();
    clean_tail(out, clean);
    at
}

/// The end of a notify line from its clean flag on.
pub fn clean_tail(out: &mut Vec<u8>, clean: bool) {
    out.extend_from_slice(if clean { b"true]}\n" } else { b"false]}\n" });
}

/// `{"id":null,"method":"mining.set_extranonce","params":["E||P",N]}`
pub fn set_extranonce(out: &mut Vec<u8>, extranonce1: &[u8], prefix: &[u8], extranonce2_size: usize) {
    out.extend_from_slice(br#"{"id":null,"method":"mining.set_extranonce","params":[""#);
    hex(out, extranonce1);
    hex(out, prefix);
    let _ = writeln!(out, r#"",{extranonce2_size}]}}"#);
}

/// `{"id":null,"method":"mining.set_version_mask","params":["MASK"]}`
pub fn set_version_mask(out: &mut Vec<u8>, mask: u32) {
    let _ = writeln!(out, r#"{{"id":null,"method":"mining.set_version_mask","params":["{mask:08x}"]}}"#);
}

/// What we grant in a `mining.configure` reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants {
    /// The negotiated version mask (the pool's & the miner's), or `None` to refuse.
    pub version_mask: Option<u32>,
    pub minimum_difficulty: bool,
    pub subscribe_extranonce: bool,
}

/// The reply to `mining.configure`: every extension the miner listed is answered (BIP 310),
/// those we don't know with `false`.
pub fn configure_reply(out: &mut Vec<u8>, id: &str, asked: &Configure, grants: Grants) {
    let _ = write!(out, r#"{{"id":{id},"result":{{"#);
    for (i, ext) in asked.extensions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, ext);
        let granted = match ext.as_str() {
            "version-rolling" => grants.version_mask.is_some(),
            "minimum-difficulty" => grants.minimum_difficulty,
            "subscribe-extranonce" => grants.subscribe_extranonce,
            _ => false,
        };
        let _ = write!(out, ":{granted}");
        if let ("version-rolling", Some(mask)) = (ext.as_str(), grants.version_mask) {
            let _ = write!(out, r#","version-rolling.mask":"{mask:08x}""#);
        }
    }
    out.extend_from_slice(b"},\"error\":null}\n");
}

/// `client.reconnect`: to `host:port` when given, else back to wherever the miner
/// connected (not every miner honours that; see the module docs of `v1`).
pub fn reconnect(out: &mut Vec<u8>, target: Option<(&str, u16)>, wait_secs: u64) {
    out.extend_from_slice(br#"{"id":null,"method":"client.reconnect","params":["#);
    if let Some((host, port)) = target {
        json_str(out, host);
        let _ = write!(out, ",{port},{wait_secs}");
    }
    out.extend_from_slice(b"]}\n");
}

// ---- to pools ----

/// `mining.subscribe [agent]` or, resuming a session, `[agent, session]`.
pub fn pool_subscribe(out: &mut Vec<u8>, id: u64, agent: &str, session: Option<&str>) {
    let _ = write!(out, r#"{{"id":{id},"method":"mining.subscribe","params":["#);
    json_str(out, agent);
    if let Some(s) = session {
        out.push(b',');
        json_str(out, s);
    }
    out.extend_from_slice(b"]}\n");
}

/// `mining.authorize [user, pass]`.
pub fn pool_authorize(out: &mut Vec<u8>, id: u64, user: &str, pass: &str) {
    let _ = write!(out, r#"{{"id":{id},"method":"mining.authorize","params":["#);
    json_str(out, user);
    out.push(b',');
    json_str(out, pass);
    out.extend_from_slice(b"]}\n");
}

/// `mining.configure` asking for every version bit the pool will give: our miners each
/// get the pool's mask intersected with their own.
pub fn pool_configure(out: &mut Vec<u8>, id: u64) {
    let _ = writeln!(
        out,
        r#"{{"id":{id},"method":"mining.configure","params":[["version-rolling"],{{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":2}}]}}"#
    );
}

/// `mining.extranonce.subscribe`.
pub fn pool_extranonce_subscribe(out: &mut Vec<u8>, id: u64) {
    let _ = writeln!(out, r#"{{"id":{id},"method":"mining.extranonce.subscribe","params":[]}}"#);
}

/// A miner's share for the pool: our request id, the pool's worker name, and the pool's
/// extranonce2 as our prefix followed by the miner's. The hex fields were validated by
/// the share check and are written lowercase.
#[allow(clippy::too_many_arguments)]
pub fn pool_submit(
    out: &mut Vec<u8>,
    id: u64,
    user: &str,
    job_id: &str,
    prefix: &[u8],
    extranonce2: &str,
    ntime: &str,
    nonce: &str,
    version_bits: Option<&str>,
) {
    let _ = write!(out, r#"{{"id":{id},"method":"mining.submit","params":["#);
    json_str(out, user);
    out.push(b',');
    json_str(out, job_id);
    out.extend_from_slice(b",\"");
    hex(out, prefix);
    lower(out, extranonce2);
    out.extend_from_slice(b"\",\"");
    lower(out, ntime);
    out.extend_from_slice(b"\",\"");
    lower(out, nonce);
    out.push(b'"');
    if let Some(v) = version_bits {
        out.extend_from_slice(b",\"");
        lower(out, v);
        out.push(b'"');
    }
    out.extend_from_slice(b"]}\n");
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::capture_notifies;
    use super::super::message::{Method, parse_request};
    use super::super::pool_message::{PoolMessage, parse_pool, subscribe_result};
    use super::*;
    use serde_json::{Value, json};

    fn lines(out: &[u8]) -> Vec<Value> {
        assert_eq!(out.last(), Some(&b'\n'));
        out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
    }

    #[test]
    fn subscribe_reply_round_trips_through_our_pool_parser() {
        let mut out = Vec::new();
        subscribe_reply(&mut out, "1", "5ab1", &[0xf0, 0, 0], &[0x01], 7);
        let v = &lines(&out)[0];
        assert_eq!(v["result"], json!([[["mining.set_difficulty", "5ab1"], ["mining.notify", "5ab1"]], "f0000001", 7]));
        assert_eq!(v["error"], Value::Null);
        let Ok(PoolMessage::Reply(r)) = parse_pool(&out[..out.len() - 1]) else { panic!() };
        let s = subscribe_result(&r).unwrap();
        assert_eq!((s.extranonce1, s.extranonce2_size, s.session.as_deref()), (vec![0xf0, 0, 0, 1], 7, Some("5ab1")));
    }

    #[test]
    fn replies_echo_ids_and_errors_are_arrays() {
        let mut out = Vec::new();
        bool_reply(&mut out, "4", true);
        bool_reply(&mut out, "\"x\"", false);
        error_reply(&mut out, "null", &V1Error::LowDifficulty);
        error_reply(&mut out, "4", &V1Error::Pool { code: 20, message: "a \"quoted\" reason".into() });
        let v = lines(&out);
        assert_eq!((v[0]["id"].clone(), v[0]["result"].clone()), (json!(4), json!(true)));
        assert_eq!((v[1]["id"].clone(), v[1]["result"].clone()), (json!("x"), json!(false)));
        assert_eq!(v[2]["error"], json!([23, "Low difficulty share", null]));
        assert_eq!(v[3]["error"][1], "a \"quoted\" reason");
    }

    #[test]
    fn notify_round_trips_and_matches_the_capture() {
        for params in capture_notifies() {
            let job = V1Job::from_params(&params).unwrap();
            let mut out = Vec::new();
            let at = notify(&mut out, &job, true);
            assert_eq!(&out[at..], b"true]}\n");
            let v = &lines(&out)[0];
            assert_eq!(v["method"], "mining.notify");
            assert_eq!(v["id"], Value::Null);
            assert_eq!(v["params"], params, "the same params the pool sent");
            let Ok(PoolMessage::Notify(back)) = parse_pool(&out[..out.len() - 1]) else { panic!() };
            assert_eq!(back, job);
            out.truncate(at);
            clean_tail(&mut out, false);
            assert_eq!(lines(&out)[0]["params"][8], false);
        }
    }

    #[test]
    fn difficulty_and_masks() {
        let mut out = Vec::new();
        set_difficulty(&mut out, 0.004);
        set_difficulty(&mut out, 1e-7);
        set_difficulty(&mut out, 65536.0);
        set_difficulty(&mut out, f64::NAN);
        set_version_mask(&mut out, 0x0000_3000);
        set_extranonce(&mut out, &[0xab], &[0, 7], 6);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("[0.004]") && text.contains("[0.0000001]") && text.contains("[65536]"), "{text}");
        let v = lines(&out);
        assert_eq!(v[3]["params"], json!([1]));
        assert_eq!(v[4]["params"], json!(["00003000"]));
        assert_eq!(v[5]["params"], json!(["ab0007", 6]));
    }

    #[test]
    fn configure_reply_answers_every_extension() {
        let line = br#"{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty","info"],{"version-rolling.mask":"ffffffff"}]}"#;
        let Method::Configure(asked) = parse_request(line).unwrap().method else { panic!() };
        let mut out = Vec::new();
        configure_reply(&mut out, "1", &asked, Grants { version_mask: Some(0x1fff_e000), ..Grants::default() });
        configure_reply(&mut out, "2", &asked, Grants::default());
        let v = lines(&out);
        assert_eq!(
            v[0]["result"],
            json!({"version-rolling": true, "version-rolling.mask": "1fffe000", "minimum-difficulty": false, "info": false})
        );
        assert_eq!(v[1]["result"], json!({"version-rolling": false, "minimum-difficulty": false, "info": false}));
    }

    #[test]
    fn reconnect_lines() {
        let mut out = Vec::new();
        reconnect(&mut out, Some(("10.0.0.1", 3333)), 0);
        reconnect(&mut out, None, 0);
        let v = lines(&out);
        assert_eq!(v[0]["params"], json!(["10.0.0.1", 3333, 0]));
        assert_eq!(v[1]["params"], json!([]));
    }

    #[test]
    fn pool_requests() {
        let mut out = Vec::new();
        pool_subscribe(&mut out, 1, "stratum-proxy/0.1", None);
        pool_subscribe(&mut out, 2, "stratum-proxy/0.1", Some("n1"));
        pool_authorize(&mut out, 3, "acct.\"rig\"", "x");
        pool_configure(&mut out, 4);
        pool_extranonce_subscribe(&mut out, 5);
        pool_submit(&mut out, 6, "acct", "00000001", &[0x01, 0x02], "00AB", "6553F13C", "7c96d100", None);
        pool_submit(&mut out, 7, "acct", "j", &[], "00", "00000000", "00000000", Some("00006000"));
        let v = lines(&out);
        assert_eq!(v[0]["params"], json!(["stratum-proxy/0.1"]));
        assert_eq!(v[1]["params"], json!(["stratum-proxy/0.1", "n1"]));
        assert_eq!(v[2]["params"], json!(["acct.\"rig\"", "x"]));
        assert_eq!(v[3]["params"], json!([["version-rolling"], {"version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2}]));
        assert_eq!(v[4]["method"], "mining.extranonce.subscribe");
        assert_eq!(v[5]["params"], json!(["acct", "00000001", "010200ab", "6553f13c", "7c96d100"]));
        assert_eq!(v[6]["params"], json!(["acct", "j", "00", "00000000", "00000000", "00006000"]));
        assert!(v.iter().enumerate().all(|(i, l)| l["id"] == json!(i + 1)));
    }
}
