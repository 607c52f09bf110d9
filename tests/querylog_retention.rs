//! Retention by age and by size: old rows go with their roll-ups, the
//! newest stay, the file ends under its cap and the freed pages go back.

mod support;

use glory_hole::clock::now_ms;
use glory_hole::events::Source;
use glory_hole::querylog::{LogQuery, QueryLog};
use support::querylog::{config, event};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

#[test]
fn retention_by_age_removes_old_rows_and_their_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.querylog.retention_days = 30;
    let (tx, rx) = std::sync::mpsc::sync_channel(20_000);
    let log = QueryLog::open(&cfg, rx).unwrap();
    let now = now_ms();
    for i in 0..12_000i64 {
        let t = if i < 11_000 {
            now - 40 * DAY + i * 1000
        } else {
            now - HOUR + i
        };
        tx.send(event(
            t,
            "10.0.0.1",
            &format!("d{}.example", i % 500),
            Source::Cache,
        ))
        .unwrap();
    }
    log.flush();
    assert_eq!(log.status().rows, 12_000);
    let report = log.run_retention();
    assert_eq!(report.deleted_rows, 11_000);
    assert!(
        report.steps >= 3,
        "deleted in several short steps: {report:?}"
    );
    assert_eq!(log.status().rows, 1_000);
    assert_eq!(
        log.summary(now - 41 * DAY, now - 35 * DAY).unwrap().total,
        0
    );
    assert!(
        log.top_domains(now - 41 * DAY, now - 35 * DAY, 5, false)
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(log.summary(now - 2 * HOUR, now + 1).unwrap().total, 1_000);
    let page = log
        .search(&LogQuery {
            limit: 1000,
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(page.rows.len(), 1000);
    assert!(page.rows.iter().all(|r| r.time_ms > now - 2 * HOUR));
    // An older build (after a rollback) takes the oldest row of `queries`
    // for the oldest stored row: the day marker moved on with retention.
    let c = rusqlite::Connection::open(dir.path().join("querylog.db")).unwrap();
    let (marker, block): (i64, i64) = c
        .query_row(
            "SELECT (SELECT min(id) FROM queries), (SELECT min(id) FROM query_blocks)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(marker <= block, "marker {marker}, oldest block {block}");
    assert!(glory_hole::querylog::ms_of(marker) > now - 2 * DAY);
}

#[test]
fn retention_by_size_keeps_the_file_under_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.querylog.max_size_mib = 1;
    let (tx, rx) = std::sync::mpsc::sync_channel(20_000);
    let log = QueryLog::open(&cfg, rx).unwrap();
    let now = now_ms();
    // A busy household's pattern: 240 000 queries over 17 hours, 20
    // devices, 2000 names of which each hour brings new ones (rows stored
    // in blocks take about 10 bytes: fewer would fit under the cap).
    let n = 240_000i64;
    for i in 0..n {
        let name = format!("host{}.example", i / 120 % 2000);
        tx.send(event(
            now - (n - i) * 250,
            &format!("10.0.0.{}", i % 20),
            &name,
            Source::Upstream,
        ))
        .unwrap();
    }
    log.flush();
    let db = dir.path().join("querylog.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    let used = |c: &rusqlite::Connection| -> i64 {
        let pc: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        let fl: i64 = c
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        let ps: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        (pc - fl) * ps
    };
    assert!(used(&c) > 1 << 20, "the test must start over the cap");
    let report = log.run_retention();
    assert!(report.deleted_rows > 0);
    if used(&c) > 1 << 20 {
        let mut st = c
            .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
            .unwrap();
        let v: Vec<(String, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let n: i64 = support::querylog::stored_rows(&c);
        let d: i64 = c
            .query_row("SELECT count(*) FROM domains", [], |r| r.get(0))
            .unwrap();
        panic!(
            "used {} bytes: {v:?} rows {n} domains {d} {report:?}",
            used(&c)
        );
    }
    let free: i64 = c
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    assert_eq!(free, 0, "incremental vacuum returned the freed pages");
    let page = log
        .search(&LogQuery {
            limit: 1,
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(
        page.rows[0].domain,
        format!("host{}.example", (n - 1) / 120 % 2000),
        "the newest rows stay"
    );
    assert!(
        log.status().rows >= 5_000,
        "kept what fits: {}",
        log.status().rows
    );
    let left: i64 = support::querylog::stored_rows(&c);
    assert_eq!(log.status().rows, left as u64);
}
