//! Retention passes and the move of an older build's rows into blocks,
//! as the writer runs them: one short transaction at a time, between its
//! batches, so the live rows never wait long.
//! Not for: what a step deletes or moves (`retention.rs`), when steps run
//! (the writer's loop, `writer.rs`).

use super::super::retention::{self, Migration, RetentionPass, StepOutcome};
use super::super::{RetentionReport, lock};
use super::{Writer, is_code};
use crate::clock;
use rusqlite::{Connection, ErrorCode};
use std::sync::mpsc::SyncSender;
use std::time::Instant;

impl Writer {
    pub(super) fn start_retention(&mut self, ack: Option<SyncSender<RetentionReport>>) {
        self.last_retention = Instant::now();
        if self.conn.is_none() {
            if let Some(ack) = ack {
                let _ = ack.send(RetentionReport::default());
            }
            return;
        }
        self.retention
            .get_or_insert_with(RetentionPass::new)
            .notify(ack);
    }

    /// One short transaction of retention work; the pass ends when nothing
    /// is too old, the file fits and the free pages are returned.
    pub(super) fn retention_step(&mut self) {
        let Some(conn) = self.conn.take() else {
            self.finish_retention();
            return;
        };
        let t = Instant::now();
        let cpu = clock::thread_cpu_ms();
        let result = self.retention_step_on(&conn);
        self.conn = Some(conn);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let cpu_ms = clock::thread_cpu_ms() - cpu;
        let pass = self.retention.as_mut().expect("a pass is running");
        pass.note_step(ms, cpu_ms, result.as_ref().ok().and_then(Option::as_ref));
        {
            let mut st = lock(&self.shared.status);
            st.max_retention_step_ms = st.max_retention_step_ms.max(ms);
        }
        match result {
            Ok(Some(StepOutcome::Deleted { .. })) => {
                self.step_rows = retention::next_step_rows(self.step_rows, ms);
            }
            Ok(Some(StepOutcome::Vacuumed { .. })) => {}
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

    /// Moves a step's worth of the rows an older build left in `queries`
    /// into blocks.
    fn migrate_step(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        match retention::move_legacy_rows(conn, &mut self.blocks)? {
            Migration::Done => self.legacy_left = false,
            Migration::Moved { newest } => {
                if let Some(k) = newest {
                    self.last_key = self.last_key.max(k);
                }
            }
        }
        Ok(())
    }

    /// One migration step outside a retention pass; the open transaction
    /// is committed first.
    pub(super) fn migrate_now(&mut self) {
        if self.tx_rows > 0 {
            self.flush();
        }
        let Some(conn) = self.conn.take() else {
            self.legacy_left = false;
            return;
        };
        let result = self.migrate_step(&conn);
        self.conn = Some(conn);
        if let Err(e) = result {
            // Tried again at the next start; until then those rows are
            // missing from the log page (the roll-ups still count them).
            self.legacy_left = false;
            tracing::warn!("query log: moving rows of an older version into blocks: {e}");
            lock(&self.shared.status).warning = Some(format!(
                "query log: rows of an older version not moved into blocks: {e}"
            ));
        }
        self.checkpoint_if(self.checkpoint_frames);
    }

    fn finish_retention(&mut self) {
        // A pass that found nothing to do (the common case: one a minute)
        // leaves the WAL alone, so a checkpoint still comes only every
        // `CHECKPOINT_BYTES` and writes a page many flushes changed once.
        if self
            .retention
            .as_ref()
            .is_some_and(RetentionPass::changed_or_asked)
        {
            self.checkpoint_if(1);
        }
        if let Some(pass) = self.retention.take() {
            pass.finish();
        }
    }

    /// Returns what kind of work was done, `None` when nothing was left.
    fn retention_step_on(&mut self, conn: &Connection) -> rusqlite::Result<Option<StepOutcome>> {
        if self.legacy_left {
            // Rows an older build left are moved first: retention then
            // sees every row in blocks.
            self.migrate_step(conn)?;
            return Ok(Some(StepOutcome::Deleted { rows: 0 }));
        }
        let done = retention::step(conn, &self.cfg, self.step_rows, &mut self.blocks)?;
        if let Some(StepOutcome::Deleted { rows }) = done
            && rows > 0
        {
            let mut st = lock(&self.shared.status);
            st.rows = st.rows.saturating_sub(rows);
        }
        Ok(done)
    }
}
