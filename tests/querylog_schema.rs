//! Migrations from empty and from every earlier version; a newer database
//! is left alone when it must be; a damaged file is moved aside.

mod support;

use glory_hole::clock::now_ms;
use glory_hole::events::Source;
use glory_hole::querylog::{LogQuery, QueryLog, latest_version, migrate_to};
use rusqlite::Connection;
use std::path::Path;
use support::querylog::{config, event};

fn integrity(path: &Path) -> String {
    let c = Connection::open(path).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn an_empty_directory_gets_the_latest_schema_with_flash_friendly_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = std::sync::mpsc::sync_channel(1);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    assert_eq!(log.status().schema_version, latest_version());
    drop(log);
    let c = Connection::open(dir.path().join("querylog.db")).unwrap();
    let versions: Vec<u32> = c
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(versions, (1..=latest_version()).collect::<Vec<_>>());
    let auto_vacuum: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
    assert_eq!(auto_vacuum, 2, "incremental");
    let page_size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    assert_eq!(
        page_size, 1024,
        "small pages: a flush rewrites less (docs/querylog.md)"
    );
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// A database as version `v` left it, holding one query.
fn database_at_version(path: &Path, v: u32) {
    let c = Connection::open(path).unwrap();
    c.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;")
        .unwrap();
    migrate_to(&c, path, v).unwrap();
    // Version 1's tables exist in every version: write as version 1 did.
    let ms = now_ms() - 3_600_000;
    let key = (ms - glory_hole::querylog::EPOCH_MS) << glory_hole::querylog::SEQ_BITS;
    c.execute_batch(&format!(
        "INSERT INTO domains (id, name) VALUES (1, 'old.example.org');
         INSERT INTO clients (id, addr) VALUES (1, '10.0.0.1');
         INSERT INTO queries (id, domain, client, qtype, rcode, status, latency_us)
             VALUES ({key}, 1, 1, 1, 0, 0, 50);
         INSERT INTO hour_counts VALUES ({h}, 1, 0, 0, 0, 0, 0, 0, 50);
         INSERT INTO minute_counts VALUES ({m}, 1, 0, 0, 0, 0, 0, 0, 50);
         INSERT INTO hour_clients VALUES ({h}, 1, 1, 0);
         INSERT INTO hour_domains VALUES (0, {h}, 1, 1);
         UPDATE meta SET value = 1 WHERE key = 'rows';",
        h = ms / 3_600_000,
        m = ms / 60_000
    ))
    .unwrap();
}

#[test]
fn every_earlier_version_upgrades_and_keeps_its_rows() {
    for v in 1..latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("querylog.db");
        database_at_version(&path, v);
        let (tx, rx) = std::sync::mpsc::sync_channel(10);
        let log = QueryLog::open(&config(dir.path()), rx).unwrap();
        assert_eq!(
            log.status().schema_version,
            latest_version(),
            "from version {v}"
        );
        assert_eq!(log.status().rows, 1);
        tx.send(event(
            now_ms(),
            "10.0.0.2",
            "new.example.org",
            Source::Cache,
        ))
        .unwrap();
        log.flush();
        let rows = log.search(&LogQuery::default()).unwrap().rows;
        let names: Vec<&str> = rows.iter().map(|r| r.domain.as_str()).collect();
        assert_eq!(
            names,
            ["new.example.org", "old.example.org"],
            "from version {v}"
        );
        let top = log
            .top_domains(now_ms() - 7_200_000, now_ms() + 1, 5, false)
            .unwrap()
            .items;
        assert!(
            top.contains(&("old.example.org".to_string(), 1)),
            "from version {v}: {top:?}"
        );
        // Retention after the upgrade still forgets names correctly.
        let mut q = config(dir.path()).querylog;
        q.retention_days = 1;
        log.set_config(&q);
        log.run_retention();
        assert_eq!(
            log.status().rows,
            2,
            "from version {v}: nothing is a day old"
        );
        drop(log);
        assert_eq!(integrity(&path), "ok");
    }
}

#[test]
fn a_newer_additive_database_still_opens() {
    // The rule in migrations/README.md: a rolled-back firmware keeps logging.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("querylog.db");
    database_at_version(&path, latest_version());
    let c = Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE from_the_future (x INTEGER);
         INSERT INTO schema_migrations VALUES (99, '0099_from_the_future', 0);",
    )
    .unwrap();
    drop(c);
    let (tx, rx) = std::sync::mpsc::sync_channel(10);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    tx.send(event(
        now_ms(),
        "10.0.0.2",
        "still.example.org",
        Source::Cache,
    ))
    .unwrap();
    log.flush();
    assert_eq!(log.status().rows, 2);
}

