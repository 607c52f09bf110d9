//! A minimal mDNS responder (RFC 6762): answers A and AAAA queries for
//! `<hostname>.local` so `http://glory-hole.local` works without a router
//! entry, over IPv4 and IPv6 alike (the box's ULA and global IPv6
//! addresses; link-local ones need a zone and are left out). It answers
//! only its own name, and announces itself at start. Not a general mDNS
//! stack: no service discovery, no conflict resolution, no IPv6 multicast
//! group (ff02::fb).

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::{DNSClass, RecordType};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

pub const MDNS_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
pub const MDNS_PORT: u16 = 5353;
/// RFC 6762 §10: host records get 120 s.
const TTL: u32 = 120;
/// RFC 6762 §6.7: answers to legacy (non-5353) queriers carry at most 10 s.
const LEGACY_TTL: u32 = 10;

/// The addresses to answer with, asked afresh for each answer (DHCP may
/// change them at any time).
pub type AddrSource = Arc<dyn Fn() -> Vec<IpAddr> + Send + Sync>;

/// Which address records a question asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Wanted {
    a: bool,
    aaaa: bool,
}

impl Wanted {
    const BOTH: Wanted = Wanted {
        a: true,
        aaaa: true,
    };
    fn covers(self, ip: &IpAddr) -> bool {
        if ip.is_ipv4() { self.a } else { self.aaaa }
    }
}

pub struct Responder {
    /// Lower-case, with the `.local` suffix, without the trailing dot.
    name: String,
    addrs: AddrSource,
    socket: UdpSocket,
    /// Where unsolicited and multicast answers go (the group, or a test's
    /// socket).
    group: SocketAddr,
}

