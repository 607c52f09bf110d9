//! The DHCP server against real DHCP clients from Debian, over a veth
//! pair between two network namespaces (`support::segment`): busybox's
//! `udhcpc` gets a lease with the box as its DNS server and renews it, a
//! static lease goes to its MAC, a second DHCP server on the segment keeps
//! ours from starting, leases survive a restart, and a lease's name
//! answers over DNS (A and PTR) and names its device in the query log.

mod support;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};
use support::segment::{BOX, Segment, Server};
use support::web::{Client, PASSWORD};

const SERVING: &str = "dhcp: serving on gh0";

fn config(dir: &Path) -> String {
    format!(
        r#"data_dir = {:?}
[dns]
listen = ["127.0.0.1:1053"]
upstreams = ["127.0.0.1:9"]
[web]
enabled = false
[dhcp]
enabled = true
interface = "gh0"
range = ["192.168.7.100", "192.168.7.120"]
netmask = "255.255.255.0"
gateway = "192.168.7.1"
lease_time = "1h"
domain = "lan"
[[dhcp.static]]
mac = "02:00:00:00:00:09"
ip = "192.168.7.20"
name = "tv"
"#,
        dir.join("data")
    )
}

/// A segment and a serving glory-hole, or None where veth is refused.
fn serving(dir: &Path) -> Option<(Segment, Server)> {
    serving_with(dir, "")
}

/// [`serving`] with `extra` TOML after the config.
fn serving_with(dir: &Path, extra: &str) -> Option<(Segment, Server)> {
    let seg = Segment::new(dir)?;
    let mut server = seg.start_server(&(config(dir) + extra));
    server.wait_for_log(SERVING, 1);
    Some((seg, server))
}

