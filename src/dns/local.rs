//! Local authority: the user's own records, automatic PTRs for them, which
//! names go to which `[[forward]]` zone, and private names that must never
//! leak to the public upstreams (RFC 6303 reverse zones, `lan`, `home.arpa`,
//! `local`, `internal`).
//!
//! Built once per config into an immutable [`LocalZone`]; lookups walk the
//! query name's label suffixes over hash maps keyed by wire-form names.
//! Not for: blocking (filter) or caching (cache).

use crate::config::{Config, LocalRecord, RecordType};
use crate::wire::{self, Query, ResponseWriter, WireName};
use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;

/// What the local zone decided for a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// Answered (records, NODATA or NXDOMAIN) into the output buffer.
    Answered,
    /// Send to the `[[forward]]` zone with this index.
    Forward(usize),
    /// Not ours: filter, cache and the default upstreams.
    NotLocal,
}

struct Rr {
    rtype: u16,
    ttl: u32,
    rdata: Box<[u8]>,
}

/// A zone cut that changes where a name goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// `[[forward]]` zone index.
    Forward(usize),
    /// A private name: NXDOMAIN here unless a forward zone claims it.
    Private,
}

/// The user's local names, ready for lookups. Keys are lower-case
/// wire-form names; the maps are built from the config, never from queries.
#[derive(Default)]
pub struct LocalZone {
    records: HashMap<Box<[u8]>, Vec<Rr>>,
    cuts: HashMap<Box<[u8]>, Cut>,
}

/// Reverse zones of RFC 6303 and names reserved for home networks.
const PRIVATE_ZONES: &[&str] = &[
    "10.in-addr.arpa",
    "168.192.in-addr.arpa",
    "254.169.in-addr.arpa",
    "127.in-addr.arpa",
    "0.in-addr.arpa",
    "64.100.in-addr.arpa",
    "2.0.192.in-addr.arpa",
    "100.51.198.in-addr.arpa",
    "113.0.203.in-addr.arpa",
    "255.255.255.255.in-addr.arpa",
    "d.f.ip6.arpa",
    "8.e.f.ip6.arpa",
    "9.e.f.ip6.arpa",
    "a.e.f.ip6.arpa",
    "b.e.f.ip6.arpa",
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
    "lan",
    "home.arpa",
    "local",
    "internal",
    "localdomain",
];

impl LocalZone {
    pub fn new(cfg: &Config) -> Result<LocalZone, String> {
        let mut zone = LocalZone::default();
        for r in &cfg.local.records {
            zone.add(r)?;
        }
        if cfg.dns.block_private_names {
            for z in PRIVATE_ZONES {
                zone.cuts.insert(key(z)?, Cut::Private);
            }
            for second in 16..32 {
                zone.cuts
                    .insert(key(&format!("{second}.172.in-addr.arpa"))?, Cut::Private);
            }
        }
        // Forward zones override private ones with the same name.
        for (i, f) in cfg.forward.iter().enumerate() {
            for d in &f.domains {
                zone.cuts.insert(key(&d.0)?, Cut::Forward(i));
            }
        }
        Ok(zone)
    }

    fn add(&mut self, r: &LocalRecord) -> Result<(), String> {
        let owner = key(&r.name.0)?;
        let rdata = parse_rdata(r.rtype, &r.value)?;
        if matches!(r.rtype, RecordType::A | RecordType::AAAA) {
            let ip: IpAddr = r
                .value
                .trim()
                .parse()
                .map_err(|_| "not an IP".to_string())?;
            let ptr_owner = key(&reverse_name(ip))?;
            let target = wire::text_to_name(&r.name.0).ok_or("bad name")?;
            let rrs = self.records.entry(ptr_owner).or_default();
            if !rrs.iter().any(|rr| rr.rtype == wire::TYPE_PTR) {
                rrs.push(Rr {
                    rtype: wire::TYPE_PTR,
                    ttl: r.ttl,
                    rdata: target.to_vec().into(),
                });
            }
        }
        self.records.entry(owner).or_default().push(Rr {
            rtype: r.rtype.code(),
            ttl: r.ttl,
            rdata: rdata.into(),
        });
        Ok(())
    }

