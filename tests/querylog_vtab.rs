//! The `queries` SQL table against the log's own reading of the same
//! blocks: random filters on time, client, domain, type and status give
//! exactly the rows the log page's search returns, filtered in the test;
//! with and without the domain index (`domain_days`); and `glory-hole sql` on a
//! database the running writer holds open.

mod support;

use glory_hole::clock::now_ms;
use glory_hole::events::Source;
use glory_hole::querylog::{Labels, LogRow, QueryLog, key_of, ms_of, open_sql};
use glory_hole::testing::Rng;
use rusqlite::Connection;
use rusqlite::types::Value;
use support::querylog::{config, every_row};
use support::traffic::{self, BLOCK_LIST, CLIENTS, NAMED, UPSTREAM};

const HOUR: i64 = 3_600_000;

/// A row as the test compares it.
type Tuple = (
    i64,
    String,
    String,
    String,
    String,
    u32,
    Option<String>,
    Option<String>,
);

fn expected(r: &LogRow) -> Tuple {
    (
        r.time_ms,
        r.client.clone(),
        r.domain.clone(),
        traffic::type_name(r.qtype).to_string(),
        r.status.as_str().to_string(),
        r.latency_us,
        r.upstream.map(|u| {
            assert_eq!(u, 0, "the traffic names upstream 0 only");
            UPSTREAM.to_string()
        }),
        r.reason.map(|x| {
            assert_eq!((x.kind, x.id), (1, BLOCK_LIST));
            format!("list #{BLOCK_LIST}")
        }),
    )
}

/// `n` queries over the last three days, stored by the real writer; the
/// log and every stored row as its search pages return them.
fn stored_traffic(dir: &std::path::Path, n: usize) -> (std::sync::Arc<QueryLog>, Vec<LogRow>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let log = QueryLog::open(&config(dir), rx).unwrap();
    let to = now_ms() - HOUR;
    for e in traffic::events(0x5EED, n, to - 72 * HOUR, to) {
        tx.send(e).unwrap();
    }
    log.flush();
    let rows = every_row(&log);
    assert_eq!(rows.len(), n, "the log page's search returns every row");
    (log, rows)
}

/// `ms` as SQLite itself prints it, with or without milliseconds.
fn text_at(ms: i64, with_ms: bool) -> String {
    let c = Connection::open_in_memory().unwrap();
    let (s, m) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let sql = if with_ms {
        format!("SELECT strftime('%Y-%m-%d %H:%M:%S', {s}, 'unixepoch') || printf('.%03d', {m})")
    } else {
        format!("SELECT strftime('%Y-%m-%d %H:%M:%S', {s}, 'unixepoch')")
    };
    c.query_row(&sql, [], |r| r.get(0)).unwrap()
}

/// A term of a question as a test on a stored row.
type RowTest = Box<dyn Fn(&LogRow) -> bool>;

/// One random question: SQL terms and parameters, and the same question
/// as a test on a row.
struct Question {
    terms: Vec<String>,
    params: Vec<Value>,
    tests: Vec<RowTest>,
    order: &'static str,
}

