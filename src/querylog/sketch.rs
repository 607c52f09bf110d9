//! Fixed-size summaries the writer keeps in RAM, so its memory does not
//! grow with the number of distinct names:
//!
//! - [`Sketch`]: a HyperLogLog sketch of distinct domain ids, one per hour,
//!   so "unique domains between A and B" is a merge of a few kilobytes
//!   instead of a COUNT(DISTINCT) over millions of rows. Standard error
//!   about 3 %; exact in practice for small counts (linear counting).
//! - [`TopCounter`]: the most frequent ids of an hour (space-saving), for
//!   the per-hour top domains.

/// 2^10 registers: 1 KiB per hour, so a month is 720 KiB to merge.
const P: u32 = 10;
pub const REGISTERS: usize = 1 << P;

#[derive(Clone, Debug, PartialEq)]
pub struct Sketch {
    regs: Vec<u8>,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch {
            regs: vec![0; REGISTERS],
        }
    }
}

/// splitmix64: a stable hash (the sketches outlive the process, so no
/// per-process random keys).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Sketch {
    /// A sketch from its stored bytes; a blob of the wrong size (from a
    /// damaged row) counts as empty rather than failing the dashboard.
    pub fn from_bytes(b: &[u8]) -> Sketch {
        if b.len() == REGISTERS {
            Sketch { regs: b.to_vec() }
        } else {
            Sketch::default()
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.regs
    }

    pub fn insert(&mut self, id: i64) {
        let h = mix(id as u64);
        let idx = (h >> (64 - P)) as usize;
        let rest = (h << P) | (1 << (P - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if self.regs[idx] < rank {
            self.regs[idx] = rank;
        }
    }

    pub fn merge_bytes(&mut self, b: &[u8]) {
        if b.len() == REGISTERS {
            for (r, &o) in self.regs.iter_mut().zip(b) {
                *r = (*r).max(o);
            }
        }
    }

    pub fn estimate(&self) -> u64 {
        let m = REGISTERS as f64;
        let mut sum = 0.0;
        let mut zeros = 0usize;
        for &r in &self.regs {
            sum += 1.0 / f64::from(1u32 << r.min(31));
            zeros += usize::from(r == 0);
        }
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        let est = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        est.round() as u64
    }
}

/// Maps keyed by ids and hours: FxHash, as SipHash would be a fair share
/// of the per-row cost, and the writer itself chooses the keys.
pub type IdMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// One counted id: `count` overestimates the true count by at most `err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub id: i64,
    pub count: u64,
    pub err: u64,
}

/// The space-saving heavy-hitter summary (Metwally, Agrawal, El Abbadi
/// 2005) over at most `cap` ids: an id not held replaces the least counted
/// one and inherits its count as error. Any id seen more than
/// `total / cap` times is held, and every count is at most `total / cap`
/// too high, whatever the number of distinct ids. A min-heap on the counts
/// finds the least counted id; it is put in order only when one is
/// replaced (a count that grows just marks its slot), so counting an id
/// already held, the common case, is one hash lookup.
pub struct TopCounter {
    cap: usize,
    /// A binary min-heap on `count` once `ordered`, but for the slots
    /// listed in `dirty`, whose counts grew since.
    heap: Vec<Counted>,
    /// id -> position in `heap`.
    pos: IdMap<i64, usize>,
    total: u64,
    ordered: bool,
    /// Per slot of `heap`: listed in `dirty`.
    is_dirty: Vec<bool>,
    dirty: Vec<usize>,
}

impl TopCounter {
    pub fn new(cap: usize) -> TopCounter {
        TopCounter {
            cap: cap.max(1),
            heap: Vec::with_capacity(cap.max(1)),
            pos: IdMap::default(),
            total: 0,
            ordered: true,
            is_dirty: Vec::new(),
            dirty: Vec::new(),
        }
    }

    /// Everything counted so far (the sum of the true counts).
    #[cfg(test)]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// How many ids are held (at most the capacity).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.heap.len()
    }

    /// RAM held, about: fixed by `cap`, not by the ids counted.
    pub fn bytes(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<Counted>()
            + self.pos.capacity() * 17
            + self.is_dirty.capacity()
            + self.dirty.capacity() * std::mem::size_of::<usize>()
    }

    /// Starts loading the slot at `at` (a position [`Self::add_at`]
    /// returned), so a group's counts do not each stall on a cold cache.
    pub fn prefetch(&self, at: usize) {
        if let Some(c) = self.heap.get(at) {
            super::prefetch::prefetch(c);
        }
    }

    /// Counts `n` more occurrences of `id`.
    pub fn add(&mut self, id: i64, n: u64) {
        self.add_at(usize::MAX, id, n);
    }

    /// `add`, told where `id` was when last counted (any value: a stale
    /// or wrong position is checked, then the map is asked). Returns where
    /// `id` is now, for the next time: a caller that keeps it beside the
    /// name skips the map, a cache miss per row.
    pub fn add_at(&mut self, at: usize, id: i64, n: u64) -> usize {
        self.total += n;
        let held = match self.heap.get(at) {
            Some(c) if c.id == id => Some(at),
            _ => self.pos.get(&id).copied(),
        };
        if let Some(i) = held {
            self.heap[i].count += n;
            if self.ordered && !self.is_dirty[i] {
                self.is_dirty[i] = true;
                self.dirty.push(i);
            }
            i
        } else if self.heap.len() < self.cap {
            // Not full: nothing is replaced yet, so no order is needed.
            self.heap.push(Counted {
                id,
                count: n,
                err: 0,
            });
            self.is_dirty.push(false);
            self.pos.insert(id, self.heap.len() - 1);
            self.ordered = false;
            self.heap.len() - 1
        } else {
            self.restore_order();
            let min = self.heap[0];
            self.pos.remove(&min.id);
            self.heap[0] = Counted {
                id,
                count: min.count + n,
                err: min.count,
            };
            self.pos.insert(id, 0);
            self.sift_down(0)
        }
    }

    /// The `n` largest counts, largest first (ties by id).
    pub fn top(&self, n: usize) -> Vec<Counted> {
        let mut v = self.heap.clone();
        v.sort_unstable_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
        v.truncate(n);
        v
    }

    /// Makes `heap` a min-heap again. Grown slots are sifted down deepest
    /// first (a slot's descendants have larger positions), so each sift
    /// starts on subtrees that are already in order.
    fn restore_order(&mut self) {
        if !self.ordered {
            for i in (0..self.heap.len() / 2).rev() {
                self.sift_down(i);
            }
            self.ordered = true;
        } else {
            self.dirty.sort_unstable_by(|a, b| b.cmp(a));
            for k in 0..self.dirty.len() {
                self.sift_down(self.dirty[k]);
            }
        }
        for &i in &self.dirty {
            self.is_dirty[i] = false;
        }
        self.dirty.clear();
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos.insert(self.heap[a].id, a);
        self.pos.insert(self.heap[b].id, b);
    }

    /// Returns where the slot at `i` ended up.
    fn sift_down(&mut self, mut i: usize) -> usize {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if l < self.heap.len() && self.heap[l].count < self.heap[least].count {
                least = l;
            }
            if r < self.heap.len() && self.heap[r].count < self.heap[least].count {
                least = r;
            }
            if least == i {
                return i;
            }
            self.swap(i, least);
            i = least;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_counts_are_exact_and_large_ones_close() {
        let mut s = Sketch::default();
        for id in 0..20 {
            s.insert(id);
            s.insert(id);
        }
        assert_eq!(s.estimate(), 20);
        let mut big = Sketch::default();
        for id in 0..100_000 {
            big.insert(id);
        }
        let e = big.estimate() as f64;
        assert!((e - 100_000.0).abs() / 100_000.0 < 0.1, "estimate {e}");
    }

    #[test]
    fn merge_is_union() {
        let (mut a, mut b) = (Sketch::default(), Sketch::default());
        (0..30).for_each(|i| a.insert(i));
        (20..50).for_each(|i| b.insert(i));
        a.merge_bytes(b.as_bytes());
        assert_eq!(a.estimate(), 50);
    }
}

#[cfg(test)]
mod top_counter_tests {
    use super::*;

    /// xorshift64*, so the stream is the same on every run.
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    #[test]
    fn few_ids_are_counted_exactly() {
        let mut t = TopCounter::new(16);
        for (id, n) in [(7, 5), (3, 9), (7, 2), (11, 1)] {
            t.add(id, n);
        }
        let top: Vec<(i64, u64, u64)> = t.top(10).iter().map(|c| (c.id, c.count, c.err)).collect();
        assert_eq!(top, vec![(3, 9, 0), (7, 7, 0), (11, 1, 0)]);
        assert_eq!(t.total(), 17);
    }

    #[test]
    fn counts_match_a_plain_space_saving_whatever_the_order_of_updates() {
        // The reference evicts a least counted id by scanning all of them.
        // Ties may evict a different id, but the counts held are the same.
        let mut t = TopCounter::new(8);
        let mut reference: Vec<(i64, u64)> = Vec::new();
        let mut state = 42u64;
        for step in 0..20_000 {
            let id = (rng(&mut state) % if step % 3 == 0 { 40 } else { 6 }) as i64;
            let n = 1 + rng(&mut state) % 3;
            t.add(id, n);
            if let Some(e) = reference.iter_mut().find(|e| e.0 == id) {
                e.1 += n;
            } else if reference.len() < 8 {
                reference.push((id, n));
            } else {
                let min = reference.iter_mut().min_by_key(|e| e.1).expect("full");
                *min = (id, min.1 + n);
            }
            let mut got: Vec<u64> = t.top(8).iter().map(|c| c.count).collect();
            let mut want: Vec<u64> = reference.iter().map(|e| e.1).collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "step {step}");
        }
    }

    #[test]
    fn a_position_given_with_an_id_changes_nothing_counted() {
        // Positions kept per id as the writer keeps them beside names, some
        // of them stale or wrong on purpose: the counter checks them.
        let mut plain = TopCounter::new(8);
        let mut hinted = TopCounter::new(8);
        let mut at = IdMap::<i64, usize>::default();
        let mut state = 7u64;
        for step in 0..20_000 {
            let id = (rng(&mut state) % if step % 3 == 0 { 40 } else { 6 }) as i64;
            let n = 1 + rng(&mut state) % 3;
            plain.add(id, n);
            let hint = match rng(&mut state) % 10 {
                0 => usize::MAX,
                1 => (rng(&mut state) % 10) as usize,
                _ => at.get(&id).copied().unwrap_or(usize::MAX),
            };
            let now = hinted.add_at(hint, id, n);
            assert_eq!(hinted.heap[now].id, id, "step {step}");
            at.insert(id, now);
            assert_eq!(hinted.top(8), plain.top(8), "step {step}");
        }
    }

    #[test]
    fn heavy_hitters_survive_a_flood_of_distinct_ids() {
        // 20 heavy ids with known counts, buried in 285 000 ids seen once
        // each, interleaved: the summary holds 1 024 ids whatever the flood.
        let mut t = TopCounter::new(1024);
        let mut truth = IdMap::<i64, u64>::default();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next_rare = 1_000_000i64;
        for step in 0..400_000u64 {
            let id = if step % 7 < 2 {
                // Heavy id k gets weight 21 - k: counts well apart.
                let r = (rng(&mut state) % 210) as i64;
                let mut acc = 0;
                (0..20)
                    .find(|k| {
                        acc += 20 - k;
                        r < acc
                    })
                    .unwrap_or(19)
            } else {
                next_rare += 1;
                next_rare
            };
            *truth.entry(id).or_default() += 1;
            t.add(id, 1);
        }
        assert!(t.held() <= 1024);
        let bound = t.total() / 1024;
        let top = t.top(20);
        let mut expected: Vec<(i64, u64)> = truth.iter().map(|(&k, &v)| (k, v)).collect();
        expected.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        expected.truncate(20);
        assert_eq!(
            top.iter().map(|c| c.id).collect::<Vec<_>>(),
            expected.iter().map(|e| e.0).collect::<Vec<_>>(),
            "the top 20 are the 20 heavy ids, in order"
        );
        for c in &top {
            let real = truth[&c.id];
            assert!(
                c.count >= real && c.count - real <= bound,
                "{c:?} vs {real}"
            );
            assert!(c.count - c.err <= real, "{c:?} vs {real}");
        }
    }
}

