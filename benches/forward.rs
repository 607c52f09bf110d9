//! What forwarding costs: glory-hole's `Forwarder` against a local unbound
//! answering from a static zone over loopback UDP, next to the same queries
//! sent straight to unbound from one socket.
//!
//! Run: `cargo bench --bench forward` (needs unbound, see .ci/setup). Prints
//! sequential latency (direct vs. forwarder), concurrent throughput with
//! unique names, and how many upstream queries a burst of identical ones
//! costs. Not a criterion bench: one process, numbers on stdout.

use glory_hole::config::{DnsConfig, Upstream};
use glory_hole::dns::forward::Forwarder;
use glory_hole::testing::client::query;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEQUENTIAL: usize = 5_000;
const CONCURRENT_TOTAL: usize = 40_000;
const CONCURRENCY: usize = 64;

/// Killed (by its own PID) when dropped; its config dir goes with it.
struct Unbound {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_unbound() -> Option<(Unbound, SocketAddr)> {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = dir.path().display();
    let conf = format!(
        r#"server:
  interface: 127.0.0.1@{port}
  port: {port}
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  use-syslog: no
  logfile: ""
  module-config: "iterator"
  num-threads: 1
  local-zone: "bench.test." redirect
  local-data: "bench.test. 300 IN A 192.0.2.1"
remote-control:
  control-enable: no
"#
    );
    let path = dir.path().join("unbound.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("unbound")
        .args(["-d", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let u = Unbound { child, _dir: dir };
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..100 {
        probe
            .send_to(&query(1, "x.bench.test", 1, None, false), addr)
            .unwrap();
        if probe.recv_from(&mut buf).is_ok() {
            return Some((u, addr));
        }
    }
    panic!("unbound did not start within 10 s");
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;
    format!(
        "p50 {:.0} µs, p99 {:.0} µs, mean {:.0} µs",
        at(0.5),
        at(0.99),
        v.iter().map(|d| d.as_secs_f64()).sum::<f64>() / v.len() as f64 * 1e6
    )
}

fn main() {
    let Some((_unbound, addr)) = start_unbound() else {
        println!("forward bench skipped: unbound is not installed (run .ci/setup)");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Direct: one socket, one query at a time (the floor).
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(addr).unwrap();
    let mut buf = [0u8; 1500];
    let mut direct = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL {
        let q = query(i as u16, &format!("d{i}.bench.test"), 1, Some(1232), false);
        let t = Instant::now();
        sock.send(&q).unwrap();
        sock.recv(&mut buf).unwrap();
        direct.push(t.elapsed());
    }
    println!("direct to unbound, sequential:   {}", percentiles(direct));

    let fwd = Arc::new(Forwarder::new(
        &[Upstream::Plain(addr)],
        &DnsConfig::default(),
    ));
    rt.block_on(async {
        let mut via = Vec::with_capacity(SEQUENTIAL);
        for i in 0..SEQUENTIAL {
            let q = query(i as u16, &format!("f{i}.bench.test"), 1, Some(1232), false);
            let t = Instant::now();
            fwd.query(&q).await.unwrap();
            via.push(t.elapsed());
        }
        println!("via Forwarder, sequential:       {}", percentiles(via));

        let t = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..CONCURRENCY {
            let fwd = fwd.clone();
            tasks.push(tokio::spawn(async move {
                let mut failed = 0;
                for i in (w..CONCURRENT_TOTAL).step_by(CONCURRENCY) {
                    let q = query(i as u16, &format!("c{i}.bench.test"), 1, Some(1232), false);
                    failed += fwd.query(&q).await.is_err() as usize;
                }
                failed
            }));
        }
        let mut failed = 0;
        for task in tasks {
            failed += task.await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "via Forwarder, {CONCURRENCY} concurrent, unique names: {:.0} queries/s ({failed} failed of {CONCURRENT_TOTAL})",
            CONCURRENT_TOTAL as f64 / secs
        );

        let before = fwd.coalesced();
        let q = query(7, "same.bench.test", 1, Some(1232), false);
        let burst: Vec<_> = (0..CONCURRENCY).map(|_| fwd.query(&q)).collect();
        let ok = futures_util::future::join_all(burst)
            .await
            .iter()
            .filter(|r| r.is_ok())
            .count();
        println!(
            "burst of {CONCURRENCY} identical queries: {ok} answered, {} shared another's upstream query",
            fwd.coalesced() - before
        );
    });
}
