//! A stand-in for the internet's DNS servers: a small authoritative-looking
//! server on loopback whose answers a test scripts per name.
//!
//! [`StandIn::start`] serves UDP and TCP on one port; [`StandIn::serve_tls`]
//! and [`StandIn::serve_https`] add DoT and DoH listeners (HTTP/2 or
//! HTTP/1.1 by ALPN) that answer from the same rules and count into the same
//! counters. Names without a rule get [`Behaviour::standard`]: A 192.0.2.1
//! and AAAA 2001:db8::1, TTL 300. Answers echo the query's EDNS (DO bit
//! included) and, over UDP, are truncated when larger than the query
//! allows, as a real server does.
//!
//! Built on hickory-proto: clarity over speed. Not for production use.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, NULL, PTR, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// What [`Behaviour::standard`] answers for A queries.
pub const DEFAULT_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// What [`Behaviour::standard`] answers for AAAA queries.
pub const DEFAULT_AAAA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const DEFAULT_TTL: u32 = 300;
/// The address every forged answer of [`Behaviour::SpoofFirst`] carries;
/// a resolver that returns it was fooled.
pub const SPOOF_A: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);

/// One resource record. An empty `name` means the query's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub name: String,
    pub ttl: u32,
    pub data: RecData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Ns(String),
    Ptr(String),
    Mx(u16, String),
    /// One character-string (split in 255-byte pieces if longer).
    Txt(String),
    /// Any other type, with raw RDATA.
    Other {
        rtype: u16,
        rdata: Vec<u8>,
    },
}

impl RecData {
    pub fn rtype(&self) -> u16 {
        match self {
            RecData::A(_) => 1,
            RecData::Aaaa(_) => 28,
            RecData::Cname(_) => 5,
            RecData::Ns(_) => 2,
            RecData::Ptr(_) => 12,
            RecData::Mx(..) => 15,
            RecData::Txt(_) => 16,
            RecData::Other { rtype, .. } => *rtype,
        }
    }
}

impl Rec {
    pub fn new(name: &str, ttl: u32, data: RecData) -> Rec {
        Rec {
            name: name.to_string(),
            ttl,
            data,
        }
    }
    pub fn a(name: &str, ip: Ipv4Addr, ttl: u32) -> Rec {
        Rec::new(name, ttl, RecData::A(ip))
    }
    pub fn aaaa(name: &str, ip: Ipv6Addr, ttl: u32) -> Rec {
        Rec::new(name, ttl, RecData::Aaaa(ip))
    }
    pub fn cname(name: &str, target: &str, ttl: u32) -> Rec {
        Rec::new(name, ttl, RecData::Cname(target.to_string()))
    }
    pub fn txt(name: &str, text: &str, ttl: u32) -> Rec {
        Rec::new(name, ttl, RecData::Txt(text.to_string()))
    }
}

/// How the stand-in answers a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// NOERROR with those of `records` whose type is the query's (CNAMEs
    /// always, everything for ANY); none left means NODATA without SOA.
    Answer {
        records: Vec<Rec>,
    },
    /// Waits, then behaves as the inner behaviour.
    Delay(Duration, Box<Behaviour>),
    /// Over UDP: the answer with TC set and no records. Over TCP, TLS and
    /// HTTPS: the full answer.
    Truncate(Box<Behaviour>),
    /// name CNAME chain[0], chain[0] CNAME chain[1], ..., last A `final_a`.
    CnameChain {
        chain: Vec<String>,
        final_a: Ipv4Addr,
        ttl: u32,
    },
    /// NXDOMAIN with the zone's SOA (TTL and MINIMUM = `soa_minimum`) in
    /// the authority section; the zone is the name's last two labels.
    Nxdomain {
        soa_minimum: u32,
    },
    /// NOERROR, no answers, SOA as for `Nxdomain`.
    NoData {
        soa_minimum: u32,
    },
    Servfail,
    Refused,
    /// Never answers.
    Silent,
    /// Over UDP: the whole answer whatever size the query allowed (a
    /// server that ignores EDNS limits). Elsewhere: the inner behaviour.
    Oversize(Box<Behaviour>),
    /// Before the real answer, sends forgeries carrying [`SPOOF_A`]: one
    /// with the wrong ID, one with the wrong question and (UDP only) one
    /// correct-looking one from another source port. Over HTTPS only the
    /// real answer is sent (TLS leaves no room for forgeries).
    SpoofFirst(Box<Behaviour>),
    /// The inner behaviour's answer sent twice (a duplicated datagram).
    Twice(Box<Behaviour>),
    /// An answer of at least `bytes` bytes: A records (TXT records for TXT
    /// queries), for truncation tests.
    Large {
        bytes: usize,
    },
}

