//! Keys of a config file that this build does not know. The data partition
//! is shared by both firmware slots, so an older build may start on a
//! config a newer one saved: like the query log's migrations, the config
//! only ever grows, and a key this build does not know is ignored with a
//! warning naming its path (`dns.new_key`) instead of refusing to start
//! (docs/configuration.md). Found by comparing the file's keys with the
//! config as this build writes it. Saving keeps such keys where they
//! were, so going back to the newer build finds its settings again.
//!
//! Not for: any other check of the file (wrong types and values are still
//! errors: `config`), or writing it (`atomic_file`).

use std::fmt::Write;
use toml::{Table, Value};

/// One step of a key's path in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

type KeyPath = Vec<Step>;

/// `dns.new_key`, `filter.lists[0].new_key`.
fn render(path: &KeyPath) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => {
                let _ = write!(s, ".{k}");
            }
            Step::Index(i) => {
                let _ = write!(s, "[{i}]");
            }
        }
    }
    s
}

/// The keys of `file` (a config file's text) that this build does not
/// know, by path: those missing from `known`, the same config as this
/// build writes it (`Config::to_toml`). Every field is written, so a key
/// read into a field comes back under the same name. (serde_ignored did
/// the same while reading, at 169 KiB of firmware binary.)
pub fn unknown(file: &str, known: &str) -> Vec<String> {
    paths(file, known).iter().map(render).collect()
}

