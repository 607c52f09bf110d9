//! The box's own negative answers can be cached (RFC 2308): a blocked name
//! in `nxdomain` mode, blocked NODATA, local NODATA and private-name
//! NXDOMAIN carry an SOA in the authority section whose TTL and MINIMUM are
//! `filter.blocked_ttl`. Asked with `dig` over real sockets, as a stub
//! resolver would.

mod support;

use glory_hole::testing::client::ask;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A blocked TTL no default has, so the SOA visibly follows the config.
const CONFIG: &str = r#"
[dns]
listen = ["127.0.0.1:0"]
upstreams = ["127.0.0.1:9"]
[filter]
blocked_response = "MODE"
blocked_ttl = 42
deny = ["ads.example", "tracker.example"]
[[local.records]]
name = "nas.lan"
type = "A"
value = "192.168.1.10"
"#;

/// What dig printed: the status and the authority section's records, each
/// as its whitespace-separated fields.
struct Dig {
    status: String,
    answers: Vec<Vec<String>>,
    authority: Vec<Vec<String>>,
}

/// Runs `dig` against the server; fails clearly when dig is not installed.
async fn dig(server: SocketAddr, name: &str, qtype: &str) -> Dig {
    let args = vec![
        format!("@{}", server.ip()),
        "-p".into(),
        server.port().to_string(),
        "+tries=1".into(),
        "+time=5".into(),
        "+noall".into(),
        "+comments".into(),
        "+answer".into(),
        "+authority".into(),
        name.into(),
        qtype.into(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("dig")
            .args(&args)
            .output()
            .expect("dig runs (apt-get install bind9-dnsutils; .ci/setup installs it)")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "dig failed: {text}");
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no status in dig's output:\n{text}"))
        .to_string();
    let mut section = "";
    let (mut answers, mut authority) = (Vec::new(), Vec::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(";; ") {
            section = rest.split(' ').next().unwrap_or("");
            continue;
        }
        if line.trim().is_empty() || line.starts_with(';') {
            continue;
        }
        let fields = line.split_whitespace().map(str::to_string).collect();
        match section {
            "ANSWER" => answers.push(fields),
            "AUTHORITY" => authority.push(fields),
            _ => {}
        }
    }
    Dig {
        status,
        answers,
        authority,
    }
}

/// The SOA record dig should print for a negative answer about `owner`.
fn soa(owner: &str) -> Vec<String> {
    let text =
        format!("{owner} 42 IN SOA glory-hole.invalid. nobody.invalid. 1 1800 900 604800 42");
    text.split_whitespace().map(str::to_string).collect()
}

/// A server blocking in `mode` (`filter.blocked_response`), once its deny
/// rules are in force.
async fn start(mode: &str) -> support::dns::Running {
    let s = support::dns::start(&CONFIG.replace("MODE", mode)).await;
    // The deny rules reach the filter on its own thread: wait for them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ask(s.dns, "tracker.example", 1)
        .await
        .metadata
        .response_code
        == hickory_proto::op::ResponseCode::ServFail
    {
        assert!(Instant::now() < deadline, "the deny rule never took effect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_name_is_nxdomain_with_an_soa_of_the_blocked_ttl() {
    let s = start("nxdomain").await;
    let d = dig(s.dns, "ads.example", "A").await;
    assert_eq!(d.status, "NXDOMAIN");
    assert!(d.answers.is_empty());
    assert_eq!(d.authority, vec![soa("ads.example.")]);
    let d = dig(s.dns, "Tracker.Example", "MX").await;
    assert_eq!(d.status, "NXDOMAIN");
    assert_eq!(d.authority, vec![soa("Tracker.Example.")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_nodata_carries_the_soa_and_blocked_addresses_do_not() {
    let s = start("null").await;
    // A is answered 0.0.0.0: an answer, no SOA.
    let d = dig(s.dns, "ads.example", "A").await;
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.answers.len(), 1, "{:?}", d.answers);
    assert_eq!(d.answers[0][4], "0.0.0.0");
    assert!(d.authority.is_empty(), "{:?}", d.authority);
    // Other types get NODATA, cacheable.
    let d = dig(s.dns, "ads.example", "TXT").await;
    assert_eq!(d.status, "NOERROR");
    assert!(d.answers.is_empty());
    assert_eq!(d.authority, vec![soa("ads.example.")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_nodata_and_private_nxdomain_carry_the_soa() {
    let s = start("nxdomain").await;
    let d = dig(s.dns, "nas.lan", "AAAA").await;
    assert_eq!(d.status, "NOERROR");
    assert!(d.answers.is_empty());
    assert_eq!(d.authority, vec![soa("nas.lan.")]);
    // A name with records of the asked type has no SOA.
    let d = dig(s.dns, "nas.lan", "A").await;
    assert_eq!(d.answers.len(), 1);
    assert!(d.authority.is_empty(), "{:?}", d.authority);
    // Private names: the SOA is owned by the private zone.
    let d = dig(s.dns, "printer.lan", "A").await;
    assert_eq!(d.status, "NXDOMAIN");
    assert_eq!(d.authority, vec![soa("lan.")]);
    let d = dig(s.dns, "7.1.168.192.in-addr.arpa", "PTR").await;
    assert_eq!(d.status, "NXDOMAIN");
    assert_eq!(d.authority, vec![soa("168.192.in-addr.arpa.")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_blocks_say_nothing_cacheable() {
    let s = start("refused").await;
    let d = dig(s.dns, "ads.example", "A").await;
    assert_eq!(d.status, "REFUSED");
    assert!(d.authority.is_empty(), "{:?}", d.authority);
}
