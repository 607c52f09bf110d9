//! The cache's memory as the process sees it, with the production
//! allocator: resident set size through a flood of a million distinct names
//! amid other allocations of similar sizes, and no allocation at all on the
//! hit path.
//!
//! Its own test binary so that no other test's allocations blur the
//! numbers; its two tests take turns. Run:
//! `cargo test --test cache_memory -- --nocapture`.

use glory_hole::config::CacheConfig;
use glory_hole::dns::cache::{Cache, CacheKey, Lookup};
use glory_hole::wire::{CLASS_IN, Query, RCODE_NOERROR, ResponseWriter, TYPE_A};

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

/// Held by each test for its whole run: the RSS test must not count the
/// other test's cache.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// mimalloc, counting allocations per thread so each test sees only its
/// own, and the bytes allocated and not yet freed, process-wide.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

static HEAP_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards every call unchanged to mimalloc; the counters are a
// const-initialised thread-local and a static atomic, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        HEAP_BYTES.fetch_add(layout.size() as i64, Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        HEAP_BYTES.fetch_add(layout.size() as i64, Relaxed);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        HEAP_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP_BYTES.fetch_sub(layout.size() as i64, Relaxed);
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

/// What the rest of the server allocates while the cache fills: request
/// state, upstream buffers and prepared answers, 40 to 300 bytes, each
/// living for a while (a few thousand queries) and freed out of order.
/// Blocks like these sharing allocator pages with per-answer blocks is what
/// made the cache's real RSS drift above its budget.
struct Neighbours {
    slots: Vec<Vec<u8>>,
    rng: u64,
}

impl Neighbours {
    fn new() -> Neighbours {
        let mut n = Neighbours {
            slots: vec![Vec::new(); 4096],
            rng: 1,
        };
        // Its own steady state comes before the baseline reading.
        for _ in 0..200_000 {
            n.churn();
        }
        n
    }

    fn churn(&mut self) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let slot = (self.rng % self.slots.len() as u64) as usize;
        let len = 40 + (self.rng >> 32) as usize % 260;
        self.slots[slot] = vec![self.rng as u8; len];
    }
}

struct Flood {
    rss_before: u64,
    rss_peak: u64,
    /// Heap bytes allocated and not freed over the flood (the cache, plus
    /// the neighbours' drift and a few buffers: a few KiB).
    heap_growth: i64,
    stats: glory_hole::dns::cache::CacheStats,
}

/// A million distinct names into a fresh cache of `memory_mib`, two
/// neighbour allocations churned per name, as a forwarded query makes.
fn flood(memory_mib: u32, neighbours: &mut Neighbours) -> (Cache, Flood) {
    const NAMES: u64 = 1_000_000;
    let before = rss_kib();
    let heap_before = HEAP_BYTES.load(Relaxed);
    let cache = Cache::new(&CacheConfig {
        memory_mib,
        ..CacheConfig::default()
    });
    // A realistic answer: two addresses, 79 bytes. Each name is a new one,
    // written into the same buffers.
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
        neighbours.churn();
        cache.insert(&key, &response);
        neighbours.churn();
        if n.is_multiple_of(50_000) {
            peak = peak.max(rss_kib());
        }
    }
    peak = peak.max(rss_kib());
    let heap_growth = HEAP_BYTES.load(Relaxed) - heap_before;
    let stats = cache.stats();
    assert!(stats.bytes <= stats.capacity_bytes, "{stats:?}");
    assert!(stats.evictions > 0);
    println!(
        "cache_memory: memory_mib={memory_mib} names={NAMES} entries={} cache_bytes={} \
         heap_growth={heap_growth} evictions={} rss_before={before}KiB rss_peak={peak}KiB \
         growth={}KiB ({:.3} x memory_mib)",
        stats.entries,
        stats.bytes,
        stats.evictions,
        peak - before,
        (peak - before) as f64 / f64::from(memory_mib * 1024)
    );
    let f = Flood {
        rss_before: before,
        rss_peak: peak,
        heap_growth,
        stats,
    };
    (cache, f)
}

#[test]
fn rss_grows_by_memory_mib_through_a_million_name_flood() {
    let _turn = one_at_a_time();
    // As the server's `main` does: freed pages go back at once.
    glory_hole::allocator::tune();
    let mut neighbours = Neighbours::new();
    // Two sizes, both kept alive: the second's growth comes on top of the
    // first's, and the growth per MiB of budget is the slope between them.
    let (_small, a) = flood(4, &mut neighbours);
    let (_large, b) = flood(24, &mut neighbours);
    for (mib, f) in [(4u64, &a), (24, &b)] {
        let growth = f.rss_peak - f.rss_before;
        let budget_kib = mib * 1024;
        // The cache fills its budget, so RSS must grow by about that much:
        // a test that grew by nothing would prove nothing.
        assert!(
            f.stats.bytes > f.stats.capacity_bytes * 95 / 100,
            "{:?}",
            f.stats
        );
        assert!(
            growth >= budget_kib * 9 / 10,
            "RSS grew only {growth} KiB for a {mib} MiB cache"
        );
        // What the cache holds from the allocator is what it charges: the
        // heap grew by its charged bytes, give or take the Cache struct
        // (~10 KiB), the flood's own buffers and the neighbours' drift.
        let off = (f.heap_growth - f.stats.bytes as i64).abs();
        assert!(
            off <= 64 * 1024,
            "heap grew {} bytes, the cache charges {} ({:?})",
            f.heap_growth,
            f.stats.bytes,
            f.stats
        );
        // And RSS follows, within a few percent. Measured with mimalloc
        // v2: 1.007 x memory_mib at 24 MiB, 1.05 at 4 MiB (~200 KiB of
        // fixed cost: the allocator's partly used last page per size
        // class, its page headers). Slack: 3% plus 384 KiB, against those
        // fixed costs and the neighbours' pages drifting. (The earlier
        // one-block-per-answer layout measured 1.030 here, and failed the
        // check above: its heap was 7% under what it charged.)
        let bound = budget_kib * 103 / 100 + 384;
        assert!(
            growth <= bound,
            "RSS grew {growth} KiB, over {bound} KiB for a {mib} MiB cache ({:?})",
            f.stats
        );
    }
    let slope = (b.rss_peak - b.rss_before) as f64 / (24.0 * 1024.0);
    println!(
        "cache_memory: RSS growth per MiB of memory_mib: {:.3} (4 MiB) {slope:.3} (24 MiB)",
        (a.rss_peak - a.rss_before) as f64 / 4096.0,
    );
}

#[test]
fn cache_hits_do_not_allocate() {
    let _turn = one_at_a_time();
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
