//! What only the board does for an update: find the card and the slot this
//! system booted from, and restart into the other slot once, with the
//! Raspberry Pi tryboot flag (docs/update.md, "On the board").
//!
//! - The running slot is read from the kernel command line: each slot's
//!   `cmdline.txt` names its own root, `root=PARTUUID=676c6f72-05` (A) or
//!   `-06` (B).
//! - The card is the disk that holds the data partition (`/data`, partition
//!   7); the image mounts partition 1, GH-BOOT, read-write at
//!   [`SELECTOR_DIR`] (`/etc/init.d/rcS`).
//! - A trial restart is `reboot(2)` with `LINUX_REBOOT_CMD_RESTART2` and
//!   `"0 tryboot"`; a Raspberry Pi kernel's firmware driver passes the flag
//!   to the boot firmware (mainline's does not: docs/update.md). A normal
//!   one goes through init (`reboot`), which shuts down cleanly. Before it, the trial slot's boot files are copied
//!   into GH-BOOT's `slot-a/` or `slot-b/` folder when the card has them:
//!   the Pi 3 / Zero 2 W firmware boots only from partition 1 and picks the
//!   folder by `config.txt` / `tryboot.txt` (`selector::Selector::write`).
//!
//! Not for: deciding when to switch (`installer`), the health check (the
//! app), or the selector files' contents (`selector`).

use super::installer::{Restart, RestartFn};
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
/// holding `data_mount` (`/data`), the selector at [`SELECTOR_DIR`], the
/// update state in `state_dir`.
pub fn card_slots(data_mount: &Path, state_dir: &Path) -> io::Result<Slots> {
    let mounts = std::fs::read_to_string("/proc/mounts")?;
    let device = mount_device(&mounts, data_mount).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a mount point", data_mount.display()),
        )
    })?;
    let disk = disk_of_partition(Path::new("/sys/class/block"), &device)?;
    Ok(Slots::card(
        &disk,
        Path::new(SELECTOR_DIR),
        state_dir,
        running_slot()?,
    ))
}

/// The device mounted at `mount_point`, from `/proc/mounts` text.
pub fn mount_device(mounts: &str, mount_point: &Path) -> Option<PathBuf> {
    let want = mount_point.to_str()?;
    mounts.lines().rev().find_map(|l| {
        let mut f = l.split_whitespace();
        let (dev, at) = (f.next()?, f.next()?);
        (at == want && dev.starts_with("/dev/")).then(|| PathBuf::from(dev))
    })
}

