//! Cache misses forwarded by the UDP reader thread itself (plain-UDP
//! upstreams), over real loopback sockets to stand-in upstreams: upstream
//! replies out of order, duplicated, forged or late; failover; coalescing;
//! the reader's own pool of upstream source ports. The same behaviours
//! through the tokio forwarder are `tests/forwarder.rs`.

mod support;

use glory_hole::events::Source;
use glory_hole::testing::client::{self, answers, ask};
use glory_hole::testing::upstream::{Behaviour, SPOOF_A};
use hickory_proto::op::{Message, ResponseCode};
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use support::forward::*;
use tokio::net::UdpSocket;

/// One UDP reader, so every query meets the same reader's exchanges
/// (coalescing and the socket pool are per reader).
const ONE_READER: &str = "udp_sockets = 1\n";

/// A client socket that sends several queries before reading any answer.
async fn client_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

async fn send(sock: &UdpSocket, dns: SocketAddr, id: u16, name: &str) {
    let q = client::query(id, name, 1, Some(1232), false);
    sock.send_to(&q, dns).await.unwrap();
}

/// The next datagram on `sock`, parsed (a hang guard, not a measurement).
async fn next_answer(sock: &UdpSocket) -> Message {
    let mut buf = vec![0u8; 4096];
    let (n, _) = guard(sock.recv_from(&mut buf)).await.unwrap();
    Message::from_vec(&buf[..n]).expect("the answer parses")
}

/// Polls `cond` until it holds, for at most 10 s.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn replies_out_of_order_reach_the_right_queries() {
    let up = stand_in().await;
    let slow = Behaviour::a(Ipv4Addr::new(192, 0, 2, 1), 300);
    up.set(
        "slow.example",
        Behaviour::delay(Duration::from_millis(150), slow),
    );
    up.set(
        "fast.example",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 2), 300),
    );
    let s = support::dns::start(&server_config(&[&up], ONE_READER)).await;
    let c = client_socket().await;
    send(&c, s.dns, 1, "slow.example").await;
    send(&c, s.dns, 2, "fast.example").await;
    let first = next_answer(&c).await;
    let second = next_answer(&c).await;
    assert_eq!(
        (first.metadata.id, answers(&first)),
        (2, vec!["192.0.2.2".to_string()]),
        "the fast name's answer overtakes the slow one"
    );
    assert_eq!(
        (second.metadata.id, answers(&second)),
        (1, vec!["192.0.2.1".to_string()])
    );
}

#[tokio::test]
async fn a_duplicated_reply_is_answered_once() {
    let up = stand_in().await;
    let twice = Behaviour::twice(Behaviour::a(Ipv4Addr::new(192, 0, 2, 3), 300));
    up.set("twice.example", twice);
    let s = support::dns::start(&server_config(&[&up], ONE_READER)).await;
    let c = client_socket().await;
    send(&c, s.dns, 7, "twice.example").await;
    let m = next_answer(&c).await;
    assert_eq!((m.metadata.id, answers(&m)), (7, vec!["192.0.2.3".into()]));
    wait_for("both copies sent", || up.udp_replies() >= 2).await;
    // The next datagram this client gets answers its next query, not the
    // duplicate.
    send(&c, s.dns, 8, "other.example").await;
    let next = next_answer(&c).await;
    assert_eq!(next.metadata.id, 8, "no second answer to query 7");
    let e = &s.app.engine;
    assert_eq!(e.counters.answered(Source::Upstream), 2);
}

#[tokio::test]
async fn forged_replies_are_ignored_and_the_real_one_taken() {
    let up = stand_in().await;
    let real = Behaviour::a(Ipv4Addr::new(192, 0, 2, 4), 300);
    up.set("forged.example", Behaviour::spoof_first(real));
    let s = support::dns::start(&server_config(&[&up], ONE_READER)).await;
    let m = ask(s.dns, "forged.example", 1).await;
    assert_eq!(answers(&m), ["192.0.2.4"], "not {SPOOF_A}");
    // The wrong question under the right ID is seen and counted; the
    // wrong ID matches nothing; the other port never gets past the kernel.
    let health = s.app.engine.runtime().upstreams().health();
    assert!(health[0].dropped_replies >= 1, "{health:?}");
    // What was cached is the real answer too.
    let again = ask(s.dns, "forged.example", 1).await;
    assert_eq!(answers(&again), ["192.0.2.4"]);
    assert_eq!(up.queries("forged.example"), 1);
}

#[tokio::test]
async fn a_silent_first_upstream_fails_over_to_the_second() {
    let (silent, good) = (stand_in().await, stand_in().await);
    silent.set_default(Behaviour::Silent);
    good.set(
        "over.example",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 5), 300),
    );
    let s = support::dns::start(&server_config(&[&silent, &good], ONE_READER)).await;
    let m = ask(s.dns, "over.example", 1).await;
    assert_eq!(answers(&m), ["192.0.2.5"]);
    assert_eq!(silent.queries("over.example"), 1, "tried first");
    let health = s.app.engine.runtime().upstreams().health();
    assert_eq!(health[0].failures, 1, "{health:?}");
    assert!(!health[0].healthy);
}

