//! Opening the query-log database: pragmas, the embedded migrations, and
//! the checks that refuse a database this build must not write.
//!
//! Not for: what the tables mean (see `migrations/*.sql`) or writing rows
//! (`writer.rs`).

use crate::atomic_file::with_suffix;
use anyhow::{Context, bail};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};

/// The migrations, in order; the version of each is its position + 1.
/// Page size of a new database (an existing one keeps its own).
pub const PAGE_SIZE: i64 = 1024;

pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_query_log",
        include_str!("../../migrations/0001_query_log.sql"),
    ),
    (
        "0002_forget_unused_names",
        include_str!("../../migrations/0002_forget_unused_names.sql"),
    ),
    (
        "0003_day_rollups",
        include_str!("../../migrations/0003_day_rollups.sql"),
    ),
    (
        "0004_query_blocks",
        include_str!("../../migrations/0004_query_blocks.sql"),
    ),
    (
        "0005_domain_and_latency_index",
        include_str!("../../migrations/0005_domain_and_latency_index.sql"),
    ),
    (
        "0006_exact_top_domains",
        include_str!("../../migrations/0006_exact_top_domains.sql"),
    ),
];

/// The schema version this build writes.
pub fn latest_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Why a database could not be opened: damaged files are moved aside and
/// replaced; a database from a newer build is left alone.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("query log {path}: the file is damaged ({detail})")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "query log {path}: written by a newer glory-hole that requires schema \
         version {needs} to read it (this build knows up to {known}); refusing to \
         touch it. Update the firmware or move the file aside."
    )]
    TooNew {
        path: PathBuf,
        needs: u32,
        known: u32,
    },
    #[error("query log {path}: {source:#}")]
    Other {
        path: PathBuf,
        source: anyhow::Error,
    },
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Opens (creating if needed) the database for the writer and brings the
/// schema up to date. Page-level settings go first: `auto_vacuum` only
/// takes effect before the first table exists.
pub fn open_writer(path: &Path) -> Result<Connection, OpenError> {
    let classify = |e: rusqlite::Error, what: &str| {
        if is_corruption(&e) {
            OpenError::Corrupt {
                path: path.to_owned(),
                detail: format!("{what}: {e}"),
            }
        } else {
            OpenError::Other {
                path: path.to_owned(),
                source: anyhow::Error::new(e).context(what.to_owned()),
            }
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| OpenError::Other {
            path: path.to_owned(),
            source: anyhow::Error::new(e).context(format!("creating {}", dir.display())),
        })?;
    }
    let conn = Connection::open(path).map_err(|e| classify(e, "opening"))?;
    let fresh: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(|e| classify(e, "reading the header"))?;
    if fresh == 0 {
        // Each commit writes every page it changed to the WAL, and most of
        // a flush's changes are a row or two in a page (roll-ups, index
        // rows): 1 KiB pages write a quarter of what 4 KiB pages do
        // (benches/querylog-flash.sh, docs/querylog.md "Writes to flash").
        conn.execute_batch(&format!(
            "PRAGMA page_size = {PAGE_SIZE}; PRAGMA auto_vacuum = INCREMENTAL;"
        ))
        .map_err(|e| classify(e, "setting page_size and auto_vacuum"))?;
    }
    // The writer appends (blocks, and new names at random places in one
    // index): 256 KiB holds every table's right edge and the upper levels
    // of the name index; more only added RSS under a flood of new names.
    // `synchronous = FULL` syncs the WAL at each commit (once a flush
    // interval), so a power cut loses at most the rows of the last
    // interval, not also a commit the kernel had yet to write back; the
    // pages written are the same (docs/querylog.md, "Writes to flash").
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = OFF;
         PRAGMA cache_size = -256;
         PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(|e| classify(e, "setting journal mode"))?;
    migrate(&conn, path).map_err(|e| match e.downcast::<OpenError>() {
        Ok(open) => open,
        Err(e) => match e.downcast_ref::<rusqlite::Error>() {
            Some(sq) if is_corruption(sq) => OpenError::Corrupt {
                path: path.to_owned(),
                detail: format!("{e:#}"),
            },
            _ => OpenError::Other {
                path: path.to_owned(),
                source: e,
            },
        },
    })?;
    Ok(conn)
}

/// A connection for the query API: read-only, so it can never take the
/// writer's lock; WAL lets it read while the writer commits.
pub fn open_reader(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("query log {}: opening for reading", path.display()))?;
    conn.execute_batch("PRAGMA cache_size = -2048; PRAGMA query_only = ON;")?;
    Ok(conn)
}

/// The schema version recorded in the database (0: empty).
pub fn current_version(conn: &Connection) -> rusqlite::Result<u32> {
    let has_table: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
}

/// Applies every migration newer than the database, each in its own
/// transaction with its `schema_migrations` row.
pub fn migrate(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    migrate_to(conn, path, latest_version())
}

/// Like [`migrate`] but stops at `target` (tests build every older version).
pub fn migrate_to(conn: &Connection, path: &Path, target: u32) -> anyhow::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_ms INTEGER NOT NULL
         )",
    )
    .context("creating schema_migrations")?;
    let have = current_version(conn)?;
    let known = latest_version();
    if have > known {
        // Newer but additive databases stay readable (migrations/README.md);
        // a newer build marks a database it changed incompatibly.
        let needs: Option<i64> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'min_reader_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(needs) = needs.filter(|&n| n > known as i64) {
            bail!(OpenError::TooNew {
                path: path.to_owned(),
                needs: needs as u32,
                known,
            });
        }
        return Ok(());
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().take(target as usize) {
        let version = i as u32 + 1;
        if version <= have {
            continue;
        }
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("migration {name}"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
            rusqlite::params![version, name, crate::clock::now_ms()],
        )?;
        tx.commit()
            .with_context(|| format!("committing migration {name}"))?;
    }
    Ok(())
}

/// Moves a damaged database (and its WAL) out of the way; returns where.
pub(super) fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let aside = with_suffix(path, &format!(".corrupt-{}", crate::clock::now_ms()));
    std::fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let from = with_suffix(path, suffix);
        if from.exists() {
            let _ = std::fs::rename(&from, with_suffix(&aside, suffix));
        }
    }
    Ok(aside)
}
