//! The `queries` SQL table: the stored blocks as one row per query, for
//! the owner's own questions (`glory-hole sql`, docs/querylog.md).
//!
//! A read-only virtual table (`temp.queries`, created per connection by
//! [`open`], so it takes the name before the old row table of schema
//! version 1, which is empty). Its `WHERE` terms on time, time_ms, client,
//! domain (`=`, `LIKE`, `GLOB`), type and status choose which blocks are
//! read ([`scan`](super::scan)): `client = …` reads only that client's
//! blocks, a time range only the blocks in it. SQLite checks every term
//! again on the rows it gets, so the narrowing only ever has to be wide
//! enough, never exact.
//!
//! Not for: the web pages' searches (`stats.rs`), or writing.

use super::scan::{Filter, Scan};
use super::words::{Labels, Namer, parse_sql_time, qtype_code, qtype_name, source_of, sql_time};
use super::{EPOCH_MS, RuleRef, key_of, ms_of};
use rusqlite::types::ValueRef;
use rusqlite::vtab::{
    Context, CreateVTab, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConnection,
    VTabCursor, VTabKind,
};
use rusqlite::{Connection, OpenFlags, ffi};
use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{CStr, c_int};
use std::path::Path;
use std::sync::Arc;

const MODULE: &CStr = c"glory_hole_queries";

/// The table's columns, in order; docs/querylog.md describes each.
const SCHEMA: &CStr = c"CREATE TABLE x(time TEXT, time_ms INTEGER, client TEXT, domain TEXT, \
    type TEXT, rcode INTEGER, status TEXT, upstream TEXT, latency_us INTEGER, rule TEXT)";
const TIME: c_int = 0;
const TIME_MS: c_int = 1;
const CLIENT: c_int = 2;
const DOMAIN: c_int = 3;
const TYPE: c_int = 4;
const RCODE: c_int = 5;
const STATUS: c_int = 6;
const UPSTREAM: c_int = 7;
const LATENCY: c_int = 8;
const RULE: c_int = 9;

/// Opens the query log at `path` read-only (safe beside the running
/// server's writer: WAL) with `queries` in place.
pub fn open(path: &Path, labels: Labels) -> anyhow::Result<Connection> {
    use anyhow::Context as _;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("query log {}: opening for reading", path.display()))?;
    register(&conn, labels)?;
    conn.execute_batch("PRAGMA cache_size = -8192; PRAGMA query_only = ON;")?;
    Ok(conn)
}

/// Creates `temp.queries` on `conn`.
pub fn register(conn: &Connection, labels: Labels) -> rusqlite::Result<()> {
    const M: Module<QueriesTab> = Module::read_only_module();
    conn.create_module(MODULE, &M, Some(Arc::new(labels)))?;
    conn.execute_batch("CREATE VIRTUAL TABLE temp.queries USING glory_hole_queries")
}

#[repr(C)]
struct QueriesTab {
    base: ffi::sqlite3_vtab,
    /// The connection the table lives on, for reading blocks and names
    /// (not owned: closing it is its owner's business).
    conn: Connection,
    labels: Arc<Labels>,
}

// SAFETY: QueriesTab is repr(C) with the sqlite3_vtab first.
unsafe impl<'vtab> VTab<'vtab> for QueriesTab {
    type Aux = Arc<Labels>;
    type Cursor = QueriesCursor<'vtab>;

