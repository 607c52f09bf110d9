//! The life of one query, top to bottom:
//!
//! ```text
//! client within its rate? → wire view → client allowed? → ANY? →
//! local records / private names → cache → filter (unless the cached
//! answer carries this filter's stamp) → client's upstream share left? →
//! (upstream: forward → inspect answer → cache insert) → answer bytes
//! (+ one QueryEvent)
//! ```
//!
//! [`Engine::begin`] runs every step that needs no I/O, synchronously, on
//! the socket's task; only a cache miss returns [`Step::Forward`], which the
//! server finishes with [`Engine::forward`] on a task of its own. Either way
//! an answer ends in `Engine::finish` (flags, EDNS, UDP size, one
//! [`QueryEvent`]), told its [`Outcome`] for the log. The engine
//! reads the current [`Runtime`] and filter through `arc_swap` (no locks);
//! the shared mutable state a query touches is its client's rate bucket
//! and its cache shard (and, on a miss, its client's upstream share).
//! Anything the wire view calls unusual goes through [`Engine::slow_path`].

use crate::config::{BlockedResponse, Config};
use crate::dns::cache::{Cache, CacheKey, Lookup};
use crate::dns::client_slots::{ClientSlot, ClientSlots};
use crate::dns::forward::{Answer, ForwardError, Forwarder, Question};
use crate::dns::lease_names::LeaseNames;
use crate::dns::local::{Local, LocalZone};
use crate::dns::prefetch::Prefetch;
use crate::dns::rate_limit::RateLimiter;
use crate::events::{EventSink, QueryEvent, Reason, Source};
use crate::filter::{Filter, Stamp, Verdict};
use crate::wire::{self, Query, ResponseWriter, WireError, flags};
use arc_swap::ArcSwap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

mod refresh;
pub use refresh::Refresh;

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
    client: IpAddr,
    transport: Transport,
    started: Started,
    key: CacheKey,
    zone: Option<usize>,
    /// The filter passed the name, so the answer's CNAMEs and addresses
    /// still need inspecting (allow-listed names skip it).
    inspect: bool,
    /// The filter's stamp for the name, cached with the answer.
    stamp: Stamp,
    runtime: Arc<Runtime>,
    /// One of the client's `dns.client_upstream_queries`, until answered.
    _share: ClientSlot,
}

impl Pending {
    /// The upstreams this query goes to: a `[[forward]]` zone's, or the
    /// default ones.
    pub fn forwarder(&self) -> &Forwarder {
        self.runtime.forwarder(self.zone)
    }

    /// What is sent upstream for it (see [`upstream_query`]).
    pub fn upstream_query(&self) -> Vec<u8> {
        upstream_query(&self.raw, &self.q)
    }

    /// [`Pending::upstream_query`] and its question, read from the query
    /// already parsed rather than parsed again.
    pub(crate) fn upstream_question(&self) -> (Vec<u8>, Question) {
        (self.upstream_query(), Question::of(&self.q))
    }

    fn asked(&self) -> Asked<'_> {
        Asked {
            q: &self.q,
            name: &self.name,
            client: self.client,
            transport: self.transport,
            started: self.started,
        }
    }
}

/// Everything the data path needs from one config, built once per change.
pub struct Runtime {
    pub config: Arc<Config>,
    local: LocalZone,
    upstreams: Forwarder,
    zones: Vec<Forwarder>,
    /// The LAN's global IPv6 prefixes when `dns.allow_lan_prefixes`.
    lan_prefixes: Vec<crate::config::Cidr>,
}

