//! Algorithm names a miner says it can mine, kept as a 64-bit set over the names xmrig
//! knows, so a miner costs 8 bytes for it instead of a list of strings.

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
