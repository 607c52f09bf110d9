//! Slow answers by index: per hour and upstream, the answers with their
//! latency sum and maximum (`hour_upstreams`), and per hour the domains
//! with the slowest single answers (`hour_slow_domains`, the hour's top
//! [`SLOW_PER_HOUR`] by maximum). The dashboard's "slowest domains" and
//! "upstreams" read a few rows per hour instead of decoding blocks.
//!
//! Exact for what they answer: a range's slowest n domains (n up to
//! `SLOW_PER_HOUR`) are among the hours' lists, since a domain whose
//! slowest answer falls in hour h and that is beaten there by
//! `SLOW_PER_HOUR` others is beaten by as many over the range.
//!
//! Counting a row costs two comparisons once the hour's list is full: a
//! row slower than the list's slowest-kept (its floor) is rare.
//!
//! Not for: latency per minute (`hour_counts`/`minute_counts` carry the
//! sums), or an average per domain (that would be a row per domain and
//! hour).

use super::sketch::IdMap;
use super::tail::TailSums;
use rusqlite::{Connection, params};
use serde::Serialize;
use std::collections::BTreeMap;

/// Domains kept per hour in `hour_slow_domains`: the longest "slowest
/// domains" list any range answers exactly.
pub const SLOW_PER_HOUR: usize = 32;

const HOUR: i64 = 3_600_000;

const SLOW_DOMAINS_SQL: &str =
    "SELECT domain, max_us FROM hour_slow_domains WHERE hour BETWEEN ?1 AND ?2";
const UPSTREAMS_SQL: &str = "SELECT upstream, sum(n), sum(sum_us), max(max_us) FROM hour_upstreams
    WHERE hour BETWEEN ?1 AND ?2 GROUP BY upstream ORDER BY upstream";
const LOAD_HOUR_SQL: &str = "SELECT domain, max_us FROM hour_slow_domains WHERE hour = ?1";
const DELETE_SQL: &str = "DELETE FROM hour_slow_domains WHERE hour = ?1 AND domain = ?2";

/// Statements, for the `EXPLAIN QUERY PLAN` test.
pub(super) fn statements() -> Vec<(String, String)> {
    [
        ("slowest domains", SLOW_DOMAINS_SQL),
        ("upstream latency", UPSTREAMS_SQL),
        ("writer: slow domains of an hour", LOAD_HOUR_SQL),
        ("writer: delete a slow domain", DELETE_SQL),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s.to_string()))
    .collect()
}

/// One upstream's answers in a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamLatency {
    /// Index into the configured upstream list.
    pub upstream: u8,
    pub answers: u64,
    pub avg_us: f64,
    pub max_us: u32,
}

/// A slow answer's rank: slower first, ties to the lower domain id.
fn rank(max_us: u32, domain: i64) -> (u32, std::cmp::Reverse<i64>) {
    (max_us, std::cmp::Reverse(domain))
}

/// An hour's slowest domains as counted, and what the database holds.
#[derive(Default)]
struct SlowHour {
    /// (max_us, domain), at most `SLOW_PER_HOUR`.
    top: Vec<(u32, i64)>,
    written: IdMap<i64, u32>,
}

impl SlowHour {
    /// The rank a row must beat once the list is full.
    fn floor(&self) -> Option<(u32, std::cmp::Reverse<i64>)> {
        (self.top.len() >= SLOW_PER_HOUR)
            .then(|| self.top.iter().map(|&(m, d)| rank(m, d)).min())
            .flatten()
    }

    fn add(&mut self, domain: i64, latency: u32) {
        if let Some(e) = self.top.iter_mut().find(|e| e.1 == domain) {
            e.0 = e.0.max(latency);
        } else if self.top.len() < SLOW_PER_HOUR {
            self.top.push((latency, domain));
        } else if let Some(min) =
            (0..self.top.len()).min_by_key(|&i| rank(self.top[i].0, self.top[i].1))
            && rank(latency, domain) > rank(self.top[min].0, self.top[min].1)
        {
            self.top[min] = (latency, domain);
        }
    }
}

