//! The DHCP page in a real browser (Debian's headless Chromium over
//! WebDriver) with real leases: glory-hole serves DHCP in the box's
//! namespace of a veth segment (`support::segment`), busybox `udhcpc` on
//! the household's side takes leases (one static, one named by the host
//! name the device sends), and the browser, outside, reaches the web UI
//! through `support::relay`. The page is screenshotted to
//! target/screenshots/ (and to docs/screenshots/ with UPDATE_SCREENSHOTS=1).
//! And setup's "My router can't change DNS" option, ticked in the browser.
//!
//! Skipped with a message only where the kernel refuses veth pairs (as the
//! DHCP tests are); Chromium missing is a failure.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};
use support::browser::Driver;
use support::segment::{BOX, Segment};
use support::web::{Client, PASSWORD};

const WEB_PORT: u16 = 8080;

fn config(dir: &Path) -> String {
    format!(
        r#"data_dir = {:?}
[dns]
listen = ["127.0.0.1:1053"]
upstreams = ["127.0.0.1:9"]
[web]
listen = ["127.0.0.1:{WEB_PORT}"]
[dhcp]
enabled = true
interface = "gh0"
range = ["192.168.7.100", "192.168.7.199"]
netmask = "255.255.255.0"
gateway = "192.168.7.1"
lease_time = "12h"
domain = "lan"
[[dhcp.static]]
mac = "02:00:00:00:00:09"
ip = "192.168.7.20"
name = "living-room-tv"
[[dhcp.static]]
mac = "02:00:00:00:00:0a"
ip = "192.168.7.21"
name = "printer"
"#,
        dir.join("data")
    )
}

/// A lease for `mac` from `udhcpc -q` (quits once bound), sending
/// `hostname` when given; waits for it to end bound.
fn lease(seg: &Segment, mac: &str, hostname: Option<&str>) {
    seg.set_mac(mac);
    let mut c = seg.udhcpc();
    c.args(["-q", "-n", "-s", "/bin/true"]);
    if let Some(h) = hostname {
        c.args(["-x", &format!("hostname:{h}")]);
    }
    let out = c.output().expect("busybox is installed (.ci/setup)");
    assert!(out.status.success(), "udhcpc for {mac}: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leases_page_shows_real_leases() {
    let dir = tempfile::tempdir().unwrap();
    let Some(seg) = Segment::new(dir.path()) else {
        return;
    };
    let mut server = seg.start_server(&config(dir.path()));
    server.wait_for_log("dhcp: serving on gh0", 1);
    lease(&seg, "02:00:00:00:00:09", None);
    lease(&seg, "02:00:00:00:00:01", Some("Kitchen-Radio"));
    lease(&seg, "02:00:00:00:00:02", Some("annas-laptop"));

    let base = format!("http://{}", support::relay::to_box(&seg, WEB_PORT).await);
    let mut c = Client::new(&base);
    assert_eq!(c.setup(PASSWORD).await.status, 200);
    // The leases as the server knows them, before the page is looked at.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c.get("/api/v1/dhcp/leases").await.json();
        let taken = r["leases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| !l["expires"].is_null())
            .count();
        if taken == 3 {
            assert_eq!(r["status"]["state"], "serving", "{r}");
            assert_eq!(r["status"]["address"], BOX, "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "{r}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let d = Driver::start().await;
    d.goto(&format!("{base}/login")).await;
    d.type_into("#password", PASSWORD).await;
    d.click("#login").await;
    d.wait_url("/").await;
    d.goto(&format!("{base}/dhcp")).await;
    let status = d.wait_text("#dhcp-status", "Serving on gh0").await;
    assert!(status.contains(&format!("as {BOX}")), "{status}");
    let rows = d.wait_text("#leases tbody", "kitchen-radio").await;
    for want in [
        "living-room-tv 192.168.7.20 02:00:00:00:00:09 static, ends in",
        "kitchen-radio 192.168.7.100 02:00:00:00:00:01 ends in",
        "annas-laptop 192.168.7.101 02:00:00:00:00:02 ends in",
        "printer 192.168.7.21 02:00:00:00:00:0a static, not taken yet",
    ] {
        assert!(rows.contains(want), "{want:?} not in:\n{rows}");
    }
    d.assert_no_console_errors().await;
    d.screenshot("dhcp-leases").await;
    d.cmd("DELETE", "", serde_json::json!({})).await;
    server.stop();
}

/// Setup's option in the browser: off and its fields hidden at first;
/// ticked, the fields show filled in; a bad range is refused at its field
/// and the owner's entries stay; corrected, `[dhcp]` is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_switches_the_dhcp_server_on() {
    let b = support::web::start(|_| {}).await;
    let d = Driver::start().await;
    d.goto(&format!("{}/setup", b.base())).await;
    let hidden = "return document.querySelector('[data-show-when=\"dhcp_enabled=on\"]').hidden;";
    assert_eq!(d.js(hidden).await, true, "the DHCP fields show while off");
    d.set_checked("#dhcp_enabled", true).await;
    assert_eq!(d.js(hidden).await, false, "ticking did not show the fields");
    let netmask = d
        .js("return document.getElementById('dhcp_netmask').value;")
        .await;
    assert!(
        netmask.as_str().is_some_and(|m| !m.is_empty()),
        "netmask not filled in: {netmask}"
    );
    // Before the refused post below, whose 422 the console logs.
    d.assert_no_console_errors().await;
    d.type_into("#password", PASSWORD).await;
    for (id, v) in [
        ("#dhcp_interface", "eth0"),
        ("#dhcp_range_first", "192.168.7.100"),
        ("#dhcp_range_last", "192.168.8.199"),
        ("#dhcp_netmask", "255.255.255.0"),
        ("#dhcp_gateway", "192.168.7.1"),
    ] {
        d.type_into(id, v).await;
    }
    d.click("#finish").await;
    let err = d
        .wait_text("[data-error-for=\"dhcp.range\"]", "dhcp.range")
        .await;
    assert!(err.contains("'192.168.8.199' is not a host"), "{err}");
    assert!(
        !b.config_path().exists(),
        "a refused setup wrote the config"
    );
    d.type_into("#password", PASSWORD).await;
    d.type_into("#dhcp_range_last", "192.168.7.199").await;
    d.click("#finish").await;
    d.wait_url("/setup/done").await;
    let dhcp = support::web::saved(&b).dhcp;
    assert!(dhcp.enabled);
    let range = dhcp.range.unwrap().map(|ip| ip.to_string());
    assert_eq!(range, ["192.168.7.100", "192.168.7.199"]);
    assert_eq!(dhcp.gateway.unwrap().to_string(), "192.168.7.1");
    d.cmd("DELETE", "", serde_json::json!({})).await;
}
