//! The `[update]` section: where firmware updates go and whom they are
//! accepted from. On the board image (`web.appliance = true`) every key
//! has a default that fits the card (docs/update.md); elsewhere updates
//! are off unless both slots are given (tests, a development machine with
//! files standing in for partitions).
//!
//! Not for: the card's layout itself (`update::slots`) or building the
//! installer (`app::firmware`).

use super::values::Dur;
use crate::update::SlotName;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct UpdateConfig {
    /// The card holding the slots, such as `/dev/mmcblk0`; on the board
    /// it is found from the running root partition when not set.
    pub disk: Option<PathBuf>,
    /// Where the card's first partition (GH-BOOT, `autoboot.txt`) is
    /// mounted read-write.
    pub selector_dir: PathBuf,
    /// The accepted public keys: every `*.pub` in it.
    pub keys_dir: PathBuf,
    /// How long a trial boot has to pass its health check.
    pub health_timeout: Dur,
    /// Off the board: slot A's and B's partitions (files or devices).
    pub slot_a: Option<SlotPaths>,
    pub slot_b: Option<SlotPaths>,
    /// Off the board: the slot this system runs from (on the board: from
    /// the kernel command line).
    pub running: Option<SlotName>,
    /// This board's name as bundles list it.
    pub board: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct SlotPaths {
    pub boot: PathBuf,
    pub root: PathBuf,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            disk: None,
            selector_dir: PathBuf::from("/boot/selector"),
            keys_dir: PathBuf::from(crate::update::keys::ACCEPTED_DIR),
            health_timeout: Dur(crate::update::health::WITHIN),
            slot_a: None,
            slot_b: None,
            running: None,
            board: "rpi-arm64".into(),
        }
    }
}

impl UpdateConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.slot_a.is_some() != self.slot_b.is_some() {
            return Err("update.slot_a: give both slot_a and slot_b, or neither".into());
        }
        if self.health_timeout.0 < Duration::from_secs(1) {
            return Err("update.health_timeout: must be at least 1s".into());
        }
        if self.board.trim().is_empty() {
            return Err("update.board: must not be empty".into());
        }
        Ok(())
    }
}
