//! The System page's actions over real HTTP: version and assets, backup and
//! restore, Pi-hole Teleporter import, appliance-only actions (reboot,
//! factory reset, network); firmware updates are in web_firmware.rs.

mod support;

use glory_hole::config::Config;
use glory_hole::web::Backend;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering;
use support::web::*;

#[tokio::test]
async fn system_and_assets() {
    let (_b, mut c) = ready(|_| {}).await;
    let s = c.get("/api/v1/system").await.json();
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["system"]["process_rss_bytes"].as_u64().unwrap() > 0);
    let assets = s["assets_compressed_bytes"].as_u64().unwrap();
    assert!(
        assets <= 150 * 1024,
        "assets are {assets} bytes compressed, budget 150 KiB"
    );
    c.extra = vec![("accept-encoding".into(), "gzip".into())];
    let r = c.get("/assets/app.js").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), "gzip");
    let etag = r.header("etag").to_string();
    c.extra = vec![("if-none-match".into(), etag)];
    assert_eq!(c.get("/assets/app.js").await.status, 304);
    c.extra.clear();
    let r = c.get("/assets/app.css").await;
    assert!(r.header("content-type").starts_with("text/css"));
    assert!(r.body.contains("--bg"));
    assert_eq!(c.get("/assets/missing.js").await.status, 404);
}

/// The SD card died: the backup made before brings back the whole
/// configuration and lets the same password and API tokens in again.
#[tokio::test]
async fn backup_restores_config_password_and_tokens_after_a_factory_reset() {
    let (b, mut c) = ready(|cfg| cfg.web.appliance = true).await;
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "deny", "entry": "before.example"}),
    )
    .await;
    let t = c
        .send("POST", "/api/v1/tokens", json!({"name": "home assistant"}))
        .await;
    assert_eq!(t.status, 201, "{}", t.body);
    let token = t.json()["token"].as_str().unwrap().to_string();
    let backup = c.get("/api/v1/backup").await;
    assert_eq!(backup.status, 200);
    assert!(backup.header("content-disposition").contains("attachment"));
    let secret = token.rsplit('_').next().unwrap();
    assert!(
        !backup.body.contains(PASSWORD) && !backup.body.contains(secret),
        "hashes only: {}",
        backup.body
    );
    assert!(backup.body.contains("$argon2id$"), "{}", backup.body);
    let before = saved(&b);

    let r = c
        .send("POST", "/api/v1/system/factory-reset", json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(saved(&b).filter.deny.is_empty());
    // A fresh box: set up with another password, then restore.
    let mut fresh = Client::new(&b.base());
    assert_eq!(fresh.setup("a temporary password").await.status, 200);
    let r = fresh
        .raw(
            "POST",
            "/api/v1/restore",
            "application/octet-stream",
            backup.body.clone().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("1 API token")
    );
    // The one who restored stays logged in.
    fresh.csrf = Some(r.json()["csrf"].as_str().unwrap().to_string());
    assert_eq!(fresh.get("/api/v1/settings").await.status, 200);
    assert_eq!(
        fresh
            .send(
                "POST",
                "/api/v1/rules",
                json!({"list": "allow", "entry": "x.example"})
            )
            .await
            .status,
        200
    );
    fresh
        .send(
            "DELETE",
            "/api/v1/rules",
            json!({"list": "allow", "entry": "x.example"}),
        )
        .await;
    assert_eq!(saved(&b), before);

    let mut old = Client::new(&b.base());
    assert_eq!(
        old.login(PASSWORD).await.status,
        200,
        "the old password works"
    );
    let mut temp = Client::new(&b.base());
    assert_eq!(temp.login("a temporary password").await.status, 401);
    let mut script = Client::new(&b.base());
    script.bearer = Some(token);
    assert_eq!(
        script.get("/api/v1/stats").await.status,
        200,
        "the old token works"
    );
    assert_eq!(
        old.get("/api/v1/tokens").await.json()[0]["name"],
        "home assistant"
    );

    // Or straight from first boot, without a temporary password.
    old.send("POST", "/api/v1/system/factory-reset", json!({}))
        .await;
    let mut boot = Client::new(&b.base());
    let pre = boot.get("/api/v1/setup").await.json();
    assert_eq!(pre["needed"], true, "{pre}");
    let r = boot
        .raw(
            "POST",
            "/api/v1/setup/restore",
            "application/octet-stream",
            Config::default().to_toml().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 403, "no double-submit token: {}", r.body);
    boot.csrf = Some(pre["csrf"].as_str().unwrap().to_string());
    let r = boot
        .raw(
            "POST",
            "/api/v1/setup/restore",
            "application/octet-stream",
            Config::default().to_toml().into_bytes(),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("file")),
        "a file without a password would leave the box open: {}",
        r.body
    );
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("no admin password")
    );
    let r = boot
        .raw(
            "POST",
            "/api/v1/setup/restore",
            "application/octet-stream",
            backup.body.clone().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !boot.cookies.contains_key("gh_session"),
        "no session without the password"
    );
    assert_eq!(boot.get("/api/v1/settings").await.status, 401);
    assert_eq!(saved(&b), before);
    let mut old = Client::new(&b.base());
    assert_eq!(old.login(PASSWORD).await.status, 200);
    assert_eq!(script.get("/api/v1/stats").await.status, 200);
    // Once set up, the first-boot restore is closed.
    let r = boot
        .raw(
            "POST",
            "/api/v1/setup/restore",
            "application/octet-stream",
            backup.body.into_bytes(),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
}

