//! Shared by the forwarding tests: the stand-in upstream on loopback,
//! forwarder and server settings, a hang guard, and reading answers.

use glory_hole::config::{DnsConfig, Dur, Upstream};
use glory_hole::testing::client::{answers, ask};
use glory_hole::testing::upstream::StandIn;
use glory_hole::wire;
use hickory_proto::op::Message;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Generous: only guards against hangs, never measures.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

pub async fn guard<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, f)
        .await
        .expect("the forwarder hung")
}

pub async fn stand_in() -> StandIn {
    StandIn::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// A forwarder's settings: how long one upstream and one query may take.
pub fn forwarder_config(upstream_timeout_ms: u64, query_timeout_ms: u64) -> DnsConfig {
    DnsConfig {
        upstream_timeout: Dur(Duration::from_millis(upstream_timeout_ms)),
        query_timeout: Dur(Duration::from_millis(query_timeout_ms)),
        ..DnsConfig::default()
    }
}

/// A server's config text forwarding to `upstreams`, then `extra`.
pub fn server_config(upstreams: &[&StandIn], extra: &str) -> String {
    let list: Vec<String> = upstreams
        .iter()
        .map(|u| format!("\"{}\"", u.addr()))
        .collect();
    format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nupstreams = [{}]\nupstream_timeout = \"300ms\"\nquery_timeout = \"2s\"\n{extra}",
        list.join(", ")
    )
}

pub fn plain(s: &StandIn) -> Upstream {
    Upstream::Plain(s.addr())
}

pub fn ip(a: Ipv4Addr) -> String {
    a.to_string()
}

/// The answer section's A/AAAA addresses as text.
pub fn answer_addrs(reply: &[u8]) -> Vec<String> {
    let m = hickory_proto::op::Message::from_vec(reply).expect("the answer parses");
    answers(&m)
        .into_iter()
        .filter(|a| a.parse::<IpAddr>().is_ok())
        .collect()
}

pub fn id_of(msg: &[u8]) -> u16 {
    wire::read_u16(msg, 0).unwrap()
}

/// Asks the server for `name` (A) until `done` holds for the answer, for
/// at most 10 s: the cache counts time in whole seconds of a coarse clock.
pub async fn ask_until(
    dns: SocketAddr,
    name: &str,
    what: &str,
    mut done: impl FnMut(&Message) -> bool,
) -> Message {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = ask(dns, name, 1).await;
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
