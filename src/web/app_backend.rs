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

    /// Asks init to reboot (BusyBox `reboot` on the appliance image).
    fn reboot(&self) -> Result<(), String> {
        std::process::Command::new("reboot")
            .spawn()
            .map(drop)
            .map_err(|e| format!("reboot: cannot run 'reboot': {e}"))
    }

    /// Back to the embedded defaults, keeping only what makes this box
    /// reachable (data directory, web listen addresses, appliance flag);
    /// network.conf is removed so the next boot uses DHCP. The web layer
    /// forgets the password; the caller reboots.
    fn factory_reset(&self) -> Result<(), String> {
        let old = App::config(self);
        let mut fresh = Config {
            data_dir: old.data_dir.clone(),
            ..Config::default()
        };
        fresh.web.listen = old.web.listen.clone();
        fresh.web.appliance = old.web.appliance;
        fresh.dns.listen = old.dns.listen.clone();
        App::apply(self, fresh)?;
        let net = old.data_dir.join(super::setup::NETWORK_FILE);
        match std::fs::remove_file(&net) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("removing {}: {e}", net.display())),
        }
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
