//! One cache shard: a compact entry table bounded by bytes, with S3-FIFO
//! eviction.
//!
//! Entries live in a slab of fixed 64-entry chunks (48 bytes an entry),
//! which grows without ever reallocating, so growth leaves no freed blocks
//! of odd sizes behind in the allocator. It is found through an [`Index`]
//! (8 bytes a bucket). Each entry owns one boxed
//! slice holding the stored response and its TTL offsets; the key is not
//! stored separately, because the response's question *is* the key's name,
//! type and class (checked at insert).
//!
//! S3-FIFO (Yang et al., SOSP 2023): new entries enter a small FIFO (10% of
//! the bytes); leaving it, an entry that was hit moves to the main FIFO,
//! one that was not is dropped and remembered in a ghost table, so that if
//! it comes back it goes straight to main. Main is a FIFO with reinsertion:
//! an entry with hits left gets another round. A one-pass scan of new names
//! only ever churns the small FIFO, which is why a hot set survives it where
//! LRU would lose it.
//!
//! Memory is charged honestly: the slab's and the index's real capacities,
//! the ghost table, and every boxed slice at the size the allocator rounds
//! it to. Not for: locking or counters; [`super::Cache`] owns those.

use super::answer::Kind;
use super::index::Index;
use std::mem::size_of;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Queue {
    Free = 0,
    Small = 1,
    Main = 2,
}

/// Hits remembered per entry, as in S3-FIFO (two bits).
const MAX_FREQ: u8 = 3;

/// One cached answer; kept at 48 bytes.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The response (`response_len` bytes), then u16 LE TTL offsets.
    pub data: Box<[u8]>,
    pub hash: u64,
    prev: u32,
    /// Next in the entry's queue; for a free slot, the next free slot.
    next: u32,
    /// Seconds on the cache clock.
    pub stored_at: u32,
    pub expires: u32,
    pub response_len: u16,
    /// Bit 0: DO, bit 1: CD, bit 2: SERVFAIL.
    bits: u8,
    queue: Queue,
    freq: u8,
}

const BIT_DO: u8 = 1;
const BIT_CD: u8 = 2;
const BIT_SERVFAIL: u8 = 4;

impl Entry {
    fn vacant() -> Entry {
        Entry {
            data: Box::default(),
            hash: 0,
            prev: NIL,
            next: NIL,
            stored_at: 0,
            expires: 0,
            response_len: 0,
            bits: 0,
            queue: Queue::Free,
            freq: 0,
        }
    }

    pub fn is_servfail(&self) -> bool {
        self.bits & BIT_SERVFAIL != 0
    }

    fn matches(&self, hash: u64, name: &[u8], qtype: u16, qclass: u16, bits: u8) -> bool {
        if self.hash != hash || self.queue == Queue::Free || self.bits & 3 != bits {
            return false;
        }
        let q = 12 + name.len();
        match (self.data.get(12..q), self.data.get(q..q + 4)) {
            // Both sides are lower-case: the key by contract, the stored
            // question since insert.
            (Some(n), Some(tc)) => {
                n == name && tc[..2] == qtype.to_be_bytes() && tc[2..] == qclass.to_be_bytes()
            }
            _ => false,
        }
    }
}

/// The lookup part of a [`super::CacheKey`], borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRef<'a> {
    pub hash: u64,
    pub name: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    pub do_bit: bool,
    pub cd: bool,
}

impl KeyRef<'_> {
    fn bits(&self) -> u8 {
        (u8::from(self.do_bit) * BIT_DO) | (u8::from(self.cd) * BIT_CD)
    }
}

/// What an entry is, for insert.
pub(crate) struct NewEntry {
    pub data: Box<[u8]>,
    pub response_len: u16,
    pub stored_at: u32,
    pub expires: u32,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, Default)]
struct List {
    head: u32,
    tail: u32,
    /// Charged bytes of the entries in this list.
    bytes: usize,
}

/// What an insert did, for the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InsertOutcome {
    pub evicted: u64,
    pub expired: u64,
}

/// Bytes the allocator really hands out for an `n`-byte request: mimalloc's
/// size classes (8-byte steps to 64, then four classes per power of two).
pub(crate) fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=64 => n.div_ceil(8) * 8,
        _ => {
            let step = n.next_power_of_two() / 8;
            n.div_ceil(step) * step
        }
    }
}

