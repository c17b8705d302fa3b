//! The slot table of one upstream: which miner holds which fixed byte. NiceHash upstreams
//! have 256 slots (one per value of the fixed byte), simple-mode upstreams have one.
//!
//! A slot whose miner left is *dead* until the next job: the departed miner may have been
//! mid-search with that byte, so handing it to a newcomer before the job changes could
//! produce colliding nonces.

use crate::MinerId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    Active(MinerId),
    Dead,
}

/// Slot allocation with a round-robin cursor.
#[derive(Debug)]
pub struct Storage {
    slots: Box<[Slot]>,
    cursor: usize,
    active: usize,
    dead: usize,
}

impl Storage {
    /// A table of `capacity` slots (1..=256).
    pub fn new(capacity: usize) -> Storage {
        let capacity = capacity.clamp(1, 256);
        Storage { slots: vec![Slot::Free; capacity].into_boxed_slice(), cursor: 0, active: 0, dead: 0 }
    }

    /// Takes the next free slot from the cursor on; `None` when every slot is active or dead.
    pub fn add(&mut self, miner: MinerId) -> Option<u8> {
        let n = self.slots.len();
        // Full tables are the common case while a big farm logs in: answer without a scan.
        if self.active + self.dead == n {
            return None;
        }
        for i in 0..n {
            let idx = (self.cursor + i) % n;
            if self.slots[idx] == Slot::Free {
                self.slots[idx] = Slot::Active(miner);
                self.cursor = (idx + 1) % n;
                self.active += 1;
                return Some(idx as u8);
            }
        }
        None
    }

    /// Marks the miner's slot dead; a slot held by someone else is left alone. A single-slot
    /// table (simple mode) frees it at once: there is no fixed byte to collide on, and the
    /// upstream is kept precisely to hand it to the next miner.
    pub fn remove(&mut self, slot: u8, miner: MinerId) {
        let single = self.slots.len() == 1;
        if let Some(s) = self.slots.get_mut(usize::from(slot))
            && *s == Slot::Active(miner)
        {
            self.active -= 1;
            if single {
                *s = Slot::Free;
            } else {
                *s = Slot::Dead;
                self.dead += 1;
            }
        }
    }

    /// Frees the miner's slot at once: for a slot reserved for a miner who never got a job
    /// with it, so no nonce was searched with its byte.
    pub fn release(&mut self, slot: u8, miner: MinerId) {
        if let Some(s) = self.slots.get_mut(usize::from(slot))
            && *s == Slot::Active(miner)
        {
            *s = Slot::Free;
            self.active -= 1;
        }
    }

    /// A table of `capacity` slots holding `active` (slot, miner), as a live upgrade
    /// hands it over, with the slots in `free` free. Every other slot is dead until the
    /// next job: a miner that left just before (or one the old process keeps, over TLS)
    /// may still be mining with its byte.
    pub fn restore(capacity: usize, active: impl IntoIterator<Item = (u8, MinerId)>, free: &[u8]) -> Storage {
        let mut t = Storage::new(capacity);
        let n = t.slots.len();
        t.slots.iter_mut().for_each(|s| *s = Slot::Dead);
        t.dead = n;
        for &slot in free {
            if let Some(s) = t.slots.get_mut(usize::from(slot))
                && *s == Slot::Dead
            {
                *s = Slot::Free;
                t.dead -= 1;
            }
        }
        for (slot, miner) in active {
            if let Some(s) = t.slots.get_mut(usize::from(slot))
                && *s == Slot::Dead
            {
                *s = Slot::Active(miner);
                t.dead -= 1;
                t.active += 1;
            }
        }
        t
    }

