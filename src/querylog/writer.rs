//! The writer thread: the only connection that writes. It turns query
//! events into rows in batched transactions, keeps the RAM ring, runs
//! retention between its batches, and keeps going when the disk fills up
//! or the file turns out to be damaged.
//!
//! Its RAM is fixed whatever the traffic: names and clients are looked up
//! through small caches (`names.rs`), an open hour's counts and top
//! domains are fixed-size summaries (`rollup.rs`), and rows wait in an
//! open block of at most `BLOCK_ROWS`, written into the open transaction
//! when full (`block/store.rs`), instead of in a queue of events.
//!
//! A row's life here: `receive` takes events from the channel into the
//! inbox; `store_group` looks a group's names up together, then `stage`
//! gives each row its key and ids and counts it in the roll-ups, and
//! `push_row` adds it to the open block; `flush` writes the block and the
//! roll-ups and commits. A failed commit is rolled back and counted
//! (`write_failed`): a full disk pauses logging, a damaged file is moved
//! aside and a new one started.
//!
//! Not for: answering questions (`stats.rs`), deleting old rows
//! (`retention.rs`); retention passes between batches are in
//! `writer/passes.rs`, failed commits in `writer/failure.rs`.

mod failure;
mod passes;

use super::block::Row;
use super::block::store::{BLOCK_ROWS, BlockWriter, merge_rows, write_sorted};
use super::live::{self, Batch};
use super::names::{ClientCache, NameCache, NameLookup};
use super::pace::{self, Pace};
use super::retention::{self, RetentionPass};
use super::rollup::Rollups;
use super::schema::{self, OpenError, move_aside};
use super::slow::SlowAnswers;
use super::{Command, RuleRef, Shared, lock, ms_of, tail};
use crate::clock::now_ms;
use crate::config::QueryLogConfig;
use crate::events::{EventReceiver, QueryEvent};
use rusqlite::{Connection, ErrorCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// A transaction is committed once it holds this many rows (or the flush
/// interval has passed): the per-commit work (roll-ups, WAL frames of the
/// pages every batch touches) is shared by more rows.
pub const BATCH_ROWS: usize = 16_384;
/// Events stored together: received events wait in RAM for at most this
/// many (or until the channel is empty).
const GROUP: usize = 128;
/// How far behind the newest key an event may be and get the next key.
const KEY_SLACK_MS: i64 = 600_000;
/// WAL bytes after which a batch checkpoints: 32 MiB (docs/querylog.md, "Writes to flash").
const CHECKPOINT_BYTES: i64 = 32_768_000;
/// The longest the loop sleeps before looking at commands again.
const TICK: Duration = pace::LONGEST;

pub(super) struct Writer {
    cfg: QueryLogConfig,
    shared: Arc<Shared>,
    conn: Option<Connection>,
    /// Rows in the open transaction (0: none open).
    tx_rows: usize,
    /// Events received, stored together (one statement lookup, one ring
    /// lock per group).
    inbox: Batch,
    /// Per event of the group being stored: its name's hash and what the
    /// name cache held for it.
    looked: Vec<NameLookup>,
    rollups: Rollups,
    slow: SlowAnswers,
    names: NameCache,
    clients: ClientCache,
    last_key: i64,
    last_flush: Instant,
    pace: Pace,
    /// Set while the disk is full: retry at this instant.
    paused_until: Option<Instant>,
    page_limit: Option<u64>,
    retention: Option<RetentionPass>,
    last_retention: Instant,
    /// Rows the next retention step deletes (adapts to the step's time).
    step_rows: i64,
    /// Frames in the WAL after the last commit (set by SQLite's WAL hook).
    wal_frames: Arc<AtomicI64>,
    /// Frames that make a checkpoint (`CHECKPOINT_BYTES` in pages).
    checkpoint_frames: i64,
    /// Rows of the open transaction not yet written as a block.
    open: OpenBlock,
    blocks: BlockWriter,
    /// The table `queries` still holds rows (an older build's).
    legacy_left: bool,
    /// Rows stored since the derived rows were last written, the hour
    /// of the first, and whether the next commit must write them
    /// (`tail.rs`).
    tail_rows: usize,
    tail_hour: Option<i64>,
    derive_now: bool,
}

/// Rows staged but not yet in a block.
#[derive(Default)]
struct OpenBlock {
    /// Keys above every stored key, increasing, all of one hour.
    rows: Vec<Row>,
    hour: i64,
    /// Rows whose key lands among stored ones (the clock was set back):
    /// merged into place when the block is written.
    past: Vec<Row>,
}

impl OpenBlock {
    fn len(&self) -> usize {
        self.rows.len() + self.past.len()
    }
    fn clear(&mut self) {
        self.rows.clear();
        self.past.clear();
    }
}

fn is_code(e: &rusqlite::Error, code: ErrorCode) -> bool {
    e.sqlite_error_code() == Some(code)
}

impl Writer {
    pub(super) fn open(cfg: QueryLogConfig, shared: Arc<Shared>) -> anyhow::Result<Writer> {
        let mut w = Writer {
            cfg,
            shared,
            conn: None,
            tx_rows: 0,
            inbox: Batch::with_capacity(GROUP),
            looked: Vec::with_capacity(GROUP),
            rollups: Rollups::new(),
            slow: SlowAnswers::new(),
            names: NameCache::new(),
            clients: ClientCache::default(),
            last_key: i64::MIN,
            last_flush: Instant::now(),
            pace: Pace::new(),
            paused_until: None,
            page_limit: None,
            retention: None,
            last_retention: Instant::now(),
            step_rows: retention::STEP_ROWS,
            wal_frames: Arc::default(),
            checkpoint_frames: CHECKPOINT_BYTES / 4096,
            open: OpenBlock::default(),
            blocks: BlockWriter::default(),
            legacy_left: false,
            tail_rows: 0,
            tail_hour: None,
            derive_now: false,
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
                self.moved_aside(&detail, &aside);
                schema::open_writer(&path)?
            }
            Err(e) => return Err(e.into()),
        };
        self.last_key = conn
            .query_row(
                "SELECT max(coalesce((SELECT max(id) FROM queries), -9223372036854775808),
                            coalesce((SELECT max(last) FROM query_blocks), -9223372036854775808))",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )?
            .unwrap_or(i64::MIN);
        self.legacy_left = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM queries WHERE NOT (client = 0 AND domain = 0))",
            [],
            |r| r.get(0),
        )?;
        let rows: i64 = conn.query_row("SELECT value FROM meta WHERE key = 'rows'", [], |r| {
            r.get(0)
        })?;
        {
            let mut st = lock(&self.shared.status);
            st.rows = rows.max(0) as u64;
            st.schema_version = schema::current_version(&conn)?;
        }
        self.forget_cached();
        self.rollups.load(&conn)?;
        // The tail a power cut left: counted again and its derived rows
        // written, before the domain index looks at its coverage.
        conn.execute_batch("BEGIN")?;
        self.recount_tail(&conn)?;
        self.write_derived(&conn)?;
        conn.execute_batch("COMMIT")?;
        self.derived();
        super::block::domain_index::open(&conn)?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        self.checkpoint_frames = CHECKPOINT_BYTES / page_size.max(512);
        let mut conn = conn;
        // Checkpoints run where the writer chooses (after a batch commit),
        // never inside a retention step: SQLite only reports the WAL size.
        let frames = self.wal_frames.clone();
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            frames.store(i64::from(pages), Ordering::Relaxed);
            Ok(())
        }))?;
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
            .and_then(|_| conn.query_row("SELECT max(id) FROM query_blocks", [], |_| Ok(())))
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
                        self.derive_now = true;
                        self.flush();
                        return;
                    }
                    Ok(Command::Flush(ack)) => {
                        // Everything sent before the call is stored, derived rows
                        // too (bounded, should the channel never run dry).
                        for _ in 0..64 {
                            self.derive_now = true;
                            let mut took = 0;
                            while let Ok(n @ 1..) = self.receive(&events) {
                                took += n;
                            }
                            self.flush();
                            if took == 0 {
                                break;
                            }
                        }
                        while self.legacy_left {
                            self.migrate_now();
                        }
                        let _ = ack.send(());
                    }
                    Ok(c) => self.command(c),
                    Err(TryRecvError::Empty) => break,
                }
            }
            // Until the next flush is due, at most a tick; with nothing to
            // flush (or no database: querylog.enabled = false) a tick. Never
            // zero: an overdue flush with no rows must not make this a spin.
            let wait = if self.tx_rows > 0 {
                self.flush_interval()
                    .saturating_sub(self.last_flush.elapsed())
                    .clamp(Duration::from_millis(1), TICK)
            } else {
                TICK
            };
            let busy = self.retention.is_some();
            if events_open {
                match self.receive(&events) {
                    Ok(0) => {
                        // Poll, never park on the channel (`pace.rs`).
                        if !busy && self.tx_rows + self.inbox.len() < BATCH_ROWS {
                            std::thread::sleep(self.pace.next(wait));
                        }
                    }
                    Ok(_) => while let Ok(1..) = self.receive(&events) {},
                    Err(_) => events_open = false,
                }
                self.store_inbox();
            } else if !busy {
                std::thread::sleep(wait);
            }
            if self.tx_rows >= BATCH_ROWS
                || (self.tx_rows > 0 && self.last_flush.elapsed() >= self.flush_interval())
            {
                self.flush();
            }
            if self.legacy_left && self.retention.is_none() {
                self.migrate_now();
            }
            // A due pass waits for the next flush: started between flushes it
            // committed the open rows, a commit a minute whatever the interval.
            let due = self.last_retention.elapsed() >= retention::EVERY;
            if self.retention.is_none() && self.tx_rows == 0 && due {
                self.start_retention(None);
            }
            if self.retention.is_some() {
                // A step is its own short transaction: rows received so far
                // are committed first.
                if self.tx_rows > 0 {
                    self.flush();
                }
                // A long pass with no batches in between still checkpoints.
                self.checkpoint_if(2 * self.checkpoint_frames);
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
                self.derive_now = true;
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

    /// Takes the queued events, a group at most, up to the batch size;
    /// returns how many (`Err`: every sink is gone).
    fn receive(&mut self, events: &EventReceiver) -> Result<usize, TryRecvError> {
        let room = BATCH_ROWS
            .saturating_sub(self.tx_rows + self.inbox.len())
            .min(GROUP.saturating_sub(self.inbox.len()));
        let (anonymize, hide) = (self.cfg.anonymize_clients, self.cfg.hide_domains);
        let inbox = &mut self.inbox;
        let n = events.try_recv_with(room, |e, name| inbox.push(e, name, anonymize, hide))?;
        self.pace.took(n);
        if self.inbox.len() >= GROUP {
            self.store_inbox();
        }
        Ok(n)
    }

    fn accept(&mut self, e: QueryEvent) {
        // Privacy settings apply before anything is kept, the RAM ring included.
        let (anonymize, hide) = (self.cfg.anonymize_clients, self.cfg.hide_domains);
        self.inbox.push(&e.fields(), &e.qname, anonymize, hide);
        if self.inbox.len() >= GROUP {
            self.store_inbox();
        }
    }

    /// Adds the received events to the open transaction (opening one if
    /// needed), then moves them into the RAM ring.
    fn store_inbox(&mut self) {
        if self.inbox.is_empty() {
            return;
        }
        let mut events = std::mem::take(&mut self.inbox);
        self.store_group(&events);
        lock(&self.shared.ring).extend(&events);
        events.clear();
        self.inbox = events;
    }

    fn store_group(&mut self, events: &Batch) {
        if self.conn.is_none() {
            return;
        }
        if let Some(until) = self.paused_until {
            if Instant::now() < until {
                lock(&self.shared.status).dropped_rows += events.len() as u64;
                return;
            }
            self.paused_until = None;
        }
        let before = self.tx_rows;
        let conn = self.conn.take().expect("checked above");
        let result = self.store_on(&conn, events);
        self.conn = Some(conn);
        if let Err(err) = result {
            self.write_failed(err, before + events.len());
        } else if self.rollups.too_many_hours() || self.rollups.wants_write() {
            self.derive_now = true;
            self.flush();
        }
    }

    fn store_on(&mut self, conn: &Connection, events: &Batch) -> rusqlite::Result<()> {
        if self.tx_rows == 0 {
            conn.execute_batch("BEGIN")?;
        }
        // The group's names are looked up first, and the top-domain slots
        // of the names found start loading, so the rows' cache misses
        // overlap instead of each stalling its row.
        let mut looked = std::mem::take(&mut self.looked);
        self.names.look_up_group(events, &mut looked);
        let names = &self.names;
        self.rollups.prefetch_top(
            looked
                .iter()
                .filter(|l| l.found.is_some())
                .map(|l| names.top_at(l.slot)),
        );
        let result = events.iter().zip(&looked).try_for_each(|((e, name), l)| {
            let (row, past, hour) = self.stage(conn, e, name, l)?;
            self.tx_rows += 1;
            self.push_row(conn, row, past, hour)
        });
        self.looked = looked;
        result
    }

    /// Resolves an event's names to ids and counts it in the roll-ups.
    /// Returns the row and whether its key lands among stored rows.
    fn stage(
        &mut self,
        conn: &Connection,
        e: &live::Entry,
        name: &str,
        looked: &NameLookup,
    ) -> rusqlite::Result<(Row, bool, i64)> {
        let (key, past) = self.next_key(e.time_ms);
        if !past {
            self.last_key = key;
        }
        let day = self.rollups.minute_of(key).day;
        let domain = self.names.id(conn, name, day, looked)?;
        let client = self.clients.id(conn, e.client)?;
        let row = Row {
            key,
            domain,
            client,
            qtype: e.qtype,
            rcode: e.rcode,
            status: e.source as u8,
            upstream: (e.upstream != u8::MAX).then_some(e.upstream),
            latency_us: e.latency_us,
            reason: (e.reason.kind != 0).then(|| {
                RuleRef {
                    kind: e.reason.kind,
                    id: e.reason.id,
                    cname_depth: e.reason.cname_depth,
                }
                .pack()
            }),
        };

        let top_at = looked.found.map(|_| self.names.top_at(looked.slot));
        if let Some(now_at) = self.count(conn, &row, top_at)? {
            self.names.set_top_at(looked.slot, now_at);
        }
        Ok((row, past, ms_of(key).div_euclid(3_600_000)))
    }

    /// Counts a row in the roll-ups held for the tail (`tail.rs`).
    fn count(
        &mut self,
        conn: &Connection,
        row: &Row,
        top_at: Option<usize>,
    ) -> rusqlite::Result<Option<usize>> {
        let at = self.rollups.minute_of(row.key);
        self.tail_rows += 1;
        let first = *self.tail_hour.get_or_insert(at.hour);
        self.derive_now |= at.hour != first || self.tail_rows >= tail::TAIL_ROWS;
        self.derive_now |= self.rollups.wants_write();
        let now_at = self.rollups.count(conn, at, row, top_at)?;
        self.slow
            .count(conn, at.hour, row.domain, row.upstream, row.latency_us)?;
        Ok(now_at)
    }

    /// Counts the blocks whose derived rows are not written (a power cut,
    /// a failed commit) into the roll-ups and side rows again.
    fn recount_tail(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let mut blocks = std::mem::take(&mut self.blocks);
        let result = tail::recount(conn, &mut blocks, |r| {
            self.last_key = self.last_key.max(r.key);
            self.count(conn, r, None).map(drop)
        });
        self.blocks = blocks;
        result
    }

    /// Writes the tail's derived rows in the open transaction (side rows, roll-ups, slow answers).
    fn write_derived(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.rollups.note_domain_counts(conn, &mut self.blocks)?;
        self.blocks.write_side_rows(conn)?;
        self.rollups.write(conn)?;
        self.slow.write(conn)?;
        tail::set_derived_to(conn, self.last_key.saturating_add(1))
    }

    /// The derived rows are committed: the tail is empty.
    fn derived(&mut self) {
        self.rollups.committed();
        self.slow.committed();
        self.tail_rows = 0;
        self.tail_hour = None;
        self.derive_now = false;
    }

    /// Adds a staged row to the open block, writing the block (inside the
    /// open transaction) once it is full or the hour changes.
    fn push_row(
        &mut self,
        conn: &Connection,
        row: Row,
        past: bool,
        hour: i64,
    ) -> rusqlite::Result<()> {
        if past {
            // Merged among stored blocks, which have their derived rows.
            self.derive_now = true;
            self.open.past.push(row);
        } else {
            if !self.open.rows.is_empty() && hour != self.open.hour {
                self.write_open(conn)?;
            }
            self.open.hour = hour;
            self.open.rows.push(row);
        }
        if self.open.len() >= BLOCK_ROWS {
            self.write_open(conn)?;
        }
        Ok(())
    }

    /// Writes the open block's rows: appended after every stored block,
    /// or merged into place when some rows land among stored ones.
    fn write_open(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let newest = if self.open.past.is_empty() {
            write_sorted(conn, &self.open.rows, &mut self.blocks)?;
            self.open.rows.last().map(|r| r.key)
        } else {
            let mut past = std::mem::take(&mut self.open.past);
            let newest = merge_rows(conn, &mut past, &self.open.rows, &mut self.blocks)?;
            past.clear();
            self.open.past = past;
            newest
        };
        if let Some(k) = newest {
            self.last_key = self.last_key.max(k);
        }
        self.open.clear();
        Ok(())
    }

    /// Commits the open transaction.
    fn flush(&mut self) {
        self.last_flush = Instant::now();
        self.store_inbox();
        // Nothing held: nothing to write at the next commit either.
        self.derive_now &= self.tail_rows > 0;
        let derive_only = self.tx_rows == 0 && self.derive_now;
        if (self.tx_rows == 0 && !derive_only) || self.conn.is_none() {
            return;
        }
        let rows = self.tx_rows;
        let t = Instant::now();
        let conn = self.conn.take().expect("checked above");
        let result = self.commit_on(&conn);
        self.conn = Some(conn);
        if let Some(pass) = self.retention.as_mut() {
            pass.note_batch(t.elapsed().as_secs_f64() * 1000.0);
        }
        match result {
            Ok(()) => {
                let mut st = lock(&self.shared.status);
                st.rows += rows as u64;
                st.last_flush_ms = Some(now_ms());
                st.writer_ram_bytes = st.writer_ram_bytes.max(self.ram_bytes() as u64);
                if st.paused {
                    st.paused = false;
                    st.warning = None;
                }
            }
            Err(e) => self.write_failed(e, rows),
        }
        self.checkpoint_if(self.checkpoint_frames);
    }

    /// Copies the WAL back into the database file once it holds `frames`
    /// pages: fewer, larger checkpoints write a page changed by many
    /// batches once instead of once per checkpoint.
    fn checkpoint_if(&mut self, frames: i64) {
        if self.wal_frames.load(Ordering::Relaxed) < frames {
            return;
        }
        if let Some(conn) = &self.conn {
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                Ok(()) => self.wal_frames.store(0, Ordering::Relaxed),
                Err(e) => tracing::warn!("query log checkpoint: {e}"),
            }
        }
    }

    /// RAM held by the writer's caches and summaries (the SQLite page
    /// cache is bounded separately by `cache_size`).
    pub(super) fn ram_bytes(&self) -> usize {
        self.names.bytes()
            + self.clients.bytes()
            + self.rollups.bytes()
            + self.slow.bytes()
            + self.inbox.bytes()
            + self.looked.capacity() * std::mem::size_of::<NameLookup>()
            + (self.open.rows.capacity() + self.open.past.capacity()) * std::mem::size_of::<Row>()
            + self.blocks.bytes()
    }

    fn commit_on(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.tx_rows == 0 {
            // Only the tail's derived rows to write.
            conn.execute_batch("BEGIN")?;
        }
        self.write_open(conn)?;
        let derive = self.derive_now;
        if derive {
            self.write_derived(conn)?;
        }
        tail::set_blocks_last(conn, self.last_key)?;
        conn.prepare_cached("UPDATE meta SET value = value + ?1 WHERE key = 'rows'")?
            .execute([self.tx_rows as i64])?;
        conn.execute_batch("COMMIT")?;
        self.tx_rows = 0;
        if derive {
            self.derived();
        }
        Ok(())
    }

    /// Forgets what the rolled-back transaction had handed out or counted.
    fn forget_cached(&mut self) {
        self.names.clear();
        self.clients.clear();
        self.rollups.forget();
        self.slow.forget();
        self.open.clear();
        self.blocks.forget();
        self.tx_rows = 0;
        self.tail_rows = 0;
        self.tail_hour = None;
    }

    /// The key for a row at `ms`, and whether it lands among stored rows.
    /// Small clock steps backwards (events from different workers) and
    /// keys run ahead of the clock (more than 256 rows in a millisecond,
    /// sustained) keep the order of arrival; a big step (the clock was set
    /// back) lands at its true time, on the first free key from there
    /// (found when the block is written, see `merge_rows`).
    fn next_key(&self, ms: i64) -> (i64, bool) {
        let k = super::key_of(ms);
        if k > self.last_key {
            (k, false)
        } else if self.last_key - k < super::key_of(super::EPOCH_MS + KEY_SLACK_MS) {
            (self.last_key + 1, false)
        } else {
            (k, true)
        }
    }
}
