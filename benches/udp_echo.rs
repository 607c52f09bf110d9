//! The floor for a server that handles one packet per system call: a bare
//! UDP echo loop (recvfrom, sendto the same bytes back), one thread per
//! SO_REUSEPORT socket like glory-hole's UDP listener, no DNS work at all.
//! Run by benches/dns-peers.sh: `udp_echo ADDR [THREADS]`. Not a criterion
//! bench: without an address it exits at once (so `cargo bench` skips it).
//!
//! `udp_echo ADDR batch`: one thread echoing through glory-hole's own
//! `recvmmsg`/`sendmmsg` loop (`dns::mmsg`), still with no DNS work: the
//! floor of glory-hole's UDP design, what its DNS path and query log add
//! to is measured against it.
//!
//! `udp_echo ADDR relay UPSTREAM`: the least a one-thread UDP forwarder
//! does, run by benches/dns-paths.sh as its `floor` server. It makes the
//! system calls glory-hole's UDP reader makes and waits the way it waits:
//! `recvmmsg` blocking on the client socket while nothing is upstream, else
//! `ppoll` on the client and the upstream socket, one `sendmmsg` of the
//! answers per batch (the reader's own `dns::mmsg`); and nothing else: no
//! parsing, no cache, no lists, no log. A query whose name has the label
//! `miss` (the benchmark's new names, `q<i>.<tag>.miss.example`) is relayed
//! to UPSTREAM under an ID of its own, on one connected socket, and the
//! reply relayed back; any other query goes back at once as an empty
//! NOERROR answer. Its CPU per answer is what the kernel takes for those
//! system calls and wake-ups: the part of every server's figure that no
//! DNS code removes.

use glory_hole::dns::mmsg::{Inbox, Outbox};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(addr) = args.first().and_then(|a| a.parse::<SocketAddr>().ok()) else {
        return;
    };
    if args.get(1).is_some_and(|a| a == "batch") {
        return batch_echo(addr);
    }
    if args.get(1).is_some_and(|a| a == "relay") {
        let upstream = args.get(2).and_then(|a| a.parse().ok());
        return relay(addr, upstream.expect("udp_echo ADDR relay UPSTREAM"));
    }
    let threads: usize = args.get(1).and_then(|t| t.parse().ok()).unwrap_or(2);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let s =
                Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).unwrap();
            s.set_reuse_port(true).unwrap();
            s.bind(&addr.into()).unwrap();
            let sock: UdpSocket = s.into();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    if let Ok((n, from)) = sock.recv_from(&mut buf) {
                        let _ = sock.send_to(&buf[..n], from);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

fn batch_echo(addr: SocketAddr) {
    let sock = UdpSocket::bind(addr).unwrap();
    let mut inbox = Inbox::default();
    let mut outbox = Outbox::default();
    loop {
        let n = inbox.recv(&sock).unwrap_or(0);
        for i in 0..n {
            if let (raw, Some(from)) = inbox.get(i) {
                outbox.slot().extend_from_slice(raw);
                outbox.push(from);
            }
        }
        outbox.flush(&sock);
    }
}

/// The benchmark's new names carry this label (length byte, then text).
const MISS_LABEL: &[u8] = b"\x04miss\x07example\x00";

fn relay(addr: SocketAddr, upstream: SocketAddr) {
    let client = UdpSocket::bind(addr).unwrap();
    let up = UdpSocket::bind("127.0.0.1:0").unwrap();
    up.connect(upstream).unwrap();
    up.set_nonblocking(true).unwrap();
    Floor::new(client, up).serve();
}

struct Floor {
    client: UdpSocket,
    up: UdpSocket,
    outbox: Outbox,
    /// A relayed query under its new ID, reused.
    relayed: Vec<u8>,
    /// Who asked, by the ID the relayed query went out under: the client
    /// and its own ID.
    waiting: Vec<Option<(SocketAddr, [u8; 2])>>,
    next_id: u16,
    in_flight: usize,
}

impl Floor {
    fn new(client: UdpSocket, up: UdpSocket) -> Floor {
        Floor {
            client,
            up,
            outbox: Outbox::default(),
            relayed: Vec::with_capacity(512),
            waiting: vec![None; 1 << 16],
            next_id: 0,
            in_flight: 0,
        }
    }

    fn serve(mut self) {
        let (mut inbox, mut up_inbox) = (Inbox::default(), Inbox::default());
        loop {
            let (queries, replies) = self.wait(&mut inbox, &mut up_inbox);
            for i in 0..queries {
                if let (raw, Some(from)) = inbox.get(i) {
                    self.query(raw, from);
                }
            }
            for i in 0..replies {
                self.reply(up_inbox.get(i).0);
            }
            self.outbox.flush(&self.client);
        }
    }

    /// Waits as the reader does; returns how many queries (into `inbox`)
    /// and upstream replies (into `up_inbox`) were read.
    fn wait(&mut self, inbox: &mut Inbox, up_inbox: &mut Inbox) -> (usize, usize) {
        if self.in_flight == 0 {
            return (inbox.recv(&self.client).unwrap_or(0), 0);
        }
        let watch = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = [watch(self.client.as_raw_fd()), watch(self.up.as_raw_fd())];
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        // SAFETY: `fds` is a live array of two pollfds; the timespec and
        // the null signal mask are valid for the call.
        let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null()) };
        if n == 0 {
            // A reply lost for 100 ms: forget every relayed query.
            self.waiting.fill(None);
            self.in_flight = 0;
        }
        let read = |ready: bool, inbox: &mut Inbox, sock: &UdpSocket| {
            if ready {
                inbox.recv_now(sock).unwrap_or(0)
            } else {
                0
            }
        };
        (
            read(fds[0].revents != 0, inbox, &self.client),
            read(fds[1].revents != 0, up_inbox, &self.up),
        )
    }

    /// A new name is relayed upstream; anything else answered at once.
    fn query(&mut self, raw: &[u8], from: SocketAddr) {
        if raw.len() < 12 {
            return;
        }
        if raw.windows(MISS_LABEL.len()).any(|w| w == MISS_LABEL) {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if self.waiting[id as usize]
                .replace((from, [raw[0], raw[1]]))
                .is_none()
            {
                self.in_flight += 1;
            }
            self.relayed.clear();
            self.relayed.extend_from_slice(&id.to_be_bytes());
            self.relayed.extend_from_slice(&raw[2..]);
            let _ = self.up.send(&self.relayed);
            return;
        }
        self.answer(raw, [raw[0], raw[1]], from);
    }

    /// An upstream reply goes back to whoever asked, under their ID.
    fn reply(&mut self, raw: &[u8]) {
        if raw.len() < 12 {
            return;
        }
        let id = u16::from_be_bytes([raw[0], raw[1]]);
        if let Some((to, their_id)) = self.waiting[id as usize].take() {
            self.in_flight -= 1;
            self.answer(raw, their_id, to);
        }
    }

    /// `raw` with `id`, marked a response, into the outbox for `to`.
    fn answer(&mut self, raw: &[u8], id: [u8; 2], to: SocketAddr) {
        if self.outbox.is_full() {
            self.outbox.flush(&self.client);
        }
        let slot = self.outbox.slot();
        slot.extend_from_slice(raw);
        slot[..2].copy_from_slice(&id);
        slot[2] |= 0x80; // QR: a response
        slot[3] |= 0x80; // RA
        self.outbox.push(to);
    }
}
