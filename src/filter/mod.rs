//! Filtering: blocklists, the user's allow/deny rules, client groups, special
//! names and answer inspection (CNAME cloaking, DNS rebinding).
//!
//! The data path holds an `Arc<ArcSwap<Filter>>` and calls [`Filter::check`]
//! per query and [`Filter::check_answer`] per upstream answer; both are
//! allocation-free. A [`Filter`] is immutable: the control plane
//! ([`FilterService`]) builds a new one off the data path (list updates,
//! config changes, neighbour-table changes) and swaps it in atomically.
//!
//! Order of decisions for one name and client: pause or filtering disabled
//! → Pass; any allow (user allow rule, list `@@` exception) → Allowed; then
//! special names, user deny rules, user deny regexes, lists → Blocked;
//! otherwise Pass.

pub mod groups;
pub mod index;
pub mod neighbours;
mod page_buf;
pub mod parse;
pub mod rules;
mod service;
pub mod snapshot;
pub mod special;
pub mod update;

pub use service::{FilterService, ListStatus, PauseStatus, ServiceOptions};

use crate::config::BlockedResponse;
use crate::events::Reason;
use crate::wire::{self, WireName};
use groups::ClientMap;
use index::{
    Index, ListMask, Suffixes, for_each_suffix, mask_and, mask_any, mask_first, mask_iter,
};
use rules::{Policy, RuleKind};
use serde::Serialize;
use snapshot::ListMeta;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

/// Suffixes hashed and prefetched before the walk starts.
const EAGER: usize = 4;

/// Reason kinds (see `events::Reason`).
pub const KIND_LIST: u8 = 1;
pub const KIND_DENY: u8 = 2;
pub const KIND_DENY_REGEX: u8 = 3;
pub const KIND_SPECIAL: u8 = 4;
pub const KIND_REBIND: u8 = 5;
pub const KIND_PRIVATE_NAME: u8 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No rule matched.
    Pass,
    /// An allow rule matched: skip answer inspection too.
    Allowed,
    Blocked(Reason),
}

/// Blocking paused until a time; shared by every snapshot so pausing needs
/// no rebuild. 0: not paused; `i64::MAX`: until resumed.
#[derive(Debug, Default)]
pub struct PauseState {
    until_ms: AtomicI64,
}

impl PauseState {
    #[inline]
    pub fn is_paused(&self) -> bool {
        let u = self.until_ms.load(Ordering::Relaxed);
        u != 0 && (u == i64::MAX || crate::clock::now_ms() < u)
    }
    pub fn until_ms(&self) -> i64 {
        self.until_ms.load(Ordering::Relaxed)
    }
    pub fn set_until_ms(&self, v: i64) {
        self.until_ms.store(v, Ordering::Relaxed)
    }
}

/// One immutable filter snapshot; the data path reads it lock-free.
pub struct Filter {
    index: Arc<Index>,
    lists: Arc<Vec<ListMeta>>,
    policy: Arc<Policy>,
    clients: Arc<ClientMap>,
    pause: Arc<PauseState>,
    /// This snapshot's lists and rules, numbered: a [`Stamp`] names it.
    generation: u32,
}

/// What the filter said of a name, kept with its cached answer: the
/// snapshot's generation when no list, rule or regex of that snapshot
/// touches the name for any client (so every client's verdict is Pass),
/// else 0. A cache hit whose stamp is the current snapshot's needs no
/// filter look-up ([`Filter::vouches_for`]).
pub type Stamp = u32;

/// Generations handed out so far; 0 is never one.
static GENERATIONS: AtomicU32 = AtomicU32::new(0);

fn next_generation() -> u32 {
    loop {
        let g = GENERATIONS.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if g != 0 {
            return g;
        }
    }
}

/// What one probed suffix contributed, for `decide`.
#[derive(Default)]
struct Hits {
    /// Something listed or a rule at a probed suffix, for any list or
    /// group (not only the client's).
    touched: bool,
    allowed: bool,
    special: Option<u32>,
    deny: Option<u32>,
    list: Option<usize>,
}

impl Filter {
    /// No lists, no rules, no special names: everything passes.
    pub fn empty() -> Filter {
        let mut cfg = crate::config::Config::default();
        cfg.filter.block_doh_canary = false;
        cfg.filter.block_icloud_private_relay = false;
        cfg.filter.rebind_protection = false;
        let policy = Policy::new(&cfg, 0).expect("the empty policy compiles");
        Filter {
            index: Arc::new(Index::empty()),
            lists: Arc::new(Vec::new()),
            policy: Arc::new(policy),
            clients: Arc::new(ClientMap::default()),
            pause: Arc::default(),
            generation: next_generation(),
        }
    }

