//! One DHCP message in, the server's answer out (RFC 2131, section 4.3):
//! DISCOVER → OFFER, REQUEST → ACK or NAK, INFORM → ACK without a lease,
//! RELEASE and DECLINE → nothing, each with where the answer goes. No
//! sockets, so the exchanges are unit tests; the wire format is
//! `dhcproto`'s.
//!
//! Not for: which address a client gets (see `pool`) or the socket (see
//! `server`).

use super::pool::{Pool, label_from_hostname};
use crate::config::Mac;
use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
use std::net::{Ipv4Addr, SocketAddrV4};

/// What every answer carries besides the lease: from the config and the
/// interface.
pub struct Network {
    /// The box's own address: server identifier and DNS server.
    pub own: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
    pub domain: String,
    pub lease_secs: u32,
}

/// An answer and where it goes.
pub struct Reply {
    pub msg: Message,
    pub to: SocketAddrV4,
}

const CLIENT_PORT: u16 = 68;
const SERVER_PORT: u16 = 67;

/// What the server says to `req` (None: nothing); `changed` is set when
/// a lease changed (to be saved and named).
pub fn answer(
    pool: &mut Pool,
    net: &Network,
    req: &Message,
    now: u64,
    changed: &mut bool,
) -> Option<Reply> {
    if req.opcode() != Opcode::BootRequest || req.hlen() != 6 || req.chaddr().len() < 6 {
        return None;
    }
    let mac = Mac(req.chaddr()[..6].try_into().ok()?);
    let opts = req.opts();
    let requested = match opts.get(dhcproto::v4::OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
        _ => None,
    };
    let server_id = match opts.get(dhcproto::v4::OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    };
    match opts.msg_type()? {
        MessageType::Discover => {
            let Some(ip) = pool.offer(mac, requested, now) else {
                tracing::warn!("dhcp: no free address for {mac} (dhcp.range is used up)");
                return None;
            };
            *changed = true;
            Some(lease_reply(req, net, MessageType::Offer, ip))
        }
        MessageType::Request => {
            // The client chose another server's offer.
            if server_id.is_some_and(|s| s != net.own) {
                return None;
            }
            let ciaddr = req.ciaddr();
            let ip = requested.or((!ciaddr.is_unspecified()).then_some(ciaddr))?;
            let name = match opts.get(dhcproto::v4::OptionCode::Hostname) {
                Some(DhcpOption::Hostname(h)) => label_from_hostname(h),
                _ => None,
            };
            match pool.ack(mac, ip, name, net.lease_secs.into(), now) {
                Ok(_) => {
                    *changed = true;
                    Some(lease_reply(req, net, MessageType::Ack, ip))
                }
                Err(nak) => {
                    tracing::info!("dhcp: NAK to {mac} for {ip}: {}", nak.0);
                    let mut m = base(req, net, MessageType::Nak, Ipv4Addr::UNSPECIFIED);
                    m.opts_mut().insert(DhcpOption::Message(nak.0.into()));
                    Some(Reply {
                        to: broadcast_to(req),
                        msg: m,
                    })
                }
            }
        }
        MessageType::Release => {
            *changed |=
                server_id.is_none_or(|s| s == net.own) && pool.release(mac, req.ciaddr(), now);
            None
        }
        MessageType::Decline => {
            let ip = requested?;
            if server_id.is_none_or(|s| s == net.own) && pool.decline(mac, ip, now) {
                tracing::warn!(
                    "dhcp: {mac} found {ip} in use by another device; not leased for a while"
                );
                *changed = true;
            }
            None
        }
        MessageType::Inform => {
            let mut m = base(req, net, MessageType::Ack, Ipv4Addr::UNSPECIFIED);
            network_options(&mut m, net);
            let ciaddr = req.ciaddr();
            let to = match ciaddr.is_unspecified() {
                true => broadcast_to(req),
                false => SocketAddrV4::new(ciaddr, CLIENT_PORT),
            };
            Some(Reply { msg: m, to })
        }
        _ => None,
    }
}

