//! The five questions the Go server this project succeeds answered with
//! five composite indexes (domain+time, client+time, blocked+time,
//! cached+time, domain+response time), asked of the query log and of a
//! plain row-per-query table holding the same generated rows with those
//! five indexes, in its own SQLite file beside the log's. Each answer is
//! checked against the plain table's, each of the log's statements
//! against the index it must use, and the medians are printed side by
//! side.

use super::{Bounds, Timing, target, time_ms, traffic::Traffic};
use glory_hole::events::Source;
use glory_hole::querylog::{LogQuery, QueryLog, query_plans};
use rusqlite::{Connection, params};
use std::path::Path;
use std::time::Instant;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

const PLAIN_SCHEMA: &str = "
    CREATE TABLE queries (
        id          INTEGER PRIMARY KEY,
        ts          INTEGER NOT NULL,
        client      TEXT NOT NULL,
        domain      TEXT NOT NULL,
        qtype       INTEGER NOT NULL,
        rcode       INTEGER NOT NULL,
        status      INTEGER NOT NULL,
        blocked     INTEGER NOT NULL,
        cached      INTEGER NOT NULL,
        upstream    INTEGER,
        response_us INTEGER NOT NULL
    );";
const PLAIN_INDEXES: &str = "
    CREATE INDEX idx_domain_time ON queries (domain, ts);
    CREATE INDEX idx_client_time ON queries (client, ts);
    CREATE INDEX idx_blocked_time ON queries (blocked, ts);
    CREATE INDEX idx_cached_time ON queries (cached, ts);
    CREATE INDEX idx_domain_response ON queries (domain, response_us);";

const PLAIN_DOMAIN_SQL: &str = "SELECT ts, domain, client FROM queries
    WHERE domain = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts DESC LIMIT 100";
const PLAIN_CLIENT_SQL: &str = "SELECT ts, domain, client FROM queries
    WHERE client = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts DESC LIMIT 100";
const PLAIN_BLOCKED_SQL: &str = "SELECT ts, domain, client FROM queries
    WHERE blocked = 1 AND ts >= ?1 AND ts < ?2 ORDER BY ts DESC LIMIT 100";
const PLAIN_CACHED_SQL: &str = "SELECT ts / 3600000, count(*) FROM queries
    WHERE cached = ?1 AND ts >= ?2 AND ts < ?3 GROUP BY 1";
const PLAIN_SLOWEST_SQL: &str = "SELECT domain, max(response_us) AS m FROM queries
    WHERE ts >= ?1 AND ts < ?2 GROUP BY domain ORDER BY m DESC LIMIT 20";
const PLAIN_COUNT_CLIENT_SQL: &str =
    "SELECT count(*) FROM queries WHERE client = ?1 AND ts >= ?2 AND ts < ?3";
const PLAIN_COUNT_DOMAIN_SQL: &str =
    "SELECT count(*) FROM queries WHERE domain = ?1 AND ts >= ?2 AND ts < ?3";
const PLAIN_COUNT_BLOCKED_SQL: &str =
    "SELECT count(*) FROM queries WHERE blocked = 1 AND ts >= ?1 AND ts < ?2";
const PLAIN_DOMAIN_MAX_SQL: &str =
    "SELECT max(response_us) FROM queries WHERE domain = ?1 AND ts >= ?2 AND ts < ?3";

/// Writes the plain table from the same events the log stored, then its
/// five indexes; returns the file's size.
fn build_plain(path: &Path, traffic: Traffic) -> anyhow::Result<u64> {
    let _ = std::fs::remove_file(path);
    let c = Connection::open(path)?;
    c.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;",
    )?;
    c.execute_batch(PLAIN_SCHEMA)?;
    let tx = c.unchecked_transaction()?;
    {
        let mut st = tx.prepare(
            "INSERT INTO queries (ts, client, domain, qtype, rcode, status, blocked, cached, upstream, response_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for e in traffic {
            st.execute(params![
                e.time_ms,
                e.client.to_string(),
                e.qname.as_str(),
                e.qtype,
                e.rcode,
                e.source as u8,
                e.source == Source::Blocked,
                matches!(e.source, Source::Cache | Source::Stale),
                (e.upstream != u8::MAX).then_some(e.upstream),
                e.latency_us,
            ])?;
        }
    }
    tx.commit()?;
    c.execute_batch(PLAIN_INDEXES)?;
    drop(c);
    Ok(std::fs::metadata(path)?.len())
}

