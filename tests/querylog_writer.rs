//! The writer fed through the real event channel: what goes in comes out
//! of every query, privacy applies, retention by age and size, a full disk
//! pauses logging without blocking DNS.

mod querylog_support;

use glory_hole::clock::now_ms;
use glory_hole::config::Dur;
use glory_hole::events::{EventSink, Source};
use glory_hole::querylog::{LogQuery, QueryLog, RuleRef};
use querylog_support::{config, event, eventually};
use std::time::Duration;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

#[test]
fn events_reach_the_ring_at_once_and_the_database_on_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, rx) = EventSink::bounded(1024);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    log.attach_sink(sink.clone());
    let t = now_ms();
    sink.emit(event(t, "192.168.1.5", "tv.example.com", Source::Upstream));
    sink.emit(event(
        t + 1,
        "192.168.1.6",
        "ads.example.net",
        Source::Blocked,
    ));
    eventually("the live view shows both", || log.recent(10).len() == 2);
    let recent = log.recent(10);
    assert_eq!(recent[0].domain, "ads.example.net", "newest first");
    assert_eq!(recent[1].client, "192.168.1.5");

    log.flush();
    let page = log.search(&LogQuery::default()).unwrap();
    assert_eq!(page.rows.len(), 2);
    assert_eq!(page.rows[0].domain, "ads.example.net");
    assert_eq!(page.rows[0].status, Source::Blocked);
    assert_eq!(
        page.rows[0].reason,
        Some(RuleRef {
            kind: 1,
            id: 7,
            cname_depth: 0
        })
    );
    assert_eq!(page.rows[0].time_ms, t + 1);
    assert_eq!(page.rows[1].upstream, Some(0));
    assert_eq!(page.rows[1].reason, None);
    let st = log.status();
    assert_eq!(st.rows, 2);
    assert!(st.last_flush_ms.is_some());
    assert!(st.file_bytes > 0);
    assert_eq!(st.dropped_events, 0);
    assert_eq!(st.schema_version, glory_hole::querylog::latest_version());
}

#[test]
fn dashboard_numbers_match_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(10_000);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    // Two hours ago to now: 3 clients, a known mix.
    let base = (now_ms() / HOUR - 2) * HOUR;
    let mut sent = 0;
    for i in 0..600i64 {
        let t = base + i * 12_000; // every 12 s, spanning 2 hours
        let client = ["10.0.0.1", "10.0.0.2", "10.0.0.3"][(i % 3) as usize];
        let (name, source) = match i % 10 {
            0..=2 => ("ads.tracker.example", Source::Blocked),
            3..=4 => ("www.example.org", Source::Cache),
            5 => ("cdn.example.org", Source::Cache),
            6 => ("mail.example.org", Source::Stale),
            _ => (
                ["a.example.org", "b.example.org", "c.example.org"][(i % 3) as usize],
                Source::Upstream,
            ),
        };
        let mut e = event(t, client, name, source);
        if i % 4 == 0 {
            e.qtype = 28;
        }
        tx.send(e).unwrap();
        sent += 1;
    }
    log.flush();
    let to = base + 2 * HOUR;
    let s = log.summary(base, to).unwrap();
    assert_eq!(s.total, sent);
    assert_eq!(s.blocked, 180);
    assert_eq!(s.cached, 240);
    assert_eq!(s.forwarded, 180);
    assert!((s.percent_blocked - 30.0).abs() < 1e-9);
    assert_eq!(s.unique_clients, 3);
    assert_eq!(s.unique_domains, 7);

    // A range starting mid-hour counts to the minute.
    let half = log.summary(base + 30 * 60_000, to).unwrap();
    assert_eq!(half.total, 450);

    let series = log.time_series(base, to, 4).unwrap();
    assert_eq!(series.len(), 4);
    assert_eq!(series.iter().map(|b| b.total).sum::<u64>(), sent);
    assert!(
        series
            .iter()
            .all(|b| b.total == 150 && b.blocked == 45 && b.allowed == 105)
    );

    let top = log.top_domains(base, to, 2, false).unwrap();
    assert_eq!(top[0], ("ads.tracker.example".to_string(), 180));
    assert_eq!(top[1], ("www.example.org".to_string(), 120));
    let blocked = log.top_domains(base, to, 10, true).unwrap();
    assert_eq!(blocked, vec![("ads.tracker.example".to_string(), 180)]);
    let clients = log.top_clients(base, to, 10).unwrap();
    assert_eq!(clients.len(), 3);
    assert!(clients.iter().all(|(_, n)| *n == 200));
    let types = log.query_types(base, to).unwrap();
    assert_eq!(types, vec![(1, 450), (28, 150)]);

    let act = log.client_activity("10.0.0.1", base, to).unwrap();
    assert_eq!(act.total, 200);
    assert_eq!(act.hourly.len(), 2);
    assert_eq!(act.top_domains_rows, 200);
    assert!(
        act.top_domains
            .iter()
            .any(|(d, _)| d == "ads.tracker.example")
    );
    let none = log.client_activity("10.9.9.9", base, to).unwrap();
    assert_eq!(none.total, 0);
}

