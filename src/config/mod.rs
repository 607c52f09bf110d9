//! The TOML configuration: schema, embedded defaults and validation.
//!
//! Every field is parsed into its final type while the TOML is read, so a bad
//! value is reported with the key and line it came from (`toml` attaches the
//! span). The user's own syntax (domain names, allow/deny entries, record
//! values) is parsed by `syntax`, the same parser the web API uses. Unknown
//! keys are ignored with a warning naming their path, and kept when the file
//! is saved again (`unknown`: a newer build's config on an older build).
//! Not for: applying a config to a running server (see
//! `app`) or saving it (see `atomic_file`).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod dhcp;
mod names;
mod unknown;
mod update;
mod values;

use crate::syntax::rule::parse_entries;
use crate::syntax::{DomainName, Rdata, RecordType, RuleEntry};
pub use dhcp::{DhcpConfig, Mac, StaticLease, check_label};
pub use names::NamesConfig;
pub use update::{SlotPaths, UpdateConfig};
pub use values::{BlockedResponse, Cidr, ClientSpec, Dur, Upstream, canonical_ip, parse_mac};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Where state lives: query log, list copies, filter snapshot, saved config.
    pub data_dir: PathBuf,
    pub dns: DnsConfig,
    pub cache: CacheConfig,
    pub local: LocalConfig,
    pub forward: Vec<ForwardZone>,
    pub filter: FilterConfig,
    pub querylog: QueryLogConfig,
    pub web: WebConfig,
    pub update: UpdateConfig,
    pub names: NamesConfig,
    pub dhcp: DhcpConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./glory-hole-data"),
            dns: DnsConfig::default(),
            cache: CacheConfig::default(),
            local: LocalConfig::default(),
            forward: Vec::new(),
            filter: FilterConfig::default(),
            querylog: QueryLogConfig::default(),
            web: WebConfig::default(),
            update: UpdateConfig::default(),
            names: NamesConfig::default(),
            dhcp: DhcpConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct DnsConfig {
    /// Each address gets a UDP and a TCP listener.
    pub listen: Vec<SocketAddr>,
    pub upstreams: Vec<Upstream>,
    /// Clients outside these networks get REFUSED.
    pub allow_clients: Vec<Cidr>,
    /// Also serve the prefixes of the box's own global IPv6 addresses (the
    /// LAN's prefix from the router), read from the interfaces at start and
    /// at every config reload (`netif`).
    pub allow_lan_prefixes: bool,
    /// Largest UDP answer we send, whatever the client advertises (EDNS).
    pub edns_udp_size: u16,
    /// Deadline for one client query, failover included.
    pub query_timeout: Dur,
    /// Per-attempt timeout against one upstream before trying the next.
    pub upstream_timeout: Dur,
    pub tcp_idle_timeout: Dur,
    pub tcp_max_connections: usize,
    /// TCP connections one client address may hold (within the above).
    pub tcp_client_connections: u32,
    /// Queries one TCP connection may have unanswered; past that the
    /// connection is not read until the client reads an answer.
    pub tcp_queries_per_connection: usize,
    /// A TCP answer the client has not taken within this closes the
    /// connection.
    pub tcp_write_timeout: Dur,
    /// Queries a second per client address; 0 = no limit. Over it: REFUSED.
    pub rate_limit: u32,
    /// Queries a client may send at once above `rate_limit`.
    pub rate_limit_burst: u32,
    /// Cache misses one client address may have waiting for upstreams
    /// at once; more are answered SERVFAIL at once.
    pub client_upstream_queries: u32,
    /// UDP sockets (SO_REUSEPORT) per listen address; 0 = one per two cores.
    pub udp_sockets: usize,
    /// Answer RFC 6303 private reverse zones and lan/home.arpa/local/internal
    /// with NXDOMAIN locally unless a [[forward]] claims them.
    pub block_private_names: bool,
    /// Refresh a cached answer asked for in the last tenth of its TTL in
    /// the background, so popular names never miss (`dns::prefetch`).
    pub prefetch: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            // Both loopbacks; `[::1]` is skipped with a warning on a
            // machine without IPv6 (`dns::server`).
            listen: vec![
                "127.0.0.1:1053".parse().unwrap(),
                "[::1]:1053".parse().unwrap(),
            ],
            upstreams: vec!["1.1.1.1:53".parse().unwrap(), "9.9.9.9:53".parse().unwrap()],
            allow_clients: default_allow_clients(),
            allow_lan_prefixes: true,
            edns_udp_size: 1232,
            query_timeout: Dur(Duration::from_secs(4)),
            upstream_timeout: Dur(Duration::from_millis(1500)),
            tcp_idle_timeout: Dur(Duration::from_secs(10)),
            tcp_max_connections: 256,
            tcp_client_connections: 8,
            tcp_queries_per_connection: 16,
            tcp_write_timeout: Dur(Duration::from_secs(10)),
            rate_limit: 300,
            rate_limit_burst: 1000,
            client_upstream_queries: 64,
            udp_sockets: 0,
            block_private_names: true,
            prefetch: true,
        }
    }
}

