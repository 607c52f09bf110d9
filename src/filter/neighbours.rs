//! The kernel's neighbour table: which MAC address each IPv4 and IPv6
//! neighbour has, so client groups can name devices by MAC.
//!
//! `/proc/net/arp` has IPv4 only; IPv6 neighbours (NDP) exist only behind
//! rtnetlink. [`read`] unites both: the ARP file (tests point it at their
//! own) and an `RTM_GETNEIGH` dump over a `NETLINK_ROUTE` socket. If
//! netlink is unavailable (a sandbox without it, another OS) the ARP file
//! alone is used. Read by the filter service off the data path.
//! Not for: deciding group membership (see `groups`).

use super::groups::read_neighbours as read_arp;
use std::io;
use std::net::IpAddr;
use std::path::Path;

pub type Neighbour = (IpAddr, [u8; 6]);

/// Every neighbour with a known MAC, from the ARP file and the kernel,
/// sorted and without duplicates (callers compare tables for changes).
/// Fails only if neither source can be read.
pub fn read(arp_file: &Path) -> io::Result<Vec<Neighbour>> {
    let arp = read_arp(arp_file);
    let kernel = dump_kernel();
    let mut out = match (arp, kernel) {
        (Err(e), Err(k)) => {
            return Err(io::Error::new(
                e.kind(),
                format!("{}: {e}; rtnetlink: {k}", arp_file.display()),
            ));
        }
        (Ok(a), Err(k)) => {
            tracing::debug!("filter: rtnetlink neighbour dump: {k}; using the ARP table only");
            a
        }
        (Err(e), Ok(k)) => {
            tracing::debug!("filter: {}: {e}", arp_file.display());
            k
        }
        (Ok(mut a), Ok(k)) => {
            a.extend(k);
            a
        }
    };
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

// Netlink constants (linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h).
const NLMSG_HDR_LEN: usize = 16;
const NDMSG_LEN: usize = 12;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// Attribute type bits that are flags, not the type.
const NLA_TYPE_MASK: u16 = 0x3fff;
/// States without a usable MAC: still resolving, failed, or not a real
/// neighbour (multicast and point-to-point entries).
const NUD_INCOMPLETE: u16 = 0x01;
const NUD_FAILED: u16 = 0x20;
const NUD_NOARP: u16 = 0x40;

/// The dump request: a netlink header and an all-zero `ndmsg` (every family,
/// every interface).
fn request(seq: u32) -> [u8; NLMSG_HDR_LEN + NDMSG_LEN] {
    let mut r = [0u8; NLMSG_HDR_LEN + NDMSG_LEN];
    r[0..4].copy_from_slice(&((NLMSG_HDR_LEN + NDMSG_LEN) as u32).to_ne_bytes());
    r[4..6].copy_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    r[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    r[8..12].copy_from_slice(&seq.to_ne_bytes());
    r
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses one datagram of a dump reply into `out`; true once the dump's
/// NLMSG_DONE is seen. Netlink is in host byte order. Never panics on any
/// input: malformed bytes are an `InvalidData` error.
pub fn parse_dump(bytes: &[u8], out: &mut Vec<Neighbour>) -> io::Result<bool> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {what}"));
    let mut off = 0;
    while off < bytes.len() {
        let (Some(len), Some(ty)) = (u32_at(bytes, off), u16_at(bytes, off + 4)) else {
            return Err(bad("truncated message header"));
        };
        let len = len as usize;
        if len < NLMSG_HDR_LEN || bytes.len() - off < len {
            return Err(bad("message length out of range"));
        }
        let body = &bytes[off + NLMSG_HDR_LEN..off + len];
        match ty {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(body, 0).ok_or_else(|| bad("truncated error"))? as i32;
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(-errno));
                }
            }
            RTM_NEWNEIGH => {
                if let Some(n) = parse_neighbour(body) {
                    out.push(n);
                }
            }
            _ => {}
        }
        off += align4(len).min(bytes.len() - off);
    }
    Ok(false)
}

/// One `ndmsg` and its attributes; None for entries without a usable MAC.
fn parse_neighbour(body: &[u8]) -> Option<Neighbour> {
    let family = *body.first()? as i32;
    let state = u16_at(body, 8)?;
    if state == 0 || state & (NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP) != 0 {
        return None;
    }
    let (mut ip, mut mac) = (None, None);
    let mut at = NDMSG_LEN;
    while at + 4 <= body.len() {
        let len = u16_at(body, at)? as usize;
        let ty = u16_at(body, at + 2)? & NLA_TYPE_MASK;
        if len < 4 || at + len > body.len() {
            return None;
        }
        let data = &body[at + 4..at + len];
        match (ty, data.len()) {
            (NDA_DST, 4) if family == libc::AF_INET => {
                ip = Some(IpAddr::from(<[u8; 4]>::try_from(data).ok()?))
            }
            (NDA_DST, 16) if family == libc::AF_INET6 => {
                ip = Some(IpAddr::from(<[u8; 16]>::try_from(data).ok()?))
            }
            (NDA_LLADDR, 6) => mac = Some(<[u8; 6]>::try_from(data).ok()?),
            _ => {}
        }
        at += align4(len);
    }
    let (ip, mac) = (ip?, mac?);
    (!ip.is_multicast() && mac != [0; 6]).then_some((ip, mac))
}

