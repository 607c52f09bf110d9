//! Forwarding plain-UDP queries from the UDP reader thread itself, without
//! a hop to tokio: the reader owns a few upstream sockets per upstream,
//! sends its misses on them (one `sendmmsg` per upstream per batch), and
//! its event loop (`dns::udp_loop`) hands back whatever they receive and
//! asks for the attempts whose time is up.
//!
//! The same rules as the tokio forwarder, from the same code: the upstream
//! order, failover and health bookkeeping are [`Failover`]'s, a reply is
//! taken only when [`check_reply`] accepts it, the IDs are [`fresh_id`]s,
//! the caps are the forwarder's [`MAX_IN_FLIGHT`] exchanges. What differs
//! is how the waiting is done:
//!
//! - **Sockets.** [`POOL`] connected UDP sockets per upstream address,
//!   each bound to a kernel-chosen random port, taken in turn batch by
//!   batch; a socket that has carried [`ROTATE_AFTER`] queries is replaced
//!   by a fresh one (a new random port) and closed once nothing waits on
//!   it. Being connected, the kernel drops datagrams from any other
//!   address or port.
//! - **Matching.** Each socket maps the IDs in flight on it to their
//!   exchange; a datagram with an ID nobody waits for (a duplicate, a late
//!   answer, a forgery) is dropped, one with a waiting ID is still checked
//!   against the question.
//! - **Timers.** A queue of attempt deadlines, earliest first; an entry
//!   whose attempt has already ended is skipped when it comes up, and
//!   such entries are swept out when they outnumber the live ones.
//! - **Coalescing.** Identical questions to the same forwarder waiting in
//!   this reader share one exchange.
//! - **Truncation.** An answer with TC (or one that fills the buffer) ends
//!   the exchange here: the TCP retry and any failover after it are
//!   [`TcpRetry::run`], on tokio.
//!
//! Not for: DoT, DoH or TCP clients (tokio, `Forwarder::query`), deciding
//! or finishing answers (the pipeline), the event loop itself.

use super::failover::{Failover, Verdict};
use super::{Answer, AttemptError, ForwardError, Forwarder, MAX_IN_FLIGHT, Question};
use super::{Transport, check_reply, coalesce::Key, fresh_id, tcp};
use crate::dns::mmsg::{Inbox, Outbox};
use crate::wire;
use rustc_hash::FxHashMap as HashMap;
use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// Sockets per upstream address, taken in turn batch by batch: 16 random
/// ports live at once, so a spoofer who has found which ports are open
/// still guesses one of 16 × 65,536 (port, ID) pairs for a given query
/// (docs/architecture.md, "The miss path"). 16 costs the reader 3–4 %
/// more instructions per miss than 4 (benches/instructions.sh, miss line).
pub const POOL: usize = 16;

/// Queries one socket carries before a fresh one (a new random source
/// port) takes its place: a port found stays useful for at most
/// POOL × ROTATE_AFTER = 1,024 of the reader's batches.
pub const ROTATE_AFTER: u32 = 64;

/// An answer this long may have been cut by the receive buffer: treated as
/// truncated, as the tokio forwarder does.
const REPLY_BUF: usize = crate::dns::mmsg::BUF;

/// One reader's upstream exchanges; `W` is what waits for an answer (the
/// pipeline's pending query and its client).
pub struct InlineForwarder<W> {
    sockets: Slab<UpstreamSocket>,
    pools: HashMap<SocketAddr, Pool>,
    flights: Slab<Flight<W>>,
    by_question: HashMap<(usize, Key), usize>,
    timers: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    attempts: u64,
    inbox: Inbox,
}

/// How an exchange ended, for the event loop to pass on.
pub enum Finished<W> {
    /// The result for every waiter.
    Answered(Vec<W>, Result<Answer, ForwardError>),
    /// Truncated over UDP: run the rest on tokio, then answer every waiter.
    Tcp(Vec<W>, Box<TcpRetry>),
}

struct UpstreamSocket {
    sock: UdpSocket,
    /// ID in flight on this socket → its exchange.
    waiting: HashMap<u16, usize>,
    carried: u32,
    /// Replaced in its pool; closed once `waiting` is empty.
    retired: bool,
}

