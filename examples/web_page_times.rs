//! Server time of every web page and dashboard API call over a query log
//! of millions of rows (docs/web.md quotes its output).
//!
//!   cargo run --release --example querylog_bench -- --rows 10000000 --dir /tmp/gh-bench
//!   cargo run --release --example web_page_times -- --dir /tmp/gh-bench
//!
//! Starts the real server on that data directory (DNS and web on loopback
//! ports), finishes setup over the API, then requests each page 21 times
//! and reports the median and the slowest `Server-Timing` the server gave.

use glory_hole::app::App;
use glory_hole::config::Config;
use std::path::PathBuf;

async fn get(http: &reqwest::Client, url: &str, cookie: &str) -> (u16, f64) {
    let r = http
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let ms = r
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("dur=").nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("server-timing header");
    let _ = r.bytes().await;
    (status, ms)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .expect("--dir DIR (where querylog_bench left querylog.db)");
    let _ = std::fs::remove_file(dir.join("web-auth.json"));
    let config = Config::from_toml(
        &format!(
            "data_dir = {:?}\n[dns]\nlisten = [\"127.0.0.1:0\"]\n[web]\nenabled = false\n",
            dir.display().to_string()
        ),
        "bench config",
    )?;
    let app = App::start(config, dir.join("bench-config.toml")).await?;
    let web = glory_hole::web::serve(app.clone(), &["127.0.0.1:0".parse()?]).await?;
    let base = format!("http://{}", web[0]);
    let http = reqwest::Client::new();

    // Setup over the API, as a script would.
    let r = http.get(format!("{base}/api/v1/setup")).send().await?;
    let pre = r.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = r.text().await?;
    let csrf: serde_json::Value = serde_json::from_str(&csrf)?;
    let r = http
        .post(format!("{base}/api/v1/setup"))
        .header("cookie", &pre)
        .header("x-csrf-token", csrf["csrf"].as_str().unwrap())
        .header("content-type", "application/json")
        .body(r#"{"password":"bench password","upstream":"quad9","protocol":"plain"}"#)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200, "setup failed");
    let session = r.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap()
        .to_string();

    let rows = app.querylog.status().rows;
    println!("query log: {rows} rows");
    // The second page of a search, by the cursor the first one returned.
    let next_page = |q: &'static str| {
        let http = http.clone();
        let url = format!("{base}/api/v1/querylog?{q}");
        let session = session.clone();
        async move {
            let text = http
                .get(url)
                .header("cookie", session)
                .send()
                .await
                .expect("first page")
                .text()
                .await
                .expect("body");
            let page: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            match page["next_cursor"].as_i64() {
                Some(c) => format!("/querylog?{q}&cursor={c}"),
                None => format!("/querylog?{q}"),
            }
        }
    };
    let ads_page2 = next_page("domain=ads").await;
    let blocked_page2 = next_page("status=blocked").await;

    println!("{:<42} {:>10} {:>10}", "request", "median ms", "max ms");
    for path in [
        "/",
        "/?range=7d",
        "/?range=30d",
        "/querylog",
        "/querylog?domain=ads",
        "/querylog?client=192.168.1.10",
        "/querylog?status=blocked",
        &ads_page2,
        &blocked_page2,
        "/lists",
        "/clients",
        "/local",
        "/settings",
        "/system",
        "/api/v1/stats?range=24h",
        "/api/v1/querylog?limit=100",
    ] {
        let url = format!("{base}{path}");
        for _ in 0..2 {
            get(&http, &url, &session).await;
        }
        let mut times = Vec::new();
        for _ in 0..21 {
            let (status, ms) = get(&http, &url, &session).await;
            assert_eq!(status, 200, "{path}");
            times.push(ms);
        }
        times.sort_by(f64::total_cmp);
        let label = match path.split_once("&cursor=") {
            Some((q, _)) => format!("{q} (page 2)"),
            None => path.to_string(),
        };
        println!("{label:<42} {:>10.2} {:>10.2}", times[10], times[20]);
    }
    let _ = std::fs::remove_file(dir.join("web-auth.json"));
    Ok(())
}
