//! The query log over real HTTP: searching, explaining, and paging by
//! cursor through the real query log without losing a row.

mod support;

use serde_json::json;
use support::web::*;

#[tokio::test]
async fn query_log_search_and_explain() {
    let (b, mut c) = ready(|_| {}).await;
    b.backend.record("ads.example", "192.168.1.20", "blocked");
    b.backend.record("news.example", "192.168.1.20", "upstream");
    b.backend.record("news.example", "192.168.1.21", "cache");
    let rows = c.get("/api/v1/querylog").await.json()["rows"].clone();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    assert_eq!(rows[0]["status"], "cache", "newest first");
    let r = c
        .get("/api/v1/querylog?domain=NEWS&client=&status=upstream")
        .await
        .json();
    assert_eq!(r["rows"].as_array().unwrap().len(), 1);
    let newest = rows[0]["time_ms"].as_i64().unwrap();
    let r = c
        .get(&format!("/api/v1/querylog?after_ms={}", newest - 1))
        .await
        .json();
    assert_eq!(r["rows"].as_array().unwrap().len(), 1);
    for (q, field) in [
        ("status=exploded", "status"),
        ("limit=0", "limit"),
        ("after_ms=yesterday", "after_ms"),
    ] {
        let r = c.get(&format!("/api/v1/querylog?{q}")).await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some(field)),
            "{q}: {}",
            r.body
        );
    }
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "deny", "entry": "ads.example"}),
    )
    .await;
    let e = c
        .get("/api/v1/explain?domain=ads.example&client=192.168.1.20")
        .await;
    assert_eq!(e.status, 200, "{}", e.body);
    assert_eq!(e.json()["decision"], "blocked");
    assert_eq!(
        c.get("/api/v1/explain?domain=a%20b").await.json()["field"],
        "domain"
    );
    assert_eq!(
        c.get("/api/v1/explain?domain=a.example&client=tv")
            .await
            .json()["field"],
        "client"
    );
    let s = c.get("/api/v1/stats?range=1h").await.json();
    assert_eq!(s["summary"]["total"], 3);
    assert_eq!(s["summary"]["blocked"], 1);
    assert_eq!(s["top_blocked"][0]["name"], "ads.example");
    assert_eq!(s["series"].as_array().unwrap().len(), 48);
    assert_eq!(c.get("/api/v1/stats?range=forever").await.status, 422);
}

/// The log page on the real query log: each page is one search, and
/// following `next_cursor` shows every row exactly once, also when many
/// rows share a millisecond and when rows not yet on flash (the RAM ring)
/// push flashed ones to the next page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_pages_follow_the_cursor_and_lose_no_row() {
    use glory_hole::clock::now_ms;
    use glory_hole::events::{QueryEvent, Reason, Source};
    use std::collections::HashSet;
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), Some("127.0.0.1:9"));
    // 60 rows on flash, five to a millisecond.
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<QueryEvent>(1024);
        let log = glory_hole::querylog::QueryLog::open(&config, rx).unwrap();
        let t0 = now_ms() - 600_000;
        for i in 0..60 {
            tx.send(QueryEvent {
                time_ms: t0 + i / 5,
                client: "192.168.1.10".parse().unwrap(),
                qname: heapless::String::try_from(format!("r{i}.example").as_str()).unwrap(),
                qtype: 1,
                rcode: 0,
                source: Source::Cache,
                upstream: u8::MAX,
                latency_us: 10,
                reason: Reason::default(),
            })
            .unwrap();
        }
        log.flush();
    }
    let app = glory_hole::app::App::start(config, dir.path().join("config.toml"))
        .await
        .unwrap();
    let dns = app.dns_addrs[0];
    // Three more only in the RAM ring (the log flushes once a minute);
    // local records answer without an upstream.
    app.apply({
        let mut c = (*app.config()).clone();
        c.local.records = (0..3)
            .map(|i| glory_hole::config::LocalRecord {
                name: format!("ring{i}.lan").parse().unwrap(),
                rtype: glory_hole::syntax::RecordType::A,
                value: glory_hole::syntax::Rdata::parse(
                    glory_hole::syntax::RecordType::A,
                    "192.168.1.2",
                )
                .unwrap(),
                ttl: 300,
            })
            .collect();
        c
    })
    .unwrap();
    for i in 0..3 {
        glory_hole::testing::client::ask(dns, &format!("ring{i}.lan"), 1).await;
    }
    let addrs = glory_hole::web::serve(app.clone(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let mut c = Client::new(&format!("http://{}", addrs[0]));
    assert_eq!(c.setup(PASSWORD).await.status, 200);

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<i64> = None;
    let mut pages = 0;
    loop {
        let q = match cursor {
            Some(k) => format!("/api/v1/querylog?limit=7&cursor={k}"),
            None => "/api/v1/querylog?limit=7".to_string(),
        };
        let page = c.get(&q).await.json();
        let rows = page["rows"].as_array().unwrap();
        assert!(rows.len() <= 7, "{page}");
        seen.extend(
            rows.iter()
                .map(|r| r["domain"].as_str().unwrap().to_string()),
        );
        pages += 1;
        assert!(pages < 40, "paging does not end: {seen:?}");
        match page["next_cursor"].as_i64() {
            Some(k) => cursor = Some(k),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a row shown twice: {seen:?}");
    assert_eq!(seen.len(), 63, "{seen:?}");
    assert!(seen[..3].iter().all(|d| d.starts_with("ring")), "{seen:?}");
    // The page links to the next one by cursor.
    let html = c.get("/querylog?domain=example&limit=7").await.body;
    let link = html
        .split("href=\"/querylog?")
        .nth(1)
        .and_then(|l| l.split('"').next())
        .expect("an 'Older queries' link");
    assert!(
        link.starts_with("domain=example&amp;limit=7&amp;cursor="),
        "{link}"
    );
    let older = c
        .get(&format!("/querylog?{}", link.replace("&amp;", "&")))
        .await
        .body;
    assert!(
        !older.contains("id=\"live\" checked"),
        "an older page stays put"
    );
}
