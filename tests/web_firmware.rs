//! Firmware updates over the web API, against a real glory-hole whose
//! slots are files: a good bundle is written into slot B (compared byte
//! for byte) and armed for one trial by "activate"; bad bundles are
//! refused with their reason and leave slot A and the selector as they
//! were; only an admin may upload; one upload at a time; the trial boot's
//! health check commits a healthy slot and gives up a broken one with its
//! reason; the owner can roll back; a 64 MiB upload keeps memory flat.

mod support;

use glory_hole::update::selector::Selector;
use glory_hole::update::state::UpdateState;
use glory_hole::update::{Restart, SlotName};
use serde_json::Value;
use std::time::{Duration, Instant};
use support::firmware::{FwBox, admin, fat_image, fresh, start, streamed, upload};
use support::update::{BOARD, booted, bytes, dev_key, good, manifest, protected, signed};
use support::web::Client;

const MIB: u64 = 1 << 20;
const PATIENCE: Duration = Duration::from_secs(20);

fn prefix(path: &std::path::Path, len: usize) -> Vec<u8> {
    std::fs::read(path).unwrap()[..len].to_vec()
}

/// Polls `f` until it holds, failing after PATIENCE with `what`.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POSTs an action (`activate`, `rollback`) that must succeed; its message.
async fn act(c: &mut Client, action: &str) -> String {
    let r = c
        .send("POST", &format!("/api/v1/firmware/{action}"), Value::Null)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["message"].as_str().unwrap().to_string()
}

fn state(b: &FwBox) -> UpdateState {
    UpdateState::load(&b.slots.state).unwrap()
}

#[tokio::test]
async fn a_good_bundle_installs_into_b_and_activate_arms_one_trial() {
    let dir = tempfile::tempdir().unwrap();
    let b = fresh(dir.path(), 2 * MIB, |_| {}).await;
    let mut c = admin(&b).await;
    let before = protected(&b.slots);
    let f = c.get("/api/v1/firmware").await.json();
    assert_eq!(f["running"], "A");
    assert_eq!(f["slots"][0]["version"], "0.1.0");
    assert_eq!(f["slots"][1]["state"], "empty");
    assert_eq!(f["can_activate"], false);

    let (bundle, boot, root) = good();
    let len = bundle.len();
    let r = upload(&mut c, bundle).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["version"], "0.2.0");
    assert_eq!(j["signer"], "22e53d8b477efb79", "the dev key's fingerprint");
    assert_eq!(j["boards"], serde_json::json!([BOARD]));
    assert_eq!(j["slot"], "B");
    assert_eq!(j["bytes"], len as u64);
    assert_eq!(prefix(&b.slots.b.boot, boot.len()), boot);
    assert_eq!(prefix(&b.slots.b.root, root.len()), root);
    assert_eq!(protected(&b.slots), before, "slot A and the selector");

    let f = c.get("/api/v1/firmware").await.json();
    assert_eq!(f["slots"][1]["state"], "unverified");
    assert_eq!(f["slots"][1]["version"], "0.2.0");
    assert_eq!(f["last"]["outcome"], "installed");
    assert_eq!(f["progress"]["phase"], "done");
    assert_eq!(f["progress"]["written_bytes"], len as u64);
    assert_eq!(f["can_activate"], true);
    assert!(b.restarts().is_empty(), "no restart before activate");

    let config = b.app.config_file().to_path_buf();
    let kept = config.with_file_name(glory_hole::app::CONFIG_BEFORE_UPDATE);
    assert!(!kept.exists(), "no copy before activate");
    let message = act(&mut c, "activate").await;
    assert!(message.contains("slot B (version 0.2.0)"), "{message}");

    assert_eq!(
        Selector::read(&b.slots.selector).unwrap(),
        Selector {
            committed: SlotName::A,
            trial: SlotName::B
        }
    );
    until("one trial restart", || b.restarts() == vec![Restart::Trial]).await;
    // The owner's settings as they were, kept before the trial restart.
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        std::fs::read(&config).unwrap()
    );
    assert_eq!(state(&b).trial, Some(SlotName::B));
    assert_eq!(
        state(&b).b.unwrap().health,
        glory_hole::update::state::Health::Unverified
    );
}

