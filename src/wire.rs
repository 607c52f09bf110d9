//! Checked views over DNS wire bytes, for the hot path: the DNS pipeline,
//! cache and forwarder, and the filter's look at upstream answers.
//!
//! Modelled on smoltcp's `wire`: [`Query::parse`] validates the buffer once
//! and everything after that reads fixed, already-checked offsets; header
//! fields are read and written by name ([`field`], [`set_flags`],
//! [`set_arcount`], ...), never by offset elsewhere. Nothing here
//! allocates; names are lower-cased into stack buffers. Compression
//! pointers are followed only backwards, so loops are impossible. Depends
//! on nothing else in the crate.
//! Not for: anything unusual (several questions, other opcodes, EDNS
//! versions other than 0): `Query::parse` says `Unusual` and the pipeline
//! takes the slow path through hickory-proto.

/// Byte ranges of the fixed header.
pub mod field {
    use std::ops::Range;
    pub const ID: Range<usize> = 0..2;
    pub const FLAGS: Range<usize> = 2..4;
    pub const QDCOUNT: Range<usize> = 4..6;
    pub const ANCOUNT: Range<usize> = 6..8;
    pub const NSCOUNT: Range<usize> = 8..10;
    pub const ARCOUNT: Range<usize> = 10..12;
    pub const HEADER_LEN: usize = 12;
}

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_HINFO: u16 = 13;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;

/// Flag bits of the header's second 16-bit word.
pub mod flags {
    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const AD: u16 = 0x0020;
    pub const CD: u16 = 0x0010;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than a header: nothing to answer, drop it.
    Truncated,
    /// The header is readable but the rest is not: answer FORMERR.
    Malformed,
    /// Valid but not for the fast path: take the slow path.
    Unusual,
}

/// A name in wire form (length-prefixed labels, root label included),
/// lower-cased, at most 255 bytes, on the stack.
pub type WireName = heapless::Vec<u8, 255>;

pub fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

pub fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads the (possibly compressed) name at `at` into `out`, lower-cased.
/// Returns the offset just past the name in the original position.
pub fn read_name(buf: &[u8], mut at: usize, out: &mut WireName) -> Result<usize, WireError> {
    out.clear();
    let mut end = None;
    // Pointers must go strictly backwards: this bounds the walk and
    // defeats loops.
    let mut limit = at;
    loop {
        let len = *buf.get(at).ok_or(WireError::Malformed)? as usize;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    out.push(0).map_err(|_| WireError::Malformed)?;
                    return Ok(end.unwrap_or(at + 1));
                }
                let label = buf.get(at + 1..at + 1 + len).ok_or(WireError::Malformed)?;
                if out.len() + 1 + len + 1 > 255 {
                    return Err(WireError::Malformed);
                }
                let start = out.len() + 1;
                out.push(len as u8).map_err(|_| WireError::Malformed)?;
                out.extend_from_slice(label)
                    .map_err(|_| WireError::Malformed)?;
                out[start..].make_ascii_lowercase();
                at += 1 + len;
            }
            0xC0 => {
                let ptr = (read_u16(buf, at).ok_or(WireError::Malformed)? & 0x3FFF) as usize;
                // No name lives in the header: a pointer into it would
                // make an answer that copies the question point into
                // our own header (found by fuzz/fuzz_targets/dns_wire.rs).
                if ptr >= limit || ptr < field::HEADER_LEN {
                    return Err(WireError::Malformed);
                }
                if end.is_none() {
                    end = Some(at + 2);
                }
                limit = ptr;
                at = ptr;
            }
            // 0x40 and 0x80 label types are obsolete or unknown.
            _ => return Err(WireError::Malformed),
        }
    }
}

/// Skips the name at `at` without copying it; returns the offset after it.
pub fn skip_name(buf: &[u8], mut at: usize) -> Result<usize, WireError> {
    let mut total = 0usize;
    loop {
        let len = *buf.get(at).ok_or(WireError::Malformed)? as usize;
        match len & 0xC0 {
            0x00 if len == 0 => return Ok(at + 1),
            0x00 => {
                total += len + 1;
                if total > 255 || at + 1 + len > buf.len() {
                    return Err(WireError::Malformed);
                }
                at += 1 + len;
            }
            0xC0 if at + 2 <= buf.len() => return Ok(at + 2),
            _ => return Err(WireError::Malformed),
        }
    }
}

