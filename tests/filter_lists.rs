//! The parsers on the real lists in ../shared/data/blocklists: every format
//! there, with counts checked against a deliberately simple reference parser
//! written here (prefix/suffix stripping per folder, a HashSet for unique).

use glory_hole::config::{Config, FilterList};
use glory_hole::filter::parse::Format;
use glory_hole::filter::{Filter, Verdict};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// `../shared` beside the repository (a worktree sits one level deeper).
fn lists_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    ["../shared", "../../shared"]
        .iter()
        .map(|p| root.join(p).join("data/blocklists"))
        .find(|p| p.is_dir())
        .expect("../shared/data/blocklists is missing")
}

/// Every list file with its folder (= format).
fn all_lists() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for folder in ["hosts", "domains", "adblock", "dnsmasq"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(lists_dir().join(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            out.push((folder.to_string(), f));
        }
    }
    out
}

/// The reference: what each line of a file in `folder` names.
fn reference_names(folder: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('!') {
            continue;
        }
        let name = match folder {
            "hosts" => {
                let mut words = l.split(' ').filter(|w| !w.is_empty());
                let ip = words.next().unwrap();
                assert!(ip == "0.0.0.0" || ip == "127.0.0.1", "{line}");
                for w in words {
                    if w != "localhost" {
                        out.push(w.to_lowercase());
                    }
                }
                continue;
            }
            "domains" => l,
            "adblock" => l
                .strip_prefix("||")
                .and_then(|r| r.strip_suffix('^'))
                .unwrap(),
            "dnsmasq" => l
                .strip_prefix("server=/")
                .and_then(|r| r.strip_suffix('/'))
                .unwrap(),
            _ => unreachable!(),
        };
        out.push(name.to_lowercase());
    }
    out
}

fn config_for(lists: &[(String, PathBuf)]) -> Config {
    let mut cfg = Config::default();
    for (folder, path) in lists {
        cfg.filter.lists.push(FilterList {
            name: format!("{folder}/{}", path.file_stem().unwrap().to_string_lossy()),
            path: Some(path.clone()),
            url: None,
            enabled: true,
            match_mode: None,
            groups: vec![],
        });
    }
    cfg
}

#[test]
fn every_real_list_parses_with_reference_counts() {
    let lists = all_lists();
    assert!(
        lists.len() >= 20,
        "expected the shared lists, found {}",
        lists.len()
    );
    let cfg = config_for(&lists);
    let filter = Filter::from_config(&cfg).unwrap();
    let mut everything = HashSet::new();
    let mut per_list = Vec::new();
    for (i, (folder, path)) in lists.iter().enumerate() {
        let text = std::fs::read_to_string(path).unwrap();
        let names = reference_names(folder, &text);
        let unique: HashSet<&str> = names.iter().map(String::as_str).collect();
        let meta = &filter.lists_meta()[i];
        assert_eq!(meta.error, None, "{}", path.display());
        assert_eq!(
            meta.stats.rules,
            names.len() as u64,
            "rules in {}",
            path.display()
        );
        assert_eq!(
            meta.domains,
            unique.len() as u64,
            "distinct names in {}",
            path.display()
        );
        assert_eq!(
            meta.stats.invalid,
            0,
            "{}: {:?}",
            path.display(),
            meta.stats.samples
        );
        let want = match folder.as_str() {
            "hosts" => Format::Hosts,
            "domains" => Format::Domains,
            "adblock" => Format::Adblock,
            _ => Format::Dnsmasq,
        };
        assert_eq!(meta.stats.format, want, "{}", path.display());
        everything.extend(names.iter().cloned());
        per_list.push(names);
    }
    // About 730k: the overlap between lists and formats counts once.
    assert!(everything.len() > 700_000, "{}", everything.len());
    assert_eq!(filter.index().len(), everything.len());

    let client = "192.168.1.10".parse().unwrap();
    for (i, names) in per_list.iter().enumerate() {
        for name in names.iter().step_by(41) {
            assert!(
                matches!(filter.check(name, client), Verdict::Blocked(r) if r.kind == 1),
                "{name} from list {i}"
            );
        }
    }
    // Names that are in no list pass; subdomains of hosts-only names pass.
    let with_subdomains: HashSet<&str> = lists
        .iter()
        .zip(&per_list)
        .filter(|((folder, _), _)| folder != "hosts")
        .flat_map(|(_, names)| names.iter().map(String::as_str))
        .collect();
    let covered = |n: &str| {
        let mut rest = n;
        loop {
            if with_subdomains.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, r)) => rest = r,
                None => return false,
            }
        }
    };
    let hosts_only: Vec<&String> = lists
        .iter()
        .zip(&per_list)
        .filter(|((folder, _), _)| folder == "hosts")
        .flat_map(|(_, names)| names.iter())
        .filter(|n| !covered(n))
        .step_by(97)
        .collect();
    assert!(hosts_only.len() > 100, "{}", hosts_only.len());
    // A name in several lists is reported with the first list naming it.
    let mut first_list: HashMap<&str, u32> = HashMap::new();
    for (i, names) in per_list.iter().enumerate() {
        for n in names {
            first_list.entry(n.as_str()).or_insert(i as u32);
        }
    }
    for n in hosts_only {
        assert_eq!(
            filter.check(n, client),
            Verdict::Blocked(glory_hole::events::Reason {
                kind: 1,
                id: first_list[n.as_str()],
                cname_depth: 0,
            }),
            "{n}"
        );
        assert_eq!(
            filter.check(&format!("zz-not-listed.{n}"), client),
            Verdict::Pass,
            "{n}"
        );
    }
    for n in [
        "example.org",
        "glory-hole-test.invalid",
        "a.b.c.d.e.f.example.net",
    ] {
        assert_eq!(filter.check(n, client), Verdict::Pass, "{n}");
    }
}
