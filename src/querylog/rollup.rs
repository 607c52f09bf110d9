//! The roll-ups the dashboard reads instead of the rows: counts per minute
//! and hour (by status, client and query type, with the latency sum), each
//! hour's distinct-domain sketch and top domains, and each closed day's
//! sums of its hours. The writer counts a transaction's rows in RAM here
//! and writes the sums before its COMMIT.
//!
//! Counting a row is array work, not hashing: most rows fall in the same
//! minute as the one before ([`MinuteHourCounts`]), and an hour's domains
//! are counted exactly in slots the name cache remembers
//! ([`HourCounts`]), from which the hour's top list and cut-off and the
//! day counts of `domain_days` are written; a closed day's top list comes
//! from those day counts.
//!
//! Not for: reading the roll-ups (`stats.rs`), or deleting old ones
//! (`retention.rs`).

use super::block::Row;
use super::block::store::BlockWriter;
use super::domain_counts::{self, HourCounts};
use super::sketch::{IdMap, Sketch};
use crate::events::Source;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry as Slot;

/// Domains kept per closed hour and kind (all / blocked) in `hour_domains`.
pub const TOP_PER_HOUR: i64 = 100;
/// Domains kept per closed day and kind in `day_domains`.
pub const TOP_PER_DAY: i64 = 300;
/// A transaction touching more hours than this is committed early, so
/// events with scattered times cannot grow the per-hour state.
const MAX_HOURS: usize = 4;

/// What the writer counts for the roll-ups while a transaction is open,
/// and what it knows of the hours and days already stored.
pub(super) struct Rollups {
    deltas: RollupDeltas,
    /// Counts of the current minute and hour, added to `deltas` when the
    /// time moves on: most rows fall in the same minute as the one before.
    counts: MinuteHourCounts,
    /// The keys of the current minute, so a row's minute, hour and day
    /// take two comparisons instead of three divisions.
    minute: MinuteKeys,
    newest_hour: i64,
    /// The hours the open transaction counts into, with their summaries.
    hours: BTreeMap<i64, HourState>,
    /// Hours a previous run left holding more than their top domains.
    untrimmed: Vec<i64>,
    /// The newest day whose day roll-ups are written.
    closed_day: Option<i64>,
    /// Closed days that got rows since (late rows): their lists are
    /// taken again.
    reclose: Vec<i64>,
    /// `meta`'s `domain_counts_from`: days wholly from here on have
    /// complete counts in `domain_days`.
    counted_from: i64,
}

impl Rollups {
    pub(super) fn new() -> Rollups {
        Rollups {
            deltas: RollupDeltas::default(),
            counts: MinuteHourCounts::default(),
            minute: MinuteKeys::NONE,
            newest_hour: i64::MIN,
            hours: BTreeMap::new(),
            untrimmed: Vec::new(),
            closed_day: None,
            reclose: Vec::new(),
            counted_from: i64::MAX,
        }
    }

