//! Blocks as SQLite rows: writing rows as blocks (one `query_blocks` row
//! per up to `BLOCK_ROWS` rows, plus side rows saying which clients and
//! uncommon statuses a block holds), merging rows whose keys land among
//! stored blocks, deleting blocks, and the day markers an older build
//! reads after a firmware rollback.
//!
//! Blocks never overlap: a row whose key lands among stored ones is
//! merged into place ([`merge_rows`]), so key order of blocks is row order.
//!
//! Not for: the blob's layout (`block.rs`), or when to write a block
//! (`writer.rs`) or delete one (`retention.rs`).

use super::domain_index::DomainIndex;
use super::{Row, decode, encode};
use crate::querylog::{key_of, ms_of};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

/// Rows per stored block, at most; a block also ends at an hour boundary
/// and at each commit, so at a household's rate a block holds one flush
/// interval's queries. 1 024 rows (8 to 12 KiB) makes SQLite's work per
/// query (one blob insert, one side row per client of the block) about a
/// thousandth of a row insert, while a reader that wants one row decodes
/// at most 1 024 (a few microseconds) and retention, which deletes whole
/// blocks, keeps its steps small.
pub const BLOCK_ROWS: usize = 1024;
/// Client ids below this are marked in a table by `distinct_clients`,
/// larger ones sorted.
const SMALL_CLIENT_IDS: usize = 4096;

// Statements on blocks, listed for the plan test (`statements`).
const BLOCK_AT_SQL: &str =
    "SELECT id, last FROM query_blocks WHERE id <= ?1 ORDER BY id DESC LIMIT 1";
const BLOCKS_BETWEEN_SQL: &str =
    "SELECT id, data FROM query_blocks WHERE id BETWEEN ?1 AND ?2 ORDER BY id";
const BLOCK_AFTER_SQL: &str = "SELECT id FROM query_blocks WHERE id > ?1 ORDER BY id LIMIT 1";
const DELETE_BLOCK_SQL: &str = "DELETE FROM query_blocks WHERE id = ?1";
const DELETE_BLOCK_CLIENT_SQL: &str = "DELETE FROM block_clients WHERE client = ?1 AND block = ?2";
const DELETE_BLOCK_STATUS_SQL: &str = "DELETE FROM block_statuses WHERE status = ?1 AND block = ?2";
const DELETE_BLOCKS_BEFORE_SQL: &str = "DELETE FROM query_blocks WHERE id < ?1";
const DELETE_CLIENT_BLOCKS_BEFORE_SQL: &str =
    "DELETE FROM block_clients WHERE client = ?1 AND block < ?2";
const DELETE_STATUS_BLOCKS_BEFORE_SQL: &str =
    "DELETE FROM block_statuses WHERE status = ?1 AND block < ?2";

/// The writer's statements on blocks and their side tables, for the
/// `EXPLAIN QUERY PLAN` test: each finds its rows through a key.
pub(in crate::querylog) fn statements() -> Vec<(String, String)> {
    [
        ("block at", BLOCK_AT_SQL),
        ("blocks between", BLOCKS_BETWEEN_SQL),
        ("block after", BLOCK_AFTER_SQL),
        ("delete block", DELETE_BLOCK_SQL),
        ("delete block client", DELETE_BLOCK_CLIENT_SQL),
        ("delete block status", DELETE_BLOCK_STATUS_SQL),
        ("delete blocks before", DELETE_BLOCKS_BEFORE_SQL),
        (
            "delete client blocks before",
            DELETE_CLIENT_BLOCKS_BEFORE_SQL,
        ),
        (
            "delete status blocks before",
            DELETE_STATUS_BLOCKS_BEFORE_SQL,
        ),
        ("day markers", MARKERS_SQL),
        ("delete day markers before", DELETE_MARKERS_BEFORE_SQL),
    ]
    .into_iter()
    .map(|(n, s)| (format!("writer: {n}"), s.to_string()))
    .collect()
}

