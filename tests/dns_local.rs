//! Local authority, private names, ANY, client ACL and malformed input,
//! over real sockets.

mod support;

use glory_hole::testing::client::{self, answers, ask};
use hickory_proto::op::ResponseCode;
use std::time::Duration;

const LOCAL: &str = r#"
[dns]
listen = ["127.0.0.1:0"]
upstreams = ["127.0.0.1:9"]
[[local.records]]
name = "nas.lan"
type = "A"
value = "192.168.1.10"
[[local.records]]
name = "nas.lan"
type = "AAAA"
value = "fd00::10"
[[local.records]]
name = "www.home.arpa"
type = "CNAME"
value = "nas.lan"
[[local.records]]
name = "_http._tcp.nas.lan"
type = "SRV"
value = "0 5 80 nas.lan"
[[local.records]]
name = "nas.lan"
type = "MX"
value = "10 mail.nas.lan"
[[local.records]]
name = "big.lan"
type = "TXT"
value = "BIG"
"#;

fn big_txt_config() -> String {
    let mut t = LOCAL.to_string();
    for i in 0..8 {
        t.push_str(&format!(
            "[[local.records]]\nname = \"big.lan\"\ntype = \"TXT\"\nvalue = \"{}\"\n",
            format!("{i}").repeat(200)
        ));
    }
    t
}

#[tokio::test]
async fn local_records_are_authoritative() {
    let s = support::dns::start(LOCAL).await;
    let m = ask(s.dns, "nas.lan", 1).await;
    assert_eq!(answers(&m), ["192.168.1.10"]);
    assert!(m.metadata.authoritative);
    let m = ask(s.dns, "NAS.Lan", 28).await;
    assert_eq!(answers(&m), ["fd00::10"]);
    let m = ask(s.dns, "_http._tcp.nas.lan", 33).await;
    assert_eq!(m.answers.len(), 1);
    let m = ask(s.dns, "nas.lan", 15).await;
    assert_eq!(m.answers.len(), 1);
}

#[tokio::test]
async fn known_name_other_type_is_nodata() {
    let s = support::dns::start(LOCAL).await;
    let m = ask(s.dns, "nas.lan", 16).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
}

#[tokio::test]
async fn cname_is_followed_locally() {
    let s = support::dns::start(LOCAL).await;
    let m = ask(s.dns, "www.home.arpa", 1).await;
    assert_eq!(answers(&m), ["nas.lan.", "192.168.1.10"]);
}

#[tokio::test]
async fn automatic_ptr_for_local_addresses() {
    let s = support::dns::start(LOCAL).await;
    let m = ask(s.dns, "10.1.168.192.in-addr.arpa", 12).await;
    assert_eq!(answers(&m), ["nas.lan."]);
    let rev6 = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
    let m = ask(s.dns, rev6, 12).await;
    assert_eq!(answers(&m), ["nas.lan."]);
}

#[tokio::test]
async fn private_names_never_leak() {
    // The upstream is a closed port: an answer can only be local.
    let s = support::dns::start(LOCAL).await;
    for name in [
        "printer.lan",
        "x.home.arpa",
        "tv.local",
        "db.internal",
        "4.3.2.10.in-addr.arpa",
        "9.9.20.172.in-addr.arpa",
        "7.7.168.192.in-addr.arpa",
    ] {
        let m = ask(s.dns, name, 1).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
    }
}

#[tokio::test]
async fn any_is_answered_minimally() {
    let s = support::dns::start(LOCAL).await;
    let m = ask(s.dns, "example.com", 255).await;
    assert_eq!(client::types(&m), [hickory_proto::rr::RecordType::HINFO]);
}

#[tokio::test]
async fn clients_outside_allow_clients_are_refused() {
    let cfg = LOCAL.replace(
        "upstreams = [\"127.0.0.1:9\"]",
        "upstreams = [\"127.0.0.1:9\"]\nallow_clients = [\"10.0.0.0/8\"]",
    );
    let s = support::dns::start(&cfg).await;
    let m = ask(s.dns, "nas.lan", 1).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty());
}

