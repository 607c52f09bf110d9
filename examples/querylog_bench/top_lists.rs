//! The dashboard's top domains and top blocked domains over its long
//! ranges (7 d, 30 d), timed on the log and checked against a count of
//! the plain table's rows (docs/querylog.md, "Which figures are
//! estimates"): the same 10 counts, and each listed name's count equal
//! to the plain table's count of it.
//!
//! Not for: the five questions (`questions.rs`).

use super::{Bounds, target, time_ms};
use glory_hole::querylog::QueryLog;
use rusqlite::{Connection, params};

const DAY: i64 = 86_400_000;

const PLAIN_TOP_SQL: &str = "SELECT count(*) AS n FROM queries
    WHERE ts >= ?1 AND ts < ?2 GROUP BY domain ORDER BY n DESC LIMIT 10";
const PLAIN_TOP_BLOCKED_SQL: &str = "SELECT count(*) AS n FROM queries
    WHERE blocked = 1 AND ts >= ?1 AND ts < ?2 GROUP BY domain ORDER BY n DESC LIMIT 10";
const PLAIN_NAME_SQL: &str =
    "SELECT count(*) FROM queries WHERE domain = ?1 AND ts >= ?2 AND ts < ?3";
const PLAIN_NAME_BLOCKED_SQL: &str =
    "SELECT count(*) FROM queries WHERE domain = ?1 AND blocked = 1 AND ts >= ?2 AND ts < ?3";

fn counts(c: &Connection, sql: &str, from: i64, to: i64) -> anyhow::Result<Vec<u64>> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st.query_map(params![from, to], |r| r.get::<_, i64>(0))?;
    Ok(rows
        .map(|r| r.map(|n| n as u64))
        .collect::<Result<_, _>>()?)
}

/// Times the log's top lists of the ranges ending at `to` and checks them.
pub fn run(log: &QueryLog, plain: &Connection, to: i64, bounds: &mut Bounds) -> anyhow::Result<()> {
    let runs = 21;
    println!("top domains, exact (median of {runs}; checked against the plain table's count):");
    for (label, days) in [("7 d", 7), ("30 d", 30)] {
        let from = to - days * DAY;
        for blocked in [false, true] {
            let what = if blocked {
                "top blocked"
            } else {
                "top domains"
            };
            let t = time_ms(runs, || log.top_domains(from, to, 10, blocked).unwrap());
            let ours = log.top_domains(from, to, 10, blocked)?;
            let sql = if blocked {
                PLAIN_TOP_BLOCKED_SQL
            } else {
                PLAIN_TOP_SQL
            };
            let want = counts(plain, sql, from, to)?;
            let got: Vec<u64> = ours.items.iter().map(|i| i.1).collect();
            let name_sql = if blocked {
                PLAIN_NAME_BLOCKED_SQL
            } else {
                PLAIN_NAME_SQL
            };
            let mut each = true;
            for (name, n) in &ours.items {
                let real: i64 = plain
                    .prepare_cached(name_sql)?
                    .query_row(params![name, from, to], |r| r.get(0))?;
                each &= real as u64 == *n;
            }
            println!("  {what}, {label}: {t}; counts {got:?}");
            bounds.check(
                got == want && each && !ours.estimated,
                format!("{what}, {label}: the plain table's counts ({want:?})"),
            );
            bounds.time_at_most(
                &format!("{what}, {label}, median"),
                t.0,
                target::QUESTION_MS,
                "ms",
            );
        }
    }
    Ok(())
}
