//! One cache shard: a compact entry table bounded by bytes, with S3-FIFO
//! eviction.
//!
//! Entries live in a [`Slab`] of fixed 64-entry chunks (48 bytes an entry),
//! which grows without ever reallocating, so growth leaves no freed blocks
//! of odd sizes behind in the allocator. It is found through an [`Index`]
//! (8 bytes a bucket). Each entry's stored response and TTL offsets are
//! bytes in the shard's [`Arena`], appended to the stream of the entry's
//! queue; the key is not stored separately, because the response's
//! question *is* the key's name, type and class (checked at insert).
//!
//! S3-FIFO (Yang et al., SOSP 2023): new entries enter a small FIFO (10% of
//! the bytes); leaving it, an entry that was hit moves to the main FIFO,
//! one that was not is dropped and remembered in a ghost table, so that if
//! it comes back it goes straight to main. Main is a FIFO with reinsertion:
//! an entry with hits left gets another round. A one-pass scan of new names
//! only ever churns the small FIFO, which is why a hot set survives it where
//! LRU would lose it.
//!
//! Memory is charged exactly: the slab's and the index's real capacities,
//! the ghost table, and the arena's segments as allocated (partly filled
//! ones and holes included). Not for: locking or counters; [`super::Cache`]
//! owns those.

use super::answer::Kind;
use super::arena::{Arena, Loc, Stream};
use super::index::Index;
use super::slab::Slab;
use std::mem::size_of;
use std::ptr::NonNull;

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
    pub hash: u64,
    /// Its bytes in the arena: the response (`response_len` bytes), then
    /// `ttl_count` u16 LE TTL offsets; `seg` is their segment.
    at: NonNull<u8>,
    seg: u32,
    prev: u32,
    /// Next in the entry's queue; for a free slot, the next free slot.
    next: u32,
    /// Seconds on the cache clock.
    pub stored_at: u32,
    pub expires: u32,
    /// Set by a prefetch refresh: when the answer it replaced would have
    /// expired, so the first hit from then on is a miss it saved; 0: none.
    saved_after: u32,
    /// The filter's word on the name when it was stored (`filter::Stamp`).
    pub stamp: u32,
    pub response_len: u16,
    ttl_count: u16,
    /// Bit 0: DO, bit 1: CD, bit 2: SERVFAIL, bit 3: refresh asked for.
    bits: u8,
    queue: Queue,
    freq: u8,
}

const BIT_DO: u8 = 1;
const BIT_CD: u8 = 2;
const BIT_SERVFAIL: u8 = 4;
const BIT_REFRESHING: u8 = 8;

/// What a hit means beyond the answer: see [`CacheShard::hit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HitNote {
    /// The first hit in the entry's last tenth of its TTL: refresh it.
    pub refresh: bool,
    /// The first hit past the expiry of the answer a prefetch replaced.
    pub saved_miss: bool,
}

/// A free slot.
impl Default for Entry {
    fn default() -> Entry {
        Entry {
            hash: 0,
            at: NonNull::dangling(),
            seg: NIL,
            prev: NIL,
            next: NIL,
            stored_at: 0,
            expires: 0,
            saved_after: 0,
            stamp: 0,
            response_len: 0,
            ttl_count: 0,
            bits: 0,
            queue: Queue::Free,
            freq: 0,
        }
    }
}

impl Entry {
    pub fn is_servfail(&self) -> bool {
        self.bits & BIT_SERVFAIL != 0
    }

    fn loc(&self) -> Loc {
        Loc {
            seg: self.seg,
            at: self.at,
        }
    }

    fn data_len(&self) -> usize {
        usize::from(self.response_len) + 2 * usize::from(self.ttl_count)
    }

