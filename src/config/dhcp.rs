//! The `[dhcp]` section: the DHCPv4 server the box can run for a
//! household whose router cannot hand out another DNS server. Off by
//! default; when on, every address it hands out is checked here against
//! the subnet (`netmask` around `gateway`) so a typo is an error naming the
//! key, not a network that half works.
//!
//! Not for: serving leases (see `dhcp`) or the box's own address (read
//! from the interface when the server starts).

use super::values::{Dur, parse_mac};
use crate::syntax::DomainName;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct DhcpConfig {
    pub enabled: bool,
    /// The LAN interface served (the server binds to it alone).
    pub interface: String,
    /// First and last address handed out to clients without a static lease.
    pub range: Option<[Ipv4Addr; 2]>,
    pub netmask: Ipv4Addr,
    /// The router handed out (option 3); never leased.
    pub gateway: Option<Ipv4Addr>,
    pub lease_time: Dur,
    /// Clients' names answer as `NAME.DOMAIN`.
    pub domain: DomainName,
    #[serde(rename = "static")]
    pub statics: Vec<StaticLease>,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        DhcpConfig {
            enabled: false,
            interface: "eth0".into(),
            range: None,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: None,
            lease_time: Dur(Duration::from_secs(12 * 3600)),
            domain: DomainName("lan".into()),
            statics: Vec::new(),
        }
    }
}

/// The shortest lease: clients renew at half of it.
const MIN_LEASE: Duration = Duration::from_secs(60);
/// The longest range: the pool keeps a few bytes per address.
const MAX_RANGE: u32 = 65_536;

/// One `[[dhcp.static]]` entry: this MAC always gets this address and name.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "StaticLeaseText")]
pub struct StaticLease {
    pub mac: Mac,
    pub ip: Ipv4Addr,
    /// A DNS label (`tv`), answered as `tv.DOMAIN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct StaticLeaseText {
    mac: String,
    ip: String,
    #[serde(default)]
    name: Option<String>,
}

impl TryFrom<StaticLeaseText> for StaticLease {
    type Error = String;
    fn try_from(s: StaticLeaseText) -> Result<StaticLease, String> {
        let at = format!("dhcp.static '{}'", s.mac);
        let mac = s.mac.parse().map_err(|e| format!("{at}: mac: {e}"))?;
        let ip =
            s.ip.trim()
                .parse()
                .map_err(|_| format!("{at}: ip: '{}' is not an IPv4 address", s.ip))?;
        let name = match s.name {
            Some(n) => Some(check_label(&n).map_err(|e| format!("{at}: name: {e}"))?),
            None => None,
        };
        Ok(StaticLease { mac, ip, name })
    }
}

/// A hardware (Ethernet) address, written `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        parse_mac(s.trim())
            .map(Mac)
            .ok_or_else(|| format!("'{s}' is not a MAC address like aa:bb:cc:dd:ee:ff"))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A device name as one DNS label: lower-case letters, digits and `-`,
/// not starting or ending with `-`, at most 63 characters.
pub fn check_label(name: &str) -> Result<String, String> {
    let n = name.trim().to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 63
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-');
    match ok {
        true => Ok(n),
        false => Err(format!(
            "'{name}' is not a device name (letters, digits and '-', up to 63, like living-room-tv)"
        )),
    }
}

