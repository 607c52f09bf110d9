//! The DHCP server's socket: UDP port 67 on one interface
//! (`SO_BINDTODEVICE`, so a box with several networks serves only the one
//! configured), broadcast allowed; reads a request, lets `reply` answer it
//! from the pool, sends the answer, and publishes changed leases.
//!
//! Not for: the decisions (`pool`, `reply`) or the start-up checks (`dhcp`).

use super::reply::{Network, answer};
use super::{Shared, now_unix};
use dhcproto::{Decodable, Encodable};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use tokio::net::UdpSocket;

/// A UDP socket on `0.0.0.0:port` that sends and receives on `interface`
/// only, broadcasts allowed. Shared with other sockets on the port (the
/// box's own DHCP client, if any, keeps working).
pub fn bind(interface: &str, port: u16) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(interface.as_bytes())).map_err(|e| {
        io::Error::new(e.kind(), format!("binding to interface '{interface}': {e}"))
    })?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())
        .map_err(|e| io::Error::new(e.kind(), format!("UDP port {port} on '{interface}': {e}")))?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// Answers clients on `sock` until the task is dropped.
pub async fn serve(sock: UdpSocket, net: Network, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 1500];
    loop {
        let n = match sock.recv_from(&mut buf).await {
            Ok((n, _)) => n,
            Err(e) => {
                tracing::warn!("dhcp: receiving: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(req) = dhcproto::v4::Message::decode(&mut dhcproto::Decoder::new(&buf[..n])) else {
            continue;
        };
        let mut changed = false;
        let reply = {
            let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            let r = answer(&mut state.pool, &net, &req, now_unix(), &mut changed);
            state.dirty |= changed;
            r
        };
        if changed {
            shared.publish();
        }
        if let Some(r) = reply {
            match r.msg.to_vec() {
                Ok(bytes) => {
                    if let Err(e) = sock.send_to(&bytes, r.to).await {
                        tracing::warn!("dhcp: sending to {}: {e}", r.to);
                    }
                }
                Err(e) => tracing::warn!("dhcp: encoding a reply: {e}"),
            }
        }
    }
}
