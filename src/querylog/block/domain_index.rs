//! The domain index: which hours each domain has rows in (`domain_days`,
//! one row per domain and day with a bit per hour), so a search for one
//! domain, or for the few names a substring matches, reads only the blocks
//! of those hours (a block never spans two hours) instead of every block
//! of the range.
//!
//! Writing: every block written (`block/store.rs`) passes its rows here;
//! a (domain, hour) pair already noted costs one comparison in a small
//! direct-mapped table, a new one is held back and written, merged and in
//! key order, before the commit. Per day rather than per block: at the
//! benchmark's traffic a block holds ~670 distinct names in 1 024 rows, so
//! one index row per domain and block would cost more bytes than the
//! blocks; per day it is ~0.22 rows per query (docs/querylog.md).
//!
//! Coverage: `meta` row `domain_index_from` is the key from which every
//! block is in the index. A database upgraded from version 4, or one an
//! older build wrote blocks into after a firmware rollback (found by
//! `domain_index_last`, the newest block key indexed), is covered only from
//! the next block on; older rows are found by walking the blocks, as before.
//!
//! Not for: deciding which rows a page shows (`stats.rs`), or the blob of
//! a block (`block.rs`).

use super::Row;
use crate::querylog::{key_of, ms_of};
use rusqlite::{Connection, OptionalExtension, params};

const HOUR: i64 = 3_600_000;
/// Slots of the table of pairs already noted (16 bytes each: 128 KiB).
const SEEN_SLOTS: usize = 8192;
/// Pairs held back at most before they are written (24 bytes each).
const PENDING_MAX: usize = 16_384;
/// A search looks up at most this many (domain, day) rows; a substring
/// matching more names than that over the range walks the blocks instead.
const MAX_LOOKUPS: usize = 20_000;

/// The hours bits, and the day's counts (`domain_counts.rs`) added.
const UPSERT_SQL: &str = "INSERT INTO domain_days (day, domain, hours, n, blocked)
    VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT (day, domain) DO UPDATE SET hours = hours | excluded.hours,
    n = coalesce(n, 0) + excluded.n, blocked = coalesce(blocked, 0) + excluded.blocked";
const HOURS_SQL: &str = "SELECT hours FROM domain_days WHERE day = ?1 AND domain = ?2";
const META_SQL: &str = "SELECT value FROM meta WHERE key = ?1";
const SET_META_SQL: &str = "INSERT INTO meta (key, value) VALUES (?1, ?2)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value";
/// Index rows retention deletes per step, at most (a day at the
/// benchmark's traffic has ~70 000).
const DELETE_STEP: i64 = 2000;
const DELETE_BEFORE_SQL: &str = "DELETE FROM domain_days WHERE (day, domain) IN
    (SELECT day, domain FROM domain_days WHERE day < ?1 LIMIT ?2)";
const NEWEST_SQL: &str = "SELECT last FROM query_blocks WHERE id < ?1 ORDER BY id DESC LIMIT 1";
const OLDEST_SQL: &str = "SELECT id FROM query_blocks WHERE id >= ?1 ORDER BY id LIMIT 1";

/// The index's statements, for the `EXPLAIN QUERY PLAN` test.
pub(in crate::querylog) fn statements() -> Vec<(String, String)> {
    [
        ("domain index: hours of a domain", HOURS_SQL),
        ("domain index: meta", META_SQL),
        ("domain index: delete days before", DELETE_BEFORE_SQL),
        ("domain index: newest block", NEWEST_SQL),
        ("domain index: oldest block", OLDEST_SQL),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s.to_string()))
    .collect()
}

/// What the writer keeps for the index between blocks and commits.
pub(in crate::querylog) struct DomainIndex {
    /// (domain, hour) pairs noted lately, by a hash of the domain.
    seen: Box<[(i64, i64)]>,
    /// (day, domain, hour bits, queries, blocked) not yet written
    /// (24 bytes).
    pending: Vec<(i32, i64, u32, u32, u32)>,
    /// The newest block key noted since the last write.
    newest: Option<i64>,
}

