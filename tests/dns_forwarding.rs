//! A real glory-hole forwarding to stand-in upstreams over loopback: the
//! cache in front of them, TTLs, stale answers, truncation for UDP
//! clients, failover, conditional forwarding, query events. The forwarder
//! on its own (transports, forgery resistance, health) is
//! `tests/forwarder.rs`.

mod support;

use glory_hole::events::Source;
use glory_hole::testing::client::{self, answers, ask, ttls};
use glory_hole::testing::upstream::Behaviour;
use hickory_proto::op::{Message, ResponseCode};
use std::net::Ipv4Addr;
use std::time::Duration;
use support::forward::*;

// ---- through the server: a real glory-hole forwarding to stand-ins ----

#[tokio::test]
async fn forwards_and_a_cache_hit_never_reaches_the_upstream() {
    let up = stand_in().await;
    up.set(
        "cached.example",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 7), 300),
    );
    let s = support::dns::start(&server_config(&[&up], "")).await;
    let m = ask(s.dns, "cached.example", 1).await;
    assert_eq!(answers(&m), ["192.0.2.7"]);
    for _ in 0..5 {
        let m = ask(s.dns, "Cached.Example", 1).await;
        assert_eq!(answers(&m), ["192.0.2.7"]);
        assert_eq!(
            m.queries[0].name.to_string(),
            "Cached.Example.",
            "client's case kept"
        );
    }
    assert_eq!(
        up.queries("cached.example"),
        1,
        "one upstream query, then cache hits"
    );
    assert_eq!(s.app.engine.counters.answered(Source::Cache), 5);
    assert!(s.app.engine.cache.stats().hits >= 5);
}

#[tokio::test]
async fn ttls_count_down_in_the_cache() {
    let up = stand_in().await;
    up.set(
        "ttl.example",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 8), 100),
    );
    let s = support::dns::start(&server_config(&[&up], "")).await;
    assert_eq!(ttls(&ask(s.dns, "ttl.example", 1).await), [100]);
    // One second off per second of age: never a jump on the way to 98.
    let m = ask_until(s.dns, "ttl.example", "two seconds of age", |m| {
        let t = ttls(m)[0];
        assert!(
            (97..=100).contains(&t),
            "TTL decremented by the age, got {t}"
        );
        t <= 98
    })
    .await;
    let t = ttls(&m)[0];
    assert!(
        (97..=98).contains(&t),
        "TTL decremented by the age, got {t}"
    );
    assert_eq!(up.queries("ttl.example"), 1);
}

#[tokio::test]
async fn ttls_are_clamped() {
    let up = stand_in().await;
    up.set(
        "short.example",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 9), 1),
    );
    up.set(
        "long.example",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 9), 999_999),
    );
    let s = support::dns::start(&server_config(
        &[&up],
        "[cache]\nmin_ttl = 60\nmax_ttl = 3600\n",
    ))
    .await;
    ask(s.dns, "short.example", 1).await;
    ask(s.dns, "long.example", 1).await;
    let t = ttls(&ask(s.dns, "short.example", 1).await)[0];
    assert!((58..=60).contains(&t), "min_ttl applied: {t}");
    let t = ttls(&ask(s.dns, "long.example", 1).await)[0];
    assert!((3598..=3600).contains(&t), "max_ttl applied: {t}");
    assert_eq!(up.queries("short.example"), 1);
}

#[tokio::test]
async fn negative_answers_are_cached_for_the_soa_minimum() {
    let up = stand_in().await;
    up.set("gone.example", Behaviour::Nxdomain { soa_minimum: 120 });
    up.set("empty.example", Behaviour::NoData { soa_minimum: 120 });
    let s = support::dns::start(&server_config(&[&up], "")).await;
    for _ in 0..3 {
        let m = ask(s.dns, "gone.example", 1).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        let m = ask(s.dns, "empty.example", 1).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
    }
    assert_eq!(up.queries("gone.example"), 1);
    assert_eq!(up.queries("empty.example"), 1);
}

