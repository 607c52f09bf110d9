//! The query log from the shell: `glory-hole sql "SELECT …"` (the
//! `queries` table, docs/querylog.md) and `glory-hole log export`. Both
//! open the database read-only, so they are safe while the server runs.
//!
//! Not for: the server's own reading (`QueryLog`), or the formats
//! themselves (`export.rs`).

use super::export::{self, ExportFormat};
use super::words::{Labels, parse_sql_time, qtype_code, source_of};
use super::{LogQuery, vtab};
use crate::config::Config;
use rusqlite::types::ValueRef;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

pub const SQL_USAGE: &str = "\
usage: glory-hole sql [--db PATH | --config FILE] [--format table|csv|json] \"SELECT …\"
  Runs one read-only SQL statement on the query log, with the table
  `queries` (time, time_ms, client, domain, type, rcode, status, upstream,
  latency_us, rule). The database defaults to the config's data_dir
  (the embedded default without --config). Examples: docs/querylog.md.
";

pub const EXPORT_USAGE: &str = "\
usage: glory-hole log export [--db PATH | --config FILE] [--format csv|jsonl]
         [--from TIME] [--to TIME] [--domain TEXT] [--client ADDR]
         [--status STATUS] [--qtype TYPE]
  Writes every stored query the filters select, oldest first, to stdout.
  TIME: Unix milliseconds or UTC text (2026-12-06, 2026-12-06 10:00).
  The filters are the log page's: domain contains TEXT, client is ADDR.
";

/// `--name value` pairs and the other words, in order.
struct Args {
    pairs: Vec<(String, String)>,
    words: Vec<String>,
}

impl Args {
    fn parse(args: &[&str], names: &[&str]) -> Result<Args, String> {
        let mut out = Args {
            pairs: Vec::new(),
            words: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                if !names.contains(&name) {
                    return Err(format!("unknown option --{name}"));
                }
                let v = it.next().ok_or(format!("--{name} needs a value"))?;
                out.pairs.push((name.to_string(), v.to_string()));
            } else {
                out.words.push(a.to_string());
            }
        }
        Ok(out)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The database and the upstream names: `--db`, or the config's.
    fn database(&self) -> Result<(PathBuf, Labels), String> {
        let cfg = match self.get("config") {
            Some(f) => Config::load(&PathBuf::from(f)).map_err(|e| e.to_string())?,
            None => Config::default(),
        };
        // Rows name their upstream by its place in the server's list: only
        // a config the user names says which list that was.
        let upstreams = match self.get("config") {
            Some(_) => cfg.dns.upstreams.iter().map(|u| u.to_string()).collect(),
            None => Vec::new(),
        };
        let path = self
            .get("db")
            .map(PathBuf::from)
            .unwrap_or_else(|| cfg.querylog_path());
        if !path.exists() {
            return Err(format!(
                "query log {}: no such file (give --db PATH or --config FILE)",
                path.display()
            ));
        }
        Ok((path, Labels::plain(upstreams)))
    }
}

