//! Exact per-domain counts, as the writer keeps them: every domain of an
//! hour counted (all queries and blocked ones) in [`HourCounts`], from
//! which the hour's top list and its cut-off (`hour_domains`,
//! `hour_top_cutoffs`) and the (day, domain) counts of `domain_days` are
//! written when the tail's derived rows are (`tail.rs`); a closed day's
//! top list and cut-off (`day_domains`, `day_top_cutoffs`) are taken from
//! those day counts (`rollup.rs`). The reader (`range_top.rs`) adds them
//! up into a range's exact top domains.
//!
//! Coverage: `meta` row `domain_counts_from` is the key from which every
//! row is counted in `domain_days`. A database an older build wrote is
//! counted only from where this build began (or came back after a
//! firmware rollback); only days wholly after that key get a cut-off row,
//! so older days keep their estimates (docs/querylog.md).
//!
//! Not for: reading the counts (`range_top.rs`), or the hours bit mask of
//! `domain_days` (`block/domain_index.rs`).

use super::sketch::IdMap;
use super::{key_of, ms_of};
use rusqlite::{Connection, OptionalExtension, params};

/// Distinct domains an hour holds at most (about 0.5 MiB with the map;
/// an hour of the benchmark's traffic has ~6,400): a flood of more names
/// counts the rest only for `domain_days`, and the hour gets no cut-off
/// row (the reader counts its rows instead).
const NAMES_MAX: usize = 8_192;
/// Counts of names beyond [`NAMES_MAX`] held at most before the writer
/// writes them: it commits once a group of events leaves this many (a
/// map of 8,192 buckets, ~136 KiB). Written only at the next commit, a
/// flood of new names grew them by up to a batch, 16,384 names, to a map
/// of 32,768 buckets (~0.5 MiB; benches/memory.sh).
const SPILL_MAX: usize = 4_096;

const META_SQL: &str = "SELECT value FROM meta WHERE key = ?1";
const SET_META_SQL: &str = "INSERT INTO meta (key, value) VALUES (?1, ?2)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// Statements, for the `EXPLAIN QUERY PLAN` test.
pub(super) fn statements() -> Vec<(String, String)> {
    vec![("domain counts: meta".into(), META_SQL.into())]
}

/// One domain's counts in an hour, and how much of them `domain_days`
/// holds already.
#[derive(Clone, Copy)]
struct Slot {
    id: i64,
    n: u32,
    blocked: u32,
    written_n: u32,
    written_blocked: u32,
}

/// Every domain of an hour with its exact counts.
#[derive(Default)]
pub(super) struct HourCounts {
    slots: Vec<Slot>,
    /// id -> position in `slots`.
    pos: IdMap<i64, usize>,
    /// Counts of names not held (the hour had more than `NAMES_MAX`),
    /// not yet in `domain_days`.
    spill: IdMap<i64, (u32, u32)>,
    /// Some names were not held: the hour's list is not exact.
    overflowed: bool,
}

impl HourCounts {
    /// Counts one query of `id`; `at` is where it was last counted (any
    /// value: it is checked). Returns where it is now.
    pub(super) fn add_at(&mut self, at: usize, id: i64, blocked: bool) -> usize {
        let held = match self.slots.get(at) {
            Some(s) if s.id == id => Some(at),
            _ => self.pos.get(&id).copied(),
        };
        match held {
            Some(i) => {
                let s = &mut self.slots[i];
                s.n += 1;
                s.blocked += u32::from(blocked);
                i
            }
            None if self.slots.len() < NAMES_MAX => {
                self.slots.push(Slot {
                    id,
                    n: 1,
                    blocked: u32::from(blocked),
                    written_n: 0,
                    written_blocked: 0,
                });
                self.pos.insert(id, self.slots.len() - 1);
                self.slots.len() - 1
            }
            None => {
                self.overflowed = true;
                let e = self.spill.entry(id).or_default();
                e.0 += 1;
                e.1 += u32::from(blocked);
                usize::MAX
            }
        }
    }

    /// Counts a row already in `domain_days` (an hour loaded again).
    pub(super) fn add_written(&mut self, id: i64, blocked: bool) {
        let i = self.add_at(usize::MAX, id, blocked);
        if let Some(s) = self.slots.get_mut(i) {
            (s.written_n, s.written_blocked) = (s.n, s.blocked);
        } else {
            self.spill.remove(&id);
        }
    }

    /// Starts loading the slot at `at`.
    pub(super) fn prefetch(&self, at: usize) {
        if let Some(s) = self.slots.get(at) {
            super::prefetch::prefetch(s);
        }
    }

    /// Whether the counts of names not held should be written now.
    pub(super) fn wants_write(&self) -> bool {
        self.spill.len() >= SPILL_MAX
    }

    /// Whether the hour's list is exact (every name held).
    pub(super) fn exact(&self) -> bool {
        !self.overflowed
    }

