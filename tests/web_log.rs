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

/// A row as the export test compares it: time, client, domain, type,
/// status, upstream, rule.
type ExportRow = (i64, String, String, String, String, String, String);

fn s(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// The rows of every page of a log search.
async fn searched(c: &mut Client, filters: &str) -> Vec<ExportRow> {
    let mut rows = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let q = match cursor {
            Some(k) => format!("/api/v1/querylog?limit=1000&{filters}&cursor={k}"),
            None => format!("/api/v1/querylog?limit=1000&{filters}"),
        };
        let page = c.get(&q).await.json();
        for r in page["rows"].as_array().unwrap() {
            rows.push((
                r["time_ms"].as_i64().unwrap(),
                s(&r["client"]),
                s(&r["domain"]),
                s(&r["qtype"]),
                s(&r["status"]),
                s(&r["upstream"]),
                s(&r["reason"]),
            ));
        }
        match page["next_cursor"].as_i64() {
            Some(k) => cursor = Some(k),
            None => return rows,
        }
    }
}

/// The export over real HTTP from the running server: every row the log
/// page's filters select (not one page), as CSV and JSON lines, the same
/// rows the paged search shows; a read-scope token may export, a stranger
/// may not; the page's Export links carry its filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_every_row_the_filters_select() {
    use glory_hole::clock::now_ms;
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), Some("127.0.0.1:9"));
    let now = now_ms();
    support::traffic::store(&config, 3, 6_000, now - 7_200_000, now - 60_000);
    let app = glory_hole::app::App::start(config, dir.path().join("config.toml"))
        .await
        .unwrap();
    let (base, mut c) = serve_set_up(&app).await;

    for (filters, format) in [
        ("client=192.168.1.23&status=upstream", "csv"),
        ("domain=SAMSUNG", "jsonl"),
        ("status=blocked&qtype=aaaa", "csv"),
        ("", "jsonl"),
    ] {
        let mut want = searched(&mut c, filters).await;
        let r = c
            .get(&format!(
                "/api/v1/querylog/export?format={format}&{filters}"
            ))
            .await;
        assert_eq!(r.status, 200, "{filters}: {}", r.body);
        assert!(
            r.header("content-disposition").starts_with("attachment;"),
            "{}",
            r.header("content-disposition")
        );
        let mut got: Vec<ExportRow> = if format == "csv" {
            assert!(r.header("content-type").starts_with("text/csv"));
            let mut rd = csv::Reader::from_reader(r.body.as_bytes());
            assert_eq!(&rd.headers().unwrap()[0], "time");
            rd.records()
                .map(|x| {
                    let x = x.unwrap();
                    (
                        x[1].parse().unwrap(),
                        x[2].into(),
                        x[3].into(),
                        x[4].into(),
                        x[6].into(),
                        x[7].into(),
                        x[9].into(),
                    )
                })
                .collect()
        } else {
            assert_eq!(r.header("content-type"), "application/x-ndjson");
            r.body
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    (
                        v["time_ms"].as_i64().unwrap(),
                        s(&v["client"]),
                        s(&v["domain"]),
                        s(&v["type"]),
                        s(&v["status"]),
                        s(&v["upstream"]),
                        s(&v["rule"]),
                    )
                })
                .collect()
        };
        assert!(
            got.windows(2).all(|w| w[0].0 <= w[1].0),
            "{filters}: oldest first"
        );
        assert!(!want.is_empty(), "{filters} selects rows");
        got.sort();
        want.sort();
        assert_eq!(got.len(), want.len(), "{filters}");
        assert!(
            got == want,
            "{filters}: the exported rows are the searched ones"
        );
    }
    for (q, field) in [("format=xlsx", "format"), ("status=exploded", "status")] {
        let r = c.get(&format!("/api/v1/querylog/export?{q}")).await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some(field)),
            "{q}"
        );
    }
    // A stranger may not; a read-only token may.
    let r = Client::new(&base).get("/api/v1/querylog/export").await;
    assert_eq!(r.status, 401, "{}", r.body);
    let tok = c
        .send("POST", "/api/v1/tokens", json!({"name": "sheet"}))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut script = Client::new(&base);
    script.bearer = Some(tok);
    let r = script.get("/api/v1/querylog/export?format=csv").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.lines().count(), 6_001, "a header and every row");
    // The page's Export links carry its filters.
    let html = c
        .get("/querylog?domain=samsung&status=blocked&limit=7")
        .await
        .body;
    assert!(
        html.contains(
            "href=\"/api/v1/querylog/export?domain=samsung&amp;status=blocked&amp;format=csv\""
        ),
        "{html}"
    );
    assert!(html.contains("id=\"export-jsonl\""));
}
