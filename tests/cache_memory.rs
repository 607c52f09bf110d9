//! The cache's memory bound as the process sees it: resident set size after
//! a flood of a million distinct names, with the production allocator.
//!
//! Its own test binary so that no other test's allocations blur the
//! number. Run: `cargo test --test cache_memory -- --nocapture`.

use glory_hole::config::CacheConfig;
use glory_hole::dns::cache::{Cache, CacheKey, Lookup};
use glory_hole::dns::wire::{CLASS_IN, Query, RCODE_NOERROR, ResponseWriter, TYPE_A};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value in kB")
}

/// A query for `n` under a name of realistic, varying length.
fn query(n: u64) -> Vec<u8> {
    let mut b = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    let host = format!("host-{n}");
    b.push(host.len() as u8);
    b.extend_from_slice(host.as_bytes());
    b.extend_from_slice(b"\x05flood\x07example\x03com\x00");
    b.extend_from_slice(&TYPE_A.to_be_bytes());
    b.extend_from_slice(&CLASS_IN.to_be_bytes());
    b
}

#[test]
fn rss_stays_near_memory_mib_through_a_million_name_flood() {
    const MEMORY_MIB: u32 = 16;
    const NAMES: u64 = 1_000_000;
    let before = rss_kib();
    let cache = Cache::new(&CacheConfig {
        memory_mib: MEMORY_MIB,
        ..CacheConfig::default()
    });
    let mut response = Vec::new();
    let mut out = Vec::new();
    let mut peak = before;
    for n in 0..NAMES {
        let raw = query(n);
        let q = Query::parse(&raw).unwrap();
        let key = CacheKey::from_query(&q);
        assert_eq!(
            cache.get(&key, 1, &raw[12..], false, &mut out),
            Lookup::Miss
        );
        let mut w = ResponseWriter::new(&mut response, &raw, &q, RCODE_NOERROR, false);
        w.record_at_qname(0, TYPE_A, 300, &[192, 0, 2, (n % 250) as u8]);
        w.record_at_qname(0, TYPE_A, 300, &[198, 51, 100, (n % 250) as u8]);
        w.finish();
        cache.insert(&key, &response);
        if n.is_multiple_of(50_000) {
            peak = peak.max(rss_kib());
        }
    }
    let after = rss_kib();
    peak = peak.max(after);
    let s = cache.stats();
    println!(
        "cache_memory: memory_mib={MEMORY_MIB} names={NAMES} entries={} cache_bytes={} \
         evictions={} rss_before={}KiB rss_after={}KiB rss_peak={}KiB growth={}KiB",
        s.entries,
        s.bytes,
        s.evictions,
        before,
        after,
        peak,
        peak - before
    );
    assert!(s.bytes <= s.capacity_bytes, "{s:?}");
    assert!(s.evictions > 0);
    // What the cache costs the process, allocator slack included, must stay
    // close to what it charges itself: within a quarter of memory_mib.
    let growth = peak - before;
    let cache_bound_kib = u64::from(MEMORY_MIB) * 1024 * 5 / 4;
    assert!(
        growth <= cache_bound_kib,
        "RSS grew {growth} KiB, over {cache_bound_kib} KiB for a {MEMORY_MIB} MiB cache ({s:?})"
    );
    // The target is RSS under memory_mib + 12 MiB for the whole
    // process; this test binary's own baseline is part of `peak`, so it is
    // reported rather than asserted.
    println!(
        "cache_memory: peak RSS {peak} KiB vs target {} KiB",
        u64::from(MEMORY_MIB + 12) * 1024
    );
}
