//! What only the board does for an update: find the card and the slot this
//! system booted from, and restart into the other slot once, with the
//! Raspberry Pi tryboot flag (docs/update.md, "On the board"). The running
//! server (`app::firmware`) uses these and nothing else of its own.
//!
//! - The running slot is read from the kernel command line: each slot's
//!   `cmdline.txt` names its own root, `root=PARTUUID=676c6f72-05` (A) or
//!   `-06` (B).
//! - The card is the disk that holds the data directory (`/data`, partition
//!   7); the image mounts partition 1, GH-BOOT, read-write at
//!   [`SELECTOR_DIR`] (`/etc/init.d/rcS`).
//! - Before a trial restart ([`before_restart`]), the trial slot's boot
//!   files are copied into GH-BOOT's `slot-a/` or `slot-b/` folder when the
//!   card has them: the Pi 3 / Zero 2 W firmware boots only from partition
//!   1 and picks the folder by `config.txt` / `tryboot.txt`
//!   (`selector::Selector::write`). The slot's FAT is read in place
//!   (`fatfs`), not mounted.
//! - A trial restart ([`restart`]) is `reboot(2)` with
//!   `LINUX_REBOOT_CMD_RESTART2` and `"0 tryboot"`; a Raspberry Pi kernel's
//!   firmware driver passes the flag to the boot firmware (mainline's does
//!   not: docs/update.md). A normal one goes through init (`reboot`), which
//!   shuts down cleanly.
//!
//! Not for: deciding when to switch (`installer`), the health check
//! (`health`), or the selector files' contents (`selector`).

use super::installer::Restart;
use super::{SlotName, Slots, slots};
use std::ffi::CStr;
use std::io;
use std::path::{Path, PathBuf};

/// Where the image mounts partition 1 (GH-BOOT), read-write.
pub const SELECTOR_DIR: &str = "/boot/selector";
/// The version the image was built as (`make image VERSION=...`).
pub const VERSION_FILE: &str = "/etc/glory-hole/version";

/// Files of a boot partition that the Pi 3 firmware reads from partition 1
/// itself (never from a slot folder): they are not copied into one.
const FIRMWARE_FILES: &[&str] = &[
    "bootcode.bin",
    "start.elf",
    "fixup.dat",
    "start4.elf",
    "fixup4.dat",
];

/// The slot this system booted from, by `/proc/cmdline`.
pub fn running_slot() -> io::Result<SlotName> {
    let cmdline = std::fs::read_to_string("/proc/cmdline")?;
    slots::running_from_cmdline(&cmdline).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no root=PARTUUID=...-05 or -06 on the kernel command line: {}",
                cmdline.trim()
            ),
        )
    })
}

/// The version this root filesystem was built as; the crate's version
/// when the image did not write one.
pub fn running_version() -> String {
    std::fs::read_to_string(VERSION_FILE)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string())
}

/// The card's partitions and files, as the image lays them out: the disk
/// holding `data_dir` (unless `disk` names it), the selector in
/// `selector_dir` ([`SELECTOR_DIR`] on the image), the update state in
/// `data_dir`, the running slot from `/proc/cmdline` (unless `running`
/// names it).
pub fn card_slots(
    data_dir: &Path,
    selector_dir: &Path,
    disk: Option<&Path>,
    running: Option<SlotName>,
) -> io::Result<Slots> {
    let disk = match disk {
        Some(d) => d.to_path_buf(),
        None => card_disk(data_dir)?,
    };
    let running = match running {
        Some(r) => r,
        None => running_slot()?,
    };
    Ok(Slots::card(&disk, selector_dir, data_dir, running))
}

/// The disk whose partition holds `path`: the data partition
/// `/dev/mmcblk0p7` leads to `/dev/mmcblk0`.
pub fn card_disk(path: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
        .dev();
    disk_of_device(
        Path::new("/sys/dev/block"),
        libc::major(dev),
        libc::minor(dev),
    )
    .map_err(|e| io::Error::new(e.kind(), format!("{e} (set update.disk)")))
}