#[test]
fn a_database_a_newer_build_marked_incompatible_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("querylog.db");
    database_at_version(&path, latest_version());
    let c = Connection::open(&path).unwrap();
    c.execute_batch(
        "INSERT INTO schema_migrations VALUES (99, '0099_incompatible', 0);
         INSERT INTO meta VALUES ('min_reader_version', 99);
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .unwrap();
    drop(c);
    let before = std::fs::read(&path).unwrap();
    let (_tx, rx) = std::sync::mpsc::sync_channel(10);
    let err = match QueryLog::open(&config(dir.path()), rx) {
        Ok(_) => panic!("a database needing version 99 must be refused"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("newer glory-hole") && err.contains("99"),
        "{err}"
    );
    assert!(
        err.contains(&path.display().to_string()),
        "names the file: {err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "not modified");
}

#[test]
fn a_damaged_file_is_moved_aside_and_a_new_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("querylog.db");
    let garbage = b"this is not an SQLite database, it is what a bad SD card returns\n".repeat(200);
    std::fs::write(&path, &garbage).unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(10);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    let warning = log.status().warning.unwrap_or_default();
    assert!(
        warning.contains("damaged") && warning.contains("moved to"),
        "{warning}"
    );
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage, "kept as it was");
    tx.send(event(
        now_ms(),
        "10.0.0.2",
        "fresh.example.org",
        Source::Cache,
    ))
    .unwrap();
    log.flush();
    assert_eq!(log.search(&LogQuery::default()).unwrap().rows.len(), 1);
    drop(log);
    assert_eq!(integrity(&path), "ok");
}

