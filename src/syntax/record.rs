//! Local record values (`[[local.records]]`, the API's record form): the
//! record type and its value checked against that type once, kept as the
//! text the user wrote plus the RDATA wire bytes the DNS answer carries.
//!
//! Value syntax by type: A "192.168.1.10"; AAAA "fd00::10"; CNAME and PTR a
//! name; TXT any text up to 1000 characters; MX "10 mail.lan"; SRV
//! "priority weight port target". Not for: answering queries (see
//! `dns::local`).

use super::domain::DomainName;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
pub enum RecordType {
    A,
    AAAA,
    CNAME,
    PTR,
    TXT,
    MX,
    SRV,
}

impl RecordType {
    pub fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::CNAME => 5,
            RecordType::PTR => 12,
            RecordType::MX => 15,
            RecordType::TXT => 16,
            RecordType::AAAA => 28,
            RecordType::SRV => 33,
        }
    }
}

/// A record's value: the text as written and its RDATA in wire form.
/// Equal when the text is equal (the wire form follows from it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rdata {
    rtype: RecordType,
    text: String,
    wire: Box<[u8]>,
}

impl Rdata {
    /// Checks `value` as a value of `rtype`, or says what is wrong with it.
    pub fn parse(rtype: RecordType, value: &str) -> Result<Rdata, String> {
        let wire = rdata_wire(rtype, value)?;
        Ok(Rdata {
            rtype,
            text: value.to_string(),
            wire: wire.into(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// RDATA as it goes into an answer.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The address of an A or AAAA value.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.rtype {
            RecordType::A => <[u8; 4]>::try_from(&*self.wire).ok().map(IpAddr::from),
            RecordType::AAAA => <[u8; 16]>::try_from(&*self.wire).ok().map(IpAddr::from),
            _ => None,
        }
    }
}

impl std::ops::Deref for Rdata {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Rdata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Rdata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

fn rdata_wire(rtype: RecordType, value: &str) -> Result<Vec<u8>, String> {
    let v = value.trim();
    // "." is the root: a null MX (RFC 7505) or an SRV "no service" target.
    let name = |s: &str| match s {
        "." => Ok(vec![0]),
        _ => s
            .parse::<DomainName>()
            .map(|n| n.to_wire())
            .map_err(|_| format!("'{s}' is not a domain name")),
    };
    let num = |s: Option<&str>, what: &str| -> Result<u16, String> {
        s.and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("'{v}': {what} must be a number 0-65535"))
    };
    match rtype {
        RecordType::A => v
            .parse::<Ipv4Addr>()
            .map(|ip| ip.octets().to_vec())
            .map_err(|_| format!("'{v}' is not an IPv4 address")),
        RecordType::AAAA => v
            .parse::<Ipv6Addr>()
            .map(|ip| ip.octets().to_vec())
            .map_err(|_| format!("'{v}' is not an IPv6 address")),
        RecordType::CNAME | RecordType::PTR => name(v),
        RecordType::TXT => {
            if v.len() > 1000 {
                return Err("TXT value over 1000 characters".into());
            }
            let mut out = Vec::with_capacity(v.len() + 4);
            for chunk in v.as_bytes().chunks(255) {
                out.push(chunk.len() as u8);
                out.extend_from_slice(chunk);
            }
            if v.is_empty() {
                out.push(0);
            }
            Ok(out)
        }
        RecordType::MX => {
            let mut it = v.split_whitespace();
            let pref = num(it.next(), "preference")?;
            let host = it
                .next()
                .ok_or_else(|| format!("'{v}': use \"10 mail.example\""))?;
            let mut out = pref.to_be_bytes().to_vec();
            out.extend(name(host)?);
            Ok(out)
        }
        RecordType::SRV => {
            let mut it = v.split_whitespace();
            let mut out = Vec::new();
            for what in ["priority", "weight", "port"] {
                out.extend_from_slice(&num(it.next(), what)?.to_be_bytes());
            }
            let target = it
                .next()
                .ok_or_else(|| format!("'{v}': use \"priority weight port target\""))?;
            out.extend(name(target)?);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_problem() {
        let e = Rdata::parse(RecordType::A, "300.1.1.1").unwrap_err();
        assert_eq!(e, "'300.1.1.1' is not an IPv4 address");
        let e = Rdata::parse(RecordType::MX, "mail.lan").unwrap_err();
        assert_eq!(e, "'mail.lan': preference must be a number 0-65535");
        let e = Rdata::parse(RecordType::CNAME, "a..b").unwrap_err();
        assert_eq!(e, "'a..b' is not a domain name");
    }

    #[test]
    fn wire_forms() {
        let srv = Rdata::parse(RecordType::SRV, "1 2 80 web.lan").unwrap();
        assert_eq!(srv.wire(), b"\x00\x01\x00\x02\x00\x50\x03web\x03lan\x00");
        let a = Rdata::parse(RecordType::A, " 192.168.1.10 ").unwrap();
        assert_eq!(a.wire(), [192, 168, 1, 10]);
        assert_eq!(a.ip(), Some("192.168.1.10".parse().unwrap()));
        assert_eq!(a.as_str(), " 192.168.1.10 ");
        let null_mx = Rdata::parse(RecordType::MX, "0 .").unwrap();
        assert_eq!(null_mx.wire(), [0, 0, 0]);
        let txt = Rdata::parse(RecordType::TXT, "").unwrap();
        assert_eq!(txt.wire(), [0]);
        let txt = Rdata::parse(RecordType::TXT, "abc").unwrap();
        assert_eq!((txt.wire().len(), txt.ip()), (4, None));
    }
}