/// Marks a day that has blocks with a row in `queries` (domain and
/// client 0, ids no name has, so an older build's pages never show it)
/// at the key of the day's first block. Version 4 keeps its rows out of
/// that table, but an older build running after a firmware rollback reads
/// `min(id) FROM queries` as the oldest stored row and trims roll-ups and
/// names older than it: the markers keep that the oldest day with blocks.
const MARK_DAY_SQL: &str = "INSERT OR IGNORE INTO queries
    (id, domain, client, qtype, rcode, status, latency_us) VALUES (?1, 0, 0, 0, 0, 0, 0)";
const MOVE_MARKER_SQL: &str = "UPDATE OR IGNORE queries SET id = ?1 WHERE id = ?2";
const MARKERS_SQL: &str = "SELECT id FROM queries WHERE client = 0 AND domain = 0";
const DELETE_MARKERS_BEFORE_SQL: &str =
    "DELETE FROM queries WHERE client = 0 AND domain = 0 AND id < ?1";

/// The distinct clients of `rows` into `out`. Small ids (a household's)
/// are marked in `seen` (left clear afterwards) instead of sorting; the
/// rest, if any, are sorted.
fn distinct_clients(rows: &[Row], seen: &mut Vec<bool>, out: &mut Vec<i64>) {
    out.clear();
    let mut large = Vec::new();
    for r in rows {
        match usize::try_from(r.client)
            .ok()
            .filter(|&c| c < SMALL_CLIENT_IDS)
        {
            Some(c) => {
                if seen.len() <= c {
                    seen.resize(c + 1, false);
                }
                if !seen[c] {
                    seen[c] = true;
                    out.push(r.client);
                }
            }
            None => large.push(r.client),
        }
    }
    for &c in out.iter() {
        seen[c as usize] = false;
    }
    large.sort_unstable();
    large.dedup();
    out.extend(large);
}

/// What writing blocks needs besides the connection.
#[derive(Default)]
pub(in crate::querylog) struct BlockWriter {
    /// The encoding buffer.
    blob: Vec<u8>,
    /// Scratch for `distinct_clients`.
    seen: Vec<bool>,
    clients: Vec<i64>,
    /// Unix day -> the key of its marker; `None`: read them again.
    marked: Option<BTreeMap<i64, i64>>,
    /// `(client, block)` rows of blocks written in the open transaction,
    /// not yet in `block_clients`: written together, in index order, so a
    /// client's rows of a whole batch share one visit to its index page
    /// (one per block thrashed the writer's small page cache with many
    /// clients).
    side_clients: Vec<(i64, i64)>,
    /// `(status, block)` rows held back the same way.
    side_statuses: Vec<(i64, i64)>,
    /// The hours each domain has rows in (`domain_days`), held back the
    /// same way.
    domains: DomainIndex,
}

/// Side rows held back at most (16 bytes each): the writer holds a
/// tail's side rows until the hour ends (`tail.rs`), at household rates
/// a few thousand.
const SIDE_CLIENTS_MAX: usize = 16_384;

impl BlockWriter {
    /// Writes the held-back `block_clients` and `domain_days` rows.
    /// Before a commit, and before blocks of the transaction may be
    /// deleted (`merge_rows`).
    pub(in crate::querylog) fn write_side_rows(
        &mut self,
        conn: &Connection,
    ) -> rusqlite::Result<()> {
        self.domains.write(conn)?;
        self.side_statuses.sort_unstable();
        let mut st = conn.prepare_cached(
            "INSERT OR IGNORE INTO block_statuses (status, block) VALUES (?1, ?2)",
        )?;
        for &(s, block) in &self.side_statuses {
            st.execute([s, block])?;
        }
        self.side_statuses.clear();
        if self.side_clients.is_empty() {
            return Ok(());
        }
        self.side_clients.sort_unstable();
        let mut st = conn.prepare_cached(
            "INSERT OR IGNORE INTO block_clients (client, block) VALUES (?1, ?2)",
        )?;
        for &(c, block) in &self.side_clients {
            st.execute([c, block])?;
        }
        self.side_clients.clear();
        Ok(())
    }

