//! Which client groups each allow/deny entry and each blocklist applies to,
//! read from and written to the config's own model (issue 3, point 10):
//!
//! - an entry in `filter.allow` / `filter.deny` applies to every client;
//!   an entry in `[[filter.groups]]`'s `allow` / `deny` applies to that
//!   group's clients only (the group named `default` holds everyone not in
//!   another group);
//! - a list's `groups` names the groups it applies to; empty means
//!   `default`.
//!
//! The API and the pages speak in (entry, groups) and (list, groups); this
//! module turns those into config edits and back, so the config keeps one
//! spelling and the filter needs no change. Not for: matching clients or
//! deciding verdicts (see `filter::groups`).

use crate::config::{ClientGroup, Config, DEFAULT_GROUP, FilterList};
use crate::syntax::RuleEntry as Rule;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleList {
    Allow,
    Deny,
}

impl RuleList {
    pub fn parse(s: &str) -> Option<RuleList> {
        match s {
            "allow" => Some(RuleList::Allow),
            "deny" => Some(RuleList::Deny),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            RuleList::Allow => "allow",
            RuleList::Deny => "deny",
        }
    }
    pub fn other(self) -> RuleList {
        match self {
            RuleList::Allow => RuleList::Deny,
            RuleList::Deny => RuleList::Allow,
        }
    }
}

/// Where an allow/deny entry applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every client, whatever its groups (`filter.allow` / `filter.deny`).
    Everyone,
    /// These groups only; empty means nowhere (the entry is removed).
    Groups(BTreeSet<String>),
}

impl Scope {
    /// What is left of `self` after taking `other` away, over `all` groups.
    pub fn minus(&self, other: &Scope, all: &[String]) -> Scope {
        let mine: BTreeSet<String> = match self {
            Scope::Everyone => all.iter().cloned().collect(),
            Scope::Groups(g) => g.clone(),
        };
        match other {
            Scope::Everyone => Scope::Groups(BTreeSet::new()),
            Scope::Groups(g) if g.is_empty() => self.clone(),
            Scope::Groups(g) => Scope::Groups(mine.difference(g).cloned().collect()),
        }
    }

    /// Group names for the API; empty means every client.
    pub fn names(&self) -> Vec<String> {
        match self {
            Scope::Everyone => Vec::new(),
            Scope::Groups(g) => g.iter().cloned().collect(),
        }
    }
}

/// One allow/deny entry as the API and the Lists page show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleEntry {
    pub list: &'static str,
    pub entry: String,
    /// Empty: every client.
    pub groups: Vec<String>,
}

/// Every group a client can be in: `default` first, then the configured
/// ones in config order.
pub fn group_names(cfg: &Config) -> Vec<String> {
    let mut out = vec![DEFAULT_GROUP.to_string()];
    for g in &cfg.filter.groups {
        if g.name != DEFAULT_GROUP {
            out.push(g.name.clone());
        }
    }
    out
}

/// Trims, de-duplicates and checks group names chosen in a form or sent by
/// a script; the error names the first unknown one.
pub fn check_groups(cfg: &Config, names: &[String]) -> Result<BTreeSet<String>, String> {
    let known = group_names(cfg);
    let mut out = BTreeSet::new();
    for n in names.iter().flat_map(|n| n.split(',')).map(str::trim) {
        if n.is_empty() {
            continue;
        }
        if !known.iter().any(|k| k == n) {
            return Err(format!(
                "groups: no group '{n}' (groups are: {}; create one on the Clients page)",
                known.join(", ")
            ));
        }
        out.insert(n.to_string());
    }
    Ok(out)
}

fn rules_of(g: &ClientGroup, list: RuleList) -> &Vec<Rule> {
    match list {
        RuleList::Allow => &g.allow,
        RuleList::Deny => &g.deny,
    }
}

fn rules_of_mut(g: &mut ClientGroup, list: RuleList) -> &mut Vec<Rule> {
    match list {
        RuleList::Allow => &mut g.allow,
        RuleList::Deny => &mut g.deny,
    }
}

fn global(cfg: &Config, list: RuleList) -> &Vec<Rule> {
    match list {
        RuleList::Allow => &cfg.filter.allow,
        RuleList::Deny => &cfg.filter.deny,
    }
}

fn global_mut(cfg: &mut Config, list: RuleList) -> &mut Vec<Rule> {
    match list {
        RuleList::Allow => &mut cfg.filter.allow,
        RuleList::Deny => &mut cfg.filter.deny,
    }
}

