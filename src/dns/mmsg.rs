//! Many datagrams per system call: [`Inbox::recv`] fills up to [`BATCH`]
//! buffers with one `recvmmsg`, [`Outbox::flush`] sends every answer of the
//! batch with one `sendmmsg`. With [`Pace`], a busy UDP loop pays one
//! wake-up and two system calls per batch instead of per packet.
//! Not for: deciding what to answer (pipeline), binding sockets (server).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Datagrams per system call.
pub const BATCH: usize = 16;
/// Largest query read; longer datagrams are cut here (a DNS query is
/// rarely over 512 bytes, and nothing legitimate needs more than this).
const BUF: usize = 4096;

/// Received datagrams, valid until the next [`Inbox::recv`].
pub struct Inbox {
    bufs: Box<[[u8; BUF]; BATCH]>,
    lens: [usize; BATCH],
    peers: [Option<SocketAddr>; BATCH],
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox {
            bufs: Box::new([[0; BUF]; BATCH]),
            lens: [0; BATCH],
            peers: [None; BATCH],
        }
    }
}

impl Inbox {
    /// Waits for at least one datagram (or the socket's read timeout), then
    /// takes whatever else is already queued, up to [`BATCH`].
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iov[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            iov[i].iov_len = BUF;
            hdrs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
            hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as _;
            hdrs[i].msg_hdr.msg_iov = &raw mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at live buffers of the stated sizes,
        // all owned by this frame or by `self`, for the duration of the call.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as _,
                libc::MSG_WAITFORONE as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            self.lens[i] = (hdrs[i].msg_len as usize).min(BUF);
            self.peers[i] = from_sockaddr(&names[i]);
        }
        Ok(n)
    }

    /// Datagram `i` of the last batch and its sender (None for an address
    /// family other than IPv4/IPv6, which a UDP/IP socket never reports).
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        (&self.bufs[i][..self.lens[i]], self.peers[i])
    }
}

/// Answers gathered during a batch, sent together by [`Outbox::flush`].
pub struct Outbox {
    bufs: Vec<Vec<u8>>,
    peers: [SocketAddr; BATCH],
    len: usize,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            bufs: (0..BATCH).map(|_| Vec::with_capacity(512)).collect(),
            peers: [SocketAddr::from(([0, 0, 0, 0], 0)); BATCH],
            len: 0,
        }
    }
}

impl Outbox {
    /// The buffer for the next answer, emptied. Keep it with [`Outbox::push`].
    pub fn slot(&mut self) -> &mut Vec<u8> {
        let b = &mut self.bufs[self.len];
        b.clear();
        b
    }

    /// Keeps the answer just written into [`Outbox::slot`] for `to`.
    pub fn push(&mut self, to: SocketAddr) {
        self.peers[self.len] = to;
        self.len += 1;
    }

