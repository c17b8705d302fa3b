//! Rebuilding the 80-byte block header a miner hashed, and what its hash is worth.
//!
//! The coinbase transaction is `coinb1 || extranonce1 || extranonce2 || coinb2`; its
//! double SHA-256 is folded with each merkle branch in turn (`root = sha256d(root ||
//! branch)`) into the merkle root. The header is then
//!
//! ```text
//! version (4, LE) | prevhash (32) | merkle root (32) | ntime (4, LE) | nbits (4, LE) | nonce (4, LE)
//! ```
//!
//! `version`, `nbits`, `ntime` and the submitted `nonce` are hex of big-endian numbers on the
//! wire and little-endian in the header. `prevhash` is the odd one: stratum sends the 32
//! header bytes with each 4-byte word byte-reversed (cpuminer reads every word with a
//! little-endian load and hashes it big-endian). Seen from a block explorer, whose hash is
//! the header field reversed, stratum's string is the explorer's eight 8-digit words in
//! reverse order, which is why real prevhashes *end* in `00000000`. The merkle root goes
//! into the header exactly as sha256d produced it.
//!
//! A hash is a 256-bit little-endian number. Its difficulty is `diff1 / hash`, where diff1
//! is `0xffff * 2^208` for sha256d (the target of Bitcoin's difficulty 1) and 2^16 times
//! that for scrypt, whose miners and pools count difficulty against `0x0000ffff00...`
//! (see [`crate::stratum::algo`]).

use super::job::V1Job;
use sha2::{Digest, Sha256};

/// How a header is hashed, for the algorithms whose shares we can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Pow {
    /// Double SHA-256 (Bitcoin and its forks).
    Sha256d,
    /// scrypt with N=1024, r=1, p=1, the header as both password and salt (Litecoin).
    Scrypt,
}

/// Bitcoin's difficulty-1 target as a number: `0xffff * 2^208`.
fn diff1_sha256d() -> f64 {
    65535.0 * 2f64.powi(208)
}

impl Pow {
    /// The checker for an algorithm name; `None` for algorithms whose shares we forward
    /// unchecked (x11, scrypt with another N, ...).
    pub fn for_algo(algo: &str) -> Option<Pow> {
        if algo.eq_ignore_ascii_case("sha256d") || algo.eq_ignore_ascii_case("sha256") {
            Some(Pow::Sha256d)
        } else if algo.eq_ignore_ascii_case("scrypt") {
            Some(Pow::Scrypt)
        } else {
            None
        }
    }

    /// The proof-of-work hash of a header.
    pub fn hash(self, header: &[u8; 80]) -> [u8; 32] {
        match self {
            Pow::Sha256d => sha256d(header),
            Pow::Scrypt => scrypt_1024_1_1(header),
        }
    }

    /// The difficulty a hash reaches (infinite for an all-zero hash).
    pub fn difficulty(self, hash: &[u8; 32]) -> f64 {
        let diff1 = match self {
            Pow::Sha256d => diff1_sha256d(),
            Pow::Scrypt => diff1_sha256d() * 65536.0,
        };
        diff1 / hash_value(hash)
    }
}

/// A hash read as a little-endian 256-bit number, rounded to an f64.
pub fn hash_value(hash: &[u8; 32]) -> f64 {
    hash.iter().rev().fold(0.0, |acc, &b| acc * 256.0 + f64::from(b))
}

/// SHA-256 of SHA-256.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

fn scrypt_1024_1_1(header: &[u8; 80]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // Neither call can fail with these constants (log2 N = 10, r = p = 1, 32 output bytes);
    // if one ever did, the all-ones hash reads as difficulty ~0 and the share is refused.
    let Ok(params) = scrypt::Params::new(10, 1, 1) else { return [0xff; 32] };
    if scrypt::scrypt(header, header, &params, &mut out).is_err() {
        return [0xff; 32];
    }
    out
}

/// sha256d of the coinbase `coinb1 || extranonce1 || prefix || extranonce2 || coinb2`,
/// hashed in pieces so the coinbase is never assembled in memory.
pub fn coinbase_hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    Sha256::digest(h.finalize()).into()
}

/// Folds the merkle branch into the coinbase hash.
pub fn merkle_root(coinbase_hash: [u8; 32], branches: &[[u8; 32]]) -> [u8; 32] {
    let mut pair = [0u8; 64];
    let mut root = coinbase_hash;
    for branch in branches {
        pair[..32].copy_from_slice(&root);
        pair[32..].copy_from_slice(branch);
        root = sha256d(&pair);
    }
    root
}

