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
//! checkpoint comes only after 32 MiB of WAL (a day or more at these rates), so
//! one is run from here after the window (its bytes scaled to a day like
//! the window's) and one after the hour's end (24 a day): an upper bound,
//! since a real checkpoint comes later and writes a page changed by many
//! flushes once.
//!
//! `--speedup K` runs a whole day instead, in compressed time: the events
//! carry a day of timestamps and are fed K times faster, the writer
//! flushes every `--flush-secs`/K seconds, and a thread calls `fdatasync`
//! on the database, its WAL and its wal-index as soon as each commit has
//! ended, as the kernel's writeback does within 30 s, before the next
//! real flush (so a page a flush dirties again is counted again, as it
//! is in real time). The writer's
//! `write_bytes` over that day holds every flush, the 24 hours' ends and
//! the checkpoints the writer runs itself (after 32 MiB of WAL); a last
//! checkpoint of what the WAL still holds is added (an upper bound for
//! it: the writer would fold it into its next one).
//!
//!     querylog_flash --dir D --rate 10 --speedup 120 [--flush-secs 60] [--warm N] [--names N]
//!
//! Not for: CPU or latency (`benches/querylog.sh`).

#[path = "querylog_bench/traffic.rs"]
#[allow(dead_code)]
mod traffic;

use glory_hole::atomic_file::with_suffix;
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
    let flush_secs: f64 = arg(&args, "--flush-secs", Some(60.0));
    let warm: usize = arg(&args, "--warm", Some(200_000));
    let names: usize = arg(&args, "--names", Some(20_000));

    if let Some(i) = args.iter().position(|a| a == "--speedup") {
        let speedup: f64 = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .filter(|k| *k >= 1.0)
            .expect("--speedup: needs a factor of at least 1");
        let day = Day {
            rate,
            speedup,
            flush_secs,
            warm,
            names,
        };
        return compressed_day(&dir, &day);
    }

    // History: `warm` events over the last 24 hours.
    let end = now_ms() - 60_000;
    let h = History::open(&dir, flush_secs, warm, names, end - 86_400_000, end);
    let stored_before = h.log.status().rows;

    // Paced traffic, the same generator (a different part of it).
    let seconds: f64 = arg(&args, "--seconds", None);
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
        h.tx.send(e).expect("writer running");
    }
    if let Some(wait) =
        (t0 + Duration::from_secs_f64(seconds)).checked_duration_since(Instant::now())
    {
        std::thread::sleep(wait);
    }
    // Every event sent stored by the writer's own timer (a flush
    // interval at most).
    h.wait_stored(
        stored_before + total,
        Duration::from_secs_f64(flush_secs * 2.0 + 30.0),
    );
    let elapsed = t0.elapsed().as_secs_f64();
    let flushes = thread_write_bytes("querylog-writer") - before;
    let checkpoint_window = h.checkpoint();
    // The derived rows (roll-ups, side tables) the writer holds for the
    // open hour and writes once when it ends: written now, as at an
    // hour's end, and counted 24 times a day, with their checkpoint.
    let b0 = thread_write_bytes("querylog-writer");
    h.log.flush();
    let close = thread_write_bytes("querylog-writer") - b0;
    let checkpoint_close = h.checkpoint();

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
    drop(h);
}

/// A query log holding `warm` events between `from` and `to` (ms), all
/// stored and checkpointed.
struct History {
    log: std::sync::Arc<QueryLog>,
    tx: std::sync::mpsc::SyncSender<glory_hole::events::QueryEvent>,
    /// A second connection, for checkpoints run from here.
    side: rusqlite::Connection,
    path: PathBuf,
}

impl History {
    fn open(dir: &Path, flush_secs: f64, warm: usize, names: usize, from: i64, to: i64) -> History {
        let mut cfg = Config {
            data_dir: dir.to_owned(),
            ..Config::default()
        };
        cfg.querylog.flush_interval = Dur(Duration::from_secs_f64(flush_secs));
        let path = cfg.querylog_path();
        let (tx, rx) = std::sync::mpsc::sync_channel(1 << 16);
        let log = QueryLog::open(&cfg, rx).expect("opening the query log");
        let step = (to - from) / warm.max(1) as i64;
        for (i, mut e) in traffic::Traffic::with_universe(warm, to, names).enumerate() {
            e.time_ms = from + i as i64 * step;
            tx.send(e).expect("writer running");
        }
        log.flush();
        let side = rusqlite::Connection::open(&path).expect("second connection");
        side.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint after the warm-up");
        History {
            log,
            tx,
            side,
            path,
        }
    }

