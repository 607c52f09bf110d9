//! Blocking over real sockets: the FilterService's snapshot behind the real
//! DNS server and pipeline, a scripted upstream (testing::upstream) for
//! CNAME chains and private addresses, queries over UDP from loopback
//! addresses (127.0.0.2 plays a second client for groups).

use glory_hole::config::Config;
use glory_hole::dns::{Engine, server};
use glory_hole::events::EventSink;
use glory_hole::filter::FilterService;
use glory_hole::testing::client::{answers, ask, ask_from, ttls};
use glory_hole::testing::upstream::{Behaviour, StandIn};
use hickory_proto::op::{Message, ResponseCode};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const A: u16 = 1;
const AAAA: u16 = 28;
const TXT: u16 = 16;

struct Dns {
    svc: Arc<FilterService>,
    addr: SocketAddr,
    up: StandIn,
    _server: server::DnsServer,
    _dir: tempfile::TempDir,
}

/// A server whose `[filter]` section is `filter_toml` plus `lists` written
/// to files, forwarding to a scripted upstream.
async fn start(filter_toml: &str, lists: &[(&str, &str)]) -> Dns {
    let up = StandIn::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!(
        "data_dir = {:?}\n[dns]\nlisten = [\"127.0.0.1:0\"]\nupstreams = [\"{}\"]\n[web]\nenabled = false\n[filter]\n{filter_toml}\n",
        dir.path().display().to_string(),
        up.addr()
    );
    for (name, body) in lists {
        let p = dir.path().join(format!("{name}.txt"));
        std::fs::write(&p, body).unwrap();
        text.push_str(&format!(
            "[[filter.lists]]\nname = \"{name}\"\npath = {:?}\n",
            p.display().to_string()
        ));
    }
    let cfg = Config::from_toml(&text, "test config").unwrap_or_else(|e| panic!("{e}"));
    let svc = FilterService::start(&cfg).unwrap();
    let s = svc.clone();
    let ready = tokio::task::spawn_blocking(move || s.wait_ready(Duration::from_secs(60)));
    assert!(ready.await.unwrap());
    let engine =
        Arc::new(Engine::new(Arc::new(cfg.clone()), svc.current(), EventSink::disabled()).unwrap());
    let server = server::start(engine, &cfg.dns).await.unwrap();
    Dns {
        svc,
        addr: server.addrs[0],
        up,
        _server: server,
        _dir: dir,
    }
}

/// Applies `cfg`'s filter settings and waits for the new snapshot.
async fn apply(d: &Dns, cfg: &Config) {
    d.svc.apply_config(cfg).unwrap();
    let s = d.svc.clone();
    assert!(
        tokio::task::spawn_blocking(move || s.wait_idle(Duration::from_secs(60)))
            .await
            .unwrap()
    );
}