    /// Assembles a snapshot. `policy` must be compiled with `index.seed()`.
    pub fn new(
        index: Arc<Index>,
        lists: Arc<Vec<ListMeta>>,
        policy: Arc<Policy>,
        clients: Arc<ClientMap>,
        pause: Arc<PauseState>,
    ) -> Filter {
        debug_assert_eq!(index.seed(), policy.seed());
        Filter {
            index,
            lists,
            policy,
            clients,
            pause,
            generation: next_generation(),
        }
    }

    /// Builds a snapshot straight from a config, reading and compiling its
    /// lists in memory (no files written). For tests and tools.
    pub fn from_config(cfg: &crate::config::Config) -> anyhow::Result<Filter> {
        let sources = snapshot::ListSource::from_config(cfg);
        let (compiled, lists) = snapshot::compile(&sources, rand::random())?;
        let index = Index::from_compiled(compiled)?;
        let policy = Policy::new(cfg, index.seed())?;
        let clients = policy.groups.client_map(&[]);
        Ok(Filter::new(
            Arc::new(index),
            Arc::new(lists),
            Arc::new(policy),
            Arc::new(clients),
            Arc::default(),
        ))
    }

    /// The same snapshot with another client map (neighbour table changed).
    pub fn with_clients(&self, clients: ClientMap) -> Filter {
        Filter {
            index: self.index.clone(),
            lists: self.lists.clone(),
            policy: self.policy.clone(),
            clients: Arc::new(clients),
            pause: self.pause.clone(),
            // Who is in which group does not change what a name untouched
            // for every group gets.
            generation: self.generation,
        }
    }

    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub fn lists_meta(&self) -> &[ListMeta] {
        &self.lists
    }

    pub fn pause_state(&self) -> &Arc<PauseState> {
        &self.pause
    }

    pub fn is_paused(&self) -> bool {
        self.pause.is_paused()
    }

    /// `name`: lower-case dotted text without the trailing dot.
    #[inline]
    pub fn check(&self, name: &str, client: IpAddr) -> Verdict {
        self.check_stamped(name, client).0
    }

    /// [`Filter::check`], and the [`Stamp`] to cache the answer with.
    #[inline]
    pub fn check_stamped(&self, name: &str, client: IpAddr) -> (Verdict, Stamp) {
        if !self.policy.enabled || self.pause.is_paused() {
            return (Verdict::Pass, 0);
        }
        let groups = self.groups_of(client);
        let lists = self.policy.groups.lists_for(groups);
        let (verdict, touched) = self.decide_touched(name, groups, &lists);
        // The walk covered every list only if it was made (the client's
        // groups have lists, or there are none); a regex may match for
        // another group.
        let walked = self.index.is_empty() || mask_any(&lists);
        let untouched = verdict == Verdict::Pass && !touched && walked;
        let clean = untouched && !self.policy.any_regex_matches(name);
        (verdict, if clean { self.generation } else { 0 })
    }

    /// A stamp from this snapshot: the name it was given for is untouched
    /// by every list, rule and regex here, so its verdict is Pass.
    #[inline]
    pub fn vouches_for(&self, stamp: Stamp) -> bool {
        stamp != 0 && stamp == self.generation
    }

    #[inline]
    fn groups_of(&self, client: IpAddr) -> u64 {
        if self.policy.groups.has_members() {
            self.clients.groups_of(client)
        } else {
            groups::DEFAULT_BIT
        }
    }

    fn decide(&self, name: &str, groups: u64, lists: &ListMask) -> Verdict {
        self.decide_touched(name, groups, lists).0
    }

