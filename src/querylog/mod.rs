//! The query log: every answered query kept for weeks in SQLite on flash,
//! the latest ones in a RAM ring, and the questions the dashboard and the
//! log page ask, answered from roll-ups and indexes in milliseconds.
//!
//! The DNS path never waits on it: it emits [`QueryEvent`]s into a bounded
//! channel (`events::EventSink`); one writer thread (`writer.rs`) batches
//! them into transactions, stores the rows in blocks of up to a thousand
//! (`block.rs`: one SQLite row per block, not per query), maintains the
//! roll-ups, applies retention in small chunks and survives a full disk or
//! a damaged file. Readers use their own read-only connections (WAL), so a
//! slow page never blocks the writer. `stats.rs` holds the queries,
//! `schema.rs` the migrations.
//!
//! Stored rows keep the upstream as its index in the configured list and
//! the deciding rule as the packed `events::Reason` (kind, id, CNAME depth);
//! the web layer turns both into words with the config and the filter
//! snapshot it already holds (`filter::Filter::describe`), so the log never
//! stores a rule's text per row.
//!
//! Not for: deciding anything about a query, or metrics counters.

mod block;
pub mod cli;
mod domain_counts;
mod export;
mod live;
mod names;
mod pace;
mod prefetch;
mod range_top;
mod retention;
mod rollup;
mod scan;
mod schema;
mod sketch;
mod slow;
mod stats;
mod tail;
mod vtab;
mod words;
mod writer;

pub use export::{COLUMNS as EXPORT_COLUMNS, ExportFormat};
pub use range_top::TopDomains;
pub use rollup::TOP_PER_HOUR;
pub use scan::statements as scan_plans;
pub use schema::{MIGRATIONS, OpenError, latest_version, migrate_to};
pub use slow::{SLOW_PER_HOUR, UpstreamLatency};
pub use stats::{LOG_SCAN_BUDGET, query_plans};
pub use vtab::open as open_sql;
pub use words::{Labels, RowWords, parse_sql_time, qtype_code, qtype_name, source_of, sql_time};

use crate::config::{Config, QueryLogConfig};
use crate::events::{EventReceiver, EventSink, Source};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Row keys count from here (2024-01-01 UTC), which keeps a key in 7 bytes.
pub const EPOCH_MS: i64 = 1_704_067_200_000;
/// Sub-millisecond sequence bits of a row key: 256 rows per millisecond
/// before keys run ahead of the clock.
pub const SEQ_BITS: u32 = 8;

/// The row key (and rowid) of the first row at or after `ms`.
pub fn key_of(ms: i64) -> i64 {
    ms.saturating_sub(EPOCH_MS) << SEQ_BITS
}

/// The time of a row key, in Unix milliseconds.
pub fn ms_of(key: i64) -> i64 {
    (key >> SEQ_BITS) + EPOCH_MS
}

/// A domain's name by id (`EXPLAIN QUERY PLAN` checked in `stats.rs`).
const DOMAIN_NAME_SQL: &str = "SELECT name FROM domains WHERE id = ?1";

/// The names of `(domain id, value)` pairs, in their order; an id whose
/// name is gone (retention forgot it since) is left out.
fn named<T>(
    c: &Connection,
    ids: impl IntoIterator<Item = (i64, T)>,
) -> rusqlite::Result<Vec<(String, T)>> {
    use rusqlite::OptionalExtension;
    let mut name = c.prepare_cached(DOMAIN_NAME_SQL)?;
    let mut out = Vec::new();
    for (id, v) in ids {
        if let Some(s) = name.query_row([id], |r| r.get::<_, String>(0)).optional()? {
            out.push((s, v));
        }
    }
    Ok(out)
}

/// One logged query, as the log page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRow {
    pub time_ms: i64,
    pub client: String,
    pub domain: String,
    pub qtype: u16,
    pub rcode: u8,
    pub status: Source,
    /// Index into the configured upstream list.
    pub upstream: Option<u8>,
    pub latency_us: u32,
    /// The filter decision, for `filter::Filter::describe`.
    pub reason: Option<RuleRef>,
}

