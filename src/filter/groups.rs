//! Client groups (Pi-hole's model): clients are matched by IP, CIDR or MAC
//! address; each list and rule applies to chosen groups; a client matching no
//! group is in `default`.
//!
//! MAC addresses are resolved to IPs from the kernel's neighbour table
//! (IPv4 and IPv6, see `neighbours`), read off the data path by the
//! service; the result is
//! an immutable [`ClientMap`] inside the filter snapshot.
//! Not for: deciding what is blocked (see `Filter::check`).

use super::index::{ListMask, mask_bit, mask_or};
use crate::config::{Cidr, FilterConfig, canonical_ip};
use crate::config::{ClientSpec, DEFAULT_GROUP, parse_mac};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// Bit 0 of a group mask is the default group.
pub const DEFAULT_BIT: u64 = 1;
pub const ALL_GROUPS: u64 = u64::MAX;

/// Group names, members and the lists each group uses.
#[derive(Debug, Clone)]
pub struct Groups {
    /// Index = bit position; 0 is `default`.
    pub names: Vec<String>,
    members: Vec<(ClientSpec, u64)>,
    /// Lists applying to each group, by bit.
    lists_by_group: Vec<ListMask>,
}

impl Groups {
    /// Groups of a config that passed [`FilterConfig::check_groups`]
    /// (run here again, so an unchecked config is refused, not misread).
    pub fn new(cfg: &FilterConfig) -> anyhow::Result<Groups> {
        cfg.check_groups().map_err(anyhow::Error::msg)?;
        let mut names = vec![DEFAULT_GROUP.to_string()];
        let mut members = Vec::new();
        for g in &cfg.groups {
            let bit = match names.iter().position(|n| *n == g.name) {
                Some(bit) => bit,
                None => {
                    names.push(g.name.clone());
                    names.len() - 1
                }
            };
            for spec in g.clients.iter().filter_map(|c| c.parse().ok()) {
                members.push((spec, 1u64 << bit));
            }
        }
        let mut lists_by_group = vec![[0u64; 4]; names.len()];
        for (i, l) in cfg.lists.iter().enumerate() {
            let groups: Vec<&str> = if l.groups.is_empty() {
                vec![DEFAULT_GROUP]
            } else {
                l.groups.iter().map(String::as_str).collect()
            };
            for bit in groups
                .iter()
                .filter_map(|g| names.iter().position(|n| n == g))
            {
                lists_by_group[bit] = mask_or(&lists_by_group[bit], &mask_bit(i));
            }
        }
        Ok(Groups {
            names,
            members,
            lists_by_group,
        })
    }

    /// The bit for a group name.
    pub fn mask_of(&self, name: &str) -> Option<u64> {
        self.names.iter().position(|n| n == name).map(|i| 1 << i)
    }

    pub fn has_members(&self) -> bool {
        !self.members.is_empty()
    }

    pub fn has_macs(&self) -> bool {
        self.members
            .iter()
            .any(|(s, _)| matches!(s, ClientSpec::Mac(_)))
    }

    /// Lists applying to a client in the groups of `mask`.
    #[inline]
    pub fn lists_for(&self, mask: u64) -> ListMask {
        if mask == DEFAULT_BIT {
            return self.lists_by_group[0];
        }
        let mut out = [0u64; 4];
        let mut m = mask;
        while m != 0 {
            let bit = m.trailing_zeros() as usize;
            if let Some(l) = self.lists_by_group.get(bit) {
                out = mask_or(&out, l);
            }
            m &= m - 1;
        }
        out
    }

    pub fn names_of(&self, mask: u64) -> Vec<String> {
        (0..self.names.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| self.names[i].clone())
            .collect()
    }

    /// Resolves members against the neighbour table into a lookup map.
    pub fn client_map(&self, neighbours: &[(IpAddr, [u8; 6])]) -> ClientMap {
        let mut ips: HashMap<IpAddr, u64> = HashMap::new();
        let mut nets = Vec::new();
        for (spec, bit) in &self.members {
            match spec {
                ClientSpec::Ip(ip) => *ips.entry(*ip).or_default() |= bit,
                ClientSpec::Net(c) => nets.push((*c, *bit)),
                ClientSpec::Mac(mac) => {
                    for (ip, m) in neighbours {
                        if m == mac {
                            *ips.entry(canonical_ip(*ip)).or_default() |= bit;
                        }
                    }
                }
            }
        }
        ClientMap { ips, nets }
    }
}

