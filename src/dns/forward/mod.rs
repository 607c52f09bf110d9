//! Forwarding a query to upstream resolvers and bringing back their answer.
//!
//! One [`Forwarder`] serves one group of upstreams (the default ones, or one
//! `[[forward]]` zone). For each query it picks the healthiest upstream
//! (`health`), sends the query with a fresh random ID over that upstream's
//! transport (`udp` with a `tcp` retry on truncation, `tls` for DoT, `https`
//! for DoH), accepts only a reply whose ID and question match (`check_reply`),
//! and fails over to the next upstream until the query's deadline. Identical
//! queries in flight at the same time share one upstream exchange
//! (`coalesce`).
//!
//! Upstreams are always reached by IP address (DoT and DoH carry bootstrap
//! IPs in their config), so the box never has to resolve its own upstream.
//!
//! Not for: caching, filtering or rewriting answers (the pipeline does
//! that). The bytes returned are the upstream's, with only the ID (and the
//! question's letter case) set back to the caller's.

mod coalesce;
mod failover;
mod health;
mod https;
mod inline;
mod tcp;
mod tls;
mod udp;

pub use health::UpstreamHealth;
pub use inline::{Finished, InlineForwarder, TcpRetry};

use crate::config::{DnsConfig, Upstream};
use crate::wire::{self, WireName};
use failover::{Failover, Verdict};
use health::Health;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An upstream's reply, ready for the caller.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The upstream's response, its ID set to the caller's query ID.
    pub bytes: Vec<u8>,
    /// Index into the upstream list this forwarder was built from.
    pub upstream: u8,
}

/// Why a query could not be forwarded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForwardError {
    #[error(
        "no upstream servers are configured for this group: add some to dns.upstreams or the [[forward]] zone"
    )]
    NoUpstreams,
    #[error("cannot forward this message: {0}")]
    BadQuery(&'static str),
    #[error(
        "no upstream answered within {deadline_ms} ms ({attempts} attempt(s); last problem: {last}); check that the upstreams are reachable from this box, or raise dns.query_timeout"
    )]
    NoAnswer {
        deadline_ms: u64,
        attempts: usize,
        last: String,
    },
    #[error(
        "{0} queries are already waiting for upstreams; refusing more until some finish (is a client flooding unique names?)"
    )]
    Busy(usize),
    #[error("the upstream exchange for this query stopped unexpectedly (internal error)")]
    Abandoned,
}

/// What went wrong in one attempt against one upstream.
#[derive(Debug)]
pub(crate) enum AttemptError {
    Io(std::io::Error),
    Tls(String),
    Http(String),
    Setup(String),
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Io(e) => write!(f, "{e}"),
            AttemptError::Tls(e) => write!(f, "TLS: {e}"),
            AttemptError::Http(e) => write!(f, "HTTP: {e}"),
            AttemptError::Setup(e) => write!(f, "{e}"),
        }
    }
}

impl From<std::io::Error> for AttemptError {
    fn from(e: std::io::Error) -> Self {
        AttemptError::Io(e)
    }
}

/// The question of a query, as the reply must repeat it.
#[derive(Debug, Clone)]
pub(crate) struct Question {
    /// Lower-cased wire-form name.
    pub name: WireName,
    pub qtype: u16,
    pub qclass: u16,
    /// Offset just past the question's name in the query.
    pub name_end: usize,
    pub do_bit: bool,
    pub cd: bool,
}

impl Question {
    /// The question of a query the pipeline has parsed, as it goes
    /// upstream (`pipeline::upstream_query` copies the question's bytes
    /// where they were, and carries the client's DO and CD bits).
    pub fn of(q: &wire::Query) -> Question {
        Question {
            name: q.qname.clone(),
            qtype: q.qtype,
            qclass: q.qclass,
            name_end: q.question_end - 4,
            do_bit: q.edns.do_bit,
            cd: q.cd(),
        }
    }

