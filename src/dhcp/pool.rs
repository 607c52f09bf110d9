//! Which address a client gets: the DHCP server's decisions, without
//! sockets or clocks (time comes in as Unix seconds), so every rule is
//! a unit test.
//!
//! A client keeps its address: its lease record stays after it expires,
//! and that address goes to another client only when the range has no
//! address that was never leased. Static leases (by MAC) always give
//! their address, to their MAC only. The box's own address and the
//! gateway are never leased; an address a client declined (someone else
//! answers ARP for it) rests for [`DECLINE_REST`].
//!
//! Not for: the wire format or replies (see `dhcp::server`), or saving
//! leases (see `dhcp::store`).

use crate::config::{DhcpConfig, Mac};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// How long an offered address is held for the client's REQUEST.
pub const OFFER_HOLD: u64 = 60;
/// How long a declined address is left alone.
pub const DECLINE_REST: u64 = 600;

/// One client's lease; kept after it expires so the client gets the same
/// address back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: Ipv4Addr,
    /// Unix seconds; in the past once expired or released.
    pub expires: u64,
    /// The client's host name (option 12) as a DNS label.
    pub name: Option<String>,
}

/// A static lease from the config.
#[derive(Debug, Clone)]
struct Fixed {
    ip: Ipv4Addr,
    name: Option<String>,
}

/// Why a REQUEST is refused (the server answers DHCPNAK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nak(pub &'static str);

pub struct Pool {
    first: u32,
    last: u32,
    mask: u32,
    net: u32,
    reserved: Vec<Ipv4Addr>,
    fixed: HashMap<Mac, Fixed>,
    fixed_ips: HashMap<Ipv4Addr, Mac>,
    leases: HashMap<Mac, Lease>,
    by_ip: HashMap<Ipv4Addr, Mac>,
    declined: HashMap<Ipv4Addr, u64>,
}

impl Pool {
    /// The pool of a checked, enabled config; `own` is the box's address
    /// on the interface (never leased).
    pub fn new(cfg: &DhcpConfig, own: Ipv4Addr) -> Pool {
        let [first, last] = cfg.range.expect("an enabled [dhcp] has a range");
        let mask = u32::from(cfg.netmask);
        let mut reserved = vec![own];
        reserved.extend(cfg.gateway);
        let fixed: HashMap<Mac, Fixed> = cfg
            .statics
            .iter()
            .map(|s| {
                let f = Fixed {
                    ip: s.ip,
                    name: s.name.clone(),
                };
                (s.mac, f)
            })
            .collect();
        Pool {
            first: first.into(),
            last: last.into(),
            mask,
            net: u32::from(first) & mask,
            reserved,
            fixed_ips: fixed.iter().map(|(m, f)| (f.ip, *m)).collect(),
            fixed,
            leases: HashMap::new(),
            by_ip: HashMap::new(),
            declined: HashMap::new(),
        }
    }

    /// Takes back saved leases, except those this config no longer allows
    /// (range changed, address now static or reserved).
    pub fn restore(&mut self, saved: impl IntoIterator<Item = (Mac, Lease)>) {
        for (mac, lease) in saved {
            let ip = lease.ip;
            if !self.fixed.contains_key(&mac) && self.leasable(ip) && !self.by_ip.contains_key(&ip)
            {
                self.by_ip.insert(ip, mac);
                self.leases.insert(mac, lease);
            }
        }
    }

    /// The address offered to `mac` (DISCOVER), held for [`OFFER_HOLD`];
    /// None when every address is leased.
    pub fn offer(&mut self, mac: Mac, requested: Option<Ipv4Addr>, now: u64) -> Option<Ipv4Addr> {
        let ip = self.choose(mac, requested, now)?;
        if !self.fixed.contains_key(&mac) {
            let expires = match self.leases.get(&mac) {
                Some(l) if l.ip == ip => l.expires.max(now + OFFER_HOLD),
                _ => now + OFFER_HOLD,
            };
            let name = self.leases.get(&mac).and_then(|l| l.name.clone());
            self.put(mac, Lease { ip, expires, name });
        }
        Some(ip)
    }

