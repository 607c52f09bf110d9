//! Shared by the update tests: the development key, bundles made from
//! given or generated payloads, and slots as plain files in a directory.
#![allow(dead_code)]

use ed25519_dalek::SigningKey;
use glory_hole::testing::Rng;
use glory_hole::update::bundle;
use glory_hole::update::installer::RestartFn;
use glory_hole::update::keys;
use glory_hole::update::selector::Selector;
use glory_hole::update::slots::SlotDevices;
use glory_hole::update::{
    AcceptedKeys, InstallError, Installer, Manifest, PayloadEntry, Policy, Restart, SlotName, Slots,
};
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub const BOARD: &str = "rpi-arm64";
pub const RUNNING: &str = "0.1.0";

pub fn dev_key() -> SigningKey {
    keys::read_signing_key(&Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/dev.key")).unwrap()
}

pub fn accepted() -> AcceptedKeys {
    AcceptedKeys::from_files(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/dev.pub")]).unwrap()
}

pub fn policy() -> Policy {
    Policy {
        board: BOARD.into(),
        running_version: RUNNING.into(),
    }
}

pub fn manifest(version: &str, min: &str, boards: &[&str], payloads: &[(&str, &[u8])]) -> Manifest {
    Manifest {
        product: "glory-hole".into(),
        boards: boards.iter().map(|b| b.to_string()).collect(),
        version: version.into(),
        built_unix_s: 1_796_000_000,
        min_version: min.into(),
        payloads: payloads
            .iter()
            .map(|(n, b)| PayloadEntry::measure(n, &mut &b[..]).unwrap())
            .collect(),
    }
}

/// A bundle of `payloads` signed by `key`.
pub fn signed(key: &SigningKey, m: &Manifest, payloads: &[(&str, &[u8])]) -> Vec<u8> {
    let mut sources: Vec<&[u8]> = payloads.iter().map(|p| p.1).collect();
    let mut readers: Vec<&mut dyn Read> = sources.iter_mut().map(|s| s as &mut dyn Read).collect();
    let mut out = Vec::new();
    bundle::write(&mut out, key, m, &mut readers).unwrap();
    out
}

/// Random-looking payload bytes, the same for the same seed.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    Generated::new(seed, len as u64)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The standard good bundle: version 0.2.0 (minimum 0.1.0) for BOARD,
/// with its `boot` and `root` payloads.
pub fn good() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let boot = bytes(1, 300_000);
    let root = bytes(2, 700_001);
    let m = manifest(
        "0.2.0",
        "0.1.0",
        &[BOARD],
        &[("boot", &boot), ("root", &root)],
    );
    let b = signed(&dev_key(), &m, &[("boot", &boot), ("root", &root)]);
    (b, boot, root)
}

/// Payload bytes made on the fly: a bundle of any size without holding it.
pub struct Generated {
    rng: Rng,
    left: u64,
}

impl Generated {
    pub fn new(seed: u64, len: u64) -> Generated {
        Generated {
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            left: len,
        }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize) / 8 * 8;
        let n = if n == 0 {
            buf.len().min(self.left as usize)
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            let v = self.rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Slots A and B as files of `capacity` bytes in `dir`, slot A (running)
/// filled with its own content, B with zeros, the selector committing A.
pub fn file_slots(dir: &Path, running: SlotName, capacity: u64) -> Slots {
    let slots = slots_in(dir, running);
    for (i, p) in [&slots.a.boot, &slots.a.root, &slots.b.boot, &slots.b.root]
        .into_iter()
        .enumerate()
    {
        let f = std::fs::File::create(p).unwrap();
        f.set_len(capacity).unwrap();
        if i < 2 {
            let content = bytes(100 + i as u64, 4096);
            std::fs::write(p, &content).unwrap();
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(capacity)
                .unwrap();
        }
    }
    Selector::committed(SlotName::A)
        .write(&slots.selector)
        .unwrap();
    slots
}

/// The paths `file_slots` uses in `dir`, without touching the files.
pub fn slots_in(dir: &Path, running: SlotName) -> Slots {
    let devices = |s: &str| SlotDevices {
        boot: dir.join(format!("{s}-boot.img")),
        root: dir.join(format!("{s}-root.img")),
    };
    Slots {
        a: devices("a"),
        b: devices("b"),
        selector: dir.join("selector/autoboot.txt"),
        state: dir.join("data/update.json"),
        running,
    }
}

/// The same slots seen from a system booted from `running`.
pub fn booted(slots: &Slots, running: SlotName) -> Slots {
    Slots {
        running,
        ..slots.clone()
    }
}

/// An installer over `slots` whose restarts are only recorded.
pub fn installer(slots: Slots) -> (Installer, Arc<Mutex<Vec<Restart>>>) {
    let restarts = Arc::new(Mutex::new(Vec::new()));
    let seen = restarts.clone();
    let restart: RestartFn = Box::new(move |r| {
        seen.lock().unwrap().push(r);
        Ok(())
    });
    (
        Installer::new(slots, accepted(), policy(), restart),
        restarts,
    )
}

/// Every byte a test must find unchanged: slot A's partitions and the
/// selector.
pub fn protected(slots: &Slots) -> Vec<Vec<u8>> {
    [&slots.a.boot, &slots.a.root, &slots.selector]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// Feeds `bundle` to a new install in `chunk`-byte writes, then finishes
/// and activates it.
pub fn install(inst: &mut Installer, bundle: &[u8], chunk: usize) -> Result<(), InstallError> {
    use embedded_svc::io::Write;
    use embedded_svc::ota::{Ota, OtaUpdate};
    let mut update = inst.initiate_update()?;
    for c in bundle.chunks(chunk) {
        update.write_all(c)?;
    }
    update.complete()
}
