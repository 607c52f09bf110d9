//! The boot selector, `autoboot.txt` on the card's first partition: which
//! slot boots normally (`[all] boot_partition=N`) and which one boot after
//! a restart with the tryboot flag (`[tryboot] boot_partition=M`). The
//! Raspberry Pi bootloader clears that flag before starting the system, so
//! a trial that hangs or resets comes back on the normal slot by itself.
//!
//! Written only through `atomic_file::save_atomic` (temp file, fsync, rename,
//! fsync of the directory): a power cut leaves the old file or the new one.
//! The bootloader reads at most 512 bytes of it.
//!
//! Pi 3 / Zero 2 W firmware does not read `autoboot.txt`: it boots from
//! partition 1's `config.txt`, or `tryboot.txt` once after a tryboot
//! restart. When the card has the slot folders for them (`slot-a/`,
//! `slot-b/`), the same selector is also written as those two files, each
//! pointing `os_prefix` at a slot folder (docs/update.md, "Guarantee per
//! board").
//!
//! Not for: deciding when to switch (`installer`), or copying a slot's boot
//! files into its folder (`board`).

use super::SlotName;
use std::io;
use std::path::Path;

/// The bootloader's limit on `autoboot.txt`.
pub const MAX_LEN: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selector {
    /// Booted normally, and after a trial that failed.
    pub committed: SlotName,
    /// Booted once after a restart with the tryboot flag.
    pub trial: SlotName,
}

impl Selector {
    /// Boots `committed`; a tryboot restart tries the other slot.
    pub fn committed(committed: SlotName) -> Selector {
        Selector {
            committed,
            trial: committed.other(),
        }
    }

    pub fn render(&self) -> String {
        format!(
            "# Written by glory-hole's updater (docs/update.md); read by the\n\
             # Pi 4 / 400 / CM4 / 5 bootloader. Slot A = 2, slot B = 3.\n\
             [all]\n\
             tryboot_a_b=1\n\
             boot_partition={}\n\
             [tryboot]\n\
             boot_partition={}\n",
            self.committed.boot_partition(),
            self.trial.boot_partition()
        )
    }

    /// Reads the `[all]` and `[tryboot]` boot partitions; anything else
    /// than slot A or B there is an error naming the line.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut section = "all";
        let (mut committed, mut trial) = (None, None);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = if name == "tryboot" { "tryboot" } else { "all" };
                continue;
            }
            let Some(value) = line.strip_prefix("boot_partition=") else {
                continue;
            };
            let slot = value
                .trim()
                .parse()
                .ok()
                .and_then(SlotName::from_boot_partition)
                .ok_or_else(|| {
                    format!(
                        "line {}: boot_partition={value} is not slot A (2) or B (3)",
                        i + 1
                    )
                })?;
            match section {
                "tryboot" => trial = Some(slot),
                _ => committed = Some(slot),
            }
        }
        let committed = committed.ok_or("no boot_partition in [all]")?;
        Ok(Selector {
            committed,
            trial: trial.unwrap_or(committed),
        })
    }

    pub fn read(path: &Path) -> io::Result<Selector> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Selector::parse(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// Writes `autoboot.txt` and, when the slot folders are beside it,
    /// `tryboot.txt` (the trial) then `config.txt` (the committed slot).
    /// Each file is replaced whole; each board reads only its own.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        crate::atomic_file::save_atomic(path, self.render().as_bytes())?;
        let dir = path.parent().unwrap_or(Path::new("."));
        if dir.join(SlotName::A.folder()).is_dir() {
            let trial = render_legacy(
                self.trial,
                "tryboot.txt, booted once after a tryboot restart",
            );
            crate::atomic_file::save_atomic(&dir.join("tryboot.txt"), trial.as_bytes())?;
            let normal = render_legacy(self.committed, "config.txt, booted normally");
            crate::atomic_file::save_atomic(&dir.join("config.txt"), normal.as_bytes())?;
        }
        Ok(())
    }
}

/// Partition 1's `config.txt` / `tryboot.txt` for the Pi 3 / Zero 2 W:
/// the slot's folder as `os_prefix` (kernel, initramfs, `cmdline.txt`
/// and device trees are loaded from it) and its `config.txt` included.
pub fn render_legacy(slot: SlotName, what: &str) -> String {
    let folder = slot.folder();
    format!(
        "# Written by glory-hole's updater (docs/update.md): the Pi 3 / Zero 2 W\n\
         # firmware's {what}. Slot {slot}.\n\
         os_prefix={folder}/\n\
         include {folder}/config.txt\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_file_reads_as_a_committed_with_b_on_trial() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/board/rpi-arm64/autoboot.txt"
        ))
        .unwrap();
        assert_eq!(
            Selector::parse(&text),
            Ok(Selector {
                committed: SlotName::A,
                trial: SlotName::B
            })
        );
    }

    #[test]
    fn rendered_text_parses_back_and_fits_the_bootloader() {
        for committed in [SlotName::A, SlotName::B] {
            let s = Selector::committed(committed);
            let text = s.render();
            assert!(text.len() <= MAX_LEN, "{} bytes", text.len());
            assert!(text.contains("tryboot_a_b=1\n"));
            assert_eq!(Selector::parse(&text), Ok(s));
        }
    }

    #[test]
    fn with_slot_folders_the_pi3_files_follow_the_selector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autoboot.txt");
        Selector::committed(SlotName::A).write(&path).unwrap();
        assert!(!dir.path().join("tryboot.txt").exists());

        std::fs::create_dir(dir.path().join("slot-a")).unwrap();
        Selector::committed(SlotName::B).write(&path).unwrap();
        let config = std::fs::read_to_string(dir.path().join("config.txt")).unwrap();
        let tryboot = std::fs::read_to_string(dir.path().join("tryboot.txt")).unwrap();
        assert!(
            config.contains("\nos_prefix=slot-b/\ninclude slot-b/config.txt\n"),
            "{config}"
        );
        assert!(
            tryboot.contains("\nos_prefix=slot-a/\ninclude slot-a/config.txt\n"),
            "{tryboot}"
        );
    }

    #[test]
    fn the_image_pi3_files_match_what_the_updater_writes() {
        // board/rpi-arm64/mkimage.sh puts these on partition 1.
        let board = concat!(env!("CARGO_MANIFEST_DIR"), "/board/rpi-arm64/");
        let config = std::fs::read_to_string(format!("{board}selector-config.txt")).unwrap();
        assert_eq!(
            config,
            render_legacy(SlotName::A, "config.txt, booted normally")
        );
        let tryboot = std::fs::read_to_string(format!("{board}selector-tryboot.txt")).unwrap();
        assert_eq!(
            tryboot,
            render_legacy(
                SlotName::B,
                "tryboot.txt, booted once after a tryboot restart"
            )
        );
    }

    #[test]
    fn a_foreign_partition_is_an_error_naming_the_line() {
        let e = Selector::parse("[all]\nboot_partition=7\n").unwrap_err();
        assert_eq!(e, "line 2: boot_partition=7 is not slot A (2) or B (3)");
        assert!(Selector::parse("[tryboot]\nboot_partition=3\n").is_err());
    }
}