/// A UDP query sent from `from` (any 127.x address works on Linux).
fn rcode(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

const UPSTREAM_A: &str = "192.0.2.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_response_mode_for_a_aaaa_and_other_types() {
    let lists = [("ads", "ads.example\n")];
    // (mode, A answers, AAAA answers, rcode) for a blocked name.
    let cases: [(&str, &[&str], &[&str], ResponseCode); 5] = [
        ("null", &["0.0.0.0"], &["::"], ResponseCode::NoError),
        ("nxdomain", &[], &[], ResponseCode::NXDomain),
        ("refused", &[], &[], ResponseCode::Refused),
        ("192.168.1.2", &["192.168.1.2"], &[], ResponseCode::NoError),
        ("fd00::2", &[], &["fd00::2"], ResponseCode::NoError),
    ];
    for (mode, want_a, want_aaaa, code) in cases {
        let d = start(
            &format!("blocked_response = \"{mode}\"\nblocked_ttl = 7"),
            &lists,
        )
        .await;
        let m = ask(d.addr, "x.ads.example", A).await;
        assert_eq!(
            (rcode(&m), answers(&m)),
            (
                code,
                want_a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
            ),
            "{mode} A"
        );
        if !want_a.is_empty() {
            assert_eq!(ttls(&m), [7], "{mode}");
        }
        let m = ask(d.addr, "x.ads.example", AAAA).await;
        assert_eq!(
            (rcode(&m), answers(&m)),
            (
                code,
                want_aaaa.iter().map(|s| s.to_string()).collect::<Vec<_>>()
            ),
            "{mode} AAAA"
        );
        let m = ask(d.addr, "ads.example", TXT).await;
        assert_eq!((rcode(&m), m.answers.len()), (code, 0), "{mode} TXT");
        // Nothing blocked reaches the upstream; other names do.
        assert_eq!(
            d.up.queries("x.ads.example") + d.up.queries("ads.example"),
            0
        );
        let m = ask(d.addr, "fine.example", A).await;
        assert_eq!(answers(&m), [UPSTREAM_A], "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_subdomain_allow_deny_regex_and_exceptions() {
    let d = start(
        r#"allow = ["good.tracker.example", "*.cdn.example"]
deny = ["bad.example.com", "*.deny.example", "/^ads?[0-9]*\\./"]"#,
        &[
            ("hosts", "0.0.0.0 exact.example\n"),
            (
                "adblock",
                "||tracker.example^\n||cdn.example^\n@@||ok.tracker.example^\n",
            ),
        ],
    )
    .await;
    let blocked = |m: &Message| answers(m) == ["0.0.0.0"];
    assert!(blocked(&ask(d.addr, "exact.example", A).await));
    assert_eq!(
        answers(&ask(d.addr, "sub.exact.example", A).await),
        [UPSTREAM_A]
    );
    assert!(blocked(&ask(d.addr, "tracker.example", A).await));
    assert!(blocked(&ask(d.addr, "a.b.tracker.example", A).await));
    assert_eq!(
        answers(&ask(d.addr, "good.tracker.example", A).await),
        [UPSTREAM_A]
    );
    assert_eq!(
        answers(&ask(d.addr, "x.ok.tracker.example", A).await),
        [UPSTREAM_A]
    );
    assert_eq!(
        answers(&ask(d.addr, "img.cdn.example", A).await),
        [UPSTREAM_A]
    );
    assert!(blocked(&ask(d.addr, "bad.example.com", A).await));
    assert!(blocked(&ask(d.addr, "deny.example", A).await));
    assert!(blocked(&ask(d.addr, "x.deny.example", A).await));
    assert!(blocked(&ask(d.addr, "ads7.anything.org", A).await));
    assert_eq!(
        answers(&ask(d.addr, "bads.anything.org", A).await),
        [UPSTREAM_A]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cname_cloaking_is_blocked_shallow_and_deep() {
    let d = start("", &[("trackers", "||cloak.tracker.example^\n")]).await;
    let chain = |names: &[&str]| Behaviour::CnameChain {
        chain: names.iter().map(|s| s.to_string()).collect(),
        final_a: Ipv4Addr::new(93, 184, 216, 34),
        ttl: 300,
    };
    d.up.set("metrics.shop.example", chain(&["x.cloak.tracker.example"]));
    d.up.set(
        "www.shop.example",
        chain(&[
            "edge.cdn.example",
            "lb.cdn.example",
            "cloak.tracker.example",
        ]),
    );
    d.up.set(
        "img.shop.example",
        chain(&["edge.cdn.example", "lb.cdn.example"]),
    );
    let m = ask(d.addr, "metrics.shop.example", A).await;
    assert_eq!(answers(&m), ["0.0.0.0"]);
    let m = ask(d.addr, "www.shop.example", A).await;
    assert_eq!(answers(&m), ["0.0.0.0"]);
    let m = ask(d.addr, "www.shop.example", AAAA).await;
    assert_eq!(answers(&m), ["::"]);
    let m = ask(d.addr, "img.shop.example", A).await;
    assert_eq!(
        answers(&m),
        ["edge.cdn.example.", "lb.cdn.example.", "93.184.216.34"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_and_rebinding() {
    let d = start(
        "blocked_response = \"nxdomain\"\nallow = [\"router.example.com\"]",
        &[],
    )
    .await;
    for name in [
        "use-application-dns.net",
        "mask.icloud.com",
        "mask-h2.icloud.com",
    ] {
        assert_eq!(
            rcode(&ask(d.addr, name, A).await),
            ResponseCode::NXDomain,
            "{name}"
        );
    }
    assert_eq!(d.up.queries("use-application-dns.net"), 0);
    d.up.set(
        "evil.example.com",
        Behaviour::a(Ipv4Addr::new(192, 168, 1, 1), 300),
    );
    d.up.set(
        "router.example.com",
        Behaviour::a(Ipv4Addr::new(192, 168, 1, 1), 300),
    );
    d.up.set("nas.lan", Behaviour::a(Ipv4Addr::new(192, 168, 1, 5), 300));
    assert_eq!(
        rcode(&ask(d.addr, "evil.example.com", A).await),
        ResponseCode::NXDomain
    );
    assert_eq!(d.up.queries("evil.example.com"), 1);
    assert_eq!(
        answers(&ask(d.addr, "router.example.com", A).await),
        ["192.168.1.1"]
    );
    assert_eq!(
        answers(&ask(d.addr, "public.example.com", A).await),
        [UPSTREAM_A]
    );

    let off = start(
        "block_doh_canary = false\nblock_icloud_private_relay = false\nrebind_protection = false",
        &[],
    )
    .await;
    off.up.set(
        "evil.example.com",
        Behaviour::a(Ipv4Addr::new(192, 168, 1, 1), 300),
    );
    assert_eq!(
        answers(&ask(off.addr, "use-application-dns.net", A).await),
        [UPSTREAM_A]
    );
    assert_eq!(
        answers(&ask(off.addr, "evil.example.com", A).await),
        ["192.168.1.1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_choose_lists_by_client_address() {
    let d = start(
        "[[filter.groups]]\nname = \"kids\"\nclients = [\"127.0.0.2\"]\ndeny = [\"video.example\"]",
        &[("games", "games.example\n")],
    )
    .await;
    // The list applies to the default group unless told otherwise: edit it.
    let cfg = Config::from_toml(
        &format!(
            "data_dir = {:?}\n[filter]\n[[filter.groups]]\nname = \"kids\"\nclients = [\"127.0.0.2\"]\ndeny = [\"video.example\"]\n[[filter.lists]]\nname = \"games\"\npath = {:?}\ngroups = [\"kids\"]\n",
            d._dir.path().display().to_string(),
            d._dir.path().join("games.txt").display().to_string()
        ),
        "t",
    )
    .unwrap();
    apply(&d, &cfg).await;
    let adult = ask_from([127, 0, 0, 1].into(), d.addr, "games.example", A).await;
    assert_eq!(answers(&adult), [UPSTREAM_A]);
    let kid = ask_from([127, 0, 0, 2].into(), d.addr, "games.example", A).await;
    assert_eq!(answers(&kid), ["0.0.0.0"]);
    let kid = ask_from([127, 0, 0, 2].into(), d.addr, "video.example", A).await;
    assert_eq!(answers(&kid), ["0.0.0.0"]);
    let adult = ask_from([127, 0, 0, 1].into(), d.addr, "video.example", A).await;
    assert_eq!(answers(&adult), [UPSTREAM_A]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume() {
    let d = start("", &[("ads", "ads.example\n")]).await;
    assert_eq!(answers(&ask(d.addr, "ads.example", A).await), ["0.0.0.0"]);
    d.svc.pause(Some(10));
    assert!(d.svc.pause_status().paused);
    assert_eq!(answers(&ask(d.addr, "ads.example", A).await), [UPSTREAM_A]);
    d.svc.resume();
    assert_eq!(answers(&ask(d.addr, "ads.example", A).await), ["0.0.0.0"]);
    d.svc.pause(None);
    assert_eq!(
        answers(&ask(d.addr, "ads.example", AAAA).await),
        ["2001:db8::1"]
    );
}

/// A cached answer skips the filter's look-up only while the filter that
/// stamped it has nothing to say about its name for any client: a name
/// blocked for another group, or ruled after it was cached, is blocked
/// from the cache too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_are_still_blocked_for_other_groups_and_after_a_change() {
    let kids = "[[filter.groups]]\nname = \"kids\"\nclients = [\"127.0.0.2\"]\ndeny = [\"video.example\", \"/^tube\\\\./\"]";
    let d = start(kids, &[]).await;
    let (adult, kid) = ([127, 0, 0, 1].into(), [127, 0, 0, 2].into());
    for name in ["video.example", "tube.example", "news.example"] {
        for _ in 0..2 {
            let m = ask_from(adult, d.addr, name, A).await;
            assert_eq!(answers(&m), [UPSTREAM_A], "{name}");
        }
        // The second answer came from the cache.
        assert_eq!(d.up.queries(name), 1, "{name}");
        let m = ask_from(kid, d.addr, name, A).await;
        let want: &[&str] = match name {
            "news.example" => &[UPSTREAM_A],
            _ => &["0.0.0.0"],
        };
        assert_eq!(answers(&m), want, "{name} for the kid");
    }
    // news.example is cached with nothing against it; a deny rule for
    // everyone arrives.
    let cfg = Config::from_toml(
        &format!(
            "data_dir = {:?}\n[filter]\ndeny = [\"news.example\"]\n{kids}\n",
            d._dir.path().display().to_string()
        ),
        "t",
    )
    .unwrap();
    apply(&d, &cfg).await;
    for who in [adult, kid] {
        let m = ask_from(who, d.addr, "news.example", A).await;
        assert_eq!(answers(&m), ["0.0.0.0"], "news.example from {who}");
    }
    assert_eq!(d.up.queries("news.example"), 1);
}
