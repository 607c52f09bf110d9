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
//! Not for: Pi 3 / Zero 2 W, whose firmware does not read `autoboot.txt`
//! (docs/update.md), or deciding when to switch (`installer`).

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

    pub fn write(&self, path: &Path) -> io::Result<()> {
        crate::atomic_file::save_atomic(path, self.render().as_bytes())
    }
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
    fn a_foreign_partition_is_an_error_naming_the_line() {
        let e = Selector::parse("[all]\nboot_partition=7\n").unwrap_err();
        assert_eq!(e, "line 2: boot_partition=7 is not slot A (2) or B (3)");
        assert!(Selector::parse("[tryboot]\nboot_partition=3\n").is_err());
    }
}
