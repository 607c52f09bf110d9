//! Shared by the tests/querylog_*.rs files: a config on a temp dir and
//! query events as the DNS core emits them.
#![allow(dead_code)]

use glory_hole::config::{Config, Dur};
use glory_hole::events::{QueryEvent, Reason, Source};
use glory_hole::querylog::{LogQuery, LogRow, QueryLog};
use std::path::Path;
use std::time::Duration;

pub fn config(dir: &Path) -> Config {
    let mut cfg = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    cfg.querylog.flush_interval = Dur(Duration::from_secs(1));
    cfg
}

pub fn event(time_ms: i64, client: &str, name: &str, source: Source) -> QueryEvent {
    QueryEvent {
        time_ms,
        client: client.parse().expect("client address"),
        qname: heapless::String::try_from(name).expect("short name"),
        qtype: 1,
        rcode: if source == Source::Blocked { 3 } else { 0 },
        source,
        upstream: if source == Source::Upstream {
            0
        } else {
            u8::MAX
        },
        latency_us: 100,
        reason: if source == Source::Blocked {
            Reason {
                kind: 1,
                id: 7,
                cname_depth: 0,
            }
        } else {
            Reason::default()
        },
    }
}

/// Polls `f` for up to 10 s; the writer works on its own thread.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for: {what}");
}

/// Rows stored in the database file: in blocks, plus any an older build
/// left in the version-1 row table (not counting the day markers, rows
/// with domain and client 0).
pub fn stored_rows(c: &rusqlite::Connection) -> i64 {
    c.query_row(
        "SELECT (SELECT coalesce(sum(rows), 0) FROM query_blocks)
              + (SELECT count(*) FROM queries WHERE NOT (client = 0 AND domain = 0))",
        [],
        |r| r.get(0),
    )
    .expect("counting stored rows")
}

/// The rows of `q`'s pages, newest first, following each page's cursor
/// until there is none or `max_pages` were read.
pub fn pages(log: &QueryLog, mut q: LogQuery, max_pages: usize) -> Vec<LogRow> {
    let mut rows = Vec::new();
    for _ in 0..max_pages {
        let page = log.search(&q).unwrap();
        rows.extend(page.rows);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    rows
}

/// Every stored row, newest first, read in pages of 1000.
pub fn every_row(log: &QueryLog) -> Vec<LogRow> {
    let q = LogQuery {
        limit: 1000,
        ..LogQuery::default()
    };
    pages(log, q, usize::MAX)
}
