//! Exporting the log: every row a log search selects (the log page's own
//! filters, [`LogQuery`]), oldest first, as CSV or JSON lines, written as
//! the blocks are read, so an export of a year holds the RAM of one block.
//! The web's `/api/v1/querylog/export` and `glory-hole log export` both
//! write through [`write`].
//!
//! Not for: reading blocks (`scan.rs`), or the words of a row (`words.rs`).

use super::LogQuery;
use super::key_of;
use super::scan::{Filter, Scan};
use super::words::{Labels, Namer, RowWords};
use rusqlite::{Connection, OptionalExtension};
use std::borrow::Borrow;
use std::io::Write;

/// The file formats an export comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A header line, then one line per query (RFC 4180 quoting).
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<ExportFormat, String> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" => Ok(ExportFormat::Jsonl),
            _ => Err(format!("format: '{s}': use csv or jsonl")),
        }
    }
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Jsonl => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }
}

/// The columns of an export, as the `queries` SQL table names them, and
/// the device name (`names`; the SQL table has addresses only).
pub const COLUMNS: [&str; 11] = [
    "time",
    "time_ms",
    "client",
    "domain",
    "type",
    "rcode",
    "status",
    "upstream",
    "latency_us",
    "rule",
    "client_name",
];

const CLIENT_ID_SQL: &str = "SELECT id FROM main.clients WHERE addr = ?1";
const DOMAINS_CONTAINING_SQL: &str =
    "SELECT id FROM main.domains WHERE instr(name, ?1) > 0 ORDER BY id";

/// The walk's filter for a log search; `None`: no row can match (an
/// unknown client, no name containing the text).
pub(super) fn filter_of(c: &Connection, q: &LogQuery) -> rusqlite::Result<Option<Filter>> {
    let mut f = Filter {
        lo: q.from_ms.map_or(i64::MIN, key_of),
        hi: q.to_ms.map_or(i64::MAX, key_of),
        status: q.status.map(|s| s as u8),
        qtype: q.qtype,
        ..Filter::default()
    };
    if let Some(cur) = q.cursor {
        f.hi = f.hi.min(cur);
    }
    if let Some(addr) = q.client.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        match c
            .prepare_cached(CLIENT_ID_SQL)?
            .query_row([addr], |r| r.get(0))
            .optional()?
        {
            Some(id) => f.client = Some(id),
            None => return Ok(None),
        }
    }
    if let Some(needle) = q.domain.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let mut st = c.prepare_cached(DOMAINS_CONTAINING_SQL)?;
        let ids: Vec<i64> = st
            .query_map([needle.to_ascii_lowercase()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(None);
        }
        f.domains = Some(ids);
    }
    Ok(Some(f))
}

/// Writes the rows `q` selects to `out`, oldest first; returns how many.
/// Stops at the first write error (the reader went away).
pub fn write(
    conn: impl Borrow<Connection>,
    q: &LogQuery,
    format: ExportFormat,
    labels: &Labels,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut scan = match filter_of(conn.borrow(), q)? {
        Some(f) => Some(Scan::new(conn, f, false)?),
        None => None,
    };
    let mut namer = Namer::default();
    let mut next = || -> anyhow::Result<Option<RowWords>> {
        let Some(scan) = scan.as_mut() else {
            return Ok(None);
        };
        match scan.next_row()? {
            Some(r) => Ok(Some(namer.words(scan.connection(), &r, labels)?)),
            None => Ok(None),
        }
    };
    let mut n = 0u64;
    match format {
        ExportFormat::Csv => {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .buffer_capacity(64 << 10)
                .from_writer(out);
            w.write_record(COLUMNS)?;
            while let Some(row) = next()? {
                w.serialize(&row)?;
                n += 1;
            }
            w.flush()?;
        }
        ExportFormat::Jsonl => {
            let mut out = std::io::BufWriter::with_capacity(64 << 10, out);
            while let Some(row) = next()? {
                serde_json::to_writer(&mut out, &row)?;
                out.write_all(b"\n")?;
                n += 1;
            }
            out.flush()?;
        }
    }
    Ok(n)
}
