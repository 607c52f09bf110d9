//! Retention: old rows go, in short steps between the writer's batches.
//! A pass deletes whole blocks, oldest first, while a block's newest row
//! is older than `retention_days` or the file is over `max_size_mib`; then
//! the roll-ups and names of the time no row is left for; then it returns
//! the freed pages to the file system (incremental vacuum). Each step is
//! one short transaction, so an insert waits for at most one step.
//!
//! Rows an older build left in the version-1 `queries` table are moved
//! into blocks first ([`move_legacy_rows`]), so retention sees every row
//! in blocks.
//!
//! Not for: when a pass runs or what the writer does between its steps
//! (`writer/passes.rs`).

use super::block::store::{BlockWriter, Blocks, delete_blocks, merge_rows};
use super::block::{self, Row};
use super::{RetentionReport, key_of, ms_of};
use crate::clock::now_ms;
use crate::config::QueryLogConfig;
use crate::events::Source;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

/// Rows an older build left in `queries` moved into blocks per
/// transaction (one short step, like a retention step).
const MIGRATE_ROWS: i64 = 4096;
/// Rows deleted per retention step at first; the step size then adapts so
/// a step takes about `STEP_TARGET` (an insert waits at most one step).
pub(super) const STEP_ROWS: i64 = 1000;
const STEP_TARGET: Duration = Duration::from_millis(10);
const STEP_MIN: i64 = 50;
const STEP_MAX: i64 = 4000;
/// Pages returned to the file system per incremental-vacuum step.
const VACUUM_STEP_PAGES: i64 = 32;
/// Unused names forgotten per retention step.
const NAMES_STEP: i64 = 500;
/// How often retention checks age and size on its own.
pub(super) const EVERY: Duration = Duration::from_secs(60);

/// What one retention step did.
pub(super) enum StepOutcome {
    /// Deleted old blocks (`rows` rows), roll-ups or names.
    Deleted { rows: u64 },
    /// Returned `pages` free pages to the file system.
    Vacuumed { pages: u64 },
}

/// A retention pass in progress: what it did so far, and who waits for it.
pub(super) struct RetentionPass {
    started: Instant,
    report: RetentionReport,
    waiting: Vec<SyncSender<RetentionReport>>,
}

impl RetentionPass {
    pub(super) fn new() -> RetentionPass {
        RetentionPass {
            started: Instant::now(),
            report: RetentionReport::default(),
            waiting: Vec::new(),
        }
    }

    /// `ack` gets the report when the pass ends.
    pub(super) fn notify(&mut self, ack: Option<SyncSender<RetentionReport>>) {
        self.waiting.extend(ack);
    }

    /// Notes a step that took `ms` (wall) and `cpu_ms` (the writer
    /// thread's CPU), and what it did (`None`: nothing, or it failed).
    pub(super) fn note_step(&mut self, ms: f64, cpu_ms: f64, did: Option<&StepOutcome>) {
        let r = &mut self.report;
        r.max_step_ms = r.max_step_ms.max(ms);
        r.max_step_cpu_ms = r.max_step_cpu_ms.max(cpu_ms);
        match did {
            Some(StepOutcome::Deleted { rows }) => {
                r.steps += 1;
                r.max_delete_step_ms = r.max_delete_step_ms.max(ms);
                r.deleted_rows += rows;
            }
            Some(StepOutcome::Vacuumed { pages }) => {
                r.steps += 1;
                r.max_vacuum_step_ms = r.max_vacuum_step_ms.max(ms);
                r.vacuumed_pages += pages;
            }
            None => {}
        }
    }

    /// Notes a batch written while the pass ran.
    pub(super) fn note_batch(&mut self, ms: f64) {
        self.report.max_batch_ms = self.report.max_batch_ms.max(ms);
    }

    /// The pass changed the file (deleted or vacuumed), or someone asked
    /// for it: then its end is worth a checkpoint (the file shrinks).
    pub(super) fn changed_or_asked(&self) -> bool {
        self.report.steps > 0 || !self.waiting.is_empty()
    }

    /// Ends the pass: everyone waiting gets the report.
    pub(super) fn finish(mut self) {
        self.report.total_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        for w in self.waiting {
            let _ = w.send(self.report.clone());
        }
    }
}

/// The rows the next deleting step takes, after one of `rows` took `ms`:
/// steps stay near the target whatever the machine's speed or load, so
/// an insert waits for at most one step.
pub(super) fn next_step_rows(rows: i64, ms: f64) -> i64 {
    let target = STEP_TARGET.as_secs_f64() * 1000.0;
    if ms > target * 2.0 {
        rows / 2
    } else if ms < target / 2.0 {
        rows + rows / 2
    } else {
        rows
    }
    .clamp(STEP_MIN, STEP_MAX)
}

