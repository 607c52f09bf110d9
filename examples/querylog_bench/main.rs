//! Query-log benchmark: ingest, bytes per row, dashboard and log-page
//! latency, and a retention pass, on realistic generated traffic.
//!
//!     cargo run --release --example querylog_bench -- --rows 10000000
//!     benches/querylog.sh            # the same, 10 M rows
//!     benches/querylog.sh --smoke    # 200 k rows, limits ×2, for CI
//!     ... --live-only                # only the DNS-like ingest (for perf)
//!     ... --live-only --sink-only    # only its run through EventSink
//!     ... --paced-only               # only the 40 000 events/s run
//!
//! Traffic: domains Zipf-distributed (s = 1) over names from
//! ../shared/data/blocklists/domains (those are blocked) mixed with
//! ordinary names, ~50 clients (also Zipf), 30 days ending now.
//!
//! The run ends with the targets of docs/performance.md ("Results") it
//! measured, each met or missed, and exits with status 1 if one is missed
//! (`Bounds`).

mod questions;
mod top_lists;
mod traffic;

use glory_hole::clock::{now_ms, thread_cpu_ms};
use glory_hole::config::{Config, Dur};
use glory_hole::events::{EventSink, QueryEvent, Reason, Source};
use glory_hole::querylog::{LogQuery, QueryLog};
use glory_hole::testing::Rng;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The targets docs/performance.md states for what this bench measures
/// (its "Results" table), and the rows every run must get back.
mod target {
    /// Writer CPU per row, DNS-like traffic through `EventSink`: "≤ ~0.25
    /// µs of logging per query".
    pub const WRITER_CPU_US_PER_ROW: f64 = 0.25;
    /// The database file per row, everything included, at 10 million
    /// rows; shorter runs (where each of the hundred thousand names is
    /// used by few rows) are held to the earlier bound of 60.
    pub const FILE_BYTES_PER_ROW: f64 = 20.0;
    pub const FILE_BYTES_PER_ROW_SHORT: f64 = 60.0;
    /// The slowest dashboard query, median.
    pub const DASHBOARD_MS: f64 = 10.0;
    /// The slowest log page, median.
    pub const LOG_PAGE_MS: f64 = 20.0;
    /// Each of the seed's five questions on the log, median.
    pub const QUESTION_MS: f64 = 10.0;
    /// A rare domain over 30 days, its first page, median.
    pub const RARE_DOMAIN_MS: f64 = 20.0;
    /// The longest retention step.
    pub const RETENTION_STEP_MS: f64 = 100.0;
}

/// Each target checked, met or missed; `finish` prints them all and gives
/// the exit status: 1 if one was missed.
struct Bounds {
    lines: Vec<String>,
    missed: usize,
    /// False in the CI smoke (`--smoke`, 200 k rows): the times (CPU per
    /// row, latencies) are printed against their targets but do not fail
    /// the run, as they move with the machine (the writer's 0.25 µs a row
    /// read 0.22 on one machine of the project's kind and 0.57 on another,
    /// 2026-12-07, nothing else running). The smoke fails on what does not
    /// depend on the machine: rows missing, answers that differ from the
    /// plain table's, a statement not using its index, the file's size.
    /// The documented run holds every target.
    times_held: bool,
    /// What a limit that is not a time is multiplied by: 1 for the
    /// documented run, 2 in the smoke (its 200 k rows carry the file's
    /// fixed overhead over fewer rows). Row counts are exact either way.
    slack: f64,
}

impl Bounds {
    fn check(&mut self, met: bool, line: String) {
        self.missed += usize::from(!met);
        let verdict = if met { "met" } else { "MISSED" };
        self.lines.push(format!("  {verdict:6} {line}"));
    }

    fn at_most(&mut self, what: &str, measured: f64, limit: f64, unit: &str) {
        let limit = limit * self.slack;
        self.check(
            measured <= limit,
            format!("{what}: {measured:.3} {unit}, target ≤ {limit} {unit}"),
        );
    }

    /// As [`Bounds::at_most`] for a time: held only if `times_held`, else
    /// printed with its verdict, marked not held.
    fn time_at_most(&mut self, what: &str, measured: f64, limit: f64, unit: &str) {
        let line = format!("{what}: {measured:.3} {unit}, target ≤ {limit} {unit}");
        if self.times_held {
            return self.check(measured <= limit, line);
        }
        let verdict = if measured <= limit { "met" } else { "over" };
        self.lines.push(format!(
            "  {verdict:6} {line} (a time: not held in the smoke)"
        ));
    }

