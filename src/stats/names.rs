//! Names of worker records: how they are kept, found, and shared.
//!
//! [`Name`] keeps a name of up to 15 bytes inside the record (rig ids, IPv4 addresses,
//! Windows host names: no allocation at all), and a longer one behind a thin pointer, in the
//! 16 bytes a `Box<str>` takes.
//!
//! [`NameIndex`] is an open-addressing table of record keys (`u32`, 4 bytes a slot): the
//! names stay in the records, and the table asks the caller for a key's name when it
//! compares or moves entries. Names come from miners, so they are hashed with a keyed
//! hasher (`RandomState`) and a crafted set of names cannot pile up on one slot. Linear
//! probing, at most three quarters full, with backward-shift deletion: no tombstones, so a
//! table whose records come and go never needs to grow past its peak.
//!
//! [`Interned`] keeps strings that many records share (the login user of a farm's rigs) once,
//! counted, behind a `u32`.

use serde::{Serialize, Serializer};
use slab::Slab;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::ops::Deref;

/// Bytes a name can have and still be kept inline.
const INLINE: usize = 15;

/// The length of an inline name. An enum rather than a `u8`, so the values it cannot take
/// tell the two kinds of [`Name`] apart without a tag byte of their own.
#[derive(Clone, Copy)]
#[repr(u8)]
#[rustfmt::skip]
enum Len { L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14, L15 }

#[rustfmt::skip]
const LENS: [Len; INLINE + 1] = [
    Len::L0, Len::L1, Len::L2, Len::L3, Len::L4, Len::L5, Len::L6, Len::L7,
    Len::L8, Len::L9, Len::L10, Len::L11, Len::L12, Len::L13, Len::L14, Len::L15,
];

enum Repr {
    Inline(Len, [u8; INLINE]),
    Heap(Box<Box<str>>),
}

/// A record's name, read as a `&str`: inline up to 15 bytes, else on the heap.
pub struct Name(Repr);

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Name(Repr::Inline(LENS[s.len()], bytes))
        } else {
            Name(Repr::Heap(Box::new(s.into())))
        }
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        match &self.0 {
            // Always whole UTF-8: the bytes were copied from a `&str`.
            Repr::Inline(len, bytes) => std::str::from_utf8(&bytes[..*len as usize]).unwrap_or(""),
            Repr::Heap(s) => s,
        }
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

const EMPTY: u32 = u32::MAX;

/// Record keys by name. The caller owns the names: every call takes `name_of`, which must
/// give the name of any key in the table.
#[derive(Debug, Default)]
pub struct NameIndex {
    slots: Box<[u32]>,
    len: usize,
    hasher: RandomState,
}

impl NameIndex {
    /// The key whose name is `name`.
    pub fn find<'a>(&self, name: &str, name_of: impl Fn(u32) -> &'a str) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(name);
        loop {
            match self.slots[i] {
                EMPTY => return None,
                k if name_of(k) == name => return Some(k),
                _ => i = (i + 1) & self.mask(),
            }
        }
    }

    /// Adds `key`, whose name (`name_of(key)`) must not be in the table yet.
    pub fn insert<'a>(&mut self, key: u32, name_of: impl Fn(u32) -> &'a str) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow(&name_of);
        }
        self.place(key, name_of(key));
        self.len += 1;
    }

    /// Removes `key`; `name_of(key)` must still answer.
    pub fn remove<'a>(&mut self, key: u32, name_of: impl Fn(u32) -> &'a str) {
        if self.slots.is_empty() {
            return;
        }
        let mask = self.mask();
        let mut hole = self.home(name_of(key));
        while self.slots[hole] != key {
            if self.slots[hole] == EMPTY {
                return;
            }
            hole = (hole + 1) & mask;
        }
        // Backward shift: pull later entries of the run into the hole when the hole lies
        // between their home slot and where they sit.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let k = self.slots[j];
            if k == EMPTY {
                break;
            }
            let home = self.home(name_of(k));
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = k;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
    }

    /// Keys in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no key is in the table.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots allocated (4 bytes each).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn home(&self, name: &str) -> usize {
        self.hasher.hash_one(name) as usize & self.mask()
    }

    fn place(&mut self, key: u32, name: &str) {
        let mut i = self.home(name);
        while self.slots[i] != EMPTY {
            i = (i + 1) & self.mask();
        }
        self.slots[i] = key;
    }

    fn grow<'a>(&mut self, name_of: &impl Fn(u32) -> &'a str) {
        let size = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size].into_boxed_slice());
        for k in old.iter().copied().filter(|&k| k != EMPTY) {
            self.place(k, name_of(k));
        }
    }
}

/// Shared strings, each kept once with a count of the records holding it.
#[derive(Debug, Default)]
pub struct Interned {
    strings: Slab<(Box<str>, u32)>,
    index: NameIndex,
}

