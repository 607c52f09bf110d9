//! A shard's hash index: from a key's 64-bit hash to its slab slot.
//!
//! Open addressing with linear probing over one `u64` per bucket: the low
//! 32 bits of the hash (as a tag, and to find the bucket again on growth)
//! beside the slot number. A hit reads one bucket, usually one cache line,
//! before it reaches the entry; a table with control bytes and buckets
//! apart (hashbrown's) costs a second dependent cache miss on cold lookups.
//! Deletion shifts followers back, so there are no tombstones to sweep.
//! Not for: checking keys; the caller's `eq` compares the entry itself.

/// `(low 32 bits of hash) << 32 | (slot + 1)`; 0 is an empty bucket.
pub(crate) struct Index {
    buckets: Box<[u64]>,
    len: usize,
}

const EMPTY: u64 = 0;
const HIGH: u64 = !0xFFFF_FFFF;

fn pack(hash: u64, slot: u32) -> u64 {
    (hash << 32) | (u64::from(slot) + 1)
}

fn slot_of(bucket: u64) -> u32 {
    (bucket as u32).wrapping_sub(1)
}

impl Index {
    pub fn new() -> Index {
        Index {
            buckets: Box::default(),
            len: 0,
        }
    }

    /// Bytes held: the bucket array.
    pub fn bytes(&self) -> usize {
        self.buckets.len() * size_of::<u64>()
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// The slot stored for `hash` for which `eq` holds.
    pub fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let mask = self.mask();
        let tag = hash << 32;
        let mut i = hash as usize & mask;
        // At most 7/8 full, so an empty bucket ends every probe.
        loop {
            let b = self.buckets[i];
            if b == EMPTY {
                return None;
            }
            if b & HIGH == tag && eq(slot_of(b)) {
                return Some(slot_of(b));
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `slot` under `hash`; the caller knows it is not there yet.
    pub fn insert(&mut self, hash: u64, slot: u32) {
        if (self.len + 1) * 8 > self.buckets.len() * 7 {
            self.grow();
        }
        self.place(pack(hash, slot));
        self.len += 1;
    }

    fn place(&mut self, bucket: u64) {
        let mask = self.mask();
        let mut i = (bucket >> 32) as usize & mask;
        while self.buckets[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.buckets[i] = bucket;
    }

    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).max(16);
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; size].into_boxed_slice());
        for b in old.iter().copied().filter(|&b| b != EMPTY) {
            self.place(b);
        }
    }

    /// Removes `slot` stored under `hash`; false if it was not there.
    pub fn remove(&mut self, hash: u64, slot: u32) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let mask = self.mask();
        let want = pack(hash, slot);
        let mut hole = hash as usize & mask;
        loop {
            match self.buckets[hole] {
                EMPTY => return false,
                b if b == want => break,
                _ => hole = (hole + 1) & mask,
            }
        }
        // Shift back every follower whose probe passes over the hole.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let b = self.buckets[j];
            if b == EMPTY {
                break;
            }
            let home = (b >> 32) as usize & mask;
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.buckets[hole] = b;
                hole = j;
            }
        }
        self.buckets[hole] = EMPTY;
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_inserted_and_nothing_removed() {
        let mut index = Index::new();
        // Hashes crowding a few home buckets, so probes and shifts happen.
        let hash = |n: u64| (n % 7) | (n << 40);
        for n in 0..1000u64 {
            index.insert(hash(n), n as u32);
        }
        for n in (0..1000u64).step_by(3) {
            assert!(index.remove(hash(n), n as u32));
            assert!(!index.remove(hash(n), n as u32));
        }
        for n in 0..1000u64 {
            let found = index.find(hash(n), |s| s == n as u32);
            assert_eq!(found.is_some(), n % 3 != 0, "n={n}");
        }
        assert_eq!(index.len, 1000 - 334);
        assert!(index.bytes() >= index.len * 8 * 8 / 7);
    }

    #[test]
    fn tag_mismatch_skips_the_entry_check() {
        let mut index = Index::new();
        index.insert(0x1_0000_0005, 1);
        // Same bucket, different low 32 bits: `eq` is never asked.
        assert_eq!(index.find(0x2_0000_0015, |_| panic!("compared")), None);
        assert_eq!(index.find(0x1_0000_0005, |s| s == 1), Some(1));
    }
}
