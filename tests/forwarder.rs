//! The forwarder on its own, over real loopback sockets against the
//! project's stand-in upstream (its test double for the internet's DNS):
//! plain DNS (UDP with TCP retry, failover, forgery resistance,
//! coalescing, health), DoT and DoH against local TLS servers, and
//! interoperability with unbound. The server forwarding through its
//! pipeline (cache, TTLs, stale answers) is `tests/dns_forwarding.rs`.

mod support;

use glory_hole::config::Upstream;
use glory_hole::dns::forward::{ForwardError, Forwarder, MAX_IN_FLIGHT};
use glory_hole::testing::client::query;
use glory_hole::testing::upstream::{Behaviour, DEFAULT_A, Rec, SPOOF_A, tls_server_config};
use glory_hole::wire::{self, RCODE_NOERROR, RCODE_SERVFAIL, TYPE_A, TYPE_AAAA, TYPE_TXT};
use std::net::Ipv4Addr;
use std::time::Duration;
use support::forward::*;

// ---- the forwarder over plain DNS: UDP, TCP when truncated ----

#[tokio::test]
async fn answers_over_udp_with_the_clients_id_and_edns_passed_through() {
    let up = stand_in().await;
    up.set(
        "www.example.com",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 80), 60),
    );
    let fwd = Forwarder::new(&[plain(&up)], &forwarder_config(1000, 4000));

    let q = query(0x1234, "www.example.com", TYPE_A, Some(1232), true);
    let ans = guard(fwd.query(&q)).await.unwrap();

    assert_eq!(ans.upstream, 0);
    assert_eq!(id_of(&ans.bytes), 0x1234);
    assert_eq!(wire::rcode(&ans.bytes), RCODE_NOERROR);
    assert_eq!(
        answer_addrs(&ans.bytes),
        vec![ip(Ipv4Addr::new(192, 0, 2, 80))]
    );
    // The query reached the upstream once, with our OPT and DO bit intact.
    assert_eq!(up.queries("www.example.com"), 1);
    let seen = wire::Query::parse(&up.last_query().unwrap()).unwrap();
    assert!(seen.edns.present && seen.edns.do_bit);
    let h = fwd.health();
    assert_eq!((h[0].queries, h[0].answers, h[0].failures), (1, 1, 0));
    assert!(h[0].healthy);
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    let up = stand_in().await;
    up.set("tc.example", Behaviour::truncate(Behaviour::standard()));
    up.set("big.example", Behaviour::Large { bytes: 3000 });
    let fwd = Forwarder::new(&[plain(&up)], &forwarder_config(1000, 4000));

    let ans = guard(fwd.query(&query(1, "tc.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap();
    assert_eq!(wire::response_flags(&ans.bytes) & wire::flags::TC, 0);
    assert_eq!(answer_addrs(&ans.bytes), vec![ip(DEFAULT_A)]);
    // Once over UDP (truncated), once over TCP.
    assert_eq!(up.queries("tc.example"), 2);
    assert_eq!(up.connections(), 1);

    // Larger than the 1232 bytes the query offers: the stand-in truncates
    // over UDP like a real server, and TCP brings the whole answer.
    let ans = guard(fwd.query(&query(2, "big.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap();
    assert!(ans.bytes.len() >= 3000, "{} bytes", ans.bytes.len());
    assert!(answer_addrs(&ans.bytes).len() > 150);
    assert_eq!(fwd.health()[0].truncated, 2);

    // An upstream that ignores the 1232 bytes asked for and sends more
    // than our receive buffer over UDP: the cut datagram is not served,
    // TCP brings the whole answer.
    up.set(
        "huge.example",
        Behaviour::oversize(Behaviour::Large { bytes: 6000 }),
    );
    let ans = guard(fwd.query(&query(3, "huge.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap();
    assert!(ans.bytes.len() >= 6000, "{} bytes", ans.bytes.len());
    assert_eq!(wire::response_flags(&ans.bytes) & wire::flags::TC, 0);
    assert_eq!(
        up.queries("huge.example"),
        2,
        "once over UDP, once over TCP"
    );
    assert_eq!(fwd.health()[0].truncated, 3);
}

#[tokio::test]
async fn silent_first_upstream_fails_over_to_the_second_within_the_deadline() {
    let silent = stand_in().await;
    silent.set_default(Behaviour::Silent);
    let good = stand_in().await;
    let fwd = Forwarder::new(
        &[plain(&silent), plain(&good)],
        &forwarder_config(300, 3000),
    );

    let ans = guard(fwd.query(&query(5, "failover.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap();
    assert_eq!(ans.upstream, 1);
    assert_eq!(answer_addrs(&ans.bytes), vec![ip(DEFAULT_A)]);
    assert_eq!(silent.queries("failover.example"), 1);
    assert_eq!(good.queries("failover.example"), 1);
    let h = fwd.health();
    assert_eq!(h[0].failures, 1);
    assert!(!h[0].healthy, "a silent upstream is backed off");
}

#[tokio::test]
async fn a_closed_port_fails_over_at_once_and_says_why() {
    // Nothing listens on the discard port: ICMP "port unreachable" reaches
    // the connected socket as an error, no timeout needed.
    let closed = Upstream::Plain("127.0.0.1:9".parse().unwrap());
    let good = stand_in().await;
    let fwd = Forwarder::new(
        &[closed.clone(), plain(&good)],
        &forwarder_config(30_000, 60_000),
    );
    let ans = guard(fwd.query(&query(4, "refused.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap();
    assert_eq!(ans.upstream, 1);
    assert_eq!(fwd.health()[0].failures, 1);

    let fwd = Forwarder::new(&[closed], &forwarder_config(30_000, 60_000));
    let err = guard(fwd.query(&query(4, "refused.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("127.0.0.1:9") && text.contains("refused"),
        "{text}"
    );
}

#[tokio::test]
async fn servfail_from_one_upstream_tries_the_next() {
    let failing = stand_in().await;
    failing.set_default(Behaviour::Servfail);
    let good = stand_in().await;
    let fwd = Forwarder::new(
        &[plain(&failing), plain(&good)],
        &forwarder_config(1000, 4000),
    );

    let ans = guard(fwd.query(&query(6, "sf.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap();
    assert_eq!(ans.upstream, 1);
    assert_eq!(wire::rcode(&ans.bytes), RCODE_NOERROR);
    assert_eq!(failing.queries("sf.example"), 1);
    assert_eq!(fwd.health()[0].servfails, 1);
    assert!(
        fwd.health()[0].healthy,
        "SERVFAIL is about the name, not the upstream"
    );
}

#[tokio::test]
async fn servfail_everywhere_returns_the_upstreams_servfail() {
    let a = stand_in().await;
    let b = stand_in().await;
    a.set_default(Behaviour::Servfail);
    b.set_default(Behaviour::Servfail);
    let fwd = Forwarder::new(&[plain(&a), plain(&b)], &forwarder_config(1000, 4000));

    let ans = guard(fwd.query(&query(6, "sf.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap();
    assert_eq!(wire::rcode(&ans.bytes), RCODE_SERVFAIL);
    assert_eq!((a.queries("sf.example"), b.queries("sf.example")), (1, 1));
}

#[tokio::test]
async fn forged_answers_are_dropped_and_the_real_one_accepted() {
    let up = stand_in().await;
    let real = Ipv4Addr::new(192, 0, 2, 7);
    up.set(
        "bank.example",
        Behaviour::spoof_first(Behaviour::a(real, 60)),
    );
    // Over TCP too: forgeries on the stream, before the real answer.
    up.set(
        "tcp-bank.example",
        Behaviour::truncate(Behaviour::spoof_first(Behaviour::a(real, 60))),
    );
    let fwd = Forwarder::new(&[plain(&up)], &forwarder_config(1000, 4000));

    let ans = guard(fwd.query(&query(9, "bank.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap();
    assert_eq!(answer_addrs(&ans.bytes), vec![ip(real)]);
    // Wrong ID and wrong question were read and dropped; the one from the
    // wrong source port never got past the connected socket.
    assert_eq!(fwd.health()[0].dropped_replies, 2);

    let ans = guard(fwd.query(&query(9, "tcp-bank.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap();
    let addrs = answer_addrs(&ans.bytes);
    assert_eq!(addrs, vec![ip(real)]);
    assert!(!addrs.contains(&ip(SPOOF_A)));
    // Two more over UDP (before the TC answer), two over TCP.
    assert_eq!(fwd.health()[0].dropped_replies, 6);
}

#[tokio::test]
async fn every_upstream_query_gets_a_fresh_random_id_and_source_port() {
    let up = stand_in().await;
    let fwd = Forwarder::new(&[plain(&up)], &forwarder_config(1000, 4000));
    let client_id = 0x1234;
    let (mut ids, mut ports) = (Vec::new(), Vec::new());
    for i in 0..8 {
        let q = query(
            client_id,
            &format!("id{i}.example"),
            TYPE_A,
            Some(1232),
            false,
        );
        let ans = guard(fwd.query(&q)).await.unwrap();
        assert_eq!(id_of(&ans.bytes), client_id);
        ids.push(id_of(&up.last_query().unwrap()));
        ports.push(up.last_udp_source().unwrap().port());
    }
    assert!(ids.iter().all(|&id| id != client_id), "{ids:?}");
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    // 8 random 16-bit IDs: a repeat is possible but rare; all equal is not.
    assert!(distinct.len() >= 6, "{ids:?}");
    // A fresh socket each time: the kernel picks a random source port.
    ports.sort();
    ports.dedup();
    assert!(ports.len() >= 6, "{ports:?}");
}

#[tokio::test]
async fn identical_concurrent_queries_share_one_upstream_query() {
    let up = stand_in().await;
    up.set_default(Behaviour::delay(
        Duration::from_millis(300),
        Behaviour::standard(),
    ));
    let fwd = Forwarder::new(&[plain(&up)], &forwarder_config(2000, 4000));

    // Same question in different letter case and with different IDs.
    let queries: Vec<Vec<u8>> = (0..10u16)
        .map(|i| {
            let name = if i % 2 == 0 {
                "same.example"
            } else {
                "SAME.Example"
            };
            query(100 + i, name, TYPE_A, Some(1232), false)
        })
        .collect();
    let answers = guard(futures_util::future::join_all(
        queries.iter().map(|q| fwd.query(q)),
    ))
    .await;
    for (q, ans) in queries.iter().zip(&answers) {
        let ans = ans.as_ref().unwrap();
        assert_eq!(id_of(&ans.bytes), id_of(q));
        // Each caller sees its own spelling of the question.
        assert_eq!(&ans.bytes[12..26], &q[12..26]);
        assert_eq!(answer_addrs(&ans.bytes), vec![ip(DEFAULT_A)]);
    }
    assert_eq!(up.queries("same.example"), 1);
    assert_eq!(fwd.coalesced(), 9);
}

#[tokio::test]
async fn a_flood_of_unique_names_is_capped() {
    // A silent upstream keeps every exchange waiting for its timeout.
    let up = stand_in().await;
    up.set_default(Behaviour::Silent);
    up.set("after.example", Behaviour::standard());
    let fwd = Forwarder::new(&[plain(&up)], &forwarder_config(300, 600));
    let extra = 20;
    let queries: Vec<Vec<u8>> = (0..MAX_IN_FLIGHT + extra)
        .map(|i| query(1, &format!("flood{i}.example"), TYPE_A, Some(1232), false))
        .collect();
    let results = guard(futures_util::future::join_all(
        queries.iter().map(|q| fwd.query(q)),
    ))
    .await;
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(ForwardError::Busy(_))))
        .count();
    assert_eq!(busy, extra);
    let timed_out = results
        .iter()
        .filter(|r| matches!(r, Err(ForwardError::NoAnswer { .. })))
        .count();
    assert_eq!(timed_out, MAX_IN_FLIGHT);
    // Capacity comes back once the exchanges finish.
    let again = guard(fwd.query(&query(2, "after.example", TYPE_A, Some(1232), false))).await;
    assert_eq!(answer_addrs(&again.unwrap().bytes), vec![ip(DEFAULT_A)]);
}

#[tokio::test]
async fn different_questions_are_not_coalesced() {
    let up = stand_in().await;
    up.set_default(Behaviour::delay(
        Duration::from_millis(200),
        Behaviour::standard(),
    ));
    let fwd = Forwarder::new(&[plain(&up)], &forwarder_config(2000, 4000));

    let queries = [
        query(1, "one.example", TYPE_A, Some(1232), false),
        query(2, "two.example", TYPE_A, Some(1232), false),
        query(3, "one.example", TYPE_AAAA, Some(1232), false),
        // The DO bit changes the answer (signatures): not the same query.
        query(4, "one.example", TYPE_A, Some(1232), true),
        query(5, "one.example", TYPE_TXT, Some(1232), false),
    ];
    let answers = guard(futures_util::future::join_all(
        queries.iter().map(|q| fwd.query(q)),
    ))
    .await;
    assert!(answers.iter().all(|a| a.is_ok()));
    assert_eq!(up.queries("one.example"), 4);
    assert_eq!(up.queries("two.example"), 1);
    assert_eq!(fwd.coalesced(), 0);
}

#[tokio::test]
async fn the_faster_upstream_is_preferred_after_some_queries() {
    let slow = stand_in().await;
    slow.set_default(Behaviour::delay(
        Duration::from_millis(150),
        Behaviour::standard(),
    ));
    let fast = stand_in().await;
    let fwd = Forwarder::new(&[plain(&slow), plain(&fast)], &forwarder_config(2000, 4000));

    let mut by = [0usize; 2];
    for i in 0..20 {
        let q = query(i, &format!("n{i}.example"), TYPE_A, Some(1232), false);
        let ans = guard(fwd.query(&q)).await.unwrap();
        by[ans.upstream as usize] += 1;
    }
    let h = fwd.health();
    assert!(h[0].latency_ms > h[1].latency_ms, "{h:?}");
    // The slow one is tried to measure it and now and then as a probe.
    assert!(by[1] >= 15, "answers per upstream: {by:?}");
    assert!(by[0] >= 1, "answers per upstream: {by:?}");
}

#[tokio::test]
async fn a_failing_upstream_is_backed_off() {
    let dead = stand_in().await;
    dead.set_default(Behaviour::Silent);
    let good = stand_in().await;
    let fwd = Forwarder::new(&[plain(&dead), plain(&good)], &forwarder_config(200, 3000));

    for i in 0..10 {
        let q = query(i, &format!("b{i}.example"), TYPE_A, Some(1232), false);
        let ans = guard(fwd.query(&q)).await.unwrap();
        assert_eq!(ans.upstream, 1);
    }
    // Tried once, then skipped while backed off.
    assert_eq!(dead.total_queries(), 1);
    let h = fwd.health();
    assert!(!h[0].healthy && h[0].backoff_ms > 0, "{h:?}");
    assert_eq!(h[0].consecutive_failures, 1);
    assert!(h[1].healthy);
}

#[tokio::test]
async fn all_upstreams_silent_is_an_error_within_the_deadline() {
    let a = stand_in().await;
    let b = stand_in().await;
    a.set_default(Behaviour::Silent);
    b.set_default(Behaviour::Silent);
    let fwd = Forwarder::new(&[plain(&a), plain(&b)], &forwarder_config(200, 1000));

    let err = guard(fwd.query(&query(1, "void.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap_err();
    match &err {
        ForwardError::NoAnswer { attempts, .. } => assert!(*attempts >= 2),
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("no upstream answered"), "{err}");
    assert!(a.queries("void.example") >= 1 && b.queries("void.example") >= 1);
}

#[tokio::test]
async fn no_upstreams_and_bad_queries_are_errors() {
    let fwd = Forwarder::new(&[], &forwarder_config(200, 1000));
    let q = query(1, "x.example", TYPE_A, Some(1232), false);
    assert!(matches!(
        fwd.query(&q).await,
        Err(ForwardError::NoUpstreams)
    ));
    let up = stand_in().await;
    let fwd = Forwarder::new(&[plain(&up)], &forwarder_config(200, 1000));
    assert!(matches!(
        fwd.query(&q[..20]).await,
        Err(ForwardError::BadQuery(_))
    ));
    assert_eq!(up.total_queries(), 0);
}

// ---- DoT and DoH against local TLS servers with a self-signed cert ----

struct Pki {
    roots: rustls::RootCertStore,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: Vec<u8>,
}

fn pki(names: &[&str]) -> Pki {
    let ck =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = ck.cert.der().clone();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    Pki {
        roots,
        chain: vec![cert],
        key: ck.signing_key.serialize_der(),
    }
}

#[tokio::test]
async fn dns_over_tls_reuses_its_connection() {
    let up = stand_in().await;
    up.set(
        "tls.example",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 53), 60),
    );
    let pki = pki(&["dot.test"]);
    let server = tls_server_config(pki.chain.clone(), pki.key.clone(), &[]).unwrap();
    let addr = up
        .serve_tls("127.0.0.1:0".parse().unwrap(), server)
        .await
        .unwrap();
    let upstream = Upstream::Tls {
        addr,
        server_name: "dot.test".into(),
    };
    let fwd = Forwarder::with_roots(&[upstream], &forwarder_config(2000, 4000), pki.roots);

    for id in [1, 2, 3] {
        let ans = guard(fwd.query(&query(id, "tls.example", TYPE_A, Some(1232), false)))
            .await
            .unwrap();
        assert_eq!(id_of(&ans.bytes), id);
        assert_eq!(
            answer_addrs(&ans.bytes),
            vec![ip(Ipv4Addr::new(192, 0, 2, 53))]
        );
    }
    assert_eq!(up.queries("tls.example"), 3);
    assert_eq!(up.connections(), 1, "one TLS connection for all three");
}

#[tokio::test]
async fn dns_over_tls_checks_the_server_name() {
    let up = stand_in().await;
    let pki = pki(&["other.test"]);
    let server = tls_server_config(pki.chain.clone(), pki.key.clone(), &[]).unwrap();
    let addr = up
        .serve_tls("127.0.0.1:0".parse().unwrap(), server)
        .await
        .unwrap();
    let upstream = Upstream::Tls {
        addr,
        server_name: "dot.test".into(),
    };
    let fwd = Forwarder::with_roots(&[upstream], &forwarder_config(1000, 2000), pki.roots);

    let err = guard(fwd.query(&query(1, "tls.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
    assert_eq!(up.total_queries(), 0);
}

async fn doh_round_trip(alpn: &[&[u8]]) {
    let up = stand_in().await;
    up.set(
        "doh.example",
        Behaviour::Answer {
            records: vec![
                Rec::cname("", "target.example", 60),
                Rec::a("target.example", Ipv4Addr::new(192, 0, 2, 44), 60),
            ],
        },
    );
    let pki = pki(&["doh.test"]);
    let server = tls_server_config(pki.chain.clone(), pki.key.clone(), alpn).unwrap();
    let addr = up
        .serve_https("127.0.0.1:0".parse().unwrap(), server)
        .await
        .unwrap();
    // doh.test resolves nowhere: only the bootstrap IP gets us there.
    let upstream = Upstream::Https {
        url: format!("https://doh.test:{}/dns-query", addr.port()),
        bootstrap: vec![addr.ip()],
    };
    let fwd = Forwarder::with_roots(&[upstream], &forwarder_config(2000, 4000), pki.roots);

    for id in [7, 8] {
        let ans = guard(fwd.query(&query(id, "DoH.example", TYPE_A, Some(1232), true)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id_of(&ans.bytes), id);
        assert_eq!(&ans.bytes[12..16], b"\x03DoH");
        assert_eq!(
            answer_addrs(&ans.bytes),
            vec![ip(Ipv4Addr::new(192, 0, 2, 44))]
        );
    }
    assert_eq!(up.queries("doh.example"), 2);
    assert_eq!(up.connections(), 1, "the HTTPS connection is kept");
    // RFC 8484: ID 0 on the wire, for HTTP caches.
    assert_eq!(id_of(&up.last_query().unwrap()), 0);
}

#[tokio::test]
async fn dns_over_https_http2() {
    doh_round_trip(&[b"h2"]).await;
}

#[tokio::test]
async fn dns_over_https_http1() {
    doh_round_trip(&[b"http/1.1"]).await;
}

#[tokio::test]
async fn dns_over_https_without_bootstrap_never_looks_the_host_up() {
    let fwd = Forwarder::with_roots(
        &[Upstream::Https {
            url: "https://doh.test/dns-query".into(),
            bootstrap: vec![],
        }],
        &forwarder_config(1000, 2000),
        rustls::RootCertStore::empty(),
    );
    let err = guard(fwd.query(&query(1, "x.example", TYPE_A, Some(1232), false)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bootstrap"), "{err}");
}

#[tokio::test]
async fn stand_in_serves_nxdomain_nodata_and_cname_chains() {
    let up = stand_in().await;
    up.set("gone.example.com", Behaviour::Nxdomain { soa_minimum: 30 });
    up.set("empty.example.com", Behaviour::NoData { soa_minimum: 30 });
    up.set(
        "chain.example.com",
        Behaviour::CnameChain {
            chain: vec!["c1.example.net".into(), "c2.example.org".into()],
            final_a: Ipv4Addr::new(192, 0, 2, 99),
            ttl: 120,
        },
    );
    let fwd = Forwarder::new(&[plain(&up)], &forwarder_config(1000, 4000));
    let ask = |name: &'static str| {
        let fwd = &fwd;
        async move {
            guard(fwd.query(&query(3, name, TYPE_A, Some(1232), false)))
                .await
                .unwrap()
                .bytes
        }
    };
    assert_eq!(
        wire::rcode(&ask("gone.example.com").await),
        wire::RCODE_NXDOMAIN
    );
    let nodata = ask("empty.example.com").await;
    assert_eq!(wire::rcode(&nodata), RCODE_NOERROR);
    assert_eq!(wire::read_u16(&nodata, 6), Some(0));
    assert_eq!(wire::read_u16(&nodata, 8), Some(1));
    let chain = ask("chain.example.com").await;
    assert_eq!(wire::read_u16(&chain, 6), Some(3));
    assert_eq!(answer_addrs(&chain), vec![ip(Ipv4Addr::new(192, 0, 2, 99))]);
}

// ---- interoperability with a real DNS server (unbound, from .ci/setup) ----

/// An unbound process on loopback serving a small static zone over UDP/TCP,
/// DoT and DoH. Killed (by its own PID) when dropped.
struct Unbound {
    child: std::process::Child,
    plain: std::net::SocketAddr,
    tls: std::net::SocketAddr,
    https: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that is free for both UDP and TCP right now.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Unbound {
    async fn start(cert_pem: &str, key_pem: &str) -> Unbound {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::write(dir.path().join("cert.pem"), cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), key_pem).unwrap();
        let (p, t, h) = (free_port(), free_port(), free_port());
        let mut conf = format!(
            r#"server:
  interface: 127.0.0.1@{p}
  interface: 127.0.0.1@{t}
  interface: 127.0.0.1@{h}
  port: {p}
  tls-port: {t}
  https-port: {h}
  tls-service-key: "{d}/key.pem"
  tls-service-pem: "{d}/cert.pem"
  http-endpoint: "/dns-query"
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  use-syslog: no
  logfile: ""
  module-config: "iterator"
  local-zone: "interop.test." static
  local-data: "www.interop.test. 300 IN A 192.0.2.33"
"#
        );
        // About 4 KB of TXT: more than the 1232 bytes our queries offer.
        for i in 0..40 {
            conf.push_str(&format!(
                "  local-data: 'big.interop.test. 300 IN TXT \"{i:0>100}\"'\n"
            ));
        }
        conf.push_str("remote-control:\n  control-enable: no\n");
        let conf_path = dir.path().join("unbound.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = std::process::Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("unbound is needed for this test: run .ci/setup to install it");
        let mut u = Unbound {
            child,
            plain: ([127, 0, 0, 1], p).into(),
            tls: ([127, 0, 0, 1], t).into(),
            https: ([127, 0, 0, 1], h).into(),
            _dir: dir,
        };
        let probe = query(1, "www.interop.test", TYPE_A, None, false);
        for _ in 0..100 {
            if let Some(status) = u.child.try_wait().unwrap() {
                panic!(
                    "unbound exited at start ({status}); config: {}",
                    conf_path.display()
                );
            }
            let answered =
                glory_hole::testing::client::udp_raw(u.plain, &probe, Duration::from_millis(100))
                    .await
                    .is_some();
            if answered && tokio::net::TcpStream::connect(u.https).await.is_ok() {
                return u;
            }
        }
        panic!("unbound did not start serving within 10 s");
    }
}

#[tokio::test]
async fn interoperates_with_unbound_over_udp_tcp_tls_and_https() {
    let ck = rcgen::generate_simple_self_signed(vec!["unbound.test".to_string()]).unwrap();
    let unbound = Unbound::start(&ck.cert.pem(), &ck.signing_key.serialize_pem()).await;
    let roots = || {
        let mut r = rustls::RootCertStore::empty();
        r.add(ck.cert.der().clone()).unwrap();
        r
    };
    let transports = [
        Upstream::Plain(unbound.plain),
        Upstream::Tls {
            addr: unbound.tls,
            server_name: "unbound.test".into(),
        },
        Upstream::Https {
            url: format!("https://unbound.test:{}/dns-query", unbound.https.port()),
            bootstrap: vec![unbound.https.ip()],
        },
    ];
    for upstream in transports {
        let label = upstream.to_string();
        let fwd = Forwarder::with_roots(&[upstream], &forwarder_config(2000, 5000), roots());
        let ans = guard(fwd.query(&query(77, "WWW.interop.test", TYPE_A, Some(1232), true)))
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(id_of(&ans.bytes), 77, "{label}");
        assert_eq!(&ans.bytes[12..16], b"\x03WWW", "{label}");
        assert_eq!(answer_addrs(&ans.bytes), vec!["192.0.2.33"], "{label}");

        // Over UDP unbound truncates this; the forwarder retries over TCP.
        let ans = guard(fwd.query(&query(78, "big.interop.test", TYPE_TXT, Some(1232), false)))
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(wire::read_u16(&ans.bytes, 6), Some(40), "{label}");
        assert_eq!(
            wire::response_flags(&ans.bytes) & wire::flags::TC,
            0,
            "{label}"
        );
        let h = &fwd.health()[0];
        // Only plain DNS can be truncated.
        let expect_tc = u64::from(!label.contains("://"));
        assert_eq!(h.truncated, expect_tc, "{label}");
    }
}
