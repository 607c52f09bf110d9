//! The glory-hole process of `benches/filter.rs`'s first table: this
//! benchmark binary run as `serve DATA_DIR PORT LIST... [--rebuild]`, the
//! FilterService plus a minimal UDP responder (no cache, no upstreams), so
//! its numbers are the filter's share of the real server.
//!
//! Not for: the real server's numbers (`measure_real_binary` runs the
//! shipped binary).

use super::{REBUILD_PEAK_INDEXES, config, proc_cpu_ms};
use glory_hole::config::FilterList;
use glory_hole::filter::{FilterService, Verdict};
use glory_hole::wire::{self, Query, ResponseWriter};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `serve DATA_DIR PORT LIST... [--rebuild]`: the filter service plus a
/// minimal UDP responder. With --rebuild: once ready, report steady RSS,
/// rebuild with one more list, report the peak, and exit.
pub fn serve(args: &[String]) {
    let data = PathBuf::from(&args[0]);
    let port: u16 = args[1].parse().unwrap();
    let rebuild = args.iter().any(|a| a == "--rebuild");
    let lists: Vec<PathBuf> = args[2..]
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let cfg = config(&data, &lists);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let svc = FilterService::start(&cfg).unwrap();
        let handle = svc.current();
        if rebuild {
            let svc2 = svc.clone();
            let cfg2 = cfg.clone();
            tokio::task::spawn_blocking(move || {
                assert!(svc2.wait_ready(Duration::from_secs(120)));
                std::thread::sleep(Duration::from_millis(300));
                let pid = std::process::id();
                let index_bytes = svc2.current().load().index().heap_bytes() as u64;
                let mut cfg3 = cfg2.clone();
                let extra = cfg2.data_dir.join("extra.txt");
                std::fs::write(&extra, "extra.example\n").unwrap();
                cfg3.filter.lists.push(FilterList {
                    name: "extra".into(),
                    path: Some(extra),
                    url: None,
                    enabled: true,
                    match_mode: None,
                    groups: vec![],
                });
                let steady = rollup_rss_kib();
                // Sample the exact RSS every 2 ms while the rebuild runs.
                let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let d2 = done.clone();
                let sampler = std::thread::spawn(move || {
                    let mut peak = 0;
                    while !d2.load(std::sync::atomic::Ordering::Relaxed) {
                        peak = peak.max(rollup_rss_kib());
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    peak
                });
                let t = Instant::now();
                let cpu0 = proc_cpu_ms(pid);
                svc2.apply_config(&cfg3).unwrap();
                assert!(svc2.wait_idle(Duration::from_secs(120)));
                let took = t.elapsed();
                let cpu = proc_cpu_ms(pid) - cpu0;
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                let peak = sampler.join().unwrap();
                let after = rollup_rss_kib();
                println!(
                    "steady {:.1} MiB, peak {:.1} MiB (+{:.1} MiB), index {:.1} MiB, bound steady+{REBUILD_PEAK_INDEXES}*index = {:.1} MiB, after {:.1} MiB, rebuild {:.2} s wall, {:.2} s CPU",
                    steady as f64 / 1024.0,
                    peak as f64 / 1024.0,
                    (peak.saturating_sub(steady)) as f64 / 1024.0,
                    index_bytes as f64 / 1048576.0,
                    steady as f64 / 1024.0 + REBUILD_PEAK_INDEXES * index_bytes as f64 / 1048576.0,
                    after as f64 / 1024.0,
                    took.as_secs_f64(),
                    cpu / 1000.0
                );
                let bound_kib =
                    steady as f64 + REBUILD_PEAK_INDEXES * index_bytes as f64 / 1024.0;
                std::process::exit(if peak as f64 <= bound_kib { 0 } else { 1 });
            });
        }
        let sock = tokio::net::UdpSocket::bind(("127.0.0.1", port)).await.unwrap();
        let mut buf = [0u8; 1500];
        let mut out = Vec::with_capacity(512);
        let mut text = heapless::String::<256>::new();
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else { continue };
            let raw = &buf[..n];
            let Ok(q) = Query::parse(raw) else { continue };
            wire::name_to_text(&q.qname, &mut text);
            let f = handle.load();
            match f.check(&text, peer.ip()) {
                Verdict::Blocked(_) => {
                    let mut w = ResponseWriter::new(&mut out, raw, &q, wire::RCODE_NOERROR, false);
                    if q.qtype == wire::TYPE_A {
                        w.record_at_qname(0, wire::TYPE_A, f.blocked_ttl(), &[0, 0, 0, 0]);
                    }
                    w.finish();
                }
                _ => ResponseWriter::new(&mut out, raw, &q, wire::RCODE_REFUSED, false).finish(),
            }
            let _ = sock.send_to(&out, peer).await;
        }
    });
}

/// Resident KiB from the page tables (exact, unlike VmRSS which lags).
fn rollup_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("Rss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
