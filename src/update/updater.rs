//! The running box's one updater, shared by the web API and the trial
//! boot's health check: the installer behind a lock, what the upload under
//! way has done so far (for the System page's progress bar), and the
//! restart the installer asked for, which the caller carries out once its
//! answer is sent (the board's reboot, or a test's counter).
//!
//! An upload is fed chunk by chunk as it arrives (`install`), on a
//! blocking thread; only one at a time (`begin_upload`).
//!
//! Not for: checking or writing bundles (`installer`), deciding health
//! (`health`), or where the slots are (`app`).

use super::installer::{Finished, RestartFn};
use super::selector::Selector;
use super::state::UpdateState;
use super::{AcceptedKeys, InstallError, Installer, Policy, Restart, SlotName, Slots};
use embedded_svc::io::Write;
use embedded_svc::ota::{Ota, OtaUpdate};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The answer where no slots are known (`web.appliance = false` and no
/// `[update] slot_a` / `slot_b`).
pub const UNAVAILABLE: &str = "firmware updates are only available on the board image";

/// Bytes of a bundle before its payloads, at most: header, the largest
/// manifest, signature (docs/update.md).
const MAX_HEAD: u64 = 110 + super::bundle::MAX_MANIFEST as u64;

pub struct Updater {
    installer: Mutex<Installer>,
    /// The installer's slots and policy, readable while an upload holds it.
    slots: Slots,
    policy: Policy,
    /// Set by the installer's restart callback, taken by the caller.
    requested: Arc<Mutex<Option<Restart>>>,
    uploading: AtomicBool,
    phase: AtomicU8,
    received: AtomicU64,
    written: AtomicU64,
    /// The bundle's whole length once its head was read; 0 until then.
    total: AtomicU64,
    max_bundle: u64,
}

/// Where the upload under way (or the last one) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Idle,
    /// Bytes are arriving and being written.
    Receiving,
    /// Every byte is in: syncing and reading the slot back.
    Verifying,
    Done,
    Failed,
}

const PHASES: [Phase; 5] = [
    Phase::Idle,
    Phase::Receiving,
    Phase::Verifying,
    Phase::Done,
    Phase::Failed,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub phase: Phase,
    /// Bundle bytes received from the uploader.
    pub received_bytes: u64,
    /// Bundle bytes the installer has taken (checked, written or hashed).
    pub written_bytes: u64,
    /// The bundle's length, once its head was read.
    pub total_bytes: Option<u64>,
}

/// What an upload installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Installed {
    pub version: String,
    /// Fingerprint of the key that signed it (`keys::fingerprint`).
    pub signer: String,
    pub boards: Vec<String>,
    pub slot: SlotName,
    pub bytes: u64,
}

/// Why an upload did not install.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error("upload cut off at byte {at}: {reason}")]
    Cut { at: u64, reason: String },
    #[error("the bundle is larger than the slots can take ({limit} bytes)")]
    TooLarge { limit: u64 },
}

/// Held while an upload runs; dropping it lets the next one in.
pub struct UploadTicket<'a>(&'a Updater);

impl Drop for UploadTicket<'_> {
    fn drop(&mut self) {
        self.0.uploading.store(false, Ordering::Release);
    }
}

impl Updater {
    pub fn new(slots: Slots, keys: AcceptedKeys, policy: Policy) -> Updater {
        let requested = Arc::new(Mutex::new(None));
        let seen = requested.clone();
        let restart: RestartFn = Box::new(move |how| {
            *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(how);
            Ok(())
        });
        let max_bundle = max_bundle(&slots);
        Updater {
            installer: Mutex::new(Installer::new(slots.clone(), keys, policy.clone(), restart)),
            slots,
            policy,
            requested,
            uploading: AtomicBool::new(false),
            phase: AtomicU8::new(0),
            received: AtomicU64::new(0),
            written: AtomicU64::new(0),
            total: AtomicU64::new(0),
            max_bundle,
        }
    }

