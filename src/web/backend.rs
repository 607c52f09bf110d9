//! What the web UI needs from the rest of the server, as one trait.
//!
//! The web module never reaches into the DNS engine, the filter or the query
//! log directly: it asks a [`Backend`]. The implementations live beside the
//! server (`app::App`, and `app::SavedConfig` for the configuration part
//! alone), so the web never imports them. Methods with a default body answer
//! "not available" so that a missing part shows as such on the page instead
//! of failing the whole page.
//!
//! The types here are what the pages and the JSON show, named `...View` so
//! they do not shadow the query log's and the filter's own (`LogRowView`,
//! `SummaryView`, `ListView`, ...).
//! Not for: computing any of it.

use crate::config::Config;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// A half-open time range in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryView {
    pub total: u64,
    pub blocked: u64,
    pub cached: u64,
    pub unique_clients: u64,
    pub unique_domains: u64,
}

impl SummaryView {
    pub fn percent_blocked(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.blocked as f64 * 100.0 / self.total as f64
        }
    }
}

/// One bucket of the queries-over-time chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BucketView {
    pub start_ms: i64,
    pub allowed: u64,
    pub blocked: u64,
    pub cached: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopKind {
    Domains,
    Blocked,
    Clients,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopItem {
    pub name: String,
    pub count: u64,
    /// Top clients: the device's name, when known, and where it came
    /// from (see [`ClientNameView`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name_source: Option<String>,
    /// Top domains: the count is an estimate (the range reaches days
    /// stored before exact counts, docs/querylog.md); absent when exact.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

impl TopItem {
    pub fn new(name: String, count: u64) -> TopItem {
        TopItem {
            name,
            count,
            client_name: None,
            client_name_source: None,
            estimated: false,
        }
    }
}

/// A client's device name and where it came from: "dhcp" (a lease),
/// "local" (a local record) or "ptr" (the router's answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientNameView {
    pub name: String,
    pub source: String,
}

/// Slow answers in a range, from the query log's roll-ups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlowestView {
    /// The domains with the slowest single answers, slowest first.
    pub domains: Vec<SlowDomainView>,
    /// Each upstream's answers and latency.
    pub upstreams: Vec<UpstreamLatencyView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowDomainView {
    pub name: String,
    pub max_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamLatencyView {
    pub name: String,
    pub answers: u64,
    pub avg_ms: f64,
    pub max_ms: f64,
}

/// One row of the query log as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRowView {
    pub time_ms: i64,
    pub client: String,
    /// The client's device name, when known, and where it came from
    /// (see [`ClientNameView`]).
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub client_name_source: Option<String>,
    pub domain: String,
    /// "A", "AAAA", ... or the number.
    pub qtype: String,
    /// cache, upstream, local, blocked, stale, refused, failed.
    pub status: String,
    pub rcode: u8,
    pub upstream: Option<String>,
    pub latency_us: u32,
    /// The rule or list that decided, in words, if any.
    pub reason: Option<String>,
}

/// A query-log search; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSearch {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Substring of the domain.
    pub domain: Option<String>,
    pub client: Option<String>,
    pub status: Option<String>,
    pub qtype: Option<String>,
    /// Rows strictly older than this (paging backwards by time).
    pub before_ms: Option<i64>,
    /// `next_cursor` of the previous page: paging backwards without losing
    /// rows that share a millisecond. Opaque to the caller.
    pub cursor: Option<i64>,
    /// Rows strictly newer than this (the live tail).
    pub after_ms: Option<i64>,
    pub limit: Option<u32>,
}

/// One page of a log search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogPageView {
    /// Newest first.
    pub rows: Vec<LogRowView>,
    /// Pass back as `cursor` for older rows; None: nothing older matches.
    /// A page may hold fewer rows than asked (even none) and still have
    /// one: a filter no index serves looks at a bounded number of rows.
    pub next_cursor: Option<i64>,
}