/// The udhcpc script: each event and what the lease says, one line, into
/// `events`; the address put on the interface (renewing needs it).
fn script(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("udhcpc.sh");
    let text = format!(
        "#!/bin/sh\necho \"$1 ip=$ip subnet=$subnet router=$router dns=$dns domain=$domain \
         lease=$lease\" >> {events}\ncase \"$1\" in bound|renew) ip addr flush dev \"$interface\"; \
         ip addr add \"$ip/$subnet\" dev \"$interface\";; esac\n",
        events = dir.join("events").display()
    );
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

/// `busybox udhcpc` on gh1 with `args`, running.
fn udhcpc(seg: &Segment, dir: &Path, args: &[&str]) -> Child {
    seg.udhcpc()
        .args(["-f", "-s"])
        .arg(script(dir))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("busybox is installed (.ci/setup)")
}

/// The `nth` (1-based) script line starting with `event`, waited for.
fn event(dir: &Path, event: &str, nth: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(dir.join("events")).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{event} ")))
            .collect();
        if lines.len() >= nth {
            return lines[nth - 1].to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no {event} #{nth} from udhcpc in 30 s; events:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A lease taken with `udhcpc -q` (quits once bound): the script's line.
fn lease_once(seg: &Segment, dir: &Path, nth: usize) -> String {
    let mut c = Killed(udhcpc(seg, dir, &["-q", "-n"]));
    let line = event(dir, "bound", nth);
    let _ = c.0.wait();
    line
}

/// `dig +short` inside the box for `name` and `qtype`.
fn dig(seg: &Segment, name: &str, qtype: &str) -> String {
    let out = seg
        .in_box("dig")
        .args([
            "@127.0.0.1",
            "-p",
            "1053",
            "+short",
            "+tries=3",
            "+time=2",
            name,
            qtype,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "dig {name} {qtype}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn udhcpc_gets_a_lease_with_the_box_as_dns_renews_it_and_its_name_answers() {
    let dir = tmp();
    let Some((seg, server)) = serving(dir.path()) else {
        return;
    };
    seg.set_mac("02:00:00:00:00:01");
    let client = Killed(udhcpc(&seg, dir.path(), &["-x", "hostname:Kitchen-Radio"]));
    let bound = event(dir.path(), "bound", 1);
    assert_eq!(
        bound,
        format!(
            "bound ip=192.168.7.100 subnet=255.255.255.0 router=192.168.7.1 dns={BOX} \
             domain=lan lease=3600"
        ),
        "{}",
        server.log()
    );
    // SIGUSR1: renew now (a unicast REQUEST from the leased address).
    // SAFETY: kill(2) on the client this test started.
    unsafe { libc::kill(client.0.id() as i32, libc::SIGUSR1) };
    let renew = event(dir.path(), "renew", 1);
    assert!(renew.starts_with("renew ip=192.168.7.100 "), "{renew}");
    assert!(renew.contains(&format!("dns={BOX} ")), "{renew}");
    drop(client);

    assert_eq!(dig(&seg, "kitchen-radio.lan", "A"), "192.168.7.100");
    assert_eq!(
        dig(&seg, "100.7.168.192.in-addr.arpa", "PTR"),
        "kitchen-radio.lan."
    );
    // The static lease's name answers before its device has come.
    assert_eq!(dig(&seg, "tv.lan", "A"), "192.168.7.20");
    assert_eq!(dig(&seg, "kitchen-radio.lan", "AAAA"), "");
    assert_eq!(dig(&seg, "nobody.lan", "A"), "");
}

#[test]
fn a_static_lease_goes_to_its_mac() {
    let dir = tmp();
    // The user's own record for the name wins over the lease's.
    let record = "[[local.records]]\nname = \"tv.lan\"\ntype = \"A\"\nvalue = \"192.168.7.99\"\n";
    let Some((seg, server)) = serving_with(dir.path(), record) else {
        return;
    };
    seg.set_mac("02:00:00:00:00:09");
    let bound = lease_once(&seg, dir.path(), 1);
    assert!(
        bound.starts_with("bound ip=192.168.7.20 "),
        "{bound}\n{}",
        server.log()
    );
    assert!(bound.contains(&format!("dns={BOX} ")), "{bound}");
    assert_eq!(dig(&seg, "20.7.168.192.in-addr.arpa", "PTR"), "tv.lan.");
    assert_eq!(dig(&seg, "tv.lan", "A"), "192.168.7.99");
}

#[test]
fn leases_survive_a_restart() {
    let dir = tmp();
    let Some((seg, server)) = serving(dir.path()) else {
        return;
    };
    seg.set_mac("02:00:00:00:00:01");
    assert!(lease_once(&seg, dir.path(), 1).starts_with("bound ip=192.168.7.100 "));
    seg.set_mac("02:00:00:00:00:02");
    let second = lease_once(&seg, dir.path(), 2);
    assert!(second.starts_with("bound ip=192.168.7.101 "), "{second}");
    server.stop();
    let saved = std::fs::read_to_string(dir.path().join("data/dhcp-leases.json")).unwrap();
    assert!(saved.contains("02:00:00:00:00:02"), "{saved}");

    // The second client comes back first: a server that forgot would give
    // it the first free address, .100.
    let mut server = seg.start_server(&config(dir.path()));
    server.wait_for_log(SERVING, 2);
    seg.set_mac("02:00:00:00:00:02");
    let again = lease_once(&seg, dir.path(), 3);
    assert!(
        again.starts_with("bound ip=192.168.7.101 "),
        "{again}\n{}",
        server.log()
    );
}

#[test]
fn a_second_dhcp_server_on_the_segment_stops_ours() {
    let dir = tmp();
    let Some(seg) = Segment::new(dir.path()) else {
        return;
    };
    seg.lan_sh("ip addr add 192.168.7.3/24 dev gh1");
    let dnsmasq_log = dir.path().join("dnsmasq.log");
    let dnsmasq = seg
        .on_lan("dnsmasq")
        .args([
            "--no-daemon",
            "--port=0",
            "--interface=gh1",
            "--bind-interfaces",
            "--dhcp-range=192.168.7.150,192.168.7.160,1h",
            "--no-resolv",
            "--no-hosts",
            "--user=root",
            "--log-facility=-",
            "--log-dhcp",
        ])
        .arg(format!(
            "--pid-file={}",
            dir.path().join("dnsmasq.pid").display()
        ))
        .arg(format!(
            "--dhcp-leasefile={}",
            dir.path().join("dnsmasq.leases").display()
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&dnsmasq_log).unwrap())
        .spawn()
        .expect("dnsmasq is installed (.ci/setup)");
    let mut dnsmasq = Killed(dnsmasq);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&dnsmasq_log)
        .unwrap_or_default()
        .contains("DHCP, IP range")
    {
        assert!(
            dnsmasq.0.try_wait().unwrap().is_none(),
            "dnsmasq ended: {}",
            std::fs::read_to_string(&dnsmasq_log).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "dnsmasq did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut server = seg.start_server(&config(dir.path()));
    server.wait_for_log("dhcp: not serving:", 1);
    let log = server.log();
    assert!(
        log.contains(
            "another DHCP server (192.168.7.3) answers on gh0; two DHCP servers on one network"
        ),
        "{log}"
    );
    assert!(!log.contains(SERVING), "{log}");
    // Nothing listens on the DHCP port; DNS still answers.
    let ss = seg.in_box("ss").args(["-lun"]).output().unwrap();
    let ss = String::from_utf8_lossy(&ss.stdout).to_string();
    assert!(!ss.contains(":67 "), "{ss}");
    assert!(ss.contains("127.0.0.1:1053"), "{ss}");
}

#[test]
fn dhcpcd_is_offered_the_network_with_the_box_as_dns() {
    let dir = tmp();
    let Some((seg, server)) = serving(dir.path()) else {
        return;
    };
    seg.set_mac("02:00:00:00:00:03");
    // --test: print the offer's variables, touch nothing. dhcpcd then
    // fails to drop privileges inside the user namespace and ends badly
    // (its exit status says nothing about the offer, its output does),
    // leaving helpers behind: a PID namespace of its own ends them all.
    let out_file = dir.path().join("dhcpcd.out");
    let out = std::fs::File::create(&out_file).unwrap();
    let _ = seg
        .on_lan("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "timeout",
            "-s",
            "KILL",
            "30",
        ])
        .args([
            "dhcpcd",
            "--test",
            "-B",
            "-4",
            "-1",
            "-t",
            "20",
            "-f",
            "/dev/null",
            "gh1",
        ])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .expect("dhcpcd is installed (.ci/setup)");
    let text = std::fs::read_to_string(&out_file).unwrap();
    for want in [
        "reason='TEST'".to_string(),
        "new_ip_address='192.168.7.100'".into(),
        format!("new_domain_name_servers='{BOX}'"),
        format!("new_dhcp_server_identifier='{BOX}'"),
        "new_routers='192.168.7.1'".into(),
        "new_domain_name='lan'".into(),
        "new_subnet_mask='255.255.255.0'".into(),
        "new_dhcp_lease_time='3600'".into(),
    ] {
        assert!(
            text.contains(&want),
            "{want} missing:\n{text}\n{}",
            server.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_name_names_its_device_in_the_query_log() {
    let dir = tmp();
    let config = config(dir.path())
        .replace(
            r#"listen = ["127.0.0.1:1053"]"#,
            r#"listen = ["0.0.0.0:1053"]"#,
        )
        .replace(
            "[web]\nenabled = false",
            "[web]\nlisten = [\"127.0.0.1:8080\"]",
        )
        + "[querylog]\nflush_interval = \"1s\"\n";
    let Some(seg) = Segment::new(dir.path()) else {
        return;
    };
    let mut server = seg.start_server(&config);
    server.wait_for_log(SERVING, 1);
    seg.set_mac("02:00:00:00:00:01");
    let mut client = Killed(udhcpc(
        &seg,
        dir.path(),
        &["-q", "-n", "-x", "hostname:Kitchen-Radio"],
    ));
    let bound = event(dir.path(), "bound", 1);
    let _ = client.0.wait();
    assert!(bound.starts_with("bound ip=192.168.7.100 "), "{bound}");
    // The device asks the box for a name, from its leased address.
    let out = seg
        .on_lan("dig")
        .args([
            "@192.168.7.2",
            "-p",
            "1053",
            "+short",
            "+tries=3",
            "+time=2",
        ])
        .args(["tv.lan", "A"])
        .output()
        .unwrap();
    assert!(out.status.success(), "dig from the LAN: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "192.168.7.20");
    // The owner's first-boot setup over the web API, reached inside the
    // box's namespace through the relay, then the log's rows for the device.
    let base = format!("http://{}", support::relay::to_box(&seg, 8080).await);
    let mut web = Client::new(&base);
    assert_eq!(web.setup(PASSWORD).await.status, 200, "{}", server.log());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = web
            .get("/api/v1/querylog?client=192.168.7.100&limit=5")
            .await
            .json();
        let rows = page["rows"].as_array().cloned().unwrap_or_default();
        if let Some(row) = rows.first() {
            assert_eq!(row["domain"], "tv.lan", "{page}");
            assert_eq!(row["client_name"], "kitchen-radio.lan", "{page}");
            assert_eq!(row["client_name_source"], "dhcp", "{page}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no logged query from 192.168.7.100 in 30 s: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
