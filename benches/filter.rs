//! Filter benchmarks, side by side with unbound and dnsmasq.
//!
//! `cargo bench --bench filter` (or benches/filter-bench.sh): loads every
//! list in ../shared/data/blocklists and synthetic sets up to 2M names;
//! reports compile time, bytes per name, ns per lookup (hit, miss, deep
//! subdomain), and for whole processes: time from start to first answer,
//! steady RSS and peak RSS during a rebuild. unbound (`local-zone: "d."
//! always_null`) and dnsmasq (`addn-hosts`) load the same unique names in
//! the same run, on loopback high ports, as foreground processes.
//!
//! The glory-hole process in the first table is this binary in `serve`
//! mode (benches/filter/serve.rs): the FilterService plus a minimal UDP
//! responder (no cache, no upstreams), so the numbers are the filter's
//! share of the real server.
//! The real server binary (`GLORY_HOLE_BIN`, default
//! target/release/glory-hole; benches/filter-bench.sh builds it) is then
//! started with every list, the web UI and the query log on as by default,
//! and an empty cache: its steady VmRSS and where that memory goes
//! (/proc/PID/smaps) are reported too.
//!
//! Each target of docs/performance.md ("Against the targets") that the run
//! misses is printed at the end and the benchmark exits 1, as does a
//! process that never blocks the listed name.

use glory_hole::config::{Config, FilterList};
use glory_hole::filter::{Filter, Verdict};
use glory_hole::wire;
use std::collections::HashSet;
use std::hint::black_box;
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The targets (docs/performance.md, "Against the targets"), for the
/// real lists.
const LOOKUP_NS: f64 = 150.0;
const COMPILE_S: f64 = 3.0;
const SNAPSHOT_START_MS: f64 = 300.0;
const REAL_SERVER_RSS_MIB: f64 = 24.0;
/// The rebuild's peak may exceed the steady RSS by this many index sizes.
const REBUILD_PEAK_INDEXES: f64 = 1.5;

/// The targets a run missed, each said in words. Wall-time targets
/// (lookup ns, start-up ms) are kept apart: they fail the documented run,
/// while `--quick` (the CI smoke on a shared runner, where wall times are
/// noise) only reports them. Answers, memory and CPU time always count.
#[derive(Default)]
struct Missed {
    hard: Vec<String>,
    wall: Vec<String>,
}

impl Missed {
    fn check(&mut self, met: bool, what: impl FnOnce() -> String) {
        if !met {
            self.hard.push(what());
        }
    }

    fn check_wall(&mut self, met: bool, what: impl FnOnce() -> String) {
        if !met {
            self.wall.push(what());
        }
    }
}

#[path = "filter/serve.rs"]
mod serve;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve::serve(&args[1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let missed = run(quick);
    for m in &missed.wall {
        eprintln!(
            "wall-time target missed{}: {m}",
            if quick {
                " (reported only with --quick)"
            } else {
                ""
            }
        );
    }
    let failed: Vec<&String> = missed
        .hard
        .iter()
        .chain(missed.wall.iter().filter(|_| !quick))
        .collect();
    if !failed.is_empty() {
        eprintln!("\nfilter benchmark: {} target(s) missed:", failed.len());
        for m in failed {
            eprintln!("  {m}");
        }
        std::process::exit(1);
    }
}

fn lists_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    ["../shared", "../../shared"]
        .iter()
        .map(|p| root.join(p).join("data/blocklists"))
        .find(|p| p.is_dir())
        .expect("../shared/data/blocklists is missing")
}

