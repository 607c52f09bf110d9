//! Shared by the tests/web_*.rs files: a web server on a
//! loopback port over a real config file in a temp dir, and a small HTTP
//! client that keeps cookies and the CSRF token like a browser page does.
//!
//! `TestBackend` wraps a real backend (`app::SavedConfig`: validate, save
//! atomically, swap; or the running `App`) and, where that backend has no
//! query log or filter, stands in for them with rows the test records, so
//! the web layer can be tested on its own. Where the real parts exist, it
//! passes their answers through.
#![allow(dead_code)]

use glory_hole::app::SavedConfig;
use glory_hole::config::Config;
use glory_hole::web::Backend;
use glory_hole::web::backend::*;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

pub struct TestBackend {
    /// The real configuration path: `SavedConfig`, or the running `App`.
    pub inner: Arc<dyn Backend>,
    pub rows: Mutex<Vec<LogRowView>>,
    pub paused: Mutex<PauseView>,
    pub list_updates: AtomicU32,
    pub reboots: AtomicU32,
    pub resets: AtomicU32,
}

impl TestBackend {
    pub fn record(&self, domain: &str, client: &str, status: &str) {
        let mut rows = self.rows.lock().unwrap();
        let time_ms = rows
            .last()
            .map(|r| r.time_ms + 1)
            .unwrap_or(glory_hole::clock::now_ms() - 60_000);
        rows.push(LogRowView {
            time_ms,
            client: client.into(),
            client_name: None,
            client_name_source: None,
            domain: domain.into(),
            qtype: "A".into(),
            status: status.into(),
            rcode: 0,
            upstream: None,
            latency_us: 1200,
            reason: (status == "blocked").then(|| "list 'test'".to_string()),
        });
    }
}