/// An entry's share of a queue: its slab slot, its index bucket (a u64 at
/// up to 7/8 load) and its boxed slice.
fn charge(data_len: usize) -> usize {
    size_of::<Entry>() + 10 + alloc_size(data_len)
}

pub(crate) struct CacheShard {
    index: Index,
    slab: Slab,
    free: u32,
    small: List,
    main: List,
    /// Fingerprints of entries recently dropped from the small FIFO,
    /// direct-mapped by hash: a lossy but fixed-size ghost FIFO.
    ghost: Box<[u32]>,
    live: usize,
    /// Sum of `alloc_size` over live entries' boxed slices.
    heap: usize,
    budget: usize,
    small_target: usize,
}

impl CacheShard {
    pub fn new(budget: usize) -> CacheShard {
        // One ghost slot per two entries of a typical 130-byte charge: 1.5%
        // of the budget. S3-FIFO sizes its ghost like main; twice that
        // measured ~2 MiB more RSS in tests/cache_memory.rs for little gain.
        // A zero budget (caching off) never inserts, so needs no ghost.
        let ghost_slots = match budget {
            0 => 0,
            _ => (budget / 256).next_power_of_two().max(64),
        };
        CacheShard {
            index: Index::new(),
            slab: Slab::default(),
            free: NIL,
            small: List {
                head: NIL,
                tail: NIL,
                bytes: 0,
            },
            main: List {
                head: NIL,
                tail: NIL,
                bytes: 0,
            },
            ghost: vec![0; ghost_slots].into_boxed_slice(),
            live: 0,
            heap: 0,
            budget,
            small_target: budget / 10,
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    /// Every byte this shard holds: slab and index at their real capacity,
    /// the ghost table, and the entries' boxed slices.
    pub fn bytes(&self) -> usize {
        self.slab.bytes() + self.index.bytes() + self.ghost.len() * size_of::<u32>() + self.heap
    }

    pub fn find(&self, key: &KeyRef) -> Option<u32> {
        let bits = key.bits();
        let slab = &self.slab;
        self.index.find(key.hash, |i| {
            slab[i as usize].matches(key.hash, key.name, key.qtype, key.qclass, bits)
        })
    }

    pub fn entry(&self, i: u32) -> &Entry {
        &self.slab[i as usize]
    }

    /// Records a hit for the eviction policy.
    pub fn touch(&mut self, i: u32) {
        let e = &mut self.slab[i as usize];
        e.freq = (e.freq + 1).min(MAX_FREQ);
    }

    /// Inserts or replaces the entry for `key`, then evicts until the shard
    /// fits its budget. `dead` says whether an entry is past any use (expired
    /// and past the stale window), so eviction reclaims those first.
    /// `None`: not stored (a SERVFAIL would have replaced a real answer).
    pub fn insert(
        &mut self,
        key: &KeyRef,
        new: NewEntry,
        dead: impl Fn(&Entry) -> bool,
    ) -> Option<InsertOutcome> {
        let bits = key.bits()
            | if new.kind == Kind::ServFail {
                BIT_SERVFAIL
            } else {
                0
            };
        if let Some(i) = self.find(key) {
            // An upstream SERVFAIL must not wipe a real answer that can
            // still be served, fresh or stale (RFC 8767).
            if new.kind == Kind::ServFail && !self.slab[i as usize].is_servfail() {
                return None;
            }
            // A refresh keeps the entry's place and hits: a hot name whose
            // TTL ran out stays hot.
            let new_charge = charge(new.data.len());
            let e = &mut self.slab[i as usize];
            let old_charge = charge(e.data.len());
            self.heap = self.heap - alloc_size(e.data.len()) + alloc_size(new.data.len());
            e.data = new.data;
            e.response_len = new.response_len;
            e.stored_at = new.stored_at;
            e.expires = new.expires;
            e.bits = bits;
            let queue = e.queue;
            let list = self.list_mut(queue);
            list.bytes = list.bytes - old_charge + new_charge;
        } else {
            let fp = ghost_fingerprint(key.hash);
            let slot = (key.hash as usize) & (self.ghost.len() - 1);
            let queue = if self.ghost[slot] == fp {
                self.ghost[slot] = 0;
                Queue::Main
            } else {
                Queue::Small
            };
            let entry = Entry {
                data: new.data,
                hash: key.hash,
                prev: NIL,
                next: NIL,
                stored_at: new.stored_at,
                expires: new.expires,
                response_len: new.response_len,
                bits,
                queue: Queue::Free,
                freq: 0,
            };
            self.heap += alloc_size(entry.data.len());
            let i = self.alloc_slot(entry);
            self.index.insert(key.hash, i);
            self.push_back(queue, i);
            self.live += 1;
        }
        let mut outcome = InsertOutcome::default();
        while self.bytes() > self.budget && self.live > 0 {
            match self.evict_one(&dead) {
                Evicted::Expired => outcome.expired += 1,
                Evicted::Cold => outcome.evicted += 1,
            }
        }
        Some(outcome)
    }

    /// Removes entry `i` for good.
    pub fn remove(&mut self, i: u32) {
        let hash = self.slab[i as usize].hash;
        self.index.remove(hash, i);
        self.unlink(i);
        let e = &mut self.slab[i as usize];
        self.heap -= alloc_size(e.data.len());
        e.data = Box::default();
        e.queue = Queue::Free;
        e.next = self.free;
        self.free = i;
        self.live -= 1;
    }

    /// Removes every dead entry among slab slots `range`; returns how many.
    pub fn remove_dead(
        &mut self,
        range: std::ops::Range<usize>,
        dead: impl Fn(&Entry) -> bool,
    ) -> u64 {
        let mut removed = 0;
        for i in range.start..range.end.min(self.slab.len()) {
            let e = &self.slab[i];
            if e.queue != Queue::Free && dead(e) {
                self.remove(i as u32);
                removed += 1;
            }
        }
        removed
    }

    pub fn slab_len(&self) -> usize {
        self.slab.len()
    }

    fn alloc_slot(&mut self, entry: Entry) -> u32 {
        if self.free != NIL {
            let i = self.free;
            self.free = self.slab[i as usize].next;
            self.slab[i as usize] = entry;
            return i;
        }
        self.slab.push(entry)
    }

    fn evict_one(&mut self, dead: &impl Fn(&Entry) -> bool) -> Evicted {
        loop {
            let from_small = self.small.bytes > self.small_target || self.main.head == NIL;
            let i = if from_small {
                self.small.head
            } else {
                self.main.head
            };
            debug_assert!(i != NIL, "evicting from an empty shard");
            let e = &self.slab[i as usize];
            if dead(e) {
                self.remove(i);
                return Evicted::Expired;
            }
            let (freq, hash) = (e.freq, e.hash);
            match (from_small, freq) {
                (true, 0) => {
                    let slot = (hash as usize) & (self.ghost.len() - 1);
                    self.ghost[slot] = ghost_fingerprint(hash);
                    self.remove(i);
                    return Evicted::Cold;
                }
                (true, _) => {
                    self.unlink(i);
                    self.slab[i as usize].freq = 0;
                    self.push_back(Queue::Main, i);
                }
                (false, 0) => {
                    self.remove(i);
                    return Evicted::Cold;
                }
                (false, f) => {
                    self.unlink(i);
                    self.slab[i as usize].freq = f - 1;
                    self.push_back(Queue::Main, i);
                }
            }
        }
    }

    fn list_mut(&mut self, q: Queue) -> &mut List {
        match q {
            Queue::Small => &mut self.small,
            _ => &mut self.main,
        }
    }

    fn push_back(&mut self, q: Queue, i: u32) {
        let c = charge(self.slab[i as usize].data.len());
        let list = self.list_mut(q);
        let old_tail = list.tail;
        list.tail = i;
        if old_tail == NIL {
            list.head = i;
        }
        list.bytes += c;
        if old_tail != NIL {
            self.slab[old_tail as usize].next = i;
        }
        let e = &mut self.slab[i as usize];
        e.prev = old_tail;
        e.next = NIL;
        e.queue = q;
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next, q, c) = {
            let e = &self.slab[i as usize];
            (e.prev, e.next, e.queue, charge(e.data.len()))
        };
        if q == Queue::Free {
            return;
        }
        if prev != NIL {
            self.slab[prev as usize].next = next;
        }
        if next != NIL {
            self.slab[next as usize].prev = prev;
        }
        let list = self.list_mut(q);
        if list.head == i {
            list.head = next;
        }
        if list.tail == i {
            list.tail = prev;
        }
        list.bytes -= c;
        let e = &mut self.slab[i as usize];
        e.prev = NIL;
        e.next = NIL;
    }
}

/// Entry slots in fixed-size chunks: stable, and no reallocation on growth.
#[derive(Default)]
struct Slab {
    chunks: Vec<Box<[Entry]>>,
    /// Slots handed out so far; the rest of the last chunk is unused.
    len: usize,
}

const CHUNK: usize = 64;

impl Slab {
    fn len(&self) -> usize {
        self.len
    }

