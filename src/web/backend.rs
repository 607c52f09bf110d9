//! What the web UI needs from the rest of the server, as one trait.
//!
//! The web module never reaches into the DNS engine, the filter or the query
//! log directly: it asks a [`Backend`]. The running server implements it for
//! `app::App`; [`Standalone`] implements the configuration part alone (read,
//! validate, save atomically, swap) for a box whose other parts are absent.
//! Methods with a default body answer "not available" so that a missing part
//! shows as such on the page instead of failing the whole page.

use crate::config::Config;
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A half-open time range in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub total: u64,
    pub blocked: u64,
    pub cached: u64,
    pub unique_clients: u64,
    pub unique_domains: u64,
}

impl Summary {
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
pub struct Bucket {
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
}

/// One row of the query log as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    pub time_ms: i64,
    pub client: String,
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
pub struct LogQuery {
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
pub struct LogPage {
    /// Newest first.
    pub rows: Vec<LogRow>,
    /// Pass back as `cursor` for older rows; None: nothing older matches.
    /// A page may hold fewer rows than asked (even none) and still have
    /// one: a filter no index serves looks at a bounded number of rows.
    pub next_cursor: Option<i64>,
}

/// The filter's answer to "is this domain blocked, and why?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub domain: String,
    /// "blocked", "allowed" or "pass".
    pub decision: String,
    /// Each rule or list that matched, in words, the deciding one first.
    pub matches: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListStatus {
    pub name: String,
    pub source: String,
    pub enabled: bool,
    pub domains: Option<u64>,
    /// Unix milliseconds of the last successful update.
    pub updated_ms: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PauseStatus {
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
    /// Validates, saves atomically and swaps the running config in;
    /// `Err` names the bad field first ("dns.upstreams: ...").
    fn apply(&self, new: Config) -> Result<(), String>;
    fn data_dir(&self) -> PathBuf;

    /// Whether a query log is running (the log page says so when not).
    fn has_querylog(&self) -> bool {
        false
    }
    fn summary(&self, _range: TimeRange) -> Option<Summary> {
        None
    }
    fn time_series(&self, _range: TimeRange, _buckets: u32) -> Vec<Bucket> {
        Vec::new()
    }
    fn top(&self, _kind: TopKind, _range: TimeRange, _n: u32) -> Vec<TopItem> {
        Vec::new()
    }
    /// One page, newest first: one search of the log, never a count.
    fn search(&self, _q: &LogQuery) -> LogPage {
        LogPage::default()
    }
    fn explain(&self, _domain: &str, _client: Option<IpAddr>) -> Option<Explanation> {
        None
    }
    /// Every configured list; counts and times when the filter knows them.
    fn lists(&self) -> Vec<ListStatus> {
        self.config()
            .filter
            .lists
            .iter()
            .map(|l| ListStatus {
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
    fn pause_status(&self) -> PauseStatus {
        PauseStatus::default()
    }
    fn engine_stats(&self) -> EngineStats {
        EngineStats::default()
    }
    fn firmware_version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
    fn reboot(&self) -> Result<(), String> {
        Err(format!("reboot: {NOT_AVAILABLE}"))
    }
    /// Forgets every setting and the admin password; the box restarts.
    fn factory_reset(&self) -> Result<(), String> {
        Err(format!("factory reset: {NOT_AVAILABLE}"))
    }
}

/// The configuration part of a [`Backend`], on its own: what `App::apply`
/// does, for a server without the other parts (and for the web tests).
pub struct Standalone {
    config: ArcSwap<Config>,
    save_to: PathBuf,
    /// One apply at a time, so two pages saving at once cannot interleave.
    apply_lock: Mutex<()>,
}

impl Standalone {
    pub fn new(config: Config, save_to: PathBuf) -> Standalone {
        Standalone {
            config: ArcSwap::from_pointee(config),
            save_to,
            apply_lock: Mutex::new(()),
        }
    }

    pub fn save_path(&self) -> &Path {
        &self.save_to
    }
}

impl Backend for Standalone {
    fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    fn apply(&self, new: Config) -> Result<(), String> {
        let _one = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        new.validate()?;
        crate::config::save_atomic(&self.save_to, new.to_toml().as_bytes())
            .map_err(|e| format!("saving {}: {e}", self.save_to.display()))?;
        self.config.store(Arc::new(new));
        Ok(())
    }

    fn data_dir(&self) -> PathBuf {
        self.config.load().data_dir.clone()
    }
}