    /// Reads the question (and the DO bit from an OPT record, if any).
    pub fn parse(msg: &[u8]) -> Result<Question, ForwardError> {
        if msg.len() < wire::field::HEADER_LEN {
            return Err(ForwardError::BadQuery("shorter than a DNS header"));
        }
        let flags = wire::response_flags(msg);
        if flags & wire::flags::QR != 0 {
            return Err(ForwardError::BadQuery("it is a response, not a query"));
        }
        if wire::read_u16(msg, 4) != Some(1) {
            return Err(ForwardError::BadQuery("it needs exactly one question"));
        }
        let mut name = WireName::new();
        let name_end = wire::read_name(msg, wire::field::HEADER_LEN, &mut name)
            .map_err(|_| ForwardError::BadQuery("the question name is malformed"))?;
        let (Some(qtype), Some(qclass)) = (
            wire::read_u16(msg, name_end),
            wire::read_u16(msg, name_end + 2),
        ) else {
            return Err(ForwardError::BadQuery("the question is cut short"));
        };
        let mut do_bit = false;
        wire::for_each_record(msg, |r| {
            if r.section == 2 && r.rtype == wire::TYPE_OPT {
                do_bit = wire::read_u32(msg, r.ttl_at).unwrap_or(0) & 0x8000 != 0;
            }
        })
        .map_err(|_| ForwardError::BadQuery("a record after the question is malformed"))?;
        Ok(Question {
            name,
            qtype,
            qclass,
            name_end,
            do_bit,
            cd: flags & wire::flags::CD != 0,
        })
    }
}

/// Why a reply was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mismatch {
    NotAResponse,
    Id,
    Question,
}

/// Accepts `reply` only if it answers `q` under `id`: a response with our
/// ID and one question equal to ours (names compared case-insensitively).
pub(crate) fn check_reply(reply: &[u8], id: u16, q: &Question) -> Result<(), Mismatch> {
    if reply.len() < wire::field::HEADER_LEN
        || wire::response_flags(reply) & wire::flags::QR == 0
        || (wire::response_flags(reply) >> 11) & 0xF != 0
    {
        return Err(Mismatch::NotAResponse);
    }
    if wire::read_u16(reply, 0) != Some(id) {
        return Err(Mismatch::Id);
    }
    if wire::read_u16(reply, 4) != Some(1) {
        return Err(Mismatch::Question);
    }
    let mut name = WireName::new();
    let end = wire::read_name(reply, wire::field::HEADER_LEN, &mut name)
        .map_err(|_| Mismatch::Question)?;
    if name != q.name
        || wire::read_u16(reply, end) != Some(q.qtype)
        || wire::read_u16(reply, end + 2) != Some(q.qclass)
    {
        return Err(Mismatch::Question);
    }
    Ok(())
}

/// A random query ID that differs from the client's, so the client's ID
/// never travels upstream.
fn fresh_id(client_id: u16) -> u16 {
    loop {
        let id: u16 = rand::random();
        if id != client_id {
            return id;
        }
    }
}

/// How one upstream is reached.
enum Transport {
    Plain(std::net::SocketAddr),
    Tls(tls::DotClient),
    Https(https::DohClient),
}

struct UpstreamSlot {
    label: String,
    transport: Transport,
    health: Health,
}

/// Forwards queries to one group of upstreams. Cheap to share: wrap in an
/// `Arc` or keep one per snapshot; a clone shares the same upstreams.
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

/// Upstream exchanges one forwarder runs at once. Each holds a socket and
/// a task; past this a flood of unique names gets `Busy` instead of
/// exhausting file descriptors on a small board.
pub const MAX_IN_FLIGHT: usize = 512;

struct Inner {
    upstreams: Vec<UpstreamSlot>,
    upstream_timeout: Duration,
    query_timeout: Duration,
    inflight: coalesce::InFlight,
    /// Bounds the exchanges in flight; coalesced callers need none.
    capacity: Arc<tokio::sync::Semaphore>,
    picks: std::sync::atomic::AtomicU64,
}

