//! Clients and groups over real HTTP, and entries and lists that apply to
//! chosen groups only: through the API, on the pages and over DNS.

mod support;

use glory_hole::testing::client::ask_from;
use serde_json::json;
use support::web::*;

#[tokio::test]
async fn client_groups() {
    let (b, mut c) = ready(|_| {}).await;
    let r = c.send("POST", "/api/v1/groups", json!({"name": "kids", "clients": ["192.168.1.50", "192.168.1.64/28", "AA:BB:CC:DD:EE:FF"]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(saved(&b).filter.groups[0].clients[2], "aa:bb:cc:dd:ee:ff");
    let r = c
        .send(
            "POST",
            "/api/v1/groups",
            json!({"name": "tv", "clients": ["the tv"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("clients"))
    );
    let r = c
        .send(
            "PUT",
            "/api/v1/groups",
            json!([{"name": "a", "clients": []}, {"name": "a", "clients": []}]),
        )
        .await;
    assert_eq!(r.status, 422);
    let groups = c.get("/api/v1/groups").await.json();
    assert_eq!(groups[0]["name"], "default", "{groups}");
    assert_eq!(groups[1]["name"], "kids", "{groups}");
    assert_eq!(
        c.send("DELETE", "/api/v1/groups/kids", json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        c.send("DELETE", "/api/v1/groups/kids", json!({}))
            .await
            .status,
        404
    );
    assert!(saved(&b).filter.groups.is_empty());
}

/// Issue 3 point 10 through the API: each allow/deny entry and each list
/// applies to chosen groups; a wrong group name is refused at the field
/// and changes nothing.
#[tokio::test]
async fn entries_and_lists_apply_to_chosen_groups() {
    let (b, mut c) = ready(|_| {}).await;
    c.send(
        "POST",
        "/api/v1/groups",
        json!({"name": "kids", "clients": ["192.168.1.50"]}),
    )
    .await;
    let r = c
        .send(
            "POST",
            "/api/v1/rules",
            json!({"list": "deny", "entry": "Video.Example", "groups": ["kids"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("group kids"));
    let cfg = saved(&b);
    assert!(cfg.filter.deny.is_empty(), "not for everyone");
    assert_eq!(cfg.filter.groups[0].deny, ["video.example"]);
    let entries = c.get("/api/v1/rules").await.json()["entries"].clone();
    assert_eq!(
        entries,
        json!([{"list": "deny", "entry": "video.example", "groups": ["kids"]}])
    );

    // Unknown group, wrong CSRF token, no login: refused, nothing saved.
    let before = saved(&b);
    let r = c
        .send(
            "POST",
            "/api/v1/rules",
            json!({"list": "deny", "entry": "games.example", "groups": ["kids", "teens"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("groups")),
        "{}",
        r.body
    );
    assert!(r.json()["error"].as_str().unwrap().contains("'teens'"));
    let csrf = c.csrf.replace("0".repeat(64));
    let r = c
        .send(
            "POST",
            "/api/v1/rules",
            json!({"list": "deny", "entry": "games.example", "groups": ["kids"]}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    c.csrf = csrf;
    let mut anon = Client::new(&b.base());
    let r = anon
        .send(
            "POST",
            "/api/v1/rules",
            json!({"list": "deny", "entry": "games.example", "groups": ["kids"]}),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = anon
        .send(
            "PATCH",
            "/api/v1/lists/stevenblack",
            json!({"groups": ["kids"]}),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(saved(&b), before);

    // Sending the entry again with other groups moves it; the default
    // group takes entries like any other.
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "deny", "entry": "video.example", "groups": ["default"]}),
    )
    .await;
    let cfg = saved(&b);
    assert!(cfg.filter.groups[0].deny.is_empty());
    let default = cfg
        .filter
        .groups
        .iter()
        .find(|g| g.name == "default")
        .unwrap();
    assert_eq!(default.deny, ["video.example"]);
    // Allowing it for kids leaves the default group's block alone;
    // allowing it for everyone takes every block away.
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "allow", "entry": "video.example", "groups": ["kids"]}),
    )
    .await;
    let entries = c.get("/api/v1/rules").await.json()["entries"].clone();
    assert_eq!(
        entries,
        json!([
            {"list": "allow", "entry": "video.example", "groups": ["kids"]},
            {"list": "deny", "entry": "video.example", "groups": ["default"]}
        ])
    );
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "allow", "entry": "video.example"}),
    )
    .await;
    let cfg = saved(&b);
    assert_eq!(cfg.filter.allow, ["video.example"]);
    assert!(
        cfg.filter
            .groups
            .iter()
            .all(|g| g.deny.is_empty() && g.allow.is_empty())
    );
    assert!(
        cfg.filter.groups.iter().all(|g| g.name != "default"),
        "an empty default group is not written"
    );
    // Removing for one group keeps it for the others.
    let r = c
        .send(
            "DELETE",
            "/api/v1/rules",
            json!({"list": "allow", "entry": "video.example", "groups": ["kids"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let entries = c.get("/api/v1/rules").await.json()["entries"].clone();
    assert_eq!(
        entries,
        json!([{"list": "allow", "entry": "video.example", "groups": ["default"]}])
    );
    let r = c
        .send(
            "DELETE",
            "/api/v1/rules",
            json!({"list": "allow", "entry": "video.example", "groups": ["kids"]}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // Lists: choose groups; a wrong name changes nothing.
    let r = c
        .send(
            "PATCH",
            "/api/v1/lists/stevenblack",
            json!({"groups": ["kids", "default"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(saved(&b).filter.lists[0].groups, ["default", "kids"]);
    let before = saved(&b);
    let r = c
        .send(
            "PATCH",
            "/api/v1/lists/stevenblack",
            json!({"enabled": false, "groups": ["nobody"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("groups")),
        "{}",
        r.body
    );
    assert_eq!(saved(&b), before);
    let r = c
        .send(
            "PATCH",
            "/api/v1/lists/stevenblack",
            json!({"groups": ["default"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        saved(&b).filter.lists[0].groups.is_empty(),
        "default is the config's empty list"
    );

    // The same choices from the group's side (Clients page).
    let r = c
        .send(
            "POST",
            "/api/v1/groups",
            json!({"name": "kids", "clients": ["192.168.1.50"], "lists": ["stevenblack"], "deny": ["*.games.example"], "allow": ["school.example"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cfg = saved(&b);
    assert_eq!(cfg.filter.lists[0].groups, ["default", "kids"]);
    assert_eq!(cfg.filter.groups[0].deny, ["*.games.example"]);
    let g = c.get("/api/v1/groups").await.json();
    assert_eq!(g[1]["lists"], json!(["stevenblack"]), "{g}");
    assert_eq!(g[1]["allow"], json!(["school.example"]), "{g}");
    // Saving the clients alone keeps the group's entries and lists, and
    // saving the entries alone keeps the clients.
    c.send(
        "POST",
        "/api/v1/groups",
        json!({"name": "kids", "clients": ["192.168.1.51"]}),
    )
    .await;
    let cfg = saved(&b);
    assert_eq!(cfg.filter.groups[0].deny, ["*.games.example"]);
    assert_eq!(cfg.filter.lists[0].groups, ["default", "kids"]);
    c.send(
        "POST",
        "/api/v1/groups",
        json!({"name": "kids", "allow": ["school.example", "library.example"]}),
    )
    .await;
    let cfg = saved(&b);
    assert_eq!(cfg.filter.groups[0].clients, ["192.168.1.51"]);
    assert_eq!(cfg.filter.groups[0].allow.len(), 2);
    let before = saved(&b);
    for (body, field) in [
        (json!({"name": "kids", "deny": ["not a domain"]}), "deny"),
        (json!({"name": "kids", "allow": ["/(/"]}), "allow"),
        (json!({"name": "kids", "lists": ["missing"]}), "lists"),
        (
            json!({"name": "default", "clients": ["192.168.1.9"]}),
            "clients",
        ),
        (json!({"name": "a,b"}), "name"),
        (json!({"name": "../x"}), "name"),
    ] {
        let r = c.send("POST", "/api/v1/groups", body.clone()).await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some(field)),
            "{body}: {}",
            r.body
        );
    }
    // Unticking the only group a list has would leave it for no one.
    c.send(
        "PATCH",
        "/api/v1/lists/stevenblack",
        json!({"groups": ["kids"]}),
    )
    .await;
    let before2 = saved(&b);
    let r = c
        .send(
            "POST",
            "/api/v1/groups",
            json!({"name": "kids", "lists": []}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("lists")),
        "{}",
        r.body
    );
    assert_eq!(saved(&b), before2);
    assert_ne!(before, before2);

    // Both pages show and offer the choices.
    let lists = c.get("/lists").await.body;
    assert!(
        lists.contains("name=\"groups\" value=\"kids\" data-set"),
        "{lists}"
    );
    assert!(
        lists.contains("<td class=\"mono\">*.games.example</td><td>kids<details>"),
        "the kids' own deny entry does not say it applies to kids: {lists}"
    );
    let clients = c.get("/clients").await.body;
    assert!(clients.contains("data-group=\"default\""), "{clients}");
    assert!(
        clients.contains("block <span class=\"mono\">*.games.example</span>"),
        "{clients}"
    );
    assert!(
        clients.contains("name=\"lists\" value=\"stevenblack\" data-set checked"),
        "{clients}"
    );
}

/// A deny entry chosen for one group on the Lists page blocks that
/// group's clients over DNS at once, and no one else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_scoped_deny_blocks_only_that_groups_clients() {
    use glory_hole::testing::client::answers;
    use glory_hole::testing::upstream::{DEFAULT_A, StandIn};
    let up = StandIn::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), Some(&up.addr().to_string()));
    let app = glory_hole::app::App::start(config, dir.path().join("config.toml"))
        .await
        .unwrap();
    let dns = app.dns_addrs[0];
    let addrs = glory_hole::web::serve(app.clone(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let mut c = Client::new(&format!("http://{}", addrs[0]));
    assert_eq!(c.setup(PASSWORD).await.status, 200);
    // Setup chose a public upstream; the test's stand-in plays it.
    let r = c
        .send(
            "PUT",
            "/api/v1/settings",
            json!({"upstreams": [up.addr().to_string()]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let upstream = DEFAULT_A.to_string();
    let upstream = upstream.as_str();
    assert_eq!(
        answers(&ask_from([127, 0, 0, 2].into(), dns, "video.example", 1).await),
        [upstream]
    );
    let r = c
        .send(
            "POST",
            "/api/v1/groups",
            json!({"name": "kids", "clients": ["127.0.0.2"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c
        .send(
            "POST",
            "/api/v1/rules",
            json!({"list": "deny", "entry": "video.example", "groups": ["kids"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        answers(&ask_from([127, 0, 0, 2].into(), dns, "video.example", 1).await),
        ["0.0.0.0"],
        "the kids' client is blocked"
    );
    assert_eq!(
        answers(&ask_from([127, 0, 0, 1].into(), dns, "video.example", 1).await),
        [upstream],
        "everyone else is not"
    );
    // "why?" tells the other client the entry is not for its groups.
    let why = c
        .get("/api/v1/explain?domain=video.example&client=127.0.0.1")
        .await
        .json();
    assert_eq!(why["decision"], "pass", "{why}");
    // Moved to the default group, it swaps who is blocked.
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "deny", "entry": "video.example", "groups": ["default"]}),
    )
    .await;
    assert_eq!(
        answers(&ask_from([127, 0, 0, 2].into(), dns, "video.example", 1).await),
        [upstream]
    );
    assert_eq!(
        answers(&ask_from([127, 0, 0, 1].into(), dns, "video.example", 1).await),
        ["0.0.0.0"]
    );
}