/// Writes a wire-form name as dotted text without the trailing dot
/// ("example.com"; the root is "."). Non-printable bytes become '?'.
pub fn name_to_text(name: &[u8], out: &mut heapless::String<256>) {
    out.clear();
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            break;
        }
        if at > 0 {
            let _ = out.push('.');
        }
        for &b in name.get(at + 1..at + 1 + len as usize).unwrap_or(&[]) {
            let c = if b.is_ascii_graphic() { b as char } else { '?' };
            let _ = out.push(c);
        }
        at += 1 + len as usize;
    }
    if out.is_empty() {
        let _ = out.push('.');
    }
}

/// Turns dotted text ("Example.COM.") into a lower-cased wire name.
pub fn text_to_name(text: &str) -> Option<WireName> {
    let mut out = WireName::new();
    let t = text.trim_end_matches('.');
    if !t.is_empty() {
        for label in t.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            out.push(label.len() as u8).ok()?;
            for b in label.bytes() {
                out.push(b.to_ascii_lowercase()).ok()?;
            }
        }
    }
    out.push(0).ok()?;
    Some(out)
}

/// EDNS(0) as the client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Edns {
    pub present: bool,
    pub udp_size: u16,
    /// DNSSEC OK.
    pub do_bit: bool,
}

/// A query that fits the fast path: a standard query with one question and
/// at most an OPT record.
#[derive(Debug, Clone)]
pub struct Query {
    pub id: u16,
    pub flags: u16,
    /// Lower-cased wire-form question name.
    pub qname: WireName,
    pub qtype: u16,
    pub qclass: u16,
    /// Offset just past the question: header+question is `buf[..question_end]`.
    pub question_end: usize,
    pub edns: Edns,
}

impl Query {
    /// Validates `buf` as a fast-path query.
    pub fn parse(buf: &[u8]) -> Result<Query, WireError> {
        if buf.len() < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let h = |r: std::ops::Range<usize>| u16::from_be_bytes([buf[r.start], buf[r.start + 1]]);
        let id = h(field::ID);
        let flags = h(field::FLAGS);
        if flags & flags::QR != 0 {
            // A response sent to us: never answer it (reflection loops).
            return Err(WireError::Truncated);
        }
        let opcode = (flags >> 11) & 0xF;
        let (qd, an, ns, ar) = (
            h(field::QDCOUNT),
            h(field::ANCOUNT),
            h(field::NSCOUNT),
            h(field::ARCOUNT),
        );
        if opcode != 0 {
            return Err(WireError::Unusual);
        }
        if qd != 1 {
            // Zero or several questions: FORMERR (RFC 9619 for several).
            return Err(WireError::Malformed);
        }
        let mut qname = WireName::new();
        let at = read_name(buf, field::HEADER_LEN, &mut qname)?;
        let qtype = read_u16(buf, at).ok_or(WireError::Malformed)?;
        let qclass = read_u16(buf, at + 2).ok_or(WireError::Malformed)?;
        let question_end = at + 4;
        if an != 0 || ns != 0 || ar > 1 {
            return Err(WireError::Unusual);
        }
        let mut edns = Edns::default();
        if ar == 1 {
            edns = parse_opt(buf, question_end)?;
        }
        if qclass != CLASS_IN || qtype == TYPE_OPT {
            return Err(WireError::Unusual);
        }
        Ok(Query {
            id,
            flags,
            qname,
            qtype,
            qclass,
            question_end,
            edns,
        })
    }

    pub fn rd(&self) -> bool {
        self.flags & flags::RD != 0
    }

    pub fn cd(&self) -> bool {
        self.flags & flags::CD != 0
    }
}

/// Parses the OPT pseudo-record at `at` (the only additional record).
fn parse_opt(buf: &[u8], at: usize) -> Result<Edns, WireError> {
    // Root name, TYPE, CLASS (= UDP size), TTL (= ext-rcode, version, flags), RDLEN.
    if buf.get(at) != Some(&0) {
        return Err(WireError::Unusual);
    }
    let rtype = read_u16(buf, at + 1).ok_or(WireError::Malformed)?;
    if rtype != TYPE_OPT {
        return Err(WireError::Unusual);
    }
    let udp_size = read_u16(buf, at + 3).ok_or(WireError::Malformed)?;
    let ttl = read_u32(buf, at + 5).ok_or(WireError::Malformed)?;
    let rdlen = read_u16(buf, at + 9).ok_or(WireError::Malformed)? as usize;
    if at + 11 + rdlen != buf.len() {
        return Err(WireError::Malformed);
    }
    let version = (ttl >> 16) & 0xFF;
    if version != 0 {
        return Err(WireError::Unusual);
    }
    Ok(Edns {
        present: true,
        udp_size: udp_size.max(512),
        do_bit: ttl & 0x8000 != 0,
    })
}