impl Default for DomainIndex {
    fn default() -> DomainIndex {
        DomainIndex {
            seen: vec![(i64::MIN, i64::MIN); SEEN_SLOTS].into_boxed_slice(),
            pending: Vec::new(),
            newest: None,
        }
    }
}

fn slot(domain: i64) -> usize {
    ((domain as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 51) as usize % SEEN_SLOTS
}

impl DomainIndex {
    /// Notes the domains of a block's rows (key order).
    pub(in crate::querylog) fn note_block(&mut self, rows: &[Row]) {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return;
        };
        let hour_of = |k: i64| ms_of(k).div_euclid(HOUR);
        let one_hour = hour_of(first.key) == hour_of(last.key);
        let mut hour = hour_of(first.key);
        for r in rows {
            if !one_hour {
                hour = hour_of(r.key);
            }
            let s = &mut self.seen[slot(r.domain)];
            if *s != (r.domain, hour) {
                *s = (r.domain, hour);
                self.pending.push((
                    hour.div_euclid(24) as i32,
                    r.domain,
                    1 << hour.rem_euclid(24),
                    0,
                    0,
                ));
            }
        }
        self.newest = Some(self.newest.map_or(first.key, |n| n.max(first.key)));
    }

    /// Notes a day's counts of a domain, to be added by the next write
    /// (only with the tail's derived rows: they are not idempotent);
    /// writes what is held back once it is full.
    pub(in crate::querylog) fn note_counts(
        &mut self,
        conn: &Connection,
        day: i64,
        domain: i64,
        n: u32,
        blocked: u32,
    ) -> rusqlite::Result<()> {
        self.pending.push((day as i32, domain, 0, n, blocked));
        if self.full() {
            self.write(conn)?;
        }
        Ok(())
    }

    /// Whether enough is held back to write it now.
    pub(in crate::querylog) fn full(&self) -> bool {
        self.pending.len() >= PENDING_MAX
    }

    /// Writes what is held back, in key order, one row per (day, domain).
    pub(in crate::querylog) fn write(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if !self.pending.is_empty() {
            self.pending.sort_unstable();
            let mut st = conn.prepare_cached(UPSERT_SQL)?;
            let mut i = 0;
            while i < self.pending.len() {
                let (day, domain, mut bits, mut n, mut blocked) = self.pending[i];
                i += 1;
                while let Some(&(d, id, b, more, more_blocked)) = self.pending.get(i)
                    && (d, id) == (day, domain)
                {
                    bits |= b;
                    n += more;
                    blocked += more_blocked;
                    i += 1;
                }
                st.execute(params![day, domain, bits, n, blocked])?;
            }
            self.pending.clear();
        }
        if let Some(newest) = self.newest.take() {
            conn.prepare_cached(
                "INSERT INTO meta (key, value) VALUES ('domain_index_last', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            )?
            .execute([newest])?;
        }
        Ok(())
    }

    /// Forgets what a rolled-back transaction noted (pairs noted in it
    /// are noted again).
    pub(in crate::querylog) fn forget(&mut self) {
        self.pending.clear();
        self.newest = None;
        self.seen.fill((i64::MIN, i64::MIN));
    }

    pub(in crate::querylog) fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.seen) + self.pending.capacity() * 24
    }
}