/// The filter's answer to "is this domain blocked, and why?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplanationView {
    pub domain: String,
    /// "blocked", "allowed" or "pass".
    pub decision: String,
    /// Each rule or list that matched, in words, the deciding one first.
    pub matches: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListView {
    pub name: String,
    pub source: String,
    pub enabled: bool,
    pub domains: Option<u64>,
    /// Unix milliseconds of the last successful update.
    pub updated_ms: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PauseView {
    pub paused: bool,
    /// Unix milliseconds when blocking resumes; None = until re-enabled.
    pub until_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamStat {
    pub name: String,
    pub healthy: bool,
    pub latency_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineStats {
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_entries: u64,
    pub upstreams: Vec<UpstreamStat>,
    /// What the DNS abuse limits turned away since start
    /// (`dns::pipeline::Counters`).
    #[serde(default)]
    pub rate_limited: u64,
    #[serde(default)]
    pub over_upstream_share: u64,
    #[serde(default)]
    pub tcp_refused: u64,
    #[serde(default)]
    pub tcp_stalled: u64,
    /// Cached answers refreshed before they expired (`dns::prefetch`),
    /// hits they turned from misses, and refreshes dropped (queue full).
    #[serde(default)]
    pub prefetches: u64,
    #[serde(default)]
    pub prefetch_saved: u64,
    #[serde(default)]
    pub prefetch_dropped: u64,
    /// Query events lost since start: the DNS side found the log's channel
    /// full, or the writer could not store them (`querylog::LogStatus`).
    #[serde(default)]
    pub querylog_dropped_events: u64,
    #[serde(default)]
    pub querylog_dropped_rows: u64,
}

impl EngineStats {
    pub fn cache_hit_rate(&self) -> f64 {
        let all = self.cache_hits + self.cache_misses;
        if all == 0 {
            0.0
        } else {
            self.cache_hits as f64 * 100.0 / all as f64
        }
    }
}

pub const NOT_AVAILABLE: &str = "not available on this box";

/// The server as the web UI sees it.
pub trait Backend: Send + Sync + 'static {
    fn config(&self) -> Arc<Config>;
    /// The one way to change the config: clones the running one, lets
    /// `change` edit it, validates, saves atomically and swaps it in. Edits
    /// run one at a time (one lock, held by the implementation), so two
    /// pages saving at once do not lose each other's change. `Err` names
    /// the bad field first ("dns.upstreams: ..."); on error nothing changes.
    fn edit(&self, change: &mut dyn FnMut(&mut Config) -> Result<(), String>)
    -> Result<(), String>;
    /// Replaces the whole config (an [`edit`](Backend::edit) that sets it).
    fn apply(&self, new: Config) -> Result<(), String> {
        let mut new = Some(new);
        self.edit(&mut |c| {
            *c = new.take().ok_or("the change ran twice")?;
            Ok(())
        })
    }
    fn data_dir(&self) -> PathBuf;

    /// Whether a query log is running (the log page says so when not).
    fn has_querylog(&self) -> bool {
        false
    }
    fn summary(&self, _range: TimeRange) -> Option<SummaryView> {
        None
    }
    fn time_series(&self, _range: TimeRange, _buckets: u32) -> Vec<BucketView> {
        Vec::new()
    }
    fn top(&self, _kind: TopKind, _range: TimeRange, _n: u32) -> Vec<TopItem> {
        Vec::new()
    }
    fn slowest(&self, _range: TimeRange, _n: u32) -> SlowestView {
        SlowestView::default()
    }
    /// One page, newest first: one search of the log, never a count.
    fn search(&self, _q: &LogSearch) -> LogPageView {
        LogPageView::default()
    }
    /// Writes every stored row `q`'s filters and time range select (no
    /// page limit) to `out` as `format`, oldest first, as it reads them;
    /// returns how many. Runs on a blocking thread.
    fn export(
        &self,
        _q: &LogSearch,
        _format: crate::querylog::ExportFormat,
        _out: &mut dyn std::io::Write,
    ) -> Result<u64, String> {
        Err(format!("export: {NOT_AVAILABLE}"))
    }
    fn explain(&self, _domain: &str, _client: Option<IpAddr>) -> Option<ExplanationView> {
        None
    }
    /// The device name of a client address (as text), when known. Never
    /// waits: a name still being asked for shows on a later call.
    fn client_name(&self, _client: &str) -> Option<ClientNameView> {
        None
    }
    /// Every configured list; counts and times when the filter knows them.
    fn lists(&self) -> Vec<ListView> {
        self.config()
            .filter
            .lists
            .iter()
            .map(|l| ListView {
                name: l.name.clone(),
                source: l
                    .url
                    .clone()
                    .or_else(|| l.path.as_ref().map(|p| p.display().to_string()))
                    .unwrap_or_default(),
                enabled: l.enabled,
                domains: None,
                updated_ms: None,
                error: None,
            })
            .collect()
    }
    /// Starts a download of every list now; returns once started.
    fn update_lists(&self) -> Result<(), String> {
        Err(format!("list updates: {NOT_AVAILABLE}"))
    }
    /// Pauses blocking for `minutes`, or until resumed when None.
    fn pause(&self, _minutes: Option<u32>) -> Result<(), String> {
        Err(format!("pausing: {NOT_AVAILABLE}"))
    }
    fn resume(&self) -> Result<(), String> {
        Err(format!("pausing: {NOT_AVAILABLE}"))
    }
    fn pause_status(&self) -> PauseView {
        PauseView::default()
    }
    fn engine_stats(&self) -> EngineStats {
        EngineStats::default()
    }
    /// The DHCP server's status (`dhcp`).
    fn dhcp_status(&self) -> crate::dhcp::Status {
        crate::dhcp::Status::Off
    }
    /// The devices the DHCP server knows, by address.
    fn dhcp_leases(&self) -> Arc<Vec<crate::dhcp::LeaseInfo>> {
        Arc::default()
    }
    fn firmware_version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
    fn reboot(&self) -> Result<(), String> {
        Err(format!("reboot: {NOT_AVAILABLE}"))
    }
    /// Restarts the machine; `Trial` boots the `[tryboot]` slot once.
    fn restart(&self, how: crate::update::Restart) -> Result<(), String> {
        match how {
            crate::update::Restart::Normal => self.reboot(),
            crate::update::Restart::Trial => Err(format!("trial boot: {NOT_AVAILABLE}")),
        }
    }
    /// The firmware updater (`web::firmware`), or why there is none.
    fn firmware(&self) -> Result<Arc<crate::update::Updater>, String> {
        Err(crate::update::updater::UNAVAILABLE.into())
    }
    /// Forgets every setting and the admin password; the box restarts.
    fn factory_reset(&self) -> Result<(), String> {
        Err(format!("factory reset: {NOT_AVAILABLE}"))
    }
}