    fn bytes(&self) -> usize {
        self.chunks.len() * CHUNK * size_of::<Entry>()
            + self.chunks.capacity() * size_of::<Box<[Entry]>>()
    }

    fn push(&mut self, entry: Entry) -> u32 {
        if self.len == self.chunks.len() * CHUNK {
            let chunk = (0..CHUNK).map(|_| Entry::vacant()).collect();
            self.chunks.push(chunk);
        }
        let i = self.len;
        self.len += 1;
        self[i] = entry;
        i as u32
    }
}

impl std::ops::Index<usize> for Slab {
    type Output = Entry;
    fn index(&self, i: usize) -> &Entry {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl std::ops::IndexMut<usize> for Slab {
    fn index_mut(&mut self, i: usize) -> &mut Entry {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

enum Evicted {
    Expired,
    Cold,
}

/// Non-zero, so an empty ghost slot never matches.
fn ghost_fingerprint(hash: u64) -> u32 {
    ((hash >> 32) as u32) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splitmix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// A stored answer for name `n`: header, question, nothing else.
    fn stored(n: u64) -> (Vec<u8>, NewEntry) {
        let name = format!("\x08n{n:07}\x00").into_bytes();
        let mut data = vec![0u8; 12];
        data.extend_from_slice(&name);
        data.extend_from_slice(&[0, 1, 0, 1]);
        let new = NewEntry {
            response_len: data.len() as u16,
            data: data.clone().into_boxed_slice(),
            stored_at: 0,
            expires: 3600,
            kind: Kind::Positive,
        };
        (name, new)
    }

    fn key_ref(name: &[u8], hash: u64) -> KeyRef<'_> {
        KeyRef {
            hash,
            name,
            qtype: 1,
            qclass: 1,
            do_bit: false,
            cd: false,
        }
    }

    #[test]
    fn ghost_sends_a_returning_name_straight_to_main() {
        let mut shard = CacheShard::new(16 * 1024);
        let never_dead = |_: &Entry| false;
        // Even hash for the returning name, odd for the scan: the scan can
        // never overwrite its ghost slot, so the test is deterministic.
        let g_hash = splitmix(0) & !1;
        let (g_name, g_entry) = stored(0);
        shard.insert(&key_ref(&g_name, g_hash), g_entry, never_dead);
        let scan = |shard: &mut CacheShard, from: u64, to: u64| {
            for n in from..to {
                let (name, e) = stored(n);
                shard.insert(&key_ref(&name, splitmix(n) | 1), e, never_dead);
            }
        };
        // Never hit, so it leaves through the small FIFO into the ghost.
        scan(&mut shard, 1, 1000);
        assert!(shard.find(&key_ref(&g_name, g_hash)).is_none());
        let slot = (g_hash as usize) & (shard.ghost.len() - 1);
        assert_eq!(shard.ghost[slot], ghost_fingerprint(g_hash));

        // Back again: admitted to main, where the next scan cannot reach it.
        let (_, g_entry) = stored(0);
        shard.insert(&key_ref(&g_name, g_hash), g_entry, never_dead);
        let i = shard.find(&key_ref(&g_name, g_hash)).unwrap();
        assert_eq!(shard.entry(i).queue, Queue::Main);
        scan(&mut shard, 1000, 10_000);
        assert!(shard.find(&key_ref(&g_name, g_hash)).is_some());
        assert!(shard.bytes() <= 16 * 1024);
    }

    #[test]
    fn entry_stays_compact() {
        assert_eq!(size_of::<Entry>(), 48);
    }

    #[test]
    fn alloc_size_follows_size_classes() {
        assert_eq!(alloc_size(1), 8);
        assert_eq!(alloc_size(64), 64);
        assert_eq!(alloc_size(65), 80);
        assert_eq!(alloc_size(129), 160);
        assert_eq!(alloc_size(256), 256);
    }
}
