//! The life of one query, top to bottom:
//!
//! ```text
//! wire view → client allowed? → ANY? → local records / private names →
//! filter → cache → (upstream: forward → inspect answer → cache insert) →
//! answer bytes (+ one QueryEvent)
//! ```
//!
//! [`Engine::begin`] runs every step that needs no I/O, synchronously, on
//! the socket's task; only a cache miss returns [`Step::Forward`], which the
//! server finishes with [`Engine::forward`] on a task of its own. The engine
//! reads the current [`Runtime`] and filter through `arc_swap` (no locks);
//! the only shared mutable state a query touches is its cache shard.
//! Anything the wire view calls unusual goes through [`Engine::slow_path`].

use crate::config::{BlockedResponse, Config};
use crate::dns::cache::{Cache, CacheKey, Lookup};
use crate::dns::forward::Forwarder;
use crate::dns::local::{Local, LocalZone};
use crate::dns::wire::{self, Query, ResponseWriter, WireError, flags};
use crate::events::{EventSink, QueryEvent, Reason, Source};
use crate::filter::{Filter, Verdict};
use arc_swap::ArcSwap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What the socket loop does next.
pub enum Step {
    /// `out` holds the answer: send it.
    Reply,
    /// Say nothing (not a query, or too broken to answer).
    Drop,
    /// A cache miss: finish with [`Engine::forward`] off the socket loop.
    Forward(Box<Pending>),
}

/// A query waiting for an upstream.
pub struct Pending {
    raw: Vec<u8>,
    name: heapless::String<256>,
    q: Query,
    client: SocketAddr,
    transport: Transport,
    started: Started,
    key: CacheKey,
    zone: Option<usize>,
    /// The filter passed the name, so the answer's CNAMEs and addresses
    /// still need inspecting (allow-listed names skip it).
    inspect: bool,
    runtime: Arc<Runtime>,
}

/// Everything the data path needs from one config, built once per change.
pub struct Runtime {
    pub config: Arc<Config>,
    local: LocalZone,
    upstreams: Forwarder,
    zones: Vec<Forwarder>,
}

impl Runtime {
    pub fn new(config: Arc<Config>) -> Result<Runtime, String> {
        Ok(Runtime {
            local: LocalZone::new(&config)?,
            upstreams: Forwarder::new(&config.dns.upstreams, &config.dns),
            zones: config
                .forward
                .iter()
                .map(|f| Forwarder::new(&f.upstreams, &config.dns))
                .collect(),
            config,
        })
    }

    fn client_allowed(&self, ip: IpAddr) -> bool {
        self.config.dns.allow_clients.iter().any(|c| c.contains(ip))
    }

    pub fn upstreams(&self) -> &Forwarder {
        &self.upstreams
    }
}

/// Lock-free per-source answer counters.
#[derive(Default)]
pub struct Counters {
    by_source: [AtomicU64; 7],
    /// Datagrams dropped without an answer (unreadable, or responses).
    pub dropped: AtomicU64,
}