impl Behaviour {
    /// What a name without a rule gets.
    pub fn standard() -> Behaviour {
        Behaviour::Answer {
            records: vec![
                Rec::a("", DEFAULT_A, DEFAULT_TTL),
                Rec::aaaa("", DEFAULT_AAAA, DEFAULT_TTL),
            ],
        }
    }
    /// One A record for the query's name.
    pub fn a(ip: Ipv4Addr, ttl: u32) -> Behaviour {
        Behaviour::Answer {
            records: vec![Rec::a("", ip, ttl)],
        }
    }
    pub fn delay(d: Duration, inner: Behaviour) -> Behaviour {
        Behaviour::Delay(d, Box::new(inner))
    }
    pub fn truncate(inner: Behaviour) -> Behaviour {
        Behaviour::Truncate(Box::new(inner))
    }
    pub fn oversize(inner: Behaviour) -> Behaviour {
        Behaviour::Oversize(Box::new(inner))
    }
    pub fn spoof_first(inner: Behaviour) -> Behaviour {
        Behaviour::SpoofFirst(Box::new(inner))
    }
    pub fn twice(inner: Behaviour) -> Behaviour {
        Behaviour::Twice(Box::new(inner))
    }
}

#[derive(Default)]
struct Counters {
    per_name: HashMap<String, usize>,
    last: Option<Vec<u8>>,
    last_udp_source: Option<SocketAddr>,
}

struct Shared {
    rules: Mutex<HashMap<String, Behaviour>>,
    default: Mutex<Behaviour>,
    counters: Mutex<Counters>,
    total: AtomicUsize,
    connections: AtomicUsize,
    udp_replies: AtomicUsize,
}

/// A scripted upstream DNS server on its own tokio tasks. Dropping it stops
/// its listeners.
pub struct StandIn {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

impl StandIn {
    /// Serves UDP and TCP on `addr`; port 0 picks a port free for both.
    pub async fn start(addr: SocketAddr) -> io::Result<StandIn> {
        let (udp, tcp) = bind_pair(addr).await?;
        let addr = udp.local_addr()?;
        let stand_in = StandIn {
            shared: Arc::new(Shared {
                rules: Mutex::new(HashMap::new()),
                default: Mutex::new(Behaviour::standard()),
                counters: Mutex::new(Counters::default()),
                total: AtomicUsize::new(0),
                connections: AtomicUsize::new(0),
                udp_replies: AtomicUsize::new(0),
            }),
            addr,
            tasks: Mutex::new(Vec::new()),
        };
        let shared = stand_in.shared.clone();
        stand_in.spawn(serve_udp(Arc::new(udp), shared.clone()));
        stand_in.spawn(accept_loop(tcp, shared, |stream, shared| async move {
            serve_stream(stream, shared).await
        }));
        Ok(stand_in)
    }

    fn spawn(&self, f: impl Future<Output = ()> + Send + 'static) {
        self.tasks.lock().unwrap().push(tokio::spawn(f));
    }

    /// The UDP and TCP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets how `name` (any case, trailing dot optional) is answered.
    pub fn set(&self, name: &str, behaviour: Behaviour) {
        self.shared
            .rules
            .lock()
            .unwrap()
            .insert(key(name), behaviour);
    }

    /// Sets how names without a rule are answered.
    pub fn set_default(&self, behaviour: Behaviour) {
        *self.shared.default.lock().unwrap() = behaviour;
    }

    /// Queries for `name` received so far, over every transport.
    pub fn queries(&self, name: &str) -> usize {
        let c = self.shared.counters.lock().unwrap();
        c.per_name.get(&key(name)).copied().unwrap_or(0)
    }

    pub fn total_queries(&self) -> usize {
        self.shared.total.load(Ordering::SeqCst)
    }

    /// The raw bytes of the last query received.
    pub fn last_query(&self) -> Option<Vec<u8>> {
        self.shared.counters.lock().unwrap().last.clone()
    }

    /// Where the last UDP query came from (to check source ports vary).
    pub fn last_udp_source(&self) -> Option<SocketAddr> {
        self.shared.counters.lock().unwrap().last_udp_source
    }

    /// UDP datagrams sent so far, forgeries and duplicates included (to
    /// know a late answer has gone out).
    pub fn udp_replies(&self) -> usize {
        self.shared.udp_replies.load(Ordering::SeqCst)
    }