#[tokio::test]
async fn bad_bundles_are_refused_with_their_reason_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = fresh(dir.path(), 2 * MIB, |_| {}).await;
    let mut c = admin(&b).await;
    let before = protected(&b.slots);
    let (boot, root) = (bytes(1, 5000), bytes(2, 9000));
    let p: &[(&str, &[u8])] = &[("boot", &boot), ("root", &root)];
    let good_one = signed(&dev_key(), &manifest("0.2.0", "0.1.0", &[BOARD], p), p);
    let mut forged = good_one.clone();
    // The signature's first byte: after the 46-byte header and the manifest.
    let n = u32::from_le_bytes(forged[10..14].try_into().unwrap()) as usize;
    forged[46 + n] ^= 1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad signature", forged, "signature invalid"),
        (
            "wrong board",
            signed(&dev_key(), &manifest("0.2.0", "0.1.0", &["x86_64"], p), p),
            "board rpi-arm64 not in [x86_64]",
        ),
        (
            "below minimum",
            signed(&dev_key(), &manifest("9.0.0", "8.0.0", &[BOARD], p), p),
            "version 0.1.0 below minimum 8.0.0",
        ),
        (
            "truncated",
            good_one[..good_one.len() / 2].to_vec(),
            "truncated at byte",
        ),
    ];
    for (what, bundle, reason) in cases {
        let r = upload(&mut c, bundle).await;
        assert_eq!(r.status, 422, "{what}: {}", r.body);
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(reason), "{what}: {error}");
        assert_eq!(
            protected(&b.slots),
            before,
            "{what}: slot A and the selector"
        );
        let f = c.get("/api/v1/firmware").await.json();
        assert_eq!(f["last"]["outcome"], "refused", "{what}");
        assert!(
            f["last"]["reason"].as_str().unwrap().contains(reason),
            "{what}: {f}"
        );
        assert_eq!(f["can_activate"], false, "{what}");
    }
    assert!(b.restarts().is_empty());
}

#[tokio::test]
async fn only_an_admin_may_see_upload_activate_or_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let b = fresh(dir.path(), 2 * MIB, |_| {}).await;
    let _admin = admin(&b).await;
    let before = protected(&b.slots);
    let mut anon = Client::new(&b.base());
    assert_eq!(anon.get("/api/v1/firmware").await.status, 401);
    assert_eq!(upload(&mut anon, good().0).await.status, 401);
    for path in ["/api/v1/firmware/activate", "/api/v1/firmware/rollback"] {
        assert_eq!(anon.send("POST", path, Value::Null).await.status, 401);
    }
    assert_eq!(protected(&b.slots), before);
    assert!(!b.slots.state.exists(), "nothing recorded");
    assert!(b.restarts().is_empty());
}

#[tokio::test]
async fn a_second_upload_while_one_runs_is_refused_with_409() {
    let dir = tempfile::tempdir().unwrap();
    let b = fresh(dir.path(), 2 * MIB, |_| {}).await;
    let mut c = admin(&b).await;
    let (bundle, _, _) = good();
    // The first upload sends half its bytes, then waits for the signal.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(2);
    let half = bundle.len() / 2;
    tx.send(Ok(bundle[..half].to_vec())).await.unwrap();
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let first = c
        .request("POST", "/api/v1/firmware")
        .header("content-type", "application/octet-stream")
        .header("content-length", bundle.len())
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let first = tokio::spawn(first);
    let mut seen = c.get("/api/v1/firmware").await.json();
    let deadline = Instant::now() + PATIENCE;
    while seen["progress"]["received_bytes"] != half as u64 {
        assert!(
            Instant::now() < deadline,
            "first upload never arrived: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = c.get("/api/v1/firmware").await.json();
    }
    assert_eq!(seen["progress"]["phase"], "receiving");

    let second = upload(&mut c, bundle.clone()).await;
    assert_eq!(second.status, 409, "{}", second.body);
    assert!(
        second.json()["error"]
            .as_str()
            .unwrap()
            .contains("under way")
    );

    tx.send(Ok(bundle[half..].to_vec())).await.unwrap();
    drop(tx);
    let r = first.await.unwrap().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        c.get("/api/v1/firmware").await.json()["slots"][1]["version"],
        "0.2.0"
    );
}