/// One resource record's position inside a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPos {
    /// Offset of the owner name.
    pub start: usize,
    pub rtype: u16,
    pub rclass: u16,
    /// Offset of the 4-byte TTL.
    pub ttl_at: usize,
    pub rdata: usize,
    pub rdlen: usize,
    /// 0 answer, 1 authority, 2 additional.
    pub section: u8,
}

/// Walks every record of a response after its question section, checking
/// bounds. Calls `f` for each; stops at the first error.
pub fn for_each_record(buf: &[u8], mut f: impl FnMut(RecordPos)) -> Result<usize, WireError> {
    if buf.len() < field::HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let count = |f: std::ops::Range<usize>| read_u16(buf, f.start).unwrap_or(0);
    let qd = count(field::QDCOUNT);
    let counts = [
        count(field::ANCOUNT),
        count(field::NSCOUNT),
        count(field::ARCOUNT),
    ];
    let mut at = field::HEADER_LEN;
    for _ in 0..qd {
        at = skip_name(buf, at)? + 4;
    }
    if at > buf.len() {
        return Err(WireError::Malformed);
    }
    for (section, &count) in counts.iter().enumerate() {
        for _ in 0..count {
            let name_end = skip_name(buf, at)?;
            let rtype = read_u16(buf, name_end).ok_or(WireError::Malformed)?;
            let rclass = read_u16(buf, name_end + 2).ok_or(WireError::Malformed)?;
            let rdlen = read_u16(buf, name_end + 8).ok_or(WireError::Malformed)? as usize;
            let rdata = name_end + 10;
            if rdata + rdlen > buf.len() {
                return Err(WireError::Malformed);
            }
            f(RecordPos {
                start: at,
                rtype,
                rclass,
                ttl_at: name_end + 4,
                rdata,
                rdlen,
                section: section as u8,
            });
            at = rdata + rdlen;
        }
    }
    Ok(at)
}

// Header fields, read and written in place. Setters leave a buffer
// shorter than the field alone; getters read it as 0 (`rcode`: SERVFAIL).

/// The RCODE's lower four bits (the header's part of it).
pub fn rcode(buf: &[u8]) -> u8 {
    buf.get(3).map(|b| b & 0x0F).unwrap_or(RCODE_SERVFAIL)
}

/// The flags word: QR, opcode, [`flags`] bits and RCODE.
pub fn response_flags(buf: &[u8]) -> u16 {
    read_u16(buf, field::FLAGS.start).unwrap_or(0)
}

/// The additional section's record count.
pub fn arcount(buf: &[u8]) -> u16 {
    read_u16(buf, field::ARCOUNT.start).unwrap_or(0)
}

fn set_field(buf: &mut [u8], at: std::ops::Range<usize>, value: u16) {
    if let Some(b) = buf.get_mut(at) {
        b.copy_from_slice(&value.to_be_bytes());
    }
}

pub fn set_id(buf: &mut [u8], id: u16) {
    set_field(buf, field::ID, id);
}

/// Replaces the whole flags word (see [`response_flags`]).
pub fn set_flags(buf: &mut [u8], flags: u16) {
    set_field(buf, field::FLAGS, flags);
}

/// Sets header flag bits (see [`flags`]), keeping the others.
pub fn set_flag(buf: &mut [u8], flag: u16) {
    set_flags(buf, response_flags(buf) | flag);
}

pub fn set_qdcount(buf: &mut [u8], n: u16) {
    set_field(buf, field::QDCOUNT, n);
}

pub fn set_ancount(buf: &mut [u8], n: u16) {
    set_field(buf, field::ANCOUNT, n);
}

pub fn set_nscount(buf: &mut [u8], n: u16) {
    set_field(buf, field::NSCOUNT, n);
}

pub fn set_arcount(buf: &mut [u8], n: u16) {
    set_field(buf, field::ARCOUNT, n);
}

/// Writes answers we make ourselves (local records, blocks, errors):
/// header, the client's question copied verbatim, then records.
pub struct ResponseWriter<'a> {
    out: &'a mut Vec<u8>,
    counts: [u16; 3],
}

