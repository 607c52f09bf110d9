//! The writer's RAM under a flood of distinct names, as the allocator
//! counts it, with the top domains still right.
//!
//! Its own test binary: the counting allocator sees the whole process, so
//! no other test may allocate beside it. SQLite's own heap (C malloc, its
//! page cache capped by `cache_size`) is not in the count, as it is not in
//! the bound.

mod support;

use glory_hole::clock::now_ms;
use glory_hole::events::Source;
use glory_hole::querylog::{LogQuery, QueryLog};
use support::heap::{heap_bytes, peak_heap_bytes, reset_peak};
use support::querylog::{config, event};

const HOUR: i64 = 3_600_000;

#[global_allocator]
static GLOBAL: support::heap::Counting = support::heap::Counting;

#[test]
fn a_flood_of_distinct_names_keeps_the_writer_ram_fixed_and_the_top_domains_right() {
    let dir = tempfile::tempdir().unwrap();
    // One closed-or-open hour: 20 heavy names with known, well separated
    // counts (the first 5 blocked) among 40 000 names seen once each.
    let base = (now_ms() / HOUR - 3) * HOUR;
    let heavy: Vec<(String, u64)> = (0..20u64)
        .map(|k| (format!("heavy{k}.example"), 2_000 + (19 - k) * 200))
        .collect();
    let mut names: Vec<(String, bool)> = Vec::new();
    for (k, (name, n)) in heavy.iter().enumerate() {
        names.extend((0..*n).map(|_| (name.clone(), k < 5)));
    }
    names.extend((0..40_000).map(|i| (format!("flood{i}.example"), false)));
    // A fixed shuffle (xorshift), so heavy and flood names interleave.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..names.len()).rev() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let j = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % (i as u64 + 1)) as usize;
        names.swap(i, j);
    }
    let total = names.len() as u64;
    // The test's own data and channel are in place: from here the heap
    // grows by what the query log holds.
    let (tx, rx) = std::sync::mpsc::sync_channel(1_000);
    let before = heap_bytes();
    reset_peak();
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    for (i, (name, blocked)) in names.iter().enumerate() {
        let t = base + (i as i64 * 1_800_000) / total as i64;
        let source = if *blocked {
            Source::Blocked
        } else {
            Source::Cache
        };
        tx.send(event(t, "10.0.0.1", name, source)).unwrap();
    }
    log.flush();
    let peak = peak_heap_bytes() - before;
    println!(
        "querylog_ram: heap peak {peak} bytes above the start; the writer estimates {}",
        log.status().writer_ram_bytes
    );

    let status = log.status();
    assert_eq!(status.rows, total);
    // Counted by the allocator, not the writer's estimate: everything the
    // query log held on the Rust heap at its peak (caches, summaries, the
    // open block, the live view's ring), transient buffers included.
    // A name cache that grew with the names, one entry per flood name,
    // would alone be about 3 MiB.
    assert!(
        peak > 0 && peak <= 3 << 20,
        "the query log's heap peaked {peak} bytes above where it started"
    );
    assert!(
        status.writer_ram_bytes > 0 && status.writer_ram_bytes <= 3 << 20,
        "the writer's own estimate agrees: {} bytes",
        status.writer_ram_bytes
    );
    let top = log.top_domains(base, base + HOUR, 20, false).unwrap();
    let want: Vec<&str> = heavy.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        top.items
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        want,
        "the heavy hitters, in order"
    );
    // Exact, though the hour held more names than the writer counts in
    // RAM (the reader counts such an hour's rows).
    for ((name, got), (_, real)) in top.items.iter().zip(&heavy) {
        assert_eq!(got, real, "{name}: counted {got}, sent {real}");
    }
    assert!(!top.estimated);
    let blocked = log.top_domains(base, base + HOUR, 5, true).unwrap();
    assert_eq!(
        blocked
            .items
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        want[..5].to_vec()
    );
    // Every row is stored and searchable, flood names included: the
    // pages walk back until the one row is found.
    let q = LogQuery {
        domain: Some("flood39999.".into()),
        ..LogQuery::default()
    };
    let found = support::querylog::pages(&log, q, 100);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].domain, "flood39999.example");
}
