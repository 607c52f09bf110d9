//! The questions the dashboard and the log page ask. Dashboard numbers come
//! from the roll-ups (cost per bucket, not per row); the log page walks the
//! stored blocks of rows newest first, along the primary key (time) or a
//! side table (the blocks a client, or an uncommon status, appears in),
//! decodes them and filters the rows in Rust.
//!
//! Every statement here is listed by [`query_plans`] and checked with
//! `EXPLAIN QUERY PLAN` in `tests/querylog_plans.rs`: none scans a table.
//!
//! Granularity: counts and time series are exact to the minute; unique
//! clients/domains, top clients and query types cover the whole hours the
//! range touches; the tail (`tail.rs`, the newest blocks whose roll-ups
//! are not written yet) is counted row by row. Top domains are exact to
//! the millisecond and are not here (`range_top.rs`).

use super::block::{self, Row, domain_index};
use super::sketch::Sketch;
use super::tail::{self, TailSums};
use super::{
    Bucket, ClientActivity, DOMAIN_NAME_SQL, LogPage, LogQuery, LogRow, RuleRef, Summary, key_of,
    ms_of, named,
};
use crate::events::Source;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Rows a log page looks at when a filter has no index of its own; the
/// page then returns a cursor to continue from.
pub const LOG_SCAN_BUDGET: i64 = 5_000;
/// Rows a log page decodes at most in the hours the domain index names
/// (a few milliseconds); a search whose names are spread thinly over
/// more goes on from a cursor.
const INDEXED_SCAN_ROWS: i64 = 500_000;
/// A client's top domains come from its latest rows, at most this many.
const CLIENT_SAMPLE_ROWS: i64 = 2_000;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// `[from, to)` as the hours it touches.
fn hours(from: i64, to: i64) -> (i64, i64) {
    (from.div_euclid(HOUR), (to - 1).max(from).div_euclid(HOUR))
}

/// The hours `[from, to)` touches, split into closed whole days (read
/// from the day roll-ups) and the hours around them.
struct Tiers {
    days: Option<(i64, i64)>,
    hours: Vec<(i64, i64)>,
}

const CLOSED_DAY_SQL: &str = "SELECT max(day) FROM day_sketches";

fn tiers(c: &Connection, from: i64, to: i64) -> rusqlite::Result<Tiers> {
    let (h_lo, h_hi) = hours(from, to);
    let closed: Option<i64> = c
        .prepare_cached(CLOSED_DAY_SQL)?
        .query_row([], |r| r.get(0))?;
    let d_lo = (h_lo + 23).div_euclid(24);
    let d_hi = ((h_hi + 1).div_euclid(24) - 1).min(closed.unwrap_or(i64::MIN));
    if closed.is_none() || d_lo > d_hi {
        return Ok(Tiers {
            days: None,
            hours: vec![(h_lo, h_hi)],
        });
    }
    Ok(Tiers {
        days: Some((d_lo, d_hi)),
        hours: [(h_lo, d_lo * 24 - 1), ((d_hi + 1) * 24, h_hi)]
            .into_iter()
            .filter(|(a, b)| a <= b)
            .collect(),
    })
}

const COUNTS: &str = "coalesce(sum(cache), 0), coalesce(sum(upstream), 0), coalesce(sum(local), 0), \
     coalesce(sum(blocked), 0), coalesce(sum(stale), 0), coalesce(sum(refused), 0), \
     coalesce(sum(failed), 0), coalesce(sum(latency_us), 0)";

fn sum_counts(
    c: &Connection,
    table: &str,
    key: &str,
    lo: i64,
    hi: i64,
) -> rusqlite::Result<[i64; 8]> {
    if lo > hi {
        return Ok([0; 8]);
    }
    c.prepare_cached(&format!(
        "SELECT {COUNTS} FROM {table} WHERE {key} BETWEEN ?1 AND ?2"
    ))?
    .query_row([lo, hi], |r| {
        let mut out = [0i64; 8];
        for (i, v) in out.iter_mut().enumerate() {
            *v = r.get(i)?;
        }
        Ok(out)
    })
}

