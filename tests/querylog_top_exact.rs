//! The dashboard's top domains (all and blocked) over its short ranges
//! (1h, 24h) equal a count of the stored queries, on traffic where each
//! clock hour holds more than 100 names and two names asked 3 times an
//! hour add up to more over a day than the names above them in any one
//! hour (so a list summed from each hour's top 100 would miss them).

mod support;

use glory_hole::clock::now_ms;
use glory_hole::events::{QueryEvent, Source};
use std::collections::HashMap;
use support::querylog::event;
use support::web::{Client, app_config};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// Slot `h` of the traffic: the 50 minutes from `now - (h + 1) hours + 5
/// minutes`, so no query is within 5 minutes of a range's edge. Each slot
/// asks 150 names of its own (4 to 8 times, every other one blocked),
/// eight shared names Zipf-like (40/(j+1) times, s4..s7 blocked) and two
/// steady names 3 times (steady1 blocked).
fn slot(now: i64, h: i64) -> Vec<QueryEvent> {
    let mut asked: Vec<(String, u64, bool)> = Vec::new();
    for k in 0..150u64 {
        asked.push((format!("h{h}-n{k}.example"), 4 + k % 5, k % 2 == 0));
    }
    for j in 0..8u64 {
        asked.push((format!("s{j}.example"), 40 / (j + 1), j >= 4));
    }
    asked.push(("steady0.example".into(), 3, false));
    asked.push(("steady1.example".into(), 3, true));
    // Interleaved: round r asks every name with more than r queries.
    let mut names = Vec::new();
    for r in 0..40 {
        for (name, n, blocked) in &asked {
            if *n > r {
                names.push((name.clone(), *blocked));
            }
        }
    }
    let start = now - (h + 1) * HOUR + 5 * MINUTE;
    let step = 50 * MINUTE / names.len() as i64;
    names
        .into_iter()
        .enumerate()
        .map(|(i, (name, blocked))| {
            let client = format!("10.2.0.{}", i % 5 + 1);
            let source = if blocked {
                Source::Blocked
            } else {
                Source::Upstream
            };
            event(start + i as i64 * step, &client, &name, source)
        })
        .collect()
}

/// Checks `got` is a top-10 of `exact`: its counts are the 10 largest
/// (in order) and each name's count is its true count (ties in any order).
fn assert_top(what: &str, got: &serde_json::Value, exact: &HashMap<String, u64>) {
    let got: Vec<(String, u64)> = got
        .as_array()
        .unwrap_or_else(|| panic!("{what}: a list"))
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut counts: Vec<u64> = exact.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    counts.truncate(10);
    let got_counts: Vec<u64> = got.iter().map(|g| g.1).collect();
    assert_eq!(got_counts, counts, "{what}: counts");
    for (name, n) in &got {
        assert_eq!(exact.get(name), Some(n), "{what}: {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_top_domains_over_1h_and_24h_are_a_count_of_the_stored_queries() {
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), Some("127.0.0.1:9"));
    let now = now_ms();
    // 26 slots (the newest in the last hour, two beyond 24 h), plus a
    // slot three days back; oldest first, as the DNS core sends them.
    let mut events: Vec<QueryEvent> = slot(now - 2 * 24 * HOUR, 24);
    for h in (0..26).rev() {
        events.extend(slot(now, h));
    }
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<QueryEvent>(events.len());
        let log = glory_hole::querylog::QueryLog::open(&config, rx).unwrap();
        for e in &events {
            tx.send(e.clone()).unwrap();
        }
        log.flush();
        assert_eq!(log.status().rows, events.len() as u64, "every query stored");
    }
    // Each closed clock hour holds more names than the 100 it keeps.
    let c = rusqlite::Connection::open(dir.path().join("querylog.db")).unwrap();
    let busy_hours: i64 = c
        .query_row(
            "SELECT count(*) FROM (SELECT hour FROM hour_domains WHERE blocked = 0
             GROUP BY hour HAVING count(*) = 100)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        busy_hours >= 20,
        "hours trimmed to their top 100: {busy_hours}"
    );

    let app = glory_hole::app::App::start(config, dir.path().join("config.toml"))
        .await
        .unwrap();
    let addrs = glory_hole::web::serve(app.clone(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let mut web = Client::new(&format!("http://{}", addrs[0]));
    assert_eq!(web.setup(support::web::PASSWORD).await.status, 200);

    for (range, span) in [("1h", HOUR), ("24h", 24 * HOUR)] {
        let s = web.get(&format!("/api/v1/stats?range={range}")).await;
        assert_eq!(s.status, 200, "{}", s.body);
        let s = s.json();
        let (mut all, mut blocked) = (HashMap::new(), HashMap::new());
        for e in events.iter().filter(|e| e.time_ms >= now - span) {
            *all.entry(e.qname.to_string()).or_default() += 1;
            if e.source == Source::Blocked {
                *blocked.entry(e.qname.to_string()).or_default() += 1;
            }
        }
        assert_top(&format!("{range} top domains"), &s["top_domains"], &all);
        assert_top(&format!("{range} top blocked"), &s["top_blocked"], &blocked);
        if range == "24h" {
            let names: Vec<&str> = s["top_domains"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap())
                .collect();
            assert!(
                names.contains(&"steady0.example") && names.contains(&"steady1.example"),
                "names below every hour's top 100 add up into the day's top 10: {names:?}"
            );
        }
    }
}
