use super::*;

fn config(text: &str) -> Config {
    Config::from_toml(text, "test").unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const TV_RECORD: &str = "[[local.records]]\nname = \"tv.lan\"\ntype = \"A\"\nvalue = \"192.168.1.23\"\n\
                         [[local.records]]\nname = \"tv-again.lan\"\ntype = \"A\"\nvalue = \"192.168.1.23\"\n\
                         [[local.records]]\nname = \"nas.lan\"\ntype = \"AAAA\"\nvalue = \"fd00::10\"\n";

#[tokio::test]
async fn a_local_record_names_its_address_and_the_first_one_wins() {
    let names = DeviceNames::start(&config(TV_RECORD));
    let tv = names.name(ip("192.168.1.23")).unwrap();
    assert_eq!((&*tv.name, tv.source), ("tv.lan", Source::Local));
    // The same address as an IPv4-mapped IPv6 client.
    assert_eq!(names.name(ip("::ffff:192.168.1.23")), Some(tv));
    assert_eq!(&*names.name_of("fd00::10").unwrap().name, "nas.lan");
    assert_eq!(names.name(ip("192.168.1.24")), None);
    assert_eq!(names.name_of("not an address"), None);
}

#[tokio::test]
async fn dhcp_names_win_over_local_records_and_the_router() {
    let names = DeviceNames::start(&config(TV_RECORD));
    names.answered(ip("192.168.1.50"), Some("phone.fritz.box".into()));
    names.set_dhcp([
        (ip("192.168.1.23"), "living-room-tv".to_string()),
        (ip("192.168.1.50"), "phone.".to_string()),
        (ip("192.168.1.60"), "  ".to_string()),
    ]);
    let got = |a| names.name(ip(a)).map(|n| (n.name.to_string(), n.source));
    assert_eq!(
        got("192.168.1.23"),
        Some(("living-room-tv".into(), Source::Dhcp))
    );
    assert_eq!(got("192.168.1.50"), Some(("phone".into(), Source::Dhcp)));
    assert_eq!(got("192.168.1.60"), None, "an empty name names nothing");
    // A new set replaces the old one.
    names.set_dhcp([(ip("192.168.1.60"), "printer".to_string())]);
    assert_eq!(got("192.168.1.23"), Some(("tv.lan".into(), Source::Local)));
    assert_eq!(got("192.168.1.60"), Some(("printer".into(), Source::Dhcp)));
    names.stop_dhcp();
    assert_eq!(got("192.168.1.60"), None);
    assert_eq!(
        got("192.168.1.50"),
        Some(("phone.fritz.box".into(), Source::Ptr))
    );
}

#[test]
fn the_router_is_the_configured_one_or_a_private_upstream() {
    let plain = |u: &str| config(&format!("[dns]\nupstreams = [{u}]\n"));
    assert_eq!(router_of(&plain("\"1.1.1.1\", \"9.9.9.9\"")), None);
    assert_eq!(
        router_of(&plain("\"1.1.1.1\", \"192.168.1.1\"")),
        Some("192.168.1.1:53".parse().unwrap())
    );
    assert_eq!(
        router_of(&plain("\"tls://192.168.1.1:853#router\"")),
        None,
        "only a plain-DNS upstream is asked"
    );
    let named =
        config("[dns]\nupstreams = [\"192.168.1.1\"]\n[names]\nrouter = \"10.0.0.1:5353\"\n");
    assert_eq!(router_of(&named), Some("10.0.0.1:5353".parse().unwrap()));
    let off = config("[dns]\nupstreams = [\"192.168.1.1\"]\n[names]\nask_router = false\n");
    assert_eq!(router_of(&off), None);
    let err = Config::from_toml(
        "[names]\nrouter = \"https://dns.example/dns-query#192.0.2.1\"\n",
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("names.router"), "{err}");
}

#[test]
fn only_local_network_addresses_are_the_routers_to_name() {
    for a in [
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.23",
        "169.254.3.4",
        "fd12::1",
        "fe80::1",
        "::ffff:192.168.0.2",
    ] {
        assert!(on_local_network(ip(a)), "{a}");
    }
    for a in [
        "127.0.0.1",
        "8.8.8.8",
        "100.64.0.1",
        "::1",
        "2001:db8::1",
        "172.32.0.1",
    ] {
        assert!(!on_local_network(ip(a)), "{a}");
    }
}

#[tokio::test]
async fn the_router_answers_are_capped() {
    let names = DeviceNames::start(&config(""));
    for i in 0..(MAX_NAMES + 10) as u32 {
        let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        names.answered(a, Some(format!("d{i}")));
    }
    assert_eq!(names.ptr.load().len(), MAX_NAMES);
    assert_eq!(
        names.name(ip("10.0.4.9")).map(|n| n.name.to_string()),
        Some("d1033".into()),
        "the newest answer is kept"
    );
}