/// An OFFER or ACK of `ip` with the lease's times and the network's options.
fn lease_reply(req: &Message, net: &Network, kind: MessageType, ip: Ipv4Addr) -> Reply {
    let mut m = base(req, net, kind, ip);
    let secs = net.lease_secs;
    let o = m.opts_mut();
    o.insert(DhcpOption::AddressLeaseTime(secs));
    // T1 and T2 at RFC 2131's defaults: half and seven eighths.
    o.insert(DhcpOption::Renewal(secs / 2));
    o.insert(DhcpOption::Rebinding((secs as u64 * 7 / 8) as u32));
    network_options(&mut m, net);
    let ciaddr = req.ciaddr();
    // A renewing client has its address and is answered there; one
    // without an address cannot be reached before it takes it (without
    // writing its MAC into the ARP table): broadcast.
    let to = match (req.giaddr().is_unspecified(), ciaddr.is_unspecified()) {
        (false, _) => SocketAddrV4::new(req.giaddr(), SERVER_PORT),
        (true, false) => SocketAddrV4::new(ciaddr, CLIENT_PORT),
        (true, true) => SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT),
    };
    Reply { msg: m, to }
}

fn network_options(m: &mut Message, net: &Network) {
    let o = m.opts_mut();
    o.insert(DhcpOption::SubnetMask(net.netmask));
    if let Some(g) = net.gateway {
        o.insert(DhcpOption::Router(vec![g]));
    }
    o.insert(DhcpOption::DomainNameServer(vec![net.own]));
    o.insert(DhcpOption::DomainName(net.domain.clone()));
}

/// A reply to `req`: its transaction, flags, relay and hardware address.
fn base(req: &Message, net: &Network, kind: MessageType, yiaddr: Ipv4Addr) -> Message {
    let ciaddr = match kind {
        MessageType::Ack => req.ciaddr(),
        _ => Ipv4Addr::UNSPECIFIED,
    };
    let mut m = Message::new_with_id(
        req.xid(),
        ciaddr,
        yiaddr,
        Ipv4Addr::UNSPECIFIED,
        req.giaddr(),
        &req.chaddr()[..req.hlen().min(16) as usize],
    );
    m.set_opcode(Opcode::BootReply)
        .set_htype(req.htype())
        .set_flags(req.flags());
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ServerIdentifier(net.own));
    m
}

