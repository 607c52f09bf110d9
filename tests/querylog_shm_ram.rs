//! The firmware's query log with its wal-index in RAM: the board's start
//! script (`buildroot-overlay/.../libexec/glory-hole/run`) binds a tmpfs
//! file over `querylog.db-shm` (docs/querylog.md, "Writes to flash").
//! Here the whole binary runs in mount and network namespaces of its own
//! (`unshare -rmn`) with the same bind: the log stores and serves its rows,
//! `glory-hole sql` beside the running server reads the rows not yet
//! checkpointed (the two share the one index), the file on the disk under
//! the bind stays empty, and a factory reset still succeeds (it cannot
//! unlink a mount point and leaves it).

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::netns::Namespaced;

const RECORD: &str =
    "[[local.records]]\nname = \"box.lan\"\ntype = \"A\"\nvalue = \"192.168.7.1\"\n";

/// The board's bind, as its start script does it.
fn bind_shm(dir: &Path, data: &Path) -> String {
    format!(
        "mkdir -p {ram} {data} && mount -t tmpfs tmpfs {ram} && : >{ram}/querylog.db-shm \
         && : >{data}/querylog.db-shm \
         && mount --bind {ram}/querylog.db-shm {data}/querylog.db-shm",
        ram = dir.join("ram").display(),
        data = data.display()
    )
}

fn dig(ns: &Namespaced, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ns
            .command("dig")
            .args(["+time=1", "+tries=1", "-p", "1053", "@127.0.0.1", name])
            .args(["A", "+short"])
            .output()
            .expect("nsenter and dig run (.ci/setup installs bind9-dnsutils)");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !text.is_empty() {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no answer for {name}: {}",
            String::from_utf8_lossy(&out.stderr),
        );
    }
}

/// `glory-hole sql` inside the namespace: its CSV output.
fn sql(ns: &Namespaced, db: &Path, query: &str) -> String {
    let out = ns
        .command(env!("CARGO_BIN_EXE_glory-hole"))
        .arg("sql")
        .arg("--db")
        .arg(db)
        .args(["--format", "csv", query])
        .stderr(Stdio::inherit())
        .output()
        .expect("nsenter runs");
    assert!(out.status.success(), "glory-hole sql failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Setup through the API, then a factory reset: (status, body) of the reset.
const RESET: &str = r#"
import json, sys, urllib.request, http.cookiejar
base = "http://127.0.0.1:8080"
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
def call(method, path, body=None, csrf=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if csrf:
        req.add_header("x-csrf-token", csrf)
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
status, body = call("GET", "/api/v1/setup")
csrf = json.loads(body)["csrf"]
status, body = call("POST", "/api/v1/setup", {"password": "correct horse battery", "upstream": "quad9",
                    "protocol": "plain", "blocklists": []}, csrf)
assert status == 200, (status, body)
status, body = call("POST", "/api/v1/system/factory-reset", {}, json.loads(body)["csrf"])
print(json.dumps({"status": status, "body": body}))
"#;

#[test]
fn the_log_and_the_sql_cli_share_a_wal_index_in_ram_and_a_reset_leaves_the_bind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!(
        "data_dir = {data:?}\n[dns]\nlisten = [\"127.0.0.1:1053\"]\nupstreams = [\"127.0.0.1:9\"]\n\
         [web]\nlisten = [\"127.0.0.1:8080\"]\nappliance = true\n[querylog]\nflush_interval = \"1s\"\n{RECORD}"
    );
    let ns = Namespaced::start_with_mounts(dir.path(), &bind_shm(dir.path(), &data), &config);
    let db = data.join("querylog.db");

    const QUERIES: usize = 20;
    for _ in 0..QUERIES {
        assert_eq!(dig(&ns, "box.lan"), "192.168.7.1");
    }
    // Stored within a flush or two; read by a second process through the
    // shared index (nothing is checkpointed yet: the rows are in the WAL).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = sql(
            &ns,
            &db,
            "SELECT count(*) FROM queries WHERE domain = 'box.lan'",
        );
        // A dig that gave up on a slow first answer adds a row: at least.
        let stored: usize = n
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        if stored >= QUERIES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "glory-hole sql counts {n:?}, expected at least {QUERIES}; server log:\n{}",
            support::netns::log(dir.path())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let wal = std::fs::metadata(data.join("querylog.db-wal"))
        .unwrap()
        .len();
    assert!(wal > 0, "the rows are in the WAL, not yet checkpointed");
    // Inside, the index is the tmpfs file (SQLite maps 32 KiB at least);
    // the file on the disk under the bind was never written.
    let inside = ns
        .command("stat")
        .args(["-f", "-c", "%T"])
        .arg(data.join("querylog.db-shm"))
        .output()
        .unwrap();
    let fs_type = String::from_utf8_lossy(&inside.stdout).to_string();
    assert!(fs_type.contains("tmpfs"), "inside: {fs_type:?}");
    let size = ns
        .command("stat")
        .args(["-c", "%s"])
        .arg(data.join("querylog.db-shm"))
        .output()
        .unwrap();
    let size: u64 = String::from_utf8_lossy(&size.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(size >= 32768, "the index in RAM holds {size} bytes");
    let on_disk = std::fs::metadata(data.join("querylog.db-shm")).unwrap();
    assert_eq!(on_disk.len(), 0, "the wal-index was written to the disk");

    // A factory reset wipes the data directory but the mount point.
    let out = ns
        .command("python3")
        .args(["-c", RESET])
        .stderr(Stdio::inherit())
        .output()
        .expect("nsenter runs python3");
    assert!(out.status.success(), "client failed: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], 200, "factory reset: {}", v["body"]);
    assert!(
        !db.exists(),
        "the query log is wiped: {:?}",
        std::fs::read_dir(&data).map(|d| d.count())
    );
}
