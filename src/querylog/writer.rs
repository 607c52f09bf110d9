//! The writer thread: the only connection that writes. It turns query
//! events into rows in batched transactions, keeps the roll-ups and the RAM
//! ring, deletes old rows in small steps, and keeps going when the disk
//! fills up or the file turns out to be damaged.
//!
//! Not for: answering questions (`stats.rs`).

use super::schema::{self, OpenError};
use super::sketch::Sketch;
use super::{Command, LogRow, RetentionReport, RuleRef, Shared, lock, stats};
use crate::config::QueryLogConfig;
use crate::events::{EventReceiver, QueryEvent, Source, now_ms};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

/// A batch is written once it holds this many rows (or the flush interval
/// has passed).
pub const BATCH_ROWS: usize = 4096;
/// Rows deleted per retention step: one step is one short transaction, so
/// a pending batch waits at most this long.
pub const RETENTION_STEP_ROWS: i64 = 1000;
/// Pages returned to the file system per incremental-vacuum step.
const VACUUM_STEP_PAGES: i64 = 128;
/// Unused names forgotten per retention step.
const NAMES_STEP: i64 = 1000;
/// How often retention checks age and size on its own.
const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// Interned names kept in RAM; beyond that the cache starts over.
const INTERN_CACHE: usize = 200_000;
/// The longest the loop sleeps before looking at commands again.
/// How long the writer sleeps when the event channel is empty.
const POLL: Duration = Duration::from_millis(10);
const TICK: Duration = Duration::from_millis(20);

pub(super) struct Writer {
    cfg: QueryLogConfig,
    shared: Arc<Shared>,
    conn: Option<Connection>,
    pending: Vec<QueryEvent>,
    /// name -> (id, last day recorded in `domains.last_seen`)
    domains: HashMap<Box<str>, (i64, i64)>,
    clients: HashMap<IpAddr, i64>,
    last_key: i64,
    newest_hour: i64,
    /// Hours whose domain roll-up still holds every domain.
    open_hours: BTreeSet<i64>,
    sketches: HashMap<i64, Sketch>,
    last_flush: Instant,
    /// Set while the disk is full: retry at this instant.
    paused_until: Option<Instant>,
    page_limit: Option<u64>,
    retention: Option<Pass>,
    last_retention: Instant,
    /// The newest day whose day roll-ups are written.
    closed_day: Option<i64>,
}

enum Step {
    Delete,
    Vacuum,
}

/// A retention pass in progress.
struct Pass {
    started: Instant,
    report: RetentionReport,
    waiting: Vec<SyncSender<RetentionReport>>,
}

/// CPU time of the calling thread, in ms: step costs that a busy machine's
/// scheduling does not inflate.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

fn is_code(e: &rusqlite::Error, code: ErrorCode) -> bool {
    e.sqlite_error_code() == Some(code)
}

/// `path` with `suffix` appended to its file name (`-wal`, `-shm`).
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Moves a damaged database (and its WAL) out of the way; returns where.
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let aside = sibling(path, &format!(".corrupt-{}", now_ms()));
    std::fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let from = sibling(path, suffix);
        if from.exists() {
            let _ = std::fs::rename(&from, sibling(&aside, suffix));
        }
    }
    Ok(aside)
}

pub(super) fn row_of_event(e: &QueryEvent) -> LogRow {
    LogRow {
        time_ms: e.time_ms,
        client: e.client.to_string(),
        domain: e.qname.to_string(),
        qtype: e.qtype,
        rcode: e.rcode,
        status: e.source,
        upstream: (e.upstream != u8::MAX).then_some(e.upstream),
        latency_us: e.latency_us,
        reason: (e.reason.kind != 0).then_some(RuleRef {
            kind: e.reason.kind,
            id: e.reason.id,
            cname_depth: e.reason.cname_depth,
        }),
    }
}

/// Per-batch roll-up deltas.
#[derive(Default)]
struct Rollup {
    /// By minute / hour: one count per `Source`, then the latency sum.
    minutes: HashMap<i64, [i64; 8]>,
    hours: HashMap<i64, [i64; 8]>,
    domains: HashMap<(bool, i64, i64), i64>,
    clients: HashMap<(i64, i64), (i64, i64)>,
    qtypes: HashMap<(i64, u16), i64>,
}

