//! What the writer does when a commit fails: the transaction is rolled
//! back and its rows counted as dropped; a full disk pauses logging and
//! retries, a damaged file is moved aside and a new one started. DNS never
//! waits on any of it.
//! Not for: committing (`writer.rs`), opening and checking the file
//! (`schema.rs`).

use super::super::lock;
use super::super::schema::move_aside;
use super::{Writer, is_code};
use rusqlite::ErrorCode;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Writer {
    /// A failed transaction is dropped and counted; what happens next
    /// depends on why it failed.
    pub(super) fn write_failed(&mut self, e: rusqlite::Error, rows: usize) {
        if let Some(conn) = &self.conn {
            // SQLite may have rolled back already (a full disk): then this fails.
            let _ = conn.execute_batch("ROLLBACK");
        }
        // Ids handed out inside the rolled-back transaction are gone, and
        // days it closed are open again (closing is idempotent).
        self.rollups.reopen_days();
        self.forget_cached();
        // What the tail's committed blocks had counted is gone with it.
        if let Some(conn) = self.conn.take() {
            if let Err(e) = self.recount_tail(&conn) {
                tracing::warn!("query log: counting the tail again: {e}");
            }
            self.conn = Some(conn);
        }
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
        let result = move_aside(&path)
            .map_err(anyhow::Error::from)
            .and_then(|aside| {
                self.moved_aside(detail, &aside);
                self.open_db()
            });
        if let Err(e) = result {
            lock(&self.shared.status).warning = Some(format!(
                "query log stopped: the database is damaged and could not be replaced: {e:#}"
            ));
        }
    }

    /// A damaged file was moved to `aside`: said in the log and on the
    /// status page, and readers reopen (a new generation).
    pub(super) fn moved_aside(&self, detail: &str, aside: &Path) {
        let note = format!(
            "the query log database was damaged ({detail}); it was moved to {} and a new one started",
            aside.display()
        );
        tracing::warn!("{note}");
        lock(&self.shared.status).warning = Some(note);
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
    }
}