#[test]
fn log_search_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(10_000);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    let base = now_ms() - HOUR;
    for i in 0..1000i64 {
        let client = if i % 100 == 0 {
            "10.0.0.99"
        } else {
            "10.0.0.1"
        };
        let source = if i % 50 == 0 {
            Source::Failed
        } else {
            Source::Cache
        };
        let name = if i % 10 == 0 {
            format!("shop{i}.tiktokv.com")
        } else {
            format!("n{i}.example.org")
        };
        let mut e = event(base + i * 1000, client, &name, source);
        if i % 250 == 0 {
            e.qtype = 16;
        }
        tx.send(e).unwrap();
    }
    log.flush();

    // Paging through everything with the cursor visits each row once.
    let mut seen = 0;
    let mut cursor = None;
    let mut last_time = i64::MAX;
    loop {
        let page = log
            .search(&LogQuery {
                cursor,
                limit: 300,
                ..LogQuery::default()
            })
            .unwrap();
        for r in &page.rows {
            assert!(r.time_ms < last_time, "newest first, no repeats");
            last_time = r.time_ms;
        }
        seen += page.rows.len();
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, 1000);

    let by = |q: LogQuery| log.search(&LogQuery { limit: 1000, ..q }).unwrap().rows;
    let client = by(LogQuery {
        client: Some("10.0.0.99".into()),
        ..LogQuery::default()
    });
    assert_eq!(client.len(), 10);
    assert!(client.iter().all(|r| r.client == "10.0.0.99"));
    let failed = by(LogQuery {
        status: Some(Source::Failed),
        ..LogQuery::default()
    });
    assert_eq!(failed.len(), 20);
    let cached = by(LogQuery {
        status: Some(Source::Cache),
        ..LogQuery::default()
    });
    assert_eq!(cached.len(), 980);
    let txt = by(LogQuery {
        qtype: Some(16),
        ..LogQuery::default()
    });
    assert_eq!(txt.len(), 4);
    let tiktok = by(LogQuery {
        domain: Some("TikTok".into()),
        ..LogQuery::default()
    });
    assert_eq!(tiktok.len(), 100);
    assert!(tiktok.iter().all(|r| r.domain.contains("tiktok")));
    let short = by(LogQuery {
        domain: Some("p9".into()),
        ..LogQuery::default()
    });
    assert_eq!(
        short.len(),
        11,
        "two letters: shop90 and shop900 ... shop990"
    );
    let both = by(LogQuery {
        client: Some("10.0.0.99".into()),
        status: Some(Source::Failed),
        ..LogQuery::default()
    });
    assert_eq!(both.len(), 10);
    let range = by(LogQuery {
        from_ms: Some(base + 100_000),
        to_ms: Some(base + 200_000),
        ..LogQuery::default()
    });
    assert_eq!(range.len(), 100);
    let unknown = by(LogQuery {
        client: Some("10.1.1.1".into()),
        ..LogQuery::default()
    });
    assert!(unknown.is_empty());
    let nothing = by(LogQuery {
        domain: Some("zzzqqq".into()),
        ..LogQuery::default()
    });
    assert!(nothing.is_empty());
}

