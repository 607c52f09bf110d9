//! The filter service on real files: snapshot load on restart, corrupt /
//! truncated / stale / other-version snapshots rebuilt and never served,
//! config changes, pause that survives a restart, MAC groups from a fake
//! neighbour table, per-list status.

use glory_hole::config::{ClientGroup, Config, FilterList};
use glory_hole::events::Reason;
use glory_hole::filter::{FilterService, ServiceOptions, Verdict};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

struct Env {
    dir: tempfile::TempDir,
    cfg: Config,
}

impl Env {
    fn new(lists: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        for (name, text) in lists {
            let p = dir.path().join(format!("{name}.txt"));
            std::fs::write(&p, text).unwrap();
            cfg.filter.lists.push(list(name, &p));
        }
        Env { dir, cfg }
    }

    fn snapshot(&self) -> PathBuf {
        self.cfg.data_dir.join("filter/index.snap")
    }

    fn opts(&self) -> ServiceOptions {
        ServiceOptions {
            neighbour_table: self.dir.path().join("arp"),
            neighbour_refresh: Duration::from_secs(3600),
        }
    }

    fn start(&self) -> std::sync::Arc<FilterService> {
        FilterService::start_with(&self.cfg, self.opts()).unwrap()
    }
}

fn list(name: &str, path: &Path) -> FilterList {
    FilterList {
        name: name.into(),
        path: Some(path.to_path_buf()),
        url: None,
        enabled: true,
        match_mode: None,
        groups: vec![],
    }
}

fn client() -> IpAddr {
    "192.168.1.10".parse().unwrap()
}

fn verdict(svc: &FilterService, name: &str) -> Verdict {
    svc.current().load().check(name, client())
}

fn list_block(id: u32) -> Verdict {
    Verdict::Blocked(Reason {
        kind: 1,
        id,
        cname_depth: 0,
    })
}

#[test]
fn first_start_builds_and_restart_loads_the_snapshot() {
    let env = Env::new(&[("a", "ads.example\n"), ("b", "0.0.0.0 t.example\n")]);
    let svc = env.start();
    assert!(svc.wait_ready(WAIT));
    assert_eq!(verdict(&svc, "x.ads.example"), list_block(0));
    assert_eq!(verdict(&svc, "t.example"), list_block(1));
    assert!(env.snapshot().exists());
    drop(svc);

    // The restart serves from the snapshot before returning.
    let svc = env.start();
    assert!(svc.wait_ready(Duration::ZERO));
    assert_eq!(verdict(&svc, "x.ads.example"), list_block(0));
    let st = svc.lists();
    assert_eq!(st.len(), 2);
    assert_eq!(
        (st[0].name.as_str(), st[0].domains, st[0].rules),
        ("a", 1, 1)
    );
    assert_eq!(st[1].format, glory_hole::filter::parse::Format::Hosts);
}

fn assert_rebuilt_not_served(env: &Env, why: &str, damage: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(env.snapshot()).unwrap();
    damage(&mut bytes);
    std::fs::write(env.snapshot(), &bytes).unwrap();
    let svc = env.start();
    let rejected = svc
        .snapshot_rejected()
        .expect("a damaged snapshot must not be served");
    assert!(rejected.contains(why), "{rejected}");
    assert!(svc.wait_ready(WAIT));
    assert_eq!(verdict(&svc, "x.ads.example"), list_block(0));
    drop(svc);
    // And the rebuilt snapshot is good again.
    let svc = env.start();
    assert_eq!(svc.snapshot_rejected(), None);
    assert!(svc.wait_ready(Duration::ZERO));
}

#[test]
fn damaged_snapshots_are_rebuilt() {
    let env = Env::new(&[("a", "ads.example\nmore.example\n")]);
    let svc = env.start();
    assert!(svc.wait_ready(WAIT));
    drop(svc);
    // A flipped byte in the table, then in the header.
    assert_rebuilt_not_served(&env, "corrupt", |b| {
        let n = b.len();
        b[n - 3] ^= 0x40;
    });
    assert_rebuilt_not_served(&env, "header checksum", |b| b[14] ^= 0x01);
    // Truncated, and with trailing junk.
    assert_rebuilt_not_served(&env, "bytes", |b| b.truncate(b.len() - 5));
    assert_rebuilt_not_served(&env, "bytes", |b| b.extend_from_slice(b"junk"));
    assert_rebuilt_not_served(&env, "corrupt", |b| b.truncate(6));
    // Another format version with a valid header checksum.
    assert_rebuilt_not_served(&env, "format version 99", |b| {
        let len = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
        assert_eq!(b[12], glory_hole::filter::snapshot::FORMAT_VERSION as u8);
        b[12] = 99;
        let crc = crc32fast::hash(&b[12..12 + len]);
        b[12 + len..16 + len].copy_from_slice(&crc.to_le_bytes());
    });
}