fn real_lists() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for folder in ["hosts", "domains", "adblock", "dnsmasq"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(lists_dir().join(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

fn config(data_dir: &Path, lists: &[PathBuf]) -> Config {
    let mut cfg = Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    for (i, p) in lists.iter().enumerate() {
        cfg.filter.lists.push(FilterList {
            name: format!("l{i}-{}", p.file_stem().unwrap().to_string_lossy()),
            path: Some(p.clone()),
            url: None,
            enabled: true,
            match_mode: None,
            groups: vec![],
        });
    }
    cfg
}

/// The unique names of the real lists, parsed by the filter's own parser.
fn unique_names(lists: &[PathBuf]) -> Vec<String> {
    let mut set = HashSet::new();
    for p in lists {
        let f = std::io::BufReader::new(std::fs::File::open(p).unwrap());
        glory_hole::filter::parse::parse_list(f, |r| {
            set.insert(r.domain.into_owned());
        })
        .unwrap();
    }
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort();
    v
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

fn synthetic(n: usize, path: &Path) {
    use std::io::Write;
    let mut rng = Lcg(n as u64);
    let tlds = ["com", "net", "org", "io", "de", "info", "xyz", "co.uk"];
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        let r = rng.next();
        writeln!(
            out,
            "t{:x}-{i}.s{}.{}",
            r & 0xFFFFFF,
            r % 5000,
            tlds[(r >> 30) as usize % tlds.len()]
        )
        .unwrap();
    }
}

/// CPU time of this thread: the machine is shared, so wall time would
/// count time spent descheduled.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Query names packed back to back in lookup order: on a server the name
/// is in the packet buffer, already in cache, so the benchmark should not
/// measure chasing scattered heap strings.
struct Packed {
    text: String,
    spans: Vec<(u32, u32)>,
}

fn packed(names: &[String]) -> Packed {
    let mut text = String::new();
    let mut spans = Vec::with_capacity(names.len());
    for n in names {
        spans.push((text.len() as u32, n.len() as u32));
        text.push_str(n);
    }
    Packed { text, spans }
}

fn time_lookups(f: &Filter, names: &[String]) -> f64 {
    let client: IpAddr = "192.168.1.10".parse().unwrap();
    let p = packed(names);
    // The best of three passes, in thread CPU time.
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = cpu_now();
        let mut blocked = 0usize;
        for &(at, len) in &p.spans {
            let n = &p.text[at as usize..(at + len) as usize];
            if let Verdict::Blocked(_) = f.check(black_box(n), client) {
                blocked += 1;
            }
        }
        black_box(blocked);
        best = best.min((cpu_now() - t).as_nanos() as f64 / names.len() as f64);
    }
    best
}

fn shuffled(mut v: Vec<String>, seed: u64) -> Vec<String> {
    let mut rng = Lcg(seed);
    for i in (1..v.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

struct LookupRow {
    label: String,
    names: usize,
    compile_s: f64,
    bytes_per_name: f64,
    hit: f64,
    miss: f64,
    deep: f64,
}

fn measure_in_process(label: &str, lists: &[PathBuf], sample: &[String], data: &Path) -> LookupRow {
    let cfg = config(data, lists);
    let t = cpu_now();
    let f = Filter::from_config(&cfg).unwrap();
    let compile_s = (cpu_now() - t).as_secs_f64();
    let idx = f.index();
    let n = 200_000.min(sample.len());
    let hits = shuffled(sample.to_vec(), 7)
        .into_iter()
        .take(n)
        .collect::<Vec<_>>();
    let misses: Vec<String> = (0..n)
        .map(|i| format!("www{i}.not-listed-{}.example.com", i % 977))
        .collect();
    let deep: Vec<String> = hits.iter().map(|h| format!("a1.b2.c3.d4.e5.{h}")).collect();
    LookupRow {
        label: label.into(),
        names: idx.len(),
        compile_s,
        bytes_per_name: idx.heap_bytes() as f64 / idx.len() as f64,
        hit: time_lookups(&f, &hits),
        miss: time_lookups(&f, &misses),
        deep: time_lookups(&f, &deep),
    }
}

// ---- whole processes ----

fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut b = vec![
        (id >> 8) as u8,
        id as u8,
        0x01,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    b.extend_from_slice(&wire::text_to_name(name).unwrap());
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&[0, 1]);
    b
}

/// Sends the query every 2 ms until an answer comes; returns it.
fn first_answer(port: u16, name: &str, give_up: Duration) -> Option<(Duration, Vec<u8>)> {
    let t = Instant::now();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let mut id = 1u16;
    while t.elapsed() < give_up {
        let _ = sock.send_to(&query(id, name, wire::TYPE_A), ("127.0.0.1", port));
        if let Ok((n, _)) = sock.recv_from(&mut buf)
            && is_blocked_answer(&buf[..n])
        {
            return Some((t.elapsed(), buf[..n].to_vec()));
        }
        id = id.wrapping_add(1);
    }
    None
}

/// 0.0.0.0 in the answer, or NXDOMAIN: what each server says for a blocked name.
fn is_blocked_answer(a: &[u8]) -> bool {
    a.len() >= 12
        && (wire::rcode(a) == wire::RCODE_NXDOMAIN
            || (wire::read_u16(a, 6).unwrap_or(0) > 0 && a.ends_with(&[0, 4, 0, 0, 0, 0])))
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time a process has used so far (user + system), in ms.
fn proc_cpu_ms(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after.split(' ').map(|v| v.parse().unwrap_or(0)).collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0)) as f64 * 1000.0 / hz
}

struct ProcRow {
    label: String,
    first_answer_ms: f64,
    first_answer_cpu_ms: f64,
    rss_mib: f64,
    answer_ok: bool,
}

fn measure_process(label: &str, mut cmd: Command, port: u16, blocked: &str) -> ProcRow {
    let t = Instant::now();
    let mut child: Child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(label);
    let ans = first_answer(port, blocked, Duration::from_secs(120));
    let first = t.elapsed();
    let cpu = proc_cpu_ms(child.id());
    std::thread::sleep(Duration::from_millis(300));
    let rss = status_kib(child.id(), "VmRSS:");
    let _ = child.kill();
    let _ = child.wait();
    let answer_ok = ans.is_some();
    ProcRow {
        label: label.into(),
        first_answer_ms: first.as_secs_f64() * 1000.0,
        first_answer_cpu_ms: cpu,
        rss_mib: rss as f64 / 1024.0,
        answer_ok,
    }
}

/// The server binary to measure: GLORY_HOLE_BIN, or the release build.
fn real_binary() -> Option<PathBuf> {
    std::env::var_os("GLORY_HOLE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/glory-hole")
        })
        .canonicalize()
        .ok()
}