    /// Forgets what the rolled-back transaction left here: its held-back
    /// side rows, and the day markers as read (they are read again).
    pub(in crate::querylog) fn forget(&mut self) {
        self.marked = None;
        self.forget_side_rows();
    }

    /// Drops the held-back side rows (their blocks were rolled back).
    pub(in crate::querylog) fn forget_side_rows(&mut self) {
        self.side_clients.clear();
        self.side_statuses.clear();
        self.domains.forget();
    }

    /// RAM held by the buffers that grow with a block.
    pub(in crate::querylog) fn bytes(&self) -> usize {
        self.blob.capacity()
            + (self.side_clients.capacity() + self.side_statuses.capacity()) * 16
            + self.domains.bytes()
    }

    /// Notes the side rows of a stored block (key order, one hour):
    /// held back until `write_side_rows`.
    pub(in crate::querylog) fn note_side_rows(&mut self, rows: &[Row]) {
        let Some(first) = rows.first() else { return };
        distinct_clients(rows, &mut self.seen, &mut self.clients);
        self.side_clients
            .extend(self.clients.iter().map(|&c| (c, first.key)));
        self.domains.note_block(rows);
        let statuses = rows
            .iter()
            .filter(|r| r.status >= 2)
            .fold(0u8, |m, r| m | 1 << (r.status & 7));
        self.side_statuses.extend(
            (2..8)
                .filter(|s| statuses & (1 << s) != 0)
                .map(|s| (i64::from(s), first.key)),
        );
    }

    /// Notes a day's counts of a domain for `domain_days`, written with
    /// the next side rows (the tail's derived rows: `writer.rs`).
    pub(in crate::querylog) fn note_domain_counts(
        &mut self,
        conn: &Connection,
        day: i64,
        domain: i64,
        n: u32,
        blocked: u32,
    ) -> rusqlite::Result<()> {
        self.domains.note_counts(conn, day, domain, n, blocked)
    }

    /// Whether the side rows held back should be written now (RAM).
    pub(in crate::querylog) fn side_full(&self) -> bool {
        self.side_clients.len() >= SIDE_CLIENTS_MAX || self.domains.full()
    }

    /// Deletes the day markers of the blocks below `upto` (deleted with
    /// them) and keeps the oldest day left marked at its first block.
    pub(in crate::querylog) fn move_markers_past(
        &mut self,
        conn: &Connection,
        upto: i64,
    ) -> rusqlite::Result<()> {
        conn.prepare_cached(DELETE_MARKERS_BEFORE_SQL)?
            .execute([upto])?;
        self.marked = None;
        let first: Option<i64> =
            conn.query_row("SELECT min(id) FROM query_blocks", [], |r| r.get(0))?;
        if let Some(first) = first {
            self.mark_day(conn, first)?;
        }
        Ok(())
    }

    /// Keeps the day of `key` marked at or before `key`.
    pub(in crate::querylog) fn mark_day(
        &mut self,
        conn: &Connection,
        key: i64,
    ) -> rusqlite::Result<()> {
        let day = |k: i64| ms_of(k).div_euclid(86_400_000);
        let marked = match &mut self.marked {
            Some(m) => m,
            None => {
                let mut st = conn.prepare_cached(MARKERS_SQL)?;
                let keys = st.query_map([], |r| r.get::<_, i64>(0))?;
                let mut map = BTreeMap::new();
                for k in keys {
                    let k = k?;
                    let at = map.entry(day(k)).or_insert(k);
                    *at = (*at).min(k);
                }
                self.marked.insert(map)
            }
        };
        match marked.entry(day(key)) {
            Entry::Vacant(v) => {
                conn.prepare_cached(MARK_DAY_SQL)?.execute([key])?;
                v.insert(key);
            }
            Entry::Occupied(mut o) if *o.get() > key => {
                conn.prepare_cached(MOVE_MARKER_SQL)?
                    .execute([key, *o.get()])?;
                o.insert(key);
            }
            Entry::Occupied(_) => {}
        }
        Ok(())
    }
}