impl Writer {
    pub(super) fn open(cfg: QueryLogConfig, shared: Arc<Shared>) -> anyhow::Result<Writer> {
        let mut w = Writer {
            cfg,
            shared,
            conn: None,
            pending: Vec::with_capacity(BATCH_ROWS),
            domains: HashMap::new(),
            clients: HashMap::new(),
            last_key: i64::MIN,
            newest_hour: i64::MIN,
            open_hours: BTreeSet::new(),
            sketches: HashMap::new(),
            last_flush: Instant::now(),
            paused_until: None,
            page_limit: None,
            retention: None,
            last_retention: Instant::now(),
            closed_day: None,
        };
        if w.cfg.enabled {
            w.open_db()?;
        }
        Ok(w)
    }

    /// Opens the database, moving a damaged one aside.
    fn open_db(&mut self) -> anyhow::Result<()> {
        let path = self.shared.path.clone();
        let conn = match schema::open_writer(&path).and_then(|c| self.sanity(c)) {
            Ok(c) => c,
            Err(OpenError::Corrupt { detail, .. }) => {
                let aside = move_aside(&path).map_err(|e| {
                    anyhow::anyhow!(
                        "query log {}: damaged ({detail}) and cannot be moved aside: {e}",
                        path.display()
                    )
                })?;
                let note = format!(
                    "the query log database was damaged ({detail}); it was moved to {} and a new one started",
                    aside.display()
                );
                tracing::warn!("{note}");
                lock(&self.shared.status).warning = Some(note);
                self.shared.generation.fetch_add(1, Ordering::AcqRel);
                schema::open_writer(&path)?
            }
            Err(e) => return Err(e.into()),
        };
        self.last_key = conn
            .query_row("SELECT max(id) FROM queries", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .unwrap_or(i64::MIN);
        let rows: i64 = conn.query_row("SELECT value FROM meta WHERE key = 'rows'", [], |r| {
            r.get(0)
        })?;
        {
            let mut st = lock(&self.shared.status);
            st.rows = rows.max(0) as u64;
            st.schema_version = schema::current_version(&conn)?;
        }
        self.domains.clear();
        self.clients.clear();
        self.sketches.clear();
        self.open_hours.clear();
        // Hours and days the previous run left open close as new events come.
        self.newest_hour = conn
            .query_row("SELECT max(hour) FROM hour_counts", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .unwrap_or(i64::MIN);
        if self.newest_hour != i64::MIN {
            let mut st = conn.prepare("SELECT hour FROM hour_counts WHERE hour >= ?1")?;
            let hours = st.query_map([self.newest_hour - 2], |r| r.get::<_, i64>(0))?;
            for h in hours {
                self.open_hours.insert(h?);
            }
        }
        self.closed_day = conn.query_row("SELECT max(day) FROM day_sketches", [], |r| r.get(0))?;
        self.conn = Some(conn);
        if let Some(pages) = self.page_limit {
            self.apply_page_limit(Some(pages));
        }
        Ok(())
    }

    /// Touches the pages a writer needs first, so a damaged file is found at
    /// startup rather than on the first batch.
    fn sanity(&self, conn: Connection) -> Result<Connection, OpenError> {
        let check = conn
            .query_row("SELECT max(id) FROM queries", [], |_| Ok(()))
            .and_then(|_| conn.query_row("SELECT count(*) FROM meta", [], |_| Ok(())));
        match check {
            Ok(()) => Ok(conn),
            Err(e)
                if is_code(&e, ErrorCode::DatabaseCorrupt)
                    || is_code(&e, ErrorCode::NotADatabase) =>
            {
                Err(OpenError::Corrupt {
                    path: self.shared.path.clone(),
                    detail: e.to_string(),
                })
            }
            Err(e) => Err(OpenError::Other {
                path: self.shared.path.clone(),
                source: e.into(),
            }),
        }
    }

    pub(super) fn run(mut self, events: EventReceiver, commands: Receiver<Command>) {
        let mut events_open = true;
        loop {
            loop {
                match commands.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                        events.try_iter().for_each(|e| self.accept(e));
                        self.flush();
                        return;
                    }
                    Ok(Command::Flush(ack)) => {
                        // Everything sent before the flush call is stored by it
                        // (bounded, should the channel never run dry).
                        for _ in 0..64 {
                            let mut took = 0;
                            while self.pending.len() < BATCH_ROWS {
                                match events.try_recv() {
                                    Ok(e) => {
                                        self.accept(e);
                                        took += 1;
                                    }
                                    Err(_) => break,
                                }
                            }
                            self.flush();
                            if took == 0 {
                                break;
                            }
                        }
                        let _ = ack.send(());
                    }
                    Ok(c) => self.command(c),
                    Err(TryRecvError::Empty) => break,
                }
            }
            let wait = self
                .flush_interval()
                .saturating_sub(self.last_flush.elapsed())
                .min(TICK);
            let busy = self.retention.is_some();
            if events_open {
                let first = if busy {
                    events.try_recv().map_err(|e| match e {
                        TryRecvError::Empty => RecvTimeoutError::Timeout,
                        TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                    })
                } else {
                    // Poll, never park on the channel: a parked receiver
                    // makes every DNS worker's send a futex wake-up and a
                    // context switch, which costs more than the answer.
                    match events.try_recv() {
                        Ok(e) => Ok(e),
                        Err(TryRecvError::Empty) => {
                            std::thread::sleep(wait.min(POLL));
                            Err(RecvTimeoutError::Timeout)
                        }
                        Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                    }
                };
                match first {
                    Ok(e) => {
                        self.accept(e);
                        while self.pending.len() < BATCH_ROWS {
                            match events.try_recv() {
                                Ok(e) => self.accept(e),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => events_open = false,
                }
            } else if !busy {
                std::thread::sleep(wait);
            }
            if self.pending.len() >= BATCH_ROWS
                || (!self.pending.is_empty() && self.last_flush.elapsed() >= self.flush_interval())
            {
                self.flush();
            }
            if self.retention.is_none() && self.last_retention.elapsed() >= RETENTION_EVERY {
                self.start_retention(None);
            }
            if self.retention.is_some() {
                self.retention_step();
            }
        }
    }

    fn flush_interval(&self) -> Duration {
        self.cfg.flush_interval.0.max(Duration::from_millis(10))
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Flush(ack) => {
                self.flush();
                let _ = ack.send(());
            }
            Command::Config(cfg, ack) => {
                lock(&self.shared.ring).cap = cfg.ring_size;
                if cfg.anonymize_clients != self.cfg.anonymize_clients {
                    self.clients.clear();
                }
                self.cfg = *cfg;
                let _ = ack.send(());
            }
            Command::Retain(ack) => self.start_retention(Some(ack)),
            Command::PageLimit(pages, ack) => {
                self.page_limit = pages;
                self.apply_page_limit(pages);
                // Let a paused writer try again at once.
                self.paused_until = self.paused_until.map(|_| Instant::now());
                let _ = ack.send(());
            }
            Command::Shutdown => {}
        }
    }

    fn apply_page_limit(&self, pages: Option<u64>) {
        if let Some(conn) = &self.conn {
            // 2^32 - 2 pages is SQLite's own ceiling.
            let pages = pages.unwrap_or(4_294_967_294);
            let _ = conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()));
        }
    }

