//! Local authority: the user's own records, automatic PTRs for them, which
//! names go to which `[[forward]]` zone, and private names that must never
//! leak to the public upstreams (RFC 6303 reverse zones, `lan`, `home.arpa`,
//! `local`, `internal`).
//!
//! Built once per config into an immutable [`LocalZone`]; lookups walk the
//! query name's label suffixes over hash maps keyed by wire-form names.
//! Record values arrive checked and in wire form (`syntax::record`).
//! Not for: blocking (filter) or caching (cache).

use crate::config::{Config, LocalRecord};
use crate::dns::lease_names::LeaseNames;
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
    /// How long clients may cache our NXDOMAIN and NODATA answers (the
    /// negative SOA's TTL and MINIMUM): `filter.blocked_ttl`.
    negative_ttl: u32,
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
        let mut zone = LocalZone {
            negative_ttl: cfg.filter.blocked_ttl,
            ..LocalZone::default()
        };
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
        if let Some(ip) = r.value.ip() {
            let ptr_owner = key(&reverse_name(ip))?;
            let rrs = self.records.entry(ptr_owner).or_default();
            if !rrs.iter().any(|rr| rr.rtype == wire::TYPE_PTR) {
                rrs.push(Rr {
                    rtype: wire::TYPE_PTR,
                    ttl: r.ttl,
                    rdata: r.name.to_wire().into(),
                });
            }
        }
        self.records.entry(owner).or_default().push(Rr {
            rtype: r.rtype.code(),
            ttl: r.ttl,
            rdata: r.value.wire().into(),
        });
        Ok(())
    }

    /// Decides a query locally when the name is ours; writes the answer.
    /// The user's records win over devices' names (`leases`), which win
    /// over the private zones they live in (`lan`).
    pub fn answer(&self, raw: &[u8], q: &Query, leases: &LeaseNames, out: &mut Vec<u8>) -> Local {
        if !self.records.is_empty()
            && let Some(rrs) = self.records.get(&q.qname[..])
        {
            self.write_records(raw, q, rrs, out);
            return Local::Answered;
        }
        if leases.answer(raw, q, self.negative_ttl, out) {
            return Local::Answered;
        }
        // Longest suffix first: a forward zone inside a private one wins.
        let mut at = 0usize;
        while at < q.qname.len() && q.qname[at] != 0 {
            match self.cuts.get(&q.qname[at..]) {
                Some(Cut::Forward(i)) => return Local::Forward(*i),
                Some(Cut::Private) => {
                    // The SOA is owned by the private zone the name is in.
                    let mut w = ResponseWriter::new(out, raw, q, wire::RCODE_NXDOMAIN, true);
                    w.negative_soa(at, self.negative_ttl);
                    w.finish();
                    return Local::Answered;
                }
                None => at += 1 + q.qname[at] as usize,
            }
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
                let mut any = false;
                for r in rrs.iter().filter(|r| r.rtype == q.qtype) {
                    w.record_at_qname(0, r.rtype, r.ttl, &r.rdata);
                    any = true;
                }
                // Nothing of this type is NODATA: NOERROR, no answers, and
                // the SOA that lets the client cache that.
                if !any {
                    w.negative_soa(0, self.negative_ttl);
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.168.1.10".parse().unwrap()),
            "10.1.168.192.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("fd00::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa"
        );
    }
}