/// `/dev/mmcblk0p7` -> `/dev/mmcblk0`, by sysfs: a partition's directory
/// sits inside its disk's (`/sys/class/block/mmcblk0p7` links to
/// `.../mmcblk0/mmcblk0p7`).
pub fn disk_of_partition(sys_class_block: &Path, partition: &Path) -> io::Result<PathBuf> {
    let name = partition
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{}: no device name", partition.display())))?;
    let real = std::fs::canonicalize(sys_class_block.join(name))?;
    if !real.join("partition").exists() {
        return Err(io::Error::other(format!(
            "{} is not a partition",
            partition.display()
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

/// The installer's restart on the card: for a trial, the slot's boot files
/// go into GH-BOOT's slot folder first (Pi 3 / Zero 2 W), then [`restart`].
pub fn restart_fn(slots: Slots) -> RestartFn {
    Box::new(move |how| {
        if how == Restart::Trial {
            let trial = slots.update_slot();
            let selector_dir = slots.selector.parent().unwrap_or(Path::new("/"));
            if selector_dir.join(SlotName::A.folder()).is_dir() {
                mirror_boot_files(&slots.devices(trial).boot, selector_dir, trial)?;
            }
        }
        restart(how)
    })
}

/// Copies the slot's kernel, initramfs, `cmdline.txt`, `config.txt` and
/// device trees from its boot partition into `selector_dir/slot-x/`, by a
/// temporary folder renamed into place.
fn mirror_boot_files(boot_device: &Path, selector_dir: &Path, slot: SlotName) -> io::Result<()> {
    let mount_at = Path::new("/run/glory-hole-slot-boot");
    std::fs::create_dir_all(mount_at)?;
    mount_vfat_ro(boot_device, mount_at)?;
    let copied = copy_boot_files(mount_at, selector_dir, slot);
    let unmounted = unmount(mount_at);
    copied.and(unmounted)
}

/// The copy itself, from a mounted (or any) directory of boot files.
pub fn copy_boot_files(from: &Path, selector_dir: &Path, slot: SlotName) -> io::Result<()> {
    let folder = selector_dir.join(slot.folder());
    let tmp = selector_dir.join(format!("{}.new", slot.folder()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let keep = name
            .to_str()
            .is_some_and(|n| !FIRMWARE_FILES.contains(&n) && n != "autoboot.txt");
        if keep && entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), tmp.join(&name))?;
        }
    }
    for f in std::fs::read_dir(&tmp)? {
        std::fs::File::open(f?.path())?.sync_all()?;
    }
    // Not read until the tryboot flag is set, which comes after this.
    if folder.exists() {
        std::fs::remove_dir_all(&folder)?;
    }
    std::fs::rename(&tmp, &folder)?;
    std::fs::File::open(selector_dir)?.sync_all()
}

fn c_path(p: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::other(format!("{}: NUL in path", p.display())))
}

fn mount_vfat_ro(device: &Path, at: &Path) -> io::Result<()> {
    let (dev, dir) = (c_path(device)?, c_path(at)?);
    // SAFETY: NUL-terminated strings that outlive the call; no data argument.
    let rc = unsafe {
        libc::mount(
            dev.as_ptr(),
            dir.as_ptr(),
            c"vfat".as_ptr(),
            libc::MS_RDONLY,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(
            e.kind(),
            format!("mounting {}: {e}", device.display()),
        ))
    }
}

fn unmount(at: &Path) -> io::Result<()> {
    let dir = c_path(at)?;
    // SAFETY: a NUL-terminated path that outlives the call.
    if unsafe { libc::umount(dir.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Restarts the machine. Normally through init (`reboot`: `rcK` saves
/// the clock and unmounts `/data` first); for a trial straight through
/// `reboot(2)` after a sync, because init cannot pass the argument. The
/// data partition is ext4 with a journal; the root is read-only.
pub fn restart(how: Restart) -> io::Result<()> {
    let Some(arg) = reboot_argument(how) else {
        return std::process::Command::new("reboot")
            .spawn()
            .map(drop)
            .map_err(|e| io::Error::new(e.kind(), format!("running 'reboot': {e}")));
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
        let mounts = "/dev/root / squashfs ro 0 0\n\
                      /dev/mmcblk0p7 /data ext4 rw,noatime 0 0\n\
                      /dev/mmcblk0p1 /boot/selector vfat rw 0 0\n";
        assert_eq!(
            mount_device(mounts, Path::new("/data")),
            Some(PathBuf::from("/dev/mmcblk0p7"))
        );
        assert_eq!(mount_device(mounts, Path::new("/srv")), None);

        // A sysfs shaped like the kernel's: the partition inside its disk.
        let sys = tempfile::tempdir().unwrap();
        let devices = sys.path().join("devices/platform/mmc/mmcblk0");
        std::fs::create_dir_all(devices.join("mmcblk0p7")).unwrap();
        std::fs::write(devices.join("mmcblk0p7/partition"), "7\n").unwrap();
        let class = sys.path().join("class/block");
        std::fs::create_dir_all(&class).unwrap();
        std::os::unix::fs::symlink(devices.join("mmcblk0p7"), class.join("mmcblk0p7")).unwrap();
        std::os::unix::fs::symlink(&devices, class.join("mmcblk0")).unwrap();
        assert_eq!(
            disk_of_partition(&class, Path::new("/dev/mmcblk0p7")).unwrap(),
            PathBuf::from("/dev/mmcblk0")
        );
        let e = disk_of_partition(&class, Path::new("/dev/mmcblk0")).unwrap_err();
        assert_eq!(e.to_string(), "/dev/mmcblk0 is not a partition");
    }

    #[test]
    fn a_trial_restart_carries_the_tryboot_flag() {
        assert_eq!(reboot_argument(Restart::Trial), Some(c"0 tryboot"));
        assert_eq!(reboot_argument(Restart::Normal), None);
    }

    #[test]
    fn boot_files_are_mirrored_into_the_slot_folder_without_firmware() {
        let boot = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("vmlinuz", "kernel B"),
            ("cmdline.txt", "root=PARTUUID=676c6f72-06"),
            ("bcm2837-rpi-3-b.dtb", "dtb"),
            ("start.elf", "firmware"),
            ("bootcode.bin", "firmware"),
        ] {
            std::fs::write(boot.path().join(name), text).unwrap();
        }
        let sel = tempfile::tempdir().unwrap();
        std::fs::create_dir(sel.path().join("slot-b")).unwrap();
        std::fs::write(sel.path().join("slot-b/vmlinuz"), "old kernel").unwrap();
        std::fs::write(sel.path().join("slot-b/stale.dtb"), "old").unwrap();
        copy_boot_files(boot.path(), sel.path(), SlotName::B).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(sel.path().join("slot-b"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["bcm2837-rpi-3-b.dtb", "cmdline.txt", "vmlinuz"]);
        assert_eq!(
            std::fs::read_to_string(sel.path().join("slot-b/vmlinuz")).unwrap(),
            "kernel B"
        );
        assert!(!sel.path().join("slot-b.new").exists());
    }
}