#[test]
fn privacy_settings_hide_before_storing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.querylog.anonymize_clients = true;
    let (tx, rx) = std::sync::mpsc::sync_channel(100);
    let log = QueryLog::open(&cfg, rx).unwrap();
    tx.send(event(
        now_ms(),
        "192.168.1.77",
        "private.example",
        Source::Cache,
    ))
    .unwrap();
    tx.send(event(
        now_ms(),
        "2001:db8:1:2::5",
        "private.example",
        Source::Cache,
    ))
    .unwrap();
    log.flush();
    let rows = log.search(&LogQuery::default()).unwrap().rows;
    assert_eq!(rows[0].client, "2001:db8:1::");
    assert_eq!(rows[1].client, "192.168.1.0");

    cfg.querylog.hide_domains = true;
    log.set_config(&cfg.querylog);
    tx.send(event(
        now_ms(),
        "192.168.1.77",
        "secret.example",
        Source::Cache,
    ))
    .unwrap();
    log.flush();
    let rows = log.search(&LogQuery::default()).unwrap().rows;
    assert_eq!(rows[0].domain, glory_hole::querylog::HIDDEN_DOMAIN);
    assert!(log.recent(10).iter().all(|r| r.domain != "secret.example"));
}

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
        let n: i64 = querylog_support::stored_rows(&c);
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
    let left: i64 = querylog_support::stored_rows(&c);
    assert_eq!(log.status().rows, left as u64);
}

#[test]
fn a_full_disk_pauses_logging_with_a_warning_and_dns_never_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, rx) = EventSink::bounded(50_000);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    log.attach_sink(sink.clone());
    let now = now_ms();
    for i in 0..50 {
        sink.emit(event(now + i, "10.0.0.1", "before.example", Source::Cache));
    }
    eventually("first events received", || log.recent(100).len() == 50);
    log.flush();
    assert_eq!(log.status().rows, 50);

    let c = rusqlite::Connection::open(dir.path().join("querylog.db")).unwrap();
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    log.set_page_limit(Some(pages as u64));
    // Many new names need new pages; the DNS side keeps emitting.
    for i in 0..20_000i64 {
        sink.emit(event(
            now + 100 + i,
            "10.0.0.1",
            &format!("full{i}.example"),
            Source::Cache,
        ));
    }
    assert_eq!(sink.sent() + sink.dropped(), 20_050, "emit never waits");
    log.flush();
    let st = log.status();
    assert!(st.paused, "{st:?}");
    assert!(
        st.warning.as_deref().unwrap_or("").contains("disk full"),
        "{st:?}"
    );
    assert!(st.dropped_rows > 0);
    assert_eq!(st.rows, 50);

    // Space comes back: logging resumes by itself.
    log.set_page_limit(None);
    let t = now_ms();
    eventually("logging resumes", || {
        sink.emit(event(t, "10.0.0.1", "after.example", Source::Cache));
        log.flush();
        let st = log.status();
        !st.paused && st.warning.is_none() && st.rows > 50
    });
    let page = log
        .search(&LogQuery {
            limit: 1,
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(page.rows[0].domain, "after.example");
}

#[test]
fn disabled_log_keeps_only_the_live_view() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.querylog.enabled = false;
    let (tx, rx) = std::sync::mpsc::sync_channel(10);
    let log = QueryLog::open(&cfg, rx).unwrap();
    tx.send(event(now_ms(), "10.0.0.1", "ram.example", Source::Cache))
        .unwrap();
    eventually("ring", || log.recent(1).len() == 1);
    log.flush();
    assert!(!dir.path().join("querylog.db").exists());
    let err = log.summary(0, now_ms()).unwrap_err().to_string();
    assert!(err.contains("disabled"), "{err}");
}

#[test]
fn long_ranges_read_day_rollups_and_agree_with_the_hours() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(10_000);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    let base = (now_ms() / DAY - 4) * DAY;
    for h in 0..96i64 {
        for i in 0..10i64 {
            let (name, source) = match i % 3 {
                0 => ("a.example", Source::Blocked),
                1 => ("b.example", Source::Cache),
                _ => ("c.example", Source::Upstream),
            };
            tx.send(event(
                base + h * HOUR + i * 60_000,
                &format!("10.0.0.{}", h % 5),
                name,
                source,
            ))
            .unwrap();
        }
    }
    // Something from now closes the four whole days.
    tx.send(event(now_ms(), "10.0.0.9", "now.example", Source::Cache))
        .unwrap();
    log.flush();
    let c = rusqlite::Connection::open(dir.path().join("querylog.db")).unwrap();
    let days: i64 = c
        .query_row(
            "SELECT count(*) FROM day_sketches WHERE day BETWEEN ?1 AND ?2",
            [base / DAY, base / DAY + 3],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(days, 4, "four closed days rolled up");

    let end = base + 4 * DAY;
    let s = log.summary(base, end).unwrap();
    assert_eq!(
        (s.total, s.blocked, s.unique_clients, s.unique_domains),
        (960, 384, 5, 3)
    );
    let top = log.top_domains(base, end, 3, false).unwrap();
    assert_eq!(
        top,
        [
            ("a.example".to_string(), 384),
            ("b.example".to_string(), 288),
            ("c.example".to_string(), 288)
        ]
    );
    assert_eq!(
        log.top_domains(base, end, 3, true).unwrap(),
        [("a.example".to_string(), 384)]
    );
    let clients = log.top_clients(base, end, 10).unwrap();
    assert_eq!(clients.iter().map(|c| c.1).sum::<u64>(), 960);
    assert_eq!(clients[0], ("10.0.0.0".to_string(), 200));
    // Ragged ends come from the hours around the whole days.
    let part = log
        .top_domains(base + 5 * HOUR, end - 2 * HOUR, 1, false)
        .unwrap();
    assert_eq!(part, [("a.example".to_string(), 4 * (96 - 7))]);
    let s = log.summary(base + 5 * HOUR, end + DAY).unwrap();
    assert_eq!(
        (s.total, s.unique_clients, s.unique_domains),
        (960 - 50 + 1, 6, 4)
    );
}