struct Pool {
    sockets: [Option<usize>; POOL],
    turn: usize,
    /// This batch's queries, sent together by `flush`.
    outbox: Option<Box<Outbox>>,
    /// The socket this batch's queries go out on.
    batch_socket: Option<usize>,
}

struct Flight<W> {
    fwd: Forwarder,
    key: (usize, Key),
    q: Question,
    msg: Vec<u8>,
    failover: Failover,
    waiters: Vec<W>,
    attempt: Option<Attempt>,
    _permit: OwnedSemaphorePermit,
}

/// The attempt a flight waits on.
struct Attempt {
    seq: u64,
    socket: usize,
    id: u16,
    upstream: usize,
    sent: Instant,
    budget: Duration,
}

/// The rest of an exchange whose UDP answer was truncated: the same
/// upstream over TCP within the attempt's time, then failover as usual.
pub struct TcpRetry {
    fwd: Forwarder,
    failover: Failover,
    msg: Vec<u8>,
    q: Question,
    upstream: usize,
    id: u16,
    sent: Instant,
    budget: Duration,
    _permit: OwnedSemaphorePermit,
}

impl TcpRetry {
    pub async fn run(self) -> Result<Answer, ForwardError> {
        let TcpRetry {
            fwd, mut failover, ..
        } = self;
        let inner = &*fwd.inner;
        let (i, u) = (self.upstream, &inner.upstreams[self.upstream]);
        u.health.truncated();
        let left = (self.sent + self.budget).saturating_duration_since(Instant::now());
        let Transport::Plain(addr) = u.transport else {
            unreachable!("only plain-UDP forwarders run inline")
        };
        let exchange = tcp::exchange(addr, &self.msg, self.id, &self.q, &u.health);
        match tokio::time::timeout(left, exchange).await {
            Ok(Ok(reply)) => {
                let took = self.sent.elapsed();
                if let Verdict::Done(a) = failover.answered(inner, i, reply, took) {
                    return Ok(a);
                }
            }
            Ok(Err(e)) => failover.failed(inner, i, &AttemptError::Io(e)),
            Err(_) => failover.timed_out(inner, i, self.budget),
        }
        inner.resolve_from(failover, self.msg, &self.q).await
    }
}

impl<W> Default for InlineForwarder<W> {
    fn default() -> Self {
        InlineForwarder {
            sockets: Slab::new(),
            pools: HashMap::default(),
            flights: Slab::new(),
            by_question: HashMap::default(),
            timers: BinaryHeap::new(),
            attempts: 0,
            inbox: Inbox::default(),
        }
    }
}

impl Forwarder {
    /// True when every upstream is plain UDP (with TCP for truncation),
    /// which is what [`InlineForwarder`] can reach.
    pub fn plain_udp_only(&self) -> bool {
        let ups = &self.inner.upstreams;
        !ups.is_empty()
            && ups
                .iter()
                .all(|u| matches!(u.transport, Transport::Plain(_)))
    }
}

impl<W> InlineForwarder<W> {
    /// Nothing waits for an upstream.
    pub fn idle(&self) -> bool {
        self.flights.is_empty()
    }

    /// Starts forwarding `msg` (a query in wire form, whose question is
    /// `q`) for `waiter` through `fwd`, or joins the exchange already under
    /// way for the same question. A query that cannot be sent at all comes
    /// back at once in `done`.
    pub(crate) fn start(
        &mut self,
        fwd: &Forwarder,
        (msg, q): (Vec<u8>, Question),
        waiter: W,
        now: Instant,
        done: &mut Vec<Finished<W>>,
    ) {
        let key = (std::sync::Arc::as_ptr(&fwd.inner) as usize, Key::of(&q));
        if let Some(&f) = self.by_question.get(&key) {
            fwd.inner.inflight.count_coalesced();
            return self.flights[f].waiters.push(waiter);
        }
        let Ok(permit) = fwd.inner.capacity.clone().try_acquire_owned() else {
            let busy = Err(ForwardError::Busy(MAX_IN_FLIGHT));
            return done.push(Finished::Answered(vec![waiter], busy));
        };
        let f = self.flights.insert(Flight {
            fwd: fwd.clone(),
            key: key.clone(),
            failover: Failover::new(&fwd.inner, now),
            q,
            msg,
            waiters: vec![waiter],
            attempt: None,
            _permit: permit,
        });
        self.by_question.insert(key, f);
        self.try_next(f, now, done);
    }