    /// Leases `ip` to `mac` until `now + secs` (REQUEST), or says why not.
    /// A static lease's name wins over the client's own.
    pub fn ack(
        &mut self,
        mac: Mac,
        ip: Ipv4Addr,
        name: Option<String>,
        secs: u64,
        now: u64,
    ) -> Result<Lease, Nak> {
        if let Some(f) = self.fixed.get(&mac) {
            if f.ip != ip {
                return Err(Nak("this client has a static lease on another address"));
            }
            let lease = Lease {
                ip,
                expires: now + secs,
                name: f.name.clone().or(name),
            };
            // A static lease's current term is a record like any other.
            self.leases.insert(mac, lease.clone());
            return Ok(lease);
        }
        if !self.allowed(mac, ip, now) {
            return Err(Nak(if self.in_subnet(ip) {
                "address not available"
            } else {
                "address not on this network"
            }));
        }
        let lease = Lease {
            ip,
            expires: now + secs,
            name: name.or_else(|| self.leases.get(&mac).and_then(|l| l.name.clone())),
        };
        self.put(mac, lease.clone());
        Ok(lease)
    }

    /// The client gave its address back (RELEASE): free now, still its own
    /// next time.
    pub fn release(&mut self, mac: Mac, ip: Ipv4Addr, now: u64) -> bool {
        match self.leases.get_mut(&mac) {
            Some(l) if l.ip == ip && l.expires > now => {
                l.expires = now;
                true
            }
            _ => false,
        }
    }

    /// The client found `ip` in use by someone else (DECLINE).
    pub fn decline(&mut self, mac: Mac, ip: Ipv4Addr, now: u64) -> bool {
        if self.leases.get(&mac).is_none_or(|l| l.ip != ip) || self.fixed.contains_key(&mac) {
            return false;
        }
        self.leases.remove(&mac);
        self.by_ip.remove(&ip);
        self.declined.insert(ip, now + DECLINE_REST);
        true
    }

    /// Every lease record, static ones' current terms included.
    pub fn leases(&self) -> impl Iterator<Item = (&Mac, &Lease)> {
        self.leases.iter()
    }

    /// The static leases: MAC, address, name.
    pub fn statics(&self) -> impl Iterator<Item = (&Mac, Ipv4Addr, Option<&str>)> {
        self.fixed.iter().map(|(m, f)| (m, f.ip, f.name.as_deref()))
    }

    fn put(&mut self, mac: Mac, lease: Lease) {
        if let Some(old) = self.leases.get(&mac)
            && old.ip != lease.ip
        {
            self.by_ip.remove(&old.ip);
        }
        // An expired lease of another client on this address ends here.
        if let Some(other) = self.by_ip.insert(lease.ip, mac)
            && other != mac
        {
            self.leases.remove(&other);
        }
        self.leases.insert(mac, lease);
    }

    fn choose(&self, mac: Mac, requested: Option<Ipv4Addr>, now: u64) -> Option<Ipv4Addr> {
        if let Some(f) = self.fixed.get(&mac) {
            return Some(f.ip);
        }
        if let Some(l) = self.leases.get(&mac)
            && self.allowed(mac, l.ip, now)
        {
            return Some(l.ip);
        }
        let untouched = |ip: Ipv4Addr| self.leasable(ip) && !self.by_ip.contains_key(&ip);
        let resting = |ip: &Ipv4Addr| self.declined.get(ip).is_some_and(|until| *until > now);
        if let Some(ip) = requested
            && untouched(ip)
            && !resting(&ip)
        {
            return Some(ip);
        }
        let fresh = (self.first..=self.last)
            .map(Ipv4Addr::from)
            .find(|ip| untouched(*ip) && !resting(ip));
        // Else the address whose lease ended longest ago.
        fresh.or_else(|| {
            self.leases
                .iter()
                .filter(|(m, l)| **m != mac && l.expires <= now && self.leasable(l.ip))
                .filter(|(m, _)| !self.fixed.contains_key(*m))
                .filter(|(_, l)| !resting(&l.ip))
                .min_by_key(|(_, l)| (l.expires, l.ip))
                .map(|(_, l)| l.ip)
        })
    }

