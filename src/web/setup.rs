//! First-boot setup: the choices offered (upstream and blocklist presets,
//! network and time zone on the appliance) and how they become a config.
//!
//! The appliance's network and time zone are written to
//! `<data_dir>/network.conf`, a `key=value` file the firmware's network
//! helper reads at boot (format in docs/web.md).

use crate::config::{Cidr, Config, FilterList, Upstream};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::Path;

pub struct UpstreamPreset {
    pub id: &'static str,
    pub label: &'static str,
    pub plain: &'static [&'static str],
    pub dot: &'static [&'static str],
    pub doh: &'static [&'static str],
}

const fn preset(
    id: &'static str,
    label: &'static str,
    plain: &'static [&'static str],
    dot: &'static [&'static str],
    doh: &'static [&'static str],
) -> UpstreamPreset {
    UpstreamPreset {
        id,
        label,
        plain,
        dot,
        doh,
    }
}

pub const UPSTREAM_PRESETS: &[UpstreamPreset] = &[
    preset(
        "cloudflare",
        "Cloudflare (1.1.1.1)",
        &["1.1.1.1:53", "1.0.0.1:53"],
        &[
            "tls://1.1.1.1:853#cloudflare-dns.com",
            "tls://1.0.0.1:853#cloudflare-dns.com",
        ],
        &["https://cloudflare-dns.com/dns-query"],
    ),
    preset(
        "quad9",
        "Quad9 (9.9.9.9, malware blocking)",
        &["9.9.9.9:53", "149.112.112.112:53"],
        &[
            "tls://9.9.9.9:853#dns.quad9.net",
            "tls://149.112.112.112:853#dns.quad9.net",
        ],
        &["https://dns.quad9.net/dns-query"],
    ),
    preset(
        "google",
        "Google (8.8.8.8)",
        &["8.8.8.8:53", "8.8.4.4:53"],
        &[
            "tls://8.8.8.8:853#dns.google",
            "tls://8.8.4.4:853#dns.google",
        ],
        &["https://dns.google/dns-query"],
    ),
];

/// (id, label, url)
pub const BLOCKLIST_PRESETS: &[(&str, &str, &str)] = &[
    (
        "stevenblack",
        "StevenBlack unified hosts (ads + malware)",
        "https://raw.githubusercontent.com/StevenBlack/hosts/master/hosts",
    ),
    (
        "oisd-small",
        "OISD small",
        "https://small.oisd.nl/domainswild",
    ),
    ("oisd-big", "OISD big", "https://big.oisd.nl/domainswild"),
    (
        "hagezi-light",
        "HaGeZi Multi LIGHT",
        "https://raw.githubusercontent.com/hagezi/dns-blocklists/main/wildcard/light-onlydomains.txt",
    ),
    (
        "hagezi-pro",
        "HaGeZi Multi PRO",
        "https://raw.githubusercontent.com/hagezi/dns-blocklists/main/wildcard/pro-onlydomains.txt",
    ),
    (
        "adguard-dns",
        "AdGuard DNS filter",
        "https://adguardteam.github.io/HostlistsRegistry/assets/filter_1.txt",
    ),
];

/// A field-named error: (field, message).
pub type FieldError = (String, String);

fn field_err(field: &str, msg: impl Into<String>) -> FieldError {
    (field.to_string(), msg.into())
}

/// The upstreams a preset and protocol stand for, or the custom lines.
pub fn upstreams(
    preset: &str,
    protocol: &str,
    custom: &[String],
) -> Result<Vec<Upstream>, FieldError> {
    if preset == "custom" {
        if custom.is_empty() {
            return Err(field_err("custom_upstreams", "give at least one upstream"));
        }
        return parse_upstreams(custom, "custom_upstreams");
    }
    let Some(p) = UPSTREAM_PRESETS.iter().find(|p| p.id == preset) else {
        return Err(field_err("upstream", format!("unknown preset '{preset}'")));
    };
    let list = match protocol {
        "plain" => p.plain,
        "dot" => p.dot,
        "doh" => p.doh,
        other => {
            return Err(field_err(
                "protocol",
                format!("'{other}': choose plain, dot or doh"),
            ));
        }
    };
    Ok(list
        .iter()
        .map(|s| s.parse().expect("presets parse"))
        .collect())
}

