//! The System page's backup: the whole configuration as one TOML file a
//! person can read, plus what a fresh box needs to let the same people in
//! with the same password and API tokens.
//!
//! Layout, top to bottom: a comment line naming the file; the config as
//! `config.toml` would hold it; a `[backup]` table with the admin password
//! hash and the API token hashes (argon2id PHC strings, never the secrets)
//! and, on the last line, a CRC-32 of every byte above that line. A file
//! cut short loses either the checksum line or the `[backup]` table, so a
//! truncated upload is refused instead of restoring half a config. A plain
//! config file (no first-line marker, no `[backup]`) restores the config
//! alone, as before.
//! Not for: applying anything (see `system::restore_backup`).

use super::auth::Credentials;
use crate::config::Config;
use serde::{Deserialize, Serialize};

/// The first line of every backup.
pub const MARKER: &str = "# glory-hole backup";
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    format: u32,
    made_ms: i64,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    tokens: Vec<super::auth::StoredToken>,
    /// Optional only so that its absence gets its own message.
    #[serde(default)]
    crc32: Option<String>,
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The backup file for `cfg` and `creds`, made at `now_ms`.
pub fn write(cfg: &Config, creds: &Credentials, now_ms: i64) -> String {
    let mut out = format!(
        "{MARKER} of the whole configuration.\n\
         # [backup] at the end holds the admin password hash and the API token hashes\n\
         # (argon2id, never the password or the tokens themselves): keep this file private.\n\
         # Restore it on the System page; a changed or cut-short file is refused.\n\n"
    );
    out.push_str(&cfg.to_toml());
    out.push_str(&format!(
        "\n[backup]\nformat = {FORMAT}\nmade_ms = {now_ms}\n"
    ));
    if let Some(p) = &creds.password {
        out.push_str(&format!("password = {}\n", toml_str(p)));
    }
    out.push_str("tokens = [\n");
    for t in &creds.tokens {
        let scope = match t.scope {
            super::auth::TokenScope::Read => "read",
            super::auth::TokenScope::Admin => "admin",
        };
        out.push_str(&format!(
            "    {{ id = {}, name = {}, hash = {}, created_ms = {}, scope = \"{scope}\" }},\n",
            toml_str(&t.id),
            toml_str(&t.name),
            toml_str(&t.hash),
            t.created_ms
        ));
    }
    out.push_str("]\n");
    let crc = crc32fast::hash(out.as_bytes());
    out.push_str(&format!("crc32 = \"{crc:08x}\"\n"));
    out
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

fn located(text: &str, e: toml::de::Error) -> String {
    match e.span() {
        Some(s) => format!("line {}: {}", line_of(text, s.start), e.message()),
        None => e.message().to_string(),
    }
}

/// Reads an uploaded backup (or a plain config file). The error says what
/// is wrong and where, in words for the upload form.
pub fn read(text: &str) -> Result<(Config, Option<Credentials>), String> {
    use serde::de::IntoDeserializer;
    use toml::de::DeTable;
    let mut doc = DeTable::parse(text).map_err(|e| located(text, e))?;
    let section = doc.get_mut().remove("backup");
    let is_backup = text.starts_with(MARKER);
    let creds = match section {
        None if is_backup => {
            return Err(
                "the [backup] section at the end is missing: the file was cut short \
                 (download the backup again)"
                    .into(),
            );
        }
        None => None,
        Some(v) => {
            let s = Section::deserialize(toml::de::ValueDeserializer::from(v))
                .map_err(|e| format!("[backup]: {}", located(text, e)))?;
            if s.format != FORMAT {
                return Err(format!(
                    "[backup]: format {} is newer than this firmware reads ({FORMAT}); update first",
                    s.format
                ));
            }
            let Some(crc) = s.crc32 else {
                return Err(
                    "[backup]: the checksum line at the end is missing: the file was \
                     cut short (download the backup again)"
                        .into(),
                );
            };
            let at = text.rfind("\ncrc32 = ").ok_or(
                "[backup]: the checksum is not on the last line: the file was changed after it was made",
            )? + 1;
            let tail = &text[at..];
            if tail.trim_end().lines().count() != 1 {
                return Err(
                    "[backup]: text after the checksum line: the file was changed after it was made"
                        .into(),
                );
            }
            if crc != format!("{:08x}", crc32fast::hash(&text.as_bytes()[..at])) {
                return Err(
                    "[backup]: the checksum does not match: the file was cut short or \
                     changed after it was made (to restore an edited config alone, delete its \
                     first line and its [backup] section)"
                        .into(),
                );
            }
            Some(Credentials {
                password: s.password,
                tokens: s.tokens,
            })
        }
    };
    let cfg = Config::deserialize(doc.into_deserializer()).map_err(|e| located(text, e))?;
    cfg.validate()?;
    Ok((cfg, creds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::auth::StoredToken;

    fn creds() -> Credentials {
        Credentials {
            password: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into()),
            tokens: vec![StoredToken {
                id: "0a1b2c3d".into(),
                name: "backup \"script\"".into(),
                hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                created_ms: 1_700_000_000_000,
                scope: crate::web::auth::TokenScope::Read,
            }],
        }
    }

    #[test]
    fn round_trip() {
        let mut cfg = Config::default();
        cfg.filter.deny = vec!["ads.example".parse().unwrap()];
        let text = write(&cfg, &creds(), 1);
        assert!(text.starts_with(MARKER));
        let (back, c) = read(&text).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(c, Some(creds()));
        // A plain config file restores the config alone.
        let (plain, none) = read(&cfg.to_toml()).unwrap();
        assert_eq!((plain, none), (cfg, None));
    }

    #[test]
    fn cut_short_or_changed_is_refused() {
        let text = write(&Config::default(), &creds(), 1);
        // Cut at every line end, and in the middle of the last line.
        let mut cuts: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
        cuts.pop();
        cuts.push(text.len() - 5);
        for at in cuts {
            let e = read(&text[..at]).unwrap_err();
            assert!(!e.is_empty(), "cut at {at}");
        }
        let changed = text.replacen("blocked_ttl = 2", "blocked_ttl = 3", 1);
        assert_ne!(changed, text);
        assert!(read(&changed).unwrap_err().contains("checksum"));
        let appended = format!("{text}extra = 1\n");
        assert!(read(&appended).is_err());
    }

    #[test]
    fn errors_say_where() {
        let e = read("[dns]\nupstreams = [\"nonsense\"]\n").unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
        let e = read("[dns]\nupstreams = [").unwrap_err();
        assert!(e.contains("line"), "{e}");
    }
}
