//! Blocklists over real HTTP: added, changed, removed, updated now, and
//! saved to the config file on disk.

mod support;

use serde_json::json;
use std::sync::atomic::Ordering;
use support::web::*;

#[tokio::test]
async fn blocklists() {
    let (b, mut c) = ready(|_| {}).await;
    let r = c
        .send(
            "POST",
            "/api/v1/lists",
            json!({"name": "extra", "url": "https://lists.example/extra.txt"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (body, field) in [
        (
            json!({"name": "extra", "url": "https://lists.example/x"}),
            "name",
        ),
        (
            json!({"name": "bad name!", "url": "https://lists.example/x"}),
            "name",
        ),
        (
            json!({"name": "ftp", "url": "ftp://lists.example/x"}),
            "url",
        ),
        (json!({"name": "rel", "path": "lists/x.txt"}), "path"),
        (json!({"name": "both-missing"}), "url"),
    ] {
        let r = c.send("POST", "/api/v1/lists", body).await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some(field)),
            "{}",
            r.body
        );
    }
    let r = c
        .send(
            "POST",
            "/api/v1/lists",
            json!({"name": "kids-only", "url": "https://lists.example/k", "groups": ["kids"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("groups")),
        "{}",
        r.body
    );
    c.send(
        "POST",
        "/api/v1/groups",
        json!({"name": "kids", "clients": ["192.168.1.50"]}),
    )
    .await;
    let r = c
        .send(
            "POST",
            "/api/v1/lists",
            json!({"name": "kids-only", "url": "https://lists.example/k", "groups": ["kids"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(saved(&b).filter.lists.last().unwrap().groups, vec!["kids"]);
    let page = c.get("/lists").await.body;
    assert!(
        page.contains("<td>kids<details>"),
        "the list's groups are shown: {page}"
    );
    assert_eq!(
        c.send("DELETE", "/api/v1/groups/kids", json!({}))
            .await
            .status,
        200
    );
    assert!(
        saved(&b).filter.lists.last().unwrap().groups.is_empty(),
        "a removed group stays on a list"
    );
    c.send("DELETE", "/api/v1/lists/kids-only", json!({})).await;
    let lists = c.get("/api/v1/lists").await.json();
    assert_eq!(lists.as_array().unwrap().len(), 2, "{lists}");
    assert_eq!(
        c.send("PATCH", "/api/v1/lists/extra", json!({"enabled": false}))
            .await
            .status,
        200
    );
    assert!(
        !saved(&b)
            .filter
            .lists
            .iter()
            .find(|l| l.name == "extra")
            .unwrap()
            .enabled
    );
    assert_eq!(
        c.send("PATCH", "/api/v1/lists/none", json!({"enabled": false}))
            .await
            .status,
        404
    );
    assert_eq!(
        c.send("POST", "/api/v1/lists/update", json!({}))
            .await
            .status,
        202
    );
    assert_eq!(b.backend.list_updates.load(Ordering::SeqCst), 1);
    assert_eq!(
        c.send("DELETE", "/api/v1/lists/extra", json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        c.send("DELETE", "/api/v1/lists/extra", json!({}))
            .await
            .status,
        404
    );
    assert_eq!(saved(&b).filter.lists.len(), 1);
}
