//! Device names in a real browser (Debian's headless Chromium over
//! WebDriver): the query log page of a household (`support::names`) shows
//! the names of its devices, from a local record and from the router,
//! beside their addresses, both in the rows the server wrote and in rows
//! the live tail adds. The page is screenshotted to target/screenshots/
//! (and to docs/screenshots/ with UPDATE_SCREENSHOTS=1).
//!
//! Chromium missing is a failure that says to run .ci/setup, never a skip.

mod support;

use glory_hole::testing::client::ask_from;
use std::time::Instant;
use support::browser::{Driver, PATIENCE, POLL};
use support::names::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_page_shows_device_names() {
    let h = start().await;
    // The router names the phone in the background; the page is loaded
    // once the table has its answer (a read is what asks the router).
    let phone = "192.168.1.42".parse().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while h.app.names.name(phone).is_none() {
        assert!(
            Instant::now() < deadline,
            "the router never named the phone"
        );
        tokio::time::sleep(POLL).await;
    }
    let d = Driver::start().await;
    d.goto(&format!("{}/login", h.base)).await;
    d.type_into("#password", support::web::PASSWORD).await;
    d.click("#login").await;
    d.wait_url("/").await;

    d.goto(&format!("{}/querylog", h.base)).await;
    // Rows the server wrote: the names with their addresses beside them.
    let rows = d.wait_text("table.log tbody", "phone.fritz.box").await;
    assert!(rows.contains("tv.lan 192.168.1.23"), "{rows}");
    assert!(rows.contains("phone.fritz.box 192.168.1.42"), "{rows}");
    let title = d
        .js("return document.querySelector('table.log .device').title;")
        .await;
    assert!(
        title.as_str().is_some_and(|t| t.contains("name from")),
        "{title}"
    );

    // A query the live tail brings in is named by the page's script: the
    // printer (127.0.0.2, a local record) asks over real DNS.
    let dns = h.app.dns_addrs[0];
    ask_from([127, 0, 0, 2].into(), dns, "firmware.printer.example", 1).await;
    let live = d
        .wait_text("table.log tbody", "firmware.printer.example")
        .await;
    assert!(live.contains("printer.lan 127.0.0.2"), "{live}");
    // The rows no longer change under the screenshot.
    d.set_checked("#live", false).await;
    d.assert_no_console_errors().await;
    d.screenshot("querylog-names").await;
    d.cmd("DELETE", "", serde_json::json!({})).await;
}