impl DhcpConfig {
    /// The checks the types cannot express; run whether or not the
    /// server is on, so a saved section is always usable.
    pub fn validate(&self) -> Result<(), String> {
        let mask = u32::from(self.netmask);
        if mask.leading_ones() + mask.trailing_zeros() != 32 || mask == 0 {
            return Err(format!(
                "dhcp.netmask: '{}' is not a netmask like 255.255.255.0",
                self.netmask
            ));
        }
        if self.lease_time.0 < MIN_LEASE {
            return Err("dhcp.lease_time: must be at least 1m".into());
        }
        if self.enabled && self.interface.trim().is_empty() {
            return Err("dhcp.interface: needed when dhcp.enabled (like \"eth0\")".into());
        }
        let Some(gateway) = self.gateway else {
            return match self.enabled {
                true => Err("dhcp.gateway: needed when dhcp.enabled (the router's address, like \"192.168.1.1\")".into()),
                false => Ok(()),
            };
        };
        let net = u32::from(gateway) & mask;
        let inside = |ip: Ipv4Addr| u32::from(ip) & mask == net && !self.edge(ip);
        if self.edge(gateway) {
            return Err(format!(
                "dhcp.gateway: '{gateway}' is the network's or broadcast address"
            ));
        }
        match self.range {
            Some([first, last]) => {
                for (key, ip) in [("first", first), ("last", last)] {
                    if !inside(ip) {
                        return Err(format!(
                            "dhcp.range: {key} address '{ip}' is not a host of the gateway's network {}/{}",
                            Ipv4Addr::from(net),
                            mask.leading_ones()
                        ));
                    }
                }
                if first > last {
                    return Err(format!("dhcp.range: '{first}' comes after '{last}'"));
                }
                if u32::from(last) - u32::from(first) >= MAX_RANGE {
                    return Err(format!("dhcp.range: at most {MAX_RANGE} addresses"));
                }
            }
            None if self.enabled => {
                return Err(
                    "dhcp.range: needed when dhcp.enabled (like [\"192.168.1.100\", \"192.168.1.199\"])"
                        .into(),
                );
            }
            None => {}
        }
        let (mut macs, mut ips, mut names) = (Vec::new(), Vec::new(), Vec::new());
        for s in &self.statics {
            let at = format!("dhcp.static '{}'", s.mac);
            if !inside(s.ip) {
                return Err(format!(
                    "{at}: ip '{}' is not a host of the gateway's network",
                    s.ip
                ));
            }
            if s.ip == gateway {
                return Err(format!("{at}: ip '{}' is the gateway's", s.ip));
            }
            if macs.contains(&s.mac) {
                return Err(format!("{at}: this MAC has two static leases"));
            }
            if ips.contains(&s.ip) {
                return Err(format!("{at}: ip '{}' is given to two MACs", s.ip));
            }
            if let Some(n) = &s.name {
                if names.contains(&n) {
                    return Err(format!("{at}: name '{n}' is given to two MACs"));
                }
                names.push(n);
            }
            macs.push(s.mac);
            ips.push(s.ip);
        }
        Ok(())
    }