/// Per-source counts for `[from, to)` to the minute: whole hours from
/// `hour_counts`, the ragged ends from `minute_counts`.
fn counts(c: &Connection, from: i64, to: i64) -> rusqlite::Result<[i64; 8]> {
    let (m_lo, m_hi) = (
        from.div_euclid(MINUTE),
        (to - 1).max(from).div_euclid(MINUTE),
    );
    let h_lo = (m_lo + 59).div_euclid(60);
    let h_hi = (m_hi + 1).div_euclid(60) - 1;
    let mut parts = Vec::new();
    if h_lo > h_hi {
        parts.push(sum_counts(c, "minute_counts", "minute", m_lo, m_hi)?);
    } else {
        parts.push(sum_counts(c, "hour_counts", "hour", h_lo, h_hi)?);
        parts.push(sum_counts(
            c,
            "minute_counts",
            "minute",
            m_lo,
            h_lo * 60 - 1,
        )?);
        parts.push(sum_counts(
            c,
            "minute_counts",
            "minute",
            (h_hi + 1) * 60,
            m_hi,
        )?);
    }
    // The tail's rows are in no roll-up yet (`tail.rs`).
    parts.push(TailSums::read(c)?.counts(m_lo, m_hi));
    let mut out = [0i64; 8];
    for p in parts {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
    Ok(out)
}

fn total(c: &[i64; 8]) -> i64 {
    c[..7].iter().sum()
}

fn cached(c: &[i64; 8]) -> i64 {
    c[Source::Cache as usize] + c[Source::Stale as usize]
}

pub fn summary(c: &Connection, from: i64, to: i64) -> anyhow::Result<Summary> {
    let n = counts(c, from, to)?;
    let total = self::total(&n);
    let blocked = n[Source::Blocked as usize];
    let t = tiers(c, from, to)?;
    let mut clients = HashSet::new();
    let mut sketch = Sketch::default();
    let mut parts: Vec<(&str, &str, (i64, i64))> = Vec::new();
    if let Some(d) = t.days {
        parts.push((DAY_CLIENT_IDS_SQL, DAY_SKETCHES_SQL, d));
    }
    for h in &t.hours {
        parts.push((HOUR_CLIENT_IDS_SQL, HOUR_SKETCHES_SQL, *h));
    }
    for (ids_sql, sketch_sql, (lo, hi)) in parts {
        let mut st = c.prepare_cached(ids_sql)?;
        let mut rows = st.query([lo, hi])?;
        while let Some(r) = rows.next()? {
            clients.insert(r.get::<_, i64>(0)?);
        }
        let mut st = c.prepare_cached(sketch_sql)?;
        let mut rows = st.query([lo, hi])?;
        while let Some(r) = rows.next()? {
            sketch.merge_bytes(r.get_ref(0)?.as_blob()?);
        }
    }
    let (h_lo, h_hi) = hours(from, to);
    let tail = TailSums::read(c)?;
    clients.extend(
        tail.clients
            .keys()
            .filter(|(h, _)| (h_lo..=h_hi).contains(h))
            .map(|&(_, client)| client),
    );
    for (_, s) in tail.sketches.range(h_lo..=h_hi) {
        sketch.merge_bytes(s.as_bytes());
    }
    let unique_clients = clients.len();
    let pct = |x: i64| {
        if total > 0 {
            x as f64 * 100.0 / total as f64
        } else {
            0.0
        }
    };
    Ok(Summary {
        total: total as u64,
        blocked: blocked as u64,
        cached: cached(&n) as u64,
        forwarded: n[Source::Upstream as usize] as u64,
        local: n[Source::Local as usize] as u64,
        failed: (n[Source::Refused as usize] + n[Source::Failed as usize]) as u64,
        percent_blocked: pct(blocked),
        avg_latency_us: if total > 0 {
            n[7] as f64 / total as f64
        } else {
            0.0
        },
        unique_clients: unique_clients as u64,
        unique_domains: if total > 0 { sketch.estimate() } else { 0 },
    })
}

/// `buckets` equal slices of `[from, to)`. Slices of an hour or more (or
/// ranges over ~3 days) are filled from hourly counts, finer ones from
/// minute counts; a roll-up row counts in the slice its start falls in.
pub fn time_series(
    c: &Connection,
    from: i64,
    to: i64,
    buckets: usize,
) -> anyhow::Result<Vec<Bucket>> {
    anyhow::ensure!(to > from, "time series: the range ends before it starts");
    let n = buckets.clamp(1, 10_000) as i64;
    let width = ((to - from) + n - 1) / n;
    let mut out: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            start_ms: from + i * width,
            ..Bucket::default()
        })
        .collect();
    let by_hour = width >= HOUR || (to - from) / MINUTE > 4_000;
    let (table, key, unit) = if by_hour {
        ("hour_counts", "hour", HOUR)
    } else {
        ("minute_counts", "minute", MINUTE)
    };
    let mut st = c.prepare_cached(&format!(
        "SELECT {key}, cache + upstream + local + blocked + stale + refused + failed, blocked, cache + stale
         FROM {table} WHERE {key} BETWEEN ?1 AND ?2"
    ))?;
    let mut rows = st.query([from.div_euclid(unit), (to - 1).div_euclid(unit)])?;
    let (u_lo, u_hi) = (from.div_euclid(unit), (to - 1).div_euclid(unit));
    let mut tail: BTreeMap<i64, [i64; 8]> = BTreeMap::new();
    for (m, c) in &TailSums::read(c)?.minutes {
        let at = tail.entry(m * MINUTE / unit).or_default();
        at.iter_mut().zip(c).for_each(|(a, v)| *a += v);
    }
    let mut add = |u: i64, (t, b, ca): (i64, i64, i64)| {
        let start = u * unit;
        let i = ((start.max(from) - from) / width).clamp(0, n - 1) as usize;
        let bucket = &mut out[i];
        bucket.total += t as u64;
        bucket.blocked += b as u64;
        bucket.allowed += (t - b) as u64;
        bucket.cached += ca as u64;
    };
    while let Some(r) = rows.next()? {
        add(r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?));
    }
    for (&u, c) in tail.range(u_lo..=u_hi) {
        let cached = c[Source::Cache as usize] + c[Source::Stale as usize];
        add(u, (total(c), c[Source::Blocked as usize], cached));
    }
    Ok(out)
}

