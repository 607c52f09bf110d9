//! First-boot setup refused from a public source address, over real
//! sockets: the whole glory-hole binary runs in a network namespace of its
//! own (`unshare -rn`) whose loopback also carries a public address
//! (203.0.113.5, TEST-NET-3) and a private one (192.168.7.2); an HTTP
//! client entered into the same namespace (`nsenter`) sends setup and
//! restore from each. From the public address both are refused with the
//! address named and nothing in the data directory changes; from the
//! private one the same setup goes through and is saved (so the refusal
//! was the address's doing, and the snapshot does see a write).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use support::netns::Namespaced;

const PUBLIC: &str = "203.0.113.5";
const PRIVATE: &str = "192.168.7.2";
const PASSWORD: &str = "correct horse battery";

/// The client: waits for the server, takes the setup page's token and
/// cookie, then sends one request from `source`; prints `{status, body}`.
const CLIENT: &str = r#"
import http.client, json, sys, time
src, method, path, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def conn():
    return http.client.HTTPConnection("127.0.0.1", 8080, timeout=10, source_address=(src, 0))
deadline = time.time() + 60
while True:
    try:
        c = conn(); c.request("GET", "/api/v1/setup"); r = c.getresponse()
        setup = json.loads(r.read()); cookie = r.getheader("set-cookie") or ""
        break
    except (ConnectionError, OSError):
        if time.time() > deadline: raise
        time.sleep(0.1)
headers = {"content-type": "application/json", "x-csrf-token": setup.get("csrf", ""),
           "cookie": cookie.split(";")[0]}
c = conn(); c.request(method, path, body=body.encode(), headers=headers); r = c.getresponse()
print(json.dumps({"status": r.status, "body": r.read().decode()}))
"#;

fn start(dir: &Path) -> Namespaced {
    Namespaced::start(
        dir,
        &format!("ip addr add {PUBLIC}/32 dev lo; ip addr add {PRIVATE}/32 dev lo"),
        &format!(
            "data_dir = {:?}\n[dns]\nlisten = [\"127.0.0.1:1053\"]\n\
             upstreams = [\"127.0.0.1:9\"]\n[web]\nlisten = [\"127.0.0.1:8080\"]\n",
            dir.join("data")
        ),
    )
}

fn request(server: &Namespaced, src: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let out = server
        .command("python3")
        .args(["-c", CLIENT, src, method, path, body])
        .stderr(Stdio::inherit())
        .output()
        .expect("nsenter runs");
    assert!(out.status.success(), "client failed: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["status"].as_u64().unwrap() as u16,
        v["body"].as_str().unwrap().to_string(),
    )
}

/// Every file under `dir` with its bytes, leaving out the query log (its
/// writer keeps its own clock) and the server's own output.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("querylog.db") || name == "server.log" {
                continue;
            }
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn setup_and_restore_from_a_public_address_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let setup = serde_json::json!({"password": PASSWORD, "upstream": "quad9", "protocol": "plain"})
        .to_string();

    // The server is up once the client's GET went through.
    let (status, body) = request(&server, PUBLIC, "GET", "/api/v1/setup", "");
    assert_eq!(status, 200, "{body}");
    let before = snapshot(dir.path());

    let (status, body) = request(&server, PUBLIC, "POST", "/api/v1/setup", &setup);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(PUBLIC),
        "the refusal names the address: {body}"
    );
    assert!(body.contains("local network"), "{body}");
    let (status, body) = request(&server, PUBLIC, "POST", "/api/v1/setup/restore", "{}");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains(PUBLIC), "{body}");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a refused setup changed the data directory"
    );
    let (_, health) = request(&server, PUBLIC, "GET", "/health", "");
    assert!(health.contains("\"setup_needed\":true"), "{health}");

    // The same setup from the LAN goes through and is saved.
    let (status, body) = request(&server, PRIVATE, "POST", "/api/v1/setup", &setup);
    assert_eq!(status, 200, "{body}");
    assert_ne!(snapshot(dir.path()), before, "setup saved nothing");
    let (_, health) = request(&server, PRIVATE, "GET", "/health", "");
    assert!(health.contains("\"setup_needed\":false"), "{health}");
}
