//! The browser tests' harness: Debian's headless Chromium driven over
//! WebDriver (chromedriver) by a minimal W3C client. chromedriver and every
//! Chromium it starts run in a process group of their own, killed when the
//! `Driver` is dropped, so a failed test leaves no browser running.
//! Chromium missing is a failure that says to run .ci/setup, never a skip.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

// ---- a minimal W3C WebDriver client ----

/// How long a step may wait for the page to show what it expects.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How often a waiting step looks again.
pub const POLL: Duration = Duration::from_millis(100);

/// chromedriver and every Chromium process it starts, in a process group
/// of their own: dropping this kills the group, so a failed test leaves no
/// browser running.
pub struct Browser {
    child: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the group this test created (negative pid =
        // the group whose id is chromedriver's pid, set by process_group(0)).
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

pub struct Driver {
    http: reqwest::Client,
    port: u16,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
    /// Last: dropped after `drop` below has asked Chromium to quit.
    _browser: Browser,
}

impl Drop for Driver {
    /// Ends the WebDriver session (Chromium quits) with a plain blocking
    /// request, as Drop cannot await; then `Browser` kills what is left.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        if let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                self.session, self.port
            );
            let mut reply = Vec::new();
            let _ = s.read_to_end(&mut reply);
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// WebDriver's answer when the element found a moment ago is no longer in
/// the page: the page replaced it (the log's live tail, a form that
/// re-renders) between finding and using it.
pub fn replaced(err: &Value, msg: &Value) -> bool {
    err == "stale element reference"
        || err == "no such element"
        || msg
            .as_str()
            .is_some_and(|m| m.contains("does not belong to the document"))
}

impl Driver {
    pub async fn start() -> Driver {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the browser tests need Debian's chromium and chromium-driver; run .ci/setup"
            );
        }
        let port = free_port();
        let browser = Browser {
            child: Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts (run .ci/setup)"),
        };
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && let Ok(v) = r.json_value().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {port}"
            );
            tokio::time::sleep(POLL).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let r = http
            .post(format!("{base}/session"))
            .body(caps.to_string())
            .send()
            .await
            .unwrap();
        let v = r.json_value().await.unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        Driver {
            http,
            port,
            base,
            session,
            _profile: profile,
            _browser: browser,
        }
    }

    pub async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_cmd(method, path, body)
            .await
            .unwrap_or_else(|(err, msg)| panic!("WebDriver {method} {path}: {err}: {msg}"))
    }

    /// A command, or WebDriver's (error, message).
    pub async fn try_cmd(
        &self,
        method: &str,
        path: &str,
        body: Value,
    ) -> Result<Value, (Value, Value)> {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let rb = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).body(body.to_string()),
        };
        let v = rb.send().await.unwrap().json_value().await.unwrap();
        match v["value"].get("error") {
            Some(err) => Err((err.clone(), v["value"]["message"].clone())),
            None => Ok(v["value"].clone()),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({"url": url})).await;
    }

    pub async fn url(&self) -> String {
        self.cmd("GET", "/url", json!({}))
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The id of the first element `css` matches, waiting for it to appear.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let by = json!({"using": "css selector", "value": css});
            if let Ok(v) = self.try_cmd("POST", "/element", by).await
                && let Some(id) = v[ELEMENT].as_str()
            {
                return id.to_string();
            }
            if Instant::now() >= deadline {
                panic!("no element matches {css} on {}", self.url().await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `steps` (method, path after `/element/{id}`, body) in order on
    /// the element `css` matches. When the page replaces the element
    /// midway, it is found again and the steps start over, until
    /// PATIENCE runs out. Returns the last step's value.
    pub async fn on_element(&self, css: &str, steps: &[(&str, &str, Value)]) -> Value {
        let deadline = Instant::now() + PATIENCE;
        'again: loop {
            let id = self.find(css).await;
            let mut last = Value::Null;
            for (method, what, body) in steps {
                let path = format!("/element/{id}{what}");
                match self.try_cmd(method, &path, body.clone()).await {
                    Ok(v) => last = v,
                    Err((err, msg)) if replaced(&err, &msg) && Instant::now() < deadline => {
                        continue 'again;
                    }
                    Err((err, msg)) => panic!("WebDriver {method} {path} ({css}): {err}: {msg}"),
                }
            }
            return last;
        }
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, &[("POST", "/click", json!({}))]).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.on_element(
            css,
            &[
                ("POST", "/clear", json!({})),
                ("POST", "/value", json!({"text": text})),
            ],
        )
        .await;
    }

    /// The text of the element `css` matches.
    pub async fn text(&self, css: &str) -> String {
        let v = self.on_element(css, &[("GET", "/text", json!({}))]).await;
        v.as_str().unwrap_or("").to_string()
    }

    /// Ticks or clears the checkbox `css` through a click, as a user would.
    pub async fn set_checked(&self, css: &str, on: bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self
                .on_element(css, &[("GET", "/selected", json!({}))])
                .await;
            if now == on {
                return;
            }
            assert!(Instant::now() < deadline, "{css} never became {on}");
            self.click(css).await;
        }
    }

    pub async fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Waits until `css` shows text containing `want`.
    pub async fn wait_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let last = self.text(css).await;
            if last.contains(want) {
                return last;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed '{want}' (last: '{last}')"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Loads `url` again until `css` shows exactly `want`.
    pub async fn reload_until(&self, url: &str, css: &str, want: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.goto(url).await;
            let last = self.text(css).await;
            if last.trim() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url}: {css} never showed '{want}' (last: '{last}')"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn wait_url(&self, suffix: &str) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if self.url().await.ends_with(suffix) {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        let text = self.js("return document.body.innerText;").await;
        panic!("never reached {suffix}; at {}: {text}", self.url().await);
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    pub async fn screenshot(&self, name: &str) {
        let b64 = self.cmd("GET", "/screenshot", json!({})).await;
        let png = base64_decode(b64.as_str().unwrap());
        assert!(
            png.starts_with(b"\x89PNG"),
            "screenshot {name} is not a PNG"
        );
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
            let docs = root.join("docs/screenshots");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
        }
    }

    /// Every resource the page loaded came from the box itself.
    pub async fn assert_only_local_requests(&self, base: &str) {
        let urls = self.js("return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);").await;
        for u in urls.as_array().unwrap() {
            let u = u.as_str().unwrap();
            assert!(
                u.starts_with(base),
                "the page requested {u}, outside the box"
            );
        }
    }

    /// Console entries Chromium logged as SEVERE since the last call: JS
    /// errors, CSP violations, failed loads.
    pub async fn severe_console_entries(&self) -> Vec<String> {
        let log = self
            .cmd("POST", "/se/log", json!({"type": "browser"}))
            .await;
        log.as_array()
            .expect("browser log")
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or("").to_string())
            .collect()
    }

    pub async fn assert_no_console_errors(&self) {
        let severe = self.severe_console_entries().await;
        assert!(severe.is_empty(), "browser console errors: {severe:?}");
    }
}

pub trait JsonValue {
    async fn json_value(self) -> reqwest::Result<Value>;
}
impl JsonValue for reqwest::Response {
    async fn json_value(self) -> reqwest::Result<Value> {
        let t = self.text().await?;
        Ok(serde_json::from_str(&t).unwrap_or(Value::Null))
    }
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => 0,
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let pad = chunk.iter().filter(|c| **c == b'=').count();
        let n = chunk.iter().fold(0u32, |acc, c| (acc << 6) | val(*c)) << (6 * (4 - chunk.len()));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad.min(3)]);
    }
    out
}