    /// The network's own and broadcast addresses.
    fn edge(&self, ip: Ipv4Addr) -> bool {
        let host = u32::from(ip) & !u32::from(self.netmask);
        host == 0 || host == !u32::from(self.netmask)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const ISSUE: &str = r#"
[dhcp]
enabled = true
interface = "eth0"
range = ["192.168.1.100", "192.168.1.199"]
netmask = "255.255.255.0"
gateway = "192.168.1.1"
lease_time = "12h"
domain = "lan"
[[dhcp.static]]
mac = "aa:bb:cc:dd:ee:ff"
ip = "192.168.1.20"
name = "tv"
"#;

    fn error(text: &str) -> String {
        Config::from_toml(text, "f.toml").unwrap_err().0
    }

    #[test]
    fn the_issue_example_reads_and_saves_back() {
        let (c, unknown) = Config::read(ISSUE, "f.toml").unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        let d = &c.dhcp;
        assert!(d.enabled);
        assert_eq!(d.range.unwrap()[1].to_string(), "192.168.1.199");
        assert_eq!(d.lease_time.0.as_secs(), 12 * 3600);
        assert_eq!(d.statics[0].mac.to_string(), "aa:bb:cc:dd:ee:ff");
        assert_eq!(d.statics[0].name.as_deref(), Some("tv"));
        assert_eq!(Config::from_toml(&c.to_toml(), "again").unwrap(), c);
    }

    #[test]
    fn off_by_default_and_the_default_needs_nothing() {
        let c = Config::default();
        assert!(!c.dhcp.enabled);
        c.validate().unwrap();
    }

    #[test]
    fn every_bad_value_names_its_key() {
        let cases = [
            (
                "netmask = \"255.255.255.0\"",
                "netmask = \"255.0.255.0\"",
                "dhcp.netmask",
            ),
            (
                "netmask = \"255.255.255.0\"",
                "netmask = \"x\"",
                "netmask = \"x\"",
            ),
            (
                "\"192.168.1.199\"]",
                "\"192.168.2.199\"]",
                "dhcp.range: last address",
            ),
            (
                "[\"192.168.1.100\", \"192.168.1.199\"]",
                "[\"192.168.1.199\", \"192.168.1.100\"]",
                "dhcp.range: '192.168.1.199' comes after",
            ),
            ("gateway = \"192.168.1.1\"\n", "", "dhcp.gateway: needed"),
            (
                "gateway = \"192.168.1.1\"",
                "gateway = \"192.168.1.255\"",
                "dhcp.gateway",
            ),
            (
                "lease_time = \"12h\"",
                "lease_time = \"10s\"",
                "dhcp.lease_time",
            ),
            (
                "lease_time = \"12h\"",
                "lease_time = \"12\"",
                "lease_time = \"12\"",
            ),
            ("domain = \"lan\"", "domain = \"a..b\"", "domain = \"a..b\""),
            ("interface = \"eth0\"", "interface = \"\"", "dhcp.interface"),
            (
                "mac = \"aa:bb:cc:dd:ee:ff\"",
                "mac = \"aa:bb\"",
                "dhcp.static 'aa:bb': mac",
            ),
            (
                "ip = \"192.168.1.20\"",
                "ip = \"192.168.1.300\"",
                "dhcp.static 'aa:bb:cc:dd:ee:ff': ip: '192.168.1.300'",
            ),
            (
                "ip = \"192.168.1.20\"",
                "ip = \"10.0.0.2\"",
                "dhcp.static 'aa:bb:cc:dd:ee:ff': ip '10.0.0.2' is not a host",
            ),
            (
                "ip = \"192.168.1.20\"",
                "ip = \"192.168.1.1\"",
                "is the gateway's",
            ),
            (
                "name = \"tv\"",
                "name = \"my tv\"",
                "dhcp.static 'aa:bb:cc:dd:ee:ff': name: 'my tv'",
            ),
        ];
        for (from, to, want) in cases {
            assert!(ISSUE.contains(from), "{from}");
            let e = error(&ISSUE.replacen(from, to, 1));
            assert!(e.contains(want), "{to}: {e}");
        }
    }

    #[test]
    fn two_static_leases_cannot_share_a_mac_an_address_or_a_name() {
        let second = "\n[[dhcp.static]]\nmac = \"MAC\"\nip = \"IP\"\nname = \"NAME\"\n";
        let add = |mac, ip, name| {
            ISSUE.to_string()
                + &second
                    .replace("MAC", mac)
                    .replace("IP", ip)
                    .replace("NAME", name)
        };
        let e = error(&add("AA:BB:CC:DD:EE:FF", "192.168.1.21", "pc"));
        assert!(e.contains("this MAC has two static leases"), "{e}");
        let e = error(&add("aa:bb:cc:dd:ee:01", "192.168.1.20", "pc"));
        assert!(e.contains("'192.168.1.20' is given to two MACs"), "{e}");
        let e = error(&add("aa:bb:cc:dd:ee:01", "192.168.1.21", "TV"));
        assert!(e.contains("name 'tv' is given to two MACs"), "{e}");
        Config::from_toml(&add("aa:bb:cc:dd:ee:01", "192.168.1.21", "pc"), "f").unwrap();
    }
}
