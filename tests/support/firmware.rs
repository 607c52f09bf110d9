//! A real glory-hole (`App`: DNS and web UI on loopback ports) whose
//! firmware slots are files in a temp dir (`update::file_slots`), with
//! the development key accepted and restarts counted instead of run; and
//! a bundle streamed as it is generated, for uploads of any size.
#![allow(dead_code)]

use super::update::{Generated, dev_key, file_slots, manifest};
use super::web::{Client, PASSWORD};
use glory_hole::app::App;
use glory_hole::config::{Config, SlotPaths};
use glory_hole::update::{PayloadEntry, Restart, SlotName, Slots, bundle};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct FwBox {
    pub app: Arc<App>,
    pub slots: Slots,
    pub restarts: Arc<Mutex<Vec<Restart>>>,
}

impl FwBox {
    pub fn base(&self) -> String {
        format!("http://{}", self.app.web_addrs.get().unwrap()[0])
    }

    pub fn restarts(&self) -> Vec<Restart> {
        self.restarts.lock().unwrap().clone()
    }
}

/// The config of a box over the slots in `dir`, running `running`.
pub fn config(dir: &Path, running: SlotName) -> Config {
    let mut cfg = super::web::app_config(&dir.join("data"), None);
    cfg.web.enabled = true;
    cfg.web.listen = vec!["127.0.0.1:0".parse().unwrap()];
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/dev.pub"),
        keys.join("dev.pub"),
    )
    .unwrap();
    let slot = |s: &str| SlotPaths {
        boot: dir.join(format!("{s}-boot.img")),
        root: dir.join(format!("{s}-root.img")),
    };
    cfg.update.slot_a = Some(slot("a"));
    cfg.update.slot_b = Some(slot("b"));
    cfg.update.selector_dir = dir.join("selector");
    cfg.update.keys_dir = keys;
    cfg.update.running = Some(running);
    cfg
}

/// Fresh slot files of `capacity` bytes in `dir` (slot A running and
/// committed), then a box over them.
pub async fn fresh(dir: &Path, capacity: u64, edit: impl FnOnce(&mut Config)) -> FwBox {
    let slots = file_slots(dir, SlotName::A, capacity);
    start(dir, slots, edit).await
}

/// A box over the existing `slots` in `dir`, booted from `slots.running`.
pub async fn start(dir: &Path, slots: Slots, edit: impl FnOnce(&mut Config)) -> FwBox {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cfg = config(dir, slots.running);
    edit(&mut cfg);
    let restarts = Arc::new(Mutex::new(Vec::new()));
    let seen = restarts.clone();
    let app = App::start_on(
        cfg,
        dir.join("data/config.toml"),
        Arc::new(move |how| {
            seen.lock().unwrap().push(how);
            Ok(())
        }),
    )
    .await
    .unwrap();
    FwBox {
        app,
        slots,
        restarts,
    }
}

/// A logged-in admin of `b` (setup done on a fresh box, login otherwise).
pub async fn admin(b: &FwBox) -> Client {
    let mut c = Client::new(&b.base());
    let r = c.setup(PASSWORD).await;
    if r.status != 200 {
        let r = c.login(PASSWORD).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    c
}

/// `POST /api/v1/firmware` with `bundle` as the body.
pub async fn upload(c: &mut Client, bundle: Vec<u8>) -> super::web::Resp {
    c.raw(
        "POST",
        "/api/v1/firmware",
        "application/octet-stream",
        bundle,
    )
    .await
}

/// A bundle of version `version` with payloads of `boot` and `root`
/// bytes generated as the body is sent: never held whole.
pub fn streamed(version: &str, boot: u64, root: u64) -> (reqwest::Body, u64) {
    let entries = vec![
        PayloadEntry::measure("boot", &mut Generated::new(41, boot)).unwrap(),
        PayloadEntry::measure("root", &mut Generated::new(42, root)).unwrap(),
    ];
    let mut m = manifest(version, "0.1.0", &[super::update::BOARD], &[]);
    m.payloads = entries;
    let len = bundle_len(&m);
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    std::thread::spawn(move || {
        let mut sink = Sender(tx);
        let mut boot = Generated::new(41, boot);
        let mut root = Generated::new(42, root);
        let mut readers: Vec<&mut dyn std::io::Read> = vec![&mut boot, &mut root];
        bundle::write(&mut sink, &dev_key(), &m, &mut readers).unwrap();
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    (reqwest::Body::wrap_stream(stream), len)
}

fn bundle_len(m: &glory_hole::update::Manifest) -> u64 {
    let manifest = postcard::to_allocvec(m).unwrap().len() as u64;
    110 + manifest + m.payload_bytes()
}

/// A `Write` that hands each write to the HTTP body as a chunk.
struct Sender(tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>);

impl std::io::Write for Sender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(buf.to_vec()))
            .map_err(|_| std::io::Error::other("the upload stopped reading"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A FAT image of `len` bytes holding `files` at its top level and an
/// `overlays/` folder, as a slot's boot partition (made by `fatfs`).
pub fn fat_image(len: u64, files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut disk = std::io::Cursor::new(vec![0u8; len as usize]);
    fatfs::format_volume(&mut disk, fatfs::FormatVolumeOptions::new()).unwrap();
    disk.set_position(0);
    {
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).unwrap();
        for (name, bytes) in files {
            let mut f = fs.root_dir().create_file(name).unwrap();
            f.write_all(bytes).unwrap();
        }
        fs.root_dir().create_dir("overlays").unwrap();
    }
    disk.into_inner()
}