// Top lists add up per-hour rows in Rust: a hash map beats SQL's sort-based
// GROUP BY over tens of thousands of roll-up rows.
const TOP_CLIENTS_SQL: &str = "SELECT client, n FROM hour_clients WHERE hour BETWEEN ?1 AND ?2";
const DAY_CLIENTS_SQL: &str = "SELECT client, n FROM day_clients WHERE day BETWEEN ?1 AND ?2";
const HOUR_CLIENT_IDS_SQL: &str =
    "SELECT DISTINCT client FROM hour_clients WHERE hour BETWEEN ?1 AND ?2";
const DAY_CLIENT_IDS_SQL: &str =
    "SELECT DISTINCT client FROM day_clients WHERE day BETWEEN ?1 AND ?2";
const HOUR_SKETCHES_SQL: &str = "SELECT domains FROM hour_sketches WHERE hour BETWEEN ?1 AND ?2";
const DAY_SKETCHES_SQL: &str = "SELECT domains FROM day_sketches WHERE day BETWEEN ?1 AND ?2";
const CLIENT_ADDR_SQL: &str = "SELECT addr FROM clients WHERE id = ?1";

const QUERY_TYPES_SQL: &str = "SELECT qtype, sum(n) AS n FROM hour_qtypes WHERE hour BETWEEN ?1 AND ?2 GROUP BY qtype ORDER BY n DESC";

