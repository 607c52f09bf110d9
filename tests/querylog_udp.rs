//! Queries asked over a real UDP socket end up in the query log: the DNS
//! engine's event channel feeds the writer, as the app wires them.

mod support;

use arc_swap::ArcSwap;
use glory_hole::clock::now_ms;
use glory_hole::config::Config;
use glory_hole::dns::{Engine, server};
use glory_hole::events::{EventSink, Source};
use glory_hole::filter::Filter;
use glory_hole::querylog::{LogQuery, QueryLog};
use glory_hole::testing::client::{answers, ask};
use std::sync::Arc;
use support::querylog::eventually;

#[tokio::test]
async fn queries_over_udp_end_up_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"data_dir = {:?}
[dns]
listen = ["127.0.0.1:0"]
upstreams = ["127.0.0.1:9"]
[querylog]
flush_interval = "1s"
[web]
enabled = false
[[local.records]]
name = "nas.lan"
type = "A"
value = "192.168.1.10"
"#,
        dir.path().display().to_string()
    );
    let config = Config::from_toml(&text, "test config").unwrap_or_else(|e| panic!("{e}"));
    let (sink, rx) = EventSink::bounded(1024);
    let log = QueryLog::open(&config, rx).unwrap();
    log.attach_sink(sink.clone());
    let filter = Arc::new(ArcSwap::from_pointee(Filter::empty()));
    let engine = Arc::new(Engine::new(Arc::new(config.clone()), filter, sink).unwrap());
    let dns = server::start(engine, &config.dns).await.unwrap();
    let from = now_ms();

    let m = ask(dns.addrs[0], "nas.lan", 1).await;
    assert_eq!(answers(&m), ["192.168.1.10"]);
    ask(dns.addrs[0], "NAS.lan", 28).await;
    eventually("both queries in the live view", || {
        log.recent(10).len() == 2
    });
    log.flush();

    let rows = log.search(&LogQuery::default()).unwrap().rows;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.domain == "nas.lan" && r.client == "127.0.0.1"),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r.status == Source::Local), "{rows:?}");
    let mut types: Vec<u16> = rows.iter().map(|r| r.qtype).collect();
    types.sort();
    assert_eq!(types, [1, 28]);
    let s = log.summary(from - 60_000, now_ms() + 60_000).unwrap();
    assert_eq!(
        (s.total, s.local, s.unique_clients, s.unique_domains),
        (2, 2, 1, 1)
    );
    let st = log.status();
    assert_eq!((st.rows, st.dropped_events), (2, 0));
}