fn random_question(rng: &mut Rng, rows: &[LogRow]) -> Question {
    let mut q = Question {
        terms: vec![],
        params: vec![],
        tests: vec![],
        order: rng.pick(&["", "ORDER BY time", "ORDER BY time_ms DESC"]),
    };
    let first = rows.iter().map(|r| r.time_ms).min().unwrap();
    let last = rows.iter().map(|r| r.time_ms).max().unwrap();
    let add = |q: &mut Question, term: String, p: Value, t: RowTest| {
        q.terms.push(term);
        q.params.push(p);
        q.tests.push(t);
    };
    for _ in 0..(rng.next_u64() % 3) {
        // A bound inside the data, at a stored row's exact time or not.
        let b = if rng.unit() < 0.3 {
            rows[(rng.next_u64() % rows.len() as u64) as usize].time_ms
        } else {
            first - HOUR + (rng.next_u64() % (last - first + 2 * HOUR) as u64) as i64
        };
        let op = rng.pick(&[">", ">=", "<", "<="]);
        let cmp = move |t: i64, b: i64| match op {
            ">" => t > b,
            ">=" => t >= b,
            "<" => t < b,
            _ => t <= b,
        };
        match rng.pick(&["time_ms", "time", "time-seconds"]) {
            "time_ms" => add(
                &mut q,
                format!("time_ms {op} ?"),
                Value::Integer(b),
                Box::new(move |r| cmp(r.time_ms, b)),
            ),
            "time" => add(
                &mut q,
                format!("time {op} ?"),
                Value::Text(text_at(b, true)),
                Box::new(move |r| cmp(r.time_ms, b)),
            ),
            _ => {
                // Shorter text than the column's: every row of that second
                // is greater (`>`, `>=`) and none is smaller.
                let s = b.div_euclid(1000) * 1000;
                let after = op.starts_with('>');
                add(
                    &mut q,
                    format!("time {op} ?"),
                    Value::Text(text_at(b, false)),
                    Box::new(move |r| (r.time_ms >= s) == after),
                )
            }
        }
    }
    if rng.unit() < 0.4 {
        let c = rng
            .pick(&[CLIENTS[0], CLIENTS[4], CLIENTS[7], "10.9.9.9"])
            .to_string();
        let want = c.clone();
        add(
            &mut q,
            "client = ?".into(),
            Value::Text(c),
            Box::new(move |r| r.client == want),
        );
    }
    match rng.next_u64() % 5 {
        0 => {
            let d = rng
                .pick(&[NAMED[0], NAMED[2], "d7.example", "nowhere.example"])
                .to_string();
            let want = d.clone();
            add(
                &mut q,
                "domain = ?".into(),
                Value::Text(d),
                Box::new(move |r| r.domain == want),
            );
        }
        1 => {
            let frag = rng.pick(&["samsung", "TRACKER", "d1", "zzz"]);
            let want = frag.to_ascii_lowercase();
            add(
                &mut q,
                "domain LIKE ?".into(),
                Value::Text(format!("%{frag}%")),
                Box::new(move |r| r.domain.contains(&want)),
            );
        }
        2 => {
            let prefix = rng.pick(&["d1", "tv.", "ads."]);
            add(
                &mut q,
                "domain GLOB ?".into(),
                Value::Text(format!("{prefix}*")),
                Box::new(move |r| r.domain.starts_with(prefix)),
            );
        }
        _ => {}
    }
    if rng.unit() < 0.4 {
        let s = rng.pick(&[
            "blocked", "cache", "upstream", "failed", "local", "exploded",
        ]);
        add(
            &mut q,
            "status = ?".into(),
            Value::Text(s.into()),
            Box::new(move |r| r.status.as_str() == s),
        );
    }
    if rng.unit() < 0.2 {
        add(
            &mut q,
            "type = ?".into(),
            Value::Text("AAAA".into()),
            Box::new(|r| r.qtype == 28),
        );
    }
    q
}

fn ask(c: &Connection, q: &Question) -> Vec<Tuple> {
    let mut sql =
        "SELECT time_ms, client, domain, type, status, latency_us, upstream, rule FROM queries"
            .to_string();
    if !q.terms.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&q.terms.join(" AND "));
    }
    sql.push(' ');
    sql.push_str(q.order);
    let mut st = c.prepare(&sql).unwrap();
    st.query_map(rusqlite::params_from_iter(&q.params), |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn check_random_questions(c: &Connection, rows: &[LogRow], seed: u64, rounds: usize) {
    let mut rng = Rng(seed);
    let mut nonempty = 0;
    for round in 0..rounds {
        let q = random_question(&mut rng, rows);
        let mut got = ask(c, &q);
        let mut want: Vec<Tuple> = rows
            .iter()
            .filter(|r| q.tests.iter().all(|t| t(r)))
            .map(expected)
            .collect();
        let times: Vec<i64> = got.iter().map(|t| t.0).collect();
        match q.order {
            "ORDER BY time" => assert!(times.is_sorted(), "round {round}: ascending"),
            "ORDER BY time_ms DESC" => {
                assert!(times.iter().rev().is_sorted(), "round {round}: descending")
            }
            _ => {}
        }
        got.sort();
        want.sort();
        nonempty += usize::from(!want.is_empty());
        assert!(
            got == want,
            "round {round}: WHERE {} {:?}: {} rows, want {}",
            q.terms.join(" AND "),
            q.params,
            got.len(),
            want.len()
        );
    }
    assert!(
        nonempty > rounds / 2,
        "most questions have answers: {nonempty}"
    );
}

/// Fills the domain index as the writer of schema version 5 keeps it
/// (`domain_days (day, domain, hours)`: bit h of `hours` for a row in hour
/// h of that UTC day; `meta.domain_index_from`: the key from which every
/// block is covered), from the rows the log's search returned. Blocks
/// before the first one at or after `from_ms` are left out, as blocks an
/// older build wrote; returns the time the index covers from.
fn add_domain_index(path: &std::path::Path, rows: &[LogRow], from_ms: i64) -> i64 {
    let mut c = Connection::open(path).unwrap();
    let c = c.transaction().unwrap();
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS domain_days (day INTEGER NOT NULL, domain INTEGER NOT NULL,
             hours INTEGER NOT NULL, PRIMARY KEY (day, domain)) WITHOUT ROWID",
    )
    .unwrap();
    let covered_from: i64 = c
        .query_row(
            "SELECT min(id) FROM query_blocks WHERE id >= ?1",
            [key_of(from_ms)],
            |r| r.get(0),
        )
        .unwrap();
    c.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('domain_index_from', ?1)",
        [covered_from],
    )
    .unwrap();
    let covered_from_ms = ms_of(covered_from);
    let mut upsert = c
        .prepare(
            "INSERT INTO domain_days (day, domain, hours) SELECT ?2, id, ?3 FROM domains WHERE name = ?1
             ON CONFLICT (day, domain) DO UPDATE SET hours = hours | excluded.hours",
        )
        .unwrap();
    for r in rows.iter().filter(|r| r.time_ms >= covered_from_ms) {
        let hour = r.time_ms.div_euclid(HOUR);
        upsert
            .execute(rusqlite::params![
                r.domain,
                hour.div_euclid(24),
                1i64 << hour.rem_euclid(24)
            ])
            .unwrap();
    }
    drop(upsert);
    c.commit().unwrap();
    covered_from_ms
}