const CLIENT_HOURS_SQL: &str = "SELECT hour, n, blocked FROM hour_clients WHERE hour BETWEEN ?1 AND ?2 AND client = ?3 ORDER BY hour";

fn pairs<T: rusqlite::types::FromSql>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> anyhow::Result<Vec<(T, u64)>> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st.query_map(p, |r| Ok((r.get::<_, T>(0)?, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sums `(id, n)` rows from the day and hour roll-ups by id and names the
/// `n` largest. `kind` is bound as ?3 where the statements use it.
fn top_by_id(
    c: &Connection,
    t: &Tiers,
    (day_sql, hour_sql): (&str, &str),
    kind: Option<bool>,
    n: usize,
    name_sql: &str,
    tail: impl Iterator<Item = (i64, i64)>,
) -> anyhow::Result<Vec<(String, u64)>> {
    let mut sums: HashMap<i64, i64> = HashMap::new();
    for (id, n) in tail {
        *sums.entry(id).or_default() += n;
    }
    let parts = t
        .days
        .iter()
        .map(|d| (day_sql, *d))
        .chain(t.hours.iter().map(|h| (hour_sql, *h)));
    for (sql, (lo, hi)) in parts {
        let mut st = c.prepare_cached(sql)?;
        let mut rows = match kind {
            Some(k) => st.query(params![lo, hi, k])?,
            None => st.query(params![lo, hi])?,
        };
        while let Some(r) = rows.next()? {
            *sums.entry(r.get(0)?).or_default() += r.get::<_, i64>(1)?;
        }
    }
    let mut v: Vec<(i64, i64)> = sums.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    let mut name = c.prepare_cached(name_sql)?;
    let mut out = Vec::with_capacity(v.len());
    for (id, count) in v {
        if let Some(s) = name.query_row([id], |r| r.get::<_, String>(0)).optional()? {
            out.push((s, count as u64));
        }
    }
    Ok(out)
}

pub fn top_clients(
    c: &Connection,
    from: i64,
    to: i64,
    n: usize,
) -> anyhow::Result<Vec<(String, u64)>> {
    let t = tiers(c, from, to)?;
    let (lo, hi) = hours(from, to);
    let tail = TailSums::read(c)?;
    let in_range = tail
        .clients
        .iter()
        .filter(|((h, _), _)| (lo..=hi).contains(h))
        .map(|(&(_, client), &(n, _))| (client, n));
    top_by_id(
        c,
        &t,
        (DAY_CLIENTS_SQL, TOP_CLIENTS_SQL),
        None,
        n,
        CLIENT_ADDR_SQL,
        in_range,
    )
}

pub fn query_types(c: &Connection, from: i64, to: i64) -> anyhow::Result<Vec<(u16, u64)>> {
    let (lo, hi) = hours(from, to);
    let mut n: HashMap<u16, u64> = pairs(c, QUERY_TYPES_SQL, params![lo, hi])?
        .into_iter()
        .collect();
    for (&(h, t), &k) in &TailSums::read(c)?.qtypes {
        if (lo..=hi).contains(&h) {
            *n.entry(t).or_default() += k as u64;
        }
    }
    let mut v: Vec<(u16, u64)> = n.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(v)
}

fn client_id(c: &Connection, addr: &str) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached("SELECT id FROM clients WHERE addr = ?1")?
        .query_row([addr], |r| r.get(0))
        .optional()
}

pub fn client_activity(
    c: &Connection,
    client: &str,
    from: i64,
    to: i64,
) -> anyhow::Result<ClientActivity> {
    let mut out = ClientActivity {
        client: client.to_owned(),
        ..ClientActivity::default()
    };
    let Some(id) = client_id(c, client)? else {
        return Ok(out);
    };
    let (lo, hi) = hours(from, to);
    let mut hourly: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut st = c.prepare_cached(CLIENT_HOURS_SQL)?;
    let mut rows = st.query(params![lo, hi, id])?;
    while let Some(r) = rows.next()? {
        hourly.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
    }
    for (&(h, client), &(n, b)) in &TailSums::read(c)?.clients {
        if client == id && (lo..=hi).contains(&h) {
            let at = hourly.entry(h).or_default();
            (at.0, at.1) = (at.0 + n, at.1 + b);
        }
    }
    for (h, (n, b)) in hourly {
        out.total += n as u64;
        out.blocked += b as u64;
        out.hourly.push(Bucket {
            start_ms: h * HOUR,
            total: n as u64,
            allowed: (n - b) as u64,
            blocked: b as u64,
            cached: 0,
        });
    }
    // Its latest rows in the range, counted by domain.
    let mut counts: HashMap<i64, u64> = HashMap::new();
    let mut sampled = 0u64;
    walk(c, Driver::Client(id), key_of(from), key_of(to), |r| {
        *counts.entry(r.domain).or_default() += 1;
        sampled += 1;
        sampled < CLIENT_SAMPLE_ROWS as u64
    })?;
    let mut top: Vec<(i64, u64)> = counts.into_iter().collect();
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(10);
    out.top_domains = named(c, top)?;
    if !out.top_domains.is_empty() {
        out.top_domains_rows = sampled;
    }
    Ok(out)
}

/// How a log page finds its rows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Driver {
    /// Newest first along the rowid.
    Time,
    Client(i64),
    /// One of the uncommon statuses, through their partial index.
    Status(u8),
}

// The blocks a log page walks, newest first: along the primary key, or
// through a side table. Each has rows below ?1 (a block holding rows at
// and above ?1 as well is filtered in Rust).
const BLOCKS_BY_TIME_SQL: &str =
    "SELECT id, last, data FROM query_blocks WHERE id < ?1 ORDER BY id DESC";
const BLOCKS_BY_CLIENT_SQL: &str = "SELECT b.id, b.last, b.data FROM block_clients AS s
    JOIN query_blocks AS b ON b.id = s.block
    WHERE s.client = ?2 AND s.block < ?1 ORDER BY s.block DESC";
const BLOCKS_BY_STATUS_SQL: &str = "SELECT b.id, b.last, b.data FROM block_statuses AS s
    JOIN query_blocks AS b ON b.id = s.block
    WHERE s.status = ?2 AND s.block < ?1 ORDER BY s.block DESC";

/// Calls `f` on every row with `lo <= key < hi` that `driver` selects,
/// newest first, until it returns false. A block that does not decode is
/// skipped with a warning.
fn walk(
    c: &Connection,
    driver: Driver,
    lo: i64,
    hi: i64,
    mut f: impl FnMut(&Row) -> bool,
) -> rusqlite::Result<()> {
    // The tail's blocks are in no side table yet: walked by time first.
    let tail_from = match driver {
        Driver::Time => i64::MAX,
        _ => tail::tail_from(c)?,
    };
    let tail_lo = lo.max(tail_from);
    if hi > tail_lo && !walk_blocks(c, driver, BLOCKS_BY_TIME_SQL, None, tail_lo, hi, &mut f)? {
        return Ok(());
    }
    let (sql, arg) = match driver {
        Driver::Time => (BLOCKS_BY_TIME_SQL, None),
        Driver::Client(id) => (BLOCKS_BY_CLIENT_SQL, Some(id)),
        Driver::Status(s) => (BLOCKS_BY_STATUS_SQL, Some(i64::from(s))),
    };
    let below = hi.min(tail_from);
    if below <= lo {
        return Ok(());
    }
    walk_blocks(c, driver, sql, arg.map(|a| (a, below)), lo, hi, &mut f).map(drop)
}

/// `walk` over the blocks `sql` lists (bound below `hi`, or with `arg`
/// as (?2, the bound)); false once `f` asked to stop, true once the rows
/// reach `lo` or run out.
fn walk_blocks(
    c: &Connection,
    driver: Driver,
    sql: &str,
    arg: Option<(i64, i64)>,
    lo: i64,
    hi: i64,
    f: &mut impl FnMut(&Row) -> bool,
) -> rusqlite::Result<bool> {
    let mut st = c.prepare_cached(sql)?;
    let mut blocks = match arg {
        Some((a, below)) => st.query(params![below, a])?,
        None => st.query([hi])?,
    };
    let mut rows = Vec::new();
    while let Some(b) = blocks.next()? {
        let (id, last): (i64, i64) = (b.get(0)?, b.get(1)?);
        if last < lo {
            return Ok(true);
        }
        rows.clear();
        if let Err(e) = block::decode_into(b.get_ref(2)?.as_blob()?, &mut rows) {
            tracing::warn!("query log: block {id} is damaged ({e}); its rows are skipped");
            continue;
        }
        for r in rows.iter().rev() {
            if r.key >= hi {
                continue;
            }
            if r.key < lo {
                return Ok(true);
            }
            let selected = match driver {
                Driver::Time => true,
                Driver::Client(id) => r.client == id,
                Driver::Status(s) => r.status == s,
            };
            if selected && !f(r) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Domain and client names of the rows of one page.
struct Namer<'c> {
    domain: rusqlite::CachedStatement<'c>,
    client: rusqlite::CachedStatement<'c>,
    clients: HashMap<i64, Option<String>>,
}

impl Namer<'_> {
    fn new(c: &Connection) -> rusqlite::Result<Namer<'_>> {
        Ok(Namer {
            domain: c.prepare_cached(DOMAIN_NAME_SQL)?,
            client: c.prepare_cached(CLIENT_ADDR_SQL)?,
            clients: HashMap::new(),
        })
    }

    /// The row as the log page shows it; `None` if a name is missing.
    fn log_row(&mut self, r: &Row) -> rusqlite::Result<Option<LogRow>> {
        let client = match self.clients.get(&r.client) {
            Some(c) => c.clone(),
            None => {
                let addr: Option<String> = self
                    .client
                    .query_row([r.client], |row| row.get(0))
                    .optional()?;
                self.clients.insert(r.client, addr.clone());
                addr
            }
        };
        let Some(client) = client else {
            return Ok(None);
        };
        let Some(domain) = self
            .domain
            .query_row([r.domain], |row| row.get::<_, String>(0))
            .optional()?
        else {
            return Ok(None);
        };
        Ok(Some(LogRow {
            time_ms: ms_of(r.key),
            client,
            domain,
            qtype: r.qtype,
            rcode: r.rcode,
            status: Source::from_u8(r.status).unwrap_or(Source::Failed),
            upstream: r.upstream,
            latency_us: r.latency_us,
            reason: r.reason.map(RuleRef::unpack),
        }))
    }
}

const NAMES_SQL: &str = "SELECT id, name FROM domains WHERE id > ?1 ORDER BY id";

/// Every stored name, in RAM, for substring search: one text of names
/// separated by newlines, searched in a single pass (a few megabytes,
/// about a millisecond per 100 000 names). Kept current by reading only the
/// ids added since the last look; reloaded now and then to forget names
/// retention removed.
#[derive(Default)]
pub struct Names {
    generation: u64,
    max_id: i64,
    loaded: Option<std::time::Instant>,
    text: String,
    /// Where each name starts in `text`, and its id.
    starts: Vec<usize>,
    ids: Vec<i64>,
}

impl Names {
    fn matching(
        &mut self,
        c: &Connection,
        generation: u64,
        needle: &str,
    ) -> rusqlite::Result<Vec<i64>> {
        let stale = self
            .loaded
            .is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(600));
        if self.generation != generation || stale {
            *self = Names {
                generation,
                max_id: i64::MIN,
                loaded: Some(std::time::Instant::now()),
                ..Names::default()
            };
        }
        let mut st = c.prepare_cached(NAMES_SQL)?;
        let mut rows = st.query([self.max_id])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            self.starts.push(self.text.len());
            self.ids.push(id);
            self.text.push_str(r.get_ref(1)?.as_str()?);
            self.text.push('\n');
            self.max_id = id;
        }
        let mut out: Vec<i64> = Vec::new();
        let mut last = usize::MAX;
        // memchr's SIMD search: a few GB/s, so the whole text in about a
        // millisecond even with hundreds of thousands of names.
        for at in memchr::memmem::find_iter(self.text.as_bytes(), needle.as_bytes()) {
            let i = self.starts.partition_point(|&s| s <= at) - 1;
            if i != last {
                out.push(self.ids[i]);
                last = i;
            }
        }
        Ok(out)
    }
}

