//! Allow and deny entries over real HTTP: added, normalised, removed, and
//! saved to the config file on disk.

mod support;

use serde_json::json;
use support::web::*;

#[tokio::test]
async fn allow_and_deny_rules() {
    let (b, mut c) = ready(|_| {}).await;
    for entry in ["Tracker.Example.", "*.ads.example", "/^ad[0-9]+\\./"] {
        let r = c
            .send(
                "POST",
                "/api/v1/rules",
                json!({"list": "deny", "entry": entry}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(
        saved(&b).filter.deny,
        vec!["tracker.example", "*.ads.example", "/^ad[0-9]+\\./"]
    );
    for (body, field) in [
        (json!({"list": "deny", "entry": "<script>"}), "entry"),
        (json!({"list": "deny", "entry": "/(/"}), "entry"),
        (json!({"list": "maybe", "entry": "x.example"}), "list"),
    ] {
        let r = c.send("POST", "/api/v1/rules", body).await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some(field)),
            "{}",
            r.body
        );
    }
    assert_eq!(
        c.send("POST", "/api/v1/rules", json!({"entry": 5}))
            .await
            .status,
        422
    );
    // Allowing takes the name off the deny list: the latest click wins.
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "allow", "entry": "tracker.example"}),
    )
    .await;
    let cfg = saved(&b);
    assert_eq!(cfg.filter.allow, vec!["tracker.example"]);
    assert!(
        !cfg.filter
            .deny
            .contains(&"tracker.example".parse().unwrap())
    );
    let r = c.get("/api/v1/rules").await.json();
    assert_eq!(r["allow"][0], "tracker.example");
    let r = c
        .send(
            "DELETE",
            "/api/v1/rules",
            json!({"list": "allow", "entry": "tracker.example"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        c.send(
            "DELETE",
            "/api/v1/rules",
            json!({"list": "allow", "entry": "tracker.example"})
        )
        .await
        .status,
        404
    );
    assert!(saved(&b).filter.allow.is_empty());
}
