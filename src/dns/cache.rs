//! The DNS answer cache: upstream responses kept as wire bytes, answered by
//! one copy plus fixed-offset patches (ID, question case, TTLs).
//!
//! - 64 shards, each behind its own mutex; a lookup locks only the shard its
//!   key hashes to, so there is no global lock anywhere on the hot path.
//! - Bounded by bytes (`cache.memory_mib`), every byte charged: entry slots,
//!   hash buckets, the ghost table and the segments the stored responses
//!   are packed into (see `shard.rs`, `arena.rs`): what the cache holds
//!   from the allocator is what it charges.
//! - S3-FIFO eviction, which keeps a hot set through a scan of new names.
//! - Expiry never stops the world: dead entries are dropped when a lookup
//!   meets them, when eviction reaches them, and by [`Cache::sweep_expired`],
//!   which locks one shard for at most a few hundred entries at a time.
//! - TTL policy (clamping, RFC 2308 negative caching, SERVFAIL) is decided
//!   once at insert (see [`Cache::insert`]). Serve-stale per RFC 8767.
//! - Prefetch: the first hit in an entry's last tenth of its TTL says so
//!   ([`Lookup::HitRefresh`]) and marks the entry; the refresh itself is
//!   `dns::prefetch`'s, stored with [`Cache::insert_prefetched`].
//! - Counters are atomics beside each shard's lock: [`Cache::stats`] never
//!   locks.
//!
//! Time is the kernel's coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`),
//! in whole seconds since the cache was made: a vDSO read of the last tick,
//! a few nanoseconds on the hit path, and seconds are all DNS TTLs need.
//!
//! Not for: deciding what to ask upstream, or OPT records (the pipeline
//! strips them before insert and adds its own to each answer).

mod answer;
mod arena;
mod index;
mod shard;
mod slab;

use crate::config::CacheConfig;
use crate::wire::{Query, WireName};
use answer::{TtlPolicy, TtlRewrite};
use shard::{CacheShard, Entry, KeyRef, NewEntry};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

/// What an answer is cached under. `name` is the lower-cased wire-form
/// qname; DO and CD select different answers (with or without DNSSEC
/// records, validated or not), so they are part of the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub name: WireName,
    pub qtype: u16,
    pub qclass: u16,
    pub do_bit: bool,
    pub cd: bool,
}

impl CacheKey {
    pub fn from_query(q: &Query) -> CacheKey {
        CacheKey {
            name: q.qname.clone(),
            qtype: q.qtype,
            qclass: q.qclass,
            do_bit: q.edns.do_bit,
            cd: q.cd(),
        }
    }
}

/// A [`CacheKey`]'s fields borrowed, from the key or straight from a
/// parsed query (the look-up before the filter copies no name): every
/// key is hashed in this form, so both find the same entry.
#[derive(Hash)]
struct QueryKey<'a> {
    name: &'a [u8],
    qtype: u16,
    qclass: u16,
    do_bit: bool,
    cd: bool,
}

