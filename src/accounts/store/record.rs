//! The bytes of the accounts file, without I/O: the file header, record framing, the
//! CRC-32 that guards each record, and the JSON payload. `mod.rs` explains the layout
//! and why it survives a crash.

use crate::accounts::Account;
use serde::{Deserialize, Serialize};

/// `SPXACCT` then the format version.
pub(crate) const FILE_HEADER: [u8; 8] = *b"SPXACCT\x01";
/// The part of the header that says "this is an accounts file".
pub(crate) const FILE_MAGIC_LEN: usize = 7;
/// The format this build reads and writes.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// First byte of every record header; anything else there is not a record.
const RECORD_MARK: u8 = 0xA5;
/// Mark, payload length (u32 LE), CRC-32 of the payload (u32 LE).
pub(crate) const RECORD_HEADER_LEN: usize = 9;
/// No record is larger: a length field above this is damage, not data.
pub(crate) const MAX_PAYLOAD: usize = 1 << 20;

/// One stored operation: the payload of a record is a JSON array of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum Rec {
    /// The whole account, as registered (or as compaction found it).
    Put {
        name: String,
        pool: String,
        user: String,
        password: String,
        #[serde(default)]
        algo: Option<String>,
        created: u64,
        last_active: u64,
    },
    Del {
        name: String,
    },
    /// Miner activity at unix second `t`.
    Touch {
        name: String,
        t: u64,
    },
}

impl Rec {
    pub(crate) fn put(a: &Account) -> Rec {
        Rec::Put {
            name: a.name.clone(),
            pool: a.pool.clone(),
            user: a.user.clone(),
            password: a.password.clone(),
            algo: a.algo.clone(),
            created: a.created,
            last_active: a.last_active,
        }
    }
}

/// Appends one framed record holding `recs` to `out`.
pub(crate) fn encode(recs: &[Rec], out: &mut Vec<u8>) -> Result<(), String> {
    let payload = serde_json::to_vec(recs).map_err(|e| format!("cannot encode a record: {e}"))?;
    if payload.len() > MAX_PAYLOAD {
        return Err(format!("a record of {} bytes is over the {MAX_PAYLOAD}-byte limit", payload.len()));
    }
    out.push(RECORD_MARK);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// The size of the record one account takes after compaction.
pub(crate) fn put_len(a: &Account) -> u64 {
    let mut buf = Vec::new();
    match encode(&[Rec::put(a)], &mut buf) {
        Ok(()) => buf.len() as u64,
        Err(_) => 0,
    }
}

/// What starts at an offset of the file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next<'a> {
    /// A complete record whose checksum matches; the next one starts at `end`.
    Record { payload: &'a [u8], end: usize },
    /// Nothing: the file ends here.
    End,
    /// An append that never completed: it runs to the end of the file and is damaged there.
    Torn(String),
    /// Damage followed by more data, which no interrupted append can leave.
    Corrupt(String),
}

/// Reads the record at `at` in `buf` (the whole file).
pub(crate) fn next(buf: &[u8], at: usize) -> Next<'_> {
    let rest = buf.get(at..).unwrap_or_default();
    if rest.is_empty() {
        return Next::End;
    }
    if rest.len() < RECORD_HEADER_LEN {
        return Next::Torn(format!("a {}-byte header cut short", rest.len()));
    }
    if rest[0] != RECORD_MARK {
        // A file system may extend the file before the data lands: zeros to the end are
        // an interrupted append too.
        if rest.iter().all(|&b| b == 0) {
            return Next::Torn(format!("{} zero bytes", rest.len()));
        }
        return Next::Corrupt(format!("byte 0x{:02x} where a record mark should be", rest[0]));
    }
    let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
    let crc = u32::from_le_bytes([rest[5], rest[6], rest[7], rest[8]]);
    let body = &rest[RECORD_HEADER_LEN..];
    if body.len() < len {
        return Next::Torn(format!("{} of {len} payload bytes", body.len()));
    }
    if len > MAX_PAYLOAD {
        return Next::Corrupt(format!("a length of {len} bytes, over the {MAX_PAYLOAD}-byte limit"));
    }
    let payload = &body[..len];
    if crc32(payload) != crc {
        if body.len() == len {
            return Next::Torn("a checksum mismatch in the last record".into());
        }
        return Next::Corrupt(format!("a checksum mismatch, with {} more bytes after it", body.len() - len));
    }
    Next::Record { payload, end: at + RECORD_HEADER_LEN + len }
}

