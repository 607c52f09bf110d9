//! Keys of a config file that this build does not know. The data partition
//! is shared by both firmware slots, so an older build may start on a
//! config a newer one saved: like the query log's migrations, the config
//! only ever grows, and a key this build does not know is ignored with a
//! warning naming its path (`dns.new_key`) instead of refusing to start
//! (docs/configuration.md). Saving keeps such keys where they were, so
//! going back to the newer build finds its settings again.
//!
//! Not for: any other check of the file (wrong types and values are still
//! errors: `config`), or writing it (`atomic_file`).

use serde::de::DeserializeOwned;
use std::fmt::Write;

/// One step of a key's path in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A key's path, as `serde_ignored` reports it.
type KeyPath = Vec<Step>;

fn steps(path: &serde_ignored::Path<'_>) -> KeyPath {
    use serde_ignored::Path;
    let mut out = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, .. }
        | Path::Map { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => steps(parent),
    };
    match path {
        Path::Seq { index, .. } => out.push(Step::Index(*index)),
        Path::Map { key, .. } => out.push(Step::Key(key.clone())),
        _ => {}
    }
    out
}

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

/// `text` read as `T`, and the paths of the keys `T` has no place for.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<(T, Vec<String>), toml::de::Error> {
    let (value, paths) = parse_paths(text)?;
    Ok((value, paths.iter().map(render).collect()))
}

fn parse_paths<T: DeserializeOwned>(text: &str) -> Result<(T, Vec<KeyPath>), toml::de::Error> {
    let mut unknown = Vec::new();
    let value = serde_ignored::deserialize(toml::de::Deserializer::parse(text)?, |p| {
        unknown.push(steps(&p))
    })?;
    Ok((value, unknown))
}

/// `new_text` (a config this build serialized) with the keys of
/// `old_text` (the file it replaces) that `T` does not know put back where
/// they were. Keys inside an array's entries (`[[filter.lists]]`) are not
/// kept: entries may have been removed or reordered since; their paths
/// are returned so the caller can say so.
pub fn keep<T: DeserializeOwned>(old_text: &str, new_text: String) -> (String, Vec<String>) {
    let Ok((_, paths)) = parse_paths::<T>(old_text) else {
        return (new_text, Vec::new()); // not a config this build reads: nothing to keep
    };
    if paths.is_empty() {
        return (new_text, Vec::new());
    }
    let (Ok(old), Ok(mut new)) = (
        old_text.parse::<toml::Table>(),
        new_text.parse::<toml::Table>(),
    ) else {
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
fn put_back(old: &toml::Table, new: &mut toml::Table, path: &KeyPath) -> bool {
    let Some((Step::Key(last), parents)) = path.split_last() else {
        return false;
    };
    let (mut from, mut to) = (old, new);
    for step in parents {
        let Step::Key(k) = step else { return false };
        let Some(toml::Value::Table(next)) = from.get(k) else {
            return false;
        };
        from = next;
        let entry = to
            .entry(k.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(next_to) = entry else {
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

    #[test]
    fn unknown_keys_are_reported_by_path() {
        let (cfg, unknown) = parse::<Config>(NEWER).unwrap();
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
    fn saving_keeps_unknown_tables_and_keys_but_not_inside_arrays() {
        let (cfg, _) = parse::<Config>(NEWER).unwrap();
        let mut changed = cfg.clone();
        changed.cache.memory_mib = 7;
        let (text, dropped) = keep::<Config>(NEWER, changed.to_toml());
        assert_eq!(dropped, ["filter.lists[0].future_list_key"]);
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["future_top"].as_integer(), Some(1));
        assert_eq!(table["dns"]["new_key"].as_str(), Some("x"));
        assert_eq!(table["dns"]["new_table"]["depth"].as_integer(), Some(2));
        assert_eq!(table["new_section"]["a"].as_array().unwrap().len(), 2);
        let (again, unknown) = parse::<Config>(&text).unwrap();
        assert_eq!(again, changed, "the known part is what was saved");
        assert_eq!(unknown.len(), 4, "{unknown:?}");
    }

    #[test]
    fn a_file_without_unknown_keys_is_saved_as_serialized() {
        let text = Config::default().to_toml();
        assert_eq!(keep::<Config>(&text, text.clone()), (text, Vec::new()));
    }
}