/// `events::Reason` as stored: which rule or list decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub kind: u8,
    pub id: u32,
    pub cname_depth: u8,
}

impl RuleRef {
    fn pack(self) -> i64 {
        (i64::from(self.id) << 16) | (i64::from(self.kind) << 8) | i64::from(self.cname_depth)
    }
    fn unpack(v: i64) -> RuleRef {
        RuleRef {
            id: (v >> 16) as u32,
            kind: (v >> 8) as u8,
            cname_depth: v as u8,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub total: u64,
    pub blocked: u64,
    /// Answered from the cache, including stale answers.
    pub cached: u64,
    pub forwarded: u64,
    pub local: u64,
    /// Refused or failed.
    pub failed: u64,
    pub percent_blocked: f64,
    pub avg_latency_us: f64,
    /// Distinct clients and domains seen in the hours the range touches
    /// (domains estimated within a few per cent).
    pub unique_clients: u64,
    pub unique_domains: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bucket {
    pub start_ms: i64,
    pub total: u64,
    /// Not blocked: total - blocked.
    pub allowed: u64,
    pub blocked: u64,
    pub cached: u64,
}

/// A log page request; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogQuery {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Substring of the domain name.
    pub domain: Option<String>,
    /// Client address, exactly as shown in the log.
    pub client: Option<String>,
    pub status: Option<Source>,
    pub qtype: Option<u16>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Rows per page (default 100, at most 1000).
    pub limit: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogPage {
    /// Newest first.
    pub rows: Vec<LogRow>,
    /// Pass back as `cursor` for older rows; `None`: nothing older matches.
    /// A page can hold fewer than `limit` rows and still have a cursor: a
    /// filter no index serves looks at a bounded number of rows per page.
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientActivity {
    pub client: String,
    pub total: u64,
    pub blocked: u64,
    /// One bucket per hour of the range that has queries.
    pub hourly: Vec<Bucket>,
    /// The client's most queried domains among its latest
    /// `top_domains_rows` queries in the range.
    pub top_domains: Vec<(String, u64)>,
    pub top_domains_rows: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogStatus {
    pub enabled: bool,
    pub path: String,
    pub schema_version: u32,
    pub rows: u64,
    /// Database plus WAL on disk.
    pub file_bytes: u64,
    /// Events the DNS side dropped because the channel was full.
    pub dropped_events: u64,
    /// Events received but not stored (disk full, write errors).
    pub dropped_rows: u64,
    pub last_flush_ms: Option<i64>,
    /// Logging is paused (disk full); DNS keeps answering.
    pub paused: bool,
    /// Something the user should know: disk full, a damaged file moved aside.
    pub warning: Option<String>,
    /// The longest single retention step so far: inserts wait at most this.
    pub max_retention_step_ms: f64,
    /// The most RAM the writer's caches and summaries held (bounded by
    /// constants, not by the traffic; SQLite's page cache comes on top).
    pub writer_ram_bytes: u64,
}

/// What one full retention pass did (see [`QueryLog::run_retention`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RetentionReport {
    pub deleted_rows: u64,
    pub steps: u64,
    /// The longest step: an insert batch waits at most this long.
    pub max_step_ms: f64,
    /// The most CPU time one step used (wall time above includes waiting
    /// for a CPU on a busy machine).
    pub max_step_cpu_ms: f64,
    /// The longest deleting step (rows, their roll-ups, unused names).
    pub max_delete_step_ms: f64,
    /// The longest incremental-vacuum step.
    pub max_vacuum_step_ms: f64,
    /// The longest batch write while the pass ran.
    pub max_batch_ms: f64,
    pub total_ms: f64,
    pub vacuumed_pages: u64,
}

enum Command {
    Flush(mpsc::SyncSender<()>),
    Config(Box<QueryLogConfig>, mpsc::SyncSender<()>),
    Retain(mpsc::SyncSender<RetentionReport>),
    PageLimit(Option<u64>, mpsc::SyncSender<()>),
    Shutdown,
}

/// State the writer publishes and the API reads.
struct Shared {
    path: PathBuf,
    enabled: bool,
    ring: Mutex<live::Ring>,
    status: Mutex<LogStatus>,
    /// Bumped when the database file is replaced, so pooled readers reopen.
    generation: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The query log. Share it as `Arc<QueryLog>`; dropping the last handle
/// flushes and stops the writer.
pub struct QueryLog {
    shared: Arc<Shared>,
    commands: Sender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<(u64, Vec<Connection>)>,
    names: Mutex<stats::Names>,
    sink: Mutex<Option<EventSink>>,
}

impl QueryLog {
    /// Opens (or creates) the database at `cfg.querylog_path()` and starts
    /// the writer on `events`. A damaged file is moved aside and replaced
    /// (see `status().warning`); a database from a newer, incompatible
    /// build is an error. With `querylog.enabled = false` nothing touches
    /// the disk and only the RAM ring is kept.
    pub fn open(cfg: &Config, events: impl Into<EventReceiver>) -> anyhow::Result<Arc<QueryLog>> {
        let events = events.into();
        let qcfg = cfg.querylog.clone();
        let path = cfg.querylog_path();
        let shared = Arc::new(Shared {
            path: path.clone(),
            enabled: qcfg.enabled,
            ring: Mutex::new(live::Ring::new(qcfg.ring_size)),
            status: Mutex::new(LogStatus {
                enabled: qcfg.enabled,
                path: path.display().to_string(),
                ..LogStatus::default()
            }),
            generation: AtomicU64::new(0),
        });
        let writer = writer::Writer::open(qcfg, shared.clone())?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("querylog-writer".into())
            .spawn(move || {
                crate::priority::background_thread();
                writer.run(events, rx)
            })?;
        Ok(Arc::new(QueryLog {
            shared,
            commands: tx,
            thread: Mutex::new(Some(thread)),
            readers: Mutex::new((0, Vec::new())),
            names: Mutex::new(stats::Names::default()),
            sink: Mutex::new(None),
        }))
    }

    /// Lets `status()` report the events the DNS side dropped.
    pub fn attach_sink(&self, sink: EventSink) {
        *lock(&self.sink) = Some(sink);
    }

    /// Stores everything received so far, now.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.commands.send(Command::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Runs a full retention pass now (by age, then by size) and waits for
    /// it; the writer keeps storing rows between its steps.
    pub fn run_retention(&self) -> RetentionReport {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.commands.send(Command::Retain(tx)).is_ok() {
            rx.recv().unwrap_or_default()
        } else {
            RetentionReport::default()
        }
    }

    /// Caps the database at `pages` pages (SQLite `max_page_count`), as a
    /// disk that fills up would; `None` lifts the cap. Tests use it to
    /// exercise the disk-full path.
    pub fn set_page_limit(&self, pages: Option<u64>) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.commands.send(Command::PageLimit(pages, tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Live changes: flush interval, retention, size cap, ring size, privacy.
    /// Applies before the next event is taken.
    pub fn set_config(&self, cfg: &QueryLogConfig) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self
            .commands
            .send(Command::Config(Box::new(cfg.clone()), tx))
            .is_ok()
        {
            let _ = rx.recv();
        }
    }

    /// The latest `n` queries, newest first, including rows not yet on disk.
    pub fn recent(&self, n: usize) -> Vec<LogRow> {
        lock(&self.shared.ring).recent(n)
    }

    pub fn status(&self) -> LogStatus {
        let mut s = lock(&self.shared.status).clone();
        if let Some(sink) = lock(&self.sink).as_ref() {
            s.dropped_events = sink.dropped();
        }
        s.file_bytes = [
            self.shared.path.clone(),
            crate::atomic_file::with_suffix(&self.shared.path, "-wal"),
        ]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
        s
    }

    pub fn summary(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<Summary> {
        self.read(|c| stats::summary(c, from_ms, to_ms))
    }

    pub fn time_series(
        &self,
        from_ms: i64,
        to_ms: i64,
        buckets: usize,
    ) -> anyhow::Result<Vec<Bucket>> {
        self.read(|c| stats::time_series(c, from_ms, to_ms, buckets))
    }

    pub fn top_domains(
        &self,
        from_ms: i64,
        to_ms: i64,
        n: usize,
        blocked_only: bool,
    ) -> anyhow::Result<TopDomains> {
        self.read(|c| range_top::top_domains(c, from_ms, to_ms, n, blocked_only))
    }

    pub fn top_clients(
        &self,
        from_ms: i64,
        to_ms: i64,
        n: usize,
    ) -> anyhow::Result<Vec<(String, u64)>> {
        self.read(|c| stats::top_clients(c, from_ms, to_ms, n))
    }

    pub fn query_types(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<Vec<(u16, u64)>> {
        self.read(|c| stats::query_types(c, from_ms, to_ms))
    }

    /// The `n` domains (at most [`SLOW_PER_HOUR`]) with the slowest single
    /// answers in the hours the range touches, and that latency in µs.
    pub fn slowest_domains(
        &self,
        from_ms: i64,
        to_ms: i64,
        n: usize,
    ) -> anyhow::Result<Vec<(String, u32)>> {
        self.read(|c| slow::slowest_domains(c, from_ms, to_ms, n))
    }

    /// Each upstream's answers, average and slowest latency, in the hours
    /// the range touches.
    pub fn upstream_latency(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> anyhow::Result<Vec<UpstreamLatency>> {
        self.read(|c| slow::upstream_latency(c, from_ms, to_ms))
    }

    pub fn search(&self, q: &LogQuery) -> anyhow::Result<LogPage> {
        let generation = self.shared.generation.load(Ordering::Acquire);
        self.read(|c| stats::search(c, q, &mut lock(&self.names), generation))
    }

    pub fn client_activity(
        &self,
        client: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> anyhow::Result<ClientActivity> {
        self.read(|c| stats::client_activity(c, client, from_ms, to_ms))
    }

    /// Writes every stored row `q` selects to `out` as `format`, oldest
    /// first, block by block (`export.rs`); stores what was received first,
    /// so the export reaches the moment it was asked for.
    pub fn export(
        &self,
        q: &LogQuery,
        format: ExportFormat,
        labels: &Labels,
        out: &mut dyn std::io::Write,
    ) -> anyhow::Result<u64> {
        self.read(|_| Ok(()))?;
        self.flush();
        // Its own connection: a long export must not hold a pooled one.
        let conn = schema::open_reader(&self.shared.path)?;
        export::write(conn, q, format, labels, out)
    }

    /// Runs `f` on a pooled read-only connection.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> anyhow::Result<T>) -> anyhow::Result<T> {
        if !self.shared.enabled {
            anyhow::bail!(
                "the query log is disabled (querylog.enabled = false): only the live view is kept"
            );
        }
        let generation = self.shared.generation.load(Ordering::Acquire);
        let conn = {
            let mut pool = lock(&self.readers);
            if pool.0 != generation {
                *pool = (generation, Vec::new());
            }
            pool.1.pop()
        };
        let conn = match conn {
            Some(c) => c,
            None => schema::open_reader(&self.shared.path)?,
        };
        let out = f(&conn);
        let mut pool = lock(&self.readers);
        if pool.0 == generation && pool.1.len() < 4 {
            pool.1.push(conn);
        }
        out
    }
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

/// The client address as stored: with `anonymize_clients`, the host part is
/// zeroed (IPv4 /24, IPv6 /48), as AdGuard Home does.
fn stored_client(ip: IpAddr, anonymize: bool) -> IpAddr {
    let ip = crate::config::canonical_ip(ip);
    if !anonymize {
        return ip;
    }
    match ip {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & 0xFFFF_FF00).into()),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 80) - 1)).into()),
    }
}

/// Stored in place of the name with `hide_domains`.
pub const HIDDEN_DOMAIN: &str = "(hidden)";