pub fn search(
    c: &Connection,
    q: &LogQuery,
    names: &mut Names,
    generation: u64,
) -> anyhow::Result<LogPage> {
    let limit = if q.limit == 0 { 100 } else { q.limit.min(1000) } as i64;
    let lo = q.from_ms.map(key_of).unwrap_or(i64::MIN);
    let mut hi = q.to_ms.map(key_of).unwrap_or(i64::MAX);
    if let Some(cur) = q.cursor {
        hi = hi.min(cur);
    }
    let client = match q.client.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(addr) => match client_id(c, addr)? {
            Some(id) => Some(id),
            None => return Ok(LogPage::default()),
        },
        None => None,
    };
    // Ascending ids (names are kept in id order): a binary search each.
    let domains: Option<Vec<i64>> =
        match q.domain.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(needle) => {
                let needle = needle.to_ascii_lowercase();
                if needle.contains('\n') {
                    return Ok(LogPage::default());
                }
                let ids = names.matching(c, generation, &needle)?;
                if ids.is_empty() {
                    return Ok(LogPage::default());
                }
                Some(ids)
            }
            None => None,
        };
    let status = q.status.map(|s| s as u8);
    let driver = match (client, status) {
        (Some(id), _) => Driver::Client(id),
        (None, Some(s)) if s >= 2 => Driver::Status(s),
        _ => Driver::Time,
    };
    let outer_status = match driver {
        Driver::Status(_) => None,
        _ => status,
    };
    let filtered = outer_status.is_some() || q.qtype.is_some() || domains.is_some();
    // Rows the driver selects are examined, at most `budget` of them;
    // without further filters every examined row is a result.
    let budget = if filtered {
        LOG_SCAN_BUDGET.max(limit)
    } else {
        limit
    };
    // With the domain index, the hours the names have rows in (newest
    // first), then the blocks the index does not cover; without, the
    // whole range. Ranges: `[lo, hi)` and whether they come from the index.
    // The tail is in no index yet: walked first (it is the newest).
    let tail_from = tail::tail_from(c)?;
    let mut indexed = match (driver, &domains) {
        (Driver::Time, Some(ids)) => domain_index::hours_of(c, ids, lo, hi.min(tail_from))?,
        _ => None,
    };
    let mut ranges: std::collections::VecDeque<(i64, i64, bool)> = match &indexed {
        Some(_) if hi > tail_from => [(lo.max(tail_from), hi, false)].into(),
        Some(_) => Default::default(),
        None => [(lo, hi, false)].into(),
    };
    let mut chosen: Vec<Row> = Vec::new();
    let (mut examined, mut decoded, mut oldest, mut stopped) = (0i64, 0i64, None, false);
    loop {
        let Some((a, b, by_index)) = ranges.pop_front() else {
            // The next day of the index, then what it does not cover.
            let Some(h) = indexed.as_mut() else { break };
            match h.next_day(c)? {
                Some(day) => ranges.extend(day.into_iter().map(|(a, b)| (a, b, true))),
                None => {
                    let tail = hi.min(tail_from).min(h.covered_from);
                    if lo < tail {
                        ranges.push_back((lo, tail, false));
                    }
                    indexed = None;
                }
            }
            continue;
        };
        walk(c, driver, a, b, |r| {
            decoded += 1;
            oldest = Some(r.key);
            let domain_ok = domains
                .as_ref()
                .is_none_or(|set| set.binary_search(&r.domain).is_ok());
            // In an indexed hour only the names' own rows count against
            // the budget, as a client's rows do when walking its blocks;
            // the other rows of its blocks only against a larger one.
            if by_index && !domain_ok {
                stopped = decoded >= INDEXED_SCAN_ROWS;
                return !stopped;
            }
            examined += 1;
            if domain_ok
                && outer_status.is_none_or(|s| r.status == s)
                && q.qtype.is_none_or(|t| r.qtype == t)
            {
                chosen.push(*r);
            }
            stopped = (chosen.len() as i64) >= limit || examined >= budget;
            !stopped
        })?;
        if stopped {
            break;
        }
    }
    let mut page = LogPage::default();
    if chosen.len() as i64 >= limit {
        page.next_cursor = chosen.last().map(|r| r.key);
    } else if stopped {
        // A budget ran out, not the rows: go on from the oldest examined.
        page.next_cursor = oldest;
    }
    let mut namer = Namer::new(c)?;
    for r in &chosen {
        page.rows.extend(namer.log_row(r)?);
    }
    Ok(page)
}