    /// The verdict, and whether any list or name rule (for any group)
    /// lies on the name's suffixes.
    fn decide_touched(&self, name: &str, groups: u64, lists: &ListMask) -> (Verdict, bool) {
        let mut hits = Hits::default();
        let index = &*self.index;
        let mut in_index = !index.is_empty() && mask_any(lists);
        let rule_depth = self.policy.name_depth();
        if in_index || rule_depth > 0 {
            // Right to left, one probe per suffix, stopping where nothing
            // listed lies below (the branch filter) and no rule is that deep:
            // a deep name costs the probes of its listed part only.
            let mut suffixes = Suffixes::new(index.seed(), name);
            // Hash the first few suffixes (most listed names have at most
            // this many labels) and start loading their slots together,
            // so they wait for memory once; deeper ones are hashed and
            // prefetched one ahead, only while the walk goes on.
            let mut ahead = [(0u64, 0usize); EAGER];
            let mut eager = 0;
            for s in suffixes.by_ref().take(EAGER) {
                if in_index {
                    index.prefetch(s.0, s.1 != 0);
                }
                ahead[eager] = s;
                eager += 1;
            }
            let mut depth = 0;
            let mut next = (eager > 0).then(|| ahead[0]);
            while let Some((h, start)) = next {
                next = if depth + 1 < eager {
                    Some(ahead[depth + 1])
                } else {
                    let n = suffixes.next();
                    if in_index && let Some((n, at)) = n {
                        index.prefetch(n, at != 0);
                    }
                    n
                };
                depth += 1;
                let full = start == 0;
                if in_index {
                    if let Some(c) = index.probe(h) {
                        hits.touched |= mask_any(&c.allows(full)) || mask_any(&c.blocks(full));
                        if mask_any(&mask_and(&c.allows(full), lists)) {
                            hits.allowed = true;
                        }
                        if let Some(l) = mask_first(&mask_and(&c.blocks(full), lists)) {
                            hits.list = Some(l);
                        }
                    }
                    // The whole name has nothing further to walk to.
                    in_index = !full && index.may_have_below(h);
                }
                if depth <= rule_depth {
                    for (_, r) in self.policy.rules_at(h) {
                        if !(full || r.subdomains) {
                            continue;
                        }
                        hits.touched = true;
                        if r.groups & groups == 0 {
                            continue;
                        }
                        match r.kind {
                            RuleKind::Allow => hits.allowed = true,
                            RuleKind::Deny => hits.deny = Some(r.id),
                            RuleKind::Special => hits.special = Some(r.id),
                        }
                    }
                }
                if !in_index && depth >= rule_depth {
                    break;
                }
            }
        }
        (self.verdict(&hits, name, groups), hits.touched)
    }

    /// What the walk's hits and the regexes make of the name.
    fn verdict(&self, hits: &Hits, name: &str, groups: u64) -> Verdict {
        if hits.allowed {
            return Verdict::Allowed;
        }
        if let Some(re) = &self.policy.allow_regex
            && re.find(name, groups).is_some()
        {
            return Verdict::Allowed;
        }
        let blocked = |kind, id: u32| {
            Verdict::Blocked(Reason {
                kind,
                id,
                cname_depth: 0,
            })
        };
        if let Some(id) = hits.special {
            return blocked(KIND_SPECIAL, id);
        }
        if let Some(id) = hits.deny {
            return blocked(KIND_DENY, id);
        }
        if let Some(re) = &self.policy.deny_regex
            && let Some(id) = re.find(name, groups)
        {
            return blocked(KIND_DENY_REGEX, id);
        }
        if let Some(l) = hits.list {
            return blocked(KIND_LIST, l as u32);
        }
        Verdict::Pass
    }