    /// Picks up where the database stands: hours and days a previous run
    /// left open close as new events come; where the domain counts cover
    /// from (before the tail is counted again).
    pub(super) fn load(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        domain_counts::open(conn)?;
        self.untrimmed.clear();
        self.newest_hour = conn
            .query_row("SELECT max(hour) FROM hour_counts", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .unwrap_or(i64::MIN);
        if self.newest_hour != i64::MIN {
            let mut st = conn.prepare("SELECT hour FROM hour_counts WHERE hour >= ?1")?;
            let hours = st.query_map([self.newest_hour - 2], |r| r.get::<_, i64>(0))?;
            for h in hours {
                self.untrimmed.push(h?);
            }
        }
        self.closed_day = conn.query_row("SELECT max(day) FROM day_sketches", [], |r| r.get(0))?;
        self.counted_from = domain_counts::counted_from(conn)?;
        Ok(())
    }

    /// The minute, hour and day of a row key.
    pub(super) fn minute_of(&mut self, key: i64) -> MinuteKeys {
        if !(self.minute.lo..self.minute.hi).contains(&key) {
            self.minute = MinuteKeys::of(key);
        }
        self.minute
    }

    /// Starts loading the top-domain slots at `ats` of the hour the last
    /// row fell in (most of a group falls in it too).
    pub(super) fn prefetch_top(&self, ats: impl Iterator<Item = usize>) {
        if let Some(h) = self.hours.get(&self.minute.hour) {
            for at in ats {
                h.counts.prefetch(at);
            }
        }
    }

    /// Counts a row of minute `at`. `top_at` is where the domain was last
    /// counted in its hour's domain counts, if known
    /// (`HourCounts::add_at`); then where it is now is returned.
    pub(super) fn count(
        &mut self,
        conn: &Connection,
        at: MinuteKeys,
        row: &Row,
        top_at: Option<usize>,
    ) -> rusqlite::Result<Option<usize>> {
        let blocked = row.status == Source::Blocked as u8;
        let domain = row.domain;
        self.counts.add(
            &mut self.deltas,
            at.minute,
            at.hour,
            usize::from(row.status).min(6),
            row.latency_us,
            row.client,
            row.qtype,
            blocked,
        );
        self.newest_hour = self.newest_hour.max(at.hour);
        if self.closed_day.is_some_and(|d| at.day <= d) && !self.reclose.contains(&at.day) {
            self.reclose.push(at.day);
        }
        let h = match self.hours.entry(at.hour) {
            Slot::Occupied(o) => o.into_mut(),
            Slot::Vacant(v) => v.insert(load_hour(conn, at.hour)?),
        };
        h.sketch.insert(domain);
        h.sketch_dirty = true;
        let now_at = h
            .counts
            .add_at(top_at.unwrap_or(usize::MAX), domain, blocked);
        Ok(top_at.map(|_| now_at))
    }

    /// The open transaction counts into more hours than it may hold.
    pub(super) fn too_many_hours(&self) -> bool {
        self.hours.len() > MAX_HOURS
    }

    /// Whether the derived rows should be written now (a flood of names).
    pub(super) fn wants_write(&self) -> bool {
        self.hours.values().any(|h| h.counts.wants_write())
    }

    /// Hands the (day, domain) counts `domain_days` does not hold yet to
    /// `blocks`, written with the side rows of the tail's derived rows
    /// (before [`Self::write`], which closes days from them).
    pub(super) fn note_domain_counts(
        &mut self,
        conn: &Connection,
        blocks: &mut BlockWriter,
    ) -> rusqlite::Result<()> {
        for (&hour, h) in self.hours.iter_mut() {
            h.counts.take_deltas(|domain, n, b| {
                blocks.note_domain_counts(conn, hour.div_euclid(24), domain, n, b)
            })?;
        }
        Ok(())
    }

    /// Writes what the open transaction counted, before its COMMIT.
    pub(super) fn write(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.counts.fold(&mut self.deltas);
        write_deltas(conn, &self.deltas)?;
        for (&hour, h) in self.hours.iter_mut() {
            if h.sketch_dirty {
                conn.prepare_cached(
                    "INSERT INTO hour_sketches (hour, domains) VALUES (?1, ?2)
                     ON CONFLICT (hour) DO UPDATE SET domains = excluded.domains",
                )?
                .execute(params![hour, h.sketch.as_bytes()])?;
                h.sketch_dirty = false;
            }
            for kind in 0..2 {
                write_top(conn, hour, kind, &h.counts, &mut h.written[kind])?;
            }
        }
        // Hours a previous run left open keep only their top entries once
        // a newer hour has begun.
        let newest = self.newest_hour;
        for h in self.untrimmed.iter().filter(|&&h| h < newest - 1) {
            for blocked in [false, true] {
                conn.prepare_cached(
                    "DELETE FROM hour_domains WHERE blocked = ?1 AND hour = ?2 AND domain NOT IN
                     (SELECT domain FROM hour_domains WHERE blocked = ?1 AND hour = ?2 ORDER BY n DESC LIMIT ?3)",
                )?
                .execute(params![blocked, h, TOP_PER_HOUR])?;
            }
        }
        self.close_days(conn)
    }

    /// The transaction committed: its deltas are stored, and hours older
    /// than the last two are complete (their top entries are stored).
    pub(super) fn committed(&mut self) {
        let newest = self.newest_hour;
        self.deltas.clear();
        self.untrimmed.retain(|&h| h >= newest - 1);
        self.hours.retain(|&h, _| h >= newest - 1);
    }

    /// Forgets what the rolled-back transaction counted.
    pub(super) fn forget(&mut self) {
        self.hours.clear();
        self.deltas.clear();
        self.counts.reset();
    }

    /// Days closed by a rolled-back transaction are open again (closing
    /// is idempotent).
    pub(super) fn reopen_days(&mut self) {
        self.closed_day = None;
    }

    /// RAM held by the open hours' summaries and the counts.
    pub(super) fn bytes(&self) -> usize {
        let hours: usize = self
            .hours
            .values()
            .map(|h| {
                super::sketch::REGISTERS
                    + h.counts.bytes()
                    + h.written.iter().map(|w| w.capacity() * 24).sum::<usize>()
            })
            .sum();
        hours
            + (self.deltas.minutes.capacity() + self.deltas.hours.capacity()) * 80
            + self.deltas.clients.capacity() * 40
            + self.deltas.qtypes.capacity() * 32
            + self.counts.bytes()
    }

    /// Writes the day roll-ups of days whose hours are all closed, a few
    /// days per batch (an upgraded database catches up over some batches).
    fn close_days(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        if self.newest_hour == i64::MIN {
            return Ok(());
        }
        let last_full = (self.newest_hour - 24).div_euclid(24);
        for day in std::mem::take(&mut self.reclose) {
            if domain_counts::day_counted(day, self.counted_from) {
                close_day_domains(tx, day)?;
            }
        }
        let first = match self.closed_day {
            Some(d) => d + 1,
            None => match tx.query_row("SELECT min(hour) FROM hour_counts", [], |r| {
                r.get::<_, Option<i64>>(0)
            })? {
                Some(h) => h.div_euclid(24),
                None => return Ok(()),
            },
        };
        for day in (first..=last_full).take(8) {
            let (h_lo, h_hi) = (day * 24, day * 24 + 23);
            let counted = domain_counts::day_counted(day, self.counted_from);
            for blocked in [false, true].into_iter().filter(|_| !counted) {
                tx.prepare_cached("DELETE FROM day_domains WHERE blocked = ?1 AND day = ?2")?
                    .execute(params![blocked, day])?;
                tx.prepare_cached(
                    "INSERT INTO day_domains (blocked, day, domain, n)
                     SELECT ?1, ?2, domain, sum(n) FROM hour_domains
                     WHERE blocked = ?1 AND hour BETWEEN ?3 AND ?4
                     GROUP BY domain ORDER BY sum(n) DESC LIMIT ?5",
                )?
                .execute(params![blocked, day, h_lo, h_hi, TOP_PER_DAY])?;
            }
            tx.prepare_cached("DELETE FROM day_clients WHERE day = ?1")?
                .execute([day])?;
            tx.prepare_cached(
                "INSERT INTO day_clients (day, client, n, blocked)
                 SELECT ?1, client, sum(n), sum(blocked) FROM hour_clients
                 WHERE hour BETWEEN ?2 AND ?3 GROUP BY client",
            )?
            .execute(params![day, h_lo, h_hi])?;
            if counted {
                close_day_domains(tx, day)?;
            }
            let mut sketch = Sketch::default();
            {
                let mut st = tx.prepare_cached(
                    "SELECT domains FROM hour_sketches WHERE hour BETWEEN ?1 AND ?2",
                )?;
                let mut rows = st.query([h_lo, h_hi])?;
                while let Some(r) = rows.next()? {
                    sketch.merge_bytes(r.get_ref(0)?.as_blob()?);
                }
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO day_sketches (day, domains) VALUES (?1, ?2)",
            )?
            .execute(params![day, sketch.as_bytes()])?;
            self.closed_day = Some(day);
        }
        Ok(())
    }
}

/// A row's minute, hour and day, and the keys of its minute.
#[derive(Clone, Copy)]
pub(super) struct MinuteKeys {
    /// Keys `lo..hi` are in this minute.
    lo: i64,
    hi: i64,
    /// Unix minute, hour and day.
    pub minute: i64,
    pub hour: i64,
    pub day: i64,
}

impl MinuteKeys {
    const NONE: MinuteKeys = MinuteKeys {
        lo: 0,
        hi: 0,
        minute: 0,
        hour: 0,
        day: 0,
    };

