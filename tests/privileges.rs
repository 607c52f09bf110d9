//! `glory-hole --user NAME` as the board image starts it: begun as root in
//! a network namespace of its own (so ports 53 and 80 are free), it
//! becomes `nobody`, keeps only the four capabilities the appliance needs
//! (read back from `/proc/PID/status`), still binds DNS on port 53 and the
//! web UI on port 80, and creates its state files as that user, 0600.
//! Needs root, as `.ci/setup` does (it installs Debian packages).

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};
use support::netns::Namespaced;

const NOBODY: u32 = 65534;

fn status_field(pid: u32, field: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// Whether the process's namespace has a socket listening on `port`
/// (`/proc/PID/net/{udp,tcp}` list the sockets of its network namespace).
fn listening(pid: u32, table: &str, port: u16) -> bool {
    let want = format!(":{port:04X}");
    std::fs::read_to_string(format!("/proc/{pid}/net/{table}"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f[1].ends_with(&want) && (table == "udp" || f[3] == "0A")
        })
}

fn assert_root() {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test starts glory-hole as root, as the board's init does; run it as root"
    );
}

fn start(dir: &Path, user: &str) -> Namespaced {
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = data.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {data:?}\n[dns]\nlisten = [\"127.0.0.1:53\"]\n\
             upstreams = [\"127.0.0.1:9\"]\n[web]\nlisten = [\"127.0.0.1:80\"]\n"
        ),
    )
    .unwrap();
    std::os::unix::fs::chown(&data, Some(NOBODY), Some(NOBODY)).unwrap();
    std::os::unix::fs::chown(&cfg, Some(NOBODY), Some(NOBODY)).unwrap();
    Namespaced::start_as_root(dir, &cfg, user)
}

#[test]
fn becomes_its_own_user_with_four_capabilities_and_still_binds_53_and_80() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "nobody");
    let pid = server.pid();
    let log = || support::netns::log(dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(listening(pid, "udp", 53) && listening(pid, "tcp", 53) && listening(pid, "tcp", 80)) {
        assert!(
            Instant::now() < deadline,
            "ports 53 and 80 not bound; server log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status_field(pid, "Uid"), "65534\t65534\t65534\t65534");
    assert_eq!(status_field(pid, "Gid"), "65534\t65534\t65534\t65534");
    assert_eq!(status_field(pid, "Groups"), "");
    // CAP_KILL 5, CAP_NET_BIND_SERVICE 10, CAP_SYS_BOOT 22, CAP_SYS_TIME 25.
    let want = format!("{:016x}", (1u64 << 5) | (1 << 10) | (1 << 22) | (1 << 25));
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(status_field(pid, set), want, "{set}");
    }
    for set in ["CapInh", "CapAmb"] {
        assert_eq!(status_field(pid, set), "0000000000000000", "{set}");
    }
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");

    let db = dir.path().join("data/querylog.db");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !db.exists() {
        assert!(Instant::now() < deadline, "no query log; log:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let meta = std::fs::metadata(&db).unwrap();
    assert_eq!(meta.uid(), NOBODY, "the query log belongs to the user");
    assert_eq!(meta.mode() & 0o777, 0o600, "the query log is 0600");
}

#[test]
fn an_unknown_user_is_refused_by_name() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), "no-such-user-here");
    let status = server.wait();
    assert!(!status.success());
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(
        log.contains("--user no-such-user-here: there is no such user"),
        "{log}"
    );
}