impl Runtime {
    pub fn new(config: Arc<Config>) -> Result<Runtime, String> {
        let lan_prefixes = match config.dns.allow_lan_prefixes {
            true => crate::netif::global_v6_prefixes(&crate::netif::addrs())
                .into_iter()
                .map(|(addr, prefix)| crate::config::Cidr { addr, prefix })
                .collect(),
            false => Vec::new(),
        };
        Ok(Runtime {
            lan_prefixes,
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
        let dns = &self.config.dns;
        dns.allow_clients.iter().any(|c| c.contains(ip))
            || self.lan_prefixes.iter().any(|c| c.contains(ip))
    }

    pub fn upstreams(&self) -> &Forwarder {
        &self.upstreams
    }

    /// A `[[forward]]` zone's upstreams, or None for `dns.upstreams`.
    fn forwarder(&self, zone: Option<usize>) -> &Forwarder {
        match zone {
            Some(i) => &self.zones[i],
            None => &self.upstreams,
        }
    }
}

/// Lock-free per-source answer counters, and what the abuse limits turned
/// away.
#[derive(Default)]
pub struct Counters {
    by_source: [AtomicU64; 7],
    /// Datagrams dropped without an answer (unreadable, or responses).
    pub dropped: AtomicU64,
    /// Queries answered REFUSED for going over `dns.rate_limit`.
    pub rate_limited: AtomicU64,
    /// Cache misses answered SERVFAIL because their client already had
    /// `dns.client_upstream_queries` waiting for upstreams.
    pub over_upstream_share: AtomicU64,
    /// TCP connections closed at once for going over
    /// `dns.tcp_max_connections` or `dns.tcp_client_connections`.
    pub tcp_refused: AtomicU64,
    /// TCP connections closed because the client left an answer unread
    /// for `dns.tcp_write_timeout`.
    pub tcp_stalled: AtomicU64,
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
    rate_limit: RateLimiter,
    upstream_shares: Arc<ClientSlots>,
    pub prefetch: Prefetch<Refresh>,
    /// Devices' names from DHCP leases (`lease_names`), swapped in by
    /// the DHCP server.
    pub lease_names: Arc<ArcSwap<LeaseNames>>,
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
            rate_limit: RateLimiter::default(),
            upstream_shares: Arc::default(),
            prefetch: Prefetch::default(),
            lease_names: Arc::default(),
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
        // Before anything else, so a flood of any kind costs a look-up.
        let ip = crate::config::canonical_ip(client.ip());
        let rt = self.runtime.load();
        let dns = &rt.config.dns;
        if !self
            .rate_limit
            .admit(ip, dns.rate_limit, dns.rate_limit_burst)
        {
            return self.rate_limited(raw, out);
        }
        self.decide(raw, ip, &rt, transport, out)
    }

    /// [`Engine::begin`] for a client within its rate.
    fn decide(
        &self,
        raw: &[u8],
        ip: IpAddr,
        rt: &Arc<Runtime>,
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
            Err(WireError::Unusual) => return self.slow_path(raw, ip, rt, transport, out),
        };
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
            return self.finish(&asked, rt, Outcome::ours(Source::Refused), out);
        }
        if q.qtype == wire::TYPE_ANY {
            self.any_answer(raw, &q, out);
            return self.finish(&asked, rt, Outcome::ours(Source::Local), out);
        }

        let zone = match rt.local.answer(raw, &q, &self.lease_names.load(), out) {
            Local::Answered => return self.finish(&asked, rt, Outcome::ours(Source::Local), out),
            Local::Forward(i) => Some(i),
            Local::NotLocal => None,
        };

        // The cache first: an answer stored with the current filter
        // snapshot's stamp is for a name no list, rule or regex touches,
        // so a hit on it skips the filter's look-up (the lists' table is
        // megabytes: its reads are most of a cached answer's own time).
        let question = &raw[wire::field::HEADER_LEN..q.question_end];
        let found = self.cache.lookup(&q, question, out);
        let filter = self.filter.load();
        let hit = matches!(found.lookup, Lookup::Hit | Lookup::HitRefresh);
        let (verdict, stamp) = if hit && filter.vouches_for(found.stamp) {
            (Verdict::Pass, found.stamp)
        } else {
            filter.check_stamped(&name, ip)
        };
        if let Verdict::Blocked(reason) = verdict {
            blocked_answer(raw, &q, &filter, reason, out);
            return self.finish(&asked, rt, Outcome::blocked(reason, NO_UPSTREAM), out);
        }
        if hit {
            if found.lookup == Lookup::HitRefresh && rt.config.dns.prefetch {
                self.prefetch.ask(Refresh {
                    msg: upstream_query(raw, &q),
                    key: CacheKey::from_query(&q),
                    zone,
                    inspect: verdict == Verdict::Pass,
                    stamp,
                    client: ip,
                    runtime: rt.clone(),
                });
            }
            return self.finish(&asked, rt, Outcome::ours(Source::Cache), out);
        }
        self.cache.missed(&found);

        // One client flooding unique names must not take every upstream
        // slot the household shares.
        let share = self
            .upstream_shares
            .take(ip, rt.config.dns.client_upstream_queries);
        let Some(share) = share else {
            self.counters
                .over_upstream_share
                .fetch_add(1, Ordering::Relaxed);
            self.error_answer(raw, &q, wire::RCODE_SERVFAIL, out);
            return self.finish(&asked, rt, Outcome::ours(Source::Failed), out);
        };

