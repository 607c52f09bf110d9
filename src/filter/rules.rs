//! The user's own rules and the fixed special names, compiled from the
//! config into a small sorted table keyed by the same suffix hashes the list
//! index uses, plus one `RegexSet` per direction.
//!
//! Rule syntax (filter.allow / filter.deny and per-group allow / deny):
//! `name` matches exactly that name; `*.name` and `||name^` match the name
//! and all its subdomains; `/regex/` matches the whole query name text
//! (the `regex` crate: linear time). Not for: list rules (see `index`).

use super::groups::{ALL_GROUPS, Groups};
use super::index::hash_name;
use super::parse::normalize_domain;
use super::special;
use crate::config::{BlockedResponse, Config};
use anyhow::Context;
use regex::{Regex, RegexSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Allow,
    Deny,
    Special,
}

/// One name rule in the hash table.
#[derive(Debug, Clone, Copy)]
pub struct NameRule {
    pub kind: RuleKind,
    pub subdomains: bool,
    /// Groups it applies to.
    pub groups: u64,
    /// Index into `allow_text` / `deny_text`, or the special id.
    pub id: u32,
}

/// Regex rules of one direction; `set` answers "any?", `each` says which.
pub struct RegexRules {
    set: RegexSet,
    each: Vec<(Regex, u64, u32)>,
}

impl RegexRules {
    fn new(rules: Vec<(String, u64, u32)>) -> anyhow::Result<Option<RegexRules>> {
        if rules.is_empty() {
            return Ok(None);
        }
        let set = RegexSet::new(rules.iter().map(|r| &r.0))?;
        let each = rules
            .into_iter()
            .map(|(r, g, id)| Ok((Regex::new(&r)?, g, id)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Some(RegexRules { set, each }))
    }

    /// The first rule matching `name` for a client in `groups`.
    #[inline]
    pub fn find(&self, name: &str, groups: u64) -> Option<u32> {
        if !self.set.is_match(name) {
            return None;
        }
        self.each
            .iter()
            .find(|(r, g, _)| g & groups != 0 && r.is_match(name))
            .map(|(_, _, id)| *id)
    }

    /// Every rule matching `name`, with whether it applies to `groups`.
    pub fn all(&self, name: &str, groups: u64) -> Vec<(u32, bool)> {
        self.each
            .iter()
            .filter(|(r, _, _)| r.is_match(name))
            .map(|(_, g, id)| (*id, g & groups != 0))
            .collect()
    }
}

/// Everything from the config that decides a verdict, besides the lists.
pub struct Policy {
    pub enabled: bool,
    pub blocked_response: BlockedResponse,
    pub blocked_ttl: u32,
    pub rebind_protection: bool,
    pub groups: Groups,
    /// Rule text by id, with the group it came from (None = everyone).
    pub allow_text: Vec<(String, Option<String>)>,
    pub deny_text: Vec<(String, Option<String>)>,
    /// Sorted by hash; several rules may share one.
    names: Vec<(u64, NameRule)>,
    /// One bit per top-6-bit hash value present in `names`: most suffixes
    /// skip the search.
    name_bits: u64,
    /// Labels of the longest rule name: a walk probes no deeper suffix.
    name_depth: usize,
    pub allow_regex: Option<RegexRules>,
    pub deny_regex: Option<RegexRules>,
    /// Hashes of suffixes whose answers may hold private addresses.
    local_suffixes: Vec<u64>,
    seed: u64,
}

/// (config key, rules, kind, groups mask, group name)
type RuleSource<'a> = (&'a str, &'a Vec<String>, RuleKind, u64, Option<String>);

#[derive(Debug)]
enum Parsed {
    Name(String, bool),
    Regex(String),
}

fn parse_rule(text: &str) -> Result<Parsed, String> {
    let t = text.trim();
    if t.len() >= 2 && t.starts_with('/') && t.ends_with('/') {
        let re = &t[1..t.len() - 1];
        Regex::new(re).map_err(|e| format!("'{t}': bad regex: {e}"))?;
        return Ok(Parsed::Regex(re.to_string()));
    }
    let (name, sub) = if let Some(n) = t.strip_prefix("*.") {
        if n.contains('*') {
            return Err(format!(
                "'{t}': a wildcard may only be a leading '*.' (as in *.example.com)"
            ));
        }
        (n, true)
    } else if let Some(n) = t.strip_prefix("||").and_then(|n| n.strip_suffix('^')) {
        (n, true)
    } else {
        (t, false)
    };
    if name.contains('*') {
        return Err(format!(
            "'{t}': a wildcard may only be a leading '*.' (as in *.example.com)"
        ));
    }
    let name = normalize_domain(name).map_err(|e| {
        format!("'{t}': {e} (use a name, *.name for a name and its subdomains, or /regex/)")
    })?;
    Ok(Parsed::Name(name.into_owned(), sub))
}

/// The checks a config load runs on the filter section (and so
/// `check-config`): every list entry is usable and every rule compiles as the
/// server would compile it. The error names the key and the entry.
pub fn check_config(cfg: &Config) -> Result<(), String> {
    for (i, l) in cfg.filter.lists.iter().enumerate() {
        let at = format!("filter.lists[{i}] ('{}')", l.name);
        if l.name.trim().is_empty() {
            return Err(format!("filter.lists[{i}]: name is empty"));
        }
        if l.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(format!("{at}: path is empty"));
        }
        if let Some(u) = &l.url {
            match reqwest::Url::parse(u) {
                Ok(url) if matches!(url.scheme(), "https" | "http") && url.has_host() => {}
                Ok(_) => return Err(format!("{at}: url '{u}': use an https:// (or http://) URL")),
                Err(e) => return Err(format!("{at}: url '{u}': {e}")),
            }
        }
    }
    Policy::new(cfg, 0)
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
}