    fn of(key: i64) -> MinuteKeys {
        let minute = super::ms_of(key).div_euclid(60_000);
        MinuteKeys {
            lo: super::key_of(minute * 60_000),
            hi: super::key_of((minute + 1) * 60_000),
            minute,
            hour: minute.div_euclid(60),
            day: minute.div_euclid(1440),
        }
    }
}

/// Roll-up deltas of the open transaction.
#[derive(Default)]
struct RollupDeltas {
    /// By minute / hour: one count per `Source`, then the latency sum.
    minutes: IdMap<i64, [i64; 8]>,
    hours: IdMap<i64, [i64; 8]>,
    clients: IdMap<(i64, i64), (i64, i64)>,
    qtypes: IdMap<(i64, u16), i64>,
}

impl RollupDeltas {
    fn clear(&mut self) {
        self.minutes.clear();
        self.hours.clear();
        self.clients.clear();
        self.qtypes.clear();
    }
}

/// Per-row counters for one minute and its hour, in arrays instead of
/// hash maps.
struct MinuteHourCounts {
    minute: i64,
    hour: i64,
    by_minute: [i64; 8],
    by_hour: [i64; 8],
    /// (queries, blocked) by client id, for clients with small ids.
    clients: Vec<(i64, i64)>,
    /// By query type, for types below 256.
    qtypes: [i64; 256],
    /// The slots in use, so folding visits only those.
    touched_clients: Vec<i64>,
    touched_qtypes: Vec<u16>,
}

/// Client ids below this are counted in `MinuteHourCounts::clients`, others in the map.
const COUNTED_CLIENTS: usize = 4096;

impl MinuteHourCounts {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        deltas: &mut RollupDeltas,
        minute: i64,
        hour: i64,
        status: usize,
        latency_us: u32,
        client: i64,
        qtype: u16,
        blocked: bool,
    ) {
        if minute != self.minute {
            self.fold_minute(deltas);
            self.minute = minute;
        }
        if hour != self.hour {
            self.fold_hour(deltas);
            self.hour = hour;
        }
        for c in [&mut self.by_minute, &mut self.by_hour] {
            c[status] += 1;
            c[7] += i64::from(latency_us);
        }
        match usize::try_from(client)
            .ok()
            .filter(|&c| c < COUNTED_CLIENTS)
        {
            Some(i) => {
                if self.clients.len() <= i {
                    self.clients.resize(i + 1, (0, 0));
                }
                let slot = &mut self.clients[i];
                if slot.0 == 0 {
                    self.touched_clients.push(client);
                }
                slot.0 += 1;
                slot.1 += i64::from(blocked);
            }
            None => {
                let c = deltas.clients.entry((hour, client)).or_default();
                c.0 += 1;
                c.1 += i64::from(blocked);
            }
        }
        match self.qtypes.get_mut(usize::from(qtype)) {
            Some(n) => {
                if *n == 0 {
                    self.touched_qtypes.push(qtype);
                }
                *n += 1;
            }
            None => *deltas.qtypes.entry((hour, qtype)).or_default() += 1,
        }
    }