    /// The next attempt for flight `f`, or its end when the failover has
    /// none left.
    fn try_next(&mut self, f: usize, now: Instant, done: &mut Vec<Finished<W>>) {
        loop {
            let flight = &mut self.flights[f];
            let inner = &*flight.fwd.inner;
            let Some((i, budget)) = flight.failover.next(inner, now) else {
                let flight = self.end(f);
                let result = flight.failover.give_up(&flight.fwd.inner);
                return done.push(Finished::Answered(flight.waiters, result));
            };
            let Transport::Plain(addr) = inner.upstreams[i].transport else {
                unreachable!("only plain-UDP forwarders run inline")
            };
            let s = match self.batch_socket(addr) {
                Ok(s) => s,
                Err(e) => {
                    let flight = &mut self.flights[f];
                    flight.failover.failed(&flight.fwd.inner, i, &e);
                    continue;
                }
            };
            let socket = &mut self.sockets[s];
            let id = loop {
                let id = fresh_id(0);
                if !socket.waiting.contains_key(&id) {
                    break id;
                }
            };
            socket.waiting.insert(id, f);
            socket.carried += 1;
            let flight = &mut self.flights[f];
            wire::set_id(&mut flight.msg, id);
            let pool = self.pools.get_mut(&addr).expect("batch_socket made it");
            let outbox = pool.outbox.get_or_insert_with(Box::default);
            if outbox.is_full() {
                outbox.flush(&self.sockets[s].sock);
            }
            outbox.slot().extend_from_slice(&flight.msg);
            outbox.push(addr);
            self.attempts += 1;
            let seq = self.attempts;
            flight.attempt = Some(Attempt {
                seq,
                socket: s,
                id,
                upstream: i,
                sent: now,
                budget,
            });
            self.push_timer(now + budget, seq, f);
            return;
        }
    }

    /// Queues attempt `seq`'s deadline. Ended attempts' entries are
    /// skipped when they come up, and dropped all at once when they
    /// outnumber the live ones: under a flood that never lets the queue
    /// empty, each would otherwise stay for a whole `upstream_timeout`
    /// (1.5 s: 30,000 entries at 20,000 misses/s, 1–2 MiB in
    /// benches/memory.sh's flood).
    fn push_timer(&mut self, at: Instant, seq: u64, f: usize) {
        if self.timers.len() >= 2 * self.flights.len() + 64 {
            let flights = &self.flights;
            self.timers
                .retain(|&Reverse((_, seq, f))| attempt_is(flights, f, seq));
        }
        self.timers.push(Reverse((at, seq, f)));
    }

    /// The socket this batch's queries to `addr` go out on: the pool's
    /// next in turn, opened (or replaced, once it has carried its share)
    /// when needed.
    fn batch_socket(&mut self, addr: SocketAddr) -> io::Result<usize> {
        let pool = self.pools.entry(addr).or_insert_with(|| Pool {
            sockets: [None; POOL],
            turn: 0,
            outbox: None,
            batch_socket: None,
        });
        if let Some(s) = pool.batch_socket {
            return Ok(s);
        }
        let slot = &mut pool.sockets[pool.turn];
        pool.turn = (pool.turn + 1) % POOL;
        if let Some(s) = *slot
            && self.sockets[s].carried >= ROTATE_AFTER
        {
            self.sockets[s].retired = true;
            close_if_done(&mut self.sockets, s);
            *slot = None;
        }
        let s = match *slot {
            Some(s) => s,
            None => {
                let s = self.sockets.insert(UpstreamSocket {
                    sock: connected_socket(addr)?,
                    waiting: HashMap::default(),
                    carried: 0,
                    retired: false,
                });
                *slot = Some(s);
                s
            }
        };
        pool.batch_socket = Some(s);
        Ok(s)
    }

    /// Sends every query of this batch, one `sendmmsg` per upstream.
    pub fn flush(&mut self) {
        for pool in self.pools.values_mut() {
            if let (Some(s), Some(outbox)) = (pool.batch_socket.take(), &mut pool.outbox) {
                outbox.flush(&self.sockets[s].sock);
            }
        }
    }

