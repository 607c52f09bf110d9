//! The running server as the web UI's [`Backend`]: configuration changes go
//! through `App::apply`; cache and upstream figures come from the DNS
//! engine. Query-log and filter answers join here as those parts land in
//! `App`; until then the pages show them as not available.

use super::backend::{Backend, EngineStats, UpstreamStat};
use crate::app::App;
use crate::config::Config;
use std::path::PathBuf;
use std::sync::Arc;

impl Backend for App {
    fn config(&self) -> Arc<Config> {
        App::config(self)
    }

    fn apply(&self, new: Config) -> Result<(), String> {
        App::apply(self, new)
    }

    fn data_dir(&self) -> PathBuf {
        App::data_dir(self)
    }

    fn engine_stats(&self) -> EngineStats {
        let cache = self.engine.cache.stats();
        EngineStats {
            cache_hits: cache.hits,
            cache_misses: cache.misses,
            cache_entries: cache.entries,
            upstreams: self
                .engine
                .runtime()
                .upstreams()
                .health()
                .into_iter()
                .map(|h| UpstreamStat {
                    name: h.upstream,
                    healthy: h.healthy,
                    latency_ms: Some(h.latency_ms),
                })
                .collect(),
        }
    }
}
