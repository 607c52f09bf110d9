//! Exporting the log: a million rows in the heap of one block, CSV and
//! JSON lines that read back as the stored rows, the log page's filters
//! applied, and `glory-hole log export` beside the running writer.
//!
//! The heap is counted by this binary's allocator, which sees the whole
//! process: the tests take one lock, so none allocates beside another
//! (nextest runs each in its own process anyway).

mod support;

use glory_hole::clock::now_ms;
use glory_hole::events::Source;
use glory_hole::querylog::{ExportFormat, Labels, LogQuery, LogRow, QueryLog};
use std::io::Write;
use std::sync::Mutex;
use support::heap::{heap_bytes, peak_heap_bytes, reset_peak};
use support::querylog::{config, every_row};
use support::traffic::{self, BLOCK_LIST, CLIENTS, UPSTREAM};

const HOUR: i64 = 3_600_000;

#[global_allocator]
static GLOBAL: support::heap::Counting = support::heap::Counting;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A sink that keeps nothing: counts bytes and lines.
#[derive(Default)]
struct Lines {
    bytes: u64,
    lines: u64,
}

impl Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.bytes += b.len() as u64;
        self.lines += b.iter().filter(|&&c| c == b'\n').count() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn labels() -> Labels {
    Labels::plain(vec![UPSTREAM.to_string()])
}

/// Exports `q` into a counting sink; the lines written and the heap's
/// peak above where the export started.
fn export_peak(log: &QueryLog, q: &LogQuery, format: ExportFormat) -> (u64, i64) {
    let labels = labels();
    let mut sink = Lines::default();
    let before = heap_bytes();
    reset_peak();
    log.export(q, format, &labels, &mut sink).unwrap();
    (sink.lines, peak_heap_bytes() - before)
}

#[test]
fn a_million_rows_export_in_the_heap_of_one_block() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(8192);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    let n = 1_000_000usize;
    let to = now_ms() - HOUR;
    let from = to - 5 * 24 * HOUR;
    for e in traffic::events(42, n, from, to) {
        tx.send(e).unwrap();
    }
    log.flush();
    assert_eq!(log.status().rows, n as u64);
    // A tenth of the range, then all of it: the heap's peak does not grow
    // with the rows.
    let tenth = LogQuery {
        from_ms: Some(to - (to - from) / 10),
        ..LogQuery::default()
    };
    let (lines_tenth, peak_tenth) = export_peak(&log, &tenth, ExportFormat::Jsonl);
    let (lines_all, peak_all) = export_peak(&log, &LogQuery::default(), ExportFormat::Jsonl);
    let (csv_lines, peak_csv) = export_peak(&log, &LogQuery::default(), ExportFormat::Csv);
    println!(
        "querylog_export: heap peak {peak_tenth} B for {lines_tenth} rows, \
         {peak_all} B for {lines_all} rows (JSON lines), {peak_csv} B (CSV)"
    );
    assert!((99_000..=101_000).contains(&lines_tenth), "{lines_tenth}");
    assert_eq!(lines_all, n as u64);
    assert_eq!(csv_lines, n as u64 + 1, "a header and every row");
    // One block's rows, the output buffers and statement caches: well
    // under a megabyte, while the rows themselves are ~100 MB as text.
    for peak in [peak_tenth, peak_all, peak_csv] {
        assert!(peak > 0 && peak < 1 << 20, "heap peak {peak} bytes");
    }
    assert!(
        peak_all < peak_tenth + (64 << 10),
        "ten times the rows, the same heap: {peak_tenth} → {peak_all} bytes"
    );
}

/// A row as the test compares it: time, client, domain, type, status,
/// latency, upstream, rule.
type Tuple = (i64, String, String, String, String, u32, String, String);

fn expected(r: &LogRow) -> Tuple {
    (
        r.time_ms,
        r.client.clone(),
        r.domain.clone(),
        traffic::type_name(r.qtype).to_string(),
        r.status.as_str().to_string(),
        r.latency_us,
        r.upstream.map_or(String::new(), |_| UPSTREAM.to_string()),
        r.reason
            .map_or(String::new(), |_| format!("list #{BLOCK_LIST}")),
    )
}

fn from_csv(bytes: &[u8]) -> Vec<Tuple> {
    let mut r = csv::Reader::from_reader(bytes);
    assert_eq!(
        r.headers().unwrap(),
        vec![
            "time",
            "time_ms",
            "client",
            "domain",
            "type",
            "rcode",
            "status",
            "upstream",
            "latency_us",
            "rule",
            "client_name"
        ]
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[1].parse().unwrap(),
                rec[2].to_string(),
                rec[3].to_string(),
                rec[4].to_string(),
                rec[6].to_string(),
                rec[8].parse().unwrap(),
                rec[7].to_string(),
                rec[9].to_string(),
            )
        })
        .collect()
}

