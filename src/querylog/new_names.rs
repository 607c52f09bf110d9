//! Names new to the log, inserted together. A name the name cache does
//! not hold was looked up in `domains` (a `SELECT`) and, when missing,
//! inserted there at once: each a walk of the name index to a random
//! leaf, read and later written again, ~10 µs a new name once the index
//! outgrows the page cache (docs/performance.md). Here a filter of every
//! name in the table (a Bloom filter over the names' tags) says which
//! names the table surely lacks: those get their id at once, from the
//! writer's own count, and wait in RAM; the waiting names are inserted
//! together, in name order, before the transaction commits (or when
//! `WAITING_MAX` wait), so the index's leaves are walked in order and
//! each is read and written once for all the names it takes.
//!
//! Every name in `domains` is in the filter (it is built from the table,
//! and every name the writer inserts is added), so "surely missing" is
//! never wrong; a name it only may hold (a known one, or by chance about
//! one in ten) is looked up as before. The filter is fixed in size: once
//! it holds more names than it tells apart well it is dropped and every
//! name is looked up as before, and it is built from the table again an
//! hour later.
//!
//! Not for: names the cache holds (`names.rs`).

use rusqlite::{Connection, params};
use std::time::{Duration, Instant};

/// Bits of the filter: 2^20, 128 KiB.
const FILTER_BITS: usize = 1 << 20;
/// Bits set (and tested) per name.
const HASHES: u32 = 3;
/// Names the filter holds at most: three bits a name, where a name it
/// lacks is taken for one it holds about one time in four; fewer names,
/// fewer such mistakes (one in sixteen at half of it).
const CAPACITY: usize = FILTER_BITS / 3;
/// Names waiting at most before they are inserted.
const WAITING_MAX: usize = 4096;
/// A filter dropped for holding too many names is built again this long after.
const REBUILD_AFTER: Duration = Duration::from_secs(3600);

const NEXT_ID_SQL: &str = "SELECT coalesce(max(id), 0) + 1 FROM domains";
const INSERT_SQL: &str = "INSERT INTO domains (id, name, last_seen) VALUES (?1, ?2, ?3)";

/// A name given its id and not yet inserted: its bytes are
/// `bytes[at..at + len]`.
struct Waiting {
    at: u32,
    len: u32,
    id: i64,
    seen: i64,
}

pub(super) struct NewNames {
    /// The filter, a bit per slot; None: not built yet, or dropped.
    filter: Option<Box<[u64]>>,
    /// Names added to the filter since it was built (the table's included).
    held: usize,
    /// When the filter was last dropped for holding too many names.
    full_at: Option<Instant>,
    capacity: usize,
    rebuild_after: Duration,
    /// The waiting names' tags, searched first (in step with `waiting`).
    tags: Vec<u64>,
    waiting: Vec<Waiting>,
    bytes: Vec<u8>,
    /// The id the next new name gets (None: read from the table first).
    /// Every insert takes its id from here, so a waiting name's id is
    /// never taken by another.
    next_id: Option<i64>,
}

/// The filter's slots for a tag: three 20-bit pieces of the tag remixed
/// (the name cache uses the tag's bits as they are).
fn slots(tag: u64) -> [usize; HASHES as usize] {
    let h = tag.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let bits = FILTER_BITS.trailing_zeros();
    std::array::from_fn(|i| ((h >> (i as u32 * bits)) as usize) & (FILTER_BITS - 1))
}

impl NewNames {
    pub(super) fn new() -> NewNames {
        NewNames::sized(CAPACITY, REBUILD_AFTER)
    }

    fn sized(capacity: usize, rebuild_after: Duration) -> NewNames {
        NewNames {
            filter: None,
            held: 0,
            full_at: None,
            capacity,
            rebuild_after,
            tags: Vec::new(),
            waiting: Vec::new(),
            bytes: Vec::new(),
            next_id: None,
        }
    }

    /// Forgets everything (a rolled-back transaction, another database):
    /// the filter is built again from the table when next needed.
    pub(super) fn clear(&mut self) {
        let (capacity, rebuild_after) = (self.capacity, self.rebuild_after);
        *self = NewNames::sized(capacity, rebuild_after);
    }

    /// RAM held: the filter and the waiting names.
    pub(super) fn bytes(&self) -> usize {
        self.filter
            .as_ref()
            .map_or(0, |f| std::mem::size_of_val(&**f))
            + self.tags.capacity() * std::mem::size_of::<u64>()
            + self.waiting.capacity() * std::mem::size_of::<Waiting>()
            + self.bytes.capacity()
    }

    /// The id of `name` if it is waiting; its `last_seen` becomes at least `seen`.
    pub(super) fn waiting_id(&mut self, tag: u64, name: &str, seen: i64) -> Option<i64> {
        let bytes = &self.bytes;
        let at = self.tags.iter().enumerate().position(|(i, &t)| {
            let w = &self.waiting[i];
            t == tag && &bytes[w.at as usize..(w.at + w.len) as usize] == name.as_bytes()
        })?;
        let w = &mut self.waiting[at];
        w.seen = w.seen.max(seen);
        Some(w.id)
    }

