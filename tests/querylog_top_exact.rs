//! The dashboard's top domains (all and blocked) over every range it
//! offers (1h, 24h, 7d, 30d) equal a count of the stored queries, on
//! traffic where each clock hour holds more than 100 names (each day more
//! than 300) and steady names below every hour's (day's) cut-off add up
//! to more over the range than the names above them in any one hour or
//! day (so a list summed from each hour's top 100 and each day's top 300
//! would miss them). A database written before the counts existed shows
//! the days without counts as estimates, and says so.

mod support;

use glory_hole::clock::now_ms;
use glory_hole::events::{QueryEvent, Source};
use std::collections::HashMap;
use support::querylog::event;
use support::web::{Client, app_config};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Slot `h` of the traffic: the 20 minutes from `start` (see
/// `slot_start`: within one clock hour, and no query within 5 minutes of
/// a range's edge). Each slot
/// asks 150 names of its own (4 to 8 times, every other one blocked),
/// eight shared names Zipf-like (40/(j+1) times, s4..s7 blocked) and two
/// steady names 3 times (steady1 blocked).
fn slot(start: i64, h: i64) -> Vec<QueryEvent> {
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
    let step = 20 * MINUTE / names.len() as i64;
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

/// Where the slot `h` hours back starts: in its own clock hour, in the
/// 20 minutes ([5, 25] or [35, 55] past the hour) at least 5 minutes from
/// the minute `now` is at, so every range ending now (whose edges are at
/// that minute) has every query of a slot or none, whatever the second the
/// API reads it. Slot 0 is the newest whole one before `now`: in the 1h
/// range.
fn slot_start(now: i64, h: i64) -> i64 {
    let hour_start = now - now.rem_euclid(HOUR);
    if now - hour_start >= 30 * MINUTE {
        hour_start - h * HOUR + 5 * MINUTE
    } else {
        hour_start - (h + 1) * HOUR + 35 * MINUTE
    }
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

/// Stores `events` (oldest first, as the DNS core sends them).
fn store(config: &glory_hole::config::Config, events: &[QueryEvent]) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<QueryEvent>(events.len());
    let log = glory_hole::querylog::QueryLog::open(config, rx).unwrap();
    for e in events {
        tx.send(e.clone()).unwrap();
    }
    log.flush();
    assert!(
        log.status().rows >= events.len() as u64,
        "every query stored"
    );
}

/// The dashboard API's stats of `range` (a new app over the data dir).
async fn stats(
    config: glory_hole::config::Config,
    dir: &std::path::Path,
    ranges: &[&str],
) -> Vec<serde_json::Value> {
    let app = glory_hole::app::App::start(config, dir.join("config.toml"))
        .await
        .unwrap();
    let addrs = glory_hole::web::serve(app.clone(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let mut web = Client::new(&format!("http://{}", addrs[0]));
    assert_eq!(web.setup(support::web::PASSWORD).await.status, 200);
    let mut out = Vec::new();
    for range in ranges {
        let s = web.get(&format!("/api/v1/stats?range={range}")).await;
        assert_eq!(s.status, 200, "{}", s.body);
        out.push(s.json());
    }
    out
}

/// Exact counts of the events at or after `from` (all, blocked).
fn counts_since(events: &[QueryEvent], from: i64) -> (HashMap<String, u64>, HashMap<String, u64>) {
    let (mut all, mut blocked) = (HashMap::new(), HashMap::new());
    for e in events.iter().filter(|e| e.time_ms >= from) {
        *all.entry(e.qname.to_string()).or_default() += 1;
        if e.source == Source::Blocked {
            *blocked.entry(e.qname.to_string()).or_default() += 1;
        }
    }
    (all, blocked)
}

fn names_of(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect()
}

/// UTC day `day` of the long-range traffic: 700 names of its own, asked 3
/// or 4 times each in a row (every other one blocked: more than 300 of
/// each kind, so every day list leaves names out with a cut-off of 3),
/// eight shared names 40/(j+1) times a day (s4..s7 blocked), and two
/// steady names once a day (steady1 blocked): below every day's cut-off,
/// above every own name over a week. Times up to `until`, none within 10
/// minutes of a range's edge (`edges`).
fn day_traffic(day: i64, until: i64, edges: &[i64]) -> Vec<QueryEvent> {
    let mut asked: Vec<(String, bool)> = Vec::new();
    for k in 0..700u64 {
        for _ in 0..3 + k % 2 {
            asked.push((format!("d{day}-n{k}.example"), k % 2 == 0));
        }
    }
    for j in 0..8u64 {
        for _ in 0..40 / (j + 1) {
            asked.push((format!("s{j}.example"), j >= 4));
        }
    }
    asked.push(("steady0.example".into(), false));
    asked.push(("steady1.example".into(), true));
    // Shared and steady names spread over the day, between the own ones.
    let n = asked.len();
    let spread = n - 2 - (0..8).map(|j| 40 / (j + 1)).sum::<usize>();
    let (own, shared) = asked.split_at(spread);
    let mut order: Vec<&(String, bool)> = own.iter().collect();
    for (i, x) in shared.iter().enumerate() {
        order.insert((i * 37 + 11) % order.len(), x);
    }
    let step = (DAY - 2 * MINUTE) / n as i64;
    order
        .into_iter()
        .enumerate()
        .map(|(i, (name, blocked))| (day * DAY + MINUTE + i as i64 * step, name, *blocked))
        .filter(|(t, _, _)| *t < until && edges.iter().all(|e| (t - e).abs() > 10 * MINUTE))
        .map(|(t, name, blocked)| {
            let source = if blocked {
                Source::Blocked
            } else {
                Source::Upstream
            };
            event(t, "10.3.0.1", name, source)
        })
        .collect()
}

fn long_traffic(now: i64, days: std::ops::Range<i64>) -> Vec<QueryEvent> {
    let edges = [now - 7 * DAY, now - 30 * DAY];
    let today = now.div_euclid(DAY);
    days.flat_map(|d| day_traffic(today - d, now - 10 * MINUTE, &edges))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_top_domains_over_7d_and_30d_are_a_count_of_the_stored_queries() {
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), Some("127.0.0.1:9"));
    let now = now_ms();
    // 32 UTC days, today's up to now: the oldest two beyond 30 days.
    let events = long_traffic(now, 0..32);
    store(&config, &events);
    // Every closed day's lists leave names out (a cut-off above the
    // steady names' one query), so summed lists would miss them.
    let c = rusqlite::Connection::open(dir.path().join("querylog.db")).unwrap();
    let cut_days: i64 = c
        .query_row(
            "SELECT count(*) FROM day_top_cutoffs WHERE cutoff >= 3",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        cut_days >= 2 * 30,
        "days with cut-offs, both kinds: {cut_days}"
    );

    let got = stats(config, dir.path(), &["7d", "30d"]).await;
    for ((range, span), s) in [("7d", 7 * DAY), ("30d", 30 * DAY)].into_iter().zip(&got) {
        let (all, blocked) = counts_since(&events, now - span);
        assert_top(&format!("{range} top domains"), &s["top_domains"], &all);
        assert_top(&format!("{range} top blocked"), &s["top_blocked"], &blocked);
        let (names, blocked_names) = (names_of(&s["top_domains"]), names_of(&s["top_blocked"]));
        assert!(
            names.contains(&"steady0.example") && blocked_names.contains(&"steady1.example"),
            "names below every day's cut-off add up into the range's top 10: {names:?} {blocked_names:?}"
        );
        for item in s["top_domains"].as_array().unwrap() {
            assert!(item.get("estimated").is_none(), "{range}: exact, {item}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_an_older_build_wrote_without_counts_are_estimates_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), Some("127.0.0.1:9"));
    let now = now_ms();
    // Days 31..12 back written, then the database taken back to what a
    // build before the counts leaves (version 5: no counts, no cut-offs).
    let old = long_traffic(now, 12..32);
    store(&config, &old);
    {
        let c = rusqlite::Connection::open(dir.path().join("querylog.db")).unwrap();
        c.execute_batch(
            "DROP TABLE hour_top_cutoffs; DROP TABLE day_top_cutoffs;
             ALTER TABLE domain_days DROP COLUMN n; ALTER TABLE domain_days DROP COLUMN blocked;
             DELETE FROM schema_migrations WHERE version = 6;
             DELETE FROM meta WHERE key = 'domain_counts_from';",
        )
        .unwrap();
    }
    // The newer build goes on with the last 12 days.
    let new = long_traffic(now, 0..12);
    store(&config, &new);
    let events: Vec<QueryEvent> = old.into_iter().chain(new).collect();

    let got = stats(config, dir.path(), &["7d", "30d"]).await;
    // Wholly after the upgrade: exact, not marked.
    let (all, blocked) = counts_since(&events, now - 7 * DAY);
    assert_top("7d top domains", &got[0]["top_domains"], &all);
    assert_top("7d top blocked", &got[0]["top_blocked"], &blocked);
    assert!(got[0]["top_domains"][0].get("estimated").is_none());
    // Reaching days without counts: every item says it is an estimate,
    // and a shared name's count holds at least its counted days.
    let list = got[1]["top_domains"].as_array().unwrap();
    assert_eq!(list.len(), 10, "{list:?}");
    assert!(
        list.iter()
            .all(|i| i["estimated"] == serde_json::json!(true)),
        "{list:?}"
    );
    let (all, _) = counts_since(&events, now - 30 * DAY);
    let s0 = list.iter().find(|i| i["name"] == "s0.example").unwrap();
    assert_eq!(
        s0["count"].as_u64(),
        all.get("s0.example").copied(),
        "a name in every day's list"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_top_domains_over_1h_and_24h_are_a_count_of_the_stored_queries() {
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), Some("127.0.0.1:9"));
    let now = now_ms();
    // 26 slots, one in each of 26 clock hours (the newest in the last
    // hour, two beyond 24 h), plus a slot three days back; oldest first,
    // as the DNS core sends them. Each slot lies within its clock hour: a
    // slot spread over two hours split its names' counts between them,
    // and whether the hours' cut-offs reached 4 (checked below) then
    // depended on the minute the test ran.
    let mut events: Vec<QueryEvent> = slot(slot_start(now, 24 + 48), 24);
    for h in (0..26).rev() {
        events.extend(slot(slot_start(now, h), h));
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
    // ... and say so with a cut-off the steady names' 3 queries are below.
    let cut_hours: i64 = c
        .query_row(
            "SELECT count(*) FROM hour_top_cutoffs WHERE blocked = 0 AND cutoff >= 4",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(cut_hours >= 20, "hours with a cut-off: {cut_hours}");

    let got = stats(config, dir.path(), &["1h", "24h"]).await;
    for ((range, span), s) in [("1h", HOUR), ("24h", 24 * HOUR)].into_iter().zip(&got) {
        let (all, blocked) = counts_since(&events, now - span);
        assert_top(&format!("{range} top domains"), &s["top_domains"], &all);
        assert_top(&format!("{range} top blocked"), &s["top_blocked"], &blocked);
        if range == "24h" {
            let names = names_of(&s["top_domains"]);
            assert!(
                names.contains(&"steady0.example") && names.contains(&"steady1.example"),
                "names below every hour's top 100 add up into the day's top 10: {names:?}"
            );
        }
    }
}