    /// Privacy settings apply before anything is kept, the RAM ring included.
    fn accept(&mut self, mut e: QueryEvent) {
        e.client = super::stored_client(e.client, self.cfg.anonymize_clients);
        if self.cfg.hide_domains {
            e.qname = heapless::String::try_from(super::HIDDEN_DOMAIN).unwrap_or_default();
        }
        {
            let mut ring = lock(&self.shared.ring);
            if ring.cap > 0 {
                while ring.events.len() >= ring.cap {
                    ring.events.pop_front();
                }
                ring.events.push_back(e.clone());
            }
        }
        if self.conn.is_none() {
            return;
        }
        if let Some(until) = self.paused_until {
            if Instant::now() < until {
                lock(&self.shared.status).dropped_rows += 1;
                return;
            }
            self.paused_until = None;
        }
        self.pending.push(e);
    }

    fn flush(&mut self) {
        self.last_flush = Instant::now();
        if self.pending.is_empty() || self.conn.is_none() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let t = Instant::now();
        let result = self.write_batch(&batch);
        if let Some(pass) = self.retention.as_mut() {
            pass.report.max_batch_ms = pass
                .report
                .max_batch_ms
                .max(t.elapsed().as_secs_f64() * 1000.0);
        }
        match result {
            Ok(()) => {
                let mut st = lock(&self.shared.status);
                st.rows += batch.len() as u64;
                st.last_flush_ms = Some(now_ms());
                if st.paused {
                    st.paused = false;
                    st.warning = None;
                }
            }
            Err(e) => self.write_failed(e, batch.len()),
        }
        self.pending = batch;
        self.pending.clear();
    }

