//! The A/B installer behind `embedded_svc::ota::Ota`: takes a bundle's
//! bytes (`OtaUpdate` is a `Write`), writes its payloads into the slot that
//! is not running, and only then arms a one-shot trial boot of it.
//!
//! The order, and what each step guarantees:
//! 1. `initiate_update`: the update slot is the one not running, and not
//!    the one the selector boots next (else a trial is unfinished).
//! 2. `write`: the `bundle::Unpacker` checks signer, signature, board and
//!    versions before any payload byte reaches a partition; the payloads
//!    are routed (`boot`, `root`, or `boot-a`/`boot-b`... for one slot)
//!    and checked to fit, then streamed in `CHUNK`s while hashed.
//! 3. `finish`: every hash matched, the partitions are synced, their page
//!    cache dropped, and a read-back hashes the same.
//! 4. `activate`: state `trial = slot`, selector `[tryboot]` = slot, then
//!    the restart with the tryboot flag.
//! 5. After the trial boot: `mark_running_slot_valid` commits it;
//!    `mark_running_slot_invalid_and_reboot` gives it up; if it never came
//!    up, the bootloader starts the committed slot and `observe_boot`
//!    records the fall-back.
//!
//! The running slot's partitions and the selector's committed slot are
//! never written by an install. Memory: two `CHUNK` write buffers, one
//! read buffer, the manifest; never a payload.
//!
//! Not for: the bundle format (`bundle`), the health check or the board's
//! restart call (the caller passes `restart`).

use super::bundle::Piece;
use super::manifest::{Manifest, Policy};
use super::selector::Selector;
use super::state::{Health, Outcome, SlotRecord, UpdateState};
use super::{AcceptedKeys, CHUNK, Refusal, SlotName, Slots, Unpacker, keys};
use embedded_svc::io::{ErrorKind, ErrorType, Write};
use embedded_svc::ota::{FirmwareInfo, Ota, OtaUpdate, OtaUpdateFinished, Slot, SlotState};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom};
use std::path::PathBuf;

/// What the installer asks of the board when a slot switch needs a boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Boot the selector's committed slot.
    Normal,
    /// Boot the selector's `[tryboot]` slot once (`reboot "0 tryboot"`).
    Trial,
}

