//! Sharing one pool session between many miners: the stratum v1 counterpart of the
//! NiceHash fixed byte.
//!
//! The pool gives us extranonce1 `E` and an extranonce2 of `N` bytes. We give each miner
//! extranonce1 `E || P`, where the prefix `P` of `k` bytes is unique among the miners of
//! the upstream, and an extranonce2 of `N - k` bytes. A miner's submit goes to the pool
//! with `P || extranonce2` as the pool's extranonce2, so the coinbase the pool rebuilds is
//! byte for byte the one the miner hashed, and no two miners can hash the same header.
//!
//! - `N` in 3..=5: `k = 1`, 256 miners, each keeping 2-4 bytes.
//! - `N >= 6`: `k = 2`, 65,536 miners, each keeping `N - 2` bytes. cgminer and the ASIC
//!   firmware built on it refuse an extranonce2 under 2 bytes and submit at most 8 (its
//!   counter is a u64), so `N` of 11 or more leaves those miners unable to mine here; we
//!   still take 2 bytes (a bigger prefix would fit them and cost nothing, if it is ever
//!   needed).
//! - `N < 3`: no split. Each miner gets an upstream of its own and the pool's values as
//!   they are (`k = 0`, one slot, freed at once like the simple-mode table).
//!
//! A prefix whose miner left is *dead* until the pool's next `clean_jobs` notify: the miner
//! may have been mid-search, and a newcomer with the same prefix on the same jobs could
//! submit its shares again. The table holds only prefixes that are taken (active or dead),
//! in a hash map, so an upstream with three miners costs three entries, not the 65,536 an
//! array would need up front.

use crate::MinerId;
use std::collections::HashMap;

/// How an upstream's extranonce2 is divided between our prefix and the miner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Bytes of prefix we add to extranonce1 (0, 1 or 2).
    pub prefix_len: usize,
    /// The extranonce2 size miners are given.
    pub miner_size: usize,
}

impl Split {
    /// The split for a pool's extranonce2 size.
    pub fn for_pool(extranonce2_size: usize) -> Split {
        let prefix_len = match extranonce2_size {
            0..=2 => 0,
            3..=5 => 1,
            _ => 2,
        };
        Split { prefix_len, miner_size: extranonce2_size - prefix_len }
    }

    /// How many miners can share the upstream: 256^k.
    pub fn capacity(&self) -> usize {
        1 << (8 * self.prefix_len)
    }

    /// The pool's extranonce2 size.
    pub fn pool_size(&self) -> usize {
        self.prefix_len + self.miner_size
    }
}

/// A miner's prefix: 0 to 2 bytes, big-endian of its slot number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    bytes: [u8; 2],
    len: u8,
}

impl Prefix {
    /// The prefix of `slot` in a table of `len`-byte prefixes.
    pub fn new(slot: u16, len: usize) -> Prefix {
        let be = slot.to_be_bytes();
        let mut bytes = [0u8; 2];
        let len = len.min(2);
        bytes[..len].copy_from_slice(&be[2 - len..]);
        Prefix { bytes, len: len as u8 }
    }

