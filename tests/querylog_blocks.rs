//! Rows in blocks whatever their times: crowded milliseconds and clocks
//! set back keep every row, merged into place among stored blocks (which
//! never overlap), and a damaged block costs only its own rows.

mod support;

use glory_hole::clock::now_ms;
use glory_hole::config::Dur;
use glory_hole::events::Source;
use glory_hole::querylog::{LogQuery, QueryLog};
use std::time::Duration;
use support::querylog::{config, event};

const HOUR: i64 = 3_600_000;

#[test]
fn rows_with_crowded_or_stepped_back_times_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(10_000);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    let t0 = now_ms() - 2 * HOUR;
    // More rows in one millisecond than the key has sequence numbers (256).
    for i in 0..1_000 {
        tx.send(event(
            t0,
            "10.0.0.1",
            &format!("a{i}.example"),
            Source::Cache,
        ))
        .unwrap();
    }
    // Half an hour on, then the clock is set back onto the crowded
    // millisecond: those rows land at their true time, next to the others.
    tx.send(event(
        t0 + HOUR / 2,
        "10.0.0.1",
        "later.example",
        Source::Cache,
    ))
    .unwrap();
    for i in 0..300 {
        tx.send(event(
            t0,
            "10.0.0.2",
            &format!("b{i}.example"),
            Source::Cache,
        ))
        .unwrap();
    }
    log.flush();
    assert_eq!(log.status().rows, 1_301);
    let page = log
        .search(&LogQuery {
            limit: 1000,
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(page.rows[0].domain, "later.example", "newest first");
    let b = log
        .search(&LogQuery {
            client: Some("10.0.0.2".into()),
            limit: 1000,
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(b.rows.len(), 300);
    assert!(b.rows.iter().all(|r| r.time_ms - t0 < 1_000), "near t0");
}

#[test]
fn rows_stepped_back_among_stored_blocks_are_merged_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(10_000);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    let t0 = now_ms() - 2 * HOUR;
    // Three stored blocks' worth around t0, one row an hour on, all written.
    for i in 0..3_000i64 {
        tx.send(event(
            t0 + i / 4,
            "10.0.0.1",
            &format!("a{i}.example"),
            Source::Cache,
        ))
        .unwrap();
    }
    tx.send(event(t0 + HOUR, "10.0.0.1", "later.example", Source::Cache))
        .unwrap();
    log.flush();
    // The clock is set back onto the stored rows: these land at their
    // true time, on keys the stored rows leave free.
    for i in 0..2_000i64 {
        tx.send(event(
            t0 + i / 8,
            "10.0.0.2",
            &format!("b{i}.example"),
            Source::Failed,
        ))
        .unwrap();
    }
    log.flush();
    assert_eq!(log.status().rows, 5_001);
    let all = support::querylog::every_row(&log);
    assert_eq!(all.len(), 5_001, "every row once");
    assert_eq!(all[0].domain, "later.example");
    assert!(
        all.windows(2).all(|w| w[0].time_ms >= w[1].time_ms),
        "newest first"
    );
    let b: Vec<_> = all.iter().filter(|r| r.client == "10.0.0.2").collect();
    assert_eq!(b.len(), 2_000);
    assert!(b.iter().all(|r| (r.time_ms - t0).abs() < 2_000), "near t0");
    let failed = log
        .search(&LogQuery {
            status: Some(Source::Failed),
            limit: 1000,
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(failed.rows.len(), 1000);
    assert!(failed.next_cursor.is_some());
    let c = rusqlite::Connection::open(dir.path().join("querylog.db")).unwrap();
    // Blocks never overlap, so key order of blocks is row order.
    let overlaps: i64 = c
        .query_row(
            "SELECT count(*) FROM query_blocks AS a JOIN query_blocks AS b
             ON b.id > a.id AND b.id <= a.last",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(overlaps, 0);
    assert_eq!(support::querylog::stored_rows(&c), 5_001);
}

#[test]
fn a_client_filter_finds_every_row_after_a_merge_within_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // One transaction for all of it: the merge deletes and rewrites blocks
    // written earlier in the same batch, whose side rows (which blocks
    // hold a client) the writer may not have stored yet.
    cfg.querylog.flush_interval = Dur(Duration::from_secs(600));
    let (tx, rx) = std::sync::mpsc::sync_channel(10_000);
    let log = QueryLog::open(&cfg, rx).unwrap();
    let t0 = now_ms() - 2 * HOUR;
    let clients = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    for i in 0..3_000i64 {
        let client = clients[i as usize % clients.len()];
        tx.send(event(
            t0 + i / 4,
            client,
            &format!("a{i}.example"),
            Source::Cache,
        ))
        .unwrap();
    }
    tx.send(event(t0 + HOUR, "10.0.0.1", "later.example", Source::Cache))
        .unwrap();
    // The clock set back onto the rows above, across several blocks.
    for i in 0..2_000i64 {
        tx.send(event(
            t0 + i * 3 / 8,
            "10.0.0.4",
            &format!("b{i}.example"),
            Source::Cache,
        ))
        .unwrap();
    }
    log.flush();
    for (client, n) in [
        ("10.0.0.1", 1_001),
        ("10.0.0.2", 1_000),
        ("10.0.0.3", 1_000),
        ("10.0.0.4", 2_000),
    ] {
        let q = LogQuery {
            client: Some(client.into()),
            limit: 1000,
            ..LogQuery::default()
        };
        let rows = support::querylog::pages(&log, q, usize::MAX);
        assert_eq!(rows.len(), n, "rows of {client}");
        assert!(rows.iter().all(|r| r.client == client), "only {client}");
    }
    let c = rusqlite::Connection::open(dir.path().join("querylog.db")).unwrap();
    let orphans: i64 = c
        .query_row(
            "SELECT count(*) FROM block_clients WHERE block NOT IN (SELECT id FROM query_blocks)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "no side row of a deleted block");
    assert_eq!(support::querylog::stored_rows(&c), 5_001);
}

#[test]
fn a_damaged_block_is_skipped_and_the_rest_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(10_000);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    let t0 = now_ms() - HOUR;
    for i in 0..3_000i64 {
        tx.send(event(t0 + i, "10.0.0.1", "x.example", Source::Cache))
            .unwrap();
    }
    log.flush();
    let c = rusqlite::Connection::open(dir.path().join("querylog.db")).unwrap();
    let (newest, rows): (i64, i64) = c
        .query_row(
            "SELECT id, rows FROM query_blocks ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // What a bad flash page might leave: a blob cut short.
    c.execute(
        "UPDATE query_blocks SET data = substr(data, 1, 20) WHERE id = ?1",
        [newest],
    )
    .unwrap();
    let page = log
        .search(&LogQuery {
            limit: 1000,
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(page.rows.len(), 1000);
    assert!(
        page.rows[0].time_ms < glory_hole::querylog::ms_of(newest),
        "rows of the damaged block are skipped"
    );
    let one = log
        .search(&LogQuery {
            client: Some("10.0.0.1".into()),
            limit: 1,
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(one.rows.len(), 1);
    assert!(rows > 0);
}
