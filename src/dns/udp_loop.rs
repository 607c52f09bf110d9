//! One UDP reader thread: its client socket, its upstream sockets and its
//! timers in one loop, so a cache miss to plain-UDP upstreams is read,
//! forwarded, matched and answered without leaving the thread.
//!
//! ```text
//! wait (client socket alone when nothing is upstream; else poll on the
//!       client and upstream sockets until the next attempt deadline)
//! → queries: recvmmsg → Engine::begin → answer now, or forward
//!       (plain UDP: this thread's InlineForwarder; else tokio)
//! → if anything is upstream: upstream replies, expired attempts →
//!       settled exchanges; sendmmsg the upstream queries of the batch
//!       per upstream
//! → answer forwarded queries (Engine::complete) → sendmmsg the answers
//! ```
//!
//! Waiting is `ppoll(2)` over a few dozen descriptors at most (the client
//! socket and [`POOL`](crate::dns::forward::inline) sockets per upstream):
//! see docs/architecture.md for why not epoll or a crate. An answer truncated
//! upstream is retried over TCP on tokio, as are DoT, DoH and `[[forward]]`
//! zones that are not all plain UDP. The thread never waits on anything
//! but its own sockets: tokio work is spawned, not awaited.
//! Not for: deciding answers (pipeline), binding sockets (server), the
//! forwarding rules (`dns::forward`).

use crate::dns::forward::{Answer, Finished, ForwardError, InlineForwarder, TcpRetry};
use crate::dns::mmsg::{Inbox, Outbox};
use crate::dns::pipeline::{Engine, Pending, Step, Transport};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a wait may last without a deadline, to notice a stop request.
const STOP_CHECK: Duration = Duration::from_millis(500);

/// A query waiting for its upstream, and who to answer.
type Waiter = (Box<Pending>, SocketAddr);

/// Serves `sock` until `stop` is set.
pub fn run(
    sock: UdpSocket,
    engine: Arc<Engine>,
    rt: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) {
    let mut inbox = Inbox::default();
    let mut reader = Reader {
        sock: Arc::new(sock),
        engine,
        rt,
        outbox: Outbox::default(),
        upstream: InlineForwarder::default(),
        done: Vec::new(),
        fds: Vec::new(),
        keys: Vec::new(),
    };
    while !stop.load(Ordering::Relaxed) {
        let n = reader.wait_and_read(&mut inbox);
        for i in 0..n {
            if let (raw, Some(from)) = inbox.get(i) {
                reader.serve(raw, from);
            }
        }
        // A round with nothing upstream (every cached or blocked answer)
        // reads no clock and skips the upstream steps: 2-4 % of a cached
        // answer's instructions (benches/instructions.sh,
        // docs/performance.md).
        if !reader.upstream.idle() {
            let now = Instant::now();
            reader.upstream_replies(now);
            reader.upstream.expire(now, &mut reader.done);
            reader.upstream.flush();
        }
        reader.answer_forwarded();
        reader.outbox.flush(&reader.sock);
    }
}

struct Reader {
    sock: Arc<UdpSocket>,
    engine: Arc<Engine>,
    rt: tokio::runtime::Handle,
    outbox: Outbox,
    upstream: InlineForwarder<Waiter>,
    /// Exchanges settled this round, to answer.
    done: Vec<Finished<Waiter>>,
    /// What the last poll watched: the client socket, then the upstream
    /// sockets, whose keys are in `keys`.
    fds: Vec<libc::pollfd>,
    keys: Vec<usize>,
}

impl Reader {
    /// Waits for queries, upstream replies or the next deadline; reads
    /// the queries, if any. Returns how many.
    fn wait_and_read(&mut self, inbox: &mut Inbox) -> usize {
        if self.upstream.idle() {
            // Nothing upstream: block on the client socket alone, as a
            // reader answering only from the cache always does. Errors:
            // its read timeout (to notice `stop`) or a signal.
            self.fds.clear();
            return inbox.recv(&self.sock).unwrap_or(0);
        }
        self.poll();
        if self.fds[0].revents == 0 {
            return 0;
        }
        inbox.recv_now(&self.sock).unwrap_or(0)
    }

