//! The System page's firmware section in a real browser (headless
//! Chromium over WebDriver, `support::browser`), against a real
//! glory-hole whose slots are files: choose a bundle in the file field,
//! watch the progress bar reach 100 %, read the installed version and
//! signer, click "Reboot into 0.2.0", accept the question, and land on the
//! waiting page while the box is asked for exactly one trial restart.

mod support;

use glory_hole::update::Restart;
use std::time::Instant;
use support::browser::{Driver, PATIENCE, POLL};
use support::web::PASSWORD;

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
