//! Long walks over the stored rows for the read side (the `queries` SQL
//! table, exports): every row a [`Filter`] selects, in time order either
//! way, one block decoded at a time, so the walk holds the same RAM over
//! an hour or a month.
//!
//! Which blocks it reads follows the filter: one client's through
//! `block_clients`, one uncommon status's through `block_statuses`, a few
//! domains' in the hours the domain index (`domain_days`, where the
//! database has it) lists, otherwise every block in the time range, along
//! the primary key.
//!
//! Not for: the log page's bounded newest-first pages (`stats.rs`), or
//! writing blocks (`block/store.rs`).

use super::block::{self, Row, domain_index};
use super::tail;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use std::borrow::Borrow;
use std::collections::VecDeque;

/// Which rows a walk yields; every field narrows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The first row key (`key_of` a time).
    pub lo: i64,
    /// Keys below this.
    pub hi: i64,
    pub client: Option<i64>,
    /// Domain ids, ascending.
    pub domains: Option<Vec<i64>>,
    pub status: Option<u8>,
    pub qtype: Option<u16>,
}

impl Default for Filter {
    fn default() -> Filter {
        Filter {
            lo: i64::MIN,
            hi: i64::MAX,
            client: None,
            domains: None,
            status: None,
            qtype: None,
        }
    }
}

impl Filter {
    pub(super) fn matches(&self, r: &Row) -> bool {
        r.key >= self.lo
            && r.key < self.hi
            && self.client.is_none_or(|c| r.client == c)
            && self.status.is_none_or(|s| r.status == s)
            && self.qtype.is_none_or(|t| r.qtype == t)
            && self
                .domains
                .as_ref()
                .is_none_or(|d| d.binary_search(&r.domain).is_ok())
    }
}

/// Block ids fetched per look at an index.
const BATCH: i64 = 64;

/// How a walk finds its blocks within each key range it walks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Driver {
    Time,
    Client(i64),
    Status(u8),
}

const BLOCK_AT_SQL: &str =
    "SELECT id, last FROM main.query_blocks WHERE id <= ?1 ORDER BY id DESC LIMIT 1";
const BLOCK_DATA_SQL: &str = "SELECT data FROM main.query_blocks WHERE id = ?1";

/// The statement listing a driver's next block ids in `[?1, ?2)` (its key
/// bound as ?3), ascending or descending.
fn batch_sql(driver: Driver, desc: bool) -> String {
    let (table, col, key) = match driver {
        Driver::Time => ("query_blocks", "id", None),
        Driver::Client(_) => ("block_clients", "block", Some("client")),
        Driver::Status(_) => ("block_statuses", "block", Some("status")),
    };
    let key = key.map(|k| format!("{k} = ?3 AND ")).unwrap_or_default();
    let order = if desc { "DESC" } else { "" };
    format!(
        "SELECT {col} FROM main.{table} WHERE {key}{col} >= ?1 AND {col} < ?2 \
         ORDER BY {col} {order} LIMIT {BATCH}"
    )
}

/// Every statement a walk may run, for the `EXPLAIN QUERY PLAN` check
/// (the domain index's own are listed by `block::domain_index`).
pub fn statements() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        [("block at", BLOCK_AT_SQL), ("block data", BLOCK_DATA_SQL)]
            .into_iter()
            .map(|(n, s)| (format!("scan: {n}"), s.to_string()))
            .collect();
    for d in [Driver::Time, Driver::Client(0), Driver::Status(3)] {
        for desc in [false, true] {
            out.push((format!("scan: {d:?} desc={desc}"), batch_sql(d, desc)));
        }
    }
    out
}

/// The key ranges of `[lo, hi)` that can hold rows of the domains `ids`,
/// ascending, from the domain index (`block::domain_index`): below the key
/// the index covers from, all of it; above, only the hours listed. `None`:
/// more look-ups than the index allows (walk every block instead).
fn domain_ranges(
    c: &Connection,
    ids: &[i64],
    lo: i64,
    hi: i64,
) -> rusqlite::Result<Option<Vec<(i64, i64)>>> {
    let Some(mut hours) = domain_index::hours_of(c, ids, lo, hi)? else {
        return Ok(None);
    };
    // Days come newest first, each day's hours newest first.
    let mut ranges = Vec::new();
    while let Some(day) = hours.next_day(c)? {
        ranges.extend(day);
    }
    ranges.reverse();
    let uncovered = hours.covered_from.min(hi);
    if lo < uncovered {
        ranges.insert(0, (lo, uncovered));
    }
    Ok(Some(ranges))
}

/// A walk in progress. `C` is the connection, owned or borrowed.
pub struct Scan<C: Borrow<Connection>> {
    conn: C,
    filter: Filter,
    desc: bool,
    /// How the current range finds its blocks.
    driver: Driver,
    /// Key ranges still to walk, in walk order, each with its driver.
    ranges: VecDeque<(i64, i64, Driver)>,
    /// Block ids still to read, in walk order.
    queue: VecDeque<i64>,
    /// Block ids of the current range not yet listed: `[from, to)`.
    from: i64,
    to: i64,
    /// The last block read: ranges may meet in a block, which is read once.
    last_block: Option<i64>,
    /// The current block's rows, and the next one to look at.
    rows: Vec<Row>,
    at: usize,
}