fn broadcast_to(req: &Message) -> SocketAddrV4 {
    match req.giaddr().is_unspecified() {
        true => SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT),
        false => SocketAddrV4::new(req.giaddr(), SERVER_PORT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use dhcproto::v4::OptionCode;
    use dhcproto::{Decodable, Encodable};

    const NOW: u64 = 1_800_000_000;
    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn setup() -> (Pool, Network) {
        let text = "[dhcp]\nenabled = true\nrange = [\"10.9.0.100\", \"10.9.0.101\"]\n\
                    gateway = \"10.9.0.1\"\nlease_time = \"1h\"\n";
        let cfg = Config::from_toml(text, "t").unwrap();
        let own = Ipv4Addr::new(10, 9, 0, 2);
        let net = Network {
            own,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Some(Ipv4Addr::new(10, 9, 0, 1)),
            domain: "lan".into(),
            lease_secs: 3600,
        };
        (Pool::new(&cfg.dhcp, own), net)
    }

    /// A client's message, through the wire and back as a server reads it.
    fn client(kind: MessageType, ciaddr: Ipv4Addr, opts: Vec<DhcpOption>) -> Message {
        let mut m = Message::new(
            ciaddr,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &MAC,
        );
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        for o in opts {
            m.opts_mut().insert(o);
        }
        Message::from_bytes(&m.to_vec().unwrap()).unwrap()
    }

    fn run(pool: &mut Pool, net: &Network, m: &Message) -> Option<Reply> {
        let reply = answer(pool, net, m, NOW, &mut false)?;
        let back = Message::from_bytes(&reply.msg.to_vec().unwrap()).unwrap();
        assert_eq!(back.xid(), m.xid());
        Some(Reply {
            msg: back,
            to: reply.to,
        })
    }

    fn opt(m: &Message, code: OptionCode) -> DhcpOption {
        m.opts()
            .get(code)
            .cloned()
            .unwrap_or_else(|| panic!("no {code:?}"))
    }

    #[test]
    fn discover_request_ack_hands_out_the_network() {
        let (mut pool, net) = setup();
        let offer = run(
            &mut pool,
            &net,
            &client(MessageType::Discover, Ipv4Addr::UNSPECIFIED, vec![]),
        )
        .unwrap();
        assert_eq!(offer.msg.opts().msg_type(), Some(MessageType::Offer));
        assert_eq!(offer.msg.yiaddr(), Ipv4Addr::new(10, 9, 0, 100));
        assert_eq!(offer.to.to_string(), "255.255.255.255:68");
        let req = client(
            MessageType::Request,
            Ipv4Addr::UNSPECIFIED,
            vec![
                DhcpOption::RequestedIpAddress(offer.msg.yiaddr()),
                DhcpOption::ServerIdentifier(net.own),
                DhcpOption::Hostname("Kitchen Radio".into()),
            ],
        );
        let ack = run(&mut pool, &net, &req).unwrap().msg;
        assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(ack.yiaddr(), Ipv4Addr::new(10, 9, 0, 100));
        assert_eq!(
            opt(&ack, OptionCode::SubnetMask),
            DhcpOption::SubnetMask([255, 255, 255, 0].into())
        );
        assert_eq!(
            opt(&ack, OptionCode::Router),
            DhcpOption::Router(vec![[10, 9, 0, 1].into()])
        );
        assert_eq!(
            opt(&ack, OptionCode::DomainNameServer),
            DhcpOption::DomainNameServer(vec![[10, 9, 0, 2].into()])
        );
        assert_eq!(
            opt(&ack, OptionCode::DomainName),
            DhcpOption::DomainName("lan".into())
        );
        assert_eq!(
            opt(&ack, OptionCode::AddressLeaseTime),
            DhcpOption::AddressLeaseTime(3600)
        );
        assert_eq!(opt(&ack, OptionCode::Renewal), DhcpOption::Renewal(1800));
        assert_eq!(
            opt(&ack, OptionCode::Rebinding),
            DhcpOption::Rebinding(3150)
        );
        assert_eq!(
            opt(&ack, OptionCode::ServerIdentifier),
            DhcpOption::ServerIdentifier(net.own)
        );
        let (_, lease) = pool.leases().next().unwrap();
        assert_eq!(lease.name.as_deref(), Some("kitchen-radio"));
        assert_eq!(lease.expires, NOW + 3600);
    }

    #[test]
    fn renewing_is_answered_at_the_clients_address() {
        let (mut pool, net) = setup();
        let ip = Ipv4Addr::new(10, 9, 0, 101);
        let ack = run(&mut pool, &net, &client(MessageType::Request, ip, vec![])).unwrap();
        assert_eq!(ack.msg.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(ack.to, SocketAddrV4::new(ip, 68));
    }

    #[test]
    fn a_wrong_address_gets_a_nak_and_another_servers_choice_nothing() {
        let (mut pool, net) = setup();
        let wrong = client(
            MessageType::Request,
            Ipv4Addr::UNSPECIFIED,
            vec![DhcpOption::RequestedIpAddress([192, 168, 0, 5].into())],
        );
        let nak = run(&mut pool, &net, &wrong).unwrap();
        assert_eq!(nak.msg.opts().msg_type(), Some(MessageType::Nak));
        assert_eq!(nak.msg.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(nak.to.to_string(), "255.255.255.255:68");
        let other = client(
            MessageType::Request,
            Ipv4Addr::UNSPECIFIED,
            vec![
                DhcpOption::RequestedIpAddress([10, 9, 0, 100].into()),
                DhcpOption::ServerIdentifier([10, 9, 0, 1].into()),
            ],
        );
        assert!(run(&mut pool, &net, &other).is_none());
        assert_eq!(pool.leases().count(), 0);
    }

    #[test]
    fn inform_gets_the_options_without_a_lease() {
        let (mut pool, net) = setup();
        let ip = Ipv4Addr::new(10, 9, 0, 50);
        let ack = run(&mut pool, &net, &client(MessageType::Inform, ip, vec![])).unwrap();
        assert_eq!(ack.msg.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert!(ack.msg.opts().get(OptionCode::AddressLeaseTime).is_none());
        assert!(ack.msg.opts().get(OptionCode::DomainNameServer).is_some());
        assert_eq!(ack.to, SocketAddrV4::new(ip, 68));
        assert_eq!(pool.leases().count(), 0);
    }

    #[test]
    fn release_frees_the_address_and_keeps_it_for_the_client() {
        let (mut pool, net) = setup();
        let ip = Ipv4Addr::new(10, 9, 0, 101);
        run(&mut pool, &net, &client(MessageType::Request, ip, vec![])).unwrap();
        let mut changed = false;
        assert!(
            answer(
                &mut pool,
                &net,
                &client(MessageType::Release, ip, vec![]),
                NOW + 5,
                &mut changed
            )
            .is_none()
        );
        assert!(changed);
        assert_eq!(pool.leases().next().unwrap().1.expires, NOW + 5);
    }
}
