//! Bytes the query log writes to flash per query and per day at a
//! household's rate: the real writer (`QueryLog`, default config unless
//! told otherwise) fed paced events, its thread's `write_bytes` read from
//! `/proc/self/task/TID/io` (what the kernel hands the block device for
//! the pages the thread dirtied: the WAL appends of each flush, and the
//! checkpoints it runs). Run by `benches/querylog-flash.sh`.
//!
//!     querylog_flash --dir D --rate 10 --seconds 300 [--flush-secs 60] [--warm 200000] [--names 20000]
//!
//! Traffic: `benches/querylog.sh`'s generator (Zipf, s = 1) over the
//! `--names` most popular of its names: a household asks for some
//! thousands of names a day, not for the benchmark's 300 000.
//! First `--warm` events of the last 24 hours are stored and checkpointed
//! (a log with history: most names are known), then `--rate` events a
//! second are sent for `--seconds`, paced on the wall clock; the writer
//! flushes on its own timer. The count ends when every event sent is
//! stored. Then the writer is made to write the derived rows it holds
//! for the open hour (roll-ups, side tables: written once an hour,
//! `src/querylog/tail.rs`), and those bytes count 24 times a day. A
//! checkpoint comes only after 16 MiB of WAL (hours at these rates), so
//! one is run from here after the window (its bytes scaled to a day like
//! the window's) and one after the hour's end (24 a day): an upper bound,
//! since a real checkpoint comes later and writes a page changed by many
//! flushes once.
//!
//! Not for: CPU or latency (`benches/querylog.sh`).

#[path = "querylog_bench/traffic.rs"]
#[allow(dead_code)]
mod traffic;

use glory_hole::clock::now_ms;
use glory_hole::config::{Config, Dur};
use glory_hole::querylog::QueryLog;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: Option<T>) -> T {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: needs a value")),
        None => default.unwrap_or_else(|| panic!("{name} is required")),
    }
}

/// `write_bytes` of `/proc/self/task/TID/io` for the thread named `name`.
fn thread_write_bytes(name: &str) -> u64 {
    for t in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let dir = t.expect("task entry").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return write_bytes(&dir.join("io"));
        }
    }
    panic!("no thread named {name}");
}

fn write_bytes(io: &Path) -> u64 {
    let text = std::fs::read_to_string(io).unwrap_or_else(|e| panic!("{}: {e}", io.display()));
    text.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("write_bytes in /proc/.../io")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir: PathBuf = arg(&args, "--dir", None);
    let rate: f64 = arg(&args, "--rate", None);
    let seconds: f64 = arg(&args, "--seconds", None);
    let flush_secs: f64 = arg(&args, "--flush-secs", Some(60.0));
    let warm: usize = arg(&args, "--warm", Some(200_000));
    let names: usize = arg(&args, "--names", Some(20_000));

    let mut cfg = Config {
        data_dir: dir.clone(),
        ..Config::default()
    };
    cfg.querylog.flush_interval = Dur(Duration::from_secs_f64(flush_secs));
    let path = cfg.querylog_path();
    let (tx, rx) = std::sync::mpsc::sync_channel(1 << 16);
    let log = QueryLog::open(&cfg, rx).expect("opening the query log");

    // History: `warm` events over the last 24 hours.
    let end = now_ms() - 60_000;
    let step = 86_400_000 / warm.max(1) as i64;
    for (i, mut e) in traffic::Traffic::with_universe(warm, end, names).enumerate() {
        e.time_ms = end - 86_400_000 + i as i64 * step;
        tx.send(e).expect("writer running");
    }
    log.flush();
    let side = rusqlite::Connection::open(&path).expect("second connection");
    side.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint after the warm-up");
    let stored_before = log.status().rows;

    // Paced traffic, the same generator (a different part of it).
    let mut live = traffic::Traffic::with_universe(usize::MAX, end, names).skip(warm);
    let before = thread_write_bytes("querylog-writer");
    let t0 = Instant::now();
    let total = (rate * seconds).round() as u64;
    for n in 0..total {
        let due = t0 + Duration::from_secs_f64(n as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut e = live.next().expect("endless traffic");
        e.time_ms = now_ms();
        tx.send(e).expect("writer running");
    }
    if let Some(wait) =
        (t0 + Duration::from_secs_f64(seconds)).checked_duration_since(Instant::now())
    {
        std::thread::sleep(wait);
    }
    // Every event sent stored by the writer's own timer (a flush
    // interval at most), polled with a deadline.
    let deadline = Instant::now() + Duration::from_secs_f64(flush_secs * 2.0 + 30.0);
    while log.status().rows < stored_before + total {
        assert!(
            Instant::now() < deadline,
            "the writer did not store the events"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let flushes = thread_write_bytes("querylog-writer") - before;
    let checkpoint = || -> u64 {
        let io_self = Path::new("/proc/thread-self/io");
        let c0 = write_bytes(io_self);
        let (busy, frames, copied): (i64, i64, i64) = side
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("checkpoint");
        assert!(
            busy == 0 && frames == copied,
            "checkpoint: busy {busy}, {copied} of {frames} frames"
        );
        write_bytes(io_self) - c0
    };
    let checkpoint_window = checkpoint();
    // The derived rows (roll-ups, side tables) the writer holds for the
    // open hour and writes once when it ends: written now, as at an
    // hour's end, and counted 24 times a day, with their checkpoint.
    let b0 = thread_write_bytes("querylog-writer");
    log.flush();
    let close = thread_write_bytes("querylog-writer") - b0;
    let checkpoint_close = checkpoint();

    let per_day = |b: u64| b as f64 / elapsed * 86_400.0 / 1e6;
    let day = per_day(flushes) + 24.0 * close as f64 / 1e6;
    let all = day + per_day(checkpoint_window) + 24.0 * checkpoint_close as f64 / 1e6;
    let per_query = |mb: f64| mb * 1e6 / (rate * 86_400.0);
    println!(
        "rate {rate}/s, {names} names, {total} queries in {elapsed:.0} s, flush every {flush_secs} s: \
         writer {flushes} B, hour's end {close} B (24 a day): {:.0} B/query, {day:.1} MB/day; \
         checkpoints {checkpoint_window} B after the window, {checkpoint_close} B after the hour's end; \
         total {:.0} B/query, {all:.1} MB/day",
        per_query(day),
        per_query(all),
    );
    drop(log);
}
