//! Algorithm names: the set a CryptoNote miner says it can mine, which stratum dialect a
//! pool of an algorithm speaks, and how many hashes a difficulty-1 share stands for.
//!
//! The set is kept as 64 bits over the names xmrig knows, so a miner costs 8 bytes for it
//! instead of a list of strings.
//!
//! **Dialects.** Bitcoin-family algorithms (sha256d, scrypt, x11, lyra2rev2, ...) are mined
//! over stratum v1 (`mining.subscribe` / `mining.notify` with coinbase halves and a merkle
//! branch). `ghostrider` is in that family too: Raptoreum pools speak stratum v1, and xmrig
//! mines it through its v1 client. Everything xmrig mines with a blob (`cn*`, `rx/*`,
//! `argon2/*`, `astrobwt*`) and any name we don't know stay CryptoNote, the dialect this
//! proxy has always spoken. `kawpow` (and ethash / progpow) is neither: its pools speak
//! EthereumStratum (a header hash in `mining.notify`, submits carrying a mix hash), which
//! we don't parse, so [`Dialect::of`] answers `None` for it.
//!
//! **Dividers.** A CryptoNote difficulty counts hashes: difficulty 1000 is 1000 hashes on
//! average. A stratum v1 difficulty counts multiples of a "difficulty 1" target, whose
//! size depends on the algorithm's convention: for sha256d the target is
//! `0x00000000ffff0000...`, so a difficulty-1 share costs 2^32 hashes; for scrypt, miners
//! (cpuminer divides the stratum difficulty by 65536 before turning it into a target) and
//! pools use `0x0000ffff0000...`, 2^16 hashes. Other names follow the multipliers of the
//! node-stratum-pool family of pools (x16r, keccak, blake, groestl, lyra2rev2: 2^8, so
//! 2^24 hashes; lyra2re / lyra2z: 2^7; neoscrypt: 2^5), and ghostrider the 65536 factor
//! xmrig applies to its stratum difficulty. [`divider`] turns a difficulty into hashes for
//! hashrate figures; it never decides whether a share is valid.

/// Names we can represent; anything else is not tracked (and never refused).
const KNOWN: &[&str] = &[
    "cn/0",
    "cn/1",
    "cn/2",
    "cn/r",
    "cn/fast",
    "cn/half",
    "cn/xao",
    "cn/rto",
    "cn/rwz",
    "cn/zls",
    "cn/double",
    "cn/ccx",
    "cn-lite/0",
    "cn-lite/1",
    "cn-heavy/0",
    "cn-heavy/tube",
    "cn-heavy/xhv",
    "cn-pico",
    "cn-pico/tlo",
    "cn/upx2",
    "rx/0",
    "rx/2",
    "rx/wow",
    "rx/arq",
    "rx/graft",
    "rx/sfx",
    "rx/yada",
    "rx/keva",
    "argon2/chukwa",
    "argon2/chukwav2",
    "argon2/ninja",
    "kawpow",
    "ghostrider",
    "cn/gpu",
    "astrobwt",
    "astrobwt/v2",
];

fn index(name: &str) -> Option<usize> {
    KNOWN.iter().position(|k| k.eq_ignore_ascii_case(name))
}

/// The algorithms a miner listed at login. Empty means "did not say", which allows all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlgoSet(u64);

impl AlgoSet {
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> AlgoSet {
        AlgoSet(names.into_iter().filter_map(index).fold(0, |set, i| set | 1 << i))
    }

    /// Whether the miner can mine `algo`. Names we don't track are allowed: we only refuse
    /// what we know the miner did not list.
    pub fn allows(&self, algo: &str) -> bool {
        match index(algo) {
            Some(i) if self.0 != 0 => self.0 & (1 << i) != 0,
            _ => true,
        }
    }
}

/// The stratum dialect a pool of some algorithm speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// xmrig's JSON-RPC: `login`, `job` with a blob and a target, `submit` with a result.
    CryptoNote,
    /// Bitcoin-family stratum v1: `mining.subscribe`, `mining.notify`, `mining.submit`.
    StratumV1,
}

