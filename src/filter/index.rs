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
//! the hash, the table stays sorted: a probe compares the 8 slots from the
//! home at once, and walks on only past a window ending in a smaller key.
//! Building is a sort of one `Vec<u64>` in place; the placed table is only
//! ever made by [`Index::from_sorted`], the path the snapshot loader uses
//! too.
//!
//! Beside the table, [`Branches`]: a small Bloom filter of every proper
//! suffix of every listed name ("com" and "example.com" for
//! "ads.example.com"). A walk stops at the first suffix with nothing listed
//! below it, so "a.b.c.d.ads.example.com" costs the probes of
//! "ads.example.com", not one per label.
//!
//! With a 48-bit key the chance that an unlisted name collides with one of n
//! listed ones is n / 2^48 per probe (3e-9 at 730k); the seed is drawn per
//! build, so a collision never survives a rebuild. Not for: keeping text.

use super::page_buf::PageBuf;
use super::parse::Action;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One bit per configured list (by position in `filter.lists`).
pub type ListMask = [u64; 4];
/// The config refuses more lists than a mask has bits.
use crate::config::MAX_LISTS;
const _: () = assert!(MAX_LISTS == 64 * 4);
pub const KEY_MASK: u64 = !0xFFFF;
/// Table slots per entry is 1 / LOAD.
const LOAD_PERCENT: u64 = 85;
/// Slots a probe compares at once (see [`Index::probe`]).
pub const WINDOW: usize = 8;

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
const P3: u64 = 0x5899_65cc_7537_4cc3;

#[inline(always)]
fn mum(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn r8(p: &[u8]) -> u64 {
    u64::from_le_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]])
}

#[inline(always)]
fn mix16(h: u64, a: u64, b: u64, len: usize) -> u64 {
    mum(P1 ^ len as u64, mum(a ^ P1, b ^ h ^ P0) ^ P3)
}

/// Folds one label into the running hash (wyhash-style, two multiplies for
/// a label up to 16 bytes). A short label is read as two little-endian
/// words, zero-extended: the same value [`Suffixes`] reads without
/// branching from its padded copy of the name.
#[inline]
fn mix_label(h: u64, p: &[u8]) -> u64 {
    let len = p.len();
    if len <= 16 {
        let mut b = [0u8; 16];
        b[..len].copy_from_slice(p);
        return mix16(h, r8(&b), r8(&b[8..]), len);
    }
    let mut h = h;
    let mut i = 0;
    while len - i > 16 {
        h = mum(r8(&p[i..]) ^ P1, r8(&p[i + 8..]) ^ h);
        i += 16;
    }
    mix16(h, r8(&p[len - 16..]), r8(&p[len - 8..]), len)
}

/// The low `n` bytes of a word (n <= 8).
#[inline(always)]
fn low_bytes(n: usize) -> u64 {
    ((1u128 << (8 * n)) - 1) as u64
}