    /// The installer, for reading state or a one-off call (activate,
    /// rollback, the health check's verdict). Uploads hold it throughout.
    pub fn installer(&self) -> MutexGuard<'_, Installer> {
        self.installer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The restart the installer asked for since the last call, if any.
    pub fn take_restart(&self) -> Option<Restart> {
        self.requested
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The largest bundle that can fit: both slots' partitions (a bundle
    /// may carry a boot and root image per slot) and the head.
    pub fn max_bundle(&self) -> u64 {
        self.max_bundle
    }

    /// The one upload allowed at a time, or None while another runs.
    pub fn begin_upload(&self) -> Option<UploadTicket<'_>> {
        self.uploading
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        self.received.store(0, Ordering::Relaxed);
        self.written.store(0, Ordering::Relaxed);
        self.total.store(0, Ordering::Relaxed);
        self.set_phase(Phase::Receiving);
        Some(UploadTicket(self))
    }

    /// Counts bytes received; false once past `max_bundle`.
    pub fn received(&self, n: usize) -> bool {
        self.received.fetch_add(n as u64, Ordering::Relaxed) + n as u64 <= self.max_bundle
    }

    pub fn progress(&self) -> Progress {
        let total = self.total.load(Ordering::Relaxed);
        Progress {
            phase: PHASES[self.phase.load(Ordering::Relaxed) as usize],
            received_bytes: self.received.load(Ordering::Relaxed),
            written_bytes: self.written.load(Ordering::Relaxed),
            total_bytes: (total > 0).then_some(total),
        }
    }

    fn set_phase(&self, p: Phase) {
        let i = PHASES.iter().position(|x| *x == p).unwrap_or(0);
        self.phase.store(i as u8, Ordering::Relaxed);
    }

    /// Installs the bundle whose bytes `next` yields, chunk by chunk (None
    /// at its end, `Err` when the upload broke off), into the update slot.
    /// Blocking: run it off the async workers. The caller holds the
    /// `UploadTicket`.
    pub fn install(
        &self,
        next: &mut dyn FnMut() -> Option<Result<bytes::Bytes, UploadError>>,
    ) -> Result<Installed, UploadError> {
        let r = self.install_locked(&mut self.installer(), next);
        self.set_phase(if r.is_ok() {
            Phase::Done
        } else {
            Phase::Failed
        });
        r
    }

    fn install_locked(
        &self,
        installer: &mut Installer,
        next: &mut dyn FnMut() -> Option<Result<bytes::Bytes, UploadError>>,
    ) -> Result<Installed, UploadError> {
        let mut update = installer.initiate_update()?;
        while let Some(chunk) = next() {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    // Kept as the last result, like any refusal.
                    let _ = update.abort();
                    return Err(e);
                }
            };
            update.write_all(&chunk)?;
            let (taken, total) = update.progress();
            self.written.store(taken, Ordering::Relaxed);
            self.total.store(total.unwrap_or(0), Ordering::Relaxed);
        }
        self.set_phase(Phase::Verifying);
        let boards = update
            .manifest()
            .map(|m| m.boards.clone())
            .unwrap_or_default();
        let bytes = update.progress().0;
        let finished: Finished<'_> = update.finish()?;
        let (version, slot) = (finished.version().to_string(), finished.target());
        drop(finished);
        let signer = installer
            .state()?
            .slot(slot)
            .map(|r| r.signer.clone())
            .unwrap_or_default();
        Ok(Installed {
            version,
            signer,
            boards,
            slot,
            bytes,
        })
    }

    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The saved update state (slots, trial, last result), read without
    /// waiting for an upload (the file is only ever replaced whole).
    pub fn state(&self) -> std::io::Result<UpdateState> {
        UpdateState::load(&self.slots.state)
    }

    /// The boot selector as the bootloader will read it.
    pub fn selector(&self) -> std::io::Result<Selector> {
        Selector::read(&self.slots.selector)
    }
}

fn max_bundle(slots: &Slots) -> u64 {
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| device_len(p, m.len()));
    let slot = |d: &super::slots::SlotDevices| size(&d.boot) + size(&d.root);
    MAX_HEAD + slot(&slots.a) + slot(&slots.b)
}

/// A block device's metadata says 0 bytes: seek to its end instead.
fn device_len(p: &std::path::Path, meta_len: u64) -> u64 {
    if meta_len > 0 {
        return meta_len;
    }
    use std::io::Seek;
    std::fs::File::open(p)
        .and_then(|mut f| f.seek(std::io::SeekFrom::End(0)))
        .unwrap_or(0)
}
