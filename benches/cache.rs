//! Cost of the DNS answer cache's hot path: a hit (copy the stored answer,
//! patch ID, question and TTLs) and an insert into a full cache (prepare,
//! store, evict).
//!
//! Run: `cargo bench --bench cache` (or `-- --quick` for a short run).

use criterion::{Criterion, criterion_group, criterion_main};
use glory_hole::config::CacheConfig;
use glory_hole::dns::cache::{Cache, CacheKey, Lookup};
use glory_hole::wire::{CLASS_IN, Query, RCODE_NOERROR, ResponseWriter, TYPE_A};
use std::hint::black_box;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `h0000000.bench.example` with digits `n`: every name the same length.
fn query(n: u64) -> Vec<u8> {
    let mut b = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    b.push(8);
    b.extend_from_slice(format!("h{n:07}").as_bytes());
    b.extend_from_slice(b"\x05bench\x07example\x00");
    b.extend_from_slice(&TYPE_A.to_be_bytes());
    b.extend_from_slice(&CLASS_IN.to_be_bytes());
    b
}

/// A typical A answer: one address, 56 bytes on the wire.
fn answer(raw: &[u8]) -> Vec<u8> {
    let q = Query::parse(raw).unwrap();
    let mut out = Vec::new();
    let mut w = ResponseWriter::new(&mut out, raw, &q, RCODE_NOERROR, false);
    w.record_at_qname(0, TYPE_A, 300, &[192, 0, 2, 1]);
    w.finish();
    out
}

fn key(raw: &[u8]) -> CacheKey {
    CacheKey::from_query(&Query::parse(raw).unwrap())
}

/// Rewrites the name's seven digits in `name` (a wire name or a question,
/// both starting with the `h0000000` label) to `n`.
fn set_digits(name: &mut [u8], mut n: u64) {
    for i in (0..7).rev() {
        name[2 + i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn cache_hit(c: &mut Criterion) {
    let cache = Cache::new(&CacheConfig::default());
    // A resident population, so lookups walk a realistically full table.
    const RESIDENT: u64 = 50_000;
    for n in 0..RESIDENT {
        let raw = query(n);
        cache.insert(&key(&raw), &answer(&raw));
    }
    println!(
        "answer bytes: {}, resident entries: {}, cache bytes: {}",
        answer(&query(0)).len(),
        cache.stats().entries,
        cache.stats().bytes
    );
    let mut out = Vec::with_capacity(512);
    let raw = query(0);
    let mut k = key(&raw);
    let mut q = raw[12..].to_vec();

    c.bench_function("cache get hit, same name", |b| {
        b.iter(|| {
            let l = cache.get(black_box(&k), 0xBEEF, black_box(&q), false, &mut out);
            debug_assert_eq!(l, Lookup::Hit);
            black_box(&out);
        })
    });

    // Each lookup a different resident name, as a real query stream is: the
    // key is fresh from the packet, the entry is cold in the CPU caches.
    let mut n = 0u64;
    c.bench_function("cache get hit, 50k names round-robin", |b| {
        b.iter(|| {
            n = (n + 7919) % RESIDENT;
            set_digits(&mut k.name, n);
            set_digits(&mut q, n);
            let l = cache.get(black_box(&k), 0xBEEF, black_box(&q), false, &mut out);
            debug_assert_eq!(l, Lookup::Hit);
            black_box(&out);
        })
    });

    let s = cache.stats();
    println!("hit benches: {} hits, {} misses", s.hits, s.misses);
    assert_eq!(s.misses, 0, "every lookup above must be a hit");

    let raw = query(9_999_999);
    let (miss_key, miss_q) = (key(&raw), raw[12..].to_vec());
    c.bench_function("cache get miss", |b| {
        b.iter(|| black_box(cache.get(black_box(&miss_key), 1, &miss_q, false, &mut out)))
    });
}

fn cache_insert(c: &mut Criterion) {
    // Small cache, so every insert also pays for an eviction.
    let cache = Cache::new(&CacheConfig {
        memory_mib: 2,
        ..CacheConfig::default()
    });
    let raw = query(0);
    let mut k = key(&raw);
    let mut response = answer(&raw);
    let mut n = 0u64;
    c.bench_function("cache insert into a full cache (with eviction)", |b| {
        b.iter(|| {
            // A new name per insert.
            n = (n + 1) % 10_000_000;
            set_digits(&mut k.name, n);
            set_digits(&mut response[12..], n);
            cache.insert(black_box(&k), black_box(&response));
        })
    });
    let s = cache.stats();
    println!(
        "after insert bench: entries {} bytes {} / {} evictions {}",
        s.entries, s.bytes, s.capacity_bytes, s.evictions
    );
}

criterion_group!(benches, cache_hit, cache_insert);
criterion_main!(benches);