    /// `mac` may have `ip` now: in the range, not reserved, not another's
    /// static address, not resting, and no other client's lease running.
    fn allowed(&self, mac: Mac, ip: Ipv4Addr, now: u64) -> bool {
        if !self.leasable(ip) || self.declined.get(&ip).is_some_and(|until| *until > now) {
            return false;
        }
        match self.by_ip.get(&ip) {
            Some(holder) if *holder != mac => {
                self.leases.get(holder).is_none_or(|l| l.expires <= now)
            }
            _ => true,
        }
    }

    /// In the range and neither reserved nor a static lease's.
    fn leasable(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        (self.first..=self.last).contains(&n)
            && !self.reserved.contains(&ip)
            && !self.fixed_ips.contains_key(&ip)
    }

    fn in_subnet(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask == self.net
    }
}

/// A client's host name (option 12) as one DNS label: `Living Room TV`
/// → `living-room-tv`, `pc.home` → `pc`; None when nothing usable is left.
pub fn label_from_hostname(raw: &str) -> Option<String> {
    let first = raw.split('.').next().unwrap_or("");
    let mut out = String::with_capacity(first.len());
    for c in first.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let label = out.trim_matches('-');
    let label = &label[..label.len().min(63)];
    let label = label.trim_end_matches('-');
    (!label.is_empty()).then(|| label.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const DAY: u64 = 86_400;
    const T0: u64 = 1_800_000_000;

    fn mac(n: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, n])
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// Range .10-.13; the box is .11, the gateway .1, .12 is static for mac 9.
    fn pool() -> Pool {
        let text = r#"
[dhcp]
enabled = true
range = ["192.168.7.10", "192.168.7.13"]
gateway = "192.168.7.1"
[[dhcp.static]]
mac = "02:00:00:00:00:09"
ip = "192.168.7.12"
name = "tv"
"#;
        let cfg = Config::from_toml(text, "t").unwrap();
        Pool::new(&cfg.dhcp, ip("192.168.7.11"))
    }

    #[test]
    fn the_box_the_gateway_and_others_static_addresses_are_never_offered() {
        let mut p = pool();
        assert_eq!(p.offer(mac(1), None, T0), Some(ip("192.168.7.10")));
        assert_eq!(p.offer(mac(2), None, T0), Some(ip("192.168.7.13")));
        assert_eq!(p.offer(mac(3), None, T0), None, "range used up");
        let mut p = pool();
        for wanted in ["192.168.7.11", "192.168.7.12", "192.168.7.1"] {
            assert_eq!(
                p.offer(mac(1), Some(ip(wanted)), T0),
                Some(ip("192.168.7.10"))
            );
            assert!(
                p.ack(mac(2), ip(wanted), None, DAY, T0).is_err(),
                "{wanted}"
            );
        }
    }

    #[test]
    fn a_requested_free_address_is_honoured() {
        let mut p = pool();
        assert_eq!(
            p.offer(mac(1), Some(ip("192.168.7.13")), T0),
            Some(ip("192.168.7.13"))
        );
        assert_eq!(
            p.offer(mac(1), None, T0),
            Some(ip("192.168.7.13")),
            "held for it"
        );
        assert_eq!(
            p.offer(mac(2), Some(ip("192.168.7.13")), T0),
            Some(ip("192.168.7.10"))
        );
    }

    #[test]
    fn a_static_lease_gives_its_address_and_name_to_its_mac_only() {
        let mut p = pool();
        assert_eq!(p.offer(mac(9), None, T0), Some(ip("192.168.7.12")));
        let l = p
            .ack(
                mac(9),
                ip("192.168.7.12"),
                Some("android-1".into()),
                DAY,
                T0,
            )
            .unwrap();
        assert_eq!(l.name.as_deref(), Some("tv"));
        assert_eq!(
            p.ack(mac(9), ip("192.168.7.10"), None, DAY, T0),
            Err(Nak("this client has a static lease on another address"))
        );
    }

    #[test]
    fn a_client_keeps_its_address_after_expiry_while_others_are_free() {
        let mut p = pool();
        let a = p.offer(mac(1), None, T0).unwrap();
        p.ack(mac(1), a, None, DAY, T0).unwrap();
        assert!(p.release(mac(1), a, T0 + 10));
        // Another client comes while the first is away: it gets the other one.
        let b = p.offer(mac(2), None, T0 + 20).unwrap();
        assert_ne!(a, b);
        p.ack(mac(2), b, None, DAY, T0 + 20).unwrap();
        assert_eq!(p.offer(mac(1), None, T0 + 30), Some(a));
        // Range full of running leases: a third client waits.
        p.ack(mac(1), a, None, DAY, T0 + 30).unwrap();
        assert_eq!(p.offer(mac(3), None, T0 + 40), None);
        // Once the second lease has run out (the first still runs), the
        // third client takes its address.
        let later = T0 + 25 + DAY;
        assert_eq!(p.offer(mac(3), None, later), Some(b));
        assert!(p.ack(mac(2), b, None, DAY, later).is_err());
        assert!(p.ack(mac(3), a, None, DAY, later).is_err());
    }

    #[test]
    fn a_running_lease_is_not_given_to_another_client() {
        let mut p = pool();
        p.ack(mac(1), ip("192.168.7.13"), None, DAY, T0).unwrap();
        assert_eq!(
            p.ack(mac(2), ip("192.168.7.13"), None, DAY, T0 + 5),
            Err(Nak("address not available"))
        );
        assert_eq!(
            p.ack(mac(2), ip("10.0.0.5"), None, DAY, T0 + 5),
            Err(Nak("address not on this network"))
        );
        // Renewing keeps it and moves the end.
        let l = p
            .ack(mac(1), ip("192.168.7.13"), None, DAY, T0 + 100)
            .unwrap();
        assert_eq!(l.expires, T0 + 100 + DAY);
    }

    #[test]
    fn a_declined_address_rests() {
        let mut p = pool();
        let a = p.offer(mac(1), None, T0).unwrap();
        p.ack(mac(1), a, None, DAY, T0).unwrap();
        assert!(p.decline(mac(1), a, T0 + 1));
        assert_ne!(p.offer(mac(1), None, T0 + 2), Some(a));
        assert!(p.ack(mac(2), a, None, DAY, T0 + 2).is_err());
        assert!(p.ack(mac(2), a, None, DAY, T0 + 2 + DECLINE_REST).is_ok());
    }

    #[test]
    fn restored_leases_come_back_unless_the_config_now_forbids_them() {
        let mut p = pool();
        let saved = [
            (mac(1), ip("192.168.7.13")),
            (mac(2), ip("192.168.7.12")), // now mac 9's static address
            (mac(3), ip("192.168.7.50")), // out of the range now
        ]
        .map(|(m, a)| {
            let l = Lease {
                ip: a,
                expires: T0 + DAY,
                name: Some("pc".into()),
            };
            (m, l)
        });
        p.restore(saved);
        assert_eq!(p.leases().count(), 1);
        assert_eq!(p.offer(mac(1), None, T0), Some(ip("192.168.7.13")));
        assert_eq!(p.offer(mac(2), None, T0), Some(ip("192.168.7.10")));
    }

    #[test]
    fn host_names_become_dns_labels() {
        assert_eq!(
            label_from_hostname("Living Room TV").as_deref(),
            Some("living-room-tv")
        );
        assert_eq!(label_from_hostname("pc.home.arpa").as_deref(), Some("pc"));
        assert_eq!(label_from_hostname("--Ünï__x--").as_deref(), Some("n-x"));
        assert_eq!(label_from_hostname("..."), None);
        assert_eq!(label_from_hostname(&"a".repeat(80)).unwrap().len(), 63);
    }
}
