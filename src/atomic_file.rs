//! The one place files are saved: write a temp file beside the target,
//! fsync it, rename it over the target, fsync the directory. A crash leaves
//! either the old file or the new one, never half of either.
//!
//! [`save_atomic`] saves bytes and keeps the previous version as
//! `<path>.prev` (config, passwords, list copies); [`write_atomic`] streams
//! through a buffered writer for files too large to build in memory first
//! (the filter snapshot). Files are created owner-only (0600) and missing
//! directories owner-only (0700): the state holds the household's
//! settings, password hash and list copies ([`create_private_dir`]).
//! Not for: appending (the query log is SQLite).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every state file this program writes.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every state directory this program creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents owner-only (0700), and makes an
/// existing `dir` owner-only too (a data directory made by an older
/// version, or by hand, with the umask's 0755).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != DIR_MODE {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Opens `path` for writing, truncated, created owner-only (0600).
pub fn create_private(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    // A file left by an older version keeps its mode on open: narrow it.
    f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

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
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut out = BufWriter::with_capacity(64 << 10, create_private(&tmp)?);
        fill(&mut out)?;
        let f = out.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
    }
    if keep_previous && path.exists() {
        let prev = previous_path(path);
        if std::fs::copy(path, &prev).is_ok() {
            let _ = std::fs::set_permissions(&prev, std::fs::Permissions::from_mode(FILE_MODE));
        }
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// `x.toml` → `x.toml.prev`; `x` → `x.prev`.
pub fn previous_path(path: &Path) -> PathBuf {
    with_suffix(path, ".prev")
}

/// The path beside `path` whose name is `path`'s with `suffix` appended
/// (`log.db` and `-wal` → `log.db-wal`), whatever the name's extension.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
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
    fn files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/x.toml");
        save_atomic(&path, b"one").unwrap();
        save_atomic(&path, b"two").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("new/x.toml.prev")), 0o600);
        assert_eq!(mode(&dir.path().join("new")), 0o700);
        let wide = dir.path().join("wide");
        std::fs::create_dir(&wide).unwrap();
        std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&wide).unwrap();
        assert_eq!(mode(&wide), 0o700);
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