    /// Inspects an upstream answer (raw wire bytes, no OPT needed) for a
    /// query that passed `check`: a blocked CNAME target blocks the answer
    /// (`cname_depth` = its position in the chain, from 1); a private
    /// address for a public name that is not allowed is a rebinding attempt.
    pub fn check_answer(&self, response: &[u8], client: IpAddr) -> Option<Reason> {
        if !self.policy.enabled {
            return None;
        }
        let blocking = !self.pause.is_paused();
        let rebind = self.policy.rebind_protection;
        if !blocking && !rebind {
            return None;
        }
        if wire::rcode(response) != wire::RCODE_NOERROR {
            return None;
        }
        let groups = self.groups_of(client);
        let lists = self.policy.groups.lists_for(groups);
        let mut qname = WireName::new();
        if wire::read_u16(response, 4) != Some(1)
            || wire::read_name(response, wire::field::HEADER_LEN, &mut qname).is_err()
        {
            return None;
        }
        let mut text = heapless::String::<256>::new();
        let mut target = WireName::new();
        let mut depth = 0u8;
        let mut found = None;
        let mut private_owner: Option<usize> = None;
        let _ = wire::for_each_record(response, |r| {
            if found.is_some() || r.section != 0 {
                return;
            }
            match r.rtype {
                wire::TYPE_CNAME if blocking => {
                    depth = depth.saturating_add(1);
                    if wire::read_name(response, r.rdata, &mut target).is_ok() {
                        wire::name_to_text(&target, &mut text);
                        if let Verdict::Blocked(mut reason) = self.decide(&text, groups, &lists) {
                            reason.cname_depth = depth;
                            found = Some(reason);
                        }
                    }
                }
                wire::TYPE_A | wire::TYPE_AAAA if rebind && private_owner.is_none() => {
                    let rdata = &response[r.rdata..r.rdata + r.rdlen];
                    let ip: Option<IpAddr> = match rdata.len() {
                        4 => Some(<[u8; 4]>::try_from(rdata).unwrap().into()),
                        16 => Some(<[u8; 16]>::try_from(rdata).unwrap().into()),
                        _ => None,
                    };
                    if ip.is_some_and(special::is_private) {
                        private_owner = Some(r.start);
                    }
                }
                _ => {}
            }
        });
        if found.is_some() {
            return found;
        }
        let owner_at = private_owner?;
        // Private names, forwarded zones and allowed names may point inside.
        let mut owner = WireName::new();
        let _ = wire::read_name(response, owner_at, &mut owner);
        for n in [&qname, &owner] {
            wire::name_to_text(n, &mut text);
            if self.is_local_name(&text) || self.decide(&text, groups, &lists) == Verdict::Allowed {
                return None;
            }
        }
        Some(Reason {
            kind: KIND_REBIND,
            id: 0,
            cname_depth: 0,
        })
    }

    fn is_local_name(&self, name: &str) -> bool {
        if !name.contains('.') {
            // A single-label name never comes from public DNS.
            return true;
        }
        let mut local = false;
        for_each_suffix(self.policy.seed(), name, |h, _| {
            local |= self.policy.is_local_suffix(h);
        });
        local
    }

    pub fn blocked_response(&self) -> BlockedResponse {
        self.policy.blocked_response
    }

    /// What to answer for this reason: special names (DoH canary, iCloud
    /// Private Relay) get NXDOMAIN whatever the mode, since that is the
    /// signal those clients look for; everything else uses the mode.
    pub fn blocked_response_for(&self, reason: Reason) -> BlockedResponse {
        if reason.kind == KIND_SPECIAL {
            BlockedResponse::Nxdomain
        } else {
            self.policy.blocked_response
        }
    }

    pub fn blocked_ttl(&self) -> u32 {
        self.policy.blocked_ttl
    }

    fn list_name(&self, id: u32) -> String {
        self.lists
            .get(id as usize)
            .map(|l| l.source.name.clone())
            .unwrap_or_else(|| format!("#{id}"))
    }

    /// Turns a Reason from an event back into words.
    pub fn describe(&self, reason: Reason) -> String {
        let rule = |v: &Vec<(String, Option<String>)>| {
            v.get(reason.id as usize)
                .map(|(t, g)| match g {
                    Some(g) => format!("'{t}' (group '{g}')"),
                    None => format!("'{t}'"),
                })
                .unwrap_or_else(|| format!("#{}", reason.id))
        };
        let what = match reason.kind {
            0 => "no rule".to_string(),
            KIND_LIST => format!("list '{}'", self.list_name(reason.id)),
            KIND_DENY => format!("deny rule {}", rule(&self.policy.deny_text)),
            KIND_DENY_REGEX => format!("deny regex {}", rule(&self.policy.deny_text)),
            KIND_SPECIAL => special::describe(reason.id).to_string(),
            KIND_REBIND => "DNS rebinding protection: private address in a public answer".into(),
            KIND_PRIVATE_NAME => "private name kept local".into(),
            k => format!("unknown reason {k}"),
        };
        if reason.cname_depth > 0 {
            format!("{what}, via CNAME target #{}", reason.cname_depth)
        } else {
            what
        }
    }