/// IP -> group mask, with MACs already resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientMap {
    ips: HashMap<IpAddr, u64>,
    nets: Vec<(Cidr, u64)>,
}

impl ClientMap {
    /// The groups of a client; `default` when it matches none.
    #[inline]
    pub fn groups_of(&self, client: IpAddr) -> u64 {
        let ip = canonical_ip(client);
        let mut mask = self.ips.get(&ip).copied().unwrap_or(0);
        for (net, bit) in &self.nets {
            if net.contains(ip) {
                mask |= bit;
            }
        }
        if mask == 0 { DEFAULT_BIT } else { mask }
    }
}

/// Reads a neighbour table in `/proc/net/arp` form:
/// `IP address  HW type  Flags  HW address  Mask  Device`. Incomplete
/// entries (flags 0x0, all-zero MAC) are skipped.
pub fn read_neighbours(path: &Path) -> std::io::Result<Vec<(IpAddr, [u8; 6])>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_ascii_whitespace().collect();
        if cols.len() < 4 {
            continue;
        }
        let (Ok(ip), Some(mac)) = (cols[0].parse::<IpAddr>(), parse_mac(cols[3])) else {
            continue;
        };
        if mac == [0; 6] || cols[2] == "0x0" {
            continue;
        }
        out.push((ip, mac));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientGroup, FilterList};

    fn cfg() -> FilterConfig {
        let list = |name: &str, groups: &[&str]| FilterList {
            name: name.into(),
            path: Some("/x".into()),
            url: None,
            enabled: true,
            match_mode: None,
            groups: groups.iter().map(|s| s.to_string()).collect(),
        };
        FilterConfig {
            lists: vec![
                list("a", &[]),
                list("b", &["kids"]),
                list("c", &["default", "kids"]),
            ],
            groups: vec![ClientGroup {
                name: "kids".into(),
                clients: vec![
                    "192.168.1.50".into(),
                    "10.9.0.0/16".into(),
                    "AA:bb:cc:dd:ee:01".into(),
                ],
                ..ClientGroup::default()
            }],
            ..FilterConfig::default()
        }
    }

    #[test]
    fn members_and_lists() {
        let g = Groups::new(&cfg()).unwrap();
        let map = g.client_map(&[(
            "192.168.1.77".parse().unwrap(),
            [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 1],
        )]);
        let kids = g.mask_of("kids").unwrap();
        assert_eq!(map.groups_of("192.168.1.50".parse().unwrap()), kids);
        assert_eq!(map.groups_of("10.9.3.3".parse().unwrap()), kids);
        assert_eq!(map.groups_of("192.168.1.77".parse().unwrap()), kids);
        assert_eq!(map.groups_of("::ffff:192.168.1.77".parse().unwrap()), kids);
        assert_eq!(map.groups_of("192.168.1.2".parse().unwrap()), DEFAULT_BIT);
        assert_eq!(
            g.lists_for(DEFAULT_BIT),
            mask_or(&mask_bit(0), &mask_bit(2))
        );
        assert_eq!(g.lists_for(kids), mask_or(&mask_bit(1), &mask_bit(2)));
    }

    #[test]
    fn unknown_group_is_named() {
        let mut c = cfg();
        c.lists[1].groups = vec!["kid".into()];
        let e = Groups::new(&c).unwrap_err().to_string();
        assert!(e.contains("'b'") && e.contains("'kid'"), "{e}");
    }

    #[test]
    fn arp_table_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("arp");
        std::fs::write(
            &p,
            "IP address       HW type     Flags       HW address            Mask     Device\n\
             192.168.1.77     0x1         0x2         aa:bb:cc:dd:ee:01     *        eth0\n\
             192.168.1.78     0x1         0x0         00:00:00:00:00:00     *        eth0\n",
        )
        .unwrap();
        let n = read_neighbours(&p).unwrap();
        assert_eq!(
            n,
            vec![(
                "192.168.1.77".parse().unwrap(),
                [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 1]
            )]
        );
    }
}