fn plan(c: &Connection, sql: &str) -> anyhow::Result<Vec<String>> {
    let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let args: Vec<i64> = vec![1; st.parameter_count()];
    let rows = st.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

type PageRows = Vec<(i64, String, String)>;

fn plain_rows(c: &Connection, sql: &str, p: impl rusqlite::Params) -> anyhow::Result<PageRows> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st.query_map(p, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn count(c: &Connection, sql: &str, p: impl rusqlite::Params) -> anyhow::Result<u64> {
    Ok(c.prepare_cached(sql)?
        .query_row(p, |r| r.get::<_, i64>(0))? as u64)
}

fn log_rows(log: &QueryLog, q: &LogQuery) -> anyhow::Result<(PageRows, bool)> {
    let page = log.search(q)?;
    let rows = page
        .rows
        .into_iter()
        .map(|r| (r.time_ms, r.domain, r.client))
        .collect();
    Ok((rows, page.next_cursor.is_some()))
}

/// Per hour of `[from, to)`: (hour, queries, cached).
fn plain_cached_share(c: &Connection, from: i64, to: i64) -> anyhow::Result<Vec<(i64, u64, u64)>> {
    let mut by_hour = std::collections::BTreeMap::<i64, (u64, u64)>::new();
    for cached in [0, 1] {
        let mut st = c.prepare_cached(PLAIN_CACHED_SQL)?;
        let mut rows = st.query(params![cached, from, to])?;
        while let Some(r) = rows.next()? {
            let (h, n): (i64, i64) = (r.get(0)?, r.get(1)?);
            let e = by_hour.entry(h).or_default();
            e.0 += n as u64;
            if cached == 1 {
                e.1 += n as u64;
            }
        }
    }
    Ok(by_hour
        .into_iter()
        .map(|(h, (n, c))| (h * HOUR, n, c))
        .collect())
}

/// The first name among `candidates` that no other name of the universe
/// contains (so a substring search finds exactly it) and that has between
/// `min` and `max` rows in `[from, to)`.
fn pick_domain<'a>(
    plain: &Connection,
    names: &[(String, bool)],
    candidates: impl Iterator<Item = &'a String>,
    (min, max): (u64, u64),
    (from, to): (i64, i64),
) -> anyhow::Result<String> {
    for name in candidates {
        let n = count(plain, PLAIN_COUNT_DOMAIN_SQL, params![name, from, to])?;
        if (min..=max).contains(&n)
            && names
                .iter()
                .filter(|(o, _)| o.contains(name.as_str()))
                .count()
                == 1
        {
            return Ok(name.clone());
        }
    }
    anyhow::bail!("no name with {min} to {max} rows found")
}

/// Prints a question's line and checks the log's answer; returns the
/// log's median.
fn row(
    bounds: &mut Bounds,
    label: &str,
    ours: Timing,
    theirs: Timing,
    same: bool,
    what: String,
) -> f64 {
    println!(
        "  {label:44} {:>9.2} ms {:>11.2} ms {:>9.2}×   {what}",
        ours.0,
        theirs.0,
        theirs.0 / ours.0.max(1e-3),
    );
    bounds.check(
        same,
        format!("{label}: the same answer as the plain table ({what})"),
    );
    ours.0
}

/// Asks the five questions of the log and of a plain table built from
/// `traffic` (the rows the log holds) in `dir`, whose rows end before `end`.
pub fn run(
    log: &QueryLog,
    dir: &Path,
    traffic: Traffic,
    end: i64,
    bounds: &mut Bounds,
) -> anyhow::Result<()> {
    let names = traffic.names().to_vec();
    let rows = traffic.clone().count();
    let plain_path = dir.join("plain.db");
    let t = Instant::now();
    let plain_bytes = build_plain(&plain_path, traffic)?;
    println!(
        "plain row-per-query table with the seed's five indexes (same rows): built in {:.1} s, \
         {plain_bytes} bytes = {:.1} bytes/row",
        t.elapsed().as_secs_f64(),
        plain_bytes as f64 / rows as f64
    );
    let plain =
        Connection::open_with_flags(&plain_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    plain.execute_batch("PRAGMA cache_size = -2048;")?;

    // Whole hours, so roll-ups and rows cover the same span.
    let to = (end.div_euclid(HOUR) + 1) * HOUR;
    let (d30, d7, d1) = (to - 30 * DAY, to - 7 * DAY, to - DAY);
    let frequent = pick_domain(
        &plain,
        &names,
        names.iter().take(20).map(|n| &n.0),
        (100, u64::MAX),
        (d30, to),
    )?;
    let rare = pick_domain(
        &plain,
        &names,
        names.iter().skip(names.len() / 2).step_by(97).map(|n| &n.0),
        (2, 20),
        (d30, to),
    )?;
    let client = "192.168.1.40";

    // Each question: the log's answer and the plain table's, compared.
    let runs = 21;
    let plain_runs = 5;
    println!(
        "the seed's five questions (median of {runs} on the log, of {plain_runs} on the plain table; \
         pages of 100 rows, newest first):"
    );
    println!(
        "  {:44} {:>12} {:>14} {:>10}",
        "question", "log", "plain table", "ratio"
    );
    let mut slowest = 0f64;
    for (label, domain) in [
        ("one domain, frequent, 30 d", &frequent),
        ("one domain, rare, 30 d", &rare),
    ] {
        let q = LogQuery {
            domain: Some(domain.clone()),
            from_ms: Some(d30),
            to_ms: Some(to),
            limit: 100,
            ..LogQuery::default()
        };
        let (ours, more) = log_rows(log, &q)?;
        let theirs = plain_rows(&plain, PLAIN_DOMAIN_SQL, params![domain, d30, to])?;
        let all = count(&plain, PLAIN_COUNT_DOMAIN_SQL, params![domain, d30, to])?;
        let ms = row(
            bounds,
            label,
            time_ms(runs, || log.search(&q).unwrap()),
            time_ms(plain_runs, || {
                plain_rows(&plain, PLAIN_DOMAIN_SQL, params![domain, d30, to]).unwrap()
            }),
            ours == theirs && more == (all > 100),
            format!("'{domain}': {} rows of {all}, more: {more}", ours.len()),
        );
        if label.contains("rare") {
            bounds.time_at_most(
                "rare domain over 30 days, first page, median",
                ms,
                target::RARE_DOMAIN_MS,
                "ms",
            );
        } else {
            slowest = slowest.max(ms);
        }
    }
    {
        let q = LogQuery {
            client: Some(client.into()),
            from_ms: Some(d1),
            to_ms: Some(to),
            limit: 100,
            ..LogQuery::default()
        };
        let (ours, _) = log_rows(log, &q)?;
        let theirs = plain_rows(&plain, PLAIN_CLIENT_SQL, params![client, d1, to])?;
        let total = log.client_activity(client, d1, to)?.total;
        let all = count(&plain, PLAIN_COUNT_CLIENT_SQL, params![client, d1, to])?;
        slowest = slowest.max(row(
            bounds,
            "one client, 24 h",
            time_ms(runs, || log.search(&q).unwrap()),
            time_ms(plain_runs, || {
                plain_rows(&plain, PLAIN_CLIENT_SQL, params![client, d1, to]).unwrap()
            }),
            ours == theirs && total == all,
            format!(
                "{client}: {} rows; counted {total}, plain {all}",
                ours.len()
            ),
        ));
    }
    {
        let q = LogQuery {
            status: Some(Source::Blocked),
            from_ms: Some(d1),
            to_ms: Some(to),
            limit: 100,
            ..LogQuery::default()
        };
        let (ours, _) = log_rows(log, &q)?;
        let theirs = plain_rows(&plain, PLAIN_BLOCKED_SQL, params![d1, to])?;
        let total = log.summary(d1, to)?.blocked;
        let all = count(&plain, PLAIN_COUNT_BLOCKED_SQL, params![d1, to])?;
        slowest = slowest.max(row(
            bounds,
            "blocked queries, 24 h",
            time_ms(runs, || log.search(&q).unwrap()),
            time_ms(plain_runs, || {
                plain_rows(&plain, PLAIN_BLOCKED_SQL, params![d1, to]).unwrap()
            }),
            ours == theirs && total == all,
            format!("{} rows; counted {total}, plain {all}", ours.len()),
        ));
    }
    {
        let ours: Vec<(i64, u64, u64)> = log
            .time_series(d7, to, 168)?
            .into_iter()
            .filter(|b| b.total > 0)
            .map(|b| (b.start_ms, b.total, b.cached))
            .collect();
        let theirs = plain_cached_share(&plain, d7, to)?;
        let cached: u64 = ours.iter().map(|b| b.2).sum();
        let total: u64 = ours.iter().map(|b| b.1).sum();
        slowest = slowest.max(row(
            bounds,
            "cached share per hour, 7 d",
            time_ms(runs, || log.time_series(d7, to, 168).unwrap()),
            time_ms(plain_runs, || plain_cached_share(&plain, d7, to).unwrap()),
            ours == theirs,
            format!("{} hours, {cached} of {total} cached", ours.len()),
        ));
    }
    {
        let ours = log.slowest_domains(d1, to, 20)?;
        let mut st = plain.prepare_cached(PLAIN_SLOWEST_SQL)?;
        let theirs: Vec<(String, u32)> = st
            .query_map(params![d1, to], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        drop(st);
        // Ties (failed answers all take the timeout) may list other
        // names: the latencies must agree, and each name's slowest answer.
        let same_max = ours.iter().map(|d| d.1).eq(theirs.iter().map(|d| d.1));
        let mut each = true;
        for (name, max) in &ours {
            let m = count(&plain, PLAIN_DOMAIN_MAX_SQL, params![name, d1, to])?;
            each &= m == u64::from(*max);
        }
        slowest = slowest.max(row(
            bounds,
            "slowest 20 domains, 24 h",
            time_ms(runs, || log.slowest_domains(d1, to, 20).unwrap()),
            time_ms(plain_runs, || {
                let mut st = plain.prepare_cached(PLAIN_SLOWEST_SQL).unwrap();
                st.query_map(params![d1, to], |r| r.get::<_, i64>(1))
                    .unwrap()
                    .count()
            }),
            same_max && each && ours.len() == 20,
            format!(
                "{} domains, slowest {} ms, 20th {} ms",
                ours.len(),
                ours.first().map_or(0, |d| d.1 / 1000),
                ours.last().map_or(0, |d| d.1 / 1000)
            ),
        ));
    }
    bounds.time_at_most(
        "slowest of the five questions on the log, median",
        slowest,
        target::QUESTION_MS,
        "ms",
    );
    super::top_lists::run(log, &plain, to, bounds)?;

    // Each question's statements on the log use their index; the plain
    // table's plans are shown for comparison.
    let db = Connection::open_with_flags(
        dir.join("querylog.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let statements = query_plans();
    for (name, index) in [
        (
            "domain index: hours of a domain",
            "SEARCH domain_days USING PRIMARY KEY (day=? AND domain=?)",
        ),
        (
            "log blocks by time",
            "SEARCH query_blocks USING INTEGER PRIMARY KEY (rowid<?)",
        ),
        (
            "log blocks by client",
            "SEARCH s USING PRIMARY KEY (client=? AND block<?)",
        ),
        (
            "log blocks by status",
            "SEARCH s USING PRIMARY KEY (status=? AND block<?)",
        ),
        (
            "series hour_counts",
            "SEARCH hour_counts USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
        ),
        (
            "slowest domains",
            "SEARCH hour_slow_domains USING PRIMARY KEY (hour>? AND hour<?)",
        ),
    ] {
        let sql = statements
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_str());
        let lines = match sql {
            Some(sql) => plan(&db, sql)?,
            None => Vec::new(),
        };
        bounds.check(
            lines.iter().any(|l| l == index) && !lines.iter().any(|l| l.starts_with("SCAN ")),
            format!("'{name}' uses {index}: {lines:?}"),
        );
    }
    println!("plain table plans:");
    for (label, sql) in [
        ("domain", PLAIN_DOMAIN_SQL),
        ("client", PLAIN_CLIENT_SQL),
        ("blocked", PLAIN_BLOCKED_SQL),
        ("cached share", PLAIN_CACHED_SQL),
        ("slowest", PLAIN_SLOWEST_SQL),
    ] {
        println!("  {label:14} {}", plan(&plain, sql)?.join("; "));
    }
    drop(plain);
    std::fs::remove_file(&plain_path)?;
    Ok(())
}
