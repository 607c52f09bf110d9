//! Generated household traffic for the query log's read-side tests
//! (`querylog_vtab`, `querylog_export`): a seeded mix of clients, names,
//! types and outcomes, in time order, as the DNS core emits events.
#![allow(dead_code)]

use glory_hole::events::{QueryEvent, Reason, Source};
use glory_hole::testing::Rng;

pub const CLIENTS: [&str; 8] = [
    "192.168.1.10",
    "192.168.1.11",
    "192.168.1.12",
    "192.168.1.20",
    "192.168.1.23",
    "192.168.1.42",
    "10.0.0.7",
    "fd00::5",
];

/// Names besides the numbered `dN.example` ones.
pub const NAMED: [&str; 5] = [
    "tv.samsung.com",
    "api.samsung.com",
    "tracker.example",
    "ads.tracker.example",
    "cdn.example.net",
];

/// The upstream list the events' upstream index 0 refers to.
pub const UPSTREAM: &str = "9.9.9.9:53";

/// The list id blocked events name (their rule: kind 1, list 7).
pub const BLOCK_LIST: u32 = 7;

/// Stores `events(seed, n, from_ms, to_ms)` in `config`'s query log, as
/// the log a box finds when it starts.
pub fn store(config: &glory_hole::config::Config, seed: u64, n: usize, from_ms: i64, to_ms: i64) {
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let log = glory_hole::querylog::QueryLog::open(config, rx).unwrap();
    for e in events(seed, n, from_ms, to_ms) {
        tx.send(e).unwrap();
    }
    log.flush();
}

/// `n` events evenly spread over `[from_ms, to_ms)`, oldest first.
pub fn events(seed: u64, n: usize, from_ms: i64, to_ms: i64) -> impl Iterator<Item = QueryEvent> {
    let mut rng = Rng(seed);
    let span = (to_ms - from_ms).max(1);
    (0..n).map(move |i| {
        let name = if rng.unit() < 0.2 {
            rng.pick(&NAMED).to_string()
        } else {
            format!("d{}.example", rng.next_u64() % 150)
        };
        let source = rng.pick(&[
            Source::Cache,
            Source::Cache,
            Source::Upstream,
            Source::Upstream,
            Source::Blocked,
            Source::Local,
            Source::Failed,
            Source::Stale,
        ]);
        QueryEvent {
            time_ms: from_ms + (i as i64 * span) / n as i64,
            client: rng.pick(&CLIENTS).parse().unwrap(),
            qname: heapless::String::try_from(name.as_str()).unwrap(),
            qtype: rng.pick(&[1u16, 1, 28, 65, 16]),
            rcode: if source == Source::Failed { 2 } else { 0 },
            source,
            upstream: if source == Source::Upstream {
                0
            } else {
                u8::MAX
            },
            latency_us: (rng.next_u64() % 50_000) as u32,
            reason: if source == Source::Blocked {
                Reason {
                    kind: 1,
                    id: BLOCK_LIST,
                    cname_depth: 0,
                }
            } else {
                Reason::default()
            },
        }
    })
}

/// The record type names the read side shows, for the codes `events` uses.
pub fn type_name(code: u16) -> &'static str {
    match code {
        1 => "A",
        16 => "TXT",
        28 => "AAAA",
        65 => "HTTPS",
        _ => panic!("no name for type {code} in the test"),
    }
}