    /// TCP, DoT and DoH connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Adds a DNS-over-TLS listener on `addr`; returns its address.
    pub async fn serve_tls(
        &self,
        addr: SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        self.spawn(accept_loop(
            listener,
            self.shared.clone(),
            move |tcp, shared| {
                let acceptor = acceptor.clone();
                async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve_stream(tls, shared).await;
                    }
                }
            },
        ));
        Ok(local)
    }

    /// Adds a DNS-over-HTTPS listener on `addr` answering POST (any path)
    /// with `application/dns-message`; HTTP/2 when the client and `config`
    /// agree on "h2" by ALPN, else HTTP/1.1. Returns its address.
    pub async fn serve_https(
        &self,
        addr: SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        self.spawn(accept_loop(
            listener,
            self.shared.clone(),
            move |tcp, shared| {
                let acceptor = acceptor.clone();
                async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                        serve_h2(tls, shared).await;
                    } else {
                        serve_http1(tls, shared).await;
                    }
                }
            },
        ));
        Ok(local)
    }
}

/// A rustls server config (ring provider) for [`StandIn::serve_tls`] and
/// [`StandIn::serve_https`] from a DER certificate chain and PKCS#8 key.
pub fn tls_server_config(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    pkcs8_key: Vec<u8>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8_key);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key.into())?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Binds UDP and TCP to the same port. With port 0 the kernel's UDP pick
/// may be taken for TCP: try a few.
async fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port for UDP and TCP")))
}

/// A name as the rules are keyed: lower-case, no trailing dot.
pub(super) fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Udp,
    Stream,
    Https,
}

enum Reply {
    Send(Vec<u8>),
    /// A forgery sent from a different source port (UDP only).
    FromOtherPort(Vec<u8>),
}

async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let packet = buf[..n].to_vec();
        shared.counters.lock().unwrap().last_udp_source = Some(peer);
        let (socket, shared) = (socket.clone(), shared.clone());
        tokio::spawn(async move {
            for reply in handle(&shared, &packet, Via::Udp).await {
                match reply {
                    Reply::Send(bytes) => {
                        let _ = socket.send_to(&bytes, peer).await;
                    }
                    Reply::FromOtherPort(bytes) => {
                        let local = SocketAddr::new(socket.local_addr().unwrap().ip(), 0);
                        if let Ok(other) = UdpSocket::bind(local).await {
                            let _ = other.send_to(&bytes, peer).await;
                        }
                    }
                }
                shared.udp_replies.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
}

async fn accept_loop<F, Fut>(listener: TcpListener, shared: Arc<Shared>, serve: F)
where
    F: Fn(TcpStream, Arc<Shared>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(serve(stream, shared.clone()));
    }
}

/// DNS over a stream: length-prefixed messages, each answered on its own
/// task so a delayed name does not hold up the others.
async fn serve_stream<S: AsyncRead + AsyncWrite + Send + 'static>(stream: S, shared: Arc<Shared>) {
    let (mut rd, wr) = tokio::io::split(stream);
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    loop {
        let Ok(len) = rd.read_u16().await else { return };
        let mut msg = vec![0u8; len as usize];
        if rd.read_exact(&mut msg).await.is_err() {
            return;
        }
        let (wr, shared) = (wr.clone(), shared.clone());
        tokio::spawn(async move {
            for reply in handle(&shared, &msg, Via::Stream).await {
                if let Reply::Send(bytes) = reply {
                    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&bytes);
                    let mut w = wr.lock().await;
                    if w.write_all(&framed).await.is_err() || w.flush().await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

/// The last reply is the real one; forgeries make no sense inside TLS.
async fn https_answer(shared: &Shared, body: &[u8]) -> Option<Vec<u8>> {
    match handle(shared, body, Via::Https).await.pop() {
        Some(Reply::Send(bytes)) => Some(bytes),
        _ => None,
    }
}

async fn serve_http1<S: AsyncRead + AsyncWrite + Unpin>(stream: S, shared: Arc<Shared>) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if stream.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" || header == "\n" {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0).min(65_535);
            }
        }
        let mut body = vec![0u8; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let response = if !request_line.starts_with("POST ") {
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else {
            match https_answer(&shared, &body).await {
                Some(answer) => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\nContent-Length: {}\r\n\r\n",
                        answer.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(&answer);
                    r
                }
                // Silent: hold the request until the client gives up.
                None => return std::future::pending().await,
            }
        };
        let w = stream.get_mut();
        if w.write_all(&response).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
}

async fn serve_h2<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    shared: Arc<Shared>,
) {
    let Ok(mut conn) = h2::server::handshake(stream).await else {
        return;
    };
    while let Some(Ok((request, mut respond))) = conn.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let is_post = request.method() == http::Method::POST;
            let mut body = request.into_body();
            let mut msg = Vec::new();
            while let Some(Ok(chunk)) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.len());
                msg.extend_from_slice(&chunk);
            }
            if !is_post {
                let resp = http::Response::builder().status(405).body(()).unwrap();
                let _ = respond.send_response(resp, true);
                return;
            }
            let Some(answer) = https_answer(&shared, &msg).await else {
                return std::future::pending().await;
            };
            let resp = http::Response::builder()
                .status(200)
                .header("content-type", "application/dns-message")
                .header("content-length", answer.len())
                .body(())
                .unwrap();
            if let Ok(mut send) = respond.send_response(resp, false) {
                let _ = send.send_data(answer.into(), true);
            }
        });
    }
}

