//! Fixed-size summaries the writer keeps in RAM, so its memory does not
//! grow with the number of distinct names:
//!
//! - [`Sketch`]: a HyperLogLog sketch of distinct domain ids, one per hour,
//!   so "unique domains between A and B" is a merge of a few kilobytes
//!   instead of a COUNT(DISTINCT) over millions of rows. Standard error
//!   about 3 %; exact in practice for small counts (linear counting).

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
