//! Exact top domains for the short ranges the dashboard offers (1h and
//! 24h): the stored rows of the range, counted one by one from their
//! blocks. The roll-ups keep only each closed hour's top 100 (a
//! space-saving summary, `rollup.rs`), which is exact only for the
//! domains far above the hour's cut-off. Counting costs no byte on disk
//! or on flash, but ~35 ns per row on the benchmark machine, so it is
//! done for ranges of at most [`EXACT_ROWS`] rows (the 1h range at any
//! household rate, the 24h range up to ~3 queries a second); busier
//! ranges read the roll-ups (docs/querylog.md, "Which figures are
//! estimates").
//!
//! Not for: ranges longer than [`EXACT_SPAN_MS`] (their top lists add up
//! the hour and day roll-ups, `stats.rs`), or top clients (exact from the
//! roll-ups for every range).

use super::{key_of, tail};
use crate::events::Source;
use rusqlite::{Connection, OptionalExtension};

/// Ranges up to this long (25 hours: the 24h range touches 25 hours)
/// count their rows; longer ones read the roll-ups.
pub const EXACT_SPAN_MS: i64 = 25 * 3_600_000;
/// Rows a range may hold and still be counted (about 9 ms).
pub const EXACT_ROWS: i64 = 250_000;

/// The block holding the row at key ?1, if any: a block may begin
/// before the range.
const FIRST_BLOCK_SQL: &str = "SELECT max(id) FROM query_blocks WHERE id <= ?1";
/// Rows in the blocks of `[?1, ?2)`, read from the blocks' `rows` column
/// (the blobs stay unread).
const ROWS_SQL: &str = "SELECT coalesce(sum(rows), 0) FROM query_blocks
    WHERE id >= coalesce((SELECT max(id) FROM query_blocks WHERE id <= ?1), ?1) AND id < ?2";
const DOMAIN_NAME_SQL: &str = "SELECT name FROM domains WHERE id = ?1";

/// Statements, for the `EXPLAIN QUERY PLAN` test.
pub(super) fn statements() -> Vec<(String, String)> {
    vec![
        ("exact top: first block".into(), FIRST_BLOCK_SQL.into()),
        ("exact top: rows of a range".into(), ROWS_SQL.into()),
    ]
}

/// Whether `[from_ms, to_ms)` is short enough to count its rows.
pub(super) fn countable(c: &Connection, from_ms: i64, to_ms: i64) -> rusqlite::Result<bool> {
    if to_ms - from_ms > EXACT_SPAN_MS {
        return Ok(false);
    }
    let rows: i64 = c
        .prepare_cached(ROWS_SQL)?
        .query_row([key_of(from_ms), key_of(to_ms)], |r| r.get(0))?;
    Ok(rows <= EXACT_ROWS)
}

/// The `n` domains asked most in `[from_ms, to_ms)` (all queries, or only
/// blocked ones), with their exact counts; ties to the lower domain id, as
/// the roll-ups' lists.
pub(super) fn top_domains(
    c: &Connection,
    from_ms: i64,
    to_ms: i64,
    n: usize,
    blocked_only: bool,
) -> anyhow::Result<Vec<(String, u64)>> {
    let (lo, hi) = (key_of(from_ms), key_of(to_ms));
    let mut counts = super::sketch::IdMap::<i64, u64>::default();
    let first: Option<i64> = c
        .prepare_cached(FIRST_BLOCK_SQL)?
        .query_row([lo], |r| r.get(0))?;
    let blocked = Source::Blocked as u8;
    tail::for_each_block(c, first.unwrap_or(lo), hi - 1, |rows| {
        for r in rows.iter().filter(|r| (lo..hi).contains(&r.key)) {
            if !blocked_only || r.status == blocked {
                *counts.entry(r.domain).or_default() += 1;
            }
        }
        Ok(())
    })?;
    let mut v: Vec<(i64, u64)> = counts.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    let mut name = c.prepare_cached(DOMAIN_NAME_SQL)?;
    let mut out = Vec::with_capacity(v.len());
    for (id, count) in v {
        if let Some(s) = name.query_row([id], |r| r.get::<_, String>(0)).optional()? {
            out.push((s, count));
        }
    }
    Ok(out)
}