impl Policy {
    /// Compiles the filter section of `cfg` for an index built with `seed`.
    pub fn new(cfg: &Config, seed: u64) -> anyhow::Result<Policy> {
        let f = &cfg.filter;
        let groups = Groups::new(f)?;
        let mut names = Vec::new();
        let mut allow_text = Vec::new();
        let mut deny_text = Vec::new();
        let mut allow_re = Vec::new();
        let mut deny_re = Vec::new();

        let mut sources: Vec<RuleSource> = vec![
            ("filter.allow", &f.allow, RuleKind::Allow, ALL_GROUPS, None),
            ("filter.deny", &f.deny, RuleKind::Deny, ALL_GROUPS, None),
        ];
        for g in &f.groups {
            let bit = groups.mask_of(&g.name).unwrap_or(0);
            sources.push((
                "allow",
                &g.allow,
                RuleKind::Allow,
                bit,
                Some(g.name.clone()),
            ));
            sources.push(("deny", &g.deny, RuleKind::Deny, bit, Some(g.name.clone())));
        }
        for (key, rules, kind, groups_mask, group) in sources {
            for (i, text) in rules.iter().enumerate() {
                let where_ = match &group {
                    Some(g) => format!("filter.groups '{g}': {key}[{i}]"),
                    None => format!("{key}[{i}]"),
                };
                let parsed = parse_rule(text).map_err(|e| anyhow::anyhow!("{where_}: {e}"))?;
                let texts = if kind == RuleKind::Allow {
                    &mut allow_text
                } else {
                    &mut deny_text
                };
                let id = texts.len() as u32;
                texts.push((text.trim().to_string(), group.clone()));
                match parsed {
                    Parsed::Name(n, sub) => names.push((
                        hash_name(seed, &n),
                        labels(&n),
                        NameRule {
                            kind,
                            subdomains: sub,
                            groups: groups_mask,
                            id,
                        },
                    )),
                    Parsed::Regex(r) if kind == RuleKind::Allow => {
                        allow_re.push((r, groups_mask, id))
                    }
                    Parsed::Regex(r) => deny_re.push((r, groups_mask, id)),
                }
            }
        }
        let mut special_names = Vec::new();
        if f.block_doh_canary {
            special_names.extend(DOH.iter().map(|n| (*n, special::DOH_CANARY)));
        }
        if f.block_icloud_private_relay {
            special_names.extend(RELAY.iter().map(|n| (*n, special::ICLOUD_RELAY)));
        }
        for (n, id) in special_names {
            names.push((
                hash_name(seed, n),
                labels(n),
                NameRule {
                    kind: RuleKind::Special,
                    subdomains: false,
                    groups: ALL_GROUPS,
                    id,
                },
            ));
        }
        let name_depth = names.iter().map(|(_, d, _)| *d).max().unwrap_or(0);
        let mut names: Vec<(u64, NameRule)> = names.into_iter().map(|(h, _, r)| (h, r)).collect();
        names.sort_by_key(|(h, _)| *h);
        let name_bits = names.iter().fold(0u64, |m, (h, _)| m | 1 << (h >> 58));

        let mut local_suffixes: Vec<u64> = special::LOCAL_SUFFIXES
            .iter()
            .map(|s| hash_name(seed, s))
            .collect();
        for z in &cfg.forward {
            for d in &z.domains {
                local_suffixes.push(hash_name(seed, &d.0));
            }
        }
        local_suffixes.sort_unstable();

        Ok(Policy {
            enabled: f.enabled,
            blocked_response: f.blocked_response,
            blocked_ttl: f.blocked_ttl,
            rebind_protection: f.rebind_protection,
            groups,
            allow_text,
            deny_text,
            names,
            name_bits,
            name_depth,
            allow_regex: RegexRules::new(allow_re).context("filter.allow regexes")?,
            deny_regex: RegexRules::new(deny_re).context("filter.deny regexes")?,
            local_suffixes,
            seed,
        })
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn has_name_rules(&self) -> bool {
        !self.names.is_empty()
    }

    /// Labels of the longest rule name (0: no name rules).
    #[inline]
    pub fn name_depth(&self) -> usize {
        self.name_depth
    }

    /// Rules keyed by exactly this suffix hash.
    #[inline]
    pub fn rules_at(&self, hash: u64) -> &[(u64, NameRule)] {
        if self.name_bits & (1 << (hash >> 58)) == 0 {
            return &[];
        }
        let start = self.names.partition_point(|(h, _)| *h < hash);
        let end = start
            + self.names[start..]
                .iter()
                .take_while(|(h, _)| *h == hash)
                .count();
        &self.names[start..end]
    }

    pub fn is_local_suffix(&self, hash: u64) -> bool {
        self.local_suffixes.binary_search(&hash).is_ok()
    }
}

fn labels(name: &str) -> usize {
    name.split('.').count()
}

const DOH: &[&str] = special::DOH_CANARY_NAMES;
const RELAY: &[&str] = special::ICLOUD_RELAY_NAMES;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_syntax() {
        assert!(
            matches!(parse_rule("Good.Example.com").unwrap(), Parsed::Name(n, false) if n == "good.example.com")
        );
        assert!(
            matches!(parse_rule("*.cdn.example").unwrap(), Parsed::Name(n, true) if n == "cdn.example")
        );
        assert!(
            matches!(parse_rule("||t.example^").unwrap(), Parsed::Name(n, true) if n == "t.example")
        );
        assert!(
            matches!(parse_rule("/^ads?[0-9]*\\./").unwrap(), Parsed::Regex(r) if r == "^ads?[0-9]*\\.")
        );
        assert!(parse_rule("/(unclosed/").unwrap_err().contains("bad regex"));
        assert!(parse_rule("two words").unwrap_err().contains("'two words'"));
    }

