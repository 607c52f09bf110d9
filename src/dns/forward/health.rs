//! Per-upstream health: latency EWMA, failures and back-off.
//!
//! A failure counts as a slow answer (the attempt timeout) in the EWMA and
//! benches the upstream for 1 s, doubling with each consecutive failure up
//! to 60 s. Any good answer clears the back-off.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Weight of the newest sample in the latency average.
const ALPHA: f64 = 0.3;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the web UI and the API show per upstream.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpstreamHealth {
    pub upstream: String,
    /// Moving average of answer times (0 until the first answer).
    pub latency_ms: f64,
    /// Failed attempts in total (timeouts, errors, REFUSED).
    pub failures: u64,
    /// False while backed off after failures.
    pub healthy: bool,
    /// Attempts sent to this upstream.
    pub queries: u64,
    /// Usable answers received (SERVFAIL included).
    pub answers: u64,
    pub servfails: u64,
    pub consecutive_failures: u32,
    /// Replies dropped because their ID or question did not match.
    pub dropped_replies: u64,
    /// UDP answers with TC that were retried over TCP.
    pub truncated: u64,
    /// Milliseconds until the back-off ends (0 when healthy).
    pub backoff_ms: u64,
}

#[derive(Default)]
struct State {
    ewma_ms: Option<f64>,
    consecutive_failures: u32,
    backed_off_until: Option<Instant>,
    last_used: Option<Instant>,
    queries: u64,
    answers: u64,
    failures: u64,
    servfails: u64,
    truncated: u64,
}

/// What the upstream picker needs to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub ewma_ms: Option<f64>,
    pub backed_off_until: Option<Instant>,
    pub last_used: Option<Instant>,
}

pub(crate) struct Health {
    state: Mutex<State>,
    dropped: AtomicU64,
}

impl Health {
    pub fn new() -> Health {
        Health {
            state: Mutex::new(State::default()),
            dropped: AtomicU64::new(0),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panic elsewhere while holding the lock leaves plain counters:
        // still usable.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    }

    pub fn view(&self, now: Instant) -> View {
        self.with(|s| View {
            ewma_ms: s.ewma_ms,
            backed_off_until: s.backed_off_until.filter(|t| *t > now),
            last_used: s.last_used,
        })
    }

    pub fn attempt(&self, now: Instant) {
        self.with(|s| {
            s.queries += 1;
            s.last_used = Some(now);
        });
    }

    pub fn success(&self, took: Duration) {
        self.with(|s| {
            s.answers += 1;
            sample(s, took);
            s.consecutive_failures = 0;
            s.backed_off_until = None;
        });
    }

    /// The upstream answered, but SERVFAIL: it is alive, so no back-off.
    pub fn servfail(&self, took: Duration) {
        self.with(|s| {
            s.answers += 1;
            s.servfails += 1;
            sample(s, took);
        });
    }

    pub fn failure(&self, penalty: Duration) {
        self.with(|s| {
            s.failures += 1;
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            sample(s, penalty);
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << (s.consecutive_failures - 1).min(6))
                .min(MAX_BACKOFF);
            s.backed_off_until = Some(Instant::now() + backoff);
        });
    }

    pub fn truncated(&self) {
        self.with(|s| s.truncated += 1);
    }

    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self, label: &str, now: Instant) -> UpstreamHealth {
        let dropped_replies = self.dropped.load(Ordering::Relaxed);
        self.with(|s| {
            let backoff = s
                .backed_off_until
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or_default();
            UpstreamHealth {
                upstream: label.to_string(),
                latency_ms: s.ewma_ms.unwrap_or(0.0),
                failures: s.failures,
                healthy: backoff.is_zero(),
                queries: s.queries,
                answers: s.answers,
                servfails: s.servfails,
                consecutive_failures: s.consecutive_failures,
                dropped_replies,
                truncated: s.truncated,
                backoff_ms: backoff.as_millis() as u64,
            }
        })
    }
}

fn sample(s: &mut State, took: Duration) {
    let ms = took.as_secs_f64() * 1000.0;
    s.ewma_ms = Some(match s.ewma_ms {
        Some(avg) => avg + ALPHA * (ms - avg),
        None => ms,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_moves_toward_new_samples() {
        let h = Health::new();
        h.success(Duration::from_millis(100));
        h.success(Duration::from_millis(10));
        let v = h.view(Instant::now());
        let ms = v.ewma_ms.unwrap();
        assert!((ms - 73.0).abs() < 0.01, "{ms}");
    }

    #[test]
    fn failures_back_off_exponentially_and_success_clears() {
        let h = Health::new();
        let now = Instant::now();
        h.failure(Duration::from_millis(500));
        let first = h.view(now).backed_off_until.unwrap() - now;
        h.failure(Duration::from_millis(500));
        let second = h.view(now).backed_off_until.unwrap() - now;
        assert!(first >= FIRST_BACKOFF && second >= 2 * FIRST_BACKOFF);
        assert!(!h.snapshot("x", now).healthy);
        for _ in 0..20 {
            h.failure(Duration::from_millis(500));
        }
        assert!(
            h.view(now).backed_off_until.unwrap() - now <= MAX_BACKOFF + Duration::from_secs(1)
        );
        h.success(Duration::from_millis(5));
        let snap = h.snapshot("x", Instant::now());
        assert!(snap.healthy);
        assert_eq!((snap.failures, snap.consecutive_failures), (22, 0));
    }
}