/// What the writer counts for slow answers while a transaction is open.
pub(super) struct SlowAnswers {
    /// The hour `upstreams` counts into.
    hour: i64,
    /// Per upstream: answers, latency sum, maximum.
    upstreams: Box<[(i64, i64, i64); 256]>,
    touched: Vec<u8>,
    deltas: BTreeMap<(i64, u8), (i64, i64, i64)>,
    hours: BTreeMap<i64, SlowHour>,
    /// The hour of the last row and its list's floor, so most rows cost
    /// two comparisons.
    fast: Option<(i64, (u32, std::cmp::Reverse<i64>))>,
}

impl SlowAnswers {
    pub(super) fn new() -> SlowAnswers {
        SlowAnswers {
            hour: i64::MIN,
            upstreams: Box::new([(0, 0, 0); 256]),
            touched: Vec::new(),
            deltas: BTreeMap::new(),
            hours: BTreeMap::new(),
            fast: None,
        }
    }

    pub(super) fn count(
        &mut self,
        conn: &Connection,
        hour: i64,
        domain: i64,
        upstream: Option<u8>,
        latency_us: u32,
    ) -> rusqlite::Result<()> {
        if let Some(u) = upstream {
            if hour != self.hour {
                self.fold();
                self.hour = hour;
            }
            let e = &mut self.upstreams[usize::from(u)];
            if e.0 == 0 {
                self.touched.push(u);
            }
            e.0 += 1;
            e.1 += i64::from(latency_us);
            e.2 = e.2.max(i64::from(latency_us));
        }
        if let Some((h, floor)) = self.fast
            && h == hour
            && rank(latency_us, domain) <= floor
        {
            return Ok(());
        }
        let h = match self.hours.entry(hour) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => v.insert(load_hour(conn, hour)?),
        };
        h.add(domain, latency_us);
        self.fast = h.floor().map(|f| (hour, f));
        Ok(())
    }

    fn fold(&mut self) {
        for u in self.touched.drain(..) {
            let e = std::mem::take(&mut self.upstreams[usize::from(u)]);
            let d = self.deltas.entry((self.hour, u)).or_default();
            d.0 += e.0;
            d.1 += e.1;
            d.2 = d.2.max(e.2);
        }
    }

    /// Writes the counts and the changed lists (before the commit).
    pub(super) fn write(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.fold();
        let mut st = conn.prepare_cached(
            "INSERT INTO hour_upstreams (hour, upstream, n, sum_us, max_us) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (hour, upstream) DO UPDATE SET n = n + excluded.n,
               sum_us = sum_us + excluded.sum_us, max_us = max(max_us, excluded.max_us)",
        )?;
        for (&(hour, u), &(n, sum, max)) in &self.deltas {
            st.execute(params![hour, u, n, sum, max])?;
        }
        self.deltas.clear();
        let mut upsert = conn.prepare_cached(
            "INSERT INTO hour_slow_domains (hour, domain, max_us) VALUES (?1, ?2, ?3)
             ON CONFLICT (hour, domain) DO UPDATE SET max_us = excluded.max_us",
        )?;
        let mut delete = conn.prepare_cached(DELETE_SQL)?;
        for (&hour, h) in &mut self.hours {
            let mut keep = IdMap::default();
            for &(max, domain) in &h.top {
                if h.written.get(&domain) != Some(&max) {
                    upsert.execute(params![hour, domain, max])?;
                }
                keep.insert(domain, max);
            }
            for domain in h.written.keys().filter(|d| !keep.contains_key(d)) {
                delete.execute(params![hour, domain])?;
            }
            h.written = keep;
        }
        Ok(())
    }

    /// After a commit: only the newest hour's list stays in RAM (an older
    /// hour is read again should a late row fall in it).
    pub(super) fn committed(&mut self) {
        if let Some(&newest) = self.hours.keys().next_back() {
            self.hours.retain(|&h, _| h == newest);
        }
    }

    /// Forgets what a rolled-back transaction counted.
    pub(super) fn forget(&mut self) {
        for u in self.touched.drain(..) {
            self.upstreams[usize::from(u)] = (0, 0, 0);
        }
        self.deltas.clear();
        self.hours.clear();
        self.fast = None;
        self.hour = i64::MIN;
    }

    pub(super) fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.upstreams)
            + self.hours.len() * SLOW_PER_HOUR * 40
            + self.deltas.len() * 48
    }
}

