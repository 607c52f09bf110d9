//! Device names over real sockets: a running glory-hole with a query log
//! of household traffic, the project's stand-in upstream playing the
//! router that answers PTR questions, and the web API in front.
//!
//! Given a local record `tv.lan A 192.168.1.23` and a router that names
//! 192.168.1.42 and 192.168.1.20 (and no one else): the log API, the
//! dashboard API, the log and clients pages and the export show those
//! names; an address nobody names shows as the address, and the router is
//! asked about it once; names from DHCP leases win over the router's.

mod support;

use serde_json::Value;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use support::names::{Household, start};
use support::web::Client;

const PATIENCE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// The newest log row of `client` through the API: (name, source).
async fn row_name(web: &mut Client, client: &str) -> (Value, Value) {
    let page = web
        .get(&format!("/api/v1/querylog?client={client}&limit=5"))
        .await
        .json();
    let row = &page["rows"][0];
    assert!(
        row.is_object(),
        "no rows of {client}: {page}; all: {}",
        web.get("/api/v1/querylog?limit=3").await.body
    );
    assert_eq!(row["client"], client, "the log has rows of {client}");
    (
        row["client_name"].clone(),
        row["client_name_source"].clone(),
    )
}

/// Reads `client`'s row until it carries `name` from `source`.
async fn until_named(web: &mut Client, client: &str, name: &str, source: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = row_name(web, client).await;
        if got == (Value::from(name), Value::from(source)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{client} never showed as {name} ({source}); last {got:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_show_for_addresses_from_local_records_the_router_and_dhcp() {
    let Household {
        app,
        router,
        mut web,
        // Kept to the end: the box's data lives there.
        dir: _dir,
        ..
    } = start().await;

    // A local record names its address at once, in the log and the
    // dashboard's top clients.
    assert_eq!(
        row_name(&mut web, "192.168.1.23").await,
        (Value::from("tv.lan"), Value::from("local"))
    );
    let stats = web.get("/api/v1/stats?range=24h").await.json();
    let top: Vec<(String, Value)> = stats["top_clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["client_name"].clone(),
            )
        })
        .collect();
    assert!(
        top.contains(&("192.168.1.23".into(), Value::from("tv.lan"))),
        "{top:?}"
    );

    // The router names a client a moment later; nothing waited for it.
    until_named(&mut web, "192.168.1.42", "phone.fritz.box", "ptr").await;
    until_named(&mut web, "192.168.1.20", "laptop.fritz.box", "ptr").await;

    // A client the router has no name for shows as its address; the
    // router was asked once, and its "no" is remembered.
    let unnamed = ["10.0.0.7", "fd00::5"];
    let reverse = ["7.0.0.10.in-addr.arpa", &ptr_name_v6("fd00::5")];
    let deadline = Instant::now() + PATIENCE;
    while reverse.iter().any(|r| router.queries(r) == 0) {
        assert!(Instant::now() < deadline, "the router was never asked");
        for c in unnamed {
            row_name(&mut web, c).await;
        }
        tokio::time::sleep(POLL).await;
    }
    // Until the reply is stored the address counts as asked, and after it
    // the "no" is kept: more reads ask nothing more.
    for _ in 0..5 {
        for c in unnamed {
            assert_eq!(row_name(&mut web, c).await, (Value::Null, Value::Null));
        }
    }
    for r in reverse {
        assert_eq!(router.queries(r), 1, "{r}: the negative answer is kept");
    }
    // An address a local record names is not the router's to name.
    assert_eq!(router.queries("23.1.168.192.in-addr.arpa"), 0);

    // The pages show the names beside the addresses.
    let log_page = web.get("/querylog").await.body;
    assert!(
        log_page.contains(
            "<span class=\"device\" title=\"192.168.1.23 (name from a local record)\">tv.lan</span>"
        ),
        "{log_page}"
    );
    let clients = web.get("/clients").await.body;
    for want in [
        "title=\"192.168.1.42 (name from the router)\">phone.fritz.box</span>",
        "title=\"192.168.1.23 (name from a local record)\">tv.lan</span>",
    ] {
        assert!(clients.contains(want), "clients page lacks {want}");
    }

    // The export carries the name in its last column / field.
    let csv = web
        .get("/api/v1/querylog/export?format=csv&client=192.168.1.42")
        .await
        .body;
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        rd.headers().unwrap().iter().next_back(),
        Some("client_name")
    );
    let names: Vec<String> = rd.records().map(|r| r.unwrap()[10].to_string()).collect();
    assert!(!names.is_empty());
    assert!(names.iter().all(|n| n == "phone.fritz.box"), "{names:?}");
    let jsonl = web
        .get("/api/v1/querylog/export?format=jsonl&status=blocked")
        .await
        .body;
    let mut seen = std::collections::HashMap::new();
    for line in jsonl.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        seen.insert(
            v["client"].as_str().unwrap().to_string(),
            v["client_name"].clone(),
        );
    }
    assert_eq!(seen["192.168.1.23"], "tv.lan");
    assert_eq!(seen["192.168.1.42"], "phone.fritz.box");
    assert_eq!(seen["10.0.0.7"], Value::Null);

    // The box becomes the DHCP server: its lease names win over the
    // router's and the local record's; stopping it brings them back.
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    app.names.set_dhcp([
        (ip("192.168.1.20"), "laptop".to_string()),
        (ip("192.168.1.23"), "living-room-tv".to_string()),
    ]);
    let leased = [
        ("192.168.1.20", "laptop", "dhcp"),
        ("192.168.1.23", "living-room-tv", "dhcp"),
    ];
    let after = [
        ("192.168.1.20", "laptop.fritz.box", "ptr"),
        ("192.168.1.23", "tv.lan", "local"),
    ];
    for (step, shows) in [leased, after].into_iter().enumerate() {
        for (client, name, source) in shows {
            assert_eq!(
                row_name(&mut web, client).await,
                (Value::from(name), Value::from(source)),
                "step {step}"
            );
        }
        app.names.stop_dhcp();
    }
}

/// The ip6.arpa name of an IPv6 address, nibbles reversed.
fn ptr_name_v6(addr: &str) -> String {
    let v6: std::net::Ipv6Addr = addr.parse().unwrap();
    let hex: String = v6.octets().iter().map(|b| format!("{b:02x}")).collect();
    let mut labels: Vec<String> = hex.chars().rev().map(String::from).collect();
    labels.push("ip6.arpa".into());
    labels.join(".")
}