/// Writes rows in key order (above every stored key, or with the
/// blocks they overlap already deleted) as blocks of at most `BLOCK_ROWS`
/// rows, each within one hour.
pub(in crate::querylog) fn write_sorted(
    conn: &Connection,
    rows: &[Row],
    bw: &mut BlockWriter,
) -> rusqlite::Result<()> {
    let mut rest = rows;
    while let Some(first) = rest.first() {
        // Rows are in key order: the hour ends at the first key past it.
        let hour = ms_of(first.key).div_euclid(3_600_000);
        let end = key_of((hour + 1) * 3_600_000);
        let n = rest
            .iter()
            .take(BLOCK_ROWS)
            .position(|r| r.key >= end)
            .unwrap_or(rest.len().min(BLOCK_ROWS));
        write_block(conn, &rest[..n], bw)?;
        rest = &rest[n..];
    }
    Ok(())
}

/// One block and its side rows (one per client, one per uncommon status).
fn write_block(conn: &Connection, rows: &[Row], bw: &mut BlockWriter) -> rusqlite::Result<()> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(());
    };
    let blob = &mut bw.blob;
    blob.clear();
    encode(rows, blob);
    conn.prepare_cached("INSERT INTO query_blocks (id, last, rows, data) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![first.key, last.key, rows.len() as i64, &blob[..]])?;
    bw.note_side_rows(rows);
    if bw.side_full() {
        bw.write_side_rows(conn)?;
    }
    bw.mark_day(conn, first.key)
}

/// Which blocks [`delete_blocks`] takes.
pub(in crate::querylog) enum Blocks {
    /// The block with this key.
    One(i64),
    /// Every block with a key below this one.
    Before(i64),
}

/// Deletes blocks and their side rows: `clients` are the clients of
/// their rows (any order, repeats allowed); every uncommon status is
/// tried (`block_statuses` is keyed by status first).
pub(in crate::querylog) fn delete_blocks(
    conn: &Connection,
    which: Blocks,
    mut clients: Vec<i64>,
) -> rusqlite::Result<()> {
    let (blocks_sql, clients_sql, statuses_sql, key) = match which {
        Blocks::One(id) => (
            DELETE_BLOCK_SQL,
            DELETE_BLOCK_CLIENT_SQL,
            DELETE_BLOCK_STATUS_SQL,
            id,
        ),
        Blocks::Before(upto) => (
            DELETE_BLOCKS_BEFORE_SQL,
            DELETE_CLIENT_BLOCKS_BEFORE_SQL,
            DELETE_STATUS_BLOCKS_BEFORE_SQL,
            upto,
        ),
    };
    conn.prepare_cached(blocks_sql)?.execute([key])?;
    clients.sort_unstable();
    clients.dedup();
    let mut st = conn.prepare_cached(clients_sql)?;
    for c in clients {
        st.execute([c, key])?;
    }
    let mut st = conn.prepare_cached(statuses_sql)?;
    for status in 2..8 {
        st.execute([status, key])?;
    }
    Ok(())
}