#[tokio::test]
async fn a_reply_later_than_the_deadline_is_servfail_and_not_cached() {
    let up = stand_in().await;
    let late = Behaviour::a(Ipv4Addr::new(192, 0, 2, 6), 300);
    up.set(
        "late.example",
        Behaviour::delay(Duration::from_millis(700), late),
    );
    let cfg = "[dns]\nlisten = [\"127.0.0.1:0\"]\nupstreams = [\"UP\"]\n\
               upstream_timeout = \"200ms\"\nquery_timeout = \"400ms\"\nudp_sockets = 1\n"
        .replace("UP", &up.addr().to_string());
    let s = support::dns::start(&cfg).await;
    let c = client_socket().await;
    send(&c, s.dns, 9, "late.example").await;
    let m = next_answer(&c).await;
    assert_eq!(
        (m.metadata.id, m.metadata.response_code),
        (9, ResponseCode::ServFail)
    );
    // Both attempts (the retry pass asks again) are answered too late.
    assert_eq!(up.queries("late.example"), 2);
    wait_for("the late answers sent", || up.udp_replies() >= 2).await;
    send(&c, s.dns, 10, "fresh.example").await;
    let next = next_answer(&c).await;
    assert_eq!(next.metadata.id, 10, "no answer from the late replies");
    assert_eq!(s.app.engine.counters.answered(Source::Failed), 1);
    // Not cached from the late reply: asked upstream again.
    up.set(
        "late.example",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 6), 300),
    );
    let m = ask(s.dns, "late.example", 1).await;
    assert_eq!(answers(&m), ["192.0.2.6"]);
    assert_eq!(up.queries("late.example"), 3);
}

#[tokio::test]
async fn identical_queries_in_flight_share_one_exchange() {
    let up = stand_in().await;
    let slow = Behaviour::a(Ipv4Addr::new(192, 0, 2, 7), 300);
    up.set(
        "shared.example",
        Behaviour::delay(Duration::from_millis(200), slow),
    );
    let s = support::dns::start(&server_config(&[&up], ONE_READER)).await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(client_socket().await);
    }
    for (i, c) in clients.iter().enumerate() {
        let name = if i % 2 == 0 {
            "shared.example"
        } else {
            "SHARED.example"
        };
        send(c, s.dns, 100 + i as u16, name).await;
    }
    for (i, c) in clients.iter().enumerate() {
        let m = next_answer(c).await;
        assert_eq!(m.metadata.id, 100 + i as u16);
        assert_eq!(answers(&m), ["192.0.2.7"]);
        let asked = if i % 2 == 0 {
            "shared.example."
        } else {
            "SHARED.example."
        };
        assert_eq!(m.queries[0].name.to_string(), asked, "each client's case");
    }
    assert_eq!(up.queries("shared.example"), 1, "one upstream exchange");
    assert_eq!(s.app.engine.runtime().upstreams().coalesced(), 4);
}

#[tokio::test]
async fn upstream_source_ports_come_from_a_small_rotating_pool() {
    let up = stand_in().await;
    let s = support::dns::start(&server_config(&[&up], ONE_READER)).await;
    let mut ports = HashSet::new();
    let mut ids = HashSet::new();
    for i in 0..40 {
        let m = ask(s.dns, &format!("n{i}.example"), 1).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        ports.insert(up.last_udp_source().unwrap().port());
        ids.insert(id_of(&up.last_query().unwrap()));
    }
    // One query per batch here, so each takes the pool's next socket: 40
    // queries go round a pool of 16 (two and a half times, fewer than the
    // 64 a socket carries before it is replaced), all 16 open at once.
    assert_eq!(
        ports.len(),
        16,
        "40 queries from a pool of 16 random ports, taken in turn: {ports:?}"
    );
    assert!(ids.len() >= 38, "fresh random IDs: {ids:?}");
}

#[tokio::test]
async fn a_closed_upstream_port_fails_over_at_once() {
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let good = stand_in().await;
    good.set(
        "open.example",
        Behaviour::a(Ipv4Addr::new(192, 0, 2, 8), 300),
    );
    // One attempt may take the whole deadline: only the kernel's "port
    // unreachable" lets the second upstream be asked in time.
    let cfg = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nupstreams = [\"{closed_addr}\", \"{}\"]\n\
         upstream_timeout = \"10s\"\nquery_timeout = \"10s\"\nudp_sockets = 1\n",
        good.addr()
    );
    let s = support::dns::start(&cfg).await;
    let m = ask(s.dns, "open.example", 1).await;
    assert_eq!(answers(&m), ["192.0.2.8"]);
    let health = s.app.engine.runtime().upstreams().health();
    assert_eq!(
        (health[0].queries, health[0].failures),
        (1, 1),
        "{health:?}"
    );
}
