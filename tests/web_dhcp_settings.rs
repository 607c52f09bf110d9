//! The DHCP server switched on from first-boot setup ("my router can't
//! change DNS") and edited on the Settings page, over real HTTP: what is
//! saved to the config file on disk, and bad values refused by name with
//! nothing written.

mod support;

use glory_hole::config::Config;
use serde_json::{Value, json};
use support::web::*;

fn household() -> Value {
    json!({"enabled": true, "interface": "eth0", "range_first": "192.168.7.100",
        "range_last": "192.168.7.150", "netmask": "255.255.255.0", "gateway": "192.168.7.1"})
}

async fn setup_client(b: &TestBox) -> Client {
    let mut c = Client::new(&b.base());
    let s = c.get("/api/v1/setup").await.json();
    c.csrf = Some(s["csrf"].as_str().unwrap().into());
    c
}

fn setup_body(dhcp: Value) -> Value {
    json!({"password": PASSWORD, "upstream": "quad9", "protocol": "plain", "dhcp": dhcp})
}

#[tokio::test]
async fn setup_with_dhcp_on_writes_the_dhcp_section() {
    let b = start(|_| {}).await;
    let mut c = setup_client(&b).await;
    // The proposal is off until the owner ticks the box.
    let offer = c.get("/api/v1/setup").await.json()["dhcp"].clone();
    assert_eq!(offer["enabled"], false, "{offer}");
    // Read from this machine's interface: whatever it holds, the range
    // proposed leaves out the gateway proposed.
    let ip = |k: &str| {
        offer[k]
            .as_str()
            .unwrap()
            .parse::<std::net::Ipv4Addr>()
            .ok()
    };
    if let (Some(first), Some(last), Some(gw)) =
        (ip("range_first"), ip("range_last"), ip("gateway"))
    {
        assert!(first <= last && !(first..=last).contains(&gw), "{offer}");
    }
    let r = c
        .send("POST", "/api/v1/setup", setup_body(household()))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let text = std::fs::read_to_string(b.config_path()).unwrap();
    assert!(text.contains("[dhcp]"), "{text}");
    let d = Config::load(&b.config_path()).unwrap().dhcp;
    assert!(d.enabled);
    assert_eq!(d.interface, "eth0");
    let range = d.range.unwrap().map(|ip| ip.to_string());
    assert_eq!(range, ["192.168.7.100", "192.168.7.150"]);
    assert_eq!(d.netmask.to_string(), "255.255.255.0");
    assert_eq!(d.gateway.unwrap().to_string(), "192.168.7.1");
    assert_eq!(d.lease_time.to_string(), "12h", "the default lease time");
}

#[tokio::test]
async fn a_bad_range_is_refused_by_name_and_nothing_is_written() {
    let b = start(|_| {}).await;
    let mut c = setup_client(&b).await;
    for (key, value, field) in [
        ("range_last", "192.168.7.300", "dhcp.range"),
        ("range_last", "192.168.8.150", "dhcp.range"),
        ("range_first", "192.168.7.200", "dhcp.range"),
        ("range_first", "", "dhcp.range"),
        ("gateway", "192.168.7.255", "dhcp.gateway"),
        ("netmask", "255.0.255.0", "dhcp.netmask"),
        ("interface", "eth 0", "dhcp.interface"),
    ] {
        let mut d = household();
        d[key] = json!(value);
        let r = c.send("POST", "/api/v1/setup", setup_body(d)).await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some(field)),
            "{key} = {value}: {}",
            r.body
        );
        assert!(
            r.json()["error"].as_str().unwrap().starts_with(field),
            "{}",
            r.body
        );
    }
    assert!(
        !b.config_path().exists(),
        "a refused setup wrote the config"
    );
    assert_eq!(c.get("/health").await.json()["setup_needed"], true);
}