struct RealRow {
    first_answer_ms: f64,
    rss_kib: u64,
    hwm_kib: u64,
    breakdown: String,
}

/// Starts the real server on `dir` (a second call finds its snapshot),
/// waits until its lists are loaded and it blocks a listed name, lets it
/// settle, and reads its memory.
fn measure_real_binary(bin: &Path, dir: &Path, lists: &[PathBuf], blocked: &str) -> RealRow {
    std::fs::create_dir_all(dir).unwrap();
    let (dns, web) = (free_port(), free_tcp_port());
    let mut text = format!(
        "data_dir = \"{}\"\n[dns]\nlisten = [\"127.0.0.1:{dns}\"]\n\
         # Never reached: only blocked names are asked.\nupstreams = [\"127.0.0.1:9\"]\n\
         [web]\nlisten = [\"127.0.0.1:{web}\"]\n",
        dir.join("data").display()
    );
    for (i, p) in lists.iter().enumerate() {
        text.push_str(&format!(
            "[[filter.lists]]\nname = \"l{i}-{}\"\npath = \"{}\"\n",
            p.file_stem().unwrap().to_string_lossy(),
            p.display()
        ));
    }
    let cfg = dir.join("glory-hole.toml");
    std::fs::write(&cfg, text).unwrap();
    let t = Instant::now();
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "info")
        // tracing writes the log to stdout.
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the glory-hole binary");
    // Ask nothing before the lists are loaded: a query the server cannot
    // block yet would be forwarded and cached, and the cache must stay
    // empty. The log says when: "DNS on" follows a snapshot load, and a
    // first start logs "N names from M lists" once its rebuild is served.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let log = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut rebuilding = false;
        let mut listening = false;
        for line in std::io::BufReader::new(log).lines().map_while(Result::ok) {
            rebuilding |= line.contains("rebuilding from the lists");
            listening |= line.contains("DNS on");
            if listening && (!rebuilding || line.contains(" names from ")) {
                let _ = ready_tx.send(rebuilding);
            }
        }
    });
    let rebuilt = ready_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the real server never said it was ready");
    if rebuilt {
        // The line comes just before the new index is swapped in.
        std::thread::sleep(Duration::from_millis(50));
    }
    let ans = first_answer(dns, blocked, Duration::from_secs(10));
    let first = t.elapsed();
    assert!(ans.is_some(), "the real server never blocked {blocked}");
    // Steady: the rebuild's work memory goes once the new index serves,
    // and the allocator hands freed pages back a little later. Wait until
    // VmRSS holds still for a second (at most 10 s).
    let pid = child.id();
    let mut prev = status_kib(pid, "VmRSS:");
    let mut still = 0;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(250));
        let now = status_kib(pid, "VmRSS:");
        still = if now.abs_diff(prev) < 64 {
            still + 1
        } else {
            0
        };
        prev = now;
        if still >= 4 {
            break;
        }
    }
    let row = RealRow {
        first_answer_ms: first.as_secs_f64() * 1000.0,
        rss_kib: status_kib(pid, "VmRSS:"),
        hwm_kib: status_kib(pid, "VmHWM:"),
        breakdown: memory_breakdown(pid),
    };
    let _ = child.kill();
    let _ = child.wait();
    row
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Resident memory by kind (smaps_rollup) and the largest mappings (smaps).
fn memory_breakdown(pid: u32) -> String {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |text: &str, key: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let rss = field(&rollup, "Rss:");
    let anon = field(&rollup, "Anonymous:");
    let huge = field(&rollup, "AnonHugePages:");
    let mut out = format!(
        "- Rss {:.1} MiB = anonymous {:.1} MiB (of which huge pages {:.1} MiB) + file-backed {:.1} MiB\n",
        rss as f64 / 1024.0,
        anon as f64 / 1024.0,
        huge as f64 / 1024.0,
        rss.saturating_sub(anon) as f64 / 1024.0
    );
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    // (rss KiB, size KiB, perms, name)
    let mut maps: Vec<(u64, u64, String, String)> = Vec::new();
    for line in smaps.lines() {
        let mut cols = line.split_whitespace();
        let first = cols.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            let perms = cols.next().unwrap_or("").to_string();
            let name = cols.nth(3).unwrap_or("[anonymous]").to_string();
            maps.push((0, 0, perms, name));
        } else if let Some(m) = maps.last_mut() {
            match first {
                "Rss:" => m.0 = field(line, "Rss:"),
                "Size:" => m.1 = field(line, "Size:"),
                _ => {}
            }
        }
    }
    maps.sort_by_key(|m| std::cmp::Reverse(m.0));
    for (rss, size, perms, name) in maps.iter().take(8) {
        out.push_str(&format!(
            "- {:.1} MiB resident of {:.1} MiB mapped, {perms} {name}\n",
            *rss as f64 / 1024.0,
            *size as f64 / 1024.0
        ));
    }
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    out.push_str(&format!("- threads: {threads}"));
    out
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn have(tool: &str) -> Option<PathBuf> {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return Some(p);
        }
    }
    None
}

