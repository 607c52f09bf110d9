//! The compact domain set: 8 bytes per domain plus slack, no domain text.
//!
//! A domain is reduced to a 64-bit hash folded label by label from the right,
//! so walking a query name's suffixes ("com", "example.com", "ads.example.com")
//! costs one mix per label and one probe per suffix. A table word holds the
//! top 48 bits of the hash and a 16-bit id into a small table of [`Combo`]s:
//! which lists block or allow this name, exactly or with subdomains.
//!
//! Layout: words sorted by hash, then placed at `home = hash * slots / 2^64`
//! or the next free slot (ordered linear probing). Because homes grow with
//! the hash, the table stays sorted: a miss stops at the first empty slot or
//! larger key, usually inside one cache line. Building is a sort of one
//! `Vec<u64>` in place; the placed table is only ever made by
//! [`Index::from_sorted`], the path the snapshot loader uses too.
//!
//! With a 48-bit key the chance that an unlisted name collides with one of n
//! listed ones is n / 2^48 per probe (3e-9 at 730k); the seed is drawn per
//! build, so a collision never survives a rebuild. Not for: keeping text.

use super::parse::Action;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One bit per configured list (by position in `filter.lists`).
pub type ListMask = [u64; 4];
pub const MAX_LISTS: usize = 256;
pub const KEY_MASK: u64 = !0xFFFF;
/// Table slots per entry is 1 / LOAD.
const LOAD_PERCENT: u64 = 85;

pub fn mask_bit(list: usize) -> ListMask {
    let mut m = [0; 4];
    m[list / 64] |= 1 << (list % 64);
    m
}

pub fn mask_and(a: &ListMask, b: &ListMask) -> ListMask {
    [a[0] & b[0], a[1] & b[1], a[2] & b[2], a[3] & b[3]]
}

pub fn mask_or(a: &ListMask, b: &ListMask) -> ListMask {
    [a[0] | b[0], a[1] | b[1], a[2] | b[2], a[3] | b[3]]
}

pub fn mask_any(a: &ListMask) -> bool {
    (a[0] | a[1] | a[2] | a[3]) != 0
}

/// Lowest list index set in `a`.
pub fn mask_first(a: &ListMask) -> Option<usize> {
    a.iter()
        .enumerate()
        .find(|(_, w)| **w != 0)
        .map(|(i, w)| i * 64 + w.trailing_zeros() as usize)
}

pub fn mask_iter(a: &ListMask) -> impl Iterator<Item = usize> + '_ {
    (0..MAX_LISTS).filter(|i| a[i / 64] & (1 << (i % 64)) != 0)
}

/// Which lists hold a name, and how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Combo {
    pub block_exact: ListMask,
    pub block_sub: ListMask,
    pub allow_exact: ListMask,
    pub allow_sub: ListMask,
}

impl Combo {
    /// Lists blocking the probed suffix; `full`: it is the whole query name.
    pub fn blocks(&self, full: bool) -> ListMask {
        if full {
            mask_or(&self.block_exact, &self.block_sub)
        } else {
            self.block_sub
        }
    }
    pub fn allows(&self, full: bool) -> ListMask {
        if full {
            mask_or(&self.allow_exact, &self.allow_sub)
        } else {
            self.allow_sub
        }
    }
}

// ---- hashing ----

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

