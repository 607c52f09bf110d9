//! The tail: the newest blocks, whose derived rows (roll-ups, slow
//! answers, `block_clients`, `block_statuses`, `domain_days`) are not
//! written yet. Writing those rows at every flush rewrote the same pages
//! of a dozen tables once a minute (most of a flush's bytes on flash), so
//! the writer keeps them in RAM and writes them once the hour closes or
//! the tail holds [`TAIL_ROWS`] rows (docs/querylog.md, "Writes to
//! flash"). They are derived from the blocks, so nothing is lost on a
//! power cut: the writer counts the tail again at its next start.
//!
//! `meta` row `derived_to` is the first block key whose derived rows may
//! be missing (blocks with a lower key have all of theirs);
//! `blocks_last` is the newest key this version stored (an older build
//! that wrote blocks after a rollback wrote their derived rows itself).
//! Readers add what [`TailSums`] decodes from the tail to what the
//! roll-ups say, and walk the tail's blocks by time where they would
//! look in a side table.
//!
//! Not for: the roll-ups themselves (`rollup.rs`, `slow.rs`) or the side
//! tables (`block/store.rs`, `block/domain_index.rs`).

use super::block::store::BlockWriter;
use super::block::{self, Row};
use super::ms_of;
use super::sketch::Sketch;
use crate::events::Source;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashMap};

/// Rows the tail holds at most before the writer writes its derived rows
/// (besides at each hour's end): a reader decodes at most this many
/// (64 full blocks, about a millisecond), and at household rates (up to
/// ~18 queries a second) the derived rows are written once an hour.
pub const TAIL_ROWS: usize = 65_536;

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

const META_SQL: &str = "SELECT value FROM meta WHERE key = ?1";
const SET_META_SQL: &str = "INSERT INTO meta (key, value) VALUES (?1, ?2)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const TAIL_BLOCKS_SQL: &str =
    "SELECT id, data FROM query_blocks WHERE id >= ?1 AND id <= ?2 ORDER BY id";

