//! The failover policy of one query, without I/O: which upstream to try
//! next and with how much time, what an answer or a failure means for the
//! query and for the upstream's health, and what to report when every
//! attempt is spent.
//!
//! Every upstream in turn (healthiest first, `Inner::order`), then a
//! second pass over those that failed (a lost UDP packet deserves a
//! retry), all inside the query's deadline. SERVFAIL and REFUSED move on
//! to the next upstream and are kept as the fallback answer. Both the
//! tokio forwarder (`Inner::resolve`) and the UDP reader's own forwarder
//! (`inline`) drive this one state, so they fail over alike.
//! Not for: sending or receiving (the transports), matching replies to
//! queries (`check_reply`).

use super::{Answer, ForwardError, Inner};
use crate::wire;
use std::fmt::Display;
use std::time::{Duration, Instant};

/// Where one query's failover stands.
pub(crate) struct Failover {
    deadline: Instant,
    /// Upstreams of this pass still to try, in order.
    todo: std::vec::IntoIter<usize>,
    /// Upstreams of this pass that failed: the next pass tries them again.
    failed: Vec<usize>,
    passes_left: u8,
    attempts: usize,
    /// The last problem, if any: set only on a failure, so an answered
    /// query allocates nothing for it.
    last: Option<String>,
    fallback: Option<Answer>,
}

/// What an answer from upstream means for the query.
pub(crate) enum Verdict {
    /// Take it.
    Done(Answer),
    /// Kept as the fallback; try the next upstream.
    Next,
}

impl Failover {
    pub fn new(inner: &Inner, now: Instant) -> Failover {
        Failover {
            deadline: now + inner.query_timeout,
            todo: inner.order().into_iter(),
            failed: Vec::new(),
            passes_left: 1,
            attempts: 0,
            last: None,
            fallback: None,
        }
    }

    /// The upstream to try next and the time it has, counted as an
    /// attempt in its health; None when the query is out of upstreams or
    /// out of time.
    pub fn next(&mut self, inner: &Inner, now: Instant) -> Option<(usize, Duration)> {
        if now >= self.deadline {
            return None;
        }
        let i = match self.todo.next() {
            Some(i) => i,
            None if self.passes_left > 0 && !self.failed.is_empty() => {
                self.passes_left -= 1;
                self.todo = std::mem::take(&mut self.failed).into_iter();
                self.todo.next()?
            }
            None => return None,
        };
        self.attempts += 1;
        inner.upstreams[i].health.attempt(now);
        Some((i, inner.upstream_timeout.min(self.deadline - now)))
    }

    /// Upstream `i` answered `reply` after `took`.
    pub fn answered(&mut self, inner: &Inner, i: usize, reply: Vec<u8>, took: Duration) -> Verdict {
        let u = &inner.upstreams[i];
        let rcode = wire::rcode(&reply);
        let answer = Answer {
            bytes: reply,
            upstream: i as u8,
        };
        match rcode {
            wire::RCODE_SERVFAIL => {
                // Often about the name (e.g. DNSSEC), not the upstream:
                // no back-off, but ask another.
                u.health.servfail(took);
                self.last = Some(format!("{} answered SERVFAIL", u.label));
            }
            wire::RCODE_REFUSED => {
                // An upstream refusing us is misconfigured.
                u.health.failure(inner.upstream_timeout);
                self.last = Some(format!(
                    "{} answered REFUSED (does it allow queries from this box?)",
                    u.label
                ));
            }
            _ => {
                u.health.success(took);
                return Verdict::Done(answer);
            }
        }
        self.fallback = Some(answer);
        Verdict::Next
    }

    /// Upstream `i` failed with `error` (a socket error, say).
    pub fn failed(&mut self, inner: &Inner, i: usize, error: &dyn Display) {
        let u = &inner.upstreams[i];
        u.health.failure(inner.upstream_timeout);
        self.last = Some(format!("{}: {error}", u.label));
        self.failed.push(i);
    }

    /// Upstream `i` said nothing within `budget`.
    pub fn timed_out(&mut self, inner: &Inner, i: usize, budget: Duration) {
        let u = &inner.upstreams[i];
        // An attempt cut short by the deadline says little about the
        // upstream.
        if budget >= inner.upstream_timeout {
            u.health.failure(inner.upstream_timeout);
        }
        self.last = Some(format!(
            "{}: no answer within {} ms",
            u.label,
            budget.as_millis()
        ));
        self.failed.push(i);
    }

    /// Every attempt spent: the last SERVFAIL or REFUSED as it came, or
    /// why nothing came.
    pub fn give_up(self, inner: &Inner) -> Result<Answer, ForwardError> {
        self.fallback.ok_or(ForwardError::NoAnswer {
            deadline_ms: inner.query_timeout.as_millis() as u64,
            attempts: self.attempts,
            last: self.last.unwrap_or_else(|| "no attempt was made".into()),
        })
    }
}
