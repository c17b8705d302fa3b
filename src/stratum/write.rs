//! Encoding the lines we send, straight into byte buffers: replies to miners, job
//! notifications (encoded once per job, then patched per miner) and requests to pools.

use super::StratumError;
use super::difficulty::hex_pair;
use super::job::{FIXED_BYTE_HEX, Job};
use std::io::Write;

/// Appends `s` as a JSON string literal.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `{"id":ID,"jsonrpc":"2.0","error":null,"result":{"status":"STATUS"}}`
pub fn status_reply(out: &mut Vec<u8>, id: &str, status: &str) {
    let _ = writeln!(out, r#"{{"id":{id},"jsonrpc":"2.0","error":null,"result":{{"status":"{status}"}}}}"#);
}

/// `{"id":ID,"jsonrpc":"2.0","error":{"code":-1,"message":"..."}}`
pub fn error_reply(out: &mut Vec<u8>, id: &str, err: &StratumError) {
    let _ = write!(out, r#"{{"id":{id},"jsonrpc":"2.0","error":{{"code":-1,"message":"#);
    json_str(out, &err.to_string());
    out.extend_from_slice(b"}}\n");
}

/// A job notification line for one target, encoded once and patched per miner.
#[derive(Debug, Clone)]
pub struct JobLine {
    /// Difficulty of `target` in this line.
    pub diff: u64,
    /// The whole `job` notification, newline included.
    pub line: Vec<u8>,
    /// Where the job object (`{"blob":...}`) sits in `line`.
    obj: std::ops::Range<usize>,
    /// Offset of the fixed byte's two hex digits in `line`.
    fixed_at: usize,
}

const JOB_PREFIX: &[u8] = br#"{"jsonrpc":"2.0","method":"job","params":"#;

impl JobLine {
    /// Encodes `job` for miners whose target is `target` (difficulty `diff`). A line below
    /// the pool's difficulty carries the job id `POOLID:DIFF`: a share comes back with the
    /// difficulty it was mined for, and a miner whose difficulty changes gets a job with a
    /// new id (older XMRig takes a job with a known id and blob for a duplicate).
    pub fn new(job: &Job, target: &str, diff: u64, algo_ext: bool) -> JobLine {
        let mut line = Vec::with_capacity(JOB_PREFIX.len() + job.blob.len() + 128);
        line.extend_from_slice(JOB_PREFIX);
        let start = line.len();
        line.extend_from_slice(br#"{"blob":""#);
        let fixed_at = line.len() + FIXED_BYTE_HEX;
        line.extend_from_slice(job.blob.as_bytes());
        line.extend_from_slice(br#"","job_id":"#);
        if diff < job.diff {
            json_str(&mut line, &format!("{}:{diff}", job.job_id));
        } else {
            json_str(&mut line, &job.job_id);
        }
        let _ = write!(line, r#","target":"{target}""#);
        if let (true, Some(algo)) = (algo_ext, &job.algo) {
            line.extend_from_slice(br#","algo":"#);
            json_str(&mut line, algo);
        }
        if let Some(h) = job.height {
            let _ = write!(line, r#","height":{h}"#);
        }
        if let Some(seed) = &job.seed_hash {
            let _ = write!(line, r#","seed_hash":"{seed}""#);
        }
        line.push(b'}');
        let end = line.len();
        line.extend_from_slice(b"}\n");
        JobLine { diff, line, obj: start..end, fixed_at }
    }

    /// Writes the miner's fixed byte into the blob (NiceHash mode).
    pub fn patch(&mut self, fixed: u8) {
        self.line[self.fixed_at..self.fixed_at + 2].copy_from_slice(&hex_pair(fixed));
    }

    /// The job object alone, as it appears in a login reply.
    pub fn object(&self) -> &[u8] {
        &self.line[self.obj.clone()]
    }
}

/// The login reply carrying the first job (already patched for this miner).
pub fn login_reply(out: &mut Vec<u8>, id: &str, session: &str, job: &JobLine, extensions: &[&str]) {
    let _ = write!(out, r#"{{"id":{id},"jsonrpc":"2.0","error":null,"result":{{"id":"{session}","job":"#);
    out.extend_from_slice(job.object());
    out.extend_from_slice(br#","extensions":["#);
    for (i, ext) in extensions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = write!(out, r#""{ext}""#);
    }
    out.extend_from_slice(br#"],"status":"OK"}}"#);
    out.push(b'\n');
}

/// Login request to a pool.
pub fn pool_login(out: &mut Vec<u8>, id: u64, user: &str, pass: &str, agent: &str, rigid: Option<&str>, algo: Option<&str>) {
    let _ = write!(out, r#"{{"id":{id},"jsonrpc":"2.0","method":"login","params":{{"login":"#);
    json_str(out, user);
    out.extend_from_slice(br#","pass":"#);
    json_str(out, pass);
    out.extend_from_slice(br#","agent":"#);
    json_str(out, agent);
    if let Some(rigid) = rigid {
        out.extend_from_slice(br#","rigid":"#);
        json_str(out, rigid);
    }
    if let Some(algo) = algo {
        out.extend_from_slice(br#","algo":["#);
        json_str(out, algo);
        out.push(b']');
    }
    out.extend_from_slice(b"}}\n");
}

/// Share submission to a pool. `nonce` and `result` were checked to be lowercase hex.
pub fn pool_submit(out: &mut Vec<u8>, id: u64, session: &str, job_id: &str, nonce: &str, result: &str, algo: Option<&str>) {
    let _ = write!(out, r#"{{"id":{id},"jsonrpc":"2.0","method":"submit","params":{{"id":"#);
    json_str(out, session);
    out.extend_from_slice(br#","job_id":"#);
    json_str(out, job_id);
    let _ = write!(out, r#","nonce":"{nonce}","result":"{result}""#);
    if let Some(algo) = algo {
        out.extend_from_slice(br#","algo":"#);
        json_str(out, algo);
    }
    out.extend_from_slice(b"}}\n");
}

/// Keepalive ping to a pool.
pub fn pool_keepalive(out: &mut Vec<u8>, id: u64, session: &str) {
    let _ = write!(out, r#"{{"id":{id},"jsonrpc":"2.0","method":"keepalived","params":{{"id":"#);
    json_str(out, session);
    out.extend_from_slice(b"}}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn job() -> Job {
        let v = json!({"blob": "0".repeat(152), "job_id": "1-\"x", "target": "b88d0600", "algo": "cn/r", "height": 3});
        Job::from_value(&v, None).unwrap()
    }

    #[test]
    fn job_line_is_valid_json_and_patches_byte_42() {
        let mut l = JobLine::new(&job(), "b88d0600", 10000, true);
        l.patch(0xeb);
        assert_eq!(*l.line.last().unwrap(), b'\n');
        let v: Value = serde_json::from_slice(&l.line).unwrap();
        let blob = v["params"]["blob"].as_str().unwrap();
        assert_eq!(&blob[84..86], "eb");
        assert_eq!(v["params"]["job_id"], "1-\"x");
        assert_eq!(v["params"]["algo"], "cn/r");
        assert_eq!(v["params"]["height"], 3);
        assert!(v["params"].get("id").is_none(), "real xmrig-proxy sends no session id in jobs");
        l.patch(0x01);
        let v: Value = serde_json::from_slice(&l.line).unwrap();
        assert_eq!(&v["params"]["blob"].as_str().unwrap()[84..86], "01");
    }

    #[test]
    fn algo_left_out_without_algo_ext() {
        let l = JobLine::new(&job(), "b88d0600", 10000, false);
        let v: Value = serde_json::from_slice(&l.line).unwrap();
        assert!(v["params"].get("algo").is_none());
    }

    #[test]
    fn login_reply_shape_matches_xmrig_proxy() {
        let l = JobLine::new(&job(), "b88d0600", 10000, true);
        let mut out = Vec::new();
        login_reply(&mut out, "1", "abc", &l, &["algo", "nicehash"]);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], 1);
        assert_eq!(v["error"], Value::Null);
        assert_eq!(v["result"]["id"], "abc");
        assert_eq!(v["result"]["status"], "OK");
        assert_eq!(v["result"]["extensions"], json!(["algo", "nicehash"]));
        assert_eq!(v["result"]["job"]["target"], "b88d0600");
    }

    #[test]
    fn replies_and_pool_requests_are_valid_json() {
        let mut out = Vec::new();
        error_reply(&mut out, "\"q\"", &StratumError::Unauthenticated);
        status_reply(&mut out, "2", "OK");
        pool_login(&mut out, 1, "w\"allet", "x", "agent", Some("rig"), Some("rx/0"));
        pool_submit(&mut out, 2, "s", "j", "deadbeef", &"0".repeat(64), Some("rx/0"));
        pool_keepalive(&mut out, 3, "s");
        let lines: Vec<Value> = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
        assert_eq!(lines[0]["error"]["message"], "Unauthenticated");
        assert_eq!(lines[0]["id"], "q");
        assert_eq!(lines[1]["result"]["status"], "OK");
        assert_eq!(lines[2]["params"]["login"], "w\"allet");
        assert_eq!(lines[2]["params"]["algo"], json!(["rx/0"]));
        assert_eq!(lines[3]["params"]["nonce"], "deadbeef");
        assert_eq!(lines[4]["method"], "keepalived");
    }
}