/// A bad, cut-short or changed upload is refused at the file field and
/// changes nothing: not the config, not the password.
#[tokio::test]
async fn bad_or_truncated_restores_change_nothing() {
    let (b, mut c) = ready(|_| {}).await;
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "deny", "entry": "before.example"}),
    )
    .await;
    let backup = c.get("/api/v1/backup").await.body;
    c.send(
        "POST",
        "/api/v1/rules",
        json!({"list": "deny", "entry": "after.example"}),
    )
    .await;
    let before = saved(&b);
    let auth_before = std::fs::read(b.dir.path().join("web-auth.json")).unwrap();
    let half = &backup.as_bytes()[..backup.len() / 2];
    let last_line = backup.trim_end().rfind('\n').unwrap();
    let no_checksum = &backup.as_bytes()[..last_line + 1];
    let changed = backup.replacen("before.example", "bef0re.example", 1);
    let bad_hash = {
        let at = backup.find("password = ").unwrap();
        let mut t = backup.clone();
        t.replace_range(at..at + 20, "password = \"plain te");
        t
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad upstream", b"[dns]\nupstreams = [\"nonsense\"]\n".to_vec(), "line 2"),
        ("not toml", b"not toml at all [".to_vec(), "line 1"),
        ("binary", vec![0xff, 0xfe, 0x00], "not a text"),
        ("half", half.to_vec(), ""),
        ("no checksum line", no_checksum.to_vec(), "checksum"),
        ("changed", changed.into_bytes(), "checksum"),
        ("cut before [backup]", backup.as_bytes()[..backup.find("[backup]").unwrap()].to_vec(), "cut short"),
        ("bad hash", bad_hash.into_bytes(), ""),
        ("group rule", b"[filter]\n[[filter.groups]]\nname = \"kids\"\nclients = []\ndeny = [\"not a name\"]\n".to_vec(), "not a name"),
    ];
    for (what, body, says) in cases {
        let r = c
            .raw("POST", "/api/v1/restore", "application/octet-stream", body)
            .await;
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (422, Some("file")),
            "{what}: {}",
            r.body
        );
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            e.starts_with("uploaded file: ") && e.contains(says),
            "{what}: {e}"
        );
        assert_eq!(saved(&b), before, "{what}");
        assert_eq!(
            std::fs::read(b.dir.path().join("web-auth.json")).unwrap(),
            auth_before,
            "{what}"
        );
    }
    // A plain config file (no [backup]) restores the config alone.
    let r = c
        .raw(
            "POST",
            "/api/v1/restore",
            "application/octet-stream",
            Config::default().to_toml().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(saved(&b).filter.deny.is_empty());
    assert_eq!(
        c.get("/api/v1/settings").await.status,
        200,
        "still logged in"
    );
    // Restoring needs login and the CSRF token.
    let mut anon = Client::new(&b.base());
    let r = anon
        .raw(
            "POST",
            "/api/v1/restore",
            "application/octet-stream",
            backup.clone().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 401);
    c.csrf = None;
    let r = c
        .raw(
            "POST",
            "/api/v1/restore",
            "application/octet-stream",
            backup.into_bytes(),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn pihole_teleporter_import() {
    use glory_hole::web::teleporter::build;
    let (b, mut c) = ready(|_| {}).await;
    let v5 = build::tar_gz(&[
        (
            "adlist.json",
            br#"[{"address":"https://pihole.example/list.txt","enabled":1}]"#,
        ),
        (
            "blacklist.exact.json",
            br#"[{"domain":"imported-deny.example","enabled":1}]"#,
        ),
        (
            "whitelist.regex.json",
            br#"[{"domain":"^ok[0-9]\\.example$","enabled":1}]"#,
        ),
        ("custom.list", b"192.168.1.30 printer.lan\n"),
        ("setupVars.conf", b"PIHOLE_DNS_1=192.168.1.1\n"),
    ]);
    let r = c
        .raw(
            "POST",
            "/api/v1/import/teleporter",
            "application/octet-stream",
            v5,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("1 lists"));
    let cfg = saved(&b);
    assert!(
        cfg.filter
            .lists
            .iter()
            .any(|l| l.url.as_deref() == Some("https://pihole.example/list.txt"))
    );
    assert!(
        cfg.filter
            .deny
            .contains(&"imported-deny.example".parse().unwrap())
    );
    assert!(
        cfg.filter
            .allow
            .contains(&"/^ok[0-9]\\.example$/".parse().unwrap())
    );
    assert_eq!(cfg.local.records[0].name.0, "printer.lan");
    assert_eq!(cfg.dns.upstreams[0].to_string(), "192.168.1.1:53");

    let v6 = build::zip(&[(
        "etc/pihole/pihole.toml",
        b"[dns]\nupstreams = [\"9.9.9.9\"]\ncnameRecords = [\"scan.lan,printer.lan\"]\n",
    )]);
    let r = c
        .raw(
            "POST",
            "/api/v1/import/teleporter",
            "application/octet-stream",
            v6,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(saved(&b).dns.upstreams[0].to_string(), "9.9.9.9:53");
    let r = c
        .raw(
            "POST",
            "/api/v1/import/teleporter",
            "application/octet-stream",
            b"garbage".to_vec(),
        )
        .await;
    assert_eq!((r.status, r.json()["field"].as_str()), (422, Some("file")));
}

#[tokio::test]
async fn appliance_only_actions() {
    let (_b, mut c) = ready(|_| {}).await;
    for (m, p) in [
        ("GET", "/api/v1/network"),
        ("POST", "/api/v1/system/reboot"),
        ("POST", "/api/v1/system/factory-reset"),
    ] {
        let r = c.send(m, p, json!({})).await;
        assert_eq!(r.status, 404, "{p} on a non-appliance: {}", r.body);
    }
    assert!(!c.get("/system").await.body.contains("Factory reset"));

    let (b, mut c) = ready(|cfg| cfg.web.appliance = true).await;
    let r = c
        .send(
            "PUT",
            "/api/v1/network",
            json!({"mode": "dhcp", "timezone": "America/New_York"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c
        .send(
            "PUT",
            "/api/v1/network",
            json!({"mode": "static", "address": "192.168.1.300/24", "gateway": "192.168.1.1"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("address"))
    );
    assert_eq!(
        c.get("/api/v1/network").await.json()["timezone"],
        "America/New_York"
    );
    assert!(c.get("/system").await.body.contains("Factory reset"));
    assert_eq!(
        c.send("POST", "/api/v1/system/reboot", json!({}))
            .await
            .status,
        200
    );
    assert_eq!(b.backend.reboots.load(Ordering::SeqCst), 1);
    assert_eq!(
        c.send("POST", "/api/v1/system/factory-reset", json!({}))
            .await
            .status,
        200
    );
    assert_eq!(b.backend.resets.load(Ordering::SeqCst), 1);
    assert_eq!(
        b.backend.reboots.load(Ordering::SeqCst),
        2,
        "no reboot after the reset"
    );
    assert!(
        saved(&b).web.appliance,
        "the reset forgot this is an appliance"
    );
    assert!(!b.dir.path().join("web-auth.json").exists());
    assert_eq!(
        c.get("/api/v1/settings").await.status,
        401,
        "the session survived a reset"
    );
    assert_eq!(c.get("/health").await.json()["setup_needed"], true);
}

/// The running server as the backend, with reboot counted instead of run:
/// everything else, factory reset included, is the product's own.
struct NoReboot {
    app: Arc<glory_hole::app::App>,
    reboots: AtomicU32,
}

impl Backend for NoReboot {
    fn config(&self) -> Arc<Config> {
        self.app.config()
    }
    fn edit(
        &self,
        change: &mut dyn FnMut(&mut Config) -> Result<(), String>,
    ) -> Result<(), String> {
        Backend::edit(&*self.app, change)
    }
    fn data_dir(&self) -> PathBuf {
        self.app.data_dir()
    }
    fn reboot(&self) -> Result<(), String> {
        self.reboots.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn factory_reset(&self) -> Result<(), String> {
        Backend::factory_reset(&*self.app)
    }
}

/// Factory reset on the real server (`App`, real files in a temp dir), as
/// docs/web.md and `App::factory_reset` describe it: the config returns to
/// the embedded defaults except what keeps the box reachable (data
/// directory, DNS and web listen addresses, appliance flag), network.conf
/// and the admin password are gone, every session ends, and the box asks
/// to reboot into setup.
#[tokio::test]
async fn factory_reset_on_the_real_server_returns_to_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = app_config(dir.path(), Some("127.0.0.1:9"));
    config.web.appliance = true;
    config.web.listen = vec!["127.0.0.1:0".parse().unwrap()];
    let file = dir.path().join("config.toml");
    let app = glory_hole::app::App::start(config, file.clone())
        .await
        .unwrap();
    let backend = Arc::new(NoReboot {
        app: app.clone(),
        reboots: AtomicU32::new(0),
    });
    let addrs = glory_hole::web::serve(backend.clone(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let mut c = Client::new(&format!("http://{}", addrs[0]));
    assert_eq!(c.setup(PASSWORD).await.status, 200);
    let network = json!({"mode": "static", "address": "192.168.1.2/24",
        "gateway": "192.168.1.1", "timezone": "Europe/Berlin"});
    assert_eq!(c.send("PUT", "/api/v1/network", network).await.status, 200);
    let r = c
        .send(
            "POST",
            "/api/v1/rules",
            json!({"list": "deny", "entry": "ads.example"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c
        .send(
            "POST",
            "/api/v1/local/records",
            json!({"name": "nas.lan", "type": "A", "value": "192.168.1.9"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let before = Config::load(&file).unwrap();
    assert_eq!(before.filter.deny, vec!["ads.example".to_string()]);
    assert_eq!(before.local.records.len(), 1);
    assert!(dir.path().join("network.conf").exists());
    assert!(dir.path().join("web-auth.json").exists());

    let r = c
        .send("POST", "/api/v1/system/factory-reset", json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // The embedded defaults, with only the reachability settings kept.
    let mut expected = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    expected.dns.listen = before.dns.listen.clone();
    expected.web.listen = before.web.listen.clone();
    expected.web.appliance = true;
    let on_disk = Config::load(&file).unwrap();
    assert_eq!(on_disk.to_toml(), expected.to_toml());
    assert_eq!(app.config().to_toml(), expected.to_toml());
    assert!(on_disk.filter.deny.is_empty() && on_disk.local.records.is_empty());
    assert!(
        on_disk.filter.lists.is_empty(),
        "setup's blocklist survived"
    );
    assert_ne!(on_disk.dns.upstreams, before.dns.upstreams);
    // What reset removes: network.conf (DHCP at next boot) and the password.
    assert!(!dir.path().join("network.conf").exists());
    assert!(!dir.path().join("web-auth.json").exists());
    assert_eq!(backend.reboots.load(Ordering::SeqCst), 1);
    // The session ended; the box is back at setup.
    assert_eq!(c.get("/api/v1/settings").await.status, 401);
    let health = c.get("/api/v1/health").await.json();
    assert_eq!(health["setup_needed"], true);
}

/// Uploads `tests/data/<name>` as a Teleporter archive; it must be taken.
async fn upload_fixture(c: &mut Client, name: &str) -> Resp {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let archive = std::fs::read(&path).unwrap();
    let r = c
        .raw(
            "POST",
            "/api/v1/import/teleporter",
            "application/octet-stream",
            archive,
        )
        .await;
    assert_eq!(r.status, 200, "{name}: {}", r.body);
    r
}

/// A Pi-hole v5 Teleporter export as Pi-hole writes it, not as our own
/// builder does: tests/data/pihole-v5-teleporter.tar.gz is a hand-made
/// archive (POSIX ustar, gzip, made with GNU tar; see tests/data/README.md)
/// whose file names, order and JSON and setupVars.conf layout copy a real
/// v5 export published in github.com/apinter/pihole_dotconf
/// (pi-hole-pihole-teleporter.tar.gz, 2020). Its domains and addresses are
/// made up. What the importer takes from it comes back in the config; the
/// rest (groups, clients, DHCP leases, hosts, dnsmasq) is left alone.
#[tokio::test]
async fn a_pihole_v5_export_imports_lists_rules_and_upstreams() {
    let (b, mut c) = ready(|_| {}).await;
    let r = upload_fixture(&mut c, "pihole-v5-teleporter.tar.gz").await;
    assert_eq!(
        r.json()["message"],
        "2 lists, 2 allow and 1 deny rules, 0 local records, 4 upstreams imported; 1 skipped"
    );
    assert_eq!(
        r.json()["imported"]["skipped"],
        json!(["stats.video.example: disabled in Pi-hole"])
    );
    let cfg = saved(&b);
    let lists: Vec<(&str, Option<&str>, bool)> = cfg
        .filter
        .lists
        .iter()
        .map(|l| (l.name.as_str(), l.url.as_deref(), l.enabled))
        .collect();
    // Setup's list stays; the imported ones follow it.
    assert_eq!(
        lists,
        [
            (
                "stevenblack",
                Some("https://raw.githubusercontent.com/StevenBlack/hosts/master/hosts"),
                true
            ),
            (
                "pihole-lists.example",
                Some("https://lists.example/hosts"),
                true
            ),
            (
                "pihole-mirror.example",
                Some("https://mirror.example/files/justdomains"),
                false
            ),
        ]
    );
    assert_eq!(
        cfg.filter.allow,
        ["s.video.example", "/(\\.|^)news\\.example$/"]
    );
    assert_eq!(cfg.filter.deny, ["tracker.example"]);
    let upstreams: Vec<String> = cfg.dns.upstreams.iter().map(|u| u.to_string()).collect();
    assert_eq!(
        upstreams,
        [
            "9.9.9.9:53",
            "149.112.112.112:53",
            "127.0.0.1:5335",
            "[2620:fe::fe]:53"
        ]
    );
    assert!(cfg.local.records.is_empty());
    assert!(
        cfg.filter.groups.is_empty(),
        "Pi-hole's Default group is ours"
    );
}

/// A Pi-hole v6 Teleporter export laid out as Pi-hole FTL writes it
/// (src/zip/teleporter.c in github.com/pi-hole/FTL: pihole.toml, hosts,
/// DHCP leases, a gravity.db of seven tables copied with CREATE TABLE AS
/// SELECT, and pihole-FTL.db), made by tests/data/make-pihole-v6-teleporter.py
/// with Python's zipfile and sqlite3, not by our builder.
#[tokio::test]
async fn a_pihole_v6_export_imports_lists_rules_records_and_upstreams() {
    let (b, mut c) = ready(|_| {}).await;
    let r = upload_fixture(&mut c, "pihole-v6-teleporter.zip").await;
    assert_eq!(
        r.json()["message"],
        "2 lists, 2 allow and 1 deny rules, 3 local records, 3 upstreams imported; 1 skipped"
    );
    assert_eq!(
        r.json()["imported"]["skipped"],
        json!(["^ads?[0-9]*\\.: disabled in Pi-hole"])
    );
    let cfg = saved(&b);
    let lists: Vec<(&str, bool)> = cfg
        .filter
        .lists
        .iter()
        .map(|l| (l.url.as_deref().unwrap_or(""), l.enabled))
        .collect();
    assert_eq!(
        lists,
        [
            (
                "https://raw.githubusercontent.com/StevenBlack/hosts/master/hosts",
                true
            ),
            ("https://lists.example/hosts", true),
            ("https://mirror.example/files/justdomains", false),
        ]
    );
    assert_eq!(
        cfg.filter.allow,
        ["s.video.example", "/(\\.|^)news\\.example$/"]
    );
    assert_eq!(cfg.filter.deny, ["tracker.example"]);
    let records: Vec<String> = cfg
        .local
        .records
        .iter()
        .map(|r| format!("{} {:?} {}", r.name.0, r.rtype, r.value))
        .collect();
    assert_eq!(
        records,
        [
            "nas.lan A 192.168.1.10",
            "nas6.lan AAAA fd00::10",
            "files.lan CNAME nas.lan"
        ]
    );
    let upstreams: Vec<String> = cfg.dns.upstreams.iter().map(|u| u.to_string()).collect();
    assert_eq!(
        upstreams,
        ["9.9.9.9:53", "149.112.112.112:53", "127.0.0.1:5335"]
    );
}
