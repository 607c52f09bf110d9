//! Blocklist line formats: hosts, plain domains, Adblock DNS syntax, dnsmasq.
//!
//! Each line is classified by its own syntax, so mixed files work; the file's
//! format is the syntax most of its rules use (reported, not enforced). A line
//! that cannot be used is counted and a few are kept as samples with their
//! line numbers; nothing here is fatal. Names go through the same
//! `syntax::normalize_domain` as the config and the API. Not for: deciding what a rule means
//! for a client (see `rules`, `Filter::check`).

use crate::syntax::normalize_domain;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::BufRead;

/// The syntax a list is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Empty,
    Hosts,
    Domains,
    Adblock,
    Dnsmasq,
}

/// What one rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Block,
    /// An `@@` exception: beats every block.
    Allow,
}

/// One usable rule: a normalised domain and its semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule<'a> {
    /// Lower-case ASCII (IDNs in punycode), no trailing dot.
    pub domain: Cow<'a, str>,
    pub action: Action,
    /// Applies to the domain's subdomains too.
    pub subdomains: bool,
}

/// How one line was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// Blank or a comment.
    Comment,
    /// Produced one or more rules; carries the syntax.
    Rules(Format),
    /// Valid syntax we deliberately do not apply: URL paths, cosmetic
    /// rules, modifiers, regexes, forwarding lines.
    Unsupported,
    /// `localhost` and friends in hosts files.
    Ignored,
    /// Cannot be used; the reason.
    Invalid(&'static str),
}

/// Per-list parse counts, kept in the snapshot and shown per list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListStats {
    pub format: Format,
    pub lines: u64,
    /// Rules produced (a hosts line with three names gives three).
    pub rules: u64,
    pub unsupported: u64,
    pub ignored: u64,
    pub invalid: u64,
    /// A few unusable lines, "line 42: not a domain: …".
    pub samples: Vec<String>,
}

const MAX_SAMPLES: usize = 5;

/// Names every hosts file maps to itself; never blocked.
const HOSTS_BOILERPLATE: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

/// Classifies one line (without its newline) and hands each rule to `emit`.
pub fn parse_line(line: &str, emit: &mut impl FnMut(Rule<'_>)) -> LineKind {
    let line = line.trim();
    if line.is_empty() || line.starts_with('!') || line.starts_with('[') {
        return LineKind::Comment;
    }
    if line.starts_with("##") || line.starts_with("#@#") || line.starts_with("#?#") {
        return LineKind::Unsupported;
    }
    if line.starts_with('#') {
        return LineKind::Comment;
    }
    if line.starts_with("||") || line.starts_with('|') || line.starts_with("@@") {
        return parse_adblock(line, emit);
    }
    if line.contains("##") || line.contains("#@#") || line.contains("#?#") || line.contains("#$#") {
        return LineKind::Unsupported;
    }
    if line.starts_with('/') {
        // An Adblock regex rule.
        return LineKind::Unsupported;
    }
    for prefix in ["server=/", "address=/", "local=/"] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return parse_dnsmasq(prefix, rest, emit);
        }
    }
    // Hosts and plain domains allow trailing comments.
    let body = line.split('#').next().unwrap_or("").trim();
    let mut tokens = body.split_ascii_whitespace();
    let Some(first) = tokens.next() else {
        return LineKind::Comment;
    };
    if first.parse::<std::net::IpAddr>().is_ok() {
        let mut produced = 0;
        let mut ignored = 0;
        for name in tokens {
            if HOSTS_BOILERPLATE.contains(&name) {
                ignored += 1;
                continue;
            }
            match normalize_domain(name) {
                Ok(domain) => {
                    emit(Rule {
                        domain,
                        action: Action::Block,
                        subdomains: false,
                    });
                    produced += 1;
                }
                Err(e) => return LineKind::Invalid(e),
            }
        }
        return match (produced, ignored) {
            (0, 0) => LineKind::Invalid("hosts line without a name"),
            (0, _) => LineKind::Ignored,
            _ => LineKind::Rules(Format::Hosts),
        };
    }
    if tokens.next().is_some() {
        return LineKind::Invalid("several words on a line that is not a hosts line");
    }
    if let Some(host) = first
        .split(['/', ':'])
        .next()
        .filter(|_| first.contains(['/', ':']))
    {
        // A URL or host:port is a rule for browsers, not DNS.
        let host = first
            .split("://")
            .nth(1)
            .map_or(host, |r| r.split(['/', ':']).next().unwrap_or(""));
        return match normalize_domain(host) {
            Ok(_) => LineKind::Unsupported,
            Err(e) => LineKind::Invalid(e),
        };
    }
    let (name, subdomains) = match first.strip_prefix("*.") {
        Some(rest) => (rest, true),
        None => (first, true),
    };
    match normalize_domain(name) {
        Ok(domain) => {
            emit(Rule {
                domain,
                action: Action::Block,
                subdomains,
            });
            LineKind::Rules(Format::Domains)
        }
        Err(e) => LineKind::Invalid(e),
    }
}

