//! The clocks the project reads, all in one place: the wall clock, the
//! kernel's coarse clocks (the time of the last timer tick, a few ms
//! resolution, read without touching the hardware, so cheap enough for
//! every query) and the calling thread's CPU time.
//!
//! Not for: timers and sleeping (tokio, `std::thread::sleep`), or another
//! thread's CPU time (`testing::thread_cpu_s` reads it from /proc).

use std::time::Duration;

/// Milliseconds since the Unix epoch (the wall clock; 0 before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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
        None => now_ms(),
    }
}

/// CPU time the calling thread has used, in ms
/// (`CLOCK_THREAD_CPUTIME_ID`): the cost of a piece of work that a busy
/// machine's scheduling does not inflate. 0 if the clock cannot be read.
pub fn thread_cpu_ms() -> f64 {
    read(libc::CLOCK_THREAD_CPUTIME_ID).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
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