impl Counters {
    pub fn answered(&self, s: Source) -> u64 {
        self.by_source[s as usize].load(Ordering::Relaxed)
    }
    pub fn total(&self) -> u64 {
        self.by_source
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

pub struct Engine {
    runtime: ArcSwap<Runtime>,
    filter: Arc<ArcSwap<Filter>>,
    pub cache: Cache,
    events: EventSink,
    pub counters: Counters,
}

impl Engine {
    pub fn new(
        config: Arc<Config>,
        filter: Arc<ArcSwap<Filter>>,
        events: EventSink,
    ) -> Result<Engine, String> {
        Ok(Engine {
            cache: Cache::new(&config.cache),
            runtime: ArcSwap::from_pointee(Runtime::new(config)?),
            filter,
            events,
            counters: Counters::default(),
        })
    }

    /// Swaps in a new config; queries in flight finish on the old one.
    pub fn apply(&self, config: Arc<Config>) -> Result<(), String> {
        self.runtime.store(Arc::new(Runtime::new(config)?));
        Ok(())
    }

    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// Every step that needs no I/O. `out` receives the answer on `Reply`.
    pub fn begin(
        &self,
        raw: &[u8],
        client: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Step {
        // Answers that need no I/O take well under a microsecond, below the
        // log's resolution: logged as 0 µs without reading a clock (a coarse
        // clock would log one in a few thousand as a whole tick, 4 ms).
        // Forwarded queries get a precise clock below.
        let started = Started::NoWait;
        let q = match Query::parse(raw) {
            Ok(q) => q,
            Err(WireError::Truncated) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                return Step::Drop;
            }
            Err(WireError::Malformed) => {
                wire::header_only_error(raw, wire::RCODE_FORMERR, out);
                self.count(Source::Refused);
                return Step::Reply;
            }
            Err(WireError::Unusual) => return self.slow_path(raw, client, transport, out),
        };
        let rt = self.runtime.load();
        let ip = crate::config::canonical_ip(client.ip());
        let mut name = heapless::String::<256>::new();
        wire::name_to_text(&q.qname, &mut name);
        let asked = Asked {
            q: &q,
            name: &name,
            client: ip,
            transport,
            started,
        };

        if !rt.client_allowed(ip) {
            self.error_answer(raw, &q, wire::RCODE_REFUSED, out);
            return self.reply(&asked, &rt, Source::Refused, Reason::default(), out);
        }
        if q.qtype == wire::TYPE_ANY {
            self.any_answer(raw, &q, out);
            return self.reply(&asked, &rt, Source::Local, Reason::default(), out);
        }

        let zone = match rt.local.answer(raw, &q, out) {
            Local::Answered => {
                return self.reply(&asked, &rt, Source::Local, Reason::default(), out);
            }
            Local::Forward(i) => Some(i),
            Local::NotLocal => None,
        };

        let filter = self.filter.load();
        let verdict = filter.check(&name, ip);
        if let Verdict::Blocked(reason) = verdict {
            blocked_answer(raw, &q, &filter, reason, out);
            return self.reply(&asked, &rt, Source::Blocked, reason, out);
        }

        let key = CacheKey::from_query(&q);
        let question = &raw[wire::field::HEADER_LEN..q.question_end];
        if self.cache.get(&key, q.id, question, false, out) == Lookup::Hit {
            return self.reply(&asked, &rt, Source::Cache, Reason::default(), out);
        }

        Step::Forward(Box::new(Pending {
            raw: raw.to_vec(),
            name,
            q,
            client,
            transport,
            started: Started::Precise(Instant::now()),
            key,
            zone,
            inspect: verdict == Verdict::Pass,
            runtime: rt.clone(),
        }))
    }

    /// The upstream half of a cache miss.
    pub async fn forward(&self, p: Box<Pending>, out: &mut Vec<u8>) {
        let ip = crate::config::canonical_ip(p.client.ip());
        let rt = &p.runtime;
        let forwarder = match p.zone {
            Some(i) => &rt.zones[i],
            None => &rt.upstreams,
        };
        let msg = upstream_query(&p.raw, &p.q);
        let answer = forwarder.query(&msg).await;
        let (source, upstream, mut reason) = match answer {
            Ok(a) if wire::rcode(&a.bytes) != wire::RCODE_SERVFAIL => {
                let mut resp = a.bytes;
                strip_opt(&mut resp);
                let filter = self.filter.load();
                let blocked = if p.inspect {
                    filter.check_answer(&resp, ip)
                } else {
                    None
                };
                if let Some(reason) = blocked {
                    blocked_answer(&p.raw, &p.q, &filter, reason, out);
                    (Source::Blocked, a.upstream, reason)
                } else {
                    self.cache.insert(&p.key, &resp);
                    *out = resp;
                    wire::set_id(out, p.q.id);
                    copy_question(out, &p.raw, &p.q);
                    (Source::Upstream, a.upstream, Reason::default())
                }
            }
            failed => {
                let question = &p.raw[wire::field::HEADER_LEN..p.q.question_end];
                let lookup = self.cache.get(&p.key, p.q.id, question, true, out);
                if lookup == Lookup::Hit {
                    // Another query refreshed the entry meanwhile.
                    (Source::Cache, u8::MAX, Reason::default())
                } else if lookup == Lookup::Stale {
                    (Source::Stale, u8::MAX, Reason::default())
                } else if let Ok(a) = failed {
                    // Every upstream said SERVFAIL: pass it on, remember briefly.
                    let mut resp = a.bytes;
                    strip_opt(&mut resp);
                    self.cache.insert(&p.key, &resp);
                    *out = resp;
                    wire::set_id(out, p.q.id);
                    copy_question(out, &p.raw, &p.q);
                    (Source::Failed, a.upstream, Reason::default())
                } else {
                    self.error_answer(&p.raw, &p.q, wire::RCODE_SERVFAIL, out);
                    (Source::Failed, u8::MAX, Reason::default())
                }
            }
        };
        if source != Source::Blocked {
            reason = Reason::default();
        }
        self.finish(&p.q, p.transport, rt, out);
        self.done(&p.q, &p.name, ip, out, source, upstream, p.started, reason);
    }

    /// Several questions, other opcodes, EDNS versions, odd classes: read
    /// with hickory-proto, answer the error it deserves, or rewrite it as a
    /// plain query and start again on the fast path.
    fn slow_path(
        &self,
        raw: &[u8],
        client: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Step {
        use hickory_proto::op::{Edns, Message, MessageType, OpCode};
        use hickory_proto::rr::DNSClass;
        let msg = match Message::from_vec(raw) {
            Ok(m) => m,
            Err(_) => {
                wire::header_only_error(raw, wire::RCODE_FORMERR, out);
                self.count(Source::Refused);
                return Step::Reply;
            }
        };
        if msg.metadata.message_type == MessageType::Response {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return Step::Drop;
        }
        let rcode = if msg.metadata.op_code != OpCode::Query {
            Some(wire::RCODE_NOTIMP)
        } else if msg.queries.len() != 1 {
            Some(wire::RCODE_FORMERR)
        } else if msg.queries[0].query_class != DNSClass::IN {
            Some(wire::RCODE_REFUSED)
        } else {
            None
        };
        if let Some(rcode) = rcode {
            wire::header_only_error(raw, rcode, out);
            self.count(Source::Refused);
            return Step::Reply;
        }
        if let Some(e) = &msg.edns
            && e.version() != 0
        {
            // RFC 6891: BADVERS (16) = extended RCODE 1 in the OPT record.
            wire::header_only_error(raw, 0, out);
            out[11] = 1;
            wire::push_opt(out, 1232, false, 1);
            self.count(Source::Refused);
            return Step::Reply;
        }
        // A plain query wrapped oddly (answers or extra records in a query):
        // keep the question and EDNS, drop the rest, take the fast path.
        let mut clean = Message::new(msg.metadata.id, MessageType::Query, OpCode::Query);
        clean.metadata.recursion_desired = msg.metadata.recursion_desired;
        clean.metadata.checking_disabled = msg.metadata.checking_disabled;
        clean.add_query(msg.queries[0].clone());
        if let Some(e) = &msg.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(e.max_payload());
            edns.set_dnssec_ok(e.flags().dnssec_ok);
            clean.set_edns(edns);
        }
        match clean.to_vec() {
            Ok(bytes) if Query::parse(&bytes).is_ok() => self.begin(&bytes, client, transport, out),
            _ => {
                wire::header_only_error(raw, wire::RCODE_FORMERR, out);
                self.count(Source::Refused);
                Step::Reply
            }
        }
    }

    /// An answer decided without I/O: finish it and log it.
    fn reply(
        &self,
        a: &Asked<'_>,
        rt: &Runtime,
        source: Source,
        reason: Reason,
        out: &mut Vec<u8>,
    ) -> Step {
        self.finish(a.q, a.transport, rt, out);
        self.done(
            a.q,
            a.name,
            a.client,
            out,
            source,
            u8::MAX,
            a.started,
            reason,
        );
        Step::Reply
    }

    /// EDNS echo, then truncation to what a UDP client can take.
    fn finish(&self, q: &Query, transport: Transport, rt: &Runtime, out: &mut Vec<u8>) {
        // RD and CD mirror this client's query, whoever asked first.
        if out.len() >= wire::field::HEADER_LEN {
            let mask = flags::RD | flags::CD;
            let fl = (wire::response_flags(out) & !mask) | (q.flags & mask);
            out[2..4].copy_from_slice(&fl.to_be_bytes());
        }
        let ours = rt.config.dns.edns_udp_size;
        if q.edns.present {
            append_opt(out, ours, q.edns.do_bit);
        }
        if transport == Transport::Udp {
            let limit = if q.edns.present {
                q.edns.udp_size.min(ours) as usize
            } else {
                512
            };
            if out.len() > limit {
                truncate_to_question(out, q, ours);
            }
        }
    }

    fn error_answer(&self, raw: &[u8], q: &Query, rcode: u8, out: &mut Vec<u8>) {
        let w = ResponseWriter::new(out, raw, q, rcode, false);
        w.finish();
    }

    /// RFC 8482: answer ANY with one synthesized HINFO instead of everything.
    fn any_answer(&self, raw: &[u8], q: &Query, out: &mut Vec<u8>) {
        let mut w = ResponseWriter::new(out, raw, q, wire::RCODE_NOERROR, false);
        w.record_at_qname(0, wire::TYPE_HINFO, 3600, b"\x07RFC8482\x00");
        w.finish();
    }

    fn count(&self, s: Source) {
        self.counters.by_source[s as usize].fetch_add(1, Ordering::Relaxed);
    }

    #[allow(clippy::too_many_arguments)]
    fn done(
        &self,
        q: &Query,
        qname: &heapless::String<256>,
        client: IpAddr,
        out: &[u8],
        source: Source,
        upstream: u8,
        started: Started,
        reason: Reason,
    ) {
        self.count(source);
        self.events.emit(QueryEvent {
            time_ms: crate::clock::coarse_unix_ms(),
            client,
            qname: qname.clone(),
            qtype: q.qtype,
            rcode: wire::rcode(out),
            source,
            upstream,
            latency_us: started.elapsed_us(),
            reason,
        });
    }
}

/// Who asked what, how, and since when: what every answer needs to be
/// finished and logged.
struct Asked<'a> {
    q: &'a Query,
    name: &'a heapless::String<256>,
    client: IpAddr,
    transport: Transport,
    started: Started,
}

/// When a query started, by the clock that suits its path.
#[derive(Debug, Clone, Copy)]
enum Started {
    /// Answered without waiting on anything (local, cache, filter, errors).
    NoWait,
    Precise(Instant),
}

impl Started {
    fn elapsed_us(self) -> u32 {
        let us = match self {
            Started::NoWait => 0,
            Started::Precise(i) => i.elapsed().as_micros() as u64,
        };
        us.min(u32::MAX as u64) as u32
    }
}

/// What a blocked name answers, per `filter.blocked_response`.
fn blocked_answer(raw: &[u8], q: &Query, filter: &Filter, reason: Reason, out: &mut Vec<u8>) {
    let ttl = filter.blocked_ttl();
    let (rcode, addr): (u8, Option<IpAddr>) = match filter.blocked_response_for(reason) {
        BlockedResponse::Nxdomain => (wire::RCODE_NXDOMAIN, None),
        BlockedResponse::Refused => (wire::RCODE_REFUSED, None),
        BlockedResponse::Null => (
            wire::RCODE_NOERROR,
            match q.qtype {
                wire::TYPE_A => Some(IpAddr::from([0u8; 4])),
                wire::TYPE_AAAA => Some(IpAddr::from([0u8; 16])),
                _ => None,
            },
        ),
        BlockedResponse::Ip(ip) => (wire::RCODE_NOERROR, Some(ip)),
    };
    let mut w = ResponseWriter::new(out, raw, q, rcode, false);
    match (q.qtype, addr) {
        (wire::TYPE_A, Some(IpAddr::V4(v4))) => {
            w.record_at_qname(0, wire::TYPE_A, ttl, &v4.octets())
        }
        (wire::TYPE_AAAA, Some(IpAddr::V6(v6))) => {
            w.record_at_qname(0, wire::TYPE_AAAA, ttl, &v6.octets())
        }
        // Other types and the other address family: NODATA.
        _ => {}
    }
    w.finish();
}

/// The query we send upstream: the client's question (its case kept), RD,
/// the client's CD, and our own OPT carrying the client's DO bit. The
/// forwarder sets a fresh random ID.
fn upstream_query(raw: &[u8], q: &Query) -> Vec<u8> {
    let mut m = Vec::with_capacity(q.question_end + 11);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&(flags::RD | (q.flags & flags::CD)).to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
    m.extend_from_slice(&raw[wire::field::HEADER_LEN..q.question_end]);
    wire::push_opt(&mut m, 1232, q.edns.do_bit, 0);
    m
}

/// Appends an OPT record and counts it in ARCOUNT.
fn append_opt(out: &mut Vec<u8>, udp_size: u16, do_bit: bool) {
    if out.len() < wire::field::HEADER_LEN {
        return;
    }
    wire::push_opt(out, udp_size, do_bit, 0);
    let ar = wire::read_u16(out, 10).unwrap_or(0).saturating_add(1);
    out[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// Removes the upstream's OPT record: its EDNS was for us, not the client.
fn strip_opt(resp: &mut Vec<u8>) {
    let mut opt = None;
    if wire::for_each_record(resp, |r| {
        if r.rtype == wire::TYPE_OPT && r.section == 2 {
            opt = Some((r.start, r.rdata + r.rdlen));
        }
    })
    .is_err()
    {
        return;
    }
    if let Some((start, end)) = opt {
        resp.drain(start..end);
        let ar = wire::read_u16(resp, 10).unwrap_or(1).saturating_sub(1);
        resp[10..12].copy_from_slice(&ar.to_be_bytes());
    }
}

/// Puts the client's question bytes (and so its letter case) back.
fn copy_question(out: &mut [u8], raw: &[u8], q: &Query) {
    let range = wire::field::HEADER_LEN..q.question_end;
    if out.len() >= q.question_end && out[range.clone()].eq_ignore_ascii_case(&raw[range.clone()]) {
        out[range.clone()].copy_from_slice(&raw[range]);
    }
}

/// Too big for UDP: header and question only, TC set, so the client
/// retries over TCP.
fn truncate_to_question(out: &mut Vec<u8>, q: &Query, udp_size: u16) {
    out.truncate(q.question_end);
    out[2] |= (flags::TC >> 8) as u8;
    out[6..12].copy_from_slice(&[0; 6]);
    if q.edns.present {
        append_opt(out, udp_size, q.edns.do_bit);
    }
}