fn paths(file: &str, known: &str) -> Vec<KeyPath> {
    let (Ok(file), Ok(known)) = (file.parse::<Table>(), known.parse::<Table>()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    missing(&file, &known, &mut Vec::new(), &mut out);
    out
}

fn missing(file: &Table, known: &Table, at: &mut KeyPath, out: &mut Vec<KeyPath>) {
    for (k, v) in file {
        at.push(Step::Key(k.clone()));
        match (v, known.get(k)) {
            (_, None) => out.push(at.clone()),
            (Value::Table(a), Some(Value::Table(b))) => missing(a, b, at, out),
            (Value::Array(a), Some(Value::Array(b))) => {
                for (i, pair) in a.iter().zip(b).enumerate() {
                    if let (Value::Table(x), Value::Table(y)) = pair {
                        at.push(Step::Index(i));
                        missing(x, y, at, out);
                        at.pop();
                    }
                }
            }
            _ => {}
        }
        at.pop();
    }
}

/// `new_text` (a config this build wrote) with the keys of `old_text`
/// (the file it replaces, read by this build as `old_known`) that this
/// build does not know put back where they were. Keys inside an array's
/// entries (`[[filter.lists]]`) are not kept: entries may have been
/// removed or reordered since; their paths are returned so the caller
/// can say so.
pub fn keep(old_text: &str, old_known: &str, new_text: String) -> (String, Vec<String>) {
    let paths = paths(old_text, old_known);
    if paths.is_empty() {
        return (new_text, Vec::new());
    }
    let (Ok(old), Ok(mut new)) = (old_text.parse::<Table>(), new_text.parse::<Table>()) else {
        return (new_text, Vec::new());
    };
    let mut dropped = Vec::new();
    for path in &paths {
        if !put_back(&old, &mut new, path) {
            dropped.push(render(path));
        }
    }
    match toml::to_string_pretty(&new) {
        Ok(text) => (text, dropped),
        Err(_) => (new_text, paths.iter().map(render).collect()),
    }
}

/// Copies the value at `path` (table keys only) from `old` into `new`,
/// making the tables on the way; false when the path goes through an
/// array or is not found.
fn put_back(old: &Table, new: &mut Table, path: &KeyPath) -> bool {
    let Some((Step::Key(last), parents)) = path.split_last() else {
        return false;
    };
    let (mut from, mut to) = (old, new);
    for step in parents {
        let Step::Key(k) = step else { return false };
        let Some(Value::Table(next)) = from.get(k) else {
            return false;
        };
        from = next;
        let entry = to
            .entry(k.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(next_to) = entry else {
            return false;
        };
        to = next_to;
    }
    match from.get(last) {
        Some(v) => {
            to.insert(last.clone(), v.clone());
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const NEWER: &str = r#"
future_top = 1
[dns]
listen = ["127.0.0.1:1053"]
new_key = "x"
[dns.new_table]
depth = 2
[[filter.lists]]
name = "basic"
path = "/tmp/basic.txt"
future_list_key = true
[new_section]
a = [1, 2]
"#;

    fn read(text: &str) -> (Config, Vec<String>) {
        Config::read(text, "t").unwrap()
    }

    #[test]
    fn unknown_keys_are_reported_by_path() {
        let (cfg, unknown) = read(NEWER);
        assert_eq!(cfg.dns.listen, ["127.0.0.1:1053".parse().unwrap()]);
        assert_eq!(
            unknown,
            [
                "future_top",
                "dns.new_key",
                "dns.new_table",
                "filter.lists[0].future_list_key",
                "new_section"
            ]
        );
    }

    #[test]
    fn every_known_key_of_every_section_is_known() {
        let text = r#"
data_dir = "/data/glory-hole"
[dns]
listen = ["127.0.0.1:1053"]
upstreams = ["127.0.0.1:5300", "tls://1.1.1.1:853#cloudflare-dns.com"]
rate_limit = 10
[cache]
memory_mib = 8
[[local.records]]
name = "nas.lan"
type = "A"
value = "192.168.1.10"
[[local.records]]
name = "mail.lan"
type = "MX"
value = "10 nas.lan"
ttl = 60
[[forward]]
domains = ["corp.example"]
upstreams = ["192.168.1.1:53"]
[filter]
deny = ["ads.example", "/^ads?[0-9]*\\./"]
allow = ["ok.example"]
[[filter.lists]]
name = "basic"
path = "/tmp/basic.txt"
match = "exact"
groups = ["kids"]
[[filter.groups]]
name = "kids"
clients = ["192.168.1.0/24"]
deny = ["*.games.example"]
allow = ["school.example"]
[querylog]
retention_days = 7
[web]
listen = ["0.0.0.0:80"]
appliance = true
[update]
running = "B"
disk = "/dev/vda"
[update.slot_a]
boot = "/a-boot"
root = "/a-root"
[update.slot_b]
boot = "/b-boot"
root = "/b-root"
"#;
        let (cfg, unknown) = read(text);
        assert_eq!(cfg.filter.groups.len(), 1);
        assert_eq!(unknown, Vec::<String>::new());
        let (_, unknown) = read(&Config::default().to_toml());
        assert_eq!(unknown, Vec::<String>::new());
    }

    #[test]
    fn saving_keeps_unknown_tables_and_keys_but_not_inside_arrays() {
        let (cfg, _) = read(NEWER);
        let mut changed = cfg.clone();
        changed.cache.memory_mib = 7;
        let (text, dropped) = keep(NEWER, &cfg.to_toml(), changed.to_toml());
        assert_eq!(dropped, ["filter.lists[0].future_list_key"]);
        let table: Table = text.parse().unwrap();
        assert_eq!(table["future_top"].as_integer(), Some(1));
        assert_eq!(table["dns"]["new_key"].as_str(), Some("x"));
        assert_eq!(table["dns"]["new_table"]["depth"].as_integer(), Some(2));
        assert_eq!(table["new_section"]["a"].as_array().unwrap().len(), 2);
        let (again, unknown) = read(&text);
        assert_eq!(again, changed, "the known part is what was saved");
        assert_eq!(unknown.len(), 4, "{unknown:?}");
    }

    #[test]
    fn a_file_without_unknown_keys_is_saved_as_serialized() {
        let text = Config::default().to_toml();
        assert_eq!(keep(&text, &text, text.clone()), (text, Vec::new()));
    }
}