pub type RestartFn = Box<dyn FnMut(Restart) -> io::Result<()> + Send>;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("bundle refused: {0}")]
    Refused(#[from] Refusal),
    #[error("payload {0}: not a payload for slot {1} (boot, root, boot-{2}, root-{2})")]
    UnknownPayload(String, SlotName, &'static str),
    #[error("bundle has no {0} payload for slot {1}")]
    MissingPayload(&'static str, SlotName),
    #[error("bundle has two {0} payloads for slot {1}")]
    DuplicatePayload(&'static str, SlotName),
    #[error("payload {name}: {size} bytes do not fit {device} ({capacity} bytes)")]
    TooBig {
        name: String,
        size: u64,
        device: String,
        capacity: u64,
    },
    #[error("payload {name}: read back from {device} differs from what was written")]
    ReadBack { name: String, device: String },
    #[error("cannot install now: {0}")]
    Busy(String),
    #[error("the install already failed: {0}")]
    AlreadyFailed(String),
    #[error("the install was aborted")]
    Aborted,
    #[error("no other slot holds a good system to go back to")]
    NoGoodSlot,
    #[error("slot {0} holds no installed update to boot (upload a bundle first)")]
    NothingToActivate(SlotName),
    #[error("restart requested: slot {0} boots next")]
    Restarting(SlotName),
    #[error("{0} is not supported")]
    Unsupported(&'static str),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

impl embedded_svc::io::Error for InstallError {
    fn kind(&self) -> ErrorKind {
        match self {
            InstallError::Io { source, .. } => source.kind().into(),
            InstallError::Unsupported(_) => ErrorKind::Unsupported,
            InstallError::Busy(_) | InstallError::Restarting(_) | InstallError::Aborted => {
                ErrorKind::Other
            }
            _ => ErrorKind::InvalidData,
        }
    }
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> InstallError {
    move |source| InstallError::Io {
        what: what.to_string(),
        source,
    }
}

/// How a boot went, as seen by `observe_boot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootOutcome {
    /// No trial was pending.
    Normal,
    /// Running the trial slot: the health check decides.
    OnTrial(SlotName),
    /// A trial of `tried` was pending but the committed slot booted.
    FellBack { tried: SlotName, reason: String },
}

pub struct Installer {
    slots: Slots,
    keys: AcceptedKeys,
    policy: Policy,
    restart: RestartFn,
}

impl Installer {
    pub fn new(slots: Slots, keys: AcceptedKeys, policy: Policy, restart: RestartFn) -> Installer {
        Installer {
            slots,
            keys,
            policy,
            restart,
        }
    }

    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Arms the trial of the update slot that an earlier install wrote
    /// and read back (`Finished::activate`, for a caller that asks for the
    /// restart later, such as the System page's "Reboot into" button).
    pub fn activate_installed(&mut self) -> Result<(), InstallError> {
        let target = self.slots.update_slot();
        let written = self.state()?.slot(target).map(|r| r.health) == Some(Health::Unverified);
        if !written {
            return Err(InstallError::NothingToActivate(target));
        }
        arm_trial(self, target)
    }

    pub fn state(&self) -> Result<UpdateState, InstallError> {
        UpdateState::load(&self.slots.state).map_err(io_err("reading the update state"))
    }

    fn save(&self, state: &UpdateState) -> Result<(), InstallError> {
        state
            .save(&self.slots.state)
            .map_err(io_err("saving the update state"))
    }

    pub fn selector(&self) -> Result<Selector, InstallError> {
        Selector::read(&self.slots.selector).map_err(io_err("reading the boot selector"))
    }

    fn set_selector(&self, s: Selector) -> Result<(), InstallError> {
        s.write(&self.slots.selector)
            .map_err(io_err("writing the boot selector"))
    }

    fn restart(&mut self, how: Restart) -> Result<(), InstallError> {
        (self.restart)(how).map_err(io_err("restarting"))
    }

    /// Call once per boot: turns a pending trial whose slot did not come
    /// up into a recorded fall-back (the slot marked invalid, the reason
    /// kept for the System page).
    pub fn observe_boot(&mut self) -> Result<BootOutcome, InstallError> {
        let mut state = self.state()?;
        let running = self.slots.running;
        match state.trial {
            None => Ok(BootOutcome::Normal),
            Some(t) if t == running => Ok(BootOutcome::OnTrial(t)),
            Some(tried) => {
                let version = state.slot(tried).map(|r| r.version.clone());
                let reason = format!(
                    "slot {tried} did not come up healthy on its trial boot; slot {running} started again"
                );
                state.set_health(tried, Health::Invalid);
                state.trial = None;
                state.record(
                    Outcome::RolledBack,
                    version.as_deref(),
                    Some(reason.clone()),
                );
                self.save(&state)?;
                Ok(BootOutcome::FellBack { tried, reason })
            }
        }
    }

    /// Gives up the running slot: back to the other one if it holds a
    /// good system, `reason` kept as the last result, then a restart.
    pub fn give_up_running(&mut self, reason: &str) -> InstallError {
        match self.switch_back(reason) {
            Ok(other) => InstallError::Restarting(other),
            Err(e) => e,
        }
    }

    fn switch_back(&mut self, reason: &str) -> Result<SlotName, InstallError> {
        let running = self.slots.running;
        let other = running.other();
        let mut state = self.state()?;
        let on_trial = state.trial == Some(running);
        let other_good = state.slot(other).is_some_and(|r| r.health == Health::Valid);
        if !on_trial && !other_good {
            return Err(InstallError::NoGoodSlot);
        }
        let version = state.slot(running).map(|r| r.version.clone());
        state.set_health(running, Health::Invalid);
        state.trial = None;
        state.record(Outcome::RolledBack, version.as_deref(), Some(reason.into()));
        self.save(&state)?;
        if self.selector()?.committed != other {
            self.set_selector(Selector::committed(other))?;
        }
        self.restart(Restart::Normal)?;
        Ok(other)
    }

    /// The owner's rollback: boot the other slot from now on, if it holds
    /// a system that passed its health check.
    pub fn rollback(&mut self) -> Result<(), InstallError> {
        let other = self.slots.running.other();
        let state = self.state()?;
        if state.slot(other).map(|r| r.health) != Some(Health::Valid) {
            return Err(InstallError::NoGoodSlot);
        }
        let mut state = state;
        state.trial = None;
        // As for every roll-back, the version is the one left behind.
        let version = state.slot(self.slots.running).map(|r| r.version.clone());
        state.record(
            Outcome::RolledBack,
            version.as_deref(),
            Some(format!("asked for by the owner; slot {other} boots next")),
        );
        self.save(&state)?;
        self.set_selector(Selector::committed(other))?;
        self.restart(Restart::Normal)
    }

    fn slot_info(&self, slot: SlotName) -> Result<Slot, InstallError> {
        let state = self.state()?;
        let (slot_state, firmware) = match state.slot(slot) {
            Some(r) => (
                match r.health {
                    Health::Writing => SlotState::Unknown,
                    Health::Unverified => SlotState::Unverified,
                    Health::Valid => SlotState::Valid,
                    Health::Invalid => SlotState::Invalid,
                },
                Some(firmware_info(&r.version, r.built_unix_s, Some(&r.signer))),
            ),
            // A fresh card: the running slot is the image as flashed.
            None if slot == self.slots.running => (
                SlotState::Valid,
                Some(firmware_info(&self.policy.running_version, 0, None)),
            ),
            None => (SlotState::Unknown, None),
        };
        Ok(Slot {
            label: short(slot.label()),
            state: slot_state,
            firmware,
        })
    }

    /// The running slot's record, made from the policy when the card is
    /// fresh, so that a commit always has one to mark.
    fn running_record(&self, state: &mut UpdateState) {
        let running = self.slots.running;
        if state.slot(running).is_none() {
            *state.slot_mut(running) = Some(SlotRecord {
                health: Health::Valid,
                version: self.policy.running_version.clone(),
                built_unix_s: 0,
                signer: String::new(),
            });
        }
    }
}

fn firmware_info(version: &str, built_unix_s: u64, signer: Option<&str>) -> FirmwareInfo {
    FirmwareInfo {
        version: short(version),
        released: short(&super::manifest::utc(built_unix_s)),
        description: signer
            .filter(|s| !s.is_empty())
            .map(|s| short(&format!("signed by key {s}"))),
        signature: None,
        download_id: None,
    }
}

/// `s` cut to what fits.
fn short<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

impl ErrorType for Installer {
    type Error = InstallError;
}

impl Ota for Installer {
    type Update<'a> = SlotWriter<'a>;

    fn get_boot_slot(&self) -> Result<Slot, InstallError> {
        self.slot_info(self.selector()?.committed)
    }

    fn get_running_slot(&self) -> Result<Slot, InstallError> {
        self.slot_info(self.slots.running)
    }

    fn get_update_slot(&self) -> Result<Slot, InstallError> {
        self.slot_info(self.slots.update_slot())
    }

    fn is_factory_reset_supported(&self) -> Result<bool, InstallError> {
        Ok(false)
    }

    fn factory_reset(&mut self) -> Result<(), InstallError> {
        Err(InstallError::Unsupported("factory reset"))
    }

    fn initiate_update(&mut self) -> Result<SlotWriter<'_>, InstallError> {
        let target = self.slots.update_slot();
        let selector = self.selector()?;
        if selector.committed == target {
            return Err(InstallError::Busy(format!(
                "slot {target} is the slot that boots next; commit the running trial or restart first"
            )));
        }
        let unpacker = Unpacker::new(self.keys.clone(), Some(self.policy.clone()));
        Ok(SlotWriter {
            installer: self,
            target,
            unpacker,
            outputs: Vec::new(),
            failed: None,
        })
    }

    fn mark_running_slot_valid(&mut self) -> Result<(), InstallError> {
        let running = self.slots.running;
        let mut state = self.state()?;
        self.running_record(&mut state);
        let was_trial = state.trial == Some(running);
        if was_trial {
            // Selector first: if cut off here, the next boot runs this
            // slot with the trial still pending, and commits again.
            self.set_selector(Selector::committed(running))?;
            let version = state.slot(running).map(|r| r.version.clone());
            state.trial = None;
            state.record(Outcome::Committed, version.as_deref(), None);
        }
        if was_trial || state.slot(running).map(|r| r.health) != Some(Health::Valid) {
            state.set_health(running, Health::Valid);
            self.save(&state)?;
        }
        Ok(())
    }

    fn mark_running_slot_invalid_and_reboot(&mut self) -> InstallError {
        self.give_up_running("marked invalid by the health check")
    }
}

/// Which of the slot's partitions a payload goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Boot,
    Root,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Boot => "boot",
            Part::Root => "root",
        }
    }
}

/// Payload index -> the partition it is written to (None: for the other
/// slot, hashed and dropped). Every partition gets exactly one payload.
fn route(m: &Manifest, target: SlotName) -> Result<Vec<Option<Part>>, InstallError> {
    let mut routes = Vec::new();
    for p in &m.payloads {
        let (part, slot) = match p.name.split_once('-') {
            Some((part, slot)) => (part, Some(slot)),
            None => (p.name.as_str(), None),
        };
        let part = match part {
            "boot" => Part::Boot,
            "root" => Part::Root,
            _ => {
                return Err(InstallError::UnknownPayload(
                    p.name.clone(),
                    target,
                    target.lower(),
                ));
            }
        };
        routes.push(match slot {
            None => Some(part),
            Some(s) if s == target.lower() => Some(part),
            Some(s) if s == target.other().lower() => None,
            Some(_) => {
                return Err(InstallError::UnknownPayload(
                    p.name.clone(),
                    target,
                    target.lower(),
                ));
            }
        });
    }
    for part in [Part::Boot, Part::Root] {
        match routes.iter().filter(|r| **r == Some(part)).count() {
            0 => return Err(InstallError::MissingPayload(part.name(), target)),
            1 => {}
            _ => return Err(InstallError::DuplicatePayload(part.name(), target)),
        }
    }
    Ok(routes)
}

/// One partition being written.
struct Output {
    device: PathBuf,
    file: BufWriter<File>,
    payload: usize,
}

/// An install under way (`embedded_svc::ota::OtaUpdate`): write the
/// bundle's bytes in, in chunks of any size, then `finish` or `complete`.
pub struct SlotWriter<'a> {
    installer: &'a mut Installer,
    target: SlotName,
    unpacker: Unpacker,
    outputs: Vec<Output>,
    /// The first failure: every later write or finish repeats it.
    failed: Option<String>,
}

