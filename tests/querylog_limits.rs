//! The writer within its limits: a full disk pauses logging with a
//! warning while DNS never waits, and an idle writer sleeps instead of
//! spinning.

mod support;

use glory_hole::clock::now_ms;
use glory_hole::config::Dur;
use glory_hole::events::{EventSink, Source};
use glory_hole::querylog::{LogQuery, QueryLog};
use std::time::{Duration, Instant};
use support::querylog::{config, event, eventually};

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
    // Polling every 10-20 ms costs a few ms of CPU a second; a spin costs
    // the whole 1.5 s. Watched for 1.5 s, read every 50 ms: a spin fails
    // as soon as it has used the bound.
    let (start, before) = (Instant::now(), writer_cpu_s());
    let window = Duration::from_millis(1500);
    loop {
        let used = writer_cpu_s() - before;
        assert!(
            used < 0.5,
            "enabled = {enabled}: the idle writer used {used:.2} s of CPU in {:.2} s",
            start.elapsed().as_secs_f64()
        );
        if start.elapsed() >= window {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_idle_writer_sleeps_with_the_log_in_ram_only() {
    idle_writer_sleeps(false);
}

#[test]
fn an_idle_writer_sleeps_between_flushes() {
    idle_writer_sleeps(true);
}