/// `MAJ:MIN` of a partition -> its disk, by sysfs: a partition's directory
/// sits inside its disk's (`/sys/dev/block/179:7` links to
/// `.../mmcblk0/mmcblk0p7`).
pub fn disk_of_device(sys_dev_block: &Path, major: u32, minor: u32) -> io::Result<PathBuf> {
    let link = sys_dev_block.join(format!("{major}:{minor}"));
    let real = std::fs::canonicalize(&link)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", link.display())))?;
    if !real.join("partition").exists() {
        return Err(io::Error::other(format!(
            "{} ({}) is not a disk partition",
            link.display(),
            real.display()
        )));
    }
    let disk = real
        .parent()
        .and_then(Path::file_name)
        .ok_or_else(|| io::Error::other(format!("{}: no parent disk", real.display())))?;
    Ok(Path::new("/dev").join(disk))
}

/// The argument `reboot(2)` gets for a restart: `"0 tryboot"` (partition 0,
/// the default one, then the flag) for a trial.
pub fn reboot_argument(how: Restart) -> Option<&'static CStr> {
    match how {
        Restart::Normal => None,
        Restart::Trial => Some(c"0 tryboot"),
    }
}

/// What a restart needs on the card before it happens: for a trial, the
/// slot's boot files go into GH-BOOT's slot folder when the card has those
/// folders (Pi 3 / Zero 2 W). Nothing for a normal restart.
pub fn before_restart(slots: &Slots, how: Restart) -> io::Result<()> {
    if how != Restart::Trial {
        return Ok(());
    }
    let trial = slots.update_slot();
    let selector_dir = slots.selector.parent().unwrap_or(Path::new("/"));
    if !selector_dir.join(SlotName::A.folder()).is_dir() {
        return Ok(());
    }
    let boot = &slots.devices(trial).boot;
    copy_boot_files(boot, selector_dir, trial).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "copying slot {trial}'s boot files from {} into {}: {e}",
                boot.display(),
                selector_dir.join(trial.folder()).display()
            ),
        )
    })
}