impl SlotWriter<'_> {
    /// The slot being written.
    pub fn target(&self) -> SlotName {
        self.target
    }

    /// The verified manifest, once the bundle's head has passed its checks.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.unpacker.manifest()
    }

    /// Bundle bytes taken so far, and the whole length once known.
    pub fn progress(&self) -> (u64, Option<u64>) {
        (self.unpacker.position(), self.unpacker.expected_len())
    }

    /// Takes bundle bytes; the first refusal or failure is recorded as
    /// the last result.
    fn take(&mut self, buf: &[u8]) -> Result<(), InstallError> {
        self.check_not_failed()?;
        let r = self.unpacker.push(buf, |piece| match piece {
            Piece::Verified { manifest, signer } => {
                self.outputs = open_slot(self.installer, self.target, manifest, &signer)?;
                Ok(())
            }
            Piece::Bytes { index, bytes } => {
                match self.outputs.iter_mut().find(|o| o.payload == index) {
                    Some(o) => std::io::Write::write_all(&mut o.file, bytes)
                        .map_err(io_err(o.device.display())),
                    None => Ok(()),
                }
            }
            Piece::End { .. } => Ok(()),
        });
        if let Err(e) = &r {
            self.fail(e);
        }
        r
    }

    fn check_not_failed(&self) -> Result<(), InstallError> {
        match &self.failed {
            Some(first) => Err(InstallError::AlreadyFailed(first.clone())),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: &InstallError) {
        if self.failed.is_some() {
            return;
        }
        self.failed = Some(e.to_string());
        let version = self.unpacker.manifest().map(|m| m.version.clone());
        if let Ok(mut state) = self.installer.state() {
            // A slot refused before its first byte keeps what it held.
            if state.slot(self.target).map(|r| r.health) == Some(Health::Writing) {
                state.set_health(self.target, Health::Invalid);
            }
            state.record(Outcome::Refused, version.as_deref(), Some(e.to_string()));
            let _ = self.installer.save(&state);
        }
    }

    /// Every payload in and hashed, the partitions synced and read back.
    fn verify_written(&mut self) -> Result<Manifest, InstallError> {
        self.check_not_failed()?;
        let manifest = self.unpacker.finish()?.clone();
        let mut buf = vec![0u8; CHUNK];
        for o in &mut self.outputs {
            let entry = &manifest.payloads[o.payload];
            let what = o.device.display().to_string();
            std::io::Write::flush(&mut o.file).map_err(io_err(&what))?;
            o.file.get_ref().sync_all().map_err(io_err(&what))?;
            drop_cached(o.file.get_ref());
            let mut f = File::open(&o.device).map_err(io_err(&what))?;
            if hash_prefix(&mut f, entry.size, &mut buf).map_err(io_err(&what))? != entry.sha256 {
                return Err(InstallError::ReadBack {
                    name: entry.name.clone(),
                    device: what,
                });
            }
        }
        let mut state = self.installer.state()?;
        state.set_health(self.target, Health::Unverified);
        state.record(Outcome::Installed, Some(&manifest.version), None);
        self.installer.save(&state)?;
        Ok(manifest)
    }
}

