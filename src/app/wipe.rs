//! Factory reset's wipe: after the fresh config is saved, every other file
//! under the data directory goes — the previous config and its `.prev`,
//! the query log (`querylog.db` with its `-wal` and `-shm`), list copies
//! and their `.prev` and download state, the filter snapshot, the
//! credentials and their `.prev`, `network.conf`. A resold box shows
//! nothing of the last household. The firmware slots' state
//! (`update.json`: which slot holds which version, whether it passed its
//! health check) describes the box, not the household, and stays, so a
//! rollback still knows what the other slot holds. Files still open (the query log) are
//! unlinked: their space is freed when the box restarts, which the reset
//! does. A file that is a mount point (the firmware binds a RAM file over
//! `querylog.db-shm`, docs/querylog.md "Writes to flash") is not on the
//! card and cannot be unlinked: it is left, and goes with the restart.
//! Not for: choosing the fresh config (see `backend::factory_reset`).

use std::path::Path;

/// The updater's state file (`update::slots`), kept by a reset.
const UPDATE_STATE: &str = "update.json";

/// Removes everything under `data_dir` except `keep` (the fresh config
/// file) and the directories themselves. Err names the first file that
/// could not be removed; the others are still tried.
pub fn wipe_user_data(data_dir: &Path, keep: &Path) -> Result<(), String> {
    let mut first_error = None;
    wipe_dir(data_dir, keep, &mut first_error);
    // The config may live outside the data directory (`--config`); its
    // previous version holds the last household's settings.
    let prev = crate::atomic_file::previous_path(keep);
    if let Err(e) = std::fs::remove_file(&prev)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        first_error.get_or_insert(format!("factory reset: removing {}: {e}", prev.display()));
    }
    first_error.map_or(Ok(()), Err)
}

fn wipe_dir(dir: &Path, keep: &Path, err: &mut Option<String>) {
    use std::os::unix::fs::MetadataExt;
    // The device the directory is on: an entry on another is a mount.
    let dev = std::fs::metadata(dir).map(|m| m.dev()).ok();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            err.get_or_insert(format!("factory reset: reading {}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            wipe_dir(&path, keep, err);
            // Empty now unless something was kept or failed; then it stays.
            let _ = std::fs::remove_dir(&path);
        } else if path != keep
            && path.file_name() != Some(UPDATE_STATE.as_ref())
            && entry.metadata().map(|m| m.dev()).ok() == dev
            && let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            err.get_or_insert(format!("factory reset: removing {}: {e}", path.display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_but_the_fresh_config_goes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "config.toml",
            "config.toml.prev",
            "querylog.db",
            "querylog.db-wal",
            "lists/a.txt",
            "lists/a.txt.prev",
            "filter/index.snap",
            "update.json",
        ] {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        wipe_user_data(d, &d.join("config.toml")).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(left, ["config.toml", "update.json"]);
    }
}
