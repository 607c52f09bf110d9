//! The kernel's coarse clocks: the time of the last timer tick (a few ms
//! resolution), read without touching the hardware, so cheap enough for
//! every query. The one place the project reads them.

use std::time::Duration;

/// Time since an arbitrary fixed point (`CLOCK_MONOTONIC_COARSE`).
pub fn coarse_monotonic() -> Duration {
    read(libc::CLOCK_MONOTONIC_COARSE).unwrap_or_else(|| {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    })
}

/// Milliseconds since the Unix epoch (`CLOCK_REALTIME_COARSE`).
pub fn coarse_unix_ms() -> i64 {
    match read(libc::CLOCK_REALTIME_COARSE) {
        Some(d) => d.as_millis() as i64,
        None => crate::events::now_ms(),
    }
}

fn read(clock: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}
