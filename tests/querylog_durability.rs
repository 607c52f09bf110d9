//! kill -9 of a process writing the log in a loop: what it reported as
//! stored is still there and the file passes `PRAGMA integrity_check`.

mod support;

use glory_hole::clock::now_ms;
use glory_hole::config::Dur;
use glory_hole::events::Source;
use glory_hole::querylog::QueryLog;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::querylog::{config, event};

const CHILD_DIR: &str = "QUERYLOG_WRITER_CHILD_DIR";

/// Run only as the child of the test below (it sets `CHILD_DIR`): writes
/// queries forever, printing the stored row count after each flush.
#[test]
#[ignore = "helper process for kill_9_loses_nothing_stored_and_leaves_a_sound_file"]
fn child_writes_until_killed() {
    let dir = std::env::var(CHILD_DIR).expect("run by the kill -9 test");
    let mut cfg = config(std::path::Path::new(&dir));
    cfg.querylog.flush_interval = Dur(Duration::from_millis(50));
    let (tx, rx) = std::sync::mpsc::sync_channel(100_000);
    let log = QueryLog::open(&cfg, rx).unwrap();
    for round in 0u64.. {
        for i in 0..500u64 {
            let n = round * 500 + i;
            tx.send(event(
                now_ms(),
                &format!("10.0.{}.{}", n % 3, n % 250),
                &format!("n{}.example", n % 5000),
                Source::Upstream,
            ))
            .unwrap();
        }
        log.flush();
        println!("stored {}", log.status().rows);
    }
}

#[test]
fn kill_9_loses_nothing_stored_and_leaves_a_sound_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_writes_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stored = 0u64;
    while stored < 20_000 {
        let line = lines.next().expect("the child reports progress").unwrap();
        if let Some(n) = line.strip_prefix("stored ") {
            stored = n.trim().parse().unwrap();
        }
    }
    // SIGKILL in the middle of writing: no shutdown code runs.
    child.kill().unwrap();
    child.wait().unwrap();

    let path = dir.path().join("querylog.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let rows: i64 = support::querylog::stored_rows(&c);
    assert!(
        rows as u64 >= stored,
        "reported {stored} stored, found {rows}"
    );
    let counted: i64 = c
        .query_row("SELECT value FROM meta WHERE key = 'rows'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(counted, rows, "the row counter commits with the rows");
    let minute_total: i64 = c
        .query_row("SELECT sum(cache + upstream + local + blocked + stale + refused + failed) FROM minute_counts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(minute_total, rows, "roll-ups commit with the rows");
    drop(c);

    // And the log opens and keeps writing.
    let (tx, rx) = std::sync::mpsc::sync_channel(10);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    tx.send(event(now_ms(), "10.0.0.1", "after.example", Source::Cache))
        .unwrap();
    log.flush();
    assert_eq!(log.status().rows, rows as u64 + 1);
}
