//! The appliance's network and clock settings, kept in
//! `<data_dir>/network.conf`: a `key=value` file the firmware's network
//! helper reads at boot (format in docs/web.md). Chosen at setup, changed on
//! the System page, removed by a factory reset.
//! Not for: configuring interfaces (the firmware does that at boot).

use super::http::{FieldError, field_err};
use crate::config::Cidr;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::Path;

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
        crate::atomic_file::save_atomic(&path, self.to_conf().as_bytes())
            .map_err(|e| format!("saving {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