/// Asks the kernel for its whole neighbour table (IPv4 and IPv6).
#[cfg(target_os = "linux")]
pub fn dump_kernel() -> io::Result<Vec<Neighbour>> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // A kernel that never finishes the dump must not wedge the refresher.
    let timeout = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: setsockopt reads a timeval of the size we pass.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    // SAFETY: an all-zero sockaddr_nl is valid; pid 0 addresses the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    let req = request(1);
    // SAFETY: req and kernel outlive the call; lengths are theirs.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            req.as_ptr().cast(),
            req.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    // Big enough for any one dump datagram (the kernel sends at most 32 KiB).
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Vec::new();
    loop {
        // SAFETY: recv writes at most buf.len() bytes into buf.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "netlink: socket closed before the dump ended",
            ));
        }
        if parse_dump(&buf[..n as usize], &mut out)? {
            return Ok(out);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn dump_kernel() -> io::Result<Vec<Neighbour>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "rtnetlink is Linux only",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump recorded from this machine's kernel (x86_64, little-endian
    /// like the Raspberry Pi) in a scratch network namespace holding: IPv4
    /// 192.168.7.22 STALE, IPv6 fe80::21 REACHABLE and fd00:1::20 PERMANENT
    /// with MACs, fd00:1::23 FAILED without one, and the kernel's own
    /// multicast (NOARP) entries. The namespace was made with `unshare -n`,
    /// a veth pair and `ip neigh add`; the bytes are every reply datagram.
    const RECORDED: &[u8] = include_bytes!("testdata/neigh-dump.bin");

    fn mac(last: u8) -> [u8; 6] {
        [0x02, 0x00, 0x5e, 0x00, 0x00, last]
    }

    #[test]
    fn a_recorded_kernel_dump_parses_to_its_neighbours() {
        let mut out = Vec::new();
        assert!(
            parse_dump(RECORDED, &mut out).unwrap(),
            "NLMSG_DONE is seen"
        );
        out.sort();
        let want: Vec<Neighbour> = vec![
            ("192.168.7.22".parse().unwrap(), mac(0x22)),
            ("fd00:1::20".parse().unwrap(), mac(0x20)),
            ("fe80::21".parse().unwrap(), mac(0x21)),
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn cut_or_damaged_dumps_are_errors_not_panics() {
        for cut in 0..RECORDED.len() {
            let mut out = Vec::new();
            // Cut on a message boundary: fine, not done; inside one: an error.
            if let Ok(done) = parse_dump(&RECORDED[..cut], &mut out) {
                assert!(!done, "cut at {cut}");
            }
        }
        let mut bad = RECORDED.to_vec();
        bad[0..4].copy_from_slice(&9999u32.to_ne_bytes());
        assert!(parse_dump(&bad, &mut Vec::new()).is_err());
        // An NLMSG_ERROR carrying -EPERM becomes that error.
        let mut err = request(1).to_vec();
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        let e = parse_dump(&err, &mut Vec::new()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn a_mac_group_finds_its_ipv6_neighbour() {
        use crate::config::{ClientGroup, FilterConfig};
        let mut out = Vec::new();
        parse_dump(RECORDED, &mut out).unwrap();
        let cfg = FilterConfig {
            groups: vec![ClientGroup {
                name: "tv".into(),
                clients: vec!["02:00:5e:00:00:21".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let groups = super::super::groups::Groups::new(&cfg).unwrap();
        let map = groups.client_map(&out);
        let tv = groups.mask_of("tv").unwrap();
        assert_eq!(map.groups_of("fe80::21".parse().unwrap()), tv);
        assert_ne!(map.groups_of("fd00:1::20".parse().unwrap()), tv);
    }

    /// The live kernel: the dump must finish and hold every complete IPv4
    /// entry /proc/net/arp shows, with the same MAC.
    #[test]
    fn the_running_kernel_dump_agrees_with_proc_net_arp() {
        let arp = read_arp(Path::new("/proc/net/arp")).unwrap();
        let dump = dump_kernel().expect("rtnetlink neighbour dump on this machine");
        for (ip, mac) in &arp {
            assert!(
                dump.iter().any(|(i, m)| i == ip && m == mac),
                "{ip} {mac:02x?} from /proc/net/arp is missing from the dump {dump:?}"
            );
        }
        assert!(
            dump.iter()
                .all(|(ip, mac)| !ip.is_multicast() && *mac != [0; 6])
        );
        let both = read(Path::new("/proc/net/arp")).unwrap();
        assert!(
            both.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
    }
}
