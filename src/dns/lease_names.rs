//! Names the DHCP server handed out, answered as local names: `tv.lan`
//! → its address (A) and the address's PTR → `tv.lan`.
//!
//! A small immutable table the DHCP server rebuilds when a lease's name or
//! address changes and swaps into the engine (`Engine::lease_names`, an
//! `ArcSwap`): a new lease never rebuilds the whole [`Runtime`], and a
//! query never waits on the DHCP server. The local zone consults it after
//! the user's own records, which win over a device's name.
//!
//! Not for: the user's records (see `local`) or deciding leases (`dhcp`).
//!
//! [`Runtime`]: crate::dns::pipeline::Runtime

use crate::wire::{self, Query, ResponseWriter};
use rustc_hash::FxHashMap as HashMap;
use std::net::Ipv4Addr;

/// `10.1.168.192.in-addr.arpa` for 192.168.1.10 (`local` writes
/// IPv6's too; this table has IPv4 only, and `local` reads this table).
fn in_addr_arpa(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{d}.{c}.{b}.{a}.in-addr.arpa")
}

/// How long clients may cache a device's name: short, since a lease can
/// move to another address.
pub const TTL: u32 = 60;

/// Wire-form names (lower case) to addresses, and reverse names to names.
#[derive(Default)]
pub struct LeaseNames {
    forward: HashMap<Box<[u8]>, Ipv4Addr>,
    reverse: HashMap<Box<[u8]>, Box<[u8]>>,
}

impl LeaseNames {
    /// The table of `(full name, address)` pairs (`tv.lan`); names that
    /// are not domain names are skipped, and a later pair for the same
    /// name or address wins.
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, Ipv4Addr)>) -> LeaseNames {
        let mut t = LeaseNames::default();
        for (name, ip) in entries {
            let Some(owner) = wire::text_to_name(&name.to_ascii_lowercase()) else {
                continue;
            };
            let Some(rev) = wire::text_to_name(&in_addr_arpa(ip)) else {
                continue;
            };
            t.forward.insert(owner.to_vec().into(), ip);
            t.reverse.insert(rev.to_vec().into(), owner.to_vec().into());
        }
        t
    }

    pub fn is_empty(&self) -> bool {
        self.forward.is_empty()
    }

    /// Answers `q` when its name is a device's or a device address's
    /// reverse name; false when it is neither.
    pub fn answer(&self, raw: &[u8], q: &Query, negative_ttl: u32, out: &mut Vec<u8>) -> bool {
        if self.is_empty() {
            return false;
        }
        let name = &q.qname[..];
        let record = if let Some(ip) = self.forward.get(name) {
            (q.qtype == wire::TYPE_A).then(|| (wire::TYPE_A, ip.octets().to_vec()))
        } else if let Some(target) = self.reverse.get(name) {
            (q.qtype == wire::TYPE_PTR).then(|| (wire::TYPE_PTR, target.to_vec()))
        } else {
            return false;
        };
        let mut w = ResponseWriter::new(out, raw, q, wire::RCODE_NOERROR, true);
        match record {
            Some((rtype, rdata)) => w.record_at_qname(0, rtype, TTL, &rdata),
            // The name exists without this type: NODATA.
            None => w.negative_soa(0, negative_ttl),
        }
        w.finish();
        true
    }
}