#[tokio::test]
async fn servfail_is_cached_only_briefly() {
    let up = stand_in().await;
    up.set("broken.example", Behaviour::Servfail);
    let s = support::dns::start(&server_config(
        &[&up],
        "[cache]\nservfail_ttl = 1\nserve_stale = false\n",
    ))
    .await;
    let m = ask(s.dns, "broken.example", 1).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let first = up.queries("broken.example");
    ask(s.dns, "broken.example", 1).await;
    assert_eq!(
        up.queries("broken.example"),
        first,
        "remembered for a moment"
    );
    ask_until(
        s.dns,
        "broken.example",
        "asked upstream again after servfail_ttl",
        |_| up.queries("broken.example") > first,
    )
    .await;
}

#[tokio::test]
async fn truncated_upstream_answers_are_retried_over_tcp() {
    let up = stand_in().await;
    up.set(
        "tc.example",
        Behaviour::truncate(Behaviour::a(Ipv4Addr::new(192, 0, 2, 10), 300)),
    );
    let s = support::dns::start(&server_config(&[&up], "")).await;
    let m = ask(s.dns, "tc.example", 1).await;
    assert_eq!(answers(&m), ["192.0.2.10"]);
    assert!(!m.metadata.truncation);
}

#[tokio::test]
async fn large_answers_reach_udp_clients_truncated_and_tcp_clients_whole() {
    let up = stand_in().await;
    up.set("big.example", Behaviour::Large { bytes: 3000 });
    let s = support::dns::start(&server_config(&[&up], "")).await;
    let q = client::query(42, "big.example", 1, Some(1232), false);
    let raw = client::udp_raw(s.dns, &q, Duration::from_secs(5))
        .await
        .unwrap();
    let m = Message::from_vec(&raw).unwrap();
    assert!(m.metadata.truncation);
    assert!(raw.len() <= 1232);
    let raw = client::tcp_raw(s.dns, &q, Duration::from_secs(5))
        .await
        .unwrap();
    let m = Message::from_vec(&raw).unwrap();
    assert!(!m.metadata.truncation);
    assert!(raw.len() > 3000 && m.answers.len() > 100);
}

#[tokio::test]
async fn a_silent_upstream_fails_over_to_the_next() {
    let dead = stand_in().await;
    dead.set_default(Behaviour::Silent);
    let alive = stand_in().await;
    alive.set(
        "failover.example",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 11), 300),
    );
    let s = support::dns::start(&server_config(&[&dead, &alive], "")).await;
    let m = ask(s.dns, "failover.example", 1).await;
    assert_eq!(answers(&m), ["192.0.2.11"]);
}

#[tokio::test]
async fn spoofed_answers_are_ignored() {
    let up = stand_in().await;
    up.set(
        "spoof.example",
        Behaviour::spoof_first(Behaviour::a(Ipv4Addr::new(192, 0, 2, 12), 300)),
    );
    let s = support::dns::start(&server_config(&[&up], "")).await;
    let m = ask(s.dns, "spoof.example", 1).await;
    assert_eq!(answers(&m), ["192.0.2.12"], "the forgeries were dropped");
}

#[tokio::test]
async fn identical_queries_in_flight_share_one_upstream_query() {
    let up = stand_in().await;
    up.set(
        "slow.example",
        Behaviour::delay(
            Duration::from_millis(200),
            Behaviour::a(Ipv4Addr::new(192, 0, 2, 13), 300),
        ),
    );
    let s = support::dns::start(&server_config(&[&up], "")).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let dns = s.dns;
        tasks.push(tokio::spawn(
            async move { ask(dns, "slow.example", 1).await },
        ));
    }
    for t in tasks {
        assert_eq!(answers(&t.await.unwrap()), ["192.0.2.13"]);
    }
    assert_eq!(up.queries("slow.example"), 1);
}

#[tokio::test]
async fn stale_answers_are_served_when_every_upstream_fails() {
    let up = stand_in().await;
    up.set(
        "stale.example",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 14), 1),
    );
    let s = support::dns::start(&server_config(&[&up], "[cache]\nstale_answer_ttl = 30\n")).await;
    assert_eq!(
        answers(&ask(s.dns, "stale.example", 1).await),
        ["192.0.2.14"]
    );
    up.set("stale.example", Behaviour::Silent);
    // Cache hits until the one-second TTL runs out; then the silent
    // upstream leaves only the stale answer, with stale_answer_ttl.
    let m = ask_until(s.dns, "stale.example", "a stale answer", |m| {
        ttls(m) == [30]
    })
    .await;
    assert_eq!(answers(&m), ["192.0.2.14"], "served stale");
    assert_eq!(s.app.engine.counters.answered(Source::Stale), 1);
}