#[tokio::test]
async fn edns_is_echoed_and_large_udp_answers_truncate() {
    let s = support::dns::start(&big_txt_config()).await;
    let wait = Duration::from_secs(5);
    // With EDNS: the OPT comes back with our UDP size.
    let raw = client::udp_raw(
        s.dns,
        &client::query(7, "nas.lan", 1, Some(4096), true),
        wait,
    )
    .await
    .unwrap();
    let m = hickory_proto::op::Message::from_vec(&raw).unwrap();
    let edns = m.edns.expect("OPT echoed");
    assert_eq!(edns.max_payload(), 1232);
    assert!(edns.flags().dnssec_ok, "DO echoed");
    // Without EDNS, 512 bytes is the limit: TC set, then TCP has it all.
    let q = client::query(8, "big.lan", 16, None, false);
    let raw = client::udp_raw(s.dns, &q, wait).await.unwrap();
    let m = hickory_proto::op::Message::from_vec(&raw).unwrap();
    assert!(m.metadata.truncation, "TC set");
    assert!(m.answers.is_empty());
    let raw = client::tcp_raw(s.dns, &q, wait).await.unwrap();
    let m = hickory_proto::op::Message::from_vec(&raw).unwrap();
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 9);
}

#[tokio::test]
async fn malformed_queries_never_crash_the_server() {
    let s = support::dns::start(LOCAL).await;
    let wait = Duration::from_millis(300);
    let good = client::query(1, "nas.lan", 1, None, false);
    let mut cases: Vec<(&str, Vec<u8>, Option<u8>)> = Vec::new();
    cases.push(("truncated header", good[..7].to_vec(), None));
    cases.push((
        "compression loop",
        vec![0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1],
        Some(1),
    ));
    let mut label64 = vec![0, 3, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64];
    label64.extend_from_slice(&[b'a'; 64]);
    label64.extend_from_slice(&[0, 0, 1, 0, 1]);
    cases.push(("label over 63", label64, Some(1)));
    let mut long = vec![0, 4, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for _ in 0..5 {
        long.push(60);
        long.extend_from_slice(&[b'b'; 60]);
    }
    long.extend_from_slice(&[0, 0, 1, 0, 1]);
    cases.push(("name over 255", long, Some(1)));
    let mut zero_q = good.clone();
    zero_q[5] = 0;
    cases.push(("zero questions", zero_q, Some(1)));
    let mut two_q = good.clone();
    two_q[5] = 2;
    two_q.extend_from_slice(&good[12..]);
    cases.push(("two questions", two_q, Some(1)));
    let mut notimp = good.clone();
    notimp[2] = 0x10 | 0x01; // opcode STATUS
    cases.push(("other opcode", notimp, Some(4)));
    let mut response = good.clone();
    response[2] |= 0x80;
    cases.push(("a response, not a query", response, None));
    cases.push(("garbage after a header", garbage(), Some(1)));

    for (what, bytes, expect) in cases {
        let got = client::udp_raw(s.dns, &bytes, wait).await;
        match expect {
            None => assert!(got.is_none(), "{what}: dropped"),
            Some(rcode) => {
                let got = got.unwrap_or_else(|| panic!("{what}: expected an answer"));
                assert_eq!(got[3] & 0x0F, rcode, "{what}: rcode");
                assert_eq!(&got[..2], &bytes[..2], "{what}: ID echoed");
            }
        }
        // The server still answers afterwards.
        assert_eq!(
            answers(&ask(s.dns, "nas.lan", 1).await),
            ["192.168.1.10"],
            "after {what}"
        );
    }
    // And over TCP, a broken message does not kill the connection handler.
    let got = client::tcp_raw(s.dns, &garbage(), wait).await.unwrap();
    assert_eq!(got[3] & 0x0F, 1);
}

#[tokio::test]
async fn tcp_pipelines_queries_on_one_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = support::dns::start(LOCAL).await;
    let mut conn = tokio::net::TcpStream::connect(s.dns).await.unwrap();
    let mut burst = Vec::new();
    for id in 0..20u16 {
        let q = client::query(id, "nas.lan", 1, None, false);
        burst.extend_from_slice(&(q.len() as u16).to_be_bytes());
        burst.extend_from_slice(&q);
    }
    conn.write_all(&burst).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let len = conn.read_u16().await.unwrap() as usize;
        let mut b = vec![0; len];
        conn.read_exact(&mut b).await.unwrap();
        ids.push(u16::from_be_bytes([b[0], b[1]]));
    }
    ids.sort();
    assert_eq!(ids, (0..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn tcp_idle_connections_are_closed() {
    use tokio::io::AsyncReadExt;
    let cfg = LOCAL.replace(
        "upstreams = [\"127.0.0.1:9\"]",
        "upstreams = [\"127.0.0.1:9\"]\ntcp_idle_timeout = \"300ms\"",
    );
    let s = support::dns::start(&cfg).await;
    let mut conn = tokio::net::TcpStream::connect(s.dns).await.unwrap();
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut b))
        .await
        .expect("server closes an idle connection")
        .unwrap_or(0);
    assert_eq!(n, 0, "EOF from the server");
}

