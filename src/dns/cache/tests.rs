//! The cache's behaviour through its public face, [`Cache`]: hits with the
//! client's ID and case, TTLs counting down, RFC 2308 negative caching,
//! SERVFAIL and serve-stale, the byte bound under a flood, S3-FIFO against
//! LRU, counters, sweeping, and concurrent use. A fake clock (`*_at`)
//! stands in for the coarse one.
//! Not for: a shard's or the arena's own bookkeeping (tested beside them).

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
    // Same flags (QR RD RA, NOERROR), except that a cached answer is not
    // authoritative.
    assert_eq!(wire::response_flags(&stored), 0x8580);
    assert_eq!(wire::response_flags(&out), 0x8180);
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

// ---- prefetch: the hit that asks for a refresh, and the misses saved ----

#[test]
fn the_first_hit_in_the_last_tenth_of_the_ttl_asks_for_one_refresh() {
    let cache = Cache::new(&cfg());
    let r = response("hot.test", TYPE_A, RCODE_NOERROR, &[100], None);
    cache.insert_at(1000, &key("hot.test", TYPE_A), &r);
    // 100 s of TTL: the last tenth starts with 10 s left, at 1090.
    for now in [1000, 1050, 1089] {
        assert_eq!(
            lookup(&cache, now, "hot.test", false).0,
            Lookup::Hit,
            "at {now}"
        );
    }
    assert_eq!(
        lookup(&cache, 1090, "hot.test", false).0,
        Lookup::HitRefresh
    );
    // A burst asks once.
    for now in [1090, 1091, 1099] {
        assert_eq!(
            lookup(&cache, now, "hot.test", false).0,
            Lookup::Hit,
            "at {now}"
        );
    }
    // Stale answers (every upstream failed) never ask.
    let r = response("other.test", TYPE_A, RCODE_NOERROR, &[100], None);
    cache.insert_at(1000, &key("other.test", TYPE_A), &r);
    assert_eq!(lookup(&cache, 1095, "other.test", true).0, Lookup::Hit);
}

#[test]
fn a_cached_servfail_is_never_refreshed() {
    let cache = Cache::new(&CacheConfig {
        servfail_ttl: 30,
        ..cfg()
    });
    let r = response("broken.test", TYPE_A, RCODE_SERVFAIL, &[], None);
    cache.insert_at(0, &key("broken.test", TYPE_A), &r);
    assert_eq!(lookup(&cache, 29, "broken.test", false).0, Lookup::Hit);
}

#[test]
fn a_prefetched_answer_counts_one_saved_miss_past_the_old_expiry() {
    let cache = Cache::new(&cfg());
    let k = key("hot.test", TYPE_A);
    let r = response("hot.test", TYPE_A, RCODE_NOERROR, &[100], None);
    cache.insert_at(0, &k, &r);
    assert_eq!(lookup(&cache, 95, "hot.test", false).0, Lookup::HitRefresh);
    cache.insert_prefetched_at(96, &k, &r);
    // Renewed: 100 s from the refresh, and it may ask again in its own
    // last tenth.
    let (l, out) = lookup(&cache, 99, "hot.test", false);
    assert_eq!((l, ttls(&out)), (Lookup::Hit, vec![97]));
    assert_eq!(cache.stats().prefetch_saved, 0, "before the old expiry");
    assert_eq!(lookup(&cache, 100, "hot.test", false).0, Lookup::Hit);
    assert_eq!(
        cache.stats().prefetch_saved,
        1,
        "the old answer was gone at 100"
    );
    assert_eq!(lookup(&cache, 101, "hot.test", false).0, Lookup::Hit);
    assert_eq!(cache.stats().prefetch_saved, 1, "once per refresh");
    assert_eq!(lookup(&cache, 186, "hot.test", false).0, Lookup::HitRefresh);
    // An ordinary insert (a miss's answer) saves nothing.
    cache.insert_at(300, &k, &r);
    assert_eq!(lookup(&cache, 398, "hot.test", false).0, Lookup::HitRefresh);
    assert_eq!(cache.stats().prefetch_saved, 1);
}

#[test]
fn the_pipelines_lookup_finds_by_the_query_keeps_the_stamp_and_counts_misses_when_told() {
    let cache = Cache::new(&cfg());
    let stored = response("stamped.example", TYPE_A, RCODE_NOERROR, &[300], None);
    cache.insert_stamped(&key("stamped.example", TYPE_A), &stored, 7);
    let plain = response("plain.example", TYPE_A, RCODE_NOERROR, &[300], None);
    cache.insert(&key("plain.example", TYPE_A), &plain);
    let ask = |name: &str, do_bit: bool| {
        let mut raw = query(name, TYPE_A);
        if do_bit {
            // One OPT record with DO: a different key, hashed the same way.
            wire::set_arcount(&mut raw, 1);
            wire::push_opt(&mut raw, 1232, true, 0);
        }
        let q = Query::parse(&raw).unwrap();
        let mut out = Vec::new();
        let found = cache.lookup(&q, &raw[12..q.question_end], &mut out);
        (found, out)
    };
    let (found, out) = ask("Stamped.Example", false);
    assert_eq!((found.lookup, found.stamp), (Lookup::Hit, 7));
    assert_eq!(out.len(), stored.len());
    let (found, _) = ask("plain.example", false);
    assert_eq!((found.lookup, found.stamp), (Lookup::Hit, 0));
    // Under a DO query the key differs: a miss, not counted until told.
    let (found, out) = ask("stamped.example", true);
    assert_eq!((found.lookup, found.stamp), (Lookup::Miss, 0));
    assert!(out.is_empty());
    assert_eq!((cache.stats().hits, cache.stats().misses), (2, 0));
    cache.missed(&found);
    assert_eq!(cache.stats().misses, 1);
    // A stamped answer replaced without one loses its stamp.
    cache.insert(&key("stamped.example", TYPE_A), &stored);
    assert_eq!(ask("stamped.example", false).0.stamp, 0);
}