    /// Decides a query locally when the name is ours; writes the answer.
    pub fn answer(&self, raw: &[u8], q: &Query, out: &mut Vec<u8>) -> Local {
        if !self.records.is_empty()
            && let Some(rrs) = self.records.get(&q.qname[..])
        {
            self.write_records(raw, q, rrs, out);
            return Local::Answered;
        }
        // Longest suffix first: a forward zone inside a private one wins.
        let mut at = 0usize;
        let mut cut = None;
        while at < q.qname.len() && q.qname[at] != 0 && cut.is_none() {
            cut = self.cuts.get(&q.qname[at..]).copied();
            at += 1 + q.qname[at] as usize;
        }
        if let Some(Cut::Forward(i)) = cut {
            return Local::Forward(i);
        }
        if cut == Some(Cut::Private) {
            ResponseWriter::new(out, raw, q, wire::RCODE_NXDOMAIN, true).finish();
            return Local::Answered;
        }
        Local::NotLocal
    }

    fn write_records(&self, raw: &[u8], q: &Query, rrs: &[Rr], out: &mut Vec<u8>) {
        let mut w = ResponseWriter::new(out, raw, q, wire::RCODE_NOERROR, true);
        let cname = rrs.iter().find(|r| r.rtype == wire::TYPE_CNAME);
        match cname {
            // A CNAME owner has no other data: answer it, then follow it
            // when the target is local too.
            Some(c) if q.qtype != wire::TYPE_CNAME => {
                w.record_at_qname(0, wire::TYPE_CNAME, c.ttl, &c.rdata);
                if let Some(target) = self.records.get(&c.rdata[..]) {
                    for r in target.iter().filter(|r| r.rtype == q.qtype) {
                        w.record(0, &c.rdata, r.rtype, r.ttl, &r.rdata);
                    }
                }
            }
            _ => {
                for r in rrs.iter().filter(|r| r.rtype == q.qtype) {
                    w.record_at_qname(0, r.rtype, r.ttl, &r.rdata);
                }
            }
        }
        // Nothing of this type is NODATA: NOERROR with an empty answer.
        w.finish();
    }
}

fn key(name: &str) -> Result<Box<[u8]>, String> {
    wire::text_to_name(name)
        .map(|n: WireName| n.to_vec().into_boxed_slice())
        .ok_or_else(|| format!("'{name}' is not a domain name"))
}

/// "192.168.1.10" → "10.1.168.192.in-addr.arpa"; IPv6 by nibbles.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xF, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// Turns a record's `value` into RDATA wire bytes, or says what is wrong.
pub fn parse_rdata(rtype: RecordType, value: &str) -> Result<Vec<u8>, String> {
    let v = value.trim();
    let name = |s: &str| {
        wire::text_to_name(s)
            .map(|n| n.to_vec())
            .ok_or_else(|| format!("'{s}' is not a domain name"))
    };
    let num = |s: Option<&str>, what: &str| -> Result<u16, String> {
        s.and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("'{v}': {what} must be a number 0-65535"))
    };
    match rtype {
        RecordType::A => v
            .parse::<std::net::Ipv4Addr>()
            .map(|ip| ip.octets().to_vec())
            .map_err(|_| format!("'{v}' is not an IPv4 address")),
        RecordType::AAAA => v
            .parse::<std::net::Ipv6Addr>()
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
    fn rdata_errors_name_the_problem() {
        assert!(
            parse_rdata(RecordType::A, "300.1.1.1")
                .unwrap_err()
                .contains("IPv4")
        );
        assert!(
            parse_rdata(RecordType::MX, "mail.lan")
                .unwrap_err()
                .contains("preference")
        );
        assert_eq!(
            parse_rdata(RecordType::SRV, "1 2 80 web.lan")
                .unwrap()
                .len(),
            6 + 9
        );
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.168.1.10".parse().unwrap()),
            "10.1.168.192.in-addr.arpa"
        );
        assert!(reverse_name("fd00::1".parse().unwrap()).ends_with(".d.f.ip6.arpa"));
    }
}