#[test]
fn random_filters_on_the_queries_table_equal_filtering_the_decoded_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (log, rows) = stored_traffic(dir.path(), 20_000);
    let path = dir.path().join("querylog.db");
    let labels = || Labels::plain(vec![UPSTREAM.to_string()]);
    {
        let c = open_sql(&path, labels()).unwrap();
        check_random_questions(&c, &rows, 1, 150);
        // The terms reach the table: a client and a time range choose the
        // blocks it reads.
        let plan: String = c
            .query_row(
                "EXPLAIN QUERY PLAN SELECT * FROM queries WHERE client = '10.0.0.7' AND time > datetime('now', '-1 day')",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("2:eq") && plan.contains("0:gt"), "{plan}");
        // The last 6 of 72 hours decode about a twelfth of the blocks: a
        // fraction of a whole-table count's CPU time (the better of three).
        let cpu = |sql: &str| -> (f64, i64) {
            let mut best = f64::MAX;
            let mut n = 0;
            for _ in 0..3 {
                let t = glory_hole::clock::thread_cpu_ms();
                n = c.query_row(sql, [], |r| r.get(0)).unwrap();
                best = best.min(glory_hole::clock::thread_cpu_ms() - t);
            }
            (best, n)
        };
        let (all_ms, all) = cpu("SELECT count(*) FROM queries");
        let (recent_ms, recent) =
            cpu("SELECT count(*) FROM queries WHERE time > datetime('now', '-7 hours')");
        println!(
            "querylog_vtab: count of all {all} rows {all_ms:.1} ms CPU, of the last 6 h ({recent} rows) {recent_ms:.1} ms"
        );
        assert_eq!(all, rows.len() as i64);
        assert!(recent > 0 && recent < all / 8, "{recent} of {all}");
        assert!(
            recent_ms < all_ms * 0.35,
            "a time range reads only its blocks: {recent_ms:.2} ms vs {all_ms:.2} ms CPU"
        );
    }
    drop(log);
    // The same questions through the domain index, which covers the last
    // two of the three days (the first, as an older build's blocks, is
    // walked).
    let newest = rows.iter().map(|r| r.time_ms).max().unwrap();
    let covered_from_ms = add_domain_index(&path, &rows, newest - 48 * HOUR);
    let c = open_sql(&path, labels()).unwrap();
    check_random_questions(&c, &rows, 2, 100);
    // Each statement a walk runs finds its blocks through a key.
    for (name, sql) in glory_hole::querylog::scan_plans() {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps: Vec<String> = st
            .query_map(
                rusqlite::params_from_iter(vec![rusqlite::types::Null; st.parameter_count()]),
                |r| r.get(3),
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            steps.iter().all(|s| !s.starts_with("SCAN")),
            "{name}: {steps:?}"
        );
    }
    // The walk for one name reads the hours the index lists (and the
    // blocks it does not cover), nothing else: empty a name's list and
    // only its rows of the first day are found.
    let name = NAMED[2];
    let count = |c: &Connection| -> i64 {
        c.query_row(
            "SELECT count(*) FROM queries WHERE domain = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = count(&c);
    assert_eq!(
        before,
        rows.iter().filter(|r| r.domain == name).count() as i64
    );
    let uncovered = rows
        .iter()
        .filter(|r| r.domain == name && r.time_ms < covered_from_ms)
        .count() as i64;
    drop(c);
    let w = Connection::open(&path).unwrap();
    w.execute(
        "DELETE FROM domain_days WHERE domain = (SELECT id FROM domains WHERE name = ?1)",
        [name],
    )
    .unwrap();
    // The same for a client and `block_clients`: its rows in the last day
    // come from the blocks the index lists.
    let client = CLIENTS[6];
    let recent =
        "SELECT count(*) FROM queries WHERE client = ?1 AND time > datetime('now', '-1 day')";
    let cutoff = now_ms() - 24 * HOUR;
    let want = rows
        .iter()
        .filter(|r| r.client == client && r.time_ms > cutoff)
        .count() as i64;
    let clients_count =
        |c: &Connection| -> i64 { c.query_row(recent, [client], |r| r.get(0)).unwrap() };
    assert_eq!(clients_count(&open_sql(&path, labels()).unwrap()), want);
    w.execute(
        "DELETE FROM block_clients WHERE client = (SELECT id FROM clients WHERE addr = ?1)",
        [client],
    )
    .unwrap();
    let c = open_sql(&path, labels()).unwrap();
    assert!(before > uncovered && uncovered > 0 && want > 0);
    assert_eq!(count(&c), uncovered, "the domain index chose the blocks");
    assert_eq!(clients_count(&c), 0, "the client index chose the blocks");
}

/// The SQL blocks of docs/querylog.md's "Ten questions".
fn doc_questions() -> Vec<String> {
    let doc = include_str!("../docs/querylog.md");
    doc.split("```sql\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().trim().to_string())
        .collect()
}

#[test]
fn the_ten_questions_in_the_docs_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, rows) = stored_traffic(dir.path(), 20_000);
    let c = open_sql(
        &dir.path().join("querylog.db"),
        Labels::plain(vec![UPSTREAM.into()]),
    )
    .unwrap();
    let questions = doc_questions();
    assert_eq!(questions.len(), 10, "{questions:#?}");
    let mut answers = Vec::new();
    for q in &questions {
        let mut st = c.prepare(q).unwrap_or_else(|e| panic!("{e}: {q}"));
        let n = st.column_count();
        let rows: Vec<Vec<Value>> = st
            .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!rows.is_empty(), "no answer: {q}");
        answers.push(rows);
    }
    // 1: the device's names and counts, as the rows have them.
    let tv = CLIENTS[4];
    let mut counts = std::collections::HashMap::<&str, i64>::new();
    for r in rows.iter().filter(|r| r.client == tv) {
        *counts.entry(r.domain.as_str()).or_default() += 1;
    }
    for a in &answers[0] {
        let (Value::Text(d), Value::Integer(n)) = (&a[0], &a[1]) else {
            panic!("{a:?}")
        };
        assert_eq!(counts[d.as_str()], *n, "{d}");
    }
    assert_eq!(answers[0].len(), counts.len().min(20));
    // 2: the TV's Samsung names.
    let want = rows
        .iter()
        .filter(|r| r.client == tv && r.domain.contains("samsung"))
        .count();
    assert_eq!(answers[1].len(), want);
    // 4: who asked for the tracker.
    let total: i64 = answers[3]
        .iter()
        .map(|a| match a[1] {
            Value::Integer(n) => n,
            _ => panic!("{a:?}"),
        })
        .sum();
    assert_eq!(
        total,
        rows.iter().filter(|r| r.domain == NAMED[2]).count() as i64
    );
    // 7: one list blocked everything.
    assert_eq!(answers[6].len(), 1);
    assert_eq!(answers[6][0][0], Value::Text(format!("list #{BLOCK_LIST}")));
    // 8: one upstream answered.
    assert_eq!(answers[7][0][0], Value::Text(UPSTREAM.into()));
    // 9: newest failure first.
    let newest_failure = rows
        .iter()
        .filter(|r| r.status == Source::Failed)
        .map(|r| r.time_ms)
        .max()
        .unwrap();
    assert_eq!(answers[8][0][0], Value::Text(text_at(newest_failure, true)));
}

