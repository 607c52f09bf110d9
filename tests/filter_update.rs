//! List downloads against a list site written here (tokio TcpListener
//! speaking minimal HTTP/1.1): 200 with ETag, 304, 404, timeout, oversize,
//! garbage. A failed download keeps the last good copy and is reported.

use glory_hole::config::{Config, Dur, FilterList};
use glory_hole::filter::{FilterService, ServiceOptions, Verdict};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the fake site serves per path.
#[derive(Clone)]
enum Page {
    /// 200 with this ETag; 304 when the client sends it back.
    List {
        body: String,
        etag: String,
    },
    Status(u16),
    /// Never answers within the test's timeout.
    Stall,
    /// A body this long (without Content-Length, so the cap is hit while streaming).
    Huge(usize),
    Html,
}

#[derive(Default)]
struct Site {
    pages: HashMap<String, Page>,
    /// (path, If-None-Match) per request.
    log: Vec<(String, Option<String>)>,
}

async fn serve(site: Arc<Mutex<Site>>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let site = site.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).to_string();
                let path = text.split(' ').nth(1).unwrap_or("/").to_string();
                let inm = text.lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .starts_with("if-none-match:")
                        .then(|| l["if-none-match:".len()..].trim().to_string())
                });
                let page = {
                    let mut site = site.lock().unwrap();
                    site.log.push((path.clone(), inm.clone()));
                    site.pages.get(&path).cloned().unwrap_or(Page::Status(404))
                };
                let head = |status: &str, extra: &str, len: Option<usize>| {
                    let len = len
                        .map(|l| format!("Content-Length: {l}\r\n"))
                        .unwrap_or_default();
                    format!("HTTP/1.1 {status}\r\n{extra}{len}Connection: close\r\n\r\n")
                };
                match page {
                    Page::List { body, etag } => {
                        if inm.as_deref() == Some(etag.as_str()) {
                            let _ = s
                                .write_all(
                                    head("304 Not Modified", &format!("ETag: {etag}\r\n"), None)
                                        .as_bytes(),
                                )
                                .await;
                        } else {
                            let h = head("200 OK", &format!("ETag: {etag}\r\n"), Some(body.len()));
                            let _ = s.write_all(h.as_bytes()).await;
                            let _ = s.write_all(body.as_bytes()).await;
                        }
                    }
                    Page::Status(code) => {
                        let _ = s
                            .write_all(head(&format!("{code} Nope"), "", Some(0)).as_bytes())
                            .await;
                    }
                    Page::Stall => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Page::Huge(n) => {
                        let _ = s.write_all(head("200 OK", "", None).as_bytes()).await;
                        let line = "0.0.0.0 filler.example\n".repeat(1000);
                        let mut sent = 0;
                        while sent < n {
                            if s.write_all(line.as_bytes()).await.is_err() {
                                return;
                            }
                            sent += line.len();
                        }
                    }
                    Page::Html => {
                        let body = "<!doctype html>\n<html>\n<body>\n<h1>Service unavailable</h1>\n</body>\n</html>\n";
                        let h = head("200 OK", "Content-Type: text/html\r\n", Some(body.len()));
                        let _ = s.write_all(h.as_bytes()).await;
                        let _ = s.write_all(body.as_bytes()).await;
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

fn url_list(name: &str, addr: SocketAddr) -> FilterList {
    FilterList {
        name: name.into(),
        path: None,
        url: Some(format!("http://{addr}/{name}")),
        enabled: true,
        match_mode: None,
        groups: vec![],
    }
}

fn config(dir: &std::path::Path, addr: SocketAddr, names: &[&str]) -> Config {
    let mut cfg = Config {
        data_dir: dir.join("data"),
        ..Config::default()
    };
    cfg.filter.download_timeout = Dur(Duration::from_millis(1500));
    cfg.filter.download_max_mib = 1;
    cfg.filter.lists = names.iter().map(|n| url_list(n, addr)).collect();
    cfg
}

fn opts(dir: &std::path::Path) -> ServiceOptions {
    ServiceOptions {
        neighbour_table: dir.join("arp"),
        neighbour_refresh: Duration::from_secs(3600),
    }
}

fn check(svc: &FilterService, name: &str) -> Verdict {
    svc.current()
        .load()
        .check(name, "192.168.1.10".parse().unwrap())
}

fn set(site: &Arc<Mutex<Site>>, path: &str, page: Page) {
    site.lock().unwrap().pages.insert(path.into(), page);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_200_304_and_failures_keep_the_last_good_copy() {
    let site = Arc::new(Mutex::new(Site::default()));
    let addr = serve(site.clone()).await;
    let list_v1 = Page::List {
        body: "# good list\n0.0.0.0 ads.example\n||tracker.example^\n".into(),
        etag: "\"v1\"".into(),
    };
    for name in ["good", "missing", "slow", "huge", "html"] {
        set(&site, &format!("/{name}"), list_v1.clone());
    }
    set(&site, "/missing", Page::Status(404));
    set(&site, "/slow", Page::Stall);
    set(&site, "/huge", Page::Huge(3 << 20));
    set(&site, "/html", Page::Html);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        addr,
        &["good", "missing", "slow", "huge", "html"],
    );
    // Outside a runtime: no boot download, so the test drives every update.
    let (c, o) = (cfg.clone(), opts(dir.path()));
    let svc = std::thread::spawn(move || FilterService::start_with(&c, o))
        .join()
        .unwrap()
        .unwrap();
    assert!(svc.wait_ready(Duration::from_secs(60)));
    assert_eq!(check(&svc, "ads.example"), Verdict::Pass);

    let st = svc.update_lists_now().await;
    let by = |n: &str| st.iter().find(|s| s.name == n).unwrap().clone();
    assert_eq!(by("good").last_error, None);
    assert_eq!((by("good").domains, by("good").rules), (2, 2));
    assert!(by("good").last_update_ms.is_some());
    assert!(
        by("missing").last_error.unwrap().contains("404"),
        "{:?}",
        by("missing")
    );
    assert!(
        by("slow").last_error.unwrap().contains("timed out"),
        "{:?}",
        by("slow")
    );
    assert!(
        by("huge").last_error.unwrap().contains("MiB limit"),
        "{:?}",
        by("huge")
    );
    assert!(
        by("html").last_error.unwrap().contains("not a blocklist"),
        "{:?}",
        by("html")
    );
    assert!(matches!(check(&svc, "ads.example"), Verdict::Blocked(r) if r.kind == 1 && r.id == 0));
    assert!(matches!(
        check(&svc, "x.tracker.example"),
        Verdict::Blocked(_)
    ));

    // Second round: the server answers 304 to the ETag we kept.
    set(&site, "/slow", Page::Status(404));
    site.lock().unwrap().log.clear();
    let st = svc.update_lists_now().await;
    let good_req = site
        .lock()
        .unwrap()
        .log
        .iter()
        .find(|(p, _)| p == "/good")
        .cloned();
    assert_eq!(good_req, Some(("/good".into(), Some("\"v1\"".into()))));
    assert_eq!(st[0].last_error, None);
    assert_eq!(st[0].domains, 2);

    // The site breaks: the last good copy stays and keeps blocking.
    for page in [Page::Status(500), Page::Html, Page::Huge(3 << 20)] {
        set(&site, "/good", page);
        let st = svc.update_lists_now().await;
        assert!(st[0].last_error.is_some(), "{:?}", st[0]);
        assert_eq!(st[0].domains, 2);
        assert!(matches!(check(&svc, "ads.example"), Verdict::Blocked(_)));
    }

    // New content replaces the copy.
    set(
        &site,
        "/good",
        Page::List {
            body: "other.example\n".into(),
            etag: "\"v2\"".into(),
        },
    );
    let st = svc.update_lists_now().await;
    assert_eq!(st[0].last_error, None);
    assert_eq!(check(&svc, "ads.example"), Verdict::Pass);
    assert!(matches!(
        check(&svc, "www.other.example"),
        Verdict::Blocked(_)
    ));
    let copy = cfg.data_dir.join("lists/good.txt");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "other.example\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_downloads_only_lists_older_than_the_interval() {
    let site = Arc::new(Mutex::new(Site::default()));
    let addr = serve(site.clone()).await;
    set(
        &site,
        "/boot",
        Page::List {
            body: "boot.example\n".into(),
            etag: "\"b1\"".into(),
        },
    );
    // "later" fails at the first boot, so it has no copy and is due at the
    // second: its download there marks the end of the boot round, which
    // takes the lists in order ("boot" first).
    set(&site, "/later", Page::Status(404));
    let requests = |path: &str| {
        let site = site.lock().unwrap();
        site.log.iter().filter(|(p, _)| p == path).count()
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), addr, &["boot", "later"]);
    // Inside a runtime: the scheduler fetches the missing copies at boot.
    let svc = FilterService::start_with(&cfg, opts(dir.path())).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(matches!(check(&svc, "boot.example"), Verdict::Blocked(_)) && requests("/later") == 1) {
        assert!(
            std::time::Instant::now() < deadline,
            "the boot round never finished: {:?}",
            svc.lists()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(requests("/boot"), 1);
    drop(svc);

    // A restart within update_interval serves the snapshot at once and
    // downloads only the list that has no copy.
    set(
        &site,
        "/later",
        Page::List {
            body: "later.example\n".into(),
            etag: "\"l1\"".into(),
        },
    );
    let svc = FilterService::start_with(&cfg, opts(dir.path())).unwrap();
    assert!(svc.wait_ready(Duration::ZERO));
    assert!(matches!(check(&svc, "boot.example"), Verdict::Blocked(_)));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while requests("/later") < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second boot round never asked for the missing list"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(requests("/boot"), 1, "a fresh list was downloaded again");
}