/// One short transaction of retention work, deleting about `step_rows`
/// rows; `None` when nothing was left to do.
pub(super) fn step(
    conn: &Connection,
    cfg: &QueryLogConfig,
    step_rows: i64,
    blocks: &mut BlockWriter,
) -> rusqlite::Result<Option<StepOutcome>> {
    let oldest: Option<(i64, i64)> = conn
        .query_row(
            "SELECT id, last FROM query_blocks ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let cutoff_ms =
        (cfg.retention_days > 0).then(|| now_ms() - i64::from(cfg.retention_days) * 86_400_000);
    let cutoff_key = cutoff_ms.map_or(i64::MIN, key_of);
    // A block goes once its newest row is too old.
    let too_old = matches!(oldest, Some((_, last)) if last < cutoff_key);
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let page_count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let max_bytes = i64::from(cfg.max_size_mib) << 20;
    let too_big = cfg.max_size_mib > 0 && (page_count - free) * page_size > max_bytes;

    let tx = conn.unchecked_transaction()?;
    let mut deleted = 0i64;
    if too_old || too_big {
        // Whole blocks, oldest first, about `step_rows` rows per step:
        // a walk along the primary key, no scan.
        let mut upto = None;
        let mut clients: Vec<i64> = Vec::new();
        {
            let mut st =
                tx.prepare_cached("SELECT id, last, rows, data FROM query_blocks ORDER BY id")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let (id, last, n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                if (!too_big && last >= cutoff_key) || (upto.is_some() && deleted >= step_rows) {
                    break;
                }
                match block::decode(r.get_ref(3)?.as_blob()?) {
                    Ok(v) => clients.extend(v.iter().map(|r| r.client)),
                    Err(e) => tracing::warn!(
                        "query log: block {id} is damaged ({e}); deleted by retention"
                    ),
                }
                deleted += n;
                upto = Some(id + 1);
            }
        }
        if let Some(upto) = upto {
            delete_blocks(&tx, Blocks::Before(upto), clients)?;
            tx.execute(
                "UPDATE meta SET value = value - ?1 WHERE key = 'rows'",
                [deleted],
            )?;
            // The day markers go with their blocks; the oldest day left
            // keeps one.
            blocks.move_markers_past(&tx, upto)?;
        }
    }
    // Roll-ups and names go with the rows they describe.
    let left = tx
        .query_row("SELECT min(id) FROM query_blocks", [], |r| {
            r.get::<_, Option<i64>>(0)
        })?
        .map(ms_of)
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
    rollups += tx.execute("DELETE FROM hour_upstreams WHERE hour < ?1", [hour])?;
    rollups += tx.execute("DELETE FROM hour_slow_domains WHERE hour < ?1", [hour])?;
    for blocked in 0..2 {
        rollups += tx.execute(
            "DELETE FROM hour_top_cutoffs WHERE blocked = ?1 AND hour < ?2",
            [blocked, hour],
        )?;
    }
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
    for blocked in 0..2 {
        rollups += tx.execute(
            "DELETE FROM day_top_cutoffs WHERE blocked = ?1 AND day < ?2",
            [blocked, day],
        )?;
    }
    rollups += super::block::domain_index::delete_before(&tx, day)?;
    let names = tx
        .prepare_cached(
            "DELETE FROM domains WHERE id IN
             (SELECT id FROM domains WHERE last_seen < ?1 ORDER BY last_seen LIMIT ?2)",
        )?
        .execute(params![day, NAMES_STEP])?;
    tx.commit()?;
    if deleted > 0 || rollups > 0 || names > 0 {
        return Ok(Some(StepOutcome::Deleted {
            rows: deleted as u64,
        }));
    }
    if free > 0 {
        conn.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})"))?;
        let after: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        return Ok(Some(StepOutcome::Vacuumed {
            pages: (free - after).max(0) as u64,
        }));
    }
    Ok(None)
}

/// What one [`move_legacy_rows`] step did.
pub(super) enum Migration {
    /// `queries` holds no more rows of an older build.
    Done,
    /// Rows were moved into blocks; the newest key written.
    Moved { newest: Option<i64> },
}

/// Moves the newest `MIGRATE_ROWS` rows an older build left in `queries`
/// into blocks and deletes them there, in one transaction.
pub(super) fn move_legacy_rows(
    conn: &Connection,
    blocks: &mut BlockWriter,
) -> rusqlite::Result<Migration> {
    let tx = conn.unchecked_transaction()?;
    let mut rows = Vec::new();
    {
        let mut st = tx.prepare_cached(
            "SELECT id, domain, client, qtype, rcode, status, upstream, latency_us, reason
             FROM queries WHERE NOT (client = 0 AND domain = 0) ORDER BY id DESC LIMIT ?1",
        )?;
        let mut q = st.query([MIGRATE_ROWS])?;
        while let Some(r) = q.next()? {
            rows.push(legacy_row(r)?);
        }
    }
    let Some(oldest) = rows.last().map(|r| r.key) else {
        tx.commit()?;
        return Ok(Migration::Done);
    };
    // Deleted first: a day marker may take a moved row's key.
    tx.prepare_cached("DELETE FROM queries WHERE id >= ?1 AND NOT (client = 0 AND domain = 0)")?
        .execute([oldest])?;
    // The merge's side rows go in before this transaction commits.
    let newest = merge_rows(&tx, &mut rows, &[], blocks)
        .and_then(|newest| blocks.write_side_rows(&tx).map(|()| newest))
        .inspect_err(|_| {
            // Rolled back with the transaction.
            blocks.forget_side_rows();
        })?;
    tx.commit()?;
    Ok(Migration::Moved { newest })
}

/// A row of the version-1 `queries` table, its values clamped into what
/// a block holds (a damaged or hand-edited row must not stop the move).
fn legacy_row(r: &rusqlite::Row) -> rusqlite::Result<Row> {
    let int = |i: usize| -> rusqlite::Result<i64> { Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0)) };
    Ok(Row {
        key: r.get(0)?,
        domain: int(1)?,
        client: int(2)?,
        qtype: int(3)?.clamp(0, i64::from(u16::MAX)) as u16,
        rcode: int(4)?.clamp(0, 255) as u8,
        status: int(5)?.clamp(0, Source::Failed as i64) as u8,
        upstream: r.get::<_, Option<i64>>(6)?.map(|u| u.clamp(0, 255) as u8),
        latency_us: int(7)?.clamp(0, i64::from(u32::MAX)) as u32,
        reason: r.get(8)?,
    })
}
