//! Prefetch (`dns.prefetch`, on by default): a real glory-hole in front of
//! a stand-in upstream that counts the queries it gets. A name asked again
//! in the last tenth of its TTL is refreshed once in the background, so
//! the next question past the old expiry is still a cache hit; a name
//! asked only earlier in its TTL is not refreshed; with prefetch off,
//! nothing is.
//!
//! The cache counts whole seconds, so the names live 10 s (the shortest
//! TTL with a last tenth of a whole second) and each test takes about
//! that long.

mod support;

use glory_hole::events::Source;
use glory_hole::testing::client::{ask, ttls};
use glory_hole::testing::upstream::{Behaviour, StandIn};
use glory_hole::web::Backend;
use hickory_proto::op::Message;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use support::forward::*;

const TTL: u32 = 10;
const NAME: &str = "popular.example";

/// The upstream gives NAME a 10 s TTL; the server forwards to it.
async fn setup(extra: &str) -> (StandIn, support::dns::Running) {
    let up = stand_in().await;
    up.set(NAME, Behaviour::a(Ipv4Addr::new(192, 0, 2, 44), TTL));
    let s = support::dns::start(&server_config(&[&up], extra)).await;
    (up, s)
}

/// Asks NAME every 50 ms until the answer's TTL is at most `ttl`, checking
/// on the way that the upstream was asked only once; returns that answer.
async fn ask_until_ttl(up: &StandIn, dns: SocketAddr, ttl: u32) -> Message {
    let deadline = Instant::now() + Duration::from_secs(3 * u64::from(TTL));
    loop {
        let m = ask(dns, NAME, 1).await;
        let t = ttls(&m)[0];
        if t <= ttl {
            return m;
        }
        assert_eq!(up.queries(NAME), 1, "refreshed with {t} s of {TTL} left");
        assert!(
            Instant::now() < deadline,
            "the TTL never came down to {ttl}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the upstream has had `n` queries for NAME (5 s at most).
async fn upstream_asked(up: &StandIn, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.queries(NAME) < n {
        assert!(
            Instant::now() < deadline,
            "the upstream never got query {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the first answer, taken at `first`, would have expired: the
/// cache stored it in the clock second `first` fell in, so 10 s and a
/// margin after `first` are past it whatever the fraction.
async fn past_first_expiry(first: Instant) {
    let after = first + Duration::from_secs(u64::from(TTL)) + Duration::from_millis(300);
    tokio::time::sleep_until(after.into()).await;
}

/// Nothing refreshed the first answer (taken at `first`): past its expiry
/// the next question is a miss, the upstream's second query for NAME.
async fn expires_unrefreshed(up: &StandIn, s: &support::dns::Running, first: Instant) {
    past_first_expiry(first).await;
    assert_eq!(up.queries(NAME), 1, "no refresh");
    let upstream_before = s.app.engine.counters.answered(Source::Upstream);
    ask(s.dns, NAME, 1).await;
    assert_eq!(
        s.app.engine.counters.answered(Source::Upstream),
        upstream_before + 1,
        "expired: a miss"
    );
    assert_eq!(up.queries(NAME), 2);
    assert_eq!(s.app.engine.prefetch.sent.load(Relaxed), 0);
}

#[tokio::test]
async fn a_name_asked_in_its_last_tenth_is_refreshed_once_and_never_misses() {
    let (up, s) = setup("").await;
    let first = Instant::now();
    assert_eq!(ttls(&ask(s.dns, NAME, 1).await), [TTL]);
    // The refresh takes a while (within the 300 ms upstream timeout), so
    // a burst comes while it is on its way.
    up.set(
        NAME,
        Behaviour::delay(
            Duration::from_millis(150),
            Behaviour::a(Ipv4Addr::new(192, 0, 2, 44), TTL),
        ),
    );
    // 1 s of 10 left: this question asks for the refresh...
    ask_until_ttl(&up, s.dns, 1).await;
    // ...and a burst in the last tenth asks for nothing more.
    for _ in 0..5 {
        ask(s.dns, NAME, 1).await;
    }
    upstream_asked(&up, 2).await;
    // Renewed once the refresh is stored: its TTL starts again from 10.
    ask_until(s.dns, NAME, "the renewed TTL", |m| {
        (TTL - 1..=TTL).contains(&ttls(m)[0])
    })
    .await;
    past_first_expiry(first).await;
    let cached_before = s.app.engine.counters.answered(Source::Cache);
    let m = ask(s.dns, NAME, 1).await;
    assert!(ttls(&m)[0] >= 1, "{:?}", ttls(&m));
    assert_eq!(
        s.app.engine.counters.answered(Source::Cache),
        cached_before + 1,
        "past the old expiry: a cache hit"
    );
    assert_eq!(up.queries(NAME), 2, "one refresh, and no miss");
    // What the dashboard and /metrics show.
    let shown = s.app.engine_stats();
    assert_eq!((shown.prefetches, shown.prefetch_saved), (1, 1));
    assert_eq!(shown.prefetch_dropped, 0);
}

#[tokio::test]
async fn a_name_asked_only_earlier_in_its_ttl_is_not_refreshed() {
    let (up, s) = setup("").await;
    let first = Instant::now();
    ask(s.dns, NAME, 1).await;
    // Asked until 2 s of 10 are left, each time from the cache.
    ask_until_ttl(&up, s.dns, 2).await;
    expires_unrefreshed(&up, &s, first).await;
}

#[tokio::test]
async fn with_prefetch_off_the_last_tenth_refreshes_nothing() {
    let (up, s) = setup("prefetch = false\n").await;
    let first = Instant::now();
    ask(s.dns, NAME, 1).await;
    ask_until_ttl(&up, s.dns, 1).await;
    for _ in 0..5 {
        ask(s.dns, NAME, 1).await;
    }
    expires_unrefreshed(&up, &s, first).await;
}
