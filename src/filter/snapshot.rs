//! Compiling the lists into an index, and the index's file on flash.
//!
//! File layout: 8-byte magic, u32 header length, postcard [`Header`] (format
//! version, hash seed, list sources with their file sizes and times, parse
//! counts, combos, word counts and CRC), u32 CRC of the header, then the
//! branch filter's words and the sorted words, as little-endian u64. Loading streams the words straight into
//! the placed table (no second copy) while checking the CRC; any mismatch,
//! a short or long file, another version, or list sources that differ from
//! the config's (a list edited, added, re-downloaded) is an error and the
//! caller rebuilds. Not for: downloading lists (see `update`).

use super::index::{Branches, Combo, Compiled, Index, IndexBuilder, mask_and, mask_any, mask_bit};
use super::page_buf::PageBuf;
use super::parse::{Action, ListStats, parse_list};
use crate::atomic_file::write_atomic;
use crate::config::{Config, MatchMode};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

pub const MAGIC: [u8; 8] = *b"GHFILTR\x01";
pub const FORMAT_VERSION: u32 = 2;
const MAX_HEADER: u32 = 64 << 20;

/// Where a list's text is read from and what it looked like then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSource {
    pub name: String,
    /// The configured path or URL.
    pub origin: String,
    /// The file read: the path, or the downloaded copy for a URL.
    pub file: PathBuf,
    pub enabled: bool,
    pub match_mode: Option<MatchMode>,
    pub file_len: Option<u64>,
    pub file_mtime_ns: Option<u64>,
}

/// The downloaded copy of a URL list.
pub fn list_copy_path(data_dir: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    data_dir.join("lists").join(format!("{safe}.txt"))
}

pub fn file_stamp(path: &Path) -> (Option<u64>, Option<u64>) {
    match std::fs::metadata(path) {
        Ok(m) => (
            Some(m.len()),
            m.modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos() as u64),
        ),
        Err(_) => (None, None),
    }
}

impl ListSource {
    /// The sources the config names, stamped with their files' current
    /// size and modification time.
    pub fn from_config(cfg: &Config) -> Vec<ListSource> {
        cfg.filter
            .lists
            .iter()
            .map(|l| {
                let (origin, file) = match (&l.path, &l.url) {
                    (Some(p), _) => (p.display().to_string(), p.clone()),
                    (None, Some(u)) => (u.clone(), list_copy_path(&cfg.data_dir, &l.name)),
                    (None, None) => (String::new(), PathBuf::new()),
                };
                let (file_len, file_mtime_ns) = if l.enabled {
                    file_stamp(&file)
                } else {
                    (None, None)
                };
                ListSource {
                    name: l.name.clone(),
                    origin,
                    file,
                    enabled: l.enabled,
                    match_mode: l.match_mode,
                    file_len,
                    file_mtime_ns,
                }
            })
            .collect()
    }
}

/// One list as compiled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMeta {
    pub source: ListSource,
    pub stats: ListStats,
    /// Distinct names this list contributes (blocks and exceptions).
    pub domains: u64,
    /// The file could not be read (no copy downloaded yet, missing path).
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    version: u32,
    seed: u64,
    created_ms: i64,
    lists: Vec<ListMeta>,
    combos: Vec<Combo>,
    words: u64,
    branch_words: u64,
    /// Over the branch words, then the words.
    words_crc: u32,
}

/// Counts newlines, to size the builder once.
fn count_lines(path: &Path) -> std::io::Result<usize> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 1;
    loop {
        let r = f.read(&mut buf)?;
        if r == 0 {
            return Ok(n);
        }
        n += buf[..r].iter().filter(|b| **b == b'\n').count();
    }
}