/// The error bounds docs/querylog.md ("Which figures are estimates")
/// states, checked against exact counts of skewed generated traffic.
#[cfg(test)]
mod bound_tests {
    use super::*;

    /// Zipf (s = 1) ranks over `n` ids by inversion of the cumulative
    /// weights, from a splitmix64 stream: the same traffic every run.
    struct Zipf {
        cdf: Vec<f64>,
        state: u64,
    }
    impl Zipf {
        fn new(n: usize, seed: u64) -> Zipf {
            let mut acc = 0.0;
            let mut cdf: Vec<f64> = (1..=n)
                .map(|k| {
                    acc += 1.0 / k as f64;
                    acc
                })
                .collect();
            cdf.iter_mut().for_each(|c| *c /= acc);
            Zipf { cdf, state: seed }
        }
        fn next(&mut self) -> i64 {
            self.state = self.state.wrapping_add(1);
            let u = (mix(self.state) >> 11) as f64 / (1u64 << 53) as f64;
            self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1) as i64
        }
    }

    #[test]
    fn top_counts_are_within_total_over_capacity_of_the_truth() {
        // An hour of a busy household's traffic: 100 000 queries over
        // 50 000 names, counted by the writer's summary size (1 024 ids).
        let cap = 1024;
        let mut z = Zipf::new(50_000, 1);
        let mut t = TopCounter::new(cap);
        let mut truth = IdMap::<i64, u64>::default();
        for _ in 0..100_000 {
            let id = z.next();
            *truth.entry(id).or_default() += 1;
            t.add(id, 1);
        }
        let bound = t.total() / cap as u64;
        assert_eq!(bound, 97);
        let held = t.top(cap);
        for c in &held {
            let real = truth.get(&c.id).copied().unwrap_or(0);
            assert!(c.count >= real, "{c:?} undercounts {real}");
            assert!(c.count - real <= bound, "{c:?} vs {real}: over the bound");
        }
        // Every id above the bound is held.
        for (&id, &n) in &truth {
            if n > bound {
                assert!(held.iter().any(|c| c.id == id), "{id} ({n}) not held");
            }
        }
        // The stored top 100 are the true top 100 where counts are more
        // than twice the bound apart; here, the top 40 exactly.
        let mut exact: Vec<(i64, u64)> = truth.into_iter().collect();
        exact.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let got: Vec<i64> = t.top(40).iter().map(|c| c.id).collect();
        let want: Vec<i64> = exact[..40].iter().map(|e| e.0).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn unique_counts_stay_within_three_standard_errors() {
        // Standard error of HyperLogLog with m registers: 1.04 / sqrt(m).
        let se = 1.04 / (REGISTERS as f64).sqrt();
        assert!((se - 0.0325).abs() < 0.0001);
        let mut sq = 0.0;
        let mut runs = 0.0;
        for (seed, n) in (0..40u64).flat_map(|s| [(s, 3_000usize), (s, 30_000), (s, 100_000)]) {
            // Skewed traffic: repeats change nothing, only distinct ids count.
            let mut z = Zipf::new(n, seed * 7919 + 1);
            let mut s = Sketch::default();
            let mut seen = IdMap::<i64, ()>::default();
            let offset = seed as i64 * 10_000_000;
            for _ in 0..n {
                let id = offset + z.next();
                seen.insert(id, ());
                s.insert(id);
            }
            let real = seen.len() as f64;
            let err = (s.estimate() as f64 - real) / real;
            assert!(
                err.abs() <= 3.0 * se,
                "{n} ids, seed {seed}: {real} distinct, error {err}"
            );
            sq += err * err;
            runs += 1.0;
        }
        let rms = (sq / runs).sqrt();
        assert!(
            rms <= se * 1.15,
            "root mean square error {rms}, standard error {se}"
        );
        eprintln!(
            "unique counts: rms error {:.4} over {runs} sketches (standard error {se:.4})",
            rms
        );
    }
}
