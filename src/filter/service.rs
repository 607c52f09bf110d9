//! The filter's control plane: owns the current snapshot, loads it from flash
//! at start, rebuilds it on a dedicated thread when lists or config change,
//! downloads URL lists (on schedule, on demand, at boot when stale), keeps
//! the pause state on flash and refreshes the neighbour table for MAC-based
//! groups. The data path only ever sees `ArcSwap::load`.

use super::index::Index;
use super::neighbours;
use super::rules::Policy;
use super::snapshot::{self, ListMeta, ListSource};
use super::update::{self, DownloadState, Outcome};
use super::{Filter, PauseState};
use crate::config::Config;
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

/// Knobs that are not user configuration (tests point them elsewhere).
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The kernel's IPv4 neighbour table, `/proc/net/arp` format; IPv6
    /// (and IPv4) neighbours also come from rtnetlink (see `neighbours`).
    pub neighbour_table: PathBuf,
    pub neighbour_refresh: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            neighbour_table: PathBuf::from("/proc/net/arp"),
            neighbour_refresh: Duration::from_secs(60),
        }
    }
}

/// One list as the UI shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListStatus {
    pub name: String,
    pub enabled: bool,
    /// Path or URL.
    pub origin: String,
    pub format: super::parse::Format,
    /// Distinct names in the current index from this list.
    pub domains: u64,
    pub rules: u64,
    pub invalid_lines: u64,
    pub unsupported_rules: u64,
    /// A few unusable lines with their numbers.
    pub samples: Vec<String>,
    /// When the content last changed (download or file time), Unix ms.
    pub last_update_ms: Option<i64>,
    pub last_checked_ms: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PauseStatus {
    pub paused: bool,
    /// None while paused until resumed (or when not paused).
    pub until_ms: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct PauseFile {
    until_ms: i64,
}

pub struct FilterService {
    shared: Arc<Shared>,
}

struct Shared {
    current: Arc<ArcSwap<Filter>>,
    pause: Arc<PauseState>,
    state: Mutex<State>,
    progress: Mutex<Progress>,
    changed: Condvar,
    build_tx: Mutex<mpsc::Sender<()>>,
    opts: ServiceOptions,
    updating: tokio::sync::Mutex<()>,
    /// Why the snapshot was not used at start (None: it was).
    snapshot_rejected: Option<String>,
}

struct State {
    cfg: Config,
    index: Arc<Index>,
    lists: Arc<Vec<ListMeta>>,
    neighbours: Vec<(IpAddr, [u8; 6])>,
    last_build_error: Option<String>,
}

#[derive(Default)]
struct Progress {
    ready: bool,
    requested: u64,
    finished: u64,
}

fn snapshot_path(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("filter").join("index.snap")
}

fn pause_path(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("filter").join("pause.json")
}

impl FilterService {
    pub fn start(cfg: &Config) -> anyhow::Result<Arc<FilterService>> {
        Self::start_with(cfg, ServiceOptions::default())
    }

    /// Loads the snapshot if it matches the configured lists (fast path), or
    /// starts with rules only and rebuilds in the background. Spawns the
    /// update scheduler when called inside a tokio runtime.
    pub fn start_with(cfg: &Config, opts: ServiceOptions) -> anyhow::Result<Arc<FilterService>> {
        std::fs::create_dir_all(cfg.data_dir.join("filter"))?;
        let pause = Arc::new(PauseState::default());
        if let Some(p) = std::fs::read(pause_path(cfg))
            .ok()
            .and_then(|b| serde_json::from_slice::<PauseFile>(&b).ok())
        {
            pause.set_until_ms(p.until_ms);
        }
        let sources = ListSource::from_config(cfg);
        let mut rejected = None;
        let (index, lists, ready) = match snapshot::load(&snapshot_path(cfg), Some(&sources)) {
            Ok(l) => (l.index, l.lists, true),
            Err(e) => {
                rejected = Some(e.to_string());
                if !sources.is_empty() {
                    tracing::info!("filter: {e}; rebuilding from the lists");
                }
                let lists = sources
                    .iter()
                    .map(|s| ListMeta {
                        source: s.clone(),
                        stats: Default::default(),
                        domains: 0,
                        error: None,
                    })
                    .collect();
                (Index::empty(), lists, false)
            }
        };
        let policy = Policy::new(cfg, index.seed())?;
        let neighbours = if policy.groups.has_macs() {
            neighbours::read(&opts.neighbour_table).unwrap_or_default()
        } else {
            Vec::new()
        };
        let clients = policy.groups.client_map(&neighbours);
        let index = Arc::new(index);
        let lists = Arc::new(lists);
        let filter = Filter::new(
            index.clone(),
            lists.clone(),
            Arc::new(policy),
            Arc::new(clients),
            pause.clone(),
        );
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            current: Arc::new(ArcSwap::from_pointee(filter)),
            pause,
            state: Mutex::new(State {
                cfg: cfg.clone(),
                index,
                lists,
                neighbours,
                last_build_error: None,
            }),
            progress: Mutex::new(Progress {
                ready,
                ..Progress::default()
            }),
            changed: Condvar::new(),
            build_tx: Mutex::new(tx),
            opts,
            updating: tokio::sync::Mutex::new(()),
            snapshot_rejected: rejected,
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("filter-build".into())
            .spawn(move || {
                crate::priority::background_thread();
                build_loop(weak, rx)
            })?;
        let svc = Arc::new(FilterService { shared });
        if !ready {
            svc.shared.request_build();
        }
        let weak = Arc::downgrade(&svc.shared);
        let refresh = svc.shared.opts.neighbour_refresh;
        std::thread::Builder::new()
            .name("filter-neigh".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(refresh);
                    match weak.upgrade() {
                        Some(s) => s.refresh_neighbours(),
                        None => return,
                    }
                }
            })?;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(schedule(Arc::downgrade(&svc.shared)));
        }
        Ok(svc)
    }

    /// The handle the pipeline keeps; `.load()` per query.
    pub fn current(&self) -> Arc<ArcSwap<Filter>> {
        self.shared.current.clone()
    }

    /// New rules take effect at once; changed lists are rebuilt in the
    /// background (the old index keeps answering). Errors leave everything
    /// as it was.
    pub fn apply_config(&self, cfg: &Config) -> anyhow::Result<()> {
        let s = &self.shared;
        let mut st = s.state.lock().unwrap();
        let policy = Policy::new(cfg, st.index.seed())?;
        st.cfg = cfg.clone();
        let sources = ListSource::from_config(cfg);
        let same_lists = st.lists.len() == sources.len()
            && st.lists.iter().zip(&sources).all(|(m, s)| m.source == *s);
        if policy.groups.has_macs() && st.neighbours.is_empty() {
            st.neighbours = neighbours::read(&s.opts.neighbour_table).unwrap_or_default();
        }
        let clients = policy.groups.client_map(&st.neighbours);
        s.current.store(Arc::new(Filter::new(
            st.index.clone(),
            st.lists.clone(),
            Arc::new(policy),
            Arc::new(clients),
            s.pause.clone(),
        )));
        drop(st);
        if !same_lists {
            s.request_build();
        }
        Ok(())
    }

    /// Downloads every enabled URL list now; rebuilds if any changed and
    /// waits for the new index. Returns the lists' status afterwards.
    pub async fn update_lists_now(&self) -> Vec<ListStatus> {
        self.shared.update_lists(false).await;
        self.lists()
    }

    pub fn lists(&self) -> Vec<ListStatus> {
        let st = self.shared.state.lock().unwrap();
        let build_error = st.last_build_error.clone();
        st.cfg
            .filter
            .lists
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let meta = st.lists.get(i).filter(|m| m.source.name == l.name);
                let stats = meta.map(|m| m.stats.clone()).unwrap_or_default();
                let (last_update_ms, last_checked_ms, download_error) = match &l.url {
                    Some(_) => {
                        let d = DownloadState::load(&snapshot::list_copy_path(
                            &st.cfg.data_dir,
                            &l.name,
                        ));
                        (d.last_changed_ms, d.last_checked_ms, d.last_error)
                    }
                    None => {
                        let mtime = l
                            .path
                            .as_deref()
                            .and_then(|p| snapshot::file_stamp(p).1)
                            .map(|ns| (ns / 1_000_000) as i64);
                        (mtime, None, None)
                    }
                };
                ListStatus {
                    name: l.name.clone(),
                    enabled: l.enabled,
                    origin: l
                        .url
                        .clone()
                        .or_else(|| l.path.as_ref().map(|p| p.display().to_string()))
                        .unwrap_or_default(),
                    format: stats.format,
                    domains: meta.map(|m| m.domains).unwrap_or(0),
                    rules: stats.rules,
                    invalid_lines: stats.invalid,
                    unsupported_rules: stats.unsupported,
                    samples: stats.samples,
                    last_update_ms,
                    last_checked_ms,
                    last_error: download_error
                        .or_else(|| meta.and_then(|m| m.error.clone()))
                        .or_else(|| build_error.clone()),
                }
            })
            .collect()
    }

    /// Pauses blocking for `minutes`, or until resumed. Survives a restart.
    pub fn pause(&self, minutes: Option<u32>) {
        let until = match minutes {
            Some(m) => crate::events::now_ms() + m as i64 * 60_000,
            None => i64::MAX,
        };
        self.shared.set_pause(until);
    }

    pub fn resume(&self) {
        self.shared.set_pause(0);
    }

    pub fn pause_status(&self) -> PauseStatus {
        let paused = self.shared.pause.is_paused();
        let u = self.shared.pause.until_ms();
        PauseStatus {
            paused,
            until_ms: (paused && u != i64::MAX).then_some(u),
        }
    }

    /// Blocks until the first index from the lists is serving (true), or
    /// `timeout` passes (false).
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let p = self.shared.progress.lock().unwrap();
        let (p, _) = self
            .shared
            .changed
            .wait_timeout_while(p, timeout, |p| !p.ready)
            .unwrap();
        p.ready
    }

    /// Blocks until every rebuild requested so far has finished.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.shared.wait_idle(timeout)
    }

    /// Why the snapshot on flash was not served at start ("snapshot is
    /// corrupt: …", "snapshot is stale: …"); None when it was.
    pub fn snapshot_rejected(&self) -> Option<String> {
        self.shared.snapshot_rejected.clone()
    }

    /// Re-reads the neighbour table now (normally done periodically).
    pub fn refresh_neighbours(&self) {
        self.shared.refresh_neighbours();
    }

    /// The last rebuild's error, if it failed (the previous index stays).
    pub fn last_build_error(&self) -> Option<String> {
        self.shared.state.lock().unwrap().last_build_error.clone()
    }
}

