//! DNS over a byte stream (TCP, or TLS for DoT): each message behind a
//! 2-byte length.
//!
//! Plain TCP is only used to retry an answer that came back truncated over
//! UDP, so it opens a fresh connection per attempt.

use super::{Question, check_reply, health::Health};
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) async fn exchange(
    upstream: SocketAddr,
    msg: &[u8],
    id: u16,
    q: &Question,
    health: &Health,
) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    exchange_on(&mut stream, msg, id, q, health).await
}

/// Sends `msg` on an open stream and reads messages until one answers it.
/// Mismatched ones (a stale answer on a reused connection, or a forgery)
/// are dropped and counted.
pub(crate) async fn exchange_on<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    msg: &[u8],
    id: u16,
    q: &Question,
    health: &Health,
) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(msg.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "query over 65535 bytes")
    })?;
    // One write, so the length and the message leave in one segment.
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(msg);
    stream.write_all(&framed).await?;
    stream.flush().await?;
    loop {
        let len = stream.read_u16().await? as usize;
        let mut reply = vec![0u8; len];
        stream.read_exact(&mut reply).await?;
        match check_reply(&reply, id, q) {
            Ok(()) => return Ok(reply),
            Err(_) => health.dropped(),
        }
    }
}