/// Parses every enabled list, streaming, into one compiled index. A list
/// that cannot be read is reported in its meta, not fatal.
pub fn compile(sources: &[ListSource], seed: u64) -> anyhow::Result<(Compiled, Vec<ListMeta>)> {
    let capacity: usize = sources
        .iter()
        .filter(|s| s.enabled)
        .map(|s| count_lines(&s.file).unwrap_or(0))
        .sum();
    let mut builder = IndexBuilder::new(seed, capacity);
    let mut metas = Vec::with_capacity(sources.len());
    for (i, src) in sources.iter().enumerate() {
        let mut meta = ListMeta {
            source: src.clone(),
            stats: ListStats::default(),
            domains: 0,
            error: None,
        };
        if src.enabled {
            match File::open(&src.file) {
                Ok(f) => {
                    let reader = BufReader::with_capacity(64 << 10, f);
                    let mut failed = None;
                    let res = parse_list(reader, |r| {
                        let sub = match (r.action, src.match_mode) {
                            (Action::Block, Some(MatchMode::Exact)) => false,
                            (Action::Block, Some(MatchMode::Subdomains)) => true,
                            _ => r.subdomains,
                        };
                        if let Err(e) = builder.add(&r.domain, i, r.action, sub) {
                            failed.get_or_insert(e);
                        }
                    });
                    if let Some(e) = failed {
                        return Err(e.context(format!("list '{}'", src.name)));
                    }
                    builder.maybe_compact()?;
                    match res {
                        Ok(stats) => meta.stats = stats,
                        Err(e) => {
                            meta.error = Some(format!(
                                "list '{}': reading {}: {e}",
                                src.name,
                                src.file.display()
                            ))
                        }
                    }
                }
                Err(e) => {
                    meta.error = Some(format!(
                        "list '{}': cannot open {}: {e}",
                        src.name,
                        src.file.display()
                    ))
                }
            }
        }
        metas.push(meta);
    }
    let compiled = builder.finish()?;
    let mut per_combo = vec![0u64; compiled.combos.len()];
    for w in compiled.words.iter() {
        per_combo[(w & 0xFFFF) as usize] += 1;
    }
    for (i, meta) in metas.iter_mut().enumerate() {
        let bit = mask_bit(i);
        meta.domains = compiled
            .combos
            .iter()
            .zip(&per_combo)
            .filter(|(c, _)| {
                [c.block_exact, c.block_sub, c.allow_exact, c.allow_sub]
                    .iter()
                    .any(|m| mask_any(&mask_and(m, &bit)))
            })
            .map(|(_, n)| n)
            .sum();
    }
    Ok((compiled, metas))
}

/// Writes the snapshot atomically, streaming the words rather than
/// building a second in-memory copy of the whole table during a rebuild.
pub fn write(
    path: &Path,
    seed: u64,
    words: &[u64],
    combos: &[Combo],
    branches: &Branches,
    lists: &[ListMeta],
) -> anyhow::Result<()> {
    let mut crc = crc32fast::Hasher::new();
    for w in branches.words().iter().chain(words) {
        crc.update(&w.to_le_bytes());
    }
    let header = Header {
        version: FORMAT_VERSION,
        seed,
        created_ms: crate::events::now_ms(),
        lists: lists.to_vec(),
        combos: combos.to_vec(),
        words: words.len() as u64,
        branch_words: branches.words().len() as u64,
        words_crc: crc.finalize(),
    };
    let head = postcard::to_allocvec(&header)?;
    write_atomic(path, |out| {
        out.write_all(&MAGIC)?;
        out.write_all(&(head.len() as u32).to_le_bytes())?;
        out.write_all(&head)?;
        out.write_all(&crc32fast::hash(&head).to_le_bytes())?;
        for w in branches.words().iter().chain(words) {
            out.write_all(&w.to_le_bytes())?;
        }
        Ok(())
    })?;
    Ok(())
}

/// A snapshot read back.
pub struct Loaded {
    pub index: Index,
    pub lists: Vec<ListMeta>,
    pub created_ms: i64,
}

/// Why a snapshot was not used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("no snapshot yet")]
    Missing,
    #[error("snapshot is corrupt: {0}")]
    Corrupt(String),
    #[error("snapshot has format version {0}, this build uses {FORMAT_VERSION}")]
    Version(u32),
    #[error("snapshot is stale: {0}")]
    Stale(String),
}

