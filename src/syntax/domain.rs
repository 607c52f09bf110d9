//! Domain names: the one check and normalisation for every name a user or a
//! blocklist writes (config keys, allow/deny entries, list lines, API fields).
//!
//! A name is lower-case ASCII without the trailing dot; international names
//! are converted to punycode (`bücher.example` → `xn--bcher-kva.example`).
//! Not for: names read off the wire (see `wire`).

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// Normalises a domain: trims a trailing dot, lower-cases, converts IDNs to
/// punycode and checks labels. Borrowed when already normal. The error is
/// the reason alone, short enough for a list's per-line samples.
pub fn normalize_domain(raw: &str) -> Result<Cow<'_, str>, &'static str> {
    let raw = raw.strip_suffix('.').unwrap_or(raw);
    if raw.is_empty() {
        return Err("empty domain");
    }
    let name: Cow<str> = if !raw.is_ascii() {
        Cow::Owned(idna::domain_to_ascii(raw).map_err(|_| "not a valid international domain")?)
    } else if raw.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(raw.to_ascii_lowercase())
    } else {
        Cow::Borrowed(raw)
    };
    if name.len() > 253 {
        return Err("domain longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label in domain");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err("not a domain");
        }
    }
    Ok(name)
}

/// A normalised domain name (see [`normalize_domain`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(pub String);

impl DomainName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name in DNS wire form: length-prefixed labels, then the root.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() + 2);
        for label in self.0.split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }
}

impl FromStr for DomainName {
    type Err = String;
    /// Surrounding spaces are ignored; the error quotes the text.
    fn from_str(s: &str) -> Result<Self, String> {
        normalize_domain(s.trim())
            .map(|n| DomainName(n.into_owned()))
            .map_err(|why| format!("'{s}': {why}"))
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DomainName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for DomainName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_ascii_without_the_dot() {
        assert_eq!(normalize_domain("Ads.Example.").unwrap(), "ads.example");
        assert!(matches!(
            normalize_domain("ok.example"),
            Ok(Cow::Borrowed(_))
        ));
        assert_eq!(
            normalize_domain("bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(
            " Nas.Lan ".parse::<DomainName>().unwrap(),
            DomainName("nas.lan".into())
        );
    }

    #[test]
    fn bad_names_say_why() {
        assert_eq!(normalize_domain(""), Err("empty domain"));
        assert_eq!(normalize_domain("a..b"), Err("empty label in domain"));
        assert_eq!(
            normalize_domain(&format!("{}.example", "a".repeat(64))),
            Err("label longer than 63 characters")
        );
        assert_eq!(normalize_domain("two words"), Err("not a domain"));
        assert_eq!(
            "a b".parse::<DomainName>().unwrap_err(),
            "'a b': not a domain"
        );
    }

    #[test]
    fn wire_form() {
        let n: DomainName = "nas.lan".parse().unwrap();
        assert_eq!(n.to_wire(), b"\x03nas\x03lan\x00");
    }
}
