//! Sockets: UDP and TCP listeners on every `dns.listen` address.
//!
//! UDP: several SO_REUSEPORT sockets per address, each served by its own OS
//! thread: one `recvmmsg` takes every queued datagram, the answers found
//! without I/O go back in one `sendmmsg`, so a flood is served a batch per
//! wake-up (`udp_loop`). Cache misses to plain-UDP upstreams are forwarded
//! and answered by the same thread; the others go to tokio. TCP: tokio, with pipelined
//! queries (answers may come back out of order, as RFC 7766 allows), and
//! limits so that no client can park work on the box: a cap on
//! connections, overall and per client address, on unanswered queries per
//! connection (past it the socket is not read), a write timeout and an
//! idle timeout.
//! Not for: deciding answers (pipeline).

use crate::config::DnsConfig;
use crate::dns::client_slots::ClientSlots;
use crate::dns::pipeline::{Engine, Step, Transport};
use crate::dns::udp_loop;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Running listeners; dropping it stops them.
pub struct DnsServer {
    /// The bound addresses (ports resolved when 0 was asked for).
    pub addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    tcp_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in &self.tcp_tasks {
            t.abort();
        }
    }
}

/// One UDP reader per two cores (two on the 4-core Pi 3, 4 and Zero 2 W,
/// one on a 2-core machine): a reader batches (recvmmsg), and one reader with
/// the whole load fills its batches where two half-loaded ones wake twice
/// as often. Measured with benches/dns-peers.sh's setup on 2 cores at 40k
/// queries/s: 4.3-4.5 µs of CPU per answer with one reader, 5.0-5.6 with
/// two (docs/performance.md). The other cores are left to the kernel's
/// network work, the misses tokio forwards (DoT, DoH, TCP clients) and
/// the query log.
fn default_udp_sockets() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Binds every listener and starts serving. Must run inside a tokio runtime.
pub async fn start(engine: Arc<Engine>, cfg: &DnsConfig) -> io::Result<DnsServer> {
    let stop = Arc::new(AtomicBool::new(false));
    let sockets = match cfg.udp_sockets {
        0 => default_udp_sockets(),
        n => n,
    };
    let tcp = TcpLimits {
        all: Arc::new(Semaphore::new(cfg.tcp_max_connections.max(1))),
        per_client: cfg.tcp_client_connections,
        clients: Arc::default(),
        queries: cfg.tcp_queries_per_connection.max(1),
        idle: cfg.tcp_idle_timeout.0,
        write: cfg.tcp_write_timeout.0,
    };
    let handle = tokio::runtime::Handle::current();
    let mut server = DnsServer {
        addrs: Vec::new(),
        stop: stop.clone(),
        tcp_tasks: Vec::new(),
    };
    for &asked in &cfg.listen {
        let (first, addr) = match bind_udp_and_tcp(asked) {
            Err(e) if crate::netif::ipv6_unavailable(asked, &e) => {
                tracing::warn!("dns: not listening on {asked}: no IPv6 there ({e}); going on");
                continue;
            }
            bound => bound?,
        };
        let (udp0, tcp_listener) = first;
        let mut udp = vec![udp0];
        for _ in 1..sockets {
            udp.push(udp_socket(addr)?);
        }
        for (i, sock) in udp.into_iter().enumerate() {
            let engine = engine.clone();
            let stop = stop.clone();
            let handle = handle.clone();
            std::thread::Builder::new()
                .name(format!("dns-udp-{addr}-{i}"))
                .spawn(move || udp_loop::run(sock, engine, handle, stop))?;
        }
        server.tcp_tasks.push(tokio::spawn(tcp_accept(
            tcp_listener,
            engine.clone(),
            tcp.clone(),
        )));
        server.addrs.push(addr);
    }
    if server.addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("dns.listen: none of {:?} could be bound", cfg.listen),
        ));
    }
    Ok(server)
}

/// Binds UDP and TCP on the same port; with port 0, the kernel's choice
/// for UDP is tried for TCP, retrying if TCP finds it taken.
fn bind_udp_and_tcp(asked: SocketAddr) -> io::Result<((UdpSocket, TcpListener), SocketAddr)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = udp_socket(asked)?;
        let addr = udp.local_addr()?;
        match tcp_listener(addr) {
            Ok(tcp) => return Ok(((udp, tcp), addr)),
            Err(e) if asked.port() == 0 => last = Some(e),
            Err(e) => return Err(with_addr(e, addr, "TCP")),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}

fn with_addr(e: io::Error, addr: SocketAddr, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("cannot listen on {what} {addr}: {e}"))
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        // IPv6 only, so `[::]:53` and `0.0.0.0:53` bind side by side.
        s.set_only_v6(true)?;
    }
    // Wake now and then to notice a stop request.
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    let _ = s.set_recv_buffer_size(1 << 20);
    s.bind(&addr.into())
        .map_err(|e| with_addr(e, addr, "UDP"))?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    TcpListener::from_std(s.into())
}