/// The header's previous-block field from stratum's prevhash: each 4-byte word reversed.
pub fn prevhash_to_header(stratum: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(stratum.chunks_exact(4)) {
        o.copy_from_slice(&[w[3], w[2], w[1], w[0]]);
    }
    out
}

/// The version a share was hashed with, BIP 310: the job's bits outside the mask, the
/// miner's inside it.
pub fn rolled_version(job_version: u32, mask: u32, version_bits: u32) -> u32 {
    (job_version & !mask) | (version_bits & mask)
}

/// The 80-byte header of `job` with a merkle root, version, ntime and nonce.
pub fn header(job: &V1Job, version: u32, merkle_root: &[u8; 32], ntime: u32, nonce: u32) -> [u8; 80] {
    let mut h = [0u8; 80];
    h[0..4].copy_from_slice(&version.to_le_bytes());
    h[4..36].copy_from_slice(&prevhash_to_header(&job.prevhash));
    h[36..68].copy_from_slice(merkle_root);
    h[68..72].copy_from_slice(&ntime.to_le_bytes());
    h[72..76].copy_from_slice(&job.nbits.to_le_bytes());
    h[76..80].copy_from_slice(&nonce.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, BLOCK_170, BTC_GENESIS, BTC_GENESIS_COINBASE, Block, LTC_GENESIS};
    use super::super::job::{hex_array, hex_vec};
    use super::*;

    /// A block explorer's hash (big-endian hex) as raw bytes.
    fn explorer(hex: &str) -> [u8; 32] {
        let mut b = hex_array::<32>(hex).unwrap();
        b.reverse();
        b
    }

    /// Stratum's prevhash for an explorer hash: the eight words in reverse order.
    fn stratum_prevhash(hex: &str) -> [u8; 32] {
        let words: Vec<&str> = (0..8).map(|i| &hex[i * 8..i * 8 + 8]).rev().collect();
        hex_array::<32>(&words.concat()).unwrap()
    }

    fn job_of(b: &Block) -> V1Job {
        V1Job {
            job_id: "t".into(),
            prevhash: stratum_prevhash(b.prev),
            coinb1: Box::new([]),
            coinb2: Box::new([]),
            branches: Box::new([]),
            version: b.version,
            nbits: b.nbits,
            ntime: b.ntime,
            clean: true,
        }
    }

    #[test]
    fn bitcoin_genesis_from_its_coinbase_split_like_a_stratum_job() {
        let cb = hex_vec(BTC_GENESIS_COINBASE).unwrap();
        // Any cut works: the pool's halves around extranonce1, our prefix and extranonce2.
        let (coinb1, rest) = cb.split_at(42);
        let (e1, rest) = rest.split_at(4);
        let (prefix, rest) = rest.split_at(2);
        let (e2, coinb2) = rest.split_at(6);
        let root = merkle_root(coinbase_hash(&[coinb1, e1, prefix, e2, coinb2]), &[]);
        assert_eq!(root, explorer(BTC_GENESIS.merkle_root));
        let h = header(&job_of(&BTC_GENESIS), BTC_GENESIS.version, &root, BTC_GENESIS.ntime, BTC_GENESIS.nonce);
        assert_eq!(Pow::Sha256d.hash(&h), explorer(BTC_GENESIS.hash));
        assert!(Pow::Sha256d.difficulty(&Pow::Sha256d.hash(&h)) >= 1.0);
    }

    #[test]
    fn block_170_merkle_fold_and_word_swapped_prevhash() {
        // Two transactions: the coinbase and the first bitcoin payment.
        let root = merkle_root(explorer(fixtures::BLOCK_170_TXIDS[0]), &[explorer(fixtures::BLOCK_170_TXIDS[1])]);
        assert_eq!(root, explorer(BLOCK_170.merkle_root));
        let h = header(&job_of(&BLOCK_170), BLOCK_170.version, &root, BLOCK_170.ntime, BLOCK_170.nonce);
        assert_eq!(sha256d(&h), explorer(BLOCK_170.hash));
    }

    #[test]
    fn litecoin_genesis_scrypt_meets_its_own_target() {
        let b = &LTC_GENESIS;
        let h = header(&job_of(b), b.version, &explorer(b.merkle_root), b.ntime, b.nonce);
        assert_eq!(sha256d(&h), explorer(b.hash), "the header is the real one");
        let pow = Pow::Scrypt.hash(&h);
        // nbits 0x1e0ffff0: target 0x0ffff0 * 2^216, which in scrypt difficulty is 16.
        let target = f64::from(0x0f_fff0) * 2f64.powi(216);
        assert!(hash_value(&pow) <= target, "scrypt hash above the block target");
        assert!(Pow::Scrypt.difficulty(&pow) >= 16.0);
        assert!(Pow::Sha256d.difficulty(&sha256d(&h)) < 1.0, "sha256d of it is no block");
    }

    #[test]
    fn scrypt_primitive_matches_rfc_7914() {
        // RFC 7914 section 12, first vector: P = "", S = "", N = 16, r = 1, p = 1, dkLen = 64.
        let mut out = [0u8; 64];
        scrypt::scrypt(b"", b"", &scrypt::Params::new(4, 1, 1).unwrap(), &mut out).unwrap();
        let expect = "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442\
                      fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906";
        assert_eq!(out.to_vec(), hex_vec(expect).unwrap());
    }

    #[test]
    fn every_share_of_the_cpuminer_capture_reaches_its_difficulty() {
        let e1 = hex_vec(fixtures::CAPTURE_EXTRANONCE1).unwrap();
        let e2 = hex_vec(fixtures::CAPTURE_EXTRANONCE2).unwrap();
        let jobs = fixtures::capture_notifies().map(|n| V1Job::from_params(&n).unwrap());
        for (i, ntime, nonce) in fixtures::CAPTURE_SHARES {
            let job = &jobs[i];
            let root = merkle_root(coinbase_hash(&[&job.coinb1, &e1, &e2, &job.coinb2]), &job.branches);
            let ntime = super::super::job::hex_u32(ntime).unwrap();
            let nonce = super::super::job::hex_u32(nonce).unwrap();
            let h = header(job, job.version, &root, ntime, nonce);
            let d = Pow::Sha256d.difficulty(&Pow::Sha256d.hash(&h));
            assert!(d >= fixtures::CAPTURE_DIFF, "share {nonce:08x} of job {i}: difficulty {d}");
            // The same nonce read the other way round is a random hash: far below 0.004.
            let h = header(job, job.version, &root, ntime, nonce.swap_bytes());
            assert!(Pow::Sha256d.difficulty(&Pow::Sha256d.hash(&h)) < fixtures::CAPTURE_DIFF);
        }
    }

    #[test]
    fn difficulty_of_known_hashes() {
        // A hash exactly at the difficulty-1 target is difficulty 1.
        let mut h = [0u8; 32];
        h[26] = 0xff;
        h[27] = 0xff;
        assert!((Pow::Sha256d.difficulty(&h) - 1.0).abs() < 1e-12);
        assert!((Pow::Scrypt.difficulty(&h) - 65536.0).abs() < 1e-6);
        // Twice the target (0x1fffe * 2^208): difficulty 0.5; all ones: about 2^-32.
        h[26] = 0xfe;
        h[28] = 1;
        assert!((Pow::Sha256d.difficulty(&h) - 0.5).abs() < 1e-9);
        assert!((Pow::Sha256d.difficulty(&[0xff; 32]) - 2f64.powi(-32)).abs() < 1e-12);
        assert_eq!(Pow::Sha256d.difficulty(&[0; 32]), f64::INFINITY);
    }

    #[test]
    fn version_rolling_keeps_bits_outside_the_mask() {
        assert_eq!(rolled_version(0x2000_0000, 0x1fff_e000, 0x0000_6000), 0x2000_6000);
        assert_eq!(rolled_version(0x2000_0000, 0x1fff_e000, 0xffff_ffff), 0x3fff_e000);
        assert_eq!(rolled_version(0x2000_0000, 0, 0x1234), 0x2000_0000);
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(Pow::for_algo("SHA256d"), Some(Pow::Sha256d));
        assert_eq!(Pow::for_algo("sha256"), Some(Pow::Sha256d));
        assert_eq!(Pow::for_algo("scrypt"), Some(Pow::Scrypt));
        assert_eq!(Pow::for_algo("x11"), None);
        assert_eq!(Pow::for_algo("scryptn"), None);
    }
}
