//! One device cannot knock DNS out for the household: the per-client rate
//! limit, the per-client share of upstream queries, and the TCP limits
//! (connections per client, unanswered queries per connection, the write
//! timeout), over real sockets with a stand-in upstream. 127.0.0.2 plays
//! the flooding device, 127.0.0.3 the rest of the household.

mod support;

use glory_hole::testing::client::{self, answers, ask_from};
use glory_hole::testing::upstream::{Behaviour, StandIn};
use hickory_proto::op::{Message, ResponseCode};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::forward::{server_config, stand_in};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const HOUSEHOLD: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// Polls `done` every 20 ms until it holds; panics naming `what` after 30 s.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    f
}

/// Every query of the household answered right, cached and forwarded.
async fn household_is_answered(dns: SocketAddr, round: usize) {
    let m = ask_from(HOUSEHOLD, dns, "cached.example", 1).await;
    assert_eq!(
        answers(&m),
        vec!["192.0.2.1"],
        "a cached name in round {round}"
    );
    let name = format!("fresh{round}.example");
    let m = ask_from(HOUSEHOLD, dns, &name, 1).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
    assert_eq!(answers(&m), vec!["192.0.2.1"], "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_limited_while_the_household_loses_nothing() {
    let up: StandIn = stand_in().await;
    // The flood's unique names keep the upstream busy for 2 s each.
    up.set_default(Behaviour::delay(
        Duration::from_secs(2),
        Behaviour::standard(),
    ));
    up.set("cached.example", Behaviour::standard());
    for round in 0..40 {
        up.set(&format!("fresh{round}.example"), Behaviour::standard());
    }
    let cfg = server_config(
        &[&up],
        "upstream_timeout = \"3s\"\nquery_timeout = \"4s\"\nrate_limit = 300\nrate_limit_burst = 1000\nclient_upstream_queries = 64\n",
    )
    .replace("upstream_timeout = \"300ms\"\nquery_timeout = \"2s\"\n", "");
    let s = support::dns::start(&cfg).await;
    ask_from(HOUSEHOLD, s.dns, "cached.example", 1).await;

    // The flood: 5,000 unique names a second from one address, every
    // answer read and sorted by name.
    let sock = std::sync::Arc::new(tokio::net::UdpSocket::bind((FLOODER, 0)).await.unwrap());
    let reader = {
        let sock = sock.clone();
        tokio::spawn(async move {
            let (mut refused, mut servfail) = (HashSet::new(), HashSet::new());
            let mut buf = vec![0u8; 4096];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(6), sock.recv(&mut buf)).await
            {
                let m = Message::from_vec(&buf[..n]).unwrap();
                let name = m.queries[0].name().to_string();
                match m.metadata.response_code {
                    ResponseCode::Refused => refused.insert(name),
                    ResponseCode::ServFail => servfail.insert(name),
                    _ => false,
                };
            }
            (refused, servfail)
        })
    };
    let flood = {
        let (sock, dns) = (sock.clone(), s.dns);
        tokio::spawn(async move {
            let mut i = 0u32;
            loop {
                for _ in 0..100 {
                    let q = client::query(i as u16, &format!("f{i}.flood.example"), 1, None, false);
                    let _ = sock.send_to(&q, dns).await;
                    i += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // The household asks while the flood runs, and loses nothing.
    until("the flood goes over its rate", || {
        s.app.engine.counters.rate_limited.load(Ordering::Relaxed) > 0
    })
    .await;
    for round in 0..40 {
        household_is_answered(s.dns, round).await;
    }
    flood.abort();
    let (refused, servfail) = reader.await.unwrap();

    let counters = &s.app.engine.counters;
    assert!(!refused.is_empty() && !servfail.is_empty());
    // Counted by the server as sent (loopback may drop a datagram).
    assert!(counters.rate_limited.load(Ordering::Relaxed) as usize >= refused.len());
    assert!(counters.over_upstream_share.load(Ordering::Relaxed) as usize >= servfail.len());
    // Turned away means no work upstream: none of those names was asked.
    for name in refused.iter().chain(&servfail) {
        assert_eq!(up.queries(name), 0, "{name} was sent upstream");
    }
}

/// A TCP connection from `from`, with a small receive buffer so that a
/// client that never reads fills it soon.
async fn tcp_from(from: IpAddr, dns: SocketAddr, rcvbuf: Option<usize>) -> tokio::net::TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = rcvbuf {
        sock.set_recv_buffer_size(size as u32).unwrap();
    }
    sock.bind(SocketAddr::new(from, 0)).unwrap();
    sock.connect(dns).await.unwrap()
}

async fn answered_on(conn: &mut tokio::net::TcpStream, id: u16) -> bool {
    support::dns::answered_on(conn, "cached.example", id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_client_that_never_reads_is_closed_and_others_are_answered() {
    let up = stand_in().await;
    let s = support::dns::start(&server_config(
        &[&up],
        "tcp_write_timeout = \"1s\"\ntcp_queries_per_connection = 16\n",
    ))
    .await;
    ask_from(HOUSEHOLD, s.dns, "cached.example", 1).await;
    let mut other = tcp_from(HOUSEHOLD, s.dns, None).await;
    assert!(answered_on(&mut other, 1).await);

    // Unique names, as fast as the connection takes them, never reading.
    let mut stalled = tcp_from(FLOODER, s.dns, Some(4096)).await;
    let writer = tokio::spawn(async move {
        for i in 0u32.. {
            let q = client::query(i as u16, &format!("n{i}.stall.example"), 1, None, false);
            if let Err(e) = stalled.write_all(&framed(&q)).await {
                return e.kind();
            }
        }
        unreachable!()
    });
    until("the connection stalls", || {
        s.app.engine.counters.tcp_stalled.load(Ordering::Relaxed) == 1
    })
    .await;
    let ended = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("the server ended the connection that never read")
        .unwrap();
    assert!(
        matches!(
            ended,
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{ended:?}"
    );
    // Everyone else was answered all along, and still is.
    assert!(answered_on(&mut other, 2).await);
    let m = ask_from(HOUSEHOLD, s.dns, "cached.example", 1).await;
    assert_eq!(answers(&m), vec!["192.0.2.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_connection_is_not_read_past_its_unanswered_queries() {
    let up = stand_in().await;
    // No upstream answer comes back while the test looks.
    up.set_default(Behaviour::delay(
        Duration::from_secs(60),
        Behaviour::standard(),
    ));
    let cfg = server_config(
        &[&up],
        "upstream_timeout = \"50s\"\nquery_timeout = \"50s\"\ntcp_queries_per_connection = 16\n",
    )
    .replace("upstream_timeout = \"300ms\"\nquery_timeout = \"2s\"\n", "");
    let s = support::dns::start(&cfg).await;
    let mut conn = tcp_from(HOUSEHOLD, s.dns, None).await;
    let mut burst = Vec::new();
    for i in 0..40u16 {
        burst.extend(framed(&client::query(
            i,
            &format!("w{i}.example"),
            1,
            None,
            false,
        )));
    }
    conn.write_all(&burst).await.unwrap();
    let seen = || {
        (0..40)
            .filter(|i| up.queries(&format!("w{i}.example")) > 0)
            .count()
    };
    until("16 queries reach the upstream", || seen() == 16).await;
    // The other 24 wait unread in the socket: none follows while all 16
    // are unanswered.
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        assert_eq!(seen(), 16, "a 17th query was read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_are_capped_per_client() {
    let up = stand_in().await;
    let s = support::dns::start(&server_config(&[&up], "tcp_client_connections = 2\n")).await;
    let mut a = tcp_from(FLOODER, s.dns, None).await;
    let mut b = tcp_from(FLOODER, s.dns, None).await;
    assert!(answered_on(&mut a, 1).await);
    assert!(answered_on(&mut b, 2).await);
    // A third from the same address is closed at once...
    let mut c = tcp_from(FLOODER, s.dns, None).await;
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("the third connection is closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(s.app.engine.counters.tcp_refused.load(Ordering::Relaxed), 1);
    // ...while another address still gets its own.
    let mut d = tcp_from(HOUSEHOLD, s.dns, None).await;
    assert!(answered_on(&mut d, 3).await);
    // A connection closed gives its place back, once the server sees it go.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut e = tcp_from(FLOODER, s.dns, None).await;
        if answered_on(&mut e, 4).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no place after a connection closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered_on(&mut b, 5).await);
}

#[test]
fn limits_that_would_shut_everyone_out_are_refused_with_the_key() {
    for (line, key) in [
        ("rate_limit_burst = 0", "dns.rate_limit_burst"),
        ("client_upstream_queries = 0", "dns.client_upstream_queries"),
        ("tcp_client_connections = 0", "dns.tcp_client_connections"),
        (
            "tcp_queries_per_connection = 0",
            "dns.tcp_queries_per_connection",
        ),
        ("tcp_write_timeout = \"0s\"", "dns.tcp_write_timeout"),
    ] {
        let text = format!("[dns]\nlisten = [\"127.0.0.1:0\"]\n{line}\n");
        let err = glory_hole::config::Config::from_toml(&text, "t").unwrap_err();
        assert!(err.to_string().contains(key), "{line}: {err}");
    }
    // Off is fine: no limit, no burst needed.
    let text = "[dns]\nlisten = [\"127.0.0.1:0\"]\nrate_limit = 0\nrate_limit_burst = 0\n";
    assert!(glory_hole::config::Config::from_toml(text, "t").is_ok());
}