    fn fold_minute(&mut self, deltas: &mut RollupDeltas) {
        if self.by_minute[..7].iter().any(|&n| n != 0) {
            let m = deltas.minutes.entry(self.minute).or_default();
            for (a, b) in m.iter_mut().zip(&self.by_minute) {
                *a += b;
            }
        }
        self.by_minute = [0; 8];
    }

    fn fold_hour(&mut self, deltas: &mut RollupDeltas) {
        let hour = self.hour;
        if self.by_hour[..7].iter().any(|&n| n != 0) {
            let h = deltas.hours.entry(hour).or_default();
            for (a, b) in h.iter_mut().zip(&self.by_hour) {
                *a += b;
            }
        }
        self.by_hour = [0; 8];
        for client in self.touched_clients.drain(..) {
            let slot = &mut self.clients[client as usize];
            let c = deltas.clients.entry((hour, client)).or_default();
            c.0 += slot.0;
            c.1 += slot.1;
            *slot = (0, 0);
        }
        for qtype in self.touched_qtypes.drain(..) {
            let n = &mut self.qtypes[usize::from(qtype)];
            *deltas.qtypes.entry((hour, qtype)).or_default() += *n;
            *n = 0;
        }
    }

    /// Everything counted so far into `deltas` (before a commit).
    fn fold(&mut self, deltas: &mut RollupDeltas) {
        self.fold_minute(deltas);
        self.fold_hour(deltas);
        self.minute = i64::MIN;
        self.hour = i64::MIN;
    }

