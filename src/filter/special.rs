//! Names and addresses with fixed meanings: the Firefox DoH canary, iCloud
//! Private Relay, and the private address ranges DNS-rebinding protection
//! refuses in public answers (as dnsmasq's `stop-dns-rebind`).

use std::net::IpAddr;

/// Special rule ids, as stored in `Reason::id` with kind 4.
pub const DOH_CANARY: u32 = 0;
pub const ICLOUD_RELAY: u32 = 1;

pub const DOH_CANARY_NAMES: &[&str] = &["use-application-dns.net"];
pub const ICLOUD_RELAY_NAMES: &[&str] = &["mask.icloud.com", "mask-h2.icloud.com"];

pub fn describe(id: u32) -> &'static str {
    match id {
        DOH_CANARY => "Firefox DoH canary (use-application-dns.net)",
        ICLOUD_RELAY => "iCloud Private Relay (mask.icloud.com)",
        _ => "special name",
    }
}

/// Suffixes that are private by definition: answers for them may carry
/// private addresses.
pub const LOCAL_SUFFIXES: &[&str] = &[
    "lan",
    "local",
    "home.arpa",
    "internal",
    "localdomain",
    "localhost",
    "home",
    "in-addr.arpa",
    "ip6.arpa",
];

/// Addresses a public name must not resolve to: unspecified, loopback,
/// RFC 1918, CGNAT, link-local, ULA (and their IPv4-mapped forms).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 0
                || o[0] == 10
                || o[0] == 127
                || (o[0] == 100 && (o[1] & 0xC0) == 64)
                || (o[0] == 169 && o[1] == 254)
                || (o[0] == 172 && (o[1] & 0xF0) == 16)
                || (o[0] == 192 && o[1] == 168)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_unspecified()
                || v6.is_loopback()
                || (s[0] & 0xFFC0) == 0xFE80
                || (s[0] & 0xFE00) == 0xFC00
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        for p in [
            "10.1.2.3",
            "127.0.0.1",
            "192.168.0.1",
            "172.20.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:192.168.1.1",
        ] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2001:db8::1",
            "::ffff:1.1.1.1",
        ] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }
}
