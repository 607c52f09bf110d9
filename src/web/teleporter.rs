//! Import of a Pi-hole Teleporter archive: what a Pi-hole user already set
//! up, brought over in one upload.
//!
//! Pi-hole v5 writes a `.tar.gz` of JSON files (adlist.json,
//! whitelist/blacklist .exact/.regex.json, custom.list, the CNAME dnsmasq
//! file, setupVars.conf); v6 writes a `.zip` with `gravity.db` (SQLite) and
//! `pihole.toml`. We take adlists, allow/deny domains and regexes, local DNS
//! and CNAME records and upstreams; everything else is ignored and counted.
//! Tar and zip are read by hand here (both are simple) to avoid two crates.

use crate::config::{Config, FilterList, LocalRecord, Upstream};
use crate::syntax::{DomainName, Rdata, RecordType, RuleEntry};
use serde::Serialize;
use std::io::Read;
use std::path::Path;

/// Decompressed bytes we accept from one archive, counted as they are
/// copied, not as the archive declares them (a bomb stops here).
const MAX_UNPACKED: u64 = 32 << 20;
/// Files in one archive (Pi-hole writes about a dozen).
const MAX_ENTRIES: usize = 256;
/// Lists, rules, records and upstreams taken from one archive.
const MAX_ROWS: usize = 100_000;

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Imported {
    pub lists: Vec<(String, bool)>,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub records: Vec<(String, String, String)>,
    pub upstreams: Vec<String>,
    /// Entries that could not be used, with why.
    pub skipped: Vec<String>,
}

impl Imported {
    pub fn summary(&self) -> String {
        format!(
            "{} lists, {} allow and {} deny rules, {} local records, {} upstreams imported; {} skipped",
            self.lists.len(),
            self.allow.len(),
            self.deny.len(),
            self.records.len(),
            self.upstreams.len(),
            self.skipped.len()
        )
    }
}

type Files = Vec<(String, Vec<u8>)>;

fn too_big() -> String {
    format!("archive: more than {} MiB unpacked", MAX_UNPACKED >> 20)
}

fn too_many() -> String {
    format!("archive: more than {MAX_ENTRIES} files")
}

/// Reads a Teleporter archive (tar.gz or zip) into what it holds.
pub fn read(archive: &[u8], scratch_dir: &Path) -> Result<Imported, String> {
    let files = if archive.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::GzDecoder::new(archive);
        let mut tar = Vec::new();
        gz.take(MAX_UNPACKED + 1)
            .read_to_end(&mut tar)
            .map_err(|e| format!("archive: not a valid .tar.gz: {e}"))?;
        if tar.len() as u64 > MAX_UNPACKED {
            return Err(too_big());
        }
        untar(&tar)?
    } else if archive.starts_with(b"PK\x03\x04") {
        unzip(archive)?
    } else {
        return Err("archive: not a Pi-hole Teleporter file (.tar.gz or .zip)".into());
    };
    let mut out = Imported::default();
    for (name, data) in &files {
        let base = name.rsplit('/').next().unwrap_or(name);
        let text = || String::from_utf8_lossy(data);
        match base {
            "adlist.json" => json_adlists(data, &mut out),
            "whitelist.exact.json" => json_domains(data, Some(0), &mut out),
            "blacklist.exact.json" => json_domains(data, Some(1), &mut out),
            "whitelist.regex.json" => json_domains(data, Some(2), &mut out),
            "blacklist.regex.json" => json_domains(data, Some(3), &mut out),
            "domainlist.json" => json_domains(data, None, &mut out),
            "custom.list" => {
                for l in text().lines() {
                    host_line(l, &mut out)
                }
            }
            "05-pihole-custom-cname.conf" => {
                for l in text().lines() {
                    if let Some(v) = l.trim().strip_prefix("cname=") {
                        cname(v, &mut out)
                    }
                }
            }
            "setupVars.conf" => {
                for l in text().lines() {
                    if let Some((k, v)) = l.split_once('=')
                        && k.starts_with("PIHOLE_DNS_")
                    {
                        upstream(v, &mut out)
                    }
                }
            }
            "pihole.toml" => pihole_toml(&text(), &mut out),
            "gravity.db" => gravity_db(data, scratch_dir, &mut out)?,
            _ => {}
        }
    }
    let rows = out.lists.len()
        + out.allow.len()
        + out.deny.len()
        + out.records.len()
        + out.upstreams.len()
        + out.skipped.len();
    if rows > MAX_ROWS {
        return Err(format!("archive: more than {MAX_ROWS} entries"));
    }
    if out.lists.is_empty()
        && out.allow.is_empty()
        && out.deny.is_empty()
        && out.records.is_empty()
        && out.upstreams.is_empty()
    {
        return Err(
            "archive: found nothing to import (no adlists, domains, records or upstreams)".into(),
        );
    }
    Ok(out)
}