    /// Whether `domains` surely lacks the name whose tag is `tag`.
    /// `hash` gives a name's tag (to build the filter from the table).
    pub(super) fn surely_missing(
        &mut self,
        conn: &Connection,
        tag: u64,
        hash: impl Fn(&[u8]) -> u64,
    ) -> rusqlite::Result<bool> {
        let due = self
            .full_at
            .is_none_or(|at| at.elapsed() >= self.rebuild_after);
        if self.filter.is_none() && due {
            self.build(conn, hash)?;
        }
        Ok(self
            .filter
            .as_ref()
            .is_some_and(|f| slots(tag).iter().any(|&s| f[s / 64] & (1 << (s % 64)) == 0)))
    }

    /// Gives a name `surely_missing` found missing its id; it waits to be
    /// inserted (those waiting are inserted first if `WAITING_MAX` wait).
    pub(super) fn add_waiting(
        &mut self,
        conn: &Connection,
        tag: u64,
        name: &str,
        seen: i64,
    ) -> rusqlite::Result<i64> {
        if self.waiting.len() >= WAITING_MAX {
            self.write(conn)?;
        }
        let id = self.take_id(conn)?;
        // Names are at most 253 bytes and at most WAITING_MAX of them wait.
        let (at, len) = (self.bytes.len() as u32, name.len() as u32);
        self.bytes.extend_from_slice(name.as_bytes());
        self.tags.push(tag);
        self.waiting.push(Waiting { at, len, id, seen });
        self.note(tag);
        Ok(id)
    }

    /// Inserts a name the filter may have held but the table lacks, at once.
    pub(super) fn insert_now(
        &mut self,
        conn: &Connection,
        tag: u64,
        name: &str,
        seen: i64,
    ) -> rusqlite::Result<i64> {
        let id = self.take_id(conn)?;
        conn.prepare_cached(INSERT_SQL)?
            .execute(params![id, name, seen])?;
        self.note(tag);
        Ok(id)
    }

    /// Inserts the waiting names, in name order (before a commit, and
    /// before anything reads `domains` in the open transaction).
    pub(super) fn write(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        let bytes = &self.bytes;
        let name = |w: &Waiting| &bytes[w.at as usize..(w.at + w.len) as usize];
        self.waiting.sort_unstable_by(|a, b| name(a).cmp(name(b)));
        let mut insert = conn.prepare_cached(INSERT_SQL)?;
        for w in &self.waiting {
            // Copied from `str`s whole: valid UTF-8.
            let name = std::str::from_utf8(name(w)).unwrap_or_default();
            insert.execute(params![w.id, name, w.seen])?;
        }
        self.tags.clear();
        self.waiting.clear();
        self.bytes.clear();
        if self.filter.is_none() {
            // No names wait while there is no filter: give the RAM back.
            self.tags.shrink_to_fit();
            self.waiting.shrink_to_fit();
            self.bytes.shrink_to_fit();
        }
        Ok(())
    }

    fn take_id(&mut self, conn: &Connection) -> rusqlite::Result<i64> {
        let id = match self.next_id {
            Some(id) => id,
            None => conn.query_row(NEXT_ID_SQL, [], |r| r.get(0))?,
        };
        self.next_id = Some(id + 1);
        Ok(id)
    }

    /// Adds a name the table has (or is about to have) to the filter;
    /// drops the filter once it holds more than it tells apart.
    fn note(&mut self, tag: u64) {
        let Some(filter) = self.filter.as_mut() else {
            return;
        };
        for s in slots(tag) {
            filter[s / 64] |= 1 << (s % 64);
        }
        self.held += 1;
        if self.held > self.capacity {
            self.filter = None;
            self.full_at = Some(Instant::now());
        }
    }

