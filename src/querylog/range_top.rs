//! Exact top domains (all queries, or blocked ones) of any range, from
//! stored lists with cut-offs: the range is split into closed days (each
//! with its top `TOP_PER_DAY` and the largest count left out,
//! `day_domains` and `day_top_cutoffs`), whole hours around them (top
//! `TOP_PER_HOUR` and cut-off, `hour_domains` and `hour_top_cutoffs`),
//! and the rest, counted row by row from the blocks: the range's partial
//! first and last hours (to the millisecond), the hours the tail reaches
//! into (`tail.rs`), and hours without a cut-off (an older build's, or a
//! flood of names).
//!
//! A domain's count is the sum of what each part says of it: exact where
//! it is listed or counted, at most the part's cut-off where it is not.
//! Once the 10th largest of the known sums is above every doubt (every
//! name that could still reach it has had its missing parts resolved:
//! a day by its own `domain_days` row, an hour by counting the hour's
//! rows) and above the sum of all cut-offs (the most a name listed
//! nowhere can have), the top 10 is exact. If it is not, the part with
//! the largest cut-off is counted whole and the check repeats.
//!
//! Closed days without a cut-off row (written before this version, or
//! not wholly counted: `domain_counts.rs`) add their `day_domains` lists
//! as they are, estimates; the answer then says it is estimated.
//!
//! Not for: top clients (exact from the roll-ups), or writing the lists
//! (`rollup.rs`, `domain_counts.rs`).

use super::sketch::IdMap;
use super::{key_of, tail};
use crate::events::Source;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

const CLOSED_DAY_SQL: &str = "SELECT max(day) FROM day_sketches";
const DAY_CUTOFF_SQL: &str = "SELECT cutoff FROM day_top_cutoffs WHERE blocked = ?1 AND day = ?2";
const DAY_LIST_SQL: &str = "SELECT domain, n FROM day_domains WHERE blocked = ?1 AND day = ?2";
const HOUR_CUTOFF_SQL: &str =
    "SELECT cutoff FROM hour_top_cutoffs WHERE blocked = ?1 AND hour = ?2";
const HOUR_LIST_SQL: &str = "SELECT domain, n FROM hour_domains WHERE blocked = ?1 AND hour = ?2";
const DOMAIN_DAY_SQL: &str = "SELECT n, blocked FROM domain_days WHERE day = ?1 AND domain = ?2";
const DAY_COUNTS_SQL: &str = "SELECT domain, n, blocked FROM domain_days WHERE day = ?1";
const FIRST_BLOCK_SQL: &str = "SELECT max(id) FROM query_blocks WHERE id <= ?1";

/// Statements, for the `EXPLAIN QUERY PLAN` test.
pub(super) fn statements() -> Vec<(String, String)> {
    [
        ("range top: closed day", CLOSED_DAY_SQL),
        ("range top: day cut-off", DAY_CUTOFF_SQL),
        ("range top: day list", DAY_LIST_SQL),
        ("range top: hour cut-off", HOUR_CUTOFF_SQL),
        ("range top: hour list", HOUR_LIST_SQL),
        ("range top: a domain's day", DOMAIN_DAY_SQL),
        ("range top: a day's counts", DAY_COUNTS_SQL),
        ("range top: first block", FIRST_BLOCK_SQL),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s.to_string()))
    .collect()
}

/// A range's top domains, and whether some days of it are estimates.
pub struct TopDomains {
    pub items: Vec<(String, u64)>,
    pub estimated: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Span {
    Day(i64),
    Hour(i64),
}

/// A day or hour with a stored list: exact counts of the listed names,
/// at most `cutoff` for any other.
struct Listed {
    span: Span,
    list: IdMap<i64, u64>,
    cutoff: u64,
}

/// What is known of the range so far.
struct Sums<'c> {
    c: &'c Connection,
    blocked_only: bool,
    /// Counts summed from the parts counted whole (and estimated days).
    known: IdMap<i64, u64>,
    listed: Vec<Listed>,
    /// (name, part) pairs whose count was looked up (added to `known`).
    resolved: HashSet<(i64, Span)>,
    estimated: bool,
}