/// Adds what was imported to `cfg`; upstreams replace the current ones.
pub fn merge(cfg: &mut Config, imp: &Imported) {
    for (i, (url, enabled)) in imp.lists.iter().enumerate() {
        if cfg
            .filter
            .lists
            .iter()
            .any(|l| l.url.as_deref() == Some(url))
        {
            continue;
        }
        let host = url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or("list");
        let mut name = format!("pihole-{host}");
        if cfg.filter.lists.iter().any(|l| l.name == name) {
            name = format!("pihole-{host}-{i}");
        }
        cfg.filter.lists.push(FilterList {
            name,
            path: None,
            url: Some(url.clone()),
            enabled: *enabled,
            match_mode: None,
            groups: Vec::new(),
        });
    }
    for a in imp.allow.iter().filter_map(|a| a.parse::<RuleEntry>().ok()) {
        if !cfg.filter.allow.contains(&a) {
            cfg.filter.allow.push(a);
        }
    }
    for d in imp.deny.iter().filter_map(|d| d.parse::<RuleEntry>().ok()) {
        if !cfg.filter.deny.contains(&d) {
            cfg.filter.deny.push(d);
        }
    }
    for (name, rtype, value) in &imp.records {
        let rtype = if rtype == "CNAME" {
            RecordType::CNAME
        } else if rtype == "AAAA" {
            RecordType::AAAA
        } else {
            RecordType::A
        };
        let (Ok(name), Ok(value)) = (name.parse::<DomainName>(), Rdata::parse(rtype, value)) else {
            continue;
        };
        let rec = LocalRecord {
            name,
            rtype,
            value,
            ttl: 300,
        };
        if !cfg.local.records.contains(&rec) {
            cfg.local.records.push(rec);
        }
    }
    let ups: Vec<Upstream> = imp
        .upstreams
        .iter()
        .filter_map(|u| u.parse().ok())
        .collect();
    if !ups.is_empty() {
        cfg.dns.upstreams = ups;
    }
}

fn json_adlists(data: &[u8], out: &mut Imported) {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice(data) else {
        out.skipped.push("adlist.json: not a JSON array".into());
        return;
    };
    for it in items {
        match it.get("address").and_then(|a| a.as_str()) {
            Some(url) => {
                let enabled = it.get("enabled").and_then(|e| e.as_i64()).unwrap_or(1) != 0;
                adlist(url, enabled, out);
            }
            None => out.skipped.push("adlist without an address".into()),
        }
    }
}

/// Takes a list URL the config accepts (https, a host that parses);
/// anything else is skipped with why, instead of failing the whole import
/// when the config is saved (found by fuzz/fuzz_targets/teleporter.rs).
fn adlist(url: &str, enabled: bool, out: &mut Imported) {
    let checked = reqwest::Url::parse(url)
        .map_err(|e| e.to_string())
        .and_then(|u| crate::config::list_url_ok(&u));
    match checked {
        Ok(()) => out.lists.push((url.to_string(), enabled)),
        Err(why) => out.skipped.push(format!("adlist '{url}': {why}")),
    }
}

