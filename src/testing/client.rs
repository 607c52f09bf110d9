//! The one DNS test client: builds queries as raw bytes (so tests can also
//! send broken ones), sends them over UDP or TCP, and reads answers with
//! hickory-proto for readable assertions.

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A standard query with one question; `edns` = Some(udp_size) adds OPT.
pub fn query(id: u16, name: &str, qtype: u16, edns: Option<u16>, do_bit: bool) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = edns {
        m.push(0);
        m.extend_from_slice(&41u16.to_be_bytes());
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&(if do_bit { 0x8000u32 } else { 0 }).to_be_bytes());
        m.extend_from_slice(&[0, 0]);
    }
    m
}

/// Sends `msg` over UDP; `None` when nothing comes back within `wait`.
pub async fn udp_raw(server: SocketAddr, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    udp_raw_from(loopback_for(server), server, msg, wait).await
}

/// As [`udp_raw`], sent from the local address `from` (say 127.0.0.2, to
/// play another client).
pub async fn udp_raw_from(
    from: IpAddr,
    server: SocketAddr,
    msg: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    let sock = tokio::net::UdpSocket::bind((from, 0)).await.ok()?;
    sock.send_to(msg, server).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(wait, sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

fn loopback_for(server: SocketAddr) -> IpAddr {
    if server.is_ipv4() {
        Ipv4Addr::LOCALHOST.into()
    } else {
        Ipv6Addr::LOCALHOST.into()
    }
}

/// Sends `msg` over a new TCP connection and reads one answer.
pub async fn tcp_raw(server: SocketAddr, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(server).await.ok()?;
        let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(msg);
        s.write_all(&framed).await.ok()?;
        let len = s.read_u16().await.ok()? as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    tokio::time::timeout(wait, fut).await.ok()?
}

/// A UDP A/AAAA/... query for `name`, answer parsed; panics with a clear
/// message when there is no answer (for tests).
pub async fn ask(server: SocketAddr, name: &str, qtype: u16) -> Message {
    ask_from(loopback_for(server), server, name, qtype).await
}

/// As [`ask`], from the local address `from` (another client to the
/// server's groups and access list).
pub async fn ask_from(from: IpAddr, server: SocketAddr, name: &str, qtype: u16) -> Message {
    let id = rand::random::<u16>();
    let raw = udp_raw_from(
        from,
        server,
        &query(id, name, qtype, Some(1232), false),
        Duration::from_secs(5),
    )
    .await
    .unwrap_or_else(|| panic!("no answer from {server} to {from} for {name} type {qtype}"));
    let m = Message::from_vec(&raw).expect("answer parses");
    assert_eq!(m.metadata.id, id, "answer ID matches the query");
    m
}

/// The answer section's addresses and names as text, e.g. ["192.0.2.1"].
pub fn answers(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.0.to_string(),
            RData::AAAA(a) => a.0.to_string(),
            RData::CNAME(c) => c.0.to_string(),
            RData::PTR(p) => p.0.to_string(),
            other => format!("{other}"),
        })
        .collect()
}

/// TTLs of the answer section.
pub fn ttls(m: &Message) -> Vec<u32> {
    m.answers.iter().map(|r| r.ttl).collect()
}

pub fn types(m: &Message) -> Vec<RecordType> {
    m.answers.iter().map(|r| r.record_type()).collect()
}