#[inline(always)]
fn mum(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

/// Folds one label into the running hash (wyhash-style multiply-mix).
#[inline(always)]
fn mix_label(h: u64, label: &[u8]) -> u64 {
    let mut h = h ^ P0;
    let mut chunks = label.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = mum(h ^ v, P1);
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    h = mum(h ^ u64::from_le_bytes(tail), P2);
    mum(h ^ label.len() as u64, P3)
}

/// Calls `f(hash, start)` for every suffix of `name` from the last label to
/// the whole name; `start` is the byte offset where the suffix begins (0 for
/// the whole name). No allocation.
#[inline]
pub fn for_each_suffix(seed: u64, name: &str, mut f: impl FnMut(u64, usize)) {
    let b = name.as_bytes();
    let mut h = seed;
    let mut end = b.len();
    let mut i = b.len();
    while i > 0 {
        i -= 1;
        if b[i] == b'.' {
            h = mix_label(h, &b[i + 1..end]);
            f(h, i + 1);
            end = i;
        }
    }
    h = mix_label(h, &b[..end]);
    f(h, 0);
}

/// The hash of a whole name, as the last step of [`for_each_suffix`].
pub fn hash_name(seed: u64, name: &str) -> u64 {
    let mut out = 0;
    for_each_suffix(seed, name, |h, _| out = h);
    out
}

// ---- building ----

/// Collects (hash, list, semantics) per rule into one `Vec<u64>`, sized up
/// front so it never reallocates, then sorts and merges it in place.
pub struct IndexBuilder {
    seed: u64,
    words: Vec<u64>,
}

/// The tag in a raw word: list << 2 | semantics.
const EXACT_BLOCK: u64 = 0;
const SUB_BLOCK: u64 = 1;
const EXACT_ALLOW: u64 = 2;
const SUB_ALLOW: u64 = 3;

/// Sorted, merged words (key | combo id) and the combos they point to.
pub struct Compiled {
    pub seed: u64,
    pub words: Vec<u64>,
    /// Index 0 is unused so that no word is ever 0 (0 marks an empty slot).
    pub combos: Vec<Combo>,
}

impl IndexBuilder {
    /// `capacity`: an upper bound on the rules that will be added.
    pub fn new(seed: u64, capacity: usize) -> IndexBuilder {
        IndexBuilder {
            seed,
            words: Vec::with_capacity(capacity),
        }
    }

    pub fn add(&mut self, domain: &str, list: usize, action: Action, subdomains: bool) {
        debug_assert!(list < MAX_LISTS);
        let sem = match (action, subdomains) {
            (Action::Block, false) => EXACT_BLOCK,
            (Action::Block, true) => SUB_BLOCK,
            (Action::Allow, false) => EXACT_ALLOW,
            (Action::Allow, true) => SUB_ALLOW,
        };
        let key = hash_name(self.seed, domain) & KEY_MASK;
        self.words.push(key | (list as u64) << 2 | sem);
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Sorts, merges duplicates into combos, and returns the result in the
    /// same allocation.
    pub fn finish(self) -> anyhow::Result<Compiled> {
        let mut words = self.words;
        words.sort_unstable();
        let mut combos = vec![Combo::default()];
        let mut ids: HashMap<Combo, u16> = HashMap::new();
        let mut out = 0;
        let mut i = 0;
        while i < words.len() {
            let key = words[i] & KEY_MASK;
            let mut c = Combo::default();
            while i < words.len() && words[i] & KEY_MASK == key {
                let tag = words[i] & 0xFFFF;
                let bit = mask_bit((tag >> 2) as usize);
                let m = match tag & 3 {
                    EXACT_BLOCK => &mut c.block_exact,
                    SUB_BLOCK => &mut c.block_sub,
                    EXACT_ALLOW => &mut c.allow_exact,
                    _ => &mut c.allow_sub,
                };
                *m = mask_or(m, &bit);
                i += 1;
            }
            let id = match ids.get(&c) {
                Some(id) => *id,
                None => {
                    if combos.len() > u16::MAX as usize {
                        anyhow::bail!(
                            "too many different combinations of lists (over 65535); merge some lists"
                        );
                    }
                    let id = combos.len() as u16;
                    combos.push(c);
                    ids.insert(c, id);
                    id
                }
            };
            words[out] = key | id as u64;
            out += 1;
        }
        words.truncate(out);
        Ok(Compiled {
            seed: self.seed,
            words,
            combos,
        })
    }
}

// ---- the served table ----

pub struct Index {
    seed: u64,
    /// Placed words; always ends with at least one empty slot.
    table: Box<[u64]>,
    /// Homes are in `0..slots`.
    slots: u64,
    len: usize,
    combos: Box<[Combo]>,
}

impl Index {
    pub fn empty() -> Index {
        Index {
            seed: 0,
            table: vec![0].into_boxed_slice(),
            slots: 1,
            len: 0,
            combos: vec![Combo::default()].into_boxed_slice(),
        }
    }

    /// Places `count` sorted words. Fails if they are not strictly sorted by
    /// key or name a combo that does not exist (a damaged snapshot).
    pub fn from_sorted(
        seed: u64,
        combos: Vec<Combo>,
        count: usize,
        words: impl IntoIterator<Item = u64>,
    ) -> anyhow::Result<Index> {
        let slots = (count as u64 * 100 / LOAD_PERCENT).max(1);
        let mut table: Vec<u64> = Vec::with_capacity(slots as usize + 64);
        table.resize(slots as usize, 0);
        let mut next = 0usize;
        let mut prev_key = None;
        let mut placed = 0usize;
        for w in words {
            let key = w & KEY_MASK;
            let combo = (w & 0xFFFF) as usize;
            if combo == 0 || combo >= combos.len() {
                anyhow::bail!("index word names combo {combo} of {}", combos.len());
            }
            if prev_key.is_some_and(|p| p >= key) {
                anyhow::bail!("index words are not sorted");
            }
            prev_key = Some(key);
            let home = home(key, slots);
            let pos = home.max(next);
            if pos >= table.len() {
                table.resize(pos + 1, 0);
            }
            table[pos] = w;
            next = pos + 1;
            placed += 1;
        }
        if placed != count {
            anyhow::bail!("index has {placed} words, header says {count}");
        }
        // The sentinel that ends every probe.
        if next >= table.len() {
            table.push(0);
        }
        Ok(Index {
            seed,
            table: table.into_boxed_slice(),
            slots,
            len: count,
            combos: combos.into_boxed_slice(),
        })
    }

    pub fn from_compiled(c: Compiled) -> anyhow::Result<Index> {
        let n = c.words.len();
        let Compiled {
            seed,
            words,
            combos,
        } = c;
        Index::from_sorted(seed, combos, n, words)
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Distinct names in the index.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the table and combos occupy.
    pub fn heap_bytes(&self) -> usize {
        self.table.len() * 8 + self.combos.len() * std::mem::size_of::<Combo>()
    }

    /// The combo for a full 64-bit hash, if the name is listed.
    #[inline]
    pub fn probe(&self, hash: u64) -> Option<&Combo> {
        let key = hash & KEY_MASK;
        let mut i = home(key, self.slots);
        loop {
            // The sentinel guarantees an empty slot before the end.
            let w = *self.table.get(i)?;
            if w == 0 {
                return None;
            }
            let k = w & KEY_MASK;
            if k == key {
                return self.combos.get((w & 0xFFFF) as usize);
            }
            if k > key {
                return None;
            }
            i += 1;
        }
    }

    pub fn combos(&self) -> &[Combo] {
        &self.combos
    }

    /// The placed words in order, empty slots skipped (for saving).
    pub fn sorted_words(&self) -> impl Iterator<Item = u64> + '_ {
        self.table.iter().copied().filter(|w| *w != 0)
    }
}

#[inline(always)]
fn home(key: u64, slots: u64) -> usize {
    ((key as u128 * slots as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_hash_like_whole_names() {
        let mut seen = Vec::new();
        for_each_suffix(7, "a.bb.example.com", |h, start| seen.push((h, start)));
        assert_eq!(seen.len(), 4);
        let names = ["com", "example.com", "bb.example.com", "a.bb.example.com"];
        for ((h, start), name) in seen.iter().zip(names) {
            assert_eq!(*h, hash_name(7, name));
            assert_eq!(&"a.bb.example.com"[*start..], name);
        }
        assert_ne!(hash_name(7, "ab.c"), hash_name(7, "a.bc"));
        assert_ne!(hash_name(7, "x"), hash_name(8, "x"));
    }

    #[test]
    fn builds_merges_and_probes() {
        let mut b = IndexBuilder::new(42, 16);
        b.add("ads.example", 0, Action::Block, true);
        b.add("ads.example", 1, Action::Block, false);
        b.add("good.example", 1, Action::Allow, true);
        b.add("ads.example", 0, Action::Block, true);
        let idx = Index::from_compiled(b.finish().unwrap()).unwrap();
        assert_eq!(idx.len(), 2);
        let c = idx.probe(hash_name(42, "ads.example")).unwrap();
        assert_eq!(c.block_sub, mask_bit(0));
        assert_eq!(c.block_exact, mask_bit(1));
        let g = idx.probe(hash_name(42, "good.example")).unwrap();
        assert_eq!(g.allow_sub, mask_bit(1));
        assert!(idx.probe(hash_name(42, "other.example")).is_none());
        assert!(Index::empty().probe(hash_name(0, "x")).is_none());
    }

    #[test]
    fn many_names_all_found_and_misses_miss() {
        let mut b = IndexBuilder::new(1, 100_000);
        for i in 0..100_000 {
            b.add(&format!("d{i}.example"), i % 3, Action::Block, true);
        }
        let idx = Index::from_compiled(b.finish().unwrap()).unwrap();
        for i in 0..100_000 {
            let c = idx.probe(hash_name(1, &format!("d{i}.example"))).unwrap();
            assert_eq!(mask_first(&c.block_sub), Some(i % 3));
        }
        let misses = (0..100_000)
            .filter(|i| idx.probe(hash_name(1, &format!("m{i}.example"))).is_some())
            .count();
        assert_eq!(misses, 0);
    }

    #[test]
    fn damaged_word_streams_are_refused() {
        assert!(
            Index::from_sorted(1, vec![Combo::default(); 2], 2, [5 << 16 | 1, 3 << 16 | 1])
                .is_err()
        );
        assert!(Index::from_sorted(1, vec![Combo::default(); 2], 1, [5 << 16 | 9]).is_err());
        assert!(Index::from_sorted(1, vec![Combo::default(); 2], 2, [5 << 16 | 1]).is_err());
    }
}