/// Where `entry` applies in `list`; None when it is not there at all.
pub fn rule_scope(cfg: &Config, list: RuleList, entry: &str) -> Option<Scope> {
    if global(cfg, list).iter().any(|e| e == entry) {
        return Some(Scope::Everyone);
    }
    let groups: BTreeSet<String> = cfg
        .filter
        .groups
        .iter()
        .filter(|g| rules_of(g, list).iter().any(|e| e == entry))
        .map(|g| g.name.clone())
        .collect();
    (!groups.is_empty()).then_some(Scope::Groups(groups))
}

/// The group called `name`, created when it is `default` and not written
/// down yet (the default group exists without a config entry).
fn group_mut<'a>(cfg: &'a mut Config, name: &str) -> Option<&'a mut ClientGroup> {
    if name == DEFAULT_GROUP && !cfg.filter.groups.iter().any(|g| g.name == name) {
        cfg.filter.groups.push(ClientGroup {
            name: name.to_string(),
            ..ClientGroup::default()
        });
    }
    cfg.filter.groups.iter_mut().find(|g| g.name == name)
}

/// An empty `[[filter.groups]] name = "default"` says nothing: drop it.
pub fn tidy(cfg: &mut Config) {
    cfg.filter.groups.retain(|g| {
        g.name != DEFAULT_GROUP
            || !(g.clients.is_empty() && g.allow.is_empty() && g.deny.is_empty())
    });
}

/// Makes `entry` apply exactly where `scope` says in `list` (nowhere for an
/// empty group set). Groups must exist (see [`check_groups`]). `entry` is a
/// stored spelling (`rules::normalize_rule`'s, or one found in the config);
/// other text is no entry and changes nothing.
pub fn set_rule_scope(cfg: &mut Config, list: RuleList, entry: &str, scope: &Scope) {
    let Ok(entry) = entry.parse::<Rule>() else {
        return;
    };
    global_mut(cfg, list).retain(|e| *e != entry);
    for g in &mut cfg.filter.groups {
        rules_of_mut(g, list).retain(|e| *e != entry);
    }
    match scope {
        Scope::Everyone => global_mut(cfg, list).push(entry),
        Scope::Groups(names) => {
            for n in names {
                if let Some(g) = group_mut(cfg, n) {
                    rules_of_mut(g, list).push(entry.clone());
                }
            }
        }
    }
    tidy(cfg);
}

/// Every allow and deny entry with its groups: allow before deny; within
/// each, every-client entries first, then by group in config order.
pub fn entries(cfg: &Config) -> Vec<RuleEntry> {
    let mut out: Vec<RuleEntry> = Vec::new();
    for list in [RuleList::Allow, RuleList::Deny] {
        let mut seen = BTreeSet::new();
        let all = global(cfg, list)
            .iter()
            .chain(cfg.filter.groups.iter().flat_map(|g| rules_of(g, list)));
        for e in all.map(Rule::to_string) {
            if !seen.insert(e.clone()) {
                continue;
            }
            let scope = rule_scope(cfg, list, &e).unwrap_or(Scope::Everyone);
            out.push(RuleEntry {
                list: list.name(),
                entry: e,
                groups: scope.names(),
            });
        }
    }
    out
}

/// The groups a list applies to, as the filter reads them.
pub fn list_groups(l: &FilterList) -> Vec<String> {
    if l.groups.is_empty() {
        vec![DEFAULT_GROUP.to_string()]
    } else {
        l.groups.clone()
    }
}

/// Stores a list's groups in the config's spelling: `default` alone is
/// written as nothing. None when the set is empty, which the config
/// cannot say (an empty `groups` means `default`).
pub fn store_list_groups(groups: &BTreeSet<String>) -> Option<Vec<String>> {
    if groups.is_empty() {
        return None;
    }
    if groups.len() == 1 && groups.contains(DEFAULT_GROUP) {
        return Some(Vec::new());
    }
    Some(groups.iter().cloned().collect())
}

/// The lists applying to group `name`.
pub fn lists_of_group(cfg: &Config, name: &str) -> Vec<String> {
    cfg.filter
        .lists
        .iter()
        .filter(|l| list_groups(l).iter().any(|g| g == name))
        .map(|l| l.name.clone())
        .collect()
}