/// Stores `past` (rows whose keys may fall among stored ones) together
/// with `open` (rows above every stored key, in order): the stored blocks
/// the past rows reach into are read, merged and written again. A past
/// row whose key is taken moves to the first free key after it, as the
/// row table did. Returns the newest key written.
pub(in crate::querylog) fn merge_rows(
    conn: &Connection,
    past: &mut [Row],
    open: &[Row],
    bw: &mut BlockWriter,
) -> rusqlite::Result<Option<i64>> {
    // Blocks of the open transaction may be deleted below: their side
    // rows must be in the table first.
    bw.write_side_rows(conn)?;
    past.sort_by_key(|r| r.key);
    let Some(lo) = past.first().map(|r| r.key) else {
        write_sorted(conn, open, bw)?;
        return Ok(open.last().map(|r| r.key));
    };
    let wanted: Vec<i64> = past.iter().map(|r| r.key).collect();
    // The block that may hold `lo`, and every block up to `hi`.
    let start = conn
        .prepare_cached(BLOCK_AT_SQL)?
        .query_row([lo], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .optional()?
        .filter(|&(_, last)| last >= lo)
        .map_or(lo, |(id, _)| id);
    let mut hi = wanted[wanted.len() - 1];
    let mut loaded: Vec<(i64, Vec<Row>)>;
    loop {
        loaded = Vec::new();
        {
            let mut st = conn.prepare_cached(BLOCKS_BETWEEN_SQL)?;
            let mut rows = st.query([start, hi])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                match decode(r.get_ref(1)?.as_blob()?) {
                    Ok(v) => loaded.push((id, v)),
                    // Left in place: its rows cannot be merged.
                    Err(e) => {
                        tracing::warn!("query log: block {id} is damaged ({e}); left as it is")
                    }
                }
            }
        }
        // Keys taken, in order: stored rows, then the open ones above them.
        let mut taken = loaded
            .iter()
            .flat_map(|(_, v)| v.iter().map(|r| r.key))
            .chain(open.iter().map(|r| r.key))
            .peekable();
        let mut prev = i64::MIN;
        for (r, &want) in past.iter_mut().zip(&wanted) {
            let mut k = want.max(prev.saturating_add(1));
            while let Some(&t) = taken.peek() {
                if t < k {
                    taken.next();
                } else if t == k {
                    k += 1;
                    taken.next();
                } else {
                    break;
                }
            }
            r.key = k;
            prev = k;
        }
        // A key moved past `hi` may reach into the next stored block: then
        // that block is merged too.
        let next: Option<i64> = conn
            .prepare_cached(BLOCK_AFTER_SQL)?
            .query_row([hi], |r| r.get(0))
            .optional()?;
        match next {
            Some(n) if prev >= n => hi = prev,
            _ => break,
        }
    }
    let mut merged: Vec<Row> = Vec::with_capacity(
        loaded.iter().map(|(_, v)| v.len()).sum::<usize>() + past.len() + open.len(),
    );
    for (id, rows) in &loaded {
        delete_blocks(
            conn,
            Blocks::One(*id),
            rows.iter().map(|r| r.client).collect(),
        )?;
    }
    merged.extend(loaded.into_iter().flat_map(|(_, v)| v));
    merged.extend_from_slice(past);
    merged.extend_from_slice(open);
    merged.sort_unstable_by_key(|r| r.key);
    write_sorted(conn, &merged, bw)?;
    Ok(merged.last().map(|r| r.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_lists_each_client_once() {
        let row = |client| Row {
            key: 0,
            domain: 1,
            client,
            qtype: 1,
            rcode: 0,
            status: 0,
            upstream: None,
            latency_us: 0,
            reason: None,
        };
        let rows: Vec<Row> = [3, 1, 3, i64::MAX, 0, -4, 1, i64::MAX, 5000, 3]
            .into_iter()
            .map(row)
            .collect();
        let (mut seen, mut out) = (Vec::new(), Vec::new());
        distinct_clients(&rows, &mut seen, &mut out);
        out.sort_unstable();
        assert_eq!(out, [-4, 0, 1, 3, 5000, i64::MAX]);
        assert!(seen.iter().all(|&s| !s), "left clear for the next block");
        distinct_clients(&rows[..2], &mut seen, &mut out);
        assert_eq!(out, [3, 1]);
    }
}