/// What TCP clients may hold, from `DnsConfig` at start.
#[derive(Clone)]
struct TcpLimits {
    /// `tcp_max_connections`, shared by every listener.
    all: Arc<Semaphore>,
    /// `tcp_client_connections` per address, counted in `clients`.
    per_client: u32,
    clients: Arc<ClientSlots>,
    /// `tcp_queries_per_connection`.
    queries: usize,
    idle: Duration,
    write: Duration,
}

/// The kernel's send buffer for one TCP client (it doubles it for its own
/// bookkeeping): room for the largest answer, 64 KiB, while a client that
/// never reads holds that much kernel memory at most, not the 4 MiB
/// autotuning may grow it to (`net.ipv4.tcp_wmem`'s default maximum).
const TCP_SEND_BUFFER: usize = 64 * 1024;

/// After a client stops sending, how long its answers still in flight may
/// take to go out.
const DRAIN: Duration = Duration::from_secs(5);

async fn tcp_accept(listener: TcpListener, engine: Arc<Engine>, limits: TcpLimits) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // Over either cap: close at once rather than queue.
        let ip = crate::config::canonical_ip(peer.ip());
        let permits = (
            limits.all.clone().try_acquire_owned(),
            limits.clients.take(ip, limits.per_client),
        );
        let (Ok(permit), Some(slot)) = permits else {
            engine.counters.tcp_refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let engine = engine.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            tcp_connection(stream, peer, engine, &limits).await;
            drop((permit, slot));
        });
    }
}

/// An answer on its way out, holding one of its connection's query slots.
type Answer = (OwnedSemaphorePermit, Vec<u8>);

/// One TCP client: length-prefixed queries, read while earlier ones are
/// still being answered, at most `limits.queries` unanswered at once.
/// Past that the socket is not read until an answer has been written, so
/// a client that never reads stops being read instead of piling up work,
/// and an answer it leaves unread for `limits.write` ends the connection.
/// So does `limits.idle` without a query.
async fn tcp_connection(
    stream: TcpStream,
    peer: SocketAddr,
    engine: Arc<Engine>,
    limits: &TcpLimits,
) {
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(TCP_SEND_BUFFER);
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Answer>(limits.queries);
    let slots = Arc::new(Semaphore::new(limits.queries));
    let writer = write_answers(wr, rx, limits.write);
    tokio::pin!(writer);
    tokio::select! {
        written = &mut writer => {
            if written.is_err_and(|e| e.kind() == io::ErrorKind::TimedOut) {
                engine.counters.tcp_stalled.fetch_add(1, Ordering::Relaxed);
            }
        }
        () = read_queries(rd, peer, &engine, tx, slots, limits.idle) => {
            // The client is done or idle: answers in flight still go out.
            let _ = tokio::time::timeout(DRAIN, writer).await;
        }
    }
}

/// Reads queries until the client stops, goes idle or the writer gives up;
/// each waits for a free query slot before it is read.
async fn read_queries(
    mut rd: OwnedReadHalf,
    peer: SocketAddr,
    engine: &Arc<Engine>,
    tx: mpsc::Sender<Answer>,
    slots: Arc<Semaphore>,
    idle: Duration,
) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let len = match tokio::time::timeout(idle, rd.read_u16()).await {
            Ok(Ok(len)) => len as usize,
            _ => return,
        };
        if tokio::time::timeout(idle, rd.read_exact(&mut buf[..len]))
            .await
            .map_or(true, |r| r.is_err())
        {
            return;
        }
        let mut out = Vec::new();
        match engine.begin(&buf[..len], peer, Transport::Tcp, &mut out) {
            Step::Reply => {
                if tx.send((slot, out)).await.is_err() {
                    return;
                }
            }
            Step::Drop => {}
            Step::Forward(pending) => {
                let engine = engine.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    engine.forward(pending, &mut out).await;
                    let _ = tx.send((slot, out)).await;
                });
            }
        }
    }
}

/// Writes answers as they come; each gives its query slot back once the
/// kernel has taken it. Ends when every sender is gone, or with
/// `TimedOut` when the client has not made room for one within `timeout`.
async fn write_answers(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Answer>,
    timeout: Duration,
) -> io::Result<()> {
    let mut framed = Vec::new();
    while let Some((slot, msg)) = rx.recv().await {
        framed.clear();
        framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        framed.extend_from_slice(&msg);
        tokio::time::timeout(timeout, wr.write_all(&framed))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        drop(slot);
    }
    Ok(())
}