#[test]
fn edited_lists_make_the_snapshot_stale() {
    let env = Env::new(&[("a", "ads.example\n")]);
    let svc = env.start();
    assert!(svc.wait_ready(WAIT));
    drop(svc);
    let path = env.cfg.filter.lists[0].path.clone().unwrap();
    std::fs::write(&path, "ads.example\nnew.example\n").unwrap();
    let svc = env.start();
    assert!(
        svc.snapshot_rejected()
            .unwrap()
            .contains("list 'a' changed")
    );
    assert!(svc.wait_ready(WAIT));
    assert_eq!(verdict(&svc, "new.example"), list_block(0));
    drop(svc);
    // A config naming other lists is stale too.
    let mut env2 = env;
    env2.cfg.filter.lists[0].match_mode = Some(glory_hole::config::MatchMode::Exact);
    let svc = env2.start();
    assert!(svc.snapshot_rejected().unwrap().contains("stale"));
    assert!(svc.wait_ready(WAIT));
    assert_eq!(verdict(&svc, "sub.new.example"), Verdict::Pass);
}

#[test]
fn config_changes_swap_rules_at_once_and_lists_after_a_rebuild() {
    let mut env = Env::new(&[("a", "ads.example\n")]);
    let svc = env.start();
    assert!(svc.wait_ready(WAIT));
    let handle = svc.current();
    env.cfg.filter.deny = vec!["*.tracker.example".parse().unwrap()];
    svc.apply_config(&env.cfg).unwrap();
    assert!(
        matches!(handle.load().check("p.tracker.example", client()), Verdict::Blocked(r) if r.kind == 2)
    );
    // A bad group is refused and changes nothing (a bad rule cannot be
    // built: the config loader refuses it, see tests/filter_config.rs).
    let mut bad = env.cfg.clone();
    bad.filter.groups.push(glory_hole::config::ClientGroup {
        name: "kids".into(),
        clients: vec!["not-a-client".into()],
        ..Default::default()
    });
    let e = svc.apply_config(&bad).unwrap_err().to_string();
    assert!(
        e.contains("filter.groups 'kids'") && e.contains("'not-a-client'"),
        "{e}"
    );
    assert!(matches!(
        handle.load().check("p.tracker.example", client()),
        Verdict::Blocked(_)
    ));
    // A new list: the old index answers until the new one is swapped in.
    let p = env.dir.path().join("b.txt");
    std::fs::write(&p, "||more.example^\n").unwrap();
    env.cfg.filter.lists.push(list("b", &p));
    svc.apply_config(&env.cfg).unwrap();
    assert!(svc.wait_idle(WAIT));
    assert_eq!(
        handle.load().check("x.more.example", client()),
        list_block(1)
    );
    assert_eq!(handle.load().check("ads.example", client()), list_block(0));
    // A missing list is reported, not fatal.
    env.cfg
        .filter
        .lists
        .push(list("gone", &env.dir.path().join("nope.txt")));
    svc.apply_config(&env.cfg).unwrap();
    assert!(svc.wait_idle(WAIT));
    let gone = svc.lists().into_iter().find(|l| l.name == "gone").unwrap();
    assert!(gone.last_error.unwrap().contains("nope.txt"));
    assert_eq!(
        handle.load().check("x.more.example", client()),
        list_block(1)
    );
}

#[test]
fn pause_survives_a_restart_and_resume_ends_it() {
    let env = Env::new(&[("a", "ads.example\n")]);
    let svc = env.start();
    assert!(svc.wait_ready(WAIT));
    svc.pause(None);
    assert!(svc.pause_status().paused);
    assert_eq!(svc.pause_status().until_ms, None);
    assert_eq!(verdict(&svc, "ads.example"), Verdict::Pass);
    drop(svc);
    let svc = env.start();
    assert!(svc.pause_status().paused);
    assert_eq!(verdict(&svc, "ads.example"), Verdict::Pass);
    svc.resume();
    assert!(!svc.pause_status().paused);
    assert_eq!(verdict(&svc, "ads.example"), list_block(0));
    svc.pause(Some(5));
    let st = svc.pause_status();
    let left = st.until_ms.unwrap() - glory_hole::events::now_ms();
    assert!(
        st.paused && left > 4 * 60_000 && left <= 5 * 60_000,
        "{st:?}"
    );
    drop(svc);
    let svc = env.start();
    assert_eq!(svc.pause_status(), st);
    svc.resume();
    drop(svc);
    let svc = env.start();
    assert!(!svc.pause_status().paused);
}

#[test]
fn mac_groups_follow_the_neighbour_table() {
    let mut env = Env::new(&[("kids", "games.example\n")]);
    env.cfg.filter.lists[0].groups = vec!["kids".into()];
    env.cfg.filter.groups = vec![ClientGroup {
        name: "kids".into(),
        clients: vec!["02:11:22:33:44:55".into()],
        ..Default::default()
    }];
    let arp = env.dir.path().join("arp");
    let table = |ip: &str| {
        format!(
            "IP address       HW type     Flags       HW address            Mask     Device\n\
             {ip}     0x1         0x2         02:11:22:33:44:55     *        eth0\n"
        )
    };
    std::fs::write(&arp, table("192.168.1.50")).unwrap();
    let svc = env.start();
    assert!(svc.wait_ready(WAIT));
    let check = |ip: &str| {
        svc.current()
            .load()
            .check("games.example", ip.parse().unwrap())
    };
    assert_eq!(check("192.168.1.50"), list_block(0));
    assert_eq!(check("192.168.1.51"), Verdict::Pass);
    // The device moved to another address.
    std::fs::write(&arp, table("192.168.1.51")).unwrap();
    svc.refresh_neighbours();
    assert_eq!(check("192.168.1.50"), Verdict::Pass);
    assert_eq!(check("192.168.1.51"), list_block(0));
}