    /// The bytes appended to the pool's extranonce1.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The slot number this prefix encodes.
    pub fn slot(&self) -> u16 {
        match self.len {
            2 => u16::from_be_bytes(self.bytes),
            1 => u16::from(self.bytes[0]),
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Active(MinerId),
    Dead,
}

/// The prefixes of one upstream, handed out round-robin.
#[derive(Debug)]
pub struct PrefixTable {
    prefix_len: usize,
    capacity: usize,
    /// Taken prefixes only; a missing slot number is free.
    taken: HashMap<u16, Slot>,
    cursor: usize,
    active: usize,
    dead: usize,
}

impl PrefixTable {
    /// An empty table for `split`.
    pub fn new(split: Split) -> PrefixTable {
        PrefixTable { prefix_len: split.prefix_len, capacity: split.capacity(), taken: HashMap::new(), cursor: 0, active: 0, dead: 0 }
    }

    /// Gives `miner` the next free prefix from the cursor on; `None` when every prefix is
    /// active or dead.
    pub fn add(&mut self, miner: MinerId) -> Option<Prefix> {
        if self.active + self.dead == self.capacity {
            return None;
        }
        // At most `capacity` lookups, and few while the table is sparse.
        for i in 0..self.capacity {
            let slot = ((self.cursor + i) % self.capacity) as u16;
            if let std::collections::hash_map::Entry::Vacant(e) = self.taken.entry(slot) {
                e.insert(Slot::Active(miner));
                self.cursor = (usize::from(slot) + 1) % self.capacity;
                self.active += 1;
                return Some(Prefix::new(slot, self.prefix_len));
            }
        }
        None
    }

    /// Gives `miner` the prefix of `slot` (a miner that brings its prefix along, moving
    /// here from elsewhere); false when that prefix is taken or out of range.
    pub fn add_as(&mut self, slot: u16, miner: MinerId) -> bool {
        if usize::from(slot) >= self.capacity || self.taken.contains_key(&slot) {
            return false;
        }
        self.taken.insert(slot, Slot::Active(miner));
        self.active += 1;
        true
    }

    /// Frees a prefix given to a miner who never mined with it (a move called off).
    pub fn release(&mut self, slot: u16, miner: MinerId) {
        if self.taken.get(&slot) == Some(&Slot::Active(miner)) {
            self.taken.remove(&slot);
            self.active -= 1;
        }
    }

    /// Every miner holding a prefix, by slot number.
    pub fn active(&self) -> impl Iterator<Item = (u16, MinerId)> + '_ {
        self.taken.iter().filter_map(|(slot, s)| match s {
            Slot::Active(m) => Some((*slot, *m)),
            Slot::Dead => None,
        })
    }

    /// Bytes of each prefix.
    pub fn prefix_len(&self) -> usize {
        self.prefix_len
    }

    /// The miner left: its prefix is dead until [`clear_dead`](Self::clear_dead). A prefix
    /// held by someone else is left alone. With no prefix (one miner per upstream) the slot
    /// is free at once: the upstream exists to be handed to the next miner.
    pub fn remove(&mut self, prefix: Prefix, miner: MinerId) {
        let slot = prefix.slot();
        if usize::from(prefix.len) != self.prefix_len || self.taken.get(&slot) != Some(&Slot::Active(miner)) {
            return;
        }
        self.active -= 1;
        if self.prefix_len == 0 {
            self.taken.remove(&slot);
        } else {
            self.taken.insert(slot, Slot::Dead);
            self.dead += 1;
        }
    }

    /// Frees the dead prefixes: the pool sent a `clean_jobs` notify.
    pub fn clear_dead(&mut self) {
        if self.dead == 0 {
            return;
        }
        self.taken.retain(|_, s| *s != Slot::Dead);
        self.dead = 0;
        // Give memory back after a crowd has left.
        if self.taken.capacity() > 64 && self.taken.len() < self.taken.capacity() / 4 {
            self.taken.shrink_to_fit();
        }
    }

    /// The miner holding `prefix`, if any.
    pub fn miner_at(&self, prefix: Prefix) -> Option<MinerId> {
        match self.taken.get(&prefix.slot()) {
            Some(Slot::Active(m)) if usize::from(prefix.len) == self.prefix_len => Some(*m),
            _ => None,
        }
    }

    /// How many miners the table can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// (free, dead, active) prefix counts.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.capacity - self.active - self.dead, self.dead, self.active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn split_arithmetic() {
        let s = |n| Split::for_pool(n);
        assert_eq!(s(0), Split { prefix_len: 0, miner_size: 0 });
        assert_eq!(s(2), Split { prefix_len: 0, miner_size: 2 });
        assert_eq!(s(3), Split { prefix_len: 1, miner_size: 2 });
        assert_eq!(s(4), Split { prefix_len: 1, miner_size: 3 });
        assert_eq!(s(5), Split { prefix_len: 1, miner_size: 4 });
        assert_eq!(s(6), Split { prefix_len: 2, miner_size: 4 });
        assert_eq!(s(8), Split { prefix_len: 2, miner_size: 6 });
        assert_eq!(s(10), Split { prefix_len: 2, miner_size: 8 });
        assert_eq!(s(16), Split { prefix_len: 2, miner_size: 14 }, "beyond cgminer's 8, documented");
        for n in 0..=32 {
            let split = s(n);
            assert_eq!(split.pool_size(), n);
            if n >= 3 {
                assert!(split.miner_size >= 2, "cgminer needs 2 bytes at least (N = {n})");
            }
        }
        assert_eq!((s(2).capacity(), s(4).capacity(), s(8).capacity()), (1, 256, 65_536));
    }