        let key = CacheKey::from_query(&q);
        Step::Forward(Box::new(Pending {
            raw: raw.to_vec(),
            name,
            q,
            client: ip,
            transport,
            started: Started::Precise(Instant::now()),
            key,
            zone,
            inspect: verdict == Verdict::Pass,
            stamp,
            runtime: rt.clone(),
            _share: share,
        }))
    }

    /// The upstream half of a cache miss, on tokio.
    pub async fn forward(&self, p: Box<Pending>, out: &mut Vec<u8>) {
        let result = p.forwarder().query(&p.upstream_query()).await;
        self.complete(p, result, out);
    }

    /// Answers a cache miss from what its upstream exchange brought back,
    /// however it was forwarded (tokio's [`Engine::forward`], or the UDP
    /// reader's own): the answer inspected and cached, or the cache's stale
    /// copy, or SERVFAIL; then `finish`ed like every answer.
    pub fn complete(
        &self,
        p: Box<Pending>,
        result: Result<Answer, ForwardError>,
        out: &mut Vec<u8>,
    ) {
        let asked = p.asked();
        let rt = &p.runtime;
        let outcome = match result {
            Ok(a) if wire::rcode(&a.bytes) != wire::RCODE_SERVFAIL => {
                let mut resp = a.bytes;
                strip_opt(&mut resp);
                let filter = self.filter.load();
                let blocked = if p.inspect {
                    filter.check_answer(&resp, asked.client)
                } else {
                    None
                };
                if let Some(reason) = blocked {
                    blocked_answer(&p.raw, &p.q, &filter, reason, out);
                    Outcome::blocked(reason, a.upstream)
                } else {
                    self.cache.insert_stamped(&p.key, &resp, p.stamp);
                    upstream_answer(resp, &p.raw, &p.q, out);
                    Outcome::upstream(Source::Upstream, a.upstream)
                }
            }
            failed => {
                let question = &p.raw[wire::field::HEADER_LEN..p.q.question_end];
                let lookup = self.cache.get(&p.key, p.q.id, question, true, out);
                if lookup == Lookup::Hit {
                    // Another query refreshed the entry meanwhile.
                    Outcome::ours(Source::Cache)
                } else if lookup == Lookup::Stale {
                    Outcome::ours(Source::Stale)
                } else if let Ok(a) = failed {
                    // Every upstream said SERVFAIL: pass it on, remember briefly.
                    let mut resp = a.bytes;
                    strip_opt(&mut resp);
                    self.cache.insert(&p.key, &resp);
                    upstream_answer(resp, &p.raw, &p.q, out);
                    Outcome::upstream(Source::Failed, a.upstream)
                } else {
                    self.error_answer(&p.raw, &p.q, wire::RCODE_SERVFAIL, out);
                    Outcome::ours(Source::Failed)
                }
            }
        };
        self.finish(&asked, rt, outcome, out);
    }

    /// Several questions, other opcodes, EDNS versions, odd classes: read
    /// with hickory-proto, answer the error it deserves, or rewrite it as a
    /// plain query and start again on the fast path.
    fn slow_path(
        &self,
        raw: &[u8],
        ip: IpAddr,
        rt: &Arc<Runtime>,
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
            wire::push_opt(out, 1232, false, 1);
            wire::set_arcount(out, 1);
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
            Ok(bytes) if Query::parse(&bytes).is_ok() => {
                self.decide(&bytes, ip, rt, transport, out)
            }
            _ => {
                wire::header_only_error(raw, wire::RCODE_FORMERR, out);
                self.count(Source::Refused);
                Step::Reply
            }
        }
    }

    /// Every answer ends here, however it was made: RD and CD mirror the
    /// client's query, EDNS is echoed, a UDP answer is cut to what the
    /// client takes, then it is counted and logged. Returns
    /// [`Step::Reply`], for `begin` to hand back.
    fn finish(&self, a: &Asked<'_>, rt: &Runtime, outcome: Outcome, out: &mut Vec<u8>) -> Step {
        // RD and CD mirror this client's query, whoever asked first.
        let mask = flags::RD | flags::CD;
        let fl = (wire::response_flags(out) & !mask) | (a.q.flags & mask);
        wire::set_flags(out, fl);
        let ours = rt.config.dns.edns_udp_size;
        if a.q.edns.present {
            append_opt(out, ours, a.q.edns.do_bit);
        }
        if a.transport == Transport::Udp {
            let limit = if a.q.edns.present {
                a.q.edns.udp_size.min(ours) as usize
            } else {
                512
            };
            if out.len() > limit {
                truncate_to_question(out, a.q, ours);
            }
        }
        self.count(outcome.source);
        self.events.emit(QueryEvent {
            time_ms: crate::clock::coarse_unix_ms(),
            client: a.client,
            qname: a.name.clone(),
            qtype: a.q.qtype,
            rcode: wire::rcode(out),
            source: outcome.source,
            upstream: outcome.upstream,
            latency_us: a.started.elapsed_us(),
            reason: outcome.reason,
        });
        Step::Reply
    }

    /// Over its rate: REFUSED, counted but not logged (a flood would push
    /// the household's own queries out of the log), never sent upstream.
    fn rate_limited(&self, raw: &[u8], out: &mut Vec<u8>) -> Step {
        match Query::parse(raw) {
            Ok(q) => self.error_answer(raw, &q, wire::RCODE_REFUSED, out),
            Err(WireError::Truncated) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                return Step::Drop;
            }
            Err(_) => wire::header_only_error(raw, wire::RCODE_REFUSED, out),
        }
        self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        Step::Reply
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

