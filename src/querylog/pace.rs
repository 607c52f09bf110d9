//! How long the query-log writer sleeps when the event channel is empty.
//! It polls (a parked receiver would make every DNS worker's send a futex
//! wake-up), and each wake-up costs a timer and two context switches: at
//! a fixed 10 ms that was a sixth of the writer's CPU at 20,000 cached
//! answers a second (`perf`, docs/performance.md). So the sleep follows
//! the rate: as long as the last rate takes to queue [`WAKE_AT`] events,
//! within [`SHORTEST`] and [`LONGEST`].
//! Not for: when rows are committed (the flush interval, `writer.rs`).

use std::time::{Duration, Instant};

/// Events the writer aims to find at a wake-up: a quarter of the event
/// queue (`app.rs`, 4,096), so a burst at four times the last rate still
/// fits while the sleep adapts.
const WAKE_AT: f64 = 1024.0;
/// A wake-up at most every 50 ms: the live tail and the counters trail
/// the answers by no more.
pub(super) const LONGEST: Duration = Duration::from_millis(50);
const SHORTEST: Duration = Duration::from_millis(2);

pub(super) struct Pace {
    since: Instant,
    taken: usize,
}

impl Pace {
    pub(super) fn new() -> Pace {
        Pace {
            since: Instant::now(),
            taken: 0,
        }
    }

    /// Counts events taken from the channel.
    pub(super) fn took(&mut self, n: usize) {
        self.taken += n;
    }

    /// The next sleep, at most `wait`, from the rate events came at since
    /// the last call.
    pub(super) fn next(&mut self, wait: Duration) -> Duration {
        self.next_at(Instant::now(), wait)
    }

    fn next_at(&mut self, now: Instant, wait: Duration) -> Duration {
        let secs = now.duration_since(self.since).as_secs_f64().max(1e-3);
        let rate = self.taken as f64 / secs;
        (self.since, self.taken) = (now, 0);
        // No events: an infinite fill time, the longest sleep.
        let fill = Duration::try_from_secs_f64(WAKE_AT / rate).unwrap_or(LONGEST);
        fill.clamp(SHORTEST, LONGEST).min(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sleep_follows_the_rate() {
        let mut pace = Pace::new();
        let mut now = pace.since;
        let mut after = |ms: u64| {
            now += Duration::from_millis(ms);
            now
        };
        let second = Duration::from_secs(1);
        // Quiet: the longest sleep, or less when a flush is due sooner.
        assert_eq!(pace.next_at(after(100), second), LONGEST);
        let soon = Duration::from_millis(7);
        assert_eq!(pace.next_at(after(50), soon), soon);
        // 100,000 events a second: wake after 1,024 of them, 10.24 ms.
        pace.took(2_000);
        assert_eq!(
            pace.next_at(after(20), second),
            Duration::from_micros(10_240)
        );
        // A flood faster than the shortest sleep can follow.
        pace.took(1_000_000);
        assert_eq!(pace.next_at(after(5), second), SHORTEST);
        // 1,000 a second: the longest.
        pace.took(50);
        assert_eq!(pace.next_at(after(50), second), LONGEST);
        // Back to quiet.
        assert_eq!(pace.next_at(after(50), second), LONGEST);
    }
}
