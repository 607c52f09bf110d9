//! `glory-hole check-config FILE` on filter sections: the real binary must
//! refuse a bad allow/deny entry or list entry, naming the key and the entry,
//! and accept a good one.

use std::process::Command;

/// Runs check-config on `toml`; (exit ok, stdout + stderr).
fn check(toml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
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
}

fn refused(toml: &str, wanted: &[&str]) {
    let (ok, text) = check(toml);
    assert!(!ok, "accepted:\n{toml}\n{text}");
    for w in wanted {
        assert!(text.contains(w), "{w:?} missing from: {text}");
    }
}

#[test]
fn a_good_filter_section_passes() {
    let (ok, text) = check(
        r#"
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
"#,
    );
    assert!(ok, "{text}");
    assert!(text.contains(": ok"), "{text}");
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
