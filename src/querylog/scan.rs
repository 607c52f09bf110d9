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

use super::block::{self, Row};
use super::key_of;
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

/// A domain walk looks up at most this many (day, domain) index rows; a
/// substring matching more names over the range walks every block.
const MAX_DOMAIN_LOOKUPS: usize = 20_000;
/// Block ids fetched per look at an index.
const BATCH: i64 = 64;
const HOUR: i64 = 3_600_000;

/// How a walk finds its blocks within each key range it walks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Driver {
    Time,
    Client(i64),
    Status(u8),
}

const BLOCK_AT_SQL: &str =
    "SELECT id FROM main.query_blocks WHERE id <= ?1 ORDER BY id DESC LIMIT 1";
const BLOCK_DATA_SQL: &str = "SELECT data FROM main.query_blocks WHERE id = ?1";
const HAS_DOMAIN_DAYS_SQL: &str =
    "SELECT count(*) > 0 FROM main.sqlite_master WHERE type = 'table' AND name = 'domain_days'";
const DOMAIN_INDEX_FROM_SQL: &str = "SELECT value FROM main.meta WHERE key = 'domain_index_from'";
const DOMAIN_HOURS_SQL: &str = "SELECT hours FROM main.domain_days WHERE day = ?1 AND domain = ?2";
const OLDEST_BLOCK_SQL: &str = "SELECT min(id) FROM main.query_blocks";
const NEWEST_ROW_SQL: &str =
    "SELECT last FROM main.query_blocks WHERE id < ?1 ORDER BY id DESC LIMIT 1";

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
/// (the `domain_days` ones where the database has that table).
pub fn statements() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = [
        ("block at", BLOCK_AT_SQL),
        ("block data", BLOCK_DATA_SQL),
        ("oldest block", OLDEST_BLOCK_SQL),
        ("newest row", NEWEST_ROW_SQL),
        ("domain hours", DOMAIN_HOURS_SQL),
        ("domain index from", DOMAIN_INDEX_FROM_SQL),
    ]
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

fn one(c: &Connection, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<Option<i64>> {
    Ok(c.prepare_cached(sql)?
        .query_row(p, |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

/// The key ranges of `[lo, hi)` that can hold rows of the domains `ids`,
/// ascending, from the domain index (`domain_days`: which hours of a day
/// a domain has rows in; a block never spans two hours): below the key
/// `domain_index_from` (blocks the index does not cover) all of it, above
/// only the hours listed. `None`: no index here, or more look-ups than
/// [`MAX_DOMAIN_LOOKUPS`] (walk every block instead).
fn domain_ranges(
    c: &Connection,
    ids: &[i64],
    lo: i64,
    hi: i64,
) -> rusqlite::Result<Option<Vec<(i64, i64)>>> {
    let has_index = c
        .prepare_cached(HAS_DOMAIN_DAYS_SQL)?
        .query_row([], |r| r.get::<_, bool>(0))?;
    if !has_index {
        return Ok(None);
    }
    let Some(covered_from) = one(c, DOMAIN_INDEX_FROM_SQL, [])? else {
        return Ok(None);
    };
    let mut ranges = Vec::new();
    if lo < covered_from.min(hi) {
        ranges.push((lo, covered_from.min(hi)));
    }
    let start = lo.max(covered_from);
    let (Some(oldest), Some(newest)) =
        (one(c, OLDEST_BLOCK_SQL, [])?, one(c, NEWEST_ROW_SQL, [hi])?)
    else {
        return Ok(Some(ranges));
    };
    if start >= hi {
        return Ok(Some(ranges));
    }
    let day_of = |k: i64| super::ms_of(k).div_euclid(HOUR).div_euclid(24);
    let (d_lo, d_hi) = (day_of(start.max(oldest)), day_of((hi - 1).min(newest)));
    let days = (d_hi - d_lo + 1).max(0) as usize;
    if days.saturating_mul(ids.len()) > MAX_DOMAIN_LOOKUPS {
        return Ok(None);
    }
    let mut st = c.prepare_cached(DOMAIN_HOURS_SQL)?;
    for day in d_lo..=d_hi {
        let mut mask = 0i64;
        for &id in ids {
            if let Some(bits) = st.query_row([day, id], |r| r.get::<_, i64>(0)).optional()? {
                mask |= bits;
            }
        }
        for h in (0..24).filter(|h| mask & (1 << h) != 0) {
            let hour = day * 24 + h;
            let (a, b) = (
                key_of(hour * HOUR).max(start),
                key_of((hour + 1) * HOUR).min(hi),
            );
            if a < b {
                ranges.push((a, b));
            }
        }
    }
    Ok(Some(ranges))
}

/// A walk in progress. `C` is the connection, owned or borrowed.
pub struct Scan<C: Borrow<Connection>> {
    conn: C,
    filter: Filter,
    desc: bool,
    driver: Driver,
    /// Key ranges still to walk, in walk order.
    ranges: VecDeque<(i64, i64)>,
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
        let mut ranges = vec![(filter.lo, filter.hi)];
        if driver == Driver::Time
            && let Some(ids) = &filter.domains
            && let Some(r) = domain_ranges(c, ids, filter.lo, filter.hi)?
        {
            ranges = r;
        }
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
                let Some((lo, hi)) = self.ranges.pop_front() else {
                    return Ok(false);
                };
                // The block holding `lo` starts at or before it.
                self.from = one(self.conn.borrow(), BLOCK_AT_SQL, [lo])?.unwrap_or(lo);
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