impl<'a> QueryKey<'a> {
    fn of(q: &'a Query) -> QueryKey<'a> {
        QueryKey {
            name: &q.qname,
            qtype: q.qtype,
            qclass: q.qclass,
            do_bit: q.edns.do_bit,
            cd: q.cd(),
        }
    }

    fn of_key(k: &'a CacheKey) -> QueryKey<'a> {
        QueryKey {
            name: &k.name,
            qtype: k.qtype,
            qclass: k.qclass,
            do_bit: k.do_bit,
            cd: k.cd,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    /// A hit, and the first in the entry's last tenth of its TTL: answer
    /// it, and refresh the entry in the background (`dns::prefetch`).
    /// Only when stale answers are not allowed.
    HitRefresh,
    /// An expired answer served because every upstream failed (RFC 8767).
    Stale,
    Miss,
}

/// What [`Cache::lookup`] found: the lookup, and the filter stamp the
/// answer was stored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub lookup: Lookup,
    /// `filter::Stamp`: the filter's word on the name at insert (0: none,
    /// and on a miss).
    pub stamp: u32,
    shard: usize,
}

/// Counters since the cache was made. `hits` includes stale answers, so
/// `hits + misses` is the number of lookups. `expired` counts entries
/// dropped because their time (and stale window) ran out, `evictions`
/// those dropped for room. `prefetch_saved`: hits on an answer a prefetch
/// refreshed, past the time the answer it replaced would have expired
/// (each refresh counted once): misses prefetch saved.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: u64,
    pub expired: u64,
    pub entries: u64,
    pub bytes: u64,
    pub capacity_bytes: u64,
    pub prefetch_saved: u64,
}

const SHARDS: usize = 64;

/// Slab slots examined per lock hold by the sweep.
const SWEEP_CHUNK: usize = 256;

/// A shard with its counters on the cache lines its lock already brings in;
/// the alignment keeps neighbouring shards off each other's lines.
#[repr(align(128))]
struct ShardSlot {
    shard: Mutex<CacheShard>,
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    evictions: AtomicU64,
    expired: AtomicU64,
    entries: AtomicU64,
    bytes: AtomicU64,
    prefetch_saved: AtomicU64,
}

impl ShardSlot {
    fn publish(&self, shard: &CacheShard) {
        self.entries.store(shard.len() as u64, Relaxed);
        self.bytes.store(shard.bytes() as u64, Relaxed);
    }
}

pub struct Cache {
    shards: Box<[ShardSlot]>,
    hasher: foldhash::quality::RandomState,
    policy: TtlPolicy,
    serve_stale: bool,
    stale_max_age: u32,
    stale_answer_ttl: u32,
    shard_budget: usize,
    /// Coarse clock seconds at creation.
    epoch: u64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Cache {
    pub fn new(cfg: &CacheConfig) -> Cache {
        let capacity = u64::from(cfg.memory_mib) << 20;
        let shard_budget = usize::try_from(capacity / SHARDS as u64).unwrap_or(usize::MAX);
        let shards = (0..SHARDS)
            .map(|_| ShardSlot {
                shard: Mutex::new(CacheShard::new(shard_budget)),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                inserts: AtomicU64::new(0),
                evictions: AtomicU64::new(0),
                expired: AtomicU64::new(0),
                entries: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                prefetch_saved: AtomicU64::new(0),
            })
            .collect::<Box<[_]>>();
        for slot in shards.iter() {
            slot.publish(&lock(&slot.shard, shard_budget));
        }
        Cache {
            shards,
            hasher: foldhash::quality::RandomState::default(),
            policy: TtlPolicy {
                min_ttl: cfg.min_ttl,
                max_ttl: cfg.max_ttl,
                negative_max_ttl: cfg.negative_max_ttl,
                servfail_ttl: cfg.servfail_ttl,
            },
            serve_stale: cfg.serve_stale,
            stale_max_age: cfg.stale_max_age,
            stale_answer_ttl: cfg.stale_answer_ttl,
            shard_budget,
            epoch: coarse_seconds(),
        }
    }

    /// Seconds since the cache was made.
    fn now(&self) -> u32 {
        u32::try_from(coarse_seconds().saturating_sub(self.epoch)).unwrap_or(u32::MAX)
    }

    /// On Hit, HitRefresh or Stale, writes into `out` (cleared first) the stored response
    /// with the ID set to `id`, the question bytes replaced by `question`
    /// (the client's `buf[12..question_end]`, which keeps its 0x20 case), and
    /// every TTL decremented by the entry's age (Stale: set to
    /// `stale_answer_ttl`). `allow_stale`: pass true only after every
    /// upstream failed; an expired entry within `stale_max_age` of its
    /// expiry is then returned as Stale (if `serve_stale` is on; never a
    /// cached SERVFAIL). On Miss, `out` is untouched.
    pub fn get(
        &self,
        key: &CacheKey,
        id: u16,
        question: &[u8],
        allow_stale: bool,
        out: &mut Vec<u8>,
    ) -> Lookup {
        self.get_at(self.now(), key, id, question, allow_stale, out)
    }

    /// [`Cache::get`] at a given clock reading, for tests.
    #[doc(hidden)]
    pub fn get_at(
        &self,
        now: u32,
        key: &CacheKey,
        id: u16,
        question: &[u8],
        allow_stale: bool,
        out: &mut Vec<u8>,
    ) -> Lookup {
        let key = self.key_ref(key);
        let found = self.find_ref_at(|| now, &key, id, question, allow_stale, out);
        if found.lookup == Lookup::Miss {
            self.missed(&found);
        }
        found.lookup
    }

    /// [`Cache::get`] without stale answers, with the stamp the answer was
    /// stored with; a miss is not counted until [`Cache::missed`] says so
    /// (a name the filter then blocks was never the cache's to answer).
    pub fn lookup(&self, q: &Query, question: &[u8], out: &mut Vec<u8>) -> Found {
        let key = self.key_ref_of(QueryKey::of(q));
        // The clock is read only when something is found.
        self.find_ref_at(|| self.now(), &key, q.id, question, false, out)
    }

    /// Counts the miss `found` was.
    pub fn missed(&self, found: &Found) {
        let slot = &self.shards[found.shard];
        let _shard = lock(&slot.shard, self.shard_budget);
        bump(&slot.misses, 1);
    }

    fn find_ref_at(
        &self,
        now: impl FnOnce() -> u32,
        key: &KeyRef,
        id: u16,
        question: &[u8],
        allow_stale: bool,
        out: &mut Vec<u8>,
    ) -> Found {
        let index = self.slot_index(key.hash);
        let slot = &self.shards[index];
        let found = |lookup, stamp| Found {
            lookup,
            stamp,
            shard: index,
        };
        let mut shard = lock(&slot.shard, self.shard_budget);
        let Some(i) = shard.find(key) else {
            return found(Lookup::Miss, 0);
        };
        let (e, data) = shard.entry_and_data(i);
        let now = now();
        let rewrite = if now < e.expires {
            Some((
                Lookup::Hit,
                TtlRewrite::Age(now.saturating_sub(e.stored_at)),
            ))
        } else if allow_stale && self.serve_stale && !e.is_servfail() && !self.is_dead(e, now) {
            Some((Lookup::Stale, TtlRewrite::Stale(self.stale_answer_ttl)))
        } else {
            None
        };
        match rewrite {
            Some((lookup, ttl)) => {
                let response_len = usize::from(e.response_len);
                let question_len = key.name.len() + 4;
                let stamp = e.stamp;
                answer::write_answer(data, response_len, question_len, id, question, ttl, out);
                bump(&slot.hits, 1);
                if lookup != Lookup::Hit {
                    return found(lookup, stamp);
                }
                let note = shard.hit(i, now);
                if note.saved_miss {
                    bump(&slot.prefetch_saved, 1);
                }
                if note.refresh && !allow_stale {
                    found(Lookup::HitRefresh, stamp)
                } else {
                    found(Lookup::Hit, stamp)
                }
            }
            None => {
                if self.is_dead(e, now) {
                    shard.remove(i);
                    bump(&slot.expired, 1);
                    slot.publish(&shard);
                }
                found(Lookup::Miss, 0)
            }
        }
    }

    /// Caches `response` (an upstream answer to `key`'s question, OPT
    /// already stripped) if it is cacheable. The cache picks the lifetime:
    /// - NOERROR with answers: the smallest answer/authority TTL, each
    ///   clamped to `[min_ttl, max_ttl]` (the stored TTLs are clamped too).
    /// - NXDOMAIN or NODATA: `min(SOA TTL, SOA MINIMUM)` from the authority
    ///   section (RFC 2308), at most `negative_max_ttl`; with no SOA it is
    ///   not cached, as RFC 2308 §5 advises.
    /// - SERVFAIL: `servfail_ttl`.
    /// - TC set, REFUSED/FORMERR/NOTIMP and other rcodes, a lifetime of 0,
    ///   a question other than `key`'s, or unparsable bytes: not cached.
    ///
    /// Replaces any entry for the same key, except that a SERVFAIL never
    /// replaces a real answer (which may yet be served stale). With
    /// `memory_mib = 0` nothing is ever stored.
    pub fn insert(&self, key: &CacheKey, response: &[u8]) {
        self.insert_at(self.now(), key, response);
    }

    /// [`Cache::insert`] with the filter's [`Found::stamp`] for the name.
    pub fn insert_stamped(&self, key: &CacheKey, response: &[u8], stamp: u32) {
        self.store(self.now(), key, response, false, stamp);
    }

    /// [`Cache::insert`] of a prefetch refresh: the entry remembers when
    /// the answer it replaces would have expired, so a hit past that time
    /// counts as a miss saved ([`CacheStats::prefetch_saved`]).
    pub fn insert_prefetched(&self, key: &CacheKey, response: &[u8], stamp: u32) {
        self.store(self.now(), key, response, true, stamp);
    }

    /// [`Cache::insert`] at a given clock reading, for tests.
    #[doc(hidden)]
    pub fn insert_at(&self, now: u32, key: &CacheKey, response: &[u8]) {
        self.store(now, key, response, false, 0);
    }

    /// [`Cache::insert_prefetched`] at a given clock reading, for tests.
    #[doc(hidden)]
    pub fn insert_prefetched_at(&self, now: u32, key: &CacheKey, response: &[u8]) {
        self.store(now, key, response, true, 0);
    }

    fn store(&self, now: u32, key: &CacheKey, response: &[u8], prefetched: bool, stamp: u32) {
        let Some(p) = answer::prepare(response, &key.name, key.qtype, key.qclass, &self.policy)
        else {
            return;
        };
        // One answer must not flush a shard.
        if arena::alloc_size(p.data.len()) > self.shard_budget / 8 {
            return;
        }
        let key = self.key_ref(key);
        let slot = self.slot(key.hash);
        let new = NewEntry {
            data: &p.data,
            response_len: p.response_len,
            stored_at: now,
            expires: now.saturating_add(p.ttl),
            kind: p.kind,
            prefetched,
            stamp,
        };
        let mut shard = lock(&slot.shard, self.shard_budget);
        let Some(outcome) = shard.insert(&key, new, |e| self.is_dead(e, now)) else {
            return;
        };
        slot.publish(&shard);
        bump(&slot.inserts, 1);
        bump(&slot.evictions, outcome.evicted);
        bump(&slot.expired, outcome.expired);
    }

    /// Lock-free: sums the shards' atomic counters.
    pub fn stats(&self) -> CacheStats {
        let mut s = CacheStats {
            capacity_bytes: (self.shard_budget * SHARDS) as u64,
            ..CacheStats::default()
        };
        for slot in self.shards.iter() {
            s.hits += slot.hits.load(Relaxed);
            s.misses += slot.misses.load(Relaxed);
            s.inserts += slot.inserts.load(Relaxed);
            s.evictions += slot.evictions.load(Relaxed);
            s.expired += slot.expired.load(Relaxed);
            s.entries += slot.entries.load(Relaxed);
            s.bytes += slot.bytes.load(Relaxed);
            s.prefetch_saved += slot.prefetch_saved.load(Relaxed);
        }
        s
    }

    /// Drops every entry and gives the memory back; counters keep counting.
    pub fn clear(&self) {
        for slot in self.shards.iter() {
            let mut shard = lock(&slot.shard, self.shard_budget);
            *shard = CacheShard::new(self.shard_budget);
            slot.publish(&shard);
        }
    }

    /// Drops every entry that is past use (expired, and past the stale
    /// window when that applies), one shard at a time and at most
    /// a few hundred entries per lock hold, so lookups never wait long.
    /// Meant for a background task every minute or so; returns how many
    /// entries went. Lookups and eviction also drop dead entries they meet,
    /// so skipping a sweep only delays reclaiming memory.
    pub fn sweep_expired(&self) -> u64 {
        (0..SHARDS).map(|i| self.sweep_shard(i)).sum()
    }

    /// [`Cache::sweep_expired`] for shard `shard` (0..64) only, for callers
    /// that want to spread the work out further.
    pub fn sweep_shard(&self, shard: usize) -> u64 {
        self.sweep_shard_at(self.now(), shard)
    }

    #[doc(hidden)]
    pub fn sweep_expired_at(&self, now: u32) -> u64 {
        (0..SHARDS).map(|i| self.sweep_shard_at(now, i)).sum()
    }

    fn sweep_shard_at(&self, now: u32, shard: usize) -> u64 {
        let Some(slot) = self.shards.get(shard) else {
            return 0;
        };
        let mut removed = 0;
        let mut start = 0;
        loop {
            let mut s = lock(&slot.shard, self.shard_budget);
            if start >= s.slab_len() {
                break;
            }
            let n = s.remove_dead(start..start + SWEEP_CHUNK, |e| self.is_dead(e, now));
            removed += n;
            bump(&slot.expired, n);
            slot.publish(&s);
            drop(s);
            start += SWEEP_CHUNK;
        }
        removed
    }

    /// Past any use: expired, and past the stale window if it could be
    /// served stale.
    fn is_dead(&self, e: &Entry, now: u32) -> bool {
        let window = if self.serve_stale && !e.is_servfail() {
            u64::from(self.stale_max_age)
        } else {
            0
        };
        u64::from(now) >= u64::from(e.expires) + window
    }

    fn key_ref<'a>(&self, key: &'a CacheKey) -> KeyRef<'a> {
        self.key_ref_of(QueryKey::of_key(key))
    }

    fn key_ref_of<'a>(&self, k: QueryKey<'a>) -> KeyRef<'a> {
        KeyRef {
            hash: self.hasher.hash_one(&k),
            name: k.name,
            qtype: k.qtype,
            qclass: k.qclass,
            do_bit: k.do_bit,
            cd: k.cd,
        }
    }

    /// Bits 40..46 pick the shard: the shard's index uses the low 32 bits
    /// for bucket and tag, which must stay varied within a shard.
    fn slot(&self, hash: u64) -> &ShardSlot {
        &self.shards[self.slot_index(hash)]
    }

    fn slot_index(&self, hash: u64) -> usize {
        (hash >> 40) as usize % SHARDS
    }
}

/// Adds to a shard's counter. Only ever called with that shard's lock held,
/// so a plain load and store cannot lose an update, and cost no locked
/// instruction on the hit path.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed) + n, Relaxed);
}

/// Locks a shard. A panic while it was held may have left it half-updated,
/// so a poisoned shard is emptied rather than trusted.
fn lock(m: &Mutex<CacheShard>, budget: usize) -> MutexGuard<'_, CacheShard> {
    m.lock().unwrap_or_else(|poisoned| {
        let mut shard = poisoned.into_inner();
        *shard = CacheShard::new(budget);
        m.clear_poison();
        shard
    })
}

fn coarse_seconds() -> u64 {
    crate::clock::coarse_monotonic().as_secs()
}

#[cfg(test)]
mod tests;