    #[test]
    fn prefixes_are_big_endian_slot_numbers() {
        assert_eq!(Prefix::new(0x0102, 2).as_bytes(), [1, 2]);
        assert_eq!(Prefix::new(7, 1).as_bytes(), [7]);
        assert_eq!(Prefix::new(0, 0).as_bytes(), [0u8; 0]);
        assert_eq!(Prefix::new(0xbeef, 2).slot(), 0xbeef);
    }

    #[test]
    fn one_byte_table_fills_256_unique_prefixes_then_refuses() {
        let mut t = PrefixTable::new(Split::for_pool(4));
        let mut seen = HashSet::new();
        for i in 0..256 {
            let p = t.add(MinerId(i)).expect("free prefix");
            assert_eq!(p.as_bytes().len(), 1);
            assert!(seen.insert(p), "{p:?} given twice");
        }
        assert_eq!(t.add(MinerId(999)), None);
        assert_eq!(t.counts(), (0, 0, 256));
    }

    #[test]
    fn two_byte_table_holds_65536_miners_and_memory_follows_use() {
        let mut t = PrefixTable::new(Split::for_pool(8));
        assert_eq!(t.capacity(), 65_536);
        assert_eq!(t.taken.capacity(), 0, "nothing allocated up front");
        let a = t.add(MinerId(1)).unwrap();
        let b = t.add(MinerId(2)).unwrap();
        assert_eq!((a.as_bytes(), b.as_bytes()), (&[0, 0][..], &[0, 1][..]));
        assert!(t.taken.capacity() < 64);
        for i in 3..=65_536 {
            t.add(MinerId(i)).expect("free prefix");
        }
        assert_eq!(t.add(MinerId(0)), None);
        assert_eq!(t.counts(), (0, 0, 65_536));
    }

    #[test]
    fn a_departed_miners_prefix_is_dead_until_a_clean_job() {
        let mut t = PrefixTable::new(Split::for_pool(3));
        let prefixes: Vec<Prefix> = (0..256).map(|i| t.add(MinerId(i)).unwrap()).collect();
        t.remove(prefixes[7], MinerId(7));
        assert_eq!(t.counts(), (0, 1, 255));
        assert_eq!(t.miner_at(prefixes[7]), None);
        assert_eq!(t.add(MinerId(1000)), None, "a dead prefix is not free");
        t.clear_dead();
        assert_eq!(t.counts(), (1, 0, 255));
        assert_eq!(t.add(MinerId(1000)), Some(prefixes[7]));
        assert_eq!(t.miner_at(prefixes[7]), Some(MinerId(1000)));
    }

    #[test]
    fn round_robin_and_strangers() {
        let mut t = PrefixTable::new(Split::for_pool(8));
        let a = t.add(MinerId(1)).unwrap();
        t.remove(a, MinerId(2));
        assert_eq!(t.counts().2, 1, "removal by a stranger is ignored");
        t.remove(a, MinerId(1));
        t.clear_dead();
        assert_ne!(t.add(MinerId(3)), Some(a), "the next miner gets the next prefix, not the one just freed");
        t.remove(Prefix::new(0, 1), MinerId(3));
        assert_eq!(t.counts().2, 1, "a prefix of the wrong length matches nothing");
    }

    #[test]
    fn no_split_has_one_slot_freed_at_once() {
        let mut t = PrefixTable::new(Split::for_pool(2));
        let p = t.add(MinerId(1)).unwrap();
        assert!(p.as_bytes().is_empty());
        assert_eq!(t.add(MinerId(2)), None);
        t.remove(p, MinerId(1));
        assert_eq!(t.counts(), (1, 0, 0));
        assert_eq!(t.add(MinerId(2)), Some(p));
    }

    #[test]
    fn clearing_after_a_crowd_gives_memory_back() {
        let mut t = PrefixTable::new(Split::for_pool(8));
        let ps: Vec<Prefix> = (0..10_000).map(|i| t.add(MinerId(i)).unwrap()).collect();
        for (i, p) in ps.iter().enumerate() {
            t.remove(*p, MinerId(i));
        }
        t.clear_dead();
        assert!(t.taken.capacity() < 1000, "capacity {}", t.taken.capacity());
        assert_eq!(t.counts(), (65_536, 0, 0));
    }
}