#[test]
fn rows_of_a_version_3_database_move_into_blocks_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("querylog.db");
    let c = Connection::open(&path).unwrap();
    c.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;")
        .unwrap();
    migrate_to(&c, &path, 3).unwrap();
    // More rows than one move step takes, as a version-3 build wrote them:
    // every field, NULLs included, two keys in one millisecond.
    let base = now_ms() - 3_600_000;
    let n = 5_000i64;
    let tx = c.unchecked_transaction().unwrap();
    tx.execute_batch(
        "INSERT INTO domains (id, name) VALUES (1, 'a.example'), (2, 'ads.example');
         INSERT INTO clients (id, addr) VALUES (1, '10.0.0.1'), (2, 'fd00::7');",
    )
    .unwrap();
    let mut expected = Vec::new();
    for i in 0..n {
        let ms = base + i / 2;
        let key = glory_hole::querylog::key_of(ms) + i % 2;
        let blocked = i % 7 == 0;
        let status = if blocked {
            Source::Blocked
        } else {
            [Source::Cache, Source::Upstream, Source::Failed][(i % 3) as usize]
        };
        let upstream = (status == Source::Upstream).then_some((i % 2) as u8);
        let reason = blocked.then_some(glory_hole::querylog::RuleRef {
            kind: 1,
            id: (i % 40_000) as u32,
            cname_depth: (i % 3) as u8,
        });
        let (domain, client) = (1 + i64::from(blocked), 1 + i % 2);
        tx.execute(
            "INSERT INTO queries (id, domain, client, qtype, rcode, status, upstream, latency_us, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                key,
                domain,
                client,
                [1, 28, 16, 65535][(i % 4) as usize],
                if blocked { 3 } else { 0 },
                status as u8,
                upstream,
                i * 1000,
                reason.map(|r| (i64::from(r.id) << 16) | (i64::from(r.kind) << 8) | i64::from(r.cname_depth)),
            ],
        )
        .unwrap();
        expected.push(glory_hole::querylog::LogRow {
            time_ms: ms,
            client: ["10.0.0.1", "fd00::7"][(client - 1) as usize].to_string(),
            domain: ["a.example", "ads.example"][(domain - 1) as usize].to_string(),
            qtype: [1, 28, 16, 65535][(i % 4) as usize],
            rcode: if blocked { 3 } else { 0 },
            status,
            upstream,
            latency_us: (i * 1000) as u32,
            reason,
        });
    }
    tx.execute("UPDATE meta SET value = ?1 WHERE key = 'rows'", [n])
        .unwrap();
    tx.commit().unwrap();
    drop(c);

    let (_tx, rx) = std::sync::mpsc::sync_channel(10);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    log.flush();
    expected.reverse();
    let got = support::querylog::every_row(&log);
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "every row as it was, newest first");
    assert_eq!(log.status().rows, n as u64);
    // The side tables came along: filtered pages find the moved rows.
    let blocked = log
        .search(&LogQuery {
            status: Some(Source::Blocked),
            limit: 1000,
            ..LogQuery::default()
        })
        .unwrap()
        .rows;
    assert_eq!(blocked.len(), (n as usize).div_ceil(7).min(1000));
    let v6 = log
        .search(&LogQuery {
            client: Some("fd00::7".into()),
            limit: 1000,
            ..LogQuery::default()
        })
        .unwrap()
        .rows;
    assert_eq!(v6.len(), 1000);
    assert!(v6.iter().all(|r| r.client == "fd00::7"));
    drop(log);
    let c = Connection::open(&path).unwrap();
    let left: i64 = c
        .query_row(
            "SELECT count(*) FROM queries WHERE NOT (client = 0 AND domain = 0)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "the old table holds no rows, and is still there");
    // What an older build takes for its oldest row (after a rollback) is
    // a day marker on the oldest day with blocks, so its retention keeps
    // the roll-ups and names those blocks need.
    let (oldest_marker, oldest_block): (i64, i64) = c
        .query_row(
            "SELECT (SELECT min(id) FROM queries), (SELECT min(id) FROM query_blocks)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let day = |k: i64| glory_hole::querylog::ms_of(k).div_euclid(86_400_000);
    assert_eq!(day(oldest_marker), day(oldest_block));
    assert!(oldest_marker <= oldest_block);
    drop(c);
    assert_eq!(integrity(&path), "ok");
}

#[test]
fn rows_an_older_build_wrote_after_a_rollback_join_the_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("querylog.db");
    let t0 = now_ms() - 3_600_000;
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(10_000);
        let log = QueryLog::open(&config(dir.path()), rx).unwrap();
        for i in 0..2_000i64 {
            tx.send(event(t0 + i, "10.0.0.1", "new.example", Source::Cache))
                .unwrap();
        }
        log.flush();
    }
    // An older build writes rows the way version 3 did: one on a key a
    // block already holds, some among the blocks' times, some later.
    let c = Connection::open(&path).unwrap();
    let key = |ms: i64| glory_hole::querylog::key_of(ms);
    // (The first block's own key holds the day marker; the second row's
    // key is a block row's.)
    let taken = key(t0 + 1);
    c.execute_batch(&format!(
        "INSERT INTO domains (name, last_seen) VALUES ('old.example', 0);
         INSERT INTO clients (addr) VALUES ('10.0.0.9');
         INSERT INTO queries (id, domain, client, qtype, rcode, status, latency_us)
         SELECT v.id, d.id, c.id, 1, 0, 5, 7 FROM
             (SELECT {taken} AS id UNION ALL SELECT {mid} UNION ALL SELECT {later}) AS v,
             domains AS d, clients AS c
         WHERE d.name = 'old.example' AND c.addr = '10.0.0.9';
         UPDATE meta SET value = value + 3 WHERE key = 'rows';",
        mid = key(t0 + 500) + 200,
        later = key(t0 + 600_000),
    ))
    .unwrap();
    drop(c);

    let (_tx, rx) = std::sync::mpsc::sync_channel(10);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    log.flush();
    assert_eq!(log.status().rows, 2_003);
    let all = support::querylog::every_row(&log);
    assert_eq!(all.len(), 2_003, "every row once");
    assert!(all.windows(2).all(|w| w[0].time_ms >= w[1].time_ms));
    assert_eq!(all[0].domain, "old.example", "the later row is the newest");
    let refused = log
        .search(&LogQuery {
            status: Some(Source::Refused),
            ..LogQuery::default()
        })
        .unwrap()
        .rows;
    assert_eq!(refused.len(), 3);
    assert!(refused.iter().all(|r| r.client == "10.0.0.9"));
    drop(log);
    let c = Connection::open(&path).unwrap();
    let left: i64 = c
        .query_row(
            "SELECT count(*) FROM queries WHERE NOT (client = 0 AND domain = 0)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    drop(c);
    assert_eq!(integrity(&path), "ok");
}
