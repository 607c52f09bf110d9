//! Test doubles for the outside world (the internet's DNS servers, list
//! download sites), used by the tests, the benchmarks and the image test,
//! and the small helpers they share (seeded random data, finding a thread).
//! Never used by the running server.

pub mod client;
pub mod upstream;
pub mod zone;

/// CPU seconds used by the newest thread (highest id) named `name`: from
/// `schedstat` (nanoseconds), else `stat` (clock ticks, 10 ms); None if
/// there is no such thread. Tests sharing a process each start their own
/// threads: the newest is the calling test's.
pub fn thread_cpu_s(name: &str) -> Option<f64> {
    let dir = threads_named(name).into_iter().max_by_key(|d| {
        d.file_name()
            .and_then(|t| t.to_str())
            .and_then(|t| t.parse::<u64>().ok())
    })?;
    let sched = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
    if let Some(ns) = sched
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
    {
        return Some(ns / 1e9);
    }
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // Fields after the ")" that closes the name: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((ticks(11)? + ticks(12)?) / hz)
}

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
