//! The clocks the project reads, all in one place: the wall clock, the
//! kernel's coarse clocks (the time of the last timer tick, a few ms
//! resolution, read without touching the hardware, so cheap enough for
//! every query) and the calling thread's CPU time; and the one conversion
//! between Unix seconds and UTC calendar fields the text forms use.
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

/// A UTC calendar time, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

const DAY_S: i64 = 86_400;

impl Civil {
    /// The calendar fields of Unix seconds (proleptic Gregorian, any year).
    pub fn from_unix(unix_s: i64) -> Civil {
        let days = unix_s.div_euclid(DAY_S);
        let secs = unix_s.rem_euclid(DAY_S) as u32;
        // Days counted from 0000-03-01, in 400-year eras of 146,097 days,
        // so the leap day is the last day of each year.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Civil {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
        }
    }

    /// Unix seconds of these fields; a day past the month's end counts on
    /// into the next month (as `timegm` does). Month must be 1..=12.
    pub fn to_unix(self) -> i64 {
        let y = self.year - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * DAY_S
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
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

#[cfg(test)]
mod tests {
    use super::Civil;

    #[test]
    fn civil_fields_match_the_c_library_and_round_trip() {
        // Every day from 1900 to 2400 at a moving second of the day,
        // against gmtime_r: leap years, century rules, the epoch.
        let mut s = -2_208_988_800i64;
        while s < 13_569_465_600 {
            let t = s as libc::time_t;
            let mut tm: libc::tm = unsafe { std::mem::zeroed() };
            assert!(!unsafe { libc::gmtime_r(&t, &mut tm) }.is_null());
            let c = Civil::from_unix(s);
            let want = (
                i64::from(tm.tm_year) + 1900,
                tm.tm_mon as u32 + 1,
                tm.tm_mday as u32,
                tm.tm_hour as u32,
                tm.tm_min as u32,
                tm.tm_sec as u32,
            );
            assert_eq!(
                (c.year, c.month, c.day, c.hour, c.minute, c.second),
                want,
                "{s}"
            );
            assert_eq!(c.to_unix(), s);
            s += 86_400 + 4_321;
        }
        let feb31 = Civil {
            year: 2026,
            month: 2,
            day: 31,
            hour: 0,
            minute: 0,
            second: 0,
        };
        assert_eq!(Civil::from_unix(feb31.to_unix()).day, 3, "Feb 31 is Mar 3");
    }
}
