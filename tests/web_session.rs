//! Logging in and out, sessions, the admin password and API tokens over
//! real HTTP on loopback, with the auth, CSRF, Host-header and rate-limit
//! failures a user or an attacker's page can cause.

mod support;

use serde_json::json;
use support::web::*;

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
                // Ours, or Pi-hole's `{"error": {"key", "message"}}`.
                let e = &r.json()["error"];
                assert!(e.is_string() || e["message"].is_string(), "{path}: {e}");
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
        .send(
            "POST",
            "/api/v1/tokens",
            json!({"name": "home-assistant", "scope": "admin"}),
        )
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