    fn connect(
        db: &mut VTabConnection,
        aux: Option<&Arc<Labels>>,
        _module: &[u8],
        _database: &[u8],
        _table: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        // SAFETY: the handle outlives the table (SQLite disconnects its
        // tables before it closes), and `from_handle` never closes it.
        let conn = unsafe { Connection::from_handle(db.handle())? };
        let labels = aux
            .cloned()
            .unwrap_or_else(|| Arc::new(Labels::plain(Vec::new())));
        Ok((
            Cow::Borrowed(SCHEMA),
            QueriesTab {
                base: ffi::sqlite3_vtab::default(),
                conn,
                labels,
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let mut terms: Vec<String> = Vec::new();
        let mut cost = 1e7;
        let mut usable: Vec<(usize, c_int, &'static str)> = Vec::new();
        for (i, c) in info.constraints().enumerate() {
            if !c.is_usable() {
                continue;
            }
            let op = match c.operator() {
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ => "eq",
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_GT => "gt",
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_GE => "ge",
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LT => "lt",
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LE => "le",
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LIKE => "like",
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_GLOB => "glob",
                _ => continue,
            };
            let col = c.column();
            let wanted = matches!(
                (col, op),
                (TIME | TIME_MS, "eq" | "gt" | "ge" | "lt" | "le")
                    | (CLIENT | STATUS | TYPE, "eq")
                    | (DOMAIN, "eq" | "like" | "glob")
            );
            if wanted {
                usable.push((i, col, op));
            }
        }
        for (i, col, op) in usable {
            // An equality under another collation (NOCASE) may match rows
            // an exact look-up would miss.
            if op == "eq" && matches!(col, CLIENT | DOMAIN | STATUS | TYPE) {
                let binary = info
                    .collation(i)
                    .is_ok_and(|c| c.eq_ignore_ascii_case("BINARY"));
                if !binary {
                    continue;
                }
            }
            let mut usage = info.constraint_usage(i);
            usage.set_argv_index(terms.len() as c_int + 1);
            usage.set_omit(false);
            terms.push(format!("{col}:{op}"));
            cost *= match (col, op) {
                (CLIENT, _) => 0.05,
                (DOMAIN, "eq") => 0.01,
                (DOMAIN, _) => 0.2,
                (TIME | TIME_MS, "eq") => 0.001,
                (TIME | TIME_MS, _) => 0.3,
                _ => 0.5,
            };
        }
        let mut desc = false;
        let order: Vec<(c_int, bool)> = info
            .order_bys()
            .map(|o| (o.column(), o.is_order_by_desc()))
            .collect();
        if let [(col, d)] = order.as_slice()
            && (*col == TIME || *col == TIME_MS)
        {
            desc = *d;
            info.set_order_by_consumed(true);
        }
        info.set_idx_num(c_int::from(desc));
        info.set_idx_str(&terms.join(","));
        info.set_estimated_cost(cost);
        info.set_estimated_rows(cost as i64);
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<QueriesCursor<'vtab>> {
        Ok(QueriesCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            tab: self,
            scan: None,
            row: None,
            namer: RefCell::new(Namer::default()),
        })
    }
}

impl CreateVTab<'_> for QueriesTab {
    const KIND: VTabKind = VTabKind::Default;
}

#[repr(C)]
struct QueriesCursor<'vtab> {
    base: ffi::sqlite3_vtab_cursor,
    tab: &'vtab QueriesTab,
    scan: Option<Scan<&'vtab Connection>>,
    row: Option<super::block::Row>,
    namer: RefCell<Namer>,
}

impl Drop for QueriesCursor<'_> {
    fn drop(&mut self) {
        // No statement of the borrowed connection may outlive the cursor:
        // the owner closes the connection after its cursors.
        self.scan = None;
        self.tab.conn.flush_prepared_statement_cache();
    }
}

/// A key for Unix ms `ms`, clamped to the range keys can express.
fn key_at(ms: i64) -> i64 {
    const SPAN: i64 = 1 << 54;
    key_of(ms.clamp(EPOCH_MS - SPAN, EPOCH_MS + SPAN))
}

