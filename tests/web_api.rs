//! The web API over real HTTP on loopback: every endpoint, with the auth,
//! CSRF, Host-header and invalid-input failures a user or an attacker's
//! page can cause. Each change must be saved to the config file on disk.

mod web_support;

use glory_hole::config::Config;
use glory_hole::testing::client::ask_from;
use glory_hole::web::Backend;
use serde_json::json;
use std::sync::atomic::Ordering;
use web_support::*;

/// A config for an `App` started in the test itself: DNS on a free
/// loopback port, state under `dir`, no web listener of its own.
fn app_config(dir: &std::path::Path, upstream: Option<&str>) -> Config {
    let upstreams = upstream.map_or(String::new(), |u| format!("upstreams = [\"{u}\"]\n"));
    let toml = format!(
        "data_dir = {:?}\n[dns]\nlisten = [\"127.0.0.1:0\"]\n{upstreams}[web]\nenabled = false\n",
        dir.display().to_string()
    );
    Config::from_toml(&toml, "test config").unwrap()
}

fn saved(b: &TestBox) -> Config {
    Config::load(&b.config_path()).unwrap()
}

#[tokio::test]
async fn health_is_public_and_says_whether_setup_is_needed() {
    let b = start(|_| {}).await;
    let mut c = Client::new(&b.base());
    for path in ["/health", "/api/v1/health"] {
        let r = c.get(path).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["status"], "ok");
        assert_eq!(r.json()["setup_needed"], true);
    }
    c.setup(PASSWORD).await;
    assert_eq!(c.get("/health").await.json()["setup_needed"], false);
}

#[tokio::test]
async fn every_documented_route_exists_and_needs_auth() {
    let b = start(|_| {}).await;
    let mut anon = Client::new(&b.base());
    let doc = {
        let (_b2, mut c2) = ready(|_| {}).await;
        let r = c2.get("/api/v1/openapi.json").await;
        assert_eq!(r.status, 200);
        r.json()
    };
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let public = op.get("security").is_some();
            let p = path.replace("{name}", "x").replace("{id}", "x");
            let r = anon.send(&method.to_uppercase(), &p, json!({})).await;
            assert_ne!(r.status, 405, "{method} {path}");
            if public {
                assert_ne!(r.status, 401, "{method} {path} should be public");
            } else {
                assert_eq!(r.status, 401, "{method} {path} without login: {}", r.body);
                assert!(r.json()["error"].is_string());
            }
            checked += 1;
        }
    }
    assert!(checked >= 45, "only {checked} operations documented");
    // Pages send a browser to setup (no password yet) instead.
    for page in [
        "/",
        "/querylog",
        "/lists",
        "/clients",
        "/local",
        "/settings",
        "/system",
    ] {
        let r = anon.get(page).await;
        assert_eq!(r.status, 303, "{page}");
        assert_eq!(r.header("location"), "/setup");
    }
}

#[tokio::test]
async fn foreign_host_names_are_refused() {
    let b = start(|c| c.web.allowed_hosts = vec!["dns.home.example".into()]).await;
    let mut c = Client::new(&b.base());
    for (host, want) in [
        ("evil.example", 421),
        ("glory-hole.evil.example:80", 421),
        ("dns.home.example", 200),
        ("glory-hole.local", 200),
        ("localhost:8080", 200),
        ("192.168.1.2", 200),
    ] {
        c.extra = vec![("host".into(), host.into())];
        let r = c.get("/health").await;
        assert_eq!(r.status, want, "Host: {host}: {}", r.body);
        if want == 421 {
            assert!(r.body.contains("allowed_hosts"), "{}", r.body);
        }
    }
}