impl Responder {
    /// Binds 0.0.0.0:5353 and joins 224.0.0.251 on the default interface.
    pub fn bind_multicast(hostname: &str, addrs: AddrSource) -> io::Result<Responder> {
        let sock = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        // Other mDNS software on the same box must be able to share the port.
        sock.set_reuse_address(true)?;
        sock.set_reuse_port(true)?;
        sock.set_nonblocking(true)?;
        sock.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, MDNS_PORT).into())?;
        sock.join_multicast_v4(&MDNS_GROUP, &Ipv4Addr::UNSPECIFIED)
            .map_err(|e| io::Error::new(e.kind(), format!("joining {MDNS_GROUP}: {e}")))?;
        sock.set_multicast_ttl_v4(255)?;
        sock.set_multicast_loop_v4(false)?;
        let socket = UdpSocket::from_std(sock.into())?;
        Ok(Self::new(
            hostname,
            addrs,
            socket,
            SocketAddrV4::new(MDNS_GROUP, MDNS_PORT).into(),
        ))
    }

    /// A responder on an already bound socket (tests use loopback).
    pub fn new(hostname: &str, addrs: AddrSource, socket: UdpSocket, group: SocketAddr) -> Self {
        let name = format!(
            "{}.local",
            hostname.trim_end_matches('.').to_ascii_lowercase()
        );
        Responder {
            name,
            addrs,
            socket,
            group,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Announces the name, then answers queries until the task is dropped.
    pub async fn run(self) {
        // RFC 6762 §8.3: announce at least twice, one second apart.
        for _ in 0..2 {
            if let Some(msg) = self.answer(0, None, TTL, true, Wanted::BOTH) {
                let _ = self.socket.send_to(&msg, self.group).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut buf = vec![0u8; 9000];
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!("mdns: receive: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if let Some((reply, to)) = self.reply_to(&buf[..n], from)
                && let Err(e) = self.socket.send_to(&reply, to).await
            {
                tracing::debug!("mdns: answer to {to}: {e}");
            }
        }
    }

    /// The answer to one received packet and where it goes, if we own a
    /// question in it.
    fn reply_to(&self, packet: &[u8], from: SocketAddr) -> Option<(Vec<u8>, SocketAddr)> {
        let msg = Message::from_vec(packet).ok()?;
        if msg.metadata.message_type != MessageType::Query || msg.metadata.op_code != OpCode::Query
        {
            return None;
        }
        let mut unicast_requested = false;
        let mut wanted = Wanted::default();
        for q in &msg.queries {
            let name = q.name.to_ascii().to_ascii_lowercase();
            // The top bit of the class asks for a unicast answer (QU).
            let class = u16::from(q.query_class);
            let is_in = class & 0x7fff == u16::from(DNSClass::IN) || class & 0x7fff == 255;
            if name.trim_end_matches('.') != self.name || !is_in {
                continue;
            }
            let any = q.query_type == RecordType::ANY;
            let a = any || q.query_type == RecordType::A;
            let aaaa = any || q.query_type == RecordType::AAAA;
            wanted.a |= a;
            wanted.aaaa |= aaaa;
            if (a || aaaa) && class & 0x8000 != 0 {
                unicast_requested = true;
            }
        }
        if wanted == Wanted::default() {
            return None;
        }
        if from.port() != MDNS_PORT {
            // Legacy unicast querier (e.g. `dig -p 5353`): a normal DNS
            // answer echoing ID and question, straight back to it.
            let question = question_section(packet)?;
            let reply = self.answer(msg.metadata.id, Some(question), LEGACY_TTL, false, wanted)?;
            return Some((reply, from));
        }
        let reply = self.answer(0, None, TTL, true, wanted)?;
        Some((reply, if unicast_requested { from } else { self.group }))
    }

    /// An authoritative response holding one A or AAAA record per address
    /// of the kinds `wanted`.
    fn answer(
        &self,
        id: u16,
        question: Option<&[u8]>,
        ttl: u32,
        flush: bool,
        wanted: Wanted,
    ) -> Option<Vec<u8>> {
        let addrs: Vec<IpAddr> = (self.addrs)()
            .into_iter()
            .filter(|ip| wanted.covers(ip))
            .collect();
        if addrs.is_empty() {
            return None;
        }
        let mut m = Vec::with_capacity(64 + addrs.len() * 16);
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&0x8400u16.to_be_bytes()); // QR, AA
        m.extend_from_slice(&u16::from(question.is_some()).to_be_bytes());
        m.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        if let Some(q) = question {
            m.extend_from_slice(q);
        }
        let class: u16 = if flush { 0x8001 } else { 1 }; // cache-flush bit
        for ip in addrs {
            for label in self.name.split('.') {
                m.push(label.len() as u8);
                m.extend_from_slice(label.as_bytes());
            }
            m.push(0);
            let (rtype, rdata) = match ip {
                IpAddr::V4(v4) => (1u16, v4.octets().to_vec()),
                IpAddr::V6(v6) => (28u16, v6.octets().to_vec()),
            };
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&class.to_be_bytes());
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(&rdata);
        }
        Some(m)
    }
}

/// The raw bytes of the first question (legacy answers echo it).
fn question_section(packet: &[u8]) -> Option<&[u8]> {
    let mut off = 12;
    loop {
        let len = *packet.get(off)? as usize;
        match len {
            0 => {
                off += 1;
                break;
            }
            // A compressed name in a question: not worth echoing.
            l if l & 0xc0 != 0 => return None,
            l => off += 1 + l,
        }
    }
    packet.get(12..off + 4)
}

/// The box's addresses that other hosts on the LAN can reach (not
/// loopback, not link-local), from the interfaces (`netif`).
pub fn interface_addrs() -> Vec<IpAddr> {
    crate::netif::addrs()
        .into_iter()
        .map(|a| a.ip)
        .filter(|ip| is_answerable(*ip))
        .collect()
}

/// Whether an address is one this responder would hand out.
pub fn is_answerable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local() && !v6.is_unspecified(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::client;

    fn fixed(addrs: Vec<IpAddr>) -> AddrSource {
        Arc::new(move || addrs.clone())
    }

    async fn start(addrs: Vec<IpAddr>) -> (SocketAddr, UdpSocket) {
        // The "group" is a plain loopback socket the test can read.
        let group = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let r = Responder::new(
            "Glory-Hole",
            fixed(addrs),
            sock,
            group.local_addr().unwrap(),
        );
        let addr = r.local_addr().unwrap();
        tokio::spawn(r.run());
        (addr, group)
    }

    #[tokio::test]
    async fn legacy_query_for_our_name_gets_our_address() {
        let ip = Ipv4Addr::new(192, 168, 1, 53);
        let (addr, _group) = start(vec![ip.into(), "fd00::53".parse().unwrap()]).await;
        let q = client::query(0x4242, "glory-hole.local", 1, None, false);
        let raw = client::udp_raw(addr, &q, Duration::from_secs(5))
            .await
            .unwrap();
        let m = Message::from_vec(&raw).unwrap();
        assert_eq!(m.metadata.id, 0x4242);
        assert!(m.metadata.authoritative);
        assert_eq!(m.queries.len(), 1, "legacy answers echo the question");
        assert_eq!(client::answers(&m), vec!["192.168.1.53".to_string()]);
        assert!(m.answers[0].ttl <= LEGACY_TTL);
    }

    #[tokio::test]
    async fn other_names_and_types_get_no_answer() {
        let (addr, _group) = start(vec![Ipv4Addr::new(10, 0, 0, 2).into()]).await;
        for (name, qtype) in [("printer.local", 1), ("glory-hole.local", 28)] {
            let q = client::query(7, name, qtype, None, false);
            assert!(
                client::udp_raw(addr, &q, Duration::from_millis(300))
                    .await
                    .is_none(),
                "{name} type {qtype} must not be answered"
            );
        }
        // Still alive after ignoring those, and after garbage.
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(&[1, 2, 3], addr).await.unwrap();
        let q = client::query(8, "GLORY-HOLE.local", 1, None, false);
        assert!(
            client::udp_raw(addr, &q, Duration::from_secs(5))
                .await
                .is_some()
        );
    }

    #[tokio::test]
    async fn announces_itself_to_the_group_with_cache_flush() {
        let (_addr, group) = start(vec![
            Ipv4Addr::new(10, 0, 0, 2).into(),
            Ipv4Addr::new(10, 0, 1, 2).into(),
        ])
        .await;
        let mut buf = [0u8; 1500];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), group.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let m = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(m.metadata.id, 0);
        assert_eq!(client::answers(&m), vec!["10.0.0.2", "10.0.1.2"]);
        assert_eq!(m.answers[0].ttl, TTL);
        // Name (18 bytes for glory-hole.local), type, then the class with
        // the cache-flush bit.
        assert_eq!(&buf[..n][12 + 20..12 + 22], &0x8001u16.to_be_bytes());
    }

    #[test]
    fn no_addresses_means_silence() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let r = Responder::new(
                "glory-hole",
                fixed(vec![]),
                sock,
                "127.0.0.1:9".parse().unwrap(),
            );
            assert!(r.answer(1, None, TTL, true, Wanted::BOTH).is_none());
        });
    }

    #[tokio::test]
    async fn aaaa_queries_get_the_ipv6_addresses() {
        let (addr, _group) = start(vec![
            Ipv4Addr::new(192, 168, 1, 53).into(),
            "fd00::53".parse().unwrap(),
            "2001:db8:1::53".parse().unwrap(),
        ])
        .await;
        let q = client::query(0x77, "glory-hole.local", 28, None, false);
        let raw = client::udp_raw(addr, &q, Duration::from_secs(5))
            .await
            .unwrap();
        let m = Message::from_vec(&raw).unwrap();
        assert_eq!(client::answers(&m), vec!["fd00::53", "2001:db8:1::53"]);
        assert!(
            client::types(&m).iter().all(|t| *t == RecordType::AAAA),
            "{m:?}"
        );
    }

    #[test]
    fn interface_addrs_skip_loopback_and_link_local() {
        assert!(interface_addrs().iter().all(|ip| is_answerable(*ip)));
        for not in ["127.0.0.1", "::1", "fe80::1", "169.254.1.1", "::"] {
            assert!(!is_answerable(not.parse().unwrap()), "{not}");
        }
        for yes in ["192.168.1.2", "fd00::2", "2001:db8::2"] {
            assert!(is_answerable(yes.parse().unwrap()), "{yes}");
        }
    }
}