    /// A failed batch is dropped and counted; what happens next depends on
    /// why it failed.
    fn write_failed(&mut self, e: rusqlite::Error, rows: usize) {
        // Ids handed out inside the rolled-back transaction are gone, and
        // days it closed are open again (closing is idempotent).
        self.closed_day = None;
        self.domains.clear();
        self.clients.clear();
        self.sketches.clear();
        let mut st = lock(&self.shared.status);
        st.dropped_rows += rows as u64;
        if is_code(&e, ErrorCode::DiskFull) {
            let retry = self.flush_interval().min(Duration::from_secs(5));
            self.paused_until = Some(Instant::now() + retry);
            if !st.paused {
                tracing::warn!("query log: disk full, logging paused");
            }
            st.paused = true;
            st.warning = Some(format!(
                "disk full: query logging is paused and retried every {}s ({} queries not stored); DNS keeps answering",
                retry.as_secs_f64(),
                st.dropped_rows
            ));
        } else if is_code(&e, ErrorCode::DatabaseCorrupt) || is_code(&e, ErrorCode::NotADatabase) {
            drop(st);
            self.replace_corrupt(&e.to_string());
        } else {
            tracing::warn!("query log: batch of {rows} not stored: {e}");
            st.warning = Some(format!("query log write failed: {e}"));
        }
    }

    fn replace_corrupt(&mut self, detail: &str) {
        self.conn = None;
        let path = self.shared.path.clone();
        let result = move_aside(&path).map_err(anyhow::Error::from).and_then(|aside| {
            let note = format!(
                "the query log database was damaged ({detail}); it was moved to {} and a new one started",
                aside.display()
            );
            tracing::warn!("{note}");
            lock(&self.shared.status).warning = Some(note);
            self.shared.generation.fetch_add(1, Ordering::AcqRel);
            self.open_db()
        });
        if let Err(e) = result {
            lock(&self.shared.status).warning = Some(format!(
                "query log stopped: the database is damaged and could not be replaced: {e:#}"
            ));
        }
    }

    /// The key for a row at `ms`: in time order, unique. Small clock steps
    /// backwards (events from different workers) keep the order of arrival;
    /// a big one (the clock was set) lands at its true time.
    fn next_key(&self, ms: i64) -> i64 {
        let k = super::key_of(ms);
        if k <= self.last_key && self.last_key - k < super::key_of(super::EPOCH_MS + 1000) {
            self.last_key + 1
        } else {
            k
        }
    }

    fn write_batch(&mut self, batch: &[QueryEvent]) -> rusqlite::Result<()> {
        let conn = self.conn.take().expect("flush checks the connection");
        let result = self.write_batch_on(&conn, batch);
        self.conn = Some(conn);
        result
    }

