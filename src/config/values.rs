//! The config's value types, each parsed from one string with an error
//! that says why: durations, CIDRs, upstreams, the blocked answer, group
//! clients. They serialise back to the same string. Not for: the user's
//! rule, name and record syntax (see `syntax`), or the schema (see `config`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// A duration written as "500ms", "60s", "5m", "24h" or "7d".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("'{s}' needs a unit: ms, s, m, h or d"))?;
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("'{s}' is not a duration like 60s or 24h"))?;
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86_400),
            _ => {
                return Err(format!(
                    "'{s}': unknown unit '{unit}' (use ms, s, m, h or d)"
                ));
            }
        };
        Ok(Dur(d))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis() as u64;
        match ms {
            0 => write!(f, "0s"),
            _ if ms.is_multiple_of(86_400_000) => write!(f, "{}d", ms / 86_400_000),
            _ if ms.is_multiple_of(3_600_000) => write!(f, "{}h", ms / 3_600_000),
            _ if ms.is_multiple_of(60_000) => write!(f, "{}m", ms / 60_000),
            _ if ms.is_multiple_of(1000) => write!(f, "{}s", ms / 1000),
            _ => write!(f, "{ms}ms"),
        }
    }
}

/// A network in CIDR notation; a bare address means a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (from dual-stack sockets) as plain IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or CIDR like 192.168.0.0/16"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': prefix must be 0..={max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// How an upstream is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// "ip:port" (port defaults to 53): UDP, TCP on truncation.
    Plain(SocketAddr),
    /// "tls://ip[:853]#server-name": DNS over TLS to a bootstrap IP.
    Tls {
        addr: SocketAddr,
        server_name: String,
    },
    /// "https://host/path[#ip]": DNS over HTTPS; the bootstrap IP after '#',
    /// or a built-in one for well-known providers, so the box never needs
    /// itself to find its upstream.
    Https { url: String, bootstrap: Vec<IpAddr> },
}

impl FromStr for Upstream {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("tls://") {
            let (addr, name) = rest.split_once('#').ok_or_else(|| {
                format!("'{s}': DoT needs the server name after '#', like tls://1.1.1.1:853#cloudflare-dns.com")
            })?;
            let addr = parse_addr(addr, 853).map_err(|e| format!("'{s}': {e}"))?;
            if name.is_empty() {
                return Err(format!("'{s}': empty server name after '#'"));
            }
            return Ok(Upstream::Tls {
                addr,
                server_name: name.to_string(),
            });
        }
        if s.starts_with("https://") {
            let (url, boot) = match s.split_once('#') {
                Some((u, b)) => (u, Some(b)),
                None => (s, None),
            };
            let host = url["https://".len()..]
                .split(['/', ':'])
                .next()
                .unwrap_or("");
            if host.is_empty() {
                return Err(format!("'{s}': no host in DoH URL"));
            }
            let bootstrap: Vec<IpAddr> = match boot {
                Some(b) => b
                    .split(',')
                    .map(|ip| ip.trim().parse().map_err(|_| format!("'{s}': bootstrap '{ip}' is not an IP")))
                    .collect::<Result<_, _>>()?,
                None => match host.parse::<IpAddr>() {
                    Ok(ip) => vec![ip],
                    Err(_) => well_known_bootstrap(host).ok_or_else(|| {
                        format!("'{s}': give the server's IP after '#' (https://{host}/dns-query#IP) so the box can reach it without DNS")
                    })?,
                },
            };
            return Ok(Upstream::Https {
                url: url.to_string(),
                bootstrap,
            });
        }
        if s.contains("://") {
            return Err(format!(
                "'{s}': use ip:port, tls://ip:853#name or https://host/path"
            ));
        }
        Ok(Upstream::Plain(
            parse_addr(s, 53).map_err(|e| format!("'{s}': {e}"))?,
        ))
    }
}

fn well_known_bootstrap(host: &str) -> Option<Vec<IpAddr>> {
    let ips: &[&str] = match host {
        "cloudflare-dns.com" | "one.one.one.one" => &["1.1.1.1", "1.0.0.1"],
        "dns.quad9.net" => &["9.9.9.9", "149.112.112.112"],
        "dns.google" => &["8.8.8.8", "8.8.4.4"],
        _ => return None,
    };
    Some(ips.iter().map(|s| s.parse().unwrap()).collect())
}

fn parse_addr(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip: IpAddr = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| "not an IP address with optional port".to_string())?;
    Ok(SocketAddr::new(ip, default_port))
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Plain(a) => write!(f, "{a}"),
            Upstream::Tls { addr, server_name } => write!(f, "tls://{addr}#{server_name}"),
            Upstream::Https { url, bootstrap } => {
                let ips: Vec<String> = bootstrap.iter().map(|i| i.to_string()).collect();
                write!(f, "{url}#{}", ips.join(","))
            }
        }
    }
}

/// What a blocked name answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedResponse {
    /// A 0.0.0.0 / AAAA ::, NODATA for other types.
    Null,
    Nxdomain,
    Refused,
    /// A/AAAA with this address (the other family gets NODATA).
    Ip(IpAddr),
}

impl FromStr for BlockedResponse {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "null" => BlockedResponse::Null,
            "nxdomain" => BlockedResponse::Nxdomain,
            "refused" => BlockedResponse::Refused,
            ip => BlockedResponse::Ip(ip.parse().map_err(|_| {
                format!("'{s}': use \"null\", \"nxdomain\", \"refused\" or an IP address")
            })?),
        })
    }
}

impl fmt::Display for BlockedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockedResponse::Null => f.write_str("null"),
            BlockedResponse::Nxdomain => f.write_str("nxdomain"),
            BlockedResponse::Refused => f.write_str("refused"),
            BlockedResponse::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

macro_rules! string_serde {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
string_serde!(Dur, Cidr, Upstream, BlockedResponse);

/// How a group names a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSpec {
    Ip(IpAddr),
    Net(Cidr),
    Mac([u8; 6]),
}

impl FromStr for ClientSpec {
    type Err = String;
    fn from_str(c: &str) -> Result<Self, String> {
        Ok(if let Some(mac) = parse_mac(c) {
            ClientSpec::Mac(mac)
        } else if c.contains('/') {
            ClientSpec::Net(c.parse().map_err(|e: String| format!("client {e}"))?)
        } else {
            ClientSpec::Ip(canonical_ip(c.parse().map_err(|_| {
                format!("client '{c}' is not an IP, CIDR or MAC address (aa:bb:cc:dd:ee:ff)")
            })?))
        })
    }
}

/// "aa:bb:cc:dd:ee:ff" (or with '-') as bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}
