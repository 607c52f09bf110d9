//! What setup proposes for the `[dhcp]` section, read from the box's own
//! network: the interface the default route leaves by (else `dhcp.interface`),
//! its address and netmask, the default route's gateway (else the
//! network's `.1`), and a range like `.100`–`.199` that leaves out the
//! box's own address and the gateway. The owner edits it before saving.
//! Not for: checking what the owner saved (`config::dhcp`, `dhcp_form`)
//! or configuring the interface (the appliance's `network.conf`).

use crate::netif;
use std::net::{IpAddr, Ipv4Addr};

/// A proposal: everything `[dhcp]` needs besides lease time and domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub interface: String,
    /// The box's own address there (shown, never leased).
    pub address: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub range: [Ipv4Addr; 2],
}

/// The proposal for this machine, or None when no interface has an IPv4
/// address to serve from.
pub fn offer(configured_interface: &str) -> Option<Offer> {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let route = default_route(&routes);
    let candidates = route
        .iter()
        .map(|(i, _)| i.as_str())
        .chain([configured_interface]);
    for interface in candidates {
        let Some((address, prefix)) = own_v4(interface) else {
            continue;
        };
        let gateway = route
            .as_ref()
            .filter(|(i, _)| i == interface)
            .map(|(_, g)| *g);
        if let Some(o) = propose(interface, address, prefix, gateway) {
            return Some(o);
        }
    }
    None
}

fn own_v4(interface: &str) -> Option<(Ipv4Addr, u8)> {
    netif::addrs_on(interface)
        .into_iter()
        .find_map(|a| match a.ip {
            IpAddr::V4(v4) if !a.loopback => Some((v4, a.prefix)),
            _ => None,
        })
}

/// The interface and gateway of the default IPv4 route in the text of
/// `/proc/net/route` (addresses there are in the kernel's byte order).
pub fn default_route(text: &str) -> Option<(String, Ipv4Addr)> {
    const RTF_UP_GATEWAY: u32 = 0x1 | 0x2;
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let hex = |i: usize| f.get(i).and_then(|s| u32::from_str_radix(s, 16).ok());
        let (dest, gw, flags, mask) = (hex(1)?, hex(2)?, hex(3)?, hex(7)?);
        let default = dest == 0 && mask == 0 && flags & RTF_UP_GATEWAY == RTF_UP_GATEWAY;
        (default && gw != 0).then(|| (f[0].to_string(), Ipv4Addr::from(gw.to_ne_bytes())))
    })
}

/// The proposal for the box at `address`/`prefix` on `interface`, the
/// router at `gateway` when known. None when the network is too small to
/// lend anything (a /31 or /32).
pub fn propose(
    interface: &str,
    address: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
) -> Option<Offer> {
    if !(8..=30).contains(&prefix) {
        return None;
    }
    let mask = u32::MAX << (32 - u32::from(prefix));
    let own = u32::from(address);
    let net = own & mask;
    let (first_host, last_host) = (net + 1, (net | !mask) - 1);
    let gateway = gateway
        .filter(|g| u32::from(*g) & mask == net)
        .map(u32::from)
        .unwrap_or(first_host);
    // .100-.199 of the box's own /24 when the network holds one, else the
    // upper half of a smaller network.
    let (lo, hi) = if prefix <= 24 {
        let base = own & 0xffff_ff00;
        (base + 100, base + 199)
    } else {
        (net + (!mask).div_ceil(2), last_host)
    };
    let (lo, hi) = (lo.max(first_host), hi.min(last_host));
    let [lo, hi] = widest_gap(lo, hi, &[own, gateway])?;
    Some(Offer {
        interface: interface.to_string(),
        address,
        netmask: Ipv4Addr::from(mask),
        gateway: Ipv4Addr::from(gateway),
        range: [lo, hi],
    })
}

/// The longest run of addresses in `lo..=hi` holding none of `taken`.
fn widest_gap(lo: u32, hi: u32, taken: &[u32]) -> Option<[Ipv4Addr; 2]> {
    let mut cuts: Vec<u32> = taken
        .iter()
        .copied()
        .filter(|t| (lo..=hi).contains(t))
        .collect();
    cuts.sort_unstable();
    let mut best: Option<(u32, u32)> = None;
    let mut start = lo;
    for end in cuts.iter().map(|c| Some(*c)).chain([None]) {
        // `lo` is a host, never 0: `c - 1` cannot wrap.
        let stop = end.map_or(hi, |c| c - 1);
        if stop >= start && best.is_none_or(|(a, b)| stop - start > b - a) {
            best = Some((start, stop));
        }
        if let Some(c) = end {
            start = c.saturating_add(1);
        }
    }
    best.map(|(a, b)| [Ipv4Addr::from(a), Ipv4Addr::from(b)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn a_household_24_gets_100_to_199() {
        let o = propose("eth0", ip("192.168.1.2"), 24, Some(ip("192.168.1.1"))).unwrap();
        assert_eq!(o.netmask, ip("255.255.255.0"));
        assert_eq!(o.gateway, ip("192.168.1.1"));
        assert_eq!(o.range, [ip("192.168.1.100"), ip("192.168.1.199")]);
        assert_eq!(o.interface, "eth0");
    }

    #[test]
    fn the_range_leaves_out_the_box_and_the_gateway() {
        let o = propose("eth0", ip("192.168.1.150"), 24, Some(ip("192.168.1.120"))).unwrap();
        assert_eq!(o.range, [ip("192.168.1.151"), ip("192.168.1.199")]);
        let o = propose("eth0", ip("192.168.1.180"), 24, None).unwrap();
        assert_eq!(o.gateway, ip("192.168.1.1"), "no route: the .1");
        assert_eq!(o.range, [ip("192.168.1.100"), ip("192.168.1.179")]);
    }

    #[test]
    fn other_network_sizes() {
        // A /16: the box's own /24 within it, the router elsewhere.
        let o = propose("eth0", ip("10.1.7.5"), 16, Some(ip("10.1.0.1"))).unwrap();
        assert_eq!(o.netmask, ip("255.255.0.0"));
        assert_eq!(o.range, [ip("10.1.7.100"), ip("10.1.7.199")]);
        // A router outside the network is not taken as the gateway.
        let o = propose("wlan0", ip("10.9.0.20"), 28, Some(ip("10.1.0.1"))).unwrap();
        assert_eq!(o.gateway, ip("10.9.0.17"));
        assert_eq!(o.range, [ip("10.9.0.24"), ip("10.9.0.30")]);
        assert_eq!(propose("eth0", ip("10.0.0.1"), 31, None), None);
    }

    #[test]
    fn the_default_route_is_read_from_proc() {
        // As on a little-endian board: 192.168.1.1 is 0101A8C0.
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n";
        if cfg!(target_endian = "little") {
            assert_eq!(
                default_route(text),
                Some(("wlan0".to_string(), ip("192.168.1.1")))
            );
        }
        assert_eq!(default_route(&text.replace("0003", "0001")), None);
        assert_eq!(default_route(""), None);
    }
}