impl Backend for TestBackend {
    fn config(&self) -> Arc<Config> {
        self.inner.config()
    }
    fn edit(
        &self,
        change: &mut dyn FnMut(&mut Config) -> Result<(), String>,
    ) -> Result<(), String> {
        self.inner.edit(change)
    }
    fn data_dir(&self) -> PathBuf {
        self.inner.data_dir()
    }
    fn dhcp_status(&self) -> glory_hole::dhcp::Status {
        self.inner.dhcp_status()
    }
    fn dhcp_leases(&self) -> Arc<Vec<glory_hole::dhcp::LeaseInfo>> {
        self.inner.dhcp_leases()
    }
    fn engine_stats(&self) -> EngineStats {
        self.inner.engine_stats()
    }
    fn has_querylog(&self) -> bool {
        true
    }
    fn lists(&self) -> Vec<ListView> {
        self.inner.lists()
    }
    fn client_name(&self, client: &str) -> Option<ClientNameView> {
        self.inner.client_name(client)
    }
    fn summary(&self, r: TimeRange) -> Option<SummaryView> {
        if self.inner.has_querylog() {
            return self.inner.summary(r);
        }
        let rows = self.rows.lock().unwrap();
        let inr: Vec<&LogRowView> = rows
            .iter()
            .filter(|x| x.time_ms >= r.from_ms && x.time_ms < r.to_ms)
            .collect();
        let uniq = |f: fn(&LogRowView) -> &str| {
            inr.iter()
                .map(|x| f(x))
                .collect::<std::collections::HashSet<_>>()
                .len() as u64
        };
        Some(SummaryView {
            total: inr.len() as u64,
            blocked: inr.iter().filter(|x| x.status == "blocked").count() as u64,
            cached: inr.iter().filter(|x| x.status == "cache").count() as u64,
            unique_clients: uniq(|x| &x.client),
            unique_domains: uniq(|x| &x.domain),
        })
    }
    fn time_series(&self, r: TimeRange, n: u32) -> Vec<BucketView> {
        if self.inner.has_querylog() {
            return self.inner.time_series(r, n);
        }
        let width = ((r.to_ms - r.from_ms) / n as i64).max(1);
        let mut b: Vec<BucketView> = (0..n)
            .map(|i| BucketView {
                start_ms: r.from_ms + i as i64 * width,
                ..Default::default()
            })
            .collect();
        for x in self.rows.lock().unwrap().iter() {
            let i = (x.time_ms - r.from_ms) / width;
            if let Some(bk) = b.get_mut(i as usize) {
                match x.status.as_str() {
                    "blocked" => bk.blocked += 1,
                    "cache" => bk.cached += 1,
                    _ => bk.allowed += 1,
                }
            }
        }
        b
    }
    fn top(&self, kind: TopKind, r: TimeRange, n: u32) -> Vec<TopItem> {
        if self.inner.has_querylog() {
            return self.inner.top(kind, r, n);
        }
        let mut counts: HashMap<String, u64> = HashMap::new();
        for x in self.rows.lock().unwrap().iter() {
            match kind {
                TopKind::Domains => *counts.entry(x.domain.clone()).or_default() += 1,
                TopKind::Blocked if x.status == "blocked" => {
                    *counts.entry(x.domain.clone()).or_default() += 1
                }
                TopKind::Clients => *counts.entry(x.client.clone()).or_default() += 1,
                _ => {}
            }
        }
        let mut v: Vec<TopItem> = counts
            .into_iter()
            .map(|(name, count)| TopItem::new(name, count))
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
        v.truncate(n as usize);
        v
    }
    fn search(&self, q: &LogSearch) -> LogPageView {
        if self.inner.has_querylog() {
            return self.inner.search(q);
        }
        // Recorded rows have distinct times: the cursor is a time here.
        let rows = self.rows.lock().unwrap();
        let limit = q.limit.unwrap_or(100) as usize;
        let mut out: Vec<LogRowView> = rows
            .iter()
            .rev()
            .filter(|r| {
                q.domain
                    .as_ref()
                    .is_none_or(|d| r.domain.contains(d.as_str()))
            })
            .filter(|r| q.client.as_ref().is_none_or(|c| r.client == *c))
            .filter(|r| q.status.as_ref().is_none_or(|s| r.status == *s))
            .filter(|r| q.qtype.as_ref().is_none_or(|t| r.qtype == *t))
            .filter(|r| q.after_ms.is_none_or(|a| r.time_ms > a))
            .filter(|r| q.before_ms.is_none_or(|b| r.time_ms < b))
            .filter(|r| q.cursor.is_none_or(|c| r.time_ms < c))
            .take(limit + 1)
            .cloned()
            .collect();
        let more = out.len() > limit;
        out.truncate(limit);
        LogPageView {
            next_cursor: more.then(|| out.last().map(|r| r.time_ms)).flatten(),
            rows: out,
        }
    }
    fn explain(&self, domain: &str, client: Option<IpAddr>) -> Option<ExplanationView> {
        // The real filter's answer when the inner backend has one.
        if let Some(e) = self.inner.explain(domain, client) {
            return Some(e);
        }
        let c = self.config();
        let (decision, matches) = if c.filter.allow.iter().any(|a| a == domain) {
            ("allowed", vec![format!("allow rule '{domain}'")])
        } else if c.filter.deny.iter().any(|a| a == domain) {
            ("blocked", vec![format!("deny rule '{domain}'")])
        } else {
            ("pass", vec![])
        };
        Some(ExplanationView {
            domain: domain.into(),
            decision: decision.into(),
            matches,
        })
    }
    fn update_lists(&self) -> Result<(), String> {
        self.list_updates.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn pause(&self, minutes: Option<u32>) -> Result<(), String> {
        *self.paused.lock().unwrap() = PauseView {
            paused: true,
            until_ms: minutes.map(|m| glory_hole::clock::now_ms() + m as i64 * 60_000),
        };
        Ok(())
    }
    fn resume(&self) -> Result<(), String> {
        *self.paused.lock().unwrap() = PauseView::default();
        Ok(())
    }
    fn pause_status(&self) -> PauseView {
        self.paused.lock().unwrap().clone()
    }
    fn reboot(&self) -> Result<(), String> {
        self.reboots.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn factory_reset(&self) -> Result<(), String> {
        self.resets.fetch_add(1, Ordering::SeqCst);
        // The running App resets itself (and wipes its data directory);
        // a bare config file is reset here.
        match self.inner.factory_reset() {
            Err(e) if e.contains(NOT_AVAILABLE) => {}
            done => return done,
        }
        self.apply(Config {
            data_dir: self.data_dir(),
            web: self.config().web.clone(),
            ..Config::default()
        })
    }
}

pub struct TestBox {
    pub addr: SocketAddr,
    pub backend: Arc<TestBackend>,
    pub dir: tempfile::TempDir,
}

impl TestBox {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }
}

pub async fn start(edit: impl FnOnce(&mut Config)) -> TestBox {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    edit(&mut cfg);
    let inner = Arc::new(SavedConfig::new(cfg, dir.path().join("config.toml")));
    start_with(inner, dir).await
}

/// Serves the web UI over `inner` (whose data_dir is in `dir`).
pub async fn start_with(inner: Arc<dyn Backend>, dir: tempfile::TempDir) -> TestBox {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let backend = Arc::new(TestBackend {
        inner,
        rows: Mutex::default(),
        paused: Mutex::default(),
        list_updates: AtomicU32::new(0),
        reboots: AtomicU32::new(0),
        resets: AtomicU32::new(0),
    });
    let addrs = glory_hole::web::serve(backend.clone(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    TestBox {
        addr: addrs[0],
        backend,
        dir,
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A client that behaves like the page's JavaScript: keeps cookies, sends
/// the CSRF token on every change.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: HashMap<String, String>,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
    pub extra: Vec<(String, String)>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
            cookies: HashMap::new(),
            csrf: None,
            bearer: None,
            extra: Vec::new(),
        }
    }

    /// A request with this client's cookies, CSRF token and headers.
    pub fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.http.request(m, format!("{}{}", self.base, path));
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            rb = rb.header("cookie", c.join("; "));
        }
        if let Some(t) = &self.csrf {
            rb = rb.header("x-csrf-token", t);
        }
        if let Some(b) = &self.bearer {
            rb = rb.header("authorization", format!("Bearer {b}"));
        }
        for (k, v) in &self.extra {
            rb = rb.header(k, v);
        }
        rb
    }

