//! Every statement the dashboard and the log page run is served by an
//! index or a primary key: `EXPLAIN QUERY PLAN` never shows a table scan.
//! The domain index and the slow-answer roll-ups are checked by name.

mod support;

use glory_hole::clock::now_ms;
use glory_hole::events::Source;
use glory_hole::querylog::{QueryLog, query_plans};
use rusqlite::Connection;
use support::querylog::{config, event};

fn plan(c: &Connection, sql: &str) -> Vec<String> {
    let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let n = st.parameter_count();
    let args: Vec<rusqlite::types::Value> =
        (0..n).map(|_| rusqlite::types::Value::Integer(1)).collect();
    st.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn no_dashboard_or_log_page_statement_scans_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(10_000);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    let now = now_ms();
    for i in 0..5_000i64 {
        let source = [
            Source::Cache,
            Source::Upstream,
            Source::Blocked,
            Source::Failed,
        ][(i % 4) as usize];
        tx.send(event(
            now - i * 500,
            &format!("10.0.0.{}", i % 20),
            &format!("d{}.example", i % 300),
            source,
        ))
        .unwrap();
    }
    log.flush();
    let c = Connection::open(dir.path().join("querylog.db")).unwrap();
    // No ANALYZE: the running log never gathers statistics, so this is the
    // planner's choice in production too.
    let statements = query_plans();
    assert!(statements.len() > 25, "covers the log page walks too");
    for name in [
        "domain index: hours of a domain",
        "domain index: delete days before",
        "slowest domains",
        "upstream latency",
        "writer: slow domains of an hour",
    ] {
        assert!(
            statements.iter().any(|(n, _)| n == name),
            "{name} is listed"
        );
    }
    for (name, sql) in &statements {
        let lines = plan(&c, sql);
        for line in &lines {
            // A SCAN is allowed only over a subquery's own bounded result.
            let ok = !line.starts_with("SCAN ")
                || line == "SCAN t"
                || line == "SCAN page"
                || line.starts_with("SCAN (subquery");
            assert!(ok, "{name}: {line}\nfull plan: {lines:#?}\n{sql}");
        }
        assert!(
            lines.iter().any(|l| l.starts_with("SEARCH ")),
            "{name} looks rows up through an index: {lines:#?}"
        );
        // The log page walks blocks along the primary key or a side table
        // (a client's activity walks the client's, too).
        let expect = if name.contains("by client") {
            Some("SEARCH s USING PRIMARY KEY (client=? AND block<?)")
        } else if name.contains("by status") {
            Some("SEARCH s USING PRIMARY KEY (status=? AND block<?)")
        } else if name.contains("by time") {
            Some("SEARCH query_blocks USING INTEGER PRIMARY KEY (rowid<?)")
        } else if name == "domain index: hours of a domain" {
            // One look-up per name and day: never the whole index.
            Some("SEARCH domain_days USING PRIMARY KEY (day=? AND domain=?)")
        } else if name == "domain index: delete days before" {
            Some("SEARCH domain_days USING PRIMARY KEY (day<?)")
        } else if name == "slowest domains" {
            Some("SEARCH hour_slow_domains USING PRIMARY KEY (hour>? AND hour<?)")
        } else if name == "upstream latency" {
            Some("SEARCH hour_upstreams USING PRIMARY KEY (hour>? AND hour<?)")
        } else if name == "writer: slow domains of an hour" {
            Some("SEARCH hour_slow_domains USING PRIMARY KEY (hour=?)")
        } else {
            None
        };
        if let Some(index) = expect {
            assert!(
                lines.iter().any(|l| l.contains(index)),
                "{name} uses {index}: {lines:#?}"
            );
        }
    }
}