    /// The upstream sockets to wait on, with the key [`Self::receive`]
    /// takes: those an attempt waits on. What comes to the others (a late
    /// or duplicate answer) stays queued until an attempt waits there
    /// again, and is then read and dropped as unmatched; a socket is
    /// replaced after [`ROTATE_AFTER`] queries, which bounds it.
    pub fn sockets(&self) -> impl Iterator<Item = (RawFd, usize)> + '_ {
        self.sockets
            .iter()
            .filter(|(_, u)| !u.waiting.is_empty())
            .map(|(s, u)| (u.sock.as_raw_fd(), s))
    }

    /// When the earliest attempt runs out of time.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Reads what upstream socket `s` has queued and settles the attempts
    /// it answers.
    pub fn receive(&mut self, s: usize, now: Instant, done: &mut Vec<Finished<W>>) {
        let Some(socket) = self.sockets.get(s) else {
            return;
        };
        let n = match self.inbox.recv_now(&socket.sock) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                // ICMP port unreachable: nothing listens at that upstream.
                return self.fail_socket(s, &e, now, done);
            }
            Err(_) => return,
        };
        for k in 0..n {
            let (reply, _) = self.inbox.get(k);
            let waiting = &self.sockets[s].waiting;
            let Some(&f) = wire::read_u16(reply, 0).and_then(|id| waiting.get(&id)) else {
                // A duplicate, a late answer or a forgery.
                continue;
            };
            let flight = &self.flights[f];
            let a = flight
                .attempt
                .as_ref()
                .expect("a waiting ID has an attempt");
            if check_reply(reply, a.id, &flight.q).is_err() {
                flight.fwd.inner.upstreams[a.upstream].health.dropped();
                continue;
            }
            let reply = reply.to_vec();
            self.settle(f, reply, now, done);
        }
        close_if_done(&mut self.sockets, s);
    }

    /// Flight `f`'s attempt got `reply`, accepted.
    fn settle(&mut self, f: usize, reply: Vec<u8>, now: Instant, done: &mut Vec<Finished<W>>) {
        let a = self.stop_attempt(f).expect("settled attempts are live");
        let truncated = wire::response_flags(&reply) & wire::flags::TC != 0;
        if truncated || reply.len() >= REPLY_BUF {
            let flight = self.end(f);
            let retry = TcpRetry {
                fwd: flight.fwd,
                failover: flight.failover,
                msg: flight.msg,
                q: flight.q,
                upstream: a.upstream,
                id: a.id,
                sent: a.sent,
                budget: a.budget,
                _permit: flight._permit,
            };
            return done.push(Finished::Tcp(flight.waiters, Box::new(retry)));
        }
        let flight = &mut self.flights[f];
        let took = now.saturating_duration_since(a.sent);
        match flight
            .failover
            .answered(&flight.fwd.inner, a.upstream, reply, took)
        {
            Verdict::Done(answer) => {
                let flight = self.end(f);
                done.push(Finished::Answered(flight.waiters, Ok(answer)));
            }
            Verdict::Next => self.try_next(f, now, done),
        }
    }

    /// Every attempt waiting on socket `s` failed with `e`.
    fn fail_socket(&mut self, s: usize, e: &io::Error, now: Instant, done: &mut Vec<Finished<W>>) {
        let flights: Vec<usize> = self.sockets[s].waiting.values().copied().collect();
        for f in flights {
            let a = self.stop_attempt(f).expect("a waiting ID has an attempt");
            let flight = &mut self.flights[f];
            flight.failover.failed(&flight.fwd.inner, a.upstream, e);
            self.try_next(f, now, done);
        }
        close_if_done(&mut self.sockets, s);
    }

    /// Ends the attempts whose time is up; each flight moves on to its
    /// next upstream, or gives up.
    pub fn expire(&mut self, now: Instant, done: &mut Vec<Finished<W>>) {
        while let Some(&Reverse((at, seq, f))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if !attempt_is(&self.flights, f, seq) {
                continue;
            }
            let a = self.stop_attempt(f).expect("checked live");
            let flight = &mut self.flights[f];
            flight
                .failover
                .timed_out(&flight.fwd.inner, a.upstream, a.budget);
            close_if_done(&mut self.sockets, a.socket);
            self.try_next(f, now, done);
        }
    }

    /// Takes flight `f`'s attempt off its socket.
    fn stop_attempt(&mut self, f: usize) -> Option<Attempt> {
        let a = self.flights[f].attempt.take()?;
        if let Some(socket) = self.sockets.get_mut(a.socket) {
            socket.waiting.remove(&a.id);
        }
        Some(a)
    }

    fn end(&mut self, f: usize) -> Flight<W> {
        let flight = self.flights.remove(f);
        self.by_question.remove(&flight.key);
        if self.flights.is_empty() {
            // Every deadline left is for an attempt that has ended.
            self.timers.clear();
        }
        flight
    }
}

