//! The box's own addresses as its network interfaces hold them
//! (getifaddrs), and telling "this machine has no IPv6" apart from other
//! bind failures.
//!
//! Used for: the LAN's global IPv6 prefixes, which `dns.allow_clients`'s
//! private ranges cannot name in advance (`dns::pipeline` reads them at
//! start and at every config reload); the addresses the mDNS responder
//! answers with; skipping an IPv6 listen address on a machine without IPv6;
//! the DHCP server's own address on the interface it serves.
//! Not for: configuring interfaces (the appliance's `network.conf`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One address on an interface, with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    pub ip: IpAddr,
    pub prefix: u8,
    /// On a loopback interface (never the LAN's).
    pub loopback: bool,
}

/// Every address on every interface that is up.
pub fn addrs() -> Vec<IfAddr> {
    let mut out = Vec::new();
    walk(|_, a| out.push(a));
    out
}

/// The addresses of the interface named `name` (`eth0`), if it is up.
pub fn addrs_on(name: &str) -> Vec<IfAddr> {
    let mut out = Vec::new();
    walk(|n, a| {
        if n == name.as_bytes() {
            out.push(a)
        }
    });
    out
}

/// Calls `found` with each up interface's name and one of its addresses.
fn walk(mut found: impl FnMut(&[u8], IfAddr)) {
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and then free; each
    // sockaddr is read as the type its family names.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return;
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_flags & libc::IFF_UP as u32 == 0 {
                continue;
            }
            let mask = (!ifa.ifa_netmask.is_null()).then_some(ifa.ifa_netmask);
            let loopback = ifa.ifa_flags & libc::IFF_LOOPBACK as u32 != 0;
            let name = match ifa.ifa_name.is_null() {
                true => &[][..],
                false => std::ffi::CStr::from_ptr(ifa.ifa_name).to_bytes(),
            };
            match (*ifa.ifa_addr).sa_family as i32 {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                    let prefix = mask.map_or(32, |m| {
                        let m = &*(m as *const libc::sockaddr_in);
                        u32::from_be(m.sin_addr.s_addr).count_ones() as u8
                    });
                    let a = IfAddr {
                        ip: ip.into(),
                        prefix,
                        loopback,
                    };
                    found(name, a);
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                    let prefix = mask.map_or(128, |m| {
                        let m = &*(m as *const libc::sockaddr_in6);
                        u128::from_be_bytes(m.sin6_addr.s6_addr).count_ones() as u8
                    });
                    let a = IfAddr {
                        ip: ip.into(),
                        prefix,
                        loopback,
                    };
                    found(name, a);
                }
                _ => {}
            }
        }
        libc::freeifaddrs(ifap);
    }
}

/// A global unicast IPv6 address (2000::/3), the kind a router hands out
/// from the ISP's prefix.
pub fn is_global_v6(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xe000 == 0x2000
}

/// The networks of the box's own global IPv6 addresses outside loopback:
/// the LAN's prefix (a /64 from the router, usually). Prefixes shorter than /48 are taken
/// as /64 so a misconfigured mask never opens a whole provider's range.
/// Each as (an address in it, prefix length): `config::Cidr`'s fields.
pub fn global_v6_prefixes(addrs: &[IfAddr]) -> Vec<(IpAddr, u8)> {
    let mut out: Vec<(IpAddr, u8)> = Vec::new();
    for a in addrs {
        let IpAddr::V6(v6) = a.ip else { continue };
        if !is_global_v6(v6) || a.loopback {
            continue;
        }
        let prefix = if a.prefix < 48 || a.prefix == 128 {
            64
        } else {
            a.prefix
        };
        if !out
            .iter()
            .any(|&(net, p)| p <= prefix && same_net(net, a.ip, p))
        {
            out.push((a.ip, prefix));
        }
    }
    out
}

fn same_net(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Whether binding `addr` failed because the machine has no IPv6 there
/// (no IPv6 on loopback, IPv6 disabled, no such address): a reason to skip
/// that address and go on with the others.
pub fn ipv6_unavailable(addr: SocketAddr, e: &io::Error) -> bool {
    addr.is_ipv6()
        && (e.kind() == io::ErrorKind::AddrNotAvailable
            || e.raw_os_error() == Some(libc::EAFNOSUPPORT)
            || e.raw_os_error() == Some(libc::EADDRNOTAVAIL))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str, prefix: u8) -> IfAddr {
        IfAddr {
            ip: s.parse().unwrap(),
            prefix,
            loopback: false,
        }
    }

    #[test]
    fn global_prefixes_are_the_lans() {
        let got = global_v6_prefixes(&[
            a("127.0.0.1", 8),
            a("::1", 128),
            a("fe80::1", 64),
            a("fd00::5", 64),
            a("2001:db8:1:2::10", 64),
            a("2001:db8:1:2::11", 128),
            a("2001:db8:9::1", 32),
            IfAddr {
                loopback: true,
                ..a("2001:db8:7::1", 64)
            },
        ]);
        let want: Vec<(IpAddr, u8)> = vec![
            ("2001:db8:1:2::10".parse().unwrap(), 64),
            ("2001:db8:9::1".parse().unwrap(), 64),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn loopback_is_among_the_interface_addresses() {
        let all = addrs();
        assert!(
            all.iter()
                .any(|x| x.ip == IpAddr::from(Ipv4Addr::LOCALHOST) && x.prefix == 8),
            "{all:?}"
        );
    }

    #[test]
    fn missing_ipv6_is_told_apart() {
        let v6: SocketAddr = "[::1]:53".parse().unwrap();
        let v4: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let gone = io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
        assert!(ipv6_unavailable(v6, &gone));
        assert!(ipv6_unavailable(
            v6,
            &io::Error::from_raw_os_error(libc::EAFNOSUPPORT)
        ));
        assert!(!ipv6_unavailable(v4, &gone));
        assert!(!ipv6_unavailable(
            v6,
            &io::Error::from_raw_os_error(libc::EADDRINUSE)
        ));
    }
}
