//! The box's own vital signs for the dashboard: memory, CPU, temperature,
//! flash use and uptime, read from /proc, /sys and statvfs. Missing files
//! (not Linux, no thermal zone) give None, never an error.

use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SysInfo {
    pub process_rss_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    pub mem_available_bytes: Option<u64>,
    /// Whole-system CPU use since the previous sample, percent.
    pub cpu_percent: Option<f64>,
    pub temperature_c: Option<f64>,
    pub flash_total_bytes: Option<u64>,
    pub flash_free_bytes: Option<u64>,
    pub uptime_secs: u64,
    pub system_uptime_secs: Option<u64>,
}

/// Keeps the previous /proc/stat sample so CPU use is a rate.
pub struct Sampler {
    started: Instant,
    last_cpu: Mutex<Option<(u64, u64)>>,
}

impl Sampler {
    pub fn new() -> Sampler {
        let s = Sampler {
            started: Instant::now(),
            last_cpu: Mutex::new(None),
        };
        *s.last_cpu.lock().unwrap() = cpu_times();
        s
    }

    pub fn sample(&self, data_dir: &Path) -> SysInfo {
        let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let (flash_total, flash_free) = statvfs(data_dir).unzip();
        SysInfo {
            process_rss_bytes: kib_field(&status, "VmRSS:"),
            mem_total_bytes: kib_field(&mem, "MemTotal:"),
            mem_available_bytes: kib_field(&mem, "MemAvailable:"),
            cpu_percent: self.cpu_percent(),
            temperature_c: std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp")
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .map(|m| m / 1000.0),
            flash_total_bytes: flash_total,
            flash_free_bytes: flash_free,
            uptime_secs: self.started.elapsed().as_secs(),
            system_uptime_secs: std::fs::read_to_string("/proc/uptime")
                .ok()
                .and_then(|u| u.split('.').next()?.parse().ok()),
        }
    }

    fn cpu_percent(&self) -> Option<f64> {
        let now = cpu_times()?;
        let mut last = self.last_cpu.lock().unwrap_or_else(|e| e.into_inner());
        let prev = last.replace(now)?;
        let (busy, total) = (now.0.saturating_sub(prev.0), now.1.saturating_sub(prev.1));
        (total > 0).then(|| busy as f64 * 100.0 / total as f64)
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new()
    }
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// (busy, total) jiffies from the first line of /proc/stat.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let nums: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    let total: u64 = nums.iter().sum();
    let idle = nums.get(3).copied().unwrap_or(0) + nums.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

fn statvfs(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let s = Sampler::new();
        let info = s.sample(Path::new("."));
        assert!(info.process_rss_bytes.unwrap() > 0);
        assert!(info.mem_total_bytes.unwrap() >= info.mem_available_bytes.unwrap());
        assert!(info.flash_total_bytes.unwrap() >= info.flash_free_bytes.unwrap());
    }
}