    /// Every free slot.
    pub fn free_slots(&self) -> impl Iterator<Item = u8> + '_ {
        self.slots.iter().enumerate().filter(|(_, s)| **s == Slot::Free).map(|(i, _)| i as u8)
    }

    /// Every active slot with its miner.
    pub fn active_slots(&self) -> impl Iterator<Item = (u8, MinerId)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| match s {
            Slot::Active(m) => Some((i as u8, *m)),
            _ => None,
        })
    }

    /// Frees dead slots (a new job has started).
    pub fn clear_dead(&mut self) {
        if self.dead == 0 {
            return;
        }
        for s in self.slots.iter_mut() {
            if *s == Slot::Dead {
                *s = Slot::Free;
            }
        }
        self.dead = 0;
    }

    /// The miner holding `slot`, if any.
    pub fn miner_at(&self, slot: usize) -> Option<MinerId> {
        match self.slots.get(slot) {
            Some(Slot::Active(m)) => Some(*m),
            _ => None,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// (free, dead, active) slot counts.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.slots.len() - self.active - self.dead, self.dead, self.active)
    }

    pub fn active(&self) -> usize {
        self.active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn fills_all_256_slots_with_unique_bytes() {
        let mut s = Storage::new(256);
        let mut seen = HashSet::new();
        for i in 0..256 {
            let slot = s.add(MinerId(i)).expect("free slot");
            assert!(seen.insert(slot), "slot {slot} given twice");
        }
        assert_eq!(seen.len(), 256);
        assert_eq!(s.counts(), (0, 0, 256));
    }

    #[test]
    fn the_257th_add_fails() {
        let mut s = Storage::new(256);
        for i in 0..256 {
            s.add(MinerId(i)).unwrap();
        }
        assert_eq!(s.add(MinerId(999)), None);
    }

    #[test]
    fn removed_slot_is_dead_until_the_next_job() {
        let mut s = Storage::new(256);
        for i in 0..256 {
            s.add(MinerId(i)).unwrap();
        }
        s.remove(7, MinerId(7));
        assert_eq!(s.counts(), (0, 1, 255));
        assert_eq!(s.add(MinerId(1000)), None, "a dead slot is not free");
        s.clear_dead();
        assert_eq!(s.add(MinerId(1000)), Some(7));
        assert_eq!(s.miner_at(7), Some(MinerId(1000)));
    }

    #[test]
    fn a_restored_table_keeps_free_slots_free_and_the_rest_dead_until_the_next_job() {
        let mut old = Storage::new(4);
        for i in 0..3 {
            old.add(MinerId(i)).unwrap();
        }
        old.remove(2, MinerId(2));
        let free: Vec<u8> = old.free_slots().collect();
        assert_eq!(free, [3]);
        // Miner 0 moves; miner 1 stays behind (a TLS miner), still mining with byte 1.
        let mut new = Storage::restore(4, [(0, MinerId(10))], &free);
        assert_eq!(new.counts(), (1, 2, 1), "(free, dead, active)");
        assert_eq!(new.add(MinerId(11)), Some(3), "the free slot is taken at once");
        assert_eq!(new.add(MinerId(12)), None, "the slot left behind and the one just left are dead");
        new.clear_dead();
        assert_eq!((new.add(MinerId(12)), new.add(MinerId(13))), (Some(1), Some(2)));
        // Without the list (a snapshot from an older process), everything else is dead.
        assert_eq!(Storage::restore(4, [(0, MinerId(10))], &[]).counts(), (0, 3, 1));
    }

    #[test]
    fn cursor_is_round_robin() {
        let mut s = Storage::new(256);
        assert_eq!(s.add(MinerId(1)), Some(0));
        s.remove(0, MinerId(1));
        s.clear_dead();
        // The next miner gets slot 1, not the just-released 0.
        assert_eq!(s.add(MinerId(2)), Some(1));
    }

    #[test]
    fn remove_by_a_stranger_is_ignored() {
        let mut s = Storage::new(4);
        s.add(MinerId(1)).unwrap();
        s.remove(0, MinerId(2));
        s.remove(200, MinerId(1));
        assert_eq!(s.counts(), (3, 0, 1));
    }

    #[test]
    fn a_released_reservation_is_free_at_once() {
        let mut s = Storage::new(256);
        for i in 0..256 {
            s.add(MinerId(i)).unwrap();
        }
        s.release(9, MinerId(9));
        s.release(10, MinerId(99)); // not the holder: ignored
        assert_eq!(s.counts(), (1, 0, 255));
        assert_eq!(s.add(MinerId(500)), Some(9));
    }

    #[test]
    fn simple_mode_has_one_slot() {
        let mut s = Storage::new(1);
        assert_eq!(s.add(MinerId(1)), Some(0));
        assert_eq!(s.add(MinerId(2)), None);
    }
}
