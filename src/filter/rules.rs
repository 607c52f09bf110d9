//! The user's own rules and the fixed special names, compiled from the
//! config into a small sorted table keyed by the same suffix hashes the list
//! index uses, plus one `RegexSet` per direction.
//!
//! The rules arrive parsed (`syntax::rule`, while the config is read):
//! `Exact` matches that name, `Subdomains` the name and all its
//! subdomains, `Regex` the whole query name text (the `regex` crate:
//! linear time). Not for: rule syntax (see `syntax::rule`) or list rules
//! (see `index`).

use super::groups::{ALL_GROUPS, Groups};
use super::index::hash_name;
use super::special;
use crate::config::{BlockedResponse, Config};
use crate::syntax::RuleEntry;
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

    /// Whether any rule matches `name`, whatever its groups.
    #[inline]
    pub fn any_matches(&self, name: &str) -> bool {
        self.set.is_match(name)
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

/// (rules, kind, groups mask, group name)
type RuleSource<'a> = (&'a [RuleEntry], RuleKind, u64, Option<String>);

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
            (&f.allow, RuleKind::Allow, ALL_GROUPS, None),
            (&f.deny, RuleKind::Deny, ALL_GROUPS, None),
        ];
        for g in &f.groups {
            let bit = groups.mask_of(&g.name).unwrap_or(0);
            sources.push((&g.allow, RuleKind::Allow, bit, Some(g.name.clone())));
            sources.push((&g.deny, RuleKind::Deny, bit, Some(g.name.clone())));
        }
        for (rules, kind, groups_mask, group) in sources {
            for rule in rules {
                let texts = if kind == RuleKind::Allow {
                    &mut allow_text
                } else {
                    &mut deny_text
                };
                let id = texts.len() as u32;
                texts.push((rule.to_string(), group.clone()));
                match rule {
                    RuleEntry::Exact(n) | RuleEntry::Subdomains(n) => names.push((
                        hash_name(seed, &n.0),
                        labels(&n.0),
                        NameRule {
                            kind,
                            subdomains: matches!(rule, RuleEntry::Subdomains(_)),
                            groups: groups_mask,
                            id,
                        },
                    )),
                    RuleEntry::Regex(r) if kind == RuleKind::Allow => {
                        allow_re.push((r.clone(), groups_mask, id))
                    }
                    RuleEntry::Regex(r) => deny_re.push((r.clone(), groups_mask, id)),
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

    /// Whether an allow or deny regex matches `name`, for any group.
    #[inline]
    pub fn any_regex_matches(&self, name: &str) -> bool {
        let matches = |r: &Option<RegexRules>| r.as_ref().is_some_and(|r| r.any_matches(name));
        matches(&self.allow_regex) || matches(&self.deny_regex)
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
    fn rules_are_keyed_by_their_name_and_kept_in_stored_spelling() {
        let mut cfg = Config::default();
        cfg.filter.deny = ["Ads.Example", "||t.example^", "/^x/"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let p = Policy::new(&cfg, 7).unwrap();
        let texts: Vec<&str> = p.deny_text.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["ads.example", "*.t.example", "/^x/"]);
        let at = p.rules_at(hash_name(7, "t.example"));
        assert!(matches!(at, [(_, r)] if r.subdomains && r.kind == RuleKind::Deny && r.id == 1));
        assert_eq!(p.deny_regex.as_ref().unwrap().find("x.example", 1), Some(2));
    }
}