fn run(quick: bool) -> Missed {
    let mut missed = Missed::default();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let lists = real_lists();
    let names = unique_names(&lists);
    println!("# glory-hole filter benchmark");
    println!(
        "lists: {} files, {} unique names\n",
        lists.len(),
        names.len()
    );

    // In-process: compile, size, lookups.
    let mut rows = vec![measure_in_process(
        "real lists",
        &lists,
        &names,
        &w.join("d0"),
    )];
    let sizes: &[usize] = if quick {
        &[100_000]
    } else {
        &[100_000, 500_000, 1_000_000, 2_000_000]
    };
    for &n in sizes {
        let p = w.join(format!("synthetic-{n}.txt"));
        synthetic(n, &p);
        let sample: Vec<String> = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .step_by((n / 200_000).max(1))
            .map(str::to_string)
            .collect();
        rows.push(measure_in_process(
            &format!("synthetic {}k", n / 1000),
            &[p],
            &sample,
            &w.join(format!("d{n}")),
        ));
    }
    println!(
        "| set | names | compile (s) | index bytes/name | hit (ns) | miss (ns) | deep subdomain (ns) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} |",
            r.label, r.names, r.compile_s, r.bytes_per_name, r.hit, r.miss, r.deep
        );
    }
    let real = &rows[0];
    missed.check(real.compile_s <= COMPILE_S, || {
        format!("compile {:.2} s CPU > {COMPILE_S} s", real.compile_s)
    });
    for (kind, ns) in [
        ("hit", real.hit),
        ("miss", real.miss),
        ("deep subdomain", real.deep),
    ] {
        missed.check_wall(ns <= LOOKUP_NS, || {
            format!("lookup ({kind}) {ns:.0} ns > {LOOKUP_NS} ns")
        });
    }

    // Whole processes on the real lists.
    let blocked = names[names.len() / 2].clone();
    let me = std::env::current_exe().unwrap();
    let gh_cfg_dir = w.join("gh");
    let port = free_port();
    let gh = |port: u16, extra: &[&str]| {
        let mut c = Command::new(&me);
        c.arg("serve").arg(&gh_cfg_dir).arg(port.to_string());
        for l in &lists {
            c.arg(l);
        }
        c.args(extra);
        c
    };
    println!(
        "\n| process (real lists) | start to first answer, wall (ms) | CPU used by then (ms) | RSS (MiB) | blocked answer |"
    );
    println!("|---|---:|---:|---:|---|");
    let mut prows = vec![];
    prows.push(measure_process(
        "glory-hole, first start (compile lists)",
        gh(port, &[]),
        port,
        &blocked,
    ));
    let port = free_port();
    prows.push(measure_process(
        "glory-hole, restart (snapshot)",
        gh(port, &[]),
        port,
        &blocked,
    ));

    // unbound and dnsmasq on the same names.
    if let Some(unbound) = have("unbound") {
        let conf = w.join("unbound.conf");
        let port = free_port();
        let mut text = format!(
            "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-daemonize: no\n  chroot: \"\"\n  username: \"\"\n  directory: \"{}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  num-threads: 1\n  do-ip6: no\n  verbosity: 0\n",
            w.display()
        );
        for n in &names {
            text.push_str(&format!("  local-zone: \"{n}.\" always_null\n"));
        }
        std::fs::write(&conf, text).unwrap();
        let mut c = Command::new(unbound);
        c.arg("-d").arg("-c").arg(&conf);
        prows.push(measure_process(
            "unbound (local-zone always_null)",
            c,
            port,
            &blocked,
        ));
    } else {
        println!("(unbound not installed: run .ci/setup)");
    }
    if let Some(dnsmasq) = have("dnsmasq") {
        let hosts = w.join("hosts");
        let mut text = String::new();
        for n in &names {
            text.push_str(&format!("0.0.0.0 {n}\n"));
        }
        std::fs::write(&hosts, text).unwrap();
        let port = free_port();
        let mut c = Command::new(dnsmasq);
        c.args([
            "-k",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "-C",
            "/dev/null",
            "--pid-file",
            "--user=root",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--addn-hosts={}", hosts.display()));
        prows.push(measure_process("dnsmasq (addn-hosts)", c, port, &blocked));
    } else {
        println!("(dnsmasq not installed: run .ci/setup)");
    }
    for r in &prows {
        println!(
            "| {} | {:.0} | {:.0} | {:.1} | {} |",
            r.label,
            r.first_answer_ms,
            r.first_answer_cpu_ms,
            r.rss_mib,
            if r.answer_ok { "yes" } else { "NO" }
        );
        missed.check(r.answer_ok, || {
            format!("{}: never blocked {blocked}", r.label)
        });
        if r.label.starts_with("glory-hole") && r.label.contains("snapshot") {
            missed.check_wall(r.first_answer_ms <= SNAPSHOT_START_MS, || {
                format!(
                    "{}: first answer after {:.0} ms > {SNAPSHOT_START_MS} ms",
                    r.label, r.first_answer_ms
                )
            });
        }
    }

    // The real server binary, as shipped: web UI and query log on.
    match real_binary() {
        Some(bin) => {
            let dir = w.join("real");
            println!(
                "\n| real server ({}, all lists, web + query log on, empty cache) | start to first blocked answer (ms) | steady VmRSS (MiB) | VmHWM (MiB) |",
                bin.display()
            );
            println!("|---|---:|---:|---:|");
            let mut breakdowns = Vec::new();
            for label in ["first start (compile lists)", "restart (snapshot)"] {
                let r = measure_real_binary(&bin, &dir, &lists, &blocked);
                println!(
                    "| {label} | {:.0} | {:.1} | {:.1} |",
                    r.first_answer_ms,
                    r.rss_kib as f64 / 1024.0,
                    r.hwm_kib as f64 / 1024.0
                );
                let rss_mib = r.rss_kib as f64 / 1024.0;
                missed.check(rss_mib <= REAL_SERVER_RSS_MIB, || {
                    format!(
                        "real server, {label}: VmRSS {rss_mib:.1} MiB > {REAL_SERVER_RSS_MIB} MiB"
                    )
                });
                if label.contains("snapshot") {
                    missed.check_wall(r.first_answer_ms <= SNAPSHOT_START_MS, || {
                        format!(
                            "real server, {label}: first answer after {:.0} ms > {SNAPSHOT_START_MS} ms",
                            r.first_answer_ms
                        )
                    });
                }
                breakdowns.push((label, r.breakdown));
            }
            for (label, b) in breakdowns {
                println!("\nwhere the server's memory goes, {label}:\n{b}");
            }
        }
        None => println!(
            "\n(real server binary not built: run `cargo build --release` or benches/filter-bench.sh)"
        ),
    }

    // Peak during a rebuild, measured inside a serving process.
    let port = free_port();
    let out = gh(port, &["--rebuild"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    println!("\nrebuild while serving (real lists): {}", line.trim());
    // The serving process exits 1 when its peak broke the bound.
    missed.check(out.status.success(), || {
        format!(
            "rebuild while serving: peak over steady + {REBUILD_PEAK_INDEXES} x index, or no report ({})",
            out.status
        )
    });

    // 2M synthetic names as a whole process.
    if !quick {
        let p = w.join("synthetic-2000000.txt");
        let first = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .nth(12345)
            .unwrap()
            .to_string();
        let dir2 = w.join("gh2m");
        let mk = |port: u16| {
            let mut c = Command::new(&me);
            c.arg("serve").arg(&dir2).arg(port.to_string()).arg(&p);
            c
        };
        let port = free_port();
        let a = measure_process("glory-hole 2M, first start", mk(port), port, &first);
        let port = free_port();
        let b = measure_process("glory-hole 2M, restart (snapshot)", mk(port), port, &first);
        for r in [a, b] {
            println!(
                "{}: first answer {:.0} ms, RSS {:.1} MiB",
                r.label, r.first_answer_ms, r.rss_mib
            );
            missed.check(r.answer_ok, || {
                format!("{}: never blocked {first}", r.label)
            });
        }
    }
    missed
}