impl Interned {
    /// The key of `s`, added if new; each call must be matched by one [`Interned::release`].
    pub fn hold(&mut self, s: &str) -> u32 {
        let strings = &self.strings;
        let name_of = |k: u32| strings.get(k as usize).map_or("", |e| &*e.0);
        if let Some(k) = self.index.find(s, name_of) {
            if let Some(e) = self.strings.get_mut(k as usize) {
                e.1 += 1;
            }
            return k;
        }
        let k = self.strings.insert((s.into(), 1)) as u32;
        let strings = &self.strings;
        self.index.insert(k, |k| strings.get(k as usize).map_or("", |e| &*e.0));
        k
    }

    /// One holder of `key` let go; the string goes with its last holder.
    pub fn release(&mut self, key: u32) {
        let Some(e) = self.strings.get_mut(key as usize) else { return };
        e.1 = e.1.saturating_sub(1);
        if e.1 == 0 {
            let strings = &self.strings;
            self.index.remove(key, |k| strings.get(k as usize).map_or("", |e| &*e.0));
            self.strings.remove(key as usize);
        }
    }

    /// The string behind `key` ("" for a key not held).
    pub fn get(&self, key: u32) -> &str {
        self.strings.get(key as usize).map_or("", |e| &e.0)
    }

    /// Distinct strings held.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// A slab of names with an index over it, checked against a `HashMap`.
    #[derive(Default)]
    struct Table {
        names: Slab<String>,
        index: NameIndex,
    }

    impl Table {
        fn find(&self, name: &str) -> Option<u32> {
            let names = &self.names;
            self.index.find(name, |k| &names[k as usize])
        }
        fn add(&mut self, name: &str) -> u32 {
            let k = self.names.insert(name.to_string()) as u32;
            let names = &self.names;
            self.index.insert(k, |k| &names[k as usize]);
            k
        }
        fn remove(&mut self, k: u32) {
            let names = &self.names;
            self.index.remove(k, |k| &names[k as usize]);
            self.names.remove(k as usize);
        }
    }

    #[test]
    fn short_names_stay_inline_and_every_name_reads_back() {
        assert_eq!(std::mem::size_of::<Name>(), 16);
        assert_eq!(std::mem::size_of::<Option<Name>>(), 16);
        for s in ["", "a", "sim-1234", "DESKTOP-ABC1234", "255.255.255.255", "rig-é-ü", "sixteen-bytes-xx", &"W".repeat(128)] {
            let n = Name::from(s);
            assert_eq!(&*n, s);
            assert_eq!(matches!(n.0, Repr::Inline(..)), s.len() <= INLINE, "{s}");
            assert_eq!(serde_json::to_string(&n).unwrap(), serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn names_are_found_until_removed() {
        let mut t = Table::default();
        assert_eq!(t.find("a"), None);
        let keys: Vec<u32> = (0..1000).map(|i| t.add(&format!("rig{i}"))).collect();
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(t.find(&format!("rig{i}")), Some(k));
        }
        for &k in keys.iter().step_by(2) {
            t.remove(k);
        }
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(t.find(&format!("rig{i}")), (i % 2 == 1).then_some(k), "rig{i}");
        }
        assert_eq!(t.index.len(), 500);
    }

    #[test]
    fn a_table_whose_names_come_and_go_keeps_its_size() {
        let mut t = Table::default();
        let mut live: Vec<u32> = (0..1000).map(|i| t.add(&format!("a{i}"))).collect();
        let peak = t.index.capacity();
        for round in 0..50 {
            for k in live.drain(..) {
                t.remove(k);
            }
            live = (0..1000).map(|i| t.add(&format!("r{round}-{i}"))).collect();
        }
        assert_eq!(t.index.capacity(), peak);
        assert_eq!(peak, 2048, "1000 names fill at most three quarters");
    }

    proptest! {
        /// Any sequence of inserts and removals answers as a `HashMap` would, including
        /// removals in the middle of probe runs that wrap around the table's end.
        #[test]
        fn the_index_agrees_with_a_hashmap(ops in proptest::collection::vec((any::<bool>(), 0u8..40), 0..400)) {
            let mut t = Table::default();
            let mut model: HashMap<String, u32> = HashMap::new();
            for (add, n) in ops {
                let name = format!("w{n}");
                if add && !model.contains_key(&name) {
                    model.insert(name.clone(), t.add(&name));
                } else if !add && let Some(k) = model.remove(&name) {
                    t.remove(k);
                }
                for i in 0..40u8 {
                    let name = format!("w{i}");
                    prop_assert_eq!(t.find(&name), model.get(&name).copied());
                }
            }
        }
    }

    #[test]
    fn shared_strings_are_kept_once_while_held() {
        let mut s = Interned::default();
        let a = s.hold("WALLET");
        let b = s.hold("WALLET");
        let c = s.hold("other");
        assert_eq!((a, s.len()), (b, 2));
        assert_eq!((s.get(a), s.get(c)), ("WALLET", "other"));
        s.release(a);
        assert_eq!(s.get(b), "WALLET", "one holder left");
        s.release(b);
        assert_eq!((s.len(), s.get(a)), (1, ""));
        assert_eq!(s.hold("WALLET"), a, "the slot is reused");
    }
}