/// The operations in a record's payload.
pub(crate) fn decode(payload: &[u8]) -> Result<Vec<Rec>, String> {
    let recs: Vec<Rec> = serde_json::from_slice(payload).map_err(|e| format!("an unreadable payload ({e})"))?;
    if recs.is_empty() {
        return Err("an empty payload".into());
    }
    Ok(recs)
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and gzip compute it).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"The quick brown fox jumps over the lazy dog"), 0x414f_a339);
    }

    fn framed(recs: &[Rec]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(recs, &mut buf).unwrap();
        buf
    }

    #[test]
    fn records_round_trip() {
        let recs = vec![
            Rec::Put {
                name: "00ff".into(),
                pool: "p:1".into(),
                user: "u\"\\".into(),
                password: "".into(),
                algo: Some("rx/0".into()),
                created: 1,
                last_active: 2,
            },
            Rec::Del { name: "00ff".into() },
            Rec::Touch { name: "ab".into(), t: 9 },
        ];
        let mut buf = framed(&recs);
        let first_end = buf.len();
        buf.extend(framed(&recs[2..]));
        let Next::Record { payload, end } = next(&buf, 0) else { panic!() };
        assert_eq!(end, first_end);
        assert_eq!(decode(payload).unwrap(), recs);
        let Next::Record { payload, end } = next(&buf, end) else { panic!() };
        assert_eq!((decode(payload).unwrap(), end), (recs[2..].to_vec(), buf.len()));
        assert_eq!(next(&buf, end), Next::End);
        assert!(String::from_utf8_lossy(&buf).contains(r#"{"op":"touch","name":"ab","t":9}"#), "the payload is readable JSON");
    }

    #[test]
    fn damage_at_the_end_is_torn_and_elsewhere_corrupt() {
        let one = framed(&[Rec::Del { name: "x".into() }]);
        for cut in 1..one.len() {
            assert!(matches!(next(&one[..cut], 0), Next::Torn(_)), "cut at {cut}");
        }
        let mut flipped = one.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(next(&flipped, 0), Next::Torn("a checksum mismatch in the last record".into()));
        let mut two = flipped.clone();
        two.extend(&one);
        assert_eq!(next(&two, 0), Next::Corrupt(format!("a checksum mismatch, with {} more bytes after it", one.len())));

        let mut zeros = one.clone();
        zeros.extend([0u8; 40]);
        assert!(matches!(next(&zeros, one.len()), Next::Torn(m) if m == "40 zero bytes"));
        zeros.push(7);
        assert!(matches!(next(&zeros, one.len()), Next::Corrupt(m) if m.contains("where a record mark should be")));

        let mut huge = vec![RECORD_MARK];
        huge.extend(u32::MAX.to_le_bytes());
        huge.extend([0; 4]);
        assert!(matches!(next(&huge, 0), Next::Torn(_)), "a length past the end is a short payload");
    }

    #[test]
    fn odd_payloads_are_refused() {
        assert!(decode(b"[]").is_err());
        assert!(decode(b"{\"op\":\"put\"}").is_err());
        assert!(decode(b"[{\"op\":\"rename\",\"name\":\"x\"}]").unwrap_err().contains("rename"));
        assert_eq!(decode(b"[{\"op\":\"del\",\"name\":\"x\",\"later\":1}]").unwrap(), vec![Rec::Del { name: "x".into() }]);
    }
}