impl<C: Borrow<Connection>> Scan<C> {
    /// A walk over the rows `filter` selects, oldest first or (`desc`)
    /// newest first.
    pub fn new(conn: C, filter: Filter, desc: bool) -> rusqlite::Result<Scan<C>> {
        let c = conn.borrow();
        let driver = match (filter.client, filter.status) {
            (Some(id), _) => Driver::Client(id),
            (None, Some(s)) if s >= 2 => Driver::Status(s),
            _ => Driver::Time,
        };
        // The tail's blocks are in no side table yet (`tail.rs`): walked
        // along the primary key.
        let tail_from = tail::tail_from(c)?.max(filter.lo);
        let below = filter.hi.min(tail_from);
        let mut ranges = vec![(filter.lo, below, driver)];
        if driver == Driver::Time
            && let Some(ids) = &filter.domains
            && let Some(r) = domain_ranges(c, ids, filter.lo, below)?
        {
            ranges = r.into_iter().map(|(a, b)| (a, b, driver)).collect();
        }
        ranges.push((tail_from, filter.hi, Driver::Time));
        ranges.retain(|(a, b, _)| a < b);
        if filter.lo >= filter.hi || filter.domains.as_ref().is_some_and(|d| d.is_empty()) {
            ranges.clear();
        }
        if desc {
            ranges.reverse();
        }
        Ok(Scan {
            conn,
            filter,
            desc,
            driver,
            ranges: ranges.into(),
            queue: VecDeque::new(),
            from: 0,
            to: 0,
            last_block: None,
            rows: Vec::new(),
            at: 0,
        })
    }

    /// Lists the next batch of block ids, moving on to the next range when
    /// one is done; false when there are none.
    fn list_more(&mut self) -> rusqlite::Result<bool> {
        loop {
            if self.from >= self.to {
                let Some((lo, hi, driver)) = self.ranges.pop_front() else {
                    return Ok(false);
                };
                self.driver = driver;
                // The block holding `lo` starts at or before it (a block
                // there that ends before `lo` is not read).
                self.from = self
                    .conn
                    .borrow()
                    .prepare_cached(BLOCK_AT_SQL)?
                    .query_row([lo], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                    .optional()?
                    .filter(|&(_, last)| last >= lo)
                    .map_or(lo, |(id, _)| id);
                self.to = hi;
                continue;
            }
            let c = self.conn.borrow();
            let mut st = c.prepare_cached(&batch_sql(self.driver, self.desc))?;
            let key = match self.driver {
                Driver::Time => None,
                Driver::Client(id) => Some(id),
                Driver::Status(s) => Some(i64::from(s)),
            };
            let p = [self.from, self.to].into_iter().chain(key);
            let ids: Vec<i64> = st
                .query_map(params_from_iter(p), |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            match ids.last() {
                None => self.from = self.to,
                Some(&last) if self.desc => self.to = last,
                Some(&last) => self.from = last + 1,
            }
            if (ids.len() as i64) < BATCH {
                // The range is listed: the next look moves on.
                self.from = self.to;
            }
            if !ids.is_empty() {
                self.queue.extend(ids);
                return Ok(true);
            }
        }
    }

    /// Decodes the next block into `rows`; false at the end.
    fn next_block(&mut self) -> rusqlite::Result<bool> {
        loop {
            if self.queue.is_empty() && !self.list_more()? {
                return Ok(false);
            }
            let Some(id) = self.queue.pop_front() else {
                continue;
            };
            let seen = self
                .last_block
                .is_some_and(|l| if self.desc { id >= l } else { id <= l });
            if seen {
                continue;
            }
            self.last_block = Some(id);
            let c = self.conn.borrow();
            let mut st = c.prepare_cached(BLOCK_DATA_SQL)?;
            let mut found = st.query([id])?;
            let Some(b) = found.next()? else {
                // Deleted by retention since it was listed.
                continue;
            };
            self.rows.clear();
            self.at = 0;
            if let Err(e) = block::decode_into(b.get_ref(0)?.as_blob()?, &mut self.rows) {
                tracing::warn!("query log: block {id} is damaged ({e}); its rows are skipped");
                continue;
            }
            if self.desc {
                self.rows.reverse();
            }
            return Ok(true);
        }
    }

    /// The next selected row.
    pub(super) fn next_row(&mut self) -> rusqlite::Result<Option<Row>> {
        loop {
            while let Some(r) = self.rows.get(self.at) {
                self.at += 1;
                if self.filter.matches(r) {
                    return Ok(Some(*r));
                }
                let past = if self.desc {
                    r.key < self.filter.lo
                } else {
                    r.key >= self.filter.hi
                };
                if past {
                    self.ranges.clear();
                    self.queue.clear();
                    self.rows.clear();
                    self.from = self.to;
                    return Ok(None);
                }
            }
            if !self.next_block()? {
                return Ok(None);
            }
        }
    }

    pub fn connection(&self) -> &Connection {
        self.conn.borrow()
    }
}