    /// Forgets the counts (the transaction was rolled back).
    fn reset(&mut self) {
        self.by_minute = [0; 8];
        self.by_hour = [0; 8];
        for client in self.touched_clients.drain(..) {
            self.clients[client as usize] = (0, 0);
        }
        for qtype in self.touched_qtypes.drain(..) {
            self.qtypes[usize::from(qtype)] = 0;
        }
        self.minute = i64::MIN;
        self.hour = i64::MIN;
    }

    fn bytes(&self) -> usize {
        self.clients.capacity() * 16
            + std::mem::size_of_val(&self.qtypes)
            + self.touched_clients.capacity() * 8
            + self.touched_qtypes.capacity() * 2
    }
}

impl Default for MinuteHourCounts {
    fn default() -> MinuteHourCounts {
        MinuteHourCounts {
            minute: i64::MIN,
            hour: i64::MIN,
            by_minute: [0; 8],
            by_hour: [0; 8],
            clients: Vec::new(),
            qtypes: [0; 256],
            touched_clients: Vec::new(),
            touched_qtypes: Vec::new(),
        }
    }
}

/// What the writer keeps for an hour it is counting into: the distinct
/// domains sketch and every domain's counts, with what of its top list
/// the database already holds.
struct HourState {
    sketch: Sketch,
    sketch_dirty: bool,
    counts: HourCounts,
    written: [IdMap<i64, u64>; 2],
}

const HOUR_BLOCKS_SQL: &str = "SELECT data FROM query_blocks WHERE id >= ?1 AND id < ?2";

/// An hour's state as the database holds it (a previous run, an earlier
/// transaction), so counting goes on where it stopped: its domains are
/// counted again from the hour's blocks whose derived rows are written
/// (a block never spans two hours).
fn load_hour(conn: &Connection, hour: i64) -> rusqlite::Result<HourState> {
    let stored: Option<Vec<u8>> = conn
        .prepare_cached("SELECT domains FROM hour_sketches WHERE hour = ?1")?
        .query_row([hour], |r| r.get(0))
        .optional()?;
    let mut h = HourState {
        sketch: stored.map(|b| Sketch::from_bytes(&b)).unwrap_or_default(),
        sketch_dirty: false,
        counts: HourCounts::default(),
        written: [IdMap::default(), IdMap::default()],
    };
    let lo = super::key_of(hour * 3_600_000);
    let hi = super::key_of((hour + 1) * 3_600_000).min(super::tail::tail_from(conn)?);
    {
        let mut st = conn.prepare_cached(HOUR_BLOCKS_SQL)?;
        let mut blocks = st.query([lo, hi])?;
        let mut rows = Vec::new();
        let blocked = Source::Blocked as u8;
        while let Some(b) = blocks.next()? {
            rows.clear();
            // A damaged block's rows are left out, as every reader does.
            if super::block::decode_into(b.get_ref(0)?.as_blob()?, &mut rows).is_ok() {
                for r in &rows {
                    h.counts.add_written(r.domain, r.status == blocked);
                }
            }
        }
    }
    for kind in 0..2 {
        let mut st = conn.prepare_cached(
            "SELECT domain, n FROM hour_domains WHERE blocked = ?1 AND hour = ?2",
        )?;
        let mut rows = st.query(params![kind as i64, hour])?;
        while let Some(r) = rows.next()? {
            let (domain, n): (i64, i64) = (r.get(0)?, r.get(1)?);
            h.written[kind].insert(domain, n.max(0) as u64);
        }
    }
    Ok(h)
}

/// Makes the hour's rows in `hour_domains` its current top entries,
/// writing only what changed, and its cut-off row (none once the hour
/// had more names than it holds).
fn write_top(
    conn: &Connection,
    hour: i64,
    kind: usize,
    counts: &HourCounts,
    written: &mut IdMap<i64, u64>,
) -> rusqlite::Result<()> {
    let (best, cutoff) = counts.top(TOP_PER_HOUR as usize, kind == 1);
    let mut upsert = conn.prepare_cached(
        "INSERT INTO hour_domains (blocked, hour, domain, n) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (blocked, hour, domain) DO UPDATE SET n = excluded.n",
    )?;
    let mut keep = IdMap::<i64, u64>::default();
    for &(id, count) in &best {
        if written.get(&id) != Some(&count) {
            upsert.execute(params![kind as i64, hour, id, count as i64])?;
        }
        keep.insert(id, count);
    }
    let mut delete = conn.prepare_cached(
        "DELETE FROM hour_domains WHERE blocked = ?1 AND hour = ?2 AND domain = ?3",
    )?;
    for id in written.keys().filter(|id| !keep.contains_key(id)) {
        delete.execute(params![kind as i64, hour, id])?;
    }
    *written = keep;
    if counts.exact() {
        conn.prepare_cached(
            "INSERT INTO hour_top_cutoffs (blocked, hour, cutoff) VALUES (?1, ?2, ?3)
             ON CONFLICT (blocked, hour) DO UPDATE SET cutoff = excluded.cutoff",
        )?
        .execute(params![kind as i64, hour, cutoff as i64])?;
    } else {
        conn.prepare_cached("DELETE FROM hour_top_cutoffs WHERE blocked = ?1 AND hour = ?2")?
            .execute(params![kind as i64, hour])?;
    }
    Ok(())
}

