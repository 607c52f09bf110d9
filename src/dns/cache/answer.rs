//! What the cache stores for one upstream response, and how a stored answer
//! is turned back into the bytes a client gets.
//!
//! [`prepare`] decides once, at insert, whether and how long a response may
//! be cached, rewrites its TTLs to the values the cache stands behind, and
//! records where every TTL field lives. [`write_answer`] then answers a hit
//! with one copy and a few fixed-offset writes: no parsing on the hit path.
//! Not for: deciding which responses are worth asking upstream for (that is
//! the pipeline's job).

use crate::wire::{
    self, RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_SERVFAIL, TYPE_OPT, TYPE_SOA, field, flags,
};

/// Why an answer is in the cache; decides its lifetime and stale use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Positive,
    /// NXDOMAIN or NODATA (RFC 2308).
    Negative,
    /// Remembered briefly so a broken zone is not hammered; never served stale.
    ServFail,
}

/// The TTL policy of [`crate::config::CacheConfig`], in the form `prepare` needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TtlPolicy {
    pub min_ttl: u32,
    pub max_ttl: u32,
    pub negative_max_ttl: u32,
    pub servfail_ttl: u32,
}

/// A response ready to be stored: `data` is the response followed by the
/// offsets of its TTL fields, each a little-endian u16.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub data: Box<[u8]>,
    pub response_len: u16,
    pub ttl: u32,
    pub kind: Kind,
}

/// Checks that `response` answers exactly the question `(name, qtype,
/// qclass)` and is cacheable; returns it with TTLs rewritten, or `None`.
///
/// Lifetimes:
/// - NOERROR with answers: the smallest TTL of the answer and authority
///   records, each first clamped to `[min_ttl, max_ttl]`.
/// - NXDOMAIN, or NOERROR without answers (NODATA): `min(SOA TTL, SOA
///   MINIMUM)` of the authority SOA (RFC 2308 §5), clamped to
///   `[min(min_ttl, negative_max_ttl), negative_max_ttl]`. Without an SOA
///   it is not cached: RFC 2308 §5 says such answers SHOULD NOT be, since
///   nothing bounds them (this also leaves referrals uncached).
/// - SERVFAIL: `servfail_ttl`.
/// - TC set, other rcodes, a lifetime of 0, or anything unparsable: not cached.
pub(crate) fn prepare(
    response: &[u8],
    name: &[u8],
    qtype: u16,
    qclass: u16,
    policy: &TtlPolicy,
) -> Option<Prepared> {
    let response_len = u16::try_from(response.len()).ok()?;
    let fl = wire::response_flags(response);
    if response.len() < field::HEADER_LEN || fl & flags::QR == 0 || fl & flags::TC != 0 {
        return None;
    }
    if (fl >> 11) & 0xF != 0 || wire::read_u16(response, 4) != Some(1) {
        return None;
    }
    // The question must be the literal key name (the first name of a message
    // cannot be compressed), so a hit can overwrite it with the client's bytes.
    let qname_end = field::HEADER_LEN + name.len();
    let stored_name = response.get(field::HEADER_LEN..qname_end)?;
    if !stored_name.eq_ignore_ascii_case(name)
        || wire::read_u16(response, qname_end) != Some(qtype)
        || wire::read_u16(response, qname_end + 2) != Some(qclass)
    {
        return None;
    }
    let rcode = wire::rcode(response);
    let ancount = wire::read_u16(response, 6).unwrap_or(0);
    let kind = match rcode {
        RCODE_NOERROR if ancount > 0 => Kind::Positive,
        RCODE_NOERROR | RCODE_NXDOMAIN => Kind::Negative,
        RCODE_SERVFAIL => Kind::ServFail,
        _ => return None,
    };

    let records = usize::from(ancount)
        + usize::from(wire::read_u16(response, 8).unwrap_or(0))
        + usize::from(wire::read_u16(response, 10).unwrap_or(0));
    let mut data = Vec::with_capacity(response.len() + 2 * records);
    data.extend_from_slice(response);
    let clamp = |t: u32| t.max(policy.min_ttl).min(policy.max_ttl);
    let mut min_positive = u32::MAX;
    let mut soa: Option<u32> = None;
    let end = wire::for_each_record(response, |r| {
        // OPT's "TTL" is extended rcode and flags, not a time.
        if r.rtype == TYPE_OPT {
            return;
        }
        let ttl = wire::read_u32(response, r.ttl_at).unwrap_or(0);
        if r.section < 2 {
            min_positive = min_positive.min(clamp(ttl));
        }
        if r.section == 1 && r.rtype == TYPE_SOA && r.rdlen >= 22 && soa.is_none() {
            let minimum = wire::read_u32(response, r.rdata + r.rdlen - 4).unwrap_or(0);
            soa = Some(ttl.min(minimum));
        }
        data.extend_from_slice(&(r.ttl_at as u16).to_le_bytes());
    })
    .ok()?;
    if end != response.len() {
        return None;
    }

    let ttl = match kind {
        // u32::MAX: answers that were all OPT, which is nonsense.
        Kind::Positive if min_positive == u32::MAX => return None,
        Kind::Positive => min_positive,
        Kind::Negative => {
            let cap = policy.negative_max_ttl;
            soa?.max(policy.min_ttl.min(cap)).min(cap)
        }
        Kind::ServFail => policy.servfail_ttl,
    };
    if ttl == 0 {
        return None;
    }

    // Store the TTLs the cache stands behind, so a hit only subtracts age.
    let (body, offsets) = data.split_at_mut(response.len());
    for pair in offsets.chunks_exact(2) {
        let at = usize::from(u16::from_le_bytes([pair[0], pair[1]]));
        let old = u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
        let new = match kind {
            Kind::Positive => clamp(old),
            Kind::Negative | Kind::ServFail => clamp(old).min(ttl),
        };
        body[at..at + 4].copy_from_slice(&new.to_be_bytes());
    }
    // A cached answer is not authoritative (RFC 1035 §4.1.1), and its ID is
    // the client's, written at every hit. The stored name is lower-cased so
    // a lookup compares it with the key by plain equality.
    body[..2].copy_from_slice(&[0, 0]);
    body[field::HEADER_LEN..qname_end].make_ascii_lowercase();
    body[2] &= !((flags::AA >> 8) as u8);

    Some(Prepared {
        data: data.into_boxed_slice(),
        response_len,
        ttl,
        kind,
    })
}