impl Sums<'_> {
    /// Counts the rows of `[lo, hi)` (keys) whole.
    fn count_rows(&mut self, lo: i64, hi: i64) -> rusqlite::Result<()> {
        if lo >= hi {
            return Ok(());
        }
        let first: Option<i64> = self
            .c
            .prepare_cached(FIRST_BLOCK_SQL)?
            .query_row([lo], |r| r.get(0))?;
        let blocked = Source::Blocked as u8;
        let (known, blocked_only) = (&mut self.known, self.blocked_only);
        tail::for_each_block(self.c, first.unwrap_or(lo), hi - 1, |rows| {
            for r in rows.iter().filter(|r| (lo..hi).contains(&r.key)) {
                if !blocked_only || r.status == blocked {
                    *known.entry(r.domain).or_default() += 1;
                }
            }
            Ok(())
        })
    }

    fn list(&self, sql: &str, at: i64) -> rusqlite::Result<IdMap<i64, u64>> {
        let mut st = self.c.prepare_cached(sql)?;
        let rows = st.query_map(params![self.blocked_only, at], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?;
        rows.collect()
    }

    fn cutoff(&self, sql: &str, at: i64) -> rusqlite::Result<Option<u64>> {
        Ok(self
            .c
            .prepare_cached(sql)?
            .query_row(params![self.blocked_only, at], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|v| v.max(0) as u64))
    }

    /// A closed day: its list and cut-off, or its estimate.
    fn add_day(&mut self, day: i64) -> rusqlite::Result<()> {
        let list = self.list(DAY_LIST_SQL, day)?;
        match self.cutoff(DAY_CUTOFF_SQL, day)? {
            Some(cutoff) => self.listed.push(Listed {
                span: Span::Day(day),
                list,
                cutoff,
            }),
            None => {
                self.estimated |= !list.is_empty();
                for (id, n) in list {
                    *self.known.entry(id).or_default() += n;
                }
            }
        }
        Ok(())
    }

    /// A whole hour below the tail: its list and cut-off, or its rows.
    fn add_hour(&mut self, hour: i64) -> rusqlite::Result<()> {
        match self.cutoff(HOUR_CUTOFF_SQL, hour)? {
            Some(cutoff) => {
                let list = self.list(HOUR_LIST_SQL, hour)?;
                self.listed.push(Listed {
                    span: Span::Hour(hour),
                    list,
                    cutoff,
                });
                Ok(())
            }
            None => self.count_rows(key_of(hour * HOUR), key_of((hour + 1) * HOUR)),
        }
    }

    /// Replaces a listed part by its whole counts.
    fn count_whole(&mut self, i: usize) -> rusqlite::Result<()> {
        let part = self.listed.swap_remove(i);
        // Counts looked up for single names are in the whole counts too.
        let resolved: Vec<(i64, Span)> = self
            .resolved
            .iter()
            .filter(|(_, s)| *s == part.span)
            .copied()
            .collect();
        for (id, span) in resolved {
            self.resolved.remove(&(id, span));
            let n = self.one_count(id, span)?;
            if let Some(k) = self.known.get_mut(&id) {
                *k -= n;
            }
        }
        match part.span {
            Span::Hour(h) => self.count_rows(key_of(h * HOUR), key_of((h + 1) * HOUR)),
            Span::Day(day) => {
                let mut st = self.c.prepare_cached(DAY_COUNTS_SQL)?;
                let mut rows = st.query([day])?;
                while let Some(r) = rows.next()? {
                    let n: Option<i64> = r.get(if self.blocked_only { 2 } else { 1 })?;
                    let n = n.unwrap_or(0).max(0) as u64;
                    if n > 0 {
                        *self.known.entry(r.get(0)?).or_default() += n;
                    }
                }
                Ok(())
            }
        }
    }

    /// A name's count in a day (its `domain_days` row).
    fn one_count(&self, id: i64, span: Span) -> rusqlite::Result<u64> {
        let Span::Day(day) = span else { return Ok(0) };
        let v: Option<(Option<i64>, Option<i64>)> = self
            .c
            .prepare_cached(DOMAIN_DAY_SQL)?
            .query_row([day, id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (n, b) = v.unwrap_or((None, None));
        Ok(if self.blocked_only { b } else { n }.unwrap_or(0).max(0) as u64)
    }

    /// Each candidate's (id, lower, upper) bound: the upper one adds the
    /// cut-offs of the parts it is neither listed in nor looked up in.
    fn bounds(&self) -> Vec<(i64, u64, u64)> {
        let all: u64 = self.listed.iter().map(|p| p.cutoff).sum();
        // id -> (lower, cut-offs of the parts that know its count)
        let mut b: IdMap<i64, (u64, u64)> = IdMap::default();
        for (&id, &n) in &self.known {
            b.entry(id).or_default().0 += n;
        }
        for p in &self.listed {
            for (&id, &n) in &p.list {
                let e = b.entry(id).or_default();
                e.0 += n;
                e.1 += p.cutoff;
            }
        }
        for (id, span) in &self.resolved {
            if let Some(p) = self.listed.iter().find(|p| p.span == *span) {
                b.entry(*id).or_default().1 += p.cutoff;
            }
        }
        b.into_iter()
            .map(|(id, (lo, known))| (id, lo, lo + all - known))
            .collect()
    }

    /// The `n` largest, exact (or estimated where days are).
    fn top(&mut self, n: usize) -> rusqlite::Result<Vec<(i64, u64)>> {
        loop {
            let mut b = self.bounds();
            b.sort_unstable_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
            let nth = if b.len() >= n && n > 0 { b[n - 1].1 } else { 0 };
            // Names that may still reach the list: their missing parts
            // are looked up (a day) or counted whole (an hour).
            let doubtful: Vec<i64> = b
                .iter()
                .filter(|&&(_, lo, up)| up > lo && up >= nth)
                .map(|&(id, _, _)| id)
                .collect();
            if !doubtful.is_empty() {
                self.resolve(&doubtful)?;
                continue;
            }
            // A name listed nowhere has at most the sum of the cut-offs.
            let unlisted: u64 = self.listed.iter().map(|p| p.cutoff).sum();
            if unlisted == 0 || unlisted < nth {
                b.truncate(n);
                return Ok(b.into_iter().map(|(id, lo, _)| (id, lo)).collect());
            }
            let widest = (0..self.listed.len())
                .max_by_key(|&i| self.listed[i].cutoff)
                .expect("a cut-off above 0");
            self.count_whole(widest)?;
        }
    }

    fn resolve(&mut self, ids: &[i64]) -> rusqlite::Result<()> {
        let mut hours = Vec::new();
        for &id in ids {
            for i in 0..self.listed.len() {
                let p = &self.listed[i];
                if p.cutoff == 0
                    || p.list.contains_key(&id)
                    || self.resolved.contains(&(id, p.span))
                {
                    continue;
                }
                match p.span {
                    Span::Day(_) => {
                        let span = p.span;
                        let n = self.one_count(id, span)?;
                        *self.known.entry(id).or_default() += n;
                        self.resolved.insert((id, span));
                    }
                    Span::Hour(_) => hours.push(p.span),
                }
            }
        }
        hours.sort_unstable_by_key(|s| match s {
            Span::Hour(h) | Span::Day(h) => *h,
        });
        hours.dedup();
        for span in hours {
            if let Some(i) = self.listed.iter().position(|p| p.span == span) {
                self.count_whole(i)?;
            }
        }
        Ok(())
    }
}

/// The `n` domains asked most in `[from_ms, to_ms)` (all queries, or
/// only blocked ones), ties to the lower domain id.
pub(super) fn top_domains(
    c: &Connection,
    from_ms: i64,
    to_ms: i64,
    n: usize,
    blocked_only: bool,
) -> anyhow::Result<TopDomains> {
    let mut s = Sums {
        c,
        blocked_only,
        known: IdMap::default(),
        listed: Vec::new(),
        resolved: HashSet::new(),
        estimated: false,
    };
    let closed: Option<i64> = c
        .prepare_cached(CLOSED_DAY_SQL)?
        .query_row([], |r| r.get(0))?;
    // Closed days wholly inside the range.
    let d_lo = (from_ms + DAY - 1).div_euclid(DAY);
    let d_hi = (to_ms.div_euclid(DAY) - 1).min(closed.unwrap_or(i64::MIN));
    let mut rest = vec![(from_ms, to_ms)];
    if d_lo <= d_hi {
        for day in d_lo..=d_hi {
            s.add_day(day)?;
        }
        rest = vec![(from_ms, d_lo * DAY), ((d_hi + 1) * DAY, to_ms)];
    }
    // Around them: whole hours below the tail from their lists, the rest
    // row by row.
    let tail_from = tail::tail_from(c)?;
    for (lo, hi) in rest.into_iter().filter(|(lo, hi)| lo < hi) {
        let h_lo = (lo + HOUR - 1).div_euclid(HOUR);
        let h_hi = hi.div_euclid(HOUR);
        if h_lo >= h_hi {
            s.count_rows(key_of(lo), key_of(hi))?;
            continue;
        }
        s.count_rows(key_of(lo), key_of(h_lo * HOUR))?;
        let mut h = h_lo;
        while h < h_hi && key_of((h + 1) * HOUR) <= tail_from {
            s.add_hour(h)?;
            h += 1;
        }
        // The hours the tail reaches into, and the partial last one.
        s.count_rows(key_of(h * HOUR), key_of(hi))?;
    }
    let top = s.top(n)?;
    Ok(TopDomains {
        items: super::named(c, top)?,
        estimated: s.estimated,
    })
}