    fn write_batch_on(&mut self, conn: &Connection, batch: &[QueryEvent]) -> rusqlite::Result<()> {
        let tx = conn.unchecked_transaction()?;
        let mut roll = Rollup::default();
        let mut touched_sketches = BTreeSet::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO queries (id, domain, client, qtype, rcode, status, upstream, latency_us, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for e in batch {
                let mut key = self.next_key(e.time_ms);
                let hour = super::ms_of(key).div_euclid(3_600_000);
                let domain = self.domain_id(&tx, e.qname.as_str(), hour.div_euclid(24))?;
                let client = self.client_id(&tx, e.client)?;
                let upstream = (e.upstream != u8::MAX).then_some(e.upstream);
                let reason = (e.reason.kind != 0).then(|| {
                    RuleRef {
                        kind: e.reason.kind,
                        id: e.reason.id,
                        cname_depth: e.reason.cname_depth,
                    }
                    .pack()
                });
                loop {
                    match insert.execute(params![
                        key,
                        domain,
                        client,
                        e.qtype,
                        e.rcode,
                        e.source as u8,
                        upstream,
                        e.latency_us,
                        reason
                    ]) {
                        Ok(_) => break,
                        Err(err) if is_code(&err, ErrorCode::ConstraintViolation) => key += 1,
                        Err(err) => return Err(err),
                    }
                }
                self.last_key = self.last_key.max(key);

                let ms = super::ms_of(key);
                let (minute, hour) = (ms.div_euclid(60_000), ms.div_euclid(3_600_000));
                let blocked = e.source == Source::Blocked;
                let s = e.source as usize;
                for slot in [
                    roll.minutes.entry(minute).or_default(),
                    roll.hours.entry(hour).or_default(),
                ] {
                    slot[s] += 1;
                    slot[7] += i64::from(e.latency_us);
                }
                *roll.domains.entry((false, hour, domain)).or_default() += 1;
                if blocked {
                    *roll.domains.entry((true, hour, domain)).or_default() += 1;
                }
                let c = roll.clients.entry((hour, client)).or_default();
                c.0 += 1;
                c.1 += i64::from(blocked);
                *roll.qtypes.entry((hour, e.qtype)).or_default() += 1;
                let sketch = match self.sketches.entry(hour) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(v) => {
                        let stored: Option<Vec<u8>> = tx
                            .prepare_cached("SELECT domains FROM hour_sketches WHERE hour = ?1")?
                            .query_row([hour], |r| r.get(0))
                            .optional()?;
                        v.insert(stored.map(|b| Sketch::from_bytes(&b)).unwrap_or_default())
                    }
                };
                sketch.insert(domain);
                touched_sketches.insert(hour);
                self.newest_hour = self.newest_hour.max(hour);
            }
        }
        write_rollup(&tx, &roll)?;
        for hour in &touched_sketches {
            if let Some(sk) = self.sketches.get(hour) {
                tx.prepare_cached(
                    "INSERT INTO hour_sketches (hour, domains) VALUES (?1, ?2)
                     ON CONFLICT (hour) DO UPDATE SET domains = excluded.domains",
                )?
                .execute(params![hour, sk.as_bytes()])?;
            }
        }
        self.open_hours.extend(roll.hours.keys().copied());
        // An hour is closed once a newer one has begun: trim it.
        let closed: Vec<i64> = self
            .open_hours
            .iter()
            .copied()
            .filter(|&h| h < self.newest_hour)
            .collect();
        for h in &closed {
            for blocked in [false, true] {
                tx.prepare_cached(
                    "DELETE FROM hour_domains WHERE blocked = ?1 AND hour = ?2 AND domain NOT IN
                     (SELECT domain FROM hour_domains WHERE blocked = ?1 AND hour = ?2 ORDER BY n DESC LIMIT ?3)",
                )?
                .execute(params![blocked, h, stats::TOP_PER_HOUR])?;
            }
        }
        self.close_days(&tx)?;
        tx.prepare_cached("UPDATE meta SET value = value + ?1 WHERE key = 'rows'")?
            .execute([batch.len() as i64])?;
        tx.commit()?;
        for h in closed {
            self.open_hours.remove(&h);
        }
        let newest = self.newest_hour;
        self.sketches.retain(|&h, _| h >= newest - 1);
        Ok(())
    }

    /// Writes the day roll-ups of days whose hours are all closed, a few
    /// days per batch (an upgraded database catches up over some batches).
    fn close_days(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        if self.newest_hour == i64::MIN {
            return Ok(());
        }
        let last_full = (self.newest_hour - 24).div_euclid(24);
        let first = match self.closed_day {
            Some(d) => d + 1,
            None => match tx.query_row("SELECT min(hour) FROM hour_counts", [], |r| {
                r.get::<_, Option<i64>>(0)
            })? {
                Some(h) => h.div_euclid(24),
                None => return Ok(()),
            },
        };
        for day in (first..=last_full).take(8) {
            let (h_lo, h_hi) = (day * 24, day * 24 + 23);
            for blocked in [false, true] {
                tx.prepare_cached("DELETE FROM day_domains WHERE blocked = ?1 AND day = ?2")?
                    .execute(params![blocked, day])?;
                tx.prepare_cached(
                    "INSERT INTO day_domains (blocked, day, domain, n)
                     SELECT ?1, ?2, domain, sum(n) FROM hour_domains
                     WHERE blocked = ?1 AND hour BETWEEN ?3 AND ?4
                     GROUP BY domain ORDER BY sum(n) DESC LIMIT ?5",
                )?
                .execute(params![blocked, day, h_lo, h_hi, stats::TOP_PER_DAY])?;
            }
            tx.prepare_cached("DELETE FROM day_clients WHERE day = ?1")?
                .execute([day])?;
            tx.prepare_cached(
                "INSERT INTO day_clients (day, client, n, blocked)
                 SELECT ?1, client, sum(n), sum(blocked) FROM hour_clients
                 WHERE hour BETWEEN ?2 AND ?3 GROUP BY client",
            )?
            .execute(params![day, h_lo, h_hi])?;
            let mut sketch = Sketch::default();
            {
                let mut st = tx.prepare_cached(
                    "SELECT domains FROM hour_sketches WHERE hour BETWEEN ?1 AND ?2",
                )?;
                let mut rows = st.query([h_lo, h_hi])?;
                while let Some(r) = rows.next()? {
                    sketch.merge_bytes(r.get_ref(0)?.as_blob()?);
                }
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO day_sketches (day, domains) VALUES (?1, ?2)",
            )?
            .execute(params![day, sketch.as_bytes()])?;
            self.closed_day = Some(day);
        }
        Ok(())
    }

    fn domain_id(&mut self, tx: &Connection, name: &str, day: i64) -> rusqlite::Result<i64> {
        if let Some(&(id, seen)) = self.domains.get(name) {
            if seen >= day {
                return Ok(id);
            }
            let updated = tx
                .prepare_cached("UPDATE domains SET last_seen = max(last_seen, ?2) WHERE id = ?1")?
                .execute(params![id, day])?;
            if updated == 1 {
                self.domains.insert(name.into(), (id, day));
                return Ok(id);
            }
            // Retention forgot the name since it was cached.
            self.domains.remove(name);
        }
        let found: Option<(i64, i64)> = tx
            .prepare_cached("SELECT id, last_seen FROM domains WHERE name = ?1")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let id = match found {
            Some((id, seen)) => {
                if seen < day {
                    tx.prepare_cached("UPDATE domains SET last_seen = ?2 WHERE id = ?1")?
                        .execute(params![id, day])?;
                }
                id
            }
            None => {
                tx.prepare_cached("INSERT INTO domains (name, last_seen) VALUES (?1, ?2)")?
                    .execute(params![name, day])?;
                tx.last_insert_rowid()
            }
        };
        if self.domains.len() >= INTERN_CACHE {
            self.domains.clear();
        }
        self.domains.insert(name.into(), (id, day));
        Ok(id)
    }

    fn client_id(&mut self, tx: &Connection, ip: IpAddr) -> rusqlite::Result<i64> {
        if let Some(&id) = self.clients.get(&ip) {
            return Ok(id);
        }
        let addr = ip.to_string();
        let found: Option<i64> = tx
            .prepare_cached("SELECT id FROM clients WHERE addr = ?1")?
            .query_row([&addr], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached("INSERT INTO clients (addr) VALUES (?1)")?
                    .execute([&addr])?;
                tx.last_insert_rowid()
            }
        };
        if self.clients.len() >= INTERN_CACHE {
            self.clients.clear();
        }
        self.clients.insert(ip, id);
        Ok(id)
    }

    fn start_retention(&mut self, ack: Option<SyncSender<RetentionReport>>) {
        self.last_retention = Instant::now();
        if self.conn.is_none() {
            if let Some(ack) = ack {
                let _ = ack.send(RetentionReport::default());
            }
            return;
        }
        let pass = self.retention.get_or_insert_with(|| Pass {
            started: Instant::now(),
            report: RetentionReport::default(),
            waiting: Vec::new(),
        });
        pass.waiting.extend(ack);
    }

    /// One short transaction of retention work; the pass ends when nothing
    /// is too old, the file fits and the free pages are returned.
    fn retention_step(&mut self) {
        let Some(conn) = self.conn.take() else {
            self.finish_retention();
            return;
        };
        let t = Instant::now();
        let cpu = thread_cpu_ms();
        let result = self.retention_step_on(&conn);
        self.conn = Some(conn);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let pass = self.retention.as_mut().expect("a pass is running");
        pass.report.max_step_ms = pass.report.max_step_ms.max(ms);
        pass.report.max_step_cpu_ms = pass.report.max_step_cpu_ms.max(thread_cpu_ms() - cpu);
        {
            let mut st = lock(&self.shared.status);
            st.max_retention_step_ms = st.max_retention_step_ms.max(ms);
        }
        match result {
            Ok(Some(Step::Delete)) => {
                pass.report.steps += 1;
                pass.report.max_delete_step_ms = pass.report.max_delete_step_ms.max(ms);
            }
            Ok(Some(Step::Vacuum)) => {
                pass.report.steps += 1;
                pass.report.max_vacuum_step_ms = pass.report.max_vacuum_step_ms.max(ms);
            }
            Ok(None) => self.finish_retention(),
            Err(e) => {
                tracing::warn!("query log retention: {e}");
                let full = is_code(&e, ErrorCode::DiskFull);
                self.finish_retention();
                if !full {
                    lock(&self.shared.status).warning =
                        Some(format!("query log retention failed: {e}"));
                }
            }
        }
    }

    fn finish_retention(&mut self) {
        if let Some(mut pass) = self.retention.take() {
            pass.report.total_ms = pass.started.elapsed().as_secs_f64() * 1000.0;
            for w in pass.waiting {
                let _ = w.send(pass.report.clone());
            }
        }
    }

    /// Returns what kind of work was done, `None` when nothing was left.
    fn retention_step_on(&mut self, conn: &Connection) -> rusqlite::Result<Option<Step>> {
        let pass = self.retention.as_mut().expect("a pass is running");
        let oldest: Option<i64> =
            conn.query_row("SELECT min(id) FROM queries", [], |r| r.get(0))?;
        let cutoff_ms = (self.cfg.retention_days > 0)
            .then(|| now_ms() - i64::from(self.cfg.retention_days) * 86_400_000);
        let too_old = matches!((oldest, cutoff_ms), (Some(o), Some(c)) if o < super::key_of(c));
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let page_count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let max_bytes = i64::from(self.cfg.max_size_mib) << 20;
        let too_big = self.cfg.max_size_mib > 0 && (page_count - free) * page_size > max_bytes;

        let tx = conn.unchecked_transaction()?;
        let mut deleted = 0i64;
        if (too_old || too_big) && oldest.is_some() {
            // The key RETENTION_STEP_ROWS rows in: a rowid walk, no scan.
            let step_end: Option<i64> = tx
                .query_row(
                    "SELECT id FROM queries ORDER BY id LIMIT 1 OFFSET ?1",
                    [RETENTION_STEP_ROWS],
                    |r| r.get(0),
                )
                .optional()?;
            let mut upto = step_end.unwrap_or(i64::MAX);
            if !too_big {
                upto = upto.min(super::key_of(cutoff_ms.unwrap_or(i64::MAX)));
            }
            deleted = tx.execute("DELETE FROM queries WHERE id < ?1", [upto])? as i64;
            tx.execute(
                "UPDATE meta SET value = value - ?1 WHERE key = 'rows'",
                [deleted],
            )?;
        }
        // Roll-ups and names go with the rows they describe.
        let left = tx
            .query_row("SELECT min(id) FROM queries", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .map(super::ms_of)
            .unwrap_or(i64::MAX);
        let cut_ms = match cutoff_ms {
            Some(c) => c.max(left),
            None => left,
        }
        .min(now_ms());
        let (minute, hour) = (cut_ms.div_euclid(60_000), cut_ms.div_euclid(3_600_000));
        let mut rollups = 0;
        rollups += tx.execute("DELETE FROM minute_counts WHERE minute < ?1", [minute])?;
        rollups += tx.execute("DELETE FROM hour_counts WHERE hour < ?1", [hour])?;
        rollups += tx.execute(
            "DELETE FROM hour_domains WHERE blocked = 0 AND hour < ?1",
            [hour],
        )?;
        rollups += tx.execute(
            "DELETE FROM hour_domains WHERE blocked = 1 AND hour < ?1",
            [hour],
        )?;
        rollups += tx.execute("DELETE FROM hour_clients WHERE hour < ?1", [hour])?;
        rollups += tx.execute("DELETE FROM hour_qtypes WHERE hour < ?1", [hour])?;
        rollups += tx.execute("DELETE FROM hour_sketches WHERE hour < ?1", [hour])?;
        let day = hour.div_euclid(24);
        rollups += tx.execute(
            "DELETE FROM day_domains WHERE blocked = 0 AND day < ?1",
            [day],
        )?;
        rollups += tx.execute(
            "DELETE FROM day_domains WHERE blocked = 1 AND day < ?1",
            [day],
        )?;
        rollups += tx.execute("DELETE FROM day_clients WHERE day < ?1", [day])?;
        rollups += tx.execute("DELETE FROM day_sketches WHERE day < ?1", [day])?;
        let names = tx
            .prepare_cached(
                "DELETE FROM domains WHERE id IN
                 (SELECT id FROM domains WHERE last_seen < ?1 ORDER BY last_seen LIMIT ?2)",
            )?
            .execute(params![day, NAMES_STEP])?;
        tx.commit()?;
        pass.report.deleted_rows += deleted as u64;
        if deleted > 0 {
            let mut st = lock(&self.shared.status);
            st.rows = st.rows.saturating_sub(deleted as u64);
        }
        if deleted > 0 || rollups > 0 || names > 0 {
            return Ok(Some(Step::Delete));
        }
        if free > 0 {
            conn.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})"))?;
            let after: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            pass.report.vacuumed_pages += (free - after).max(0) as u64;
            return Ok(Some(Step::Vacuum));
        }
        Ok(None)
    }
}

