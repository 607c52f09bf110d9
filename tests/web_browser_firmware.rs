//! The System page's firmware section in a real browser (headless
//! Chromium over WebDriver, `support::browser`, which kills Chromium's
//! process group when a test fails), against a real glory-hole whose
//! slots are files:
//!
//! - choose a bundle in the file field, watch the progress bar reach
//!   100 %, read the installed version and signer, click "Reboot into
//!   0.2.0", accept the question, and land on the waiting page while the
//!   box is asked for exactly one trial restart;
//! - drop a bundle on the section: the test hands the bundle's bytes to
//!   the page (base64 in the script), which builds a `File` and a
//!   `DataTransfer` holding it and dispatches real `dragover` and `drop`
//!   events on the slot table inside the section, as a drag from the
//!   desktop would (WebDriver cannot drag a file from outside the page);
//! - after the reboot, the page says "Now running 0.2.0" when the trial
//!   was committed, and "Rolled back to 0.1.0 because ..." with the
//!   reason kept on the data partition when the trial never came up;
//!   both states are made by real `App`s over the same files, booted from
//!   the slot the firmware would start (as `web_firmware` does).

mod support;

use glory_hole::update::state::{Outcome, UpdateState};
use glory_hole::update::{Restart, SlotName};
use std::time::Instant;
use support::browser::{Driver, PATIENCE, POLL};
use support::firmware::FwBox;
use support::update::{BOARD, booted, bytes, dev_key, manifest, signed};
use support::web::PASSWORD;

/// A browser logged in to `b`, on its System page.
async fn system_page(b: &FwBox) -> Driver {
    let base = b.base();
    let d = Driver::start().await;
    d.goto(&format!("{base}/login")).await;
    d.type_into("#password", PASSWORD).await;
    d.click("#login").await;
    d.wait_url("/").await;
    d.goto(&format!("{base}/system")).await;
    d
}