impl<'a> ResponseWriter<'a> {
    /// Starts a response to `q` (whose raw bytes are `raw`) with `rcode`.
    /// `authoritative` sets AA.
    pub fn new(
        out: &'a mut Vec<u8>,
        raw: &[u8],
        q: &Query,
        rcode: u8,
        authoritative: bool,
    ) -> Self {
        out.clear();
        let mut fl = flags::QR | flags::RA | (q.flags & (flags::RD | flags::CD));
        if authoritative {
            fl |= flags::AA;
        }
        out.extend_from_slice(&q.id.to_be_bytes());
        out.extend_from_slice(&(fl | rcode as u16).to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&raw[field::HEADER_LEN..q.question_end]);
        ResponseWriter {
            out,
            counts: [0; 3],
        }
    }

    /// Adds a record whose owner is the question name (compressed pointer).
    pub fn record_at_qname(&mut self, section: usize, rtype: u16, ttl: u32, rdata: &[u8]) {
        self.out.extend_from_slice(&[0xC0, 0x0C]);
        self.tail(section, rtype, ttl, rdata);
    }

    /// Adds a record with an explicit wire-form owner name.
    pub fn record(&mut self, section: usize, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
        self.out.extend_from_slice(owner);
        self.tail(section, rtype, ttl, rdata);
    }

    fn tail(&mut self, section: usize, rtype: u16, ttl: u32, rdata: &[u8]) {
        self.out.extend_from_slice(&rtype.to_be_bytes());
        self.out.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        self.out
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.out.extend_from_slice(rdata);
        self.counts[section] += 1;
    }

    /// Adds the SOA that lets a resolver cache this negative answer (RFC
    /// 2308): in the authority section, owned by the question name's suffix
    /// starting `zone_at` bytes into it (0: the whole name), TTL and
    /// MINIMUM `ttl`. Call after the answer records.
    pub fn negative_soa(&mut self, zone_at: usize, ttl: u32) {
        let owner = 0xC000 | (field::HEADER_LEN + zone_at) as u16;
        self.out.extend_from_slice(&owner.to_be_bytes());
        let mut rdata = [0u8; SOA_NAMES.len() + 20];
        rdata[..SOA_NAMES.len()].copy_from_slice(SOA_NAMES);
        let timers = [1, 1800, 900, 604_800, ttl];
        for (i, v) in timers.iter().enumerate() {
            let at = SOA_NAMES.len() + 4 * i;
            rdata[at..at + 4].copy_from_slice(&u32::to_be_bytes(*v));
        }
        self.tail(1, TYPE_SOA, ttl, &rdata);
    }

    /// Adds an OPT record advertising `udp_size` (echoing the client's EDNS).
    pub fn opt(&mut self, udp_size: u16, do_bit: bool) {
        push_opt(self.out, udp_size, do_bit, 0);
        self.counts[2] += 1;
    }

    pub fn finish(self) {
        let [an, ns, ar] = self.counts;
        set_ancount(self.out, an);
        set_nscount(self.out, ns);
        set_arcount(self.out, ar);
    }
}

/// MNAME and RNAME of the SOA in our own negative answers: names under
/// `.invalid` (RFC 6761), which say who answered and resolve nowhere.
/// SERIAL 1, REFRESH 1800, RETRY 900 and EXPIRE 604800 follow them; no
/// secondary ever reads them.
const SOA_NAMES: &[u8] = b"\x0aglory-hole\x07invalid\x00\x06nobody\x07invalid\x00";

/// Appends an OPT record (RFC 6891) without touching ARCOUNT: root owner,
/// `udp_size` in CLASS, `ext_rcode` (the RCODE's upper 8 bits), version 0
/// and the DO bit in TTL, no options.
pub fn push_opt(out: &mut Vec<u8>, udp_size: u16, do_bit: bool, ext_rcode: u8) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&udp_size.to_be_bytes());
    let ttl = (u32::from(ext_rcode) << 24) | if do_bit { 0x8000 } else { 0 };
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
}