/// Counts the query and works out the replies, waiting out any delay.
async fn handle(shared: &Shared, raw: &[u8], via: Via) -> Vec<Reply> {
    let Ok(query) = Message::from_vec(raw) else {
        return Vec::new();
    };
    let Some(question) = query.queries.first().cloned() else {
        return Vec::new();
    };
    if query.metadata.message_type != MessageType::Query {
        return Vec::new();
    }
    let name = key(&question.name().to_ascii());
    {
        let mut c = shared.counters.lock().unwrap();
        *c.per_name.entry(name.clone()).or_default() += 1;
        c.last = Some(raw.to_vec());
    }
    shared.total.fetch_add(1, Ordering::SeqCst);
    let rule = shared.rules.lock().unwrap().get(&name).cloned();
    let behaviour = rule.unwrap_or_else(|| shared.default.lock().unwrap().clone());

    // Peel the wrappers; what is left says what to answer.
    let (mut delay, mut truncate, mut spoof) = (Duration::ZERO, false, false);
    let (mut ignore_limit, mut twice) = (false, false);
    let mut base = &behaviour;
    loop {
        match base {
            Behaviour::Delay(d, inner) => {
                delay += *d;
                base = inner;
            }
            Behaviour::Truncate(inner) => {
                truncate = true;
                base = inner;
            }
            Behaviour::SpoofFirst(inner) => {
                spoof = true;
                base = inner;
            }
            Behaviour::Oversize(inner) => {
                ignore_limit = true;
                base = inner;
            }
            Behaviour::Twice(inner) => {
                twice = true;
                base = inner;
            }
            _ => break,
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Some(real) = answer(&query, &question, base) else {
        return Vec::new();
    };
    let mut replies = Vec::new();
    if spoof && via != Via::Https {
        let mut wrong_id = forged(&query, question.clone());
        wrong_id.metadata.id = query.metadata.id.wrapping_add(1);
        replies.push(Reply::Send(encode(&wrong_id)));
        let mut other = question.clone();
        other.set_name(Name::from_ascii("spoofed.invalid.").unwrap());
        replies.push(Reply::Send(encode(&forged(&query, other))));
        if via == Via::Udp {
            replies.push(Reply::FromOtherPort(encode(&forged(&query, question))));
        }
    }
    let limit = match &query.edns {
        Some(e) => e.max_payload().max(512) as usize,
        None => 512,
    };
    let mut bytes = encode(&real);
    if via == Via::Udp && (truncate || (bytes.len() > limit && !ignore_limit)) {
        bytes = encode(&real.truncate());
    }
    if twice {
        replies.push(Reply::Send(bytes.clone()));
    }
    replies.push(Reply::Send(bytes));
    replies
}

fn encode(m: &Message) -> Vec<u8> {
    m.to_vec().expect("stand-in answers always encode")
}

/// A response shell for `query` with `rcode`, EDNS echoed.
fn response(query: &Message, question: Query, rcode: ResponseCode) -> Message {
    let mut m = Message::response(query.metadata.id, OpCode::Query);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.checking_disabled = query.metadata.checking_disabled;
    m.metadata.response_code = rcode;
    m.add_query(question);
    if let Some(e) = &query.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(e.flags().dnssec_ok);
        m.set_edns(edns);
    }
    m
}

fn forged(query: &Message, question: Query) -> Message {
    let owner = question.name().clone();
    let mut m = response(query, question, ResponseCode::NoError);
    m.add_answer(Record::from_rdata(owner, 3600, RData::A(A(SPOOF_A))));
    m
}

fn name(text: &str, qname: &Name) -> Name {
    if text.is_empty() {
        return qname.clone();
    }
    let fqdn = if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    };
    Name::from_ascii(&fqdn).unwrap_or_else(|e| panic!("stand-in: bad name '{text}': {e}"))
}

