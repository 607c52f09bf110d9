//! The indexes for the questions blocks alone answer only by decoding: a
//! domain over weeks (`domain_days`) and the slowest domains and upstreams
//! (`hour_slow_domains`, `hour_upstreams`). Expectations come from the
//! events sent, never from the code under test.

mod support;

use glory_hole::clock::now_ms;
use glory_hole::events::{QueryEvent, Source};
use glory_hole::querylog::{LogQuery, QueryLog, SLOW_PER_HOUR};
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::mpsc::{SyncSender, sync_channel};
use support::querylog::{config, event, pages};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn open(dir: &std::path::Path) -> (std::sync::Arc<QueryLog>, SyncSender<QueryEvent>) {
    let (tx, rx) = sync_channel(100_000);
    (QueryLog::open(&config(dir), rx).unwrap(), tx)
}

/// 30 days of a busy household: one query every 20 s over 50 names, and
/// `rare` names at a few times. Returns (time, name) of every event.
fn thirty_days(tx: &SyncSender<QueryEvent>, now: i64, rare: &[(i64, &str)]) -> Vec<(i64, String)> {
    let mut sent = Vec::new();
    let mut t = now - 30 * DAY;
    let mut i = 0;
    while t < now - 1000 {
        let name = format!("d{}.example", i % 50);
        sent.push((t, name));
        t += 20_000;
        i += 1;
    }
    for &(t, name) in rare {
        sent.push((t, name.to_string()));
    }
    sent.sort();
    for (t, name) in &sent {
        tx.send(event(*t, "10.0.0.9", name, Source::Upstream))
            .unwrap();
    }
    sent
}

fn times(rows: &[glory_hole::querylog::LogRow]) -> Vec<(i64, String)> {
    rows.iter().map(|r| (r.time_ms, r.domain.clone())).collect()
}

/// The sent events whose name contains `needle`, newest first.
fn expected(sent: &[(i64, String)], needle: &str, n: usize) -> Vec<(i64, String)> {
    sent.iter()
        .rev()
        .filter(|(_, name)| name.contains(needle))
        .take(n)
        .cloned()
        .collect()
}

#[test]
fn a_rare_domain_over_thirty_days_comes_back_on_its_first_page() {
    let dir = tempfile::tempdir().unwrap();
    let (log, tx) = open(dir.path());
    let now = now_ms();
    let rare = [
        (now - 29 * DAY, "rare.tracker.example"),
        (now - 17 * DAY - 5 * HOUR, "rare.tracker.example"),
        (now - 9 * DAY, "ads.tracker.example"),
        (now - 2 * DAY - 7 * HOUR, "rare.tracker.example"),
        (now - 3 * HOUR, "ads.tracker.example"),
    ];
    let sent = thirty_days(&tx, now, &rare);
    log.flush();
    assert!(
        sent.len() > 100_000,
        "more rows than a page examines unindexed"
    );
    for (needle, want_rows) in [("rare.tracker", 3), ("tracker", 5)] {
        let page = log
            .search(&LogQuery {
                domain: Some(needle.into()),
                from_ms: Some(now - 30 * DAY),
                limit: 100,
                ..LogQuery::default()
            })
            .unwrap();
        assert_eq!(
            times(&page.rows),
            expected(&sent, needle, 100),
            "'{needle}': every row on the first page"
        );
        assert_eq!(page.rows.len(), want_rows);
        assert_eq!(
            page.next_cursor, None,
            "'{needle}': no empty pages after it"
        );
    }
    // A frequent name: its newest rows, and the pages after them agree
    // with what was sent.
    let rows = pages(
        &log,
        LogQuery {
            domain: Some("d7.example".into()),
            limit: 500,
            ..LogQuery::default()
        },
        3,
    );
    let want = expected(&sent, "d7.example", 1500);
    let got = times(&rows);
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "first difference at {:?}",
        got.iter().zip(&want).position(|(a, b)| a != b)
    );
    // A name never sent.
    let page = log
        .search(&LogQuery {
            domain: Some("nowhere".into()),
            ..LogQuery::default()
        })
        .unwrap();
    assert!(page.rows.is_empty() && page.next_cursor.is_none());
    // One index row per name and day, not per query or per block.
    drop(log);
    let c = Connection::open(dir.path().join("querylog.db")).unwrap();
    let index_rows: i64 = c
        .query_row("SELECT count(*) FROM domain_days", [], |r| r.get(0))
        .unwrap();
    assert!(
        (30 * 50..=31 * 50 + 5).contains(&index_rows),
        "{index_rows} rows for 50 names over 31 days and 5 rare queries"
    );
}