/// Bit i set where byte i of `w` (little-endian) is a dot. Exact for every
/// byte value (no false hits next to a match), no branches.
#[inline(always)]
fn dots_in(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let v = w ^ 0x2e2e_2e2e_2e2e_2e2e;
    // 0x80 in each byte of v that is zero.
    let zero = !(((v & LOW7).wrapping_add(LOW7)) | v | LOW7);
    // Gather the eight 0x80 bits into the top byte, byte i to bit i.
    (zero >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Longest name the branch-free path takes (one bit per byte in a u64);
/// longer names are scanned a byte at a time and hash the same.
const FAST_NAME: usize = 64;

/// The suffixes of a name from the last label to the whole name, as
/// (hash, start): `start` is the byte offset where the suffix begins (0 for
/// the whole name). Lazy, so a walk that stops early hashes no further.
/// No allocation. Names up to 64 bytes are copied into a zero-padded
/// buffer once: their dots are found eight bytes at a time and each label
/// is read as two words, so the walk has no per-byte or per-length
/// branches to mispredict.
pub struct Suffixes<'a> {
    name: &'a [u8],
    /// The name and 16 zero bytes (fast path).
    buf: [u8; FAST_NAME + 16],
    /// Bit i: byte i is a dot not yet passed (fast path).
    dots: u64,
    fast: bool,
    h: u64,
    /// End of the label not yet folded in.
    end: usize,
    /// Scan position, moving left (slow path).
    i: usize,
    done: bool,
}

impl<'a> Suffixes<'a> {
    #[inline]
    pub fn new(seed: u64, name: &'a str) -> Suffixes<'a> {
        let b = name.as_bytes();
        let fast = b.len() <= FAST_NAME;
        let mut buf = [0u8; FAST_NAME + 16];
        let mut dots = 0;
        if fast {
            buf[..b.len()].copy_from_slice(b);
            for k in 0..FAST_NAME / 8 {
                dots |= dots_in(r8(&buf[k * 8..])) << (k * 8);
            }
        }
        Suffixes {
            name: b,
            buf,
            dots,
            fast,
            h: seed,
            end: b.len(),
            i: b.len(),
            done: false,
        }
    }

    /// Folds in the label at `at..self.end` (fast path).
    #[inline(always)]
    fn fold_padded(&mut self, at: usize) {
        let len = self.end - at;
        self.h = if len <= 16 {
            let lo = r8(&self.buf[at..]) & low_bytes(len.min(8));
            let hi = r8(&self.buf[at + 8..]) & low_bytes(len.saturating_sub(8));
            mix16(self.h, lo, hi, len)
        } else {
            mix_label(self.h, &self.name[at..self.end])
        };
    }
}

impl Iterator for Suffixes<'_> {
    type Item = (u64, usize);

    #[inline]
    fn next(&mut self) -> Option<(u64, usize)> {
        if self.done {
            return None;
        }
        if self.fast {
            if self.dots != 0 {
                let d = 63 - self.dots.leading_zeros() as usize;
                self.dots &= !(1 << d);
                self.fold_padded(d + 1);
                self.end = d;
                return Some((self.h, d + 1));
            }
            self.done = true;
            self.fold_padded(0);
            return Some((self.h, 0));
        }
        let b = self.name;
        while self.i > 0 {
            self.i -= 1;
            if b[self.i] == b'.' {
                self.h = mix_label(self.h, &b[self.i + 1..self.end]);
                self.end = self.i;
                return Some((self.h, self.i + 1));
            }
        }
        self.done = true;
        self.h = mix_label(self.h, &b[..self.end]);
        Some((self.h, 0))
    }
}

/// Calls `f(hash, start)` for every suffix, as [`Suffixes`] yields them.
#[inline]
pub fn for_each_suffix(seed: u64, name: &str, mut f: impl FnMut(u64, usize)) {
    for (h, start) in Suffixes::new(seed, name) {
        f(h, start);
    }
}

/// The hash of a whole name, as the last step of [`for_each_suffix`].
pub fn hash_name(seed: u64, name: &str) -> u64 {
    let mut out = 0;
    for_each_suffix(seed, name, |h, _| out = h);
    out
}

// ---- the branch filter ----

/// Branch filter bits per list line the builder is sized for. The lines
/// over-count names, and about 0.45 proper suffixes per name need a place
/// (real lists), so this is ~13 bits per entry: ~1-2% false positives.
const BRANCH_BITS_PER_LINE: usize = 4;

/// A blocked Bloom filter (one 64-bit word per key, 4 bits set) over the
/// hashes of every proper suffix of every listed name. "No" is certain:
/// nothing listed lies below that suffix, so a walk can stop. "Yes" may be
/// wrong and then costs one more probe, never a wrong answer.
pub struct Branches {
    words: PageBuf,
}

impl Branches {
    /// A filter for about `lines` list lines.
    pub fn for_lines(lines: usize) -> Branches {
        Branches {
            words: PageBuf::zeroed((lines * BRANCH_BITS_PER_LINE / 64).max(1)),
        }
    }

    /// Words saved by [`Branches::words`]; fails on none.
    pub fn from_words(words: PageBuf) -> anyhow::Result<Branches> {
        if words.is_empty() {
            anyhow::bail!("branch filter has no words");
        }
        Ok(Branches { words })
    }

    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Word and bits of a hash. The word comes from the hash's low half, the
    /// bits from its high half, which the table's key and home use: the two
    /// structures stay independent where it matters, inside the filter.
    #[inline(always)]
    fn locate(&self, hash: u64) -> (usize, u64) {
        let i = ((hash.rotate_left(32) as u128 * self.words.len() as u128) >> 64) as usize;
        let b = hash >> 32;
        let bits =
            1 << (b & 63) | 1 << ((b >> 6) & 63) | 1 << ((b >> 12) & 63) | 1 << ((b >> 18) & 63);
        (i, bits)
    }

    pub fn insert(&mut self, hash: u64) {
        let (i, bits) = self.locate(hash);
        self.words[i] |= bits;
    }

    /// Whether some listed name may lie below the suffix with this hash.
    #[inline(always)]
    pub fn may_have_below(&self, hash: u64) -> bool {
        let (i, bits) = self.locate(hash);
        self.words.get(i).is_some_and(|w| w & bits == bits)
    }

    #[inline(always)]
    fn prefetch(&self, hash: u64) {
        let (i, _) = self.locate(hash);
        if let Some(w) = self.words.get(i) {
            prefetch(w);
        }
    }

    fn heap_bytes(&self) -> usize {
        self.words.len() * 8
    }
}

// ---- building ----

/// Collects (hash, combo) words for every rule into one page-backed array
/// sized up front, and compacts it in place (sort, merge duplicates by
/// uniting their combos) whenever the unmerged tail grows large, so the
/// work array stays close to the final number of distinct names.
pub struct IndexBuilder {
    seed: u64,
    words: PageBuf,
    /// Words up to here are sorted and merged.
    compacted: usize,
    /// Index 0 is unused so that no word is ever 0 (0 marks an empty slot).
    combos: Vec<Combo>,
    ids: HashMap<Combo, u16>,
    branches: Branches,
}

/// Sorted, merged words (key | combo id), the combos they point to and the
/// branch filter.
pub struct Compiled {
    pub seed: u64,
    pub words: PageBuf,
    pub combos: Vec<Combo>,
    pub branches: Branches,
}

impl IndexBuilder {
    /// `capacity`: about how many rules will be added (pages are only
    /// resident once written).
    pub fn new(seed: u64, capacity: usize) -> IndexBuilder {
        IndexBuilder {
            seed,
            words: PageBuf::with_capacity(capacity),
            compacted: 0,
            combos: vec![Combo::default()],
            ids: HashMap::new(),
            branches: Branches::for_lines(capacity),
        }
    }

    fn intern(&mut self, c: Combo) -> anyhow::Result<u16> {
        if let Some(id) = self.ids.get(&c) {
            return Ok(*id);
        }
        if self.combos.len() > u16::MAX as usize {
            anyhow::bail!(
                "too many different combinations of lists (over 65535); merge some lists"
            );
        }
        let id = self.combos.len() as u16;
        self.combos.push(c);
        self.ids.insert(c, id);
        Ok(id)
    }

    pub fn add(
        &mut self,
        domain: &str,
        list: usize,
        action: Action,
        subdomains: bool,
    ) -> anyhow::Result<()> {
        debug_assert!(list < MAX_LISTS);
        let bit = mask_bit(list);
        let mut c = Combo::default();
        match (action, subdomains) {
            (Action::Block, false) => c.block_exact = bit,
            (Action::Block, true) => c.block_sub = bit,
            (Action::Allow, false) => c.allow_exact = bit,
            (Action::Allow, true) => c.allow_sub = bit,
        }
        let id = self.intern(c)?;
        let mut hash = 0;
        for (h, start) in Suffixes::new(self.seed, domain) {
            if start == 0 {
                hash = h;
            } else {
                self.branches.insert(h);
            }
        }
        self.words.push((hash & KEY_MASK) | id as u64);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Compacts when the unmerged tail is over a quarter of the merged part.
    pub fn maybe_compact(&mut self) -> anyhow::Result<()> {
        let tail = self.words.len() - self.compacted;
        if tail > 65_536 && tail > self.compacted / 4 {
            self.compact()?;
        }
        Ok(())
    }

    fn compact(&mut self) -> anyhow::Result<()> {
        let mut words = std::mem::take(&mut self.words);
        words.sort_unstable();
        let mut out = 0;
        let mut i = 0;
        while i < words.len() {
            let key = words[i] & KEY_MASK;
            let first = (words[i] & 0xFFFF) as u16;
            let mut id = first;
            let mut j = i + 1;
            if j < words.len() && words[j] & KEY_MASK == key {
                let mut c = self.combos[first as usize];
                while j < words.len() && words[j] & KEY_MASK == key {
                    let o = self.combos[(words[j] & 0xFFFF) as usize];
                    c.block_exact = mask_or(&c.block_exact, &o.block_exact);
                    c.block_sub = mask_or(&c.block_sub, &o.block_sub);
                    c.allow_exact = mask_or(&c.allow_exact, &o.allow_exact);
                    c.allow_sub = mask_or(&c.allow_sub, &o.allow_sub);
                    j += 1;
                }
                id = self.intern(c)?;
            }
            words[out] = key | id as u64;
            out += 1;
            i = j;
        }
        words.truncate(out);
        words.shrink_to_fit();
        self.words = words;
        self.compacted = out;
        Ok(())
    }

    /// Sorts and merges what is left; the result stays in the same mapping.
    pub fn finish(mut self) -> anyhow::Result<Compiled> {
        self.compact()?;
        Ok(Compiled {
            seed: self.seed,
            words: self.words,
            combos: self.combos,
            branches: self.branches,
        })
    }
}

// ---- the served table ----

pub struct Index {
    seed: u64,
    /// Placed words; always ends with at least one empty slot.
    table: PageBuf,
    /// Homes are in `0..slots`.
    slots: u64,
    len: usize,
    combos: Box<[Combo]>,
    branches: Branches,
}

impl Index {
    pub fn empty() -> Index {
        Index {
            seed: 0,
            table: PageBuf::zeroed(1),
            slots: 1,
            len: 0,
            combos: vec![Combo::default()].into_boxed_slice(),
            branches: Branches::for_lines(0),
        }
    }

    /// Places `count` sorted words. Fails if they are not strictly sorted by
    /// key or name a combo that does not exist (a damaged snapshot).
    pub fn from_sorted(
        seed: u64,
        combos: Vec<Combo>,
        count: usize,
        words: impl IntoIterator<Item = u64>,
        branches: Branches,
    ) -> anyhow::Result<Index> {
        let slots = (count as u64 * 100 / LOAD_PERCENT).max(1);
        let mut table = PageBuf::zeroed_huge(slots as usize + WINDOW);
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
                table.resize_zeroed(pos + 1);
            }
            table[pos] = w;
            next = pos + 1;
            placed += 1;
        }
        if placed != count {
            anyhow::bail!("index has {placed} words, header says {count}");
        }
        // Every home has a whole window after it, the last one ending in
        // at least one empty slot (the sentinel that ends a slow probe).
        let want = (next + 1).max(slots as usize + WINDOW);
        if table.len() < want {
            table.resize_zeroed(want);
        }
        Ok(Index {
            seed,
            table,
            slots,
            len: count,
            combos: combos.into_boxed_slice(),
            branches,
        })
    }

    pub fn from_compiled(c: Compiled) -> anyhow::Result<Index> {
        let n = c.words.len();
        let Compiled {
            seed,
            words,
            combos,
            branches,
        } = c;
        Index::from_sorted(seed, combos, n, words.iter().copied(), branches)
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

    /// Bytes the table, combos and branch filter occupy.
    pub fn heap_bytes(&self) -> usize {
        self.table.len() * 8
            + self.combos.len() * std::mem::size_of::<Combo>()
            + self.branches.heap_bytes()
    }

    /// Starts loading what `probe(hash)` and, for a suffix that is not the
    /// whole name (`parent`), `may_have_below(hash)` will read, so that
    /// the loads of several suffixes wait for memory together.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64, parent: bool) {
        let i = home(hash & KEY_MASK, self.slots);
        // The window's first and last slot: one cache line or two.
        if let Some(w) = self.table.get(i) {
            prefetch(w);
        }
        if let Some(w) = self.table.get(i + WINDOW - 1) {
            prefetch(w);
        }
        if parent {
            self.branches.prefetch(hash);
        }
    }

    /// Whether a listed name may lie below this suffix (see [`Branches`]).
    #[inline(always)]
    pub fn may_have_below(&self, hash: u64) -> bool {
        self.branches.may_have_below(hash)
    }

    pub fn branches(&self) -> &Branches {
        &self.branches
    }

    /// The combo for a full 64-bit hash, if the name is listed.
    ///
    /// Keys are unique, so a word with this key anywhere after the home is
    /// the entry: the first [`WINDOW`] slots are compared all at once,
    /// without a branch per slot. Only if the window ends in a smaller key
    /// (a long run of spilled words) does the walk go on, one slot at a time.
    #[inline]
    pub fn probe(&self, hash: u64) -> Option<&Combo> {
        let key = hash & KEY_MASK;
        let i = home(key, self.slots);
        let win: &[u64; WINDOW] = self.table.get(i..i + WINDOW)?.try_into().ok()?;
        let mut found = 0;
        for &w in win {
            // An empty slot (0) matches only the key 0, and then adds nothing.
            found |= if w & KEY_MASK == key { w } else { 0 };
        }
        if found != 0 {
            return self.combos.get((found & 0xFFFF) as usize);
        }
        let last = win[WINDOW - 1];
        if last != 0 && last & KEY_MASK < key {
            return self.probe_from(key, i + WINDOW);
        }
        None
    }

    #[cold]
    fn probe_from(&self, key: u64, mut i: usize) -> Option<&Combo> {
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
fn prefetch(p: *const u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above; `prfm` never faults.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
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
        b.add("ads.example", 0, Action::Block, true).unwrap();
        b.add("ads.example", 1, Action::Block, false).unwrap();
        b.add("good.example", 1, Action::Allow, true).unwrap();
        b.add("ads.example", 0, Action::Block, true).unwrap();
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
            b.add(&format!("d{i}.example"), i % 3, Action::Block, true)
                .unwrap();
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
    fn compaction_between_lists_merges_like_one_pass() {
        let mut b = IndexBuilder::new(3, 10);
        for list in 0..4 {
            for i in 0..100_000 {
                if i % (list + 1) == 0 {
                    b.add(&format!("n{i}.example"), list, Action::Block, list % 2 == 0)
                        .unwrap();
                }
            }
            b.maybe_compact().unwrap();
            assert!(b.len() <= 100_000 + 50_000, "{}", b.len());
        }
        let idx = Index::from_compiled(b.finish().unwrap()).unwrap();
        assert_eq!(idx.len(), 100_000);
        let c = idx.probe(hash_name(3, "n12.example")).unwrap();
        // 12 is a multiple of 1, 2, 3 and 4: lists 0 and 2 by subdomain, 1 and 3 exactly.
        assert_eq!(c.block_sub, mask_or(&mask_bit(0), &mask_bit(2)));
        assert_eq!(c.block_exact, mask_or(&mask_bit(1), &mask_bit(3)));
        let c = idx.probe(hash_name(3, "n7.example")).unwrap();
        assert_eq!((c.block_sub, c.block_exact), (mask_bit(0), [0; 4]));
    }

    #[test]
    fn long_runs_past_the_window_are_found() {
        // 40 keys that all have home 0: a run five windows long.
        let keys: Vec<u64> = (1..=40u64).map(|k| k << 20).collect();
        let words: Vec<u64> = keys.iter().map(|k| k | 1).collect();
        let mut combos = vec![Combo::default(); 2];
        combos[1].block_sub = mask_bit(3);
        let idx = Index::from_sorted(1, combos, 40, words, Branches::for_lines(1)).unwrap();
        for k in &keys {
            assert_eq!(
                idx.probe(*k).map(|c| c.block_sub),
                Some(mask_bit(3)),
                "{k:x}"
            );
            // Same run, not listed: between two keys, and past the end.
            assert!(idx.probe(k + (1 << 19)).is_none(), "{k:x}");
        }
        assert!(idx.probe(0).is_none());
        assert!(idx.probe(u64::MAX).is_none());
    }

    #[test]
    fn damaged_word_streams_are_refused() {
        let c = || vec![Combo::default(); 2];
        let b = || Branches::for_lines(1);
        assert!(Index::from_sorted(1, c(), 2, [5 << 16 | 1, 3 << 16 | 1], b()).is_err());
        assert!(Index::from_sorted(1, c(), 1, [5 << 16 | 9], b()).is_err());
        assert!(Index::from_sorted(1, c(), 2, [5 << 16 | 1], b()).is_err());
        assert!(Branches::from_words(PageBuf::new()).is_err());
    }

    /// The padded, branch-free walk and the byte-at-a-time walk are two
    /// implementations of one hash: names are hashed by the builder and by
    /// lookups through either, depending on their length only.
    #[test]
    fn fast_and_slow_walks_hash_alike() {
        let mut x = 99u64;
        let mut rnd = move |n: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            (x >> 33) % n
        };
        let alphabet = b"abcxyz0189-_.\xc3\xa9";
        for _ in 0..20_000 {
            let len = rnd(64) as usize;
            let mut v: Vec<u8> = (0..len)
                .map(|_| alphabet[rnd(alphabet.len() as u64) as usize])
                .collect();
            // Labels of every length class: 0-3, 4-7, 8-16, over 16.
            if rnd(4) == 0 {
                v.extend(std::iter::repeat_n(b'q', rnd(40) as usize));
            }
            let name = String::from_utf8_lossy(&v).into_owned();
            let fast: Vec<_> = Suffixes::new(3, &name).collect();
            let mut slow = Suffixes::new(3, &name);
            slow.fast = false;
            assert_eq!(fast, slow.collect::<Vec<_>>(), "{name:?}");
        }
        for k in 0..8 {
            let w = u64::from_le_bytes(*b"a.b....c") << (k * 8);
            assert_eq!(dots_in(w), 0b0111_1010 << k & 0xff, "{k}");
        }
        assert_eq!(
            dots_in(u64::from_le_bytes([
                0xae, 1, 0x2f, 0x2d, 0x2e, 0, 0x2e, 0xff
            ])),
            0b101_0000
        );
    }

    #[test]
    fn suffixes_stop_early_and_match_the_full_walk() {
        let name = "a.bb.example.com";
        let mut lazy = Suffixes::new(9, name);
        assert_eq!(lazy.next(), Some((hash_name(9, "com"), 13)));
        assert_eq!(lazy.next(), Some((hash_name(9, "example.com"), 5)));
        let all: Vec<_> = Suffixes::new(9, name).collect();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3], (hash_name(9, name), 0));
        assert_eq!(Suffixes::new(9, "").count(), 1);
        assert_eq!(Suffixes::new(9, "x.").count(), 2);
    }

    #[test]
    fn branches_know_every_parent_of_a_listed_name() {
        let mut b = IndexBuilder::new(5, 50_000);
        for i in 0..50_000 {
            b.add(
                &format!("h{i}.s{}.example.org", i % 100),
                0,
                Action::Block,
                false,
            )
            .unwrap();
        }
        b.add("deep.a.b.c.d.example.net", 1, Action::Allow, true)
            .unwrap();
        let idx = Index::from_compiled(b.finish().unwrap()).unwrap();
        let below = |n: &str| idx.may_have_below(hash_name(5, n));
        // No false negatives: every proper suffix of a listed name says yes.
        for n in ["org", "example.org", "s0.example.org", "s99.example.org"] {
            assert!(below(n), "{n}");
        }
        for n in ["net", "example.net", "d.example.net", "a.b.c.d.example.net"] {
            assert!(below(n), "{n}");
        }
        // Listed leaves and unlisted names mostly say no (a Bloom filter:
        // a few false positives are expected, not many).
        let leaves = (0..50_000)
            .filter(|i| below(&format!("h{i}.s{}.example.org", i % 100)))
            .count();
        let strangers = (0..50_000)
            .filter(|i| below(&format!("x{i}.example.com")))
            .count();
        assert!(leaves < 2_500, "{leaves} false positives of 50000");
        assert!(strangers < 2_500, "{strangers} false positives of 50000");
    }
}