/// How a hit's TTLs are rewritten.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TtlRewrite {
    /// Fresh: subtract the entry's age in seconds.
    Age(u32),
    /// Stale (RFC 8767): every TTL becomes this.
    Stale(u32),
}

/// Writes the stored answer in `data` (as built by [`prepare`]) into `out`
/// with `id`, the client's `question` bytes (in place of the stored
/// question, `stored_question_len` bytes) and rewritten TTLs.
/// Allocation-free once `out` has grown to the answer's size.
pub(crate) fn write_answer(
    data: &[u8],
    response_len: usize,
    stored_question_len: usize,
    id: u16,
    question: &[u8],
    ttl: TtlRewrite,
    out: &mut Vec<u8>,
) {
    let (body, offsets) = data.split_at(response_len);
    out.clear();
    out.extend_from_slice(body);
    out[..2].copy_from_slice(&id.to_be_bytes());
    // The caller promises the stored question's length (the names match
    // case-insensitively); were it not so, the stored question stays.
    debug_assert_eq!(question.len(), stored_question_len);
    if question.len() == stored_question_len {
        out[field::HEADER_LEN..field::HEADER_LEN + question.len()].copy_from_slice(question);
    }
    for pair in offsets.chunks_exact(2) {
        let at = usize::from(u16::from_le_bytes([pair[0], pair[1]]));
        // Read the stored TTL from `body`, not from `out`: a load from bytes
        // the copy just wrote stalls on store forwarding.
        let new = match (ttl, body.get(at..at + 4)) {
            (TtlRewrite::Age(age), Some(b)) => {
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]).saturating_sub(age)
            }
            (TtlRewrite::Stale(t), _) => t,
            (_, None) => continue,
        };
        out[at..at + 4].copy_from_slice(&new.to_be_bytes());
    }
}
