//! First-boot setup over real HTTP: the API and the plain forms that work
//! without JavaScript. Each change must be saved to the config file on disk.

mod support;

use glory_hole::web::Backend;
use serde_json::json;
use support::web::*;

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
