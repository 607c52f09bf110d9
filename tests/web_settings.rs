//! Settings over real HTTP, applied live and saved (previous file kept), and
//! what `App::apply` refuses.

mod support;

use glory_hole::web::Backend;
use serde_json::json;
use support::web::*;

#[tokio::test]
async fn settings_apply_live_and_keep_the_previous_file() {
    let (b, mut c) = ready(|_| {}).await;
    let s = c.get("/api/v1/settings").await.json();
    assert_eq!(s["upstreams"][0], "9.9.9.9:53");
    let r = c
        .send("PUT", "/api/v1/settings", json!({"upstreams": ["192.168.1.1:53", "tls://9.9.9.9:853#dns.quad9.net"], "cache_memory_mib": 8,
            "blocked_response": "nxdomain", "retention_days": 7, "flush_interval": "5s", "hide_domains": true, "anonymize_clients": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cfg = saved(&b);
    assert_eq!(cfg.dns.upstreams.len(), 2);
    assert_eq!((cfg.cache.memory_mib, cfg.querylog.retention_days), (8, 7));
    assert_eq!(cfg.filter.blocked_response.to_string(), "nxdomain");
    assert!(cfg.querylog.hide_domains && cfg.querylog.anonymize_clients);
    assert_eq!(
        *b.backend.config(),
        cfg,
        "the running config was not swapped"
    );
    assert!(
        b.dir.path().join("config.toml.prev").exists(),
        "previous version not kept"
    );
    for (body, field) in [
        (json!({"upstreams": []}), "upstreams"),
        (json!({"upstreams": ["1.1.1.1", "ftp://x"]}), "upstreams"),
        (json!({"blocked_response": "sometimes"}), "blocked_response"),
        (json!({"flush_interval": "soon"}), "flush_interval"),
        (json!({"cache_memory_mib": 0}), "cache_memory_mib"),
        (json!({"retention_days": 0}), "retention_days"),
        (json!({"blocked_ttl": 1_000_000}), "blocked_ttl"),
    ] {
        let r = c.send("PUT", "/api/v1/settings", body).await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some(field)),
            "{}",
            r.body
        );
    }
    assert_eq!(saved(&b), cfg, "a refused change altered the saved config");
    assert_eq!(
        c.send(
            "PUT",
            "/api/v1/settings",
            json!({"cache_memory_mib": "lots"})
        )
        .await
        .status,
        422
    );
}

/// `App::apply` (every caller, not only the web handlers) refuses a config
/// whose filter section does not check (a rule that does not parse cannot
/// be built at all; a group client can), and leaves the saved file and the
/// running config as they were.
#[tokio::test]
async fn apply_refuses_bad_filter_rules_and_keeps_the_saved_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), Some("127.0.0.1:9"));
    let path = dir.path().join("config.toml");
    let app = glory_hole::app::App::start(config, path.clone())
        .await
        .unwrap();
    let mut good = (*app.config()).clone();
    good.filter.deny = vec!["bad.example".parse().unwrap()];
    app.apply(good).unwrap();
    let saved_before = std::fs::read(&path).unwrap();

    let mut bad = (*app.config()).clone();
    bad.filter.groups.push(glory_hole::config::ClientGroup {
        name: "kids".into(),
        clients: vec!["unclosed".into()],
        ..Default::default()
    });
    let err = app.apply(bad).unwrap_err();
    assert!(err.contains("filter"), "{err}");
    assert!(
        err.contains("unclosed"),
        "the message names the entry: {err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        saved_before,
        "file unchanged"
    );
    assert_eq!(
        app.config().filter.deny,
        ["bad.example"],
        "running config unchanged"
    );
}