fn from_jsonl(bytes: &[u8]) -> Vec<Tuple> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            (
                v["time_ms"].as_i64().unwrap(),
                s("client"),
                s("domain"),
                s("type"),
                s("status"),
                v["latency_us"].as_u64().unwrap() as u32,
                s("upstream"),
                s("rule"),
            )
        })
        .collect()
}

/// A filter as a test on a stored row.
type RowTest = Box<dyn Fn(&LogRow) -> bool>;

/// Filters as the log page gives them, and the same as a test on a row.
fn filters(rows: &[LogRow]) -> Vec<(LogQuery, RowTest)> {
    let mid = rows.iter().map(|r| r.time_ms).sum::<i64>() / rows.len() as i64;
    vec![
        (LogQuery::default(), Box::new(|_: &LogRow| true)),
        (
            LogQuery {
                client: Some(CLIENTS[4].into()),
                status: Some(Source::Blocked),
                ..LogQuery::default()
            },
            Box::new(|r: &LogRow| r.client == CLIENTS[4] && r.status == Source::Blocked),
        ),
        (
            LogQuery {
                domain: Some("Samsung".into()),
                from_ms: Some(mid),
                ..LogQuery::default()
            },
            Box::new(move |r: &LogRow| r.domain.contains("samsung") && r.time_ms >= mid),
        ),
        (
            LogQuery {
                qtype: Some(28),
                to_ms: Some(mid),
                status: Some(Source::Cache),
                ..LogQuery::default()
            },
            Box::new(move |r: &LogRow| {
                r.qtype == 28 && r.time_ms < mid && r.status == Source::Cache
            }),
        ),
        (
            LogQuery {
                client: Some("10.99.99.99".into()),
                ..LogQuery::default()
            },
            Box::new(|_: &LogRow| false),
        ),
    ]
}

#[test]
fn csv_and_json_lines_read_back_as_the_stored_rows_with_the_filters_applied() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    let to = now_ms() - HOUR;
    for e in traffic::events(9, 20_000, to - 48 * HOUR, to) {
        tx.send(e).unwrap();
    }
    log.flush();
    let rows = every_row(&log);
    assert_eq!(rows.len(), 20_000);
    for (i, (q, test)) in filters(&rows).iter().enumerate() {
        let want: Vec<Tuple> = rows
            .iter()
            .rev()
            .filter(|r| test(r))
            .map(expected)
            .collect();
        for (format, read) in [
            (ExportFormat::Csv, from_csv as fn(&[u8]) -> Vec<Tuple>),
            (ExportFormat::Jsonl, from_jsonl),
        ] {
            let mut out = Vec::new();
            let n = log.export(q, format, &labels(), &mut out).unwrap();
            let got = read(&out);
            assert_eq!(n as usize, got.len());
            let times: Vec<i64> = got.iter().map(|t| t.0).collect();
            assert!(times.is_sorted(), "filter {i}: oldest first");
            let (mut got, mut want) = (got, want.clone());
            got.sort();
            want.sort();
            assert!(
                got == want,
                "filter {i} ({format:?}): {} rows, want {}",
                got.len(),
                want.len()
            );
            if i == 1 || i == 2 {
                assert!(!want.is_empty(), "filter {i} selects some rows");
            }
        }
    }
}

#[test]
fn the_log_export_command_reads_beside_the_running_writer() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    let to = now_ms() - HOUR;
    for e in traffic::events(11, 10_000, to - 24 * HOUR, to) {
        tx.send(e).unwrap();
    }
    log.flush();
    let rows = every_row(&log);
    let db = dir.path().join("querylog.db");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_glory-hole"))
            .args(["log", "export", "--db", db.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--client", CLIENTS[0], "--status", "upstream"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = from_csv(&out.stdout);
    let mut want: Vec<Tuple> = rows
        .iter()
        .filter(|r| r.client == CLIENTS[0] && r.status == Source::Upstream)
        .map(expected)
        // No --config: the upstream by its number.
        .map(|mut t| {
            t.6 = "#0".into();
            t
        })
        .collect();
    got.sort();
    want.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    let out = run(&[
        "--format", "jsonl", "--domain", "tracker", "--qtype", "aaaa",
    ]);
    assert!(out.status.success());
    let got = from_jsonl(&out.stdout);
    let want = rows
        .iter()
        .filter(|r| r.domain.contains("tracker") && r.qtype == 28)
        .count();
    assert_eq!(got.len(), want);
    for (args, says) in [
        (vec!["--status", "exploded"], "--status 'exploded'"),
        (vec!["--from", "yesterday"], "--from 'yesterday'"),
        (vec!["--format", "xlsx"], "format: 'xlsx'"),
        (vec!["--colour", "red"], "unknown option --colour"),
    ] {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
    }
    drop(tx);
}
