//! What the user writes, parsed once into the types the rest of the program
//! uses: domain names, allow/deny entries, local record values.
//!
//! The config loader (`config`), the web API and the blocklist parsers all go
//! through these types, so one spelling is accepted or refused the same way
//! everywhere and a parsed value is never checked again. Errors say what is
//! wrong with the text ("'a..b': empty label in domain"); the caller adds
//! where it was (config key, list line, form field).
//!
//! These modules sit low in the module graph: they import nothing of
//! `config`, `filter`, `dns` or `web`, which all import them.
//! Not for: the TOML schema (see `config`) or what a rule means for a client
//! (see `filter::rules`).

pub mod domain;
pub mod record;
pub mod rule;

pub use domain::{DomainName, normalize_domain};
pub use record::{Rdata, RecordType};
pub use rule::{RuleEntry, RuleError};
