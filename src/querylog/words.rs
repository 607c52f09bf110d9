//! A stored row in words, as the read side shows it outside the web page:
//! the time as SQL-comparable text, record type names, the upstream's
//! address and the deciding rule described, plus the id-to-name look-ups
//! for a long walk over blocks (bounded, so an export of any length holds
//! the same RAM).
//!
//! Not for: the log page's rows (`stats.rs` names those), or parsing the
//! user's filters (`export.rs`, `vtab.rs`).

use super::RuleRef;
use super::block::Row;
use crate::events::Source;
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;

/// Record type names the log shows; others appear as TYPEnnn.
const QTYPES: &[(u16, &str)] = &[
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (255, "ANY"),
];

pub fn qtype_name(t: u16) -> String {
    QTYPES
        .iter()
        .find(|q| q.0 == t)
        .map(|q| q.1.to_string())
        .unwrap_or_else(|| format!("TYPE{t}"))
}

/// The code of a name `qtype_name` gives (upper case), or `TYPEnnn`.
pub fn qtype_code(name: &str) -> Option<u16> {
    QTYPES
        .iter()
        .find(|q| q.1 == name)
        .map(|q| q.0)
        .or_else(|| name.strip_prefix("TYPE").and_then(|n| n.parse().ok()))
}

/// The status named as `Source::as_str` names it.
pub fn source_of(s: &str) -> Option<Source> {
    (0..=6)
        .filter_map(Source::from_u8)
        .find(|x| x.as_str() == s)
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS.mmm`, UTC: SQLite's own
/// `datetime()` form with milliseconds, so the text compares with
/// `datetime('now', '-7 days')` as the times do.
pub fn sql_time(ms: i64) -> String {
    let c = crate::clock::Civil::from_unix(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        ms.rem_euclid(1000)
    )
}

/// The earliest Unix millisecond whose `sql_time` text starts with `s`,
/// for text that is a prefix of that form (`2026-12-06`,
/// `2026-12-06 10:00`, `2026-12-06 10:00:00.5`); `None` for anything else
/// (a `T`, a zone), whose text order is not time order.
pub fn parse_sql_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    // Digit positions of the full form; separators in between.
    const FORM: &[u8] = b"dddd-dd-dd dd:dd:dd.ddd";
    // Whole fields only: the earliest time with the prefix `2026-12-06 1`
    // is 10:00, not 01:00.
    if !matches!(b.len(), 10 | 13 | 16 | 19..=23) {
        return None;
    }
    for (c, f) in b.iter().zip(FORM) {
        let ok = if *f == b'd' {
            c.is_ascii_digit()
        } else {
            c == f
        };
        if !ok {
            return None;
        }
    }
    let num = |from: usize, len: usize| -> i64 {
        b.get(from..(from + len).min(b.len()))
            .map(|d| d.iter().fold(0i64, |n, c| n * 10 + i64::from(c - b'0')))
            .unwrap_or(0)
    };
    let month = num(5, 2) as u32;
    if !(1..=12).contains(&month) {
        return None;
    }
    let secs = crate::clock::Civil {
        year: num(0, 4),
        month,
        day: num(8, 2) as u32,
        hour: num(11, 2) as u32,
        minute: num(14, 2) as u32,
        second: num(17, 2) as u32,
    }
    .to_unix();
    let frac = b.get(20..).unwrap_or(&[]);
    let mut ms = 0i64;
    for (i, c) in frac.iter().enumerate() {
        ms += i64::from(c - b'0') * [100, 10, 1][i];
    }
    Some(secs * 1000 + ms)
}

/// How a row's upstream index and rule become words.
pub struct Labels {
    /// The configured upstreams, by index.
    pub upstreams: Vec<String>,
    pub rule: Box<dyn Fn(RuleRef) -> String + Send + Sync>,
    /// A client address's device name (`names`); none outside the server.
    pub client_name: ClientNamer,
}

/// A client address (as the log writes it) to its device name.
pub type ClientNamer = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl Labels {
    /// Without the filter snapshot: the rule's kind and number.
    pub fn plain(upstreams: Vec<String>) -> Labels {
        Labels {
            upstreams,
            rule: Box::new(plain_rule),
            client_name: Box::new(|_| None),
        }
    }

    pub fn upstream(&self, i: u8) -> String {
        self.upstreams
            .get(usize::from(i))
            .cloned()
            .unwrap_or_else(|| format!("#{i}"))
    }
}

/// A rule in the words `filter::Filter::describe` uses, numbered instead
/// of named.
pub fn plain_rule(r: RuleRef) -> String {
    let what = match r.kind {
        0 => "no rule".to_string(),
        1 => format!("list #{}", r.id),
        2 => format!("deny rule #{}", r.id),
        3 => format!("deny regex #{}", r.id),
        4 => "special name".to_string(),
        5 => "DNS rebinding protection: private address in a public answer".to_string(),
        6 => "private name kept local".to_string(),
        k => format!("unknown reason {k}"),
    };
    if r.cname_depth > 0 {
        format!("{what}, via CNAME target #{}", r.cname_depth)
    } else {
        what
    }
}

/// One row, every field in words.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RowWords {
    pub time: String,
    pub time_ms: i64,
    pub client: String,
    pub domain: String,
    #[serde(rename = "type")]
    pub qtype: String,
    pub rcode: u8,
    pub status: String,
    pub upstream: Option<String>,
    pub latency_us: u32,
    pub rule: Option<String>,
    /// Last, so a script reading the columns by position reads the others
    /// where they were.
    pub client_name: Option<String>,
}

/// Names seen in a walk, by id. Cleared when full, so a walk over any
/// number of rows holds at most `NAME_CACHE` names.
const NAME_CACHE: usize = 50_000;

#[derive(Default)]
pub struct Namer {
    domains: HashMap<i64, String>,
    clients: HashMap<i64, String>,
}

const DOMAIN_NAME_SQL: &str = "SELECT name FROM main.domains WHERE id = ?1";
const CLIENT_ADDR_SQL: &str = "SELECT addr FROM main.clients WHERE id = ?1";

fn name_of(
    c: &Connection,
    cache: &mut HashMap<i64, String>,
    sql: &str,
    id: i64,
) -> rusqlite::Result<String> {
    if let Some(n) = cache.get(&id) {
        return Ok(n.clone());
    }
    if cache.len() >= NAME_CACHE {
        cache.clear();
    }
    // A name retention removed under a stored row: shown as its id.
    let name = c
        .prepare_cached(sql)?
        .query_row([id], |r| r.get::<_, String>(0))
        .optional()?
        .unwrap_or_else(|| format!("#{id}"));
    cache.insert(id, name.clone());
    Ok(name)
}

impl Namer {
    pub fn domain(&mut self, c: &Connection, id: i64) -> rusqlite::Result<String> {
        name_of(c, &mut self.domains, DOMAIN_NAME_SQL, id)
    }

    pub fn client(&mut self, c: &Connection, id: i64) -> rusqlite::Result<String> {
        name_of(c, &mut self.clients, CLIENT_ADDR_SQL, id)
    }

    pub(super) fn words(
        &mut self,
        c: &Connection,
        r: &Row,
        labels: &Labels,
    ) -> rusqlite::Result<RowWords> {
        let time_ms = super::ms_of(r.key);
        let client = self.client(c, r.client)?;
        Ok(RowWords {
            time: sql_time(time_ms),
            time_ms,
            client_name: (labels.client_name)(&client),
            client,
            domain: self.domain(c, r.domain)?,
            qtype: qtype_name(r.qtype),
            rcode: r.rcode,
            status: status_word(r.status).to_string(),
            upstream: r.upstream.map(|u| labels.upstream(u)),
            latency_us: r.latency_us,
            rule: r.reason.map(|x| (labels.rule)(RuleRef::unpack(x))),
        })
    }
}

pub fn status_word(s: u8) -> &'static str {
    Source::from_u8(s).unwrap_or(Source::Failed).as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_sqlite_prints_them_and_parse_back() {
        let c = Connection::open_in_memory().unwrap();
        for ms in [0i64, 1_704_067_200_123, 1_796_000_000_999, 951_782_400_000] {
            let want: String = c
                .query_row(
                    "SELECT strftime('%Y-%m-%d %H:%M:%f', ?1 / 1000.0, 'unixepoch')",
                    [ms],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(sql_time(ms), want, "{ms}");
            assert_eq!(parse_sql_time(&want), Some(ms));
            assert_eq!(parse_sql_time(&want[..19]), Some(ms / 1000 * 1000));
            assert_eq!(
                parse_sql_time(&want[..10]),
                Some(ms / 86_400_000 * 86_400_000)
            );
        }
        for bad in [
            "2026-12-06T10:00:00",
            "yesterday",
            "2026-12-06 10:00:00Z",
            "2026",
            "2026-12-06 1",
        ] {
            assert_eq!(parse_sql_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn record_types_and_statuses_round_trip() {
        for (code, name) in QTYPES {
            assert_eq!(qtype_name(*code), *name);
            assert_eq!(qtype_code(name), Some(*code));
        }
        assert_eq!(qtype_name(99), "TYPE99");
        assert_eq!(qtype_code("TYPE99"), Some(99));
        assert_eq!(qtype_code("BOGUS"), None);
        for s in 0..=6 {
            let word = status_word(s);
            assert_eq!(source_of(word).map(|x| x as u8), Some(s));
        }
    }
}