/// Once verified: route payloads, open and size the partitions, note the
/// slot as being written. Nothing is written to the slot here.
fn open_slot(
    installer: &mut Installer,
    target: SlotName,
    m: &Manifest,
    signer: &[u8; 32],
) -> Result<Vec<Output>, InstallError> {
    let routes = route(m, target)?;
    let devices = installer.slots.devices(target).clone();
    let running = installer.slots.devices(installer.slots.running);
    let mut outputs = Vec::new();
    for (payload, part) in routes.iter().enumerate() {
        let Some(part) = *part else { continue };
        let device = match part {
            Part::Boot => devices.boot.clone(),
            Part::Root => devices.root.clone(),
        };
        if device == running.boot || device == running.root {
            return Err(InstallError::Busy(format!(
                "{} belongs to the running slot",
                device.display()
            )));
        }
        let what = device.display().to_string();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&device)
            .map_err(io_err(&what))?;
        let capacity = file.seek(SeekFrom::End(0)).map_err(io_err(&what))?;
        file.seek(SeekFrom::Start(0)).map_err(io_err(&what))?;
        let entry = &m.payloads[payload];
        if entry.size > capacity {
            return Err(InstallError::TooBig {
                name: entry.name.clone(),
                size: entry.size,
                device: what,
                capacity,
            });
        }
        outputs.push(Output {
            device,
            file: BufWriter::with_capacity(CHUNK, file),
            payload,
        });
    }
    let mut state = installer.state()?;
    // The fall-back slot is known by version from now on.
    installer.running_record(&mut state);
    *state.slot_mut(target) = Some(SlotRecord {
        health: Health::Writing,
        version: m.version.clone(),
        built_unix_s: m.built_unix_s,
        signer: keys::fingerprint(signer),
    });
    installer.save(&state)?;
    Ok(outputs)
}