/// Stratum v1 algorithms and the pools' difficulty multiplier as a power of two: a
/// difficulty-1 share is 2^(32 - shift) hashes.
const V1_ALGOS: &[(&str, u32)] = &[
    ("sha256d", 0),
    ("sha256", 0),
    ("scrypt", 16),
    ("scryptn", 16),
    ("scrypt-n", 16),
    ("ghostrider", 16),
    ("x11", 0),
    ("x13", 0),
    ("x15", 0),
    ("c11", 0),
    ("nist5", 0),
    ("quark", 0),
    ("qubit", 0),
    ("skein", 0),
    ("x16r", 8),
    ("keccak", 8),
    ("blake", 8),
    ("groestl", 8),
    ("fugue", 8),
    ("lyra2re", 7),
    ("lyra2rev2", 8),
    ("lyra2rev3", 8),
    ("lyra2z", 7),
    ("neoscrypt", 5),
];

/// Algorithms whose pools speak EthereumStratum, which neither dialect here parses.
const ETHEREUM_STRATUM: &[&str] = &["kawpow", "ethash", "etchash", "progpow"];

fn v1_shift(algo: &str) -> Option<u32> {
    V1_ALGOS.iter().find(|(name, _)| name.eq_ignore_ascii_case(algo)).map(|(_, shift)| *shift)
}

impl Dialect {
    /// The dialect of a pool mining `algo`: stratum v1 for the Bitcoin family, `None` for
    /// EthereumStratum algorithms (kawpow), CryptoNote for everything else.
    pub fn of(algo: &str) -> Option<Dialect> {
        if v1_shift(algo).is_some() {
            Some(Dialect::StratumV1)
        } else if ETHEREUM_STRATUM.iter().any(|n| n.eq_ignore_ascii_case(algo)) {
            None
        } else {
            Some(Dialect::CryptoNote)
        }
    }
}

/// Hashes one difficulty-1 share stands for: 1 for CryptoNote algorithms (difficulty counts
/// hashes), 2^32 for sha256d, 2^16 for scrypt, by the pools' convention for the others.
/// Hashrate = sum of share difficulties x divider / seconds.
pub fn divider(algo: &str) -> f64 {
    match v1_shift(algo) {
        Some(shift) => 2f64.powi(32 - shift as i32),
        // CryptoNote, and kawpow as xmrig reports it (a difficulty in hashes).
        None => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_by_name() {
        for v1 in ["sha256d", "SHA256", "scrypt", "x11", "lyra2rev2", "ghostrider", "neoscrypt"] {
            assert_eq!(Dialect::of(v1), Some(Dialect::StratumV1), "{v1}");
        }
        for cn in ["cn/r", "cn-pico", "rx/0", "argon2/chukwav2", "astrobwt", "something-new"] {
            assert_eq!(Dialect::of(cn), Some(Dialect::CryptoNote), "{cn}");
        }
        assert_eq!(Dialect::of("kawpow"), None);
        assert_eq!(Dialect::of("ethash"), None);
    }

    #[test]
    fn dividers() {
        assert_eq!(divider("sha256d"), 4_294_967_296.0);
        assert_eq!(divider("sha256"), 4_294_967_296.0);
        assert_eq!(divider("scrypt"), 65_536.0);
        assert_eq!(divider("ghostrider"), 65_536.0);
        assert_eq!(divider("x11"), 4_294_967_296.0);
        assert_eq!(divider("lyra2rev2"), 16_777_216.0);
        assert_eq!(divider("lyra2z"), 33_554_432.0);
        assert_eq!(divider("neoscrypt"), 134_217_728.0);
        assert_eq!(divider("rx/0"), 1.0);
        assert_eq!(divider("cn/r"), 1.0);
        assert_eq!(divider("kawpow"), 1.0);
        // 0.004 on sha256d is about 17 million hashes, as cpuminer's capture implies.
        assert!((0.004 * divider("sha256d") - 17_179_869.184).abs() < 1e-6);
    }

    #[test]
    fn listed_algorithms_are_allowed_others_refused() {
        let s = AlgoSet::from_names(["cn-pico", "rx/0"]);
        assert!(s.allows("cn-pico"));
        assert!(s.allows("RX/0"));
        assert!(!s.allows("cn/r"));
        assert!(s.allows("some-new-algo"), "unknown names are not judged");
    }

    #[test]
    fn no_list_allows_everything() {
        assert!(AlgoSet::default().allows("cn/r"));
        assert!(AlgoSet::from_names(["unknown"]).allows("cn/r"));
    }

    #[test]
    fn the_table_fits_in_the_set() {
        assert!(KNOWN.len() <= 64);
    }
}