fn finish(what: &str, usage: &str, r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.starts_with("usage") => {
            eprint!("{usage}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("glory-hole {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `glory-hole sql …`
pub fn sql(args: &[&str]) -> ExitCode {
    finish("sql", SQL_USAGE, run_sql(args))
}

/// `glory-hole log export …`
pub fn log_export(args: &[&str]) -> ExitCode {
    finish("log export", EXPORT_USAGE, run_export(args))
}

#[derive(Clone, Copy, PartialEq)]
enum SqlFormat {
    Table,
    Csv,
    Json,
}

fn run_sql(args: &[&str]) -> Result<(), String> {
    let a = Args::parse(args, &["db", "config", "format"])?;
    let [statement] = a.words.as_slice() else {
        return Err("usage".into());
    };
    let format = match a.get("format").unwrap_or("table") {
        "table" => SqlFormat::Table,
        "csv" => SqlFormat::Csv,
        "json" => SqlFormat::Json,
        f => return Err(format!("--format '{f}': use table, csv or json")),
    };
    let (path, labels) = a.database()?;
    let conn = vtab::open(&path, labels).map_err(|e| format!("{e:#}"))?;
    let bad = |e: rusqlite::Error| format!("{e} (in: {statement})");
    let mut st = conn.prepare(statement).map_err(bad)?;
    if !st.readonly() {
        return Err(format!(
            "only reading statements run here (the query log is opened read-only): {statement}"
        ));
    }
    let names: Vec<String> = st.column_names().map(|s| s.to_string()).collect();
    let mut rows = st.query([]).map_err(bad)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| format!("writing the result: {e}");
    let mut table: Vec<Vec<String>> = Vec::new();
    if format == SqlFormat::Csv {
        out.write_all(&csv_line(names.iter().cloned())?)
            .map_err(io)?;
    }
    if format == SqlFormat::Json {
        out.write_all(b"[").map_err(io)?;
    }
    let mut n = 0usize;
    while let Some(r) = rows.next().map_err(bad)? {
        let values: Vec<ValueRef<'_>> = (0..names.len())
            .map(|i| r.get_ref(i))
            .collect::<Result<_, _>>()
            .map_err(bad)?;
        match format {
            SqlFormat::Table => table.push(values.iter().map(|v| text(*v)).collect()),
            SqlFormat::Csv => out
                .write_all(&csv_line(values.iter().map(|v| text(*v)))?)
                .map_err(io)?,
            SqlFormat::Json => {
                let obj: serde_json::Map<String, serde_json::Value> = names
                    .iter()
                    .cloned()
                    .zip(values.iter().map(|v| json(*v)))
                    .collect();
                let sep = if n == 0 { "\n" } else { ",\n" };
                out.write_all(sep.as_bytes()).map_err(io)?;
                serde_json::to_writer(&mut out, &obj).map_err(|e| e.to_string())?;
            }
        }
        n += 1;
    }
    match format {
        SqlFormat::Table => write_table(&mut out, &names, &table).map_err(io)?,
        SqlFormat::Csv => {}
        SqlFormat::Json => out.write_all(b"\n]\n").map_err(io)?,
    }
    out.flush().map_err(io)
}

/// One CSV record, quoted as RFC 4180 says.
fn csv_line(cells: impl Iterator<Item = String>) -> Result<Vec<u8>, String> {
    let mut w = csv::WriterBuilder::new()
        .buffer_capacity(256)
        .from_writer(Vec::new());
    w.write_record(cells).map_err(|e| e.to_string())?;
    w.into_inner().map_err(|e| e.to_string())
}

fn text(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

fn json(v: ValueRef<'_>) -> serde_json::Value {
    match v {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => f.into(),
        _ => text(v).into(),
    }
}

/// Columns padded to their widest value, numbers to the right.
fn write_table(out: &mut dyn Write, names: &[String], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for r in rows {
        for (w, v) in widths.iter_mut().zip(r) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[String]| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let numeric = !c.is_empty() && c.parse::<f64>().is_ok();
            if numeric {
                s.push_str(&format!("{c:>w$}"));
            } else {
                s.push_str(&format!("{c:<w$}"));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, names)?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, &rule)?;
    for r in rows {
        line(out, r)?;
    }
    Ok(())
}

/// A time given on the command line: Unix ms or UTC text.
fn time_arg(name: &str, v: &str) -> Result<i64, String> {
    v.parse::<i64>()
        .ok()
        .or_else(|| parse_sql_time(v))
        .ok_or(format!(
            "--{name} '{v}': give Unix milliseconds or a UTC time such as 2026-12-06 10:00"
        ))
}

fn run_export(args: &[&str]) -> Result<(), String> {
    let a = Args::parse(
        args,
        &[
            "db", "config", "format", "from", "to", "domain", "client", "status", "qtype",
        ],
    )?;
    if !a.words.is_empty() {
        return Err("usage".into());
    }
    let format: ExportFormat = a.get("format").unwrap_or("csv").parse()?;
    let q = LogQuery {
        from_ms: a.get("from").map(|v| time_arg("from", v)).transpose()?,
        to_ms: a.get("to").map(|v| time_arg("to", v)).transpose()?,
        domain: a.get("domain").map(str::to_string),
        client: a.get("client").map(str::to_string),
        status: a
            .get("status")
            .map(|s| {
                source_of(s).ok_or(format!(
                    "--status '{s}': use one of cache, upstream, local, blocked, stale, refused, failed"
                ))
            })
            .transpose()?,
        qtype: a
            .get("qtype")
            .map(|t| {
                qtype_code(&t.to_ascii_uppercase())
                    .ok_or(format!("--qtype '{t}': a type such as A, AAAA, HTTPS or TYPE65"))
            })
            .transpose()?,
        ..LogQuery::default()
    };
    let (path, labels) = a.database()?;
    let conn = super::schema::open_reader(&path).map_err(|e| format!("{e:#}"))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    export::write(conn, &q, format, &labels, &mut out).map_err(|e| format!("{e:#}"))?;
    Ok(())
}