const DAY_COUNTS_SQL: &str = "SELECT domain, n, blocked FROM domain_days WHERE day = ?1";

/// Statements, for the `EXPLAIN QUERY PLAN` test.
pub(super) fn statements() -> Vec<(String, String)> {
    vec![
        ("rollup: hour blocks".into(), HOUR_BLOCKS_SQL.into()),
        ("rollup: day counts".into(), DAY_COUNTS_SQL.into()),
    ]
}

/// A counted day's `day_domains` (its top `TOP_PER_DAY` per kind) and
/// cut-offs, from its complete `domain_days` counts.
fn close_day_domains(tx: &Connection, day: i64) -> rusqlite::Result<()> {
    let (mut all, mut blocked) = (Vec::new(), Vec::new());
    {
        let mut st = tx.prepare_cached(DAY_COUNTS_SQL)?;
        let mut rows = st.query([day])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let n: Option<i64> = r.get(1)?;
            let b: Option<i64> = r.get(2)?;
            all.push((id, n.unwrap_or(0).max(0) as u64));
            blocked.push((id, b.unwrap_or(0).max(0) as u64));
        }
    }
    for (kind, counts) in [all, blocked].into_iter().enumerate() {
        let (top, cutoff) = domain_counts::top_of(counts.into_iter(), TOP_PER_DAY as usize);
        tx.prepare_cached("DELETE FROM day_domains WHERE blocked = ?1 AND day = ?2")?
            .execute(params![kind as i64, day])?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO day_domains (blocked, day, domain, n) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (id, n) in top {
            insert.execute(params![kind as i64, day, id, n as i64])?;
        }
        tx.prepare_cached(
            "INSERT INTO day_top_cutoffs (blocked, day, cutoff) VALUES (?1, ?2, ?3)
             ON CONFLICT (blocked, day) DO UPDATE SET cutoff = excluded.cutoff",
        )?
        .execute(params![kind as i64, day, cutoff as i64])?;
    }
    Ok(())
}

fn write_deltas(tx: &Connection, deltas: &RollupDeltas) -> rusqlite::Result<()> {
    for (table, key, map) in [
        ("minute_counts", "minute", &deltas.minutes),
        ("hour_counts", "hour", &deltas.hours),
    ] {
        let mut st = tx.prepare_cached(&format!(
            "INSERT INTO {table} ({key}, cache, upstream, local, blocked, stale, refused, failed, latency_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT ({key}) DO UPDATE SET
               cache = cache + excluded.cache, upstream = upstream + excluded.upstream,
               local = local + excluded.local, blocked = blocked + excluded.blocked,
               stale = stale + excluded.stale, refused = refused + excluded.refused,
               failed = failed + excluded.failed, latency_us = latency_us + excluded.latency_us"
        ))?;
        for (k, c) in map {
            st.execute(params![k, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])?;
        }
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO hour_clients (hour, client, n, blocked) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (hour, client) DO UPDATE SET n = n + excluded.n, blocked = blocked + excluded.blocked",
    )?;
    for ((hour, client), (n, blocked)) in &deltas.clients {
        st.execute(params![hour, client, n, blocked])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO hour_qtypes (hour, qtype, n) VALUES (?1, ?2, ?3)
         ON CONFLICT (hour, qtype) DO UPDATE SET n = n + excluded.n",
    )?;
    for ((hour, qtype), n) in &deltas.qtypes {
        st.execute(params![hour, qtype, n])?;
    }
    Ok(())
}
