//! The benchmark's generated traffic: 30 days ending at a given time,
//! domains Zipf-distributed (s = 1) over a 300 000-name universe (every
//! sixth rank a blocklist name, those blocked), 50 clients (Zipf, s = 0.8),
//! realistic query types and outcomes. The same sequence every time, so
//! the plain row-per-query table of `questions.rs` is built from the very
//! rows the query log stored.

use glory_hole::events::{QueryEvent, Reason, Source};
use glory_hole::testing::Rng;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

struct Zipf {
    cdf: Vec<f64>,
}
impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut acc = 0.0;
        let cdf = (1..=n)
            .map(|k| {
                acc += 1.0 / (k as f64).powf(s);
                acc
            })
            .collect::<Vec<_>>();
        let total = acc;
        Zipf {
            cdf: cdf.into_iter().map(|c| c / total).collect(),
        }
    }
    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

pub fn blocklist_domains() -> Vec<String> {
    // ../shared from the main checkout, ../../shared from a worktree.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = ["../shared", "../../shared"]
        .iter()
        .map(|s| root.join(s).join("data/blocklists/domains"))
        .find(|d| d.is_dir())
        .expect("../shared/data/blocklists/domains (the shared data)");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let text = std::fs::read_to_string(entry.expect("list entry").path()).expect("list");
        out.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#') && l.len() < 250)
                .map(str::to_ascii_lowercase),
        );
    }
    out.sort();
    out.dedup();
    out
}

const POPULAR: &[&str] = &[
    "www.google.com",
    "connectivitycheck.gstatic.com",
    "api.apple.com",
    "www.youtube.com",
    "i.ytimg.com",
    "graph.facebook.com",
    "www.netflix.com",
    "time.android.com",
    "mtalk.google.com",
    "clients4.google.com",
    "www.wikipedia.org",
    "github.com",
    "api.spotify.com",
    "weather.com",
    "outlook.office365.com",
    "www.amazon.com",
    "s3.amazonaws.com",
    "cdn.jsdelivr.net",
    "fonts.googleapis.com",
    "ocsp.digicert.com",
];

pub fn ordinary(i: usize) -> String {
    if i < POPULAR.len() {
        return POPULAR[i].to_owned();
    }
    const TLDS: [&str; 6] = ["com", "net", "org", "de", "io", "co.uk"];
    const SUBS: [&str; 6] = ["www", "cdn", "api", "static", "img", "m"];
    format!("{}.site{}.{}", SUBS[i % 6], i / 6, TLDS[(i / 7) % 6])
}

const QTYPES: [(u16, f64); 7] = [
    (1, 0.55),
    (28, 0.30),
    (65, 0.10),
    (12, 0.02),
    (16, 0.015),
    (33, 0.01),
    (15, 0.005),
];

/// The universe's names (and whether each is blocked), ranked.
pub fn universe(size: usize) -> Vec<(String, bool)> {
    let blocked = blocklist_domains();
    // Rank r is a blocklist name for one rank in six (spread, not the top).
    let name_of = |r: usize| -> (String, bool) {
        if r % 6 == 5 {
            (
                blocked[(r.wrapping_mul(2_654_435_761)) % blocked.len()].clone(),
                true,
            )
        } else {
            (ordinary(r), false)
        }
    };
    (0..size).map(name_of).collect()
}

const UNIVERSE: usize = 300_000;

/// `rows` events over the 30 days ending at `end`, evenly spaced.
pub struct Traffic {
    names: Arc<Vec<(String, bool)>>,
    zipf: Arc<Zipf>,
    client_zipf: Arc<Zipf>,
    pub clients: Vec<IpAddr>,
    rng: Rng,
    start: i64,
    step: f64,
    rows: usize,
    i: usize,
}

impl Traffic {
    pub fn new(rows: usize, end: i64) -> Traffic {
        Traffic::with_universe(rows, end, UNIVERSE)
    }

    /// The same traffic over the `size` most popular names only.
    pub fn with_universe(rows: usize, end: i64, size: usize) -> Traffic {
        let span = 30 * 86_400_000i64;
        Traffic {
            names: Arc::new(universe(size)),
            zipf: Arc::new(Zipf::new(size, 1.0)),
            client_zipf: Arc::new(Zipf::new(50, 0.8)),
            clients: (0..50)
                .map(|i| {
                    if i % 10 == 9 {
                        format!("fd00::{:x}", 0x100 + i).parse().unwrap()
                    } else {
                        format!("192.168.1.{}", 10 + i).parse().unwrap()
                    }
                })
                .collect(),
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            start: end - span,
            step: span as f64 / rows as f64,
            rows,
            i: 0,
        }
    }

    /// The time of the first event.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// The names, by rank.
    pub fn names(&self) -> &[(String, bool)] {
        &self.names
    }
}

impl Clone for Traffic {
    fn clone(&self) -> Traffic {
        Traffic {
            names: self.names.clone(),
            zipf: self.zipf.clone(),
            client_zipf: self.client_zipf.clone(),
            clients: self.clients.clone(),
            rng: Rng(self.rng.0),
            ..*self
        }
    }
}

impl Iterator for Traffic {
    type Item = QueryEvent;

    fn next(&mut self) -> Option<QueryEvent> {
        if self.i >= self.rows {
            return None;
        }
        let i = self.i;
        self.i += 1;
        let rng = &mut self.rng;
        let r = self.zipf.sample(rng);
        let (name, is_blocked) = &self.names[r];
        let u = rng.unit();
        let mut acc = 0.0;
        let qtype = QTYPES
            .iter()
            .find(|(_, p)| {
                acc += p;
                u < acc
            })
            .map_or(1, |q| q.0);
        let (source, upstream, latency_us, reason) = if *is_blocked {
            (
                Source::Blocked,
                u8::MAX,
                20 + (rng.next_u64() % 40) as u32,
                Reason {
                    kind: 1,
                    id: (rng.next_u64() % 12) as u32,
                    cname_depth: 0,
                },
            )
        } else {
            let p = rng.unit();
            if p < 0.6 {
                (
                    Source::Cache,
                    u8::MAX,
                    15 + (rng.next_u64() % 60) as u32,
                    Reason::default(),
                )
            } else if p < 0.985 {
                (
                    Source::Upstream,
                    (rng.next_u64() % 2) as u8,
                    4_000 + (rng.next_u64() % 60_000) as u32,
                    Reason::default(),
                )
            } else if p < 0.99 {
                (Source::Local, u8::MAX, 10, Reason::default())
            } else if p < 0.995 {
                (Source::Stale, u8::MAX, 30, Reason::default())
            } else {
                (Source::Failed, 0, 2_000_000, Reason::default())
            }
        };
        Some(QueryEvent {
            time_ms: self.start + (i as f64 * self.step) as i64,
            client: self.clients[self.client_zipf.sample(rng)],
            qname: heapless::String::try_from(name.as_str()).unwrap_or_default(),
            qtype,
            rcode: if source == Source::Blocked { 3 } else { 0 },
            source,
            upstream,
            latency_us,
            reason,
        })
    }
}