pub fn parse_upstreams(lines: &[String], field: &str) -> Result<Vec<Upstream>, FieldError> {
    if lines.is_empty() {
        return Err(field_err(field, "at least one upstream is needed"));
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.parse()
                .map_err(|e| field_err(field, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// Adds the chosen presets as URL lists, keeping lists already there.
pub fn add_blocklists(cfg: &mut Config, ids: &[String]) -> Result<(), FieldError> {
    for id in ids {
        let Some((name, _, url)) = BLOCKLIST_PRESETS.iter().find(|p| p.0 == id) else {
            return Err(field_err("blocklists", format!("unknown blocklist '{id}'")));
        };
        if cfg.filter.lists.iter().any(|l| l.name == *name) {
            continue;
        }
        cfg.filter.lists.push(FilterList {
            name: name.to_string(),
            path: None,
            url: Some(url.to_string()),
            enabled: true,
            match_mode: None,
            groups: Vec::new(),
        });
    }
    Ok(())
}

/// The appliance's network and clock settings (`network.conf`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    /// "dhcp" or "static".
    pub mode: String,
    /// IPv4 address with prefix, e.g. 192.168.1.2/24 (static only).
    pub address: String,
    pub gateway: String,
    /// Optional static IPv6 address with prefix; empty = SLAAC.
    pub address6: String,
    pub gateway6: String,
    pub timezone: String,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            mode: "dhcp".into(),
            address: String::new(),
            gateway: String::new(),
            address6: String::new(),
            gateway6: String::new(),
            timezone: "UTC".into(),
        }
    }
}

pub const NETWORK_FILE: &str = "network.conf";

impl Network {
    pub fn validate(&self) -> Result<(), FieldError> {
        let tz_ok = !self.timezone.is_empty()
            && self.timezone.len() <= 64
            && !self.timezone.contains("..")
            && self
                .timezone
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
        if !tz_ok {
            return Err(field_err(
                "timezone",
                format!("'{}' is not a time zone like Europe/Berlin", self.timezone),
            ));
        }
        match self.mode.as_str() {
            "dhcp" => return Ok(()),
            "static" => {}
            m => return Err(field_err("mode", format!("'{m}': choose dhcp or static"))),
        }
        let addr: Cidr = self
            .address
            .parse()
            .map_err(|e: String| field_err("address", e))?;
        if !addr.addr.is_ipv4() || addr.prefix == 32 || !self.address.contains('/') {
            return Err(field_err(
                "address",
                "give an IPv4 address with its prefix, like 192.168.1.2/24",
            ));
        }
        let gw: IpAddr = self.gateway.parse().map_err(|_| {
            field_err(
                "gateway",
                format!("'{}' is not an IPv4 address", self.gateway),
            )
        })?;
        if !gw.is_ipv4() || !addr.contains(gw) {
            return Err(field_err(
                "gateway",
                format!("{gw} is not in the network {addr}"),
            ));
        }
        if !self.address6.is_empty() {
            let a6: Cidr = self
                .address6
                .parse()
                .map_err(|e: String| field_err("address6", e))?;
            if !a6.addr.is_ipv6() {
                return Err(field_err(
                    "address6",
                    "give an IPv6 address like fd00::2/64",
                ));
            }
        }
        if !self.gateway6.is_empty() {
            let g6: IpAddr = self
                .gateway6
                .parse()
                .map_err(|_| field_err("gateway6", "not an IPv6 address"))?;
            if !g6.is_ipv6() {
                return Err(field_err("gateway6", "not an IPv6 address"));
            }
        }
        Ok(())
    }

    pub fn to_conf(&self) -> String {
        format!(
            "# Written by the glory-hole web UI; read by the firmware's network helper.\n\
             mode={}\naddress={}\ngateway={}\naddress6={}\ngateway6={}\ntimezone={}\n",
            self.mode, self.address, self.gateway, self.address6, self.gateway6, self.timezone
        )
    }

    pub fn from_conf(text: &str) -> Network {
        let mut n = Network::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().to_string();
            match k.trim() {
                "mode" => n.mode = v,
                "address" => n.address = v,
                "gateway" => n.gateway = v,
                "address6" => n.address6 = v,
                "gateway6" => n.gateway6 = v,
                "timezone" => n.timezone = v,
                _ => {}
            }
        }
        n
    }

    pub fn load(data_dir: &Path) -> Network {
        std::fs::read_to_string(data_dir.join(NETWORK_FILE))
            .map(|t| Network::from_conf(&t))
            .unwrap_or_default()
    }

    pub fn save(&self, data_dir: &Path) -> Result<(), String> {
        self.validate().map_err(|(f, m)| format!("{f}: {m}"))?;
        let path = data_dir.join(NETWORK_FILE);
        crate::config::save_atomic(&path, self.to_conf().as_bytes())
            .map_err(|e| format!("saving {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses() {
        for UpstreamPreset { id, .. } in UPSTREAM_PRESETS {
            for proto in ["plain", "dot", "doh"] {
                assert!(!upstreams(id, proto, &[]).unwrap().is_empty());
            }
        }
        assert_eq!(
            upstreams("quad9", "carrier-pigeon", &[]).unwrap_err().0,
            "protocol"
        );
        assert_eq!(
            upstreams("custom", "plain", &["nonsense".into()])
                .unwrap_err()
                .0,
            "custom_upstreams"
        );
    }

    #[test]
    fn network_conf_roundtrip_and_checks() {
        let n = Network {
            mode: "static".into(),
            address: "192.168.1.2/24".into(),
            gateway: "192.168.1.1".into(),
            address6: "fd00::2/64".into(),
            gateway6: "fd00::1".into(),
            timezone: "Europe/Berlin".into(),
        };
        n.validate().unwrap();
        assert_eq!(Network::from_conf(&n.to_conf()), n);
        let bad_gw = Network {
            gateway: "10.0.0.1".into(),
            ..n.clone()
        };
        assert_eq!(bad_gw.validate().unwrap_err().0, "gateway");
        let bad_tz = Network {
            timezone: "../../etc/passwd".into(),
            ..n.clone()
        };
        assert_eq!(bad_tz.validate().unwrap_err().0, "timezone");
        let no_prefix = Network {
            address: "192.168.1.2".into(),
            ..n
        };
        assert_eq!(no_prefix.validate().unwrap_err().0, "address");
    }
}