#[tokio::test]
async fn off_the_board_image_the_api_says_so() {
    let (_b, mut c) = support::web::ready(|_| {}).await;
    for (method, path) in [
        ("GET", "/api/v1/firmware"),
        ("POST", "/api/v1/firmware"),
        ("POST", "/api/v1/firmware/activate"),
        ("POST", "/api/v1/firmware/rollback"),
    ] {
        let r = c
            .raw(method, path, "application/octet-stream", vec![1, 2, 3])
            .await;
        assert_eq!(r.status, 503, "{method} {path}");
        assert_eq!(
            r.json()["error"],
            "firmware updates are only available on the board image"
        );
    }
    let page = c.get("/system").await.body;
    assert!(page.contains("only available on the board image"), "{page}");
}

/// Slot B written and its trial armed from A, as after "activate".
async fn trial_of_b(dir: &std::path::Path) -> FwBox {
    let on_a = fresh(dir, 2 * MIB, |c| c.querylog.enabled = false).await;
    let mut c = admin(&on_a).await;
    assert_eq!(upload(&mut c, good().0).await.status, 200);
    act(&mut c, "activate").await;
    until("the trial restart", || {
        on_a.restarts() == vec![Restart::Trial]
    })
    .await;
    on_a
}

/// A card laid out for the Pi 3 / Zero 2 W (GH-BOOT has `slot-a/` and
/// `slot-b/`): "activate" on the web writes `tryboot.txt` naming
/// `slot-b/`, and before the restart the slot's boot files are copied
/// out of its FAT (as `update::board` does on the card), without the
/// firmware files that only partition 1's own copy serves.
#[tokio::test]
async fn a_web_trial_on_a_pi_3_card_fills_the_slot_folder_first() {
    let dir = tempfile::tempdir().unwrap();
    let selector = dir.path().join("selector");
    std::fs::create_dir_all(selector.join("slot-a")).unwrap();
    std::fs::write(selector.join("slot-a/vmlinuz"), "kernel A").unwrap();
    std::fs::create_dir_all(selector.join("slot-b")).unwrap();
    std::fs::write(selector.join("slot-b/stale.dtb"), "from an old slot B").unwrap();
    let b = fresh(dir.path(), 2 * MIB, |_| {}).await;
    let mut c = admin(&b).await;
    let boot = fat_image(
        MIB,
        &[
            ("vmlinuz", b"kernel B"),
            ("cmdline.txt", b"root=PARTUUID=676c6f72-06 rootwait"),
            ("bcm2710-rpi-3-b.dtb", b"device tree B"),
            ("config.txt", b"arm_64bit=1"),
            ("start.elf", b"firmware B"),
            ("bootcode.bin", b"firmware B"),
        ],
    );
    let root = bytes(2, 100_000);
    let m = manifest(
        "0.2.0",
        "0.1.0",
        &[BOARD],
        &[("boot", &boot), ("root", &root)],
    );
    let bundle = signed(&dev_key(), &m, &[("boot", &boot), ("root", &root)]);
    assert_eq!(upload(&mut c, bundle).await.status, 200);
    assert_eq!(
        std::fs::read_to_string(selector.join("slot-b/stale.dtb")).unwrap(),
        "from an old slot B",
        "nothing copied before activate"
    );
    act(&mut c, "activate").await;
    until("one trial restart", || b.restarts() == vec![Restart::Trial]).await;

    let tryboot = std::fs::read_to_string(selector.join("tryboot.txt")).unwrap();
    assert!(tryboot.contains("os_prefix=slot-b/\n"), "{tryboot}");
    let config = std::fs::read_to_string(selector.join("config.txt")).unwrap();
    assert!(config.contains("os_prefix=slot-a/\n"), "{config}");
    let mut names: Vec<String> = std::fs::read_dir(selector.join("slot-b"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bcm2710-rpi-3-b.dtb",
            "cmdline.txt",
            "config.txt",
            "vmlinuz"
        ]
    );
    let read = |n: &str| std::fs::read_to_string(selector.join("slot-b").join(n)).unwrap();
    assert_eq!(read("vmlinuz"), "kernel B");
    assert_eq!(read("cmdline.txt"), "root=PARTUUID=676c6f72-06 rootwait");
    assert_eq!(read("bcm2710-rpi-3-b.dtb"), "device tree B");
    assert_eq!(
        std::fs::read_to_string(selector.join("slot-a/vmlinuz")).unwrap(),
        "kernel A",
        "the committed slot's folder is untouched"
    );
    assert_eq!(
        prefix(&b.slots.b.boot, boot.len()),
        boot,
        "slot B's FAT unchanged"
    );
}