    fn rows(&mut self, what: &str, got: u64, sent: u64) {
        self.check(got == sent, format!("{what}: {got} of {sent} rows"));
    }

    fn finish(self) -> ExitCode {
        println!("targets (docs/performance.md):");
        for l in &self.lines {
            println!("{l}");
        }
        if self.missed == 0 {
            return ExitCode::SUCCESS;
        }
        eprintln!("querylog_bench: {} target(s) missed", self.missed);
        ExitCode::FAILURE
    }
}

/// Median wall time and median CPU time of the calling thread, in ms
/// (queries run on the caller's thread; CPU time is what a busy shared
/// machine does not inflate).
struct Timing(f64, f64);
impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} ms (cpu {:.2})", self.0, self.1)
    }
}

fn time_ms<T>(runs: usize, mut f: impl FnMut() -> T) -> Timing {
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (t, c) = (Instant::now(), thread_cpu_ms());
        std::hint::black_box(f());
        cpu.push(thread_cpu_ms() - c);
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Timing(median(wall), median(cpu))
}

/// Bytes this process has caused to be written to storage (/proc/self/io).
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds this process has used (user + system), all threads.
fn cpu_s() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU seconds used by the query-log writer thread alone.
fn writer_cpu_s() -> f64 {
    glory_hole::testing::thread_cpu_s("querylog-writer").unwrap_or(0.0)
}

/// A fresh data directory (kept while the guard lives) and a config using
/// it, committing every second.
fn fresh_config() -> anyhow::Result<(tempfile::TempDir, Config)> {
    let tmp = tempfile::tempdir()?;
    let mut cfg = Config {
        data_dir: tmp.path().to_owned(),
        ..Config::default()
    };
    cfg.querylog.flush_interval = Dur(Duration::from_secs(1));
    Ok((tmp, cfg))
}

/// The traffic of benches/dns-peers.sh, as events: the current time,
/// 1 000 names, 50 clients in turn, the same sequence every run.
struct DnsLike {
    names: Vec<String>,
    clients: Vec<IpAddr>,
    rng: Rng,
    sent: usize,
}

impl DnsLike {
    fn new() -> DnsLike {
        DnsLike {
            names: (0..1000).map(|i| format!("n{i}.bench.example")).collect(),
            clients: (0..50)
                .map(|i| format!("192.168.1.{}", 10 + i).parse().unwrap())
                .collect(),
            rng: Rng(0x2545_F491_4F6C_DD1D),
            sent: 0,
        }
    }

    fn next_event(&mut self) -> QueryEvent {
        let name = &self.names[(self.rng.next_u64() % 1000) as usize];
        let ev = QueryEvent {
            time_ms: now_ms(),
            client: self.clients[self.sent % self.clients.len()],
            qname: heapless::String::try_from(name.as_str()).unwrap_or_default(),
            qtype: 1,
            rcode: 0,
            source: Source::Cache,
            upstream: u8::MAX,
            latency_us: 15 + (self.rng.next_u64() % 60) as u32,
            reason: Reason::default(),
        };
        self.sent += 1;
        ev
    }
}