    /// Builds the filter from the table's names and the waiting ones;
    /// none if the table has more than it tells apart.
    fn build(&mut self, conn: &Connection, hash: impl Fn(&[u8]) -> u64) -> rusqlite::Result<()> {
        self.filter = Some(vec![0u64; FILTER_BITS / 64].into_boxed_slice());
        self.held = 0;
        self.full_at = None;
        let mut names = conn.prepare_cached("SELECT name FROM domains")?;
        let mut rows = names.query([])?;
        while let Some(row) = rows.next()? {
            let name = row.get_ref(0)?.as_bytes()?;
            self.note(hash(name));
            if self.filter.is_none() {
                return Ok(());
            }
        }
        for i in 0..self.tags.len() {
            self.note(self.tags[i]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE domains (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                 last_seen INTEGER NOT NULL DEFAULT 0);
             INSERT INTO domains (id, name) VALUES (7, 'old.example'), (3, 'older.example');",
        )
        .unwrap();
        conn
    }

    fn tag(name: &str) -> u64 {
        super::super::names::name_hash(42, name.as_bytes())
    }

    fn hash(b: &[u8]) -> u64 {
        super::super::names::name_hash(42, b)
    }

    fn id_in_table(conn: &Connection, name: &str) -> Option<i64> {
        conn.query_row("SELECT id FROM domains WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .ok()
    }

    #[test]
    fn names_in_the_table_are_never_taken_for_missing_ones() {
        let conn = db();
        let mut new = NewNames::new();
        for name in ["old.example", "older.example"] {
            assert!(
                !new.surely_missing(&conn, tag(name), hash).unwrap(),
                "{name}"
            );
        }
        // Of names the table lacks, the filter takes few for held ones.
        let missing = (0..10_000)
            .filter(|i| {
                let name = format!("n{i}.example");
                new.surely_missing(&conn, tag(&name), hash).unwrap()
            })
            .count();
        assert!(missing > 9_900, "{missing} of 10000 found surely missing");
    }

    #[test]
    fn waiting_names_get_ids_after_the_tables_and_are_inserted_in_name_order() {
        let conn = db();
        let mut new = NewNames::new();
        let names = ["c.example", "a.example", "b.example"];
        let ids: Vec<i64> = names
            .iter()
            .map(|n| {
                assert!(new.surely_missing(&conn, tag(n), hash).unwrap());
                new.add_waiting(&conn, tag(n), n, 20).unwrap()
            })
            .collect();
        assert_eq!(ids, [8, 9, 10], "after the table's highest id, in turn");
        // Waiting: found by name, not yet in the table, and now held.
        assert_eq!(new.waiting_id(tag("a.example"), "a.example", 25), Some(9));
        assert_eq!(new.waiting_id(tag("d.example"), "d.example", 25), None);
        assert_eq!(id_in_table(&conn, "a.example"), None);
        assert!(!new.surely_missing(&conn, tag("a.example"), hash).unwrap());
        new.write(&conn).unwrap();
        let rows: Vec<(i64, String, i64)> = conn
            .prepare("SELECT id, name, last_seen FROM domains WHERE id > 7 ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rows,
            [
                (8, "c.example".to_string(), 20),
                (9, "a.example".to_string(), 25),
                (10, "b.example".to_string(), 20)
            ]
        );
        assert_eq!(new.waiting_id(tag("a.example"), "a.example", 25), None);
        // Inserted at once, a name takes the next id too.
        assert_eq!(
            new.insert_now(&conn, tag("e.example"), "e.example", 20)
                .unwrap(),
            11
        );
        assert_eq!(id_in_table(&conn, "e.example"), Some(11));
    }

    #[test]
    fn the_waiting_names_are_inserted_when_too_many_wait() {
        let conn = db();
        let mut new = NewNames::new();
        for i in 0..=WAITING_MAX {
            let name = format!("n{i}.example");
            new.add_waiting(&conn, tag(&name), &name, 1).unwrap();
        }
        let stored: i64 = conn
            .query_row("SELECT count(*) FROM domains", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored as usize, 2 + WAITING_MAX);
        assert_eq!(new.waiting.len(), 1);
    }

    #[test]
    fn a_full_filter_is_dropped_and_built_again_later() {
        let conn = db();
        let mut new = NewNames::sized(100, Duration::ZERO);
        assert!(new.surely_missing(&conn, tag("x.example"), hash).unwrap());
        for i in 0..99 {
            let name = format!("n{i}.example");
            new.add_waiting(&conn, tag(&name), &name, 1).unwrap();
        }
        assert!(new.filter.is_none(), "2 + 99 names are over 100");
        new.write(&conn).unwrap();
        assert_eq!(new.bytes(), 0, "no filter, nothing waiting: no RAM");
        // Built again (the hour is zero here): still too many names, so
        // none is taken for missing, and the name is looked up instead.
        assert!(!new.surely_missing(&conn, tag("x.example"), hash).unwrap());
        conn.execute("DELETE FROM domains WHERE id > 20", [])
            .unwrap();
        assert!(new.surely_missing(&conn, tag("x.example"), hash).unwrap());
        assert!(!new.surely_missing(&conn, tag("n3.example"), hash).unwrap());
        // An hour: not built again before it.
        let mut new = NewNames::sized(1, Duration::from_secs(3600));
        assert!(!new.surely_missing(&conn, tag("x.example"), hash).unwrap());
        conn.execute("DELETE FROM domains", []).unwrap();
        assert!(!new.surely_missing(&conn, tag("x.example"), hash).unwrap());
    }

    #[test]
    fn clearing_forgets_waiting_names_and_reads_the_next_id_again() {
        let conn = db();
        let mut new = NewNames::new();
        new.add_waiting(&conn, tag("a.example"), "a.example", 1)
            .unwrap();
        new.clear();
        assert_eq!(new.waiting_id(tag("a.example"), "a.example", 1), None);
        conn.execute(
            "INSERT INTO domains (id, name) VALUES (40, 'x.example')",
            [],
        )
        .unwrap();
        assert_eq!(
            new.add_waiting(&conn, tag("b.example"), "b.example", 1)
                .unwrap(),
            41
        );
    }
}
