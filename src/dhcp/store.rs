//! The leases file on the data partition (`<data_dir>/dhcp-leases.json`),
//! so every client keeps its address across restarts and updates. Saved
//! whole and atomically (`atomic_file`), in batches by `dhcp` (never on
//! every packet: the card's flash wears).
//!
//! Not for: deciding leases (`pool`) or when to save (`dhcp`).

use super::pool::{Lease, label_from_hostname};
use crate::config::Mac;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The file's name inside `data_dir`.
pub const FILE: &str = "dhcp-leases.json";

#[derive(Serialize, Deserialize)]
struct Saved {
    leases: Vec<SavedLease>,
}

#[derive(Serialize, Deserialize)]
struct SavedLease {
    mac: Mac,
    ip: Ipv4Addr,
    /// Unix seconds.
    expires: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// The saved leases; none when there is no file yet. A file that cannot
/// be read is moved aside (`.unreadable`, kept for the owner) and the
/// server starts without it.
pub fn load(path: &Path) -> Vec<(Mac, Lease)> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(
                "dhcp: cannot read {}: {e}; starting without saved leases",
                path.display()
            );
            return Vec::new();
        }
    };
    match serde_json::from_slice::<Saved>(&text) {
        Ok(s) => s
            .leases
            .into_iter()
            .map(|l| {
                let name = l.name.as_deref().and_then(label_from_hostname);
                (
                    l.mac,
                    Lease {
                        ip: l.ip,
                        expires: l.expires,
                        name,
                    },
                )
            })
            .collect(),
        Err(e) => {
            let aside = path.with_extension("json.unreadable");
            let _ = std::fs::rename(path, &aside);
            tracing::warn!(
                "dhcp: {}: {e}; kept as {} and starting without saved leases",
                path.display(),
                aside.display()
            );
            Vec::new()
        }
    }
}

/// Writes `leases` to `path` atomically.
pub fn save<'a>(
    path: &Path,
    leases: impl Iterator<Item = (&'a Mac, &'a Lease)>,
) -> std::io::Result<()> {
    let mut saved = Saved {
        leases: leases
            .map(|(m, l)| SavedLease {
                mac: *m,
                ip: l.ip,
                expires: l.expires,
                name: l.name.clone(),
            })
            .collect(),
    };
    saved.leases.sort_by_key(|l| l.ip);
    let bytes = serde_json::to_vec_pretty(&saved).map_err(std::io::Error::other)?;
    crate::atomic_file::write_atomic(path, |out| out.write_all(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_come_back_as_saved_and_a_bad_file_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        assert!(load(&p).is_empty(), "no file yet");
        let mac = Mac([2, 0, 0, 0, 0, 7]);
        let lease = Lease {
            ip: Ipv4Addr::new(192, 168, 1, 100),
            expires: 1_800_000_000,
            name: Some("tv".into()),
        };
        save(&p, [(&mac, &lease)].into_iter()).unwrap();
        assert_eq!(load(&p), vec![(mac, lease)]);
        std::fs::write(&p, b"{ not json").unwrap();
        assert!(load(&p).is_empty());
        assert_eq!(
            std::fs::read(dir.path().join("dhcp-leases.json.unreadable")).unwrap(),
            b"{ not json"
        );
    }
}