/// Pi-hole's domainlist types: 0 exact allow, 1 exact deny, 2 regex allow,
/// 3 regex deny.
fn domain_entry(domain: &str, kind: i64, enabled: bool, out: &mut Imported) {
    if !enabled {
        out.skipped.push(format!("{domain}: disabled in Pi-hole"));
        return;
    }
    let rule = match kind {
        0 | 1 => match domain.parse::<DomainName>() {
            Ok(d) => d.0,
            Err(e) => {
                out.skipped.push(e);
                return;
            }
        },
        2 | 3 => {
            if let Err(e) = regex::Regex::new(domain) {
                out.skipped.push(format!("regex {domain}: {e}"));
                return;
            }
            format!("/{domain}/")
        }
        _ => {
            out.skipped.push(format!("{domain}: unknown type {kind}"));
            return;
        }
    };
    if kind % 2 == 0 {
        out.allow.push(rule)
    } else {
        out.deny.push(rule)
    }
}

fn json_domains(data: &[u8], kind: Option<i64>, out: &mut Imported) {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice(data) else {
        out.skipped.push("domain list: not a JSON array".into());
        return;
    };
    for it in items {
        let Some(domain) = it.get("domain").and_then(|d| d.as_str()) else {
            continue;
        };
        let k = kind
            .or_else(|| it.get("type").and_then(|t| t.as_i64()))
            .unwrap_or(-1);
        let enabled = it.get("enabled").and_then(|e| e.as_i64()).unwrap_or(1) != 0;
        domain_entry(domain, k, enabled, out);
    }
}

fn host_line(line: &str, out: &mut Imported) {
    let mut parts = line.split_whitespace();
    let (Some(ip), Some(name)) = (parts.next(), parts.next()) else {
        return;
    };
    if ip.starts_with('#') {
        return;
    }
    match ip.parse::<std::net::IpAddr>() {
        Ok(addr) => out.records.push((
            name.to_ascii_lowercase(),
            if addr.is_ipv4() { "A" } else { "AAAA" }.into(),
            ip.to_string(),
        )),
        Err(_) => out
            .skipped
            .push(format!("local record '{line}': not an IP")),
    }
}

fn cname(v: &str, out: &mut Imported) {
    // "alias[,alias2],target[,ttl]": the last name is the target.
    let names: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.parse::<u32>().is_err())
        .collect();
    if names.len() < 2 {
        out.skipped
            .push(format!("cname '{v}': needs an alias and a target"));
        return;
    }
    let target = names[names.len() - 1];
    for alias in &names[..names.len() - 1] {
        out.records.push((
            alias.to_ascii_lowercase(),
            "CNAME".into(),
            target.to_string(),
        ));
    }
}

/// Pi-hole writes "1.1.1.1", "127.0.0.1#5335" or "::1#5335".
fn upstream(v: &str, out: &mut Imported) {
    let v = v.trim();
    if v.is_empty() {
        return;
    }
    let s = match v.split_once('#') {
        Some((ip, port)) if ip.contains(':') => format!("[{ip}]:{port}"),
        Some((ip, port)) => format!("{ip}:{port}"),
        None => v.to_string(),
    };
    match s.parse::<Upstream>() {
        Ok(u) => out.upstreams.push(u.to_string()),
        Err(e) => out.skipped.push(format!("upstream {e}")),
    }
}