    /// Bytes this thread writes to run a checkpoint of everything the WAL
    /// holds.
    fn checkpoint(&self) -> u64 {
        let io_self = Path::new("/proc/thread-self/io");
        let c0 = write_bytes(io_self);
        let (busy, frames, copied): (i64, i64, i64) = self
            .side
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("checkpoint");
        assert!(
            busy == 0 && frames == copied,
            "checkpoint: busy {busy}, {copied} of {frames} frames"
        );
        write_bytes(io_self) - c0
    }

    /// Polls until the writer has stored `rows` in all.
    fn wait_stored(&self, rows: u64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.log.status().rows < rows {
            assert!(
                Instant::now() < deadline,
                "the writer did not store the events"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `--speedup`'s run.
struct Day {
    rate: f64,
    speedup: f64,
    flush_secs: f64,
    warm: usize,
    names: usize,
}

/// A day of traffic at `day.rate` (virtual time), fed `day.speedup` times
/// faster than real time; see the module doc.
fn compressed_day(dir: &Path, day: &Day) {
    const DAY_MS: i64 = 86_400_000;
    let k = day.speedup;
    // The day ends a minute ago; its history is the day before.
    let start = now_ms() - 60_000 - DAY_MS;
    let flush = day.flush_secs / k;
    let h = History::open(dir, flush, day.warm, day.names, start - DAY_MS, start);
    let stored_before = h.log.status().rows;

    // The kernel's writeback: in real time it writes a commit's pages
    // back within 30 s, before the next flush dirties them again; here
    // the files are synced as soon as each commit has ended.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writeback = {
        let stop = stop.clone();
        let log = h.log.clone();
        let files = [
            h.path.clone(),
            with_suffix(&h.path, "-wal"),
            with_suffix(&h.path, "-shm"),
        ];
        std::thread::spawn(move || {
            // WAL restarts seen (its header's checkpoint sequence number
            // changing): the checkpoints the writer ran.
            let mut restarts = 0u32;
            let mut seq = None;
            let mut last = None;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let st = log.status();
                let commit = (st.rows, st.last_flush_ms);
                if last != Some(commit) {
                    last = Some(commit);
                    for f in &files {
                        if let Ok(file) = std::fs::File::open(f) {
                            let _ = file.sync_data();
                        }
                    }
                    if let Some(now) = wal_checkpoint_seq(&files[1]) {
                        if seq.is_some_and(|s| s != now) {
                            restarts += 1;
                        }
                        seq = Some(now);
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            restarts
        })
    };

    let before = thread_write_bytes("querylog-writer");
    let total = (day.rate * 86_400.0).round() as u64;
    let mut live =
        traffic::Traffic::with_universe(usize::MAX, start + DAY_MS, day.names).skip(day.warm);
    let t0 = Instant::now();
    for n in 0..total {
        let virtual_secs = n as f64 / day.rate;
        let due = t0 + Duration::from_secs_f64(virtual_secs / k);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut e = live.next().expect("endless traffic");
        e.time_ms = start + (virtual_secs * 1000.0) as i64;
        h.tx.send(e).expect("writer running");
    }
    h.wait_stored(
        stored_before + total,
        Duration::from_secs_f64(flush * 2.0 + 30.0),
    );
    let written = thread_write_bytes("querylog-writer") - before;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let restarts = writeback.join().expect("writeback thread");
    let last = h.checkpoint();
    let mb = |b: u64| b as f64 / 1e6;
    let per_query = |b: u64| b as f64 / total as f64;
    println!(
        "rate {}/s, {} names, a day in {:.0} s ({k}x), flush every {} s: \
         writer {written} B over the day ({total} queries, {restarts} checkpoints), \
         last checkpoint {last} B: {:.0} B/query, {:.1} MB/day",
        day.rate,
        day.names,
        t0.elapsed().as_secs_f64(),
        day.flush_secs,
        per_query(written + last),
        mb(written + last),
    );
}

/// The checkpoint sequence number in a WAL file's header (None: no header).
fn wal_checkpoint_seq(wal: &Path) -> Option<u32> {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(wal).ok()?.read_exact(&mut head).ok()?;
    Some(u32::from_be_bytes(
        head[12..16].try_into().expect("4 bytes"),
    ))
}
