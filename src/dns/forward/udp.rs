//! Plain DNS over UDP: one fresh socket per attempt.
//!
//! The socket is bound to port 0, so the kernel picks a random source port
//! each time, and connected to the upstream, so the kernel drops datagrams
//! from any other address or port (and reports ICMP "port unreachable" as
//! an error, which makes failover immediate). Replies with the wrong ID or
//! question are dropped and counted; we keep listening until the right one
//! arrives or the caller's timeout ends the attempt.

use super::{Question, check_reply, health::Health};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::net::UdpSocket;

/// We ask upstreams for at most 1232-byte (configurable, ≤ 4096) UDP
/// answers, so this is room enough; a datagram that fills it may have been
/// cut, and is treated as truncated (the caller retries over TCP). Kept
/// small because one is held by every query in flight.
const REPLY_BUF: usize = 4096;

pub(crate) async fn exchange(
    upstream: SocketAddr,
    msg: &[u8],
    id: u16,
    q: &Question,
    health: &Health,
) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(msg).await?;
    // recv_buf fills spare capacity: no 64 KiB memset per query.
    let mut buf = Vec::with_capacity(REPLY_BUF);
    loop {
        buf.clear();
        let n = socket.recv_buf(&mut buf).await?;
        match check_reply(&buf[..n], id, q) {
            Ok(()) => {
                let mut reply = buf[..n].to_vec();
                if n >= REPLY_BUF {
                    crate::wire::set_flag(&mut reply, crate::wire::flags::TC);
                }
                return Ok(reply);
            }
            Err(_) => health.dropped(),
        }
    }
}
