//! Many datagrams per system call: [`Inbox::recv`] fills up to [`BATCH`]
//! buffers with one `recvmmsg`, [`Outbox::flush`] sends every answer of the
//! batch with one `sendmmsg`. A busy UDP loop pays one wake-up and two
//! system calls per batch instead of per packet: whatever queued while the
//! last batch was being answered is read together.
//! Not for: deciding what to answer (pipeline), binding sockets (server).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// Datagrams per system call.
pub const BATCH: usize = 16;
/// Largest query read; longer datagrams are cut here (a DNS query is
/// rarely over 512 bytes, and nothing legitimate needs more than this).
pub const BUF: usize = 4096;

/// The kernel's view of a batch: one header, address and buffer pointer
/// per datagram. Boxed, so the pointers between its parts stay valid when
/// the owner moves; set up once, only lengths change per call.
struct Headers {
    hdrs: [libc::mmsghdr; BATCH],
    iov: [libc::iovec; BATCH],
    names: [libc::sockaddr_storage; BATCH],
}

impl Headers {
    fn new() -> Box<Headers> {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut h: Box<Headers> = Box::new(unsafe { zeroed() });
        for i in 0..BATCH {
            h.hdrs[i].msg_hdr.msg_name = (&raw mut h.names[i]).cast();
            h.hdrs[i].msg_hdr.msg_iov = &raw mut h.iov[i];
            h.hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        h
    }
}

/// Received datagrams, valid until the next [`Inbox::recv`].
pub struct Inbox {
    bufs: Box<[[u8; BUF]; BATCH]>,
    kernel: Box<Headers>,
    lens: [usize; BATCH],
    peers: [Option<SocketAddr>; BATCH],
}

impl Default for Inbox {
    fn default() -> Self {
        let mut inbox = Inbox {
            bufs: Box::new([[0; BUF]; BATCH]),
            kernel: Headers::new(),
            lens: [0; BATCH],
            peers: [None; BATCH],
        };
        for i in 0..BATCH {
            inbox.kernel.iov[i].iov_base = inbox.bufs[i].as_mut_ptr().cast();
            inbox.kernel.iov[i].iov_len = BUF;
        }
        inbox
    }
}

impl Inbox {
    /// Waits for at least one datagram (or the socket's read timeout), then
    /// takes whatever else is already queued, up to [`BATCH`].
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.recv_with(sock, libc::MSG_WAITFORONE)
    }

    /// Takes whatever is already queued, up to [`BATCH`], without waiting
    /// (`WouldBlock` when nothing is).
    pub fn recv_now(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.recv_with(sock, libc::MSG_DONTWAIT)
    }

    fn recv_with(&mut self, sock: &UdpSocket, flags: libc::c_int) -> io::Result<usize> {
        let k = &mut *self.kernel;
        for h in &mut k.hdrs {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as _;
        }
        // SAFETY: every header points at live buffers of the stated sizes,
        // owned by `self` (boxed, so they do not move), for the whole call.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                k.hdrs.as_mut_ptr(),
                BATCH as _,
                flags as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            self.lens[i] = (k.hdrs[i].msg_len as usize).min(BUF);
            self.peers[i] = from_sockaddr(&k.names[i]);
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
    kernel: Box<Headers>,
    len: usize,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            bufs: (0..BATCH).map(|_| Vec::with_capacity(512)).collect(),
            kernel: Headers::new(),
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

    /// Holds [`BATCH`] answers: flush before taking another slot.
    pub fn is_full(&self) -> bool {
        self.len == BATCH
    }

    /// Keeps the answer just written into [`Outbox::slot`] for `to`.
    pub fn push(&mut self, to: SocketAddr) {
        let i = self.len;
        let k = &mut *self.kernel;
        k.hdrs[i].msg_hdr.msg_namelen = to_sockaddr(&to, &mut k.names[i]);
        self.len += 1;
    }

    /// Sends every kept answer; a datagram the kernel refuses (a peer that
    /// went away) is skipped, not retried.
    pub fn flush(&mut self, sock: &UdpSocket) {
        let k = &mut *self.kernel;
        for (iov, buf) in k.iov.iter_mut().zip(&self.bufs).take(self.len) {
            // The answer buffers may have grown (moved) since the last batch.
            iov.iov_base = buf.as_ptr() as *mut _;
            iov.iov_len = buf.len();
        }
        let mut sent = 0;
        while sent < self.len {
            let todo = self.len - sent;
            // SAFETY: headers `sent..len` point at this outbox's answers and
            // addresses, alive and unchanged for the call; sendmmsg only
            // reads them.
            let n = unsafe {
                libc::sendmmsg(sock.as_raw_fd(), k.hdrs[sent..].as_mut_ptr(), todo as _, 0)
            };
            // n < 0: the first one failed (e.g. EPERM, ECONNREFUSED): skip it.
            sent += if n <= 0 { 1 } else { n as usize };
        }
        self.len = 0;
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
}