#[tokio::test]
async fn no_upstream_and_nothing_stale_is_servfail() {
    let up = stand_in().await;
    up.set_default(Behaviour::Silent);
    let s = support::dns::start(&server_config(&[&up], "")).await;
    let m = ask(s.dns, "nowhere.example", 1).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn cname_chains_pass_through() {
    let up = stand_in().await;
    up.set(
        "www.chain.example",
        Behaviour::CnameChain {
            chain: vec!["a.cdn.example".into(), "b.cdn.example".into()],
            final_a: Ipv4Addr::new(192, 0, 2, 15),
            ttl: 300,
        },
    );
    let s = support::dns::start(&server_config(&[&up], "")).await;
    let m = ask(s.dns, "www.chain.example", 1).await;
    assert_eq!(
        answers(&m),
        ["a.cdn.example.", "b.cdn.example.", "192.0.2.15"]
    );
}

#[tokio::test]
async fn do_and_cd_bits_are_passed_on_and_keyed_separately() {
    let up = stand_in().await;
    let s = support::dns::start(&server_config(&[&up], "")).await;
    let wait = Duration::from_secs(5);
    client::udp_raw(
        s.dns,
        &client::query(1, "dnssec.example", 1, Some(1232), false),
        wait,
    )
    .await
    .unwrap();
    let raw = client::udp_raw(
        s.dns,
        &client::query(2, "dnssec.example", 1, Some(1232), true),
        wait,
    )
    .await
    .unwrap();
    let m = Message::from_vec(&raw).unwrap();
    assert!(m.edns.unwrap().flags().dnssec_ok);
    assert_eq!(
        up.queries("dnssec.example"),
        2,
        "DO=1 is a different cache entry"
    );
    let last = Message::from_vec(&up.last_query().unwrap()).unwrap();
    assert!(
        last.edns.expect("OPT sent upstream").flags().dnssec_ok,
        "DO passed on"
    );
}

#[tokio::test]
async fn conditional_forwarding_by_suffix() {
    let public = stand_in().await;
    let router = stand_in().await;
    router.set(
        "nas.home.arpa",
        Behaviour::a(Ipv4Addr::new(192, 168, 1, 2), 60),
    );
    router.set(
        "host.corp.example",
        Behaviour::a(Ipv4Addr::new(10, 1, 1, 1), 60),
    );
    let extra = format!(
        "[[forward]]\ndomains = [\"corp.example\", \"home.arpa\"]\nupstreams = [\"{}\"]\n",
        router.addr()
    );
    let s = support::dns::start(&server_config(&[&public], &extra)).await;
    assert_eq!(
        answers(&ask(s.dns, "nas.home.arpa", 1).await),
        ["192.168.1.2"]
    );
    assert_eq!(
        answers(&ask(s.dns, "host.corp.example", 1).await),
        ["10.1.1.1"]
    );
    ask(s.dns, "example.org", 1).await;
    assert_eq!(
        public.queries("nas.home.arpa") + public.queries("host.corp.example"),
        0
    );
    assert_eq!(
        (
            router.queries("nas.home.arpa"),
            router.queries("host.corp.example")
        ),
        (1, 1)
    );
    assert_eq!(router.queries("example.org"), 0);
    assert_eq!(public.queries("example.org"), 1);
}

#[tokio::test]
async fn every_answer_yields_a_query_event() {
    let up = stand_in().await;
    let s = support::dns::start(&server_config(&[&up], "")).await;
    let before = s.app.engine.events().sent() + s.app.engine.events().dropped();
    ask(s.dns, "one.example", 1).await;
    ask(s.dns, "one.example", 1).await;
    ask(s.dns, "x.lan", 1).await;
    let after = s.app.engine.events().sent() + s.app.engine.events().dropped();
    assert_eq!(after - before, 3);
}