fn meta(c: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached(META_SQL)?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// At the writer's start: from which key the index covers every block.
/// Blocks above the newest one indexed were written by a build that does
/// not keep the index (or none are indexed yet): coverage starts after
/// the newest stored block.
pub(in crate::querylog) fn open(conn: &Connection) -> rusqlite::Result<()> {
    let newest: Option<i64> =
        conn.query_row("SELECT max(id) FROM query_blocks", [], |r| r.get(0))?;
    let from = meta(conn, "domain_index_from")?;
    let last = meta(conn, "domain_index_last")?;
    let covered = match (from, newest) {
        (Some(_), None) => true,
        (Some(_), Some(n)) => last.is_some_and(|l| l >= n),
        (None, newest) => newest.is_none(),
    };
    if covered && from.is_some() {
        return Ok(());
    }
    let from = match newest {
        Some(n) if !covered => n + 1,
        _ => i64::MIN,
    };
    let mut st = conn.prepare_cached(SET_META_SQL)?;
    st.execute(params!["domain_index_from", from])?;
    st.execute(params!["domain_index_last", newest.unwrap_or(i64::MIN)])?;
    Ok(())
}

/// Deletes index rows of days before `day`, a step's worth (retention
/// comes back while it deletes any).
pub(in crate::querylog) fn delete_before(conn: &Connection, day: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(DELETE_BEFORE_SQL)?
        .execute([day, DELETE_STEP])
}

/// Where a domain search reads, a day at a time (newest first), so a page
/// that fills from the newest hours looks up no older days: the key
/// ranges of the hours the names have rows in, then, below
/// `covered_from`, the blocks the index does not cover.
pub(in crate::querylog) struct Hours {
    ids: Vec<i64>,
    /// The next day to look up, and the oldest.
    day: i64,
    oldest_day: i64,
    start: i64,
    hi: i64,
    /// Rows below this key are not in the index.
    pub covered_from: i64,
}

impl Hours {
    /// The `[lo, hi)` key ranges of the next day's hours the names have
    /// rows in, newest first; `None` once every day was looked up.
    pub(in crate::querylog) fn next_day(
        &mut self,
        c: &Connection,
    ) -> rusqlite::Result<Option<Vec<(i64, i64)>>> {
        if self.day < self.oldest_day {
            return Ok(None);
        }
        let day = self.day;
        self.day -= 1;
        let mut st = c.prepare_cached(HOURS_SQL)?;
        let mut mask = 0i64;
        for &id in &self.ids {
            if let Some(bits) = st.query_row([day, id], |r| r.get::<_, i64>(0)).optional()? {
                mask |= bits;
            }
        }
        let mut ranges = Vec::new();
        for h in (0..24).rev().filter(|h| mask & (1 << h) != 0) {
            let hour = day * 24 + h;
            let (a, b) = (
                key_of(hour * HOUR).max(self.start),
                key_of((hour + 1) * HOUR).min(self.hi),
            );
            if a < b {
                ranges.push((a, b));
            }
        }
        Ok(Some(ranges))
    }
}

/// Where the rows of the domains `ids` in `[lo, hi)` (keys) are; `None`
/// when looking them up would take more than [`MAX_LOOKUPS`] look-ups (the
/// caller walks the blocks instead).
pub(in crate::querylog) fn hours_of(
    c: &Connection,
    ids: &[i64],
    lo: i64,
    hi: i64,
) -> rusqlite::Result<Option<Hours>> {
    let covered_from = meta(c, "domain_index_from")?.unwrap_or(i64::MAX);
    let start = lo.max(covered_from);
    let mut hours = Hours {
        ids: ids.to_vec(),
        day: 0,
        oldest_day: 1,
        start,
        hi,
        covered_from,
    };
    if start >= hi {
        return Ok(Some(hours));
    }
    // Rows of `[start, hi)` lie between the oldest block and the last row
    // of the newest block below `hi`.
    let first = |sql: &str, key: i64| -> rusqlite::Result<Option<i64>> {
        c.prepare_cached(sql)?
            .query_row([key], |r| r.get(0))
            .optional()
    };
    let (Some(newest), Some(oldest)) = (first(NEWEST_SQL, hi)?, first(OLDEST_SQL, i64::MIN)?)
    else {
        return Ok(Some(hours));
    };
    let day_of = |k: i64| ms_of(k).div_euclid(HOUR).div_euclid(24);
    let (d_lo, d_hi) = (day_of(start.max(oldest)), day_of((hi - 1).min(newest)));
    let days = (d_hi - d_lo + 1).max(0) as usize;
    if days.saturating_mul(ids.len()) > MAX_LOOKUPS {
        return Ok(None);
    }
    (hours.day, hours.oldest_day) = (d_hi, d_lo);
    Ok(Some(hours))
}