impl Forwarder {
    /// Trusts the public web PKI (webpki-roots) for DoT and DoH.
    pub fn new(upstreams: &[Upstream], cfg: &DnsConfig) -> Forwarder {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Forwarder::with_roots(upstreams, cfg, roots)
    }

    /// Like [`Forwarder::new`] with other trust roots for DoT and DoH (a
    /// private CA, or a test's self-signed certificate).
    pub fn with_roots(
        upstreams: &[Upstream],
        cfg: &DnsConfig,
        roots: rustls::RootCertStore,
    ) -> Forwarder {
        let roots = Arc::new(roots);
        let slots = upstreams
            .iter()
            .take(u8::MAX as usize + 1)
            .map(|u| UpstreamSlot {
                label: u.to_string(),
                transport: match u {
                    Upstream::Plain(addr) => Transport::Plain(*addr),
                    Upstream::Tls { addr, server_name } => {
                        Transport::Tls(tls::DotClient::new(*addr, server_name, roots.clone()))
                    }
                    Upstream::Https { url, bootstrap } => {
                        Transport::Https(https::DohClient::new(url, bootstrap, roots.clone()))
                    }
                },
                health: Health::new(),
            })
            .collect();
        Forwarder {
            inner: Arc::new(Inner {
                upstreams: slots,
                upstream_timeout: cfg.upstream_timeout.0.max(Duration::from_millis(1)),
                query_timeout: cfg.query_timeout.0.max(Duration::from_millis(1)),
                inflight: coalesce::InFlight::default(),
                capacity: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
                picks: Default::default(),
            }),
        }
    }

    /// Forwards `msg` (a complete query in wire form) and returns the first
    /// acceptable upstream answer. SERVFAIL and REFUSED make it try the next
    /// upstream; if no upstream does better, the last such answer is
    /// returned as it came. The answer carries `msg`'s ID.
    pub async fn query(&self, msg: &[u8]) -> Result<Answer, ForwardError> {
        let q = Question::parse(msg)?;
        if self.inner.upstreams.is_empty() {
            return Err(ForwardError::NoUpstreams);
        }
        let mut answer = coalesce::InFlight::join(&self.inner, msg, q.clone()).await?;
        // The shared exchange may have been started by another caller.
        wire::set_id(&mut answer.bytes, wire::read_u16(msg, 0).unwrap_or(0));
        restore_question_case(&mut answer.bytes, &msg[..q.name_end]);
        Ok(answer)
    }

    /// A snapshot of every upstream's health, in configuration order.
    pub fn health(&self) -> Vec<UpstreamHealth> {
        let now = Instant::now();
        self.inner
            .upstreams
            .iter()
            .map(|u| u.health.snapshot(&u.label, now))
            .collect()
    }

    /// How many queries were answered by sharing another query's exchange.
    pub fn coalesced(&self) -> u64 {
        self.inner.inflight.coalesced()
    }
}

/// Copies the caller's question name over the answer's when they differ
/// only in letter case, so a client using 0x20 randomisation sees its own.
fn restore_question_case(answer: &mut [u8], query_head: &[u8]) {
    let range = wire::field::HEADER_LEN..query_head.len();
    if let Some(theirs) = answer.get_mut(range.clone())
        && theirs.eq_ignore_ascii_case(&query_head[range.clone()])
    {
        theirs.copy_from_slice(&query_head[range]);
    }
}