    /// The decision for (name, client) and every rule or list entry that
    /// matched, including those that do not apply to this client's groups.
    /// Reads the list files for the matching lines (slow path, for humans).
    pub fn explain(&self, name: &str, client: IpAddr) -> Explanation {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let groups = self.groups_of(client);
        let lists = self.policy.groups.lists_for(groups);
        let verdict = if !self.policy.enabled || self.pause.is_paused() {
            Verdict::Pass
        } else {
            self.decide(&name, groups, &lists)
        };
        let mut matches = Vec::new();
        let seed = self.index.seed();
        for_each_suffix(seed, &name, |h, start| {
            let full = start == 0;
            let suffix = &name[start..];
            if let Some(c) = self.index.probe(h) {
                for (effect, mask) in [("block", c.blocks(full)), ("allow", c.allows(full))] {
                    for l in mask_iter(&mask) {
                        let applies = mask_any(&mask_and(&index::mask_bit(l), &lists));
                        let (rule, line) = self.find_list_line(l, suffix, effect == "allow");
                        matches.push(RuleMatch {
                            source: format!("list '{}'", self.list_name(l as u32)),
                            rule,
                            line,
                            matched: suffix.to_string(),
                            effect,
                            applies,
                        });
                    }
                }
            }
            for (_, r) in self.policy.rules_at(h) {
                if !(full || r.subdomains) {
                    continue;
                }
                let (source, text, effect) = match r.kind {
                    RuleKind::Allow => (
                        "allow rule",
                        &self.policy.allow_text[r.id as usize].0,
                        "allow",
                    ),
                    RuleKind::Deny => (
                        "deny rule",
                        &self.policy.deny_text[r.id as usize].0,
                        "block",
                    ),
                    RuleKind::Special => ("special name", &String::new(), "block"),
                };
                matches.push(RuleMatch {
                    source: source.into(),
                    rule: if r.kind == RuleKind::Special {
                        special::describe(r.id).to_string()
                    } else {
                        text.clone()
                    },
                    line: None,
                    matched: suffix.to_string(),
                    effect,
                    applies: r.groups & groups != 0,
                });
            }
        });
        for (re, source, texts, effect) in [
            (
                &self.policy.allow_regex,
                "allow regex",
                &self.policy.allow_text,
                "allow",
            ),
            (
                &self.policy.deny_regex,
                "deny regex",
                &self.policy.deny_text,
                "block",
            ),
        ] {
            if let Some(re) = re {
                for (id, applies) in re.all(&name, groups) {
                    matches.push(RuleMatch {
                        source: source.into(),
                        rule: texts[id as usize].0.clone(),
                        line: None,
                        matched: name.clone(),
                        effect,
                        applies,
                    });
                }
            }
        }
        let (decision, reason) = match verdict {
            Verdict::Pass => ("pass", None),
            Verdict::Allowed => ("allowed", None),
            Verdict::Blocked(r) => ("blocked", Some(self.describe(r))),
        };
        Explanation {
            name,
            client,
            groups: self.policy.groups.names_of(groups),
            decision,
            reason,
            paused: self.pause.is_paused(),
            filtering_enabled: self.policy.enabled,
            matches,
        }
    }

    /// The first line of list `l` that lists `domain` (the index keeps no
    /// text, the copy on flash does).
    fn find_list_line(&self, l: usize, domain: &str, allow: bool) -> (String, Option<u64>) {
        use std::io::BufRead;
        let Some(meta) = self.lists.get(l) else {
            return (String::new(), None);
        };
        let Ok(f) = std::fs::File::open(&meta.source.file) else {
            return (
                format!("({} is not readable)", meta.source.file.display()),
                None,
            );
        };
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(f);
        let mut n = 0u64;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    return (
                        format!("(no longer in {})", meta.source.file.display()),
                        None,
                    );
                }
                Ok(_) => {}
            }
            n += 1;
            let mut hit = false;
            parse::parse_line(&line, &mut |r| {
                hit |= r.domain == domain && (r.action == parse::Action::Allow) == allow;
            });
            if hit {
                return (line.trim().to_string(), Some(n));
            }
        }
    }
}

/// The answer to "why was this blocked / allowed?".
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub name: String,
    pub client: IpAddr,
    pub groups: Vec<String>,
    /// "blocked", "allowed" or "pass".
    pub decision: &'static str,
    pub reason: Option<String>,
    pub paused: bool,
    pub filtering_enabled: bool,
    pub matches: Vec<RuleMatch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleMatch {
    /// "list 'basic'", "allow rule", "deny regex", ...
    pub source: String,
    /// The rule or list line as written.
    pub rule: String,
    /// Line number in the list file.
    pub line: Option<u64>,
    /// The suffix of the query name that matched.
    pub matched: String,
    /// "block" or "allow".
    pub effect: &'static str,
    /// Whether it applies to this client's groups.
    pub applies: bool,
}

#[cfg(test)]
mod tests;
