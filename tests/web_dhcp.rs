//! The DHCP page and `GET /api/v1/dhcp/leases`: the server's status (off,
//! or why it is not serving) and its devices, behind login.

mod support;

use serde_json::json;
use support::web::{Client, PASSWORD, app_config, ready};

#[tokio::test]
async fn off_by_default_with_no_devices_and_only_after_login() {
    let (b, mut c) = ready(|_| {}).await;
    let r = c.get("/api/v1/dhcp/leases").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"status": {"state": "off"}, "leases": []}));
    let page = c.get("/dhcp").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Off: set"), "{}", page.body);
    assert!(page.body.contains("No devices yet."), "{}", page.body);
    let mut stranger = Client::new(&b.base());
    assert_eq!(stranger.get("/api/v1/dhcp/leases").await.status, 401);
}

#[tokio::test]
async fn why_it_is_not_serving_is_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = app_config(dir.path(), None);
    let text = "[dhcp]\nenabled = true\ninterface = \"gh-none0\"\n\
                range = [\"192.168.7.100\", \"192.168.7.120\"]\ngateway = \"192.168.7.1\"\n";
    config.dhcp = glory_hole::config::Config::from_toml(text, "t")
        .unwrap()
        .dhcp;
    let app = glory_hole::app::App::start(config, dir.path().join("config.toml"))
        .await
        .unwrap();
    let addrs = glory_hole::web::serve(app.clone(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let mut c = Client::new(&format!("http://{}", addrs[0]));
    assert_eq!(c.setup(PASSWORD).await.status, 200);
    let r = c.get("/api/v1/dhcp/leases").await.json();
    assert_eq!(r["status"]["state"], "failed", "{r}");
    let reason = r["status"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "dhcp.interface 'gh-none0' has no address in the network of dhcp.gateway 192.168.7.1/24"
        ),
        "{reason}"
    );
    let page = c.get("/dhcp").await.body;
    assert!(
        page.contains(
            "<strong>Not serving:</strong> dhcp.interface &#39;gh-none0&#39; has no address"
        ),
        "{page}"
    );
}
