//! Long walks over the stored rows for the read side (the `queries` SQL
//! table, exports): every row a [`Filter`] selects, in time order either
//! way, one block decoded at a time, so the walk holds the same RAM over
//! an hour or a month.
//!
//! Which blocks it reads follows the filter: one client's through
//! `block_clients`, one uncommon status's through `block_statuses`, a few
//! domains' through `block_domains` (where the database has that table),
//! otherwise every block in the time range, along the primary key.
//!
//! Not for: the log page's bounded newest-first pages (`stats.rs`), or
//! writing blocks (`block/store.rs`).

use super::block::{self, Row};
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

/// Domains at most this many are read through `block_domains`, one index
/// range each per batch; a longer list (a substring many names contain)
/// walks the time range instead.
const DOMAIN_DRIVER_MAX: usize = 64;
/// Block ids fetched per look at an index.
const BATCH: i64 = 64;

/// How a walk finds its blocks.
#[derive(Debug, Clone, PartialEq)]
enum Driver {
    Time,
    Client(i64),
    Status(u8),
    Domains(Vec<i64>),
}

const BLOCK_AT_SQL: &str =
    "SELECT id FROM main.query_blocks WHERE id <= ?1 ORDER BY id DESC LIMIT 1";
const BLOCK_DATA_SQL: &str = "SELECT data FROM main.query_blocks WHERE id = ?1";
const HAS_BLOCK_DOMAINS_SQL: &str =
    "SELECT count(*) > 0 FROM main.sqlite_master WHERE type = 'table' AND name = 'block_domains'";

/// The statement listing a driver's next block ids in `[?1, ?2)` (its key
/// bound as ?3), ascending or descending.
fn batch_sql(driver: &Driver, desc: bool) -> String {
    let (table, col, key) = match driver {
        Driver::Time => ("query_blocks", "id", None),
        Driver::Client(_) => ("block_clients", "block", Some("client")),
        Driver::Status(_) => ("block_statuses", "block", Some("status")),
        Driver::Domains(_) => ("block_domains", "block", Some("domain")),
    };
    let key = key.map(|k| format!("{k} = ?3 AND ")).unwrap_or_default();
    let order = if desc { "DESC" } else { "" };
    format!(
        "SELECT {col} FROM main.{table} WHERE {key}{col} >= ?1 AND {col} < ?2 \
         ORDER BY {col} {order} LIMIT {BATCH}"
    )
}

/// Every statement a walk may run, for the `EXPLAIN QUERY PLAN` check.
pub fn statements() -> Vec<(String, String)> {
    let mut out = vec![
        ("scan: block at".to_string(), BLOCK_AT_SQL.to_string()),
        ("scan: block data".to_string(), BLOCK_DATA_SQL.to_string()),
    ];
    for d in [
        Driver::Time,
        Driver::Client(0),
        Driver::Status(3),
        Driver::Domains(vec![0]),
    ] {
        for desc in [false, true] {
            out.push((format!("scan: {d:?} desc={desc}"), batch_sql(&d, desc)));
        }
    }
    out
}

/// A walk in progress. `C` is the connection, owned or borrowed.
pub struct Scan<C: Borrow<Connection>> {
    conn: C,
    filter: Filter,
    desc: bool,
    driver: Driver,
    /// Block ids still to read, in walk order.
    queue: VecDeque<i64>,
    /// Block ids not yet listed: `[from, to)`.
    from: i64,
    to: i64,
    listed_all: bool,
    /// The current block's rows, and the next one to look at.
    rows: Vec<Row>,
    at: usize,
}

impl<C: Borrow<Connection>> Scan<C> {
    /// A walk over the rows `filter` selects, oldest first or (`desc`)
    /// newest first.
    pub fn new(conn: C, filter: Filter, desc: bool) -> rusqlite::Result<Scan<C>> {
        let c = conn.borrow();
        let empty = filter.lo >= filter.hi || filter.domains.as_ref().is_some_and(|d| d.is_empty());
        // The block holding `lo` starts at or before it.
        let from: i64 = c
            .prepare_cached(BLOCK_AT_SQL)?
            .query_row([filter.lo], |r| r.get(0))
            .optional()?
            .unwrap_or(filter.lo);
        let driver = match (&filter.client, &filter.status, &filter.domains) {
            (Some(id), _, _) => Driver::Client(*id),
            (None, _, Some(ids))
                if ids.len() <= DOMAIN_DRIVER_MAX
                    && c.prepare_cached(HAS_BLOCK_DOMAINS_SQL)?
                        .query_row([], |r| r.get::<_, bool>(0))? =>
            {
                Driver::Domains(ids.clone())
            }
            (None, Some(s), _) if *s >= 2 => Driver::Status(*s),
            _ => Driver::Time,
        };
        let to = filter.hi;
        Ok(Scan {
            conn,
            filter,
            desc,
            driver,
            queue: VecDeque::new(),
            from,
            to,
            listed_all: empty,
            rows: Vec::new(),
            at: 0,
        })
    }

    /// Lists the next batch of block ids; false when there are none.
    fn list_more(&mut self) -> rusqlite::Result<bool> {
        if self.listed_all || self.from >= self.to {
            self.listed_all = true;
            return Ok(false);
        }
        let c = self.conn.borrow();
        let mut st = c.prepare_cached(&batch_sql(&self.driver, self.desc))?;
        let keys: Vec<i64> = match &self.driver {
            Driver::Time => vec![],
            Driver::Client(id) => vec![*id],
            Driver::Status(s) => vec![i64::from(*s)],
            Driver::Domains(ids) => ids.clone(),
        };
        let mut ids: Vec<i64> = Vec::new();
        let mut query = |key: Option<i64>| -> rusqlite::Result<()> {
            let p = [self.from, self.to].into_iter().chain(key);
            let rows = st.query_map(params_from_iter(p), |r| r.get(0))?;
            for id in rows {
                ids.push(id?);
            }
            Ok(())
        };
        if keys.is_empty() {
            query(None)?;
        } else {
            for k in keys {
                query(Some(k))?;
            }
        }
        // Several domains: each listed its first BATCH, so the union's
        // first BATCH in walk order are complete.
        ids.sort_unstable();
        ids.dedup();
        if self.desc {
            ids.reverse();
        }
        ids.truncate(BATCH as usize);
        match ids.last() {
            None => {
                self.listed_all = true;
                return Ok(false);
            }
            Some(&last) if self.desc => self.to = last,
            Some(&last) => self.from = last + 1,
        }
        self.queue.extend(ids);
        Ok(true)
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
                    self.listed_all = true;
                    self.queue.clear();
                    self.rows.clear();
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
