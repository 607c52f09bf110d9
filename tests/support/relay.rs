//! A loopback port on this machine that reaches a port inside a
//! segment's box namespace (`segment`), for programs that run outside it
//! (the browser): each connection is piped through `busybox nc` entered
//! into the namespace, since a pipe crosses namespaces and a socket does
//! not.
//!
//! Not for: DNS or DHCP traffic (run the client inside with `in_box` or
//! `on_lan`).

use super::segment::Segment;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// Starts relaying `127.0.0.1:<returned port>` here to `127.0.0.1:port`
/// in the box's namespace, for as long as the runtime lives.
pub async fn to_box(seg: &Segment, port: u16) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let here = listener.local_addr().unwrap();
    let mut nc = seg.in_box("busybox");
    nc.args(["nc", "127.0.0.1", &port.to_string()]);
    let program = nc.get_program().to_os_string();
    let args: Vec<OsString> = nc.get_args().map(|a| a.to_os_string()).collect();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let mut child = tokio::process::Command::new(&program)
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("busybox is installed (.ci/setup)");
            let mut to_nc = child.stdin.take().unwrap();
            let mut from_nc = child.stdout.take().unwrap();
            tokio::spawn(async move {
                let (mut rd, mut wr) = conn.into_split();
                let up = async {
                    let _ = tokio::io::copy(&mut rd, &mut to_nc).await;
                    let _ = to_nc.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut from_nc, &mut wr).await;
                    let _ = wr.shutdown().await;
                };
                // Until both sides are done; then nc goes.
                tokio::join!(up, down);
                let _ = child.kill().await;
            });
        }
    });
    here
}