/// What [`Forwarder::query`] does with one upstream reply, without the
/// exchange: `sent` is the query as it went upstream (its ID the one the
/// reply must carry); an accepted reply comes back as the caller gets it,
/// under `caller_id`, the question in `sent`'s letter case. The entry
/// point of `fuzz/fuzz_targets/upstream_reply.rs`.
pub fn accept_reply(sent: &[u8], reply: &[u8], caller_id: u16) -> Result<Vec<u8>, String> {
    let q = Question::parse(sent).map_err(|e| e.to_string())?;
    let id = wire::read_u16(sent, 0).unwrap_or(0);
    check_reply(reply, id, &q).map_err(|m| format!("reply dropped: {m:?}"))?;
    let mut bytes = reply.to_vec();
    wire::set_id(&mut bytes, caller_id);
    restore_question_case(&mut bytes, &sent[..q.name_end]);
    Ok(bytes)
}

impl Inner {
    /// Upstreams in the order to try them: healthy ones fastest first,
    /// backed-off ones last (still tried when everything else fails).
    /// Every 16th query the longest-unused healthy upstream goes first, so
    /// a recovered or slow-looking upstream gets measured again.
    fn order(&self) -> Vec<usize> {
        // One upstream has one order: no clock, no health to read (a
        // household's usual setup; ~400 instructions a miss).
        if self.upstreams.len() == 1 {
            return vec![0];
        }
        let now = Instant::now();
        let mut healthy = Vec::new();
        let mut resting = Vec::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            let v = u.health.view(now);
            if v.backed_off_until.is_some() {
                resting.push((i, v));
            } else {
                healthy.push((i, v));
            }
        }
        // Unmeasured upstreams first, to learn their latency.
        healthy.sort_by(|a, b| {
            a.1.ewma_ms
                .unwrap_or(0.0)
                .total_cmp(&b.1.ewma_ms.unwrap_or(0.0))
        });
        resting.sort_by_key(|(_, v)| v.backed_off_until);
        let pick = self
            .picks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if pick % 16 == 15 && healthy.len() > 1 {
            let oldest = (0..healthy.len())
                .min_by_key(|&k| healthy[k].1.last_used)
                .unwrap_or(0);
            let probe = healthy.remove(oldest);
            healthy.insert(0, probe);
        }
        healthy.into_iter().chain(resting).map(|(i, _)| i).collect()
    }

    /// The failover loop (`failover`), one attempt at a time, each bounded
    /// by the time the policy gives it.
    async fn resolve(&self, msg: Vec<u8>, q: &Question) -> Result<Answer, ForwardError> {
        let failover = Failover::new(self, Instant::now());
        self.resolve_from(failover, msg, q).await
    }

    /// [`Inner::resolve`] from where `failover` stands.
    pub(crate) async fn resolve_from(
        &self,
        mut failover: Failover,
        mut msg: Vec<u8>,
        q: &Question,
    ) -> Result<Answer, ForwardError> {
        let client_id = wire::read_u16(&msg, 0).unwrap_or(0);
        while let Some((i, budget)) = failover.next(self, Instant::now()) {
            let u = &self.upstreams[i];
            let id = fresh_id(client_id);
            wire::set_id(&mut msg, id);
            let sent = Instant::now();
            match tokio::time::timeout(budget, self.exchange(u, &msg, id, q)).await {
                Ok(Ok(reply)) => {
                    if let Verdict::Done(a) = failover.answered(self, i, reply, sent.elapsed()) {
                        return Ok(a);
                    }
                }
                Ok(Err(e)) => failover.failed(self, i, &e),
                Err(_) => failover.timed_out(self, i, budget),
            }
        }
        failover.give_up(self)
    }

    /// One attempt against one upstream; the caller bounds its time.
    async fn exchange(
        &self,
        u: &UpstreamSlot,
        msg: &[u8],
        id: u16,
        q: &Question,
    ) -> Result<Vec<u8>, AttemptError> {
        match &u.transport {
            Transport::Plain(addr) => {
                let reply = udp::exchange(*addr, msg, id, q, &u.health).await?;
                if wire::response_flags(&reply) & wire::flags::TC == 0 {
                    return Ok(reply);
                }
                u.health.truncated();
                Ok(tcp::exchange(*addr, msg, id, q, &u.health).await?)
            }
            Transport::Tls(dot) => dot.exchange(msg, id, q, &u.health).await,
            Transport::Https(doh) => doh.exchange(msg, q, &u.health).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, id: u16) -> Vec<u8> {
        let mut b = id.to_be_bytes().to_vec();
        b.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
        for label in name.split('.') {
            b.push(label.len() as u8);
            b.extend_from_slice(label.as_bytes());
        }
        b.extend_from_slice(&[0, 0, 1, 0, 1]);
        b.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        b
    }

    fn reply_to(q: &[u8], id: u16) -> Vec<u8> {
        let mut r = q.to_vec();
        r[0..2].copy_from_slice(&id.to_be_bytes());
        r[2] |= 0x80;
        r
    }

    #[test]
    fn the_question_of_a_parsed_query_is_the_one_parse_reads() {
        for (name, do_bit, cd) in [("WWW.Example.com", true, false), ("a.b", false, true)] {
            let mut m = query(name, 7);
            m[3] |= if cd { wire::flags::CD as u8 } else { 0 };
            if !do_bit {
                let at = m.len() - 4;
                m[at] = 0;
            }
            let read = Question::parse(&m).unwrap();
            let of = Question::of(&wire::Query::parse(&m).unwrap());
            assert_eq!(of.name, read.name, "{name}");
            assert_eq!((of.qtype, of.qclass), (read.qtype, read.qclass), "{name}");
            assert_eq!(of.name_end, read.name_end, "{name}");
            assert_eq!((of.do_bit, of.cd), (do_bit, cd), "{name}");
            assert_eq!((read.do_bit, read.cd), (do_bit, cd), "{name}");
        }
    }

    #[test]
    fn question_parse_reads_do_bit_and_lowercases() {
        let m = query("WWW.Example.com", 7);
        let q = Question::parse(&m).unwrap();
        assert!(q.do_bit);
        assert_eq!(&q.name[..], b"\x03www\x07example\x03com\x00");
        assert_eq!((q.qtype, q.qclass), (1, 1));
        assert!(matches!(
            Question::parse(&reply_to(&m, 7)),
            Err(ForwardError::BadQuery(_))
        ));
    }

    #[test]
    fn check_reply_matches_id_and_question_case_insensitively() {
        let m = query("www.example.com", 7);
        let q = Question::parse(&m).unwrap();
        let upper = query("WWW.EXAMPLE.COM", 7);
        assert_eq!(check_reply(&reply_to(&upper, 9), 9, &q), Ok(()));
        assert_eq!(check_reply(&reply_to(&m, 9), 10, &q), Err(Mismatch::Id));
        assert_eq!(check_reply(&m, 7, &q), Err(Mismatch::NotAResponse));
        let other = query("www.example.org", 7);
        assert_eq!(
            check_reply(&reply_to(&other, 9), 9, &q),
            Err(Mismatch::Question)
        );
        let mut wrong_type = reply_to(&m, 9);
        let at = 12 + 17;
        wrong_type[at + 1] = 28;
        assert_eq!(check_reply(&wrong_type, 9, &q), Err(Mismatch::Question));
    }

    #[test]
    fn question_case_is_restored_only_when_equal_ignoring_case() {
        let mine = query("WwW.example.com", 7);
        let q = Question::parse(&mine).unwrap();
        let mut ans = reply_to(&query("www.example.com", 7), 7);
        restore_question_case(&mut ans, &mine[..q.name_end]);
        assert_eq!(&ans[12..q.name_end], &mine[12..q.name_end]);
        let mut other = reply_to(&query("xxx.example.com", 7), 7);
        let before = other.clone();
        restore_question_case(&mut other, &mine[..q.name_end]);
        assert_eq!(other, before);
    }

    #[test]
    fn fresh_id_never_repeats_the_clients() {
        for _ in 0..1000 {
            assert_ne!(fresh_id(0x1234), 0x1234);
        }
    }
}
