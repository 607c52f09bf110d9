//! One rule syntax: the config file and the web API accept and refuse the
//! same allow/deny entries, and store an accepted one in the same spelling.
//! Each entry of the table is loaded from a config file through the real
//! loader and sent to the real HTTP API of a running server; both must
//! match the stored form written in the table (None: both refuse).

mod support;

use glory_hole::config::Config;
use serde_json::json;
use support::web::*;

/// (entry as typed, stored spelling or None when refused)
fn table() -> Vec<(String, Option<String>)> {
    let label63 = "a".repeat(63);
    let label64 = "a".repeat(64);
    let long = [label63.as_str(); 4].join(".");
    let mut t: Vec<(String, Option<String>)> = [
        ("ads.example", Some("ads.example")),
        (" Ads.Example.COM ", Some("ads.example.com")),
        ("ads.example.", Some("ads.example")),
        ("_dmarc.example", Some("_dmarc.example")),
        ("*.cdn.example", Some("*.cdn.example")),
        ("||tracker.example^", Some("*.tracker.example")),
        ("/^ads?[0-9]*\\./", Some("/^ads?[0-9]*\\./")),
        ("bücher.example", Some("xn--bcher-kva.example")),
        ("*.BÜCHER.example", Some("*.xn--bcher-kva.example")),
        ("||bücher.example^", Some("*.xn--bcher-kva.example")),
        ("xn--bcher-kva.example", Some("xn--bcher-kva.example")),
        ("", None),
        ("   ", None),
        ("two words", None),
        ("a..b", None),
        (".example", None),
        ("/[/", None),
        ("//", None),
        ("/", None),
        ("*ads.example", None),
        ("ads.*.example", None),
        ("*", None),
        ("||ads.example", None),
        ("|ads.example^", None),
        ("http://ads.example/banner", None),
        ("ads.example:443", None),
    ]
    .iter()
    .map(|(e, s)| (e.to_string(), s.map(str::to_string)))
    .collect();
    t.push((
        format!("{label63}.example"),
        Some(format!("{label63}.example")),
    ));
    t.push((format!("{label64}.example"), None));
    // 4 * 63 + 3 dots = 255 characters: over the 253 a name may have.
    t.push((long, None));
    t
}

/// The stored spelling from a config file holding `entry` in filter.deny.
fn through_config_file(dir: &std::path::Path, entry: &str) -> Option<String> {
    let path = dir.join("glory-hole.toml");
    let value = toml::Value::String(entry.to_string());
    std::fs::write(&path, format!("[filter]\ndeny = [{value}]\n")).unwrap();
    match Config::load(&path) {
        Ok(cfg) => {
            assert_eq!(cfg.filter.deny.len(), 1, "{entry:?}");
            Some(cfg.filter.deny[0].to_string())
        }
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("filter.deny[0]"), "{entry:?}: {e}");
            None
        }
    }
}

#[tokio::test]
async fn config_file_and_api_agree_on_every_entry() {
    let (b, mut c) = ready(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    for (entry, want) in table() {
        let from_file = through_config_file(dir.path(), &entry);
        let r = c
            .send(
                "POST",
                "/api/v1/rules",
                json!({"list": "deny", "entry": entry}),
            )
            .await;
        let from_api = match r.status {
            // A re-added entry moves to the end of the list.
            200 => c.get("/api/v1/rules").await.json()["deny"]
                .as_array()
                .and_then(|d| d.last())
                .and_then(|v| v.as_str())
                .map(str::to_string),
            422 => {
                assert_eq!(r.json()["field"], "entry", "{entry:?}: {}", r.body);
                None
            }
            s => panic!("{entry:?}: status {s}: {}", r.body),
        };
        assert_eq!(from_file, want, "config file, entry {entry:?}");
        assert_eq!(from_api, want, "API, entry {entry:?}");
    }
    // What the API stored, the loader reads back unchanged.
    let saved = Config::load(&b.config_path()).unwrap();
    assert!(
        saved
            .filter
            .deny
            .contains(&"*.xn--bcher-kva.example".parse().unwrap())
    );
}