/// What the query log says of an answer besides the answer itself.
struct Outcome {
    source: Source,
    /// Which upstream answered, or [`NO_UPSTREAM`].
    upstream: u8,
    /// Why it was blocked; the default for answers not blocked.
    reason: Reason,
}

/// In a [`QueryEvent`]: no upstream gave this answer.
const NO_UPSTREAM: u8 = u8::MAX;

impl Outcome {
    /// Made here, from local records, the cache or an error.
    fn ours(source: Source) -> Outcome {
        Outcome {
            source,
            upstream: NO_UPSTREAM,
            reason: Reason::default(),
        }
    }

    /// A block: of the name asked, or of what `upstream` answered.
    fn blocked(reason: Reason, upstream: u8) -> Outcome {
        Outcome {
            source: Source::Blocked,
            upstream,
            reason,
        }
    }

    /// An upstream's answer, passed on.
    fn upstream(source: Source, upstream: u8) -> Outcome {
        Outcome {
            source,
            upstream,
            reason: Reason::default(),
        }
    }
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
        // REFUSED says nothing about the name: nothing to cache.
        _ if rcode == wire::RCODE_REFUSED => {}
        // NXDOMAIN, or NODATA for other types and the other address
        // family: with an SOA, so the client caches it for `ttl`.
        _ => w.negative_soa(0, ttl),
    }
    w.finish();
}

/// The query we send upstream: the client's question (its case kept), RD,
/// the client's CD, and our own OPT carrying the client's DO bit. The
/// forwarder sets a fresh random ID.
fn upstream_query(raw: &[u8], q: &Query) -> Vec<u8> {
    let mut m = Vec::with_capacity(q.question_end + 11);
    m.extend_from_slice(&[0; wire::field::HEADER_LEN]);
    wire::set_flags(&mut m, flags::RD | (q.flags & flags::CD));
    wire::set_qdcount(&mut m, 1);
    wire::set_arcount(&mut m, 1);
    m.extend_from_slice(&raw[wire::field::HEADER_LEN..q.question_end]);
    wire::push_opt(&mut m, 1232, q.edns.do_bit, 0);
    m
}

/// An upstream's answer (OPT already stripped) as this client's: its ID,
/// and its question bytes (and so its letter case) back.
fn upstream_answer(resp: Vec<u8>, raw: &[u8], q: &Query, out: &mut Vec<u8>) {
    *out = resp;
    wire::set_id(out, q.id);
    let range = wire::field::HEADER_LEN..q.question_end;
    if out.len() >= q.question_end && out[range.clone()].eq_ignore_ascii_case(&raw[range.clone()]) {
        out[range.clone()].copy_from_slice(&raw[range]);
    }
}

/// Appends an OPT record and counts it in ARCOUNT.
fn append_opt(out: &mut Vec<u8>, udp_size: u16, do_bit: bool) {
    if out.len() < wire::field::HEADER_LEN {
        return;
    }
    wire::push_opt(out, udp_size, do_bit, 0);
    let ar = wire::arcount(out).saturating_add(1);
    wire::set_arcount(out, ar);
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
        let ar = wire::arcount(resp).saturating_sub(1);
        wire::set_arcount(resp, ar);
    }
}

/// Too big for UDP: header and question only, TC set, so the client
/// retries over TCP.
fn truncate_to_question(out: &mut Vec<u8>, q: &Query, udp_size: u16) {
    out.truncate(q.question_end);
    wire::set_flag(out, flags::TC);
    wire::set_ancount(out, 0);
    wire::set_nscount(out, 0);
    wire::set_arcount(out, 0);
    if q.edns.present {
        append_opt(out, udp_size, q.edns.do_bit);
    }
}
