//! What the updater remembers across restarts, in `update.json` on the
//! data partition (shared by both slots): what each slot holds, whether a
//! trial boot is pending, and the last result with its reason, which the
//! System page shows after a reboot ("rolled back to Y because Z").
//!
//! Saved only through `atomic_file::save_atomic`; a missing file is a fresh
//! card (slot A from the image, nothing else known).
//!
//! Not for: the boot selector (`selector`), which the bootloader reads.

use super::SlotName;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateState {
    pub a: Option<SlotRecord>,
    pub b: Option<SlotRecord>,
    /// The slot armed for a one-shot trial boot, until it is committed or
    /// found not to have come up.
    pub trial: Option<SlotName>,
    pub last: Option<LastResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub health: Health,
    pub version: String,
    pub built_unix_s: u64,
    /// `keys::fingerprint` of the key that signed it.
    pub signer: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Partly written: an install is under way or was cut off.
    Writing,
    /// Written and read back, not booted yet (or booted on trial).
    Unverified,
    /// Booted and passed its health check.
    Valid,
    /// Failed its trial, or was given up.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastResult {
    pub outcome: Outcome,
    /// The version the outcome is about: installed, committed, refused,
    /// or, for a roll-back, the one left behind.
    pub version: Option<String>,
    pub reason: Option<String>,
    pub at_unix_s: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Written and armed for a trial boot.
    Installed,
    /// The trial slot passed and is now the one that boots.
    Committed,
    /// Back on the other slot; `reason` says why.
    RolledBack,
    /// The bundle was refused or the install failed; nothing switched.
    Refused,
}

impl UpdateState {
    /// The saved state, or the empty one when there is no file yet.
    pub fn load(path: &Path) -> io::Result<UpdateState> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(UpdateState::default()),
            Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }

    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        text.push(b'\n');
        crate::atomic_file::save_atomic(path, &text)
    }

    pub fn slot(&self, s: SlotName) -> Option<&SlotRecord> {
        match s {
            SlotName::A => self.a.as_ref(),
            SlotName::B => self.b.as_ref(),
        }
    }

    pub fn slot_mut(&mut self, s: SlotName) -> &mut Option<SlotRecord> {
        match s {
            SlotName::A => &mut self.a,
            SlotName::B => &mut self.b,
        }
    }

    /// Sets a known slot's health; an unknown slot stays unknown.
    pub fn set_health(&mut self, s: SlotName, health: Health) {
        if let Some(r) = self.slot_mut(s) {
            r.health = health;
        }
    }

    pub fn record(&mut self, outcome: Outcome, version: Option<&str>, reason: Option<String>) {
        self.last = Some(LastResult {
            outcome,
            version: version.map(str::to_string),
            reason,
            at_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_a_fresh_card_and_saved_state_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("update.json");
        assert_eq!(UpdateState::load(&path).unwrap(), UpdateState::default());
        let mut s = UpdateState {
            b: Some(SlotRecord {
                health: Health::Unverified,
                version: "0.2.0".into(),
                built_unix_s: 5,
                signer: "00112233".into(),
            }),
            trial: Some(SlotName::B),
            ..UpdateState::default()
        };
        s.record(Outcome::Installed, Some("0.2.0"), None);
        s.save(&path).unwrap();
        assert_eq!(UpdateState::load(&path).unwrap(), s);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"health\": \"unverified\""), "{text}");
    }
}
