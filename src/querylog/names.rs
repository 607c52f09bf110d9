//! Names and client addresses to their ids, through small fixed-size
//! caches in front of the `domains` and `clients` tables' unique indexes:
//! the hot names of a household stay cached, a flood of distinct names only
//! churns the cache, so the writer's RAM does not grow with the traffic.
//!
//! A group of events is looked up together (`NameCache::look_up_group`):
//! the sets' tags, then the matching slots, then the look-ups, each pass
//! starting its loads before the next needs them.
//!
//! Not for: reading names back for the log page (`stats.rs` keeps its own).

use super::live::Batch;
use super::prefetch::prefetch;
use super::sketch::IdMap;
use rusqlite::{Connection, OptionalExtension, params};
use std::net::IpAddr;

/// `domains.last_seen` is written this many days ahead of the day a name
/// is used, so a name busy every day costs one UPDATE a week, not one a
/// day. The column stays an upper bound of the last day a row used the
/// name, which is all retention (of any version) needs to be safe.
const LAST_SEEN_AHEAD_DAYS: i64 = 7;
/// Clients remembered in RAM; more distinct clients than this start the
/// map over (a household has tens).
const CLIENT_CACHE: usize = 1024;

/// Slots in the name cache (8-way sets): 8192 x 24 bytes (a 16-byte slot
/// and its 8-byte tag) = 192 KiB.
/// Eight ways, not four: a set's tags still fill one cache line, and a
/// household's few thousand names overflow far fewer sets (2,000 names
/// asked in turn: 4-way sets left 20 of them missing on every round,
/// each a `SELECT`, 8-way sets 4; see the test below).
const NAME_SETS: usize = 1024;
const NAME_WAYS: usize = 8;

/// A cached name's id, found by its tag alone: the name itself is not
/// kept (56 bytes a slot it was, 640 KiB in all). Tags are 64 bits of a
/// hash seeded per process; names in one set already share 10 of them
/// (the set's number), so a look-up meets another name's tag by chance
/// about once in 2^51 (8 ways x 2^-54), and no one can aim a name at
/// another's.
#[derive(Clone, Copy)]
struct NameSlot {
    id: i64,
    /// The `last_seen` the database holds for the name.
    seen: i32,
    /// Where the name's id was last counted in its hour's top domains
    /// (`domain_counts`' `add_at`; checked there, so it may be stale).
    top_at: u16,
    /// Recently used (second-chance replacement within the set).
    used: bool,
}

const EMPTY_SLOT: NameSlot = NameSlot {
    id: 0,
    seen: 0,
    top_at: u16::MAX,
    used: false,
};

/// A set's tags (the names' hashes, 0: slot unused) in one cache line: a
/// look-up compares them before it touches a slot, so a hit reads two
/// lines and a miss one, instead of a line per way.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct SetTags([u64; NAME_WAYS]);

/// Domain name -> (id, last_seen), a fixed-size set-associative cache in
/// front of the `domains` table's unique index: the hot names of a
/// household stay in it, a flood of distinct names only churns it.
pub(super) struct NameCache {
    tags: Box<[SetTags]>,
    slots: Box<[NameSlot]>,
    /// This process's hash seed.
    seed: u64,
}

/// What the name cache held for an event's name when its group was
/// looked up (`NameCache::look_up_group`).
pub(super) struct NameLookup {
    /// The name's hash.
    pub tag: u64,
    /// Its id and `last_seen`.
    pub found: Option<(i64, i64)>,
    /// The slot that held it (valid when `found` is).
    pub slot: usize,
}