#[test]
fn a_flood_of_distinct_names_keeps_the_writer_ram_fixed_and_the_top_domains_right() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(1_000);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
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

    let status = log.status();
    assert_eq!(status.rows, total);
    assert!(
        status.writer_ram_bytes > 0 && status.writer_ram_bytes <= 3 << 20,
        "the writer's caches and summaries stay within 3 MiB: {} bytes",
        status.writer_ram_bytes
    );
    let top = log.top_domains(base, base + HOUR, 20, false).unwrap();
    let want: Vec<&str> = heavy.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        top.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        want,
        "the heavy hitters, in order"
    );
    // Space-saving overcounts by at most total / capacity (1024).
    for ((name, got), (_, real)) in top.iter().zip(&heavy) {
        assert!(
            *got >= *real && got - real <= total / 1024,
            "{name}: counted {got}, sent {real}"
        );
    }
    let blocked = log.top_domains(base, base + HOUR, 5, true).unwrap();
    assert_eq!(
        blocked.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        want[..5].to_vec()
    );
    // Every row is stored and searchable, flood names included: the
    // pages walk back until the one row is found.
    let q = LogQuery {
        domain: Some("flood39999.".into()),
        ..LogQuery::default()
    };
    let found = querylog_support::pages(&log, q, 100);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].domain, "flood39999.example");
}

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
    let all = querylog_support::every_row(&log);
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
    assert_eq!(querylog_support::stored_rows(&c), 5_001);
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
        let rows = querylog_support::pages(&log, q, usize::MAX);
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
    assert_eq!(querylog_support::stored_rows(&c), 5_001);
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

/// CPU seconds the writer thread has used, from /proc (the thread is
/// named querylog-writer).
fn writer_cpu_s() -> f64 {
    glory_hole::testing::thread_cpu_s("querylog-writer").expect("a thread named querylog-writer")
}

/// With nothing to write, the writer polls the channel and sleeps; once its
/// flush interval had passed without a flush (always, with the log kept in
/// RAM only) it used to poll without sleeping: a whole core, for ever.
fn idle_writer_sleeps(enabled: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.querylog.enabled = enabled;
    cfg.querylog.flush_interval = Dur(Duration::from_millis(10));
    let (sink, rx) = EventSink::bounded(64);
    let log = QueryLog::open(&cfg, rx).unwrap();
    log.attach_sink(sink.clone());
    sink.emit(event(
        now_ms(),
        "192.168.1.5",
        "tv.example.com",
        Source::Upstream,
    ));
    eventually("the event in the live view", || {
        log.recent(10).iter().any(|r| r.domain == "tv.example.com")
    });
    let before = writer_cpu_s();
    std::thread::sleep(Duration::from_millis(1500));
    let used = writer_cpu_s() - before;
    // Polling every 10-20 ms costs a few ms of CPU a second; a spin costs
    // the whole 1.5 s.
    assert!(
        used < 0.5,
        "enabled = {enabled}: the idle writer used {used:.2} s of CPU in 1.5 s"
    );
}

#[test]
fn an_idle_writer_sleeps_with_the_log_in_ram_only() {
    idle_writer_sleeps(false);
}

#[test]
fn an_idle_writer_sleeps_between_flushes() {
    idle_writer_sleeps(true);
}
