//! The data partition across versions (issue 12, item 5): both firmware
//! slots share it, so after a rollback an older build starts on what a
//! newer one left. Here the built `glory-hole` binary, as a separate
//! process, makes a data directory, which is then made "newer" the way a
//! later release would: unknown keys and sections in `config.toml`, and a
//! future query-log migration applied (a new table, a new column with a
//! default on an existing table, the version after this build's newest in
//! `schema_migrations` and
//! `user_version`). Started again on it, the binary starts, warns about
//! each unknown key by path, answers DNS, keeps logging queries, leaves the
//! config file byte for byte as it was, and when the owner saves settings
//! through the web UI the unknown keys stay in the file.

mod support;

use glory_hole::testing::client;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::web::{Client, PASSWORD};

const PATIENCE: Duration = Duration::from_secs(30);

/// A running `glory-hole --config FILE`, killed when dropped (also when
/// the test fails), with its log lines collected as they come.
struct Process {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn start(config: &Path) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_glory-hole"))
            .arg("--config")
            .arg(config)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        Process { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The address after `label` in the log ("DNS on 127.0.0.1:40123").
    fn address(&mut self, label: &str) -> SocketAddr {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self.log.lock().unwrap().iter().find_map(|l| {
                let rest = &l[l.find(label)? + label.len()..];
                let addr = rest.split_whitespace().next()?;
                addr.trim_start_matches("http://")
                    .trim_end_matches('/')
                    .parse()
                    .ok()
            });
            if let Some(a) = found {
                return a;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("glory-hole exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no '{label}' line:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What this build writes: DNS and the web UI on free loopback ports, a
/// local record to answer without any upstream, the query log flushed
/// often.
fn config_text(data: &Path) -> String {
    format!(
        r#"data_dir = {:?}
[dns]
listen = ["127.0.0.1:0"]
upstreams = ["127.0.0.1:9"]
[[local.records]]
name = "nas.lan"
type = "A"
value = "192.168.1.10"
[querylog]
flush_interval = "100ms"
[web]
enabled = true
listen = ["127.0.0.1:0"]
"#,
        data.display().to_string()
    )
}

/// `config_text` as a later release might have saved it: keys and
/// sections this build has never heard of, at the top, inside known
/// sections and on their own.
fn newer_config_text(data: &Path) -> String {
    let known = config_text(data);
    let known = known
        .replace("[dns]\n", "[dns]\nnew_key = \"from a newer build\"\n")
        .replace("[querylog]\n", "[querylog]\nfuture_knob = true\n");
    format!(
        "future_top = 1\n{known}[dns.new_table]\ndepth = 2\n[new_section]\nlevels = [1, 2]\nname = \"later\"\n"
    )
}

/// The migration a later release might add, additive as
/// migrations/README.md requires, as version `NEXT` (the one after this
/// build's newest, filled in by [`future_migration`]).
const FUTURE_MIGRATION: &str = "
    CREATE TABLE from_the_future (id INTEGER PRIMARY KEY, note TEXT NOT NULL);
    INSERT INTO from_the_future (note) VALUES ('kept');
    ALTER TABLE query_blocks ADD COLUMN future_flag INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE domains ADD COLUMN future_score INTEGER NOT NULL DEFAULT 7;
    INSERT INTO schema_migrations (version, name, applied_ms)
        VALUES (NEXT, 'NEXT_from_the_future', 0);
    PRAGMA user_version = NEXT;
";

/// This build's newest migration in `c`, and the future one after it.
fn future_migration(c: &rusqlite::Connection) -> (i64, String) {
    let newest: i64 = c
        .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap();
    let next = newest + 1;
    (next, FUTURE_MIGRATION.replace("NEXT", &next.to_string()))
}

fn stored_rows(db: &Path) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    support::querylog::stored_rows(&c)
}

async fn answered(dns: SocketAddr) -> bool {
    let m = client::ask(dns, "nas.lan", 1).await;
    client::answers(&m) == ["192.168.1.10"]
}

async fn until_logged(db: &Path, more_than: i64, p: &Process) -> i64 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let n = stored_rows(db);
        if n > more_than {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "no new row in {} (still {n}):\n{}",
            db.display(),
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_newer_data_directory_is_used_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config.toml");
    let db = data.join("querylog.db");

    // This build makes the data directory and logs a query into it.
    std::fs::write(&config, config_text(&data)).unwrap();
    {
        let mut p = Process::start(&config);
        let dns = p.address("DNS on ");
        assert!(answered(dns).await, "{}", p.log());
        until_logged(&db, 0, &p).await;
    }

    // A later release's migration and settings.
    let c = rusqlite::Connection::open(&db).unwrap();
    let (future, migration) = future_migration(&c);
    c.execute_batch(&migration).unwrap();
    drop(c);
    let newer = newer_config_text(&data);
    std::fs::write(&config, &newer).unwrap();
    let before = stored_rows(&db);
    let check = Command::new(env!("CARGO_BIN_EXE_glory-hole"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{said}");
    assert!(
        said.contains("unknown key 'dns.new_table' ignored"),
        "{said}"
    );

    let mut p = Process::start(&config);
    let dns = p.address("DNS on ");
    let web = p.address("web UI on ");
    for key in [
        "future_top",
        "dns.new_key",
        "dns.new_table",
        "querylog.future_knob",
        "new_section",
    ] {
        let line = format!("unknown key '{key}' ignored");
        assert!(p.log().contains(&line), "no '{line}' in:\n{}", p.log());
    }
    assert!(answered(dns).await, "{}", p.log());
    let after = until_logged(&db, before, &p).await;
    assert!(after > before);

    let c = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = c
        .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        version, future,
        "the newer schema version is left as it was"
    );
    let note: String = c
        .query_row("SELECT note FROM from_the_future", [], |r| r.get(0))
        .unwrap();
    assert_eq!(note, "kept");
    let score: i64 = c
        .query_row(
            "SELECT future_score FROM domains WHERE name = 'nas.lan'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(score, 7, "the future column is there with its default");
    drop(c);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        newer,
        "the config file is not rewritten by starting"
    );

    // The owner finishes setup and saves a setting: the file is rewritten,
    // the unknown keys with it.
    let mut web_ui = Client::new(&format!("http://{web}"));
    let s = web_ui.get("/api/v1/setup").await;
    web_ui.csrf = Some(s.json()["csrf"].as_str().unwrap().to_string());
    let r = web_ui
        .send(
            "POST",
            "/api/v1/setup",
            serde_json::json!({"password": PASSWORD, "upstream": "custom", "protocol": "plain",
                               "custom_upstreams": ["127.0.0.1:9"], "blocklists": []}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    web_ui.csrf = Some(r.json()["csrf"].as_str().unwrap().to_string());
    let r = web_ui
        .send(
            "PUT",
            "/api/v1/settings",
            serde_json::json!({"cache_memory_mib": 7}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let saved: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    assert_eq!(saved["cache"]["memory_mib"].as_integer(), Some(7));
    assert_eq!(saved["future_top"].as_integer(), Some(1));
    assert_eq!(saved["dns"]["new_key"].as_str(), Some("from a newer build"));
    assert_eq!(saved["dns"]["new_table"]["depth"].as_integer(), Some(2));
    assert_eq!(saved["querylog"]["future_knob"].as_bool(), Some(true));
    assert_eq!(saved["new_section"]["name"].as_str(), Some("later"));
    assert_eq!(saved["new_section"]["levels"].as_array().unwrap().len(), 2);
    drop(p);

    // And the next start reads the file it saved.
    let mut p = Process::start(&config);
    let dns = p.address("DNS on ");
    assert!(answered(dns).await, "{}", p.log());
    assert!(p.log().contains("unknown key 'dns.new_key' ignored"));
}