async fn answered_on(conn: &mut tokio::net::TcpStream, id: u16) -> bool {
    support::dns::answered_on(conn, "nas.lan", id).await
}

#[tokio::test]
async fn tcp_connections_are_capped() {
    use tokio::io::AsyncReadExt;
    let cfg = LOCAL.replace(
        "upstreams = [\"127.0.0.1:9\"]",
        "upstreams = [\"127.0.0.1:9\"]\ntcp_max_connections = 2",
    );
    let s = support::dns::start(&cfg).await;
    let mut a = tokio::net::TcpStream::connect(s.dns).await.unwrap();
    let mut b = tokio::net::TcpStream::connect(s.dns).await.unwrap();
    // Answered: both hold their place under the cap.
    assert!(answered_on(&mut a, 1).await);
    assert!(answered_on(&mut b, 2).await);
    let mut c = tokio::net::TcpStream::connect(s.dns).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("third connection is closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // A place freed is taken again, once the server has seen it go.
    drop(a);
    let q = client::query(9, "nas.lan", 1, None, false);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while client::tcp_raw(s.dns, &q, Duration::from_secs(1))
        .await
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no place under the cap after a connection closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The one that stayed within the cap still works.
    assert!(answered_on(&mut b, 3).await);
}

/// A query header followed by bytes that are no name at all.
fn garbage() -> Vec<u8> {
    let mut g = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    g.extend_from_slice(&[0xFF; 28]);
    g
}

/// A burst from several clients arrives as batches (one recvmmsg, one
/// sendmmsg): every query must get its own answer, at its own address,
/// with its own ID.
#[tokio::test]
async fn a_burst_from_many_clients_is_answered_one_by_one() {
    // Four SO_REUSEPORT sockets, each with its reader thread: the kernel
    // spreads the clients over them, and every answer still goes back
    // through the socket its query came in on.
    let s = support::dns::start(&LOCAL.replacen("[dns]\n", "[dns]\nudp_sockets = 4\n", 1)).await;
    let readers = || glory_hole::testing::threads_named("dns-udp").len();
    // A thread names itself once it runs.
    for _ in 0..100 {
        if readers() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(readers(), 4, "UDP reader threads");
    let clients: Vec<std::net::UdpSocket> = (0..4)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for c in &clients {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    let per_client = 100u16;
    for id in 0..per_client {
        for (k, c) in clients.iter().enumerate() {
            let qtype = if k % 2 == 0 { 1 } else { 28 };
            let q = client::query(id * 8 + k as u16, "nas.lan", qtype, None, false);
            c.send_to(&q, s.dns).unwrap();
        }
    }
    let mut buf = [0u8; 512];
    for (k, c) in clients.iter().enumerate() {
        let mut ids = Vec::new();
        for _ in 0..per_client {
            let n = c.recv(&mut buf).expect("every query answered");
            let m = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
            let want = if k % 2 == 0 {
                "192.168.1.10"
            } else {
                "fd00::10"
            };
            assert_eq!(
                answers(&m),
                [want],
                "client {k} got another client's answer"
            );
            ids.push(m.metadata.id);
        }
        ids.sort_unstable();
        let expected: Vec<u16> = (0..per_client).map(|id| id * 8 + k as u16).collect();
        assert_eq!(ids, expected, "client {k}: one answer per query");
    }
}
