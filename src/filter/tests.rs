//! Blocking semantics at the `Filter` level: given lists and rules, this name
//! from this client gets that verdict.

use super::*;
use crate::config::{ClientGroup, Config, FilterList, MatchMode};
use crate::wire::{TYPE_A, TYPE_AAAA, TYPE_CNAME, text_to_name};

struct Setup {
    _dir: tempfile::TempDir,
    cfg: Config,
}

fn setup(lists: &[(&str, &str)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    for (name, text) in lists {
        let p = dir.path().join(format!("{name}.txt"));
        std::fs::write(&p, text).unwrap();
        cfg.filter.lists.push(FilterList {
            name: name.to_string(),
            path: Some(p),
            url: None,
            enabled: true,
            match_mode: None,
            groups: vec![],
        });
    }
    Setup { _dir: dir, cfg }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const C: &str = "192.168.1.10";

fn blocked(kind: u8, id: u32) -> Verdict {
    Verdict::Blocked(Reason {
        kind,
        id,
        cname_depth: 0,
    })
}

#[test]
fn hosts_lines_are_exact_and_domain_lines_cover_subdomains() {
    let s = setup(&[
        ("hosts", "0.0.0.0 ads.example\n"),
        ("domains", "# c\ntracker.example\n"),
        ("adblock", "||ab.example^\n|only.example^\n"),
        ("dnsmasq", "server=/dm.example/\n"),
    ]);
    let f = Filter::from_config(&s.cfg).unwrap();
    let c = ip(C);
    assert_eq!(f.check("ads.example", c), blocked(KIND_LIST, 0));
    assert_eq!(f.check("sub.ads.example", c), Verdict::Pass);
    assert_eq!(f.check("tracker.example", c), blocked(KIND_LIST, 1));
    assert_eq!(f.check("a.b.tracker.example", c), blocked(KIND_LIST, 1));
    assert_eq!(f.check("xtracker.example", c), Verdict::Pass);
    assert_eq!(f.check("example", c), Verdict::Pass);
    assert_eq!(f.check("x.ab.example", c), blocked(KIND_LIST, 2));
    assert_eq!(f.check("only.example", c), blocked(KIND_LIST, 2));
    assert_eq!(f.check("x.only.example", c), Verdict::Pass);
    assert_eq!(f.check("deep.er.dm.example", c), blocked(KIND_LIST, 3));
    assert_eq!(
        f.describe(Reason {
            kind: KIND_LIST,
            id: 1,
            cname_depth: 0
        }),
        "list 'domains'"
    );
}

#[test]
fn a_list_can_override_its_match_mode() {
    let mut s = setup(&[
        ("hosts", "0.0.0.0 ads.example\n"),
        ("domains", "tracker.example\n"),
    ]);
    s.cfg.filter.lists[0].match_mode = Some(MatchMode::Subdomains);
    s.cfg.filter.lists[1].match_mode = Some(MatchMode::Exact);
    let f = Filter::from_config(&s.cfg).unwrap();
    let c = ip(C);
    assert_eq!(f.check("sub.ads.example", c), blocked(KIND_LIST, 0));
    assert_eq!(f.check("tracker.example", c), blocked(KIND_LIST, 1));
    assert_eq!(f.check("sub.tracker.example", c), Verdict::Pass);
}

#[test]
fn allow_beats_every_block_and_deny_beats_lists() {
    let mut s = setup(&[
        ("block", "||example.net^\n||cdn.example^\n"),
        ("exceptions", "@@||safe.example.net^\n"),
    ]);
    s.cfg.filter.allow = vec![
        "good.example.net".parse().unwrap(),
        "*.cdn.example".parse().unwrap(),
        "/^safe[0-9]+\\.example$/".parse().unwrap(),
        "use-application-dns.net".parse().unwrap(),
    ];
    s.cfg.filter.deny = vec![
        "bad.example.com".parse().unwrap(),
        "*.tracker.example".parse().unwrap(),
        "/^ads?[0-9]*\\./".parse().unwrap(),
        "x.example.net".parse().unwrap(),
        "safe7.example".parse().unwrap(),
    ];
    let f = Filter::from_config(&s.cfg).unwrap();
    let c = ip(C);
    assert_eq!(f.check("good.example.net", c), Verdict::Allowed);
    assert_eq!(f.check("sub.good.example.net", c), blocked(KIND_LIST, 0));
    assert_eq!(f.check("img.cdn.example", c), Verdict::Allowed);
    assert_eq!(f.check("cdn.example", c), Verdict::Allowed);
    assert_eq!(f.check("a.safe.example.net", c), Verdict::Allowed);
    assert_eq!(f.check("safe7.example", c), Verdict::Allowed);
    assert_eq!(f.check("use-application-dns.net", c), Verdict::Allowed);
    assert_eq!(f.check("bad.example.com", c), blocked(KIND_DENY, 0));
    assert_eq!(f.check("x.bad.example.com", c), Verdict::Pass);
    assert_eq!(f.check("tracker.example", c), blocked(KIND_DENY, 1));
    assert_eq!(f.check("p.tracker.example", c), blocked(KIND_DENY, 1));
    assert_eq!(f.check("ads3.anything.org", c), blocked(KIND_DENY_REGEX, 2));
    assert_eq!(f.check("ad.example.org", c), blocked(KIND_DENY_REGEX, 2));
    assert_eq!(f.check("bads.example.org", c), Verdict::Pass);
    // User deny beats the list for reporting.
    assert_eq!(f.check("x.example.net", c), blocked(KIND_DENY, 3));
    assert_eq!(
        f.describe(Reason {
            kind: KIND_DENY,
            id: 1,
            cname_depth: 0
        }),
        "deny rule '*.tracker.example'"
    );
    assert_eq!(
        f.describe(Reason {
            kind: KIND_DENY_REGEX,
            id: 2,
            cname_depth: 2
        }),
        "deny regex '/^ads?[0-9]*\\./', via CNAME target #2"
    );
}

#[test]
fn special_names_are_blocked_and_switchable() {
    let s = setup(&[]);
    let f = Filter::from_config(&s.cfg).unwrap();
    let c = ip(C);
    assert_eq!(
        f.check("use-application-dns.net", c),
        blocked(KIND_SPECIAL, special::DOH_CANARY)
    );
    assert_eq!(
        f.check("mask.icloud.com", c),
        blocked(KIND_SPECIAL, special::ICLOUD_RELAY)
    );
    assert_eq!(
        f.check("mask-h2.icloud.com", c),
        blocked(KIND_SPECIAL, special::ICLOUD_RELAY)
    );
    assert_eq!(f.check("icloud.com", c), Verdict::Pass);
    let canary = Reason {
        kind: KIND_SPECIAL,
        id: 0,
        cname_depth: 0,
    };
    assert!(f.describe(canary).contains("DoH canary"));
    use crate::config::BlockedResponse;
    assert_eq!(f.blocked_response(), BlockedResponse::Null);
    assert_eq!(f.blocked_response_for(canary), BlockedResponse::Nxdomain);
    let list = Reason {
        kind: KIND_LIST,
        ..canary
    };
    assert_eq!(f.blocked_response_for(list), BlockedResponse::Null);
    let mut cfg = s.cfg.clone();
    cfg.filter.block_doh_canary = false;
    cfg.filter.block_icloud_private_relay = false;
    let f = Filter::from_config(&cfg).unwrap();
    assert_eq!(f.check("use-application-dns.net", c), Verdict::Pass);
    assert_eq!(f.check("mask.icloud.com", c), Verdict::Pass);
}

#[test]
fn groups_choose_lists_and_rules_per_client() {
    let mut s = setup(&[("everyone", "ads.example\n"), ("kids", "games.example\n")]);
    s.cfg.filter.lists[1].groups = vec!["kids".into()];
    s.cfg.filter.groups = vec![
        ClientGroup {
            name: "kids".into(),
            clients: vec![
                "192.168.1.50".into(),
                "10.7.0.0/16".into(),
                "aa:bb:cc:00:00:01".into(),
            ],
            deny: vec!["video.example".parse().unwrap()],
            allow: vec!["ads.example".parse().unwrap()],
        },
        ClientGroup {
            name: "guests".into(),
            clients: vec!["192.168.1.60".into()],
            ..Default::default()
        },
    ];
    let f = Filter::from_config(&s.cfg).unwrap();
    let adult = ip(C);
    let kid = ip("192.168.1.50");
    assert_eq!(f.check("games.example", adult), Verdict::Pass);
    assert_eq!(f.check("games.example", kid), blocked(KIND_LIST, 1));
    assert_eq!(
        f.check("games.example", ip("10.7.3.4")),
        blocked(KIND_LIST, 1)
    );
    assert_eq!(f.check("ads.example", adult), blocked(KIND_LIST, 0));
    assert_eq!(f.check("ads.example", kid), Verdict::Allowed);
    assert_eq!(f.check("video.example", kid), blocked(KIND_DENY, 0));
    assert_eq!(f.check("video.example", adult), Verdict::Pass);
    assert_eq!(
        f.describe(Reason {
            kind: KIND_DENY,
            id: 0,
            cname_depth: 0
        }),
        "deny rule 'video.example' (group 'kids')"
    );
    // Guests are not in default, so the default list does not apply.
    assert_eq!(f.check("ads.example", ip("192.168.1.60")), Verdict::Pass);
    // MAC membership comes from the neighbour table.
    let by_mac = ip("192.168.1.77");
    assert_eq!(f.check("games.example", by_mac), Verdict::Pass);
    let map = f
        .policy()
        .groups
        .client_map(&[(by_mac, [0xaa, 0xbb, 0xcc, 0, 0, 1])]);
    let f = f.with_clients(map);
    assert_eq!(f.check("games.example", by_mac), blocked(KIND_LIST, 1));
    assert_eq!(f.explain("games.example", by_mac).groups, vec!["kids"]);
}

#[test]
fn pause_and_disable_pass_everything() {
    let mut s = setup(&[("l", "ads.example\n")]);
    s.cfg.filter.deny = vec!["deny.example".parse().unwrap()];
    let f = Filter::from_config(&s.cfg).unwrap();
    let c = ip(C);
    f.pause_state().set_until_ms(i64::MAX);
    assert_eq!(f.check("ads.example", c), Verdict::Pass);
    assert_eq!(f.check("deny.example", c), Verdict::Pass);
    f.pause_state().set_until_ms(crate::clock::now_ms() - 1);
    assert_eq!(f.check("ads.example", c), blocked(KIND_LIST, 0));
    f.pause_state()
        .set_until_ms(crate::clock::now_ms() + 60_000);
    assert_eq!(f.check("ads.example", c), Verdict::Pass);
    let mut cfg = s.cfg.clone();
    cfg.filter.enabled = false;
    let f = Filter::from_config(&cfg).unwrap();
    assert_eq!(f.check("ads.example", c), Verdict::Pass);
    assert_eq!(
        Filter::empty().check("use-application-dns.net", c),
        Verdict::Pass
    );
}

#[test]
fn blocked_response_and_ttl_are_reported() {
    let mut s = setup(&[]);
    for (mode, ttl) in [
        (crate::config::BlockedResponse::Null, 2),
        (crate::config::BlockedResponse::Nxdomain, 5),
        (crate::config::BlockedResponse::Refused, 0),
        (crate::config::BlockedResponse::Ip(ip("192.168.1.2")), 60),
    ] {
        s.cfg.filter.blocked_response = mode;
        s.cfg.filter.blocked_ttl = ttl;
        let f = Filter::from_config(&s.cfg).unwrap();
        assert_eq!(f.blocked_response(), mode);
        assert_eq!(f.blocked_ttl(), ttl);
    }
}

/// An upstream answer: question `qname`/`qtype`, then `records` as
/// (owner, type, rdata) with uncompressed names.
fn answer(qname: &str, qtype: u16, records: &[(&str, u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![
        0xab,
        0xcd,
        0x81,
        0x80,
        0,
        1,
        0,
        records.len() as u8,
        0,
        0,
        0,
        0,
    ];
    b.extend_from_slice(&text_to_name(qname).unwrap());
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&[0, 1]);
    for (owner, rtype, rdata) in records {
        b.extend_from_slice(&text_to_name(owner).unwrap());
        b.extend_from_slice(&rtype.to_be_bytes());
        b.extend_from_slice(&[0, 1, 0, 0, 1, 0]);
        b.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        b.extend_from_slice(rdata);
    }
    b
}

fn cname(target: &str) -> Vec<u8> {
    text_to_name(target).unwrap().to_vec()
}

#[test]
fn cname_chains_are_inspected_shallow_and_deep() {
    let mut s = setup(&[("trackers", "||cloak.tracker.example^\n")]);
    s.cfg.filter.allow = vec!["fine.cdn.example".parse().unwrap()];
    let f = Filter::from_config(&s.cfg).unwrap();
    let c = ip(C);
    let shallow = answer(
        "metrics.shop.example",
        TYPE_A,
        &[
            (
                "metrics.shop.example",
                TYPE_CNAME,
                cname("x.cloak.tracker.example"),
            ),
            ("x.cloak.tracker.example", TYPE_A, vec![93, 184, 216, 34]),
        ],
    );
    let r = f.check_answer(&shallow, c).unwrap();
    assert_eq!((r.kind, r.id, r.cname_depth), (KIND_LIST, 0, 1));
    assert_eq!(f.describe(r), "list 'trackers', via CNAME target #1");
    let deep = answer(
        "www.shop.example",
        TYPE_AAAA,
        &[
            ("www.shop.example", TYPE_CNAME, cname("edge.cdn.example")),
            ("edge.cdn.example", TYPE_CNAME, cname("lb.cdn.example")),
            ("lb.cdn.example", TYPE_CNAME, cname("cloak.tracker.example")),
            (
                "cloak.tracker.example",
                TYPE_AAAA,
                vec![0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            ),
        ],
    );
    let r = f.check_answer(&deep, c).unwrap();
    assert_eq!((r.kind, r.cname_depth), (KIND_LIST, 3));
    let clean = answer(
        "www.shop.example",
        TYPE_A,
        &[
            ("www.shop.example", TYPE_CNAME, cname("fine.cdn.example")),
            ("fine.cdn.example", TYPE_A, vec![93, 184, 216, 34]),
        ],
    );
    assert_eq!(f.check_answer(&clean, c), None);
    // Paused: no CNAME blocking.
    f.pause_state().set_until_ms(i64::MAX);
    assert_eq!(f.check_answer(&shallow, c), None);
}

#[test]
fn rebinding_drops_private_addresses_for_public_names() {
    let mut s = setup(&[]);
    s.cfg.filter.allow = vec!["router.example.com".parse().unwrap()];
    s.cfg.forward = vec![crate::config::ForwardZone {
        domains: vec!["corp.example".parse().unwrap()],
        upstreams: vec!["192.168.1.1:53".parse().unwrap()],
    }];
    let f = Filter::from_config(&s.cfg).unwrap();
    let c = ip(C);
    let a = |name: &str, addr: Vec<u8>| answer(name, TYPE_A, &[(name, TYPE_A, addr)]);
    let r = f
        .check_answer(&a("evil.example.com", vec![192, 168, 1, 1]), c)
        .unwrap();
    assert_eq!(r.kind, KIND_REBIND);
    assert!(f.describe(r).contains("rebinding"));
    assert_eq!(
        f.check_answer(&a("evil.example.com", vec![127, 0, 0, 1]), c)
            .map(|r| r.kind),
        Some(KIND_REBIND)
    );
    let v6 = answer(
        "evil.example.com",
        TYPE_AAAA,
        &[("evil.example.com", TYPE_AAAA, {
            let mut v = vec![0xfd, 0];
            v.extend_from_slice(&[0; 13]);
            v.push(1);
            v
        })],
    );
    assert_eq!(f.check_answer(&v6, c).map(|r| r.kind), Some(KIND_REBIND));
    assert_eq!(
        f.check_answer(&a("public.example.com", vec![93, 184, 216, 34]), c),
        None
    );
    assert_eq!(
        f.check_answer(&a("router.example.com", vec![192, 168, 1, 1]), c),
        None
    );
    assert_eq!(f.check_answer(&a("nas.lan", vec![192, 168, 1, 5]), c), None);
    assert_eq!(
        f.check_answer(&a("host.corp.example", vec![10, 0, 0, 5]), c),
        None
    );
    let mut cfg = s.cfg.clone();
    cfg.filter.rebind_protection = false;
    let f = Filter::from_config(&cfg).unwrap();
    assert_eq!(
        f.check_answer(&a("evil.example.com", vec![192, 168, 1, 1]), c),
        None
    );
}

#[test]
fn answers_that_are_errors_or_garbage_are_left_alone() {
    let s = setup(&[("l", "bad.example\n")]);
    let f = Filter::from_config(&s.cfg).unwrap();
    let c = ip(C);
    assert_eq!(f.check_answer(&[], c), None);
    assert_eq!(f.check_answer(&[0; 12], c), None);
    let mut nx = answer(
        "x.example",
        TYPE_A,
        &[("x.example", TYPE_CNAME, cname("bad.example"))],
    );
    nx[3] = 0x83;
    assert_eq!(f.check_answer(&nx, c), None);
    let mut cut = answer(
        "x.example",
        TYPE_A,
        &[("x.example", TYPE_CNAME, cname("bad.example"))],
    );
    cut.truncate(cut.len() - 3);
    assert_eq!(f.check_answer(&cut, c), None);
}

#[test]
fn explain_names_every_matching_rule_and_line() {
    let mut s = setup(&[
        ("hosts", "# header\n0.0.0.0 ads.example\n"),
        ("adblock", "! c\n||example^\n@@||ok.ads.example^\n"),
    ]);
    s.cfg.filter.deny = vec!["/^ads\\./".parse().unwrap()];
    let f = Filter::from_config(&s.cfg).unwrap();
    let e = f.explain("ads.example", ip(C));
    assert_eq!(e.decision, "blocked");
    assert_eq!(e.reason.as_deref(), Some("deny regex '/^ads\\./'"));
    let lines: Vec<(String, Option<u64>, String)> = e
        .matches
        .iter()
        .map(|m| (m.source.clone(), m.line, m.rule.clone()))
        .collect();
    assert!(
        lines.contains(&("list 'hosts'".into(), Some(2), "0.0.0.0 ads.example".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("list 'adblock'".into(), Some(2), "||example^".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("deny regex".into(), None, "/^ads\\./".into())),
        "{lines:?}"
    );
    let e = f.explain("OK.ads.example.", ip(C));
    assert_eq!(e.name, "ok.ads.example");
    assert_eq!(e.decision, "allowed");
    assert!(
        e.matches
            .iter()
            .any(|m| m.effect == "allow" && m.line == Some(3))
    );
    let json = serde_json::to_string(&e).unwrap();
    assert!(json.contains("\"decision\":\"allowed\""));
}

#[test]
fn names_with_many_labels_are_checked_at_every_suffix() {
    let s = setup(&[("l", "||deep.example^\n0.0.0.0 x.y.example\n")]);
    let f = Filter::from_config(&s.cfg).unwrap();
    let c = ip(C);
    for labels in [1, 10, 23, 24, 25, 60, 120] {
        let prefix: String = (0..labels).map(|i| format!("l{i}.")).collect();
        let name = format!("{prefix}deep.example");
        assert_eq!(f.check(&name, c), blocked(KIND_LIST, 0), "{labels} labels");
        assert_eq!(
            f.check(&format!("{prefix}x.y.example"), c),
            Verdict::Pass,
            "{labels}"
        );
    }
}

#[test]
fn odd_names_do_not_panic() {
    let s = setup(&[("l", "ads.example\n")]);
    let f = Filter::from_config(&s.cfg).unwrap();
    for name in ["", ".", "..", "a..b", "ads.example.", "-", &"x".repeat(300)] {
        assert_eq!(f.check(name, ip(C)), Verdict::Pass, "{name:?}");
    }
}

/// The walk stops early (branch filter, rule depth); a model that checks
/// every suffix as text must agree on every name: listed ones, their
/// parents, children and deep children, and strangers, over lists that mix
/// exact, subdomain and exception entries on shared parents.
#[test]
fn early_stopping_walk_agrees_with_checking_every_suffix() {
    let mut x = 0x5eed_u64;
    let mut rnd = move |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let labels = ["a", "b", "ads", "cdn", "t", "x1", "www", "m", "api"];
    let tlds = ["com", "net", "example", "co.uk"];
    let mut random_name = |max_labels: u64| {
        let mut n = tlds[rnd(tlds.len() as u64) as usize].to_string();
        for _ in 0..1 + rnd(max_labels) {
            n = format!("{}.{n}", labels[rnd(labels.len() as u64) as usize]);
        }
        n
    };
    // (name, list, subdomains, allow)
    let mut entries: Vec<(String, usize, bool, bool)> = Vec::new();
    let (mut hosts, mut domains, mut adblock) = (String::new(), String::new(), String::new());
    for i in 0..600 {
        let n = random_name(4);
        match i % 4 {
            0 => {
                hosts.push_str(&format!("0.0.0.0 {n}\n"));
                entries.push((n, 0, false, false));
            }
            1 => {
                domains.push_str(&format!("{n}\n"));
                entries.push((n, 1, true, false));
            }
            2 => {
                adblock.push_str(&format!("||{n}^\n"));
                entries.push((n, 2, true, false));
            }
            _ => {
                adblock.push_str(&format!("@@||{n}^\n"));
                entries.push((n, 2, true, true));
            }
        }
    }
    let s = setup(&[
        ("hosts", &hosts),
        ("domains", &domains),
        ("adblock", &adblock),
    ]);
    let f = Filter::from_config(&s.cfg).unwrap();
    let model = |q: &str| {
        let covers = |n: &str, sub: bool| q == n || (sub && q.ends_with(&format!(".{n}")));
        if entries
            .iter()
            .any(|(n, _, sub, allow)| *allow && covers(n, *sub))
        {
            return Verdict::Allowed;
        }
        // The deepest matching suffix decides; among its lists, the first.
        entries
            .iter()
            .filter(|(n, _, sub, allow)| !*allow && covers(n, *sub))
            .max_by_key(|(n, l, _, _)| (n.len(), std::cmp::Reverse(*l)))
            .map_or(Verdict::Pass, |(_, l, _, _)| blocked(KIND_LIST, *l as u32))
    };
    let mut queries: Vec<String> = Vec::new();
    for (n, ..) in &entries {
        queries.push(n.clone());
        queries.push(format!("q.{n}"));
        queries.push(format!("z.y.x.w.v.{n}"));
        if let Some((_, parent)) = n.split_once('.') {
            queries.push(parent.to_string());
        }
    }
    for _ in 0..3000 {
        queries.push(random_name(8));
    }
    let c = ip(C);
    for q in &queries {
        assert_eq!(f.check(q, c), model(q), "{q}");
    }
}

#[test]
fn stamps_vouch_only_for_names_nothing_touches_for_any_client() {
    let mut s = setup(&[("everyone", "ads.example\n"), ("kids", "games.example\n")]);
    s.cfg.filter.lists[1].groups = vec!["kids".into()];
    s.cfg.filter.allow = vec!["ok.ads.example".parse().unwrap()];
    s.cfg.filter.groups = vec![ClientGroup {
        name: "kids".into(),
        clients: vec!["192.168.1.50".into()],
        deny: vec![
            "video.example".parse().unwrap(),
            "/^tube\\./".parse().unwrap(),
        ],
        ..Default::default()
    }];
    let f = Filter::from_config(&s.cfg).unwrap();
    let (adult, kid) = (ip(C), ip("192.168.1.50"));
    // Nothing anywhere: Pass, and a stamp this snapshot vouches for.
    let (v, stamp) = f.check_stamped("news.example", adult);
    assert_eq!(v, Verdict::Pass);
    assert!(f.vouches_for(stamp));
    assert_eq!(f.check_stamped("news.example", kid).1, stamp);
    // Pass for this client, but listed, ruled or matched for another
    // group: no stamp, so a cached answer goes through the filter again.
    for name in ["games.example", "video.example", "tube.example"] {
        assert_eq!(f.check_stamped(name, adult), (Verdict::Pass, 0), "{name}");
        assert!(matches!(f.check(name, kid), Verdict::Blocked(_)), "{name}");
    }
    // Allowed or blocked: no stamp either.
    assert_eq!(
        f.check_stamped("ok.ads.example", adult),
        (Verdict::Allowed, 0)
    );
    assert_eq!(f.check_stamped("ads.example", adult).1, 0);
    assert!(!f.vouches_for(0));
    // Another snapshot (a list update, a config change) vouches for none
    // of this one's stamps; a neighbour-table change keeps them.
    assert!(!Filter::from_config(&s.cfg).unwrap().vouches_for(stamp));
    let map = f.policy().groups.client_map(&[]);
    assert!(f.with_clients(map).vouches_for(stamp));
    // Paused or disabled: Pass without a look at the lists, so no stamp.
    f.pause_state().set_until_ms(i64::MAX);
    assert_eq!(f.check_stamped("news.example", adult), (Verdict::Pass, 0));
    let mut cfg = s.cfg.clone();
    cfg.filter.enabled = false;
    let off = Filter::from_config(&cfg).unwrap();
    assert_eq!(off.check_stamped("news.example", adult), (Verdict::Pass, 0));
}