    pub async fn raw(&mut self, method: &str, path: &str, ctype: &str, body: Vec<u8>) -> Resp {
        let mut rb = self.request(method, path);
        if !body.is_empty() || method != "GET" {
            rb = rb.header("content-type", ctype).body(body);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        for sc in headers.get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            let kv = sc.split(';').next().unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let body = r.text().await.unwrap();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.raw("GET", path, "", Vec::new()).await
    }

    pub async fn send(&mut self, method: &str, path: &str, json: Value) -> Resp {
        self.raw(
            method,
            path,
            "application/json",
            json.to_string().into_bytes(),
        )
        .await
    }

    /// First-boot setup over the API, as a script would do it.
    pub async fn setup(&mut self, password: &str) -> Resp {
        let s = self.get("/api/v1/setup").await;
        self.csrf = Some(s.json()["csrf"].as_str().unwrap().to_string());
        let r = self
            .send(
                "POST",
                "/api/v1/setup",
                serde_json::json!({"password": password, "upstream": "quad9", "protocol": "plain", "blocklists": ["stevenblack"]}),
            )
            .await;
        if r.status == 200 {
            self.csrf = Some(r.json()["csrf"].as_str().unwrap().to_string());
        }
        r
    }

    pub async fn login(&mut self, password: &str) -> Resp {
        let s = self.get("/api/v1/setup").await;
        self.csrf = Some(s.json()["csrf"].as_str().unwrap().to_string());
        let r = self
            .send(
                "POST",
                "/api/v1/login",
                serde_json::json!({"password": password}),
            )
            .await;
        if r.status == 200 {
            self.csrf = Some(r.json()["csrf"].as_str().unwrap().to_string());
        }
        r
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// A box that has been set up, and a logged-in client.
pub async fn ready(edit: impl FnOnce(&mut Config)) -> (TestBox, Client) {
    let b = start(edit).await;
    let mut c = Client::new(&b.base());
    let r = c.setup(PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    (b, c)
}

/// A config for an `App` started in the test itself: DNS on a free
/// loopback port, state under `dir`, no web listener of its own.
pub fn app_config(dir: &std::path::Path, upstream: Option<&str>) -> Config {
    let upstreams = upstream.map_or(String::new(), |u| format!("upstreams = [\"{u}\"]\n"));
    let toml = format!(
        "data_dir = {:?}\n[dns]\nlisten = [\"127.0.0.1:0\"]\n{upstreams}[web]\nenabled = false\n",
        dir.display().to_string()
    );
    Config::from_toml(&toml, "test config").unwrap()
}

/// The web UI in front of a running `App` on a free loopback port, set
/// up with [`PASSWORD`]: its base URL and a logged-in client.
pub async fn serve_set_up(app: &Arc<glory_hole::app::App>) -> (String, Client) {
    let addrs = glory_hole::web::serve(app.clone(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let base = format!("http://{}", addrs[0]);
    let mut c = Client::new(&base);
    assert_eq!(c.setup(PASSWORD).await.status, 200);
    (base, c)
}

/// The config file as saved on disk.
pub fn saved(b: &TestBox) -> Config {
    Config::load(&b.config_path()).unwrap()
}