impl Shared {
    fn request_build(&self) {
        self.progress.lock().unwrap().requested += 1;
        let _ = self.build_tx.lock().unwrap().send(());
    }

    fn wait_idle(&self, timeout: Duration) -> bool {
        let p = self.progress.lock().unwrap();
        let target = p.requested;
        let (p, _) = self
            .changed
            .wait_timeout_while(p, timeout, |p| p.finished < target)
            .unwrap();
        p.finished >= target
    }

    fn set_pause(&self, until: i64) {
        self.pause.set_until_ms(until);
        let path = pause_path(&self.state.lock().unwrap().cfg);
        let bytes = serde_json::to_vec(&PauseFile { until_ms: until }).expect("serializes");
        if let Err(e) = crate::atomic_file::save_atomic(&path, &bytes) {
            tracing::warn!("filter: saving pause state to {}: {e}", path.display());
        }
    }

    fn refresh_neighbours(&self) {
        let mut st = self.state.lock().unwrap();
        let cur = self.current.load_full();
        if !cur.policy().groups.has_macs() {
            return;
        }
        let n = match neighbours::read(&self.opts.neighbour_table) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(
                    "filter: neighbour table {}: {e}",
                    self.opts.neighbour_table.display()
                );
                return;
            }
        };
        if n == st.neighbours {
            return;
        }
        let clients = cur.policy().groups.client_map(&n);
        st.neighbours = n;
        self.current.store(Arc::new(cur.with_clients(clients)));
    }

    /// Compiles the lists into a snapshot file, loads it back (so what is
    /// served is exactly what a restart would load) and swaps it in.
    fn rebuild(&self) -> anyhow::Result<()> {
        let cfg = self.state.lock().unwrap().cfg.clone();
        let sources = ListSource::from_config(&cfg);
        let started = std::time::Instant::now();
        let (compiled, metas) = snapshot::compile(&sources, rand::random())?;
        let path = snapshot_path(&cfg);
        let index = match snapshot::write(
            &path,
            compiled.seed,
            &compiled.words,
            &compiled.combos,
            &compiled.branches,
            &metas,
        ) {
            Ok(()) => {
                drop(compiled);
                snapshot::load(&path, None)?.index
            }
            Err(e) => {
                tracing::warn!(
                    "filter: cannot save snapshot {}: {e:#}; serving from memory",
                    path.display()
                );
                Index::from_compiled(compiled)?
            }
        };
        tracing::info!(
            "filter: {} names from {} lists in {:.2}s",
            index.len(),
            metas.iter().filter(|m| m.source.enabled).count(),
            started.elapsed().as_secs_f32()
        );
        let mut st = self.state.lock().unwrap();
        // Rules may have changed while we built: compile the latest.
        let policy = Policy::new(&st.cfg, index.seed())?;
        let clients = policy.groups.client_map(&st.neighbours);
        st.index = Arc::new(index);
        st.lists = Arc::new(metas);
        st.last_build_error = None;
        self.current.store(Arc::new(Filter::new(
            st.index.clone(),
            st.lists.clone(),
            Arc::new(policy),
            Arc::new(clients),
            self.pause.clone(),
        )));
        Ok(())
    }

    /// Downloads URL lists (all, or only those older than update_interval)
    /// and rebuilds when a copy changed.
    async fn update_lists(self: &Arc<Self>, only_due: bool) {
        let _one_at_a_time = self.updating.lock().await;
        let cfg = self.state.lock().unwrap().cfg.clone();
        let interval = cfg.filter.update_interval.0.as_millis() as i64;
        let now = crate::events::now_ms();
        let mut changed = false;
        let mut client = None;
        for l in cfg.filter.lists.iter().filter(|l| l.enabled) {
            let Some(url) = &l.url else { continue };
            let copy = snapshot::list_copy_path(&cfg.data_dir, &l.name);
            let mut state = DownloadState::load(&copy);
            if only_due
                && copy.exists()
                && state.last_checked_ms.is_some_and(|t| now - t < interval)
            {
                continue;
            }
            if client.is_none() {
                match update::http_client() {
                    Ok(c) => client = Some(c),
                    Err(e) => {
                        tracing::warn!("filter: cannot create the HTTP client: {e:#}");
                        return;
                    }
                }
            }
            let res = update::download(
                client.as_ref().unwrap(),
                &l.name,
                url,
                &copy,
                &mut state,
                cfg.filter.download_timeout.0,
                cfg.filter.download_max_mib as u64 * 1024 * 1024,
            )
            .await;
            match res {
                Ok(Outcome::Updated { bytes, rules }) => {
                    tracing::info!(
                        "filter: list '{}' updated: {bytes} bytes, {rules} rules",
                        l.name
                    );
                    changed = true;
                }
                Ok(Outcome::NotModified) => {}
                Err(e) => tracing::warn!("filter: {e:#}"),
            }
            if let Err(e) = state.save(&copy) {
                tracing::warn!("filter: saving download state for '{}': {e}", l.name);
            }
        }
        if changed {
            self.request_build();
            let me = self.clone();
            let _ =
                tokio::task::spawn_blocking(move || me.wait_idle(Duration::from_secs(600))).await;
        }
    }
}

