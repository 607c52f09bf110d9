//! What a device on the LAN can try against the web UI, over real
//! sockets: claiming an unset box, login floods, slow and oversized
//! uploads, a trickling client, a `read` token used for changes, a query
//! name made to look like a rule, plain-http lists, and what a factory
//! reset leaves on disk.

mod support;

use glory_hole::config::{Config, Dur, FilterList};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::web::{Client, PASSWORD, TestBox, app_config, ready, start, start_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn setup_body() -> serde_json::Value {
    json!({"password": PASSWORD, "upstream": "quad9", "protocol": "plain",
           "blocklists": ["stevenblack"],
           "network": {"mode": "static", "address": "192.168.1.2/24", "gateway": "192.168.1.1", "timezone": "Europe/Berlin"}})
}

/// Every file under `dir`, relative names.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

async fn csrf_client(b: &TestBox) -> Client {
    let mut c = Client::new(&b.base());
    c.csrf = Some(
        c.get("/api/v1/setup").await.json()["csrf"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    c
}

#[tokio::test]
async fn setup_after_the_window_is_refused_before_anything_is_written() {
    let b = start(|c| {
        c.web.appliance = true;
        c.web.setup_window = Dur(Duration::ZERO);
    })
    .await;
    let before = files(b.dir.path());
    let mut c = csrf_client(&b).await;
    let r = c.send("POST", "/api/v1/setup", setup_body()).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("setup window has closed"), "{}", r.body);
    let r = c
        .raw(
            "POST",
            "/api/v1/setup/restore",
            "application/octet-stream",
            b"# glory-hole backup".to_vec(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(files(b.dir.path()), before, "a refused setup wrote a file");
    assert!(!b.dir.path().join("network.conf").exists());
    assert_eq!(c.get("/health").await.json()["setup_needed"], true);
    let page = c.get("/setup").await;
    assert!(
        page.body.contains("setup window has closed"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn setup_asks_for_the_boot_partitions_secret() {
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("setup-secret.txt");
    std::fs::write(&secret_file, "plum-otter-42\n").unwrap();
    let b = start(|c| {
        c.web.appliance = true;
        c.web.setup_secret_file = secret_file.clone();
    })
    .await;
    let before = files(b.dir.path());
    let mut c = csrf_client(&b).await;
    let page = c.get("/setup").await;
    assert!(page.body.contains("name=\"setup_secret\""), "{}", page.body);
    assert!(page.body.contains("more minute"), "{}", page.body);
    for wrong in [None, Some("plum-otter-41")] {
        let mut body = setup_body();
        if let Some(w) = wrong {
            body["setup_secret"] = json!(w);
        }
        let r = c.send("POST", "/api/v1/setup", body).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(r.json()["field"], "setup_secret");
        let r = c
            .raw(
                "POST",
                &format!("/api/v1/setup/restore?setup_secret={}", wrong.unwrap_or("")),
                "application/octet-stream",
                b"x".to_vec(),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.body);
    }
    assert_eq!(files(b.dir.path()), before, "a refused setup wrote a file");
    let mut body = setup_body();
    body["setup_secret"] = json!("plum-otter-42");
    let r = c.send("POST", "/api/v1/setup", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(b.dir.path().join("network.conf").exists());
}

#[tokio::test]
async fn setup_restore_is_closed_once_set_up() {
    let (b, _) = ready(|_| {}).await;
    let mut c = csrf_client(&b).await;
    let r = c
        .raw(
            "POST",
            "/api/v1/setup/restore",
            "application/octet-stream",
            vec![b'#'; 1 << 20],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
}

/// A client whose connections come from `from` (any 127/8 address is
/// this machine).
fn client_from(base: &str, from: IpAddr) -> Client {
    let mut c = Client::new(base);
    c.http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(from)
        .build()
        .unwrap();
    c
}

async fn password_checks(metrics: &mut Client) -> u64 {
    let m = metrics.get("/metrics").await;
    assert_eq!(m.status, 200, "{}", m.body);
    m.body
        .lines()
        .find_map(|l| l.strip_prefix("glory_hole_login_password_checks_total "))
        .unwrap_or_else(|| panic!("no login counter in {}", m.body))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_gets_five_hashes_and_the_owner_still_logs_in() {
    let (b, mut owner) = ready(|c| c.web.metrics = true).await;
    let t = owner
        .send("POST", "/api/v1/tokens", json!({"name": "prom"}))
        .await;
    let mut metrics = Client::new(&b.base());
    metrics.bearer = Some(t.json()["token"].as_str().unwrap().to_string());
    let before = password_checks(&mut metrics).await;

    // The attacker: 1000 wrong passwords at once from 127.0.0.1.
    let attacker = csrf_client(&b).await;
    let cookie = format!("gh_pre={}", attacker.cookies["gh_pre"]);
    let csrf = attacker.csrf.clone().unwrap();
    let url = format!("{}/api/v1/login", b.base());
    let http = reqwest::Client::new();
    let flood: Vec<_> = (0..1000)
        .map(|i| {
            let req = http
                .post(&url)
                .header("cookie", &cookie)
                .header("x-csrf-token", &csrf)
                .header("content-type", "application/json")
                .body(json!({"password": format!("guess number {i}")}).to_string());
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();

    // Meanwhile the owner logs in from another address.
    let mut from_elsewhere = client_from(&b.base(), "127.0.0.2".parse().unwrap());
    let r = from_elsewhere.login(PASSWORD).await;
    assert_eq!(r.status, 200, "the owner was locked out: {}", r.body);

    let (mut wrong, mut refused, mut dropped) = (0, 0, 0);
    for f in flood {
        match f.await.unwrap() {
            Ok(401) => wrong += 1,
            Ok(429 | 503) => refused += 1,
            Ok(s) => panic!("a wrong password got {s}"),
            // Connections past the per-address cap are closed unanswered.
            Err(_) => dropped += 1,
        }
    }
    assert!(wrong <= 5, "{wrong} wrong passwords were checked");
    assert_eq!(wrong + refused + dropped, 1000);
    let hashed = password_checks(&mut metrics).await - before;
    assert!(
        hashed <= 5 + 1,
        "{hashed} password hashes for 1000 guesses and one login"
    );
    assert!(hashed >= 1, "the owner's login was not hashed");
}

#[tokio::test]
async fn a_read_token_is_refused_on_every_admin_route() {
    let (b, mut c) = ready(|c| c.web.metrics = true).await;
    let doc = c.get("/api/v1/openapi.json").await.json();
    let read = c
        .send("POST", "/api/v1/tokens", json!({"name": "home assistant"}))
        .await;
    assert_eq!(read.status, 201, "{}", read.body);
    assert_eq!(read.json()["scope"], "read");
    let mut ha = Client::new(&b.base());
    ha.bearer = Some(read.json()["token"].as_str().unwrap().to_string());

    let mut admin_routes = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let public = op["security"] == json!([]);
            // Every change, and the two reads that hand out credentials.
            let admin = method != "get" || path == "/api/v1/backup" || path == "/api/v1/tokens";
            if public || !admin {
                continue;
            }
            admin_routes += 1;
            let concrete = path.replace("{name}", "x").replace("{id}", "0a1b2c3d");
            let r = ha.send(&method.to_uppercase(), &concrete, json!({})).await;
            assert_eq!(
                r.status, 403,
                "{method} {path} with a read token: {}",
                r.body
            );
        }
    }
    assert!(
        admin_routes >= 25,
        "only {admin_routes} admin routes listed"
    );
    for path in ["/api/v1/stats", "/api/v1/querylog", "/metrics"] {
        let r = ha.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    assert_eq!(c.get("/api/v1/tokens").await.json()[0]["scope"], "read");
    let admin = c
        .send(
            "POST",
            "/api/v1/tokens",
            json!({"name": "script", "scope": "admin"}),
        )
        .await;
    ha.bearer = Some(admin.json()["token"].as_str().unwrap().to_string());
    let r = ha
        .send(
            "POST",
            "/api/v1/rules",
            json!({"list": "deny", "entry": "by-admin-token.example"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn blocking_from_the_log_blocks_the_exact_name_only() {
    let (b, mut c) = ready(|_| {}).await;
    b.backend.record("/.*/", "192.168.1.66", "upstream");
    b.backend.record("*.example", "192.168.1.66", "upstream");
    b.backend.record("Ads.Example", "192.168.1.66", "upstream");
    let page = c.get("/querylog").await;
    assert!(
        page.body.contains("data-domain=\"/.*/\""),
        "no block button for the odd name: {}",
        page.body
    );
    // What the page's block button sends.
    let js = c.get("/assets/app.js").await.body;
    assert!(js.contains("exact: true"), "the block button is not exact");
    for odd in ["/.*/", "*.example"] {
        let r = c
            .send(
                "POST",
                "/api/v1/rules",
                json!({"list": "deny", "entry": odd, "exact": true}),
            )
            .await;
        assert_eq!(r.status, 422, "{odd}: {}", r.body);
        assert!(r.body.contains("not a domain name"), "{}", r.body);
    }
    let r = c
        .send(
            "POST",
            "/api/v1/rules",
            json!({"list": "deny", "entry": "Ads.Example", "exact": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let deny: Vec<String> = support::web::saved(&b)
        .filter
        .deny
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(deny, ["ads.example"]);
}

#[tokio::test]
async fn uploads_are_bounded_in_size_and_number() {
    let (b, c) = ready(|_| {}).await;
    let base = b.base();
    let cookie: Vec<String> = c.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let cookie = cookie.join("; ");
    let csrf = c.csrf.clone().unwrap();
    let http = reqwest::Client::new();
    let post = |path: &str, body: reqwest::Body| {
        http.post(format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    // Too large: refused, whether declared or streamed without a length.
    let r = post("/api/v1/restore", vec![b'#'; 5 << 20].into())
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let chunks = futures_util::stream::iter(
        (0..40).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'#'; 1 << 20]))),
    );
    let r = post(
        "/api/v1/import/teleporter",
        reqwest::Body::wrap_stream(chunks),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);

    // Two uploads that never finish hold both places; the third is
    // refused at once.
    let mut held = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
        tx.send(Ok(bytes::Bytes::from_static(b"# glory-hole backup\n")))
            .await
            .unwrap();
        senders.push(tx);
        let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
        held.push(tokio::spawn(post("/api/v1/restore", body)));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = post("/api/v1/restore", b"x".to_vec().into()).await.unwrap();
        if r.status() == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "a third upload was let in");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(senders);
    for h in held {
        let _ = h.await.unwrap();
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_dropped() {
    let (b, mut c) = ready(|_| {}).await;
    let mut slow = tokio::net::TcpStream::connect(b.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 256];
    let closed = loop {
        assert!(Instant::now() < deadline, "the trickling client was kept");
        if slow.write_all(b"X-A: b\r\n").await.is_err() {
            break true;
        }
        match tokio::time::timeout(Duration::from_millis(500), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            // A 408 or similar before closing counts too.
            Ok(Ok(_)) => break true,
            Err(_) => {}
        }
    };
    assert!(closed);
    // Everyone else is still answered.
    assert_eq!(c.get("/api/v1/stats").await.status, 200);
}

#[tokio::test]
async fn list_urls_must_be_https() {
    let (_b, mut c) = ready(|_| {}).await;
    let r = c
        .send(
            "POST",
            "/api/v1/lists",
            json!({"name": "plain", "url": "http://lists.example/hosts"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("https://"), "{}", r.body);
    let e = Config::from_toml(
        "[[filter.lists]]\nname = \"plain\"\nurl = \"http://lists.example/hosts\"\n",
        "test",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("filter.lists[0]") && e.contains("https://"),
        "{e}"
    );
    Config::from_toml(
        "[[filter.lists]]\nname = \"mine\"\npath = \"/etc/hosts\"\n",
        "test",
    )
    .unwrap();
}

/// A stand-in list site on loopback that redirects every request to `to`.
async fn redirecting_site(to: &'static str) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_redirect_may_not_leave_https() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let site = redirecting_site("http://192.0.2.1/hosts").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    cfg.filter.lists = vec![FilterList {
        name: "moved".into(),
        path: None,
        url: Some(format!("http://{site}/hosts")),
        enabled: true,
        match_mode: None,
        groups: vec![],
    }];
    let opts = glory_hole::filter::ServiceOptions {
        neighbour_table: dir.path().join("arp"),
        neighbour_refresh: Duration::from_secs(3600),
    };
    let c = cfg.clone();
    let svc = std::thread::spawn(move || glory_hole::filter::FilterService::start_with(&c, opts))
        .join()
        .unwrap()
        .unwrap();
    let st = svc.update_lists_now().await;
    let err = st[0].last_error.clone().unwrap_or_default();
    assert!(
        err.contains("redirected to http://192.0.2.1/hosts") && err.contains("https://"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factory_reset_leaves_nothing_of_the_household() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = app_config(&data, None);
    config.web.appliance = true;
    let app = glory_hole::app::App::start(config, data.join("config.toml"))
        .await
        .unwrap();
    let dns = app.dns_addrs[0];
    let b = start_with(app.clone(), dir).await;
    let mut c = Client::new(&b.base());
    assert_eq!(c.setup(PASSWORD).await.status, 200);
    let marker = "household-secret";
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "deny", "entry": format!("{marker}.example")}),
    )
    .await;
    let t = c
        .send(
            "POST",
            "/api/v1/tokens",
            json!({"name": format!("{marker}-token")}),
        )
        .await;
    assert_eq!(t.status, 201);
    let r = c
        .send(
            "PUT",
            "/api/v1/network",
            json!({"mode": "static", "address": "192.168.77.2/24", "gateway": "192.168.77.1", "timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A second change leaves the first in config.toml.prev.
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "allow", "entry": format!("{marker}-allowed.example")}),
    )
    .await;
    glory_hole::testing::client::ask(dns, &format!("{marker}.example"), 1).await;
    app.querylog.flush();
    // A list copy and its previous version, as a download leaves them.
    let lists = data.join("lists");
    glory_hole::atomic_file::save_atomic(&lists.join("x.txt"), marker.as_bytes()).unwrap();
    glory_hole::atomic_file::save_atomic(&lists.join("x.txt"), marker.as_bytes()).unwrap();

    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    let before = files(&data);
    for f in [
        "config.toml",
        "config.toml.prev",
        "web-auth.json",
        "network.conf",
        "querylog.db",
        "lists/x.txt.prev",
    ] {
        assert!(
            before.contains(&PathBuf::from(f)),
            "{f} missing: {before:?}"
        );
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&lists), 0o700);
    let holds_marker = |f: &PathBuf| {
        std::fs::read(data.join(f))
            .map(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
            .unwrap_or(false)
    };
    assert!(
        before.iter().any(holds_marker),
        "nothing to wipe: {before:?}"
    );

    let r = c
        .send("POST", "/api/v1/system/factory-reset", json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = files(&data);
    let left: Vec<&PathBuf> = after.iter().filter(|f| holds_marker(f)).collect();
    assert!(left.is_empty(), "the household is still in {left:?}");
    for f in [
        "config.toml.prev",
        "web-auth.json",
        "web-auth.json.prev",
        "network.conf",
        "querylog.db",
        "querylog.db-wal",
        "querylog.db-shm",
        "lists/x.txt",
        "lists/x.txt.prev",
    ] {
        assert!(!after.contains(&PathBuf::from(f)), "{f} left: {after:?}");
    }
    assert_eq!(c.get("/health").await.json()["setup_needed"], true);
}