    fn matches(&self, arena: &Arena, key: &KeyRef, bits: u8) -> bool {
        if self.hash != key.hash || self.queue == Queue::Free || self.bits & 3 != bits {
            return false;
        }
        let (name, qtype, qclass) = (key.name, key.qtype, key.qclass);
        // SAFETY: a live entry's bytes (see `CacheShard::entry_and_data`).
        let data = unsafe { arena.get(self.loc(), usize::from(self.response_len)) };
        let q = 12 + name.len();
        match (data.get(12..q), data.get(q..q + 4)) {
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

/// What an entry is, for insert. `data` is copied into the arena.
pub(crate) struct NewEntry<'a> {
    pub data: &'a [u8],
    pub response_len: u16,
    pub stored_at: u32,
    pub expires: u32,
    pub kind: Kind,
    /// A prefetch refresh: remember when the answer it replaces expires.
    pub prefetched: bool,
    pub stamp: u32,
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

/// An entry's share of a queue, which sizes the small FIFO: its slab slot,
/// its index bucket (a u64 at up to 7/8 load) and its bytes.
fn charge(data_len: usize) -> usize {
    size_of::<Entry>() + 10 + data_len
}

pub(crate) struct CacheShard {
    index: Index,
    slab: Slab<Entry>,
    free: u32,
    small: List,
    main: List,
    /// Fingerprints of entries recently dropped from the small FIFO,
    /// direct-mapped by hash: a lossy but fixed-size ghost FIFO.
    ghost: Box<[u32]>,
    live: usize,
    arena: Arena,
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
            arena: Arena::new(budget),
            budget,
            small_target: budget / 10,
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    /// Every byte this shard holds: slab and index at their real capacity,
    /// the ghost table, and the arena's segments.
    pub fn bytes(&self) -> usize {
        self.slab.bytes()
            + self.index.bytes()
            + self.ghost.len() * size_of::<u32>()
            + self.arena.bytes()
    }

    pub fn find(&self, key: &KeyRef) -> Option<u32> {
        let bits = key.bits();
        let (slab, arena) = (&self.slab, &self.arena);
        self.index
            .find(key.hash, |i| slab[i as usize].matches(arena, key, bits))
    }

    #[cfg(test)]
    pub fn entry(&self, i: u32) -> &Entry {
        &self.slab[i as usize]
    }

    /// Entry `i`'s stored response followed by its TTL offsets.
    #[cfg(test)]
    pub fn data(&self, i: u32) -> &[u8] {
        self.entry_and_data(i).1
    }

    /// Entry `i` and its stored response followed by its TTL offsets (empty
    /// for a free slot).
    #[inline]
    pub fn entry_and_data(&self, i: u32) -> (&Entry, &[u8]) {
        let e = &self.slab[i as usize];
        if e.queue == Queue::Free {
            return (e, &[]);
        }
        // SAFETY: a live entry's `(seg, at)` and length are exactly what the
        // arena returned and was given when its bytes were stored or last
        // moved; they are released only when it is removed or moved again,
        // both of which need `&mut self`.
        (e, unsafe { self.arena.get(e.loc(), e.data_len()) })
    }

    /// Records a hit for the eviction policy (what [`CacheShard::hit`]
    /// does first).
    #[cfg(test)]
    pub fn touch(&mut self, i: u32) {
        let e = &mut self.slab[i as usize];
        e.freq = (e.freq + 1).min(MAX_FREQ);
    }

    /// Records a fresh hit at `now` (before the entry's expiry): for the
    /// eviction policy, and for prefetch. The first hit in the last tenth
    /// of the entry's TTL marks it and asks for a refresh, so a burst asks
    /// once (a replacing insert clears the mark); a cached SERVFAIL is
    /// never refreshed. Everything read is on the entry's one cache line.
    #[inline]
    pub fn hit(&mut self, i: u32, now: u32) -> HitNote {
        let e = &mut self.slab[i as usize];
        e.freq = (e.freq + 1).min(MAX_FREQ);
        let saved_miss = e.saved_after != 0 && now >= e.saved_after;
        if saved_miss {
            e.saved_after = 0;
        }
        let left = u64::from(e.expires.saturating_sub(now));
        let ttl = u64::from(e.expires.saturating_sub(e.stored_at));
        let refresh = e.bits & (BIT_REFRESHING | BIT_SERVFAIL) == 0 && left * 10 <= ttl;
        if refresh {
            e.bits |= BIT_REFRESHING;
        }
        HitNote {
            refresh,
            saved_miss,
        }
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
        let ttl_bytes = new.data.len().checked_sub(usize::from(new.response_len))?;
        let ttl_count = u16::try_from(ttl_bytes / 2).ok()?;
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
            // TTL ran out stays hot. Its new bytes go to the end of its
            // queue's stream; it leaves by its older place in the queue,
            // before its new neighbours, so it never keeps a segment alive.
            let new_charge = charge(new.data.len());
            let e = &self.slab[i as usize];
            let (old, old_charge, queue) = (e.loc(), charge(e.data_len()), e.queue);
            self.arena.release(old);
            let at = self.arena.push(stream(queue), new.data);
            let e = &mut self.slab[i as usize];
            (e.seg, e.at) = (at.seg, at.at);
            e.ttl_count = ttl_count;
            e.response_len = new.response_len;
            e.saved_after = if new.prefetched { e.expires } else { 0 };
            e.stamp = new.stamp;
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
            let at = self.arena.push(stream(queue), new.data);
            let entry = Entry {
                hash: key.hash,
                at: at.at,
                seg: at.seg,
                prev: NIL,
                next: NIL,
                stored_at: new.stored_at,
                expires: new.expires,
                saved_after: 0,
                stamp: new.stamp,
                response_len: new.response_len,
                ttl_count,
                bits,
                queue: Queue::Free,
                freq: 0,
            };
            let i = self.alloc_slot(entry);
            self.index.insert(key.hash, i);
            self.push_back(queue, i);
            self.live += 1;
        }
        // Evicting frees memory a segment at a time, when a segment's last
        // entry leaves: up to a segment's worth of entries per insert.
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
        let at = e.loc();
        e.seg = NIL;
        e.queue = Queue::Free;
        e.next = self.free;
        self.free = i;
        self.live -= 1;
        self.arena.release(at);
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
                    self.move_bytes(i, Stream::Main);
                    self.slab[i as usize].freq = 0;
                    self.push_back(Queue::Main, i);
                }
                (false, 0) => {
                    self.remove(i);
                    return Evicted::Cold;
                }
                (false, f) => {
                    self.unlink(i);
                    self.move_bytes(i, Stream::Main);
                    self.slab[i as usize].freq = f - 1;
                    self.push_back(Queue::Main, i);
                }
            }
        }
    }

    /// Copies entry `i`'s bytes to the end of `to`, as it joins that
    /// queue's tail, so segments keep emptying in queue order.
    fn move_bytes(&mut self, i: u32, to: Stream) {
        let e = &self.slab[i as usize];
        let at = self.arena.move_to(to, e.loc(), e.data_len());
        let e = &mut self.slab[i as usize];
        (e.seg, e.at) = (at.seg, at.at);
    }

    fn list_mut(&mut self, q: Queue) -> &mut List {
        match q {
            Queue::Small => &mut self.small,
            _ => &mut self.main,
        }
    }

    fn push_back(&mut self, q: Queue, i: u32) {
        let c = charge(self.slab[i as usize].data_len());
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
            (e.prev, e.next, e.queue, charge(e.data_len()))
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

// SAFETY: the only pointers a shard holds (its entries', into its arena)
// point into memory the shard itself owns, which moves with it; no other
// shard or thread can reach them but through the shard's lock.
unsafe impl Send for CacheShard {}

enum Evicted {
    Expired,
    Cold,
}

fn stream(q: Queue) -> Stream {
    match q {
        Queue::Main => Stream::Main,
        _ => Stream::Small,
    }
}

/// Non-zero, so an empty ghost slot never matches.
fn ghost_fingerprint(hash: u64) -> u32 {
    ((hash >> 32) as u32) | 1
}

#[cfg(test)]
mod tests {
    use super::super::arena::{Born, alloc_size};
    use super::*;
    use std::collections::HashMap;

    fn splitmix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// A stored answer for name `n`: header, question, then `extra` bytes
    /// of answer (all of it counted as response, no TTL offsets).
    fn stored_sized(n: u64, extra: usize) -> (Vec<u8>, Vec<u8>) {
        let name = format!("\x08n{n:07}\x00").into_bytes();
        let mut data = vec![0u8; 12];
        data.extend_from_slice(&name);
        data.extend_from_slice(&[0, 1, 0, 1]);
        data.extend((0..extra).map(|k| (n as usize * 31 + k) as u8));
        (name, data)
    }

    fn stored(n: u64) -> (Vec<u8>, Vec<u8>) {
        stored_sized(n, 0)
    }

    fn new_entry(data: &[u8], expires: u32) -> NewEntry<'_> {
        NewEntry {
            data,
            response_len: data.len() as u16,
            stored_at: 0,
            expires,
            kind: Kind::Positive,
            prefetched: false,
            stamp: 0,
        }
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

    const NEVER_DEAD: fn(&Entry) -> bool = |_| false;

    fn put(shard: &mut CacheShard, n: u64, extra: usize, expires: u32) {
        let (name, data) = stored_sized(n, extra);
        shard.insert(
            &key_ref(&name, splitmix(n)),
            new_entry(&data, expires),
            NEVER_DEAD,
        );
    }

    fn get(shard: &CacheShard, n: u64) -> Option<u32> {
        let (name, _) = stored(n);
        shard.find(&key_ref(&name, splitmix(n)))
    }

    /// Checks what the shard's bookkeeping claims against a recount: every
    /// segment's live count, that the charged bytes are exactly slab, index,
    /// ghost and the segments held, and the budget.
    fn check_accounts(shard: &CacheShard) {
        let mut live_per_segment: HashMap<u32, u32> = HashMap::new();
        let mut live = 0;
        for i in 0..shard.slab.len() {
            let e = &shard.slab[i];
            if e.queue != Queue::Free {
                *live_per_segment.entry(e.seg).or_default() += 1;
                live += 1;
            }
        }
        assert_eq!(live, shard.len());
        let mut held_bytes = 0;
        for h in shard.arena.held_segments() {
            held_bytes += alloc_size(h.size);
            let n = live_per_segment.remove(&h.id).unwrap_or(0);
            assert_eq!(n, h.live, "segment {}", h.id);
        }
        assert!(live_per_segment.is_empty(), "entries in freed segments");
        assert_eq!(shard.arena.held(), held_bytes);
        assert_eq!(
            shard.bytes(),
            held_bytes + shard.arena.bytes() - shard.arena.held()
                + shard.slab.bytes()
                + shard.index.bytes()
                + shard.ghost.len() * 4
        );
        assert!(shard.bytes() <= shard.budget, "over budget");
    }

    #[test]
    fn ghost_sends_a_returning_name_straight_to_main() {
        let mut shard = CacheShard::new(16 * 1024);
        // Even hash for the returning name, odd for the scan: the scan can
        // never overwrite its ghost slot, so the test is deterministic.
        let g_hash = splitmix(0) & !1;
        let (g_name, g_data) = stored(0);
        shard.insert(
            &key_ref(&g_name, g_hash),
            new_entry(&g_data, 3600),
            NEVER_DEAD,
        );
        let scan = |shard: &mut CacheShard, from: u64, to: u64| {
            for n in from..to {
                let (name, data) = stored(n);
                let k = key_ref(&name, splitmix(n) | 1);
                shard.insert(&k, new_entry(&data, 3600), NEVER_DEAD);
            }
        };
        // Never hit, so it leaves through the small FIFO into the ghost.
        scan(&mut shard, 1, 1000);
        assert!(shard.find(&key_ref(&g_name, g_hash)).is_none());
        let slot = (g_hash as usize) & (shard.ghost.len() - 1);
        assert_eq!(shard.ghost[slot], ghost_fingerprint(g_hash));

        // Back again: admitted to main, where the next scan cannot reach it.
        shard.insert(
            &key_ref(&g_name, g_hash),
            new_entry(&g_data, 3600),
            NEVER_DEAD,
        );
        let i = shard.find(&key_ref(&g_name, g_hash)).unwrap();
        assert_eq!(shard.entry(i).queue, Queue::Main);
        scan(&mut shard, 1000, 10_000);
        let i = shard.find(&key_ref(&g_name, g_hash)).unwrap();
        assert_eq!(shard.data(i), &g_data[..]);
        assert!(shard.bytes() <= 16 * 1024);
    }

    #[test]
    fn segments_free_oldest_first_under_a_flood() {
        let budget = 128 * 1024;
        let mut shard = CacheShard::new(budget);
        let size = shard.arena.segment_size();
        let mut held: Vec<Born> = Vec::new();
        let (mut freed, mut main_segments) = (0, 0);
        for n in 0..50_000u64 {
            put(&mut shard, n, 40 + (n % 60) as usize, 3600);
            // Between flood names, names that come back: admissions from
            // the ghost, promotions into main and rounds of main's
            // reinsertion run beside the flood.
            let hot = 1_000_000 + n % 600;
            match get(&shard, hot) {
                Some(i) => shard.touch(i),
                None => put(&mut shard, hot, 50, 3600),
            }
            let now: Vec<Born> = shard.arena.held_segments().iter().map(|h| h.born).collect();
            for gone in held.iter().filter(|b| !now.contains(b)) {
                // Nothing older of the same stream is still held.
                let older = now
                    .iter()
                    .find(|b| b.stream == gone.stream && b.seq < gone.seq);
                assert_eq!(older, None, "{gone:?} freed before an older segment");
                freed += 1;
            }
            main_segments += now
                .iter()
                .filter(|b| b.stream == Some(Stream::Main) && !held.contains(b))
                .count();
            held = now;
            if n % 1000 == 0 {
                check_accounts(&shard);
            }
        }
        assert!(freed > 500, "segments are recycled: {freed}");
        assert!(main_segments > 2, "main's stream is used: {main_segments}");
        // Nothing held beyond what the entries need but the two streams'
        // partly drained oldest and partly filled newest segments, and each
        // segment's unusable tail (under one answer).
        let live_bytes: usize = (0..shard.slab.len())
            .filter(|&i| shard.slab[i].queue != Queue::Free)
            .map(|i| shard.slab[i].data_len())
            .sum();
        let segments = shard.arena.held_segments().len();
        assert!(
            shard.arena.held() <= live_bytes + 4 * size + segments * 130,
            "held {} for {live_bytes} live bytes in {segments} segments",
            shard.arena.held()
        );
        check_accounts(&shard);
    }

    #[test]
    fn holes_from_replaced_and_expired_entries_are_reclaimed() {
        let mut shard = CacheShard::new(1 << 20);
        let size = shard.arena.segment_size();
        for n in 0..2000 {
            put(&mut shard, n, 60, 100);
        }
        let full = shard.arena.held();
        assert!(full > 4 * size);
        // Replace every entry: the old bytes' segments empty and go.
        for n in 0..2000 {
            put(&mut shard, n, 70, 100);
        }
        check_accounts(&shard);
        assert_eq!(shard.len(), 2000);
        assert!(
            shard.arena.held() <= full + full / 4,
            "{}",
            shard.arena.held()
        );
        for n in (0..2000).step_by(7) {
            let i = get(&shard, n).unwrap();
            assert_eq!(shard.data(i), &stored_sized(n, 70).1[..]);
        }
        // Expire every other one, then all: holes first, then nothing.
        let removed = shard.remove_dead(0..usize::MAX, |e| e.hash % 2 == 0);
        assert!(removed > 800);
        check_accounts(&shard);
        assert_eq!(shard.remove_dead(0..usize::MAX, |_| true), 2000 - removed);
        check_accounts(&shard);
        assert_eq!(shard.len(), 0);
        // At most the segment each stream is filling stays, rewound.
        assert!(shard.arena.held() <= 2 * size);
    }

    #[test]
    fn an_oversize_answer_is_stored_whole_and_freed() {
        let mut shard = CacheShard::new(64 * 1024);
        let size = shard.arena.segment_size();
        put(&mut shard, 1, 50, 3600);
        let before = shard.arena.held();
        put(&mut shard, 2, 3 * size, 3600);
        let i = get(&shard, 2).unwrap();
        assert_eq!(shard.data(i), &stored_sized(2, 3 * size).1[..]);
        assert!(shard.arena.held() >= before + 3 * size);
        check_accounts(&shard);
        shard.remove(i);
        assert_eq!(shard.arena.held(), before);
        check_accounts(&shard);
    }

    /// Random inserts, replacements, hits, removals and expiry against a
    /// map of what was inserted: what the shard returns is always what went
    /// in, and its accounts always add up.
    #[test]
    fn random_operations_match_a_model() {
        for (seed, budget) in [(1u64, 16 * 1024), (2, 64 * 1024), (3, 300 * 1024)] {
            let mut shard = CacheShard::new(budget);
            let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
            let mut rng = seed;
            let mut next = || {
                rng = splitmix(rng);
                rng
            };
            for step in 0..20_000u32 {
                let r = next();
                let n = next() % 3000;
                match r % 16 {
                    0..=7 => {
                        // Mostly ~100 bytes, now and then larger than a segment.
                        let extra = match next() % 200 {
                            0 => 1100 + (next() % 1500) as usize,
                            _ => (next() % 250) as usize,
                        };
                        let (name, data) = stored_sized(n, extra);
                        let expires = (next() % 100) as u32;
                        let k = key_ref(&name, splitmix(n));
                        let dead = |e: &Entry| e.expires < 10;
                        shard.insert(&k, new_entry(&data, expires), dead);
                        model.insert(n, data);
                    }
                    8..=12 => {
                        if let Some(i) = get(&shard, n) {
                            shard.touch(i);
                        }
                    }
                    13 | 14 => {
                        if let Some(i) = get(&shard, n) {
                            shard.remove(i);
                        }
                    }
                    _ => {
                        let cut = (next() % 30) as u32;
                        let from = (next() % 64) as usize;
                        shard.remove_dead(from..from + 256, |e| e.expires < cut);
                    }
                }
                // Whatever the shard still has is what was inserted last.
                for m in [n, next() % 3000] {
                    if let Some(i) = get(&shard, m) {
                        assert_eq!(shard.data(i), &model[&m][..], "seed {seed} step {step}");
                    }
                }
                if step % 97 == 0 {
                    check_accounts(&shard);
                    for i in 0..shard.slab.len() {
                        let e = &shard.slab[i];
                        if e.queue == Queue::Free {
                            continue;
                        }
                        let data = shard.data(i as u32);
                        let n: u64 = std::str::from_utf8(&data[14..21]).unwrap().parse().unwrap();
                        assert_eq!(data, &model[&n][..], "seed {seed} step {step}");
                    }
                }
            }
            check_accounts(&shard);
            assert!(shard.len() > 0);
        }
    }

    #[test]
    fn entry_stays_compact() {
        assert_eq!(size_of::<Entry>(), 56);
    }
}