/// Every statement the dashboard and the log page run, with placeholder
/// parameters, for the `EXPLAIN QUERY PLAN` test. Subquery names (`t`,
/// `page`) are the only things allowed to appear in a `SCAN`.
pub fn query_plans() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![
        ("top clients".into(), TOP_CLIENTS_SQL.into()),
        ("query types".into(), QUERY_TYPES_SQL.into()),
        ("domain name".into(), DOMAIN_NAME_SQL.into()),
        ("client address".into(), CLIENT_ADDR_SQL.into()),
        ("client hours".into(), CLIENT_HOURS_SQL.into()),
        ("names".into(), NAMES_SQL.into()),
        ("day clients".into(), DAY_CLIENTS_SQL.into()),
        ("hour client ids".into(), HOUR_CLIENT_IDS_SQL.into()),
        ("day client ids".into(), DAY_CLIENT_IDS_SQL.into()),
        ("hour sketches".into(), HOUR_SKETCHES_SQL.into()),
        ("day sketches".into(), DAY_SKETCHES_SQL.into()),
        ("closed day".into(), CLOSED_DAY_SQL.into()),
        (
            "client id".into(),
            "SELECT id FROM clients WHERE addr = ?1".into(),
        ),
    ];
    for (table, key) in [("minute_counts", "minute"), ("hour_counts", "hour")] {
        out.push((
            format!("counts {table}"),
            format!("SELECT {COUNTS} FROM {table} WHERE {key} BETWEEN ?1 AND ?2"),
        ));
        out.push((
            format!("series {table}"),
            format!(
                "SELECT {key}, cache + upstream + local + blocked + stale + refused + failed, blocked, cache + stale
                 FROM {table} WHERE {key} BETWEEN ?1 AND ?2"
            ),
        ));
    }
    for (name, sql) in [
        ("log blocks by time", BLOCKS_BY_TIME_SQL),
        ("log blocks by client", BLOCKS_BY_CLIENT_SQL),
        ("log blocks by status", BLOCKS_BY_STATUS_SQL),
    ] {
        out.push((name.into(), sql.into()));
    }
    out.extend(super::block::store::statements());
    out.extend(domain_index::statements());
    out.extend(super::slow::statements());
    out.extend(tail::statements());
    out.extend(super::range_top::statements());
    out.extend(super::domain_counts::statements());
    out.extend(super::rollup::statements());
    out
}