/// The name's bytes as little-endian words, the last one zero-padded.
/// Words are read whole (the tail as the last eight bytes, shifted),
/// never copied byte by byte: this runs once per logged query.
fn name_hash(seed: u64, name: &[u8]) -> u64 {
    let round = |h: u64, w: u64| {
        let h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^ (h >> 29)
    };
    let mut h = seed ^ name.len() as u64;
    let mut words = name.chunks_exact(8);
    for w in &mut words {
        h = round(h, u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    let tail = words.remainder().len();
    if tail > 0 {
        let w = match name.len().checked_sub(8) {
            Some(at) => {
                let last: [u8; 8] = name[at..].try_into().expect("8 bytes");
                u64::from_le_bytes(last) >> (8 * (8 - tail))
            }
            None => name
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
        };
        h = round(h, w);
    }
    h | 1
}

impl NameCache {
    pub(super) fn new() -> NameCache {
        use std::hash::BuildHasher;
        // std's per-process random keys (from the OS), as a number.
        NameCache::with_seed(std::collections::hash_map::RandomState::new().hash_one(0u64))
    }

    fn with_seed(seed: u64) -> NameCache {
        NameCache {
            tags: vec![SetTags([0; NAME_WAYS]); NAME_SETS].into_boxed_slice(),
            slots: vec![EMPTY_SLOT; NAME_SETS * NAME_WAYS].into_boxed_slice(),
            seed,
        }
    }

    fn hash(&self, b: &[u8]) -> u64 {
        name_hash(self.seed, b)
    }

    /// RAM the cache holds: fixed.
    pub(super) fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.tags) + std::mem::size_of_val(&*self.slots)
    }

    /// The number of the set `tag` falls in.
    fn set_of(tag: u64) -> usize {
        (tag >> 32) as usize % NAME_SETS
    }

    /// The set `tag` falls in: its tags and its slots.
    fn set(&mut self, tag: u64) -> (&mut [u64; NAME_WAYS], &mut [NameSlot]) {
        let set = Self::set_of(tag);
        let i = set * NAME_WAYS;
        (&mut self.tags[set].0, &mut self.slots[i..i + NAME_WAYS])
    }

    /// The way of the set whose tag is `tag`.
    fn way(tags: &[u64; NAME_WAYS], tag: u64) -> Option<usize> {
        tags.iter().position(|&t| t == tag)
    }

    #[cfg(test)]
    fn get(&mut self, name: &str) -> Option<(i64, i64)> {
        self.find(self.hash(name.as_bytes()))
    }

    /// Starts loading the lines a look-up of `tag` reads: its set's tags
    /// and, if a tag matches, that slot.
    fn prefetch_tags(&self, tag: u64) {
        prefetch(&self.tags[Self::set_of(tag)]);
    }

    fn prefetch_slot(&self, tag: u64) {
        let set = Self::set_of(tag);
        if let Some(w) = Self::way(&self.tags[set].0, tag) {
            prefetch(&self.slots[set * NAME_WAYS + w]);
        }
    }

    /// `get` with the name's hash already computed.
    fn find(&mut self, tag: u64) -> Option<(i64, i64)> {
        self.find_slot(tag).map(|(found, _)| found)
    }

    /// `find`, and the slot holding the name (for `top_at`).
    fn find_slot(&mut self, tag: u64) -> Option<((i64, i64), usize)> {
        let (tags, slots) = self.set(tag);
        let way = Self::way(tags, tag)?;
        let s = &mut slots[way];
        if !s.used {
            s.used = true;
        }
        let slot = Self::set_of(tag) * NAME_WAYS + way;
        Some(((s.id, i64::from(s.seen)), slot))
    }

    pub(super) fn top_at(&self, slot: usize) -> usize {
        usize::from(self.slots[slot].top_at)
    }

    /// Notes where the name in `slot` was counted. The slot may hold
    /// another name by now: `domain_counts`' `add_at` checks what it is given.
    pub(super) fn set_top_at(&mut self, slot: usize, at: usize) {
        self.slots[slot].top_at = u16::try_from(at).unwrap_or(u16::MAX);
    }

    #[cfg(test)]
    fn insert(&mut self, name: &str, id: i64, seen: i64) {
        self.insert_hashed(self.hash(name.as_bytes()), id, seen);
    }

    fn insert_hashed(&mut self, tag: u64, id: i64, seen: i64) {
        let (tags, set) = self.set(tag);
        let way = match Self::way(tags, tag).or_else(|| Self::way(tags, 0)) {
            Some(w) => w,
            // Not recently used: the first slot not used since the set's
            // marks were last reset, which happens when every slot is
            // marked. Resetting marks while searching (as this did) let a
            // hot name lose its mark to one insert and its slot to the
            // next, before it was asked again.
            None => set.iter().position(|s| !s.used).unwrap_or_else(|| {
                set.iter_mut().for_each(|s| s.used = false);
                0
            }),
        };
        tags[way] = tag;
        let slot = &mut set[way];
        slot.id = id;
        slot.seen = seen.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        slot.top_at = u16::MAX;
        slot.used = false;
    }

    #[cfg(test)]
    fn remove(&mut self, name: &str) {
        self.remove_hashed(self.hash(name.as_bytes()));
    }

    fn remove_hashed(&mut self, tag: u64) {
        let (tags, _) = self.set(tag);
        if let Some(w) = Self::way(tags, tag) {
            tags[w] = 0;
        }
    }

    pub(super) fn clear(&mut self) {
        self.tags.fill(SetTags([0; NAME_WAYS]));
        self.slots.fill(EMPTY_SLOT);
    }

    /// Looks up a group's names, in passes that each start their loads
    /// before the next needs them: after a sleep the cache is cold, and a
    /// row stalled on each miss. `out` gets one entry per event.
    pub(super) fn look_up_group(&mut self, events: &Batch, out: &mut Vec<NameLookup>) {
        out.clear();
        out.extend(events.iter().map(|(_, name)| {
            let tag = self.hash(name.as_bytes());
            self.prefetch_tags(tag);
            NameLookup {
                tag,
                found: None,
                slot: usize::MAX,
            }
        }));
        for l in out.iter() {
            self.prefetch_slot(l.tag);
        }
        for l in out.iter_mut() {
            if let Some((found, slot)) = self.find_slot(l.tag) {
                (l.found, l.slot) = (Some(found), slot);
            }
        }
    }

    /// The name's id, `day` noted as a day it was used. `looked` is what
    /// the cache held for it when its group was looked up.
    pub(super) fn id(
        &mut self,
        conn: &Connection,
        name: &str,
        day: i64,
        looked: &NameLookup,
    ) -> rusqlite::Result<i64> {
        let (tag, found) = (looked.tag, looked.found);
        // Ids do not change within a transaction and `last_seen` only
        // grows, so an earlier look-up that was recent enough still holds.
        if let Some((id, seen)) = found
            && seen >= day
        {
            return Ok(id);
        }
        let ahead = day + LAST_SEEN_AHEAD_DAYS;
        if let Some((id, seen)) = self.find(tag) {
            if seen >= day {
                return Ok(id);
            }
            let updated = conn
                .prepare_cached("UPDATE domains SET last_seen = max(last_seen, ?2) WHERE id = ?1")?
                .execute(params![id, ahead])?;
            if updated == 1 {
                self.insert_hashed(tag, id, ahead);
                return Ok(id);
            }
            // Retention forgot the name since it was cached.
            self.remove_hashed(tag);
        }
        let found: Option<(i64, i64)> = conn
            .prepare_cached("SELECT id, last_seen FROM domains WHERE name = ?1")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (id, seen) = match found {
            Some((id, seen)) if seen >= day => (id, seen),
            Some((id, _)) => {
                conn.prepare_cached("UPDATE domains SET last_seen = ?2 WHERE id = ?1")?
                    .execute(params![id, ahead])?;
                (id, ahead)
            }
            None => {
                conn.prepare_cached("INSERT INTO domains (name, last_seen) VALUES (?1, ?2)")?
                    .execute(params![name, ahead])?;
                (conn.last_insert_rowid(), ahead)
            }
        };
        self.insert_hashed(tag, id, seen);
        Ok(id)
    }
}

