//! Migrations from empty and from every earlier version; a newer database
//! is left alone when it must be; a damaged file is moved aside.

mod querylog_support;

use glory_hole::events::{Source, now_ms};
use glory_hole::querylog::{LogQuery, QueryLog, latest_version, migrate_to};
use querylog_support::{config, event};
use rusqlite::Connection;
use std::path::Path;

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
            .unwrap();
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