/// Narrows `f` by one term of the plan. Terms the value does not fit
/// (a number compared with the time text, say) narrow nothing.
fn narrow(
    c: &Connection,
    f: &mut Filter,
    col: c_int,
    op: &str,
    v: ValueRef<'_>,
) -> rusqlite::Result<()> {
    let ms_range = |f: &mut Filter, ms: i64| match op {
        "gt" | "ge" => f.lo = f.lo.max(key_at(ms)),
        "lt" | "le" => f.hi = f.hi.min(key_at(ms.saturating_add(1000))),
        _ => {
            f.lo = f.lo.max(key_at(ms));
            f.hi = f.hi.min(key_at(ms.saturating_add(1000)));
        }
    };
    let nothing = |f: &mut Filter| f.hi = f.lo;
    // Text binds as text (a `&[u8]` would bind as a blob and match nothing).
    let text = match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    };
    match (col, v) {
        (TIME, _) => {
            if let Some(ms) = text.and_then(parse_sql_time) {
                ms_range(f, ms);
            }
        }
        (TIME_MS, ValueRef::Integer(ms)) => ms_range(f, ms),
        (TIME_MS, ValueRef::Real(ms)) if ms.is_finite() => ms_range(f, ms.floor() as i64),
        (CLIENT, _) if let Some(t) = text => {
            let id: Option<i64> = c
                .prepare_cached("SELECT id FROM main.clients WHERE addr = ?1")?
                .query_row([t], |r| r.get(0))
                .ok();
            match (id, f.client) {
                (Some(id), None) => f.client = Some(id),
                (Some(id), Some(old)) if id == old => {}
                _ => nothing(f),
            }
        }
        (DOMAIN, _) if let Some(t) = text => {
            let sql = match op {
                "eq" => "SELECT id FROM main.domains WHERE name = ?1",
                "like" => "SELECT id FROM main.domains WHERE name LIKE ?1 ORDER BY id",
                _ => "SELECT id FROM main.domains WHERE name GLOB ?1 ORDER BY id",
            };
            let mut st = c.prepare_cached(sql)?;
            let mut ids: Vec<i64> = st.query_map([t], |r| r.get(0))?.collect::<Result<_, _>>()?;
            ids.sort_unstable();
            if let Some(old) = &f.domains {
                ids.retain(|id| old.binary_search(id).is_ok());
            }
            f.domains = Some(ids);
        }
        (STATUS, ValueRef::Text(t)) => match std::str::from_utf8(t).ok().and_then(source_of) {
            Some(s) if f.status.is_none_or(|o| o == s as u8) => f.status = Some(s as u8),
            _ => nothing(f),
        },
        (TYPE, _) if let Some(t) = text => match qtype_code(t) {
            Some(q) if f.qtype.is_none_or(|o| o == q) => f.qtype = Some(q),
            _ => nothing(f),
        },
        _ => {}
    }
    Ok(())
}

// SAFETY: QueriesCursor is repr(C) with the sqlite3_vtab_cursor first.
unsafe impl VTabCursor for QueriesCursor<'_> {
    fn filter(
        &mut self,
        idx_num: c_int,
        idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        let conn = &self.tab.conn;
        let mut f = Filter::default();
        let terms = idx_str.unwrap_or("").split(',').filter(|t| !t.is_empty());
        for (term, v) in terms.zip(args.iter()) {
            let (col, op) = term.split_once(':').unwrap_or(("", ""));
            let col: c_int = col.parse().unwrap_or(-1);
            narrow(conn, &mut f, col, op, v)?;
        }
        self.scan = None;
        self.scan = Some(Scan::new(conn, f, idx_num == 1)?);
        self.next()
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.row = match &mut self.scan {
            Some(s) => s.next_row()?,
            None => None,
        };
        Ok(())
    }

    fn eof(&self) -> bool {
        self.row.is_none()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let Some(r) = &self.row else {
            return ctx.set_result(rusqlite::types::Null);
        };
        let conn = &self.tab.conn;
        let labels = &self.tab.labels;
        match i {
            TIME => ctx.set_result(sql_time(ms_of(r.key))),
            TIME_MS => ctx.set_result(ms_of(r.key)),
            CLIENT => ctx.set_result(self.namer.borrow_mut().client(conn, r.client)?),
            DOMAIN => ctx.set_result(self.namer.borrow_mut().domain(conn, r.domain)?),
            TYPE => ctx.set_result(qtype_name(r.qtype)),
            RCODE => ctx.set_result(r.rcode),
            STATUS => ctx.set_result(super::words::status_word(r.status)),
            UPSTREAM => ctx.set_result(r.upstream.map(|u| labels.upstream(u))),
            LATENCY => ctx.set_result(r.latency_us),
            RULE => ctx.set_result(r.reason.map(|x| (labels.rule)(RuleRef::unpack(x)))),
            _ => ctx.set_result(rusqlite::types::Null),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.row.map_or(0, |r| r.key))
    }
}