fn parse_adblock(line: &str, emit: &mut impl FnMut(Rule<'_>)) -> LineKind {
    let (action, rest) = match line.strip_prefix("@@") {
        Some(r) => (Action::Allow, r),
        None => (Action::Block, line),
    };
    let (subdomains, rest) = if let Some(r) = rest.strip_prefix("||") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix('|') {
        (false, r)
    } else {
        // "@@example.com^": AdGuard treats a bare exception as the domain
        // and its subdomains.
        (true, rest)
    };
    let (pattern, modifiers) = match rest.split_once('$') {
        Some((p, m)) => (p, Some(m)),
        None => (rest, None),
    };
    if let Some(m) = modifiers {
        // Modifiers narrow a rule (by client, type, party); applying the
        // rule without them would block too much, so only harmless ones pass.
        if !m
            .split(',')
            .all(|m| matches!(m.trim(), "important" | "all" | "document" | "doc"))
        {
            return LineKind::Unsupported;
        }
    }
    let pattern = pattern.strip_suffix('|').unwrap_or(pattern);
    let domain = match pattern.strip_suffix('^') {
        Some(d) => d,
        None => pattern,
    };
    if domain.contains(['/', '*', '^', '|', '?', '=', '&', ':']) {
        return LineKind::Unsupported;
    }
    match normalize_domain(domain) {
        Ok(domain) => {
            emit(Rule {
                domain,
                action,
                subdomains,
            });
            LineKind::Rules(Format::Adblock)
        }
        Err(e) => LineKind::Invalid(e),
    }
}

fn parse_dnsmasq(prefix: &str, rest: &str, emit: &mut impl FnMut(Rule<'_>)) -> LineKind {
    // "server=/a/b/" or "address=/a/0.0.0.0": domains between slashes, then
    // the target after the last slash.
    let Some((domains, target)) = rest.rsplit_once('/') else {
        return LineKind::Invalid("dnsmasq line without a closing '/'");
    };
    let target = target.trim();
    let blocks = match prefix {
        // An upstream after the last slash forwards instead of blocking.
        "server=/" | "local=/" => target.is_empty(),
        _ => {
            target.is_empty()
                || target == "#"
                || target
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_unspecified() || ip.is_loopback())
        }
    };
    if !blocks {
        return LineKind::Unsupported;
    }
    let mut names = Vec::new();
    for d in domains.split('/') {
        if d == "#" || d.contains('*') {
            return LineKind::Unsupported;
        }
        match normalize_domain(d) {
            Ok(n) => names.push(n),
            Err(e) => return LineKind::Invalid(e),
        }
    }
    if names.is_empty() {
        return LineKind::Invalid("dnsmasq line without a domain");
    }
    for domain in names {
        emit(Rule {
            domain,
            action: Action::Block,
            subdomains: true,
        });
    }
    LineKind::Rules(Format::Dnsmasq)
}

/// Parses a whole list from `reader`, line by line with one reused buffer,
/// handing every rule to `emit`. Only read errors are errors.
pub fn parse_list(
    mut reader: impl BufRead,
    mut emit: impl FnMut(Rule<'_>),
) -> std::io::Result<ListStats> {
    let mut stats = ListStats::default();
    let mut buf = Vec::with_capacity(256);
    let mut by_format = [0u64; 5];
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        stats.lines += 1;
        let kind = match std::str::from_utf8(&buf) {
            Ok(text) => parse_line(text, &mut |r| {
                stats.rules += 1;
                emit(r)
            }),
            Err(_) => LineKind::Invalid("not UTF-8 text"),
        };
        match kind {
            LineKind::Comment => {}
            LineKind::Rules(f) => by_format[f as usize] += 1,
            LineKind::Unsupported => stats.unsupported += 1,
            LineKind::Ignored => stats.ignored += 1,
            LineKind::Invalid(why) => {
                stats.invalid += 1;
                if stats.samples.len() < MAX_SAMPLES {
                    let text = String::from_utf8_lossy(&buf);
                    let text: String = text.trim().chars().take(80).collect();
                    stats
                        .samples
                        .push(format!("line {}: {why}: {text}", stats.lines));
                }
            }
        }
    }
    let formats = [
        Format::Empty,
        Format::Hosts,
        Format::Domains,
        Format::Adblock,
        Format::Dnsmasq,
    ];
    stats.format = formats
        .into_iter()
        .zip(by_format)
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(_, n)| *n)
        .map(|(f, _)| f)
        .unwrap_or(Format::Empty);
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(line: &str) -> (LineKind, Vec<(String, Action, bool)>) {
        let mut out = Vec::new();
        let kind = parse_line(line, &mut |r| {
            out.push((r.domain.into_owned(), r.action, r.subdomains))
        });
        (kind, out)
    }

    #[test]
    fn hosts_lines_block_exact_names() {
        let (k, r) = rules("0.0.0.0 Ads.Example.com tracker.example # comment");
        assert_eq!(k, LineKind::Rules(Format::Hosts));
        assert_eq!(
            r,
            vec![
                ("ads.example.com".into(), Action::Block, false),
                ("tracker.example".into(), Action::Block, false)
            ]
        );
        assert_eq!(rules("127.0.0.1 localhost").0, LineKind::Ignored);
        assert_eq!(rules(":: ip6-localhost").0, LineKind::Ignored);
        assert!(matches!(rules("0.0.0.0 bad..name").0, LineKind::Invalid(_)));
    }

    #[test]
    fn adblock_syntax() {
        assert_eq!(
            rules("||ads.example.com^").1,
            vec![("ads.example.com".into(), Action::Block, true)]
        );
        assert_eq!(
            rules("|exact.example^").1,
            vec![("exact.example".into(), Action::Block, false)]
        );
        assert_eq!(
            rules("@@||good.example^").1,
            vec![("good.example".into(), Action::Allow, true)]
        );
        assert_eq!(
            rules("||x.example^$important").1,
            vec![("x.example".into(), Action::Block, true)]
        );
        for unsupported in [
            "||example.com/ads/*",
            "example.com##.banner",
            "||x.example^$third-party",
            "/^ad[0-9]+\\./",
            "||ad*.example^",
            "||x.example^$dnstype=AAAA",
        ] {
            assert_eq!(rules(unsupported).0, LineKind::Unsupported, "{unsupported}");
        }
        assert_eq!(rules("! comment").0, LineKind::Comment);
        assert_eq!(rules("[Adblock Plus 2.0]").0, LineKind::Comment);
    }

    #[test]
    fn dnsmasq_and_plain_and_wildcards() {
        assert_eq!(
            rules("server=/a.example/b.example/").1,
            vec![
                ("a.example".into(), Action::Block, true),
                ("b.example".into(), Action::Block, true)
            ]
        );
        assert_eq!(
            rules("address=/c.example/0.0.0.0").1,
            vec![("c.example".into(), Action::Block, true)]
        );
        assert_eq!(
            rules("server=/corp.example/10.0.0.1").0,
            LineKind::Unsupported
        );
        assert_eq!(
            rules("*.wild.example").1,
            vec![("wild.example".into(), Action::Block, true)]
        );
        assert_eq!(
            rules("plain.example.").1,
            vec![("plain.example".into(), Action::Block, true)]
        );
        assert_eq!(
            rules("bücher.example").1,
            vec![("xn--bcher-kva.example".into(), Action::Block, true)]
        );
        assert!(matches!(rules("not a domain").0, LineKind::Invalid(_)));
        assert!(matches!(rules("<html>").0, LineKind::Invalid(_)));
    }

    #[test]
    fn list_stats_count_and_sample() {
        let text = "# title\n0.0.0.0 a.example\n0.0.0.0 b.example c.example\n<p>oops</p>\n\n127.0.0.1 localhost\n";
        let mut seen = Vec::new();
        let stats = parse_list(text.as_bytes(), |r| seen.push(r.domain.into_owned())).unwrap();
        assert_eq!(seen, ["a.example", "b.example", "c.example"]);
        assert_eq!(stats.format, Format::Hosts);
        assert_eq!(
            (stats.lines, stats.rules, stats.invalid, stats.ignored),
            (6, 3, 1, 1)
        );
        assert_eq!(stats.samples.len(), 1);
        assert!(
            stats.samples[0].starts_with("line 4: "),
            "{:?}",
            stats.samples
        );
    }
}
