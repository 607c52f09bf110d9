//! Firmware updates wired into the running server: where the slots are
//! (the card's partitions on the board image, files given in `[update]`
//! elsewhere), the accepted keys, the board's restart (plain or tryboot),
//! and the trial boot's health check started once the listeners are up.
//!
//! Not for: the installer (`update`), the HTTP API (`web::firmware`).

use super::App;
use crate::config::Config;
use crate::update::health::{self, Probes, Verdict};
use crate::update::{AcceptedKeys, Policy, Restart, SlotName, Slots, Updater, slots};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::update::updater::UNAVAILABLE;

/// How the machine restarts; tests count instead of restarting.
pub type Reboot = Arc<dyn Fn(Restart) -> Result<(), String> + Send + Sync>;

/// The board's restart: BusyBox `reboot` (a clean shutdown by init), or
/// for a trial `reboot(2)` with the argument `0 tryboot`, which the Pi
/// firmware reads to boot the selector's `[tryboot]` slot once.
pub fn board_reboot() -> Reboot {
    Arc::new(|how| match how {
        Restart::Normal => std::process::Command::new("reboot")
            .spawn()
            .map(drop)
            .map_err(|e| format!("reboot: cannot run 'reboot': {e}")),
        Restart::Trial => tryboot(),
    })
}

/// The file systems synced, then straight to the firmware: BusyBox init
/// cannot pass a reboot argument. The data partition is ext4 with a
/// journal and was just synced; the root is read-only.
fn tryboot() -> Result<(), String> {
    // SAFETY: sync(2) takes no arguments; reboot(2) is given its magic
    // numbers and a NUL-terminated string that outlives the call.
    let r = unsafe {
        libc::sync();
        libc::syscall(
            libc::SYS_reboot,
            libc::LINUX_REBOOT_MAGIC1,
            libc::LINUX_REBOOT_MAGIC2,
            libc::LINUX_REBOOT_CMD_RESTART2,
            c"0 tryboot".as_ptr(),
        )
    };
    if r == -1 {
        return Err(format!(
            "reboot(2) with '0 tryboot': {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The updater `cfg` describes, or why there is none.
pub fn updater(cfg: &Config) -> Result<Updater, String> {
    let u = &cfg.update;
    let slots = match (&u.slot_a, &u.slot_b) {
        (Some(a), Some(b)) => {
            let devices = |p: &crate::config::SlotPaths| slots::SlotDevices {
                boot: p.boot.clone(),
                root: p.root.clone(),
            };
            Slots {
                a: devices(a),
                b: devices(b),
                selector: u.selector_dir.join("autoboot.txt"),
                state: cfg.data_dir.join("update.json"),
                running: u.running.unwrap_or(SlotName::A),
            }
        }
        _ if cfg.web.appliance => {
            let disk = match &u.disk {
                Some(d) => d.clone(),
                None => root_disk()?,
            };
            let running = match u.running {
                Some(r) => r,
                None => running_slot()?,
            };
            Slots::card(&disk, &u.selector_dir, &cfg.data_dir, running)
        }
        _ => return Err(UNAVAILABLE.into()),
    };
    let keys = AcceptedKeys::from_dir(&u.keys_dir)
        .map_err(|e| format!("update.keys_dir {}: {e}", u.keys_dir.display()))?;
    if keys.is_empty() {
        return Err(format!(
            "update.keys_dir {}: no *.pub key; no bundle could be accepted",
            u.keys_dir.display()
        ));
    }
    let policy = Policy {
        board: u.board.clone(),
        running_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    Ok(Updater::new(slots, keys, policy))
}

/// The slot the kernel was booted from, by its root PARTUUID.
fn running_slot() -> Result<SlotName, String> {
    let cmdline = std::fs::read_to_string("/proc/cmdline")
        .map_err(|e| format!("reading /proc/cmdline: {e}"))?;
    slots::running_from_cmdline(&cmdline).ok_or_else(|| {
        format!("/proc/cmdline names no slot's root (root=PARTUUID=...-05 or -06): {cmdline}")
    })
}

/// The disk whose partition holds the running root: `/` is on
/// `/dev/mmcblk0p5`, so `/sys/dev/block/MAJ:MIN` leads to `mmcblk0`.
fn root_disk() -> Result<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata("/")
        .map_err(|e| format!("stat /: {e}"))?
        .dev();
    let sys = PathBuf::from(format!(
        "/sys/dev/block/{}:{}",
        libc::major(dev),
        libc::minor(dev)
    ));
    let part = std::fs::canonicalize(&sys).map_err(|e| {
        format!(
            "{}: {e} (the root is not on a disk partition; set update.disk)",
            sys.display()
        )
    })?;
    let disk = part
        .parent()
        .and_then(Path::file_name)
        .ok_or_else(|| format!("{}: no parent disk", part.display()))?;
    Ok(Path::new("/dev").join(disk))
}

/// The trial boot's health check, in the background: commits the slot,
/// or gives it up and restarts into the other one.
pub fn check_health(app: &Arc<App>, updater: Arc<Updater>) {
    let cfg = app.config();
    let config_file = app.config_file().to_path_buf();
    let log = app.querylog.clone();
    let log_path = cfg.querylog_path();
    let log_enabled = cfg.querylog.enabled;
    let probes = Probes {
        dns: app.dns_addrs.first().copied(),
        web: app.web_addrs.get().and_then(|a| a.first().copied()),
        data_dir: cfg.data_dir.clone(),
        config: Box::new(move || {
            if !config_file.exists() {
                return Ok(()); // running on the built-in defaults
            }
            Config::load(&config_file).map(drop).map_err(|e| e.0)
        }),
        querylog: Box::new(move || {
            if !log_enabled {
                return Ok(());
            }
            log.flush();
            let status = log.status();
            if status.paused {
                return Err(status.warning.unwrap_or_else(|| "paused".into()));
            }
            querylog_lockable(&log_path)
        }),
    };
    let within = cfg.update.health_timeout.0;
    let app = app.clone();
    tokio::spawn(async move {
        if let Verdict::GivenUp {
            restart: Some(how), ..
        } = health::after_boot(updater, probes, within).await
            && let Err(e) = app.restart(how)
        {
            tracing::error!("restart after a failed trial: {e}");
        }
    });
}

/// The query log's file takes a write lock (what every insert needs)
/// on a connection of its own; nothing is written.
fn querylog_lockable(path: &Path) -> Result<(), String> {
    let what = |e: rusqlite::Error| format!("{}: {e}", path.display());
    let c = rusqlite::Connection::open(path).map_err(what)?;
    c.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(what)?;
    c.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").map_err(what)
}