#[tokio::test]
async fn setup_without_the_option_leaves_dhcp_off() {
    let b = start(|_| {}).await;
    let mut c = setup_client(&b).await;
    // The fields come filled in, the box not ticked.
    let mut d = household();
    d["enabled"] = json!(false);
    let r = c.send("POST", "/api/v1/setup", setup_body(d)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let saved = Config::load(&b.config_path()).unwrap();
    assert!(!saved.dhcp.enabled);
    assert_eq!(saved.dhcp, Config::default().dhcp, "fields saved while off");
}

/// The setup page without JavaScript: the option is there, unticked, and a
/// bad range comes back at its field with nothing written.
#[tokio::test]
async fn the_setup_page_offers_dhcp_off_and_shows_errors_at_the_field() {
    let b = start(|_| {}).await;
    let mut c = Client::new(&b.base());
    let page = c.get("/setup").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(body.contains("My router can't change DNS"), "{body}");
    assert!(
        body.contains("name=\"dhcp_enabled\" id=\"dhcp_enabled\">"),
        "the option is not off by default: {body}"
    );
    for name in ["dhcp_range_first", "dhcp_range_last", "dhcp_gateway"] {
        assert!(body.contains(&format!("name=\"{name}\"")), "{name}: {body}");
    }
    let token = body
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let form = format!(
        "_csrf={token}&password=correct+horse+battery&upstream=quad9&protocol=plain\
         &dhcp_enabled=on&dhcp_interface=eth0&dhcp_range_first=192.168.7.150&dhcp_range_last=192.168.7.100\
         &dhcp_netmask=255.255.255.0&dhcp_gateway=192.168.7.1"
    );
    let r = c
        .raw(
            "POST",
            "/setup",
            "application/x-www-form-urlencoded",
            form.into_bytes(),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains(
            "data-error-for=\"dhcp.range\">dhcp.range: &#39;192.168.7.150&#39; comes after"
        ),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("name=\"dhcp_enabled\" id=\"dhcp_enabled\" checked>"),
        "the owner's choice was lost"
    );
    assert!(
        !b.config_path().exists(),
        "a refused setup wrote the config"
    );
}

const STATIC: &str =
    "[dhcp]\n[[dhcp.static]]\nmac = \"aa:bb:cc:dd:ee:ff\"\nip = \"192.168.7.20\"\nname = \"tv\"\n";

#[tokio::test]
async fn the_settings_section_saves_the_config_and_refuses_bad_values_by_name() {
    let (b, mut c) = ready(|c| c.dhcp = Config::from_toml(STATIC, "t").unwrap().dhcp).await;
    let page = c.get("/settings").await.body;
    assert!(page.contains("id=\"dhcp-settings\""), "{page}");
    assert!(page.contains("Off: set"), "no status: {page}");
    let mut d = household();
    d["lease_time"] = json!("2h");
    d["domain"] = json!("home.arpa");
    let r = c.send("PUT", "/api/v1/dhcp/settings", d.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cfg = saved(&b);
    assert!(cfg.dhcp.enabled);
    let range = cfg.dhcp.range.unwrap().map(|ip| ip.to_string());
    assert_eq!(range, ["192.168.7.100", "192.168.7.150"]);
    assert_eq!(cfg.dhcp.lease_time.to_string(), "2h");
    assert_eq!(cfg.dhcp.domain.to_string(), "home.arpa");
    assert_eq!(cfg.dhcp.statics.len(), 1, "the static lease was dropped");
    assert_eq!(c.get("/api/v1/dhcp/settings").await.json(), d);

    for (key, value, field) in [
        ("range_first", "x", "dhcp.range"),
        ("range_last", "10.0.0.9", "dhcp.range"),
        ("gateway", "192.168.7.0", "dhcp.gateway"),
        ("gateway", "192.168.7.20", "dhcp.static"),
        ("netmask", "", "dhcp.netmask"),
        ("lease_time", "10s", "dhcp.lease_time"),
        ("lease_time", "soon", "dhcp.lease_time"),
        ("domain", "a..b", "dhcp.domain"),
        ("interface", "", "dhcp.interface"),
    ] {
        let mut bad = d.clone();
        bad[key] = json!(value);
        let r = c.send("PUT", "/api/v1/dhcp/settings", bad).await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some(field)),
            "{key} = {value}: {}",
            r.body
        );
    }
    assert_eq!(saved(&b), cfg, "a refused change altered the saved config");
}

/// Against a running `App`: switching the server on from Settings starts
/// it, and the section says why it is not serving.
#[tokio::test]
async fn the_settings_section_shows_why_the_server_is_not_serving() {
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), None);
    let app = glory_hole::app::App::start(config, dir.path().join("config.toml"))
        .await
        .unwrap();
    let (_base, mut c) = serve_set_up(&app).await;
    let mut d = household();
    d["interface"] = json!("gh-none0");
    let r = c.send("PUT", "/api/v1/dhcp/settings", d).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = c.get("/settings").await.body;
        if page.contains(
            "<strong>Not serving:</strong> dhcp.interface &#39;gh-none0&#39; has no address",
        ) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