/// A client address as the client cache's key: plain numbers, hashed
/// without first copying the address enum about (a stall on every row).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey {
    bits: u128,
    v4: bool,
}

impl ClientKey {
    fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(a) => ClientKey {
                bits: a.to_bits().into(),
                v4: true,
            },
            IpAddr::V6(a) => ClientKey {
                bits: a.to_bits(),
                v4: false,
            },
        }
    }
}

/// Client address -> id, in front of the `clients` table's unique index.
#[derive(Default)]
pub(super) struct ClientCache {
    map: IdMap<ClientKey, i64>,
    /// The last client looked up, and its id (cleared with `map`).
    last: Option<(ClientKey, i64)>,
}

impl ClientCache {
    pub(super) fn id(&mut self, conn: &Connection, ip: IpAddr) -> rusqlite::Result<i64> {
        let key = ClientKey::of(ip);
        // Queries come in runs from one client (a page load, a device's
        // burst): the last one is compared before the map is hashed.
        if let Some((last, id)) = self.last
            && last == key
        {
            return Ok(id);
        }
        if let Some(&id) = self.map.get(&key) {
            self.last = Some((key, id));
            return Ok(id);
        }
        let addr = ip.to_string();
        let found: Option<i64> = conn
            .prepare_cached("SELECT id FROM clients WHERE addr = ?1")?
            .query_row([&addr], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                conn.prepare_cached("INSERT INTO clients (addr) VALUES (?1)")?
                    .execute([&addr])?;
                conn.last_insert_rowid()
            }
        };
        if self.map.len() >= CLIENT_CACHE {
            self.map.clear();
        }
        self.map.insert(key, id);
        self.last = Some((key, id));
        Ok(id)
    }

    pub(super) fn clear(&mut self) {
        self.map.clear();
        self.last = None;
    }

    /// RAM the cache holds, about: at most `CLIENT_CACHE` entries.
    pub(super) fn bytes(&self) -> usize {
        self.map.capacity() * 40
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_cache_stays_its_size_and_keeps_hot_names() {
        let mut cache = NameCache::new();
        let bytes = cache.bytes();
        cache.insert("hot.example", 1, 10);
        for i in 0..100_000i64 {
            cache.insert(&format!("flood{i}.example"), i + 2, 10);
            // The hot name is asked for all along, as a household's are.
            if i % 8 == 0 {
                assert_eq!(cache.get("hot.example"), Some((1, 10)), "after {i}");
            }
        }
        assert_eq!(cache.bytes(), bytes, "fixed size, whatever came through");
        assert_eq!(cache.get("flood99999.example"), Some((100_001, 10)));
        // A name of any length is cached (only its tag is kept).
        let long = "x".repeat(253);
        cache.insert(&long, 7, 10);
        assert_eq!(cache.get(&long), Some((7, 10)));
        cache.remove("hot.example");
        assert_eq!(cache.get("hot.example"), None);
    }

    #[test]
    fn a_households_names_asked_in_turn_stay_cached() {
        // 2,000 names asked round and round (benches/dns-paths.sh's cached
        // pool): a quarter of the slots, so only names whose set is
        // overfull miss, again on every round. A fixed seed: where the
        // names fall is then the same on every run.
        let mut cache = NameCache::with_seed(SEED);
        let names: Vec<String> = (0..2000).map(|i| format!("site{i}.home.example")).collect();
        let mut missed = 0;
        for round in 0..3 {
            for (i, n) in names.iter().enumerate() {
                if cache.get(n).is_none() {
                    if round == 2 {
                        missed += 1;
                    }
                    cache.insert(n, i as i64 + 1, 10);
                }
            }
        }
        assert!(
            missed <= 10,
            "{missed} of 2000 names missed in the third round"
        );
    }

    #[test]
    fn the_name_hash_reads_the_tail_as_a_zero_padded_word() {
        // Each 8-byte chunk copied into a zeroed word, byte by byte.
        fn reference(name: &[u8]) -> u64 {
            let mut h = SEED ^ name.len() as u64;
            for chunk in name.chunks(8) {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                h ^= h >> 29;
            }
            h | 1
        }
        let text: Vec<u8> = (0..64).map(|i| b'a' + (i * 7 % 26) as u8).collect();
        for len in 0..=text.len() {
            let name = &text[..len];
            assert_eq!(name_hash(SEED, name), reference(name), "{len} bytes");
        }
    }

    #[test]
    fn each_cache_has_its_own_seed() {
        let (a, b) = (NameCache::new(), NameCache::new());
        assert_ne!(a.seed, b.seed);
        assert_ne!(a.hash(b"example.com"), b.hash(b"example.com"));
    }

    const SEED: u64 = 0xCBF2_9CE4_8422_2325;
}
