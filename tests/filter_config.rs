//! The config loader on filter sections: a bad allow/deny entry or list
//! entry is refused while the file is read, naming the key, the entry and
//! why; a good section loads. One case goes through `glory-hole
//! check-config`, the command a user runs.

use glory_hole::config::Config;
use std::process::Command;

/// Loads `toml` through the real loader; (ok, error text).
fn load(toml: &str) -> (bool, String) {
    match Config::from_toml(toml, "glory-hole.toml") {
        Ok(_) => (true, String::new()),
        Err(e) => (false, e.0),
    }
}

fn refused(toml: &str, wanted: &[&str]) {
    let (ok, text) = load(toml);
    assert!(!ok, "accepted:\n{toml}");
    for w in wanted {
        assert!(text.contains(w), "{w:?} missing from: {text}");
    }
}

const GOOD: &str = r#"
[filter]
allow = ["good.example.com", "*.cdn.example", "/^safe[0-9]+\\.example$/"]
deny = ["bad.example.com", "*.tracker.example", "||ads.example^", "/^ads?[0-9]*\\./"]
[[filter.lists]]
name = "basic"
path = "/data/lists/basic.txt"
match = "exact"
[[filter.lists]]
name = "remote"
url = "https://lists.example/hosts.txt"
groups = ["kids"]
[[filter.groups]]
name = "kids"
clients = ["192.168.1.0/24", "aa:bb:cc:dd:ee:ff"]
deny = ["*.games.example"]
"#;

#[test]
fn a_good_filter_section_loads_in_stored_spelling() {
    let cfg = Config::from_toml(GOOD, "glory-hole.toml").unwrap();
    let deny: Vec<String> = cfg.filter.deny.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        deny,
        [
            "bad.example.com",
            "*.tracker.example",
            "*.ads.example",
            "/^ads?[0-9]*\\./"
        ]
    );
    assert_eq!(cfg.filter.groups[0].deny, ["*.games.example"]);
}

#[test]
fn check_config_passes_a_good_file_and_names_a_bad_entry() {
    let dir = tempfile::tempdir().unwrap();
    let run = |toml: &str| {
        let path = dir.path().join("glory-hole.toml");
        std::fs::write(&path, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_glory-hole"))
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run(GOOD);
    assert!(ok && text.contains(": ok"), "{text}");
    let (ok, text) = run("[filter]\ndeny = [\"ok.example\", \"not a domain\"]\n");
    assert!(
        !ok && text.contains("filter.deny[1]: 'not a domain'"),
        "{text}"
    );
}

#[test]
fn a_bad_regex_is_named() {
    refused(
        "[filter]\nallow = [\"good.example\", \"/(unclosed/\"]\n",
        &["filter.allow[1]", "/(unclosed/", "bad regex"],
    );
}

#[test]
fn a_deny_entry_that_is_not_a_domain_is_named() {
    refused(
        "[filter]\ndeny = [\"ok.example\", \"not a domain\"]\n",
        &["filter.deny[1]", "'not a domain'"],
    );
    refused(
        "[filter]\ndeny = [\"http://ads.example/banner\"]\n",
        &["filter.deny[0]", "http://ads.example/banner"],
    );
}

#[test]
fn a_bad_wildcard_is_named() {
    refused(
        "[filter]\ndeny = [\"ads.*.example\"]\n",
        &["filter.deny[0]", "ads.*.example", "wildcard"],
    );
    refused(
        "[filter]\nallow = [\"*good.example\"]\n",
        &["filter.allow[0]", "*good.example", "wildcard"],
    );
}

#[test]
fn a_bad_group_rule_names_its_group() {
    refused(
        "[[filter.groups]]\nname = \"kids\"\nclients = [\"192.168.1.20\"]\ndeny = [\"/[z-a]/\"]\n",
        &["kids", "deny[0]", "/[z-a]/"],
    );
}

#[test]
fn a_list_needs_exactly_one_of_path_and_url() {
    refused(
        "[[filter.lists]]\nname = \"both\"\npath = \"/x.txt\"\nurl = \"https://l.example/x\"\n",
        &["filter.lists[0]", "'both'", "path or url"],
    );
    refused(
        "[[filter.lists]]\nname = \"neither\"\n",
        &["filter.lists[0]", "'neither'", "path or url"],
    );
}

#[test]
fn a_bad_list_entry_is_named() {
    refused(
        "[[filter.lists]]\nname = \"l\"\npath = \"/x.txt\"\nmatch = \"exakt\"\n",
        &["line 4", "match = \"exakt\"", "exakt"],
    );
    refused(
        "[[filter.lists]]\nname = \"remote\"\nurl = \"lists.example/x.txt\"\n",
        &["filter.lists[0] ('remote')", "lists.example/x.txt"],
    );
    refused(
        "[[filter.lists]]\nname = \"l\"\npath = \"/x.txt\"\ngroups = [\"nobody\"]\n",
        &["'l'", "nobody"],
    );
    refused(
        "[[filter.lists]]\nname = \"l\"\npath = \"/x.txt\"\n[[filter.lists]]\nname = \"l\"\npath = \"/y.txt\"\n",
        &["filter.lists[1]", "duplicate name 'l'"],
    );
}

#[test]
fn a_bad_group_client_is_named() {
    refused(
        "[[filter.groups]]\nname = \"kids\"\nclients = [\"tv\"]\n",
        &["filter.groups 'kids'", "'tv'", "MAC"],
    );
}