fn pihole_toml(text: &str, out: &mut Imported) {
    let Ok(doc) = text.parse::<toml::Table>() else {
        out.skipped.push("pihole.toml: not valid TOML".into());
        return;
    };
    let Some(dns) = doc.get("dns").and_then(|d| d.as_table()) else {
        return;
    };
    let strings = |key: &str| -> Vec<String> {
        dns.get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    for u in strings("upstreams") {
        upstream(&u, out);
    }
    for h in strings("hosts") {
        host_line(&h, out);
    }
    for c in strings("cnameRecords") {
        cname(&c, out);
    }
}

fn gravity_db(data: &[u8], scratch_dir: &Path, out: &mut Imported) -> Result<(), String> {
    let path = scratch_dir.join(format!("teleporter-{}.db", super::auth::random_hex(6)));
    std::fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    let result = (|| -> rusqlite::Result<()> {
        let db = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        // One row past the cap is enough to know the archive is too big.
        let limit = MAX_ROWS + 1;
        let mut st = db.prepare(&format!(
            "SELECT address, enabled FROM adlist LIMIT {limit}"
        ))?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for r in rows {
            let (url, enabled) = r?;
            adlist(&url, enabled != 0, out);
        }
        let mut st = db.prepare(&format!(
            "SELECT domain, type, enabled FROM domainlist LIMIT {limit}"
        ))?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for r in rows {
            let (d, t, e) = r?;
            domain_entry(&d, t, e != 0, out);
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| format!("gravity.db: {e}"))
}

fn untar(tar: &[u8]) -> Result<Files, String> {
    let mut files = Vec::new();
    let mut pos = 0;
    let mut long_name: Option<String> = None;
    while pos + 512 <= tar.len() {
        let h = &tar[pos..pos + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let cstr = |b: &[u8]| {
            let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        };
        let size_text = cstr(&h[124..136]);
        let size = u64::from_str_radix(size_text.trim(), 8)
            .map_err(|_| format!("archive: bad tar header at byte {pos}"))?
            as usize;
        let body_start = pos + 512;
        let body_end = body_start
            .checked_add(size)
            .filter(|e| *e <= tar.len())
            .ok_or("archive: truncated tar file")?;
        let body = &tar[body_start..body_end];
        let mut name = cstr(&h[0..100]);
        if &h[257..262] == b"ustar" {
            let prefix = cstr(&h[345..500]);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        match h[156] {
            b'L' => long_name = Some(cstr(body)),
            b'0' | 0 => {
                if files.len() >= MAX_ENTRIES {
                    return Err(too_many());
                }
                files.push((long_name.take().unwrap_or(name), body.to_vec()))
            }
            _ => long_name = None,
        }
        pos = body_start + size.div_ceil(512) * 512;
    }
    Ok(files)
}

fn u16le(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}
fn u32le(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

fn unzip(zip: &[u8]) -> Result<Files, String> {
    let bad = || "archive: damaged zip file".to_string();
    let eocd = (0..zip.len().saturating_sub(21))
        .rev()
        .take(65_557)
        .find(|&i| zip[i..].starts_with(b"PK\x05\x06"))
        .ok_or_else(bad)?;
    let count = u16le(zip, eocd + 10).ok_or_else(bad)?;
    if count > MAX_ENTRIES {
        return Err(too_many());
    }
    let mut at = u32le(zip, eocd + 16).ok_or_else(bad)?;
    let mut files = Vec::new();
    let mut unpacked = 0u64;
    for _ in 0..count {
        if !zip.get(at..).is_some_and(|s| s.starts_with(b"PK\x01\x02")) {
            return Err(bad());
        }
        let method = u16le(zip, at + 10).ok_or_else(bad)?;
        let csize = u32le(zip, at + 20).ok_or_else(bad)?;
        let usize_ = u32le(zip, at + 24).ok_or_else(bad)? as u64;
        let nlen = u16le(zip, at + 28).ok_or_else(bad)?;
        let elen = u16le(zip, at + 30).ok_or_else(bad)?;
        let clen = u16le(zip, at + 32).ok_or_else(bad)?;
        let local = u32le(zip, at + 42).ok_or_else(bad)?;
        let name =
            String::from_utf8_lossy(zip.get(at + 46..at + 46 + nlen).ok_or_else(bad)?).into_owned();
        at += 46 + nlen + elen + clen;
        if name.ends_with('/') {
            continue;
        }
        let lnlen = u16le(zip, local + 26).ok_or_else(bad)?;
        let lelen = u16le(zip, local + 28).ok_or_else(bad)?;
        let start = local + 30 + lnlen + lelen;
        let data = zip.get(start..start + csize).ok_or_else(bad)?;
        // What may still be copied: never more than the entry declares,
        // nor than is left of the archive's budget; one byte more shows
        // the entry lied or the budget is spent.
        let room = usize_.min(MAX_UNPACKED - unpacked);
        let bytes = match method {
            0 => data
                .get(..(room as usize + 1).min(data.len()))
                .unwrap_or(data)
                .to_vec(),
            8 => {
                let mut v = Vec::new();
                flate2::read::DeflateDecoder::new(data)
                    .take(room + 1)
                    .read_to_end(&mut v)
                    .map_err(|e| format!("archive: {name}: {e}"))?;
                v
            }
            m => {
                return Err(format!(
                    "archive: {name}: compression method {m} not supported"
                ));
            }
        };
        if bytes.len() as u64 > usize_ {
            return Err(format!(
                "archive: {name}: holds more than the {usize_} bytes it declares"
            ));
        }
        if bytes.len() as u64 > room {
            return Err(too_big());
        }
        unpacked += bytes.len() as u64;
        files.push((name, bytes));
    }
    Ok(files)
}

/// Builders for test archives, used by the unit tests and tests/web_system.rs.
pub mod build {
    use std::io::Write;

    /// A .tar.gz holding `files`.
    pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = Vec::new();
        for (name, data) in files {
            let mut h = [0u8; 512];
            h[..name.len()].copy_from_slice(name.as_bytes());
            h[100..107].copy_from_slice(b"0000644");
            let size = format!("{:011o}", data.len());
            h[124..135].copy_from_slice(size.as_bytes());
            h[136..147].copy_from_slice(b"00000000000");
            h[156] = b'0';
            h[257..263].copy_from_slice(b"ustar\0");
            h[148..156].copy_from_slice(b"        ");
            let sum: u32 = h.iter().map(|b| *b as u32).sum();
            h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
            tar.extend_from_slice(&h);
            tar.extend_from_slice(data);
            tar.resize(tar.len().div_ceil(512) * 512, 0);
        }
        tar.extend_from_slice(&[0u8; 1024]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    /// A .zip holding `files`, deflate-compressed.
    pub fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in files {
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data).unwrap();
            let comp = enc.finish().unwrap();
            let crc = crc32fast::hash(data);
            let offset = out.len() as u32;
            let common = |v: &mut Vec<u8>| {
                v.extend_from_slice(&20u16.to_le_bytes());
                v.extend_from_slice(&0u16.to_le_bytes());
                v.extend_from_slice(&8u16.to_le_bytes());
                v.extend_from_slice(&[0; 4]);
                v.extend_from_slice(&crc.to_le_bytes());
                v.extend_from_slice(&(comp.len() as u32).to_le_bytes());
                v.extend_from_slice(&(data.len() as u32).to_le_bytes());
                v.extend_from_slice(&(name.len() as u16).to_le_bytes());
                v.extend_from_slice(&0u16.to_le_bytes());
            };
            out.extend_from_slice(b"PK\x03\x04");
            common(&mut out);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&comp);
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&20u16.to_le_bytes());
            common(&mut central);
            central.extend_from_slice(&[0; 10]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_tar_gz() {
        let archive = build::tar_gz(&[
            (
                "adlist.json",
                br#"[{"id":1,"address":"https://example.org/hosts.txt","enabled":1},{"address":"file:///x","enabled":1}]"#,
            ),
            ("whitelist.exact.json", br#"[{"domain":"good.example","enabled":1}]"#),
            ("blacklist.exact.json", br#"[{"domain":"bad.example","enabled":1},{"domain":"off.example","enabled":0}]"#),
            ("blacklist.regex.json", br#"[{"domain":"^ads?[0-9]*\\.","enabled":1},{"domain":"(","enabled":1}]"#),
            ("custom.list", b"192.168.1.10 nas.lan\nfd00::10 nas6.lan\n"),
            ("dnsmasq.d/05-pihole-custom-cname.conf", b"cname=media.lan,nas.lan\n"),
            ("setupVars.conf", b"PIHOLE_DNS_1=9.9.9.9\nPIHOLE_DNS_2=127.0.0.1#5335\nWEBPASSWORD=x\n"),
        ]);
        let imp = read(&archive, Path::new("/tmp")).unwrap();
        assert_eq!(
            imp.lists,
            vec![("https://example.org/hosts.txt".to_string(), true)]
        );
        assert_eq!(imp.allow, vec!["good.example"]);
        assert_eq!(imp.deny, vec!["bad.example", "/^ads?[0-9]*\\./"]);
        assert_eq!(imp.records.len(), 3);
        assert_eq!(imp.upstreams, vec!["9.9.9.9:53", "127.0.0.1:5335"]);
        assert_eq!(imp.skipped.len(), 3, "{:?}", imp.skipped);
        let mut cfg = Config::default();
        merge(&mut cfg, &imp);
        cfg.validate().unwrap();
        assert_eq!(cfg.filter.lists[0].name, "pihole-example.org");
        assert_eq!(cfg.local.records.len(), 3);
    }

    #[test]
    fn v6_zip_with_gravity_db() {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("g.db");
        let db = rusqlite::Connection::open(&db_path).unwrap();
        db.execute_batch(
            "CREATE TABLE adlist (id INTEGER PRIMARY KEY, address TEXT, enabled INTEGER);
             CREATE TABLE domainlist (id INTEGER PRIMARY KEY, type INTEGER, domain TEXT, enabled INTEGER);
             INSERT INTO adlist (address, enabled) VALUES ('https://lists.example/a.txt', 1), ('https://lists.example/b.txt', 0);
             INSERT INTO domainlist (type, domain, enabled) VALUES (0, 'ok.example', 1), (1, 'no.example', 1), (2, '^safe[0-9]+\\.example$', 1);",
        )
        .unwrap();
        drop(db);
        let gravity = std::fs::read(&db_path).unwrap();
        let toml = br#"[dns]
upstreams = ["1.1.1.1", "8.8.8.8"]
hosts = ["192.168.1.20 printer.lan"]
cnameRecords = ["scan.lan,printer.lan"]
"#;
        let archive = build::zip(&[
            ("etc/pihole/gravity.db", &gravity),
            ("etc/pihole/pihole.toml", toml),
        ]);
        let imp = read(&archive, dir.path()).unwrap();
        assert_eq!(imp.lists.len(), 2);
        assert_eq!(imp.allow, vec!["ok.example", "/^safe[0-9]+\\.example$/"]);
        assert_eq!(imp.deny, vec!["no.example"]);
        assert_eq!(imp.records.len(), 2);
        assert_eq!(imp.upstreams, vec!["1.1.1.1:53", "8.8.8.8:53"]);
        // The scratch copy of gravity.db is gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn entries_are_counted_by_what_they_unpack_to() {
        let big = "0.0.0.0 filler.example\n".repeat(40_000);
        let mut z = build::zip(&[("adlist.json", big.as_bytes())]);
        // Make the central directory claim 10 bytes unpacked.
        let cd = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        z[cd + 24..cd + 28].copy_from_slice(&10u32.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let e = read(&z, dir.path()).unwrap_err();
        assert!(e.contains("more than the 10 bytes it declares"), "{e}");
        // A bomb: declared honestly, but past the archive's budget.
        let bomb = vec![b'a'; (MAX_UNPACKED + 1) as usize];
        let e = read(&build::zip(&[("custom.list", &bomb)]), dir.path()).unwrap_err();
        assert!(e.contains("MiB unpacked"), "{e}");
        let many: Vec<(String, Vec<u8>)> = (0..=MAX_ENTRIES)
            .map(|i| (format!("f{i}"), vec![]))
            .collect();
        let refs: Vec<(&str, &[u8])> = many.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
        let e = read(&build::zip(&refs), dir.path()).unwrap_err();
        assert!(e.contains("files"), "{e}");
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(
            read(b"hello", Path::new("/tmp"))
                .unwrap_err()
                .contains("not a Pi-hole")
        );
        let empty = build::tar_gz(&[("README", b"nothing here")]);
        assert!(
            read(&empty, Path::new("/tmp"))
                .unwrap_err()
                .contains("nothing to import")
        );
        let mut cut = build::zip(&[("pihole.toml", b"[dns]\nupstreams=[\"1.1.1.1\"]")]);
        cut.truncate(cut.len() - 30);
        assert!(read(&cut, Path::new("/tmp")).is_err());
    }
}
