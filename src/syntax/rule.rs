//! Allow/deny entries (`filter.allow`, `filter.deny`, a group's `allow` and
//! `deny`, the API's rule forms), parsed into a [`RuleEntry`] whose
//! `Display` is the one stored spelling.
//!
//! Syntax: `name` matches exactly that name; `*.name` and `||name^` match
//! the name and all its subdomains (stored as `*.name`); `/regex/` matches
//! the whole query name text (the `regex` crate: linear time). Names go
//! through [`normalize_domain`], so `Ads.Example` is stored as
//! `ads.example` and `bücher.example` as `xn--bcher-kva.example`.
//! Not for: blocklist lines (see `filter::parse`) or matching (see
//! `filter::rules`).

use super::domain::{DomainName, normalize_domain};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One allow or deny entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleEntry {
    /// `name`: exactly this name.
    Exact(DomainName),
    /// `*.name` or `||name^`: the name and its subdomains.
    Subdomains(DomainName),
    /// `/regex/`: the pattern between the slashes, known to compile.
    Regex(String),
}

/// Why an entry was refused: the entry as written, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{entry}': {why}")]
pub struct RuleError {
    pub entry: String,
    pub why: String,
}

const WILDCARD: &str = "a wildcard may only be a leading '*.' (as in *.example.com)";
const SYNTAX: &str = "use a name, *.name for a name and its subdomains, or /regex/";

impl RuleEntry {
    /// Parses one entry; surrounding spaces are ignored.
    pub fn parse(text: &str) -> Result<RuleEntry, RuleError> {
        let t = text.trim();
        let refuse = |why: String| RuleError {
            entry: t.to_string(),
            why,
        };
        if t.len() >= 2 && t.starts_with('/') && t.ends_with('/') {
            let re = &t[1..t.len() - 1];
            if re.is_empty() {
                return Err(refuse("empty regex (it would match every name)".into()));
            }
            regex::Regex::new(re).map_err(|e| refuse(format!("bad regex: {e}")))?;
            return Ok(RuleEntry::Regex(re.to_string()));
        }
        let (name, subdomains) = if let Some(n) = t.strip_prefix("*.") {
            (n, true)
        } else if let Some(n) = t.strip_prefix("||").and_then(|n| n.strip_suffix('^')) {
            (n, true)
        } else {
            (t, false)
        };
        if name.contains('*') {
            return Err(refuse(WILDCARD.into()));
        }
        let name = normalize_domain(name).map_err(|why| refuse(format!("{why} ({SYNTAX})")))?;
        let name = DomainName(name.into_owned());
        Ok(if subdomains {
            RuleEntry::Subdomains(name)
        } else {
            RuleEntry::Exact(name)
        })
    }

    /// The name a name rule is keyed by; None for a regex.
    pub fn name(&self) -> Option<&DomainName> {
        match self {
            RuleEntry::Exact(n) | RuleEntry::Subdomains(n) => Some(n),
            RuleEntry::Regex(_) => None,
        }
    }
}

impl fmt::Display for RuleEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleEntry::Exact(n) => write!(f, "{n}"),
            RuleEntry::Subdomains(n) => write!(f, "*.{n}"),
            RuleEntry::Regex(r) => write!(f, "/{r}/"),
        }
    }
}

impl FromStr for RuleEntry {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, RuleError> {
        RuleEntry::parse(s)
    }
}

/// Compares with the stored spelling, as the web layer holds entries.
impl PartialEq<str> for RuleEntry {
    fn eq(&self, other: &str) -> bool {
        match (self, other.as_bytes()) {
            (RuleEntry::Exact(n), _) => n.0 == other,
            (RuleEntry::Subdomains(n), [b'*', b'.', rest @ ..]) => n.0.as_bytes() == rest,
            (RuleEntry::Regex(r), [b'/', inner @ .., b'/']) => r.as_bytes() == inner,
            _ => false,
        }
    }
}

impl PartialEq<&str> for RuleEntry {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl PartialEq<String> for RuleEntry {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

impl<'de> Deserialize<'de> for RuleEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RuleEntry::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for RuleEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parses a list of entries, naming the first bad one by `key[index]`.
pub fn parse_entries<S: AsRef<str>>(key: &str, texts: &[S]) -> Result<Vec<RuleEntry>, String> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| RuleEntry::parse(t.as_ref()).map_err(|e| format!("{key}[{i}]: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(text: &str) -> String {
        RuleEntry::parse(text).unwrap().to_string()
    }

    #[test]
    fn each_spelling_has_one_stored_form() {
        assert_eq!(stored(" Good.Example.com "), "good.example.com");
        assert_eq!(stored("*.cdn.example"), "*.cdn.example");
        assert_eq!(stored("||t.example^"), "*.t.example");
        assert_eq!(stored("bücher.example"), "xn--bcher-kva.example");
        assert_eq!(stored("/^ads?[0-9]*\\./"), "/^ads?[0-9]*\\./");
        assert_eq!(
            RuleEntry::parse("||t.example^").unwrap(),
            RuleEntry::Subdomains(DomainName("t.example".into()))
        );
    }

    #[test]
    fn refusals_quote_the_entry_and_say_why() {
        let e = RuleEntry::parse("/(unclosed/").unwrap_err();
        assert_eq!(e.entry, "/(unclosed/");
        assert!(e.why.starts_with("bad regex"), "{e}");
        assert!(
            RuleEntry::parse("//")
                .unwrap_err()
                .why
                .contains("empty regex")
        );
        let e = RuleEntry::parse("two words").unwrap_err();
        assert!(
            e.to_string().starts_with("'two words': not a domain"),
            "{e}"
        );
        for bad in ["*ads.example", "ads.*.example", "*.ads.*", "*"] {
            let e = RuleEntry::parse(bad).unwrap_err();
            assert_eq!((e.entry.as_str(), e.why.as_str()), (bad, WILDCARD));
        }
    }

    #[test]
    fn compares_with_its_stored_spelling() {
        let r = RuleEntry::parse("||t.example^").unwrap();
        assert!(r == "*.t.example" && r != "t.example" && r != "||t.example^");
        let r = RuleEntry::parse("/^a$/").unwrap();
        assert!(r == "/^a$/" && r != "^a$");
    }

    #[test]
    fn a_list_names_the_bad_index() {
        let e = parse_entries("filter.deny", &["ok.example", "bad name"]).unwrap_err();
        assert!(e.starts_with("filter.deny[1]: 'bad name': "), "{e}");
    }
}