#[test]
fn blocks_the_index_does_not_cover_are_still_searched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("querylog.db");
    let now = now_ms();
    let rare = [
        (now - 20 * DAY, "rare.tracker.example"),
        (now - 10 * DAY, "rare.tracker.example"),
    ];
    let sent = {
        let (log, tx) = open(dir.path());
        let sent = thirty_days(&tx, now - 5 * DAY, &rare);
        log.flush();
        sent
    };
    // As version 4 left it: no index tables (nor version 6's), no coverage in meta.
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP TABLE domain_days; DROP TABLE hour_upstreams; DROP TABLE hour_slow_domains;
             DROP TABLE hour_top_cutoffs; DROP TABLE day_top_cutoffs;
             DELETE FROM schema_migrations WHERE version >= 5;
             DELETE FROM meta WHERE key LIKE 'domain_index_%' OR key = 'domain_counts_from';",
        )
        .unwrap();
    }
    let (log, tx) = open(dir.path());
    // Newer rows go through the index, the older ones are walked.
    let newer = [(now - 2 * DAY, "rare.tracker.example")];
    tx.send(event(newer[0].0, "10.0.0.9", newer[0].1, Source::Upstream))
        .unwrap();
    log.flush();
    let mut all = sent.clone();
    all.push((newer[0].0, newer[0].1.to_string()));
    let q = LogQuery {
        domain: Some("rare.tracker".into()),
        limit: 100,
        ..LogQuery::default()
    };
    assert_eq!(
        times(&pages(&log, q.clone(), 100)),
        expected(&all, "rare.tracker", 100)
    );
    drop(log);
    // A block an older build wrote after a rollback: in the table, not in
    // the index, and newer than the newest block the index saw.
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "DELETE FROM domain_days WHERE day = (SELECT max(day) FROM domain_days);
             UPDATE meta SET value = value - 1 WHERE key = 'domain_index_last';",
        )
        .unwrap();
    }
    let (log, _tx) = open(dir.path());
    assert_eq!(
        times(&pages(&log, q, 100)),
        expected(&all, "rare.tracker", 100)
    );
}

#[test]
fn slowest_domains_and_upstreams_match_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let hour0 = (now_ms() / HOUR - 3) * HOUR;
    let mut rng = glory_hole::testing::Rng(7);
    let mut sent: Vec<QueryEvent> = Vec::new();
    // Three hours, more names than an hour's list keeps, latencies all
    // distinct, half of it sent before a restart.
    for half in 0..2 {
        let (log, tx) = open(dir.path());
        for h in 0..3 {
            for i in 0..400i64 {
                let mut e = event(
                    hour0 + h * HOUR + half * 1_800_000 + i * 4000,
                    "10.0.0.2",
                    &format!("n{}.example", rng.next_u64() % 200),
                    Source::Upstream,
                );
                e.upstream = (rng.next_u64() % 3) as u8;
                e.latency_us = (sent.len() as u32 * 7919) % 2_400 * 1000 + sent.len() as u32 % 1000;
                tx.send(e.clone()).unwrap();
                sent.push(e);
            }
        }
        log.flush();
    }
    let (log, _tx) = open(dir.path());
    for (from, to) in [
        (hour0, hour0 + 3 * HOUR),
        (hour0 + HOUR, hour0 + 2 * HOUR),
        (hour0, hour0 + HOUR),
    ] {
        let in_range = || sent.iter().filter(|e| (from..to).contains(&e.time_ms));
        let mut max: HashMap<String, u32> = HashMap::new();
        for e in in_range() {
            let m = max.entry(e.qname.to_string()).or_default();
            *m = (*m).max(e.latency_us);
        }
        let mut want: Vec<(String, u32)> = max.into_iter().collect();
        want.sort_by_key(|w| std::cmp::Reverse(w.1));
        want.truncate(SLOW_PER_HOUR);
        assert_eq!(
            log.slowest_domains(from, to, SLOW_PER_HOUR).unwrap(),
            want,
            "{from}..{to}"
        );
        assert_eq!(log.slowest_domains(from, to, 5).unwrap(), want[..5]);
        let got = log.upstream_latency(from, to).unwrap();
        for u in 0..3u8 {
            let lat: Vec<u32> = in_range()
                .filter(|e| e.upstream == u)
                .map(|e| e.latency_us)
                .collect();
            let g = got.iter().find(|g| g.upstream == u).expect("each upstream");
            assert_eq!(g.answers, lat.len() as u64);
            assert_eq!(g.max_us, *lat.iter().max().unwrap());
            let avg = lat.iter().map(|&l| f64::from(l)).sum::<f64>() / lat.len() as f64;
            assert!((g.avg_us - avg).abs() < 1e-6, "{} vs {avg}", g.avg_us);
        }
        assert_eq!(got.len(), 3);
    }
}

#[test]
fn retention_takes_the_index_rows_with_their_days() {
    let dir = tempfile::tempdir().unwrap();
    let (log, tx) = open(dir.path());
    let now = now_ms();
    let rare = [
        (now - 25 * DAY, "rare.tracker.example"),
        (now - 3 * DAY, "rare.tracker.example"),
    ];
    let sent = thirty_days(&tx, now, &rare);
    log.flush();
    let mut cfg = config(dir.path()).querylog;
    cfg.retention_days = 10;
    log.set_config(&cfg);
    log.run_retention();
    let kept: Vec<(i64, String)> = sent
        .iter()
        .filter(|(t, _)| *t >= now - 11 * DAY)
        .cloned()
        .collect();
    let page = log
        .search(&LogQuery {
            domain: Some("rare.tracker".into()),
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(times(&page.rows), expected(&kept, "rare.tracker", 100));
    drop(log);
    let c = Connection::open(dir.path().join("querylog.db")).unwrap();
    let (oldest_day, oldest_block): (i64, i64) = c
        .query_row(
            "SELECT (SELECT min(day) FROM domain_days), (SELECT min(id) FROM query_blocks)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let block_day = glory_hole::querylog::ms_of(oldest_block).div_euclid(DAY);
    assert_eq!(oldest_day, block_day, "no index rows older than the rows");
}