fn build_loop(shared: Weak<Shared>, rx: mpsc::Receiver<()>) {
    while rx.recv().is_ok() {
        // Requests that piled up during the last build are served by one.
        while rx.try_recv().is_ok() {}
        let Some(s) = shared.upgrade() else { return };
        let target = s.progress.lock().unwrap().requested;
        if let Err(e) = s.rebuild() {
            let msg = format!("rebuilding the filter failed: {e:#}");
            tracing::warn!("filter: {msg}");
            s.state.lock().unwrap().last_build_error = Some(msg);
        }
        let mut p = s.progress.lock().unwrap();
        p.finished = p.finished.max(target);
        p.ready = true;
        drop(p);
        s.changed.notify_all();
    }
}

/// Boot-time updates for stale lists, then one round per update_interval.
async fn schedule(shared: Weak<Shared>) {
    let Some(s) = shared.upgrade() else { return };
    s.update_lists(true).await;
    drop(s);
    loop {
        let interval = match shared.upgrade() {
            Some(s) => s.state.lock().unwrap().cfg.filter.update_interval.0,
            None => return,
        };
        if interval.is_zero() {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            continue;
        }
        tokio::time::sleep(interval).await;
        match shared.upgrade() {
            Some(s) => s.update_lists(true).await,
            None => return,
        }
    }
}
