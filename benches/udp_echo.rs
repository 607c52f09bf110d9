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

use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, UdpSocket};

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
    use glory_hole::dns::mmsg::{Inbox, Outbox};
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