/// Statements, for the `EXPLAIN QUERY PLAN` test.
pub(super) fn statements() -> Vec<(String, String)> {
    [("tail: meta", META_SQL), ("tail: blocks", TAIL_BLOCKS_SQL)]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

fn meta(c: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached(META_SQL)?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// The first key of the tail: blocks from here on have no derived rows
/// yet. `i64::MAX` for a database no tail-keeping build wrote.
pub(super) fn tail_from(c: &Connection) -> rusqlite::Result<i64> {
    Ok(meta(c, "derived_to")?.unwrap_or(i64::MAX))
}

/// Records that every block below `to` has its derived rows.
pub(super) fn set_derived_to(c: &Connection, to: i64) -> rusqlite::Result<()> {
    c.prepare_cached(SET_META_SQL)?
        .execute(params!["derived_to", to])?;
    Ok(())
}

/// Records the newest key this version stored.
pub(super) fn set_blocks_last(c: &Connection, last: i64) -> rusqlite::Result<()> {
    c.prepare_cached(SET_META_SQL)?
        .execute(params!["blocks_last", last])?;
    Ok(())
}

/// The blocks a writer starting up counts again: from `derived_to` up to
/// the newest block this version stored (a newer one is an older
/// build's, with its derived rows). Calls `f` with each block's rows.
pub(super) fn for_each_underived(
    c: &Connection,
    mut f: impl FnMut(&[Row]) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let Some(from) = meta(c, "derived_to")? else {
        return Ok(());
    };
    let upto = meta(c, "blocks_last")?.unwrap_or(i64::MIN);
    for_each_block(c, from, upto, |rows| f(rows))
}

/// Counts the blocks a writer has not written the derived rows of
/// ([`for_each_underived`]) again: `count` for each row, their side rows
/// noted in `blocks`.
pub(super) fn recount(
    c: &Connection,
    blocks: &mut BlockWriter,
    mut count: impl FnMut(&Row) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut n = 0;
    for_each_underived(c, |rows| {
        blocks.note_side_rows(rows);
        rows.iter().try_for_each(&mut count)?;
        n += rows.len();
        if blocks.side_full() {
            blocks.write_side_rows(c)?;
        }
        Ok(())
    })?;
    if n > 0 {
        tracing::info!("query log: counted {n} rows again whose roll-ups were not written");
    }
    Ok(())
}

/// Calls `f` with the rows of each block whose key is in `[from, upto]`,
/// in key order; a damaged block is skipped with a warning.
pub(super) fn for_each_block(
    c: &Connection,
    from: i64,
    upto: i64,
    mut f: impl FnMut(&[Row]) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut st = c.prepare_cached(TAIL_BLOCKS_SQL)?;
    let mut blocks = st.query([from, upto])?;
    let mut rows = Vec::new();
    while let Some(b) = blocks.next()? {
        rows.clear();
        if let Err(e) = block::decode_into(b.get_ref(1)?.as_blob()?, &mut rows) {
            let id: i64 = b.get(0)?;
            tracing::warn!("query log: block {id} is damaged ({e}); its rows are skipped");
            continue;
        }
        f(&rows)?;
    }
    Ok(())
}

/// What the roll-ups would hold for the tail's rows, as readers need it.
#[derive(Default)]
pub(super) struct TailSums {
    /// Per Unix minute: counts by status (`events::Source`) and the
    /// latency sum, as `minute_counts` holds them.
    pub minutes: BTreeMap<i64, [i64; 8]>,
    /// (hour, client) -> (queries, blocked).
    pub clients: HashMap<(i64, i64), (i64, i64)>,
    /// (hour, domain) -> (queries, blocked): exact.
    pub domains: HashMap<(i64, i64), (i64, i64)>,
    pub qtypes: HashMap<(i64, u16), i64>,
    pub sketches: BTreeMap<i64, Sketch>,
    /// (hour, upstream) -> (answers, latency sum, maximum).
    pub upstreams: BTreeMap<(i64, u8), (i64, i64, i64)>,
    /// (hour, domain) -> slowest answer.
    pub slowest: HashMap<(i64, i64), u32>,
}

impl TailSums {
    /// Decodes the tail (at most [`TAIL_ROWS`] rows, plus what arrived
    /// since the writer last looked).
    pub(super) fn read(c: &Connection) -> rusqlite::Result<TailSums> {
        let mut t = TailSums::default();
        let from = tail_from(c)?;
        if from == i64::MAX {
            return Ok(t);
        }
        for_each_block(c, from, i64::MAX, |rows| {
            rows.iter().for_each(|r| t.add(r));
            Ok(())
        })?;
        Ok(t)
    }

    fn add(&mut self, r: &Row) {
        let ms = ms_of(r.key);
        let (minute, hour) = (ms.div_euclid(MINUTE), ms.div_euclid(HOUR));
        let blocked = i64::from(r.status == Source::Blocked as u8);
        let m = self.minutes.entry(minute).or_default();
        m[usize::from(r.status).min(6)] += 1;
        m[7] += i64::from(r.latency_us);
        let c = self.clients.entry((hour, r.client)).or_default();
        c.0 += 1;
        c.1 += blocked;
        let d = self.domains.entry((hour, r.domain)).or_default();
        d.0 += 1;
        d.1 += blocked;
        *self.qtypes.entry((hour, r.qtype)).or_default() += 1;
        self.sketches.entry(hour).or_default().insert(r.domain);
        if let Some(u) = r.upstream {
            let e = self.upstreams.entry((hour, u)).or_default();
            e.0 += 1;
            e.1 += i64::from(r.latency_us);
            e.2 = e.2.max(i64::from(r.latency_us));
        }
        let s = self.slowest.entry((hour, r.domain)).or_default();
        *s = (*s).max(r.latency_us);
    }

    /// Counts (as `minute_counts` sums them) of the minutes `lo..=hi`.
    pub(super) fn counts(&self, lo: i64, hi: i64) -> [i64; 8] {
        let mut out = [0; 8];
        for c in self.minutes.range(lo..=hi).map(|(_, c)| c) {
            out.iter_mut().zip(c).for_each(|(o, v)| *o += v);
        }
        out
    }
}