impl DnsConfig {
    /// The abuse limits: each must let a well-behaved client through.
    fn check_limits(&self) -> Result<(), String> {
        let at_least_one = [
            (
                "tcp_client_connections",
                u64::from(self.tcp_client_connections),
            ),
            (
                "tcp_queries_per_connection",
                self.tcp_queries_per_connection as u64,
            ),
            (
                "client_upstream_queries",
                u64::from(self.client_upstream_queries),
            ),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(format!("dns.{key}: must be at least 1"));
            }
        }
        if self.rate_limit > 0 && self.rate_limit_burst == 0 {
            return Err(
                "dns.rate_limit_burst: must be at least 1 while dns.rate_limit is on (0 turns the limit off)"
                    .into(),
            );
        }
        if self.tcp_write_timeout.0.is_zero() {
            return Err("dns.tcp_write_timeout: must be longer than 0s".into());
        }
        Ok(())
    }
}

/// Loopback, RFC 1918, CGNAT, link-local, ULA.
pub fn default_allow_clients() -> Vec<Cidr> {
    [
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct CacheConfig {
    /// Hard bound on the bytes the cache holds (entries, keys, bookkeeping).
    pub memory_mib: u32,
    pub min_ttl: u32,
    pub max_ttl: u32,
    /// Upper bound for negative answers (RFC 2308 uses the SOA minimum).
    pub negative_max_ttl: u32,
    /// SERVFAIL is remembered this long at most.
    pub servfail_ttl: u32,
    /// RFC 8767: answer from expired entries when every upstream fails.
    pub serve_stale: bool,
    /// How long past expiry an entry may still be served stale.
    pub stale_max_age: u32,
    /// TTL put on a stale answer.
    pub stale_answer_ttl: u32,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory_mib: 16,
            min_ttl: 0,
            max_ttl: 86_400,
            negative_max_ttl: 3_600,
            servfail_ttl: 5,
            serve_stale: true,
            stale_max_age: 86_400,
            stale_answer_ttl: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LocalConfig {
    pub records: Vec<LocalRecord>,
}

/// One `[[local.records]]` entry; the value is checked against the type
/// while the file is read.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "LocalRecordText")]
pub struct LocalRecord {
    pub name: DomainName,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    /// A: "192.168.1.10"; CNAME/PTR: a name; TXT: text; MX: "10 mail.lan";
    /// SRV: "priority weight port target".
    pub value: Rdata,
    pub ttl: u32,
}

/// A record as written, before its value is checked against its type.
#[derive(Deserialize)]
struct LocalRecordText {
    name: DomainName,
    #[serde(rename = "type")]
    rtype: RecordType,
    value: String,
    #[serde(default = "default_local_ttl")]
    ttl: u32,
}

impl TryFrom<LocalRecordText> for LocalRecord {
    type Error = String;
    fn try_from(r: LocalRecordText) -> Result<LocalRecord, String> {
        let value = Rdata::parse(r.rtype, &r.value)
            .map_err(|e| format!("local record '{}' ({:?}): value: {e}", r.name, r.rtype))?;
        Ok(LocalRecord {
            name: r.name,
            rtype: r.rtype,
            value,
            ttl: r.ttl,
        })
    }
}

fn default_local_ttl() -> u32 {
    300
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ForwardZone {
    pub domains: Vec<DomainName>,
    pub upstreams: Vec<Upstream>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct FilterConfig {
    pub enabled: bool,
    pub blocked_response: BlockedResponse,
    pub blocked_ttl: u32,
    pub update_interval: Dur,
    /// Download limits for list updates.
    pub download_timeout: Dur,
    pub download_max_mib: u32,
    #[serde(deserialize_with = "filter_allow")]
    pub allow: Vec<RuleEntry>,
    #[serde(deserialize_with = "filter_deny")]
    pub deny: Vec<RuleEntry>,
    pub lists: Vec<FilterList>,
    pub groups: Vec<ClientGroup>,
    /// Firefox's DoH canary `use-application-dns.net` gets NXDOMAIN.
    pub block_doh_canary: bool,
    /// `mask.icloud.com` and `mask-h2.icloud.com` get NXDOMAIN.
    pub block_icloud_private_relay: bool,
    /// Drop upstream answers mapping public names to private addresses.
    pub rebind_protection: bool,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            enabled: true,
            blocked_response: BlockedResponse::Null,
            blocked_ttl: 2,
            update_interval: Dur(Duration::from_secs(24 * 3600)),
            download_timeout: Dur(Duration::from_secs(60)),
            download_max_mib: 64,
            allow: Vec::new(),
            deny: Vec::new(),
            lists: Vec::new(),
            groups: Vec::new(),
            block_doh_canary: true,
            block_icloud_private_relay: true,
            rebind_protection: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct FilterList {
    pub name: String,
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Override the format's own semantics: "exact" or "subdomains".
    #[serde(default, rename = "match")]
    pub match_mode: Option<MatchMode>,
    /// Groups this list applies to; empty = the default group.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Rules of `filter.allow` / `filter.deny`; an error names the entry's index.
fn filter_allow<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RuleEntry>, D::Error> {
    rule_entries("filter.allow", d)
}

fn filter_deny<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RuleEntry>, D::Error> {
    rule_entries("filter.deny", d)
}

fn rule_entries<'de, D: serde::Deserializer<'de>>(
    key: &str,
    d: D,
) -> Result<Vec<RuleEntry>, D::Error> {
    parse_entries(key, &Vec::<String>::deserialize(d)?).map_err(serde::de::Error::custom)
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "ClientGroupText")]
pub struct ClientGroup {
    pub name: String,
    /// IPs, CIDRs or MAC addresses.
    pub clients: Vec<String>,
    /// Allow rules for this group's clients only (same syntax as filter.allow).
    pub allow: Vec<RuleEntry>,
    /// Deny rules for this group's clients only (same syntax as filter.deny).
    pub deny: Vec<RuleEntry>,
}

/// A group as written; its rules are parsed with the group's name at hand.
#[derive(Deserialize)]
struct ClientGroupText {
    name: String,
    clients: Vec<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

impl TryFrom<ClientGroupText> for ClientGroup {
    type Error = String;
    fn try_from(g: ClientGroupText) -> Result<ClientGroup, String> {
        let at = |key| format!("filter.groups '{}': {key}", g.name);
        Ok(ClientGroup {
            allow: parse_entries(&at("allow"), &g.allow)?,
            deny: parse_entries(&at("deny"), &g.deny)?,
            name: g.name,
            clients: g.clients,
        })
    }
}

/// The group every client belongs to unless another group claims it.
pub const DEFAULT_GROUP: &str = "default";
/// Groups besides `default`: a client's groups are one u64 mask.
pub const MAX_GROUPS: usize = 63;
/// Lists the filter index can tell apart (its list masks are 256 bits).
pub const MAX_LISTS: usize = 256;

impl FilterConfig {
    /// The group and list checks the types alone cannot express: group
    /// names are unique and few enough, clients parse, lists name groups
    /// that exist. The filter runs them too before it builds its groups.
    pub fn check_groups(&self) -> Result<(), String> {
        let mut names = vec![DEFAULT_GROUP];
        for g in &self.groups {
            if g.name != DEFAULT_GROUP {
                if names.contains(&g.name.as_str()) {
                    return Err(format!(
                        "filter.groups: group '{}' is defined twice",
                        g.name
                    ));
                }
                if names.len() > MAX_GROUPS {
                    return Err(format!(
                        "filter.groups: at most {MAX_GROUPS} groups besides 'default'"
                    ));
                }
                names.push(&g.name);
            }
            for c in &g.clients {
                c.parse::<ClientSpec>()
                    .map_err(|e| format!("filter.groups '{}': {e}", g.name))?;
            }
        }
        if self.lists.len() > MAX_LISTS {
            return Err(format!("filter.lists: at most {MAX_LISTS} lists"));
        }
        for l in &self.lists {
            if let Some(g) = l.groups.iter().find(|g| !names.contains(&g.as_str())) {
                return Err(format!(
                    "filter.lists '{}': unknown group '{g}' (define it under [[filter.groups]])",
                    l.name
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    Exact,
    Subdomains,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct QueryLogConfig {
    pub enabled: bool,
    /// Relative paths are under `data_dir`.
    pub path: PathBuf,
    pub flush_interval: Dur,
    pub retention_days: u32,
    pub max_size_mib: u32,
    /// Latest queries kept in RAM for the live view.
    pub ring_size: usize,
    /// Hide domains and/or clients in the stored log.
    pub anonymize_clients: bool,
    pub hide_domains: bool,
}

impl Default for QueryLogConfig {
    fn default() -> Self {
        QueryLogConfig {
            enabled: true,
            path: PathBuf::from("querylog.db"),
            flush_interval: Dur(Duration::from_secs(60)),
            retention_days: 30,
            max_size_mib: 256,
            ring_size: 1000,
            anonymize_clients: false,
            hide_domains: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct WebConfig {
    pub enabled: bool,
    pub listen: Vec<SocketAddr>,
    /// Extra Host header values accepted besides IP literals, localhost and
    /// the box's own hostname (DNS-rebinding defence).
    pub allowed_hosts: Vec<String>,
    pub metrics: bool,
    /// Set on the board image: enables network, time and firmware pages.
    pub appliance: bool,
    /// How long after start an unset box accepts first-boot setup.
    pub setup_window: Dur,
    /// When this file exists (the copy of `setup-secret.txt` from the
    /// card's boot partition), setup asks for the secret it holds.
    pub setup_secret_file: PathBuf,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            listen: vec![
                "127.0.0.1:8080".parse().unwrap(),
                "[::1]:8080".parse().unwrap(),
            ],
            allowed_hosts: Vec::new(),
            metrics: false,
            appliance: false,
            setup_window: Dur(std::time::Duration::from_secs(30 * 60)),
            // Copied there from the card's boot partition at every boot
            // (board/rpi-arm64/initramfs-init).
            setup_secret_file: PathBuf::from("/data/setup-secret.txt"),
        }
    }
}

// ---- loading, checking, saving ----

/// The warning for a key this build ignores.
pub fn unknown_key(origin: &str, key: &str) -> String {
    format!("{origin}: unknown key '{key}' ignored (from a newer version?)")
}

/// A config error a user can act on: it names the file, the key and the line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Parses and validates TOML text; `origin` names it in errors. Keys
    /// this build does not know are logged as warnings and ignored.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let (cfg, unknown) = Config::read(text, origin)?;
        for key in &unknown {
            tracing::warn!("{}", unknown_key(origin, key));
        }
        Ok(cfg)
    }

    /// Parses and validates TOML text, and names the keys it ignored
    /// (`dns.new_key`); `origin` names the text in errors.
    pub fn read(text: &str, origin: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().to_string();
            match line {
                // The line's text names the key even when the message only
                // names the value (a bad enum variant).
                Some(l) => {
                    let src = text.lines().nth(l - 1).unwrap_or("").trim();
                    ConfigError(format!("{origin}: line {l}: {msg} (at `{src}`)"))
                }
                None => ConfigError(format!("{origin}: {msg}")),
            }
        })?;
        cfg.validate()
            .map_err(|m| ConfigError(format!("{origin}: {m}")))?;
        let unknown = unknown::unknown(text, &cfg.to_toml());
        Ok((cfg, unknown))
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (cfg, unknown) = Config::read_file(path)?;
        for key in &unknown {
            tracing::warn!("{}", unknown_key(&path.display().to_string(), key));
        }
        Ok(cfg)
    }

    /// [`Config::read`] of a file.
    pub fn read_file(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        Config::read(&text, &path.display().to_string())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config always serializes")
    }

    /// This config as the text that replaces `old` (the file as it is):
    /// keys of `old` this build does not know are kept where they were,
    /// except inside an array's entries, whose paths come back as dropped.
    pub fn to_toml_over(&self, old: Option<&str>) -> (String, Vec<String>) {
        let old = old.and_then(|text| Some((text, toml::from_str::<Config>(text).ok()?)));
        match old {
            Some((text, read)) => unknown::keep(text, &read.to_toml(), self.to_toml()),
            None => (self.to_toml(), Vec::new()),
        }
    }

    /// Cross-field checks that the types alone cannot express.
    pub fn validate(&self) -> Result<(), String> {
        self.update.validate()?;
        self.names.validate()?;
        self.dhcp.validate()?;
        if self.dns.listen.is_empty() {
            return Err("dns.listen: at least one address is needed".into());
        }
        if self.dns.upstreams.is_empty() {
            return Err("dns.upstreams: at least one upstream is needed".into());
        }
        if self.dns.edns_udp_size < 512 {
            return Err("dns.edns_udp_size: must be at least 512".into());
        }
        self.dns.check_limits()?;
        if self.cache.min_ttl > self.cache.max_ttl {
            return Err("cache.min_ttl: larger than cache.max_ttl".into());
        }
        for (i, f) in self.forward.iter().enumerate() {
            if f.domains.is_empty() || f.upstreams.is_empty() {
                return Err(format!("forward[{i}]: needs domains and upstreams"));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, l) in self.filter.lists.iter().enumerate() {
            let at = format!("filter.lists[{i}] ('{}')", l.name);
            if l.name.trim().is_empty() {
                return Err(format!("filter.lists[{i}]: name is empty"));
            }
            if l.path.is_some() == l.url.is_some() {
                return Err(format!("{at}: give exactly one of path or url"));
            }
            if !names.insert(l.name.as_str()) {
                return Err(format!("filter.lists[{i}]: duplicate name '{}'", l.name));
            }
            if l.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(format!("{at}: path is empty"));
            }
            if let Some(u) = &l.url {
                let url = reqwest::Url::parse(u).map_err(|e| format!("{at}: url '{u}': {e}"))?;
                list_url_ok(&url).map_err(|e| format!("{at}: url '{u}': {e}"))?;
            }
        }
        self.filter.check_groups()
    }

    /// The query log path with `data_dir` applied.
    pub fn querylog_path(&self) -> PathBuf {
        self.data_dir.join(&self.querylog.path)
    }
}

/// A list URL the box may download: `https://` with a host. Plain `http://`
/// only to a loopback address (a list served on the box itself): anywhere
/// else a device on the path could swap the list. Redirects are held to
/// the same rule (`filter::update`).
pub fn list_url_ok(url: &reqwest::Url) -> Result<(), String> {
    let loopback = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|h| h.parse::<std::net::IpAddr>().ok())
        .is_some_and(|a| a.is_loopback());
    match url.scheme() {
        "https" if url.has_host() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(
            "use an https:// URL (plain http:// can be changed on the way; \
                  a local file is given as path)"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        Config::default().validate().unwrap();
        let text = Config::default().to_toml();
        assert_eq!(Config::from_toml(&text, "x").unwrap(), Config::default());
    }

    #[test]
    fn issue_example_parses() {
        let text = r#"
[dns]
listen = ["127.0.0.1:1053"]
upstreams = ["127.0.0.1:5300", "tls://1.1.1.1:853#cloudflare-dns.com", "https://dns.quad9.net/dns-query"]
[cache]
memory_mib = 16
[[local.records]]
name = "nas.lan"
type = "A"
value = "192.168.1.10"
[[forward]]
domains = ["corp.example", "home.arpa"]
upstreams = ["192.168.1.1:53"]
"#;
        let c = Config::from_toml(text, "t").unwrap();
        assert_eq!(c.dns.upstreams.len(), 3);
        assert!(
            matches!(&c.dns.upstreams[2], Upstream::Https { bootstrap, .. } if bootstrap.len() == 2)
        );
        assert_eq!(c.local.records[0].rtype, RecordType::A);
    }

    #[test]
    fn an_unknown_key_is_ignored_and_named() {
        let (c, unknown) = Config::read(
            "[dns]\nlisten = [\"127.0.0.1:1053\"]\nlisen = 3\n",
            "f.toml",
        )
        .unwrap();
        assert_eq!(c.dns.listen, ["127.0.0.1:1053".parse().unwrap()]);
        assert_eq!(unknown, ["dns.lisen"]);
    }

    #[test]
    fn a_known_key_of_the_wrong_type_is_still_an_error() {
        let e = Config::from_toml("[dns]\nfuture = 1\nlisten = 3\n", "f.toml")
            .unwrap_err()
            .0;
        assert!(
            e.contains("f.toml: line 3") && e.contains("listen = 3"),
            "{e}"
        );
    }

    #[test]
    fn bad_value_is_named_with_line() {
        let e = Config::from_toml("[dns]\n\nupstreams = [\"nonsense\"]\n", "f.toml")
            .unwrap_err()
            .0;
        assert!(e.contains("nonsense") && e.contains("line 3"), "{e}");
        let e = Config::from_toml("[cache]\nmemory_mib = \"lots\"\n", "f.toml")
            .unwrap_err()
            .0;
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn a_bad_record_value_is_named_with_its_record_and_line() {
        let text = "[[local.records]]\nname = \"nas.lan\"\ntype = \"A\"\nvalue = \"300.1.1.1\"\n";
        let e = Config::from_toml(text, "f.toml").unwrap_err().0;
        assert!(
            e.contains("local record 'nas.lan' (A): value: '300.1.1.1' is not an IPv4 address"),
            "{e}"
        );
        assert!(e.starts_with("f.toml: line "), "{e}");
        let text = text.replace("300.1.1.1", "192.168.1.10");
        let c = Config::from_toml(&text, "f.toml").unwrap();
        assert_eq!(c.local.records[0].value.wire(), [192, 168, 1, 10]);
        assert_eq!(Config::from_toml(&c.to_toml(), "again").unwrap(), c);
    }

    #[test]
    fn cidr_contains() {
        let c: Cidr = "192.168.0.0/16".parse().unwrap();
        assert!(c.contains("192.168.3.4".parse().unwrap()));
        assert!(!c.contains("8.8.8.8".parse().unwrap()));
        assert!(c.contains("::ffff:192.168.1.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn durations() {
        assert_eq!("24h".parse::<Dur>().unwrap().0, Duration::from_secs(86400));
        assert_eq!("1500ms".parse::<Dur>().unwrap().to_string(), "1500ms");
        assert!("10".parse::<Dur>().is_err());
        assert!("10y".parse::<Dur>().is_err());
    }
}
