//! Wiring: builds the engine, listeners, query log and web UI from a
//! config, and applies config changes as atomic swaps.
//!
//! The one place a config change lands: [`App::edit`] validates, saves
//! (temp file, fsync, rename, previous kept) and then swaps every part's
//! snapshot, under the one edit lock of [`SavedConfig`]. `backend` is the
//! web UI's view of the running server; `firmware` wires in the updater,
//! the board's restart and the trial boot's health check. Nothing here is
//! on the per-query path.
//! Not for: the config's schema (see `config`) or serving pages (see `web`).

mod backend;
pub mod firmware;
mod saved_config;
mod wipe;

pub use saved_config::SavedConfig;

use crate::config::Config;
use crate::dns::{Engine, server};
use crate::events::EventSink;
use crate::filter::FilterService;
use crate::querylog::QueryLog;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events the query log may fall behind by before new ones are dropped.
const EVENT_QUEUE: usize = 4_096;
/// The copy of the config kept, beside it, before a trial boot of an
/// update (docs/update.md, "Data across versions").
pub const CONFIG_BEFORE_UPDATE: &str = "config.toml.before-update";
/// How often code pages that went unused are unmapped (see `trim`).
const TRIM_EVERY: Duration = Duration::from_secs(600);
/// How often the file-backed RSS is looked at (one read of /proc/self/statm).
const TRIM_CHECK: Duration = Duration::from_secs(2);
/// Growth of file-backed RSS since the last unmapping that triggers another.
const TRIM_GROWTH_KIB: u64 = 512;

pub struct App {
    /// The running config, its file and the one edit lock.
    config: SavedConfig,
    pub engine: Arc<Engine>,
    pub filter: Arc<FilterService>,
    pub querylog: Arc<QueryLog>,
    /// Client addresses to device names, for what the web shows.
    pub names: Arc<crate::names::DeviceNames>,
    pub started: Instant,
    /// Where DNS actually listens (ports resolved).
    pub dns_addrs: Vec<SocketAddr>,
    /// Where the web UI listens (empty when `web.enabled = false`).
    pub web_addrs: std::sync::OnceLock<Vec<SocketAddr>>,
    /// The firmware updater, or why this box has none.
    pub firmware: Result<Arc<crate::update::Updater>, String>,
    /// The DHCP server (off unless `dhcp.enabled`): status and leases.
    pub dhcp: crate::dhcp::Dhcp,
    reboot: firmware::Reboot,
    _dns: server::DnsServer,
}

impl App {
    /// Starts DNS (and everything else the config enables). Must run
    /// inside a tokio runtime. `save_to` is where changes are written.
    pub async fn start(config: Config, save_to: PathBuf) -> anyhow::Result<Arc<App>> {
        App::start_on(config, save_to, firmware::board_reboot()).await
    }

    /// `start`, restarting the machine through `reboot` (tests count).
    pub async fn start_on(
        config: Config,
        save_to: PathBuf,
        reboot: firmware::Reboot,
    ) -> anyhow::Result<Arc<App>> {
        // The state is the household's: files this process creates (SQLite's
        // too) are owner-only, and so is the data directory.
        // SAFETY: umask only sets the process's file-creation mask.
        unsafe { libc::umask(0o077) };
        crate::atomic_file::create_private_dir(&config.data_dir)
            .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
        let config = Arc::new(config);
        let filter = FilterService::start(&config)?;
        // With the log disabled on flash, the writer still keeps the RAM
        // ring for the live view.
        let (events, rx) = EventSink::bounded(EVENT_QUEUE);
        let querylog = QueryLog::open(&config, rx)?;
        querylog.attach_sink(events.clone());
        let engine = Arc::new(
            Engine::new(config.clone(), filter.current(), events)
                .map_err(|e| anyhow::anyhow!("config: {e}"))?,
        );
        let dns = server::start(engine.clone(), &config.dns).await?;
        let names = crate::names::DeviceNames::start(&config);
        let dhcp = crate::dhcp::Dhcp::start(&config, engine.lease_names.clone(), names.clone());
        let dns_addrs = dns.addrs.clone();
        let updater = firmware::updater(&config).map(Arc::new);
        if let Err(e) = &updater
            && e != firmware::UNAVAILABLE
        {
            tracing::warn!("firmware updates are off: {e}");
        }
        let app = Arc::new(App {
            config: SavedConfig::new(config, save_to),
            engine: engine.clone(),
            filter,
            querylog,
            names,
            started: Instant::now(),
            dns_addrs,
            web_addrs: std::sync::OnceLock::new(),
            firmware: updater,
            dhcp,
            reboot,
            _dns: dns,
        });
        let web_cfg = app.config().web.clone();
        let web_addrs = if web_cfg.enabled {
            crate::web::serve(app.clone(), &web_cfg.listen).await?
        } else {
            Vec::new()
        };
        let _ = app.web_addrs.set(web_addrs);
        if let Ok(u) = &app.firmware {
            firmware::check_health(&app, u.clone());
        }
        if let Some(queue) = engine.prefetch.take_queue() {
            let e = engine.clone();
            tokio::spawn(crate::dns::prefetch::serve(queue, move |r| {
                let e = e.clone();
                async move { e.refresh(r).await }
            }));
        }
        tokio::spawn(sweep_cache(engine));
        Ok(app)
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.current()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config().data_dir.clone()
    }

    pub fn config_file(&self) -> &Path {
        self.config.save_path()
    }

