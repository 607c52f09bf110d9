//! What several fuzz targets share: the small config they run under.
//!
//! Not for: anything the main crate uses; this crate exists only for
//! `cargo fuzz` (docs/security.md, "Fuzzing").

use glory_hole::config::Config;

/// A local record, a forward zone, deny rules (a name, a wildcard, a
/// regex), no rate limit (every input comes from one client) and upstreams
/// on TEST-NET addresses that no target ever reaches: `Engine::begin`
/// returns `Step::Forward` without I/O.
pub const CONFIG: &str = r#"
data_dir = "/nonexistent/glory-hole-fuzz"
[dns]
upstreams = ["192.0.2.1:53"]
rate_limit = 0
[[local.records]]
name = "nas.lan"
type = "A"
value = "192.168.1.10"
[[local.records]]
name = "printer.lan"
type = "CNAME"
value = "nas.lan"
[[forward]]
domains = ["corp.example"]
upstreams = ["192.0.2.2:53"]
[filter]
deny = ["blocked.example", "*.ads.example", "/^track[0-9]+\\./"]
[querylog]
enabled = false
[web]
enabled = false
"#;

pub fn config() -> Config {
    Config::from_toml(CONFIG, "fuzz config").expect("the fuzz config is valid")
}