/// The writer's cost per row as the DNS server sees it (the traffic of
/// benches/dns-peers.sh): rows at the current time, 1 000 names, 50
/// clients, into a fresh database. With `sink`, the events go through
/// `EventSink` as the DNS workers send them (the producer waits and sends
/// again when the channel is full, so no row is lost); without, through a
/// blocking `sync_channel`, whose wake-ups of the producer the writer
/// pays for (the figure of earlier runs). Every row must be stored; through
/// `EventSink`, the writer CPU per row is held to its target.
fn live_ingest(rows: usize, sink: bool, bounds: &mut Bounds) -> anyhow::Result<()> {
    let (_tmp, cfg) = fresh_config()?;
    let (tx, rx) = sync_channel::<QueryEvent>(65_536);
    let (event_sink, event_rx) = EventSink::bounded(65_536);
    let log = if sink {
        QueryLog::open(&cfg, event_rx)?
    } else {
        QueryLog::open(&cfg, rx)?
    };
    let mut traffic = DnsLike::new();
    let t0 = Instant::now();
    let wcpu0 = writer_cpu_s();
    let written0 = written_bytes();
    let producer = std::thread::spawn(move || {
        for _ in 0..rows {
            let ev = traffic.next_event();
            if sink {
                loop {
                    let dropped = event_sink.dropped();
                    event_sink.emit(ev.clone());
                    if event_sink.dropped() == dropped {
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            } else if tx.send(ev).is_err() {
                break;
            }
        }
    });
    producer.join().expect("producer");
    log.flush();
    let wall = t0.elapsed().as_secs_f64();
    let cpu = writer_cpu_s() - wcpu0;
    let written = written_bytes() - written0;
    let us = cpu * 1e6 / rows as f64;
    println!(
        "live ingest {} (like benches/dns-peers.sh: now, 1 000 names, 50 clients): {rows} rows in {wall:.1} s; \
         writer thread {cpu:.3} CPU-s = {us:.3} µs per row = {us:.3} writer CPU-s per million rows \
         ({:.0} rows per writer CPU-s); written to storage {:.0} bytes per row",
        if sink {
            "through EventSink"
        } else {
            "through sync_channel"
        },
        rows as f64 / cpu,
        written as f64 / rows as f64
    );
    let via = if sink { "EventSink" } else { "sync_channel" };
    bounds.rows(
        &format!("live ingest through {via}, stored"),
        log.status().rows,
        rows as u64,
    );
    if sink {
        bounds.time_at_most(
            "writer CPU per row, DNS-like traffic through EventSink",
            us,
            target::WRITER_CPU_US_PER_ROW,
            "µs",
        );
    }
    Ok(())
}

/// The writer's cost per row at the rate of benches/dns-peers.sh (40 000
/// answers/s, sent evenly through `EventSink`): the writer sleeps between
/// polls and wakes with cold caches, which a flat-out run does not show.
/// Every event not dropped must be stored.
fn paced_ingest(rows: usize, per_s: u64, bounds: &mut Bounds) -> anyhow::Result<()> {
    let (_tmp, cfg) = fresh_config()?;
    let (event_sink, event_rx) = EventSink::bounded(65_536);
    let log = QueryLog::open(&cfg, event_rx)?;
    let mut traffic = DnsLike::new();
    let sink = event_sink.clone();
    let t0 = Instant::now();
    let wcpu0 = writer_cpu_s();
    let producer = std::thread::spawn(move || {
        let mut sent = 0;
        while sent < rows {
            // Catch up with the clock, then wait a millisecond.
            let due = (t0.elapsed().as_secs_f64() * per_s as f64) as usize;
            while sent < due.min(rows) {
                sink.emit(traffic.next_event());
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    producer.join().expect("producer");
    log.flush();
    let wall = t0.elapsed().as_secs_f64();
    let cpu = writer_cpu_s() - wcpu0;
    let us = cpu * 1e6 / rows as f64;
    println!(
        "paced ingest through EventSink at {per_s} events/s (like benches/dns-peers.sh): {rows} rows in {wall:.1} s; \
         writer thread {cpu:.3} CPU-s = {us:.3} µs per row = {us:.3} writer CPU-s per million rows; \
         {} events dropped",
        event_sink.dropped()
    );
    bounds.rows(
        "paced ingest, stored (every event not dropped)",
        log.status().rows,
        rows as u64 - event_sink.dropped(),
    );
    Ok(())
}

fn main() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args
        .iter()
        .position(|a| a == "--rows")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse().expect("--rows N"))
        .unwrap_or(10_000_000);
    let dir = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let tmp = tempfile::tempdir()?;
    let data_dir = dir.unwrap_or_else(|| tmp.path().to_owned());
    let _ = std::fs::remove_file(data_dir.join("querylog.db"));

    let smoke = args.iter().any(|a| a == "--smoke");
    let mut bounds = Bounds {
        lines: Vec::new(),
        missed: 0,
        times_held: !smoke,
        slack: if smoke { 2.0 } else { 1.0 },
    };
    if !args
        .iter()
        .any(|a| a == "--live-only" || a == "--sink-only")
    {
        paced_ingest(rows.clamp(1, 200_000), 40_000, &mut bounds)?;
    }
    if args.iter().any(|a| a == "--paced-only") {
        return Ok(bounds.finish());
    }
    if !args.iter().any(|a| a == "--sink-only") {
        live_ingest(rows.min(1_000_000), false, &mut bounds)?;
    }
    live_ingest(rows.min(1_000_000), true, &mut bounds)?;
    if args.iter().any(|a| a == "--live-only") {
        return Ok(bounds.finish());
    }
    println!("generating {rows} rows over 30 days");
    let end = now_ms();
    let traffic = traffic::Traffic::new(rows, end);
    let mut cfg = Config {
        data_dir: data_dir.clone(),
        ..Config::default()
    };
    cfg.querylog.flush_interval = Dur(Duration::from_secs(1));
    cfg.querylog.retention_days = 0;
    cfg.querylog.max_size_mib = 0;
    let (tx, rx) = sync_channel::<QueryEvent>(65_536);
    let log = QueryLog::open(&cfg, rx)?;

    let start = traffic.start();
    let gen_tx = tx.clone();
    let t0 = Instant::now();
    let cpu0 = cpu_s();
    let wcpu0 = writer_cpu_s();
    let written0 = written_bytes();
    let events = traffic.clone();
    let producer = std::thread::spawn(move || {
        for ev in events {
            if gen_tx.send(ev).is_err() {
                break;
            }
        }
    });
    producer.join().expect("producer");
    log.flush();
    let ingest_s = t0.elapsed().as_secs_f64();
    let ingest_cpu = cpu_s() - cpu0;
    let writer_cpu = writer_cpu_s() - wcpu0;
    println!(
        "ingest: {rows} rows in {ingest_s:.1} s = {:.0} rows/s wall (all indexes and roll-ups); \
         writer thread {writer_cpu:.1} CPU-s = {:.0} rows per writer CPU-s = {:.2} writer CPU-s per million rows; \
         whole process {ingest_cpu:.1} CPU-s",
        rows as f64 / ingest_s,
        rows as f64 / writer_cpu,
        writer_cpu * 1e6 / rows as f64,
    );
    let written = written_bytes() - written0;
    println!(
        "written to storage during ingest (WAL + checkpoints): {:.1} GB = {:.0} bytes per row",
        written as f64 / 1e9,
        written as f64 / rows as f64
    );
    bounds.rows("30-day ingest, stored", log.status().rows, rows as u64);
    bounds.rows(
        "30-day ingest, counted by the dashboard",
        log.summary(start - 3_600_000, end + 3_600_000)?.total,
        rows as u64,
    );
    let read_back = read_every_row(&log)?;
    bounds.rows(
        "30-day ingest, read back page by page",
        read_back,
        rows as u64,
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine load average during the run: {}",
        load.split(' ').take(3).collect::<Vec<_>>().join(" ")
    );

    // Bytes on disk: checkpoint the WAL into the file first.
    let db = data_dir.join("querylog.db");
    {
        let c = rusqlite::Connection::open(&db)?;
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let size = std::fs::metadata(&db)?.len();
        println!(
            "file: {} bytes = {:.1} bytes/row (everything: rows, indexes, names, roll-ups)",
            size,
            size as f64 / rows as f64
        );
        bounds.at_most(
            "file size per row, everything included",
            size as f64 / rows as f64,
            if rows >= 10_000_000 {
                target::FILE_BYTES_PER_ROW
            } else {
                target::FILE_BYTES_PER_ROW_SHORT
            },
            "bytes",
        );
        let mut st =
            c.prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")?;
        let parts = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for p in parts {
            let (name, bytes) = p?;
            if bytes as f64 / rows as f64 >= 0.05 {
                println!(
                    "  {name:32} {:>12} bytes  {:6.2} bytes/row",
                    bytes,
                    bytes as f64 / rows as f64
                );
            }
        }
    }

    let runs = 21;
    let day = 86_400_000;
    let now = now_ms();
    println!("dashboard (median of {runs}):");
    let mut slowest = 0f64;
    for (label, from) in [
        ("24h", now - day),
        ("7d", now - 7 * day),
        ("30d", now - 30 * day),
    ] {
        let t = [
            time_ms(runs, || log.summary(from, now).unwrap()),
            time_ms(runs, || log.time_series(from, now, 96).unwrap()),
            time_ms(runs, || log.top_domains(from, now, 10, false).unwrap()),
            time_ms(runs, || log.top_domains(from, now, 10, true).unwrap()),
            time_ms(runs, || log.top_clients(from, now, 10).unwrap()),
            time_ms(runs, || log.query_types(from, now).unwrap()),
        ];
        slowest = t.iter().map(|t| t.0).fold(slowest, f64::max);
        println!(
            "  {label}: summary {}, time series {}, top domains {}, top blocked {}, top clients {}, query types {}",
            t[0], t[1], t[2], t[3], t[4], t[5]
        );
    }
    bounds.time_at_most(
        "slowest dashboard query, median",
        slowest,
        target::DASHBOARD_MS,
        "ms",
    );
    let s = log.summary(now - day, now)?;
    println!("  24h summary: {s:?}");
    println!("log page, 100 rows (median of {runs}):");
    let first = log.search(&LogQuery {
        limit: 100,
        ..LogQuery::default()
    })?;
    let pages: Vec<(&str, LogQuery)> = vec![
        ("newest", LogQuery::default()),
        (
            "page 2",
            LogQuery {
                cursor: first.next_cursor,
                ..LogQuery::default()
            },
        ),
        (
            "last 24h",
            LogQuery {
                from_ms: Some(now - day),
                to_ms: Some(now),
                ..LogQuery::default()
            },
        ),
        (
            "one client",
            LogQuery {
                client: Some("192.168.1.40".into()),
                ..LogQuery::default()
            },
        ),
        (
            "blocked",
            LogQuery {
                status: Some(Source::Blocked),
                ..LogQuery::default()
            },
        ),
        (
            "failed",
            LogQuery {
                status: Some(Source::Failed),
                ..LogQuery::default()
            },
        ),
        (
            "cached",
            LogQuery {
                status: Some(Source::Cache),
                ..LogQuery::default()
            },
        ),
        (
            "qtype TXT",
            LogQuery {
                qtype: Some(16),
                ..LogQuery::default()
            },
        ),
        (
            "domain 'site12'",
            LogQuery {
                domain: Some("site12".into()),
                ..LogQuery::default()
            },
        ),
        (
            "domain 'google'",
            LogQuery {
                domain: Some("google".into()),
                ..LogQuery::default()
            },
        ),
        (
            "domain 'zzqq' (none)",
            LogQuery {
                domain: Some("zzqq".into()),
                ..LogQuery::default()
            },
        ),
        (
            "domain 'ad'",
            LogQuery {
                domain: Some("ad".into()),
                ..LogQuery::default()
            },
        ),
        (
            "client + blocked",
            LogQuery {
                client: Some("192.168.1.12".into()),
                status: Some(Source::Blocked),
                ..LogQuery::default()
            },
        ),
    ];
    let mut slowest = 0f64;
    for (label, q) in &pages {
        let q = LogQuery {
            limit: 100,
            ..q.clone()
        };
        let page = log.search(&q)?;
        let ms = time_ms(runs, || log.search(&q).unwrap());
        slowest = slowest.max(ms.0);
        println!(
            "  {label:20} {ms}  ({} rows, more: {})",
            page.rows.len(),
            page.next_cursor.is_some()
        );
    }
    println!(
        "  client activity  {}",
        time_ms(runs, || log
            .client_activity("192.168.1.10", now - day, now)
            .unwrap())
    );
    bounds.time_at_most(
        "slowest log page of 100 rows, median",
        slowest,
        target::LOG_PAGE_MS,
        "ms",
    );

    questions::run(&log, &data_dir, traffic, end, &mut bounds)?;

    // Retention: expire the oldest ~1M rows (3 of 30 days at 10M rows)
    // while new queries keep arriving.
    let expire = (rows / 10).min(1_000_000);
    let keep_days = 30 - (30 * expire).div_ceil(rows) as u32;
    let mut q = cfg.querylog.clone();
    q.retention_days = keep_days;
    log.set_config(&q);
    let live_tx = tx.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let live = std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            for _ in 0..200 {
                let _ = live_tx.send(QueryEvent {
                    time_ms: now_ms(),
                    client: "192.168.1.77".parse().unwrap(),
                    qname: heapless::String::try_from("live.example.com").unwrap(),
                    qtype: 1,
                    rcode: 0,
                    source: Source::Cache,
                    upstream: u8::MAX,
                    latency_us: 20,
                    reason: Reason::default(),
                });
                n += 1;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        n
    });
    let before = log.status().rows;
    let report = log.run_retention();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let live_rows = live.join().expect("live");
    log.flush();
    println!(
        "retention (keep {keep_days} days): deleted {} rows in {} steps, {:.0} ms total; longest step {:.1} ms \
         (most CPU in one step {:.1} ms; deleting {:.1} ms, vacuum {:.1} ms); longest batch write meanwhile {:.1} ms; \
         vacuumed {} pages; {} live rows inserted meanwhile; rows before {before}, after {}",
        report.deleted_rows,
        report.steps,
        report.total_ms,
        report.max_step_ms,
        report.max_step_cpu_ms,
        report.max_delete_step_ms,
        report.max_vacuum_step_ms,
        report.max_batch_ms,
        report.vacuumed_pages,
        live_rows,
        log.status().rows
    );
    bounds.time_at_most(
        "longest retention step",
        report.max_step_ms,
        target::RETENTION_STEP_MS,
        "ms",
    );
    drop(tx);
    Ok(bounds.finish())
}

/// How many rows the log page returns, following each page's cursor
/// from the newest row to the oldest.
fn read_every_row(log: &QueryLog) -> anyhow::Result<u64> {
    let mut q = LogQuery {
        limit: 1000,
        ..LogQuery::default()
    };
    let mut n = 0u64;
    loop {
        let page = log.search(&q)?;
        n += page.rows.len() as u64;
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return Ok(n),
        }
    }
}