#[tokio::test]
async fn setup_checks_everything_before_changing_anything() {
    let b = start(|_| {}).await;
    let mut c = Client::new(&b.base());
    // Without the double-submit token: refused.
    let r = c
        .send(
            "POST",
            "/api/v1/setup",
            json!({"password": PASSWORD, "upstream": "quad9", "protocol": "plain"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let s = c.get("/api/v1/setup").await.json();
    assert_eq!(s["needed"], true);
    assert!(s["upstream_presets"].as_array().unwrap().len() >= 3);
    c.csrf = Some(s["csrf"].as_str().unwrap().into());
    for (body, field) in [
        (
            json!({"password": "short", "upstream": "quad9", "protocol": "plain"}),
            "password",
        ),
        (
            json!({"password": PASSWORD, "upstream": "custom", "protocol": "plain", "custom_upstreams": ["nonsense"]}),
            "custom_upstreams",
        ),
        (
            json!({"password": PASSWORD, "upstream": "quad9", "protocol": "pigeon"}),
            "protocol",
        ),
        (
            json!({"password": PASSWORD, "upstream": "quad9", "protocol": "dot", "blocklists": ["nope"]}),
            "blocklists",
        ),
    ] {
        let r = c.send("POST", "/api/v1/setup", body).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(r.json()["field"], field, "{}", r.body);
    }
    assert!(
        !b.config_path().exists(),
        "a refused setup wrote the config"
    );
    assert_eq!(c.get("/health").await.json()["setup_needed"], true);

    let r = c
        .send("POST", "/api/v1/setup", json!({"password": PASSWORD, "upstream": "cloudflare", "protocol": "dot", "blocklists": ["stevenblack", "oisd-small"]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cfg = saved(&b);
    assert_eq!(
        cfg.dns.upstreams[0].to_string(),
        "tls://1.1.1.1:853#cloudflare-dns.com"
    );
    assert_eq!(cfg.filter.lists.len(), 2);
    assert_eq!(
        b.backend.config().dns.upstreams,
        cfg.dns.upstreams,
        "not swapped in"
    );
    // Setup is offered only once.
    let mut other = Client::new(&b.base());
    let t = other.get("/api/v1/setup").await.json();
    assert_eq!(t["needed"], false);
    other.csrf = Some(t["csrf"].as_str().unwrap().into());
    let r = other
        .send(
            "POST",
            "/api/v1/setup",
            json!({"password": "attacker pass", "upstream": "quad9", "protocol": "plain"}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(other.get("/setup").await.header("location"), "/login");
}

#[tokio::test]
async fn appliance_setup_writes_network_conf() {
    let b = start(|c| c.web.appliance = true).await;
    let mut c = Client::new(&b.base());
    c.csrf = Some(
        c.get("/api/v1/setup").await.json()["csrf"]
            .as_str()
            .unwrap()
            .into(),
    );
    let mut body = json!({"password": PASSWORD, "upstream": "google", "protocol": "doh",
        "network": {"mode": "static", "address": "192.168.1.2/24", "gateway": "10.0.0.1", "timezone": "Europe/Berlin"}});
    let r = c.send("POST", "/api/v1/setup", body.clone()).await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("gateway")),
        "{}",
        r.body
    );
    body["network"]["gateway"] = json!("192.168.1.1");
    let r = c.send("POST", "/api/v1/setup", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let conf = std::fs::read_to_string(b.dir.path().join("network.conf")).unwrap();
    assert!(
        conf.contains("mode=static\naddress=192.168.1.2/24\ngateway=192.168.1.1\n"),
        "{conf}"
    );
    assert!(conf.contains("timezone=Europe/Berlin"));
    let n = c.get("/api/v1/network").await.json();
    assert_eq!(n["address"], "192.168.1.2/24");
}

#[tokio::test]
async fn login_logout_and_rate_limit() {
    let (b, _) = ready(|_| {}).await;
    let mut c = Client::new(&b.base());
    // No token: refused before the password is even checked.
    let r = c
        .send("POST", "/api/v1/login", json!({"password": PASSWORD}))
        .await;
    assert_eq!(r.status, 403);
    let r = c.login("wrong password").await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (401, Some("password"))
    );
    for _ in 0..4 {
        c.login("wrong again").await;
    }
    let r = c.login(PASSWORD).await;
    assert_eq!(
        r.status, 429,
        "the right password is refused while rate-limited: {}",
        r.body
    );

    let (b, _) = ready(|_| {}).await;
    let mut c = Client::new(&b.base());
    assert_eq!(c.login(PASSWORD).await.status, 200);
    let cookie = c.get("/api/v1/settings").await;
    assert_eq!(cookie.status, 200);
    let r = c.send("POST", "/api/v1/logout", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(c.get("/api/v1/settings").await.status, 401);
}

#[tokio::test]
async fn session_cookie_is_httponly_and_samesite_strict() {
    let b = start(|_| {}).await;
    let mut c = Client::new(&b.base());
    c.csrf = Some(
        c.get("/api/v1/setup").await.json()["csrf"]
            .as_str()
            .unwrap()
            .into(),
    );
    let r = c
        .send(
            "POST",
            "/api/v1/setup",
            json!({"password": PASSWORD, "upstream": "quad9", "protocol": "plain"}),
        )
        .await;
    let sc = r.header("set-cookie");
    assert!(sc.starts_with("gh_session="), "{sc}");
    assert!(
        sc.contains("HttpOnly") && sc.contains("SameSite=Strict"),
        "{sc}"
    );
}

#[tokio::test]
async fn changes_need_the_csrf_token_and_a_same_origin() {
    let (b, mut c) = ready(|_| {}).await;
    let good = c.csrf.clone();
    let rule = json!({"list": "deny", "entry": "ads.example"});
    c.csrf = None;
    let r = c.send("POST", "/api/v1/rules", rule.clone()).await;
    assert_eq!(r.status, 403, "{}", r.body);
    c.csrf = Some("0".repeat(64));
    assert_eq!(
        c.send("POST", "/api/v1/rules", rule.clone()).await.status,
        403
    );
    c.csrf = good;
    c.extra = vec![("origin".into(), "http://evil.example".into())];
    assert_eq!(
        c.send("POST", "/api/v1/rules", rule.clone()).await.status,
        403
    );
    c.extra = vec![("sec-fetch-site".into(), "cross-site".into())];
    assert_eq!(
        c.send("POST", "/api/v1/rules", rule.clone()).await.status,
        403
    );
    assert!(
        saved(&b).filter.deny.is_empty(),
        "a refused request changed the config"
    );
    c.extra = vec![("origin".into(), b.base())];
    assert_eq!(c.send("POST", "/api/v1/rules", rule).await.status, 200);
    assert_eq!(saved(&b).filter.deny, vec!["ads.example"]);
    // Reading needs no token.
    c.csrf = None;
    assert_eq!(c.get("/api/v1/rules").await.status, 200);
    // The logout form carries its token in the body.
    let r = c
        .raw(
            "POST",
            "/logout",
            "application/x-www-form-urlencoded",
            b"_csrf=wrong".to_vec(),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn every_response_has_security_headers() {
    let (_b, mut c) = ready(|_| {}).await;
    let mut anon = Client::new(&c.base.clone());
    for r in [
        c.get("/").await,
        c.get("/api/v1/stats").await,
        anon.get("/api/v1/stats").await,
        anon.get("/assets/app.css").await,
    ] {
        let csp = r.header("content-security-policy");
        assert!(
            csp.contains("default-src 'none'")
                && csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        assert_eq!(r.header("x-frame-options"), "DENY");
        assert!(r.header("server-timing").starts_with("app;dur="));
        assert_eq!(r.header("referrer-policy"), "same-origin");
    }
    assert_eq!(
        c.get("/api/v1/stats").await.header("cache-control"),
        "no-store"
    );
}

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
    assert!(lists.contains("every client") || lists.contains("default"));
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

#[tokio::test]
async fn password_change_logs_out_other_sessions() {
    let (b, mut c) = ready(|_| {}).await;
    let mut other = Client::new(&b.base());
    assert_eq!(other.login(PASSWORD).await.status, 200);
    let r = c
        .send(
            "POST",
            "/api/v1/password",
            json!({"current": "nope nope", "new": "a new password"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("current"))
    );
    let r = c
        .send(
            "POST",
            "/api/v1/password",
            json!({"current": PASSWORD, "new": "short"}),
        )
        .await;
    assert_eq!((r.status, r.json()["field"].as_str()), (422, Some("new")));
    let r = c
        .send(
            "POST",
            "/api/v1/password",
            json!({"current": PASSWORD, "new": "a new password"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(other.get("/api/v1/settings").await.status, 401);
    assert_eq!(
        c.get("/api/v1/settings").await.status,
        200,
        "the changing session continues"
    );
    let mut third = Client::new(&b.base());
    assert_eq!(third.login(PASSWORD).await.status, 401);
    assert_eq!(third.login("a new password").await.status, 200);
}

#[tokio::test]
async fn api_tokens_for_scripts() {
    let (b, mut c) = ready(|_| {}).await;
    let r = c
        .send("POST", "/api/v1/tokens", json!({"name": "home-assistant"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.json()["token"].as_str().unwrap().to_string();
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        c.send("POST", "/api/v1/tokens", json!({"name": " "}))
            .await
            .status,
        422
    );
    let list = c.get("/api/v1/tokens").await;
    assert!(!list.body.contains(&token), "a secret is listed");
    assert_eq!(list.json()[0]["name"], "home-assistant");
    let auth = std::fs::read_to_string(b.dir.path().join("web-auth.json")).unwrap();
    assert!(
        !auth.contains(token.rsplit('_').next().unwrap()),
        "the secret is stored in clear"
    );

    let mut script = Client::new(&b.base());
    script.bearer = Some(token.clone());
    assert_eq!(script.get("/api/v1/stats").await.status, 200);
    // No cookie, no CSRF token: a bearer token is enough for changes.
    let r = script
        .send(
            "POST",
            "/api/v1/rules",
            json!({"list": "deny", "entry": "from-script.example"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    script.bearer = Some(format!("{token}x"));
    assert_eq!(script.get("/api/v1/stats").await.status, 401);
    script.bearer = None;
    script.extra = vec![("authorization".into(), "Basic Zm9vOmJhcg==".into())];
    assert_eq!(script.get("/api/v1/stats").await.status, 401);

    assert_eq!(
        c.send("DELETE", &format!("/api/v1/tokens/{id}"), json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        c.send("DELETE", &format!("/api/v1/tokens/{id}"), json!({}))
            .await
            .status,
        404
    );
    let mut revoked = Client::new(&b.base());
    revoked.bearer = Some(token);
    assert_eq!(revoked.get("/api/v1/stats").await.status, 401);
}

#[tokio::test]
async fn pause_and_resume_blocking() {
    let (b, mut c) = ready(|_| {}).await;
    assert_eq!(c.get("/api/v1/pause").await.json()["paused"], false);
    let r = c.send("POST", "/api/v1/pause", json!({"minutes": 5})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["paused"], true);
    assert!(r.json()["until_ms"].as_i64().is_some());
    assert!(c.get("/").await.body.contains("Blocking is paused"));
    assert_eq!(
        c.send("POST", "/api/v1/pause", json!({"minutes": 100000}))
            .await
            .status,
        422
    );
    assert_eq!(
        c.send("POST", "/api/v1/pause", json!({})).await.json()["until_ms"],
        serde_json::Value::Null
    );
    assert_eq!(
        c.send("DELETE", "/api/v1/pause", json!({})).await.json()["paused"],
        false
    );
    assert!(!b.backend.pause_status_for_test());
}

trait PauseForTest {
    fn pause_status_for_test(&self) -> bool;
}
impl PauseForTest for TestBackend {
    fn pause_status_for_test(&self) -> bool {
        self.paused.lock().unwrap().paused
    }
}

#[tokio::test]
async fn query_log_search_and_explain() {
    let (b, mut c) = ready(|_| {}).await;
    b.backend.record("ads.example", "192.168.1.20", "blocked");
    b.backend.record("news.example", "192.168.1.20", "upstream");
    b.backend.record("news.example", "192.168.1.21", "cache");
    let rows = c.get("/api/v1/querylog").await.json()["rows"].clone();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    assert_eq!(rows[0]["status"], "cache", "newest first");
    let r = c
        .get("/api/v1/querylog?domain=NEWS&client=&status=upstream")
        .await
        .json();
    assert_eq!(r["rows"].as_array().unwrap().len(), 1);
    let newest = rows[0]["time_ms"].as_i64().unwrap();
    let r = c
        .get(&format!("/api/v1/querylog?after_ms={}", newest - 1))
        .await
        .json();
    assert_eq!(r["rows"].as_array().unwrap().len(), 1);
    for (q, field) in [
        ("status=exploded", "status"),
        ("limit=0", "limit"),
        ("after_ms=yesterday", "after_ms"),
    ] {
        let r = c.get(&format!("/api/v1/querylog?{q}")).await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some(field)),
            "{q}: {}",
            r.body
        );
    }
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "deny", "entry": "ads.example"}),
    )
    .await;
    let e = c
        .get("/api/v1/explain?domain=ads.example&client=192.168.1.20")
        .await;
    assert_eq!(e.status, 200, "{}", e.body);
    assert_eq!(e.json()["decision"], "blocked");
    assert_eq!(
        c.get("/api/v1/explain?domain=a%20b").await.json()["field"],
        "domain"
    );
    assert_eq!(
        c.get("/api/v1/explain?domain=a.example&client=tv")
            .await
            .json()["field"],
        "client"
    );
    let s = c.get("/api/v1/stats?range=1h").await.json();
    assert_eq!(s["summary"]["total"], 3);
    assert_eq!(s["summary"]["blocked"], 1);
    assert_eq!(s["top_blocked"][0]["name"], "ads.example");
    assert_eq!(s["series"].as_array().unwrap().len(), 48);
    assert_eq!(c.get("/api/v1/stats?range=forever").await.status, 422);
}

#[tokio::test]
async fn system_and_assets() {
    let (_b, mut c) = ready(|_| {}).await;
    let s = c.get("/api/v1/system").await.json();
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["system"]["process_rss_bytes"].as_u64().unwrap() > 0);
    let assets = s["assets_compressed_bytes"].as_u64().unwrap();
    assert!(
        assets <= 150 * 1024,
        "assets are {assets} bytes compressed, budget 150 KiB"
    );
    c.extra = vec![("accept-encoding".into(), "gzip".into())];
    let r = c.get("/assets/app.js").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), "gzip");
    let etag = r.header("etag").to_string();
    c.extra = vec![("if-none-match".into(), etag)];
    assert_eq!(c.get("/assets/app.js").await.status, 304);
    c.extra.clear();
    let r = c.get("/assets/app.css").await;
    assert!(r.header("content-type").starts_with("text/css"));
    assert!(r.body.contains("--bg"));
    assert_eq!(c.get("/assets/missing.js").await.status, 404);
}

/// The SD card died: the backup made before brings back the whole
/// configuration and lets the same password and API tokens in again.
#[tokio::test]
async fn backup_restores_config_password_and_tokens_after_a_factory_reset() {
    let (b, mut c) = ready(|cfg| cfg.web.appliance = true).await;
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "deny", "entry": "before.example"}),
    )
    .await;
    let t = c
        .send("POST", "/api/v1/tokens", json!({"name": "home assistant"}))
        .await;
    assert_eq!(t.status, 201, "{}", t.body);
    let token = t.json()["token"].as_str().unwrap().to_string();
    let backup = c.get("/api/v1/backup").await;
    assert_eq!(backup.status, 200);
    assert!(backup.header("content-disposition").contains("attachment"));
    let secret = token.rsplit('_').next().unwrap();
    assert!(
        !backup.body.contains(PASSWORD) && !backup.body.contains(secret),
        "hashes only: {}",
        backup.body
    );
    assert!(backup.body.contains("$argon2id$"), "{}", backup.body);
    let before = saved(&b);

    let r = c
        .send("POST", "/api/v1/system/factory-reset", json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(saved(&b).filter.deny.is_empty());
    // A fresh box: set up with another password, then restore.
    let mut fresh = Client::new(&b.base());
    assert_eq!(fresh.setup("a temporary password").await.status, 200);
    let r = fresh
        .raw(
            "POST",
            "/api/v1/restore",
            "application/octet-stream",
            backup.body.clone().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("1 API token")
    );
    // The one who restored stays logged in.
    fresh.csrf = Some(r.json()["csrf"].as_str().unwrap().to_string());
    assert_eq!(fresh.get("/api/v1/settings").await.status, 200);
    assert_eq!(
        fresh
            .send(
                "POST",
                "/api/v1/rules",
                json!({"list": "allow", "entry": "x.example"})
            )
            .await
            .status,
        200
    );
    fresh
        .send(
            "DELETE",
            "/api/v1/rules",
            json!({"list": "allow", "entry": "x.example"}),
        )
        .await;
    assert_eq!(saved(&b), before);

    let mut old = Client::new(&b.base());
    assert_eq!(
        old.login(PASSWORD).await.status,
        200,
        "the old password works"
    );
    let mut temp = Client::new(&b.base());
    assert_eq!(temp.login("a temporary password").await.status, 401);
    let mut script = Client::new(&b.base());
    script.bearer = Some(token);
    assert_eq!(
        script.get("/api/v1/stats").await.status,
        200,
        "the old token works"
    );
    assert_eq!(
        old.get("/api/v1/tokens").await.json()[0]["name"],
        "home assistant"
    );

    // Or straight from first boot, without a temporary password.
    old.send("POST", "/api/v1/system/factory-reset", json!({}))
        .await;
    let mut boot = Client::new(&b.base());
    let pre = boot.get("/api/v1/setup").await.json();
    assert_eq!(pre["needed"], true, "{pre}");
    let r = boot
        .raw(
            "POST",
            "/api/v1/setup/restore",
            "application/octet-stream",
            Config::default().to_toml().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 403, "no double-submit token: {}", r.body);
    boot.csrf = Some(pre["csrf"].as_str().unwrap().to_string());
    let r = boot
        .raw(
            "POST",
            "/api/v1/setup/restore",
            "application/octet-stream",
            Config::default().to_toml().into_bytes(),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("file")),
        "a file without a password would leave the box open: {}",
        r.body
    );
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("no admin password")
    );
    let r = boot
        .raw(
            "POST",
            "/api/v1/setup/restore",
            "application/octet-stream",
            backup.body.clone().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !boot.cookies.contains_key("gh_session"),
        "no session without the password"
    );
    assert_eq!(boot.get("/api/v1/settings").await.status, 401);
    assert_eq!(saved(&b), before);
    let mut old = Client::new(&b.base());
    assert_eq!(old.login(PASSWORD).await.status, 200);
    assert_eq!(script.get("/api/v1/stats").await.status, 200);
    // Once set up, the first-boot restore is closed.
    let r = boot
        .raw(
            "POST",
            "/api/v1/setup/restore",
            "application/octet-stream",
            backup.body.into_bytes(),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
}

/// A bad, cut-short or changed upload is refused at the file field and
/// changes nothing: not the config, not the password.
#[tokio::test]
async fn bad_or_truncated_restores_change_nothing() {
    let (b, mut c) = ready(|_| {}).await;
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "deny", "entry": "before.example"}),
    )
    .await;
    let backup = c.get("/api/v1/backup").await.body;
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "deny", "entry": "after.example"}),
    )
    .await;
    let before = saved(&b);
    let auth_before = std::fs::read(b.dir.path().join("web-auth.json")).unwrap();
    let half = &backup.as_bytes()[..backup.len() / 2];
    let last_line = backup.trim_end().rfind('\n').unwrap();
    let no_checksum = &backup.as_bytes()[..last_line + 1];
    let changed = backup.replacen("before.example", "bef0re.example", 1);
    let bad_hash = {
        let at = backup.find("password = ").unwrap();
        let mut t = backup.clone();
        t.replace_range(at..at + 20, "password = \"plain te");
        t
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad upstream", b"[dns]\nupstreams = [\"nonsense\"]\n".to_vec(), "line 2"),
        ("not toml", b"not toml at all [".to_vec(), "line 1"),
        ("binary", vec![0xff, 0xfe, 0x00], "not a text"),
        ("half", half.to_vec(), ""),
        ("no checksum line", no_checksum.to_vec(), "checksum"),
        ("changed", changed.into_bytes(), "checksum"),
        ("cut before [backup]", backup.as_bytes()[..backup.find("[backup]").unwrap()].to_vec(), "cut short"),
        ("bad hash", bad_hash.into_bytes(), ""),
        ("group rule", b"[filter]\n[[filter.groups]]\nname = \"kids\"\nclients = []\ndeny = [\"not a name\"]\n".to_vec(), "not a name"),
    ];
    for (what, body, says) in cases {
        let r = c
            .raw("POST", "/api/v1/restore", "application/octet-stream", body)
            .await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some("file")),
            "{what}: {}",
            r.body
        );
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            e.starts_with("uploaded file: ") && e.contains(says),
            "{what}: {e}"
        );
        assert_eq!(saved(&b), before, "{what}");
        assert_eq!(
            std::fs::read(b.dir.path().join("web-auth.json")).unwrap(),
            auth_before,
            "{what}"
        );
    }
    // A plain config file (no [backup]) restores the config alone.
    let r = c
        .raw(
            "POST",
            "/api/v1/restore",
            "application/octet-stream",
            Config::default().to_toml().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(saved(&b).filter.deny.is_empty());
    assert_eq!(
        c.get("/api/v1/settings").await.status,
        200,
        "still logged in"
    );
    // Restoring needs login and the CSRF token.
    let mut anon = Client::new(&b.base());
    let r = anon
        .raw(
            "POST",
            "/api/v1/restore",
            "application/octet-stream",
            backup.clone().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 401);
    c.csrf = None;
    let r = c
        .raw(
            "POST",
            "/api/v1/restore",
            "application/octet-stream",
            backup.into_bytes(),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn pihole_teleporter_import() {
    use glory_hole::web::teleporter::build;
    let (b, mut c) = ready(|_| {}).await;
    let v5 = build::tar_gz(&[
        (
            "adlist.json",
            br#"[{"address":"https://pihole.example/list.txt","enabled":1}]"#,
        ),
        (
            "blacklist.exact.json",
            br#"[{"domain":"imported-deny.example","enabled":1}]"#,
        ),
        (
            "whitelist.regex.json",
            br#"[{"domain":"^ok[0-9]\\.example$","enabled":1}]"#,
        ),
        ("custom.list", b"192.168.1.30 printer.lan\n"),
        ("setupVars.conf", b"PIHOLE_DNS_1=192.168.1.1\n"),
    ]);
    let r = c
        .raw(
            "POST",
            "/api/v1/import/teleporter",
            "application/octet-stream",
            v5,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("1 lists"));
    let cfg = saved(&b);
    assert!(
        cfg.filter
            .lists
            .iter()
            .any(|l| l.url.as_deref() == Some("https://pihole.example/list.txt"))
    );
    assert!(
        cfg.filter
            .deny
            .contains(&"imported-deny.example".parse().unwrap())
    );
    assert!(
        cfg.filter
            .allow
            .contains(&"/^ok[0-9]\\.example$/".parse().unwrap())
    );
    assert_eq!(cfg.local.records[0].name.0, "printer.lan");
    assert_eq!(cfg.dns.upstreams[0].to_string(), "192.168.1.1:53");

    let v6 = build::zip(&[(
        "etc/pihole/pihole.toml",
        b"[dns]\nupstreams = [\"9.9.9.9\"]\ncnameRecords = [\"scan.lan,printer.lan\"]\n",
    )]);
    let r = c
        .raw(
            "POST",
            "/api/v1/import/teleporter",
            "application/octet-stream",
            v6,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(saved(&b).dns.upstreams[0].to_string(), "9.9.9.9:53");
    let r = c
        .raw(
            "POST",
            "/api/v1/import/teleporter",
            "application/octet-stream",
            b"garbage".to_vec(),
        )
        .await;
    assert_eq!((r.status, r.json()["field"].as_str()), (422, Some("file")));
}

#[tokio::test]
async fn appliance_only_actions() {
    let (_b, mut c) = ready(|_| {}).await;
    for (m, p) in [
        ("GET", "/api/v1/network"),
        ("POST", "/api/v1/system/reboot"),
        ("POST", "/api/v1/system/factory-reset"),
    ] {
        let r = c.send(m, p, json!({})).await;
        assert_eq!(r.status, 404, "{p} on a non-appliance: {}", r.body);
    }
    assert!(!c.get("/system").await.body.contains("Factory reset"));

    let (b, mut c) = ready(|cfg| cfg.web.appliance = true).await;
    let r = c
        .send(
            "PUT",
            "/api/v1/network",
            json!({"mode": "dhcp", "timezone": "America/New_York"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c
        .send(
            "PUT",
            "/api/v1/network",
            json!({"mode": "static", "address": "192.168.1.300/24", "gateway": "192.168.1.1"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("address"))
    );
    assert_eq!(
        c.get("/api/v1/network").await.json()["timezone"],
        "America/New_York"
    );
    assert!(c.get("/system").await.body.contains("Factory reset"));
    assert_eq!(
        c.send("POST", "/api/v1/system/reboot", json!({}))
            .await
            .status,
        200
    );
    assert_eq!(b.backend.reboots.load(Ordering::SeqCst), 1);
    assert_eq!(
        c.send("POST", "/api/v1/system/factory-reset", json!({}))
            .await
            .status,
        200
    );
    assert_eq!(b.backend.resets.load(Ordering::SeqCst), 1);
    assert_eq!(
        b.backend.reboots.load(Ordering::SeqCst),
        2,
        "no reboot after the reset"
    );
    assert!(
        saved(&b).web.appliance,
        "the reset forgot this is an appliance"
    );
    assert!(!b.dir.path().join("web-auth.json").exists());
    assert_eq!(
        c.get("/api/v1/settings").await.status,
        401,
        "the session survived a reset"
    );
    assert_eq!(c.get("/health").await.json()["setup_needed"], true);
}

#[tokio::test]
async fn firmware_upload_is_a_placeholder() {
    let (_b, mut c) = ready(|_| {}).await;
    let r = c
        .raw(
            "POST",
            "/api/v1/firmware",
            "application/octet-stream",
            vec![1, 2, 3],
        )
        .await;
    assert_eq!(r.status, 501);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("not available yet")
    );
    assert!(c.get("/system").await.body.contains("Firmware update"));
}

#[tokio::test]
async fn prometheus_metrics_are_off_by_default_and_token_only() {
    let (_b, mut c) = ready(|_| {}).await;
    let tok = c
        .send("POST", "/api/v1/tokens", json!({"name": "prom"}))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut prom = Client::new(&c.base.clone());
    prom.bearer = Some(tok.clone());
    assert_eq!(prom.get("/metrics").await.status, 404);

    let (b, mut c) = ready(|cfg| cfg.web.metrics = true).await;
    b.backend.record("a.example", "192.168.1.2", "blocked");
    assert_eq!(
        c.get("/metrics").await.status,
        401,
        "a browser session must not read metrics"
    );
    assert_eq!(Client::new(&b.base()).get("/metrics").await.status, 401);
    let tok = c
        .send("POST", "/api/v1/tokens", json!({"name": "prom"}))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut prom = Client::new(&b.base());
    prom.bearer = Some(tok);
    let r = prom.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("text/plain"));
    assert!(r.body.contains("glory_hole_blocked_24h 1\n"), "{}", r.body);
}

#[tokio::test]
async fn pages_render_and_escape_what_they_show() {
    let (b, mut c) = ready(|_| {}).await;
    b.backend.record(
        "x<script>alert(1)</script>.example",
        "\"><img src=x>",
        "upstream",
    );
    c.send(
        "POST",
        "/api/v1/local/records",
        json!({"name": "nas.lan", "type": "TXT", "value": "<b>hi</b>"}),
    )
    .await;
    for (path, marker) in [
        ("/", "Queries over time"),
        ("/querylog", "id=\"live\""),
        ("/lists", "Is this domain blocked?"),
        ("/clients", "Groups"),
        ("/local", "Conditional forwarding"),
        ("/settings", "API tokens"),
        ("/system", "Download backup"),
        ("/setup/done", "box-address"),
    ] {
        let r = c.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.body.contains(marker), "{path} lacks {marker}");
        assert!(r.body.contains("<meta name=\"csrf-token\""), "{path}");
        assert!(!r.body.contains("<script>alert"), "{path} did not escape");
        assert!(!r.body.contains("<img src=x>"), "{path} did not escape");
        assert!(!r.body.contains("<b>hi</b>"), "{path} did not escape");
        assert!(
            !r.body.contains("http://") || path == "/setup/done",
            "{path} links outside the box"
        );
    }
    let r = c.get("/querylog?status=exploded").await;
    assert!(
        r.body.contains("use one of"),
        "bad filter not reported on the page"
    );
}

#[tokio::test]
async fn login_and_setup_pages_work_without_javascript() {
    let b = start(|_| {}).await;
    let mut c = Client::new(&b.base());
    let page = c.get("/setup").await;
    assert_eq!(page.status, 200);
    let token = page
        .body
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let form = |pw: &str, t: &str| {
        format!(
            "_csrf={t}&password={pw}&upstream=custom&protocol=plain&custom_upstreams=192.168.1.1%3A53&list_stevenblack=on"
        )
    };
    let r = c
        .raw(
            "POST",
            "/setup",
            "application/x-www-form-urlencoded",
            form("short", &token).into_bytes(),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("at least 8 characters"),
        "error not shown at the field"
    );
    let r = c
        .raw(
            "POST",
            "/setup",
            "application/x-www-form-urlencoded",
            form("long%20enough%20pw", "forged").into_bytes(),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = c
        .raw(
            "POST",
            "/setup",
            "application/x-www-form-urlencoded",
            form("long%20enough%20pw", &token).into_bytes(),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), "/setup/done");
    assert_eq!(saved(&b).dns.upstreams[0].to_string(), "192.168.1.1:53");
    assert_eq!(c.get("/").await.status, 200);

    let mut d = Client::new(&b.base());
    let page = d.get("/login").await;
    let token = page
        .body
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = d
        .raw(
            "POST",
            "/login",
            "application/x-www-form-urlencoded",
            format!("_csrf={token}&password=wrong").into_bytes(),
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("wrong password"));
    let r = d
        .raw(
            "POST",
            "/login",
            "application/x-www-form-urlencoded",
            format!("_csrf={token}&password=long+enough+pw").into_bytes(),
        )
        .await;
    assert_eq!((r.status, r.header("location")), (303, "/"));
    let home = d.get("/").await;
    let csrf = home
        .body
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = d
        .raw(
            "POST",
            "/logout",
            "application/x-www-form-urlencoded",
            format!("_csrf={csrf}").into_bytes(),
        )
        .await;
    assert_eq!((r.status, r.header("location")), (303, "/login"));
    assert_eq!(d.get("/").await.header("location"), "/login");
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

/// The log page on the real query log: each page is one search, and
/// following `next_cursor` shows every row exactly once, also when many
/// rows share a millisecond and when rows not yet on flash (the RAM ring)
/// push flashed ones to the next page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_pages_follow_the_cursor_and_lose_no_row() {
    use glory_hole::clock::now_ms;
    use glory_hole::events::{QueryEvent, Reason, Source};
    use std::collections::HashSet;
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), Some("127.0.0.1:9"));
    // 60 rows on flash, five to a millisecond.
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<QueryEvent>(1024);
        let log = glory_hole::querylog::QueryLog::open(&config, rx).unwrap();
        let t0 = now_ms() - 600_000;
        for i in 0..60 {
            tx.send(QueryEvent {
                time_ms: t0 + i / 5,
                client: "192.168.1.10".parse().unwrap(),
                qname: heapless::String::try_from(format!("r{i}.example").as_str()).unwrap(),
                qtype: 1,
                rcode: 0,
                source: Source::Cache,
                upstream: u8::MAX,
                latency_us: 10,
                reason: Reason::default(),
            })
            .unwrap();
        }
        log.flush();
    }
    let app = glory_hole::app::App::start(config, dir.path().join("config.toml"))
        .await
        .unwrap();
    let dns = app.dns_addrs[0];
    // Three more only in the RAM ring (the log flushes once a minute);
    // local records answer without an upstream.
    app.apply({
        let mut c = (*app.config()).clone();
        c.local.records = (0..3)
            .map(|i| glory_hole::config::LocalRecord {
                name: format!("ring{i}.lan").parse().unwrap(),
                rtype: glory_hole::config::RecordType::A,
                value: glory_hole::config::Rdata::parse(
                    glory_hole::config::RecordType::A,
                    "192.168.1.2",
                )
                .unwrap(),
                ttl: 300,
            })
            .collect();
        c
    })
    .unwrap();
    for i in 0..3 {
        glory_hole::testing::client::ask(dns, &format!("ring{i}.lan"), 1).await;
    }
    let addrs = glory_hole::web::serve(app.clone(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let mut c = Client::new(&format!("http://{}", addrs[0]));
    assert_eq!(c.setup(PASSWORD).await.status, 200);

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<i64> = None;
    let mut pages = 0;
    loop {
        let q = match cursor {
            Some(k) => format!("/api/v1/querylog?limit=7&cursor={k}"),
            None => "/api/v1/querylog?limit=7".to_string(),
        };
        let page = c.get(&q).await.json();
        let rows = page["rows"].as_array().unwrap();
        assert!(rows.len() <= 7, "{page}");
        seen.extend(
            rows.iter()
                .map(|r| r["domain"].as_str().unwrap().to_string()),
        );
        pages += 1;
        assert!(pages < 40, "paging does not end: {seen:?}");
        match page["next_cursor"].as_i64() {
            Some(k) => cursor = Some(k),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a row shown twice: {seen:?}");
    assert_eq!(seen.len(), 63, "{seen:?}");
    assert!(seen[..3].iter().all(|d| d.starts_with("ring")), "{seen:?}");
    // The page links to the next one by cursor.
    let html = c.get("/querylog?domain=example&limit=7").await.body;
    let link = html
        .split("href=\"/querylog?")
        .nth(1)
        .and_then(|l| l.split('"').next())
        .expect("an 'Older queries' link");
    assert!(
        link.starts_with("domain=example&amp;limit=7&amp;cursor="),
        "{link}"
    );
    let older = c
        .get(&format!("/querylog?{}", link.replace("&amp;", "&")))
        .await
        .body;
    assert!(
        !older.contains("id=\"live\" checked"),
        "an older page stays put"
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