/// Slot B written and its trial armed from A through the API, then the
/// box that the firmware starts next: B on its trial, or A again when B's
/// trial never came up.
async fn after_trial(dir: &std::path::Path, boots: SlotName) -> FwBox {
    let on_a = support::firmware::fresh(dir, 2 << 20, |_| {}).await;
    let mut c = support::firmware::admin(&on_a).await;
    let r = support::firmware::upload(&mut c, support::update::good().0).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c
        .send("POST", "/api/v1/firmware/activate", serde_json::Value::Null)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let deadline = Instant::now() + PATIENCE;
    while on_a.restarts() != vec![Restart::Trial] {
        assert!(Instant::now() < deadline, "restarts: {:?}", on_a.restarts());
        tokio::time::sleep(POLL).await;
    }
    let slots = booted(&on_a.slots, boots);
    let next = support::firmware::start(dir, slots, |_| {}).await;
    // Its health check (B) or its look at the boot (A) decides on start.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let last = UpdateState::load(&next.slots.state).unwrap().last;
        if last.is_some_and(|l| l.outcome != Outcome::Installed) {
            return next;
        }
        assert!(Instant::now() < deadline, "the trial was never decided");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_dropped_on_the_section_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let b = support::firmware::fresh(dir.path(), 2 << 20, |_| {}).await;
    let _admin = support::firmware::admin(&b).await;
    let (boot, root) = (bytes(1, 30_000), bytes(2, 50_001));
    let m = manifest(
        "0.2.0",
        "0.1.0",
        &[BOARD],
        &[("boot", &boot), ("root", &root)],
    );
    let bundle = signed(&dev_key(), &m, &[("boot", &boot), ("root", &root)]);
    let d = system_page(&b).await;
    d.wait_text("#fw-slot-B", "empty").await;

    let dropped = d
        .js(&format!(
            "const b = Uint8Array.from(atob('{}'), c => c.charCodeAt(0));
             const dt = new DataTransfer();
             dt.items.add(new File([b], 'glory-hole-0.2.0-rpi-arm64.ghb'));
             const on = document.getElementById('fw-slots');
             const ev = (type) => new DragEvent(type, {{dataTransfer: dt, bubbles: true, cancelable: true}});
             const over = !on.dispatchEvent(ev('dragover'));
             const highlighted = document.getElementById('fw').classList.contains('over');
             const taken = !on.dispatchEvent(ev('drop'));
             return [over, highlighted, taken, dt.files[0].size];",
            base64(&bundle)
        ))
        .await;
    assert_eq!(
        dropped,
        serde_json::json!([true, true, true, bundle.len()]),
        "dragover and drop taken by the section, which is highlighted while over"
    );
    d.wait_text("#fw-status", "Installed 0.2.0 in slot B").await;
    assert_eq!(d.text("#fw-percent").await, "100 %");
    d.wait_text("#fw-slot-B", "unverified").await;
    assert_eq!(
        std::fs::read(&b.slots.b.boot).unwrap()[..boot.len()],
        boot[..],
        "slot B holds the dropped bundle's boot image"
    );
    d.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_committed_trial_the_page_says_now_running() {
    let dir = tempfile::tempdir().unwrap();
    let on_b = after_trial(dir.path(), SlotName::B).await;
    let d = system_page(&on_b).await;
    d.wait_text("#fw-last", "Now running 0.2.0").await;
    d.wait_text("#fw-slot-B", "running").await;
    d.screenshot("system-firmware-committed").await;
    d.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_trial_that_never_came_up_the_page_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let on_a_again = after_trial(dir.path(), SlotName::A).await;
    let d = system_page(&on_a_again).await;
    let said = d
        .wait_text("#fw-last", "Rolled back to 0.1.0 because")
        .await;
    assert!(
        said.contains(
            "because slot B did not come up healthy on its trial boot; slot A started again"
        ),
        "{said}"
    );
    d.wait_text("#fw-slot-B", "invalid").await;
    d.screenshot("system-firmware-rolled-back").await;
    d.assert_no_console_errors().await;
}

/// Standard base64, for handing bytes to a page script.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_shows_progress_and_result_then_reboot_waits() {
    let dir = tempfile::tempdir().unwrap();
    let b = support::firmware::fresh(dir.path(), 2 << 20, |_| {}).await;
    let _admin = support::firmware::admin(&b).await;
    let bundle = dir.path().join("glory-hole-0.2.0-rpi-arm64.ghb");
    std::fs::write(&bundle, support::update::good().0).unwrap();
    let base = b.base();

    let d = Driver::start().await;
    d.goto(&format!("{base}/login")).await;
    d.type_into("#password", PASSWORD).await;
    d.click("#login").await;
    d.wait_url("/").await;
    d.goto(&format!("{base}/system")).await;
    d.wait_text("#fw-slot-A", "0.1.0").await;
    d.wait_text("#fw-slot-B", "empty").await;

    d.on_element(
        "#fw-file",
        &[(
            "POST",
            "/value",
            serde_json::json!({"text": bundle.display().to_string()}),
        )],
    )
    .await;
    d.click("#fw-send").await;
    d.wait_text("#fw-status", "Installed 0.2.0 in slot B").await;
    assert_eq!(d.text("#fw-percent").await, "100 %");
    let bar = d
        .js("return document.getElementById('fw-progress').value;")
        .await;
    assert_eq!(bar, 100);
    assert_eq!(d.text("#fw-version").await, "0.2.0");
    assert_eq!(d.text("#fw-signer").await, "22e53d8b477efb79");
    assert_eq!(d.text("#fw-boards").await, "rpi-arm64");
    d.wait_text("#fw-slot-B", "unverified").await;
    assert_eq!(d.text("#fw-activate").await, "Reboot into 0.2.0");
    d.screenshot("system-firmware-installed").await;
    assert!(b.restarts().is_empty(), "nothing restarts before the click");

    d.click("#fw-activate").await;
    // The page asks first; accept as the owner would.
    let deadline = Instant::now() + PATIENCE;
    while d
        .try_cmd("POST", "/alert/accept", serde_json::json!({}))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "no confirmation was asked");
        tokio::time::sleep(POLL).await;
    }
    d.wait_text("#fw-wait-text", "Rebooting into 0.2.0").await;
    let deadline = Instant::now() + PATIENCE;
    while b.restarts() != vec![Restart::Trial] {
        assert!(Instant::now() < deadline, "restarts: {:?}", b.restarts());
        tokio::time::sleep(POLL).await;
    }
    d.screenshot("system-firmware-rebooting").await;
    d.assert_no_console_errors().await;
}
