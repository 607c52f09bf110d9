//! Test doubles for the outside world (the internet's DNS servers, list
//! download sites), used by the tests, the benchmarks and the image test,
//! and the small helpers they share (seeded random data, finding a thread).
//! Never used by the running server.

pub mod client;
pub mod upstream;

/// A small seeded random source (xorshift64*) for generated test and
/// benchmark data: the same seed gives the same data on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// One of `v`'s items.
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[(self.next_u64() % v.len() as u64) as usize]
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// This process's threads whose name starts with `prefix`, as their
/// `/proc/self/task/<tid>` directories (Linux; a name is cut to 15 bytes).
pub fn threads_named(prefix: &str) -> Vec<std::path::PathBuf> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| t.ok().map(|t| t.path()))
        .filter(|dir| {
            std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .collect()
}