    /// ppoll on the client and upstream sockets until the next attempt
    /// deadline (or [`STOP_CHECK`]).
    fn poll(&mut self) {
        let watch = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        self.fds.clear();
        self.keys.clear();
        self.fds.push(watch(self.sock.as_raw_fd()));
        for (fd, key) in self.upstream.sockets() {
            self.fds.push(watch(fd));
            self.keys.push(key);
        }
        let wait = self.upstream.next_deadline().map_or(STOP_CHECK, |t| {
            t.saturating_duration_since(Instant::now()).min(STOP_CHECK)
        });
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as _,
            tv_nsec: wait.subsec_nanos() as _,
        };
        // SAFETY: `fds` is a live array of `len` pollfds for the call; the
        // timespec and the null signal mask are valid.
        let n = unsafe {
            libc::ppoll(
                self.fds.as_mut_ptr(),
                self.fds.len() as _,
                &ts,
                std::ptr::null(),
            )
        };
        if n <= 0 {
            // Timed out, or a signal: nothing to read.
            self.fds.iter_mut().for_each(|p| p.revents = 0);
        }
    }

    /// One query from `from`: answered into the outbox, or forwarded.
    fn serve(&mut self, raw: &[u8], from: SocketAddr) {
        if self.outbox.is_full() {
            self.outbox.flush(&self.sock);
        }
        match self
            .engine
            .begin(raw, from, Transport::Udp, self.outbox.slot())
        {
            Step::Reply => self.outbox.push(from),
            Step::Drop => {}
            Step::Forward(pending) => self.forward(pending, from),
        }
    }

    /// A cache miss: sent from this thread when its upstreams are plain
    /// UDP, else forwarded on tokio as a TCP client's miss is.
    fn forward(&mut self, pending: Box<Pending>, from: SocketAddr) {
        let fwd = pending.forwarder();
        if !fwd.plain_udp_only() {
            let (sock, engine) = (self.sock.clone(), self.engine.clone());
            self.rt.spawn(async move {
                let mut out = Vec::new();
                engine.forward(pending, &mut out).await;
                let _ = sock.send_to(&out, from);
            });
            return;
        }
        let fwd = fwd.clone();
        let sent = pending.upstream_question();
        self.upstream
            .start(&fwd, sent, (pending, from), Instant::now(), &mut self.done);
    }

    /// Reads every upstream socket the last poll found ready.
    fn upstream_replies(&mut self, now: Instant) {
        for (p, &key) in self.fds.iter().skip(1).zip(&self.keys) {
            if p.revents != 0 {
                self.upstream.receive(key, now, &mut self.done);
            }
        }
    }

    /// Answers every query whose exchange ended this round.
    fn answer_forwarded(&mut self) {
        if self.done.is_empty() {
            return;
        }
        // Taken out and put back, so the list keeps its room.
        let mut done = std::mem::take(&mut self.done);
        for finished in done.drain(..) {
            match finished {
                Finished::Answered(waiters, result) => self.answer(waiters, result),
                Finished::Tcp(waiters, retry) => self.retry_over_tcp(waiters, retry),
            }
        }
        self.done = done;
    }

    /// The same result for every waiter, each finished as its own query.
    fn answer(&mut self, waiters: Vec<Waiter>, mut result: Result<Answer, ForwardError>) {
        let mut waiters = waiters.into_iter().peekable();
        while let Some((pending, from)) = waiters.next() {
            let this = match waiters.peek() {
                Some(_) => result.clone(),
                None => std::mem::replace(&mut result, Err(ForwardError::Abandoned)),
            };
            if self.outbox.is_full() {
                self.outbox.flush(&self.sock);
            }
            self.engine.complete(pending, this, self.outbox.slot());
            self.outbox.push(from);
        }
    }

    /// A truncated UDP answer: the TCP retry (and any failover after it)
    /// on tokio, which then answers every waiter.
    fn retry_over_tcp(&self, waiters: Vec<Waiter>, retry: Box<TcpRetry>) {
        let (sock, engine) = (self.sock.clone(), self.engine.clone());
        self.rt.spawn(async move {
            let result = retry.run().await;
            let mut out = Vec::new();
            for (pending, from) in waiters {
                engine.complete(pending, result.clone(), &mut out);
                let _ = sock.send_to(&out, from);
            }
        });
    }
}
