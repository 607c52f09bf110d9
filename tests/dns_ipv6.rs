//! DNS over IPv6 on real sockets: the embedded default listens on both
//! loopbacks; in a network namespace of its own (`unshare -rn`), the whole
//! binary listens on `0.0.0.0` and `[::]` side by side (DNS and web) and
//! answers IPv6 clients by source: loopback, ULA and the LAN's global
//! prefix (an address on a veth interface of the namespace) are served, a
//! public source is refused, and IPv4 still answers.

mod support;

use glory_hole::config::Config;
use glory_hole::testing::client::{answers, ask, ask_from};
use std::net::SocketAddr;
use std::path::Path;
use support::netns::Namespaced;

const RECORD: &str =
    "[[local.records]]\nname = \"box.lan\"\ntype = \"A\"\nvalue = \"192.168.7.1\"\n";

#[test]
fn the_embedded_default_listens_on_both_loopbacks() {
    let d = Config::default();
    let want: Vec<SocketAddr> = vec![
        "127.0.0.1:1053".parse().unwrap(),
        "[::1]:1053".parse().unwrap(),
    ];
    assert_eq!(d.dns.listen, want);
    let want: Vec<SocketAddr> = vec![
        "127.0.0.1:8080".parse().unwrap(),
        "[::1]:8080".parse().unwrap(),
    ];
    assert_eq!(d.web.listen, want);
    assert!(d.dns.allow_lan_prefixes);
}

#[tokio::test]
async fn answers_over_ipv6_loopback() {
    let r = support::dns::start(&format!(
        "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\nupstreams = [\"127.0.0.1:9\"]\n{RECORD}"
    ))
    .await;
    let v6 = r.app.dns_addrs[1];
    assert!(v6.is_ipv6(), "{:?}", r.app.dns_addrs);
    assert_eq!(answers(&ask(v6, "box.lan", 1).await), ["192.168.7.1"]);
    let from = "::1".parse().unwrap();
    assert_eq!(
        answers(&ask_from(from, v6, "box.lan", 1).await),
        ["192.168.7.1"]
    );
}

const ULA: &str = "fd00::5";
const PUBLIC: &str = "2001:db8::5";
/// In the prefix of the box's own global address on `v0` (2001:db8:1::1/64).
const LAN: &str = "2001:db8:1::5";

/// The namespace's interfaces for the source tests: the LAN's global
/// address on a veth, the client addresses on loopback.
const ADDRESSES: &str = "ip link add v0 type veth peer name v1; ip link set v0 up; \
    ip link set v1 up; ip addr add 2001:db8:1::1/64 dev v0 nodad; \
    for a in fd00::5 2001:db8::5 2001:db8:1::5; do ip addr add $a/128 dev lo nodad; done";

/// The binary listening on `dns` and `web` (TOML arrays) after
/// `net_setup`.
fn start(dir: &Path, net_setup: &str, dns: &str, web: &str) -> Namespaced {
    let config = format!(
        "data_dir = {:?}\n[dns]\nlisten = {dns}\nupstreams = [\"127.0.0.1:9\"]\n\
         [web]\nlisten = {web}\n{RECORD}",
        dir.join("data")
    );
    Namespaced::start(dir, net_setup, &config)
}

/// One A query for box.lan from `src` to `server` inside the namespace,
/// retried until the server answers (it may still be starting); returns
/// dig's status line and answer.
fn query(ns: &Namespaced, src: &str, server: &str) -> (String, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = ns
            .command("dig")
            .args(["+time=1", "+tries=1", "-p", "1053", "-b", src])
            .arg(format!("@{server}"))
            .args(["box.lan", "A", "+noall", "+comments", "+answer"])
            .output()
            .expect("nsenter and dig run (.ci/setup installs bind9-dnsutils)");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(status) = text
            .split("status: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
        {
            let answer = text
                .lines()
                .filter(|l| l.starts_with("box.lan."))
                .filter_map(|l| l.split_whitespace().last())
                .collect::<Vec<_>>()
                .join(" ");
            return (status.to_string(), answer);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer from {server} to {src}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn ipv6_clients_are_served_by_source_like_ipv4_private_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let ns = start(
        dir.path(),
        ADDRESSES,
        r#"["0.0.0.0:1053", "[::]:1053"]"#,
        r#"["0.0.0.0:8080", "[::]:8080"]"#,
    );
    let log = || support::netns::log(dir.path());
    let served = ("NOERROR".to_string(), "192.168.7.1".to_string());

    // IPv4 and IPv6 listeners side by side on the same port.
    assert_eq!(query(&ns, "127.0.0.1", "127.0.0.1"), served, "{}", log());
    assert_eq!(query(&ns, "::1", "::1"), served, "{}", log());
    assert_eq!(query(&ns, ULA, ULA), served, "{}", log());
    assert_eq!(query(&ns, LAN, LAN), served, "{}", log());
    let (status, answer) = query(&ns, PUBLIC, PUBLIC);
    assert_eq!(
        (status.as_str(), answer.as_str()),
        ("REFUSED", ""),
        "{}",
        log()
    );
}

/// Without IPv6 on loopback, the default's `[::1]` addresses are skipped
/// with a warning naming them, and the server answers on 127.0.0.1.
#[test]
fn no_ipv6_on_loopback_does_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let ns = start(
        dir.path(),
        "echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6",
        r#"["127.0.0.1:1053", "[::1]:1053"]"#,
        r#"["127.0.0.1:8080", "[::1]:8080"]"#,
    );
    let log = || support::netns::log(dir.path());
    let served = ("NOERROR".to_string(), "192.168.7.1".to_string());
    assert_eq!(query(&ns, "127.0.0.1", "127.0.0.1"), served, "{}", log());
    // The web listener comes up after DNS: poll for its line.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !log().contains("web: not listening on [::1]:8080") {
        assert!(std::time::Instant::now() < deadline, "{}", log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        log().contains("dns: not listening on [::1]:1053: no IPv6 there"),
        "{}",
        log()
    );
    assert!(ns.alive(), "{}", log());
}
