//! The one place files are saved: write a temp file beside the target,
//! fsync it, rename it over the target, fsync the directory. A crash leaves
//! either the old file or the new one, never half of either.
//!
//! [`save_atomic`] saves bytes and keeps the previous version as
//! `<path>.prev` (config, passwords, list copies); [`write_atomic`] streams
//! through a buffered writer for files too large to build in memory first
//! (the filter snapshot). Not for: appending (the query log is SQLite).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically and keeps the previous version as
/// `<path>.prev`.
pub fn save_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, true, |out| out.write_all(bytes))
}

/// Writes `path` atomically from whatever `fill` writes into the buffered
/// temp file. No `.prev` copy is kept.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    replace(path, false, fill)
}

fn replace(
    path: &Path,
    keep_previous: bool,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut out = BufWriter::with_capacity(64 << 10, File::create(&tmp)?);
        fill(&mut out)?;
        let f = out.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
    }
    if keep_previous && path.exists() {
        let _ = std::fs::copy(path, previous_path(path));
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// `x.toml` → `x.toml.prev`; `x` → `x.prev`.
fn previous_path(path: &Path) -> PathBuf {
    path.with_extension(match path.extension() {
        Some(e) => format!("{}.prev", e.to_string_lossy()),
        None => "prev".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_keeps_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.toml");
        save_atomic(&path, b"one").unwrap();
        save_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(
            std::fs::read(dir.path().join("sub/x.toml.prev")).unwrap(),
            b"one"
        );
        assert!(!dir.path().join("sub/x.tmp").exists());
    }

    #[test]
    fn streams_without_a_previous_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap");
        write_atomic(&path, |w| w.write_all(b"a")).unwrap();
        write_atomic(&path, |w| {
            w.write_all(b"b")?;
            w.write_all(b"c")
        })
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"bc");
        assert!(!dir.path().join("snap.prev").exists());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        save_atomic(&path, b"old").unwrap();
        let e = write_atomic(&path, |_| Err(io::Error::other("disk full"))).unwrap_err();
        assert_eq!(e.to_string(), "disk full");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }
}