fn record(r: &Rec, qname: &Name) -> Record {
    let n = |t: &str| name(t, qname);
    let rdata = match &r.data {
        RecData::A(ip) => RData::A(A(*ip)),
        RecData::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        RecData::Cname(t) => RData::CNAME(CNAME(n(t))),
        RecData::Ns(t) => RData::NS(NS(n(t))),
        RecData::Ptr(t) => RData::PTR(PTR(n(t))),
        RecData::Mx(pref, t) => RData::MX(MX::new(*pref, n(t))),
        RecData::Txt(t) => {
            let pieces: Vec<&[u8]> = t.as_bytes().chunks(255).collect();
            RData::TXT(TXT::from_bytes(pieces))
        }
        RecData::Other { rtype, rdata } => RData::Unknown {
            code: RecordType::from(*rtype),
            rdata: NULL::with(rdata.clone()),
        },
    };
    Record::from_rdata(n(&r.name), r.ttl, rdata)
}

/// The zone a negative answer's SOA belongs to: the last two labels.
fn soa(qname: &Name, minimum: u32) -> Record {
    let zone = if qname.num_labels() > 2 {
        qname.trim_to(2)
    } else {
        qname.clone()
    };
    let ns = Name::from_ascii("ns")
        .unwrap()
        .append_domain(&zone)
        .unwrap();
    let mbox = Name::from_ascii("hostmaster")
        .unwrap()
        .append_domain(&zone)
        .unwrap();
    let rdata = SOA::new(ns, mbox, 1, 3600, 600, 86_400, minimum);
    Record::from_rdata(zone, minimum, RData::SOA(rdata))
}

/// The real answer for a base behaviour; `None` for `Silent`.
fn answer(query: &Message, question: &Query, base: &Behaviour) -> Option<Message> {
    let qname = question.name().clone();
    let qtype = u16::from(question.query_type());
    let wanted = |t: u16| t == qtype || t == 5 || qtype == 255;
    let mut m = response(query, question.clone(), ResponseCode::NoError);
    match base {
        Behaviour::Silent => return None,
        Behaviour::Answer { records } => {
            for r in records.iter().filter(|r| wanted(r.data.rtype())) {
                m.add_answer(record(r, &qname));
            }
        }
        Behaviour::CnameChain {
            chain,
            final_a,
            ttl,
        } => {
            let mut owner = String::new();
            for target in chain {
                m.add_answer(record(&Rec::cname(&owner, target, *ttl), &qname));
                owner = target.clone();
            }
            if wanted(1) {
                m.add_answer(record(&Rec::a(&owner, *final_a, *ttl), &qname));
            }
        }
        Behaviour::Nxdomain { soa_minimum } => {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.add_authority(soa(&qname, *soa_minimum));
        }
        Behaviour::NoData { soa_minimum } => {
            m.add_authority(soa(&qname, *soa_minimum));
        }
        Behaviour::Servfail => m.metadata.response_code = ResponseCode::ServFail,
        Behaviour::Refused => m.metadata.response_code = ResponseCode::Refused,
        Behaviour::Large { bytes } => {
            let mut i = 0u32;
            while encode(&m).len() < *bytes {
                let rec = if qtype == 16 {
                    Rec::txt("", &format!("{i:0>200}"), DEFAULT_TTL)
                } else {
                    Rec::a("", Ipv4Addr::from(0xC633_6400 + i), DEFAULT_TTL)
                };
                m.add_answer(record(&rec, &qname));
                i += 1;
            }
        }
        Behaviour::Delay(..)
        | Behaviour::Truncate(_)
        | Behaviour::SpoofFirst(_)
        | Behaviour::Oversize(_)
        | Behaviour::Twice(_) => {
            unreachable!("wrappers are peeled before answering")
        }
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::client::query;

    #[test]
    fn answers_filter_by_type_and_echo_edns() {
        let q = Message::from_vec(&query(9, "Host.Example", 28, Some(1232), true)).unwrap();
        let question = q.queries[0].clone();
        let m = answer(&q, &question, &Behaviour::standard()).unwrap();
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].record_type(), RecordType::AAAA);
        assert!(m.edns.as_ref().unwrap().flags().dnssec_ok);
        assert_eq!(m.metadata.id, 9);
    }

    #[test]
    fn negative_answers_carry_the_zone_soa() {
        let q = Message::from_vec(&query(1, "a.b.example.com", 1, None, false)).unwrap();
        let m = answer(&q, &q.queries[0], &Behaviour::Nxdomain { soa_minimum: 42 }).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        let soa = &m.authorities[0];
        assert_eq!(soa.name.to_ascii(), "example.com.");
        assert_eq!(soa.ttl, 42);
        assert!(m.edns.is_none());
    }
}