    #[test]
    fn wildcards_are_leading_only() {
        for bad in ["*ads.example", "ads.*.example", "*.ads.*", "*"] {
            let e = parse_rule(bad).unwrap_err();
            assert!(e.contains("wildcard") && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn check_config_names_the_bad_list_entry() {
        let mut cfg = Config::default();
        check_config(&cfg).unwrap();
        cfg.filter.lists.push(crate::config::FilterList {
            name: "remote".into(),
            path: None,
            url: Some("ftp://lists.example/x.txt".into()),
            enabled: true,
            match_mode: None,
            groups: vec![],
        });
        let e = check_config(&cfg).unwrap_err();
        assert!(
            e.contains("filter.lists[0] ('remote')") && e.contains("ftp://"),
            "{e}"
        );
        cfg.filter.lists[0].url = Some("https://lists.example/x.txt".into());
        cfg.filter.lists[0].groups = vec!["nobody".into()];
        let e = check_config(&cfg).unwrap_err();
        assert!(e.contains("remote") && e.contains("nobody"), "{e}");
    }

    #[test]
    fn bad_rule_is_named_with_its_key() {
        let mut cfg = Config::default();
        cfg.filter.deny = vec!["ok.example".into(), "bad name".into()];
        let e = Policy::new(&cfg, 1).err().unwrap().to_string();
        assert!(
            e.contains("filter.deny[1]") && e.contains("'bad name'"),
            "{e}"
        );
    }
}