/// Makes exactly `lists` apply to group `name`. Err names the list that
/// would be left applying to no group at all.
pub fn set_group_lists(
    cfg: &mut Config,
    name: &str,
    lists: &BTreeSet<String>,
) -> Result<(), String> {
    for l in &mut cfg.filter.lists {
        let mut groups: BTreeSet<String> = list_groups(l).into_iter().collect();
        if lists.contains(&l.name) {
            groups.insert(name.to_string());
        } else {
            groups.remove(name);
        }
        l.groups = store_list_groups(&groups).ok_or_else(|| {
            format!(
                "lists: list '{}' would apply to no group; tick it for another group first, or disable it on the Lists page",
                l.name
            )
        })?;
    }
    Ok(())
}

/// Takes group names that no longer exist off every list (a list left
/// with none applies to `default`, as the config reads it).
pub fn forget_missing_groups(cfg: &mut Config) {
    let known = group_names(cfg);
    for l in &mut cfg.filter.lists {
        l.groups.retain(|g| known.contains(g));
        if l.groups.len() == 1 && l.groups[0] == DEFAULT_GROUP {
            l.groups.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        let mut c = Config::default();
        c.filter.groups = vec![
            ClientGroup {
                name: "kids".into(),
                clients: vec!["192.168.1.50".into()],
                ..ClientGroup::default()
            },
            ClientGroup {
                name: "tv".into(),
                clients: vec!["192.168.1.60".into()],
                ..ClientGroup::default()
            },
        ];
        c.filter.lists = vec![FilterList {
            name: "basic".into(),
            path: Some("/x".into()),
            url: None,
            enabled: true,
            match_mode: None,
            groups: Vec::new(),
        }];
        c
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_entry_moves_between_everyone_and_groups() {
        let mut c = cfg();
        set_rule_scope(&mut c, RuleList::Deny, "video.example", &Scope::Everyone);
        assert_eq!(c.filter.deny, ["video.example"]);
        let kids = Scope::Groups(set(&["kids", "default"]));
        set_rule_scope(&mut c, RuleList::Deny, "video.example", &kids);
        assert!(c.filter.deny.is_empty());
        assert_eq!(c.filter.groups[0].deny, ["video.example"]);
        // The default group is written down only while it holds something.
        assert_eq!(c.filter.groups[2].name, "default");
        assert_eq!(rule_scope(&c, RuleList::Deny, "video.example"), Some(kids));
        set_rule_scope(
            &mut c,
            RuleList::Deny,
            "video.example",
            &Scope::Groups(BTreeSet::new()),
        );
        assert_eq!(rule_scope(&c, RuleList::Deny, "video.example"), None);
        assert_eq!(c.filter.groups.len(), 2, "empty default group kept");
    }

    #[test]
    fn taking_groups_away_from_everyone_leaves_the_rest() {
        let all = group_names(&cfg());
        assert_eq!(all, ["default", "kids", "tv"]);
        let left = Scope::Everyone.minus(&Scope::Groups(set(&["kids"])), &all);
        assert_eq!(left, Scope::Groups(set(&["default", "tv"])));
        assert_eq!(
            Scope::Groups(set(&["kids"])).minus(&Scope::Everyone, &all),
            Scope::Groups(BTreeSet::new())
        );
    }

    #[test]
    fn unknown_groups_are_named() {
        let e = check_groups(&cfg(), &["kids".into(), "teens".into()]).unwrap_err();
        assert!(
            e.contains("'teens'") && e.contains("default, kids, tv"),
            "{e}"
        );
        assert_eq!(
            check_groups(&cfg(), &[" kids ,default".into()]).unwrap(),
            set(&["default", "kids"])
        );
    }

    #[test]
    fn lists_follow_the_group_they_are_ticked_for() {
        let mut c = cfg();
        set_group_lists(&mut c, "kids", &set(&["basic"])).unwrap();
        assert_eq!(c.filter.lists[0].groups, ["default", "kids"]);
        assert_eq!(lists_of_group(&c, "kids"), ["basic"]);
        set_group_lists(&mut c, "default", &set(&[])).unwrap();
        assert_eq!(c.filter.lists[0].groups, ["kids"]);
        let e = set_group_lists(&mut c, "kids", &set(&[])).unwrap_err();
        assert!(e.contains("'basic'"), "{e}");
        c.filter.groups.retain(|g| g.name != "kids");
        forget_missing_groups(&mut c);
        assert!(c.filter.lists[0].groups.is_empty());
    }
}
