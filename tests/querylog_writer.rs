//! The writer fed through the real event channel: what goes in comes out
//! of every query (the live view, the log page, the dashboard, to the
//! day roll-ups), privacy applies before anything is kept, and a disabled
//! log keeps only the live view.

mod support;

use glory_hole::clock::now_ms;
use glory_hole::events::{EventSink, Source};
use glory_hole::querylog::{LogQuery, QueryLog, RuleRef};
use support::querylog::{config, event, eventually};

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

    let top = log.top_domains(base, to, 2, false).unwrap().items;
    assert_eq!(top[0], ("ads.tracker.example".to_string(), 180));
    assert_eq!(top[1], ("www.example.org".to_string(), 120));
    let blocked = log.top_domains(base, to, 10, true).unwrap().items;
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
    let top = log.top_domains(base, end, 3, false).unwrap().items;
    assert_eq!(
        top,
        [
            ("a.example".to_string(), 384),
            ("b.example".to_string(), 288),
            ("c.example".to_string(), 288)
        ]
    );
    assert_eq!(
        log.top_domains(base, end, 3, true).unwrap().items,
        [("a.example".to_string(), 384)]
    );
    let clients = log.top_clients(base, end, 10).unwrap();
    assert_eq!(clients.iter().map(|c| c.1).sum::<u64>(), 960);
    assert_eq!(clients[0], ("10.0.0.0".to_string(), 200));
    // Ragged ends come from the hours around the whole days.
    let part = log
        .top_domains(base + 5 * HOUR, end - 2 * HOUR, 1, false)
        .unwrap()
        .items;
    assert_eq!(part, [("a.example".to_string(), 4 * (96 - 7))]);
    let s = log.summary(base + 5 * HOUR, end + DAY).unwrap();
    assert_eq!(
        (s.total, s.unique_clients, s.unique_domains),
        (960 - 50 + 1, 6, 4)
    );
}
