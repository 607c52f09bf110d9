//! Local records and forwarded zones over real HTTP, and a record added
//! through the API answering over DNS at once.

mod support;

use glory_hole::config::Config;
use serde_json::json;
use support::web::*;

#[tokio::test]
async fn local_records_and_forwarding() {
    let (b, mut c) = ready(|_| {}).await;
    let rec = json!({"name": "NAS.lan", "type": "A", "value": "192.168.1.10"});
    assert_eq!(
        c.send("POST", "/api/v1/local/records", rec.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        c.send(
            "POST",
            "/api/v1/local/records",
            json!({"name": "media.lan", "type": "cname", "value": "nas.lan"})
        )
        .await
        .status,
        200
    );
    for (body, field) in [
        (
            json!({"name": "x.lan", "type": "A", "value": "fd00::1"}),
            "value",
        ),
        (
            json!({"name": "x.lan", "type": "AAAA", "value": "1.2.3.4"}),
            "value",
        ),
        (
            json!({"name": "x.lan", "type": "CNAME", "value": "not a name"}),
            "value",
        ),
        (
            json!({"name": "bad name", "type": "A", "value": "1.2.3.4"}),
            "name",
        ),
        (
            json!({"name": "x.lan", "type": "WKS", "value": "1"}),
            "type",
        ),
    ] {
        let r = c.send("POST", "/api/v1/local/records", body).await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some(field)),
            "{}",
            r.body
        );
    }
    let cfg = saved(&b);
    assert_eq!(cfg.local.records.len(), 2);
    assert_eq!(cfg.local.records[0].name.0, "nas.lan");
    assert_eq!(
        c.get("/api/v1/local/records")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        c.send("DELETE", "/api/v1/local/records", rec.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        c.send("DELETE", "/api/v1/local/records", rec).await.status,
        404
    );

    let fwd = json!({"domains": ["home.arpa", "corp.example"], "upstreams": ["192.168.1.1:53"]});
    assert_eq!(
        c.send("POST", "/api/v1/forward", fwd.clone()).await.status,
        200
    );
    let r = c
        .send(
            "POST",
            "/api/v1/forward",
            json!({"domains": ["x.example"], "upstreams": ["nope"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("upstreams"))
    );
    let r = c
        .send(
            "POST",
            "/api/v1/forward",
            json!({"domains": [], "upstreams": ["1.1.1.1"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("domains"))
    );
    assert_eq!(saved(&b).forward.len(), 1);
    assert_eq!(
        c.get("/api/v1/forward").await.json()[0]["domains"][0],
        "home.arpa"
    );
    assert_eq!(
        c.send("DELETE", "/api/v1/forward", fwd.clone())
            .await
            .status,
        200
    );
    assert_eq!(c.send("DELETE", "/api/v1/forward", fwd).await.status, 404);
}

/// The real server behind the web UI: a change made through the API is
/// answered over DNS at once, without a restart.
#[tokio::test]
async fn a_local_record_added_over_the_api_answers_over_dns_at_once() {
    use glory_hole::testing::client;
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), None);
    let app = glory_hole::app::App::start(config, dir.path().join("config.toml"))
        .await
        .unwrap();
    let dns = app.dns_addrs[0];
    let addrs = glory_hole::web::serve(app.clone(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let mut c = Client::new(&format!("http://{}", addrs[0]));
    assert_eq!(c.setup(PASSWORD).await.status, 200);
    let r = c
        .send(
            "POST",
            "/api/v1/local/records",
            json!({"name": "printer.lan", "type": "A", "value": "192.168.1.77"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m = client::ask(dns, "printer.lan", 1).await;
    assert_eq!(client::answers(&m), vec!["192.168.1.77".to_string()]);
    assert!(
        Config::load(&dir.path().join("config.toml"))
            .unwrap()
            .local
            .records
            .len()
            == 1
    );
    // A value the DNS engine rejects is refused at the field, changing nothing.
    let r = c
        .send(
            "POST",
            "/api/v1/local/records",
            json!({"name": "mail.lan", "type": "MX", "value": "not-a-preference mail.lan"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("value")),
        "{}",
        r.body
    );
    assert_eq!(app.config().local.records.len(), 1);
    // Pages over the running server render; a missing log is said so.
    assert_eq!(c.get("/").await.status, 200);
    let s = c.get("/api/v1/stats").await.json();
    assert!(s["engine"]["cache_hits"].is_u64());
    let no_log_banner = c.get("/querylog").await.body.contains("id=\"no-log\"");
    assert_eq!(no_log_banner, s["summary"].is_null(), "{s}");
}
