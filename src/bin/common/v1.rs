//! Stratum v1 arithmetic for the test tools, written apart from the library on purpose
//! and the way cpuminer does it: the header as twenty 32-bit words hashed big-endian, and
//! a share judged against an integer target built from the difficulty, never by dividing
//! floats. If the library and these tools disagree, one of them is wrong.
//!
//! Both tools include this file; each uses a part of it.
#![allow(dead_code)]

use sha2::{Digest, Sha256};

/// The proof of work the tools can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Sha256d,
    Scrypt,
}

impl Algo {
    pub fn parse(name: &str) -> Option<Algo> {
        match name {
            "sha256d" | "sha256" => Some(Algo::Sha256d),
            "scrypt" => Some(Algo::Scrypt),
            _ => None,
        }
    }

    pub fn hash(self, header: &[u8; 80]) -> [u8; 32] {
        match self {
            Algo::Sha256d => sha256d(header),
            Algo::Scrypt => {
                let mut out = [0u8; 32];
                match scrypt::Params::new(10, 1, 1) {
                    Ok(p) if scrypt::scrypt(header, header, &p, &mut out).is_ok() => out,
                    _ => [0xff; 32],
                }
            }
        }
    }

    /// Hashes per difficulty-1 share, for hashrate figures.
    pub fn divider(self) -> f64 {
        match self {
            Algo::Sha256d => 4_294_967_296.0,
            Algo::Scrypt => 65_536.0,
        }
    }

    /// The 256-bit target of a stratum difficulty, as eight little-endian 32-bit words:
    /// `0xffff0000 * 2^192 / diff` (scrypt miners divide the difficulty by 65536 first).
    pub fn target(self, diff: f64) -> [u32; 8] {
        let mut diff = match self {
            Algo::Sha256d => diff,
            Algo::Scrypt => diff / 65536.0,
        };
        let mut target = [0u32; 8];
        if !(diff.is_finite() && diff > 0.0) {
            return [u32::MAX; 8];
        }
        let mut k = 6;
        while k > 0 && diff > 1.0 {
            diff /= 4_294_967_296.0;
            k -= 1;
        }
        let m = 4_294_901_760.0 / diff;
        if m >= 18_446_744_073_709_551_615.0 {
            return [u32::MAX; 8];
        }
        let m = m as u64;
        target[k] = m as u32;
        target[k + 1] = (m >> 32) as u32;
        target
    }
}

/// Whether a hash (a little-endian 256-bit number) is at or below a target.
pub fn meets(hash: &[u8; 32], target: &[u32; 8]) -> bool {
    for i in (0..8).rev() {
        let h = u32::from_le_bytes([hash[4 * i], hash[4 * i + 1], hash[4 * i + 2], hash[4 * i + 3]]);
        if h != target[i] {
            return h < target[i];
        }
    }
    true
}

pub fn sha256d(data: &[u8]) -> [u8; 32] {
    let first = Sha256::digest(data);
    Sha256::digest(first).into()
}

/// A job as both tools hold it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    /// Stratum's prevhash text, as sent.
    pub prevhash: String,
    pub coinb1: Vec<u8>,
    pub coinb2: Vec<u8>,
    pub branches: Vec<[u8; 32]>,
    pub version: u32,
    pub nbits: u32,
    pub ntime: u32,
}

/// The merkle root for one extranonce1 / extranonce2.
pub fn merkle_root(job: &Job, extranonce1: &[u8], extranonce2: &[u8]) -> [u8; 32] {
    let mut coinbase = Vec::with_capacity(job.coinb1.len() + extranonce1.len() + extranonce2.len() + job.coinb2.len());
    coinbase.extend_from_slice(&job.coinb1);
    coinbase.extend_from_slice(extranonce1);
    coinbase.extend_from_slice(extranonce2);
    coinbase.extend_from_slice(&job.coinb2);
    let mut root = [0u8; 64];
    root[..32].copy_from_slice(&sha256d(&coinbase));
    for b in &job.branches {
        root[32..].copy_from_slice(b);
        let h = sha256d(&root);
        root[..32].copy_from_slice(&h);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&root[..32]);
    out
}

/// Header words as cpuminer builds them: the 8-hex fields are read as the bytes they
/// spell and loaded little-endian, the merkle root big-endian; the words are then hashed
/// big-endian. `nonce` is the number whose 8-hex text a miner submits.
pub fn header(job: &Job, version: u32, root: &[u8; 32], ntime: u32, nonce: u32) -> [u8; 80] {
    let le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let prev = crate::common::unhex(&job.prevhash).unwrap_or_else(|| vec![0; 32]);
    let mut words = [0u32; 20];
    words[0] = le(&version.to_be_bytes());
    for i in 0..8 {
        words[1 + i] = le(&prev[4 * i..4 * i + 4]);
        words[9 + i] = be(&root[4 * i..4 * i + 4]);
    }
    words[17] = le(&ntime.to_be_bytes());
    words[18] = le(&job.nbits.to_be_bytes());
    words[19] = le(&nonce.to_be_bytes());
    let mut out = [0u8; 80];
    for (o, w) in out.chunks_exact_mut(4).zip(words) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// BIP 310's rolled version.
pub fn rolled(version: u32, mask: u32, bits: u32) -> u32 {
    (version & !mask) | (bits & mask)
}
