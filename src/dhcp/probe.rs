//! Is another DHCP server on the segment? Before serving, the box sends a
//! DISCOVER of its own on the interface (as a client with a made-up MAC
//! would) and listens for offers a short while: two DHCP servers on one
//! LAN hand out clashing addresses, the classic way to break a household's
//! network, so any offer stops ours from starting.
//!
//! Not for: answering clients (`server`).

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

/// How long offers are waited for; the DISCOVER is sent at the start and
/// again halfway (one may be lost). A server may first ping the address
/// it means to offer: dnsmasq (in many home routers) waits 3 s for an
/// echo before offering (seen in tests/dhcp.rs's log).
pub const WAIT: Duration = Duration::from_secs(5);

/// The address of a DHCP server that offered on `interface` within
/// `wait`, or None.
pub async fn other_server(interface: &str, wait: Duration) -> io::Result<Option<Ipv4Addr>> {
    let sock = super::server::bind(interface, 68)?;
    let mut mac = [0u8; 6];
    rand::fill(&mut mac[..]);
    // A locally administered unicast MAC: never a real device's.
    mac[0] = (mac[0] & 0xfc) | 0x02;
    let mut m = Message::new(
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac,
    );
    // Offers broadcast, so this socket gets them with no address yet.
    m.set_flags(Flags::default().set_broadcast());
    m.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Discover));
    m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
    ]));
    let bytes = m.to_vec().map_err(io::Error::other)?;
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let deadline = tokio::time::Instant::now() + wait;
    let mut resend = Some(tokio::time::Instant::now() + wait / 2);
    sock.send_to(&bytes, to).await?;
    let mut buf = vec![0u8; 1500];
    loop {
        let until = resend.unwrap_or(deadline).min(deadline);
        match tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => {
                if let Some(server) = offer_for(&buf[..n], &m, from) {
                    return Ok(Some(server));
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_) if until == deadline => return Ok(None),
            Err(_) => {
                resend = None;
                sock.send_to(&bytes, to).await?;
            }
        }
    }
}

/// The offering server when `bytes` is an OFFER answering `ours`.
fn offer_for(bytes: &[u8], ours: &Message, from: SocketAddr) -> Option<Ipv4Addr> {
    let r = Message::from_bytes(bytes).ok()?;
    if r.opcode() != Opcode::BootReply || r.xid() != ours.xid() || r.chaddr() != ours.chaddr() {
        return None;
    }
    if r.opts().msg_type() != Some(MessageType::Offer) {
        return None;
    }
    match (r.opts().get(OptionCode::ServerIdentifier), from) {
        (Some(DhcpOption::ServerIdentifier(ip)), _) => Some(*ip),
        (_, SocketAddr::V4(a)) => Some(*a.ip()),
        _ => Some(Ipv4Addr::UNSPECIFIED),
    }
}
