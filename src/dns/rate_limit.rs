//! Per-client query rate limit: a token bucket per client address
//! (`dns.rate_limit` queries a second, up to `dns.rate_limit_burst` at
//! once), so one flooding device is answered REFUSED at the cost of a table
//! look-up while everyone else is served.
//!
//! The buckets live in a fixed-size table (memory never grows with the
//! number of addresses seen): 256 sets of 8 buckets of 32 bytes, 64 KiB
//! of buckets in all (plus a lock per set), allocated once. An address
//! hashes to one set and takes its least recently used bucket when it
//! has none there. A client whose bucket was taken starts again with a
//! full one: eviction can only ever let a query through, never refuse
//! one. Each set has its own lock, taken only by DNS workers and only for
//! a bucket update; the control plane never takes it (the rate and burst
//! are read from the config on every call). Time is the kernel's coarse
//! clock, in milliseconds.
//! Not for: caps on what a client holds at once (`client_slots`).

use std::net::IpAddr;
use std::sync::Mutex;

const SETS: usize = 256;
const WAYS: usize = 8;

/// A query's price in tokens; buckets count thousandths of a query, so a
/// rate in queries a second refills `rate` units each millisecond.
const QUERY: u64 = 1000;

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// The address, or 0 for an empty bucket (no client's key is 0).
    key: u128,
    /// In thousandths of a query.
    tokens: u64,
    /// Coarse monotonic milliseconds of the last refill.
    at_ms: u64,
}

/// The table of buckets; see the module doc.
pub struct RateLimiter {
    sets: Box<[Mutex<[Bucket; WAYS]>]>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            sets: (0..SETS)
                .map(|_| Mutex::new([Bucket::default(); WAYS]))
                .collect(),
        }
    }
}

impl RateLimiter {
    /// Takes one query from `ip`'s bucket; false when it is empty. A
    /// `rate` of 0 admits everything without touching the table.
    pub fn admit(&self, ip: IpAddr, rate: u32, burst: u32) -> bool {
        if rate == 0 {
            return true;
        }
        let now = crate::clock::coarse_monotonic().as_millis() as u64;
        self.admit_at(ip, rate, burst, now)
    }

    fn admit_at(&self, ip: IpAddr, rate: u32, burst: u32, now_ms: u64) -> bool {
        let key = key(ip);
        let full = u64::from(burst) * QUERY;
        let Ok(mut set) = self.sets[set_of(key)].lock() else {
            return true;
        };
        let b = match set.iter().position(|b| b.key == key) {
            Some(i) => &mut set[i],
            None => {
                let lru = set
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, b)| (b.key != 0, b.at_ms))
                    .map_or(0, |(i, _)| i);
                set[lru] = Bucket {
                    key,
                    tokens: full,
                    at_ms: now_ms,
                };
                &mut set[lru]
            }
        };
        let refill = now_ms.saturating_sub(b.at_ms) * u64::from(rate);
        b.tokens = (b.tokens + refill).min(full);
        b.at_ms = b.at_ms.max(now_ms);
        if b.tokens < QUERY {
            return false;
        }
        b.tokens -= QUERY;
        true
    }
}

/// The address as one number: IPv4 in the low bits with a marker bit,
/// IPv6 as it is (`::` itself included is never a client).
fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => (1 << 64) | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn set_of(key: u128) -> usize {
    let folded = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % SETS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_is_admitted_then_the_rate() {
        let r = RateLimiter::default();
        let a = ip("192.168.1.20");
        let admitted = (0..150).filter(|_| r.admit_at(a, 10, 100, 5_000)).count();
        assert_eq!(admitted, 100, "the burst, then nothing in the same ms");
        // 10 queries a second: one more after 100 ms, ten after a second.
        assert!(!r.admit_at(a, 10, 100, 5_099));
        assert!(r.admit_at(a, 10, 100, 5_100));
        let later = (0..50).filter(|_| r.admit_at(a, 10, 100, 6_100)).count();
        assert_eq!(later, 10);
        // Another client has its own bucket.
        assert!(r.admit_at(ip("192.168.1.21"), 10, 100, 6_100));
        // Off admits everything.
        assert!((0..10_000).all(|_| r.admit(a, 0, 0)));
    }

    #[test]
    fn the_table_stays_its_size_and_a_busy_client_keeps_its_bucket() {
        let r = RateLimiter::default();
        let flooder = ip("10.0.0.1");
        while r.admit_at(flooder, 1, 5, 0) {}
        // Four times more addresses than buckets, one a millisecond: the
        // table does not grow, and the flooder, asking after each, stays
        // the most recently used of its set and so keeps its bucket: it
        // gets its rate (one a second), never a fresh burst.
        let others = (SETS * WAYS * 4) as u64;
        let mut flooder_admitted = 0;
        for i in 1..=others {
            let other = IpAddr::from(std::net::Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(i)));
            assert!(r.admit_at(other, 1, 5, i));
            flooder_admitted += u64::from(r.admit_at(flooder, 1, 5, i));
        }
        assert_eq!(flooder_admitted, others / 1000);
        assert_eq!(r.sets.len(), SETS);
        assert_eq!(std::mem::size_of::<Bucket>(), 32);
    }
}
