//! The whole in-process cost of answering a cached query: `Engine::begin`
//! on raw query bytes — parse, client check, local zone, filter, cache hit,
//! EDNS echo, the per-client rate limit (`pipeline/cache_hit_answer`, 64
//! clients in turn; `..._no_rate_limit` without it) — plus the query event
//! handed to a draining channel. No
//! sockets. The config is the default one and the filter is empty
//! (`Filter::empty()`): no blocklists are loaded, so the number is the
//! pipeline's own; a lookup in the real lists is measured by
//! `benches/filter.rs` (`../shared/data/blocklists`).
//!
//! Run: `cargo bench --bench pipeline` (or `-- --quick`).

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use glory_hole::config::Config;
use glory_hole::dns::cache::CacheKey;
use glory_hole::dns::pipeline::{Engine, Step, Transport};
use glory_hole::dns::rate_limit::RateLimiter;
use glory_hole::events::EventSink;
use glory_hole::filter::Filter;
use glory_hole::wire::{Query, RCODE_NOERROR, ResponseWriter, TYPE_A};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn query(n: u32) -> Vec<u8> {
    glory_hole::testing::client::query(
        0x1234,
        &format!("www{n}.example.com"),
        TYPE_A,
        Some(1232),
        false,
    )
}

/// `rate_limit`: queries a second per client (0 = off), with a burst no
/// benchmark run empties, so every query pays for the bucket and none is
/// refused.
fn engine(rate_limit: u32) -> (Engine, std::thread::JoinHandle<()>) {
    let mut config = Config::default();
    config.dns.rate_limit = rate_limit;
    config.dns.rate_limit_burst = u32::MAX;
    let config = Arc::new(config);
    let filter = Arc::new(ArcSwap::from_pointee(Filter::empty()));
    let (events, rx) = EventSink::bounded(4096);
    // Stand-in for the query-log writer: drain the channel the way it
    // does, polling, so senders never have a sleeping receiver to wake.
    let drain = std::thread::spawn(move || {
        loop {
            while rx.try_recv().is_ok() {}
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    });
    (Engine::new(config, filter, events).unwrap(), drain)
}

fn cached_answer(c: &mut Criterion) {
    for (label, rate_limit) in [
        ("pipeline/cache_hit_answer", u32::MAX),
        ("pipeline/cache_hit_answer_no_rate_limit", 0),
    ] {
        let (engine, _drain) = engine(rate_limit);
        cache_hits(c, label, &engine);
    }
    parts(c);
}

/// Queries for 1000 names, each with an answer in `engine`'s cache.
fn cached_queries(engine: &Engine) -> Vec<Vec<u8>> {
    let queries: Vec<Vec<u8>> = (0..1000).map(query).collect();
    for raw in &queries {
        let q = Query::parse(raw).unwrap();
        let mut resp = Vec::new();
        let mut w = ResponseWriter::new(&mut resp, raw, &q, RCODE_NOERROR, false);
        w.record_at_qname(0, TYPE_A, 300, &[192, 0, 2, 1]);
        w.finish();
        engine.cache.insert(&CacheKey::from_query(&q), &resp);
    }
    queries
}

/// Cached answers to 64 clients in turn (so the rate limiter's table is
/// touched in many places), each checked to be a NOERROR answer.
fn cache_hits(c: &mut Criterion, label: &str, engine: &Engine) {
    let clients: Vec<SocketAddr> = (0..64)
        .map(|i| SocketAddr::from(([192, 168, 1, 20 + i], 40000)))
        .collect();
    let queries = cached_queries(engine);
    let mut out = Vec::with_capacity(4096);
    let mut i = 0usize;
    c.bench_function(label, |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            let client = clients[i % clients.len()];
            match engine.begin(black_box(&queries[i]), client, Transport::Udp, &mut out) {
                Step::Reply => {}
                _ => panic!("expected a cache hit"),
            }
            assert_eq!(out[3] & 0x0F, RCODE_NOERROR, "answered, not refused");
            black_box(out.len());
        })
    });
}

/// The parts, to see where the time goes.
fn parts(c: &mut Criterion) {
    let (engine, _drain) = engine(0);
    let queries = cached_queries(&engine);
    let mut out = Vec::with_capacity(4096);
    let f = Filter::empty();
    let ip: std::net::IpAddr = "192.168.1.20".parse().unwrap();
    let limiter = RateLimiter::default();
    c.bench_function("parts/rate_limit_admit", |b| {
        b.iter(|| black_box(limiter.admit(black_box(ip), u32::MAX, u32::MAX)))
    });
    c.bench_function("parts/filter_check_empty", |b| {
        b.iter(|| black_box(f.check(black_box("www1.example.com"), ip)))
    });
    c.bench_function("parts/query_parse", |b| {
        b.iter(|| black_box(Query::parse(black_box(&queries[1])).is_ok()))
    });
    let key = CacheKey::from_query(&Query::parse(&queries[1]).unwrap());
    c.bench_function("parts/cache_get", |b| {
        b.iter(|| {
            black_box(
                engine
                    .cache
                    .get(&key, 7, &queries[1][12..34], false, &mut out),
            )
        })
    });
    let ev = glory_hole::events::QueryEvent {
        time_ms: 0,
        client: ip,
        qname: heapless::String::try_from("www1.example.com").unwrap(),
        qtype: 1,
        rcode: 0,
        source: glory_hole::events::Source::Cache,
        upstream: u8::MAX,
        latency_us: 1,
        reason: Default::default(),
    };
    c.bench_function("parts/event_emit", |b| {
        b.iter(|| engine.events().emit(black_box(ev.clone())))
    });
}

criterion_group!(benches, cached_answer);
criterion_main!(benches);
