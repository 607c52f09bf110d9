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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    /// An expired answer served because every upstream failed (RFC 8767).
    Stale,
    Miss,
}

/// Counters since the cache was made. `hits` includes stale answers, so
/// `hits + misses` is the number of lookups. `expired` counts entries
/// dropped because their time (and stale window) ran out, `evictions`
/// those dropped for room.
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

    /// On Hit or Stale, writes into `out` (cleared first) the stored response
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
        let slot = self.slot(key.hash);
        let mut shard = lock(&slot.shard, self.shard_budget);
        let Some(i) = shard.find(&key) else {
            bump(&slot.misses, 1);
            return Lookup::Miss;
        };
        let (e, data) = shard.entry_and_data(i);
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
                answer::write_answer(data, response_len, question_len, id, question, ttl, out);
                if lookup == Lookup::Hit {
                    shard.touch(i);
                }
                bump(&slot.hits, 1);
                lookup
            }
            None => {
                if self.is_dead(e, now) {
                    shard.remove(i);
                    bump(&slot.expired, 1);
                    slot.publish(&shard);
                }
                bump(&slot.misses, 1);
                Lookup::Miss
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

    /// [`Cache::insert`] at a given clock reading, for tests.
    #[doc(hidden)]
    pub fn insert_at(&self, now: u32, key: &CacheKey, response: &[u8]) {
        let Some(p) = answer::prepare(response, &key.name, key.qtype, key.qclass, &self.policy)
        else {
            return;
        };
        // One answer must not flush a shard.
        if shard::alloc_size(p.data.len()) > self.shard_budget / 8 {
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
        KeyRef {
            hash: self.hasher.hash_one(key),
            name: &key.name,
            qtype: key.qtype,
            qclass: key.qclass,
            do_bit: key.do_bit,
            cd: key.cd,
        }
    }

    /// Bits 40..46 pick the shard: the shard's index uses the low 32 bits
    /// for bucket and tag, which must stay varied within a shard.
    fn slot(&self, hash: u64) -> &ShardSlot {
        &self.shards[(hash >> 40) as usize % SHARDS]
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
mod tests {
    use super::*;
    use crate::wire::{
        self, CLASS_IN, RCODE_FORMERR, RCODE_NOERROR, RCODE_NOTIMP, RCODE_NXDOMAIN, RCODE_REFUSED,
        RCODE_SERVFAIL, ResponseWriter, TYPE_A, TYPE_AAAA, TYPE_OPT, TYPE_SOA, flags,
    };

    /// A query for `name` exactly as typed (case kept, like a 0x20 client).
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut b = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            b.push(label.len() as u8);
            b.extend_from_slice(label.as_bytes());
        }
        b.push(0);
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        b
    }

    fn question(name: &str, qtype: u16) -> Vec<u8> {
        query(name, qtype)[12..].to_vec()
    }

    fn key(name: &str, qtype: u16) -> CacheKey {
        CacheKey::from_query(&Query::parse(&query(name, qtype)).unwrap())
    }

    fn key_bits(name: &str, do_bit: bool, cd: bool) -> CacheKey {
        CacheKey {
            do_bit,
            cd,
            ..key(name, TYPE_A)
        }
    }

    fn soa_rdata(minimum: u32) -> Vec<u8> {
        // Root MNAME and RNAME, then serial, refresh, retry, expire, minimum.
        let mut r = vec![0, 0];
        for v in [1u32, 7200, 900, 1_209_600, minimum] {
            r.extend_from_slice(&v.to_be_bytes());
        }
        r
    }

    /// An upstream response: A records with the given TTLs (addresses
    /// 10.0.0.n), and an authority SOA `(ttl, minimum)` if given.
    fn response(
        name: &str,
        qtype: u16,
        rcode: u8,
        answer_ttls: &[u32],
        soa: Option<(u32, u32)>,
    ) -> Vec<u8> {
        let raw = query(name, qtype);
        let q = Query::parse(&raw).unwrap();
        let mut out = Vec::new();
        let mut w = ResponseWriter::new(&mut out, &raw, &q, rcode, true);
        for (n, &ttl) in answer_ttls.iter().enumerate() {
            w.record_at_qname(0, TYPE_A, ttl, &[10, 0, 0, n as u8]);
        }
        if let Some((ttl, minimum)) = soa {
            w.record(1, &[0], TYPE_SOA, ttl, &soa_rdata(minimum));
        }
        w.finish();
        out
    }

    fn ttls(msg: &[u8]) -> Vec<u32> {
        let mut t = Vec::new();
        wire::for_each_record(msg, |r| t.push(wire::read_u32(msg, r.ttl_at).unwrap())).unwrap();
        t
    }

    fn cfg() -> CacheConfig {
        CacheConfig {
            memory_mib: 4,
            ..CacheConfig::default()
        }
    }

    /// Looks `name` up the way the pipeline does; returns what came back.
    fn lookup(cache: &Cache, now: u32, name: &str, allow_stale: bool) -> (Lookup, Vec<u8>) {
        let mut out = Vec::new();
        let l = cache.get_at(
            now,
            &key(name, TYPE_A),
            0xBEEF,
            &question(name, TYPE_A),
            allow_stale,
            &mut out,
        );
        (l, out)
    }

    #[test]
    fn hit_returns_stored_answer_with_client_id_and_question_case() {
        let cache = Cache::new(&cfg());
        // The upstream echoed the forwarder's own 0x20 case.
        let stored = response("exAMPle.com", TYPE_A, RCODE_NOERROR, &[300, 300], None);
        cache.insert_at(10, &key("example.com", TYPE_A), &stored);

        let (l, out) = lookup(&cache, 10, "ExAmPlE.cOm", false);
        assert_eq!(l, Lookup::Hit);
        assert_eq!(out.len(), stored.len());
        assert_eq!(&out[..2], &[0xBE, 0xEF]);
        assert_eq!(&out[12..12 + 17], &question("ExAmPlE.cOm", TYPE_A)[..]);
        assert_eq!(&out[12 + 17..], &stored[12 + 17..]);
        // Same flags, except that a cached answer is not authoritative.
        assert_eq!(
            wire::response_flags(&out),
            wire::response_flags(&stored) & !flags::AA
        );
        assert_eq!(lookup(&cache, 10, "other.example", false).0, Lookup::Miss);
    }

    #[test]
    fn ttls_count_down_with_age_and_entry_expires() {
        let cache = Cache::new(&CacheConfig {
            serve_stale: false,
            ..cfg()
        });
        let r = response("a.test", TYPE_A, RCODE_NOERROR, &[300, 600], None);
        cache.insert_at(100, &key("a.test", TYPE_A), &r);
        let (l, out) = lookup(&cache, 150, "a.test", false);
        assert_eq!(l, Lookup::Hit);
        assert_eq!(ttls(&out), vec![250, 550]);
        // The entry lives as long as its smallest TTL.
        assert_eq!(ttls(&lookup(&cache, 399, "a.test", false).1), vec![1, 301]);
        assert_eq!(lookup(&cache, 400, "a.test", false).0, Lookup::Miss);
        assert_eq!(
            cache.stats().entries,
            0,
            "a dead entry met by a lookup is dropped"
        );
        assert_eq!(cache.stats().expired, 1);
    }

    #[test]
    fn ttls_are_clamped_to_min_and_max() {
        let cache = Cache::new(&CacheConfig {
            min_ttl: 60,
            max_ttl: 3600,
            ..cfg()
        });
        let r = response("c.test", TYPE_A, RCODE_NOERROR, &[5, 1_000_000], None);
        cache.insert_at(0, &key("c.test", TYPE_A), &r);
        assert_eq!(ttls(&lookup(&cache, 0, "c.test", false).1), vec![60, 3600]);
        assert_eq!(ttls(&lookup(&cache, 59, "c.test", false).1), vec![1, 3541]);
        assert_eq!(lookup(&cache, 60, "c.test", false).0, Lookup::Miss);
    }

    #[test]
    fn negative_answers_live_for_the_soa_minimum() {
        let cache = Cache::new(&cfg());
        // NXDOMAIN: min(SOA TTL 3600, MINIMUM 300) = 300.
        let nx = response("nx.test", TYPE_A, RCODE_NXDOMAIN, &[], Some((3600, 300)));
        cache.insert_at(0, &key("nx.test", TYPE_A), &nx);
        let (l, out) = lookup(&cache, 100, "nx.test", false);
        assert_eq!(l, Lookup::Hit);
        assert_eq!(wire::rcode(&out), RCODE_NXDOMAIN);
        assert_eq!(ttls(&out), vec![200], "the SOA's TTL is the negative TTL");
        assert_eq!(lookup(&cache, 300, "nx.test", false).0, Lookup::Miss);

        // NODATA: min(SOA TTL 120, MINIMUM 900) = 120.
        let nodata = response("nd.test", TYPE_A, RCODE_NOERROR, &[], Some((120, 900)));
        cache.insert_at(0, &key("nd.test", TYPE_A), &nodata);
        assert_eq!(ttls(&lookup(&cache, 20, "nd.test", false).1), vec![100]);
        assert_eq!(lookup(&cache, 120, "nd.test", false).0, Lookup::Miss);

        // No SOA: RFC 2308 §5 says not to cache it.
        let bare = response("bare.test", TYPE_A, RCODE_NXDOMAIN, &[], None);
        cache.insert_at(0, &key("bare.test", TYPE_A), &bare);
        assert_eq!(lookup(&cache, 0, "bare.test", false).0, Lookup::Miss);
    }

    #[test]
    fn negative_ttl_is_capped_by_negative_max_ttl() {
        let cache = Cache::new(&CacheConfig {
            negative_max_ttl: 50,
            ..cfg()
        });
        let nx = response("nx.test", TYPE_A, RCODE_NXDOMAIN, &[], Some((3600, 3600)));
        cache.insert_at(0, &key("nx.test", TYPE_A), &nx);
        assert_eq!(ttls(&lookup(&cache, 0, "nx.test", false).1), vec![50]);
        assert_eq!(lookup(&cache, 50, "nx.test", false).0, Lookup::Miss);
    }

    #[test]
    fn servfail_is_cached_briefly_and_never_served_stale() {
        let cache = Cache::new(&CacheConfig {
            servfail_ttl: 5,
            ..cfg()
        });
        let sf = response("sf.test", TYPE_A, RCODE_SERVFAIL, &[], None);
        cache.insert_at(0, &key("sf.test", TYPE_A), &sf);
        let (l, out) = lookup(&cache, 4, "sf.test", false);
        assert_eq!(l, Lookup::Hit);
        assert_eq!(wire::rcode(&out), RCODE_SERVFAIL);
        assert_eq!(lookup(&cache, 5, "sf.test", true).0, Lookup::Miss);

        let off = Cache::new(&CacheConfig {
            servfail_ttl: 0,
            ..cfg()
        });
        off.insert_at(0, &key("sf.test", TYPE_A), &sf);
        assert_eq!(lookup(&off, 0, "sf.test", false).0, Lookup::Miss);
    }

    #[test]
    fn servfail_does_not_replace_an_answer_that_can_be_served_stale() {
        let cache = Cache::new(&cfg());
        let k = key("keep.test", TYPE_A);
        cache.insert_at(
            0,
            &k,
            &response("keep.test", TYPE_A, RCODE_NOERROR, &[60], None),
        );
        // Expired; the refresh attempt gets SERVFAIL from upstream.
        cache.insert_at(
            100,
            &k,
            &response("keep.test", TYPE_A, RCODE_SERVFAIL, &[], None),
        );
        let (l, out) = lookup(&cache, 100, "keep.test", true);
        assert_eq!(l, Lookup::Stale);
        assert_eq!(wire::rcode(&out), RCODE_NOERROR);
        assert_eq!(cache.stats().inserts, 1);
    }

    #[test]
    fn zero_memory_caches_nothing() {
        let cache = Cache::new(&CacheConfig {
            memory_mib: 0,
            ..cfg()
        });
        let r = response("z.test", TYPE_A, RCODE_NOERROR, &[300], None);
        cache.insert_at(0, &key("z.test", TYPE_A), &r);
        assert_eq!(lookup(&cache, 0, "z.test", false).0, Lookup::Miss);
        let s = cache.stats();
        assert_eq!((s.entries, s.inserts, s.capacity_bytes), (0, 0, 0));
    }

    #[test]
    fn uncacheable_responses_are_not_stored() {
        let cache = Cache::new(&cfg());
        let k = key("u.test", TYPE_A);
        let mut tc = response("u.test", TYPE_A, RCODE_NOERROR, &[300], None);
        tc[2] |= (flags::TC >> 8) as u8;
        cache.insert_at(0, &k, &tc);
        for rcode in [RCODE_REFUSED, RCODE_FORMERR, RCODE_NOTIMP] {
            cache.insert_at(0, &k, &response("u.test", TYPE_A, rcode, &[300], None));
        }
        // Garbage, a cut-off answer, an answer to another question, TTL 0.
        cache.insert_at(0, &k, b"\x12\x34\x81\x80garbage");
        let ok = response("u.test", TYPE_A, RCODE_NOERROR, &[300], None);
        cache.insert_at(0, &k, &ok[..ok.len() - 2]);
        cache.insert_at(
            0,
            &k,
            &response("v.test", TYPE_A, RCODE_NOERROR, &[300], None),
        );
        cache.insert_at(
            0,
            &k,
            &response("u.test", TYPE_AAAA, RCODE_NOERROR, &[300], None),
        );
        cache.insert_at(
            0,
            &k,
            &response("u.test", TYPE_A, RCODE_NOERROR, &[0], None),
        );
        assert_eq!(lookup(&cache, 0, "u.test", false).0, Lookup::Miss);
        assert_eq!(cache.stats().inserts, 0);
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn opt_record_flags_are_not_treated_as_a_ttl() {
        let cache = Cache::new(&cfg());
        let raw = query("opt.test", TYPE_A);
        let q = Query::parse(&raw).unwrap();
        let mut r = Vec::new();
        let mut w = ResponseWriter::new(&mut r, &raw, &q, RCODE_NOERROR, false);
        w.record_at_qname(0, TYPE_A, 300, &[1, 2, 3, 4]);
        w.opt(1232, true);
        w.finish();
        cache.insert_at(0, &key("opt.test", TYPE_A), &r);
        let (_, out) = lookup(&cache, 100, "opt.test", false);
        let mut seen = Vec::new();
        wire::for_each_record(&out, |rec| {
            seen.push((rec.rtype, wire::read_u32(&out, rec.ttl_at).unwrap()))
        })
        .unwrap();
        assert_eq!(seen, vec![(TYPE_A, 200), (TYPE_OPT, 0x8000)]);
    }

    #[test]
    fn do_and_cd_bits_select_distinct_entries() {
        let cache = Cache::new(&cfg());
        let bits = [(false, false), (true, false), (false, true), (true, true)];
        for (n, &(d, c)) in bits.iter().enumerate() {
            // Each variant gets a different number of answers to tell them apart.
            let r = response("sec.test", TYPE_A, RCODE_NOERROR, &vec![300; n + 1], None);
            let k = key_bits("sec.test", d, c);
            let mut out = Vec::new();
            let q = question("sec.test", TYPE_A);
            assert_eq!(cache.get_at(0, &k, 1, &q, false, &mut out), Lookup::Miss);
            cache.insert_at(0, &k, &r);
        }
        for (n, &(d, c)) in bits.iter().enumerate() {
            let mut out = Vec::new();
            let q = question("sec.test", TYPE_A);
            let l = cache.get_at(1, &key_bits("sec.test", d, c), 1, &q, false, &mut out);
            assert_eq!(l, Lookup::Hit);
            assert_eq!(ttls(&out).len(), n + 1, "DO={d} CD={c}");
        }
        assert_eq!(cache.stats().entries, 4);
    }

    #[test]
    fn serve_stale_only_when_allowed_and_within_max_age() {
        let cache = Cache::new(&CacheConfig {
            serve_stale: true,
            stale_max_age: 1000,
            stale_answer_ttl: 30,
            ..cfg()
        });
        let r = response("st.test", TYPE_A, RCODE_NOERROR, &[60, 120], None);
        cache.insert_at(0, &key("st.test", TYPE_A), &r);
        assert_eq!(lookup(&cache, 100, "st.test", false).0, Lookup::Miss);
        let (l, out) = lookup(&cache, 100, "st.test", true);
        assert_eq!(l, Lookup::Stale);
        assert_eq!(ttls(&out), vec![30, 30]);
        assert_eq!(&out[..2], &[0xBE, 0xEF]);
        assert_eq!(lookup(&cache, 60 + 999, "st.test", true).0, Lookup::Stale);
        assert_eq!(lookup(&cache, 60 + 1000, "st.test", true).0, Lookup::Miss);
        assert_eq!(cache.stats().entries, 0);

        let off = Cache::new(&CacheConfig {
            serve_stale: false,
            ..cfg()
        });
        off.insert_at(0, &key("st.test", TYPE_A), &r);
        assert_eq!(lookup(&off, 61, "st.test", true).0, Lookup::Miss);
    }

    #[test]
    fn refresh_replaces_the_entry() {
        let cache = Cache::new(&cfg());
        let k = key("r.test", TYPE_A);
        cache.insert_at(
            0,
            &k,
            &response("r.test", TYPE_A, RCODE_NOERROR, &[60], None),
        );
        cache.insert_at(
            50,
            &k,
            &response("r.test", TYPE_A, RCODE_NOERROR, &[300, 300], None),
        );
        assert_eq!(
            ttls(&lookup(&cache, 100, "r.test", false).1),
            vec![250, 250]
        );
        let s = cache.stats();
        assert_eq!((s.entries, s.inserts), (1, 2));
    }

    fn name(n: u64) -> String {
        format!("h{n:07}.flood.example")
    }

    /// Many distinct names, cheaply: one key and one response whose
    /// fixed-width digits are rewritten in place for each name.
    struct Flood {
        key: CacheKey,
        response: Vec<u8>,
    }

    impl Flood {
        fn new() -> Flood {
            Flood {
                key: key(&name(0), TYPE_A),
                response: response(&name(0), TYPE_A, RCODE_NOERROR, &[3600], None),
            }
        }

        fn set(&mut self, mut n: u64) -> &mut Flood {
            for i in (0..7).rev() {
                let digit = b'0' + (n % 10) as u8;
                self.key.name[2 + i] = digit;
                self.response[14 + i] = digit;
                n /= 10;
            }
            self
        }

        fn insert(&self, cache: &Cache, now: u32) {
            cache.insert_at(now, &self.key, &self.response);
        }

        fn get(&self, cache: &Cache, now: u32) -> Lookup {
            let q = &self.response[12..12 + self.key.name.len() + 4];
            cache.get_at(now, &self.key, 1, q, false, &mut Vec::new())
        }
    }

    #[test]
    fn byte_bound_holds_under_a_flood_of_distinct_names() {
        let cache = Cache::new(&CacheConfig {
            memory_mib: 2,
            ..cfg()
        });
        const N: u64 = 1_000_000;
        let mut flood = Flood::new();
        let mut max_bytes = 0;
        for n in 0..N {
            flood.set(n).insert(&cache, 0);
            if n.is_multiple_of(10_000) {
                max_bytes = max_bytes.max(cache.stats().bytes);
            }
        }
        let s = cache.stats();
        assert_eq!(s.capacity_bytes, 2 << 20);
        assert!(max_bytes.max(s.bytes) <= s.capacity_bytes, "{s:?}");
        assert!(
            s.bytes > s.capacity_bytes * 9 / 10,
            "the budget is used: {s:?}"
        );
        assert!(s.evictions > 0);
        assert_eq!(s.inserts, N);
        assert_eq!(s.entries + s.evictions + s.expired, N, "{s:?}");
        // The latest names are still there.
        assert_eq!(lookup(&cache, 1, &name(N - 1), false).0, Lookup::Hit);
    }

    /// Plain LRU over entry counts, as the yardstick S3-FIFO must beat.
    struct Lru {
        capacity: usize,
        clock: u64,
        stamp: std::collections::HashMap<String, u64>,
        order: std::collections::BTreeMap<u64, String>,
    }

    impl Lru {
        fn touch(&mut self, item: String) {
            self.clock += 1;
            if let Some(old) = self.stamp.insert(item.clone(), self.clock) {
                self.order.remove(&old);
            }
            self.order.insert(self.clock, item);
            if self.order.len() > self.capacity {
                let (_, victim) = self.order.pop_first().unwrap();
                self.stamp.remove(&victim);
            }
        }
    }

    #[test]
    fn hot_set_survives_a_scan_that_would_flush_lru() {
        let cache = Cache::new(&CacheConfig {
            memory_mib: 1,
            ..cfg()
        });
        let hot: Vec<String> = (0..200).map(|n| format!("hot{n}.example")).collect();
        for h in &hot {
            cache.insert_at(0, &key(h, TYPE_A), &response(h, TYPE_A, 0, &[3600], None));
        }
        for _ in 0..3 {
            for h in &hot {
                assert_eq!(lookup(&cache, 1, h, false).0, Lookup::Hit);
            }
        }
        // One pass over many names never seen again, as a crawler or a
        // flood would send; each is a miss and then an insert.
        let scan = 100_000u64;
        let mut flood = Flood::new();
        for n in 0..scan {
            flood.set(n);
            assert_eq!(flood.get(&cache, 2), Lookup::Miss);
            flood.insert(&cache, 2);
        }
        let capacity_entries = cache.stats().entries;
        assert!(capacity_entries < scan / 4, "the scan overflows the cache");
        let survivors = hot
            .iter()
            .filter(|h| lookup(&cache, 3, h, false).0 == Lookup::Hit)
            .count();
        assert_eq!(survivors, hot.len(), "S3-FIFO keeps the hot set");

        // LRU holding as many entries, fed the same trace, keeps none of it.
        let mut lru = Lru {
            capacity: capacity_entries as usize,
            clock: 0,
            stamp: Default::default(),
            order: Default::default(),
        };
        for _ in 0..4 {
            hot.iter().for_each(|h| lru.touch(h.clone()));
        }
        (0..scan).for_each(|n| lru.touch(name(n)));
        assert_eq!(hot.iter().filter(|h| lru.stamp.contains_key(*h)).count(), 0);
    }

    #[test]
    fn counters_add_up() {
        let cache = Cache::new(&CacheConfig {
            serve_stale: true,
            ..cfg()
        });
        let mut lookups = 0;
        for n in 0..100 {
            let nm = name(n);
            assert_eq!(lookup(&cache, 0, &nm, false).0, Lookup::Miss);
            lookups += 1;
            cache.insert_at(0, &key(&nm, TYPE_A), &response(&nm, TYPE_A, 0, &[60], None));
            for _ in 0..n % 3 {
                assert_eq!(lookup(&cache, 1, &nm, false).0, Lookup::Hit);
                lookups += 1;
            }
        }
        // Expired: misses, then stale hits when allowed.
        assert_eq!(lookup(&cache, 100, &name(7), false).0, Lookup::Miss);
        assert_eq!(lookup(&cache, 100, &name(7), true).0, Lookup::Stale);
        lookups += 2;
        let s = cache.stats();
        assert_eq!(s.hits + s.misses, lookups);
        assert_eq!(s.misses, 101);
        assert_eq!(s.hits, (0..100).map(|n| n % 3).sum::<u64>() + 1);
        assert_eq!(s.inserts, 100);
        assert_eq!(s.entries, 100);
        assert_eq!(s.evictions + s.expired, 0);
        assert!(s.bytes > 0 && s.bytes <= s.capacity_bytes);
    }

    #[test]
    fn sweep_expired_removes_dead_entries_only() {
        let cache = Cache::new(&CacheConfig {
            serve_stale: true,
            stale_max_age: 100,
            ..cfg()
        });
        for n in 0..2000u64 {
            let ttl = if n.is_multiple_of(2) { 60 } else { 3600 };
            let nm = name(n);
            cache.insert_at(
                0,
                &key(&nm, TYPE_A),
                &response(&nm, TYPE_A, 0, &[ttl], None),
            );
        }
        let before = cache.stats();
        // Expired but still servable stale: kept.
        assert_eq!(cache.sweep_expired_at(100), 0);
        assert_eq!(cache.sweep_expired_at(160), 1000);
        let after = cache.stats();
        assert_eq!(after.entries, 1000);
        assert_eq!(after.expired, 1000);
        // Every other answer gone leaves holes in the segments, reclaimed
        // when their neighbours leave too.
        assert!(after.bytes <= before.bytes);
        assert_eq!(lookup(&cache, 160, &name(1), false).0, Lookup::Hit);
        assert_eq!(lookup(&cache, 160, &name(0), true).0, Lookup::Miss);
        assert_eq!(cache.sweep_expired_at(4000), 1000);
        assert!(cache.stats().bytes < before.bytes);
        // Real clock: nothing has expired yet.
        assert_eq!(cache.sweep_expired(), 0);
    }

    #[test]
    fn clear_empties_the_cache() {
        let cache = Cache::new(&cfg());
        for n in 0..500 {
            let nm = name(n);
            cache.insert(&key(&nm, TYPE_A), &response(&nm, TYPE_A, 0, &[300], None));
        }
        assert_eq!(cache.stats().entries, 500);
        let mut out = Vec::new();
        let q = question(&name(3), TYPE_A);
        assert_eq!(
            cache.get(&key(&name(3), TYPE_A), 9, &q, false, &mut out),
            Lookup::Hit
        );
        let full = cache.stats().bytes;
        cache.clear();
        let s = cache.stats();
        assert_eq!(s.entries, 0);
        assert!(s.bytes < full);
        assert_eq!(
            cache.get(&key(&name(3), TYPE_A), 9, &q, false, &mut out),
            Lookup::Miss
        );
    }

    #[test]
    fn concurrent_lookups_and_inserts_see_their_own_answers() {
        let cache = Cache::new(&CacheConfig {
            memory_mib: 1,
            ..cfg()
        });
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let cache = &cache;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for n in 0..20_000u64 {
                        let nm = name(t * 1_000_000 + n % 3000);
                        let k = key(&nm, TYPE_A);
                        let q = question(&nm, TYPE_A);
                        match cache.get_at(0, &k, n as u16, &q, false, &mut out) {
                            Lookup::Hit => {
                                assert_eq!(&out[..2], &(n as u16).to_be_bytes());
                                assert_eq!(&out[12..12 + q.len()], &q[..]);
                            }
                            _ => cache.insert_at(0, &k, &response(&nm, TYPE_A, 0, &[60], None)),
                        }
                    }
                });
            }
        });
        let s = cache.stats();
        assert_eq!(s.hits + s.misses, 80_000);
        assert!(s.hits > 0 && s.bytes <= s.capacity_bytes);
    }
}