#[tokio::test]
async fn a_healthy_trial_is_committed_and_the_owner_can_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let on_a = trial_of_b(dir.path()).await;
    // "The firmware" boots B once: a box started from slot B.
    let on_b = start(dir.path(), booted(&on_a.slots, SlotName::B), |_| {}).await;
    until("B committed by its health check", || {
        state(&on_b)
            .last
            .is_some_and(|l| l.outcome == glory_hole::update::state::Outcome::Committed)
    })
    .await;
    assert_eq!(
        Selector::read(&on_b.slots.selector).unwrap(),
        Selector::committed(SlotName::B)
    );
    assert_eq!(state(&on_b).trial, None);
    assert!(
        on_b.restarts().is_empty(),
        "a healthy trial does not restart"
    );

    let mut c = admin(&on_b).await;
    let f = c.get("/api/v1/firmware").await.json();
    assert_eq!(f["running"], "B");
    assert_eq!(f["boots_next"], "B");
    assert_eq!(f["last"]["outcome"], "committed");
    assert_eq!(
        f["can_rollback"], true,
        "A still holds its good system: {f}"
    );
    let message = act(&mut c, "rollback").await;
    assert!(message.contains("slot A (version 0.1.0)"), "{message}");
    assert_eq!(
        Selector::read(&on_b.slots.selector).unwrap(),
        Selector::committed(SlotName::A)
    );
    until("one normal restart", || {
        on_b.restarts() == vec![Restart::Normal]
    })
    .await;
    let last = c.get("/api/v1/firmware").await.json()["last"].clone();
    assert_eq!(last["outcome"], "rolled_back");
}

#[tokio::test]
async fn a_trial_that_fails_its_health_check_is_given_up_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let on_a = trial_of_b(dir.path()).await;
    // Slot B's system comes up without its web UI: the check must fail.
    let on_b = start(dir.path(), booted(&on_a.slots, SlotName::B), |c| {
        c.web.enabled = false;
        c.update.health_timeout = "2s".parse().unwrap();
    })
    .await;
    until("the restart into A", || {
        on_b.restarts() == vec![Restart::Normal]
    })
    .await;
    let s = state(&on_b);
    let last = s.last.unwrap();
    assert_eq!(last.outcome, glory_hole::update::state::Outcome::RolledBack);
    let reason = last.reason.unwrap();
    assert!(
        reason.contains("slot B failed its health check"),
        "{reason}"
    );
    assert!(reason.contains("web UI: not listening"), "{reason}");
    assert!(!reason.contains("DNS"), "DNS did answer: {reason}");
    assert_eq!(s.trial, None);
    assert_eq!(
        s.b.unwrap().health,
        glory_hole::update::state::Health::Invalid
    );
    assert_eq!(
        Selector::read(&on_b.slots.selector).unwrap(),
        Selector::committed(SlotName::A)
    );
}

/// VmRSS or VmHWM of this process, in KiB.
fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The server (and the client feeding it, in this same process) take a
/// 65 MiB bundle, generated while it is sent, with a peak RSS growth far
/// below the bundle: it is streamed, never buffered. Its own process under
/// nextest, so no other test's memory counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_upload_stays_within_16_mib() {
    let dir = tempfile::tempdir().unwrap();
    let b = fresh(dir.path(), 72 * MIB, |_| {}).await;
    let mut c = admin(&b).await;
    c.get("/api/v1/firmware").await;
    // Peak RSS from here on: "5" resets VmHWM to the current RSS.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let rss_before = status_kib("VmRSS:");
    let (body, len) = streamed("0.3.0", MIB, 64 * MIB);
    let r = c
        .request("POST", "/api/v1/firmware")
        .header("content-type", "application/octet-stream")
        .header("content-length", len)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let j: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(j["bytes"], len);
    assert!(len >= 65 * MIB);
    let grew_kib = status_kib("VmHWM:").saturating_sub(rss_before);
    eprintln!("peak RSS growth during a {len}-byte upload: {grew_kib} KiB");
    assert!(
        grew_kib < 16 * 1024,
        "peak RSS grew by {grew_kib} KiB during the upload"
    );
}
