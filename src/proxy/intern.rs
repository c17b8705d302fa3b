//! Shared copies of the login strings a farm repeats: every rig usually logs in with the
//! same wallet and the same miner version, so each distinct string is kept once and miners
//! hold a reference (16 bytes instead of a 100-byte wallet plus allocator overhead).
//! Strings no miner uses any more are dropped by `sweep`, so the table follows the miners.

use std::collections::HashSet;
use std::sync::Arc;

/// Distinct strings in use, bounded by the miners that hold them.
#[derive(Debug, Default)]
pub(super) struct Interner {
    strings: HashSet<Arc<str>>,
}

impl Interner {
    /// The shared copy of `s`.
    pub(super) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.strings.get(s) {
            return found.clone();
        }
        let new: Arc<str> = Arc::from(s);
        self.strings.insert(new.clone());
        new
    }

    /// Forgets strings held by nobody else.
    pub(super) fn sweep(&mut self) {
        self.strings.retain(|s| Arc::strong_count(s) > 1);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.strings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_copy_and_unused_ones_are_swept() {
        let mut i = Interner::default();
        let a = i.get("WALLET");
        let b = i.get("WALLET");
        assert!(Arc::ptr_eq(&a, &b));
        let c = i.get("XMRig/6.26.0");
        assert_eq!(i.len(), 2);
        drop(c);
        i.sweep();
        assert_eq!(i.len(), 1, "only the wallet is still held");
        drop((a, b));
        i.sweep();
        assert_eq!(i.len(), 0);
    }
}
