//! Firmware updates wired into the running server: where the slots are
//! (the card's partitions on the board image, found by `update::board`;
//! files given in `[update]` elsewhere), the accepted keys, the board's
//! restart (`update::board`, or a test's counter), and the trial boot's
//! health check started once the listeners are up.
//!
//! Not for: the installer (`update`), the HTTP API (`web::firmware`).

use super::App;
use crate::config::Config;
use crate::update::health::{self, Probes, Verdict};
use crate::update::{AcceptedKeys, Policy, Restart, SlotName, Slots, Updater, board, slots};
use std::path::Path;
use std::sync::Arc;

pub use crate::update::updater::UNAVAILABLE;

/// How the machine restarts; tests count instead of restarting.
pub type Reboot = Arc<dyn Fn(Restart) -> Result<(), String> + Send + Sync>;

/// The board's restart (`update::board::restart`): SIGTERM to BusyBox
/// init, or for a trial `reboot(2)` with the tryboot flag.
pub fn board_reboot() -> Reboot {
    Arc::new(|how| board::restart(how).map_err(|e| e.to_string()))
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
            board::card_slots(&cfg.data_dir, &u.selector_dir, u.disk.as_deref(), u.running)
                .map_err(|e| format!("finding the card's slots: {e}"))?
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
        running_version: board::running_version(),
    };
    Ok(Updater::new(slots, keys, policy))
}

/// What the card needs before `how` restarts the machine
/// (`board::before_restart`: a trial slot's boot files in its GH-BOOT
/// folder on a Pi 3 layout).
pub fn before_restart(updater: &Updater, how: Restart) -> Result<(), String> {
    board::before_restart(updater.slots(), how).map_err(|e| e.to_string())
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