/// Copies the slot's kernel, initramfs, `cmdline.txt`, `config.txt` and
/// device trees (the top-level files of its boot FAT, read by `fatfs`
/// without mounting it) into `selector_dir/slot-x/`, by a temporary
/// folder renamed into place.
pub fn copy_boot_files(boot_fat: &Path, selector_dir: &Path, slot: SlotName) -> io::Result<()> {
    let folder = selector_dir.join(slot.folder());
    let tmp = selector_dir.join(format!("{}.new", slot.folder()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp)?;
    let device = ReadOnly(std::fs::File::open(boot_fat)?);
    let fat = fatfs::FileSystem::new(device, fatfs::FsOptions::new())?;
    for entry in fat.root_dir().iter() {
        let entry = entry?;
        let name = entry.file_name();
        let keep = !FIRMWARE_FILES.contains(&name.as_str()) && name != "autoboot.txt";
        if keep && entry.is_file() {
            let mut out = std::fs::File::create(tmp.join(&name))?;
            io::copy(&mut entry.to_file(), &mut out)?;
            out.sync_all()?;
        }
    }
    drop(fat);
    // Not read until the tryboot flag is set, which comes after this.
    if folder.exists() {
        std::fs::remove_dir_all(&folder)?;
    }
    std::fs::rename(&tmp, &folder)?;
    std::fs::File::open(selector_dir)?.sync_all()
}

/// A boot partition opened for reading only: `fatfs` wants a writable
/// device, and writes nothing when nothing is changed; a write would be a
/// bug, so it fails.
struct ReadOnly(std::fs::File);

impl io::Read for ReadOnly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl io::Seek for ReadOnly {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl io::Write for ReadOnly {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other(
            "a slot's boot partition is read only here",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Restarts the machine. Normally through init: SIGTERM to PID 1 is
/// BusyBox init's restart (what its `reboot` command sends), and `rcK`
/// saves the clock and unmounts `/data` first. Sent from here rather than
/// by running `reboot`, because glory-hole holds `CAP_KILL` itself
/// (`appliance::privileges`) and a program it starts would not. For a
/// trial straight through `reboot(2)` after a sync, because init cannot
/// pass the argument. The data partition is ext4 with a journal; the root
/// is read-only.
pub fn restart(how: Restart) -> io::Result<()> {
    let Some(arg) = reboot_argument(how) else {
        // SAFETY: kill(2) with integer arguments.
        if unsafe { libc::kill(1, libc::SIGTERM) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("asking init (PID 1) to restart: {e}"),
        ));
    };
    // SAFETY: sync(2) takes no arguments; reboot(2) gets its magic numbers
    // and a NUL-terminated argument that outlives the call.
    let rc = unsafe {
        libc::sync();
        libc::syscall(
            libc::SYS_reboot,
            libc::LINUX_REBOOT_MAGIC1,
            libc::LINUX_REBOOT_MAGIC2,
            libc::LINUX_REBOOT_CMD_RESTART2,
            arg.as_ptr(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(
            e.kind(),
            format!("reboot(2) with '0 tryboot': {e}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_partition_names_the_card() {
        // A sysfs shaped like the kernel's: the partition inside its disk.
        let sys = tempfile::tempdir().unwrap();
        let disk = sys.path().join("devices/platform/mmc/mmcblk0");
        std::fs::create_dir_all(disk.join("mmcblk0p7")).unwrap();
        std::fs::write(disk.join("mmcblk0p7/partition"), "7\n").unwrap();
        let dev_block = sys.path().join("dev/block");
        std::fs::create_dir_all(&dev_block).unwrap();
        std::os::unix::fs::symlink(disk.join("mmcblk0p7"), dev_block.join("179:7")).unwrap();
        std::os::unix::fs::symlink(&disk, dev_block.join("179:0")).unwrap();
        assert_eq!(
            disk_of_device(&dev_block, 179, 7).unwrap(),
            PathBuf::from("/dev/mmcblk0")
        );
        let e = disk_of_device(&dev_block, 179, 0).unwrap_err().to_string();
        assert!(
            e.contains("179:0") && e.contains("is not a disk partition"),
            "{e}"
        );
        let e = disk_of_device(&dev_block, 8, 1).unwrap_err().to_string();
        assert!(e.contains("8:1"), "{e}");
    }

    #[test]
    fn a_trial_restart_carries_the_tryboot_flag() {
        assert_eq!(reboot_argument(Restart::Trial), Some(c"0 tryboot"));
        assert_eq!(reboot_argument(Restart::Normal), None);
    }

    /// A FAT image holding `files` at its top level, made by `fatfs`.
    pub fn fat_image(path: &Path, files: &[(&str, &[u8])]) {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.set_len(4 << 20).unwrap();
        fatfs::format_volume(&f, fatfs::FormatVolumeOptions::new()).unwrap();
        let fs = fatfs::FileSystem::new(&f, fatfs::FsOptions::new()).unwrap();
        for (name, bytes) in files {
            use std::io::Write;
            fs.root_dir()
                .create_file(name)
                .unwrap()
                .write_all(bytes)
                .unwrap();
        }
        fs.root_dir().create_dir("overlays").unwrap();
    }

    #[test]
    fn boot_files_are_mirrored_into_the_slot_folder_without_firmware() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("b-boot.img");
        fat_image(
            &boot,
            &[
                ("vmlinuz", b"kernel B"),
                ("cmdline.txt", b"root=PARTUUID=676c6f72-06"),
                ("bcm2837-rpi-3-b.dtb", b"dtb"),
                ("start.elf", b"firmware"),
                ("bootcode.bin", b"firmware"),
            ],
        );
        let before = std::fs::read(&boot).unwrap();
        let sel = dir.path().join("selector");
        std::fs::create_dir_all(sel.join("slot-b")).unwrap();
        std::fs::write(sel.join("slot-b/vmlinuz"), "old kernel").unwrap();
        std::fs::write(sel.join("slot-b/stale.dtb"), "old").unwrap();
        copy_boot_files(&boot, &sel, SlotName::B).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(sel.join("slot-b"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["bcm2837-rpi-3-b.dtb", "cmdline.txt", "vmlinuz"]);
        assert_eq!(
            std::fs::read_to_string(sel.join("slot-b/vmlinuz")).unwrap(),
            "kernel B"
        );
        assert!(!sel.join("slot-b.new").exists());
        assert_eq!(
            std::fs::read(&boot).unwrap(),
            before,
            "the slot was written"
        );
    }

    #[test]
    fn a_boot_partition_that_is_not_fat_fails_and_leaves_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("b-boot.img");
        std::fs::write(&boot, vec![0u8; 64 << 10]).unwrap();
        let sel = dir.path().join("selector");
        std::fs::create_dir_all(sel.join("slot-b")).unwrap();
        std::fs::write(sel.join("slot-b/vmlinuz"), "old kernel").unwrap();
        assert!(copy_boot_files(&boot, &sel, SlotName::B).is_err());
        assert_eq!(
            std::fs::read_to_string(sel.join("slot-b/vmlinuz")).unwrap(),
            "old kernel"
        );
    }
}