/// Asks the kernel to forget the device's cached pages, so the read-back
/// reads the medium rather than what was just handed to it.
fn drop_cached(f: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: advice on an open descriptor; no memory is touched.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

/// SHA-256 of the first `len` bytes of `f`.
fn hash_prefix(f: &mut File, len: u64, buf: &mut [u8]) -> io::Result<[u8; 32]> {
    let mut hash = Sha256::new();
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = f.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("ended {left} bytes early"),
            ));
        }
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hash.finalize().into())
}

impl ErrorType for SlotWriter<'_> {
    type Error = InstallError;
}

impl Write for SlotWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, InstallError> {
        self.take(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), InstallError> {
        Ok(())
    }
}

impl<'a> OtaUpdate for SlotWriter<'a> {
    type OtaUpdateFinished = Finished<'a>;

    fn finish(mut self) -> Result<Finished<'a>, InstallError> {
        match self.verify_written() {
            Ok(manifest) => Ok(Finished {
                installer: self.installer,
                target: self.target,
                version: manifest.version,
            }),
            Err(e) => {
                self.fail(&e);
                Err(e)
            }
        }
    }

    fn complete(self) -> Result<(), InstallError> {
        self.finish()?.activate()
    }

    fn abort(mut self) -> Result<(), InstallError> {
        self.fail(&InstallError::Aborted);
        Ok(())
    }
}

/// A slot written and read back, not yet armed for its trial.
pub struct Finished<'a> {
    installer: &'a mut Installer,
    target: SlotName,
    version: String,
}

impl Finished<'_> {
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn target(&self) -> SlotName {
        self.target
    }
}

impl ErrorType for Finished<'_> {
    type Error = InstallError;
}

impl OtaUpdateFinished for Finished<'_> {
    /// Arms the one-shot trial of the new slot and restarts into it. The
    /// committed slot stays what it was: a trial that fails falls back.
    fn activate(self) -> Result<(), InstallError> {
        arm_trial(self.installer, self.target)
    }
}

/// State `trial = target`, selector `[tryboot]` = target, then the
/// restart with the tryboot flag.
fn arm_trial(installer: &mut Installer, target: SlotName) -> Result<(), InstallError> {
    let committed = installer.selector()?.committed;
    if committed == target {
        return Err(InstallError::Busy(format!(
            "slot {target} became the committed slot during the install"
        )));
    }
    let mut state = installer.state()?;
    state.trial = Some(target);
    installer.save(&state)?;
    installer.set_selector(Selector {
        committed,
        trial: target,
    })?;
    installer.restart(Restart::Trial)
}