fn load_hour(conn: &Connection, hour: i64) -> rusqlite::Result<SlowHour> {
    let mut h = SlowHour::default();
    let mut st = conn.prepare_cached(LOAD_HOUR_SQL)?;
    let mut rows = st.query([hour])?;
    while let Some(r) = rows.next()? {
        let (domain, max): (i64, i64) = (r.get(0)?, r.get(1)?);
        let max = max.clamp(0, i64::from(u32::MAX)) as u32;
        h.written.insert(domain, max);
        h.add(domain, max);
    }
    Ok(h)
}

/// `[from, to)` as the hours it touches.
pub(super) fn hours(from: i64, to: i64) -> (i64, i64) {
    (from.div_euclid(HOUR), (to - 1).max(from).div_euclid(HOUR))
}

/// The `n` domains (n at most `SLOW_PER_HOUR`) whose slowest answer in
/// the hours `[from, to)` touches was slowest, with that answer's latency.
pub fn slowest_domains(
    c: &Connection,
    from: i64,
    to: i64,
    n: usize,
) -> anyhow::Result<Vec<(String, u32)>> {
    let (lo, hi) = hours(from, to);
    let mut max: IdMap<i64, u32> = IdMap::default();
    let mut st = c.prepare_cached(SLOW_DOMAINS_SQL)?;
    let mut rows = st.query([lo, hi])?;
    while let Some(r) = rows.next()? {
        let (domain, us): (i64, i64) = (r.get(0)?, r.get(1)?);
        let m = max.entry(domain).or_default();
        *m = (*m).max(us.clamp(0, i64::from(u32::MAX)) as u32);
    }
    // The tail's answers are in no roll-up yet (`tail.rs`).
    for (&(h, domain), &us) in &TailSums::read(c)?.slowest {
        if (lo..=hi).contains(&h) {
            let m = max.entry(domain).or_default();
            *m = (*m).max(us);
        }
    }
    let mut v: Vec<(u32, i64)> = max.into_iter().map(|(d, m)| (m, d)).collect();
    v.sort_unstable_by_key(|&(m, d)| std::cmp::Reverse(rank(m, d)));
    v.truncate(n.min(SLOW_PER_HOUR));
    Ok(super::named(c, v.into_iter().map(|(m, d)| (d, m)))?)
}

/// Each upstream's answers in the hours `[from, to)` touches.
pub fn upstream_latency(
    c: &Connection,
    from: i64,
    to: i64,
) -> anyhow::Result<Vec<UpstreamLatency>> {
    let (lo, hi) = hours(from, to);
    let mut by: BTreeMap<u8, (i64, i64, i64)> = BTreeMap::new();
    let mut add = |u: u8, (n, sum, max): (i64, i64, i64)| {
        let e = by.entry(u).or_default();
        *e = (e.0 + n, e.1 + sum, e.2.max(max));
    };
    let mut st = c.prepare_cached(UPSTREAMS_SQL)?;
    let mut rows = st.query([lo, hi])?;
    while let Some(r) = rows.next()? {
        let u: i64 = r.get(0)?;
        add(u.clamp(0, 255) as u8, (r.get(1)?, r.get(2)?, r.get(3)?));
    }
    for (&(h, u), &e) in &TailSums::read(c)?.upstreams {
        if (lo..=hi).contains(&h) {
            add(u, e);
        }
    }
    Ok(by
        .into_iter()
        .map(|(upstream, (n, sum, max))| UpstreamLatency {
            upstream,
            answers: n.max(0) as u64,
            avg_us: if n > 0 { sum as f64 / n as f64 } else { 0.0 },
            max_us: max.clamp(0, i64::from(u32::MAX)) as u32,
        })
        .collect())
}