fn write_rollup(tx: &Connection, roll: &Rollup) -> rusqlite::Result<()> {
    for (table, key, map) in [
        ("minute_counts", "minute", &roll.minutes),
        ("hour_counts", "hour", &roll.hours),
    ] {
        let mut st = tx.prepare_cached(&format!(
            "INSERT INTO {table} ({key}, cache, upstream, local, blocked, stale, refused, failed, latency_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT ({key}) DO UPDATE SET
               cache = cache + excluded.cache, upstream = upstream + excluded.upstream,
               local = local + excluded.local, blocked = blocked + excluded.blocked,
               stale = stale + excluded.stale, refused = refused + excluded.refused,
               failed = failed + excluded.failed, latency_us = latency_us + excluded.latency_us"
        ))?;
        for (k, c) in map {
            st.execute(params![k, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])?;
        }
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO hour_domains (blocked, hour, domain, n) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (blocked, hour, domain) DO UPDATE SET n = n + excluded.n",
    )?;
    for ((blocked, hour, domain), n) in &roll.domains {
        st.execute(params![blocked, hour, domain, n])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO hour_clients (hour, client, n, blocked) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (hour, client) DO UPDATE SET n = n + excluded.n, blocked = blocked + excluded.blocked",
    )?;
    for ((hour, client), (n, blocked)) in &roll.clients {
        st.execute(params![hour, client, n, blocked])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO hour_qtypes (hour, qtype, n) VALUES (?1, ?2, ?3)
         ON CONFLICT (hour, qtype) DO UPDATE SET n = n + excluded.n",
    )?;
    for ((hour, qtype), n) in &roll.qtypes {
        st.execute(params![hour, qtype, n])?;
    }
    Ok(())
}