    /// Sends every kept answer; a datagram the kernel refuses (a peer that
    /// went away) is skipped, not retried.
    pub fn flush(&mut self, sock: &UdpSocket) {
        let mut sent = 0;
        while sent < self.len {
            // SAFETY: as in `Inbox::recv`; the buffers outlive the call.
            let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
            let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
            let todo = self.len - sent;
            for i in 0..todo {
                let buf = &self.bufs[sent + i];
                iov[i].iov_base = buf.as_ptr() as *mut _;
                iov[i].iov_len = buf.len();
                hdrs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
                hdrs[i].msg_hdr.msg_namelen = to_sockaddr(&self.peers[sent + i], &mut names[i]);
                hdrs[i].msg_hdr.msg_iov = &raw mut iov[i];
                hdrs[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: see above; sendmmsg only reads the buffers.
            let n = unsafe { libc::sendmmsg(sock.as_raw_fd(), hdrs.as_mut_ptr(), todo as _, 0) };
            // n < 0: the first one failed (e.g. EPERM, ECONNREFUSED): skip it.
            sent += if n <= 0 { 1 } else { n as usize };
        }
        self.len = 0;
    }
}

/// Interrupt moderation for a UDP loop: under heavy load, wait a little
/// before the next read so that it finds several datagrams queued. Light
/// traffic (a household's tens of queries a second) is never held; a
/// flood is answered in batches, each query waiting at most [`MAX_HOLD`].
pub struct Pace {
    last: Instant,
    /// Datagrams per second seen by this loop, smoothed.
    rate: f64,
}

/// The longest a query waits for company.
pub const MAX_HOLD: Duration = Duration::from_micros(300);
/// Datagrams a held read aims to find: three quarters of a batch, so that
/// arrivals during the answering rarely overflow it (a full batch is read
/// again at once, without a hold).
const AIM: usize = BATCH * 3 / 4;
/// Below this many datagrams a second per loop, nothing is held.
const HOLD_FROM_RATE: f64 = 4000.0;

impl Default for Pace {
    fn default() -> Self {
        Pace {
            last: Instant::now(),
            rate: 0.0,
        }
    }
}

impl Pace {
    /// Records a batch of `n` datagrams; returns how long to wait before the
    /// next read.
    pub fn after_batch(&mut self, n: usize) -> Option<Duration> {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64().max(1e-6);
        self.last = now;
        self.rate = 0.75 * self.rate + 0.25 * (n as f64 / secs);
        // A full batch may have left more queued: read again at once.
        if self.rate < HOLD_FROM_RATE || n >= BATCH {
            return None;
        }
        let fill = Duration::from_secs_f64(AIM as f64 / self.rate);
        Some(fill.min(MAX_HOLD))
    }
}

fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(
                SocketAddrV6::new(
                    ip,
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )
                .into(),
            )
        }
        _ => None,
    }
}

fn to_sockaddr(addr: &SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any
            // sockaddr; we write a whole sockaddr_in.
            let out = unsafe { &mut *(ss as *mut _ as *mut libc::sockaddr_in) };
            out.sin_family = libc::AF_INET as _;
            out.sin_port = a.port().to_be();
            out.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>() as _
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for a sockaddr_in6.
            let out = unsafe { &mut *(ss as *mut _ as *mut libc::sockaddr_in6) };
            out.sin6_family = libc::AF_INET6 as _;
            out.sin6_port = a.port().to_be();
            out.sin6_flowinfo = a.flowinfo();
            out.sin6_addr.s6_addr = a.ip().octets();
            out.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as _
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for a in [
            "127.0.0.1:53".parse::<SocketAddr>().unwrap(),
            "[::1]:5353".parse().unwrap(),
            "[fe80::1%2]:1053".parse().unwrap(),
        ] {
            // SAFETY: all-zero is a valid sockaddr_storage.
            let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
            to_sockaddr(&a, &mut ss);
            assert_eq!(from_sockaddr(&ss), Some(a));
        }
    }

    #[test]
    fn a_batch_goes_out_and_comes_back_in_one_call_each() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..5u8 {
            client
                .send_to(&[i; 3], server.local_addr().unwrap())
                .unwrap();
        }
        let mut inbox = Inbox::default();
        let mut outbox = Outbox::default();
        assert_eq!(inbox.recv(&server).unwrap(), 5);
        for i in 0..5 {
            let (bytes, from) = inbox.get(i);
            assert_eq!(bytes, &[i as u8; 3]);
            assert_eq!(from, Some(client.local_addr().unwrap()));
            outbox.slot().extend_from_slice(&[bytes[0] + 100]);
            outbox.push(from.unwrap());
        }
        outbox.flush(&server);
        let mut buf = [0u8; 16];
        for i in 0..5u8 {
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i + 100]);
        }
    }

    #[test]
    fn light_traffic_is_never_held_and_a_flood_is() {
        let mut pace = Pace::default();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(pace.after_batch(1), None, "one query in 20 ms");
        let mut held = None;
        for _ in 0..20 {
            held = pace.after_batch(BATCH / 2);
        }
        let held = held.expect("a flood is batched");
        assert!(held <= MAX_HOLD);
        // A full batch may have left more queued: no wait before reading.
        assert_eq!(pace.after_batch(BATCH), None, "a full batch is not held");
        assert!(pace.after_batch(BATCH / 2).is_some(), "the flood goes on");
    }
}
