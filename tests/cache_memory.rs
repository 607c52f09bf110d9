//! The cache's memory as the process sees it, with the production
//! allocator: resident set size after a flood of a million distinct names,
//! and no allocation at all on the hit path.
//!
//! Its own test binary so that no other test's allocations blur the
//! numbers. Run: `cargo test --test cache_memory -- --nocapture`.

use glory_hole::config::CacheConfig;
use glory_hole::dns::cache::{Cache, CacheKey, Lookup};
use glory_hole::dns::wire::{CLASS_IN, Query, RCODE_NOERROR, ResponseWriter, TYPE_A};

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

/// mimalloc, counting allocations per thread so each test sees only its own.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to mimalloc; the counter is a
// const-initialised thread-local, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

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

/// The flood's query template: `host-0000000.flood.example.com`, A.
fn query() -> Vec<u8> {
    let mut b = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(b"\x0chost-0000000\x05flood\x07example\x03com\x00");
    b.extend_from_slice(&TYPE_A.to_be_bytes());
    b.extend_from_slice(&CLASS_IN.to_be_bytes());
    b
}

/// Writes `n` into the seven digits of the name starting at `name[0]`.
fn set_digits(name: &mut [u8], mut n: u64) {
    for i in (0..7).rev() {
        name[6 + i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
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
    // A realistic answer: two addresses, 79 bytes. Each name is a new one,
    // written into the same buffers so the test allocates nothing else.
    let mut raw = query();
    let parsed = Query::parse(&raw).unwrap();
    let mut key = CacheKey::from_query(&parsed);
    let mut response = Vec::new();
    let mut w = ResponseWriter::new(&mut response, &raw, &parsed, RCODE_NOERROR, false);
    w.record_at_qname(0, TYPE_A, 300, &[192, 0, 2, 1]);
    w.record_at_qname(0, TYPE_A, 300, &[198, 51, 100, 1]);
    w.finish();
    let mut out = Vec::new();
    let mut peak = before;
    for n in 0..NAMES {
        set_digits(&mut raw[12..], n);
        set_digits(&mut key.name, n);
        set_digits(&mut response[12..], n);
        assert_eq!(
            cache.get(&key, 1, &raw[12..], false, &mut out),
            Lookup::Miss
        );
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
    // The target: RSS under memory_mib + 12 MiB through the flood.
    // The test process's own baseline (harness, the allocator's eagerly
    // committed arena: ~9 MiB here) is not the cache's, so the bound is on
    // growth, and tighter than the target: the cache's real cost, allocator
    // slack and commit granularity included, within 1.5 x memory_mib leaves
    // the rest of the 12 MiB to the rest of the process.
    let growth = peak - before;
    let bound_kib = u64::from(MEMORY_MIB) * 1024 * 3 / 2;
    assert!(
        growth <= bound_kib,
        "RSS grew {growth} KiB, over {bound_kib} KiB for a {MEMORY_MIB} MiB cache ({s:?})"
    );
    println!(
        "cache_memory: RSS growth {growth} KiB (bound {bound_kib} KiB), peak {peak} KiB, \
         issue target memory_mib + 12 MiB = {} KiB",
        u64::from(MEMORY_MIB + 12) * 1024
    );
}

#[test]
fn cache_hits_do_not_allocate() {
    // Small, so it barely blurs the RSS test running beside it.
    let cache = Cache::new(&CacheConfig {
        memory_mib: 1,
        ..CacheConfig::default()
    });
    let mut raw = query();
    let parsed = Query::parse(&raw).unwrap();
    let mut key = CacheKey::from_query(&parsed);
    let mut response = Vec::new();
    let mut w = ResponseWriter::new(&mut response, &raw, &parsed, RCODE_NOERROR, false);
    w.record_at_qname(0, TYPE_A, 300, &[192, 0, 2, 1]);
    w.finish();
    let before_inserts = allocations();
    for n in 0..1000 {
        set_digits(&mut key.name, n);
        set_digits(&mut response[12..], n);
        cache.insert(&key, &response);
    }
    assert!(
        allocations() - before_inserts >= 1000,
        "the counter sees the inserts' allocations"
    );
    // The caller's buffer, grown once, as the pipeline reuses it.
    let mut out = Vec::with_capacity(512);
    let before = allocations();
    for n in 0..10_000u64 {
        let n = n % 1000;
        set_digits(&mut raw[12..], n);
        set_digits(&mut key.name, n);
        let l = cache.get(&key, n as u16, &raw[12..], false, &mut out);
        assert_eq!(l, Lookup::Hit);
        assert_eq!(&out[12..raw.len()], &raw[12..]);
    }
    assert_eq!(allocations() - before, 0, "allocations on the hit path");
}