/// A minimal error answer for a query we could only read the header of:
/// the header echoed with QR, no question, `rcode`.
pub fn header_only_error(raw: &[u8], rcode: u8, out: &mut Vec<u8>) {
    out.clear();
    let id = read_u16(raw, 0).unwrap_or(0);
    let fl = read_u16(raw, 2).unwrap_or(0);
    let fl = flags::QR | (fl & (0x7800 | flags::RD)) | rcode as u16;
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&fl.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut b = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&text_to_name(name).unwrap());
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        b
    }

    #[test]
    fn parses_and_lowercases() {
        let q = Query::parse(&query("WWW.Example.COM", TYPE_A)).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(&q.qname[..], b"\x03www\x07example\x03com\x00");
        let mut t = heapless::String::new();
        name_to_text(&q.qname, &mut t);
        assert_eq!(t.as_str(), "www.example.com");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Query::parse(&[0; 5]).unwrap_err(), WireError::Truncated);
        let mut q = query("example.com", TYPE_A);
        q.truncate(q.len() - 3);
        assert_eq!(Query::parse(&q).unwrap_err(), WireError::Malformed);
        // Compression loop in the question: pointer to itself.
        let mut l = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1];
        assert_eq!(Query::parse(&l).unwrap_err(), WireError::Malformed);
        // Label over 63 (0x40 type bits).
        l[12] = 64;
        assert_eq!(Query::parse(&l).unwrap_err(), WireError::Malformed);
        // Name over 255.
        let mut long = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(Query::parse(&long).unwrap_err(), WireError::Malformed);
        // Zero and two questions.
        let mut z = query("a.b", TYPE_A);
        z[5] = 0;
        assert_eq!(Query::parse(&z).unwrap_err(), WireError::Malformed);
        z[5] = 2;
        assert_eq!(Query::parse(&z).unwrap_err(), WireError::Malformed);
    }

    #[test]
    fn edns_is_read() {
        let mut q = query("example.com", TYPE_A);
        q[11] = 1;
        q.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0]);
        let p = Query::parse(&q).unwrap();
        assert!(p.edns.present && p.edns.do_bit);
        assert_eq!(p.edns.udp_size, 4096);
    }

    #[test]
    fn header_setters_write_their_own_field_only() {
        let mut h = [0u8; 12];
        set_id(&mut h, 0xABCD);
        set_flags(&mut h, 0x8180);
        set_flag(&mut h, flags::TC);
        set_qdcount(&mut h, 1);
        set_ancount(&mut h, 0x0203);
        set_nscount(&mut h, 4);
        set_arcount(&mut h, 0x0506);
        assert_eq!(h, [0xAB, 0xCD, 0x83, 0x80, 0, 1, 2, 3, 0, 4, 5, 6]);
        assert_eq!(
            (response_flags(&h), arcount(&h), rcode(&h)),
            (0x8380, 0x0506, 0)
        );
        // Too short for the field: left alone, read as 0.
        let mut short = [7u8; 11];
        set_arcount(&mut short, 1);
        assert_eq!((short, arcount(&short)), ([7; 11], 0));
        let mut tiny = [7u8; 3];
        set_flag(&mut tiny, flags::QR);
        assert_eq!(tiny, [7; 3]);
    }

    #[test]
    fn writer_round_trips_through_record_walk() {
        let raw = query("nas.lan", TYPE_A);
        let q = Query::parse(&raw).unwrap();
        let mut out = Vec::new();
        let mut w = ResponseWriter::new(&mut out, &raw, &q, RCODE_NOERROR, true);
        w.record_at_qname(0, TYPE_A, 300, &[192, 168, 1, 10]);
        w.opt(1232, false);
        w.finish();
        let mut recs = Vec::new();
        let end = for_each_record(&out, |r| recs.push(r)).unwrap();
        assert_eq!(end, out.len());
        assert_eq!(recs.len(), 2);
        assert_eq!(read_u32(&out, recs[0].ttl_at), Some(300));
        assert_eq!(recs[1].rtype, TYPE_OPT);
    }

    #[test]
    fn negative_soa_is_written_by_hand_bytes() {
        let raw = query("ads.example", TYPE_A);
        let q = Query::parse(&raw).unwrap();
        let mut out = Vec::new();
        let mut w = ResponseWriter::new(&mut out, &raw, &q, RCODE_NXDOMAIN, false);
        // Owned by "example", 4 bytes into the question name.
        w.negative_soa(4, 7);
        w.finish();
        let mut expected = vec![
            0x12, 0x34, 0x81, 0x83, // ID; QR RD RA, NXDOMAIN
            0, 1, 0, 0, 0, 1, 0, 0, // one question, one authority record
            3, b'a', b'd', b's', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, 0, 1, 0, 1, 0xC0,
            16, // owner: pointer to "example" at offset 16
            0, 6, 0, 1, // SOA, IN
            0, 0, 0, 7, // TTL
            0, 56, // RDLENGTH
        ];
        expected.extend_from_slice(b"\x0aglory-hole\x07invalid\x00");
        expected.extend_from_slice(b"\x06nobody\x07invalid\x00");
        expected.extend_from_slice(&[
            0, 0, 0, 1, // SERIAL
            0, 0, 0x07, 0x08, // REFRESH 1800
            0, 0, 0x03, 0x84, // RETRY 900
            0, 0x09, 0x3A, 0x80, // EXPIRE 604800
            0, 0, 0, 7, // MINIMUM
        ]);
        assert_eq!(out, expected);
    }
}