fn corrupt(e: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Corrupt(e.to_string())
}

/// Reads and checks a snapshot; `expected` are the sources the config names
/// now (None: accept whatever lists it was built from).
pub fn load(path: &Path, expected: Option<&[ListSource]>) -> Result<Loaded, SnapshotError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SnapshotError::Missing),
        Err(e) => return Err(corrupt(e)),
    };
    let file_len = f.metadata().map_err(corrupt)?.len();
    let mut r = BufReader::with_capacity(64 << 10, f);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(corrupt)?;
    if magic != MAGIC {
        return Err(corrupt("not a glory-hole filter snapshot"));
    }
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(corrupt)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_HEADER || len as u64 > file_len {
        return Err(corrupt("header length out of range"));
    }
    let mut head = vec![0u8; len as usize];
    r.read_exact(&mut head).map_err(corrupt)?;
    let mut crc = [0u8; 4];
    r.read_exact(&mut crc).map_err(corrupt)?;
    if crc32fast::hash(&head) != u32::from_le_bytes(crc) {
        return Err(corrupt("header checksum mismatch"));
    }
    let header: Header = postcard::from_bytes(&head).map_err(corrupt)?;
    drop(head);
    if header.version != FORMAT_VERSION {
        return Err(SnapshotError::Version(header.version));
    }
    if let Some(expected) = expected {
        let built: Vec<&ListSource> = header.lists.iter().map(|l| &l.source).collect();
        if built.len() != expected.len() || built.iter().zip(expected).any(|(a, b)| *a != b) {
            let which = expected
                .iter()
                .find(|e| !built.contains(e))
                .map(|e| format!("list '{}' changed", e.name))
                .unwrap_or_else(|| "lists were removed or reordered".into());
            return Err(SnapshotError::Stale(which));
        }
    }
    let body = 8 + 4 + len as u64 + 4;
    let promised = header
        .words
        .checked_add(header.branch_words)
        .and_then(|n| n.checked_mul(8))
        .and_then(|n| n.checked_add(body));
    if promised != Some(file_len) {
        return Err(corrupt(format!(
            "file is {file_len} bytes, header promises {promised:?}"
        )));
    }
    let mut words = WordReader {
        r,
        crc: crc32fast::Hasher::new(),
        buf: vec![0u8; 64 << 10],
        pos: 0,
        end: 0,
        error: None,
    };
    let mut branches = PageBuf::with_capacity(header.branch_words as usize);
    for w in (&mut words).take(header.branch_words as usize) {
        branches.push(w);
    }
    let branches = Branches::from_words(branches).map_err(corrupt)?;
    let index = Index::from_sorted(
        header.seed,
        header.combos,
        header.words as usize,
        (&mut words).take(header.words as usize),
        branches,
    )
    .map_err(corrupt)?;
    if let Some(e) = words.error {
        return Err(corrupt(e));
    }
    if words.crc.finalize() != header.words_crc {
        return Err(corrupt("table checksum mismatch"));
    }
    Ok(Loaded {
        index,
        lists: header.lists,
        created_ms: header.created_ms,
    })
}

/// Streams u64 words out of a reader, checksumming as it goes.
struct WordReader<R> {
    r: R,
    crc: crc32fast::Hasher,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    error: Option<std::io::Error>,
}

impl<R: Read> Iterator for WordReader<R> {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        if self.pos + 8 > self.end {
            let rest = self.end - self.pos;
            self.buf.copy_within(self.pos..self.end, 0);
            let mut filled = rest;
            while filled < 8 {
                match self.r.read(&mut self.buf[filled..]) {
                    Ok(0) => return None,
                    Ok(n) => {
                        self.crc.update(&self.buf[filled..filled + n]);
                        filled += n;
                    }
                    Err(e) => {
                        self.error = Some(e);
                        return None;
                    }
                }
            }
            self.pos = 0;
            self.end = filled;
        }
        let b = &self.buf[self.pos..self.pos + 8];
        self.pos += 8;
        Some(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
}