/// Runs the built `glory-hole` with `args`.
fn glory_hole(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_glory-hole"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_sql_command_reads_a_database_the_running_writer_holds_open() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let log = QueryLog::open(&config(dir.path()), rx).unwrap();
    let db = dir.path().join("querylog.db");
    let db = db.to_str().unwrap();
    let now = now_ms();
    let mut events = traffic::events(7, 40_000, now - 2 * HOUR, now);
    for e in events.by_ref().take(20_000) {
        tx.send(e).unwrap();
    }
    log.flush();
    // The writer goes on storing (a flush each second) while the command
    // reads.
    let feeder = std::thread::spawn(move || {
        for e in events {
            tx.send(e).unwrap();
        }
        tx
    });
    let count = |args: &[&str]| -> i64 {
        let out = glory_hole(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["n"].as_i64().unwrap()
    };
    let n = count(&[
        "sql",
        "--db",
        db,
        "--format",
        "json",
        "SELECT count(*) AS n FROM queries",
    ]);
    assert!(n >= 20_000, "{n}");
    let tx = feeder.join().unwrap();
    log.flush();
    let all = every_row(&log);
    assert_eq!(all.len(), 40_000);
    let n = count(&[
        "sql",
        "--db",
        db,
        "--format",
        "json",
        "SELECT count(*) AS n FROM queries",
    ]);
    assert_eq!(n, 40_000, "every flushed row, with the writer still open");
    // CSV: a header, then the client's rows.
    let out = glory_hole(&[
        "sql",
        "--db",
        db,
        "--format",
        "csv",
        "SELECT domain, count(*) AS n FROM queries WHERE client = '192.168.1.23' GROUP BY 1 ORDER BY 2 DESC, 1",
    ]);
    assert!(out.status.success());
    let mut csv = csv::Reader::from_reader(out.stdout.as_slice());
    assert_eq!(csv.headers().unwrap(), vec!["domain", "n"]);
    let got: i64 = csv
        .records()
        .map(|r| r.unwrap()[1].parse::<i64>().unwrap())
        .sum();
    assert_eq!(
        got,
        all.iter().filter(|r| r.client == CLIENTS[4]).count() as i64
    );
    // The table format lines up a header, a rule and the rows.
    let out = glory_hole(&[
        "sql",
        "--db",
        db,
        "SELECT status, count(*) AS n FROM queries GROUP BY 1 ORDER BY 1",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("status") && lines[1].starts_with("-------"),
        "{text}"
    );
    // Six outcomes in the traffic (no `refused`).
    assert_eq!(lines.len(), 2 + 6, "{text}");
    // With --config: the database of its data_dir, upstreams by address.
    let cfg = config(dir.path());
    let cfg_file = dir.path().join("config.toml");
    std::fs::write(&cfg_file, cfg.to_toml()).unwrap();
    let out = glory_hole(&[
        "sql",
        "--config",
        cfg_file.to_str().unwrap(),
        "--format",
        "json",
        "SELECT DISTINCT upstream FROM queries WHERE status = 'upstream'",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["upstream"], cfg.dns.upstreams[0].to_string(), "{v}");
    // Bad SQL, a write, a missing file: a clear error and a failing exit.
    for (args, says) in [
        (
            vec!["sql", "--db", db, "SELEC domain FROM queries"],
            "syntax error",
        ),
        (
            vec!["sql", "--db", db, "SELECT colour FROM queries"],
            "no such column: colour",
        ),
        (
            vec!["sql", "--db", db, "DELETE FROM query_blocks"],
            "only reading statements",
        ),
        (
            vec!["sql", "--db", "/nonexistent/q.db", "SELECT 1"],
            "no such file",
        ),
        (
            vec!["sql", "--db", db, "--format", "xml", "SELECT 1"],
            "--format 'xml'",
        ),
    ] {
        let out = glory_hole(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let rows_left: i64 = Connection::open(dir.path().join("querylog.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM query_blocks", [], |r| r.get(0))
        .unwrap();
    assert!(rows_left > 0, "the refused DELETE deleted nothing");
    drop(tx);
}