    /// Restarts the machine, the query log stored first; `Trial` boots
    /// the selector's `[tryboot]` slot once, after a copy of the config is
    /// kept beside it ([`CONFIG_BEFORE_UPDATE`]): the owner's settings as
    /// they were, whatever the new version writes.
    pub fn restart(&self, how: crate::update::Restart) -> Result<(), String> {
        self.querylog.flush();
        self.dhcp.flush();
        if how == crate::update::Restart::Trial {
            self.keep_config_before_update()?;
        }
        if let Ok(u) = &self.firmware {
            firmware::before_restart(u, how)?;
        }
        (self.reboot)(how)
    }

    /// Copies the saved config to [`CONFIG_BEFORE_UPDATE`] beside it
    /// (atomically); nothing to copy before the first save.
    fn keep_config_before_update(&self) -> Result<(), String> {
        let from = self.config_file();
        let bytes = match std::fs::read(from) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("reading {} to keep a copy: {e}", from.display())),
        };
        let to = from.with_file_name(CONFIG_BEFORE_UPDATE);
        crate::atomic_file::write_atomic(&to, |out| std::io::Write::write_all(out, &bytes))
            .map_err(|e| format!("keeping a copy of the config in {}: {e}", to.display()))
    }

    /// Validates `new`, saves it atomically, then swaps it in. On error
    /// nothing changes and the message names the bad field.
    pub fn apply(&self, new: Config) -> Result<(), String> {
        self.edit(|c| {
            *c = new;
            Ok(())
        })
    }

    /// Lets `change` edit a copy of the running config, then validates,
    /// saves and swaps it into every part; one edit at a time. On error
    /// nothing changes and the message names the bad field.
    pub fn edit(
        &self,
        change: impl FnOnce(&mut Config) -> Result<(), String>,
    ) -> Result<(), String> {
        let edit = self.config.begin();
        let new = edit.changed(change)?;
        // Build before saving so a config the engine rejects is not saved.
        let runtime_ok = crate::dns::pipeline::Runtime::new(new.clone())?;
        drop(runtime_ok);
        edit.save(&new)?;
        let old = self.config();
        self.engine.apply(new.clone())?;
        if old.filter != new.filter || old.data_dir != new.data_dir {
            self.filter
                .apply_config(&new)
                .map_err(|e| format!("filter: {e:#}"))?;
            // Answers cached under the old rules may hide newly blocked
            // CNAME targets.
            self.engine.cache.clear();
        }
        self.names.apply(&new);
        if old.querylog != new.querylog {
            self.querylog.set_config(&new.querylog);
        }
        if old.dhcp != new.dhcp || old.data_dir != new.data_dir {
            self.dhcp.apply(&new);
        }
        edit.swap_in(new);
        Ok(())
    }
}

/// Reclaims expired cache entries a shard at a time, so expiry never
/// stops the world.
async fn sweep_cache(engine: Arc<Engine>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        let e = engine.clone();
        let _ = tokio::task::spawn_blocking(move || e.cache.sweep_expired()).await;
    }
}

/// Where the running config comes from and where changes are saved: the
/// `--config` file, or `<data_dir>/config.toml` when running on the
/// embedded default (and loaded from there on the next start).
pub fn resolve_config(config_path: Option<PathBuf>) -> anyhow::Result<(Config, PathBuf)> {
    match config_path {
        Some(p) => Ok((Config::load(&p)?, p)),
        None => {
            let default = Config::default();
            let saved = default.data_dir.join("config.toml");
            if saved.exists() {
                Ok((Config::load(&saved)?, saved))
            } else {
                Ok((default, saved))
            }
        }
    }
}

/// The `glory-hole` server process: runs until SIGINT or SIGTERM.
pub fn run(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let (config, save_to) = resolve_config(config_path)?;
    // One async worker: cached answers never reach it (the UDP threads
    // answer them), and misses, TCP, TLS and the web UI are light. Cache
    // inserts from one thread let the allocator reuse evicted answers'
    // memory in place: two workers measured 1.5 MiB more RSS through a
    // flood of new names (benches/memory.sh). Slow work (SQLite queries,
    // password hashing, list parsing) runs on blocking threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("glory-hole")
        .build()?;
    runtime.block_on(async move {
        let app = App::start(config, save_to).await?;
        for a in &app.dns_addrs {
            tracing::info!("DNS on {a} (UDP and TCP)");
        }
        for a in app.web_addrs.get().into_iter().flatten() {
            tracing::info!("web UI on http://{a}/");
        }
        // On the board image: mDNS, the hardware watchdog, SNTP.
        let _appliance = app
            .config()
            .web
            .appliance
            .then(|| crate::appliance::start(&app.dns_addrs));
        // Start-up code (config, migrations, lists, router) is not needed
        // again: unmap it now, and again now and then after list updates
        // and web sessions have run code of their own.
        let filter = app.filter.clone();
        tokio::spawn(async move {
            // Without a snapshot, the first list build runs parser code.
            let wait = move || filter.wait_idle(Duration::from_secs(120));
            let _ = tokio::task::spawn_blocking(wait).await;
            loop {
                match crate::trim::startup_pages() {
                    Ok(b) => tracing::debug!("unmapped {} KiB of program pages", b / 1024),
                    Err(e) => tracing::debug!("cannot unmap program pages: {e}"),
                }
                let last = tokio::time::Instant::now();
                let baseline = crate::trim::file_pages_kib().unwrap_or(0);
                // Again after TRIM_EVERY, or sooner when code pages pile up
                // (a flood runs the forwarding and logging code, and the
                // kernel maps 64 KiB around every page it touches).
                loop {
                    tokio::time::sleep(TRIM_CHECK).await;
                    let grown = crate::trim::file_pages_kib()
                        .is_ok_and(|kib| kib > baseline + TRIM_GROWTH_KIB);
                    if grown || last.elapsed() >= TRIM_EVERY {
                        break;
                    }
                }
            }
        });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
        app.querylog.flush();
        app.dhcp.flush();
        Ok(())
    })
}