/// Whether flight `f` still waits on attempt `seq`.
fn attempt_is<W>(flights: &Slab<Flight<W>>, f: usize, seq: u64) -> bool {
    flights
        .get(f)
        .and_then(|fl| fl.attempt.as_ref())
        .is_some_and(|a| a.seq == seq)
}

/// Closes socket `s` if it was retired and nothing waits on it any more.
fn close_if_done(sockets: &mut Slab<UpstreamSocket>, s: usize) {
    if sockets
        .get(s)
        .is_some_and(|u| u.retired && u.waiting.is_empty())
    {
        sockets.remove(s);
    }
}

/// A non-blocking UDP socket on a random port, connected to `upstream`.
fn connected_socket(upstream: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local)?;
    sock.connect(upstream)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DnsConfig, Upstream};
    use crate::testing::client::query;

    /// A query and its question, as the UDP reader hands them over.
    fn parsed(msg: Vec<u8>) -> (Vec<u8>, Question) {
        let q = Question::parse(&msg).unwrap();
        (msg, q)
    }

    /// Reads one query at `up` and answers it with itself, flagged as a
    /// response.
    fn echo_one(up: &UdpSocket) {
        let mut buf = [0u8; 512];
        let (n, from) = up
            .recv_from(&mut buf)
            .expect("a query reaches the upstream");
        buf[2] |= 0x80;
        up.send_to(&buf[..n], from).unwrap();
    }

    #[test]
    fn a_queue_that_never_empties_keeps_its_deadlines_bounded() {
        let up = UdpSocket::bind("127.0.0.1:0").unwrap();
        up.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let upstream = Upstream::Plain(up.local_addr().unwrap());
        let fwd = Forwarder::new(&[upstream], &DnsConfig::default());
        let mut inline = InlineForwarder::<u32>::default();
        let mut done = Vec::new();
        // Never answered: the queue of exchanges never empties.
        let now = Instant::now();
        inline.start(
            &fwd,
            parsed(query(1, "held.example", 1, None, false)),
            0,
            now,
            &mut done,
        );
        inline.flush();
        let mut buf = [0u8; 512];
        up.recv_from(&mut buf).unwrap();
        for i in 1..=1000u32 {
            let name = format!("n{i}.example");
            inline.start(
                &fwd,
                parsed(query(1, &name, 1, None, false)),
                i,
                now,
                &mut done,
            );
            inline.flush();
            echo_one(&up);
            let deadline = Instant::now() + Duration::from_secs(10);
            while done.is_empty() {
                assert!(Instant::now() < deadline, "query {i} was never answered");
                let keys: Vec<usize> = inline.sockets().map(|(_, s)| s).collect();
                for s in keys {
                    inline.receive(s, now, &mut done);
                }
            }
            match done.pop() {
                Some(Finished::Answered(waiters, Ok(_))) => assert_eq!(waiters, vec![i]),
                _ => panic!("query {i}: not answered as it should be"),
            }
            // Swept when a deadline is queued, while this query's
            // exchange still counted: at most twice the exchanges then
            // (one more than now), 64 and the one queued.
            assert!(
                inline.timers.len() <= 2 * (inline.flights.len() + 1) + 65,
                "{} deadlines queued for {} exchanges",
                inline.timers.len(),
                inline.flights.len()
            );
        }
        assert_eq!(inline.flights.len(), 1, "only the held query waits");
    }
}
