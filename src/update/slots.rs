//! Where an update goes: slots A and B, each a (boot, root) pair of block
//! devices, plus the selector file and the state file. On the card these
//! are partitions 2/5 (A) and 3/6 (B), `autoboot.txt` on partition 1 and
//! `update.json` on the data partition (docs/image.md); in tests they are
//! plain files.
//!
//! Not for: reading or writing any of them (`installer`, `selector`,
//! `state`).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SlotName {
    A,
    B,
}

impl SlotName {
    pub fn other(self) -> SlotName {
        match self {
            SlotName::A => SlotName::B,
            SlotName::B => SlotName::A,
        }
    }

    /// The card's partition number of this slot's boot FAT, as
    /// `autoboot.txt` names it.
    pub fn boot_partition(self) -> u8 {
        match self {
            SlotName::A => 2,
            SlotName::B => 3,
        }
    }

    /// The card's partition number of this slot's root squashfs.
    pub fn root_partition(self) -> u8 {
        self.boot_partition() + 3
    }

    pub fn from_boot_partition(n: u8) -> Option<SlotName> {
        [SlotName::A, SlotName::B]
            .into_iter()
            .find(|s| s.boot_partition() == n)
    }

    pub fn label(self) -> &'static str {
        match self {
            SlotName::A => "A",
            SlotName::B => "B",
        }
    }

    /// GH-BOOT's folder holding a copy of this slot's boot files, for the
    /// Pi 3 / Zero 2 W firmware, which boots from partition 1 only.
    pub fn folder(self) -> &'static str {
        match self {
            SlotName::A => "slot-a",
            SlotName::B => "slot-b",
        }
    }

    /// Lower-case, as in payload names (`boot-b`).
    pub fn lower(self) -> &'static str {
        match self {
            SlotName::A => "a",
            SlotName::B => "b",
        }
    }
}

impl std::fmt::Display for SlotName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One slot's two block devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotDevices {
    /// The slot's boot FAT (firmware, kernel, initramfs, `cmdline.txt`).
    pub boot: PathBuf,
    /// The slot's read-only root filesystem (squashfs).
    pub root: PathBuf,
}

/// Everything the installer reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slots {
    pub a: SlotDevices,
    pub b: SlotDevices,
    /// `autoboot.txt`: which slot boots normally and which on a trial.
    pub selector: PathBuf,
    /// The update state on the data partition (`state::UpdateState`).
    pub state: PathBuf,
    /// The slot this system was booted from.
    pub running: SlotName,
}

impl Slots {
    /// The card's layout: `disk` such as `/dev/mmcblk0` (partitions
    /// `/dev/mmcblk0p2`...) or `/dev/vda` (`/dev/vda2`...), partition 1
    /// mounted at `selector_dir`, the data directory at `data_dir`.
    pub fn card(disk: &Path, selector_dir: &Path, data_dir: &Path, running: SlotName) -> Slots {
        let part = |n: u8| {
            let d = disk.to_string_lossy();
            let sep = if d.ends_with(|c: char| c.is_ascii_digit()) {
                "p"
            } else {
                ""
            };
            PathBuf::from(format!("{d}{sep}{n}"))
        };
        let devices = |s: SlotName| SlotDevices {
            boot: part(s.boot_partition()),
            root: part(s.root_partition()),
        };
        Slots {
            a: devices(SlotName::A),
            b: devices(SlotName::B),
            selector: selector_dir.join("autoboot.txt"),
            state: data_dir.join("update.json"),
            running,
        }
    }

    pub fn devices(&self, slot: SlotName) -> &SlotDevices {
        match slot {
            SlotName::A => &self.a,
            SlotName::B => &self.b,
        }
    }

    /// The slot an update writes: never the running one.
    pub fn update_slot(&self) -> SlotName {
        self.running.other()
    }
}

/// The running slot from the kernel command line (`/proc/cmdline`): the
/// root's PARTUUID ends in the root partition's number (`-05` is A).
pub fn running_from_cmdline(cmdline: &str) -> Option<SlotName> {
    let root = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("root=PARTUUID="))?;
    let n: u8 = root.rsplit_once('-')?.1.parse().ok()?;
    [SlotName::A, SlotName::B]
        .into_iter()
        .find(|s| s.root_partition() == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_partitions_follow_the_image_layout() {
        let s = Slots::card(
            Path::new("/dev/mmcblk0"),
            Path::new("/boot-selector"),
            Path::new("/data/glory-hole"),
            SlotName::A,
        );
        assert_eq!(s.a.boot, Path::new("/dev/mmcblk0p2"));
        assert_eq!(s.b.root, Path::new("/dev/mmcblk0p6"));
        assert_eq!(s.selector, Path::new("/boot-selector/autoboot.txt"));
        let v = Slots::card(
            Path::new("/dev/vda"),
            Path::new("/b"),
            Path::new("/d"),
            SlotName::B,
        );
        assert_eq!(v.a.root, Path::new("/dev/vda5"));
        assert_eq!(v.update_slot(), SlotName::A);
    }

    #[test]
    fn running_slot_from_the_command_line_of_each_boot_slot() {
        // The cmdline.txt that board/rpi-arm64/mkimage.sh writes per slot.
        let a = "console=tty1 root=PARTUUID=676c6f72-05 rootfstype=squashfs ro";
        assert_eq!(running_from_cmdline(a), Some(SlotName::A));
        assert_eq!(
            running_from_cmdline("root=PARTUUID=676c6f72-06 ro"),
            Some(SlotName::B)
        );
        assert_eq!(running_from_cmdline("root=/dev/vda5"), None);
        assert_eq!(running_from_cmdline("root=PARTUUID=676c6f72-07"), None);
    }
}
