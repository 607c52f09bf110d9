//! The Pi-hole v6 API subset Home Assistant uses (`web::pihole`) over real
//! HTTP: each endpoint's JSON shape, and who may do what (admin password,
//! `read` and `admin` API tokens, revoked tokens, no session).

mod support;

use glory_hole::web::Backend;
use serde_json::{Value, json};
use support::web::*;

/// A client with no cookies and no CSRF token, as Home Assistant is.
fn outsider(b: &TestBox) -> Client {
    Client::new(&b.base())
}

async fn new_token(c: &mut Client, scope: &str) -> (String, String) {
    let r = c
        .send(
            "POST",
            "/api/v1/tokens",
            json!({"name": format!("ha-{scope}"), "scope": scope}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    (
        v["token"].as_str().unwrap().to_string(),
        v["id"].as_str().unwrap().to_string(),
    )
}

/// `POST /api/auth`; returns the sid from a valid session.
async fn pihole_login(c: &mut Client, password: &str) -> String {
    let r = c
        .send("POST", "/api/auth", json!({"password": password}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = &r.json()["session"];
    assert_eq!(s["valid"], true, "{}", r.body);
    assert_eq!(s["validity"], 1800, "{}", r.body);
    assert!(r.json()["took"].is_number(), "{}", r.body);
    s["sid"].as_str().expect("sid").to_string()
}

fn with_sid(b: &TestBox, sid: &str) -> Client {
    let mut c = outsider(b);
    c.extra.push(("X-FTL-SID".into(), sid.into()));
    c
}

fn assert_pihole_error(r: &Resp, status: u16, key: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.json()["error"]["key"], key, "{}", r.body);
    assert!(r.json()["error"]["message"].is_string(), "{}", r.body);
}

#[tokio::test]
async fn password_session_reads_every_endpoint_in_pihole_shapes() {
    let (b, _admin) = ready(|_| {}).await;
    b.backend.record("ads.example", "192.168.1.20", "blocked");
    b.backend.record("ads.example", "192.168.1.20", "blocked");
    b.backend
        .record("news.example", "192.168.1.21", "forwarded");
    b.backend.record("news.example", "192.168.1.20", "cache");

    let mut anon = outsider(&b);
    let sid = pihole_login(&mut anon, PASSWORD).await;
    let mut ha = with_sid(&b, &sid);

    let s = ha.get("/api/stats/summary").await;
    assert_eq!(s.status, 200, "{}", s.body);
    let q = &s.json()["queries"];
    assert_eq!(q["total"], 4);
    assert_eq!(q["blocked"], 2);
    assert_eq!(q["percent_blocked"], 50.0);
    assert_eq!(q["cached"], 1);
    assert_eq!(q["forwarded"], 1);
    assert_eq!(q["unique_domains"], 2);
    assert_eq!(s.json()["clients"]["active"], 2);
    assert!(s.json()["gravity"]["domains_being_blocked"].is_u64());

    let t = ha.get("/api/stats/top_domains?blocked=true&count=10").await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(
        t.json()["domains"],
        json!([{"domain": "ads.example", "count": 2}])
    );
    let t = ha.get("/api/stats/top_domains?blocked=false&count=1").await;
    let top: &Value = &t.json()["domains"];
    assert_eq!(top.as_array().unwrap().len(), 1, "{}", t.body);
    let c = ha.get("/api/stats/top_clients?count=10").await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.json()["clients"][0]["ip"], "192.168.1.20");
    assert_eq!(c.json()["clients"][0]["count"], 3);
    let u = ha.get("/api/stats/upstreams").await;
    assert_eq!(u.status, 200, "{}", u.body);
    assert!(u.json()["upstreams"].is_array(), "{}", u.body);
    assert_eq!(u.json()["total_queries"], 4);

    let v = ha.get("/api/info/version").await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(
        v.json()["version"]["core"]["local"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    // No update offered through this API: remote equals local.
    assert_eq!(
        v.json()["version"]["core"]["remote"]["hash"],
        v.json()["version"]["core"]["local"]["hash"]
    );

    // The sid also works as a query parameter.
    let r = anon.get(&format!("/api/dns/blocking?sid={sid}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["blocking"], "enabled");
    assert_eq!(r.json()["timer"], Value::Null);
}

#[tokio::test]
async fn blocking_pauses_with_a_timer_and_resumes() {
    let (b, _admin) = ready(|_| {}).await;
    let mut ha = with_sid(&b, &pihole_login(&mut outsider(&b), PASSWORD).await);

    let r = ha
        .send(
            "POST",
            "/api/dns/blocking",
            json!({"blocking": false, "timer": 90}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["blocking"], "disabled");
    // 90 s asks for a pause in whole minutes, rounded up: two minutes.
    let timer = r.json()["timer"].as_f64().expect("timer");
    assert!((110.0..=120.0).contains(&timer), "timer {timer}");
    let p = b.backend.pause_status();
    assert!(p.paused);
    let left = p.until_ms.unwrap() - glory_hole::clock::now_ms();
    assert!((110_000..=120_000).contains(&left), "{left} ms left");
    assert_eq!(
        ha.get("/api/dns/blocking").await.json()["blocking"],
        "disabled"
    );

    let r = ha
        .send(
            "POST",
            "/api/dns/blocking",
            json!({"blocking": true, "timer": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["blocking"], "enabled");
    assert!(!b.backend.pause_status().paused);

    // Without a timer: until re-enabled.
    let r = ha
        .send("POST", "/api/dns/blocking", json!({"blocking": false}))
        .await;
    assert_eq!(r.json()["timer"], Value::Null, "{}", r.body);
    assert!(b.backend.pause_status().paused);
    assert_eq!(b.backend.pause_status().until_ms, None);

    for bad in [
        json!({"blocking": false, "timer": -1}),
        json!({"blocking": false, "timer": 10_000_000}),
        json!({"blocking": true, "timer": 30}),
        json!({"timer": 30}),
    ] {
        let r = ha.send("POST", "/api/dns/blocking", bad.clone()).await;
        assert_pihole_error(&r, 400, "bad_request");
        assert!(b.backend.pause_status().paused, "{bad} changed the pause");
    }
}

#[tokio::test]
async fn credentials_and_scopes_follow_our_own_api() {
    let (b, mut admin) = ready(|_| {}).await;

    // No session: refused, in Pi-hole's shape, on every endpoint.
    let mut anon = outsider(&b);
    for path in [
        "/api/stats/summary",
        "/api/stats/top_domains",
        "/api/stats/top_clients",
        "/api/stats/upstreams",
        "/api/info/version",
        "/api/dns/blocking",
    ] {
        assert_pihole_error(&anon.get(path).await, 401, "unauthorized");
    }
    let r = anon
        .send("POST", "/api/dns/blocking", json!({"blocking": false}))
        .await;
    assert_pihole_error(&r, 401, "unauthorized");
    assert_pihole_error(
        &with_sid(&b, "0123abcd").get("/api/stats/summary").await,
        401,
        "unauthorized",
    );

    // A wrong password: Pi-hole's invalid session, 401.
    let r = anon
        .send("POST", "/api/auth", json!({"password": "not it"}))
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["session"]["valid"], false);
    assert_eq!(r.json()["session"]["sid"], Value::Null);
    let r = anon.send("POST", "/api/auth", json!({"pass": "x"})).await;
    assert_pihole_error(&r, 400, "bad_request");

    // A read token as the "app password": reads, may not change blocking.
    let (read, read_id) = new_token(&mut admin, "read").await;
    let mut reader = with_sid(&b, &pihole_login(&mut outsider(&b), &read).await);
    assert_eq!(reader.get("/api/stats/summary").await.status, 200);
    let r = reader
        .send("POST", "/api/dns/blocking", json!({"blocking": false}))
        .await;
    assert_pihole_error(&r, 403, "forbidden");
    assert!(!b.backend.pause_status().paused);
    // The same token as a bearer, as our own API takes it.
    let mut bearer = outsider(&b);
    bearer.bearer = Some(read.clone());
    assert_eq!(bearer.get("/api/stats/summary").await.status, 200);
    let r = bearer
        .send("POST", "/api/dns/blocking", json!({"blocking": false}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!b.backend.pause_status().paused);

    // Revoking the token ends its sessions.
    let r = admin
        .send("DELETE", &format!("/api/v1/tokens/{read_id}"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_pihole_error(&reader.get("/api/stats/summary").await, 401, "unauthorized");

    // An admin token may change blocking.
    let (adm, _) = new_token(&mut admin, "admin").await;
    let mut adm = with_sid(&b, &pihole_login(&mut outsider(&b), &adm).await);
    let r = adm
        .send(
            "POST",
            "/api/dns/blocking",
            json!({"blocking": false, "timer": 60}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(b.backend.pause_status().paused);

    // Logging out ends a password session; a password change ends the rest.
    let sid = pihole_login(&mut outsider(&b), PASSWORD).await;
    let mut ha = with_sid(&b, &sid);
    assert_eq!(ha.send("DELETE", "/api/auth", json!({})).await.status, 204);
    assert_pihole_error(&ha.get("/api/stats/summary").await, 401, "unauthorized");
    let sid = pihole_login(&mut outsider(&b), PASSWORD).await;
    let r = admin
        .send(
            "POST",
            "/api/v1/password",
            json!({"current": PASSWORD, "new": "another good passphrase"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_pihole_error(
        &with_sid(&b, &sid).get("/api/stats/summary").await,
        401,
        "unauthorized",
    );

    // Our own /api/v1 still needs our own credentials.
    assert_eq!(with_sid(&b, "x").get("/api/v1/stats").await.status, 401);
}

/// Runs `python3 tests/python/pihole_hole.py ACTION` against the box at `web`.
async fn run_hole(
    web: std::net::SocketAddr,
    password: &str,
    action: &[&str],
) -> std::process::Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/pihole_hole.py");
    tokio::process::Command::new("python3")
        .arg(script)
        .args(action)
        .env("GH_HOST", web.ip().to_string())
        .env("GH_PORT", web.port().to_string())
        .env("GH_PASSWORD", password)
        .output()
        .await
        .expect("python3 runs (installed by .ci/setup)")
}

/// The JSON `pihole_hole.py` prints. Fails, never skips, without the
/// library.
async fn hole(web: std::net::SocketAddr, password: &str, action: &[&str]) -> Value {
    let out = run_hole(web, password, action).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hole {action:?} failed ({}): {stderr}\n(the `hole` library comes from .ci/setup)",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "hole {action:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Home Assistant's own client library, `hole`, against the running server
/// (DNS, filter, query log, web): reads the summary, pauses blocking with a
/// timer (a blocked name then resolves) and resumes it (blocked again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistants_hole_library_reads_pauses_and_resumes() {
    use glory_hole::testing::client::{answers, ask};
    use glory_hole::testing::upstream::{Behaviour, StandIn};
    let upstream = StandIn::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    upstream.set_default(Behaviour::a("192.0.2.7".parse().unwrap(), 60));
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "data_dir = {:?}\n[dns]\nlisten = [\"127.0.0.1:0\"]\nupstreams = [\"{}\"]\n\
         [filter]\ndeny = [\"ads.example\"]\n[querylog]\nflush_interval = \"200ms\"\n[web]\nenabled = false\n",
        dir.path().display().to_string(),
        upstream.addr()
    );
    let config = glory_hole::config::Config::from_toml(&toml, "test config").unwrap();
    let app = glory_hole::app::App::start(config, dir.path().join("config.toml"))
        .await
        .unwrap();
    let dns = app.dns_addrs[0];
    let web = glory_hole::web::serve(app.clone(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap()[0];
    let mut c = Client::new(&format!("http://{web}"));
    assert_eq!(c.setup(PASSWORD).await.status, 200);
    // Setup chose a public upstream and a list: back to the stand-in.
    let mut cfg = (*app.config()).clone();
    cfg.dns.upstreams = vec![glory_hole::config::Upstream::Plain(upstream.addr())];
    cfg.filter.lists.clear();
    app.apply(cfg).unwrap();

    let unblocked = vec!["192.0.2.7".to_string()];
    assert_ne!(answers(&ask(dns, "ads.example", 1).await), unblocked);
    let m = ask(dns, "news.example", 1).await;
    assert_eq!(answers(&m), unblocked, "{m:?}");

    // The query log counts the two queries (poll: it takes them in batches).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let summary = loop {
        let s = hole(web, PASSWORD, &["summary"]).await;
        if s["dns_queries_today"].as_u64() >= Some(2) || std::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(summary["status"], "enabled", "{summary}");
    assert_eq!(summary["dns_queries_today"], 2, "{summary}");
    assert_eq!(summary["ads_blocked_today"], 1, "{summary}");
    assert_eq!(summary["ads_percentage_today"], 50.0, "{summary}");
    assert_eq!(summary["unique_domains"], 2, "{summary}");
    assert_eq!(
        summary["core_current"],
        env!("CARGO_PKG_VERSION"),
        "{summary}"
    );
    assert_eq!(summary["core_update"], false, "{summary}");
    assert_eq!(summary["top_ads"][0]["domain"], "ads.example", "{summary}");

    let paused = hole(web, PASSWORD, &["disable", "60"]).await;
    assert_eq!(paused["status"], "disabled", "{paused}");
    let p = app.pause_status();
    assert!(p.paused);
    let left = p.until_ms.expect("a timed pause") - glory_hole::clock::now_ms();
    assert!((50_000..=60_000).contains(&left), "{left} ms left");
    assert_eq!(answers(&ask(dns, "ads.example", 1).await), unblocked);

    let resumed = hole(web, PASSWORD, &["enable"]).await;
    assert_eq!(resumed["status"], "enabled", "{resumed}");
    assert!(!app.pause_status().paused);
    assert_ne!(answers(&ask(dns, "ads.example", 1).await), unblocked);

    // A wrong password is refused by the library as by the integration.
    let out = run_hole(web, "not the password", &["summary"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Invalid password"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