    /// Calls `f(domain, queries, blocked)` with what `domain_days` does
    /// not hold yet, and marks it held.
    pub(super) fn take_deltas(
        &mut self,
        mut f: impl FnMut(i64, u32, u32) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        for s in &mut self.slots {
            if (s.n, s.blocked) != (s.written_n, s.written_blocked) {
                f(s.id, s.n - s.written_n, s.blocked - s.written_blocked)?;
                (s.written_n, s.written_blocked) = (s.n, s.blocked);
            }
        }
        for (id, (n, b)) in self.spill.drain() {
            f(id, n, b)?;
        }
        Ok(())
    }

    /// The `k` domains counted most (blocked queries only, or all), ties
    /// to the lower id, and the largest count of a domain left out.
    pub(super) fn top(&self, k: usize, blocked: bool) -> (Vec<(i64, u64)>, u64) {
        let v = self
            .slots
            .iter()
            .map(|s| (s.id, u64::from(if blocked { s.blocked } else { s.n })));
        top_of(v, k)
    }

    pub(super) fn bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.pos.capacity() * 17
            + self.spill.capacity() * 17
    }
}

/// The `k` largest of `(id, count)` (count > 0), largest first, ties to
/// the lower id, and the largest count left out (0: none).
pub(super) fn top_of(counts: impl Iterator<Item = (i64, u64)>, k: usize) -> (Vec<(i64, u64)>, u64) {
    let mut v: Vec<(i64, u64)> = counts.filter(|c| c.1 > 0).collect();
    let order = |a: &(i64, u64), b: &(i64, u64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
    if v.len() > k {
        v.select_nth_unstable_by(k, order);
    }
    let cutoff = v
        .get(k..)
        .map_or(0, |rest| rest.iter().map(|c| c.1).max().unwrap_or(0));
    v.truncate(k);
    v.sort_unstable_by(order);
    (v, cutoff)
}

fn meta(c: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached(META_SQL)?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// The key from which every row is counted in `domain_days`.
pub(super) fn counted_from(c: &Connection) -> rusqlite::Result<i64> {
    Ok(meta(c, "domain_counts_from")?.unwrap_or(i64::MAX))
}

/// Whether Unix day `day` is counted whole from `from` on.
pub(super) fn day_counted(day: i64, from: i64) -> bool {
    key_of(day * 86_400_000) >= from
}

/// At the writer's start, before it counts the tail again: from which
/// key the counts cover every row. A database without counts is counted
/// from its tail on (the rows the writer counts again); one an older
/// build wrote blocks into after `blocks_last` (a firmware rollback) is
/// counted only after its newest block, and the hour lists written from
/// where the older build began lose their cut-offs.
pub(super) fn open(c: &Connection) -> rusqlite::Result<()> {
    let newest: Option<i64> =
        c.query_row("SELECT max(last) FROM query_blocks", [], |r| r.get(0))?;
    let from = match (meta(c, "domain_counts_from")?, newest) {
        (None, None) => i64::MIN,
        (None, Some(n)) => super::tail::tail_from(c)?.min(n + 1),
        (Some(from), Some(n)) => {
            let ours = meta(c, "blocks_last")?.unwrap_or(i64::MIN);
            let theirs: Option<i64> = c.query_row(
                "SELECT min(id) FROM query_blocks WHERE id > ?1",
                [ours],
                |r| r.get(0),
            )?;
            let Some(theirs) = theirs else { return Ok(()) };
            let hour = ms_of(theirs).div_euclid(3_600_000);
            c.prepare_cached("DELETE FROM hour_top_cutoffs WHERE blocked = ?1 AND hour >= ?2")?
                .execute(params![0, hour])?;
            c.prepare_cached("DELETE FROM hour_top_cutoffs WHERE blocked = ?1 AND hour >= ?2")?
                .execute(params![1, hour])?;
            from.max(n + 1)
        }
        (Some(_), None) => return Ok(()),
    };
    c.prepare_cached(SET_META_SQL)?
        .execute(params!["domain_counts_from", from])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_of_keeps_the_largest_and_the_largest_left_out() {
        let (top, cut) = top_of([(5, 3), (1, 9), (2, 3), (3, 0), (4, 7)].into_iter(), 2);
        assert_eq!(top, vec![(1, 9), (4, 7)]);
        assert_eq!(cut, 3);
        let (top, cut) = top_of([(5, 3), (2, 3)].into_iter(), 2);
        assert_eq!(top, vec![(2, 3), (5, 3)]);
        assert_eq!(cut, 0);
    }

    #[test]
    fn deltas_are_what_was_not_written() {
        let mut h = HourCounts::default();
        h.add_written(7, true);
        let at = h.add_at(usize::MAX, 7, false);
        h.add_at(at, 7, true);
        h.add_at(usize::MAX, 8, false);
        let mut got = Vec::new();
        h.take_deltas(|id, n, b| {
            got.push((id, n, b));
            Ok(())
        })
        .unwrap();
        got.sort_unstable();
        assert_eq!(got, vec![(7, 2, 1), (8, 1, 0)]);
        h.take_deltas(|_, _, _| panic!("nothing new")).unwrap();
        assert_eq!(h.top(1, true), (vec![(7, 2)], 0));
        assert_eq!(h.top(1, false), (vec![(7, 3)], 1));
    }
}
